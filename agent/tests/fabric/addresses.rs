//! The collector's map of who owns which address follows the switches: a
//! link renumbered under running agents is traced through its new address
//! once the agent reports it, and the old address then belongs to no one.

use super::leafspine::{H1, H2};
use super::{Fabric, Tuple, switches};
use crate::util::poll;
use serde_json::Value;
use std::time::Duration;

#[test]
fn root_netns_fabric_trace_follows_a_renumbered_link() {
    const TEST: &str = "root_netns_fabric_trace_follows_a_renumbered_link";
    let Some(fabric) = Fabric::start(TEST, "") else {
        return;
    };
    let lab = &fabric.lab;
    let leaf1_in = lab.dev("leaf1", "h1").to_string();
    let via_spine2 = |dst: &str| {
        (40700..40764)
            .map(|sport| Tuple::udp(H1[0], dst, sport, 443))
            .find(|t| {
                fabric
                    .kernel("leaf1", t, Some(&leaf1_in))
                    .is_ok_and(|e| e.interface == lab.dev("leaf1", "spine2"))
            })
            .expect("a source port leaf1 hashes onto spine2")
    };
    let to_h2 = via_spine2(H2[0]);
    let before = fabric.trace(&to_h2.body());
    assert_eq!(
        switches(&before),
        ["leaf1", "spine2", "leaf2"],
        "{before:#}"
    );

    // leaf2 moves its end of the spine2 link from .1 to .5; spine2 routes
    // h2's subnet to the new address, and a test prefix to the old one.
    let (old, new) = ("10.210.22.1", "10.210.22.5");
    let leaf2_dev = lab.dev("leaf2", "spine2");
    let spine2_dev = lab.dev("spine2", "leaf2");
    let leaf2 = lab.ns("leaf2");
    // Deleting a primary address deletes its secondaries: the old one goes
    // first.
    leaf2.ip(&["addr", "del", &format!("{old}/24"), "dev", leaf2_dev]);
    leaf2.ip(&["addr", "add", &format!("{new}/24"), "dev", leaf2_dev]);
    let spine2 = lab.ns("spine2");
    let mac = crate::lab::mac(leaf2, leaf2_dev);
    spine2.ip(&[
        "neigh",
        "replace",
        new,
        "lladdr",
        &mac,
        "dev",
        spine2_dev,
        "nud",
        "permanent",
    ]);
    spine2.ip(&[
        "route",
        "replace",
        &lab.prefix("leaf2", "h2", false),
        "via",
        new,
        "dev",
        spine2_dev,
    ]);
    spine2.ip(&[
        "route",
        "add",
        "10.250.0.0/24",
        "via",
        old,
        "dev",
        spine2_dev,
    ]);
    let mut last = Value::Null;
    let followed = poll(Duration::from_secs(15), || {
        last = fabric.trace(&to_h2.body());
        (last["outcome"]["result"] == "delivered").then_some(())
    });
    assert!(
        followed.is_some(),
        "the trace never crossed leaf2's new address {new}: {last:#}"
    );
    fabric.check_hops(&to_h2, &last);
    assert_eq!(switches(&last), ["leaf1", "spine2", "leaf2"], "{last:#}");
    assert_eq!(last["hops"][1]["next_hop"], new, "{last:#}");
    assert_eq!(last["hops"][2]["ingress"], leaf2_dev, "{last:#}");

    // Nobody owns the old address any more.
    let to_old = via_spine2("10.250.0.9");
    let trace = fabric.trace(&to_old.body());
    fabric.check_hops(&to_old, &trace);
    assert_eq!(trace["outcome"]["result"], "unmanaged", "{trace:#}");
    assert_eq!(trace["outcome"]["agent"], "spine2", "{trace:#}");
    assert_eq!(trace["outcome"]["address"], old, "{trace:#}");
}
