//! Fake switches for the trace tests: fake agents that report their
//! addresses and answer trace and paths questions from a routing table of
//! their own, the fabrics they make, the history a test gives them, and a
//! POST for the trace endpoints.

use crate::util::{
    AGENT_TOKEN, API_TOKEN, Answering, FakeAgent, Server, alert, event, heartbeat, link, now_ms,
};
use hopwatch_wire::event::{Body, InterfaceAddress, VrfAddresses};
use hopwatch_wire::trace::{
    Action, Counters, DropReason, FlowQuery, Hop, Interface, LoadShare, Member, OperState,
    PathsQuery, Route, RouteKind, Step, Trace, TraceAnswer, TraceQuery,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

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

/// How one switch of a test fabric forwards a destination: out of
/// `egress`, to `next_hop` (None: the destination is on that subnet), or
/// dropped by a blackhole route when `egress` is empty.
pub struct RouteEntry {
    pub prefix: &'static str,
    pub egress: &'static str,
    pub next_hop: Option<&'static str>,
    /// A second ECMP member (egress, next hop): even source ports take the
    /// first, odd ones this.
    pub also: Option<(&'static str, &'static str)>,
}

/// A switch's answer to `query` from its table: the route, the egress and
/// its counters, as a kernel-backend agent answers.
pub fn switch_answer(switch: &str, table: &[RouteEntry], query: &TraceQuery) -> TraceAnswer {
    let (flow, ingress, hop) = match query {
        TraceQuery::Hop(h) => (h.flow.clone(), Some(h.ingress.clone()), true),
        TraceQuery::Flow(f) => (f.clone(), None, false),
        TraceQuery::Paths(query) => return paths_answer(switch, table, query),
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
    let mut members = vec![(entry.egress, entry.next_hop)];
    if let Some((egress, next_hop)) = entry.also {
        members.push((egress, Some(next_hop)));
    }
    let chosen = usize::from(flow.sport.unwrap_or(0)) % members.len();
    let (egress, next_hop) = members[chosen];
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
            members
                .iter()
                .map(|(egress, next_hop)| Member {
                    next_hop: next_hop.map(|a| a.parse().unwrap()),
                    interface: Some((*egress).into()),
                    ifindex: 3,
                    weight: 1,
                    flags: Vec::new(),
                })
                .collect()
        },
        chosen: (!blackhole).then_some(chosen),
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
                description: format!("route {} via {egress}", entry.prefix),
                step: Step::L3Routing {
                    route,
                    source_address: None,
                },
            },
            Hop {
                index: 1,
                component,
                action: Action::Output,
                description: format!("out of {egress}"),
                step: Step::Egress {
                    interface: Interface {
                        name: egress.into(),
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
        next_hop: next_hop.map(|a| a.parse().unwrap()),
        egress_interface: (!blackhole).then(|| egress.to_string()),
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

/// A switch's answer to a paths question: every source port of the range
/// on the member the fake hash (the port's parity) puts it on.
fn paths_answer(switch: &str, table: &[RouteEntry], query: &PathsQuery) -> TraceAnswer {
    let dst = query.dst.to_string();
    let Some(entry) = table.iter().find(|e| {
        let net = e.prefix.split('/').next().unwrap();
        dst.starts_with(net.trim_end_matches('0'))
    }) else {
        return TraceAnswer::error(format!("{switch} has no route to {dst} in this test"));
    };
    let range = query.sport_range.expect("the tree asks for a range");
    let mut members = vec![(entry.egress, entry.next_hop)];
    if let Some((egress, next_hop)) = entry.also {
        members.push((egress, Some(next_hop)));
    }
    let blackhole = entry.egress.is_empty();
    let detail: Vec<Value> = (range.first..=range.last)
        .map(|sport| {
            if blackhole {
                return json!({"sport": sport, "dport": query.dport, "next_hop": null,
                              "interface": null, "error": "blackhole"});
            }
            let (egress, next_hop) = members[usize::from(sport) % members.len()];
            json!({"sport": sport, "dport": query.dport, "next_hop": next_hop, "interface": egress})
        })
        .collect();
    let flows = range.len();
    let answer = json!({
        "request": query,
        "flows": flows,
        "members": [],
        "verdict": {"even": true, "chi_square": 0.0, "degrees_of_freedom": 0, "p_value": 1.0,
                    "text": "a test switch"},
        "unrouted": 0,
        "route": null,
        "switch": switch,
        "elapsed_us": 40,
        "flows_detail": detail,
        "dropped": if blackhole { flows } else { 0 },
    });
    TraceAnswer::Paths(serde_json::from_value(answer).unwrap())
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

pub const LEAF1_ADDRESSES: &[(&str, &str)] =
    &[("Eth1-9", "10.1.0.1/24"), ("Eth1-1", "10.0.1.0/31")];

/// Three fake switches in a line, leaf1 – spine1 – leaf2, each answering
/// trace requests from its own table: hosts 10.1.0.0/24 on leaf1, 10.2.0.0/24
/// on leaf2; spine1 drops 10.3.0.0/24 into a blackhole.
pub fn line_fabric(agents: SocketAddr) -> Vec<FakeAgent> {
    let switches: [SwitchSpec; 3] = [
        (
            "leaf1",
            LEAF1_ADDRESSES.to_vec(),
            vec![
                RouteEntry {
                    prefix: "10.1.0.0/24",
                    egress: "Eth1-9",
                    next_hop: None,
                    also: None,
                },
                RouteEntry {
                    prefix: "10.2.0.0/24",
                    egress: "Eth1-1",
                    next_hop: Some("10.0.1.1"),
                    also: None,
                },
                RouteEntry {
                    prefix: "10.3.0.0/24",
                    egress: "Eth1-1",
                    next_hop: Some("10.0.1.1"),
                    also: None,
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
                    also: None,
                },
                RouteEntry {
                    prefix: "10.2.0.0/24",
                    egress: "Eth1-2",
                    next_hop: Some("10.0.2.0"),
                    also: None,
                },
                RouteEntry {
                    prefix: "10.3.0.0/24",
                    egress: "",
                    next_hop: None,
                    also: None,
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
                    also: None,
                },
                RouteEntry {
                    prefix: "10.2.0.0/24",
                    egress: "Eth1-9",
                    next_hop: None,
                    also: None,
                },
            ],
        ),
    ];
    fake_fabric(agents, switches.into_iter().collect())
}

/// Switches, their addresses and their tables.
pub type SwitchSpec = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<RouteEntry>,
);

/// Fake switches that report `addresses` in their hello and answer trace
/// requests from their table.
pub fn fake_fabric(agents: SocketAddr, switches: Vec<SwitchSpec>) -> Vec<FakeAgent> {
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
    leaf1_history_with(leaf1, LEAF1_ADDRESSES);
}

/// As [`leaf1_history`], for a leaf1 that reports `owned`.
pub fn leaf1_history_with(leaf1: &mut FakeAgent, owned: &[(&str, &str)]) {
    let t = now_ms();
    let s = |seconds_ago: i64| t - seconds_ago * 1000;
    let boot = leaf1.boot.clone();
    // Heartbeats carry the addresses too: one without them would take
    // leaf1's away.
    let beat = || {
        let mut body = heartbeat(&[("Ethernet1/1", true), ("Ethernet1/9", true)]);
        if let Body::Heartbeat(h) = &mut body {
            h.addresses = addresses(owned);
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
