//! `reverse`: the return flow traced from where the forward one ended, and
//! the asymmetry a more specific return route makes reported.

use super::leafspine::{H1_ASYM, H2, family};
use super::{Fabric, Tuple, switches};

#[test]
fn root_netns_fabric_trace_reverse_reports_asymmetry() {
    const TEST: &str = "root_netns_fabric_trace_reverse_reports_asymmetry";
    let Some(fabric) = Fabric::start(TEST, "") else {
        return;
    };
    let leaf1_in = fabric.lab.dev("leaf1", "h1").to_string();
    for v6 in [false, true] {
        let f = family(v6);
        // Out through spine1 by the hash; back through spine2 by leaf2's
        // more specific route to H1_ASYM.
        let forward = (40400..40464)
            .map(|sport| Tuple::udp(H1_ASYM[f], H2[f], sport, 8080))
            .find(|t| {
                fabric
                    .kernel("leaf1", t, Some(&leaf1_in))
                    .is_ok_and(|e| e.interface == fabric.lab.dev("leaf1", "spine1"))
            })
            .expect("a source port leaf1 hashes onto spine1");
        let back = forward.reversed();
        assert_eq!(fabric.spine_taken(&forward), "spine1");
        assert_eq!(fabric.spine_taken(&back), "spine2");

        let trace = fabric.trace(&forward.body_with("reverse", true.into()));
        assert_eq!(
            fabric.check_hops(&forward, &trace),
            ["leaf1", "spine1", "leaf2"],
            "{trace:#}"
        );
        let reverse = &trace["reverse"];
        assert_eq!(reverse["outcome"]["result"], "delivered", "{trace:#}");
        assert_eq!(reverse["outcome"]["agent"], "leaf1", "{trace:#}");
        assert_eq!(
            fabric.check_hops(&back, reverse),
            ["leaf2", "spine2", "leaf1"],
            "{trace:#}"
        );
        let symmetry = &trace["symmetry"];
        assert_eq!(symmetry["symmetric"], false, "{symmetry:#}");
        assert_eq!(
            symmetry["forward"],
            serde_json::json!(switches(&trace)),
            "{symmetry:#}"
        );
        assert_eq!(
            symmetry["reverse"],
            serde_json::json!(["leaf1", "spine2", "leaf2"]),
            "the return switches in the forward order: {symmetry:#}"
        );
        assert_eq!(
            symmetry["only_forward"],
            serde_json::json!(["spine1"]),
            "{symmetry:#}"
        );
        assert_eq!(
            symmetry["only_reverse"],
            serde_json::json!(["spine2"]),
            "{symmetry:#}"
        );
        let description = symmetry["description"].as_str().unwrap_or_default();
        assert!(
            description.contains("spine1") && description.contains("spine2"),
            "{symmetry:#}"
        );
    }
}
