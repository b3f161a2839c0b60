//! On a shared PostgreSQL store, a silence added or removed through any
//! collector reaches the agents of every one at once, not at their
//! collector's next start: the writer that commits a change notifies
//! `hopwatch_silences` in the same transaction, and every collector
//! listens there on a connection of its own and reads the set again,
//! which its board publishes to its agents as a change made here would be.
//! A notification sent while the connection was down is lost, so the set
//! is read again each time the connection is made.

use super::Board;
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
            let mut stale = !reload(&board, &pg).await;
            loop {
                tokio::select! {
                    note = inbox.recv() => match note {
                        Some(_) => {
                            // One read covers every change announced so far.
                            while inbox.try_recv().is_ok() {}
                            stale = !reload(&board, &pg).await;
                        }
                        None => break,
                    },
                    () = tokio::time::sleep(RETRY), if stale => stale = !reload(&board, &pg).await,
                    _ = stop.recv() => {
                        drop(client);
                        driver.abort();
                        return;
                    }
                }
            }
            drop(client);
            if let Ok(Some(error)) = driver.await {
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
async fn reload(board: &Board, pg: &Pg) -> bool {
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
            tracing::warn!(%error, retry_in = ?RETRY, "Reading the silences changed through other collectors failed; retrying.");
            false
        }
        Err(error) => {
            tracing::warn!(%error, "Reading the silences changed through other collectors failed.");
            false
        }
    }
}
