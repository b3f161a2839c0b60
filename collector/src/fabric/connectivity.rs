//! Connectivity: a matrix of sources × destinations × flows, each cell a
//! walk, with identical per-switch questions asked once.
//!
//! The walks run side by side (a bounded number at once) within the one
//! request and share its asking layer, so a question two cells would both
//! put to a switch is asked once, and the request's timeout bounds the
//! whole matrix. Every source is placed before anything is asked: a source
//! that enters the fabric nowhere is the request's fault, not a cell's.

use super::asking::Asking;
use super::walk::{self, Arrival};
use super::{
    Asker, Cell, Connectivity, ConnectivityQuery, Directory, FabricHopKind, FabricTrace, FlowKind,
    FlowSpec, Outcome, TraceSettings, WalkError,
};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write as _;
use std::net::IpAddr;
use tokio::time::Instant;

/// Walks in flight at once: enough to keep every switch of a fabric busy
/// (each answers a few at a time), few enough that a large matrix does not
/// hold thousands of half-done walks.
pub const IN_FLIGHT: usize = 48;

/// Every source to every destination, for each flow of `query`.
pub async fn matrix<A: Asker, D: Directory>(
    asker: &A,
    directory: &D,
    query: &ConnectivityQuery,
    bounds: &TraceSettings,
) -> Result<Connectivity, WalkError> {
    matrix_with(asker, directory, query, bounds, IN_FLIGHT).await
}

async fn matrix_with<A: Asker, D: Directory>(
    asker: &A,
    directory: &D,
    query: &ConnectivityQuery,
    bounds: &TraceSettings,
    in_flight: usize,
) -> Result<Connectivity, WalkError> {
    let started = Instant::now();
    let kinds = if query.flows.is_empty() {
        vec![FlowKind {
            proto: None,
            sport: None,
            dport: None,
        }]
    } else {
        query.flows.clone()
    };
    let mut starts: HashMap<IpAddr, Arrival> = HashMap::new();
    for &src in &query.sources {
        if let Entry::Vacant(entry) = starts.entry(src) {
            entry.insert(walk::start(
                directory,
                &spec(src, src, &kinds[0], &query.vrf),
            )?);
        }
    }
    let asking = Asking::new(asker, bounds);
    let mut specs = Vec::new();
    for &src in &query.sources {
        for &dst in &query.destinations {
            for kind in &kinds {
                specs.push(spec(src, dst, kind, &query.vrf));
            }
        }
    }
    let walks = specs.into_iter().map(|spec| {
        let asking = &asking;
        let first = starts[&spec.src].clone();
        async move {
            let trace = walk::walk(asking, directory, &spec, first, bounds.hop_limit).await;
            cell(&trace)
        }
    });
    let cells: Vec<Cell> = futures_util::stream::iter(walks)
        .buffered(in_flight.max(1))
        .collect()
        .await;
    let summary = summary(&cells);
    Ok(Connectivity {
        sources: query.sources.clone(),
        destinations: query.destinations.clone(),
        fully_reachable: cells.iter().all(|c| c.reaches),
        cells,
        asked: asking.asked(),
        cached: asking.cached(),
        summary,
        elapsed_us: walk::micros(started),
    })
}

fn spec(src: IpAddr, dst: IpAddr, kind: &FlowKind, vrf: &str) -> FlowSpec {
    FlowSpec {
        src,
        dst,
        proto: kind.proto,
        sport: kind.sport,
        dport: kind.dport,
        vrf: vrf.to_string(),
        from: None,
    }
}

/// One cell from its walk: where it ended and, when it did not reach, why.
fn cell(trace: &FabricTrace) -> Cell {
    let switches = walk::switches(&trace.hops);
    let last_switch = trace
        .hops
        .iter()
        .rev()
        .find(|hop| hop.kind != FabricHopKind::Unmanaged)
        .map(|hop| hop.agent.clone());
    let (at, reason) = match &trace.outcome {
        Outcome::Delivered { agent, .. } => (Some(agent.clone()), None),
        Outcome::Dropped {
            agent,
            reason,
            description,
        } => (
            Some(agent.clone()),
            Some(format!("dropped at {agent} ({reason}): {description}")),
        ),
        Outcome::Unmanaged { agent, address } => (
            Some(agent.clone()),
            Some(format!(
                "leaves {agent} towards {address}, which no agent owns"
            )),
        ),
        Outcome::NoAnswer { agent, why } => (Some(agent.clone()), Some(why.clone())),
        Outcome::Loop { cycle } => (
            cycle.first().map(|step| step.agent.clone()),
            Some(format!("loops: {}", walk::cycle_words(cycle))),
        ),
        Outcome::HopLimit { limit } => (
            last_switch,
            Some(format!(
                "still forwarded after {limit} switches (the hop limit)"
            )),
        ),
    };
    Cell {
        src: trace.request.src,
        dst: trace.request.dst,
        proto: trace.request.proto,
        dport: trace.request.dport,
        reaches: trace.reaches_destination,
        result: trace.outcome.as_str().to_string(),
        at,
        reason,
        switches,
    }
}

