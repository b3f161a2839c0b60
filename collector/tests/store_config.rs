//! `[store]` through the real binary: `check-config` names the PostgreSQL
//! database as host:port/dbname and points at a bad URL or URL file, and
//! never prints the URL, which holds the password.

use crate::util::TempDir;
use std::process::Command;

const PASSWORD: &str = "hunter2-store-secret";

fn check_config(config: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
        .args(["check-config", "-c"])
        .arg(config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(PASSWORD), "the password was printed:\n{text}");
    (out.status.success(), text)
}

#[test]
fn check_config_names_the_database_never_its_url() {
    let dir = TempDir::new("store-config");
    let config = dir.path.join("collector.toml");
    let write = |store: &str| {
        std::fs::write(
            &config,
            format!(
                "[collector]\ndata_dir = {:?}\n[store]\nkind = \"postgres\"\n{store}",
                dir.path.display().to_string()
            ),
        )
        .unwrap()
    };
    write(&format!(
        "url = \"postgres://hop:{PASSWORD}@db.example:6432/hopwatch\"\nsslmode = \"require\"\n"
    ));
    let (ok, text) = check_config(&config);
    assert!(ok, "{text}");
    assert!(
        text.contains("ok (") && text.contains("events in PostgreSQL at db.example:6432/hopwatch"),
        "{text}"
    );

    write(&format!(
        "url = \"postgres://hop:{PASSWORD}@db.example:port/hopwatch\"\n"
    ));
    let (ok, text) = check_config(&config);
    assert!(
        !ok && text.contains("collector.toml:5:7: `url` is not a PostgreSQL URL"),
        "{text}"
    );

    let url_file = dir.path.join("store-url");
    write(&format!("url_file = {:?}\n", url_file.display().to_string()));
    let (ok, text) = check_config(&config);
    assert!(
        !ok && text.contains("collector.toml:5:12: cannot read the PostgreSQL URL from")
            && text.contains(&url_file.display().to_string()),
        "{text}"
    );
    std::fs::write(
        &url_file,
        format!("postgres://hop:{PASSWORD}@10.0.0.5/hopwatch\n"),
    )
    .unwrap();
    let (ok, text) = check_config(&config);
    assert!(
        ok && text.contains("events in PostgreSQL at 10.0.0.5:5432/hopwatch"),
        "{text}"
    );
}
