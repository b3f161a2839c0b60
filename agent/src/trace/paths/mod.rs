//! `paths`: many flows to one destination — a source-port range or a random
//! sample — and how they spread over the members of its multipath route,
//! with a verdict on whether the spread matches the weights.
//!
//! The verdict is Pearson's chi-square goodness-of-fit test: the counts per
//! member against the counts the weights lead one to expect, with members
//! less one degrees of freedom. A p-value under 0.01 means a spread this far
//! from the weights would arise by chance less than once in a hundred runs
//! of a fair hash, so the hashing is called uneven.
//!
//! A member whose link is down is no share of an even spread. The kernel
//! marks it `linkdown` and, unless `ignore_routes_with_linkdown` was set
//! when the link went down (the hash's ranges are recomputed on link events
//! only, so setting it later changes the flag `ip route` shows but not the
//! choice), still hashes flows onto it and forwards them into the dead link,
//! where they are dropped. The test therefore spreads the flows of the
//! members that forward over their weights alone, and the flows the lookups
//! put on a down member are counted as dropped, which no even verdict hides.

pub use super::chi_square::{chi_square_survival, gamma_q};
pub use hopwatch_wire::trace::{
    FlowPath, MAX_FLOWS, MemberState, PathMember, Paths, PathsQuery, PortRange, SAMPLE_FIRST_PORT,
    SourcePorts, Verdict, seed_from_clock,
};

use super::{Hop, LoadShare, Member, Route};

/// The p-value under which the spread is called uneven.
pub const SIGNIFICANCE: f64 = 0.01;

/// Puts the answer together from the members and their counts.
#[allow(clippy::too_many_arguments)]
pub(crate) fn assemble(
    mut request: PathsQuery,
    route: Route,
    members: &[Member],
    counts: &[u64],
    unrouted: u64,
    flows_detail: Option<Vec<FlowPath>>,
    load_share: Option<LoadShare>,
    ingress_interface: Option<String>,
    ingress_inferred: bool,
) -> Paths {
    let flows = counts.iter().sum::<u64>() + unrouted;
    let routed = flows - unrouted;
    let up_weight: u64 = members
        .iter()
        .filter(|m| MemberState::of(&m.flags) == MemberState::Up)
        .map(|m| u64::from(m.weight))
        .sum();
    let members: Vec<PathMember> = members
        .iter()
        .zip(counts)
        .map(|(m, &count)| {
            let state = MemberState::of(&m.flags);
            PathMember {
                next_hop: m.next_hop,
                interface: m.interface.clone(),
                weight: m.weight,
                count,
                share: ratio(count, routed),
                expected_share: if state == MemberState::Up {
                    ratio(u64::from(m.weight), up_weight)
                } else {
                    0.0
                },
                state,
            }
        })
        .collect();
    let verdict = verdict(&members, routed);
    let dropped = members
        .iter()
        .filter(|m| m.state != MemberState::Up)
        .map(|m| m.count)
        .sum();
    let note = load_share.as_ref().and_then(|share| {
        let ports_hashed = match share.policy {
            1 => true,
            3 => share.mode.contains("port"),
            _ => false,
        };
        (!ports_hashed && members.len() > 1).then(|| {
            format!(
                "{} = {} ({}) leaves ports out of the hash, so flows that differ only in ports all take one member",
                share.setting, share.policy, share.mode
            )
        })
    });
    request.per_flow = flows_detail.is_some();
    Paths {
        request,
        flows,
        members,
        verdict,
        unrouted,
        dropped,
        route: Some(route),
        drop: None,
        load_share,
        ingress_interface,
        ingress_inferred,
        note,
        switch: String::new(),
        elapsed_us: 0,
        flows_detail,
        hash: None,
    }
}

