//! Flow traces as both sides speak them: the query (one flow, the spread of
//! many over a route's members, one hop of a fabric trace) and the answer
//! (typed hops shaped like an OVN trace, the spread with its verdict). The
//! agent answers them from its switch's forwarding state; the collector
//! carries queries to agents and answers back. Every type is serde both
//! ways, and its JSON is what `hopwatch trace --json` prints.

mod kinds;
mod paths;
mod query;
mod render;

pub use kinds::{Action, HopKind, NeighborState, NextHopFlag, OperState, RouteKind};
pub use paths::{
    FlowPath, MAX_FLOWS, MemberState, PathMember, Paths, PathsQuery, PortRange, SAMPLE_FIRST_PORT,
    SourcePorts, Verdict, seed_from_clock,
};
pub use query::{HopQuery, TraceAnswer, TraceQuery};
pub use render::{port_words, proto_words};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use thiserror::Error;

/// The VRF a query names when it names none: the namespace the agent runs in.
pub const DEFAULT_VRF: &str = "default";

/// One flow, as a packet would carry it. Without `iif` the flow is
/// originated by the switch itself; with `iif` (and then `src`) it arrives
/// on that interface and is forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowQuery {
    pub dst: IpAddr,
    #[serde(default)]
    pub src: Option<IpAddr>,
    /// The interface the flow arrives on; `None` for a flow the switch
    /// originates, or when it is to be inferred from a non-local `src`.
    #[serde(default)]
    pub iif: Option<String>,
    /// IP protocol number (6 tcp, 17 udp, 1 icmp, 58 ipv6-icmp); `None`
    /// leaves it out of the lookup, as `ip route get` without `ipproto` does.
    #[serde(default)]
    pub proto: Option<u8>,
    #[serde(default)]
    pub sport: Option<u16>,
    #[serde(default)]
    pub dport: Option<u16>,
    /// A network namespace in `/var/run/netns`, an l3mdev VRF device, or
    /// `default` for the namespace the agent runs in.
    #[serde(default = "default_vrf")]
    pub vrf: String,
    /// The IPv6 flow label the packets carry, for the policies that hash
    /// it; left out of the JSON when not given, as older answers were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flowlabel: Option<u32>,
}

pub(crate) fn default_vrf() -> String {
    DEFAULT_VRF.to_string()
}

impl FlowQuery {
    /// A locally originated flow to `dst` with nothing else set.
    pub fn new(dst: IpAddr) -> FlowQuery {
        FlowQuery {
            dst,
            src: None,
            iif: None,
            proto: None,
            sport: None,
            dport: None,
            vrf: default_vrf(),
            flowlabel: None,
        }
    }

    /// Checks what can be checked without the switch: every problem is the
    /// caller's to fix, so each is a [`TraceError::InvalidQuery`].
    pub fn validate(&self) -> Result<(), TraceError> {
        if let Some(src) = self.src
            && src.is_ipv4() != self.dst.is_ipv4()
        {
            return Err(TraceError::InvalidQuery(format!(
                "source {src} and destination {} are of different address families; give both as IPv4 or both as IPv6",
                self.dst
            )));
        }
        if let Some(iif) = &self.iif {
            if self.src.is_none() {
                return Err(TraceError::InvalidQuery(format!(
                    "a flow arriving on {iif} needs its source address: add --src"
                )));
            }
            check_interface_name(iif)?;
        }
        check_vrf_name(&self.vrf)?;
        check_flowlabel(self.flowlabel, self.dst)?;
        if let Some(proto) = self.proto
            && !has_ports(proto)
            && (self.sport.is_some() || self.dport.is_some())
        {
            return Err(TraceError::InvalidQuery(format!(
                "protocol {} has no ports; drop --sport/--dport or give --proto tcp or udp",
                proto_name(proto).map_or_else(|| proto.to_string(), str::to_string)
            )));
        }
        Ok(())
    }

    /// `tcp 10.0.0.1:1234 -> 10.1.0.9:80`, for summaries.
    pub fn describe(&self) -> String {
        let endpoint = |addr: Option<IpAddr>, port: Option<u16>| match (addr, port) {
            (Some(IpAddr::V6(a)), Some(p)) => format!("[{a}]:{p}"),
            (Some(a), Some(p)) => format!("{a}:{p}"),
            (Some(a), None) => a.to_string(),
            (None, Some(p)) => format!("this switch:{p}"),
            (None, None) => "this switch".to_string(),
        };
        let proto = match self.proto {
            Some(p) => proto_name(p).map_or_else(|| format!("proto {p} "), |n| format!("{n} ")),
            None => String::new(),
        };
        format!(
            "{proto}{} -> {}",
            endpoint(self.src, self.sport),
            endpoint(Some(self.dst), self.dport)
        )
    }
}

