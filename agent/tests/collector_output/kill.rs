//! An agent killed mid-stream, also while its disk is full: what it had
//! spooled is delivered after a restart, and no seq goes unreported.

use super::*;

#[test]
fn a_sigkilled_agent_delivers_its_old_boot_after_a_restart() {
    let fx = Fixture::new();
    let port = free_port();
    let config = fx.config("100ms", &collector_table(port, ""));
    let mut first = fx.spawn(&config);
    let status = fx.collector_until(Duration::from_secs(10), "a backlog", |c| {
        c["spool_events"].as_u64() >= Some(10)
    });
    let old_boot = status["boots"][0]["boot"].as_str().unwrap().to_string();
    let spooled = status["boots"][0]["last_seq"].as_u64().unwrap();
    first.kill();
    assert!(fx.state().join("spool").is_dir());

    let collector = FakeCollector::start(port, Behaviour::default());
    let _second = fx.spawn(&config);
    let hello = collector.wait(Duration::from_secs(10), "a hello", |s| {
        s.log.iter().find_map(|m| match m {
            Msg::Hello(h) => Some(h.clone()),
            _ => None,
        })
    });
    let new_boot = hello["boot"].as_str().unwrap().to_string();
    assert_ne!(new_boot, old_boot);
    assert_eq!(
        hello["boots"][0],
        old_boot.as_str(),
        "the old boot is listed first: {hello}"
    );
    let events = collector.wait(Duration::from_secs(10), "both boots' events", |s| {
        let events = events_of(s);
        let new = events
            .iter()
            .filter(|e| e["boot"] == new_boot.as_str())
            .count();
        (new >= 3).then_some(events)
    });
    let old = seqs(
        &of_boot(&events, &old_boot)
            .into_iter()
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert!(
        old.len() as u64 >= spooled,
        "every spooled event of the old boot: {old:?}"
    );
    assert_eq!(old, (1..=old.len() as u64).collect::<Vec<_>>());
    // Older boots go first.
    let first_new = events
        .iter()
        .position(|e| e["boot"] == new_boot.as_str())
        .unwrap();
    let last_old = events
        .iter()
        .rposition(|e| e["boot"] == old_boot.as_str())
        .unwrap();
    assert!(last_old < first_new, "the old boot's events came first");
    let status = fx.collector_until(Duration::from_secs(5), "the old boot acknowledged", |c| {
        c["boots"].as_array().unwrap().len() == 1 && c["boots"][0]["boot"] == new_boot.as_str()
    });
    assert_eq!(status["spool_dropped"], 0);
}

/// Whether this test may mount a tmpfs; outside CI it skips with a reason.
fn can_mount(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    crate::util::may_run(test, (!root).then_some("needs root to mount a tmpfs"))
}

/// A small tmpfs mounted for the test's life: a disk that really fills.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(at.to_path_buf())
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn root_a_kill_while_the_disk_is_full_leaves_no_gap_unreported() {
    if !can_mount("root_a_kill_while_the_disk_is_full_leaves_no_gap_unreported") {
        return;
    }
    let fx = Fixture::new();
    let disk = SmallDisk::mount(&fx.state(), "1m");
    let port = free_port();
    let config = fx.config("100ms", &collector_table(port, ""));
    let mut first = fx.spawn(&config);
    let status = fx.collector_until(Duration::from_secs(10), "a backlog", |c| {
        c["spool_events"].as_u64() >= Some(5)
    });
    let old_boot = status["boots"][0]["boot"].as_str().unwrap().to_string();
    let filler = disk.fill();
    // Events now wait in memory, the spool unable to take them.
    let status = fx.collector_until(Duration::from_secs(15), "events held in memory", |c| {
        c["in_memory"].as_u64() >= Some(20)
    });
    let held = status["in_memory"].as_u64().unwrap();
    first.kill();
    std::fs::remove_file(&filler).unwrap();

    let collector = FakeCollector::start(port, Behaviour::default());
    let _second = fx.spawn(&config);
    // Everything of the old boot is either delivered or named lost.
    let (delivered, losses) = collector.wait(
        Duration::from_secs(20),
        "the old boot delivered and its gap reported",
        |s| {
            let events = events_of(s);
            let delivered: BTreeSet<u64> = events
                .iter()
                .filter(|e| e["boot"] == old_boot.as_str())
                .map(|e| e["seq"].as_u64().unwrap())
                .collect();
            let losses: Vec<Value> = events
                .into_iter()
                .filter(|e| e["type"] == "loss" && e["lost_boot"] == old_boot.as_str())
                .collect();
            (!losses.is_empty()).then_some((delivered, losses))
        },
    );
    let mut named = BTreeSet::new();
    for loss in &losses {
        for s in loss["first_seq"].as_u64().unwrap()..=loss["last_seq"].as_u64().unwrap() {
            assert!(
                !delivered.contains(&s),
                "seq {s} delivered and named: {loss}"
            );
            assert!(named.insert(s), "seq {s} named twice: {loss}");
        }
    }
    let last = named.iter().chain(&delivered).max().copied().unwrap();
    for s in 1..=last {
        assert!(
            delivered.contains(&s) || named.contains(&s),
            "seq {s} of the killed boot neither arrived nor was reported lost; losses {losses:#?}"
        );
    }
    assert!(
        named.len() as u64 >= held,
        "the {held} events held in memory at the kill are named: {named:?}"
    );
}
