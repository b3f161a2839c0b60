//! The `nxapi` counter source as it polls on NX-OS: `show interface
//! counters` then `show interface counters errors`, one request at a time,
//! against fixtures written from the documented shapes (several rows per
//! port, one-row tables as objects, counts as strings, ports some tables
//! leave out). Also where a row carries fewer columns than others: those
//! columns are unavailable for that interface, in `hopwatch counters` and in
//! the rules, never zero.

use super::server::{Request, Server};
use super::{fixture, fixture_json, set_field};
use super::{names, row};
use super::{nxapi_config, run_agent};
use crate::util::{AgentProcess, Netns, TempDir, can_use_netns, hopwatch, hopwatch_json};
use hopwatch::metric::Metric;
use hopwatch::source::CounterSource;
use hopwatch::source::nxapi::{CountersSource, SHOW_COUNTERS, SHOW_COUNTERS_ERRORS};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn source(server: &Server) -> CountersSource {
    CountersSource::new(&server.path, "admin", Duration::from_secs(2))
}

/// Answers the two counters commands from the 96-port fixtures.
fn answer_96(request: &Request) -> (u16, String) {
    match request.input.as_str() {
        SHOW_COUNTERS => (200, fixture("show_interface_counters_96.json")),
        SHOW_COUNTERS_ERRORS => (200, fixture("show_interface_counters_errors_96.json")),
        _ => (200, fixture("error.json")),
    }
}

#[test]
fn nxapi_cli_source_reads_every_fixture_shape() {
    let dir = TempDir::new("hopwatch-nxapi-cli");
    let server = Server::start(&dir, answer_96);
    let mut source = source(&server);

    // 96 ports over two slots, counts as strings, several rows per port.
    let chassis = source.sample().expect("a good reply samples");
    let ports = names(&chassis)
        .into_iter()
        .filter(|n| n.starts_with("Ethernet"))
        .count();
    assert_eq!(ports, 96);
    let last = row(&chassis, "Ethernet2/48");
    assert_eq!(last.counters[Metric::RxBytes as usize], 96 * 1041 * 512);
    assert_eq!(
        last.counters[Metric::RxPackets as usize],
        96 * 1000 + 96 * 40 + 96
    );
    assert_eq!(last.counters[Metric::TxDropped as usize], 96 % 7);
    assert_eq!(last.counters[Metric::RxCrc as usize], 96 % 5);
    assert!(last.columns.supplies(Metric::TxCollisions));
    assert!(last.link.is_none(), "the counters tables carry no link");
    // The SVI counts only what it received, the tunnel no errors, and
    // neither is in the errors table: those columns are unavailable.
    let vlan = row(&chassis, "Vlan2001");
    assert!(vlan.columns.supplies(Metric::RxBytes));
    for missing in [Metric::TxBytes, Metric::RxErrors, Metric::TxDropped] {
        assert!(!vlan.columns.supplies(missing), "Vlan2001 {missing}");
    }
    let nve = row(&chassis, "nve1");
    assert_eq!(nve.counters[Metric::TxBytes as usize], 324_119_026_772);
    assert!(nve.columns.supplies(Metric::RxPackets));
    assert!(!nve.columns.supplies(Metric::RxCrc));
    assert!(!nve.columns.supplies(Metric::TxErrors));
    // mgmt0 counts packets, not bytes.
    let mgmt = row(&chassis, "mgmt0");
    assert!(mgmt.columns.supplies(Metric::TxPackets) && !mgmt.columns.supplies(Metric::TxBytes));

    // The two commands in order, each once, the session cookie reused.
    let requests = server.requests();
    let asked: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.kind.as_str(), r.input.as_str()))
        .collect();
    assert_eq!(
        asked,
        [
            ("cli_show", SHOW_COUNTERS),
            ("cli_show", SHOW_COUNTERS_ERRORS)
        ]
    );
    assert_eq!(
        requests[1].cookie.as_deref(),
        Some(super::server::SESSION_COOKIE)
    );

    // One port: every table's ROW_* is an object, counts are numbers.
    server.answer(|request| match request.input.as_str() {
        SHOW_COUNTERS => (200, fixture("show_interface_counters_one.json")),
        _ => (200, fixture("show_interface_counters_errors_one.json")),
    });
    let one = source.sample().unwrap();
    assert_eq!(names(&one), ["Ethernet1/1"]);
    let eth = &one.rows[0];
    assert_eq!(eth.counters[Metric::RxBytes as usize], 288_825_287);
    assert_eq!(eth.counters[Metric::TxBytes as usize], 225_239_460);
    assert_eq!(eth.counters[Metric::RxErrors as usize], 15);
    assert_eq!(eth.counters[Metric::RxCrc as usize], 1);
    assert!(
        !eth.columns.supplies(Metric::RxPackets),
        "unicast alone is not every packet"
    );
    assert_eq!(server.most_in_flight(), 1);
}

