//! `paths` through the kernel: the route's members, then one lookup per
//! flow, written in batches on the namespace's socket and tallied.

use super::super::hash::HashedFlow;
use super::super::netlink::{self, RouteGet};
use super::super::paths::{self, FlowPath, Paths, PathsQuery};
use super::super::vrf::Place;
use super::super::{FlowQuery, HopKind, Member, TraceError};
use super::route::decode_route;
use super::{Namespace, errno_words};
use nix::libc;
use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::time::Instant;

/// Lookups per write in `paths`. Each answer holds under a kilobyte of the
/// socket's receive buffer until read, so a batch fits even the default
/// buffer many times over; an overrun (a smaller buffer than expected)
/// halves the batch and asks the lost lookups again.
const PATHS_BATCH: usize = 128;

/// Batches in a row that may come back empty before `paths` gives up.
const PATHS_STALLS: u32 = 8;

impl Namespace {
    pub(super) fn paths(
        &mut self,
        query: &PathsQuery,
        flows: &[(u16, Option<u16>)],
        place: &Place,
        switch: &str,
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
                let traced = self.trace(&first, place, switch)?;
                let drop = traced
                    .hops
                    .iter()
                    .find(|h| h.kind() == HopKind::Drop)
                    .cloned();
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
