//! A shutdown told from a failure, end to end: NX-OS-named veths in a
//! namespace whose carrier the test drops, the real agent there on the
//! `nxapi` source with links from netlink, asking the fixture server's DME
//! why each port went down, and the real collector beside it counting
//! downtime from what the agent sent.

use super::fixture;
use super::server::{Request, Server};
use crate::util::{AgentProcess, Netns, TempDir, can_use_netns, may_run};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "agent-token-0123456789";
const API_TOKEN: &str = "api-token-0123456789ab";
const AGENTS_PORT: u16 = 7000;
const HTTP_PORT: u16 = 8080;

/// What the fixture switch answers: `show interface` for any CLI command,
/// so the counter source keeps working; the DME's port objects for eth1/7
/// (shut) and eth1/8 (enabled, link failed); the DME's refusal for any
/// other REST path, eth1/9's included.
fn switch(req: &Request) -> (u16, String) {
    if !req.is_rest() {
        return (200, fixture("show_interface_48.json"));
    }
    if req.path.contains("phys-[eth1/7]") {
        (200, fixture("dme_phys_eth1_7_admin_down.json"))
    } else if req.path.contains("phys-[eth1/8]") {
        (200, fixture("dme_phys_eth1_8_link_failure.json"))
    } else {
        (400, fixture("dme_not_found.json"))
    }
}

/// The real collector binary, built beside the agent's by `cargo test
/// --workspace`; `None` (the test skips, except under CI) when it is not.
fn collector_binary(test: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent()?.parent()?.join("hopwatch-collector");
    let missing = format!(
        "{} not found; build it with `cargo build -p hopwatch-collector`",
        path.display()
    );
    may_run(test, (!path.exists()).then_some(missing.as_str())).then_some(path)
}

/// The collector, run inside `ns` on its own loopback.
struct Collector {
    child: Child,
    log: PathBuf,
}

