//! Syslog forwarding of stored events, with the agent's own syslog output
//! on its own thread behind a bounded queue: a slow or dead syslog server
//! never holds up ingest, and overflow drops the oldest and counts them.
//!
//! Each message's HOSTNAME is the agent the event came from, as RFC 5424 asks
//! of a relay, unless `hostname` names one for all. Where the header has no
//! HOSTNAME (the local socket) or one is named for all, a `text` message
//! starts with its agent instead (`leaf1: swp1 went down`); the `json` format
//! carries the `agent` field already.

use hopwatch::output::{Output, OutputError, OutputHandle, OutputStats};
use hopwatch_wire::event::{Body, Event};
use hopwatch_wire::syslog::{Format, SyslogOutput, SyslogSettings};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Events the forwarder holds while the server is slow or away.
const QUEUE: usize = 100_000;

/// How long shutdown waits for queued events to go out.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The writer's end of the forwarding thread.
pub struct Forwarder {
    handle: OutputHandle,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder").finish_non_exhaustive()
    }
}

impl Forwarder {
    /// Starts the forwarding thread; connecting waits for the first event.
    /// An empty `settings.hostname` means each event's agent.
    pub fn start(settings: SyslogSettings) -> Forwarder {
        let per_agent = settings.hostname.is_empty();
        let text = settings.format == Format::Text;
        let mut inner = SyslogOutput::new(settings);
        if per_agent {
            inner = inner.relaying();
        }
        let prefix = text && !(per_agent && inner.has_hostname());
        let relay = Relay { inner, prefix };
        Forwarder {
            handle: OutputHandle::spawn(Box::new(relay), QUEUE),
        }
    }

    /// Queues an event; never blocks.
    pub fn send(&self, event: Event) {
        self.handle.enqueue(Arc::new(event));
    }

    pub fn stats(&self) -> Arc<OutputStats> {
        Arc::clone(self.handle.stats())
    }

    /// Sends what is queued (for a short while at most) and stops.
    pub fn close(self) {
        self.handle.close(CLOSE_GRACE);
    }
}

/// (sent, dropped) for `/metrics`.
pub fn counts(stats: &OutputStats) -> (u64, u64) {
    (
        stats.sent.load(Ordering::Relaxed),
        stats.dropped.load(Ordering::Relaxed),
    )
}

/// The agent's syslog output, naming the agent in each text message.
struct Relay {
    inner: SyslogOutput,
    prefix: bool,
}

impl Output for Relay {
    fn name(&self) -> &str {
        "syslog"
    }

    fn accepts(&self, event: &Event) -> bool {
        self.inner.accepts(event)
    }

    fn send(&mut self, event: &Event) -> Result<(), OutputError> {
        if !self.prefix {
            return self.inner.send(event).map_err(OutputError::from);
        }
        let mut named = event.clone();
        match &mut named.body {
            Body::Alert(a) => a.message = format!("{}: {}", event.agent, a.message),
            Body::Link(l) => l.message = format!("{}: {}", event.agent, l.message),
            Body::Loss(l) => l.message = format!("{}: {}", event.agent, l.message),
            Body::Heartbeat(_) => {}
        }
        self.inner.send(&named).map_err(OutputError::from)
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        self.inner.flush()
    }
}
