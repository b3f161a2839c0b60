//! Answers read straight from their bytes: only the attributes a trace
//! uses, found by walking the attribute list once, without decoding the
//! whole message.

use super::*;
use crate::trace::Counters;

/// The errno of an `NLMSG_ERROR` payload (positive; 0 for an ack).
pub(crate) fn raw_error(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .map_or(0, |b| -i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// The member a route answer names, read straight from the bytes: the
/// gateway (`RTA_GATEWAY`, or `RTA_VIA` for an IPv4 route through an IPv6
/// next hop) and the output interface. `paths` reads thousands of these.
pub(crate) fn raw_route_member(payload: &[u8]) -> Option<(Option<IpAddr>, u32)> {
    let mut gateway = None;
    let mut oif = 0;
    for (kind, value) in attributes(payload.get(RTMSG_LEN..)?) {
        match kind {
            RTA_OIF => oif = u32_at(value, 0)?,
            RTA_GATEWAY => gateway = ip_from_bytes(value),
            RTA_VIA if value.len() > 2 => gateway = ip_from_bytes(&value[2..]),
            _ => {}
        }
    }
    Some((gateway, oif))
}

/// What a trace reads of a link answer, straight from the bytes: decoding
/// the whole message (address-family blocks, driver info, dozens of
/// attributes) would cost more than the kernel took to write it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkFacts {
    pub index: u32,
    /// `IFF_*` flags.
    pub flags: u32,
    pub name: Option<String>,
    pub mtu: Option<u32>,
    /// RFC 2863 operational state, `IF_OPER_*`.
    pub operstate: Option<u8>,
    pub counters: Option<Counters>,
}

pub(crate) const IFF_UP: u32 = 0x1;
pub(crate) const IFF_LOOPBACK: u32 = 0x8;
pub(crate) const IFF_NOARP: u32 = 0x80;
pub(crate) const IFF_LOWER_UP: u32 = 0x1_0000;

/// Reads an `RTM_NEWLINK` payload.
pub(crate) fn link_facts(payload: &[u8]) -> Option<LinkFacts> {
    let mut facts = LinkFacts {
        index: u32_at(payload, 4)?,
        flags: u32_at(payload, 8)?,
        ..LinkFacts::default()
    };
    for (kind, value) in attributes(payload.get(IFINFOMSG_LEN..)?) {
        match kind {
            IFLA_IFNAME => facts.name = Some(crate::netlink::text(value)),
            IFLA_MTU => facts.mtu = u32_at(value, 0),
            IFLA_OPERSTATE => facts.operstate = value.first().copied(),
            IFLA_STATS64 => facts.counters = Some(counters64(value)),
            _ => {}
        }
    }
    Some(facts)
}

/// Reads `rtnl_link_stats64`, which opens with rx/tx packets, bytes,
/// errors, dropped, in that order.
fn counters64(value: &[u8]) -> Counters {
    let at = |i: usize| {
        value
            .get(i * 8..i * 8 + 8)
            .map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap_or_default()))
    };
    Counters {
        rx_packets: at(0),
        tx_packets: at(1),
        rx_bytes: at(2),
        tx_bytes: at(3),
        rx_errors: at(4),
        tx_errors: at(5),
        rx_dropped: at(6),
        tx_dropped: at(7),
    }
}

/// Reads the counters of an `RTM_NEWSTATS` payload.
pub(crate) fn stats_counters(payload: &[u8]) -> Option<Counters> {
    attributes(payload.get(IF_STATS_MSG_LEN..)?)
        .find(|&(kind, _)| kind == IFLA_STATS_LINK_64)
        .map(|(_, value)| counters64(value))
}

/// What a trace reads of a route answer, straight from the bytes: every
/// field a [`super::Route`] shows, and the member the lookup took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RouteFacts {
    pub ipv4: bool,
    pub dst_len: u8,
    /// `RTN_*`.
    pub kind: u8,
    pub protocol: u8,
    /// `RTM_F_*` and `RTNH_F_*` flags of the header.
    pub flags: u32,
    /// `RTA_TABLE`, else the header's 8-bit table.
    pub table: u32,
    pub destination: Option<IpAddr>,
    pub priority: Option<u32>,
    pub pref_source: Option<IpAddr>,
    /// `RTA_GATEWAY`, or `RTA_VIA` for an IPv4 route through an IPv6 next hop.
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    /// `RTA_MULTIPATH`: every member of a multipath route.
    pub next_hops: Option<Vec<NextHopFacts>>,
}

