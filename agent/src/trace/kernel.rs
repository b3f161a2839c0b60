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

use super::hash::{self, HashInfo, HashedFlow};
use super::netlink::{self, Conn, RouteFacts, RouteGet};
use super::paths::{self, FlowPath, Paths, PathsQuery};
use super::vrf::{self, Place};
use super::{
    Backend, DropReason, FlowQuery, Hop, Interface, LoadShare, Member, Neighbor, Route, Step,
    Trace, TraceError,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::libc;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where `ip netns` keeps the namespaces it names, and NX-OS its VRFs.
pub const NETNS_DIR: &str = "/var/run/netns";

/// Lookups per write in `paths`. Each answer holds under a kilobyte of the
/// socket's receive buffer until read, so a batch fits even the default
/// buffer many times over; an overrun (a smaller buffer than expected)
/// halves the batch and asks the lost lookups again.
const PATHS_BATCH: usize = 128;

/// Batches in a row that may come back empty before `paths` gives up.
const PATHS_STALLS: u32 = 8;

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
        let component = format!("{switch}/{}", query.vrf);
        let mut trace = self.in_vrf(&query.vrf, started, |namespace, place| {
            namespace.trace(query, place, &component)
        })?;
        trace.switch = switch;
        trace.backend = self.name().to_string();
        trace.elapsed_us = started.elapsed().as_micros() as u64;
        Ok(trace)
    }

    fn paths(&mut self, query: &PathsQuery) -> Result<Paths, TraceError> {
        let started = Instant::now();
        let mut query = query.clone();
        query.validate()?;
        if query.samples.is_some() && query.seed.is_none() {
            query.seed = Some(paths::seed_from_clock());
        }
        let flows = query.flows()?;
        let vrf = query.vrf.clone();
        let component = format!("{}/{vrf}", self.hostname(started));
        let mut answer = self.in_vrf(&vrf, started, |namespace, place| {
            namespace.paths(&query, &flows, place, &component)
        })?;
        answer.switch = self.hostname(started);
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

/// A family's multipath hash: the load share in words and the
/// `fib_multipath_hash_fields` mask policy 3 hashes.
type Policy = (LoadShare, Option<u32>);

/// Links (name, flags, MTU, operational state) and speeds remembered
/// between queries, forgotten whenever the kernel announces any link
/// change: a socket subscribed to link notifications is drained before each
/// query, so nothing remembered is older than the last announcement. The
/// kernel announces every change of what is kept (a rename, an MTU, admin
/// state, carrier and operational state). A carrier change is announced
/// when linkwatch processes it, up to a second after the driver reports it,
/// which is also when the FIB marks the link's next hops: a remembered link
/// agrees with the routes the trace reads. A speed changes only through a
/// renegotiation, which takes the carrier down and so is announced. Counters
/// change with every packet and are never kept: a trace asks for the egress
/// counters alone, a fraction of the whole link's answer.
struct LinkCache {
    watch: Socket,
    /// Without counters.
    links: Vec<netlink::LinkFacts>,
    speeds: Vec<(u32, Option<u64>)>,
}

impl LinkCache {
    /// `RTMGRP_LINK`: the multicast group of link changes.
    const RTMGRP_LINK: u32 = 1;

    fn open() -> io::Result<LinkCache> {
        let mut watch = Socket::new(NETLINK_ROUTE)?;
        watch.bind(&SocketAddr::new(0, Self::RTMGRP_LINK))?;
        Ok(LinkCache {
            watch,
            links: Vec::new(),
            speeds: Vec::new(),
        })
    }

    fn link(&self, index: u32) -> Option<&netlink::LinkFacts> {
        self.links.iter().find(|link| link.index == index)
    }

    fn name(&self, index: u32) -> Option<String> {
        self.link(index).and_then(|link| link.name.clone())
    }

    /// Remembers a link answer, counters left out.
    fn remember(&mut self, facts: &netlink::LinkFacts) {
        if self.link(facts.index).is_none() {
            self.links.push(netlink::LinkFacts {
                counters: None,
                ..facts.clone()
            });
        }
    }

    /// Reads every announcement waiting; any at all, or an overrun that
    /// lost some, forgets everything.
    fn refresh(&mut self) {
        let mut changed = false;
        // Announcements are only counted, so a short read of each will do.
        let mut buffer = [0u8; 512];
        loop {
            match self.watch.recv(&mut &mut buffer[..], libc::MSG_DONTWAIT) {
                Ok(_) => changed = true,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // ENOBUFS: announcements were lost, so assume change.
                    changed = true;
                    break;
                }
            }
        }
        if changed {
            self.links.clear();
            self.speeds.clear();
        }
    }
}

