//! The PostgreSQL writer against a real server: it derives the rows
//! SQLite's writer derives, row for row; two collectors taking turns with
//! one agent keep its timeline whole; a transaction cut off acknowledges
//! nothing, and the resend stores each event once.

use super::*;
use crate::store::postgres::{PostgresSettings, SslMode, UrlSource, pgcluster};
use crate::store::sql::Sql;
use crate::store::writer::tests::{T0, alert, fixture, heartbeat, incoming, link};
use crate::store::writer::{Incoming, MAX_BATCH_EVENTS};
use hopwatch_wire::Secret;
use hopwatch_wire::event::{AlertState, Body};
use std::time::{Duration, Instant};

/// A database of the test cluster, the runtime its pools live on, and the
/// settings that reach it; None (the reason printed) where no cluster can
/// run, which CI does not allow.
fn database(name: &str) -> Option<(tokio::runtime::Runtime, Pg, PostgresSettings)> {
    if !pgcluster::can_use(name) {
        return None;
    }
    Some(open(pgcluster::shared().database(name)))
}

fn open(url: String) -> (tokio::runtime::Runtime, Pg, PostgresSettings) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let settings = PostgresSettings {
        url: UrlSource::Inline(Secret::new(url)),
        pool_size: 4,
        ssl_mode: SslMode::Disable,
        ca_file: None,
        connect_timeout: Duration::from_secs(10),
    };
    let pg = runtime.block_on(Pg::open(&settings)).unwrap();
    (runtime, pg, settings)
}

fn settings() -> WriterSettings {
    WriterSettings {
        heartbeat_timeout: Duration::from_secs(30),
        retain: Duration::from_secs(86_400),
    }
}

fn writer(pg: &Pg) -> PgWriter {
    PgWriter::new(pg.clone(), Arc::new(Metrics::default()), None, settings())
}

fn send(w: &mut PgWriter, events: Vec<Incoming>, now_s: i64) -> Ack {
    let (tx, mut rx) = mpsc::unbounded_channel();
    w.apply(
        vec![Request::Events { events, reply: tx }],
        T0 + now_s * 1000,
    );
    rx.try_recv().unwrap()
}

/// The batches of one agent's life: a link flapping, a silence longer than
/// the heartbeat timeout in the middle of an outage, alerts firing,
/// resolving, refiring and resolved without a firing, a resend, and a
/// restart that ends what the old boot left firing.
fn script() -> Vec<(Vec<Incoming>, i64)> {
    let hb = |seq, at, up: bool| {
        incoming(
            "leaf1",
            "b1",
            seq,
            at,
            heartbeat(&[("swp1", up), ("swp2", true)]),
        )
    };
    let mut resolved_only = alert(AlertState::Resolved);
    if let Body::Alert(a) = &mut resolved_only {
        a.rule = "rx-drops".into();
    }
    vec![
        (vec![hb(1, 0, true)], 0),
        (
            vec![
                incoming("leaf1", "b1", 2, 5, link("swp1", false)),
                incoming("leaf1", "b1", 3, 6, alert(AlertState::Firing)),
            ],
            6,
        ),
        (vec![hb(4, 10, false)], 10),
        // Silent from 10 s to 100 s while down.
        (vec![hb(5, 100, false)], 100),
        (
            vec![
                incoming("leaf1", "b1", 6, 104, link("swp1", true)),
                incoming("leaf1", "b1", 7, 105, alert(AlertState::Resolved)),
                incoming("leaf1", "b1", 8, 106, alert(AlertState::Firing)),
                incoming("leaf1", "b1", 9, 107, alert(AlertState::Firing)),
                incoming("leaf1", "b1", 10, 108, resolved_only),
            ],
            108,
        ),
        // A resend of what is stored, and one new event.
        (
            vec![
                incoming("leaf1", "b1", 6, 104, link("swp1", true)),
                incoming("leaf1", "b1", 11, 110, link("swp2", false)),
            ],
            110,
        ),
        (
            vec![incoming(
                "leaf1",
                "b2",
                1,
                130,
                heartbeat(&[("swp1", true), ("swp2", false)]),
            )],
            130,
        ),
        (
            vec![incoming("leaf1", "b2", 2, 140, link("swp2", true))],
            140,
        ),
    ]
}

