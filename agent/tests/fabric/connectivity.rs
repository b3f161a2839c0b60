//! The connectivity matrix: 4 sources × 4 destinations, each cell the same
//! answer as the trace of that pair alone, whose every hop is the kernel's.

use super::leafspine::{BEYOND_ROUTER, H1, H1_ASYM, H2, H2_DARK, LOOPING, family};
use super::{Fabric, Tuple, switches};
use serde_json::{Value, json};

const SPORT: u16 = 40600;
const DPORT: u16 = 53;

#[test]
fn root_netns_fabric_connectivity_matrix_matches_per_pair_traces() {
    const TEST: &str = "root_netns_fabric_connectivity_matrix_matches_per_pair_traces";
    let Some(fabric) = Fabric::start(TEST, "") else {
        return;
    };
    for v6 in [false, true] {
        let f = family(v6);
        let sources = [H1[f], H1_ASYM[f], H2[f], H2_DARK[f]];
        let destinations = [H2[f], H2_DARK[f], BEYOND_ROUTER[f], LOOPING[f]];
        let matrix = fabric.post(
            "/api/v1/trace/connectivity",
            &json!({
                "sources": sources,
                "destinations": destinations,
                "flows": [{"proto": "udp", "sport": SPORT, "dport": DPORT}],
            }),
        );
        let cells = matrix["cells"]
            .as_array()
            .unwrap_or_else(|| panic!("no cells: {matrix:#}"));
        assert_eq!(cells.len(), 16, "{matrix:#}");
        let mut results = std::collections::BTreeSet::new();
        for src in sources {
            for dst in destinations {
                let cell = cells
                    .iter()
                    .find(|c| c["src"] == src && c["dst"] == dst)
                    .unwrap_or_else(|| panic!("no cell {src} -> {dst}: {matrix:#}"));
                let tuple = Tuple::udp(src, dst, SPORT, DPORT);
                let trace = fabric.trace(&tuple.body());
                fabric.check_hops(&tuple, &trace);
                let what = format!("cell {cell:#}\ntrace {trace:#}");
                let outcome = &trace["outcome"];
                assert_eq!(cell["result"], outcome["result"], "{what}");
                assert_eq!(cell["reaches"], trace["reaches_destination"], "{what}");
                assert_eq!(cell["switches"], json!(switches(&trace)), "{what}");
                // A loop ends at no one switch; every other outcome does.
                if outcome["result"] != "loop" {
                    assert_eq!(cell["at"], outcome["agent"], "{what}");
                }
                assert_eq!(cell["proto"], 17, "{what}");
                assert_eq!(cell["dport"], DPORT, "{what}");
                results.insert(outcome["result"].as_str().unwrap_or_default().to_string());
            }
        }
        // The matrix holds every way a flow ends in this lab.
        for result in ["delivered", "unmanaged", "loop"] {
            assert!(results.contains(result), "no {result} cell: {matrix:#}");
        }
        assert_eq!(matrix["fully_reachable"], Value::Bool(false), "{matrix:#}");
        eprintln!(
            "IPv{}: {} per-switch questions asked, {} answered from the cache",
            if v6 { 6 } else { 4 },
            matrix["asked"],
            matrix["cached"]
        );
    }
}
