//! Agent connections: accept, optional TLS, the `hello` with its token
//! (read with a small buffer, within `hello_timeout`, in a queue of its own
//! so silent sockets never hold an agent's place), `welcome` with what is
//! already stored, then the agent's own events in and acks out, and its
//! `goodbye`. Each connection is its own task; whatever goes wrong on one (a
//! wrong token, garbage, an oversized line, silence, another agent's event)
//! ends that one with a `refused` line where the protocol allows, a log line
//! and a counter, and touches no other.

use crate::auth::{Admission, Tokens};
use crate::metrics::{Metrics, Reject};
use crate::store::writer::{Ack, Committed, Incoming, Reply, Request};
use crate::tls;
use hopwatch_wire::event::{
    Alert, AlertState, Body, Heartbeat, InterfaceStatus, Link, LinkState, Loss, Severity,
    VrfAddresses,
};
use hopwatch_wire::wire::{CollectorMessage, Goodbye, Hello, PROTOCOL_VERSION, TraceResult};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};
use tokio_rustls::TlsAcceptor;

mod lines;
mod pending;

use lines::{HELLO_BUFFER, LineError, Lines, TooLong, read_line};
use pending::{Pending, Waiting};

/// Events handed to the writer in one request at most.
const CHUNK: usize = 4096;

/// How long a closing connection waits for the acks of what it already
/// handed to the writer.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// The longest hello accepted (it lists the switch's addresses): bounds
/// what the sockets waiting to say hello can make the collector hold.
const MAX_HELLO: usize = 256 * 1024;

/// What every connection shares.
pub struct Ingest {
    pub tokens: Arc<Tokens>,
    pub committed: Arc<Committed>,
    pub metrics: Arc<Metrics>,
    pub writer: mpsc::Sender<Request>,
    pub tls: Option<TlsAcceptor>,
    pub max_line: usize,
    pub read_timeout: Duration,
    /// How long a new connection may take to complete TLS and say hello.
    pub hello_timeout: Duration,
    /// Places for connections past their hello (`max_connections`).
    pub slots: Arc<Semaphore>,
    /// Connections waiting to say hello at most (`max_pending`).
    pub max_pending: usize,
}

/// Accepts agent connections until shutdown; each runs in its own task
/// holding a clone of `done`, whose closing tells the caller every
/// connection has finished. A connection counts against `max_pending` until
/// its hello is accepted and against `max_connections` from then on, so
/// sockets that never say hello cannot take an agent's place.
pub async fn serve(
    listener: TcpListener,
    ingest: Arc<Ingest>,
    notify: broadcast::Sender<()>,
    done: mpsc::Sender<()>,
) {
    let mut shutdown = notify.subscribe();
    let mut backoff = Duration::from_millis(10);
    let pending = Arc::new(Pending::new(ingest.max_pending));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.recv() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = Duration::from_millis(10);
                accepted
            }
            Err(error) => {
                // Out of file descriptors, most likely: wait for some to be
                // freed rather than spin.
                tracing::warn!(%error, retry_in = ?backoff, "Accepting an agent connection failed.");
                sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let waiting = pending.admit();
        let ingest = Arc::clone(&ingest);
        let shutdown = notify.subscribe();
        let done = done.clone();
        tokio::spawn(async move {
            connection(stream, peer, &ingest, shutdown, waiting).await;
            drop(done);
        });
    }
}

/// The refusal of a connection shed from the hello queue.
fn shed_end() -> End {
    End::Reject {
        why: Reject::Shed,
        agent: None,
        detail: "too many connections are waiting to say hello; this one waited longest".into(),
    }
}

