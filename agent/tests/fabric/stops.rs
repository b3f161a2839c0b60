//! Where a fabric trace ends short of its destination, each against the
//! lab's real cause: a spine that blackholes one prefix (and the
//! multi-path tree that shows both branches), a router no agent runs on,
//! a static routing loop, and an agent that is silent or killed.

use super::leafspine::{BEYOND_ROUTER, DARK, H1, H2, H2_DARK, LOOPING, family};
use super::{Fabric, Tuple, rx_packets, switches};
use crate::lab::{Flow, route_get_batch};
use crate::util::poll;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A UDP flow from h1 to `dst` that leaf1's kernel sends to `spine`,
/// searching source ports from `first`.
fn flow_via(fabric: &Fabric, dst: &str, v6: bool, spine: &str, first: u16) -> Tuple {
    let leaf1_in = fabric.lab.dev("leaf1", "h1").to_string();
    (first..first + 64)
        .map(|sport| Tuple::udp(H1[family(v6)], dst, sport, 5353))
        .find(|t| {
            fabric
                .kernel("leaf1", t, Some(&leaf1_in))
                .is_ok_and(|e| e.interface == fabric.lab.dev("leaf1", spine))
        })
        .unwrap_or_else(|| panic!("no source port from {first} sends {dst} to {spine}"))
}

