//! Silences across collectors sharing one PostgreSQL store: a change made
//! through one reaches the agents connected to another at once, also after
//! the database restarted under them. PostgreSQL only: on SQLite
//! collectors share nothing.

use super::{add, connect, delete, ids, list, pushed};
use crate::pgcluster::Cluster;
use crate::util::{Server, Store, TempDir, point_store, wait_for};
use serde_json::json;
use std::time::{Duration, Instant};

/// How soon a change must reach an agent of the other collector: the
/// notification, one read of the set and one line, with room for a
/// loaded machine.
const PROPAGATES_WITHIN: Duration = Duration::from_secs(3);

/// Whether `test` runs in this binary; says why not on SQLite.
fn on_postgres(test: &str) -> bool {
    if crate::STORE != Store::Postgres {
        eprintln!("{test} is about collectors sharing a PostgreSQL store: not run on SQLite");
        return false;
    }
    crate::pgcluster::can_use(test)
}

/// Two collectors on the database `url`.
fn pair(test: &str, url: &str) -> (Server, Server) {
    let keys = "heartbeat_timeout = \"1h\"";
    let start = |side: &str| {
        let dir = TempDir::new(&format!("{test}-{side}"));
        point_store(&dir.path, url);
        Server::start_in(dir, "127.0.0.1:0", keys, "")
    };
    (start("a"), start("b"))
}

/// Waits until the last `silences` line `agent` got is `expected`; how long
/// that took from `since`.
fn wait_last(agent: &crate::util::FakeAgent, expected: &[String], since: Instant) -> Duration {
    wait_for(Duration::from_secs(20), || {
        (pushed(agent).last().map(Vec::as_slice) == Some(expected)).then(|| since.elapsed())
    })
    .unwrap_or_else(|| {
        panic!(
            "{} never got {expected:?}; its silences lines: {:?}",
            agent.name,
            pushed(agent)
        )
    })
}

#[test]
fn root_a_silence_changed_through_one_collector_reaches_the_agents_of_another_at_once() {
    let test = "root_a_silence_changed_through_one_collector_reaches_the_agents_of_another_at_once";
    if !on_postgres(test) {
        return;
    }
    let url = crate::pgcluster::shared().database("silences_shared");
    let (a, b) = pair(test, &url);
    let leaf = connect(&b, "leaf1", 3);
    wait_last(&leaf, &[], Instant::now());

    let added = Instant::now();
    let id = add(
        a.http,
        json!({"agent": "leaf*", "interface": "Eth1-*", "for": "1h", "reason": "swap"}),
    );
    let took = wait_last(&leaf, std::slice::from_ref(&id), added);
    eprintln!("a silence added on A reached B's agent in {took:?}");
    assert!(took <= PROPAGATES_WITHIN, "took {took:?}");
    // Both collectors list the same, from the one store.
    assert_eq!(ids(&list(a.http, "")), std::slice::from_ref(&id));
    assert_eq!(ids(&list(b.http, "")), std::slice::from_ref(&id));

    // One added on B joins it, in the store's order, on A's agents too.
    let spine = connect(&a, "spine1", 3);
    wait_last(&spine, &[], Instant::now());
    let second = add(
        b.http,
        json!({"interface": "*", "for": "2h", "reason": "all"}),
    );
    wait_last(&spine, std::slice::from_ref(&second), Instant::now());
    wait_last(&leaf, &[id.clone(), second.clone()], Instant::now());

    let removed = Instant::now();
    assert_eq!(delete(a.http, &id).status, 204);
    let took = wait_last(&leaf, std::slice::from_ref(&second), removed);
    eprintln!("a removal on A reached B's agent in {took:?}");
    assert!(took <= PROPAGATES_WITHIN, "took {took:?}");
    assert_eq!(ids(&list(b.http, "")), std::slice::from_ref(&second));
    // Each change was one line, not one per collector that read it.
    assert_eq!(
        pushed(&leaf),
        [vec![], vec![id.clone()], vec![id, second.clone()], vec![second]],
    );
}

#[test]
fn root_a_silence_change_propagates_after_the_database_restarted() {
    let test = "root_a_silence_change_propagates_after_the_database_restarted";
    if !on_postgres(test) {
        return;
    }
    let cluster = Cluster::own();
    let url = cluster.database("silences_restart");
    let (a, b) = pair(test, &url);
    let leaf = connect(&b, "leaf1", 3);
    wait_last(&leaf, &[], Instant::now());

    cluster.stop();
    cluster.start();
    // A's writer reconnects on its next transaction; until then the API
    // answers an error and the change is not made.
    let body = json!({"interface": "Eth1-*", "for": "1h", "reason": "after"});
    let id = wait_for(Duration::from_secs(30), || {
        let answer = super::post(a.http, &body);
        (answer.status == 201).then(|| answer.json()["id"].as_str().unwrap().to_string())
    })
    .expect("A never took a silence after the database restarted");
    wait_last(&leaf, std::slice::from_ref(&id), Instant::now());

    // Notified now, not read at reconnecting: a later change arrives too.
    let removed = Instant::now();
    assert_eq!(delete(a.http, &id).status, 204);
    let took = wait_last(&leaf, &[], removed);
    assert!(took <= PROPAGATES_WITHIN, "took {took:?}");
    // The collectors leave before the cluster is dropped.
    drop((a, b));
}
