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
    assert_eq!(ok("avg(rx_util[1m]) > 90").window(), Duration::from_secs(60));
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
