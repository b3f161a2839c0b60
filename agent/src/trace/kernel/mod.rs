//! The kernel backend: answers trace and paths queries from the Linux FIB
//! over rtnetlink, asking the questions `ip route get` asks, so the member
//! chosen is the one the kernel's multipath hash picks for a real packet of
//! the flow.
//!
//! A trace is two batches on one socket: the route taken and the FIB entry
//! it came from (`RTM_F_FIB_MATCH`, every member with its weight); then the
//! egress link (only its counters when the link is remembered), the next
//! hop's neighbour entry and the names of the other members not remembered.
//! Answers are read straight from their bytes: a kept backend's trace costs
//! a few microseconds, most of them the kernel's.
//! When the kernel refuses a lookup, its errno says why (`EINVAL` for a
//! blackhole, `EHOSTUNREACH` for unreachable, `EACCES` for prohibit,
//! `ENETUNREACH` for no route or a throw) and a type-filtered route dump
//! names the route behind the refusal, which `RTM_F_FIB_MATCH` cannot.

mod cache;
mod choice;
mod names;
mod paths;
mod policy;
mod refusal;
mod route;
#[cfg(test)]
mod tests;

pub use policy::hash_mode;
pub use route::protocol_name;

use super::hash::HashedFlow;
use super::netlink::{self, Conn, RouteFacts, RouteGet};
use super::outcome::Outcome;
use super::paths::{Paths, PathsQuery};
use super::vrf::{self, Place};
use super::{Backend, FlowQuery, Interface, Neighbor, NeighborState, Trace, TraceError};
use cache::LinkCache;
use choice::{Facts, Ipv6Forwarding, Routed, errno_words};
use nix::libc;
use policy::Policy;
use route::{decode_link, decode_neighbour, decode_route};
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where `ip netns` keeps the namespaces it names, and NX-OS its VRFs.
pub const NETNS_DIR: &str = "/var/run/netns";

/// How long a kept backend trusts what an operator changes by hand and no
/// kernel notification announces: the hostname, the multipath hash policy,
/// and that no namespace is named `default`. A change shows in traces at
/// most this much later; a fresh backend (a `hopwatch trace` process) reads
/// them all, and a busy agent saves three system calls per trace (`uname`,
/// a `pread` of the policy, a `statx` in the netns directory).
const REREAD_AFTER: Duration = Duration::from_millis(100);

/// Answers queries from the kernel of the namespace the agent runs in, or
/// of the VRF a query names.
pub struct KernelBackend {
    netns_dir: PathBuf,
    proc_sys: PathBuf,
    sys_root: PathBuf,
    /// The agent's own namespace, opened on first use and kept, so repeated
    /// queries reuse one socket and the open sysctl files.
    home: Option<Namespace>,
    /// The hostname and when it was read.
    host: Option<(Instant, String)>,
    /// When `default` was last found to name no namespace, so means home.
    default_is_home: Option<Instant>,
}

impl Default for KernelBackend {
    fn default() -> Self {
        KernelBackend::new()
    }
}

impl std::fmt::Debug for KernelBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelBackend")
            .field("netns_dir", &self.netns_dir)
            .finish_non_exhaustive()
    }
}

impl KernelBackend {
    pub fn new() -> KernelBackend {
        KernelBackend {
            netns_dir: PathBuf::from(NETNS_DIR),
            proc_sys: PathBuf::from("/proc/sys"),
            sys_root: PathBuf::from("/sys"),
            home: None,
            host: None,
            default_is_home: None,
        }
    }

    /// Looks for VRF namespaces in `dir` instead of `/var/run/netns`.
    pub fn with_netns_dir(mut self, dir: impl Into<PathBuf>) -> KernelBackend {
        self.netns_dir = dir.into();
        self
    }

    /// Every VRF a query could name here: `default`, the namespaces in the
    /// netns directory, and l3mdev VRF devices.
    pub fn vrfs(&mut self) -> Result<Vec<String>, TraceError> {
        let netns_dir = self.netns_dir.clone();
        let home = self.home()?;
        Ok(vrf::list(&netns_dir, &mut home.conn))
    }

