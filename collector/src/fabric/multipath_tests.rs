//! The all-paths tree against scripted fabrics: every member followed,
//! every way a branch ends, the bounds that cut it, and a port range's
//! flows counted per path against the switches' own hashing.

use super::*;
use crate::fabric::asking::PER_AGENT;
use crate::fabric::scripted::{Behaviour, Net, bounds, flow, leaf_spine, quick};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

fn h1_to_h2() -> FlowSpec {
    flow("10.0.1.2", "10.0.2.2", 1000)
}

fn agents(path: &FabricPath) -> Vec<&str> {
    path.hops.iter().map(|s| s.agent.as_str()).collect()
}

fn range(first: u16, last: u16) -> Option<PortRange> {
    Some(PortRange { first, last })
}

#[tokio::test]
async fn every_ecmp_member_is_followed_to_its_end() {
    let net = leaf_spine();
    let tree = all_paths(&net, &net, &h1_to_h2(), None, &bounds())
        .await
        .unwrap();
    assert_eq!(tree.paths.len(), 2);
    assert_eq!(agents(&tree.paths[0]), ["leaf1", "spine1", "leaf2"]);
    assert_eq!(agents(&tree.paths[1]), ["leaf1", "spine2", "leaf2"]);
    let steps: Vec<(Option<&str>, Option<&str>)> = tree.paths[0]
        .hops
        .iter()
        .map(|s| (s.ingress.as_deref(), s.egress.as_deref()))
        .collect();
    assert_eq!(
        steps,
        [
            (Some("swp1"), Some("swp51")),
            (Some("swp1"), Some("swp2")),
            (Some("swp51"), Some("swp1"))
        ]
    );
    assert_eq!(
        tree.paths[0].hops[0].next_hop,
        Some("10.1.1.1".parse().unwrap())
    );
    for path in &tree.paths {
        assert_eq!(
            path.outcome,
            Outcome::Delivered {
                agent: "leaf2".into(),
                interface: Some("swp1".into()),
                local: false
            }
        );
        assert_eq!(path.flows, None);
    }
    assert!(tree.success && tree.reaches_destination && tree.cut.is_empty());
    assert_eq!(tree.tree.hop.agent, "leaf1");
    let members: Vec<Option<usize>> = tree.tree.children.iter().map(|c| c.member).collect();
    assert_eq!(members, [Some(0), Some(1)]);
    assert_eq!(tree.tree.children[1].children[0].hop.index, 3);
    assert!(tree.tree.children[1].children[0].outcome.is_some());
    assert!(tree.tree.outcome.is_none());
    assert_eq!(
        tree.summary,
        "tcp 10.0.1.2:1000 -> 10.0.2.2:80 takes 2 paths through the fabric: 2 delivered"
    );
    let json = serde_json::to_value(&tree).unwrap();
    assert_eq!(json["tree"]["children"][0]["hop"]["agent"], "spine1");
    assert_eq!(json["paths"][1]["outcome"]["result"], "delivered");
    assert!(json.get("flows").is_none());
    // Five switches asked, each once.
    assert_eq!(net.questions().len(), 5);
}

#[tokio::test]
async fn a_blackhole_on_one_spine_drops_one_branch() {
    let mut net = leaf_spine();
    net.switch("spine1").blackhole("10.0.2.0/24");
    let tree = all_paths(&net, &net, &h1_to_h2(), None, &bounds())
        .await
        .unwrap();
    let results: Vec<(&str, Vec<&str>)> = tree
        .paths
        .iter()
        .map(|p| (p.outcome.as_str(), agents(p)))
        .collect();
    assert_eq!(
        results,
        [
            ("dropped", vec!["leaf1", "spine1"]),
            ("delivered", vec!["leaf1", "spine2", "leaf2"])
        ]
    );
    assert!(tree.success && !tree.reaches_destination);
    assert!(matches!(
        &tree.tree.children[0].outcome,
        Some(Outcome::Dropped { agent, reason: DropReason::Blackhole, .. }) if agent == "spine1"
    ));
    assert!(
        tree.summary
            .ends_with("2 paths through the fabric: 1 dropped, 1 delivered")
    );
}

