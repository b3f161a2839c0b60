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
//! A refused hello (a bad token) waits the longest backoff before the next
//! try; any other failure backs off as [`super::backoff`] says: growing
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

use super::backoff::{Backoff, seed};
use super::spool::{Spool, SpoolError};
use super::{OutputHandle, OutputStats};
use crate::control::{CollectorBoot, CollectorStatus};
use crate::event::Loss;
use crate::trace::{TraceAnswer, TraceQuery};
use crate::wire::{
    CollectorMessage, Goodbye, GoodbyeTag, Hello, HelloTag, PROTOCOL_VERSION, TraceResult,
    TraceResultTag,
};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

mod transport;
mod writer;

use std::time::{Duration, Instant};
use transport::{Conn, connect, tls_config};
use writer::Writer;

/// The port collectors listen on for agents when `address` names none.
pub const DEFAULT_PORT: u16 = 7000;

/// The longest an event waits in the page cache before the spool is synced
/// to the device: what a power loss can cost.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// How often a spool held by another process (the previous output of a
/// reload, finishing) is tried again, and for how long that is not an error.
const LOCK_RETRY: Duration = Duration::from_millis(100);
const LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// How long the collector has to answer `hello`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `poll` sleeps, so timeouts are checked at least this often.
const POLL_MAX: Duration = Duration::from_secs(1);
/// How much is read from the spool at a time, and how much may wait in the
/// connection's buffer before the spool is read again.
const BATCH_BYTES: usize = 64 * 1024;
const HIGH_WATER: usize = 256 * 1024;
/// Traces answered at once for the collector.
const MAX_TRACES: usize = 4;
/// How long the spool writer waits for the connection thread at exit.
const STOP_WAIT: Duration = Duration::from_secs(2);
/// How long a clean stop waits for the acks of what the spool holds before
/// it says goodbye, and then for the goodbye to leave; within
/// [`STOP_WAIT`].
const FAREWELL: Duration = Duration::from_millis(1500);
const FAREWELL_SEND: Duration = Duration::from_millis(300);

pub use hopwatch_wire::Secret;

/// Where the agent's token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `token`: written in the config.
    Inline(Secret),
    /// `token_file`: read at every connection attempt, so a rotated token
    /// is picked up without a restart.
    File(PathBuf),
}

/// The shortest token accepted: a shorter one can be guessed.
pub const MIN_TOKEN_BYTES: usize = 16;

impl TokenSource {
    /// The token, or why it cannot be used (naming the file and the fix).
    pub fn read(&self) -> Result<Secret, String> {
        match self {
            TokenSource::Inline(secret) => Ok(secret.clone()),
            TokenSource::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read token_file {}: {e}", path.display()))?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(format!("token_file {} is empty", path.display()));
                }
                if token.len() < MIN_TOKEN_BYTES {
                    return Err(format!(
                        "the token in token_file {} is {} bytes, shorter than {MIN_TOKEN_BYTES}: \
                         write a longer one, e.g. `head -c 24 /dev/urandom | base64 > {}`",
                        path.display(),
                        token.len(),
                        path.display()
                    ));
                }
                Ok(Secret::new(token))
            }
        }
    }

    /// What an operator should fix about where the token is kept.
    pub fn warnings(&self) -> Vec<String> {
        use std::os::unix::fs::PermissionsExt;
        let TokenSource::File(path) = self else {
            return Vec::new();
        };
        match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o004 != 0 => vec![format!(
                "token_file {} is readable by every user (mode {:o}): chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            )],
            _ => Vec::new(),
        }
    }
}

/// `[output.collector.tls]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM CA certificates the collector's certificate must chain to;
    /// `None` uses the system's bundle.
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain and its key, for collectors that ask for
    /// one; both or neither.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The name to verify the collector's certificate against (and send as
    /// SNI); by default the host of `address`.
    pub server_name: Option<String>,
}

