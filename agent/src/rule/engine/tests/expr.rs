//! Compound expressions in the engine, tick by tick at explicit times:
//! arithmetic, `and`/`or`/`unless`, expressions on both sides, `changes`,
//! `flaps`, `keep_firing_for`, and what an alert quotes of them.

use super::*;

fn errors_and_packets(errors: u64, packets: u64) -> [u64; COUNTER_COLUMNS] {
    let mut row = [0; COUNTER_COLUMNS];
    row[Metric::RxErrors as usize] = errors;
    row[Metric::RxPackets as usize] = packets;
    row
}

const RATIO: &str = "increase(rx_errors[10s]) / increase(rx_packets[10s]) > 0.001 and increase(rx_errors[10s]) >= 10";

#[test]
fn ratio_with_a_floor_fires_on_the_ratio_and_quotes_it() {
    let mut h = Harness::new(vec![rule("err-ratio", RATIO)]);
    let tick =
        |h: &mut Harness, s: f64, e, p| h.tick(s, &[("eth0", errors_and_packets(e, p), None)]);
    assert!(tick(&mut h, 0.0, 0, 0).is_empty());
    // 5 errors in 1000 packets: the ratio holds, the floor does not.
    assert!(tick(&mut h, 1.0, 5, 1000).is_empty());
    // 12 errors in 2000 packets: both hold.
    let fired = only(tick(&mut h, 2.0, 12, 2000));
    assert_eq!(fired.expr, RATIO);
    assert_eq!(fired.value, Some(0.006));
    assert_eq!(fired.threshold, 0.001);
    assert_eq!(
        fired.message,
        "eth0 err-ratio firing (critical): increase(rx_errors[10s]) / increase(rx_packets[10s]) is 0.006 (threshold > 0.001)"
    );
    // A flood of good packets: the ratio falls and decides the resolve.
    let resolved = only(tick(&mut h, 3.0, 12, 1_000_000));
    assert_eq!(resolved.value, Some(12.0 / 1_000_000.0));
    assert_eq!(resolved.threshold, 0.001);
    assert_eq!(
        resolved.message,
        "eth0 err-ratio resolved (critical): increase(rx_errors[10s]) / increase(rx_packets[10s]) is 0.000012"
    );
}

#[test]
fn the_floor_decides_when_it_is_the_false_side() {
    let mut r = rule("err-ratio", RATIO);
    r.clear_when = Some(parse("increase(rx_errors[10s]) < 10").unwrap());
    let mut h = Harness::new(vec![r]);
    let tick =
        |h: &mut Harness, s: f64, e, p| h.tick(s, &[("eth0", errors_and_packets(e, p), None)]);
    assert!(tick(&mut h, 0.0, 0, 0).is_empty());
    assert_eq!(only(tick(&mut h, 1.0, 20, 100)).state, AlertState::Firing);
    for s in 2..=10 {
        assert!(tick(&mut h, s as f64, 20, 100).is_empty(), "t{s}");
    }
    let resolved = only(tick(&mut h, 11.0, 20, 100));
    assert_eq!(resolved.expr, "increase(rx_errors[10s]) < 10");
    assert_eq!(
        resolved.message,
        "eth0 err-ratio resolved (critical): rx_errors increased by 0 in 10s"
    );
}

#[test]
fn division_by_zero_leaves_the_rule_as_it_was() {
    let mut r = rule(
        "ratio",
        "increase(rx_errors[1s]) / increase(rx_packets[1s]) > 0.5",
    );
    r.for_ = Duration::from_secs(2);
    let mut h = Harness::new(vec![r]);
    let tick =
        |h: &mut Harness, s: f64, e, p| h.tick(s, &[("eth0", errors_and_packets(e, p), None)]);
    assert!(tick(&mut h, 0.0, 0, 0).is_empty());
    assert!(tick(&mut h, 1.0, 9, 10).is_empty()); // pending since t1
    // No packets and no errors in the window: 0 / 0, no value, and the
    // pending `for` is neither reset nor fired.
    for s in 2..=4 {
        assert!(tick(&mut h, s as f64, 9, 10).is_empty(), "t{s}");
    }
    assert!(h.engine.firing().is_empty());
    // Errors and packets come back: `for` counted from t1, so it fires.
    let fired = only(tick(&mut h, 5.0, 18, 20));
    assert_eq!(fired.value, Some(0.9));
    // Firing, then 0/0 for a long time: never resolved, never a NaN.
    for s in 6..=20 {
        assert!(tick(&mut h, s as f64, 18, 20).is_empty(), "t{s}");
    }
    let firing = h.engine.firing();
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0].value, 0.9);
    let resolved = only(tick(&mut h, 21.0, 19, 1000));
    assert_eq!(resolved.value, Some(1.0 / 980.0));
}

