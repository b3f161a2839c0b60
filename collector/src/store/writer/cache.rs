//! The writer's memory mirror of the derived tables (agents, boots,
//! interfaces with their open segment, open alerts) and the statements that
//! keep the two in step: the writer reads the mirror instead of querying per
//! event, and marks what a batch changed so it writes each row once. The
//! statements sit behind [`Sink`], so both stores' writers share the mirror
//! and the decisions made on it; SQLite's are [`Hot`].

use super::Incoming;
use crate::store::StoreError;
use crate::store::silences;
use crate::store::sql::{Row, Sql};
use crate::timeline::{Segment, State};
use hopwatch_wire::event::Alert;
use hopwatch_wire::wire::Hello;
use rusqlite::{CachedStatement, Connection, params};
// FxHash, as rustc uses, rather than SipHash: the writer hashes several
// names per event and SipHash showed in its profile; the keys come from
// authenticated agents, whose worst case is a writer slowed by their own
// traffic.
use rustc_hash::{FxHashMap as FastMap, FxHashSet as FastSet};

pub(crate) struct AgentRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) last_seen_ms: i64,
    pub(crate) last_ts_ms: Option<i64>,
    pub(crate) addresses: String,
    /// When the stored addresses were reported, by the agent's clock (ms):
    /// a heartbeat resent from the agent's spool, stamped before its last
    /// hello, describes the switch as it was and must not replace them.
    /// `i64::MIN` when the hello told no time (older agents).
    pub(crate) addresses_at_ms: i64,
    /// Its newest boot: a boot begun after it ends what earlier ones left
    /// firing. Read back as the newest boot row, not the hello's boot,
    /// whose row exists only once that boot's first event is stored.
    pub(crate) latest_boot: Option<i64>,
    pub(crate) interfaces: Vec<i64>,
    /// How far the agent's clock runs ahead of ours, measured at its last
    /// hello (0 within the tolerance, or before any hello).
    pub(crate) skew_ms: i64,
    /// Whether a future-stamped event was logged since that hello.
    pub(crate) future_logged: bool,
    /// When it said goodbye; cleared when it connects again.
    pub(crate) stopped_ms: Option<i64>,
    /// It said goodbye and has sent no event since: the time until its next
    /// event is unknown, however short.
    pub(crate) resumes_unknown: bool,
    /// The row's `writes` counter this copy was read or written at (a
    /// shared store's; SQLite's writer is the only one and leaves it 0).
    pub(crate) writes: i64,
}

pub(crate) struct BootRow {
    pub(crate) id: i64,
    pub(crate) last_seq: u64,
    /// Changed in the current batch (listed in `dirty_boots`).
    pub(crate) dirty: bool,
    /// Created ahead of its first event (a writer that inserts a batch's
    /// events in bulk creates their boots first): that event still begins
    /// the boot.
    pub(crate) unopened: bool,
}

/// An interface and its open segment.
pub(crate) struct Tail {
    pub(crate) id: i64,
    pub(crate) n: i64,
    pub(crate) seg: Segment,
    pub(crate) down_since_ms: Option<i64>,
}

/// Where the derived rows go: the writes a stored event causes, one method
/// each. The writer's logic ([`super::apply`]) is generic over it, so each
/// store's writer is compiled with its own statements inlined.
pub(crate) trait Sink {
    type Error;
    /// Creates the agent's row; its id.
    fn new_agent(&mut self, name: &str, now_ms: i64) -> Result<i64, Self::Error>;
    /// Creates the boot's row; its id.
    fn new_boot(&mut self, agent_id: i64, boot: &str, now_ms: i64) -> Result<i64, Self::Error>;
    /// Stores the event's row: its id when it is new, None when the store
    /// already held it.
    fn event(
        &mut self,
        boot_id: i64,
        ev: &Incoming,
        now_ms: i64,
    ) -> Result<Option<i64>, Self::Error>;
    /// Creates the interface's row with `seg` as its first segment; its id.
    fn new_interface(
        &mut self,
        agent_id: i64,
        name: &str,
        seg: &Segment,
        down_since_ms: Option<i64>,
    ) -> Result<i64, Self::Error>;
    /// Appends segment `n` to the interface's timeline.
    fn segment(&mut self, iface: i64, n: i64, seg: &Segment) -> Result<(), Self::Error>;
    /// Records a link change.
    fn change(
        &mut self,
        at: i64,
        event_id: i64,
        iface: i64,
        state: State,
        down_ms: Option<i64>,
    ) -> Result<(), Self::Error>;
    /// Opens an alert; its id.
    fn fire(
        &mut self,
        agent_id: i64,
        boot_id: i64,
        alert: &Alert,
        at: i64,
    ) -> Result<i64, Self::Error>;
    /// Resolves open alert `id` at `at` (never before it fired).
    fn close(
        &mut self,
        id: i64,
        at: i64,
        value: Option<f64>,
        message: Option<&str>,
        by: &str,
    ) -> Result<(), Self::Error>;
    /// Stores a resolution whose firing was never received.
    fn resolved_unfired(
        &mut self,
        agent_id: i64,
        boot_id: i64,
        alert: &Alert,
        at: i64,
    ) -> Result<(), Self::Error>;
    /// Replaces the agent's interface addresses (JSON).
    fn addresses(&mut self, agent_id: i64, addresses: &str) -> Result<(), Self::Error>;
    /// Clears the silence of open alert `id`; false when it had none.
    fn unsilence(&mut self, id: i64) -> Result<bool, Self::Error>;
}

