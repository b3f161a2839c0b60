//! The single-path walk against scripted fabrics: every way a walk ends,
//! where it starts, what it asks each switch, and the return flow.

use super::*;
use crate::fabric::scripted::{Behaviour, Net, bounds, flow, leaf_spine, quick, sport_via};
use hopwatch_wire::trace::DropReason;
use std::time::Duration;

fn agents(trace: &FabricTrace) -> Vec<&str> {
    trace.hops.iter().map(|h| h.agent.as_str()).collect()
}

#[tokio::test]
async fn a_flow_is_delivered_across_the_fabric_hop_by_hop() {
    let net = leaf_spine();
    let sport = sport_via(&net, "spine2");
    let spec = flow("10.0.1.2", "10.0.2.2", sport);
    let trace = super::trace(&net, &net, &spec, &bounds(), false)
        .await
        .unwrap();
    assert_eq!(agents(&trace), ["leaf1", "spine2", "leaf2"]);
    assert_eq!(
        trace.outcome,
        Outcome::Delivered {
            agent: "leaf2".into(),
            interface: Some("swp1".into()),
            local: false
        }
    );
    assert!(trace.success && trace.reaches_destination);
    // Each switch was asked about the flow as it arrives there.
    let asked = net.questions();
    let ingresses: Vec<(&str, Option<&str>)> = asked
        .iter()
        .map(|(agent, query)| match query {
            TraceQuery::Hop(hop) => (agent.as_str(), Some(hop.ingress.as_str())),
            _ => (agent.as_str(), None),
        })
        .collect();
    assert_eq!(
        ingresses,
        [
            ("leaf1", Some("swp1")),
            ("spine2", Some("swp1")),
            ("leaf2", Some("swp52"))
        ]
    );
    // Every hop carries the switch's own answer.
    let first = &trace.hops[0];
    assert_eq!(first.next_hop, Some("10.1.2.1".parse().unwrap()));
    assert_eq!(first.egress.as_ref().unwrap().name, "swp52");
    let route = first.route.as_ref().unwrap();
    assert_eq!((route.members.len(), route.chosen), (2, Some(1)));
    assert_eq!(first.backend, "kernel");
    assert_eq!(first.agent_elapsed_us, 40);
    assert!(first.load_share.is_some() && first.neighbor.is_some());
    assert_eq!(first.action, "forward");
    assert!(
        first
            .description
            .contains("ECMP member 2 of 2 to spine2, arriving on swp1"),
        "{}",
        first.description
    );
    assert_eq!(trace.hops[2].action, "deliver");
    assert!(
        trace.summary.contains("reaches its destination through 3 switches (leaf1, spine2, leaf2): leaf2 delivers it on swp1"),
        "{}",
        trace.summary
    );
    let json = serde_json::to_value(&trace).unwrap();
    assert_eq!(json["outcome"]["result"], "delivered");
    assert_eq!(json["hops"][0]["type"], "switch");
    assert_eq!(json["hops"][1]["index"], 2);
    assert!(json.get("reverse").is_none());
}

#[tokio::test]
async fn a_flow_to_a_switch_address_is_delivered_to_the_switch() {
    let net = leaf_spine();
    let spec = flow("10.0.1.2", "10.0.2.1", 1000);
    let trace = super::trace(&net, &net, &spec, &bounds(), false)
        .await
        .unwrap();
    assert_eq!(trace.hops.len(), 3);
    assert_eq!(
        trace.outcome,
        Outcome::Delivered {
            agent: "leaf2".into(),
            interface: Some("lo".into()),
            local: true
        }
    );
    assert!(
        trace.hops[2]
            .description
            .contains("delivered to the switch itself")
    );

    // A link address is reached on the switch that holds it.
    let spec = flow("10.0.1.2", "10.1.1.1", 1000);
    let trace = super::trace(&net, &net, &spec, &bounds(), false)
        .await
        .unwrap();
    assert_eq!(agents(&trace), ["leaf1", "spine1"]);
    assert!(matches!(
        trace.outcome,
        Outcome::Delivered { local: true, .. }
    ));
}

