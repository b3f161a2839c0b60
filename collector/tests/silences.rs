//! The collector's silences end to end: made, listed and removed through the
//! real HTTP API and the real `hopwatch-collector silence` binary, kept in
//! the real store across a restart, pushed over real sockets to fake agents
//! of protocol 3 (and not to those of protocol 2), and the alerts they
//! cover shown marked, with their rule's labels.

use crate::util::{store_text, 
    AGENT_TOKEN, API_TOKEN, FakeAgent, Process, Server, TempDir, alert, dechunk, event, free_port,
    hello, now_ms, wait_for,
};
use hopwatch_collector::auth::{Secret, token_tag};
use hopwatch_wire::event::Body;
use hopwatch_wire::wire::Hello;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::Duration;

// Across collectors sharing one PostgreSQL store.
mod shared;

/// An HTTP answer: status, `Set-Cookie` if any, and the body.
struct Answer {
    status: u16,
    cookie: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request with `Connection: close`.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let cookie = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("set-cookie")
            .then(|| v.trim().split(';').next().unwrap_or_default().to_string())
    });
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Answer {
        status,
        cookie,
        body,
    }
}

const BEARER: &str = "Bearer api-secret-0123456789";

fn post(addr: SocketAddr, body: &Value) -> Answer {
    request(
        addr,
        "POST",
        "/api/v1/silences",
        &[
            ("Authorization", BEARER),
            ("Content-Type", "application/json"),
        ],
        &body.to_string(),
    )
}

