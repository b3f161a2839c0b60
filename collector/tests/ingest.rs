//! Agent connections against the collector in-process: acks follow commits,
//! duplicates are stored once, and wrong tokens or bad input end only the
//! connection that sent them.

use crate::util::{count_in, 
    AGENT_TOKEN, FakeAgent, Server, event, heartbeat, http_get, metric, now_ms, wait_for,
};
use hopwatch_wire::event::Event;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

fn heartbeats(agent: &str, boot: &str, seqs: std::ops::RangeInclusive<u64>) -> Vec<Event> {
    let at = now_ms();
    seqs.map(|seq| event(agent, boot, seq, at, heartbeat(&[("swp1", true)])))
        .collect()
}

#[test]
fn acks_come_only_after_the_commit() {
    let server = Server::start("acks", "", "");
    let (mut agent, welcome) =
        FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    assert_eq!(welcome.get("b1"), Some(&0));

    // With the store's write lock held elsewhere nothing can commit, and so
    // nothing may be acknowledged.
    let lock = server.hold_writes();
    agent.send(&heartbeats("leaf1", "b1", 1..=100)).unwrap();
    assert!(
        !agent.wait_acked("b1", 1, Duration::from_millis(1500)),
        "an ack arrived while the store could not commit"
    );
    lock.release();
    assert!(agent.wait_acked("b1", 100, Duration::from_secs(10)));
    assert_eq!(server.count("SELECT count(*) FROM events"), 100);

    // Streaming: whatever has been acknowledged is in the store already.
    for batch in 0..20u64 {
        let first = 101 + batch * 100;
        agent
            .send(&heartbeats("leaf1", "b1", first..=first + 99))
            .unwrap();
        let acked = agent.acked("b1") as i64;
        let stored = server.count(&format!("SELECT count(*) FROM events WHERE seq <= {acked}"),
        );
        assert_eq!(stored, acked, "acked {acked} but only {stored} stored");
    }
    assert!(agent.wait_acked("b1", 2100, Duration::from_secs(10)));
}

#[test]
fn resent_events_are_stored_once() {
    let server = Server::start("dups", "", "");
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    agent.send(&heartbeats("leaf1", "b1", 1..=100)).unwrap();
    assert!(agent.wait_acked("b1", 100, Duration::from_secs(10)));
    drop(agent);

    // A reconnecting agent hears what is stored, per boot it asks about,
    // and a resend of part of it is harmless.
    let (mut agent, welcome) =
        FakeAgent::connect_with(server.agents, AGENT_TOKEN, "leaf1", "b2", &["b1", "b2"]).unwrap();
    assert_eq!(welcome.get("b1"), Some(&100));
    assert_eq!(welcome.get("b2"), Some(&0));
    agent.send(&heartbeats("leaf1", "b1", 50..=150)).unwrap();
    assert!(agent.wait_acked("b1", 150, Duration::from_secs(10)));
    let db = server.dir.path.as_path();
    assert_eq!(count_in(db, "SELECT count(*) FROM events"), 150);
    assert_eq!(count_in(db, "SELECT count(DISTINCT seq) FROM events"), 150);
    let text = http_get(server.http, "/metrics", None).body;
    assert_eq!(
        metric(&text, "hopwatch_collector_events_duplicate_total"),
        51.0
    );
    assert_eq!(
        metric(
            &text,
            "hopwatch_collector_events_ingested_total{type=\"heartbeat\"}"
        ),
        150.0
    );
}

#[test]
fn a_duplicate_stored_behind_newer_events_never_sends_an_ack_backwards() {
    let server = Server::start("ack-order", "", "");
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    agent.send(&heartbeats("leaf1", "b1", 1..=5)).unwrap();
    assert!(agent.wait_acked("b1", 5, Duration::from_secs(10)));
    // The duplicate is committed alone, in a batch of its own, before the
    // next event arrives; the fake agent panics on an ack below one it had.
    agent.send(&heartbeats("leaf1", "b1", 2..=2)).unwrap();
    let duplicates = wait_for(Duration::from_secs(10), || {
        let text = http_get(server.http, "/metrics", None).body;
        let n = metric(&text, "hopwatch_collector_events_duplicate_total");
        (n >= 1.0).then_some(n)
    });
    assert_eq!(duplicates, Some(1.0));
    agent.send(&heartbeats("leaf1", "b1", 6..=6)).unwrap();
    assert!(agent.wait_acked("b1", 6, Duration::from_secs(10)));
}

