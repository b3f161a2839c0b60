//! Agent connections: accept, optional TLS, the `hello` with its token
//! (read with a small buffer, within `hello_timeout`, in a queue of its own
//! so silent sockets never hold an agent's place), `welcome` with what is
//! already stored, then the agent's own events in and acks out, and its
//! `goodbye`. Each connection is its own task; whatever goes wrong on one (a
//! wrong token, garbage, an oversized line, silence, another agent's event)
//! ends that one with a `refused` line where the protocol allows, a log line
//! and a counter, and touches no other.

use crate::auth::{Admission, Tokens};
use crate::fabric::Fabric;
use crate::metrics::{Metrics, Reject};
use crate::store::writer::{Ack, Committed, Incoming, Reply, Request};
use crate::tls;
use hopwatch_wire::wire::{CollectorMessage, Goodbye, Hello, PROTOCOL_VERSION};

/// The oldest agent protocol this collector still takes, so a fleet can
/// upgrade its collectors first and its agents after.
const OLDEST_PROTOCOL: u32 = 2;
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
mod parse;
mod pending;
mod silences;
mod traces;

use lines::{HELLO_BUFFER, LineError, Lines, TooLong, read_line};
pub use parse::parse_line;
use pending::{Pending, Waiting};
use silences::SilenceLine;
use traces::{ANSWER_HEAD, TraceLine};

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
    /// Trace requests out, trace results back, and who owns which address.
    pub fabric: Arc<Fabric>,
    /// The silences pushed to agents of protocol 3 and later.
    pub silences: Arc<crate::silences::Board>,
}

/// Accepts agent connections until shutdown; each runs in its own task
/// holding a clone of `done`, whose closing tells the caller every
/// connection has finished. A connection counts against `max_pending` until
/// its hello is accepted and against `max_connections` from then on, so
/// sockets that never say hello cannot take an agent's place.
pub fn serve(
    listener: TcpListener,
    ingest: Arc<Ingest>,
    notify: broadcast::Sender<()>,
    done: mpsc::Sender<()>,
) -> impl Future<Output = ()> {
    // Subscribed now, not when the task first runs: a shutdown sent before
    // the runtime gets to it still reaches it.
    let shutdown = notify.subscribe();
    accept_loop(listener, ingest, notify, shutdown, done)
}

