//! Sockets that hold the API's connections without finishing a request,
//! against the real binary: slow headers and silence are closed after
//! `header_timeout`; with the HTTP connections full of them, a client with
//! an API token and an agent still get in; and the descriptors they use
//! never run out for the agents' port.

use crate::util::{
    AGENT_TOKEN, API_TOKEN, FakeAgent, Process, TempDir, config_text, free_port, http_get, metric,
    try_http_get, wait_for,
};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Waits until the peer closes `stream`; None when it stays open past
/// `timeout`.
fn closed_within(stream: &mut TcpStream, timeout: Duration) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return Some(Instant::now()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(Instant::now()),
        }
    }
    None
}

#[test]
fn slow_headers_and_silent_sockets_are_closed_after_the_header_timeout() {
    let dir = TempDir::new("slowloris");
    let process = Process::start(
        &dir.path,
        free_port(),
        free_port(),
        "",
        "[http]\nheader_timeout = \"1s\"\nidle_timeout = \"30s\"\n",
    );
    let opened = Instant::now();
    let mut silent = TcpStream::connect(process.http).unwrap();
    let mut loris = TcpStream::connect(process.http).unwrap();
    loris.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    // A header byte every 100 ms, as long as the collector takes them.
    let mut writer = loris.try_clone().unwrap();
    let dripping = std::thread::spawn(move || {
        let mut sent = 0;
        for byte in b"X-Slow: ".iter().chain([b'a'; 200].iter()) {
            if writer.write_all(&[*byte]).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        sent
    });
    let loris_closed = closed_within(&mut loris, Duration::from_secs(10))
        .expect("a connection sending a header byte every 100 ms stayed open 10 s");
    let silent_closed = closed_within(&mut silent, Duration::from_secs(10))
        .expect("a silent connection stayed open 10 s");
    let sent = dripping.join().unwrap();
    for (what, at) in [("slow", loris_closed), ("silent", silent_closed)] {
        let after = at - opened;
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_secs(5),
            "the {what} connection closed after {after:?}, header_timeout is 1s"
        );
    }
    assert!(sent < 100, "the collector took {sent} header bytes");
    let text = http_get(process.http, "/metrics", None).body;
    assert_eq!(
        metric(
            &text,
            "hopwatch_collector_http_connections_closed_total{reason=\"header_timeout\"}"
        ),
        2.0,
        "{text}"
    );
    // A prompt request is still answered.
    assert_eq!(http_get(process.http, "/healthz", None).status, 200);
}

/// A keep-alive connection: requests in turn, answers read by length.
struct KeepAlive {
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    fn connect(addr: SocketAddr) -> KeepAlive {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        KeepAlive {
            reader: BufReader::new(stream),
        }
    }

    /// The status of GET `path`, or the error that ended the connection.
    fn get(&mut self, path: &str, token: &str) -> std::io::Result<u16> {
        write!(
            self.reader.get_mut(),
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        )?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(status)
    }
}

#[test]
fn with_the_http_connections_full_of_silent_sockets_api_users_and_agents_get_in() {
    let dir = TempDir::new("httpcap");
    let process = Process::start(
        &dir.path,
        free_port(),
        free_port(),
        "",
        "[http]\nheader_timeout = \"60s\"\nmax_connections = 20\n",
    );
    // A client that showed its token before the flood keeps its connection.
    let mut client = KeepAlive::connect(process.http);
    assert_eq!(client.get("/api/v1/agents", API_TOKEN).unwrap(), 200);
    let flood: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(process.http).unwrap())
        .collect();
    // Every flood socket was accepted and all but the newest closed.
    wait_for(Duration::from_secs(10), || {
        let text = try_http_get(process.http, "/metrics", None).ok()?.body;
        let total = metric(&text, "hopwatch_collector_http_connections_total");
        (total >= 201.0).then_some(())
    })
    .expect("the flood was never accepted");
    assert_eq!(client.get("/api/v1/agents", API_TOKEN).unwrap(), 200);
    let fresh = http_get(process.http, "/api/v1/agents", Some(API_TOKEN));
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    let (mut agent, _) = FakeAgent::connect(process.agents, AGENT_TOKEN, "leaf1", "b1")
        .expect("an agent could not get in past the HTTP flood");
    agent.send(&[]).unwrap();
    let text = http_get(process.http, "/metrics", None).body;
    assert!(
        metric(&text, "hopwatch_collector_http_connections_open") <= 20.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "hopwatch_collector_http_connections_closed_total{reason=\"evicted\"}"
        ) >= 180.0,
        "{text}"
    );
    drop(flood);
}

