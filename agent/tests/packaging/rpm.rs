//! The RPMs: metadata, files, config flags, payload and requirements; both
//! installed into an empty root; the agent's scriptlets run where no init
//! system is.

use super::*;

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
    assert_eq!(rpm_query(&rpm, &["--qf", "%{PAYLOADCOMPRESSOR}"]), "gzip");
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

/// What an rpm must understand to install the agent: the same on every
/// NX-OS release, 9.x's Wind River 8 rpm included.
#[test]
fn agent_rpm_payload_and_requirements_suit_every_nxos_release() {
    let Some(p) = packages(
        "agent_rpm_payload_and_requirements_suit_every_nxos_release",
        false,
        &["rpm"],
    ) else {
        return;
    };
    let rpm = p.agent_rpm();
    // gzip: the payload every rpm reads; xz and zstd are not shown to be
    // read on 9.x.
    assert_eq!(rpm_query(&rpm, &["--qf", "%{PAYLOADCOMPRESSOR}"]), "gzip");
    // A shell for the scriptlets and rpm features of 4.0 and older: no
    // rpmlib(FileDigests) (4.6), rpmlib(PayloadIsXz) (4.7) or
    // rpmlib(PayloadIsZstd), and nothing the dependency generator would
    // have found in the binary or the scripts.
    let requires = rpm_query(&rpm, &["-R"]);
    let mut requires = lines(&requires);
    requires.dedup();
    assert_eq!(
        requires,
        [
            "/bin/sh",
            "rpmlib(CompressedFileNames) <= 3.0.4-1",
            "rpmlib(PayloadFilesHavePrefix) <= 4.0-1",
        ]
    );
    // Every scriptlet is run by /bin/sh, which busybox's ash can be.
    let interpreters = rpm_query(&rpm, &["--qf", "%{POSTINPROG} %{PREUNPROG} %{POSTUNPROG}"]);
    assert_eq!(interpreters, "/bin/sh /bin/sh /bin/sh");
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
    // For servers, whose rpm reads xz: the smaller payload.
    assert_eq!(rpm_query(&rpm, &["--qf", "%{PAYLOADCOMPRESSOR}"]), "xz");
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

/// A root whose /bin/sh is busybox (static), the smallest shell an NX-OS
/// userland could give the scriptlets.
fn root_with_busybox() -> Option<TempDir> {
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())?;
    let root = TempDir::new("hopwatch-bbroot");
    let r = root.path();
    for dir in ["bin", "dev", "tmp", "var/tmp"] {
        fs::create_dir_all(r.join(dir)).unwrap();
    }
    fs::copy(busybox, r.join("bin/sh")).unwrap();
    run(Command::new("mknod")
        .args(["-m", "666"])
        .arg(r.join("dev/null"))
        .args(["c", "1", "3"]));
    Some(root)
}

#[test]
fn root_agent_rpm_scriptlets_run_under_busybox_sh() {
    let test = "root_agent_rpm_scriptlets_run_under_busybox_sh";
    let Some(p) = packages(test, true, &["rpm", "mknod", "busybox"]) else {
        return;
    };
    let root = root_with_busybox().expect("busybox, checked above");
    let r = root.path();
    let static_shell = stdout(Command::new("file").arg("-L").arg(r.join("bin/sh")));
    assert!(
        static_shell.contains("statically linked"),
        "{test} needs a static busybox (Debian: busybox-static): {static_shell}"
    );
    run(Command::new("rpm").arg("--root").arg(r).arg("--initdb"));
    let out = run(Command::new("rpm")
        .arg("--root")
        .arg(r)
        .args(["-i", "--nodeps"])
        .arg(p.agent_rpm()));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("edit /etc/hopwatch/agent.toml"),
        "%post under busybox said:\n{said}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("scriptlet failed"), "{stderr}");
    // An upgrade runs %postun with 1, then an erase %preun and %postun with 0.
    let out = run(Command::new("rpm")
        .arg("--root")
        .arg(r)
        .args(["-U", "--replacepkgs", "--nodeps"])
        .arg(p.agent_rpm()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("scriptlet failed"), "{stderr}");
    let out = run(Command::new("rpm")
        .arg("--root")
        .arg(r)
        .args(["-e", "hopwatch"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("scriptlet failed"), "{stderr}");
    assert!(!r.join("usr/bin/hopwatch").exists());
}
