//! The leaf–spine fabric the fabric-trace tests run on: two hosts, two
//! leaves with ECMP toward two spines under the L4 hash, a router no agent
//! runs on, and the quirks each test traces into (a blackhole, a loop, a
//! more specific return route), in IPv4 and IPv6. Every switch namespace
//! also has a management link into the collector's namespace, as NX-OS
//! keeps its management VRF apart.

use crate::lab::{addr, enable_ipv6, veth};
use crate::util::{Netns, unique};
use std::net::IpAddr;

/// The switches, each running an agent of that name.
pub const SWITCHES: [&str; 4] = ["leaf1", "leaf2", "spine1", "spine2"];
pub const LEAVES: [&str; 2] = ["leaf1", "leaf2"];
pub const SPINES: [&str; 2] = ["spine1", "spine2"];

/// Host addresses. `H1_ASYM` is a second address of h1 whose return route
/// on leaf2 is pinned to spine2; `H2_DARK` is an address of h2 that spine1
/// blackholes.
pub const H1: [&str; 2] = ["10.201.1.2", "2001:db8:201:1::2"];
pub const H2: [&str; 2] = ["10.201.2.2", "2001:db8:201:2::2"];
pub const H1_ASYM: [&str; 2] = ["10.201.1.3", "2001:db8:201:1::3"];
pub const H2_DARK: [&str; 2] = ["10.201.2.200", "2001:db8:201:2:ff::2"];
/// What spine1 blackholes: `H2_DARK`'s prefix.
pub const DARK: [&str; 2] = ["10.201.2.192/26", "2001:db8:201:2:ff::/80"];
/// Behind the router that runs no agent, reached through leaf2.
pub const BEYOND_ROUTER: [&str; 2] = ["10.230.0.9", "2001:db8:230::9"];
const ROUTER_NET: [&str; 2] = ["10.230.0.0/24", "2001:db8:230::/64"];
/// Routed from leaf2 back up to spine1, and from every spine down to leaf2.
pub const LOOPING: [&str; 2] = ["10.240.0.9", "2001:db8:240::9"];
const LOOPING_NET: [&str; 2] = ["10.240.0.0/24", "2001:db8:240::/64"];

/// Each link: its two ends and the IPv4 /24 and IPv6 /64 between them;
/// the first end has `.1`/`::1`, the second `.2`/`::2`.
const LINKS: [(&str, &str, &str, &str); 7] = [
    ("leaf1", "h1", "10.201.1", "2001:db8:201:1"),
    ("leaf2", "h2", "10.201.2", "2001:db8:201:2"),
    ("leaf1", "spine1", "10.210.11", "2001:db8:210:11"),
    ("leaf1", "spine2", "10.210.12", "2001:db8:210:12"),
    ("leaf2", "spine1", "10.210.21", "2001:db8:210:21"),
    ("leaf2", "spine2", "10.210.22", "2001:db8:210:22"),
    ("leaf2", "rtr", "10.220.0", "2001:db8:220:0"),
];

/// One end of a link.
#[derive(Debug, Clone)]
pub struct Port {
    pub node: &'static str,
    pub dev: String,
    /// IPv4 then IPv6.
    pub addrs: [IpAddr; 2],
}

#[derive(Debug, Clone)]
pub struct Link {
    pub a: Port,
    pub b: Port,
    pub prefixes: [String; 2],
}

/// A switch's management link: `dev` with `addr` in the switch, its peer
/// `mgmt_addr` in the collector's namespace.
#[derive(Debug, Clone)]
pub struct Mgmt {
    pub switch: &'static str,
    pub dev: String,
    pub addr: String,
    pub mgmt_addr: String,
}

pub struct Node {
    pub name: &'static str,
    pub ns: Netns,
}

/// The namespaces and how they are wired; no processes.
pub struct LeafSpine {
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    /// The collector's namespace.
    pub mgmt: Netns,
    pub mgmt_links: Vec<Mgmt>,
}

/// 0 for IPv4, 1 for IPv6: the index into the address pairs above.
pub fn family(v6: bool) -> usize {
    usize::from(v6)
}

/// Two characters per node (`l1`, `s2`, `h1`, `r`), for interface names
/// that must fit in 15 with a unique suffix.
fn short(node: &str) -> String {
    match node {
        "rtr" => "r".into(),
        other => format!("{}{}", &other[..1], &other[other.len() - 1..]),
    }
}

