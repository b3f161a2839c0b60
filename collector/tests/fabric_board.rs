//! The live side of fabric traces against the real collector over real TCP:
//! questions go out on the agents' own connections and come back to whoever
//! asked, whatever an agent answers (late, garbage, nothing, a closed
//! socket) or however it reconnects, without holding up anyone's events and
//! acks; and the owners map follows the addresses agents report, across a
//! restart of the collector.

use crate::util::{
    AGENT_TOKEN, Answering, FakeAgent, Server, TempDir, event, heartbeat, hello, hop_answer,
    metric, now_ms, wait_for,
};
use hopwatch_collector::fabric::switchboard::TURNS;
use hopwatch_collector::fabric::{AskError, Asker, Directory, Fabric};
use hopwatch_wire::event::{Body, InterfaceAddress, VrfAddresses};
use hopwatch_wire::trace::{FlowQuery, HopQuery, TraceAnswer, TraceQuery};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(20);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

/// Asks `agent` one question through the collector's own switchboard.
fn ask(
    fabric: &Fabric,
    agent: &str,
    query: TraceQuery,
    timeout: Duration,
) -> Result<TraceAnswer, AskError> {
    runtime().block_on(fabric.switchboard.ask(agent, query, timeout))
}

/// One hop of a TCP flow to 10.9.0.1 from source port `sport`, arriving on swp1.
fn hop(sport: u16) -> TraceQuery {
    TraceQuery::Hop(HopQuery {
        flow: FlowQuery {
            src: Some("10.0.0.1".parse().unwrap()),
            proto: Some(6),
            sport: Some(sport),
            dport: Some(443),
            ..FlowQuery::new("10.9.0.1".parse().unwrap())
        },
        ingress: "swp1".into(),
    })
}

/// The switch an answer says it came from.
fn switch(answer: &TraceAnswer) -> &str {
    match answer {
        TraceAnswer::Hop(trace) | TraceAnswer::Flow(trace) => &trace.switch,
        other => panic!("not a trace: {other:?}"),
    }
}

fn scrape(server: &Server) -> String {
    let response = server.get("/metrics");
    assert_eq!(response.status, 200, "{}", response.body);
    response.body
}

fn ended(server: &Server, outcome: &str) -> f64 {
    metric(
        &scrape(server),
        &format!("hopwatch_collector_trace_requests_ended_total{{outcome=\"{outcome}\"}}"),
    )
}

/// Waits until the collector has `n` agent connections open.
fn wait_open(server: &Server, n: usize) {
    let open = wait_for(WAIT, || {
        (metric(&scrape(server), "hopwatch_collector_connections_open") == n as f64).then_some(())
    });
    assert!(open.is_some(), "never {n} connections open");
}

fn addresses(entries: &[(&str, &str)]) -> Vec<VrfAddresses> {
    vec![VrfAddresses {
        vrf: "default".into(),
        addresses: entries
            .iter()
            .map(|(interface, address)| InterfaceAddress {
                interface: (*interface).into(),
                address: (*address).into(),
            })
            .collect(),
    }]
}

