//! Silences on the real agent: `hopwatch silence` over the control socket,
//! the gate between the rule engine and the outputs (a real rsyslogd, the
//! real `hopwatch-collector` and its SQLite file, a collector in the test
//! that pushes its own silences), and the state-dir file across restarts.
//! The alert is driven through a `/proc/net/dev` fixture the test rewrites,
//! so no test here needs root or a namespace.

mod cli;
mod collector;
mod e2e;
mod gate;

use crate::util::{AgentProcess, TempDir, dechunk, hopwatch, poll};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

/// The interface the fixture shows and the rule watches.
const IFACE: &str = "eth0";
/// The rule: fires while the interface's tx_errors counter is above 0.
const RULE: &str = "tx-errors";

/// One agent's files: its config, a `/proc/net/dev` fixture and its state
/// dir.
pub struct Lab {
    pub dir: TempDir,
    pub config: PathBuf,
    proc_root: PathBuf,
}

impl Lab {
    /// An agent config with `outputs` (TOML tables), a heartbeat every
    /// tick (so an event after a given tick is always coming) and the
    /// fixture showing no errors yet.
    pub fn new(prefix: &str, outputs: &str) -> Lab {
        let dir = TempDir::new(prefix);
        let proc_root = dir.path().join("proc");
        std::fs::create_dir_all(proc_root.join("net")).unwrap();
        let config = dir.write(
            "agent.toml",
            &format!(
                r#"
[agent]
name = "silenced"
interval = "1s"
heartbeat = "1s"
state_dir = "{state}"
source = "procfs"
proc_root = "{proc}"
sys_root = "{sys}"
link_watch = "poll"

[links]
interfaces = ["none-such"]

[[rule]]
name = "{RULE}"
interfaces = ["{IFACE}"]
when = "tx_errors > 0"
severity = "critical"

[silences]
max_duration = "1d"

[output.stdout]
{outputs}
"#,
                state = dir.path().join("state").display(),
                proc = proc_root.display(),
                sys = dir.path().join("sys").display(),
            ),
        );
        let lab = Lab {
            dir,
            config,
            proc_root,
        };
        lab.set_tx_errors(0);
        lab
    }