#[test]
fn unless_suppresses_while_its_right_side_holds() {
    let mut h = Harness::new(vec![rule(
        "flap-up",
        "increase(carrier_changes[5s]) > 0 unless oper_up == 0",
    )]);
    assert!(h.link(0.0, Some(link(true, None, 0))).is_empty());
    // Carrier moved but the link is down now: suppressed.
    assert!(h.link(1.0, Some(link(false, None, 1))).is_empty());
    let fired = only(h.link(2.0, Some(link(true, None, 2))));
    assert_eq!(fired.value, Some(2.0));
    // Down again: `unless` decides the resolve and is quoted.
    let resolved = only(h.link(3.0, Some(link(false, None, 3))));
    assert_eq!(resolved.value, Some(0.0));
    assert_eq!(resolved.threshold, 0.0);
    assert_eq!(
        resolved.message,
        "eth0 flap-up resolved (critical): oper_up is 0"
    );
}

#[test]
fn or_fires_on_either_side() {
    let mut h = Harness::new(vec![rule("either", "rx_errors > 5 or tx_errors > 5")]);
    let mut row = [0u64; COUNTER_COLUMNS];
    assert!(h.tick(0.0, &[("eth0", row, None)]).is_empty());
    row[Metric::TxErrors as usize] = 7;
    let fired = only(h.tick(1.0, &[("eth0", row, None)]));
    assert_eq!(
        fired.message,
        "eth0 either firing (critical): tx_errors is 7 (threshold > 5)"
    );
    row[Metric::RxErrors as usize] = 9;
    row[Metric::TxErrors as usize] = 0;
    assert!(h.tick(2.0, &[("eth0", row, None)]).is_empty());
    row[Metric::RxErrors as usize] = 0;
    let resolved = only(h.tick(3.0, &[("eth0", row, None)]));
    assert_eq!(resolved.value, Some(0.0));
}

#[test]
fn nested_parentheses_in_the_engine() {
    let mut h = Harness::new(vec![rule(
        "nested",
        "((rx_errors + (tx_errors * 2)) - ((1))) / ((2)) >= (((3)))",
    )]);
    let mut row = [0u64; COUNTER_COLUMNS];
    row[Metric::RxErrors as usize] = 2;
    row[Metric::TxErrors as usize] = 2;
    // (2 + 4 - 1) / 2 = 2.5
    assert!(h.tick(0.0, &[("eth0", row, None)]).is_empty());
    row[Metric::TxErrors as usize] = 3;
    // (2 + 6 - 1) / 2 = 3.5
    let fired = only(h.tick(1.0, &[("eth0", row, None)]));
    assert_eq!(fired.value, Some(3.5));
    assert_eq!(fired.threshold, 3.0);
}

#[test]
fn speed_drop_compares_with_its_own_day() {
    let mut h = Harness::new(vec![rule(
        "speed-drop",
        "speed_mbps < max_over(speed_mbps[24h])",
    )]);
    let speed = |s| Some(link(true, Some(s), 0));
    for s in 0..5 {
        assert!(h.link(f64::from(s), speed(1000)).is_empty());
    }
    let fired = only(h.link(5.0, speed(100)));
    assert_eq!(fired.value, Some(100.0));
    assert_eq!(fired.threshold, 1000.0);
    assert_eq!(
        fired.message,
        "eth0 speed-drop firing (critical): speed_mbps is 100 (threshold < max_over(speed_mbps[24h]) = 1000)"
    );
    // Still slower than the day's best an hour on.
    assert!(h.link(3600.0, speed(100)).is_empty());
    // A day after the last 1000 (at t4) it has left the window: resolved.
    assert!(h.link(86_403.5, speed(100)).is_empty());
    let resolved = only(h.link(86_404.0, speed(100)));
    assert_eq!(resolved.threshold, 100.0);
    // Back up: not a drop.
    assert!(h.link(86_405.0, speed(1000)).is_empty());
}

