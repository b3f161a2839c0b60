//! The collector output's connection thread: dial, say `hello`, resend from
//! the collector's `last_seq`, stream what the spool writer appends, apply
//! acknowledgements and answer trace requests, all in one `poll(2)` loop
//! over the socket and the writer's wake-up pipe; back off between
//! sessions; say `goodbye` on a clean stop.

use super::failover::{Next, Rotation};
use super::settings::CollectorAddress;
use super::transport::{Conn, connect, tls_config};
use super::{LOCK_RETRY, LinkState, Shared};
use crate::event::Loss;
use crate::output::OutputStats;
use crate::output::backoff::{Backoff, STABLE, seed};
use crate::output::spool::{Spool, SpoolError};
use crate::trace::TraceAnswer;
use crate::wire::{
    CollectorMessage, Goodbye, GoodbyeTag, Hello, HelloTag, PROTOCOL_VERSION, TraceResult,
};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// The oldest collector this agent works with: one of protocol 2 sends no
/// silences, and nothing else it says differs.
const OLDEST_COLLECTOR_PROTOCOL: u32 = 2;

/// The first wait before dialling again after a failed session.
const RECONNECT_MIN: Duration = Duration::from_millis(200);
/// How long the collector has to answer `hello`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `poll` sleeps, so timeouts are checked at least this often.
const POLL_MAX: Duration = Duration::from_secs(1);
/// How much is read from the spool at a time, and how much may wait in the
/// connection's buffer before the spool is read again.
const BATCH_BYTES: usize = 64 * 1024;
const HIGH_WATER: usize = 256 * 1024;
/// How long a clean stop waits for the acks of what the spool holds before
/// it says goodbye, and then for the goodbye to leave; within
/// [`super::STOP_WAIT`].
const FAREWELL: Duration = Duration::from_millis(1500);
const FAREWELL_SEND: Duration = Duration::from_millis(300);

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub(super) enum SessionError {
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

/// The connection thread: connect, run a session, move on to the next
/// address or back off, repeat, until the output stops.
pub(super) fn connection_loop(shared: &Shared, wakee: UnixStream, stats: &OutputStats) {
    let addresses = &shared.settings.addresses;
    let mut backoff = Backoff::new(
        RECONNECT_MIN,
        shared.settings.backoff_max,
        seed(&shared.boot),
    );
    let mut rotation = Rotation::new(addresses.len(), shared.settings.order, seed(&shared.agent));
    let mut tls = None;
    // The last failure logged per address, so one that keeps failing the
    // same way is logged once, not every round.
    let mut logged: Vec<Option<String>> = vec![None; addresses.len()];
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
        let current = rotation.current();
        let address = &addresses[current];
        shared.set_address(current);
        shared.set_link(LinkState::Connecting, None);
        let mut welcomed = false;
        let mut progressed = false;
        let started = Instant::now();
        let result = link.run(address, &mut tls, &mut progressed, &mut welcomed);
        let error = match result {
            Ok(()) => return,
            Err(error) => error,
        };
        stats.failures.fetch_add(1, Ordering::Relaxed);
        let text = error.to_string();
        *stats.last_error.lock().expect("stats poisoned") = Some(text.clone());
        let refused = matches!(error, SessionError::Refused(_));
        if refused {
            shared.refused.fetch_add(1, Ordering::Relaxed);
        }
        let next = if welcomed {
            logged.fill(None);
            // Nothing is in flight on a dead connection: the spool may shed
            // those events at once, and the next welcome says what arrived.
            if let Some(spool) = shared.spool.lock().expect("spool poisoned").as_mut() {
                let _ = spool.rewind(&BTreeMap::new());
            }
            shared.acked.notify_all();
            // A session up this long was healthy even without an ack.
            rotation.ended(progressed || started.elapsed() >= STABLE)
        } else {
            rotation.failed(refused)
        };
        let repeated = logged[current].as_deref() == Some(text.as_str());
        logged[current] = Some(text.clone());
        let state = if refused {
            LinkState::Refused
        } else {
            LinkState::Backoff
        };
        shared.set_link(state, Some(text));
        let delay = match next {
            Next::Now(to) => {
                let (from, to) = (&address.text, &addresses[to].text);
                let what = if refused {
                    "refused this agent's hello"
                } else {
                    "failed"
                };
                if repeated {
                    tracing::debug!(%error, "Collector {from} {what} again; trying {to}.");
                } else {
                    tracing::warn!(%error, "Collector {from} {what}; trying {to}.");
                }
                continue;
            }
            Next::Backoff {
                refused: true,
                address: to,
                ..
            } => {
                let delay = backoff.longest();
                if !repeated {
                    tracing::warn!(collector = %address.text, next = %addresses[to].text, %error, retry_in = ?delay, "The collector refused this agent's hello; the reason says why.");
                }
                delay
            }
            Next::Backoff {
                progressed,
                address: to,
                ..
            } => {
                if progressed {
                    backoff.succeeded();
                }
                let delay = backoff.failed();
                if !repeated {
                    tracing::warn!(collector = %address.text, next = %addresses[to].text, %error, retry_in = ?delay, "Collector connection failed; events stay in the spool.");
                } else {
                    tracing::debug!(collector = %address.text, %error, retry_in = ?delay, "Collector connection failed again.");
                }
                delay
            }
        };
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
pub(super) struct Session<'a> {
    pub(super) shared: &'a Shared,
    wakee: &'a UnixStream,
    stats: &'a OutputStats,
    pub(super) trace_tx: mpsc::Sender<TraceResult>,
    trace_rx: mpsc::Receiver<TraceResult>,
    /// Traces running now.
    pub(super) traces: Arc<AtomicUsize>,
}

impl Session<'_> {
    /// One connection, from dialling to its end; `Ok` only when the output
    /// stops.
    fn run(
        &mut self,
        address: &CollectorAddress,
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
                // Unless set, the name follows the address being tried.
                let name = tls_settings
                    .server_name
                    .clone()
                    .unwrap_or_else(|| address.host.clone());
                let name = ServerName::try_from(name)
                    .map_err(|e| SessionError::Setup(format!("bad TLS server name: {e}")))?;
                Some(
                    ClientConnection::new(config, name)
                        .map_err(|e| SessionError::Setup(format!("TLS setup failed: {e}")))?,
                )
            }
            None => None,
        };
        let tcp = connect(&address.host, address.port).map_err(|reason| SessionError::Connect {
            address: address.text.clone(),
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
                if !(OLDEST_COLLECTOR_PROTOCOL..=PROTOCOL_VERSION).contains(&protocol) {
                    return Err(SessionError::Broken(format!(
                        "the collector speaks protocol {protocol}, this agent {OLDEST_COLLECTOR_PROTOCOL} to {PROTOCOL_VERSION}"
                    )));
                }
                self.resume(&last_seq)?;
                *welcomed = true;
                shared.connects.fetch_add(1, Ordering::Relaxed);
                shared.set_link(LinkState::Connected, None);
                *self.stats.last_error.lock().expect("stats poisoned") = None;
                tracing::info!(
                    collector = %shared.address(),
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
                shared.acked.notify_all();
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
            (true, CollectorMessage::Silences { silences }) => self.silences(silences),
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
                    CollectorMessage::Silences { .. } => "silences",
                };
                let when = if *welcomed { "after" } else { "before" };
                return Err(SessionError::Broken(format!(
                    "the collector sent `{kind}` {when} its welcome"
                )));
            }
        }
        Ok(())
    }

    /// The collector's silences for this agent: handed to the agent's
    /// loop, which holds them in place of the set the collector sent
    /// before (and keeps them in the state dir).
    fn silences(&self, silences: Vec<hopwatch_wire::silence::Silence>) {
        tracing::debug!(count = silences.len(), "The collector sent its silences.");
        (self.shared.on_silences)(silences);
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
}
