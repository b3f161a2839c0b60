//! Names and messages from agents hold whatever the agent sent; the shell
//! commands of the real binary print them escaped, so a stored interface
//! named `ESC ] 0 ; … BEL ESC [ 2 J` cannot retitle or clear the operator's
//! terminal. JSON output stays JSON (serde escapes it).

use crate::util::{
    AGENT_TOKEN, FakeAgent, Process, TempDir, alert, event, free_port, link, now_ms,
};
use hopwatch_wire::event::Body;
use std::process::Command;
use std::time::Duration;

const NAME: &str = "\x1b]0;pwned\x07\x1b[2J";
const ESCAPED: &str = "\\x1b]0;pwned\\x07\\x1b[2J";

#[test]
fn the_shell_commands_print_remote_names_escaped() {
    let dir = TempDir::new("terminal");
    let process = Process::start(&dir.path, free_port(), free_port(), "", "");
    let (mut agent, _) = FakeAgent::connect(process.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let mut firing = alert(NAME, true);
    if let Body::Alert(a) = &mut firing {
        a.rule = NAME.into();
        a.message = format!("{NAME} tx_errors increased\nFAKE LINE");
    }
    let t = now_ms();
    agent
        .send(&[
            event("leaf1", "b1", 1, t - 3000, link(NAME, false)),
            event("leaf1", "b1", 2, t - 2000, link(NAME, true)),
            event("leaf1", "b1", 3, t - 1000, firing),
        ])
        .unwrap();
    assert!(agent.wait_acked("b1", 3, Duration::from_secs(10)));
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
            .args(args)
            .arg("-c")
            .arg(&process.config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    for args in [
        &["changes"][..],
        &["downtime"],
        &["alerts", "--all"],
        &["alerts"],
    ] {
        let text = cli(args);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{args:?} printed raw control characters: {text:?}"
        );
        assert!(text.contains(ESCAPED), "{args:?}: {text}");
        assert!(!text.contains("\nFAKE LINE"), "{args:?}: {text}");
    }
    let json: serde_json::Value = serde_json::from_str(&cli(&["changes", "--json"])).unwrap();
    assert_eq!(json["went_down"][0]["interface"], NAME);
}
