//! The window functions, each against a brute-force evaluation and by hand,
//! and proof that skipping quiet states changes no result.

use super::*;

#[test]
fn increase_sums_the_deltas_inside_the_window() {
    let mut h = Harness::new(vec![rule("tx-errors", "increase(tx_errors[5s]) > 3")]);
    // 0 at t0, then +2 +1 +1: the increase over the partial window is 4.
    assert!(h.counter(0.0, Metric::TxErrors, 0).is_empty());
    assert!(h.counter(1.0, Metric::TxErrors, 2).is_empty());
    assert!(h.counter(2.0, Metric::TxErrors, 3).is_empty());
    let fired = only(h.counter(3.0, Metric::TxErrors, 4));
    assert_eq!(fired.state, AlertState::Firing);
    assert_eq!(fired.rule, "tx-errors");
    assert_eq!(fired.interface, "eth0");
    assert_eq!(fired.severity, Severity::Critical);
    assert_eq!(fired.expr, "increase(tx_errors[5s]) > 3");
    assert_eq!(fired.value, Some(4.0));
    assert_eq!(fired.threshold, 3.0);
    assert_eq!(
        fired.message,
        "eth0 tx-errors firing (critical): tx_errors increased by 4 in 5s (threshold > 3)"
    );
    // At t5 the window (0, 5] still holds the +2 of t1: 4, firing.
    assert!(h.counter(4.0, Metric::TxErrors, 4).is_empty());
    assert!(h.counter(5.0, Metric::TxErrors, 4).is_empty());
    // At t6 the window is (1, 6]: the +2 has left, 2 remains.
    let resolved = only(h.counter(6.0, Metric::TxErrors, 4));
    assert_eq!(resolved.state, AlertState::Resolved);
    assert_eq!(resolved.value, Some(2.0));
    assert_eq!(
        resolved.message,
        "eth0 tx-errors resolved (critical): tx_errors increased by 2 in 5s"
    );
}

#[test]
fn rate_divides_by_the_time_covered() {
    let mut h = Harness::new(vec![rule("rx", "rate(rx_bytes[10s]) > 1000000")]);
    assert!(h.counter(0.0, Metric::RxBytes, 0).is_empty());
    // 2.5 MB over the first 2 s: 1.25 MB/s, not 2.5e6/10.
    assert!(h.counter(1.0, Metric::RxBytes, 500_000).is_empty());
    let fired = only(h.counter(2.0, Metric::RxBytes, 2_500_000));
    assert_eq!(fired.value, Some(1_250_000.0));
    assert_eq!(
        fired.message,
        "eth0 rx firing (critical): rx_bytes rate 1250000/s over 10s (threshold > 1000000)"
    );
    // Nothing more: at t3 the same 2.5 MB over 3 s is 833333.33/s.
    let resolved = only(h.counter(3.0, Metric::RxBytes, 2_500_000));
    assert_eq!(resolved.value, Some(2_500_000.0 / 3.0));
    assert_eq!(
        resolved.message,
        "eth0 rx resolved (critical): rx_bytes rate 833333.33/s over 10s"
    );
}

#[test]
fn rate_over_a_full_window_uses_the_window() {
    let mut h = Harness::new(vec![rule("rx", "rate(rx_bytes[4s]) >= 100")]);
    for s in 0..10 {
        assert!(h.counter(s as f64, Metric::RxBytes, s * 50).is_empty());
    }
    // t10: window (6, 10] holds 4 deltas: +50 +50 +50 +450 = 600 / 4 s.
    let fired = only(h.counter(10.0, Metric::RxBytes, 900));
    assert_eq!(fired.value, Some(150.0));
}

#[test]
fn avg_over_a_partial_then_full_window() {
    let mut rule = rule("down", "avg(oper_up[3s]) < 0.5");
    rule.clear_when = Some(parse("avg(oper_up[3s]) == 1").unwrap());
    let mut h = Harness::new(vec![rule]);
    let up = Some(link(true, None, 0));
    let down = Some(link(false, None, 0));
    assert!(h.link(0.0, up).is_empty()); // avg 1
    assert!(h.link(1.0, down).is_empty()); // avg 0.5, not < 0.5
    let fired = only(h.link(2.0, down)); // avg 1/3
    assert_eq!(fired.value, Some(1.0 / 3.0));
    assert_eq!(
        fired.message,
        "eth0 down firing (critical): oper_up averaged 0.33 over 3s (threshold < 0.5)"
    );
    assert!(h.link(3.0, up).is_empty()); // (0, 3]: 0, 0, 1
    assert!(h.link(4.0, up).is_empty()); // 0, 1, 1
    let resolved = only(h.link(5.0, up)); // 1, 1, 1
    assert_eq!(resolved.value, Some(1.0));
    assert_eq!(resolved.expr, "avg(oper_up[3s]) == 1");
    assert_eq!(
        resolved.message,
        "eth0 down resolved (critical): oper_up averaged 1 over 3s"
    );
}

