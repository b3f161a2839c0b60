//! NX-OS through NX-API: the `nxapi` counter source and trace backend against
//! a server that speaks HTTP on a real unix socket, as NX-OS's nginx does in
//! the switch's bash shell, and answers from fixtures written from the
//! documented `show interface`, `show ip route` and `show routing hash`
//! shapes. The server changes counters and states between requests, so
//! rules fire and links change on them as they would on a switch.

use crate::util::{AgentProcess, TempDir, hopwatch, hopwatch_json};
use hopwatch::metric::Metric;
use hopwatch::source::nxapi::NxapiSource;
use hopwatch::source::{CounterSource, Snapshot};
use serde_json::Value;
use server::{Request, Server};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod admin;
mod cli;
mod dme;
mod pace;
mod server;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/nxapi");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(name))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

/// The real agent on `config`, once its first heartbeat is out.
fn run_agent(config: &Path) -> AgentProcess {
    let mut cmd = hopwatch();
    cmd.args(["run", "-c"]).arg(config);
    let mut agent = AgentProcess::spawn(cmd);
    agent
        .wait_for(Duration::from_secs(5), |e| e["type"] == "heartbeat")
        .expect("a first heartbeat");
    agent
}

/// An agent config reading counters from NX-API at `socket` with `source`,
/// polling every second (the least NX-OS is polled at), its events on
/// stdout; `tables` follows the `[agent]` table (`[links]`, rules).
fn nxapi_config(dir: &TempDir, socket: &Path, source: &str, tables: &str) -> PathBuf {
    dir.write(
        "agent.toml",
        &format!(
            "[agent]\nname = \"nexus\"\ninterval = \"1s\"\nheartbeat = \"1h\"\n\
             state_dir = \"{}\"\nsource = \"{source}\"\nnxapi_socket = \"{}\"\n\n\
             {tables}\n[output.stdout]\n",
            dir.path().join("state").display(),
            socket.display()
        ),
    )
}

/// A text command's answer in NX-API's envelope.
fn text_reply(command: &str, text: &str) -> String {
    serde_json::json!({"ins_api": {"type": "cli_show_ascii", "version": "1.0", "sid": "eoc",
        "outputs": {"output": {"input": command, "msg": "Success", "code": "200", "body": text}}}})
    .to_string()
}

/// Sets `field` of the interface row named `name` in a `show interface`
/// reply; a number stays a number and a string a string.
fn set_field(reply: &mut Value, name: &str, field: &str, value: u64) {
    for row in rows_mut(reply) {
        if row["interface"] == name {
            row[field] = if row[field].is_string() {
                Value::String(value.to_string())
            } else {
                Value::from(value)
            };
        }
    }
}

fn rows_mut(reply: &mut Value) -> Vec<&mut Value> {
    let rows =
        &mut reply["ins_api"]["outputs"]["output"]["body"]["TABLE_interface"]["ROW_interface"];
    match rows {
        Value::Array(rows) => rows.iter_mut().collect(),
        row => vec![row],
    }
}

fn source(server: &Server, timeout: Duration) -> NxapiSource {
    NxapiSource::new(&server.path, "admin", timeout)
}

fn sample(source: &mut NxapiSource) -> Snapshot {
    source.sample().expect("a good reply samples")
}

fn row<'a>(snapshot: &'a Snapshot, name: &str) -> &'a hopwatch::source::CounterRow {
    snapshot
        .rows
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no row {name} in {:?}", names(snapshot)))
}

