//! `hopwatch trace` and `hopwatch paths` against the real kernel: every answer
//! is checked against what `ip route get`, `ip neigh` and real packets say in
//! namespace labs built for each case (ECMP, drops, VRFs, neighbours).

use crate::lab::{
    EcmpLab, Egress, Flow, Proto, Rng, Router, args, hopwatch_in, ip, json_answer, mac, neigh,
    route_get, send_udp, trace, trace_egress, wait_neigh, wait_no_carrier,
};
use crate::util::{Netns, can_use_netns};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Seed of the random flows; printed so a failure can be replayed.
const SEED: u64 = 0x5eed_7ace_2024;

fn hops(answer: &Value) -> &Vec<Value> {
    answer["hops"]
        .as_array()
        .unwrap_or_else(|| panic!("no hops array: {answer:#}"))
}

fn hop<'a>(answer: &'a Value, kind: &str) -> Option<&'a Value> {
    hops(answer).iter().find(|h| h["type"] == kind)
}

/// A field of the neighbour entry an answer reports: flat on the hop
/// (`"state"`) or nested (`"neighbor": {"state"}`), in the neighbor hop or in
/// the drop hop that stands in its place when the neighbour drops the flow.
fn neighbor_field<'a>(answer: &'a Value, field: &str) -> Option<&'a str> {
    hops(answer)
        .iter()
        .filter(|h| h["type"] == "neighbor" || h["type"] == "drop")
        .find_map(|h| h[field].as_str().or_else(|| h["neighbor"][field].as_str()))
}

/// The answer's request echoes the flow asked about.
fn assert_request(answer: &Value, flow: &Flow, vrf: &str) {
    let request = &answer["request"];
    let what = format!("request echo for {flow:?}: {request}");
    assert_eq!(request["dst"].as_str().map(ip), Some(flow.dst), "{what}");
    assert_eq!(request["src"].as_str().map(ip), flow.src, "{what}");
    assert_eq!(request["iif"].as_str(), flow.iif.as_deref(), "{what}");
    assert_eq!(request["proto"], flow.proto.number(), "{what}");
    assert_eq!(request["sport"], flow.sport, "{what}");
    assert_eq!(request["dport"], flow.dport, "{what}");
    assert_eq!(request["vrf"], vrf, "{what}");
}

/// The shape every answer shares: success, hops indexed from 0 with the
/// common fields, a summary.
fn assert_shape(answer: &Value) {
    assert_eq!(answer["success"], true, "{answer:#}");
    assert!(answer["reaches_destination"].is_boolean(), "{answer:#}");
    assert!(answer["summary"].is_string(), "{answer:#}");
    for (i, hop) in hops(answer).iter().enumerate() {
        assert_eq!(hop["index"], i, "hop {i} of {answer:#}");
        for field in ["type", "component", "action", "description"] {
            assert!(hop[field].is_string(), "hop {i} lacks {field}: {answer:#}");
        }
    }
}

/// The answer is a drop for `reason`, naming `prefix` (the route that
/// dropped it) when there is one.
fn assert_drop(answer: &Value, reason: &str, prefix: Option<&str>) {
    assert_shape(answer);
    assert_eq!(answer["reaches_destination"], false, "{answer:#}");
    let drop = hop(answer, "drop").unwrap_or_else(|| panic!("no drop hop: {answer:#}"));
    assert_eq!(drop["reason"], reason, "{answer:#}");
    if let Some(prefix) = prefix {
        assert!(
            drop.to_string().contains(prefix),
            "the drop hop does not name the route {prefix}: {drop:#}"
        );
    }
}

/// The answer forwards the flow: no drop hop and the destination reached.
fn assert_forwards(answer: &Value, want: &Egress) {
    assert_shape(answer);
    assert!(hop(answer, "drop").is_none(), "unexpected drop: {answer:#}");
    assert_eq!(answer["reaches_destination"], true, "{answer:#}");
    assert_eq!(&trace_egress(answer), want, "{answer:#}");
}

/// The first disagreements, enough to debug without flooding the log.
pub(crate) fn first(disagreements: &[String]) -> String {
    let mut text = disagreements
        .iter()
        .take(20)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    if disagreements.len() > 20 {
        text += &format!("\n... and {} more", disagreements.len() - 20);
    }
    text
}

