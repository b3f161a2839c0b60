//! Every drop reason the kernel backend names, decided from facts alone:
//! each test hands [`choose`] what the kernel would have said and reads the
//! drop hop it leads to.

use super::*;
use crate::trace::{Counters, HopKind, Member, OperState, RouteKind};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn query(dst: &str) -> FlowQuery {
    FlowQuery::new(ip(dst))
}

/// A transit flow from `src` arriving on `iif`.
fn transit(dst: &str, src: &str) -> FlowQuery {
    FlowQuery {
        src: Some(ip(src)),
        iif: Some("sw-in".into()),
        ..query(dst)
    }
}

fn outcome(request: &FlowQuery) -> Outcome {
    let mut out = Outcome::new(request, "sw1", "kernel");
    out.trace.ingress_interface = request.iif.clone();
    out
}

fn route(prefix: &str, kind: RouteKind) -> Route {
    Route {
        prefix: prefix.into(),
        kind,
        table: 254,
        table_name: "main".into(),
        protocol: "static".into(),
        protocol_id: 4,
        metric: 0,
        preferred_source: None,
        members: Vec::new(),
        chosen: None,
    }
}

fn unicast(gateway: &str) -> Route {
    Route {
        members: vec![Member {
            next_hop: Some(ip(gateway)),
            interface: Some("eth1".into()),
            ifindex: 4,
            weight: 1,
            flags: Vec::new(),
        }],
        chosen: Some(0),
        ..route("10.9.0.0/16", RouteKind::Unicast)
    }
}

fn link(oper_state: OperState, admin_up: bool, carrier: bool) -> Interface {
    Interface {
        name: "eth1".into(),
        ifindex: 4,
        oper_state,
        admin_up,
        carrier,
        mtu: Some(1500),
        speed_mbps: None,
        counters: Some(Counters::default()),
    }
}

fn neighbour(state: NeighborState) -> Neighbor {
    Neighbor {
        address: ip("10.0.4.2"),
        interface: "eth1".into(),
        lladdr: None,
        state,
        router: false,
    }
}

fn refused(request: &FlowQuery, facts: RefusalFacts) -> Trace {
    choose(outcome(request), Facts::Refused(facts)).expect("a refusal the kernel can give")
}

fn routed(request: &FlowQuery, routed: Routed) -> Trace {
    choose(outcome(request), Facts::Routed(routed)).expect("a routed flow")
}

fn forwarded(egress: Interface, neighbour: Option<Neighbor>) -> Routed {
    Routed {
        route: unicast("10.0.4.2"),
        source_address: None,
        gateway: Some(ip("10.0.4.2")),
        ipv6_forwarding: None,
        egress: Some((egress, neighbour)),
    }
}

/// The drop hop's reason, route prefix, setting and description.
fn drop_of(trace: &Trace) -> (DropReason, Option<String>, Option<String>, String) {
    assert!(!trace.reaches_destination, "{trace:#?}");
    let hop = trace.hops.last().expect("a hop");
    assert_eq!(hop.action, Action::Drop);
    match &hop.step {
        Step::Drop {
            reason,
            route,
            setting,
            ..
        } => (
            *reason,
            route.as_ref().map(|r| r.prefix.clone()),
            setting.clone(),
            hop.description.clone(),
        ),
        other => panic!("the last hop is {other:?}, not a drop"),
    }
}

#[test]
fn blackhole_names_the_covering_route() {
    let trace = refused(
        &query("10.66.0.1"),
        RefusalFacts {
            errno: libc::EINVAL,
            covering: Some(route("10.66.0.0/16", RouteKind::Blackhole)),
            ..RefusalFacts::default()
        },
    );
    let (reason, route, _, words) = drop_of(&trace);
    assert_eq!(reason, DropReason::Blackhole);
    assert_eq!(route.as_deref(), Some("10.66.0.0/16"));
    assert_eq!(words, "blackhole route 10.66.0.0/16: discarded silently");
    assert_eq!(
        trace.summary,
        "this switch -> 10.66.0.1 is dropped in VRF default: blackhole route 10.66.0.0/16: discarded silently"
    );
    assert!(matches!(
        &trace.hops[0].step,
        Step::Drop { kernel_answer: Some(words), .. } if words == "Invalid argument"
    ));
}

