//! The writer's timeline against a real store: initial link states and
//! event times the agent's clock got wrong. Beside the writer's other tests,
//! in a file of their own to keep the writer's file to its code.

use super::tests::{T0, count, fixture, heartbeat, incoming, link, send};
use super::{Request, Writer};
use crate::store::query;
use hopwatch_wire::event::{Body, LinkState};
use hopwatch_wire::wire::Hello;
use std::time::Duration;

/// A link event with `previous: unknown`: the agent's first state.
fn initial(interface: &str, up: bool) -> Body {
    let Body::Link(mut l) = link(interface, up) else {
        unreachable!()
    };
    l.previous = LinkState::Unknown;
    Body::Link(l)
}

fn downtime(w: &Writer, now_s: i64) -> query::Downtime {
    query::downtime(
        &w.db,
        &query::DowntimeQuery::since(T0),
        T0 + now_s * 1000,
        Duration::from_secs(30),
    )
    .unwrap()
}

#[test]
fn a_future_stamped_event_does_not_hide_a_later_outage() {
    let mut f = fixture("future");
    let w = &mut f.writer;
    // Each event arrives as it happens, except that one claims a day
    // ahead.
    let day = 86_400;
    let mut events = vec![
        (0, 0, heartbeat(&[("swp1", true)])),
        (day, 5, heartbeat(&[("swp1", true)])),
        (10, 10, link("swp1", false)),
    ];
    // Heartbeats every 10 s, as the agent sends them, during the outage.
    events.extend((2..7).map(|t| (t * 10, t * 10, heartbeat(&[("swp1", false)]))));
    events.push((70, 70, link("swp1", true)));
    for (seq, (at, arrives, body)) in events.into_iter().enumerate() {
        send(
            w,
            vec![incoming("leaf1", "b1", seq as u64 + 1, at, body)],
            arrives,
        );
    }
    let dt = downtime(w, 80);
    assert_eq!(dt.interfaces[0].down_seconds, 60.0);
    assert_eq!(dt.interfaces[0].down_count, 1);
    assert_eq!(dt.interfaces[0].unknown_seconds, 0.0);
    let changes = query::changes(&w.db, T0, None).unwrap();
    assert_eq!(changes.came_up[0].down_seconds, Some(60.0));
    // The event is kept as the agent sent it.
    assert_eq!(
        count(w, "SELECT ts_ms FROM events WHERE seq = 2"),
        T0 + day * 1000
    );
}

#[test]
fn a_skewed_agent_clock_is_corrected_from_its_hello() {
    let mut f = fixture("skew");
    let w = &mut f.writer;
    // The agent's clock runs a day ahead; its hello says so.
    let day = 86_400;
    let hello = Hello {
        kind: hopwatch_wire::wire::HelloTag::Hello,
        protocol: hopwatch_wire::wire::PROTOCOL_VERSION,
        token: String::new(),
        agent: "leaf1".into(),
        boot: "b1".into(),
        boots: vec![],
        version: "t".into(),
        addresses: vec![],
        now: Some(crate::store::rfc3339(T0 + day * 1000)),
    };
    w.apply(
        vec![Request::Hello {
            hello: Box::new(hello),
            address: "127.0.0.1".into(),
        }],
        T0,
    );
    let mut events = vec![(0, heartbeat(&[("swp1", true)])), (10, link("swp1", false))];
    events.extend((2..7).map(|t| (t * 10, heartbeat(&[("swp1", false)]))));
    events.push((70, link("swp1", true)));
    for (seq, (at, body)) in events.into_iter().enumerate() {
        send(
            w,
            vec![incoming("leaf1", "b1", seq as u64 + 1, day + at, body)],
            at,
        );
    }
    let dt = downtime(w, 80);
    assert_eq!(dt.interfaces[0].down_seconds, 60.0);
    assert_eq!(dt.interfaces[0].unknown_seconds, 0.0);
    let changes = query::changes(&w.db, T0, None).unwrap();
    assert_eq!(changes.went_down[0].at, crate::store::rfc3339(T0 + 10_000));
}

#[test]
fn an_initial_state_starts_the_timeline_and_is_a_change_only_when_it_differs() {
    let mut f = fixture("initial");
    let w = &mut f.writer;
    send(
        w,
        vec![
            // Already down at agent start: the outage counts from here.
            incoming("leaf1", "b1", 1, 100, initial("swp1", false)),
            // Up at start: no change to show.
            incoming("leaf1", "b1", 2, 100, initial("swp2", true)),
            incoming("leaf1", "b1", 3, 130, link("swp1", true)),
        ],
        130,
    );
    let changes = query::changes(&w.db, T0, None).unwrap();
    let down: Vec<_> = changes
        .went_down
        .iter()
        .map(|c| c.interface.as_str())
        .collect();
    let up: Vec<_> = changes
        .came_up
        .iter()
        .map(|c| c.interface.as_str())
        .collect();
    assert_eq!((down, up), (vec!["swp1"], vec!["swp1"]));
    assert_eq!(changes.came_up[0].down_seconds, Some(30.0));
    let dt = downtime(w, 140);
    let swp1 = dt
        .interfaces
        .iter()
        .find(|i| i.interface == "swp1")
        .unwrap();
    // Nothing before the first known state: 0..100 counts neither way.
    assert_eq!((swp1.down_seconds, swp1.down_count), (30.0, 1));
    assert_eq!(swp1.unknown_seconds, 0.0);

    // The agent restarts: initial states equal to what is known add no
    // change; one that differs is the change it missed.
    send(
        w,
        vec![
            incoming("leaf1", "b2", 1, 140, initial("swp1", true)),
            incoming("leaf1", "b2", 2, 140, initial("swp2", false)),
        ],
        140,
    );
    let changes = query::changes(&w.db, T0, None).unwrap();
    assert_eq!(changes.went_down.len() + changes.came_up.len(), 3);
    assert_eq!(changes.went_down.last().unwrap().interface, "swp2");
    let dt = downtime(w, 150);
    let swp2 = dt
        .interfaces
        .iter()
        .find(|i| i.interface == "swp2")
        .unwrap();
    assert_eq!((swp2.down_seconds, swp2.down_count), (10.0, 1));
}
