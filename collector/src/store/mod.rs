//! The SQLite store: one file under `data_dir`, written by one thread
//! ([`writer`]) and read by the API and the shell commands ([`query`]).
//!
//! Raw events are kept as received, deduplicated by `(boot, seq)`. Beside
//! them the writer maintains, in the same transaction, what the questions
//! need: alerts with their fired/resolved times, link transitions, agent
//! liveness, and each interface's timeline of up/down/unknown/admin_down
//! segments (states 0 to 3 in the `state` and `prior` columns) with
//! running totals (see [`crate::timeline`]), so that downtime over a month of
//! a large fleet reads two rows per interface.

pub mod fleet;
pub mod links;
pub mod postgres;
pub mod query;
pub mod reads;
pub mod silences;
pub mod since;
mod spans;
pub mod sql;
pub mod writer;

pub use reads::Reads;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `[store]`: which store keeps the fleet's events.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum StoreSettings {
    /// SQLite, one file under `[collector] data_dir`: the default.
    #[default]
    Sqlite,
    /// One PostgreSQL database, shareable by several collectors.
    Postgres(postgres::PostgresSettings),
}

/// The database file under `data_dir`.
pub const DB_FILE: &str = "hopwatch.db";

/// The schema this build reads and writes, in `PRAGMA user_version`: the
/// first version's [`SCHEMA`] with every [`MIGRATIONS`] step applied.
const SCHEMA_VERSION: i64 = 4;

/// The steps from one schema version to the next, each run in its own
/// transaction with the version it leads to, so a store is always at one
/// version and a collector of any later build upgrades it when it opens it.
const MIGRATIONS: &[(i64, &str)] = &[
    // When the agent said goodbye (NULL while it runs).
    (2, "ALTER TABLE agents ADD COLUMN stopped_ms INTEGER;"),
    // Time a port spent shut by an operator (state 3, `admin_down`), a
    // running total like the others; zero for every segment stored before,
    // when no state was `admin_down`.
    (
        3,
        "ALTER TABLE interfaces ADD COLUMN admin_down_before_ms INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE segments ADD COLUMN admin_down_before_ms INTEGER NOT NULL DEFAULT 0;",
    ),
    // The collector's silences, and on each alert its rule's labels and
    // the silence that covered it; NULL for alerts stored before.
    (4, silences::MIGRATION),
];

const SCHEMA: &str = "
CREATE TABLE agents (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- The peer address and version of its latest connection.
    address TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '',
    boot TEXT NOT NULL DEFAULT '',
    -- Its interface addresses per VRF (JSON), from hello and heartbeats.
    addresses TEXT NOT NULL DEFAULT '[]',
    -- The collector's clock: when anything last arrived from it.
    last_seen_ms INTEGER NOT NULL DEFAULT 0,
    -- The agent's clock: its newest event.
    last_ts_ms INTEGER
);
CREATE TABLE boots (
    id INTEGER PRIMARY KEY,
    agent_id INTEGER NOT NULL,
    boot TEXT NOT NULL,
    -- The highest seq stored; what `welcome` answers.
    last_seq INTEGER NOT NULL DEFAULT 0,
    last_ms INTEGER NOT NULL,
    UNIQUE (agent_id, boot)
);
-- Every event as received, appended in arrival order (so ids grow with
-- received_ms, which retention relies on). The UNIQUE index is what makes a
-- resent event harmless: INSERT OR IGNORE stores it once.
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    boot_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    type TEXT NOT NULL,
    line TEXT NOT NULL,
    UNIQUE (boot_id, seq)
);
-- Each interface with its last timeline segment (the open one).
CREATE TABLE interfaces (
    id INTEGER PRIMARY KEY,
    agent_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    n INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    state INTEGER NOT NULL,
    prior INTEGER NOT NULL,
    down_before_ms INTEGER NOT NULL,
    unknown_before_ms INTEGER NOT NULL,
    outages INTEGER NOT NULL,
    -- When the current outage began, for the down_seconds of the next up.
    down_since_ms INTEGER,
    UNIQUE (agent_id, name)
);
-- Every segment, keyed so the one in force at any time is one seek away.
-- n orders segments that start in the same millisecond.
CREATE TABLE segments (
    iface_id INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    n INTEGER NOT NULL,
    state INTEGER NOT NULL,
    prior INTEGER NOT NULL,
    down_before_ms INTEGER NOT NULL,
    unknown_before_ms INTEGER NOT NULL,
    outages INTEGER NOT NULL,
    PRIMARY KEY (iface_id, start_ms, n)
) WITHOUT ROWID;
-- Keyed by time, so what changed since a time is one range read.
CREATE TABLE link_changes (
    at_ms INTEGER NOT NULL,
    -- The link event's events.id.
    event_id INTEGER NOT NULL,
    iface_id INTEGER NOT NULL,
    state INTEGER NOT NULL,
    -- On an up: how long the outage it ends lasted.
    down_ms INTEGER,
    PRIMARY KEY (at_ms, event_id)
) WITHOUT ROWID;
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    agent_id INTEGER NOT NULL,
    boot_id INTEGER NOT NULL,
    interface TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    expr TEXT NOT NULL,
    value REAL,
    threshold REAL NOT NULL,
    message TEXT NOT NULL,
    -- Null when only the resolution was received (the firing was lost).
    fired_at_ms INTEGER,
    resolved_at_ms INTEGER,
    resolved_value REAL,
    resolved_message TEXT,
    -- agent | restart (a new boot began) | refired
    resolved_by TEXT
);
-- An alert is active after a time when it is open or resolved after it, so
-- these two partial indexes answer every list; a firing alert touches only
-- the first, a resolution moves it to the second.
CREATE INDEX alerts_open ON alerts (agent_id) WHERE resolved_at_ms IS NULL;
CREATE INDEX alerts_resolved ON alerts (resolved_at_ms) WHERE resolved_at_ms IS NOT NULL;
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the store {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "no store at {path}; start `hopwatch-collector run` with this data_dir first, or pass the config that names the right one with -c"
    )]
    Missing { path: String },
    #[error(
        "the store {path} has schema version {found}, newer than this collector's {SCHEMA_VERSION}; run a newer hopwatch-collector"
    )]
    TooNew { path: String, found: i64 },
    #[error(
        "the store {path} has schema version {found}, older than this collector's {SCHEMA_VERSION}; start this hopwatch-collector (`run`) once on it to upgrade it, then ask again"
    )]
    TooOld { path: String, found: i64 },
    #[error("cannot open the store's WAL {path} to sync it: {source}")]
    Wal {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a store thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("store query failed: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("PostgreSQL store: {}", postgres::connect::reason(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Pg(#[from] postgres::PgError),
    #[error("store query answered no row: {0}")]
    NoRow(String),
}

/// Where the store lives.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_FILE)
}