#[test]
fn unreachable_names_the_covering_route() {
    let trace = refused(
        &query("10.67.0.1"),
        RefusalFacts {
            errno: libc::EHOSTUNREACH,
            covering: Some(route("10.67.0.0/16", RouteKind::Unreachable)),
            ..RefusalFacts::default()
        },
    );
    let (reason, route, _, words) = drop_of(&trace);
    assert_eq!(reason, DropReason::Unreachable);
    assert_eq!(route.as_deref(), Some("10.67.0.0/16"));
    assert!(words.contains("ICMP host unreachable"), "{words}");
}

#[test]
fn prohibit_names_the_covering_route() {
    for errno in [libc::EACCES, libc::EPERM] {
        let trace = refused(
            &query("10.68.0.1"),
            RefusalFacts {
                errno,
                covering: Some(route("10.68.0.0/16", RouteKind::Prohibit)),
                ..RefusalFacts::default()
            },
        );
        let (reason, route, _, words) = drop_of(&trace);
        assert_eq!(reason, DropReason::Prohibit);
        assert_eq!(route.as_deref(), Some("10.68.0.0/16"));
        assert!(words.contains("administratively prohibited"), "{words}");
    }
}

#[test]
fn throw_is_told_from_no_route_by_the_covering_throw() {
    for errno in [libc::ENETUNREACH, libc::EAGAIN] {
        let trace = refused(
            &query("10.69.0.1"),
            RefusalFacts {
                errno,
                covering: Some(route("10.69.0.0/16", RouteKind::Throw)),
                ..RefusalFacts::default()
            },
        );
        let (reason, route, _, words) = drop_of(&trace);
        assert_eq!(reason, DropReason::Throw);
        assert_eq!(route.as_deref(), Some("10.69.0.0/16"));
        assert!(words.contains("no other table routes 10.69.0.1"), "{words}");
    }
}

#[test]
fn no_route_when_nothing_covers_the_destination() {
    let trace = refused(
        &query("192.0.2.1"),
        RefusalFacts {
            errno: libc::ENETUNREACH,
            ..RefusalFacts::default()
        },
    );
    let (reason, route, _, words) = drop_of(&trace);
    assert_eq!(reason, DropReason::NoRoute);
    assert_eq!(route, None);
    assert_eq!(words, "no route to 192.0.2.1, not even a default route");
}

#[test]
fn forwarding_disabled_on_an_ipv4_ingress_wins_over_the_route() {
    let request = transit("10.9.0.1", "10.1.1.2");
    let trace = refused(
        &request,
        RefusalFacts {
            errno: libc::EHOSTUNREACH,
            forwarding: Some(0),
            matched: Some(unicast("10.0.4.2")),
            ..RefusalFacts::default()
        },
    );
    let (reason, route, setting, words) = drop_of(&trace);
    assert_eq!(reason, DropReason::ForwardingDisabled);
    assert_eq!(route.as_deref(), Some("10.9.0.0/16"));
    assert_eq!(
        setting.as_deref(),
        Some("net.ipv4.conf.sw-in.forwarding = 0")
    );
    assert!(words.starts_with("sw-in does not forward IPv4"), "{words}");
    assert!(
        trace.summary.contains("arriving on sw-in is dropped"),
        "{}",
        trace.summary
    );
    // Forwarding on: the same errno is an unreachable route.
    let trace = refused(
        &request,
        RefusalFacts {
            errno: libc::EHOSTUNREACH,
            forwarding: Some(1),
            ..RefusalFacts::default()
        },
    );
    assert_eq!(drop_of(&trace).0, DropReason::Unreachable);
}

