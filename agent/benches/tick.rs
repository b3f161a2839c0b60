//! `cargo bench --bench tick`: what one agent tick costs with 500 interfaces
//! and 20 rules, and with 10 expression rules more, printed next to the bare
//! open+read of `/proc/net/dev` it can never avoid, all measured in the same
//! run. Prints figures, asserts none.
//!
//! As root it builds a network namespace of 250 veth pairs (501 interfaces
//! with `lo`) and moves its own thread into it; otherwise it says so and
//! measures the host's `/proc/net/dev`. Options, after `--`:
//!   `--netns NAME`     join this existing namespace instead of building one;
//!   `--pairs N`        veth pairs to build (default 250);
//!   `--iterations N`   timed runs of each measure (default 2000, paced 60);
//!   `--pace SECONDS`   one run of each measure per SECONDS instead of back to
//!                      back, so caches are as cold as the agent finds them;
//!   `--bare-only`      measure only the bare read;
//!   `--json-out FILE`  also write the figures as JSON (for `bench/agent.sh`).

use hopwatch::config::Config;
use hopwatch::event::Alert;
use hopwatch::link::{LinkState, LinkTable, OperState};
use hopwatch::rule::{Engine, Observation};
use hopwatch::source::procfs::ProcfsSource;
use hopwatch::source::{CounterSource, Snapshot};
use serde_json::json;
use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The agent binary's allocator (the heap count behind `memory_limit`), so a
/// tick here costs what it costs the agent.
#[global_allocator]
static ALLOCATOR: hopwatch::memory::CountingAlloc = hopwatch::memory::CountingAlloc;

/// The rule set `bench/agent.sh` gives the whole agent, so both views price
/// the same work.
const RULES: &str = include_str!("../bench/rules.toml");
/// Ten rules of arithmetic, `and`/`or`/`unless`, right-side expressions,
/// `changes` and `flaps`, added to [`RULES`] for the fourth measure.
const EXPR_RULES: &str = include_str!("../bench/rules_expr.toml");
/// Untimed runs before each measure: page cache, allocator and branch
/// predictors settle, and every 60 s window is full before (iii) is timed.
const WARMUP: usize = 70;
/// Back-to-back measures take turns in this many rounds, so a slow spell of
/// the machine lands on all of them rather than on one.
const ROUNDS: usize = 5;

struct Options {
    netns: Option<String>,
    pairs: usize,
    iterations: Option<usize>,
    pace: Option<Duration>,
    bare_only: bool,
    json_out: Option<PathBuf>,
}

const USAGE: &str = "options: --netns NAME, --pairs N, --iterations N, --pace SECONDS, \
                     --bare-only, --json-out FILE";

