//! The collector's counters and their Prometheus text rendering for
//! `GET /metrics` through prometheus-client. Counters are atomics bumped
//! where things happen; per-agent figures come from the store at scrape time.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeMetric, MetricEncoder, prometheus_text,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an agent connection was ended by the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// The hello's token matched no agent token.
    BadToken,
    /// The first line was not a hello, or a later line not an event.
    Malformed,
    /// A line longer than `max_line`.
    LineTooLong,
    /// Nothing arrived within the read timeout (hello or later).
    Timeout,
    /// A hello with a protocol version this collector does not speak.
    Protocol,
    /// The TLS handshake failed.
    Tls,
    /// Storing the connection's events failed.
    Store,
    /// Shed before its hello to make room for a newer connection
    /// (`max_pending` were waiting).
    Shed,
    /// Every place for an agent connection was taken (`max_connections`).
    Full,
    /// Its token or certificate does not admit the agent it named, or it
    /// sent an event of another agent.
    Identity,
}

impl Reject {
    pub const ALL: [Reject; 10] = [
        Reject::BadToken,
        Reject::Malformed,
        Reject::LineTooLong,
        Reject::Timeout,
        Reject::Protocol,
        Reject::Tls,
        Reject::Store,
        Reject::Shed,
        Reject::Full,
        Reject::Identity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reject::BadToken => "bad_token",
            Reject::Malformed => "malformed",
            Reject::LineTooLong => "line_too_long",
            Reject::Timeout => "timeout",
            Reject::Protocol => "protocol",
            Reject::Tls => "tls",
            Reject::Store => "store",
            Reject::Shed => "shed",
            Reject::Full => "full",
            Reject::Identity => "identity",
        }
    }
}

/// Why the API's accept loop closed an HTTP connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpClose {
    /// Its request headers did not arrive within `header_timeout`.
    HeaderTimeout,
    /// Nothing moved on it for `idle_timeout`.
    IdleTimeout,
    /// The cap was reached and it was the oldest without an API token.
    Evicted,
    /// The cap was reached and every open connection had a token.
    Full,
}

impl HttpClose {
    pub const ALL: [HttpClose; 4] = [
        HttpClose::HeaderTimeout,
        HttpClose::IdleTimeout,
        HttpClose::Evicted,
        HttpClose::Full,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HttpClose::HeaderTimeout => "header_timeout",
            HttpClose::IdleTimeout => "idle_timeout",
            HttpClose::Evicted => "evicted",
            HttpClose::Full => "full",
        }
    }
}

/// How one question to an agent for a fabric trace ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceOutcome {
    /// The agent answered with a trace.
    Answered,
    /// The agent answered that it cannot trace this.
    Refused,
    /// No answer within the hop's timeout.
    Timeout,
    /// The connection closed before the answer.
    Closed,
    /// The answer was not a trace of the kind asked.
    Garbage,
    /// The agent is not connected.
    Offline,
    /// Too many questions were waiting to go out on its connection.
    Busy,
    /// The trace that asked gave up first (its own timeout ran out).
    Abandoned,
}

impl TraceOutcome {
    pub const ALL: [TraceOutcome; 8] = [
        TraceOutcome::Answered,
        TraceOutcome::Refused,
        TraceOutcome::Timeout,
        TraceOutcome::Closed,
        TraceOutcome::Garbage,
        TraceOutcome::Offline,
        TraceOutcome::Busy,
        TraceOutcome::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TraceOutcome::Answered => "answered",
            TraceOutcome::Refused => "refused",
            TraceOutcome::Timeout => "timeout",
            TraceOutcome::Closed => "closed",
            TraceOutcome::Garbage => "garbage",
            TraceOutcome::Offline => "offline",
            TraceOutcome::Busy => "busy",
            TraceOutcome::Abandoned => "abandoned",
        }
    }
}

/// The work a collector does on a shared PostgreSQL store beside its
/// writer, whose failures (an unreachable database, a lost connection)
/// are retried and counted here rather than stopping anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedTask {
    /// Recording the agents held here and reading the fleet's addresses.
    Members,
    /// Listening for traces relayed by the other collectors.
    Relay,
    /// Listening for silences changed through the other collectors, and
    /// reading them.
    Silences,
}

impl SharedTask {
    pub const ALL: [SharedTask; 3] = [SharedTask::Members, SharedTask::Relay, SharedTask::Silences];

