//! `paths`: the flows a query names (a source-port range or a seeded random
//! sample, with destination ports, checked before any is looked up) and how
//! they spread over the members of the route, with the verdict.

use super::{HashInfo, Hop, LoadShare, NextHopFlag, Route, TraceError};
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
    /// packets (see the agent's `trace::hash`).
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
    pub fn of(flags: &[NextHopFlag]) -> MemberState {
        if flags.contains(&NextHopFlag::Linkdown) {
            MemberState::Linkdown
        } else if flags.contains(&NextHopFlag::Dead) {
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
