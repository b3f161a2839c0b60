//! The web page's benchmark in a real headless Chromium, run by
//! `collector/bench/web.sh` against a seeded collector: time from navigation
//! start until the Links pages have drawn their data (Navigation Timing's
//! clock, `performance.now()`, when the first row or segment exists), and
//! the collector's RSS with many live Fleet pages open. Prints figures,
//! asserts none.

#[path = "../tests/browser/harness.rs"]
mod harness;

use harness::Browser;
use std::time::Duration;

fn usage() -> ! {
    eprintln!("usage: webbench --base URL --token-file PATH --pid PID [--loads N] [--pages N]");
    std::process::exit(2)
}

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Milliseconds from navigation start until `selector` exists, and the
/// bytes of the data calls the page made.
fn first_render(browser: &Browser, url: &str, selector: &str) -> (f64, u64) {
    browser.goto(url);
    let at = browser
        .wait_js(
            Duration::from_secs(30),
            "return document.querySelector(arguments[0]) ? performance.now() : null;",
            vec![serde_json::json!(selector)],
        )
        .unwrap_or_else(|| panic!("{url}: no {selector} within 30 s"));
    let bytes = browser.js(
        "return performance.getEntriesByType('resource')\
         .filter(e => e.name.includes('/api/'))\
         .reduce((n, e) => n + (e.decodedBodySize || 0), 0);",
        vec![],
    );
    (at.as_f64().unwrap(), bytes.as_u64().unwrap_or(0))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let (Some(base), Some(token_file), Some(pid)) =
        (get("--base"), get("--token-file"), get("--pid"))
    else {
        usage()
    };
    let loads: usize = get("--loads").map_or(20, |v| v.parse().unwrap_or_else(|_| usage()));
    let pages: usize = get("--pages").map_or(50, |v| v.parse().unwrap_or_else(|_| usage()));
    let token = std::fs::read_to_string(&token_file)
        .unwrap_or_else(|e| panic!("{token_file}: {e}"))
        .trim()
        .to_string();

    let browser = Browser::start("webbench");
    browser.sign_in(&base, &token);
    let views = [
        (
            "links/worst 30d",
            "/links/worst?window=30d",
            "#worst-table tr[data-interface]",
        ),
        (
            "links/timeline 30d",
            "/links/timeline?agent=seed0000&interface=eth1&window=30d",
            "#timeline svg rect[data-state]",
        ),
        (
            "links changes 60 min",
            "/links?minutes=60",
            "#changes-table",
        ),
    ];
    for (name, path, selector) in views {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..loads {
            let (ms, b) = first_render(&browser, &format!("{base}{path}"), selector);
            times.push(ms);
            bytes = b;
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{name}: first render p50 {:.0} ms, p95 {:.0} ms over {loads} loads; data {} KiB",
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            bytes / 1024
        );
    }

    browser.goto(&format!("{base}/fleet"));
    let idle = rss_kib(&pid);
    for _ in 1..pages {
        browser.open_window(&format!("{base}/fleet"));
        browser.wait_for("#fleet-table", Duration::from_secs(30));
    }
    // Every page polls each second; count the collector's answers to be sure
    // they do, over a few rounds.
    let polls = |b: &Browser| {
        b.js(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('/api/v1/fleet')).length;",
            vec![],
        )
        .as_u64()
        .unwrap_or(0)
    };
    let before = polls(&browser);
    std::thread::sleep(Duration::from_secs(5));
    let live = rss_kib(&pid);
    println!(
        "the last page polled {} times in 5 s",
        polls(&browser) - before
    );
    println!(
        "collector RSS: {} MiB before, {} MiB with {pages} live Fleet pages open ({:.2}x)",
        idle / 1024,
        live / 1024,
        live as f64 / idle.max(1) as f64
    );
}
