//! Helpers for the collector's integration tests: temp dirs, the collector
//! in-process (on listeners bound to port 0) or as the real binary, a fake
//! agent that speaks the wire protocol over a real socket (trace requests
//! included), a small HTTP client, and event builders.

#![allow(dead_code)]

use hopwatch_collector::Collector;
use hopwatch_collector::config::Config;
use hopwatch_collector::fabric::Fabric;
use hopwatch_wire::event::{
    Alert, AlertState, Body, Event, Heartbeat, InterfaceStatus, Link, LinkState, Severity,
    VrfAddresses,
};
use hopwatch_wire::trace::{TraceAnswer, TraceQuery};
use hopwatch_wire::wire::{
    CollectorMessage, Hello, HelloTag, PROTOCOL_VERSION, TraceResult, TraceResultTag,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod fake_agent;
pub use fake_agent::*;

pub const AGENT_TOKEN: &str = "agent-secret-0123456789";
pub const API_TOKEN: &str = "api-secret-0123456789";

/// A directory removed on drop unless the test failed.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "hopwatch-collector-test-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("kept {} for a look", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The config text for a test collector in `dir` with known tokens:
/// `collector_keys` go in `[collector]`, `extra` holds further tables (but
/// not `[collector]`, `[auth]` or `[store]`). The store is this binary's
/// ([`crate::STORE`]).
pub fn config_text(dir: &Path, collector_keys: &str, extra: &str) -> String {
    format!(
        "[collector]\ndata_dir = {:?}\n{collector_keys}\n\
         [auth]\nagent_tokens = [{AGENT_TOKEN:?}]\napi_tokens = [{API_TOKEN:?}]\n\
         {}{extra}\n",
        dir.display().to_string(),
        store_text(dir)
    )
}

/// Which store a test binary gives its collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The default: a SQLite file under `data_dir`.
    Sqlite,
    /// A fresh database per data dir on the test process's cluster.
    Postgres,
}

/// Where a data dir keeps the URL of its PostgreSQL database, so that a
/// collector restarted on the same dir finds the same events.
const PG_URL_FILE: &str = "pg-url";

/// The `[store]` table for a collector on `dir`: none on SQLite; on
/// PostgreSQL, the dir's database (created on first use).
pub fn store_text(dir: &Path) -> String {
    match crate::STORE {
        Store::Sqlite => String::new(),
        Store::Postgres => format!(
            "[store]\nkind = \"postgres\"\nurl = {:?}\nsslmode = \"disable\"\n",
            pg_url(dir)
        ),
    }
}

/// The PostgreSQL database of data dir `dir`, created on first use.
pub fn pg_url(dir: &Path) -> String {
    let file = dir.join(PG_URL_FILE);
    if let Ok(url) = std::fs::read_to_string(&file) {
        return url;
    }
    if let Err(reason) = crate::pgcluster::available() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the PostgreSQL suite: {reason}, and CI=true makes it mandatory");
        }
        // Every test of this binary needs the cluster: skip them all.
        eprintln!("skipping the PostgreSQL suite: {reason}");
        std::process::exit(0);
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().replace("hopwatch-collector-test-", ""))
        .unwrap_or_default();
    let url = crate::pgcluster::shared().database(&name);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&file, &url).unwrap();
    url
}

/// Points the collector of data dir `to` at the PostgreSQL database of
/// `from`: two collectors sharing one store.
pub fn share_store(from: &Path, to: &Path) {
    std::fs::write(to.join(PG_URL_FILE), pg_url(from)).unwrap();
}

/// Points the collector of data dir `dir` at the PostgreSQL database `url`
/// (one of a cluster the test started itself).
pub fn point_store(dir: &Path, url: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(PG_URL_FILE), url).unwrap();
}

/// Whether this binary's store is SQLite; otherwise says why `test`, which
/// is about SQLite's file, does not run here.
pub fn sqlite_only(test: &str, why: &str) -> bool {
    if crate::STORE == Store::Sqlite {
        return true;
    }
    eprintln!("{test} is about the SQLite store ({why}): not run on PostgreSQL");
    false
}

/// Runs `sql`, a query answering one integer (`SELECT count(*) ...`), on
/// the store of data dir `dir`, whichever it is. Written in the dialect
/// both stores speak (see `store::sql`).
pub fn count_in(dir: &Path, sql: &str) -> i64 {
    match crate::STORE {
        Store::Sqlite => {
            let db = rusqlite::Connection::open(dir.join("hopwatch.db")).unwrap();
            count(&db, sql)
        }
        Store::Postgres => {
            let url = pg_url(dir);
            crate::pgcluster::shared().one_i64(url.rsplit('/').next().unwrap(), sql)
        }
    }
}

