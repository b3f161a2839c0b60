//! The one writer: a thread that takes events from every connection, applies
//! a batch of them in one transaction (raw rows and derived state alike),
//! commits, and only then acknowledges them to the connections that sent
//! them. Batches form by themselves: while one commits, the next gathers, so
//! under load one fsync covers thousands of events and when idle an event is
//! committed at once.

pub(crate) mod apply;
pub(crate) mod cache;
mod prune;
mod sync;

use super::{StoreError, millis};
use crate::metrics::Metrics;
use crate::timeline;
use apply::apply_event;
use cache::{Cache, Hot};
use hopwatch_wire::event::{Body, Event};
use hopwatch_wire::wire::Hello;
use prune::PruneStep;
use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use sync::{Durability, Durable, Syncer};
use tokio::sync::mpsc;

/// Events per transaction at most, which bounds the ack latency of the
/// events at the back of a batch.
pub const MAX_BATCH_EVENTS: usize = 16_384;

/// One event as a connection hands it over: the envelope, the body when it
/// parsed, and the line to store.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub v: u32,
    pub agent: String,
    pub boot: String,
    pub seq: u64,
    pub ts: String,
    pub ts_ms: i64,
    pub kind: String,
    /// None for a type this collector does not know: stored, acknowledged,
    /// and otherwise left alone.
    pub body: Option<Body>,
    pub line: String,
}

impl Incoming {
    pub(crate) fn event(&self) -> Option<Event> {
        Some(Event {
            v: self.v,
            agent: self.agent.clone(),
            boot: self.boot.clone(),
            seq: self.seq,
            ts: self.ts.clone(),
            body: self.body.clone()?,
        })
    }
}

/// Where the writer publishes events once they are durable, for syslog and
/// alert forwarding: a bounded channel, so a forwarder that falls behind never
/// holds the store up. When it is full the event is dropped and counted
/// ([`Metrics::forward_dropped`]); the ones already waiting go first.
pub type Published = std::sync::mpsc::SyncSender<Event>;

/// What the writer answers a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Ack {
    /// Per boot, the highest seq of the request: it and everything the
    /// connection sent before it are committed. The request's events come
    /// back too, for the connection to free: freeing them was a measurable
    /// share of the writer's time, and the writer is the one thread every
    /// event goes through.
    Stored(Vec<(String, u64)>, Spent),
    /// The transaction failed; nothing of the request is acknowledged.
    Failed(String),
}

/// Events the writer is done with.
#[derive(Default, Clone)]
pub struct Spent(pub Vec<Incoming>);

impl std::fmt::Debug for Spent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Spent({} events)", self.0.len())
    }
}

/// Spent events are not part of what an ack says.
impl PartialEq for Spent {
    fn eq(&self, _: &Spent) -> bool {
        true
    }
}

pub type Reply = mpsc::UnboundedSender<Ack>;

/// A request to the writer.
#[derive(Debug)]
pub enum Request {
    Events {
        events: Vec<Incoming>,
        reply: Reply,
    },
    /// An agent connected: record its address, version and boot.
    Hello {
        hello: Box<Hello>,
        address: String,
    },
    /// The agent is stopping on purpose (its `goodbye`, after its last
    /// event): it is `stopped`, not stale, from now on.
    Goodbye {
        agent: String,
        boot: String,
        last_seq: u64,
    },
    /// Delete what is older than the retention.
    Prune,
    /// Add or end a silence; answered once the transaction has committed
    /// (or dropped unanswered if it failed).
    Silence {
        change: super::silences::Change,
        reply: tokio::sync::oneshot::Sender<super::silences::Outcome>,
    },
}

/// The highest seq stored per agent and boot, as committed: what `welcome`
/// tells a connecting agent.
#[derive(Default)]
pub struct Committed {
    // Held for a lookup or an update, never across an await.
    last_seq: Mutex<HashMap<String, HashMap<String, u64>>>,
    /// A store other collectors write too: `welcome` reads it there.
    shared: Option<super::postgres::Pg>,
}