/// Counts a connection as open for as long as it lives.
struct OpenGuard(Arc<Metrics>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    ingest: &Ingest,
    shutdown: broadcast::Receiver<()>,
    mut waiting: Waiting,
) {
    let metrics = &ingest.metrics;
    metrics.connections_total.fetch_add(1, Ordering::Relaxed);
    metrics.connections_open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(Arc::clone(metrics));
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + ingest.hello_timeout;
    let result =
        match &ingest.tls {
            None => {
                session(
                    stream,
                    peer,
                    ingest,
                    shutdown,
                    waiting,
                    deadline,
                    Vec::new(),
                )
                .await
            }
            // Boxed: a TLS stream and its handshake are several times the size
            // of a plain session, and every plain connection's task would
            // otherwise be allocated at the TLS size.
            Some(acceptor) => Box::pin(async move {
                let handshake = tokio::select! {
                    handshake = timeout_at(deadline, acceptor.accept(stream)) => Some(handshake),
                    _ = &mut waiting.shed => None,
                };
                match handshake {
                    Some(Ok(Ok(tls))) => {
                        let names = tls::peer_names(tls.get_ref().1);
                        session(tls, peer, ingest, shutdown, waiting, deadline, names).await
                    }
                    Some(Ok(Err(error))) => Err(End::Reject {
                        why: Reject::Tls,
                        agent: None,
                        detail: format!("TLS handshake failed: {error}"),
                    }),
                    Some(Err(_)) => Err(End::Reject {
                        why: Reject::Tls,
                        agent: None,
                        detail: format!("no TLS handshake within {:?}", ingest.hello_timeout),
                    }),
                    None => Err(shed_end()),
                }
            })
            .await,
        };
    match result {
        Ok(()) => {}
        // Silent sockets come in floods; one line each would bury the log.
        Err(End::Reject {
            why: why @ (Reject::Shed | Reject::Timeout),
            agent: None,
            detail,
        }) => {
            metrics.reject(why);
            tracing::debug!(%peer, reason = why.as_str(), "Agent connection ended before its hello: {detail}");
        }
        Err(End::Reject { why, agent, detail }) => {
            metrics.reject(why);
            let agent = agent.as_deref().unwrap_or("-");
            tracing::warn!(agent, %peer, reason = why.as_str(), "Agent connection ended: {detail}");
        }
        Err(End::Io { agent, error }) => {
            tracing::info!(agent = agent.as_deref().unwrap_or("-"), %peer, %error, "Agent connection lost.");
        }
    }
}

/// Why a session ended other than by the agent closing it.
#[derive(Debug)]
enum End {
    /// The collector ended it; counted by reason.
    Reject {
        why: Reject,
        agent: Option<String>,
        detail: String,
    },
    /// The connection broke.
    Io {
        agent: Option<String>,
        error: std::io::Error,
    },
}

/// Writes one collector message, bounded by `limit` so a peer that stops
/// reading cannot hold the task.
async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    message: &CollectorMessage,
    limit: Duration,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).expect("messages always serialize");
    line.push(b'\n');
    write(stream, &line, limit).await
}

async fn write<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    limit: Duration,
) -> std::io::Result<()> {
    match timeout(limit, stream.write_all(bytes)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the agent stopped reading",
        )),
    }
}

/// Sends `refused` (best effort) and builds the matching end.
async fn refuse<S: AsyncWrite + Unpin>(
    stream: &mut S,
    why: Reject,
    agent: Option<&str>,
    reason: String,
) -> End {
    let message = CollectorMessage::Refused {
        reason: reason.clone(),
    };
    let _ = send(stream, &message, Duration::from_secs(1)).await;
    let _ = stream.shutdown().await;
    End::Reject {
        why,
        agent: agent.map(str::to_string),
        detail: reason,
    }
}

