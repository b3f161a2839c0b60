//! The writer against a real store: deduplication, failed transactions,
//! timelines, alerts, a restart of the writer and pruning. Each scenario
//! runs on both stores ([`each_store`]): SQLite's writer and PostgreSQL's
//! are driven alike and read back with one query text through [`Sql`].

use super::*;
use crate::store::postgres::testing::{TestStore, each_store};
use crate::store::postgres::writer::PgWriter;
use crate::store::sql::Sql;
use crate::store::{open_writer, query};
use hopwatch_wire::event::{
    Alert, AlertState, Heartbeat, InterfaceStatus, Link, LinkState, Severity,
};

/// A writer on either store, driven as the writer thread drives it.
pub(crate) struct Both {
    store: TestStore,
    writer: Either,
    pub(crate) metrics: Arc<Metrics>,
}

enum Either {
    Sqlite(Writer),
    Postgres(PgWriter),
}

impl Both {
    pub(crate) fn new(store: TestStore) -> Both {
        Both::publishing(store, None)
    }

    /// A writer that publishes durable events on `published`.
    fn publishing(store: TestStore, published: Option<Published>) -> Both {
        // Shown with a failing assertion, to say on which store it failed.
        eprintln!("the writer on {}", store.kind());
        let metrics = Arc::new(Metrics::default());
        let writer = Both::start(&store, &metrics, published);
        Both {
            store,
            writer,
            metrics,
        }
    }

    fn start(store: &TestStore, metrics: &Arc<Metrics>, published: Option<Published>) -> Either {
        let settings = WriterSettings {
            heartbeat_timeout: Duration::from_secs(30),
            retain: Duration::from_secs(86_400),
        };
        match store.pg() {
            Some(pg) => Either::Postgres(PgWriter::new(
                pg.clone(),
                Arc::clone(metrics),
                published,
                settings,
            )),
            None => Either::Sqlite(
                Writer::new(
                    open_writer(store.data_dir()).unwrap(),
                    Arc::new(Committed::default()),
                    Arc::clone(metrics),
                    published,
                    settings,
                )
                .unwrap(),
            ),
        }
    }

    /// A new writer on the same store, as after a restart of the collector:
    /// it knows only what it reads back.
    fn restart(&mut self) {
        self.writer = Both::start(&self.store, &self.metrics, None);
    }

    /// "sqlite" or "postgres", for a failing assertion to say which.
    pub(crate) fn kind(&self) -> &'static str {
        self.store.kind()
    }

    pub(crate) fn apply(&mut self, batch: Vec<Request>, now_ms: i64) {
        match &mut self.writer {
            Either::Sqlite(w) => w.apply(batch, now_ms),
            Either::Postgres(w) => w.apply(batch, now_ms),
        }
    }

    /// Sends one request and returns its ack.
    pub(crate) fn send(&mut self, events: Vec<Incoming>, now_s: i64) -> Ack {
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.apply(
            vec![Request::Events { events, reply: tx }],
            T0 + now_s * 1000,
        );
        rx.try_recv().unwrap()
    }

    /// Runs the retention pass asked for to its end.
    fn finish_prune(&mut self) {
        match &mut self.writer {
            Either::Sqlite(w) => {
                while w.prune.is_some() {
                    w.prune_step();
                }
            }
            Either::Postgres(w) => w.finish_prune(),
        }
    }

    /// Asks the store, on a connection of its own.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&dyn Sql) -> T) -> T {
        self.store.with(f)
    }

    /// The one integer `sql` answers.
    pub(crate) fn count(&self, sql: &str) -> i64 {
        self.read(|db| db.one_i64(sql, &[]))
            .unwrap_or_else(|e| panic!("{sql} on {}: {e}", self.kind()))
    }

    /// What SQLite's writer tells `welcome` (a shared store is asked
    /// instead).
    fn committed(&self) -> Option<&Committed> {
        match &self.writer {
            Either::Sqlite(w) => Some(&w.committed),
            Either::Postgres(_) => None,
        }
    }

    /// The last seq the store holds for `agent`'s `boot`.
    fn last_seq(&self, agent: &str, boot: &str) -> i64 {
        self.read(|db| {
            db.one_i64(
                "SELECT b.last_seq FROM boots b JOIN agents a ON a.id = b.agent_id
                 WHERE a.name = $1 AND b.boot = $2",
                &[&agent, &boot],
            )
        })
        .unwrap()
    }
}

