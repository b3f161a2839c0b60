//! The collector's counters and their Prometheus text rendering for
//! `GET /metrics`. Counters are atomics bumped where things happen; per-agent
//! figures come from the store at scrape time.

use std::fmt::Write;
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
    pub api_requests: AtomicU64,
    pub api_unauthorized: AtomicU64,
    pub api_rate_limited: AtomicU64,
    pub http_connections_total: AtomicU64,
    pub http_connections_open: AtomicU64,
    pub http_closed: [AtomicU64; 4],
    pub store: StoreHealth,
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

impl Metrics {
    pub fn reject(&self, why: Reject) {
        let i = Reject::ALL.iter().position(|r| *r == why).expect("listed");
        self.rejected[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, why: Reject) -> u64 {
        let i = Reject::ALL.iter().position(|r| *r == why).expect("listed");
        self.rejected[i].load(Ordering::Relaxed)
    }

    pub fn http_closed(&self, why: HttpClose) {
        let i = HttpClose::ALL
            .iter()
            .position(|r| *r == why)
            .expect("listed");
        self.http_closed[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn http_closed_count(&self, why: HttpClose) -> u64 {
        let i = HttpClose::ALL
            .iter()
            .position(|r| *r == why)
            .expect("listed");
        self.http_closed[i].load(Ordering::Relaxed)
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
        let mut out = String::with_capacity(4096);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        family(
            &mut out,
            "hopwatch_collector_events_ingested_total",
            "counter",
            "Events stored, by type.",
        );
        for (i, kind) in ["alert", "link", "heartbeat", "loss", "other"]
            .iter()
            .enumerate()
        {
            let _ = writeln!(
                out,
                "hopwatch_collector_events_ingested_total{{type=\"{kind}\"}} {}",
                load(&self.ingested[i])
            );
        }
        family(
            &mut out,
            "hopwatch_collector_events_duplicate_total",
            "counter",
            "Events received again and ignored (already stored).",
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_events_duplicate_total {}",
            load(&self.duplicates)
        );
        family(
            &mut out,
            "hopwatch_collector_connections_rejected_total",
            "counter",
            "Agent connections the collector ended, by reason.",
        );
        for (i, why) in Reject::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "hopwatch_collector_connections_rejected_total{{reason=\"{}\"}} {}",
                why.as_str(),
                load(&self.rejected[i])
            );
        }
        family(
            &mut out,
            "hopwatch_collector_connections_total",
            "counter",
            "Agent connections accepted.",
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_connections_total {}",
            load(&self.connections_total)
        );
        family(
            &mut out,
            "hopwatch_collector_connections_open",
            "gauge",
            "Agent connections open now.",
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_connections_open {}",
            load(&self.connections_open)
        );
        family(
            &mut out,
            "hopwatch_collector_commits_total",
            "counter",
            "Transactions committed.",
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_commits_total {}",
            load(&self.batches)
        );
        family(
            &mut out,
            "hopwatch_collector_syncs_total",
            "counter",
            "fsyncs of the store's WAL; each makes every batch committed before it durable.",
        );
        let _ = writeln!(out, "hopwatch_collector_syncs_total {}", load(&self.syncs));
        family(
            &mut out,
            "hopwatch_collector_commit_seconds_total",
            "counter",
            "Time spent applying and committing batches.",
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_commit_seconds_total {:.6}",
            load(&self.commit_micros) as f64 / 1e6
        );
        family(
            &mut out,
            "hopwatch_collector_commit_failures_total",
            "counter",
            "Transactions that failed (their events were not acknowledged).",
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_commit_failures_total {}",
            load(&self.commit_failures)
        );
        family(
            &mut out,
            "hopwatch_collector_commit_failures_in_a_row",
            "gauge",
            "Transactions that failed since the last one that succeeded.",
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_commit_failures_in_a_row {}",
            self.store.failed_in_a_row()
        );
        family(
            &mut out,
            "hopwatch_collector_healthy",
            "gauge",
            "1 when /healthz answers ok, 0 when it reports the collector degraded.",
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_healthy {}",
            u8::from(self.store.problems().is_empty())
        );
        family(
            &mut out,
            "hopwatch_collector_pruned_rows_total",
            "counter",
            "Rows deleted for being older than `retain`.",
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_pruned_rows_total {}",
            load(&self.pruned)
        );
        family(
            &mut out,
            "hopwatch_collector_api_requests_total",
            "counter",
            "API requests, by outcome.",
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_api_requests_total{{outcome=\"served\"}} {}",
            load(&self.api_requests)
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_api_requests_total{{outcome=\"unauthorized\"}} {}",
            load(&self.api_unauthorized)
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_api_requests_total{{outcome=\"rate_limited\"}} {}",
            load(&self.api_rate_limited)
        );
        family(
            &mut out,
            "hopwatch_collector_http_connections_total",
            "counter",
            "HTTP connections accepted.",
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_http_connections_total {}",
            load(&self.http_connections_total)
        );
        family(
            &mut out,
            "hopwatch_collector_http_connections_open",
            "gauge",
            "HTTP connections open now.",
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_http_connections_open {}",
            load(&self.http_connections_open)
        );
        family(
            &mut out,
            "hopwatch_collector_http_connections_closed_total",
            "counter",
            "HTTP connections the collector closed itself, by reason.",
        );
        for (i, why) in HttpClose::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "hopwatch_collector_http_connections_closed_total{{reason=\"{}\"}} {}",
                why.as_str(),
                load(&self.http_closed[i])
            );
        }
        if let Some((sent, dropped)) = forward {
            family(
                &mut out,
                "hopwatch_collector_syslog_forwarded_total",
                "counter",
                "Events forwarded to syslog.",
            );
            let _ = writeln!(out, "hopwatch_collector_syslog_forwarded_total {sent}");
            family(
                &mut out,
                "hopwatch_collector_syslog_dropped_total",
                "counter",
                "Events the syslog forwarder dropped (its queue overflowed).",
            );
            let _ = writeln!(out, "hopwatch_collector_syslog_dropped_total {dropped}");
        }
        family(
            &mut out,
            "hopwatch_collector_agent_last_seen_timestamp_seconds",
            "gauge",
            "When each agent was last heard from (Unix time).",
        );
        for (agent, last_seen_ms, _) in agents {
            let _ = writeln!(
                out,
                "hopwatch_collector_agent_last_seen_timestamp_seconds{{agent=\"{}\"}} {:.3}",
                label(agent),
                *last_seen_ms as f64 / 1000.0
            );
        }
        family(
            &mut out,
            "hopwatch_collector_alerts_firing",
            "gauge",
            "Alerts firing now, per agent.",
        );
        for (agent, _, firing) in agents {
            let _ = writeln!(
                out,
                "hopwatch_collector_alerts_firing{{agent=\"{}\"}} {firing}",
                label(agent)
            );
        }
        family(
            &mut out,
            "hopwatch_collector_alerts_firing_total",
            "gauge",
            "Alerts firing now, whole fleet.",
        );
        let _ = writeln!(
            out,
            "hopwatch_collector_alerts_firing_total {}",
            agents.iter().map(|a| a.2).sum::<u64>()
        );
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value as the exposition format asks.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
        assert!(text.contains("hopwatch_collector_alerts_firing_total 2\n"));
        assert!(text.contains("hopwatch_collector_syslog_forwarded_total 5\n"));
        assert_eq!(m.ingested_total(), 3);
        assert!(text.contains("hopwatch_collector_healthy 1\n"), "{text}");
        assert_eq!(m.rejected(Reject::BadToken), 1);
    }
}
