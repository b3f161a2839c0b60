//! The engine's tests: driven tick by tick at explicit times. The window
//! functions' own tests are in `windows`; here are alerts, `for`,
//! `clear_when`, counters, links, reloads and scale.

mod cadence;
mod expr;
mod oracle;
mod windows;

use super::state::number;
use super::window::{Reading, Window};
use super::*;
use crate::link::OperState;
use crate::matcher::InterfaceMatcher;
use crate::rule::expr::Func;
use crate::rule::parse;

fn rule(name: &str, when: &str) -> Rule {
    Rule {
        name: name.to_string(),
        interfaces: InterfaceMatcher::all(),
        when: parse(when).unwrap(),
        for_: Duration::ZERO,
        clear_when: None,
        keep_firing_for: Duration::ZERO,
        severity: Severity::Critical,
        labels: Default::default(),
        kind: Default::default(),
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn row(metric: Metric, value: u64) -> [u64; COUNTER_COLUMNS] {
    let mut row = [0; COUNTER_COLUMNS];
    row[metric.column().unwrap()] = value;
    row
}

fn link(up: bool, speed: Option<u64>, carrier_changes: u64) -> LinkState {
    LinkState {
        admin_up: true,
        carrier: up,
        oper: if up { OperState::Up } else { OperState::Down },
        carrier_changes,
        speed_mbps: speed,
    }
}

/// Drives an engine with one interface at explicit times.
struct Harness {
    engine: Engine,
    t0: Instant,
}

impl Harness {
    fn new(rules: Vec<Rule>) -> Harness {
        Harness {
            engine: Engine::new(rules),
            t0: Instant::now(),
        }
    }

    fn at(&self, s: f64) -> Instant {
        self.t0 + secs(s)
    }

    fn tick(
        &mut self,
        s: f64,
        ifaces: &[(&str, [u64; COUNTER_COLUMNS], Option<LinkState>)],
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        let now = self.at(s);
        self.engine.observe(
            now,
            ifaces.iter().map(|(name, counters, link)| Observation {
                name,
                counters,
                columns: Columns::ALL,
                link: link.as_ref(),
            }),
            &mut out,
        );
        out
    }

    /// One interface `eth0` with one counter.
    fn counter(&mut self, s: f64, metric: Metric, value: u64) -> Vec<Alert> {
        self.tick(s, &[("eth0", row(metric, value), None)])
    }

    fn link(&mut self, s: f64, link: Option<LinkState>) -> Vec<Alert> {
        self.tick(s, &[("eth0", [0; COUNTER_COLUMNS], link)])
    }

    fn max_buffer(&self) -> usize {
        self.engine
            .interfaces
            .iter()
            .flat_map(|i| &i.states)
            .flat_map(|s| s.windows())
            .map(Window::len)
            .max()
            .unwrap_or(0)
    }
}

fn only(alerts: Vec<Alert>) -> Alert {
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    alerts.into_iter().next().unwrap()
}

#[test]
fn latest_is_this_ticks_value() {
    let mut h = Harness::new(vec![rule("link-down", "oper_up == 0")]);
    assert!(h.link(0.0, Some(link(true, None, 0))).is_empty());
    let fired = only(h.link(1.0, Some(link(false, None, 1))));
    assert_eq!(fired.value, Some(0.0));
    assert_eq!(
        fired.message,
        "eth0 link-down firing (critical): oper_up is 0 (threshold == 0)"
    );
    let resolved = only(h.link(2.0, Some(link(true, None, 2))));
    assert_eq!(resolved.value, Some(1.0));
    assert_eq!(
        resolved.message,
        "eth0 link-down resolved (critical): oper_up is 1"
    );
}

#[test]
fn for_waits_then_fires_and_a_false_tick_resets_it() {
    let mut r = rule("down", "oper_up == 0");
    r.for_ = Duration::from_secs(3);
    let mut h = Harness::new(vec![r]);
    let up = Some(link(true, None, 0));
    let down = Some(link(false, None, 0));
    assert!(h.link(0.0, up).is_empty());
    assert!(h.link(1.0, down).is_empty()); // pending since t1
    assert!(h.link(2.0, down).is_empty());
    assert!(h.link(3.0, up).is_empty()); // reset
    assert!(h.link(4.0, down).is_empty()); // pending since t4
    assert!(h.link(5.0, down).is_empty());
    assert!(h.link(6.0, down).is_empty());
    assert!(h.engine.firing().is_empty());
    let fired = only(h.link(7.0, down)); // held 3 s
    assert_eq!(fired.state, AlertState::Firing);
    let firing = h.engine.firing();
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0].since, h.at(7.0));
    assert!(h.link(8.0, down).is_empty());
}

