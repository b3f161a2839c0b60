//! All paths: every ECMP member of every hop followed, as a bounded tree,
//! and a source-port range spread over the paths.
//!
//! The tree grows a level at a time: every switch of a level is asked at
//! once (the flow as it arrives there, and, for a port range, one `paths`
//! question over the whole range), then each answer is read in the tree's
//! order, so the branch bound cuts the same branches whichever agent
//! answered first, and the wall time is the depth's, not the tree's size.
//!
//! A switch spreads the flows that reach it independently of the others
//! that did not, so asking every switch about the whole range and keeping
//! the flows that arrived is exact, and the one question is shared by every
//! branch that reaches the switch on the same ingress.

use super::asking::{Answered, Asking, Failed};
use super::walk::{self, Arrival, Next};
use super::{
    Asker, Branch, Directory, FabricHop, FabricHopKind, FabricPath, FlowSpec, FlowSpread, Outcome,
    PathStep, PathTree, TraceSettings, WalkError,
};
use futures_util::StreamExt;
use hopwatch_wire::trace::{
    DropReason, Member, MemberState, PathsQuery, PortRange, Trace, TraceAnswer, TraceQuery,
    has_ports,
};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use tokio::time::Instant;

/// Switches of one level asked at once.
const IN_FLIGHT: usize = 64;

/// Follows every member of every route `spec` meets, from its first switch.
pub async fn all_paths<A: Asker, D: Directory>(
    asker: &A,
    directory: &D,
    spec: &FlowSpec,
    sports: Option<PortRange>,
    bounds: &TraceSettings,
) -> Result<PathTree, WalkError> {
    let started = Instant::now();
    if sports.is_some() && !spec.proto.is_some_and(has_ports) {
        return Err(WalkError::NoPorts { proto: spec.proto });
    }
    let first = walk::start(directory, spec)?;
    let asking = Asking::new(asker, bounds);
    let mut tree = Grower {
        spec,
        directory,
        bounds,
        nodes: Vec::new(),
        ended: 0,
        cut: Vec::new(),
    };
    let mut level = vec![Pending {
        parent: None,
        member: None,
        at: first,
        ancestors: Vec::new(),
        arrived: sports.map(|range| (range.first..=range.last).collect()),
    }];
    let mut depth = 1;
    while !level.is_empty() {
        let answers = ask_level(&asking, spec, sports, &level).await;
        let mut next = Vec::new();
        let mut waiting = level.len();
        for (pending, answer) in level.into_iter().zip(answers) {
            waiting -= 1;
            tree.grow(pending, answer, depth, waiting + next.len(), &mut next);
        }
        level = next;
        depth += 1;
    }
    Ok(tree.finish(sports, started))
}

/// A switch the tree reaches and has not asked yet.
struct Pending {
    parent: Option<usize>,
    /// The parent's member that leads here.
    member: Option<usize>,
    at: Arrival,
    /// The switches above it on its branch, with their nodes.
    ancestors: Vec<(Arrival, usize)>,
    /// The source ports of the range that arrive here; `None` when no range
    /// was given or a switch above could not say where its flows go.
    arrived: Option<Vec<u16>>,
}

/// What one switch of a level answered.
// One per switch of a level, read once: boxing the answers would buy
// nothing but an allocation each.
#[allow(clippy::large_enum_variant)]
enum Asked {
    /// It is on its own branch already: the index into `ancestors`.
    Loop(usize),
    Answered {
        trace: Result<(Trace, u64), Failed>,
        spread: Option<Result<Answered, Failed>>,
    },
}