/// A table read with one query text on either store, each row as text.
fn table(db: &dyn Sql, sql: &str, kinds: &str) -> Vec<String> {
    db.rows(sql, &[], |r| {
        let mut cells = Vec::new();
        for (i, kind) in kinds.chars().enumerate() {
            cells.push(match kind {
                'i' => format!("{:?}", r.opt_i64(i)?),
                'f' => format!("{:?}", r.opt_f64(i)?),
                _ => format!("{:?}", r.opt_text(i)?),
            });
        }
        Ok(cells.join(" "))
    })
    .unwrap()
}

/// Everything the writer derives, in a form both stores answer alike (ids
/// left out: they need not agree).
fn derived(db: &dyn Sql) -> Vec<Vec<String>> {
    vec![
        table(
            db,
            "SELECT a.name, a.last_ts_ms, a.stopped_ms, a.boot FROM agents a ORDER BY a.name",
            "tiit",
        ),
        table(
            db,
            "SELECT a.name, b.boot, b.last_seq FROM boots b JOIN agents a ON a.id = b.agent_id
             ORDER BY a.name, b.boot",
            "tti",
        ),
        table(
            db,
            "SELECT e.seq, e.ts_ms, e.type, b.boot FROM events e JOIN boots b ON b.id = e.boot_id
             ORDER BY b.boot, e.seq",
            "iitt",
        ),
        table(
            db,
            "SELECT name, n, start_ms, state, prior, down_before_ms, unknown_before_ms, outages,
                    down_since_ms, admin_down_before_ms
             FROM interfaces ORDER BY name",
            "tiiiiiiiii",
        ),
        table(
            db,
            "SELECT i.name, s.start_ms, s.n, s.state, s.prior, s.down_before_ms,
                    s.unknown_before_ms, s.outages, s.admin_down_before_ms
             FROM segments s JOIN interfaces i ON i.id = s.iface_id
             ORDER BY i.name, s.start_ms, s.n",
            "tiiiiiiii",
        ),
        table(
            db,
            "SELECT c.at_ms, e.seq, i.name, c.state, c.down_ms
             FROM link_changes c JOIN events e ON e.id = c.event_id
                  JOIN interfaces i ON i.id = c.iface_id
             ORDER BY c.at_ms, e.seq",
            "iitii",
        ),
        table(
            db,
            "SELECT rule, interface, fired_at_ms, resolved_at_ms, resolved_by, value,
                    resolved_value, message, resolved_message, silence, b.boot
             FROM alerts JOIN boots b ON b.id = alerts.boot_id
             ORDER BY COALESCE(fired_at_ms, resolved_at_ms), COALESCE(resolved_at_ms, -1), rule",
            "ttiitfftttt",
        ),
    ]
}

/// Reads the PostgreSQL store on a client of its own.
fn derived_pg(runtime: &tokio::runtime::Runtime, pg: &Pg) -> Vec<Vec<String>> {
    let client = runtime.block_on(pg.client()).unwrap();
    let sql = PgSql {
        client: &client,
        runtime: runtime.handle(),
    };
    derived(&sql)
}

/// What SQLite's writer derives from `batches`.
fn derived_sqlite(name: &str, batches: &[(Vec<Incoming>, i64)]) -> Vec<Vec<String>> {
    let mut f = fixture(name);
    for (events, now_s) in batches {
        crate::store::writer::tests::send(&mut f.writer, events.clone(), *now_s);
    }
    derived(f.db())
}

fn admin(runtime: &tokio::runtime::Runtime, pg: &Pg, sql: &str) {
    let client = runtime.block_on(pg.client()).unwrap();
    runtime.block_on(client.batch_execute(sql)).unwrap();
}

#[test]
fn root_pg_writer_derives_the_rows_sqlite_s_writer_derives() {
    let Some((runtime, pg, _)) = database("writer_same_rows") else {
        return;
    };
    let mut w = writer(&pg);
    let mut acks = Vec::new();
    for (events, now_s) in script() {
        acks.push(send(&mut w, events, now_s));
    }
    let mut f = fixture("pg-same-rows");
    let sqlite_acks: Vec<Ack> = script()
        .into_iter()
        .map(|(events, now_s)| crate::store::writer::tests::send(&mut f.writer, events, now_s))
        .collect();
    assert_eq!(acks, sqlite_acks);
    let expected = derived(f.db());
    assert_eq!(derived_pg(&runtime, &pg), expected);
    // The script does reach every kind of derived row.
    for (i, rows) in expected.iter().enumerate() {
        assert!(!rows.is_empty(), "table {i} is empty");
    }
    assert_eq!(w.metrics.duplicates.load(Ordering::Relaxed), 1);
}

