// The integration suite's module list, compiled into two test binaries:
// `tests` (the SQLite store) and `postgres` (a PostgreSQL store on a
// throwaway cluster), which differ only in `crate::STORE`. Included, not
// a module, so that each binary holds the whole suite.

mod util;

mod agentport;
// A real Alertmanager started by the test.
mod alertmanager;
mod api;
mod bounds;
// Several collectors on one PostgreSQL store.
mod collectors;
// The web page in a real headless Chromium.
mod browser;
mod crash;
mod e2e;
// Collectors and their PostgreSQL store crashed mid-stream.
mod failover_store;
mod fabric_board;
mod health;
mod identity;
mod ingest;
mod liveness;
mod metrics;
#[path = "../../agent/tests/netns.rs"]
mod netns;
// A throwaway PostgreSQL cluster.
mod pgcluster;
mod shell_store;
mod shutdown;
mod silences;
mod starve;
// [store] through check-config.
mod store_config;
// The agent tests' rsyslogd helper, shared rather than copied.
#[allow(dead_code)]
#[path = "../../agent/tests/rsyslog.rs"]
mod rsyslog;
mod syslog;
mod terminal;
mod tls;
mod trace_api;
mod trace_cli;
mod trace_fakes;
// A real HTTP server in the test as the webhook.
mod web_data;
mod web_serve;
mod webhook;
