//! End to end: the real `hopwatch` binary in a network namespace with a veth
//! pair, real traffic, real link changes, events read from its stdout.

use crate::util::{AgentProcess, TempDir, VethPair, can_use_netns};
use serde_json::Value;
use std::time::{Duration, Instant};

fn config(dir: &TempDir, watched: &str, extra: &str) -> std::path::PathBuf {
    dir.write(
        "agent.toml",
        &format!(
            r#"
[agent]
name = "e2e"
interval = "1s"
heartbeat = "1h"
state_dir = "{state}"

[links]
interfaces = ["{watched}"]

[[rule]]
name = "tx-packets"
interfaces = ["{watched}"]
when = "increase(tx_packets[5s]) > 3"
severity = "critical"

[output.stdout]
{extra}
"#,
            state = dir.path().join("state").display(),
        ),
    )
}

fn is(event: &Value, kind: &str, field: &str, value: &str) -> bool {
    event["type"] == kind && event[field] == value
}

#[test]
fn root_netns_alert_fires_and_resolves_and_links_report_at_once() {
    if !can_use_netns("root_netns_alert_fires_and_resolves_and_links_report_at_once") {
        return;
    }
    let lab = VethPair::new(91);
    let dir = TempDir::new("hopwatch-e2e");
    let path = config(&dir, &lab.a_if, "");
    let mut cmd = lab.a.command(env!("CARGO_BIN_EXE_hopwatch"));
    cmd.args(["run", "-c"]).arg(&path);
    let mut agent = AgentProcess::spawn(cmd);

    // Two quiet ticks first: the rule must not fire on history it never saw.
    assert!(
        agent
            .wait_for(Duration::from_millis(2500), |e| e["type"] == "alert")
            .is_none(),
        "an alert fired before any traffic: {:?}",
        agent.seen
    );

    lab.send_udp(20);
    let fired = agent
        .wait_for(Duration::from_secs(5), |e| {
            is(e, "alert", "state", "firing")
        })
        .expect("a firing alert after 20 datagrams");
    assert_eq!(fired["rule"], "tx-packets");
    assert_eq!(fired["interface"], lab.a_if.as_str());
    assert_eq!(fired["severity"], "critical");
    assert_eq!(fired["agent"], "e2e");
    let value = fired["value"].as_f64().unwrap();
    // 20 datagrams plus the ARP exchange that preceded them.
    assert!((20.0..=24.0).contains(&value), "value {value}");
    assert_eq!(fired["threshold"], 3.0);

    let resolved = agent
        .wait_for(Duration::from_secs(8), |e| {
            is(e, "alert", "state", "resolved")
        })
        .expect("the alert resolves once the window holds no traffic");
    assert_eq!(resolved["interface"], lab.a_if.as_str());

    // The peer goes down: the watched end loses its carrier.
    let asked = Instant::now();
    lab.b.ip(&["link", "set", &lab.b_if, "down"]);
    let down = agent
        .wait_for(Duration::from_secs(2), |e| is(e, "link", "state", "down"))
        .expect("a link down event");
    let latency = asked.elapsed();
    assert_eq!(down["interface"], lab.a_if.as_str());
    assert_eq!(down["previous"], "up");
    assert!(
        latency < Duration::from_secs(1),
        "link down took {latency:?}, more than one tick"
    );

    lab.b.ip(&["link", "set", &lab.b_if, "up"]);
    let up = agent
        .wait_for(Duration::from_secs(2), |e| is(e, "link", "state", "up"))
        .expect("a link up event");
    assert_eq!(up["interface"], lab.a_if.as_str());
    assert!(up["carrier_changes"].as_u64().unwrap() > down["carrier_changes"].as_u64().unwrap());

    // Every event of this boot has a strictly increasing seq.
    let seqs: Vec<u64> = agent
        .seen
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(agent.stop().success());
}

