//! A fabric for the walks' tests: switches with interfaces and routes that
//! answer `flow`, `hop` and `paths` questions the way a real agent builds
//! its answers (route with every ECMP member and the one a flow hashes
//! onto, neighbour, egress, drops with their reason, local delivery), and
//! the addresses they report, so the walks run against the same shapes they
//! meet on the wire. Agents can be silent, offline or confused, and the
//! asker counts what it was asked and how much at once.

use super::walk::Arrival;
use super::{
    AskError, Asker, DEFAULT_HOP_LIMIT, DEFAULT_MAX_BRANCHES, Directory, FlowSpec, Owner,
    TraceSettings,
};
use hopwatch_wire::trace::{
    Action, Counters, DropReason, FlowPath, FlowQuery, Hop, Interface, LoadShare, Member, Neighbor,
    NeighborState, NextHopFlag, OperState, Paths, PathsQuery, Route, RouteKind, Step, Trace,
    TraceAnswer, TraceQuery, Verdict,
};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How a switch's agent behaves when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Answers,
    /// Connected, never answers.
    Silent,
    /// Not connected.
    Offline,
    /// Answers a paths answer to a trace question.
    Confused,
}

#[derive(Debug, Clone)]
pub struct Iface {
    pub name: String,
    pub address: IpAddr,
    pub len: u8,
    pub up: bool,
}

#[derive(Debug, Clone)]
struct ScriptedRoute {
    net: IpAddr,
    len: u8,
    kind: RouteKind,
    /// (gateway, interface)
    members: Vec<(Option<IpAddr>, String)>,
}

#[derive(Debug, Clone)]
pub struct Switch {
    pub name: String,
    pub ifaces: Vec<Iface>,
    routes: Vec<ScriptedRoute>,
    pub behaviour: Behaviour,
}

fn cidr(text: &str) -> (IpAddr, u8) {
    let (address, len) = text.split_once('/').expect("a prefix");
    (
        address.parse().expect("an address"),
        len.parse().expect("a length"),
    )
}

