//! Traces never stall the events that share their connections: while a
//! storm of 1,000 traces runs through the API, a link going down on a
//! switch under questioning still reaches the collector at once, and every
//! trace is answered in full.

use super::fleet::{API_TOKEN, http};
use super::{Fabric, Tuple, seed};
use crate::lab::Rng;
use crate::util::poll;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TRACES: usize = 1000;
const CLIENTS: usize = 8;

#[test]
fn root_netns_fabric_trace_storm_leaves_events_flowing() {
    const TEST: &str = "root_netns_fabric_trace_storm_leaves_events_flowing";
    let Some(fabric) = Fabric::start(TEST, "") else {
        return;
    };
    let mut rng = Rng::new(seed(TEST));
    let tuples: Vec<Tuple> = (0..TRACES)
        .map(|i| Tuple::random(&mut rng, i % 2 == 1))
        .collect();
    let done = Arc::new(AtomicUsize::new(0));
    let mgmt = fabric.lab.mgmt.name.clone();
    let addr = fabric.collector.http;
    let started = Instant::now();
    let clients: Vec<_> = tuples
        .chunks(TRACES / CLIENTS)
        .map(|chunk| {
            let chunk = chunk.to_vec();
            let done = Arc::clone(&done);
            let mgmt = mgmt.clone();
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                for tuple in chunk {
                    let asked = Instant::now();
                    let reply = http(
                        &mgmt,
                        addr,
                        "POST",
                        "/api/v1/trace/flow",
                        Some(API_TOKEN),
                        Some(&tuple.body()),
                    );
                    answers.push((tuple, asked.elapsed(), reply));
                    done.fetch_add(1, Ordering::SeqCst);
                }
                answers
            })
        })
        .collect();

    // Mid-storm, the router's end of its link to leaf2 goes down: leaf2,
    // which every trace toward h2 asks, must still deliver the link event.
    poll(Duration::from_secs(30), || {
        (done.load(Ordering::SeqCst) >= TRACES / 4).then_some(())
    })
    .expect("the storm never got going");
    let leaf2_port = fabric.lab.dev("leaf2", "rtr").to_string();
    let downed = Instant::now();
    fabric
        .lab
        .ns("rtr")
        .ip(&["link", "set", "dev", fabric.lab.dev("rtr", "leaf2"), "down"]);
    let mut changes = Value::Null;
    let seen = poll(Duration::from_secs(10), || {
        changes = fabric
            .request("GET", "/api/v1/links/changes?since=10m", None)
            .json();
        let text = changes.to_string();
        text.contains(&leaf2_port).then(|| downed.elapsed())
    });
    let in_storm = done.load(Ordering::SeqCst);
    let took = seen.unwrap_or_else(|| {
        panic!("leaf2's link change never reached the collector during the storm: {changes:#}")
    });

    let answers: Vec<_> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("a storm client"))
        .collect();
    let wall = started.elapsed();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut latencies: Vec<Duration> = Vec::new();
    for (tuple, latency, reply) in &answers {
        let reply = reply
            .as_ref()
            .unwrap_or_else(|e| panic!("{tuple}: no answer from the API: {e}"));
        assert_eq!(reply.status, 200, "{tuple}: {}", reply.body);
        let trace = reply.json();
        let outcome = &trace["outcome"];
        let mut what = outcome["result"].as_str().unwrap_or("?").to_string();
        if let Some(why) = outcome["why"].as_str() {
            what += &format!(" at {}: {why}", outcome["agent"].as_str().unwrap_or("?"));
        }
        *outcomes.entry(what).or_default() += 1;
        latencies.push(*latency);
    }
    latencies.sort();
    eprintln!(
        "{TRACES} traces from {CLIENTS} clients in {wall:?}: {outcomes:?}; p50 {:?}, p95 {:?}; \
         leaf2's link change stored {took:?} after the link went down, {in_storm} traces in",
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 95 / 100],
    );
    assert!(
        in_storm < TRACES,
        "the storm was over before the link change was seen"
    );
    assert!(
        took < Duration::from_secs(3),
        "leaf2's link change took {took:?} to reach the collector under the storm"
    );
    assert_eq!(answers.len(), TRACES);
    // Each trace arrives: a switch already answering as many questions as
    // it allows itself has the others wait their turn, and none waited out
    // its hop timeout.
    assert_eq!(
        outcomes.get("delivered").copied(),
        Some(TRACES),
        "{outcomes:#?}"
    );
}
