//! The rule engine: turns one tick of interface counters and link states into
//! alert state changes. It never reads a clock, so every window, `for` and
//! reload behaviour is tested with explicit [`Instant`]s.
//!
//! # Values
//!
//! Each tick every interface yields one value per metric:
//! - the 16 `/proc/net/dev` counters from its counter row, and
//!   `carrier_changes` from its link state; all counters;
//! - `oper_up`: 1 when [`LinkState::is_up`], else 0; `speed_mbps` as reported;
//! - `rx_util`/`tx_util`: percent of link speed used since the previous tick,
//!   `delta_bytes * 8 / (seconds * speed_mbps * 1e6) * 100`.
//!
//! A value can be unavailable: no link state, no speed (or speed 0), the first
//! tick of an interface for the utilisations. A condition whose value is
//! unavailable is not evaluated that tick and the rule's state is left exactly
//! as it was: nothing fires or resolves, a pending `for` neither resets nor
//! fires (its clock is the time since the first tick that held).
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
//! again for new rules at a reload). A tick does a hash lookup by `&str` per
//! interface and O(1) amortised work per rule on it: running sums for
//! `increase`, `rate` and `avg`, monotonic queues for `min` and `max`. Each
//! window holds at most one entry per tick inside it, and buffers are reused,
//! so a steady tick allocates nothing.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::Rule;
use super::expr::{Condition, Func};
use crate::event::{Alert, AlertState, Severity};
use crate::hash::NameMap;
use crate::link::LinkState;
use crate::metric::{COUNTER_COLUMNS, Columns, Metric, counter_delta};

const METRICS: usize = Metric::ALL.len();

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
    interfaces: NameMap<Interface>,
    /// Counts ticks, so an interface knows whether this tick listed it.
    tick: u64,
    /// The first tick's time; windows keep [`Nanos`] since then.
    epoch: Option<Instant>,
    /// How many (rule, interface) glob matches were made, to prove they are
    /// not repeated per tick.
    #[cfg(test)]
    glob_checks: usize,
}

#[derive(Debug)]
struct Interface {
    last_tick: u64,
    prev: Option<Prev>,
    /// One per rule matching this interface, in rule order.
    states: Vec<RuleState>,
}

/// What the previous tick left behind for computing this tick's deltas.
#[derive(Debug, Clone, Copy)]
struct Prev {
    at: Instant,
    counters: [u64; COUNTER_COLUMNS],
    columns: Columns,
    /// The last known value: a tick without link state keeps the one before,
    /// so the next delta spans the gap instead of being lost.
    carrier_changes: Option<u64>,
}

/// Nanoseconds since the engine's first tick: half the size of an
/// [`Instant`], and windows are bound by memory traffic, not arithmetic.
type Nanos = u64;

/// One metric's value this tick.
#[derive(Debug, Clone, Copy)]
struct Sample {
    value: f64,
    /// Counters only, and not on an interface's first tick.
    delta: Option<u64>,
}

type Samples = [Option<Sample>; METRICS];

