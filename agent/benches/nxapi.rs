//! `cargo bench --bench nxapi`: what one tick of the `nxapi` counter source
//! costs the agent for a 96-port `show interface` reply, printed next to the
//! `procfs` source's tick over the interfaces of the namespace it runs in,
//! both measured in the same run. Prints figures, asserts none.
//!
//! The NX-API side is served by a thread of this process over a real unix
//! socket, with the reply rendered once beforehand, so the figure is the
//! agent's share of a poll: connect, request, read, parse, map. On a switch
//! NX-OS's own time to build the reply comes on top and is spent outside the
//! agent. CPU is the sampling thread's (`CLOCK_THREAD_CPUTIME_ID`), so the
//! server thread is not counted.
//!
//! `bench/nxapi.sh` runs this inside a namespace with 48 veth pairs (97
//! interfaces with `lo`), so both sources read about 96 interfaces. Options,
//! after `--`: `--iterations N` (default 2000).

use hopwatch::source::nxapi::NxapiSource;
use hopwatch::source::procfs::ProcfsSource;
use hopwatch::source::{CounterSource, Snapshot};
use nix::time::{ClockId, clock_gettime};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/nxapi/show_interface_96.json"
);
const ROUNDS: usize = 5;

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

/// Serves the pre-rendered reply to every connection.
fn serve(listener: UnixListener, reply: Vec<u8>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { return };
        let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let mut stream = stream;
        let _ = stream.write_all(&reply);
    }
}

struct Figure {
    cpu: Vec<Duration>,
    wall: Vec<Duration>,
}

impl Figure {
    fn median(values: &mut [Duration]) -> Duration {
        values.sort();
        values[values.len() / 2]
    }
}

fn measure(source: &mut dyn CounterSource, iterations: usize, figure: &mut Figure) -> usize {
    let mut snapshot = Snapshot::default();
    let mut rows = 0;
    for _ in 0..iterations {
        let (cpu, wall) = (thread_cpu(), Instant::now());
        source.sample_into(&mut snapshot).expect("a sample");
        figure.cpu.push(thread_cpu() - cpu);
        figure.wall.push(wall.elapsed());
        rows = snapshot.rows.len();
    }
    rows
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
    let body = std::fs::read(FIXTURE).expect("the 96-port fixture");
    let mut reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(&body);
    let dir = std::env::temp_dir().join(format!("hopwatch-bench-nxapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let socket = dir.join("nxapi.sock");
    let listener = UnixListener::bind(&socket).expect("bind the socket");
    std::thread::spawn(move || serve(listener, reply));

    let mut nxapi = NxapiSource::new(&socket, "admin", Duration::from_secs(5));
    let mut procfs = ProcfsSource::new(std::path::Path::new("/proc"));
    let per_round = (iterations / ROUNDS).max(1);
    let (mut n, mut p) = (
        Figure {
            cpu: vec![],
            wall: vec![],
        },
        Figure {
            cpu: vec![],
            wall: vec![],
        },
    );
    // Warm both up, then take turns so a slow spell lands on both.
    measure(
        &mut nxapi,
        50,
        &mut Figure {
            cpu: vec![],
            wall: vec![],
        },
    );
    measure(
        &mut procfs,
        50,
        &mut Figure {
            cpu: vec![],
            wall: vec![],
        },
    );
    let (mut nxapi_rows, mut procfs_rows) = (0, 0);
    for _ in 0..ROUNDS {
        nxapi_rows = measure(&mut nxapi, per_round, &mut n);
        procfs_rows = measure(&mut procfs, per_round, &mut p);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (n_cpu, n_wall) = (Figure::median(&mut n.cpu), Figure::median(&mut n.wall));
    let (p_cpu, p_wall) = (Figure::median(&mut p.cpu), Figure::median(&mut p.wall));
    println!("samples: {} per source, medians", per_round * ROUNDS);
    println!(
        "nxapi  source, {nxapi_rows} interfaces ({} KiB reply): cpu {:>8.1} us, wall {:>8.1} us",
        body.len() / 1024,
        n_cpu.as_secs_f64() * 1e6,
        n_wall.as_secs_f64() * 1e6
    );
    println!(
        "procfs source, {procfs_rows} interfaces:                cpu {:>8.1} us, wall {:>8.1} us",
        p_cpu.as_secs_f64() * 1e6,
        p_wall.as_secs_f64() * 1e6
    );
    println!(
        "nxapi / procfs: cpu {:.2}x, wall {:.2}x",
        n_cpu.as_secs_f64() / p_cpu.as_secs_f64(),
        n_wall.as_secs_f64() / p_wall.as_secs_f64()
    );
    if procfs_rows < 90 {
        println!(
            "note: this namespace has {procfs_rows} interfaces, not ~96; bench/nxapi.sh runs this among 97"
        );
    }
}