/// Linux interface names are 1 to 15 bytes without `/`, whitespace or NUL.
pub fn check_interface_name(name: &str) -> Result<(), TraceError> {
    if name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c == '\0')
    {
        return Err(TraceError::InvalidQuery(format!(
            "{name:?} is not an interface name (1 to 15 characters, no '/' or spaces)"
        )));
    }
    Ok(())
}

/// A flow label is IPv6's, and 20 bits.
pub fn check_flowlabel(label: Option<u32>, dst: IpAddr) -> Result<(), TraceError> {
    match label {
        Some(_) if dst.is_ipv4() => Err(TraceError::InvalidQuery(format!(
            "--flowlabel is for IPv6; {dst} is IPv4, whose packets have no flow label: drop --flowlabel"
        ))),
        Some(label) if label > 0xF_FFFF => Err(TraceError::InvalidQuery(format!(
            "flow label {label} does not fit the 20 bits of the IPv6 header; give 0 to 1048575 (0xfffff)"
        ))),
        _ => Ok(()),
    }
}

/// A VRF name becomes a path under `/var/run/netns`, so it must not leave it.
pub fn check_vrf_name(name: &str) -> Result<(), TraceError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(TraceError::InvalidQuery(format!(
            "{name:?} is not a VRF name; give a network namespace name from /var/run/netns or a vrf device name"
        )));
    }
    Ok(())
}

/// Whether flows of this protocol carry ports the multipath hash can use.
pub fn has_ports(proto: u8) -> bool {
    // tcp, udp, dccp, sctp, udplite: the protocols whose first four bytes
    // are the ports, which is what the kernel's flow dissector reads.
    matches!(proto, 6 | 17 | 33 | 132 | 136)
}

/// The usual name of an IP protocol number, as `/etc/protocols` spells it.
pub fn proto_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        1 => "icmp",
        2 => "igmp",
        4 => "ipip",
        6 => "tcp",
        17 => "udp",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "ipv6-icmp",
        89 => "ospf",
        103 => "pim",
        112 => "vrrp",
        132 => "sctp",
        _ => return None,
    })
}

/// The answer to one [`FlowQuery`], shaped like an OVN trace: the request,
/// whether the flow reaches its destination, and typed hops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub request: FlowQuery,
    /// The query was answered. A dropped flow is still a successful trace;
    /// failures to ask at all are errors, not traces.
    pub success: bool,
    /// Forwarded out of an interface or delivered to the switch itself.
    pub reaches_destination: bool,
    /// The chosen gateway; `None` when the destination is directly connected
    /// or local, or the flow is dropped before a next hop is chosen.
    pub next_hop: Option<IpAddr>,
    /// The interface the flow leaves by (`lo` for local delivery).
    pub egress_interface: Option<String>,
    /// The interface the flow arrives on; `None` for a locally originated flow.
    #[serde(default)]
    pub ingress_interface: Option<String>,
    /// The ingress was inferred from the route back to a non-local source
    /// because the query named none.
    pub ingress_inferred: bool,
    pub hops: Vec<Hop>,
    pub summary: String,
    /// The switch that answered: its hostname.
    #[serde(default)]
    pub switch: String,
    /// The backend that answered (`kernel`, `nxapi`).
    #[serde(default)]
    pub backend: String,
    /// How the switch spreads flows over ECMP members.
    #[serde(default)]
    pub load_share: Option<LoadShare>,
    /// Time taken to answer, in microseconds.
    #[serde(default)]
    pub elapsed_us: u64,
    /// What the multipath hash read for this flow and whether a real
    /// packet is hashed the same; absent where no kernel hash applies (the
    /// nxapi backend, whose `show routing hash` is the hardware's answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<HashInfo>,
}

impl Trace {
    /// The drop hop, if the flow is dropped.
    pub fn drop_hop(&self) -> Option<(&Hop, DropReason)> {
        self.hops.iter().find_map(|hop| match &hop.step {
            Step::Drop { reason, .. } => Some((hop, *reason)),
            _ => None,
        })
    }

