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
use hopwatch_wire::trace::{Step, port_words, proto_words};
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
        route.write_block(out);
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
        egress.write_block(out);
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
mod tests;
