//! The `dme` counter source and `auto`'s choice on NX-OS, against the
//! NX-API lookalike answering the DME counter query from fixtures written
//! from the documented shapes (`imdata` of `rmonIfHCIn` … objects, counts as
//! strings): every shape read, counters moved between requests, the real
//! agent choosing `dme` or the CLI by whether `/api/` answers, rules firing
//! on DME counters, and slow or refused answers costing only their tick.

use super::server::{Request, Server};
use super::{fixture, fixture_json};
use super::{names, row};
use super::{nxapi_config, run_agent};
use crate::util::{AgentProcess, TempDir, hopwatch};
use hopwatch::metric::Metric;
use hopwatch::source::dme::{COUNTER_QUERY, DmeSource};
use hopwatch::source::{CounterRow, CounterSource, SourceError};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NOT_FOUND: &str = "<html><head><title>404 Not Found</title></head><body>nginx</body></html>";

fn value(row: &CounterRow, metric: Metric) -> u64 {
    assert!(row.columns.supplies(metric), "{} lacks {metric}", row.name);
    row.counters[metric as usize]
}

/// Sets `attribute` (a string, as the DME writes counts) of the object
/// whose dn is `dn`.
fn set_attribute(reply: &mut Value, dn: &str, attribute: &str, to: u64) {
    for object in reply["imdata"].as_array_mut().unwrap() {
        for (_, body) in object.as_object_mut().unwrap().iter_mut() {
            if body["attributes"]["dn"] == dn {
                body["attributes"][attribute] = Value::String(to.to_string());
            }
        }
    }
}

#[test]
fn dme_source_reads_every_fixture_shape() {
    let dir = TempDir::new("hopwatch-dme");
    let server = Server::start(&dir, |_| (200, fixture("dme_counters_small.json")));
    let mut source = DmeSource::new(&server.path, "admin", Duration::from_secs(2));

    // Objects grouped by class, a port-channel and mgmt0 among the ports.
    let small = source.sample().unwrap();
    assert_eq!(
        names(&small),
        ["Ethernet1/1", "Ethernet1/2", "port-channel10", "mgmt0"]
    );
    let eth2 = row(&small, "Ethernet1/2");
    assert_eq!(value(eth2, Metric::RxBytes), 1041 * 512 * 2);
    assert_eq!(value(eth2, Metric::RxPackets), (1000 + 30 + 2) * 2);
    assert_eq!(value(eth2, Metric::RxMulticast), 60);
    assert_eq!(value(eth2, Metric::RxErrors), 2);
    assert_eq!(value(eth2, Metric::RxDropped), 2);
    assert_eq!(value(eth2, Metric::RxCrc), 2);
    assert_eq!(value(eth2, Metric::TxBytes), 931 * 400 * 2);
    assert_eq!(value(eth2, Metric::TxPackets), (900 + 20 + 1) * 2);
    assert_eq!(value(eth2, Metric::TxErrors), 0);
    assert_eq!(value(eth2, Metric::TxDropped), 2);
    assert_eq!(value(eth2, Metric::TxCollisions), 0);
    assert!(!eth2.columns.supplies(Metric::TxCarrier));
    assert!(eth2.link.is_none(), "links come from the kernel");
    assert!(!source.reports_links());
    assert_eq!(value(row(&small, "port-channel10"), Metric::RxCrc), 3);

    // One GET of the documented query, with the local cookie first.
    let request = &server.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", COUNTER_QUERY)
    );
    assert_eq!(request.cookie.as_deref(), Some("nxapi_auth=admin:local"));

    // 96 ports, object by object, the answer chunked this time; the session
    // cookie comes back.
    server.answer(|_| (200, fixture("dme_counters_96.json")));
    let chassis = source.sample().unwrap();
    assert_eq!(chassis.rows.len(), 96);
    assert_eq!(chassis.rows[95].name, "Ethernet2/48");
    assert_eq!(
        value(&chassis.rows[95], Metric::RxPackets),
        (1000 + 30 + 2) * 96
    );
    assert_eq!(
        server.requests()[1].cookie.as_deref(),
        Some(super::server::SESSION_COOKIE)
    );
    assert_eq!(server.requests().len(), 2, "one request a poll");

    // A port without rmonEtherStats has no CRC count; mgmt0 without the
    // 64-bit classes takes its bytes from rmonIfIn. Neither shows a zero.
    server.answer(|_| (200, fixture("dme_counters_partial.json")));
    let partial = source.sample().unwrap();
    let no_ether = row(&partial, "Ethernet1/2");
    assert!(!no_ether.columns.supplies(Metric::RxCrc));
    assert!(!no_ether.columns.supplies(Metric::TxCollisions));
    assert_eq!(value(no_ether, Metric::RxErrors), 2);
    let mgmt = row(&partial, "mgmt0");
    assert_eq!(value(mgmt, Metric::RxBytes), 1041 * 512 * 4);
    assert!(!mgmt.columns.supplies(Metric::RxCrc));
    assert!(row(&partial, "Ethernet1/1").columns.supplies(Metric::RxCrc));

    // The DME's refusal, as NX-OS sends it (HTTP 400) and inside a 200.
    server.answer(|_| (400, fixture("dme_error.json")));
    let error = source.sample().unwrap_err().to_string();
    assert!(
        error.contains("HTTP 400") && error.contains("unresolved class for rmonIfHCIn"),
        "{error}"
    );
    server.answer(|_| (200, fixture("dme_error.json")));
    let error = source.sample().unwrap_err().to_string();
    assert!(error.contains("unresolved class"), "{error}");

    // No REST API behind the socket: the error says what to use instead.
    server.answer(|_| (404, NOT_FOUND.into()));
    let error = source.sample().unwrap_err();
    assert!(matches!(error, SourceError::DmeAbsent(_)), "{error}");
    let error = error.to_string();
    assert!(
        error.contains("HTTP 404") && error.contains("source = \"nxapi\""),
        "{error}"
    );
}