    /// The route the flow matched, from the routing or drop hop.
    pub fn route(&self) -> Option<&Route> {
        self.hops.iter().find_map(|hop| match &hop.step {
            Step::L3Routing { route, .. } => Some(route),
            Step::Drop { route, .. } | Step::Local { route, .. } => route.as_ref(),
            _ => None,
        })
    }
}

/// One stage a packet of the flow passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    pub index: usize,
    /// Where the stage happens: `<switch>/<vrf>`.
    pub component: String,
    pub action: Action,
    pub description: String,
    #[serde(flatten)]
    pub step: Step,
}

impl Hop {
    /// The hop's `type` as it appears in JSON.
    pub fn kind(&self) -> HopKind {
        match self.step {
            Step::L3Routing { .. } => HopKind::L3Routing,
            Step::Neighbor { .. } => HopKind::Neighbor,
            Step::Egress { .. } => HopKind::Egress,
            Step::Local { .. } => HopKind::Local,
            Step::Drop { .. } => HopKind::Drop,
        }
    }
}

/// What a hop found; its `type` tags the JSON object.
// A trace holds a handful of hops, so boxing the larger variants would buy
// nothing but indirection for callers matching on them.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Step {
    /// The route lookup: the matching route and the member chosen.
    L3Routing {
        route: Route,
        /// The source address the switch would put on a flow it originates.
        #[serde(default)]
        source_address: Option<IpAddr>,
    },
    /// The link-layer address of the next hop (or of a connected destination).
    Neighbor { neighbor: Neighbor },
    /// The interface the flow leaves by.
    Egress { interface: Interface },
    /// The destination is the switch itself.
    Local {
        #[serde(default)]
        interface: Option<String>,
        #[serde(default)]
        route: Option<Route>,
    },
    /// The flow goes no further.
    Drop {
        reason: DropReason,
        /// The route that dropped it, when the kernel can name it.
        #[serde(default)]
        route: Option<Route>,
        /// The setting behind the drop (`net.ipv4.conf.eth1.forwarding = 0`).
        #[serde(default)]
        setting: Option<String>,
        #[serde(default)]
        interface: Option<Interface>,
        #[serde(default)]
        neighbor: Option<Neighbor>,
        /// The kernel's own words, when it answered with an error.
        #[serde(default)]
        kernel_answer: Option<String>,
    },
}

/// Why a flow is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// A `blackhole` route: discarded silently.
    Blackhole,
    /// An `unreachable` route: discarded with ICMP host unreachable.
    Unreachable,
    /// A `prohibit` route: discarded with ICMP administratively prohibited.
    Prohibit,
    /// A `throw` route ended the lookup in its table and no other table matched.
    Throw,
    /// No route matches the destination.
    NoRoute,
    /// The flow arrives on an interface that does not forward.
    ForwardingDisabled,
    /// The egress interface is down.
    EgressDown,
    /// The next hop did not answer ARP / neighbour discovery.
    NeighborFailed,
    /// The next hop's address is being resolved and has not answered yet.
    NeighborIncomplete,
    /// Reverse-path filtering: the source is not reachable back through
    /// the ingress interface.
    ReversePathFilter,
    /// The source address cannot arrive from outside (it is local,
    /// loopback, multicast or zero).
    MartianSource,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Blackhole => "blackhole",
            DropReason::Unreachable => "unreachable",
            DropReason::Prohibit => "prohibit",
            DropReason::Throw => "throw",
            DropReason::NoRoute => "no_route",
            DropReason::ForwardingDisabled => "forwarding_disabled",
            DropReason::EgressDown => "egress_down",
            DropReason::NeighborFailed => "neighbor_failed",
            DropReason::NeighborIncomplete => "neighbor_incomplete",
            DropReason::ReversePathFilter => "reverse_path_filter",
            DropReason::MartianSource => "martian_source",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A route as the FIB holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// `10.1.0.0/16`, `0.0.0.0/0`.
    pub prefix: String,
    #[serde(rename = "type")]
    pub kind: RouteKind,
    pub table: u32,
    /// `main`, `local`, `default`, else the number.
    pub table_name: String,
    /// Who installed it: `kernel`, `boot` (`ip route add`), `static`,
    /// `bgp`, `ospf`, `zebra`, …
    pub protocol: String,
    pub protocol_id: u8,
    /// The route's priority (`metric` in `ip route`); 0 when it has none.
    pub metric: u32,
    /// The preferred source address of flows the switch originates.
    #[serde(default)]
    pub preferred_source: Option<IpAddr>,
    /// Every next hop, with its weight; one for a single-path route, none
    /// for a route that does not forward (local, blackhole, …).
    pub members: Vec<Member>,
    /// Which member this flow takes, an index into `members`.
    pub chosen: Option<usize>,
}