/// The kernel's words for an errno, as `ip` prints them: `Network is unreachable`.
fn errno_words(errno: i32) -> String {
    nix::errno::Errno::from_raw(errno).desc().to_string()
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

    /// A sysctl under `/proc/sys` of this namespace, opened afresh.
    fn sysctl(&self, relative: &[&str]) -> Option<i64> {
        let mut path = self.proc_sys.clone();
        path.extend(relative);
        read_number(&File::open(path).ok()?)
    }

    /// The multipath hash in words, read from this namespace's sysctls at
    /// most once per [`REREAD_AFTER`].
    fn load_share(&mut self, ipv4: bool, now: Instant) -> Option<LoadShare> {
        self.policy(ipv4, now).map(|(share, _)| share)
    }

    /// The policy and fields behind [`Namespace::load_share`].
    fn policy(&mut self, ipv4: bool, now: Instant) -> Option<Policy> {
        let slot = usize::from(!ipv4);
        if let Some((read, policy)) = &self.load_shares[slot]
            && now.saturating_duration_since(*read) < REREAD_AFTER
        {
            return policy.clone();
        }
        let policy = self.read_policy(ipv4);
        self.load_shares[slot] = Some((now, policy.clone()));
        policy
    }

    /// The hash section for `flow`, and the check that a flow label given
    /// means something under the policy in force. When a real packet is
    /// hashed otherwise than this lookup, and why, is in [`super::hash`].
    fn hash_info(
        &mut self,
        flow: HashedFlow,
        now: Instant,
    ) -> Result<Option<HashInfo>, TraceError> {
        let Some((share, fields)) = self.policy(flow.ipv4, now) else {
            return Ok(None);
        };
        if let Some(label) = flow.flowlabel
            && !hash::flowlabel_hashed(share.policy, fields)
        {
            return Err(TraceError::InvalidQuery(format!(
                "{} = {} ({}) does not hash the flow label, so --flowlabel {label} changes nothing; drop --flowlabel",
                share.setting, share.policy, share.mode
            )));
        }
        Ok(Some(hash::describe(flow, share.policy, fields)))
    }

    fn read_policy(&mut self, ipv4: bool) -> Option<Policy> {
        let family = if ipv4 { "ipv4" } else { "ipv6" };
        let slot = usize::from(!ipv4);
        if self.hash_policy[slot].is_none() {
            let path = self
                .proc_sys
                .join("net")
                .join(family)
                .join("fib_multipath_hash_policy");
            self.hash_policy[slot] = File::open(path).ok();
        }
        let policy = read_number(self.hash_policy[slot].as_ref()?)? as u32;
        // Policy 3 hashes the fields this mask names; read only then.
        let fields = (policy == 3)
            .then(|| self.sysctl(&["net", family, "fib_multipath_hash_fields"]))
            .flatten()
            .map(|f| f as u32);
        Some((
            LoadShare {
                setting: format!("net.{family}.fib_multipath_hash_policy"),
                policy,
                mode: hash_mode(ipv4, policy, fields),
            },
            fields,
        ))
    }

    /// The index of the interface `name`.
    fn index_of(&mut self, name: &str, vrf: &str) -> Result<u32, TraceError> {
        let sequence = self.conn.queue_link_by_name(name);
        self.send("an interface lookup")?;
        let answer = self
            .conn
            .answer_raw(sequence)
            .map_err(|e| TraceError::netlink("reading an interface lookup", e))?;
        match answer {
            Ok((netlink::RTM_NEWLINK, payload)) if netlink::link_facts(payload).is_some() => {
                Ok(netlink::link_facts(payload).map_or(0, |facts| facts.index))
            }
            Err(libc::ENODEV) | Ok(_) => Err(TraceError::UnknownInterface {
                name: name.to_string(),
                vrf: vrf.to_string(),
            }),
            Err(errno) => Err(TraceError::netlink(
                format!("looking up interface {name}"),
                io::Error::from_raw_os_error(errno),
            )),
        }
    }

    /// Queues lookups of the interfaces `indexes` for [`Namespace::read_names`].
    /// Names the cache holds are not asked again.
    fn queue_names(&mut self, indexes: &[u32]) -> PendingNames {
        let mut pending = PendingNames::default();
        for &index in indexes {
            if index == 0
                || pending.known.get(index).is_some()
                || pending.asked.iter().any(|&(i, _)| i == index)
            {
                continue;
            }
            match self.cache.as_ref().and_then(|c| c.name(index)) {
                Some(name) => pending.known.0.push((index, name)),
                None => {
                    let sequence = self.conn.queue_link(index, false);
                    pending.asked.push((index, sequence));
                }
            }
        }
        pending
    }

    /// The names the lookups queued by [`Namespace::queue_names`] found,
    /// with those the cache held.
    fn read_names(&mut self, pending: PendingNames) -> Result<Names, TraceError> {
        let PendingNames {
            known: mut names,
            asked,
        } = pending;
        for (index, sequence) in asked {
            let answer = self
                .conn
                .answer_raw(sequence)
                .map_err(|e| TraceError::netlink("reading an interface lookup", e))?;
            if let Ok((netlink::RTM_NEWLINK, payload)) = answer
                && let Some(facts) = netlink::link_facts(payload)
            {
                if let Some(cache) = &mut self.cache {
                    cache.remember(&facts);
                }
                if let Some(name) = facts.name {
                    names.0.push((index, name));
                }
            }
        }
        Ok(names)
    }

    /// The names of interfaces by index, asked in one batch.
    fn names(&mut self, indexes: &[u32]) -> Result<Names, TraceError> {
        let pending = self.queue_names(indexes);
        self.send("interface lookups")?;
        self.read_names(pending)
    }

    /// Fills in the interface names of a route's members.
    fn name_members(&mut self, route: &mut Route) -> Result<(), TraceError> {
        let indexes: Vec<u32> = route.members.iter().map(|m| m.ifindex).collect();
        self.names(&indexes)?.apply(route);
        Ok(())
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
        component: &str,
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

        let mut out = Outcome {
            trace: Trace {
                request: query.clone(),
                success: true,
                reaches_destination: false,
                next_hop: None,
                egress_interface: None,
                ingress_interface: ingress.name.clone(),
                ingress_inferred: ingress.inferred,
                hops: Vec::new(),
                summary: String::new(),
                switch: String::new(),
                backend: String::new(),
                load_share: self.load_share(ipv4, Instant::now()),
                elapsed_us: 0,
                hash,
            },
            component: component.to_string(),
        };
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
                let found = self.refusal(errno, query, &ingress, vrf_oif, vrf_table, fib_route)?;
                out.drop(found);
                return Ok(out.finish());
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
            out.local(route, source_address, names.get(oif));
            return Ok(out.finish());
        }

        // IPv4 refuses a transit lookup when the ingress does not forward;
        // IPv6 decides that only when it forwards a packet, so ask the
        // settings ip6_forward() reads: all.forwarding, or the ingress'
        // force_forwarding.
        if !ipv4 && let Some(iif) = &ingress.name {
            let all = self.sysctl(&["net", "ipv6", "conf", "all", "forwarding"]);
            let forced = self.sysctl(&["net", "ipv6", "conf", iif, "force_forwarding"]);
            if all == Some(0) && forced != Some(1) {
                self.name_members(&mut route)?;
                out.drop(Refusal {
                    reason: DropReason::ForwardingDisabled,
                    route: Some(route),
                    setting: Some("net.ipv6.conf.all.forwarding = 0".into()),
                    kernel: None,
                    detail: format!(
                        "{iif} does not forward IPv6: net.ipv6.conf.all.forwarding is 0 and {iif} has no force_forwarding"
                    ),
                });
                return Ok(out.finish());
            }
        }

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
                state: "none".into(),
                router: false,
            })
        });
        let mut names = self.read_names(asked)?;
        egress.speed_mbps = self.speed(&egress);
        names.0.push((oif, egress.name.clone()));
        names.apply(&mut route);
        out.forward(route, source_address, gateway, egress, neighbour);
        Ok(out.finish())
    }

    /// A lookup with a flow label refused with `EINVAL` is a blackhole, or
    /// a kernel that does not take `RTA_FLOWLABEL` (the socket's strict
    /// checking refuses an attribute it does not know rather than ignore
    /// it): the same lookup without the label tells them apart.
    fn check_flowlabel_taken(&mut self, lookup: &RouteGet) -> Result<(), TraceError> {
        let without = RouteGet {
            flowlabel: None,
            ..lookup.clone()
        };
        match self.ask_route(&without, "the route lookup without a flow label")? {
            Err(libc::EINVAL) => Ok(()),
            _ => Err(TraceError::netlink(
                "the route lookup with a flow label",
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this kernel does not take a flow label in route lookups (RTA_FLOWLABEL); leave out --flowlabel, and read the answer's hash caveat",
                ),
            )),
        }
    }

    /// Why the kernel refused a lookup with `errno`, and the route or
    /// setting behind it.
    fn refusal(
        &mut self,
        errno: i32,
        query: &FlowQuery,
        ingress: &Ingress,
        vrf_oif: Option<u32>,
        vrf_table: Option<u32>,
        fib_route: Option<Route>,
    ) -> Result<Refusal, TraceError> {
        let kernel = Some(errno_words(errno));
        let ipv4 = query.dst.is_ipv4();
        let dst = query.dst;
        let refusal = |reason, route: Option<Route>, detail: String| Refusal {
            reason,
            route,
            setting: None,
            kernel: kernel.clone(),
            detail,
        };
        // A refused input lookup on IPv4 is EHOSTUNREACH whatever the route
        // when the ingress does not forward, so the setting is read first.
        if errno == libc::EHOSTUNREACH
            && ipv4
            && let Some(iif) = &ingress.name
            && self.sysctl(&["net", "ipv4", "conf", iif, "forwarding"]) == Some(0)
        {
            let route = match fib_route {
                Some(mut route) => {
                    self.name_members(&mut route)?;
                    Some(route)
                }
                None => self.would_forward(query, vrf_oif)?,
            };
            return Ok(Refusal {
                setting: Some(format!("net.ipv4.conf.{iif}.forwarding = 0")),
                ..refusal(
                    DropReason::ForwardingDisabled,
                    route,
                    format!("{iif} does not forward IPv4: net.ipv4.conf.{iif}.forwarding is 0"),
                )
            });
        }
        Ok(match errno {
            libc::EINVAL => {
                if let Some(route) = self.covering(dst, netlink::RTN_BLACKHOLE, vrf_table)? {
                    let detail = format!("blackhole route {}: discarded silently", route.prefix);
                    refusal(DropReason::Blackhole, Some(route), detail)
                } else if let (Some(iif), Some(src), true) = (&ingress.name, query.src, ipv4) {
                    self.source_refusal(src, iif, vrf_oif, kernel.clone())?
                } else {
                    refusal(
                        DropReason::Blackhole,
                        None,
                        "the kernel discards it as for a blackhole route".into(),
                    )
                }
            }
            libc::EHOSTUNREACH => {
                let route = self.covering(dst, netlink::RTN_UNREACHABLE, vrf_table)?;
                let detail = match &route {
                    Some(r) => format!(
                        "unreachable route {}: discarded with ICMP host unreachable",
                        r.prefix
                    ),
                    None => "the kernel answers host unreachable".into(),
                };
                refusal(DropReason::Unreachable, route, detail)
            }
            libc::EACCES | libc::EPERM => {
                let route = self.covering(dst, netlink::RTN_PROHIBIT, vrf_table)?;
                let detail = match &route {
                    Some(r) => format!(
                        "prohibit route {}: discarded with ICMP administratively prohibited",
                        r.prefix
                    ),
                    None => "the kernel answers administratively prohibited".into(),
                };
                refusal(DropReason::Prohibit, route, detail)
            }
            // A throw ends the lookup in its table; with no other table
            // matching, the kernel answers as for no route (IPv4 turns the
            // throw's EAGAIN into ENETUNREACH, IPv6 answers ENETUNREACH).
            libc::ENETUNREACH | libc::EAGAIN => {
                match self.covering(dst, netlink::RTN_THROW, vrf_table)? {
                    Some(route) => {
                        let detail = format!(
                            "throw route {}: the lookup left the table and no other table routes {dst}",
                            route.prefix
                        );
                        refusal(DropReason::Throw, Some(route), detail)
                    }
                    None => refusal(
                        DropReason::NoRoute,
                        None,
                        format!("no route to {dst}, not even a default route"),
                    ),
                }
            }
            _ => {
                return Err(TraceError::netlink(
                    format!("the route lookup for {dst}"),
                    io::Error::from_raw_os_error(errno),
                ));
            }
        })
    }

    /// The route a forwarded flow would have matched, for a drop that
    /// happens before the lookup can name it: the same question asked as if
    /// the switch originated the flow.
    fn would_forward(
        &mut self,
        query: &FlowQuery,
        vrf_oif: Option<u32>,
    ) -> Result<Option<Route>, TraceError> {
        let lookup = RouteGet {
            dst: Some(query.dst),
            oif: vrf_oif,
            proto: query.proto,
            sport: query.sport,
            dport: query.dport,
            fib_match: true,
            ..RouteGet::default()
        };
        Ok(
            match self.ask_route(&lookup, "the matching-route lookup")? {
                Ok(Some(route)) => {
                    let mut route = decode_route(&route);
                    self.name_members(&mut route)?;
                    Some(route)
                }
                _ => None,
            },
        )
    }

    /// An IPv4 transit lookup refused with EINVAL and no blackhole: the
    /// source is one the kernel will not accept on the ingress.
    fn source_refusal(
        &mut self,
        src: IpAddr,
        iif: &str,
        vrf_oif: Option<u32>,
        kernel: Option<String>,
    ) -> Result<Refusal, TraceError> {
        let martian = |detail: String| Refusal {
            reason: DropReason::MartianSource,
            route: None,
            setting: None,
            kernel: kernel.clone(),
            detail,
        };
        if src.is_unspecified() || src.is_multicast() || src.is_loopback() || is_broadcast(src) {
            return Ok(martian(format!(
                "source {src} cannot arrive from outside (zero, loopback, multicast or broadcast)"
            )));
        }
        let back = RouteGet {
            dst: Some(src),
            oif: vrf_oif,
            ..RouteGet::default()
        };
        let back = self.ask_route(&back, "the route back to the source")?;
        if let Ok(Some(route)) = &back
            && route.kind == netlink::RTN_LOCAL
        {
            return Ok(martian(format!(
                "source {src} is an address of this switch, so it cannot arrive on {iif}"
            )));
        }
        let all = self
            .sysctl(&["net", "ipv4", "conf", "all", "rp_filter"])
            .unwrap_or(0);
        let own = self
            .sysctl(&["net", "ipv4", "conf", iif, "rp_filter"])
            .unwrap_or(0);
        // The kernel applies the larger of the two.
        let mode = all.max(own);
        if mode == 0 {
            return Ok(martian(format!("the kernel refuses source {src} on {iif}")));
        }
        let back_by = match &back {
            Ok(Some(route)) => match route.oif {
                Some(index) => match self.names(&[index])?.get(index) {
                    Some(name) => format!("the route back to {src} leaves by {name}"),
                    None => format!("the route back to {src} leaves by ifindex {index}"),
                },
                None => format!("the route back to {src} names no interface"),
            },
            _ => format!("there is no route back to {src}"),
        };
        let words = if mode == 1 { "strict" } else { "loose" };
        let (name, value) = if own >= all { (iif, own) } else { ("all", all) };
        Ok(Refusal {
            reason: DropReason::ReversePathFilter,
            route: None,
            setting: Some(format!("net.ipv4.conf.{name}.rp_filter = {value}")),
            kernel,
            detail: format!("{words} reverse-path filter on {iif}: {back_by}"),
        })
    }

    /// The most specific route of type `kind` that covers `dst`, found by a
    /// dump the kernel filters by type; for a refusal FIB_MATCH cannot explain.
    fn covering(
        &mut self,
        dst: IpAddr,
        kind: u8,
        vrf_table: Option<u32>,
    ) -> Result<Option<Route>, TraceError> {
        let sequence = self.conn.queue_route_dump(dst.is_ipv4(), kind);
        self.send("a route dump")?;
        let mut routes = Vec::new();
        let dumped = self.conn.dump_raw(sequence, |message, payload| {
            if message == netlink::RTM_NEWROUTE
                && let Some(route) = netlink::route_facts(payload)
            {
                routes.push(route);
            }
        });
        match dumped {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Ok(None),
            Err(error) => return Err(TraceError::netlink("reading a route dump", error)),
        }
        let best = routes
            .iter()
            .filter(|route| route.kind == kind)
            .filter(|route| match vrf_table {
                Some(vrf) => route.table == vrf,
                None => route.table != u32::from(LOCAL_TABLE),
            })
            .filter(|route| {
                let prefix = route.destination.unwrap_or(if dst.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                } else {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                });
                prefix_contains(prefix, route.dst_len, dst)
            })
            .max_by_key(|route| {
                (
                    route.dst_len,
                    std::cmp::Reverse(route.priority.unwrap_or(0)),
                )
            });
        Ok(best.map(decode_route))
    }

    fn paths(
        &mut self,
        query: &PathsQuery,
        flows: &[(u16, Option<u16>)],
        place: &Place,
        component: &str,
    ) -> Result<Paths, TraceError> {
        let vrf_oif = match place {
            Place::Device { ifindex, .. } => Some(*ifindex),
            _ => None,
        };
        let ipv4 = query.dst.is_ipv4();
        let as_flow = FlowQuery {
            dst: query.dst,
            src: query.src,
            iif: query.iif.clone(),
            proto: Some(query.proto),
            sport: None,
            dport: None,
            vrf: query.vrf.clone(),
            flowlabel: query.flowlabel,
        };
        let ingress = self.ingress(&as_flow, vrf_oif)?;
        let hash = self.hash_info(
            HashedFlow {
                ipv4,
                forwarded: ingress.index.is_some(),
                proto: Some(query.proto),
                flowlabel: query.flowlabel,
            },
            Instant::now(),
        )?;
        let (first_sport, first_dport) = flows[0];
        let lookup = RouteGet {
            dst: Some(query.dst),
            src: query.src,
            iif: ingress.index,
            oif: vrf_oif,
            proto: Some(query.proto),
            sport: Some(first_sport),
            dport: first_dport,
            flowlabel: query.flowlabel,
            fib_match: true,
        };
        let matched = self.ask_route(&lookup, "the matching-route lookup")?;
        if matches!(matched, Err(libc::EINVAL)) && lookup.flowlabel.is_some() {
            self.check_flowlabel_taken(&lookup)?;
        }
        let mut route = match matched {
            Ok(Some(route)) if route.kind == netlink::RTN_UNICAST => decode_route(&route),
            Ok(None) => {
                return Err(TraceError::netlink(
                    "the matching-route lookup",
                    io::Error::new(io::ErrorKind::InvalidData, "answered with no route"),
                ));
            }
            // Not forwarded (a blackhole, local, no route…): a drop is an
            // answer, as in a trace, and the trace of the first flow says
            // which route or setting stops them all.
            _ => {
                let first = FlowQuery {
                    sport: Some(first_sport),
                    dport: first_dport,
                    ..as_flow
                };
                let traced = self.trace(&first, place, component)?;
                let drop = traced.hops.iter().find(|h| h.kind() == "drop").cloned();
                let Some(drop) = drop.or_else(|| traced.hops.last().cloned()) else {
                    return Err(TraceError::NotForwarded {
                        dst: query.dst,
                        vrf: query.vrf.clone(),
                        reason: "the kernel names no route".into(),
                    });
                };
                let mut answer = paths::dropped(query.clone(), drop, traced.route().cloned());
                answer.ingress_interface = traced.ingress_interface;
                answer.ingress_inferred = traced.ingress_inferred;
                answer.load_share = traced.load_share;
                answer.hash = hash;
                return Ok(answer);
            }
        };
        if !ipv4 {
            route.members.sort_by_key(|m| (m.ifindex, m.next_hop));
        }
        self.name_members(&mut route)?;

        let taken = self.lookup_all(&lookup, flows)?;

        // Tally; a member the FIB entry did not list (a rule sending some
        // ports elsewhere, or the route changing mid-run) joins with weight 0.
        let mut members: Vec<Member> = route.members.clone();
        let mut counts = vec![0u64; members.len()];
        let mut unrouted = 0u64;
        let mut chosen = Vec::with_capacity(flows.len());
        for result in &taken {
            match *result {
                Ok((gateway, oif)) => {
                    let index = members
                        .iter()
                        .position(|m| m.ifindex == oif && m.next_hop == gateway)
                        .or_else(|| {
                            members
                                .iter()
                                .position(|m| m.ifindex == oif && m.next_hop.is_none())
                        })
                        .unwrap_or_else(|| {
                            members.push(Member {
                                next_hop: gateway,
                                interface: None,
                                ifindex: oif,
                                weight: 0,
                                flags: Vec::new(),
                            });
                            counts.push(0);
                            members.len() - 1
                        });
                    counts[index] += 1;
                    chosen.push(Ok(index));
                }
                Err(errno) => {
                    unrouted += 1;
                    chosen.push(Err(errno));
                }
            }
        }
        let unnamed: Vec<u32> = members
            .iter()
            .filter(|m| m.interface.is_none() && m.ifindex != 0)
            .map(|m| m.ifindex)
            .collect();
        if !unnamed.is_empty() {
            let names = self.names(&unnamed)?;
            for member in &mut members {
                if member.interface.is_none() {
                    member.interface = names.get(member.ifindex);
                }
            }
        }
        let detail = query.per_flow.then(|| {
            flows
                .iter()
                .zip(&chosen)
                .map(|(&(sport, dport), chosen)| match chosen {
                    Ok(index) => FlowPath {
                        sport,
                        dport,
                        next_hop: members[*index].next_hop,
                        interface: members[*index].interface.clone(),
                        error: None,
                    },
                    Err(errno) => FlowPath {
                        sport,
                        dport,
                        next_hop: None,
                        interface: None,
                        error: Some(errno_words(*errno)),
                    },
                })
                .collect()
        });
        let load_share = self.load_share(ipv4, Instant::now());
        let mut answer = paths::assemble(
            query.clone(),
            route,
            &members,
            &counts,
            unrouted,
            detail,
            load_share,
            ingress.name,
            ingress.inferred,
        );
        answer.hash = hash;
        Ok(answer)
    }

    /// The member every flow takes: one route lookup per flow, written in
    /// batches and read back by sequence number. A lookup whose answer the
    /// socket had no room for is asked again.
    fn lookup_all(
        &mut self,
        template: &RouteGet,
        flows: &[(u16, Option<u16>)],
    ) -> Result<Vec<Taken>, TraceError> {
        let mut results: Vec<Option<Taken>> = vec![None; flows.len()];
        let mut pending: VecDeque<usize> = (0..flows.len()).collect();
        let mut batch_size = PATHS_BATCH;
        let mut stalls = 0;
        let mut lookup = RouteGet {
            fib_match: false,
            ..template.clone()
        };
        let mut batch = Vec::with_capacity(batch_size);
        while !pending.is_empty() {
            batch.clear();
            let mut first = None;
            while batch.len() < batch_size
                && let Some(index) = pending.pop_front()
            {
                let (sport, dport) = flows[index];
                lookup.sport = Some(sport);
                lookup.dport = dport;
                let sequence = self.conn.queue_route_get(&lookup);
                first.get_or_insert(sequence);
                batch.push(index);
            }
            let first = first.expect("a batch holds at least one lookup");
            self.send("route lookups")?;
            let mut answered = 0;
            let mut overrun = false;
            loop {
                let received = self.conn.recv_raw(|kind, sequence, payload| {
                    let position = sequence.wrapping_sub(first) as usize;
                    let Some(&index) = batch.get(position) else {
                        return;
                    };
                    if results[index].is_some() {
                        return;
                    }
                    let result = match kind {
                        netlink::RTM_NEWROUTE => {
                            netlink::raw_route_member(payload).ok_or(libc::EBADMSG)
                        }
                        netlink::NLMSG_ERROR => Err(netlink::raw_error(payload)),
                        _ => return,
                    };
                    results[index] = Some(result);
                    answered += 1;
                });
                match received {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(error) if error.raw_os_error() == Some(libc::ENOBUFS) => overrun = true,
                    Err(error) => return Err(TraceError::netlink("reading route lookups", error)),
                }
            }
            for &index in &batch {
                if results[index].is_none() {
                    pending.push_back(index);
                }
            }
            if overrun {
                batch_size = (batch_size / 2).max(4);
            }
            if answered == 0 {
                stalls += 1;
                if stalls > PATHS_STALLS {
                    return Err(TraceError::netlink(
                        "route lookups",
                        io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the kernel answered none of a batch, repeatedly",
                        ),
                    ));
                }
            } else {
                stalls = 0;
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every lookup answered"))
            .collect())
    }
}

