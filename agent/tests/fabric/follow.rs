//! Random flows across the fabric, IPv4 and IPv6, both directions: each
//! hop the collector reports is the kernel's answer in that switch, and
//! the spine it names is the one the flow's real packets crossed.

use super::leafspine::SPINES;
use super::{Fabric, Tuple, seed, source_host};
use crate::lab::{Proto, Rng};
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
    let mut rng = Rng::new(seed(TEST));
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
        }
    }
}
