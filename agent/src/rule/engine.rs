//! The rule engine: turns one tick of interface counters and link states into
//! alert state changes. It never reads a clock, so every window, `for` and
//! reload behaviour is tested with explicit [`Instant`]s.
//!
//! # Values
//!
//! Each tick every interface yields one value per metric:
//! - the counter columns from its counter row, and `carrier_changes` from its
//!   link state; all counters;
//! - `oper_up`: 1 when [`LinkState::is_up`], else 0; `speed_mbps` as reported;
//! - `rx_util`/`tx_util`: percent of link speed used since the previous tick,
//!   `delta_bytes * 8 / (seconds * speed_mbps * 1e6) * 100`.
//!
//! A value can be unavailable: a counter column the source did not supply, no
//! link state, no speed (or speed 0), the first tick of an interface for the
//! utilisations. A condition whose value is unavailable is not evaluated that
//! tick and the rule's state is left exactly as it was: nothing fires or
//! resolves, a pending `for` neither resets nor fires (its clock is the time
//! since the first tick that held).
//!
//! # Deltas
//!
//! Counter deltas between an interface's consecutive ticks are computed once
//! per tick and shared by all rules. They are never negative and never huge:
//! a counter that went down by less than 2^31 from a value that fits 32 bits
//! wrapped (delta = `cur + 2^32 - prev`); any other decrease is a reset and
//! the delta is the new value (the counter restarted from zero). The first
//! tick an interface is seen has no delta, so a new interface, a reload that
//! adds a rule or an agent restart never fires on history hopwatch did not see.
//!
//! # Windows
//!
//! Exact, no extrapolation. At time `now`, `[W]` covers the ticks at `t` with
//! `now - W < t <= now`: at one tick a second, `[5s]` is the last 5 intervals.
//! - `increase(m[W])`: the sum of those ticks' deltas;
//! - `rate(m[W])`: that sum divided by `min(W, now - first tick of this rule
//!   on this interface)` in seconds;
//! - `avg`, `min`, `max`: over the values sampled in the window (raw values
//!   for counters);
//! - a bare metric: its value this tick.
//!
//! A window not yet full is evaluated over what it holds. `increase` and
//! `rate` are unavailable on a rule's first tick on an interface (nothing to
//! measure yet) and on a tick without a delta.
//!
//! # Alerts
//!
//! Per rule and interface: when `when` holds, the alert fires at once if `for`
//! is zero, else it goes pending and fires on the first tick at which `when`
//! has held on every evaluated tick for at least `for`; a tick where it does
//! not hold drops the pending state. A firing alert resolves when
//! `clear_when` holds, or without one when `when` stops holding. Each change
//! is one [`Alert`] carrying the deciding expression, its value and threshold.
//! An interface missing from a tick has vanished: its firing alerts resolve
//! (value null) and its history is dropped; if it returns, it is new.
//!
//! # Cost
//!
//! Interface globs are matched once, when an interface is first seen (and
//! again for new rules at a reload). Interfaces arrive in the same order tick
//! after tick, so each is found by comparing its name with the one seen at
//! the same position last tick; only a new order costs a hash lookup.
//!
//! Windows hold tick numbers, not times: the engine keeps the times of the
//! recent ticks once and finds, per rule and tick, the first tick inside each
//! window. `increase` and `rate` keep only the non-zero deltas and their sum;
//! `avg` keeps runs of equal values (value, first tick, last tick) and a
//! running sum; `min` and `max` keep a monotonic queue in which equal values
//! merge. So a window over a value that sits still, the usual case for error,
//! drop and link metrics, holds at most one entry, and a steady tick
//! allocates nothing.
//!
//! Most of a quiet switch's counters do not move from one tick to the next.
//! A (rule, interface) state whose windows sit at such a fixed point (nothing
//! left to expire, or a single run of the current value), and whose alert is
//! idle or firing (not pending, since `for` counts time), would come out of
//! a tick with the same inputs exactly as it went in. Such a state is
//! *quiet*, and a tick where none of the metrics it reads changed skips it;
//! an interface whose inputs all sit still and whose states are all quiet
//! costs a comparison of its counters. A skipped tick is owed to the windows
//! that held the unchanged value: the next step extends their last run or
//! entry to the tick before it, so every result is what stepping every tick
//! would give.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::Rule;
use super::expr::{Condition, Func};
use crate::event::{Alert, AlertState, Severity};
use crate::hash::{NameMap, ShortName};
use crate::link::LinkState;
use crate::metric::{COUNTER_COLUMNS, Columns, Metric, counter_delta};

