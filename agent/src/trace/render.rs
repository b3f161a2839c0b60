//! The human forms of a trace and of a paths answer. A trace reads like the
//! flowtracker seed's per-hop block (FLOW OVERVIEW, then the switch with its
//! LOAD_SHARE_MODE, VRF, OUT_IF, NEXT_HOP and the egress counters, then the
//! elapsed time), so operators used to it find each line where they expect.

use super::paths::Paths;
use super::{HashInfo, Interface, Route, Step, Trace, proto_name};
use hopwatch_wire::trace::{port_words, proto_words};
use std::fmt::Write as _;

const RULE: &str = "#############################################################################";

/// The trace as a person reads it.
pub fn trace(trace: &Trace) -> String {
    let mut out = String::new();
    let request = &trace.request;
    let _ = writeln!(out, "FLOW OVERVIEW:\n");
    let _ = writeln!(
        out,
        "SRC: {}",
        request
            .src
            .map_or_else(|| "this switch".to_string(), |s| s.to_string())
    );
    let _ = writeln!(out, "DEST: {}", request.dst);
    let _ = writeln!(out, "PROTO: {}", proto_words(request.proto));
    let _ = writeln!(out, "SRC_PORT: {}", port_words(request.sport));
    let _ = writeln!(out, "DEST_PORT: {}", port_words(request.dport));
    match (&trace.ingress_interface, trace.ingress_inferred) {
        (Some(iif), true) => {
            let _ = writeln!(
                out,
                "IN_IF: {iif} (inferred: the route back to {} leaves by {iif})",
                request.src.map_or_else(String::new, |s| s.to_string())
            );
        }
        (Some(iif), false) => {
            let _ = writeln!(out, "IN_IF: {iif}");
        }
        (None, _) => {
            let _ = writeln!(out, "IN_IF: none (originated by the switch)");
        }
    }
    let _ = writeln!(out, "VRF: {}", request.vrf);
    let _ = writeln!(out, "\n\n{RULE}\n");

    let _ = writeln!(out, "SWITCH: {} ({} backend)", trace.switch, trace.backend);
    let _ = writeln!(out, "HOP NUMBER: 1\n");
    match &trace.load_share {
        Some(share) => {
            let _ = writeln!(
                out,
                "LOAD_SHARE_MODE: {} ({} = {})",
                share.mode, share.setting, share.policy
            );
        }
        None => {
            let _ = writeln!(out, "LOAD_SHARE_MODE: unknown (hash policy unreadable)");
        }
    }
    if let Some(hash) = &trace.hash {
        write_hash(hash, &mut out);
    }
    let _ = writeln!(out, "VRF: {}", request.vrf);
    if let Some(route) = trace.route() {
        route.write_block(&mut out);
    }

    let mut egress: Option<&Interface> = None;
    // The drop is told last, after the interface it may concern.
    let mut dropped = String::new();
    for hop in &trace.hops {
        match &hop.step {
            Step::L3Routing {
                source_address: Some(src),
                ..
            } if request.src.is_none() => {
                let _ = writeln!(out, "SOURCE_ADDRESS: {src} (chosen by the switch)");
            }
            Step::Local { interface, .. } => {
                let _ = writeln!(
                    out,
                    "OUT_IF: {} , local",
                    interface.as_deref().unwrap_or("lo")
                );
                let _ = writeln!(out, "DEST: {}", request.dst);
                let _ = writeln!(out, "NEXT_HOP: this switch");
            }
            Step::Neighbor { .. } => {
                let _ = writeln!(out, "NEIGHBOR: {}", hop.description);
            }
            Step::Egress { interface } => egress = Some(interface),
            Step::Drop {
                reason,
                route,
                setting,
                interface,
                neighbor,
                kernel_answer,
            } => {
                if let Some(interface) = interface {
                    egress = Some(interface);
                }
                let _ = writeln!(dropped, "\nDROP: {reason}");
                let _ = writeln!(dropped, "  WHY: {}", hop.description);
                if let Some(route) = route
                    && trace.route() != Some(route)
                {
                    let _ = writeln!(dropped, "  ROUTE: {}", route.line());
                }
                if let Some(setting) = setting {
                    let _ = writeln!(dropped, "  SETTING: {setting}");
                }
                if let Some(neighbor) = neighbor {
                    let _ = writeln!(
                        dropped,
                        "  NEIGHBOR: {} on {} ({})",
                        neighbor.address, neighbor.interface, neighbor.state
                    );
                }
                if let Some(words) = kernel_answer {
                    let _ = writeln!(dropped, "  KERNEL ANSWER: {words}");
                }
            }
            _ => {}
        }
    }
    if let Some(interface) = egress {
        let _ = writeln!(out, "OUT_IF: {}", interface.name);
        let _ = writeln!(out, "DEST: {}", request.dst);
        let _ = writeln!(
            out,
            "NEXT_HOP: {}",
            trace
                .next_hop
                .map_or_else(|| "directly connected".to_string(), |gw| gw.to_string())
        );
        interface.write_block(&mut out);
    }
    out.push_str(&dropped);
    let _ = writeln!(out, "\nRESULT: {}", trace.summary);
    let _ = writeln!(
        out,
        "\n\nElapsed Time for Hop: {:.6} seconds.",
        trace.elapsed_us as f64 / 1e6
    );
    out
}

