//! The store's read side, whichever store the collector was given: the
//! API, alert forwarding, fabric traces and the shell commands ask every
//! question through [`Reads::with`], each question written once as a
//! function of [`Sql`], so SQLite and PostgreSQL answer it alike.

use super::postgres::Pg;
use super::sql::Sql;
use super::{ReadPool, StoreError};
use std::time::Duration;

#[cfg(test)]
pub mod fixture;
#[cfg(test)]
mod tests;

/// Read access to the store.
pub enum Reads {
    /// Connections to the SQLite file, opened as needed and reused.
    Sqlite(ReadPool),
    /// The shared database's pool.
    Postgres(Pg),
}

impl std::fmt::Debug for Reads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reads::Sqlite(pool) => f.debug_tuple("Sqlite").field(pool).finish(),
            Reads::Postgres(_) => f.write_str("Postgres"),
        }
    }
}

impl Reads {
    /// The read side of the store `store` names (`data_dir` holds SQLite's
    /// file).
    pub async fn open(
        store: &super::StoreSettings,
        data_dir: &std::path::Path,
    ) -> Result<Reads, StoreError> {
        Ok(match store {
            super::StoreSettings::Sqlite => Reads::Sqlite(ReadPool::new(data_dir)),
            super::StoreSettings::Postgres(settings) => Reads::Postgres(Pg::open(settings).await?),
        })
    }

    /// Runs `f` on one snapshot of the store: every query it makes sees
    /// the store as of one moment, though writers commit in between. Call
    /// it from a blocking thread (tokio's blocking pool, a shell command's
    /// main thread), never from inside an async task.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&dyn Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self {
            Reads::Sqlite(pool) => pool.with(|db| {
                // Deferred: the snapshot is taken at the first read and
                // held until the transaction is dropped, which rolls back
                // what wrote nothing.
                let tx = db.unchecked_transaction()?;
                f(&*tx)
            }),
            // A read-only REPEATABLE READ transaction: one snapshot too.
            Reads::Postgres(pg) => pg.with(f),
        }
    }

    /// Whether anything keeps the store current, so that an agent's
    /// `online` means what it says. On SQLite, whether a collector holds
    /// the lock on its `data_dir`. A shared database has no such lock, and
    /// no one collector keeps it current: there it is whether any
    /// collector has refreshed its row in `collectors` within `timeout` of
    /// `now_ms`.
    pub fn collector_running(&self, now_ms: i64, timeout: Duration) -> Result<bool, StoreError> {
        match self {
            Reads::Sqlite(pool) => Ok(super::collector_running(pool.data_dir())),
            Reads::Postgres(_) => {
                let seen_since = now_ms - timeout.as_millis() as i64;
                self.with(|db| {
                    db.one_i64(
                        "SELECT count(*) FROM collectors WHERE last_seen_ms >= $1",
                        &[&seen_since],
                    )
                })
                .map(|n| n > 0)
            }
        }
    }
}
