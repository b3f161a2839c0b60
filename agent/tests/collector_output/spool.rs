//! The spool's bounds and faults seen from outside: a spool smaller than
//! the backlog, an unwritable spool, and a line the collector refuses.

use super::*;

#[test]
fn a_spool_smaller_than_the_backlog_names_every_lost_seq_exactly_once() {
    let fx = Fixture::new();
    let port = free_port();
    let mut agent = fx.spawn(&fx.config("100ms", &collector_table(port, "spool_max = \"4KiB\"\n")));
    // Long enough for loss events to be shed in turn.
    let status = fx.collector_until(Duration::from_secs(30), "a full spool", |c| {
        c["spool_dropped"].as_u64() >= Some(150)
    });
    assert!(status["spool_bytes"].as_u64() <= Some(4096), "{status:#}");
    let boot = status["boots"][0]["boot"].as_str().unwrap().to_string();

    let collector = FakeCollector::start(port, Behaviour::default());
    fx.collector_until(Duration::from_secs(10), "a drained spool", |c| {
        c["state"] == "connected" && c["spool_events"] == 0
    });
    collector.wait(Duration::from_secs(5), "a heartbeat", |s| {
        events_of(s)
            .iter()
            .any(|e| e["type"] == "heartbeat")
            .then_some(())
    });
    // Stop first, so nothing is in flight when the books are balanced.
    assert!(agent.stop());
    let events = collector.events();
    let events = of_boot(&events, &boot);
    let received: BTreeSet<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(received.len(), events.len(), "no duplicates");
    let last = *received.last().unwrap();
    let missing: BTreeSet<u64> = (1..=last).filter(|s| !received.contains(s)).collect();
    // Every seq is delivered or named by exactly one delivered loss event:
    // a range spans no delivered seq, and no two ranges overlap.
    let mut named = BTreeSet::new();
    for loss in events.iter().filter(|e| e["type"] == "loss") {
        let range = loss["first_seq"].as_u64().unwrap()..=loss["last_seq"].as_u64().unwrap();
        assert_eq!(
            loss["count"].as_u64().unwrap(),
            range.end() - range.start() + 1,
            "{loss}"
        );
        assert_eq!(loss["lost_boot"], boot.as_str(), "{loss}");
        for s in range {
            assert!(
                !received.contains(&s),
                "seq {s} delivered and named: {loss}"
            );
            assert!(named.insert(s), "seq {s} counted twice: {loss}");
        }
        assert!(
            loss["message"]
                .as_str()
                .unwrap()
                .contains("spool was full (spool_max 4 KiB)"),
            "{loss}"
        );
    }
    assert!(
        named.len() >= 150,
        "loss events name what was dropped: {named:?}"
    );
    let unnamed: Vec<&u64> = missing.difference(&named).collect();
    assert!(
        unnamed.is_empty(),
        "missing and named by no loss event: {unnamed:?}\n{}",
        agent.stderr()
    );
    // The heartbeat sent last counts the drops too.
    let beat = events
        .iter()
        .rev()
        .find(|e| e["type"] == "heartbeat")
        .unwrap();
    assert!(beat["events_dropped"].as_u64() >= Some(20), "{beat}");
}

