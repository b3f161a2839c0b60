//! The hops of a kernel trace, chosen from the facts the kernel returned and
//! nothing else: the lookup's answer or refusal, the settings and routes
//! behind a refusal, the egress link's state and the next hop's neighbour
//! entry. No socket or file is touched here, so every drop reason is decided
//! (and tested) without a kernel; [`super::refusal`] and the trace in
//! [`super`] gather the facts.

use super::super::outcome::{Dropped, Outcome};
use super::super::{
    Action, DropReason, Interface, Neighbor, NeighborState, Route, RouteKind, Step, Trace,
};
use super::super::{FlowQuery, TraceError};
use nix::libc;
use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;

/// What the kernel said about one flow.
#[derive(Debug)]
pub(super) enum Facts {
    /// The kernel refused the lookup.
    Refused(RefusalFacts),
    /// The destination is an address of the switch (or a broadcast it
    /// receives); `lo` is the interface the answer names.
    Local {
        route: Route,
        source_address: Option<IpAddr>,
        lo: Option<String>,
    },
    /// The lookup chose a member of `route`.
    Routed(Routed),
}

/// A lookup that chose a member.
#[derive(Debug)]
pub(super) struct Routed {
    pub route: Route,
    pub source_address: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
    /// For an IPv6 flow arriving on an interface: whether it forwards,
    /// which IPv6 decides only when it forwards a packet, not in the lookup.
    pub ipv6_forwarding: Option<Ipv6Forwarding>,
    /// The egress link and the neighbour entry a packet would use; `None`
    /// when the flow is stopped before they matter (the ingress does not
    /// forward) and so were not asked. The neighbour is `None` where
    /// nothing is resolved (multicast, NOARP and loopback links).
    pub egress: Option<(Interface, Option<Neighbor>)>,
}

/// The settings `ip6_forward()` reads for a flow arriving on `ingress`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ipv6Forwarding {
    pub ingress: String,
    /// `net.ipv6.conf.all.forwarding`.
    pub all: Option<i64>,
    /// `net.ipv6.conf.<ingress>.force_forwarding`.
    pub forced: Option<i64>,
}

impl Ipv6Forwarding {
    pub fn forwards(&self) -> bool {
        self.all != Some(0) || self.forced == Some(1)
    }
}

/// What was asked after the kernel refused a lookup with `errno`.
#[derive(Debug, Default)]
pub(super) struct RefusalFacts {
    pub errno: i32,
    /// `net.ipv4.conf.<ingress>.forwarding`, read when an IPv4 flow arriving
    /// on an interface is refused as unreachable (which IPv4 answers,
    /// whatever the route, when the ingress does not forward).
    pub forwarding: Option<i64>,
    /// The route the flow matched, or would have matched had the switch
    /// originated it: read when the ingress does not forward.
    pub matched: Option<Route>,
    /// The most specific route of the type the errno points to (blackhole,
    /// unreachable, prohibit or throw) that covers the destination.
    pub covering: Option<Route>,
    /// For an IPv4 flow arriving on an interface, refused as for a
    /// blackhole that no route explains: what the kernel holds of its source.
    pub source: Option<SourceFacts>,
}

/// What the kernel holds of a transit flow's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SourceFacts {
    pub back: Back,
    /// `net.ipv4.conf.all.rp_filter` and the ingress' own.
    pub rp_filter_all: i64,
    pub rp_filter_own: i64,
}

/// The route back to a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Back {
    /// The source is an address of the switch.
    Local,
    /// It leaves by this interface (its name, or `ifindex N`).
    By(String),
    /// The route names no interface.
    NoInterface,
    /// There is none.
    NoRoute,
}

/// Whether `src` can never arrive from outside: zero, loopback, multicast
/// or broadcast.
pub(super) fn cannot_arrive(src: IpAddr) -> bool {
    src.is_unspecified()
        || src.is_multicast()
        || src.is_loopback()
        || matches!(src, IpAddr::V4(a) if a.is_broadcast())
}

/// The kernel's words for an errno, as `ip` prints them: `Network is unreachable`.
pub(super) fn errno_words(errno: i32) -> String {
    nix::errno::Errno::from_raw(errno).desc().to_string()
}

/// The hops `facts` lead to, appended to `out`.
pub(super) fn choose(mut out: Outcome, facts: Facts) -> Result<Trace, TraceError> {
    match facts {
        Facts::Refused(facts) => {
            let request = &out.trace.request;
            let dropped = refusal(request, out.trace.ingress_interface.as_deref(), facts)?;
            let summary = format!(
                "{} is dropped in VRF {}: {}",
                prefix(&out.trace),
                request.vrf,
                dropped.detail
            );
            out.drop(summary, dropped);
        }
        Facts::Local {
            route,
            source_address,
            lo,
        } => local(&mut out, route, source_address, lo),
        Facts::Routed(routed) => forward(&mut out, routed)?,
    }
    Ok(out.finish())
}