const METRICS: usize = Metric::ALL.len();
/// Metrics that are not counter columns, kept after them in [`Metric`] order.
const DERIVED: usize = METRICS - COUNTER_COLUMNS;
/// One bit per metric, in [`Metric`] order.
type MetricSet = u32;
const ALL_METRICS: MetricSet = (1 << METRICS) - 1;
const _: () = assert!(METRICS <= MetricSet::BITS as usize);

/// One interface as seen this tick.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub name: &'a str,
    /// The counter columns, in [`Metric`] order.
    pub counters: &'a [u64; COUNTER_COLUMNS],
    /// The columns the source filled; the others are unavailable.
    pub columns: Columns,
    /// `None` when the link state is unknown this tick; the link metrics are
    /// then unavailable.
    pub link: Option<&'a LinkState>,
}

/// An alert that is firing now, for `hopwatch status`.
#[derive(Debug, Clone, PartialEq)]
pub struct FiringAlert {
    pub rule: String,
    pub interface: String,
    pub severity: Severity,
    /// The tick at which it fired.
    pub since: Instant,
    /// The `when` expression's value at the latest tick it could be computed.
    pub value: f64,
}

/// Evaluates rules tick by tick; see the module documentation.
#[derive(Debug)]
pub struct Engine {
    rules: Vec<Rule>,
    /// Per rule, its `when` and `clear_when` windows' reach this tick.
    reach: Vec<[Reach; 2]>,
    /// The longest window of any rule: older ticks are inside none.
    longest: Nanos,
    interfaces: Vec<Interface>,
    /// Where each interface is in `interfaces`.
    index: NameMap<usize>,
    /// The slot of the interface at each position of the previous tick's
    /// observations.
    order: Vec<usize>,
    /// Counts ticks, so an interface knows whether this tick listed it.
    tick: Tick,
    /// The first tick's time; times are kept as [`Nanos`] since then.
    epoch: Option<Instant>,
    recent: Recent,
    /// Whether quiet states are skipped; off only in the test that proves
    /// skipping changes nothing.
    skip_quiet: bool,
    /// How many (rule, interface) glob matches were made, to prove they are
    /// not repeated per tick.
    #[cfg(test)]
    glob_checks: usize,
}

/// An engine tick's number, counted from 1; 0 is never.
type Tick = u64;

/// Nanoseconds since the engine's first tick: half the size of an
/// [`Instant`], and windows are bound by memory traffic, not arithmetic.
type Nanos = u64;

/// This tick, in the forms the engine needs.
#[derive(Debug, Clone, Copy)]
struct Clock {
    now: Instant,
    stamp: Nanos,
    tick: Tick,
}

/// How far back one condition's window reaches this tick.
#[derive(Debug, Clone, Copy, Default)]
struct Reach {
    span: Nanos,
    /// The first tick inside the window.
    first: Tick,
}

/// The times of the ticks still inside some window, oldest first; their
/// numbers are consecutive.
#[derive(Debug, Default)]
struct Recent {
    /// The number of the tick at the front.
    first: Tick,
    stamps: VecDeque<Nanos>,
}

#[derive(Debug)]
struct Interface {
    short: ShortName,
    name: String,
    last_tick: Tick,
    prev: Option<Prev>,
    /// One per rule matching this interface, in rule order.
    states: Vec<RuleState>,
    /// How many of `states` are not quiet.
    busy: usize,
}

/// What the previous tick left behind: its counters for this tick's deltas,
/// and every metric's value to tell which changed.
#[derive(Debug, Clone, Copy)]
struct Prev {
    at: Instant,
    counters: [u64; COUNTER_COLUMNS],
    columns: Columns,
    /// The last known value: a tick without link state keeps the one before,
    /// so the next delta spans the gap instead of being lost.
    carrier_changes: Option<u64>,
    /// The metrics that had a value.
    available: MetricSet,
    /// The values of the metrics after the counter columns, as bits.
    derived: [u64; DERIVED],
}

/// One metric's value this tick.
#[derive(Debug, Clone, Copy)]
struct Sample {
    value: f64,
    /// Counters only, and not on an interface's first tick.
    delta: Option<u64>,
}

type Samples = [Option<Sample>; METRICS];

/// One rule on one interface. There are thousands (every rule times every
/// interface it matches), so it is kept small: few rules have a
/// `clear_when`, and its window lives behind a pointer.
#[derive(Debug)]
struct RuleState {
    /// The time of the first tick this rule evaluated this interface, once
    /// `stepped` is set; a reload creates states between ticks.
    start: Nanos,
    /// The tick of the latest step, 0 before the first; ticks after it were
    /// skipped.
    stepped: Tick,
    rule: usize,
    /// The metrics `when` and `clear_when` read.
    reads: MetricSet,
    /// Whether a tick with the latest step's inputs would change nothing.
    quiet: bool,
    when: Window,
    clear: Option<Box<Window>>,
    phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    Pending { since: Instant },
    Firing { since: Instant, value: f64 },
}

