//! The PostgreSQL store: the same tables and answers as the SQLite one
//! (see [`super`]), shared by every collector pointed at one database.
//! Chosen with `[store] kind = "postgres"`; SQLite stays the default.
//!
//! What sharing changes: several collectors write at once, so an agent's
//! derived rows (its boots, interface timelines and open alerts) are
//! changed only under a lock on its `agents` row, and a writer whose copy
//! of them is older than the row's `writes` counter reads them again
//! first; the schema is migrated under an advisory lock, so collectors
//! starting together upgrade it once.

pub mod collectors;
pub mod connect;
pub mod listen;
pub mod schema;
pub mod writer;

pub use connect::{Pg, PgError};

// The tests' throwaway cluster, shared with the integration tests.
#[cfg(test)]
#[path = "../../../tests/pgcluster.rs"]
pub mod pgcluster;
#[cfg(test)]
pub mod testing;

use std::path::PathBuf;
use std::time::Duration;

/// `[store] kind = "postgres"`: where the shared database is and how to
/// reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresSettings {
    /// Where the connection URL comes from: written in the config (`url`)
    /// or read at start from a file only the collector can read
    /// (`url_file`), so the password need not sit in collector.toml.
    pub url: UrlSource,
    /// Connections kept open at most (the writer's, the API's reads, the
    /// listener's).
    pub pool_size: usize,
    /// TLS to the database, as libpq's `sslmode` names it.
    pub ssl_mode: SslMode,
    /// The CA that signs the database's certificate, for `verify-ca` and
    /// `verify-full`; the system's roots when absent.
    pub ca_file: Option<PathBuf>,
    /// How long connecting may take before it counts as a failure.
    pub connect_timeout: Duration,
}

/// Where the PostgreSQL URL is kept.
#[derive(Debug, Clone, PartialEq)]
pub enum UrlSource {
    Inline(hopwatch_wire::Secret),
    File(PathBuf),
}

/// libpq's `sslmode`, the subset a collector honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP (or a unix socket).
    Disable,
    /// TLS, the certificate not checked.
    Require,
    /// TLS, the certificate signed by the CA.
    VerifyCa,
    /// TLS, the certificate signed by the CA and naming the host.
    VerifyFull,
}
