//! Syslog forwarding of stored events, on a thread of its own: the store
//! publishes each event once it is durable on a bounded channel
//! ([`Published`]), and this thread sends them through the shared syslog
//! sender, so a slow or dead syslog server never holds up ingest. A send that
//! fails is retried after a backoff; while the server stays away the channel
//! fills, and once [`QUEUE`] events wait the store drops each further one and
//! counts it (`hopwatch_collector_syslog_dropped_total`), keeping the oldest.
//!
//! Each message's HOSTNAME is the agent the event came from, as RFC 5424 asks
//! of a relay, unless `hostname` names one for all. Where the header has no
//! HOSTNAME (the local socket) or one is named for all, a `text` message
//! starts with its agent instead (`leaf1: swp1 went down`); the `json` format
//! carries the `agent` field already.

use crate::store::writer::Published;
use hopwatch_wire::backoff::{Backoff, seed};
use hopwatch_wire::event::{Body, Event};
use hopwatch_wire::syslog::{Format, SyslogOutput, SyslogSettings};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

/// Events waiting for the forwarder at most, while the server is slow or
/// away.
pub const QUEUE: usize = 100_000;

/// How long shutdown waits for queued events to go out.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Bounds the retry delay after repeated failures.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The forwarder's counters for `/metrics`; what the store dropped is the
/// store's own count ([`crate::metrics::Metrics::forward_dropped`]).
#[derive(Debug, Default)]
pub struct ForwardStats {
    /// Events the server took.
    pub sent: AtomicU64,
    /// Sends that failed (each retried).
    pub failures: AtomicU64,
}

/// The forwarding thread and the channel it reads.
pub struct Forwarder {
    events: Published,
    stats: Arc<ForwardStats>,
    /// Set when shutdown stops waiting: the thread gives up on what is left.
    give_up: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
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
        Forwarder::with_queue(settings, QUEUE)
    }

    fn with_queue(settings: SyslogSettings, queue: usize) -> Forwarder {
        let per_agent = settings.hostname.is_empty();
        let text = settings.format == Format::Text;
        let mut inner = SyslogOutput::new(settings);
        if per_agent {
            inner = inner.relaying();
        }
        let prefix = text && !(per_agent && inner.has_hostname());
        let relay = Relay { inner, prefix };
        let (events, inbox) = sync_channel(queue);
        let stats = Arc::new(ForwardStats::default());
        let give_up = Arc::new(AtomicBool::new(false));
        let thread = {
            let stats = Arc::clone(&stats);
            let give_up = Arc::clone(&give_up);
            thread::Builder::new()
                .name("forward-syslog".into())
                .stack_size(256 * 1024)
                .spawn(move || forward(relay, &inbox, &stats, &give_up))
                .expect("spawning the forwarding thread")
        };
        Forwarder {
            events,
            stats,
            give_up,
            thread,
        }
    }

    /// The channel the store publishes durable events on.
    pub fn events(&self) -> Published {
        self.events.clone()
    }

    pub fn stats(&self) -> Arc<ForwardStats> {
        Arc::clone(&self.stats)
    }

    /// Sends what is queued, for [`CLOSE_GRACE`] at most, and stops. Every
    /// sender from [`events`](Self::events) must be gone (the store's
    /// writer has returned), or the thread waits for more until the grace
    /// runs out.
    pub fn close(self) {
        drop(self.events);
        let deadline = Instant::now() + CLOSE_GRACE;
        while !self.thread.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if self.thread.is_finished() {
            let _ = self.thread.join();
        } else {
            self.give_up.store(true, Ordering::SeqCst);
            self.thread.thread().unpark();
            tracing::warn!(
                "Syslog forwarding did not drain before exit; the events still queued are not forwarded."
            );
        }
    }
}