#[test]
fn clear_when_holds_the_alert_until_it_is_quiet() {
    let mut r = rule("tx-errors", "increase(tx_errors[5s]) > 3");
    r.clear_when = Some(parse("increase(tx_errors[10s]) == 0").unwrap());
    let mut h = Harness::new(vec![r]);
    assert!(h.counter(0.0, Metric::TxErrors, 100).is_empty());
    assert_eq!(
        only(h.counter(1.0, Metric::TxErrors, 110)).state,
        AlertState::Firing
    );
    // From t7 `when` is false, but the 10 s window still holds the +10.
    for s in 2..=10 {
        assert!(
            h.counter(s as f64, Metric::TxErrors, 110).is_empty(),
            "t{s}"
        );
    }
    let resolved = only(h.counter(11.0, Metric::TxErrors, 110));
    assert_eq!(resolved.state, AlertState::Resolved);
    assert_eq!(resolved.expr, "increase(tx_errors[10s]) == 0");
    assert_eq!(resolved.value, Some(0.0));
    assert_eq!(resolved.threshold, 0.0);
    assert_eq!(
        resolved.message,
        "eth0 tx-errors resolved (critical): tx_errors increased by 0 in 10s"
    );
}

#[test]
fn counter_reset_is_neither_negative_nor_huge() {
    let mut h = Harness::new(vec![rule("e", "increase(tx_errors[5s]) > 5")]);
    assert!(h.counter(0.0, Metric::TxErrors, 1_000_000).is_empty());
    // The interface was reset and counted 3 since.
    assert!(h.counter(1.0, Metric::TxErrors, 3).is_empty());
    // +3 more: 6 in the window, exact.
    let fired = only(h.counter(2.0, Metric::TxErrors, 6));
    assert_eq!(fired.value, Some(6.0));
}

#[test]
fn thirty_two_bit_wrap_is_exact() {
    let mut h = Harness::new(vec![rule("e", "increase(tx_errors[5s]) > 3")]);
    assert!(
        h.counter(0.0, Metric::TxErrors, u32::MAX as u64 - 2)
            .is_empty()
    );
    let fired = only(h.counter(1.0, Metric::TxErrors, 4));
    assert_eq!(fired.value, Some(7.0));
    assert_eq!(
        fired.message,
        "eth0 e firing (critical): tx_errors increased by 7 in 5s (threshold > 3)"
    );
}

#[test]
fn sixty_four_bit_values_sum_exactly() {
    let mut h = Harness::new(vec![rule("bytes", "increase(rx_bytes[5s]) > 1e19")]);
    let big = u64::MAX - 100;
    assert!(h.counter(0.0, Metric::RxBytes, 0).is_empty());
    assert!(h.counter(1.0, Metric::RxBytes, big / 2).is_empty());
    // Two deltas of ~9.2e18, whose sum only just fits 64 bits.
    let fired = only(h.counter(2.0, Metric::RxBytes, big));
    assert_eq!(fired.value, Some(big as f64));
    let mut h = Harness::new(vec![rule("e", "increase(tx_errors[5s]) > 0")]);
    assert!(h.counter(0.0, Metric::TxErrors, u64::MAX - 10).is_empty());
    assert_eq!(
        only(h.counter(1.0, Metric::TxErrors, u64::MAX)).value,
        Some(10.0)
    );
}

