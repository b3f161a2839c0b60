//! The `nxapi` trace backend: on a Nexus switch the kernel's route choice is
//! not necessarily the ASIC's, so the flow is asked of NX-OS itself, the way
//! the flowtracker tool does:
//!
//! 1. `show routing hash <src> <dst> [ip-proto N] [<sport> <dport>] vrf V`
//!    (text) names the load-share mode and the path the hardware hashes the
//!    flow to (`Hashing to path *10.0.0.5`), and usually the `Out Interface`;
//! 2. `show ip route <dst> vrf V` (`show ipv6 route` for IPv6; JSON) gives
//!    the route: prefix, owner (`clientname`), preference and metric, and
//!    every ECMP path with its interface;
//! 3. `show interface <out>` (JSON) gives the egress interface's state and
//!    counters.
//!
//! The answer has the kernel backend's shape: an `l3_routing` hop, then an
//! `egress` hop, or a `local` or `drop` hop. NX-OS hashes on the source
//! address, so a query must name one. The neighbour entry is not asked: the
//! hardware forwards on its own adjacency table, which `show ip arp` does
//! not speak for.

use super::paths::{self, FlowPath, Paths, PathsQuery};
use super::{
    Backend, Counters, DropReason, FlowQuery, Hop, Interface, LoadShare, Member, Route, Step,
    Trace, TraceError,
};
use crate::nxapi::{Client, NxapiError, Rows, Text, number, nxos_name};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long one NX-API command may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Answers flow queries from NX-OS through the local NX-API socket.
#[derive(Debug)]
pub struct NxapiBackend {
    client: Client,
    switch: String,
}

impl NxapiBackend {
    pub fn new(socket: impl Into<PathBuf>, user: &str) -> NxapiBackend {
        NxapiBackend {
            client: Client::new(socket, user, TIMEOUT),
            switch: crate::config::hostname(),
        }
    }

    fn ask<T: serde::de::DeserializeOwned>(&mut self, command: &str) -> Result<T, TraceError> {
        self.client.show(command).map_err(nxapi_error)
    }

    /// The route to `dst` in `vrf`, `None` when NX-OS has none.
    fn route(&mut self, dst: IpAddr, vrf: &str) -> Result<Option<Route>, TraceError> {
        let family = if dst.is_ipv4() { "ip" } else { "ipv6" };
        let command = format!("show {family} route {dst} vrf {vrf}");
        match self.client.show::<ShowRoute>(&command) {
            Ok(answer) => Ok(answer.into_route(vrf)),
            // NX-OS answers a destination it has no route to with an error
            // on some releases and an empty table on others.
            Err(NxapiError::Command { message, .. }) if is_no_route(&message) => Ok(None),
            Err(error) => Err(nxapi_error(error)),
        }
    }

    fn interface(&mut self, name: &str) -> Result<Option<Interface>, TraceError> {
        let answer: ShowInterface = self.ask(&format!("show interface {name}"))?;
        Ok(answer
            .table
            .rows
            .0
            .into_iter()
            .next()
            .map(InterfaceRow::into_interface))
    }

    /// The path the hardware hashes one flow to.
    fn hash(&mut self, query: &FlowQuery) -> Result<Hash, TraceError> {
        let src = query.src.ok_or_else(|| {
            TraceError::InvalidQuery(
                "the nxapi backend asks `show routing hash`, which hashes on the source address: give --src".into(),
            )
        })?;
        let mut command = format!("show routing hash {src} {}", query.dst);
        if let Some(proto) = query.proto {
            command.push_str(&format!(" ip-proto {proto}"));
            if let (Some(sport), Some(dport)) = (query.sport, query.dport) {
                command.push_str(&format!(" {sport} {dport}"));
            }
        }
        command.push_str(&format!(" vrf {}", query.vrf));
        let text = match self.client.show_text(&command) {
            Ok(text) => text,
            Err(NxapiError::Command { message, .. }) if is_no_route(&message) => {
                return Ok(Hash::default());
            }
            Err(error) => return Err(nxapi_error(error)),
        };
        Ok(parse_hash(&text))
    }
}