    fn home(&mut self) -> Result<&mut Namespace, TraceError> {
        if self.home.is_none() {
            self.home = Some(Namespace::open(
                self.proc_sys.clone(),
                self.sys_root.clone(),
                true,
            )?);
        }
        Ok(self.home.as_mut().expect("opened above"))
    }

    /// The switch's name, read again once [`REREAD_AFTER`] has passed.
    fn hostname(&mut self, now: Instant) -> String {
        match &self.host {
            Some((read, name)) if now.saturating_duration_since(*read) < REREAD_AFTER => {
                name.clone()
            }
            _ => {
                let name = hostname();
                self.host = Some((now, name.clone()));
                name
            }
        }
    }

    /// Runs `work` against the namespace that holds VRF `name`: at home, or
    /// on a thread inside another namespace with a socket opened there.
    fn in_vrf<T: Send>(
        &mut self,
        name: &str,
        now: Instant,
        work: impl FnOnce(&mut Namespace, &Place) -> Result<T, TraceError> + Send,
    ) -> Result<T, TraceError> {
        self.home()?;
        let home = self.home.as_mut().expect("opened above");
        home.refresh();
        let recently_home = self
            .default_is_home
            .is_some_and(|read| now.saturating_duration_since(read) < REREAD_AFTER);
        let place = if name == super::DEFAULT_VRF && recently_home {
            Place::Home
        } else {
            let place = vrf::locate(&self.netns_dir, name, &mut home.conn)?;
            if place == Place::Home {
                self.default_is_home = Some(now);
            }
            place
        };
        match &place {
            Place::Namespace(path) => {
                let proc_sys = self.proc_sys.clone();
                let sys_root = self.sys_root.clone();
                vrf::within(name, path, || {
                    // sysfs shows the namespace it was mounted from, not the
                    // one this thread entered, so speeds are left out there.
                    let mut namespace = Namespace::open(proc_sys, sys_root, false)?;
                    work(&mut namespace, &place)
                })
            }
            _ => work(home, &place),
        }
    }
}

impl Backend for KernelBackend {
    fn name(&self) -> &'static str {
        "kernel"
    }

    fn trace(&mut self, query: &FlowQuery) -> Result<Trace, TraceError> {
        let started = Instant::now();
        query.validate()?;
        let switch = self.hostname(started);
        let mut trace = self.in_vrf(&query.vrf, started, |namespace, place| {
            namespace.trace(query, place, &switch)
        })?;
        trace.elapsed_us = started.elapsed().as_micros() as u64;
        Ok(trace)
    }

    fn paths(&mut self, query: &PathsQuery) -> Result<Paths, TraceError> {
        let started = Instant::now();
        let mut query = query.clone();
        query.validate()?;
        if query.samples.is_some() && query.seed.is_none() {
            query.seed = Some(super::paths::seed_from_clock());
        }
        let flows = query.flows()?;
        let vrf = query.vrf.clone();
        let switch = self.hostname(started);
        let mut answer = self.in_vrf(&vrf, started, |namespace, place| {
            namespace.paths(&query, &flows, place, &switch)
        })?;
        answer.switch = switch;
        answer.elapsed_us = started.elapsed().as_micros() as u64;
        Ok(answer)
    }
}

/// The switch's name, as the flowtracker seed's `CONNECTED TO` shows it.
fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".to_string())
}

/// The interface a flow arrives on.
#[derive(Debug, Default)]
struct Ingress {
    index: Option<u32>,
    name: Option<String>,
    inferred: bool,
}

/// Everything bound to one network namespace.
struct Namespace {
    conn: Conn,
    proc_sys: PathBuf,
    /// Where link speeds are read; `None` inside a namespace other than the
    /// one sysfs was mounted from, where sysfs would describe the wrong links.
    sys_root: Option<PathBuf>,
    /// `fib_multipath_hash_policy` for IPv4 and IPv6, kept open: reading an
    /// open sysctl file gets the current value for a fraction of the cost
    /// of opening it, and the file stays bound to this namespace.
    hash_policy: [Option<File>; 2],
    /// The load share last read from `hash_policy`, with the hash fields
    /// under policy 3, and when.
    load_shares: [Option<(Instant, Option<Policy>)>; 2],
    /// Links and speeds kept between queries; only the agent's own
    /// namespace lives long enough to use one.
    cache: Option<LinkCache>,
    /// This is the agent's own namespace, kept between queries.
    home: bool,
    /// Queries answered so far.
    served: u32,
}