#[test]
fn a_new_interface_does_not_fire_on_its_history() {
    let mut h = Harness::new(vec![rule("e", "increase(tx_errors[5s]) > 3")]);
    for s in 0..5 {
        let out = h.tick(s as f64, &[("eth0", row(Metric::TxErrors, 0), None)]);
        assert!(out.is_empty());
    }
    let both = |e1| {
        [
            ("eth0", row(Metric::TxErrors, 0), None),
            ("eth1", row(Metric::TxErrors, e1), None),
        ]
    };
    assert!(h.tick(5.0, &both(1_000_000)).is_empty());
    assert!(h.tick(6.0, &both(1_000_002)).is_empty());
    let fired = only(h.tick(7.0, &both(1_000_004)));
    assert_eq!((fired.interface.as_str(), fired.value), ("eth1", Some(4.0)));
    assert_eq!(h.engine.interface_count(), 2);
}

#[test]
fn a_restarted_agent_does_not_fire_on_high_counters() {
    for when in ["increase(tx_errors[5s]) > 3", "rate(tx_errors[5s]) > 3"] {
        let mut h = Harness::new(vec![rule("e", when)]);
        assert!(
            h.counter(0.0, Metric::TxErrors, 5_000_000).is_empty(),
            "{when}"
        );
        assert!(
            h.counter(1.0, Metric::TxErrors, 5_000_001).is_empty(),
            "{when}"
        );
    }
}

#[test]
fn a_vanished_interface_resolves_and_returns_as_new() {
    let mut h = Harness::new(vec![rule("e", "increase(tx_errors[5s]) > 3")]);
    assert!(h.counter(0.0, Metric::TxErrors, 0).is_empty());
    assert_eq!(
        only(h.counter(1.0, Metric::TxErrors, 10)).state,
        AlertState::Firing
    );
    let resolved = only(h.tick(2.0, &[("eth1", [0; COUNTER_COLUMNS], None)]));
    assert_eq!(resolved.state, AlertState::Resolved);
    assert_eq!(resolved.interface, "eth0");
    assert_eq!(resolved.value, None);
    assert_eq!(resolved.expr, "increase(tx_errors[5s]) > 3");
    assert_eq!(
        resolved.message,
        "eth0 e resolved (critical): interface vanished"
    );
    assert_eq!(h.engine.interface_count(), 1);
    assert!(h.engine.firing().is_empty());
    // Back with a higher counter: new, so no delta from the old value.
    assert!(h.counter(3.0, Metric::TxErrors, 500).is_empty());
    assert!(h.counter(4.0, Metric::TxErrors, 501).is_empty());
}

#[test]
fn an_unavailable_value_leaves_the_state_alone() {
    let mut r = rule("down", "oper_up == 0");
    r.for_ = Duration::from_secs(2);
    let mut h = Harness::new(vec![r]);
    let down = Some(link(false, None, 0));
    assert!(h.link(0.0, down).is_empty()); // pending since t0
    assert!(h.link(1.0, None).is_empty()); // unknown: not reset
    let fired = only(h.link(2.0, down));
    assert_eq!(fired.state, AlertState::Firing);
    // Firing, then unknown: not resolved.
    assert!(h.link(3.0, None).is_empty());
    assert_eq!(h.engine.firing().len(), 1);
    assert_eq!(
        only(h.link(4.0, Some(link(true, None, 0)))).state,
        AlertState::Resolved
    );
}

#[test]
fn a_column_the_source_lacks_is_unavailable_not_zero() {
    let mut engine = Engine::new(vec![rule("crc", "increase(rx_crc[5s]) > 3")]);
    let start = Instant::now();
    let mut out = Vec::new();
    for (s, crc) in [(0, 0), (1, 100), (2, 200)] {
        let counters = row(Metric::RxCrc, crc);
        engine.observe(
            start + secs(f64::from(s)),
            [Observation {
                name: "eth0",
                counters: &counters,
                columns: Columns::PROC_NET_DEV,
                link: None,
            }],
            &mut out,
        );
    }
    assert!(out.is_empty(), "{out:?}");
    // Once the source supplies the column, the first reading is a
    // baseline, not a jump from zero.
    for (s, crc) in [(3, 1_000), (4, 1_002), (5, 1_010)] {
        let counters = row(Metric::RxCrc, crc);
        engine.observe(
            start + secs(f64::from(s)),
            [Observation {
                name: "eth0",
                counters: &counters,
                columns: Columns::ALL,
                link: None,
            }],
            &mut out,
        );
    }
    let alert = only(out);
    assert_eq!(alert.value, Some(10.0));
}

