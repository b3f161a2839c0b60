//! The integration suite (see `tests.rs`) on a PostgreSQL store: every
//! collector a test starts is given its own fresh database on the test
//! process's throwaway cluster (`pgcluster`), so the API, the CLI, the web
//! page and the fabric trace are held to the same answers on both stores.
//! Needs root and Debian's postgresql: outside CI the binary skips with the
//! reason printed; under `CI=true` it fails instead.

/// The store every collector of this binary is given.
pub const STORE: util::Store = util::Store::Postgres;

include!("suite.rs");