impl Collector {
    fn start(ns: &Netns, binary: &Path, dir: &TempDir) -> Collector {
        let data = dir.path().join("collector");
        let config = dir.write(
            "collector.toml",
            &format!(
                "[collector]\ndata_dir = {data:?}\nagents_listen = \"127.0.0.1:{AGENTS_PORT}\"\n\
                 http_listen = \"127.0.0.1:{HTTP_PORT}\"\n\
                 [auth]\nagent_tokens = [{TOKEN:?}]\napi_tokens = [{API_TOKEN:?}]\n",
                data = data.display().to_string()
            ),
        );
        let log = dir.path().join("collector.log");
        let child = ns
            .command(binary)
            .args(["run", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawning hopwatch-collector");
        let collector = Collector { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while get(ns, "/healthz").is_none_or(|(status, _)| status != 200) {
            assert!(
                Instant::now() < deadline,
                "the collector never became healthy: {}",
                collector.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        collector
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` of the collector's API inside `ns`: the status and body.
fn get(ns: &Netns, path: &str) -> Option<(u16, String)> {
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {API_TOKEN}\r\n\r\n"
    );
    ns.within(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", HTTP_PORT)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(request.as_bytes()).ok()?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).ok()?;
        let (head, body) = reply.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, body.to_string()))
    })
}

fn get_json(ns: &Netns, path: &str) -> Value {
    let (status, body) = get(ns, path).unwrap_or_else(|| panic!("{path}: no answer"));
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// The downtime rows now, or `None` while the API asks the test to slow
/// down (it rate-limits each token).
fn downtime(ns: &Netns) -> Option<Value> {
    let path = "/api/v1/links/downtime?since=1h";
    let (status, body) = get(ns, path).unwrap_or_else(|| panic!("{path}: no answer"));
    if status == 429 {
        return None;
    }
    assert_eq!(status, 200, "{path}: {body}");
    Some(serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")))
}

/// The row of `interface` in `downtime`, if it is in `state`.
fn downtime_row(downtime: &Value, interface: &str, state: &str) -> Option<Value> {
    downtime["interfaces"]
        .as_array()?
        .iter()
        .find(|i| i["interface"] == interface && i["state"] == state)
        .cloned()
}

#[test]
fn root_netns_a_shutdown_is_told_from_a_failure_and_only_the_failure_is_downtime() {
    let test = "root_netns_a_shutdown_is_told_from_a_failure_and_only_the_failure_is_downtime";
    if !can_use_netns(test) {
        return;
    }
    let Some(collector_bin) = collector_binary(test) else {
        return;
    };
    let dir = TempDir::new("hopwatch-admin");
    let server = Server::start(&dir, switch);
    let ns = Netns::new("hwadm");
    // Front-panel ports as NX-OS names them in its bash shell, each a veth
    // whose peer the test takes down to drop the port's carrier.
    let ports = [
        ("Eth1-7", "peer7"),
        ("Eth1-8", "peer8"),
        ("Eth1-9", "peer9"),
    ];
    for (port, peer) in ports {
        ns.ip(&["link", "add", port, "type", "veth", "peer", "name", peer]);
        ns.ip(&["link", "set", port, "up"]);
        ns.ip(&["link", "set", peer, "up"]);
    }
    let collector = Collector::start(&ns, &collector_bin, &dir);
    let config = dir.write(
        "agent.toml",
        &format!(
            r#"
[agent]
name = "nexus-admin"
interval = "1s"
heartbeat = "1h"
state_dir = "{state}"
source = "nxapi"
nxapi_socket = "{socket}"
link_watch = "netlink"

[links]
interfaces = ["Eth1-*"]

[output.stdout]

[output.collector]
address = "127.0.0.1:{AGENTS_PORT}"
token = "{TOKEN}"
"#,
            state = dir.path().join("state").display(),
            socket = server.path.display(),
        ),
    );
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_hopwatch"));
    cmd.args(["run", "-c"]).arg(&config);
    let mut agent = AgentProcess::spawn(cmd);
    // Events name the ports as NX-OS does (`Ethernet1/7`), not by netdev.
    for (port, _) in ports {
        let port = hopwatch::nxapi::nxos_name(port);
        agent
            .wait_for(Duration::from_secs(5), |e| {
                e["type"] == "link" && e["interface"] == port.as_str() && e["state"] == "up"
            })
            .unwrap_or_else(|| panic!("{port} starts up: {:?}", agent.seen));
    }
    // Both ports in the collector's timeline, up, before anything happens.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = Value::Null;
    loop {
        if let Some(now) = downtime(&ns) {
            last = now;
        }
        if downtime_row(&last, "Ethernet1/7", "up").is_some()
            && downtime_row(&last, "Ethernet1/8", "up").is_some()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the collector never saw the ports up: {last}\n{}",
            collector.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    for (_, peer) in ports {
        ns.ip(&["link", "set", peer, "down"]);
    }
    let mut down = |port: &str| {
        agent
            .wait_for(Duration::from_secs(5), |e| {
                e["type"] == "link" && e["interface"] == port && e["state"] == "down"
            })
            .unwrap_or_else(|| {
                panic!(
                    "no down event for {port}: {:?}\nNX-API saw: {:?}",
                    agent.seen,
                    server.requests()
                )
            })
    };
    let shut = down("Ethernet1/7");
    let failed = down("Ethernet1/8");
    let unexplained = down("Ethernet1/9");
    assert_eq!(shut["admin"], "down", "{shut}");
    assert_eq!(shut["reason"], "administratively down", "{shut}");
    assert_eq!(shut["previous"], "up", "{shut}");
    assert!(
        shut["message"]
            .as_str()
            .unwrap()
            .contains("went down: administratively down"),
        "{shut}"
    );
    assert_eq!(failed["admin"], "up", "{failed}");
    assert_eq!(failed["reason"], "link-failure", "{failed}");
    // The DME refused: the event goes as it would without it, no fields.
    assert!(
        unexplained.get("admin").is_none() && unexplained.get("reason").is_none(),
        "{unexplained}"
    );
    assert!(
        unexplained["message"]
            .as_str()
            .unwrap()
            .contains("oper state lowerlayerdown"),
        "{unexplained}"
    );
    // One object query per port, on the same socket as the counter polls,
    // never beside one.
    let asked: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.is_rest())
        .map(|r| r.path)
        .collect();
    for port in ["eth1/7", "eth1/8", "eth1/9"] {
        let path = format!(
            "/api/mo/sys/intf/phys-[{port}].json?query-target=self&rsp-subtree=children&rsp-subtree-class=ethpmPhysIf"
        );
        assert_eq!(asked.iter().filter(|p| **p == path).count(), 1, "{asked:?}");
    }
    assert_eq!(server.most_in_flight(), 1, "two NX-API requests at once");

    // The collector: the shutdown is admin_down, no outage and no downtime;
    // the failure is an outage under way.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (shut_row, failed_row, unexplained_row) = loop {
        if let Some(now) = downtime(&ns) {
            last = now;
        }
        if let (Some(a), Some(b), Some(c)) = (
            downtime_row(&last, "Ethernet1/7", "admin_down"),
            downtime_row(&last, "Ethernet1/8", "down"),
            downtime_row(&last, "Ethernet1/9", "down"),
        ) {
            break (a, b, c);
        }
        assert!(
            Instant::now() < deadline,
            "the collector never counted the changes: {last}\nagent sent: {:?}\n{}",
            agent.seen,
            collector.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(shut_row["down_count"], 0, "{shut_row}");
    assert_eq!(shut_row["down_seconds"], 0.0, "{shut_row}");
    assert_eq!(shut_row["currently_down"], false, "{shut_row}");
    assert_eq!(failed_row["down_count"], 1, "{failed_row}");
    assert_eq!(failed_row["currently_down"], true, "{failed_row}");
    assert_eq!(unexplained_row["down_count"], 1, "{unexplained_row}");
    let changes = get_json(&ns, "/api/v1/links/changes?since=1h");
    let went: Vec<(String, String)> = changes["went_down"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["interface"].as_str().unwrap().to_string(),
                d["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        went.contains(&("Ethernet1/7".into(), "admin_down".into()))
            && went.contains(&("Ethernet1/8".into(), "down".into())),
        "{changes}"
    );
    let status = agent.stop();
    assert!(status.success(), "agent exit: {status:?}");
}
