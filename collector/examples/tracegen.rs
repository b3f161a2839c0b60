//! Load and timing for `collector/bench/fabric.sh`: simulated agents whose
//! hello addresses chain them into 5-switch paths and that answer the
//! collector's hop questions with scripted traces, so fabric traces can be
//! timed among a thousand connected agents without a thousand namespaces;
//! and an HTTP client that times trace requests on one kept-alive
//! connection, so the figures are the trace's and not a TCP handshake's.

use clap::{Parser, Subcommand};
use hopwatch_wire::event::{InterfaceAddress, VrfAddresses};
use hopwatch_wire::trace::{
    Action, Counters, FlowQuery, Hop, Interface, LoadShare, Member, Neighbor, NeighborState,
    OperState, Route, RouteKind, Step, Trace, TraceAnswer, TraceQuery,
};
use hopwatch_wire::wire::{
    CollectorMessage, Hello, HelloTag, PROTOCOL_VERSION, TraceResult, TraceResultTag,
};
use serde_json::Value;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Connects `agents` simulated agents in chains of `chain` switches,
    /// heartbeating every `every`, answering hop questions until SIGTERM;
    /// then prints how many they answered and how long each answer took.
    Agents {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        token_file: String,
        #[arg(long, default_value_t = 1000)]
        agents: usize,
        /// Switches per chain: a flow across one chain is this many hops.
        #[arg(long, default_value_t = 5)]
        chain: usize,
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        every: Duration,
        /// Where the ready line and the flow to ask go (the script polls it).
        #[arg(long)]
        ready_file: String,
    },
    /// POSTs `body` to `path` (or GETs it, with `--get`) `warmup` +
    /// `repeat` times on one kept-alive connection; prints min, p50, p95 and
    /// max of the timed ones and, from the answers, where the time went.
    Post {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        token_file: String,
        #[arg(long)]
        path: String,
        #[arg(long, default_value = "")]
        body: String,
        /// GET instead of POST, with no body: the store's own queries, for
        /// comparison.
        #[arg(long)]
        get: bool,
        #[arg(long, default_value_t = 100)]
        repeat: usize,
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        /// Appends each timed request's wall time in ms, one a line.
        #[arg(long)]
        times: Option<String>,
        /// Appends the answers' own figures, one request a line:
        /// `walk_us hops_rtt_us agents_us` (single-path answers only).
        #[arg(long)]
        parts: Option<String>,
    },
}

fn main() {
    raise_fd_limit();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        match cli.mode {
            Mode::Agents {
                addr,
                token_file,
                agents,
                chain,
                every,
                ready_file,
            } => simulate(addr, &token(&token_file), agents, chain, every, &ready_file).await,
            Mode::Post {
                addr,
                token_file,
                path,
                body,
                get,
                repeat,
                warmup,
                times,
                parts,
            } => {
                let token = token(&token_file);
                let method = if get { "GET" } else { "POST" };
                let timing = Timing {
                    repeat,
                    warmup,
                    times,
                    parts,
                };
                post(addr, &token, method, &path, &body, timing).await
            }
        }
    });
}

fn token(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .expect("a token")
        .trim()
        .to_string()
}

fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// Where one simulated switch sits: chain `chain`, `position` from 0 (the
/// switch the source host hangs off) to `len - 1` (the destination's).
#[derive(Debug, Clone, Copy)]
struct Place {
    chain: usize,
    position: usize,
    len: usize,
}

/// Each chain gets a /24 of its own, `10.(64 + chain / 256).(chain % 256)`:
/// link `p` (between positions `p` and `p + 1`) is `.8p/30`, the source
/// hosts' subnet `.128/27` on position 0, the destination's `.192/27` on the
/// last, and every switch a loopback `.100 + p`.
fn chain_addr(chain: usize, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 64 + (chain / 256) as u8, (chain % 256) as u8, host)
}