/// The derived state the writer keeps in memory, mirrored in the tables.
#[derive(Default)]
pub(crate) struct Cache {
    pub(crate) agents: FastMap<String, AgentRow>,
    pub(crate) agent_names: FastMap<i64, String>,
    /// Per agent id, per boot.
    pub(crate) boots: FastMap<i64, FastMap<String, BootRow>>,
    pub(crate) tails: FastMap<i64, Tail>,
    /// Per agent id, per interface name.
    pub(crate) iface_ids: FastMap<i64, FastMap<String, i64>>,
    /// (agent, rule, interface) → (alert id, boot id).
    pub(crate) open_alerts: FastMap<(i64, String, String), (i64, i64)>,
    pub(crate) dirty_agents: FastSet<i64>,
    pub(crate) dirty_boots: Vec<(i64, String)>,
    pub(crate) dirty_tails: FastSet<i64>,
}

/// `WHERE`/`AND` for loading every agent's rows or one agent's.
fn only(agent: Option<i64>, column: &str, and: bool) -> String {
    match agent {
        None => String::new(),
        Some(_) => format!("{} {column} = $1", if and { "AND" } else { "WHERE" }),
    }
}

impl Cache {
    /// Reads the whole mirror from the store.
    pub(crate) fn load(db: &dyn Sql) -> Result<Cache, StoreError> {
        let mut cache = Cache::default();
        cache.fill(db, None, "0")?;
        Ok(cache)
    }

    /// Reads one agent's rows again (another writer changed them): its
    /// boots, interfaces with their open segments, and open alerts. What
    /// its connection's hello told this writer (clock skew, address time)
    /// is kept.
    pub(crate) fn reload_agent(&mut self, db: &dyn Sql, id: i64) -> Result<(), StoreError> {
        let kept = self.forget_agent(id);
        self.fill(db, Some(id), "writes")?;
        if let Some((skew_ms, addresses_at_ms, future_logged)) = kept
            && let Some(name) = self.agent_names.get(&id)
            && let Some(agent) = self.agents.get_mut(name)
        {
            agent.skew_ms = skew_ms;
            agent.addresses_at_ms = addresses_at_ms;
            agent.future_logged = future_logged;
        }
        Ok(())
    }

    /// Drops one agent's rows from the mirror; what its hello told.
    fn forget_agent(&mut self, id: i64) -> Option<(i64, i64, bool)> {
        let name = self.agent_names.remove(&id)?;
        let row = self.agents.remove(&name)?;
        self.boots.remove(&id);
        for iface in &row.interfaces {
            self.tails.remove(iface);
        }
        self.iface_ids.remove(&id);
        self.open_alerts.retain(|k, _| k.0 != id);
        self.dirty_agents.remove(&id);
        Some((row.skew_ms, row.addresses_at_ms, row.future_logged))
    }

