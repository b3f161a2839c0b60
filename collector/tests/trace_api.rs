//! The fabric trace endpoints over real TCP: the token and the rate limit
//! they share with the rest of the API, a 400 naming the field for every
//! bad body, and what the store knows of an egress, read from a real SQLite
//! file a real collector wrote from a fake agent's events.

use crate::trace_fakes::{leaf1_history, line_fabric, post, post_json, wait_owned};
use crate::util::{
    AGENT_TOKEN, API_TOKEN, Answering, FakeAgent, Server, alert, event, heartbeat, link, now_ms,
};
use hopwatch_collector::fabric::known;
use serde_json::{Value, json};
use std::time::Duration;

pub const ENDPOINTS: [&str; 3] = [
    "/api/v1/trace/flow",
    "/api/v1/trace/multi-path",
    "/api/v1/trace/connectivity",
];

#[test]
fn traces_want_an_api_token() {
    let server = Server::start("trace-auth", "", "");
    let body = json!({"src": "10.1.0.10", "dst": "10.2.0.10"}).to_string();
    for path in ENDPOINTS {
        let none = post(server.http, path, None, body.as_bytes());
        assert_eq!(none.status, 401, "{path}: {}", none.body);
        assert_eq!(
            none.headers.get("www-authenticate").map(String::as_str),
            Some("Bearer")
        );
        let agent = post(server.http, path, Some(AGENT_TOKEN), body.as_bytes());
        assert_eq!(agent.status, 401, "an agent token is no API token: {path}");
    }
    // With the token the body is read (here: the fleet is empty, so there
    // is no switch to start at).
    let answer = post_json(
        server.http,
        "/api/v1/trace/flow",
        &json!({"src": "10.1.0.10", "dst": "10.2.0.10"}),
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.json()["field"], "src", "{}", answer.body);
}

#[test]
fn every_bad_body_is_a_400_naming_the_field() {
    let server = Server::start("trace-400", "", "");
    let flow = "/api/v1/trace/flow";
    let paths = "/api/v1/trace/multi-path";
    let matrix = "/api/v1/trace/connectivity";
    for (path, body, field, words) in [
        (flow, json!({"src": "10.1.0.10"}), "dst", "`dst` is missing"),
        (
            flow,
            json!({"src": "10.1.0.10", "dst": "10.2.0.999"}),
            "dst",
            "not an IP address",
        ),
        (
            flow,
            json!({"src": "10.1.0.10", "destination_ip": "fd00::1"}),
            "dst",
            "different address families",
        ),
        (
            flow,
            json!({"src": "10.1.0.10", "dst": "10.2.0.10", "dport": 80}),
            "dport",
            "protocol",
        ),
        (
            flow,
            json!({"src": "10.1.0.10", "dst": "10.2.0.10", "proto": "tcp", "hop_limit": 1000}),
            "hop_limit",
            "from 1 to 64",
        ),
        (
            flow,
            json!({"src": "10.1.0.10", "dst": "10.2.0.10", "vrf": "a/b"}),
            "vrf",
            "not a VRF name",
        ),
        (
            flow,
            json!({"src": "10.1.0.10", "dst": "10.2.0.10", "colour": "red"}),
            "colour",
            "unknown field `colour`",
        ),
        (
            flow,
            json!({"src": "10.1.0.10", "dst": "10.2.0.10", "from": "nosuchleaf"}),
            "from",
            "no agent named \"nosuchleaf\"",
        ),
        (
            flow,
            json!({"src": "10.1.0.10", "dst": "10.2.0.10"}),
            "src",
            "give `from`",
        ),
        (
            paths,
            json!({"src": "10.1.0.10", "dst": "10.2.0.10", "max_branches": 100000}),
            "max_branches",
            "from 1 to 4096",
        ),
        (
            paths,
            json!({"src": "10.1.0.10", "dst": "10.2.0.10", "proto": "udp", "sport_range": "1-65535"}),
            "sport_range",
            "more than the 4096",
        ),
        (
            matrix,
            json!({"sources": ["10.1.0.10"]}),
            "destinations",
            "`destinations` is missing",
        ),
        (
            matrix,
            json!({"sources": ["10.1.0.10"], "destinations": ["10.2.0.10"], "ports": [443]}),
            "ports",
            "protocol with ports",
        ),
    ] {
        let answer = post_json(server.http, path, &body);
        assert_eq!(answer.status, 400, "{path} {body}: {}", answer.body);
        let json = answer.json();
        assert_eq!(json["field"], field, "{path} {body}: {json}");
        let error = json["error"].as_str().unwrap();
        assert!(error.contains(words), "{path} {body}: {error}");
    }
    let not_json = post(server.http, flow, Some(API_TOKEN), b"src=10.1.0.10");
    assert_eq!(not_json.status, 400);
    assert!(
        not_json.json()["error"]
            .as_str()
            .unwrap()
            .contains("not JSON")
    );
}