impl std::fmt::Debug for Committed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committed")
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl Committed {
    /// For a store other collectors write too: an agent that moved here
    /// is told what any of them stored, not what this one has seen.
    pub fn shared(pg: super::postgres::Pg) -> Committed {
        Committed {
            shared: Some(pg),
            ..Committed::default()
        }
    }

    /// What `welcome` answers for an agent's boots: per boot, the highest
    /// seq stored.
    pub async fn welcome(
        &self,
        agent: &str,
        boots: &[String],
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let mut answer: std::collections::BTreeMap<String, u64> =
            boots.iter().map(|boot| (boot.clone(), 0)).collect();
        match &self.shared {
            Some(pg) => {
                for (boot, seq) in super::postgres::writer::last_seqs(pg, agent, boots).await? {
                    answer.insert(boot, seq);
                }
            }
            None => {
                for (boot, seq) in &mut answer {
                    *seq = self.last_seq(agent, boot);
                }
            }
        }
        Ok(answer)
    }

    pub fn last_seq(&self, agent: &str, boot: &str) -> u64 {
        self.last_seq
            .lock()
            .expect("committed map poisoned")
            .get(agent)
            .and_then(|boots| boots.get(boot))
            .copied()
            .unwrap_or(0)
    }

    fn set(&self, agent: &str, boot: &str, seq: u64) {
        let mut map = self.last_seq.lock().expect("committed map poisoned");
        let entry = map
            .entry(agent.to_string())
            .or_default()
            .entry(boot.to_string())
            .or_insert(0);
        *entry = (*entry).max(seq);
    }

    fn forget(&self, agent: &str, boot: &str) {
        let mut map = self.last_seq.lock().expect("committed map poisoned");
        if let Some(boots) = map.get_mut(agent) {
            boots.remove(boot);
        }
    }
}

/// The writer of the store the collector was given, to run on its thread.
pub enum StoreWriter {
    Sqlite(Writer),
    Postgres(super::postgres::writer::PgWriter),
}

impl StoreWriter {
    /// Serves requests until every sender is gone.
    pub fn run(self, rx: mpsc::Receiver<Request>) {
        match self {
            StoreWriter::Sqlite(writer) => writer.run(rx),
            StoreWriter::Postgres(writer) => writer.run(rx),
        }
    }
}

/// Settings the writer needs.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    pub heartbeat_timeout: Duration,
    pub retain: Duration,
}

/// The agent's clock skew from its hello's `now`, logged when it is
/// corrected for.
/// When the agent sent its hello, by its own clock (ms).
fn hello_time(hello: &Hello) -> Option<i64> {
    let now = humantime::parse_rfc3339_weak(hello.now.as_deref()?).ok()?;
    Some(super::millis(now))
}

fn hello_skew(hello: &Hello, now_ms: i64) -> i64 {
    let Some(agent_now) = hello_time(hello) else {
        return 0;
    };
    let skew = timeline::skew(agent_now, now_ms);
    if skew != 0 {
        tracing::warn!(
            agent = hello.agent,
            skew_ms = skew,
            "The agent's clock differs from the collector's; its event times are corrected by the difference. Fix its clock (NTP)."
        );
    }
    skew
}

/// Per boot, the highest seq of a request.
pub(crate) type BootSeqs = Vec<(String, u64)>;

/// What one batch did, for acks, forwarding and metrics once it committed.
#[derive(Default)]
pub(crate) struct BatchOutcome {
    pub(crate) acks: Vec<(Reply, BootSeqs, Spent)>,
    pub(crate) fresh: Vec<Event>,
    pub(crate) stored: [u64; 5],
    pub(crate) duplicates: u64,
    pub(crate) boots: Vec<(String, String, u64)>,
    pub(crate) events: usize,
    pub(crate) silences: Vec<(
        tokio::sync::oneshot::Sender<super::silences::Outcome>,
        super::silences::Outcome,
    )>,
}