#[test]
fn changes_counts_each_move_of_a_gauge() {
    let mut h = Harness::new(vec![rule("renegotiated", "changes(speed_mbps[5s]) >= 2")]);
    let speed = |s| Some(link(true, Some(s), 0));
    assert!(h.link(0.0, speed(1000)).is_empty());
    assert!(h.link(1.0, speed(100)).is_empty()); // 1
    assert!(h.link(2.0, None).is_empty()); // unknown: no change either way
    let fired = only(h.link(3.0, speed(1000))); // 2
    assert_eq!(fired.value, Some(2.0));
    assert_eq!(
        fired.message,
        "eth0 renegotiated firing (critical): speed_mbps changed 2 times in 5s (threshold >= 2)"
    );
    assert!(h.link(4.0, speed(1000)).is_empty());
    assert!(h.link(5.0, speed(1000)).is_empty());
    // (1, 6]: only the change at t3 is left.
    let resolved = only(h.link(6.0, speed(1000)));
    assert_eq!(resolved.value, Some(1.0));
}

#[test]
fn flaps_count_a_flap_shorter_than_a_tick() {
    let mut r = rule("flapping", "flaps(10s) >= 3");
    r.clear_when = Some(parse("flaps(3s) == 0").unwrap());
    let mut h = Harness::new(vec![r]);
    assert!(h.link(0.0, Some(link(true, None, 0))).is_empty());
    // Down and back up between two ticks: the state looks unchanged, the
    // carrier count moved by 2. One flap.
    assert!(h.link(1.0, Some(link(true, None, 2))).is_empty());
    // Down at a tick, up at the next: one more, counted when it comes up.
    assert!(h.link(2.0, Some(link(false, None, 3))).is_empty());
    assert!(h.link(3.0, Some(link(true, None, 4))).is_empty());
    // Two more inside one tick.
    let fired = only(h.link(4.0, Some(link(true, None, 8))));
    assert_eq!(fired.value, Some(4.0));
    assert_eq!(
        fired.message,
        "eth0 flapping firing (critical): link flapped 4 times in 10s (threshold >= 3)"
    );
    // Quiet: nothing per flap, one resolve once 3 s pass without one.
    for s in 5..=6 {
        assert!(h.link(f64::from(s), Some(link(true, None, 8))).is_empty());
    }
    let resolved = only(h.link(7.0, Some(link(true, None, 8))));
    assert_eq!(resolved.value, Some(0.0));
    assert_eq!(
        resolved.message,
        "eth0 flapping resolved (critical): link flapped 0 times in 3s"
    );
}

#[test]
fn flaps_have_no_value_without_a_link_or_on_the_first_tick() {
    let mut h = Harness::new(vec![rule("f", "flaps(10s) >= 0")]);
    // A link first seen with a high count is not a history of flaps.
    assert!(h.link(0.0, Some(link(true, None, 1000))).is_empty());
    assert!(h.engine.firing().is_empty());
    assert!(h.link(1.0, None).is_empty());
    assert!(h.engine.firing().is_empty());
    // The count moved by 2 across the gap: a flap, seen once the link is.
    let fired = only(h.link(2.0, Some(link(true, None, 1002))));
    assert_eq!(fired.value, Some(1.0));
}

#[test]
fn ups_count_comebacks() {
    use super::super::window::ups;
    // (carrier changes, was up, is up) -> times it came up
    for (delta, was, is, expect) in [
        (0, true, true, 0),
        (2, true, true, 1),
        (6, true, true, 3),
        (1, true, false, 0),
        (3, true, false, 1),
        (1, false, true, 1),
        (3, false, true, 2),
        (2, false, false, 1),
        // A source that missed changes: the least that explains the states.
        (0, false, true, 1),
        (1, true, true, 1),
        (u64::MAX, false, true, u64::MAX / 2 + 1),
    ] {
        assert_eq!(ups(delta, was, is), expect, "{delta} {was} {is}");
    }
}

