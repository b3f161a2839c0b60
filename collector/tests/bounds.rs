//! Hostile values for every duration and time the collector takes from
//! outside, sent to the real binary: each is a 400 (or exit 2 for the CLI)
//! naming the parameter and its limit, and the collector keeps serving with
//! its agents connected.

use crate::util::{
    AGENT_TOKEN, API_TOKEN, FakeAgent, Process, TempDir, event, free_port, http_get, link, now_ms,
};
use std::process::Command;
use std::time::Duration;

#[test]
fn out_of_range_since_is_a_400_and_the_collector_keeps_its_agents() {
    let dir = TempDir::new("since-bounds");
    let process = Process::start(&dir.path, free_port(), free_port(), "", "");
    let (mut agent, _) = FakeAgent::connect(process.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    agent
        .send(&[event("leaf1", "b1", 1, now_ms(), link("swp1", false))])
        .unwrap();
    assert!(agent.wait_acked("b1", 1, Duration::from_secs(10)));

    for endpoint in [
        "/api/v1/links/changes",
        "/api/v1/links/downtime",
        "/api/v1/alerts",
    ] {
        for value in [
            "999999999d",
            "18446744073709551615s",
            "36526d",
            "100000000000000000000000000s",
        ] {
            let path = format!("{endpoint}?since={value}");
            let response = http_get(process.http, &path, Some(API_TOKEN));
            assert_eq!(response.status, 400, "{path}: {}", response.body);
            let error = response.json()["error"].as_str().unwrap().to_string();
            assert!(
                error.contains("`since`") && error.contains("at most 100y"),
                "{path}: {error}"
            );
        }
        // A century back reaches before 1970, which means from 1970.
        for value in ["57y", "100y"] {
            let path = format!("{endpoint}?since={value}");
            let response = http_get(process.http, &path, Some(API_TOKEN));
            assert_eq!(response.status, 200, "{path}: {}", response.body);
        }
    }
    let all = http_get(
        process.http,
        "/api/v1/links/changes?since=57y",
        Some(API_TOKEN),
    )
    .json();
    assert_eq!(all["since"], "1970-01-01T00:00:00.000Z");
    assert_eq!(all["went_down"][0]["interface"], "swp1");

    // Still serving, and the agent's connection never dropped.
    assert_eq!(http_get(process.http, "/healthz", None).status, 200);
    assert!(!agent.is_closed(), "the agent's connection was dropped");
    agent
        .send(&[event("leaf1", "b1", 2, now_ms(), link("swp1", true))])
        .unwrap();
    assert!(agent.wait_acked("b1", 2, Duration::from_secs(10)));
}

#[test]
fn the_shell_commands_bound_since_too() {
    let dir = TempDir::new("since-cli");
    // The store must exist for the shell commands to read it.
    let process = Process::start(&dir.path, free_port(), free_port(), "", "");
    let config = process.config.clone();
    drop(process);
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
            .args(args)
            .arg("-c")
            .arg(&config)
            .output()
            .unwrap()
    };
    for command in ["downtime", "changes", "alerts"] {
        let ok = cli(&[command, "--since", "100y"]);
        assert!(
            ok.status.success(),
            "{command} --since 100y: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let bad = cli(&[command, "--since", "999999999d"]);
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("--since") && stderr.contains("at most 100y"),
            "{command}: {stderr}"
        );
    }
    let bad = cli(&["alerts", "--limit", "0"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--limit") && stderr.contains("1 to 100000"),
        "{stderr}"
    );
}