#[test]
fn min_and_max_slide_with_the_window() {
    let mut h = Harness::new(vec![
        rule("slow", "min(speed_mbps[3s]) < 5000"),
        rule("fast", "max(speed_mbps[3s]) > 20000"),
    ]);
    let speed = |s| Some(link(true, Some(s), 0));
    assert!(h.link(0.0, speed(10_000)).is_empty());
    let fired = only(h.link(1.0, speed(1_000)));
    assert_eq!((fired.rule.as_str(), fired.value), ("slow", Some(1000.0)));
    assert_eq!(
        fired.message,
        "eth0 slow firing (critical): speed_mbps bottomed at 1000 over 3s (threshold < 5000)"
    );
    let fired = only(h.link(2.0, speed(40_000)));
    assert_eq!((fired.rule.as_str(), fired.value), ("fast", Some(40000.0)));
    assert_eq!(
        fired.message,
        "eth0 fast firing (critical): speed_mbps peaked at 40000 over 3s (threshold > 20000)"
    );
    assert!(h.link(3.0, speed(10_000)).is_empty()); // (0, 3]: 1000 still in
    let resolved = only(h.link(4.0, speed(10_000))); // (1, 4]: 40000, 10000, 10000
    assert_eq!(
        (resolved.rule.as_str(), resolved.value),
        ("slow", Some(10000.0))
    );
    let resolved = only(h.link(5.0, speed(10_000))); // (2, 5]: 40000 has left
    assert_eq!(resolved.rule, "fast");
    assert_eq!(resolved.value, Some(10000.0));
}

/// A reproducible stream of pseudo-random numbers for the brute-force
/// comparisons.
pub(super) struct Lcg(pub(super) u64);

