//! Helpers shared by the integration tests: root and namespace checks, network
//! namespaces with veth pairs, and the real `hopwatch` binary as a child
//! process whose JSON lines are read as they come.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Whether tests that need root and network namespaces can run. Outside CI
/// they skip with a printed reason; under `CI=true` they must run.
pub fn can_use_netns(test: &str) -> bool {
    let reason = if !nix::unistd::geteuid().is_root() {
        Some("needs root")
    } else if Command::new("ip").arg("-V").output().is_err() {
        Some("needs iproute2 (`ip`)")
    } else {
        None
    };
    match reason {
        None => true,
        Some(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: {reason}, and CI=true makes this test mandatory")
        }
        Some(reason) => {
            eprintln!("skipping {test}: {reason}");
            false
        }
    }
}

/// A unique short name; interface names are limited to 15 characters.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}{n}", std::process::id() % 10_000)
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Netns {
        let name = unique(prefix);
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        // IPv6 autoconfiguration would send its own packets on every new
        // link and blur the counts the tests assert.
        ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
        ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1");
        ns
    }

    /// Sets a sysctl of this namespace.
    pub fn sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let value = value.to_string();
        self.within(move || std::fs::write(&path, value))
            .unwrap_or_else(|e| panic!("sysctl {key}: {e}"));
    }

    /// Runs `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> Output {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// A command that runs inside the namespace (with its own /sys).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `f` on a thread that has entered this namespace.
    pub fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("netns handle");
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("thread in namespace")
    }

    /// What the namespace looked like, for a failing test's log: its
    /// neighbours, routes, links with counters, addresses and the sysctls
    /// the labs rely on. Each part is best effort: a namespace half built
    /// when the test failed still shows what it has.
    pub fn describe(&self) -> String {
        let mut text = format!("--- network namespace {} ---\n", self.name);
        for args in [
            &["neigh", "show"][..],
            &["route", "show"],
            &["-6", "route", "show"],
            &["-s", "link", "show"],
            &["addr", "show"],
        ] {
            let out = Command::new("ip")
                .arg("-n")
                .arg(&self.name)
                .args(args)
                .output();
            text += &format!("$ ip {}\n", args.join(" "));
            match out {
                Ok(out) => {
                    text += &String::from_utf8_lossy(&out.stdout);
                    text += &String::from_utf8_lossy(&out.stderr);
                }
                Err(error) => text += &format!("(not run: {error})\n"),
            }
        }
        let keys = [
            "net.ipv4.ip_forward",
            "net.ipv4.conf.all.forwarding",
            "net.ipv4.conf.all.rp_filter",
            "net.ipv4.fib_multipath_hash_policy",
            "net.ipv4.fib_multipath_hash_fields",
            "net.ipv4.fib_multipath_use_neigh",
            "net.ipv4.conf.all.ignore_routes_with_linkdown",
            "net.ipv6.conf.all.forwarding",
            "net.ipv6.conf.all.disable_ipv6",
            "net.ipv6.fib_multipath_hash_policy",
            "net.ipv6.fib_multipath_hash_fields",
            "net.ipv6.auto_flowlabels",
            "net.ipv6.conf.all.ignore_routes_with_linkdown",
        ];
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "sysctl"])
            .args(keys)
            .output();
        text += "$ sysctl ...\n";
        if let Ok(out) = out {
            text += &String::from_utf8_lossy(&out.stdout);
            text += &String::from_utf8_lossy(&out.stderr);
        }
        text
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // A failing test unwinds through here: show what the lab saw
        // before it is gone, so a failure on a machine nobody can log
        // into still says which neighbour, route or counter was wrong.
        if std::thread::panicking() {
            eprintln!("{}", self.describe());
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

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