/// Asks every switch of a level at once, answers in the level's order.
async fn ask_level<A: Asker>(
    asking: &Asking<'_, A>,
    spec: &FlowSpec,
    sports: Option<PortRange>,
    level: &[Pending],
) -> Vec<Asked> {
    // Gathered before they run: a stream holding the closure over borrowed
    // arguments trips the compiler's Send check for the walk's future
    // ("FnOnce is not general enough"), which the API's handlers need.
    let questions: Vec<_> = level
        .iter()
        .map(|pending| async move {
            if let Some(again) = pending.ancestors.iter().position(|(a, _)| *a == pending.at) {
                return Asked::Loop(again);
            }
            let agent = &pending.at.agent;
            let trace = asking.trace(agent, pending.at.query(spec));
            let spread = async {
                match (sports, &pending.arrived) {
                    (Some(range), Some(arrived)) if !arrived.is_empty() => {
                        let query = paths_query(spec, &pending.at, range);
                        Some(asking.ask(agent, TraceQuery::Paths(query)).await)
                    }
                    _ => None,
                }
            };
            let (trace, spread) = futures_util::future::join(trace, spread).await;
            Asked::Answered { trace, spread }
        })
        .collect();
    futures_util::stream::iter(questions)
        .buffered(IN_FLIGHT)
        .collect()
        .await
}

/// One `paths` question over the whole range, every flow's member listed.
fn paths_query(spec: &FlowSpec, at: &Arrival, range: PortRange) -> PathsQuery {
    PathsQuery {
        dst: spec.dst,
        src: Some(spec.src),
        iif: at.ingress.clone(),
        proto: spec.proto.unwrap_or_default(),
        sport_range: Some(range),
        samples: None,
        seed: None,
        dport: spec.dport,
        dport_range: None,
        vrf: at.vrf.clone(),
        per_flow: true,
        flowlabel: None,
    }
}

/// One switch of the tree as it grows.
struct Node {
    hop: FabricHop,
    member: Option<usize>,
    children: Vec<usize>,
    /// The route's members (one made from the answer when it names none).
    members: Vec<Member>,
    outcome: Option<Outcome>,
    /// Where the flows that end here leave by: (egress, next hop).
    end_via: (Option<String>, Option<IpAddr>),
    /// Flows of the range that end here; `None` when not known.
    ends: Option<u64>,
}

/// Where one member of a switch's route leads.
enum Out {
    /// The flows taking it end at this switch.
    End(Outcome),
    /// To another switch.
    Child(Arrival),
    /// To an address no agent owns.
    Unmanaged(IpAddr),
}

struct Grower<'a, D> {
    spec: &'a FlowSpec,
    directory: &'a D,
    bounds: &'a TraceSettings,
    nodes: Vec<Node>,
    /// Paths ended so far.
    ended: usize,
    cut: Vec<String>,
}

/// Drops that befall one member (the one the traced flow took), not the
/// route: the other members still carry flows.
fn per_member(reason: DropReason) -> bool {
    matches!(
        reason,
        DropReason::EgressDown | DropReason::NeighborFailed | DropReason::NeighborIncomplete
    )
}

/// The end of the traced flow that ends the branch for every member: local
/// delivery, a drop of the whole route, or an answer that says nothing.
fn whole_route_end(
    traced: &Next,
    local: bool,
    members: usize,
    chosen: Option<usize>,
) -> Option<Outcome> {
    match traced {
        Next::End(outcome @ Outcome::Delivered { .. }) if local => Some(outcome.clone()),
        Next::End(outcome @ Outcome::Dropped { reason, .. })
            if !per_member(*reason) || members < 2 || chosen.is_none() =>
        {
            Some(outcome.clone())
        }
        Next::End(outcome @ Outcome::NoAnswer { .. }) => Some(outcome.clone()),
        _ => None,
    }
}

/// The members a switch's branch follows, as indexes into its outs.
struct Kept {
    /// The outs, the traced flow's member first.
    order: Vec<usize>,
    kept: Vec<bool>,
    /// Kept outs to another switch that the hop limit stops.
    over_hops: Vec<usize>,
}

