//! Network namespaces for the tests of both binaries: the root check that
//! skips outside CI, unique names, and a namespace that prints what it held
//! when its test fails. The collector's tests include this file by path.

#![allow(dead_code)]

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether tests that need root and network namespaces can run. Outside CI
/// they skip with a printed reason; under `CI=true` they must run.
pub fn can_use_netns(test: &str) -> bool {
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("needs root")
    } else if Command::new("ip").arg("-V").output().is_err() {
        Some("needs iproute2 (`ip`)")
    } else {
        None
    };
    may_run(test, missing)
}

/// Whether a test that needs something this machine may lack can run:
/// with nothing `missing` it runs; otherwise it skips with the reason
/// printed, except under `CI=true`, where it must run and fails instead.
pub fn may_run(test: &str, missing: Option<&str>) -> bool {
    match missing {
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