/// The member one lookup took, as (gateway, output interface), or the
/// errno the kernel refused it with.
type Taken = Result<(Option<IpAddr>, u32), i32>;

/// Names already known and lookups queued for the rest.
#[derive(Debug, Default)]
struct PendingNames {
    known: Names,
    asked: Vec<(u32, u32)>,
}

/// Interface names by index; a trace names a handful, so a list serves.
#[derive(Debug, Default)]
struct Names(Vec<(u32, String)>);

impl Names {
    fn get(&self, index: u32) -> Option<String> {
        self.0
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, n)| n.clone())
    }

    /// Names the members of `route`.
    fn apply(&self, route: &mut Route) {
        for member in &mut route.members {
            member.interface = self.get(member.ifindex);
        }
    }
}

/// The table the kernel keeps local and broadcast addresses in.
const LOCAL_TABLE: u8 = 255;

/// What a refusal found.
struct Refusal {
    reason: DropReason,
    route: Option<Route>,
    setting: Option<String>,
    kernel: Option<String>,
    detail: String,
}

/// A trace being put together hop by hop.
struct Outcome {
    trace: Trace,
    component: String,
}

impl Outcome {
    fn push(&mut self, action: &str, description: String, step: Step) {
        let index = self.trace.hops.len();
        self.trace.hops.push(Hop {
            index,
            component: self.component.clone(),
            action: action.to_string(),
            description,
            step,
        });
    }