/// `HASH:` the inputs and whether the answer holds for real packets, with
/// the caveat when it may not.
fn write_hash(hash: &HashInfo, out: &mut String) {
    let inputs: Vec<String> = hash
        .inputs
        .iter()
        .map(|input| match hash.flowlabel {
            Some(label) if input == "flowlabel" => format!("flowlabel {label:#x}"),
            _ => input.clone(),
        })
        .collect();
    let inputs = if inputs.is_empty() {
        "nothing known".to_string()
    } else {
        inputs.join(", ")
    };
    let exact = if hash.exact {
        "exact for real packets"
    } else {
        "real packets may differ"
    };
    let _ = writeln!(out, "HASH: {inputs} ({exact})");
    if let Some(caveat) = &hash.caveat {
        let _ = writeln!(out, "HASH CAVEAT: {caveat}");
    }
}

/// A paths answer as a person reads it: one row per member, the verdict,
/// and with `per_flow` every flow after.
pub fn paths(paths: &Paths) -> String {
    let mut out = String::new();
    let request = &paths.request;
    let proto = proto_name(request.proto).map_or_else(|| request.proto.to_string(), str::to_string);
    let source = request
        .src
        .map_or_else(|| "this switch".to_string(), |s| s.to_string());
    let sports = match (request.sport_range, request.samples) {
        (Some(range), _) => format!("source ports {range}"),
        (None, Some(n)) => format!(
            "{n} sampled source ports (seed {})",
            request.seed.unwrap_or_default()
        ),
        (None, None) => String::new(),
    };
    let dports = match (request.dport, request.dport_range) {
        (Some(p), _) => format!(", destination port {p}"),
        (None, Some(range)) => format!(", destination ports {range}"),
        (None, None) => String::new(),
    };
    let _ = writeln!(
        out,
        "PATHS: {proto} {source} -> {}, {sports}{dports}: {} flows",
        request.dst, paths.flows
    );
    let _ = writeln!(out, "SWITCH: {}", paths.switch);
    let _ = writeln!(out, "VRF: {}", request.vrf);
    if let Some(iif) = &paths.ingress_interface {
        let inferred = if paths.ingress_inferred {
            " (inferred from the route back to the source)"
        } else {
            ""
        };
        let _ = writeln!(out, "IN_IF: {iif}{inferred}");
    }
    if let Some(share) = &paths.load_share {
        let _ = writeln!(
            out,
            "LOAD_SHARE_MODE: {} ({} = {})",
            share.mode, share.setting, share.policy
        );
    }
    if let Some(hash) = &paths.hash {
        write_hash(hash, &mut out);
    }
    let route = paths
        .route
        .as_ref()
        .map_or_else(|| "none".to_string(), Route::line);
    let _ = writeln!(out, "ROUTE: {route}\n");
    if let Some(drop) = &paths.drop {
        let _ = writeln!(out, "DROP: {}", drop.description);
    } else {
        let _ = writeln!(
            out,
            "{:<40} {:<16} {:>6} {:<8} {:>8} {:>7} {:>9}",
            "NEXT_HOP", "OUT_IF", "WEIGHT", "STATE", "FLOWS", "SHARE", "EXPECTED"
        );
    }
    for m in &paths.members {
        let _ = writeln!(
            out,
            "{:<40} {:<16} {:>6} {:<8} {:>8} {:>6.1}% {:>8.1}%",
            m.next_hop
                .map_or_else(|| "connected".to_string(), |gw| gw.to_string()),
            m.interface.as_deref().unwrap_or("?"),
            m.weight,
            m.state.as_str(),
            m.count,
            m.share * 100.0,
            m.expected_share * 100.0
        );
    }
    if paths.dropped > 0 && paths.drop.is_none() {
        let _ = writeln!(
            out,
            "{} flows are dropped on members whose link is down",
            paths.dropped
        );
    }
    if paths.unrouted > 0 && paths.drop.is_none() {
        let _ = writeln!(out, "{} flows were not routed", paths.unrouted);
    }
    let _ = writeln!(out, "\nVERDICT: {}", paths.verdict.text);
    if let Some(note) = &paths.note {
        let _ = writeln!(out, "NOTE: {note}");
    }
    if let Some(detail) = &paths.flows_detail {
        let _ = writeln!(
            out,
            "\n{:>6} {:>6} {:<40} OUT_IF",
            "SPORT", "DPORT", "NEXT_HOP"
        );
        for flow in detail {
            let _ = writeln!(
                out,
                "{:>6} {:>6} {:<40} {}",
                flow.sport,
                flow.dport
                    .map_or_else(|| "-".to_string(), |p| p.to_string()),
                flow.next_hop.map_or_else(
                    || flow.error.clone().unwrap_or_else(|| "connected".into()),
                    |gw| gw.to_string()
                ),
                flow.interface.as_deref().unwrap_or("-")
            );
        }
    }
    let _ = writeln!(
        out,
        "\nElapsed Time: {:.6} seconds ({:.1} µs per flow).",
        paths.elapsed_us as f64 / 1e6,
        paths.elapsed_us as f64 / paths.flows.max(1) as f64
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{
        Action, Counters, DropReason, FlowQuery, Hop, LoadShare, Member, MemberState, Neighbor,
        NeighborState, OperState, RouteKind, paths::PathMember, paths::PathsQuery,
        paths::PortRange, paths::SourcePorts, paths::Verdict,
    };

    fn route() -> Route {
        let member = |gw: &str, dev: &str, weight| Member {
            next_hop: Some(gw.parse().unwrap()),
            interface: Some(dev.into()),
            ifindex: 2,
            weight,
            flags: Vec::new(),
        };
        Route {
            prefix: "10.9.0.0/16".into(),
            kind: RouteKind::Unicast,
            table: 254,
            table_name: "main".into(),
            protocol: "bgp".into(),
            protocol_id: 186,
            metric: 20,
            preferred_source: None,
            members: vec![
                member("10.0.1.2", "sw-p1", 1),
                member("10.0.2.2", "sw-p2", 2),
            ],
            chosen: Some(1),
        }
    }

    fn forwarded() -> Trace {
        let mut request = FlowQuery::new("10.9.1.1".parse().unwrap());
        request.src = Some("10.0.0.2".parse().unwrap());
        request.proto = Some(6);
        request.sport = Some(1234);
        request.dport = Some(80);
        let hop = |index, action: Action, step| Hop {
            index,
            component: "sw1/default".into(),
            action,
            description: format!("{action} hop"),
            step,
        };
        Trace {
            request,
            success: true,
            reaches_destination: true,
            next_hop: Some("10.0.2.2".parse().unwrap()),
            egress_interface: Some("sw-p2".into()),
            ingress_interface: Some("sw-in".into()),
            ingress_inferred: true,
            hops: vec![
                hop(
                    0,
                    Action::Forward,
                    Step::L3Routing {
                        route: route(),
                        source_address: None,
                    },
                ),
                hop(
                    1,
                    Action::Resolve,
                    Step::Neighbor {
                        neighbor: Neighbor {
                            address: "10.0.2.2".parse().unwrap(),
                            interface: "sw-p2".into(),
                            lladdr: Some("02:00:00:00:00:02".into()),
                            state: NeighborState::Reachable,
                            router: false,
                        },
                    },
                ),
                hop(
                    2,
                    Action::Output,
                    Step::Egress {
                        interface: Interface {
                            name: "sw-p2".into(),
                            ifindex: 2,
                            oper_state: OperState::Up,
                            admin_up: true,
                            carrier: true,
                            mtu: Some(1500),
                            speed_mbps: Some(10_000),
                            counters: Some(Counters {
                                tx_packets: 42,
                                ..Counters::default()
                            }),
                        },
                    },
                ),
            ],
            summary: "leaves by sw-p2".into(),
            switch: "sw1".into(),
            backend: "kernel".into(),
            load_share: Some(LoadShare {
                setting: "net.ipv4.fib_multipath_hash_policy".into(),
                policy: 1,
                mode: "L4: ports".into(),
            }),
            elapsed_us: 84,
            hash: Some(crate::trace::hash::describe(
                crate::trace::hash::HashedFlow {
                    ipv4: true,
                    forwarded: true,
                    proto: Some(6),
                    flowlabel: None,
                },
                1,
                None,
            )),
        }
    }

    #[test]
    fn a_forwarded_flow_reads_like_flowtracker() {
        let text = trace(&forwarded());
        for line in [
            "FLOW OVERVIEW:",
            "SRC: 10.0.0.2",
            "PROTO: 6 (tcp)",
            "SRC_PORT: 1234",
            "IN_IF: sw-in (inferred: the route back to 10.0.0.2 leaves by sw-in)",
            "SWITCH: sw1 (kernel backend)",
            "LOAD_SHARE_MODE: L4: ports (net.ipv4.fib_multipath_hash_policy = 1)",
            "HASH: src, dst, proto, sport, dport (real packets may differ)",
            "HASH CAVEAT: a forwarded packet that already carries an L4 hash",
            "ROUTE: unicast 10.9.0.0/16 proto bgp metric 20 table main",
            "  nexthop via 10.0.2.2 dev sw-p2 weight 2   <- this flow",
            "OUT_IF: sw-p2",
            "NEXT_HOP: 10.0.2.2",
            "NEIGHBOR: resolve hop",
            "  STATE: up  MTU: 1500  SPEED: 10000 Mb/s",
            "    42 output packets  0 bytes",
            "Elapsed Time for Hop: 0.000084 seconds.",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }

    #[test]
    fn a_drop_names_its_reason_and_setting() {
        let mut t = forwarded();
        t.hops.truncate(1);
        t.hops.push(Hop {
            index: 1,
            component: "sw1/default".into(),
            action: Action::Drop,
            description: "sw-in does not forward IPv4".into(),
            step: Step::Drop {
                reason: DropReason::ForwardingDisabled,
                route: None,
                setting: Some("net.ipv4.conf.sw-in.forwarding = 0".into()),
                interface: None,
                neighbor: None,
                kernel_answer: Some("No route to host".into()),
            },
        });
        let text = trace(&t);
        assert!(text.contains("DROP: forwarding_disabled"), "{text}");
        assert!(
            text.contains("  SETTING: net.ipv4.conf.sw-in.forwarding = 0"),
            "{text}"
        );
        assert!(text.contains("  KERNEL ANSWER: No route to host"), "{text}");
    }

    #[test]
    fn paths_show_a_row_per_member() {
        let mut request = PathsQuery::new(
            "10.9.1.1".parse().unwrap(),
            6,
            SourcePorts::Range(PortRange {
                first: 1000,
                last: 1002,
            }),
        );
        request.dport = Some(80);
        let answer = Paths {
            request,
            flows: 3,
            members: vec![PathMember {
                next_hop: Some("10.0.1.2".parse().unwrap()),
                interface: Some("sw-p1".into()),
                weight: 1,
                count: 3,
                share: 1.0,
                expected_share: 1.0,
                state: MemberState::Up,
            }],
            verdict: Verdict {
                even: true,
                chi_square: 0.0,
                degrees_of_freedom: 0,
                p_value: 1.0,
                text: "even: a single path".into(),
            },
            unrouted: 0,
            dropped: 0,
            route: Some(route()),
            drop: None,
            load_share: None,
            ingress_interface: None,
            ingress_inferred: false,
            note: None,
            switch: "sw1".into(),
            elapsed_us: 30,
            flows_detail: None,
            hash: None,
        };
        let text = paths(&answer);
        assert!(
            text.contains("PATHS: tcp this switch -> 10.9.1.1, source ports 1000-1002, destination port 80: 3 flows"),
            "{text}"
        );
        assert!(text.contains("sw-p1"), "{text}");
        assert!(text.contains("100.0%"), "{text}");
        assert!(text.contains("VERDICT: even: a single path"), "{text}");
        assert!(text.contains("STATE"), "{text}");
        assert!(text.contains(" up "), "{text}");
    }
}