/// The same alert through `[output.syslog]` into a real rsyslogd listening
/// on the namespace's loopback.
fn alert_reaches_rsyslog(proto: crate::rsyslog::Proto, protocol: &str, subnet: u8) {
    let lab = VethPair::new(subnet);
    let Some(rsyslog) = crate::rsyslog::Rsyslog::start_in_netns(proto, &lab.a.name) else {
        return;
    };
    let dir = TempDir::new("hopwatch-e2e-syslog");
    let syslog = format!(
        "[output.syslog]\naddress = \"{}\"\nfacility = \"local7\"\nprotocol = \"{protocol}\"\n",
        rsyslog.address()
    );
    let path = config(&dir, &lab.a_if, &syslog);
    let mut cmd = lab.a.command(env!("CARGO_BIN_EXE_hopwatch"));
    cmd.args(["run", "-c"]).arg(&path);
    let mut agent = AgentProcess::spawn(cmd);
    let early = agent.wait_for(Duration::from_millis(1500), |e| e["type"] == "alert");
    assert!(early.is_none(), "an alert before any traffic: {early:?}");
    lab.send_udp(20);
    let fired = agent
        .wait_for(Duration::from_secs(5), |e| {
            is(e, "alert", "state", "firing")
        })
        .expect("a firing alert on stdout");
    let message = fired["message"].as_str().unwrap().to_string();
    let line = rsyslog
        .wait_for(|l| l.msg == message, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("alert not in rsyslog: {:?}", rsyslog.lines()));
    assert_eq!(line.facility, "local7");
    assert_eq!(line.severity, "crit");
    assert_eq!(line.app_name, "hopwatch");
    assert_eq!(line.hostname, "e2e");
    if protocol == "rfc5424" {
        assert!(line.rfc5424);
        assert_eq!(line.msgid, "alert");
    }

    lab.b.ip(&["link", "set", &lab.b_if, "down"]);
    let down = rsyslog
        .wait_for(
            |l| l.msg.contains(&lab.a_if) && l.msg.contains("went down"),
            Duration::from_secs(3),
        )
        .unwrap_or_else(|| panic!("link down not in rsyslog: {:?}", rsyslog.lines()));
    assert_eq!(down.severity, "warning");
    assert_eq!(down.facility, "local7");
    assert!(agent.stop().success());
}

#[test]
fn root_netns_alert_reaches_rsyslog_over_udp_rfc5424() {
    if can_use_netns("root_netns_alert_reaches_rsyslog_over_udp_rfc5424") {
        alert_reaches_rsyslog(crate::rsyslog::Proto::Udp, "rfc5424", 92);
    }
}

#[test]
fn root_netns_alert_reaches_rsyslog_over_tcp_rfc3164() {
    if can_use_netns("root_netns_alert_reaches_rsyslog_over_tcp_rfc3164") {
        alert_reaches_rsyslog(crate::rsyslog::Proto::Tcp, "rfc3164", 93);
    }
}

/// Interfaces created and deleted under a running agent: a new one is
/// judged only on what happens after it appears, and a deleted one with a
/// firing alert resolves it.
#[test]
fn root_netns_interfaces_come_and_go_under_the_agent() {
    if !can_use_netns("root_netns_interfaces_come_and_go_under_the_agent") {
        return;
    }
    let lab = VethPair::new(94);
    let dir = TempDir::new("hopwatch-e2e-churn");
    let path = config(&dir, "hw*", "");
    let mut cmd = lab.a.command(env!("CARGO_BIN_EXE_hopwatch"));
    cmd.args(["run", "-c"]).arg(&path);
    let mut agent = AgentProcess::spawn(cmd);
    agent.wait_for(Duration::from_millis(1500), |_| false);

    // A new pair appears inside the agent's namespace.
    let new_a = crate::util::unique("hwn");
    let new_b = crate::util::unique("hwm");
    lab.a.ip(&[
        "link", "add", &new_a, "type", "veth", "peer", "name", &new_b,
    ]);
    lab.a.ip(&["addr", "add", "10.95.0.1/24", "dev", &new_a]);
    lab.a.ip(&["link", "set", &new_b, "netns", &lab.b.name]);
    lab.b.ip(&["addr", "add", "10.95.0.2/24", "dev", &new_b]);
    lab.a.ip(&["link", "set", &new_a, "up"]);
    lab.b.ip(&["link", "set", &new_b, "up"]);
    // Let the agent see the new interface for a tick, then load it.
    agent.wait_for(Duration::from_millis(1200), |_| false);
    lab.a.within(|| {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        for _ in 0..30 {
            socket.send_to(b"churn", "10.95.0.2:9").unwrap();
        }
    });
    let fired = agent
        .wait_for(Duration::from_secs(4), |e| {
            is(e, "alert", "state", "firing") && e["interface"] == new_a.as_str()
        })
        .expect("the new interface's alert");
    assert!(fired["value"].as_f64().unwrap() >= 30.0);

    // Deleted while firing: the alert resolves, the link reports removal.
    lab.a.ip(&["link", "del", &new_a]);
    let resolved = agent
        .wait_for(Duration::from_secs(3), |e| {
            is(e, "alert", "state", "resolved") && e["interface"] == new_a.as_str()
        })
        .expect("the vanished interface's alert resolves");
    assert!(resolved["value"].is_null());
    assert!(resolved["message"].as_str().unwrap().contains("vanished"));
    assert!(
        agent
            .seen
            .iter()
            .any(|e| is(e, "link", "state", "down") && e["interface"] == new_a.as_str()),
        "no link down for the deleted interface: {:?}",
        agent.seen
    );
    assert!(agent.stop().success());
}

