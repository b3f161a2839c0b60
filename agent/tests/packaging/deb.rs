//! The .debs: control fields, conffiles and files; the collector's hardened
//! unit; the agent's installed, removed and purged by dpkg.

use super::*;

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