impl Route {
    /// The ECMP member a flow leaving by `ifindex` towards `gateway` takes.
    pub fn member_of(&self, gateway: Option<IpAddr>, ifindex: u32) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.ifindex == ifindex && m.next_hop == gateway)
            .or_else(|| {
                // A route through a device alone has no gateway in the FIB
                // but the answer may name one it resolved on the way.
                self.members
                    .iter()
                    .position(|m| m.ifindex == ifindex && m.next_hop.is_none())
            })
    }
}

/// One next hop of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The gateway; `None` for a directly connected route.
    pub next_hop: Option<IpAddr>,
    pub interface: Option<String>,
    pub ifindex: u32,
    /// The member's share of flows relative to the others (`weight` in
    /// `ip route`, the kernel's `rtnh_hops + 1`).
    pub weight: u32,
    #[serde(default)]
    pub flags: Vec<NextHopFlag>,
}

/// A neighbour table entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbor {
    pub address: IpAddr,
    pub interface: String,
    /// The link-layer (MAC) address, once resolved.
    pub lladdr: Option<String>,
    pub state: NeighborState,
    /// The neighbour announced itself as a router (IPv6).
    #[serde(default)]
    pub router: bool,
}

/// An interface's state and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub ifindex: u32,
    pub oper_state: OperState,
    pub admin_up: bool,
    pub carrier: bool,
    pub mtu: Option<u32>,
    /// `None` when the driver reports none (virtual links, down links) or
    /// it cannot be read truthfully from inside another VRF namespace.
    pub speed_mbps: Option<u64>,
    pub counters: Option<Counters>,
}

impl Interface {
    /// Whether it can transmit. Drivers that track no operational state
    /// (loopback, tunnels) report `unknown`; those count as up while enabled
    /// and carrying, as the agent's link state rules.
    pub fn is_up(&self) -> bool {
        self.admin_up
            && self.carrier
            && matches!(self.oper_state, OperState::Up | OperState::Unknown)
    }
}

/// The counters of one interface, both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// How the switch picks an ECMP member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadShare {
    /// The setting it comes from, `net.ipv4.fib_multipath_hash_policy`.
    pub setting: String,
    pub policy: u32,
    /// The policy in words.
    pub mode: String,
}

/// Why a query could not be answered.
#[derive(Debug, Error)]
pub enum TraceError {
    /// The query itself is wrong; the caller must change it.
    #[error("{0}")]
    InvalidQuery(String),
    #[error(
        "no VRF named {name:?}: no namespace /var/run/netns/{name} and no vrf device of that name; VRFs found: {}",
        if found.is_empty() { "none".to_string() } else { found.join(", ") }
    )]
    UnknownVrf { name: String, found: Vec<String> },
    #[error("no interface named {name:?} in VRF {vrf}; give one `ip link` lists there")]
    UnknownInterface { name: String, vrf: String },
    #[error(
        "cannot enter VRF {vrf} ({path}; entering another network namespace needs root, CAP_SYS_ADMIN)"
    )]
    EnterVrf {
        vrf: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot infer the ingress interface: the route back to source {src} gives none ({reason}); give --iif"
    )]
    IngressUnknown { src: IpAddr, reason: String },
    #[error("{what} failed")]
    Netlink {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// NX-API could not answer (absent socket, timeout, refused command).
    #[error("{0}")]
    Nxapi(String),
    #[error(
        "{dst} is not forwarded in VRF {vrf} ({reason}), so there are no paths to spread flows over; `hopwatch trace --dst {dst}` shows why"
    )]
    NotForwarded {
        dst: IpAddr,
        vrf: String,
        reason: String,
    },
}

impl TraceError {
    /// Whether the caller's input is at fault (exit status 2) rather than
    /// the switch's state or the agent's rights (exit status 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, TraceError::InvalidQuery(_))
    }

    pub fn netlink(what: impl Into<String>, source: std::io::Error) -> TraceError {
        TraceError::Netlink {
            what: what.into(),
            source,
        }
    }
}

