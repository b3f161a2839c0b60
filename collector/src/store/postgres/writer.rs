//! The writer on PostgreSQL: the same requests, batches and acks as
//! SQLite's writer ([`crate::store::writer`]), and the same decisions about
//! what an event derives (its `apply`, through [`bulk::Bulk`]), written
//! for a store that several collectors write at once.
//!
//! Per batch, in one transaction: the batch's agents' rows are locked in id
//! order (`FOR UPDATE`), so two collectors never deadlock on them nor
//! interleave one agent's derived rows; an agent whose `writes` counter
//! moved since this writer's copy was taken (another collector stored its
//! events) is read again first; the events go in with one statement,
//! `ON CONFLICT DO NOTHING RETURNING` telling which were new, and only those
//! derive anything; the derived rows follow in bulk, and each agent's
//! `writes` is bumped. Acks and forwarding wait for COMMIT. A failed
//! transaction fails every request of its batch and drops the copy, so the
//! agents resend and the next batch starts from what did commit.

mod bulk;
mod prune;

use super::connect::Pg;
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::store::sql::PgSql;
use crate::store::writer::cache::{BootRow, Cache};
use crate::store::writer::{
    Ack, Next, Published, Reply, Request, WriterSettings, batch_events, next_batch,
};
use bulk::{Bulk, IdsAhead};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};
use tokio::sync::mpsc;

/// What one batch owes once it committed.
type Outcome = crate::store::writer::BatchOutcome;

/// The writer thread's state.
pub struct PgWriter {
    pg: Pg,
    /// The writer's connection, kept across batches (its prepared
    /// statements and the pruning lock live on it); dropped when it fails.
    client: Option<deadpool_postgres::Object>,
    cache: Cache,
    ids: IdsAhead,
    metrics: Arc<Metrics>,
    settings: WriterSettings,
    forward: Option<Published>,
    last_now_ms: i64,
    /// Set while batches fail, so an outage is logged once.
    failing: bool,
    prune: Option<prune::Pass>,
}

impl PgWriter {
    /// A writer on `pg`; it reads each agent's rows when it first meets the
    /// agent.
    pub fn new(
        pg: Pg,
        metrics: Arc<Metrics>,
        forward: Option<Published>,
        settings: WriterSettings,
    ) -> PgWriter {
        PgWriter {
            pg,
            client: None,
            cache: Cache::default(),
            ids: IdsAhead::default(),
            metrics,
            settings,
            forward,
            last_now_ms: 0,
            failing: false,
            prune: None,
        }
    }

