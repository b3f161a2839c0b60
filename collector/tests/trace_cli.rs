//! `hopwatch-collector trace` as a person runs it: the real binary asking a
//! real collector (itself the real binary) over its HTTP API, with the API
//! token found where the collector keeps it; usage errors and the exit
//! codes.

use crate::trace_fakes::{
    RouteEntry, fake_fabric, leaf1_history, leaf1_history_with, line_fabric, wait_owned,
};
use crate::util::{store_text, API_TOKEN, Process, Server, TempDir, free_port};
use std::path::Path;
use std::process::{Command, Output};

fn trace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
        .arg("trace")
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A collector whose config names no API token, so it generates one in its
/// data_dir, where the CLI must find it.
fn collector_with_generated_token(dir: &Path) -> (Process, String) {
    let (agents, http) = (free_port(), free_port());
    let config = dir.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\ndata_dir = {:?}\nagents_listen = \"127.0.0.1:{agents}\"\nhttp_listen = \"127.0.0.1:{http}\"\n{}",
            dir.display().to_string(),
            store_text(dir)
        ),
    )
    .unwrap();
    let process = Process::spawn(&config, agents, http);
    (process, config.display().to_string())
}

#[test]
fn bad_usage_exits_2_before_asking_anyone() {
    for (args, words) in [
        (&["--dst", "10.2.0.10"][..], "--src"),
        (
            &["--src", "10.1.0.10", "--dst", "nowhere"][..],
            "invalid IP address",
        ),
        (
            &["--src", "10.1.0.10", "--dst", "10.2.0.10", "--proto", "tpc"][..],
            "not a protocol",
        ),
        (
            &[
                "--src",
                "10.1.0.10",
                "--dst",
                "10.2.0.10",
                "--sport-range",
                "1-9",
            ][..],
            "--all-paths",
        ),
        (
            &[
                "--src",
                "10.1.0.10",
                "--dst",
                "10.2.0.10",
                "--all-paths",
                "--reverse",
            ][..],
            "cannot be used with",
        ),
    ] {
        let output = trace(args);
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
}

#[test]
fn the_cli_asks_the_running_collector_with_the_token_it_keeps() {
    let dir = TempDir::new("trace-cli");
    let (_collector, config) = collector_with_generated_token(&dir.path);
    assert!(dir.path.join("api-token").exists());
    // The collector read the body with the token the CLI found: the
    // answers name the flag at fault, exit 2.
    let output = trace(&[
        "-c",
        &config,
        "--src",
        "10.1.0.10",
        "--dst",
        "10.2.0.10",
        "--from",
        "nosuchleaf",
    ]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("--from: no agent named \"nosuchleaf\""),
        "{stderr}"
    );
    let output = trace(&["-c", &config, "--src", "10.1.0.10", "--dst", "10.2.0.10"]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--src: no agent owns 10.1.0.10"),
        "{stderr}"
    );
    let output = trace(&[
        "-c",
        &config,
        "--src",
        "10.1.0.10",
        "--dst",
        "10.2.0.10",
        "--all-paths",
        "--proto",
        "udp",
        "--sport-range",
        "1-9999",
    ]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--sport-range: "), "{stderr}");
}

#[test]
fn no_collector_or_a_wrong_token_exits_1_saying_why() {
    let dir = TempDir::new("trace-cli-down");
    let port = free_port();
    let config = dir.path.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\ndata_dir = {:?}\nhttp_listen = \"127.0.0.1:{port}\"\n[auth]\napi_tokens = [\"api-secret-for-nobody-0001\"]\n",
            dir.path.display().to_string()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let args = [
        "-c",
        config.as_str(),
        "--src",
        "10.1.0.10",
        "--dst",
        "10.2.0.10",
    ];
    let output = trace(&args);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot reach the collector's API at 127.0.0.1:{port}"
        )),
        "{stderr}"
    );

    // A collector on that port that keeps another token: 401, exit 1.
    let served = TempDir::new("trace-cli-other");
    let (_collector, other) = collector_with_generated_token(&served.path);
    let other_port = std::fs::read_to_string(&other)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("http_listen = \"127.0.0.1:"))
        .map(|p| p.trim_end_matches('"').to_string())
        .unwrap();
    let wrong = dir.path.join("wrong.toml");
    std::fs::write(
        &wrong,
        format!(
            "[collector]\ndata_dir = {:?}\nhttp_listen = \"127.0.0.1:{other_port}\"\n[auth]\napi_tokens = [\"api-secret-for-nobody-0001\"]\n",
            dir.path.display().to_string()
        ),
    )
    .unwrap();
    let output = trace(&[
        "-c",
        wrong.to_str().unwrap(),
        "--src",
        "10.1.0.10",
        "--dst",
        "10.2.0.10",
    ]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("answered 401"), "{stderr}");
    assert!(
        !stderr.contains("api-secret-for-nobody"),
        "no token in the output: {stderr}"
    );

    // No token anywhere: says where it looked and what to do.
    let empty = TempDir::new("trace-cli-notoken");
    let none = empty.path.join("none.toml");
    std::fs::write(
        &none,
        format!(
            "[collector]\ndata_dir = {:?}\nhttp_listen = \"127.0.0.1:{other_port}\"\n",
            empty.path.display().to_string()
        ),
    )
    .unwrap();
    let output = trace(&[
        "-c",
        none.to_str().unwrap(),
        "--src",
        "10.1.0.10",
        "--dst",
        "10.2.0.10",
    ]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("api-token") && stderr.contains("collector's user"),
        "{stderr}"
    );
}