/// `[output.collector]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorSettings {
    /// `address` as written, for logs and status.
    pub address: String,
    pub host: String,
    pub port: u16,
    pub token: TokenSource,
    pub tls: Option<TlsSettings>,
    /// The spool's bound, in bytes.
    pub spool_max: u64,
    /// How long outstanding events may go unacknowledged before the
    /// connection counts as dead.
    pub ack_timeout: Duration,
    /// The longest wait between connection attempts.
    pub backoff_max: Duration,
}

/// Splits `host:port`, `[v6]:port`, or a bare host (port 7000).
pub fn parse_address(address: &str) -> Result<(String, u16), String> {
    let bad = |why: &str| {
        format!("collector address `{address}` {why}; expected HOST:PORT or [IPv6]:PORT")
    };
    if address.contains("://") {
        return Err(bad("has a scheme"));
    }
    let (host, port) = super::split_host_port(address, DEFAULT_PORT, &bad)?;
    if host.contains(['/', ' ']) {
        return Err(bad("has a path or a space in its host"));
    }
    Ok((host.to_string(), port))
}

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
}

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
}

impl Shared {
    fn wake(&self) {
        // A full pipe already holds a wake-up.
        let _ = (&self.waker).write(&[1]);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
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
            address: s.settings.address.clone(),
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
        depth: Mutex::new(Depth::default()),
        link: Mutex::new(Link {
            state: LinkState::Connecting,
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
    });
    let monitor = CollectorMonitor {
        shared: Arc::clone(&shared),
    };
    let handle = OutputHandle::spawn_worker("collector", capacity, move |inbox| {
        let stats = Arc::clone(inbox.stats());
        let net_shared = Arc::clone(&shared);
        let network = thread::Builder::new()
            .name("collector-conn".into())
            .stack_size(512 * 1024)
            .spawn(move || connection_loop(&net_shared, wakee, &stats))
            .expect("spawning the collector connection thread");
        Writer::new(
            Arc::clone(&shared),
            Arc::clone(&context.on_loss),
            context.first_seq,
        )
        .run(&inbox);
        shared.stop.store(true, Ordering::Relaxed);
        shared.wake();
        let deadline = Instant::now() + STOP_WAIT;
        while !network.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    });
    Ok((handle, monitor))
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Setup(String),
    #[error("cannot connect to {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("the collector refused this agent: {0}")]
    Refused(String),
    #[error("{0}")]
    Broken(String),
    #[error("connection to the collector failed: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// The connection thread: connect, run a session, back off, repeat, until
/// the output stops.
fn connection_loop(shared: &Shared, wakee: UnixStream, stats: &OutputStats) {
    let mut backoff = Backoff::new(shared.settings.backoff_max, seed(&shared.boot));
    let mut tls = None;
    let mut logged: Option<String> = None;
    let (trace_tx, trace_rx) = mpsc::channel();
    let mut link = Session {
        shared,
        wakee: &wakee,
        stats,
        trace_tx,
        trace_rx,
        traces: Arc::new(AtomicUsize::new(0)),
    };
    loop {
        if shared.stopped() {
            return;
        }
        if shared.spool.lock().expect("spool poisoned").is_none() {
            if !pause(shared, &wakee, LOCK_RETRY) {
                return;
            }
            continue;
        }
        shared.set_link(LinkState::Connecting, None);
        let mut welcomed = false;
        let mut progressed = false;
        let started = Instant::now();
        let result = link.run(&mut tls, &mut progressed, &mut welcomed);
        let error = match result {
            Ok(()) => return,
            Err(error) => error,
        };
        stats.failures.fetch_add(1, Ordering::Relaxed);
        let text = error.to_string();
        *stats.last_error.lock().expect("stats poisoned") = Some(text.clone());
        if welcomed {
            logged = None;
            // Nothing is in flight on a dead connection: the spool may shed
            // those events at once, and the next welcome says what arrived.
            if let Some(spool) = shared.spool.lock().expect("spool poisoned").as_mut() {
                let _ = spool.rewind(&BTreeMap::new());
            }
        }
        let (state, delay) = match &error {
            SessionError::Refused(reason) => {
                shared.refused.fetch_add(1, Ordering::Relaxed);
                let delay = backoff.longest();
                if logged.as_deref() != Some(text.as_str()) {
                    tracing::warn!(collector = %shared.settings.address, reason = %reason, retry_in = ?delay, "The collector refused this agent's hello; the reason says why.");
                }
                (LinkState::Refused, delay)
            }
            _ => {
                let delay = backoff.after_session(started, Instant::now(), progressed);
                if logged.as_deref() != Some(text.as_str()) {
                    tracing::warn!(collector = %shared.settings.address, %error, retry_in = ?delay, "Collector connection failed; events stay in the spool.");
                } else {
                    tracing::debug!(%error, retry_in = ?delay, "Collector connection failed again.");
                }
                (LinkState::Backoff, delay)
            }
        };
        logged = Some(text.clone());
        shared.set_link(state, Some(text));
        if !pause(shared, &wakee, delay) {
            return;
        }
    }
}

/// Sleeps for `delay`, or until the output stops; false when it stopped.
fn pause(shared: &Shared, wakee: &UnixStream, delay: Duration) -> bool {
    let deadline = Instant::now() + delay;
    loop {
        if shared.stopped() {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        let mut fds = [PollFd::new(wakee.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, poll_timeout(left));
        drain(wakee);
    }
}

fn poll_timeout(d: Duration) -> PollTimeout {
    // Round up, so a deadline 0.4 ms away is not polled for 0 ms in a spin.
    let ms = d.as_micros().div_ceil(1000).min(i32::MAX as u128);
    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
}

fn drain(wakee: &UnixStream) {
    let mut buf = [0u8; 64];
    while matches!((&*wakee).read(&mut buf), Ok(n) if n > 0) {}
}

/// What one connection needs across its lifetime.
struct Session<'a> {
    shared: &'a Shared,
    wakee: &'a UnixStream,
    stats: &'a OutputStats,
    trace_tx: mpsc::Sender<TraceResult>,
    trace_rx: mpsc::Receiver<TraceResult>,
    /// Traces running now.
    traces: Arc<AtomicUsize>,
}

impl Session<'_> {
    /// One connection, from dialling to its end; `Ok` only when the output
    /// stops.
    fn run(
        &mut self,
        tls: &mut Option<Arc<ClientConfig>>,
        progressed: &mut bool,
        welcomed: &mut bool,
    ) -> Result<(), SessionError> {
        let shared = self.shared;
        let settings = &shared.settings;
        let token = settings.token.read().map_err(SessionError::Setup)?;
        let tls_conn = match &settings.tls {
            Some(tls_settings) => {
                let config = match tls {
                    Some(config) => Arc::clone(config),
                    None => {
                        let config = tls_config(tls_settings).map_err(SessionError::Setup)?;
                        Arc::clone(tls.insert(config))
                    }
                };
                let name = tls_settings
                    .server_name
                    .clone()
                    .unwrap_or_else(|| settings.host.clone());
                let name = ServerName::try_from(name)
                    .map_err(|e| SessionError::Setup(format!("bad TLS server name: {e}")))?;
                Some(
                    ClientConnection::new(config, name)
                        .map_err(|e| SessionError::Setup(format!("TLS setup failed: {e}")))?,
                )
            }
            None => None,
        };
        let tcp =
            connect(&settings.host, settings.port).map_err(|reason| SessionError::Connect {
                address: settings.address.clone(),
                reason,
            })?;
        let mut conn = Conn::new(tcp, tls_conn)?;
        let boots = {
            let guard = shared.spool.lock().expect("spool poisoned");
            guard.as_ref().map(Spool::unacked_boots).unwrap_or_default()
        };
        let hello = Hello {
            kind: HelloTag::Hello,
            protocol: PROTOCOL_VERSION,
            token: token.expose().to_string(),
            agent: shared.agent.clone(),
            boot: shared.boot.clone(),
            boots,
            version: env!("CARGO_PKG_VERSION").to_string(),
            addresses: crate::addresses::vrf_addresses(),
            now: Some(crate::event::timestamp(std::time::SystemTime::now())),
        };
        let mut line = serde_json::to_vec(&hello).expect("hello serializes");
        line.push(b'\n');
        conn.queue(&line);
        drop(hello);

        // Answers to an earlier connection's requests have nowhere to go.
        while self.trace_rx.try_recv().is_ok() {}
        let handshake_deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let ack_timeout = settings.ack_timeout;
        // Since when outstanding events have gone without an ack.
        let mut waiting_since: Option<Instant> = None;
        let mut lines = Vec::new();
        loop {
            if *welcomed {
                self.fill(&mut conn, &mut waiting_since)?;
                while let Ok(result) = self.trace_rx.try_recv() {
                    let mut line = serde_json::to_vec(&result).expect("trace results serialize");
                    line.push(b'\n');
                    conn.queue(&line);
                }
            }
            conn.flush()?;

            let now = Instant::now();
            let mut wait = POLL_MAX;
            if !*welcomed {
                if now >= handshake_deadline {
                    return Err(SessionError::Broken(format!(
                        "no welcome from the collector within {}s",
                        HANDSHAKE_TIMEOUT.as_secs()
                    )));
                }
                wait = wait.min(handshake_deadline - now);
            }
            if let Some(since) = waiting_since {
                let silent = now.duration_since(since);
                if silent >= ack_timeout {
                    return Err(SessionError::Broken(format!(
                        "no acknowledgement from the collector for {}s with events outstanding",
                        silent.as_secs()
                    )));
                }
                wait = wait.min(ack_timeout - silent);
            }

            let mut socket_events = PollFlags::POLLIN;
            if conn.wants_write() {
                socket_events |= PollFlags::POLLOUT;
            }
            let (socket_ready, woken) = {
                let mut fds = [
                    PollFd::new(conn.tcp.as_fd(), socket_events),
                    PollFd::new(self.wakee.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, poll_timeout(wait)) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(SessionError::Io(e.into())),
                }
                (fds[0].any().unwrap_or(false), fds[1].any().unwrap_or(false))
            };
            if woken {
                drain(self.wakee);
            }
            if shared.stopped() {
                if *welcomed && !shared.handing_over.load(Ordering::Relaxed) {
                    self.farewell(&mut conn, welcomed, progressed);
                }
                return Ok(());
            }
            if !socket_ready {
                continue;
            }
            let eof = conn.read(&mut lines)?;
            for line in lines.drain(..) {
                self.handle(&line, welcomed, progressed, &mut waiting_since)?;
            }
            if eof {
                return Err(SessionError::Broken(
                    "the collector closed the connection".into(),
                ));
            }
        }
    }

    /// A clean stop: sends what the spool still holds, waits a moment for
    /// its acks, then says `goodbye` as the last line, so the collector
    /// marks this agent stopped at once. Best effort within [`FAREWELL`]:
    /// whatever is not acknowledged stays in the spool for the next start.
    fn farewell(&mut self, conn: &mut Conn, welcomed: &mut bool, progressed: &mut bool) {
        let deadline = Instant::now() + FAREWELL;
        let mut waiting_since = None;
        let mut lines = Vec::new();
        loop {
            if self.fill(conn, &mut waiting_since).is_err() || conn.flush().is_err() {
                return;
            }
            let outstanding = {
                let guard = self.shared.spool.lock().expect("spool poisoned");
                guard.as_ref().is_some_and(Spool::outstanding)
            };
            if !conn.wants_write() && !outstanding {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                tracing::info!(
                    "Stopping before the collector acknowledged every event; the rest stays in the spool."
                );
                break;
            }
            if !self.wait_socket(conn, deadline - now) {
                return;
            }
            match conn.read(&mut lines) {
                Ok(eof) => {
                    for line in lines.drain(..) {
                        if self
                            .handle(&line, welcomed, progressed, &mut waiting_since)
                            .is_err()
                        {
                            return;
                        }
                    }
                    if eof {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        let last_seq = {
            let guard = self.shared.spool.lock().expect("spool poisoned");
            guard
                .as_ref()
                .map_or(0, |spool| spool.last_seq(&self.shared.boot))
        };
        let goodbye = Goodbye {
            kind: GoodbyeTag::Goodbye,
            boot: self.shared.boot.clone(),
            last_seq,
        };
        let mut line = serde_json::to_vec(&goodbye).expect("goodbye serializes");
        line.push(b'\n');
        conn.queue(&line);
        let until = Instant::now() + FAREWELL_SEND;
        while conn.flush().is_ok() && conn.wants_write() {
            let now = Instant::now();
            if now >= until || !self.wait_socket(conn, until - now) {
                break;
            }
        }
        let _ = conn.tcp.shutdown(std::net::Shutdown::Write);
        tracing::info!(last_seq, "Said goodbye to the collector.");
    }

    /// Waits until the socket is readable (or writable, when output is
    /// queued) or `wait` passes; false on a poll error.
    fn wait_socket(&self, conn: &Conn, wait: Duration) -> bool {
        let mut flags = PollFlags::POLLIN;
        if conn.wants_write() {
            flags |= PollFlags::POLLOUT;
        }
        let mut fds = [PollFd::new(conn.tcp.as_fd(), flags)];
        matches!(
            poll(&mut fds, poll_timeout(wait)),
            Ok(_) | Err(nix::errno::Errno::EINTR)
        )
    }

    /// Reads spooled events into the connection's buffer up to its high
    /// water mark.
    fn fill(
        &self,
        conn: &mut Conn,
        waiting_since: &mut Option<Instant>,
    ) -> Result<(), SessionError> {
        while conn.backlog() < HIGH_WATER {
            let batch = {
                let mut guard = self.shared.spool.lock().expect("spool poisoned");
                let spool = guard.as_mut().expect("the spool is open while connected");
                spool.next_batch(BATCH_BYTES)
            };
            let batch = match batch {
                Ok(Some(batch)) => batch,
                Ok(None) => return Ok(()),
                Err(error) => {
                    self.shared.disk_error(&error);
                    return Err(error.into());
                }
            };
            conn.queue(&batch.lines);
            self.stats.sent.fetch_add(batch.count, Ordering::Relaxed);
            waiting_since.get_or_insert_with(Instant::now);
        }
        Ok(())
    }

    fn handle(
        &mut self,
        line: &[u8],
        welcomed: &mut bool,
        progressed: &mut bool,
        waiting_since: &mut Option<Instant>,
    ) -> Result<(), SessionError> {
        let shared = self.shared;
        let message: CollectorMessage = serde_json::from_slice(line).map_err(|e| {
            SessionError::Broken(format!("unreadable line from the collector: {e}"))
        })?;
        match (*welcomed, message) {
            (false, CollectorMessage::Welcome { protocol, last_seq }) => {
                if protocol != PROTOCOL_VERSION {
                    return Err(SessionError::Broken(format!(
                        "the collector speaks protocol {protocol}, this agent {PROTOCOL_VERSION}"
                    )));
                }
                self.resume(&last_seq)?;
                *welcomed = true;
                shared.connects.fetch_add(1, Ordering::Relaxed);
                shared.set_link(LinkState::Connected, None);
                *self.stats.last_error.lock().expect("stats poisoned") = None;
                tracing::info!(
                    collector = %shared.settings.address,
                    tls = shared.settings.tls.is_some(),
                    resume = ?last_seq,
                    "Connected to the collector."
                );
            }
            (false, CollectorMessage::Refused { reason }) => {
                return Err(SessionError::Refused(reason));
            }
            (true, CollectorMessage::Ack { boot, seq }) => {
                let mut guard = shared.spool.lock().expect("spool poisoned");
                let spool = guard.as_mut().expect("the spool is open while connected");
                let before = spool.acked(&boot);
                let result = spool.ack(&boot, seq);
                *progressed |= spool.acked(&boot) > before;
                shared.publish(spool);
                let outstanding = spool.outstanding();
                drop(guard);
                if let Err(error) = result {
                    // The ack holds in memory; at worst a restart resends
                    // events the collector drops as duplicates.
                    shared.disk_error(&error);
                }
                *waiting_since = outstanding.then(Instant::now);
            }
            (true, CollectorMessage::TraceRequest { id, query }) => match query {
                Ok(query) => self.trace(id, query),
                // One query this agent cannot read is answered, not fatal.
                Err(why) => self.answer(
                    id,
                    TraceAnswer::error(format!("unreadable trace query: {why}")),
                ),
            },
            (true, CollectorMessage::Reject { boot, seq, reason }) => {
                self.set_aside(&boot, seq, &reason);
                // The next session goes on behind it at once.
                *progressed = true;
            }
            // After the welcome a refusal ends this connection only (a line
            // the collector could not take, a store failure): reconnect with
            // the ordinary backoff and resend what is unacknowledged.
            (true, CollectorMessage::Refused { reason }) => {
                return Err(SessionError::Broken(format!(
                    "the collector closed the connection: {reason}"
                )));
            }
            (_, other) => {
                let kind = match other {
                    CollectorMessage::Welcome { .. } => "welcome",
                    CollectorMessage::Refused { .. } => "refused",
                    CollectorMessage::Ack { .. } => "ack",
                    CollectorMessage::TraceRequest { .. } => "trace_request",
                    CollectorMessage::Reject { .. } => "reject",
                };
                let when = if *welcomed { "after" } else { "before" };
                return Err(SessionError::Broken(format!(
                    "the collector sent `{kind}` {when} its welcome"
                )));
            }
        }
        Ok(())
    }

    /// A line the collector can never store: quarantined, so it no longer
    /// blocks everything behind it, and reported as a loss of its seq.
    fn set_aside(&self, boot: &str, seq: u64, reason: &str) {
        let shared = self.shared;
        let result = {
            let mut guard = shared.spool.lock().expect("spool poisoned");
            let spool = guard.as_mut().expect("the spool is open while connected");
            let path = spool.quarantine_path();
            let result = spool.quarantine(boot, seq, reason).map(|done| (done, path));
            shared.publish(spool);
            result
        };
        match result {
            Ok((true, path)) => {
                let message = format!(
                    "1 event (seq {seq}) was set aside in {}: the collector refused it: {reason}",
                    path.display()
                );
                tracing::warn!(boot, seq, "{message}");
                (shared.on_loss)(Loss {
                    count: 1,
                    first_seq: seq,
                    last_seq: seq,
                    lost_boot: Some(boot.to_string()),
                    message,
                });
            }
            Ok((false, _)) => {}
            Err(error) => shared.disk_error(&error),
        }
    }

    /// Applies a welcome: the collector holds each boot up to its
    /// `last_seq`, so sending starts after that.
    fn resume(&self, last_seq: &BTreeMap<String, u64>) -> Result<(), SessionError> {
        let mut guard = self.shared.spool.lock().expect("spool poisoned");
        let spool = guard.as_mut().expect("the spool is open while connected");
        let result = spool.rewind(last_seq);
        self.shared.publish(spool);
        result.map_err(|error| {
            self.shared.disk_error(&error);
            error.into()
        })
    }

    /// Answers a trace request on a thread of its own, so a slow trace never
    /// holds up events or acks; the answer is sent when it is ready. At most
    /// [`MAX_TRACES`] run at once, so a flood of requests cannot flood the
    /// switch.
    fn trace(&self, id: u64, query: TraceQuery) {
        let busy = Arc::clone(&self.traces);
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_TRACES {
            busy.fetch_sub(1, Ordering::SeqCst);
            self.answer(
                id,
                TraceAnswer::error(format!(
                    "this agent is already running {MAX_TRACES} traces; try again"
                )),
            );
            return;
        }
        let tx = self.trace_tx.clone();
        let waker = self.shared.waker.try_clone();
        let running = Arc::clone(&busy);
        let new_backend = Arc::clone(&self.shared.new_backend);
        let spawned = thread::Builder::new()
            .name("collector-trace".into())
            .spawn(move || {
                let result = answer_trace(new_backend().as_mut(), query);
                running.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(TraceResult {
                    kind: TraceResultTag::TraceResult,
                    id,
                    result,
                });
                if let Ok(waker) = waker {
                    let _ = (&waker).write(&[1]);
                }
            });
        if let Err(error) = spawned {
            busy.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(%error, id, "Cannot start a trace thread.");
            self.answer(
                id,
                TraceAnswer::error(format!("cannot start a trace: {error}")),
            );
        }
    }

    /// Queues the answer to trace request `id` from the session's own thread.
    fn answer(&self, id: u64, result: TraceAnswer) {
        let _ = self.trace_tx.send(TraceResult {
            kind: TraceResultTag::TraceResult,
            id,
            result,
        });
    }
}

/// The answer to a collector's `trace_request`, of the query's kind.
fn answer_trace(backend: &mut dyn crate::trace::Backend, query: TraceQuery) -> TraceAnswer {
    let answer = match query {
        TraceQuery::Flow(q) => backend.trace(&q).map(TraceAnswer::Flow),
        TraceQuery::Paths(q) => backend.paths(&q).map(TraceAnswer::Paths),
        TraceQuery::Hop(q) => backend.hop(&q).map(TraceAnswer::Hop),
    };
    answer.unwrap_or_else(TraceAnswer::error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_default_port_and_brackets() {
        assert_eq!(
            parse_address("collector.example.net:7001").unwrap(),
            ("collector.example.net".to_string(), 7001)
        );
        assert_eq!(
            parse_address("10.0.0.5").unwrap(),
            ("10.0.0.5".to_string(), DEFAULT_PORT)
        );
        assert_eq!(
            parse_address("[2001:db8::5]:7000").unwrap(),
            ("2001:db8::5".to_string(), 7000)
        );
        for bad in [
            "tcp://host:7000",
            "2001:db8::5",
            "host:0",
            "host:port",
            ":7000",
            "[nope]:1",
            "[::1",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let token = TokenSource::Inline(Secret::new("s3cret"));
        assert!(!format!("{token:?}").contains("s3cret"));
    }

    #[test]
    fn a_short_or_world_readable_token_file_is_named_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("hopwatch-token-{}", std::process::id()));
        std::fs::write(&path, "short-secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let source = TokenSource::File(path.clone());
        let error = source.read().unwrap_err();
        assert!(
            error.contains(&path.display().to_string()) && error.contains("12 bytes"),
            "{error}"
        );
        assert!(!error.contains("short-secret"), "{error}");
        let warnings = source.warnings();
        assert!(warnings[0].contains("chmod 600"), "{warnings:?}");
        std::fs::write(&path, "a-long-enough-secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(source.read().unwrap().expose(), "a-long-enough-secret");
        assert!(source.warnings().is_empty());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_missing_token_file_is_an_error_without_contents() {
        let source = TokenSource::File(PathBuf::from("/nonexistent/hopwatch-token"));
        let error = source.read().unwrap_err();
        assert!(error.contains("/nonexistent/hopwatch-token"), "{error}");
    }
}
