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
use super::{HashInfo, Hop, LoadShare, Member, Route, TraceError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The most flows one query may enumerate: enough for every source port
/// against a few destination ports, few enough to answer in seconds.
pub const MAX_FLOWS: u64 = 1_000_000;

/// The lowest source port sampled: below it are the well-known ports,
/// which clients do not use as sources.
pub const SAMPLE_FIRST_PORT: u16 = 1024;

/// The p-value under which the spread is called uneven.
pub const SIGNIFICANCE: f64 = 0.01;

/// Flows from one source to one destination with varying ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsQuery {
    pub dst: IpAddr,
    #[serde(default)]
    pub src: Option<IpAddr>,
    #[serde(default)]
    pub iif: Option<String>,
    /// A protocol with ports (6 tcp, 17 udp).
    pub proto: u8,
    /// Every source port of this range, one flow each…
    #[serde(default)]
    pub sport_range: Option<PortRange>,
    /// …or this many random distinct (source port, destination port) pairs.
    #[serde(default)]
    pub samples: Option<u32>,
    /// Seeds the sample so a run can be repeated; the answer records the
    /// seed used when none was given.
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub dport: Option<u16>,
    #[serde(default)]
    pub dport_range: Option<PortRange>,
    #[serde(default = "super::default_vrf")]
    pub vrf: String,
    /// List every flow's member in the answer.
    #[serde(default)]
    pub per_flow: bool,
    /// The IPv6 flow label every flow carries (see [`super::FlowQuery`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flowlabel: Option<u32>,
}

/// Ports `first` to `last`, both included. Read from JSON (a collector's
/// trace request) it holds to the same rule as from text: `first` ≤ `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PortBounds")]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// A [`PortRange`] as JSON spells it, before its order is checked.
#[derive(Deserialize)]
struct PortBounds {
    first: u16,
    last: u16,
}

impl TryFrom<PortBounds> for PortRange {
    type Error = String;

    fn try_from(PortBounds { first, last }: PortBounds) -> Result<PortRange, String> {
        if first > last {
            return Err(format!(
                "port range {first}-{last} runs backwards; give the lower port first ({last}-{first})"
            ));
        }
        Ok(PortRange { first, last })
    }
}

impl PortRange {
    pub fn len(&self) -> u64 {
        u64::from(self.last) - u64::from(self.first) + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for PortRange {
    type Err = String;

    /// `A-B` with A ≤ B, both ports; a single port `A` is `A-A`.
    fn from_str(text: &str) -> Result<PortRange, String> {
        let port = |t: &str| {
            t.trim()
                .parse::<u16>()
                .map_err(|_| format!("{t:?} is not a port (0 to 65535)"))
        };
        let (first, last) = match text.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(text)?;
                (p, p)
            }
        };
        if first > last {
            return Err(format!(
                "range {text} runs backwards; give the lower port first ({last}-{first})"
            ));
        }
        Ok(PortRange { first, last })
    }
}

/// Which source ports a [`PathsQuery`] covers, for callers that build one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePorts {
    Range(PortRange),
    Samples { count: u32, seed: Option<u64> },
}

impl PathsQuery {
    /// A query for `dst` over `sports`, everything else unset.
    pub fn new(dst: IpAddr, proto: u8, sports: SourcePorts) -> PathsQuery {
        let (sport_range, samples, seed) = match sports {
            SourcePorts::Range(range) => (Some(range), None, None),
            SourcePorts::Samples { count, seed } => (None, Some(count), seed),
        };
        PathsQuery {
            dst,
            src: None,
            iif: None,
            proto,
            sport_range,
            samples,
            seed,
            dport: None,
            dport_range: None,
            vrf: super::default_vrf(),
            per_flow: false,
            flowlabel: None,
        }
    }

    /// Checks the query; every problem is the caller's to fix.
    pub fn validate(&self) -> Result<(), TraceError> {
        let invalid = |m: String| Err(TraceError::InvalidQuery(m));
        let as_flow = super::FlowQuery {
            dst: self.dst,
            src: self.src,
            iif: self.iif.clone(),
            proto: Some(self.proto),
            sport: None,
            dport: None,
            vrf: self.vrf.clone(),
            flowlabel: self.flowlabel,
        };
        as_flow.validate()?;
        if !super::has_ports(self.proto) {
            return invalid(format!(
                "protocol {} has no ports to spread flows by; give --proto tcp or udp",
                super::proto_name(self.proto)
                    .map_or_else(|| self.proto.to_string(), str::to_string)
            ));
        }
        match (self.sport_range, self.samples) {
            (Some(_), Some(_)) => {
                return invalid(
                    "give either a source-port range or a sample count, not both".into(),
                );
            }
            (None, None) => {
                return invalid("give the flows: --sport-range A-B or --samples N".into());
            }
            (None, Some(0)) => {
                return invalid(
                    "a sample of 0 flows says nothing; give --samples 1 or more".into(),
                );
            }
            _ => {}
        }
        if self.dport.is_some() && self.dport_range.is_some() {
            return invalid("give either --dport or --dport-range, not both".into());
        }
        let count = self.flow_count();
        if count > MAX_FLOWS {
            return invalid(format!(
                "{count} flows is more than the {MAX_FLOWS} one query may enumerate; narrow the port ranges or sample"
            ));
        }
        if let Some(samples) = self.samples
            && u64::from(samples) > self.sample_space()
        {
            return invalid(format!(
                "{samples} distinct flows cannot be drawn from {} port pairs; sample fewer",
                self.sample_space()
            ));
        }
        Ok(())
    }