fn names(snapshot: &Snapshot) -> Vec<&str> {
    snapshot.rows.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn nxapi_source_reads_every_fixture_shape() {
    let dir = TempDir::new("hopwatch-nxapi");
    let server = Server::start(&dir, |_| (200, fixture("show_interface_one.json")));
    let mut source = source(&server, Duration::from_secs(2));

    // One interface: ROW_interface is an object, counts are strings.
    let one = sample(&mut source);
    assert_eq!(one.rows.len(), 1);
    let eth = row(&one, "Ethernet1/1");
    assert_eq!(eth.counters[Metric::RxBytes as usize], 1041 * 512);
    assert_eq!(eth.counters[Metric::TxBytes as usize], 931 * 400);
    assert_eq!(eth.counters[Metric::RxCrc as usize], 1);
    assert!(eth.columns.supplies(Metric::RxCrc));
    assert!(!eth.columns.supplies(Metric::RxCompressed));
    let link = eth.link.as_ref().unwrap();
    assert!(link.state.is_up());
    assert_eq!(link.state.speed_mbps, Some(25_000));
    let request = &server.requests()[0];
    assert_eq!(request.cookie.as_deref(), Some("nxapi_auth=admin:local"));
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        (request.kind.as_str(), request.input.as_str()),
        ("cli_show", "show interface")
    );

    // 48 ports as strings plus mgmt0; one port down with its reason. The
    // reply comes chunked (odd request numbers), which must not matter.
    server.answer(|_| (200, fixture("show_interface_48.json")));
    let ports = sample(&mut source);
    assert_eq!(ports.rows.len(), 49);
    // The session cookie NX-API set on the first answer comes back, so
    // NX-OS does not authenticate every poll again.
    assert_eq!(
        server.requests()[1].cookie.as_deref(),
        Some(server::SESSION_COOKIE)
    );
    let down = row(&ports, "Ethernet1/7").link.clone().unwrap();
    assert!(!down.state.is_up() && down.state.admin_up);
    assert_eq!(down.reason.as_deref(), Some("Link not connected"));
    let mgmt = row(&ports, "mgmt0");
    assert_eq!(mgmt.counters[Metric::RxBytes as usize], 123_456);
    assert!(
        !mgmt.columns.supplies(Metric::RxCrc),
        "mgmt0 reports no CRC count"
    );

    // 96 ports over two slots, counts as numbers.
    server.answer(|_| (200, fixture("show_interface_96.json")));
    let chassis = sample(&mut source);
    assert_eq!(chassis.rows.len(), 96);
    let last = row(&chassis, "Ethernet2/48");
    assert_eq!(last.counters[Metric::RxPackets as usize], 1041 * 248);
    assert_eq!(last.counters[Metric::TxDropped as usize], 248 % 7);

    // SVIs and an NVE tunnel count bytes and packets; a loopback counts
    // nothing and is left out.
    server.answer(|_| (200, fixture("show_interface_svi.json")));
    let mixed = sample(&mut source);
    let names: Vec<&str> = mixed.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["Ethernet1/1", "Vlan10", "Vlan20", "nve1"]);
    let vlan = row(&mixed, "Vlan10");
    assert_eq!(vlan.counters[Metric::RxBytes as usize], 640_000 + 1_536);
    assert_eq!(vlan.counters[Metric::TxPackets as usize], 4_008);
    assert!(!vlan.columns.supplies(Metric::RxErrors));
    let shut = row(&mixed, "Vlan20").link.clone().unwrap();
    assert!(!shut.state.admin_up);
    assert_eq!(shut.reason.as_deref(), Some("Administratively down"));
    let nve = row(&mixed, "nve1");
    assert_eq!(
        nve.counters[Metric::RxBytes as usize],
        452_570_604_264 + 523_026_676
    );
}

