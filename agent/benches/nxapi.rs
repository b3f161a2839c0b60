//! `cargo bench --bench nxapi`: what one tick of each NX-OS counter source
//! costs the agent for 96 ports, and what it asks of the switch, all
//! measured in the same run: the `dme` source (one DME query), the `nxapi`
//! source (`show interface counters`, then `show interface counters
//! errors`), the full `show interface` the `nxapi` source asked before, and
//! the `procfs` source over the interfaces of the namespace it runs in.
//! Prints figures, asserts none.
//!
//! The NX-API side is served by a thread of this process over a real unix
//! socket, with every reply rendered once beforehand, so the figure is the
//! agent's share of a poll: connect, request, read, parse, map. On a switch
//! NX-OS's own time to build the reply comes on top and is spent outside the
//! agent; what the switch is asked is given as requests and reply bytes per
//! minute. CPU is the sampling thread's (`CLOCK_THREAD_CPUTIME_ID`), so the
//! server thread is not counted.
//!
//! `bench/nxapi.sh` runs this inside a namespace with 48 veth pairs (97
//! interfaces with `lo`), so every source reads about 96 interfaces.
//! Options, after `--`: `--iterations N` (default 2000).

use hopwatch::source::dme::DmeSource;
use hopwatch::source::nxapi::{
    CountersSource, NxapiSource, SHOW_COUNTERS, SHOW_COUNTERS_ERRORS, SHOW_INTERFACE,
};
use hopwatch::source::procfs::ProcfsSource;
use hopwatch::source::{CounterSource, Snapshot};
use nix::time::{ClockId, clock_gettime};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/nxapi/");
const ROUNDS: usize = 5;
/// The default interval on NX-OS.
const NXOS_INTERVAL_S: u64 = 10;

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The same JSON without its indentation, for comparing sizes fairly: the
/// CLI's answers come indented, the DME's do not.
fn compact(json: &[u8]) -> usize {
    let value: serde_json::Value = serde_json::from_slice(json).expect("fixture JSON");
    serde_json::to_vec(&value).expect("serialize").len()
}

fn http(body: &[u8]) -> Vec<u8> {
    let mut reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(body);
    reply
}

/// The pre-rendered answers: the DME query, and each CLI command.
struct Replies {
    dme: Vec<u8>,
    show_interface: Vec<u8>,
    counters: Vec<u8>,
    errors: Vec<u8>,
}

/// Serves each connection the answer its request asks for.
fn serve(listener: UnixListener, replies: Arc<Replies>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { return };
        let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        let mut length = 0;
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let get = line.starts_with("GET ");
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let reply = if get {
            &replies.dme
        } else {
            let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            match request["ins_api"]["input"].as_str().unwrap_or_default() {
                SHOW_COUNTERS => &replies.counters,
                SHOW_COUNTERS_ERRORS => &replies.errors,
                SHOW_INTERFACE => &replies.show_interface,
                other => panic!("no reply for {other:?}"),
            }
        };
        let mut stream = stream;
        let _ = stream.write_all(reply);
    }
}

/// One source under measurement, and what one of its polls asks.
struct Case {
    label: &'static str,
    source: Box<dyn CounterSource>,
    requests: u64,
    /// Reply bytes per poll as sent, and without indentation.
    bytes: usize,
    compact: usize,
    cpu: Vec<Duration>,
    wall: Vec<Duration>,
    rows: usize,
}

impl Case {
    fn measure(&mut self, iterations: usize, keep: bool) {
        let mut snapshot = Snapshot::default();
        for _ in 0..iterations {
            let (cpu, wall) = (thread_cpu(), Instant::now());
            self.source.sample_into(&mut snapshot).expect("a sample");
            if keep {
                self.cpu.push(thread_cpu() - cpu);
                self.wall.push(wall.elapsed());
            }
            self.rows = snapshot.rows.len();
        }
    }

    fn medians(&mut self) -> (f64, f64) {
        let median = |values: &mut Vec<Duration>| {
            values.sort();
            values[values.len() / 2].as_secs_f64() * 1e6
        };
        (median(&mut self.cpu), median(&mut self.wall))
    }
}

fn kib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}

