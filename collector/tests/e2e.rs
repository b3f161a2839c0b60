//! Real `hopwatch` agents in network namespaces, through their collector
//! output over a veth into the collector, and out of the API: an alert
//! firing then resolving, and a link down for 3 s.

use crate::util::{
    AGENT_TOKEN, Netns, Server, TempDir, agent_binary, can_use_netns, run, unique, wait_for_api,
};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// An agent namespace with a watched veth to a peer namespace, and a second
/// veth to the root namespace where the collector listens.
struct Lab {
    agent: Netns,
    peer: Netns,
    watched: String,
    peer_if: String,
    subnet: u8,
}

impl Lab {
    fn new(subnet: u8) -> Lab {
        let agent = Netns::new("hwca");
        let peer = Netns::new("hwcb");
        let watched = unique("hwcw");
        let peer_if = unique("hwcp");
        agent.ip(&[
            "link", "add", &watched, "type", "veth", "peer", "name", &peer_if,
        ]);
        agent.ip(&["link", "set", &peer_if, "netns", &peer.name]);
        agent.ip(&[
            "addr",
            "add",
            &format!("10.{subnet}.0.1/24"),
            "dev",
            &watched,
        ]);
        peer.ip(&[
            "addr",
            "add",
            &format!("10.{subnet}.0.2/24"),
            "dev",
            &peer_if,
        ]);
        agent.ip(&["link", "set", &watched, "up"]);
        peer.ip(&["link", "set", &peer_if, "up"]);
        // The uplink to the collector; the root end goes when the namespace
        // (and so its peer) is deleted.
        let host_if = unique("hwch");
        let ns_if = unique("hwcn");
        run(Command::new("ip").args([
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]));
        run(Command::new("ip").args(["link", "set", &ns_if, "netns", &agent.name]));
        run(Command::new("ip").args([
            "addr",
            "add",
            &format!("10.{subnet}.1.1/24"),
            "dev",
            &host_if,
        ]));
        run(Command::new("ip").args(["link", "set", &host_if, "up"]));
        agent.ip(&["addr", "add", &format!("10.{subnet}.1.2/24"), "dev", &ns_if]);
        agent.ip(&["link", "set", &ns_if, "up"]);
        Lab {
            agent,
            peer,
            watched,
            peer_if,
            subnet,
        }
    }

    fn collector_ip(&self) -> String {
        format!("10.{}.1.1", self.subnet)
    }

    /// Datagrams out of the watched interface.
    fn send_udp(&self, count: usize) {
        let to = format!("10.{}.0.2:9", self.subnet);
        self.agent.within(move || {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            for _ in 0..count {
                socket.send_to(b"hopwatch test", &to).unwrap();
            }
        });
    }
}

