//! The agents' live connections as traces see them: a `trace_request` goes
//! out on the agent's own connection and its `trace_result` comes back to
//! the one waiting for it, matched by id.
//!
//! The connection's task owns the socket, so an asker never writes to it:
//! it puts the request line in the connection's bounded queue, which the
//! task writes beside its acks, and waits on a oneshot that the task fills
//! when it reads the answer among the events. A full queue (an agent that
//! stopped reading) fails the question at once instead of making it wait,
//! and nothing an asker does can hold up the connection's events or acks.
//! Each connection has its own table of questions waiting, so an answer is
//! taken only from the connection that was asked, and when the connection
//! ends every question still waiting on it fails at once as `Closed`.
//! An agent runs four traces at once and refuses more, so each connection
//! lets four questions out at a time; the others wait their turn within
//! their own timeout, however many traces cross that switch.
//!
//! On a shared store an agent connected to another collector is asked
//! through [`Relay`] instead; a question relayed here from another
//! collector is asked of local connections only ([`Switchboard::ask_here`]),
//! so a relay never bounces on.

use super::relay::Relay;
use super::{AskError, Asker};
use crate::metrics::{Metrics, TraceOutcome};
use hopwatch_wire::trace::{TraceAnswer, TraceQuery};
use hopwatch_wire::wire::{CollectorMessage, TraceResult};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::time::{Instant, timeout_at};

/// Trace requests waiting to be written on one connection at most. The
/// connection's task writes them as soon as it runs, so the queue fills only
/// when the agent stops reading.
pub const QUEUE: usize = 1024;

/// Traces one agent runs at once: the agent refuses more
/// (`MAX_TRACES` in the agent's collector output), so questions past these
/// wait their turn here, within their own timeout, instead of coming back
/// refused when several traces cross the same switch.
pub const TURNS: usize = 4;

/// How much of an unreadable answer's error is kept: it quotes what the
/// agent sent, and that can be as long as a line may be.
const DETAIL: usize = 200;

/// Every connected agent's line for trace requests.
#[derive(Debug)]
pub struct Switchboard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    // Held to look up, add or remove a line, never across an await.
    lines: Mutex<HashMap<String, Arc<Line>>>,
    /// Request ids, unique across every connection, so an answer with an id
    /// another connection was asked is never taken for this one's.
    next_id: AtomicU64,
    next_line: AtomicU64,
    queue: usize,
    metrics: Arc<Metrics>,
    /// Where agents connected to other collectors are asked; set once on
    /// a shared store.
    relay: OnceLock<Arc<Relay>>,
    /// Pinged whenever a connection comes or goes, for whoever records in
    /// the store which agents this collector holds.
    changed: Notify,
}

/// One connection's side of the switchboard.
#[derive(Debug)]
struct Line {
    id: u64,
    agent: String,
    /// When the connection was put on, by the wall clock (ms).
    since_ms: i64,
    requests: mpsc::Sender<Vec<u8>>,
    // Held to add, take or drop a waiter, never across an await. `None`
    // once the connection has ended: its waiters have been dropped, which
    // tells each asker `Closed`.
    waiting: Mutex<Option<HashMap<u64, Waiter>>>,
    /// A question holds one of [`TURNS`] from before it is sent until it
    /// is answered or given up.
    turns: Arc<Semaphore>,
}

#[derive(Debug)]
struct Waiter {
    kind: Kind,
    reply: oneshot::Sender<Result<TraceAnswer, AskError>>,
}

/// The kind of a question, which its answer must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Flow,
    Paths,
    Hop,
}

impl Kind {
    fn of(query: &TraceQuery) -> Kind {
        match query {
            TraceQuery::Flow(_) => Kind::Flow,
            TraceQuery::Paths(_) => Kind::Paths,
            TraceQuery::Hop(_) => Kind::Hop,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Flow => "flow",
            Kind::Paths => "paths",
            Kind::Hop => "hop",
        }
    }

