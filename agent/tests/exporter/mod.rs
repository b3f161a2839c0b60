//! `[output.prometheus]` against real parts: the agent binary serving
//! `/metrics`, Debian's `prometheus-node-exporter` reading the same
//! namespace, `promtool` checking the text, a real Prometheus scraping it,
//! and raw sockets for the refusals and the bounds.

mod node_exporter;
mod prometheus;
mod server;
mod tick;

use crate::util::{AgentProcess, TempDir, hopwatch, may_run};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A `proc_root` and `sys_root` with `n` interfaces `eth0`…, each up at
/// 10 Gb/s with counters that differ per interface and column.
pub struct Fixture {
    pub dir: TempDir,
}

impl Fixture {
    pub fn new(n: usize) -> Fixture {
        let dir = TempDir::new("hwexp");
        let mut dev = String::from(
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
        );
        for i in 0..n {
            let cols: Vec<String> = (0..16).map(|c| (i * 100 + c).to_string()).collect();
            dev.push_str(&format!("  eth{i}: {}\n", cols.join(" ")));
            let link = dir.path().join(format!("sys/class/net/eth{i}"));
            std::fs::create_dir_all(&link).unwrap();
            for (file, value) in [
                ("carrier", "1"),
                ("carrier_changes", "2"),
                ("flags", "0x1003"),
                ("operstate", "up"),
                ("speed", "10000"),
            ] {
                std::fs::write(link.join(file), format!("{value}\n")).unwrap();
            }
        }
        std::fs::create_dir_all(dir.path().join("proc/net")).unwrap();
        std::fs::write(dir.path().join("proc/net/dev"), dev).unwrap();
        Fixture { dir }
    }

    /// A config reading the fixture every `interval`, serving `/metrics`
    /// with the `[output.prometheus]` keys given.
    pub fn config(&self, interval: &str, prometheus: &str) -> PathBuf {
        let root = self.dir.path();
        self.dir.write(
            "agent.toml",
            &format!(
                r#"[agent]
name = "exporter"
interval = "{interval}"
heartbeat = "1h"
state_dir = "{state}"
proc_root = "{proc}"
sys_root = "{sys}"

[[rule]]
name = "tx-errors"
interfaces = ["eth1*"]
when = "increase(tx_errors[5s]) > 3"

[output.prometheus]
{prometheus}
"#,
                state = root.join("state").display(),
                proc = root.join("proc").display(),
                sys = root.join("sys").display(),
            ),
        )
    }
}

/// Runs `hopwatch run -c CONFIG` (its stdout is empty: no stdout output).
pub fn spawn_agent(config: &Path) -> AgentProcess {
    let mut cmd = hopwatch();
    cmd.args(["run", "-c"]).arg(config);
    AgentProcess::spawn(cmd)
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request on a new connection: the status and the body.
pub fn request(addr: SocketAddr, head: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(head.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP head in {answer:?}")))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    Ok((status, body.to_string()))
}

/// `GET /metrics`, with the bearer token when given; HTTP/1.0, so neither
/// exporter answers in chunks or keeps the connection open.
pub fn scrape(addr: SocketAddr, token: Option<&str>) -> std::io::Result<(u16, String)> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    request(
        addr,
        &format!("GET /metrics HTTP/1.0\r\nHost: hopwatch\r\n{auth}\r\n"),
    )
}

/// Scrapes until the agent answers 200 (it binds before its first tick).
pub fn scrape_when_up(addr: SocketAddr, token: Option<&str>) -> String {
    crate::util::poll(Duration::from_secs(10), || match scrape(addr, token) {
        Ok((200, body)) => Some(body),
        _ => None,
    })
    .unwrap_or_else(|| panic!("no 200 from http://{addr}/metrics within 10 s"))
}

/// The samples of a text exposition, by `name{labels}` as written, labels
/// sorted so two exporters' orders compare equal.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|e| panic!("{line}: {e}")),
        };
        let key = match series.split_once('{') {
            None => series.to_string(),
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                labels.sort();
                format!("{name}{{{}}}", labels.join(","))
            }
        };
        out.insert(key, value);
    }
    out
}

/// The `# HELP` and `# TYPE` lines per family.
pub fn metadata(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
        {
            let name = rest.split(' ').next().unwrap().to_string();
            out.entry(name).or_default().push(line.to_string());
        }
    }
    out
}

/// One sample's value, by name and labels as [`samples`] keys them.
pub fn value(text: &str, key: &str) -> Option<f64> {
    samples(text).get(key).copied()
}

/// Whether a program is on PATH; outside CI a test without it skips.
pub fn have(test: &str, program: &str, package: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    let reason = format!("needs {program} (apt-get install {package})");
    may_run(test, (!found).then_some(reason.as_str()))
}

/// `promtool check metrics` on `text`: its complaints, empty when none.
pub fn promtool_check(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        said
    } else {
        format!("promtool failed ({}): {said}", out.status)
    }
}
