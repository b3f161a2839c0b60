//! The control socket: `hopwatch status` asks the running agent what it is
//! doing, and `hopwatch silence` adds, lists and removes its silences. A
//! unix socket in the state directory, mode 0600, and the peer's uid is
//! checked against ours (or root) — the only listener the agent has, and
//! only the agent's own user can reach it.

use crate::event::Severity;
use crate::silence::command::{
    Input as SilenceInput, Reply as SilenceReply, Request as SilenceCommand,
};
use crate::text::escape;
use hopwatch_wire::silence::Silence;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// The socket's file name inside `state_dir`.
pub const SOCKET_NAME: &str = "hopwatch.sock";

/// What `hopwatch status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub agent: String,
    pub boot: String,
    pub version: String,
    pub pid: u32,
    pub uptime_s: u64,
    pub config: String,
    pub source: String,
    /// Who answers flow traces: `kernel` or `nxapi`.
    #[serde(default)]
    pub trace_backend: String,
    pub link_watch: String,
    /// The configured sampling interval.
    pub interval_ms: u64,
    /// The interval the agent polls at now: `interval_ms`, unless a slow
    /// counter source made the agent stretch it.
    #[serde(default)]
    pub effective_interval_ms: u64,
    /// Why the effective interval is longer than the configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_stretched: Option<StretchStatus>,
    /// How long the latest read of the counter source took, and the
    /// longest since the agent started.
    #[serde(default)]
    pub last_poll_us: u64,
    #[serde(default)]
    pub max_poll_us: u64,
    pub interfaces: usize,
    pub ticks: u64,
    pub source_errors: u64,
    pub last_source_error: Option<String>,
    pub skipped_lines: u64,
    pub last_tick_us: u64,
    pub max_tick_us: u64,
    pub rss_kib: Option<u64>,
    /// The heap the agent holds, and the `memory_limit` it keeps it under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_kib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_kib: Option<u64>,
    pub last_seq: u64,
    pub rules: Vec<RuleStatus>,
    pub firing: Vec<FiringStatus>,
    pub outputs: Vec<OutputStatus>,
    /// The silences in force now, local and the collector's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub silences: Vec<Silence>,
}

/// A stretched sampling interval: the slow poll that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StretchStatus {
    /// The slow poll's duration.
    pub poll_ms: u64,
    /// How long the interval has been stretched.
    pub for_s: u64,
    /// The reason in words.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleStatus {
    pub name: String,
    pub when: String,
    pub severity: Severity,
    pub interfaces: Vec<String>,
    /// The link kinds it applies to, as written; empty for all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kind: Vec<String>,
    /// The interfaces this rule cannot be evaluated on: a metric it reads
    /// had no value there on the latest tick (a column the source does not
    /// report for that interface, no link state, no speed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<UnavailableStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnavailableStatus {
    pub interface: String,
    /// The metrics without a value.
    pub metrics: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiringStatus {
    pub rule: String,
    pub interface: String,
    pub severity: Severity,
    pub for_s: u64,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputStatus {
    pub name: String,
    pub sent: u64,
    pub failures: u64,
    pub dropped: u64,
    pub queued: u64,
    pub last_error: Option<String>,
    /// The connection and spool of the `collector` output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<CollectorStatus>,
}

/// The `collector` output: its connection, and what waits in its spool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectorStatus {
    /// The collector connected to, or being tried.
    pub address: String,
    /// Every collector `address` lists, as written, and the order rounds
    /// try them in (`in_order` or `shuffled`).
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub order: String,
    pub tls: bool,
    /// `connecting`, `connected`, `refused` (the hello was refused; the
    /// longest backoff runs) or `backoff` (waiting to reconnect).
    pub state: String,
    /// Seconds in `state`.
    pub state_for_s: u64,
    /// Why the last connection failed; cleared on connecting.
    pub last_error: Option<String>,
    /// Connections the collector welcomed.
    pub connects: u64,
    /// Hellos the collector refused.
    pub refused: u64,
    /// Events in the spool not yet acknowledged.
    pub spool_events: u64,
    /// Bytes the spool takes on disk, and its bound.
    pub spool_bytes: u64,
    pub spool_max: u64,
    /// Events the spool had to drop (each drop is also a `loss` event).
    pub spool_dropped: u64,
    /// Lines the collector refused as malformed, set aside in
    /// `state_dir/quarantine.jsonl` (each also a `loss` event).
    #[serde(default)]
    pub quarantined: u64,
    /// Events waiting in memory because the spool cannot be written.
    pub in_memory: u64,
    pub disk_errors: u64,
    pub last_disk_error: Option<String>,
    /// Every boot the spool holds, oldest first; the running one last.
    pub boots: Vec<CollectorBoot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectorBoot {
    pub boot: String,
    /// The last seq the collector acknowledged.
    pub acked_seq: u64,
    /// The last seq written to the spool.
    pub last_seq: u64,
    /// Events of this boot not yet acknowledged.
    pub events: u64,
}

/// A status request travelling to the agent loop.
pub type StatusRequest = oneshot::Sender<Status>;

/// Where the accept loop hands each kind of request.
#[derive(Clone)]
pub struct Requests {
    pub status: mpsc::Sender<StatusRequest>,
    /// Unbounded, as the collector's sets share it: one must never be
    /// dropped, and its thread must never wait on the loop.
    pub silences: mpsc::UnboundedSender<SilenceInput>,
}

/// Keeps the socket's accept task alive; dropping it stops serving.
pub struct ControlServer {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on `path`. Without a usable state directory the agent runs on
/// without a control socket, and says so.
pub fn serve(path: &Path, requests: Requests) -> Option<ControlServer> {
    match bind(path) {
        Ok(listener) => Some(ControlServer {
            task: tokio::spawn(accept(listener, requests)),
        }),
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "No control socket; `hopwatch status` will not reach this agent.");
            None
        }
    }
}