    fn answered_by(self, answer: &TraceAnswer) -> Result<(), &'static str> {
        let kind = match answer {
            TraceAnswer::Flow(_) => Kind::Flow,
            TraceAnswer::Paths(_) => Kind::Paths,
            TraceAnswer::Hop(_) => Kind::Hop,
            TraceAnswer::Error { .. } => return Ok(()),
        };
        if kind == self {
            Ok(())
        } else {
            Err(kind.as_str())
        }
    }
}

impl Default for Switchboard {
    fn default() -> Switchboard {
        Switchboard::new()
    }
}

impl Switchboard {
    /// A switchboard counting into metrics of its own.
    pub fn new() -> Switchboard {
        Switchboard::with_metrics(Arc::new(Metrics::default()))
    }

    /// A switchboard counting its questions and answers into `metrics`.
    pub fn with_metrics(metrics: Arc<Metrics>) -> Switchboard {
        Switchboard::build(metrics, QUEUE)
    }

    fn build(metrics: Arc<Metrics>, queue: usize) -> Switchboard {
        Switchboard {
            inner: Arc::new(Inner {
                lines: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                next_line: AtomicU64::new(1),
                queue,
                metrics,
                relay: OnceLock::new(),
                changed: Notify::new(),
            }),
        }
    }

    /// Puts `agent`'s connection on the switchboard, replacing the one it
    /// had (an agent that reconnects before the collector noticed the old
    /// connection die is reached on the new one). The connection stays on
    /// until the registration is dropped.
    pub fn register(&self, agent: &str) -> Registration {
        let (tx, rx) = mpsc::channel(self.inner.queue);
        let line = Arc::new(Line {
            id: self.inner.next_line.fetch_add(1, Ordering::Relaxed),
            agent: agent.to_string(),
            since_ms: crate::store::millis(std::time::SystemTime::now()),
            requests: tx,
            waiting: Mutex::new(Some(HashMap::new())),
            turns: Arc::new(Semaphore::new(TURNS)),
        });
        let replaced = self
            .inner
            .lines
            .lock()
            .expect("switchboard poisoned")
            .insert(agent.to_string(), Arc::clone(&line));
        if replaced.is_some() {
            tracing::debug!(
                agent,
                "A new connection of this agent takes its trace requests from now on."
            );
        }
        self.inner.changed.notify_one();
        Registration {
            inner: Arc::clone(&self.inner),
            line,
            requests: rx,
        }
    }

    /// Whether `agent` has a connection to ask on now.
    pub fn is_connected(&self, agent: &str) -> bool {
        self.inner
            .lines
            .lock()
            .expect("switchboard poisoned")
            .contains_key(agent)
    }