    /// Reads every agent's rows, or one agent's; `writes` is the column
    /// expression for the agent's `writes` counter (a constant in a store
    /// with one writer, which has no such column).
    fn fill(&mut self, db: &dyn Sql, agent: Option<i64>, writes: &str) -> Result<(), StoreError> {
        let filter: Vec<&dyn crate::store::sql::Param> = match &agent {
            Some(id) => vec![id],
            None => vec![],
        };
        let agents = db.rows(
            &format!(
                "SELECT id, name, last_seen_ms, last_ts_ms, addresses,
                        (SELECT max(id) FROM boots b WHERE b.agent_id = a.id),
                        stopped_ms, {writes}
                 FROM agents a {}",
                only(agent, "a.id", false)
            ),
            &filter,
            |r: &dyn Row| {
                Ok(AgentRow {
                    id: r.i64(0)?,
                    name: r.text(1)?,
                    last_seen_ms: r.i64(2)?,
                    last_ts_ms: r.opt_i64(3)?,
                    addresses: r.text(4)?,
                    addresses_at_ms: i64::MIN,
                    latest_boot: r.opt_i64(5)?,
                    interfaces: Vec::new(),
                    skew_ms: 0,
                    future_logged: false,
                    stopped_ms: r.opt_i64(6)?,
                    resumes_unknown: r.opt_i64(6)?.is_some(),
                    writes: r.i64(7)?,
                })
            },
        )?;
        for row in agents {
            self.agent_names.insert(row.id, row.name.clone());
            self.agents.insert(row.name.clone(), row);
        }
        db.each(
            &format!(
                "SELECT id, agent_id, boot, last_seq FROM boots {}",
                only(agent, "agent_id", false)
            ),
            &filter,
            &mut |r| {
                self.boots.entry(r.i64(1)?).or_default().insert(
                    r.text(2)?,
                    BootRow {
                        id: r.i64(0)?,
                        last_seq: r.i64(3)? as u64,
                        dirty: false,
                        unopened: false,
                    },
                );
                Ok(())
            },
        )?;
        db.each(
            &format!(
                "SELECT id, agent_id, name, n, start_ms, state, prior, down_before_ms,
                        unknown_before_ms, outages, down_since_ms, admin_down_before_ms
                 FROM interfaces {} ORDER BY id",
                only(agent, "agent_id", false)
            ),
            &filter,
            &mut |r| {
                let agent_id = r.i64(1)?;
                let tail = Tail {
                    id: r.i64(0)?,
                    n: r.i64(3)?,
                    seg: Segment {
                        start_ms: r.i64(4)?,
                        state: State::from_code(r.i64(5)?),
                        prior: State::from_code(r.i64(6)?),
                        down_before_ms: r.i64(7)?,
                        unknown_before_ms: r.i64(8)?,
                        admin_down_before_ms: r.i64(11)?,
                        outages: r.i64(9)?,
                    },
                    down_since_ms: r.opt_i64(10)?,
                };
                if let Some(agent) = self
                    .agent_names
                    .get(&agent_id)
                    .and_then(|n| self.agents.get_mut(n))
                {
                    agent.interfaces.push(tail.id);
                }
                self.iface_ids
                    .entry(agent_id)
                    .or_default()
                    .insert(r.text(2)?, tail.id);
                self.tails.insert(tail.id, tail);
                Ok(())
            },
        )?;
        db.each(
            &format!(
                "SELECT id, agent_id, rule, interface, boot_id FROM alerts
                 WHERE resolved_at_ms IS NULL {}",
                only(agent, "agent_id", true)
            ),
            &filter,
            &mut |r| {
                self.open_alerts
                    .insert((r.i64(1)?, r.text(2)?, r.text(3)?), (r.i64(0)?, r.i64(4)?));
                Ok(())
            },
        )?;
        Ok(())
    }

    /// The agent's id, creating its row on first sight.
    pub(crate) fn agent<S: Sink>(
        &mut self,
        sink: &mut S,
        name: &str,
        now_ms: i64,
    ) -> Result<i64, S::Error> {
        if let Some(agent) = self.agents.get(name) {
            return Ok(agent.id);
        }
        let id = sink.new_agent(name, now_ms)?;
        self.insert_agent(id, name, now_ms, 0);
        Ok(id)
    }

    /// Mirrors an agent row just created with nothing derived yet.
    pub(crate) fn insert_agent(&mut self, id: i64, name: &str, now_ms: i64, writes: i64) {
        self.agent_names.insert(id, name.to_string());
        self.agents.insert(
            name.to_string(),
            AgentRow {
                id,
                name: name.to_string(),
                last_seen_ms: now_ms,
                last_ts_ms: None,
                addresses: "[]".into(),
                addresses_at_ms: i64::MIN,
                latest_boot: None,
                interfaces: Vec::new(),
                skew_ms: 0,
                future_logged: false,
                stopped_ms: None,
                resumes_unknown: false,
                writes,
            },
        );
    }

    pub(crate) fn agent_row(&mut self, id: i64) -> &mut AgentRow {
        let name = &self.agent_names[&id];
        self.agents.get_mut(name).expect("every agent id has a row")
    }