#[test]
fn nxapi_errors_timeouts_and_absent_sockets_are_clear() {
    let dir = TempDir::new("hopwatch-nxapi");
    let server = Server::start(&dir, |_| (200, fixture("error.json")));
    let mut source = source(&server, Duration::from_millis(300));
    let error = source.sample().unwrap_err().to_string();
    assert!(error.contains("code 400"), "{error}");
    assert!(error.contains("Invalid command"), "{error}");

    server.answer(|_| (200, "<html>502 Bad Gateway</html>".into()));
    let error = source.sample().unwrap_err().to_string();
    assert!(error.contains("not what NX-OS documents"), "{error}");

    server.answer(|_| (0, String::new()));
    let started = Instant::now();
    let error = source.sample().unwrap_err().to_string();
    assert!(error.contains("did not answer"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout ended the wait"
    );

    let mut absent = NxapiSource::new(
        dir.path().join("absent.sock"),
        "admin",
        Duration::from_secs(1),
    );
    let error = absent.sample().unwrap_err().to_string();
    assert!(
        error.contains("absent.sock") && error.contains("feature nxapi"),
        "{error}"
    );
}

/// The counters tables of 96 ports, whose error counts the test moves.
#[derive(Default)]
struct Switch {
    tx_errors: u64,
    crc: u64,
    refuse: bool,
}

fn agent_config(dir: &TempDir, socket: &Path) -> PathBuf {
    nxapi_config(
        dir,
        socket,
        "auto",
        r#"[links]
interfaces = ["Eth1-*"]

[[rule]]
name = "tx-errors"
interfaces = ["Eth1-*", "!Eth1-48"]
when = "increase(tx_errors[1s]) > 3"
clear_when = "increase(tx_errors[1s]) == 0"
severity = "critical"

[[rule]]
name = "crc"
interfaces = ["Ethernet1/*"]
when = "increase(rx_crc[1s]) > 3"
severity = "warning"
"#,
    )
}

/// The `nxapi` source asks for `show interface counters` and `show
/// interface counters errors`, which carry no link state: on NX-OS, as on
/// Linux, links come from the kernel's carrier (see `cli.rs` for a link
/// event under this source).
#[test]
fn nxapi_agent_fires_rules_from_hardware_counters() {
    let dir = TempDir::new("hopwatch-nxapi");
    let switch = Arc::new(Mutex::new(Switch::default()));
    let state = Arc::clone(&switch);
    let counters = fixture("show_interface_counters_96.json");
    let errors = fixture_json("show_interface_counters_errors_96.json");
    let server = Server::start(&dir, move |request: &Request| {
        // An NX-API without the REST API: `auto` settles on the CLI.
        if request.is_rest() {
            return (404, String::new());
        }
        let state = state.lock().unwrap();
        if state.refuse {
            return (200, fixture("error.json"));
        }
        if request.input == "show interface counters" {
            return (200, counters.clone());
        }
        let mut reply = errors.clone();
        set_field(&mut reply, "Ethernet1/5", "eth_xmit_err", state.tx_errors);
        set_field(&mut reply, "Ethernet1/48", "eth_xmit_err", state.tx_errors);
        set_field(&mut reply, "Ethernet1/9", "eth_fcs_err", state.crc);
        (200, reply.to_string())
    });
    let config = agent_config(&dir, &server.path);
    let mut cmd = hopwatch();
    cmd.args(["run", "-c"]).arg(&config);
    let mut agent = AgentProcess::spawn(cmd);

    agent
        .wait_for(Duration::from_secs(5), |e| e["type"] == "heartbeat")
        .expect("a first heartbeat");
    assert!(
        agent
            .wait_for(Duration::from_millis(800), |e| e["type"] == "alert")
            .is_none(),
        "an alert fired on counters the agent found at start: {:?}",
        agent.seen
    );

    // Status names the source and the backend auto chose; links come from
    // the kernel, not from the counters.
    let status = hopwatch_json(&["status", "--json"], &config);
    assert_eq!(status["source"], "nxapi");
    assert_eq!(status["trace_backend"], "nxapi");
    assert_eq!(status["link_watch"], "netlink");

    switch.lock().unwrap().tx_errors = 10;
    switch.lock().unwrap().crc = 50;
    let fired = agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "alert" && e["rule"] == "tx-errors" && e["state"] == "firing"
        })
        .expect("tx-errors fires on the hardware counter");
    assert_eq!(fired["interface"], "Ethernet1/5");
    assert_eq!(fired["value"], 10.0);
    let crc = agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "alert" && e["rule"] == "crc"
        })
        .expect("rx_crc fires");
    assert_eq!(crc["interface"], "Ethernet1/9");
    assert!(
        !agent
            .seen
            .iter()
            .any(|e| e["type"] == "alert" && e["interface"] == "Ethernet1/48"),
        "!Eth1-48 excludes Ethernet1/48"
    );
    agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "alert" && e["rule"] == "tx-errors" && e["state"] == "resolved"
        })
        .expect("tx-errors resolves once the counter stands still");

    // A refusing NX-API costs ticks, not the agent; it recovers on its own.
    switch.lock().unwrap().refuse = true;
    let before = server.requests().len();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.requests().len() < before + 3 {
        assert!(Instant::now() < deadline, "the agent stopped polling");
        std::thread::sleep(Duration::from_millis(20));
    }
    {
        let mut switch = switch.lock().unwrap();
        switch.refuse = false;
        switch.tx_errors = 30;
    }
    agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "alert"
                && e["rule"] == "tx-errors"
                && e["state"] == "firing"
                && e["value"] == 20.0
        })
        .expect("polling resumes after NX-API refused");
    let status = hopwatch_json(&["status", "--json"], &config);
    assert!(status["source_errors"].as_u64().unwrap() >= 3, "{status}");
    assert!(
        status["last_source_error"]
            .as_str()
            .unwrap()
            .contains("code 400"),
        "{status}"
    );
    assert!(agent.stop().success());
    assert_eq!(server.most_in_flight(), 1, "one request at a time");
}

