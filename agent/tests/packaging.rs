//! The packages `packaging/build.sh` leaves in target/packages: their metadata,
//! files and config flags; the agent RPM installed into an empty root, with
//! its scriptlets and without; its init script starting, reloading, reporting
//! and stopping the installed binary, in a VRF too; the agent .deb installed,
//! removed and purged by dpkg; the collector's RPM and .deb and its hardened
//! unit. Without the packages or the tools these tests skip with a reason,
//! except under CI=true, where `.ci/run` builds the packages first.

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

#[test]
fn agent_rpm_metadata_files_and_config_flags() {
    let Some(p) = packages("agent_rpm_metadata_files_and_config_flags", false, &["rpm"]) else {
        return;
    };
    let rpm = p.agent_rpm();
    let info = rpm_query(&rpm, &["-i"]);
    for field in [
        "Name        : hopwatch\n".to_string(),
        format!("Version     : {VERSION}\n"),
        "Architecture: x86_64\n".to_string(),
        "License     : Apache-2.0\n".to_string(),
    ] {
        assert!(info.contains(&field), "`rpm -qip` lacks {field:?}:\n{info}");
    }

    let files = rpm_query(&rpm, &["-l"]);
    assert_eq!(
        lines(&files),
        [
            "/etc/hopwatch",
            "/etc/hopwatch/agent.toml",
            "/etc/init.d/hopwatch",
            "/etc/sysconfig/hopwatch",
            "/usr/bin/hopwatch",
            "/usr/lib/systemd/system/hopwatch.service",
            "/usr/libexec/hopwatch",
            "/usr/libexec/hopwatch/vrf-exec",
            "/var/lib/hopwatch",
        ]
    );
    // Upgrades keep the operator's edits to both files.
    let configs = rpm_query(&rpm, &["-c"]);
    assert_eq!(
        lines(&configs),
        ["/etc/hopwatch/agent.toml", "/etc/sysconfig/hopwatch"]
    );
    let modes = rpm_query(
        &rpm,
        &[
            "--qf",
            "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]",
        ],
    );
    for line in [
        "-rwxr-xr-x root:root /usr/bin/hopwatch",
        // It may hold a collector token.
        "-rw-r----- root:root /etc/hopwatch/agent.toml",
        "-rwxr-xr-x root:root /etc/init.d/hopwatch",
        "-rwxr-xr-x root:root /usr/libexec/hopwatch/vrf-exec",
        "drwxr-x--- root:root /var/lib/hopwatch",
    ] {
        assert!(lines(&modes).contains(&line), "no {line:?} in:\n{modes}");
    }

    // A static binary: nothing required but the scriptlets' shell and rpm's
    // own features.
    let requires = rpm_query(&rpm, &["--requires"]);
    for req in lines(&requires) {
        assert!(
            req == "/bin/sh" || req.starts_with("rpmlib("),
            "unexpected requirement {req:?}"
        );
    }
    assert_eq!(rpm_query(&rpm, &["--qf", "%{PAYLOADCOMPRESSOR}"]), "xz");
    let size = fs::metadata(&rpm).unwrap().len();
    assert!(
        size <= AGENT_RPM_MAX,
        "the agent RPM is {size} bytes, over the 2 MiB target"
    );

    let scripts = rpm_scriptlets(&rpm);
    let post = &scripts.iter().find(|(tag, _)| *tag == "POSTIN").unwrap().1;
    for registration in [
        "systemctl enable hopwatch.service",
        "chkconfig --add hopwatch",
    ] {
        assert!(post.contains(registration), "%post lacks {registration:?}");
    }
}