/// An agent moving between collectors mid-outage: two writers (two
/// collectors' pools on one database) take its batches in turn, each
/// knowing nothing of the other but the store.
#[test]
fn root_pg_two_writers_taking_turns_derive_what_one_writer_derives() {
    let Some((runtime, pg_a, settings)) = database("writer_two_writers") else {
        return;
    };
    let pg_b = runtime.block_on(Pg::open(&settings)).unwrap();
    let (mut a, mut b) = (writer(&pg_a), writer(&pg_b));
    for (i, (events, now_s)) in script().into_iter().enumerate() {
        let w = if i % 2 == 0 { &mut a } else { &mut b };
        assert!(matches!(send(w, events, now_s), Ack::Stored(..)));
    }
    let expected = derived_sqlite("pg-two-writers", &script());
    assert_eq!(derived_pg(&runtime, &pg_a), expected);
}

/// The writer's connection dies inside a batch's transaction, after its
/// events went in: nothing of the batch is acknowledged, the writer goes
/// on with a new connection, and the agent's resend is stored once, its
/// derived rows too.
#[test]
fn root_pg_a_transaction_cut_off_acknowledges_nothing_and_the_resend_is_stored_once() {
    let Some((runtime, pg, _)) = database("writer_cut_off") else {
        return;
    };
    let batches = script();
    let mut w = writer(&pg);
    for (events, now_s) in &batches[..3] {
        assert!(matches!(
            send(&mut w, events.clone(), *now_s),
            Ack::Stored(..)
        ));
    }
    // The backend ends itself when the batch writes its first segment.
    admin(
        &runtime,
        &pg,
        "CREATE FUNCTION cut_off() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$;
         CREATE TRIGGER cut_off BEFORE INSERT ON segments FOR EACH ROW EXECUTE FUNCTION cut_off();",
    );
    let (events, now_s) = &batches[3];
    match send(&mut w, events.clone(), *now_s) {
        Ack::Failed(reason) => assert!(reason.contains("could not store"), "{reason}"),
        other => panic!("acknowledged a batch that did not commit: {other:?}"),
    }
    assert_eq!(w.metrics.store.failed_in_a_row(), 1);
    admin(&runtime, &pg, "DROP TRIGGER cut_off ON segments");
    // The agent resends from its last ack, then goes on.
    for (events, now_s) in &batches[3..] {
        assert!(matches!(
            send(&mut w, events.clone(), *now_s),
            Ack::Stored(..)
        ));
    }
    assert_eq!(w.metrics.store.failed_in_a_row(), 0);
    assert_eq!(
        derived_pg(&runtime, &pg),
        derived_sqlite("pg-cut-off", &batches)
    );
}

/// An agent that moves to another collector is welcomed with what the
/// first one stored: the second has not seen the agent at all.
#[test]
fn root_pg_welcome_tells_what_any_collector_stored() {
    let Some((runtime, pg_a, settings)) = database("writer_welcome") else {
        return;
    };
    let mut a = writer(&pg_a);
    for (events, now_s) in script() {
        send(&mut a, events, now_s);
    }
    let pg_b = runtime.block_on(Pg::open(&settings)).unwrap();
    let b = crate::store::writer::Committed::shared(pg_b);
    let boots = ["b1".to_string(), "b2".to_string(), "b3".to_string()];
    let welcome = runtime.block_on(b.welcome("leaf1", &boots)).unwrap();
    assert_eq!(
        welcome.into_iter().collect::<Vec<_>>(),
        [
            ("b1".to_string(), 11),
            ("b2".to_string(), 2),
            ("b3".to_string(), 0)
        ]
    );
}

fn count(runtime: &tokio::runtime::Runtime, pg: &Pg, sql: &str) -> i64 {
    let client = runtime.block_on(pg.client()).unwrap();
    runtime.block_on(client.query_one(sql, &[])).unwrap().get(0)
}