#[test]
fn dme_counters_moved_between_requests_are_read_anew() {
    let dir = TempDir::new("hopwatch-dme");
    let base = fixture_json("dme_counters_96.json");
    let polls = Arc::new(Mutex::new(0u64));
    let count = Arc::clone(&polls);
    let server = Server::start(&dir, move |_| {
        let mut poll = count.lock().unwrap();
        *poll += 1;
        let mut reply = base.clone();
        let dn = "sys/intf/phys-[eth1/5]";
        set_attribute(
            &mut reply,
            &format!("{dn}/dbgIfHCIn"),
            "octets",
            1_000 * *poll,
        );
        set_attribute(&mut reply, &format!("{dn}/dbgIfOut"), "errors", 7 * *poll);
        set_attribute(
            &mut reply,
            &format!("{dn}/dbgEtherStats"),
            "cRCAlignErrors",
            11 * *poll,
        );
        (200, reply.to_string())
    });
    let mut source = DmeSource::new(&server.path, "admin", Duration::from_secs(2));
    let first = source.sample().unwrap();
    let second = source.sample().unwrap();
    let (a, b) = (row(&first, "Ethernet1/5"), row(&second, "Ethernet1/5"));
    assert_eq!(value(b, Metric::RxBytes) - value(a, Metric::RxBytes), 1_000);
    assert_eq!(value(b, Metric::TxErrors) - value(a, Metric::TxErrors), 7);
    assert_eq!(value(b, Metric::RxCrc) - value(a, Metric::RxCrc), 11);
    assert_eq!(
        row(&first, "Ethernet1/6").counters,
        row(&second, "Ethernet1/6").counters,
        "a port nobody moved stays"
    );
}

