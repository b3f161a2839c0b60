//! Human output of fabric traces for `hopwatch-collector trace`: a block per
//! hop like the flowtracker seed (FLOW OVERVIEW, then CONNECTED TO, HOP
//! NUMBER, LOAD_SHARE_MODE, VRF, OUT_IF, NEXT_HOP, the egress counters and
//! the time the hop took), so operators used to it find each line where
//! they expect, with what the collector knows of each egress added; and all
//! paths side by side like traceflow's table.
//!
//! Pure: values in, text out. Every name and sentence in a trace came from
//! a switch (agent names, interface names, descriptions), so each is
//! escaped for the terminal as it is written; the layout's own line breaks
//! are the only ones printed.

use super::{
    Branch, FabricHop, FabricHopKind, FabricTrace, FlowSpec, Known, Outcome, PathTree, Symmetry,
};
use hopwatch_wire::text::escape;
use hopwatch_wire::trace::{Interface, Route, Step, proto_name};
use std::fmt::Write as _;

const RULE: &str = "#############################################################################";

/// One trace (and its return trace, when asked for) as a person reads it.
pub fn trace(trace: &FabricTrace) -> String {
    let mut out = String::new();
    overview(&mut out, &trace.request);
    trace_body(&mut out, trace);
    if let Some(reverse) = &trace.reverse {
        let _ = writeln!(
            out,
            "\n\n=============================================================================\n"
        );
        let _ = writeln!(out, "RETURN FLOW:\n");
        overview(&mut out, &reverse.request);
        trace_body(&mut out, reverse);
    }
    if let Some(symmetry) = &trace.symmetry {
        symmetry_block(&mut out, symmetry);
    }
    out
}

fn overview(out: &mut String, spec: &FlowSpec) {
    let _ = writeln!(out, "FLOW OVERVIEW:\n");
    let _ = writeln!(out, "SRC: {}", spec.src);
    let _ = writeln!(out, "DEST: {}", spec.dst);
    let _ = writeln!(out, "PROTO: {}", proto_words(spec.proto));
    let _ = writeln!(out, "SRC_PORT: {}", port_words(spec.sport));
    let _ = writeln!(out, "DEST_PORT: {}", port_words(spec.dport));
    let _ = writeln!(out, "VRF: {}", escape(&spec.vrf));
    match &spec.from {
        Some(agent) => {
            let _ = writeln!(out, "FROM: {}", escape(agent));
        }
        None => {
            let _ = writeln!(out, "FROM: the switch {} is attached to", spec.src);
        }
    }
}

fn trace_body(out: &mut String, trace: &FabricTrace) {
    for hop in &trace.hops {
        let _ = writeln!(out, "\n\n{RULE}\n");
        hop_block(out, hop, &trace.request);
    }
    let _ = writeln!(out, "\n\n{RULE}\n");
    let _ = writeln!(out, "OUTCOME: {}", outcome_words(&trace.outcome));
    let path: Vec<String> = trace
        .hops
        .iter()
        .map(|h| escape(&h.agent).into_owned())
        .collect();
    if !path.is_empty() {
        let _ = writeln!(out, "SWITCHES: {}", path.join(" -> "));
    }
    let _ = writeln!(out, "SUMMARY: {}", escape(&trace.summary));
    let _ = writeln!(
        out,
        "\nElapsed Time for Trace: {:.6} seconds.",
        trace.elapsed_us as f64 / 1e6
    );
}

