//! The fabric trace endpoints over real TCP: the token and the rate limit
//! they share with the rest of the API, a 400 naming the field for every
//! bad body, and what the store knows of an egress, read from a real SQLite
//! file a real collector wrote from a fake agent's events.

use crate::util::{
    AGENT_TOKEN, API_TOKEN, Answering, FakeAgent, Server, alert, event, heartbeat, link, now_ms,
};
use hopwatch_collector::fabric::known;
use hopwatch_wire::event::{Body, InterfaceAddress, VrfAddresses};
use hopwatch_wire::trace::{
    Action, Counters, DropReason, FlowQuery, Hop, Interface, LoadShare, Member, OperState, Route,
    RouteKind, Step, Trace, TraceAnswer, TraceQuery,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

pub const ENDPOINTS: [&str; 3] = [
    "/api/v1/trace/flow",
    "/api/v1/trace/multi-path",
    "/api/v1/trace/connectivity",
];

/// A POST's status, headers and body.
#[derive(Debug)]
pub struct Posted {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Posted {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// A one-shot HTTP/1.1 POST of `body` with `Connection: close`.
pub fn post(addr: SocketAddr, path: &str, token: Option<&str>, body: &[u8]) -> Posted {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body, and close.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Posted {
        status,
        headers,
        body: body.to_string(),
    }
}

pub fn post_json(addr: SocketAddr, path: &str, body: &Value) -> Posted {
    post(addr, path, Some(API_TOKEN), body.to_string().as_bytes())
}

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

    let db = hopwatch_collector::store::open_reader(&server.dir.path).unwrap();
    let wanted: Vec<known::Key> = [
        ("leaf1", "Eth1-7"),
        ("leaf1", "Eth1-8"),
        ("leaf1", "Eth1-99"),
        ("leaf9", "Eth1-7"),
    ]
    .iter()
    .map(|(a, i)| (a.to_string(), i.to_string()))
    .collect();
    let found = known::read(&db, &wanted, now_ms(), Duration::from_secs(3600)).unwrap();
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

/// How one switch of a test fabric forwards a destination: out of
/// `egress`, to `next_hop` (None: the destination is on that subnet), or
/// dropped by a blackhole route when `egress` is empty.
pub struct RouteEntry {
    pub prefix: &'static str,
    pub egress: &'static str,
    pub next_hop: Option<&'static str>,
}

/// A switch's answer to `query` from its table: the route, the egress and
/// its counters, as a kernel-backend agent answers.
pub fn switch_answer(switch: &str, table: &[RouteEntry], query: &TraceQuery) -> TraceAnswer {
    let (flow, ingress, hop) = match query {
        TraceQuery::Hop(h) => (h.flow.clone(), Some(h.ingress.clone()), true),
        TraceQuery::Flow(f) => (f.clone(), None, false),
        TraceQuery::Paths(_) => return TraceAnswer::error("no paths here"),
    };
    let dst = flow.dst.to_string();
    let Some(entry) = table.iter().find(|e| {
        let net = e.prefix.split('/').next().unwrap();
        dst.starts_with(net.trim_end_matches('0'))
    }) else {
        return TraceAnswer::error(format!("{switch} has no route to {dst} in this test"));
    };
    let component = format!("{switch}/{}", flow.vrf);
    let blackhole = entry.egress.is_empty();
    let route = Route {
        prefix: entry.prefix.into(),
        kind: if blackhole {
            RouteKind::Blackhole
        } else {
            RouteKind::Unicast
        },
        table: 254,
        table_name: "main".into(),
        protocol: "bgp".into(),
        protocol_id: 186,
        metric: 20,
        preferred_source: None,
        members: if blackhole {
            Vec::new()
        } else {
            vec![Member {
                next_hop: entry.next_hop.map(|a| a.parse().unwrap()),
                interface: Some(entry.egress.into()),
                ifindex: 3,
                weight: 1,
                flags: Vec::new(),
            }]
        },
        chosen: (!blackhole).then_some(0),
    };
    let hops = if blackhole {
        vec![Hop {
            index: 0,
            component,
            action: Action::Drop,
            description: format!("a blackhole route {} covers {dst}", entry.prefix),
            step: Step::Drop {
                reason: DropReason::Blackhole,
                route: Some(route),
                setting: None,
                interface: None,
                neighbor: None,
                kernel_answer: Some("Invalid argument".into()),
            },
        }]
    } else {
        vec![
            Hop {
                index: 0,
                component: component.clone(),
                action: Action::Forward,
                description: format!("route {} via {}", entry.prefix, entry.egress),
                step: Step::L3Routing {
                    route,
                    source_address: None,
                },
            },
            Hop {
                index: 1,
                component,
                action: Action::Output,
                description: format!("out of {}", entry.egress),
                step: Step::Egress {
                    interface: Interface {
                        name: entry.egress.into(),
                        ifindex: 3,
                        oper_state: OperState::Up,
                        admin_up: true,
                        carrier: true,
                        mtu: Some(9216),
                        speed_mbps: Some(100_000),
                        counters: Some(Counters {
                            rx_bytes: 52_000,
                            rx_packets: 410,
                            tx_bytes: 24_675_632,
                            tx_packets: 235_246,
                            ..Counters::default()
                        }),
                    },
                },
            },
        ]
    };
    let trace = Trace {
        request: FlowQuery {
            iif: ingress.clone(),
            ..flow
        },
        success: true,
        reaches_destination: !blackhole,
        next_hop: entry.next_hop.map(|a| a.parse().unwrap()),
        egress_interface: (!blackhole).then(|| entry.egress.to_string()),
        ingress_interface: ingress,
        ingress_inferred: false,
        hops,
        summary: format!("answered by {switch}"),
        switch: switch.into(),
        backend: "kernel".into(),
        load_share: Some(LoadShare {
            setting: "net.ipv4.fib_multipath_hash_policy".into(),
            policy: 1,
            mode: "L4: source and destination address, protocol and ports".into(),
        }),
        elapsed_us: 450,
        hash: None,
    };
    if hop {
        TraceAnswer::Hop(trace)
    } else {
        TraceAnswer::Flow(trace)
    }
}

fn addresses(list: &[(&str, &str)]) -> Vec<VrfAddresses> {
    vec![VrfAddresses {
        vrf: "default".into(),
        addresses: list
            .iter()
            .map(|(interface, address)| InterfaceAddress {
                interface: (*interface).into(),
                address: (*address).into(),
            })
            .collect(),
    }]
}

const LEAF1_ADDRESSES: &[(&str, &str)] = &[("Eth1-9", "10.1.0.1/24"), ("Eth1-1", "10.0.1.0/31")];

/// Three fake switches in a line, leaf1 – spine1 – leaf2, each answering
/// trace requests from its own table: hosts 10.1.0.0/24 on leaf1, 10.2.0.0/24
/// on leaf2; spine1 drops 10.3.0.0/24 into a blackhole.
pub fn line_fabric(agents: SocketAddr) -> Vec<FakeAgent> {
    let switches: [(&str, Vec<(&str, &str)>, Vec<RouteEntry>); 3] = [
        (
            "leaf1",
            LEAF1_ADDRESSES.to_vec(),
            vec![
                RouteEntry {
                    prefix: "10.1.0.0/24",
                    egress: "Eth1-9",
                    next_hop: None,
                },
                RouteEntry {
                    prefix: "10.2.0.0/24",
                    egress: "Eth1-1",
                    next_hop: Some("10.0.1.1"),
                },
                RouteEntry {
                    prefix: "10.3.0.0/24",
                    egress: "Eth1-1",
                    next_hop: Some("10.0.1.1"),
                },
            ],
        ),
        (
            "spine1",
            vec![("Eth1-1", "10.0.1.1/31"), ("Eth1-2", "10.0.2.1/31")],
            vec![
                RouteEntry {
                    prefix: "10.1.0.0/24",
                    egress: "Eth1-1",
                    next_hop: Some("10.0.1.0"),
                },
                RouteEntry {
                    prefix: "10.2.0.0/24",
                    egress: "Eth1-2",
                    next_hop: Some("10.0.2.0"),
                },
                RouteEntry {
                    prefix: "10.3.0.0/24",
                    egress: "",
                    next_hop: None,
                },
            ],
        ),
        (
            "leaf2",
            vec![("Eth1-1", "10.0.2.0/31"), ("Eth1-9", "10.2.0.1/24")],
            vec![
                RouteEntry {
                    prefix: "10.1.0.0/24",
                    egress: "Eth1-1",
                    next_hop: Some("10.0.2.1"),
                },
                RouteEntry {
                    prefix: "10.2.0.0/24",
                    egress: "Eth1-9",
                    next_hop: None,
                },
            ],
        ),
    ];
    let mut out = Vec::new();
    for (name, owned, table) in switches {
        let (agent, _) = FakeAgent::connect_addresses(
            agents,
            AGENT_TOKEN,
            name,
            &format!("{name}-boot"),
            addresses(&owned),
        )
        .unwrap();
        let table = Arc::new(table);
        let switch = name.to_string();
        agent.answer_traces(Answering::With(Arc::new(move |_, query| {
            switch_answer(&switch, &table, query)
        })));
        out.push(agent);
    }
    out
}

/// Waits until the collector knows the addresses of `n` agents (it reads
/// them from each hello as the connection is taken in).
pub fn wait_owned(server: &Server, n: usize) {
    use hopwatch_collector::fabric::Directory;
    let owners = &server.fabric.owners;
    assert!(
        crate::util::wait_for(Duration::from_secs(10), || (owners.agents().len() >= n)
            .then_some(()))
        .is_some(),
        "the collector knows the addresses of only {:?}",
        owners.agents()
    );
}

/// leaf1's `Ethernet1/1` (the trace's `Eth1-1`, its egress towards spine1)
/// went down two minutes ago for 30 s and has an alert firing.
pub fn leaf1_history(leaf1: &mut FakeAgent) {
    let t = now_ms();
    let s = |seconds_ago: i64| t - seconds_ago * 1000;
    let boot = leaf1.boot.clone();
    // Heartbeats carry the addresses too: one without them would take
    // leaf1's away.
    let beat = || {
        let mut body = heartbeat(&[("Ethernet1/1", true), ("Ethernet1/9", true)]);
        if let Body::Heartbeat(h) = &mut body {
            h.addresses = addresses(LEAF1_ADDRESSES);
        }
        body
    };
    let events = vec![
        event("leaf1", &boot, 1, s(150), beat()),
        event("leaf1", &boot, 2, s(120), link("Ethernet1/1", false)),
        event("leaf1", &boot, 3, s(90), link("Ethernet1/1", true)),
        event("leaf1", &boot, 4, s(60), alert("Ethernet1/1", true)),
        event("leaf1", &boot, 5, s(1), beat()),
    ];
    leaf1.send(&events).unwrap();
    assert!(leaf1.wait_acked(&boot, 5, Duration::from_secs(10)));
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
