//! Compound rules on the real binary: a veth flapping in a network namespace
//! fires `flaps()` once and resolves once, however short each flap; a speed
//! drop written into a fixture `/sys` fires the speed-drop rule at once.

use crate::util::{AgentProcess, TempDir, VethPair, can_use_netns, hopwatch};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn alert(event: &Value, rule: &str, state: &str) -> bool {
    event["type"] == "alert" && event["rule"] == rule && event["state"] == state
}

#[test]
fn root_netns_a_flapping_veth_fires_once_and_resolves_once() {
    if !can_use_netns("root_netns_a_flapping_veth_fires_once_and_resolves_once") {
        return;
    }
    let lab = VethPair::new(131);
    let dir = TempDir::new("hopwatch-flaps");
    let config = dir.write(
        "agent.toml",
        &format!(
            r#"[agent]
name = "flaps"
interval = "500ms"
heartbeat = "1h"
state_dir = "{state}"

[links]
interfaces = ["{watched}"]

[[rule]]
name = "flapping"
interfaces = ["{watched}"]
when = "flaps(2s) >= 3"
clear_when = "flaps(3s) == 0"
severity = "warning"

[output.stdout]
"#,
            state = dir.path().join("state").display(),
            watched = lab.a_if,
        ),
    );
    let mut cmd = lab.a.command(env!("CARGO_BIN_EXE_hopwatch"));
    cmd.args(["run", "-c"]).arg(&config);
    let mut agent = AgentProcess::spawn(cmd);
    agent
        .wait_for(Duration::from_secs(5), |e| e["type"] == "link")
        .expect("the link's initial state");

    // Three flaps, down and up, as fast as `ip` goes: all well inside 2 s,
    // most inside one tick.
    let started = Instant::now();
    for _ in 0..3 {
        lab.b.ip(&["link", "set", &lab.b_if, "down"]);
        lab.b.ip(&["link", "set", &lab.b_if, "up"]);
    }
    let flapped = started.elapsed();
    assert!(
        flapped < Duration::from_secs(2),
        "flapping took {flapped:?}"
    );

    let fired = agent
        .wait_for(Duration::from_secs(5), |e| alert(e, "flapping", "firing"))
        .expect("a firing `flapping` alert");
    assert_eq!(fired["interface"], lab.a_if.as_str());
    assert_eq!(fired["value"], 3.0, "{fired}");
    assert_eq!(fired["threshold"], 3.0);
    assert_eq!(fired["expr"], "flaps(2s) >= 3");
    let resolved = agent
        .wait_for(Duration::from_secs(10), |e| {
            alert(e, "flapping", "resolved")
        })
        .expect("one resolve once 3 s pass without a flap");
    assert_eq!(resolved["expr"], "flaps(3s) == 0");
    assert_eq!(resolved["value"], 0.0);
    // Nothing more: no event per flap, and none after the resolve.
    assert!(
        agent
            .wait_for(Duration::from_secs(2), |e| e["type"] == "alert")
            .is_none(),
        "{:?}",
        agent.seen
    );
    let alerts: Vec<&Value> = agent.seen.iter().filter(|e| e["type"] == "alert").collect();
    assert_eq!(alerts.len(), 2, "one firing and one resolve: {alerts:?}");
    assert!(agent.stop().success());
}

const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

/// Fixture `/proc` and `/sys` roots with one interface, `eth0`.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let f = Fixture {
            dir: TempDir::new("hopwatch-speed"),
        };
        std::fs::create_dir_all(f.root("proc/net")).unwrap();
        std::fs::create_dir_all(f.root("sys/class/net/eth0")).unwrap();
        Fixture::write(
            &f.root("proc/net/dev"),
            &format!("{HEADER}  eth0: 5000 50 0 0 0 0 0 0 7000 70 0 0 0 0 0 0\n"),
        );
        for (file, text) in [
            ("flags", "0x1003"),
            ("carrier", "1"),
            ("operstate", "up"),
            ("carrier_changes", "1"),
        ] {
            Fixture::write(&f.root("sys/class/net/eth0").join(file), text);
        }
        f.speed(10_000);
        f
    }

    fn root(&self, path: &str) -> PathBuf {
        self.dir.path().join(path)
    }

    /// Replaces the file whole, as the kernel's is never seen half-written.
    fn write(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{text}\n")).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn speed(&self, mbps: u64) {
        Fixture::write(&self.root("sys/class/net/eth0/speed"), &mbps.to_string());
    }
}

#[test]
fn a_speed_drop_fires_within_two_ticks() {
    let f = Fixture::new();
    let interval = Duration::from_millis(500);
    let config = f.dir.write(
        "agent.toml",
        &format!(
            r#"[agent]
name = "speed"
interval = "500ms"
heartbeat = "1h"
state_dir = "{state}"
proc_root = "{proc}"
sys_root = "{sys}"

[links]
interfaces = ["eth*"]

[[rule]]
name = "speed-drop"
when = "speed_mbps < max_over(speed_mbps[24h])"
severity = "warning"

[output.stdout]
"#,
            state = f.root("state").display(),
            proc = f.root("proc").display(),
            sys = f.root("sys").display(),
        ),
    );
    let mut cmd = hopwatch();
    cmd.args(["run", "-c"]).arg(&config);
    let mut agent = AgentProcess::spawn(cmd);
    agent
        .wait_for(Duration::from_secs(5), |e| e["type"] == "link")
        .expect("the link's initial state, from the first tick");

    // 10G renegotiated to 1G.
    let dropped = Instant::now();
    f.speed(1000);
    let fired = agent
        .wait_for(Duration::from_secs(5), |e| alert(e, "speed-drop", "firing"))
        .expect("a firing speed-drop alert");
    let latency = dropped.elapsed();
    assert!(
        latency < 2 * interval,
        "fired {latency:?} after the drop, more than 2 ticks of {interval:?}"
    );
    assert_eq!(fired["interface"], "eth0");
    assert_eq!(fired["value"], 1000.0);
    assert_eq!(fired["threshold"], 10000.0);
    assert_eq!(
        fired["message"],
        "eth0 speed-drop firing (warning): speed_mbps is 1000 (threshold < max_over(speed_mbps[24h]) = 10000)"
    );

    // Back to full speed: no longer a drop.
    f.speed(10_000);
    let resolved = agent
        .wait_for(Duration::from_secs(5), |e| {
            alert(e, "speed-drop", "resolved")
        })
        .expect("the alert resolves at full speed");
    assert_eq!(resolved["value"], 10000.0);
    assert!(agent.stop().success());
}