#[test]
fn nxapi_cli_failed_errors_keep_traffic_and_failed_counters_lose_the_tick() {
    let dir = TempDir::new("hopwatch-nxapi-cli");
    let server = Server::start(&dir, |request| match request.input.as_str() {
        SHOW_COUNTERS => (200, fixture("show_interface_counters_96.json")),
        _ => (200, fixture("error.json")),
    });
    let mut source = source(&server);

    // The errors command refused: the traffic counters stand, the error and
    // drop columns are unavailable, and the snapshot says why.
    let partial = source.sample().expect("the traffic counters answered");
    let eth = row(&partial, "Ethernet1/1");
    assert_eq!(eth.counters[Metric::RxBytes as usize], 1041 * 512);
    assert!(eth.columns.supplies(Metric::TxPackets));
    for missing in [Metric::RxCrc, Metric::TxErrors, Metric::TxDropped] {
        assert!(!eth.columns.supplies(missing), "{missing}");
    }
    let why = partial.partial.as_deref().expect("the failure is reported");
    assert!(
        why.contains(SHOW_COUNTERS_ERRORS) && why.contains("code 400"),
        "{why}"
    );

    // The traffic command refused: the tick is lost, and the errors
    // command is not asked in vain.
    server.answer(|_| (200, fixture("error.json")));
    let before = server.requests().len();
    let error = source.sample().unwrap_err().to_string();
    assert!(
        error.contains("code 400") && error.contains(SHOW_COUNTERS),
        "{error}"
    );
    let asked: Vec<String> = server.requests()[before..]
        .iter()
        .map(|r| r.input.clone())
        .collect();
    assert_eq!(asked, [SHOW_COUNTERS]);
}

/// What the test moves between polls.
#[derive(Default)]
struct Switch {
    tx_errors: u64,
    nve_rx_bytes: u64,
    refuse_errors: bool,
}

/// Sets the received bytes of `name` in a `show interface counters` reply.
fn set_rx_bytes(reply: &mut Value, name: &str, bytes: u64) {
    let rows =
        &mut reply["ins_api"]["outputs"]["output"]["body"]["TABLE_rx_counters"]["ROW_rx_counters"];
    for row in rows.as_array_mut().unwrap() {
        if row["interface_rx"] == name && row.get("eth_inbytes").is_some() {
            row["eth_inbytes"] = Value::String(bytes.to_string());
        }
    }
}

fn moving_switch(dir: &TempDir, switch: &Arc<Mutex<Switch>>) -> Server {
    let state = Arc::clone(switch);
    let counters = fixture_json("show_interface_counters_96.json");
    let errors = fixture_json("show_interface_counters_errors_96.json");
    Server::start(dir, move |request| {
        let state = state.lock().unwrap();
        match request.input.as_str() {
            SHOW_COUNTERS => {
                let mut reply = counters.clone();
                set_rx_bytes(&mut reply, "nve1", 452_570_604_264 + state.nve_rx_bytes);
                (200, reply.to_string())
            }
            SHOW_COUNTERS_ERRORS if state.refuse_errors => (200, fixture("error.json")),
            SHOW_COUNTERS_ERRORS => {
                let mut reply = errors.clone();
                set_field(&mut reply, "Ethernet1/5", "eth_xmit_err", state.tx_errors);
                (200, reply.to_string())
            }
            _ => (200, fixture("error.json")),
        }
    })
}

fn agent_config(dir: &TempDir, socket: &Path, links: &str, rules: &str) -> PathBuf {
    nxapi_config(
        dir,
        socket,
        "nxapi",
        &format!("[links]\ninterfaces = [{links}]\n{rules}"),
    )
}