    /// The agent connected (its row already updated with `addresses`, the
    /// hello's as JSON): it is live again, with the clock skew its hello
    /// shows.
    pub(crate) fn hello(&mut self, id: i64, hello: &Hello, addresses: String, now_ms: i64) {
        let agent = self.agent_row(id);
        agent.last_seen_ms = now_ms;
        agent.addresses = addresses;
        agent.addresses_at_ms = super::hello_time(hello).unwrap_or(i64::MIN);
        agent.skew_ms = super::hello_skew(hello, now_ms);
        agent.future_logged = false;
        agent.stopped_ms = None;
        self.dirty_agents.insert(id);
    }

    /// The agent said goodbye: stopped, and its time until it speaks
    /// again unknown.
    pub(crate) fn goodbye(&mut self, id: i64, now_ms: i64) {
        let row = self.agent_row(id);
        row.last_seen_ms = now_ms;
        row.stopped_ms = Some(now_ms);
        row.resumes_unknown = true;
        self.dirty_agents.insert(id);
    }

    /// The boot's id and whether this event begins it.
    pub(crate) fn boot<S: Sink>(
        &mut self,
        sink: &mut S,
        agent_id: i64,
        boot: &str,
        now_ms: i64,
    ) -> Result<(i64, bool), S::Error> {
        if let Some(row) = self.boots.get_mut(&agent_id).and_then(|b| b.get_mut(boot)) {
            return Ok((row.id, std::mem::take(&mut row.unopened)));
        }
        let id = sink.new_boot(agent_id, boot, now_ms)?;
        self.boots.entry(agent_id).or_default().insert(
            boot.to_string(),
            BootRow {
                id,
                last_seq: 0,
                dirty: false,
                unopened: false,
            },
        );
        Ok((id, true))
    }

    /// The interface's id, creating it with a first segment in `state` at
    /// `at`; the flag says whether it was new.
    pub(crate) fn interface<S: Sink>(
        &mut self,
        sink: &mut S,
        agent_id: i64,
        name: &str,
        at: i64,
        state: State,
    ) -> Result<(i64, bool), S::Error> {
        if let Some(id) = self.iface_ids.get(&agent_id).and_then(|m| m.get(name)) {
            return Ok((*id, false));
        }
        let seg = Segment::first(at, state);
        let down_since_ms = (state == State::Down).then_some(at);
        let id = sink.new_interface(agent_id, name, &seg, down_since_ms)?;
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
    pub(crate) fn transition<S: Sink>(
        &mut self,
        sink: &mut S,
        iface: i64,
        at: i64,
        state: State,
    ) -> Result<(), S::Error> {
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
        sink.segment(tail.id, tail.n, &next)?;
        self.dirty_tails.insert(iface);
        Ok(())
    }
}

/// The statements every event runs, prepared once per transaction: looking
/// each up in the statement cache per event was a measurable share of the
/// writer's time.
pub(crate) struct Hot<'c> {
    db: &'c Connection,
    event: CachedStatement<'c>,
    segment: CachedStatement<'c>,
    change: CachedStatement<'c>,
    fire: CachedStatement<'c>,
    close: CachedStatement<'c>,
}