    /// The agents connected now, by name.
    pub fn connected(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .lines
            .lock()
            .expect("switchboard poisoned")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// The agents connected now, each with when its connection was put on
    /// (wall clock, ms), by name.
    pub fn lines(&self) -> Vec<(String, i64)> {
        let mut lines: Vec<(String, i64)> = self
            .inner
            .lines
            .lock()
            .expect("switchboard poisoned")
            .values()
            .map(|line| (line.agent.clone(), line.since_ms))
            .collect();
        lines.sort();
        lines
    }

    /// Waits until a connection has come or gone since the last call.
    pub async fn changed(&self) {
        self.inner.changed.notified().await;
    }

    /// From now on, asks an agent not connected here through `relay`.
    pub fn relay_through(&self, relay: Arc<Relay>) {
        let _ = self.inner.relay.set(relay);
    }

    /// Asks `agent` on its connection to this collector only: what a
    /// relayed question is answered with.
    pub async fn ask_here(
        &self,
        agent: &str,
        query: TraceQuery,
        timeout: Duration,
    ) -> Result<TraceAnswer, AskError> {
        self.ask_on(agent, query, timeout, false).await
    }

    async fn ask_on(
        &self,
        agent: &str,
        query: TraceQuery,
        timeout: Duration,
        relay: bool,
    ) -> Result<TraceAnswer, AskError> {
        let metrics = &self.inner.metrics;
        metrics.traces_asked.fetch_add(1, Ordering::Relaxed);
        let line = self
            .inner
            .lines
            .lock()
            .expect("switchboard poisoned")
            .get(agent)
            .cloned();
        let Some(line) = line else {
            let result = match self.inner.relay.get().filter(|_| relay) {
                Some(relay) => relay.ask(agent, query, timeout).await,
                None => Err(AskError::Offline {
                    agent: agent.to_string(),
                }),
            };
            metrics.trace_ended(outcome(&result));
            return result;
        };
        let deadline = Instant::now() + timeout;
        let timed_out = || AskError::Timeout {
            agent: agent.to_string(),
            waited: timeout,
        };
        let _turn = match timeout_at(deadline, Arc::clone(&line.turns).acquire_owned()).await {
            Ok(Ok(turn)) => turn,
            Ok(Err(_)) => unreachable!("a line's turns are never closed"),
            Err(_) => {
                metrics.trace_ended(TraceOutcome::Timeout);
                return Err(timed_out());
            }
        };
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let kind = Kind::of(&query);
        let mut request = serde_json::to_vec(&CollectorMessage::TraceRequest {
            id,
            query: Ok(query),
        })
        .expect("a trace request always serializes");
        request.push(b'\n');
        let (reply, answer) = oneshot::channel();
        {
            let mut waiting = line.waiting.lock().expect("switchboard poisoned");
            let Some(waiting) = waiting.as_mut() else {
                metrics.trace_ended(TraceOutcome::Closed);
                return Err(AskError::Closed {
                    agent: agent.to_string(),
                });
            };
            waiting.insert(id, Waiter { kind, reply });
        }
        // From here on the waiter is taken out however this ends, the
        // asker's own future being dropped included.
        let mut asked = Asked {
            line: &line,
            id,
            metrics,
            ended: false,
        };
        match line.requests.try_send(request) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return asked.end(Err(AskError::Busy {
                    agent: agent.to_string(),
                    queued: self.inner.queue,
                }));
            }
            Err(TrySendError::Closed(_)) => {
                return asked.end(Err(AskError::Closed {
                    agent: agent.to_string(),
                }));
            }
        }
        let result = match timeout_at(deadline, answer).await {
            Ok(Ok(result)) => result,
            // The connection ended and dropped its waiters.
            Ok(Err(_)) => Err(AskError::Closed {
                agent: agent.to_string(),
            }),
            Err(_) => Err(timed_out()),
        };
        asked.end(result)
    }
}

impl Asker for Switchboard {
    async fn ask(
        &self,
        agent: &str,
        query: TraceQuery,
        timeout: Duration,
    ) -> Result<TraceAnswer, AskError> {
        self.ask_on(agent, query, timeout, true).await
    }
}

/// How a question ended, as the metrics count it.
fn outcome(result: &Result<TraceAnswer, AskError>) -> TraceOutcome {
    match result {
        Ok(_) => TraceOutcome::Answered,
        Err(AskError::Refused { .. }) => TraceOutcome::Refused,
        Err(AskError::Timeout { .. }) => TraceOutcome::Timeout,
        Err(AskError::Closed { .. }) => TraceOutcome::Closed,
        Err(AskError::Garbage { .. }) => TraceOutcome::Garbage,
        Err(AskError::Offline { .. }) => TraceOutcome::Offline,
        Err(AskError::Busy { .. }) => TraceOutcome::Busy,
    }
}

/// A question on its way: takes its waiter out and counts how it ended,
/// `abandoned` when the asker's future is dropped before that.
struct Asked<'a> {
    line: &'a Line,
    id: u64,
    metrics: &'a Metrics,
    ended: bool,
}

impl Asked<'_> {
    fn end(&mut self, result: Result<TraceAnswer, AskError>) -> Result<TraceAnswer, AskError> {
        self.forget();
        self.ended = true;
        self.metrics.trace_ended(outcome(&result));
        result
    }

    fn forget(&self) {
        if let Some(waiting) = self
            .line
            .waiting
            .lock()
            .expect("switchboard poisoned")
            .as_mut()
        {
            waiting.remove(&self.id);
        }
    }
}

impl Drop for Asked<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.forget();
            self.metrics.trace_ended(TraceOutcome::Abandoned);
        }
    }
}

