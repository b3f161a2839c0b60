//! Retention on a shared store: the same steps as SQLite's pass, in chunks
//! between batches, run by one collector at a time: the pass begins only
//! if `pg_try_advisory_lock(PRUNE_LOCK)` succeeds on the writer's
//! connection and ends by releasing it, so the others skip theirs.

use super::PgWriter;
use crate::store::StoreError;
use crate::store::postgres::schema::PRUNE_LOCK;
use std::sync::atomic::Ordering;

/// Rows deleted per statement, so pruning never holds ingest up for long.
const PRUNE_CHUNK: i64 = 20_000;

/// Interfaces whose old segments one statement deletes.
const IFACES_PER_CHUNK: i64 = 500;

/// A pass under way: what it still has to delete, and older than when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pass {
    step: Step,
    cutoff: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Events,
    LinkChanges,
    Alerts,
    Segments { after_iface: i64 },
    Boots,
}

impl PgWriter {
    /// Begins a pass if no other collector is running one.
    pub(super) fn start_prune(&mut self, cutoff: i64) {
        let runtime = self.pg.runtime().clone();
        let locked = self.connection().and_then(|client| {
            let row = runtime
                .block_on(client.query_one("SELECT pg_try_advisory_lock($1)", &[&PRUNE_LOCK]))?;
            Ok(row.try_get::<_, bool>(0)?)
        });
        match locked {
            Ok(true) => {
                self.prune = Some(Pass {
                    step: Step::Events,
                    cutoff,
                })
            }
            Ok(false) => {
                tracing::debug!("Another collector is pruning the store; this one skips its pass.");
            }
            Err(error) => {
                tracing::warn!(%error, "Could not begin pruning; the next pass retries.");
            }
        }
    }

    /// One chunk of the pass.
    pub(super) fn prune_step(&mut self) {
        let Some(pass) = self.prune else {
            return;
        };
        let runtime = self.pg.runtime().clone();
        let result = match self.client.as_ref() {
            Some(client) => runtime.block_on(chunk(client, pass)),
            None => {
                // The connection, and the lock with it, is gone.
                self.prune = None;
                return;
            }
        };
        match result {
            Ok((next, deleted)) => {
                self.metrics.pruned.fetch_add(deleted, Ordering::Relaxed);
                match next {
                    Some(step) => self.prune = Some(Pass { step, ..pass }),
                    None => {
                        tracing::debug!("Retention pass finished.");
                        self.end_prune();
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "Deleting old rows failed; the next pass retries.");
                self.end_prune();
            }
        }
    }

    /// Runs the pass begun, if any, to its end, as the writer's idle time
    /// would.
    #[cfg(test)]
    pub(crate) fn finish_prune(&mut self) {
        while self.prune.is_some() {
            self.prune_step();
        }
    }

    /// Ends the pass, releasing the lock for the next collector.
    pub(super) fn end_prune(&mut self) {
        if self.prune.take().is_none() {
            return;
        }
        if let Some(client) = &self.client {
            let released = self
                .pg
                .runtime()
                .block_on(client.execute("SELECT pg_advisory_unlock($1)", &[&PRUNE_LOCK]));
            if released.is_err() {
                // A session lock goes with its connection.
                self.client = None;
            }
        }
    }
}

/// Deletes one chunk of the pass's step; the step to run next (None when
/// done) and the rows deleted.
async fn chunk(
    client: &tokio_postgres::Client,
    pass: Pass,
) -> Result<(Option<Step>, u64), StoreError> {
    let cutoff = pass.cutoff;
    let deleted = match pass.step {
        // By received time, through the BRIN index: ids come from several
        // collectors and need not grow with time.
        Step::Events => {
            client
                .execute(
                    "DELETE FROM events WHERE id IN
                        (SELECT id FROM events WHERE received_ms < $1 LIMIT $2)",
                    &[&cutoff, &PRUNE_CHUNK],
                )
                .await?
        }
        Step::LinkChanges => {
            client
                .execute(
                    "DELETE FROM link_changes WHERE (at_ms, event_id) IN
                        (SELECT at_ms, event_id FROM link_changes WHERE at_ms < $1
                         ORDER BY at_ms LIMIT $2)",
                    &[&cutoff, &PRUNE_CHUNK],
                )
                .await?
        }
        Step::Alerts => {
            client
                .execute(
                    "DELETE FROM alerts WHERE id IN
                        (SELECT id FROM alerts WHERE resolved_at_ms < $1 LIMIT $2)",
                    &[&cutoff, &PRUNE_CHUNK],
                )
                .await?
        }
        Step::Segments { after_iface } => {
            let ifaces: Vec<i64> = client
                .query(
                    "SELECT id FROM interfaces WHERE id > $1 ORDER BY id LIMIT $2",
                    &[&after_iface, &IFACES_PER_CHUNK],
                )
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            let Some(&last) = ifaces.last() else {
                return Ok((Some(Step::Boots), 0));
            };
            // Per interface, every segment before the one in force at the
            // cutoff, which stays so downtime over the kept window adds up.
            let n = client
                .execute(
                    "DELETE FROM segments s
                     USING (SELECT i, k.start_ms, k.n FROM unnest($1::bigint[]) AS u(i)
                            CROSS JOIN LATERAL
                              (SELECT start_ms, n FROM segments
                               WHERE iface_id = u.i AND start_ms <= $2
                               ORDER BY start_ms DESC, n DESC LIMIT 1) k) keep
                     WHERE s.iface_id = keep.i AND (s.start_ms, s.n) < (keep.start_ms, keep.n)",
                    &[&ifaces, &cutoff],
                )
                .await?;
            return Ok((Some(Step::Segments { after_iface: last }), n));
        }
        Step::Boots => {
            // A boot goes with its last event, unless it is its agent's
            // current one; its agent's `writes` moves, so every writer
            // reads the agent's boots again.
            let n = client
                .execute(
                    "WITH gone AS (
                        DELETE FROM boots WHERE last_ms < $1
                          AND NOT EXISTS (SELECT 1 FROM agents a
                                          WHERE a.id = boots.agent_id AND a.boot = boots.boot)
                          AND NOT EXISTS (SELECT 1 FROM events e WHERE e.boot_id = boots.id)
                        RETURNING agent_id)
                     UPDATE agents SET writes = writes + 1
                     WHERE id IN (SELECT agent_id FROM gone)",
                    &[&cutoff],
                )
                .await?;
            return Ok((None, n));
        }
    };
    let next = if deleted as i64 >= PRUNE_CHUNK {
        Some(pass.step)
    } else {
        match pass.step {
            Step::Events => Some(Step::LinkChanges),
            Step::LinkChanges => Some(Step::Alerts),
            Step::Alerts => Some(Step::Segments { after_iface: 0 }),
            _ => None,
        }
    };
    Ok((next, deleted))
}