#[test]
fn a_rule_on_a_column_a_row_lacks_is_unavailable_there() {
    let mut engine = Engine::new(vec![rule("tx", "increase(tx_errors[5s]) > 3")]);
    let start = Instant::now();
    let traffic_only = Columns::NONE.with(Metric::RxBytes).with(Metric::TxBytes);
    let mut tick = |s: u64, eth_columns: Columns, errors: u64| {
        let mut out = Vec::new();
        let (eth, vlan) = (
            row(Metric::TxErrors, errors),
            row(Metric::TxErrors, errors * 7),
        );
        engine.observe(
            start + secs(s as f64),
            [
                Observation {
                    name: "Ethernet1/1",
                    counters: &eth,
                    columns: eth_columns,
                    link: None,
                },
                // An SVI's row carries no error counts; its zeros mean nothing.
                Observation {
                    name: "Vlan2001",
                    counters: &vlan,
                    columns: Columns::NONE.with(Metric::RxBytes),
                    link: None,
                },
            ],
            &mut out,
        );
        (out, engine.unavailable())
    };
    let (out, unavailable) = tick(0, Columns::ALL, 0);
    assert!(out.is_empty());
    assert_eq!(
        unavailable,
        [Unavailable {
            rule: "tx".into(),
            interface: "Vlan2001".into(),
            metrics: vec![Metric::TxErrors],
        }]
    );
    let (out, _) = tick(1, Columns::ALL, 10);
    let fired = only(out);
    assert_eq!(fired.interface, "Ethernet1/1", "never Vlan2001");
    // The errors read failed: the firing alert holds, neither resolved nor
    // re-evaluated, and is reported unavailable.
    let (out, unavailable) = tick(2, traffic_only, 0);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(engine_firing(&unavailable), ["Ethernet1/1", "Vlan2001"]);
    let (out, unavailable) = tick(8, Columns::ALL, 10);
    assert_eq!(engine_firing(&unavailable), ["Vlan2001"]);
    let resolved = only(out);
    assert_eq!(resolved.state, AlertState::Resolved);
    assert_eq!(resolved.value, Some(0.0));
}

#[test]
fn errors_counted_while_their_column_was_missing_are_not_lost() {
    let mut engine = Engine::new(vec![rule("tx", "increase(tx_errors[5s]) > 3")]);
    let start = Instant::now();
    let traffic_only = Columns::NONE.with(Metric::RxBytes);
    let mut out = Vec::new();
    // 0 errors, then two ticks whose errors read failed, then 9 errors.
    for (s, columns, errors) in [
        (0, Columns::ALL, 0),
        (1, traffic_only, 0),
        (2, traffic_only, 0),
        (3, Columns::ALL, 9),
    ] {
        let counters = row(Metric::TxErrors, errors);
        engine.observe(
            start + secs(f64::from(s)),
            [Observation {
                name: "Ethernet1/1",
                counters: &counters,
                columns,
                link: None,
            }],
            &mut out,
        );
    }
    let fired = only(out);
    assert_eq!(
        fired.value,
        Some(9.0),
        "the gap's errors count once it ends"
    );
}

fn engine_firing(unavailable: &[Unavailable]) -> Vec<&str> {
    unavailable.iter().map(|u| u.interface.as_str()).collect()
}

#[test]
fn an_unavailable_tick_does_not_fire_a_pending_alert() {
    let mut r = rule("down", "oper_up == 0");
    r.for_ = Duration::from_secs(2);
    let mut h = Harness::new(vec![r]);
    assert!(h.link(0.0, Some(link(false, None, 0))).is_empty());
    assert!(h.link(1.0, None).is_empty());
    assert!(h.link(2.0, None).is_empty());
    assert!(h.engine.firing().is_empty());
}

