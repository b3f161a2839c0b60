//! The one writer: a thread that takes events from every connection, applies
//! a batch of them in one transaction (raw rows and derived state alike),
//! commits, and only then acknowledges them to the connections that sent
//! them. Batches form by themselves: while one commits, the next gathers, so
//! under load one fsync covers thousands of events and when idle an event is
//! committed at once.

use super::{StoreError, millis};
use crate::forward::Forwarder;
use crate::metrics::Metrics;
use crate::timeline::{self, Segment, State};
use hopwatch_wire::event::{AlertState, Body, Event, LinkState};
use hopwatch_wire::wire::Hello;
use rusqlite::{CachedStatement, Connection, OptionalExtension, params};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

/// Events per transaction at most, which bounds the ack latency of the
/// events at the back of a batch.
pub const MAX_BATCH_EVENTS: usize = 16_384;

/// Rows deleted per pruning transaction, so pruning never holds ingest up
/// for long.
const PRUNE_CHUNK: i64 = 20_000;

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
    fn event(&self) -> Option<Event> {
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
}

/// The highest seq stored per agent and boot, as committed: what `welcome`
/// tells a connecting agent.
#[derive(Debug, Default)]
pub struct Committed {
    // Held for a lookup or an update, never across an await.
    last_seq: Mutex<HashMap<String, HashMap<String, u64>>>,
}

impl Committed {
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

/// Settings the writer needs.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    pub heartbeat_timeout: Duration,
    pub retain: Duration,
}

struct AgentRow {
    id: i64,
    name: String,
    last_seen_ms: i64,
    last_ts_ms: Option<i64>,
    addresses: String,
    latest_boot: Option<i64>,
    interfaces: Vec<i64>,
    /// How far the agent's clock runs ahead of ours, measured at its last
    /// hello (0 within the tolerance, or before any hello).
    skew_ms: i64,
    /// Whether a future-stamped event was logged since that hello.
    future_logged: bool,
    /// When it said goodbye; cleared when it connects again.
    stopped_ms: Option<i64>,
    /// It said goodbye and has sent no event since: the time until its next
    /// event is unknown, however short.
    resumes_unknown: bool,
}

struct BootRow {
    id: i64,
    last_seq: u64,
    /// Changed in the current batch (listed in `dirty_boots`).
    dirty: bool,
}

/// An interface and its open segment.
struct Tail {
    id: i64,
    n: i64,
    seg: Segment,
    down_since_ms: Option<i64>,
}

