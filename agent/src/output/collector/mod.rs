//! The `collector` output: every event goes to the disk spool first, then
//! over one TCP (optionally TLS) connection the agent dials to the
//! collector, and leaves the spool only once the collector says it has
//! stored it. The protocol is [`crate::wire`].
//!
//! Two threads per output, so that sampling never waits and a slow network
//! never holds up the disk, nor the disk the network:
//! - the spool writer (the output's queue worker) takes events off the
//!   queue, appends them to the [`Spool`] at once and syncs it at most
//!   [`SYNC_INTERVAL`] later; it reports every event it must drop, so the
//!   agent can emit a `loss` event for them;
//! - the connection thread dials, says `hello`, resends from the
//!   collector's `last_seq` per boot (older boots first), streams new events
//!   as they are spooled and applies acknowledgements, all in one `poll(2)`
//!   loop over the socket and a wake-up pipe, so reading acks and writing
//!   events both progress without a thread per direction.
//!
//! With several addresses, a failed attempt moves on to the next at once
//! and the backoff runs once per round over all of them (`failover.rs`).
//! A refused hello (a bad token) waits the longest backoff before the next
//! round; any other failure backs off as [`super::backoff`] says: growing
//! across sessions that fail after their welcome, starting over only after
//! one made progress, and capped so a returning collector is found soon.
//! A collector that stops acknowledging while events are outstanding is
//! treated as gone after `ack_timeout`.
//!
//! Losses are counted exactly, each once (see `writer.rs`): events the spool
//! sheds when full, events kept in memory beyond 10,000 while the disk
//! fails, seqs that never arrived from the queue, seqs an earlier run never
//! spooled, and a line the collector refused (set aside in quarantine) all
//! become `loss` events through the agent (they need a seq). A full spool
//! first waits up to 2 s for the acks of events already sent rather than
//! declare lost what the collector may be storing that moment.
//!
//! A clean stop sends what the spool holds, waits briefly for its acks and
//! says `goodbye` as the last line.
//!
//! Here: the state both threads share and the monitor status reads. The
//! settings are in `settings.rs`, the spool writer in `writer.rs`, the
//! connection thread in `session.rs` over the socket and TLS of
//! `transport.rs`, which address it dials in `failover.rs`, and trace
//! requests in `trace.rs`.

use super::spool::{Spool, SpoolError};
use super::{OutputHandle, OutputStats, Worker};
use crate::control::{CollectorBoot, CollectorStatus};
use crate::event::Loss;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

mod failover;
mod session;
mod settings;
mod trace;
mod transport;
mod writer;

pub use settings::{
    AddressOrder, CollectorAddress, CollectorSettings, DEFAULT_PORT, MIN_TOKEN_BYTES, Secret,
    TlsSettings, TokenSource, parse_address,
};
use writer::Writer;

/// The longest an event waits in the page cache before the spool is synced
/// to the device: what a power loss can cost.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// How often a spool held by another process (the previous output of a
/// reload, finishing) is tried again, and for how long that is not an error.
const LOCK_RETRY: Duration = Duration::from_millis(100);
const LOCK_PATIENCE: Duration = Duration::from_secs(10);
/// How long the spool writer waits for the connection thread at exit.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// What the output needs from the agent.
pub struct Context {
    pub agent: String,
    pub boot: String,
    /// The seq of the first event this output will be given: a jump past
    /// the next expected seq means events fell out of the queue.
    pub first_seq: u64,
    pub state_dir: PathBuf,
    /// Told of every loss, from the spool writer's thread; the agent turns
    /// each into a `loss` event.
    pub on_loss: OnLoss,
    /// Makes the backend that answers the collector's `trace_request`s:
    /// the one `[agent] trace_backend` names.
    pub trace_backend: NewBackend,
    /// Given each set of silences the collector sends, from the connection
    /// thread; the agent's silences take it in place of the one before.
    pub on_silences: OnSilences,
}

/// Where the collector's silences go.
pub type OnSilences = Arc<dyn Fn(Vec<hopwatch_wire::silence::Silence>) + Send + Sync>;

/// Where losses go: called from the spool writer and, for a line the
/// collector refused, from the connection thread.
pub type OnLoss = Arc<dyn Fn(Loss) + Send + Sync>;