#[derive(Debug)]
struct RuleState {
    rule: usize,
    /// The first tick this rule evaluated this interface; set on that tick,
    /// since a reload creates states between ticks.
    start: Option<Nanos>,
    when: Window,
    clear: Option<Window>,
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
struct Window {
    func: Func,
    span: Nanos,
    buffer: Buffer,
}

#[derive(Debug)]
enum Buffer {
    Latest,
    /// `increase` and `rate`: the non-zero deltas inside the window and
    /// their exact sum (a u64 holds 400 Gb/s of bytes for over a year).
    Sum {
        entries: VecDeque<(Nanos, u64)>,
        sum: u64,
    },
    /// `avg`: values inside the window and their running sum, recomputed
    /// exactly once per window's worth of pushes so float error cannot build
    /// up over days.
    Avg {
        entries: VecDeque<(Nanos, f64)>,
        sum: f64,
        pushes: usize,
    },
    /// `min`/`max`: a monotonic queue; the front is the answer, and a value
    /// that can never be the answer again (an older one beaten by a newer)
    /// is dropped on arrival.
    Extreme {
        entries: VecDeque<(Nanos, f64)>,
    },
}

impl Engine {
    pub fn new(rules: Vec<Rule>) -> Engine {
        Engine {
            rules,
            interfaces: HashMap::default(),
            tick: 0,
            epoch: None,
            #[cfg(test)]
            glob_checks: 0,
        }
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
        let stamp = nanos(now.saturating_duration_since(epoch));
        let mut seen = 0;
        for obs in interfaces {
            let iface = match self.interfaces.get_mut(obs.name) {
                Some(iface) => iface,
                None => {
                    let states = self.match_rules(obs.name);
                    self.interfaces
                        .entry(obs.name.to_string())
                        .or_insert(Interface {
                            last_tick: 0,
                            prev: None,
                            states,
                        })
                }
            };
            if iface.last_tick == tick {
                continue;
            }
            iface.last_tick = tick;
            seen += 1;
            let prev = iface.prev;
            iface.prev = Some(Prev {
                at: now,
                counters: *obs.counters,
                columns: obs.columns,
                carrier_changes: obs
                    .link
                    .map(|l| l.carrier_changes)
                    .or(prev.and_then(|p| p.carrier_changes)),
            });
            if iface.states.is_empty() {
                continue;
            }
            let samples = samples(prev.as_ref(), now, &obs);
            for state in &mut iface.states {
                state.step(&self.rules[state.rule], obs.name, now, stamp, &samples, out);
            }
        }
        if seen < self.interfaces.len() {
            self.drop_vanished(tick, out);
        }
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

        let mut names: Vec<String> = self.interfaces.keys().cloned().collect();
        names.sort_unstable();
        for name in &names {
            let old_states = match self.interfaces.get_mut(name) {
                Some(iface) => std::mem::take(&mut iface.states),
                None => continue,
            };
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
                                format!("{name} {} resolved: {reason}", rule.name),
                            ));
                        }
                    }
                }
            }
            let fresh: Vec<usize> = (0..rules.len())
                .filter(|&j| continues[j].is_none())
                .collect();
            #[cfg(test)]
            {
                self.glob_checks += fresh.len();
            }
            let mut states = Vec::with_capacity(carried.len() + fresh.len());
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
            if let Some(iface) = self.interfaces.get_mut(name) {
                iface.states = states;
            }
        }
        self.rules = rules;
    }

    /// Every alert firing now, ordered by rule then interface.
    pub fn firing(&self) -> Vec<FiringAlert> {
        let mut firing: Vec<FiringAlert> = self
            .interfaces
            .iter()
            .flat_map(|(name, iface)| {
                iface
                    .states
                    .iter()
                    .filter_map(move |state| match state.phase {
                        Phase::Firing { since, value } => {
                            let rule = &self.rules[state.rule];
                            Some(FiringAlert {
                                rule: rule.name.clone(),
                                interface: name.clone(),
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

    fn drop_vanished(&mut self, tick: u64, out: &mut Vec<Alert>) {
        let mut gone: Vec<(String, Interface)> = Vec::new();
        self.interfaces.retain(|name, iface| {
            let present = iface.last_tick == tick;
            if !present {
                gone.push((name.clone(), std::mem::replace(iface, Interface::empty())));
            }
            present
        });
        gone.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (name, iface) in gone {
            for state in &iface.states {
                if matches!(state.phase, Phase::Firing { .. }) {
                    let rule = &self.rules[state.rule];
                    out.push(alert(
                        AlertState::Resolved,
                        rule,
                        &name,
                        &rule.when,
                        None,
                        format!("{name} {} resolved: interface vanished", rule.name),
                    ));
                }
            }
        }
    }
}

impl Interface {
    fn empty() -> Interface {
        Interface {
            last_tick: 0,
            prev: None,
            states: Vec::new(),
        }
    }
}

/// Every metric's value for one interface this tick.
fn samples(prev: Option<&Prev>, now: Instant, obs: &Observation<'_>) -> Samples {
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
    let link = obs.link;
    samples[Metric::CarrierChanges as usize] = link.map(|l| Sample {
        value: l.carrier_changes as f64,
        delta: prev
            .and_then(|p| p.carrier_changes)
            .map(|before| counter_delta(before, l.carrier_changes)),
    });
    samples[Metric::OperUp as usize] = link.map(|l| gauge(if l.is_up() { 1.0 } else { 0.0 }));
    let speed = link.and_then(|l| l.speed_mbps).filter(|&s| s > 0);
    samples[Metric::SpeedMbps as usize] = speed.map(|s| gauge(s as f64));
    if let (Some(prev), Some(speed)) = (prev, speed) {
        let seconds = now.saturating_duration_since(prev.at).as_secs_f64();
        if seconds > 0.0 {
            let capacity_bits = seconds * speed as f64 * 1e6;
            for (util, bytes) in [
                (Metric::RxUtil, Metric::RxBytes),
                (Metric::TxUtil, Metric::TxBytes),
            ] {
                let delta = samples[bytes as usize].and_then(|s| s.delta);
                // Bits over capacity, as a percent; multiplied before dividing
                // so round numbers stay round.
                samples[util as usize] = delta.map(|d| gauge(d as f64 * 800.0 / capacity_bits));
            }
        }
    }
    samples
}

fn gauge(value: f64) -> Sample {
    Sample { value, delta: None }
}

impl RuleState {
    fn new(rule: usize, definition: &Rule) -> RuleState {
        RuleState {
            rule,
            start: None,
            when: Window::new(&definition.when),
            clear: definition.clear_when.as_ref().map(Window::new),
            phase: Phase::Idle,
        }
    }

    fn step(
        &mut self,
        rule: &Rule,
        interface: &str,
        now: Instant,
        stamp: Nanos,
        samples: &Samples,
        out: &mut Vec<Alert>,
    ) {
        let start = *self.start.get_or_insert(stamp);
        let when = self
            .when
            .update(stamp, start, samples[rule.when.metric as usize]);
        // The clear window is fed every tick, not only while firing, so it
        // has its history when the alert fires.
        let clear = match (&mut self.clear, &rule.clear_when) {
            (Some(window), Some(cond)) => {
                window.update(stamp, start, samples[cond.metric as usize])
            }
            _ => None,
        };
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
                let message = format!(
                    "{interface} {} (threshold {} {})",
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
                    message,
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
                        let message = format!(
                            "{interface} {} resolved: {}",
                            rule.name,
                            describe(cond, value)
                        );
                        out.push(alert(
                            AlertState::Resolved,
                            rule,
                            interface,
                            cond,
                            Some(value),
                            message,
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
        let buffer = match cond.func {
            Func::Latest => Buffer::Latest,
            Func::Increase | Func::Rate => Buffer::Sum {
                entries: VecDeque::new(),
                sum: 0,
            },
            Func::Avg => Buffer::Avg {
                entries: VecDeque::new(),
                sum: 0.0,
                pushes: 0,
            },
            Func::Min | Func::Max => Buffer::Extreme {
                entries: VecDeque::new(),
            },
        };
        Window {
            func: cond.func,
            span: nanos(cond.window),
            buffer,
        }
    }

    /// Takes this tick's sample and returns the condition's left-hand value,
    /// or `None` when it cannot be computed this tick.
    fn update(&mut self, now: Nanos, start: Nanos, sample: Option<Sample>) -> Option<f64> {
        let sample = sample?;
        // Entries at or before the cutoff have left the window. Near the
        // engine's first tick there is no cutoff and nothing has left.
        let cutoff = now.checked_sub(self.span);
        let expired = |t: Nanos| cutoff.is_some_and(|c| t <= c);
        match &mut self.buffer {
            Buffer::Latest => Some(sample.value),
            Buffer::Sum { entries, sum } => {
                if now <= start {
                    return None;
                }
                let delta = sample.delta?;
                // Error, drop and carrier counters sit still nearly always;
                // a zero adds nothing to the sum, so it takes no entry and a
                // quiet interface's window stays empty.
                if delta > 0 {
                    entries.push_back((now, delta));
                    *sum = sum.wrapping_add(delta);
                }
                while let Some(&(t, d)) = entries.front() {
                    if !expired(t) {
                        break;
                    }
                    entries.pop_front();
                    // Wrapping, so the sum stays exact whenever the window's
                    // true total fits 64 bits, whatever the order of events.
                    *sum = sum.wrapping_sub(d);
                }
                let increase = *sum as f64;
                if self.func == Func::Rate {
                    let covered = self.span.min(now - start);
                    Some(increase * 1e9 / covered as f64)
                } else {
                    Some(increase)
                }
            }
            Buffer::Avg {
                entries,
                sum,
                pushes,
            } => {
                entries.push_back((now, sample.value));
                *sum += sample.value;
                while let Some(&(t, v)) = entries.front() {
                    if !expired(t) {
                        break;
                    }
                    entries.pop_front();
                    *sum -= v;
                }
                *pushes += 1;
                if *pushes >= entries.len().max(64) {
                    *sum = entries.iter().map(|&(_, v)| v).sum();
                    *pushes = 0;
                }
                Some(*sum / entries.len() as f64)
            }
            Buffer::Extreme { entries } => {
                let max = self.func == Func::Max;
                while let Some(&(_, v)) = entries.back() {
                    let beaten = if max {
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
                while entries.front().is_some_and(|&(t, _)| expired(t)) {
                    entries.pop_front();
                }
                entries.front().map(|&(_, v)| v)
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        match &self.buffer {
            Buffer::Latest => 0,
            Buffer::Sum { entries, .. } => entries.len(),
            Buffer::Avg { entries, .. } | Buffer::Extreme { entries } => entries.len(),
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
    message: String,
) -> Alert {
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
                .values()
                .flat_map(|i| &i.states)
                .flat_map(|s| std::iter::once(&s.when).chain(s.clear.as_ref()))
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
            "eth0 tx_errors increased by 4 in 5s (threshold > 3)"
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
            "eth0 tx-errors resolved: tx_errors increased by 2 in 5s"
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
            "eth0 rx_bytes rate 1250000/s over 10s (threshold > 1000000)"
        );
        // Nothing more: at t3 the same 2.5 MB over 3 s is 833333.33/s.
        let resolved = only(h.counter(3.0, Metric::RxBytes, 2_500_000));
        assert_eq!(resolved.value, Some(2_500_000.0 / 3.0));
        assert_eq!(
            resolved.message,
            "eth0 rx resolved: rx_bytes rate 833333.33/s over 10s"
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
            "eth0 oper_up averaged 0.33 over 3s (threshold < 0.5)"
        );
        assert!(h.link(3.0, up).is_empty()); // (0, 3]: 0, 0, 1
        assert!(h.link(4.0, up).is_empty()); // 0, 1, 1
        let resolved = only(h.link(5.0, up)); // 1, 1, 1
        assert_eq!(resolved.value, Some(1.0));
        assert_eq!(resolved.expr, "avg(oper_up[3s]) == 1");
        assert_eq!(
            resolved.message,
            "eth0 down resolved: oper_up averaged 1 over 3s"
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
            "eth0 speed_mbps bottomed at 1000 over 3s (threshold < 5000)"
        );
        let fired = only(h.link(2.0, speed(40_000)));
        assert_eq!((fired.rule.as_str(), fired.value), ("fast", Some(40000.0)));
        assert_eq!(
            fired.message,
            "eth0 speed_mbps peaked at 40000 over 3s (threshold > 20000)"
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

    #[test]
    fn windows_match_a_brute_force_evaluation() {
        // Irregular ticks and values against a direct computation over the
        // samples in (now - W, now].
        let span: Nanos = 2_500_000_000;
        let conds = ["avg", "min", "max", "increase"]
            .map(|f| parse(&format!("{f}(rx_bytes[2500ms]) > 0")).unwrap());
        let mut windows: Vec<Window> = conds.iter().map(Window::new).collect();
        let mut history: Vec<(Nanos, u64, u64)> = Vec::new();
        let mut seed = 7u64;
        let mut at: Nanos = 0;
        let mut value = 1000u64;
        for i in 0..400 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            at += (200 + (seed >> 33) % 900) * 1_000_000;
            let delta = (seed >> 20) % 100;
            value += delta;
            // Every so often a value lower than the last, to exercise the queues.
            let sample_value = if i % 7 == 3 { value - 95 } else { value };
            history.push((at, sample_value, delta));
            let inside: Vec<_> = history.iter().filter(|(t, _, _)| *t + span > at).collect();
            let values: Vec<f64> = inside.iter().map(|(_, v, _)| *v as f64).collect();
            let expect = [
                values.iter().sum::<f64>() / values.len() as f64,
                values.iter().cloned().fold(f64::INFINITY, f64::min),
                values.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                inside.iter().map(|(_, _, d)| *d as f64).sum(),
            ];
            for (window, expect) in windows.iter_mut().zip(expect) {
                let sample = Sample {
                    value: sample_value as f64,
                    delta: Some(delta),
                };
                let got = window.update(at, 0, Some(sample)).unwrap();
                assert!(
                    (got - expect).abs() < 1e-6,
                    "{:?} at {i}: {got} vs {expect}",
                    window.func
                );
                assert!(window.len() <= inside.len());
            }
        }
    }

    #[test]
    fn latest_is_this_ticks_value() {
        let mut h = Harness::new(vec![rule("link-down", "oper_up == 0")]);
        assert!(h.link(0.0, Some(link(true, None, 0))).is_empty());
        let fired = only(h.link(1.0, Some(link(false, None, 1))));
        assert_eq!(fired.value, Some(0.0));
        assert_eq!(fired.message, "eth0 oper_up is 0 (threshold == 0)");
        let resolved = only(h.link(2.0, Some(link(true, None, 2))));
        assert_eq!(resolved.value, Some(1.0));
        assert_eq!(resolved.message, "eth0 link-down resolved: oper_up is 1");
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
            "eth0 tx-errors resolved: tx_errors increased by 0 in 10s"
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
            "eth0 tx_errors increased by 7 in 5s (threshold > 3)"
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
        assert_eq!(resolved.message, "eth0 e resolved: interface vanished");
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
        assert_eq!(fired.message, "eth0 rx_util is 50 (threshold > 40)");
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
            "eth0 carrier_changes increased by 2 in 10s (threshold > 0)"
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
            h.engine.interfaces[name]
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
                (None, "eth0 changed resolved: rule changed by a reload"),
                (None, "eth0 removed resolved: rule removed by a reload"),
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
            "eth0 e resolved: tx_errors increased by 1 in 500ms"
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
            for state in h.engine.interfaces.values().flat_map(|i| &i.states) {
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