fn family(flow: &Flow) -> &'static str {
    if flow.dst.is_ipv6() { "IPv6" } else { "IPv4" }
}

fn category(flow: &Flow) -> String {
    let origin = match (&flow.iif, flow.src) {
        (Some(_), _) => "transit",
        (None, Some(_)) => "local, --src",
        (None, None) => "local",
    };
    format!("{} {} {origin}", family(flow), flow.proto.name())
}

/// Random flows cycling through IPv4/IPv6, local/transit and TCP/UDP; half of
/// the local ones name one of the switch's addresses as their source.
fn random_flows(lab: &EcmpLab, rng: &mut Rng, count: usize) -> Vec<Flow> {
    (0..count)
        .map(|i| {
            let v6 = i % 2 == 1;
            let transit = (i / 2) % 2 == 1;
            let proto = if (i / 4) % 2 == 0 {
                Proto::Tcp
            } else {
                Proto::Udp
            };
            let dst = EcmpLab::destination(rng, v6);
            let (src, iif) = if transit {
                (
                    Some(EcmpLab::client_source(rng, v6)),
                    Some(EcmpLab::INGRESS.to_string()),
                )
            } else {
                let sources = lab.local_sources(v6);
                let pick = rng.below(2 * sources.len() as u64) as usize;
                (sources.get(pick).copied(), None)
            };
            Flow {
                dst,
                src,
                iif,
                proto,
                sport: rng.port(),
                dport: rng.port(),
            }
        })
        .collect()
}

#[test]
fn root_netns_trace_matches_ip_route_get_on_ecmp() {
    if !can_use_netns("root_netns_trace_matches_ip_route_get_on_ecmp") {
        return;
    }
    let started = Instant::now();
    let lab = EcmpLab::new(1);
    let mut rng = Rng::new(SEED);
    let flows = random_flows(&lab, &mut rng, 384);

    let mut hits: BTreeMap<(&str, String), usize> = BTreeMap::new();
    let mut categories: BTreeMap<String, usize> = BTreeMap::new();
    let mut disagreements = Vec::new();
    for flow in &flows {
        let kernel = route_get(&lab.switch, flow)
            .unwrap_or_else(|e| panic!("ip {}: {e}", flow.route_get_line()));
        let answer = trace(&lab.switch, &flow.hopwatch_args());
        assert_shape(&answer);
        assert_request(&answer, flow, "default");
        assert_eq!(answer["ingress_inferred"], false, "{answer:#}");
        let routing =
            hop(&answer, "l3_routing").unwrap_or_else(|| panic!("no l3_routing hop: {answer:#}"));
        let prefix = if flow.dst.is_ipv6() {
            EcmpLab::PREFIX6
        } else {
            EcmpLab::PREFIX4
        };
        assert!(
            routing.to_string().contains(prefix),
            "the routing hop does not name the matching route {prefix}: {routing:#}"
        );
        let ours = trace_egress(&answer);
        if ours != kernel {
            disagreements.push(format!(
                "hopwatch trace {} -> {ours}; ip {} -> {kernel}",
                flow.hopwatch_args().join(" "),
                flow.route_get_line()
            ));
        }
        *hits.entry((family(flow), kernel.to_string())).or_default() += 1;
        *categories.entry(category(flow)).or_default() += 1;
    }

    // A transit flow named by its source alone: the ingress is inferred from
    // the reverse route (the client subnet is behind in0), and said so.
    for _ in 0..8 {
        let v6 = rng.below(2) == 1;
        let flow = Flow {
            dst: EcmpLab::destination(&mut rng, v6),
            src: Some(EcmpLab::client_source(&mut rng, v6)),
            iif: None,
            proto: Proto::Tcp,
            sport: rng.port(),
            dport: 443,
        };
        let answer = trace(&lab.switch, &flow.hopwatch_args());
        assert_shape(&answer);
        assert_eq!(answer["ingress_inferred"], true, "{answer:#}");
        let with_iif = Flow {
            iif: Some(EcmpLab::INGRESS.to_string()),
            ..flow.clone()
        };
        let kernel = route_get(&lab.switch, &with_iif).unwrap();
        let ours = trace_egress(&answer);
        if ours != kernel {
            disagreements.push(format!(
                "hopwatch trace {} (ingress inferred) -> {ours}; ip {} -> {kernel}",
                flow.hopwatch_args().join(" "),
                with_iif.route_get_line()
            ));
        }
    }

    println!(
        "{} flows (seed {SEED:#x}) in {:.1?}",
        flows.len() + 8,
        started.elapsed()
    );
    for (category, n) in &categories {
        println!("  {category:<22} {n}");
    }
    for ((family, member), n) in &hits {
        println!("  {family} {member:<32} {n} flows");
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} flows disagree with the kernel:\n{}",
        disagreements.len(),
        flows.len() + 8,
        first(&disagreements)
    );
    for m in &lab.members {
        for (family, gw) in [("IPv4", m.gw4), ("IPv6", m.gw6)] {
            let member = Egress {
                next_hop: Some(gw),
                interface: m.dev.clone(),
            };
            assert!(
                hits.contains_key(&(family, member.to_string())),
                "no {family} flow hashed onto {member}: {hits:?}"
            );
        }
    }
}

