//! Route, link and neighbour answers in the words `ip` uses: the kernel's
//! numbers (route types, tables, protocols, next-hop flags, states) named
//! as iproute2 names them.

use super::super::netlink::{self, RouteFacts};
use super::super::{
    Interface, Member, Neighbor, NeighborState, NextHopFlag, OperState, Route, RouteKind,
};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `address` is inside `prefix/length`.
pub(crate) fn prefix_contains(prefix: IpAddr, length: u8, address: IpAddr) -> bool {
    match (prefix, address) {
        (IpAddr::V4(p), IpAddr::V4(a)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(length.min(32)))
                .unwrap_or(0);
            u32::from(p) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(p), IpAddr::V6(a)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(length.min(128)))
                .unwrap_or(0);
            u128::from(p) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// A route answer as a [`Route`], interface names not yet filled in.
pub(super) fn decode_route(facts: &RouteFacts) -> Route {
    let destination = facts.destination.unwrap_or(if facts.ipv4 {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    });
    let forwards = matches!(
        facts.kind,
        netlink::RTN_UNICAST
            | netlink::RTN_LOCAL
            | netlink::RTN_BROADCAST
            | netlink::RTN_ANYCAST
            | netlink::RTN_MULTICAST
    );
    let members = match (forwards, &facts.next_hops) {
        (false, _) => Vec::new(),
        (true, Some(hops)) => hops.iter().map(decode_next_hop).collect(),
        (true, None) if facts.oif.is_some() || facts.gateway.is_some() => vec![Member {
            next_hop: facts.gateway,
            interface: None,
            ifindex: facts.oif.unwrap_or(0),
            weight: 1,
            flags: NextHopFlag::from_kernel(facts.flags),
        }],
        (true, None) => Vec::new(),
    };
    Route {
        prefix: format!("{destination}/{}", facts.dst_len),
        kind: RouteKind::from_kernel(facts.kind),
        table: facts.table,
        table_name: table_name(facts.table),
        protocol: protocol_name(facts.protocol),
        protocol_id: facts.protocol,
        metric: facts.priority.unwrap_or(0),
        preferred_source: facts.pref_source,
        members,
        chosen: None,
    }
}

fn decode_next_hop(hop: &netlink::NextHopFacts) -> Member {
    Member {
        next_hop: hop.gateway,
        interface: None,
        ifindex: hop.ifindex,
        // rtnh_hops is the weight less one.
        weight: u32::from(hop.hops) + 1,
        flags: NextHopFlag::from_kernel(u32::from(hop.flags)),
    }
}

/// Table names as iproute2's `rt_tables` ships them.
pub(crate) fn table_name(table: u32) -> String {
    match table {
        253 => "default".into(),
        254 => "main".into(),
        255 => "local".into(),
        other => other.to_string(),
    }
}

/// Route protocol names as iproute2's `rt_protos` ships them.
pub fn protocol_name(protocol: u8) -> String {
    match protocol {
        0 => "unspec",
        1 => "redirect",
        2 => "kernel",
        3 => "boot",
        4 => "static",
        8 => "gated",
        9 => "ra",
        10 => "mrt",
        11 => "zebra",
        12 => "bird",
        13 => "dnrouted",
        14 => "xorp",
        15 => "ntk",
        16 => "dhcp",
        17 => "mrouted",
        18 => "keepalived",
        42 => "babel",
        99 => "openr",
        186 => "bgp",
        187 => "isis",
        188 => "ospf",
        189 => "rip",
        192 => "eigrp",
        other => return other.to_string(),
    }
    .to_string()
}

/// A link answer as an [`Interface`], its speed still to be read.
pub(super) fn decode_link(link: &netlink::LinkFacts) -> Interface {
    Interface {
        name: link
            .name
            .clone()
            .unwrap_or_else(|| format!("ifindex {}", link.index)),
        ifindex: link.index,
        oper_state: OperState::from_kernel(link.operstate),
        admin_up: link.flags & netlink::IFF_UP != 0,
        carrier: link.flags & netlink::IFF_LOWER_UP != 0,
        mtu: link.mtu,
        speed_mbps: None,
        counters: link.counters,
    }
}

pub(super) fn decode_neighbour(
    entry: &netlink::NeighbourFacts<'_>,
    interface: &str,
    address: IpAddr,
) -> Neighbor {
    let lladdr = entry.lladdr.filter(|bytes| !bytes.is_empty()).map(|bytes| {
        let mut text = String::with_capacity(bytes.len() * 3);
        for (i, b) in bytes.iter().enumerate() {
            if i > 0 {
                text.push(':');
            }
            let _ = write!(text, "{b:02x}");
        }
        text
    });
    Neighbor {
        address,
        interface: interface.to_string(),
        lladdr,
        state: NeighborState::from_kernel(entry.state),
        router: entry.router,
    }
}