/// Reads the hello with the small buffer, bounded by the hello deadline and
/// by a newer connection shedding this one.
async fn read_hello<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    lines: &mut Lines,
    ingest: &Ingest,
    waiting: &mut Waiting,
    deadline: Instant,
) -> Result<Option<Vec<u8>>, End> {
    let read = tokio::select! {
        read = timeout_at(deadline, read_line(stream, lines)) => read,
        _ = &mut waiting.shed => {
            let End::Reject { why, detail, .. } = shed_end() else { unreachable!() };
            return Err(refuse(stream, why, None, detail).await);
        }
    };
    match read {
        Err(_) => {
            let reason = format!("no hello within {:?}", ingest.hello_timeout);
            Err(refuse(stream, Reject::Timeout, None, reason).await)
        }
        Ok(Err(LineError::TooLong)) => {
            let reason = format!("the hello is longer than {} bytes", lines.max_line);
            Err(refuse(stream, Reject::LineTooLong, None, reason).await)
        }
        Ok(Err(LineError::Io(error))) => Err(End::Io { agent: None, error }),
        Ok(Ok(line)) => Ok(line),
    }
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    ingest: &Ingest,
    mut shutdown: broadcast::Receiver<()>,
    mut waiting: Waiting,
    deadline: Instant,
    cert_names: Vec<String>,
) -> Result<(), End> {
    let mut lines = Lines::new(HELLO_BUFFER, ingest.max_line.min(MAX_HELLO));
    let first = match read_hello(&mut stream, &mut lines, ingest, &mut waiting, deadline).await? {
        Some(line) => line,
        None => return Ok(()),
    };
    lines.max_line = ingest.max_line;
    let mut hello: Hello = match serde_json::from_slice(&first) {
        Ok(hello) => hello,
        Err(error) => {
            let reason = format!("expected a hello as the first line: {error}");
            return Err(refuse(&mut stream, Reject::Malformed, None, reason).await);
        }
    };
    let agent = hello.agent.clone();
    if hello.protocol != PROTOCOL_VERSION {
        let reason = format!(
            "protocol {} is not spoken here; this collector speaks protocol {PROTOCOL_VERSION}",
            hello.protocol
        );
        return Err(refuse(&mut stream, Reject::Protocol, Some(&agent), reason).await);
    }
    let admitted = ingest.tokens.admit_agent(&hello.token, &agent, &cert_names);
    hello.token.clear();
    match admitted {
        Admission::Admitted => {}
        Admission::BadToken => {
            let reason = "bad token: check the agent's [output.collector] token against the collector's agent tokens".to_string();
            return Err(refuse(&mut stream, Reject::BadToken, Some(&agent), reason).await);
        }
        Admission::Unbound(why) => {
            return Err(refuse(&mut stream, Reject::Identity, Some(&agent), why).await);
        }
    }
    // The agent's own config check applies the same rule.
    if let Err(error) = hopwatch_wire::wire::check_agent_name(&agent) {
        let reason = error.to_string();
        return Err(refuse(&mut stream, Reject::Malformed, Some(&agent), reason).await);
    }
    // A place among the agents' connections, waited for until the hello
    // deadline: an agent whose place is not freed by then retries later.
    let _slot = tokio::select! {
        slot = timeout_at(deadline, Arc::clone(&ingest.slots).acquire_owned()) => match slot {
            Ok(slot) => slot.expect("the semaphore is never closed"),
            Err(_) => {
                let reason = "the collector holds as many agent connections as max_connections allows; retry later".to_string();
                return Err(refuse(&mut stream, Reject::Full, Some(&agent), reason).await);
            }
        },
        _ = &mut waiting.shed => {
            let End::Reject { why, detail, .. } = shed_end() else { unreachable!() };
            return Err(refuse(&mut stream, why, Some(&agent), detail).await);
        }
    };
    drop(waiting);
    let mut last_seq = BTreeMap::new();
    for boot in hello.boots.iter().chain(std::iter::once(&hello.boot)) {
        last_seq.insert(boot.clone(), ingest.committed.last_seq(&agent, boot));
    }
    tracing::info!(agent, %peer, version = hello.version, boot = hello.boot, "Agent connected.");
    let io = |error| End::Io {
        agent: Some(agent.clone()),
        error,
    };
    let address = peer.ip().to_string();
    if ingest
        .writer
        .send(Request::Hello {
            hello: Box::new(hello),
            address,
        })
        .await
        .is_err()
    {
        return Ok(());
    }
    let welcome = CollectorMessage::Welcome {
        protocol: PROTOCOL_VERSION,
        last_seq,
    };
    send(&mut stream, &welcome, ingest.read_timeout)
        .await
        .map_err(io)?;

    let (reply, mut acks) = mpsc::unbounded_channel::<Ack>();
    let mut in_flight = 0usize;
    let mut rejected = None;
    // Events the agent sent right behind its hello, without waiting for the
    // welcome, are in the buffer already.
    match hand_over(&mut lines, ingest, &agent, &mut in_flight, &mut rejected) {
        Ok(handed) => {
            if !forward(handed, ingest, &agent, &reply).await {
                return Ok(());
            }
        }
        Err((why, reason)) => {
            if let Some(message) = rejected.take() {
                let _ = send(&mut stream, &message, Duration::from_secs(1)).await;
            }
            return Err(refuse(&mut stream, why, Some(&agent), reason).await);
        }
    }
    let mut deadline = Instant::now() + ingest.read_timeout;
    let mut closing = false;
    loop {
        if closing && in_flight == 0 {
            return Ok(());
        }
        tokio::select! {
            biased;
            ack = acks.recv() => {
                let Some(ack) = ack else { return Ok(()) };
                in_flight -= 1;
                let mut newest: BTreeMap<String, u64> = BTreeMap::new();
                let mut failed = None;
                let mut absorb = |ack: Ack, newest: &mut BTreeMap<String, u64>| match ack {
                    // The spent events are freed here, on this task's thread.
                    Ack::Stored(list, _spent) => {
                        for (boot, seq) in list {
                            let e = newest.entry(boot).or_insert(0);
                            *e = (*e).max(seq);
                        }
                    }
                    Ack::Failed(reason) => failed = Some(reason),
                };
                absorb(ack, &mut newest);
                while let Ok(more) = acks.try_recv() {
                    in_flight -= 1;
                    absorb(more, &mut newest);
                }
                if let Some(reason) = failed {
                    return Err(refuse(&mut stream, Reject::Store, Some(&agent), reason).await);
                }
                let mut out = Vec::with_capacity(64 * newest.len());
                for (boot, seq) in newest {
                    serde_json::to_writer(&mut out, &CollectorMessage::Ack { boot, seq })
                        .expect("acks always serialize");
                    out.push(b'\n');
                }
                write(&mut stream, &out, ingest.read_timeout).await.map_err(io)?;
            }
            read = stream.read(lines.spare()), if !closing => {
                let n = read.map_err(io)?;
                if n == 0 {
                    if lines.pending() > 0 {
                        tracing::info!(agent, %peer, bytes = lines.pending(), "Agent closed the connection in the middle of a line.");
                    }
                    closing = true;
                    continue;
                }
                lines.filled(n);
                deadline = Instant::now() + ingest.read_timeout;
                match hand_over(&mut lines, ingest, &agent, &mut in_flight, &mut rejected) {
                    Ok(handed) => {
                        if !forward(handed, ingest, &agent, &reply).await {
                            return Ok(());
                        }
                    }
                    Err((why, reason)) => {
                        // Names the line, so the agent sets it aside.
                        if let Some(message) = rejected.take() {
                            let _ = send(&mut stream, &message, Duration::from_secs(1)).await;
                        }
                        return Err(refuse(&mut stream, why, Some(&agent), reason).await);
                    }
                }
            }
            _ = sleep_until(deadline), if !closing => {
                let reason = format!("nothing received for {:?}; closing what looks like a dead connection", ingest.read_timeout);
                return Err(refuse(&mut stream, Reject::Timeout, Some(&agent), reason).await);
            }
            _ = sleep(DRAIN_GRACE), if closing => {
                tracing::warn!(agent, %peer, in_flight, "Closing without the acks of events still being stored; the agent resends them.");
                return Ok(());
            }
            _ = shutdown.recv(), if !closing => {
                closing = true;
            }
        }
    }
}

