//! Random flows across the fabric, IPv4 and IPv6, both directions: each
//! hop the collector reports is the kernel's answer in that switch, and
//! the spine it names is the one the flow's real packets crossed.

use super::fleet::http;
use super::leafspine::{H1, H2, SPINES};
use super::{Fabric, Tuple, seed, source_host, switches};
use crate::lab::{Proto, Rng};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Flows per family at least; more are drawn until real packets crossed
/// both spines.
const FLOWS: usize = 6;
const MAX_FLOWS: usize = 40;

/// The spine the source leaf's kernel sends `tuple` to.
fn spine_by_kernel(fabric: &Fabric, tuple: &Tuple) -> &'static str {
    let (host, leaf) = source_host(tuple.src);
    let ingress = fabric.lab.dev(leaf, host);
    let egress = fabric
        .kernel(leaf, tuple, Some(ingress))
        .unwrap_or_else(|e| panic!("{leaf} has no route for {tuple}: {e}"));
    fabric
        .lab
        .peer_of(leaf, &egress.interface)
        .filter(|peer| SPINES.contains(peer))
        .unwrap_or_else(|| panic!("{leaf} sends {tuple} to no spine: {egress}"))
}

/// The flows of one family, with the spine each takes by the kernel and,
/// for UDP, by its real packets (which must agree: the lab's own proof).
fn draw(fabric: &Fabric, rng: &mut Rng, v6: bool) -> Vec<(Tuple, &'static str)> {
    let mut flows = Vec::new();
    let mut sent = BTreeSet::new();
    while flows.len() < FLOWS || sent.len() < SPINES.len() {
        assert!(
            flows.len() < MAX_FLOWS,
            "the UDP ones of {MAX_FLOWS} flows all crossed {sent:?}: the leaves do not spread flows: {flows:#?}"
        );
        let tuple = Tuple::random(rng, v6);
        let spine = spine_by_kernel(fabric, &tuple);
        if tuple.proto == Proto::Udp {
            let taken = fabric.spine_taken(&tuple);
            assert_eq!(
                taken, spine,
                "the packets of {tuple} crossed {taken}, `ip route get` at the leaf says {spine}"
            );
            sent.insert(spine);
        }
        flows.push((tuple, spine));
    }
    flows
}

#[test]
fn root_netns_fabric_trace_follows_flows_like_the_kernel_and_their_packets() {
    const TEST: &str = "root_netns_fabric_trace_follows_flows_like_the_kernel_and_their_packets";
    let Some(fabric) = Fabric::start(TEST, "") else {
        return;
    };
    refuses_bad_requests(&fabric);
    starts_where_asked(&fabric);
    let mut rng = Rng::new(seed(TEST));
    let mut cli_checked = false;
    for v6 in [false, true] {
        let flows = draw(&fabric, &mut rng, v6);
        eprintln!(
            "IPv{}: {} flows, {:?}",
            if v6 { 6 } else { 4 },
            flows.len(),
            flows
                .iter()
                .map(|(t, s)| format!("{t} via {s}"))
                .collect::<Vec<_>>()
        );
        for (tuple, spine) in &flows {
            let trace = fabric.trace(&tuple.body());
            let (host, first) = source_host(tuple.src);
            let (dst_host, last) = source_host(tuple.dst);
            assert_eq!(
                trace["outcome"]["result"], "delivered",
                "{tuple}: {trace:#}"
            );
            assert_eq!(trace["outcome"]["agent"], last, "{tuple}: {trace:#}");
            assert_eq!(
                trace["outcome"]["interface"],
                fabric.lab.dev(last, dst_host),
                "{tuple}: {trace:#}"
            );
            assert_eq!(trace["success"], true, "{tuple}: {trace:#}");
            assert_eq!(trace["reaches_destination"], true, "{tuple}: {trace:#}");
            let crossed = fabric.check_hops(tuple, &trace);
            assert_eq!(crossed, [first, spine, last], "{tuple}: {trace:#}");
            let hops = trace["hops"].as_array().unwrap();
            // Each hop's ingress is the interface the previous one's next
            // hop sits on.
            assert_eq!(hops[0]["ingress"], fabric.lab.dev(first, host), "{trace:#}");
            assert_eq!(
                hops[1]["ingress"],
                fabric.lab.dev(spine, first),
                "{trace:#}"
            );
            assert_eq!(hops[2]["ingress"], fabric.lab.dev(last, spine), "{trace:#}");
            for (i, hop) in hops.iter().enumerate() {
                assert_eq!(hop["index"], i + 1, "{trace:#}");
                assert_eq!(hop["backend"], "kernel", "{trace:#}");
                assert_eq!(hop["egress"]["oper_state"], "up", "{trace:#}");
            }
            // The leaf's route has both spines and names the one chosen.
            let route = &hops[0]["route"];
            let members = route["members"].as_array().unwrap();
            assert_eq!(members.len(), 2, "{route:#}");
            let chosen = &members[route["chosen"].as_u64().unwrap() as usize];
            assert_eq!(
                chosen["interface"],
                fabric.lab.dev(first, spine),
                "{route:#}"
            );
            assert_eq!(
                hops[0]["next_hop"],
                fabric.lab.addr(spine, first, v6).to_string(),
                "{trace:#}"
            );
            if !cli_checked {
                cli_checked = true;
                cli_agrees(&fabric, tuple, &trace);
            }
        }
    }
}