/// The file a running collector holds a shared lock on, so that the shell
/// commands, which read the store directly, can tell whether anything keeps
/// it current.
pub const LOCK_FILE: &str = "collector.lock";

/// Takes the running collector's lock on `data_dir`, held until dropped.
pub fn hold_lock(data_dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, StoreError> {
    let path = data_dir.join(LOCK_FILE);
    let fail = |source| StoreError::DataDir {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(fail)?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockShared)
        .map_err(|(_, errno)| fail(errno.into()))
}

/// Whether a collector is running on `data_dir` (holds its lock).
pub fn collector_running(data_dir: &Path) -> bool {
    let Ok(file) = std::fs::File::open(data_dir.join(LOCK_FILE)) else {
        return false;
    };
    matches!(
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock),
        Err((_, nix::errno::Errno::EWOULDBLOCK))
    )
}

/// Opens (creating if need be) the store for writing, with the schema and
/// the durability settings.
pub fn open_writer(data_dir: &Path) -> Result<Connection, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
        path: data_dir.display().to_string(),
        source,
    })?;
    let path = db_path(data_dir);
    let open_error = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    // One thread uses this connection, so SQLite's own per-call locking is
    // pure cost.
    let db = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error)?;
    // WAL: readers (the API, the shell commands) never block the writer nor
    // it them. synchronous=NORMAL with WAL: a COMMIT writes its frames to
    // the WAL without waiting for the disk, and checkpoints still sync. That
    // alone could lose the last commits in a power cut, after the agent was
    // told they were stored and dropped them from its spool; so no ack goes
    // out before the writer's sync thread has fsynced the WAL behind the
    // batch (see `writer::sync::Syncer`). Acknowledged events are then as
    // durable as with synchronous=FULL, and the writer commits the next batch
    // while the disk flushes this one instead of waiting in every COMMIT.
    db.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_error)?;
    db.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_error)?;
    db.pragma_update(None, "busy_timeout", 5000)
        .map_err(open_error)?;
    // 64 MiB of page cache keeps the indexes' hot pages in memory.
    db.pragma_update(None, "cache_size", -65_536)
        .map_err(open_error)?;
    db.pragma_update(None, "temp_store", "MEMORY")
        .map_err(open_error)?;
    // Checkpoints run on a thread of their own ([`Checkpointer`]) rather
    // than inside the writer's commits.
    db.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(open_error)?;
    // Under a sustained load the WAL grows past what each checkpoint folds
    // in; once it is reset, it is cut back to this.
    db.pragma_update(None, "journal_size_limit", 128 << 20)
        .map_err(open_error)?;
    let version: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(open_error)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: version,
        });
    }
    if version == 0 {
        db.execute_batch(&format!("BEGIN; {SCHEMA} PRAGMA user_version = 1; COMMIT;"))
            .map_err(open_error)?;
    }
    for (to, step) in MIGRATIONS.iter().filter(|(to, _)| *to > version.max(1)) {
        db.execute_batch(&format!(
            "BEGIN; {step} PRAGMA user_version = {to}; COMMIT;"
        ))
        .map_err(open_error)?;
    }
    Ok(db)
}