impl BatchOutcome {
    /// Applies one request's events through `sink` at `(now_ms,
    /// timeout_ms)`, tallies them and notes the request's ack: per boot,
    /// the highest seq it carried.
    pub(crate) fn apply_events<S: cache::Sink>(
        &mut self,
        sink: &mut S,
        cache: &mut Cache,
        events: Vec<Incoming>,
        reply: Reply,
        (now_ms, timeout_ms): (i64, i64),
        want_events: bool,
    ) -> Result<(), S::Error> {
        let mut acks: Vec<(String, u64)> = Vec::new();
        for incoming in &events {
            self.events += 1;
            let fresh = apply_event(sink, cache, incoming, now_ms, timeout_ms)?;
            match acks.iter_mut().find(|(b, _)| *b == incoming.boot) {
                Some((_, seq)) => *seq = (*seq).max(incoming.seq),
                None => acks.push((incoming.boot.clone(), incoming.seq)),
            }
            if fresh {
                self.stored[kind_index(&incoming.kind)] += 1;
                if want_events && let Some(event) = incoming.event() {
                    self.fresh.push(event);
                }
            } else {
                self.duplicates += 1;
            }
        }
        self.acks.push((reply, acks, Spent(events)));
        Ok(())
    }
}

const KINDS: [&str; 4] = ["alert", "link", "heartbeat", "loss"];

pub(crate) fn kind_index(kind: &str) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(KINDS.len())
}

/// The writer thread's state.
pub struct Writer {
    db: Connection,
    cache: Cache,
    metrics: Arc<Metrics>,
    settings: WriterSettings,
    last_now_ms: i64,
    prune: Option<(PruneStep, i64)>,
    sync: Durability,
    committed: Arc<Committed>,
    forwarding: bool,
    /// Set when making a batch durable failed: nothing more is accepted.
    broken: Arc<AtomicBool>,
}

impl Writer {
    /// Loads the derived state from `db` and fills `committed`.
    pub fn new(
        db: Connection,
        committed: Arc<Committed>,
        metrics: Arc<Metrics>,
        forward: Option<Published>,
        settings: WriterSettings,
    ) -> Result<Writer, StoreError> {
        let cache = Cache::load(&db)?;
        for (agent_id, boots) in &cache.boots {
            if let Some(name) = cache.agent_names.get(agent_id) {
                for (boot, row) in boots {
                    committed.set(name, boot, row.last_seq);
                }
            }
        }
        let wal_path = format!("{}-wal", db.path().unwrap_or_default());
        let wal = std::fs::File::open(&wal_path).map_err(|source| StoreError::Wal {
            path: wal_path,
            source,
        })?;
        let broken = Arc::new(AtomicBool::new(false));
        Ok(Writer {
            db,
            cache,
            settings,
            last_now_ms: 0,
            prune: None,
            forwarding: forward.is_some(),
            sync: Durability::Inline(Syncer {
                wal,
                committed: Arc::clone(&committed),
                forward,
                metrics: Arc::clone(&metrics),
                broken: Arc::clone(&broken),
            }),
            metrics,
            committed,
            broken,
        })
    }

