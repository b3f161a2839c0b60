//! The HTTP API over real TCP: bearer tokens, the rate limit, parameter
//! errors, and the answers to the fleet questions after a fake agent's
//! events.

use crate::util::{store_text, 
    AGENT_TOKEN, API_TOKEN, FakeAgent, Server, TempDir, alert, event, free_port, heartbeat,
    http_get, link, metric, now_ms,
};
use std::time::Duration;

#[test]
fn the_api_wants_a_bearer_token_and_scrapers_do_not() {
    let server = Server::start("auth", "", "");
    let none = http_get(server.http, "/api/v1/agents", None);
    assert_eq!(none.status, 401);
    assert_eq!(
        none.headers.get("www-authenticate").map(String::as_str),
        Some("Bearer")
    );
    assert!(
        none.json()["error"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );
    let wrong = http_get(server.http, "/api/v1/agents", Some("api-secret-012345678X"));
    assert_eq!(wrong.status, 401);
    let agent_token = http_get(server.http, "/api/v1/links/downtime", Some(AGENT_TOKEN));
    assert_eq!(agent_token.status, 401, "an agent token is no API token");
    assert_eq!(
        http_get(server.http, "/api/v1/agents", Some(API_TOKEN)).status,
        200
    );
    assert_eq!(http_get(server.http, "/healthz", None).body, "ok\n");
    let metrics = http_get(server.http, "/metrics", None);
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metric(
            &metrics.body,
            "hopwatch_collector_api_requests_total{outcome=\"unauthorized\"}"
        ),
        3.0
    );
    assert_eq!(
        http_get(server.http, "/api/v2/nothing", Some(API_TOKEN)).status,
        404
    );
}

#[test]
fn over_the_rate_is_429_with_retry_after() {
    let server = Server::start("rate", "", "[rate_limit]\nper_second = 0.5\nburst = 3\n");
    for _ in 0..3 {
        assert_eq!(server.get("/api/v1/agents").status, 200);
    }
    let limited = server.get("/api/v1/agents");
    assert_eq!(limited.status, 429);
    let retry: u64 = limited.headers["retry-after"].parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    // Scrapers are not limited.
    assert_eq!(http_get(server.http, "/metrics", None).status, 200);
    let text = http_get(server.http, "/metrics", None).body;
    assert_eq!(
        metric(
            &text,
            "hopwatch_collector_api_requests_total{outcome=\"rate_limited\"}"
        ),
        1.0
    );
}

#[test]
fn bad_parameters_name_the_parameter_and_the_fix() {
    let server = Server::start("params", "", "");
    for (path, want) in [
        (
            "/api/v1/links/downtime?since=yesterday",
            "bad `since` value \"yesterday\"",
        ),
        ("/api/v1/links/changes?since=-5m", "bad `since`"),
        (
            "/api/v1/alerts?state=burning",
            "bad `state` value \"burning\": use firing, resolved or all",
        ),
        ("/api/v1/alerts?limit=0", "bad `limit`"),
        ("/api/v1/alerts?agnet=leaf1", "unknown parameter `agnet`"),
        ("/api/v1/links/downtime?since=1d&since=2d", "given twice"),
    ] {
        let response = server.get(path);
        assert_eq!(response.status, 400, "{path}");
        let error = response.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(want), "{path}: {error}");
    }
}

