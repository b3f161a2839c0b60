//! The single-path walk: one flow from switch to switch until it is
//! delivered, dropped or stopped; and the return flow with its asymmetry.
//!
//! Each switch answers for itself (its own route, ECMP choice, neighbour and
//! egress); the walk only decides where the flow arrives next, from who
//! owns the next hop's address. What a switch's answer means for the walk
//! (`next`, `onward`) and how a hop reads (`describe`) are shared with the
//! all-paths tree, which asks the same questions.

use super::asking::Asking;
use super::{
    Asker, Directory, FabricHop, FabricHopKind, FabricTrace, FlowSpec, LoopStep, Outcome, Owner,
    Symmetry, TraceSettings, WalkError,
};
use hopwatch_wire::trace::{FlowQuery, HopQuery, Step, Trace, TraceQuery};
use std::fmt::Write as _;
use std::net::IpAddr;
use tokio::time::Instant;

/// Follows `spec` from its first switch until it is delivered, dropped or
/// stopped, and with `reverse` its return flow too, from where it ended.
pub async fn trace<A: Asker, D: Directory>(
    asker: &A,
    directory: &D,
    spec: &FlowSpec,
    bounds: &TraceSettings,
    reverse: bool,
) -> Result<FabricTrace, WalkError> {
    let started = Instant::now();
    let first = start(directory, spec)?;
    let asking = Asking::new(asker, bounds);
    let mut forward = walk(&asking, directory, spec, first, bounds.hop_limit).await;
    if reverse {
        let back = returning(spec);
        if let Some(first) = return_start(directory, &forward, &back) {
            let back = walk(&asking, directory, &back, first, bounds.hop_limit).await;
            forward.symmetry = Some(symmetry(&forward, &back));
            forward.reverse = Some(Box::new(back));
        }
    }
    forward.elapsed_us = micros(started);
    Ok(forward)
}

/// Where a flow arrives: a switch, the VRF it is forwarded in there, and
/// the interface it arrives on (`None` when the switch originates it, or
/// when the switch is to infer it from the route back to the source).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Arrival {
    pub agent: String,
    pub vrf: String,
    pub ingress: Option<String>,
}

impl Arrival {
    fn on(owner: Owner) -> Arrival {
        Arrival {
            agent: owner.agent,
            vrf: owner.vrf,
            ingress: Some(owner.interface),
        }
    }

    /// The question this switch is asked about `spec`: the flow as it
    /// arrives on the ingress (a `hop`), or, with none known, the flow
    /// with its source (a `flow`, which the agent places itself).
    pub fn query(&self, spec: &FlowSpec) -> TraceQuery {
        let flow = FlowQuery {
            dst: spec.dst,
            src: Some(spec.src),
            iif: None,
            proto: spec.proto,
            sport: spec.sport,
            dport: spec.dport,
            vrf: self.vrf.clone(),
            flowlabel: None,
        };
        match &self.ingress {
            Some(ingress) => TraceQuery::Hop(HopQuery {
                flow,
                ingress: ingress.clone(),
            }),
            None => TraceQuery::Flow(flow),
        }
    }

    pub fn step(&self) -> LoopStep {
        LoopStep {
            agent: self.agent.clone(),
            ingress: self.ingress.clone(),
        }
    }
}

/// The first switch: the one `from` names, else the one that owns `src`,
/// else the one with `src` on a connected subnet (the longest prefix).
pub(super) fn start<D: Directory>(directory: &D, spec: &FlowSpec) -> Result<Arrival, WalkError> {
    let vrf = &spec.vrf;
    if let Some(name) = &spec.from {
        let mut known = directory.agents();
        if !known.contains(name) {
            known.sort();
            return Err(WalkError::UnknownAgent {
                name: name.clone(),
                known,
            });
        }
        let own = directory
            .owner(vrf, spec.src)
            .is_some_and(|owner| owner.agent == *name);
        // The source beside the named switch arrives on the interface of
        // that subnet; any other is left to the switch to place.
        let ingress = (!own)
            .then(|| {
                directory
                    .attached(vrf, spec.src)
                    .into_iter()
                    .find(|owner| owner.agent == *name)
                    .map(|owner| owner.interface)
            })
            .flatten();
        return Ok(Arrival {
            agent: name.clone(),
            vrf: vrf.clone(),
            ingress,
        });
    }
    if let Some(owner) = directory.owner(vrf, spec.src) {
        return Ok(Arrival {
            agent: owner.agent,
            vrf: owner.vrf,
            ingress: None,
        });
    }
    let attached = directory.attached(vrf, spec.src);
    let Some(longest) = attached.iter().map(|o| prefix_len(&o.address)).max() else {
        let mut candidates = directory.agents();
        candidates.sort();
        return Err(WalkError::NoStart {
            src: spec.src,
            vrf: vrf.clone(),
            candidates,
        });
    };
    let mut best: Vec<Owner> = attached
        .into_iter()
        .filter(|o| prefix_len(&o.address) == longest)
        .collect();
    let mut candidates: Vec<String> = best.iter().map(|o| o.agent.clone()).collect();
    candidates.sort();
    candidates.dedup();
    if candidates.len() > 1 {
        return Err(WalkError::AmbiguousStart {
            src: spec.src,
            vrf: vrf.clone(),
            candidates,
        });
    }
    Ok(Arrival::on(best.swap_remove(0)))
}

