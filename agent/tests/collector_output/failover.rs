//! An agent listing several collectors, against the real
//! `hopwatch-collector` and its SQLite store: a first address nobody
//! listens on is passed over at once, a collector SIGKILLed mid-stream is
//! replaced by the next without losing an event, and a collector that
//! comes back gets the agent again only when the session it moved to ends.

use super::*;
use crate::silences::RealCollector;

/// Every seq the collector in `dir` stored (one agent, one boot here).
fn stored(dir: &Path) -> BTreeSet<u64> {
    let db = dir.join("collector/hopwatch.db");
    let Ok(conn) = rusqlite::Connection::open(&db) else {
        return BTreeSet::new();
    };
    let Ok(mut statement) = conn.prepare("SELECT seq FROM events") else {
        return BTreeSet::new();
    };
    statement
        .query_map([], |row| row.get::<_, i64>(0))
        .map(|rows| rows.filter_map(Result::ok).map(|s| s as u64).collect())
        .unwrap_or_default()
}

/// The body of `[output.collector]` listing `ports` in that order, with
/// the token the real collectors in `dir` expect.
fn listing(dir: &Path, ports: &[u16]) -> String {
    let list: Vec<String> = ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    format!(
        "address = [{}]\ntoken_file = \"{}\"\n",
        list.join(", "),
        dir.join("agent-token").display()
    )
}

/// Waits until the store in `dir` holds at least `count` seqs.
fn until_stored(dir: &Path, count: usize, what: &str) -> BTreeSet<u64> {
    crate::util::poll(Duration::from_secs(30), || {
        let seqs = stored(dir);
        (seqs.len() >= count).then_some(seqs)
    })
    .unwrap_or_else(|| panic!("the store never held {what}: {:?}", stored(dir)))
}

/// `a..=b` missing from `have`.
fn missing(have: &BTreeSet<u64>, range: std::ops::RangeInclusive<u64>) -> Vec<u64> {
    range.filter(|s| !have.contains(s)).collect()
}

#[test]
fn a_first_address_that_refuses_connections_fails_over_to_the_second() {
    const TEST: &str = "a_first_address_that_refuses_connections_fails_over_to_the_second";
    let fx = Fixture::new();
    let dir = fx.dir.path().join("b");
    let Some(b) = RealCollector::start(TEST, &dir) else {
        return;
    };
    let closed = free_port();
    let second = format!("127.0.0.1:{}", b.agents);
    let mut agent = fx.spawn(&fx.config("100ms", &listing(&dir, &[closed, b.agents])));

    let status = fx.collector_until(Duration::from_secs(15), "connected to the second", |c| {
        c["state"] == "connected" && c["address"] == second.as_str()
    });
    assert_eq!(
        status["addresses"],
        json!([format!("127.0.0.1:{closed}"), second]),
        "{status:#}"
    );
    assert_eq!(status["order"], "in_order");
    until_stored(&dir, 20, "20 events");
    // Every event up to what the agent has spooled arrives, nothing else
    // goes missing on the way.
    let status = fx.collector_until(Duration::from_secs(10), "everything acknowledged", |c| {
        c["boots"][0]["acked_seq"].as_u64() >= Some(20)
    });
    let acked = status["boots"][0]["acked_seq"].as_u64().unwrap();
    let seqs = stored(&dir);
    assert_eq!(missing(&seqs, 1..=acked), Vec::<u64>::new());
    assert_eq!(status["connects"], 1, "straight to the second: {status:#}");

    let text = hopwatch()
        .args(["status", "--socket"])
        .arg(fx.state().join("hopwatch.sock"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("{second} connected"))
            && text.contains(&format!(
                "collectors 127.0.0.1:{closed}, {second} (in order)"
            )),
        "{text}"
    );
    assert!(agent.stop());
    assert!(
        agent.stderr().contains(&format!(
            "Collector 127.0.0.1:{closed} failed; trying {second}."
        )),
        "the failover is logged, naming both: {}",
        agent.stderr()
    );
}