/// FxHash, as rustc uses: a multiply and a rotate per word. The writer
/// hashes several names per event and SipHash showed in its profile; the
/// keys come from authenticated agents, whose worst case is a writer slowed
/// by their own traffic.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.add(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_i64(&mut self, n: i64) {
        self.add(n as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
type FastSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// The derived state the writer keeps in memory, mirrored in the tables.
#[derive(Default)]
struct Cache {
    agents: FastMap<String, AgentRow>,
    agent_names: FastMap<i64, String>,
    /// Per agent id, per boot.
    boots: FastMap<i64, FastMap<String, BootRow>>,
    tails: FastMap<i64, Tail>,
    /// Per agent id, per interface name.
    iface_ids: FastMap<i64, FastMap<String, i64>>,
    /// (agent, rule, interface) → (alert id, boot id).
    open_alerts: FastMap<(i64, String, String), (i64, i64)>,
    dirty_agents: FastSet<i64>,
    dirty_boots: Vec<(i64, String)>,
    dirty_tails: FastSet<i64>,
}

impl Cache {
    fn load(db: &Connection) -> Result<Cache, rusqlite::Error> {
        let mut cache = Cache::default();
        let mut stmt = db.prepare(
            "SELECT id, name, last_seen_ms, last_ts_ms, addresses,
                    (SELECT id FROM boots b WHERE b.agent_id = a.id AND b.boot = a.boot),
                    stopped_ms
             FROM agents a",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(AgentRow {
                id: r.get(0)?,
                name: r.get(1)?,
                last_seen_ms: r.get(2)?,
                last_ts_ms: r.get(3)?,
                addresses: r.get(4)?,
                latest_boot: r.get(5)?,
                interfaces: Vec::new(),
                skew_ms: 0,
                future_logged: false,
                stopped_ms: r.get(6)?,
                resumes_unknown: r.get::<_, Option<i64>>(6)?.is_some(),
            })
        })?;
        for row in rows {
            let row = row?;
            cache.agent_names.insert(row.id, row.name.clone());
            cache.agents.insert(row.name.clone(), row);
        }
        let mut stmt = db.prepare("SELECT id, agent_id, boot, last_seq FROM boots")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (id, agent_id, boot, last_seq) = row?;
            cache.boots.entry(agent_id).or_default().insert(
                boot,
                BootRow {
                    id,
                    last_seq: last_seq as u64,
                    dirty: false,
                },
            );
        }
        let mut stmt = db.prepare(
            "SELECT id, agent_id, name, n, start_ms, state, prior, down_before_ms,
                    unknown_before_ms, outages, down_since_ms
             FROM interfaces",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                Tail {
                    id: r.get(0)?,
                    n: r.get(3)?,
                    seg: Segment {
                        start_ms: r.get(4)?,
                        state: State::from_code(r.get(5)?),
                        prior: State::from_code(r.get(6)?),
                        down_before_ms: r.get(7)?,
                        unknown_before_ms: r.get(8)?,
                        outages: r.get(9)?,
                    },
                    down_since_ms: r.get(10)?,
                },
            ))
        })?;
        for row in rows {
            let (agent_id, name, tail) = row?;
            if let Some(agent) = cache
                .agent_names
                .get(&agent_id)
                .and_then(|n| cache.agents.get_mut(n))
            {
                agent.interfaces.push(tail.id);
            }
            cache
                .iface_ids
                .entry(agent_id)
                .or_default()
                .insert(name, tail.id);
            cache.tails.insert(tail.id, tail);
        }
        let mut stmt = db.prepare(
            "SELECT id, agent_id, rule, interface, boot_id FROM alerts WHERE resolved_at_ms IS NULL",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                (
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ),
                (r.get::<_, i64>(0)?, r.get::<_, i64>(4)?),
            ))
        })?;
        for row in rows {
            let (key, value) = row?;
            cache.open_alerts.insert(key, value);
        }
        Ok(cache)
    }

    /// The agent's id, creating its row on first sight.
    fn agent(&mut self, db: &Connection, name: &str, now_ms: i64) -> Result<i64, rusqlite::Error> {
        if let Some(agent) = self.agents.get(name) {
            return Ok(agent.id);
        }
        let id: i64 = db
            .prepare_cached("INSERT INTO agents (name, last_seen_ms) VALUES (?1, ?2) RETURNING id")?
            .query_row(params![name, now_ms], |r| r.get(0))?;
        self.agent_names.insert(id, name.to_string());
        self.agents.insert(
            name.to_string(),
            AgentRow {
                id,
                name: name.to_string(),
                last_seen_ms: now_ms,
                last_ts_ms: None,
                addresses: "[]".into(),
                latest_boot: None,
                interfaces: Vec::new(),
                skew_ms: 0,
                future_logged: false,
                stopped_ms: None,
                resumes_unknown: false,
            },
        );
        Ok(id)
    }

    fn agent_row(&mut self, id: i64) -> &mut AgentRow {
        let name = &self.agent_names[&id];
        self.agents.get_mut(name).expect("every agent id has a row")
    }

    /// The boot's id and whether it was new.
    fn boot(
        &mut self,
        db: &Connection,
        agent_id: i64,
        boot: &str,
        now_ms: i64,
    ) -> Result<(i64, bool), rusqlite::Error> {
        if let Some(row) = self.boots.get(&agent_id).and_then(|b| b.get(boot)) {
            return Ok((row.id, false));
        }
        db.prepare_cached("INSERT INTO boots (agent_id, boot, last_ms) VALUES (?1, ?2, ?3)")?
            .execute(params![agent_id, boot, now_ms])?;
        let id = db.last_insert_rowid();
        self.boots.entry(agent_id).or_default().insert(
            boot.to_string(),
            BootRow {
                id,
                last_seq: 0,
                dirty: false,
            },
        );
        Ok((id, true))
    }

    /// The interface's id, creating it with a first segment in `state` at
    /// `at`; the flag says whether it was new.
    fn interface(
        &mut self,
        db: &Connection,
        hot: &mut Hot,
        agent_id: i64,
        name: &str,
        at: i64,
        state: State,
    ) -> Result<(i64, bool), rusqlite::Error> {
        if let Some(id) = self.iface_ids.get(&agent_id).and_then(|m| m.get(name)) {
            return Ok((*id, false));
        }
        let seg = Segment::first(at, state);
        let down_since_ms = (state == State::Down).then_some(at);
        let id: i64 = db
            .prepare_cached(
                "INSERT INTO interfaces (agent_id, name, n, start_ms, state, prior, down_before_ms,
                                         unknown_before_ms, outages, down_since_ms)
                 VALUES (?1, ?2, 0, ?3, ?4, ?4, 0, 0, ?5, ?6) RETURNING id",
            )?
            .query_row(
                params![agent_id, name, at, state.code(), seg.outages, down_since_ms],
                |r| r.get(0),
            )?;
        hot.segment(id, 0, &seg)?;
        self.iface_ids
            .entry(agent_id)
            .or_default()
            .insert(name.to_string(), id);
        self.tails.insert(
            id,
            Tail {
                id,
                n: 0,
                seg,
                down_since_ms,
            },
        );
        self.agent_row(agent_id).interfaces.push(id);
        Ok((id, true))
    }

    /// Moves the interface to `state` at `at`, appending a segment.
    fn transition(
        &mut self,
        hot: &mut Hot,
        iface: i64,
        at: i64,
        state: State,
    ) -> Result<(), rusqlite::Error> {
        let tail = self.tails.get_mut(&iface).expect("known interface");
        if tail.seg.state == state {
            return Ok(());
        }
        let next = tail.seg.next(at, state);
        if next.outages > tail.seg.outages {
            tail.down_since_ms = Some(next.start_ms);
        }
        tail.n += 1;
        tail.seg = next;
        hot.segment(tail.id, tail.n, &next)?;
        self.dirty_tails.insert(iface);
        Ok(())
    }
}

/// The statements every event runs, prepared once per transaction: looking
/// each up in the statement cache per event was a measurable share of the
/// writer's time.
struct Hot<'c> {
    event: CachedStatement<'c>,
    segment: CachedStatement<'c>,
    change: CachedStatement<'c>,
    fire: CachedStatement<'c>,
    close: CachedStatement<'c>,
}

