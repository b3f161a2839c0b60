//! A scrape renders on the listener's thread from the copy the tick
//! published, so scrapes during the ticks leave the tick's duration, as the
//! agent itself reports it in `hopwatch_tick_seconds`, where it was.

use super::{Fixture, free_port, scrape, scrape_when_up, spawn_agent, value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Ticks measured per phase.
const TICKS: f64 = 20.0;
const INTERVAL: Duration = Duration::from_millis(250);

/// The agent's own figures: tick count, tick seconds summed, scrapes.
fn figures(addr: SocketAddr) -> (f64, f64, f64) {
    let (status, text) = scrape(addr, None).expect("scrape");
    assert_eq!(status, 200);
    let get = |key: &str| value(&text, key).unwrap_or_else(|| panic!("no {key}"));
    (
        get("hopwatch_tick_seconds_count"),
        get("hopwatch_tick_seconds_sum"),
        get("hopwatch_exporter_scrapes_total"),
    )
}

/// The mean tick over [`TICKS`] ticks while `scrapers` clients each scrape
/// about once a tick (four Prometheus servers at 4 Hz: far more than a
/// switch sees), and the scrapes answered meanwhile.
fn phase(addr: SocketAddr, scrapers: usize) -> (Duration, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..scrapers)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = scrape(addr, None);
                    std::thread::park_timeout(INTERVAL);
                }
            })
        })
        .collect();
    let (count0, sum0, scrapes0) = figures(addr);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (count1, sum1, scrapes1) = loop {
        // Checked four times a second, so the check itself is no load.
        std::thread::park_timeout(Duration::from_millis(250));
        let now = figures(addr);
        if now.0 - count0 >= TICKS {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "{TICKS} ticks did not come within 60 s"
        );
    };
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    let mean = Duration::from_secs_f64((sum1 - sum0) / (count1 - count0));
    (mean, scrapes1 - scrapes0)
}

#[test]
fn exporter_scrapes_during_a_500_interface_tick_do_not_delay_it() {
    let fixture = Fixture::new(501);
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = fixture.config("250ms", &format!("listen = \"{addr}\""));
    let _agent = spawn_agent(&config);
    let text = scrape_when_up(addr, None);
    let warm = crate::util::poll(Duration::from_secs(20), || {
        let (_, text) = scrape(addr, None).ok()?;
        (value(&text, "hopwatch_tick_seconds_count")? >= 4.0).then_some(text)
    });
    assert!(warm.is_some(), "the agent ticks: {text}");

    // Quiet and scraped phases alternate, so a change in the machine's
    // other load falls on both.
    let (mut quiet, mut busy, mut scrapes) = (Duration::ZERO, Duration::ZERO, 0.0);
    for _ in 0..2 {
        quiet += phase(addr, 0).0;
        let (mean, n) = phase(addr, 4);
        busy += mean;
        scrapes += n;
    }
    let (quiet, busy) = (quiet / 2, busy / 2);
    println!(
        "mean tick at 501 interfaces: {:.3} ms without scrapes, {:.3} ms with 4 clients scraping ({scrapes} scrapes in {} ticks)",
        quiet.as_secs_f64() * 1e3,
        busy.as_secs_f64() * 1e3,
        TICKS * 2.0,
    );
    assert!(
        scrapes >= TICKS * 4.0,
        "the clients scraped throughout: {scrapes} scrapes"
    );
    // The scrapes' rendering takes CPU the tick could have had on two
    // shared cores, and that is all: rendering on the tick's thread, or
    // under a lock it takes, would add whole renders to it.
    assert!(
        busy <= quiet.mul_f64(1.5) + Duration::from_millis(5),
        "scrapes delayed the tick: {busy:?} against {quiet:?}"
    );
}