/// The prefix length of `10.1.0.1/31`; an address alone is a host.
pub(super) fn prefix_len(address: &str) -> u8 {
    match address.split_once('/') {
        Some((_, len)) => len.parse().unwrap_or(0),
        None if address.contains(':') => 128,
        None => 32,
    }
}

/// Asks switch after switch from `first` until the flow ends.
pub(super) async fn walk<A: Asker, D: Directory>(
    asking: &Asking<'_, A>,
    directory: &D,
    spec: &FlowSpec,
    first: Arrival,
    hop_limit: usize,
) -> FabricTrace {
    let started = Instant::now();
    let mut hops: Vec<FabricHop> = Vec::new();
    let mut seen: Vec<Arrival> = Vec::new();
    let mut at = first;
    let outcome = loop {
        if let Some(again) = seen.iter().position(|s| *s == at) {
            let mut cycle: Vec<LoopStep> = seen[again..].iter().map(Arrival::step).collect();
            cycle.push(at.step());
            break Outcome::Loop { cycle };
        }
        if seen.len() >= hop_limit {
            break Outcome::HopLimit { limit: hop_limit };
        }
        seen.push(at.clone());
        let index = hops.len() + 1;
        match asking.trace(&at.agent, at.query(spec)).await {
            Err(failed) => {
                let why = failed.to_string();
                hops.push(no_answer_hop(index, &at, &why));
                break Outcome::NoAnswer {
                    agent: at.agent,
                    why,
                };
            }
            Ok((trace, elapsed_us)) => {
                let next = next(directory, &at, spec.dst, &trace);
                let mut hop = switch_hop(index, &at, trace, elapsed_us);
                describe(&mut hop, spec.dst, &next);
                // A flow the switch placed itself arrived where it says,
                // which is what a loop back to it would arrive on.
                if let Some(placed) = seen.last_mut() {
                    placed.ingress = hop.ingress.clone();
                }
                hops.push(hop);
                match next {
                    Next::Switch(arrival) => at = arrival,
                    Next::End(outcome) => {
                        if let Outcome::Unmanaged { address, .. } = &outcome {
                            hops.push(unmanaged_hop(index + 1, &at, *address));
                        }
                        break outcome;
                    }
                }
            }
        }
    };
    finish(spec.clone(), hops, outcome, started)
}

/// Puts the answer together once the walk has ended.
fn finish(
    request: FlowSpec,
    hops: Vec<FabricHop>,
    outcome: Outcome,
    started: Instant,
) -> FabricTrace {
    let summary = summary(&request, &hops, &outcome);
    FabricTrace {
        success: !matches!(outcome, Outcome::NoAnswer { .. }),
        reaches_destination: matches!(outcome, Outcome::Delivered { .. }),
        request,
        outcome,
        hops,
        summary,
        elapsed_us: micros(started),
        reverse: None,
        symmetry: None,
    }
}

/// Where the flow goes after a switch that answered.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Next {
    /// On to another switch.
    Switch(Arrival),
    /// The walk ends here.
    End(Outcome),
}

/// What `trace`, the answer of the switch at `at`, means for the walk.
pub(super) fn next<D: Directory>(directory: &D, at: &Arrival, dst: IpAddr, trace: &Trace) -> Next {
    let agent = at.agent.clone();
    if let Some((hop, reason)) = trace.drop_hop() {
        return Next::End(Outcome::Dropped {
            agent,
            reason,
            description: hop.description.clone(),
        });
    }
    if is_local(trace) {
        return Next::End(Outcome::Delivered {
            agent,
            interface: trace.egress_interface.clone(),
            local: true,
        });
    }
    if !trace.reaches_destination {
        return Next::End(Outcome::NoAnswer {
            agent,
            why: "its answer neither forwards, delivers nor drops the flow".into(),
        });
    }
    onward(
        directory,
        at,
        dst,
        trace.next_hop,
        trace.egress_interface.clone(),
    )
}

