//! A collector that goes away, stops acknowledging or fails every
//! session: the spool rides it out, the resend starts after the welcome's
//! `last_seq`, and reconnects back off without storming.

use super::*;

#[test]
fn an_outage_spools_events_and_the_resend_starts_after_the_welcomes_last_seq() {
    let fx = Fixture::new();
    let port = free_port();
    let mut agent = fx.spawn(&fx.config("100ms", &collector_table(port, "")));

    // Nobody listens: events pile up in the spool.
    let status = fx.collector_until(Duration::from_secs(10), "a backlog", |c| {
        c["spool_events"].as_u64() >= Some(15) && c["state"] == "backoff"
    });
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{status:#}"
    );
    let boot = status["boots"][0]["boot"].as_str().unwrap().to_string();

    // The collector comes up claiming it already holds 1..=5.
    let collector = FakeCollector::start(
        port,
        Behaviour {
            welcome_last_seq: Some(5),
            ..Behaviour::default()
        },
    );
    let events = collector.wait(Duration::from_secs(10), "the backlog", |s| {
        let events = events_of(s);
        (events.len() >= 15).then_some(events)
    });
    let got = seqs(&events);
    assert_eq!(got[0], 6, "resent from last_seq + 1");
    assert_eq!(
        got,
        (6..6 + got.len() as u64).collect::<Vec<_>>(),
        "in order, none missing"
    );
    fx.collector_until(Duration::from_secs(5), "a drained spool", |c| {
        c["state"] == "connected" && c["spool_events"].as_u64() < Some(3)
    });

    // A collector crash: later events wait, then all arrive in order.
    let mut collector = collector;
    collector.stop();
    let before = collector.events().len();
    let status = fx.collector_until(Duration::from_secs(10), "a second backlog", |c| {
        c["state"] != "connected" && c["spool_events"].as_u64() >= Some(10)
    });
    let spooled_through = status["boots"][0]["last_seq"].as_u64().unwrap();
    let collector = FakeCollector::start_with(port, Behaviour::default(), None, Some(collector));
    let stored = collector.wait(Duration::from_secs(10), "the second backlog", |s| {
        let stored = s.stored.get(&boot)?;
        (stored.last().copied() >= Some(spooled_through)).then(|| stored.clone())
    });
    let last = *stored.last().unwrap();
    assert_eq!(
        stored,
        (6..=last).collect::<BTreeSet<_>>(),
        "every event once, none lost"
    );
    let after: Vec<Value> = collector.events()[before..].to_vec();
    let resent = seqs(&after);
    assert!(
        resent.windows(2).all(|w| w[0] < w[1]),
        "in order: {resent:?}"
    );
    assert_eq!(collector.hellos().len(), 2);
    let status = fx.collector_until(Duration::from_secs(5), "a second connection", |c| {
        c["connects"] == 2 && c["state"] == "connected"
    });
    assert_eq!(status["spool_dropped"], 0);
    assert!(agent.stop());
}

#[test]
fn a_collector_that_stops_acknowledging_is_left_after_ack_timeout() {
    let fx = Fixture::new();
    let collector = FakeCollector::start(
        0,
        Behaviour {
            ack: false,
            ..Behaviour::default()
        },
    );
    let mut agent = fx.spawn(&fx.config(
        "200ms",
        &collector_table(collector.port(), "ack_timeout = \"1s\"\n"),
    ));
    let status = fx.collector_until(Duration::from_secs(10), "a reconnect", |c| {
        c["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no acknowledgement"))
    });
    assert!(
        status["spool_events"].as_u64() > Some(0),
        "unacknowledged events stay"
    );
    collector.wait(Duration::from_secs(5), "a second hello", |s| {
        (s.log.iter().filter(|m| matches!(m, Msg::Hello(_))).count() >= 2).then_some(())
    });
    // Once it acknowledges again, the spool drains.
    collector.set(Behaviour::default());
    fx.collector_until(Duration::from_secs(10), "a drained spool", |c| {
        c["state"] == "connected" && c["spool_events"].as_u64() < Some(3)
    });
    assert!(agent.stop());
}

#[test]
fn sessions_failing_after_their_welcome_back_off_instead_of_storming() {
    let fx = Fixture::new();
    let collector = FakeCollector::start(
        0,
        Behaviour {
            close_after_welcome: true,
            ..Behaviour::default()
        },
    );
    let config = fx.config(
        "1s",
        &collector_table(collector.port(), "backoff_max = \"5s\"\n"),
    );
    let _agent = fx.spawn(&config);
    collector.wait(Duration::from_secs(5), "a hello", |s| {
        (!s.log.is_empty()).then_some(())
    });
    let started = Instant::now();
    let before = collector.hellos().len();
    // Poll until 8 s have passed; the count is what matters.
    while started.elapsed() < Duration::from_secs(8) {
        thread::sleep(Duration::from_millis(200));
    }
    let attempts = collector.hellos().len() - before;
    eprintln!("{attempts} sessions in 8 s");
    // 0.2 + 0.4 + 0.8 + 1.6 + 3.2 s (±20 %): about five more, not forty.
    assert!(attempts <= 8, "{attempts} sessions in 8 s");
    assert!(attempts >= 2, "it does retry: {attempts}");
}

#[test]
fn a_restarted_collector_is_found_again_within_seconds() {
    let fx = Fixture::new();
    let port = free_port();
    // The default backoff_max.
    let config = fx.config("1s", &collector_table(port, "# backoff_max default\n"));
    let _agent = fx.spawn(&config);
    // Down long enough for the backoff to reach its cap.
    fx.collector_until(Duration::from_secs(10), "a failed dial", |c| {
        c["state"] == "backoff"
    });
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(15) {
        thread::sleep(Duration::from_millis(200));
    }
    let collector = FakeCollector::start(port, Behaviour::default());
    let up = Instant::now();
    collector.wait(Duration::from_secs(30), "a hello", |s| {
        (!s.log.is_empty()).then_some(())
    });
    let found = up.elapsed();
    eprintln!("found the restarted collector after {found:?}");
    assert!(
        found < Duration::from_millis(6500),
        "found again after {found:?}"
    );
}
