//! A silence made through the real collector's API reaches the real agent,
//! quiets its alert (still stored by the collector, marked), outlives an
//! agent restart while the collector is down, and once deleted lets the
//! alert out.

use super::{IFACE, Lab, RealCollector, is_alert, kept_off_stdout};
use crate::util::{TempDir, poll};
use serde_json::{Value, json};
use std::time::Duration;

#[test]
fn a_collector_silence_reaches_the_agent_and_survives_an_agent_restart() {
    let test = "a_collector_silence_reaches_the_agent_and_survives_an_agent_restart";
    let hub = TempDir::new("hopwatch-silence-e2e-hub");
    let Some(collector) = RealCollector::start(test, hub.path()) else {
        return;
    };
    let lab = Lab::new("hopwatch-silence-e2e", &collector.output(hub.path()));
    let mut agent = lab.start();

    let (status, body) = collector
        .request(
            "POST",
            "/api/v1/silences",
            Some(&json!({
                "agent": "silenced",
                "interface": IFACE,
                "for": "1h",
                "reason": "line card swap",
            })),
        )
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let made: Value = serde_json::from_str(&body).unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("c-"), "{made}");

    let held = poll(Duration::from_secs(10), || {
        lab.list().into_iter().find(|s| s["id"] == id.as_str())
    })
    .unwrap_or_else(|| panic!("the silence never reached the agent: {}", collector.log()));
    assert_eq!(held["reason"], "line card swap");
    assert_eq!(held["ends_at"], made["ends_at"]);

    lab.set_tx_errors(5);
    let stored = poll(Duration::from_secs(10), || {
        collector
            .alerts()
            .into_iter()
            .find(|a| is_alert(a, "firing"))
    })
    .unwrap_or_else(|| panic!("no alert stored: {}", collector.log()));
    assert_eq!(stored["silenced"], true, "{stored}");
    assert_eq!(stored["silence"], id.as_str(), "{stored}");
    kept_off_stdout(&mut agent);

    // The collector goes down, the agent restarts: it still holds the
    // silence, from its state dir.
    assert!(agent.stop().success());
    let ports = collector.stop();
    let mut agent = lab.start();
    assert_eq!(lab.list(), std::slice::from_ref(&held));
    lab.wait_firing();
    kept_off_stdout(&mut agent);

    // Back up, the collector deletes it: the alert goes out, unsilenced.
    let collector = RealCollector::start_on(test, hub.path(), Some(ports)).expect("restarted");
    let (status, body) = collector
        .request("DELETE", &format!("/api/v1/silences/{id}"), None)
        .unwrap();
    assert_eq!(status, 204, "{body}");
    let again = agent
        .wait_for(Duration::from_secs(15), |e| is_alert(e, "firing"))
        .unwrap_or_else(|| panic!("the alert stayed quiet: {}", collector.log()));
    assert!(again.get("silenced").is_none(), "{again}");
    assert!(lab.list().is_empty());
    assert!(agent.stop().success());
}
