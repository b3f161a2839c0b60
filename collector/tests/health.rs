//! `/healthz` against a real full disk: the real binary with its data_dir
//! on a 1 MiB tmpfs in a mount namespace of its own. While every batch is
//! refused it answers 503 saying why, and `/metrics` says so too; once the
//! filesystem has room again it is `ok`.

use crate::util::{
    AGENT_TOKEN, FakeAgent, Process, TempDir, alert, config_text, event, free_port, http_get,
    may_run, metric, now_ms, run, sqlite_only, try_http_get, wait_for,
};
use hopwatch_wire::event::Body;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether a test that needs root (to mount) can run; outside CI it skips
/// with a printed reason, under `CI=true` it must run.
fn can_mount(test: &str) -> bool {
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("needs root to mount a tmpfs")
    } else if Command::new("unshare").arg("--version").output().is_err() {
        Some("needs util-linux `unshare`")
    } else {
        None
    };
    may_run(test, missing)
}

/// An alert whose message is `size` bytes, to fill a disk quickly.
fn big_alert(size: usize) -> Body {
    let mut body = alert("swp1", true);
    if let Body::Alert(a) = &mut body {
        a.message = "x".repeat(size);
    }
    body
}

#[test]
fn root_healthz_is_degraded_while_a_full_disk_refuses_every_batch() {
    let test = "root_healthz_is_degraded_while_a_full_disk_refuses_every_batch";
    if !sqlite_only(test, "its file on a full disk") || !can_mount(test) {
        return;
    }
    let dir = TempDir::new("fulldisk");
    let data = dir.path.join("data");
    std::fs::create_dir(&data).unwrap();
    let (agents_port, http_port) = (free_port(), free_port());
    let config = dir.path.join("collector.toml");
    let text = config_text(
        &data,
        &format!(
            "agents_listen = \"127.0.0.1:{agents_port}\"\nhttp_listen = \"127.0.0.1:{http_port}\"\n"
        ),
        "[log]\nfile = \"\"\n",
    );
    std::fs::write(&config, text).unwrap();
    // The tmpfs exists only in the collector's mount namespace, so nothing
    // is left mounted whatever happens to the test.
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=1M hopwatch-test \"$1\" && exec \"$2\" run -c \"$3\"")
        .arg("sh")
        .arg(&data)
        .arg(env!("CARGO_BIN_EXE_hopwatch-collector"))
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let process = Process {
        child,
        agents: format!("127.0.0.1:{agents_port}").parse().unwrap(),
        http: format!("127.0.0.1:{http_port}").parse().unwrap(),
        config,
    };
    let health = || try_http_get(process.http, "/healthz", None).ok();
    wait_for(Duration::from_secs(20), || {
        health().filter(|r| r.status == 200)
    })
    .expect("the collector never became healthy");
    assert_eq!(health().unwrap().body, "ok\n");

    // Events of 64 KiB until the disk refuses them.
    let mut seq = 0;
    let degraded = wait_for(Duration::from_secs(60), || {
        let (mut agent, welcome) =
            FakeAgent::connect(process.agents, AGENT_TOKEN, "leaf1", "b1").ok()?;
        seq = welcome.get("b1").copied().unwrap_or(0);
        let events: Vec<_> = (1..=4)
            .map(|i| event("leaf1", "b1", seq + i, now_ms(), big_alert(64 << 10)))
            .collect();
        agent.send(&events).ok()?;
        agent.wait_acked("b1", seq + 4, Duration::from_secs(5));
        health().filter(|r| r.status == 503)
    })
    .expect("the collector never reported its full disk");
    let body = degraded.json();
    assert_eq!(body["status"], "degraded", "{body}");
    let reason = body["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with("store: the last") && reason.contains("database or disk is full"),
        "{reason}"
    );
    let text = http_get(process.http, "/metrics", None).body;
    assert_eq!(metric(&text, "hopwatch_collector_healthy"), 0.0);
    assert!(metric(&text, "hopwatch_collector_commit_failures_in_a_row") >= 1.0);

    // Room again: the next batch commits and the collector is healthy.
    run(Command::new("nsenter")
        .args(["-t", &pid, "-m", "mount", "-o", "remount,size=64M"])
        .arg(&data));
    let healthy = wait_for(Duration::from_secs(20), || {
        let (mut agent, welcome) =
            FakeAgent::connect(process.agents, AGENT_TOKEN, "leaf1", "b1").ok()?;
        let seq = welcome.get("b1").copied().unwrap_or(0) + 1;
        agent
            .send(&[event("leaf1", "b1", seq, now_ms(), alert("swp1", false))])
            .ok()?;
        agent.wait_acked("b1", seq, Duration::from_secs(5));
        health().filter(|r| r.status == 200)
    })
    .expect("the collector stayed degraded after the disk had room again");
    assert_eq!(healthy.body, "ok\n");
    let text = http_get(process.http, "/metrics", None).body;
    assert_eq!(metric(&text, "hopwatch_collector_healthy"), 1.0);
}
