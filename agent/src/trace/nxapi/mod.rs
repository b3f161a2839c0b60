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

mod show;

pub use show::{Hash, parse_hash};

use super::outcome::{Dropped, Outcome};
use super::paths::{self, FlowPath, Paths, PathsQuery};
use super::{
    Action, Backend, DropReason, FlowQuery, HopKind, HopQuery, Interface, Route, RouteKind, Trace,
    TraceError,
};
use crate::nxapi::{Client, NxapiError, nxos_name};
use show::{InterfaceRow, ShowInterface, ShowRoute};
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
            switch: crate::host::hostname(),
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
        let path = classify(query.dst, &hash, route);
        let egress = match &path {
            Path::Forward {
                out: Some(name), ..
            } => self.interface(name)?,
            _ => None,
        };
        let mut trace = answer(query, &self.switch, &hash, path, egress);
        trace.elapsed_us = started.elapsed().as_micros() as u64;
        Ok(trace)
    }

    /// `show routing hash` takes no ingress interface, so the hardware's
    /// answer cannot be asked for a flow arriving on one: refused rather
    /// than answered as if the switch originated it.
    fn hop(&mut self, query: &HopQuery) -> Result<Trace, TraceError> {
        Err(TraceError::Nxapi(format!(
            "the nxapi backend cannot trace a flow arriving on {}: `show routing hash` takes no ingress interface; set [agent] trace_backend = \"kernel\" to answer fabric-trace hops",
            query.ingress
        )))
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
            let Some(drop) = traced
                .hops
                .iter()
                .find(|h| h.kind() == HopKind::Drop)
                .cloned()
            else {
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
        route.kind = RouteKind::Blackhole;
        return Path::Null(route);
    }
    if hop.starts_with("sup-") || route.kind == RouteKind::Local {
        route.kind = RouteKind::Local;
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

/// The trace of one flow from NX-OS's answers, in NX-OS's words.
fn answer(
    query: &FlowQuery,
    switch: &str,
    hash: &Hash,
    path: Path,
    egress: Option<Interface>,
) -> Trace {
    let mut out = Outcome::new(query, switch, "nxapi").hashed(hash.load_share(), None);
    out.trace.ingress_interface = query.iif.as_deref().map(nxos_name);
    match path {
        Path::NoRoute => drop(
            &mut out,
            Dropped::new(
                DropReason::NoRoute,
                format!("no route to {} in VRF {}", query.dst, query.vrf),
            ),
        ),
        Path::Null(route) => drop(
            &mut out,
            Dropped {
                route: Some(route.clone()),
                ..Dropped::new(
                    DropReason::Blackhole,
                    format!("route {} points to Null0: discarded", route.prefix),
                )
            },
        ),
        Path::Local(route) => {
            let dst = query.dst;
            let routing = format!(
                "{} route {} in VRF {}: {dst} is an address of this switch",
                route.protocol, route.prefix, route.table_name
            );
            let summary = format!("{} is delivered to this switch", query.describe());
            out.deliver(
                route,
                None,
                None,
                [routing, "delivered to the switch's supervisor".into()],
                summary,
            );
        }
        Path::Forward {
            route,
            next_hop,
            out: name,
        } => forward(&mut out, route, next_hop, name, egress),
    }
    out.finish()
}

fn drop(out: &mut Outcome, dropped: Dropped) {
    let summary = format!(
        "{} is dropped in VRF {}: {}",
        out.trace.request.describe(),
        out.trace.request.vrf,
        dropped.detail
    );
    out.drop(summary, dropped);
}

fn forward(
    out: &mut Outcome,
    route: Route,
    next_hop: Option<IpAddr>,
    name: Option<String>,
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
        .or(name)
        .unwrap_or_else(|| "an interface NX-OS did not name".into());
    let words = format!(
        "{} route {} [{}] {via} out {out_name}{chosen}",
        route.protocol, route.prefix, route.metric
    );
    out.routed(Action::Forward, words, route.clone(), None);
    out.trace.next_hop = next_hop;
    out.trace.egress_interface = Some(out_name.clone());
    match interface {
        Some(interface) if !interface.is_up() => {
            let detail = format!(
                "the egress interface {} is {}",
                interface.name, interface.oper_state
            );
            let dropped = Dropped {
                route: Some(route),
                interface: Some(interface),
                ..Dropped::new(DropReason::EgressDown, detail)
            };
            drop(out, dropped);
            return;
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
            out.output(words, interface);
        }
        None => out.trace.reaches_destination = true,
    }
    let request = &out.trace.request;
    let dst = request.dst;
    out.trace.summary = match next_hop {
        Some(hop) => format!(
            "{} leaves by {out_name} towards {hop}{}",
            request.describe(),
            if chosen.is_empty() {
                String::new()
            } else {
                format!("{chosen} of {}", route.prefix)
            }
        ),
        None => format!(
            "{} leaves by {out_name}, where {dst} is directly attached",
            request.describe()
        ),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_label_is_refused_as_usage() {
        assert!(refuse_flowlabel(None).is_ok());
        let error = refuse_flowlabel(Some(7)).unwrap_err();
        assert!(error.is_usage());
        assert!(error.to_string().contains("--backend kernel"), "{error}");
    }
}