fn bind(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        crate::state_dir::create_dir(dir)?;
    }
    // A socket left by an agent that died; a live agent would answer.
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "another hopwatch agent is running with this state_dir",
        ));
    }
    // Only a stale socket is replaced; anything else at the path is not
    // ours to delete.
    match std::fs::symlink_metadata(path) {
        Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} exists and is not a socket: remove it",
                path.display()
            )));
        }
        Err(_) => {}
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn accept(listener: tokio::net::UnixListener, requests: Requests) {
    let me = nix::unistd::geteuid().as_raw();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let allowed = stream
            .peer_cred()
            .map(|cred| cred.uid() == me || cred.uid() == 0)
            .unwrap_or(false);
        if !allowed {
            tracing::warn!("Control connection from another user refused.");
            continue;
        }
        let requests = requests.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = Vec::new();
            // One byte past the bound tells a long request from one that
            // ends exactly there; nothing beyond it is ever buffered.
            let mut reader = tokio::io::BufReader::new(read.take(MAX_REQUEST as u64 + 1));
            let read =
                tokio::time::timeout(Duration::from_secs(5), reader.read_until(b'\n', &mut line));
            if !matches!(read.await, Ok(Ok(_))) {
                return;
            }
            let reply = match request(&line) {
                Request::TooLong => error_reply(&format!(
                    "request longer than {MAX_REQUEST} bytes; send status"
                )),
                Request::Unknown(other) => {
                    error_reply(&format!("unknown request {other:?}; send status"))
                }
                Request::BadSilence(reason) => {
                    error_reply(&format!("unreadable silence request: {reason}"))
                }
                Request::Status => {
                    let (tx, rx) = oneshot::channel();
                    if requests.status.send(tx).await.is_err() {
                        return;
                    }
                    match rx.await {
                        Ok(status) => serde_json::to_string(&status).unwrap_or_default(),
                        Err(_) => return,
                    }
                }
                Request::Silence(command) => {
                    let (tx, rx) = oneshot::channel();
                    if requests
                        .silences
                        .send(SilenceInput::Request(command, tx))
                        .is_err()
                    {
                        return;
                    }
                    match rx.await {
                        Ok(reply) => serde_json::to_string(&reply).unwrap_or_default(),
                        Err(_) => return,
                    }
                }
            };
            let _ = write.write_all(reply.as_bytes()).await;
            let _ = write.write_all(b"\n").await;
        });
    }
}

/// The longest request line read. Requests are a word or a silence's
/// JSON (its reason and globs are bounded well inside this); the bound
/// keeps a peer from making the agent buffer (and answer) without limit.
pub const MAX_REQUEST: usize = 4096;

#[derive(Debug, PartialEq)]
enum Request {
    Status,
    Silence(SilenceCommand),
    /// A JSON line that is no silence request, and why.
    BadSilence(String),
    /// A short prefix of what was sent, for the error.
    Unknown(String),
    TooLong,
}