/// Why the kernel refused a lookup, and the route or setting behind it.
fn refusal(
    request: &FlowQuery,
    ingress: Option<&str>,
    facts: RefusalFacts,
) -> Result<Dropped, TraceError> {
    let RefusalFacts {
        errno,
        forwarding,
        matched,
        covering,
        source,
    } = facts;
    let kernel = Some(errno_words(errno));
    let ipv4 = request.dst.is_ipv4();
    let dst = request.dst;
    let refusal = |reason, route: Option<Route>, detail: String| Dropped {
        route,
        kernel_answer: kernel.clone(),
        ..Dropped::new(reason, detail)
    };
    if errno == libc::EHOSTUNREACH
        && ipv4
        && let Some(iif) = ingress
        && forwarding == Some(0)
    {
        return Ok(Dropped {
            setting: Some(format!("net.ipv4.conf.{iif}.forwarding = 0")),
            ..refusal(
                DropReason::ForwardingDisabled,
                matched,
                format!("{iif} does not forward IPv4: net.ipv4.conf.{iif}.forwarding is 0"),
            )
        });
    }
    Ok(match errno {
        libc::EINVAL => {
            if let Some(route) = covering {
                let detail = format!("blackhole route {}: discarded silently", route.prefix);
                refusal(DropReason::Blackhole, Some(route), detail)
            } else if let (Some(iif), Some(src), true) = (ingress, request.src, ipv4) {
                Dropped {
                    kernel_answer: kernel.clone(),
                    ..source_refusal(src, iif, source)
                }
            } else {
                refusal(
                    DropReason::Blackhole,
                    None,
                    "the kernel discards it as for a blackhole route".into(),
                )
            }
        }
        libc::EHOSTUNREACH => {
            let detail = match &covering {
                Some(r) => format!(
                    "unreachable route {}: discarded with ICMP host unreachable",
                    r.prefix
                ),
                None => "the kernel answers host unreachable".into(),
            };
            refusal(DropReason::Unreachable, covering, detail)
        }
        libc::EACCES | libc::EPERM => {
            let detail = match &covering {
                Some(r) => format!(
                    "prohibit route {}: discarded with ICMP administratively prohibited",
                    r.prefix
                ),
                None => "the kernel answers administratively prohibited".into(),
            };
            refusal(DropReason::Prohibit, covering, detail)
        }
        // A throw ends the lookup in its table; with no other table
        // matching, the kernel answers as for no route (IPv4 turns the
        // throw's EAGAIN into ENETUNREACH, IPv6 answers ENETUNREACH).
        libc::ENETUNREACH | libc::EAGAIN => match covering {
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
        },
        _ => {
            return Err(TraceError::netlink(
                format!("the route lookup for {dst}"),
                io::Error::from_raw_os_error(errno),
            ));
        }
    })
}

/// An IPv4 transit lookup refused with EINVAL and no blackhole: the source
/// is one the kernel will not accept on the ingress.
fn source_refusal(src: IpAddr, iif: &str, source: Option<SourceFacts>) -> Dropped {
    let martian = |detail: String| Dropped::new(DropReason::MartianSource, detail);
    if cannot_arrive(src) {
        return martian(format!(
            "source {src} cannot arrive from outside (zero, loopback, multicast or broadcast)"
        ));
    }
    let SourceFacts {
        back,
        rp_filter_all: all,
        rp_filter_own: own,
    } = source.unwrap_or(SourceFacts {
        back: Back::NoRoute,
        rp_filter_all: 0,
        rp_filter_own: 0,
    });
    if back == Back::Local {
        return martian(format!(
            "source {src} is an address of this switch, so it cannot arrive on {iif}"
        ));
    }
    // The kernel applies the larger of the two.
    let mode = all.max(own);
    if mode == 0 {
        return martian(format!("the kernel refuses source {src} on {iif}"));
    }
    let back_by = match back {
        Back::By(name) => format!("the route back to {src} leaves by {name}"),
        Back::NoInterface => format!("the route back to {src} names no interface"),
        Back::Local | Back::NoRoute => format!("there is no route back to {src}"),
    };
    let words = if mode == 1 { "strict" } else { "loose" };
    let (name, value) = if own >= all { (iif, own) } else { ("all", all) };
    Dropped {
        setting: Some(format!("net.ipv4.conf.{name}.rp_filter = {value}")),
        ..Dropped::new(
            DropReason::ReversePathFilter,
            format!("{words} reverse-path filter on {iif}: {back_by}"),
        )
    }
}

/// The request and where it arrives: `tcp 10.0.0.1:1234 -> 10.1.0.9:80 arriving on eth1`.
fn prefix(trace: &Trace) -> String {
    let mut prefix = trace.request.describe();
    if let Some(iif) = &trace.ingress_interface {
        let _ = write!(prefix, " arriving on {iif}");
    }
    prefix
}

