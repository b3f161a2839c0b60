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
#[path = "owners_tests.rs"]
mod tests;
