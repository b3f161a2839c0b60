//! A real Prometheus scraping the agent every second with the bearer token
//! from a file, as an operator would configure it, and answering a query
//! with the agent's series.

use super::{Fixture, free_port, have, scrape_when_up, spawn_agent};
use crate::util::poll;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` from Prometheus's HTTP API, the body as JSON.
fn api(port: u16, path: &str) -> Option<Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: prometheus\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    serde_json::from_str(answer.split_once("\r\n\r\n")?.1).ok()
}

#[test]
fn prometheus_scrapes_the_agent_with_its_token() {
    let test = "prometheus_scrapes_the_agent_with_its_token";
    if !have(test, "prometheus", "prometheus") {
        return;
    }
    let fixture = Fixture::new(3);
    let token = "prometheus-scrape-token-0123";
    let token_file = fixture.dir.write("scrape-token", token);
    let port = free_port();
    let config = fixture.config(
        "200ms",
        &format!(
            "listen = \"127.0.0.1:{port}\"\ntoken_file = \"{}\"",
            token_file.display()
        ),
    );
    let _agent = spawn_agent(&config);
    scrape_when_up(format!("127.0.0.1:{port}").parse().unwrap(), Some(token));

    let prometheus_config = fixture.dir.write(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: hopwatch\n    authorization:\n      credentials_file: {}\n    \
             static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n",
            token_file.display()
        ),
    );
    let web = free_port();
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prometheus_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                fixture.dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus"),
    );
    let series = poll(Duration::from_secs(60), || {
        let answer = api(web, "/api/v1/query?query=node_network_receive_bytes_total")?;
        let result = answer["data"]["result"].as_array()?.clone();
        (result.len() == 3).then_some(result)
    });
    let Some(series) = series else {
        let targets = api(web, "/api/v1/targets");
        panic!("Prometheus never had the agent's 3 interfaces; its targets: {targets:?}");
    };
    let eth2 = series
        .iter()
        .find(|s| s["metric"]["device"] == "eth2")
        .expect("eth2's series");
    assert_eq!(eth2["metric"]["job"], "hopwatch");
    assert_eq!(eth2["value"][1], "200", "eth2's rx_bytes column: {eth2}");
    let up = api(web, "/api/v1/query?query=up").unwrap();
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
}