impl Namespace {
    /// Opens a namespace's sockets from the calling thread. `home` is the
    /// agent's own namespace: sysfs describes it, and it is kept, so it
    /// caches link names.
    fn open(proc_sys: PathBuf, sys_root: PathBuf, home: bool) -> Result<Namespace, TraceError> {
        let conn = Conn::open().map_err(|e| TraceError::netlink("opening a netlink socket", e))?;
        Ok(Namespace {
            conn,
            proc_sys,
            sys_root: home.then_some(sys_root),
            hash_policy: [None, None],
            load_shares: [None, None],
            cache: None,
            home,
            served: 0,
        })
    }

    /// Called before each query: forgets cached names and speeds if any
    /// link changed since the last. The cache starts with the second query,
    /// so a one-shot `hopwatch trace` opens no socket it would not use.
    fn refresh(&mut self) {
        self.served = self.served.saturating_add(1);
        if self.cache.is_none() && self.home && self.served > 1 {
            // Without the cache every query asks for every name: slower,
            // never wrong, so a failure to subscribe is no error.
            self.cache = LinkCache::open().ok();
        }
        if let Some(cache) = &mut self.cache {
            cache.refresh();
        }
    }

    /// The egress interface's speed, from sysfs when it describes this
    /// namespace and the link is up.
    fn speed(&mut self, interface: &Interface) -> Option<u64> {
        let root = self.sys_root.as_ref()?;
        if !interface.is_up() {
            return None;
        }
        if let Some(cache) = &self.cache
            && let Some(&(_, speed)) = cache.speeds.iter().find(|(i, _)| *i == interface.ifindex)
        {
            return speed;
        }
        let speed = crate::link::sysfs::read_speed(root, &interface.name);
        if let Some(cache) = &mut self.cache {
            cache.speeds.push((interface.ifindex, speed));
        }
        speed
    }

    /// Sends what is queued; the kernel has answered when this returns.
    fn send(&mut self, what: &str) -> Result<(), TraceError> {
        self.conn
            .send()
            .map_err(|e| TraceError::netlink(format!("sending {what}"), e))
    }

    /// The answer to the route lookup `sequence`: the route, `None` when
    /// the kernel answered with something else, or the errno it refused with.
    fn route_answer(
        &mut self,
        sequence: u32,
        what: &str,
    ) -> Result<Result<Option<RouteFacts>, i32>, TraceError> {
        let answer = self
            .conn
            .answer_raw(sequence)
            .map_err(|e| TraceError::netlink(format!("reading the answer to {what}"), e))?;
        Ok(match answer {
            Ok((netlink::RTM_NEWROUTE, payload)) => Ok(netlink::route_facts(payload)),
            Ok(_) => Ok(None),
            Err(errno) => Err(errno),
        })
    }

    /// One route lookup, one answer.
    fn ask_route(
        &mut self,
        lookup: &RouteGet,
        what: &str,
    ) -> Result<Result<Option<RouteFacts>, i32>, TraceError> {
        let sequence = self.conn.queue_route_get(lookup);
        self.send(what)?;
        self.route_answer(sequence, what)
    }