/// Reads one request line as `read_until` left it (with its newline, unless
/// the peer closed first or the bound cut it).
fn request(line: &[u8]) -> Request {
    let Some(body) = line.strip_suffix(b"\n") else {
        if line.len() > MAX_REQUEST {
            return Request::TooLong;
        }
        return parse_request(line);
    };
    parse_request(body)
}

/// `{"error": …}`, escaped as JSON: the text may quote what the peer sent.
fn error_reply(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

fn parse_request(body: &[u8]) -> Request {
    let text = String::from_utf8_lossy(body);
    match text.trim() {
        "status" => Request::Status,
        // Read as bytes, as the collector's lines are: one copy of the
        // silences' reader serves both.
        json if json.starts_with('{') => match serde_json::from_slice(json.as_bytes()) {
            Ok(command) => Request::Silence(command),
            Err(error) => Request::BadSilence(error.to_string()),
        },
        other => Request::Unknown(other.chars().take(40).collect()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no agent answers on {path}: {source} (is `hopwatch run` running with this state_dir?)"
    )]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the agent's answer on {path} was unreadable: {reason}")]
    Reply { path: PathBuf, reason: String },
}

/// Asks the agent listening on `path` for its status.
pub fn request_status(path: &Path) -> Result<Status, ClientError> {
    ask(path, b"status\n")
}

/// Sends a `hopwatch silence` request to the agent listening on `path`.
pub fn request_silence(path: &Path, command: &SilenceCommand) -> Result<SilenceReply, ClientError> {
    let mut line = serde_json::to_vec(command).expect("silence requests serialize");
    line.push(b'\n');
    ask(path, &line)
}

/// One request line, one JSON answer line.
fn ask<T: serde::de::DeserializeOwned>(path: &Path, request: &[u8]) -> Result<T, ClientError> {
    let mut stream =
        std::os::unix::net::UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    let reply_error = |reason: String| ClientError::Reply {
        path: path.to_path_buf(),
        reason,
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| reply_error(e.to_string()))?;
    stream
        .write_all(request)
        .map_err(|e| reply_error(e.to_string()))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| reply_error(e.to_string()))?;
    let line = line.as_bytes();
    serde_json::from_slice(line).map_err(|e| match serde_json::from_slice::<ErrorReply>(line) {
        // An agent older than the request says so in an error line.
        Ok(refused) => reply_error(refused.error),
        Err(_) => reply_error(e.to_string()),
    })
}

#[derive(Deserialize)]
struct ErrorReply {
    error: String,
}

