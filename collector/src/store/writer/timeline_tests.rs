//! The writer's timeline against a real store: initial link states and
//! event times the agent's clock got wrong. Beside the writer's other tests,
//! in a file of their own to keep the writer's file to its code.

use super::Request;
use super::tests::{Both, T0, heartbeat, incoming, link};
use crate::store::postgres::testing::each_store;
use crate::store::query;
use crate::store::since::SinceCache;
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

/// The downtime since `T0`, asked three times: with nothing remembered,
/// and twice through one [`SinceCache`] (the second answered from what the
/// first remembered), which must all agree.
fn downtime(w: &Both, now_s: i64) -> query::Downtime {
    let ask = |remembered: &SinceCache| {
        w.read(|db| {
            query::downtime(
                db,
                &query::DowntimeQuery::since(T0),
                T0 + now_s * 1000,
                Duration::from_secs(30),
                remembered,
            )
        })
        .unwrap()
    };
    let plain = ask(&SinceCache::none());
    let remembered = SinceCache::new(Duration::from_secs(86_400 * 365));
    assert_eq!(ask(&remembered), plain);
    assert_eq!(ask(&remembered), plain, "answered from memory");
    plain
}

#[test]
fn a_future_stamped_event_does_not_hide_a_later_outage() {
    each_store(|store| {
        let w = &mut Both::new(store);
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
            w.send(
                vec![incoming("leaf1", "b1", seq as u64 + 1, at, body)],
                arrives,
            );
        }
        let dt = downtime(w, 80);
        assert_eq!(dt.interfaces[0].down_seconds, 60.0);
        assert_eq!(dt.interfaces[0].down_count, 1);
        assert_eq!(dt.interfaces[0].unknown_seconds, 0.0);
        let changes = w.read(|db| query::changes(db, T0, None)).unwrap();
        assert_eq!(changes.came_up[0].down_seconds, Some(60.0));
        // The event is kept as the agent sent it.
        assert_eq!(
            w.count("SELECT ts_ms FROM events WHERE seq = 2"),
            T0 + day * 1000
        );
    });
}

#[test]
fn a_skewed_agent_clock_is_corrected_from_its_hello() {
    each_store(|store| {
        let w = &mut Both::new(store);
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
            w.send(
                vec![incoming("leaf1", "b1", seq as u64 + 1, day + at, body)],
                at,
            );
        }
        let dt = downtime(w, 80);
        assert_eq!(dt.interfaces[0].down_seconds, 60.0);
        assert_eq!(dt.interfaces[0].unknown_seconds, 0.0);
        let changes = w.read(|db| query::changes(db, T0, None)).unwrap();
        assert_eq!(changes.went_down[0].at, crate::store::rfc3339(T0 + 10_000));
    });
}

#[test]
fn an_initial_state_starts_the_timeline_and_is_a_change_only_when_it_differs() {
    each_store(|store| {
        let w = &mut Both::new(store);
        w.send(
            vec![
                // Already down at agent start: the outage counts from here.
                incoming("leaf1", "b1", 1, 100, initial("swp1", false)),
                // Up at start: no change to show.
                incoming("leaf1", "b1", 2, 100, initial("swp2", true)),
                incoming("leaf1", "b1", 3, 130, link("swp1", true)),
            ],
            130,
        );
        let changes = w.read(|db| query::changes(db, T0, None)).unwrap();
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
        w.send(
            vec![
                incoming("leaf1", "b2", 1, 140, initial("swp1", true)),
                incoming("leaf1", "b2", 2, 140, initial("swp2", false)),
            ],
            140,
        );
        let changes = w.read(|db| query::changes(db, T0, None)).unwrap();
        assert_eq!(changes.went_down.len() + changes.came_up.len(), 3);
        assert_eq!(changes.went_down.last().unwrap().interface, "swp2");
        let dt = downtime(w, 150);
        let swp2 = dt
            .interfaces
            .iter()
            .find(|i| i.interface == "swp2")
            .unwrap();
        assert_eq!((swp2.down_seconds, swp2.down_count), (10.0, 1));
    });
}

/// A link down event whose switch says an operator shut the port.
fn shut(interface: &str) -> Body {
    let Body::Link(mut l) = link(interface, false) else {
        unreachable!()
    };
    l.admin = Some(hopwatch_wire::event::AdminState::Down);
    l.reason = Some("administratively down".into());
    Body::Link(l)
}