#[test]
fn forwarding_disabled_on_an_ipv6_ingress_unless_forced() {
    let request = FlowQuery {
        src: Some(ip("fd01::2")),
        iif: Some("sw-in".into()),
        ..query("fd09::1")
    };
    let off = Ipv6Forwarding {
        ingress: "sw-in".into(),
        all: Some(0),
        forced: None,
    };
    let trace = routed(
        &request,
        Routed {
            ipv6_forwarding: Some(off.clone()),
            egress: None,
            ..forwarded(link(OperState::Up, true, true), None)
        },
    );
    let (reason, route, setting, words) = drop_of(&trace);
    assert_eq!(reason, DropReason::ForwardingDisabled);
    assert_eq!(route.as_deref(), Some("10.9.0.0/16"));
    assert_eq!(setting.as_deref(), Some("net.ipv6.conf.all.forwarding = 0"));
    assert!(words.contains("has no force_forwarding"), "{words}");
    // force_forwarding on the ingress, or all.forwarding on: it forwards.
    let forced = Ipv6Forwarding {
        forced: Some(1),
        ..off.clone()
    };
    let all = Ipv6Forwarding {
        all: Some(1),
        ..off
    };
    for forwarding in [forced, all] {
        assert!(forwarding.forwards());
        let trace = routed(
            &request,
            Routed {
                ipv6_forwarding: Some(forwarding),
                ..forwarded(link(OperState::Up, true, true), None)
            },
        );
        assert!(trace.reaches_destination, "{trace:#?}");
    }
}

#[test]
fn egress_down_names_the_interface_state() {
    for (oper, admin, carrier, words) in [
        (
            OperState::Down,
            true,
            false,
            "oper state down, admin up, no carrier",
        ),
        (
            OperState::LowerLayerDown,
            true,
            false,
            "oper state lowerlayerdown",
        ),
        (OperState::Down, false, false, "admin down"),
        // Unknown counts as up only while enabled and carrying.
        (OperState::Unknown, true, false, "no carrier"),
    ] {
        let trace = routed(
            &query("10.9.0.1"),
            forwarded(link(oper, admin, carrier), None),
        );
        let (reason, _, _, description) = drop_of(&trace);
        assert_eq!(reason, DropReason::EgressDown);
        assert!(description.contains(words), "{description}");
        assert_eq!(trace.hops[0].kind(), HopKind::L3Routing);
        assert_eq!(trace.egress_interface.as_deref(), Some("eth1"));
    }
    let up = routed(
        &query("10.9.0.1"),
        forwarded(link(OperState::Unknown, true, true), None),
    );
    assert!(up.reaches_destination);
}

#[test]
fn neighbor_failed_drops_at_resolution() {
    let trace = routed(
        &query("10.9.0.1"),
        forwarded(
            link(OperState::Up, true, true),
            Some(neighbour(NeighborState::Failed)),
        ),
    );
    let (reason, _, _, words) = drop_of(&trace);
    assert_eq!(reason, DropReason::NeighborFailed);
    assert_eq!(
        words,
        "next hop 10.0.4.2 on eth1 does not answer ARP (neighbour state failed)"
    );
}

#[test]
fn neighbor_incomplete_drops_while_resolving() {
    let trace = routed(
        &query("10.9.0.1"),
        forwarded(
            link(OperState::Up, true, true),
            Some(neighbour(NeighborState::Incomplete)),
        ),
    );
    let (reason, _, _, words) = drop_of(&trace);
    assert_eq!(reason, DropReason::NeighborIncomplete);
    assert!(words.contains("has not answered yet"), "{words}");
    // Any other state resolves, and the flow leaves.
    for state in [
        NeighborState::Reachable,
        NeighborState::Stale,
        NeighborState::None,
    ] {
        let trace = routed(
            &query("10.9.0.1"),
            forwarded(link(OperState::Up, true, true), Some(neighbour(state))),
        );
        assert!(trace.reaches_destination, "{state}: {trace:#?}");
        let kinds: Vec<HopKind> = trace.hops.iter().map(|h| h.kind()).collect();
        assert_eq!(
            kinds,
            [HopKind::L3Routing, HopKind::Neighbor, HopKind::Egress]
        );
    }
}