/// Answers the trace commands from fixtures: `show routing hash` by the
/// source port's parity, so `paths` sees both members.
fn trace_server(dir: &TempDir) -> Server {
    Server::start(dir, |request| {
        let input = request.input.as_str();
        let reply = if let Some(args) = input.strip_prefix("show routing hash ") {
            let words: Vec<&str> = args.split_whitespace().collect();
            let dst = words[1];
            let name = if dst.starts_with("10.66.") {
                "show_routing_hash_null0.txt"
            } else if dst.starts_with("192.0.2.") {
                return (
                    200,
                    fixture("error.json").replace("Input CLI command error", "Route not found"),
                );
            } else if dst.contains(':') {
                "show_routing_hash_ipv6.txt"
            } else {
                let sport: u32 = words.get(4).and_then(|p| p.parse().ok()).unwrap_or(0);
                if sport.is_multiple_of(2) {
                    "show_routing_hash_ecmp.txt"
                } else {
                    "show_routing_hash_no_out_if.txt"
                }
            };
            text_reply(input, &fixture(name))
        } else if input.starts_with("show ip route 10.66.") {
            fixture("show_ip_route_null0.json")
        } else if input.starts_with("show ip route 192.0.2.") {
            fixture("show_ip_route_none.json")
        } else if input.starts_with("show ip route ") {
            fixture("show_ip_route_ecmp.json")
        } else if input.starts_with("show ipv6 route ") {
            fixture("show_ipv6_route_ecmp.json")
        } else if input == "show interface Ethernet1/50" {
            fixture("show_interface_eth1_50.json")
        } else if input == "show interface Ethernet1/49" {
            fixture("show_interface_eth1_49_down.json")
        } else {
            return (200, fixture("error.json"));
        };
        (200, reply)
    })
}

fn trace(server: &Server, args: &[&str]) -> std::process::Output {
    hopwatch()
        .args(["trace", "--backend", "nxapi", "--json"])
        .args(args)
        .args(["-c"])
        .arg(server.path.with_file_name("agent.toml"))
        .output()
        .unwrap()
}

fn trace_config(dir: &TempDir, server: &Server) {
    dir.write(
        "agent.toml",
        &format!(
            "[agent]\nstate_dir = \"{}\"\nnxapi_socket = \"{}\"\nnxapi_user = \"netops\"\n",
            dir.path().display(),
            server.path.display()
        ),
    );
}