/// The forwarding thread: each event in turn, retried after a failure until
/// it goes through or shutdown gives up; returns once every sender is gone
/// and the queue is empty.
fn forward(mut relay: Relay, inbox: &Receiver<Event>, stats: &ForwardStats, give_up: &AtomicBool) {
    let mut last_error: Option<String> = None;
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX, seed("syslog-forward"));
    while let Ok(event) = inbox.recv() {
        if !relay.inner.accepts(&event) {
            continue;
        }
        loop {
            if give_up.load(Ordering::SeqCst) {
                return;
            }
            match relay.send(&event) {
                Ok(()) => {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    last_error = None;
                    backoff.succeeded();
                    break;
                }
                Err(error) => {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    let delay = backoff.failed();
                    let text = error.to_string();
                    // One line per distinct failure, not one per retry.
                    if last_error.as_deref() != Some(text.as_str()) {
                        tracing::warn!(%error, retry_in = ?delay, "Syslog forwarding failed.");
                    }
                    last_error = Some(text);
                    // Woken early only by shutdown giving up.
                    thread::park_timeout(delay);
                }
            }
        }
    }
}

/// The shared syslog sender, naming the agent in each text message.
struct Relay {
    inner: SyslogOutput,
    prefix: bool,
}

impl Relay {
    fn send(&mut self, event: &Event) -> Result<(), hopwatch_wire::syslog::SendError> {
        if !self.prefix {
            return self.inner.send(event);
        }
        let mut named = event.clone();
        match &mut named.body {
            Body::Alert(a) => a.message = format!("{}: {}", event.agent, a.message),
            Body::Link(l) => l.message = format!("{}: {}", event.agent, l.message),
            Body::Loss(l) => l.message = format!("{}: {}", event.agent, l.message),
            Body::Heartbeat(_) => {}
        }
        self.inner.send(&named)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopwatch_wire::event::{Link, LinkState};
    use hopwatch_wire::syslog::{Protocol, SyslogTarget};
    use std::net::{TcpListener, UdpSocket};

    fn settings(target: SyslogTarget) -> SyslogSettings {
        SyslogSettings {
            target,
            facility: syslog::Facility::LOG_LOCAL3,
            protocol: Protocol::Rfc5424,
            format: Format::Text,
            hostname: String::new(),
            types: vec!["link".into()],
        }
    }

    fn link_event(seq: u64) -> Event {
        Event {
            v: 1,
            agent: "leaf1".into(),
            boot: "b1".into(),
            seq,
            ts: "2023-11-14T22:13:20.000Z".into(),
            body: Body::Link(Link {
                interface: "swp1".into(),
                state: LinkState::Down,
                previous: LinkState::Up,
                carrier_changes: 1,
                oper_state: "down".into(),
                message: format!("swp1 went down ({seq})"),
                admin: None,
                reason: None,
            }),
        }
    }

    #[test]
    fn events_from_the_channel_reach_a_real_socket_in_order() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let target = SyslogTarget::Udp(server.local_addr().unwrap().to_string());
        let forwarder = Forwarder::with_queue(settings(target), 8);
        let events = forwarder.events();
        for seq in 1..=3 {
            events.send(link_event(seq)).unwrap();
        }
        drop(events);
        let stats = forwarder.stats();
        forwarder.close();
        let mut buf = [0u8; 2048];
        for seq in 1..=3 {
            let n = server.recv(&mut buf).unwrap();
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            // HOSTNAME is the agent's; the text is bare.
            assert!(message.contains(" leaf1 hopwatch "), "{message}");
            assert!(
                message.ends_with(&format!("- swp1 went down ({seq})")),
                "{message}"
            );
        }
        assert_eq!(stats.sent.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn shutdown_gives_up_on_a_dead_server_within_its_grace() {
        // A port that refuses connections: bound, then closed.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let forwarder =
            Forwarder::with_queue(settings(SyslogTarget::Tcp(format!("127.0.0.1:{port}"))), 8);
        let events = forwarder.events();
        events.send(link_event(1)).unwrap();
        drop(events);
        let stats = forwarder.stats();
        let started = Instant::now();
        while stats.failures.load(Ordering::Relaxed) == 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "never tried");
            thread::sleep(Duration::from_millis(5));
        }
        forwarder.close();
        assert!(
            started.elapsed() < CLOSE_GRACE + Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(stats.sent.load(Ordering::Relaxed), 0);
    }
}