fn main() {
    let mut iterations = 2000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {}
            "--iterations" => {
                iterations = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--iterations N");
            }
            other => panic!("unknown argument {other:?}; options: --iterations N"),
        }
    }
    let (dme, show_interface, counters, errors) = (
        fixture("dme_counters_96.json"),
        fixture("show_interface_96.json"),
        fixture("show_interface_counters_96.json"),
        fixture("show_interface_counters_errors_96.json"),
    );
    let replies = Arc::new(Replies {
        dme: http(&dme),
        show_interface: http(&show_interface),
        counters: http(&counters),
        errors: http(&errors),
    });
    let dir = std::env::temp_dir().join(format!("hopwatch-bench-nxapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let socket = dir.join("nxapi.sock");
    let listener = UnixListener::bind(&socket).expect("bind the socket");
    std::thread::spawn(move || serve(listener, replies));

    let timeout = Duration::from_secs(5);
    let case = |label, source: Box<dyn CounterSource>, requests, bodies: &[&Vec<u8>]| Case {
        label,
        source,
        requests,
        bytes: bodies.iter().map(|b| b.len()).sum(),
        compact: bodies.iter().map(|b| compact(b)).sum(),
        cpu: Vec::new(),
        wall: Vec::new(),
        rows: 0,
    };
    let mut cases = [
        case(
            "dme (one DME query)",
            Box::new(DmeSource::new(&socket, "admin", timeout)),
            1,
            &[&dme],
        ),
        case(
            "nxapi (counters + errors)",
            Box::new(CountersSource::new(&socket, "admin", timeout)),
            2,
            &[&counters, &errors],
        ),
        case(
            "show interface (before)",
            Box::new(NxapiSource::new(&socket, "admin", timeout)),
            1,
            &[&show_interface],
        ),
        case(
            "procfs",
            Box::new(ProcfsSource::new(std::path::Path::new("/proc"))),
            0,
            &[],
        ),
    ];
    // Warm every source up, then take turns so a slow spell lands on all.
    for case in &mut cases {
        case.measure(50, false);
    }
    let per_round = (iterations / ROUNDS).max(1);
    for _ in 0..ROUNDS {
        for case in &mut cases {
            case.measure(per_round, true);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "samples: {} per source, medians; CPU of the sampling thread",
        per_round * ROUNDS
    );
    println!(
        "{:<27} {:>5} {:>9} {:>22} {:>10} {:>10}",
        "source", "rows", "req/poll", "reply KiB/poll (compact)", "cpu us", "wall us"
    );
    let mut cpu = Vec::new();
    for case in &mut cases {
        let (c, w) = case.medians();
        cpu.push(c);
        let size = if case.requests == 0 {
            "-".to_string()
        } else {
            format!(
                "{:.1} ({:.1})",
                kib(case.bytes as u64),
                kib(case.compact as u64)
            )
        };
        println!(
            "{:<27} {:>5} {:>9} {:>22} {:>10.1} {:>10.1}",
            case.label, case.rows, case.requests, size, c, w
        );
    }
    println!(
        "cpu vs show interface: dme {:.2}x, nxapi {:.2}x; vs procfs: dme {:.2}x, nxapi {:.2}x",
        cpu[0] / cpu[2],
        cpu[1] / cpu[2],
        cpu[0] / cpu[3],
        cpu[1] / cpu[3]
    );
    println!("asked of the switch per minute:");
    let polls = 60 / NXOS_INTERVAL_S;
    for case in &cases[..3] {
        println!(
            "  {:<27} every {NXOS_INTERVAL_S:>2} s: {:>3} requests, {:>8.1} KiB",
            case.label,
            polls * case.requests,
            kib(polls * case.bytes as u64)
        );
    }
    let before = &cases[2];
    println!(
        "  {:<27} every  1 s: {:>3} requests, {:>8.1} KiB (what the agent asked before)",
        before.label,
        60 * before.requests,
        kib(60 * before.bytes as u64)
    );
    if cases[3].rows < 90 {
        println!(
            "note: this namespace has {} interfaces, not ~96; bench/nxapi.sh runs this among 97",
            cases[3].rows
        );
    }
}