/// The interfaces `rule` cannot be evaluated on, from `hopwatch status`.
fn unavailable(config: &Path, rule: &str) -> Vec<String> {
    let status = hopwatch_json(&["status", "--json"], config);
    let rules = status["rules"].as_array().unwrap();
    let rule = rules.iter().find(|r| r["name"] == rule).unwrap();
    rule["unavailable"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|u| u["interface"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn nxapi_cli_agent_fires_rules_and_counts_errors_across_a_failed_errors_read() {
    let dir = TempDir::new("hopwatch-nxapi-cli");
    let switch = Arc::new(Mutex::new(Switch::default()));
    let server = moving_switch(&dir, &switch);
    let config = agent_config(
        &dir,
        &server.path,
        "\"Eth1-*\"",
        r#"
[[rule]]
name = "tx-errors"
when = "increase(tx_errors[1s]) > 3"
severity = "critical"

[[rule]]
name = "tunnel-busy"
interfaces = ["nve*"]
when = "increase(rx_bytes[1s]) > 1000"
severity = "info"
"#,
    );
    let mut agent = run_agent(&config);

    // The SVI, the tunnel and mgmt0 report no transmit errors: the rule
    // cannot be evaluated there, and status says so.
    let mut blind = Vec::new();
    wait_until("status lists where tx-errors is blind", || {
        blind = unavailable(&config, "tx-errors");
        !blind.is_empty()
    });
    assert_eq!(blind, ["Vlan2001", "mgmt0", "nve1"]);
    let status = hopwatch_json(&["status", "--json"], &config);
    assert_eq!(status["source"], "nxapi");
    assert_eq!(
        status["link_watch"], "netlink",
        "links come from the kernel"
    );

    switch.lock().unwrap().tx_errors = 10;
    let fired = agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "alert" && e["rule"] == "tx-errors" && e["state"] == "firing"
        })
        .expect("tx-errors fires on moved counters");
    assert_eq!(fired["interface"], "Ethernet1/5");
    assert_eq!(fired["value"], 10.0);
    agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "alert" && e["rule"] == "tx-errors" && e["state"] == "resolved"
        })
        .expect("tx-errors resolves once the counter stands still");

    // The errors command fails: the traffic counters still count (the
    // tunnel rule fires), the error columns are unavailable and status
    // says why, and errors counted meanwhile are not lost.
    {
        let mut switch = switch.lock().unwrap();
        switch.refuse_errors = true;
        switch.tx_errors = 30;
    }
    wait_until("Ethernet1/5 becomes unavailable", || {
        unavailable(&config, "tx-errors").contains(&"Ethernet1/5".to_string())
    });
    switch.lock().unwrap().nve_rx_bytes = 5_000;
    let busy = agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "alert" && e["rule"] == "tunnel-busy"
        })
        .expect("traffic rules run while the errors read fails");
    assert_eq!(busy["interface"], "nve1");
    let status = hopwatch_json(&["status", "--json"], &config);
    let why = status["last_source_error"].as_str().unwrap();
    assert!(
        why.contains(SHOW_COUNTERS_ERRORS) && why.contains("unavailable"),
        "{status}"
    );
    assert!(
        !agent
            .seen
            .iter()
            .any(|e| e["rule"] == "tx-errors" && e["value"] == 20.0),
        "nothing is evaluated on an unavailable column"
    );
    switch.lock().unwrap().refuse_errors = false;
    let fired = agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "alert" && e["rule"] == "tx-errors" && e["state"] == "firing"
        })
        .expect("the errors counted during the failure fire once it ends");
    assert_eq!(fired["interface"], "Ethernet1/5");
    assert_eq!(fired["value"], 20.0);
    assert!(
        !agent.seen.iter().any(|e| e["type"] == "alert"
            && ["Vlan2001", "nve1", "mgmt0"].contains(&e["interface"].as_str().unwrap_or(""))
            && e["rule"] == "tx-errors"),
        "a missing column never fires: {:?}",
        agent.seen
    );
    assert!(agent.stop().success());
    assert_eq!(server.most_in_flight(), 1, "one request at a time");
}