#[tokio::test]
async fn a_blackhole_drops_the_flows_hashed_onto_it_with_its_reason() {
    let mut net = leaf_spine();
    net.switch("spine1").blackhole("10.0.2.0/24");
    let dropped = flow("10.0.1.2", "10.0.2.2", sport_via(&net, "spine1"));
    let trace_dropped = trace(&net, &net, &dropped, &bounds(), false).await.unwrap();
    assert_eq!(agents(&trace_dropped), ["leaf1", "spine1"]);
    let Outcome::Dropped {
        agent,
        reason,
        description,
    } = &trace_dropped.outcome
    else {
        panic!("{:?}", trace_dropped.outcome)
    };
    assert_eq!((agent.as_str(), *reason), ("spine1", DropReason::Blackhole));
    assert!(description.contains("blackhole route 10.0.2.0/24"));
    assert!(trace_dropped.success && !trace_dropped.reaches_destination);
    assert_eq!(trace_dropped.hops[1].action, "drop");
    assert!(
        trace_dropped
            .summary
            .contains("is dropped at spine1 (blackhole)")
    );

    let delivered = flow("10.0.1.2", "10.0.2.2", sport_via(&net, "spine2"));
    let trace_delivered = trace(&net, &net, &delivered, &bounds(), false)
        .await
        .unwrap();
    assert!(trace_delivered.reaches_destination);
}

#[tokio::test]
async fn a_next_hop_no_agent_owns_ends_the_trace_unmanaged() {
    let mut net = leaf_spine();
    net.switch("leaf2")
        .route("10.9.0.0/16", &[("10.0.2.254", "swp1")]);
    let spec = flow("10.0.2.2", "10.9.0.5", 1000);
    let trace = super::trace(&net, &net, &spec, &bounds(), false)
        .await
        .unwrap();
    assert_eq!(
        trace.outcome,
        Outcome::Unmanaged {
            agent: "leaf2".into(),
            address: "10.0.2.254".parse().unwrap()
        }
    );
    assert!(trace.success && !trace.reaches_destination);
    assert_eq!(trace.hops.len(), 2);
    assert_eq!(trace.hops[1].kind, FabricHopKind::Unmanaged);
    assert_eq!(trace.hops[1].agent, "10.0.2.254");
    assert!(trace.hops[0].description.contains("which no agent owns"));
    // A host on the subnet is delivered to, not unmanaged.
    let spec = flow("10.0.2.2", "10.0.2.77", 1000);
    let trace = super::trace(&net, &net, &spec, &bounds(), false)
        .await
        .unwrap();
    assert!(matches!(
        trace.outcome,
        Outcome::Delivered { local: false, .. }
    ));
}

#[tokio::test]
async fn a_silent_agent_ends_its_hop_within_the_hop_timeout() {
    let mut net = leaf_spine();
    net.switch("spine1").behave(Behaviour::Silent);
    net.switch("spine2").behave(Behaviour::Silent);
    let spec = flow("10.0.1.2", "10.0.2.2", 1000);
    let started = std::time::Instant::now();
    let trace = super::trace(&net, &net, &spec, &quick(), false)
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    let Outcome::NoAnswer { agent, why } = &trace.outcome else {
        panic!("{:?}", trace.outcome)
    };
    assert!(agent.starts_with("spine"));
    assert!(why.contains("did not answer within 100ms"), "{why}");
    assert!(!trace.success);
    assert_eq!(trace.hops[1].kind, FabricHopKind::NoAnswer);
    assert_eq!(trace.hops[1].action, "stop");
}

#[tokio::test]
async fn an_offline_or_confused_agent_ends_its_hop() {
    let mut net = leaf_spine();
    net.switch("spine1").behave(Behaviour::Offline);
    net.switch("spine2").behave(Behaviour::Confused);
    for spine in ["spine1", "spine2"] {
        let spec = flow("10.0.1.2", "10.0.2.2", sport_via(&net, spine));
        let trace = super::trace(&net, &net, &spec, &bounds(), false)
            .await
            .unwrap();
        let Outcome::NoAnswer { agent, why } = &trace.outcome else {
            panic!("{:?}", trace.outcome)
        };
        assert_eq!(agent, spine);
        let expected = if spine == "spine1" {
            "not connected"
        } else {
            "a paths answer to a trace question"
        };
        assert!(why.contains(expected), "{why}");
    }
}

