//! Alert events the collector stores reach a real Alertmanager (Debian's
//! `prometheus-alertmanager`, started by the test on a free loopback port):
//! a firing alert appears in its `/api/v2/alerts` with hopwatch's labels,
//! the rule's labels and the message, is re-sent while it fires, survives a
//! collector restart, and stops being active on resolve or when the agent
//! restarts; a silenced alert never appears; a cluster member that is down
//! holds up none of this.

use crate::util::{
    AGENT_TOKEN, FakeAgent, Server, TempDir, alert, event, free_port, heartbeat, metric, now_ms,
    try_http_get, wait_for,
};
use hopwatch_wire::event::Body;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A real Alertmanager on its own port and storage, killed on drop.
struct Alertmanager {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Alertmanager {
    /// None (with the reason printed) when the binary is missing outside
    /// CI; in CI a missing binary fails the test.
    fn start(name: &str) -> Option<Alertmanager> {
        if !Path::new(ALERTMANAGER).exists() {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "{ALERTMANAGER} is missing; .ci/run installs prometheus-alertmanager"
            );
            eprintln!(
                "skipped: {ALERTMANAGER} is not installed (apt-get install prometheus-alertmanager)"
            );
            return None;
        }
        let dir = TempDir::new(name);
        let config = dir.path.join("alertmanager.yml");
        // One receiver that notifies nobody: the test reads the API.
        std::fs::write(
            &config,
            "route:\n  receiver: nobody\n  group_wait: 1s\nreceivers:\n  - name: nobody\n",
        )
        .unwrap();
        // Another process may take the free port before Alertmanager binds
        // it; a fresh port then does.
        for _ in 0..3 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let mut child = Command::new(ALERTMANAGER)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path.join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                // No cluster: it would bind a fixed port shared by every test.
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let ready = wait_for(Duration::from_secs(20), || {
                if let Ok(Some(_)) = child.try_wait() {
                    return Some(false);
                }
                match try_http_get(addr, "/-/ready", None) {
                    Ok(r) if r.status == 200 => Some(true),
                    _ => None,
                }
            });
            if ready == Some(true) {
                return Some(Alertmanager {
                    child,
                    addr,
                    _dir: dir,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("Alertmanager never became ready");
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The active alerts of `interface`.
    fn active(&self, interface: &str) -> Vec<Value> {
        let response = try_http_get(
            self.addr,
            "/api/v2/alerts?active=true&silenced=true&inhibited=true",
            None,
        )
        .expect("asking Alertmanager");
        assert_eq!(response.status, 200, "{}", response.body);
        response
            .json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["labels"]["interface"] == interface)
            .cloned()
            .collect()
    }

    fn wait_active(&self, interface: &str) -> Value {
        wait_for(Duration::from_secs(20), || {
            self.active(interface).into_iter().next()
        })
        .unwrap_or_else(|| panic!("{interface}'s alert never became active in Alertmanager"))
    }

    fn wait_inactive(&self, interface: &str) {
        assert!(
            wait_for(Duration::from_secs(20), || self
                .active(interface)
                .is_empty()
                .then_some(()))
            .is_some(),
            "{interface}'s alert stayed active in Alertmanager"
        );
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn labelled(interface: &str, firing: bool) -> Body {
    let mut body = alert(interface, firing);
    if let Body::Alert(a) = &mut body {
        a.labels.insert("team".into(), "dc-ops".into());
        a.labels
            .insert("runbook".into(), "https://wiki.example.net/tx".into());
    }
    body
}

fn silenced(interface: &str, firing: bool) -> Body {
    let mut body = alert(interface, firing);
    if let Body::Alert(a) = &mut body {
        a.silenced = true;
        a.silence = Some("c-00112233aabbccdd".into());
    }
    body
}

fn forwarding(am: &Alertmanager) -> String {
    format!(
        "[output.alertmanager]\nurl = {:?}\nresend_every = \"1s\"\nweb_url = \"https://hopwatch.example.net\"\n",
        am.url()
    )
}

#[test]
fn a_firing_alert_reaches_alertmanager_with_its_labels_is_resent_and_resolves() {
    let Some(am) = Alertmanager::start("am-fire") else {
        return;
    };
    // A cluster member that is down does not hold the other one up.
    let down = format!("http://127.0.0.1:{}", free_port());
    let config = format!(
        "[output.alertmanager]\nurl = [{down:?}, {:?}]\nresend_every = \"1s\"\nweb_url = \"https://hopwatch.example.net\"\n",
        am.url()
    );
    let server = Server::start("am-fire-collector", "", &config);
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let t = now_ms();
    agent
        .send(&[
            event("leaf1", "b1", 1, t, labelled("swp1", true)),
            event("leaf1", "b1", 2, t, silenced("swp9", true)),
        ])
        .unwrap();
    assert!(agent.wait_acked("b1", 2, Duration::from_secs(10)));

    let fired = am.wait_active("swp1");
    let labels = &fired["labels"];
    assert_eq!(labels["alertname"], "tx-errors");
    assert_eq!(labels["agent"], "leaf1");
    assert_eq!(labels["interface"], "swp1");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["team"], "dc-ops");
    assert_eq!(labels["runbook"], "https://wiki.example.net/tx");
    assert_eq!(
        fired["annotations"]["summary"],
        "leaf1: swp1 tx_errors increased by 7 in 5s (threshold 3)"
    );
    assert!(
        fired["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains("increase(tx_errors[5s]) > 3 (value 7, threshold 3)"),
        "{fired}"
    );
    assert_eq!(
        fired["generatorURL"],
        "https://hopwatch.example.net/alerts?agent=leaf1&interface=swp1&rule=tx-errors"
    );
    assert_eq!(fired["status"]["state"], "active");

    // Re-sent while firing: Alertmanager's updatedAt moves on.
    let first = fired["updatedAt"].as_str().unwrap().to_string();
    let resent = wait_for(Duration::from_secs(20), || {
        let now = am.active("swp1").into_iter().next()?;
        (now["updatedAt"].as_str()? != first).then_some(now)
    })
    .expect("the firing alert was never re-sent");
    assert_eq!(resent["labels"]["team"], "dc-ops");
    // The silenced one was never sent, re-sends included.
    assert!(am.active("swp9").is_empty());

    agent
        .send(&[event("leaf1", "b1", 3, now_ms(), labelled("swp1", false))])
        .unwrap();
    assert!(agent.wait_acked("b1", 3, Duration::from_secs(10)));
    am.wait_inactive("swp1");

    let text = server.get("/metrics").body;
    assert!(
        metric(&text, "hopwatch_collector_alertmanager_alerts_sent_total") >= 3.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "hopwatch_collector_alertmanager_alerts_firing"),
        0.0
    );
    assert_eq!(
        metric(&text, "hopwatch_collector_alertmanager_dropped_total"),
        0.0
    );
    assert!(
        metric(&text, "hopwatch_collector_alertmanager_send_failures_total") >= 1.0,
        "{text}"
    );
}

#[test]
fn firing_alerts_are_resent_after_a_collector_restart_and_end_when_the_agent_restarts() {
    let Some(am) = Alertmanager::start("am-restart") else {
        return;
    };
    let config = forwarding(&am);
    let server = Server::start("am-restart-collector", "", &config);
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf2", "b1").unwrap();
    agent
        .send(&[event("leaf2", "b1", 1, now_ms(), labelled("swp2", true))])
        .unwrap();
    assert!(agent.wait_acked("b1", 1, Duration::from_secs(10)));
    am.wait_active("swp2");
    drop(agent);
    let dir = server.stop();

    // A new collector on the same store re-sends what fires, rule labels
    // included, without the agent sending it again.
    let before = am.active("swp2")[0]["updatedAt"]
        .as_str()
        .unwrap()
        .to_string();
    let server = Server::start_in(dir, "127.0.0.1:0", "", &config);
    let resent = wait_for(Duration::from_secs(20), || {
        let now = am.active("swp2").into_iter().next()?;
        (now["updatedAt"].as_str()? != before).then_some(now)
    })
    .expect("the restarted collector never re-sent the firing alert");
    assert_eq!(resent["labels"]["team"], "dc-ops");
    let text = server.get("/metrics").body;
    assert_eq!(
        metric(&text, "hopwatch_collector_alertmanager_alerts_firing"),
        1.0
    );

    // The agent restarts (a new boot): the collector ends the old boot's
    // alerts itself, and Alertmanager hears of it.
    let (mut agent, _) =
        FakeAgent::connect_with(server.agents, AGENT_TOKEN, "leaf2", "b2", &["b1", "b2"]).unwrap();
    agent
        .send(&[event(
            "leaf2",
            "b2",
            1,
            now_ms(),
            heartbeat(&[("swp2", true)]),
        )])
        .unwrap();
    assert!(agent.wait_acked("b2", 1, Duration::from_secs(10)));
    am.wait_inactive("swp2");
}
