//! NX-OS's answers as a trace reads them: the text of `show routing hash`
//! and the JSON of `show ip route` and `show interface`, whose rows are an
//! object for one and a list for several, and whose numbers may be strings.

use super::super::{Counters, Interface, LoadShare, Member, OperState, Route, RouteKind};
use crate::nxapi::{Rows, Text, number, nxos_name};
use serde::Deserialize;

/// What `show routing hash` says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Hash {
    pub load_share_mode: Option<String>,
    /// The path as NX-OS printed it: an address, `Null0`, `sup-eth1`, or
    /// the destination itself when it is directly attached.
    pub next_hop: Option<String>,
    pub out_if: Option<String>,
    /// The interface of the via line for the chosen path, for replies
    /// without an `Out Interface` line.
    pub via_if: Option<String>,
}

impl Hash {
    pub(super) fn load_share(&self) -> Option<LoadShare> {
        self.load_share_mode.as_ref().map(|mode| LoadShare {
            setting: "ip load-sharing".into(),
            policy: u32::from(mode.contains("port")),
            mode: mode.clone(),
        })
    }

    pub(super) fn egress(&self) -> Option<String> {
        self.out_if.clone().or_else(|| self.via_if.clone())
    }
}

/// Reads the text of `show routing hash`:
///
/// ```text
/// Load-share parameters used for software forwarding:
/// load-share mode: address source-destination port source-destination
/// Hash for VRF "default"
/// Hashing to path *10.0.0.5 (hash: 0x0e), for route:
/// 10.1.0.0/16, ubest/mbest: 2/0
///     *via 10.0.0.1, Eth1/49, [110/41], 1d02h, ospf-1, intra
///     *via 10.0.0.5, Eth1/50, [110/41], 1d02h, ospf-1, intra
/// Out Interface: Eth1/50
/// ```
pub fn parse_hash(text: &str) -> Hash {
    let mut hash = Hash::default();
    let mut vias: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(mode) = line.strip_prefix("load-share mode:") {
            hash.load_share_mode = Some(mode.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("Hashing to path") {
            hash.next_hop = rest.split_whitespace().next().map(|path| {
                path.trim_start_matches('*')
                    .trim_end_matches(',')
                    .to_string()
            });
        } else if let Some(out) = line.strip_prefix("Out Interface:") {
            let out = out.split(',').next().unwrap_or("").trim();
            if !out.is_empty() {
                hash.out_if = Some(out.to_string());
            }
        } else if let Some(via) = line
            .strip_prefix("*via")
            .or_else(|| line.strip_prefix("via"))
        {
            let mut parts = via.split(',').map(str::trim);
            if let (Some(address), Some(interface)) = (parts.next(), parts.next())
                && !interface.starts_with('[')
            {
                vias.push((address.to_string(), interface.to_string()));
            }
        }
    }
    if let Some(hop) = &hash.next_hop {
        hash.via_if = vias
            .into_iter()
            .find(|(address, _)| address == hop)
            .map(|(_, interface)| interface);
    }
    hash
}

/// `show ip route` / `show ipv6 route`, as JSON.
#[derive(Debug, Deserialize)]
pub(super) struct ShowRoute {
    #[serde(rename = "TABLE_vrf", default)]
    vrfs: Option<VrfTable>,
}

#[derive(Debug, Deserialize)]
struct VrfTable {
    #[serde(rename = "ROW_vrf", default)]
    rows: Rows<VrfRow>,
}

#[derive(Debug, Deserialize)]
struct VrfRow {
    #[serde(rename = "TABLE_addrf", default)]
    families: Option<FamilyTable>,
}

#[derive(Debug, Deserialize)]
struct FamilyTable {
    #[serde(rename = "ROW_addrf", default)]
    rows: Rows<FamilyRow>,
}

#[derive(Debug, Deserialize)]
struct FamilyRow {
    #[serde(rename = "TABLE_prefix", default)]
    prefixes: Option<PrefixTable>,
}

#[derive(Debug, Deserialize)]
struct PrefixTable {
    #[serde(rename = "ROW_prefix", default)]
    rows: Rows<PrefixRow>,
}

#[derive(Debug, Deserialize)]
struct PrefixRow {
    ipprefix: Option<String>,
    ipv6prefix: Option<String>,
    #[serde(rename = "TABLE_path", default)]
    paths: Option<PathTable>,
}

#[derive(Debug, Deserialize)]
struct PathTable {
    #[serde(rename = "ROW_path", default)]
    rows: Rows<PathRow>,
}

#[derive(Debug, Deserialize)]
struct PathRow {
    ipnexthop: Option<String>,
    ipv6nexthop: Option<String>,
    ifname: Option<String>,
    #[serde(default)]
    ubest: Option<Text>,
    clientname: Option<String>,
    #[serde(default, deserialize_with = "number")]
    metric: Option<u64>,
    #[serde(default, deserialize_with = "number")]
    pref: Option<u64>,
}

impl ShowRoute {
    /// The first prefix of the answer with its best (`ubest`) paths.
    pub(super) fn into_route(self, vrf: &str) -> Option<Route> {
        let prefix = self
            .vrfs?
            .rows
            .0
            .into_iter()
            .filter_map(|v| v.families)
            .flat_map(|f| f.rows.0)
            .filter_map(|f| f.prefixes)
            .flat_map(|p| p.rows.0)
            .next()?;
        let name = prefix.ipprefix.or(prefix.ipv6prefix)?;
        let paths: Vec<PathRow> = prefix.paths.map(|p| p.rows.0).unwrap_or_default();
        let best: Vec<&PathRow> = {
            let best: Vec<&PathRow> = paths
                .iter()
                .filter(|p| p.ubest.as_ref().is_some_and(|u| u.0 == "true"))
                .collect();
            if best.is_empty() {
                paths.iter().collect()
            } else {
                best
            }
        };
        let first = best.first();
        let client = first
            .and_then(|p| p.clientname.clone())
            .unwrap_or_else(|| "unknown".into());
        let local = matches!(client.as_str(), "local" | "hsrp" | "vrrp");
        let members = if local {
            Vec::new()
        } else {
            best.iter()
                .map(|p| Member {
                    next_hop: p
                        .ipnexthop
                        .as_deref()
                        .or(p.ipv6nexthop.as_deref())
                        .and_then(|h| h.parse().ok())
                        // `direct` routes name the switch's own address.
                        .filter(|_| !matches!(p.clientname.as_deref(), Some("direct"))),
                    interface: p.ifname.as_deref().map(nxos_name),
                    ifindex: 0,
                    weight: 1,
                    flags: Vec::new(),
                })
                .collect()
        };
        Some(Route {
            prefix: name,
            kind: if local {
                RouteKind::Local
            } else {
                RouteKind::Unicast
            },
            table: 0,
            table_name: vrf.to_string(),
            protocol: client,
            protocol_id: 0,
            metric: first.and_then(|p| p.metric).unwrap_or(0) as u32,
            preferred_source: None,
            members,
            chosen: None,
        })
        .map(|mut route| {
            if let Some(pref) = first.and_then(|p| p.pref) {
                route.protocol = format!("{} (preference {pref})", route.protocol);
            }
            route
        })
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ShowInterface {
    #[serde(rename = "TABLE_interface", default)]
    pub(super) table: InterfaceTable,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct InterfaceTable {
    #[serde(rename = "ROW_interface", default)]
    pub(super) rows: Rows<InterfaceRow>,
}

#[derive(Debug, Deserialize)]
pub(super) struct InterfaceRow {
    interface: String,
    state: Option<String>,
    admin_state: Option<String>,
    svi_line_proto: Option<String>,
    svi_admin_state: Option<String>,
    #[serde(default, deserialize_with = "number")]
    eth_mtu: Option<u64>,
    #[serde(default, deserialize_with = "number")]
    svi_mtu: Option<u64>,
    #[serde(default, deserialize_with = "number")]
    eth_bw: Option<u64>,
    #[serde(default, deserialize_with = "number")]
    svi_bw: Option<u64>,
    #[serde(default, deserialize_with = "number")]
    eth_inbytes: Option<u64>,
    #[serde(default, deserialize_with = "number")]
    eth_inpkts: Option<u64>,
    #[serde(default, deserialize_with = "number")]
    eth_inerr: Option<u64>,
    #[serde(default, deserialize_with = "number")]
    eth_indiscard: Option<u64>,
    #[serde(default, deserialize_with = "number")]
    eth_outbytes: Option<u64>,
    #[serde(default, deserialize_with = "number")]
    eth_outpkts: Option<u64>,
    #[serde(default, deserialize_with = "number")]
    eth_outerr: Option<u64>,
    #[serde(default, deserialize_with = "number")]
    eth_outdiscard: Option<u64>,
}

impl InterfaceRow {
    pub(super) fn into_interface(self) -> Interface {
        let up = |s: &Option<String>| {
            s.as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("up") || s.ends_with("-up"))
        };
        let (oper, admin) = if self.state.is_some() {
            (&self.state, &self.admin_state)
        } else {
            (&self.svi_line_proto, &self.svi_admin_state)
        };
        let carrier = up(oper);
        let admin_up = if admin.is_some() { up(admin) } else { carrier };
        let counters = self.eth_inbytes.map(|rx_bytes| Counters {
            rx_bytes,
            rx_packets: self.eth_inpkts.unwrap_or(0),
            rx_errors: self.eth_inerr.unwrap_or(0),
            rx_dropped: self.eth_indiscard.unwrap_or(0),
            tx_bytes: self.eth_outbytes.unwrap_or(0),
            tx_packets: self.eth_outpkts.unwrap_or(0),
            tx_errors: self.eth_outerr.unwrap_or(0),
            tx_dropped: self.eth_outdiscard.unwrap_or(0),
        });
        Interface {
            name: self.interface,
            ifindex: 0,
            oper_state: oper
                .as_deref()
                .map_or(OperState::Unknown, OperState::from_word),
            admin_up,
            carrier,
            mtu: self.eth_mtu.or(self.svi_mtu).map(|m| m as u32),
            speed_mbps: self
                .eth_bw
                .or(self.svi_bw)
                .map(|k| k / 1000)
                .filter(|&m| m > 0),
            counters,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECMP: &str = "Load-share parameters used for software forwarding:
load-share mode: address source-destination port source-destination
Universal-id seed: 0xe05e2e85
Hash for VRF \"default\"
Hashing to path *10.0.0.5 (hash: 0x0e), for route:
10.1.0.0/16, ubest/mbest: 2/0
    *via 10.0.0.1, Eth1/49, [110/41], 1d02h, ospf-1, intra
    *via 10.0.0.5, Eth1/50, [110/41], 1d02h, ospf-1, intra

Out Interface: Eth1/50
";

    #[test]
    fn reads_the_hash_answer() {
        let hash = parse_hash(ECMP);
        assert_eq!(
            hash.load_share_mode.as_deref(),
            Some("address source-destination port source-destination")
        );
        assert_eq!(hash.next_hop.as_deref(), Some("10.0.0.5"));
        assert_eq!(hash.out_if.as_deref(), Some("Eth1/50"));
        assert_eq!(hash.via_if.as_deref(), Some("Eth1/50"));
        let without_out = parse_hash(&ECMP.replace("Out Interface: Eth1/50", ""));
        assert_eq!(without_out.out_if, None);
        assert_eq!(without_out.egress().as_deref(), Some("Eth1/50"));
    }

    #[test]
    fn reads_a_route_with_one_path_written_as_an_object() {
        let answer: ShowRoute = serde_json::from_str(
            r#"{"TABLE_vrf": {"ROW_vrf": {"vrf-name-out": "default", "TABLE_addrf": {"ROW_addrf": {
                "addrf": "ipv4", "TABLE_prefix": {"ROW_prefix": {"ipprefix": "10.2.0.0/24",
                "ucast-nhops": "1", "attached": "false", "TABLE_path": {"ROW_path": {
                "ipnexthop": "10.0.0.9", "ifname": "Eth1/3", "pref": 1, "metric": "0",
                "clientname": "static", "ubest": "true"}}}}}}}}}"#,
        )
        .unwrap();
        let route = answer.into_route("default").unwrap();
        assert_eq!(route.prefix, "10.2.0.0/24");
        assert_eq!(route.members.len(), 1);
        assert_eq!(route.members[0].interface.as_deref(), Some("Ethernet1/3"));
        assert_eq!(route.protocol, "static (preference 1)");
        let none: ShowRoute =
            serde_json::from_str(r#"{"TABLE_vrf": {"ROW_vrf": {"vrf-name-out": "default"}}}"#)
                .unwrap();
        assert!(none.into_route("default").is_none());
    }
}