/// What a read hands to the writer, in the order the agent sent it.
enum Handed {
    Events(Vec<Incoming>),
    Goodbye(Goodbye),
}

/// Hands the parsed lines to the writer; false when the writer is gone.
async fn forward(handed: Vec<Handed>, ingest: &Ingest, agent: &str, reply: &Reply) -> bool {
    for item in handed {
        let request = match item {
            Handed::Events(events) => Request::Events {
                events,
                reply: reply.clone(),
            },
            Handed::Goodbye(goodbye) => Request::Goodbye {
                agent: agent.to_string(),
                boot: goodbye.boot,
                last_seq: goodbye.last_seq,
            },
        };
        if ingest.writer.send(request).await.is_err() {
            return false;
        }
    }
    true
}

/// Parses every complete line in the buffer into chunks for the writer,
/// counting the event chunks as in flight; or the reason to refuse the
/// connection. An event must be `agent`'s own: the name in its hello (which
/// its token or certificate admitted) is the only one it may store under.
fn hand_over(
    lines: &mut Lines,
    ingest: &Ingest,
    agent: &str,
    in_flight: &mut usize,
    rejected: &mut Option<CollectorMessage>,
) -> Result<Vec<Handed>, (Reject, String)> {
    let mut handed = Vec::new();
    let mut chunk = Vec::new();
    loop {
        let line = match lines.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(TooLong) => {
                return Err((
                    Reject::LineTooLong,
                    format!("a line is longer than max_line ({} bytes)", ingest.max_line),
                ));
            }
        };
        if line.is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(Some(incoming)) if incoming.agent != agent => {
                let reason = format!(
                    "event seq {} of boot {:?} names agent {:?}, but this connection said hello as {:?}; an agent sends only its own events (is another agent's spool in its state_dir?)",
                    incoming.seq, incoming.boot, incoming.agent, agent
                );
                // Named, so an honest agent renamed with events of its old
                // name still spooled sets them aside instead of resending.
                *rejected = Some(CollectorMessage::Reject {
                    boot: incoming.boot.to_string(),
                    seq: incoming.seq,
                    reason: reason.clone(),
                });
                return Err((Reject::Identity, reason));
            }
            Ok(Some(incoming)) => chunk.push(incoming),
            Ok(None) => {}
            Err(error) => match serde_json::from_slice::<Goodbye>(line) {
                Ok(goodbye) => {
                    if !chunk.is_empty() {
                        *in_flight += 1;
                        handed.push(Handed::Events(std::mem::take(&mut chunk)));
                    }
                    handed.push(Handed::Goodbye(goodbye));
                }
                Err(_) => {
                    let reason = format!("expected an event: {error}");
                    *rejected = reject_line(line, &reason);
                    return Err((Reject::Malformed, reason));
                }
            },
        }
        if chunk.len() >= CHUNK {
            *in_flight += 1;
            handed.push(Handed::Events(std::mem::take(&mut chunk)));
        }
    }
    if !chunk.is_empty() {
        *in_flight += 1;
        handed.push(Handed::Events(chunk));
    }
    Ok(handed)
}