impl<'c> Hot<'c> {
    fn new(db: &'c Connection) -> Result<Hot<'c>, rusqlite::Error> {
        Ok(Hot {
            event: db.prepare_cached(
                "INSERT OR IGNORE INTO events (boot_id, seq, ts_ms, received_ms, type, line)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
            segment: db.prepare_cached(
                "INSERT INTO segments (iface_id, start_ms, n, state, prior, down_before_ms,
                                       unknown_before_ms, outages)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?,
            change: db.prepare_cached(
                "INSERT INTO link_changes (at_ms, event_id, iface_id, state, down_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?,
            fire: db.prepare_cached(
                "INSERT INTO alerts (agent_id, boot_id, interface, rule, severity, expr,
                                     value, threshold, message, fired_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?,
            close: db.prepare_cached(
                "UPDATE alerts SET resolved_at_ms = max(?2, coalesce(fired_at_ms, ?2)),
                                   resolved_value = ?3, resolved_message = ?4, resolved_by = ?5
                 WHERE id = ?1",
            )?,
        })
    }

    fn segment(&mut self, iface: i64, n: i64, seg: &Segment) -> Result<(), rusqlite::Error> {
        self.segment.execute(params![
            iface,
            seg.start_ms,
            n,
            seg.state.code(),
            seg.prior.code(),
            seg.down_before_ms,
            seg.unknown_before_ms,
            seg.outages
        ])?;
        Ok(())
    }

    fn close(
        &mut self,
        id: i64,
        at: i64,
        value: Option<f64>,
        message: Option<&str>,
        by: &str,
    ) -> Result<(), rusqlite::Error> {
        self.close.execute(params![id, at, value, message, by])?;
        Ok(())
    }
}

fn link_state(state: LinkState) -> State {
    match state {
        LinkState::Up => State::Up,
        LinkState::Down => State::Down,
        LinkState::Unknown => State::Unknown,
    }
}

/// The agent's clock skew from its hello's `now`, logged when it is
/// corrected for.
fn hello_skew(hello: &Hello, now_ms: i64) -> i64 {
    let Some(agent_now) = hello
        .now
        .as_deref()
        .and_then(|now| humantime::parse_rfc3339_weak(now).ok())
    else {
        return 0;
    };
    let skew = timeline::skew(super::millis(agent_now), now_ms);
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
type BootSeqs = Vec<(String, u64)>;

/// What one batch did, for acks, forwarding and metrics once it committed.
#[derive(Default)]
struct BatchOutcome {
    acks: Vec<(Reply, BootSeqs, Spent)>,
    fresh: Vec<Event>,
    stored: [u64; 5],
    duplicates: u64,
    boots: Vec<(String, String, u64)>,
    events: usize,
}

const KINDS: [&str; 4] = ["alert", "link", "heartbeat", "loss"];

fn kind_index(kind: &str) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(KINDS.len())
}

/// The rows a pruning pass still has to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PruneStep {
    Events,
    LinkChanges,
    Alerts,
    Segments { after_iface: i64 },
    Boots,
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

/// What a committed batch owes its connections once it is durable.
struct Durable {
    acks: Vec<(Reply, BootSeqs, Spent)>,
    boots: Vec<(String, String, u64)>,
    fresh: Vec<Event>,
}

/// Makes committed batches durable with one fsync of the WAL, then
/// acknowledges them, tells `welcome` about them and forwards their events.
///
/// The store runs with synchronous=NORMAL, so a COMMIT writes the WAL but
/// does not wait for the disk; the acks wait here instead, behind an fsync
/// of the WAL file (fsync flushes the file whatever descriptor it comes
/// through). Everything an ack covers was written to the WAL before the
/// fsync began, so it is on disk when the ack goes out, exactly as with
/// synchronous=FULL, but the writer commits the next batch while the disk
/// works on this one.
struct Syncer {
    wal: std::fs::File,
    committed: Arc<Committed>,
    forward: Option<Forwarder>,
    metrics: Arc<Metrics>,
    broken: Arc<AtomicBool>,
}

impl Syncer {
    fn deliver(&mut self, batches: Vec<Durable>) {
        if let Err(error) = self.wal.sync_data() {
            // After a failed fsync the kernel may have dropped the dirty
            // pages: nothing written since the last good one can be trusted
            // to be on disk, so nothing is acknowledged and the collector
            // takes no more until it is restarted (and SQLite recovers).
            tracing::error!(%error, "Syncing the store failed; acknowledging nothing more until a restart.");
            self.broken.store(true, Ordering::SeqCst);
            self.metrics.store.sync_failed(&error);
            let reason = format!("the collector could not sync its store: {error}");
            for batch in batches {
                for (reply, _, _) in batch.acks {
                    let _ = reply.send(Ack::Failed(reason.clone()));
                }
            }
            return;
        }
        self.metrics.syncs.fetch_add(1, Ordering::Relaxed);
        for batch in batches {
            for (agent, boot, seq) in &batch.boots {
                self.committed.set(agent, boot, *seq);
            }
            for (reply, acks, spent) in batch.acks {
                let _ = reply.send(Ack::Stored(acks, spent));
            }
            if let Some(forward) = &self.forward {
                for event in batch.fresh {
                    forward.send(event);
                }
            }
        }
    }

    fn close(self) {
        if let Some(forward) = self.forward {
            forward.close();
        }
    }
}

/// Where committed batches go to become durable.
enum Durability {
    /// On the writer's own thread, before it takes the next batch (tests).
    Inline(Syncer),
    /// On a thread of its own, overlapping the writer's next batch.
    Thread {
        to: std::sync::mpsc::Sender<Durable>,
        thread: std::thread::JoinHandle<Syncer>,
    },
    /// Between the two, for the moment of the switch.
    Gone,
}

impl Writer {
    /// Loads the derived state from `db` and fills `committed`.
    pub fn new(
        db: Connection,
        committed: Arc<Committed>,
        metrics: Arc<Metrics>,
        forward: Option<Forwarder>,
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
    /// batches become durable and closes forwarding.
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
            let first = if self.prune.is_some() {
                match rx.try_recv() {
                    Ok(request) => request,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        self.prune_step();
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
            } else {
                match rx.blocking_recv() {
                    Some(request) => request,
                    None => break,
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
            Ok(outcome) => {
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
                    let mut acks: Vec<(String, u64)> = Vec::new();
                    for incoming in &events {
                        outcome.events += 1;
                        let fresh =
                            apply_event(&tx, &mut hot, cache, incoming, now_ms, timeout_ms)?;
                        match acks.iter_mut().find(|(b, _)| *b == incoming.boot) {
                            Some((_, seq)) => *seq = (*seq).max(incoming.seq),
                            None => acks.push((incoming.boot.clone(), incoming.seq)),
                        }
                        if fresh {
                            outcome.stored[kind_index(&incoming.kind)] += 1;
                            if want_events && let Some(event) = incoming.event() {
                                outcome.fresh.push(event);
                            }
                        } else {
                            outcome.duplicates += 1;
                        }
                    }
                    outcome.acks.push((reply, acks, Spent(events)));
                }
                Request::Hello { hello, address } => {
                    let id = cache.agent(&tx, &hello.agent, now_ms)?;
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
                    let agent = cache.agent_row(id);
                    agent.last_seen_ms = now_ms;
                    agent.addresses = addresses;
                    agent.skew_ms = hello_skew(&hello, now_ms);
                    agent.future_logged = false;
                    agent.stopped_ms = None;
                    cache.dirty_agents.insert(id);
                }
                Request::Goodbye {
                    agent,
                    boot,
                    last_seq,
                } => {
                    let id = cache.agent(&tx, &agent, now_ms)?;
                    let row = cache.agent_row(id);
                    row.last_seen_ms = now_ms;
                    row.stopped_ms = Some(now_ms);
                    row.resumes_unknown = true;
                    cache.dirty_agents.insert(id);
                    tracing::info!(agent, boot, last_seq, "Agent stopped (it said goodbye).");
                }
                Request::Prune => *prune = true,
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
                        down_since_ms = ?9
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
                t.down_since_ms
            ])?;
        }
        drop(hot);
        tx.commit()?;
        Ok(outcome)
    }

    /// One chunk of the pruning pass, in its own transaction.
    fn prune_step(&mut self) {
        let Some((step, cutoff)) = self.prune else {
            return;
        };
        let started = Instant::now();
        let result = prune_chunk(&self.db, step, cutoff);
        match result {
            Ok((next, deleted)) => {
                self.metrics.pruned.fetch_add(deleted, Ordering::Relaxed);
                if matches!(step, PruneStep::Boots) {
                    self.forget_pruned_boots();
                }
                self.prune = next.map(|s| (s, cutoff));
                if next.is_none() {
                    tracing::debug!(elapsed = ?started.elapsed(), "Retention pass finished.");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "Deleting old rows failed; the next pass retries.");
                self.prune = None;
            }
        }
    }

    /// Drops boots the pruning deleted from the memory mirror.
    fn forget_pruned_boots(&mut self) {
        let Ok(mut stmt) = self.db.prepare("SELECT agent_id, boot FROM boots") else {
            return;
        };
        let Ok(rows) = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        else {
            return;
        };
        let kept: HashSet<(i64, String)> = rows.filter_map(Result::ok).collect();
        for (agent_id, boots) in &mut self.cache.boots {
            let name = self.cache.agent_names.get(agent_id);
            boots.retain(|boot, _| {
                let keep = kept.contains(&(*agent_id, boot.clone()));
                if !keep && let Some(name) = name {
                    self.committed.forget(name, boot);
                }
                keep
            });
        }
    }
}

fn batch_events(request: &Request) -> usize {
    match request {
        Request::Events { events, .. } => events.len(),
        _ => 1,
    }
}

/// Stores one event and updates what derives from it; false when it was a
/// duplicate.
fn apply_event(
    db: &Connection,
    hot: &mut Hot,
    cache: &mut Cache,
    ev: &Incoming,
    now_ms: i64,
    timeout_ms: i64,
) -> Result<bool, rusqlite::Error> {
    let agent_id = cache.agent(db, &ev.agent, now_ms)?;
    let (boot_id, new_boot) = cache.boot(db, agent_id, &ev.boot, now_ms)?;
    let inserted = hot.event.execute(params![
        boot_id,
        ev.seq as i64,
        ev.ts_ms,
        now_ms,
        ev.kind,
        ev.line
    ])? == 1;
    let event_id = db.last_insert_rowid();
    let boot = cache
        .boots
        .get_mut(&agent_id)
        .and_then(|b| b.get_mut(&ev.boot))
        .expect("boot just looked up");
    if ev.seq > boot.last_seq {
        boot.last_seq = ev.seq;
    }
    if !boot.dirty {
        boot.dirty = true;
        cache.dirty_boots.push((agent_id, ev.boot.clone()));
    }
    cache.dirty_agents.insert(agent_id);
    let agent = cache.agent_row(agent_id);
    agent.last_seen_ms = now_ms;
    if !inserted {
        return Ok(false);
    }
    let time = timeline::event_time(ev.ts_ms, agent.skew_ms, now_ms);
    if time.future && !agent.future_logged {
        agent.future_logged = true;
        tracing::warn!(
            agent = ev.agent,
            boot = ev.boot,
            seq = ev.seq,
            ts = ev.ts,
            "Event stamped too far ahead of the collector's clock; it is stored as sent, and its arrival time stands for it in timelines and alerts. Later ones from this connection are not logged."
        );
    }
    let at = time.at_ms;
    let previous_ts = agent.last_ts_ms;
    agent.last_ts_ms = Some(previous_ts.map_or(at, |t| t.max(at)));
    let previous_boot = agent.latest_boot;
    if new_boot {
        agent.latest_boot = Some(boot_id);
    }
    // After a goodbye, the agent's time until it speaks again is unknown
    // however short the pause.
    let resumes_unknown = std::mem::take(&mut agent.resumes_unknown);
    agent.stopped_ms = None;
    if let Some(last) = previous_ts
        && (at - last > timeout_ms || resumes_unknown)
    {
        silence(hot, cache, agent_id, last, at)?;
    }
    if new_boot && previous_boot.is_some() {
        resolve_for_restart(hot, cache, agent_id, boot_id, at)?;
    }
    match &ev.body {
        Some(Body::Link(link)) if link.state != LinkState::Unknown => {
            let state = link_state(link.state);
            let (iface, created) =
                cache.interface(db, hot, agent_id, &link.interface, at, state)?;
            // A first state (at agent start, or a new interface) is a change
            // only when it differs from what was known: down at first sight
            // starts an outage, up at first sight starts nothing.
            let known = cache.tails[&iface].seg.prior;
            let record = match (link.previous == LinkState::Unknown, created) {
                (false, _) => true,
                (true, true) => state == State::Down,
                (true, false) => state != known,
            };
            let down_ms = match (state, created) {
                (State::Up, false) => {
                    let tail = &cache.tails[&iface];
                    let was_down = tail.seg.state == State::Down
                        || (tail.seg.state == State::Unknown && tail.seg.prior == State::Down);
                    tail.down_since_ms
                        .filter(|_| was_down)
                        .map(|since| (at - since).max(0))
                }
                _ => None,
            };
            if !created {
                cache.transition(hot, iface, at, state)?;
            }
            if record {
                hot.change
                    .execute(params![at, event_id, iface, state.code(), down_ms])?;
            }
        }
        Some(Body::Heartbeat(hb)) => {
            for status in hb
                .interfaces
                .iter()
                .filter(|i| i.state != LinkState::Unknown)
            {
                let state = link_state(status.state);
                let (iface, created) =
                    cache.interface(db, hot, agent_id, &status.name, at, state)?;
                if !created {
                    cache.transition(hot, iface, at, state)?;
                }
            }
            let addresses =
                serde_json::to_string(&hb.addresses).expect("addresses always serialize");
            let agent = cache.agent_row(agent_id);
            if agent.addresses != addresses {
                db.prepare_cached("UPDATE agents SET addresses = ?2 WHERE id = ?1")?
                    .execute(params![agent_id, addresses])?;
                agent.addresses = addresses;
            }
        }
        Some(Body::Alert(alert)) => {
            let key = (agent_id, alert.rule.clone(), alert.interface.clone());
            match alert.state {
                AlertState::Firing => {
                    if let Some((open, _)) = cache.open_alerts.remove(&key) {
                        hot.close(open, at, None, None, "refired")?;
                    }
                    hot.fire.execute(params![
                        agent_id,
                        boot_id,
                        alert.interface,
                        alert.rule,
                        alert.severity.as_str(),
                        alert.expr,
                        alert.value,
                        alert.threshold,
                        alert.message,
                        at
                    ])?;
                    let id = db.last_insert_rowid();
                    cache.open_alerts.insert(key, (id, boot_id));
                }
                AlertState::Resolved => match cache.open_alerts.remove(&key) {
                    Some((open, _)) => {
                        hot.close(open, at, alert.value, Some(&alert.message), "agent")?;
                    }
                    None => {
                        db.prepare_cached(
                            "INSERT INTO alerts (agent_id, boot_id, interface, rule, severity, expr,
                                                 value, threshold, message, resolved_at_ms,
                                                 resolved_value, resolved_message, resolved_by)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, '', ?8, ?9, ?10, 'agent')",
                        )?
                        .execute(params![
                            agent_id,
                            boot_id,
                            alert.interface,
                            alert.rule,
                            alert.severity.as_str(),
                            alert.expr,
                            alert.threshold,
                            at,
                            alert.value,
                            alert.message
                        ])?;
                    }
                },
            }
        }
        Some(Body::Link(_) | Body::Loss(_)) | None => {}
    }
    Ok(true)
}

/// The agent said nothing from `from` to `to`: its interfaces' time there is
/// unknown, and each resumes its last known state at `to`.
fn silence(
    hot: &mut Hot,
    cache: &mut Cache,
    agent_id: i64,
    from: i64,
    to: i64,
) -> Result<(), rusqlite::Error> {
    let ifaces = cache.agent_row(agent_id).interfaces.clone();
    for iface in ifaces {
        let prior = cache.tails[&iface].seg.prior;
        cache.transition(hot, iface, from, State::Unknown)?;
        cache.transition(hot, iface, to, prior)?;
    }
    Ok(())
}

/// A new boot began: the alerts the agent's earlier boots left firing will
/// never be resolved by it, so they end here.
fn resolve_for_restart(
    hot: &mut Hot,
    cache: &mut Cache,
    agent_id: i64,
    boot_id: i64,
    at: i64,
) -> Result<(), rusqlite::Error> {
    let stale: Vec<(i64, String, String)> = cache
        .open_alerts
        .iter()
        .filter(|(k, (_, b))| k.0 == agent_id && *b != boot_id)
        .map(|(k, _)| k.clone())
        .collect();
    for key in stale {
        if let Some((id, _)) = cache.open_alerts.remove(&key) {
            hot.close(id, at, None, Some("the agent restarted"), "restart")?;
        }
    }
    Ok(())
}

/// Deletes one chunk of `step`'s rows older than `cutoff`; returns the step
/// to run next (None when done) and the rows deleted.
fn prune_chunk(
    db: &Connection,
    step: PruneStep,
    cutoff: i64,
) -> Result<(Option<PruneStep>, u64), rusqlite::Error> {
    let deleted = match step {
        PruneStep::Events => {
            let below = first_event_at_or_after(db, cutoff)?;
            db.execute(
                "DELETE FROM events WHERE id IN
                    (SELECT id FROM events WHERE id < ?1 ORDER BY id LIMIT ?2)",
                params![below, PRUNE_CHUNK],
            )?
        }
        PruneStep::LinkChanges => {
            // The at_ms of the chunk's last row, so the delete is one range
            // of the key.
            let bound: Option<i64> = db
                .query_row(
                    "SELECT at_ms FROM link_changes WHERE at_ms < ?1 ORDER BY at_ms
                     LIMIT 1 OFFSET ?2",
                    params![cutoff, PRUNE_CHUNK],
                    |r| r.get(0),
                )
                .optional()?;
            db.execute(
                "DELETE FROM link_changes WHERE at_ms < ?1",
                [bound.unwrap_or(cutoff)],
            )?
        }
        PruneStep::Alerts => db.execute(
            "DELETE FROM alerts WHERE id IN
                (SELECT id FROM alerts WHERE resolved_at_ms < ?1 LIMIT ?2)",
            params![cutoff, PRUNE_CHUNK],
        )?,
        PruneStep::Segments { after_iface } => {
            // Per interface, every segment that ended before the cutoff: all
            // before the one in force at the cutoff.
            let ifaces: Vec<i64> = db
                .prepare("SELECT id FROM interfaces WHERE id > ?1 ORDER BY id LIMIT 500")?
                .query_map([after_iface], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let Some(&last) = ifaces.last() else {
                return Ok((Some(PruneStep::Boots), 0));
            };
            let tx = db.unchecked_transaction()?;
            let mut n = 0;
            for iface in ifaces {
                n += tx.execute(
                    "DELETE FROM segments WHERE iface_id = ?1 AND (start_ms, n) <
                        (SELECT start_ms, n FROM segments WHERE iface_id = ?1 AND start_ms <= ?2
                         ORDER BY start_ms DESC, n DESC LIMIT 1)",
                    params![iface, cutoff],
                )?;
            }
            tx.commit()?;
            return Ok((Some(PruneStep::Segments { after_iface: last }), n as u64));
        }
        PruneStep::Boots => {
            // A boot goes with its last event, unless it is its agent's
            // current one.
            let n = db.execute(
                "DELETE FROM boots WHERE last_ms < ?1
                   AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = boots.agent_id AND a.boot = boots.boot)
                   AND NOT EXISTS (SELECT 1 FROM events e WHERE e.boot_id = boots.id)",
                params![cutoff],
            )?;
            return Ok((None, n as u64));
        }
    };
    let next = if deleted as i64 >= PRUNE_CHUNK {
        Some(step)
    } else {
        match step {
            PruneStep::Events => Some(PruneStep::LinkChanges),
            PruneStep::LinkChanges => Some(PruneStep::Alerts),
            PruneStep::Alerts => Some(PruneStep::Segments { after_iface: 0 }),
            _ => None,
        }
    };
    Ok((next, deleted as u64))
}

/// The id of the first event received at or after `cutoff` (or one past
/// the last). Ids grow with received time, so a binary search over ids finds
/// it without an index on the time.
fn first_event_at_or_after(db: &Connection, cutoff: i64) -> Result<i64, rusqlite::Error> {
    let bounds: (Option<i64>, Option<i64>) =
        db.query_row("SELECT min(id), max(id) FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(mut lo), Some(max)) = bounds else {
        return Ok(0);
    };
    let mut hi = max + 1;
    let mut stmt =
        db.prepare_cached("SELECT received_ms FROM events WHERE id >= ?1 ORDER BY id LIMIT 1")?;
    // Invariant: every event below lo is older than the cutoff; none at or
    // after hi is.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let received: Option<i64> = stmt.query_row([mid], |r| r.get(0)).optional()?;
        match received {
            Some(t) if t < cutoff => lo = mid + 1,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

#[cfg(test)]
mod timeline_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open_writer, query};
    use hopwatch_wire::event::{Alert, Heartbeat, InterfaceStatus, Link, Severity};

    pub(super) struct Fixture {
        dir: std::path::PathBuf,
        pub(super) writer: Writer,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub(super) fn fixture(name: &str) -> Fixture {
        let dir =
            std::env::temp_dir().join(format!("hopwatch-writer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = open_writer(&dir).unwrap();
        let writer = Writer::new(
            db,
            Arc::new(Committed::default()),
            Arc::new(Metrics::default()),
            None,
            WriterSettings {
                heartbeat_timeout: Duration::from_secs(30),
                retain: Duration::from_secs(86_400),
            },
        )
        .unwrap();
        Fixture { dir, writer }
    }

    pub(super) const T0: i64 = 1_700_000_000_000;

    pub(super) fn incoming(agent: &str, boot: &str, seq: u64, at_s: i64, body: Body) -> Incoming {
        let ts_ms = T0 + at_s * 1000;
        let event = Event {
            v: 1,
            agent: agent.into(),
            boot: boot.into(),
            seq,
            ts: crate::store::rfc3339(ts_ms),
            body,
        };
        Incoming {
            v: 1,
            agent: agent.into(),
            boot: boot.into(),
            seq,
            ts: event.ts.clone(),
            ts_ms,
            kind: event.kind().into(),
            line: event.to_json(),
            body: Some(event.body),
        }
    }

    pub(super) fn link(interface: &str, up: bool) -> Body {
        Body::Link(Link {
            interface: interface.into(),
            state: LinkState::from_up(up),
            previous: LinkState::from_up(!up),
            carrier_changes: 1,
            oper_state: if up { "up" } else { "down" }.into(),
            message: String::new(),
        })
    }

    pub(super) fn heartbeat(interfaces: &[(&str, bool)]) -> Body {
        Body::Heartbeat(Heartbeat {
            uptime_s: 1,
            interfaces: interfaces
                .iter()
                .map(|(n, up)| InterfaceStatus {
                    name: (*n).into(),
                    state: LinkState::from_up(*up),
                })
                .collect(),
            addresses: vec![],
            spool_depth: 0,
            events_dropped: 0,
            firing: 0,
        })
    }

    fn alert(state: AlertState) -> Body {
        Body::Alert(Alert {
            state,
            rule: "tx-errors".into(),
            severity: Severity::Critical,
            interface: "swp1".into(),
            expr: "increase(tx_errors[5s]) > 3".into(),
            value: Some(7.0),
            threshold: 3.0,
            message: "swp1 tx_errors increased by 7 in 5s (threshold 3)".into(),
        })
    }

    /// Sends one request and returns its ack.
    pub(super) fn send(w: &mut Writer, events: Vec<Incoming>, now_s: i64) -> Ack {
        let (tx, mut rx) = mpsc::unbounded_channel();
        w.apply(
            vec![Request::Events { events, reply: tx }],
            T0 + now_s * 1000,
        );
        rx.try_recv().unwrap()
    }

    pub(super) fn count(w: &Writer, sql: &str) -> i64 {
        w.db.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn duplicates_are_stored_once_and_still_acknowledged() {
        let mut f = fixture("dup");
        let w = &mut f.writer;
        let batch = |seqs: std::ops::Range<u64>| {
            seqs.map(|s| incoming("leaf1", "b1", s, s as i64, heartbeat(&[])))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            send(w, batch(1..6), 10),
            Ack::Stored(vec![("b1".into(), 5)], Spent::default())
        );
        assert_eq!(
            send(w, batch(3..9), 10),
            Ack::Stored(vec![("b1".into(), 8)], Spent::default())
        );
        assert_eq!(count(w, "SELECT count(*) FROM events"), 8);
        assert_eq!(w.committed.last_seq("leaf1", "b1"), 8);
        assert_eq!(w.metrics.duplicates.load(Ordering::Relaxed), 3);
        assert_eq!(count(w, "SELECT last_seq FROM boots"), 8);
    }

    #[test]
    fn a_failed_transaction_acknowledges_nothing() {
        let mut f = fixture("fail");
        let w = &mut f.writer;
        send(w, vec![incoming("leaf1", "b1", 1, 1, heartbeat(&[]))], 1);
        // Make the next insert fail inside the transaction.
        w.db.execute_batch("CREATE TRIGGER no BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;")
            .unwrap();
        match send(w, vec![incoming("leaf1", "b1", 2, 2, heartbeat(&[]))], 2) {
            Ack::Failed(reason) => assert!(reason.contains("disk on fire"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(w.committed.last_seq("leaf1", "b1"), 1);
        w.db.execute_batch("DROP TRIGGER no").unwrap();
        assert_eq!(
            send(w, vec![incoming("leaf1", "b1", 2, 2, heartbeat(&[]))], 3),
            Ack::Stored(vec![("b1".into(), 2)], Spent::default())
        );
        assert_eq!(count(w, "SELECT count(*) FROM events"), 2);
    }

    #[test]
    fn link_events_build_the_timeline_and_changes() {
        let mut f = fixture("link");
        let w = &mut f.writer;
        send(
            w,
            vec![
                incoming(
                    "leaf1",
                    "b1",
                    1,
                    0,
                    heartbeat(&[("swp1", true), ("swp2", true)]),
                ),
                incoming("leaf1", "b1", 2, 5, link("swp1", false)),
                incoming("leaf1", "b1", 3, 8, link("swp1", true)),
                incoming(
                    "leaf1",
                    "b1",
                    4,
                    10,
                    heartbeat(&[("swp1", true), ("swp2", true)]),
                ),
            ],
            10,
        );
        let now = T0 + 12_000;
        let changes = query::changes(&w.db, T0, None).unwrap();
        assert_eq!(changes.went_down.len(), 1);
        assert_eq!(changes.came_up.len(), 1);
        assert_eq!(changes.came_up[0].down_seconds, Some(3.0));
        let dt = query::downtime(
            &w.db,
            &query::DowntimeQuery::since(T0),
            now,
            Duration::from_secs(30),
        )
        .unwrap();
        let swp1 = dt
            .interfaces
            .iter()
            .find(|i| i.interface == "swp1")
            .unwrap();
        assert_eq!(swp1.down_seconds, 3.0);
        assert_eq!(swp1.down_count, 1);
        assert!(!swp1.currently_down);
        assert_eq!(dt.total_down_seconds, 3.0);
    }

    #[test]
    fn a_gap_in_event_times_is_unknown() {
        let mut f = fixture("gap");
        let w = &mut f.writer;
        send(
            w,
            vec![
                incoming("leaf1", "b1", 1, 0, heartbeat(&[("swp1", true)])),
                incoming("leaf1", "b1", 2, 10, link("swp1", false)),
                incoming("leaf1", "b1", 3, 20, heartbeat(&[("swp1", false)])),
            ],
            20,
        );
        // Silent from 20 s to 120 s, then it speaks: still down.
        send(
            w,
            vec![incoming(
                "leaf1",
                "b1",
                4,
                120,
                heartbeat(&[("swp1", false)]),
            )],
            120,
        );
        let now = T0 + 130_000;
        let dt = query::downtime(
            &w.db,
            &query::DowntimeQuery::since(T0),
            now,
            Duration::from_secs(30),
        )
        .unwrap();
        let swp1 = &dt.interfaces[0];
        assert_eq!(swp1.down_seconds, 20.0, "10..20 and 120..130");
        assert_eq!(swp1.unknown_seconds, 100.0);
        assert_eq!(swp1.down_count, 1);
        assert!(swp1.currently_down);
    }

    #[test]
    fn alerts_fire_resolve_and_end_with_a_restart() {
        let mut f = fixture("alerts");
        let w = &mut f.writer;
        send(
            w,
            vec![
                incoming("leaf1", "b1", 1, 0, alert(AlertState::Firing)),
                incoming("leaf1", "b1", 2, 5, alert(AlertState::Resolved)),
                incoming("leaf1", "b1", 3, 6, alert(AlertState::Firing)),
            ],
            6,
        );
        let firing = query::alerts(&w.db, &query::AlertQuery::firing()).unwrap();
        assert_eq!(firing.len(), 1);
        assert_eq!(
            firing[0].fired_at.as_deref(),
            Some("2023-11-14T22:13:26.000Z")
        );
        let all = query::alerts(&w.db, &query::AlertQuery::all_since(T0)).unwrap();
        assert_eq!(all.len(), 2);
        let resolved = all.iter().find(|a| a.state == "resolved").unwrap();
        assert_eq!(
            resolved.resolved_at.as_deref(),
            Some("2023-11-14T22:13:25.000Z")
        );
        // The agent restarts: its new boot ends what the old one left firing.
        send(w, vec![incoming("leaf1", "b2", 1, 20, heartbeat(&[]))], 20);
        assert!(
            query::alerts(&w.db, &query::AlertQuery::firing())
                .unwrap()
                .is_empty()
        );
        let all = query::alerts(&w.db, &query::AlertQuery::all_since(T0)).unwrap();
        assert_eq!(
            all.iter()
                .filter(|a| a.resolved_by.as_deref() == Some("restart"))
                .count(),
            1
        );
    }

    #[test]
    fn state_survives_a_restart_of_the_writer() {
        let mut f = fixture("reload");
        send(
            &mut f.writer,
            vec![
                incoming("leaf1", "b1", 1, 0, heartbeat(&[("swp1", true)])),
                incoming("leaf1", "b1", 2, 10, link("swp1", false)),
                incoming("leaf1", "b1", 3, 11, alert(AlertState::Firing)),
            ],
            11,
        );
        let db = open_writer(&f.dir).unwrap();
        let committed = Arc::new(Committed::default());
        let mut w = Writer::new(
            db,
            committed.clone(),
            Arc::new(Metrics::default()),
            None,
            f.writer.settings,
        )
        .unwrap();
        assert_eq!(committed.last_seq("leaf1", "b1"), 3);
        send(
            &mut w,
            vec![
                incoming("leaf1", "b1", 4, 15, link("swp1", true)),
                incoming("leaf1", "b1", 5, 16, alert(AlertState::Resolved)),
            ],
            16,
        );
        let changes = query::changes(&w.db, T0, None).unwrap();
        assert_eq!(changes.came_up[0].down_seconds, Some(5.0));
        assert!(
            query::alerts(&w.db, &query::AlertQuery::firing())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn pruning_deletes_what_is_older_than_the_retention() {
        let mut f = fixture("prune");
        let w = &mut f.writer;
        let day = 86_400;
        send(
            w,
            vec![
                incoming("leaf1", "b1", 1, 0, heartbeat(&[("swp1", true)])),
                incoming("leaf1", "b1", 2, 10, link("swp1", false)),
                incoming("leaf1", "b1", 3, 20, link("swp1", true)),
            ],
            20,
        );
        send(
            w,
            vec![
                incoming("leaf1", "b1", 4, 2 * day, link("swp1", false)),
                incoming("leaf1", "b1", 5, 2 * day + 5, link("swp1", true)),
            ],
            2 * day + 5,
        );
        w.apply(vec![Request::Prune], T0 + (2 * day + 10) * 1000);
        while w.prune.is_some() {
            w.prune_step();
        }
        assert_eq!(count(w, "SELECT count(*) FROM events"), 2);
        assert_eq!(count(w, "SELECT count(*) FROM link_changes"), 2);
        // The segment in force at the cutoff stays, so downtime over the
        // retained window still adds up.
        let dt = query::downtime(
            &w.db,
            &query::DowntimeQuery::since(T0 + day * 1000),
            T0 + (2 * day + 10) * 1000,
            Duration::from_secs(30 * day as u64),
        )
        .unwrap();
        assert_eq!(dt.interfaces[0].down_seconds, 5.0);
        assert_eq!(dt.interfaces[0].down_count, 1);
    }
}