impl Lcg {
    pub(super) fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// One tick of a window test: its time and its sample, if any.
type Point = (Nanos, Option<Sample>);

/// The window functions, computed directly over the samples in
/// `(now - span, now]`.
fn brute_force(func: Func, span: Nanos, history: &[Point]) -> Option<f64> {
    let &(now, latest) = history.last()?;
    latest?;
    let inside: Vec<Sample> = history
        .iter()
        .filter(|(t, _)| *t + span > now)
        .filter_map(|(_, s)| *s)
        .collect();
    let values = inside.iter().map(|s| s.value);
    Some(match func {
        Func::Avg => values.sum::<f64>() / inside.len() as f64,
        Func::Min => values.fold(f64::INFINITY, f64::min),
        Func::Max => values.fold(f64::NEG_INFINITY, f64::max),
        Func::Increase => inside.iter().map(|s| s.delta.unwrap() as f64).sum(),
        _ => unreachable!("not a window over samples"),
    })
}

/// The first tick (numbered from 1) inside `(now - span, now]`.
fn first_inside(history: &[Point], span: Nanos) -> Tick {
    let now = history.last().unwrap().0;
    history.iter().position(|(t, _)| *t + span > now).unwrap() as Tick + 1
}

/// Feeds one window a random walk: irregular ticks, values that sit
/// still for stretches, dips below the last value, missing samples.
/// With `skip`, a tick whose sample equals the previous one is not fed
/// while the window is steady, as the engine skips quiet states, and
/// the skipped ticks are caught up on the next update.
fn walk_window(func: &str, skip: bool) {
    let span: Nanos = 2_500_000_000;
    let cond = parse(&format!("{func}(rx_bytes[2500ms]) > 0")).unwrap();
    let leaf = cond.leaves[0];
    let mut window = Window::new(&leaf);
    let mut history: Vec<Point> = Vec::new();
    let mut rng = Lcg(7);
    let mut at: Nanos = 1_000_000_000;
    let mut counter = 1000u64;
    let mut last: Option<Reading> = None;
    let mut stepped: Tick = 0;
    let mut skipped = 0;
    for i in 0..2000 {
        at += (200 + rng.next(900)) * 1_000_000;
        let before = history.last().and_then(|(_, s)| *s);
        let sample = match rng.next(10) {
            0 => None,
            1..=5 => before.map(|s| Sample {
                value: s.value,
                delta: Some(0),
            }),
            6 => Some(Sample {
                value: counter as f64 - 95.0,
                delta: Some(0),
            }),
            _ => {
                let delta = 1 + rng.next(100);
                counter += delta;
                Some(Sample {
                    value: counter as f64,
                    delta: Some(delta),
                })
            }
        };
        history.push((at, sample));
        let tick = history.len() as Tick;
        let expect = brute_force(leaf.func, span, &history);
        let unchanged = match (before, sample) {
            (None, None) => history.len() > 1,
            (Some(a), Some(b)) => a.value == b.value && b.delta == Some(0),
            _ => false,
        };
        if skip && unchanged && last.is_some_and(|r| r.steady) {
            skipped += 1;
            let got = last.unwrap().value;
            assert_eq!(got, expect, "{func} skipped at {i}");
            continue;
        }
        if stepped != 0 && stepped + 1 < tick {
            window.catch_up(stepped, tick - 1);
        }
        stepped = tick;
        let reading = window.update(tick, first_inside(&history, span), span, sample);
        last = Some(reading);
        match (reading.value, expect) {
            (Some(got), Some(expect)) => assert!(
                (got - expect).abs() < 1e-6,
                "{func} at {i}: {got} vs {expect}"
            ),
            (got, expect) => assert_eq!(got, expect, "{func} at {i}"),
        }
        let inside = history
            .iter()
            .filter(|(t, s)| *t + span > at && s.is_some())
            .count();
        assert!(sample.is_none() || window.len() <= inside);
    }
    assert!(
        !skip || skipped > 100,
        "{func}: only {skipped} ticks skipped"
    );
}

#[test]
fn windows_match_a_brute_force_evaluation() {
    for func in ["avg", "min", "max", "increase"] {
        walk_window(func, false);
    }
}

#[test]
fn skipped_ticks_match_a_brute_force_evaluation() {
    for func in ["avg", "min", "max", "increase"] {
        walk_window(func, true);
    }
}

#[test]
fn a_constant_value_takes_one_entry() {
    let mut h = Harness::new(vec![
        rule("a", "avg(speed_mbps[60s]) < 1000"),
        rule("m", "min(speed_mbps[60s]) < 1000"),
        rule("x", "max(speed_mbps[60s]) > 100000"),
        rule("i", "increase(tx_errors[60s]) > 0"),
    ]);
    for s in 0..100 {
        let out = h.tick(
            s as f64,
            &[(
                "eth0",
                row(Metric::TxErrors, 5),
                Some(link(true, Some(10_000), 0)),
            )],
        );
        assert!(out.is_empty());
    }
    assert_eq!(h.max_buffer(), 1);
}

/// Two engines, one stepping every state every tick, fed the same
/// random ticks: skipping quiet states must not change a single alert,
/// value or `since`.
#[test]
fn skipping_quiet_states_changes_nothing() {
    let texts = [
        ("inc", "increase(tx_errors[5s]) > 3", None, 0),
        (
            "rate",
            "rate(rx_bytes[3s]) > 400",
            Some("rate(rx_bytes[10s]) < 100"),
            0,
        ),
        (
            "avg",
            "avg(rx_util[4s]) > 0.000001",
            Some("avg(rx_util[8s]) == 0"),
            0,
        ),
        ("min", "min(speed_mbps[5s]) < 1000", None, 2),
        ("max", "max(oper_up[3s]) == 0", None, 0),
        ("up", "oper_up == 0", None, 3),
        (
            "flap",
            "increase(carrier_changes[6s]) >= 2",
            Some("increase(carrier_changes[6s]) == 0"),
            0,
        ),
        ("drop", "rx_dropped > 7", None, 1),
    ];
    let rules: Vec<Rule> = texts
        .iter()
        .map(|(name, when, clear, for_)| {
            let mut r = rule(name, when);
            r.clear_when = clear.map(|c| parse(c).unwrap());
            r.for_ = secs(*for_ as f64);
            r
        })
        .collect();
    let mut fast = Engine::new(rules.clone());
    let mut slow = Engine::new(rules);
    slow.skip_quiet = false;
    let t0 = Instant::now();
    let mut rng = Lcg(11);
    let names: Vec<String> = (0..12).map(|i| format!("eth{i}")).collect();
    let mut rows = vec![[0u64; COUNTER_COLUMNS]; names.len()];
    let mut links: Vec<Option<LinkState>> = vec![Some(link(true, Some(1000), 0)); names.len()];
    let mut at = Duration::ZERO;
    let mut fired = 0;
    for tick in 0..3000 {
        at += Duration::from_millis(500 + rng.next(1000));
        for (row, link) in rows.iter_mut().zip(&mut links) {
            // Mostly quiet, with bursts, flaps and missing link states.
            match rng.next(40) {
                0 => row[Metric::TxErrors as usize] += 1 + rng.next(3),
                1 => row[Metric::RxBytes as usize] += rng.next(5000),
                2 => row[Metric::RxDropped as usize] += rng.next(10),
                3 => row[Metric::TxErrors as usize] = 0,
                4 => *link = None,
                5 | 6 => {
                    let mut state = link.unwrap_or_else(|| super::link(true, Some(1000), 0));
                    state.carrier = !state.carrier;
                    state.oper = if state.carrier {
                        OperState::Up
                    } else {
                        OperState::Down
                    };
                    state.carrier_changes += 1;
                    state.speed_mbps = [None, Some(100), Some(1000)][rng.next(3) as usize];
                    *link = Some(state);
                }
                _ => {}
            }
        }
        // Now and then an interface is missing for a tick, and comes back new.
        let missing = rng.next(50) as usize;
        let ticked: Vec<Observation> = names
            .iter()
            .zip(&rows)
            .zip(&links)
            .enumerate()
            .filter(|(i, _)| *i != missing)
            .map(|(_, ((name, counters), link))| Observation {
                name,
                counters,
                columns: Columns::ALL,
                link: link.as_ref(),
            })
            .collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        fast.observe(t0 + at, ticked.iter().copied(), &mut a);
        slow.observe(t0 + at, ticked.iter().copied(), &mut b);
        assert_eq!(a, b, "tick {tick}");
        assert_eq!(fast.firing(), slow.firing(), "tick {tick}");
        fired += a.len();
    }
    assert!(
        fired > 100,
        "only {fired} alerts: the test exercises too little"
    );
}

/// What a 24 h window holds per interface at one tick a second, for the
/// README: nothing or one entry for a value that sits still, and at worst
/// (a value that moves every tick) one entry per tick, in a `VecDeque`
/// that doubles.
#[test]
fn a_day_long_window_costs_at_most_one_entry_per_tick() {
    const DAY: u64 = 86_400;
    let span: Nanos = DAY * 1_000_000_000;
    let mut figures = Vec::new();
    for func in [
        "increase(rx_bytes[24h])",
        "rate(rx_bytes[24h])",
        "avg(rx_util[24h])",
        "min(speed_mbps[24h])",
        "max(speed_mbps[24h])",
        "changes(speed_mbps[24h])",
        "flaps(24h)",
    ] {
        let cond = parse(&format!("{func} > 0")).unwrap();
        let leaf = cond.leaves[0];
        let (mut steady, mut busy) = (Window::new(&leaf), Window::new(&leaf));
        for tick in 1..=DAY + 100 {
            let first = tick.saturating_sub(DAY - 1).max(1);
            let still = Sample {
                value: 1000.0,
                delta: Some(0),
            };
            // Moving every tick the worst way for each kind: growing deltas,
            // new values, a falling value for `max`'s queue (rising for `min`).
            let moving = Sample {
                value: if func.starts_with("min") {
                    tick as f64
                } else {
                    (2 * DAY - tick) as f64
                },
                delta: Some(1 + tick % 7),
            };
            let moving = if func.starts_with("flaps") {
                Sample {
                    value: 1.0,
                    delta: Some(2),
                }
            } else {
                moving
            };
            steady.update(tick, first, span, Some(still));
            busy.update(tick, first, span, Some(moving));
        }
        assert!(steady.len() <= 1, "{func}: {}", steady.len());
        assert!(busy.len() as u64 <= DAY, "{func}: {}", busy.len());
        assert!(
            busy.len() as u64 >= DAY - 1,
            "{func}: the worst case was not reached"
        );
        figures.push((func, steady.heap_bytes(), busy.len(), busy.heap_bytes()));
    }
    for (func, steady, entries, bytes) in &figures {
        println!(
            "{func:<26} still: {steady:>6} B   moving every tick: {entries} entries, {:.2} MiB",
            *bytes as f64 / (1 << 20) as f64
        );
        assert!(*bytes <= 3 << 20, "{func}: {bytes} bytes");
    }
}
