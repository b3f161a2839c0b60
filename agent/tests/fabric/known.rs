//! What the collector alone knows, on the hop where it matters: a link set
//! down shows as that hop's egress down, with the agent's link change and
//! the alert its rule fired.

use super::fleet::LINK_RULE;
use super::leafspine::H2;
use super::{Fabric, Tuple};
use crate::lab::wait_no_carrier;
use crate::util::poll;
use serde_json::Value;
use std::time::Duration;

#[test]
fn root_netns_fabric_trace_shows_a_downed_link_with_its_alert_and_change() {
    const TEST: &str = "root_netns_fabric_trace_shows_a_downed_link_with_its_alert_and_change";
    let Some(fabric) = Fabric::start(TEST, "") else {
        return;
    };
    let leaf1_in = fabric.lab.dev("leaf1", "h1").to_string();
    let tuple = (40500..40564)
        .map(|sport| Tuple::udp(super::leafspine::H1[0], H2[0], sport, 443))
        .find(|t| {
            fabric
                .kernel("leaf1", t, Some(&leaf1_in))
                .is_ok_and(|e| e.interface == fabric.lab.dev("leaf1", "spine1"))
        })
        .expect("a source port leaf1 hashes onto spine1");
    let before = fabric.trace(&tuple.body());
    assert_eq!(before["outcome"]["result"], "delivered", "{before:#}");
    assert!(
        before["hops"][1]["known"]["firing"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{before:#}"
    );

    // leaf2 shuts its port: spine1's link toward it loses its carrier.
    let down = fabric.lab.dev("spine1", "leaf2").to_string();
    let leaf2_port = fabric.lab.dev("leaf2", "spine1").to_string();
    fabric
        .lab
        .ns("leaf2")
        .ip(&["link", "set", "dev", &leaf2_port, "down"]);
    wait_no_carrier(fabric.lab.ns("spine1"), &down, Duration::from_secs(5));
    let mut alerts = Value::Null;
    let fired = poll(Duration::from_secs(15), || {
        alerts = fabric
            .request("GET", "/api/v1/alerts?state=firing&agent=spine1", None)
            .json();
        alerts
            .as_array()?
            .iter()
            .any(|a| a["rule"] == LINK_RULE && a["interface"] == down.as_str())
            .then_some(())
    });
    assert!(
        fired.is_some(),
        "spine1's {LINK_RULE} alert on {down} never reached the collector: {alerts:#}"
    );

    let trace = fabric.trace(&tuple.body());
    assert_eq!(
        fabric.check_hops(&tuple, &trace),
        ["leaf1", "spine1"],
        "{trace:#}"
    );
    let outcome = &trace["outcome"];
    assert_eq!(outcome["result"], "dropped", "{trace:#}");
    assert_eq!(outcome["agent"], "spine1", "{trace:#}");
    assert_eq!(outcome["reason"], "egress_down", "{trace:#}");
    let hop = &trace["hops"][1];
    assert_eq!(hop["egress"]["name"], down.as_str(), "{hop:#}");
    assert_ne!(hop["egress"]["oper_state"], "up", "{hop:#}");
    assert_eq!(hop["egress"]["carrier"], false, "{hop:#}");
    let known = &hop["known"];
    assert_eq!(known["interface"], down.as_str(), "{hop:#}");
    let firing = known["firing"]
        .as_array()
        .unwrap_or_else(|| panic!("{hop:#}"));
    assert!(
        firing
            .iter()
            .any(|a| a["rule"] == LINK_RULE && a["severity"] == "critical"),
        "{hop:#}"
    );
    let changes = known["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("{hop:#}"));
    assert_eq!(
        changes.last().map(|c| c["state"].clone()),
        Some("down".into()),
        "{hop:#}"
    );
    // The other hops' egresses are up and carry no alert.
    let first = &trace["hops"][0];
    assert!(
        first["known"]["firing"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{first:#}"
    );
}