fn json(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn hop_types(trace: &Value) -> Vec<&str> {
    trace["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["type"].as_str().unwrap())
        .collect()
}

#[test]
fn nxapi_trace_follows_the_hardware_hash() {
    let dir = TempDir::new("hopwatch-nxapi");
    let server = trace_server(&dir);
    trace_config(&dir, &server);
    let flow = [
        "--src", "10.9.9.9", "--dst", "10.1.2.3", "--proto", "tcp", "--sport", "40000", "--dport",
        "443",
    ];
    let answer = json(&trace(&server, &flow));
    assert_eq!(answer["backend"], "nxapi");
    assert_eq!(answer["next_hop"], "10.0.0.5");
    assert_eq!(answer["egress_interface"], "Ethernet1/50");
    assert_eq!(answer["reaches_destination"], true);
    assert_eq!(hop_types(&answer), ["l3_routing", "egress"]);
    let route = &answer["hops"][0]["route"];
    assert_eq!(route["prefix"], "10.1.0.0/16");
    assert_eq!(route["members"].as_array().unwrap().len(), 2);
    assert_eq!(route["chosen"], 1);
    assert_eq!(
        answer["load_share"]["mode"],
        "address source-destination port source-destination"
    );
    assert_eq!(
        answer["hops"][1]["interface"]["counters"]["tx_bytes"],
        931 * 50 * 400
    );
    let commands: Vec<String> = server.requests().iter().map(|r| r.input.clone()).collect();
    assert_eq!(
        commands[0],
        "show routing hash 10.9.9.9 10.1.2.3 ip-proto 6 40000 443 vrf default"
    );
    assert_eq!(server.requests()[0].kind, "cli_show_ascii");
    assert_eq!(
        server.requests()[0].cookie.as_deref(),
        Some("nxapi_auth=netops:local")
    );

    // Without an `Out Interface` line the interface comes from the via line.
    let odd = flow.map(|a| if a == "40000" { "40001" } else { a });
    let answer = json(&trace(&server, &odd));
    assert_eq!(answer["next_hop"], "10.0.0.1");
    assert_eq!(answer["egress_interface"], "Ethernet1/49");
    // Ethernet1/49 is down in its fixture: the flow is dropped there.
    assert_eq!(answer["reaches_destination"], false);
    assert_eq!(hop_types(&answer), ["l3_routing", "drop"]);
    assert_eq!(answer["hops"][1]["reason"], "egress_down");

    let v6 = json(&trace(
        &server,
        &[
            "--src",
            "2001:db8:9::9",
            "--dst",
            "2001:db8:1::9",
            "--proto",
            "udp",
            "--sport",
            "1",
            "--dport",
            "2",
        ],
    ));
    assert_eq!(v6["next_hop"], "fe80::5");
    assert_eq!(v6["egress_interface"], "Ethernet1/50");

    let null = json(&trace(
        &server,
        &["--src", "10.9.9.9", "--dst", "10.66.0.1"],
    ));
    assert_eq!(null["reaches_destination"], false);
    assert_eq!(null["hops"][0]["reason"], "blackhole");
    assert_eq!(null["hops"][0]["route"]["prefix"], "10.66.0.0/16");

    let none = json(&trace(
        &server,
        &["--src", "10.9.9.9", "--dst", "192.0.2.1"],
    ));
    assert_eq!(none["hops"][0]["reason"], "no_route");

    // The human form is the same trace.
    let text = hopwatch()
        .args(["trace", "--backend", "nxapi", "-c"])
        .arg(dir.path().join("agent.toml"))
        .args(flow)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Ethernet1/50") && text.contains("10.0.0.5"),
        "{text}"
    );
}

#[test]
fn nxapi_paths_count_flows_per_member() {
    let dir = TempDir::new("hopwatch-nxapi");
    let server = trace_server(&dir);
    trace_config(&dir, &server);
    let out = hopwatch()
        .args(["paths", "--backend", "nxapi", "--json", "-c"])
        .arg(dir.path().join("agent.toml"))
        .args(["--src", "10.9.9.9", "--dst", "10.1.2.3", "--proto", "tcp"])
        .args(["--sport-range", "1000-1099", "--dport", "443"])
        .output()
        .unwrap();
    let paths = json(&out);
    assert_eq!(paths["flows"], 100);
    let counts: Vec<u64> = paths["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["count"].as_u64().unwrap())
        .collect();
    assert_eq!(
        counts,
        [50, 50],
        "odd ports hash to 10.0.0.1, even to 10.0.0.5"
    );
    assert_eq!(paths["members"][0]["interface"], "Ethernet1/49");
    assert_eq!(paths["verdict"]["even"], true);
}

#[test]
fn nxapi_trace_bad_input_and_failures() {
    let dir = TempDir::new("hopwatch-nxapi");
    let server = trace_server(&dir);
    trace_config(&dir, &server);
    // No source: a usage error, since NX-OS hashes on it.
    let out = trace(&server, &["--dst", "10.1.2.3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--src"));
    // NX-API refusing a command is a runtime failure with its words.
    server.answer(|_| (200, fixture("error.json")));
    let out = trace(&server, &["--src", "10.9.9.9", "--dst", "10.1.2.3"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("code 400") && stderr.contains("Invalid command"),
        "{stderr}"
    );
    // No NX-API at all.
    std::fs::remove_file(&server.path).unwrap();
    let out = trace(&server, &["--src", "10.9.9.9", "--dst", "10.1.2.3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("feature nxapi"));
}

#[test]
fn nxapi_auto_falls_back_to_linux_without_the_socket() {
    let dir = TempDir::new("hopwatch-nxapi");
    let config = dir.write(
        "agent.toml",
        &format!(
            "[agent]\nnxapi_socket = \"{}\"\n",
            dir.path().join("absent.sock").display()
        ),
    );
    let rows = hopwatch_json(&["counters", "--json", "--interval", "100ms"], &config);
    assert!(
        rows.as_array().unwrap().iter().any(|r| r["name"] == "lo"),
        "procfs rows"
    );
}

#[test]
fn nxapi_counters_command_reads_the_hardware() {
    let dir = TempDir::new("hopwatch-nxapi");
    let server = Server::start(&dir, |_| (200, fixture("show_interface_48.json")));
    let config = dir.write(
        "agent.toml",
        &format!(
            "[agent]\nsource = \"nxapi\"\nnxapi_socket = \"{}\"\n",
            server.path.display()
        ),
    );
    let rows = hopwatch_json(&["counters", "--json", "--interval", "100ms"], &config);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 49);
    let port7 = rows.iter().find(|r| r["name"] == "Ethernet1/7").unwrap();
    assert_eq!(port7["state"], "down");
    let port1 = rows.iter().find(|r| r["name"] == "Ethernet1/1").unwrap();
    assert_eq!(port1["speed_mbps"], 25_000);
}

#[test]
fn nxapi_status_answers_while_a_poll_hangs() {
    let dir = TempDir::new("hopwatch-nxapi");
    let server = Server::start(&dir, |_| (200, fixture("show_interface_48.json")));
    // A 3 s interval gives each poll 3 s before it times out.
    let config = dir.write(
        "agent.toml",
        &format!(
            "[agent]\nname = \"nexus\"\ninterval = \"3s\"\nheartbeat = \"1h\"\n\
             state_dir = \"{}\"\nsource = \"nxapi\"\nnxapi_socket = \"{}\"\n\n[output.stdout]\n",
            dir.path().join("state").display(),
            server.path.display()
        ),
    );
    let agent = run_agent(&config);

    // The next poll reaches a server that stands silent.
    let before = server.requests().len();
    server.answer(|_| (0, String::new()));
    let deadline = Instant::now() + Duration::from_secs(6);
    while server.requests().len() == before {
        assert!(Instant::now() < deadline, "the agent stopped polling");
        std::thread::sleep(Duration::from_millis(10));
    }
    let asked = Instant::now();
    let status = hopwatch_json(&["status", "--json"], &config);
    let took = asked.elapsed();
    assert_eq!(status["source"], "nxapi");
    assert!(
        took < Duration::from_millis(1500),
        "status took {took:?} while NX-API hung"
    );
    assert!(agent.stop().success());
    // The hung poll was never joined by a second one.
    assert_eq!(server.most_in_flight(), 1);
}

#[test]
fn nxapi_rest_reads_the_dme_and_names_an_absent_api() {
    use hopwatch::nxapi::Client;
    let dir = TempDir::new("hopwatch-nxapi-rest");
    let server = Server::start(&dir, |request: &Request| {
        assert!(request.is_rest(), "{request:?}");
        let session = request.cookie.as_deref() == Some(server::SESSION_COOKIE);
        match request.path.as_str() {
            "/api/mo/expired.json" if session => (401, "{}".into()),
            "/api/mo/sys.json" | "/api/mo/expired.json" => (200, r#"{"totalCount":"1","imdata":[{"topSystem":{"attributes":{"name":"leaf1"}}}]}"#.into()),
            "/api/class/nothing.json" => (400, r#"{"totalCount":"1","imdata":[{"error":{"attributes":{"code":"400","text":"Request failed, unresolved class for nothing"}}}]}"#.into()),
            _ => (404, "<html><body>404 Not Found</body></html>".into()),
        }
    });
    let mut client = Client::new(&server.path, "admin", Duration::from_secs(2));
    let sys: Value = client.get("/api/mo/sys.json").unwrap();
    assert_eq!(sys["imdata"][0]["topSystem"]["attributes"]["name"], "leaf1");
    let refused = client.get::<Value>("/api/class/nothing.json").unwrap_err();
    assert!(!refused.is_rest_absent());
    assert!(
        refused.to_string().contains("unresolved class for nothing"),
        "{refused}"
    );
    let absent = client.get::<Value>("/api/other.json").unwrap_err();
    assert!(absent.is_rest_absent(), "{absent}");
    assert!(absent.to_string().contains("HTTP 404"), "{absent}");
    let requests = server.requests();
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].cookie.as_deref(),
        Some("nxapi_auth=admin:local")
    );
    assert_eq!(requests[1].cookie.as_deref(), Some(server::SESSION_COOKIE));
    // A session NX-API no longer honours is dropped and the request sent
    // once more with the local cookie.
    let before = server.requests().len();
    let again: Value = client.get("/api/mo/expired.json").unwrap();
    assert_eq!(again["totalCount"], "1");
    let retried: Vec<_> = server.requests()[before..]
        .iter()
        .map(|r| r.cookie.clone().unwrap_or_default())
        .collect();
    assert_eq!(retried, [server::SESSION_COOKIE, "nxapi_auth=admin:local"]);
}

#[test]
fn nxapi_requests_of_one_agent_never_overlap() {
    use hopwatch::nxapi::Client;
    let dir = TempDir::new("hopwatch-nxapi-turns");
    let server = Server::start(&dir, |_| {
        std::thread::sleep(Duration::from_millis(200));
        (200, fixture("show_interface_one.json"))
    });
    // A poll, a trace and a link lookup at once, each with its own client,
    // as the sampler thread and a collector's trace request have.
    let askers: Vec<_> = (0..3)
        .map(|_| {
            let socket = server.path.clone();
            std::thread::spawn(move || {
                Client::new(socket, "admin", Duration::from_secs(5)).show::<Value>("show interface")
            })
        })
        .collect();
    for asker in askers {
        asker
            .join()
            .unwrap()
            .expect("each request is answered in turn");
    }
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.most_in_flight(), 1);

    // A request that cannot get its turn within its timeout says why.
    let socket = server.path.clone();
    let slow = std::thread::spawn(move || {
        Client::new(socket, "admin", Duration::from_secs(5)).show::<Value>("show interface")
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.requests().len() < 4 {
        assert!(Instant::now() < deadline, "the first request never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    let error = Client::new(&server.path, "admin", Duration::from_millis(50))
        .show::<Value>("show version")
        .unwrap_err()
        .to_string();
    assert!(error.contains("one request at a time"), "{error}");
    slow.join().unwrap().unwrap();
    assert_eq!(server.most_in_flight(), 1);
}
