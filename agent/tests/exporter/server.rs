//! The listener's refusals and bounds, through raw sockets against the
//! running agent: the token, the one route, the slots and the timeouts.

use super::{
    Fixture, free_port, have, promtool_check, request, scrape, scrape_when_up, spawn_agent, value,
};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[test]
fn exporter_serves_fixture_counters_that_promtool_accepts() {
    let fixture = Fixture::new(3);
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // A rule that fires at the first tick, with labels of its own.
    let firing = "\n[[rule]]\nname = \"busy\"\ninterfaces = [\"eth2\"]\nwhen = \"rx_bytes > 0\"\n\
                  severity = \"warning\"\nlabels = { team = \"dc-ops\" }\n";
    let config = fixture.config("200ms", &format!("listen = \"{addr}\"\n{firing}"));
    let _agent = spawn_agent(&config);
    scrape_when_up(addr, None);
    let alert = "hopwatch_alert_firing{interface=\"eth2\",rule=\"busy\",severity=\"warning\",team=\"dc-ops\"}";
    let text = crate::util::poll(Duration::from_secs(10), || {
        let (_, text) = scrape(addr, None).ok()?;
        (value(&text, "hopwatch_source_up") == Some(1.0) && value(&text, alert).is_some())
            .then_some(text)
    })
    .unwrap_or_else(|| panic!("a tick published with {alert}"));
    assert_eq!(value(&text, alert), Some(1.0));
    // eth2's column c holds 200 + c: receive_errs is column 2, transmit_colls 13.
    assert_eq!(
        value(&text, "node_network_receive_errs_total{device=\"eth2\"}"),
        Some(202.0)
    );
    assert_eq!(
        value(&text, "node_network_transmit_colls_total{device=\"eth2\"}"),
        Some(213.0)
    );
    assert_eq!(value(&text, "node_network_up{device=\"eth0\"}"), Some(1.0));
    assert_eq!(
        value(&text, "node_network_speed_bytes{device=\"eth1\"}"),
        Some(1.25e9)
    );
    assert_eq!(
        value(&text, "node_network_carrier_changes_total{device=\"eth1\"}"),
        Some(2.0)
    );
    assert_eq!(value(&text, "hopwatch_interfaces"), Some(3.0));
    let evaluations = value(&text, "hopwatch_rule_evaluations_total{rule=\"tx-errors\"}").unwrap();
    let ticks = value(&text, "hopwatch_tick_seconds_count").unwrap();
    assert_eq!(
        evaluations, ticks,
        "tx-errors matches eth1 only: one evaluation per tick"
    );
    if have(
        "exporter_serves_fixture_counters_that_promtool_accepts",
        "promtool",
        "prometheus",
    ) {
        let said = promtool_check(&text);
        assert!(said.is_empty(), "promtool check metrics: {said}\n{text}");
    }
}

