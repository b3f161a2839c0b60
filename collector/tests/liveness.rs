//! A reporter that goes quiet is not a link that went down: a stale agent's
//! interfaces count unknown time, their downtime stops growing, and counting
//! resumes when the agent speaks again.

use crate::util::{AGENT_TOKEN, FakeAgent, Server, event, heartbeat, link, now_ms, wait_for_api};
use serde_json::Value;
use std::thread;
use std::time::Duration;

/// swp1's row of the downtime answer.
fn swp1(server: &Server) -> Value {
    let downtime = server.get_json("/api/v1/links/downtime?since=1h&interface=swp1");
    downtime["interfaces"][0].clone()
}

fn seconds(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// Heartbeats every 200 ms for `for_`, from `seq` on; returns the next seq
/// and the last heartbeat's time.
fn beat(agent: &mut FakeAgent, seq: &mut u64, down: bool, for_: Duration) -> i64 {
    let until = std::time::Instant::now() + for_;
    let mut last = 0;
    while std::time::Instant::now() < until {
        last = now_ms();
        agent
            .send(&[event(
                "leaf1",
                "b1",
                *seq,
                last,
                heartbeat(&[("swp1", !down)]),
            )])
            .unwrap();
        *seq += 1;
        thread::sleep(Duration::from_millis(200));
    }
    last
}

#[test]
fn a_stale_agent_counts_unknown_time_not_downtime() {
    let server = Server::start("stale", "heartbeat_timeout = \"700ms\"", "");
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let down_at = now_ms();
    agent
        .send(&[
            event("leaf1", "b1", 1, down_at, heartbeat(&[("swp1", true)])),
            event("leaf1", "b1", 2, down_at, link("swp1", false)),
        ])
        .unwrap();
    let mut seq = 3;
    let last_beat = beat(&mut agent, &mut seq, true, Duration::from_millis(1200));
    assert!(agent.wait_acked("b1", seq - 1, Duration::from_secs(5)));
    let live = swp1(&server);
    assert_eq!(live["state"], "down");
    assert_eq!(live["currently_down"], true);
    assert!(seconds(&live, "down_seconds") >= 1.0, "{live}");

    // Silent: stale after the timeout; the downtime stops at the last
    // heartbeat and the time since is unknown.
    wait_for_api(Duration::from_secs(5), || {
        let agents = server.get_json("/api/v1/agents");
        (agents[0]["state"] == "stale").then_some(())
    })
    .expect("the agent never went stale");
    let first = swp1(&server);
    assert_eq!(first["state"], "unknown");
    assert_eq!(first["currently_down"], false);
    let frozen = seconds(&first, "down_seconds");
    let expected = (last_beat - down_at) as f64 / 1000.0;
    assert!(
        (frozen - expected).abs() < 0.01,
        "down {frozen}, expected {expected}"
    );
    thread::sleep(Duration::from_millis(600));
    let later = swp1(&server);
    assert_eq!(
        seconds(&later, "down_seconds"),
        frozen,
        "downtime grew while the agent was silent"
    );
    assert!(
        seconds(&later, "unknown_seconds") >= seconds(&first, "unknown_seconds") + 0.5,
        "{first} then {later}"
    );

    // It speaks again (on a new connection, as after a network outage): the
    // silence stays unknown and counting resumes from its first event.
    drop(agent);
    let (mut agent, welcome) =
        FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    assert_eq!(welcome["b1"], seq - 1);
    let resumed_at = now_ms();
    beat(&mut agent, &mut seq, true, Duration::from_millis(800));
    assert!(agent.wait_acked("b1", seq - 1, Duration::from_secs(5)));
    let back = swp1(&server);
    let now = now_ms();
    assert_eq!(back["state"], "down");
    assert_eq!(back["currently_down"], true);
    let gap = (resumed_at - last_beat) as f64 / 1000.0;
    let unknown = seconds(&back, "unknown_seconds");
    assert!(
        (unknown - gap).abs() < 0.01,
        "unknown {unknown}, the silence lasted {gap}"
    );
    let down = seconds(&back, "down_seconds");
    let want = frozen + (now - resumed_at) as f64 / 1000.0;
    assert!(
        (down - want).abs() < 0.3,
        "down {down}, expected about {want}"
    );
    assert_eq!(back["down_count"], 1, "one outage seen through a gap");
}

/// An agent's last line before a clean stop.
fn goodbye(boot: &str, last_seq: u64) -> Vec<u8> {
    let line = serde_json::to_string(&hopwatch_wire::wire::Goodbye {
        kind: hopwatch_wire::wire::GoodbyeTag::Goodbye,
        boot: boot.into(),
        last_seq,
    })
    .unwrap();
    format!("{line}\n").into_bytes()
}

#[test]
fn a_goodbye_marks_the_agent_stopped_at_once() {
    let dir = crate::util::TempDir::new("goodbye");
    let mut process = crate::util::Process::start(
        &dir.path,
        crate::util::free_port(),
        crate::util::free_port(),
        "heartbeat_timeout = \"60s\"",
        "",
    );
    let http = process.http;
    let api = |path: &str| {
        let r = crate::util::http_get(http, path, Some(crate::util::API_TOKEN));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json()
    };
    let (mut agent, _) = FakeAgent::connect(process.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let up_at = now_ms();
    agent
        .send(&[event("leaf1", "b1", 1, up_at, heartbeat(&[("swp1", true)]))])
        .unwrap();
    agent.send_raw(&goodbye("b1", 1)).unwrap();
    assert!(agent.wait_acked("b1", 1, Duration::from_secs(5)));
    drop(agent);
    // Stopped well before the 60 s heartbeat timeout would call it stale.
    let stopped = wait_for_api(Duration::from_secs(5), || {
        let agents = api("/api/v1/agents");
        (agents[0]["state"] == "stopped").then(|| agents[0].clone())
    })
    .expect("the agent was never shown stopped");
    assert!(stopped["stopped_at"].is_string(), "{stopped}");
    // From the stop on, swp1's time is unknown: not down, not up.
    thread::sleep(Duration::from_millis(500));
    let row = api("/api/v1/links/downtime?since=1h&interface=swp1")["interfaces"][0].clone();
    assert_eq!(row["state"], "unknown", "{row}");
    assert_eq!(seconds(&row, "down_seconds"), 0.0);
    let since_stop = (now_ms() - up_at) as f64 / 1000.0;
    assert!(
        seconds(&row, "unknown_seconds") >= 0.5 && seconds(&row, "unknown_seconds") <= since_stop,
        "{row}"
    );
    let config = process.config.clone();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
            .args(args)
            .arg("-c")
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (table, warning) = cli(&["agents"]);
    assert!(table.contains("stopped"), "{table}");
    assert!(
        warning.is_empty(),
        "a running collector is current: {warning}"
    );

    // Back a moment later, well inside the heartbeat timeout: online again,
    // and the pause in between stays unknown.
    let (mut agent, _) = FakeAgent::connect(process.agents, AGENT_TOKEN, "leaf1", "b2").unwrap();
    let back_at = now_ms();
    agent
        .send(&[event(
            "leaf1",
            "b2",
            1,
            back_at,
            heartbeat(&[("swp1", true)]),
        )])
        .unwrap();
    assert!(agent.wait_acked("b2", 1, Duration::from_secs(5)));
    let agents = api("/api/v1/agents");
    assert_eq!(agents[0]["state"], "online", "{agents}");
    assert!(agents[0].get("stopped_at").is_none(), "{agents}");
    let row = api("/api/v1/links/downtime?since=1h&interface=swp1")["interfaces"][0].clone();
    assert_eq!(row["state"], "up");
    let paused = (back_at - up_at) as f64 / 1000.0;
    assert!(
        (seconds(&row, "unknown_seconds") - paused).abs() < 0.01,
        "the pause of {paused}s is unknown: {row}"
    );
    drop(agent);

    // The collector is gone: the shell command says its answer may be old.
    process.terminate();
    let (table, warning) = cli(&["agents"]);
    assert!(
        warning.starts_with("warning: no collector is running on"),
        "{warning}"
    );
    assert!(table.contains("as of"), "{table}");
    let (json, _) = cli(&["agents", "--json"]);
    let agents: Value = serde_json::from_str(&json).unwrap();
    assert!(agents[0]["as_of"].is_string(), "{agents}");
}