#[test]
fn a_body_too_large_is_refused() {
    let server = Server::start("trace-413", "", "");
    let huge = format!(
        "{{\"src\": \"10.1.0.10\", \"dst\": \"10.2.0.10\", \"pad\": \"{}\"}}",
        "x".repeat(200 * 1024)
    );
    let answer = post(
        server.http,
        "/api/v1/trace/flow",
        Some(API_TOKEN),
        huge.as_bytes(),
    );
    assert_eq!(answer.status, 413, "{}", answer.body);
    let error = answer.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("larger than 64 KiB"), "{error}");
    // The API goes on answering.
    assert_eq!(server.get("/api/v1/agents").status, 200);
}

#[test]
fn traces_share_the_rate_limit() {
    let server = Server::start(
        "trace-429",
        "",
        "[rate_limit]\nper_second = 0.01\nburst = 2\n",
    );
    let body = json!({"src": "10.1.0.10", "dst": "10.2.0.10"});
    assert_eq!(
        post_json(server.http, "/api/v1/trace/flow", &body).status,
        400
    );
    assert_eq!(server.get("/api/v1/agents").status, 200);
    let limited = post_json(server.http, "/api/v1/trace/flow", &body);
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.headers.contains_key("retry-after"));
}

/// What the store knows of an egress, from a collector that stored a fake
/// agent's events, joined across the NX-OS spellings: the events say
/// `Ethernet1/7`, the trace `Eth1-7`.
#[test]
fn what_the_store_knows_of_an_egress_under_either_spelling() {
    // Events minutes apart are no silence under an hour's timeout.
    let server = Server::start("trace-known", "heartbeat_timeout = \"1h\"", "");
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let t = now_ms();
    let s = |seconds_ago: i64| t - seconds_ago * 1000;
    let interfaces = [("Ethernet1/7", true), ("Ethernet1/8", true)];
    let events = vec![
        event("leaf1", "b1", 1, s(1000), heartbeat(&interfaces)),
        // An outage of 10 s a quarter of an hour ago: downtime, no change.
        event("leaf1", "b1", 2, s(900), link("Ethernet1/7", false)),
        event("leaf1", "b1", 3, s(890), link("Ethernet1/7", true)),
        // One of 60 s two minutes ago: both.
        event("leaf1", "b1", 4, s(120), link("Ethernet1/7", false)),
        event("leaf1", "b1", 5, s(60), link("Ethernet1/7", true)),
        event("leaf1", "b1", 6, s(30), alert("Ethernet1/7", true)),
        // Another interface's alert, fired and resolved.
        event("leaf1", "b1", 7, s(40), alert("Ethernet1/8", true)),
        event("leaf1", "b1", 8, s(20), alert("Ethernet1/8", false)),
        event("leaf1", "b1", 9, s(1), heartbeat(&interfaces)),
    ];
    agent.send(&events).unwrap();
    assert!(agent.wait_acked("b1", 9, Duration::from_secs(10)));

    let wanted: Vec<known::Key> = [
        ("leaf1", "Eth1-7"),
        ("leaf1", "Eth1-8"),
        ("leaf1", "Eth1-99"),
        ("leaf9", "Eth1-7"),
    ]
    .iter()
    .map(|(a, i)| (a.to_string(), i.to_string()))
    .collect();
    let found = server.read_store(|db| known::read(db, &wanted, now_ms(), Duration::from_secs(3600)));
    let seven = &found[&wanted[0]];
    assert_eq!(seven.interface, "Ethernet1/7", "the store's own spelling");
    assert_eq!(seven.firing.len(), 1, "{seven:?}");
    assert_eq!(seven.firing[0].rule, "tx-errors");
    assert_eq!(seven.firing[0].severity, "critical");
    assert!(seven.firing[0].message.contains("tx_errors increased by 7"));
    let states: Vec<&str> = seven.changes.iter().map(|c| c.state.as_str()).collect();
    assert_eq!(
        states,
        ["down", "up"],
        "only the last 10 minutes: {seven:?}"
    );
    assert!(seven.changes[0].at < seven.changes[1].at);
    assert_eq!(seven.down_s_24h, 70.0, "{seven:?}");
    assert_eq!(seven.unknown_s_24h, 0.0, "{seven:?}");
    let eight = &found[&wanted[1]];
    assert!(eight.firing.is_empty(), "resolved is not firing: {eight:?}");
    assert!(eight.changes.is_empty() && eight.down_s_24h == 0.0);
    assert!(
        !found.contains_key(&wanted[2]) && !found.contains_key(&wanted[3]),
        "nothing known of an interface or agent the store never heard of: {found:?}"
    );
}