    fn prefix(&self) -> String {
        let request = &self.trace.request;
        let mut prefix = request.describe();
        if let Some(iif) = &self.trace.ingress_interface {
            let _ = write!(prefix, " arriving on {iif}");
        }
        prefix
    }

    fn drop(&mut self, refusal: Refusal) {
        let summary = format!(
            "{} is dropped in VRF {}: {}",
            self.prefix(),
            self.trace.request.vrf,
            refusal.detail
        );
        self.push(
            "drop",
            refusal.detail,
            Step::Drop {
                reason: refusal.reason,
                route: refusal.route,
                setting: refusal.setting,
                interface: None,
                neighbor: None,
                kernel_answer: refusal.kernel,
            },
        );
        self.trace.summary = summary;
    }

    fn local(&mut self, route: Route, source_address: Option<IpAddr>, lo: Option<String>) {
        let dst = self.trace.request.dst;
        let what = if route.kind == "broadcast" {
            format!("{dst} is a broadcast address the switch receives")
        } else {
            format!("{dst} is an address of this switch")
        };
        self.push(
            "deliver",
            format!(
                "{} route {} in table {}: {what}",
                route.kind, route.prefix, route.table_name
            ),
            Step::L3Routing {
                route: route.clone(),
                source_address,
            },
        );
        let by = lo.clone().unwrap_or_else(|| "the loopback".into());
        self.push(
            "deliver",
            format!("delivered to the switch itself by {by}"),
            Step::Local {
                interface: lo.clone(),
                route: Some(route),
            },
        );
        self.trace.reaches_destination = true;
        self.trace.egress_interface = lo;
        self.trace.summary = format!("{} is delivered locally: {what}", self.prefix());
    }