/// Whether the switch delivers the flow to itself.
pub(super) fn is_local(trace: &Trace) -> bool {
    trace
        .hops
        .iter()
        .any(|hop| matches!(hop.step, Step::Local { .. }))
}

/// Where a flow that leaves the switch at `at` by `egress` towards
/// `next_hop` arrives. A gateway is another switch (the agent that owns
/// its address, arriving on the interface that holds it) or a router no
/// agent watches; no gateway, or the destination itself as the gateway,
/// is delivery to the destination on the egress's subnet, unless the
/// destination is an address of another switch, which the flow then
/// reaches.
pub(super) fn onward<D: Directory>(
    directory: &D,
    at: &Arrival,
    dst: IpAddr,
    next_hop: Option<IpAddr>,
    egress: Option<String>,
) -> Next {
    match next_hop.filter(|gateway| *gateway != dst) {
        Some(gateway) => match directory.owner(&at.vrf, gateway) {
            Some(owner) => Next::Switch(Arrival::on(owner)),
            None => Next::End(Outcome::Unmanaged {
                agent: at.agent.clone(),
                address: gateway,
            }),
        },
        None => match directory.owner(&at.vrf, dst) {
            Some(owner) if owner.agent != at.agent => Next::Switch(Arrival::on(owner)),
            _ => Next::End(Outcome::Delivered {
                agent: at.agent.clone(),
                interface: egress,
                local: false,
            }),
        },
    }
}

/// The hop of a switch that answered, before its words are set.
pub(super) fn switch_hop(index: usize, at: &Arrival, trace: Trace, elapsed_us: u64) -> FabricHop {
    let route = trace.route().cloned();
    let mut neighbor = None;
    let mut egress = None;
    for hop in &trace.hops {
        match &hop.step {
            Step::Neighbor { neighbor: n } => neighbor = Some(n.clone()),
            Step::Egress { interface } => egress = Some(interface.clone()),
            Step::Drop {
                interface,
                neighbor: n,
                ..
            } => {
                egress = interface.clone().or(egress);
                neighbor = n.clone().or(neighbor);
            }
            _ => {}
        }
    }
    FabricHop {
        index,
        kind: FabricHopKind::Switch,
        action: String::new(),
        description: String::new(),
        agent: at.agent.clone(),
        vrf: at.vrf.clone(),
        // The switch says where a flow it was left to place arrives.
        ingress: at.ingress.clone().or(trace.ingress_interface),
        route,
        next_hop: trace.next_hop,
        neighbor,
        egress,
        load_share: trace.load_share,
        backend: trace.backend,
        elapsed_us,
        agent_elapsed_us: trace.elapsed_us,
        steps: trace.hops,
        known: None,
    }
}

/// The interface a hop's flow leaves by, by name.
pub(super) fn egress_name(hop: &FabricHop) -> Option<String> {
    hop.egress.as_ref().map(|e| e.name.clone()).or_else(|| {
        hop.route
            .as_ref()
            .and_then(|r| r.chosen.and_then(|i| r.members.get(i)))
            .and_then(|m| m.interface.clone())
    })
}

/// Sets a switch hop's `action` and `description` from where the flow goes.
pub(super) fn describe(hop: &mut FabricHop, dst: IpAddr, next: &Next) {
    let agent = hop.agent.clone();
    let (action, description) = match next {
        Next::Switch(arrival) => (
            "forward",
            format!(
                "{agent} forwards by {} to {}{}",
                route_words(hop),
                arrival.agent,
                arrival
                    .ingress
                    .as_ref()
                    .map(|i| format!(", arriving on {i}"))
                    .unwrap_or_default()
            ),
        ),
        Next::End(Outcome::Delivered { local: true, .. }) => (
            "deliver",
            format!("{dst} is an address of {agent}: delivered to the switch itself"),
        ),
        Next::End(Outcome::Delivered { interface, .. }) => (
            "deliver",
            format!(
                "{agent} delivers to {dst}, directly connected on {}",
                interface.as_deref().unwrap_or("its egress")
            ),
        ),
        Next::End(Outcome::Dropped {
            reason,
            description,
            ..
        }) => (
            "drop",
            format!("{agent} drops the flow ({reason}): {description}"),
        ),
        Next::End(Outcome::Unmanaged { address, .. }) => (
            "forward",
            format!(
                "{agent} forwards by {} to {address}, which no agent owns",
                route_words(hop)
            ),
        ),
        Next::End(outcome) => (
            "stop",
            format!(
                "{agent} answered, but the walk stops there ({})",
                outcome.as_str()
            ),
        ),
    };
    hop.action = action.to_string();
    hop.description = description;
}

