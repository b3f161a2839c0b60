//! `/metrics` of the real binary, with agents, alerts, syslog and alert
//! forwarding in it, passes Prometheus's own linter (`promtool check
//! metrics`), so a scrape loads and dashboards read the names as Prometheus
//! means them.

use crate::util::{
    AGENT_TOKEN, API_TOKEN, FakeAgent, Process, TempDir, alert, event, free_port, heartbeat,
    http_get, link, may_run, metric, now_ms,
};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn metrics_pass_promtool_check_metrics() {
    let test = "metrics_pass_promtool_check_metrics";
    let missing = Command::new("promtool")
        .arg("--version")
        .output()
        .is_err()
        .then_some("needs promtool (apt-get install prometheus)");
    if !may_run(test, missing) {
        return;
    }
    let dir = TempDir::new("promtool");
    // Forwarding to a UDP port nobody listens on: its counters appear, and
    // nothing waits for an answer.
    let syslog = format!(
        "[output.syslog]\naddress = \"udp://127.0.0.1:{}\"\n\
         [output.alertmanager]\nurl = \"http://127.0.0.1:{}\"\n\
         [[output.webhook]]\nname = \"ops\"\nurl = \"http://127.0.0.1:{}/\"\n",
        free_port(),
        free_port(),
        free_port()
    );
    let process = Process::start(&dir.path, free_port(), free_port(), "", &syslog);
    let (mut agent, _) = FakeAgent::connect(process.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let t = now_ms();
    agent
        .send(&[
            event("leaf1", "b1", 1, t, heartbeat(&[("swp1", true)])),
            event("leaf1", "b1", 2, t, link("swp1", false)),
            event("leaf1", "b1", 3, t, alert("swp2", true)),
        ])
        .unwrap();
    assert!(agent.wait_acked("b1", 3, Duration::from_secs(10)));

    let scrape = http_get(process.http, "/metrics", Some(API_TOKEN));
    assert_eq!(scrape.status, 200);
    assert_eq!(
        scrape.headers.get("content-type").map(String::as_str),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = scrape.body;
    assert_eq!(
        metric(&text, "hopwatch_collector_alerts_firing{agent=\"leaf1\"}"),
        1.0
    );
    assert_eq!(metric(&text, "hopwatch_collector_fleet_alerts_firing"), 1.0);
    assert_eq!(
        metric(
            &text,
            "hopwatch_collector_events_ingested_total{type=\"link\"}"
        ),
        1.0
    );
    assert!(text.contains("# TYPE hopwatch_collector_syslog_forwarded_total counter\n"));
    assert!(text.contains("# TYPE hopwatch_collector_webhook_dropped_total counter\n"));
    assert!(text.contains("# TYPE hopwatch_collector_alertmanager_alerts_firing gauge\n"));

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- the scrape ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