    /// Where the flow comes from: the interface the query names, or the one
    /// the route back to a non-local source leaves by (the interface a
    /// packet from there arrives on when routing is symmetric).
    fn ingress(&mut self, query: &FlowQuery, vrf_oif: Option<u32>) -> Result<Ingress, TraceError> {
        if let Some(name) = &query.iif {
            return Ok(Ingress {
                index: Some(self.index_of(name, &query.vrf)?),
                name: Some(name.clone()),
                inferred: false,
            });
        }
        let Some(src) = query.src else {
            return Ok(Ingress::default());
        };
        // The reverse flow, so a multipath route back hashes it as the
        // replies of this flow would be.
        let back = RouteGet {
            dst: Some(src),
            oif: vrf_oif,
            proto: query.proto,
            sport: query.dport,
            dport: query.sport,
            ..RouteGet::default()
        };
        match self.ask_route(&back, "the route back to the source")? {
            Ok(Some(route)) if route.kind == netlink::RTN_LOCAL => Ok(Ingress::default()),
            Ok(Some(route)) => {
                let Some(index) = route.oif else {
                    return Err(TraceError::IngressUnknown {
                        src,
                        reason: "the route names no interface".into(),
                    });
                };
                let name = self
                    .names(&[index])?
                    .get(index)
                    .unwrap_or_else(|| format!("ifindex {index}"));
                Ok(Ingress {
                    index: Some(index),
                    name: Some(name),
                    inferred: true,
                })
            }
            Ok(None) => Err(TraceError::IngressUnknown {
                src,
                reason: "the kernel answered with something other than a route".into(),
            }),
            Err(errno) => Err(TraceError::IngressUnknown {
                src,
                reason: errno_words(errno),
            }),
        }
    }