fn bits(address: IpAddr) -> (u128, u8) {
    match address {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

/// Whether `address` is inside `net/len`.
pub fn within(address: IpAddr, net: IpAddr, len: u8) -> bool {
    if address.is_ipv4() != net.is_ipv4() {
        return false;
    }
    let ((a, width), (n, _)) = (bits(address), bits(net));
    let shift = u32::from(width - len);
    len == 0 || (a >> shift) == (n >> shift)
}

impl Switch {
    pub fn iface(&mut self, name: &str, address: &str) -> &mut Switch {
        let (address, len) = cidr(address);
        self.ifaces.push(Iface {
            name: name.into(),
            address,
            len,
            up: true,
        });
        self
    }

    /// A route through `via` (gateway, interface) members, ECMP when several.
    pub fn route(&mut self, prefix: &str, via: &[(&str, &str)]) -> &mut Switch {
        let (net, len) = cidr(prefix);
        self.routes.retain(|r| (r.net, r.len) != (net, len));
        self.routes.push(ScriptedRoute {
            net,
            len,
            kind: RouteKind::Unicast,
            members: via
                .iter()
                .map(|(gw, dev)| (Some(gw.parse().expect("a gateway")), dev.to_string()))
                .collect(),
        });
        self
    }

    pub fn blackhole(&mut self, prefix: &str) -> &mut Switch {
        let (net, len) = cidr(prefix);
        self.routes.retain(|r| (r.net, r.len) != (net, len));
        self.routes.push(ScriptedRoute {
            net,
            len,
            kind: RouteKind::Blackhole,
            members: Vec::new(),
        });
        self
    }

    pub fn behave(&mut self, behaviour: Behaviour) -> &mut Switch {
        self.behaviour = behaviour;
        self
    }

    pub fn link_down(&mut self, name: &str) -> &mut Switch {
        for iface in &mut self.ifaces {
            if iface.name == name {
                iface.up = false;
            }
        }
        self
    }

    fn interface(&self, name: &str) -> Interface {
        let (index, iface) = self
            .ifaces
            .iter()
            .enumerate()
            .find(|(_, i)| i.name == name)
            .expect("a route's interface exists");
        Interface {
            name: name.into(),
            ifindex: index as u32 + 1,
            oper_state: if iface.up {
                OperState::Up
            } else {
                OperState::Down
            },
            admin_up: true,
            carrier: iface.up,
            mtu: Some(9216),
            speed_mbps: Some(100_000),
            counters: Some(Counters {
                tx_packets: 1000,
                tx_bytes: 64_000,
                ..Counters::default()
            }),
        }
    }

    /// The route the longest prefix picks: connected subnets and the
    /// scripted routes alike.
    fn lookup(&self, dst: IpAddr) -> Option<Route> {
        let connected = self.ifaces.iter().map(|i| ScriptedRoute {
            net: i.address,
            len: i.len,
            kind: RouteKind::Unicast,
            members: vec![(None, i.name.clone())],
        });
        let best = connected
            .chain(self.routes.iter().cloned())
            .filter(|r| within(dst, r.net, r.len))
            .max_by_key(|r| r.len)?;
        let connected = !best.members.is_empty() && best.members.iter().all(|m| m.0.is_none());
        let protocol = if connected { "kernel" } else { "static" };
        let (net_bits, full) = bits(best.net);
        let masked = if best.len == 0 {
            0
        } else {
            net_bits >> (full - best.len) << (full - best.len)
        };
        let network = match best.net {
            IpAddr::V4(_) => IpAddr::V4((masked as u32).into()),
            IpAddr::V6(_) => IpAddr::V6(masked.into()),
        };
        Some(Route {
            prefix: format!("{network}/{}", best.len),
            kind: best.kind.clone(),
            table: 254,
            table_name: "main".into(),
            protocol: protocol.into(),
            protocol_id: 4,
            metric: 0,
            preferred_source: None,
            members: best
                .members
                .iter()
                .map(|(gw, dev)| {
                    let iface = self.interface(dev);
                    Member {
                        next_hop: *gw,
                        interface: Some(dev.clone()),
                        ifindex: iface.ifindex,
                        weight: 1,
                        flags: if iface.carrier {
                            Vec::new()
                        } else {
                            vec![NextHopFlag::Linkdown]
                        },
                    }
                })
                .collect(),
            chosen: None,
        })
    }

    /// The member a flow hashes onto: the 5-tuple and the switch, like an
    /// L4 hash policy with a per-switch seed.
    fn hash(&self, flow: &FlowQuery, members: usize) -> usize {
        let text = format!(
            "{}|{:?}|{}|{:?}|{:?}|{:?}",
            self.name, flow.src, flow.dst, flow.proto, flow.sport, flow.dport
        );
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // FNV's low bits follow the bytes' parity, which would make every
        // switch of a path choose alike: mix before taking the member.
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        (h % members as u64) as usize
    }

    fn hop(
        &self,
        flow: &FlowQuery,
        action: Action,
        description: String,
        step: Step,
        hops: &mut Vec<Hop>,
    ) {
        hops.push(Hop {
            index: hops.len(),
            component: format!("{}/{}", self.name, flow.vrf),
            action,
            description,
            step,
        });
    }

    /// The trace a kernel-backed agent answers for `flow`.
    pub fn trace(&self, flow: &FlowQuery) -> Trace {
        let mut trace = Trace {
            request: flow.clone(),
            success: true,
            reaches_destination: false,
            next_hop: None,
            egress_interface: None,
            ingress_interface: flow.iif.clone(),
            ingress_inferred: false,
            hops: Vec::new(),
            summary: String::new(),
            switch: self.name.clone(),
            backend: "kernel".into(),
            load_share: Some(LoadShare {
                setting: "net.ipv4.fib_multipath_hash_policy".into(),
                policy: 1,
                mode: "layer 4 (src, dst, proto, sport, dport)".into(),
            }),
            elapsed_us: 40,
            hash: None,
        };
        // As the agent does: a flow with a source from elsewhere and no
        // ingress arrives where the route back to its source leaves.
        if flow.iif.is_none()
            && let Some(src) = flow.src
            && !self.ifaces.iter().any(|i| i.address == src)
            && let Some(back) = self.lookup(src)
            && !back.members.is_empty()
        {
            let reply = FlowQuery {
                dst: src,
                src: Some(flow.dst),
                sport: flow.dport,
                dport: flow.sport,
                ..flow.clone()
            };
            let member = &back.members[self.hash(&reply, back.members.len())];
            trace.ingress_interface = member.interface.clone();
            trace.ingress_inferred = true;
        }
        let mut hops = Vec::new();
        let drop = |reason, description: String, route, interface, hops: &mut Vec<Hop>| {
            self.hop(
                flow,
                Action::Drop,
                description,
                Step::Drop {
                    reason,
                    route,
                    setting: None,
                    interface,
                    neighbor: None,
                    kernel_answer: None,
                },
                hops,
            )
        };
        if self.ifaces.iter().any(|i| i.address == flow.dst) {
            let route = Route {
                prefix: format!("{}/{}", flow.dst, if flow.dst.is_ipv4() { 32 } else { 128 }),
                kind: RouteKind::Local,
                table: 255,
                table_name: "local".into(),
                protocol: "kernel".into(),
                protocol_id: 2,
                metric: 0,
                preferred_source: None,
                members: Vec::new(),
                chosen: None,
            };
            self.hop(
                flow,
                Action::Deliver,
                format!("local route {}: an address of this switch", route.prefix),
                Step::L3Routing {
                    route: route.clone(),
                    source_address: None,
                },
                &mut hops,
            );
            self.hop(
                flow,
                Action::Deliver,
                "delivered to the switch itself by lo".into(),
                Step::Local {
                    interface: Some("lo".into()),
                    route: Some(route),
                },
                &mut hops,
            );
            trace.reaches_destination = true;
            trace.egress_interface = Some("lo".into());
            trace.hops = hops;
            return trace;
        }
        let Some(mut route) = self.lookup(flow.dst) else {
            drop(
                DropReason::NoRoute,
                format!("no route to {}", flow.dst),
                None,
                None,
                &mut hops,
            );
            trace.hops = hops;
            return trace;
        };
        if route.kind == RouteKind::Blackhole {
            drop(
                DropReason::Blackhole,
                format!("blackhole route {} discards the flow", route.prefix),
                Some(route),
                None,
                &mut hops,
            );
            trace.hops = hops;
            return trace;
        }
        let chosen = self.hash(flow, route.members.len());
        route.chosen = Some(chosen);
        let member = route.members[chosen].clone();
        let name = member.interface.clone().expect("named");
        let egress = self.interface(&name);
        trace.next_hop = member.next_hop;
        trace.egress_interface = Some(name.clone());
        self.hop(
            flow,
            Action::Forward,
            format!(
                "unicast route {} via {:?} dev {name}",
                route.prefix, member.next_hop
            ),
            Step::L3Routing {
                route: route.clone(),
                source_address: None,
            },
            &mut hops,
        );
        if !egress.is_up() {
            drop(
                DropReason::EgressDown,
                format!("egress interface {name} is down"),
                None,
                Some(egress),
                &mut hops,
            );
            trace.hops = hops;
            return trace;
        }
        let neighbor = Neighbor {
            address: member.next_hop.unwrap_or(flow.dst),
            interface: name.clone(),
            lladdr: Some("52:54:00:00:00:01".into()),
            state: NeighborState::Reachable,
            router: false,
        };
        self.hop(
            flow,
            Action::Resolve,
            "next hop resolved".into(),
            Step::Neighbor { neighbor },
            &mut hops,
        );
        self.hop(
            flow,
            Action::Output,
            format!("out {name}: up"),
            Step::Egress { interface: egress },
            &mut hops,
        );
        trace.reaches_destination = true;
        trace.hops = hops;
        trace
    }

    /// The spread an agent answers for a `paths` query with `per_flow`.
    pub fn paths(&self, query: &PathsQuery) -> Paths {
        let flows = query.flows().expect("a valid paths query");
        let flow_of = |(sport, dport): (u16, Option<u16>)| FlowQuery {
            dst: query.dst,
            src: query.src,
            iif: query.iif.clone(),
            proto: Some(query.proto),
            sport: Some(sport),
            dport,
            vrf: query.vrf.clone(),
            flowlabel: None,
        };
        let first = self.trace(&flow_of(flows[0]));
        let verdict = Verdict {
            even: true,
            chi_square: 0.0,
            degrees_of_freedom: 0,
            p_value: 1.0,
            text: "even".into(),
        };
        let mut paths = Paths {
            request: query.clone(),
            flows: flows.len() as u64,
            members: Vec::new(),
            verdict,
            unrouted: 0,
            route: first.route().cloned(),
            load_share: first.load_share.clone(),
            ingress_interface: query.iif.clone(),
            ingress_inferred: false,
            note: None,
            switch: self.name.clone(),
            elapsed_us: 300,
            flows_detail: None,
            hash: None,
            dropped: 0,
            drop: None,
        };
        let forwarded = first
            .route()
            .is_some_and(|r| r.kind == RouteKind::Unicast && !r.members.is_empty());
        if !forwarded {
            paths.drop = first
                .hops
                .iter()
                .find(|h| h.kind() == "drop")
                .or(first.hops.last())
                .cloned();
            return paths;
        }
        let detail = flows
            .iter()
            .map(|&(sport, dport)| {
                let trace = self.trace(&flow_of((sport, dport)));
                let route = trace.route().expect("routed");
                let member = &route.members[route.chosen.expect("chosen")];
                FlowPath {
                    sport,
                    dport,
                    next_hop: member.next_hop,
                    interface: member.interface.clone(),
                    error: None,
                }
            })
            .collect();
        paths.flows_detail = Some(detail);
        paths
    }
}

/// A scripted fabric: every switch's agent and the addresses they report.
#[derive(Debug, Default)]
pub struct Net {
    pub switches: Vec<Switch>,
    /// Every question asked, in order.
    pub asked: Mutex<Vec<(String, TraceQuery)>>,
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    per_agent: Mutex<HashMap<String, (usize, usize)>>,
    /// Times an answer yields to the runtime before it is given, so
    /// questions asked together are in flight together.
    pub yields: usize,
}

impl Net {
    pub fn switch(&mut self, name: &str) -> &mut Switch {
        if let Some(i) = self.switches.iter().position(|s| s.name == name) {
            return &mut self.switches[i];
        }
        self.switches.push(Switch {
            name: name.into(),
            ifaces: Vec::new(),
            routes: Vec::new(),
            behaviour: Behaviour::Answers,
        });
        self.switches.last_mut().expect("just pushed")
    }

    fn find(&self, name: &str) -> Option<&Switch> {
        self.switches.iter().find(|s| s.name == name)
    }

    /// Questions asked so far.
    pub fn questions(&self) -> Vec<(String, TraceQuery)> {
        self.asked.lock().unwrap().clone()
    }

    /// The most questions one agent had in flight at once.
    pub fn max_per_agent(&self) -> usize {
        self.per_agent
            .lock()
            .unwrap()
            .values()
            .map(|&(_, max)| max)
            .max()
            .unwrap_or(0)
    }

    fn enter(&self, agent: &str) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let mut per_agent = self.per_agent.lock().unwrap();
        let entry = per_agent.entry(agent.to_string()).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(entry.0);
    }

    fn leave(&self, agent: &str) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(entry) = self.per_agent.lock().unwrap().get_mut(agent) {
            entry.0 -= 1;
        }
    }
}

