//! `cargo bench --bench tick`: what one agent tick costs with 500 interfaces
//! and 20 rules, printed next to the bare open+read of `/proc/net/dev` it can
//! never avoid, both measured in the same run. Prints figures, asserts none.
//!
//! As root it builds a network namespace of 250 veth pairs (501 interfaces
//! with `lo`) and moves its own thread into it; otherwise it says so and
//! measures the host's `/proc/net/dev`. Options, after `--`:
//!   `--netns NAME`   join this existing namespace instead of building one;
//!   `--pairs N`      veth pairs to build (default 250);
//!   `--iterations N` timed runs of each measure (default 2000);
//!   `--bare-only`    measure only the bare read and print it as one JSON
//!                    line (`bench/agent.sh` uses it as its reference).

use hopwatch::config::Config;
use hopwatch::event::Alert;
use hopwatch::link::{LinkState, LinkTable, OperState};
use hopwatch::rule::{Engine, Observation};
use hopwatch::source::CounterSource;
use hopwatch::source::procfs::ProcfsSource;
use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The rule set `bench/agent.sh` gives the whole agent, so both views price
/// the same work.
const RULES: &str = include_str!("../../bench/rules.toml");
/// Untimed runs before each measure: page cache, allocator and branch
/// predictors settle, and every 60 s window is full before (iii) is timed.
const WARMUP: usize = 70;
/// Measures take turns in this many rounds, so a slow spell of the machine
/// lands on all three rather than on one.
const ROUNDS: usize = 5;

struct Options {
    netns: Option<String>,
    pairs: usize,
    iterations: usize,
    bare_only: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        netns: None,
        pairs: 250,
        iterations: 2000,
        bare_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            // Cargo passes `--bench` to every bench target.
            "--bench" => {}
            "--bare-only" => options.bare_only = true,
            "--netns" => options.netns = Some(value("--netns")?),
            "--pairs" => {
                options.pairs = value("--pairs")?
                    .parse()
                    .map_err(|e| format!("--pairs: {e}"))?
            }
            "--iterations" => {
                options.iterations = value("--iterations")?
                    .parse()
                    .map_err(|e| format!("--iterations: {e}"))?
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; options: --netns NAME, --pairs N, --iterations N, --bare-only"
                ));
            }
        }
    }
    options.iterations = options.iterations.max(ROUNDS);
    Ok(options)
}

/// A namespace this bench made, deleted when dropped.
struct OwnedNetns(String);

impl Drop for OwnedNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Moves this thread into the named namespace. The bench is one thread, the
/// process's main one, so `/proc/self/net/dev` follows it there.
fn enter(name: &str) -> Result<(), String> {
    let path = format!("/var/run/netns/{name}");
    let file = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("setns {name}: {e}"))
}

