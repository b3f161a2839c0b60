//! The multipath hash against real packets: when a packet carries its own
//! hash or flow label, when `--flowlabel` makes the answer exact, and how
//! `paths` counts members whose link is down — each checked by sending
//! datagrams through an ECMP lab and reading which link they left by.

use crate::lab::{
    EcmpLab, Flow, Proto, Router, args, hopwatch_in, ip, json_answer, send_udp_burst, trace,
    trace_egress, tx_counters, wait_no_carrier,
};
use crate::util::{Netns, can_use_netns};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Datagrams per flow: enough to stand out from the few neighbour
/// discovery or MLD packets a link sends on its own.
const BURST: u64 = 20;

/// The member interface a burst of `flow` left the switch by, read from the
/// members' transmit counters (sent and dropped alike: a linkdown member
/// drops what it is given).
fn member_taken(lab: &EcmpLab, flow: &Flow, flowlabel: Option<u32>) -> String {
    let before: Vec<(u64, u64)> = lab
        .members
        .iter()
        .map(|m| tx_counters(&lab.switch, &m.dev))
        .collect();
    send_udp_burst(
        &lab.client,
        SocketAddr::new(flow.src.unwrap(), flow.sport),
        SocketAddr::new(flow.dst, flow.dport),
        BURST as usize,
        flowlabel,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for (m, (packets, dropped)) in lab.members.iter().zip(&before) {
            let (p, d) = tx_counters(&lab.switch, &m.dev);
            if (p - packets) + (d - dropped) >= BURST {
                return m.dev.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the burst of {flow:?} left by no member"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Gives every member's gateway a permanent neighbour entry, so that the
/// first datagram of a flow is not held back for resolution.
fn resolve_members(lab: &EcmpLab) {
    for m in &lab.members {
        let mac = crate::lab::mac(&m.peer, &m.peer_if);
        for gw in [m.gw4, m.gw6] {
            lab.switch.ip(&[
                "neigh",
                "replace",
                &gw.to_string(),
                "lladdr",
                &mac,
                "dev",
                &m.dev,
                "nud",
                "permanent",
            ]);
        }
    }
}

fn transit(dst: IpAddr, sport: u16) -> Flow {
    let src = if dst.is_ipv6() {
        EcmpLab::CLIENT6
    } else {
        EcmpLab::CLIENT4
    };
    Flow {
        dst,
        src: Some(ip(src)),
        iif: Some(EcmpLab::INGRESS.to_string()),
        proto: Proto::Udp,
        sport,
        dport: 9,
    }
}

fn with_label(flow: &Flow, label: u32) -> Vec<String> {
    let mut list = flow.hopwatch_args();
    list.extend(["--flowlabel".to_string(), label.to_string()]);
    list
}

/// Under policy 1 a sender with automatic flow labels hashes each IPv6
/// datagram itself, and the switch forwards on that hash: real packets
/// leave by other members than the 5-tuple names, and the trace says it
/// cannot promise otherwise. Locally originated flows are exact.
#[test]
fn root_netns_trace_packet_hash_caveat() {
    if !can_use_netns("root_netns_trace_packet_hash_caveat") {
        return;
    }
    let lab = EcmpLab::new(1);
    resolve_members(&lab);
    // The Linux default the lab otherwise turns off (see EcmpLab::new).
    lab.client.sysctl("net.ipv6.auto_flowlabels", "1");
    let mut moved = Vec::new();
    for n in 0..12u16 {
        let flow = transit(ip(&format!("2001:db8:99::{:x}", 0x100 + n)), 41000 + n);
        let answer = trace(&lab.switch, &flow.hopwatch_args());
        let hash = &answer["hash"];
        assert_eq!(hash["family"], "ipv6", "{answer:#}");
        assert_eq!(hash["policy"], 1, "{hash:#}");
        assert_eq!(
            hash["inputs"],
            serde_json::json!(["src", "dst", "proto", "sport", "dport"]),
            "{hash:#}"
        );
        assert_eq!(hash["exact"], false, "{hash:#}");
        assert!(
            hash["caveat"]
                .as_str()
                .is_some_and(|c| c.contains("L4 hash")),
            "{hash:#}"
        );
        let traced = trace_egress(&answer).interface;
        let taken = member_taken(&lab, &flow, None);
        if taken != traced {
            moved.push(format!("{flow:?}: traced {traced}, left by {taken}"));
        }
    }
    assert!(
        !moved.is_empty(),
        "every datagram left by the traced member although each carried its sender's hash"
    );
    eprintln!(
        "{} of 12 flows left by another member: {moved:#?}",
        moved.len()
    );

    // The switch's own flows are hashed from their flow key: exact.
    let local = Flow {
        src: None,
        iif: None,
        ..transit(ip("2001:db8:99::1:1"), 41000)
    };
    let answer = trace(&lab.switch, &local.hopwatch_args());
    assert_eq!(answer["hash"]["exact"], true, "{answer:#}");
    assert!(answer["hash"]["caveat"].is_null(), "{answer:#}");
    // IPv4 from an unconnected socket carries no hash; the caveat still
    // stands for packets that do (a NIC's, RPS's).
    let v4 = trace(
        &lab.switch,
        &transit(ip("10.99.1.1"), 41000).hopwatch_args(),
    );
    assert_eq!(v4["hash"]["family"], "ipv4", "{v4:#}");
    assert_eq!(v4["hash"]["exact"], false, "{v4:#}");
    // The flow label means nothing under policy 1.
    let out = hopwatch_in(
        &lab.switch,
        &[
            args(&["trace", "--json"]),
            with_label(&transit(ip("2001:db8:99::1"), 41000), 5),
        ]
        .concat(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not hash the flow label"), "{stderr}");
}

/// Under policy 0 the flow label is hashed: with `--flowlabel` set to the
/// label the packets carry, the trace names the member every one of them
/// took; without it the answer is for label 0, and says so.
#[test]
fn root_netns_trace_flowlabel_makes_policy_0_exact() {
    if !can_use_netns("root_netns_trace_flowlabel_makes_policy_0_exact") {
        return;
    }
    let lab = EcmpLab::new(0);
    resolve_members(&lab);
    const LABEL: u32 = 0x1_2345;
    let mut differs = 0;
    for n in 0..10u16 {
        let flow = transit(ip(&format!("2001:db8:99::{:x}:1", 0x200 + n)), 42000 + n);
        let labelled = trace(&lab.switch, &with_label(&flow, LABEL));
        assert_eq!(labelled["request"]["flowlabel"], LABEL, "{labelled:#}");
        let hash = &labelled["hash"];
        assert_eq!(
            hash["inputs"],
            serde_json::json!(["src", "dst", "flowlabel", "proto"]),
            "{hash:#}"
        );
        assert_eq!(hash["flowlabel"], LABEL, "{hash:#}");
        assert_eq!(hash["exact"], true, "{hash:#}");
        let traced = trace_egress(&labelled).interface;
        let taken = member_taken(&lab, &flow, Some(LABEL));
        assert_eq!(
            taken, traced,
            "packets labelled {LABEL:#x} of {flow:?} left by {taken}, the trace said {traced}: {labelled:#}"
        );

        let unlabelled = trace(&lab.switch, &flow.hopwatch_args());
        assert!(
            unlabelled["request"].get("flowlabel").is_none(),
            "{unlabelled:#}"
        );
        assert_eq!(unlabelled["hash"]["exact"], false, "{unlabelled:#}");
        assert!(
            unlabelled["hash"]["caveat"]
                .as_str()
                .is_some_and(|c| c.contains("--flowlabel")),
            "{unlabelled:#}"
        );
        if trace_egress(&unlabelled).interface != taken {
            differs += 1;
        }
    }
    // The label really moves flows, so the caveat is no formality.
    assert!(
        differs > 0,
        "label 0 and {LABEL:#x} hashed alike for 10 flows"
    );

    // IPv4 has no flow label; a label beyond 20 bits is none.
    for (dst, label, names) in [
        ("10.99.1.1", "7", "is for IPv6"),
        ("2001:db8:99::1", "0x100000", "20 bits"),
    ] {
        let out = hopwatch_in(
            &lab.switch,
            &args(&["trace", "--dst", dst, "--flowlabel", label]),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(names), "{stderr}");
    }
}

/// `hopwatch paths --json` for 400 UDP flows to `dst` from the client.
fn paths_from_client(lab: &EcmpLab, dst: &str, src: &str) -> Value {
    json_answer(
        &format!("hopwatch paths --dst {dst}"),
        &hopwatch_in(
            &lab.switch,
            &args(&[
                "paths",
                "--dst",
                dst,
                "--src",
                src,
                "--iif",
                EcmpLab::INGRESS,
                "--proto",
                "udp",
                "--sport-range",
                "1000-1399",
                "--dport",
                "53",
                "--json",
            ]),
        ),
    )
}

fn member<'a>(answer: &'a Value, dev: &str) -> &'a Value {
    answer["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["interface"] == dev)
        .unwrap_or_else(|| panic!("no member {dev}: {answer:#}"))
}

/// Waits until the kernel flags every route's member on `dev` linkdown.
fn wait_linkdown(ns: &Netns, dev: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v4 = String::from_utf8_lossy(&ns.ip(&["route", "show", EcmpLab::PREFIX4]).stdout)
            .to_string();
        let v6 = String::from_utf8_lossy(&ns.ip(&["-6", "route", "show", EcmpLab::PREFIX6]).stdout)
            .to_string();
        let flagged = |text: &str| {
            text.lines()
                .any(|l| l.contains(&format!("dev {dev} ")) && l.contains("linkdown"))
        };
        if flagged(&v4) && flagged(&v6) {
            return;
        }
        assert!(Instant::now() < deadline, "{dev} never linkdown: {v4}{v6}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A member whose peer is gone: with `ignore_routes_with_linkdown` 0 the
/// kernel still hashes flows onto it and drops them at the dead link, so
/// `paths` counts them dropped and calls the spread no even one; with it
/// set before the link went down the kernel spreads over the rest, and the
/// spread over those is judged alone.
#[test]
fn root_netns_paths_counts_flows_on_a_linkdown_member_as_dropped() {
    if !can_use_netns("root_netns_paths_counts_flows_on_a_linkdown_member_as_dropped") {
        return;
    }
    for ignore in ["1", "0"] {
        let lab = EcmpLab::new(1);
        resolve_members(&lab);
        lab.switch
            .sysctl("net.ipv4.conf.all.ignore_routes_with_linkdown", ignore);
        lab.switch
            .sysctl("net.ipv6.conf.all.ignore_routes_with_linkdown", ignore);
        let down = &lab.members[2];
        down.peer.ip(&["link", "set", &down.peer_if, "down"]);
        wait_no_carrier(&lab.switch, &down.dev, Duration::from_secs(5));
        wait_linkdown(&lab.switch, &down.dev);
        for (dst, src) in [
            ("10.99.8.8", EcmpLab::CLIENT4),
            ("2001:db8:99::8:8", EcmpLab::CLIENT6),
        ] {
            let answer = paths_from_client(&lab, dst, src);
            let on_down = member(&answer, &down.dev);
            assert_eq!(on_down["state"], "linkdown", "{answer:#}");
            assert_eq!(on_down["expected_share"], 0.0, "{answer:#}");
            let count = on_down["count"].as_u64().unwrap();
            for m in lab.members.iter().filter(|m| m.dev != down.dev) {
                assert_eq!(member(&answer, &m.dev)["state"], "up", "{answer:#}");
            }
            let verdict = &answer["verdict"];
            if ignore == "1" {
                assert_eq!(count, 0, "{answer:#}");
                assert_eq!(answer["dropped"], 0, "{answer:#}");
                assert_eq!(verdict["even"], true, "{answer:#}");
                assert_eq!(verdict["degrees_of_freedom"], 2, "{answer:#}");
            } else {
                assert!(count > 0, "no flow hashed onto {}: {answer:#}", down.dev);
                assert_eq!(answer["dropped"], count, "{answer:#}");
                assert_eq!(verdict["even"], false, "{answer:#}");
                assert!(
                    verdict["text"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("dropped: {count} of 400 flows")),
                    "{answer:#}"
                );
                let table = hopwatch_in(
                    &lab.switch,
                    &args(&[
                        "paths",
                        "--dst",
                        dst,
                        "--src",
                        src,
                        "--iif",
                        "in0",
                        "--proto",
                        "udp",
                        "--sport-range",
                        "1000-1399",
                        "--dport",
                        "53",
                    ]),
                );
                let text = String::from_utf8_lossy(&table.stdout);
                assert!(
                    text.lines()
                        .any(|l| l.contains(&down.dev) && l.contains("linkdown")),
                    "{text}"
                );
            }

            // What the kernel really does: one datagram for each of 40 of
            // the flows; those `paths` puts on the down member are dropped
            // there, the rest leave by the others. The switch's own IPv6
            // housekeeping may add a few to either count, never take any.
            let counters = || -> (u64, u64) {
                let dropped = tx_counters(&lab.switch, &down.dev).1;
                let sent = lab
                    .members
                    .iter()
                    .filter(|m| m.dev != down.dev)
                    .map(|m| tx_counters(&lab.switch, &m.dev).0)
                    .sum();
                (dropped, sent)
            };
            let (dropped_before, sent_before) = counters();
            let detail = json_answer(
                "paths --per-flow",
                &hopwatch_in(
                    &lab.switch,
                    &args(&[
                        "paths",
                        "--dst",
                        dst,
                        "--src",
                        src,
                        "--iif",
                        "in0",
                        "--proto",
                        "udp",
                        "--sport-range",
                        "1000-1039",
                        "--dport",
                        "53",
                        "--per-flow",
                        "--json",
                    ]),
                ),
            );
            let expected = detail["flows_detail"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["interface"] == down.dev.as_str())
                .count() as u64;
            for sport in 1000..1040u16 {
                send_udp_burst(
                    &lab.client,
                    SocketAddr::new(ip(src), sport),
                    SocketAddr::new(ip(dst), 53),
                    1,
                    None,
                );
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let (dropped, sent) = counters();
                let (dropped, sent) = (dropped - dropped_before, sent - sent_before);
                if dropped >= expected && sent >= 40 - expected {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} dropped {dropped} and the others sent {sent} of 40 datagrams; paths said {expected} flows hash onto {}",
                    down.dev,
                    down.dev
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// A destination that is not forwarded: `paths` answers with the drop, as
/// `trace` does, and exits 0.
#[test]
fn root_netns_paths_to_a_blackhole_is_an_answer() {
    if !can_use_netns("root_netns_paths_to_a_blackhole_is_an_answer") {
        return;
    }
    let router = Router::new();
    let ns = &router.ns;
    ns.ip(&["route", "add", "blackhole", "10.71.9.0/24"]);
    for (dst, reason) in [("10.71.9.9", "blackhole"), ("10.72.0.1", "no_route")] {
        let list = args(&[
            "paths",
            "--dst",
            dst,
            "--proto",
            "udp",
            "--samples",
            "50",
            "--json",
        ]);
        let answer = json_answer(&format!("paths --dst {dst}"), &hopwatch_in(ns, &list));
        assert_eq!(answer["drop"]["type"], "drop", "{answer:#}");
        assert_eq!(answer["drop"]["reason"], reason, "{answer:#}");
        assert_eq!(answer["flows"], 50, "{answer:#}");
        assert_eq!(answer["dropped"], 50, "{answer:#}");
        assert_eq!(answer["verdict"]["even"], false, "{answer:#}");
        if reason == "blackhole" {
            assert_eq!(answer["route"]["prefix"], "10.71.9.0/24", "{answer:#}");
        }
        let text = hopwatch_in(ns, &list[..list.len() - 1]);
        assert_eq!(text.status.code(), Some(0));
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("DROP: "), "{text}");
    }
}