/// This process's resident set size, from `/proc/self/status`.
pub fn rss_kib() -> Option<u64> {
    vm_rss_kib(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// The `VmRSS:` line of a `/proc/PID/status` text, in KiB (the kernel
/// writes `kB` and means KiB).
fn vm_rss_kib(status: &str) -> Option<u64> {
    let value = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    value.trim().strip_suffix("kB")?.trim().parse().ok()
}

/// The status as a person reads it.
pub fn render(status: &Status) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "agent {} (hopwatch {}, pid {}, boot {})",
        escape(&status.agent),
        escape(&status.version),
        status.pid,
        escape(&status.boot)
    );
    let _ = writeln!(
        out,
        "up {}s, config {}, source {}, trace backend {}, link watch {}, every {}ms",
        status.uptime_s,
        escape(&status.config),
        status.source,
        status.trace_backend,
        status.link_watch,
        status.interval_ms
    );
    if let Some(stretch) = &status.interval_stretched {
        let _ = writeln!(
            out,
            "polling every {}ms instead, for {}s: {}",
            status.effective_interval_ms,
            stretch.for_s,
            escape(&stretch.reason)
        );
    }
    let _ = writeln!(
        out,
        "{} interfaces, {} ticks, last poll {}µs (max {}µs), last tick {}µs (max {}µs), rss {} KiB, {} events",
        status.interfaces,
        status.ticks,
        status.last_poll_us,
        status.max_poll_us,
        status.last_tick_us,
        status.max_tick_us,
        status
            .rss_kib
            .map(|r| r.to_string())
            .unwrap_or_else(|| "?".into()),
        status.last_seq
    );
    if let (Some(heap), Some(limit)) = (status.heap_kib, status.memory_limit_kib) {
        let _ = writeln!(out, "heap {heap} KiB of memory_limit {limit} KiB");
    }
    if status.source_errors > 0 || status.skipped_lines > 0 {
        let _ = writeln!(
            out,
            "source errors {} (last: {}), skipped lines {}",
            status.source_errors,
            escape(status.last_source_error.as_deref().unwrap_or("-")),
            status.skipped_lines
        );
    }
    let _ = writeln!(out, "\nRULES");
    for r in &status.rules {
        let _ = writeln!(
            out,
            "  {:<20} {:<9} {}  on {}",
            escape(&r.name),
            r.severity.as_str(),
            escape(&r.when),
            escape(&r.interfaces.join(" "))
        );
        if !r.kind.is_empty() {
            let _ = writeln!(out, "    kind {}", escape(&r.kind.join(" ")));
        }
        if !r.unavailable.is_empty() {
            let _ = writeln!(
                out,
                "    unavailable on {}",
                unavailable_list(&r.unavailable)
            );
        }
    }
    let _ = writeln!(out, "\nFIRING ({})", status.firing.len());
    for f in &status.firing {
        let _ = writeln!(
            out,
            "  {:<20} {:<16} {:<9} value {} for {}s",
            escape(&f.rule),
            escape(&f.interface),
            f.severity.as_str(),
            f.value,
            f.for_s
        );
    }
    if !status.silences.is_empty() {
        let ids: Vec<_> = status.silences.iter().map(|s| escape(&s.id)).collect();
        let _ = writeln!(
            out,
            "\nSILENCES ({}): {}  (hopwatch silence list)",
            status.silences.len(),
            ids.join(" ")
        );
    }
    let _ = writeln!(out, "\nOUTPUTS");
    for o in &status.outputs {
        let health = match &o.last_error {
            Some(e) => format!("failing: {}", escape(e)),
            None => "ok".into(),
        };
        let _ = writeln!(
            out,
            "  {:<8} sent {} failures {} dropped {} queued {}  {}",
            o.name, o.sent, o.failures, o.dropped, o.queued, health
        );
        if let Some(c) = &o.collector {
            render_collector(&mut out, c);
        }
    }
    out
}

/// `Vlan2001 (tx_errors), nve1 (tx_errors)`, cut short on a big switch.
fn unavailable_list(list: &[UnavailableStatus]) -> String {
    const SHOWN: usize = 8;
    let mut text = list
        .iter()
        .take(SHOWN)
        .map(|u| format!("{} ({})", escape(&u.interface), u.metrics.join(", ")))
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > SHOWN {
        text.push_str(&format!(" and {} more", list.len() - SHOWN));
    }
    text
}

fn render_collector(out: &mut String, c: &CollectorStatus) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "           {}{} {} for {}s; {} connects, {} refused",
        escape(&c.address),
        if c.tls { " (tls)" } else { "" },
        c.state,
        c.state_for_s,
        c.connects,
        c.refused
    );
    if c.addresses.len() > 1 {
        let list: Vec<_> = c.addresses.iter().map(|a| escape(a)).collect();
        let _ = writeln!(
            out,
            "           collectors {} ({})",
            list.join(", "),
            c.order.replace('_', " ")
        );
    }
    let _ = writeln!(
        out,
        "           spool {} events, {} of {}; dropped {}; disk errors {}{}",
        c.spool_events,
        format_size(c.spool_bytes),
        format_size(c.spool_max),
        c.spool_dropped,
        c.disk_errors,
        c.last_disk_error
            .as_ref()
            .map(|e| format!(" (last: {})", escape(e)))
            .unwrap_or_default()
    );
    if c.in_memory > 0 {
        let _ = writeln!(
            out,
            "           {} events wait in memory for the spool",
            c.in_memory
        );
    }
    if c.quarantined > 0 {
        let _ = writeln!(
            out,
            "           {} lines the collector refused are set aside in quarantine.jsonl",
            c.quarantined
        );
    }
    for b in &c.boots {
        let _ = writeln!(
            out,
            "           boot {}: acked through seq {}, spooled through {}, {} waiting",
            escape(&b.boot),
            b.acked_seq,
            b.last_seq,
            b.events
        );
    }
}