    /// Serves requests until every sender is gone, then closes the channel
    /// to forwarding.
    pub fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        loop {
            let batch = match next_batch(&mut rx, self.prune.is_some()) {
                Next::Batch(batch) => batch,
                Next::Idle => {
                    self.prune_step();
                    continue;
                }
                Next::Closed => break,
            };
            self.last_now_ms = self
                .last_now_ms
                .max(crate::store::millis(SystemTime::now()));
            self.apply(batch, self.last_now_ms);
        }
        self.end_prune();
    }

    /// The writer's connection, taken from the pool when it has none.
    fn connection(&mut self) -> Result<&deadpool_postgres::Object, StoreError> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            let client = self.pg.runtime().block_on(self.pg.client())?;
            self.client = Some(client);
        }
        Ok(self.client.as_ref().expect("just connected"))
    }

    /// Applies a batch in one transaction at `now_ms`, then acknowledges or
    /// fails each request.
    pub fn apply(&mut self, batch: Vec<Request>, now_ms: i64) {
        let started = Instant::now();
        let mut replies: Vec<Reply> = Vec::new();
        let mut prune = false;
        match self.transaction(batch, now_ms, &mut replies, &mut prune) {
            Ok(outcome) => {
                if self.failing {
                    self.failing = false;
                    tracing::info!("The store takes events again.");
                }
                for (reply, result) in outcome.silences {
                    let _ = reply.send(result);
                }
                let m = &self.metrics;
                m.batches.fetch_add(1, Ordering::Relaxed);
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
                for (reply, acks, spent) in outcome.acks {
                    let _ = reply.send(Ack::Stored(acks, spent));
                }
                if let Some(forward) = &self.forward {
                    for event in outcome.fresh {
                        // Never waits, as on SQLite: a forwarder that fell
                        // behind loses this event, counted.
                        if forward.try_send(event).is_err() {
                            m.forward_dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Err(error) => {
                self.metrics.commit_failures.fetch_add(1, Ordering::Relaxed);
                self.metrics.store.commit_failed(&error);
                if !self.failing {
                    self.failing = true;
                    tracing::error!(%error, "Storing a batch failed; its connections are closed so their agents resend, and each batch is retried on a fresh connection until the store takes them.");
                } else {
                    tracing::debug!(%error, "Storing a batch failed again.");
                }
                let reason = format!("the collector could not store events: {error}");
                for reply in replies {
                    let _ = reply.send(Ack::Failed(reason.clone()));
                }
                self.abandon();
            }
        }
        if prune && self.prune.is_none() {
            self.start_prune(now_ms - self.settings.retain.as_millis() as i64);
        }
    }

    /// After a failed transaction: rolls it back (or drops a connection
    /// that cannot), and forgets the copy, which may hold some of it.
    fn abandon(&mut self) {
        if let Some(client) = &self.client {
            let rolled_back = self
                .pg
                .runtime()
                .block_on(client.batch_execute("ROLLBACK"))
                .is_ok();
            if !rolled_back || client.is_closed() {
                self.client = None;
                self.prune = None;
            }
        }
        self.cache = Cache::default();
    }

    fn transaction(
        &mut self,
        batch: Vec<Request>,
        now_ms: i64,
        replies: &mut Vec<Reply>,
        prune: &mut bool,
    ) -> Result<Outcome, StoreError> {
        for request in &batch {
            if let Request::Events { reply, .. } = request {
                replies.push(reply.clone());
            }
        }
        let timeout_ms = self.settings.heartbeat_timeout.as_millis() as i64;
        let want_events = self.forward.is_some();
        let runtime = self.pg.runtime().clone();
        self.connection()?;
        let client: &tokio_postgres::Client = self.client.as_ref().expect("connected");
        let cache = &mut self.cache;

        let mut names: Vec<&str> = Vec::new();
        for request in &batch {
            match request {
                Request::Events { events, .. } => {
                    names.extend(events.iter().map(|e| e.agent.as_str()));
                }
                Request::Hello { hello, .. } => names.push(&hello.agent),
                Request::Goodbye { agent, .. } => names.push(agent),
                Request::Prune | Request::Silence { .. } => {}
            }
        }
        names.sort_unstable();
        names.dedup();
        // New agents' rows are committed on their own first: created inside
        // the batch they would be locked in name order, not id order.
        let unseen: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !cache.agents.contains_key(*n))
            .collect();
        if !unseen.is_empty() {
            runtime.block_on(client.execute(
                "INSERT INTO agents (name, last_seen_ms)
                 SELECT n, $2 FROM unnest($1::text[]) AS u(n) ORDER BY n
                 ON CONFLICT (name) DO NOTHING",
                &[&unseen, &now_ms],
            ))?;
        }
        runtime.block_on(client.batch_execute("BEGIN"))?;
        let locked = runtime.block_on(client.query(
            "SELECT id, name, writes FROM agents WHERE name = ANY($1) ORDER BY id FOR UPDATE",
            &[&names],
        ))?;
        let sql = PgSql {
            client,
            runtime: &runtime,
        };
        for row in &locked {
            let (id, name, writes): (i64, &str, i64) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            if cache.agents.get(name).map(|a| (a.id, a.writes)) != Some((id, writes)) {
                if let Some(old) = cache.agents.get(name).map(|a| a.id)
                    && old != id
                {
                    cache.reload_agent(&sql, old)?;
                }
                cache.reload_agent(&sql, id)?;
            }
        }

        // The boots the batch begins, created ahead so the events can go in
        // with one statement.
        let (mut boot_agents, mut boot_names): (Vec<i64>, Vec<&str>) = (Vec::new(), Vec::new());
        for request in &batch {
            if let Request::Events { events, .. } = request {
                for ev in events {
                    let agent_id = cache.agents[&ev.agent].id;
                    let known = cache
                        .boots
                        .get(&agent_id)
                        .is_some_and(|b| b.contains_key(&ev.boot));
                    if !known
                        && !boot_agents
                            .iter()
                            .zip(&boot_names)
                            .any(|(a, b)| *a == agent_id && *b == ev.boot)
                    {
                        boot_agents.push(agent_id);
                        boot_names.push(&ev.boot);
                    }
                }
            }
        }
        if !boot_agents.is_empty() {
            let rows = runtime.block_on(client.query(
                "INSERT INTO boots (agent_id, boot, last_ms)
                 SELECT a, b, $3 FROM unnest($1::bigint[], $2::text[]) AS u(a, b)
                 RETURNING id, agent_id, boot",
                &[&boot_agents, &boot_names, &now_ms],
            ))?;
            for row in rows {
                cache.boots.entry(row.try_get(1)?).or_default().insert(
                    row.try_get(2)?,
                    BootRow {
                        id: row.try_get(0)?,
                        last_seq: 0,
                        dirty: false,
                        unopened: true,
                    },
                );
            }
        }

        let mut ids = std::mem::take(&mut self.ids);
        let mut bulk = Bulk::new(client, &runtime, &mut ids);
        {
            let n = batch.iter().map(batch_events).sum();
            let (mut boot_ids, mut seqs, mut ts, mut kinds, mut lines) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for request in &batch {
                if let Request::Events { events, .. } = request {
                    for ev in events {
                        let agent_id = cache.agents[&ev.agent].id;
                        boot_ids.push(cache.boots[&agent_id][&ev.boot].id);
                        seqs.push(ev.seq as i64);
                        ts.push(ev.ts_ms);
                        kinds.push(ev.kind.as_str());
                        lines.push(ev.line.as_str());
                    }
                }
            }
            if !boot_ids.is_empty() {
                let rows = runtime.block_on(client.query(
                    "INSERT INTO events (boot_id, seq, ts_ms, received_ms, type, line)
                     SELECT b, s, t, $4, k, l
                     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $5::text[], $6::text[])
                          AS u(b, s, t, k, l)
                     ON CONFLICT (boot_id, seq) DO NOTHING
                     RETURNING boot_id, seq, id",
                    &[&boot_ids, &seqs, &ts, &now_ms, &kinds, &lines],
                ))?;
                bulk.fresh.reserve(rows.len());
                for row in rows {
                    bulk.fresh
                        .insert((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?);
                }
            }
        }

        let mut outcome = Outcome::default();
        for request in batch {
            match request {
                Request::Events { events, reply } => {
                    outcome.apply_events(
                        &mut bulk,
                        cache,
                        events,
                        reply,
                        (now_ms, timeout_ms),
                        want_events,
                    )?;
                }
                Request::Hello { hello, address } => {
                    let id = cache.agents[&hello.agent].id;
                    let addresses = serde_json::to_string(&hello.addresses)
                        .expect("addresses always serialize");
                    runtime.block_on(client.execute(
                        "UPDATE agents SET address = $2, version = $3, boot = $4, addresses = $5,
                                           last_seen_ms = $6
                         WHERE id = $1",
                        &[
                            &id,
                            &address,
                            &hello.version,
                            &hello.boot,
                            &addresses,
                            &now_ms,
                        ],
                    ))?;
                    cache.hello(id, &hello, addresses, now_ms);
                }
                Request::Goodbye {
                    agent,
                    boot,
                    last_seq,
                } => {
                    let id = cache.agents[&agent].id;
                    cache.goodbye(id, now_ms);
                    tracing::info!(agent, boot, last_seq, "Agent stopped (it said goodbye).");
                }
                Request::Prune => *prune = true,
                // In a savepoint: a failed statement is answered, and the
                // events of the batch it rides in still commit. A change
                // is announced to every collector, once it commits.
                Request::Silence { change, reply } => {
                    runtime.block_on(client.batch_execute("SAVEPOINT silence"))?;
                    let result =
                        crate::store::silences::apply(&sql, &change).map_err(|e| e.to_string());
                    if result == Ok(true) {
                        runtime.block_on(client.execute(
                            "SELECT pg_notify($1, $2)",
                            &[&crate::store::silences::CHANGED_CHANNEL, &change.id()],
                        ))?;
                    }
                    let end = if result.is_ok() {
                        "RELEASE SAVEPOINT silence"
                    } else {
                        "ROLLBACK TO SAVEPOINT silence"
                    };
                    runtime.block_on(client.batch_execute(end))?;
                    outcome.silences.push((reply, result));
                }
            }
        }
        bulk.flush()?;
        drop(bulk);
        self.ids = ids;

        let (mut t_id, mut t_n, mut t_start, mut t_state, mut t_prior) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut t_down, mut t_unknown, mut t_outages, mut t_since, mut t_admin) =
            (vec![], vec![], vec![], vec![], vec![]);
        for id in cache.dirty_tails.drain() {
            let t = &cache.tails[&id];
            t_id.push(id);
            t_n.push(t.n);
            t_start.push(t.seg.start_ms);
            t_state.push(t.seg.state.code());
            t_prior.push(t.seg.prior.code());
            t_down.push(t.seg.down_before_ms);
            t_unknown.push(t.seg.unknown_before_ms);
            t_outages.push(t.seg.outages);
            t_since.push(t.down_since_ms);
            t_admin.push(t.seg.admin_down_before_ms);
        }
        let (mut b_id, mut b_seq) = (vec![], vec![]);
        for (agent_id, boot) in cache.dirty_boots.drain(..) {
            let row = cache
                .boots
                .get_mut(&agent_id)
                .and_then(|b| b.get_mut(&boot))
                .expect("a dirty boot is cached");
            row.dirty = false;
            b_id.push(row.id);
            b_seq.push(row.last_seq as i64);
        }
        let (mut a_id, mut a_seen, mut a_ts, mut a_stopped) = (vec![], vec![], vec![], vec![]);
        for row in &locked {
            let id: i64 = row.try_get(0)?;
            let agent = cache.agent_row(id);
            agent.writes += 1;
            a_id.push(id);
            a_seen.push(agent.last_seen_ms);
            a_ts.push(agent.last_ts_ms);
            a_stopped.push(agent.stopped_ms);
        }
        cache.dirty_agents.clear();
        let tail_params: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
            &t_id, &t_n, &t_start, &t_state, &t_prior, &t_down, &t_unknown, &t_outages, &t_since,
            &t_admin,
        ];
        let boot_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&b_id, &b_seq, &now_ms];
        let agent_params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&a_id, &a_seen, &a_ts, &a_stopped];
        runtime.block_on(async {
            let mut work = Vec::new();
            if !t_id.is_empty() {
                work.push(client.execute(
                    "UPDATE interfaces i
                     SET n = u.n, start_ms = u.start_ms, state = u.state, prior = u.prior,
                         down_before_ms = u.down_before_ms, unknown_before_ms = u.unknown_before_ms,
                         outages = u.outages, down_since_ms = u.down_since_ms,
                         admin_down_before_ms = u.admin_down_before_ms
                     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],
                                 $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
                                 $9::bigint[], $10::bigint[])
                          AS u(id, n, start_ms, state, prior, down_before_ms, unknown_before_ms,
                               outages, down_since_ms, admin_down_before_ms)
                     WHERE i.id = u.id",
                    &tail_params,
                ));
            }
            if !b_id.is_empty() {
                work.push(client.execute(
                    "UPDATE boots b SET last_seq = u.seq, last_ms = $3
                     FROM unnest($1::bigint[], $2::bigint[]) AS u(id, seq)
                     WHERE b.id = u.id",
                    &boot_params,
                ));
            }
            if !a_id.is_empty() {
                work.push(client.execute(
                    "UPDATE agents a
                     SET last_seen_ms = u.seen, last_ts_ms = u.ts, stopped_ms = u.stopped,
                         writes = a.writes + 1
                     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])
                          AS u(id, seen, ts, stopped)
                     WHERE a.id = u.id",
                    &agent_params,
                ));
            }
            futures_util::future::try_join_all(work).await
        })?;
        runtime.block_on(client.batch_execute("COMMIT"))?;
        Ok(outcome)
    }
}

/// Per boot of `boots`, the highest seq any collector stored for `agent`
/// (boots the store does not hold are left out).
pub async fn last_seqs(
    pg: &Pg,
    agent: &str,
    boots: &[String],
) -> Result<Vec<(String, u64)>, StoreError> {
    let client = pg.client().await?;
    let rows = client
        .query(
            "SELECT b.boot, b.last_seq FROM boots b JOIN agents a ON a.id = b.agent_id
             WHERE a.name = $1 AND b.boot = ANY($2)",
            &[&agent, &boots],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64)))
        .collect()
}

#[cfg(test)]
mod tests;