/// Counts a question out when it ends, answered or dropped by a timeout.
struct InFlight<'a> {
    net: &'a Net,
    agent: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.net.leave(&self.agent);
    }
}

impl Asker for Net {
    async fn ask(
        &self,
        agent: &str,
        query: TraceQuery,
        _timeout: Duration,
    ) -> Result<TraceAnswer, AskError> {
        self.asked
            .lock()
            .unwrap()
            .push((agent.to_string(), query.clone()));
        let Some(switch) = self.find(agent) else {
            return Err(AskError::Offline {
                agent: agent.into(),
            });
        };
        self.enter(agent);
        let _in_flight = InFlight {
            net: self,
            agent: agent.into(),
        };
        for _ in 0..self.yields {
            tokio::task::yield_now().await;
        }
        match switch.behaviour {
            Behaviour::Answers => {}
            Behaviour::Silent => std::future::pending::<()>().await,
            Behaviour::Offline => {
                return Err(AskError::Offline {
                    agent: agent.into(),
                });
            }
            Behaviour::Confused => {
                let query = PathsQuery::new(
                    "10.0.0.1".parse().unwrap(),
                    17,
                    hopwatch_wire::trace::SourcePorts::Range(hopwatch_wire::trace::PortRange {
                        first: 1,
                        last: 1,
                    }),
                );
                let mut paths = switch.paths(&query);
                paths.flows_detail = None;
                return Ok(TraceAnswer::Paths(paths));
            }
        }
        Ok(match query {
            TraceQuery::Flow(flow) => TraceAnswer::Flow(switch.trace(&flow)),
            TraceQuery::Hop(hop) => match hop.arriving() {
                Ok(flow) => TraceAnswer::Hop(switch.trace(&flow)),
                Err(error) => TraceAnswer::error(error),
            },
            TraceQuery::Paths(paths) => TraceAnswer::Paths(switch.paths(&paths)),
        })
    }
}