/// A config for the CLI that points at an in-process collector.
fn cli_config(server: &Server) -> String {
    let path = server.dir.path.join("cli.toml");
    std::fs::write(
        &path,
        format!(
            "[collector]\ndata_dir = {:?}\nhttp_listen = \"{}\"\n[auth]\napi_tokens = [{API_TOKEN:?}]\n",
            server.dir.path.display().to_string(),
            server.http
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn the_cli_prints_each_hop_with_what_the_collector_knows() {
    let server = Server::start("trace-cli-e2e", "heartbeat_timeout = \"1h\"", "");
    let mut fabric = line_fabric(server.agents);
    wait_owned(&server, 3);
    leaf1_history(&mut fabric[0]);
    let config = cli_config(&server);
    let flow = [
        "-c",
        &config,
        "--src",
        "10.1.0.10",
        "--dst",
        "10.2.0.10",
        "--proto",
        "tcp",
        "--sport",
        "40000",
        "--dport",
        "443",
    ];
    let output = trace(&flow);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    for want in [
        "FLOW OVERVIEW:\n\nSRC: 10.1.0.10\nDEST: 10.2.0.10\nPROTO: 6 (tcp)\nSRC_PORT: 40000\nDEST_PORT: 443\n",
        "CONNECTED TO: leaf1 (kernel backend)\nHOP NUMBER: 1\nIN_IF: Eth1-9\n",
        "CONNECTED TO: spine1 (kernel backend)\nHOP NUMBER: 2\nIN_IF: Eth1-1\n",
        "LOAD_SHARE_MODE: L4: source and destination address, protocol and ports (net.ipv4.fib_multipath_hash_policy = 1)\n",
        "OUT_IF: Eth1-2\nDEST: 10.2.0.10\nNEXT_HOP: 10.0.2.0\n",
        "    235246 output packets  24675632 bytes\n",
        "  FIRING: tx-errors (critical) since ",
        "  CHANGES (last 10m): down ",
        "  DOWN (last 24h): 30.0s",
        "NEXT_HOP: directly connected (10.2.0.10 on the subnet of Eth1-9)",
        "OUTCOME: delivered: leaf2 hands it to the host on its connected subnet on Eth1-9\nSWITCHES: leaf1 -> spine1 -> leaf2\n",
        "Elapsed Time for Hop: ",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in\n{stdout}");
    }
    if let Ok(path) = std::env::var("HOPWATCH_TRACE_EXAMPLE") {
        std::fs::write(path, &stdout).unwrap();
    }

    let mut json_args = flow.to_vec();
    json_args.push("--json");
    let output = trace(&json_args);
    assert_eq!(output.status.code(), Some(0));
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["hops"].as_array().unwrap().len(), 3, "{answer}");
    assert_eq!(answer["hops"][0]["known"]["firing"][0]["rule"], "tx-errors");

    let mut reverse = flow.to_vec();
    reverse.push("--reverse");
    let output = trace(&reverse);
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("RETURN FLOW:"), "{stdout}");
    assert!(
        stdout.contains("SWITCHES: leaf2 -> spine1 -> leaf1"),
        "{stdout}"
    );
    assert!(stdout.contains("SYMMETRY: symmetric"), "{stdout}");

    let mut all = flow.to_vec();
    all.push("--all-paths");
    let output = trace(&all);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    let header = stdout
        .lines()
        .find(|l| l.starts_with("HOP:"))
        .expect(&stdout);
    assert_eq!(
        header,
        "HOP:       | 1            | 2             | 3            | RESULT"
    );
    assert!(
        stdout.contains("Path 1     | leaf1 Eth1-1 | spine1 Eth1-2 | leaf2 Eth1-9 | delivered")
            || stdout
                .contains("Path 1     | leaf1 Eth1-1 | spine1 Eth1-2 | leaf2 Eth1-9 | delivered"),
        "{stdout}"
    );
    assert!(
        stdout.contains("COLLECTOR:\n  leaf1 Ethernet1/1: firing tx-errors (critical)"),
        "{stdout}"
    );

    // Dropped on the way: said, and exit 1.
    let output = trace(&["-c", &config, "--src", "10.1.0.10", "--dst", "10.3.0.10"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("DROP: blackhole\n  WHY: a blackhole route 10.3.0.0/24 covers 10.3.0.10"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OUTCOME: dropped by spine1 (blackhole)"),
        "{stdout}"
    );
}

#[test]
fn all_paths_sit_side_by_side_with_the_one_a_spine_drops() {
    let server = Server::start("trace-cli-paths", "heartbeat_timeout = \"1h\"", "");
    let leaf1 = vec![
        ("Eth1-9", "10.1.0.1/24"),
        ("Eth1-1", "10.0.1.0/31"),
        ("Eth1-2", "10.0.3.0/31"),
    ];
    let route = |egress, next_hop, also| RouteEntry {
        prefix: "10.2.0.0/24",
        egress,
        next_hop,
        also,
    };
    let mut fabric = fake_fabric(
        server.agents,
        vec![
            (
                "leaf1",
                leaf1.clone(),
                vec![route(
                    "Eth1-1",
                    Some("10.0.1.1"),
                    Some(("Eth1-2", "10.0.3.1")),
                )],
            ),
            (
                "spine1",
                vec![("Eth1-1", "10.0.1.1/31"), ("Eth1-2", "10.0.2.1/31")],
                vec![route("Eth1-2", Some("10.0.2.0"), None)],
            ),
            (
                "spine2",
                vec![("Eth1-1", "10.0.3.1/31"), ("Eth1-2", "10.0.4.1/31")],
                vec![route("", None, None)],
            ),
            (
                "leaf2",
                vec![
                    ("Eth1-1", "10.0.2.0/31"),
                    ("Eth1-2", "10.0.4.0/31"),
                    ("Eth1-9", "10.2.0.1/24"),
                ],
                vec![route("Eth1-9", None, None)],
            ),
        ],
    );
    wait_owned(&server, 4);
    leaf1_history_with(&mut fabric[0], &leaf1);
    let config = cli_config(&server);
    let output = trace(&[
        "-c",
        &config,
        "--all-paths",
        "--src",
        "10.1.0.10",
        "--dst",
        "10.2.0.10",
        "--proto",
        "tcp",
        "--sport",
        "40000",
        "--dport",
        "443",
    ]);
    let (stdout, stderr) = text(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "not every path delivers: {stdout}{stderr}"
    );
    for want in [
        "HOP:       | 1            | 2             | 3            | RESULT\n",
        "Path 1     | leaf1 Eth1-1 | spine1 Eth1-2 | leaf2 Eth1-9 | delivered\n",
        "Path 2     | leaf1 Eth1-2 | spine2        |              | dropped\n",
        "Path 2: dropped by spine2 (blackhole): ",
        "  leaf1 Ethernet1/1: firing tx-errors (critical)",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in\n{stdout}");
    }

    // A source-port range spread over the two paths: half each.
    let output = trace(&[
        "-c",
        &config,
        "--all-paths",
        "--src",
        "10.1.0.10",
        "--dst",
        "10.2.0.10",
        "--proto",
        "tcp",
        "--sport",
        "40000",
        "--dport",
        "443",
        "--sport-range",
        "40000-40999",
    ]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    for want in [
        "HOP:       | 1            | 2             | 3            | RESULT     | FLOWS\n",
        "Path 1     | leaf1 Eth1-1 | spine1 Eth1-2 | leaf2 Eth1-9 | delivered  | 500\n",
        "Path 2     | leaf1 Eth1-2 | spine2        |              | dropped    | 500\n",
        "FLOWS: 1000 source ports 40000-40999\n",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in\n{stdout}");
    }
    if let Ok(path) = std::env::var("HOPWATCH_TRACE_EXAMPLE") {
        std::fs::write(format!("{path}.paths"), &stdout).unwrap();
    }
}