#[test]
fn exporter_asks_for_the_token_and_serves_one_route() {
    let fixture = Fixture::new(2);
    let token_file = fixture
        .dir
        .write("scrape-token", "first-token-0123456789\n");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = fixture.config(
        "200ms",
        &format!(
            "listen = \"{addr}\"\ntoken_file = \"{}\"",
            token_file.display()
        ),
    );
    let agent = spawn_agent(&config);
    let body = scrape_when_up(addr, Some("first-token-0123456789"));
    assert!(
        body.contains("# TYPE node_network_receive_bytes_total counter"),
        "{body}"
    );

    let (status, body) = scrape(addr, None).unwrap();
    assert_eq!(status, 401);
    assert!(
        body.contains("Authorization: Bearer"),
        "the refusal says what to send: {body}"
    );
    assert!(
        !body.contains("first-token"),
        "the token is never quoted back"
    );
    assert_eq!(scrape(addr, Some("first-token-012345678")).unwrap().0, 401);
    assert_eq!(scrape(addr, Some("wrong")).unwrap().0, 401);
    let get = |path: &str| {
        request(
            addr,
            &format!("GET {path} HTTP/1.1\r\nAuthorization: Bearer first-token-0123456789\r\n\r\n"),
        )
    };
    assert_eq!(get("/").unwrap().0, 404);
    assert_eq!(get("/metrics/../status").unwrap().0, 404);
    assert_eq!(get("/metrics?x=1").unwrap().0, 200);
    let (status, _) = request(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(status, 405);
    assert_eq!(request(addr, "NOT HTTP\r\n\r\n").unwrap().0, 400);

    // A rotated token takes effect on SIGHUP; the old one stops working.
    std::fs::write(&token_file, "second-token-0123456789\n").unwrap();
    agent.signal(nix::sys::signal::Signal::SIGHUP);
    let rotated = crate::util::poll(Duration::from_secs(10), || {
        (scrape(addr, Some("second-token-0123456789")).ok()?.0 == 200).then_some(())
    });
    assert!(rotated.is_some(), "the new token is taken after SIGHUP");
    assert_eq!(scrape(addr, Some("first-token-0123456789")).unwrap().0, 401);
}

#[test]
fn exporter_bounds_concurrent_scrapes_and_drops_silent_clients() {
    let fixture = Fixture::new(2);
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = fixture.config("200ms", &format!("listen = \"{addr}\""));
    let _agent = spawn_agent(&config);
    scrape_when_up(addr, None);

    // Four clients that connect and say nothing hold every slot.
    let silent: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let asked = Instant::now();
    let (status, body) = scrape(addr, None).unwrap();
    assert_eq!(
        status, 503,
        "a fifth scrape waits briefly, then is turned away: {body}"
    );
    assert!(body.contains("busy"), "{body}");
    assert!(
        asked.elapsed() >= Duration::from_millis(900),
        "it waited for a slot first"
    );

    // The server ends a client that sends nothing within its read timeout
    // (5 s), which frees the slot.
    for mut client in silent {
        client
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut buf = [0; 64];
        let started = Instant::now();
        let n = client
            .read(&mut buf)
            .expect("closed by the server, not timed out here");
        assert_eq!(n, 0, "closed without an answer");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    let (status, body) = scrape(addr, None).unwrap();
    assert_eq!(status, 200);
    assert!(
        value(&body, "hopwatch_exporter_refused_total").unwrap() >= 1.0,
        "{body}"
    );
}

#[test]
fn exporter_that_cannot_bind_leaves_the_agent_running() {
    let fixture = Fixture::new(2);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = fixture.config("200ms", &format!("listen = \"{addr}\"\n\n[output.stdout]"));
    let mut agent = spawn_agent(&config);
    let heartbeat = agent.wait_for(Duration::from_secs(10), |e| e["type"] == "heartbeat");
    assert!(
        heartbeat.is_some(),
        "the agent samples and reports without its listener"
    );
    assert!(agent.stop().success(), "and stops cleanly");
}

#[test]
fn exporter_moves_to_a_new_address_on_sighup() {
    let fixture = Fixture::new(2);
    let first: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let second: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = fixture.config("200ms", &format!("listen = \"{first}\""));
    let agent = spawn_agent(&config);
    scrape_when_up(first, None);

    fixture.config("200ms", &format!("listen = \"{second}\""));
    agent.signal(nix::sys::signal::Signal::SIGHUP);
    scrape_when_up(second, None);
    let released = crate::util::poll(Duration::from_secs(5), || {
        scrape(first, None).is_err().then_some(())
    });
    assert!(released.is_some(), "the old address is let go");

    // The same port on every address: it binds only because the old
    // listener let go of the port first.
    let wildcard = format!("0.0.0.0:{}", second.port());
    fixture.config("200ms", &format!("listen = \"{wildcard}\""));
    agent.signal(nix::sys::signal::Signal::SIGHUP);
    let moved = crate::util::poll(Duration::from_secs(10), || {
        let (_, text) = scrape(second, None).ok()?;
        // A new listener's own count starts again from its first scrape.
        (super::value(&text, "hopwatch_exporter_scrapes_total") == Some(1.0)).then_some(())
    });
    assert!(moved.is_some(), "the listener moved to {wildcard}");
}