fn hop_block(out: &mut String, hop: &FabricHop, spec: &FlowSpec) {
    let agent = escape(&hop.agent);
    match hop.kind {
        FabricHopKind::Switch => {
            let backend = if hop.backend.is_empty() {
                String::new()
            } else {
                format!(" ({} backend)", escape(&hop.backend))
            };
            let _ = writeln!(out, "CONNECTED TO: {agent}{backend}");
        }
        FabricHopKind::NoAnswer => {
            let _ = writeln!(out, "CONNECTED TO: {agent} (no answer)");
        }
        FabricHopKind::Unmanaged => {
            let _ = writeln!(out, "CONNECTED TO: {agent} (unmanaged: no agent owns it)");
        }
    }
    let _ = writeln!(out, "HOP NUMBER: {}", hop.index);
    match &hop.ingress {
        Some(iif) => {
            let _ = writeln!(out, "IN_IF: {}", escape(iif));
        }
        None if hop.index <= 1 => {
            let _ = writeln!(out, "IN_IF: none (the flow enters the fabric here)");
        }
        None => {}
    }
    if hop.kind != FabricHopKind::Switch {
        let _ = writeln!(out, "\nRESULT: {}", escape(&hop.description));
        elapsed(out, hop);
        return;
    }
    let _ = writeln!(out);
    match &hop.load_share {
        Some(share) => {
            let _ = writeln!(
                out,
                "LOAD_SHARE_MODE: {} ({} = {})",
                escape(&share.mode),
                escape(&share.setting),
                share.policy
            );
        }
        None => {
            let _ = writeln!(out, "LOAD_SHARE_MODE: unknown");
        }
    }
    let _ = writeln!(out, "VRF: {}", escape(&hop.vrf));
    if let Some(route) = &hop.route {
        route_block(out, route);
    }
    let local = hop.steps.iter().find_map(|s| match &s.step {
        Step::Local { interface, .. } => Some(interface.as_deref().unwrap_or("lo")),
        _ => None,
    });
    if let Some(interface) = local {
        let _ = writeln!(out, "OUT_IF: {} , local", escape(interface));
        let _ = writeln!(out, "DEST: {}", spec.dst);
        let _ = writeln!(out, "NEXT_HOP: this switch");
    } else if let Some(egress) = &hop.egress {
        let _ = writeln!(out, "OUT_IF: {}", escape(&egress.name));
        let _ = writeln!(out, "DEST: {}", spec.dst);
        let next = match hop.next_hop {
            Some(gw) => gw.to_string(),
            None => format!(
                "directly connected ({} on the subnet of {})",
                spec.dst,
                escape(&egress.name)
            ),
        };
        let _ = writeln!(out, "NEXT_HOP: {next}");
    }
    if let Some(neighbor) = &hop.neighbor {
        let _ = writeln!(
            out,
            "NEIGHBOR: {} is at {} on {} ({})",
            neighbor.address,
            neighbor
                .lladdr
                .as_deref()
                .map_or_else(|| "no link-layer address yet".into(), escape),
            escape(&neighbor.interface),
            neighbor.state
        );
    }
    if let Some(egress) = &hop.egress {
        interface_block(out, egress);
        known_block(out, hop.known.as_ref(), &egress.name);
    }
    for step in &hop.steps {
        if let Step::Drop {
            reason, setting, ..
        } = &step.step
        {
            let _ = writeln!(out, "\nDROP: {reason}");
            let _ = writeln!(out, "  WHY: {}", escape(&step.description));
            if let Some(setting) = setting {
                let _ = writeln!(out, "  SETTING: {}", escape(setting));
            }
        }
    }
    let _ = writeln!(out, "\nRESULT: {}", escape(&hop.description));
    elapsed(out, hop);
}