/// A connection's place on the switchboard, held by its task: the trace
/// requests to write, and where to hand the answers it reads. Dropping it
/// takes the connection off and fails every question still waiting on it.
#[derive(Debug)]
pub struct Registration {
    inner: Arc<Inner>,
    line: Arc<Line>,
    requests: mpsc::Receiver<Vec<u8>>,
}

impl Registration {
    /// The next request line to write (ending in `\n`); waits for one.
    pub async fn next_request(&mut self) -> Option<Vec<u8>> {
        self.requests.recv().await
    }

    /// A request line already queued, without waiting.
    pub fn try_next_request(&mut self) -> Option<Vec<u8>> {
        self.requests.try_recv().ok()
    }

    /// Hands a `trace_result` line read on this connection to whoever
    /// asked: the answer, `Refused` for an answer of kind `error`, or
    /// `Garbage` for one that cannot be read or is of another kind than the
    /// question. An answer nobody waits for any more is dropped and counted.
    pub fn deliver(&self, line: &[u8]) {
        #[derive(Deserialize)]
        struct Id {
            id: u64,
        }
        let (id, read) = match serde_json::from_slice::<TraceResult>(line) {
            Ok(result) => (result.id, Ok(result.result)),
            Err(error) => match serde_json::from_slice::<Id>(line) {
                Ok(Id { id }) => (id, Err(error.to_string())),
                Err(_) => {
                    tracing::debug!(agent = self.line.agent, %error, "Dropping a trace answer without an id.");
                    self.inner
                        .metrics
                        .trace_results_late
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
        };
        let Some(waiter) = self.waiter(id) else {
            return;
        };
        let agent = || self.line.agent.clone();
        let outcome = match read {
            Err(error) => {
                tracing::debug!(agent = self.line.agent, id, %error, "An agent answered a trace request with something unreadable.");
                Err(AskError::Garbage {
                    agent: agent(),
                    detail: format!("unreadable trace_result: {}", cut(&error)),
                })
            }
            Ok(TraceAnswer::Error { error }) => Err(AskError::Refused {
                agent: agent(),
                error,
            }),
            Ok(answer) => match waiter.kind.answered_by(&answer) {
                Ok(()) => Ok(answer),
                Err(kind) => Err(AskError::Garbage {
                    agent: agent(),
                    detail: format!("a {kind} answer to a {} question", waiter.kind.as_str()),
                }),
            },
        };
        // The asker may have given up in the meantime; it counted that.
        let _ = waiter.reply.send(outcome);
    }

    /// Fails question `id` as answered with garbage (an answer too long to
    /// read, say), saying why.
    pub fn garbage(&self, id: u64, detail: String) {
        if let Some(waiter) = self.waiter(id) {
            let _ = waiter.reply.send(Err(AskError::Garbage {
                agent: self.line.agent.clone(),
                detail,
            }));
        }
    }

    /// Takes out the waiter of question `id`; None, counted and logged, when
    /// nobody waits for it.
    fn waiter(&self, id: u64) -> Option<Waiter> {
        let waiter = self
            .line
            .waiting
            .lock()
            .expect("switchboard poisoned")
            .as_mut()
            .and_then(|waiting| waiting.remove(&id));
        if waiter.is_none() {
            self.inner
                .metrics
                .trace_results_late
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                agent = self.line.agent,
                id,
                "Dropping a trace answer nobody waits for (it came after its question was given up, or answers no question asked)."
            );
        }
        waiter
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        {
            let mut lines = self.inner.lines.lock().expect("switchboard poisoned");
            // Only this connection's own entry: a newer connection of the
            // same agent keeps its place.
            if lines
                .get(&self.line.agent)
                .is_some_and(|line| line.id == self.line.id)
            {
                lines.remove(&self.line.agent);
                self.inner.changed.notify_one();
            }
        }
        // Dropping the waiters tells each asker the connection closed.
        self.line
            .waiting
            .lock()
            .expect("switchboard poisoned")
            .take();
    }
}

/// `text` cut to [`DETAIL`] characters.
fn cut(text: &str) -> String {
    match text.char_indices().nth(DETAIL) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests;
