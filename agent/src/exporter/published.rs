//! What one tick publishes for `/metrics`, and how the loop builds it: a
//! copy of the rows, the links and the figures a scrape shows, made on the
//! loop (about as costly as the tick's own bookkeeping) so the scrape needs
//! nothing of the loop's. The previous copy is reused when no scrape still
//! holds it, so a steady set of interfaces publishes without allocating.

use crate::link::LinkState;
use crate::metric::{COUNTER_COLUMNS, Columns};
use crate::output::OutputHandle;
use crate::output::collector::CollectorMonitor;
use crate::rule::{Engine, FiringAlert, Rule};
use crate::source::CounterRow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

/// The upper bounds of `hopwatch_tick_seconds`' buckets: a procfs tick at
/// 500 interfaces takes about a millisecond, an NX-API one up to seconds.
pub const TICK_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// One interface at the latest tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub device: String,
    pub counters: [u64; COUNTER_COLUMNS],
    /// The columns the source filled: the others are left out, never zero.
    pub columns: Columns,
    /// `None` when the link state is unknown; its series are left out.
    pub link: Option<LinkState>,
}

impl Default for Series {
    fn default() -> Series {
        Series {
            device: String::new(),
            counters: [0; COUNTER_COLUMNS],
            columns: Columns::NONE,
            link: None,
        }
    }
}

/// Tick durations since the agent started, for `hopwatch_tick_seconds`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Per bucket of [`TICK_BUCKETS`], the ticks that took at most its bound
    /// and more than the previous one (not cumulative).
    pub buckets: [u64; TICK_BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(at) = TICK_BUCKETS.iter().position(|&bound| secs <= bound) {
            self.buckets[at] += 1;
        }
        self.count += 1;
        self.sum += secs;
    }
}

/// One output's counters, as `hopwatch status` shows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputHealth {
    pub name: String,
    pub sent: u64,
    pub failures: u64,
    pub dropped: u64,
    pub queued: u64,
}

/// The collector output's connection and spool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectorHealth {
    pub connected: bool,
    pub spool_events: u64,
    pub spool_bytes: u64,
    pub spool_dropped: u64,
}

/// A rule's name and its `labels`.
pub type RuleLabels = (String, Vec<(String, String)>);

/// Everything a scrape renders.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Published {
    /// When the tick was published, for staleness alerts.
    pub at_unix: f64,
    /// Whether the source answered this tick; without it there are no
    /// interface series, rather than stale ones.
    pub source_up: bool,
    pub interfaces: Vec<Series>,
    pub firing: Vec<FiringAlert>,
    /// The `labels` of the rules that have some, by rule name, for the
    /// firing alerts' series.
    pub rule_labels: Arc<Vec<RuleLabels>>,
    /// Per rule, the (rule, interface) evaluations since the agent started.
    pub evaluations: Vec<(String, u64)>,
    pub tick: Histogram,
    pub skipped_ticks: u64,
    pub source_errors: u64,
    pub outputs: Vec<OutputHealth>,
    pub collector: Option<CollectorHealth>,
    /// As heartbeats count it: every output's queue drops and the spool's.
    pub events_dropped: u64,
}

/// What the loop knows at the end of a tick, besides the rows.
pub struct TickView<'a> {
    /// Whether the source answered; the rows are empty when not.
    pub source_up: bool,
    /// How long the tick took, from the start of the source's read.
    pub took: Duration,
    pub skipped_ticks: u64,
    pub source_errors: u64,
    pub engine: &'a Engine,
    pub outputs: &'a [OutputHandle],
    pub collector: Option<&'a CollectorMonitor>,
}

/// The loop's side: the running totals and the copy to reuse.
#[derive(Debug, Default)]
pub(super) struct Publisher {
    tick: Histogram,
    /// The rules the evaluation counts are for.
    rules: Vec<Rule>,
    /// Their labels, shared by every copy until the rules change.
    rule_labels: Arc<Vec<RuleLabels>>,
    /// Per rule, the interfaces its globs match among `names`.
    matched: Vec<u64>,
    evaluations: Vec<u64>,
    /// The interfaces `matched` was counted over.
    names: Vec<String>,
    spare: Option<Arc<Published>>,
}