/// The state one condition keeps between ticks.
#[derive(Debug)]
enum Window {
    Latest,
    /// `increase` and `rate`: the non-zero deltas inside the window and
    /// their exact sum (a u64 holds 400 Gb/s of bytes for over a year).
    Sum {
        per_second: bool,
        entries: VecDeque<(Tick, u64)>,
        sum: u64,
    },
    /// `avg`: runs of equal values inside the window. The last run is open
    /// (it may go on next tick); the others are closed, and their running
    /// sum and tick count are kept, the sum recomputed exactly once per
    /// window's worth of closed runs so float error cannot build up over
    /// days. Extending the open run touches neither, so a skipped tick's
    /// catch-up does the same arithmetic as stepping it would.
    Avg {
        runs: VecDeque<Run>,
        closed_sum: f64,
        closed_ticks: u64,
        closes: usize,
    },
    /// `min`/`max`: a monotonic queue; the front is the answer, and a value
    /// that can never be the answer again (an older one beaten or equalled
    /// by a newer) is dropped on arrival.
    Extreme {
        max: bool,
        entries: VecDeque<(Tick, f64)>,
    },
}

/// One value held on consecutive ticks `first..=last`.
#[derive(Debug, Clone, Copy)]
struct Run {
    value: f64,
    first: Tick,
    last: Tick,
}

impl Run {
    fn ticks(&self) -> u64 {
        self.last - self.first + 1
    }
}

/// What one window made of one tick.
#[derive(Debug, Clone, Copy)]
struct Reading {
    /// The condition's left-hand value, `None` when it cannot be computed.
    value: Option<f64>,
    /// Whether the same input next tick would leave the window as it is and
    /// give the same value.
    steady: bool,
}

impl Engine {
    pub fn new(rules: Vec<Rule>) -> Engine {
        let mut engine = Engine {
            rules: Vec::new(),
            reach: Vec::new(),
            longest: 0,
            interfaces: Vec::new(),
            index: HashMap::default(),
            order: Vec::new(),
            tick: 0,
            epoch: None,
            recent: Recent::default(),
            skip_quiet: true,
            #[cfg(test)]
            glob_checks: 0,
        };
        engine.set_rules(rules);
        engine
    }

    fn set_rules(&mut self, rules: Vec<Rule>) {
        self.reach = rules
            .iter()
            .map(|rule| {
                let span = |cond: Option<&Condition>| Reach {
                    span: cond.map_or(0, |c| nanos(c.window)),
                    first: 0,
                };
                [span(Some(&rule.when)), span(rule.clear_when.as_ref())]
            })
            .collect();
        self.longest = self
            .reach
            .iter()
            .flatten()
            .map(|r| r.span)
            .max()
            .unwrap_or(0);
        self.rules = rules;
    }

