//! The packages `packaging/build.sh` leaves in target/packages, and what
//! their tests share: finding them (or the reason to skip), querying rpm and
//! dpkg, scratch roots to install into. The tests are split by concern:
//! `rpm` the RPMs' metadata, payload, requirements and scriptlets; `deb` the
//! .debs and the collector's hardened unit; `service` the agent's init script
//! driving the installed binary. Without the packages or the tools these
//! tests skip with a reason, except under CI=true, where `.ci/run` builds the
//! packages first.

mod deb;
mod rpm;
mod service;

use crate::util::{Netns, TempDir, run, unique};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The agent RPM's size target.
const AGENT_RPM_MAX: u64 = 2 * 1024 * 1024;

struct Packages {
    dir: PathBuf,
}

impl Packages {
    fn agent_rpm(&self) -> PathBuf {
        self.dir.join(format!("hopwatch-{VERSION}-1.x86_64.rpm"))
    }

    fn collector_rpm(&self) -> PathBuf {
        self.dir
            .join(format!("hopwatch-collector-{VERSION}-1.x86_64.rpm"))
    }

    fn agent_deb(&self) -> PathBuf {
        self.dir.join(format!("hopwatch_{VERSION}-1_amd64.deb"))
    }

    fn collector_deb(&self) -> PathBuf {
        self.dir
            .join(format!("hopwatch-collector_{VERSION}-1_amd64.deb"))
    }
}

/// The built packages, if this test can run: they exist, the tools named are
/// installed, and root is there when asked for. Otherwise the test prints why
/// and skips, or under CI=true fails.
fn packages(test: &str, needs_root: bool, tools: &[&str]) -> Option<Packages> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let packages = Packages {
        dir: target.join("packages"),
    };
    let mut reason = None;
    for package in [
        packages.agent_rpm(),
        packages.agent_deb(),
        packages.collector_rpm(),
        packages.collector_deb(),
    ] {
        if !package.exists() {
            reason = Some(format!(
                "{} is missing; build the packages with `bash packaging/build.sh`",
                package.display()
            ));
        }
    }
    for tool in tools {
        let flag = if *tool == "ip" { "-V" } else { "--version" };
        if Command::new(tool).arg(flag).output().is_err() {
            reason = Some(format!(
                "needs `{tool}` (Debian: apt-get install rpm dpkg systemd iproute2)"
            ));
        }
    }
    if needs_root && !nix::unistd::geteuid().is_root() {
        reason = Some("needs root".into());
    }
    match reason {
        None => Some(packages),
        Some(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: {reason}, and CI=true makes this test mandatory")
        }
        Some(reason) => {
            eprintln!("skipping {test}: {reason}");
            None
        }
    }
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).expect("UTF-8 output")
}

fn rpm_query(package: &Path, args: &[&str]) -> String {
    stdout(Command::new("rpm").arg("-qp").args(args).arg(package))
}

fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// `sh -n` on a script's text: it parses.
fn assert_shell_parses(name: &str, script: &str) {
    let dir = TempDir::new("hopwatch-script");
    let path = dir.write("script", script);
    let out = Command::new("sh").arg("-n").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{name} does not parse: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every scriptlet of an RPM parses; returns them by tag.
fn rpm_scriptlets(package: &Path) -> Vec<(&'static str, String)> {
    let mut scripts = Vec::new();
    for tag in ["PREIN", "POSTIN", "PREUN", "POSTUN"] {
        let text = rpm_query(package, &["--qf", &format!("%{{{tag}}}")]);
        if text != "(none)" {
            assert_shell_parses(&format!("{} {tag}", package.display()), &text);
            scripts.push((tag, text));
        }
    }
    scripts
}

/// `systemd-analyze verify` finds nothing wrong in a unit but the absence of
/// the programs it starts, which are installed under a test root, not here.
fn assert_unit_verifies(unit: &Path) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let problems: Vec<&str> = lines(&text)
        .into_iter()
        .filter(|l| !l.contains("is not executable: No such file or directory"))
        .collect();
    assert!(
        problems.is_empty(),
        "systemd-analyze verify {}:\n{}",
        unit.display(),
        problems.join("\n")
    );
}

/// The `key=value` settings of a unit file.
fn unit_settings(unit: &Path) -> Vec<(String, String)> {
    fs::read_to_string(unit)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A root with an initialised RPM database and `package` installed in it
/// without scriptlets (the root has no shell to run them).
fn install_rpm(package: &Path) -> TempDir {
    let root = TempDir::new("hopwatch-root");
    run(Command::new("rpm")
        .arg("--root")
        .arg(root.path())
        .arg("--initdb"));
    run(Command::new("rpm")
        .arg("--root")
        .arg(root.path())
        .args(["-i", "--nodeps", "--noscripts"])
        .arg(package));
    root
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is a live process (a zombie is not).
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.split(' ').nth(2) != Some("Z"),
        Err(_) => false,
    }
}

/// A root holding only a shell and the libraries it needs, the least rpm needs
/// to run scriptlets there (chrooted).
fn root_with_a_shell() -> TempDir {
    let root = TempDir::new("hopwatch-shroot");
    let r = root.path();
    let shell = fs::canonicalize("/bin/sh").unwrap();
    let ldd = stdout(Command::new("ldd").arg(&shell));
    for lib in ldd
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(Path::new)
    {
        let to = r.join(lib.strip_prefix("/").unwrap());
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(lib, &to).unwrap();
    }
    for dir in ["bin", "dev", "tmp", "var/tmp"] {
        fs::create_dir_all(r.join(dir)).unwrap();
    }
    fs::copy(&shell, r.join("bin/sh")).unwrap();
    run(Command::new("mknod")
        .args(["-m", "666"])
        .arg(r.join("dev/null"))
        .args(["c", "1", "3"]));
    root
}