#[test]
fn a_wrong_agent_token_is_refused_and_nothing_stored() {
    let server = Server::start("token", "", "");
    let refused = FakeAgent::connect(server.agents, "not-the-token", "intruder", "b1")
        .err()
        .unwrap();
    assert!(refused.contains("bad token"), "{refused}");
    // Events sent anyway, without waiting for the answer, go nowhere.
    let mut raw = TcpStream::connect(server.agents).unwrap();
    let hello = r#"{"type":"hello","protocol":2,"token":"wrong","agent":"intruder","boot":"b1","boots":[],"version":"x","addresses":[]}"#;
    let mut lines = format!("{hello}\n");
    for e in heartbeats("intruder", "b1", 1..=10) {
        lines.push_str(&e.to_json());
        lines.push('\n');
    }
    raw.write_all(lines.as_bytes()).unwrap();
    let mut answer = String::new();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = raw.read_to_string(&mut answer);
    assert!(answer.contains(r#""type":"refused""#), "{answer}");
    assert!(
        !answer.contains("wrong"),
        "the token is never echoed: {answer}"
    );

    let db = server.dir.path.as_path();
    assert_eq!(count_in(db, "SELECT count(*) FROM events"), 0);
    assert_eq!(count_in(db, "SELECT count(*) FROM agents"), 0);
    let text = http_get(server.http, "/metrics", None).body;
    assert_eq!(
        metric(
            &text,
            "hopwatch_collector_connections_rejected_total{reason=\"bad_token\"}"
        ),
        2.0
    );
}

#[test]
fn a_bad_agent_name_is_refused_with_the_real_reason() {
    let server = Server::start("badname", "", "");
    let long = "a".repeat(256);
    for (name, reason) in [
        (
            "leaf\t1",
            r#"agent name "leaf\t1": holds the control character '\t' at byte 4"#,
        ),
        (
            "leaf\u{0}1",
            r#"agent name "leaf\01": holds the control character '\0' at byte 4"#,
        ),
        (
            long.as_str(),
            "is 256 bytes long; agent names are at most 255 bytes",
        ),
        (" ", r#"agent name " ": is empty"#),
    ] {
        let refused = FakeAgent::connect(server.agents, AGENT_TOKEN, name, "b1")
            .err()
            .unwrap_or_else(|| panic!("{name:?} was welcomed"));
        assert!(refused.contains(reason), "{name:?}: {refused}");
        assert!(!refused.contains("token"), "{name:?}: {refused}");
    }
    assert_eq!(server.count("SELECT count(*) FROM agents"), 0);
}

#[test]
fn bad_input_ends_only_the_connection_that_sent_it() {
    let server = Server::start("badinput", "heartbeat_timeout = \"1s\"", "");
    // A well-behaved agent heartbeating throughout.
    let (good, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "good", "g").unwrap();
    let good = Arc::new(std::sync::Mutex::new(good));
    let stop = Arc::new(AtomicBool::new(false));
    let beating = {
        let good = Arc::clone(&good);
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let e = event("good", "g", seq, now_ms(), heartbeat(&[("swp1", true)]));
                good.lock().unwrap().send(&[e]).unwrap();
                thread::sleep(Duration::from_millis(200));
            }
            seq
        })
    };

    // Garbage after the hello.
    let (mut garbage, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "garbage", "b").unwrap();
    garbage.send_raw(b"this is not json\n").unwrap();
    let reason = garbage
        .wait_closed(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert!(reason.contains("expected an event"), "{reason}");

    // Garbage instead of a hello.
    let mut raw = TcpStream::connect(server.agents).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = raw.read_to_string(&mut answer);
    assert!(answer.contains("expected a hello"), "{answer}");

    // A 10 MiB line: refused once it passes max_line (1 MiB), long before
    // it is all sent.
    let (big, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "big", "b").unwrap();
    let mut stream = big.try_clone_stream();
    let sender = thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..160 {
            if stream.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let reason = big.wait_closed(Duration::from_secs(10)).unwrap().unwrap();
    assert!(reason.contains("max_line"), "{reason}");
    sender.join().unwrap();

    // Half a line, then silence: closed after the read timeout (3 × 1 s).
    let (mut half, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "half", "b").unwrap();
    half.send_raw(br#"{"v":1,"agent":"half","#).unwrap();
    let reason = half.wait_closed(Duration::from_secs(10)).unwrap().unwrap();
    assert!(reason.contains("nothing received"), "{reason}");

    stop.store(true, Ordering::Relaxed);
    let sent = beating.join().unwrap();
    let good = good.lock().unwrap();
    assert!(!good.is_closed(), "the well-behaved agent was disconnected");
    assert!(good.wait_acked("g", sent, Duration::from_secs(10)));

    let text = http_get(server.http, "/metrics", None).body;
    let rejected = |why: &str| {
        metric(
            &text,
            &format!("hopwatch_collector_connections_rejected_total{{reason=\"{why}\"}}"),
        )
    };
    assert_eq!(rejected("malformed"), 2.0);
    assert_eq!(rejected("line_too_long"), 1.0);
    assert_eq!(rejected("timeout"), 1.0);
    let db = server.dir.path.as_path();
    let stored = wait_for(Duration::from_secs(5), || {
        let n = count_in(db, "SELECT count(*) FROM events");
        (n == sent as i64).then_some(n)
    });
    assert_eq!(
        stored,
        Some(sent as i64),
        "only the good agent's events are stored"
    );
}