/// How the answering switch hashes this flow onto an ECMP member, and how
/// far the answer holds for real packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashInfo {
    /// `ipv4` or `ipv6`: each family has its own policy.
    pub family: String,
    /// The sysctl the policy comes from.
    pub setting: String,
    pub policy: u32,
    /// `fib_multipath_hash_fields`, read under policy 3 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<u32>,
    /// What the kernel hashes under the policy: `src`, `dst`, `proto`,
    /// `sport`, `dport`, `flowlabel`, and `inner_*` for tunnelled packets.
    pub inputs: Vec<String>,
    /// The flow label the lookup hashed, when the policy hashes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flowlabel: Option<u32>,
    /// Whether a real packet of the flow is hashed as the lookup was.
    pub exact: bool,
    /// Why it may not be, and what to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caveat: Option<String>,
}

impl HashInfo {
    /// Whether the policy hashes the (outer) flow label.
    pub fn hashes_flowlabel(&self) -> bool {
        self.inputs.iter().any(|input| input == "flowlabel")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(dst: &str) -> FlowQuery {
        FlowQuery::new(dst.parse().unwrap())
    }

    #[test]
    fn validation_names_the_fault() {
        let mut q = query("10.1.0.9");
        q.src = Some("fd00::1".parse().unwrap());
        let error = q.validate().unwrap_err();
        assert!(error.is_usage());
        assert!(error.to_string().contains("different address families"));

        let mut q = query("10.1.0.9");
        q.iif = Some("eth0".into());
        assert!(q.validate().unwrap_err().to_string().contains("add --src"));

        let mut q = query("10.1.0.9");
        q.src = Some("10.0.0.1".parse().unwrap());
        q.iif = Some("a/b".into());
        assert!(
            q.validate()
                .unwrap_err()
                .to_string()
                .contains("interface name")
        );

        let mut q = query("10.1.0.9");
        q.proto = Some(1);
        q.dport = Some(80);
        assert!(
            q.validate()
                .unwrap_err()
                .to_string()
                .contains("icmp has no ports")
        );

        let mut q = query("10.1.0.9");
        q.vrf = "../x".into();
        assert!(
            q.validate()
                .unwrap_err()
                .to_string()
                .contains("not a VRF name")
        );

        let mut q = query("10.1.0.9");
        q.flowlabel = Some(1);
        assert!(
            q.validate()
                .unwrap_err()
                .to_string()
                .contains("is for IPv6")
        );
        let mut q = query("fd09::1");
        q.flowlabel = Some(0x10_0000);
        assert!(q.validate().unwrap_err().to_string().contains("20 bits"));
        q.flowlabel = Some(0xF_FFFF);
        assert!(q.validate().is_ok());

        let mut q = query("fd09::1");
        q.src = Some("fd00::2".parse().unwrap());
        q.iif = Some("sw-in".into());
        q.proto = Some(6);
        q.sport = Some(1234);
        assert!(q.validate().is_ok());
    }

    #[test]
    fn describes_flows() {
        let mut q = query("10.1.0.9");
        assert_eq!(q.describe(), "this switch -> 10.1.0.9");
        q.src = Some("10.0.0.1".parse().unwrap());
        q.proto = Some(6);
        q.sport = Some(1234);
        q.dport = Some(80);
        assert_eq!(q.describe(), "tcp 10.0.0.1:1234 -> 10.1.0.9:80");
        let mut q = query("fd09::1");
        q.proto = Some(17);
        q.dport = Some(53);
        assert_eq!(q.describe(), "udp this switch -> [fd09::1]:53");
    }

    #[test]
    fn hops_round_trip_through_json_with_their_type() {
        let hop = Hop {
            index: 1,
            component: "sw1/default".into(),
            action: Action::Drop,
            description: "blackhole route".into(),
            step: Step::Drop {
                reason: DropReason::Blackhole,
                route: None,
                setting: None,
                interface: None,
                neighbor: None,
                kernel_answer: Some("Invalid argument".into()),
            },
        };
        let json = serde_json::to_value(&hop).unwrap();
        assert_eq!(json["type"], "drop");
        assert_eq!(json["reason"], "blackhole");
        assert_eq!(json["index"], 1);
        let back: Hop = serde_json::from_value(json).unwrap();
        assert_eq!(back, hop);
        assert_eq!(back.kind(), "drop");
    }

    #[test]
    fn queries_default_their_vrf() {
        let q: FlowQuery = serde_json::from_str(r#"{"dst":"10.0.0.1"}"#).unwrap();
        assert_eq!(q, query("10.0.0.1"));
        assert!(serde_json::from_str::<FlowQuery>(r#"{"dst":"10.0.0.1","bogus":1}"#).is_err());
    }
}
