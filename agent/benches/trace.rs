//! `cargo bench --bench trace`: what one in-process flow trace through the
//! library costs, printed next to the least any tracer pays — one raw
//! rtnetlink `RTM_GETROUTE` round trip for the same flow on an open socket —
//! both measured in the same run. Prints figures, asserts none.
//!
//! It measures the network namespace it runs in; `bench/trace.sh` runs it
//! inside its ECMP lab with `ip netns exec`, so /sys matches too. Options,
//! after `--`:
//!   `--dst IP`         the destination (default 127.0.0.1, which routes
//!                      anywhere);
//!   `--iterations N`   timed runs of each measure (default 20000).

use hopwatch::trace::{Backend, FlowQuery, KernelBackend};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Measures take turns in this many rounds, so a slow spell of the machine
/// lands on all of them rather than on one.
const ROUNDS: usize = 5;
const WARMUP: usize = 200;
const PROTO_TCP: u8 = 6;
const SPORT: u16 = 40000;
const DPORT: u16 = 443;

const USAGE: &str = "options: --dst IP, --iterations N";

struct Options {
    dst: IpAddr,
    iterations: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        dst: IpAddr::from([127, 0, 0, 1]),
        iterations: 20_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value; {USAGE}"));
        match arg.as_str() {
            // Cargo passes `--bench` to every bench target.
            "--bench" => {}
            "--dst" => {
                options.dst = value("--dst")?.parse().map_err(|e| format!("--dst: {e}"))?;
            }
            "--iterations" => {
                let n: usize = value("--iterations")?
                    .parse()
                    .map_err(|e| format!("--iterations: {e}"))?;
                options.iterations = n.max(ROUNDS);
            }
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    Ok(options)
}

/// Appends one rtnetlink attribute, padded to 4 bytes.
fn attribute(buffer: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let length = 4 + value.len();
    buffer.extend_from_slice(&(length as u16).to_ne_bytes());
    buffer.extend_from_slice(&kind.to_ne_bytes());
    buffer.extend_from_slice(value);
    buffer.resize(buffer.len().next_multiple_of(4), 0);
}

/// The bytes of `ip route get DST ipproto tcp sport N dport M`, as a C
/// client would write them: header, `rtmsg`, four attributes.
fn raw_request(dst: IpAddr) -> Vec<u8> {
    const RTM_GETROUTE: u16 = 26;
    const NLM_F_REQUEST: u16 = 1;
    const RTA_DST: u16 = 1;
    const RTA_IP_PROTO: u16 = 27;
    const RTA_SPORT: u16 = 28;
    const RTA_DPORT: u16 = 29;
    const AF_INET: u8 = 2;
    const AF_INET6: u8 = 10;
    let (family, prefix, address): (u8, u8, Vec<u8>) = match dst {
        IpAddr::V4(a) => (AF_INET, 32, a.octets().to_vec()),
        IpAddr::V6(a) => (AF_INET6, 128, a.octets().to_vec()),
    };
    let mut buffer = vec![0u8; 16];
    // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    buffer.extend_from_slice(&[family, prefix, 0, 0, 0, 0, 0, 0]);
    buffer.extend_from_slice(&0u32.to_ne_bytes());
    attribute(&mut buffer, RTA_DST, &address);
    attribute(&mut buffer, RTA_IP_PROTO, &[PROTO_TCP]);
    attribute(&mut buffer, RTA_SPORT, &SPORT.to_be_bytes());
    attribute(&mut buffer, RTA_DPORT, &DPORT.to_be_bytes());
    let length = buffer.len() as u32;
    buffer[0..4].copy_from_slice(&length.to_ne_bytes());
    buffer[4..6].copy_from_slice(&RTM_GETROUTE.to_ne_bytes());
    buffer[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    buffer
}

/// One raw round trip: a fresh sequence number, the request written, the
/// answer read into a kept buffer and not decoded.
struct RawQuery {
    socket: Socket,
    request: Vec<u8>,
    answer: Vec<u8>,
    sequence: u32,
}

impl RawQuery {
    fn new(dst: IpAddr) -> RawQuery {
        let mut socket = Socket::new(NETLINK_ROUTE).expect("rtnetlink socket");
        socket.bind_auto().expect("bind rtnetlink socket");
        RawQuery {
            socket,
            request: raw_request(dst),
            answer: Vec::with_capacity(8192),
            sequence: 0,
        }
    }

    /// The answer's message type: 24 (`RTM_NEWROUTE`) or 2 (an error).
    fn round_trip(&mut self) -> u16 {
        self.sequence = self.sequence.wrapping_add(1);
        self.request[8..12].copy_from_slice(&self.sequence.to_ne_bytes());
        self.socket
            .send_to(&self.request, &SocketAddr::new(0, 0), 0)
            .expect("send RTM_GETROUTE");
        self.answer.clear();
        self.socket
            .recv(&mut self.answer, 0)
            .expect("recv the answer");
        u16::from_ne_bytes([self.answer[4], self.answer[5]])
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn p99(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("trace bench: {error}");
            std::process::exit(2);
        }
    };
    let mut query = FlowQuery::new(options.dst);
    query.proto = Some(PROTO_TCP);
    query.sport = Some(SPORT);
    query.dport = Some(DPORT);

    let mut raw = RawQuery::new(options.dst);
    let kind = raw.round_trip();
    let mut backend = KernelBackend::new();
    let trace = match backend.trace(&query) {
        Ok(trace) => trace,
        Err(error) => {
            eprintln!("trace bench: tracing {}: {error}", options.dst);
            std::process::exit(1);
        }
    };
    println!(
        "flow: {}; raw answer type {kind} (24 = a route); library: {}",
        query.describe(),
        trace.summary
    );

    for _ in 0..WARMUP {
        black_box(raw.round_trip());
        black_box(backend.trace(&query).is_ok());
        black_box(hopwatch::trace::trace(&query).is_ok());
    }
    let per_round = options.iterations / ROUNDS;
    let (mut raw_times, mut kept_times, mut fresh_times) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for _ in 0..per_round {
            let started = Instant::now();
            black_box(raw.round_trip());
            raw_times.push(started.elapsed());
        }
        for _ in 0..per_round {
            let started = Instant::now();
            black_box(backend.trace(&query).is_ok());
            kept_times.push(started.elapsed());
        }
        for _ in 0..per_round {
            let started = Instant::now();
            black_box(hopwatch::trace::trace(&query).is_ok());
            fresh_times.push(started.elapsed());
        }
    }

    println!(
        "{} runs each, {ROUNDS} rounds; µs        median       p99",
        per_round * ROUNDS
    );
    let raw_median = median(&mut raw_times);
    for (label, samples) in [
        ("raw RTM_GETROUTE round trip", &mut raw_times),
        ("library trace, kept KernelBackend", &mut kept_times),
        ("library trace::trace(), fresh", &mut fresh_times),
    ] {
        let m = median(samples);
        println!(
            "  {label:<36} {:>9.2} {:>9.2}   {:.2}x raw",
            us(m),
            us(p99(samples)),
            m.as_secs_f64() / raw_median.as_secs_f64()
        );
    }
    println!("  target: a kept-backend trace <= 2x the raw round trip");
}