    /// One tick: every interface present now. Appends state changes to `out`.
    /// An interface listed twice in one tick is evaluated once.
    pub fn observe<'a>(
        &mut self,
        now: Instant,
        interfaces: impl IntoIterator<Item = Observation<'a>>,
        out: &mut Vec<Alert>,
    ) {
        self.tick += 1;
        let tick = self.tick;
        let epoch = *self.epoch.get_or_insert(now);
        let clock = Clock {
            now,
            stamp: nanos(now.saturating_duration_since(epoch)),
            tick,
        };
        self.recent.push(tick, clock.stamp, self.longest);
        for reach in self.reach.iter_mut().flatten() {
            reach.first = self.recent.first_inside(clock.stamp, reach.span);
        }
        let mut seen = 0;
        for (position, obs) in interfaces.into_iter().enumerate() {
            let slot = self.slot(position, obs.name);
            let iface = &mut self.interfaces[slot];
            if iface.last_tick == tick {
                continue;
            }
            iface.last_tick = tick;
            seen += 1;
            iface.observe(&self.rules, &self.reach, clock, &obs, self.skip_quiet, out);
        }
        if seen < self.interfaces.len() {
            self.drop_vanished(tick, out);
        }
    }

    /// Where the interface at `position` of this tick's observations lives,
    /// adding it when it is new.
    fn slot(&mut self, position: usize, name: &str) -> usize {
        if let Some(&slot) = self.order.get(position)
            && self
                .interfaces
                .get(slot)
                .is_some_and(|i| i.short.is(&i.name, name))
        {
            return slot;
        }
        let slot = match self.index.get(name) {
            Some(&slot) => slot,
            None => {
                let states = self.match_rules(name);
                let slot = self.interfaces.len();
                self.interfaces.push(Interface::new(name, states));
                self.index.insert(name.to_string(), slot);
                slot
            }
        };
        match self.order.get_mut(position) {
            Some(at) => *at = slot,
            None => self.order.push(slot),
        }
        slot
    }

    /// SIGHUP: rules unchanged (same name and equal definition) keep their
    /// state and firing alerts; firing alerts of removed or changed rules are
    /// resolved (value null), and changed or new rules start without history.
    pub fn reconfigure(&mut self, rules: Vec<Rule>, out: &mut Vec<Alert>) {
        // For each new rule, the old rule it continues, if any.
        let mut continues: Vec<Option<usize>> = vec![None; rules.len()];
        let mut kept: Vec<Option<usize>> = vec![None; self.rules.len()];
        for (old_index, old) in self.rules.iter().enumerate() {
            let found = rules
                .iter()
                .enumerate()
                .position(|(j, new)| continues[j].is_none() && new == old);
            if let Some(new_index) = found {
                continues[new_index] = Some(old_index);
                kept[old_index] = Some(new_index);
            }
        }

        let mut slots: Vec<usize> = (0..self.interfaces.len()).collect();
        slots.sort_unstable_by(|&a, &b| self.interfaces[a].name.cmp(&self.interfaces[b].name));
        for slot in slots {
            let iface = &mut self.interfaces[slot];
            let name = iface.name.as_str();
            let old_states = std::mem::take(&mut iface.states);
            let mut carried: Vec<(usize, RuleState)> = Vec::new();
            for mut state in old_states {
                match kept[state.rule] {
                    Some(new_index) => {
                        state.rule = new_index;
                        carried.push((new_index, state));
                    }
                    None => {
                        let rule = &self.rules[state.rule];
                        if matches!(state.phase, Phase::Firing { .. }) {
                            let reason = if rules.iter().any(|r| r.name == rule.name) {
                                "rule changed by a reload"
                            } else {
                                "rule removed by a reload"
                            };
                            out.push(alert(
                                AlertState::Resolved,
                                rule,
                                name,
                                &rule.when,
                                None,
                                reason.to_string(),
                            ));
                        }
                    }
                }
            }
            let fresh = continues.iter().filter(|c| c.is_none()).count();
            #[cfg(test)]
            {
                self.glob_checks += fresh;
            }
            let mut states = Vec::with_capacity(carried.len() + fresh);
            for (new_index, rule) in rules.iter().enumerate() {
                if continues[new_index].is_some() {
                    // An unchanged rule matches exactly where it did before.
                    if let Some(at) = carried.iter().position(|(j, _)| *j == new_index) {
                        states.push(carried.swap_remove(at).1);
                    }
                } else if rule.interfaces.matches(name) {
                    states.push(RuleState::new(new_index, rule));
                }
            }
            states.shrink_to_fit();
            iface.busy = states.iter().filter(|s| !s.quiet).count();
            iface.states = states;
        }
        self.set_rules(rules);
    }

    /// Every alert firing now, ordered by rule then interface.
    pub fn firing(&self) -> Vec<FiringAlert> {
        let mut firing: Vec<FiringAlert> = self
            .interfaces
            .iter()
            .flat_map(|iface| {
                iface
                    .states
                    .iter()
                    .filter_map(move |state| match state.phase {
                        Phase::Firing { since, value } => {
                            let rule = &self.rules[state.rule];
                            Some(FiringAlert {
                                rule: rule.name.clone(),
                                interface: iface.name.clone(),
                                severity: rule.severity,
                                since,
                                value,
                            })
                        }
                        _ => None,
                    })
            })
            .collect();
        firing.sort_by(|a, b| (&a.rule, &a.interface).cmp(&(&b.rule, &b.interface)));
        firing
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Interfaces seen on the latest tick.
    pub fn interface_count(&self) -> usize {
        self.interfaces.len()
    }

    /// Fresh states for the rules whose globs match a new interface.
    fn match_rules(&mut self, name: &str) -> Vec<RuleState> {
        #[cfg(test)]
        {
            self.glob_checks += self.rules.len();
        }
        (0..self.rules.len())
            .filter(|&i| self.rules[i].interfaces.matches(name))
            .map(|i| RuleState::new(i, &self.rules[i]))
            .collect()
    }

    fn drop_vanished(&mut self, tick: Tick, out: &mut Vec<Alert>) {
        let mut gone: Vec<Interface> = Vec::new();
        let mut kept = Vec::with_capacity(self.interfaces.len());
        for iface in self.interfaces.drain(..) {
            if iface.last_tick == tick {
                kept.push(iface);
            } else {
                gone.push(iface);
            }
        }
        self.interfaces = kept;
        self.index.clear();
        for (slot, iface) in self.interfaces.iter().enumerate() {
            self.index.insert(iface.name.clone(), slot);
        }
        // Slots moved; the next tick rebuilds the order from the index.
        self.order.clear();
        gone.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        for iface in gone {
            for state in &iface.states {
                if matches!(state.phase, Phase::Firing { .. }) {
                    let rule = &self.rules[state.rule];
                    let name = &iface.name;
                    out.push(alert(
                        AlertState::Resolved,
                        rule,
                        name,
                        &rule.when,
                        None,
                        "interface vanished".to_string(),
                    ));
                }
            }
        }
    }
}