impl Publisher {
    /// The next `Published`, over this tick's rows and their links.
    pub(super) fn build<'r>(
        &mut self,
        view: TickView<'_>,
        rows: impl IntoIterator<Item = (&'r CounterRow, Option<&'r LinkState>)>,
    ) -> Arc<Published> {
        let mut next = self
            .spare
            .take()
            .and_then(|spare| Arc::try_unwrap(spare).ok())
            .unwrap_or_default();
        let mut count = 0;
        let mut renamed = false;
        for (row, link) in rows {
            if count == next.interfaces.len() {
                next.interfaces.push(Series::default());
            }
            let series = &mut next.interfaces[count];
            series.device.clone_from(&row.name);
            series.counters = row.counters;
            series.columns = row.columns;
            series.link = link.copied();
            match self.names.get_mut(count) {
                Some(name) if *name == row.name => {}
                Some(name) => {
                    name.clone_from(&row.name);
                    renamed = true;
                }
                None => {
                    self.names.push(row.name.clone());
                    renamed = true;
                }
            }
            count += 1;
        }
        next.interfaces.truncate(count);
        if view.source_up {
            renamed |= self.names.len() != count;
            self.names.truncate(count);
            self.count_evaluations(view.engine, renamed);
            self.tick.observe(view.took);
        }
        next.at_unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        next.source_up = view.source_up;
        next.firing = view.engine.firing();
        next.rule_labels = Arc::clone(&self.rule_labels);
        next.evaluations.clear();
        next.evaluations.extend(
            self.rules
                .iter()
                .zip(&self.evaluations)
                .map(|(rule, &n)| (rule.name.clone(), n)),
        );
        next.tick.clone_from(&self.tick);
        next.skipped_ticks = view.skipped_ticks;
        next.source_errors = view.source_errors;
        next.outputs.clear();
        next.outputs.extend(view.outputs.iter().map(|o| {
            let stats = o.stats();
            OutputHealth {
                name: o.name().to_string(),
                sent: stats.sent.load(Ordering::Relaxed),
                failures: stats.failures.load(Ordering::Relaxed),
                dropped: stats.dropped.load(Ordering::Relaxed),
                queued: stats.queued.load(Ordering::Relaxed),
            }
        }));
        next.collector = view.collector.map(|c| {
            let status = c.status();
            CollectorHealth {
                connected: status.state == "connected",
                spool_events: status.spool_events,
                spool_bytes: status.spool_bytes,
                spool_dropped: status.spool_dropped,
            }
        });
        next.events_dropped = next.outputs.iter().map(|o| o.dropped).sum::<u64>()
            + next.collector.as_ref().map_or(0, |c| c.spool_dropped);
        Arc::new(next)
    }

    /// Keeps the copy a tick replaced, to be reused once no scrape holds it.
    pub(super) fn recycle(&mut self, old: Arc<Published>) {
        self.spare = Some(old);
    }

    /// Adds this tick's (rule, interface) pairs. They are counted again
    /// only when the interfaces or the rules changed; a rule that stays
    /// keeps its count across a reload.
    fn count_evaluations(&mut self, engine: &Engine, renamed: bool) {
        let rules = engine.rules();
        let rules_changed = self.rules.as_slice() != rules;
        if rules_changed {
            let evaluations = rules
                .iter()
                .map(|rule| {
                    self.rules
                        .iter()
                        .position(|old| old.name == rule.name)
                        .map_or(0, |at| self.evaluations[at])
                })
                .collect();
            self.evaluations = evaluations;
            self.rules = rules.to_vec();
            self.rule_labels = Arc::new(
                rules
                    .iter()
                    .filter(|rule| !rule.labels.is_empty())
                    .map(|rule| {
                        let labels = rule.labels.iter();
                        (
                            rule.name.clone(),
                            labels.map(|(k, v)| (k.clone(), v.clone())).collect(),
                        )
                    })
                    .collect(),
            );
        }
        if rules_changed || renamed {
            self.matched = engine.applied_counts();
        }
        for (total, matched) in self.evaluations.iter_mut().zip(&self.matched) {
            *total += matched;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(names: &[&str]) -> Vec<CounterRow> {
        names
            .iter()
            .map(|n| CounterRow::proc_net_dev(*n, [7; COUNTER_COLUMNS]))
            .collect()
    }

    fn view(engine: &Engine, source_up: bool) -> TickView<'_> {
        TickView {
            source_up,
            took: Duration::from_micros(700),
            skipped_ticks: 0,
            source_errors: u64::from(!source_up),
            engine,
            outputs: &[],
            collector: None,
        }
    }

    #[test]
    fn a_copy_no_scrape_holds_is_reused_and_one_held_is_left_alone() {
        let engine = Engine::new(Vec::new());
        let mut publisher = Publisher::default();
        let r = rows(&["eth0", "eth1"]);
        let pairs = || r.iter().map(|row| (row, None));
        let a = publisher.build(view(&engine, true), pairs());
        let a_rows = a.interfaces.as_ptr();
        publisher.recycle(a);
        let b = publisher.build(view(&engine, true), pairs());
        publisher.recycle(b);
        let c = publisher.build(view(&engine, true), pairs());
        assert_eq!(
            c.interfaces.as_ptr(),
            a_rows,
            "rows nothing holds are reused"
        );
        // A scrape still rendering c: the next build makes a new copy and c
        // stays as the scrape saw it.
        let held = Arc::clone(&c);
        publisher.recycle(c);
        let _d = publisher.build(view(&engine, true), pairs());
        assert_eq!(held.interfaces.len(), 2);
        assert_eq!(held.interfaces.as_ptr(), a_rows);
    }

    #[test]
    fn a_tick_lands_in_the_first_bucket_whose_bound_holds_it() {
        let mut h = Histogram::default();
        h.observe(Duration::from_micros(400));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(10));
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[1], 1, "1 ms is inside the 1 ms bucket");
        assert_eq!(h.buckets[6], 1, "30 ms is in the 50 ms bucket");
        assert_eq!(h.buckets.iter().sum::<u64>(), 3, "10 s is in +Inf only");
        assert_eq!(h.count, 4);
        assert!((h.sum - 10.0314).abs() < 1e-9, "{}", h.sum);
    }
}