/// The `reject` naming a malformed line, when its `boot` and `seq` can
/// still be read: the agent sets that line aside instead of resending it.
fn reject_line(line: &[u8], reason: &str) -> Option<CollectorMessage> {
    #[derive(Deserialize)]
    struct Id {
        boot: String,
        seq: u64,
    }
    let id: Id = serde_json::from_slice(line).ok()?;
    Some(CollectorMessage::Reject {
        boot: id.boot,
        seq: id.seq,
        reason: reason.to_string(),
    })
}

/// Every field of every event type, side by side, so a line parses in one
/// pass. (The shared [`Event`] flattens its body into the envelope, which
/// makes serde buffer each whole line before it can tell the type; at a few
/// hundred thousand lines a second that buffering was the largest cost.)
/// Unknown fields are ignored, as `Event` ignores them.
#[derive(Deserialize)]
struct Flat {
    v: u32,
    agent: String,
    boot: String,
    seq: u64,
    ts: String,
    #[serde(rename = "type")]
    kind: String,
    state: Option<String>,
    rule: Option<String>,
    severity: Option<Severity>,
    interface: Option<String>,
    expr: Option<String>,
    value: Option<f64>,
    threshold: Option<f64>,
    message: Option<String>,
    previous: Option<LinkState>,
    carrier_changes: Option<u64>,
    oper_state: Option<String>,
    uptime_s: Option<u64>,
    interfaces: Option<Vec<InterfaceStatus>>,
    addresses: Option<Vec<VrfAddresses>>,
    spool_depth: Option<u64>,
    events_dropped: Option<u64>,
    firing: Option<u64>,
    count: Option<u64>,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    lost_boot: Option<String>,
}

/// A field the event's type requires.
fn field<T>(value: Option<T>, kind: &str, name: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("a `{kind}` event without `{name}`"))
}