impl Recent {
    /// Adds the tick at `stamp` and forgets the ticks outside every window.
    fn push(&mut self, tick: Tick, stamp: Nanos, longest: Nanos) {
        if self.stamps.is_empty() {
            self.first = tick;
        }
        self.stamps.push_back(stamp);
        if let Some(cutoff) = stamp.checked_sub(longest) {
            while self.stamps.len() > 1 && self.stamps.front().is_some_and(|&t| t <= cutoff) {
                self.stamps.pop_front();
                self.first += 1;
            }
        }
    }

    /// The first tick inside a window of `span` ending at `now`: the ticks at
    /// `t` with `now - span < t`. Near the first tick nothing has left.
    fn first_inside(&self, now: Nanos, span: Nanos) -> Tick {
        match now.checked_sub(span) {
            None => 0,
            Some(cutoff) => self.first + self.stamps.partition_point(|&t| t <= cutoff) as Tick,
        }
    }
}

impl Interface {
    fn new(name: &str, states: Vec<RuleState>) -> Interface {
        Interface {
            short: ShortName::of(name),
            name: name.to_string(),
            last_tick: 0,
            prev: None,
            busy: states.len(),
            states,
        }
    }

    /// This interface's part of a tick.
    fn observe(
        &mut self,
        rules: &[Rule],
        reach: &[[Reach; 2]],
        clock: Clock,
        obs: &Observation<'_>,
        skip_quiet: bool,
        out: &mut Vec<Alert>,
    ) {
        let derived = derived(self.prev.as_ref(), clock.now, obs);
        let mut available: MetricSet = 0;
        for column in 0..COUNTER_COLUMNS {
            available |= MetricSet::from(obs.columns.has(column)) << column;
        }
        let mut bits = [0; DERIVED];
        for (slot, sample) in derived.iter().enumerate() {
            if let Some(sample) = sample {
                available |= 1 << (COUNTER_COLUMNS + slot);
                bits[slot] = sample.value.to_bits();
            }
        }
        let changed = match &self.prev {
            None => ALL_METRICS,
            Some(prev) => {
                let mut changed = available ^ prev.available;
                for (column, (now, before)) in obs.counters.iter().zip(&prev.counters).enumerate() {
                    changed |= MetricSet::from(now != before) << column;
                }
                for (slot, (now, before)) in bits.iter().zip(&prev.derived).enumerate() {
                    changed |= MetricSet::from(now != before) << (COUNTER_COLUMNS + slot);
                }
                changed
            }
        };
        // The counters, the link and what follows from them are as they
        // were; only the time moves on. A quiet interface with nothing
        // pending is done here, before the copy of its last sample below:
        // that copy is a `memcpy` call per interface in the static build.
        if changed == 0
            && self.busy == 0
            && skip_quiet
            && let Some(prev) = &mut self.prev
        {
            prev.at = clock.now;
            return;
        }
        let prev = self.prev;
        if let Some(prev) = &mut self.prev
            && changed == 0
        {
            prev.at = clock.now;
        } else {
            self.prev = Some(Prev {
                at: clock.now,
                counters: *obs.counters,
                columns: obs.columns,
                carrier_changes: obs
                    .link
                    .map(|l| l.carrier_changes)
                    .or(prev.and_then(|p| p.carrier_changes)),
                available,
                derived: bits,
            });
        }
        let samples = samples(prev.as_ref(), obs, &derived);
        let mut busy = 0;
        for state in &mut self.states {
            if skip_quiet && state.quiet && state.reads & changed == 0 {
                continue;
            }
            let rule = &rules[state.rule];
            state.step(rule, &self.name, clock, reach[state.rule], &samples, out);
            busy += usize::from(!state.quiet);
        }
        self.busy = busy;
    }
}

/// Every metric's value for one interface this tick: the counter columns',
/// then `derived`.
fn samples(
    prev: Option<&Prev>,
    obs: &Observation<'_>,
    derived: &[Option<Sample>; DERIVED],
) -> Samples {
    let mut samples: Samples = [None; METRICS];
    for (column, &value) in obs.counters.iter().enumerate() {
        if !obs.columns.has(column) {
            continue;
        }
        samples[column] = Some(Sample {
            value: value as f64,
            delta: prev
                .filter(|p| p.columns.has(column))
                .map(|p| counter_delta(p.counters[column], value)),
        });
    }
    samples[COUNTER_COLUMNS..].copy_from_slice(derived);
    samples
}