    fn dports(&self) -> Option<PortRange> {
        self.dport_range
            .or(self.dport.map(|p| PortRange { first: p, last: p }))
    }

    /// How many (source port, destination port) pairs a sample draws from.
    fn sample_space(&self) -> u64 {
        let sports = u64::from(u16::MAX - SAMPLE_FIRST_PORT) + 1;
        sports * self.dports().map_or(1, |r| r.len())
    }

    /// The number of flows the query enumerates.
    pub fn flow_count(&self) -> u64 {
        match (self.sport_range, self.samples) {
            (Some(range), _) => range.len() * self.dports().map_or(1, |r| r.len()),
            (None, Some(samples)) => u64::from(samples),
            (None, None) => 0,
        }
    }

    /// Every flow as (source port, destination port): the range in order,
    /// destination port fastest, or a sample drawn from the seed. Call
    /// [`PathsQuery::validate`] first.
    pub fn flows(&self) -> Result<Vec<(u16, Option<u16>)>, TraceError> {
        self.validate()?;
        let dports = self.dports();
        let dport_list: Vec<Option<u16>> = match dports {
            Some(r) => (r.first..=r.last).map(Some).collect(),
            None => vec![None],
        };
        if let Some(range) = self.sport_range {
            let mut flows = Vec::with_capacity(self.flow_count() as usize);
            for sport in range.first..=range.last {
                for &dport in &dport_list {
                    flows.push((sport, dport));
                }
            }
            return Ok(flows);
        }
        let count = self.samples.unwrap_or(0) as usize;
        let space = self.sample_space();
        let mut rng = SplitMix64(self.seed.unwrap_or(0));
        let dport_count = dport_list.len() as u64;
        let pair = |n: u64| {
            let sport = SAMPLE_FIRST_PORT + (n / dport_count) as u16;
            (sport, dport_list[(n % dport_count) as usize])
        };
        let flows = if (count as u64) * 2 <= space {
            // Few draws from a big space: redraw the rare repeat.
            let mut seen = HashSet::with_capacity(count);
            let mut flows = Vec::with_capacity(count);
            while flows.len() < count {
                let n = rng.below(space);
                if seen.insert(n) {
                    flows.push(pair(n));
                }
            }
            flows
        } else {
            // Most of the space: shuffle it and take the front.
            let mut all: Vec<u64> = (0..space).collect();
            for i in 0..count {
                let j = i + rng.below((all.len() - i) as u64) as usize;
                all.swap(i, j);
            }
            all[..count].iter().map(|&n| pair(n)).collect()
        };
        Ok(flows)
    }
}

/// A seed from the clock, for a sample the caller did not seed.
pub fn seed_from_clock() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    SplitMix64(now.as_nanos() as u64 ^ u64::from(std::process::id())).next()
}

/// SplitMix64: a small, well-mixed generator; sampling ports needs no more.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (Lemire's multiply-shift; the bias for bounds
    /// this small against 2^64 is far below anything a sample could show).
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }
}

/// How the flows of a [`PathsQuery`] spread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paths {
    pub request: PathsQuery,
    /// Flows looked up.
    pub flows: u64,
    pub members: Vec<PathMember>,
    pub verdict: Verdict,
    /// Flows the kernel refused to route (counted in `flows`, in no member).
    #[serde(default)]
    pub unrouted: u64,
    /// The route the flows match; `None` when no route matches at all.
    pub route: Option<Route>,
    #[serde(default)]
    pub load_share: Option<LoadShare>,
    #[serde(default)]
    pub ingress_interface: Option<String>,
    #[serde(default)]
    pub ingress_inferred: bool,
    /// Context for reading the verdict, when there is some.
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub switch: String,
    #[serde(default)]
    pub elapsed_us: u64,
    /// Every flow's member, when the query asked for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flows_detail: Option<Vec<FlowPath>>,
    /// What the multipath hash reads and how far the spread holds for real
    /// packets (see [`super::hash`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<HashInfo>,
    /// Flows hashed onto a member whose link is down, or refused by a
    /// route that drops: forwarded nowhere.
    #[serde(default)]
    pub dropped: u64,
    /// Why every flow is dropped, when the destination is not forwarded
    /// (a blackhole, no route…): the trace's drop hop for the first flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<Hop>,
}

