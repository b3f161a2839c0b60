//! One fleet's rows, written in the SQL both stores accept, and a way to
//! ask the same question of a SQLite store and a PostgreSQL database that
//! hold them, so a test can demand the same answer from both.
//!
//! The rows are chosen for what the two stores could answer differently:
//! names whose byte order differs from a language's (upper case, `_`,
//! `-`, a non-ASCII letter), NULLs in every nullable column the questions
//! read, reals that do not round-trip through a decimal carelessly, two
//! segments in one millisecond, and agents online, stale and stopped.

use crate::store::postgres::{PostgresSettings, SslMode, UrlSource, pgcluster};
use crate::store::sql::{PgSql, Sql};
use crate::store::{ReadPool, Reads, StoreError, open_writer};
use crate::timeline::{Segment, State};
use hopwatch_wire::event::{Alert, AlertState, Body, Event, Severity};
use std::sync::Arc;
use std::time::Duration;

/// The time the questions are asked at.
pub const NOW: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// The heartbeat timeout the questions are asked with.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `fill` and then `ask` on a fresh SQLite store and on a fresh
/// PostgreSQL database (named after `test`), and answers what `ask` answered
/// on each; PostgreSQL's is `None` when no cluster can start here (outside
/// CI, with the reason printed).
pub fn on_both<T>(
    test: &str,
    fill: impl Fn(&dyn Sql) -> Result<(), StoreError>,
    ask: impl Fn(&Arc<Reads>) -> T,
) -> (T, Option<T>) {
    let sqlite = {
        let dir = std::env::temp_dir().join(format!(
            "hopwatch-reads-{test}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        fill(&open_writer(&dir).unwrap()).unwrap();
        let answer = ask(&Arc::new(Reads::Sqlite(ReadPool::new(&dir))));
        std::fs::remove_dir_all(&dir).unwrap();
        answer
    };
    if !pgcluster::can_use(test) {
        return (sqlite, None);
    }
    let settings = PostgresSettings {
        url: UrlSource::Inline(hopwatch_wire::Secret::new(
            pgcluster::shared().database(test),
        )),
        pool_size: 4,
        ssl_mode: SslMode::Disable,
        ca_file: None,
        connect_timeout: Duration::from_secs(10),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let pg = runtime
        .block_on(crate::store::postgres::Pg::open(&settings))
        .unwrap();
    {
        let client = runtime.block_on(pg.client()).unwrap();
        fill(&PgSql {
            client: &client,
            runtime: runtime.handle(),
        })
        .unwrap();
    }
    let postgres = ask(&Arc::new(Reads::Postgres(pg)));
    (sqlite, Some(postgres))
}

/// Runs `check` on a connection that may write, to a fresh SQLite store
/// and to a fresh PostgreSQL database (named after `test`; skipped outside
/// CI, with the reason printed, when no cluster can start here).
pub fn on_both_writing(test: &str, check: impl Fn(&dyn Sql)) {
    on_both(
        test,
        |db| {
            check(db);
            Ok(())
        },
        |_| (),
    );
}

/// Asks the same question of both stores holding [`fleet`]'s rows and
/// demands one answer, compared as its `Debug` text (which writes every
/// real exactly); answers SQLite's.
pub fn same<T: std::fmt::Debug>(test: &str, ask: impl Fn(&Arc<Reads>) -> T) -> T {
    let (sqlite, postgres) = on_both(test, fleet, ask);
    if let Some(postgres) = postgres {
        assert_eq!(
            format!("{sqlite:#?}"),
            format!("{postgres:#?}"),
            "{test}: SQLite answered left, PostgreSQL right"
        );
    }
    sqlite
}

/// One interface's history: `(start, n, state)` from its first segment.
type History<'a> = &'a [(i64, i64, State)];

/// The fleet: five agents, six interfaces with their timelines and link
/// changes, alerts firing and resolved, silences, and the events the open
/// alerts were fired by.
pub fn fleet(db: &dyn Sql) -> Result<(), StoreError> {
    let addresses =
        r#"[{"vrf":"default","addresses":[{"interface":"swp1","address":"10.1.0.1/31"}]}]"#;
    // id, name, last seen, last event, stopped, addresses.
    type AgentRow<'a> = (i64, &'a str, i64, Option<i64>, Option<i64>, &'a str);
    let agents: [AgentRow; 5] = [
        (1, "leaf1", NOW - 1_000, Some(NOW - 1_200), None, addresses),
        (2, "Leaf2", NOW - HOUR, Some(NOW - HOUR), None, "[]"),
        (
            3,
            "leaf-ä",
            NOW - 2 * HOUR,
            Some(NOW - 2 * HOUR),
            Some(NOW - 2 * HOUR),
            "[]",
        ),
        (4, "_spine", NOW - 500, None, None, "[]"),
        (5, "broken", NOW - 500, None, None, "not json"),
    ];
    for (id, name, seen, ts, stopped, addresses) in agents {
        db.execute(
            "INSERT INTO agents (id, name, address, version, boot, addresses, last_seen_ms,
                                 last_ts_ms, stopped_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &id,
                &name,
                &format!("192.0.2.{id}:40000"),
                &"0.9.1",
                &format!("boot-{id}"),
                &addresses,
                &seen,
                &ts,
                &stopped,
            ],
        )?;
        db.execute(
            "INSERT INTO boots (id, agent_id, boot, last_seq, last_ms) VALUES ($1, $1, $2, 100, $3)",
            &[&id, &format!("boot-{id}"), &seen],
        )?;
    }
    use State::{AdminDown, Down, Unknown, Up};
    let interfaces: [(i64, i64, &str, History); 6] = [
        (
            1,
            1,
            "swp1",
            &[
                (NOW - 40 * DAY, 0, Up),
                (NOW - 20 * DAY, 0, Down),
                (NOW - 20 * DAY + HOUR, 0, Up),
                (NOW - 2 * HOUR, 0, Down),
                (NOW - 2 * HOUR + 61_234, 0, Up),
                (NOW - 30 * MIN, 0, AdminDown),
                (NOW - 20 * MIN, 0, Up),
            ],
        ),
        (2, 1, "swp10", &[(NOW - 10 * DAY, 0, Down)]),
        (
            3,
            1,
            "Ethernet1/7",
            &[
                (NOW - DAY, 0, Up),
                (NOW - 5 * MIN, 0, Down),
                (NOW - 5 * MIN, 1, Up),
                (NOW - 3 * MIN, 0, Down),
            ],
        ),
        (
            4,
            2,
            "swp2",
            &[
                (NOW - 3 * DAY, 0, Up),
                (NOW - 2 * DAY, 0, Unknown),
                (NOW - 2 * DAY + 100, 0, Down),
            ],
        ),
        (
            5,
            3,
            "eth1",
            &[(NOW - 100 * DAY, 0, Up), (NOW - 50 * DAY, 0, Down)],
        ),
        (6, 1, "Swp1", &[(NOW - 5 * HOUR, 0, Up)]),
    ];
    let mut event_id = 1000_i64;
    for (id, agent, name, history) in interfaces {
        let (at, _, state) = history[0];
        let mut segment = Segment::first(at, state);
        let mut down_since = None;
        for (i, &(at, n, state)) in history.iter().enumerate() {
            if i > 0 {
                let before = segment;
                segment = segment.next(at, state);
                event_id += 1;
                let down_ms = (state == Up)
                    .then(|| down_since.map(|s: i64| at - s))
                    .flatten();
                db.execute(
                    "INSERT INTO link_changes (at_ms, event_id, iface_id, state, down_ms)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&at, &event_id, &id, &state.code(), &down_ms],
                )?;
                if state == Down && before.state != Down {
                    down_since = Some(at);
                } else if state != Down {
                    down_since = None;
                }
            }
            db.execute(
                "INSERT INTO segments (iface_id, start_ms, n, state, prior, down_before_ms,
                                       unknown_before_ms, outages, admin_down_before_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &id,
                    &segment.start_ms,
                    &n,
                    &segment.state.code(),
                    &segment.prior.code(),
                    &segment.down_before_ms,
                    &segment.unknown_before_ms,
                    &segment.outages,
                    &segment.admin_down_before_ms,
                ],
            )?;
        }
        let n = history.last().map(|h| h.1).unwrap_or(0);
        db.execute(
            "INSERT INTO interfaces (id, agent_id, name, n, start_ms, state, prior, down_before_ms,
                                     unknown_before_ms, outages, down_since_ms,
                                     admin_down_before_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &id,
                &agent,
                &name,
                &n,
                &segment.start_ms,
                &segment.state.code(),
                &segment.prior.code(),
                &segment.down_before_ms,
                &segment.unknown_before_ms,
                &segment.outages,
                &down_since,
                &segment.admin_down_before_ms,
            ],
        )?;
    }
    // id, agent, interface, rule, value, threshold, fired, resolved,
    // resolved value, labels, silence.
    type AlertRow<'a> = (
        i64,
        i64,
        &'a str,
        &'a str,
        Option<f64>,
        f64,
        Option<i64>,
        Option<i64>,
        Option<f64>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let alerts: [AlertRow; 7] = [
        (
            1,
            1,
            "swp1",
            "tx-errors",
            Some(7.0),
            3.0,
            Some(NOW - 10 * MIN),
            None,
            None,
            None,
            None,
        ),
        (
            2,
            1,
            "Ethernet1/7",
            "crc",
            None,
            0.1,
            Some(NOW - 2 * MIN),
            None,
            None,
            Some(r#"{"team":"net","zone":"ä"}"#),
            Some("c-0000000000000001"),
        ),
        (
            3,
            2,
            "swp2",
            "util",
            Some(0.30000000000000004),
            1e-300,
            Some(NOW - DAY),
            Some(NOW - HOUR),
            Some(-0.0),
            None,
            None,
        ),
        (
            4,
            1,
            "swp1",
            "Tx-errors",
            Some(1e300),
            2.5,
            None,
            Some(NOW - 3 * MIN),
            Some(123.456),
            None,
            None,
        ),
        (
            5,
            3,
            "eth1",
            "crc",
            Some(f64::MIN_POSITIVE),
            1.0,
            Some(NOW - 3 * DAY),
            None,
            None,
            None,
            None,
        ),
        (
            6,
            1,
            "swp10",
            "_down",
            Some(1.0),
            1.0,
            Some(NOW - 10 * MIN),
            None,
            None,
            None,
            None,
        ),
        (
            7,
            2,
            "swp2",
            "util",
            Some(2.0),
            1.0,
            Some(NOW - 40 * DAY),
            Some(NOW - 39 * DAY),
            Some(0.5),
            None,
            None,
        ),
    ];
    for (
        id,
        agent,
        interface,
        rule,
        value,
        threshold,
        fired,
        resolved,
        resolved_value,
        labels,
        silence,
    ) in alerts
    {
        db.execute(
            "INSERT INTO alerts (id, agent_id, boot_id, interface, rule, severity, expr, value,
                                 threshold, message, fired_at_ms, resolved_at_ms, resolved_value,
                                 resolved_message, resolved_by, labels, silence)
             VALUES ($1, $2, $2, $3, $4, 'critical', 'x > 1', $5, $6, $7, $8, $9, $10, $11, $12,
                     $13, $14)",
            &[
                &id,
                &agent,
                &interface,
                &rule,
                &value,
                &threshold,
                &format!("{rule} on {interface}"),
                &fired,
                &resolved,
                &resolved_value,
                &resolved.map(|_| format!("{rule} cleared")),
                &resolved.map(|_| "agent"),
                &labels,
                &silence,
            ],
        )?;
    }
    // The firing events of the open alerts of leaf1's boot, among others:
    // the newest firing of `tx-errors` on swp1 is the one to find.
    let alert_event = |seq: u64, rule: &str, interface: &str, state: AlertState| Event {
        v: hopwatch_wire::event::SCHEMA_VERSION,
        agent: "leaf1".into(),
        boot: "boot-1".into(),
        seq,
        ts: crate::store::rfc3339(NOW - 10 * MIN),
        body: Body::Alert(Alert {
            state,
            rule: rule.into(),
            severity: Severity::Critical,
            interface: interface.into(),
            expr: "x > 1".into(),
            value: Some(seq as f64),
            threshold: 3.0,
            message: format!("fired as seq {seq}"),
            labels: [("team".to_string(), "net".to_string())].into(),
            silenced: false,
            silence: None,
        }),
    };
    let mut events = vec![
        alert_event(1, "tx-errors", "swp1", AlertState::Firing),
        alert_event(2, "tx-errors", "swp1", AlertState::Resolved),
        alert_event(3, "tx-errors", "swp1", AlertState::Firing),
    ];
    // More than a page of other alerts after it.
    for seq in 4..150 {
        events.push(alert_event(seq, "crc", "Ethernet1/7", AlertState::Resolved));
    }
    for (i, event) in events.iter().enumerate() {
        db.execute(
            "INSERT INTO events (id, boot_id, seq, ts_ms, received_ms, type, line)
             VALUES ($1, 1, $2, $3, $3, $4, $5)",
            &[
                &(i as i64 + 1),
                &(event.seq as i64),
                &(NOW - 10 * MIN),
                &event.kind(),
                &event.to_json(),
            ],
        )?;
    }
    // id, agent, rule, starts, ends, removed.
    type SilenceRow<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        i64,
        i64,
        Option<i64>,
    );
    let silences: [SilenceRow; 4] = [
        (
            "c-0000000000000001",
            None,
            Some("crc"),
            NOW - HOUR,
            NOW + HOUR,
            None,
        ),
        (
            "c-0000000000000002",
            Some("leaf*"),
            None,
            NOW + MIN,
            NOW + 2 * MIN,
            None,
        ),
        (
            "c-000000000000000A",
            Some("Leaf2"),
            None,
            NOW - DAY,
            NOW - HOUR,
            Some(NOW - HOUR),
        ),
        (
            "c-0000000000000003",
            None,
            None,
            NOW - 2 * DAY,
            NOW - DAY,
            None,
        ),
    ];
    for (id, agent, rule, starts, ends, removed) in silences {
        db.execute(
            "INSERT INTO silences (id, agent, interface, rule, starts_at_ms, ends_at_ms, reason,
                                   author, created_ms, removed_ms, removed_by)
             VALUES ($1, $2, 'Eth*', $3, $4, $5, 'maintenance', 'alice', $4, $6, $7)",
            &[
                &id,
                &agent,
                &rule,
                &starts,
                &ends,
                &removed,
                &removed.map(|_| "bob"),
            ],
        )?;
    }
    Ok(())
}