/// The values of the metrics after the counter columns, which come from the
/// link state and the byte counters' deltas.
fn derived(prev: Option<&Prev>, now: Instant, obs: &Observation<'_>) -> [Option<Sample>; DERIVED] {
    let mut derived = [None; DERIVED];
    let mut set = |metric: Metric, sample: Option<Sample>| {
        derived[metric as usize - COUNTER_COLUMNS] = sample;
    };
    let link = obs.link;
    set(
        Metric::CarrierChanges,
        link.map(|l| Sample {
            value: l.carrier_changes as f64,
            delta: prev
                .and_then(|p| p.carrier_changes)
                .map(|before| counter_delta(before, l.carrier_changes)),
        }),
    );
    set(
        Metric::OperUp,
        link.map(|l| gauge(if l.is_up() { 1.0 } else { 0.0 })),
    );
    let speed = link.and_then(|l| l.speed_mbps).filter(|&s| s > 0);
    set(Metric::SpeedMbps, speed.map(|s| gauge(s as f64)));
    if let (Some(prev), Some(speed)) = (prev, speed) {
        let seconds = now.saturating_duration_since(prev.at).as_secs_f64();
        if seconds > 0.0 {
            let capacity_bits = seconds * speed as f64 * 1e6;
            for (util, bytes) in [
                (Metric::RxUtil, Metric::RxBytes),
                (Metric::TxUtil, Metric::TxBytes),
            ] {
                let column = bytes as usize;
                let delta = (obs.columns.has(column) && prev.columns.has(column))
                    .then(|| counter_delta(prev.counters[column], obs.counters[column]));
                // Bits over capacity, as a percent; multiplied before dividing
                // so round numbers stay round.
                set(util, delta.map(|d| gauge(d as f64 * 800.0 / capacity_bits)));
            }
        }
    }
    derived
}

fn gauge(value: f64) -> Sample {
    Sample { value, delta: None }
}

impl RuleState {
    fn new(rule: usize, definition: &Rule) -> RuleState {
        let reads = definition
            .clear_when
            .iter()
            .fold(1 << definition.when.metric as usize, |set, c| {
                set | 1 << c.metric as usize
            });
        RuleState {
            start: 0,
            stepped: 0,
            rule,
            reads,
            quiet: false,
            when: Window::new(&definition.when),
            clear: definition
                .clear_when
                .as_ref()
                .map(|c| Box::new(Window::new(c))),
            phase: Phase::Idle,
        }
    }

    fn step(
        &mut self,
        rule: &Rule,
        interface: &str,
        clock: Clock,
        reach: [Reach; 2],
        samples: &Samples,
        out: &mut Vec<Alert>,
    ) {
        if self.stepped == 0 {
            self.start = clock.stamp;
        }
        let start = self.start;
        // The ticks skipped since the latest step had its inputs.
        if self.stepped != 0 && self.stepped + 1 < clock.tick {
            self.when.catch_up(self.stepped, clock.tick - 1);
            if let Some(window) = &mut self.clear {
                window.catch_up(self.stepped, clock.tick - 1);
            }
        }
        self.stepped = clock.tick;
        let elapsed = clock.stamp.saturating_sub(start);
        let when = self.when.update(
            clock.tick,
            reach[0].first,
            reach[0].span.min(elapsed),
            samples[rule.when.metric as usize],
        );
        // The clear window is fed every tick, not only while firing, so it
        // has its history when the alert fires.
        let clear = match (&mut self.clear, &rule.clear_when) {
            (Some(window), Some(cond)) => window.update(
                clock.tick,
                reach[1].first,
                reach[1].span.min(elapsed),
                samples[cond.metric as usize],
            ),
            _ => Reading {
                value: None,
                steady: true,
            },
        };
        let before = std::mem::discriminant(&self.phase);
        self.decide(rule, interface, clock.now, when.value, clear.value, out);
        self.quiet = when.steady
            && clear.steady
            && std::mem::discriminant(&self.phase) == before
            && !matches!(self.phase, Phase::Pending { .. });
    }