impl Flat {
    /// The body for the known types; None for a type this collector does
    /// not know (a newer agent's), which is stored and acknowledged as is.
    fn body(&mut self) -> Result<Option<Body>, String> {
        let kind = self.kind.as_str();
        let state = self.state.take();
        let message = self.message.take();
        Ok(Some(match kind {
            "alert" => Body::Alert(Alert {
                state: match state.as_deref() {
                    Some("firing") => AlertState::Firing,
                    Some("resolved") => AlertState::Resolved,
                    other => {
                        return Err(format!(
                            "an alert with state {other:?}; expected \"firing\" or \"resolved\""
                        ));
                    }
                },
                rule: field(self.rule.take(), kind, "rule")?,
                severity: field(self.severity, kind, "severity")?,
                interface: field(self.interface.take(), kind, "interface")?,
                expr: field(self.expr.take(), kind, "expr")?,
                value: self.value,
                threshold: field(self.threshold, kind, "threshold")?,
                message: field(message, kind, "message")?,
            }),
            "link" => Body::Link(Link {
                interface: field(self.interface.take(), kind, "interface")?,
                state: match state.as_deref() {
                    Some("up") => LinkState::Up,
                    Some("down") => LinkState::Down,
                    other => {
                        return Err(format!(
                            "a link with state {other:?}; expected \"up\" or \"down\""
                        ));
                    }
                },
                previous: field(self.previous, kind, "previous")?,
                carrier_changes: field(self.carrier_changes, kind, "carrier_changes")?,
                oper_state: field(self.oper_state.take(), kind, "oper_state")?,
                message: field(message, kind, "message")?,
            }),
            "heartbeat" => Body::Heartbeat(Heartbeat {
                uptime_s: field(self.uptime_s, kind, "uptime_s")?,
                interfaces: field(self.interfaces.take(), kind, "interfaces")?,
                addresses: field(self.addresses.take(), kind, "addresses")?,
                spool_depth: field(self.spool_depth, kind, "spool_depth")?,
                events_dropped: field(self.events_dropped, kind, "events_dropped")?,
                firing: field(self.firing, kind, "firing")?,
            }),
            "loss" => Body::Loss(Loss {
                count: field(self.count, kind, "count")?,
                first_seq: field(self.first_seq, kind, "first_seq")?,
                last_seq: field(self.last_seq, kind, "last_seq")?,
                lost_boot: self.lost_boot.take(),
                message: field(message, kind, "message")?,
            }),
            _ => return Ok(None),
        }))
    }
}

