//! Load generator for `collector/bench/collector.sh` and `postgres.sh`:
//! simulated agents that speak the wire protocol to a collector or spread
//! over several (ingest throughput and ack latency, a seeded link history, a
//! thousand idle agents heartbeating, the gap an agent sees when its
//! collector dies), an HTTP timer for the downtime query, and a plain syslog
//! sender for the rsyslog reference.

use clap::{Parser, Subcommand};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Notify};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Agents stream a mix of alert, link and heartbeat events as fast as
    /// the collector acknowledges them; prints events/s and ack latency.
    Ingest {
        /// One collector, or several separated by commas: agent `n` streams
        /// to the `n`th modulo their number.
        #[arg(long, value_delimiter = ',', required = true)]
        addr: Vec<SocketAddr>,
        #[arg(long)]
        token_file: String,
        #[arg(long, default_value_t = 100)]
        agents: usize,
        /// Events per agent.
        #[arg(long, default_value_t = 20_000)]
        events: u64,
        /// Events per write.
        #[arg(long, default_value_t = 200)]
        batch: u64,
        /// Unacknowledged events an agent allows itself at most.
        #[arg(long, default_value_t = 500)]
        window: u64,
    },
    /// Fills a collector with `events` link events over `interfaces`
    /// interfaces (100 per agent), stamped across the last 29 days.
    SeedLinks {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        token_file: String,
        #[arg(long, default_value_t = 10_000)]
        interfaces: u64,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// One agent streams link events to the first of `addr` until its
    /// session breaks, then moves as the agent does: the next address at
    /// once, a backoff from 100 ms doubling to 30 s only after a round in
    /// which every address failed, and resending from the welcome's
    /// `last_seq`. Prints, per move, when the first acknowledgement came
    /// from the new collector (Unix seconds), `moves` times.
    Failover {
        #[arg(long, value_delimiter = ',', required = true)]
        addr: Vec<SocketAddr>,
        #[arg(long)]
        token_file: String,
        #[arg(long, default_value_t = 3)]
        moves: usize,
        /// Events per second.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
    },
    /// Times GET `path` `repeat` times; prints min, median, p99 and max.
    Get {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        token_file: String,
        #[arg(long)]
        path: String,
        #[arg(long, default_value_t = 20)]
        repeat: usize,
    },
    /// Connects `agents` agents that heartbeat every `every` (48 interfaces
    /// each) for `seconds`.
    Idle {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        token_file: String,
        #[arg(long, default_value_t = 1000)]
        agents: usize,
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        every: Duration,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// Sends `messages` RFC 5424 messages (octet-counted, the size of an
    /// alert event) over `conns` TCP connections to a syslog server.
    Syslog {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long, default_value_t = 100)]
        conns: usize,
        #[arg(long, default_value_t = 2_000_000)]
        messages: u64,
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
            Mode::Ingest {
                addr,
                token_file,
                agents,
                events,
                batch,
                window,
            } => ingest(addr, &token(&token_file), agents, events, batch, window).await,
            Mode::SeedLinks {
                addr,
                token_file,
                interfaces,
                events,
            } => seed_links(addr, &token(&token_file), interfaces, events).await,
            Mode::Failover {
                addr,
                token_file,
                moves,
                rate,
            } => failover(&addr, &token(&token_file), moves, rate).await,
            Mode::Get {
                addr,
                token_file,
                path,
                repeat,
            } => get(addr, &token(&token_file), &path, repeat).await,
            Mode::Idle {
                addr,
                token_file,
                agents,
                every,
                seconds,
            } => idle(addr, &token(&token_file), agents, every, seconds).await,
            Mode::Syslog {
                addr,
                conns,
                messages,
            } => syslog(addr, conns, messages).await,
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

/// Connects, says hello, reads the welcome; returns the stream and the
/// welcome line.
async fn hello(addr: SocketAddr, token: &str, agent: &str, boot: &str) -> (TcpStream, String) {
    try_hello(addr, token, agent, boot)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// As [`hello`], with what went wrong instead of a panic.
async fn try_hello(
    addr: SocketAddr,
    token: &str,
    agent: &str,
    boot: &str,
) -> Result<(TcpStream, String), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).unwrap();
    let hello = format!(
        r#"{{"type":"hello","protocol":2,"token":"{token}","agent":"{agent}","boot":"{boot}","boots":["{boot}"],"version":"loadgen","addresses":[]}}"#
    );
    stream
        .write_all(format!("{hello}\n").as_bytes())
        .await
        .map_err(|e| format!("hello: {e}"))?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        stream
            .read_exact(&mut byte)
            .await
            .map_err(|e| format!("welcome: {e}"))?;
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    if !line.contains("welcome") {
        return Err(format!("no welcome: {line}"));
    }
    Ok((stream, line))
}