/// The CLI on the collector host gives the API's answer: the same JSON
/// path, and a human block per switch; exit 0 for a flow that arrives.
fn cli_agrees(fabric: &Fabric, tuple: &Tuple, trace: &Value) {
    let (code, out) = fabric.trace_cli(tuple, &["--json"]);
    assert_eq!(code, Some(0), "{out}");
    let cli: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        cli["outcome"], trace["outcome"],
        "CLI {cli:#}\nAPI {trace:#}"
    );
    assert_eq!(
        switches(&cli),
        switches(trace),
        "CLI {cli:#}\nAPI {trace:#}"
    );
    let (code, out) = fabric.trace_cli(tuple, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("FLOW OVERVIEW"), "{out}");
    for switch in switches(trace) {
        assert!(out.contains(&switch), "no {switch} in\n{out}");
    }
}

/// `from` starts the walk at the named switch, which places the flow on
/// the ingress its route back to the source names.
fn starts_where_asked(fabric: &Fabric) {
    let tuple = Tuple::udp(H1[0], H2[0], 40000, 53);
    let trace = fabric.trace(&tuple.body_with("from", json!("spine1")));
    assert_eq!(
        fabric.check_hops(&tuple, &trace),
        ["spine1", "leaf2"],
        "{trace:#}"
    );
    assert_eq!(
        trace["hops"][0]["ingress"],
        fabric.lab.dev("spine1", "leaf1"),
        "{trace:#}"
    );
    assert_eq!(trace["outcome"]["result"], "delivered", "{trace:#}");
}

/// What the lab's live fleet makes of bad requests: each is refused
/// naming the field, with the switches it knows where that helps.
fn refuses_bad_requests(fabric: &Fabric) {
    let good = Tuple::udp(H1[0], H2[0], 40000, 53);
    let no_token = http(
        &fabric.lab.mgmt.name,
        fabric.collector.http,
        "POST",
        "/api/v1/trace/flow",
        None,
        Some(&good.body()),
    )
    .unwrap();
    assert_eq!(no_token.status, 401, "{}", no_token.body);

    let refused = |body: Value, field: &str, words: &[&str]| {
        let reply = fabric.request("POST", "/api/v1/trace/flow", Some(&body));
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        let answer = reply.json();
        let text = answer.to_string();
        assert!(
            answer["field"] == field || text.contains(&format!("`{field}`")),
            "{body}: the answer names no `{field}`: {answer:#}"
        );
        for word in words {
            assert!(text.contains(word), "{body}: no {word:?} in {answer:#}");
        }
    };
    refused(
        good.body_with("from", json!("leaf9")),
        "from",
        &["leaf9", "leaf1", "leaf2", "spine1", "spine2"],
    );
    // No switch owns 192.0.2.1 or has it on a connected subnet.
    refused(
        json!({"src": "192.0.2.1", "dst": H2[0]}),
        "src",
        &["192.0.2.1", "leaf1", "spine2"],
    );
    let mut no_dst = good.body();
    no_dst.as_object_mut().unwrap().remove("dst");
    refused(no_dst, "dst", &[]);
}
