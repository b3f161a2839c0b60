//! Every form the language accepts, and for each kind of mistake the error
//! an operator sees: its offset, its words and its hint.

use super::parse::edit_distance;
use super::*;
use crate::metric::Metric;

/// The parts of a one-comparison condition, as every rule had before
/// arithmetic.
trait Simple {
    fn func(&self) -> Func;
    fn metric(&self) -> Metric;
    fn window(&self) -> Duration;
    fn op(&self) -> Cmp;
    fn threshold(&self) -> f64;
    fn holds(&self, value: f64) -> bool;
}

impl Simple for Condition {
    fn func(&self) -> Func {
        self.simple().unwrap().0.func
    }
    fn metric(&self) -> Metric {
        self.simple().unwrap().0.metric
    }
    fn window(&self) -> Duration {
        self.simple().unwrap().0.window
    }
    fn op(&self) -> Cmp {
        self.comparisons[0].op
    }
    fn threshold(&self) -> f64 {
        self.simple().unwrap().1
    }
    fn holds(&self, value: f64) -> bool {
        self.eval(&|_| Some(value)).unwrap().holds
    }
}

fn ok(text: &str) -> Condition {
    parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> ExprError {
    match parse(text) {
        Ok(c) => panic!("{text:?} parsed as {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn increase_with_window() {
    let c = ok("increase(tx_errors[5s]) > 3");
    assert_eq!(c.func(), Func::Increase);
    assert_eq!(c.metric(), Metric::TxErrors);
    assert_eq!(c.window(), Duration::from_secs(5));
    assert_eq!(c.op(), Cmp::Gt);
    assert_eq!(c.threshold(), 3.0);
    assert_eq!(c.text, "increase(tx_errors[5s]) > 3");
}

#[test]
fn every_function_parses() {
    assert_eq!(ok("rate(rx_bytes[10s]) > 1e6").func(), Func::Rate);
    assert_eq!(ok("rate(rx_bytes[10s]) > 1e6").threshold(), 1_000_000.0);
    assert_eq!(ok("avg(rx_util[1m]) > 90").func(), Func::Avg);
    assert_eq!(
        ok("avg(rx_util[1m]) > 90").window(),
        Duration::from_secs(60)
    );
    assert_eq!(ok("min(speed_mbps[10m]) < 1000").func(), Func::Min);
    assert_eq!(ok("max(tx_util[500ms]) >= 0.5").func(), Func::Max);
    assert_eq!(
        ok("max(tx_util[500ms]) >= 0.5").window(),
        Duration::from_millis(500)
    );
    // avg/min/max take counters too: they read the raw values.
    assert_eq!(ok("max(tx_errors[5s]) > 0").metric(), Metric::TxErrors);
    assert_eq!(
        ok("increase(carrier_changes[1m]) > 0").metric(),
        Metric::CarrierChanges
    );
}

#[test]
fn bare_metric_is_latest() {
    let c = ok("oper_up == 0");
    assert_eq!(c.func(), Func::Latest);
    assert_eq!(c.metric(), Metric::OperUp);
    assert_eq!(c.window(), Duration::ZERO);
    assert_eq!(c.op(), Cmp::Eq);
    assert!(c.holds(0.0));
    assert!(!c.holds(1.0));
}

#[test]
fn every_operator_parses_and_compares() {
    let cases = [
        (">", Cmp::Gt, [false, false, true]),
        (">=", Cmp::Ge, [false, true, true]),
        ("<", Cmp::Lt, [true, false, false]),
        ("<=", Cmp::Le, [true, true, false]),
        ("==", Cmp::Eq, [false, true, false]),
        ("!=", Cmp::Ne, [true, false, true]),
    ];
    for (text, op, expect) in cases {
        let c = ok(&format!("speed_mbps {text} 2"));
        assert_eq!(c.op(), op, "{text}");
        assert_eq!([c.holds(1.0), c.holds(2.0), c.holds(3.0)], expect, "{text}");
    }
}

#[test]
fn numbers_in_every_form() {
    assert_eq!(ok("rx_bytes > 1e6").threshold(), 1e6);
    assert_eq!(ok("rx_util > 0.5").threshold(), 0.5);
    assert_eq!(ok("rx_util > -1").threshold(), -1.0);
    assert_eq!(ok("rx_util > .5").threshold(), 0.5);
    assert_eq!(ok("rx_util > 2.5E-1").threshold(), 0.25);
}

#[test]
fn whitespace_anywhere_between_tokens() {
    let c = ok("  increase (\ttx_errors [ 5s ] )>3  ");
    assert_eq!(c.func(), Func::Increase);
    assert_eq!(c.window(), Duration::from_secs(5));
    assert_eq!(c.threshold(), 3.0);
    assert_eq!(c.text, "increase (\ttx_errors [ 5s ] )>3");
    assert_eq!(ok("oper_up==0").op(), Cmp::Eq);
    assert_eq!(
        ok("avg(rx_util[1m 30s]) > 1").window(),
        Duration::from_secs(90)
    );
}

#[test]
fn unknown_metric_suggests_the_nearest() {
    let e = err("increase(tx_error[5s]) > 3");
    assert_eq!(e.offset, 9);
    assert_eq!(e.message, "unknown metric `tx_error`");
    let hint = e.hint.unwrap();
    assert!(
        hint.starts_with("did you mean `tx_errors`? metrics: rx_bytes, "),
        "{hint}"
    );
    assert!(hint.contains("tx_util"));

    let e = err("bogus > 1");
    assert_eq!(e.offset, 0);
    assert_eq!(e.message, "unknown metric `bogus`");
    assert!(e.hint.unwrap().starts_with("metrics: rx_bytes"));

    assert!(
        err("OPER_UP == 0")
            .hint
            .unwrap()
            .contains("did you mean `oper_up`")
    );
}

#[test]
fn counter_functions_reject_gauges() {
    for gauge in ["oper_up", "speed_mbps", "rx_util", "tx_util"] {
        for func in ["increase", "rate"] {
            let text = format!("{func}({gauge}[5s]) > 0");
            let e = err(&text);
            assert_eq!(e.offset, func.len() + 1, "{text}");
            assert_eq!(
                e.message,
                format!("`{func}` needs a counter, but `{gauge}` is a gauge")
            );
            let hint = e.hint.unwrap();
            assert!(hint.contains(&format!("avg({gauge}[1m])")), "{hint}");
            assert!(
                hint.contains("oper_up, speed_mbps, rx_util, tx_util"),
                "{hint}"
            );
        }
    }
}

#[test]
fn window_without_function_says_wrap_it() {
    let e = err("tx_errors[5s] > 3");
    assert_eq!(e.offset, 9);
    assert_eq!(e.message, "the window `tx_errors[5s]` needs a function");
    assert!(e.hint.unwrap().contains("`increase(tx_errors[5s])`"));
    let e = err("rx_util[1m] > 3");
    assert!(e.hint.unwrap().contains("`avg(rx_util[1m])`"));
}

#[test]
fn function_without_window_shows_the_form() {
    let e = err("increase(tx_errors) > 3");
    assert_eq!(e.offset, 18);
    assert_eq!(e.message, "`increase` needs a window after `tx_errors`");
    assert_eq!(e.hint.unwrap(), "write e.g. `increase(tx_errors[5s])`");
}

#[test]
fn bad_windows() {
    let e = err("increase(tx_errors[0s]) > 3");
    assert_eq!(e.offset, 19);
    assert_eq!(e.message, "window `0s` is zero long");
    assert!(e.hint.unwrap().contains("`500ms`"));

    let e = err("increase(tx_errors[5x]) > 3");
    assert_eq!(e.offset, 19);
    assert!(e.message.starts_with("bad window `5x`: "), "{}", e.message);

    let e = err("increase(tx_errors[5]) > 3");
    assert!(e.message.starts_with("bad window `5`: "), "{}", e.message);

    let e = err("increase(tx_errors[ ]) > 3");
    assert_eq!(e.message, "empty window `[]`");

    let e = err("increase(tx_errors[5s > 3");
    assert_eq!(e.offset, 18);
    assert_eq!(e.message, "unclosed `[`");
}

#[test]
fn unknown_function() {
    let e = err("increse(tx_errors[5s]) > 3");
    assert_eq!(e.offset, 0);
    assert_eq!(e.message, "unknown function `increse`");
    assert!(e.hint.unwrap().starts_with("did you mean `increase`?"));

    let e = err("sum(tx_errors[5s]) > 3");
    assert_eq!(e.message, "unknown function `sum`");
    assert_eq!(
        e.hint.unwrap(),
        "functions: increase, rate, changes, flaps, avg, min, max, avg_over, min_over, \
         max_over, avg_over_time, min_over_time, max_over_time"
    );

    let e = err("tx_errors(5s) > 3");
    assert!(e.hint.unwrap().contains("is a metric, not a function"));
}

#[test]
fn function_name_used_as_metric() {
    let e = err("rate > 3");
    assert_eq!(e.message, "unknown metric `rate`");
    assert!(e.hint.unwrap().contains("`rate(tx_errors[5s])`"));
}

#[test]
fn missing_operator() {
    let e = err("increase(tx_errors[5s])");
    assert_eq!(e.offset, 23);
    assert_eq!(
        e.message,
        "missing comparison after `increase(tx_errors[5s])`"
    );
    assert!(e.hint.unwrap().contains("`increase(tx_errors[5s]) > 3`"));

    let e = err("increase(tx_errors[5s]) 3");
    assert_eq!(e.offset, 24);
    assert_eq!(
        e.message,
        "expected a comparison after `increase(tx_errors[5s])`, found `3`"
    );
}

#[test]
fn near_miss_operators() {
    let e = err("oper_up = 0");
    assert_eq!(e.offset, 8);
    assert_eq!(e.message, "`=` is not a comparison");
    assert!(e.hint.unwrap().starts_with("did you mean `==`?"));
    assert!(
        err("oper_up => 0")
            .hint
            .unwrap()
            .starts_with("did you mean `>=`?")
    );
}

#[test]
fn missing_or_bad_threshold() {
    let e = err("oper_up ==");
    assert_eq!(e.offset, 10);
    assert_eq!(e.message, "missing threshold after `==`");

    let e = err("oper_up == 3x");
    assert_eq!(e.offset, 11);
    assert_eq!(e.message, "threshold `3x` is not a number");

    let e = err("oper_up == )");
    assert_eq!(e.offset, 11);
    assert_eq!(e.message, "expected a threshold after `==`, found `)`");
    // A threshold may be any expression, so parentheses are fine.
    assert_eq!(ok("oper_up == (3)").threshold(), 3.0);
}

#[test]
fn nan_and_infinity_are_rejected() {
    let e = err("rx_util > NaN");
    assert_eq!(e.offset, 10);
    assert_eq!(e.message, "threshold `NaN` is not a number");
    assert!(e.hint.unwrap().contains("`1e6`"));
    assert_eq!(
        err("rx_util > inf").message,
        "threshold `inf` is not finite"
    );
    assert_eq!(
        err("rx_util > 1e400").message,
        "threshold `1e400` is not finite"
    );
}

#[test]
fn trailing_garbage() {
    let e = err("increase(tx_errors[5s]) > 3 for 5s");
    assert_eq!(e.offset, 28);
    assert_eq!(e.message, "unexpected `for` after the threshold");

    let e = err("oper_up == 0)");
    assert_eq!(e.offset, 12);
    assert_eq!(e.message, "unexpected `)` after the threshold");
}

#[test]
fn unclosed_call_and_empty_input() {
    let e = err("increase(tx_errors[5s] > 3");
    assert_eq!(e.offset, 23);
    assert_eq!(e.message, "expected `)` to close `increase(`, found `>`");

    let e = err("   ");
    assert_eq!(e.offset, 3);
    assert_eq!(e.message, "empty expression");

    let e = err("> 3");
    assert_eq!(e.message, "expected a metric or function, found `>`");

    let e = err("increase([5s]) > 3");
    assert_eq!(e.offset, 9);
    assert_eq!(
        e.message,
        "expected a metric inside `increase(`, found `[5s])`"
    );
}

#[test]
fn display_names_offset_and_hint() {
    let shown = err("tx_error > 3").to_string();
    assert!(
        shown.starts_with("unknown metric `tx_error` (at byte 0); did you mean `tx_errors`?"),
        "{shown}"
    );
}

#[test]
fn from_str_is_parse() {
    let c: Condition = "oper_up == 0".parse().unwrap();
    assert_eq!(c, ok("oper_up == 0"));
}

#[test]
fn edit_distance_counts_edits() {
    assert_eq!(edit_distance("tx_error", "tx_errors"), 1);
    assert_eq!(edit_distance("rxbytes", "rx_bytes"), 1);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("", "abc"), 3);
}

/// Evaluates a condition with the given value for each leaf, in order.
fn decide(c: &Condition, values: &[Option<f64>]) -> Option<bool> {
    c.eval(&|i| values[i]).map(|v| v.holds)
}

#[test]
fn arithmetic_follows_precedence_and_parentheses() {
    let c = ok("increase(rx_errors[1m]) / increase(rx_packets[1m]) > 0.001");
    assert_eq!(c.leaves.len(), 2);
    assert_eq!(c.leaves[1].metric, Metric::RxPackets);
    assert_eq!(decide(&c, &[Some(2.0), Some(1000.0)]), Some(true));
    assert_eq!(decide(&c, &[Some(1.0), Some(1000.0)]), Some(false));
    // 1 + 2 * 3 = 7, (1 + 2) * 3 = 9, 10 - 4 - 3 = 3, 12 / 2 / 3 = 2.
    for (text, holds) in [
        ("rx_bytes + 2 * 3 == 7", true),
        ("(rx_bytes + 2) * 3 == 9", true),
        ("10 * rx_bytes - 4 - 3 == 3", true),
        ("12 * rx_bytes / 2 / 3 == 2", true),
        ("-rx_bytes == -1", true),
        ("- -rx_bytes == 1", true),
        ("((rx_bytes)) * ((2 + (1))) == 3", true),
        ("rx_bytes * -2 < 0", true),
        ("2 - rx_bytes * 3 == -1", true),
    ] {
        assert_eq!(decide(&ok(text), &[Some(1.0)]), Some(holds), "{text}");
    }
}

#[test]
fn an_expression_on_both_sides() {
    let c = ok("speed_mbps < max_over(speed_mbps[24h])");
    assert_eq!(c.leaves.len(), 2);
    assert_eq!(c.leaves[1].func, Func::Max);
    assert_eq!(c.leaves[1].window, Duration::from_secs(86_400));
    let v = c.eval(&|i| [Some(100.0), Some(1000.0)][i]).unwrap();
    assert!(v.holds);
    assert_eq!((v.lhs, v.rhs), (100.0, 1000.0));
    assert_eq!(
        c.side(c.comparisons[0].rhs_text),
        "max_over(speed_mbps[24h])"
    );
    let c = ok("rate(rx_bytes[10s]) * 2 >= rate(rx_bytes[1m]) + 100");
    assert_eq!(decide(&c, &[Some(100.0), Some(50.0)]), Some(true));
    assert_eq!(decide(&c, &[Some(70.0), Some(50.0)]), Some(false));
}

#[test]
fn division_by_zero_has_no_value() {
    let c = ok("increase(rx_errors[1m]) / increase(rx_packets[1m]) > 0.001");
    assert_eq!(decide(&c, &[Some(0.0), Some(0.0)]), None);
    assert_eq!(decide(&c, &[Some(5.0), Some(0.0)]), None);
    let c = ok("rx_errors / (rx_packets - rx_packets) >= 0");
    assert_eq!(decide(&c, &[Some(1.0), Some(7.0)]), None);
    // A number that overflows to infinity has no value either.
    let c = ok("rx_bytes * 1e300 > 0");
    assert_eq!(decide(&c, &[Some(1e300)]), None);
}

#[test]
fn and_or_unless_with_unknown_sides() {
    let c = ok("rx_errors > 1 and tx_errors > 1");
    let (t, f, u) = (Some(5.0), Some(0.0), None);
    assert_eq!(decide(&c, &[t, t]), Some(true));
    assert_eq!(decide(&c, &[t, f]), Some(false));
    assert_eq!(
        decide(&c, &[u, f]),
        Some(false),
        "false whatever the unknown"
    );
    assert_eq!(decide(&c, &[t, u]), None);
    let c = ok("rx_errors > 1 or tx_errors > 1");
    assert_eq!(decide(&c, &[f, f]), Some(false));
    assert_eq!(decide(&c, &[f, t]), Some(true));
    assert_eq!(decide(&c, &[u, t]), Some(true), "true whatever the unknown");
    assert_eq!(decide(&c, &[f, u]), None);
    let c = ok("rx_errors > 1 unless tx_errors > 1");
    assert_eq!(decide(&c, &[t, f]), Some(true));
    assert_eq!(decide(&c, &[t, t]), Some(false));
    assert_eq!(decide(&c, &[f, u]), Some(false));
    assert_eq!(decide(&c, &[u, t]), Some(false));
    assert_eq!(decide(&c, &[t, u]), None);
    assert_eq!(decide(&c, &[u, f]), None);
}

#[test]
fn and_and_unless_bind_tighter_than_or() {
    // a or b and c  ==  a or (b and c)
    let c = ok("rx_errors > 1 or tx_errors > 1 and rx_dropped > 1");
    let (t, f) = (Some(5.0), Some(0.0));
    assert_eq!(decide(&c, &[t, f, f]), Some(true));
    let c = ok("(rx_errors > 1 or tx_errors > 1) and rx_dropped > 1");
    assert_eq!(decide(&c, &[t, f, f]), Some(false));
    // a unless b or c  ==  (a unless b) or c
    let c = ok("rx_errors > 1 unless tx_errors > 1 or rx_dropped > 1");
    assert_eq!(decide(&c, &[f, f, t]), Some(true));
    assert_eq!(decide(&c, &[t, t, f]), Some(false));
}

#[test]
fn the_deciding_comparison_is_the_one_quoted() {
    let c = ok("rx_errors > 1 and tx_errors > 1");
    let v = c.eval(&|i| [Some(5.0), Some(0.0)][i]).unwrap();
    assert_eq!((v.comparison, v.lhs, v.rhs), (1, 0.0, 1.0));
    let v = c.eval(&|i| [Some(5.0), Some(7.0)][i]).unwrap();
    assert_eq!((v.comparison, v.lhs), (0, 5.0));
    let c = ok("rx_errors > 1 or tx_errors > 1");
    let v = c.eval(&|i| [Some(0.0), Some(7.0)][i]).unwrap();
    assert_eq!((v.comparison, v.lhs), (1, 7.0));
    let c = ok("rx_errors > 1 unless tx_errors > 1");
    let v = c.eval(&|i| [Some(5.0), Some(7.0)][i]).unwrap();
    assert_eq!((v.holds, v.comparison, v.lhs), (false, 1, 7.0));
}

#[test]
fn identical_leaves_are_one() {
    let c = ok(
        "increase(rx_errors[1m]) > 10 and increase(rx_errors[1m]) / increase(rx_packets[1m]) > 0.01",
    );
    assert_eq!(c.leaves.len(), 2);
    // `rx_errors` bare and in a window are different leaves.
    assert_eq!(ok("rx_errors > increase(rx_errors[5s])").leaves.len(), 2);
}

#[test]
fn changes_flaps_and_the_over_forms() {
    let c = ok("changes(speed_mbps[24h]) > 0");
    assert_eq!(c.func(), Func::Changes);
    assert_eq!(c.metric(), Metric::SpeedMbps);
    let c = ok("flaps(2m) >= 3");
    assert_eq!(c.func(), Func::Flaps);
    assert_eq!(c.metric(), Metric::CarrierChanges);
    assert_eq!(c.window(), Duration::from_secs(120));
    assert_eq!(c.leaves[0].at, 6);
    assert_eq!(ok("flaps( [2m] ) >= 3").window(), Duration::from_secs(120));
    for (name, func) in [
        ("avg_over", Func::Avg),
        ("min_over", Func::Min),
        ("max_over", Func::Max),
        ("avg_over_time", Func::Avg),
        ("min_over_time", Func::Min),
        ("max_over_time", Func::Max),
    ] {
        assert_eq!(
            ok(&format!("{name}(rx_util[5m]) > 90")).func(),
            func,
            "{name}"
        );
    }
    assert_eq!(Func::from_name("increase_over"), None);
    assert_eq!(Func::from_name("flaps_over_time"), None);
}

#[test]
fn every_window_is_bounded_by_a_day() {
    let e = err("speed_mbps < max_over(speed_mbps[25h])");
    assert_eq!(e.offset, 33);
    assert_eq!(e.message, "window `25h` is longer than 24h");
    assert!(e.hint.unwrap().contains("24h or less"));
    let e = err("flaps(2d) > 1");
    assert_eq!(e.offset, 6);
    assert_eq!(e.message, "window `2d` is longer than 24h");
    assert!(ok("flaps(24h) > 1").window() == Duration::from_secs(86_400));
}

#[test]
fn type_errors_name_the_part_and_the_fix() {
    let e = err("changes(tx_errors[5m]) > 0");
    assert_eq!(e.offset, 8);
    assert_eq!(
        e.message,
        "`changes` counts how often a gauge moved, but `tx_errors` is a counter"
    );
    assert!(e.hint.unwrap().contains("increase(tx_errors[1m])"));
    assert!(
        err("changes(carrier_changes[5m]) > 0")
            .hint
            .unwrap()
            .contains("flaps(2m)")
    );

    let e = err("rate(rx_util[5m]) / 2 > 1");
    assert_eq!(
        e.message,
        "`rate` needs a counter, but `rx_util` is a gauge"
    );

    let e = err("rx_errors > 1 and 2");
    assert_eq!(e.offset, 18);
    assert_eq!(e.message, "`2` after `and` is a number, not a comparison");
    assert!(e.hint.unwrap().contains("joins comparisons"));
    let e = err("rx_errors and tx_errors > 1");
    assert_eq!(e.offset, 0);
    assert_eq!(
        e.message,
        "`rx_errors` before `and` is a number, not a comparison"
    );

    let e = err("(rx_errors > 1) + 2 > 3");
    assert_eq!(e.offset, 0);
    assert_eq!(
        e.message,
        "`(rx_errors > 1)` is a comparison, and `+` takes numbers"
    );
    let e = err("(rx_errors > 1) > 3");
    assert_eq!(
        e.message,
        "`(rx_errors > 1)` is a comparison, and `>` compares numbers"
    );
    let e = err("rx_errors > 1 > 0");
    assert_eq!(e.offset, 14);
    assert_eq!(e.message, "comparisons do not chain");
    let e = err("3 > 2");
    assert_eq!(e.message, "`3 > 2` compares no metric");
    let e = err("rx_errors / 0 > 1");
    assert_eq!(e.offset, 12);
    assert_eq!(e.message, "division by zero");
    let e = err("-(rx_errors > 1) or rx_errors > 2");
    assert_eq!(e.message, "`-` takes a number, not a comparison");
}

#[test]
fn unbalanced_parentheses() {
    let e = err("(rx_errors + 1 > 3");
    assert_eq!(e.offset, 0);
    assert_eq!(e.message, "unclosed `(`");
    assert!(e.hint.unwrap().contains("`)`"));
    let e = err("((rx_errors + 1) > 3");
    assert_eq!(e.offset, 0);
    assert_eq!(e.message, "unclosed `(`");
    let e = err("(rx_errors + 1 tx_errors) > 3");
    assert_eq!(
        e.message,
        "expected `)` to close this `(`, found `tx_errors)`"
    );
    let e = err("(rx_errors + 1)) > 3");
    assert_eq!(e.offset, 15);
    assert_eq!(
        e.message,
        "expected a comparison after `(rx_errors + 1)`, found `)`"
    );
    let e = err("rx_errors > 1)");
    assert_eq!(e.message, "unexpected `)` after the threshold");
    assert!(e.hint.unwrap().contains("closes no `(`"));
}

#[test]
fn unknown_function_suggests_the_nearest_of_all() {
    let e = err("max_over_tim(speed_mbps[1h]) > 1");
    assert_eq!(e.message, "unknown function `max_over_tim`");
    assert!(e.hint.unwrap().starts_with("did you mean `max_over_time`?"));
    let e = err("flap(2m) > 1");
    assert!(e.hint.unwrap().starts_with("did you mean `flaps`?"));
    let e = err("chnages(speed_mbps[1h]) > 1");
    assert!(e.hint.unwrap().starts_with("did you mean `changes`?"));
    let e = err("flaps > 1");
    assert_eq!(e.message, "unknown metric `flaps`");
    assert!(e.hint.unwrap().contains("`flaps(2m)`"));
}

#[test]
fn numbers_inside_expressions() {
    let e = err("rx_errors * 3x > 1");
    assert_eq!(e.offset, 12);
    assert_eq!(e.message, "number `3x` is not a number");
    assert!(ok("rx_errors * 1e-3 > 1e+2").comparisons[0].rhs == Expr::Number(100.0));
    assert!(ok("rx_errors-1>2").leaves.len() == 1);
    let e = err("rx_errors > 1 and rx_errors * NaN > 1");
    assert_eq!(e.message, "number `NaN` is not a number");
}

#[test]
fn deep_or_long_expressions_are_refused_not_overflowed() {
    let deep = format!("{}rx_errors{} > 1", "(".repeat(40), ")".repeat(40));
    assert!(err(&deep).message.starts_with("nested more than 32 deep"));
    let long = format!("rx_errors{} > 1", " + 1".repeat(100));
    assert!(err(&long).message.starts_with("more than 64 operators"));
    let negs = format!("{}rx_errors > 1", "-".repeat(100));
    assert!(parse(&negs).is_err());
    let wide = (0..9)
        .map(|i| format!("increase(rx_errors[{}s]) > 1", i + 1))
        .collect::<Vec<_>>()
        .join(" or ");
    assert_eq!(
        err(&wide).message,
        "more than 8 different windows and metrics in one expression"
    );
}

#[test]
fn a_condition_reparses_from_its_own_text() {
    for text in [
        "  increase(rx_errors[1m]) / increase(rx_packets[1m]) > 0.001 and increase(rx_errors[1m]) >= 10 ",
        "\tspeed_mbps < max_over(speed_mbps[24h])",
        "flaps(2m) >= 3 unless oper_up == 0",
    ] {
        let c = ok(text);
        assert_eq!(ok(&c.text), c, "{text:?}");
    }
}
