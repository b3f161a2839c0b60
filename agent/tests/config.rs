//! `hopwatch check-config` on good and bad files: the shipped example passes;
//! a bad file exits 2 and names every mistake with file:line:col at once.

use crate::util::{TempDir, hopwatch};

#[test]
fn shipped_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/agent.toml");
    let out = hopwatch()
        .args(["check-config", "-c", path])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (4 rules"));
}

#[test]
fn shipped_rule_examples_are_valid_uncommented() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/agent.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("# Rule examples").expect("an examples block");
    let end = start
        + text[start..]
            .find("# Outputs")
            .expect("the outputs after it");
    let mut uncommented = 0;
    let examples: String = text[start..end]
        .lines()
        .map(|line| {
            let code = line.strip_prefix("# ").filter(|l| {
                l.starts_with("[[rule]]")
                    || l.split_once(" = ").is_some_and(|(key, _)| {
                        key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    })
            });
            uncommented += usize::from(code.is_some());
            format!("{}\n", code.unwrap_or(line))
        })
        .collect();
    assert!(uncommented >= 20, "only {uncommented} lines uncommented");
    let dir = TempDir::new("hopwatch-examples");
    let file = dir.write(
        "agent.toml",
        &format!("{}{examples}{}", &text[..start], &text[end..]),
    );
    let out = hopwatch()
        .args(["check-config", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok (9 rules"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn every_error_at_once_with_positions() {
    let dir = TempDir::new("hopwatch-badcfg");
    let path = dir.write(
        "bad.toml",
        r#"[agent]
interval = "fast"
colour = "blue"

[links]
interfaces = []

[[rule]]
name = "errs"
when = "increase(tx_error[5s]) > 3"

[[rule]]
name = "errs"
whn = "rate(rx_bytes[10s]) > 1000"
when = "rate(rx_bytes[10s) > 1000"
"#,
    );
    let out = hopwatch()
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    for (line_col, words) in [
        ("2:12", "bad duration"),
        ("3:1", "unknown key `colour`"),
        ("6:14", "is empty"),
        ("10:18", "unknown metric `tx_error`"),
        ("13:8", "duplicate rule name `errs`"),
        ("14:1", "unknown key `whn`"),
        ("15:", "bad expression"),
    ] {
        let expected = format!("{file}:{line_col}");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&expected) && l.contains(words)),
            "no `{expected} ... {words}` in:\n{stderr}"
        );
    }
    assert!(stderr.contains("did you mean `tx_errors`"), "{stderr}");
    assert!(stderr.contains("did you mean `when`"), "{stderr}");
    assert!(stderr.contains("7 errors in config"), "{stderr}");
}

#[test]
fn syntax_error_is_located_and_exits_2() {
    let dir = TempDir::new("hopwatch-badcfg");
    let path = dir.write("bad.toml", "[agent]\ninterval = \"1s\nname = 3\n");
    let out = hopwatch()
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:2:", path.display())),
        "{stderr}"
    );
}

#[test]
fn missing_file_exits_2_naming_it() {
    let out = hopwatch()
        .args(["check-config", "-c", "/nonexistent/agent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/agent.toml"));
}

#[test]
fn agent_names_the_collector_would_refuse_are_config_errors() {
    let dir = TempDir::new("hopwatch-badname");
    let long = "a".repeat(256);
    for (name, words) in [
        (long.as_str(), "is 256 bytes long"),
        ("leaf\\t1", "control character '\\t'"),
        ("leaf\\u00001", "control character '\\0'"),
        ("", "is empty"),
        ("   ", "is empty"),
    ] {
        let path = dir.write(
            "name.toml",
            &format!("[agent]\nname = \"{name}\"\n\n[output.stdout]\n"),
        );
        let out = hopwatch()
            .args(["check-config", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "name {name:?}: {stderr}");
        let expected = format!("{}:2:8", path.display());
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&expected) && l.contains("`name`") && l.contains(words)),
            "name {name:?}: no `{expected} ... `name` ... {words}` in:\n{stderr}"
        );
    }
    // The longest name the collector takes is fine.
    let path = dir.write(
        "name.toml",
        &format!(
            "[agent]\nname = \"{}\"\n\n[output.stdout]\n",
            "a".repeat(255)
        ),
    );
    let out = hopwatch()
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_rule_expressions_are_located_with_hints() {
    let dir = TempDir::new("hopwatch-badexpr");
    let path = dir.write(
        "bad.toml",
        r#"[agent]
interval = "1s"

[[rule]]
name = "gauge-increase"
when = "increase(speed_mbps[1m]) > 0"

[[rule]]
name = "and-numbers"
when = "rx_errors > 1 and 2"

[[rule]]
name = "paren"
when = "(increase(rx_errors[1m]) > 3"

[[rule]]
name = "unknown"
when = "max_over_tim(speed_mbps[1h]) > 1"

[[rule]]
name = "long"
when = "speed_mbps < max_over(speed_mbps[25h])"

[[rule]]
name = "short"
when = "increase(rx_errors[1m]) / increase(rx_packets[500ms]) > 0.1"

[[rule]]
name = "missing"
when = "increase(rx_errors[1m]) / increase(rx_packets[1m])"

[[rule]]
name = "kept"
when = "oper_up == 0"
keep_firing_for = "8d"

[[rule]]
name = "changes-counter"
clear_when = "changes(rx_errors[5m]) == 0"
when = "flaps(2m) >= 3"
"#,
    );
    let out = hopwatch()
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    for (line_col, words, hint) in [
        (
            "6:18",
            "`increase` needs a counter, but `speed_mbps` is a gauge",
            "avg(speed_mbps[1m])",
        ),
        (
            "10:27",
            "`2` after `and` is a number, not a comparison",
            "joins comparisons",
        ),
        ("14:9", "unclosed `(`", "add the `)`"),
        (
            "18:9",
            "unknown function `max_over_tim`",
            "did you mean `max_over_time`?",
        ),
        ("22:42", "window `25h` is longer than 24h", "24h or less"),
        (
            "26:55",
            "window 500ms is shorter than the sampling interval 1s",
            "at least one interval",
        ),
        (
            "30:59",
            "missing comparison after `increase(rx_errors[1m]) / increase(rx_packets[1m])`",
            "e.g.",
        ),
        (
            "35:19",
            "`keep_firing_for` \"8d\" is longer than 7d",
            "flaky counter",
        ),
        (
            "39:23",
            "`changes` counts how often a gauge moved",
            "increase(rx_errors[1m])",
        ),
    ] {
        let expected = format!("{file}:{line_col}");
        let at = stderr
            .lines()
            .position(|l| l.starts_with(&expected) && l.contains(words))
            .unwrap_or_else(|| panic!("no `{expected} ... {words}` in:\n{stderr}"));
        // The hint follows its error, before the next one.
        let rest: Vec<&str> = stderr
            .lines()
            .skip(at + 1)
            .take_while(|l| !l.starts_with(&file))
            .collect();
        assert!(
            rest.iter().any(|l| l.contains(hint)),
            "no hint `{hint}` after `{expected}` in:\n{stderr}"
        );
    }
    assert!(stderr.contains("9 errors in config"), "{stderr}");
}