fn list(addr: SocketAddr, query: &str) -> Vec<Value> {
    let answer = request(
        addr,
        "GET",
        &format!("/api/v1/silences{query}"),
        &[("Authorization", BEARER)],
        "",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json().as_array().unwrap().clone()
}

fn delete(addr: SocketAddr, id: &str) -> Answer {
    request(
        addr,
        "DELETE",
        &format!("/api/v1/silences/{id}"),
        &[("Authorization", BEARER)],
        "",
    )
}

/// Adds a silence through the API; its id.
fn add(addr: SocketAddr, body: Value) -> String {
    let answer = post(addr, &body);
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()["id"].as_str().unwrap().to_string()
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn silences_are_added_listed_and_removed_through_the_api_and_kept_across_a_restart() {
    let server = Server::start("silences-api", "", "");
    let addr = server.http;
    let before = now_ms();
    let answer = post(
        addr,
        &json!({"agent": "leaf*", "interface": "Eth1-*", "rule": "tx-*", "for": "2h", "reason": "optics swap"}),
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    let made = answer.json();
    let id = made["id"].as_str().unwrap().to_string();
    assert!(
        id.len() == 18 && id.starts_with("c-"),
        "an id of c- and 16 hex digits: {id}"
    );
    // An unnamed token signs with its tag, never with itself.
    let tag = token_tag(&Secret::new(API_TOKEN));
    assert!(tag.starts_with("token-") && tag.len() == 14, "{tag}");
    assert_eq!(made["author"], tag.as_str());
    assert!(!answer.body.contains(API_TOKEN));
    assert_eq!(made["state"], "active");
    assert_eq!(made["agent"], "leaf*");
    assert_eq!(made["rule"], "tx-*");
    assert_eq!(made["reason"], "optics swap");
    let starts = humantime::parse_rfc3339(made["starts_at"].as_str().unwrap()).unwrap();
    let ends = humantime::parse_rfc3339(made["ends_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        ends.duration_since(starts).unwrap(),
        Duration::from_secs(7200)
    );
    let starts_ms = hopwatch_collector::store::millis(starts);
    assert!(starts_ms >= before && starts_ms <= now_ms());

    let later = add(
        addr,
        json!({"interface": "*", "starts_at": humantime::format_rfc3339(std::time::SystemTime::now() + Duration::from_secs(3600)).to_string(), "for": "1h", "reason": "window"}),
    );
    let listed = list(addr, "");
    assert_eq!(ids(&listed), [id.clone(), later.clone()]);
    assert_eq!(listed[1]["state"], "pending");

    // Removed: gone from the list, listed as ended with ?all=1.
    let answer = delete(addr, &id);
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_eq!(ids(&list(addr, "")), vec![later.clone()]);
    let all = list(addr, "?all=1");
    assert_eq!(ids(&all), [later.clone(), id.clone()]);
    assert_eq!(all[1]["state"], "ended");
    assert_eq!(all[1]["removed_by"], tag.as_str());
    assert!(all[1]["removed_at"].is_string());

    for (path_id, status, words) in [
        (id.as_str(), 404, "already ended"),
        ("c-ffffffffffffffff", 404, "no silence c-ffffffffffffffff"),
        ("l-0123456789abcdef", 400, "hopwatch silence remove"),
        ("nonsense", 400, "not a silence id"),
    ] {
        let answer = delete(addr, path_id);
        assert_eq!(answer.status, status, "{path_id}: {}", answer.body);
        assert!(answer.body.contains(words), "{path_id}: {}", answer.body);
    }
    let answer = request(
        addr,
        "GET",
        "/api/v1/silences?all=maybe",
        &[("Authorization", BEARER)],
        "",
    );
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["field"], "all");

    // The store keeps them: a restarted collector lists the same.
    let dir = server.stop();
    let server = Server::start_in(dir, "127.0.0.1:0", "", "");
    assert_eq!(ids(&list(server.http, "")), vec![later.clone()]);
    assert_eq!(ids(&list(server.http, "?all=1")), [later, id]);
}

#[test]
fn bad_silences_are_refused_with_a_400_naming_the_field() {
    let server = Server::start("silences-bad", "", "[silences]\nmax_duration = \"1d\"\n");
    let addr = server.http;
    for (body, field, words) in [
        (
            json!({"interface": "Eth1-*", "reason": "r"}),
            "ends_at",
            "every silence ends",
        ),
        (
            json!({"interface": "Eth1-*", "ends_at": "2020-01-01T00:00:00Z", "reason": "r"}),
            "ends_at",
            "not in the future",
        ),
        (
            json!({"interface": "Eth1-*", "for": "2d", "reason": "r"}),
            "for",
            "max_duration",
        ),
        (
            json!({"interface": "Eth1-[", "for": "1h", "reason": "r"}),
            "interface",
            "bad glob",
        ),
        (
            json!({"interface": "*", "agent": "leaf[", "for": "1h", "reason": "r"}),
            "agent",
            "bad glob",
        ),
        (
            json!({"interface": "*", "for": "1h"}),
            "reason",
            "`reason` is required",
        ),
        (
            json!({"for": "1h", "reason": "r"}),
            "interface",
            "`interface` is required",
        ),
        (
            json!({"interface": "*", "for": "1h", "reason": "r", "author": "mallory"}),
            "author",
            "unknown field",
        ),
    ] {
        let answer = post(addr, &body);
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        let error = answer.json();
        assert_eq!(error["field"], field, "{body}: {}", answer.body);
        assert!(
            error["error"].as_str().unwrap().contains(words),
            "{body}: {}",
            answer.body
        );
    }
    let answer = request(
        addr,
        "POST",
        "/api/v1/silences",
        &[("Authorization", BEARER)],
        "not json",
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("not JSON"), "{}", answer.body);
    assert!(list(addr, "?all=1").is_empty(), "nothing was made");
}

#[test]
fn silences_need_an_api_token_and_a_session_needs_the_csrf_header_to_change_them() {
    let server = Server::start("silences-auth", "", "");
    let addr = server.http;
    let body = json!({"interface": "*", "for": "1h", "reason": "r"}).to_string();
    for (method, path) in [
        ("GET", "/api/v1/silences"),
        ("POST", "/api/v1/silences"),
        ("DELETE", "/api/v1/silences/c-0123456789abcdef"),
    ] {
        let answer = request(addr, method, path, &[], &body);
        assert_eq!(answer.status, 401, "{method} {path}: {}", answer.body);
        let answer = request(
            addr,
            method,
            path,
            &[("Authorization", "Bearer not-the-api-token-0000")],
            &body,
        );
        assert_eq!(answer.status, 401, "{method} {path}: {}", answer.body);
    }
    // The web page's session acts as its token; a change needs the header
    // a cross-site form cannot send.
    let signed = request(
        addr,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        &json!({ "token": API_TOKEN }).to_string(),
    );
    let cookie = signed.cookie.expect("a session cookie");
    let answer = request(
        addr,
        "POST",
        "/api/v1/silences",
        &[("Cookie", &cookie), ("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(answer.status, 403, "{}", answer.body);
    let answer = request(
        addr,
        "POST",
        "/api/v1/silences",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/json"),
            ("X-Hopwatch-Csrf", "1"),
        ],
        &body,
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(
        answer.json()["author"],
        token_tag(&Secret::new(API_TOKEN)).as_str()
    );
    let id = answer.json()["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/silences/{id}");
    let answer = request(addr, "DELETE", &path, &[("Cookie", &cookie)], "");
    assert_eq!(answer.status, 403, "{}", answer.body);
    let answer = request(
        addr,
        "DELETE",
        &path,
        &[("Cookie", &cookie), ("X-Hopwatch-Csrf", "1")],
        "",
    );
    assert_eq!(answer.status, 204, "{}", answer.body);
}

/// The ids of each `silences` line `agent` received, in order.
fn pushed(agent: &FakeAgent) -> Vec<Vec<String>> {
    agent
        .acked
        .0
        .lock()
        .unwrap()
        .lines
        .iter()
        .filter(|l| l["type"] == "silences")
        .map(|l| {
            l["silences"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// Waits until `agent` has received `n` `silences` lines; all of them.
fn wait_pushed(agent: &FakeAgent, n: usize) -> Vec<Vec<String>> {
    wait_for(Duration::from_secs(10), || {
        let lines = pushed(agent);
        (lines.len() >= n).then_some(lines)
    })
    .unwrap_or_else(|| panic!("{} got {:?}, not {n} lines", agent.name, pushed(agent)))
}

fn connect(server: &Server, name: &str, protocol: u32) -> FakeAgent {
    let hello = Hello {
        protocol,
        ..hello(AGENT_TOKEN, name, "b1", &["b1"])
    };
    FakeAgent::connect_hello(server.agents, hello).unwrap().0
}

#[test]
fn agents_of_protocol_3_are_sent_their_silences_after_welcome_and_on_each_change() {
    let server = Server::start("silences-push", "", "");
    let addr = server.http;
    let a = add(
        addr,
        json!({"agent": "leaf*", "interface": "Eth1-*", "for": "1h", "reason": "a"}),
    );
    let leaf = connect(&server, "leaf1", 3);
    let spine = connect(&server, "spine1", 3);
    let old = connect(&server, "leaf2", 2);
    // Right after the welcome, the whole set: empty for the spine, which
    // so forgets any set an earlier connection gave it.
    assert_eq!(wait_pushed(&leaf, 1), [vec![a.clone()]]);
    assert_eq!(wait_pushed(&spine, 1), [Vec::<String>::new()]);
    let first = leaf.acked.0.lock().unwrap().lines[0].clone();
    assert_eq!(first["type"], "silences", "the first line after welcome");
    let line = &first["silences"][0];
    assert_eq!(line["interface"], "Eth1-*");
    assert_eq!(line["agent"], "leaf*");
    assert_eq!(line["reason"], "a");

    // A silence for the spines reaches the spine only; one for everyone
    // reaches both, so the leaf's second line is the one with c.
    let b = add(
        addr,
        json!({"agent": "spine*", "interface": "*", "for": "1h", "reason": "b"}),
    );
    assert_eq!(wait_pushed(&spine, 2)[1], vec![b.clone()]);
    let c = add(
        addr,
        json!({"interface": "*", "rule": "flap*", "for": "1h", "reason": "c"}),
    );
    assert_eq!(wait_pushed(&leaf, 2)[1], [a.clone(), c.clone()]);
    assert_eq!(wait_pushed(&spine, 3)[2], [b.clone(), c.clone()]);

    // A removal is a change too.
    assert_eq!(delete(addr, &a).status, 204);
    assert_eq!(wait_pushed(&leaf, 3)[2], vec![c.clone()]);
    assert_eq!(delete(addr, &c).status, 204);
    assert_eq!(wait_pushed(&leaf, 4)[3], Vec::<String>::new());
    assert_eq!(wait_pushed(&spine, 4)[3], vec![b.clone()]);
    assert_eq!(pushed(&leaf).len(), 4, "nothing for the spine's silence");

    // The protocol-2 agent heard none of it, and its connection works.
    let mut old = old;
    old.send(&[event("leaf2", "b1", 1, now_ms(), alert("Eth1-1", true))])
        .unwrap();
    assert!(old.wait_acked("b1", 1, Duration::from_secs(10)));
    assert!(
        pushed(&old).is_empty(),
        "{:?}",
        old.acked.0.lock().unwrap().lines
    );
    assert!(!old.is_closed() && !leaf.is_closed());

    // A new connection of the leaf is sent the set as it is now.
    drop(leaf);
    let again = connect(&server, "leaf1", 3);
    assert_eq!(wait_pushed(&again, 1), [Vec::<String>::new()]);
    let spine2 = connect(&server, "spine2", 3);
    assert_eq!(wait_pushed(&spine2, 1), [vec![b]]);
}

#[test]
fn alerts_show_their_labels_and_the_silence_that_covered_them() {
    let server = Server::start("silences-alerts", "", "");
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let t = now_ms() - 60_000;
    let with = |firing: bool, silence: Option<&str>| {
        let Body::Alert(mut a) = alert("Eth1-1", firing) else {
            unreachable!()
        };
        a.labels = [("team".to_string(), "dc-ops".to_string())].into();
        a.silenced = silence.is_some();
        a.silence = silence.map(str::to_string);
        Body::Alert(a)
    };
    agent
        .send(&[
            event("leaf1", "b1", 1, t, with(true, Some("c-0123456789abcdef"))),
            event("leaf1", "b1", 2, t, alert("Eth1-2", true)),
        ])
        .unwrap();
    assert!(agent.wait_acked("b1", 2, Duration::from_secs(10)));
    let firing = |server: &Server| server.get_json("/api/v1/alerts?state=firing");
    let list = firing(&server);
    let by = |list: &Value, interface: &str| -> Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|a| a["interface"] == interface)
            .cloned()
            .unwrap_or_else(|| panic!("no {interface} in {list}"))
    };
    let silenced = by(&list, "Eth1-1");
    assert_eq!(silenced["labels"], json!({"team": "dc-ops"}));
    assert_eq!(silenced["silenced"], true);
    assert_eq!(silenced["silence"], "c-0123456789abcdef");
    // An alert with neither answers as before: no new keys.
    let plain = by(&list, "Eth1-2");
    for key in ["labels", "silenced", "silence"] {
        assert!(plain.get(key).is_none(), "{key} in {plain}");
    }

    // The silence ended with the alert still firing: the agent fires it
    // again, unsilenced. Still the same firing, since the same time.
    agent
        .send(&[event("leaf1", "b1", 3, t + 30_000, with(true, None))])
        .unwrap();
    assert!(agent.wait_acked("b1", 3, Duration::from_secs(10)));
    let list = firing(&server);
    let seen = by(&list, "Eth1-1");
    assert!(seen.get("silenced").is_none(), "{seen}");
    assert_eq!(seen["fired_at"], silenced["fired_at"]);
    assert_eq!(seen["labels"], json!({"team": "dc-ops"}));
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let all = server.get_json("/api/v1/alerts?state=all&since=1h");
    assert_eq!(all.as_array().unwrap().len(), 2, "no refired row: {all}");

    // The shell's table says so too.
    agent
        .send(&[event(
            "leaf1",
            "b1",
            4,
            t + 31_000,
            with(true, Some("c-0123456789abcdef")),
        )])
        .unwrap();
    assert!(agent.wait_acked("b1", 4, Duration::from_secs(10)));
    let config = server.dir.path.join("shell.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\ndata_dir = {:?}\n{}",
            server.dir.path.display().to_string(),
            store_text(&server.dir.path)
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
        .args(["alerts", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("Eth1-1") && l.contains("firing (silenced)")),
        "{table}"
    );
}

fn silence(config: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
        .args(["silence", "-c", config])
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

#[test]
fn the_silence_command_adds_lists_and_removes_through_the_running_collector() {
    let dir = TempDir::new("silences-cli");
    let token = "alice-secret-0123456789abcdef";
    let token_file = dir.path.join("alice.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (agents, http) = (free_port(), free_port());
    let config = dir.path.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\ndata_dir = {:?}\nagents_listen = \"127.0.0.1:{agents}\"\nhttp_listen = \"127.0.0.1:{http}\"\n\
             [auth]\nagent_tokens = [{AGENT_TOKEN:?}]\napi_tokens = [{{ name = \"alice\", token_file = {:?} }}]\n{}",
            dir.path.display().to_string(),
            token_file.display().to_string(),
            store_text(&dir.path)
        ),
    )
    .unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(check.status.success(), "{:?}", text(&check));
    let mut collector = Process::spawn(&config, agents, http);
    let cfg = config.to_str().unwrap();
    let (mut leaf, _) = FakeAgent::connect(collector.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    assert_eq!(wait_pushed(&leaf, 1), [Vec::<String>::new()]);

    let output = silence(
        cfg,
        &[
            "add",
            "--agent",
            "leaf*",
            "--interface",
            "Eth1-*",
            "--for",
            "2h",
            "--reason",
            "optics swap",
        ],
    );
    let (out, err) = text(&output);
    assert!(output.status.success(), "{out}{err}");
    let id = out.split(':').next().unwrap().to_string();
    assert!(id.starts_with("c-") && id.len() == 18, "{out}");
    assert!(out.contains("silencing from"), "{out}");
    // The agent concerned is told at once.
    assert_eq!(wait_pushed(&leaf, 2)[1], vec![id.clone()]);

    let output = silence(cfg, &["list"]);
    let (out, err) = text(&output);
    assert!(output.status.success(), "{out}{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{out}"));
    for words in ["active", "leaf*", "Eth1-*", "alice", "optics swap"] {
        assert!(row.contains(words), "{words}: {out}");
    }
    let output = silence(cfg, &["list", "--json"]);
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed[0]["author"], "alice", "the token's name");

    for (args, code, words) in [
        (
            &["add", "--interface", "*", "--for", "30d", "--reason", "r"][..],
            2,
            "--for: the silence would last 30days",
        ),
        (
            &[
                "add",
                "--interface",
                "Eth1-[",
                "--for",
                "1h",
                "--reason",
                "r",
            ][..],
            2,
            "--interface: bad glob",
        ),
        (
            &[
                "add",
                "--interface",
                "*",
                "--until",
                "2020-01-01T00:00:00Z",
                "--reason",
                "r",
            ][..],
            2,
            "--until: `ends_at` 2020-01-01T00:00:00.000Z is not in the future",
        ),
        (
            &["add", "--interface", "*", "--reason", "r"][..],
            2,
            "--for",
        ),
        (&["remove", "c-ffffffffffffffff"][..], 1, "404: no silence"),
        (&["remove", "../agents"][..], 2, "not a silence id"),
    ] {
        let output = silence(cfg, args);
        let (out, err) = text(&output);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {out}{err}");
        assert!(err.contains(words), "{args:?}: {err}");
    }

    let output = silence(cfg, &["remove", &id]);
    let (out, err) = text(&output);
    assert!(output.status.success(), "{out}{err}");
    assert_eq!(wait_pushed(&leaf, 3)[2], Vec::<String>::new());
    let output = silence(cfg, &["remove", &id]);
    let (_, err) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("already ended"), "{err}");
    let output = silence(cfg, &["list"]);
    assert_eq!(text(&output).0, "No silences.\n");
    let output = silence(cfg, &["list", "--all"]);
    let (out, _) = text(&output);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&id) && l.contains("ended")),
        "{out}"
    );

    // The token is read from the config's file, never shown or logged.
    leaf.send(&[event("leaf1", "b1", 1, now_ms(), alert("Eth1-1", true))])
        .unwrap();
    assert!(leaf.wait_acked("b1", 1, Duration::from_secs(10)));
    collector.terminate();
    let log = std::fs::read_to_string(dir.path.join("stderr.log")).unwrap_or_default()
        + &std::fs::read_to_string(dir.path.join("hopwatch-collector.log")).unwrap_or_default();
    assert!(log.contains("Silence added."), "{log}");
    assert!(!log.contains(token), "the token is never logged");

    // No collector: a clear error, exit 1.
    let output = silence(cfg, &["list"]);
    let (_, err) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot reach the collector's API"), "{err}");
}

/// The Alerts page marks a silenced alert and shows its rule's labels, as
/// text: a label value that looks like markup makes no element.
#[test]
fn browser_alerts_mark_the_silenced_and_show_labels_as_text() {
    use crate::browser::harness::{Browser, can_use_browser};
    let test = "browser_alerts_mark_the_silenced_and_show_labels_as_text";
    if !can_use_browser(test) {
        return;
    }
    let server = Server::start("browser-silenced", "", "");
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let Body::Alert(mut silenced) = alert("Eth1-1", true) else {
        unreachable!()
    };
    silenced.labels = [
        ("team".to_string(), "dc-ops".to_string()),
        ("runbook".to_string(), "<b>wiki</b>".to_string()),
    ]
    .into();
    silenced.silenced = true;
    silenced.silence = Some("c-0123456789abcdef".into());
    let t = now_ms() - 5_000;
    agent
        .send(&[
            event("leaf1", "b1", 1, t, Body::Alert(silenced)),
            event("leaf1", "b1", 2, t, alert("Eth1-2", true)),
        ])
        .unwrap();
    assert!(agent.wait_acked("b1", 2, Duration::from_secs(5)));

    let browser = Browser::start(test);
    let base = format!("http://{}", server.http);
    browser.sign_in(&base, API_TOKEN);
    browser.goto(&format!("{base}/alerts"));
    let rows = "#alerts-table tr[data-alert][data-state=firing]";
    browser.wait_for(rows, Duration::from_secs(5));
    let shown = browser.js(
        "return [...document.querySelectorAll(arguments[0])].map(r => {
           const pill = r.querySelector('td[data-col=rule] .pill.silenced');
           const labels = r.querySelector('td[data-col=rule] .labels');
           return [r.querySelector('td[data-col=interface]').textContent,
                   pill ? pill.textContent + ' ' + pill.getAttribute('data-silence') : null,
                   labels ? labels.textContent : null];
         }).sort();",
        vec![json!(rows)],
    );
    assert_eq!(
        shown,
        json!([
            [
                "Eth1-1",
                "silenced c-0123456789abcdef",
                "runbook=<b>wiki</b> \u{b7} team=dc-ops"
            ],
            ["Eth1-2", null, null],
        ])
    );
    assert_eq!(browser.count("table b"), 0, "a label made an element");
    browser.screenshot("alerts-silenced");
    browser.finish();
}

/// A silenced firing and the unsilenced one that follows when its silence
/// ends, in one write: the second clears the first's silence even while
/// the first is not yet written (the PostgreSQL writer keeps a batch's new
/// alerts until its end).
#[test]
fn an_alert_unsilenced_in_the_batch_that_fired_it_is_seen() {
    let server = Server::start("silences-same-batch", "", "");
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let t = now_ms() - 60_000;
    let with = |silence: Option<&str>| {
        let Body::Alert(mut a) = alert("Eth1-1", true) else {
            unreachable!()
        };
        a.silenced = silence.is_some();
        a.silence = silence.map(str::to_string);
        Body::Alert(a)
    };
    agent
        .send(&[
            event("leaf1", "b1", 1, t, with(Some("c-0123456789abcdef"))),
            event("leaf1", "b1", 2, t + 30_000, with(None)),
            event("leaf1", "b1", 3, t + 31_000, alert("Eth1-2", true)),
        ])
        .unwrap();
    assert!(agent.wait_acked("b1", 3, Duration::from_secs(10)));
    let list = server.get_json("/api/v1/alerts?state=all&since=1h");
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{list}");
    for row in rows {
        assert!(row.get("silenced").is_none(), "{row}");
        assert!(row.get("silence").is_none(), "{row}");
    }
}
