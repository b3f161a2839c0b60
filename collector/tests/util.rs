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
/// (one on a cluster the test started itself).
pub fn set_pg_url(dir: &Path, url: &str) {
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

/// What the collector answered a hello.
#[derive(Debug)]
pub enum Greeting {
    Welcome(BTreeMap<String, u64>),
    Refused(String),
}

/// A fake agent on a real socket: hello, events as lines, acks read by a
/// thread of its own into `acked`; trace requests answered as
/// [`Answering`] says, by a writer thread of its own so answering never
/// holds up reading.
pub struct FakeAgent {
    pub name: String,
    pub boot: String,
    stream: TcpStream,
    /// Every write goes through it, so an answer never lands in the middle
    /// of a line of events.
    writer: Arc<Mutex<TcpStream>>,
    pub acked: Arc<(Mutex<Acks>, Condvar)>,
    answering: Arc<Mutex<Answering>>,
    reader: Option<thread::JoinHandle<()>>,
    answerer: Option<thread::JoinHandle<()>>,
}

/// The acks received and how the connection ended.
#[derive(Debug, Default)]
pub struct Acks {
    pub per_boot: HashMap<String, u64>,
    pub lines: Vec<Value>,
    pub closed: bool,
    pub refused: Option<String>,
    /// Every trace request received, in order: its id and query.
    pub requests: Vec<(u64, Result<TraceQuery, String>)>,
}

/// What a fake agent answers a trace request with, from its id and query.
pub type AnswerFn = dyn Fn(u64, &TraceQuery) -> TraceAnswer + Send + Sync;

/// How a fake agent answers `trace_request` lines.
#[derive(Clone, Default)]
pub enum Answering {
    /// Never answers: what a fake agent always did.
    #[default]
    Silent,
    /// Answers each at once with what the function makes of its id and query.
    With(Arc<AnswerFn>),
    /// Answers each at once with this text as its `result`, readable or not.
    Raw(String),
    /// Sends this whole line for each, with `{id}` replaced by the request's id.
    Line(String),
}

impl Answering {
    /// Answers every hop question as a switch named `switch` would: the
    /// flow delivered, with `switch` in the answer's `switch` field.
    pub fn hops(switch: &str) -> Answering {
        let switch = switch.to_string();
        Answering::With(Arc::new(move |_, query| hop_answer(query, &switch)))
    }
}

/// A trace answer to `query` from a switch named `switch`: the flow as
/// asked, delivered, with no hops of its own.
pub fn hop_answer(query: &TraceQuery, switch: &str) -> TraceAnswer {
    let (request, hop) = match query {
        TraceQuery::Hop(hop) => {
            let mut flow = hop.flow.clone();
            flow.iif = Some(hop.ingress.clone());
            (serde_json::to_value(flow).unwrap(), true)
        }
        TraceQuery::Flow(flow) => (serde_json::to_value(flow).unwrap(), false),
        TraceQuery::Paths(_) => return TraceAnswer::error("this fake agent answers no paths"),
    };
    let trace = serde_json::from_value(serde_json::json!({
        "request": request,
        "success": true,
        "reaches_destination": true,
        "ingress_inferred": false,
        "hops": [],
        "summary": format!("answered by {switch}"),
        "switch": switch,
        "backend": "kernel",
        "elapsed_us": 1,
    }))
    .unwrap();
    if hop {
        TraceAnswer::Hop(trace)
    } else {
        TraceAnswer::Flow(trace)
    }
}

/// The `trace_result` line (with its `\n`) answering request `id`.
pub fn answer_line(id: u64, result: &TraceAnswer) -> String {
    let mut line = serde_json::to_string(&TraceResult {
        kind: TraceResultTag::TraceResult,
        id,
        result: result.clone(),
    })
    .unwrap();
    line.push('\n');
    line
}

/// A hello as a fake agent sends it.
pub fn hello(token: &str, name: &str, boot: &str, boots: &[&str]) -> Hello {
    Hello {
        kind: HelloTag::Hello,
        protocol: PROTOCOL_VERSION,
        token: token.into(),
        agent: name.into(),
        boot: boot.into(),
        boots: boots.iter().map(|b| b.to_string()).collect(),
        version: "0.1.0-test".into(),
        addresses: vec![],
        now: None,
    }
}

impl FakeAgent {
    /// Connects and says hello; Err with the refusal when refused.
    pub fn connect(
        addr: SocketAddr,
        token: &str,
        name: &str,
        boot: &str,
    ) -> Result<(FakeAgent, BTreeMap<String, u64>), String> {
        FakeAgent::connect_with(addr, token, name, boot, &[boot])
    }

    pub fn connect_with(
        addr: SocketAddr,
        token: &str,
        name: &str,
        boot: &str,
        boots: &[&str],
    ) -> Result<(FakeAgent, BTreeMap<String, u64>), String> {
        FakeAgent::connect_hello(addr, hello(token, name, boot, boots))
    }

    /// Connects and says hello reporting `addresses`.
    pub fn connect_addresses(
        addr: SocketAddr,
        token: &str,
        name: &str,
        boot: &str,
        addresses: Vec<VrfAddresses>,
    ) -> Result<(FakeAgent, BTreeMap<String, u64>), String> {
        FakeAgent::connect_hello(
            addr,
            Hello {
                addresses,
                ..hello(token, name, boot, &[boot])
            },
        )
    }

    /// Connects and says `hello` as given.
    pub fn connect_hello(
        addr: SocketAddr,
        hello: Hello,
    ) -> Result<(FakeAgent, BTreeMap<String, u64>), String> {
        let (name, boot) = (hello.agent.clone(), hello.boot.clone());
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).unwrap();
        let mut writer = stream.try_clone().unwrap();
        writeln!(writer, "{}", serde_json::to_string(&hello).unwrap())
            .map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let welcome = match serde_json::from_str::<CollectorMessage>(&line) {
            Ok(CollectorMessage::Welcome { last_seq, .. }) => last_seq,
            Ok(CollectorMessage::Refused { reason }) => return Err(format!("refused: {reason}")),
            other => return Err(format!("unexpected answer {line:?}: {other:?}")),
        };
        reader.get_ref().set_read_timeout(None).unwrap();
        let acked = Arc::new((Mutex::new(Acks::default()), Condvar::new()));
        let shared = Arc::clone(&acked);
        let answering = Arc::new(Mutex::new(Answering::Silent));
        let how = Arc::clone(&answering);
        let writer = Arc::new(Mutex::new(writer));
        let (answers, to_send) = std::sync::mpsc::channel::<String>();
        let out = Arc::clone(&writer);
        let answerer = thread::spawn(move || {
            for line in to_send {
                if out.lock().unwrap().write_all(line.as_bytes()).is_err() {
                    return;
                }
            }
        });
        let thread = thread::spawn(move || {
            let mut line = String::new();
            loop {
                line.clear();
                let n = reader.read_line(&mut line).unwrap_or(0);
                let (lock, cond) = &*shared;
                let mut acks = lock.lock().unwrap();
                if n == 0 {
                    acks.closed = true;
                    cond.notify_all();
                    return;
                }
                let value: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                match value["type"].as_str() {
                    Some("ack") => {
                        let boot = value["boot"].as_str().unwrap_or_default().to_string();
                        let seq = value["seq"].as_u64().unwrap_or(0);
                        let e = acks.per_boot.entry(boot).or_insert(0);
                        assert!(seq >= *e, "acks are cumulative: {seq} after {e}");
                        *e = seq;
                    }
                    Some("refused") => {
                        acks.refused =
                            Some(value["reason"].as_str().unwrap_or_default().to_string());
                    }
                    Some("trace_request") => {
                        if let Ok(CollectorMessage::TraceRequest { id, query }) =
                            serde_json::from_str::<CollectorMessage>(&line)
                        {
                            let answer = match (&*how.lock().unwrap(), &query) {
                                (Answering::Silent, _) => None,
                                (Answering::With(f), Ok(query)) => {
                                    Some(answer_line(id, &f(id, query)))
                                }
                                (Answering::With(_), Err(why)) => {
                                    Some(answer_line(id, &TraceAnswer::error(why)))
                                }
                                (Answering::Raw(result), _) => Some(format!(
                                    "{{\"type\":\"trace_result\",\"id\":{id},\"result\":{result}}}\n"
                                )),
                                (Answering::Line(line), _) => {
                                    Some(format!("{}\n", line.replace("{id}", &id.to_string())))
                                }
                            };
                            if let Some(answer) = answer {
                                let _ = answers.send(answer);
                            }
                            acks.requests.push((id, query));
                        }
                    }
                    _ => {}
                }
                acks.lines.push(value);
                cond.notify_all();
            }
        });
        Ok((
            FakeAgent {
                name,
                boot,
                stream,
                writer,
                acked,
                answering,
                reader: Some(thread),
                answerer: Some(answerer),
            },
            welcome,
        ))
    }

    /// Sends events as lines in one write.
    pub fn send(&mut self, events: &[Event]) -> std::io::Result<()> {
        let mut out = Vec::new();
        for e in events {
            out.extend_from_slice(e.to_json().as_bytes());
            out.push(b'\n');
        }
        self.send_raw(&out)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.lock().unwrap().write_all(bytes)
    }

    /// How trace requests received from now on are answered.
    pub fn answer_traces(&self, how: Answering) {
        *self.answering.lock().unwrap() = how;
    }

    /// Answers trace request `id` now, whatever [`Answering`] says.
    pub fn answer(&mut self, id: u64, result: &TraceAnswer) -> std::io::Result<()> {
        self.send_raw(answer_line(id, result).as_bytes())
    }

    /// The trace requests received so far.
    pub fn trace_requests(&self) -> Vec<(u64, Result<TraceQuery, String>)> {
        self.acked.0.lock().unwrap().requests.clone()
    }

    /// Waits until `n` trace requests have arrived; the first `n`, or None
    /// on timeout.
    pub fn wait_requests(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Option<Vec<(u64, Result<TraceQuery, String>)>> {
        let (lock, cond) = &*self.acked;
        let deadline = Instant::now() + timeout;
        let mut acks = lock.lock().unwrap();
        loop {
            if acks.requests.len() >= n {
                return Some(acks.requests[..n].to_vec());
            }
            if acks.closed || Instant::now() >= deadline {
                return None;
            }
            acks = cond
                .wait_timeout(acks, deadline - Instant::now())
                .unwrap()
                .0;
        }
    }

    /// The highest seq acknowledged for `boot` so far.
    pub fn acked(&self, boot: &str) -> u64 {
        self.acked
            .0
            .lock()
            .unwrap()
            .per_boot
            .get(boot)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until `boot` is acknowledged up to `seq`; false on timeout or
    /// when the connection closed first.
    pub fn wait_acked(&self, boot: &str, seq: u64, timeout: Duration) -> bool {
        let (lock, cond) = &*self.acked;
        let deadline = Instant::now() + timeout;
        let mut acks = lock.lock().unwrap();
        loop {
            if acks.per_boot.get(boot).copied().unwrap_or(0) >= seq {
                return true;
            }
            if acks.closed || Instant::now() >= deadline {
                return false;
            }
            acks = cond
                .wait_timeout(acks, deadline - Instant::now())
                .unwrap()
                .0;
        }
    }

    /// Waits until the collector closes the connection; returns the
    /// refusal it sent, if any.
    pub fn wait_closed(&self, timeout: Duration) -> Option<Option<String>> {
        let (lock, cond) = &*self.acked;
        let deadline = Instant::now() + timeout;
        let mut acks = lock.lock().unwrap();
        while !acks.closed {
            if Instant::now() >= deadline {
                return None;
            }
            acks = cond
                .wait_timeout(acks, deadline - Instant::now())
                .unwrap()
                .0;
        }
        Some(acks.refused.clone())
    }

    /// Another handle on the socket, to write from a second thread.
    pub fn try_clone_stream(&self) -> TcpStream {
        self.stream.try_clone().unwrap()
    }

    pub fn is_closed(&self) -> bool {
        self.acked.0.lock().unwrap().closed
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(thread) = self.reader.take() {
            let _ = thread.join();
        }
        // The reader held the answers' sender, so the answerer ends too.
        if let Some(thread) = self.answerer.take() {
            let _ = thread.join();
        }
    }
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