/// Parses one agent line: an event (Some), a trace result (None; no trace
/// is asked yet), or an error naming what is wrong.
pub fn parse_line(line: &[u8]) -> Result<Option<Incoming>, String> {
    let text = std::str::from_utf8(line).map_err(|e| format!("the line is not UTF-8: {e}"))?;
    let mut flat = match serde_json::from_str::<Flat>(text) {
        Ok(flat) => flat,
        Err(error) => {
            if serde_json::from_str::<TraceResult>(text).is_ok() {
                return Ok(None);
            }
            return Err(error.to_string());
        }
    };
    let body = flat.body()?;
    let Flat {
        v,
        agent,
        boot,
        seq,
        ts,
        kind,
        ..
    } = flat;
    if agent.is_empty() || boot.is_empty() {
        return Err("`agent` and `boot` must not be empty".into());
    }
    if seq == 0 || seq > i64::MAX as u64 {
        return Err(format!(
            "`seq` {seq} is out of range: it starts at 1 and stays below 2^63"
        ));
    }
    let at = humantime::parse_rfc3339_weak(&ts).map_err(|e| {
        format!("bad `ts` {ts:?}: {e}; expected RFC 3339 such as 2024-05-01T12:00:00.000Z")
    })?;
    let ts_ms = crate::store::millis(at);
    let line = match &body {
        // A heartbeat's interface list is folded into the timeline; the row
        // keeps the rest, so a month of heartbeats from a large fleet does
        // not outweigh everything else in the store.
        Some(Body::Heartbeat(hb)) => serde_json::json!({
            "v": v, "agent": agent, "boot": boot, "seq": seq, "ts": ts, "type": "heartbeat",
            "uptime_s": hb.uptime_s, "interfaces": hb.interfaces.len(),
            "spool_depth": hb.spool_depth, "events_dropped": hb.events_dropped, "firing": hb.firing,
        })
        .to_string(),
        _ => text.to_owned(),
    };
    Ok(Some(Incoming {
        v,
        agent,
        boot,
        seq,
        ts,
        ts_ms,
        kind,
        body,
        line,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_line_with_a_readable_boot_and_seq_is_named_in_a_reject() {
        let line = br#"{"v":1,"agent":"a","boot":"b1","seq":42,"type":"link","ts":"yesterday"}"#;
        let reason = parse_line(line).unwrap_err();
        assert_eq!(
            reject_line(line, &reason),
            Some(CollectorMessage::Reject {
                boot: "b1".into(),
                seq: 42,
                reason,
            })
        );
        assert_eq!(reject_line(b"not json", "x"), None);
    }

    #[test]
    fn parses_events_and_keeps_unknown_types() {
        let line = br#"{"v":1,"agent":"leaf1","boot":"b","seq":3,"ts":"2023-11-14T22:13:20.123Z","type":"link","interface":"swp1","state":"down","previous":"up","carrier_changes":2,"oper_state":"down","message":"swp1 went down"}"#;
        let incoming = parse_line(line).unwrap().unwrap();
        assert_eq!(incoming.ts_ms, 1_700_000_000_123);
        assert_eq!(incoming.kind, "link");
        assert!(matches!(incoming.body, Some(Body::Link(_))));
        assert_eq!(incoming.line.as_bytes(), line);
        let future = br#"{"v":2,"agent":"leaf1","boot":"b","seq":4,"ts":"2023-11-14T22:13:21Z","type":"qos","queue":3}"#;
        let incoming = parse_line(future).unwrap().unwrap();
        assert_eq!(incoming.kind, "qos");
        assert!(incoming.body.is_none());
        assert!(
            parse_line(br#"{"type":"trace_result","id":1,"result":{}}"#)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn reads_every_type_as_the_shared_event_type_does() {
        use hopwatch_wire::event::{Event, InterfaceAddress, Sequencer};
        let mut seq = Sequencer::new("leaf1", "b1");
        let at = std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let bodies = [
            Body::Alert(Alert {
                state: AlertState::Resolved,
                rule: "tx-errors".into(),
                severity: Severity::Warning,
                interface: "swp1".into(),
                expr: "increase(tx_errors[5s]) <= 3".into(),
                value: None,
                threshold: 3.0,
                message: "swp1 vanished".into(),
            }),
            Body::Link(Link {
                interface: "swp2".into(),
                state: LinkState::Up,
                previous: LinkState::Down,
                carrier_changes: 7,
                oper_state: "up".into(),
                message: "swp2 came up".into(),
            }),
            Body::Heartbeat(Heartbeat {
                uptime_s: 9,
                interfaces: vec![InterfaceStatus {
                    name: "swp1".into(),
                    state: LinkState::Down,
                }],
                addresses: vec![VrfAddresses {
                    vrf: "default".into(),
                    addresses: vec![InterfaceAddress {
                        interface: "swp1".into(),
                        address: "10.0.0.1/31".into(),
                    }],
                }],
                spool_depth: 1,
                events_dropped: 2,
                firing: 3,
            }),
            Body::Loss(Loss {
                count: 5,
                first_seq: 10,
                last_seq: 14,
                lost_boot: Some("b0".into()),
                message: "dropped 5".into(),
            }),
        ];
        for body in bodies {
            let event: Event = seq.stamp(at, body);
            let incoming = parse_line(event.to_json().as_bytes()).unwrap().unwrap();
            assert_eq!(incoming.body.as_ref(), Some(&event.body));
            assert_eq!(incoming.kind, event.kind());
            assert_eq!(
                (incoming.seq, incoming.ts_ms),
                (event.seq, 1_700_000_000_123)
            );
        }
    }

    #[test]
    fn refuses_what_is_not_an_event() {
        for bad in [
            &b"garbage"[..],
            br#"{"v":1}"#,
            br#"{"v":1,"agent":"a","boot":"b","seq":1,"ts":"yesterday","type":"qos"}"#,
            br#"{"v":1,"agent":"a","boot":"b","seq":0,"ts":"2023-11-14T22:13:21Z","type":"qos"}"#,
            br#"{"v":1,"agent":"a","boot":"b","seq":1,"ts":"2023-11-14T22:13:21Z","type":"link"}"#,
        ] {
            assert!(parse_line(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn heartbeats_are_stored_without_their_interface_list() {
        let line = br#"{"v":1,"agent":"leaf1","boot":"b","seq":1,"ts":"2023-11-14T22:13:20.123Z","type":"heartbeat","uptime_s":5,"interfaces":[{"name":"swp1","state":"up"}],"addresses":[],"spool_depth":0,"events_dropped":0,"firing":0}"#;
        let incoming = parse_line(line).unwrap().unwrap();
        let stored: serde_json::Value = serde_json::from_str(&incoming.line).unwrap();
        assert_eq!(stored["interfaces"], 1);
        assert_eq!(stored["seq"], 1);
        match incoming.body {
            Some(Body::Heartbeat(hb)) => assert_eq!(hb.interfaces.len(), 1),
            other => panic!("{other:?}"),
        }
    }
}