impl Place {
    fn name(&self) -> String {
        format!("sim{:03}-{}", self.chain, self.position)
    }

    fn last(&self) -> bool {
        self.position + 1 == self.len
    }

    /// The address of the next switch on this switch's `up` link.
    fn next_hop(&self) -> Ipv4Addr {
        chain_addr(self.chain, 8 * self.position as u8 + 2)
    }

    fn addresses(&self) -> Vec<VrfAddresses> {
        let (c, p) = (self.chain, self.position as u8);
        let mut addresses = vec![InterfaceAddress {
            interface: "lo".into(),
            address: format!("{}/32", chain_addr(c, 100 + p)),
        }];
        if p > 0 {
            addresses.push(InterfaceAddress {
                interface: "down".into(),
                address: format!("{}/30", chain_addr(c, 8 * (p - 1) + 2)),
            });
        }
        if !self.last() {
            addresses.push(InterfaceAddress {
                interface: "up".into(),
                address: format!("{}/30", chain_addr(c, 8 * p + 1)),
            });
        }
        if p == 0 {
            addresses.push(InterfaceAddress {
                interface: "host".into(),
                address: format!("{}/27", chain_addr(c, 129)),
            });
        }
        if self.last() {
            addresses.push(InterfaceAddress {
                interface: "host".into(),
                address: format!("{}/27", chain_addr(c, 193)),
            });
        }
        vec![VrfAddresses {
            vrf: "default".into(),
            addresses,
        }]
    }

    /// What this switch answers for `flow` arriving on `ingress`: the
    /// destination's route through the `up` link to the next switch, or, on
    /// the last switch, onto its connected `host` subnet — a trace of the
    /// shape the kernel backend gives, with every stage filled in.
    fn answer(&self, flow: FlowQuery, ingress: Option<String>, started: Instant) -> Trace {
        let component = format!("{}/{}", self.name(), flow.vrf);
        // The last switch has the destination's subnet connected (a kernel
        // route); the others reach it by a static route up the chain.
        let (egress, ifindex, gateway, protocol, protocol_id) = if self.last() {
            ("host", 4, None, "kernel", 2)
        } else {
            ("up", 3, Some(IpAddr::V4(self.next_hop())), "static", 4)
        };
        let route = Route {
            prefix: format!("{}/27", chain_addr(self.chain, 192)),
            kind: RouteKind::Unicast,
            table: 254,
            table_name: "main".into(),
            protocol: protocol.into(),
            protocol_id,
            metric: 0,
            preferred_source: None,
            members: vec![Member {
                next_hop: gateway,
                interface: Some(egress.into()),
                ifindex,
                weight: 1,
                flags: Vec::new(),
            }],
            chosen: Some(0),
        };
        let neighbour = Neighbor {
            address: gateway.unwrap_or(flow.dst),
            interface: egress.into(),
            lladdr: Some(format!(
                "02:00:00:{:02x}:{:02x}:01",
                self.chain % 256,
                self.position
            )),
            state: NeighborState::Reachable,
            router: false,
        };
        let interface = Interface {
            name: egress.into(),
            ifindex,
            oper_state: OperState::Up,
            admin_up: true,
            carrier: true,
            mtu: Some(9216),
            speed_mbps: Some(100_000),
            counters: Some(Counters {
                rx_bytes: 81_234_567_890,
                rx_packets: 91_234_567,
                tx_bytes: 71_234_567_890,
                tx_packets: 81_234_567,
                ..Counters::default()
            }),
        };
        let via = gateway.map_or_else(|| "directly".to_string(), |g| format!("via {g}"));
        let hops = vec![
            Hop {
                index: 0,
                component: component.clone(),
                action: Action::Forward,
                description: format!("route {} {via} dev {egress}", route.prefix),
                step: Step::L3Routing {
                    route,
                    source_address: None,
                },
            },
            Hop {
                index: 1,
                component: component.clone(),
                action: Action::Resolve,
                description: format!("neighbour {} is reachable", neighbour.address),
                step: Step::Neighbor {
                    neighbor: neighbour,
                },
            },
            Hop {
                index: 2,
                component,
                action: Action::Output,
                description: format!("out {egress} (up)"),
                step: Step::Egress { interface },
            },
        ];
        let summary = format!("{} leaves by {egress} {via}", flow.describe());
        Trace {
            request: FlowQuery {
                iif: ingress.clone(),
                ..flow
            },
            success: true,
            reaches_destination: true,
            next_hop: gateway,
            egress_interface: Some(egress.into()),
            ingress_interface: ingress,
            ingress_inferred: false,
            hops,
            summary,
            switch: self.name(),
            backend: "kernel".into(),
            load_share: Some(LoadShare {
                setting: "net.ipv4.fib_multipath_hash_policy".into(),
                policy: 1,
                mode: "layer 4 (source and destination address, protocol and ports)".into(),
            }),
            elapsed_us: started.elapsed().as_micros() as u64,
            hash: None,
        }
    }
}

