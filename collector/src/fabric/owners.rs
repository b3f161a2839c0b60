//! Who owns which address: the interface addresses each agent reports per
//! VRF in its `hello` and heartbeats, kept current as they change, so a
//! trace can map a next hop to the switch that holds it.
//!
//! Read on every hop of every trace and written only when an agent's
//! addresses change, so the index sits behind one `RwLock`: a read is one
//! hash lookup (an exact address) or one per prefix length in use (a
//! connected subnet), whatever the size of the fleet. A report equal to the
//! agent's last one, as nearly every heartbeat is, is recognised under the
//! read lock and changes nothing.
//!
//! What the answers mean, as an operator reads them:
//! - An agent's addresses stay after it disconnects: a trace through a
//!   switch whose agent is down must say that agent did not answer, not
//!   that nobody owns its address. They are loaded from the store at start,
//!   so a restarted collector knows the fleet before the agents reconnect.
//! - [`Directory::owner`] answers only when the answer is unambiguous: one
//!   agent reports the address in that VRF. An address several agents
//!   report (an anycast gateway, a VRRP address, a copy-paste mistake) has
//!   no single owner, and guessing would send the trace to the wrong switch.
//!   IPv6 link-local addresses are the common case: `fe80::1` is configured
//!   on many switches and means something only on its own link, so it is
//!   not a key alone. One reported by a single agent (most are derived from
//!   that switch's MAC address) is that agent's; a repeated one has no
//!   owner. When one agent holds the address on several interfaces (IPv4
//!   unnumbered puts the loopback's address on every port), the interface
//!   is the first it reported that is not a loopback, since flows do not
//!   arrive on a loopback.
//! - [`Directory::attached`] answers where a host with that address hangs:
//!   the agents with a connected subnet holding it, longest prefix first,
//!   one entry per agent (its longest match). An agent that holds the
//!   address itself is its owner, not a neighbour of it, and is left out.
//!   Link-local subnets are left out too: every link has one, so they would
//!   name the whole fleet.

use super::{Directory, Owner};
use crate::store::StoreError;
use crate::store::sql::Sql;
use hopwatch_wire::event::VrfAddresses;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, RwLock};

/// The fleet's addresses, shared by ingest (which updates it) and traces.
#[derive(Debug, Default)]
pub struct Owners {
    index: RwLock<Index>,
}

#[derive(Debug, Default)]
struct Index {
    /// Every agent that reported, with its report as sent (to tell an
    /// unchanged report at once) and as parsed (to take it out again).
    agents: BTreeMap<String, Reported>,
    vrfs: HashMap<String, Vrf>,
    /// How many connections each agent has to this collector now. Its own
    /// reports are the newest there are, so the store's copy (written
    /// after them, read by another collector's schedule) never replaces
    /// them while one is open.
    connected: HashMap<String, usize>,
}

#[derive(Debug)]
struct Reported {
    raw: Vec<VrfAddresses>,
    parsed: Vec<(String, Parsed)>,
}

/// One VRF's addresses: exact ones, and connected subnets by prefix length
/// and network address.
#[derive(Debug, Default)]
struct Vrf {
    exact: HashMap<IpAddr, Vec<Claim>>,
    subnets: HashMap<(u8, IpAddr), Vec<Claim>>,
    /// The prefix lengths of `subnets`, per family, with how many subnets
    /// use each: a lookup probes only these, longest first.
    lengths_v4: BTreeMap<u8, usize>,
    lengths_v6: BTreeMap<u8, usize>,
}

impl Vrf {
    fn lengths(&mut self, v4: bool) -> &mut BTreeMap<u8, usize> {
        if v4 {
            &mut self.lengths_v4
        } else {
            &mut self.lengths_v6
        }
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.subnets.is_empty()
    }
}

/// One address of one agent's interface.
#[derive(Debug, Clone)]
struct Claim {
    agent: Arc<str>,
    interface: Arc<str>,
    parsed: Parsed,
}

impl Claim {
    fn owner(&self, vrf: &str) -> Owner {
        Owner {
            agent: self.agent.to_string(),
            vrf: vrf.to_string(),
            interface: self.interface.to_string(),
            address: format!("{}/{}", self.parsed.address, self.parsed.prefix),
        }
    }
}