    /// Rewrites the fixture whole (renamed into place, so a tick never
    /// reads half of it).
    pub fn set_tx_errors(&self, errors: u64) {
        let text = format!("{HEADER}  {IFACE}: 1000 10 0 0 0 0 0 0 1000 10 {errors} 0 0 0 0 0\n");
        let temp = self.proc_root.join("net/dev.tmp");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(&temp, self.proc_root.join("net/dev")).unwrap();
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `hopwatch run` on this lab, once its first heartbeat is out (its
    /// control socket answers by then).
    pub fn start(&self) -> AgentProcess {
        let mut cmd = hopwatch();
        cmd.args(["run", "-c"]).arg(&self.config);
        let mut agent = AgentProcess::spawn(cmd);
        agent
            .wait_for(Duration::from_secs(10), |e| e["type"] == "heartbeat")
            .expect("the agent's first heartbeat");
        agent
    }

    /// `hopwatch silence ARGS -c CONFIG`.
    pub fn silence(&self, args: &[&str]) -> Output {
        hopwatch()
            .arg("silence")
            .args(args)
            .arg("-c")
            .arg(&self.config)
            .output()
            .unwrap()
    }

    /// `hopwatch silence add ARGS --json`, which must succeed: the silence.
    pub fn add(&self, args: &[&str]) -> Value {
        let mut all = vec!["add"];
        all.extend_from_slice(args);
        all.push("--json");
        let out = self.silence(&all);
        assert!(
            out.status.success(),
            "hopwatch silence {all:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("silence add --json prints the silence")
    }

    /// `hopwatch silence list --json`.
    pub fn list(&self) -> Vec<Value> {
        let out = self.silence(&["list", "--json"]);
        assert!(
            out.status.success(),
            "hopwatch silence list: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .cloned()
            .expect("a list")
    }

    /// `hopwatch status --json`.
    pub fn status(&self) -> Value {
        crate::util::hopwatch_json(&["status", "--json"], &self.config)
    }

    /// Waits until the rule fires in the engine (whatever the outputs were
    /// told), as `hopwatch status` shows it.
    pub fn wait_firing(&self) {
        poll(Duration::from_secs(10), || {
            let status = self.status();
            status["firing"]
                .as_array()
                .is_some_and(|f| f.iter().any(|a| a["rule"] == RULE))
                .then_some(())
        })
        .expect("the rule fires");
    }
}

/// The ids of a list of silences.
pub fn ids(list: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = list
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// Whether `event` is the rule's alert in `state`.
pub fn is_alert(event: &Value, state: &str) -> bool {
    event["type"] == "alert" && event["rule"] == RULE && event["state"] == state
}

/// Reads what the silences file in `state_dir` holds.
pub fn silences_file(state_dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(state_dir.join("silences.json")).unwrap()).unwrap()
}

const AGENT_TOKEN: &str = "silences-lab-agent-token-0123456789";
pub const API_TOKEN: &str = "silences-lab-api-token-0123456789";

/// The real `hopwatch-collector` on loopback ports of its own, its
/// database read straight from its SQLite file.
pub struct RealCollector {
    child: std::process::Child,
    pub agents: u16,
    pub http: u16,
    data: PathBuf,
    log: PathBuf,
}

impl RealCollector {
    /// Started in `dir` and answering /healthz; `None` (with the reason
    /// printed) where the binary is not built and this is not CI.
    pub fn start(test: &str, dir: &Path) -> Option<RealCollector> {
        RealCollector::start_on(test, dir, None)
    }

    /// Stops it, keeping its database, as a collector going down does.
    pub fn stop(self) -> (u16, u16) {
        (self.agents, self.http)
    }

    /// Started in `dir` on `ports` (agents, http) when given, as a
    /// collector coming back on its own addresses with its database.
    pub fn start_on(test: &str, dir: &Path, ports: Option<(u16, u16)>) -> Option<RealCollector> {
        use std::os::unix::fs::PermissionsExt;
        let binary = crate::util::collector_binary(test)?;
        let data = dir.join("collector");
        std::fs::create_dir_all(&data).unwrap();
        for (name, token) in [("agent-tokens", AGENT_TOKEN), ("api-tokens", API_TOKEN)] {
            let path = dir.join(name);
            std::fs::write(&path, format!("{token}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let token = dir.join("agent-token");
        std::fs::write(&token, format!("{AGENT_TOKEN}\n")).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        // Ports free now; another process taking one in between fails the
        // start, and the log says so.
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (agents, http) = ports.unwrap_or_else(|| (free(), free()));
        let config = dir.join("collector.toml");
        std::fs::write(
            &config,
            format!(
                r#"[collector]
agents_listen = "127.0.0.1:{agents}"
http_listen = "127.0.0.1:{http}"
data_dir = "{data}"

[auth]
agent_tokens_file = "{dir}/agent-tokens"
api_tokens_file = "{dir}/api-tokens"

[rate_limit]
per_second = 1000
burst = 1000
"#,
                data = data.display(),
                dir = dir.display(),
            ),
        )
        .unwrap();
        let log = dir.join("collector.stderr");
        let child = std::process::Command::new(binary)
            .args(["run", "-c"])
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawning hopwatch-collector");
        let mut collector = RealCollector {
            child,
            agents,
            http,
            data,
            log,
        };
        let up = poll(Duration::from_secs(20), || {
            if let Ok(Some(status)) = collector.child.try_wait() {
                panic!("the collector exited {status}: {}", collector.log());
            }
            let reply = collector.request("GET", "/healthz", None).ok()?;
            (reply.0 == 200).then_some(())
        });
        assert!(
            up.is_some(),
            "the collector never answered /healthz: {}",
            collector.log()
        );
        Some(collector)
    }

    /// The `[output.collector]` table an agent needs to reach it.
    pub fn output(&self, dir: &Path) -> String {
        format!(
            "[output.collector]\naddress = \"127.0.0.1:{}\"\ntoken_file = \"{}\"\nbackoff_max = \"500ms\"\n",
            self.agents,
            dir.join("agent-token").display()
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The alert events the collector stored, as the agent sent them, in
    /// the order they were stored.
    pub fn alerts(&self) -> Vec<Value> {
        let db = self.data.join("hopwatch.db");
        let Ok(conn) =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        else {
            return Vec::new();
        };
        let Ok(mut statement) =
            conn.prepare("SELECT line FROM events WHERE type = 'alert' ORDER BY id")
        else {
            return Vec::new();
        };
        statement
            .query_map([], |row| row.get::<_, String>(0))
            .map(|rows| {
                rows.filter_map(Result::ok)
                    .map(|line| serde_json::from_str(&line).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `METHOD PATH` on the HTTP API with the API token: the status and
    /// the body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, String)> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.http))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {API_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no status line in {head:?}")))?;
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        Ok((
            status,
            if chunked {
                dechunk(body)
            } else {
                body.to_string()
            },
        ))
    }
}

impl Drop for RealCollector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("the collector's log:\n{}", self.log());
        }
    }
}

/// The alert fired under a silence and stdout never saw it. Heartbeats
/// follow an alert through the same queue, so one that counts it firing
/// means stdout was offered the alert first.
fn kept_off_stdout(agent: &mut AgentProcess) {
    agent
        .wait_for(Duration::from_secs(5), |e| {
            e["type"] == "heartbeat" && e["firing"] == 1
        })
        .expect("a heartbeat counting the firing alert");
    assert!(
        !agent.seen.iter().any(|e| e["type"] == "alert"),
        "a silenced alert reached stdout: {:?}",
        agent.seen
    );
}