/// Heartbeats carry the namespace's addresses, and an address added while
/// the agent runs shows in the next heartbeat (netlink tells the agent).
#[test]
fn root_netns_heartbeat_addresses_follow_changes() {
    if !can_use_netns("root_netns_heartbeat_addresses_follow_changes") {
        return;
    }
    let lab = VethPair::new(96);
    let dir = TempDir::new("hopwatch-e2e-addr");
    let text = std::fs::read_to_string(config(&dir, &lab.a_if, "")).unwrap();
    let path = dir.write(
        "beat.toml",
        &text.replace("heartbeat = \"1h\"", "heartbeat = \"1s\""),
    );
    let mut cmd = lab.a.command(env!("CARGO_BIN_EXE_hopwatch"));
    cmd.args(["run", "-c"]).arg(&path);
    let mut agent = AgentProcess::spawn(cmd);
    let has = |e: &Value, addr: &str| {
        e["type"] == "heartbeat"
            && e["addresses"][0]["addresses"]
                .as_array()
                .is_some_and(|list| list.iter().any(|a| a["address"] == addr))
    };
    let first = agent
        .wait_for(Duration::from_secs(3), |e| e["type"] == "heartbeat")
        .expect("a heartbeat at start");
    assert!(has(&first, "10.96.0.1/24"), "{first}");
    lab.a
        .ip(&["addr", "add", "10.196.7.7/16", "dev", &lab.a_if]);
    agent
        .wait_for(Duration::from_secs(3), |e| has(e, "10.196.7.7/16"))
        .expect("the new address in a later heartbeat");
    assert!(agent.stop().success());
}

/// A link already down when the agent starts is reported down, with an
/// unknown previous state, as is every other watched link's initial state;
/// a reload does not report them again.
#[test]
fn root_netns_links_report_their_initial_state_at_start() {
    if !can_use_netns("root_netns_links_report_their_initial_state_at_start") {
        return;
    }
    let lab = VethPair::new(97);
    // A second pair whose peer is down: no carrier on the watched end.
    let dead = crate::util::unique("hwd");
    let dead_peer = crate::util::unique("hwe");
    lab.a.ip(&[
        "link", "add", &dead, "type", "veth", "peer", "name", &dead_peer,
    ]);
    lab.a.ip(&["link", "set", &dead_peer, "netns", &lab.b.name]);
    lab.a.ip(&["link", "set", &dead, "up"]);
    let dir = TempDir::new("hopwatch-e2e-initial");
    for link_watch in ["netlink", "poll"] {
        let watched = format!("{}\", \"{dead}", lab.a_if);
        let text = std::fs::read_to_string(config(&dir, &watched, "")).unwrap();
        let path = dir.write(
            "initial.toml",
            &text.replace(
                "heartbeat = \"1h\"",
                &format!("heartbeat = \"1h\"\nlink_watch = \"{link_watch}\""),
            ),
        );
        let mut cmd = lab.a.command(env!("CARGO_BIN_EXE_hopwatch"));
        cmd.args(["run", "-c"]).arg(&path);
        let mut agent = AgentProcess::spawn(cmd);
        // In whichever order they come.
        let initial = |agent: &mut AgentProcess, name: &str| {
            let is_it = |e: &Value| e["type"] == "link" && e["interface"] == name;
            if let Some(e) = agent.seen.iter().find(|e| is_it(e)) {
                return e.clone();
            }
            agent
                .wait_for(Duration::from_secs(3), is_it)
                .unwrap_or_else(|| {
                    panic!(
                        "{link_watch}: no initial state for {name}: {:?}",
                        agent.seen
                    )
                })
        };
        let down = initial(&mut agent, &dead);
        assert_eq!(down["state"], "down", "{link_watch}: {down}");
        assert_eq!(down["previous"], "unknown", "{link_watch}: {down}");
        assert_ne!(down["oper_state"], "up", "{link_watch}: {down}");
        assert!(
            down["message"].as_str().unwrap().contains("is down"),
            "{link_watch}: {down}"
        );
        let up = initial(&mut agent, &lab.a_if);
        assert_eq!(up["state"], "up", "{link_watch}: {up}");
        assert_eq!(up["previous"], "unknown", "{link_watch}: {up}");

        // A reload reports nothing again for links it already knew.
        agent.signal(nix::sys::signal::Signal::SIGHUP);
        let again = agent.wait_for(Duration::from_millis(1500), |e| e["type"] == "link");
        assert!(
            again.is_none(),
            "{link_watch}: reported again after a reload: {again:?}"
        );
        // Later changes have a known previous state.
        lab.a.ip(&["link", "set", &dead, "down"]);
        lab.b.ip(&["link", "set", &dead_peer, "up"]);
        lab.a.ip(&["link", "set", &dead, "up"]);
        let came = agent
            .wait_for(Duration::from_secs(3), |e| {
                e["type"] == "link" && e["interface"] == dead.as_str() && e["state"] == "up"
            })
            .unwrap_or_else(|| panic!("{link_watch}: no up: {:?}", agent.seen));
        assert_eq!(came["previous"], "down", "{link_watch}: {came}");
        assert!(agent.stop().success());
        lab.b.ip(&["link", "set", &dead_peer, "down"]);
    }
}
