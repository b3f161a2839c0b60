//! The real processes on the fabric lab: `hopwatch-collector` in the
//! management namespace with token files and its HTTP API, a `hopwatch`
//! agent in every switch namespace dialling it over the management link,
//! and the small HTTP client the tests ask the collector with.

use super::leafspine::{LeafSpine, Mgmt};
use crate::util::{Netns, TempDir, dechunk, poll};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

const AGENT_TOKEN: &str = "fabric-lab-agent-token-0123456789";
pub const API_TOKEN: &str = "fabric-lab-api-token-0123456789";
/// Where the collector listens inside its namespace.
const AGENTS_PORT: u16 = 7000;
const HTTP: &str = "127.0.0.1:8080";
/// The rule every switch evaluates on its fabric links.
pub const LINK_RULE: &str = "fabric-link-down";

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("the collector answered no JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request with `Connection: close`, from a socket inside the
/// network namespace named `netns` (a name, so that client threads need no
/// handle that would delete the namespace when dropped).
pub fn http(
    netns: &str,
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<Reply> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head += &format!("Authorization: Bearer {token}\r\n");
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    if method == "POST" {
        head += &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    let request = format!("{head}\r\n{body}");
    let path = format!("/var/run/netns/{netns}");
    let inside = std::thread::spawn(move || {
        let handle = std::fs::File::open(&path)?;
        nix::sched::setns(handle, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::other)?;
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(request.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no status line in {head:?}")))?;
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_string()
        };
        Ok(Reply { status, body })
    });
    inside.join().expect("the HTTP client thread")
}

fn secret(path: &Path, text: &str) {
    std::fs::write(path, format!("{text}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `hopwatch-collector run` in the management namespace.
pub struct Collector {
    child: Child,
    pub http: SocketAddr,
    binary: PathBuf,
    config: PathBuf,
    log: PathBuf,
}

impl Collector {
    /// Starts it with token files and `extra` config tables, and waits
    /// until /healthz answers.
    pub fn start(binary: &Path, mgmt: &Netns, dir: &Path, extra: &str) -> Collector {
        let data = dir.join("collector");
        std::fs::create_dir_all(&data).unwrap();
        secret(&dir.join("agent-tokens"), AGENT_TOKEN);
        secret(&dir.join("api-tokens"), API_TOKEN);
        let config = dir.join("collector.toml");
        std::fs::write(
            &config,
            format!(
                r#"[collector]
agents_listen = "0.0.0.0:{AGENTS_PORT}"
http_listen = "{HTTP}"
data_dir = "{data}"
heartbeat_timeout = "5s"

[auth]
agent_tokens_file = "{dir}/agent-tokens"
api_tokens_file = "{dir}/api-tokens"

# The lab asks many traces in a row; the default limit is for people.
[rate_limit]
per_second = 1000
burst = 1000

{extra}
"#,
                data = data.display(),
                dir = dir.display(),
            ),
        )
        .unwrap();
        let log = dir.join("collector.stderr");
        let child = mgmt
            .command(binary)
            .args(["run", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawning hopwatch-collector");
        let mut collector = Collector {
            child,
            http: HTTP.parse().unwrap(),
            binary: binary.to_path_buf(),
            config,
            log,
        };
        let healthy = poll(Duration::from_secs(20), || {
            if let Ok(Some(status)) = collector.child.try_wait() {
                panic!(
                    "the collector exited {status}: {}",
                    std::fs::read_to_string(&collector.log).unwrap_or_default()
                );
            }
            let r = http(&mgmt.name, collector.http, "GET", "/healthz", None, None).ok()?;
            (r.status == 200).then_some(())
        });
        assert!(
            healthy.is_some(),
            "the collector never answered /healthz: {}",
            collector.log()
        );
        collector
    }

    /// `hopwatch-collector trace -c CONFIG ARGS` in the collector's
    /// namespace, as an operator on the collector host runs it.
    pub fn trace_cli(&self, mgmt: &Netns, args: &[String]) -> std::process::Output {
        mgmt.command(&self.binary)
            .arg("trace")
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("running hopwatch-collector trace")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hopwatch run` in one switch namespace.
pub struct SwitchAgent {
    child: Child,
    pub name: &'static str,
    stderr: PathBuf,
}

impl SwitchAgent {
    /// Starts the agent of `mgmt.switch` in `ns`, reporting to the
    /// collector at the far end of its management link.
    pub fn start(binary: &Path, ns: &Netns, mgmt: &Mgmt, dir: &Path) -> SwitchAgent {
        let name = mgmt.switch;
        let state = dir.join(name);
        std::fs::create_dir_all(&state).unwrap();
        let token = dir.join(format!("{name}.token"));
        secret(&token, AGENT_TOKEN);
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"[agent]
name = "{name}"
interval = "500ms"
heartbeat = "1s"
state_dir = "{state}"
trace_backend = "kernel"

[links]
interfaces = ["!lo", "!{mgmt_dev}"]

[[rule]]
name = "{LINK_RULE}"
interfaces = ["!lo", "!{mgmt_dev}"]
when = "oper_up == 0"
severity = "critical"

[output.collector]
address = "{collector}:{AGENTS_PORT}"
token_file = "{token}"
backoff_max = "500ms"
"#,
                state = state.display(),
                mgmt_dev = mgmt.dev,
                collector = mgmt.mgmt_addr,
                token = token.display(),
            ),
        )
        .unwrap();
        let stderr = dir.join(format!("{name}.stderr"));
        let child = ns
            .command(binary)
            .args(["run", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawning hopwatch");
        SwitchAgent {
            child,
            name,
            stderr,
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal)
            .unwrap_or_else(|e| panic!("signal {signal} to the {} agent: {e}", self.name));
    }

    /// SIGKILL, and the process reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for SwitchAgent {
    fn drop(&mut self) {
        // A stopped agent must be woken for SIGKILL to be reaped promptly.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGCONT,
        );
        self.kill();
    }
}

/// Starts every switch's agent and waits until the collector lists each
/// one online with a heartbeat stored (its interfaces known).
pub fn start_agents(
    binary: &Path,
    lab: &LeafSpine,
    collector: &Collector,
    dir: &TempDir,
) -> Vec<SwitchAgent> {
    let agents: Vec<SwitchAgent> = lab
        .mgmt_links
        .iter()
        .map(|m| SwitchAgent::start(binary, lab.ns(m.switch), m, dir.path()))
        .collect();
    let mut last = Value::Null;
    let ready = poll(Duration::from_secs(30), || {
        let r = http(
            &lab.mgmt.name,
            collector.http,
            "GET",
            "/api/v1/agents",
            Some(API_TOKEN),
            None,
        )
        .ok()?;
        last = serde_json::from_str(&r.body).ok()?;
        let list = last.as_array()?;
        agents
            .iter()
            .all(|a| {
                list.iter().any(|l| {
                    l["agent"] == a.name
                        && l["state"] == "online"
                        && l["interfaces"].as_u64() > Some(0)
                })
            })
            .then_some(())
    });
    if ready.is_none() {
        for a in &agents {
            eprintln!("--- {} agent stderr ---\n{}", a.name, a.stderr());
        }
        panic!(
            "the agents never all showed up online with a heartbeat; /api/v1/agents: {last:#}\ncollector log: {}",
            collector.log()
        );
    }
    agents
}