/// Whether a member can carry flows, from the kernel's flags for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    #[default]
    Up,
    /// The member's link has no carrier; flows hashed onto it are dropped.
    Linkdown,
    /// The kernel holds the next hop dead (its link is administratively
    /// down, or it is linkdown under `ignore_routes_with_linkdown`).
    Dead,
}

impl MemberState {
    /// `linkdown` wins over `dead`: the kernel shows a linkdown member as
    /// dead whenever `ignore_routes_with_linkdown` is set now, whether or
    /// not it was when the link went down and the hash was laid out.
    pub fn of(flags: &[String]) -> MemberState {
        if flags.iter().any(|f| f == "linkdown") {
            MemberState::Linkdown
        } else if flags.iter().any(|f| f == "dead") {
            MemberState::Dead
        } else {
            MemberState::Up
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Up => "up",
            MemberState::Linkdown => "linkdown",
            MemberState::Dead => "dead",
        }
    }
}

/// One member's share of the flows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathMember {
    pub next_hop: Option<IpAddr>,
    pub interface: Option<String>,
    pub weight: u32,
    pub count: u64,
    /// `count / flows`.
    pub share: f64,
    /// `weight / sum of the weights of the members that are up`; 0 for a
    /// member that is down, which an even spread gives nothing.
    pub expected_share: f64,
    #[serde(default)]
    pub state: MemberState,
}

/// One flow and the member it takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowPath {
    pub sport: u16,
    pub dport: Option<u16>,
    pub next_hop: Option<IpAddr>,
    pub interface: Option<String>,
    /// The kernel's refusal, for a flow it would not route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether the spread matches the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub even: bool,
    pub chi_square: f64,
    pub degrees_of_freedom: u32,
    pub p_value: f64,
    pub text: String,
}

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
mod tests {
    use super::*;