#[tokio::test]
async fn unmanaged_silent_and_looping_branches_end_the_way_a_walk_would() {
    let mut net = leaf_spine();
    net.switch("leaf1")
        .route(
            "10.9.0.0/16",
            &[("10.1.1.1", "swp51"), ("10.1.2.1", "swp52")],
        )
        .route(
            "10.8.0.0/16",
            &[("10.1.1.1", "swp51"), ("10.1.2.1", "swp52")],
        );
    net.switch("spine1")
        .iface("swp3", "10.5.0.1/24")
        .route("10.9.0.0/16", &[("10.5.0.254", "swp3")])
        .route("10.8.0.0/16", &[("10.1.1.0", "swp1")]);
    net.switch("spine2").behave(Behaviour::Silent);
    let tree = all_paths(&net, &net, &flow("10.0.1.2", "10.9.0.1", 1), None, &quick())
        .await
        .unwrap();
    let results: Vec<&str> = tree.paths.iter().map(|p| p.outcome.as_str()).collect();
    assert_eq!(results, ["unmanaged", "no_answer"]);
    assert_eq!(agents(&tree.paths[0]), ["leaf1", "spine1"]);
    assert_eq!(tree.paths[0].hops[1].egress.as_deref(), Some("swp3"));
    let unmanaged = &tree.tree.children[0].children[0];
    assert_eq!(unmanaged.hop.kind, FabricHopKind::Unmanaged);
    assert_eq!(unmanaged.hop.agent, "10.5.0.254");
    assert_eq!(tree.tree.children[1].hop.kind, FabricHopKind::NoAnswer);
    assert!(!tree.success);

    let tree = all_paths(&net, &net, &flow("10.0.1.2", "10.8.0.1", 1), None, &quick())
        .await
        .unwrap();
    let Outcome::Loop { cycle } = &tree.paths[0].outcome else {
        panic!("{:?}", tree.paths[0].outcome)
    };
    let cycle: Vec<&str> = cycle.iter().map(|s| s.agent.as_str()).collect();
    assert_eq!(cycle, ["spine1", "leaf1", "spine1"]);
    assert_eq!(
        agents(&tree.paths[0]),
        ["leaf1", "spine1", "leaf1", "spine1"]
    );
}

#[tokio::test]
async fn the_branch_bound_cuts_the_members_past_it_and_says_so() {
    let net = leaf_spine();
    let bounds = TraceSettings {
        max_branches: 1,
        ..bounds()
    };
    let tree = all_paths(&net, &net, &h1_to_h2(), range(1000, 1099), &bounds)
        .await
        .unwrap();
    assert_eq!(tree.paths.len(), 1);
    // The member the traced flow takes is the one kept.
    let chosen = tree.tree.hop.route.as_ref().unwrap().chosen.unwrap();
    assert_eq!(tree.tree.children[0].member, Some(chosen));
    assert_eq!(
        tree.cut,
        [format!(
            "max_branches: 1 paths reached at leaf1: member {} of 2 of 10.0.2.0/24 not followed",
            2 - chosen
        )]
    );
    assert!(!tree.reaches_destination);
    assert!(
        tree.summary.ends_with("(cut short by max_branches)"),
        "{}",
        tree.summary
    );
    // The flows of the member not followed are counted as such.
    let spread = tree.flows.unwrap();
    assert_eq!(spread.flows, 100);
    assert_eq!(spread.unfollowed + tree.paths[0].flows.unwrap(), 100);
    assert!(spread.unfollowed > 0);
}

#[tokio::test]
async fn the_hop_limit_cuts_the_branches_below_it() {
    let net = leaf_spine();
    let bounds = TraceSettings {
        hop_limit: 2,
        ..bounds()
    };
    let tree = all_paths(&net, &net, &h1_to_h2(), range(1000, 1019), &bounds)
        .await
        .unwrap();
    let results: Vec<&str> = tree.paths.iter().map(|p| p.outcome.as_str()).collect();
    assert_eq!(results, ["hop_limit", "hop_limit"]);
    assert_eq!(
        tree.cut,
        [
            "hop_limit: 2 hops reached at spine1: member 1 of 1 of 10.0.2.0/24 not followed",
            "hop_limit: 2 hops reached at spine2: member 1 of 1 of 10.0.2.0/24 not followed"
        ]
    );
    // Nothing below the limit was asked.
    assert!(net.questions().iter().all(|(agent, _)| agent != "leaf2"));
    assert_eq!(tree.flows.unwrap().unfollowed, 0);
    assert_eq!(tree.paths.iter().filter_map(|p| p.flows).sum::<u64>(), 20);
}