fn options() -> Result<Options, String> {
    let mut options = Options {
        netns: None,
        pairs: 250,
        iterations: None,
        pace: None,
        bare_only: false,
        json_out: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value; {USAGE}"));
        match arg.as_str() {
            // Cargo passes `--bench` to every bench target.
            "--bench" => {}
            "--bare-only" => options.bare_only = true,
            "--netns" => options.netns = Some(value("--netns")?),
            "--json-out" => options.json_out = Some(value("--json-out")?.into()),
            "--pairs" => {
                options.pairs = value("--pairs")?
                    .parse()
                    .map_err(|e| format!("--pairs: {e}"))?;
            }
            "--iterations" => {
                let n: usize = value("--iterations")?
                    .parse()
                    .map_err(|e| format!("--iterations: {e}"))?;
                options.iterations = Some(n.max(ROUNDS));
            }
            "--pace" => {
                let seconds: f64 = value("--pace")?
                    .parse()
                    .map_err(|e| format!("--pace: {e}"))?;
                options.pace =
                    Some(Duration::try_from_secs_f64(seconds).map_err(|e| format!("--pace: {e}"))?);
            }
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
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
/// `None` on kernels without `CONFIG_SCHED_DEBUG`. The count is brought up
/// to date only at scheduler events, so it serves for long batches only.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("se.sum_exec_runtime"))?;
    let ms: f64 = line.split(':').nth(1)?.trim().parse().ok()?;
    Some(Duration::from_secs_f64(ms / 1000.0))
}

/// Wall times of one measure, pooled over the rounds, and its CPU time when
/// it ran in batches long enough to count.
struct Samples {
    wall: Vec<Duration>,
    cpu: Option<Duration>,
}

impl Samples {
    fn new(batched: bool) -> Samples {
        Samples {
            wall: Vec::new(),
            cpu: batched.then_some(Duration::ZERO),
        }
    }

    fn run(&mut self, iterations: usize, mut f: impl FnMut()) {
        let cpu_before = self.cpu.and(thread_cpu());
        for _ in 0..iterations {
            let started = Instant::now();
            f();
            self.wall.push(started.elapsed());
        }
        self.cpu = match (self.cpu, cpu_before, thread_cpu()) {
            (Some(total), Some(before), Some(after)) => Some(total + (after - before)),
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

    fn json(&self) -> serde_json::Value {
        json!({
            "runs": self.wall.len(),
            "median_ms": ms(self.median()),
            "p99_ms": ms(self.p99()),
            "mean_ms": ms(self.mean()),
            "cpu_ms": self.cpu_mean().map(ms),
        })
    }

    fn print(&self, label: &str) {
        let cpu = self
            .cpu_mean()
            .map_or("n/a".to_string(), |d| format!("{:.3}", ms(d)));
        println!(
            "  {label:<38} {:>9.3} {:>9.3} {:>9.3} {cpu:>9}",
            ms(self.median()),
            ms(self.p99()),
            ms(self.mean()),
        );
    }
}

/// This process's anonymous resident memory, from `/proc/self/status`.
fn rss_anon_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
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

/// The engine and the state a tick needs, as the agent keeps them.
struct Ticker {
    source: ProcfsSource,
    engine: Engine,
    links: LinkTable,
    link_hints: Vec<usize>,
    /// Kept between ticks, as the agent keeps it.
    snapshot: Snapshot,
    alerts: Vec<Alert>,
    now: Instant,
    changes: usize,
}

impl Ticker {
    fn new(proc_root: &Path, rules: &str) -> Ticker {
        let config = Config::parse(rules, "agent/bench/rules.toml")
            .expect("agent/bench/rules.toml and rules_expr.toml are valid");
        let mut source = ProcfsSource::new(proc_root);
        // The agent learns link states from netlink; here every interface is
        // an up 10G link, so the link and utilisation rules have values.
        let mut links = LinkTable::default();
        for row in source.sample().expect("sample /proc/net/dev").rows {
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
        Ticker {
            source,
            engine: Engine::new(config.rules),
            links,
            link_hints: Vec::new(),
            snapshot: Snapshot::default(),
            alerts: Vec::new(),
            now: Instant::now(),
            changes: 0,
        }
    }

    /// (rule, interface) pairs the engine evaluates each tick.
    fn evaluations(&self) -> usize {
        self.links
            .iter()
            .map(|(name, _)| {
                let rules = self.engine.rules().iter();
                rules.filter(|r| r.interfaces.matches(name)).count()
            })
            .sum()
    }

    /// What `Agent::tick` does with the counters. Time is an argument: each
    /// tick is one second after the last, whatever the wall clock says.
    fn tick(&mut self) {
        self.now += Duration::from_secs(1);
        let snapshot = &mut self.snapshot;
        self.source
            .sample_into(snapshot)
            .expect("sample /proc/net/dev");
        let links = &self.links;
        self.link_hints.resize(snapshot.rows.len(), 0);
        self.engine.observe(
            self.now,
            snapshot
                .rows
                .iter()
                .zip(&mut self.link_hints)
                .map(|(row, hint)| Observation {
                    name: &row.name,
                    counters: &row.counters,
                    columns: row.columns,
                    link: links.get_hinted(&row.name, hint),
                }),
            &mut self.alerts,
        );
        self.changes += self.alerts.len();
        self.alerts.clear();
    }
}

fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("tick bench: {error}");
            std::process::exit(2);
        }
    };

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
    let mut snapshot = Snapshot::default();
    let paced = options.pace.is_some();
    let iterations = options.iterations.unwrap_or(if paced { 60 } else { 2000 });
    // Paced: one run of each measure per pace, a third of it apart. Back to
    // back: the measures take turns in ROUNDS batches.
    let (rounds, per_round, gap) = match options.pace {
        Some(pace) => (iterations, 1, pace / 3),
        None => (ROUNDS, iterations / ROUNDS, Duration::ZERO),
    };
    let how = match options.pace {
        Some(pace) => format!(
            "paced: one run of each measure every {:.2} s, caches as cold as the agent finds them",
            pace.as_secs_f64()
        ),
        None => format!("back to back, in {ROUNDS} interleaved rounds; caches warm"),
    };

    let anon_before = rss_anon_kib();
    let mut ticker = (!options.bare_only).then(|| Ticker::new(proc_root, RULES));
    for _ in 0..WARMUP {
        bare_read(&path, &mut buffer);
        if let Some(ticker) = &mut ticker {
            source
                .sample_into(&mut snapshot)
                .expect("sample /proc/net/dev");
            black_box(&snapshot);
            ticker.tick();
        }
    }
    // Every window is full after WARMUP one-second ticks, so this is what
    // the rule state holds in the steady state.
    let engine_kib = anon_before
        .zip(rss_anon_kib())
        .map(|(before, after)| after.saturating_sub(before));
    let anon_before = rss_anon_kib();
    let mut expr_ticker =
        (!options.bare_only).then(|| Ticker::new(proc_root, &format!("{RULES}\n{EXPR_RULES}")));
    if let Some(ticker) = &mut expr_ticker {
        for _ in 0..WARMUP {
            ticker.tick();
        }
    }
    let expr_kib = anon_before
        .zip(rss_anon_kib())
        .map(|(before, after)| after.saturating_sub(before));
    let mut bare = Samples::new(!paced);
    let mut sample = Samples::new(!paced);
    let mut full = Samples::new(!paced);
    let mut full_expr = Samples::new(!paced);
    for _ in 0..rounds {
        std::thread::sleep(gap);
        bare.run(per_round, || bare_read(&path, &mut buffer));
        if let (Some(ticker), Some(expr_ticker)) = (&mut ticker, &mut expr_ticker) {
            std::thread::sleep(gap);
            sample.run(per_round, || {
                source
                    .sample_into(&mut snapshot)
                    .expect("sample /proc/net/dev");
                black_box(&snapshot);
            });
            std::thread::sleep(gap);
            full.run(per_round, || ticker.tick());
            std::thread::sleep(gap);
            full_expr.run(per_round, || expr_ticker.tick());
        }
    }

    let runs = rounds * per_round;
    let Some(ticker) = ticker else {
        println!(
            "bare open+read of /proc/net/dev, {interfaces} interfaces in {place}, {runs} runs {how}:"
        );
        let cpu = bare
            .cpu_mean()
            .map_or(String::new(), |d| format!(", cpu/run {:.3} ms", ms(d)));
        println!(
            "  median {:.3} ms, p99 {:.3} ms, mean {:.3} ms{cpu}",
            ms(bare.median()),
            ms(bare.p99()),
            ms(bare.mean()),
        );
        write_json(
            &options,
            json!({ "interfaces": interfaces, "paced": paced, "bare": bare.json() }),
        );
        return;
    };

    let rules = ticker.engine.rules().len();
    let evaluations = ticker.evaluations();
    let expr_ticker = expr_ticker.expect("built with the first");
    let expr_rules = expr_ticker.engine.rules().len();
    let expr_evaluations = expr_ticker.evaluations();
    println!("hopwatch tick bench");
    println!("  counters from: {place}");
    println!(
        "  {interfaces} interfaces, {rules} rules ({evaluations} rule evaluations per tick), \
         {runs} timed runs of each measure, {how}"
    );
    println!();
    println!(
        "  {:<38} {:>9} {:>9} {:>9} {:>9}",
        "measure (ms per run)", "median", "p99", "mean", "cpu/run"
    );
    bare.print("(i)   bare open+read /proc/net/dev");
    sample.print("(ii)  ProcfsSource::sample_into");
    full.print("(iii) sample + Engine::observe");
    full_expr.print(&format!("(iv)  (iii) with {expr_rules} rules"));
    println!();
    println!(
        "  (iv): {} expression rules more, {expr_evaluations} rule evaluations per tick",
        expr_rules - rules
    );
    let engine = full.median().saturating_sub(sample.median());
    println!(
        "  parse cost    (ii)-(i)   median {:.3} ms",
        ms(sample.median().saturating_sub(bare.median()))
    );
    println!(
        "  engine cost   (iii)-(ii) median {:.3} ms, {:.0} ns per rule evaluation",
        ms(engine),
        engine.as_secs_f64() * 1e9 / evaluations.max(1) as f64
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
    println!(
        "  ratio (iv)/(i)   median {:.2}x   mean {:.2}x   (target <= 1.5x){}",
        ratio(full_expr.median(), bare.median()),
        ratio(full_expr.mean(), bare.mean()),
        match (full_expr.cpu_mean(), bare.cpu_mean()) {
            (Some(a), Some(b)) => format!("   cpu {:.2}x", ratio(a, b)),
            _ => String::new(),
        }
    );
    if let Some(kib) = engine_kib {
        println!(
            "  memory: rule state after {WARMUP} ticks (full windows) adds {:.2} MiB of anonymous RSS",
            kib as f64 / 1024.0
        );
    }
    if let Some(kib) = expr_kib {
        println!(
            "  memory: the {expr_rules}-rule engine's state after {WARMUP} ticks adds {:.2} MiB",
            kib as f64 / 1024.0
        );
    }
    if ticker.changes + expr_ticker.changes > 0 {
        println!(
            "  alert state changes during the run: {} and {}",
            ticker.changes, expr_ticker.changes
        );
    }
    write_json(
        &options,
        json!({
            "interfaces": interfaces,
            "rules": rules,
            "evaluations": evaluations,
            "engine_anon_kib": engine_kib,
            "paced": paced,
            "bare": bare.json(),
            "sample": sample.json(),
            "tick": full.json(),
            "expr_rules": expr_rules,
            "expr_evaluations": expr_evaluations,
            "expr_engine_anon_kib": expr_kib,
            "tick_expr": full_expr.json(),
        }),
    );
}

fn write_json(options: &Options, figures: serde_json::Value) {
    if let Some(path) = &options.json_out
        && let Err(error) = std::fs::write(path, figures.to_string())
    {
        eprintln!("tick bench: {}: {error}", path.display());
        std::process::exit(1);
    }
}
