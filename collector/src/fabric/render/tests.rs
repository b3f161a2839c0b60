//! The renderings checked line by line on hand-built traces: the seed's
//! layout, every outcome, the paths table and escaping.

use super::super::{FabricPath, FlowSpread, KnownAlert, KnownChange, LoopStep, PathStep};
use super::*;
use hopwatch_wire::trace::{
    Action, Counters, DropReason, Hop, Interface, LoadShare, Member, Neighbor, NeighborState,
    OperState, Route, RouteKind,
};

fn spec() -> FlowSpec {
    FlowSpec {
        src: "10.1.0.10".parse().unwrap(),
        dst: "10.2.0.10".parse().unwrap(),
        proto: Some(6),
        sport: Some(1234),
        dport: Some(80),
        vrf: "default".into(),
        from: None,
    }
}

fn interface(name: &str) -> Interface {
    Interface {
        name: name.into(),
        ifindex: 3,
        oper_state: OperState::Up,
        admin_up: true,
        carrier: true,
        mtu: Some(9216),
        speed_mbps: Some(100_000),
        counters: Some(Counters {
            rx_bytes: 1000,
            rx_packets: 10,
            rx_errors: 0,
            rx_dropped: 0,
            tx_bytes: 24_675_632,
            tx_packets: 235_246,
            tx_errors: 7,
            tx_dropped: 0,
        }),
    }
}

fn route() -> Route {
    let member = |gw: &str, dev: &str| Member {
        next_hop: Some(gw.parse().unwrap()),
        interface: Some(dev.into()),
        ifindex: 3,
        weight: 1,
        flags: Vec::new(),
    };
    Route {
        prefix: "10.2.0.0/16".into(),
        kind: RouteKind::Unicast,
        table: 254,
        table_name: "main".into(),
        protocol: "bgp".into(),
        protocol_id: 186,
        metric: 20,
        preferred_source: None,
        members: vec![member("10.0.1.1", "Eth1-1"), member("10.0.2.1", "Eth1-2")],
        chosen: Some(0),
    }
}

fn hop(index: usize, agent: &str, egress: &str) -> FabricHop {
    FabricHop {
        index,
        kind: FabricHopKind::Switch,
        action: "forward".into(),
        description: format!("{agent} forwards it out of {egress}"),
        agent: agent.into(),
        vrf: "default".into(),
        ingress: (index > 1).then(|| "Eth1-5".to_string()),
        route: Some(route()),
        next_hop: Some("10.0.1.1".parse().unwrap()),
        neighbor: Some(Neighbor {
            address: "10.0.1.1".parse().unwrap(),
            interface: egress.into(),
            lladdr: Some("02:00:00:00:00:01".into()),
            state: NeighborState::Reachable,
            router: false,
        }),
        egress: Some(interface(egress)),
        load_share: Some(LoadShare {
            setting: "net.ipv4.fib_multipath_hash_policy".into(),
            policy: 1,
            mode: "L4: addresses, protocol and ports".into(),
        }),
        backend: "kernel".into(),
        elapsed_us: 812,
        agent_elapsed_us: 410,
        steps: Vec::new(),
        known: None,
    }
}

fn trace_of(hops: Vec<FabricHop>, outcome: Outcome) -> FabricTrace {
    FabricTrace {
        request: spec(),
        success: true,
        reaches_destination: matches!(outcome, Outcome::Delivered { .. }),
        outcome,
        hops,
        summary: "tcp 10.1.0.10:1234 -> 10.2.0.10:80 delivered through 2 switches".into(),
        elapsed_us: 2100,
        reverse: None,
        symmetry: None,
    }
}

