//! A rule's `kind` and `labels` on the real binary: kinds told from a fixture
//! `/sys` holding what this kernel cannot make (NICs, bonds and their
//! members, VLANs) and from real veths, bridges, VXLANs and macvlans in a
//! network namespace;
//! labels on the alert events and in a real rsyslogd's structured data.

use crate::rsyslog::{Proto, Rsyslog};
use crate::util::{AgentProcess, TempDir, VethPair, can_use_netns, hopwatch, poll, unique};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

/// Rules that hold on every interface from the first tick, one per kind
/// list, so which fire says which interfaces each kind list chose.
const KIND_RULES: &str = r#"
[[rule]]
name = "ports"
interfaces = ["*"]
when = "tx_bytes >= 0"
kind = ["physical", "!bond_member"]
labels = { team = "dc-ops" }

[[rule]]
name = "members"
interfaces = ["*"]
when = "tx_bytes >= 0"
kind = ["bond_member"]

[[rule]]
name = "bonds"
interfaces = ["*"]
when = "tx_bytes >= 0"
kind = ["bond"]

[[rule]]
name = "virtual"
interfaces = ["*"]
when = "tx_bytes >= 0"
kind = ["veth", "bridge", "vlan"]

[[rule]]
name = "loops"
interfaces = ["*"]
when = "tx_bytes >= 0"
kind = ["loopback"]
"#;

/// A fixture machine: `/proc/net/dev` and `/sys/class/net` under a temp dir.
struct Machine {
    dir: TempDir,
}

impl Machine {
    /// Interfaces with the sysfs entries that say their kind: a file
    /// `name=value`, or a directory `name/`.
    fn new(interfaces: &[(&str, &[&str])]) -> Machine {
        let dir = TempDir::new("hopwatch-kinds");
        let machine = Machine { dir };
        std::fs::create_dir_all(machine.proc().join("net")).unwrap();
        let mut dev = HEADER.to_string();
        for (name, entries) in interfaces {
            dev += &format!("{name:>6}: 100 1 0 0 0 0 0 0 200 2 0 0 0 0 0 0\n");
            let sys = machine.sys().join("class/net").join(name);
            std::fs::create_dir_all(&sys).unwrap();
            for (file, value) in [
                ("flags", "0x1003"),
                ("carrier", "1"),
                ("operstate", "up"),
                ("carrier_changes", "1"),
                ("type", "1"),
            ] {
                std::fs::write(sys.join(file), format!("{value}\n")).unwrap();
            }
            for entry in *entries {
                match entry.split_once('=') {
                    Some((file, value)) => {
                        std::fs::write(sys.join(file), format!("{value}\n")).unwrap()
                    }
                    None => std::fs::create_dir_all(sys.join(entry.trim_end_matches('/'))).unwrap(),
                }
            }
        }
        std::fs::write(machine.proc().join("net/dev"), dev).unwrap();
        machine
    }

    fn proc(&self) -> PathBuf {
        self.dir.path().join("proc")
    }

    fn sys(&self) -> PathBuf {
        self.dir.path().join("sys")
    }

    fn config(&self, rules: &str, outputs: &str) -> PathBuf {
        self.dir.write(
            "agent.toml",
            &format!(
                r#"[agent]
name = "kinds"
interval = "200ms"
heartbeat = "1h"
state_dir = "{state}"
proc_root = "{proc}"
sys_root = "{sys}"

{rules}

[output.stdout]
{outputs}
"#,
                state = self.dir.path().join("state").display(),
                proc = self.proc().display(),
                sys = self.sys().display(),
            ),
        )
    }
}