#[test]
fn an_unwritable_spool_is_counted_while_sampling_and_memory_carry_on() {
    let fx = Fixture::new();
    // A file where the spool directory should be: every attempt to open
    // the spool fails, as on a broken or full disk.
    std::fs::create_dir_all(fx.state()).unwrap();
    std::fs::write(fx.state().join("spool"), "not a directory").unwrap();
    let collector = FakeCollector::start(0, Behaviour::default());
    let mut agent = fx.spawn(&fx.config("100ms", &collector_table(collector.port(), "")));
    let status = fx.collector_until(Duration::from_secs(10), "disk errors", |c| {
        c["disk_errors"].as_u64() >= Some(2) && c["in_memory"].as_u64() >= Some(10)
    });
    assert!(
        status["last_disk_error"]
            .as_str()
            .unwrap()
            .contains("spool"),
        "{status:#}"
    );
    let ticks = fx.status().unwrap()["ticks"].as_u64().unwrap();
    thread::sleep(Duration::from_millis(500));
    assert!(
        fx.status().unwrap()["ticks"].as_u64().unwrap() >= ticks + 3,
        "sampling goes on"
    );
    assert!(
        collector.events().is_empty(),
        "nothing is sent before it is spooled"
    );

    // The disk is back: what waited in memory goes out, in order, from 1.
    std::fs::remove_file(fx.state().join("spool")).unwrap();
    let events = collector.wait(Duration::from_secs(10), "the events held in memory", |s| {
        let events = events_of(s);
        (events.len() >= 12).then_some(events)
    });
    let got = seqs(&events);
    assert_eq!(got, (1..=got.len() as u64).collect::<Vec<_>>());
    let status = fx.collector_until(Duration::from_secs(5), "a healthy spool", |c| {
        c["in_memory"] == 0 && c["last_disk_error"].is_null()
    });
    assert_eq!(status["spool_dropped"], 0);
    assert!(agent.stop());
}

#[test]
fn a_line_the_collector_refuses_is_set_aside_reported_and_no_longer_blocks() {
    let fx = Fixture::new();
    let port = free_port();
    let config = fx.config("100ms", &collector_table(port, ""));
    let mut first = fx.spawn(&config);
    let status = fx.collector_until(Duration::from_secs(10), "a backlog", |c| {
        c["spool_events"].as_u64() >= Some(3)
    });
    let old_boot = status["boots"][0]["boot"].as_str().unwrap().to_string();
    first.kill();
    // A line no collector can store, after the old boot's last one.
    let spool = fx.state().join("spool");
    let segment = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .max()
        .unwrap();
    let text = std::fs::read_to_string(&segment).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let poison_seq = last["seq"].as_u64().unwrap() + 1;
    let poison = json!({"v": 1, "agent": "fixture", "boot": old_boot, "seq": poison_seq,
        "type": "link", "ts": "yesterday"});
    std::fs::write(&segment, format!("{text}{poison}\n")).unwrap();

    let collector = FakeCollector::start(port, Behaviour::default());
    let _second = fx.spawn(&config);
    let loss = collector.wait(
        Duration::from_secs(15),
        "the loss of the refused line",
        |s| {
            events_of(s).into_iter().find(|e| {
                e["type"] == "loss"
                    && e["lost_boot"] == old_boot.as_str()
                    && e["first_seq"] == poison_seq
            })
        },
    );
    assert_eq!(loss["last_seq"], poison_seq, "{loss}");
    assert_eq!(loss["count"], 1, "{loss}");
    assert!(
        loss["message"].as_str().unwrap().contains("set aside"),
        "{loss}"
    );
    let new_boot = loss["boot"].as_str().unwrap().to_string();
    // Everything behind it flows: the new boot's heartbeats keep coming.
    collector.wait(Duration::from_secs(10), "the new boot's events", |s| {
        (events_of(s)
            .iter()
            .filter(|e| e["boot"] == new_boot.as_str() && e["type"] == "heartbeat")
            .count()
            >= 5)
            .then_some(())
    });
    let status = fx.collector_until(Duration::from_secs(5), "connected", |c| {
        c["state"] == "connected" && c["quarantined"] == 1
    });
    assert_eq!(status["boots"].as_array().unwrap().len(), 1, "{status:#}");
    let kept = std::fs::read_to_string(fx.state().join("quarantine.jsonl")).unwrap();
    assert!(
        kept.contains("yesterday") && kept.contains("bad `ts`"),
        "{kept}"
    );
    assert!(
        collector.hellos().len() <= 3,
        "{} hellos",
        collector.hellos().len()
    );
    // The old boot's good events all arrived, once.
    let old: Vec<u64> = seqs(
        &of_boot(&collector.events(), &old_boot)
            .into_iter()
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(old, (1..poison_seq).collect::<Vec<_>>());
}