#[test]
fn a_trace_reads_like_the_flowtracker_seed_with_what_the_collector_knows() {
    let mut first = hop(1, "leaf1", "Eth1-1");
    first.known = Some(Known {
        interface: "Ethernet1/1".into(),
        firing: vec![KnownAlert {
            rule: "tx-errors".into(),
            severity: "critical".into(),
            since: "2026-12-05T09:00:00.000Z".into(),
            message: "Eth1-1 tx_errors increased by 7 in 5s (threshold 3)".into(),
        }],
        changes: vec![
            KnownChange {
                at: "2026-12-05T09:01:00.000Z".into(),
                state: "down".into(),
            },
            KnownChange {
                at: "2026-12-05T09:01:30.000Z".into(),
                state: "up".into(),
            },
        ],
        down_s_24h: 30.0,
        unknown_s_24h: 0.0,
    });
    let mut last = hop(2, "leaf2", "Eth1-9");
    last.next_hop = None;
    last.neighbor = None;
    let text = trace(&trace_of(
        vec![first, last],
        Outcome::Delivered {
            agent: "leaf2".into(),
            interface: Some("Eth1-9".into()),
            local: false,
        },
    ));
    for want in [
        "FLOW OVERVIEW:\n\nSRC: 10.1.0.10\nDEST: 10.2.0.10\nPROTO: 6 (tcp)\nSRC_PORT: 1234\nDEST_PORT: 80\nVRF: default\nFROM: the switch 10.1.0.10 is attached to\n",
        "CONNECTED TO: leaf1 (kernel backend)\nHOP NUMBER: 1\nIN_IF: none (the flow enters the fabric here)\n",
        "LOAD_SHARE_MODE: L4: addresses, protocol and ports (net.ipv4.fib_multipath_hash_policy = 1)\nVRF: default\nROUTE: unicast 10.2.0.0/16 proto bgp metric 20 table main\n",
        "  nexthop via 10.0.1.1 dev Eth1-1 weight 1   <- this flow\n  nexthop via 10.0.2.1 dev Eth1-2 weight 1\n",
        "OUT_IF: Eth1-1\nDEST: 10.2.0.10\nNEXT_HOP: 10.0.1.1\n",
        "NEIGHBOR: 10.0.1.1 is at 02:00:00:00:00:01 on Eth1-1 (reachable)\n",
        "    235246 output packets  24675632 bytes\n    7 output error  0 output discard\n",
        "COLLECTOR:\n  FIRING: tx-errors (critical) since 2026-12-05T09:00:00.000Z: Eth1-1 tx_errors increased by 7 in 5s (threshold 3)\n  CHANGES (last 10m): down 2026-12-05T09:01:00.000Z, up 2026-12-05T09:01:30.000Z\n  DOWN (last 24h): 30.0s  UNKNOWN (agent silent): 0s\n",
        "Elapsed Time for Hop: 0.000812 seconds (the switch itself: 0.000410).",
        "CONNECTED TO: leaf2 (kernel backend)\nHOP NUMBER: 2\nIN_IF: Eth1-5\n",
        "NEXT_HOP: directly connected (10.2.0.10 on the subnet of Eth1-9)\n",
        "  nothing recorded of Eth1-9",
        "OUTCOME: delivered: leaf2 hands it to the host on its connected subnet on Eth1-9\nSWITCHES: leaf1 -> leaf2\nSUMMARY: tcp 10.1.0.10:1234 -> 10.2.0.10:80 delivered through 2 switches\n",
        "Elapsed Time for Trace: 0.002100 seconds.",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert_eq!(text.matches(RULE).count(), 3, "{text}");
}

#[test]
fn drops_stops_and_the_return_flow_are_told() {
    let mut dropped = hop(2, "spine1", "Eth1-3");
    dropped.egress = None;
    dropped.next_hop = None;
    dropped.neighbor = None;
    dropped.action = "drop".into();
    dropped.description = "blackhole route 10.2.0.0/16".into();
    dropped.steps = vec![Hop {
        index: 0,
        component: "spine1/default".into(),
        action: Action::Drop,
        description: "a blackhole route covers 10.2.0.10".into(),
        step: Step::Drop {
            reason: DropReason::Blackhole,
            route: None,
            setting: None,
            interface: None,
            neighbor: None,
            kernel_answer: None,
        },
    }];
    let mut silent = hop(2, "spine2", "Eth1-3");
    silent.kind = FabricHopKind::NoAnswer;
    silent.description = "spine2 did not answer within 2s".into();
    let mut forward = trace_of(
        vec![hop(1, "leaf1", "Eth1-1"), dropped],
        Outcome::Dropped {
            agent: "spine1".into(),
            reason: DropReason::Blackhole,
            description: "blackhole route 10.2.0.0/16".into(),
        },
    );
    let back = trace_of(
        vec![hop(1, "leaf2", "Eth1-1"), silent],
        Outcome::NoAnswer {
            agent: "spine2".into(),
            why: "did not answer within 2s".into(),
        },
    );
    forward.reverse = Some(Box::new(back));
    forward.symmetry = Some(Symmetry {
        symmetric: false,
        forward: vec!["leaf1".into(), "spine1".into()],
        reverse: vec!["spine2".into(), "leaf2".into()],
        only_forward: vec!["leaf1".into(), "spine1".into()],
        only_reverse: vec!["spine2".into(), "leaf2".into()],
        description: "the return flow crosses spine2 instead of spine1".into(),
    });
    let text = trace(&forward);
    for want in [
        "DROP: blackhole\n  WHY: a blackhole route covers 10.2.0.10\n",
        "OUTCOME: dropped by spine1 (blackhole): blackhole route 10.2.0.0/16",
        "RETURN FLOW:",
        "CONNECTED TO: spine2 (no answer)\nHOP NUMBER: 2\nIN_IF: Eth1-5\n\nRESULT: spine2 did not answer within 2s\n",
        "OUTCOME: no answer from spine2: did not answer within 2s",
        "SYMMETRY: ASYMMETRIC: the return flow crosses other switches\n  FORWARD: leaf1 -> spine1\n  RETURN (in forward order): spine2 -> leaf2\n",
        "  ONLY FORWARD: leaf1, spine1\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert_eq!(
        outcome_words(&Outcome::Loop {
            cycle: vec![
                LoopStep {
                    agent: "leaf1".into(),
                    ingress: None
                },
                LoopStep {
                    agent: "spine1".into(),
                    ingress: Some("Eth1-3".into())
                },
                LoopStep {
                    agent: "leaf1".into(),
                    ingress: Some("Eth1-1".into())
                },
            ]
        }),
        "loop: leaf1 -> spine1 (in Eth1-3) -> leaf1 (in Eth1-1)"
    );
    assert!(outcome_words(&Outcome::HopLimit { limit: 32 }).contains("after 32 switches"));
    assert!(
        outcome_words(&Outcome::Unmanaged {
            agent: "leaf2".into(),
            address: "10.9.9.9".parse().unwrap()
        })
        .contains("to 10.9.9.9, which no agent owns")
    );
}

#[test]
fn names_from_the_network_cannot_reach_the_terminal() {
    let mut evil = hop(1, "leaf\u{1b}]0;owned\u{7}1", "Eth1-1\u{1b}[2J");
    evil.description = "line one\nline two".into();
    evil.known = Some(Known {
        interface: "Eth1-1".into(),
        firing: vec![KnownAlert {
            rule: "r\u{9b}".into(),
            severity: "critical".into(),
            since: "t".into(),
            message: "m\u{202e}".into(),
        }],
        changes: vec![],
        down_s_24h: 0.0,
        unknown_s_24h: 0.0,
    });
    let text = trace(&trace_of(vec![evil], Outcome::HopLimit { limit: 1 }));
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(!text.contains('\u{202e}'));
    assert!(
        text.contains("CONNECTED TO: leaf\\x1b]0;owned\\x071"),
        "{text}"
    );
    assert!(text.contains("RESULT: line one\\x0aline two"), "{text}");
    assert!(text.contains("r\\u{9b}"), "{text}");

    // The paths table too: its cells are names from the network.
    let tree = PathTree {
        request: spec(),
        success: true,
        reaches_destination: false,
        tree: Branch {
            hop: hop(1, "leaf\u{1b}[31m1", "Eth1-1"),
            member: None,
            children: Vec::new(),
            outcome: None,
        },
        paths: vec![FabricPath {
            id: 1,
            hops: vec![PathStep {
                agent: "spine\u{7}1".into(),
                ingress: None,
                egress: Some("Eth\u{202e}1".into()),
                next_hop: None,
            }],
            outcome: Outcome::HopLimit { limit: 1 },
            reaches_destination: false,
            flows: None,
        }],
        flows: None,
        cut: vec!["cut\u{1b}".into()],
        summary: "s\u{1b}".into(),
        elapsed_us: 1,
    };
    let text = paths(&tree);
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(!text.contains('\u{202e}'));
    assert!(text.contains("spine\\x071 Eth\\u{202e}1"), "{text}");
}

#[test]
fn all_paths_sit_side_by_side() {
    let step = |agent: &str, egress: Option<&str>| PathStep {
        agent: agent.into(),
        ingress: None,
        egress: egress.map(str::to_string),
        next_hop: None,
    };
    let delivered = Outcome::Delivered {
        agent: "leaf2".into(),
        interface: Some("Eth1-9".into()),
        local: false,
    };
    let mut root = hop(1, "leaf1", "Eth1-1");
    root.known = Some(Known {
        interface: "Eth1-1".into(),
        firing: vec![],
        changes: vec![KnownChange {
            at: "t".into(),
            state: "down".into(),
        }],
        down_s_24h: 125.0,
        unknown_s_24h: 0.0,
    });
    let tree = PathTree {
        request: spec(),
        success: true,
        reaches_destination: false,
        tree: Branch {
            hop: root,
            member: None,
            children: Vec::new(),
            outcome: None,
        },
        paths: vec![
            FabricPath {
                id: 1,
                hops: vec![
                    step("leaf1", Some("Eth1-1")),
                    step("spine1", Some("Eth1-3")),
                    step("leaf2", Some("Eth1-9")),
                ],
                outcome: delivered.clone(),
                reaches_destination: true,
                flows: Some(512),
            },
            FabricPath {
                id: 2,
                hops: vec![step("leaf1", Some("Eth1-2")), step("spine2", None)],
                outcome: Outcome::Dropped {
                    agent: "spine2".into(),
                    reason: DropReason::Blackhole,
                    description: "blackhole route".into(),
                },
                reaches_destination: false,
                flows: Some(488),
            },
        ],
        flows: Some(FlowSpread {
            first: 1000,
            last: 1999,
            flows: 1000,
            unfollowed: 0,
        }),
        cut: vec!["max_branches 2 reached: 1 member not followed".into()],
        summary: "2 paths, 1 delivers".into(),
        elapsed_us: 3000,
    };
    let text = paths(&tree);
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("HOP:"))
        .expect(&text);
    assert_eq!(
        lines[header],
        "HOP:       | 1            | 2             | 3            | RESULT     | FLOWS"
    );
    assert_eq!(
        lines[header + 1],
        "Path 1     | leaf1 Eth1-1 | spine1 Eth1-3 | leaf2 Eth1-9 | delivered  | 512"
    );
    assert_eq!(
        lines[header + 2],
        "Path 2     | leaf1 Eth1-2 | spine2        |              | dropped    | 488"
    );
    for want in [
        "Path 2: dropped by spine2 (blackhole): blackhole route",
        "FLOWS: 1000 source ports 1000-1999\n",
        "COLLECTOR:\n  leaf1 Eth1-1: 1 link changes in the last 10m, down 2m 5s in the last 24h\n",
        "CUT SHORT: max_branches 2 reached",
        "SUMMARY: 2 paths, 1 delivers",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}
