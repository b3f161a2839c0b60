//! The retention pass: deletes what is older than `retain` in small chunks,
//! each its own transaction, between the writer's batches, so pruning never
//! holds ingest up for long.

use super::Writer;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Rows deleted per pruning transaction, so pruning never holds ingest up
/// for long.
const PRUNE_CHUNK: i64 = 20_000;

/// The rows a pruning pass still has to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PruneStep {
    Events,
    LinkChanges,
    Alerts,
    Segments { after_iface: i64 },
    Boots,
}

impl Writer {
    /// One chunk of the pruning pass, in its own transaction.
    pub(super) fn prune_step(&mut self) {
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
