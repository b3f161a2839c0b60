//! The retention pass on the shared store, run by one collector at a time:
//! whoever takes the advisory lock [`PRUNE_LOCK`] deletes, the others find
//! it taken and skip their turn, so collectors sharing the store do not
//! delete the same rows at once nor multiply the load.
//!
//! As on SQLite, rows go in chunks, each its own transaction, so pruning
//! never holds ingest up for long; a boot is deleted under its agent's row
//! lock with the agent's `writes` bumped, as every change to an agent's
//! derived rows is, so a writer holding a copy of its boots reads them
//! again.

use super::super::StoreError;
use super::schema::PRUNE_LOCK;
use tokio_postgres::Client;

/// Rows deleted per transaction.
const CHUNK: i64 = 20_000;

/// Interfaces whose old segments are deleted per transaction.
const INTERFACES: i64 = 500;

/// What one pass deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub rows: u64,
    /// The boots deleted, as (agent, boot): forgotten by the caller's
    /// caches too.
    pub boots: Vec<(String, String)>,
}

/// Deletes what was received or ended before `cutoff_ms`, if no other
/// collector is doing so now; None when one is.
pub async fn prune(client: &Client, cutoff_ms: i64) -> Result<Option<Pruned>, StoreError> {
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&PRUNE_LOCK])
        .await?
        .try_get(0)?;
    if !locked {
        return Ok(None);
    }
    let pruned = delete(client, cutoff_ms).await;
    // A connection that broke took its session's lock with it.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&PRUNE_LOCK])
        .await;
    pruned.map(Some)
}

