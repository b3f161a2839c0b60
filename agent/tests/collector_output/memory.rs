//! An agent over its `memory_limit`: the log says why first, the agent stops
//! in order and starts afresh, once an hour at most (else exit status 3),
//! and the spool keeps every event it had, for the next start to deliver.

use super::*;

/// Waits for the agent to exit by itself; its exit status.
fn exit_status(child: &mut Child, timeout: Duration, log: &Path) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the agent over its memory_limit did not stop:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_agent_over_its_memory_limit_says_so_restarts_once_then_stops_with_status_3_and_spools_every_event()
 {
    let fx = Fixture::new();
    let port = free_port();
    // No collector yet: every event waits in the spool. stdout shows what
    // the agent emitted.
    let config = fx.config("100ms", &collector_table(port, "\n[output.stdout]\n"));
    let text = std::fs::read_to_string(&config).unwrap();
    // The least a config may set: less than any agent holds once started.
    let tiny = fx.dir.write(
        "tiny.toml",
        &text.replacen("[agent]\n", "[agent]\nmemory_limit = \"64KiB\"\n", 1),
    );
    let stdout = fx.dir.path().join("tiny-stdout.log");
    let stderr = fx.dir.path().join("tiny-stderr.log");
    let mut child = hopwatch()
        .args(["run", "-c"])
        .arg(&tiny)
        .env_remove("HOPWATCH_MEMORY_RESTART")
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("spawning hopwatch");
    let status = exit_status(&mut child, Duration::from_secs(30), &stderr);
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(status.code(), Some(3), "exit status 3:\n{log}");
    let lines: Vec<&str> = log.lines().collect();
    let find = |from: usize, what: &str| {
        from + lines[from..]
            .iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} after line {from}:\n{log}"))
    };

    // The first time: one line names the limit, the use and the fix, the
    // queued events are delivered or spooled, and the same process starts
    // afresh.
    let over = find(0, "over memory_limit");
    let line = lines[over];
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("memory_limit_kib=64 "), "{line}");
    let heap: u64 = line
        .split("heap_kib=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no heap_kib: {line}"));
    assert!(heap > 64, "{line}");
    assert!(
        line.contains("Raise memory_limit under [agent] in the config"),
        "{line}"
    );
    let stopping = find(over, "Agent stopping; delivering queued events.");
    let restart = find(stopping, "Restarting the agent afresh for memory_limit");
    assert!(
        lines[restart].contains(&format!("pid={}", child.id())),
        "the same process restarts: {}",
        lines[restart]
    );
    // The second time, within the hour: no restart loop, exit status 3.
    let started = find(restart, "Agent started.");
    let over = find(started, "over memory_limit");
    let stopping = find(over, "Agent stopping; delivering queued events.");
    find(
        stopping,
        "Over memory_limit again within an hour of restarting for it",
    );
    assert_eq!(
        log.matches("Restarting the agent afresh").count(),
        1,
        "{log}"
    );

    let emitted: Vec<Value> = std::fs::read_to_string(&stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut boots: Vec<(String, u64)> = Vec::new();
    for event in &emitted {
        let boot = event["boot"].as_str().unwrap();
        let seq = event["seq"].as_u64().unwrap();
        match boots.iter_mut().find(|(b, _)| b == boot) {
            Some((_, last)) => *last = (*last).max(seq),
            None => boots.push((boot.to_string(), seq)),
        }
    }
    assert_eq!(boots.len(), 2, "two boots of the agent:\n{log}");

    // Started again with room, it delivers every event of both.
    let collector = FakeCollector::start(port, Behaviour::default());
    let _agent = fx.spawn(&config);
    for (boot, last) in &boots {
        let delivered = collector.wait(Duration::from_secs(10), "the stopped boots' events", |s| {
            let events = events_of(s);
            let seqs = seqs(
                &of_boot(&events, boot)
                    .into_iter()
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            seqs.contains(last).then_some(seqs)
        });
        assert_eq!(delivered, (1..=*last).collect::<Vec<_>>(), "boot {boot}");
    }
}

#[test]
fn status_shows_the_heap_against_the_memory_limit() {
    let fx = Fixture::new();
    let config = fx.config("100ms", &collector_table(free_port(), ""));
    let text = std::fs::read_to_string(&config).unwrap();
    let config = fx.dir.write(
        "limited.toml",
        &text.replacen("[agent]\n", "[agent]\nmemory_limit = \"48MiB\"\n", 1),
    );
    let _agent = fx.spawn(&config);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = fx.status().filter(|s| s["ticks"].as_u64() > Some(0)) {
            break status;
        }
        assert!(Instant::now() < deadline, "the agent never answered status");
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status["memory_limit_kib"], 48 * 1024, "{status:#}");
    let heap = status["heap_kib"].as_u64().expect("heap_kib");
    let rss = status["rss_kib"].as_u64().expect("rss_kib");
    // Counted, and less than what the process holds in all.
    assert!(heap > 0 && heap < rss, "heap {heap} KiB, rss {rss} KiB");
    let out = hopwatch()
        .args(["status", "--socket"])
        .arg(fx.state().join("hopwatch.sock"))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("KiB of memory_limit 49152 KiB"), "{shown}");
}
