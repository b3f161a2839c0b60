//! The agent RPM's init script driving the installed binary: start, reload,
//! status and stop, and the agent run inside a VRF.

use super::*;

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
