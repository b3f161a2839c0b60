//! The writer's memory mirror of the derived tables (agents, boots,
//! interfaces with their open segment, open alerts) and the statements that
//! keep the two in step: the writer reads the mirror instead of querying per
//! event, and marks what a batch changed so it writes each row once.

use crate::timeline::{Segment, State};
use rusqlite::{CachedStatement, Connection, params};
// FxHash, as rustc uses, rather than SipHash: the writer hashes several
// names per event and SipHash showed in its profile; the keys come from
// authenticated agents, whose worst case is a writer slowed by their own
// traffic.
use rustc_hash::{FxHashMap as FastMap, FxHashSet as FastSet};

pub(super) struct AgentRow {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) last_seen_ms: i64,
    pub(super) last_ts_ms: Option<i64>,
    pub(super) addresses: String,
    /// When the stored addresses were reported, by the agent's clock (ms):
    /// a heartbeat resent from the agent's spool, stamped before its last
    /// hello, describes the switch as it was and must not replace them.
    /// `i64::MIN` when the hello told no time (older agents).
    pub(super) addresses_at_ms: i64,
    pub(super) latest_boot: Option<i64>,
    pub(super) interfaces: Vec<i64>,
    /// How far the agent's clock runs ahead of ours, measured at its last
    /// hello (0 within the tolerance, or before any hello).
    pub(super) skew_ms: i64,
    /// Whether a future-stamped event was logged since that hello.
    pub(super) future_logged: bool,
    /// When it said goodbye; cleared when it connects again.
    pub(super) stopped_ms: Option<i64>,
    /// It said goodbye and has sent no event since: the time until its next
    /// event is unknown, however short.
    pub(super) resumes_unknown: bool,
}

pub(super) struct BootRow {
    pub(super) id: i64,
    pub(super) last_seq: u64,
    /// Changed in the current batch (listed in `dirty_boots`).
    pub(super) dirty: bool,
}

/// An interface and its open segment.
pub(super) struct Tail {
    pub(super) id: i64,
    pub(super) n: i64,
    pub(super) seg: Segment,
    pub(super) down_since_ms: Option<i64>,
}

/// The derived state the writer keeps in memory, mirrored in the tables.
#[derive(Default)]
pub(super) struct Cache {
    pub(super) agents: FastMap<String, AgentRow>,
    pub(super) agent_names: FastMap<i64, String>,
    /// Per agent id, per boot.
    pub(super) boots: FastMap<i64, FastMap<String, BootRow>>,
    pub(super) tails: FastMap<i64, Tail>,
    /// Per agent id, per interface name.
    pub(super) iface_ids: FastMap<i64, FastMap<String, i64>>,
    /// (agent, rule, interface) → (alert id, boot id).
    pub(super) open_alerts: FastMap<(i64, String, String), (i64, i64)>,
    pub(super) dirty_agents: FastSet<i64>,
    pub(super) dirty_boots: Vec<(i64, String)>,
    pub(super) dirty_tails: FastSet<i64>,
}

impl Cache {
    pub(super) fn load(db: &Connection) -> Result<Cache, rusqlite::Error> {
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
                addresses_at_ms: i64::MIN,
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
                    unknown_before_ms, outages, down_since_ms, admin_down_before_ms
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
                        admin_down_before_ms: r.get(11)?,
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
    pub(super) fn agent(
        &mut self,
        db: &Connection,
        name: &str,
        now_ms: i64,
    ) -> Result<i64, rusqlite::Error> {
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
                addresses_at_ms: i64::MIN,
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

    pub(super) fn agent_row(&mut self, id: i64) -> &mut AgentRow {
        let name = &self.agent_names[&id];
        self.agents.get_mut(name).expect("every agent id has a row")
    }

    /// The boot's id and whether it was new.
    pub(super) fn boot(
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
    pub(super) fn interface(
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
    pub(super) fn transition(
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
pub(super) struct Hot<'c> {
    pub(super) event: CachedStatement<'c>,
    pub(super) segment: CachedStatement<'c>,
    pub(super) change: CachedStatement<'c>,
    pub(super) fire: CachedStatement<'c>,
    pub(super) close: CachedStatement<'c>,
}

impl<'c> Hot<'c> {
    pub(super) fn new(db: &'c Connection) -> Result<Hot<'c>, rusqlite::Error> {
        Ok(Hot {
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

    pub(super) fn segment(
        &mut self,
        iface: i64,
        n: i64,
        seg: &Segment,
    ) -> Result<(), rusqlite::Error> {
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

    pub(super) fn close(
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