#[test]
fn collector_rpm_metadata_and_files() {
    let Some(p) = packages("collector_rpm_metadata_and_files", false, &["rpm"]) else {
        return;
    };
    let rpm = p.collector_rpm();
    let info = rpm_query(&rpm, &["-i"]);
    for field in [
        "Name        : hopwatch-collector\n".to_string(),
        format!("Version     : {VERSION}\n"),
        "Architecture: x86_64\n".to_string(),
    ] {
        assert!(info.contains(&field), "`rpm -qip` lacks {field:?}:\n{info}");
    }
    let files = rpm_query(&rpm, &["-l"]);
    assert_eq!(
        lines(&files),
        [
            "/etc/hopwatch",
            "/etc/hopwatch/collector.toml",
            "/usr/bin/hopwatch-collector",
            "/usr/lib/systemd/system/hopwatch-collector.service",
            "/usr/libexec/hopwatch-collector",
            "/usr/libexec/hopwatch-collector/setup",
        ]
    );
    let configs = rpm_query(&rpm, &["-c"]);
    assert_eq!(lines(&configs), ["/etc/hopwatch/collector.toml"]);
    let requires = rpm_query(&rpm, &["--requires"]);
    for req in lines(&requires) {
        assert!(
            req == "/bin/sh" || req.starts_with("rpmlib("),
            "unexpected requirement {req:?}"
        );
    }
    let scripts = rpm_scriptlets(&rpm);
    let post = &scripts.iter().find(|(tag, _)| *tag == "POSTIN").unwrap().1;
    assert!(post.contains("/usr/libexec/hopwatch-collector/setup"));
}

/// What `dpkg-deb` says of a .deb: its control fields for `name`, its
/// conffiles and its files (directories left out) are as given, and every
/// maintainer script parses. Returns the package unpacked into a scratch
/// directory (`root/` and `DEBIAN/`).
fn inspect_deb(deb: &Path, name: &str, conffiles: &[&str], files: &[&str]) -> TempDir {
    let control = stdout(Command::new("dpkg-deb").arg("-I").arg(deb));
    for field in [
        format!("Package: {name}\n"),
        format!("Version: {VERSION}-1\n"),
        "Architecture: amd64\n".to_string(),
    ] {
        assert!(
            control.contains(&field),
            "`dpkg-deb -I` lacks {field:?}:\n{control}"
        );
    }
    let listed = stdout(Command::new("dpkg-deb").arg("-I").arg(deb).arg("conffiles"));
    assert_eq!(lines(&listed), conffiles);
    let listing = stdout(Command::new("dpkg-deb").arg("-c").arg(deb));
    let found: Vec<&str> = lines(&listing)
        .into_iter()
        .filter(|l| !l.starts_with('d'))
        .map(|l| l.rsplit(' ').next().unwrap().trim_start_matches('.'))
        .collect();
    assert_eq!(found, files);

    let dir = TempDir::new("hopwatch-deb");
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(dir.path().join("root")));
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(deb)
        .arg(dir.path().join("DEBIAN")));
    for script in ["postinst", "prerm", "postrm"] {
        let text = fs::read_to_string(dir.path().join("DEBIAN").join(script)).unwrap();
        assert_shell_parses(script, &text);
    }
    // Installed-Size (KiB) covers at least the files.
    let kib: u64 = stdout(
        Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb)
            .arg("Installed-Size"),
    )
    .trim()
    .parse()
    .unwrap();
    let bytes: u64 = files
        .iter()
        .map(|f| {
            let path = dir.path().join("root").join(f.trim_start_matches('/'));
            fs::metadata(path).unwrap().len()
        })
        .sum();
    assert!(
        kib * 1024 >= bytes,
        "Installed-Size {kib} KiB < {bytes} bytes of files"
    );
    dir
}

#[test]
fn agent_deb_control_and_files() {
    let Some(p) = packages("agent_deb_control_and_files", false, &["dpkg-deb"]) else {
        return;
    };
    let dir = inspect_deb(
        &p.agent_deb(),
        "hopwatch",
        &[
            "/etc/hopwatch/agent.toml",
            "/etc/init.d/hopwatch",
            "/etc/sysconfig/hopwatch",
        ],
        &[
            "/etc/hopwatch/agent.toml",
            "/etc/init.d/hopwatch",
            "/etc/sysconfig/hopwatch",
            "/lib/systemd/system/hopwatch.service",
            "/usr/bin/hopwatch",
            "/usr/libexec/hopwatch/vrf-exec",
        ],
    );
    let root = dir.path().join("root");
    let bin = root.join("usr/bin/hopwatch");
    let version = stdout(Command::new(&bin).arg("--version"));
    // The version, then which counter source and trace backend it would use.
    assert!(
        version.starts_with(&format!("hopwatch {VERSION} (counter source ")),
        "{version}"
    );
    let check = stdout(
        Command::new(&bin)
            .arg("check-config")
            .arg("-c")
            .arg(root.join("etc/hopwatch/agent.toml")),
    );
    assert!(check.contains(": ok ("), "{check}");
    run(Command::new("bash")
        .arg("-n")
        .arg(root.join("etc/init.d/hopwatch")));
}

