//! The real collector binary killed with SIGKILL again and again while fake
//! agents stream thousands of events and resend what was not acknowledged:
//! afterwards each event is stored exactly once, and no acknowledged event
//! was ever missing from the store after a restart.

use crate::util::{count_in, 
    AGENT_TOKEN, FakeAgent, Process, TempDir, event, free_port, heartbeat, link,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const AGENTS: usize = 4;
const EVENTS: u64 = 20_000;
const BATCH: u64 = 200;
/// Events an agent keeps unacknowledged at most, like a bounded spool
/// window.
const WINDOW: u64 = 4_000;

/// Streams events 1..=EVENTS of one boot the way the real agent does: on
/// each connection resume after what the collector holds, and drop from the
/// "spool" only what was acknowledged. Panics if the collector ever holds
/// less than it acknowledged.
fn agent(addr: SocketAddr, name: String, acked: Arc<AtomicU64>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut done = 0u64;
    while done < EVENTS {
        assert!(Instant::now() < deadline, "{name} did not finish");
        let (mut conn, welcome) = match FakeAgent::connect(addr, AGENT_TOKEN, &name, "b1") {
            Ok(c) => c,
            Err(_) => {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let stored = welcome.get("b1").copied().unwrap_or(0);
        assert!(
            stored >= done,
            "{name}: the collector acknowledged {done} but holds only {stored} after a restart"
        );
        // What the welcome says is stored counts as acknowledged, as it does
        // for the real agent: the collector acks nothing it is not sent.
        done = stored;
        acked.store(done, Ordering::Relaxed);
        if done >= EVENTS {
            break;
        }
        let mut next = stored + 1;
        'stream: while next <= EVENTS {
            let last = (next + BATCH - 1).min(EVENTS);
            let events: Vec<_> = (next..=last)
                .map(|seq| {
                    let body = if seq % 10 == 0 {
                        link(&format!("swp{}", seq % 7), seq % 20 == 0)
                    } else {
                        heartbeat(&[("swp1", true)])
                    };
                    event(&name, "b1", seq, 1_700_000_000_000 + seq as i64, body)
                })
                .collect();
            if conn.send(&events).is_err() {
                break;
            }
            next = last + 1;
            // Keep the unacknowledged window bounded.
            while next - 1 - conn.acked("b1") > WINDOW {
                if conn.is_closed() {
                    break 'stream;
                }
                thread::sleep(Duration::from_millis(1));
            }
            done = done.max(conn.acked("b1"));
            acked.store(done, Ordering::Relaxed);
        }
        conn.wait_acked("b1", EVENTS, Duration::from_secs(5));
        done = done.max(conn.acked("b1"));
        acked.store(done, Ordering::Relaxed);
    }
}

#[test]
fn sigkill_loses_nothing_and_stores_each_event_once() {
    let dir = TempDir::new("crash");
    let (agents_port, http_port) = (free_port(), free_port());
    let mut collector = Process::start(&dir.path, agents_port, http_port, "", "");
    let addr = collector.agents;
    let progress: Vec<Arc<AtomicU64>> = (0..AGENTS).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let threads: Vec<_> = progress
        .iter()
        .enumerate()
        .map(|(i, acked)| {
            let acked = Arc::clone(acked);
            thread::spawn(move || agent(addr, format!("leaf{i}"), acked))
        })
        .collect();

    // Kill it mid-stream several times; each kill must land while events
    // are still unacknowledged, or it would prove nothing.
    let mut kills_mid_stream = 0;
    for round in 0..4 {
        thread::sleep(Duration::from_millis(150 + 100 * round));
        let acked: u64 = progress.iter().map(|p| p.load(Ordering::Relaxed)).sum();
        collector.kill();
        if acked < AGENTS as u64 * EVENTS {
            kills_mid_stream += 1;
        }
        collector = Process::spawn(&collector.config.clone(), agents_port, http_port);
    }
    for t in threads {
        t.join().expect("an agent thread failed");
    }
    assert!(
        kills_mid_stream >= 3,
        "only {kills_mid_stream} kills landed mid-stream"
    );
    assert!(collector.terminate().success());

    let db = dir.path.as_path();
    for i in 0..AGENTS {
        let per = |what: &str| {
            count_in(
                db,
                &format!(
                    "SELECT {what} FROM events e JOIN boots b ON b.id = e.boot_id
                     JOIN agents a ON a.id = b.agent_id WHERE a.name = 'leaf{i}'"
                ),
            )
        };
        assert_eq!(per("count(*)"), EVENTS as i64, "leaf{i}");
        assert_eq!(per("count(DISTINCT e.seq)"), EVENTS as i64, "leaf{i}");
        assert_eq!(per("min(e.seq)"), 1);
        assert_eq!(per("max(e.seq)"), EVENTS as i64);
    }
    // Derived state agrees: each link event became one change.
    assert_eq!(
        count_in(db, "SELECT count(*) FROM link_changes"),
        AGENTS as i64 * (EVENTS / 10) as i64
    );
}