/// Makes a trace backend, on the thread that answers one request.
pub type NewBackend = Arc<dyn Fn() -> Box<dyn crate::trace::Backend> + Send + Sync>;

/// The spool directory under `state_dir`.
pub fn spool_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("spool")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    Connecting,
    Connected,
    Refused,
    Backoff,
}

impl LinkState {
    fn as_str(self) -> &'static str {
        match self {
            LinkState::Connecting => "connecting",
            LinkState::Connected => "connected",
            LinkState::Refused => "refused",
            LinkState::Backoff => "backoff",
        }
    }
}

struct Link {
    state: LinkState,
    /// The address being tried or connected to: an index into
    /// `settings.addresses`.
    address: usize,
    since: Instant,
    last_error: Option<String>,
}

/// What the spool holds, copied out after every change so status and
/// heartbeats never wait on the spool's lock (which disk I/O may hold).
#[derive(Default, Clone)]
struct Depth {
    events: u64,
    bytes: u64,
    quarantined: u64,
    boots: Vec<CollectorBoot>,
}

struct Shared {
    settings: CollectorSettings,
    agent: String,
    boot: String,
    dir: PathBuf,
    spool: Mutex<Option<Spool>>,
    /// Signalled after an ack or the end of a session changed what is in
    /// flight: a stopping spool writer waits on it for room.
    acked: Condvar,
    depth: Mutex<Depth>,
    link: Mutex<Link>,
    connects: AtomicU64,
    refused: AtomicU64,
    dropped: AtomicU64,
    disk_errors: AtomicU64,
    last_disk_error: Mutex<Option<String>>,
    in_memory: AtomicU64,
    stop: AtomicBool,
    /// A stop for a reload: the agent goes on, so no goodbye.
    handing_over: AtomicBool,
    /// Written to wake the connection thread: new events, or stop.
    waker: UnixStream,
    new_backend: NewBackend,
    on_loss: OnLoss,
    on_silences: OnSilences,
}

impl Shared {
    fn wake(&self) {
        // A full pipe already holds a wake-up.
        let _ = (&self.waker).write(&[1]);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The collector being tried or connected to, as written.
    fn address(&self) -> &str {
        let at = self.link.lock().expect("link state poisoned").address;
        &self.settings.addresses[at].text
    }

    fn set_address(&self, address: usize) {
        self.link.lock().expect("link state poisoned").address = address;
    }

    fn set_link(&self, state: LinkState, error: Option<String>) {
        let mut link = self.link.lock().expect("link state poisoned");
        if link.state != state {
            link.state = state;
            link.since = Instant::now();
        }
        if error.is_some() || state == LinkState::Connected {
            link.last_error = error;
        }
    }

    fn publish(&self, spool: &Spool) {
        let depth = Depth {
            events: spool.pending(),
            bytes: spool.bytes(),
            quarantined: spool.quarantined(),
            boots: spool
                .boots()
                .into_iter()
                .map(|b| CollectorBoot {
                    boot: b.boot,
                    acked_seq: b.acked,
                    last_seq: b.last_seq,
                    events: b.events,
                })
                .collect(),
        };
        *self.depth.lock().expect("depth poisoned") = depth;
    }

    fn disk_error(&self, error: &SpoolError) {
        self.disk_errors.fetch_add(1, Ordering::Relaxed);
        let text = error.to_string();
        let mut last = self.last_disk_error.lock().expect("disk error poisoned");
        if last.as_deref() != Some(text.as_str()) {
            tracing::warn!(%error, "Spool write failed; events wait in memory and sampling goes on.");
        }
        *last = Some(text);
    }

    fn disk_ok(&self) {
        let mut last = self.last_disk_error.lock().expect("disk error poisoned");
        if last.take().is_some() {
            tracing::info!("The spool is writable again.");
        }
    }
}

/// The agent's view of a running collector output, for status and
/// heartbeats; never blocks.
#[derive(Clone)]
pub struct CollectorMonitor {
    shared: Arc<Shared>,
}

impl CollectorMonitor {
    /// Events not yet acknowledged, on disk and waiting in memory.
    pub fn spool_depth(&self) -> u64 {
        self.shared.depth.lock().expect("depth poisoned").events
            + self.shared.in_memory.load(Ordering::Relaxed)
    }