fn local(out: &mut Outcome, route: Route, source_address: Option<IpAddr>, lo: Option<String>) {
    let dst = out.trace.request.dst;
    let what = if route.kind == RouteKind::Broadcast {
        format!("{dst} is a broadcast address the switch receives")
    } else {
        format!("{dst} is an address of this switch")
    };
    let routing = format!(
        "{} route {} in table {}: {what}",
        route.kind, route.prefix, route.table_name
    );
    let by = lo.clone().unwrap_or_else(|| "the loopback".into());
    let summary = format!("{} is delivered locally: {what}", prefix(&out.trace));
    out.deliver(
        route,
        source_address,
        lo,
        [routing, format!("delivered to the switch itself by {by}")],
        summary,
    );
}

fn forward(out: &mut Outcome, routed: Routed) -> Result<(), TraceError> {
    let Routed {
        route,
        source_address,
        gateway,
        ipv6_forwarding,
        egress,
    } = routed;
    if let Some(forwarding) = ipv6_forwarding.filter(|f| !f.forwards()) {
        let iif = &forwarding.ingress;
        let dropped = Dropped {
            route: Some(route),
            setting: Some("net.ipv6.conf.all.forwarding = 0".into()),
            ..Dropped::new(
                DropReason::ForwardingDisabled,
                format!(
                    "{iif} does not forward IPv6: net.ipv6.conf.all.forwarding is 0 and {iif} has no force_forwarding"
                ),
            )
        };
        let summary = format!(
            "{} is dropped in VRF {}: {}",
            prefix(&out.trace),
            out.trace.request.vrf,
            dropped.detail
        );
        out.drop(summary, dropped);
        return Ok(());
    }
    let Some((egress, neighbour)) = egress else {
        return Err(TraceError::netlink(
            "the egress lookup",
            io::Error::new(
                io::ErrorKind::NotFound,
                "a forwarded flow with no egress link",
            ),
        ));
    };
    let dst = out.trace.request.dst;
    let name = egress.name.clone();
    out.trace.next_hop = gateway;
    out.trace.egress_interface = Some(name.clone());
    out.routed(
        Action::Forward,
        route_words(&route, gateway, &name),
        route,
        source_address,
    );
    if !egress.is_up() {
        let detail = format!(
            "egress interface {name} is down (oper state {}, {}, {})",
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
        let summary = format!("{} is dropped: {detail}", prefix(&out.trace));
        let dropped = Dropped {
            interface: Some(egress),
            neighbor: neighbour,
            ..Dropped::new(DropReason::EgressDown, detail)
        };
        out.drop(summary, dropped);
        return Ok(());
    }
    let resolution = if dst.is_ipv4() {
        "ARP"
    } else {
        "neighbour discovery"
    };
    if let Some(neighbour) = neighbour {
        let who = match gateway {
            Some(gw) => format!("next hop {gw}"),
            None => format!("destination {dst}"),
        };
        let unresolved = match neighbour.state {
            NeighborState::Failed => Some((
                DropReason::NeighborFailed,
                format!("{who} on {name} does not answer {resolution} (neighbour state failed)"),
            )),
            NeighborState::Incomplete => Some((
                DropReason::NeighborIncomplete,
                format!(
                    "{who} on {name} is being resolved by {resolution} and has not answered yet (neighbour state incomplete)"
                ),
            )),
            _ => None,
        };
        if let Some((reason, detail)) = unresolved {
            let summary = format!("{} is dropped: {detail}", prefix(&out.trace));
            let dropped = Dropped {
                interface: Some(egress),
                neighbor: Some(neighbour),
                ..Dropped::new(reason, detail)
            };
            out.drop(summary, dropped);
            return Ok(());
        }
        let description = match &neighbour.lladdr {
            Some(mac) if neighbour.state != NeighborState::None => {
                format!("{who} is at {mac} on {name} ({})", neighbour.state)
            }
            _ => format!(
                "no neighbour entry for {who} on {name} yet: the first packet starts {resolution}"
            ),
        };
        out.push(
            Action::Resolve,
            description,
            Step::Neighbor {
                neighbor: neighbour,
            },
        );
    }
    out.output(egress_words(&egress), egress);
    let mut summary = prefix(&out.trace);
    match gateway {
        Some(gw) => {
            let _ = write!(summary, " leaves by {name} towards next hop {gw}");
            write_member_words(&out.trace, &mut summary);
        }
        None => {
            let _ = write!(
                summary,
                " leaves by {name}, where {dst} is directly connected"
            );
        }
    }
    out.trace.summary = summary;
    Ok(())
}

/// `unicast route 10.9.0.0/16 (bgp, table main, metric 20): via 10.0.4.2 dev
/// eth1, member 1 of 2 (weight 1 of 2) chosen by the multipath hash`.
fn route_words(route: &Route, gateway: Option<IpAddr>, out: &str) -> String {
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
    words
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

#[cfg(test)]
#[path = "choice_tests.rs"]
mod tests;