/// `hopwatch run` in the agent namespace, its stdout events read as they
/// come.
struct Agent {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Agent {
    fn start(binary: &Path, lab: &Lab, dir: &TempDir, collector: std::net::SocketAddr) -> Agent {
        let config = dir.path.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[agent]
name = "e2e{subnet}"
interval = "1s"
heartbeat = "1s"
state_dir = "{state}"

[links]
interfaces = ["{watched}"]

[[rule]]
name = "tx-packets"
interfaces = ["{watched}"]
when = "increase(tx_packets[2s]) > 3"
severity = "critical"

[output.stdout]

[output.collector]
address = "{collector}"
token = "{AGENT_TOKEN}"
"#,
                subnet = lab.subnet,
                state = dir.path.join("state").display(),
                watched = lab.watched,
            ),
        )
        .unwrap();
        let mut child = lab
            .agent
            .command(binary)
            .args(["run", "-c"])
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning hopwatch");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(value) = serde_json::from_str::<Value>(&line)
                    && tx.send(value).is_err()
                {
                    break;
                }
            }
        });
        Agent { child, lines }
    }

    fn wait_for(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return Some(v),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ts_ms(event: &Value) -> i64 {
    let at = humantime::parse_rfc3339(event["ts"].as_str().unwrap()).unwrap();
    at.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The lab, a collector listening on its uplink, and the agent connected.
fn setup(test: &str, subnet: u8) -> Option<(Lab, Server, Agent, TempDir)> {
    setup_with(test, subnet, |_| {})
}

/// [`setup`], with `prepare` run on the lab before the agent starts.
fn setup_with(
    test: &str,
    subnet: u8,
    prepare: impl FnOnce(&Lab),
) -> Option<(Lab, Server, Agent, TempDir)> {
    if !can_use_netns(test) {
        return None;
    }
    let binary = agent_binary(test)?;
    let lab = Lab::new(subnet);
    prepare(&lab);
    let server = Server::start_at(
        test,
        &format!("{}:0", lab.collector_ip()),
        "heartbeat_timeout = \"5s\"",
        "",
    );
    let dir = TempDir::new(test);
    let agent = Agent::start(&binary, &lab, &dir, server.agents);
    let name = format!("e2e{subnet}");
    wait_for_api(Duration::from_secs(15), || {
        let agents = server.get_json("/api/v1/agents");
        let online = agents
            .as_array()?
            .iter()
            .any(|a| a["agent"] == name.as_str() && a["state"] == "online");
        online.then_some(())
    })
    .expect("the agent never showed up online at the collector");
    Some((lab, server, agent, dir))
}

#[test]
fn root_netns_alert_fires_then_resolves_through_the_api() {
    let Some((lab, server, agent, _dir)) =
        setup("root_netns_alert_fires_then_resolves_through_the_api", 181)
    else {
        return;
    };
    lab.send_udp(20);
    let fired = agent
        .wait_for(Duration::from_secs(6), |e| {
            e["type"] == "alert" && e["state"] == "firing"
        })
        .expect("the agent fired no alert");
    let firing = wait_for_api(Duration::from_secs(10), || {
        let list = server.get_json("/api/v1/alerts?state=firing&agent=e2e181");
        (list.as_array()?.len() == 1).then_some(list)
    })
    .expect("the firing alert never reached the API");
    assert_eq!(firing[0]["rule"], "tx-packets");
    assert_eq!(firing[0]["interface"], lab.watched.as_str());
    assert_eq!(firing[0]["severity"], "critical");
    assert_eq!(firing[0]["message"], fired["message"]);
    assert_eq!(firing[0]["fired_at"], fired["ts"]);

    let resolved = agent
        .wait_for(Duration::from_secs(10), |e| {
            e["type"] == "alert" && e["state"] == "resolved"
        })
        .expect("the agent never resolved the alert");
    let list = wait_for_api(Duration::from_secs(10), || {
        let list = server.get_json("/api/v1/alerts?state=resolved&since=10m&agent=e2e181");
        (list.as_array()?.len() == 1).then_some(list)
    })
    .expect("the resolution never reached the API");
    assert_eq!(list[0]["fired_at"], fired["ts"]);
    assert_eq!(list[0]["resolved_at"], resolved["ts"]);
    assert_eq!(list[0]["resolved_by"], "agent");
    assert!(
        server
            .get_json("/api/v1/alerts?agent=e2e181")
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn root_netns_link_down_for_3s_is_3s_of_downtime() {
    let Some((lab, server, agent, _dir)) =
        setup("root_netns_link_down_for_3s_is_3s_of_downtime", 182)
    else {
        return;
    };
    lab.peer.ip(&["link", "set", &lab.peer_if, "down"]);
    let down = agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "link" && e["state"] == "down"
        })
        .expect("no link down event");
    std::thread::sleep(Duration::from_secs(3));
    lab.peer.ip(&["link", "set", &lab.peer_if, "up"]);
    let up = agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "link" && e["state"] == "up"
        })
        .expect("no link up event");
    let agent_says = (ts_ms(&up) - ts_ms(&down)) as f64 / 1000.0;

    let changes = wait_for_api(Duration::from_secs(10), || {
        let c = server.get_json("/api/v1/links/changes?since=10m&agent=e2e182");
        (!c["came_up"].as_array()?.is_empty()).then_some(c)
    })
    .expect("the link changes never reached the API");
    assert_eq!(
        changes["went_down"].as_array().unwrap().len(),
        1,
        "{changes}"
    );
    assert_eq!(changes["came_up"].as_array().unwrap().len(), 1, "{changes}");
    assert_eq!(changes["went_down"][0]["interface"], lab.watched.as_str());
    assert_eq!(changes["went_down"][0]["at"], down["ts"]);
    assert_eq!(changes["came_up"][0]["at"], up["ts"]);
    let down_seconds = changes["came_up"][0]["down_seconds"].as_f64().unwrap();
    assert_eq!(down_seconds, agent_says);

    let downtime = server.get_json(&format!(
        "/api/v1/links/downtime?since=10m&interface={}",
        lab.watched
    ));
    let row = &downtime["interfaces"][0];
    let seconds = row["down_seconds"].as_f64().unwrap();
    // 3 s, give or take one 1 s tick.
    assert!((2.0..=4.0).contains(&seconds), "{downtime}");
    assert_eq!(seconds, agent_says);
    assert_eq!(row["down_count"], 1);
    assert_eq!(row["currently_down"], false);
    assert_eq!(row["unknown_seconds"], 0.0);
    assert_eq!(downtime["total_down_seconds"], seconds);
}

#[test]
fn root_netns_a_link_down_at_agent_start_is_an_outage_with_a_start() {
    let Some((lab, server, agent, _dir)) = setup_with(
        "root_netns_a_link_down_at_agent_start_is_an_outage_with_a_start",
        183,
        |lab| {
            lab.peer.ip(&["link", "set", &lab.peer_if, "down"]);
        },
    ) else {
        return;
    };
    let down = agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "link" && e["state"] == "down"
        })
        .expect("no initial down event");
    assert_eq!(down["previous"], "unknown", "{down}");
    let went = wait_for_api(Duration::from_secs(10), || {
        let c = server.get_json("/api/v1/links/changes?since=10m&agent=e2e183");
        (!c["went_down"].as_array()?.is_empty()).then_some(c)
    })
    .expect("the initial down never reached the API");
    assert_eq!(went["went_down"][0]["interface"], lab.watched.as_str());
    assert_eq!(went["went_down"][0]["at"], down["ts"]);

    lab.peer.ip(&["link", "set", &lab.peer_if, "up"]);
    let up = agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "link" && e["state"] == "up"
        })
        .expect("no link up event");
    assert_eq!(up["previous"], "down", "{up}");
    let changes = wait_for_api(Duration::from_secs(10), || {
        let c = server.get_json("/api/v1/links/changes?since=10m&agent=e2e183");
        (!c["came_up"].as_array()?.is_empty()).then_some(c)
    })
    .expect("the link up never reached the API");
    assert_eq!(
        changes["went_down"].as_array().unwrap().len(),
        1,
        "{changes}"
    );
    assert_eq!(changes["came_up"].as_array().unwrap().len(), 1, "{changes}");
    let agent_says = (ts_ms(&up) - ts_ms(&down)) as f64 / 1000.0;
    assert_eq!(
        changes["came_up"][0]["down_seconds"], agent_says,
        "{changes}"
    );
}