#[test]
fn collector_deb_control_files_and_hardened_unit() {
    let Some(p) = packages(
        "collector_deb_control_files_and_hardened_unit",
        false,
        &["dpkg-deb", "systemd-analyze"],
    ) else {
        return;
    };
    let dir = inspect_deb(
        &p.collector_deb(),
        "hopwatch-collector",
        &["/etc/hopwatch/collector.toml"],
        &[
            "/etc/hopwatch/collector.toml",
            "/lib/systemd/system/hopwatch-collector.service",
            "/usr/bin/hopwatch-collector",
            "/usr/libexec/hopwatch-collector/setup",
        ],
    );
    let root = dir.path().join("root");
    let setup = fs::read_to_string(root.join("usr/libexec/hopwatch-collector/setup")).unwrap();
    assert_shell_parses("setup", &setup);
    let binary = root.join("usr/bin/hopwatch-collector");

    let version = stdout(Command::new(&binary).arg("--version"));
    assert_eq!(version.trim(), format!("hopwatch-collector {VERSION}"));
    let config = root.join("etc/hopwatch/collector.toml");
    let check = stdout(
        Command::new(&binary)
            .arg("check-config")
            .arg("-c")
            .arg(&config),
    );
    assert!(
        check.contains("data in /var/lib/hopwatch-collector"),
        "{check}"
    );
    let text = fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("\nfile = \"/var/log/hopwatch-collector/hopwatch-collector.log\"\n"),
        "the packaged config logs elsewhere"
    );

    let unit = root.join("lib/systemd/system/hopwatch-collector.service");
    assert_unit_verifies(&unit);
    let settings = unit_settings(&unit);
    for (key, value) in [
        ("User", "hopwatch-collector"),
        (
            "ExecStartPre",
            "/usr/bin/hopwatch-collector check-config -c /etc/hopwatch/collector.toml",
        ),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("CapabilityBoundingSet", ""),
        ("SystemCallFilter", "@system-service"),
        ("StateDirectory", "hopwatch-collector"),
        ("LogsDirectory", "hopwatch-collector"),
    ] {
        assert!(
            settings.iter().any(|(k, v)| k == key && v == value),
            "{} lacks {key}={value}",
            unit.display()
        );
    }
}

#[test]
fn root_agent_rpm_installs_into_an_empty_root_and_keeps_edited_config() {
    let Some(p) = packages(
        "root_agent_rpm_installs_into_an_empty_root_and_keeps_edited_config",
        true,
        &["rpm", "systemd-analyze"],
    ) else {
        return;
    };
    let root = install_rpm(&p.agent_rpm());
    let r = root.path();
    let installed = stdout(
        Command::new("rpm")
            .arg("--root")
            .arg(r)
            .args(["-q", "hopwatch"]),
    );
    assert_eq!(installed.trim(), format!("hopwatch-{VERSION}-1.x86_64"));
    // Every file as the package says: content, mode, owner (the dependency
    // on /bin/sh is the scriptlets', which this root has no use for).
    let verify = stdout(
        Command::new("rpm")
            .arg("--root")
            .arg(r)
            .args(["-V", "--nodeps", "hopwatch"]),
    );
    assert_eq!(verify, "");

    let bin = r.join("usr/bin/hopwatch");
    let version = stdout(Command::new(&bin).arg("--version"));
    // The version, then which counter source and trace backend it would use.
    assert!(
        version.starts_with(&format!("hopwatch {VERSION} (counter source ")),
        "{version}"
    );
    let config = r.join("etc/hopwatch/agent.toml");
    let check = stdout(
        Command::new(&bin)
            .arg("check-config")
            .arg("-c")
            .arg(&config),
    );
    assert!(check.contains(": ok ("), "{check}");
    assert!(r.join("var/lib/hopwatch").is_dir());
    let init = r.join("etc/init.d/hopwatch");
    run(Command::new("bash").arg("-n").arg(&init));
    let init_text = fs::read_to_string(&init).unwrap();
    assert!(init_text.contains("\n# chkconfig: 345 90 10\n"));
    assert_unit_verifies(&r.join("usr/lib/systemd/system/hopwatch.service"));

    // Reinstalling (as an upgrade does) leaves an edited config alone.
    let edited = fs::read_to_string(&config).unwrap() + "\n[output.syslog]\n";
    fs::write(&config, &edited).unwrap();
    run(Command::new("rpm")
        .arg("--root")
        .arg(r)
        .args(["-U", "--replacepkgs", "--nodeps", "--noscripts"])
        .arg(p.agent_rpm()));
    assert_eq!(fs::read_to_string(&config).unwrap(), edited);
}