impl LeafSpine {
    pub fn new() -> LeafSpine {
        let names = ["h1", "h2", "leaf1", "leaf2", "spine1", "spine2", "rtr"];
        let nodes: Vec<Node> = names
            .iter()
            .map(|&name| {
                let ns = Netns::new(&format!("hwf{}", short(name)));
                enable_ipv6(&ns);
                Node { name, ns }
            })
            .collect();
        let mgmt = Netns::new("hwfm");
        let mut lab = LeafSpine {
            nodes,
            links: Vec::new(),
            mgmt,
            mgmt_links: Vec::new(),
        };
        for node in &lab.nodes {
            let ns = &node.ns;
            // Loose at most: the asymmetric return route is the point of
            // one test, and a strict filter would drop it.
            ns.sysctl("net.ipv4.conf.all.rp_filter", "0");
            ns.sysctl("net.ipv4.conf.default.rp_filter", "0");
            if node.name.starts_with('h') {
                // Without automatic flow labels the host's IPv6 datagrams
                // carry no hash of their own, so the leaves hash their
                // 5-tuple as `ip route get` does (see `EcmpLab::new`).
                ns.sysctl("net.ipv6.auto_flowlabels", "0");
            } else {
                ns.sysctl("net.ipv4.ip_forward", "1");
                ns.sysctl("net.ipv6.conf.all.forwarding", "1");
                ns.sysctl("net.ipv4.fib_multipath_hash_policy", "1");
                ns.sysctl("net.ipv6.fib_multipath_hash_policy", "1");
            }
        }
        for (a, b, net4, net6) in LINKS {
            lab.link(a, b, net4, net6);
        }
        for (i, switch) in SWITCHES.into_iter().enumerate() {
            lab.management(switch, i);
        }
        lab.extra_addresses();
        lab.routes();
        lab.resolve_neighbours();
        lab
    }

    pub fn ns(&self, node: &str) -> &Netns {
        &self
            .nodes
            .iter()
            .find(|n| n.name == node)
            .unwrap_or_else(|| panic!("no node {node} in the lab"))
            .ns
    }

    /// The port of `node` on its link to `peer`.
    pub fn port(&self, node: &str, peer: &str) -> &Port {
        self.links
            .iter()
            .find_map(|l| {
                if l.a.node == node && l.b.node == peer {
                    Some(&l.a)
                } else if l.b.node == node && l.a.node == peer {
                    Some(&l.b)
                } else {
                    None
                }
            })
            .unwrap_or_else(|| panic!("no link between {node} and {peer}"))
    }

    /// The interface of `node` toward `peer`.
    pub fn dev(&self, node: &str, peer: &str) -> &str {
        &self.port(node, peer).dev
    }

    /// The address of `node` on its link to `peer`.
    pub fn addr(&self, node: &str, peer: &str, v6: bool) -> IpAddr {
        self.port(node, peer).addrs[family(v6)]
    }

    /// The subnet of the link between `a` and `b`.
    pub fn prefix(&self, a: &str, b: &str, v6: bool) -> String {
        self.links
            .iter()
            .find(|l| (l.a.node, l.b.node) == (a, b) || (l.a.node, l.b.node) == (b, a))
            .unwrap_or_else(|| panic!("no link between {a} and {b}"))
            .prefixes[family(v6)]
        .clone()
    }