    /// Events the spool had to let go of since the output started.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The output is about to be closed for a reload, not a shutdown: it
    /// leaves without a goodbye, so the collector does not see this agent
    /// stop.
    pub fn hand_over(&self) {
        self.shared.handing_over.store(true, Ordering::Relaxed);
    }

    pub fn status(&self) -> CollectorStatus {
        let s = &self.shared;
        let depth = s.depth.lock().expect("depth poisoned").clone();
        let link = s.link.lock().expect("link state poisoned");
        CollectorStatus {
            address: s.settings.addresses[link.address].text.clone(),
            addresses: s
                .settings
                .addresses
                .iter()
                .map(|a| a.text.clone())
                .collect(),
            order: s.settings.order.as_str().to_string(),
            tls: s.settings.tls.is_some(),
            state: link.state.as_str().to_string(),
            state_for_s: link.since.elapsed().as_secs(),
            last_error: link.last_error.clone(),
            connects: s.connects.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            spool_events: depth.events,
            spool_bytes: depth.bytes,
            spool_max: s.settings.spool_max,
            spool_dropped: s.dropped.load(Ordering::Relaxed),
            quarantined: depth.quarantined,
            in_memory: s.in_memory.load(Ordering::Relaxed),
            disk_errors: s.disk_errors.load(Ordering::Relaxed),
            last_disk_error: s
                .last_disk_error
                .lock()
                .expect("disk error poisoned")
                .clone(),
            boots: depth.boots,
        }
    }
}

/// Starts the output: its spool writer behind a queue of `capacity` events,
/// and its connection thread.
pub fn spawn(
    settings: CollectorSettings,
    context: Context,
    capacity: usize,
) -> io::Result<(OutputHandle, CollectorMonitor)> {
    for warning in settings.token.warnings() {
        tracing::warn!("{warning}");
    }
    let (waker, wakee) = UnixStream::pair()?;
    waker.set_nonblocking(true)?;
    wakee.set_nonblocking(true)?;
    let shared = Arc::new(Shared {
        dir: spool_dir(&context.state_dir),
        agent: context.agent.clone(),
        boot: context.boot.clone(),
        spool: Mutex::new(None),
        acked: Condvar::new(),
        depth: Mutex::new(Depth::default()),
        link: Mutex::new(Link {
            state: LinkState::Connecting,
            address: 0,
            since: Instant::now(),
            last_error: None,
        }),
        connects: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        disk_errors: AtomicU64::new(0),
        last_disk_error: Mutex::new(None),
        in_memory: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        handing_over: AtomicBool::new(false),
        waker,
        settings,
        new_backend: Arc::clone(&context.trace_backend),
        on_loss: Arc::clone(&context.on_loss),
        on_silences: Arc::clone(&context.on_silences),
    });
    let monitor = CollectorMonitor {
        shared: Arc::clone(&shared),
    };
    // Both threads are started here, so an OS that refuses either fails
    // the output's start rather than a thread of it.
    let stats = Arc::<OutputStats>::default();
    let (net_shared, net_stats) = (Arc::clone(&shared), Arc::clone(&stats));
    let network = Worker::spawn("collector-conn".into(), 512 * 1024, move || {
        session::connection_loop(&net_shared, wakee, &net_stats)
    })?;
    let writer_shared = Arc::clone(&shared);
    let spawned = OutputHandle::spawn_worker_counting("collector", capacity, stats, move |inbox| {
        Writer::new(
            Arc::clone(&writer_shared),
            Arc::clone(&context.on_loss),
            context.first_seq,
        )
        .run(&inbox);
        writer_shared.stop.store(true, Ordering::Relaxed);
        writer_shared.wake();
        network.join_within(STOP_WAIT);
    });
    match spawned {
        Ok(handle) => Ok((handle, monitor)),
        Err(error) => {
            // The connection thread is stopped here instead, as the
            // writer would have.
            shared.stop.store(true, Ordering::Relaxed);
            shared.wake();
            Err(error)
        }
    }
}