/// One `rtnexthop` of an `RTA_MULTIPATH` attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NextHopFacts {
    /// `RTNH_F_*`.
    pub flags: u8,
    /// The weight less one.
    pub hops: u8,
    pub ifindex: u32,
    pub gateway: Option<IpAddr>,
}

/// Reads an `RTM_NEWROUTE` payload.
pub(crate) fn route_facts(payload: &[u8]) -> Option<RouteFacts> {
    let header = payload.get(..RTMSG_LEN)?;
    let mut facts = RouteFacts {
        ipv4: header[0] == AF_INET,
        dst_len: header[1],
        table: u32::from(header[4]),
        protocol: header[5],
        kind: header[7],
        flags: u32_at(header, 8)?,
        ..RouteFacts::default()
    };
    for (kind, value) in attributes(&payload[RTMSG_LEN..]) {
        match kind {
            RTA_DST => facts.destination = ip_from_bytes(value),
            RTA_OIF => facts.oif = u32_at(value, 0),
            RTA_GATEWAY => facts.gateway = ip_from_bytes(value),
            RTA_VIA => facts.gateway = via(value),
            RTA_PRIORITY => facts.priority = u32_at(value, 0),
            RTA_PREFSRC => facts.pref_source = ip_from_bytes(value),
            RTA_TABLE => facts.table = u32_at(value, 0).unwrap_or(facts.table),
            RTA_MULTIPATH => facts.next_hops = Some(next_hops(value)),
            _ => {}
        }
    }
    Some(facts)
}

/// The members of an `RTA_MULTIPATH` value: `rtnexthop` headers (length,
/// flags, hops, ifindex), each followed by its own attributes.
fn next_hops(mut bytes: &[u8]) -> Vec<NextHopFacts> {
    const RTNEXTHOP_LEN: usize = 8;
    let mut hops = Vec::new();
    while bytes.len() >= RTNEXTHOP_LEN {
        let length = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
        if length < RTNEXTHOP_LEN || length > bytes.len() {
            break;
        }
        let mut hop = NextHopFacts {
            flags: bytes[2],
            hops: bytes[3],
            ifindex: u32_at(bytes, 4).unwrap_or(0),
            gateway: None,
        };
        for (kind, value) in attributes(&bytes[RTNEXTHOP_LEN..length]) {
            match kind {
                RTA_GATEWAY => hop.gateway = ip_from_bytes(value),
                RTA_VIA => hop.gateway = via(value),
                _ => {}
            }
        }
        hops.push(hop);
        bytes = bytes.get(align(length)..).unwrap_or(&[]);
    }
    hops
}

/// An `RTA_VIA` value: `struct rtvia`, a family and the address.
fn via(value: &[u8]) -> Option<IpAddr> {
    ip_from_bytes(value.get(2..)?)
}

/// What a trace reads of a neighbour answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NeighbourFacts<'a> {
    /// `NUD_*`.
    pub state: u16,
    /// `NTF_ROUTER` is set.
    pub router: bool,
    pub lladdr: Option<&'a [u8]>,
}

/// Reads an `RTM_NEWNEIGH` payload.
pub(crate) fn neighbour_facts(payload: &[u8]) -> Option<NeighbourFacts<'_>> {
    const NTF_ROUTER: u8 = 0x80;
    let header = payload.get(..NDMSG_LEN)?;
    let lladdr = attributes(&payload[NDMSG_LEN..])
        .find(|&(kind, _)| kind == NDA_LLADDR)
        .map(|(_, value)| value);
    Some(NeighbourFacts {
        state: u16::from_ne_bytes([header[8], header[9]]),
        router: header[10] & NTF_ROUTER != 0,
        lladdr,
    })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}