impl<'c> Hot<'c> {
    pub(crate) fn new(db: &'c Connection) -> Result<Hot<'c>, rusqlite::Error> {
        Ok(Hot {
            db,
            event: db.prepare_cached(
                "INSERT OR IGNORE INTO events (boot_id, seq, ts_ms, received_ms, type, line)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
            segment: db.prepare_cached(
                "INSERT INTO segments (iface_id, start_ms, n, state, prior, down_before_ms,
                                       unknown_before_ms, outages, admin_down_before_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?,
            change: db.prepare_cached(
                "INSERT INTO link_changes (at_ms, event_id, iface_id, state, down_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?,
            fire: db.prepare_cached(
                "INSERT INTO alerts (agent_id, boot_id, interface, rule, severity, expr,
                                     value, threshold, message, fired_at_ms, labels, silence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?,
            close: db.prepare_cached(
                "UPDATE alerts SET resolved_at_ms = max(?2, coalesce(fired_at_ms, ?2)),
                                   resolved_value = ?3, resolved_message = ?4, resolved_by = ?5
                 WHERE id = ?1",
            )?,
        })
    }
}

impl Sink for Hot<'_> {
    type Error = rusqlite::Error;

    fn new_agent(&mut self, name: &str, now_ms: i64) -> Result<i64, rusqlite::Error> {
        self.db
            .prepare_cached("INSERT INTO agents (name, last_seen_ms) VALUES (?1, ?2) RETURNING id")?
            .query_row(params![name, now_ms], |r| r.get(0))
    }

    fn new_boot(&mut self, agent_id: i64, boot: &str, now_ms: i64) -> Result<i64, rusqlite::Error> {
        self.db
            .prepare_cached("INSERT INTO boots (agent_id, boot, last_ms) VALUES (?1, ?2, ?3)")?
            .execute(params![agent_id, boot, now_ms])?;
        Ok(self.db.last_insert_rowid())
    }

    #[inline]
    fn event(
        &mut self,
        boot_id: i64,
        ev: &Incoming,
        now_ms: i64,
    ) -> Result<Option<i64>, rusqlite::Error> {
        let inserted = self.event.execute(params![
            boot_id,
            ev.seq as i64,
            ev.ts_ms,
            now_ms,
            ev.kind,
            ev.line
        ])? == 1;
        Ok(inserted.then(|| self.db.last_insert_rowid()))
    }

    fn new_interface(
        &mut self,
        agent_id: i64,
        name: &str,
        seg: &Segment,
        down_since_ms: Option<i64>,
    ) -> Result<i64, rusqlite::Error> {
        let id: i64 = self
            .db
            .prepare_cached(
                "INSERT INTO interfaces (agent_id, name, n, start_ms, state, prior, down_before_ms,
                                         unknown_before_ms, outages, down_since_ms)
                 VALUES (?1, ?2, 0, ?3, ?4, ?4, 0, 0, ?5, ?6) RETURNING id",
            )?
            .query_row(
                params![
                    agent_id,
                    name,
                    seg.start_ms,
                    seg.state.code(),
                    seg.outages,
                    down_since_ms
                ],
                |r| r.get(0),
            )?;
        self.segment(id, 0, seg)?;
        Ok(id)
    }

    #[inline]
    fn segment(&mut self, iface: i64, n: i64, seg: &Segment) -> Result<(), rusqlite::Error> {
        self.segment.execute(params![
            iface,
            seg.start_ms,
            n,
            seg.state.code(),
            seg.prior.code(),
            seg.down_before_ms,
            seg.unknown_before_ms,
            seg.outages,
            seg.admin_down_before_ms
        ])?;
        Ok(())
    }

    #[inline]
    fn change(
        &mut self,
        at: i64,
        event_id: i64,
        iface: i64,
        state: State,
        down_ms: Option<i64>,
    ) -> Result<(), rusqlite::Error> {
        self.change
            .execute(params![at, event_id, iface, state.code(), down_ms])?;
        Ok(())
    }

    fn fire(
        &mut self,
        agent_id: i64,
        boot_id: i64,
        alert: &Alert,
        at: i64,
    ) -> Result<i64, rusqlite::Error> {
        self.fire.execute(params![
            agent_id,
            boot_id,
            alert.interface,
            alert.rule,
            alert.severity.as_str(),
            alert.expr,
            alert.value,
            alert.threshold,
            alert.message,
            at,
            silences::labels_column(&alert.labels),
            silences::silence_column(alert),
        ])?;
        Ok(self.db.last_insert_rowid())
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

    fn resolved_unfired(
        &mut self,
        agent_id: i64,
        boot_id: i64,
        alert: &Alert,
        at: i64,
    ) -> Result<(), rusqlite::Error> {
        self.db
            .prepare_cached(
                "INSERT INTO alerts (agent_id, boot_id, interface, rule, severity, expr,
                                     value, threshold, message, resolved_at_ms,
                                     resolved_value, resolved_message, resolved_by,
                                     labels, silence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, '', ?8, ?9, ?10, 'agent',
                         ?11, ?12)",
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
                alert.message,
                silences::labels_column(&alert.labels),
                silences::silence_column(alert),
            ])?;
        Ok(())
    }

    fn addresses(&mut self, agent_id: i64, addresses: &str) -> Result<(), rusqlite::Error> {
        self.db
            .prepare_cached("UPDATE agents SET addresses = ?2 WHERE id = ?1")?
            .execute(params![agent_id, addresses])?;
        Ok(())
    }

    fn unsilence(&mut self, id: i64) -> Result<bool, rusqlite::Error> {
        let n = self
            .db
            .prepare_cached(
                "UPDATE alerts SET silence = NULL WHERE id = ?1 AND silence IS NOT NULL",
            )?
            .execute(params![id])?;
        Ok(n > 0)
    }
}
