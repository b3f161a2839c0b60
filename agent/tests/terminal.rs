//! Names that hold terminal escape sequences, printed by the real binary:
//! an interface named `ESC ] 0 ; x BEL ESC [ 2 J` (the kernel takes it)
//! comes out of `counters`, `trace`, `paths` and `status` escaped, never as
//! the raw bytes that would retitle and clear the operator's terminal.

use crate::util::{AgentProcess, Netns, TempDir, can_use_netns};
use std::process::Output;
use std::time::{Duration, Instant};

const NAME: &str = "\x1b]0;x\x07\x1b[2J";
const ESCAPED: &str = "\\x1b]0;x\\x07\\x1b[2J";

/// The command's stdout, which must hold `expected` and no control
/// character but line breaks.
fn escaped_output(what: &str, out: Output, expected: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.chars().any(|c| c.is_control() && c != '\n'),
        "{what} printed raw control characters: {stdout:?}"
    );
    assert!(stdout.contains(expected), "{what}: {stdout}");
    stdout
}

#[test]
fn root_netns_names_with_escape_sequences_print_escaped() {
    if !can_use_netns("root_netns_names_with_escape_sequences_print_escaped") {
        return;
    }
    let ns = Netns::new("esc");
    ns.ip(&["link", "add", NAME, "type", "veth", "peer", "name", "peer0"]);
    ns.ip(&["link", "set", NAME, "up"]);
    ns.ip(&["link", "set", "peer0", "up"]);
    ns.ip(&["addr", "add", "10.77.0.1/24", "dev", NAME]);
    let dir = TempDir::new("terminal");
    let config = dir.write(
        "agent.toml",
        &format!(
            "[agent]\nname = \"esc\"\nstate_dir = {:?}\n\
             [[rule]]\nname = \"errors\"\ninterfaces = [\"\\u001b]0;x\\u0007\\u001b?2J\"]\n\
             when = \"increase(tx_errors[5s]) > 3\"\n[output.stdout]\n",
            dir.path().join("state").display().to_string()
        ),
    );
    let hopwatch = env!("CARGO_BIN_EXE_hopwatch");
    let in_ns = |args: &[&str]| {
        let mut cmd = ns.command(hopwatch);
        cmd.args(args);
        cmd.output().unwrap()
    };
    let counters = escaped_output(
        "counters",
        in_ns(&[
            "counters",
            "--interval",
            "100ms",
            "-c",
            config.to_str().unwrap(),
        ]),
        ESCAPED,
    );
    assert!(counters.contains("IFACE"), "{counters}");
    escaped_output("trace", in_ns(&["trace", "--dst", "10.77.0.9"]), ESCAPED);
    escaped_output(
        "paths",
        in_ns(&[
            "paths",
            "--dst",
            "10.77.0.9",
            "--proto",
            "udp",
            "--sport-range",
            "1000-1009",
            "--dport",
            "53",
        ]),
        ESCAPED,
    );

    let mut agent = AgentProcess::spawn({
        let mut cmd = ns.command(hopwatch);
        cmd.args(["run", "-c"]).arg(&config);
        cmd
    });
    agent
        .wait_for(Duration::from_secs(10), |e| e["type"] == "heartbeat")
        .expect("the agent never sent its first heartbeat");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let out = in_ns(&["status", "-c", config.to_str().unwrap()]);
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The rule's glob, as the agent reports it.
    escaped_output("status", status, "\\x1b]0;x\\x07\\x1b?2J");
}