impl Directory for Net {
    fn owner(&self, _vrf: &str, address: IpAddr) -> Option<Owner> {
        self.switches.iter().find_map(|switch| {
            switch
                .ifaces
                .iter()
                .find(|i| i.address == address)
                .map(|i| owner(switch, i))
        })
    }

    fn attached(&self, _vrf: &str, address: IpAddr) -> Vec<Owner> {
        let mut attached: Vec<(u8, Owner)> = self
            .switches
            .iter()
            .flat_map(|switch| {
                switch
                    .ifaces
                    .iter()
                    .filter(|i| within(address, i.address, i.len))
                    .map(|i| (i.len, owner(switch, i)))
            })
            .collect();
        attached.sort_by_key(|a| std::cmp::Reverse(a.0));
        attached.into_iter().map(|(_, o)| o).collect()
    }

    fn agents(&self) -> Vec<String> {
        self.switches.iter().map(|s| s.name.clone()).collect()
    }
}

fn owner(switch: &Switch, iface: &Iface) -> Owner {
    Owner {
        agent: switch.name.clone(),
        vrf: "default".into(),
        interface: iface.name.clone(),
        address: format!("{}/{}", iface.address, iface.len),
    }
}

/// Two hosts, two leaves, two spines, ECMP on the leaves toward the spines:
///
/// ```text
/// h1 10.0.1.2 ─ swp1 leaf1 swp51 ─ spine1 ─ swp51 leaf2 swp1 ─ h2 10.0.2.2
///                          swp52 ─ spine2 ─ swp52
/// ```
pub fn leaf_spine() -> Net {
    let mut net = Net::default();
    net.switch("leaf1")
        .iface("swp1", "10.0.1.1/24")
        .iface("swp51", "10.1.1.0/31")
        .iface("swp52", "10.1.2.0/31")
        .route(
            "10.0.2.0/24",
            &[("10.1.1.1", "swp51"), ("10.1.2.1", "swp52")],
        );
    net.switch("leaf2")
        .iface("swp1", "10.0.2.1/24")
        .iface("swp51", "10.1.1.2/31")
        .iface("swp52", "10.1.2.2/31")
        .route(
            "10.0.1.0/24",
            &[("10.1.1.3", "swp51"), ("10.1.2.3", "swp52")],
        );
    net.switch("spine1")
        .iface("swp1", "10.1.1.1/31")
        .iface("swp2", "10.1.1.3/31")
        .route("10.0.1.0/24", &[("10.1.1.0", "swp1")])
        .route("10.0.2.0/24", &[("10.1.1.2", "swp2")]);
    net.switch("spine2")
        .iface("swp1", "10.1.2.1/31")
        .iface("swp2", "10.1.2.3/31")
        .route("10.0.1.0/24", &[("10.1.2.0", "swp1")])
        .route("10.0.2.0/24", &[("10.1.2.2", "swp2")]);
    net
}

