//! The switch's own interface addresses, per VRF: heartbeats carry them and
//! the collector `hello` too, so the collector can map a next hop to the
//! switch that owns it.

use crate::event::{InterfaceAddress, VrfAddresses};

/// The addresses of this network namespace, as the `default` VRF.
pub fn vrf_addresses() -> Vec<VrfAddresses> {
    vec![VrfAddresses {
        vrf: "default".into(),
        addresses: interface_addresses(),
    }]
}

/// Every IPv4 and IPv6 address on this namespace's interfaces, except
/// loopback and link-local ones, which say nothing about topology.
pub fn interface_addresses() -> Vec<InterfaceAddress> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ifa in addrs {
        let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let ip: std::net::IpAddr = if let Some(v4) = addr.as_sockaddr_in() {
            v4.ip().into()
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            v6.ip().into()
        } else {
            continue;
        };
        let prefix = if let Some(m) = mask.as_sockaddr_in() {
            m.ip().to_bits().count_ones()
        } else if let Some(m) = mask.as_sockaddr_in6() {
            m.ip().to_bits().count_ones()
        } else {
            continue;
        };
        let link_local = match ip {
            std::net::IpAddr::V4(v4) => v4.is_link_local(),
            std::net::IpAddr::V6(v6) => v6.is_unicast_link_local(),
        };
        if ip.is_loopback() || link_local {
            continue;
        }
        out.push(InterfaceAddress {
            interface: ifa.interface_name,
            address: format!("{ip}/{prefix}"),
        });
    }
    out
}