#[test]
fn dme_auto_settles_on_the_cli_after_repeated_refusals_only() {
    use hopwatch::source::nxos_auto::{NxosAuto, REFUSALS};
    let dir = TempDir::new("hopwatch-dme");
    let server = Server::start(&dir, |request: &Request| {
        if request.is_rest() {
            (400, fixture("dme_error.json"))
        } else {
            (200, fixture("show_interface_48.json"))
        }
    });
    let mut source = NxosAuto::new(&server.path, "admin", Duration::from_secs(2));
    for _ in 1..REFUSALS {
        let error = source.sample().unwrap_err();
        assert!(matches!(error, SourceError::Undecided(_)), "{error}");
        assert_eq!(source.name(), "auto");
    }
    // The last refusal settles it, and the same tick reads the CLI.
    let snapshot = source.sample().expect("the CLI answers this tick");
    assert_eq!(source.name(), "nxapi");
    assert_eq!(snapshot.rows.len(), 49);
    let kinds: Vec<bool> = server.requests().iter().map(Request::is_rest).collect();
    let (probes, cli) = kinds.split_at(REFUSALS as usize);
    assert!(probes.iter().all(|&rest| rest), "{kinds:?}");
    assert!(
        !cli.is_empty() && cli.iter().all(|&rest| !rest),
        "{kinds:?}"
    );
    let before = server.requests().len();
    source.sample().unwrap();
    assert!(
        server.requests()[before..].iter().all(|r| !r.is_rest()),
        "settled for good"
    );
}

/// The switch a test moves: counters of Ethernet1/5 and whether NX-API
/// answers, slowly, or with the DME's refusal.
#[derive(Default)]
struct Switch {
    crc: u64,
    tx_errors: u64,
    /// Serve the REST API; without it `/api/` is 404.
    rest: bool,
    /// NX-API not answering yet: nginx's 503.
    booting: bool,
    refuse: bool,
    /// Seconds the next answer waits.
    delay: Option<Duration>,
}

/// A server answering `/api/` from the 96-port DME fixture with the switch's
/// counters, and the CLI from the `show interface` fixture.
fn switch_server(dir: &TempDir, switch: &Arc<Mutex<Switch>>) -> Server {
    let state = Arc::clone(switch);
    let base = fixture_json("dme_counters_96.json");
    Server::start(dir, move |request: &Request| {
        let (delay, reply) = {
            let mut state = state.lock().unwrap();
            let reply = if state.booting {
                (
                    503,
                    "<html>503 Service Temporarily Unavailable</html>".to_string(),
                )
            } else if !request.is_rest() {
                (200, fixture("show_interface_48.json"))
            } else if !state.rest {
                (404, NOT_FOUND.to_string())
            } else if state.refuse {
                (400, fixture("dme_error.json"))
            } else {
                let mut reply = base.clone();
                let dn = "sys/intf/phys-[eth1/5]";
                set_attribute(
                    &mut reply,
                    &format!("{dn}/dbgEtherStats"),
                    "cRCAlignErrors",
                    state.crc,
                );
                set_attribute(
                    &mut reply,
                    &format!("{dn}/dbgIfOut"),
                    "errors",
                    state.tx_errors,
                );
                (200, reply.to_string())
            };
            (state.delay.take(), reply)
        };
        if let Some(delay) = delay {
            std::thread::sleep(delay);
        }
        reply
    })
}

fn config(dir: &TempDir, socket: &Path, source: &str) -> PathBuf {
    nxapi_config(
        dir,
        socket,
        source,
        r#"[links]
interfaces = ["Eth1-*"]

[[rule]]
name = "crc"
interfaces = ["Ethernet1/*"]
when = "increase(rx_crc[1s]) > 3"
severity = "warning"

[[rule]]
name = "tx-errors"
interfaces = ["Eth1-*"]
when = "increase(tx_errors[1s]) > 3"
severity = "critical"
"#,
    )
}