/// Answers the simulated agents gave, and the time each took from reading
/// the question to writing the answer.
#[derive(Default)]
struct Answered {
    count: AtomicU64,
    micros: Mutex<Vec<u32>>,
}

async fn simulate(
    addr: SocketAddr,
    token: &str,
    agents: usize,
    chain: usize,
    every: Duration,
    ready_file: &str,
) {
    assert!(
        (2..=32).contains(&chain),
        "--chain {chain}: give 2 to 32 switches"
    );
    assert!(
        agents >= chain && agents.is_multiple_of(chain),
        "--agents {agents}: give a multiple of --chain {chain}"
    );
    let chains = agents / chain;
    let started = Instant::now();
    let answered = Arc::new(Answered::default());
    let connected = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for a in 0..agents {
        let place = Place {
            chain: a / chain,
            position: a % chain,
            len: chain,
        };
        let token = token.to_string();
        let answered = Arc::clone(&answered);
        let connected = Arc::clone(&connected);
        let offset = every.mul_f64(a as f64 / agents as f64);
        tasks.push(tokio::spawn(async move {
            let stream = connect(addr, &token, &place).await;
            connected.fetch_add(1, Ordering::Relaxed);
            serve(stream, place, every, offset, &answered).await;
        }));
        if a % 100 == 99 {
            // A burst of a thousand connects overflows the listen backlog.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    while (connected.load(Ordering::Relaxed) as usize) < agents {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let middle = Place {
        chain: chains / 2,
        position: 0,
        len: chain,
    };
    let ready = format!(
        "ready {agents} {chains} {} {} {} {:.2}\n",
        middle.name(),
        chain_addr(middle.chain, 130),
        chain_addr(middle.chain, 194),
        started.elapsed().as_secs_f64()
    );
    let tmp = format!("{ready_file}.tmp");
    std::fs::write(&tmp, ready).unwrap();
    std::fs::rename(&tmp, ready_file).unwrap();
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    term.recv().await;
    let mut micros = std::mem::take(&mut *answered.micros.lock().unwrap());
    micros.sort_unstable();
    let pct = |p: f64| {
        micros
            .get(((micros.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "simulated agents: {} hop questions answered; each answer (read, build, write) p50 {} us, p95 {} us, max {} us",
        answered.count.load(Ordering::Relaxed),
        pct(0.5),
        pct(0.95),
        pct(1.0)
    );
    std::io::stdout().flush().unwrap();
    std::process::exit(0);
}

/// Connects and says hello with the switch's addresses; panics on refusal,
/// since a bench with missing agents measures nothing.
async fn connect(addr: SocketAddr, token: &str, place: &Place) -> TcpStream {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{}: connect: {e}", place.name()));
    stream.set_nodelay(true).unwrap();
    let hello = Hello {
        kind: HelloTag::Hello,
        protocol: PROTOCOL_VERSION,
        token: token.to_string(),
        agent: place.name(),
        boot: "t1".into(),
        boots: vec!["t1".into()],
        version: "tracegen".into(),
        addresses: place.addresses(),
        now: None,
    };
    let mut line = serde_json::to_string(&hello).unwrap();
    line.push('\n');
    stream.write_all(line.as_bytes()).await.unwrap();
    // Byte by byte, so nothing after the welcome is read into a buffer
    // that is then dropped.
    let mut welcome = Vec::new();
    let mut byte = [0u8; 1];
    while byte[0] != b'\n' {
        stream.read_exact(&mut byte).await.unwrap();
        welcome.push(byte[0]);
    }
    let welcome = String::from_utf8_lossy(&welcome);
    assert!(
        welcome.contains("\"welcome\""),
        "{}: no welcome: {welcome}",
        place.name()
    );
    stream
}

/// Heartbeats (48 interfaces and the addresses) every `every` from
/// `offset` on, and answers every `trace_request` at once.
async fn serve(
    stream: TcpStream,
    place: Place,
    every: Duration,
    offset: Duration,
    answered: &Answered,
) {
    let name = place.name();
    let addresses = serde_json::to_string(&place.addresses()).unwrap();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
    let mut seq = 0u64;
    let (read, mut write) = stream.into_split();
    // `next_line` is cancel safe: a heartbeat due mid-line loses nothing.
    let mut lines = BufReader::new(read).lines();
    loop {
        tokio::select! {
            read = lines.next_line() => {
                let Ok(Some(line)) = read else { return };
                let started = Instant::now();
                if let Ok(CollectorMessage::TraceRequest { id, query }) =
                    serde_json::from_str::<CollectorMessage>(&line)
                {
                    let result = match query {
                        Ok(TraceQuery::Hop(hop)) => {
                            TraceAnswer::Hop(place.answer(hop.flow, Some(hop.ingress), started))
                        }
                        Ok(TraceQuery::Flow(flow)) => {
                            let ingress = flow.iif.clone();
                            TraceAnswer::Flow(place.answer(flow, ingress, started))
                        }
                        Ok(TraceQuery::Paths(_)) => TraceAnswer::error("a simulated agent answers hops only"),
                        Err(why) => TraceAnswer::error(why),
                    };
                    let mut out = serde_json::to_string(&TraceResult {
                        kind: TraceResultTag::TraceResult,
                        id,
                        result,
                    })
                    .unwrap();
                    out.push('\n');
                    if write.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                    answered.count.fetch_add(1, Ordering::Relaxed);
                    answered.micros.lock().unwrap().push(started.elapsed().as_micros() as u32);
                }
            }
            _ = tick.tick() => {
                seq += 1;
                let event = heartbeat(&name, seq, &addresses);
                if write.write_all(event.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A heartbeat with 48 interfaces up and the switch's addresses.
fn heartbeat(agent: &str, seq: u64, addresses: &str) -> String {
    use std::fmt::Write;
    let ts = humantime::format_rfc3339_millis(SystemTime::now());
    let mut out = format!(
        r#"{{"v":1,"agent":"{agent}","boot":"t1","seq":{seq},"ts":"{ts}","type":"heartbeat","uptime_s":{seq},"interfaces":["#
    );
    for i in 0..48 {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(out, r#"{sep}{{"name":"swp{i}","state":"up"}}"#);
    }
    let _ = writeln!(
        out,
        r#"],"addresses":{addresses},"spool_depth":0,"events_dropped":0,"firing":0}}"#
    );
    out
}

/// One response on a kept-alive connection: status and body.
async fn exchange(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> (u16, Vec<u8>) {
    stream
        .write_all(request)
        .await
        .expect("sending the request");
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head) = response.parse(buf).expect("an HTTP response") {
            let status = response.code.unwrap_or(0);
            let length = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| {
                    std::str::from_utf8(h.value)
                        .ok()?
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
                .expect("the collector's answers carry a Content-Length");
            while buf.len() < head + length {
                let n = stream.read(&mut chunk).await.expect("reading the body");
                assert!(n > 0, "the collector closed the connection mid-answer");
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[head..head + length].to_vec();
            buf.drain(..head + length);
            return (status, body);
        }
        let n = stream.read(&mut chunk).await.expect("reading the head");
        assert!(n > 0, "the collector closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// How many requests to time and where their figures go.
struct Timing {
    repeat: usize,
    warmup: usize,
    times: Option<String>,
    parts: Option<String>,
}

async fn post(addr: SocketAddr, token: &str, method: &str, path: &str, body: &str, timing: Timing) {
    let Timing {
        repeat,
        warmup,
        times: times_file,
        parts: parts_file,
    } = timing;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connecting to the API");
    stream.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    let mut times = Vec::with_capacity(repeat);
    let mut parts = Vec::new();
    let mut first = None;
    for i in 0..warmup + repeat {
        let started = Instant::now();
        let (status, answer) = exchange(&mut stream, request.as_bytes(), &mut buf).await;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        if status != 200 {
            eprintln!(
                "{method} {path} answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
            std::process::exit(1);
        }
        if i < warmup {
            continue;
        }
        times.push(elapsed);
        let answer: Value = serde_json::from_slice(&answer).expect("a JSON answer");
        if let Some(split) = split(&answer) {
            parts.push(split);
        }
        if first.is_none() {
            first = Some(answer);
        }
    }
    if let Some(file) = times_file {
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        for t in &times {
            writeln!(out, "{t:.4}").unwrap();
        }
    }
    if let Some(file) = parts_file {
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        for (walk, hops, agents) in &parts {
            writeln!(out, "{walk} {hops} {agents}").unwrap();
        }
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{method} {path}: {repeat} requests on one connection; min {:.2} ms, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms; {}",
        pct(0.0),
        pct(0.5),
        pct(0.95),
        pct(1.0),
        first.as_ref().map_or_else(String::new, describe)
    );
}

/// A single-path answer's own figures: the walk's wall time, the sum of
/// its hops' round trips as the collector measured them, and the sum of
/// the agents' own answer times, all in µs.
fn split(answer: &Value) -> Option<(u64, u64, u64)> {
    let walk = answer.get("elapsed_us")?.as_u64()?;
    let hops = answer.get("hops")?.as_array()?;
    let sum = |key: &str| hops.iter().filter_map(|h| h.get(key)?.as_u64()).sum();
    Some((walk, sum("elapsed_us"), sum("agent_elapsed_us")))
}

/// One line on what an answer says, so a reader sees the bench asked what
/// it meant to: the switches crossed, the paths found, the cells reached.
fn describe(answer: &Value) -> String {
    let agents = |hops: &Value| -> Vec<String> {
        hops.as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h.get("agent")?.as_str().map(str::to_string))
            .collect()
    };
    if let Some(cells) = answer.get("cells").and_then(Value::as_array) {
        let reach = cells.iter().filter(|c| c["reaches"] == true).count();
        return format!(
            "{} cells, {reach} reach; {} questions asked, {} from the cache",
            cells.len(),
            answer["asked"],
            answer["cached"]
        );
    }
    if let Some(paths) = answer.get("paths").and_then(Value::as_array) {
        let shown: Vec<String> = paths
            .iter()
            .map(|p| format!("[{}]", agents(&p["hops"]).join(" ")))
            .collect();
        return format!(
            "{} paths: {}; cut: {}",
            paths.len(),
            shown.join(" "),
            answer["cut"]
        );
    }
    if answer.get("outcome").is_none() {
        let text = answer.to_string();
        return text.chars().take(120).collect();
    }
    format!(
        "{} after {} hops: {}",
        answer["outcome"]["result"],
        answer["hops"].as_array().map_or(0, Vec::len),
        agents(&answer["hops"]).join(" -> ")
    )
}