/// The answer for a destination the switch does not forward: every flow
/// meets the drop the trace of the first one found.
pub(crate) fn dropped(request: PathsQuery, drop: Hop, route: Option<Route>) -> Paths {
    let flows = request.flow_count();
    let text = format!(
        "dropped: all {flows} flows go no further than this switch: {}",
        drop.description
    );
    Paths {
        request,
        flows,
        members: Vec::new(),
        verdict: Verdict {
            even: false,
            chi_square: 0.0,
            degrees_of_freedom: 0,
            p_value: 1.0,
            text,
        },
        unrouted: flows,
        dropped: flows,
        route,
        drop: Some(drop),
        load_share: None,
        ingress_interface: None,
        ingress_inferred: false,
        note: None,
        switch: String::new(),
        elapsed_us: 0,
        flows_detail: None,
        hash: None,
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The chi-square test of the counts of the members that are up against
/// their weights; flows on a member that is down are dropped, and say so.
pub fn verdict(members: &[PathMember], flows: u64) -> Verdict {
    let up = |m: &&PathMember| m.state == MemberState::Up;
    let weighted: Vec<&PathMember> = members.iter().filter(up).filter(|m| m.weight > 0).collect();
    let stray: u64 = members
        .iter()
        .filter(up)
        .filter(|m| m.weight == 0)
        .map(|m| m.count)
        .sum();
    let down: Vec<&PathMember> = members.iter().filter(|m| !up(m) && m.count > 0).collect();
    let dropped: u64 = down.iter().map(|m| m.count).sum();
    if flows == 0 {
        return Verdict {
            even: false,
            chi_square: 0.0,
            degrees_of_freedom: 0,
            p_value: 1.0,
            text: "no flows were routed, so there is no spread to judge".into(),
        };
    }
    // The flows the members that are up carry, spread over their weights.
    let forwarded = flows - dropped;
    let mut chi_square = 0.0;
    for m in &weighted {
        let expected = m.expected_share * forwarded as f64;
        if expected > 0.0 {
            let gap = m.count as f64 - expected;
            chi_square += gap * gap / expected;
        }
    }
    let degrees_of_freedom = weighted.len().saturating_sub(1) as u32;
    let p_value = if stray > 0 {
        0.0
    } else if degrees_of_freedom == 0 {
        1.0
    } else {
        chi_square_survival(chi_square, f64::from(degrees_of_freedom))
    };
    let even = stray == 0 && dropped == 0 && p_value >= SIGNIFICANCE;
    let name = |m: &PathMember| match (&m.next_hop, &m.interface) {
        (Some(gw), Some(dev)) => format!("{gw} via {dev}"),
        (Some(gw), None) => gw.to_string(),
        (None, Some(dev)) => format!("{dev} (connected)"),
        (None, None) => "a member".into(),
    };
    let mut text = String::new();
    if dropped > 0 {
        let names: Vec<String> = down
            .iter()
            .map(|m| format!("{} ({}, {} flows)", name(m), m.state.as_str(), m.count))
            .collect();
        text = format!(
            "dropped: {dropped} of {flows} flows ({:.1}%) hash onto {}, whose link is down, and the kernel forwards them into it; ",
            ratio(dropped, flows) * 100.0,
            names.join(", ")
        );
        if forwarded == 0 {
            text.push_str("no flow is forwarded");
            return Verdict {
                even,
                chi_square,
                degrees_of_freedom,
                p_value,
                text,
            };
        }
        text.push_str(&format!("the other {forwarded}: "));
    }
    if weighted.len() <= 1 && stray == 0 {
        text.push_str(&format!(
            "{}a single path, all {forwarded} flows take {}",
            if dropped == 0 { "even: " } else { "" },
            weighted.first().map_or_else(|| "it".into(), |m| name(m))
        ));
    } else {
        let spread_even = stray == 0 && p_value >= SIGNIFICANCE;
        let word = if spread_even { "even" } else { "uneven" };
        let compare = if spread_even { "≥" } else { "<" };
        text.push_str(&format!(
            "{word}: chi-square {chi_square:.2} on {degrees_of_freedom} degree{} of freedom, p = {} {compare} {SIGNIFICANCE}",
            if degrees_of_freedom == 1 { "" } else { "s" },
            format_p(p_value)
        ));
    }
    if stray > 0 {
        text.push_str(&format!(
            "; {stray} flows took a member the route does not list"
        ));
    }
    if let Some(worst) = members.iter().filter(up).max_by(|a, b| {
        (a.share - a.expected_share)
            .abs()
            .total_cmp(&(b.share - b.expected_share).abs())
    }) && members.len() > 1
        && dropped == 0
    {
        let points = (worst.share - worst.expected_share) * 100.0;
        text.push_str(&format!(
            "; largest deviation: {} took {:.1}% of flows against {:.1}% expected ({points:+.1} points)",
            name(worst),
            worst.share * 100.0,
            worst.expected_share * 100.0
        ));
    }
    let smallest_expected = weighted
        .iter()
        .map(|m| m.expected_share * forwarded as f64)
        .fold(f64::INFINITY, f64::min);
    if weighted.len() > 1 && smallest_expected < 5.0 {
        text.push_str(
            "; too few flows for the test to be reliable (fewer than 5 expected on a member)",
        );
    }
    Verdict {
        even,
        chi_square,
        degrees_of_freedom,
        p_value,
        text,
    }
}

fn format_p(p: f64) -> String {
    if p == 0.0 {
        "0".into()
    } else if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests;