/// Sizes print the way the config reads them.
pub use hopwatch_wire::size::format_size;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_from_proc_self_status() {
        let status = "Name:\thopwatch\nVmHWM:\t    9000 kB\nVmRSS:\t    4242 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(vm_rss_kib(status), Some(4242));
        assert_eq!(vm_rss_kib("Name:\tx\n"), None);
        assert_eq!(vm_rss_kib("VmRSS:\t12 MB\n"), None);
        assert_eq!(vm_rss_kib("VmRSS:\n"), None);
        // The real file: this test process holds at least its own code.
        let real = rss_kib().expect("VmRSS in /proc/self/status");
        assert!(real > 100, "{real} KiB");
    }

    #[test]
    fn requests_are_bounded_and_never_echoed_whole() {
        assert_eq!(request(b"status\n"), Request::Status);
        assert_eq!(request(b" status \r\n"), Request::Status);
        assert_eq!(request(b"status"), Request::Status);
        let long = vec![b'x'; MAX_REQUEST + 1];
        assert_eq!(request(&long), Request::TooLong);
        // Exactly at the bound, with or without its newline, is a request.
        assert_eq!(
            request(&long[..MAX_REQUEST]),
            Request::Unknown("x".repeat(40))
        );
        assert_eq!(
            request(b"\xff\xfe\n"),
            Request::Unknown("\u{fffd}\u{fffd}".into())
        );
        // An error quoting the request is still one JSON object.
        let Request::Unknown(word) = request(b"sta\"tus\n") else {
            panic!("not unknown");
        };
        let reply: serde_json::Value = serde_json::from_str(&error_reply(&format!(
            "unknown request {word:?}; send status"
        )))
        .unwrap();
        assert_eq!(
            reply["error"],
            "unknown request \"sta\\\"tus\"; send status"
        );
    }

    #[test]
    fn silence_requests_are_json_lines() {
        assert_eq!(
            request(b"{\"remove\":{\"id\":\"l-1\"}}\n"),
            Request::Silence(SilenceCommand::Remove { id: "l-1".into() })
        );
        assert_eq!(
            request(b" {\"list\":{}}\n"),
            Request::Silence(SilenceCommand::List {})
        );
        let Request::BadSilence(why) = request(b"{\"mute\":{}}\n") else {
            panic!("not refused");
        };
        assert!(why.contains("unknown variant `mute`"), "{why}");
    }

    #[test]
    fn status_names_the_silences_in_force() {
        let mut status: Status = serde_json::from_value(serde_json::json!({
            "agent": "leaf1", "boot": "b", "version": "0", "pid": 1, "uptime_s": 1,
            "config": "c", "source": "procfs", "link_watch": "poll", "interval_ms": 1000,
            "interfaces": 0, "ticks": 0, "source_errors": 0, "last_source_error": null,
            "skipped_lines": 0, "last_tick_us": 0, "max_tick_us": 0, "rss_kib": null,
            "last_seq": 0, "rules": [], "firing": [], "outputs": []
        }))
        .unwrap();
        // An agent without silences says nothing of them.
        assert!(!render(&status).contains("SILENCES"));
        assert!(!serde_json::to_string(&status).unwrap().contains("silences"));
        status.silences = vec![
            crate::silence::tests::silence("l-00000000000000aa", "Eth1-*", None, 0, 60),
            crate::silence::tests::silence("c-00000000000000bb", "*", None, 0, 60),
        ];
        let text = render(&status);
        assert!(
            text.contains("SILENCES (2): l-00000000000000aa c-00000000000000bb"),
            "{text}"
        );
    }

    #[test]
    fn unavailable_interfaces_are_named_and_cut_short() {
        let list: Vec<UnavailableStatus> = (1..=10)
            .map(|n| UnavailableStatus {
                interface: format!("Vlan{n}"),
                metrics: vec!["tx_errors".into()],
            })
            .collect();
        let text = unavailable_list(&list);
        assert!(
            text.starts_with("Vlan1 (tx_errors), Vlan2 (tx_errors)"),
            "{text}"
        );
        assert!(text.ends_with("Vlan8 (tx_errors) and 2 more"), "{text}");
        // Older agents send no list; it reads as none.
        let rule: RuleStatus = serde_json::from_str(
            r#"{"name":"r","when":"oper_up == 0","severity":"warning","interfaces":["*"]}"#,
        )
        .unwrap();
        assert!(rule.unavailable.is_empty());
        assert!(
            !serde_json::to_string(&rule)
                .unwrap()
                .contains("unavailable")
        );
    }

    #[test]
    fn sizes_format_in_binary_units() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(64 << 20), "64 MiB");
        assert_eq!(format_size(12_800), "12.5 KiB");
    }
}
