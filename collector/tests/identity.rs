//! Who an agent connection speaks for: the name in its hello, which its
//! token (and certificate) must admit; an event naming another agent is
//! refused, and nothing is stored under a name the connection does not own.

use crate::util::{count_in, store_text, 
    AGENT_TOKEN, API_TOKEN, FakeAgent, Process, TempDir, alert, event, free_port, heartbeat,
    http_get, link, metric, now_ms,
};
use std::time::Duration;

#[test]
fn a_hello_as_one_agent_cannot_store_events_of_another() {
    let dir = TempDir::new("mallory");
    let mut process = Process::start(&dir.path, free_port(), free_port(), "", "");
    let (mut good, _) = FakeAgent::connect(process.agents, AGENT_TOKEN, "good1", "g").unwrap();
    good.send(&[event("good1", "g", 1, now_ms(), link("swp1", true))])
        .unwrap();
    assert!(good.wait_acked("g", 1, Duration::from_secs(10)));

    let (mut mallory, _) = FakeAgent::connect(process.agents, AGENT_TOKEN, "mallory", "m").unwrap();
    let at = now_ms();
    mallory
        .send(&[
            event("mallory", "m", 1, at, heartbeat(&[("eth0", true)])),
            event("good1", "g", 2, at, link("swp1", false)),
            event("good1", "g", 3, at, alert("swp1", true)),
        ])
        .unwrap();
    let reason = mallory
        .wait_closed(Duration::from_secs(10))
        .expect("the connection is closed")
        .expect("with a refusal");
    assert!(
        reason.contains("\"good1\"") && reason.contains("\"mallory\""),
        "{reason}"
    );

    let db = dir.path.as_path();
    let under_good1 = |sql: &str| {
        count_in(
            db,
            &format!("{sql} WHERE agent_id = (SELECT id FROM agents WHERE name = 'good1')"),
        )
    };
    assert_eq!(
        count_in(
            db,
            "SELECT count(*) FROM events e JOIN boots b ON b.id = e.boot_id
             JOIN agents a ON a.id = b.agent_id WHERE a.name = 'good1'"
        ),
        1,
        "only good1's own event is stored under its name"
    );
    assert_eq!(under_good1("SELECT count(*) FROM alerts"), 0);
    assert_eq!(
        count_in(db, "SELECT count(*) FROM link_changes WHERE state = 1"),
        0,
        "no down event under good1"
    );
    let text = http_get(process.http, "/metrics", None).body;
    assert_eq!(
        metric(
            &text,
            "hopwatch_collector_connections_rejected_total{reason=\"identity\"}"
        ),
        1.0
    );
    assert!(!good.is_closed(), "good1's own connection is untouched");
    drop(good);
    process.terminate();
    // The operator sees it once, with both names.
    let log = std::fs::read_to_string(dir.path.join("stderr.log")).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("names agent")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("good1") && lines[0].contains("mallory"),
        "{}",
        lines[0]
    );
}

/// A collector whose agent tokens are each bound to names.
fn bound_collector(dir: &TempDir) -> Process {
    let leaf_token = dir.path.join("leaf.token");
    std::fs::write(&leaf_token, "leaf-token-0123456789abcdef\n").unwrap();
    std::fs::set_permissions(
        &leaf_token,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let (agents, http) = (free_port(), free_port());
    let config = dir.path.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\ndata_dir = {:?}\nagents_listen = \"127.0.0.1:{agents}\"\nhttp_listen = \"127.0.0.1:{http}\"\n\
             [auth]\napi_tokens = [{API_TOKEN:?}]\n\
             agent_tokens = [{{ token_file = {:?}, agents = [\"leaf*\", \"!leaf9\"] }}]\n{}",
            dir.path.display().to_string(),
            leaf_token.display().to_string(),
            store_text(&dir.path)
        ),
    )
    .unwrap();
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{said}");
    // Written with the test's umask, so every user can read it.
    assert!(
        said.contains(&format!(
            "warning: token file {} can be read by every user",
            leaf_token.display()
        )),
        "{said}"
    );
    Process::spawn(&config, agents, http)
}

#[test]
fn agent_tokens_admit_only_the_agents_they_are_bound_to() {
    let dir = TempDir::new("bound");
    let process = bound_collector(&dir);
    let token = "leaf-token-0123456789abcdef";
    let (mut leaf1, welcome) = FakeAgent::connect(process.agents, token, "leaf1", "b").unwrap();
    assert_eq!(welcome.get("b"), Some(&0));
    leaf1
        .send(&[event(
            "leaf1",
            "b",
            1,
            now_ms(),
            heartbeat(&[("swp1", true)]),
        )])
        .unwrap();
    assert!(leaf1.wait_acked("b", 1, Duration::from_secs(10)));

    for other in ["spine1", "leaf9"] {
        let refused = FakeAgent::connect(process.agents, token, other, "b")
            .err()
            .unwrap_or_else(|| panic!("{other} was admitted"));
        assert!(
            refused.contains(&format!("{other:?}")) && refused.contains("leaf*"),
            "{refused}"
        );
        assert!(!refused.contains(token), "the token is never echoed");
    }
    // The generated agent token is not made when every token is bound.
    assert!(!dir.path.join("agent-token").exists());
    let refused = FakeAgent::connect(process.agents, AGENT_TOKEN, "leaf2", "b")
        .err()
        .unwrap();
    assert!(refused.contains("bad token"), "{refused}");
    let db = dir.path.as_path();
    assert_eq!(count_in(db, "SELECT count(*) FROM agents"), 1);
}