#[test]
fn a_shutdown_is_admin_down_time_not_downtime() {
    each_store(|store| {
        let w = &mut Both::new(store);
        // swp1 is shut at 10 s for a minute, heartbeats saying down all along;
        // swp2 fails at 10 s for a minute, its switch saying it is enabled.
        let mut failed = link("swp2", false);
        if let Body::Link(l) = &mut failed {
            l.admin = Some(hopwatch_wire::event::AdminState::Up);
            l.reason = Some("link-failure".into());
        }
        let mut events = vec![
            (0, heartbeat(&[("swp1", true), ("swp2", true)])),
            (10, shut("swp1")),
            (10, failed),
        ];
        events.extend((2..7).map(|t| (t * 10, heartbeat(&[("swp1", false), ("swp2", false)]))));
        let send_all = |w: &mut Both, events: Vec<(i64, Body)>, first: u64| {
            for (seq, (at, body)) in events.into_iter().enumerate() {
                w.send(
                    vec![incoming("leaf1", "b1", first + seq as u64, at, body)],
                    at,
                );
            }
        };
        let sent = events.len() as u64;
        send_all(w, events, 1);
        // While shut, the API names the state, and heartbeats saying down
        // did not turn it into an outage.
        let during = downtime(w, 65);
        let swp1 = during
            .interfaces
            .iter()
            .find(|i| i.interface == "swp1")
            .unwrap();
        assert_eq!(
            (swp1.state, swp1.currently_down, swp1.down_count),
            ("admin_down", false, 0)
        );
        let swp2 = during
            .interfaces
            .iter()
            .find(|i| i.interface == "swp2")
            .unwrap();
        assert_eq!((swp2.state, swp2.currently_down), ("down", true));
        send_all(
            w,
            vec![(70, link("swp1", true)), (70, link("swp2", true))],
            sent + 1,
        );
        let dt = downtime(w, 100);
        let by = |name: &str| {
            dt.interfaces
                .iter()
                .find(|i| i.interface == name)
                .unwrap()
                .clone()
        };
        let (swp1, swp2) = (by("swp1"), by("swp2"));
        assert_eq!(
            (swp1.down_seconds, swp1.down_count, swp1.admin_down_seconds),
            (0.0, 0, 60.0),
            "a shutdown is no outage: {swp1:?}"
        );
        assert_eq!(swp1.unknown_seconds, 0.0);
        assert_eq!(
            swp1.availability,
            Some(1.0),
            "the shutdown is off the scale"
        );
        assert_eq!(
            (swp2.down_seconds, swp2.down_count, swp2.admin_down_seconds),
            (60.0, 1, 0.0),
            "a failure is: {swp2:?}"
        );
        assert_eq!(swp2.availability, Some(40.0 / 100.0));
        assert_eq!(dt.total_down_seconds, 60.0);

        // The changes list says which went down for a shutdown.
        let changes = w.read(|db| query::changes(db, T0, None)).unwrap();
        let went: Vec<(&str, &str)> = changes
            .went_down
            .iter()
            .map(|d| (d.interface.as_str(), d.state))
            .collect();
        assert_eq!(went, [("swp1", "admin_down"), ("swp2", "down")]);
        let up: Vec<(&str, Option<f64>)> = changes
            .came_up
            .iter()
            .map(|u| (u.interface.as_str(), u.down_seconds))
            .collect();
        assert_eq!(up, [("swp1", None), ("swp2", Some(60.0))]);
        // Stored as state 3, beside the codes stored before.
        assert_eq!(w.count("SELECT count(*) FROM segments WHERE state = 3"), 1);
    });
}

#[test]
fn a_restarted_agent_that_cannot_say_why_leaves_a_shutdown_as_it_was() {
    each_store(|store| {
        let w = &mut Both::new(store);
        w.send(
            vec![incoming("leaf1", "b1", 1, 0, initial("swp1", true))],
            0,
        );
        w.send(vec![incoming("leaf1", "b1", 2, 10, shut("swp1"))], 10);
        // The agent restarts while the port is shut; its first state says down
        // without `admin` (the switch did not answer in time).
        w.send(
            vec![incoming("leaf1", "b2", 1, 20, initial("swp1", false))],
            20,
        );
        let dt = downtime(w, 40);
        let swp1 = &dt.interfaces[0];
        assert_eq!(
            (swp1.state, swp1.down_count, swp1.admin_down_seconds),
            ("admin_down", 0, 30.0),
            "{swp1:?}"
        );
        // A real change without `admin` is taken as it says.
        w.send(vec![incoming("leaf1", "b2", 2, 40, link("swp1", true))], 40);
        w.send(
            vec![incoming("leaf1", "b2", 3, 50, link("swp1", false))],
            50,
        );
        let dt = downtime(w, 60);
        assert_eq!(
            (dt.interfaces[0].state, dt.interfaces[0].down_count),
            ("down", 1)
        );
    });
}