    /// Moves the alert on from this tick's values.
    fn decide(
        &mut self,
        rule: &Rule,
        interface: &str,
        now: Instant,
        when: Option<f64>,
        clear: Option<f64>,
        out: &mut Vec<Alert>,
    ) {
        match self.phase {
            Phase::Idle | Phase::Pending { .. } => {
                let Some(value) = when else { return };
                if !rule.when.holds(value) {
                    self.phase = Phase::Idle;
                    return;
                }
                let since = match self.phase {
                    Phase::Pending { since } => since,
                    _ => now,
                };
                if now.saturating_duration_since(since) < rule.for_ {
                    self.phase = Phase::Pending { since };
                    return;
                }
                self.phase = Phase::Firing { since: now, value };
                let detail = format!(
                    "{} (threshold {} {})",
                    describe(&rule.when, value),
                    rule.when.op,
                    number(rule.when.threshold)
                );
                out.push(alert(
                    AlertState::Firing,
                    rule,
                    interface,
                    &rule.when,
                    Some(value),
                    detail,
                ));
            }
            Phase::Firing { since, .. } => {
                let (cond, decided) = match &rule.clear_when {
                    Some(cond) => (cond, clear.map(|v| (v, cond.holds(v)))),
                    None => (&rule.when, when.map(|v| (v, !rule.when.holds(v)))),
                };
                match decided {
                    Some((value, true)) => {
                        self.phase = Phase::Idle;
                        let detail = describe(cond, value);
                        out.push(alert(
                            AlertState::Resolved,
                            rule,
                            interface,
                            cond,
                            Some(value),
                            detail,
                        ));
                    }
                    _ => {
                        if let Some(value) = when {
                            self.phase = Phase::Firing { since, value };
                        }
                    }
                }
            }
        }
    }
}

impl Window {
    fn new(cond: &Condition) -> Window {
        match cond.func {
            Func::Latest => Window::Latest,
            Func::Increase | Func::Rate => Window::Sum {
                per_second: cond.func == Func::Rate,
                entries: VecDeque::new(),
                sum: 0,
            },
            Func::Avg => Window::Avg {
                runs: VecDeque::new(),
                closed_sum: 0.0,
                closed_ticks: 0,
                closes: 0,
            },
            Func::Min | Func::Max => Window::Extreme {
                max: cond.func == Func::Max,
                entries: VecDeque::new(),
            },
        }
    }

    /// Accounts for skipped ticks `stepped + 1..=through`, which had the
    /// input of tick `stepped`: a run or entry holding that tick's value
    /// held it through them. Deltas were zero and add nothing.
    fn catch_up(&mut self, stepped: Tick, through: Tick) {
        match self {
            Window::Avg { runs, .. } => {
                if let Some(run) = runs.back_mut()
                    && run.last == stepped
                {
                    run.last = through;
                }
            }
            Window::Extreme { entries, .. } => {
                if let Some(back) = entries.back_mut()
                    && back.0 == stepped
                {
                    back.0 = through;
                }
            }
            Window::Latest | Window::Sum { .. } => {}
        }
    }