#[test]
fn utilisation_is_percent_of_link_speed() {
    let mut h = Harness::new(vec![rule("hot", "rx_util > 40")]);
    let gig = Some(link(true, Some(1000), 0));
    // First tick: no previous bytes, so no utilisation.
    assert!(
        h.tick(0.0, &[("eth0", row(Metric::RxBytes, 0), gig)])
            .is_empty()
    );
    // 62.5 MB in 1 s = 500 Mbit/s = 50 % of 1 Gbit/s.
    let fired = only(h.tick(1.0, &[("eth0", row(Metric::RxBytes, 62_500_000), gig)]));
    assert_eq!(fired.value, Some(50.0));
    assert_eq!(
        fired.message,
        "eth0 hot firing (critical): rx_util is 50 (threshold > 40)"
    );
    // 62.5 MB over 2 s is 25 %.
    let resolved = only(h.tick(3.0, &[("eth0", row(Metric::RxBytes, 125_000_000), gig)]));
    assert_eq!(resolved.value, Some(25.0));
    // No speed: unknown, stays resolved even with a burst.
    let no_speed = Some(link(true, None, 0));
    assert!(
        h.tick(
            4.0,
            &[("eth0", row(Metric::RxBytes, u64::MAX / 2), no_speed)]
        )
        .is_empty()
    );
}

#[test]
fn tx_util_reads_tx_bytes() {
    let mut h = Harness::new(vec![rule("hot", "avg(tx_util[2s]) >= 80")]);
    let ten_gig = Some(link(true, Some(10_000), 0));
    assert!(
        h.tick(0.0, &[("eth0", row(Metric::TxBytes, 0), ten_gig)])
            .is_empty()
    );
    // 1 GB in 1 s = 8 Gbit/s = 80 % of 10 Gbit/s.
    let fired = only(h.tick(
        1.0,
        &[("eth0", row(Metric::TxBytes, 1_000_000_000), ten_gig)],
    ));
    assert_eq!(fired.value, Some(80.0));
}

#[test]
fn carrier_changes_come_from_the_link() {
    let mut h = Harness::new(vec![rule("flap", "increase(carrier_changes[10s]) > 0")]);
    assert!(h.link(0.0, Some(link(true, None, 4))).is_empty());
    // A tick without link state in between: the next delta spans it.
    assert!(h.link(1.0, None).is_empty());
    let fired = only(h.link(2.0, Some(link(true, None, 6))));
    assert_eq!(fired.value, Some(2.0));
    assert_eq!(
        fired.message,
        "eth0 flap firing (critical): carrier_changes increased by 2 in 10s (threshold > 0)"
    );
}

#[test]
fn globs_are_resolved_once_per_interface() {
    let mut eth = rule("eth", "increase(tx_errors[5s]) > 0");
    eth.interfaces = InterfaceMatcher::new(&["eth*", "!eth9"]).unwrap();
    let all = rule("all", "increase(tx_errors[5s]) > 100");
    let mut h = Harness::new(vec![eth, all]);
    let names = ["eth0", "eth9", "lo"];
    for s in 0..10u64 {
        let ifaces: Vec<_> = names
            .iter()
            .map(|n| (*n, row(Metric::TxErrors, s), None))
            .collect();
        let out = h.tick(s as f64, &ifaces);
        if s == 1 {
            let fired = only(out);
            assert_eq!(
                (fired.rule.as_str(), fired.interface.as_str()),
                ("eth", "eth0")
            );
        }
    }
    // 3 interfaces × 2 rules, once, although 10 ticks passed.
    assert_eq!(h.engine.glob_checks, 6);
    let rules_of = |name: &str| -> Vec<usize> {
        h.engine.interfaces[h.engine.index[name]]
            .states
            .iter()
            .map(|s| s.rule)
            .collect()
    };
    assert_eq!(rules_of("eth0"), [0, 1]);
    assert_eq!(rules_of("eth9"), [1]);
    assert_eq!(rules_of("lo"), [1]);
}

