//! Helpers shared by the integration tests: root and namespace checks, network
//! namespaces with veth pairs, and the real `hopwatch` binary as a child
//! process whose JSON lines are read as they come.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use crate::netns::{Netns, can_use_netns, may_run, run, unique};

/// Two namespaces joined by a veth pair with addresses 10.x.0.1 and
/// 10.x.0.2/24: `a` holds `a_if`, `b` holds `b_if`.
pub struct VethPair {
    pub a: Netns,
    pub b: Netns,
    pub a_if: String,
    pub b_if: String,
    pub a_addr: String,
    pub b_addr: String,
}

impl VethPair {
    pub fn new(subnet: u8) -> VethPair {
        let a = Netns::new("hwa");
        let b = Netns::new("hwb");
        let a_if = unique("hwv");
        let b_if = unique("hwp");
        a.ip(&["link", "add", &a_if, "type", "veth", "peer", "name", &b_if]);
        a.ip(&["link", "set", &b_if, "netns", &b.name]);
        let a_addr = format!("10.{subnet}.0.1");
        let b_addr = format!("10.{subnet}.0.2");
        a.ip(&["addr", "add", &format!("{a_addr}/24"), "dev", &a_if]);
        b.ip(&["addr", "add", &format!("{b_addr}/24"), "dev", &b_if]);
        a.ip(&["link", "set", &a_if, "up"]);
        b.ip(&["link", "set", &b_if, "up"]);
        VethPair {
            a,
            b,
            a_if,
            b_if,
            a_addr,
            b_addr,
        }
    }

    /// Sends `count` UDP datagrams from `a` to `b` through the veth.
    pub fn send_udp(&self, count: usize) {
        let to = format!("{}:9", self.b_addr);
        self.a.within(move || {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            for _ in 0..count {
                socket.send_to(b"hopwatch test", &to).unwrap();
            }
        });
    }
}

/// A scratch directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(&format!("{prefix}-")));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn hopwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hopwatch"))
}

/// Runs `hopwatch ARGS -c CONFIG`, which must succeed, and parses its JSON.
pub fn hopwatch_json(args: &[&str], config: &Path) -> Value {
    let out = hopwatch()
        .args(args)
        .arg("-c")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hopwatch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("hopwatch {args:?} printed no JSON ({e})"))
}

/// A running `hopwatch run`, its stdout read line by line as JSON.
pub struct AgentProcess {
    child: Child,
    lines: mpsc::Receiver<Value>,
    pub seen: Vec<Value>,
}

impl AgentProcess {
    pub fn spawn(mut cmd: Command) -> AgentProcess {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning hopwatch");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        AgentProcess {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for an event matching `pred`, keeping every event read.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return Some(v);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal)
            .expect("signal the agent");
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "agent did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `hopwatch-collector` binary next to this test's own build, as `cargo
/// test --workspace` (or `cargo build -p hopwatch-collector`) leaves it.
/// None, with the reason printed, when it is not there and this is not CI.
pub fn collector_binary(test: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/tests-HASH → target/<profile>/hopwatch-collector
    let path = exe.parent()?.parent()?.join("hopwatch-collector");
    if path.exists() {
        return Some(path);
    }
    let reason = format!(
        "{} not found; build it with `cargo build -p hopwatch-collector`",
        path.display()
    );
    may_run(test, Some(&reason));
    None
}

/// Polls `f` every 20 ms until it finds something or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = f() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A chunked HTTP/1.1 body, joined.
pub fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
