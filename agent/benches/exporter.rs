//! `cargo bench --bench exporter`: what `[output.prometheus]` costs in
//! process at 501 interfaces — the copy the agent's loop publishes each
//! tick, and the text a scrape renders on the exporter's thread. No root
//! needed: the rows are made up (every column filled, every link up at
//! 10 Gb/s, so every family has every interface). Prints figures, asserts
//! none. `agent/bench/exporter.sh` runs it beside the whole-process scrape
//! figures and node_exporter's. Options, after `--`:
//!   `--interfaces N`   rows per tick (default 501);
//!   `--iterations N`   timed runs of each measure (default 2000);
//!   `--json-out FILE`  also write the figures as JSON.

use hopwatch::config::Config;
use hopwatch::exporter::{Exporter, Own, PrometheusSettings, TickView, render};
use hopwatch::link::{LinkState, OperState};
use hopwatch::metric::COUNTER_COLUMNS;
use hopwatch::rule::Engine;
use hopwatch::source::CounterRow;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The agent binary's allocator, so a publish costs here what it costs there.
#[global_allocator]
static ALLOCATOR: hopwatch::memory::CountingAlloc = hopwatch::memory::CountingAlloc;

/// The tick bench's rules, so evaluation counting is priced over them.
const RULES: &str = include_str!("../bench/rules.toml");

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let interfaces = arg("--interfaces", 501);
    let iterations = arg("--iterations", 2000);
    let json_out = std::env::args().skip_while(|a| a != "--json-out").nth(1);
    let config = Config::parse(RULES, "agent/bench/rules.toml").expect("the bench rules");
    let engine = Engine::new(config.rules);
    let rows: Vec<CounterRow> = (0..interfaces)
        .map(|i| {
            let name = match i {
                0 => "lo".to_string(),
                i if i % 2 == 1 => format!("veth{}", i / 2),
                i => format!("vpeer{}", i / 2 - 1),
            };
            let counters: [u64; COUNTER_COLUMNS] =
                std::array::from_fn(|c| 1_000_000_007 * (i as u64 + 1) + c as u64);
            CounterRow::proc_net_dev(name, counters)
        })
        .collect();
    let link = LinkState {
        admin_up: true,
        carrier: true,
        oper: OperState::Up,
        carrier_changes: 2,
        speed_mbps: Some(10_000),
    };
    let settings = PrometheusSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: None,
    };
    let mut exporter = Exporter::start(&settings).expect("an exporter on loopback");
    let mut publish = || {
        let view = TickView {
            source_up: true,
            took: Duration::from_micros(900),
            skipped_ticks: 0,
            source_errors: 0,
            engine: &engine,
            outputs: &[],
            collector: None,
        };
        exporter.publish(view, rows.iter().map(|row| (row, Some(&link))));
    };
    for _ in 0..50 {
        publish();
    }
    let started = Instant::now();
    for _ in 0..iterations {
        publish();
    }
    let publish_us = started.elapsed().as_secs_f64() * 1e6 / iterations as f64;

    let published = exporter.latest();
    let mut out = String::new();
    render(&published, Own::default(), &mut out);
    let bytes = out.len();
    let series = out.lines().filter(|l| !l.starts_with('#')).count();
    let started = Instant::now();
    for _ in 0..iterations {
        let mut out = String::with_capacity(64 * 1024);
        render(black_box(&published), Own::default(), &mut out);
        black_box(out);
    }
    let render_us = started.elapsed().as_secs_f64() * 1e6 / iterations as f64;

    println!(
        "{interfaces} interfaces, {} rules: publish {publish_us:.1} us per tick (on the loop); \
         render {render_us:.1} us per scrape ({series} series, {bytes} bytes)",
        engine.rules().len()
    );
    if let Some(path) = json_out {
        let json = serde_json::json!({
            "interfaces": interfaces,
            "publish_us": publish_us,
            "render_us": render_us,
            "series": series,
            "bytes": bytes,
        });
        std::fs::write(&path, json.to_string()).expect("write --json-out");
    }
}