#[test]
fn nxapi_counters_command_shows_missing_columns_as_unavailable() {
    let dir = TempDir::new("hopwatch-nxapi-cli");
    let server = Server::start(&dir, |_| {
        (200, fixture("show_interface_vlan2001_nve1.json"))
    });
    let config = dir.write(
        "agent.toml",
        &format!(
            "[agent]\nsource = \"nxapi\"\nnxapi_socket = \"{}\"\n",
            server.path.display()
        ),
    );
    let rows = hopwatch_json(&["counters", "--json", "--interval", "100ms"], &config);
    // On demand, the full `show interface`: link and speed with the counts.
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.input == "show interface")
    );
    let rows = rows.as_array().unwrap();
    let find = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap();
    let vlan = find("Vlan2001");
    assert_eq!(vlan["state"], "up");
    assert_eq!(vlan["rx_bytes"], 0);
    assert_eq!(vlan["rx_packets"], 0);
    assert_eq!(vlan["rx_bps"], 0.0);
    for missing in [
        "tx_bytes",
        "tx_packets",
        "rx_errors",
        "tx_errors",
        "rx_dropped",
        "tx_dropped",
        "tx_bps",
        "tx_pps",
        "tx_util",
    ] {
        assert!(vlan[missing].is_null(), "Vlan2001 {missing}: {vlan}");
    }
    let nve = find("nve1");
    assert_eq!(nve["tx_bytes"], 324_119_026_772u64 + 282_870_542);
    for missing in ["rx_errors", "tx_errors", "rx_dropped", "tx_dropped"] {
        assert!(nve[missing].is_null(), "nve1 {missing}: {nve}");
    }
    let eth = find("Ethernet1/1");
    assert!(
        eth["rx_errors"].is_u64() && eth["tx_dropped"].is_u64(),
        "{eth}"
    );

    let table = hopwatch()
        .args(["counters", "--interval", "100ms", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    let line = table
        .lines()
        .find(|l| l.starts_with("Vlan2001"))
        .unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    // IFACE STATE SPEED RX TX RX-PPS TX-PPS RX-ERR TX-ERR RX-DROP TX-DROP RX% TX%
    assert_eq!(cells[4], "-", "TX: {line}");
    assert_eq!(cells[6..11], ["-", "-", "-", "-", "-"], "{line}");
}

/// Under the `nxapi` source the counters carry no link state: a port's
/// carrier comes from its netdev (`Eth1-7` for `Ethernet1/7`) through
/// netlink, at once, and a rule on `oper_up` for `Ethernet1/7` reads it.
#[test]
fn nxapi_cli_links_come_from_netlink_carrier_root_netns() {
    if !can_use_netns("nxapi_cli_links_come_from_netlink_carrier_root_netns") {
        return;
    }
    let dir = TempDir::new("hopwatch-nxapi-cli");
    let server = Server::start(&dir, answer_96);
    // NX-OS's own names, inside a namespace of this test's own.
    let ns = Netns::new("hwnx");
    ns.ip(&[
        "link", "add", "Eth1-7", "type", "veth", "peer", "name", "Eth1-8",
    ]);
    ns.ip(&["link", "set", "Eth1-7", "up"]);
    ns.ip(&["link", "set", "Eth1-8", "up"]);
    let config = agent_config(
        &dir,
        &server.path,
        "\"Eth1-7\"",
        r#"
[[rule]]
name = "port-down"
interfaces = ["Ethernet1/7"]
when = "oper_up == 0"
severity = "critical"
"#,
    );
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_hopwatch"));
    cmd.args(["run", "-c"]).arg(&config);
    let mut agent = AgentProcess::spawn(cmd);
    agent
        .wait_for(Duration::from_secs(5), |e| e["type"] == "heartbeat")
        .expect("a first heartbeat");
    wait_until("the agent samples the counters", || {
        server
            .requests()
            .iter()
            .any(|r| r.input == SHOW_COUNTERS_ERRORS)
    });

    // The peer goes down: Eth1-7 loses its carrier.
    ns.ip(&["link", "set", "Eth1-8", "down"]);
    let down = agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "link" && e["state"] == "down"
        })
        .expect("a link event from the kernel's carrier");
    assert_eq!(down["interface"], "Ethernet1/7", "NX-OS names the port");
    let fired = agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "alert" && e["rule"] == "port-down"
        })
        .expect("oper_up of Ethernet1/7 is its netdev's carrier");
    assert_eq!(fired["interface"], "Ethernet1/7");
    ns.ip(&["link", "set", "Eth1-8", "up"]);
    agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "link" && e["interface"] == "Ethernet1/7" && e["state"] == "up"
        })
        .expect("and back up");
    assert!(agent.stop().success());
}
