//! Several collectors on one PostgreSQL database, in-process on real
//! listeners: a trace asked of one runs through agents held by the other,
//! the fleet view of one shows what the other ingests as it happens, an
//! agent that moves is held by its newest collector, and an event sent
//! through both is forwarded to syslog once. PostgreSQL only: on SQLite
//! collectors share nothing.

use crate::rsyslog::{Proto, Rsyslog};
use crate::trace_fakes::{line_fabric, post_json};
use crate::util::{
    AGENT_TOKEN, Answering, FakeAgent, Process, Server, Store, TempDir, event, free_port,
    heartbeat, link, now_ms, pg_url, share_store, wait_for,
};
use serde_json::json;
use std::time::Duration;

/// Two collectors on one fresh database, each with `extra` tables; None
/// (the reason printed) in the SQLite binary.
fn pair(test: &str, keys: &str, extra: [&str; 2]) -> Option<(Server, Server, String)> {
    if crate::STORE != Store::Postgres {
        eprintln!("{test} is about collectors sharing a PostgreSQL store: not run on SQLite");
        return None;
    }
    let a_dir = TempDir::new(&format!("{test}-a"));
    let url = pg_url(&a_dir.path);
    let b_dir = TempDir::new(&format!("{test}-b"));
    share_store(&a_dir.path, &b_dir.path);
    let a = Server::start_in(a_dir, "127.0.0.1:0", keys, extra[0]);
    let b = Server::start_in(b_dir, "127.0.0.1:0", keys, extra[1]);
    Some((a, b, url))
}

/// Runs `sql` on the shared database and answers its first column as
/// text; None while the database cannot answer it (the collectors are still
/// creating the schema).
fn query_text(url: &str, sql: &str) -> Option<Vec<Option<String>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let rows = client.query(sql, &[]).await.ok()?;
        Some(rows.iter().map(|r| r.get(0)).collect())
    })
}

/// The id of the collector whose HTTP listener is `server`'s.
fn collector_id(url: &str, server: &Server) -> String {
    let sql = format!(
        "SELECT id FROM collectors WHERE http_listen = '{}'",
        server.http
    );
    wait_for(Duration::from_secs(10), || {
        query_text(url, &sql)?.into_iter().next().flatten()
    })
    .expect("the collector never registered")
}

fn held_by(url: &str, agent: &str) -> Option<String> {
    query_text(
        url,
        &format!("SELECT held_by FROM agents WHERE name = '{agent}'"),
    )?
    .into_iter()
    .next()
    .flatten()
}

