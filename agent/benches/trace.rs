//! `cargo bench --bench trace`: what one in-process flow trace through the
//! library costs, printed next to the least any tracer pays — one raw
//! rtnetlink `RTM_GETROUTE` round trip for the same flow on an open socket —
//! both measured in the same run. Prints figures, asserts none.
//!
//! Between the two it prints the floor of a trace's own conversation: the
//! requests a kept backend sends, as raw bytes with nothing decoded. A trace
//! needs two dependent rounds — the neighbour and the egress counters can
//! only be asked once the route names the next hop and the interface — so
//! this is what the library would cost if its own work were free.
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
    route_request(dst, 0)
}

const NLM_F_REQUEST: u16 = 1;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// Sets a request's header: its length (the buffer's), type and flags.
fn finish(mut buffer: Vec<u8>, kind: u16) -> Vec<u8> {
    let length = buffer.len() as u32;
    buffer[0..4].copy_from_slice(&length.to_ne_bytes());
    buffer[4..6].copy_from_slice(&kind.to_ne_bytes());
    buffer[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    buffer
}

/// The route lookup with `rtm_flags`.
fn route_request(dst: IpAddr, flags: u32) -> Vec<u8> {
    const RTM_GETROUTE: u16 = 26;
    const RTA_IP_PROTO: u16 = 27;
    const RTA_SPORT: u16 = 28;
    const RTA_DPORT: u16 = 29;
    let (family, prefix, address): (u8, u8, Vec<u8>) = match dst {
        IpAddr::V4(a) => (AF_INET, 32, a.octets().to_vec()),
        IpAddr::V6(a) => (AF_INET6, 128, a.octets().to_vec()),
    };
    let mut buffer = vec![0u8; 16];
    // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    buffer.extend_from_slice(&[family, prefix, 0, 0, 0, 0, 0, 0]);
    buffer.extend_from_slice(&flags.to_ne_bytes());
    attribute(&mut buffer, RTA_DST, &address);
    attribute(&mut buffer, RTA_IP_PROTO, &[PROTO_TCP]);
    attribute(&mut buffer, RTA_SPORT, &SPORT.to_be_bytes());
    attribute(&mut buffer, RTA_DPORT, &DPORT.to_be_bytes());
    finish(buffer, RTM_GETROUTE)
}

/// `RTM_GETSTATS` for one link's 64-bit counters.
fn stats_request(ifindex: u32) -> Vec<u8> {
    const RTM_GETSTATS: u16 = 94;
    let mut buffer = vec![0u8; 16];
    // if_stats_msg: family, pads, ifindex, filter mask (IFLA_STATS_LINK_64).
    buffer.extend_from_slice(&[0; 4]);
    buffer.extend_from_slice(&ifindex.to_ne_bytes());
    buffer.extend_from_slice(&1u32.to_ne_bytes());
    finish(buffer, RTM_GETSTATS)
}

/// `RTM_GETNEIGH` for one address on one link.
fn neighbour_request(ifindex: u32, address: IpAddr) -> Vec<u8> {
    const RTM_GETNEIGH: u16 = 30;
    let (family, address): (u8, Vec<u8>) = match address {
        IpAddr::V4(a) => (AF_INET, a.octets().to_vec()),
        IpAddr::V6(a) => (AF_INET6, a.octets().to_vec()),
    };
    let mut buffer = vec![0u8; 16];
    // ndmsg: family, pads, ifindex, state, flags, type.
    buffer.extend_from_slice(&[family, 0, 0, 0]);
    buffer.extend_from_slice(&ifindex.to_ne_bytes());
    buffer.extend_from_slice(&[0; 4]);
    attribute(&mut buffer, RTA_DST, &address);
    finish(buffer, RTM_GETNEIGH)
}

/// The output interface and gateway a route answer names.
fn oif_and_gateway(answer: &[u8]) -> (u32, Option<IpAddr>) {
    let (mut oif, mut gateway) = (0, None);
    let mut at = 16 + 12;
    while at + 4 <= answer.len() {
        let length = u16::from_ne_bytes([answer[at], answer[at + 1]]) as usize;
        let kind = u16::from_ne_bytes([answer[at + 2], answer[at + 3]]);
        if length < 4 || at + length > answer.len() {
            break;
        }
        let value = &answer[at + 4..at + length];
        match (kind, value.len()) {
            (RTA_OIF, 4) => oif = u32::from_ne_bytes(value.try_into().unwrap()),
            (RTA_GATEWAY, 4) => gateway = Some(IpAddr::from(<[u8; 4]>::try_from(value).unwrap())),
            (RTA_GATEWAY, 16) => {
                gateway = Some(IpAddr::from(<[u8; 16]>::try_from(value).unwrap()));
            }
            _ => {}
        }
        at += length.next_multiple_of(4);
    }
    (oif, gateway)
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

/// A trace's conversation with the kernel as raw bytes, asked the way a
/// kept backend asks it: the route taken and the matching FIB entry in one
/// write, then the egress counters and the next hop's neighbour entry in a
/// second; each answer read by its own `recv`, nothing decoded but the
/// output interface and gateway the second round needs.
struct RawTrace {
    socket: Socket,
    dst: IpAddr,
    lookups: Vec<u8>,
    second: Vec<u8>,
    answer: Vec<u8>,
    sequence: u32,
}

impl RawTrace {
    fn new(dst: IpAddr) -> RawTrace {
        const RTM_F_LOOKUP_TABLE: u32 = 0x1000;
        const RTM_F_FIB_MATCH: u32 = 0x2000;
        let mut socket = Socket::new(NETLINK_ROUTE).expect("rtnetlink socket");
        socket.bind_auto().expect("bind rtnetlink socket");
        let table = if dst.is_ipv4() { RTM_F_LOOKUP_TABLE } else { 0 };
        let mut lookups = route_request(dst, table);
        lookups.extend(route_request(dst, table | RTM_F_FIB_MATCH));
        RawTrace {
            socket,
            dst,
            lookups,
            second: Vec::with_capacity(256),
            answer: Vec::with_capacity(8192),
            sequence: 0,
        }
    }

    /// Numbers each request in `requests` afresh.
    fn number(&mut self, second: bool) {
        let requests = if second {
            &mut self.second
        } else {
            &mut self.lookups
        };
        let mut at = 0;
        while at < requests.len() {
            self.sequence = self.sequence.wrapping_add(1);
            requests[at + 8..at + 12].copy_from_slice(&self.sequence.to_ne_bytes());
            at += u32::from_ne_bytes(requests[at..at + 4].try_into().unwrap()) as usize;
        }
    }

    fn receive(&mut self) {
        self.answer.clear();
        self.socket
            .recv(&mut self.answer, 0)
            .expect("recv an answer");
    }

    /// Both rounds; returns the egress interface's index.
    fn round_trips(&mut self) -> u32 {
        self.number(false);
        self.socket
            .send_to(&self.lookups, &SocketAddr::new(0, 0), 0)
            .expect("send the route lookups");
        self.receive();
        let (oif, gateway) = oif_and_gateway(&self.answer);
        self.receive();
        self.second.clear();
        self.second.extend(stats_request(oif));
        self.second
            .extend(neighbour_request(oif, gateway.unwrap_or(self.dst)));
        self.number(true);
        self.socket
            .send_to(&self.second, &SocketAddr::new(0, 0), 0)
            .expect("send the egress and neighbour lookups");
        self.receive();
        self.receive();
        oif
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
    let mut floor = RawTrace::new(options.dst);
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
        black_box(floor.round_trips());
        black_box(backend.trace(&query).is_ok());
        black_box(hopwatch::trace::trace(&query).is_ok());
    }
    let per_round = options.iterations / ROUNDS;
    let (mut raw_times, mut kept_times, mut fresh_times) = (Vec::new(), Vec::new(), Vec::new());
    let mut floor_times = Vec::new();
    for _ in 0..ROUNDS {
        for _ in 0..per_round {
            let started = Instant::now();
            black_box(raw.round_trip());
            raw_times.push(started.elapsed());
        }
        for _ in 0..per_round {
            let started = Instant::now();
            black_box(floor.round_trips());
            floor_times.push(started.elapsed());
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
        ("raw trace conversation, 2 rounds", &mut floor_times),
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
