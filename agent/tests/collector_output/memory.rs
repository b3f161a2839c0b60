//! An agent over its `memory_limit`: the log says why first, the agent stops
//! in order with exit status 3, and the spool keeps every event it had, for
//! the next start to deliver.

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
fn an_agent_over_its_memory_limit_says_so_stops_with_status_3_and_spools_every_event() {
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
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("spawning hopwatch");
    let status = exit_status(&mut child, Duration::from_secs(20), &stderr);
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(status.code(), Some(3), "exit status 3:\n{log}");

    // One line names the limit, the use and the fix, before the stop.
    let over = log
        .lines()
        .position(|l| l.contains("over memory_limit"))
        .unwrap_or_else(|| panic!("no memory_limit line:\n{log}"));
    let line = log.lines().nth(over).unwrap();
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
    let stopping = log
        .lines()
        .position(|l| l.contains("Agent stopping; delivering queued events."))
        .unwrap_or_else(|| panic!("no orderly stop:\n{log}"));
    assert!(over < stopping, "the reason comes first:\n{log}");

    let emitted: Vec<Value> = std::fs::read_to_string(&stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!emitted.is_empty(), "the agent emitted nothing:\n{log}");
    let boot = emitted[0]["boot"].as_str().unwrap().to_string();
    let last = emitted
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .max()
        .unwrap();

    // Started again with room, it delivers every event of the stopped boot.
    let collector = FakeCollector::start(port, Behaviour::default());
    let _agent = fx.spawn(&config);
    let delivered = collector.wait(Duration::from_secs(10), "the stopped boot's events", |s| {
        let events = events_of(s);
        let seqs = seqs(
            &of_boot(&events, &boot)
                .into_iter()
                .cloned()
                .collect::<Vec<_>>(),
        );
        seqs.contains(&last).then_some(seqs)
    });
    assert_eq!(delivered, (1..=last).collect::<Vec<_>>());
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
