//! What `hopwatch status` reports, read from the agent's state on its loop
//! and from the counters the output threads keep.

use super::Agent;
use super::pace::human;
use crate::control::{
    self, FiringStatus, OutputStatus, RuleStatus, Status, StretchStatus, UnavailableStatus,
};
use crate::output::collector::CollectorMonitor;
use std::sync::atomic::Ordering;
use std::time::Instant;

impl Agent {
    pub(super) fn status(&self) -> Status {
        let now = Instant::now();
        let unavailable = self.engine.unavailable();
        Status {
            agent: self.config.agent.name.clone(),
            boot: self.seq.boot().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            uptime_s: self.started.elapsed().as_secs(),
            config: self
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "<embedded default>".into()),
            source: self.source_name.to_string(),
            trace_backend: self
                .config
                .agent
                .resolved_trace_backend()
                .as_str()
                .to_string(),
            link_watch: format!("{:?}", self.link_mode).to_lowercase(),
            interval_ms: self.pace.configured().as_millis() as u64,
            effective_interval_ms: self.pace.interval().as_millis() as u64,
            interval_stretched: self.pace.stretch().map(|stretch| StretchStatus {
                poll_ms: stretch.poll.as_millis() as u64,
                for_s: now.saturating_duration_since(stretch.since).as_secs(),
                reason: format!(
                    "the counter source is slow: a poll took {}, more than 20% of the {} interval",
                    human(stretch.poll),
                    human(self.pace.configured()),
                ),
            }),
            last_poll_us: self.stats.last_poll.as_micros() as u64,
            max_poll_us: self.stats.max_poll.as_micros() as u64,
            interfaces: self.stats.interfaces,
            ticks: self.stats.ticks,
            source_errors: self.stats.source_errors,
            last_source_error: self.stats.last_source_error.clone(),
            skipped_lines: self.stats.skipped_lines,
            last_tick_us: self.stats.last_tick.as_micros() as u64,
            max_tick_us: self.stats.max_tick.as_micros() as u64,
            rss_kib: control::rss_kib(),
            heap_kib: crate::memory::heap_bytes().map(|b| b as u64 / 1024),
            memory_limit_kib: crate::memory::limit().map(|b| b as u64 / 1024),
            last_seq: self.seq.last_seq(),
            rules: self
                .engine
                .rules()
                .iter()
                .map(|r| RuleStatus {
                    name: r.name.clone(),
                    when: r.when.text.clone(),
                    severity: r.severity,
                    interfaces: r.interfaces.patterns().to_vec(),
                    kind: r.kind.patterns().to_vec(),
                    unavailable: unavailable
                        .iter()
                        .filter(|u| u.rule == r.name)
                        .map(|u| UnavailableStatus {
                            interface: u.interface.clone(),
                            metrics: u.metrics.iter().map(|m| m.name().to_string()).collect(),
                        })
                        .collect(),
                })
                .collect(),
            firing: self
                .engine
                .firing()
                .into_iter()
                .map(|f| FiringStatus {
                    rule: f.rule,
                    interface: f.interface,
                    severity: f.severity,
                    for_s: now.saturating_duration_since(f.since).as_secs(),
                    value: f.value,
                })
                .collect(),
            outputs: self
                .outputs
                .iter()
                .map(|o| {
                    let s = o.stats();
                    OutputStatus {
                        name: o.name().to_string(),
                        sent: s.sent.load(Ordering::Relaxed),
                        failures: s.failures.load(Ordering::Relaxed),
                        dropped: s.dropped.load(Ordering::Relaxed),
                        queued: s.queued.load(Ordering::Relaxed),
                        last_error: s.last_error.lock().ok().and_then(|e| e.clone()),
                        collector: (o.name() == "collector")
                            .then(|| self.collector.as_ref().map(CollectorMonitor::status))
                            .flatten(),
                    }
                })
                .collect(),
            silences: self
                .silences
                .registry
                .active(std::time::SystemTime::now())
                .map(|a| a.silence.clone())
                .collect(),
        }
    }
}