fn with_addresses(body: Body, entries: &[(&str, &str)]) -> Body {
    let Body::Heartbeat(mut hb) = body else {
        unreachable!()
    };
    hb.addresses = addresses(entries);
    Body::Heartbeat(hb)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn owner_of(fabric: &Fabric, address: &str) -> Option<(String, String)> {
    fabric
        .owners
        .owner("default", ip(address))
        .map(|o| (o.agent, o.interface))
}

#[test]
fn a_question_goes_out_on_the_agent_s_connection_and_its_answer_comes_back() {
    let server = Server::start("trace-round-trip", "", "");
    let (mut leaf1, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let (leaf2, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf2", "b1").unwrap();
    leaf1.answer_traces(Answering::hops("leaf1"));
    leaf2.answer_traces(Answering::hops("leaf2"));
    for (agent, sport) in [("leaf1", 1000), ("leaf2", 2000), ("leaf1", 1001)] {
        let answer = ask(&server.fabric, agent, hop(sport), WAIT).unwrap();
        assert_eq!(switch(&answer), agent);
        let TraceAnswer::Hop(trace) = answer else {
            panic!("{answer:?}")
        };
        assert_eq!(trace.request.sport, Some(sport));
        assert_eq!(trace.request.iif.as_deref(), Some("swp1"));
    }
    // What leaf1 received: two hop questions with distinct ids.
    let requests = leaf1.trace_requests();
    assert_eq!(requests.len(), 2);
    assert_ne!(requests[0].0, requests[1].0);
    assert_eq!(requests[0].1, Ok(hop(1000)));
    // Events flow on the same connection as before.
    leaf1
        .send(&[event("leaf1", "b1", 1, now_ms(), heartbeat(&[]))])
        .unwrap();
    assert!(leaf1.wait_acked("b1", 1, WAIT));
    let text = scrape(&server);
    assert_eq!(
        metric(&text, "hopwatch_collector_trace_requests_total"),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            "hopwatch_collector_trace_requests_ended_total{outcome=\"answered\"}"
        ),
        3.0
    );
}

#[test]
fn silence_is_a_timeout_and_the_late_answer_is_dropped_without_harm() {
    let server = Server::start("trace-late", "", "");
    let (mut leaf1, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let waited = Duration::from_millis(300);
    let started = Instant::now();
    assert_eq!(
        ask(&server.fabric, "leaf1", hop(1), waited),
        Err(AskError::Timeout {
            agent: "leaf1".into(),
            waited
        })
    );
    assert!(started.elapsed() < WAIT);
    let (id, _) = leaf1.wait_requests(1, WAIT).unwrap()[0].clone();
    // The answer after the asker gave up, in one write with an event.
    let mut late = crate::util::answer_line(id, &hop_answer(&hop(1), "leaf1"));
    late.push_str(&event("leaf1", "b1", 1, now_ms(), heartbeat(&[])).to_json());
    late.push('\n');
    leaf1.send_raw(late.as_bytes()).unwrap();
    assert!(leaf1.wait_acked("b1", 1, WAIT));
    let counted = wait_for(WAIT, || {
        (metric(
            &scrape(&server),
            "hopwatch_collector_trace_results_late_total",
        ) == 1.0)
            .then_some(())
    });
    assert!(counted.is_some(), "the late answer was not counted");
    assert_eq!(ended(&server, "timeout"), 1.0);
    // The next question is answered on the same connection.
    leaf1.answer_traces(Answering::hops("leaf1"));
    let answer = ask(&server.fabric, "leaf1", hop(2), WAIT).unwrap();
    assert_eq!(switch(&answer), "leaf1");
    assert!(!leaf1.is_closed());
}

#[test]
fn a_garbage_answer_ends_that_question_only() {
    let server = Server::start("trace-garbage", "", "");
    let (mut leaf1, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let (leaf2, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf2", "b1").unwrap();
    leaf2.answer_traces(Answering::hops("leaf2"));
    for (answering, expected) in [
        (
            Answering::Raw(r#"{"kind":"hop","hops":"many"}"#.into()),
            "unreadable trace_result",
        ),
        (Answering::Raw("[1,2,3]".into()), "unreadable trace_result"),
        (
            Answering::With(Arc::new(|_, _| {
                hop_answer(&TraceQuery::Flow(FlowQuery::new(ip("10.9.0.1"))), "leaf1")
            })),
            "a flow answer to a hop question",
        ),
    ] {
        leaf1.answer_traces(answering);
        match ask(&server.fabric, "leaf1", hop(7), WAIT) {
            Err(AskError::Garbage { agent, detail }) => {
                assert_eq!(agent, "leaf1");
                assert!(detail.starts_with(expected), "{detail}");
            }
            other => panic!("expected garbage, got {other:?}"),
        }
        // The agent's connection lives on: its events are acknowledged,
        // and the other agent answers.
        assert!(!leaf1.is_closed());
        assert_eq!(
            switch(&ask(&server.fabric, "leaf2", hop(8), WAIT).unwrap()),
            "leaf2"
        );
    }
    // An answer of kind error is the agent's refusal, with its reason.
    leaf1.answer_traces(Answering::With(Arc::new(|_, _| {
        TraceAnswer::error("no VRF named blue on this switch")
    })));
    assert_eq!(
        ask(&server.fabric, "leaf1", hop(9), WAIT),
        Err(AskError::Refused {
            agent: "leaf1".into(),
            error: "no VRF named blue on this switch".into()
        })
    );
    leaf1
        .send(&[event("leaf1", "b1", 1, now_ms(), heartbeat(&[]))])
        .unwrap();
    assert!(leaf1.wait_acked("b1", 1, WAIT));
    leaf1.answer_traces(Answering::hops("leaf1"));
    assert_eq!(
        switch(&ask(&server.fabric, "leaf1", hop(10), WAIT).unwrap()),
        "leaf1"
    );
    assert_eq!(ended(&server, "garbage"), 3.0);
    assert_eq!(ended(&server, "refused"), 1.0);
    // A line that claims to be an answer but is not readable as a line of
    // the protocol at all is treated as any unreadable line: that
    // connection ends, and the other agent is still asked and answers.
    leaf1.answer_traces(Answering::Line(
        r#"{"type":"trace_result","id":"{id}"}"#.into(),
    ));
    assert!(ask(&server.fabric, "leaf1", hop(11), WAIT).is_err());
    let refusal = leaf1
        .wait_closed(WAIT)
        .expect("the connection was not closed");
    assert!(refusal.is_some_and(|r| r.contains("expected an event")));
    assert_eq!(
        switch(&ask(&server.fabric, "leaf2", hop(12), WAIT).unwrap()),
        "leaf2"
    );
}

#[test]
fn an_answer_longer_than_max_line_fails_its_question_and_not_the_connection() {
    let server = Server::start("trace-too-long", "max_line = \"4KiB\"", "");
    let (mut leaf1, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    // 100 KiB, written in one go: read in many pieces, none held whole.
    let huge = format!(r#"{{"kind":"error","error":"{}"}}"#, "x".repeat(100 << 10));
    leaf1.answer_traces(Answering::Raw(huge));
    match ask(&server.fabric, "leaf1", hop(1), WAIT) {
        Err(AskError::Garbage { detail, .. }) => {
            assert!(
                detail.contains("longer than max_line (4096 bytes)"),
                "{detail}"
            )
        }
        other => panic!("expected garbage, got {other:?}"),
    }
    leaf1
        .send(&[event("leaf1", "b1", 1, now_ms(), heartbeat(&[]))])
        .unwrap();
    assert!(leaf1.wait_acked("b1", 1, WAIT));
    leaf1.answer_traces(Answering::hops("leaf1"));
    assert_eq!(
        switch(&ask(&server.fabric, "leaf1", hop(2), WAIT).unwrap()),
        "leaf1"
    );
    assert!(!leaf1.is_closed());
    // An event that long still ends the connection, as it always did.
    let mut long = event("leaf1", "b1", 2, now_ms(), heartbeat(&[])).to_json();
    long.insert_str(1, &format!(r#""pad":"{}","#, "y".repeat(8 << 10)));
    long.push('\n');
    leaf1.send_raw(long.as_bytes()).unwrap();
    let refusal = leaf1.wait_closed(WAIT).expect("the connection stayed open");
    assert!(refusal.is_some_and(|r| r.contains("max_line")));
}

#[test]
fn an_agent_not_connected_is_offline_at_once() {
    let server = Server::start("trace-offline", "", "");
    let started = Instant::now();
    assert_eq!(
        ask(&server.fabric, "leaf9", hop(1), WAIT),
        Err(AskError::Offline {
            agent: "leaf9".into()
        })
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let (leaf1, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    leaf1.answer_traces(Answering::hops("leaf1"));
    assert!(ask(&server.fabric, "leaf1", hop(1), WAIT).is_ok());
    drop(leaf1);
    wait_open(&server, 0);
    assert_eq!(
        ask(&server.fabric, "leaf1", hop(2), WAIT),
        Err(AskError::Offline {
            agent: "leaf1".into()
        })
    );
    assert_eq!(ended(&server, "offline"), 2.0);
}

#[test]
fn a_reconnecting_agent_is_asked_on_its_new_connection() {
    let server = Server::start("trace-reconnect", "", "");
    // The old connection is still open, and answers nothing.
    let (old, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let (new, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b2").unwrap();
    new.answer_traces(Answering::hops("leaf1-new"));
    assert_eq!(
        switch(&ask(&server.fabric, "leaf1", hop(1), WAIT).unwrap()),
        "leaf1-new"
    );
    // The old one's end leaves the new one on the switchboard.
    drop(old);
    wait_open(&server, 1);
    assert!(server.fabric.switchboard.is_connected("leaf1"));
    assert_eq!(
        switch(&ask(&server.fabric, "leaf1", hop(2), WAIT).unwrap()),
        "leaf1-new"
    );
    assert_eq!(new.trace_requests().len(), 2);
}

#[test]
fn an_agent_that_disconnects_mid_question_fails_it_at_once() {
    let server = Server::start("trace-closed", "", "");
    let (leaf1, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let fabric = Arc::clone(&server.fabric);
    let long = Duration::from_secs(120);
    let asking = std::thread::spawn(move || {
        let started = Instant::now();
        (ask(&fabric, "leaf1", hop(1), long), started.elapsed())
    });
    assert!(leaf1.wait_requests(1, WAIT).is_some());
    drop(leaf1);
    let (result, took) = asking.join().unwrap();
    assert_eq!(
        result,
        Err(AskError::Closed {
            agent: "leaf1".into()
        })
    );
    assert!(took < long / 4, "the question waited {took:?}");
    assert_eq!(ended(&server, "closed"), 1.0);
}

#[test]
fn owners_follow_the_hello_and_each_newer_heartbeat() {
    let server = Server::start("trace-owners", "", "");
    let hello_at = now_ms();
    let mut said = hello(AGENT_TOKEN, "leaf1", "b2", &["b1", "b2"]);
    said.addresses = addresses(&[("swp1", "10.1.0.1/31"), ("vlan10", "10.10.0.1/24")]);
    said.now = Some(
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(hello_at as u64))
            .to_string(),
    );
    let (mut leaf1, _) = FakeAgent::connect_hello(server.agents, said).unwrap();
    let (_spine1, _) = FakeAgent::connect_addresses(
        server.agents,
        AGENT_TOKEN,
        "spine1",
        "s1",
        addresses(&[("swp1", "10.1.0.0/31")]),
    )
    .unwrap();
    let fabric = &server.fabric;
    assert_eq!(
        owner_of(fabric, "10.1.0.1"),
        Some(("leaf1".into(), "swp1".into()))
    );
    let attached: Vec<String> = fabric
        .owners
        .attached("default", ip("10.10.0.77"))
        .into_iter()
        .map(|o| o.agent)
        .collect();
    assert_eq!(attached, ["leaf1"]);
    assert_eq!(fabric.owners.agents(), ["leaf1", "spine1"]);
    // Resent from the spool: an older boot's heartbeat and one of this
    // boot from before the hello, with addresses since changed; then the
    // live one that renumbers swp1.
    leaf1
        .send(&[
            event(
                "leaf1",
                "b1",
                7,
                hello_at - 60_000,
                with_addresses(heartbeat(&[]), &[("swp1", "10.66.0.1/31")]),
            ),
            event(
                "leaf1",
                "b2",
                1,
                hello_at - 5_000,
                with_addresses(heartbeat(&[]), &[("swp1", "10.77.0.1/31")]),
            ),
        ])
        .unwrap();
    assert!(leaf1.wait_acked("b2", 1, WAIT));
    assert_eq!(
        owner_of(fabric, "10.1.0.1"),
        Some(("leaf1".into(), "swp1".into()))
    );
    assert_eq!(owner_of(fabric, "10.77.0.1"), None);
    leaf1
        .send(&[event(
            "leaf1",
            "b2",
            2,
            hello_at + 10_000,
            with_addresses(heartbeat(&[]), &[("swp1", "10.1.0.9/31")]),
        )])
        .unwrap();
    assert!(leaf1.wait_acked("b2", 2, WAIT));
    assert_eq!(owner_of(fabric, "10.1.0.1"), None);
    assert_eq!(
        owner_of(fabric, "10.1.0.9"),
        Some(("leaf1".into(), "swp1".into()))
    );
    assert!(
        fabric
            .owners
            .attached("default", ip("10.10.0.77"))
            .is_empty()
    );
    // Gone from the fleet's connections, still known by its addresses: a
    // trace through it is a question nobody answers, not an unmanaged hop.
    drop(leaf1);
    wait_open(&server, 1);
    assert_eq!(
        owner_of(fabric, "10.1.0.9"),
        Some(("leaf1".into(), "swp1".into()))
    );
    assert!(matches!(
        ask(fabric, "leaf1", hop(1), WAIT),
        Err(AskError::Offline { .. })
    ));
}

#[test]
fn owners_survive_a_restart_of_the_collector() {
    let server = Server::start("trace-owners-restart", "", "");
    let (mut leaf1, _) = FakeAgent::connect_addresses(
        server.agents,
        AGENT_TOKEN,
        "leaf1",
        "b1",
        addresses(&[("swp1", "10.1.0.1/31")]),
    )
    .unwrap();
    leaf1
        .send(&[event(
            "leaf1",
            "b1",
            1,
            now_ms(),
            with_addresses(
                heartbeat(&[]),
                &[("swp1", "10.1.0.1/31"), ("swp2", "10.2.0.1/31")],
            ),
        )])
        .unwrap();
    assert!(leaf1.wait_acked("b1", 1, WAIT));
    drop(leaf1);
    let dir: TempDir = server.stop();
    let server = Server::start_in(dir, "127.0.0.1:0", "", "");
    // No agent has connected to this collector yet.
    assert_eq!(
        metric(&scrape(&server), "hopwatch_collector_connections_total"),
        0.0
    );
    assert_eq!(
        owner_of(&server.fabric, "10.2.0.1"),
        Some(("leaf1".into(), "swp2".into()))
    );
    assert_eq!(server.fabric.owners.agents(), ["leaf1"]);
}

/// 1,000 questions at once on eight agents' connections while those agents
/// keep streaming events: each agent holds at most its four turns of
/// questions (it refuses more), every round of events is acknowledged while
/// questions are still waiting, the answers come back mixed into the event
/// lines, and every question gets its own answer.
#[test]
fn a_storm_of_1000_traces_leaves_events_flowing_and_acknowledged() {
    const AGENTS: usize = 8;
    const TRACES: usize = 1000;
    const EVENTS_PER_ROUND: u64 = 200;
    let server = Server::start("trace-storm", "", "");
    let mut agents: Vec<FakeAgent> = (0..AGENTS)
        .map(|i| {
            FakeAgent::connect(server.agents, AGENT_TOKEN, &format!("leaf{i}"), "b1")
                .unwrap()
                .0
        })
        .collect();
    let runtime = runtime();
    let mut asked = tokio::task::JoinSet::new();
    for n in 0..TRACES {
        let fabric = Arc::clone(&server.fabric);
        let agent = format!("leaf{}", n % AGENTS);
        asked.spawn_on(
            async move {
                let query = hop(n as u16);
                let answer = fabric
                    .switchboard
                    .ask(&agent, query.clone(), Duration::from_secs(300))
                    .await;
                (agent, query, answer)
            },
            runtime.handle(),
        );
    }
    let per_agent = TRACES / AGENTS;
    let mut answered = 0;
    let mut seq = 0;
    let t = now_ms();
    let mut round = 0;
    loop {
        // Round 0 answers nothing: every agent holds its four turns and the
        // rest of the 1,000 questions wait behind them.
        let mut answered_now = 0;
        for agent in agents.iter_mut() {
            let held: Vec<(u64, TraceQuery)> = if round == 0 {
                Vec::new()
            } else {
                let due = (answered + TURNS).min(per_agent);
                let requests = agent.wait_requests(due, WAIT).unwrap_or_else(|| {
                    panic!("{} round {round}: fewer than {due} questions", agent.name)
                });
                requests[answered..]
                    .iter()
                    .map(|(id, query)| (*id, query.clone().unwrap()))
                    .collect()
            };
            answered_now = held.len();
            let mut out = String::new();
            for i in 0..EVENTS_PER_ROUND {
                let s = seq + i + 1;
                out.push_str(
                    &event(&agent.name, "b1", s, t, heartbeat(&[("swp1", true)])).to_json(),
                );
                out.push('\n');
                if let Some((id, query)) = held.get(i as usize) {
                    out.push_str(&crate::util::answer_line(
                        *id,
                        &hop_answer(query, &agent.name),
                    ));
                }
            }
            agent.send_raw(out.as_bytes()).unwrap();
        }
        seq += EVENTS_PER_ROUND;
        answered += answered_now;
        for agent in &agents {
            assert!(
                agent.wait_acked("b1", seq, WAIT),
                "{} round {round}: acked {} of {seq} while questions wait",
                agent.name,
                agent.acked("b1")
            );
        }
        let expected = (answered * AGENTS) as f64;
        let settled = wait_for(WAIT, || {
            (ended(&server, "answered") == expected).then_some(())
        });
        assert!(
            settled.is_some(),
            "round {round}: {} answered, {expected} expected",
            ended(&server, "answered")
        );
        // The next turns go out as answers free them, never more at once.
        let outstanding = (answered + TURNS).min(per_agent);
        for agent in &agents {
            assert!(agent.wait_requests(outstanding, WAIT).is_some());
            assert_eq!(
                agent.trace_requests().len(),
                outstanding,
                "{} round {round}: questions beyond its turns",
                agent.name
            );
        }
        let text = scrape(&server);
        assert_eq!(
            metric(&text, "hopwatch_collector_trace_requests_total"),
            TRACES as f64
        );
        let ended_all: f64 = [
            "timeout",
            "closed",
            "garbage",
            "offline",
            "busy",
            "abandoned",
        ]
        .iter()
        .map(|o| ended(&server, o))
        .sum();
        assert_eq!(ended_all, 0.0, "round {round}");
        if answered == per_agent {
            break;
        }
        round += 1;
    }
    let results = runtime.block_on(async {
        let mut results = Vec::new();
        while let Some(joined) = asked.join_next().await {
            results.push(joined.unwrap());
        }
        results
    });
    assert_eq!(results.len(), TRACES);
    for (agent, query, answer) in results {
        let answer = answer.unwrap_or_else(|e| panic!("{agent}: {e}"));
        assert_eq!(switch(&answer), agent);
        assert_eq!(
            answer,
            hop_answer(&query, &agent),
            "each answer is its own question's"
        );
    }
    assert_eq!(ended(&server, "answered"), TRACES as f64);

    // Again with the agents answering as fast as they read, from threads of
    // their own, while this one keeps streaming events until every answer
    // is in.
    for agent in &agents {
        agent.answer_traces(Answering::hops(&agent.name));
    }
    for n in 0..TRACES {
        let fabric = Arc::clone(&server.fabric);
        let agent = format!("leaf{}", n % AGENTS);
        asked.spawn_on(
            async move {
                let query = hop(n as u16);
                let answer = fabric
                    .switchboard
                    .ask(&agent, query.clone(), Duration::from_secs(300))
                    .await;
                (agent, query, answer)
            },
            runtime.handle(),
        );
    }
    let mut rounds = 0;
    while ended(&server, "answered") < (2 * TRACES) as f64 {
        rounds += 1;
        assert!(rounds < 1000, "the answers never all came");
        for agent in agents.iter_mut() {
            let events: Vec<_> = (1..=20)
                .map(|i| event(&agent.name, "b1", seq + i, t, heartbeat(&[("swp1", true)])))
                .collect();
            agent.send(&events).unwrap();
        }
        seq += 20;
        for agent in &agents {
            assert!(agent.wait_acked("b1", seq, WAIT), "{} at {seq}", agent.name);
        }
    }
    let results = runtime.block_on(async {
        let mut results = Vec::new();
        while let Some(joined) = asked.join_next().await {
            results.push(joined.unwrap());
        }
        results
    });
    assert_eq!(results.len(), TRACES);
    for (agent, query, answer) in results {
        assert_eq!(answer.unwrap(), hop_answer(&query, &agent));
    }
    for agent in &agents {
        assert!(!agent.is_closed());
    }
}