#[test]
fn a_flow_is_followed_across_the_switches_with_what_the_collector_knows() {
    let server = Server::start("trace-e2e", "heartbeat_timeout = \"1h\"", "");
    let mut fabric = line_fabric(server.agents);
    wait_owned(&server, 3);
    leaf1_history(&mut fabric[0]);
    let body = json!({"source_ip": "10.1.0.10", "destination_ip": "10.2.0.10", "protocol": "tcp",
                      "source_port_num": 40000, "destination_port_num": 443, "reverse": true});
    let answer = post_json(server.http, "/api/v1/trace/flow", &body);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let trace = answer.json();
    assert_eq!(trace["success"], true, "{trace}");
    assert_eq!(trace["reaches_destination"], true, "{trace}");
    assert_eq!(trace["outcome"]["result"], "delivered", "{trace}");
    let hops = trace["hops"].as_array().unwrap();
    let agents: Vec<&str> = hops.iter().map(|h| h["agent"].as_str().unwrap()).collect();
    assert_eq!(agents, ["leaf1", "spine1", "leaf2"], "{trace}");
    let ingress: Vec<&Value> = hops.iter().map(|h| &h["ingress"]).collect();
    // The source is on leaf1's Eth1-9 subnet, so the flow arrives there.
    assert_eq!(
        ingress,
        [&json!("Eth1-9"), &json!("Eth1-1"), &json!("Eth1-1")]
    );
    let egress: Vec<&str> = hops
        .iter()
        .map(|h| h["egress"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(egress, ["Eth1-1", "Eth1-2", "Eth1-9"]);
    assert_eq!(hops[0]["type"], "switch");
    assert_eq!(hops[0]["backend"], "kernel");
    // leaf1's egress, as the store spells it, with its alert and flap.
    let known = &hops[0]["known"];
    assert_eq!(known["interface"], "Ethernet1/1", "{known}");
    assert_eq!(known["firing"][0]["rule"], "tx-errors", "{known}");
    let changes: Vec<&str> = known["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["down", "up"], "{known}");
    assert_eq!(known["down_s_24h"], 30.0, "{known}");
    assert!(
        hops[1].get("known").is_none(),
        "nothing stored of spine1: {}",
        hops[1]
    );
    // The return flow, with its own hops' knowledge.
    let back = &trace["reverse"];
    let back_agents: Vec<&str> = back["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["agent"].as_str().unwrap())
        .collect();
    assert_eq!(back_agents, ["leaf2", "spine1", "leaf1"], "{back}");
    assert_eq!(trace["symmetry"]["symmetric"], true, "{trace}");

    // A flow spine1 blackholes: dropped there, with the reason.
    let dropped = post_json(
        server.http,
        "/api/v1/trace/flow",
        &json!({"src": "10.1.0.10", "dst": "10.3.0.10"}),
    );
    assert_eq!(dropped.status, 200, "{}", dropped.body);
    let dropped = dropped.json();
    assert_eq!(dropped["reaches_destination"], false);
    assert_eq!(dropped["outcome"]["result"], "dropped", "{dropped}");
    assert_eq!(dropped["outcome"]["agent"], "spine1");
    assert_eq!(dropped["outcome"]["reason"], "blackhole");
}

#[test]
fn all_paths_carry_what_the_collector_knows_on_every_branch() {
    let server = Server::start("trace-paths", "heartbeat_timeout = \"1h\"", "");
    let mut fabric = line_fabric(server.agents);
    wait_owned(&server, 3);
    leaf1_history(&mut fabric[0]);
    let answer = post_json(
        server.http,
        "/api/v1/trace/multi-path",
        &json!({"src": "10.1.0.10", "dst": "10.2.0.10", "proto": "udp", "dport": 53, "max_branches": 8}),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let tree = answer.json();
    assert_eq!(tree["reaches_destination"], true, "{tree}");
    let paths = tree["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 1, "{tree}");
    let agents: Vec<&str> = paths[0]["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["leaf1", "spine1", "leaf2"], "{tree}");
    assert_eq!(tree["tree"]["hop"]["agent"], "leaf1");
    assert_eq!(
        tree["tree"]["hop"]["known"]["firing"][0]["rule"], "tx-errors",
        "{tree}"
    );
    assert_eq!(
        tree["tree"]["hop"]["known"]["interface"], "Ethernet1/1",
        "{tree}"
    );
}

/// A switch that never answers ends its hop at the request's hop timeout,
/// well inside the configured ones, and the answer says who was silent.
#[test]
fn a_silent_switch_ends_its_hop_at_the_hop_timeout() {
    let server = Server::start(
        "trace-silent",
        "",
        "[trace]\nhop_timeout = \"5s\"\ntimeout = \"20s\"\n",
    );
    let fabric = line_fabric(server.agents);
    wait_owned(&server, 3);
    fabric[1].answer_traces(Answering::Silent);
    let started = std::time::Instant::now();
    let answer = post_json(
        server.http,
        "/api/v1/trace/flow",
        &json!({"src": "10.1.0.10", "dst": "10.2.0.10", "hop_timeout_ms": 200}),
    );
    let took = started.elapsed();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let trace = answer.json();
    assert_eq!(trace["success"], false, "{trace}");
    assert_eq!(trace["outcome"]["result"], "no_answer", "{trace}");
    assert_eq!(trace["outcome"]["agent"], "spine1", "{trace}");
    assert_eq!(trace["hops"][1]["type"], "no_answer", "{trace}");
    assert!(
        took < Duration::from_secs(3),
        "the request's 200 ms hop timeout, not the configured 5 s: {took:?}"
    );
}

#[test]
fn a_connectivity_matrix_over_fake_switches() {
    let server = Server::start("trace-matrix", "", "");
    let _fabric = line_fabric(server.agents);
    wait_owned(&server, 3);
    let answer = post_json(
        server.http,
        "/api/v1/trace/connectivity",
        &json!({"source_ips": ["10.1.0.10", "10.1.0.11"], "destination_ips": ["10.2.0.10", "10.3.0.10"],
                "protocols": ["tcp", "icmp"], "ports": [443]}),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let matrix = answer.json();
    let cells = matrix["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2 * 2 * 2, "{matrix}");
    for cell in cells {
        let to_leaf2 = cell["dst"] == "10.2.0.10";
        assert_eq!(cell["reaches"], to_leaf2, "{cell}");
        if !to_leaf2 {
            assert_eq!(cell["result"], "dropped", "{cell}");
            assert_eq!(cell["at"], "spine1", "{cell}");
        }
    }
    assert_eq!(matrix["fully_reachable"], false);
}