/// An `address/prefix-length` as read, with the subnet it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parsed {
    address: IpAddr,
    prefix: u8,
    network: IpAddr,
}

impl Parsed {
    /// Whether the subnet is worth indexing: a host prefix holds only the
    /// address itself, and a link-local subnet is on every link.
    fn is_subnet(&self) -> bool {
        self.prefix < max_prefix(self.address) && !is_link_local(self.address)
    }
}

/// Reads `10.0.0.1/31`, `2001:db8::1/64` or `fe80::1%swp1/64` (the zone is
/// the interface, known already); a bare address is a host prefix.
fn parse(text: &str) -> Result<Parsed, String> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address = address.split_once('%').map_or(address, |(a, _zone)| a);
    let address: IpAddr = address
        .trim()
        .parse()
        .map_err(|e| format!("{address:?} is not an IP address: {e}"))?;
    let max = max_prefix(address);
    let prefix = match prefix {
        None => max,
        Some(p) => match p.trim().parse::<u8>() {
            Ok(p) if p <= max => p,
            _ => return Err(format!("{p:?} is not a prefix length from 0 to {max}")),
        },
    };
    Ok(Parsed {
        address,
        prefix,
        network: network(address, prefix),
    })
}

fn max_prefix(address: IpAddr) -> u8 {
    if address.is_ipv4() { 32 } else { 128 }
}