/// Polls `hopwatch status` until `pred` holds; an agent not answering yet
/// is asked again.
fn status_until(config: &Path, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    // Long enough for a few polls at an interval a slow answer stretched.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = hopwatch()
            .args(["status", "--json", "-c"])
            .arg(config)
            .output()
            .unwrap();
        let status: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if out.status.success() && pred(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {status} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn dme_auto_picks_dme_when_the_rest_api_answers_and_rules_fire_on_its_counters() {
    let dir = TempDir::new("hopwatch-dme");
    let switch = Arc::new(Mutex::new(Switch {
        rest: true,
        ..Switch::default()
    }));
    let server = switch_server(&dir, &switch);
    let config = config(&dir, &server.path, "auto");
    let mut agent = run_agent(&config);
    let status = status_until(&config, "auto settles on dme", |s| s["source"] == "dme");
    assert_eq!(status["interfaces"], 96);
    assert_ne!(status["link_watch"], "source", "links come from the kernel");

    switch.lock().unwrap().crc = 50;
    let crc = agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "alert" && e["rule"] == "crc" && e["state"] == "firing"
        })
        .expect("rx_crc fires from rmonEtherStats.cRCAlignErrors");
    assert_eq!(crc["interface"], "Ethernet1/5");
    assert_eq!(crc["value"], 50.0);
    switch.lock().unwrap().tx_errors = 9;
    let tx = agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "alert" && e["rule"] == "tx-errors" && e["state"] == "firing"
        })
        .expect("tx_errors fires from rmonIfOut.errors; the Linux glob matches");
    assert_eq!(tx["interface"], "Ethernet1/5");
    assert!(agent.stop().success());

    let requests = server.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.is_rest() && r.path == COUNTER_QUERY),
        "only the DME query, never the CLI: {:?}",
        requests.iter().map(|r| &r.input).collect::<Vec<_>>()
    );
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.cookie.as_deref() == Some(super::server::SESSION_COOKIE)),
        "the session cookie is reused"
    );
    assert_eq!(server.most_in_flight(), 1, "never two requests at once");
}

#[test]
fn dme_auto_falls_back_to_the_cli_without_the_rest_api_and_asks_again_at_reload() {
    let dir = TempDir::new("hopwatch-dme");
    let switch = Arc::new(Mutex::new(Switch::default()));
    let server = switch_server(&dir, &switch);
    let config = config(&dir, &server.path, "auto");
    let agent = run_agent(&config);
    let status = status_until(&config, "auto settles on nxapi", |s| s["source"] == "nxapi");
    assert_eq!(status["source_errors"], 0, "the 404 cost no tick: {status}");
    let requests = server.requests();
    assert_eq!(requests[0].path, COUNTER_QUERY, "the probe comes first");
    assert!(
        requests[1..]
            .iter()
            .all(|r| !r.is_rest() && r.kind == "cli_show"),
        "then the CLI only: {:?}",
        requests.iter().map(|r| &r.input).collect::<Vec<_>>()
    );

    // The REST API appears (say, after an upgrade of the switch's NX-API):
    // a reload asks again.
    switch.lock().unwrap().rest = true;
    let before = server.requests().len();
    agent.signal(nix::sys::signal::Signal::SIGHUP);
    status_until(&config, "the reload settles on dme", |s| {
        s["source"] == "dme"
    });
    assert!(
        server.requests()[before..]
            .iter()
            .any(|r| r.path == COUNTER_QUERY)
    );
    assert!(agent.stop().success());
    assert_eq!(server.most_in_flight(), 1, "never two requests at once");
}