#[tokio::test]
async fn the_trace_timeout_bounds_the_whole_walk() {
    let mut net = leaf_spine();
    net.switch("spine1").behave(Behaviour::Silent);
    net.switch("spine2").behave(Behaviour::Silent);
    let bounds = TraceSettings {
        hop_timeout: Duration::from_secs(60),
        timeout: Duration::from_millis(30),
        ..bounds()
    };
    let spec = flow("10.0.1.2", "10.0.2.2", 1000);
    let started = std::time::Instant::now();
    let trace = super::trace(&net, &net, &spec, &bounds, false)
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let Outcome::NoAnswer { why, .. } = &trace.outcome else {
        panic!("{:?}", trace.outcome)
    };
    assert!(why.contains("own timeout of 30ms ran out"), "{why}");
}

fn looping() -> Net {
    let mut net = leaf_spine();
    net.switch("leaf1")
        .route("10.8.0.0/16", &[("10.1.1.1", "swp51")]);
    net.switch("spine1")
        .route("10.8.0.0/16", &[("10.1.1.0", "swp1")]);
    net
}

#[tokio::test]
async fn a_routing_loop_is_reported_with_its_cycle() {
    let net = looping();
    let spec = flow("10.0.1.2", "10.8.0.1", 1000);
    let trace = super::trace(&net, &net, &spec, &bounds(), false)
        .await
        .unwrap();
    let Outcome::Loop { cycle } = &trace.outcome else {
        panic!("{:?}", trace.outcome)
    };
    let cycle: Vec<(&str, Option<&str>)> = cycle
        .iter()
        .map(|s| (s.agent.as_str(), s.ingress.as_deref()))
        .collect();
    assert_eq!(
        cycle,
        [
            ("spine1", Some("swp1")),
            ("leaf1", Some("swp51")),
            ("spine1", Some("swp1"))
        ]
    );
    assert_eq!(agents(&trace), ["leaf1", "spine1", "leaf1"]);
    assert!(
        trace
            .summary
            .ends_with("loops: spine1 (in swp1) -> leaf1 (in swp51) -> spine1 (in swp1)"),
        "{}",
        trace.summary
    );
    let json = serde_json::to_value(&trace).unwrap();
    assert_eq!(json["outcome"]["result"], "loop");
    assert_eq!(json["outcome"]["cycle"][0]["agent"], "spine1");
}

#[tokio::test]
async fn the_hop_limit_stops_a_walk() {
    let net = looping();
    let spec = flow("10.0.1.2", "10.8.0.1", 1000);
    let bounds = TraceSettings {
        hop_limit: 2,
        ..bounds()
    };
    let trace = super::trace(&net, &net, &spec, &bounds, false)
        .await
        .unwrap();
    assert_eq!(trace.outcome, Outcome::HopLimit { limit: 2 });
    assert_eq!(trace.hops.len(), 2);
    assert_eq!(net.questions().len(), 2);
}

