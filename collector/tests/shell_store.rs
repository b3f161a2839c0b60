//! The shell commands on a PostgreSQL store, through the real binary: they
//! open the database `[store]` names, read it, and judge whether anything
//! keeps it current from the `collectors` table, not a lock file.

use crate::pgcluster;
use crate::util::{Store, TempDir};
use std::process::Command;

/// Runs `hopwatch-collector ARGS -c CONFIG`: success, stdout, stderr.
fn shell(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
        .args(args)
        .arg("-c")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn root_the_shell_commands_read_a_postgres_store() {
    if !matches!(crate::STORE, Store::Postgres) {
        eprintln!("skipping: the postgres test binary runs this; SQLite's shell is tested in terminal");
        return;
    }
    if !pgcluster::can_use("root_the_shell_commands_read_a_postgres_store") {
        return;
    }
    let cluster = pgcluster::shared();
    let url = cluster.database("shell");
    let name = url.rsplit('/').next().unwrap().to_string();
    let dir = TempDir::new("shell-store");
    let config = dir.path.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\ndata_dir = {:?}\n[store]\nkind = \"postgres\"\nurl = {url:?}\nsslmode = \"disable\"\n",
            dir.path.join("data").display().to_string()
        ),
    )
    .unwrap();
    // The first command creates the schema in the empty database.
    let (ok, out, err) = shell(&config, &["agents", "--json"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "[]");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    cluster.execute(
        &name,
        "INSERT INTO agents (name, version, last_seen_ms) VALUES ('leaf1', '1.0', 1700000000000);",
    );
    let (ok, out, err) = shell(&config, &["agents", "--json"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("no collector is running on the PostgreSQL store"),
        "{err}"
    );
    let agents: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(agents[0]["agent"], "leaf1");
    assert_eq!(agents[0]["as_of"], "2023-11-14T22:13:20.000Z");
    assert!(!err.contains(&url) && !out.contains(&url), "the URL was printed");
    // A collector that refreshed its row just now keeps the store current.
    cluster.execute(
        &name,
        &format!(
            "INSERT INTO collectors (id, host, agents_listen, http_listen, version, started_ms,
                                     last_seen_ms)
             VALUES ('c1', 'h', 'a', 'b', 'v', {now_ms}, {now_ms});"
        ),
    );
    let (ok, out, err) = shell(&config, &["agents", "--json"]);
    assert!(ok, "{err}");
    assert!(!err.contains("no collector"), "{err}");
    let agents: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(agents[0].get("as_of").is_none(), "{out}");
    for args in [
        &["alerts", "--all", "--json"][..],
        &["changes", "--since", "30d", "--json"],
        &["downtime", "--since", "30d", "--json"],
    ] {
        let (ok, out, err) = shell(&config, args);
        assert!(ok, "{args:?}: {err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
    }
}
