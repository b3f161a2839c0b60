//! The agent's interface families against Debian's node_exporter in the same
//! network namespace, after real traffic over a veth: same names, HELP,
//! TYPE, labels and values for every series both have.

use super::{have, metadata, promtool_check, samples, scrape, value};
use crate::util::{TempDir, VethPair, can_use_netns, poll};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::Duration;

/// node_exporter's families the agent copies (its netdev and netclass
/// collectors) for the interfaces procfs reports.
const FAMILIES: [&str; 20] = [
    "node_network_receive_bytes_total",
    "node_network_receive_packets_total",
    "node_network_receive_errs_total",
    "node_network_receive_drop_total",
    "node_network_receive_fifo_total",
    "node_network_receive_frame_total",
    "node_network_receive_compressed_total",
    "node_network_receive_multicast_total",
    "node_network_transmit_bytes_total",
    "node_network_transmit_packets_total",
    "node_network_transmit_errs_total",
    "node_network_transmit_drop_total",
    "node_network_transmit_fifo_total",
    "node_network_transmit_colls_total",
    "node_network_transmit_carrier_total",
    "node_network_transmit_compressed_total",
    "node_network_up",
    "node_network_carrier",
    "node_network_carrier_changes_total",
    "node_network_speed_bytes",
];

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn family(key: &str) -> &str {
    key.split('{').next().unwrap()
}

#[test]
fn root_netns_exporter_matches_node_exporter() {
    let test = "root_netns_exporter_matches_node_exporter";
    if !can_use_netns(test) || !have(test, "prometheus-node-exporter", "prometheus-node-exporter") {
        return;
    }
    let pair = VethPair::new(214);
    let dir = TempDir::new("hwexpne");
    let config = dir.write(
        "agent.toml",
        &format!(
            "[agent]\nname = \"ne\"\ninterval = \"200ms\"\nheartbeat = \"1h\"\nstate_dir = \"{}\"\n\n\
             [output.prometheus]\nlisten = \"127.0.0.1:9101\"\n",
            dir.path().join("state").display()
        ),
    );
    let agent_addr: SocketAddr = "127.0.0.1:9101".parse().unwrap();
    let ne_addr: SocketAddr = "127.0.0.1:9100".parse().unwrap();
    let _agent = spawn_agent_in(&pair, &config);
    let _ne = Killed(
        pair.a
            .command("prometheus-node-exporter")
            .args([
                "--web.listen-address=127.0.0.1:9100",
                "--collector.disable-defaults",
                "--collector.netdev",
                "--collector.netclass",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter"),
    );
    let in_a = |addr: SocketAddr| {
        pair.a.within(move || {
            scrape(addr, None)
                .ok()
                .filter(|(s, _)| *s == 200)
                .map(|(_, t)| t)
        })
    };
    poll(Duration::from_secs(10), || in_a(ne_addr)).expect("node_exporter answers");
    poll(Duration::from_secs(10), || in_a(agent_addr)).expect("the agent answers");

    // Traffic, then none: IPv6 is off in the namespaces, so the counters
    // hold still once the datagrams are through.
    pair.send_udp(50);

    // node_exporter reads the kernel when scraped, the agent at its tick:
    // read node_exporter, then the agent once it has ticked since. Only an
    // ARP refresh landing in between could move a counter; the comparison
    // is made again then, at most five times.
    let mut last = String::new();
    for _ in 0..5 {
        let ne = in_a(ne_addr).expect("node_exporter");
        let ticks = |t: &str| value(t, "hopwatch_tick_seconds_count").unwrap_or(0.0);
        let before = ticks(&in_a(agent_addr).expect("agent"));
        let agent = poll(Duration::from_secs(5), || {
            in_a(agent_addr).filter(|t| ticks(t) > before)
        })
        .expect("the agent ticks");
        let (ne_samples, agent_samples) = (samples(&ne), samples(&agent));
        let common: Vec<&String> = ne_samples
            .keys()
            .filter(|k| FAMILIES.contains(&family(k)))
            .collect();
        let a_if = format!("device=\"{}\"", pair.a_if);
        let for_veth: BTreeSet<&str> = common
            .iter()
            .filter(|k| k.contains(&a_if))
            .map(|k| family(k))
            .collect();
        assert_eq!(
            for_veth.len(),
            FAMILIES.len(),
            "node_exporter reports every family for the veth: {for_veth:?}"
        );
        let differ: Vec<String> = common
            .iter()
            .filter(|k| agent_samples.get(**k) != ne_samples.get(**k))
            .map(|k| {
                format!(
                    "{k}: node_exporter {:?}, agent {:?}",
                    ne_samples[*k],
                    agent_samples.get(*k)
                )
            })
            .collect();
        if !differ.is_empty() {
            last = differ.join("\n");
            continue;
        }
        let sent = agent_samples[&format!("node_network_transmit_packets_total{{{a_if}}}")];
        assert!(sent >= 50.0, "the test's datagrams are counted: {sent}");
        let (ne_meta, agent_meta) = (metadata(&ne), metadata(&agent));
        for name in FAMILIES {
            assert_eq!(
                agent_meta.get(name),
                ne_meta.get(name),
                "HELP and TYPE of {name}"
            );
        }
        println!(
            "{} series equal to node_exporter's, {} families",
            common.len(),
            FAMILIES.len()
        );
        if have(test, "promtool", "prometheus") {
            let said = promtool_check(&agent);
            assert!(said.is_empty(), "promtool check metrics: {said}\n{agent}");
        }
        return;
    }
    panic!("the agent's series differ from node_exporter's five times:\n{last}");
}

fn spawn_agent_in(pair: &VethPair, config: &std::path::Path) -> crate::util::AgentProcess {
    let mut cmd = pair.a.command(env!("CARGO_BIN_EXE_hopwatch"));
    cmd.args(["run", "-c"]).arg(config);
    crate::util::AgentProcess::spawn(cmd)
}
