//! What the kernel is asked after it refuses a lookup: its errno says why
//! only in part, so the settings and routes behind the refusal are read
//! here, and [`super::choice`] names the reason from them.

use super::super::netlink::{self, RouteGet};
use super::super::{FlowQuery, Route, TraceError};
use super::choice::{Back, RefusalFacts, SourceFacts, cannot_arrive};
use super::route::{decode_route, prefix_contains};
use super::{Ingress, Namespace};
use nix::libc;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The table the kernel keeps local and broadcast addresses in.
const LOCAL_TABLE: u8 = 255;

impl Namespace {
    /// A lookup with a flow label refused with `EINVAL` is a blackhole, or
    /// a kernel that does not take `RTA_FLOWLABEL` (the socket's strict
    /// checking refuses an attribute it does not know rather than ignore
    /// it): the same lookup without the label tells them apart.
    pub(super) fn check_flowlabel_taken(&mut self, lookup: &RouteGet) -> Result<(), TraceError> {
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

    /// The facts behind a refusal with `errno`: only those the reason
    /// can turn on, so a refusal costs a dump at most, and a forwarding
    /// setting or the route back to the source where they matter.
    pub(super) fn refusal_facts(
        &mut self,
        errno: i32,
        query: &FlowQuery,
        ingress: &Ingress,
        vrf_oif: Option<u32>,
        vrf_table: Option<u32>,
        fib_route: Option<Route>,
    ) -> Result<RefusalFacts, TraceError> {
        let ipv4 = query.dst.is_ipv4();
        let mut facts = RefusalFacts {
            errno,
            ..RefusalFacts::default()
        };
        // A refused input lookup on IPv4 is EHOSTUNREACH whatever the route
        // when the ingress does not forward, so the setting is read first.
        if errno == libc::EHOSTUNREACH
            && ipv4
            && let Some(iif) = &ingress.name
        {
            facts.forwarding = self.sysctl(&["net", "ipv4", "conf", iif, "forwarding"]);
            if facts.forwarding == Some(0) {
                facts.matched = match fib_route {
                    Some(mut route) => {
                        self.name_members(&mut route)?;
                        Some(route)
                    }
                    None => self.would_forward(query, vrf_oif)?,
                };
                return Ok(facts);
            }
        }
        let kind = match errno {
            libc::EINVAL => netlink::RTN_BLACKHOLE,
            libc::EHOSTUNREACH => netlink::RTN_UNREACHABLE,
            libc::EACCES | libc::EPERM => netlink::RTN_PROHIBIT,
            libc::ENETUNREACH | libc::EAGAIN => netlink::RTN_THROW,
            _ => return Ok(facts),
        };
        facts.covering = self.covering(query.dst, kind, vrf_table)?;
        if errno == libc::EINVAL
            && facts.covering.is_none()
            && ipv4
            && let (Some(iif), Some(src)) = (&ingress.name, query.src)
            && !cannot_arrive(src)
        {
            facts.source = Some(self.source_facts(src, iif, vrf_oif)?);
        }
        Ok(facts)
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

    /// The route back to a transit flow's source and the reverse-path
    /// filter settings that judge it.
    fn source_facts(
        &mut self,
        src: IpAddr,
        iif: &str,
        vrf_oif: Option<u32>,
    ) -> Result<SourceFacts, TraceError> {
        let back = RouteGet {
            dst: Some(src),
            oif: vrf_oif,
            ..RouteGet::default()
        };
        let back = match self.ask_route(&back, "the route back to the source")? {
            Ok(Some(route)) if route.kind == netlink::RTN_LOCAL => Back::Local,
            Ok(Some(route)) => match route.oif {
                Some(index) => Back::By(
                    self.names(&[index])?
                        .get(index)
                        .unwrap_or_else(|| format!("ifindex {index}")),
                ),
                None => Back::NoInterface,
            },
            _ => Back::NoRoute,
        };
        let rp_filter = |name: &str| {
            self.sysctl(&["net", "ipv4", "conf", name, "rp_filter"])
                .unwrap_or(0)
        };
        Ok(SourceFacts {
            rp_filter_all: rp_filter("all"),
            rp_filter_own: rp_filter(iif),
            back,
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
}