#[test]
fn a_shutdown_is_admin_down_over_the_api_and_no_outage() {
    let server = Server::start("admin-down", "", "");
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let t = now_ms();
    let s = |seconds_ago: i64| t - seconds_ago * 1000;
    let because = |body, admin: &str, reason: &str| {
        let mut body = body;
        if let hopwatch_wire::event::Body::Link(l) = &mut body {
            l.admin = serde_json::from_value(serde_json::json!(admin)).unwrap();
            l.reason = Some(reason.into());
        }
        body
    };
    let events = vec![
        event(
            "leaf1",
            "b1",
            1,
            s(30),
            heartbeat(&[("Eth1-7", true), ("Eth1-8", true)]),
        ),
        // Eth1-7 shut 20 s ago and still shut; Eth1-8 failed for 10 s.
        event(
            "leaf1",
            "b1",
            2,
            s(20),
            because(link("Eth1-7", false), "down", "administratively down"),
        ),
        event(
            "leaf1",
            "b1",
            3,
            s(20),
            because(link("Eth1-8", false), "up", "link-failure"),
        ),
        event("leaf1", "b1", 4, s(10), link("Eth1-8", true)),
        event(
            "leaf1",
            "b1",
            5,
            s(1),
            heartbeat(&[("Eth1-7", false), ("Eth1-8", true)]),
        ),
    ];
    agent.send(&events).unwrap();
    assert!(agent.wait_acked("b1", 5, Duration::from_secs(10)));

    let downtime = server.get_json("/api/v1/links/downtime?since=30d");
    let of = |name: &str| {
        downtime["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["interface"] == name)
            .unwrap_or_else(|| panic!("no {name} in {downtime}"))
            .clone()
    };
    let shut = of("Eth1-7");
    assert_eq!(shut["state"], "admin_down", "{shut}");
    assert_eq!(shut["down_seconds"], 0.0, "{shut}");
    assert_eq!(shut["down_count"], 0, "{shut}");
    assert_eq!(shut["currently_down"], false, "{shut}");
    assert!(
        shut["admin_down_seconds"].as_f64().unwrap() >= 19.0,
        "{shut}"
    );
    assert_eq!(shut["availability"], 1.0, "{shut}");
    let failed = of("Eth1-8");
    assert_eq!(failed["state"], "up");
    assert_eq!(failed["down_seconds"], 10.0);
    assert_eq!(failed["down_count"], 1);
    assert_eq!(failed["admin_down_seconds"], 0.0);
    assert_eq!(downtime["total_down_seconds"], 10.0);

    let changes = server.get_json("/api/v1/links/changes?since=10m");
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
    assert_eq!(
        went,
        [
            ("Eth1-7".to_string(), "admin_down".to_string()),
            ("Eth1-8".to_string(), "down".to_string())
        ]
    );
}

#[test]
fn answers_the_fleet_questions() {
    let server = Server::start("answers", "", "");
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let t = now_ms();
    let s = |seconds_ago: i64| t - seconds_ago * 1000;
    let events = vec![
        event(
            "leaf1",
            "b1",
            1,
            s(20),
            heartbeat(&[("swp1", true), ("swp2", true)]),
        ),
        event("leaf1", "b1", 2, s(10), link("swp1", false)),
        event("leaf1", "b1", 3, s(7), link("swp1", true)),
        event("leaf1", "b1", 4, s(6), alert("swp1", true)),
        event("leaf1", "b1", 5, s(5), alert("swp1", false)),
        event("leaf1", "b1", 6, s(4), alert("swp2", true)),
        event(
            "leaf1",
            "b1",
            7,
            s(1),
            heartbeat(&[("swp1", true), ("swp2", true)]),
        ),
    ];
    agent.send(&events).unwrap();
    assert!(agent.wait_acked("b1", 7, Duration::from_secs(10)));

    let agents = server.get_json("/api/v1/agents");
    assert_eq!(agents[0]["agent"], "leaf1");
    assert_eq!(agents[0]["state"], "online");
    assert_eq!(agents[0]["firing"], 1);
    assert_eq!(agents[0]["address"], "127.0.0.1");
    assert_eq!(agents[0]["version"], "0.1.0-test");
    assert_eq!(agents[0]["boot"], "b1");

    let firing = server.get_json("/api/v1/alerts");
    assert_eq!(firing.as_array().unwrap().len(), 1);
    assert_eq!(firing[0]["interface"], "swp2");
    assert_eq!(firing[0]["state"], "firing");
    assert_eq!(firing[0]["rule"], "tx-errors");
    assert_eq!(firing[0]["severity"], "critical");
    assert_eq!(firing[0]["value"], 7.0);
    assert!(firing[0]["resolved_at"].is_null());
    let resolved = server.get_json("/api/v1/alerts?state=resolved&since=10m");
    assert_eq!(resolved.as_array().unwrap().len(), 1);
    assert_eq!(resolved[0]["interface"], "swp1");
    assert!(resolved[0]["fired_at"].is_string() && resolved[0]["resolved_at"].is_string());
    assert_eq!(
        server
            .get_json("/api/v1/alerts?state=all")
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        server
            .get_json("/api/v1/alerts?state=all&interface=swp1&rule=tx-errors&agent=leaf1")
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        server
            .get_json("/api/v1/alerts?agent=leaf9")
            .as_array()
            .unwrap()
            .is_empty()
    );

    let changes = server.get_json("/api/v1/links/changes?since=10m");
    assert_eq!(changes["went_down"].as_array().unwrap().len(), 1);
    assert_eq!(changes["went_down"][0]["interface"], "swp1");
    assert_eq!(changes["came_up"][0]["down_seconds"], 3.0);
    assert!(
        server.get_json("/api/v1/links/changes?since=5s")["went_down"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let downtime = server.get_json("/api/v1/links/downtime?since=30d");
    let swp1 = &downtime["interfaces"][0];
    assert_eq!(swp1["interface"], "swp1");
    assert_eq!(swp1["down_seconds"], 3.0);
    assert_eq!(swp1["down_count"], 1);
    assert_eq!(swp1["currently_down"], false);
    assert_eq!(swp1["unknown_seconds"], 0.0);
    assert_eq!(downtime["interfaces"][1]["down_seconds"], 0.0);
    assert_eq!(downtime["total_down_seconds"], 3.0);
    // A window that starts inside the outage counts only its part.
    let since = humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + Duration::from_millis(s(8) as u64),
    );
    let part = server.get_json(&format!(
        "/api/v1/links/downtime?since={since}&interface=swp1"
    ));
    assert_eq!(part["interfaces"].as_array().unwrap().len(), 1);
    assert_eq!(part["interfaces"][0]["down_seconds"], 1.0);
}

/// A service's stdout is a log: the first start's generated tokens are
/// shown only on a terminal; elsewhere the banner names their files.
#[test]
fn first_start_keeps_generated_tokens_out_of_a_stdout_that_is_not_a_terminal() {
    use std::process::{Command, Stdio};
    let dir = TempDir::new("banner");
    let (agents, http) = (free_port(), free_port());
    let config = dir.path.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\ndata_dir = {:?}\nagents_listen = \"127.0.0.1:{agents}\"\nhttp_listen = \"127.0.0.1:{http}\"\n{}",
            dir.path.display().to_string(),
            store_text(&dir.path)
        ),
    )
    .unwrap();
    let stdout = dir.path.join("stdout.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
        .args(["run", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let api_file = dir.path.join("api-token");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let shown = loop {
        let text = std::fs::read_to_string(&stdout).unwrap();
        if text.contains("/metrics") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let api = std::fs::read_to_string(&api_file).unwrap();
    let agent = std::fs::read_to_string(dir.path.join("agent-token")).unwrap();
    assert!(
        shown.contains("not a terminal") && shown.contains(&api_file.display().to_string()),
        "{shown}"
    );
    for token in [api.trim(), agent.trim()] {
        assert!(token.len() >= 16 && !shown.contains(token), "{shown}");
    }
}
