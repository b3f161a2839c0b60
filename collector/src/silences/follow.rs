//! On a shared PostgreSQL store, a silence added or removed through any
//! collector reaches the agents of every one at once, not at their
//! collector's next start: the writer that commits a change notifies
//! `hopwatch_silences` in the same transaction, and every collector
//! listens there on a connection of its own and reads the set again,
//! which its board publishes to its agents as a change made here would be.
//! A notification sent while the connection was down is lost, so the set
//! is read again each time the connection is made.

use super::Board;
use crate::metrics::{Metrics, SharedTask};
use crate::store::postgres::{Pg, PostgresSettings, listen};
use crate::store::silences::{CHANGED_CHANNEL, Stored, not_ended};
use crate::store::{StoreError, millis};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// How long to wait before listening again, or reading the set again,
/// after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// Keeps `board` equal to the silences of the store `pg` (reached as
/// `settings` say, for the listening connection) until `stop`.
pub fn follow(
    board: Arc<Board>,
    pg: Pg,
    settings: PostgresSettings,
    metrics: Arc<Metrics>,
    mut stop: broadcast::Receiver<()>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Each outage is logged once, when it starts and when it ends.
        let mut failing = false;
        loop {
            let (notes, mut inbox) = mpsc::unbounded_channel();
            let connected = async {
                let (client, driver) = listen::connect(&settings, notes).await?;
                client
                    .batch_execute(&format!("LISTEN {CHANGED_CHANNEL}"))
                    .await?;
                Ok::<_, StoreError>((client, driver))
            }
            .await;
            let (client, driver) = match connected {
                Ok(connected) => connected,
                Err(error) => {
                    metrics.shared_failed(SharedTask::Silences);
                    if !failing {
                        failing = true;
                        tracing::warn!(%error, retry_in = ?RETRY, "Cannot listen for silences changed through other collectors; retrying.");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(RETRY) => continue,
                        _ = stop.recv() => return,
                    }
                }
            };
            if failing {
                failing = false;
                tracing::info!("Listening for silences changed through other collectors again.");
            }
            // What changed while nobody listened, and the set as it is now.
            let mut stale = !reload(&board, &pg, &metrics).await;
            loop {
                tokio::select! {
                    note = inbox.recv() => match note {
                        Some(_) => {
                            // One read covers every change announced so far.
                            while inbox.try_recv().is_ok() {}
                            stale = !reload(&board, &pg, &metrics).await;
                        }
                        None => break,
                    },
                    () = tokio::time::sleep(RETRY), if stale => stale = !reload(&board, &pg, &metrics).await,
                    _ = stop.recv() => {
                        drop(client);
                        driver.abort();
                        return;
                    }
                }
            }
            drop(client);
            if let Ok(Some(error)) = driver.await {
                metrics.shared_failed(SharedTask::Silences);
                failing = true;
                tracing::warn!(%error, "Lost the connection listening for silences changed through other collectors; reconnecting.");
            }
            tokio::select! {
                () = tokio::time::sleep(RETRY) => {}
                _ = stop.recv() => return,
            }
        }
    })
}