    /// Serves requests until every sender is gone, then lets the last
    /// batches become durable and closes the channel to forwarding.
    pub fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        if let Durability::Inline(syncer) = std::mem::replace(&mut self.sync, Durability::Gone) {
            let (to, from) = std::sync::mpsc::channel::<Durable>();
            let thread = std::thread::Builder::new()
                .name("store-sync".into())
                .spawn(move || {
                    let mut syncer = syncer;
                    while let Ok(first) = from.recv() {
                        let mut batches = vec![first];
                        batches.extend(from.try_iter());
                        syncer.deliver(batches);
                    }
                    syncer
                })
                .expect("spawning the sync thread");
            self.sync = Durability::Thread { to, thread };
        }
        loop {
            let batch = match next_batch(&mut rx, self.prune.is_some()) {
                Next::Batch(batch) => batch,
                Next::Idle => {
                    self.prune_step();
                    continue;
                }
                Next::Closed => break,
            };
            let now = self.now_ms(SystemTime::now());
            self.apply(batch, now);
        }
        match std::mem::replace(&mut self.sync, Durability::Gone) {
            Durability::Inline(syncer) => syncer.close(),
            Durability::Thread { to, thread } => {
                drop(to);
                if let Ok(syncer) = thread.join() {
                    syncer.close();
                }
            }
            Durability::Gone => {}
        }
    }

    /// Received times never go backwards, whatever the wall clock does, so
    /// received order and time agree for pruning.
    fn now_ms(&mut self, now: SystemTime) -> i64 {
        self.last_now_ms = self.last_now_ms.max(millis(now));
        self.last_now_ms
    }

    /// Applies a batch in one transaction at `now_ms`, then acknowledges or
    /// fails each request.
    pub fn apply(&mut self, batch: Vec<Request>, now_ms: i64) {
        let started = Instant::now();
        let mut replies: Vec<Reply> = Vec::new();
        let mut prune = false;
        if self.broken.load(Ordering::SeqCst) {
            for request in batch {
                if let Request::Events { reply, .. } = request {
                    let _ = reply.send(Ack::Failed(
                        "the collector's store failed to sync; it takes no events until restarted"
                            .into(),
                    ));
                }
            }
            return;
        }
        let result = self.transaction(batch, now_ms, &mut replies, &mut prune);
        match result {
            Ok(mut outcome) => {
                for (reply, result) in outcome.silences.drain(..) {
                    let _ = reply.send(result);
                }
                let m = &self.metrics;
                m.batches.fetch_add(1, Ordering::Relaxed);
                // Only a batch with events shows the store takes them; a
                // hello's bookkeeping may fit where no event does.
                if outcome.events > 0 {
                    m.store.commit_succeeded();
                }
                m.commit_micros
                    .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                m.duplicates
                    .fetch_add(outcome.duplicates, Ordering::Relaxed);
                for (i, n) in outcome.stored.iter().enumerate() {
                    m.ingested[i].fetch_add(*n, Ordering::Relaxed);
                }
                if outcome.events > 0 {
                    tracing::trace!(events = outcome.events, elapsed = ?started.elapsed(), "Committed a batch.");
                }
                let durable = Durable {
                    acks: outcome.acks,
                    boots: outcome.boots,
                    fresh: outcome.fresh,
                };
                match &mut self.sync {
                    Durability::Inline(syncer) => syncer.deliver(vec![durable]),
                    Durability::Thread { to, .. } => {
                        if let Err(unsent) = to.send(durable) {
                            // Only if the sync thread died: deliver nothing
                            // unsynced.
                            for (reply, _, _) in unsent.0.acks {
                                let _ = reply
                                    .send(Ack::Failed("the store's sync thread is gone".into()));
                            }
                        }
                    }
                    Durability::Gone => {}
                }
            }
            Err(error) => {
                self.metrics.commit_failures.fetch_add(1, Ordering::Relaxed);
                self.metrics.store.commit_failed(&error);
                tracing::error!(%error, "Storing a batch failed; its connections are closed so their agents resend.");
                let reason = format!("the collector could not store events: {error}");
                for reply in replies {
                    let _ = reply.send(Ack::Failed(reason.clone()));
                }
                // The transaction rolled back; the memory mirror may hold
                // some of it, so read it again from what did commit.
                match Cache::load(&self.db) {
                    Ok(cache) => self.cache = cache,
                    Err(error) => {
                        tracing::error!(%error, "Reloading the store's state failed.");
                    }
                }
            }
        }
        if prune && self.prune.is_none() {
            let cutoff = now_ms - self.settings.retain.as_millis() as i64;
            self.prune = Some((PruneStep::Events, cutoff));
        }
    }

    fn transaction(
        &mut self,
        batch: Vec<Request>,
        now_ms: i64,
        replies: &mut Vec<Reply>,
        prune: &mut bool,
    ) -> Result<BatchOutcome, rusqlite::Error> {
        let timeout_ms = self.settings.heartbeat_timeout.as_millis() as i64;
        let want_events = self.forwarding;
        let tx = self.db.transaction()?;
        let mut hot = Hot::new(&tx)?;
        let cache = &mut self.cache;
        let mut outcome = BatchOutcome::default();
        for request in batch {
            match request {
                Request::Events { events, reply } => {
                    replies.push(reply.clone());
                    outcome.apply_events(
                        &mut hot,
                        cache,
                        events,
                        reply,
                        (now_ms, timeout_ms),
                        want_events,
                    )?;
                }
                Request::Hello { hello, address } => {
                    let id = cache.agent(&mut hot, &hello.agent, now_ms)?;
                    let addresses = serde_json::to_string(&hello.addresses)
                        .expect("addresses always serialize");
                    tx.prepare_cached(
                        "UPDATE agents SET address = ?2, version = ?3, boot = ?4, addresses = ?5,
                                           last_seen_ms = ?6
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        id,
                        address,
                        hello.version,
                        hello.boot,
                        addresses,
                        now_ms
                    ])?;
                    cache.hello(id, &hello, addresses, now_ms);
                }
                Request::Goodbye {
                    agent,
                    boot,
                    last_seq,
                } => {
                    let id = cache.agent(&mut hot, &agent, now_ms)?;
                    cache.goodbye(id, now_ms);
                    tracing::info!(agent, boot, last_seq, "Agent stopped (it said goodbye).");
                }
                Request::Prune => *prune = true,
                // A failed statement is answered, not fatal: the events of
                // the batch it rides in still commit.
                Request::Silence { change, reply } => {
                    let result = super::silences::apply(&*tx, &change).map_err(|e| e.to_string());
                    outcome.silences.push((reply, result));
                }
            }
        }
        for id in cache.dirty_agents.drain() {
            let name = &cache.agent_names[&id];
            let agent = &cache.agents[name];
            tx.prepare_cached(
                "UPDATE agents SET last_seen_ms = ?2, last_ts_ms = ?3, stopped_ms = ?4 WHERE id = ?1",
            )?
            .execute(params![
                id,
                agent.last_seen_ms,
                agent.last_ts_ms,
                agent.stopped_ms
            ])?;
        }
        for (agent_id, boot) in cache.dirty_boots.drain(..) {
            let row = cache
                .boots
                .get_mut(&agent_id)
                .and_then(|b| b.get_mut(&boot))
                .expect("a dirty boot is cached");
            row.dirty = false;
            tx.prepare_cached("UPDATE boots SET last_seq = ?2, last_ms = ?3 WHERE id = ?1")?
                .execute(params![row.id, row.last_seq as i64, now_ms])?;
            outcome
                .boots
                .push((cache.agent_names[&agent_id].clone(), boot, row.last_seq));
        }
        for id in cache.dirty_tails.drain() {
            let t = &cache.tails[&id];
            tx.prepare_cached(
                "UPDATE interfaces SET n = ?2, start_ms = ?3, state = ?4, prior = ?5,
                        down_before_ms = ?6, unknown_before_ms = ?7, outages = ?8,
                        down_since_ms = ?9, admin_down_before_ms = ?10
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                t.n,
                t.seg.start_ms,
                t.seg.state.code(),
                t.seg.prior.code(),
                t.seg.down_before_ms,
                t.seg.unknown_before_ms,
                t.seg.outages,
                t.down_since_ms,
                t.seg.admin_down_before_ms
            ])?;
        }
        drop(hot);
        tx.commit()?;
        Ok(outcome)
    }
}

