//! `hopwatch silence add|list|remove` against the running agent, the
//! refusals it prints, and the silences file across a restart.

use super::{IFACE, Lab, RULE, ids, is_alert, kept_off_stdout, silences_file};
use std::time::{Duration, SystemTime};

#[test]
fn silences_survive_a_restart_and_the_cli_lists_and_removes_them() {
    let lab = Lab::new("hopwatch-silence-cli", "");
    let agent = lab.start();

    let first = lab.add(&[
        "--interface",
        "eth*",
        "--for",
        "1h",
        "--reason",
        "optics swap",
    ]);
    let first_id = first["id"].as_str().unwrap().to_string();
    assert!(
        first_id.starts_with("l-") && first_id.len() == 18,
        "{first}"
    );
    assert_eq!(first["interface"], "eth*");
    assert_eq!(first["reason"], "optics swap");
    assert!(first.get("rule").is_none(), "{first}");
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    let expected_author = match std::env::var("SUDO_USER") {
        Ok(person) if nix::unistd::getuid().is_root() && !person.is_empty() => person,
        _ => me,
    };
    assert_eq!(first["author"], expected_author.as_str());
    let until = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(7200));
    let second = lab.add(&[
        "--interface",
        "swp9",
        "--rule",
        "rx-*",
        "--until",
        &until.to_string(),
        "--reason",
        "cabling",
    ]);
    assert_eq!(second["rule"], "rx-*");
    let second_id = second["id"].as_str().unwrap().to_string();

    // Refusals exit 2 and say what to change.
    for (args, words) in [
        (
            vec!["add", "--interface", "x", "--for", "2d", "--reason", "r"],
            "longer than the maximum 1day ([silences] max_duration",
        ),
        (
            vec!["add", "--interface", "x[", "--for", "1h", "--reason", "r"],
            "bad --interface",
        ),
        (
            vec!["add", "--interface", "x", "--for", "1h", "--reason", " "],
            "--reason is required",
        ),
        (
            vec![
                "add",
                "--interface",
                "x",
                "--until",
                "2001-01-01T00:00:00Z",
                "--reason",
                "r",
            ],
            "in the past",
        ),
        (
            vec!["remove", "l-0000000000000000"],
            "no silence l-0000000000000000",
        ),
    ] {
        let out = lab.silence(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
    // No end at all is refused by the command itself.
    let out = lab.silence(&["add", "--interface", "x", "--reason", "r"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--for"));

    let listed = lab.list();
    assert_eq!(ids(&listed), {
        let mut both = vec![first_id.clone(), second_id.clone()];
        both.sort();
        both
    });
    let text = lab.silence(&["list"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&first_id) && text.contains("optics swap") && text.contains("(in 59m"),
        "{text}"
    );
    let status = lab.status();
    assert_eq!(status["silences"].as_array().unwrap().len(), 2, "{status}");
    let status_text = crate::util::hopwatch()
        .args(["status", "-c"])
        .arg(&lab.config)
        .output()
        .unwrap();
    let status_text = String::from_utf8_lossy(&status_text.stdout);
    assert!(status_text.contains("SILENCES (2)"), "{status_text}");
    assert_eq!(
        silences_file(&lab.state_dir())["local"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Restarted, the agent holds the same silences, and applies them: the
    // alert that fires now is kept off stdout.
    assert!(agent.stop().success());
    lab.set_tx_errors(5);
    let mut agent = lab.start();
    assert_eq!(lab.list(), listed);
    lab.wait_firing();
    kept_off_stdout(&mut agent);

    // Removing the silence sends the alert, still firing, once.
    let out = lab.silence(&["remove", &first_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("removed {first_id}")
    );
    let fired = agent
        .wait_for(Duration::from_secs(5), |e| is_alert(e, "firing"))
        .expect("the alert goes out when its silence is removed");
    assert_eq!(fired["interface"], IFACE);
    assert!(fired.get("silenced").is_none(), "{fired}");
    assert!(fired.get("silence").is_none(), "{fired}");
    assert_eq!(ids(&lab.list()), std::slice::from_ref(&second_id));
    let out = lab.silence(&["remove", &first_id]);
    assert_eq!(out.status.code(), Some(2));

    // Once: later heartbeats come with no second copy.
    let seq = fired["seq"].as_u64().unwrap();
    agent
        .wait_for(Duration::from_secs(5), |e| {
            e["type"] == "heartbeat" && e["seq"].as_u64() > Some(seq + 1)
        })
        .expect("heartbeats go on");
    let firings = agent.seen.iter().filter(|e| is_alert(e, "firing")).count();
    assert_eq!(firings, 1, "{:?}", agent.seen);
    assert_eq!(RULE, fired["rule"]);
    assert!(agent.stop().success());
}

/// A silences file that is not JSON is set aside with an error in the log;
/// the agent starts and takes new silences.
#[test]
fn a_corrupt_silences_file_is_set_aside_and_the_agent_runs() {
    let lab = Lab::new("hopwatch-silence-corrupt", "");
    std::fs::create_dir_all(lab.state_dir()).unwrap();
    std::fs::write(lab.state_dir().join("silences.json"), "{\"local\": [").unwrap();
    let agent = lab.start();
    assert!(lab.list().is_empty());
    assert!(lab.state_dir().join("silences.json.corrupt").exists());
    lab.add(&["--interface", "eth0", "--for", "10m", "--reason", "after"]);
    assert_eq!(lab.list().len(), 1);
    assert!(agent.stop().success());
}
