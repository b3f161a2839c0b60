//! Delivery in order, the reload hand-over, trace requests on the same
//! connection and the goodbye of a clean stop.

use super::*;

#[test]
fn events_arrive_in_seq_order_and_acks_empty_the_spool() {
    let fx = Fixture::new();
    let collector = FakeCollector::start(0, Behaviour::default());
    let mut agent = fx.spawn(&fx.config("300ms", &collector_table(collector.port(), "")));

    let hello = collector.wait(Duration::from_secs(5), "a hello", |s| {
        s.log.iter().find_map(|m| match m {
            Msg::Hello(h) => Some(h.clone()),
            _ => None,
        })
    });
    assert_eq!(hello["agent"], "fixture");
    assert_eq!(hello["protocol"], hopwatch::wire::PROTOCOL_VERSION);
    assert!(hello["addresses"][0]["vrf"] == "default", "{hello}");
    let boot = hello["boot"].as_str().unwrap().to_string();

    // The first heartbeat follows the first sample; then errors count.
    collector.wait(Duration::from_secs(5), "a heartbeat", |s| {
        events_of(s)
            .iter()
            .any(|e| e["type"] == "heartbeat")
            .then_some(())
    });
    fx.counters(9);
    let events = collector.wait(Duration::from_secs(5), "an alert and heartbeats", |s| {
        let events = events_of(s);
        let alert = events.iter().any(|e| e["type"] == "alert");
        let beats = events.iter().filter(|e| e["type"] == "heartbeat").count();
        (alert && beats >= 3).then_some(events)
    });
    assert!(events.iter().all(|e| e["boot"] == boot.as_str()));
    let got = seqs(&events);
    assert_eq!(
        got,
        (1..=got.len() as u64).collect::<Vec<_>>(),
        "in order, none missing"
    );
    let alert = events.iter().find(|e| e["type"] == "alert").unwrap();
    assert_eq!(alert["interface"], "eth0");
    assert_eq!(alert["state"], "firing");

    // Acknowledged events leave the spool, files and all.
    let status = fx.collector_until(Duration::from_secs(5), "an empty spool", |c| {
        c["state"] == "connected"
            && c["spool_events"] == 0
            && c["spool_bytes"] == 0
            && c["boots"][0]["acked_seq"].as_u64() >= Some(got.len() as u64)
    });
    assert_eq!(status["boots"][0]["boot"], boot.as_str());
    assert_eq!(status["connects"], 1);
    assert_eq!(status["spool_dropped"], 0);
    // Heartbeats now report the spool's real depth, a small one.
    let beat = collector.wait(Duration::from_secs(3), "a later heartbeat", |s| {
        events_of(s)
            .into_iter()
            .rev()
            .find(|e| e["type"] == "heartbeat" && e["seq"].as_u64() > Some(got.len() as u64))
    });
    assert!(beat["spool_depth"].as_u64().unwrap() < 5, "{beat}");
    assert_eq!(beat["events_dropped"], 0);
    assert!(agent.stop());
}

#[test]
fn a_reload_hands_the_spool_to_the_new_output_without_a_gap() {
    let fx = Fixture::new();
    let collector = FakeCollector::start(0, Behaviour::default());
    let path = fx.config("100ms", &collector_table(collector.port(), ""));
    let mut agent = fx.spawn(&path);
    fx.collector_until(Duration::from_secs(5), "a connection", |c| {
        c["state"] == "connected" && c["boots"][0]["acked_seq"].as_u64() >= Some(5)
    });
    let boot = collector.hellos()[0]["boot"].as_str().unwrap().to_string();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("backoff_max = \"500ms\"", "backoff_max = \"700ms\"");
    std::fs::write(&path, text).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let status = fx.collector_until(Duration::from_secs(10), "the new output connected", |c| {
        c["state"] == "connected"
            && c["connects"] == 1
            && c["boots"][0]["acked_seq"].as_u64() >= Some(5)
    });
    assert_eq!(status["disk_errors"], 0, "{status:#}");
    let before = collector.inner.state.lock().unwrap().stored[&boot].len();
    let stored = collector.wait(Duration::from_secs(5), "events after the reload", |s| {
        let stored = &s.stored[&boot];
        (stored.len() >= before + 5).then(|| stored.clone())
    });
    let last = *stored.last().unwrap();
    assert_eq!(
        stored,
        (1..=last).collect::<BTreeSet<_>>(),
        "no gap across the reload"
    );
    assert_eq!(collector.hellos().len(), 2);
    assert!(
        collector.events().iter().all(|e| e["type"] != "loss"),
        "nothing was lost"
    );
    let goodbyes = |c: &FakeCollector| {
        let state = c.inner.state.lock().unwrap();
        state
            .log
            .iter()
            .filter(|m| matches!(m, Msg::Goodbye(_)))
            .count()
    };
    assert_eq!(goodbyes(&collector), 0, "a reload is not a goodbye");
    assert!(agent.stop());
    collector.wait(Duration::from_secs(5), "the goodbye at the stop", |s| {
        s.log
            .iter()
            .any(|m| matches!(m, Msg::Goodbye(_)))
            .then_some(())
    });
    assert_eq!(goodbyes(&collector), 1);
}