    pub fn as_str(self) -> &'static str {
        match self {
            SharedTask::Members => "members",
            SharedTask::Relay => "relay",
            SharedTask::Silences => "silences",
        }
    }
}

/// Every counter, shared by the ingest, the writer and the API.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Stored events by type: alert, link, heartbeat, loss, other.
    pub ingested: [AtomicU64; 5],
    pub duplicates: AtomicU64,
    pub rejected: [AtomicU64; Reject::ALL.len()],
    pub connections_total: AtomicU64,
    pub connections_open: AtomicU64,
    pub batches: AtomicU64,
    /// fsyncs of the WAL, each making one or more batches durable.
    pub syncs: AtomicU64,
    pub commit_micros: AtomicU64,
    pub commit_failures: AtomicU64,
    pub pruned: AtomicU64,
    /// Durable events the store did not hand to syslog forwarding because
    /// its queue was full.
    pub forward_dropped: AtomicU64,
    pub api_requests: AtomicU64,
    pub api_unauthorized: AtomicU64,
    pub api_rate_limited: AtomicU64,
    pub http_connections_total: AtomicU64,
    pub http_connections_open: AtomicU64,
    pub http_closed: [AtomicU64; 4],
    pub store: StoreHealth,
    /// Questions asked of agents for fabric traces.
    pub traces_asked: AtomicU64,
    /// How each ended, by [`TraceOutcome`].
    pub traces_ended: [AtomicU64; TraceOutcome::ALL.len()],
    /// Answers nobody waited for any more (late, or for no question asked).
    pub trace_results_late: AtomicU64,
    /// Failures of the work beside the writer on a shared store, by
    /// [`SharedTask`].
    pub shared_failures: [AtomicU64; SharedTask::ALL.len()],
}

/// Whether the store is taking events, for `/healthz` and `/metrics`: the
/// writer reports each commit and a failed sync; a load balancer or monitor
/// then sees a collector that refuses every batch as unhealthy.
#[derive(Debug, Default)]
pub struct StoreHealth {
    /// Commits that failed since the last one that succeeded.
    failed_in_a_row: AtomicU64,
    // Held to copy a string, never across an await.
    last_error: Mutex<String>,
    /// Set once a sync failed: the writer takes nothing until a restart.
    broken: Mutex<Option<String>>,
}

impl StoreHealth {
    pub fn commit_succeeded(&self) {
        self.failed_in_a_row.store(0, Ordering::Relaxed);
    }