/// The agent's status over its control socket, once it has one.
fn status(socket: &Path) -> Option<Value> {
    if !socket.exists() {
        return None;
    }
    let out = hopwatch()
        .args(["status", "--json", "--socket"])
        .arg(socket)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

/// The (rule, interface) pairs firing once `want` of them are, within 10 s.
fn firing_pairs(socket: &Path, want: usize) -> BTreeSet<(String, String)> {
    let mut last = BTreeSet::new();
    poll(Duration::from_secs(10), || {
        let status = status(socket)?;
        last = status["firing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["rule"].as_str().unwrap().to_string(),
                    f["interface"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (last.len() >= want).then_some(())
    })
    .unwrap_or_else(|| panic!("never {want} alerts firing; last {last:?}"));
    last
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(r, i)| (r.to_string(), i.to_string()))
        .collect()
}

#[test]
fn rule_kinds_on_a_sys_root_of_nics_bonds_and_members() {
    let machine = Machine::new(&[
        ("lo", &["type=772"]),
        ("eth0", &["device/"]),
        ("eth1", &["device/", "bonding_slave/"]),
        ("eth2", &["device/", "master/bonding/"]),
        ("bond0", &["bonding/", "uevent=DEVTYPE=bond"]),
        ("veth0", &["ifindex=7", "iflink=8"]),
        ("br0", &["bridge/", "uevent=DEVTYPE=bridge"]),
        // An ASIC's port: no bus device, but a switch port's name.
        ("swp1", &["ifindex=9", "iflink=9"]),
        ("mv0", &["ifindex=10", "iflink=2", "lower_eth0/"]),
        (
            "eth0.10",
            &[
                "ifindex=11",
                "iflink=2",
                "lower_eth0/",
                "uevent=DEVTYPE=vlan",
            ],
        ),
    ]);
    let config = machine.config(KIND_RULES, "");
    let mut cmd = hopwatch();
    cmd.args(["run", "-c"]).arg(&config);
    let mut agent = AgentProcess::spawn(cmd);
    let socket = machine.dir.path().join("state/hopwatch.sock");
    let want = pairs(&[
        ("ports", "eth0"),
        ("ports", "swp1"),
        ("members", "eth1"),
        ("members", "eth2"),
        ("bonds", "bond0"),
        ("virtual", "veth0"),
        ("virtual", "br0"),
        ("virtual", "eth0.10"),
        ("loops", "lo"),
    ]);
    assert_eq!(firing_pairs(&socket, want.len()), want);

    let status = status(&socket).unwrap();
    let ports = &status["rules"][0];
    assert_eq!(
        ports["kind"],
        serde_json::json!(["physical", "!bond_member"])
    );
    let text = hopwatch()
        .args(["status", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("  on *\n    kind physical !bond_member\n"),
        "{text}"
    );

    // The events carry the rule's labels; only the labelled rule's.
    let fired = agent
        .wait_for(Duration::from_secs(5), |e| {
            e["type"] == "alert" && e["rule"] == "ports"
        })
        .expect("the ports rule's alert on stdout");
    assert_eq!(fired["labels"], serde_json::json!({"team": "dc-ops"}));
    let other = agent
        .wait_for(Duration::from_secs(5), |e| {
            e["type"] == "alert" && e["rule"] == "bonds"
        })
        .expect("the bonds rule's alert on stdout");
    assert!(other.get("labels").is_none(), "{other}");
    assert!(agent.stop().success());
}

/// A rule named `name` that holds on every interface of `kinds` from the
/// first tick.
fn kind_rule(name: &str, kinds: &str) -> String {
    format!(
        "[[rule]]\nname = \"{name}\"\ninterfaces = [\"*\"]\nwhen = \"tx_bytes >= 0\"\nkind = [{kinds}]\n\n"
    )
}

/// This kernel makes veths, bridges, VXLANs and macvlans (no VLANs, bonds
/// or dummies: those are in the fixture test above).
#[test]
fn root_netns_rule_kinds_on_real_veth_bridge_vxlan_and_macvlan() {
    if !can_use_netns("root_netns_rule_kinds_on_real_veth_bridge_vxlan_and_macvlan") {
        return;
    }
    let lab = VethPair::new(172);
    let bridge = unique("hwbr");
    let vxlan = unique("hwvx");
    let macvlan = unique("hwmv");
    lab.a.ip(&["link", "add", &bridge, "type", "bridge"]);
    lab.a.ip(&[
        "link", "add", &vxlan, "type", "vxlan", "id", "5", "dstport", "4789", "dev", &lab.a_if,
    ]);
    lab.a.ip(&[
        "link", "add", "link", &lab.a_if, "name", &macvlan, "type", "macvlan",
    ]);
    for dev in [&bridge, &vxlan, &macvlan] {
        lab.a.ip(&["link", "set", dev, "up"]);
    }
    let dir = TempDir::new("hopwatch-kinds-netns");
    let rules = [
        kind_rule("ports", "\"physical\""),
        kind_rule("veths", "\"veth\""),
        kind_rule("bridges", "\"bridge\""),
        kind_rule("tunnels", "\"tunnel\""),
        kind_rule("others", "\"other\""),
        kind_rule("loops", "\"loopback\""),
        kind_rule("bonds", "\"bond\", \"bond_member\", \"vlan\""),
    ]
    .concat();
    let config = dir.write(
        "agent.toml",
        &format!(
            "[agent]\nname = \"kinds\"\ninterval = \"200ms\"\nheartbeat = \"1h\"\nstate_dir = \"{}\"\n\n{rules}[output.stdout]\n",
            dir.path().join("state").display()
        ),
    );
    let mut cmd = lab.a.command(env!("CARGO_BIN_EXE_hopwatch"));
    cmd.args(["run", "-c"]).arg(&config);
    let agent = AgentProcess::spawn(cmd);
    let want = pairs(&[
        ("veths", lab.a_if.as_str()),
        ("bridges", bridge.as_str()),
        ("tunnels", vxlan.as_str()),
        ("others", macvlan.as_str()),
        ("loops", "lo"),
    ]);
    let got = firing_pairs(&dir.path().join("state/hopwatch.sock"), want.len());
    assert_eq!(got, want, "{}", lab.a.describe());
    assert!(agent.stop().success());
}

/// An alert of a labelled rule, through `[output.syslog]` to a real
/// rsyslogd.
fn labels_reach_rsyslog(proto: Proto, protocol: &str) {
    let Some(rsyslog) = Rsyslog::start(proto) else {
        return;
    };
    let machine = Machine::new(&[("eth0", &["device/"])]);
    let config = machine.config(
        r#"[[rule]]
name = "tx-seen"
when = "tx_bytes >= 0"
severity = "critical"
kind = ["physical"]
labels = { team = "dc-ops", runbook = "https://wiki/tx?see=[1]" }"#,
        &format!(
            "[output.syslog]\naddress = \"{}\"\nprotocol = \"{protocol}\"\n",
            rsyslog.address()
        ),
    );
    let mut cmd = hopwatch();
    cmd.args(["run", "-c"]).arg(&config);
    let mut agent = AgentProcess::spawn(cmd);
    let fired = agent
        .wait_for(Duration::from_secs(5), |e| e["type"] == "alert")
        .expect("a firing alert on stdout");
    assert_eq!(
        fired["labels"],
        serde_json::json!({"team": "dc-ops", "runbook": "https://wiki/tx?see=[1]"})
    );
    let message = fired["message"].as_str().unwrap().to_string();
    let sd = r#"[labels@32473 runbook="https://wiki/tx?see=[1\]" team="dc-ops"]"#;
    let line = rsyslog
        .wait_for(|l| l.msg.starts_with(&message), Duration::from_secs(5))
        .unwrap_or_else(|| panic!("alert not in rsyslog: {:?}", rsyslog.lines()));
    assert_eq!(line.severity, "crit");
    if protocol == "rfc5424" {
        assert!(line.rfc5424);
        assert_eq!(line.structured_data, sd);
        assert_eq!(line.msg, message);
    } else {
        assert_eq!(line.structured_data, "-");
        assert_eq!(line.msg, format!("{message} {sd}"));
    }
    assert!(agent.stop().success());
}

#[test]
fn rule_labels_reach_rsyslog_as_structured_data_over_udp_rfc5424() {
    labels_reach_rsyslog(Proto::Udp, "rfc5424");
}

#[test]
fn rule_labels_follow_the_sentence_in_rsyslog_over_tcp_rfc3164() {
    labels_reach_rsyslog(Proto::Tcp, "rfc3164");
}