impl Backend for NxapiBackend {
    fn name(&self) -> &'static str {
        "nxapi"
    }

    fn trace(&mut self, query: &FlowQuery) -> Result<Trace, TraceError> {
        let started = Instant::now();
        query.validate()?;
        refuse_flowlabel(query.flowlabel)?;
        let hash = self.hash(query)?;
        let route = self.route(query.dst, &query.vrf)?;
        let mut outcome = Outcome::new(query, &self.switch, &hash);
        match classify(query.dst, &hash, route) {
            Path::NoRoute => outcome.drop(
                DropReason::NoRoute,
                None,
                format!("no route to {} in VRF {}", query.dst, query.vrf),
                None,
            ),
            Path::Null(route) => outcome.drop(
                DropReason::Blackhole,
                Some(route.clone()),
                format!("route {} points to Null0: discarded", route.prefix),
                None,
            ),
            Path::Local(route) => outcome.local(route),
            Path::Forward {
                route,
                next_hop,
                out,
            } => {
                let interface = match &out {
                    Some(name) => self.interface(name)?,
                    None => None,
                };
                outcome.forward(route, next_hop, out, interface);
            }
        }
        let mut trace = outcome.trace;
        trace.elapsed_us = started.elapsed().as_micros() as u64;
        Ok(trace)
    }

    fn paths(&mut self, query: &PathsQuery) -> Result<Paths, TraceError> {
        let started = Instant::now();
        query.validate()?;
        refuse_flowlabel(query.flowlabel)?;
        let route = self.route(query.dst, &query.vrf)?;
        let Some(route) = route.filter(|route| !route.members.is_empty()) else {
            // Nothing to spread over (no route, Null0): a drop is an
            // answer, as in a trace, which names it.
            let (sport, dport) = query.flows()?[0];
            let traced = self.trace(&FlowQuery {
                dst: query.dst,
                src: query.src,
                iif: query.iif.clone(),
                proto: Some(query.proto),
                sport: Some(sport),
                dport,
                vrf: query.vrf.clone(),
                flowlabel: None,
            })?;
            let Some(drop) = traced.hops.iter().find(|h| h.kind() == "drop").cloned() else {
                return Err(TraceError::NotForwarded {
                    dst: query.dst,
                    vrf: query.vrf.clone(),
                    reason: "NX-OS names no path to it".into(),
                });
            };
            let mut answer = paths::dropped(query.clone(), drop, traced.route().cloned());
            answer.load_share = traced.load_share;
            answer.switch = self.switch.clone();
            answer.elapsed_us = started.elapsed().as_micros() as u64;
            return Ok(answer);
        };
        let mut counts = vec![0u64; route.members.len()];
        let mut unrouted = 0;
        let mut detail = query.per_flow.then(Vec::new);
        let mut load_share = None;
        for (sport, dport) in query.flows()? {
            let flow = FlowQuery {
                dst: query.dst,
                src: query.src,
                iif: query.iif.clone(),
                proto: Some(query.proto),
                sport: Some(sport),
                dport,
                vrf: query.vrf.clone(),
                flowlabel: None,
            };
            let hash = self.hash(&flow)?;
            if load_share.is_none() {
                load_share = hash.load_share();
            }
            let member = hash.next_hop.as_deref().and_then(|hop| {
                route.members.iter().position(|m| {
                    m.next_hop.is_some_and(|ip| ip.to_string() == hop)
                        || (m.next_hop.is_none()
                            && m.interface.as_deref()
                                == hash.out_if.as_deref().map(nxos_name).as_deref())
                })
            });
            match member {
                Some(i) => counts[i] += 1,
                None => unrouted += 1,
            }
            if let Some(detail) = &mut detail {
                let chosen = member.map(|i| &route.members[i]);
                detail.push(FlowPath {
                    sport,
                    dport,
                    next_hop: chosen.and_then(|m| m.next_hop),
                    interface: chosen.and_then(|m| m.interface.clone()),
                    error: member.is_none().then(|| {
                        format!(
                            "NX-OS hashed the flow to {}, which is not a path of {}",
                            hash.next_hop.as_deref().unwrap_or("no path"),
                            route.prefix
                        )
                    }),
                });
            }
        }
        let members = route.members.clone();
        let mut answer = paths::assemble(
            query.clone(),
            route,
            &members,
            &counts,
            unrouted,
            detail,
            load_share,
            query.iif.as_deref().map(nxos_name),
            false,
        );
        answer.switch = self.switch.clone();
        answer.elapsed_us = started.elapsed().as_micros() as u64;
        Ok(answer)
    }
}