/// Bounds for tests whose agents all answer: generous, so a busy test
/// machine never turns an answer into a timeout.
pub fn bounds() -> TraceSettings {
    TraceSettings {
        hop_timeout: Duration::from_secs(10),
        timeout: Duration::from_secs(30),
        hop_limit: DEFAULT_HOP_LIMIT,
        max_branches: DEFAULT_MAX_BRANCHES,
    }
}

/// Bounds for tests with a silent agent: each costs this hop timeout.
pub fn quick() -> TraceSettings {
    TraceSettings {
        hop_timeout: Duration::from_millis(100),
        ..bounds()
    }
}

pub fn flow(src: &str, dst: &str, sport: u16) -> FlowSpec {
    FlowSpec {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        proto: Some(6),
        sport: Some(sport),
        dport: Some(80),
        vrf: "default".into(),
        from: None,
    }
}

/// A source port whose flow leaf1 hashes onto the member towards `spine`.
pub fn sport_via(net: &Net, spine: &str) -> u16 {
    let leaf1 = net.switches.iter().find(|s| s.name == "leaf1").unwrap();
    (1000..2000)
        .find(|&sport| {
            let spec = flow("10.0.1.2", "10.0.2.2", sport);
            let at = Arrival {
                agent: "leaf1".into(),
                vrf: "default".into(),
                ingress: Some("swp1".into()),
            };
            let TraceQuery::Hop(hop) = at.query(&spec) else {
                unreachable!()
            };
            let trace = leaf1.trace(&hop.arriving().unwrap());
            let gateway = trace.next_hop.unwrap();
            net.owner("default", gateway).unwrap().agent == spine
        })
        .expect("some port hashes each way")
}