impl<D: Directory> Grower<'_, D> {
    fn push(&mut self, parent: Option<usize>, node: Node) -> usize {
        let index = self.nodes.len();
        self.nodes.push(node);
        if let Some(parent) = parent {
            self.nodes[parent].children.push(index);
        }
        index
    }

    fn leaf(&mut self, pending: &Pending, hop: FabricHop, outcome: Outcome) {
        let end_via = (walk::egress_name(&hop), hop.next_hop);
        self.ended += 1;
        self.push(
            pending.parent,
            Node {
                hop,
                member: pending.member,
                children: Vec::new(),
                members: Vec::new(),
                outcome: Some(outcome),
                end_via,
                ends: pending.arrived.as_ref().map(|a| a.len() as u64),
            },
        );
    }

    /// Reads one switch's answer into the tree and queues where its members
    /// lead. `waiting` is the branches still open besides this one: the
    /// branch bound counts them.
    fn grow(
        &mut self,
        pending: Pending,
        asked: Asked,
        depth: usize,
        waiting: usize,
        next: &mut Vec<Pending>,
    ) {
        let dst = self.spec.dst;
        let (trace, spread) = match asked {
            Asked::Loop(again) => {
                let (_, node) = &pending.ancestors[again];
                let mut hop = self.nodes[*node].hop.clone();
                hop.index = depth;
                let mut cycle: Vec<_> = pending.ancestors[again..]
                    .iter()
                    .map(|(a, _)| a.step())
                    .collect();
                cycle.push(pending.at.step());
                self.leaf(&pending, hop, Outcome::Loop { cycle });
                return;
            }
            Asked::Answered {
                trace: Err(failed), ..
            } => {
                let why = failed.to_string();
                let hop = walk::no_answer_hop(depth, &pending.at, &why);
                let outcome = Outcome::NoAnswer {
                    agent: pending.at.agent.clone(),
                    why,
                };
                self.leaf(&pending, hop, outcome);
                return;
            }
            Asked::Answered {
                trace: Ok(trace),
                spread,
            } => (trace, spread),
        };
        let (trace, elapsed_us) = trace;
        let at = pending.at.clone();
        let traced = walk::next(self.directory, &at, dst, &trace);
        let local = walk::is_local(&trace);
        let mut hop = walk::switch_hop(depth, &at, trace, elapsed_us);
        walk::describe(&mut hop, dst, &traced);

        let members: Vec<Member> = match &hop.route {
            Some(route) if !route.members.is_empty() => route.members.clone(),
            _ => vec![Member {
                next_hop: hop.next_hop,
                interface: walk::egress_name(&hop),
                ifindex: 0,
                weight: 1,
                flags: Vec::new(),
            }],
        };
        let chosen = hop.route.as_ref().and_then(|r| r.chosen);
        let whole = whole_route_end(&traced, local, members.len(), chosen);
        if let Some(outcome) = whole {
            self.leaf(&pending, hop, outcome);
            return;
        }

        let outs = self.member_outs(&at, &traced, &members, chosen);
        let groups = self.group(&pending, spread, &members);
        let prefix = hop
            .route
            .as_ref()
            .map_or_else(|| "its route".to_string(), |r| r.prefix.clone());

        let Kept {
            order,
            kept,
            over_hops,
        } = self.keep(
            &at.agent,
            &prefix,
            &outs,
            chosen,
            members.len(),
            waiting,
            depth,
        );
        let flows_of = |o: usize| groups.as_ref().map(|g| g[outs[o].0].len() as u64);
        let mut outcome = None;
        let mut end_via = (walk::egress_name(&hop), hop.next_hop);
        let mut ends: Option<u64> = groups.as_ref().map(|_| 0);
        for &o in &order {
            if kept[o]
                && let Out::End(end) = &outs[o].1
            {
                if outcome.is_none() {
                    let member = &members[outs[o].0];
                    end_via = (member.interface.clone(), member.next_hop);
                    outcome = Some(end.clone());
                }
                ends = add(ends, flows_of(o));
            }
        }
        if outcome.is_none() && !over_hops.is_empty() {
            // Nothing else ends here: the branch ends at the hop limit,
            // with the flows that would have gone on.
            outcome = Some(Outcome::HopLimit {
                limit: self.bounds.hop_limit,
            });
            for &o in &over_hops {
                ends = add(ends, flows_of(o));
            }
        }
        if outcome.is_some() {
            self.ended += 1;
        }
        let index = self.push(
            pending.parent,
            Node {
                hop,
                member: pending.member,
                children: Vec::new(),
                members: members.clone(),
                outcome,
                end_via,
                ends,
            },
        );
        let mut ancestors = pending.ancestors;
        let placed = Arrival {
            ingress: self.nodes[index].hop.ingress.clone(),
            ..at.clone()
        };
        ancestors.push((placed, index));
        for (o, (member, out)) in outs.into_iter().enumerate() {
            if !kept[o] || over_hops.contains(&o) {
                continue;
            }
            let arrived = groups.as_ref().map(|g| g[member].clone());
            match out {
                Out::End(_) => {}
                Out::Child(arrival) => next.push(Pending {
                    parent: Some(index),
                    member: Some(member),
                    at: arrival,
                    ancestors: ancestors.clone(),
                    arrived,
                }),
                Out::Unmanaged(address) => {
                    let pending = Pending {
                        parent: Some(index),
                        member: Some(member),
                        at: at.clone(),
                        ancestors: Vec::new(),
                        arrived,
                    };
                    let hop = walk::unmanaged_hop(depth + 1, &at, address);
                    let outcome = Outcome::Unmanaged {
                        agent: at.agent.clone(),
                        address,
                    };
                    self.leaf(&pending, hop, outcome);
                }
            }
        }
    }

    /// Where each member of the route leads, in member order; dead
    /// members, which no flow takes, are left out.
    fn member_outs(
        &self,
        at: &Arrival,
        traced: &Next,
        members: &[Member],
        chosen: Option<usize>,
    ) -> Vec<(usize, Out)> {
        let dst = self.spec.dst;
        let mut outs = Vec::new();
        for (i, member) in members.iter().enumerate() {
            let out = match (traced, MemberState::of(&member.flags)) {
                (Next::End(outcome @ Outcome::Dropped { .. }), _) if Some(i) == chosen => {
                    Out::End(outcome.clone())
                }
                // The kernel hashes no flow onto a dead member.
                (_, MemberState::Dead) => continue,
                (_, MemberState::Linkdown) => Out::End(Outcome::Dropped {
                    agent: at.agent.clone(),
                    reason: DropReason::EgressDown,
                    description: format!(
                        "member {} of {} ({}) has no carrier: the flows hashed onto it are dropped",
                        i + 1,
                        members.len(),
                        member_words(member)
                    ),
                }),
                (_, MemberState::Up) => match walk::onward(
                    self.directory,
                    at,
                    dst,
                    member.next_hop,
                    member.interface.clone(),
                ) {
                    Next::Switch(arrival) => Out::Child(arrival),
                    Next::End(Outcome::Unmanaged { address, .. }) => Out::Unmanaged(address),
                    Next::End(outcome) => Out::End(outcome),
                },
            };
            outs.push((i, out));
        }

        outs
    }

    /// Which members are followed: this switch's own branch plus as many
    /// more as the branch bound leaves room for, the member the traced
    /// flow took first; and which of those the hop limit stops. Each cut
    /// is said.
    #[allow(clippy::too_many_arguments)]
    fn keep(
        &mut self,
        agent: &str,
        prefix: &str,
        outs: &[(usize, Out)],
        chosen: Option<usize>,
        of: usize,
        waiting: usize,
        depth: usize,
    ) -> Kept {
        let allowance = self
            .bounds
            .max_branches
            .saturating_sub(self.ended + waiting)
            .max(1);
        let mut order: Vec<usize> = (0..outs.len()).collect();
        if let Some(first) = outs.iter().position(|(i, _)| Some(*i) == chosen) {
            order.remove(first);
            order.insert(0, first);
        }
        let mut kept = vec![false; outs.len()];
        let mut units = 0;
        let mut ends_here = false;
        for &o in &order {
            let adds = match outs[o].1 {
                Out::End(_) if ends_here => 0,
                _ => 1,
            };
            if units + adds <= allowance {
                units += adds;
                kept[o] = true;
                ends_here |= matches!(outs[o].1, Out::End(_));
            }
        }
        let over_branches: Vec<usize> = (0..outs.len()).filter(|&o| !kept[o]).collect();
        if !over_branches.is_empty() {
            self.cut.push(format!(
                "max_branches: {} paths reached at {}: {} of {prefix} not followed",
                self.bounds.max_branches,
                agent,
                members_words(over_branches.iter().map(|&o| outs[o].0), of)
            ));
        }
        // The hop limit: no switch below this depth is asked.
        let at_limit = depth >= self.bounds.hop_limit;
        let over_hops: Vec<usize> = (0..outs.len())
            .filter(|&o| kept[o] && at_limit && matches!(outs[o].1, Out::Child(_)))
            .collect();
        if !over_hops.is_empty() {
            self.cut.push(format!(
                "hop_limit: {} hops reached at {}: {} of {prefix} not followed",
                self.bounds.hop_limit,
                agent,
                members_words(over_hops.iter().map(|&o| outs[o].0), of)
            ));
        }

        Kept {
            order,
            kept,
            over_hops,
        }
    }

    /// The flows that arrived, by the member each takes here; `None` when
    /// the switch could not say (no range, no answer, a member it does not
    /// list for the route).
    fn group(
        &self,
        pending: &Pending,
        spread: Option<Result<Answered, Failed>>,
        members: &[Member],
    ) -> Option<Vec<Vec<u16>>> {
        let arrived = pending.arrived.as_ref()?;
        let mut groups = vec![Vec::new(); members.len()];
        if arrived.is_empty() {
            return Some(groups);
        }
        let Some(Ok(Answered {
            answer: TraceAnswer::Paths(paths),
            ..
        })) = spread
        else {
            return None;
        };
        let detail = paths.flows_detail?;
        let arrived: HashSet<u16> = arrived.iter().copied().collect();
        for flow in detail.iter().filter(|f| arrived.contains(&f.sport)) {
            let member = members
                .iter()
                .position(|m| m.next_hop == flow.next_hop && m.interface == flow.interface)
                .or_else(|| {
                    members
                        .iter()
                        .position(|m| m.next_hop.is_some() && m.next_hop == flow.next_hop)
                });
            // A flow the switch routes by a member its route does not list
            // is one this tree cannot follow; it counts as unfollowed.
            if let Some(member) = member {
                groups[member].push(flow.sport);
            }
        }
        Some(groups)
    }

    fn finish(self, sports: Option<PortRange>, started: Instant) -> PathTree {
        let mut paths = Vec::new();
        let mut steps = Vec::new();
        if !self.nodes.is_empty() {
            self.collect(0, &mut steps, &mut paths, sports.is_some());
        }
        let tree = self.branch(0);
        let flows = sports.map(|range| {
            let followed: u64 = paths.iter().filter_map(|p: &FabricPath| p.flows).sum();
            FlowSpread {
                first: range.first,
                last: range.last,
                flows: range.len(),
                unfollowed: range.len().saturating_sub(followed),
            }
        });
        let success = !paths
            .iter()
            .any(|p| matches!(p.outcome, Outcome::NoAnswer { .. }));
        let reaches_destination =
            !paths.is_empty() && self.cut.is_empty() && paths.iter().all(|p| p.reaches_destination);
        let summary = summary(self.spec, &paths, flows.as_ref(), &self.cut);
        PathTree {
            request: self.spec.clone(),
            success,
            reaches_destination,
            tree,
            paths,
            flows,
            cut: self.cut,
            summary,
            elapsed_us: walk::micros(started),
        }
    }

    fn sorted_children(&self, node: usize) -> Vec<usize> {
        let mut children = self.nodes[node].children.clone();
        children.sort_by_key(|&c| self.nodes[c].member);
        children
    }

    fn branch(&self, node: usize) -> Branch {
        let n = &self.nodes[node];
        Branch {
            hop: n.hop.clone(),
            member: n.member,
            children: self
                .sorted_children(node)
                .into_iter()
                .map(|c| self.branch(c))
                .collect(),
            outcome: n.outcome.clone(),
        }
    }

    /// The end-to-end paths, depth first: a switch's own ending before
    /// the paths through its members.
    fn collect(
        &self,
        node: usize,
        steps: &mut Vec<PathStep>,
        paths: &mut Vec<FabricPath>,
        counted: bool,
    ) {
        let n = &self.nodes[node];
        let step = |egress: Option<String>, next_hop: Option<IpAddr>| PathStep {
            agent: n.hop.agent.clone(),
            ingress: n.hop.ingress.clone(),
            egress,
            next_hop,
        };
        let shown = n.hop.kind != FabricHopKind::Unmanaged;
        if let Some(outcome) = &n.outcome {
            let mut hops = steps.clone();
            if shown {
                hops.push(step(n.end_via.0.clone(), n.end_via.1));
            }
            paths.push(FabricPath {
                id: paths.len() + 1,
                hops,
                outcome: outcome.clone(),
                reaches_destination: matches!(outcome, Outcome::Delivered { .. }),
                flows: if counted { n.ends } else { None },
            });
        }
        for child in self.sorted_children(node) {
            let member = self.nodes[child]
                .member
                .and_then(|m| n.members.get(m))
                .cloned();
            let pushed = shown && self.nodes[child].hop.kind != FabricHopKind::Unmanaged;
            if pushed {
                steps.push(step(
                    member.as_ref().and_then(|m| m.interface.clone()),
                    member.as_ref().and_then(|m| m.next_hop),
                ));
            } else if shown {
                // The unmanaged address is the path's end: this switch is
                // its last step, leaving by the member towards it.
                let mut hops = steps.clone();
                hops.push(step(
                    member.as_ref().and_then(|m| m.interface.clone()),
                    member.as_ref().and_then(|m| m.next_hop),
                ));
                let c = &self.nodes[child];
                paths.push(FabricPath {
                    id: paths.len() + 1,
                    hops,
                    outcome: c.outcome.clone().expect("an unmanaged hop ends"),
                    reaches_destination: false,
                    flows: if counted { c.ends } else { None },
                });
                continue;
            }
            self.collect(child, steps, paths, counted);
            if pushed {
                steps.pop();
            }
        }
    }
}