#[test]
fn reconfigure_keeps_unchanged_rules_and_resolves_the_rest() {
    let rules = vec![
        rule("kept", "increase(tx_errors[5s]) > 0"),
        rule("changed", "increase(tx_errors[5s]) > 0"),
        rule("removed", "increase(tx_errors[5s]) > 0"),
    ];
    let mut h = Harness::new(rules);
    assert!(h.counter(0.0, Metric::TxErrors, 0).is_empty());
    assert_eq!(h.counter(1.0, Metric::TxErrors, 1).len(), 3);
    let mut out = Vec::new();
    h.engine.reconfigure(
        vec![
            rule("added", "increase(tx_errors[5s]) > 0"),
            rule("changed", "increase(tx_errors[5s]) > 1"),
            rule("kept", "increase(tx_errors[5s]) > 0"),
        ],
        &mut out,
    );
    let messages: Vec<_> = out.iter().map(|a| (a.value, a.message.as_str())).collect();
    assert_eq!(
        messages,
        [
            (
                None,
                "eth0 changed resolved (critical): rule changed by a reload"
            ),
            (
                None,
                "eth0 removed resolved (critical): rule removed by a reload"
            ),
        ]
    );
    assert!(out.iter().all(|a| a.state == AlertState::Resolved));
    let firing = h.engine.firing();
    assert_eq!(firing.len(), 1);
    assert_eq!(
        (firing[0].rule.as_str(), firing[0].since),
        ("kept", h.at(1.0))
    );
    assert_eq!(h.engine.rules().len(), 3);
    // Next tick: "kept" does not fire again; the new and changed rules
    // start without history, so the +1 of t1 does not count for them.
    assert!(h.counter(2.0, Metric::TxErrors, 1).is_empty());
    let fired = h.counter(3.0, Metric::TxErrors, 3);
    let rules: Vec<_> = fired.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(rules, ["added", "changed"]);
    assert_eq!(h.engine.firing().len(), 3);
}

#[test]
fn reconfigure_matches_new_rules_against_known_interfaces() {
    let mut h = Harness::new(vec![rule("a", "oper_up == 0")]);
    assert!(h.link(0.0, Some(link(true, None, 0))).is_empty());
    let mut swp = rule("swp", "oper_up == 1");
    swp.interfaces = InterfaceMatcher::new(&["swp*"]).unwrap();
    let mut eth = rule("eth", "oper_up == 1");
    eth.interfaces = InterfaceMatcher::new(&["eth*"]).unwrap();
    let mut out = Vec::new();
    h.engine
        .reconfigure(vec![rule("a", "oper_up == 0"), swp, eth], &mut out);
    assert!(out.is_empty());
    let fired = only(h.link(1.0, Some(link(true, None, 0))));
    assert_eq!(fired.rule, "eth");
}

#[test]
fn firing_lists_rule_interface_severity_and_latest_value() {
    let mut r = rule("e", "increase(tx_errors[5s]) > 0");
    r.severity = Severity::Warning;
    let mut h = Harness::new(vec![r]);
    assert!(h.counter(0.0, Metric::TxErrors, 0).is_empty());
    assert_eq!(h.counter(1.0, Metric::TxErrors, 2).len(), 1);
    assert!(h.counter(2.0, Metric::TxErrors, 5).is_empty());
    assert_eq!(
        h.engine.firing(),
        [FiringAlert {
            rule: "e".into(),
            interface: "eth0".into(),
            severity: Severity::Warning,
            since: h.at(1.0),
            value: 5.0,
        }]
    );
}

#[test]
fn a_name_listed_twice_in_one_tick_counts_once() {
    let mut h = Harness::new(vec![rule("e", "increase(tx_errors[5s]) > 3")]);
    assert!(h.counter(0.0, Metric::TxErrors, 0).is_empty());
    // Were the second entry evaluated, it would read as a reset to 0 and
    // the +3 at t2 would make 5.
    let twice = [
        ("eth0", row(Metric::TxErrors, 2), None),
        ("eth0", row(Metric::TxErrors, 0), None),
    ];
    assert!(h.tick(1.0, &twice).is_empty());
    assert!(h.counter(2.0, Metric::TxErrors, 3).is_empty());
}

