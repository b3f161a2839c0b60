//! The real binary on fixture `/proc` and `/sys` roots that the test rewrites
//! between ticks: rules and link events work from them, and faults — a
//! malformed or missing counter file, a dead syslog server, a broken config on
//! reload — are counted and survived. Needs no root.

use crate::util::{AgentProcess, TempDir, hopwatch, hopwatch_json};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

/// A fixture machine with one interface, `eth0`.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TempDir::new("hopwatch-fixture");
        let f = Fixture { dir };
        std::fs::create_dir_all(f.proc().join("net")).unwrap();
        std::fs::create_dir_all(f.sys().join("class/net/eth0")).unwrap();
        f.counters(0);
        f.link(true, 1);
        f
    }

    fn proc(&self) -> PathBuf {
        self.dir.path().join("proc")
    }

    fn sys(&self) -> PathBuf {
        self.dir.path().join("sys")
    }

    /// Replaces the file whole, as the kernel's is never seen half-written.
    fn write(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn net_dev(&self, text: &str) {
        Fixture::write(&self.proc().join("net/dev"), text);
    }

    /// eth0 with `tx_errors` errors sent.
    fn counters(&self, tx_errors: u64) {
        self.net_dev(&format!(
            "{HEADER}    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  eth0: 5000 50 0 0 0 0 0 0 7000 70 {tx_errors} 0 0 0 0 0\n"
        ));
    }

    fn link(&self, up: bool, carrier_changes: u64) {
        let dir = self.sys().join("class/net/eth0");
        Fixture::write(&dir.join("flags"), "0x1003\n");
        Fixture::write(&dir.join("carrier"), if up { "1\n" } else { "0\n" });
        Fixture::write(
            &dir.join("operstate"),
            if up { "up\n" } else { "lowerlayerdown\n" },
        );
        Fixture::write(
            &dir.join("carrier_changes"),
            &format!("{carrier_changes}\n"),
        );
        Fixture::write(&dir.join("speed"), "10000\n");
    }

    fn config(&self, extra: &str) -> PathBuf {
        self.dir.write(
            "agent.toml",
            &self.config_text(
                r#"[[rule]]
name = "tx-errors"
interfaces = ["eth*"]
when = "increase(tx_errors[1s]) > 3"
severity = "critical""#,
                extra,
            ),
        )
    }

    fn config_text(&self, rules: &str, extra: &str) -> String {
        format!(
            r#"[agent]
name = "fixture"
interval = "200ms"
heartbeat = "1h"
state_dir = "{state}"
proc_root = "{proc}"
sys_root = "{sys}"

[links]
interfaces = ["eth*"]

{rules}

[output.stdout]
{extra}
"#,
            state = self.state().display(),
            proc = self.proc().display(),
            sys = self.sys().display(),
        )
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn spawn(&self, config: &Path) -> AgentProcess {
        let mut cmd = hopwatch();
        cmd.args(["run", "-c"]).arg(config);
        AgentProcess::spawn(cmd)
    }

    fn status(&self) -> Value {
        let out = hopwatch()
            .args(["status", "--json", "--socket"])
            .arg(self.state().join("hopwatch.sock"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Polls the agent's status until `pred` holds.
    fn status_until(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if self.state().join("hopwatch.sock").exists() {
                let status = self.status();
                if pred(&status) {
                    return status;
                }
                assert!(
                    Instant::now() < deadline,
                    "status never matched: {status:#}"
                );
            }
            assert!(
                Instant::now() < deadline,
                "the agent never opened its socket"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn firing(e: &Value) -> bool {
    e["type"] == "alert" && e["state"] == "firing"
}

#[test]
fn rules_and_links_work_on_fixture_roots() {
    let fx = Fixture::new();
    let mut agent = fx.spawn(&fx.config(""));
    fx.status_until(Duration::from_secs(5), |s| s["ticks"].as_u64() >= Some(2));
    assert_eq!(fx.status()["link_watch"], "poll");

    fx.counters(9);
    let fired = agent
        .wait_for(Duration::from_secs(3), firing)
        .expect("the rule fires on the rewritten counters");
    assert_eq!(fired["interface"], "eth0");
    assert_eq!(fired["value"], 9.0);
    assert_eq!(
        fired["message"],
        "eth0 tx-errors firing (critical): tx_errors increased by 9 in 1s (threshold > 3)"
    );
    let resolved = agent
        .wait_for(Duration::from_secs(3), |e| e["state"] == "resolved")
        .expect("resolves once the window passes");
    assert_eq!(resolved["rule"], "tx-errors");

    fx.link(false, 2);
    let down = agent
        .wait_for(Duration::from_secs(2), |e| e["type"] == "link")
        .expect("link down");
    assert_eq!(down["state"], "down");
    assert_eq!(down["oper_state"], "lowerlayerdown");

    // Down and up again between two ticks: caught through carrier_changes.
    fx.link(true, 3);
    agent.wait_for(Duration::from_secs(2), |e| {
        e["type"] == "link" && e["state"] == "up"
    });
    fx.link(true, 5);
    let flap_down = agent
        .wait_for(Duration::from_secs(2), |e| e["type"] == "link")
        .expect("the flap's down half");
    let flap_up = agent
        .wait_for(Duration::from_secs(1), |e| e["type"] == "link")
        .expect("the flap's up half");
    assert_eq!(flap_down["state"], "down");
    assert_eq!(flap_up["state"], "up");
    assert_eq!(flap_up["carrier_changes"], 5);
    assert!(agent.stop().success());
}

#[test]
fn malformed_or_missing_counters_lose_only_their_ticks() {
    let fx = Fixture::new();
    let mut agent = fx.spawn(&fx.config(""));
    fx.status_until(Duration::from_secs(5), |s| s["ticks"].as_u64() >= Some(1));

    fx.net_dev("this is not /proc/net/dev\n");
    let status = fx.status_until(Duration::from_secs(3), |s| {
        s["source_errors"].as_u64() >= Some(1)
    });
    assert!(
        status["last_source_error"]
            .as_str()
            .unwrap()
            .contains("net/dev"),
        "{status:#}"
    );
    std::fs::remove_file(fx.proc().join("net/dev")).unwrap();
    let errors = fx.status()["source_errors"].as_u64().unwrap();
    fx.status_until(Duration::from_secs(3), |s| {
        s["source_errors"].as_u64() > Some(errors)
    });

    // Back to good data: sampling carries on, and the rule still works.
    fx.counters(0);
    let ticks = fx.status()["ticks"].as_u64().unwrap();
    fx.status_until(Duration::from_secs(3), |s| {
        s["ticks"].as_u64() >= Some(ticks + 2)
    });
    fx.counters(50);
    let fired = agent
        .wait_for(Duration::from_secs(3), firing)
        .expect("fires after recovery");
    assert_eq!(fired["value"], 50.0);
    assert!(agent.stop().success());
}

#[test]
fn a_dead_syslog_server_is_counted_and_stdout_goes_on() {
    let fx = Fixture::new();
    // A port nobody listens on: every connect is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extra = format!("\n[output.syslog]\naddress = \"tcp://127.0.0.1:{port}\"\n");
    let mut agent = fx.spawn(&fx.config(&extra));
    fx.status_until(Duration::from_secs(5), |s| s["ticks"].as_u64() >= Some(1));
    fx.counters(10);
    agent
        .wait_for(Duration::from_secs(3), firing)
        .expect("stdout still gets the alert");
    let status = fx.status_until(Duration::from_secs(3), |s| {
        s["outputs"][1]["failures"].as_u64() >= Some(1)
    });
    let syslog = &status["outputs"][1];
    assert_eq!(syslog["name"], "syslog");
    assert_eq!(syslog["sent"], 0);
    assert!(
        syslog["last_error"]
            .as_str()
            .unwrap()
            .contains(&port.to_string())
    );
    assert_eq!(status["outputs"][0]["name"], "stdout");
    assert!(status["outputs"][0]["sent"].as_u64() >= Some(1));
    // Sampling never waited on the dead output.
    let ticks = status["ticks"].as_u64().unwrap();
    fx.status_until(Duration::from_secs(3), |s| {
        s["ticks"].as_u64() >= Some(ticks + 3)
    });
    assert!(agent.stop().success());
}

#[test]
fn reload_refuses_a_broken_file_and_applies_a_good_one() {
    let fx = Fixture::new();
    let path = fx.config("");
    let agent = fx.spawn(&path);
    let status = fx.status_until(Duration::from_secs(5), |s| s["ticks"].as_u64() >= Some(1));
    assert_eq!(status["rules"][0]["name"], "tx-errors");

    // Only this user may talk to the agent.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(fx.state().join("hopwatch.sock"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    std::fs::write(&path, "[agent]\ninterval = \"soon\"\n").unwrap();
    agent.signal(nix::sys::signal::Signal::SIGHUP);
    let ticks = status["ticks"].as_u64().unwrap();
    let status = fx.status_until(Duration::from_secs(3), |s| {
        s["ticks"].as_u64() >= Some(ticks + 3)
    });
    assert_eq!(
        status["rules"][0]["name"], "tx-errors",
        "the old config runs on"
    );

    std::fs::write(
        &path,
        fx.config_text(
            "[[rule]]\nname = \"rx-drops\"\nwhen = \"increase(rx_dropped[1s]) > 0\"",
            "",
        ),
    )
    .unwrap();
    agent.signal(nix::sys::signal::Signal::SIGHUP);
    fx.status_until(Duration::from_secs(3), |s| {
        s["rules"][0]["name"] == "rx-drops"
    });
    assert!(agent.stop().success());
}

#[test]
fn heartbeats_carry_interfaces_and_uptime() {
    let fx = Fixture::new();
    let text = fx
        .config_text("", "")
        .replace("heartbeat = \"1h\"", "heartbeat = \"400ms\"");
    let path = fx.dir.write("beat.toml", &text);
    let mut agent = fx.spawn(&path);
    let beat = agent
        .wait_for(Duration::from_secs(3), |e| e["type"] == "heartbeat")
        .expect("a heartbeat");
    assert_eq!(beat["agent"], "fixture");
    assert_eq!(
        beat["interfaces"],
        serde_json::json!([{"name": "eth0", "state": "up"}])
    );
    assert_eq!(beat["addresses"][0]["vrf"], "default");
    assert_eq!(beat["events_dropped"], 0);
    let next = agent
        .wait_for(Duration::from_secs(3), |e| e["type"] == "heartbeat")
        .expect("another heartbeat");
    assert!(next["seq"].as_u64() > beat["seq"].as_u64());
    assert_eq!(next["boot"], beat["boot"]);
    assert!(agent.stop().success());
}

#[test]
fn counters_reads_the_configured_roots() {
    let fx = Fixture::new();
    fx.counters(12);
    let rows = hopwatch_json(
        &["counters", "--json", "--interval", "100ms"],
        &fx.config(""),
    );
    let eth0 = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "eth0")
        .expect("eth0 listed");
    assert_eq!(eth0["tx_errors"], 12);
    assert_eq!(eth0["tx_packets"], 70);
    assert_eq!(eth0["state"], "up");
    assert_eq!(eth0["speed_mbps"], 10000);
    assert_eq!(eth0["tx_bps"], 0.0);

    let table = hopwatch()
        .args(["counters", "--interval", "100ms", "-c"])
        .arg(fx.config(""))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("IFACE"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("eth0") && l.contains("10G")),
        "{text}"
    );
}

/// The agent's peak resident set, from `/proc/PID/status`.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/PID/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_huge_control_request_is_refused_without_growing_the_agent() {
    use std::io::{Read, Write};
    let fx = Fixture::new();
    let agent = fx.spawn(&fx.config(""));
    fx.status_until(Duration::from_secs(5), |s| s["ticks"].as_u64() >= Some(1));
    let before = vm_hwm_kib(agent.pid());

    // 256 MiB without a newline, written while the answer is read: the agent
    // must answer after a few KiB and hang up, so the writer sees a broken
    // pipe long before the end.
    let mut stream =
        std::os::unix::net::UnixStream::connect(fx.state().join("hopwatch.sock")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'A'; 1 << 20];
        let mut sent = 0usize;
        for _ in 0..256 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let mut reply = Vec::new();
    // The kernel resets a unix socket closed with unread data in it, after
    // the reader has taken what was queued before: the answer arrives either way.
    match stream.read_to_end(&mut reply) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("reading the answer: {e}"),
    }
    let sent = sender.join().unwrap();
    let reply = String::from_utf8_lossy(&reply);
    let answer: Value = serde_json::from_str(reply.trim())
        .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {reply:.200}"));
    assert_eq!(
        answer["error"], "request longer than 4096 bytes; send status",
        "a clear error"
    );
    assert!(
        !reply.contains("AAAA"),
        "the input is not echoed: {reply:.200}"
    );
    assert!(
        sent < 64 << 20,
        "the agent read {sent} bytes before hanging up"
    );
    let after = vm_hwm_kib(agent.pid());
    eprintln!("peak RSS {before} KiB before, {after} KiB after; {sent} bytes accepted");
    assert!(
        after < before + 8 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
    // Still serving.
    assert_eq!(fx.status()["agent"], "fixture");
}

/// An output whose thread the OS refuses (a pids cgroup at its limit) is
/// left out with an error logged; the agent runs on with the rest.
#[test]
fn root_an_output_thread_refused_by_a_pids_limit_is_left_out() {
    let root = nix::unistd::geteuid().is_root();
    let pids = root.then(pids_hierarchy).flatten();
    let missing = (!root).then_some("not root").or(pids
        .is_none()
        .then_some("no pids cgroup controller (v1 or v2)"));
    if !crate::netns::may_run(
        "root_an_output_thread_refused_by_a_pids_limit_is_left_out",
        missing,
    ) {
        return;
    }
    let pids = pids.unwrap();
    let fx = Fixture::new();
    let path = fx.config("");
    let agent = fx.spawn(&path);
    fx.status_until(Duration::from_secs(5), |s| s["ticks"].as_u64() >= Some(1));

    // Holds the agent to the threads it has now.
    let group = pids.join(crate::netns::unique("hw-pids"));
    std::fs::create_dir(&group).unwrap();
    std::fs::write(group.join("cgroup.procs"), agent.pid().to_string()).unwrap();
    let current = std::fs::read_to_string(group.join("pids.current")).unwrap();
    std::fs::write(group.join("pids.max"), current.trim()).unwrap();

    // A reload that adds a syslog output needs one thread more.
    std::fs::write(
        &path,
        fx.config_text(
            "[[rule]]\nname = \"rx-drops\"\nwhen = \"increase(rx_dropped[1s]) > 0\"",
            "\n[output.syslog]\naddress = \"udp://127.0.0.1:9\"\n",
        ),
    )
    .unwrap();
    agent.signal(nix::sys::signal::Signal::SIGHUP);
    let status = fx.status_until(Duration::from_secs(3), |s| {
        s["rules"][0]["name"] == "rx-drops"
    });
    let outputs: Vec<&str> = status["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert!(!outputs.contains(&"syslog"), "{outputs:?}");
    // Still sampling.
    let ticks = status["ticks"].as_u64().unwrap();
    fx.status_until(Duration::from_secs(3), |s| {
        s["ticks"].as_u64() >= Some(ticks + 2)
    });
    let stopped = agent.stop();
    let _ = std::fs::remove_dir(&group);
    assert!(stopped.success());
}

/// Where pids cgroups are made: the v1 `pids` hierarchy, or the v2 root
/// with the `pids` controller handed to its children.
fn pids_hierarchy() -> Option<std::path::PathBuf> {
    let v1 = Path::new("/sys/fs/cgroup/pids");
    if v1.join("cgroup.procs").exists() {
        return Some(v1.to_path_buf());
    }
    let v2 = Path::new("/sys/fs/cgroup");
    let controllers = std::fs::read_to_string(v2.join("cgroup.controllers")).ok()?;
    if !controllers.split_whitespace().any(|c| c == "pids") {
        return None;
    }
    std::fs::write(v2.join("cgroup.subtree_control"), "+pids").ok()?;
    Some(v2.to_path_buf())
}

/// A reload whose old syslog output hangs in a connect goes on ticking:
/// the old outputs are waited for off the loop, so no tick is missed.
#[test]
fn a_reload_waiting_on_a_stuck_output_misses_no_tick() {
    let fx = Fixture::new();
    let (_listener, _queued, port) = crate::syslog::silent_server();
    let syslog = format!("\n[output.syslog]\naddress = \"tcp://127.0.0.1:{port}\"\n");
    let text = fx
        .config_text("", &syslog)
        .replace("interval = \"200ms\"", "interval = \"100ms\"");
    let path = fx.dir.write("stuck.toml", &text);
    let agent = fx.spawn(&path);
    // The first heartbeat has the syslog output in its 2 s connect now.
    let before = fx.status_until(Duration::from_secs(5), |s| s["ticks"].as_u64() >= Some(1));
    let started = Instant::now();
    let reload = fx
        .config_text(
            "[[rule]]\nname = \"rx-drops\"\nwhen = \"increase(rx_dropped[1s]) > 0\"",
            &syslog.replace("[output.syslog]", "[output.syslog]\nformat = \"json\""),
        )
        .replace("interval = \"200ms\"", "interval = \"100ms\"");
    std::fs::write(&path, reload).unwrap();
    agent.signal(nix::sys::signal::Signal::SIGHUP);
    // Answered once the new outputs run, a second at most after the SIGHUP.
    let reloaded = fx.status_until(Duration::from_secs(3), |s| {
        s["rules"][0]["name"] == "rx-drops"
    });
    let elapsed = started.elapsed();
    let ticks = reloaded["ticks"].as_u64().unwrap() - before["ticks"].as_u64().unwrap();
    let due = (elapsed.as_millis() / 100) as u64;
    assert!(
        ticks + 3 >= due,
        "{ticks} ticks in {elapsed:?} across the reload, {due} due"
    );
    assert!(agent.stop().success());
}