#[test]
fn a_collector_sigkilled_mid_stream_is_replaced_by_the_next_and_nothing_is_lost() {
    const TEST: &str =
        "a_collector_sigkilled_mid_stream_is_replaced_by_the_next_and_nothing_is_lost";
    let fx = Fixture::new();
    let (dir_a, dir_b) = (fx.dir.path().join("a"), fx.dir.path().join("b"));
    let Some(a) = RealCollector::start(TEST, &dir_a) else {
        return;
    };
    let Some(b) = RealCollector::start(TEST, &dir_b) else {
        return;
    };
    let (port_a, port_b) = (a.agents, b.agents);
    let _agent = fx.spawn(&fx.config("100ms", &listing(&dir_a, &[port_a, port_b])));
    fx.collector_until(Duration::from_secs(15), "connected to A", |c| {
        c["state"] == "connected" && c["address"] == format!("127.0.0.1:{port_a}").as_str()
    });
    // Events stream to A; it is killed between two of them.
    until_stored(&dir_a, 15, "15 events on A");
    drop(a);
    let on_a = stored(&dir_a);
    let last_a = on_a.iter().max().copied().unwrap();

    let status = fx.collector_until(Duration::from_secs(15), "moved to B", |c| {
        c["state"] == "connected" && c["address"] == format!("127.0.0.1:{port_b}").as_str()
    });
    assert!(status["connects"].as_u64() >= Some(2), "{status:#}");
    let on_b = until_stored(&dir_b, 1, "B's first event");
    let first_b = on_b.iter().min().copied().unwrap();
    let target = last_a.max(first_b) + 20;
    crate::util::poll(Duration::from_secs(30), || {
        stored(&dir_b).contains(&target).then_some(())
    })
    .unwrap_or_else(|| panic!("B never got seq {target}: {:?}", stored(&dir_b)));
    let on_b = stored(&dir_b);
    // B holds every seq after what A held when it died, and together they
    // hold every seq: nothing lost. A's store holds at least what it
    // acknowledged, so this covers every seq A had not acknowledged.
    assert_eq!(missing(&on_b, last_a + 1..=target), Vec::<u64>::new());
    let both: BTreeSet<u64> = on_a.union(&on_b).copied().collect();
    assert_eq!(missing(&both, 1..=target), Vec::<u64>::new());
    // Two separate stores: seqs A held that B also got were resent because
    // A never acknowledged them.
    let doubled = on_a.intersection(&on_b).count();
    println!(
        "A held 1..={last_a} ({} seqs), B from {first_b}; {doubled} seqs in both",
        on_a.len()
    );
    assert!(
        doubled as u64 <= last_a,
        "only seqs A held can be doubled: {doubled}"
    );
}

#[test]
fn a_returning_first_collector_gets_the_agent_back_only_at_a_reconnect() {
    const TEST: &str = "a_returning_first_collector_gets_the_agent_back_only_at_a_reconnect";
    let fx = Fixture::new();
    let (dir_a, dir_b) = (fx.dir.path().join("a"), fx.dir.path().join("b"));
    let Some(a) = RealCollector::start(TEST, &dir_a) else {
        return;
    };
    let Some(b) = RealCollector::start(TEST, &dir_b) else {
        return;
    };
    // A third address, never reached: a round that started anywhere but
    // at the first address would try it after B.
    let closed = free_port();
    let (addr_a, addr_b) = (
        format!("127.0.0.1:{}", a.agents),
        format!("127.0.0.1:{}", b.agents),
    );
    let mut agent = fx.spawn(&fx.config("100ms", &listing(&dir_a, &[a.agents, b.agents, closed])));
    fx.collector_until(Duration::from_secs(15), "connected to A", |c| {
        c["state"] == "connected" && c["address"] == addr_a.as_str()
    });
    until_stored(&dir_a, 5, "5 events on A");
    let ports_a = a.stop();
    let on_b = fx.collector_until(Duration::from_secs(15), "moved to B", |c| {
        c["state"] == "connected" && c["address"] == addr_b.as_str()
    });
    let connects = on_b["connects"].as_u64().unwrap();

    // A comes back with its store; the agent streams on to B regardless.
    let _a = RealCollector::start_on(TEST, &dir_a, Some(ports_a)).unwrap();
    let held_by_a = stored(&dir_a);
    let on_b = stored(&dir_b).len();
    until_stored(&dir_b, on_b + 20, "20 more events on B after A returned");
    let status = fx.collector_until(Duration::from_secs(5), "the status", |_| true);
    assert_eq!(status["address"], addr_b.as_str(), "{status:#}");
    assert_eq!(status["connects"], connects, "no reconnect: {status:#}");
    assert_eq!(stored(&dir_a), held_by_a, "A got nothing while B served");

    // B's session ends: the next round starts at the first address.
    drop(b);
    fx.collector_until(Duration::from_secs(15), "back on A", |c| {
        c["state"] == "connected" && c["address"] == addr_a.as_str()
    });
    let before = held_by_a.len();
    until_stored(&dir_a, before + 5, "new events on A");
    assert!(agent.stop());
    let log = agent.stderr();
    assert!(
        log.contains(&format!("Collector {addr_b} failed; trying {addr_a}.")),
        "{log}"
    );
    assert!(
        !log.contains(&format!("trying 127.0.0.1:{closed}")),
        "the third address was never needed: {log}"
    );
}