#[test]
fn root_a_trace_asked_of_one_collector_runs_through_agents_held_by_another() {
    let test = "root_a_trace_asked_of_one_collector_runs_through_agents_held_by_another";
    let Some((a, b, url)) = pair(test, "heartbeat_timeout = \"1h\"", ["", ""]) else {
        return;
    };
    // The whole line fabric is connected to B only.
    let _fabric = line_fabric(b.agents);
    let b_id = collector_id(&url, &b);
    for agent in ["leaf1", "spine1", "leaf2"] {
        assert!(
            wait_for(Duration::from_secs(10), || (held_by(&url, agent).as_deref()
                == Some(b_id.as_str()))
            .then_some(()))
            .is_some(),
            "{agent} never held by B: {:?}",
            query_text(&url, "SELECT name || ' ' || COALESCE(held_by, '-') FROM agents")
        );
    }
    // A learns the agents' addresses from the store, so it maps each next
    // hop to its switch.
    crate::trace_fakes::wait_owned(&a, 3);
    let body = json!({"src": "10.1.0.10", "dst": "10.2.0.10"});
    let answer = post_json(a.http, "/api/v1/trace/flow", &body);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let trace = answer.json();
    assert_eq!(trace["success"], true, "{trace}");
    assert_eq!(trace["outcome"]["result"], "delivered", "{trace}");
    let agents: Vec<&str> = trace["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["leaf1", "spine1", "leaf2"], "{trace}");
    assert!(
        a.fabric.switchboard.connected().is_empty(),
        "no agent is connected to A"
    );
}

#[test]
fn root_a_link_down_ingested_by_one_collector_shows_live_on_the_other() {
    let test = "root_a_link_down_ingested_by_one_collector_shows_live_on_the_other";
    let Some((a, b, _url)) = pair(test, "heartbeat_timeout = \"1h\"", ["", ""]) else {
        return;
    };
    let (mut agent, _) = FakeAgent::connect(b.agents, AGENT_TOKEN, "leaf7", "b1").unwrap();
    let t = now_ms();
    agent
        .send(&[
            event("leaf7", "b1", 1, t, heartbeat(&[("swp1", true), ("swp2", true)])),
            event("leaf7", "b1", 2, t + 1, link("swp1", false)),
        ])
        .unwrap();
    assert!(agent.wait_acked("b1", 2, Duration::from_secs(10)));
    let fleet = a.get_json("/api/v1/fleet");
    let leaf7 = &fleet["agents"][0];
    assert_eq!(leaf7["agent"], "leaf7", "{fleet}");
    assert_eq!(leaf7["state"], "online", "{fleet}");
    assert_eq!(leaf7["links_down"], 1, "{fleet}");
    assert_eq!(fleet["links_down"], 1, "{fleet}");
    // And back up, seen on A as soon as B has acknowledged it.
    agent
        .send(&[event("leaf7", "b1", 3, t + 2, link("swp1", true))])
        .unwrap();
    assert!(agent.wait_acked("b1", 3, Duration::from_secs(10)));
    assert_eq!(a.get_json("/api/v1/fleet")["links_down"], 0);
}

#[test]
fn root_an_agent_moving_between_collectors_is_held_by_the_newest() {
    let test = "root_an_agent_moving_between_collectors_is_held_by_the_newest";
    let Some((a, b, url)) = pair(test, "", ["", ""]) else {
        return;
    };
    let (a_id, b_id) = (collector_id(&url, &a), collector_id(&url, &b));
    let held = |id: &str| {
        wait_for(Duration::from_secs(10), || {
            (held_by(&url, "leaf3").as_deref() == Some(id)).then_some(())
        })
        .is_some()
    };
    let (on_a, _) = FakeAgent::connect(a.agents, AGENT_TOKEN, "leaf3", "b1").unwrap();
    assert!(held(&a_id), "leaf3 never held by A");
    // It moves to B while A still has its old connection open.
    let (on_b, _) = FakeAgent::connect(b.agents, AGENT_TOKEN, "leaf3", "b1").unwrap();
    assert!(held(&b_id), "leaf3 never held by B");
    drop(on_a);
    assert!(
        wait_for(Duration::from_secs(10), || (!a
            .fabric
            .switchboard
            .is_connected("leaf3"))
        .then_some(()))
        .is_some()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(held_by(&url, "leaf3"), Some(b_id.clone()));
    drop(on_b);
    assert!(
        wait_for(Duration::from_secs(10), || held_by(&url, "leaf3")
            .is_none()
            .then_some(()))
        .is_some(),
        "B's mark stayed after its session ended"
    );
}

#[test]
fn root_an_event_sent_through_both_collectors_is_forwarded_once() {
    let test = "root_an_event_sent_through_both_collectors_is_forwarded_once";
    if crate::STORE != Store::Postgres {
        return;
    }
    let Some(rsyslog) = Rsyslog::start(Proto::Tcp) else {
        return;
    };
    let syslog = |name: &str| {
        format!(
            "[output.syslog]\naddress = {:?}\nhostname = {name:?}\n",
            rsyslog.address()
        )
    };
    let Some((a, b, _url)) = pair(test, "", [&syslog("collector-a"), &syslog("collector-b")])
    else {
        return;
    };
    let t = now_ms();
    let events = vec![
        event("leaf5", "b1", 1, t, link("swp1", false)),
        event("leaf5", "b1", 2, t + 1, link("swp2", false)),
    ];
    let (mut on_a, _) = FakeAgent::connect(a.agents, AGENT_TOKEN, "leaf5", "b1").unwrap();
    on_a.send(&events).unwrap();
    assert!(on_a.wait_acked("b1", 2, Duration::from_secs(10)));
    drop(on_a);
    // The agent resends both to B as if their acks were lost, and one more.
    let (mut on_b, welcome) = FakeAgent::connect(b.agents, AGENT_TOKEN, "leaf5", "b1").unwrap();
    assert_eq!(welcome.get("b1"), Some(&2), "B's welcome reads the shared store");
    on_b.send(&events).unwrap();
    on_b.send(&[event("leaf5", "b1", 3, t + 2, link("swp3", false))])
        .unwrap();
    assert!(on_b.wait_acked("b1", 3, Duration::from_secs(10)));
    let third = rsyslog
        .wait_for(|l| l.msg == "leaf5: swp3 went down", Duration::from_secs(10))
        .expect("the third event never reached rsyslog");
    assert_eq!(third.hostname, "collector-b");
    std::thread::sleep(Duration::from_millis(500));
    let lines = rsyslog.lines();
    let sent: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l.hostname.as_str(), l.msg.as_str()))
        .collect();
    assert_eq!(
        sent,
        [
            ("collector-a", "leaf5: swp1 went down"),
            ("collector-a", "leaf5: swp2 went down"),
            ("collector-b", "leaf5: swp3 went down"),
        ],
        "{lines:?}"
    );
}