/// Retention on a shared store: the collector holding the pruning lock
/// deletes what is older than the retention, by received time; another
/// asked to prune meanwhile skips its pass, and may prune once the lock is
/// released.
#[test]
fn root_pg_pruning_runs_on_one_collector_at_a_time() {
    let Some((runtime, pg_a, settings)) = database("writer_prune") else {
        return;
    };
    let pg_b = runtime.block_on(Pg::open(&settings)).unwrap();
    let (mut a, mut b) = (writer(&pg_a), writer(&pg_b));
    let day = 86_400;
    send(
        &mut a,
        vec![
            incoming("leaf1", "b1", 1, 0, heartbeat(&[("swp1", true)])),
            incoming("leaf1", "b1", 2, 10, link("swp1", false)),
            incoming("leaf1", "b1", 3, 20, link("swp1", true)),
        ],
        20,
    );
    send(
        &mut b,
        vec![
            incoming("leaf1", "b1", 4, 2 * day, link("swp1", false)),
            incoming("leaf1", "b1", 5, 2 * day + 5, link("swp1", true)),
        ],
        2 * day + 5,
    );
    let now = T0 + (2 * day + 10) * 1000;
    b.apply(vec![Request::Prune], now);
    assert!(b.prune.is_some(), "the first to ask prunes");
    a.apply(vec![Request::Prune], now);
    assert!(a.prune.is_none(), "another collector is pruning");
    while b.prune.is_some() {
        b.prune_step();
    }
    assert_eq!(count(&runtime, &pg_a, "SELECT count(*) FROM events"), 2);
    assert_eq!(
        count(&runtime, &pg_a, "SELECT count(*) FROM link_changes"),
        2
    );
    // The segment in force at the cutoff stays.
    assert_eq!(
        count(
            &runtime,
            &pg_a,
            &format!(
                "SELECT count(*) FROM segments WHERE start_ms < {}",
                T0 + day * 1000
            )
        ),
        1
    );
    assert!(b.metrics.pruned.load(Ordering::Relaxed) >= 4);
    // Released: the next pass may run anywhere.
    a.apply(vec![Request::Prune], now);
    assert!(a.prune.is_some());
    // The agent goes on after pruning, through either collector.
    assert!(matches!(
        send(
            &mut b,
            vec![incoming(
                "leaf1",
                "b1",
                6,
                2 * day + 20,
                link("swp1", false)
            )],
            2 * day + 20
        ),
        Ack::Stored(..)
    ));
}

/// Events per second through each store's writer, batches as full as the
/// writer takes them, a mix of link, heartbeat and alert events from 100
/// agents. Prints figures, asserts none; run by hand:
/// `cargo test --release -p hopwatch-collector --lib root_pg_writer_ingest_rate -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, run by hand"]
fn root_pg_writer_ingest_rate() {
    if !pgcluster::can_use("root_pg_writer_ingest_rate") {
        return;
    }
    // A cluster of its own, which syncs its commits as SQLite's writer does.
    let cluster = pgcluster::Cluster::own();
    let (_runtime, pg, _) = open(cluster.database("rate"));
    let (agents, per_agent) = (100_u64, 2_000_u64);
    let batches: Vec<Vec<Incoming>> = (1..=per_agent)
        .step_by(100)
        .map(|first| {
            let mut batch = Vec::new();
            for agent in 0..agents {
                for seq in first..first + 100 {
                    let name = format!("leaf{agent}");
                    let at = seq as i64;
                    let body = match seq % 10 {
                        0 => alert(if seq % 20 == 0 {
                            AlertState::Firing
                        } else {
                            AlertState::Resolved
                        }),
                        1..=3 => link(&format!("swp{}", seq % 8), seq % 2 == 0),
                        _ => heartbeat(&[("swp1", true), ("swp2", true)]),
                    };
                    batch.push(incoming(&name, "b1", seq, at, body));
                }
            }
            batch
        })
        .collect();
    let total = agents * per_agent;
    let mut w = writer(&pg);
    let started = Instant::now();
    for (i, batch) in batches.iter().enumerate() {
        for chunk in batch.chunks(MAX_BATCH_EVENTS) {
            assert!(matches!(
                send(&mut w, chunk.to_vec(), i as i64 * 100 + 100),
                Ack::Stored(..)
            ));
        }
    }
    let pg_rate = total as f64 / started.elapsed().as_secs_f64();
    let mut f = fixture("pg-rate");
    let started = Instant::now();
    for (i, batch) in batches.iter().enumerate() {
        for chunk in batch.chunks(MAX_BATCH_EVENTS) {
            crate::store::writer::tests::send(&mut f.writer, chunk.to_vec(), i as i64 * 100 + 100);
        }
    }
    let sqlite_rate = total as f64 / started.elapsed().as_secs_f64();
    println!(
        "writer alone, {total} events from {agents} agents, batches of up to {MAX_BATCH_EVENTS}: PostgreSQL {pg_rate:.0} events/s, SQLite {sqlite_rate:.0} events/s"
    );
}
