//! One interface in the engine: what its previous tick left, every metric's
//! value this tick, and the rule states it steps.

use std::time::Instant;

use super::plan::Plan;
use super::state::RuleState;
use super::{ALL_METRICS, Clock, DERIVED, METRICS, MetricSet, Observation, Sample, Samples, Tick};
use crate::event::Alert;
use crate::hash::ShortName;
use crate::link::kind::Kinds;
use crate::metric::{COUNTER_COLUMNS, Columns, Metric, counter_delta};
use crate::rule::Rule;

#[derive(Debug)]
pub(super) struct Interface {
    pub(super) short: ShortName,
    pub(super) name: String,
    /// Found when first seen, for the rules' `kind`; none while no rule has
    /// one.
    pub(super) kinds: Kinds,
    pub(super) last_tick: Tick,
    prev: Option<Prev>,
    /// One per rule matching this interface, in rule order.
    pub(super) states: Vec<RuleState>,
    /// How many of `states` are not quiet.
    pub(super) busy: usize,
}

/// What the previous tick left behind: its counters for this tick's deltas,
/// and every metric's value to tell which changed.
#[derive(Debug, Clone, Copy)]
struct Prev {
    at: Instant,
    counters: [u64; COUNTER_COLUMNS],
    /// The columns with a reading: this tick's, and the `carried` ones.
    columns: Columns,
    /// Columns this tick lacked that an earlier tick had: their last
    /// reading is kept, as for `carrier_changes`, so errors counted while a
    /// read failed land in the next delta instead of being lost. The
    /// utilisations, which divide by this tick's time, do not use them.
    carried: Columns,
    /// The last known value: a tick without link state keeps the one before,
    /// so the next delta spans the gap instead of being lost.
    carrier_changes: Option<u64>,
    /// The metrics that had a value.
    available: MetricSet,
    /// The values of the metrics after the counter columns, as bits.
    derived: [u64; DERIVED],
}

impl Interface {
    pub(super) fn new(name: &str, kinds: Kinds, states: Vec<RuleState>) -> Interface {
        Interface {
            short: ShortName::of(name),
            name: name.to_string(),
            kinds,
            last_tick: 0,
            prev: None,
            busy: states.len(),
            states,
        }
    }

    /// The metrics that had a value on this interface's latest tick; `None`
    /// before its first.
    pub(super) fn available(&self) -> Option<MetricSet> {
        self.prev.as_ref().map(|p| p.available)
    }

    /// This interface's part of a tick.
    pub(super) fn observe(
        &mut self,
        rules: &[Rule],
        plans: &[Plan],
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
            let (counters, columns, carried) = carry(prev.as_ref(), obs);
            self.prev = Some(Prev {
                at: clock.now,
                counters,
                columns,
                carried,
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
            state.step(rule, &plans[state.rule], &self.name, clock, &samples, out);
            busy += usize::from(!state.quiet);
        }
        self.busy = busy;
    }
}

/// This tick's counters, with the last reading of each column this tick
/// lacks and an earlier one had; and which columns those are. A column that
/// stays missing keeps its reading, so the interface counts as changed each
/// tick until it returns, and the rules reading it step (unavailable).
fn carry(prev: Option<&Prev>, obs: &Observation<'_>) -> ([u64; COUNTER_COLUMNS], Columns, Columns) {
    let mut counters = *obs.counters;
    let mut columns = obs.columns;
    let mut carried = Columns::NONE;
    if let Some(prev) = prev
        && prev.columns != obs.columns
    {
        for (column, &metric) in Metric::ALL[..COUNTER_COLUMNS].iter().enumerate() {
            if !obs.columns.has(column) && prev.columns.has(column) {
                counters[column] = prev.counters[column];
                columns = columns.with(metric);
                carried = carried.with(metric);
            }
        }
    }
    (counters, columns, carried)
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
                let delta = (obs.columns.has(column)
                    && prev.columns.has(column)
                    && !prev.carried.has(column))
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