#[test]
fn dme_auto_waits_for_nxapi_at_boot_rather_than_settle_on_the_cli() {
    let dir = TempDir::new("hopwatch-dme");
    let switch = Arc::new(Mutex::new(Switch {
        rest: true,
        booting: true,
        ..Switch::default()
    }));
    let server = switch_server(&dir, &switch);
    let config = config(&dir, &server.path, "auto");
    let mut cmd = hopwatch();
    cmd.args(["run", "-c"]).arg(&config);
    let agent = AgentProcess::spawn(cmd);
    let status = status_until(&config, "probes fail while NX-API boots", |s| {
        s["source_errors"].as_u64().unwrap_or(0) >= 4
    });
    assert_eq!(status["source"], "auto", "nothing chosen yet: {status}");
    let error = status["last_source_error"].as_str().unwrap();
    assert!(
        error.contains("cannot yet choose") && error.contains("HTTP 503"),
        "{error}"
    );
    assert!(
        server.requests().iter().all(|r| r.is_rest()),
        "no CLI request while NX-API is down"
    );
    switch.lock().unwrap().booting = false;
    status_until(&config, "NX-API up: dme", |s| s["source"] == "dme");
    assert!(agent.stop().success());
}

#[test]
fn dme_slow_and_refused_answers_lose_only_their_tick() {
    let dir = TempDir::new("hopwatch-dme");
    let switch = Arc::new(Mutex::new(Switch {
        rest: true,
        ..Switch::default()
    }));
    let server = switch_server(&dir, &switch);
    let config = config(&dir, &server.path, "dme");
    let mut agent = run_agent(&config);
    status_until(&config, "the dme source runs", |s| {
        s["source"] == "dme" && s["ticks"].as_u64().unwrap() >= 1
    });

    // One answer slower than the poll's 1 s timeout: that tick is lost.
    switch.lock().unwrap().delay = Some(Duration::from_millis(1500));
    let status = status_until(&config, "a slow answer times out", |s| {
        s["source_errors"].as_u64().unwrap() >= 1
    });
    assert!(
        status["last_source_error"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{status}"
    );
    // The slow answer also stretched the interval, so the switch is asked
    // less often until it answers fast again.
    assert!(
        status["effective_interval_ms"].as_u64() > status["interval_ms"].as_u64(),
        "{status}"
    );
    let ticks = status["ticks"].as_u64().unwrap();
    status_until(&config, "ticks resume after the slow answer", |s| {
        s["ticks"].as_u64().unwrap() > ticks
    });

    // The DME refusing costs ticks, not the agent; rules work after it.
    switch.lock().unwrap().refuse = true;
    let errors = status["source_errors"].as_u64().unwrap();
    let status = status_until(&config, "refusals are counted", |s| {
        s["source_errors"].as_u64().unwrap() >= errors + 2
    });
    assert!(
        status["last_source_error"]
            .as_str()
            .unwrap()
            .contains("unresolved class"),
        "{status}"
    );
    assert_eq!(status["source"], "dme", "an explicit dme stays dme");
    switch.lock().unwrap().refuse = false;
    switch.lock().unwrap().crc = 40;
    agent
        .wait_for(Duration::from_secs(3), |e| {
            e["type"] == "alert" && e["rule"] == "crc" && e["interface"] == "Ethernet1/5"
        })
        .expect("rules fire once the DME answers again");
    assert!(agent.stop().success());
}

#[test]
fn dme_counters_command_under_auto_asks_the_full_show_interface() {
    // `hopwatch counters` is asked at a person's pace, so on NX-OS it reads
    // the full `show interface`, link states and all, whichever source the
    // agent's ticks settle on.
    let dir = TempDir::new("hopwatch-dme");
    let switch = Arc::new(Mutex::new(Switch {
        rest: true,
        ..Switch::default()
    }));
    let server = switch_server(&dir, &switch);
    let config = dir.write(
        "agent.toml",
        &format!("[agent]\nnxapi_socket = \"{}\"\n", server.path.display()),
    );
    let out = hopwatch()
        .args(["counters", "--json", "--interval", "100ms", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let port7 = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Ethernet1/7")
        .expect("Ethernet1/7");
    assert_eq!(port7["state"], "down", "the link state of show interface");
    assert!(
        server
            .requests()
            .iter()
            .all(|r| !r.is_rest() && r.input == "show interface"),
        "{:?}",
        server
            .requests()
            .iter()
            .map(|r| &r.input)
            .collect::<Vec<_>>()
    );
}