async fn accept_loop(
    listener: TcpListener,
    ingest: Arc<Ingest>,
    notify: broadcast::Sender<()>,
    mut shutdown: broadcast::Receiver<()>,
    done: mpsc::Sender<()>,
) {
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
        counted: false,
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
                        counted: false,
                    }),
                    Some(Err(_)) => Err(End::Reject {
                        why: Reject::Tls,
                        agent: None,
                        detail: format!("no TLS handshake within {:?}", ingest.hello_timeout),
                        counted: false,
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
            counted,
        }) => {
            if !counted {
                metrics.reject(why);
            }
            tracing::debug!(%peer, reason = why.as_str(), "Agent connection ended before its hello: {detail}");
        }
        Err(End::Reject {
            why,
            agent,
            detail,
            counted,
        }) => {
            if !counted {
                metrics.reject(why);
            }
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
        /// Counted already: a refusal is counted before the agent can see
        /// it, so whoever reads `/metrics` after the close finds it there.
        counted: bool,
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

/// Counts the refusal, sends `refused` (best effort) and builds the
/// matching end.
async fn refuse<S: AsyncWrite + Unpin>(
    stream: &mut S,
    metrics: &Metrics,
    why: Reject,
    agent: Option<&str>,
    reason: String,
) -> End {
    let message = CollectorMessage::Refused {
        reason: reason.clone(),
    };
    metrics.reject(why);
    let _ = send(stream, &message, Duration::from_secs(1)).await;
    let _ = stream.shutdown().await;
    End::Reject {
        why,
        agent: agent.map(str::to_string),
        detail: reason,
        counted: true,
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
            return Err(refuse(stream, &ingest.metrics, why, None, detail).await);
        }
    };
    match read {
        Err(_) => {
            let reason = format!("no hello within {:?}", ingest.hello_timeout);
            Err(refuse(stream, &ingest.metrics, Reject::Timeout, None, reason).await)
        }
        Ok(Err(LineError::TooLong)) => {
            let reason = format!("the hello is longer than {} bytes", lines.max_line);
            Err(refuse(stream, &ingest.metrics, Reject::LineTooLong, None, reason).await)
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
            return Err(refuse(
                &mut stream,
                &ingest.metrics,
                Reject::Malformed,
                None,
                reason,
            )
            .await);
        }
    };
    let agent = hello.agent.clone();
    let protocol = hello.protocol;
    if !(OLDEST_PROTOCOL..=PROTOCOL_VERSION).contains(&protocol) {
        let reason = format!(
            "protocol {protocol} is not spoken here; this collector speaks protocols \
             {OLDEST_PROTOCOL} to {PROTOCOL_VERSION}: upgrade the agent or the collector"
        );
        return Err(refuse(
            &mut stream,
            &ingest.metrics,
            Reject::Protocol,
            Some(&agent),
            reason,
        )
        .await);
    }
    let admitted = ingest.tokens.admit_agent(&hello.token, &agent, &cert_names);
    hello.token.clear();
    match admitted {
        Admission::Admitted => {}
        Admission::BadToken => {
            let reason = "bad token: check the agent's [output.collector] token against the collector's agent tokens".to_string();
            return Err(refuse(
                &mut stream,
                &ingest.metrics,
                Reject::BadToken,
                Some(&agent),
                reason,
            )
            .await);
        }
        Admission::Unbound(why) => {
            return Err(refuse(
                &mut stream,
                &ingest.metrics,
                Reject::Identity,
                Some(&agent),
                why,
            )
            .await);
        }
    }
    // The agent's own config check applies the same rule.
    if let Err(error) = hopwatch_wire::wire::check_agent_name(&agent) {
        let reason = error.to_string();
        return Err(refuse(
            &mut stream,
            &ingest.metrics,
            Reject::Malformed,
            Some(&agent),
            reason,
        )
        .await);
    }
    // A place among the agents' connections, waited for until the hello
    // deadline: an agent whose place is not freed by then retries later.
    let _slot = tokio::select! {
        slot = timeout_at(deadline, Arc::clone(&ingest.slots).acquire_owned()) => match slot {
            Ok(slot) => slot.expect("the semaphore is never closed"),
            Err(_) => {
                let reason = "the collector holds as many agent connections as max_connections allows; retry later".to_string();
                return Err(refuse(&mut stream, &ingest.metrics, Reject::Full, Some(&agent), reason).await);
            }
        },
        _ = &mut waiting.shed => {
            let End::Reject { why, detail, .. } = shed_end() else { unreachable!() };
            return Err(refuse(&mut stream, &ingest.metrics, why, Some(&agent), detail).await);
        }
    };
    drop(waiting);
    let boots: Vec<String> = hello
        .boots
        .iter()
        .chain(std::iter::once(&hello.boot))
        .cloned()
        .collect();
    let last_seq = match ingest.committed.welcome(&agent, &boots).await {
        Ok(last_seq) => last_seq,
        Err(error) => {
            let reason = format!("the collector cannot read its store ({error}); retry later");
            return Err(refuse(
                &mut stream,
                &ingest.metrics,
                Reject::Store,
                Some(&agent),
                reason,
            )
            .await);
        }
    };
    tracing::info!(agent, %peer, version = hello.version, boot = hello.boot, "Agent connected.");
    let io = |error| End::Io {
        agent: Some(agent.clone()),
        error,
    };
    let address = peer.ip().to_string();
    let mut traces = TraceLine::open(&ingest.fabric, &hello);
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
    // The agent's own protocol: it is told nothing newer than it speaks.
    let welcome = CollectorMessage::Welcome { protocol, last_seq };
    send(&mut stream, &welcome, ingest.read_timeout)
        .await
        .map_err(io)?;
    let mut silences = SilenceLine::open(&ingest.silences, &agent, protocol);
    if let Some(line) = silences.due(crate::store::millis(std::time::SystemTime::now())) {
        write(&mut stream, &line, ingest.read_timeout)
            .await
            .map_err(io)?;
    }

    let (reply, mut acks) = mpsc::unbounded_channel::<Ack>();
    // Acks are cumulative: a resent duplicate stored behind newer events
    // must not send a boot's ack backwards, so only an advance is written.
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut in_flight = 0usize;
    let mut rejected = None;
    // Events the agent sent right behind its hello, without waiting for the
    // welcome, are in the buffer already.
    match hand_over(
        &mut lines,
        ingest,
        &agent,
        &mut in_flight,
        &mut rejected,
        &mut traces,
    ) {
        Ok(handed) => {
            if !forward(handed, ingest, &agent, &reply).await {
                return Ok(());
            }
        }
        Err((why, reason)) => {
            if let Some(message) = rejected.take() {
                let _ = send(&mut stream, &message, Duration::from_secs(1)).await;
            }
            return Err(refuse(&mut stream, &ingest.metrics, why, Some(&agent), reason).await);
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
                    return Err(refuse(&mut stream, &ingest.metrics, Reject::Store, Some(&agent), reason).await);
                }
                newest.retain(|boot, seq| match acked.get_mut(boot.as_str()) {
                    Some(before) if *before >= *seq => false,
                    Some(before) => {
                        *before = *seq;
                        true
                    }
                    None => {
                        acked.insert(boot.clone(), *seq);
                        true
                    }
                });
                if newest.is_empty() {
                    continue;
                }
                let mut out = Vec::with_capacity(64 * newest.len());
                for (boot, seq) in newest {
                    serde_json::to_writer(&mut out, &CollectorMessage::Ack { boot, seq })
                        .expect("acks always serialize");
                    out.push(b'\n');
                }
                write(&mut stream, &out, ingest.read_timeout).await.map_err(io)?;
            }
            // Beside the acks and ahead of the reads, so a busy event
            // stream never holds a question back; each turn writes every
            // request queued, in one write.
            requests = traces.requests(), if !closing => {
                write(&mut stream, &requests, ingest.read_timeout).await.map_err(io)?;
            }
            () = silences.changed(), if !closing => {
                if let Some(line) = silences.due(crate::store::millis(std::time::SystemTime::now())) {
                    write(&mut stream, &line, ingest.read_timeout).await.map_err(io)?;
                }
            }
            read = stream.read(lines.spare()), if !closing => {
                let n = read.map_err(io)?;
                if n == 0 {
                    if lines.pending() > 0 {
                        tracing::info!(agent, %peer, bytes = lines.pending(), "Agent closed the connection in the middle of a line.");
                    }
                    closing = true;
                    traces.hang_up();
                    silences.hang_up();
                    continue;
                }
                lines.filled(n);
                deadline = Instant::now() + ingest.read_timeout;
                match hand_over(&mut lines, ingest, &agent, &mut in_flight, &mut rejected, &mut traces) {
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
                        return Err(refuse(&mut stream, &ingest.metrics, why, Some(&agent), reason).await);
                    }
                }
            }
            _ = sleep_until(deadline), if !closing => {
                let reason = format!("nothing received for {:?}; closing what looks like a dead connection", ingest.read_timeout);
                return Err(refuse(&mut stream, &ingest.metrics, Reject::Timeout, Some(&agent), reason).await);
            }
            _ = sleep(DRAIN_GRACE), if closing => {
                tracing::warn!(agent, %peer, in_flight, "Closing without the acks of events still being stored; the agent resends them.");
                return Ok(());
            }
            _ = shutdown.recv(), if !closing => {
                closing = true;
                traces.hang_up();
                silences.hang_up();
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
/// counting the event chunks as in flight, and hands trace answers to
/// whoever asked; or the reason to refuse the connection. An event must be
/// `agent`'s own: the name in its hello (which its token or certificate
/// admitted) is the only one it may store under.
fn hand_over(
    lines: &mut Lines,
    ingest: &Ingest,
    agent: &str,
    in_flight: &mut usize,
    rejected: &mut Option<CollectorMessage>,
    traces: &mut TraceLine,
) -> Result<Vec<Handed>, (Reject, String)> {
    let mut handed = Vec::new();
    let mut chunk = Vec::new();
    loop {
        let line = match lines.next_line() {
            Ok(Some(line)) => Some(line),
            Ok(None) => break,
            Err(TooLong) => None,
        };
        let Some(line) = line else {
            // An answer too long to read fails its question only.
            if traces.too_long(lines.head(ANSWER_HEAD), ingest.max_line) {
                lines.skip();
                continue;
            }
            return Err((
                Reject::LineTooLong,
                format!("a line is longer than max_line ({} bytes)", ingest.max_line),
            ));
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
            Ok(Some(incoming)) => {
                traces.event(&ingest.fabric, &incoming);
                chunk.push(incoming);
            }
            Ok(None) => traces.answer(line),
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
}
