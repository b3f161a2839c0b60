//! Integration tests: the real binary, real /proc and /sys inside network
//! namespaces, a real rsyslogd. Tests that need root say so in their name and
//! skip with a reason outside CI.

mod util;

mod collector_output;
mod config;
mod e2e;
mod exporter;
mod fabric;
mod faults;
mod lab;
mod multipath;
mod netns;
mod nxapi;
mod packaging;
// Real agents failing over between collectors on one PostgreSQL store.
mod pg_failover;
// The collector's tests' throwaway PostgreSQL cluster, shared rather than
// copied.
#[path = "../../collector/tests/pgcluster.rs"]
mod pgcluster;
mod rsyslog;
mod rule_options;
mod rules_expr;
mod silences;
mod syslog;
mod terminal;
mod trace;
mod trace_paths;
// The collector's web page in a real browser, on the fabric lab.
mod web;
