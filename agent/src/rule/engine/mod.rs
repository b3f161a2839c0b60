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
//! since the first tick that held). [`Engine::unavailable`] names the rules
//! and interfaces left so, so a rule that cannot be evaluated is not taken
//! for a healthy one.
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
//! - `increase(m[W])`: the sum of those ticks' deltas, each the change since
//!   the tick before it;
//! - `rate(m[W])`: that sum divided by the time those deltas span, in
//!   seconds: from the last tick before the window (or this rule's first tick
//!   on this interface, if later) to `now`. With ticks on the window's edges
//!   that is `W`; when the agent stretches its interval, or ticks are late,
//!   it is the true time, so a rate is never inflated by a tick whose delta
//!   began before the window;
//! - `avg`, `min`, `max`: over the values sampled in the window (raw values
//!   for counters);
//! - `changes(m[W])`: the ticks in the window whose value differs from the
//!   value before it (which may be before the window, as a delta's start is);
//! - `flaps(W)`: the times the link came back up, per tick from the
//!   `carrier_changes` delta and the link state before and now (see
//!   `window::ups`), so a down-and-up between two ticks counts; like
//!   `increase`, unavailable on the first tick;
//! - a bare metric: its value this tick.
//!
//! A rule keeps one window per distinct leaf (function, metric, window) of
//! its `when` and `clear_when`; the expression over them is evaluated as the
//! `expr` module documents, a division by zero or a leaf without a value
//! making its comparison unknown.
//!
//! Ticks need not be regular: a window holds whatever ticks fell inside it,
//! and a window shorter than the time between two ticks holds the latest,
//! whose delta spans back to the tick before. A window not yet full is
//! evaluated over what it holds. `increase` and
//! `rate` are unavailable on a rule's first tick on an interface (nothing to
//! measure yet) and on a tick without a delta.
//!
//! # Alerts
//!
//! Per rule and interface: when `when` holds, the alert fires at once if `for`
//! is zero, else it goes pending and fires on the first tick at which `when`
//! has held on every evaluated tick for at least `for`; a tick where it does
//! not hold drops the pending state. A firing alert resolves when
//! `clear_when` holds, or without one when `when` stops holding, and with
//! `keep_firing_for` only once that has held on every evaluated tick for so
//! long (a tick where it does not starts over). An unknown condition moves
//! nothing. Each change is one [`Alert`] carrying the condition, and the two
//! sides of the comparison that decided as its value and threshold.
//! An interface missing from a tick has vanished: its firing alerts resolve
//! (value null) and its history is dropped; if it returns, it is new.
//!
//! # Cost
//!
//! Interface globs and link kinds are matched once, when an interface is
//! first seen (and again for new rules at a reload). The kind is found then
//! too, from sysfs or the name ([`Classifier`]), and kept; only while some
//! rule has a `kind`, so an agent without one reads nothing for it.
//! Interfaces arrive in the same order tick after tick, so each is found by
//! comparing its name with the one seen at the same position last tick;
//! only a new order costs a hash lookup.
//!
//! Windows hold tick numbers, not times: the engine keeps the times of the
//! recent ticks once and finds, per rule and tick, the first tick inside each
//! window. `increase`, `rate`, `changes` and `flaps` keep only the non-zero
//! counts and their sum;
//! `avg` keeps runs of equal values (value, first tick, last tick) and a
//! running sum; `min` and `max` keep a monotonic queue in which equal values
//! merge. So a window over a value that sits still, the usual case for error,
//! drop and link metrics, holds at most one entry, and a steady tick
//! allocates nothing.
//!
//! Most of a quiet switch's counters do not move from one tick to the next.
//! A (rule, interface) state whose windows sit at such a fixed point (nothing
//! left to expire, or a single run of the current value), and whose alert is
//! idle or firing (not pending or counting `keep_firing_for`, which count
//! time), would come out of
//! a tick with the same inputs exactly as it went in. Such a state is
//! *quiet*, and a tick where none of the metrics it reads changed skips it;
//! an interface whose inputs all sit still and whose states are all quiet
//! costs a comparison of its counters. A skipped tick is owed to the windows
//! that held the unchanged value: the next step extends their last run or
//! entry to the tick before it, so every result is what stepping every tick
//! would give.