/// The `seq` of an ack line.
fn ack_seq(line: &str) -> Option<u64> {
    let i = line.find("\"seq\":")? + 6;
    let digits: String = line[i..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A heartbeat with 48 interfaces up.
fn heartbeat_event(out: &mut String, agent: &str, boot: &str, seq: u64, ts: &str) {
    use std::fmt::Write;
    let _ = write!(
        out,
        r#"{{"v":1,"agent":"{agent}","boot":"{boot}","seq":{seq},"ts":"{ts}","type":"heartbeat","uptime_s":{seq},"interfaces":["#
    );
    for i in 0..48 {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(out, r#"{sep}{{"name":"swp{i}","state":"up"}}"#);
    }
    out.push_str("],\"addresses\":[],\"spool_depth\":0,\"events_dropped\":0,\"firing\":0}\n");
}

/// Event `seq` of a simulated agent: 45% alerts, 45% link changes, 10%
/// heartbeats, cycling over 48 interfaces.
fn mixed_event(out: &mut String, agent: &str, seq: u64, ts: &str) {
    use std::fmt::Write;
    let head = format!(r#"{{"v":1,"agent":"{agent}","boot":"b1","seq":{seq},"ts":"{ts}","#);
    let iface = seq % 48;
    let round = seq / 48;
    match seq % 20 {
        0 | 1 => return heartbeat_event(out, agent, "b1", seq, ts),
        n if n % 2 == 0 => {
            let state = if round.is_multiple_of(2) {
                "firing"
            } else {
                "resolved"
            };
            let _ = write!(
                out,
                r#"{head}"type":"alert","state":"{state}","rule":"tx-errors","severity":"critical","interface":"swp{iface}","expr":"increase(tx_errors[5s]) > 3","value":7.0,"threshold":3.0,"message":"swp{iface} tx_errors increased by 7 in 5s (threshold 3)"}}"#
            );
        }
        _ => {
            let (state, previous) = if round.is_multiple_of(2) {
                ("down", "up")
            } else {
                ("up", "down")
            };
            let _ = write!(
                out,
                r#"{head}"type":"link","interface":"swp{iface}","state":"{state}","previous":"{previous}","carrier_changes":{round},"oper_state":"{state}","message":"swp{iface} went {state}"}}"#
            );
        }
    }
    out.push('\n');
}

struct Flow {
    acked: AtomicU64,
    wake: Notify,
    /// (last seq of a write, when it was written), oldest first.
    sent: Mutex<VecDeque<(u64, Instant)>>,
    latencies: Mutex<Vec<u32>>,
}

async fn ingest(
    addr: Vec<SocketAddr>,
    token: &str,
    agents: usize,
    events: u64,
    batch: u64,
    window: u64,
) {
    let addrs = addr;
    let barrier = Arc::new(Barrier::new(agents + 1));
    let mut tasks = Vec::new();
    for a in 0..agents {
        let token = token.to_string();
        let barrier = Arc::clone(&barrier);
        let addr = addrs[a % addrs.len()];
        tasks.push(tokio::spawn(async move {
            let name = format!("bench{a:04}-{}", std::process::id());
            let (stream, _) = hello(addr, &token, &name, "b1").await;
            let (read, mut write) = stream.into_split();
            let flow = Arc::new(Flow {
                acked: AtomicU64::new(0),
                wake: Notify::new(),
                sent: Mutex::new(VecDeque::new()),
                latencies: Mutex::new(Vec::new()),
            });
            let reader = {
                let flow = Arc::clone(&flow);
                tokio::spawn(async move {
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let Some(seq) = ack_seq(&line) else { continue };
                        flow.acked.store(seq, Ordering::Release);
                        let now = Instant::now();
                        let mut sent = flow.sent.lock().unwrap();
                        let mut lat = flow.latencies.lock().unwrap();
                        while let Some(&(last, at)) = sent.front() {
                            if last > seq {
                                break;
                            }
                            lat.push((now - at).as_micros() as u32);
                            sent.pop_front();
                        }
                        drop((sent, lat));
                        flow.wake.notify_one();
                        if seq >= events {
                            return;
                        }
                    }
                    panic!("the collector closed the connection");
                })
            };
            barrier.wait().await;
            let mut seq = 1;
            let mut buf = String::with_capacity(batch as usize * 400);
            while seq <= events {
                while seq - 1 - flow.acked.load(Ordering::Acquire) >= window {
                    flow.wake.notified().await;
                }
                buf.clear();
                let ts = rfc3339(now_ms());
                let last = (seq + batch - 1).min(events);
                for s in seq..=last {
                    mixed_event(&mut buf, &name, s, &ts);
                }
                flow.sent.lock().unwrap().push_back((last, Instant::now()));
                write.write_all(buf.as_bytes()).await.expect("write");
                seq = last + 1;
            }
            reader.await.unwrap();
            std::mem::take(&mut *flow.latencies.lock().unwrap())
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;
    let total = agents as u64 * events;
    println!(
        "ingest: {total} events from {agents} agents over {} collector(s) in {:.2}s = {:.0} events/s acknowledged; ack latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (window {window} events per agent)",
        addrs.len(),
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}

/// The welcome's `last_seq` for `boot`.
fn welcome_last_seq(welcome: &str, boot: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(welcome)
        .ok()
        .and_then(|w| w["last_seq"][boot].as_u64())
        .unwrap_or(0)
}

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

async fn failover(addrs: &[SocketAddr], token: &str, moves: usize, rate: u64) {
    let name = format!("failover-{}", std::process::id());
    let boot = "f1";
    let tick = Duration::from_millis(10);
    let per_tick = (rate / 100).max(1);
    let mut at = 0usize;
    let mut backoff = Duration::from_millis(100);
    let mut failed_in_round = 0usize;
    let mut moved = 0usize;
    let mut first = true;
    let mut broken_at: Option<f64> = None;
    while moved <= moves {
        let addr = addrs[at % addrs.len()];
        let (stream, welcome) = match try_hello(addr, token, &name, boot).await {
            Ok(ok) => ok,
            Err(_) => {
                at += 1;
                failed_in_round += 1;
                if failed_in_round >= addrs.len() {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    failed_in_round = 0;
                }
                continue;
            }
        };
        let welcomed_at = unix_seconds();
        let mut next_seq = welcome_last_seq(&welcome, boot) + 1;
        let (read, mut write) = stream.into_split();
        let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(seq) = ack_seq(&line) {
                    let _ = acks.send(seq);
                }
            }
        });
        let mut first_ack = true;
        let mut buf = String::new();
        let mut interval = tokio::time::interval(tick);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    buf.clear();
                    let ts = rfc3339(now_ms());
                    for seq in next_seq..next_seq + per_tick {
                        let (state, previous) = if seq % 2 == 0 { ("down", "up") } else { ("up", "down") };
                        buf.push_str(&format!(
                            r#"{{"v":1,"agent":"{name}","boot":"{boot}","seq":{seq},"ts":"{ts}","type":"link","interface":"eth{}","state":"{state}","previous":"{previous}","carrier_changes":{seq},"oper_state":"{state}","message":"flap"}}"#,
                            seq % 8
                        ));
                        buf.push('\n');
                    }
                    if write.write_all(buf.as_bytes()).await.is_err() {
                        break;
                    }
                    next_seq += per_tick;
                }
                seq = acked.recv() => {
                    let Some(seq) = seq else { break };
                    if first_ack {
                        first_ack = false;
                        backoff = Duration::from_millis(100);
                        failed_in_round = 0;
                        let now = unix_seconds();
                        if !first {
                            println!(
                                "failover: moved to {addr}; session lost at {:.6}, welcome at {welcomed_at:.6}, first ack (seq {seq}) at {now:.6}",
                                broken_at.unwrap_or(welcomed_at)
                            );
                        } else {
                            println!("failover: streaming to {addr}, first ack at {now:.6}");
                        }
                        moved += usize::from(!first);
                        first = false;
                        if moved == moves {
                            reader.abort();
                            return;
                        }
                    }
                }
            }
        }
        broken_at = Some(unix_seconds());
        reader.abort();
        // A working session ends: the next round starts at the first
        // address, the one that just failed tried last.
        at = if at.is_multiple_of(addrs.len()) { 1 } else { 0 };
    }
}

async fn seed_links(addr: SocketAddr, token: &str, interfaces: u64, events: u64) {
    let per_agent_ifaces = 100;
    let agents = interfaces.div_ceil(per_agent_ifaces);
    let per_agent = events / agents;
    let span_ms: i64 = 29 * 86_400_000;
    let start_ms = now_ms() - span_ms;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for a in 0..agents {
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            let name = format!("seed{a:04}");
            let (stream, _) = hello(addr, &token, &name, "s1").await;
            let (read, mut write) = stream.into_split();
            let acked = Arc::new(AtomicU64::new(0));
            let reader = {
                let acked = Arc::clone(&acked);
                tokio::spawn(async move {
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(seq) = ack_seq(&line) {
                            acked.store(seq, Ordering::Release);
                            if seq >= per_agent {
                                return;
                            }
                        }
                    }
                })
            };
            let mut buf = String::new();
            let step = span_ms / per_agent as i64;
            for seq in 1..=per_agent {
                while seq > acked.load(Ordering::Acquire) + 5_000 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let iface = seq % per_agent_ifaces;
                // Each interface alternates down, up: outages of random-ish
                // length as the interfaces interleave.
                let down = (seq / per_agent_ifaces) % 2 == 0;
                let (state, previous) = if down { ("down", "up") } else { ("up", "down") };
                let ts = rfc3339(start_ms + seq as i64 * step);
                buf.push_str(&format!(
                    r#"{{"v":1,"agent":"{name}","boot":"s1","seq":{seq},"ts":"{ts}","type":"link","interface":"eth{iface}","state":"{state}","previous":"{previous}","carrier_changes":{seq},"oper_state":"{state}","message":"eth{iface} went {state}"}}"#
                ));
                buf.push('\n');
                if buf.len() > 64 * 1024 || seq == per_agent {
                    write.write_all(buf.as_bytes()).await.unwrap();
                    buf.clear();
                }
            }
            reader.await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "seeded {} link events over {} interfaces ({agents} agents) in {:.1}s",
        per_agent * agents,
        agents * per_agent_ifaces,
        started.elapsed().as_secs_f64()
    );
}

async fn get(addr: SocketAddr, token: &str, path: &str, repeat: usize) {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..repeat {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        let mut body = Vec::new();
        stream.read_to_end(&mut body).await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(
            body.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
        size = body.len();
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "GET {path}: {repeat} requests, {size} bytes each; min {:.1} ms, median {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.0),
        pct(0.5),
        pct(0.95),
        pct(0.99),
        pct(1.0)
    );
}

async fn idle(addr: SocketAddr, token: &str, agents: usize, every: Duration, seconds: u64) {
    let connected = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for a in 0..agents {
        let token = token.to_string();
        let connected = Arc::clone(&connected);
        let failed = Arc::clone(&failed);
        tasks.push(tokio::spawn(async move {
            let name = format!("idle{a:04}-{}", std::process::id());
            let stream = match try_hello(addr, &token, &name, "i1").await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    failed.lock().unwrap().push(error);
                    return;
                }
            };
            connected.fetch_add(1, Ordering::Relaxed);
            let (read, mut write) = stream.into_split();
            tokio::spawn(async move {
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(_)) = lines.next_line().await {}
            });
            // Spread the fleet's heartbeats over the interval.
            tokio::time::sleep(every.mul_f64((a as f64) / agents as f64)).await;
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut seq = 1;
            let mut buf = String::new();
            while Instant::now() < end {
                buf.clear();
                heartbeat_event(&mut buf, &name, "i1", seq, &rfc3339(now_ms()));
                if write.write_all(buf.as_bytes()).await.is_err() {
                    return;
                }
                seq += 1;
                tokio::time::sleep(every).await;
            }
        }));
        if a % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Counted once every hello is answered (or failed), not when the last
    // connection was merely started.
    let deadline = Instant::now() + Duration::from_secs(seconds / 2).max(Duration::from_secs(5));
    while (connected.load(Ordering::Relaxed) as usize + failed.lock().unwrap().len()) < agents
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "idle: {} of {agents} agents connected in {:.2}s, heartbeating every {every:?} for {seconds}s",
        connected.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    let failed = failed.lock().unwrap().clone();
    if let Some(first) = failed.first() {
        println!(
            "idle: {} failed to connect; the first: {first}",
            failed.len()
        );
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn syslog(addr: SocketAddr, conns: usize, messages: u64) {
    let per = messages / conns as u64;
    // Connected one after the other: rsyslog's listen backlog is short, and
    // a burst of connects overflows it into SYN cookies and reset sessions.
    let mut streams = Vec::new();
    for _ in 0..conns {
        streams.push(
            TcpStream::connect(addr)
                .await
                .expect("connecting to syslog"),
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let started = Instant::now();
    let started_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut tasks = Vec::new();
    for (c, mut stream) in streams.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut buf = Vec::with_capacity(256 * 1024);
            for i in 0..per {
                let msg = format!(
                    "<186>1 2024-05-01T12:00:00.000Z leaf{c} hopwatch 1 alert - swp{} tx_errors increased by 7 in 5s (threshold 3) seq={i}",
                    i % 48
                );
                buf.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
                if buf.len() > 200 * 1024 {
                    stream.write_all(&buf).await.unwrap();
                    buf.clear();
                }
            }
            stream.write_all(&buf).await.unwrap();
            stream.shutdown().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "syslog: sent {} messages over {conns} connections in {:.2}s (started at {started_epoch:.6})",
        per * conns as u64,
        started.elapsed().as_secs_f64()
    );
}