/// `route 10.0.2.0/24 (bgp) via 10.1.1.1 out swp51, ECMP member 1 of 2`.
fn route_words(hop: &FabricHop) -> String {
    let mut words = String::with_capacity(96);
    match &hop.route {
        Some(route) => {
            let _ = write!(words, "route {} ({})", route.prefix, route.protocol);
        }
        None => words.push_str("its route"),
    }
    if let Some(gateway) = hop.next_hop {
        let _ = write!(words, " via {gateway}");
    }
    if let Some(egress) = egress_name(hop) {
        let _ = write!(words, " out {egress}");
    }
    if let Some(route) = &hop.route
        && route.members.len() > 1
        && let Some(chosen) = route.chosen
    {
        let _ = write!(
            words,
            ", ECMP member {} of {}",
            chosen + 1,
            route.members.len()
        );
    }
    words
}

/// The hop of a switch that gave no answer.
pub(super) fn no_answer_hop(index: usize, at: &Arrival, why: &str) -> FabricHop {
    FabricHop {
        index,
        kind: FabricHopKind::NoAnswer,
        action: "stop".into(),
        description: format!("no answer from {}: {why}", at.agent),
        agent: at.agent.clone(),
        vrf: at.vrf.clone(),
        ingress: at.ingress.clone(),
        route: None,
        next_hop: None,
        neighbor: None,
        egress: None,
        load_share: None,
        backend: String::new(),
        elapsed_us: 0,
        agent_elapsed_us: 0,
        steps: Vec::new(),
        known: None,
    }
}

/// The hop past the last switch: a next hop no agent owns. Its `agent` is
/// the address, the one name it has.
pub(super) fn unmanaged_hop(index: usize, from: &Arrival, address: IpAddr) -> FabricHop {
    FabricHop {
        kind: FabricHopKind::Unmanaged,
        agent: address.to_string(),
        description: format!(
            "{address}, the next hop of {}, belongs to no agent (a router or host hopwatch does not watch): the trace ends there",
            from.agent
        ),
        next_hop: Some(address),
        ingress: None,
        ..no_answer_hop(index, from, "")
    }
}

/// The switches a trace crosses, in order: those that answered and those
/// that did not, never an unmanaged address.
pub(super) fn switches(hops: &[FabricHop]) -> Vec<String> {
    hops.iter()
        .filter(|hop| hop.kind != FabricHopKind::Unmanaged)
        .map(|hop| hop.agent.clone())
        .collect()
}