fn add(total: Option<u64>, more: Option<u64>) -> Option<u64> {
    Some(total? + more?)
}

/// `via 10.1.1.1 out swp51`.
fn member_words(member: &Member) -> String {
    let mut words = String::new();
    if let Some(gateway) = member.next_hop {
        let _ = write!(words, "via {gateway}");
    }
    if let Some(interface) = &member.interface {
        if !words.is_empty() {
            words.push(' ');
        }
        let _ = write!(words, "out {interface}");
    }
    words
}

/// `members 3, 4 of 4`.
fn members_words(members: impl Iterator<Item = usize>, of: usize) -> String {
    let list: Vec<String> = members.map(|m| (m + 1).to_string()).collect();
    let noun = if list.len() == 1 { "member" } else { "members" };
    format!("{noun} {} of {of}", list.join(", "))
}

/// `tcp 10.0.1.2:1000 -> 10.0.2.2:80 takes 4 paths: 3 delivered, 1
/// dropped; of the 100 flows of source ports 1000-1099, 75 reach …`.
fn summary(
    spec: &FlowSpec,
    paths: &[FabricPath],
    flows: Option<&FlowSpread>,
    cut: &[String],
) -> String {
    let mut results: Vec<(&str, usize)> = Vec::new();
    for path in paths {
        let result = path.outcome.as_str();
        match results.iter_mut().find(|(r, _)| *r == result) {
            Some((_, n)) => *n += 1,
            None => results.push((result, 1)),
        }
    }
    let mut words = format!(
        "{} takes {} through the fabric: {}",
        walk::describe_flow(spec),
        if paths.len() == 1 {
            "1 path".to_string()
        } else {
            format!("{} paths", paths.len())
        },
        results
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(spread) = flows {
        let reached: u64 = paths
            .iter()
            .filter(|p| p.reaches_destination)
            .filter_map(|p| p.flows)
            .sum();
        let _ = write!(
            words,
            "; of the {} flows of source ports {}-{}, {reached} reach their destination",
            spread.flows, spread.first, spread.last
        );
        if spread.unfollowed > 0 {
            let _ = write!(words, " and {} could not be followed", spread.unfollowed);
        }
    }
    if !cut.is_empty() {
        let bounds: Vec<&str> = cut
            .iter()
            .filter_map(|c| c.split(':').next())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut bounds = bounds;
        bounds.sort();
        let _ = write!(words, " (cut short by {})", bounds.join(" and "));
    }
    words
}

#[cfg(test)]
#[path = "multipath_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "oracle_tests.rs"]
mod oracle_tests;