/// Builds a namespace with `pairs` veth pairs, all up, and enters it.
fn build_netns(pairs: usize) -> Result<OwnedNetns, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not root".into());
    }
    let name = format!("hwtick{}", std::process::id());
    ip(&["netns", "add", &name])?;
    let owned = OwnedNetns(name);
    enter(&owned.0)?;
    // IPv6 autoconfiguration would send packets on every new link; the
    // counters should sit still as on a quiet switch. Absent without IPv6.
    for key in ["all", "default"] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{key}/disable_ipv6"), "1");
    }
    let mut batch = String::from("link set lo up\n");
    for i in 0..pairs {
        batch.push_str(&format!(
            "link add veth{i} type veth peer name vpeer{i}\nlink set veth{i} up\nlink set vpeer{i} up\n"
        ));
    }
    // Children inherit this thread's namespace, so no `-n` is needed.
    let mut child = Command::new("ip")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("ip -batch: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(batch.as_bytes())
        .map_err(|e| format!("ip -batch: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("ip -batch: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip -batch: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(owned)
}

/// This thread's CPU time so far, from the scheduler's nanosecond count;
/// `None` on kernels without `CONFIG_SCHED_DEBUG`.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("se.sum_exec_runtime"))?;
    let ms: f64 = line.split(':').nth(1)?.trim().parse().ok()?;
    Some(Duration::from_secs_f64(ms / 1000.0))
}

/// Wall times of one measure, pooled over the rounds, and its CPU time.
#[derive(Default)]
struct Samples {
    wall: Vec<Duration>,
    cpu: Option<Duration>,
}

impl Samples {
    fn run(&mut self, iterations: usize, mut f: impl FnMut()) {
        let cpu_before = thread_cpu();
        for _ in 0..iterations {
            let started = Instant::now();
            f();
            self.wall.push(started.elapsed());
        }
        self.cpu = match (cpu_before, thread_cpu()) {
            (Some(before), Some(after)) => Some(self.cpu.unwrap_or_default() + (after - before)),
            _ => None,
        };
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut wall = self.wall.clone();
        wall.sort_unstable();
        wall
    }

    fn median(&self) -> Duration {
        let wall = self.sorted();
        wall[wall.len() / 2]
    }

    fn p99(&self) -> Duration {
        let wall = self.sorted();
        wall[(wall.len() * 99 / 100).min(wall.len() - 1)]
    }

    fn mean(&self) -> Duration {
        self.wall.iter().sum::<Duration>() / self.wall.len() as u32
    }

    /// CPU per run; the timing calls themselves are included, at well under
    /// a microsecond each.
    fn cpu_mean(&self) -> Option<Duration> {
        self.cpu.map(|cpu| cpu / self.wall.len() as u32)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One bare open+read of the file, into a buffer kept between reads: the
/// least any reader of `/proc/net/dev` can pay.
fn bare_read(path: &Path, buffer: &mut String) {
    buffer.clear();
    File::open(path)
        .and_then(|mut file| file.read_to_string(buffer))
        .expect("read /proc/net/dev");
    black_box(buffer.len());
}

fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("tick bench: {error}");
            std::process::exit(2);
        }
    };

    // Where the counters come from, said in the output.
    let mut _owned = None;
    let place = match &options.netns {
        Some(name) => match enter(name) {
            Ok(()) => format!("network namespace {name}"),
            Err(error) => {
                eprintln!("tick bench: {error}");
                std::process::exit(1);
            }
        },
        None => match build_netns(options.pairs) {
            Ok(owned) => {
                let place = format!(
                    "network namespace {} ({} veth pairs built for this run)",
                    owned.0, options.pairs
                );
                _owned = Some(owned);
                place
            }
            Err(error) => format!(
                "the HOST's /proc/net/dev: cannot build a namespace ({error}); \
                 the figures are for this machine's interfaces, not 500"
            ),
        },
    };

    let proc_root = Path::new("/proc");
    let path = proc_root.join("net/dev");
    let mut source = ProcfsSource::new(proc_root);
    let interfaces = source.sample().expect("sample /proc/net/dev").rows.len();
    let mut buffer = String::new();

    if options.bare_only {
        for _ in 0..WARMUP {
            bare_read(&path, &mut buffer);
        }
        let mut bare = Samples::default();
        bare.run(options.iterations, || bare_read(&path, &mut buffer));
        let cpu = bare
            .cpu_mean()
            .map_or("null".to_string(), |d| format!("{:.4}", ms(d)));
        println!(
            "{{\"interfaces\":{interfaces},\"iterations\":{},\"median_ms\":{:.4},\"p99_ms\":{:.4},\"mean_ms\":{:.4},\"cpu_ms\":{cpu}}}",
            options.iterations,
            ms(bare.median()),
            ms(bare.p99()),
            ms(bare.mean()),
        );
        return;
    }

    let config = Config::parse(RULES, "bench/rules.toml").expect("bench/rules.toml is valid");
    let rules = config.rules.len();
    let mut engine = Engine::new(config.rules);
    // The agent learns link states from netlink; here every interface is an
    // up 10G link, so the link and utilisation rules have values to judge.
    let mut links = LinkTable::default();
    let first = source.sample().expect("sample /proc/net/dev");
    for row in &first.rows {
        links.set(
            &row.name,
            LinkState {
                admin_up: true,
                carrier: true,
                oper: OperState::Up,
                carrier_changes: 1,
                speed_mbps: Some(10_000),
            },
        );
    }
    let evaluations: usize = first
        .rows
        .iter()
        .map(|row| {
            engine
                .rules()
                .iter()
                .filter(|r| r.interfaces.matches(&row.name))
                .count()
        })
        .sum();

    // Time is an argument: each engine tick is one second after the last.
    let mut now = Instant::now();
    let mut alerts: Vec<Alert> = Vec::new();
    let mut fired = 0usize;
    let mut tick = |source: &mut ProcfsSource, engine: &mut Engine, now: &mut Instant| {
        *now += Duration::from_secs(1);
        let snapshot = source.sample().expect("sample /proc/net/dev");
        engine.observe(
            *now,
            snapshot.rows.iter().map(|row| Observation {
                name: &row.name,
                counters: &row.counters,
                link: links.get(&row.name),
            }),
            &mut alerts,
        );
        fired += alerts.len();
        alerts.clear();
    };

    for _ in 0..WARMUP {
        bare_read(&path, &mut buffer);
        black_box(source.sample().expect("sample /proc/net/dev"));
        tick(&mut source, &mut engine, &mut now);
    }
    let (mut bare, mut sample, mut full) =
        (Samples::default(), Samples::default(), Samples::default());
    let per_round = options.iterations / ROUNDS;
    for _ in 0..ROUNDS {
        bare.run(per_round, || bare_read(&path, &mut buffer));
        sample.run(per_round, || {
            black_box(source.sample().expect("sample /proc/net/dev"));
        });
        full.run(per_round, || tick(&mut source, &mut engine, &mut now));
    }

    println!("hopwatch tick bench");
    println!("  counters from: {place}");
    println!(
        "  {interfaces} interfaces, {rules} rules ({evaluations} rule evaluations per tick), \
         {} timed runs of each measure in {ROUNDS} interleaved rounds",
        per_round * ROUNDS
    );
    println!();
    println!(
        "  {:<38} {:>9} {:>9} {:>9} {:>9}",
        "measure (ms per run)", "median", "p99", "mean", "cpu/run"
    );
    let row = |label: &str, s: &Samples| {
        let cpu = s
            .cpu_mean()
            .map_or("n/a".to_string(), |d| format!("{:.3}", ms(d)));
        println!(
            "  {label:<38} {:>9.3} {:>9.3} {:>9.3} {cpu:>9}",
            ms(s.median()),
            ms(s.p99()),
            ms(s.mean()),
        );
    };
    row("(i)   bare open+read /proc/net/dev", &bare);
    row("(ii)  ProcfsSource::sample", &sample);
    row("(iii) sample + Engine::observe", &full);
    println!();
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "  parse cost    (ii)-(i)   median {:.3} ms",
        ms(sample.median().saturating_sub(bare.median()))
    );
    println!(
        "  engine cost   (iii)-(ii) median {:.3} ms",
        ms(full.median().saturating_sub(sample.median()))
    );
    println!(
        "  ratio (ii)/(i)   median {:.2}x",
        ratio(sample.median(), bare.median())
    );
    println!(
        "  ratio (iii)/(i)  median {:.2}x   mean {:.2}x   (target <= 1.5x)",
        ratio(full.median(), bare.median()),
        ratio(full.mean(), bare.mean())
    );
    if fired > 0 {
        println!("  alerts changed state during the run: {fired}");
    }
}