/// What a writer takes from its queue next.
pub(crate) enum Next {
    /// Requests to apply in one transaction: all that waited, up to
    /// [`MAX_BATCH_EVENTS`] events.
    Batch(Vec<Request>),
    /// Nothing waits, and a pruning pass is under way: time for a chunk.
    Idle,
    /// Every sender is gone.
    Closed,
}

/// The next batch either store's writer applies: while a pruning pass is
/// under way it does not wait for requests, so the pass goes on between
/// batches; otherwise it blocks for the first one. Batches form by
/// themselves: whatever queued while the last one committed comes along.
pub(crate) fn next_batch(rx: &mut mpsc::Receiver<Request>, pruning: bool) -> Next {
    let first = if pruning {
        match rx.try_recv() {
            Ok(request) => request,
            Err(mpsc::error::TryRecvError::Empty) => return Next::Idle,
            Err(mpsc::error::TryRecvError::Disconnected) => return Next::Closed,
        }
    } else {
        match rx.blocking_recv() {
            Some(request) => request,
            None => return Next::Closed,
        }
    };
    let mut batch = vec![first];
    let mut events = batch_events(&batch[0]);
    while events < MAX_BATCH_EVENTS {
        match rx.try_recv() {
            Ok(request) => {
                events += batch_events(&request);
                batch.push(request);
            }
            Err(_) => break,
        }
    }
    Next::Batch(batch)
}

pub(crate) fn batch_events(request: &Request) -> usize {
    match request {
        Request::Events { events, .. } => events.len(),
        _ => 1,
    }
}

#[cfg(test)]
mod timeline_tests;

#[cfg(test)]
pub(crate) mod tests;