#[test]
fn root_netns_trace_hash_policy_0_ignores_ports() {
    if !can_use_netns("root_netns_trace_hash_policy_0_ignores_ports") {
        return;
    }
    let lab = EcmpLab::new(0);
    let mut rng = Rng::new(SEED.wrapping_add(1));
    for v6 in [false, true] {
        for transit in [false, true] {
            let mut members = BTreeSet::new();
            for _ in 0..16 {
                let dst = EcmpLab::destination(&mut rng, v6);
                let (src, iif) = if transit {
                    (
                        Some(EcmpLab::client_source(&mut rng, v6)),
                        Some(EcmpLab::INGRESS.to_string()),
                    )
                } else {
                    (None, None)
                };
                let mut answers = BTreeSet::new();
                for _ in 0..6 {
                    let flow = Flow {
                        dst,
                        src,
                        iif: iif.clone(),
                        proto: Proto::Tcp,
                        sport: rng.port(),
                        dport: rng.port(),
                    };
                    let ours = trace_egress(&trace(&lab.switch, &flow.hopwatch_args()));
                    let kernel = route_get(&lab.switch, &flow).unwrap();
                    assert_eq!(
                        ours,
                        kernel,
                        "hopwatch trace {} disagrees with ip {}",
                        flow.hopwatch_args().join(" "),
                        flow.route_get_line()
                    );
                    answers.insert(ours);
                }
                assert_eq!(
                    answers.len(),
                    1,
                    "under hash policy 0, ports alone moved {dst} (from {src:?}) between members: {answers:?}"
                );
                members.extend(answers);
            }
            // Addresses still spread flows; one member for all would mean the
            // lab hashes nothing and the check above proves nothing.
            assert!(
                members.len() >= 2,
                "16 destinations all on one member: {members:?}"
            );
        }
    }

    // The same in `paths`: 400 source ports, one member, flagged uneven.
    let answer = json_answer(
        "hopwatch paths (policy 0)",
        &hopwatch_in(
            &lab.switch,
            &args(&[
                "paths",
                "--dst",
                "10.99.5.5",
                "--proto",
                "udp",
                "--sport-range",
                "1000-1399",
                "--dport",
                "53",
                "--json",
            ]),
        ),
    );
    assert_eq!(answer["flows"], 400, "{answer:#}");
    let counts: Vec<u64> = answer["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["count"].as_u64().unwrap())
        .collect();
    assert!(
        counts.contains(&400),
        "all 400 flows should share one member: {answer:#}"
    );
    assert_eq!(answer["verdict"]["even"], false, "{answer:#}");
}

#[test]
fn root_netns_trace_route_drops() {
    if !can_use_netns("root_netns_trace_route_drops") {
        return;
    }
    let r = Router::new();
    r.ns.ip(&["route", "add", "blackhole", "10.70.1.0/24"]);
    r.ns.ip(&["route", "add", "unreachable", "10.70.2.0/24"]);
    r.ns.ip(&["route", "add", "prohibit", "10.70.3.0/24"]);
    r.ns.ip(&["route", "add", "throw", "10.70.4.0/24", "table", "100"]);
    r.ns.ip(&["rule", "add", "to", "10.70.4.0/24", "table", "100"]);
    // (destination, reason, route named, what the kernel answers)
    let cases = [
        (
            "10.70.1.1",
            "blackhole",
            Some("10.70.1.0/24"),
            "Invalid argument",
        ),
        (
            "10.70.2.1",
            "unreachable",
            Some("10.70.2.0/24"),
            "No route to host",
        ),
        (
            "10.70.3.1",
            "prohibit",
            Some("10.70.3.0/24"),
            "Permission denied",
        ),
        (
            "10.70.4.1",
            "throw",
            Some("10.70.4.0/24"),
            "Network is unreachable",
        ),
        ("10.70.5.1", "no_route", None, "Network is unreachable"),
    ];
    for (dst, reason, prefix, kernel_says) in cases {
        for flow in [Router::local(dst), Router::transit(dst)] {
            let kernel = route_get(&r.ns, &flow);
            assert!(
                kernel.as_ref().is_err_and(|e| e.contains(kernel_says)),
                "lab: ip {} gave {kernel:?}, expected {kernel_says:?}",
                flow.route_get_line()
            );
            let answer = r.trace(&flow);
            assert_drop(&answer, reason, prefix);
            assert!(answer["next_hop"].is_null(), "{answer:#}");
        }
    }
}

/// Makes `addr` on `dev` a REACHABLE neighbour of `ns` with one datagram.
fn resolve(ns: &Netns, from: &str, to: &str, dev: &str) {
    send_udp(ns, SocketAddr::new(ip(from), 0), SocketAddr::new(ip(to), 9));
    wait_neigh(ns, to, dev, &["REACHABLE"], Duration::from_secs(5));
}

#[test]
fn root_netns_trace_connected_and_local() {
    if !can_use_netns("root_netns_trace_connected_and_local") {
        return;
    }
    let r = Router::new();
    resolve(&r.ns, Router::OWN, Router::PEER, Router::EGRESS);
    let connected = Egress {
        next_hop: None,
        interface: Router::EGRESS.to_string(),
    };
    for flow in [Router::local(Router::PEER), Router::transit(Router::PEER)] {
        assert_eq!(route_get(&r.ns, &flow).unwrap(), connected, "lab");
        let answer = r.trace(&flow);
        assert_forwards(&answer, &connected);
        assert!(
            hop(&answer, "neighbor").is_some(),
            "no neighbor hop for a connected host: {answer:#}"
        );
        assert_eq!(
            neighbor_field(&answer, "state"),
            Some("reachable"),
            "{answer:#}"
        );
        assert_eq!(
            neighbor_field(&answer, "lladdr").map(str::to_lowercase),
            Some(mac(&r.peer, "y0")),
            "{answer:#}"
        );
    }
    for flow in [
        Router::local(Router::OWN),
        Router::transit(Router::OWN),
        Router::transit("10.81.0.1"),
    ] {
        let answer = r.trace(&flow);
        assert_shape(&answer);
        assert_eq!(answer["reaches_destination"], true, "{answer:#}");
        assert!(answer["next_hop"].is_null(), "{answer:#}");
        assert!(
            hop(&answer, "local").is_some(),
            "no local hop for {flow:?}: {answer:#}"
        );
        assert!(hop(&answer, "drop").is_none(), "{answer:#}");
    }
}

#[test]
fn root_netns_trace_forwarding_disabled() {
    if !can_use_netns("root_netns_trace_forwarding_disabled") {
        return;
    }
    let r = Router::new();
    r.ns.ip(&[
        "route",
        "add",
        "10.70.6.0/24",
        "via",
        Router::PEER,
        "dev",
        Router::EGRESS,
    ]);
    resolve(&r.ns, Router::OWN, Router::PEER, Router::EGRESS);
    let transit = Router::transit("10.70.6.1");
    let local = Router::local("10.70.6.1");
    let via_peer = Egress {
        next_hop: Some(ip(Router::PEER)),
        interface: Router::EGRESS.to_string(),
    };
    assert_forwards(&r.trace(&transit), &via_peer);

    // Off everywhere: transit drops, the router's own traffic still leaves.
    r.ns.sysctl("net.ipv4.conf.all.forwarding", "0");
    let kernel = route_get(&r.ns, &transit);
    assert!(kernel.is_err(), "lab: forwarding off, yet {kernel:?}");
    assert_drop(&r.trace(&transit), "forwarding_disabled", None);
    assert_forwards(&r.trace(&local), &via_peer);

    // Off on the ingress interface only: what the kernel checks.
    r.ns.sysctl("net.ipv4.conf.all.forwarding", "1");
    r.ns.sysctl(
        &format!("net.ipv4.conf.{}.forwarding", Router::INGRESS),
        "0",
    );
    assert!(route_get(&r.ns, &transit).is_err(), "lab");
    let answer = r.trace(&transit);
    assert_drop(&answer, "forwarding_disabled", None);
    let drop = hop(&answer, "drop").unwrap();
    assert!(
        drop.to_string().contains(Router::INGRESS),
        "the drop hop does not name the ingress interface whose setting drops: {drop:#}"
    );

    // Off on the egress interface only: the kernel forwards all the same.
    r.ns.sysctl(
        &format!("net.ipv4.conf.{}.forwarding", Router::INGRESS),
        "1",
    );
    r.ns.sysctl(&format!("net.ipv4.conf.{}.forwarding", Router::EGRESS), "0");
    assert_eq!(route_get(&r.ns, &transit).unwrap(), via_peer, "lab");
    assert_forwards(&r.trace(&transit), &via_peer);
}

#[test]
fn root_netns_trace_egress_down() {
    if !can_use_netns("root_netns_trace_egress_down") {
        return;
    }
    let r = Router::new();
    r.add_link("z0", "w0", "10.82.0");
    r.ns.ip(&[
        "route",
        "add",
        "10.70.7.0/24",
        "via",
        "10.82.0.2",
        "dev",
        "z0",
    ]);
    resolve(&r.ns, "10.82.0.1", "10.82.0.2", "z0");
    let flow = Router::local("10.70.7.1");
    let via_z0 = Egress {
        next_hop: Some(ip("10.82.0.2")),
        interface: "z0".to_string(),
    };
    assert_forwards(&r.trace(&flow), &via_z0);

    // The far end goes down: z0 loses its carrier. By default the kernel
    // keeps the route and still picks z0, where the packet dies.
    r.peer.ip(&["link", "set", "w0", "down"]);
    wait_no_carrier(&r.ns, "z0", Duration::from_secs(5));
    assert_eq!(route_get(&r.ns, &flow).unwrap(), via_z0, "lab");
    for flow in [flow.clone(), Router::transit("10.70.7.1")] {
        let answer = r.trace(&flow);
        assert_drop(&answer, "egress_down", None);
        let drop = hop(&answer, "drop").unwrap();
        assert!(
            drop.to_string().contains("z0"),
            "the drop hop does not name the interface that is down: {drop:#}"
        );
    }

    // With ignore_routes_with_linkdown the kernel skips the route instead:
    // no route matches, and the flow is dropped either way.
    r.ns.sysctl("net.ipv4.conf.all.ignore_routes_with_linkdown", "1");
    r.ns.sysctl("net.ipv4.conf.z0.ignore_routes_with_linkdown", "1");
    let kernel = route_get(&r.ns, &flow);
    assert!(
        kernel
            .as_ref()
            .is_err_and(|e| e.contains("Network is unreachable")),
        "lab: {kernel:?}"
    );
    let answer = r.trace(&flow);
    assert_shape(&answer);
    assert_eq!(answer["reaches_destination"], false, "{answer:#}");
    let drop = hop(&answer, "drop").unwrap_or_else(|| panic!("no drop hop: {answer:#}"));
    println!(
        "ignore_routes_with_linkdown=1: drop reason {}",
        drop["reason"]
    );
    assert!(
        drop["reason"] == "egress_down" || drop["reason"] == "no_route",
        "{answer:#}"
    );
}

#[test]
fn root_netns_trace_neighbor_failed_and_incomplete() {
    if !can_use_netns("root_netns_trace_neighbor_failed_and_incomplete") {
        return;
    }
    let r = Router::new();
    r.add_link("q0", "v0", "10.83.0");
    // Nobody answers for .9 on either link. x0 gives up after one 100 ms
    // probe (FAILED); q0 waits a minute between probes (INCOMPLETE).
    r.ns.ip(&[
        "route",
        "add",
        "10.70.8.0/24",
        "via",
        "10.80.0.9",
        "dev",
        "x0",
    ]);
    r.ns.ip(&[
        "route",
        "add",
        "10.70.9.0/24",
        "via",
        "10.83.0.9",
        "dev",
        "q0",
    ]);
    r.ns.sysctl("net.ipv4.neigh.x0.retrans_time_ms", "100");
    r.ns.sysctl("net.ipv4.neigh.x0.mcast_solicit", "1");
    r.ns.sysctl("net.ipv4.neigh.q0.retrans_time_ms", "60000");
    for dst in ["10.70.8.1", "10.70.9.1"] {
        send_udp(
            &r.ns,
            SocketAddr::new(ip("0.0.0.0"), 0),
            SocketAddr::new(ip(dst), 9),
        );
    }
    let timeout = Duration::from_secs(10);
    wait_neigh(&r.ns, "10.80.0.9", "x0", &["FAILED"], timeout);
    wait_neigh(&r.ns, "10.83.0.9", "q0", &["INCOMPLETE"], timeout);

    let cases = [
        ("10.70.8.1", "10.80.0.9", "x0", "failed", "FAILED"),
        ("10.70.9.1", "10.83.0.9", "q0", "incomplete", "INCOMPLETE"),
    ];
    for (dst, gw, dev, state, ip_state) in cases {
        for flow in [Router::local(dst), Router::transit(dst)] {
            let answer = r.trace(&flow);
            let now = neigh(&r.ns, gw, dev).map(|(s, _)| s);
            assert_eq!(
                now.as_deref(),
                Some(ip_state),
                "lab: the entry moved on while hopwatch ran"
            );
            assert_drop(&answer, &format!("neighbor_{state}"), None);
            assert_eq!(
                answer["next_hop"].as_str().map(ip),
                Some(ip(gw)),
                "{answer:#}"
            );
            assert_eq!(answer["egress_interface"], dev, "{answer:#}");
            assert_eq!(neighbor_field(&answer, "state"), Some(state), "{answer:#}");
        }
    }
}

#[test]
fn root_netns_trace_neighbor_reachable_after_traffic() {
    if !can_use_netns("root_netns_trace_neighbor_reachable_after_traffic") {
        return;
    }
    let lab = EcmpLab::new(1);
    for (dst, client) in [
        ("10.99.7.7", EcmpLab::CLIENT4),
        ("2001:db8:99::7:7", EcmpLab::CLIENT6),
    ] {
        let flow = Flow {
            dst: ip(dst),
            src: Some(ip(client)),
            iif: Some(EcmpLab::INGRESS.to_string()),
            proto: Proto::Udp,
            sport: 40000,
            dport: 9,
        };
        let before = trace(&lab.switch, &flow.hopwatch_args());
        let chosen = trace_egress(&before);
        let gw = chosen
            .next_hop
            .unwrap_or_else(|| panic!("no gateway: {before:#}"));
        let member = lab.member(gw);
        assert_eq!(chosen.interface, member.dev, "{before:#}");
        assert!(
            neighbor_field(&before, "state") != Some("reachable"),
            "reachable before any traffic: {before:#}"
        );

        // The real packet, from the client, on exactly the traced 5-tuple.
        send_udp(
            &lab.client,
            SocketAddr::new(ip(client), flow.sport),
            SocketAddr::new(ip(dst), flow.dport),
        );
        wait_neigh(
            &lab.switch,
            &gw.to_string(),
            &member.dev,
            &["REACHABLE"],
            Duration::from_secs(5),
        );
        // The kernel resolved only the member hopwatch named: the packet
        // really went there.
        for other in lab.members.iter().filter(|m| m.dev != member.dev) {
            let other_gw = if gw.is_ipv6() { other.gw6 } else { other.gw4 };
            let state = neigh(&lab.switch, &other_gw.to_string(), &other.dev);
            assert!(
                state.as_ref().is_none_or(|(s, _)| s != "REACHABLE"),
                "{dst}: hopwatch said {chosen}, but {other_gw} on {} was resolved: {state:?}",
                other.dev
            );
        }

        let after = trace(&lab.switch, &flow.hopwatch_args());
        assert_forwards(&after, &chosen);
        assert_eq!(
            neighbor_field(&after, "state"),
            Some("reachable"),
            "{after:#}"
        );
        assert_eq!(
            neighbor_field(&after, "lladdr").map(str::to_lowercase),
            Some(mac(&member.peer, &member.peer_if)),
            "{after:#}"
        );
    }
}