mod interface;
mod plan;
mod state;
#[cfg(test)]
mod tests;
mod window;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use self::interface::Interface;
use self::plan::Plan;
use self::state::{Phase, RuleState, alert};
use super::Rule;
use crate::event::{Alert, AlertState, Severity};
use crate::hash::NameMap;
use crate::link::LinkState;
use crate::link::kind::{Classifier, Kinds};
use crate::metric::{COUNTER_COLUMNS, Columns, Metric};

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

/// A rule that cannot be evaluated on an interface: on the latest tick, a
/// metric it reads had no value there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub rule: String,
    pub interface: String,
    /// The metrics without a value, in [`Metric`] order.
    pub metrics: Vec<Metric>,
}

/// Evaluates rules tick by tick; see the module documentation.
#[derive(Debug)]
pub struct Engine {
    rules: Vec<Rule>,
    /// Per rule, its distinct windows and their reach this tick.
    plans: Vec<Plan>,
    /// The longest window of any rule: older ticks are inside none.
    longest: Nanos,
    interfaces: Vec<Interface>,
    /// Finds a new interface's link kinds, for the rules' `kind`.
    classifier: Classifier,
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

/// How far back one window reaches this tick.
#[derive(Debug, Clone, Copy, Default)]
struct Reach {
    span: Nanos,
    /// The first tick inside the window.
    first: Tick,
    /// When the tick before `first` was, where the deltas inside the window
    /// start from; `None` when every tick so far is inside.
    before: Option<Nanos>,
}

/// The times of the ticks still inside some window, oldest first; their
/// numbers are consecutive.
#[derive(Debug, Default)]
struct Recent {
    /// The number of the tick at the front.
    first: Tick,
    stamps: VecDeque<Nanos>,
}

/// One metric's value this tick.
#[derive(Debug, Clone, Copy)]
struct Sample {
    value: f64,
    /// Counters only, and not on an interface's first tick.
    delta: Option<u64>,
}

type Samples = [Option<Sample>; METRICS];

impl Engine {
    pub fn new(rules: Vec<Rule>) -> Engine {
        let mut engine = Engine {
            rules: Vec::new(),
            plans: Vec::new(),
            longest: 0,
            interfaces: Vec::new(),
            classifier: Classifier::default(),
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

    /// How interfaces seen from now on are classified for the rules'
    /// `kind`; those already seen keep theirs.
    pub fn set_classifier(&mut self, classifier: Classifier) {
        self.classifier = classifier;
    }

    fn set_rules(&mut self, rules: Vec<Rule>) {
        self.plans = rules.iter().map(Plan::new).collect();
        for plan in &mut self.plans {
            for (reach, leaf) in plan.reach.iter_mut().zip(&plan.leaves) {
                reach.span = nanos(leaf.window);
            }
        }
        self.longest = self.plans.iter().map(Plan::longest).max().unwrap_or(0);
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
        for reach in self.plans.iter_mut().flat_map(|p| &mut p.reach) {
            reach.first = self.recent.first_inside(clock.stamp, reach.span);
            reach.before = self.recent.stamp_before(reach.first);
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
            iface.observe(&self.rules, &self.plans, clock, &obs, self.skip_quiet, out);
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
                let kinds = classify(&self.classifier, &self.rules, name);
                let states = self.match_rules(name, kinds);
                let slot = self.interfaces.len();
                self.interfaces.push(Interface::new(name, kinds, states));
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

        let plans: Vec<Plan> = rules.iter().map(Plan::new).collect();
        let mut slots: Vec<usize> = (0..self.interfaces.len()).collect();
        slots.sort_unstable_by(|&a, &b| self.interfaces[a].name.cmp(&self.interfaces[b].name));
        for slot in slots {
            let iface = &mut self.interfaces[slot];
            let name = iface.name.as_str();
            if iface.kinds.is_empty() {
                iface.kinds = classify(&self.classifier, &rules, name);
            }
            let kinds = iface.kinds;
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
                        if let Phase::Firing { threshold, .. } = state.phase {
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
                                threshold,
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
                } else if rule.applies(name, kinds) {
                    states.push(RuleState::new(new_index, &plans[new_index]));
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
                        Phase::Firing { since, value, .. } => {
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

    /// Every (rule, interface) whose rule read a metric without a value on
    /// the interface's latest tick, ordered by rule then interface.
    pub fn unavailable(&self) -> Vec<Unavailable> {
        let mut out: Vec<Unavailable> = Vec::new();
        for iface in &self.interfaces {
            let Some(available) = iface.available() else {
                continue;
            };
            for state in &iface.states {
                let missing = state.reads & !available;
                if missing == 0 {
                    continue;
                }
                out.push(Unavailable {
                    rule: self.rules[state.rule].name.clone(),
                    interface: iface.name.clone(),
                    metrics: (0..METRICS)
                        .filter(|&i| missing & (1 << i) != 0)
                        .map(|i| Metric::ALL[i])
                        .collect(),
                });
            }
        }
        out.sort_by(|a, b| (&a.rule, &a.interface).cmp(&(&b.rule, &b.interface)));
        out
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Per rule, in [`Engine::rules`] order, how many interfaces it is
    /// evaluated on: those its globs and its kinds both match.
    pub fn applied_counts(&self) -> Vec<u64> {
        let mut counts = vec![0; self.rules.len()];
        for state in self.interfaces.iter().flat_map(|iface| &iface.states) {
            counts[state.rule] += 1;
        }
        counts
    }

    /// Interfaces seen on the latest tick.
    pub fn interface_count(&self) -> usize {
        self.interfaces.len()
    }

    /// Fresh states for the rules whose globs and kinds match a new
    /// interface.
    fn match_rules(&mut self, name: &str, kinds: Kinds) -> Vec<RuleState> {
        #[cfg(test)]
        {
            self.glob_checks += self.rules.len();
        }
        (0..self.rules.len())
            .filter(|&i| self.rules[i].applies(name, kinds))
            .map(|i| RuleState::new(i, &self.plans[i]))
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
                if let Phase::Firing { threshold, .. } = state.phase {
                    let rule = &self.rules[state.rule];
                    let name = &iface.name;
                    out.push(alert(
                        AlertState::Resolved,
                        rule,
                        name,
                        &rule.when,
                        None,
                        threshold,
                        "interface vanished".to_string(),
                    ));
                }
            }
        }
    }
}

impl Recent {
    /// Adds the tick at `stamp` and forgets the ticks outside every window
    /// but the latest of them, where the longest window's deltas start.
    fn push(&mut self, tick: Tick, stamp: Nanos, longest: Nanos) {
        if self.stamps.is_empty() {
            self.first = tick;
        }
        self.stamps.push_back(stamp);
        if let Some(cutoff) = stamp.checked_sub(longest) {
            while self.stamps.get(1).is_some_and(|&t| t <= cutoff) {
                self.stamps.pop_front();
                self.first += 1;
            }
        }
    }

    /// When the tick before `first` was, if it is still known.
    fn stamp_before(&self, first: Tick) -> Option<Nanos> {
        let at = first.checked_sub(self.first + 1)?;
        self.stamps.get(usize::try_from(at).ok()?).copied()
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

/// An interface's link kinds, or none when no rule asks for them (it is
/// asked again at a reload).
fn classify(classifier: &Classifier, rules: &[Rule], name: &str) -> Kinds {
    if rules.iter().all(|r| r.kind.is_any()) {
        return Kinds::NONE;
    }
    classifier.kinds(name)
}

/// Saturates at 584 years.
fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