    /// The node at the far end of `node`'s interface `dev`.
    pub fn peer_of(&self, node: &str, dev: &str) -> Option<&'static str> {
        self.links.iter().find_map(|l| {
            if l.a.node == node && l.a.dev == dev {
                Some(l.b.node)
            } else if l.b.node == node && l.b.dev == dev {
                Some(l.a.node)
            } else {
                None
            }
        })
    }

    fn link(&mut self, a: &'static str, b: &'static str, net4: &str, net6: &str) {
        let a_dev = unique(&short(a).chars().chain(short(b).chars()).collect::<String>());
        let b_dev = unique(&short(b).chars().chain(short(a).chars()).collect::<String>());
        veth(self.ns(a), &a_dev, self.ns(b), &b_dev);
        let port = |node, dev: String, last: u8| {
            let v4: IpAddr = format!("{net4}.{last}").parse().unwrap();
            let v6: IpAddr = format!("{net6}::{last}").parse().unwrap();
            Port {
                node,
                dev,
                addrs: [v4, v6],
            }
        };
        let link = Link {
            a: port(a, a_dev, 1),
            b: port(b, b_dev, 2),
            prefixes: [format!("{net4}.0/24"), format!("{net6}::/64")],
        };
        for end in [&link.a, &link.b] {
            let ns = self.ns(end.node);
            addr(ns, &end.dev, &format!("{}/24", end.addrs[0]));
            addr(ns, &end.dev, &format!("{}/64", end.addrs[1]));
        }
        self.links.push(link);
    }

    /// A point-to-point /30 from the switch into the collector's namespace.
    fn management(&mut self, switch: &'static str, i: usize) {
        let dev = unique("mg");
        let peer = unique(&format!("m{}", short(switch)));
        veth(self.ns(switch), &dev, &self.mgmt, &peer);
        let base = 4 * i;
        let mgmt_addr = format!("172.31.0.{}", base + 1);
        let addr_ = format!("172.31.0.{}", base + 2);
        addr(self.ns(switch), &dev, &format!("{addr_}/30"));
        addr(&self.mgmt, &peer, &format!("{mgmt_addr}/30"));
        self.mgmt_links.push(Mgmt {
            switch,
            dev,
            addr: addr_,
            mgmt_addr,
        });
    }

    fn extra_addresses(&self) {
        let h1_dev = self.dev("h1", "leaf1").to_string();
        let h2_dev = self.dev("h2", "leaf2").to_string();
        addr(self.ns("h1"), &h1_dev, &format!("{}/24", H1_ASYM[0]));
        addr(self.ns("h1"), &h1_dev, &format!("{}/64", H1_ASYM[1]));
        addr(self.ns("h2"), &h2_dev, &format!("{}/24", H2_DARK[0]));
        addr(self.ns("h2"), &h2_dev, &format!("{}/64", H2_DARK[1]));
        let rtr = self.ns("rtr");
        // The router's own network, on its loopback: no module needed.
        addr(rtr, "lo", "10.230.0.1/24");
        addr(rtr, "lo", "2001:db8:230::1/64");
    }

    /// `ip [-6] route add PREFIX via GW` in `node`, the gateway being
    /// `via`'s address on its link to `node`.
    fn via(&self, node: &str, prefix: &str, via: &str) {
        let v6 = prefix.contains(':');
        let gw = self.addr(via, node, v6).to_string();
        let dev = self.dev(node, via);
        let family = if v6 { "-6" } else { "-4" };
        self.ns(node)
            .ip(&[family, "route", "add", prefix, "via", &gw, "dev", dev]);
    }

    fn routes(&self) {
        for v6 in [false, true] {
            let f = family(v6);
            let default = if v6 { "::/0" } else { "0.0.0.0/0" };
            let family_flag = if v6 { "-6" } else { "-4" };
            self.via("h1", default, "leaf1");
            self.via("h2", default, "leaf2");
            self.via("rtr", default, "leaf2");
            // The leaves spread everything else over both spines.
            for leaf in LEAVES {
                let mut route = vec![family_flag.to_string(), "route".into(), "add".into()];
                route.push(default.into());
                for spine in SPINES {
                    route.extend([
                        "nexthop".into(),
                        "via".into(),
                        self.addr(spine, leaf, v6).to_string(),
                        "dev".into(),
                        self.dev(leaf, spine).to_string(),
                    ]);
                }
                let route: Vec<&str> = route.iter().map(String::as_str).collect();
                self.ns(leaf).ip(&route);
            }
            let (beyond, looping) = (ROUTER_NET[f], LOOPING_NET[f]);
            let h1_net = self.prefix("leaf1", "h1", v6);
            let h2_net = self.prefix("leaf2", "h2", v6);
            for spine in SPINES {
                self.via(spine, &h1_net, "leaf1");
                self.via(spine, &h2_net, "leaf2");
                self.via(spine, beyond, "leaf2");
                self.via(spine, looping, "leaf2");
            }
            self.via("leaf2", beyond, "rtr");
            self.via("leaf2", looping, "spine1");
            let asym = format!("{}/{}", H1_ASYM[f], if v6 { 128 } else { 32 });
            self.via("leaf2", &asym, "spine2");
            self.ns("spine1")
                .ip(&[family_flag, "route", "add", "blackhole", DARK[f]]);
        }
    }

    /// Gives each end of every link a permanent neighbour entry for the
    /// other, as a fabric with static ARP: a young lab's first flows would
    /// otherwise meet next hops still being resolved, and each switch
    /// rightly answers `neighbor_incomplete` for those.
    fn resolve_neighbours(&self) {
        for link in &self.links {
            for (near, far) in [(&link.a, &link.b), (&link.b, &link.a)] {
                let mac = crate::lab::mac(self.ns(far.node), &far.dev);
                for address in far.addrs {
                    self.ns(near.node).ip(&[
                        "neigh",
                        "replace",
                        &address.to_string(),
                        "lladdr",
                        &mac,
                        "dev",
                        &near.dev,
                        "nud",
                        "permanent",
                    ]);
                }
            }
        }
        for (leaf, host, extra) in [("leaf1", "h1", H1_ASYM), ("leaf2", "h2", H2_DARK)] {
            let mac = crate::lab::mac(self.ns(host), self.dev(host, leaf));
            for address in extra {
                self.ns(leaf).ip(&[
                    "neigh",
                    "replace",
                    address,
                    "lladdr",
                    &mac,
                    "dev",
                    self.dev(leaf, host),
                    "nud",
                    "permanent",
                ]);
            }
        }
    }

    /// The wiring, for a failing test's log (each namespace prints its own
    /// routes and counters as it goes).
    pub fn describe(&self) -> String {
        let mut text = String::from("--- fabric lab ---\n");
        for node in &self.nodes {
            text += &format!("{:7} = netns {}\n", node.name, node.ns.name);
        }
        text += &format!("{:7} = netns {} (collector)\n", "mgmt", self.mgmt.name);
        for l in &self.links {
            text += &format!(
                "{} {} {} {} <-> {} {} {} {}\n",
                l.a.node,
                l.a.dev,
                l.a.addrs[0],
                l.a.addrs[1],
                l.b.node,
                l.b.dev,
                l.b.addrs[0],
                l.b.addrs[1]
            );
        }
        for m in &self.mgmt_links {
            text += &format!(
                "{} {} {} <-> mgmt {} (management)\n",
                m.switch, m.dev, m.addr, m.mgmt_addr
            );
        }
        text
    }
}