#[tokio::test]
async fn the_first_switch_is_where_the_source_enters_or_a_clear_error() {
    let mut net = leaf_spine();
    let unknown = FlowSpec {
        from: Some("leaf9".into()),
        ..flow("10.0.1.2", "10.0.2.2", 1000)
    };
    let error = trace(&net, &net, &unknown, &bounds(), false)
        .await
        .unwrap_err();
    assert_eq!(error.field(), "from");
    assert!(
        error
            .to_string()
            .contains("known agents: leaf1, leaf2, spine1, spine2"),
        "{error}"
    );

    let nowhere = flow("192.168.9.9", "10.0.2.2", 1000);
    let error = trace(&net, &net, &nowhere, &bounds(), false)
        .await
        .unwrap_err();
    assert_eq!(error.field(), "src");
    assert!(matches!(&error, WalkError::NoStart { candidates, .. } if candidates.len() == 4));

    // Two switches on the host's subnet: which one the host uses is not
    // the collector's to guess.
    net.switch("leaf3").iface("swp1", "10.0.1.3/24");
    let error = trace(
        &net,
        &net,
        &flow("10.0.1.2", "10.0.2.2", 1000),
        &bounds(),
        false,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, WalkError::AmbiguousStart { candidates, .. } if candidates == &["leaf1", "leaf3"]),
        "{error}"
    );
    // …unless a longer prefix settles it.
    net.switch("leaf3").iface("swp2", "10.0.1.0/30");
    let trace_ = super::trace(
        &net,
        &net,
        &flow("10.0.1.2", "10.0.2.2", 1000),
        &bounds(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(trace_.hops[0].agent, "leaf3");
    assert_eq!(trace_.hops[0].ingress.as_deref(), Some("swp2"));
}

#[tokio::test]
async fn a_named_or_owning_first_switch_places_the_flow_itself() {
    let net = leaf_spine();
    // `from` the switch beside the source: arriving on that subnet.
    let spec = FlowSpec {
        from: Some("leaf1".into()),
        ..flow("10.0.1.2", "10.0.2.2", sport_via(&net, "spine1"))
    };
    trace(&net, &net, &spec, &bounds(), false).await.unwrap();
    // `from` a switch away from it: the switch is left to place it.
    let spec = FlowSpec {
        from: Some("spine1".into()),
        ..flow("10.0.1.2", "10.0.2.2", 1000)
    };
    let traced = trace(&net, &net, &spec, &bounds(), false).await.unwrap();
    assert_eq!(agents(&traced), ["spine1", "leaf2"]);
    // A switch's own address as the source: the switch originates the flow.
    let spec = flow("10.1.1.1", "10.0.2.2", 1000);
    trace(&net, &net, &spec, &bounds(), false).await.unwrap();
    let kinds: Vec<(String, &str)> = net
        .questions()
        .iter()
        .filter(|(agent, _)| agent != "leaf2")
        .map(|(agent, query)| {
            let kind = match query {
                TraceQuery::Hop(hop) if hop.ingress == "swp1" => "hop swp1",
                TraceQuery::Hop(_) => "hop",
                TraceQuery::Flow(flow) if flow.src.is_some() => "flow with src",
                _ => "other",
            };
            (agent.clone(), kind)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("leaf1".to_string(), "hop swp1"),
            ("spine1".to_string(), "hop swp1"),
            ("spine1".to_string(), "flow with src"),
            ("spine1".to_string(), "flow with src"),
        ]
    );
}

#[tokio::test]
async fn the_return_flow_on_another_spine_is_reported_asymmetric() {
    let mut net = leaf_spine();
    net.switch("leaf1")
        .route("10.0.2.0/24", &[("10.1.1.1", "swp51")]);
    net.switch("leaf2")
        .route("10.0.1.0/24", &[("10.1.2.3", "swp52")]);
    let spec = flow("10.0.1.2", "10.0.2.2", 1000);
    let traced = trace(&net, &net, &spec, &bounds(), true).await.unwrap();
    let back = traced.reverse.as_ref().unwrap();
    assert_eq!(agents(back), ["leaf2", "spine2", "leaf1"]);
    assert_eq!(back.request.src, spec.dst);
    assert_eq!(
        (back.request.sport, back.request.dport),
        (Some(80), Some(1000))
    );
    // The return flow starts where the forward one was delivered,
    // arriving from the destination's side.
    let (agent, query) = &net.questions()[3];
    assert_eq!(agent, "leaf2");
    assert!(matches!(query, TraceQuery::Hop(hop) if hop.ingress == "swp1"));
    let symmetry = traced.symmetry.as_ref().unwrap();
    assert!(!symmetry.symmetric);
    assert_eq!(symmetry.forward, ["leaf1", "spine1", "leaf2"]);
    assert_eq!(symmetry.reverse, ["leaf1", "spine2", "leaf2"]);
    assert_eq!(symmetry.only_forward, ["spine1"]);
    assert_eq!(symmetry.only_reverse, ["spine2"]);
    assert!(
        symmetry.description.starts_with("Asymmetric: the flow goes leaf1 -> spine1 -> leaf2 and returns leaf2 -> spine2 -> leaf1"),
        "{}",
        symmetry.description
    );
    let json = serde_json::to_value(&traced).unwrap();
    assert_eq!(json["symmetry"]["symmetric"], false);
    assert_eq!(json["reverse"]["outcome"]["result"], "delivered");

    // Both ways through spine1: symmetric.
    net.switch("leaf2")
        .route("10.0.1.0/24", &[("10.1.1.3", "swp51")]);
    let traced = trace(&net, &net, &spec, &bounds(), true).await.unwrap();
    let symmetry = traced.symmetry.unwrap();
    assert!(symmetry.symmetric, "{}", symmetry.description);
    assert!(symmetry.only_forward.is_empty() && symmetry.only_reverse.is_empty());
    assert_eq!(
        symmetry.description,
        "Both directions cross the same switches: leaf1, spine1, leaf2."
    );
}

#[tokio::test]
async fn the_return_of_a_dropped_flow_starts_where_its_destination_enters() {
    let mut net = leaf_spine();
    net.switch("leaf1")
        .route("10.0.2.0/24", &[("10.1.1.1", "swp51")]);
    net.switch("leaf2")
        .route("10.0.1.0/24", &[("10.1.2.3", "swp52")]);
    net.switch("spine1").blackhole("10.0.2.0/24");
    let spec = flow("10.0.1.2", "10.0.2.2", 1000);
    let traced = super::trace(&net, &net, &spec, &bounds(), true)
        .await
        .unwrap();
    assert_eq!(traced.outcome.as_str(), "dropped");
    let back = traced.reverse.as_ref().unwrap();
    assert_eq!(agents(back), ["leaf2", "spine2", "leaf1"]);
    assert!(back.reaches_destination);
    let symmetry = traced.symmetry.unwrap();
    assert!(!symmetry.symmetric);
    assert!(
        symmetry.description.ends_with(
            "The flow ends dropped at spine1, so only the switches it reached are compared."
        ),
        "{}",
        symmetry.description
    );
}

#[tokio::test]
async fn an_ipv6_flow_is_walked_like_an_ipv4_one() {
    let mut net = Net::default();
    net.switch("leaf1")
        .iface("swp1", "fd00:1::1/64")
        .iface("swp51", "fd00:f::0/127")
        .route("fd00:2::/64", &[("fd00:f::1", "swp51")]);
    net.switch("spine1")
        .iface("swp1", "fd00:f::1/127")
        .iface("swp2", "fd00:f::2/127")
        .route("fd00:2::/64", &[("fd00:f::3", "swp2")]);
    net.switch("leaf2")
        .iface("swp51", "fd00:f::3/127")
        .iface("swp1", "fd00:2::1/64");
    let spec = flow("fd00:1::9", "fd00:2::9", 1000);
    let traced = super::trace(&net, &net, &spec, &bounds(), true)
        .await
        .unwrap();
    assert_eq!(agents(&traced), ["leaf1", "spine1", "leaf2"]);
    assert_eq!(traced.hops[1].ingress.as_deref(), Some("swp1"));
    assert_eq!(traced.hops[2].ingress.as_deref(), Some("swp51"));
    assert!(traced.reaches_destination);
    assert!(
        traced
            .summary
            .starts_with("tcp [fd00:1::9]:1000 -> [fd00:2::9]:80 reaches"),
        "{}",
        traced.summary
    );
    // No route back on leaf2: the return flow is dropped where it starts.
    let back = traced.reverse.unwrap();
    assert_eq!(back.outcome.as_str(), "dropped");
    assert_eq!(agents(&back), ["leaf2"]);
}

#[tokio::test]
async fn a_loop_back_to_a_switch_that_placed_the_flow_is_seen_at_once() {
    let net = looping();
    // From spine1, which places the flow itself: it arrives on swp1, the
    // interface towards the source, as it does when leaf1 sends it back.
    let spec = FlowSpec {
        from: Some("spine1".into()),
        ..flow("10.0.1.2", "10.8.0.1", 1000)
    };
    let traced = super::trace(&net, &net, &spec, &bounds(), false)
        .await
        .unwrap();
    assert_eq!(agents(&traced), ["spine1", "leaf1"]);
    let Outcome::Loop { cycle } = &traced.outcome else {
        panic!("{:?}", traced.outcome)
    };
    assert_eq!(
        cycle_words(cycle),
        "spine1 (in swp1) -> leaf1 (in swp51) -> spine1 (in swp1)"
    );
}