#[test]
fn an_http_flood_never_takes_the_descriptors_the_agents_need() {
    let dir = TempDir::new("httpfds");
    let (agents_port, http_port) = (free_port(), free_port());
    let config = dir.path.join("collector.toml");
    std::fs::write(
        &config,
        config_text(
            &dir.path,
            &format!(
                "agents_listen = \"127.0.0.1:{agents_port}\"\nhttp_listen = \"127.0.0.1:{http_port}\"\nmax_connections = 100\n"
            ),
            "",
        ),
    )
    .unwrap();
    // 300 descriptors in all, hard limit too: 100 are the agents', so the
    // HTTP side must stay well below the rest.
    let child = Command::new("prlimit")
        .arg("--nofile=300:300")
        .arg(env!("CARGO_BIN_EXE_hopwatch-collector"))
        .args(["run", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let process = Process {
        child,
        agents: format!("127.0.0.1:{agents_port}").parse().unwrap(),
        http: format!("127.0.0.1:{http_port}").parse().unwrap(),
        config,
    };
    wait_for(Duration::from_secs(20), || {
        try_http_get(process.http, "/healthz", None)
            .ok()
            .filter(|r| r.status == 200)
    })
    .expect("the collector never became healthy");
    let flood: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect(process.http).ok())
        .collect();
    wait_for(Duration::from_secs(10), || {
        let text = try_http_get(process.http, "/metrics", None).ok()?.body;
        (metric(&text, "hopwatch_collector_http_connections_total") >= 400.0).then_some(())
    })
    .expect("the flood was never accepted");
    // Agents up to their own cap still get in.
    let agents: Vec<FakeAgent> = (0..50)
        .map(|i| {
            FakeAgent::connect(process.agents, AGENT_TOKEN, &format!("leaf{i}"), "b1")
                .unwrap_or_else(|e| panic!("agent {i} could not get in: {e}"))
                .0
        })
        .collect();
    assert_eq!(
        http_get(process.http, "/api/v1/agents", Some(API_TOKEN)).status,
        200
    );
    let log = std::fs::read_to_string(dir.path.join("stderr.log")).unwrap();
    assert!(!log.contains("os error 24"), "{log}");
    assert!(log.contains("capping HTTP connections lower"), "{log}");
    drop((flood, agents));
}

#[test]
fn a_client_that_stops_reading_its_answers_is_closed_after_the_idle_timeout() {
    let dir = TempDir::new("httpidle");
    let process = Process::start(
        &dir.path,
        free_port(),
        free_port(),
        "",
        "[http]\nheader_timeout = \"60s\"\nidle_timeout = \"1s\"\n",
    );
    // Pipelined requests for far more answer than the socket buffers hold,
    // never read: the collector's writes stall.
    let mut stalled = TcpStream::connect(process.http).unwrap();
    let requests = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
    let mut writer = stalled.try_clone().unwrap();
    std::thread::spawn(move || writer.write_all(requests.as_bytes()));
    let idle_closed = |text: &str| {
        metric(
            text,
            "hopwatch_collector_http_connections_closed_total{reason=\"idle_timeout\"}",
        )
    };
    wait_for(Duration::from_secs(10), || {
        let text = try_http_get(process.http, "/metrics", None).ok()?.body;
        (idle_closed(&text) == 1.0).then_some(())
    })
    .expect("a connection whose answers were not read stayed open");
    // What it had been sent ends in a close.
    assert!(closed_within(&mut stalled, Duration::from_secs(10)).is_some());
}