pub(crate) struct Fixture {
    dir: std::path::PathBuf,
    pub(crate) writer: Writer,
}

impl Fixture {
    /// The store the writer writes, for reading it back.
    pub(crate) fn db(&self) -> &rusqlite::Connection {
        &self.writer.db
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SQLite's writer alone, for the PostgreSQL writer's tests to compare
/// rows with.
pub(crate) fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("hopwatch-writer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = open_writer(&dir).unwrap();
    let writer = Writer::new(
        db,
        Arc::new(Committed::default()),
        Arc::new(Metrics::default()),
        None,
        WriterSettings {
            heartbeat_timeout: Duration::from_secs(30),
            retain: Duration::from_secs(86_400),
        },
    )
    .unwrap();
    Fixture { dir, writer }
}

pub(crate) const T0: i64 = 1_700_000_000_000;

pub(crate) fn incoming(agent: &str, boot: &str, seq: u64, at_s: i64, body: Body) -> Incoming {
    let ts_ms = T0 + at_s * 1000;
    let event = Event {
        v: 1,
        agent: agent.into(),
        boot: boot.into(),
        seq,
        ts: crate::store::rfc3339(ts_ms),
        body,
    };
    Incoming {
        v: 1,
        agent: agent.into(),
        boot: boot.into(),
        seq,
        ts: event.ts.clone(),
        ts_ms,
        kind: event.kind().into(),
        line: event.to_json(),
        body: Some(event.body),
    }
}

pub(crate) fn link(interface: &str, up: bool) -> Body {
    Body::Link(Link {
        interface: interface.into(),
        state: LinkState::from_up(up),
        previous: LinkState::from_up(!up),
        carrier_changes: 1,
        oper_state: if up { "up" } else { "down" }.into(),
        message: String::new(),
        admin: None,
        reason: None,
    })
}

pub(crate) fn heartbeat(interfaces: &[(&str, bool)]) -> Body {
    Body::Heartbeat(Heartbeat {
        uptime_s: 1,
        interfaces: interfaces
            .iter()
            .map(|(n, up)| InterfaceStatus {
                name: (*n).into(),
                state: LinkState::from_up(*up),
            })
            .collect(),
        addresses: vec![],
        spool_depth: 0,
        events_dropped: 0,
        firing: 0,
    })
}

pub(crate) fn alert(state: AlertState) -> Body {
    Body::Alert(Alert {
        state,
        rule: "tx-errors".into(),
        severity: Severity::Critical,
        interface: "swp1".into(),
        expr: "increase(tx_errors[5s]) > 3".into(),
        value: Some(7.0),
        threshold: 3.0,
        message: "swp1 tx_errors increased by 7 in 5s (threshold 3)".into(),
        labels: Default::default(),
        silenced: false,
        silence: None,
    })
}

/// Sends one request and returns its ack.
pub(crate) fn send(w: &mut Writer, events: Vec<Incoming>, now_s: i64) -> Ack {
    let (tx, mut rx) = mpsc::unbounded_channel();
    w.apply(
        vec![Request::Events { events, reply: tx }],
        T0 + now_s * 1000,
    );
    rx.try_recv().unwrap()
}

#[test]
fn duplicates_are_stored_once_and_still_acknowledged() {
    each_store(|store| {
        let w = &mut Both::new(store);
        let batch = |seqs: std::ops::Range<u64>| {
            seqs.map(|s| incoming("leaf1", "b1", s, s as i64, heartbeat(&[])))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            w.send(batch(1..6), 10),
            Ack::Stored(vec![("b1".into(), 5)], Spent::default())
        );
        assert_eq!(
            w.send(batch(3..9), 10),
            Ack::Stored(vec![("b1".into(), 8)], Spent::default())
        );
        assert_eq!(w.count("SELECT count(*) FROM events"), 8);
        assert_eq!(w.last_seq("leaf1", "b1"), 8);
        if let Some(committed) = w.committed() {
            assert_eq!(committed.last_seq("leaf1", "b1"), 8);
        }
        assert_eq!(w.metrics.duplicates.load(Ordering::Relaxed), 3);
        assert_eq!(w.count("SELECT last_seq FROM boots"), 8);
    });
}

#[test]
fn a_failed_transaction_acknowledges_nothing() {
    each_store(|store| {
        let w = &mut Both::new(store);
        w.send(vec![incoming("leaf1", "b1", 1, 1, heartbeat(&[]))], 1);
        // Make the next insert fail inside the transaction.
        let (fail, stop): (&[&str], &str) = match w.kind() {
            "sqlite" => (
                &["CREATE TRIGGER no BEFORE INSERT ON events \
                   BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"],
                "DROP TRIGGER no",
            ),
            _ => (
                &[
                    "CREATE FUNCTION no() RETURNS trigger LANGUAGE plpgsql \
                     AS 'BEGIN RAISE EXCEPTION ''disk on fire''; END'",
                    "CREATE TRIGGER no BEFORE INSERT ON events \
                     FOR EACH ROW EXECUTE FUNCTION no()",
                ],
                "DROP TRIGGER no ON events",
            ),
        };
        for sql in fail {
            w.read(|db| db.execute(sql, &[])).unwrap();
        }
        match w.send(vec![incoming("leaf1", "b1", 2, 2, heartbeat(&[]))], 2) {
            Ack::Failed(reason) => assert!(reason.contains("disk on fire"), "{reason}"),
            other => panic!("{}: {other:?}", w.kind()),
        }
        assert_eq!(w.last_seq("leaf1", "b1"), 1);
        if let Some(committed) = w.committed() {
            assert_eq!(committed.last_seq("leaf1", "b1"), 1);
        }
        w.read(|db| db.execute(stop, &[])).unwrap();
        assert_eq!(
            w.send(vec![incoming("leaf1", "b1", 2, 2, heartbeat(&[]))], 3),
            Ack::Stored(vec![("b1".into(), 2)], Spent::default())
        );
        assert_eq!(w.count("SELECT count(*) FROM events"), 2);
    });
}

#[test]
fn link_events_build_the_timeline_and_changes() {
    each_store(|store| {
        let w = &mut Both::new(store);
        w.send(
            vec![
                incoming(
                    "leaf1",
                    "b1",
                    1,
                    0,
                    heartbeat(&[("swp1", true), ("swp2", true)]),
                ),
                incoming("leaf1", "b1", 2, 5, link("swp1", false)),
                incoming("leaf1", "b1", 3, 8, link("swp1", true)),
                incoming(
                    "leaf1",
                    "b1",
                    4,
                    10,
                    heartbeat(&[("swp1", true), ("swp2", true)]),
                ),
            ],
            10,
        );
        let now = T0 + 12_000;
        let changes = w.read(|db| query::changes(db, T0, None)).unwrap();
        assert_eq!(changes.went_down.len(), 1);
        assert_eq!(changes.came_up.len(), 1);
        assert_eq!(changes.came_up[0].down_seconds, Some(3.0));
        let dt = w
            .read(|db| {
                query::downtime(
                    db,
                    &query::DowntimeQuery::since(T0),
                    now,
                    Duration::from_secs(30),
                    &crate::store::since::SinceCache::none(),
                )
            })
            .unwrap();
        let swp1 = dt
            .interfaces
            .iter()
            .find(|i| i.interface == "swp1")
            .unwrap();
        assert_eq!(swp1.down_seconds, 3.0);
        assert_eq!(swp1.down_count, 1);
        assert!(!swp1.currently_down);
        assert_eq!(dt.total_down_seconds, 3.0);
    });
}

#[test]
fn a_gap_in_event_times_is_unknown() {
    each_store(|store| {
        let w = &mut Both::new(store);
        w.send(
            vec![
                incoming("leaf1", "b1", 1, 0, heartbeat(&[("swp1", true)])),
                incoming("leaf1", "b1", 2, 10, link("swp1", false)),
                incoming("leaf1", "b1", 3, 20, heartbeat(&[("swp1", false)])),
            ],
            20,
        );
        // Silent from 20 s to 120 s, then it speaks: still down.
        w.send(
            vec![incoming(
                "leaf1",
                "b1",
                4,
                120,
                heartbeat(&[("swp1", false)]),
            )],
            120,
        );
        let now = T0 + 130_000;
        let dt = w
            .read(|db| {
                query::downtime(
                    db,
                    &query::DowntimeQuery::since(T0),
                    now,
                    Duration::from_secs(30),
                    &crate::store::since::SinceCache::none(),
                )
            })
            .unwrap();
        let swp1 = &dt.interfaces[0];
        assert_eq!(swp1.down_seconds, 20.0, "10..20 and 120..130");
        assert_eq!(swp1.unknown_seconds, 100.0);
        assert_eq!(swp1.down_count, 1);
        assert!(swp1.currently_down);
    });
}

/// An alert fired and resolved in one batch (on PostgreSQL its row goes in
/// resolved) reads exactly as one whose resolution came in a later batch
/// (its row updated), a resolution stamped before its firing included.
#[test]
fn an_alert_resolved_in_the_batch_that_fired_it_reads_as_one_resolved_later() {
    each_store(|store| {
        let events = || {
            let mut resolved = alert(AlertState::Resolved);
            if let Body::Alert(a) = &mut resolved {
                a.value = Some(1.0);
                a.message = "swp1 tx_errors back to 1".into();
            }
            vec![
                incoming("leaf1", "b1", 1, 10, alert(AlertState::Firing)),
                incoming("leaf1", "b1", 2, 15, resolved.clone()),
                incoming("leaf1", "b1", 3, 20, alert(AlertState::Firing)),
                // A clock stepped back: resolved before it fired.
                incoming("leaf1", "b1", 4, 18, resolved),
            ]
        };
        let all = |w: &Both| {
            w.read(|db| query::alerts(db, &query::AlertQuery::all_since(T0)))
                .unwrap()
        };
        let other = match store.kind() {
            "postgres" => TestStore::postgres(),
            _ => TestStore::sqlite(),
        };
        let mut together = Both::new(store);
        together.send(events(), 30);
        let together = all(&together);
        assert_eq!(together.len(), 2, "{together:?}");
        assert!(
            together.iter().all(|a| a.state == "resolved"),
            "{together:?}"
        );
        let mut apart = Both::new(other);
        for e in events() {
            let at = (e.ts_ms - T0) / 1000;
            apart.send(vec![e], at);
        }
        assert_eq!(together, all(&apart));
    });
}

#[test]
fn alerts_fire_resolve_and_end_with_a_restart() {
    each_store(|store| {
        let w = &mut Both::new(store);
        w.send(
            vec![
                incoming("leaf1", "b1", 1, 0, alert(AlertState::Firing)),
                incoming("leaf1", "b1", 2, 5, alert(AlertState::Resolved)),
                incoming("leaf1", "b1", 3, 6, alert(AlertState::Firing)),
            ],
            6,
        );
        let firing = w
            .read(|db| query::alerts(db, &query::AlertQuery::firing()))
            .unwrap();
        assert_eq!(firing.len(), 1);
        assert_eq!(
            firing[0].fired_at.as_deref(),
            Some("2023-11-14T22:13:26.000Z")
        );
        let all = w
            .read(|db| query::alerts(db, &query::AlertQuery::all_since(T0)))
            .unwrap();
        assert_eq!(all.len(), 2);
        let resolved = all.iter().find(|a| a.state == "resolved").unwrap();
        assert_eq!(
            resolved.resolved_at.as_deref(),
            Some("2023-11-14T22:13:25.000Z")
        );
        // The agent restarts: its new boot ends what the old one left firing.
        w.send(vec![incoming("leaf1", "b2", 1, 20, heartbeat(&[]))], 20);
        assert!(
            w.read(|db| query::alerts(db, &query::AlertQuery::firing()))
                .unwrap()
                .is_empty()
        );
        let all = w
            .read(|db| query::alerts(db, &query::AlertQuery::all_since(T0)))
            .unwrap();
        assert_eq!(
            all.iter()
                .filter(|a| a.resolved_by.as_deref() == Some("restart"))
                .count(),
            1
        );
    });
}

#[test]
fn state_survives_a_restart_of_the_writer() {
    each_store(|store| {
        let w = &mut Both::new(store);
        w.send(
            vec![
                incoming("leaf1", "b1", 1, 0, heartbeat(&[("swp1", true)])),
                incoming("leaf1", "b1", 2, 10, link("swp1", false)),
                incoming("leaf1", "b1", 3, 11, alert(AlertState::Firing)),
            ],
            11,
        );
        w.restart();
        if let Some(committed) = w.committed() {
            assert_eq!(committed.last_seq("leaf1", "b1"), 3);
        }
        // The seq already stored is a duplicate to the new writer too.
        assert_eq!(
            w.send(
                vec![
                    incoming("leaf1", "b1", 3, 11, alert(AlertState::Firing)),
                    incoming("leaf1", "b1", 4, 15, link("swp1", true)),
                    incoming("leaf1", "b1", 5, 16, alert(AlertState::Resolved)),
                ],
                16,
            ),
            Ack::Stored(vec![("b1".into(), 5)], Spent::default())
        );
        assert_eq!(w.count("SELECT count(*) FROM events"), 5);
        let changes = w.read(|db| query::changes(db, T0, None)).unwrap();
        assert_eq!(changes.came_up[0].down_seconds, Some(5.0));
        assert!(
            w.read(|db| query::alerts(db, &query::AlertQuery::firing()))
                .unwrap()
                .is_empty()
        );
    });
}

#[test]
fn pruning_deletes_what_is_older_than_the_retention() {
    each_store(|store| {
        let w = &mut Both::new(store);
        let day = 86_400;
        w.send(
            vec![
                incoming("leaf1", "b1", 1, 0, heartbeat(&[("swp1", true)])),
                incoming("leaf1", "b1", 2, 10, link("swp1", false)),
                incoming("leaf1", "b1", 3, 20, link("swp1", true)),
            ],
            20,
        );
        w.send(
            vec![
                incoming("leaf1", "b1", 4, 2 * day, link("swp1", false)),
                incoming("leaf1", "b1", 5, 2 * day + 5, link("swp1", true)),
            ],
            2 * day + 5,
        );
        w.apply(vec![Request::Prune], T0 + (2 * day + 10) * 1000);
        w.finish_prune();
        assert_eq!(w.count("SELECT count(*) FROM events"), 2);
        assert_eq!(w.count("SELECT count(*) FROM link_changes"), 2);
        // The segment in force at the cutoff stays, so downtime over the
        // retained window still adds up.
        let dt = w
            .read(|db| {
                query::downtime(
                    db,
                    &query::DowntimeQuery::since(T0 + day * 1000),
                    T0 + (2 * day + 10) * 1000,
                    Duration::from_secs(30 * day as u64),
                    &crate::store::since::SinceCache::none(),
                )
            })
            .unwrap();
        assert_eq!(dt.interfaces[0].down_seconds, 5.0);
        assert_eq!(dt.interfaces[0].down_count, 1);
    });
}

#[test]
fn durable_events_are_published_once_and_overflow_is_dropped_and_counted() {
    each_store(|store| {
        let (published, forwarder) = std::sync::mpsc::sync_channel(2);
        let w = &mut Both::publishing(store, Some(published));
        let events = |seqs: std::ops::RangeInclusive<u64>| {
            seqs.map(|s| incoming("leaf1", "b1", s, s as i64, link("swp1", s % 2 == 0)))
                .collect::<Vec<_>>()
        };
        w.send(events(1..=2), 2);
        // A resend is stored once and so published once.
        w.send(events(1..=2), 3);
        let got: Vec<u64> = forwarder.try_iter().map(|e| e.seq).collect();
        assert_eq!(got, [1, 2]);
        assert_eq!(w.metrics.forward_dropped.load(Ordering::Relaxed), 0);
        // Nobody reads: two wait, the three after them are dropped and counted,
        // and the store acknowledges all of them all the same.
        assert_eq!(
            w.send(events(3..=7), 7),
            Ack::Stored(vec![("b1".into(), 7)], Spent::default())
        );
        assert_eq!(w.metrics.forward_dropped.load(Ordering::Relaxed), 3);
        let got: Vec<u64> = forwarder.try_iter().map(|e| e.seq).collect();
        assert_eq!(got, [3, 4], "the oldest are kept");
        drop(forwarder);
        w.send(events(8..=8), 8);
        assert_eq!(w.metrics.forward_dropped.load(Ordering::Relaxed), 4);
        assert_eq!(w.count("SELECT count(*) FROM events"), 8);
    });
}

#[test]
fn a_heartbeat_resent_from_before_the_hello_keeps_the_hello_s_addresses() {
    each_store(|store| {
        use hopwatch_wire::event::{InterfaceAddress, VrfAddresses};
        use hopwatch_wire::wire::{Hello, HelloTag, PROTOCOL_VERSION};
        let w = &mut Both::new(store);
        let on = |address: &str| {
            vec![VrfAddresses {
                vrf: "default".into(),
                addresses: vec![InterfaceAddress {
                    interface: "swp1".into(),
                    address: address.into(),
                }],
            }]
        };
        let with = |body: Body, addresses: Vec<VrfAddresses>| match body {
            Body::Heartbeat(hb) => Body::Heartbeat(Heartbeat { addresses, ..hb }),
            other => other,
        };
        let stored = |w: &Both| -> String {
            w.read(|db| {
                db.row(
                    "SELECT addresses FROM agents WHERE name = 'leaf1'",
                    &[],
                    |r| r.text(0),
                )
            })
            .unwrap()
            .unwrap()
        };
        let hello = Hello {
            kind: HelloTag::Hello,
            protocol: PROTOCOL_VERSION,
            token: String::new(),
            agent: "leaf1".into(),
            boot: "b".into(),
            boots: vec!["b".into()],
            version: "test".into(),
            addresses: on("10.0.0.2/31"),
            now: Some(crate::store::rfc3339(T0 + 100_000)),
        };
        w.apply(
            vec![Request::Hello {
                hello: Box::new(hello),
                address: "127.0.0.1".into(),
            }],
            T0 + 100_000,
        );
        assert!(stored(w).contains("10.0.0.2/31"));
        // Spooled while the collector was away: stamped before the hello.
        let old = with(heartbeat(&[("swp1", true)]), on("10.0.0.8/31"));
        w.send(vec![incoming("leaf1", "b", 1, 50, old)], 101);
        assert!(stored(w).contains("10.0.0.2/31"), "{}", stored(w));
        // A live heartbeat after the hello renumbers the switch.
        let new = with(heartbeat(&[("swp1", true)]), on("10.0.0.4/31"));
        w.send(vec![incoming("leaf1", "b", 2, 102, new)], 102);
        assert!(stored(w).contains("10.0.0.4/31"), "{}", stored(w));
    });
}

/// A silence rides in a batch beside events: it is answered after the
/// commit, and one that fails (an id already stored) fails alone, while the
/// events of the batch are stored and acknowledged.
#[test]
fn a_failed_silence_fails_alone_and_the_batch_s_events_commit() {
    each_store(|store| {
        use crate::store::silences::{Change, Stored};
        let w = &mut Both::new(store);
        let stored = Stored {
            silence: hopwatch_wire::silence::Silence {
                id: "c-0123456789abcdef".into(),
                interface: "swp*".into(),
                rule: None,
                agent: None,
                starts_at: crate::store::rfc3339(T0),
                ends_at: crate::store::rfc3339(T0 + 3_600_000),
                reason: "r".into(),
                author: "alice".into(),
            },
            starts_ms: T0,
            ends_ms: T0 + 3_600_000,
        };
        let add = || Change::Add {
            silence: stored.clone(),
            now_ms: T0,
            forget_before_ms: 0,
        };
        let (first, mut first_answer) = tokio::sync::oneshot::channel();
        let (again, mut again_answer) = tokio::sync::oneshot::channel();
        let (tx, mut rx) = mpsc::unbounded_channel();
        w.apply(
            vec![
                Request::Silence {
                    change: add(),
                    reply: first,
                },
                Request::Events {
                    events: vec![incoming("leaf1", "b1", 1, 1, heartbeat(&[]))],
                    reply: tx,
                },
                Request::Silence {
                    change: add(),
                    reply: again,
                },
            ],
            T0 + 2_000,
        );
        assert_eq!(first_answer.try_recv().unwrap(), Ok(true));
        let error = again_answer.try_recv().unwrap().unwrap_err();
        // "UNIQUE constraint failed" or "violates unique constraint".
        assert!(error.to_lowercase().contains("unique"), "{error}");
        assert!(matches!(rx.try_recv().unwrap(), Ack::Stored(..)));
        assert_eq!(w.count("SELECT count(*) FROM events"), 1);
        assert_eq!(w.count("SELECT count(*) FROM silences"), 1);
    });
}