/// `tcp 10.0.1.2:1234 -> 10.0.2.2:80`.
pub(super) fn describe_flow(spec: &FlowSpec) -> String {
    FlowQuery {
        dst: spec.dst,
        src: Some(spec.src),
        iif: None,
        proto: spec.proto,
        sport: spec.sport,
        dport: spec.dport,
        vrf: spec.vrf.clone(),
        flowlabel: None,
    }
    .describe()
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The sentence that ends a trace, as the OVN trace's summary does.
fn summary(spec: &FlowSpec, hops: &[FabricHop], outcome: &Outcome) -> String {
    let flow = describe_flow(spec);
    let crossed = switches(hops);
    let through = format!(
        "{} ({})",
        count(crossed.len(), "switch", "switches"),
        crossed.join(", ")
    );
    match outcome {
        Outcome::Delivered {
            agent, local: true, ..
        } => format!("{flow} reaches its destination, switch {agent} itself, through {through}"),
        Outcome::Delivered {
            agent, interface, ..
        } => format!(
            "{flow} reaches its destination through {through}: {agent} delivers it on {}",
            interface.as_deref().unwrap_or("its connected subnet")
        ),
        Outcome::Dropped {
            agent,
            reason,
            description,
        } => format!("{flow} is dropped at {agent} ({reason}) after {through}: {description}"),
        Outcome::Unmanaged { agent, address } => format!(
            "{flow} leaves {agent} towards {address}, which no agent owns: traced through {through}, as far as the fabric's agents see"
        ),
        Outcome::NoAnswer { agent, why } => {
            format!("{flow} could not be traced past {agent} after {through}: {why}")
        }
        Outcome::Loop { cycle } => format!("{flow} loops: {}", cycle_words(cycle)),
        Outcome::HopLimit { limit } => format!(
            "{flow} is still being forwarded after {} (the hop limit), through {}",
            count(*limit, "switch", "switches"),
            crossed.join(", ")
        ),
    }
}

/// `leaf1 (in swp51) -> spine1 (in swp1) -> leaf1 (in swp51)`.
pub(super) fn cycle_words(cycle: &[LoopStep]) -> String {
    cycle
        .iter()
        .map(|step| match &step.ingress {
            Some(ingress) => format!("{} (in {ingress})", step.agent),
            None => step.agent.clone(),
        })
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// The return flow: addresses and ports swapped.
fn returning(spec: &FlowSpec) -> FlowSpec {
    FlowSpec {
        src: spec.dst,
        dst: spec.src,
        sport: spec.dport,
        dport: spec.sport,
        from: None,
        ..spec.clone()
    }
}

/// Where the return flow starts: at the switch that delivered the forward
/// flow, arriving from the destination's side (or originated by the switch
/// when it was the destination); past an unmanaged router, arriving back
/// from it; otherwise where the destination enters the fabric.
fn return_start<D: Directory>(
    directory: &D,
    forward: &FabricTrace,
    back: &FlowSpec,
) -> Option<Arrival> {
    let last = forward
        .hops
        .iter()
        .rev()
        .find(|hop| hop.kind == FabricHopKind::Switch);
    match (&forward.outcome, last) {
        (Outcome::Delivered { local: true, .. }, Some(last)) => Some(Arrival {
            agent: last.agent.clone(),
            vrf: last.vrf.clone(),
            ingress: None,
        }),
        (Outcome::Delivered { interface, .. }, Some(last)) => Some(Arrival {
            agent: last.agent.clone(),
            vrf: last.vrf.clone(),
            ingress: interface.clone().or_else(|| egress_name(last)),
        }),
        (Outcome::Unmanaged { .. }, Some(last)) => Some(Arrival {
            agent: last.agent.clone(),
            vrf: last.vrf.clone(),
            ingress: egress_name(last),
        }),
        _ => start(directory, back).ok(),
    }
}

/// Whether the return flow crosses the switches the flow crossed.
fn symmetry(forward: &FabricTrace, back: &FabricTrace) -> Symmetry {
    let there = switches(&forward.hops);
    let back_order = switches(&back.hops);
    let mut reverse = back_order.clone();
    reverse.reverse();
    let only = |a: &[String], b: &[String]| {
        let mut only: Vec<String> = a.iter().filter(|s| !b.contains(s)).cloned().collect();
        only.dedup();
        only
    };
    let only_forward = only(&there, &reverse);
    let only_reverse = only(&reverse, &there);
    let symmetric = there == reverse;
    let mut description = if symmetric {
        format!(
            "Both directions cross the same switches: {}.",
            there.join(", ")
        )
    } else if only_forward.is_empty() && only_reverse.is_empty() {
        format!(
            "Both directions cross the same switches in a different order: the flow goes {}, and returns {}.",
            there.join(" -> "),
            back_order.join(" -> ")
        )
    } else {
        let mut words = format!(
            "Asymmetric: the flow goes {} and returns {}",
            there.join(" -> "),
            back_order.join(" -> ")
        );
        if !only_forward.is_empty() {
            let _ = write!(words, "; only the flow crosses {}", only_forward.join(", "));
        }
        if !only_reverse.is_empty() {
            let _ = write!(
                words,
                "; only the return flow crosses {}",
                only_reverse.join(", ")
            );
        }
        words.push('.');
        words
    };
    for (which, trace, crossed) in [
        ("flow", forward, &there),
        ("return flow", back, &back_order),
    ] {
        if !trace.reaches_destination {
            let _ = write!(
                description,
                " The {which} ends {} at {}, so only the switches it reached are compared.",
                trace.outcome.as_str(),
                crossed.last().map_or("its first switch", String::as_str)
            );
        }
    }
    Symmetry {
        symmetric,
        forward: there,
        reverse,
        only_forward,
        only_reverse,
        description,
    }
}

pub(super) fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros() as u64
}

#[cfg(test)]
#[path = "walk_tests.rs"]
mod tests;