    fn forward(
        &mut self,
        route: Route,
        source_address: Option<IpAddr>,
        gateway: Option<IpAddr>,
        egress: Interface,
        neighbour: Option<Neighbor>,
    ) {
        let dst = self.trace.request.dst;
        let out = egress.name.clone();
        self.trace.next_hop = gateway;
        self.trace.egress_interface = Some(out.clone());
        // Written piece by piece into one string: a trace's words cost
        // more than its kernel lookups when each piece is its own string.
        let mut words = String::with_capacity(160);
        let _ = write!(
            words,
            "{} route {} ({}, table {}, metric {}): ",
            route.kind, route.prefix, route.protocol, route.table_name, route.metric
        );
        let _ = match gateway {
            Some(gw) => write!(words, "via {gw} dev {out}"),
            None => write!(words, "directly connected on {out}"),
        };
        if let (Some(i), n) = (route.chosen, route.members.len())
            && n > 1
        {
            let _ = write!(
                words,
                ", member {} of {} (weight {} of {}) chosen by the multipath hash",
                i + 1,
                n,
                route.members[i].weight,
                route.members.iter().map(|m| m.weight).sum::<u32>()
            );
        }
        self.push(
            "forward",
            words,
            Step::L3Routing {
                route,
                source_address,
            },
        );
        if !egress.is_up() {
            let detail = format!(
                "egress interface {out} is down (oper state {}, {}, {})",
                egress.oper_state,
                if egress.admin_up {
                    "admin up"
                } else {
                    "admin down"
                },
                if egress.carrier {
                    "carrier"
                } else {
                    "no carrier"
                }
            );
            self.trace.summary = format!("{} is dropped: {detail}", self.prefix());
            self.push(
                "drop",
                detail,
                Step::Drop {
                    reason: DropReason::EgressDown,
                    route: None,
                    setting: None,
                    interface: Some(egress),
                    neighbor: neighbour,
                    kernel_answer: None,
                },
            );
            return;
        }
        let resolution = if dst.is_ipv4() {
            "ARP"
        } else {
            "neighbour discovery"
        };
        if let Some(neighbour) = neighbour {
            let reason = match neighbour.state.as_str() {
                "failed" => Some(DropReason::NeighborFailed),
                "incomplete" => Some(DropReason::NeighborIncomplete),
                _ => None,
            };
            let who = match gateway {
                Some(gw) => format!("next hop {gw}"),
                None => format!("destination {dst}"),
            };
            if let Some(reason) = reason {
                let detail = match reason {
                    DropReason::NeighborFailed => {
                        format!(
                            "{who} on {out} does not answer {resolution} (neighbour state failed)"
                        )
                    }
                    _ => format!(
                        "{who} on {out} is being resolved by {resolution} and has not answered yet (neighbour state incomplete)"
                    ),
                };
                self.trace.summary = format!("{} is dropped: {detail}", self.prefix());
                self.push(
                    "drop",
                    detail,
                    Step::Drop {
                        reason,
                        route: None,
                        setting: None,
                        interface: Some(egress),
                        neighbor: Some(neighbour),
                        kernel_answer: None,
                    },
                );
                return;
            }
            let description = match &neighbour.lladdr {
                Some(mac) if neighbour.state != "none" => {
                    format!("{who} is at {mac} on {out} ({})", neighbour.state)
                }
                _ => format!(
                    "no neighbour entry for {who} on {out} yet: the first packet starts {resolution}"
                ),
            };
            self.push(
                "resolve",
                description,
                Step::Neighbor {
                    neighbor: neighbour,
                },
            );
        }
        let description = egress_words(&egress);
        self.push("output", description, Step::Egress { interface: egress });
        self.trace.reaches_destination = true;
        let mut summary = self.prefix();
        match gateway {
            Some(gw) => {
                let _ = write!(summary, " leaves by {out} towards next hop {gw}");
                write_member_words(&self.trace, &mut summary);
            }
            None => {
                let _ = write!(
                    summary,
                    " leaves by {out}, where {dst} is directly connected"
                );
            }
        }
        self.trace.summary = summary;
    }

