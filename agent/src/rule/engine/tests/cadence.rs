//! Windows and `for` when ticks are irregular: the agent stretches its
//! interval while the counter source is slow and comes back when it is fast,
//! and on NX-OS polls every 10 s, so a window may hold many ticks, few, or
//! one whose delta began before the window. Values must stay exact.

use super::*;

/// The ticks' times: 1 s ticks, then a stretch of late,
/// uneven ones (12 to 19 s apart, as a slow NX-API poll stretches the
/// interval), then 1 s ticks again.
fn schedule() -> Vec<f64> {
    let mut at = Vec::new();
    let mut t = 0.0;
    for _ in 0..40 {
        at.push(t);
        t += 1.0;
    }
    for gap in [15.0, 12.5, 19.0, 15.0, 16.25, 13.0, 18.0, 15.0] {
        t += gap;
        at.push(t);
    }
    for _ in 0..40 {
        t += 1.0;
        at.push(t);
    }
    at
}

/// `increase` and `rate` straight from the history: the deltas of the ticks
/// in `(now - w, now]`, over the time from the tick before them (or the
/// first tick) to now.
fn oracle(history: &[(f64, u64)], w: f64) -> (f64, f64) {
    let &(now, _) = history.last().unwrap();
    let first = history
        .iter()
        .position(|&(t, _)| t > now - w)
        .unwrap()
        .max(1);
    let from = history[first - 1].0;
    let increase = (history.last().unwrap().1 - history[first - 1].1) as f64;
    (increase, increase / (now - from))
}

#[test]
fn increase_and_rate_stay_exact_when_the_interval_stretches() {
    // Always true, so each stays firing and `firing()` shows its value at
    // every tick.
    let rules = vec![
        rule("inc30", "increase(tx_errors[30s]) >= 0"),
        rule("rate30", "rate(tx_errors[30s]) >= 0"),
        rule("inc5", "increase(tx_errors[5s]) >= 0"),
        rule("rate5", "rate(tx_errors[5s]) >= 0"),
    ];
    let mut h = Harness::new(rules);
    let mut history: Vec<(f64, u64)> = Vec::new();
    let mut errors = 0u64;
    for (i, &t) in schedule().iter().enumerate() {
        // An uneven trickle: some ticks none, some many.
        errors += [3, 0, 7, 1, 0, 12][i % 6];
        history.push((t, errors));
        h.counter(t, Metric::TxErrors, errors);
        if i == 0 {
            continue;
        }
        let firing = h.engine.firing();
        let value = |name: &str| firing.iter().find(|f| f.rule == name).unwrap().value;
        for (w, inc, rate) in [(30.0, "inc30", "rate30"), (5.0, "inc5", "rate5")] {
            let (increase, per_second) = oracle(&history, w);
            assert_eq!(value(inc), increase, "{inc} at t{t}");
            assert!(
                (value(rate) - per_second).abs() < 1e-9,
                "{rate} at t{t}: {} vs {per_second}",
                value(rate)
            );
        }
    }
}

#[test]
fn a_window_shorter_than_a_stretched_interval_holds_one_poll() {
    // NX-OS's 10 s default under a 5 s rule: each poll's change, over the
    // 10 s it spans, not over 5 s.
    let mut h = Harness::new(vec![
        rule("inc", "increase(rx_bytes[5s]) > 5000"),
        rule("rate", "rate(rx_bytes[5s]) > 600"),
    ]);
    assert!(h.counter(0.0, Metric::RxBytes, 0).is_empty());
    // 6000 bytes in 10 s: more than 5000, but 600/s, not 1200/s.
    let fired = only(h.counter(10.0, Metric::RxBytes, 6000));
    assert_eq!((fired.rule.as_str(), fired.value), ("inc", Some(6000.0)));
    // Stretched to 15 s: 9001 more bytes make 600.07/s.
    let fired = h.counter(25.0, Metric::RxBytes, 15_001);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].rule, "rate");
    assert!((fired[0].value.unwrap() - 9001.0 / 15.0).abs() < 1e-9);
}

#[test]
fn increase_over_a_stretch_counts_each_poll_once() {
    let mut h = Harness::new(vec![rule("e", "increase(tx_errors[30s]) > 10")]);
    // 10 s polls, then stretched to 15 s.
    for (t, v) in [(0.0, 0), (10.0, 2), (20.0, 4), (35.0, 8)] {
        assert!(h.counter(t, Metric::TxErrors, v).is_empty(), "t{t}");
    }
    // At t50 the window (20, 50] holds t35 (+4) and t50 (+7): 11, counted
    // from the t20 poll, not the +2 of t10 nor the +2 of t20.
    let fired = only(h.counter(50.0, Metric::TxErrors, 15));
    assert_eq!(fired.value, Some(11.0));
    assert_eq!(
        fired.message,
        "eth0 e firing (critical): tx_errors increased by 11 in 30s (threshold > 10)"
    );
    // At t65, (35, 65] holds t50 (+7) and t65 (+0): 7, resolved.
    let resolved = only(h.counter(65.0, Metric::TxErrors, 15));
    assert_eq!(resolved.value, Some(7.0));
}

#[test]
fn for_counts_time_not_polls_when_the_interval_stretches() {
    let mut r = rule("down", "oper_up == 0");
    r.for_ = Duration::from_secs(30);
    let mut h = Harness::new(vec![r]);
    let up = Some(link(true, None, 0));
    let down = Some(link(false, None, 1));
    assert!(h.link(0.0, up).is_empty());
    // Pending from t10; polls at 15, 12.5 and 19 s apart: 29.5 s is not 30.
    for t in [10.0, 25.0, 37.5] {
        assert!(h.link(t, down).is_empty(), "t{t}");
    }
    assert!(h.engine.firing().is_empty());
    let fired = only(h.link(56.5, down)); // held 46.5 s
    assert_eq!(fired.state, AlertState::Firing);
    assert_eq!(h.engine.firing()[0].since, h.at(56.5));
    // Back at 1 s polls, one up tick resolves it.
    let resolved = only(h.link(57.5, up));
    assert_eq!(resolved.state, AlertState::Resolved);
}

#[test]
fn utilisation_divides_by_the_real_time_between_polls() {
    let mut h = Harness::new(vec![rule("hot", "rx_util > 50")]);
    let speed = Some(link(true, Some(1000), 0));
    let mut at = |s: f64, bytes: u64| h.tick(s, &[("eth0", row(Metric::RxBytes, bytes), speed)]);
    assert!(at(0.0, 0).is_empty());
    // 1e9 bytes in 10 s on a 1 Gb/s link is 80 %; 0.75e9 more over a
    // stretched 15 s poll is 40 %, not the 60 % of a 10 s interval.
    let fired = only(at(10.0, 1_000_000_000));
    assert_eq!(fired.value, Some(80.0));
    let resolved = only(at(25.0, 1_750_000_000));
    assert_eq!(resolved.value, Some(40.0));
}