#[test]
fn a_tls_failure_moves_on_and_the_server_name_follows_the_address() {
    let fx = Fixture::new();
    // The certificate names collector.test and 127.0.0.1, not localhost.
    let (server, ca_path) = super::auth::test_pki(&fx.dir);
    let collector = FakeCollector::start_with(0, Behaviour::default(), Some(server), None);
    let port = collector.port();
    let table = format!(
        "address = [\"localhost:{port}\", \"127.0.0.1:{port}\"]\ntoken = \"{TOKEN}\"\n[output.collector.tls]\nca_file = \"{}\"\n",
        ca_path.display()
    );
    let mut agent = fx.spawn(&fx.config("200ms", &table));
    let status = fx.collector_until(Duration::from_secs(10), "connected over TLS", |c| {
        c["state"] == "connected" && c["tls"] == true
    });
    assert_eq!(status["address"], format!("127.0.0.1:{port}"), "{status:#}");
    collector.wait(Duration::from_secs(10), "events over TLS", |s| {
        (events_of(s).len() >= 3).then_some(())
    });
    assert!(agent.stop());
    let log = agent.stderr();
    let line = log
        .lines()
        .find(|l| {
            l.contains(&format!(
                "Collector localhost:{port} failed; trying 127.0.0.1:{port}."
            ))
        })
        .unwrap_or_else(|| panic!("no failover line: {log}"));
    assert!(line.contains("certificate"), "failed on the name: {line}");
}

#[test]
fn collectors_that_all_fail_after_their_welcome_cost_one_backoff_per_round() {
    let fx = Fixture::new();
    let failing = || {
        FakeCollector::start(
            0,
            Behaviour {
                close_after_welcome: true,
                ..Behaviour::default()
            },
        )
    };
    let (a, b) = (failing(), failing());
    let table = format!(
        "address = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]\ntoken = \"{TOKEN}\"\nbackoff_max = \"5s\"\n",
        a.port(),
        b.port()
    );
    let _agent = fx.spawn(&fx.config("1s", &table));
    b.wait(Duration::from_secs(5), "a hello on the second", |s| {
        (!s.log.is_empty()).then_some(())
    });
    let started = Instant::now();
    let before = a.hellos().len() + b.hellos().len();
    // Poll until 5 s have passed; the count is what matters.
    while started.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(200));
    }
    let sessions = a.hellos().len() + b.hellos().len() - before;
    eprintln!("{sessions} sessions over two collectors in 5 s");
    // Rounds of two after 0.4, 0.8, 1.6, 3.2 s (±20 %): about eight
    // sessions, not one storm from collector to collector.
    assert!(sessions <= 12, "{sessions} sessions in 5 s");
    assert!(sessions >= 2, "it does retry: {sessions}");
    assert!(
        !a.hellos().is_empty() && b.hellos().len() >= 2,
        "both are tried in each round"
    );
}