    fn finish(self) -> Trace {
        self.trace
    }
}

/// Appends `, member 2 of 4 of 10.9.0.0/16` when the route is multipath.
fn write_member_words(trace: &Trace, out: &mut String) {
    if let Some(route) = trace.route()
        && route.members.len() > 1
    {
        let _ = match route.chosen {
            Some(i) => write!(
                out,
                ", member {} of {} of {}",
                i + 1,
                route.members.len(),
                route.prefix
            ),
            None => write!(
                out,
                ", one of {} members of {}",
                route.members.len(),
                route.prefix
            ),
        };
    }
}

fn egress_words(interface: &Interface) -> String {
    let mut words = String::with_capacity(128);
    let _ = write!(words, "out {}: {}", interface.name, interface.oper_state);
    if let Some(mtu) = interface.mtu {
        let _ = write!(words, ", mtu {mtu}");
    }
    if let Some(speed) = interface.speed_mbps {
        let _ = write!(words, ", {speed} Mb/s");
    }
    if let Some(c) = interface.counters {
        let _ = write!(
            words,
            ", tx {} packets {} bytes {} errors {} dropped",
            c.tx_packets, c.tx_bytes, c.tx_errors, c.tx_dropped
        );
    }
    words
}

/// Reads a number from an open sysctl file; `pread` at 0 asks the kernel
/// for the current value each time.
fn read_number(file: &File) -> Option<i64> {
    let mut buffer = [0u8; 32];
    let size = file.read_at(&mut buffer, 0).ok()?;
    std::str::from_utf8(&buffer[..size])
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The multipath hash policy in words (see the kernel's ip-sysctl.rst).
pub fn hash_mode(ipv4: bool, policy: u32, fields: Option<u32>) -> String {
    let l3 = if ipv4 {
        "source and destination address"
    } else {
        "source and destination address, flow label, next header"
    };
    match policy {
        0 => format!("L3: {l3}"),
        1 => "L4: source and destination address, protocol, source and destination port".into(),
        2 => format!("L3, of the inner packet for tunnelled traffic: {l3}"),
        3 => {
            const FIELDS: [&str; 12] = [
                "source address",
                "destination address",
                "protocol",
                "flow label",
                "source port",
                "destination port",
                "inner source address",
                "inner destination address",
                "inner protocol",
                "inner flow label",
                "inner source port",
                "inner destination port",
            ];
            match fields {
                Some(mask) => {
                    let named: Vec<&str> = FIELDS
                        .iter()
                        .enumerate()
                        .filter(|(bit, _)| mask & (1 << bit) != 0)
                        .map(|(_, name)| *name)
                        .collect();
                    if named.is_empty() {
                        "custom: no fields (every flow hashes alike)".into()
                    } else {
                        format!("custom: {}", named.join(", "))
                    }
                }
                None => "custom fields (fib_multipath_hash_fields unreadable)".into(),
            }
        }
        other => format!("policy {other}, unknown to hopwatch"),
    }
}

fn is_broadcast(address: IpAddr) -> bool {
    matches!(address, IpAddr::V4(a) if a.is_broadcast())
}

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
fn decode_route(facts: &RouteFacts) -> Route {
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
            flags: next_hop_flags(facts.flags),
        }],
        (true, None) => Vec::new(),
    };
    Route {
        prefix: format!("{destination}/{}", facts.dst_len),
        kind: route_kind(facts.kind),
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
        flags: next_hop_flags(u32::from(hop.flags)),
    }
}

/// `RTNH_F_*` flags in words; a route's header carries them for its one
/// next hop.
fn next_hop_flags(flags: u32) -> Vec<String> {
    [
        (1, "dead"),
        (16, "linkdown"),
        (4, "onlink"),
        (8, "offload"),
        (64, "trap"),
    ]
    .into_iter()
    .filter(|&(flag, _)| flags & flag != 0)
    .map(|(_, name)| name.to_string())
    .collect()
}

/// The route type (`RTN_*`) as `ip route` names it.
pub(crate) fn route_kind(kind: u8) -> String {
    match kind {
        1 => "unicast",
        2 => "local",
        3 => "broadcast",
        4 => "anycast",
        5 => "multicast",
        6 => "blackhole",
        7 => "unreachable",
        8 => "prohibit",
        9 => "throw",
        10 => "nat",
        11 => "xresolve",
        other => return format!("type {other}"),
    }
    .into()
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
fn decode_link(link: &netlink::LinkFacts) -> Interface {
    Interface {
        name: link
            .name
            .clone()
            .unwrap_or_else(|| format!("ifindex {}", link.index)),
        ifindex: link.index,
        oper_state: match link.operstate {
            // IF_OPER_* from RFC 2863, as the kernel numbers them.
            Some(1) => "notpresent",
            Some(2) => "down",
            Some(3) => "lowerlayerdown",
            Some(4) => "testing",
            Some(5) => "dormant",
            Some(6) => "up",
            _ => "unknown",
        }
        .into(),
        admin_up: link.flags & netlink::IFF_UP != 0,
        carrier: link.flags & netlink::IFF_LOWER_UP != 0,
        mtu: link.mtu,
        speed_mbps: None,
        counters: link.counters,
    }
}

fn decode_neighbour(
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
        state: nud_name(entry.state),
        router: entry.router,
    }
}