/// Which leaf1 member each source port of the range hashes onto, from the
/// switch's own answer for each flow: the oracle for the spread.
fn leaf1_members(net: &Net, ports: std::ops::RangeInclusive<u16>) -> HashMap<usize, u64> {
    let leaf1 = net.switches.iter().find(|s| s.name == "leaf1").unwrap();
    let mut counts = HashMap::new();
    for sport in ports {
        let spec = flow("10.0.1.2", "10.0.2.2", sport);
        let at = Arrival {
            agent: "leaf1".into(),
            vrf: "default".into(),
            ingress: Some("swp1".into()),
        };
        let TraceQuery::Hop(hop) = at.query(&spec) else {
            unreachable!()
        };
        let trace = leaf1.trace(&hop.arriving().unwrap());
        *counts
            .entry(trace.route().unwrap().chosen.unwrap())
            .or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn a_port_range_is_counted_per_path_with_one_question_per_switch() {
    let mut net = leaf_spine();
    net.switch("spine1").blackhole("10.0.2.0/24");
    let tree = all_paths(&net, &net, &h1_to_h2(), range(1000, 1299), &bounds())
        .await
        .unwrap();
    let expected = leaf1_members(&net, 1000..=1299);
    assert_eq!(tree.paths[0].flows, Some(expected[&0]));
    assert_eq!(tree.paths[1].flows, Some(expected[&1]));
    assert!(expected[&0] > 0 && expected[&1] > 0);
    let spread = tree.flows.clone().unwrap();
    assert_eq!(
        (spread.first, spread.last, spread.flows, spread.unfollowed),
        (1000, 1299, 300, 0)
    );
    assert!(
        tree.summary.ends_with(&format!(
            "of the 300 flows of source ports 1000-1299, {} reach their destination",
            expected[&1]
        )),
        "{}",
        tree.summary
    );
    // Each switch the flows reach was asked about the whole range once.
    let spreads: Vec<(String, Option<String>)> = net
        .questions()
        .into_iter()
        .filter_map(|(agent, query)| match query {
            TraceQuery::Paths(paths) => {
                assert!(paths.per_flow);
                assert_eq!(paths.sport_range, range(1000, 1299));
                assert_eq!(paths.src, Some("10.0.1.2".parse().unwrap()));
                Some((agent, paths.iif))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        spreads,
        [
            ("leaf1".to_string(), Some("swp1".to_string())),
            ("spine1".to_string(), Some("swp1".to_string())),
            ("spine2".to_string(), Some("swp1".to_string())),
            ("leaf2".to_string(), Some("swp52".to_string())),
        ]
    );
    let json = serde_json::to_value(&tree).unwrap();
    assert_eq!(json["flows"]["flows"], 300);
    assert_eq!(json["paths"][0]["flows"], expected[&0]);

    let error = all_paths(
        &net,
        &net,
        &FlowSpec {
            proto: Some(1),
            sport: None,
            dport: None,
            ..h1_to_h2()
        },
        range(1, 2),
        &bounds(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.field(), "proto");
    assert!(error.to_string().contains("protocol 1 has none"), "{error}");
}

#[tokio::test]
async fn a_member_whose_link_is_down_drops_its_flows_while_the_others_go_on() {
    let mut net = leaf_spine();
    net.switch("leaf1").link_down("swp52");
    let tree = all_paths(&net, &net, &h1_to_h2(), range(1000, 1199), &bounds())
        .await
        .unwrap();
    let expected = leaf1_members(&net, 1000..=1199);
    let results: Vec<(&str, Vec<&str>, Option<u64>)> = tree
        .paths
        .iter()
        .map(|p| (p.outcome.as_str(), agents(p), p.flows))
        .collect();
    assert_eq!(
        results,
        [
            ("dropped", vec!["leaf1"], Some(expected[&1])),
            (
                "delivered",
                vec!["leaf1", "spine1", "leaf2"],
                Some(expected[&0])
            ),
        ]
    );
    assert!(matches!(
        &tree.tree.outcome,
        Some(Outcome::Dropped {
            reason: DropReason::EgressDown,
            ..
        })
    ));
    assert_eq!(tree.paths[0].hops[0].egress.as_deref(), Some("swp52"));
    assert_eq!(tree.tree.children.len(), 1);
}

#[tokio::test]
async fn a_connected_destination_is_one_delivered_path() {
    let net = leaf_spine();
    let tree = all_paths(
        &net,
        &net,
        &flow("10.0.1.2", "10.0.1.9", 7),
        range(1, 10),
        &bounds(),
    )
    .await
    .unwrap();
    assert_eq!(tree.paths.len(), 1);
    assert_eq!(tree.paths[0].flows, Some(10));
    assert!(tree.reaches_destination);
    assert_eq!(tree.paths[0].hops[0].egress.as_deref(), Some("swp1"));
}

/// Four paths of five switches: two ECMP stages between two leaves.
fn four_by_five() -> Net {
    let mut net = Net::default();
    net.switch("leaf1")
        .iface("swp1", "10.0.1.1/24")
        .iface("swp51", "10.2.1.0/31")
        .iface("swp52", "10.2.2.0/31")
        .route(
            "10.0.2.0/24",
            &[("10.2.1.1", "swp51"), ("10.2.2.1", "swp52")],
        );
    net.switch("agg1")
        .iface("swp1", "10.2.1.1/31")
        .iface("swp51", "10.3.1.0/31")
        .iface("swp52", "10.3.2.0/31")
        .route(
            "10.0.2.0/24",
            &[("10.3.1.1", "swp51"), ("10.3.2.1", "swp52")],
        );
    net.switch("agg2")
        .iface("swp1", "10.2.2.1/31")
        .iface("swp51", "10.3.3.0/31")
        .iface("swp52", "10.3.4.0/31")
        .route(
            "10.0.2.0/24",
            &[("10.3.3.1", "swp51"), ("10.3.4.1", "swp52")],
        );
    net.switch("core1")
        .iface("swp1", "10.3.1.1/31")
        .iface("swp2", "10.3.3.1/31")
        .iface("swp3", "10.4.1.0/31")
        .route("10.0.2.0/24", &[("10.4.1.1", "swp3")]);
    net.switch("core2")
        .iface("swp1", "10.3.2.1/31")
        .iface("swp2", "10.3.4.1/31")
        .iface("swp3", "10.4.2.0/31")
        .route("10.0.2.0/24", &[("10.4.2.1", "swp3")]);
    net.switch("agg3")
        .iface("swp1", "10.4.1.1/31")
        .iface("swp2", "10.4.2.1/31")
        .iface("swp3", "10.5.0.0/31")
        .route("10.0.2.0/24", &[("10.5.0.1", "swp3")]);
    net.switch("leaf2")
        .iface("swp51", "10.5.0.1/31")
        .iface("swp1", "10.0.2.1/24");
    net
}

#[tokio::test]
async fn the_switches_of_a_level_are_asked_at_once() {
    let mut net = four_by_five();
    net.yields = 8;
    let tree = all_paths(&net, &net, &h1_to_h2(), None, &bounds())
        .await
        .unwrap();
    assert_eq!(tree.paths.len(), 4);
    for path in &tree.paths {
        assert_eq!(path.hops.len(), 5);
        assert!(path.reaches_destination);
    }
    let cores: Vec<&str> = tree
        .paths
        .iter()
        .map(|p| p.hops[2].agent.as_str())
        .collect();
    assert_eq!(cores, ["core1", "core2", "core1", "core2"]);
    // 1 + 2 + 4 questions down to the cores, the four of a level in
    // flight together; below them the branches meet again, arriving on
    // the same interfaces, and share 2 + 1 questions.
    assert_eq!(net.questions().len(), 10);
    assert_eq!(net.max_in_flight.load(Ordering::SeqCst), 4);
    assert!(net.max_per_agent() <= PER_AGENT);

    // With a port range, the spread question rides beside each trace.
    let mut net = four_by_five();
    net.yields = 8;
    let tree = all_paths(&net, &net, &h1_to_h2(), range(2000, 2999), &bounds())
        .await
        .unwrap();
    assert_eq!(net.max_in_flight.load(Ordering::SeqCst), 8);
    let spread = tree.flows.unwrap();
    assert_eq!(spread.unfollowed, 0);
    assert_eq!(tree.paths.iter().filter_map(|p| p.flows).sum::<u64>(), 1000);
    assert!(tree.paths.iter().all(|p| p.flows.unwrap() > 100));
}