#[test]
fn trace_requests_are_answered_on_the_same_connection() {
    let fx = Fixture::new();
    let collector = FakeCollector::start(
        0,
        Behaviour {
            traces: vec![
                json!({"kind": "flow", "dst": "127.0.0.1"}),
                json!({"kind": "flow", "dst": "not an address"}),
                json!({"kind": "paths", "dst": "127.0.0.1", "proto": 17, "sport_range": {"first": 1000, "last": 1003}, "dport": 53}),
                json!({"kind": "bogus", "dst": "127.0.0.1"}),
                json!({"kind": "hop", "flow": {"dst": "127.0.0.1", "src": "127.0.0.2"}, "ingress": "lo"}),
            ],
            ..Behaviour::default()
        },
    );
    let mut agent = fx.spawn(&fx.config("300ms", &collector_table(collector.port(), "")));
    let results = collector.wait(Duration::from_secs(10), "five trace results", |s| {
        let results: BTreeMap<u64, Value> = s
            .log
            .iter()
            .filter_map(|m| match m {
                Msg::TraceResult(r) => Some((r["id"].as_u64().unwrap(), r["result"].clone())),
                _ => None,
            })
            .collect();
        (results.len() == 5).then_some(results)
    });
    // The loopback route is there in any namespace: a real trace.
    assert_eq!(
        results[&1]["request"]["dst"], "127.0.0.1",
        "{:#}",
        results[&1]
    );
    assert!(results[&1].get("error").is_none(), "{:#}", results[&1]);
    assert!(
        results[&2]["error"]
            .as_str()
            .unwrap()
            .contains("unreadable trace query"),
        "{:#}",
        results[&2]
    );
    assert!(results[&3].is_object(), "{:#}", results[&3]);
    assert_eq!(results[&3]["kind"], "paths", "{:#}", results[&3]);
    // A kind this agent does not know is answered by name, and the
    // connection goes on.
    assert_eq!(results[&4]["kind"], "error", "{:#}", results[&4]);
    assert!(
        results[&4]["error"]
            .as_str()
            .unwrap()
            .contains("unknown trace query kind \"bogus\""),
        "{:#}",
        results[&4]
    );
    // A hop is the flow arriving on its ingress.
    assert_eq!(results[&5]["kind"], "hop", "{:#}", results[&5]);
    assert_eq!(results[&5]["ingress_interface"], "lo", "{:#}", results[&5]);
    // Events flow on the same connection as the traces.
    collector.wait(Duration::from_secs(5), "events beside the traces", |s| {
        (!events_of(s).is_empty()).then_some(())
    });
    assert!(agent.stop());
}

#[test]
fn a_clean_stop_says_goodbye_after_every_event() {
    let fx = Fixture::new();
    let collector = FakeCollector::start(0, Behaviour::default());
    let mut agent = fx.spawn(&fx.config("100ms", &collector_table(collector.port(), "")));
    collector.wait(Duration::from_secs(10), "a few events", |s| {
        (events_of(s).len() >= 5).then_some(())
    });
    assert!(agent.stop());
    let log = collector.wait(Duration::from_secs(5), "a goodbye", |s| {
        s.log
            .iter()
            .any(|m| matches!(m, Msg::Goodbye(_)))
            .then(|| s.log.clone())
    });
    let Some(Msg::Goodbye(bye)) = log.last() else {
        panic!("the goodbye is the last line: {log:#?}");
    };
    let events: Vec<Value> = log
        .iter()
        .filter_map(|m| match m {
            Msg::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    let boot = events[0]["boot"].as_str().unwrap();
    assert_eq!(bye["boot"], boot);
    let last = bye["last_seq"].as_u64().unwrap();
    let got: BTreeSet<u64> = seqs(&events).into_iter().collect();
    assert_eq!(
        got,
        (1..=last).collect::<BTreeSet<_>>(),
        "every event up to last_seq arrived before the goodbye: {bye}"
    );
    assert!(
        agent.stderr().contains("Said goodbye"),
        "{}",
        agent.stderr()
    );
}