#[test]
fn root_netns_fabric_trace_drops_where_a_spine_blackholes() {
    const TEST: &str = "root_netns_fabric_trace_drops_where_a_spine_blackholes";
    let Some(fabric) = Fabric::start(TEST, "") else {
        return;
    };
    for v6 in [false, true] {
        let f = family(v6);
        let dark = H2_DARK[f];
        let dropped = flow_via(&fabric, dark, v6, "spine1", 40000);
        let delivered = flow_via(&fabric, dark, v6, "spine2", 40000);

        // The lab's own proof: the packets hashed onto spine1 die there,
        // the others reach h2.
        let h2_dev = fabric.lab.dev("h2", "leaf2").to_string();
        let h2_rx = || rx_packets(&fabric.lab, "h2", &h2_dev);
        let before = h2_rx();
        assert_eq!(fabric.spine_taken(&dropped), "spine1");
        assert!(
            h2_rx() - before < super::BURST,
            "{dropped} reached h2 through spine1's blackhole"
        );
        assert_eq!(fabric.spine_taken(&delivered), "spine2");
        assert!(
            poll(Duration::from_secs(5), || (h2_rx() - before
                >= super::BURST)
                .then_some(()))
            .is_some(),
            "{delivered} never reached h2"
        );

        let trace = fabric.trace(&dropped.body());
        assert_eq!(
            fabric.check_hops(&dropped, &trace),
            ["leaf1", "spine1"],
            "{trace:#}"
        );
        let outcome = &trace["outcome"];
        assert_eq!(outcome["result"], "dropped", "{trace:#}");
        assert_eq!(outcome["agent"], "spine1", "{trace:#}");
        assert_eq!(outcome["reason"], "blackhole", "{trace:#}");
        assert_eq!(trace["success"], true, "every switch answered: {trace:#}");
        assert_eq!(trace["reaches_destination"], false, "{trace:#}");
        let drop_hop = &trace["hops"][1];
        assert_eq!(drop_hop["action"], "drop", "{trace:#}");
        assert_eq!(drop_hop["route"]["prefix"], DARK[f], "{trace:#}");

        let trace = fabric.trace(&delivered.body());
        assert_eq!(
            fabric.check_hops(&delivered, &trace),
            ["leaf1", "spine2", "leaf2"],
            "{trace:#}"
        );
        assert_eq!(trace["outcome"]["result"], "delivered", "{trace:#}");

        // Every member followed: one branch dies at spine1, one delivers.
        let tree = fabric.post("/api/v1/trace/multi-path", &dropped.body());
        let mut ends: Vec<(Vec<String>, String)> = tree["paths"]
            .as_array()
            .unwrap_or_else(|| panic!("no paths: {tree:#}"))
            .iter()
            .map(|p| {
                let agents = p["hops"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["agent"].as_str().unwrap().to_string())
                    .collect();
                (agents, p["outcome"]["result"].as_str().unwrap().to_string())
            })
            .collect();
        ends.sort();
        let expected: Vec<(Vec<String>, String)> = vec![
            (strings(&["leaf1", "spine1"]), "dropped".into()),
            (strings(&["leaf1", "spine2", "leaf2"]), "delivered".into()),
        ];
        assert_eq!(ends, expected, "{tree:#}");
        assert_eq!(tree["reaches_destination"], false, "{tree:#}");
        assert_eq!(tree["cut"], json!([]), "{tree:#}");
        // One path at most: the one the flow itself takes is kept, and the
        // answer says which bound cut the other.
        let small = fabric.post(
            "/api/v1/trace/multi-path",
            &dropped.body_with("max_branches", json!(1)),
        );
        let cut = small["cut"]
            .as_array()
            .unwrap_or_else(|| panic!("{small:#}"));
        assert!(
            cut.iter().any(|c| c
                .as_str()
                .is_some_and(|c| c.contains("max_branches") && c.contains("leaf1"))),
            "{small:#}"
        );
        let kept = small["paths"].as_array().unwrap();
        assert_eq!(kept.len(), 1, "{small:#}");
        assert_eq!(kept[0]["outcome"]["agent"], "spine1", "{small:#}");
        assert_eq!(tree["tree"]["hop"]["agent"], "leaf1", "{tree:#}");
        let children: Vec<&Value> = tree["tree"]["children"]
            .as_array()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(children.len(), 2, "{tree:#}");
        // The CLI prints the paths side by side and exits 1: not every
        // path arrives.
        let (code, out) = fabric.trace_cli(&dropped, &["--all-paths"]);
        assert_eq!(code, Some(1), "{out}");
        for word in ["spine1", "spine2", "blackhole"] {
            assert!(out.contains(word), "no {word} in\n{out}");
        }

        // A source-port range spreads over the two paths as leaf1's kernel
        // hashes it.
        let (first, last) = (41000u16, 41063u16);
        let leaf1_in = fabric.lab.dev("leaf1", "h1").to_string();
        let flows: Vec<Flow> = (first..=last)
            .map(|sport| {
                Tuple {
                    sport,
                    ..dropped.clone()
                }
                .arriving(Some(&leaf1_in))
            })
            .collect();
        let via_spine1 = route_get_batch(fabric.lab.ns("leaf1"), &flows)
            .iter()
            .filter(|e| e.interface == fabric.lab.dev("leaf1", "spine1"))
            .count() as u64;
        let spread = fabric.post(
            "/api/v1/trace/multi-path",
            &dropped.body_with("sport_range", json!(format!("{first}-{last}"))),
        );
        assert_eq!(spread["flows"]["flows"], 64, "{spread:#}");
        assert_eq!(spread["flows"]["unfollowed"], 0, "{spread:#}");
        for path in spread["paths"].as_array().unwrap() {
            let expected = if path["outcome"]["result"] == "dropped" {
                via_spine1
            } else {
                64 - via_spine1
            };
            assert_eq!(
                path["flows"], expected,
                "leaf1's kernel sends {via_spine1} of 64 to spine1: {spread:#}"
            );
        }
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn root_netns_fabric_trace_ends_unmanaged_at_a_router_without_agent() {
    const TEST: &str = "root_netns_fabric_trace_ends_unmanaged_at_a_router_without_agent";
    let Some(fabric) = Fabric::start(TEST, "") else {
        return;
    };
    for v6 in [false, true] {
        let f = family(v6);
        let tuple = Tuple::udp(H1[f], BEYOND_ROUTER[f], 40100, 443);
        let trace = fabric.trace(&tuple.body());
        let router = fabric.lab.addr("rtr", "leaf2", v6).to_string();
        let outcome = &trace["outcome"];
        assert_eq!(outcome["result"], "unmanaged", "{trace:#}");
        assert_eq!(outcome["agent"], "leaf2", "{trace:#}");
        assert_eq!(outcome["address"], router, "{trace:#}");
        assert_eq!(
            trace["success"], true,
            "an unmanaged hop ends, not fails: {trace:#}"
        );
        assert_eq!(trace["reaches_destination"], false, "{trace:#}");
        let spine = fabric
            .kernel("leaf1", &tuple, Some(fabric.lab.dev("leaf1", "h1")))
            .map(|e| fabric.lab.peer_of("leaf1", &e.interface))
            .unwrap_or_else(|e| panic!("leaf1 has no route for {tuple}: {e}"))
            .unwrap();
        fabric.check_hops(&tuple, &trace);
        assert_eq!(switches(&trace), ["leaf1", spine, "leaf2"], "{trace:#}");
        let last = trace["hops"].as_array().unwrap().last().unwrap();
        assert_eq!(last["type"], "unmanaged", "{trace:#}");
        let leaf2 = trace["hops"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["agent"] == "leaf2")
            .unwrap();
        assert_eq!(leaf2["next_hop"], router, "{trace:#}");
        assert_eq!(
            leaf2["egress"]["name"],
            fabric.lab.dev("leaf2", "rtr"),
            "{trace:#}"
        );
    }
}

#[test]
fn root_netns_fabric_trace_reports_a_static_routing_loop() {
    const TEST: &str = "root_netns_fabric_trace_reports_a_static_routing_loop";
    let Some(fabric) = Fabric::start(TEST, "") else {
        return;
    };
    for v6 in [false, true] {
        let f = family(v6);
        let tuple = Tuple::udp(H1[f], LOOPING[f], 40200, 443);
        let trace = fabric.trace(&tuple.body());
        assert_eq!(trace["outcome"]["result"], "loop", "{trace:#}");
        assert_eq!(trace["reaches_destination"], false, "{trace:#}");
        fabric.check_hops(&tuple, &trace);
        // leaf2 sends it up to spine1, which sends it back down: the same
        // switch on the same ingress twice.
        let mut cycle: Vec<(String, String)> = trace["outcome"]["cycle"]
            .as_array()
            .unwrap_or_else(|| panic!("no cycle: {trace:#}"))
            .iter()
            .map(|s| {
                (
                    s["agent"].as_str().unwrap().to_string(),
                    s["ingress"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        // A cycle may name its first step again to close it.
        if cycle.len() > 1 && cycle.first() == cycle.last() {
            cycle.pop();
        }
        cycle.sort();
        let leaf2 = (
            "leaf2".to_string(),
            fabric.lab.dev("leaf2", "spine1").to_string(),
        );
        let spine1 = (
            "spine1".to_string(),
            fabric.lab.dev("spine1", "leaf2").to_string(),
        );
        assert_eq!(cycle, [leaf2, spine1], "{trace:#}");

        // Cut short by the request's hop limit before the loop shows.
        let cut = fabric.trace(&tuple.body_with("hop_limit", json!(3)));
        assert_eq!(cut["outcome"]["result"], "hop_limit", "{cut:#}");
        assert_eq!(cut["outcome"]["limit"], 3, "{cut:#}");
        assert_eq!(switches(&cut).len(), 3, "{cut:#}");
        assert_eq!(switches(&cut), switches(&trace)[..3], "{cut:#}");
    }
}

/// One trace's outcome, its wall time through the API and the answer.
fn timed(fabric: &Fabric, body: &Value) -> (Duration, Value) {
    let started = Instant::now();
    let trace = fabric.trace(body);
    (started.elapsed(), trace)
}

#[test]
fn root_netns_fabric_trace_silent_or_killed_agent_is_no_answer() {
    const TEST: &str = "root_netns_fabric_trace_silent_or_killed_agent_is_no_answer";
    let Some(mut fabric) = Fabric::start(TEST, "[trace]\nhop_timeout = \"1s\"\n") else {
        return;
    };
    let hop_timeout = Duration::from_secs(1);
    let through_spine2 = flow_via(&fabric, H2[0], false, "spine2", 40300);
    let through_spine1 = flow_via(&fabric, H2[0], false, "spine1", 40300);
    assert_eq!(
        fabric.trace(&through_spine2.body())["outcome"]["result"],
        "delivered"
    );

    // Stopped: connected but silent, so the hop waits out its timeout.
    fabric
        .agent("spine2")
        .signal(nix::sys::signal::Signal::SIGSTOP);
    let (took, trace) = timed(&fabric, &through_spine2.body());
    assert_eq!(trace["outcome"]["result"], "no_answer", "{trace:#}");
    assert_eq!(trace["outcome"]["agent"], "spine2", "{trace:#}");
    assert_eq!(trace["success"], false, "{trace:#}");
    assert_eq!(
        fabric.check_hops(&through_spine2, &trace),
        ["leaf1", "spine2"],
        "{trace:#}"
    );
    assert_eq!(trace["hops"][1]["type"], "no_answer", "{trace:#}");
    assert!(
        took >= hop_timeout && took < hop_timeout + Duration::from_secs(2),
        "a silent agent's hop took {took:?} with a {hop_timeout:?} hop timeout: {trace:#}"
    );
    // The other spine's flows still go through, and at once.
    let (took, trace) = timed(&fabric, &through_spine1.body());
    assert_eq!(trace["outcome"]["result"], "delivered", "{trace:#}");
    assert!(took < hop_timeout, "{took:?}: {trace:#}");

    // Killed: the collector sees the connection close and answers without
    // waiting.
    fabric.agent_mut("spine2").kill();
    let mut last = Value::Null;
    let fast = poll(Duration::from_secs(10), || {
        let (took, trace) = timed(&fabric, &through_spine2.body());
        let done = trace["outcome"]["result"] == "no_answer" && took < hop_timeout;
        last = trace;
        done.then_some(())
    });
    assert!(
        fast.is_some(),
        "a killed agent's hop never ended within the hop timeout: {last:#}"
    );
    assert_eq!(last["outcome"]["agent"], "spine2", "{last:#}");
}