/// `14 of 16 flows reach their destination; 2 do not (1 dropped, 1
/// unmanaged). First: 10.0.1.2 -> 10.9.0.5: leaves leaf2 towards …`
fn summary(cells: &[Cell]) -> String {
    let reached = cells.iter().filter(|c| c.reaches).count();
    if reached == cells.len() {
        return match cells.len() {
            1 => "The flow reaches its destination".to_string(),
            n => format!("All {n} flows reach their destination"),
        };
    }
    let mut results: Vec<(&str, usize)> = Vec::new();
    for cell in cells.iter().filter(|c| !c.reaches) {
        match results.iter_mut().find(|(r, _)| *r == cell.result) {
            Some((_, n)) => *n += 1,
            None => results.push((&cell.result, 1)),
        }
    }
    let mut words = format!(
        "{reached} of {} flows reach their destination; {} do not ({})",
        cells.len(),
        cells.len() - reached,
        results
            .iter()
            .map(|(result, n)| format!("{n} {result}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(first) = cells.iter().find(|c| !c.reaches) {
        let _ = write!(words, ". First: {} -> {}", first.src, first.dst);
        if let Some(port) = first.dport {
            let _ = write!(words, " port {port}");
        }
        if let Some(reason) = &first.reason {
            let _ = write!(words, ": {reason}");
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::scripted::{Behaviour, bounds, flow, leaf_spine, quick};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn query(sources: &[&str], destinations: &[&str]) -> ConnectivityQuery {
        ConnectivityQuery {
            sources: sources.iter().map(|s| ip(s)).collect(),
            destinations: destinations.iter().map(|s| ip(s)).collect(),
            flows: vec![FlowKind {
                proto: Some(6),
                sport: Some(1000),
                dport: Some(80),
            }],
            vrf: "default".into(),
        }
    }

    #[tokio::test]
    async fn every_cell_matches_its_own_trace() {
        let mut net = leaf_spine();
        net.switch("spine1").blackhole("10.0.2.0/24");
        net.switch("spine2").blackhole("10.0.2.0/24");
        net.switch("leaf1")
            .route("10.9.0.0/16", &[("10.0.1.254", "swp1")]);
        net.switch("leaf2").iface("swp2", "10.0.3.1/24");
        let query = query(
            &["10.0.1.2", "10.0.3.9"],
            &["10.0.1.7", "10.0.2.2", "10.9.0.5", "10.0.2.1"],
        );
        let matrix = super::matrix(&net, &net, &query, &bounds()).await.unwrap();
        assert_eq!(matrix.cells.len(), 8);
        for cell in &matrix.cells {
            let mut spec = flow("0.0.0.0", "0.0.0.0", 1000);
            spec.src = cell.src;
            spec.dst = cell.dst;
            let alone = walk::trace(&net, &net, &spec, &bounds(), false)
                .await
                .unwrap();
            assert_eq!(cell.result, alone.outcome.as_str(), "{cell:?}");
            assert_eq!(cell.reaches, alone.reaches_destination);
            assert_eq!(cell.switches, walk::switches(&alone.hops));
        }
        let results: Vec<(&str, Option<&str>)> = matrix
            .cells
            .iter()
            .map(|c| (c.result.as_str(), c.at.as_deref()))
            .collect();
        assert_eq!(
            &results[..4],
            [
                ("delivered", Some("leaf1")),
                ("dropped", Some(results[1].1.unwrap())),
                ("unmanaged", Some("leaf1")),
                ("dropped", Some(results[3].1.unwrap())),
            ]
        );
        assert!(results[1].1.unwrap().starts_with("spine"));
        assert!(
            matrix.cells[1]
                .reason
                .as_deref()
                .unwrap()
                .contains("(blackhole): blackhole route 10.0.2.0/24"),
            "{:?}",
            matrix.cells[1]
        );
        // From leaf2's other subnet everything on leaf2 is reached.
        assert_eq!(results[5], ("delivered", Some("leaf2")));
        assert_eq!(results[7], ("delivered", Some("leaf2")));
        assert!(!matrix.fully_reachable);
        assert!(
            matrix.summary.starts_with("4 of 8 flows reach their destination; 4 do not (3 dropped, 1 unmanaged). First: 10.0.1.2 -> 10.0.2.2 port 80: dropped at spine"),
            "{}",
            matrix.summary
        );
        let json = serde_json::to_value(&matrix).unwrap();
        assert_eq!(json["cells"][2]["result"], "unmanaged");
        assert_eq!(json["fully_reachable"], false);
    }

    #[tokio::test]
    async fn identical_questions_are_asked_once_per_request() {
        let net = leaf_spine();
        // The same pair twice: the second walk's three questions are the
        // first's.
        let query = query(&["10.0.1.2", "10.0.1.2"], &["10.0.2.2"]);
        let matrix = super::matrix(&net, &net, &query, &bounds()).await.unwrap();
        assert_eq!(matrix.cells.len(), 2);
        assert!(matrix.fully_reachable);
        assert_eq!((matrix.asked, matrix.cached), (3, 3));
        assert_eq!(net.questions().len(), 3);
        assert_eq!(matrix.summary, "All 2 flows reach their destination");

        // Different flows are different questions.
        let mut query = query.clone();
        query.sources.pop();
        query.flows.push(FlowKind {
            proto: Some(17),
            sport: Some(1000),
            dport: Some(53),
        });
        let net = leaf_spine();
        let matrix = super::matrix(&net, &net, &query, &bounds()).await.unwrap();
        assert_eq!((matrix.asked, matrix.cached), (6, 0));
        assert_eq!(matrix.cells[1].dport, Some(53));
    }

    #[tokio::test]
    async fn a_silent_switch_is_waited_for_once_for_every_cell_asking_the_same() {
        let mut net = leaf_spine();
        net.switch("leaf2").behave(Behaviour::Silent);
        let query = query(&["10.0.1.2", "10.0.1.2", "10.0.1.2"], &["10.0.2.2"]);
        let started = std::time::Instant::now();
        let matrix = super::matrix(&net, &net, &query, &quick()).await.unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(matrix.cells.iter().all(|c| c.result == "no_answer"));
        assert_eq!(matrix.cells[0].at.as_deref(), Some("leaf2"));
        let to_leaf2 = net.questions().iter().filter(|(a, _)| a == "leaf2").count();
        assert_eq!(to_leaf2, 1);
    }

    #[tokio::test]
    async fn a_source_that_enters_nowhere_fails_the_request_before_any_question() {
        let net = leaf_spine();
        let query = query(&["10.0.1.2", "192.168.7.7"], &["10.0.2.2"]);
        let error = matrix(&net, &net, &query, &bounds()).await.unwrap_err();
        assert_eq!(error.field(), "src");
        assert!(error.to_string().contains("192.168.7.7"), "{error}");
        assert!(net.questions().is_empty());
    }

    #[tokio::test]
    async fn walks_run_side_by_side_within_their_bounds() {
        let mut net = leaf_spine();
        net.yields = 4;
        let sources: Vec<String> = (2..10).map(|i| format!("10.0.1.{i}")).collect();
        let destinations: Vec<String> = (2..10).map(|i| format!("10.0.2.{i}")).collect();
        let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
        let destinations: Vec<&str> = destinations.iter().map(String::as_str).collect();
        let query = query(&sources, &destinations);

        let matrix = matrix_with(&net, &net, &query, &bounds(), 3).await.unwrap();
        assert!(matrix.fully_reachable);
        let most = net.max_in_flight.load(std::sync::atomic::Ordering::SeqCst);
        assert!((2..=3).contains(&most), "{most} in flight at once");

        let mut net = leaf_spine();
        net.yields = 4;
        let matrix = super::matrix(&net, &net, &query, &bounds()).await.unwrap();
        assert_eq!(matrix.cells.len(), 64);
        assert!(matrix.fully_reachable);
        let most = net.max_in_flight.load(std::sync::atomic::Ordering::SeqCst);
        assert!(most > 4, "{most} in flight at once");
        // No agent is asked more at once than it answers.
        assert_eq!(net.max_per_agent(), super::super::asking::PER_AGENT);
    }
}