    pub fn commit_failed(&self, error: &dyn std::fmt::Display) {
        *self.last_error.lock().expect("store health poisoned") = error.to_string();
        self.failed_in_a_row.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sync_failed(&self, error: &dyn std::fmt::Display) {
        *self.broken.lock().expect("store health poisoned") = Some(error.to_string());
    }

    pub fn failed_in_a_row(&self) -> u64 {
        self.failed_in_a_row.load(Ordering::Relaxed)
    }

    /// Why the store is not taking events; empty when it is.
    pub fn problems(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some(error) = &*self.broken.lock().expect("store health poisoned") {
            reasons.push(format!(
                "store: syncing the store failed ({error}); no events are taken until the collector is restarted"
            ));
        }
        let failed = self.failed_in_a_row();
        if failed > 0 {
            let error = self
                .last_error
                .lock()
                .expect("store health poisoned")
                .clone();
            reasons.push(if failed == 1 {
                format!("store: the last commit failed: {error}")
            } else {
                format!("store: the last {failed} commits failed: {error}")
            });
        }
        reasons
    }
}

/// Where `x` is in `all`, the order a family's counters are kept in.
fn slot<T: PartialEq>(all: &[T], x: T) -> usize {
    all.iter()
        .position(|y| *y == x)
        .expect("every value is listed")
}

impl Metrics {
    pub fn reject(&self, why: Reject) {
        self.rejected[slot(&Reject::ALL, why)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, why: Reject) -> u64 {
        self.rejected[slot(&Reject::ALL, why)].load(Ordering::Relaxed)
    }

    pub fn shared_failed(&self, task: SharedTask) {
        self.shared_failures[slot(&SharedTask::ALL, task)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn shared_failures(&self, task: SharedTask) -> u64 {
        self.shared_failures[slot(&SharedTask::ALL, task)].load(Ordering::Relaxed)
    }

    pub fn http_closed(&self, why: HttpClose) {
        self.http_closed[slot(&HttpClose::ALL, why)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn http_closed_count(&self, why: HttpClose) -> u64 {
        self.http_closed[slot(&HttpClose::ALL, why)].load(Ordering::Relaxed)
    }

    pub fn trace_ended(&self, outcome: TraceOutcome) {
        self.traces_ended[slot(&TraceOutcome::ALL, outcome)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn traces_ended_count(&self, outcome: TraceOutcome) -> u64 {
        self.traces_ended[slot(&TraceOutcome::ALL, outcome)].load(Ordering::Relaxed)
    }

    /// Events stored, all types.
    pub fn ingested_total(&self) -> u64 {
        self.ingested
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// The Prometheus text exposition. `agents` is (name, last seen in ms,
    /// firing alerts); `forward` the syslog forwarder's (sent, dropped).
    pub fn render(&self, agents: &[(String, i64, u64)], forward: Option<(u64, u64)>) -> String {
        self.render_with(agents, forward, Vec::new())
    }

    /// As [`Metrics::render`], with the families of a component that keeps
    /// its own counters (alert forwarding) after these.
    pub fn render_with(
        &self,
        agents: &[(String, i64, u64)],
        forward: Option<(u64, u64)>,
        more: Vec<Family>,
    ) -> String {
        let mut families = self.families(agents, forward);
        families.extend(more);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Scrape(families)));
        let mut out = String::with_capacity(4096);
        prometheus_text::encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }

    /// Every family `/metrics` shows, read now. A counter's name is given
    /// without its `_total`, which the encoder appends.
    fn families(&self, agents: &[(String, i64, u64)], forward: Option<(u64, u64)>) -> Vec<Family> {
        let load = |c: &AtomicU64| Number::Int(c.load(Ordering::Relaxed));
        let by = |key: &'static str, values: Vec<(String, Number)>| Samples::By(key, values);
        let mut families = vec![
            Family::counter(
                "hopwatch_collector_events_ingested",
                "Events stored, by type.",
                by(
                    "type",
                    ["alert", "link", "heartbeat", "loss", "other"]
                        .iter()
                        .zip(&self.ingested)
                        .map(|(kind, c)| (kind.to_string(), load(c)))
                        .collect(),
                ),
            ),
            Family::counter(
                "hopwatch_collector_events_duplicate",
                "Events received again and ignored (already stored).",
                Samples::One(load(&self.duplicates)),
            ),
            Family::counter(
                "hopwatch_collector_connections_rejected",
                "Agent connections the collector ended, by reason.",
                by(
                    "reason",
                    Reject::ALL
                        .iter()
                        .zip(&self.rejected)
                        .map(|(why, c)| (why.as_str().to_string(), load(c)))
                        .collect(),
                ),
            ),
            Family::counter(
                "hopwatch_collector_connections",
                "Agent connections accepted.",
                Samples::One(load(&self.connections_total)),
            ),
            Family::gauge(
                "hopwatch_collector_connections_open",
                "Agent connections open now.",
                Samples::One(load(&self.connections_open)),
            ),
            Family::counter(
                "hopwatch_collector_commits",
                "Transactions committed.",
                Samples::One(load(&self.batches)),
            ),
            Family::counter(
                "hopwatch_collector_syncs",
                "fsyncs of the store's WAL; each makes every batch committed before it durable.",
                Samples::One(load(&self.syncs)),
            ),
            Family::counter(
                "hopwatch_collector_commit_seconds",
                "Time spent applying and committing batches.",
                Samples::One(Number::Float(
                    self.commit_micros.load(Ordering::Relaxed) as f64 / 1e6,
                )),
            ),
            Family::counter(
                "hopwatch_collector_commit_failures",
                "Transactions that failed (their events were not acknowledged).",
                Samples::One(load(&self.commit_failures)),
            ),
            Family::gauge(
                "hopwatch_collector_commit_failures_in_a_row",
                "Transactions that failed since the last one that succeeded.",
                Samples::One(Number::Int(self.store.failed_in_a_row())),
            ),
            Family::gauge(
                "hopwatch_collector_healthy",
                "1 when /healthz answers ok, 0 when it reports the collector degraded.",
                Samples::One(Number::Int(u64::from(self.store.problems().is_empty()))),
            ),
            Family::counter(
                "hopwatch_collector_shared_store_failures",
                "Failures of the work beside the writer on a shared PostgreSQL store, by task; each is retried.",
                by(
                    "task",
                    SharedTask::ALL
                        .iter()
                        .zip(&self.shared_failures)
                        .map(|(task, c)| (task.as_str().to_string(), load(c)))
                        .collect(),
                ),
            ),
            Family::counter(
                "hopwatch_collector_pruned_rows",
                "Rows deleted for being older than `retain`.",
                Samples::One(load(&self.pruned)),
            ),
            Family::counter(
                "hopwatch_collector_api_requests",
                "API requests, by outcome.",
                by(
                    "outcome",
                    vec![
                        ("served".into(), load(&self.api_requests)),
                        ("unauthorized".into(), load(&self.api_unauthorized)),
                        ("rate_limited".into(), load(&self.api_rate_limited)),
                    ],
                ),
            ),
            Family::counter(
                "hopwatch_collector_http_connections",
                "HTTP connections accepted.",
                Samples::One(load(&self.http_connections_total)),
            ),
            Family::gauge(
                "hopwatch_collector_http_connections_open",
                "HTTP connections open now.",
                Samples::One(load(&self.http_connections_open)),
            ),
            Family::counter(
                "hopwatch_collector_http_connections_closed",
                "HTTP connections the collector closed itself, by reason.",
                by(
                    "reason",
                    HttpClose::ALL
                        .iter()
                        .zip(&self.http_closed)
                        .map(|(why, c)| (why.as_str().to_string(), load(c)))
                        .collect(),
                ),
            ),
            Family::counter(
                "hopwatch_collector_trace_requests",
                "Questions asked of agents for fabric traces.",
                Samples::One(load(&self.traces_asked)),
            ),
            Family::counter(
                "hopwatch_collector_trace_requests_ended",
                "Questions asked of agents for fabric traces, by how they ended.",
                by(
                    "outcome",
                    TraceOutcome::ALL
                        .iter()
                        .zip(&self.traces_ended)
                        .map(|(outcome, c)| (outcome.as_str().to_string(), load(c)))
                        .collect(),
                ),
            ),
            Family::counter(
                "hopwatch_collector_trace_results_late",
                "Trace answers that came after their question was given up, or for no question asked; dropped.",
                Samples::One(load(&self.trace_results_late)),
            ),
        ];
        if let Some((sent, dropped)) = forward {
            families.push(Family::counter(
                "hopwatch_collector_syslog_forwarded",
                "Events forwarded to syslog.",
                Samples::One(Number::Int(sent)),
            ));
            families.push(Family::counter(
                "hopwatch_collector_syslog_dropped",
                "Events the syslog forwarder dropped (its queue overflowed).",
                Samples::One(Number::Int(dropped)),
            ));
        }
        families.push(Family::gauge(
            "hopwatch_collector_agent_last_seen_timestamp_seconds",
            "When each agent was last heard from (Unix time).",
            by(
                "agent",
                agents
                    .iter()
                    .map(|(agent, last_seen_ms, _)| {
                        (agent.clone(), Number::Float(*last_seen_ms as f64 / 1000.0))
                    })
                    .collect(),
            ),
        ));
        families.push(Family::gauge(
            "hopwatch_collector_alerts_firing",
            "Alerts firing now, per agent.",
            by(
                "agent",
                agents
                    .iter()
                    .map(|(agent, _, firing)| (agent.clone(), Number::Int(*firing)))
                    .collect(),
            ),
        ));
        families.push(Family::gauge(
            "hopwatch_collector_fleet_alerts_firing",
            "Alerts firing now, whole fleet.",
            Samples::One(Number::Int(agents.iter().map(|a| a.2).sum())),
        ));
        families
    }
}

/// One metric family: what the scrape encodes through prometheus-client.
#[derive(Debug)]
pub struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    samples: Samples,
}

impl Family {
    pub fn counter(name: &'static str, help: &'static str, samples: Samples) -> Family {
        Family {
            name,
            help,
            kind: MetricType::Counter,
            samples,
        }
    }

    pub fn gauge(name: &'static str, help: &'static str, samples: Samples) -> Family {
        Family {
            name,
            help,
            kind: MetricType::Gauge,
            samples,
        }
    }
}

#[derive(Debug)]
pub enum Samples {
    /// A family without labels.
    One(Number),
    /// One value per value of the label.
    By(&'static str, Vec<(String, Number)>),
}

#[derive(Debug, Clone, Copy)]
pub enum Number {
    Int(u64),
    Float(f64),
}

/// The figures read at one scrape. The counters stay the atomics bumped
/// where things happen (a registry's own counters would be one more
/// indirection on the ingest path); the registry only encodes them.
#[derive(Debug)]
struct Scrape(Vec<Family>);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        for family in &self.0 {
            let mut metric =
                encoder.encode_descriptor(family.name, family.help, None, family.kind)?;
            match &family.samples {
                Samples::One(value) => encode_value(metric, family.kind, *value)?,
                Samples::By(key, values) => {
                    for (label, value) in values {
                        let labels = [(*key, label.as_str())];
                        encode_value(metric.encode_family(&labels)?, family.kind, *value)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn encode_value(encoder: MetricEncoder, kind: MetricType, value: Number) -> std::fmt::Result {
    match (kind, value) {
        (MetricType::Counter, Number::Int(n)) => ConstCounter::new(n).encode(encoder),
        (MetricType::Counter, Number::Float(n)) => ConstCounter::new(n).encode(encoder),
        (_, Number::Int(n)) => ConstGauge::new(n).encode(encoder),
        (_, Number::Float(n)) => ConstGauge::new(n).encode(encoder),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_health_says_how_many_commits_failed_and_why() {
        let m = Metrics::default();
        assert!(m.store.problems().is_empty());
        m.store.commit_failed(&"database or disk is full");
        assert_eq!(
            m.store.problems(),
            vec!["store: the last commit failed: database or disk is full".to_string()]
        );
        m.store.commit_failed(&"database or disk is full");
        assert_eq!(
            m.store.problems(),
            vec!["store: the last 2 commits failed: database or disk is full".to_string()]
        );
        let text = m.render(&[], None);
        assert!(text.contains("hopwatch_collector_healthy 0\n"), "{text}");
        assert!(
            text.contains("hopwatch_collector_commit_failures_in_a_row 2\n"),
            "{text}"
        );
        m.store.commit_succeeded();
        assert!(m.store.problems().is_empty());
        m.store.sync_failed(&"Input/output error");
        assert!(m.store.problems()[0].contains("until the collector is restarted"));
    }

    #[test]
    fn renders_counters_and_agents() {
        let m = Metrics::default();
        m.ingested[1].fetch_add(3, Ordering::Relaxed);
        m.reject(Reject::BadToken);
        let text = m.render(&[("leaf\"1".into(), 1_700_000_000_123, 2)], Some((5, 1)));
        assert!(
            text.contains("hopwatch_collector_events_ingested_total{type=\"link\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "hopwatch_collector_connections_rejected_total{reason=\"bad_token\"} 1\n"
            )
        );
        assert!(text.contains("hopwatch_collector_agent_last_seen_timestamp_seconds{agent=\"leaf\\\"1\"} 1700000000.123\n"));
        assert!(text.contains("hopwatch_collector_fleet_alerts_firing 2\n"));
        assert!(text.contains("hopwatch_collector_syslog_forwarded_total 5\n"));
        assert_eq!(m.ingested_total(), 3);
        assert!(text.contains("hopwatch_collector_healthy 1\n"), "{text}");
        assert_eq!(m.rejected(Reject::BadToken), 1);
    }

    #[test]
    fn renders_trace_counters_by_outcome() {
        let m = Metrics::default();
        m.traces_asked.fetch_add(3, Ordering::Relaxed);
        m.trace_ended(TraceOutcome::Answered);
        m.trace_ended(TraceOutcome::Timeout);
        m.trace_results_late.fetch_add(1, Ordering::Relaxed);
        let text = m.render(&[], None);
        assert!(
            text.contains("hopwatch_collector_trace_requests_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains("hopwatch_collector_trace_requests_ended_total{outcome=\"timeout\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("hopwatch_collector_trace_requests_ended_total{outcome=\"busy\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("hopwatch_collector_trace_results_late_total 1\n"),
            "{text}"
        );
        assert_eq!(m.traces_ended_count(TraceOutcome::Answered), 1);
    }
}