    fn trace(
        &mut self,
        query: &FlowQuery,
        place: &Place,
        switch: &str,
    ) -> Result<Trace, TraceError> {
        let (vrf_oif, vrf_table) = match place {
            Place::Device { ifindex, table } => (Some(*ifindex), *table),
            _ => (None, None),
        };
        let ipv4 = query.dst.is_ipv4();
        let ingress = self.ingress(query, vrf_oif)?;
        let hash = self.hash_info(
            HashedFlow {
                ipv4,
                forwarded: ingress.index.is_some(),
                proto: query.proto,
                flowlabel: query.flowlabel,
            },
            Instant::now(),
        )?;
        let mut lookup = RouteGet {
            dst: Some(query.dst),
            src: query.src,
            iif: ingress.index,
            oif: vrf_oif,
            proto: query.proto,
            sport: query.sport,
            dport: query.dport,
            flowlabel: query.flowlabel,
            fib_match: false,
        };
        let taken = self.conn.queue_route_get(&lookup);
        lookup.fib_match = true;
        let matched = self.conn.queue_route_get(&lookup);
        self.send("the route lookup")?;
        let taken = self.route_answer(taken, "the route lookup")?;
        let matched = self.route_answer(matched, "the matching-route lookup")?;
        if matches!(taken, Err(libc::EINVAL)) && lookup.flowlabel.is_some() {
            self.check_flowlabel_taken(&lookup)?;
        }

        let mut out = Outcome::new(query, switch, "kernel")
            .hashed(self.load_share(ipv4, Instant::now()), hash);
        out.trace.ingress_interface = ingress.name.clone();
        out.trace.ingress_inferred = ingress.inferred;
        let fib_route = match &matched {
            Ok(Some(route)) => Some(decode_route(route)),
            _ => None,
        };

        let answer = match taken {
            Ok(Some(answer)) => answer,
            Ok(None) => {
                return Err(TraceError::netlink(
                    "the route lookup",
                    io::Error::new(io::ErrorKind::InvalidData, "answered with no route"),
                ));
            }
            Err(errno) => {
                let facts =
                    self.refusal_facts(errno, query, &ingress, vrf_oif, vrf_table, fib_route)?;
                return choice::choose(out, Facts::Refused(facts));
            }
        };

        let kind = answer.kind;
        let oif = answer.oif.unwrap_or(0);
        let gateway = answer.gateway;
        let source_address = answer.pref_source;
        let mut route = fib_route.unwrap_or_else(|| {
            // The FIB entry could not be fetched; the answer itself still
            // says what the lookup found.
            let mut route = decode_route(&answer);
            route.prefix = format!("{}/{}", query.dst, if ipv4 { 32 } else { 128 });
            route
        });
        if !ipv4 {
            // IPv6 lists the member taken first; sorting makes the list
            // the same whichever member a flow takes.
            route.members.sort_by_key(|m| (m.ifindex, m.next_hop));
        }
        route.chosen = route.member_of(gateway, oif);

        if matches!(kind, netlink::RTN_LOCAL | netlink::RTN_BROADCAST) {
            let mut indexes: Vec<u32> = route.members.iter().map(|m| m.ifindex).collect();
            indexes.push(oif);
            let names = self.names(&indexes)?;
            names.apply(&mut route);
            let lo = names.get(oif);
            let facts = Facts::Local {
                route,
                source_address,
                lo,
            };
            return choice::choose(out, facts);
        }

        // IPv4 refuses a transit lookup when the ingress does not forward;
        // IPv6 decides that only when it forwards a packet, so ask the
        // settings ip6_forward() reads: all.forwarding, or the ingress'
        // force_forwarding.
        let ipv6_forwarding = match &ingress.name {
            Some(iif) if !ipv4 => Some(Ipv6Forwarding {
                ingress: iif.clone(),
                all: self.sysctl(&["net", "ipv6", "conf", "all", "forwarding"]),
                forced: self.sysctl(&["net", "ipv6", "conf", iif, "force_forwarding"]),
            }),
            _ => None,
        };
        let mut routed = Routed {
            route,
            source_address,
            gateway,
            ipv6_forwarding,
            egress: None,
        };
        if routed
            .ipv6_forwarding
            .as_ref()
            .is_some_and(|f| !f.forwards())
        {
            self.name_members(&mut routed.route)?;
            return choice::choose(out, Facts::Routed(routed));
        }
        let route = &mut routed.route;

        // The egress link, the neighbour behind it and the names of the
        // other members, in one batch. A link the cache holds needs only
        // its counters asked.
        let known = self.cache.as_ref().and_then(|c| c.link(oif)).cloned();
        let link = match known {
            Some(_) => self.conn.queue_stats(oif),
            None => self.conn.queue_link(oif, true),
        };
        let neighbour_address = gateway.unwrap_or(query.dst);
        let neighbour = self.conn.queue_neighbour(oif, neighbour_address);
        let others: Vec<u32> = route
            .members
            .iter()
            .map(|m| m.ifindex)
            .filter(|&i| i != oif)
            .collect();
        let asked = self.queue_names(&others);
        self.send("the egress and neighbour lookups")?;
        let link = match self.conn.answer_raw(link) {
            Ok(Ok((netlink::RTM_NEWSTATS, payload))) => known.map(|facts| netlink::LinkFacts {
                counters: netlink::stats_counters(payload),
                ..facts
            }),
            Ok(Ok((netlink::RTM_NEWLINK, payload))) => netlink::link_facts(payload),
            Ok(_) => None,
            Err(e) => return Err(TraceError::netlink("reading the egress interface", e)),
        };
        let Some(link) = link else {
            return Err(TraceError::netlink(
                format!("looking up egress interface {oif}"),
                io::Error::new(io::ErrorKind::NotFound, "it vanished during the trace"),
            ));
        };
        if let Some(cache) = &mut self.cache {
            cache.remember(&link);
        }
        let mut egress = decode_link(&link);
        // Multicast maps to a link-layer group address without asking, and
        // NOARP or loopback links resolve nothing.
        let resolves = link.flags & (netlink::IFF_NOARP | netlink::IFF_LOOPBACK) == 0
            && !query.dst.is_multicast()
            && kind != netlink::RTN_MULTICAST;
        let neighbour = match self.conn.answer_raw(neighbour) {
            Ok(Ok((netlink::RTM_NEWNEIGH, payload))) => netlink::neighbour_facts(payload)
                .map(|facts| decode_neighbour(&facts, &egress.name, neighbour_address)),
            Ok(_) => None,
            Err(e) => {
                return Err(TraceError::netlink(
                    "reading the answer to the neighbour lookup",
                    e,
                ));
            }
        };
        let neighbour = resolves.then(|| {
            neighbour.unwrap_or_else(|| Neighbor {
                address: neighbour_address,
                interface: egress.name.clone(),
                lladdr: None,
                state: NeighborState::None,
                router: false,
            })
        });
        let mut names = self.read_names(asked)?;
        egress.speed_mbps = self.speed(&egress);
        names.0.push((oif, egress.name.clone()));
        names.apply(route);
        routed.egress = Some((egress, neighbour));
        choice::choose(out, Facts::Routed(routed))
    }
}