/// `show routing hash` takes no flow label, so the hardware's answer
/// cannot be asked for one. The answers carry no `hash` section either:
/// NX-OS hashes the flow as the ASIC does, and no packet brings its own hash
/// into that, so the kernel's caveats do not apply.
fn refuse_flowlabel(label: Option<u32>) -> Result<(), TraceError> {
    match label {
        Some(label) => Err(TraceError::InvalidQuery(format!(
            "the nxapi backend asks `show routing hash`, which takes no flow label; drop --flowlabel {label} or give --backend kernel"
        ))),
        None => Ok(()),
    }
}

fn nxapi_error(error: NxapiError) -> TraceError {
    TraceError::Nxapi(error.to_string())
}

fn is_no_route(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("route not found") || message.contains("no route")
}

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
    fn load_share(&self) -> Option<LoadShare> {
        self.load_share_mode.as_ref().map(|mode| LoadShare {
            setting: "ip load-sharing".into(),
            policy: u32::from(mode.contains("port")),
            mode: mode.clone(),
        })
    }

    fn egress(&self) -> Option<String> {
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

/// Where the flow goes, from the two answers.
enum Path {
    NoRoute,
    Null(Route),
    Local(Route),
    Forward {
        route: Route,
        /// `None` when the destination is directly attached.
        next_hop: Option<IpAddr>,
        out: Option<String>,
    },
}

fn classify(dst: IpAddr, hash: &Hash, route: Option<Route>) -> Path {
    let Some(mut route) = route else {
        return Path::NoRoute;
    };
    let hop = hash.next_hop.as_deref().unwrap_or("");
    let chosen_if = hash.egress().map(|name| nxos_name(&name));
    let is_null = |name: &str| name.eq_ignore_ascii_case("null0");
    if is_null(hop)
        || chosen_if.as_deref().is_some_and(is_null)
        || (!route.members.is_empty()
            && route
                .members
                .iter()
                .all(|m| m.interface.as_deref().is_some_and(is_null)))
    {
        route.kind = "blackhole".into();
        return Path::Null(route);
    }
    if hop.starts_with("sup-") || route.kind == "local" {
        route.kind = "local".into();
        return Path::Local(route);
    }
    let next_hop: Option<IpAddr> = hop.parse().ok().filter(|ip| *ip != dst);
    route.chosen = route.members.iter().position(|m| {
        (next_hop.is_some() && m.next_hop == next_hop)
            || (next_hop.is_none() && chosen_if.is_some() && m.interface == chosen_if)
    });
    if route.chosen.is_none() && route.members.len() == 1 {
        route.chosen = Some(0);
    }
    let out = chosen_if.or_else(|| {
        route
            .chosen
            .and_then(|i| route.members[i].interface.clone())
    });
    Path::Forward {
        route,
        next_hop,
        out,
    }
}

/// Builds the trace hop by hop.
struct Outcome {
    trace: Trace,
    component: String,
}

impl Outcome {
    fn new(query: &FlowQuery, switch: &str, hash: &Hash) -> Outcome {
        Outcome {
            component: format!("{switch}/{}", query.vrf),
            trace: Trace {
                request: query.clone(),
                success: true,
                reaches_destination: false,
                next_hop: None,
                egress_interface: None,
                ingress_interface: query.iif.as_deref().map(nxos_name),
                ingress_inferred: false,
                hops: Vec::new(),
                summary: String::new(),
                switch: switch.to_string(),
                backend: "nxapi".into(),
                load_share: hash.load_share(),
                elapsed_us: 0,
                hash: None,
            },
        }
    }

    fn push(&mut self, action: &str, description: String, step: Step) {
        let index = self.trace.hops.len();
        self.trace.hops.push(Hop {
            index,
            component: self.component.clone(),
            action: action.into(),
            description,
            step,
        });
    }

    fn drop(
        &mut self,
        reason: DropReason,
        route: Option<Route>,
        detail: String,
        interface: Option<Interface>,
    ) {
        self.trace.summary = format!(
            "{} is dropped in VRF {}: {detail}",
            self.trace.request.describe(),
            self.trace.request.vrf
        );
        self.push(
            "drop",
            detail,
            Step::Drop {
                reason,
                route,
                setting: None,
                interface,
                neighbor: None,
                kernel_answer: None,
            },
        );
    }

    fn local(&mut self, route: Route) {
        let dst = self.trace.request.dst;
        self.push(
            "deliver",
            format!(
                "{} route {} in VRF {}: {dst} is an address of this switch",
                route.protocol, route.prefix, route.table_name
            ),
            Step::L3Routing {
                route: route.clone(),
                source_address: None,
            },
        );
        self.push(
            "deliver",
            "delivered to the switch's supervisor".into(),
            Step::Local {
                interface: None,
                route: Some(route),
            },
        );
        self.trace.reaches_destination = true;
        self.trace.summary = format!(
            "{} is delivered to this switch",
            self.trace.request.describe()
        );
    }

    fn forward(
        &mut self,
        route: Route,
        next_hop: Option<IpAddr>,
        out: Option<String>,
        interface: Option<Interface>,
    ) {
        let members = route.members.len();
        let chosen = match (route.chosen, members) {
            (Some(i), n) if n > 1 => format!(", member {} of {n}", i + 1),
            _ => String::new(),
        };
        let via = match next_hop {
            Some(hop) => format!("via {hop}"),
            None => "directly attached".into(),
        };
        let out_name = interface
            .as_ref()
            .map(|i| i.name.clone())
            .or(out.clone())
            .unwrap_or_else(|| "an interface NX-OS did not name".into());
        self.push(
            "forward",
            format!(
                "{} route {} [{}] {via} out {out_name}{chosen}",
                route.protocol, route.prefix, route.metric
            ),
            Step::L3Routing {
                route: route.clone(),
                source_address: None,
            },
        );
        self.trace.next_hop = next_hop;
        self.trace.egress_interface = Some(out_name.clone());
        match interface {
            Some(interface) if !interface.is_up() => {
                let detail = format!(
                    "the egress interface {} is {}",
                    interface.name, interface.oper_state
                );
                self.drop(DropReason::EgressDown, Some(route), detail, Some(interface));
            }
            Some(interface) => {
                let words = format!(
                    "out {}: {}{}",
                    interface.name,
                    interface.oper_state,
                    interface
                        .speed_mbps
                        .map(|s| format!(", {s} Mb/s"))
                        .unwrap_or_default()
                );
                self.push("output", words, Step::Egress { interface });
                self.finish_forwarded(&out_name, next_hop, &chosen, &route.prefix);
            }
            None => self.finish_forwarded(&out_name, next_hop, &chosen, &route.prefix),
        }
    }

    fn finish_forwarded(
        &mut self,
        out: &str,
        next_hop: Option<IpAddr>,
        chosen: &str,
        prefix: &str,
    ) {
        self.trace.reaches_destination = true;
        let dst = self.trace.request.dst;
        self.trace.summary = match next_hop {
            Some(hop) => format!(
                "{} leaves by {out} towards {hop}{}",
                self.trace.request.describe(),
                if chosen.is_empty() {
                    String::new()
                } else {
                    format!("{chosen} of {prefix}")
                }
            ),
            None => format!(
                "{} leaves by {out}, where {dst} is directly attached",
                self.trace.request.describe()
            ),
        };
    }
}

/// `show ip route` / `show ipv6 route`, as JSON.
#[derive(Debug, Deserialize)]
struct ShowRoute {
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
    fn into_route(self, vrf: &str) -> Option<Route> {
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
                "local".into()
            } else {
                "unicast".into()
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
struct ShowInterface {
    #[serde(rename = "TABLE_interface", default)]
    table: InterfaceTable,
}

#[derive(Debug, Default, Deserialize)]
struct InterfaceTable {
    #[serde(rename = "ROW_interface", default)]
    rows: Rows<InterfaceRow>,
}

#[derive(Debug, Deserialize)]
struct InterfaceRow {
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
    fn into_interface(self) -> Interface {
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
            oper_state: oper.clone().unwrap_or_else(|| "unknown".into()),
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
    fn a_flow_label_is_refused_as_usage() {
        assert!(refuse_flowlabel(None).is_ok());
        let error = refuse_flowlabel(Some(7)).unwrap_err();
        assert!(error.is_usage());
        assert!(error.to_string().contains("--backend kernel"), "{error}");
    }

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
