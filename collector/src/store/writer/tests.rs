//! The writer against a real store: deduplication, failed transactions,
//! timelines, alerts, a restart of the writer and pruning.

use super::*;
use crate::store::{open_writer, query};
use hopwatch_wire::event::{
    Alert, AlertState, Heartbeat, InterfaceStatus, Link, LinkState, Severity,
};

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

pub(crate) fn fixture(name: &str) -> Fixture {
    fixture_publishing(name, None)
}

/// A writer that publishes durable events on `published`.
fn fixture_publishing(name: &str, published: Option<Published>) -> Fixture {
    let dir = std::env::temp_dir().join(format!("hopwatch-writer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = open_writer(&dir).unwrap();
    let writer = Writer::new(
        db,
        Arc::new(Committed::default()),
        Arc::new(Metrics::default()),
        published,
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

pub(super) fn count(w: &Writer, sql: &str) -> i64 {
    w.db.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn duplicates_are_stored_once_and_still_acknowledged() {
    let mut f = fixture("dup");
    let w = &mut f.writer;
    let batch = |seqs: std::ops::Range<u64>| {
        seqs.map(|s| incoming("leaf1", "b1", s, s as i64, heartbeat(&[])))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        send(w, batch(1..6), 10),
        Ack::Stored(vec![("b1".into(), 5)], Spent::default())
    );
    assert_eq!(
        send(w, batch(3..9), 10),
        Ack::Stored(vec![("b1".into(), 8)], Spent::default())
    );
    assert_eq!(count(w, "SELECT count(*) FROM events"), 8);
    assert_eq!(w.committed.last_seq("leaf1", "b1"), 8);
    assert_eq!(w.metrics.duplicates.load(Ordering::Relaxed), 3);
    assert_eq!(count(w, "SELECT last_seq FROM boots"), 8);
}

#[test]
fn a_failed_transaction_acknowledges_nothing() {
    let mut f = fixture("fail");
    let w = &mut f.writer;
    send(w, vec![incoming("leaf1", "b1", 1, 1, heartbeat(&[]))], 1);
    // Make the next insert fail inside the transaction.
    w.db.execute_batch(
        "CREATE TRIGGER no BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
    )
    .unwrap();
    match send(w, vec![incoming("leaf1", "b1", 2, 2, heartbeat(&[]))], 2) {
        Ack::Failed(reason) => assert!(reason.contains("disk on fire"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.committed.last_seq("leaf1", "b1"), 1);
    w.db.execute_batch("DROP TRIGGER no").unwrap();
    assert_eq!(
        send(w, vec![incoming("leaf1", "b1", 2, 2, heartbeat(&[]))], 3),
        Ack::Stored(vec![("b1".into(), 2)], Spent::default())
    );
    assert_eq!(count(w, "SELECT count(*) FROM events"), 2);
}

#[test]
fn link_events_build_the_timeline_and_changes() {
    let mut f = fixture("link");
    let w = &mut f.writer;
    send(
        w,
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
    let changes = query::changes(&w.db, T0, None).unwrap();
    assert_eq!(changes.went_down.len(), 1);
    assert_eq!(changes.came_up.len(), 1);
    assert_eq!(changes.came_up[0].down_seconds, Some(3.0));
    let dt = query::downtime(
        &w.db,
        &query::DowntimeQuery::since(T0),
        now,
        Duration::from_secs(30),
    )
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
}

#[test]
fn a_gap_in_event_times_is_unknown() {
    let mut f = fixture("gap");
    let w = &mut f.writer;
    send(
        w,
        vec![
            incoming("leaf1", "b1", 1, 0, heartbeat(&[("swp1", true)])),
            incoming("leaf1", "b1", 2, 10, link("swp1", false)),
            incoming("leaf1", "b1", 3, 20, heartbeat(&[("swp1", false)])),
        ],
        20,
    );
    // Silent from 20 s to 120 s, then it speaks: still down.
    send(
        w,
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
    let dt = query::downtime(
        &w.db,
        &query::DowntimeQuery::since(T0),
        now,
        Duration::from_secs(30),
    )
    .unwrap();
    let swp1 = &dt.interfaces[0];
    assert_eq!(swp1.down_seconds, 20.0, "10..20 and 120..130");
    assert_eq!(swp1.unknown_seconds, 100.0);
    assert_eq!(swp1.down_count, 1);
    assert!(swp1.currently_down);
}

#[test]
fn alerts_fire_resolve_and_end_with_a_restart() {
    let mut f = fixture("alerts");
    let w = &mut f.writer;
    send(
        w,
        vec![
            incoming("leaf1", "b1", 1, 0, alert(AlertState::Firing)),
            incoming("leaf1", "b1", 2, 5, alert(AlertState::Resolved)),
            incoming("leaf1", "b1", 3, 6, alert(AlertState::Firing)),
        ],
        6,
    );
    let firing = query::alerts(&w.db, &query::AlertQuery::firing()).unwrap();
    assert_eq!(firing.len(), 1);
    assert_eq!(
        firing[0].fired_at.as_deref(),
        Some("2023-11-14T22:13:26.000Z")
    );
    let all = query::alerts(&w.db, &query::AlertQuery::all_since(T0)).unwrap();
    assert_eq!(all.len(), 2);
    let resolved = all.iter().find(|a| a.state == "resolved").unwrap();
    assert_eq!(
        resolved.resolved_at.as_deref(),
        Some("2023-11-14T22:13:25.000Z")
    );
    // The agent restarts: its new boot ends what the old one left firing.
    send(w, vec![incoming("leaf1", "b2", 1, 20, heartbeat(&[]))], 20);
    assert!(
        query::alerts(&w.db, &query::AlertQuery::firing())
            .unwrap()
            .is_empty()
    );
    let all = query::alerts(&w.db, &query::AlertQuery::all_since(T0)).unwrap();
    assert_eq!(
        all.iter()
            .filter(|a| a.resolved_by.as_deref() == Some("restart"))
            .count(),
        1
    );
}

#[test]
fn state_survives_a_restart_of_the_writer() {
    let mut f = fixture("reload");
    send(
        &mut f.writer,
        vec![
            incoming("leaf1", "b1", 1, 0, heartbeat(&[("swp1", true)])),
            incoming("leaf1", "b1", 2, 10, link("swp1", false)),
            incoming("leaf1", "b1", 3, 11, alert(AlertState::Firing)),
        ],
        11,
    );
    let db = open_writer(&f.dir).unwrap();
    let committed = Arc::new(Committed::default());
    let mut w = Writer::new(
        db,
        committed.clone(),
        Arc::new(Metrics::default()),
        None,
        f.writer.settings,
    )
    .unwrap();
    assert_eq!(committed.last_seq("leaf1", "b1"), 3);
    send(
        &mut w,
        vec![
            incoming("leaf1", "b1", 4, 15, link("swp1", true)),
            incoming("leaf1", "b1", 5, 16, alert(AlertState::Resolved)),
        ],
        16,
    );
    let changes = query::changes(&w.db, T0, None).unwrap();
    assert_eq!(changes.came_up[0].down_seconds, Some(5.0));
    assert!(
        query::alerts(&w.db, &query::AlertQuery::firing())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn pruning_deletes_what_is_older_than_the_retention() {
    let mut f = fixture("prune");
    let w = &mut f.writer;
    let day = 86_400;
    send(
        w,
        vec![
            incoming("leaf1", "b1", 1, 0, heartbeat(&[("swp1", true)])),
            incoming("leaf1", "b1", 2, 10, link("swp1", false)),
            incoming("leaf1", "b1", 3, 20, link("swp1", true)),
        ],
        20,
    );
    send(
        w,
        vec![
            incoming("leaf1", "b1", 4, 2 * day, link("swp1", false)),
            incoming("leaf1", "b1", 5, 2 * day + 5, link("swp1", true)),
        ],
        2 * day + 5,
    );
    w.apply(vec![Request::Prune], T0 + (2 * day + 10) * 1000);
    while w.prune.is_some() {
        w.prune_step();
    }
    assert_eq!(count(w, "SELECT count(*) FROM events"), 2);
    assert_eq!(count(w, "SELECT count(*) FROM link_changes"), 2);
    // The segment in force at the cutoff stays, so downtime over the
    // retained window still adds up.
    let dt = query::downtime(
        &w.db,
        &query::DowntimeQuery::since(T0 + day * 1000),
        T0 + (2 * day + 10) * 1000,
        Duration::from_secs(30 * day as u64),
    )
    .unwrap();
    assert_eq!(dt.interfaces[0].down_seconds, 5.0);
    assert_eq!(dt.interfaces[0].down_count, 1);
}

#[test]
fn durable_events_are_published_once_and_overflow_is_dropped_and_counted() {
    let (published, forwarder) = std::sync::mpsc::sync_channel(2);
    let mut f = fixture_publishing("publish", Some(published));
    let w = &mut f.writer;
    let events = |seqs: std::ops::RangeInclusive<u64>| {
        seqs.map(|s| incoming("leaf1", "b1", s, s as i64, link("swp1", s % 2 == 0)))
            .collect::<Vec<_>>()
    };
    send(w, events(1..=2), 2);
    // A resend is stored once and so published once.
    send(w, events(1..=2), 3);
    let got: Vec<u64> = forwarder.try_iter().map(|e| e.seq).collect();
    assert_eq!(got, [1, 2]);
    assert_eq!(w.metrics.forward_dropped.load(Ordering::Relaxed), 0);
    // Nobody reads: two wait, the three after them are dropped and counted,
    // and the store acknowledges all of them all the same.
    assert_eq!(
        send(w, events(3..=7), 7),
        Ack::Stored(vec![("b1".into(), 7)], Spent::default())
    );
    assert_eq!(w.metrics.forward_dropped.load(Ordering::Relaxed), 3);
    let got: Vec<u64> = forwarder.try_iter().map(|e| e.seq).collect();
    assert_eq!(got, [3, 4], "the oldest are kept");
    drop(forwarder);
    send(w, events(8..=8), 8);
    assert_eq!(w.metrics.forward_dropped.load(Ordering::Relaxed), 4);
    assert_eq!(count(w, "SELECT count(*) FROM events"), 8);
}

#[test]
fn a_heartbeat_resent_from_before_the_hello_keeps_the_hello_s_addresses() {
    use hopwatch_wire::event::{InterfaceAddress, VrfAddresses};
    use hopwatch_wire::wire::{Hello, HelloTag, PROTOCOL_VERSION};
    let mut f = fixture("addresses-resent");
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
    let stored = |w: &Writer| -> String {
        w.db.query_row(
            "SELECT addresses FROM agents WHERE name = 'leaf1'",
            [],
            |r| r.get(0),
        )
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
    f.writer.apply(
        vec![Request::Hello {
            hello: Box::new(hello),
            address: "127.0.0.1".into(),
        }],
        T0 + 100_000,
    );
    assert!(stored(&f.writer).contains("10.0.0.2/31"));
    // Spooled while the collector was away: stamped before the hello.
    let old = with(heartbeat(&[("swp1", true)]), on("10.0.0.8/31"));
    send(&mut f.writer, vec![incoming("leaf1", "b", 1, 50, old)], 101);
    assert!(
        stored(&f.writer).contains("10.0.0.2/31"),
        "{}",
        stored(&f.writer)
    );
    // A live heartbeat after the hello renumbers the switch.
    let new = with(heartbeat(&[("swp1", true)]), on("10.0.0.4/31"));
    send(
        &mut f.writer,
        vec![incoming("leaf1", "b", 2, 102, new)],
        102,
    );
    assert!(
        stored(&f.writer).contains("10.0.0.4/31"),
        "{}",
        stored(&f.writer)
    );
}

/// A silence rides in a batch beside events: it is answered after the
/// commit, and one that fails (an id already stored) fails alone, while the
/// events of the batch are stored and acknowledged.
#[test]
fn a_failed_silence_fails_alone_and_the_batch_s_events_commit() {
    use crate::store::silences::{Change, Stored};
    let mut f = fixture("silence");
    let w = &mut f.writer;
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
    assert!(error.contains("UNIQUE"), "{error}");
    assert!(matches!(rx.try_recv().unwrap(), Ack::Stored(..)));
    assert_eq!(count(w, "SELECT count(*) FROM events"), 1);
    assert_eq!(count(w, "SELECT count(*) FROM silences"), 1);
}