#[test]
fn sub_second_windows() {
    let mut h = Harness::new(vec![rule("e", "increase(tx_errors[500ms]) > 1")]);
    assert!(h.counter(0.0, Metric::TxErrors, 0).is_empty());
    assert!(h.counter(0.25, Metric::TxErrors, 1).is_empty());
    assert_eq!(only(h.counter(0.5, Metric::TxErrors, 2)).value, Some(2.0));
    // (0.25, 0.75]: only the +1 of t0.5.
    let resolved = only(h.counter(0.75, Metric::TxErrors, 2));
    assert_eq!(resolved.value, Some(1.0));
    assert_eq!(
        resolved.message,
        "eth0 e resolved (critical): tx_errors increased by 1 in 500ms"
    );
}

#[test]
fn numbers_read_as_a_person_writes_them() {
    assert_eq!(number(7.0), "7");
    assert_eq!(number(93.5), "93.5");
    assert_eq!(number(93.456), "93.46");
    assert_eq!(number(1_250_000.0), "1250000");
    assert_eq!(number(0.001), "0");
    assert_eq!(number(-0.0), "0");
    assert_eq!(number(-2.5), "-2.5");
    assert_eq!(number(100.0), "100");
}

#[test]
fn scale_20_rules_500_interfaces_120_ticks_stays_bounded() {
    let funcs = ["increase", "rate", "avg", "min", "max"];
    let metrics = ["tx_errors", "rx_bytes", "rx_dropped", "tx_packets"];
    let mut rules: Vec<Rule> = (0..20)
        .map(|i| {
            let when = format!(
                "{}({}[{}s]) > {}",
                funcs[i % funcs.len()],
                metrics[i % metrics.len()],
                1 + i % 10,
                i * 1000
            );
            let mut r = rule(&format!("r{i}"), &when);
            if i % 3 == 0 {
                r.clear_when = Some(parse(&format!("avg(rx_util[{}s]) < 50", 1 + i)).unwrap());
            }
            r
        })
        .collect();
    rules.push(rule("down", "oper_up == 0"));
    let mut h = Harness::new(rules);
    let names: Vec<String> = (0..500).map(|i| format!("Eth1-{i}")).collect();
    let mut rows = vec![[0u64; COUNTER_COLUMNS]; names.len()];
    let links: Vec<LinkState> = (0..names.len())
        .map(|i| link(i % 50 != 0, Some(10_000), 0))
        .collect();
    let longest = 20 + 2;
    let mut out = Vec::new();
    let mut fired = 0;
    for s in 0..120u64 {
        for (i, row) in rows.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v += (i as u64 * 31 + c as u64 * 7 + s * 13) % 4000;
            }
        }
        out.clear();
        h.engine.observe(
            h.t0 + Duration::from_secs(s),
            names
                .iter()
                .zip(&rows)
                .zip(&links)
                .map(|((name, counters), link)| Observation {
                    name,
                    counters,
                    columns: Columns::ALL,
                    link: Some(link),
                }),
            &mut out,
        );
        fired += out.iter().filter(|a| a.state == AlertState::Firing).count();
        for state in h.engine.interfaces.iter().flat_map(|i| &i.states) {
            let plan = &h.engine.plans[state.rule];
            for (window, leaf) in state.windows().zip(&plan.leaves) {
                assert!(window.len() <= leaf.window.as_secs() as usize + 2);
            }
        }
    }
    assert!(h.max_buffer() <= longest);
    assert_eq!(h.engine.interface_count(), 500);
    assert!(fired > 0);
    // Every fiftieth interface is down: the bare-metric rule fires on those 10.
    assert_eq!(
        h.engine
            .firing()
            .iter()
            .filter(|f| f.rule == "down")
            .count(),
        10
    );
    assert_eq!(h.engine.glob_checks, 500 * 21);
}