/// `address` with every bit past `prefix` cleared.
fn network(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

/// `169.254.0.0/16` and `fe80::/10`: meaningful only on their own link.
pub fn is_link_local(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// Linux's `lo` and the NX-OS and Cumulus spellings of a loopback.
fn is_loopback(interface: &str) -> bool {
    let lower = interface.to_ascii_lowercase();
    let numbered = |rest: &str| rest.chars().all(|c| c.is_ascii_digit());
    lower.strip_prefix("loopback").is_some_and(numbered)
        || lower.strip_prefix("lo").is_some_and(numbered)
}

impl Owners {
    pub fn new() -> Owners {
        Owners::default()
    }

    /// Replaces `agent`'s addresses with `addresses`, as its hello or a
    /// heartbeat reports them. Addresses that cannot be read are skipped
    /// (with a debug line); the rest still count.
    pub fn update(&self, agent: &str, addresses: &[VrfAddresses]) {
        {
            let index = self.index.read().expect("owners index poisoned");
            if index
                .agents
                .get(agent)
                .is_some_and(|known| known.raw == addresses)
            {
                return;
            }
        }
        let parsed = parse_report(agent, addresses);
        let mut index = self.index.write().expect("owners index poisoned");
        index.remove(agent);
        index.insert(agent, addresses.to_vec(), parsed);
    }

    /// An agent connected here with the addresses of its hello.
    pub fn connected(&self, agent: &str, addresses: &[VrfAddresses]) {
        {
            let mut index = self.index.write().expect("owners index poisoned");
            *index.connected.entry(agent.to_string()).or_default() += 1;
        }
        self.update(agent, addresses);
    }

    /// One of `agent`'s connections here ended; its addresses stay.
    pub fn disconnected(&self, agent: &str) {
        let mut index = self.index.write().expect("owners index poisoned");
        if let Some(n) = index.connected.get_mut(agent) {
            *n -= 1;
            if *n == 0 {
                index.connected.remove(agent);
            }
        }
    }

    /// `agent`'s addresses as the shared store holds them, reported through
    /// another collector: taken unless the agent is connected here, whose
    /// own reports are newer.
    pub fn update_stored(&self, agent: &str, addresses: &[VrfAddresses]) {
        let parsed = parse_report(agent, addresses);
        let mut index = self.index.write().expect("owners index poisoned");
        if index.connected.contains_key(agent)
            || index
                .agents
                .get(agent)
                .is_some_and(|known| known.raw == addresses)
        {
            return;
        }
        index.remove(agent);
        index.insert(agent, addresses.to_vec(), parsed);
    }

    /// Loads every agent's last known addresses from the store, for a
    /// collector that starts before its agents reconnect. Returns how many
    /// agents it knows; a row whose addresses cannot be read is skipped
    /// with a warning.
    pub fn load(&self, db: &dyn Sql) -> Result<usize, StoreError> {
        let rows = db.rows("SELECT name, addresses FROM agents", &[], |r| {
            Ok((r.text(0)?, r.text(1)?))
        })?;
        let mut loaded = 0;
        for (agent, json) in rows {
            match serde_json::from_str::<Vec<VrfAddresses>>(&json) {
                Ok(addresses) => {
                    self.update(&agent, &addresses);
                    loaded += 1;
                }
                Err(error) => tracing::warn!(
                    agent,
                    %error,
                    "The stored addresses of this agent cannot be read; traces know them again at its next hello."
                ),
            }
        }
        Ok(loaded)
    }

    /// Every owner of `address` in `vrf`, however many: what
    /// [`Directory::owner`] declines to choose between.
    pub fn claims(&self, vrf: &str, address: IpAddr) -> Vec<Owner> {
        let index = self.index.read().expect("owners index poisoned");
        index
            .vrfs
            .get(vrf)
            .and_then(|v| v.exact.get(&address))
            .map(|claims| claims.iter().map(|c| c.owner(vrf)).collect())
            .unwrap_or_default()
    }
}

/// Parses one report, skipping what cannot be read.
fn parse_report(agent: &str, addresses: &[VrfAddresses]) -> Vec<(String, Parsed, Arc<str>)> {
    let mut parsed = Vec::new();
    for vrf in addresses {
        for entry in &vrf.addresses {
            match parse(&entry.address) {
                Ok(p) => parsed.push((vrf.vrf.clone(), p, Arc::from(entry.interface.as_str()))),
                Err(error) => tracing::debug!(
                    agent,
                    vrf = vrf.vrf,
                    interface = entry.interface,
                    %error,
                    "Skipping an address the agent reported."
                ),
            }
        }
    }
    parsed
}

impl Index {
    fn remove(&mut self, agent: &str) {
        let Some(old) = self.agents.remove(agent) else {
            return;
        };
        for (vrf_name, parsed) in old.parsed {
            let Some(vrf) = self.vrfs.get_mut(&vrf_name) else {
                continue;
            };
            if let Some(claims) = vrf.exact.get_mut(&parsed.address) {
                claims.retain(|c| &*c.agent != agent);
                if claims.is_empty() {
                    vrf.exact.remove(&parsed.address);
                }
            }
            if parsed.is_subnet() {
                let key = (parsed.prefix, parsed.network);
                if let Some(claims) = vrf.subnets.get_mut(&key) {
                    claims.retain(|c| &*c.agent != agent);
                    if claims.is_empty() {
                        vrf.subnets.remove(&key);
                    }
                }
                let lengths = vrf.lengths(parsed.address.is_ipv4());
                if let Some(n) = lengths.get_mut(&parsed.prefix) {
                    *n -= 1;
                    if *n == 0 {
                        lengths.remove(&parsed.prefix);
                    }
                }
            }
            if vrf.is_empty() {
                self.vrfs.remove(&vrf_name);
            }
        }
    }

    fn insert(
        &mut self,
        agent: &str,
        raw: Vec<VrfAddresses>,
        parsed: Vec<(String, Parsed, Arc<str>)>,
    ) {
        let name: Arc<str> = Arc::from(agent);
        let mut kept = Vec::with_capacity(parsed.len());
        for (vrf_name, p, interface) in parsed {
            let vrf = self.vrfs.entry(vrf_name.clone()).or_default();
            let claim = Claim {
                agent: Arc::clone(&name),
                interface,
                parsed: p,
            };
            if p.is_subnet() {
                vrf.subnets
                    .entry((p.prefix, p.network))
                    .or_default()
                    .push(claim.clone());
                *vrf.lengths(p.address.is_ipv4())
                    .entry(p.prefix)
                    .or_default() += 1;
            }
            vrf.exact.entry(p.address).or_default().push(claim);
            kept.push((vrf_name, p));
        }
        self.agents
            .insert(agent.to_string(), Reported { raw, parsed: kept });
    }
}

impl Directory for Owners {
    fn owner(&self, vrf: &str, address: IpAddr) -> Option<Owner> {
        let index = self.index.read().expect("owners index poisoned");
        let claims = index.vrfs.get(vrf)?.exact.get(&address)?;
        let first = claims.first()?;
        if claims.iter().any(|c| c.agent != first.agent) {
            return None;
        }
        let chosen = claims
            .iter()
            .find(|c| !is_loopback(&c.interface))
            .unwrap_or(first);
        Some(chosen.owner(vrf))
    }

    fn attached(&self, vrf: &str, address: IpAddr) -> Vec<Owner> {
        if is_link_local(address) {
            return Vec::new();
        }
        let index = self.index.read().expect("owners index poisoned");
        let Some(v) = index.vrfs.get(vrf) else {
            return Vec::new();
        };
        let owners: Vec<&str> = v
            .exact
            .get(&address)
            .map(|claims| claims.iter().map(|c| &*c.agent).collect())
            .unwrap_or_default();
        let lengths = if address.is_ipv4() {
            &v.lengths_v4
        } else {
            &v.lengths_v6
        };
        let mut found: Vec<Owner> = Vec::new();
        for &prefix in lengths.keys().rev() {
            let Some(claims) = v.subnets.get(&(prefix, network(address, prefix))) else {
                continue;
            };
            let mut here: Vec<&Claim> = claims
                .iter()
                .filter(|c| !owners.contains(&&*c.agent))
                .filter(|c| !found.iter().any(|f| *f.agent == *c.agent))
                .collect();
            here.sort_by(|a, b| a.agent.cmp(&b.agent));
            here.dedup_by(|a, b| a.agent == b.agent);
            found.extend(here.into_iter().map(|c| c.owner(vrf)));
        }
        found
    }

    fn agents(&self) -> Vec<String> {
        let index = self.index.read().expect("owners index poisoned");
        index.agents.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopwatch_wire::event::InterfaceAddress;

    fn report(vrf: &str, entries: &[(&str, &str)]) -> VrfAddresses {
        VrfAddresses {
            vrf: vrf.into(),
            addresses: entries
                .iter()
                .map(|(interface, address)| InterfaceAddress {
                    interface: (*interface).into(),
                    address: (*address).into(),
                })
                .collect(),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn owner(agent: &str, vrf: &str, interface: &str, address: &str) -> Owner {
        Owner {
            agent: agent.into(),
            vrf: vrf.into(),
            interface: interface.into(),
            address: address.into(),
        }
    }

    #[test]
    fn parses_addresses_with_and_without_a_prefix_and_refuses_the_rest() {
        let p = parse("10.1.2.3/24").unwrap();
        assert_eq!(
            (p.address, p.prefix, p.network),
            (ip("10.1.2.3"), 24, ip("10.1.2.0"))
        );
        let p = parse("2001:db8::1:2/64").unwrap();
        assert_eq!(p.network, ip("2001:db8::"));
        let p = parse("fe80::1%swp1/64").unwrap();
        assert_eq!((p.address, p.prefix), (ip("fe80::1"), 64));
        let p = parse("10.0.0.9").unwrap();
        assert_eq!((p.prefix, p.network), (32, ip("10.0.0.9")));
        assert_eq!(parse("0.0.0.0/0").unwrap().network, ip("0.0.0.0"));
        assert_eq!(parse("10.9.8.7/0").unwrap().network, ip("0.0.0.0"));
        assert_eq!(parse("::1/128").unwrap().network, ip("::1"));
        for bad in [
            "",
            "10.0.0.1/33",
            "::1/129",
            "10.0.0/24",
            "x/24",
            "10.0.0.1/",
            "10.0.0.1/-1",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_store_never_replaces_the_addresses_of_an_agent_connected_here() {
        let owners = Owners::new();
        let now = [report("default", &[("swp1", "10.1.0.1/31")])];
        let stored = [report("default", &[("swp1", "10.7.0.1/31")])];
        owners.connected("spine1", &now);
        owners.connected("spine1", &now);
        owners.update_stored("spine1", &[]);
        owners.update_stored("spine1", &stored);
        assert_eq!(
            owners.owner("default", ip("10.1.0.1")).map(|o| o.agent),
            Some("spine1".into())
        );
        // Two connections (a reconnect overlapping the old one): both must end.
        owners.disconnected("spine1");
        owners.update_stored("spine1", &stored);
        assert!(owners.owner("default", ip("10.7.0.1")).is_none());
        owners.disconnected("spine1");
        assert!(
            owners.owner("default", ip("10.1.0.1")).is_some(),
            "addresses stay after a disconnect"
        );
        owners.update_stored("spine1", &stored);
        assert_eq!(
            owners.owner("default", ip("10.7.0.1")).map(|o| o.agent),
            Some("spine1".into())
        );
        assert!(owners.owner("default", ip("10.1.0.1")).is_none());
    }

    #[test]
    fn owner_is_the_one_agent_with_the_address_in_that_vrf() {
        let owners = Owners::new();
        owners.update(
            "leaf1",
            &[
                report("default", &[("swp1", "10.1.0.1/31"), ("lo", "10.0.0.1/32")]),
                report("blue", &[("swp9", "10.1.0.1/31")]),
            ],
        );
        owners.update("spine1", &[report("default", &[("swp1", "10.1.0.0/31")])]);
        assert_eq!(
            owners.owner("default", ip("10.1.0.1")),
            Some(owner("leaf1", "default", "swp1", "10.1.0.1/31"))
        );
        assert_eq!(
            owners.owner("blue", ip("10.1.0.1")),
            Some(owner("leaf1", "blue", "swp9", "10.1.0.1/31"))
        );
        assert_eq!(
            owners.owner("default", ip("10.1.0.0")),
            Some(owner("spine1", "default", "swp1", "10.1.0.0/31"))
        );
        assert_eq!(owners.owner("default", ip("10.1.0.2")), None);
        assert_eq!(owners.owner("red", ip("10.1.0.1")), None);
        assert_eq!(owners.agents(), vec!["leaf1".to_string(), "spine1".into()]);
    }

    #[test]
    fn a_new_report_replaces_the_old_one_whole() {
        let owners = Owners::new();
        owners.update("leaf1", &[report("default", &[("swp1", "10.1.0.1/31")])]);
        owners.update("leaf1", &[report("default", &[("swp1", "10.7.0.1/31")])]);
        assert_eq!(owners.owner("default", ip("10.1.0.1")), None);
        assert_eq!(owners.attached("default", ip("10.1.0.0")), vec![]);
        assert_eq!(
            owners.owner("default", ip("10.7.0.1")).map(|o| o.agent),
            Some("leaf1".into())
        );
        assert_eq!(owners.attached("default", ip("10.7.0.0")).len(), 1);
        // No addresses left: still a known agent, owning nothing.
        owners.update("leaf1", &[]);
        assert_eq!(owners.owner("default", ip("10.7.0.1")), None);
        assert_eq!(owners.agents(), vec!["leaf1".to_string()]);
        let index = owners.index.read().unwrap();
        assert!(index.vrfs.is_empty(), "{:?}", index.vrfs);
    }

    #[test]
    fn an_address_several_agents_hold_has_no_single_owner() {
        let owners = Owners::new();
        // The same link-local address on both spines, and an anycast
        // gateway on both leaves; one link-local address only one has.
        owners.update(
            "spine1",
            &[report(
                "default",
                &[
                    ("swp1", "fe80::1/64"),
                    ("swp2", "fe80::a8c1:abff:fe01:1/64"),
                ],
            )],
        );
        owners.update("spine2", &[report("default", &[("swp1", "fe80::1/64")])]);
        owners.update("leaf1", &[report("default", &[("vlan10", "10.10.0.1/24")])]);
        owners.update("leaf2", &[report("default", &[("vlan10", "10.10.0.1/24")])]);
        assert_eq!(owners.owner("default", ip("fe80::1")), None);
        assert_eq!(owners.claims("default", ip("fe80::1")).len(), 2);
        assert_eq!(owners.owner("default", ip("10.10.0.1")), None);
        assert_eq!(
            owners.owner("default", ip("fe80::a8c1:abff:fe01:1")),
            Some(owner(
                "spine1",
                "default",
                "swp2",
                "fe80::a8c1:abff:fe01:1/64"
            ))
        );
        // Once spine2 drops it, spine1 alone holds it.
        owners.update("spine2", &[]);
        assert_eq!(
            owners.owner("default", ip("fe80::1")).map(|o| o.agent),
            Some("spine1".into())
        );
    }

    #[test]
    fn one_agent_with_the_address_on_several_interfaces_names_the_first_that_is_not_a_loopback() {
        let owners = Owners::new();
        owners.update(
            "leaf1",
            &[report(
                "default",
                &[
                    ("lo", "10.0.0.1/32"),
                    ("swp1", "10.0.0.1/32"),
                    ("swp2", "10.0.0.1/32"),
                ],
            )],
        );
        assert_eq!(
            owners.owner("default", ip("10.0.0.1")),
            Some(owner("leaf1", "default", "swp1", "10.0.0.1/32"))
        );
        owners.update(
            "spine1",
            &[report("default", &[("loopback0", "10.0.0.9/32")])],
        );
        assert_eq!(
            owners.owner("default", ip("10.0.0.9")).map(|o| o.interface),
            Some("loopback0".into())
        );
        assert!(is_loopback("lo") && is_loopback("Loopback0") && is_loopback("lo7"));
        assert!(!is_loopback("long-haul") && !is_loopback("swp1"));
    }

    #[test]
    fn attached_lists_the_connected_subnets_longest_first_without_the_owner() {
        let owners = Owners::new();
        owners.update(
            "leaf1",
            &[report(
                "default",
                &[
                    ("vlan10", "10.10.0.1/24"),
                    ("swp1", "10.1.0.1/31"),
                    ("eth0", "10.0.0.0/8"),
                ],
            )],
        );
        owners.update("leaf2", &[report("default", &[("vlan10", "10.10.0.2/24")])]);
        owners.update("spine1", &[report("default", &[("swp1", "10.1.0.0/31")])]);
        owners.update("mgmt", &[report("default", &[("eth0", "10.10.0.0/16")])]);
        let agents = |list: Vec<Owner>| list.into_iter().map(|o| o.agent).collect::<Vec<_>>();
        // A host on the leaves' VLAN: both leaves (/24, by name), then the
        // /16; leaf1's /8 is shorter than its /24, so it is not repeated.
        assert_eq!(
            agents(owners.attached("default", ip("10.10.0.50"))),
            ["leaf1", "leaf2", "mgmt"]
        );
        assert_eq!(
            owners.attached("default", ip("10.10.0.50"))[0],
            owner("leaf1", "default", "vlan10", "10.10.0.1/24")
        );
        // The address of leaf1 on the /31: leaf1 owns it, spine1 is the
        // neighbour.
        assert_eq!(
            agents(owners.attached("default", ip("10.1.0.1"))),
            ["spine1"]
        );
        assert_eq!(
            agents(owners.attached("default", ip("10.200.0.1"))),
            ["leaf1"]
        );
        assert!(owners.attached("default", ip("192.0.2.1")).is_empty());
        assert!(owners.attached("default", ip("2001:db8::1")).is_empty());
        assert!(owners.attached("blue", ip("10.10.0.50")).is_empty());
    }

    #[test]
    fn link_local_subnets_and_host_prefixes_attach_nothing() {
        let owners = Owners::new();
        owners.update(
            "leaf1",
            &[report(
                "default",
                &[
                    ("swp1", "fe80::1/64"),
                    ("swp2", "169.254.0.1/16"),
                    ("lo", "10.0.0.1/32"),
                    ("swp3", "2001:db8:1::1/64"),
                ],
            )],
        );
        assert!(owners.attached("default", ip("fe80::2")).is_empty());
        assert!(owners.attached("default", ip("169.254.9.9")).is_empty());
        assert!(owners.attached("default", ip("10.0.0.1")).is_empty());
        assert_eq!(
            owners.attached("default", ip("2001:db8:1::99")),
            vec![owner("leaf1", "default", "swp3", "2001:db8:1::1/64")]
        );
    }

    #[test]
    fn unreadable_addresses_are_skipped_and_the_rest_kept() {
        let owners = Owners::new();
        owners.update(
            "leaf1",
            &[report(
                "default",
                &[
                    ("swp1", "10.1.0.1/40"),
                    ("swp2", "bogus"),
                    ("swp3", "10.3.0.1/24"),
                ],
            )],
        );
        assert_eq!(owners.owner("default", ip("10.1.0.1")), None);
        assert_eq!(
            owners.owner("default", ip("10.3.0.1")).map(|o| o.interface),
            Some("swp3".into())
        );
    }

    #[test]
    fn loads_what_the_store_holds() {
        let fill = |db: &dyn Sql| {
            db.execute(
                "INSERT INTO agents (name, addresses) VALUES
                    ('leaf1', '[{\"vrf\":\"default\",\"addresses\":[{\"interface\":\"swp1\",\"address\":\"10.1.0.1/31\"}]}]'),
                    ('leaf2', '[]'),
                    ('broken', 'not json')",
                &[],
            )?;
            Ok(())
        };
        let ask = |reads: &std::sync::Arc<crate::store::Reads>| {
            let owners = Owners::new();
            assert_eq!(reads.with(|db| owners.load(db)).unwrap(), 2);
            assert_eq!(owners.agents(), vec!["leaf1".to_string(), "leaf2".into()]);
            assert_eq!(
                owners.owner("default", ip("10.1.0.1")).map(|o| o.agent),
                Some("leaf1".into())
            );
        };
        crate::store::reads::fixture::on_both("owners_load", fill, ask);
    }

    /// The index against a plain scan of every report, over random fleets
    /// that renumber as they go.
    #[test]
    fn agrees_with_a_scan_of_every_report() {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let owners = Owners::new();
        let mut reports: BTreeMap<String, Vec<VrfAddresses>> = BTreeMap::new();
        for _ in 0..400 {
            let agent = format!("a{}", next(12));
            let vrfs = ["default", "blue"];
            let mut report = Vec::new();
            for vrf in vrfs.iter().take(1 + next(2) as usize) {
                let entries: Vec<InterfaceAddress> = (0..next(6))
                    .map(|i| InterfaceAddress {
                        interface: format!("swp{}", next(3) + i),
                        address: format!(
                            "10.{}.{}.{}/{}",
                            next(2),
                            next(3),
                            next(8),
                            [8, 16, 24, 30, 31, 32][next(6) as usize]
                        ),
                    })
                    .collect();
                report.push(VrfAddresses {
                    vrf: (*vrf).into(),
                    addresses: entries,
                });
            }
            owners.update(&agent, &report);
            reports.insert(agent, report);
            for _ in 0..8 {
                let vrf = ["default", "blue"][next(2) as usize];
                let probe = ip(&format!("10.{}.{}.{}", next(2), next(3), next(8)));
                let mut holders = Vec::new();
                let mut subnets: Vec<(u8, String, Owner)> = Vec::new();
                for (agent, report) in &reports {
                    for v in report.iter().filter(|v| v.vrf == vrf) {
                        for e in &v.addresses {
                            let p = parse(&e.address).unwrap();
                            let o = owner(
                                agent,
                                vrf,
                                &e.interface,
                                &format!("{}/{}", p.address, p.prefix),
                            );
                            if p.address == probe {
                                holders.push(o.clone());
                            }
                            if p.is_subnet() && network(probe, p.prefix) == p.network {
                                subnets.push((p.prefix, agent.clone(), o));
                            }
                        }
                    }
                }
                let single = holders.iter().all(|h| h.agent == holders[0].agent);
                let expected = (!holders.is_empty() && single).then(|| {
                    holders
                        .iter()
                        .find(|h| !is_loopback(&h.interface))
                        .unwrap_or(&holders[0])
                        .clone()
                });
                assert_eq!(owners.owner(vrf, probe), expected, "{vrf} {probe}");
                subnets.retain(|(_, a, _)| !holders.iter().any(|h| h.agent == *a));
                subnets.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                let mut seen = Vec::new();
                let expected: Vec<String> = subnets
                    .into_iter()
                    .filter(|(_, a, _)| {
                        let fresh = !seen.contains(a);
                        seen.push(a.clone());
                        fresh
                    })
                    .map(|(_, a, _)| a)
                    .collect();
                let got: Vec<String> = owners
                    .attached(vrf, probe)
                    .into_iter()
                    .map(|o| o.agent)
                    .collect();
                assert_eq!(got, expected, "{vrf} {probe}");
            }
        }
    }
}
