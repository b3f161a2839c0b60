//! The walks against a brute-force oracle over random layered fabrics:
//! the single walk must take the switches a naive replay of each switch's
//! own answer takes, the all-paths tree must hold exactly the paths a
//! plain depth-first enumeration of every member finds, and a port range's
//! flows must spread over them as replaying each flow alone spreads them.

use super::*;
use crate::fabric::scripted::{Net, Switch, bounds, flow};
use crate::fabric::walk;
use hopwatch_wire::trace::{FlowQuery, Trace};
use std::collections::HashMap;

/// SplitMix64, so a failing fabric can be rebuilt from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// leaf1, one to three layers of one to three switches, leaf2; each
/// switch routes the hosts behind leaf2 over a random non-empty subset of
/// its links to the next layer, and now and then a middle switch
/// blackholes them instead.
fn random_fabric(seed: u64) -> Net {
    let mut rng = Rng(seed);
    let middle = 1 + rng.below(3) as usize;
    let mut layers: Vec<Vec<String>> = vec![vec!["leaf1".into()]];
    for l in 0..middle {
        let width = 1 + rng.below(3) as usize;
        layers.push((0..width).map(|i| format!("s{l}x{i}")).collect());
    }
    layers.push(vec!["leaf2".into()]);
    let mut net = Net::default();
    net.switch("leaf1").iface("swp1", "10.0.1.1/24");
    net.switch("leaf2").iface("swp1", "10.0.2.1/24");
    for (l, pair) in layers.windows(2).enumerate() {
        for (a, upper) in pair[0].iter().enumerate() {
            let mut via = Vec::new();
            for (b, lower) in pair[1].iter().enumerate() {
                let near = format!("10.{}.{}.0", l + 1, a * 16 + b);
                let far = format!("10.{}.{}.1", l + 1, a * 16 + b);
                net.switch(upper)
                    .iface(&format!("up{b}"), &format!("{near}/31"));
                net.switch(lower)
                    .iface(&format!("down{l}x{a}"), &format!("{far}/31"));
                via.push((far, format!("up{b}")));
            }
            // A random non-empty subset of the links down the fabric.
            let mut chosen: Vec<(String, String)> =
                via.iter().filter(|_| rng.below(3) > 0).cloned().collect();
            if chosen.is_empty() {
                chosen.push(via[rng.below(via.len() as u64) as usize].clone());
            }
            let chosen: Vec<(&str, &str)> = chosen
                .iter()
                .map(|(g, d)| (g.as_str(), d.as_str()))
                .collect();
            let switch = net.switch(upper);
            if l > 0 && rng.below(6) == 0 {
                switch.blackhole("10.0.2.0/24");
            } else {
                switch.route("10.0.2.0/24", &chosen);
            }
        }
    }
    net
}

fn find<'a>(net: &'a Net, name: &str) -> &'a Switch {
    net.switches.iter().find(|s| s.name == name).unwrap()
}

/// The switch and interface holding `address`, by scanning every switch.
fn holder(net: &Net, address: std::net::IpAddr) -> Option<(String, String)> {
    net.switches.iter().find_map(|s| {
        s.ifaces
            .iter()
            .find(|i| i.address == address)
            .map(|i| (s.name.clone(), i.name.clone()))
    })
}

fn arriving(spec: &FlowSpec, ingress: &str) -> FlowQuery {
    FlowQuery {
        dst: spec.dst,
        src: Some(spec.src),
        iif: Some(ingress.into()),
        proto: spec.proto,
        sport: spec.sport,
        dport: spec.dport,
        vrf: "default".into(),
        flowlabel: None,
    }
}

fn ending(trace: &Trace) -> Option<&'static str> {
    if trace.drop_hop().is_some() {
        Some("dropped")
    } else if trace.next_hop.is_none() {
        Some("delivered")
    } else {
        None
    }
}

/// Replays one flow: each switch's own answer, the next hop's holder.
fn replay(net: &Net, spec: &FlowSpec) -> (Vec<(String, String)>, &'static str) {
    let mut at = ("leaf1".to_string(), "swp1".to_string());
    let mut crossed = Vec::new();
    loop {
        crossed.push(at.clone());
        let trace = find(net, &at.0).trace(&arriving(spec, &at.1));
        if let Some(end) = ending(&trace) {
            return (crossed, end);
        }
        at = holder(net, trace.next_hop.unwrap()).unwrap();
    }
}

/// Every member of every route, depth first, in member order.
fn enumerate(
    net: &Net,
    spec: &FlowSpec,
    at: (String, String),
    above: &mut Vec<(String, String)>,
    paths: &mut Vec<(Vec<(String, String)>, &'static str)>,
) {
    above.push(at.clone());
    let trace = find(net, &at.0).trace(&arriving(spec, &at.1));
    match ending(&trace) {
        Some(end) => paths.push((above.clone(), end)),
        None => {
            for member in &trace.route().unwrap().members {
                let next = holder(net, member.next_hop.unwrap()).unwrap();
                enumerate(net, spec, next, above, paths);
            }
        }
    }
    above.pop();
}

fn steps(path: &FabricPath) -> Vec<(String, String)> {
    path.hops
        .iter()
        .map(|s| (s.agent.clone(), s.ingress.clone().unwrap()))
        .collect()
}

#[tokio::test]
async fn the_walks_agree_with_a_brute_force_replay_of_random_fabrics() {
    for seed in 0..150 {
        let net = random_fabric(seed);
        let sport = 1000 + (seed % 7) as u16;
        let spec = flow("10.0.1.2", "10.0.2.2", sport);

        let traced = walk::trace(&net, &net, &spec, &bounds(), false)
            .await
            .unwrap();
        let (crossed, end) = replay(&net, &spec);
        let walked: Vec<(String, String)> = traced
            .hops
            .iter()
            .map(|h| (h.agent.clone(), h.ingress.clone().unwrap()))
            .collect();
        assert_eq!(walked, crossed, "seed {seed}");
        assert_eq!(traced.outcome.as_str(), end, "seed {seed}");

        let range = PortRange {
            first: 2000,
            last: 2063,
        };
        let tree = all_paths(&net, &net, &spec, Some(range), &bounds())
            .await
            .unwrap();
        let mut expected = Vec::new();
        enumerate(
            &net,
            &spec,
            ("leaf1".into(), "swp1".into()),
            &mut Vec::new(),
            &mut expected,
        );
        let found: Vec<(Vec<(String, String)>, &str)> = tree
            .paths
            .iter()
            .map(|p| (steps(p), p.outcome.as_str()))
            .collect();
        assert_eq!(found, expected, "seed {seed}");
        assert!(tree.cut.is_empty(), "seed {seed}");

        // Each flow of the range replayed alone, counted per path.
        let mut counts: HashMap<Vec<(String, String)>, u64> = HashMap::new();
        for sport in range.first..=range.last {
            let one = FlowSpec {
                sport: Some(sport),
                ..spec.clone()
            };
            *counts.entry(replay(&net, &one).0).or_default() += 1;
        }
        for path in &tree.paths {
            assert_eq!(
                path.flows,
                Some(counts.get(&steps(path)).copied().unwrap_or(0)),
                "seed {seed}, path {:?}",
                steps(path)
            );
        }
        assert_eq!(tree.flows.as_ref().unwrap().unfollowed, 0, "seed {seed}");
    }
}