    fn member(weight: u32, count: u64, total_weight: u32, flows: u64) -> PathMember {
        PathMember {
            next_hop: Some("10.0.1.2".parse().unwrap()),
            interface: Some("sw-p1".into()),
            weight,
            count,
            share: count as f64 / flows as f64,
            expected_share: f64::from(weight) / f64::from(total_weight),
            state: MemberState::Up,
        }
    }

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance * b.abs().max(1e-300)
    }

    #[test]
    fn an_even_spread_is_even() {
        // Four members, the last of weight 2: 1000 flows as expected.
        let flows = 1000;
        let members = [
            member(1, 203, 5, flows),
            member(1, 198, 5, flows),
            member(1, 199, 5, flows),
            member(2, 400, 5, flows),
        ];
        let v = verdict(&members, flows);
        assert!(v.even, "{v:?}");
        assert_eq!(v.degrees_of_freedom, 3);
        assert!(v.p_value > 0.9, "{v:?}");
        assert!(v.text.starts_with("even: chi-square"), "{}", v.text);
        assert!(v.text.contains("largest deviation"), "{}", v.text);
    }

    #[test]
    fn everything_on_one_member_is_uneven() {
        let flows = 2000;
        let members = [
            member(1, 2000, 4, flows),
            member(1, 0, 4, flows),
            member(1, 0, 4, flows),
            member(1, 0, 4, flows),
        ];
        let v = verdict(&members, flows);
        assert!(!v.even);
        assert!(v.p_value < 1e-100, "{v:?}");
        assert!(close(v.chi_square, 6000.0, 1e-12), "{v:?}");
        assert!(v.text.contains("+75.0 points"), "{}", v.text);
    }

    #[test]
    fn a_single_path_is_even_and_strays_are_not() {
        let v = verdict(&[member(1, 10, 1, 10)], 10);
        assert!(v.even);
        assert_eq!(v.p_value, 1.0);
        assert!(v.text.contains("single path"), "{}", v.text);
        let v = verdict(&[member(1, 9, 1, 10), member(0, 1, 1, 10)], 10);
        assert!(!v.even);
        assert!(
            v.text
                .contains("1 flows took a member the route does not list")
        );
        assert!(!verdict(&[], 0).even);
    }

    #[test]
    fn flows_on_a_member_that_is_down_are_dropped_not_even() {
        // Four members of weight 1, one linkdown: the hash still spreads
        // evenly over all four, but a quarter of the flows die.
        let flows = 1000;
        let mut members = [
            member(1, 250, 3, flows),
            member(1, 252, 3, flows),
            member(1, 248, 3, flows),
            member(1, 250, 3, flows),
        ];
        members[1].state = MemberState::Linkdown;
        members[1].expected_share = 0.0;
        let v = verdict(&members, flows);
        assert!(!v.even, "{v:?}");
        assert!(
            v.text.starts_with("dropped: 252 of 1000 flows (25.2%)"),
            "{}",
            v.text
        );
        assert!(v.text.contains("(linkdown, 252 flows)"), "{}", v.text);
        // The other three are judged among themselves, and are even.
        assert!(v.text.contains("the other 748: even"), "{}", v.text);
        assert_eq!(v.degrees_of_freedom, 2);
        // A member the kernel left out gets no flows and spoils nothing.
        members[1].count = 0;
        members[0].count = 334;
        members[2].count = 333;
        members[3].count = 333;
        let v = verdict(&members, flows);
        assert!(v.even, "{v:?}");
        assert_eq!(
            MemberState::of(&["dead".into(), "linkdown".into()]),
            MemberState::Linkdown
        );
        assert_eq!(MemberState::of(&["dead".into()]), MemberState::Dead);
        assert_eq!(MemberState::of(&[]), MemberState::Up);
    }

    #[test]
    fn port_ranges_parse_and_refuse_backwards() {
        assert_eq!(
            "1000-1999".parse::<PortRange>(),
            Ok(PortRange {
                first: 1000,
                last: 1999
            })
        );
        assert_eq!("80".parse::<PortRange>().unwrap().len(), 1);
        assert!(
            "2000-1000"
                .parse::<PortRange>()
                .unwrap_err()
                .contains("backwards")
        );
        assert!(
            "1-70000"
                .parse::<PortRange>()
                .unwrap_err()
                .contains("not a port")
        );
        assert!("a-b".parse::<PortRange>().is_err());
    }

    #[test]
    fn a_backwards_range_in_json_is_refused_too() {
        let query = r#"{"dst":"2001:db8::1","proto":6,"sport_range":{"first":5163,"last":1010},"dport":80}"#;
        let error = serde_json::from_str::<PathsQuery>(query)
            .unwrap_err()
            .to_string();
        assert!(error.contains("backwards"), "{error}");
        let range = serde_json::from_str::<PortRange>(r#"{"first":7,"last":7}"#).unwrap();
        assert_eq!(range.len(), 1);
    }

    fn query() -> PathsQuery {
        PathsQuery::new(
            "10.9.1.1".parse().unwrap(),
            6,
            SourcePorts::Range(PortRange {
                first: 1000,
                last: 1009,
            }),
        )
    }

    #[test]
    fn ranges_enumerate_every_pair() {
        let mut q = query();
        q.dport_range = Some(PortRange {
            first: 80,
            last: 81,
        });
        let flows = q.flows().unwrap();
        assert_eq!(flows.len(), 20);
        assert_eq!(flows[0], (1000, Some(80)));
        assert_eq!(flows[1], (1000, Some(81)));
        assert_eq!(flows[19], (1009, Some(81)));
    }

    #[test]
    fn samples_are_distinct_and_repeatable() {
        let mut q = PathsQuery::new(
            "10.9.1.1".parse().unwrap(),
            17,
            SourcePorts::Samples {
                count: 5000,
                seed: Some(7),
            },
        );
        q.dport = Some(53);
        let flows = q.flows().unwrap();
        assert_eq!(flows.len(), 5000);
        let distinct: HashSet<_> = flows.iter().collect();
        assert_eq!(distinct.len(), 5000);
        assert!(
            flows
                .iter()
                .all(|&(s, d)| s >= SAMPLE_FIRST_PORT && d == Some(53))
        );
        assert_eq!(q.flows().unwrap(), flows);
        q.seed = Some(8);
        assert_ne!(q.flows().unwrap(), flows);
        // Most of the space: the shuffle path, still distinct.
        q.samples = Some(60_000);
        let flows = q.flows().unwrap();
        assert_eq!(flows.iter().collect::<HashSet<_>>().len(), 60_000);
    }

    #[test]
    fn bad_queries_are_usage_errors() {
        let mut q = query();
        q.samples = Some(10);
        assert!(q.validate().unwrap_err().to_string().contains("not both"));
        let mut q = query();
        q.sport_range = None;
        assert!(q.validate().unwrap_err().to_string().contains("--samples"));
        let mut q = query();
        q.proto = 1;
        assert!(q.validate().unwrap_err().is_usage());
        let mut q = query();
        q.sport_range = Some(PortRange {
            first: 0,
            last: 65535,
        });
        q.dport_range = Some(PortRange {
            first: 0,
            last: 100,
        });
        assert!(q.validate().unwrap_err().to_string().contains("more than"));
        let mut q = query();
        q.sport_range = None;
        q.samples = Some(70_000);
        assert!(
            q.validate()
                .unwrap_err()
                .to_string()
                .contains("cannot be drawn")
        );
    }
}