#[test]
fn keep_firing_for_bridges_a_gap() {
    let mut r = rule("errors", "increase(tx_errors[2s]) > 0");
    r.keep_firing_for = Duration::from_secs(3);
    let mut h = Harness::new(vec![r]);
    assert!(h.counter(0.0, Metric::TxErrors, 0).is_empty());
    assert_eq!(
        only(h.counter(1.0, Metric::TxErrors, 1)).state,
        AlertState::Firing
    );
    // From t3 `when` is false; at t5 it has been false for 2 s.
    for s in 2..=5 {
        assert!(
            h.counter(f64::from(s), Metric::TxErrors, 1).is_empty(),
            "t{s}"
        );
    }
    // It holds again at t5.5: the count starts over.
    assert!(h.counter(5.5, Metric::TxErrors, 2).is_empty());
    for s in 6..=10 {
        assert!(
            h.counter(f64::from(s), Metric::TxErrors, 2).is_empty(),
            "t{s}"
        );
    }
    assert_eq!(h.engine.firing().len(), 1);
    // False from t8 (the +1 of t5.5 left the window), for 3 s at t11.
    let resolved = only(h.counter(11.0, Metric::TxErrors, 2));
    assert_eq!(resolved.state, AlertState::Resolved);
    assert_eq!(resolved.value, Some(0.0));
    assert_eq!(h.engine.firing().len(), 0);
}

#[test]
fn keep_firing_for_with_clear_when_and_unknown_ticks() {
    let mut r = rule("down", "oper_up == 0");
    r.clear_when = Some(parse("avg(oper_up[2s]) == 1").unwrap());
    r.keep_firing_for = Duration::from_secs(2);
    let mut h = Harness::new(vec![r]);
    let (up, down) = (Some(link(true, None, 0)), Some(link(false, None, 0)));
    assert_eq!(only(h.link(0.0, down)).state, AlertState::Firing);
    assert!(h.link(1.0, up).is_empty()); // avg 0.5
    assert!(h.link(2.0, up).is_empty()); // avg 1: clearing since t2
    assert!(h.link(3.0, None).is_empty()); // unknown: the count goes on
    let resolved = only(h.link(4.0, up)); // held 2 s
    assert_eq!(resolved.expr, "avg(oper_up[2s]) == 1");
    // Once more, broken by a tick where it does not hold.
    assert_eq!(only(h.link(5.0, down)).state, AlertState::Firing);
    assert!(h.link(6.0, up).is_empty());
    assert!(h.link(7.0, up).is_empty()); // clearing since t7
    assert!(h.link(8.0, down).is_empty()); // reset
    assert!(h.link(9.0, up).is_empty());
    assert!(h.link(10.0, up).is_empty()); // clearing since t10
    assert!(h.link(11.0, up).is_empty());
    assert_eq!(only(h.link(12.0, up)).state, AlertState::Resolved);
}

#[test]
fn identical_leaves_share_one_window() {
    let mut r = rule(
        "ratio",
        "increase(rx_errors[1m]) / increase(rx_packets[1m]) > 0.01 and increase(rx_errors[1m]) > 3",
    );
    r.clear_when = Some(parse("increase(rx_errors[1m]) == 0").unwrap());
    let mut h = Harness::new(vec![r]);
    assert!(
        h.tick(0.0, &[("eth0", errors_and_packets(0, 0), None)])
            .is_empty()
    );
    let state = &h.engine.interfaces[0].states[0];
    assert_eq!(state.windows().count(), 2);
    assert_eq!(h.engine.plans[0].clear, [0]);
}

#[test]
fn a_vanished_interface_resolves_with_the_last_threshold() {
    let mut h = Harness::new(vec![rule("drop", "speed_mbps < max_over(speed_mbps[1h])")]);
    assert!(h.link(0.0, Some(link(true, Some(1000), 0))).is_empty());
    assert_eq!(
        only(h.link(1.0, Some(link(true, Some(10), 0)))).threshold,
        1000.0
    );
    let resolved = only(h.tick(2.0, &[("eth1", [0; COUNTER_COLUMNS], None)]));
    assert_eq!((resolved.value, resolved.threshold), (None, 1000.0));
}