    /// Takes tick `now`'s sample, drops what is before tick `first`, and
    /// returns the condition's left-hand value. `covered` is the time the
    /// window spans so far, for `rate`.
    fn update(
        &mut self,
        now: Tick,
        first: Tick,
        covered: Nanos,
        sample: Option<Sample>,
    ) -> Reading {
        // An unavailable value leaves the window alone, and another tick
        // without one would too.
        let Some(sample) = sample else {
            return Reading {
                value: None,
                steady: true,
            };
        };
        match self {
            Window::Latest => Reading {
                value: Some(sample.value),
                steady: true,
            },
            Window::Sum {
                per_second,
                entries,
                sum,
            } => {
                let (true, Some(delta)) = (covered > 0, sample.delta) else {
                    return Reading {
                        value: None,
                        steady: false,
                    };
                };
                // Error, drop and carrier counters sit still nearly always;
                // a zero adds nothing to the sum, so it takes no entry and a
                // quiet interface's window stays empty.
                if delta > 0 {
                    entries.push_back((now, delta));
                    *sum = sum.wrapping_add(delta);
                }
                while let Some(&(t, d)) = entries.front() {
                    if t >= first {
                        break;
                    }
                    entries.pop_front();
                    // Wrapping, so the sum stays exact whenever the window's
                    // true total fits 64 bits, whatever the order of events.
                    *sum = sum.wrapping_sub(d);
                }
                let increase = *sum as f64;
                let value = if *per_second {
                    increase * 1e9 / covered as f64
                } else {
                    increase
                };
                Reading {
                    value: Some(value),
                    steady: entries.is_empty(),
                }
            }
            Window::Avg {
                runs,
                closed_sum,
                closed_ticks,
                closes,
            } => {
                let value = sample.value;
                match runs.back_mut() {
                    Some(run) if run.last + 1 == now && run.value.to_bits() == value.to_bits() => {
                        run.last = now;
                    }
                    _ => {
                        if let Some(run) = runs.back() {
                            *closed_sum += run.value * run.ticks() as f64;
                            *closed_ticks += run.ticks();
                            *closes += 1;
                        }
                        runs.push_back(Run {
                            value,
                            first: now,
                            last: now,
                        });
                    }
                }
                while runs.len() > 1 {
                    let Some(run) = runs.front_mut() else { break };
                    if run.first >= first {
                        break;
                    }
                    let held = run.value;
                    let gone = if run.last < first {
                        let gone = run.ticks();
                        runs.pop_front();
                        gone
                    } else {
                        let gone = first - run.first;
                        run.first = first;
                        gone
                    };
                    *closed_ticks -= gone;
                    *closed_sum -= held * gone as f64;
                }
                let Some(open) = runs.back_mut() else {
                    unreachable!("a run was just pushed or extended")
                };
                // The open run holds this tick, which is inside any window.
                open.first = open.first.max(first);
                let open = *open;
                if *closes >= runs.len().max(64) {
                    *closed_sum = runs
                        .iter()
                        .take(runs.len() - 1)
                        .map(|r| r.value * r.ticks() as f64)
                        .sum();
                    *closes = 0;
                }
                // One run is one value: exact, whatever the float error in
                // the sum.
                let value = match runs.len() {
                    1 => open.value,
                    _ => {
                        (*closed_sum + open.value * open.ticks() as f64)
                            / (*closed_ticks + open.ticks()) as f64
                    }
                };
                Reading {
                    value: Some(value),
                    steady: runs.len() == 1,
                }
            }
            Window::Extreme { max, entries } => {
                while let Some(&(_, v)) = entries.back() {
                    let beaten = if *max {
                        v <= sample.value
                    } else {
                        v >= sample.value
                    };
                    if !beaten {
                        break;
                    }
                    entries.pop_back();
                }
                entries.push_back((now, sample.value));
                while entries.front().is_some_and(|&(t, _)| t < first) {
                    entries.pop_front();
                }
                Reading {
                    value: entries.front().map(|&(_, v)| v),
                    steady: entries.len() == 1,
                }
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        match self {
            Window::Latest => 0,
            Window::Sum { entries, .. } => entries.len(),
            Window::Avg { runs, .. } => runs.len(),
            Window::Extreme { entries, .. } => entries.len(),
        }
    }
}

/// Saturates at 584 years.
fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn alert(
    state: AlertState,
    rule: &Rule,
    interface: &str,
    cond: &Condition,
    value: Option<f64>,
    detail: String,
) -> Alert {
    // Firing and resolved read alike and both name the rule, so a syslog
    // reader can pair them without the JSON.
    let word = match state {
        AlertState::Firing => "firing",
        AlertState::Resolved => "resolved",
    };
    let message = format!(
        "{interface} {} {word} ({}): {detail}",
        rule.name,
        rule.severity.as_str()
    );
    Alert {
        state,
        rule: rule.name.clone(),
        severity: rule.severity,
        interface: interface.to_string(),
        expr: cond.text.clone(),
        value,
        threshold: cond.threshold,
        message,
    }
}

/// The left-hand side in words: "tx_errors increased by 7 in 5s".
fn describe(cond: &Condition, value: f64) -> String {
    let metric = cond.metric;
    let value = number(value);
    let window = humantime::format_duration(cond.window);
    match cond.func {
        Func::Latest => format!("{metric} is {value}"),
        Func::Increase => format!("{metric} increased by {value} in {window}"),
        Func::Rate => format!("{metric} rate {value}/s over {window}"),
        Func::Avg => format!("{metric} averaged {value} over {window}"),
        Func::Min => format!("{metric} bottomed at {value} over {window}"),
        Func::Max => format!("{metric} peaked at {value} over {window}"),
    }
}

/// A number as a person writes it: `7`, `93.5`, `0.33`; at most 2 decimals.
fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::OperState;
    use crate::matcher::InterfaceMatcher;
    use crate::rule::parse;

    fn rule(name: &str, when: &str) -> Rule {
        Rule {
            name: name.to_string(),
            interfaces: InterfaceMatcher::all(),
            when: parse(when).unwrap(),
            for_: Duration::ZERO,
            clear_when: None,
            severity: Severity::Critical,
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
                .flat_map(|s| std::iter::once(&s.when).chain(s.clear.as_deref()))
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
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, below: u64) -> u64 {
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
        let mut window = Window::new(&cond);
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
            let expect = brute_force(cond.func, span, &history);
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
                        let mut state =
                            link.unwrap_or_else(|| super::tests::link(true, Some(1000), 0));
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
                let rule = &h.engine.rules[state.rule];
                assert!(state.when.len() <= rule.when.window.as_secs() as usize + 2);
                if let (Some(w), Some(c)) = (&state.clear, &rule.clear_when) {
                    assert!(w.len() <= c.window.as_secs() as usize + 2);
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
}