fn elapsed(out: &mut String, hop: &FabricHop) {
    let own = if hop.agent_elapsed_us > 0 {
        format!(
            " (the switch itself: {:.6})",
            hop.agent_elapsed_us as f64 / 1e6
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "\n\nElapsed Time for Hop: {:.6} seconds{own}.",
        hop.elapsed_us as f64 / 1e6
    );
}

fn proto_words(proto: Option<u8>) -> String {
    match proto {
        Some(p) => match proto_name(p) {
            Some(name) => format!("{p} ({name})"),
            None => p.to_string(),
        },
        None => "any (not part of the lookup)".into(),
    }
}

fn port_words(port: Option<u16>) -> String {
    port.map_or_else(|| "-".to_string(), |p| p.to_string())
}

fn route_line(route: &Route) -> String {
    format!(
        "{} {} proto {} metric {} table {}",
        escape(route.kind.as_str()),
        escape(&route.prefix),
        escape(&route.protocol),
        route.metric,
        escape(&route.table_name)
    )
}

fn route_block(out: &mut String, route: &Route) {
    let _ = writeln!(out, "ROUTE: {}", route_line(route));
    if route.members.len() > 1 {
        for (i, member) in route.members.iter().enumerate() {
            let _ = write!(out, "  nexthop");
            if let Some(gw) = member.next_hop {
                let _ = write!(out, " via {gw}");
            }
            let _ = write!(
                out,
                " dev {} weight {}",
                escape(member.interface.as_deref().unwrap_or("?")),
                member.weight
            );
            for flag in &member.flags {
                let _ = write!(out, " {}", escape(flag.as_str()));
            }
            if route.chosen == Some(i) {
                let _ = write!(out, "   <- this flow");
            }
            let _ = writeln!(out);
        }
    }
}

fn interface_block(out: &mut String, interface: &Interface) {
    let _ = writeln!(out, "\nOUT_IF:");
    let _ = write!(
        out,
        "  STATE: {}{}{}",
        escape(interface.oper_state.as_str()),
        if interface.admin_up {
            ""
        } else {
            " (admin down)"
        },
        if interface.carrier || !interface.admin_up {
            ""
        } else {
            " (no carrier)"
        }
    );
    if let Some(mtu) = interface.mtu {
        let _ = write!(out, "  MTU: {mtu}");
    }
    match interface.speed_mbps {
        Some(speed) => {
            let _ = writeln!(out, "  SPEED: {speed} Mb/s");
        }
        None => {
            let _ = writeln!(out, "  SPEED: N/A");
        }
    }
    match interface.counters {
        Some(c) => {
            let _ = writeln!(out, "  RX_STATS:");
            let _ = writeln!(
                out,
                "    {} input packets  {} bytes",
                c.rx_packets, c.rx_bytes
            );
            let _ = writeln!(
                out,
                "    {} input error  {} input discard",
                c.rx_errors, c.rx_dropped
            );
            let _ = writeln!(out, "  TX_STATS:");
            let _ = writeln!(
                out,
                "    {} output packets  {} bytes",
                c.tx_packets, c.tx_bytes
            );
            let _ = writeln!(
                out,
                "    {} output error  {} output discard",
                c.tx_errors, c.tx_dropped
            );
        }
        None => {
            let _ = writeln!(out, "  RX_STATS: N/A\n  TX_STATS: N/A");
        }
    }
}

/// What the collector knows of the egress: its own history, which no
/// switch's answer holds.
fn known_block(out: &mut String, known: Option<&Known>, interface: &str) {
    let _ = writeln!(out, "\nCOLLECTOR:");
    let Some(known) = known else {
        let _ = writeln!(
            out,
            "  nothing recorded of {} (no link events, alerts or heartbeats name it)",
            escape(interface)
        );
        return;
    };
    if known.firing.is_empty() {
        let _ = writeln!(out, "  FIRING: none");
    }
    for alert in &known.firing {
        let _ = writeln!(
            out,
            "  FIRING: {} ({}) since {}: {}",
            escape(&alert.rule),
            escape(&alert.severity),
            escape(&alert.since),
            escape(&alert.message)
        );
    }
    if known.changes.is_empty() {
        let _ = writeln!(out, "  CHANGES (last 10m): none");
    } else {
        let changes: Vec<String> = known
            .changes
            .iter()
            .map(|c| format!("{} {}", escape(&c.state), escape(&c.at)))
            .collect();
        let _ = writeln!(out, "  CHANGES (last 10m): {}", changes.join(", "));
    }
    let _ = writeln!(
        out,
        "  DOWN (last 24h): {}  UNKNOWN (agent silent): {}",
        seconds(known.down_s_24h),
        seconds(known.unknown_s_24h)
    );
}

fn seconds(s: f64) -> String {
    if s == 0.0 {
        "0s".into()
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else {
        humantime::format_duration(std::time::Duration::from_secs(s.round() as u64)).to_string()
    }
}

/// How a trace ended, in a sentence.
pub fn outcome_words(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Delivered {
            agent,
            interface,
            local,
        } => match (local, interface) {
            (true, _) => format!("delivered to {} itself", escape(agent)),
            (false, Some(interface)) => format!(
                "delivered: {} hands it to the host on its connected subnet on {}",
                escape(agent),
                escape(interface)
            ),
            (false, None) => format!("delivered by {}", escape(agent)),
        },
        Outcome::Dropped {
            agent,
            reason,
            description,
        } => format!(
            "dropped by {} ({reason}): {}",
            escape(agent),
            escape(description)
        ),
        Outcome::Unmanaged { agent, address } => format!(
            "leaves the managed fabric: {} forwards it to {address}, which no agent owns",
            escape(agent)
        ),
        Outcome::NoAnswer { agent, why } => {
            format!("no answer from {}: {}", escape(agent), escape(why))
        }
        Outcome::Loop { cycle } => {
            let steps: Vec<String> = cycle
                .iter()
                .map(|s| match &s.ingress {
                    Some(iif) => format!("{} (in {})", escape(&s.agent), escape(iif)),
                    None => escape(&s.agent).into_owned(),
                })
                .collect();
            format!("loop: {}", steps.join(" -> "))
        }
        Outcome::HopLimit { limit } => {
            format!(
                "stopped after {limit} switches (the hop limit) before it was delivered or dropped"
            )
        }
    }
}

fn symmetry_block(out: &mut String, symmetry: &Symmetry) {
    let names = |list: &[String]| {
        list.iter()
            .map(|n| escape(n).into_owned())
            .collect::<Vec<_>>()
            .join(" -> ")
    };
    let _ = writeln!(out, "\n\n{RULE}\n");
    let _ = writeln!(
        out,
        "SYMMETRY: {}",
        if symmetry.symmetric {
            "symmetric: both directions cross the same switches"
        } else {
            "ASYMMETRIC: the return flow crosses other switches"
        }
    );
    let _ = writeln!(out, "  FORWARD: {}", names(&symmetry.forward));
    let _ = writeln!(
        out,
        "  RETURN (in forward order): {}",
        names(&symmetry.reverse)
    );
    if !symmetry.only_forward.is_empty() {
        let _ = writeln!(
            out,
            "  ONLY FORWARD: {}",
            names(&symmetry.only_forward).replace(" -> ", ", ")
        );
    }
    if !symmetry.only_reverse.is_empty() {
        let _ = writeln!(
            out,
            "  ONLY RETURN: {}",
            names(&symmetry.only_reverse).replace(" -> ", ", ")
        );
    }
    let _ = writeln!(out, "  {}", escape(&symmetry.description));
}

/// Every path of a multi-path answer side by side, one row per path and
/// one column per hop, like traceflow's table; then how each ends, how
/// the source ports spread, and what the collector knows of the egresses.
pub fn paths(tree: &PathTree) -> String {
    let mut out = String::new();
    overview(&mut out, &tree.request);
    let _ = writeln!(out, "\n");
    let width = tree.paths.iter().map(|p| p.hops.len()).max().unwrap_or(0);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["HOP:".to_string()];
    header.extend((1..=width).map(|n| n.to_string()));
    header.push("RESULT".into());
    let spread = tree.flows.is_some();
    if spread {
        header.push("FLOWS".into());
    }
    rows.push(header);
    for path in &tree.paths {
        let mut row = vec![format!("Path {}", path.id)];
        for i in 0..width {
            row.push(match path.hops.get(i) {
                Some(step) => match &step.egress {
                    Some(egress) => format!("{} {}", escape(&step.agent), escape(egress)),
                    None => escape(&step.agent).into_owned(),
                },
                None => String::new(),
            });
        }
        row.push(path.outcome.as_str().to_string());
        if spread {
            row.push(
                path.flows
                    .map_or_else(|| "-".to_string(), |n| n.to_string()),
            );
        }
        rows.push(row);
    }
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
                .max(10)
        })
        .collect();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<w$}", w = widths[c]))
            .collect();
        let _ = writeln!(out, "{}", cells.join(" | ").trim_end());
    }
    let _ = writeln!(out);
    for path in &tree.paths {
        let _ = writeln!(out, "Path {}: {}", path.id, outcome_words(&path.outcome));
    }
    if let Some(flows) = &tree.flows {
        let _ = writeln!(
            out,
            "\nFLOWS: {} source ports {}-{}{}",
            flows.flows,
            flows.first,
            flows.last,
            if flows.unfollowed > 0 {
                format!(", {} not followed to their end", flows.unfollowed)
            } else {
                String::new()
            }
        );
    }
    let mut known_lines = Vec::new();
    collect_known(&tree.tree, &mut known_lines);
    if !known_lines.is_empty() {
        let _ = writeln!(out, "\nCOLLECTOR:");
        for line in known_lines {
            let _ = writeln!(out, "  {line}");
        }
    }
    if !tree.cut.is_empty() {
        let cut: Vec<String> = tree.cut.iter().map(|c| escape(c).into_owned()).collect();
        let _ = writeln!(out, "\nCUT SHORT: {}", cut.join("; "));
    }
    let _ = writeln!(out, "\nSUMMARY: {}", escape(&tree.summary));
    let _ = writeln!(
        out,
        "\nElapsed Time for Trace: {:.6} seconds.",
        tree.elapsed_us as f64 / 1e6
    );
    out
}

/// One line per egress the collector has something to say about (an alert
/// firing, a recent change, downtime), each once.
fn collect_known(branch: &Branch, lines: &mut Vec<String>) {
    if let Some(known) = &branch.hop.known {
        let mut parts = Vec::new();
        for alert in &known.firing {
            parts.push(format!(
                "firing {} ({})",
                escape(&alert.rule),
                escape(&alert.severity)
            ));
        }
        if !known.changes.is_empty() {
            parts.push(format!(
                "{} link changes in the last 10m",
                known.changes.len()
            ));
        }
        if known.down_s_24h > 0.0 {
            parts.push(format!(
                "down {} in the last 24h",
                seconds(known.down_s_24h)
            ));
        }
        if !parts.is_empty() {
            let line = format!(
                "{} {}: {}",
                escape(&branch.hop.agent),
                escape(&known.interface),
                parts.join(", ")
            );
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    for child in &branch.children {
        collect_known(child, lines);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FabricPath, FlowSpread, KnownAlert, KnownChange, LoopStep, PathStep};
    use super::*;
    use hopwatch_wire::trace::{
        Action, Counters, DropReason, Hop, LoadShare, Member, Neighbor, NeighborState, OperState,
        RouteKind,
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
}