async fn delete(client: &Client, cutoff: i64) -> Result<Pruned, StoreError> {
    let mut pruned = Pruned::default();
    for sql in [
        "DELETE FROM events WHERE id IN
            (SELECT id FROM events WHERE received_ms < $1 LIMIT $2)",
        "DELETE FROM link_changes WHERE (at_ms, event_id) IN
            (SELECT at_ms, event_id FROM link_changes WHERE at_ms < $1 ORDER BY at_ms LIMIT $2)",
        "DELETE FROM alerts WHERE id IN
            (SELECT id FROM alerts WHERE resolved_at_ms < $1 LIMIT $2)",
    ] {
        loop {
            let n = client.execute(sql, &[&cutoff, &CHUNK]).await?;
            pruned.rows += n;
            if (n as i64) < CHUNK {
                break;
            }
        }
    }
    // Per interface, every segment that ended before the cutoff: all
    // before the one in force at the cutoff.
    let mut after = 0_i64;
    loop {
        let ifaces: Vec<i64> = client
            .query(
                "SELECT id FROM interfaces WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &INTERFACES],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let Some(&last) = ifaces.last() else { break };
        pruned.rows += client
            .execute(
                "DELETE FROM segments s WHERE s.iface_id = ANY($1) AND (s.start_ms, s.n) <
                    (SELECT x.start_ms, x.n FROM segments x
                     WHERE x.iface_id = s.iface_id AND x.start_ms <= $2
                     ORDER BY x.start_ms DESC, x.n DESC LIMIT 1)",
                &[&ifaces, &cutoff],
            )
            .await?;
        after = last;
    }
    // A boot goes with its last event, unless it is its agent's current
    // one; agent by agent, under the agent's row lock.
    let agents: Vec<(i64, String)> = client
        .query(
            "SELECT DISTINCT a.id, a.name FROM boots b JOIN agents a ON a.id = b.agent_id
             WHERE b.last_ms < $1 AND b.boot <> a.boot ORDER BY a.id",
            &[&cutoff],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, StoreError>>()?;
    for (agent_id, name) in agents {
        client.batch_execute("BEGIN").await?;
        let deleted = async {
            client
                .execute(
                    "UPDATE agents SET writes = writes + 1 WHERE id = $1",
                    &[&agent_id],
                )
                .await?;
            let rows = client
                .query(
                    "DELETE FROM boots b WHERE b.agent_id = $1 AND b.last_ms < $2
                       AND b.boot <> (SELECT a.boot FROM agents a WHERE a.id = $1)
                       AND NOT EXISTS (SELECT 1 FROM events e WHERE e.boot_id = b.id)
                     RETURNING b.boot",
                    &[&agent_id, &cutoff],
                )
                .await?;
            client.batch_execute("COMMIT").await?;
            rows.iter()
                .map(|r| r.try_get::<_, String>(0).map_err(StoreError::from))
                .collect::<Result<Vec<_>, _>>()
        }
        .await;
        match deleted {
            Ok(boots) => {
                pruned.rows += boots.len() as u64;
                pruned
                    .boots
                    .extend(boots.into_iter().map(|boot| (name.clone(), boot)));
            }
            Err(error) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(error);
            }
        }
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::pgcluster;

    #[test]
    fn root_one_collector_prunes_at_a_time_and_keeps_what_is_in_force() {
        if !pgcluster::can_use("root_one_collector_prunes_at_a_time_and_keeps_what_is_in_force") {
            return;
        }
        let url = pgcluster::shared().database("prune");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let connect = || async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(connection);
                client
            };
            let (a, b) = (connect().await, connect().await);
            for (_, step) in super::super::schema::MIGRATIONS {
                a.batch_execute(step).await.unwrap();
            }
            // leaf1 booted as b1 (all of it old) and runs b2 now; leaf2 has
            // only its current boot b3, old. One interface with segments
            // at 10, 20 and 2000; the one at 20 is in force at the cutoff.
            a.batch_execute(
                "INSERT INTO agents (id, name, boot) VALUES (1, 'leaf1', 'b2'), (2, 'leaf2', 'b3');
                 INSERT INTO boots (id, agent_id, boot, last_seq, last_ms)
                   VALUES (1, 1, 'b1', 5, 50), (2, 1, 'b2', 9, 5000), (3, 2, 'b3', 1, 60);
                 INSERT INTO events (boot_id, seq, ts_ms, received_ms, type, line)
                   VALUES (1, 5, 50, 50, 'link', '{}'), (2, 9, 5000, 5000, 'link', '{}'),
                          (3, 1, 60, 60, 'heartbeat', '{}');
                 INSERT INTO interfaces (id, agent_id, name, n, start_ms, state, prior,
                                         down_before_ms, unknown_before_ms, outages)
                   VALUES (1, 1, 'swp1', 2, 2000, 0, 1, 0, 0, 1);
                 INSERT INTO segments (iface_id, start_ms, n, state, prior, down_before_ms,
                                       unknown_before_ms, outages)
                   VALUES (1, 10, 0, 0, 0, 0, 0, 0), (1, 20, 1, 1, 0, 0, 0, 1),
                          (1, 2000, 2, 0, 1, 0, 0, 1);
                 INSERT INTO link_changes (at_ms, event_id, iface_id, state)
                   VALUES (20, 1, 1, 1), (2000, 2, 1, 0);
                 INSERT INTO alerts (agent_id, boot_id, interface, rule, severity, expr,
                                     threshold, message, fired_at_ms, resolved_at_ms)
                   VALUES (1, 1, 'swp1', 'r', 'critical', 'x', 1, 'm', 1, 30),
                          (1, 2, 'swp1', 'r', 'critical', 'x', 1, 'm', 1, NULL);",
            )
            .await
            .unwrap();
            // While A holds the lock, B's pass is skipped and deletes nothing.
            a.execute("SELECT pg_advisory_lock($1)", &[&PRUNE_LOCK])
                .await
                .unwrap();
            assert_eq!(prune(&b, 1000).await.unwrap(), None);
            a.execute("SELECT pg_advisory_unlock($1)", &[&PRUNE_LOCK])
                .await
                .unwrap();
            let count = |sql: &'static str| {
                let b = &b;
                async move { b.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
            };
            assert_eq!(count("SELECT count(*) FROM events").await, 3);
            let pruned = prune(&b, 1000).await.unwrap().unwrap();
            // Two events, one change, one resolved alert, one segment, b1.
            assert_eq!(pruned.rows, 6);
            assert_eq!(pruned.boots, [("leaf1".to_string(), "b1".to_string())]);
            assert_eq!(count("SELECT count(*) FROM events").await, 1);
            assert_eq!(
                count("SELECT count(*) FROM segments WHERE start_ms IN (20, 2000)").await,
                2
            );
            assert_eq!(count("SELECT count(*) FROM segments").await, 2);
            assert_eq!(count("SELECT count(*) FROM alerts").await, 1);
            assert_eq!(count("SELECT count(*) FROM link_changes").await, 1);
            // leaf2's current boot stays, old as it is.
            assert_eq!(
                count("SELECT count(*) FROM boots WHERE boot IN ('b2', 'b3')").await,
                2
            );
            assert_eq!(count("SELECT writes FROM agents WHERE id = 1").await, 1);
            // The lock is free again: A can take it.
            let free: bool = a
                .query_one("SELECT pg_try_advisory_lock($1)", &[&PRUNE_LOCK])
                .await
                .unwrap()
                .get(0);
            assert!(free);
        });
    }
}
