//! The store's read side, whichever store the collector was given: the
//! API, alert forwarding, fabric traces and the shell commands ask every
//! question through [`Reads::with`], each question written once as a
//! function of [`Sql`], so SQLite and PostgreSQL answer it alike.

use super::sql::Sql;
use super::{ReadPool, StoreError};
use std::time::Duration;

/// Read access to the store.
#[derive(Debug)]
pub enum Reads {
    /// Connections to the SQLite file, opened as needed and reused.
    Sqlite(ReadPool),
}

impl Reads {
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
        }
    }

    /// Whether anything keeps the store current, so that an agent's
    /// `online` means what it says. For SQLite, whether a collector holds
    /// the lock on its `data_dir`.
    pub fn collector_running(&self, now_ms: i64, timeout: Duration) -> Result<bool, StoreError> {
        let _ = (now_ms, timeout);
        match self {
            Reads::Sqlite(pool) => Ok(super::collector_running(pool.data_dir())),
        }
    }
}