/// Opens the store for reading; it must exist.
pub fn open_reader(data_dir: &Path) -> Result<Connection, StoreError> {
    let path = db_path(data_dir);
    if !path.exists() {
        return Err(StoreError::Missing {
            path: path.display().to_string(),
        });
    }
    let open_error = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let db = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error)?;
    db.pragma_update(None, "busy_timeout", 5000)
        .map_err(open_error)?;
    let version: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(open_error)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: version,
        });
    }
    if version < SCHEMA_VERSION {
        return Err(StoreError::TooOld {
            path: path.display().to_string(),
            found: version,
        });
    }
    Ok(db)
}

/// Copies the WAL into the database file in the background, so the writer's
/// commits only ever append to the WAL. Stops when dropped.
#[derive(Debug)]
pub struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the WAL is checkpointed.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

impl Checkpointer {
    pub fn start(data_dir: &Path) -> Result<Checkpointer, StoreError> {
        let path = db_path(data_dir);
        let db = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.pragma_update(None, "busy_timeout", 5000)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    // PASSIVE never waits for the writer nor makes it wait.
                    if let Err(error) =
                        db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(%error, "Checkpointing the WAL failed; retrying.");
                    }
                }
                // At exit the writer is done: fold the whole WAL in and
                // empty it.
                let _ = db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            })
            .map_err(StoreError::Thread)?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Read connections for the API, reused across requests.
#[derive(Debug)]
pub struct ReadPool {
    data_dir: PathBuf,
    // Taken and put back around a blocking query; never held across an
    // await.
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub fn new(data_dir: &Path) -> ReadPool {
        ReadPool {
            data_dir: data_dir.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The directory of the store it reads.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Runs `f` with a read connection, on the calling (blocking) thread.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let taken = self.idle.lock().expect("read pool poisoned").pop();
        let db = match taken {
            Some(db) => db,
            None => open_reader(&self.data_dir)?,
        };
        let result = f(&db);
        let mut idle = self.idle.lock().expect("read pool poisoned");
        if idle.len() < 8 {
            idle.push(db);
        }
        result
    }
}

/// Milliseconds since the epoch, the store's time unit.
pub fn millis(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The inverse of [`millis`].
pub fn system_time(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// The last millisecond RFC 3339's four-digit year can write.
const LAST_RFC3339_MS: i64 = 253_402_300_799_999;

/// RFC 3339 with milliseconds, as events carry. Times outside 1970 to 9999
/// are written as the nearest end: the formatter panics before the epoch,
/// and no stored or parsed time lies outside.
pub fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(system_time(ms.clamp(0, LAST_RFC3339_MS))).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_of_the_first_schema_is_upgraded_by_the_writer_and_named_by_readers() {
        let dir = std::env::temp_dir().join(format!("hopwatch-store-v1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let v1 = Connection::open(db_path(&dir)).unwrap();
        v1.execute_batch(&format!("{SCHEMA} PRAGMA user_version = 1;"))
            .unwrap();
        v1.execute("INSERT INTO agents (name) VALUES ('leaf1')", [])
            .unwrap();
        v1.execute_batch(
            "INSERT INTO interfaces (agent_id, name, n, start_ms, state, prior, down_before_ms,
                                     unknown_before_ms, outages)
             VALUES (1, 'swp1', 0, 0, 1, 1, 0, 0, 1);
             INSERT INTO segments VALUES (1, 0, 0, 1, 1, 0, 0, 1);",
        )
        .unwrap();
        drop(v1);
        let error = open_reader(&dir).unwrap_err().to_string();
        assert!(
            error.contains("older") && error.contains("start this hopwatch-collector"),
            "{error}"
        );
        let db = open_writer(&dir).unwrap();
        let version: i64 = db
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let stopped: Option<i64> = db
            .query_row(
                "SELECT stopped_ms FROM agents WHERE name = 'leaf1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stopped, None, "rows kept, the new column empty");
        // Segments stored before `admin_down` existed had none of it.
        let admin_down: (i64, i64) = db
            .query_row(
                "SELECT i.admin_down_before_ms, s.admin_down_before_ms
                 FROM interfaces i JOIN segments s ON s.iface_id = i.id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(admin_down, (0, 0));
        drop(db);
        open_writer(&dir).unwrap();
        open_reader(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn creates_the_schema_once_and_reopens() {
        let dir = std::env::temp_dir().join(format!("hopwatch-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = open_writer(&dir).unwrap();
        let mode: String = db
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = db
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1, "NORMAL, with the writer's own fsync before acks");
        drop(db);
        open_writer(&dir).unwrap();
        let reader = open_reader(&dir).unwrap();
        let n: i64 = reader
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(open_reader(&dir), Err(StoreError::Missing { .. })));
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(millis(system_time(1_700_000_000_123)), 1_700_000_000_123);
        assert_eq!(rfc3339(-1), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(i64::MIN), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
    }
}