#[test]
fn root_a_trace_through_a_collector_killed_ends_its_hop_like_a_silent_agent() {
    let test = "root_a_trace_through_a_collector_killed_ends_its_hop_like_a_silent_agent";
    if crate::STORE != Store::Postgres {
        eprintln!("{test} is about collectors sharing a PostgreSQL store: not run on SQLite");
        return;
    }
    let trace = "[trace]\nhop_timeout = \"700ms\"\n";
    let a_dir = TempDir::new(&format!("{test}-a"));
    let url = pg_url(&a_dir.path);
    let b_dir = TempDir::new(&format!("{test}-b"));
    share_store(&a_dir.path, &b_dir.path);
    let a = Server::start_in(a_dir, "127.0.0.1:0", "", trace);
    let mut b = Process::start(&b_dir.path, free_port(), free_port(), "", trace);
    let (on_b, _) = FakeAgent::connect(b.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    on_b.answer_traces(Answering::hops("leaf1"));
    let (_silent, _) = FakeAgent::connect(a.agents, AGENT_TOKEN, "leaf2", "b1").unwrap();
    let b_id = wait_for(Duration::from_secs(10), || {
        query_text(&url, "SELECT id FROM collectors WHERE host <> ''")?
            .into_iter()
            .flatten()
            .find(|id| held_by(&url, "leaf1").as_deref() == Some(id.as_str()))
    })
    .expect("leaf1 never held by B");
    crate::trace_fakes::wait_owned(&a, 2);
    let ask = |from: &str| {
        let answer = post_json(
            a.http,
            "/api/v1/trace/flow",
            &json!({"src": "10.1.0.10", "dst": "10.2.0.10", "from": from}),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()
    };
    assert_eq!(ask("leaf1")["outcome"]["result"], "delivered");
    // B dies without a word: its row and its mark stay until they go stale.
    b.kill();
    let began = std::time::Instant::now();
    let relayed = ask("leaf1");
    let took = began.elapsed();
    let silent = ask("leaf2");
    assert_eq!(held_by(&url, "leaf1"), Some(b_id));
    for (trace, agent) in [(&relayed, "leaf1"), (&silent, "leaf2")] {
        assert_eq!(trace["outcome"]["result"], "no_answer", "{trace}");
        assert_eq!(
            trace["outcome"]["why"],
            format!("agent {agent} did not answer within 700ms"),
            "{trace}"
        );
    }
    assert!(took < Duration::from_secs(3), "{took:?}");
}
