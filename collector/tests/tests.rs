//! Integration tests on the default SQLite store: the collector in-process
//! on real listeners or as the real binary, a real SQLite file in a temp
//! dir, fake agents speaking the wire protocol over TCP, real `hopwatch`
//! agents in network namespaces, and a real rsyslogd. Tests that need root
//! say so in their name (`root_netns`) and skip with a reason outside CI.
//! The same suite runs on PostgreSQL as the `postgres` test binary.

/// The store every collector of this binary is given.
pub const STORE: util::Store = util::Store::Sqlite;

include!("suite.rs");