#[test]
fn reverse_path_filter_names_the_setting_and_the_route_back() {
    let request = transit("10.9.0.1", "10.7.0.2");
    let source = |back, all, own| RefusalFacts {
        errno: libc::EINVAL,
        source: Some(SourceFacts {
            back,
            rp_filter_all: all,
            rp_filter_own: own,
        }),
        ..RefusalFacts::default()
    };
    let trace = refused(&request, source(Back::By("eth2".into()), 0, 1));
    let (reason, _, setting, words) = drop_of(&trace);
    assert_eq!(reason, DropReason::ReversePathFilter);
    assert_eq!(
        setting.as_deref(),
        Some("net.ipv4.conf.sw-in.rp_filter = 1")
    );
    assert_eq!(
        words,
        "strict reverse-path filter on sw-in: the route back to 10.7.0.2 leaves by eth2"
    );
    // The larger setting applies, and names itself.
    let trace = refused(&request, source(Back::NoRoute, 2, 0));
    let (_, _, setting, words) = drop_of(&trace);
    assert_eq!(setting.as_deref(), Some("net.ipv4.conf.all.rp_filter = 2"));
    assert!(words.starts_with("loose"), "{words}");
    assert!(
        words.ends_with("there is no route back to 10.7.0.2"),
        "{words}"
    );
    let trace = refused(&request, source(Back::NoInterface, 1, 1));
    assert!(drop_of(&trace).3.ends_with("names no interface"));
}

#[test]
fn martian_source_for_sources_that_cannot_arrive() {
    for src in ["127.0.0.1", "0.0.0.0", "224.0.0.5", "255.255.255.255"] {
        let trace = refused(
            &transit("10.9.0.1", src),
            RefusalFacts {
                errno: libc::EINVAL,
                ..RefusalFacts::default()
            },
        );
        let (reason, _, _, words) = drop_of(&trace);
        assert_eq!(reason, DropReason::MartianSource, "{src}");
        assert!(words.contains("cannot arrive from outside"), "{words}");
    }
    let local = refused(
        &transit("10.9.0.1", "10.0.4.1"),
        RefusalFacts {
            errno: libc::EINVAL,
            source: Some(SourceFacts {
                back: Back::Local,
                rp_filter_all: 1,
                rp_filter_own: 1,
            }),
            ..RefusalFacts::default()
        },
    );
    let (reason, _, _, words) = drop_of(&local);
    assert_eq!(reason, DropReason::MartianSource);
    assert!(words.contains("is an address of this switch"), "{words}");
    // No filter on: the kernel refuses the source all the same.
    let unfiltered = refused(
        &transit("10.9.0.1", "10.7.0.2"),
        RefusalFacts {
            errno: libc::EINVAL,
            source: Some(SourceFacts {
                back: Back::By("eth2".into()),
                rp_filter_all: 0,
                rp_filter_own: 0,
            }),
            ..RefusalFacts::default()
        },
    );
    assert_eq!(drop_of(&unfiltered).0, DropReason::MartianSource);
}

#[test]
fn a_refusal_without_a_reason_is_an_error_not_a_guess() {
    let error = choose(
        outcome(&query("10.9.0.1")),
        Facts::Refused(RefusalFacts {
            errno: libc::ENOMEM,
            ..RefusalFacts::default()
        }),
    )
    .unwrap_err();
    assert!(error.to_string().contains("10.9.0.1"), "{error}");
}

#[test]
fn local_delivery_reaches_the_switch() {
    let trace = choose(
        outcome(&query("10.0.4.1")),
        Facts::Local {
            route: route("10.0.4.1/32", RouteKind::Local),
            source_address: None,
            lo: Some("lo".into()),
        },
    )
    .unwrap();
    assert!(trace.reaches_destination);
    assert_eq!(trace.egress_interface.as_deref(), Some("lo"));
    let actions: Vec<Action> = trace.hops.iter().map(|h| h.action).collect();
    assert_eq!(actions, [Action::Deliver, Action::Deliver]);
    assert_eq!(
        trace.summary,
        "this switch -> 10.0.4.1 is delivered locally: 10.0.4.1 is an address of this switch"
    );
}