/// Reads the silences not yet ended and publishes them; false (logged)
/// when the store could not be read.
async fn reload(board: &Board, pg: &Pg, metrics: &Metrics) -> bool {
    let pg = pg.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<Vec<Stored>, StoreError> {
        pg.with(|sql| not_ended(sql, millis(SystemTime::now())))
    })
    .await;
    match read {
        Ok(Ok(set)) => {
            board.replace(set);
            true
        }
        Ok(Err(error)) => {
            metrics.shared_failed(SharedTask::Silences);
            tracing::warn!(%error, retry_in = ?RETRY, "Reading the silences changed through other collectors failed; retrying.");
            false
        }
        Err(error) => {
            tracing::warn!(%error, "Reading the silences changed through other collectors failed.");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::store::StoreSettings;
    use crate::store::postgres::pgcluster;
    use crate::store::postgres::testing::TestStore;
    use crate::store::postgres::writer::PgWriter;
    use crate::store::silences::Change;
    use crate::store::writer::tests::{T0, heartbeat, incoming};
    use crate::store::writer::{Ack, Request, WriterSettings};
    use hopwatch_wire::silence::Silence;
    use tokio::sync::oneshot;

    fn add(id: &str) -> Change {
        Change::Add {
            silence: Stored {
                silence: Silence {
                    id: id.into(),
                    interface: "*".into(),
                    rule: None,
                    agent: None,
                    starts_at: crate::store::rfc3339(T0),
                    ends_at: crate::store::rfc3339(T0 + 3_600_000),
                    reason: "r".into(),
                    author: "a".into(),
                },
                starts_ms: T0,
                ends_ms: T0 + 3_600_000,
            },
            now_ms: T0,
            forget_before_ms: 0,
        }
    }

    fn remove(id: &str) -> Change {
        Change::Remove {
            id: id.into(),
            by: "b".into(),
            now_ms: T0 + 1,
        }
    }

    /// Applies `changes` in one batch (with `events` beside them); their
    /// answers, None for one dropped with a failed transaction.
    fn apply(
        w: &mut PgWriter,
        changes: Vec<Change>,
        events: bool,
    ) -> Vec<Option<crate::store::silences::Outcome>> {
        let mut batch = Vec::new();
        let mut answers = Vec::new();
        for change in changes {
            let (reply, answer) = oneshot::channel();
            batch.push(Request::Silence { change, reply });
            answers.push(answer);
        }
        let (tx, _acks) = mpsc::unbounded_channel::<Ack>();
        if events {
            batch.push(Request::Events {
                events: vec![incoming("leaf1", "b1", 1, 1, heartbeat(&[]))],
                reply: tx,
            });
        }
        w.apply(batch, T0 + 2_000);
        answers.into_iter().map(|mut a| a.try_recv().ok()).collect()
    }

    /// The writer announces a change once it commits, with the silence's
    /// id: not a change that failed, ended nothing, or whose transaction
    /// was rolled back.
    #[test]
    fn root_a_committed_silence_change_is_announced_and_no_other() {
        if !pgcluster::can_use("root_a_committed_silence_change_is_announced_and_no_other") {
            return;
        }
        let store = TestStore::postgres();
        let StoreSettings::Postgres(settings) = store.settings() else {
            unreachable!("a PostgreSQL store")
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (notes, mut inbox) = mpsc::unbounded_channel();
        let (client, _driver) = runtime.block_on(listen::connect(&settings, notes)).unwrap();
        runtime
            .block_on(client.batch_execute(&format!("LISTEN {CHANGED_CHANNEL}")))
            .unwrap();
        let mut w = PgWriter::new(
            store.pg().unwrap().clone(),
            Arc::new(Metrics::default()),
            None,
            WriterSettings {
                heartbeat_timeout: Duration::from_secs(30),
                retain: Duration::from_secs(86_400),
            },
        );
        let (one, two) = ("c-0000000000000001", "c-0000000000000002");
        let answers = apply(&mut w, vec![add(one), add(one), remove(two)], false);
        assert_eq!(answers[0], Some(Ok(true)));
        assert!(matches!(answers[1], Some(Err(_))), "{answers:?}");
        assert_eq!(answers[2], Some(Ok(false)), "nothing to end");
        // A change whose transaction is rolled back is never announced.
        store.with(|db| {
            db.execute(
                "CREATE FUNCTION no() RETURNS trigger LANGUAGE plpgsql \
                 AS 'BEGIN RAISE EXCEPTION ''disk on fire''; END'",
                &[],
            )
            .unwrap();
            db.execute(
                "CREATE TRIGGER no BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION no()",
                &[],
            )
            .unwrap();
        });
        assert_eq!(apply(&mut w, vec![add(two)], true), [None]);
        store.with(|db| db.execute("DROP TRIGGER no ON events", &[]).unwrap());
        assert_eq!(apply(&mut w, vec![remove(one)], false), [Some(Ok(true))]);
        let mut got = Vec::new();
        while got.len() < 2 {
            let note = runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), inbox.recv()).await
            });
            got.push(note.expect("an announcement").expect("listening"));
        }
        // Delivered in commit order: anything announced in between would
        // come before the removal's.
        assert_eq!(got, [one, one]);
        assert!(inbox.try_recv().is_err(), "{:?}", inbox.try_recv());
    }
}