#[test]
fn root_collector_rpm_installs_into_an_empty_root() {
    let Some(p) = packages(
        "root_collector_rpm_installs_into_an_empty_root",
        true,
        &["rpm"],
    ) else {
        return;
    };
    let root = install_rpm(&p.collector_rpm());
    let r = root.path();
    let verify = stdout(Command::new("rpm").arg("--root").arg(r).args([
        "-V",
        "--nodeps",
        "hopwatch-collector",
    ]));
    assert_eq!(verify, "");
    let bin = r.join("usr/bin/hopwatch-collector");
    assert_eq!(
        stdout(Command::new(&bin).arg("--version")).trim(),
        format!("hopwatch-collector {VERSION}")
    );
    let check = stdout(
        Command::new(&bin)
            .arg("check-config")
            .arg("-c")
            .arg(r.join("etc/hopwatch/collector.toml")),
    );
    assert!(
        check.contains("data in /var/lib/hopwatch-collector"),
        "{check}"
    );
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

#[test]
fn root_agent_rpm_scriptlets_run_in_a_root_without_an_init_system() {
    let Some(p) = packages(
        "root_agent_rpm_scriptlets_run_in_a_root_without_an_init_system",
        true,
        &["rpm", "ldd", "mknod"],
    ) else {
        return;
    };
    let root = root_with_a_shell();
    let r = root.path();
    run(Command::new("rpm").arg("--root").arg(r).arg("--initdb"));
    let out = run(Command::new("rpm")
        .arg("--root")
        .arg(r)
        .args(["-i", "--nodeps"])
        .arg(p.agent_rpm()));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("no systemd, chkconfig or update-rc.d here"),
        "%post did not say how to start it at boot:\n{said}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("scriptlet failed"), "{stderr}");
    assert!(r.join("usr/bin/hopwatch").exists());

    let out = run(Command::new("rpm")
        .arg("--root")
        .arg(r)
        .args(["-e", "hopwatch"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("scriptlet failed"), "{stderr}");
    assert!(!r.join("usr/bin/hopwatch").exists());
    assert!(!r.join("etc/init.d/hopwatch").exists());
}

/// The agent RPM installed into a test root, driven by its own init script:
/// the sysconfig file points the script at the root's binary, config, pidfile
/// and log, and the config's state_dir at the root, as an operator would edit
/// them.
struct Service {
    root: TempDir,
}

impl Service {
    fn install(packages: &Packages) -> Service {
        let root = install_rpm(&packages.agent_rpm());
        let r = root.path().to_path_buf();
        let config = r.join("etc/hopwatch/agent.toml");
        let text = fs::read_to_string(&config).unwrap();
        let default = "\nstate_dir = \"/var/lib/hopwatch\"\n";
        assert!(
            text.contains(default),
            "the packaged config has no {default:?}"
        );
        let state = format!(
            "\nstate_dir = \"{}\"\n",
            r.join("var/lib/hopwatch").display()
        );
        fs::write(&config, text.replace(default, &state)).unwrap();
        let sysconfig = r.join("etc/sysconfig/hopwatch");
        let mut settings = fs::read_to_string(&sysconfig).unwrap();
        for (key, path) in [
            ("HOPWATCH_BIN", "usr/bin/hopwatch"),
            ("HOPWATCH_CONFIG", "etc/hopwatch/agent.toml"),
            ("HOPWATCH_PIDFILE", "var/run/hopwatch.pid"),
            ("HOPWATCH_LOGFILE", "var/log/hopwatch.log"),
        ] {
            settings.push_str(&format!("{key}={}\n", r.join(path).display()));
        }
        fs::write(&sysconfig, settings).unwrap();
        Service { root }
    }

    fn path(&self, path: &str) -> PathBuf {
        self.root.path().join(path)
    }

    /// `/etc/init.d/hopwatch ACTION` with `env` added: its exit code and
    /// what it printed on stdout and stderr.
    fn init(&self, action: &str, env: &[(&str, &str)]) -> (i32, String) {
        let out: Output = Command::new(self.path("etc/init.d/hopwatch"))
            .arg(action)
            .env("HOPWATCH_SYSCONFIG", self.path("etc/sysconfig/hopwatch"))
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().expect("exit code"), text)
    }

    fn pid(&self) -> u32 {
        fs::read_to_string(self.path("var/run/hopwatch.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.path("var/log/hopwatch.log")).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(self.path("var/run/hopwatch.pid"))
            && let Ok(pid) = pid.trim().parse::<i32>()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[test]
fn root_agent_init_script_starts_reloads_reports_and_stops_the_installed_agent() {
    let Some(p) = packages(
        "root_agent_init_script_starts_reloads_reports_and_stops_the_installed_agent",
        true,
        &["rpm"],
    ) else {
        return;
    };
    let service = Service::install(&p);

    let (code, said) = service.init("start", &[]);
    assert_eq!(code, 0, "start: {said}");
    let pid = service.pid();
    assert!(said.contains(&format!("started (pid {pid})")), "{said}");
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        service.path("usr/bin/hopwatch"),
        "the pidfile names another program"
    );
    let (code, said) = service.init("status", &[]);
    assert_eq!(code, 0, "status: {said}");
    assert!(said.contains(&format!("running (pid {pid})")), "{said}");
    // The agent's own answer over its control socket, in the root's state_dir.
    assert!(said.contains("RULES"), "{said}");
    let (code, said) = service.init("start", &[]);
    assert_eq!((code, service.pid()), (0, pid), "a second start: {said}");
    assert!(said.contains("already running"), "{said}");

    let reloads = |log: &str| log.matches("Config reloaded.").count();
    let (code, said) = service.init("reload", &[]);
    assert_eq!(code, 0, "reload: {said}");
    wait_until(
        "the agent to log its reload",
        Duration::from_secs(5),
        || reloads(&service.log()) == 1,
    );

    // A broken config is refused with its errors, and the agent runs on.
    let config = service.path("etc/hopwatch/agent.toml");
    let good = fs::read_to_string(&config).unwrap();
    fs::write(&config, format!("{good}\ncolour = \"blue\"\n")).unwrap();
    for action in ["reload", "restart"] {
        let (code, said) = service.init(action, &[]);
        assert_eq!(code, 6, "{action} with a broken config: {said}");
        assert!(said.contains("unknown key `colour`"), "{said}");
        assert!(said.contains("agent.toml has the errors above"), "{said}");
        assert_eq!(service.pid(), pid);
        assert!(
            alive(pid),
            "{action} with a broken config stopped the agent"
        );
    }
    assert_eq!(reloads(&service.log()), 1);
    fs::write(&config, &good).unwrap();

    let (code, said) = service.init("stop", &[]);
    assert_eq!(code, 0, "stop: {said}");
    assert!(!alive(pid), "the agent outlived stop");
    assert!(!service.path("var/run/hopwatch.pid").exists());
    assert!(service.log().contains("Agent stopping"));
    let (code, said) = service.init("status", &[]);
    assert_eq!(code, 3, "status when stopped: {said}");
    let (code, said) = service.init("stop", &[]);
    assert_eq!(code, 0, "stop when stopped: {said}");

    // An agent that died leaves its pidfile: status 1.
    let (code, said) = service.init("start", &[]);
    assert_eq!(code, 0, "start again: {said}");
    let pid = service.pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("the killed agent to go", Duration::from_secs(5), || {
        !alive(pid)
    });
    let (code, said) = service.init("status", &[]);
    assert_eq!(code, 1, "status of a dead agent: {said}");
    assert!(said.contains("died"), "{said}");
    let (code, _) = service.init("reload", &[]);
    assert_eq!(code, 7, "reload of a dead agent");
    service.init("stop", &[]);
    assert_eq!(service.init("status", &[]).0, 3);
}

#[test]
fn root_netns_agent_init_script_runs_the_agent_in_a_vrf() {
    let Some(p) = packages(
        "root_netns_agent_init_script_runs_the_agent_in_a_vrf",
        true,
        &["rpm", "ip"],
    ) else {
        return;
    };
    let service = Service::install(&p);
    let vrf = Netns::new("hwvrf");

    let env = [("HOPWATCH_VRF", vrf.name.as_str())];
    let (code, said) = service.init("start", &env);
    assert_eq!(code, 0, "start in {}: {said}", vrf.name);
    let pid = service.pid();
    let identify = stdout(Command::new("ip").args(["netns", "identify", &pid.to_string()]));
    assert_eq!(identify.trim(), vrf.name, "the agent runs outside the VRF");
    let (code, said) = service.init("status", &env);
    assert_eq!(code, 0, "status: {said}");
    assert!(said.contains(&format!("in VRF {}", vrf.name)), "{said}");

    // A restart into a VRF that does not exist is refused before the
    // running agent is stopped, naming the VRFs there are.
    let missing = unique("hwnovrf");
    for action in ["restart", "try-restart"] {
        let (code, said) = service.init(
            action,
            &[
                ("HOPWATCH_VRF", missing.as_str()),
                ("HOPWATCH_VRF_WAIT", "0"),
            ],
        );
        assert_eq!(code, 1, "{action} into a missing VRF: {said}");
        assert!(said.contains(&format!("no VRF '{missing}'")), "{said}");
        assert!(
            said.contains(&vrf.name),
            "the VRFs there are not listed: {said}"
        );
        assert!(
            !said.contains("stopped"),
            "{action} stopped the agent: {said}"
        );
        assert!(alive(pid), "{action} into a missing VRF stopped the agent");
        assert_eq!(service.pid(), pid);
    }

    let (code, said) = service.init("stop", &env);
    assert_eq!(code, 0, "stop: {said}");
    assert!(!alive(pid));

    // A VRF that does not exist: refused, naming it and the VRFs there are.
    let (code, said) = service.init(
        "start",
        &[
            ("HOPWATCH_VRF", missing.as_str()),
            ("HOPWATCH_VRF_WAIT", "0"),
        ],
    );
    assert_eq!(code, 1, "start in a missing VRF: {said}");
    assert!(said.contains(&format!("no VRF '{missing}'")), "{said}");
    assert!(
        said.contains(&vrf.name),
        "the VRFs there are not listed: {said}"
    );
    assert!(!service.path("var/run/hopwatch.pid").exists());
}

#[test]
fn root_agent_deb_installs_removes_and_purges_in_a_root_without_an_init_system() {
    let Some(p) = packages(
        "root_agent_deb_installs_removes_and_purges_in_a_root_without_an_init_system",
        true,
        &["dpkg", "ldd", "mknod"],
    ) else {
        return;
    };
    let root = root_with_a_shell();
    let r = root.path();
    fs::create_dir_all(r.join("var/lib/dpkg/info")).unwrap();
    fs::create_dir_all(r.join("var/lib/dpkg/updates")).unwrap();
    fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
    let dpkg = |args: &[&str]| {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", r.display())).args(args);
        run(&mut cmd)
    };
    let out = dpkg(&["-i", p.agent_deb().to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("then: systemctl start hopwatch"),
        "postinst said nothing about starting it"
    );
    let status = String::from_utf8(dpkg(&["-s", "hopwatch"]).stdout).unwrap();
    assert!(status.contains("Status: install ok installed"), "{status}");
    assert!(r.join("usr/bin/hopwatch").exists());

    // Removal keeps the conffiles, purge takes them.
    dpkg(&["-r", "hopwatch"]);
    assert!(!r.join("usr/bin/hopwatch").exists());
    assert!(r.join("etc/hopwatch/agent.toml").exists());
    dpkg(&["-P", "hopwatch"]);
    assert!(!r.join("etc/hopwatch/agent.toml").exists());
}