/// The collector running in this process on its own runtime thread.
pub struct Server {
    pub agents: SocketAddr,
    pub http: SocketAddr,
    pub dir: TempDir,
    /// The switchboard and owners map the collector's traces use.
    pub fabric: Arc<Fabric>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// `collector_keys` go in `[collector]` (after data_dir); `extra` is
    /// further tables such as `[rate_limit]`.
    pub fn start(name: &str, collector_keys: &str, extra: &str) -> Server {
        Server::start_at(name, "127.0.0.1:0", collector_keys, extra)
    }

    /// As [`Server::start`], with the agents' listener bound to `agents`.
    pub fn start_at(name: &str, agents: &str, collector_keys: &str, extra: &str) -> Server {
        Server::start_in(TempDir::new(name), agents, collector_keys, extra)
    }

    /// As [`Server::start_at`], on the data in `dir` (a stopped collector's).
    pub fn start_in(dir: TempDir, agents: &str, collector_keys: &str, extra: &str) -> Server {
        let agents_bind = agents.to_string();
        let text = config_text(&dir.path, collector_keys, extra);
        let config = Config::parse(&text, "test.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let collector = Collector::build(config).unwrap();
        let fabric = collector.fabric();
        let (addrs_tx, addrs_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let agents = tokio::net::TcpListener::bind(&agents_bind).await.unwrap();
                let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addrs_tx
                    .send((agents.local_addr().unwrap(), http.local_addr().unwrap()))
                    .unwrap();
                collector
                    .run(agents, http, async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let (agents, http) = addrs_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Server {
            agents,
            http,
            dir,
            fabric,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The raw SQLite file; for tests about SQLite itself (see
    /// [`sqlite_only`]). Others ask with [`Server::count`].
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path.join("hopwatch.db")).unwrap()
    }

    /// Holds the store so that nothing can be committed (SQLite's write
    /// lock; on PostgreSQL, the events table locked against writes) until
    /// the answer is released or dropped.
    pub fn hold_writes(&self) -> WriteHold {
        match crate::STORE {
            Store::Sqlite => {
                let db = self.db();
                db.execute_batch("BEGIN IMMEDIATE").unwrap();
                WriteHold::Sqlite(db)
            }
            Store::Postgres => {
                let url = pg_url(&self.dir.path);
                WriteHold::Postgres(crate::pgcluster::shared().hold(
                    url.rsplit('/').next().unwrap(),
                    "LOCK TABLE events IN EXCLUSIVE MODE",
                ))
            }
        }
    }

    /// Runs `f` on this collector's store, whichever it is, through the
    /// read side the collector itself uses.
    pub fn read_store<T>(
        &self,
        f: impl FnOnce(&dyn hopwatch_collector::store::sql::Sql) -> Result<T, hopwatch_collector::store::StoreError>,
    ) -> T {
        let text = config_text(&self.dir.path, "", "");
        let config = Config::parse(&text, "test.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let reads = runtime
            .block_on(hopwatch_collector::store::reads::Reads::open(
                &config.store,
                &self.dir.path,
            ))
            .unwrap();
        reads.with(f).unwrap()
    }

    /// `sql` (one integer, e.g. `SELECT count(*) ...`) on this collector's
    /// store, whichever it is.
    pub fn count(&self, sql: &str) -> i64 {
        count_in(&self.dir.path, sql)
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        http_get(self.http, path, Some(API_TOKEN))
    }

    pub fn get_json(&self, path: &str) -> Value {
        let response = self.get(path);
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        serde_json::from_str(&response.body).unwrap()
    }

    /// Stops the collector and waits until it has committed and closed.
    pub fn stop(mut self) -> TempDir {
        self.shutdown();
        let dir = TempDir {
            path: self.dir.path.clone(),
        };
        // The original guard must not delete what the caller keeps.
        self.dir.path = PathBuf::new();
        dir
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("collector thread");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What [`Server::hold_writes`] holds.
pub enum WriteHold {
    Sqlite(rusqlite::Connection),
    Postgres(crate::pgcluster::Held),
}

impl WriteHold {
    pub fn release(self) {
        match self {
            WriteHold::Sqlite(db) => db.execute_batch("COMMIT").unwrap(),
            WriteHold::Postgres(held) => held.release(),
        }
    }
}

/// Counts rows of `sql` (a `SELECT count(*)`-like query) in the store.
pub fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real `hopwatch-collector` binary as a child process.
pub struct Process {
    pub child: Child,
    pub agents: SocketAddr,
    pub http: SocketAddr,
    pub config: PathBuf,
}

impl Process {
    /// Starts the binary with a config in `dir` on fixed ports (so a restart
    /// finds the same ones) and waits until /healthz answers.
    pub fn start(dir: &Path, agents: u16, http: u16, collector_keys: &str, extra: &str) -> Process {
        let keys = format!(
            "agents_listen = \"127.0.0.1:{agents}\"\nhttp_listen = \"127.0.0.1:{http}\"\n{collector_keys}"
        );
        let config = dir.join("collector.toml");
        std::fs::write(&config, config_text(dir, &keys, extra)).unwrap();
        Process::spawn(&config, agents, http)
    }

    pub fn spawn(config: &Path, agents: u16, http: u16) -> Process {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.with_file_name("stderr.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
            .args(["run", "-c"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let process = Process {
            child,
            agents: format!("127.0.0.1:{agents}").parse().unwrap(),
            http: format!("127.0.0.1:{http}").parse().unwrap(),
            config: config.to_path_buf(),
        };
        process.wait_healthy();
        process
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = try_http_get(self.http, "/healthz", None)
                && r.status == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the collector never became healthy"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl HttpResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

pub fn http_get(addr: SocketAddr, path: &str, token: Option<&str>) -> HttpResponse {
    try_http_get(addr, path, token).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// A one-shot HTTP/1.1 GET with `Connection: close`.
pub fn try_http_get(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {head:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<HashMap<_, _>>();
    let body = if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// A chunked HTTP/1.1 body as the bytes it carries.
pub fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A metric's value in Prometheus text, e.g.
/// `hopwatch_collector_connections_rejected_total{reason="bad_token"}`.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An event of `agent`/`boot` stamped `at_ms`.
pub fn event(agent: &str, boot: &str, seq: u64, at_ms: i64, body: Body) -> Event {
    Event {
        v: 1,
        agent: agent.into(),
        boot: boot.into(),
        seq,
        ts: humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(at_ms as u64))
            .to_string(),
        body,
    }
}

pub fn heartbeat(interfaces: &[(&str, bool)]) -> Body {
    Body::Heartbeat(Heartbeat {
        uptime_s: 1,
        interfaces: interfaces
            .iter()
            .map(|(name, up)| InterfaceStatus {
                name: (*name).into(),
                state: LinkState::from_up(*up),
            })
            .collect(),
        addresses: vec![],
        spool_depth: 0,
        events_dropped: 0,
        firing: 0,
    })
}

pub fn link(interface: &str, up: bool) -> Body {
    Body::Link(Link {
        interface: interface.into(),
        state: LinkState::from_up(up),
        previous: LinkState::from_up(!up),
        carrier_changes: 1,
        oper_state: if up { "up" } else { "down" }.into(),
        message: format!("{interface} went {}", if up { "up" } else { "down" }),
        admin: None,
        reason: None,
    })
}

pub fn alert(interface: &str, firing: bool) -> Body {
    Body::Alert(Alert {
        state: if firing {
            AlertState::Firing
        } else {
            AlertState::Resolved
        },
        rule: "tx-errors".into(),
        severity: Severity::Critical,
        interface: interface.into(),
        expr: "increase(tx_errors[5s]) > 3".into(),
        value: Some(if firing { 7.0 } else { 0.0 }),
        threshold: 3.0,
        message: if firing {
            format!("{interface} tx_errors increased by 7 in 5s (threshold 3)")
        } else {
            format!("{interface} tx_errors back to normal")
        },
        labels: Default::default(),
        silenced: false,
        silence: None,
    })
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// As [`wait_for`], for a condition read through the API: polled at most
/// seven times a second, within the default rate limit (10 requests/s,
/// burst 50), so a slow machine waiting long never turns the wait into
/// 429s.
pub fn wait_for_api<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(150));
    }
}

pub use crate::netns::{Netns, can_use_netns, may_run, run, unique};

/// The `hopwatch` agent binary next to this test's own build, as `cargo
/// test --workspace` (or `cargo build -p hopwatch-agent --bin hopwatch`)
/// leaves it. None, with the reason printed, when it is not there and this
/// is not CI.
pub fn agent_binary(test: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/tests-HASH → target/<profile>/hopwatch
    let path = exe.parent()?.parent()?.join("hopwatch");
    if path.exists() {
        return Some(path);
    }
    let reason = format!(
        "{} not found; build it with `cargo build -p hopwatch-agent --bin hopwatch`",
        path.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {reason}");
    }
    eprintln!("skipping {test}: {reason}");
    None
}
