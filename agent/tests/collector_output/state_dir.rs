//! The state directory is one agent's: a second agent on it is refused
//! naming the first, and a file planted at the control socket's path is
//! left alone and named.

use super::*;

#[test]
fn a_second_agent_on_the_same_state_dir_is_refused_naming_the_first() {
    let fx = Fixture::new();
    let port = free_port();
    let config = fx.config("1s", &collector_table(port, ""));
    let mut first = fx.spawn(&config);
    fx.collector_until(Duration::from_secs(10), "a running agent", |_| true);
    let pid = first.child.id();

    let (refused, stderr) = second_agent(&config);
    assert!(refused, "the second agent ran: {stderr}");
    assert!(
        stderr.contains(&format!("pid {pid}")) && stderr.contains("state_dir"),
        "{stderr}"
    );
    // The first one is untouched: its socket still answers.
    assert!(fx.status().is_some());

    // A reload on the same state_dir keeps running.
    let hup = |agent: &Agent| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(agent.child.id() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap()
    };
    hup(&first);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !first.stderr().contains("Config reloaded") {
        assert!(Instant::now() < deadline, "{}", first.stderr());
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        first.child.try_wait().unwrap().is_none(),
        "{}",
        first.stderr()
    );

    // A reload onto another state_dir takes that one's lock and lets the
    // old one go.
    let other = fx.dir.path().join("other-state");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("state_dir = \"{}\"", fx.state().display()),
        &format!("state_dir = \"{}\"", other.display()),
    );
    std::fs::write(&config, text).unwrap();
    hup(&first);
    let lock = other.join("hopwatch.lock");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&lock).unwrap_or_default().trim() != pid.to_string() {
        assert!(Instant::now() < deadline, "{}", first.stderr());
        thread::sleep(Duration::from_millis(50));
    }
    let (refused, stderr) = second_agent(&config);
    assert!(
        refused && stderr.contains(&format!("pid {pid}")),
        "{stderr}"
    );
    assert!(first.stop());
}

/// Runs another agent on `config`: whether it exited with an error within
/// a few seconds (it is killed otherwise), and its stderr.
fn second_agent(config: &Path) -> (bool, String) {
    let mut child = hopwatch()
        .args(["run", "-c"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    (status.is_some_and(|s| !s.success()), stderr)
}

#[test]
fn a_file_at_the_control_socket_path_is_left_alone_and_named() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.state()).unwrap();
    let socket = fx.state().join("hopwatch.sock");
    std::fs::write(&socket, "not a socket").unwrap();
    let config = fx.config("1s", &collector_table(free_port(), ""));
    let agent = fx.spawn(&config);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !agent.stderr().contains("Agent started") {
        assert!(Instant::now() < deadline, "{}", agent.stderr());
        thread::sleep(Duration::from_millis(50));
    }
    let stderr = agent.stderr();
    assert!(
        stderr.contains("hopwatch.sock exists and is not a socket: remove it"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "not a socket");
}