/// NUD states (`NUD_*`) as `ip neigh` prints them, lower case.
fn nud_name(state: u16) -> String {
    match state {
        0x01 => "incomplete",
        0x02 => "reachable",
        0x04 => "stale",
        0x08 => "delay",
        0x10 => "probe",
        0x20 => "failed",
        0x40 => "noarp",
        0x80 => "permanent",
        0x00 => "none",
        _ => "unknown",
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;
    use netlink_packet_route::route::{
        RouteAddress, RouteAttribute, RouteMessage, RouteNextHop, RouteNextHopFlags, RouteType,
        RouteVia,
    };
    use std::path::Path;

    #[test]
    fn prefixes_contain_their_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(prefix_contains(ip("10.66.1.0"), 24, ip("10.66.1.9")));
        assert!(!prefix_contains(ip("10.66.1.0"), 24, ip("10.66.2.9")));
        assert!(prefix_contains(ip("0.0.0.0"), 0, ip("192.0.2.1")));
        assert!(prefix_contains(ip("10.0.0.1"), 32, ip("10.0.0.1")));
        assert!(prefix_contains(ip("fd66:1::"), 64, ip("fd66:1::9")));
        assert!(!prefix_contains(ip("fd66:1::"), 64, ip("fd66:2::9")));
        assert!(prefix_contains(ip("::"), 0, ip("2001:db8::1")));
        assert!(!prefix_contains(ip("::"), 0, ip("10.0.0.1")));
    }

    #[test]
    fn hash_policies_in_words() {
        assert_eq!(
            hash_mode(true, 0, None),
            "L3: source and destination address"
        );
        assert!(hash_mode(false, 0, None).contains("flow label"));
        assert!(hash_mode(true, 1, None).starts_with("L4:"));
        assert!(hash_mode(true, 2, None).contains("inner"));
        assert_eq!(
            hash_mode(true, 3, Some(0x0037)),
            "custom: source address, destination address, protocol, source port, destination port"
        );
        assert!(hash_mode(true, 3, Some(0)).contains("no fields"));
        assert!(hash_mode(true, 9, None).contains("unknown"));
    }

    #[test]
    fn names_protocols_tables_and_types() {
        assert_eq!(protocol_name(186), "bgp");
        assert_eq!(protocol_name(3), "boot");
        assert_eq!(protocol_name(200), "200");
        assert_eq!(table_name(254), "main");
        assert_eq!(table_name(1001), "1001");
        assert_eq!(route_kind(u8::from(RouteType::BlackHole)), "blackhole");
        assert_eq!(route_kind(0), "type 0");
        assert_eq!(nud_name(0x20), "failed");
    }

    #[test]
    fn multipath_members_carry_weights() {
        let mut hop = RouteNextHop::default();
        hop.hops = 1;
        hop.interface_index = 4;
        hop.flags = RouteNextHopFlags::Linkdown;
        hop.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(
            "10.0.4.2".parse().unwrap(),
        ))];
        // An IPv4 member through an IPv6 next hop, as RFC 5549 routes it.
        let mut via = RouteNextHop::default();
        via.interface_index = 5;
        via.attributes = vec![RouteAttribute::Via(RouteVia::Inet6(
            "fe80::5".parse().unwrap(),
        ))];
        let mut message = RouteMessage::default();
        message.header.address_family = netlink_packet_route::AddressFamily::Inet;
        message.header.kind = RouteType::Unicast;
        message.header.destination_prefix_length = 16;
        message.header.protocol = 186.into();
        message.attributes = vec![
            RouteAttribute::Destination(RouteAddress::Inet("10.9.0.0".parse().unwrap())),
            RouteAttribute::Table(254),
            RouteAttribute::Priority(20),
            RouteAttribute::PrefSource(RouteAddress::Inet("10.0.4.1".parse().unwrap())),
            RouteAttribute::MultiPath(vec![hop, via]),
        ];
        // The bytes the kernel would send, read as a trace reads them.
        let mut bytes = vec![0; message.buffer_len()];
        message.emit(&mut bytes);
        let route = decode_route(&netlink::route_facts(&bytes).expect("a route"));
        assert_eq!(route.prefix, "10.9.0.0/16");
        assert_eq!(route.protocol, "bgp");
        assert_eq!(route.metric, 20);
        assert_eq!(route.table_name, "main");
        assert_eq!(route.preferred_source, Some("10.0.4.1".parse().unwrap()));
        assert_eq!(route.members.len(), 2);
        assert_eq!(route.members[0].weight, 2);
        assert_eq!(route.members[0].flags, ["linkdown"]);
        assert_eq!(route.members[1].weight, 1);
        assert_eq!(route.members[1].ifindex, 5);
        assert!(route.members[1].flags.is_empty());
        assert_eq!(route.members[1].next_hop, Some("fe80::5".parse().unwrap()));
        assert_eq!(
            route.member_of(Some("10.0.4.2".parse().unwrap()), 4),
            Some(0)
        );
    }

    #[test]
    fn traces_the_loopback_of_this_namespace() {
        let mut backend = KernelBackend::new();
        let trace = backend
            .trace(&FlowQuery::new("127.0.0.1".parse().unwrap()))
            .expect("a trace of 127.0.0.1");
        assert!(trace.success);
        assert!(trace.reaches_destination, "{trace:?}");
        assert_eq!(trace.hops.last().unwrap().kind(), "local");
        assert_eq!(trace.next_hop, None);
        assert_eq!(trace.egress_interface.as_deref(), Some("lo"));
        // A second trace reuses the socket kept at home.
        assert!(
            backend
                .trace(&FlowQuery::new("::1".parse().unwrap()))
                .is_ok()
        );
    }

    #[test]
    fn an_unknown_vrf_lists_what_exists() {
        let dir = std::env::temp_dir().join(format!("hopwatch-netns-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("blue")).unwrap();
        let mut backend = KernelBackend::new().with_netns_dir(&dir);
        let mut query = FlowQuery::new("10.0.0.1".parse().unwrap());
        query.vrf = "red".into();
        let error = backend.trace(&query).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!error.is_usage());
        let message = error.to_string();
        assert!(message.contains("no VRF named \"red\""), "{message}");
        assert!(message.contains("blue"), "{message}");
        assert!(message.contains("default"), "{message}");
    }

    /// A namespace standing for a VRF, removed when dropped.
    struct Lab(String);

    impl Lab {
        fn ip(&self, args: &str) {
            let status = std::process::Command::new("ip")
                .args(["-n", &self.0])
                .args(args.split_whitespace())
                .status()
                .expect("ip runs");
            assert!(status.success(), "ip -n {} {args}", self.0);
        }

        fn route_get(&self, args: &str) -> String {
            let output = std::process::Command::new("ip")
                .args(["netns", "exec", &self.0, "ip", "route", "get"])
                .args(args.split_whitespace())
                .output()
                .expect("ip runs");
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
    }

    impl Drop for Lab {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .status();
        }
    }

    /// Needs root and iproute2 to build the namespace; skipped without them.
    #[test]
    fn traces_inside_a_vrf_namespace_as_root() {
        let has_ip = std::process::Command::new("ip").arg("-V").output().is_ok();
        if !nix::unistd::Uid::effective().is_root() || !has_ip {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run this test as root with iproute2"
            );
            eprintln!("skipped: needs root and iproute2 to build a network namespace");
            return;
        }
        let lab = Lab(format!("hopwatch-trace-{}", std::process::id()));
        let created = std::process::Command::new("ip")
            .args(["netns", "add", &lab.0])
            .status()
            .expect("ip runs");
        assert!(created.success());
        lab.ip("link set lo up");
        lab.ip("link add p1 type veth peer name q1");
        lab.ip("link add p2 type veth peer name q2");
        for (dev, addr) in [("p1", "10.1.1.1/24"), ("p2", "10.2.2.1/24")] {
            lab.ip(&format!("addr add {addr} dev {dev}"));
        }
        for dev in ["p1", "q1", "p2", "q2"] {
            lab.ip(&format!("link set {dev} up"));
        }
        lab.ip("route add 10.9.0.0/16 nexthop via 10.1.1.2 weight 1 nexthop via 10.2.2.2 weight 3");
        lab.ip("route add blackhole 10.66.0.0/16");
        let policy = std::process::Command::new("ip")
            .args(["netns", "exec", &lab.0, "sysctl", "-qw"])
            .arg("net.ipv4.fib_multipath_hash_policy=1")
            .status()
            .expect("sysctl runs");
        assert!(policy.success());

        let mut backend = KernelBackend::new();
        let mut query = FlowQuery::new("10.9.3.4".parse().unwrap());
        query.vrf = lab.0.clone();
        query.proto = Some(17);
        query.dport = Some(53);
        for sport in 1000..1040 {
            query.sport = Some(sport);
            let trace = backend.trace(&query).expect("a trace in the namespace");
            let kernel = lab.route_get(&format!("10.9.3.4 ipproto udp sport {sport} dport 53"));
            let expected = format!(
                "via {} dev {}",
                trace.next_hop.expect("a next hop"),
                trace.egress_interface.as_deref().expect("an egress")
            );
            assert!(
                kernel.contains(&expected),
                "{expected:?} against {kernel:?}"
            );
            let route = trace.route().expect("the matching route");
            assert_eq!(route.members.len(), 2);
            assert_eq!(route.members[1].weight, 3);
            let share = trace.load_share.as_ref().expect("the hash policy");
            assert_eq!(share.policy, 1);
        }

        query.dst = "10.66.0.1".parse().unwrap();
        let trace = backend.trace(&query).unwrap();
        assert!(!trace.reaches_destination);
        let (hop, reason) = trace.drop_hop().expect("a drop");
        assert_eq!(reason, DropReason::Blackhole);
        assert!(
            matches!(&hop.step, Step::Drop { route: Some(r), .. } if r.prefix == "10.66.0.0/16")
        );

        let mut spread = PathsQuery::new(
            "10.9.3.4".parse().unwrap(),
            6,
            super::super::SourcePorts::Range(super::super::PortRange {
                first: 2000,
                last: 2399,
            }),
        );
        spread.vrf = lab.0.clone();
        let answer = backend.paths(&spread).expect("paths in the namespace");
        assert_eq!(answer.flows, 400);
        assert_eq!(answer.members.iter().map(|m| m.count).sum::<u64>(), 400);
        assert_eq!(answer.members.len(), 2);

        // A backend whose home is the namespace caches member names; a
        // rename must show in the next trace all the same.
        let handle = File::open(Path::new(NETNS_DIR).join(&lab.0)).unwrap();
        let member_names = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    nix::sched::setns(&handle, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                    let mut home = KernelBackend::new();
                    let mut query = FlowQuery::new("10.9.3.4".parse().unwrap());
                    query.proto = Some(6);
                    let names = |trace: &Trace| -> Vec<String> {
                        let route = trace.route().expect("a route");
                        route
                            .members
                            .iter()
                            .filter_map(|m| m.interface.clone())
                            .collect()
                    };
                    // Flows over both members, so both names are cached;
                    // remember one that leaves by p1.
                    let mut by_p1 = None;
                    let mut before = Vec::new();
                    for sport in 1..40 {
                        query.sport = Some(sport);
                        let trace = home.trace(&query).unwrap();
                        if trace.egress_interface.as_deref() == Some("p1") {
                            by_p1 = Some(sport);
                        }
                        before = names(&trace);
                    }
                    lab.ip("link set p2 down");
                    lab.ip("link set p2 name p2x");
                    lab.ip("link set p2x up");
                    // Leaving by p1, the name p2x can only come from the
                    // cache or a fresh lookup.
                    query.sport = by_p1;
                    let after = names(&home.trace(&query).unwrap());
                    // The egress link is remembered too, all but its
                    // counters; a new MTU must show all the same.
                    let mtu = |trace: &Trace| {
                        trace.hops.iter().find_map(|hop| match &hop.step {
                            Step::Egress { interface } => interface.mtu,
                            _ => None,
                        })
                    };
                    assert_eq!(mtu(&home.trace(&query).unwrap()), Some(1500));
                    lab.ip("link set p1 mtu 1400");
                    assert_eq!(mtu(&home.trace(&query).unwrap()), Some(1400));

                    // The hash policy is trusted for REREAD_AFTER, then read
                    // again; /proc/sys/net opened here is the lab's.
                    let mut namespace =
                        Namespace::open(PathBuf::from("/proc/sys"), PathBuf::from("/sys"), true)
                            .unwrap();
                    let read = Instant::now();
                    let policy = |namespace: &mut Namespace, at| {
                        namespace.load_share(true, at).map(|share| share.policy)
                    };
                    assert_eq!(policy(&mut namespace, read), Some(1));
                    std::fs::write("/proc/sys/net/ipv4/fib_multipath_hash_policy", "0").unwrap();
                    let soon = read + REREAD_AFTER / 2;
                    assert_eq!(policy(&mut namespace, soon), Some(1));
                    assert_eq!(policy(&mut namespace, read + REREAD_AFTER), Some(0));
                    (before, after)
                })
                .join()
                .unwrap()
        });
        assert_eq!(member_names.0, ["p1", "p2"]);
        assert_eq!(member_names.1, ["p1", "p2x"]);
    }

    #[test]
    fn an_unknown_ingress_names_the_interface() {
        let mut query = FlowQuery::new("10.0.0.1".parse().unwrap());
        query.src = Some("10.0.0.2".parse().unwrap());
        query.iif = Some("nosuchif0".into());
        let error = KernelBackend::new().trace(&query).unwrap_err();
        assert!(
            matches!(error, TraceError::UnknownInterface { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("nosuchif0"));
    }
}
