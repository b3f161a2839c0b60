//! The real binary's `[output.collector]` against a fake collector in the
//! test: a real TCP (and TLS) listener speaking the wire protocol, storing
//! events by `(boot, seq)` and acknowledging them as the real collector
//! does. This file holds that collector, the fixture machine and the agent
//! process; the tests are grouped by what they put the output through.
//! Failover between several collectors runs against the real collector.
//! Only the full-disk kill test needs root.

use crate::util::{TempDir, hopwatch};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod auth;
mod delivery;
mod failover;
mod kill;
mod memory;
mod outage;
mod spool;
mod state_dir;

const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";
const TOKEN: &str = "agent-token-0123456789";

/// How the fake collector answers.
#[derive(Clone)]
struct Behaviour {
    token: String,
    /// Acknowledge each event as it arrives.
    ack: bool,
    /// Answer `hello` with this `last_seq` for every boot, instead of what
    /// is stored.
    welcome_last_seq: Option<u64>,
    /// Trace queries to send after the welcome, with ids 1, 2, ...
    traces: Vec<Value>,
    /// Close the connection right after the welcome, as a collector whose
    /// store fails does.
    close_after_welcome: bool,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        Behaviour {
            token: TOKEN.into(),
            ack: true,
            welcome_last_seq: None,
            traces: Vec::new(),
            close_after_welcome: false,
        }
    }
}

#[derive(Debug, Clone)]
enum Msg {
    Hello(Value),
    Event(Value),
    TraceResult(Value),
    Goodbye(Value),
}

#[derive(Default)]
struct State {
    /// Everything received, in order, over every connection.
    log: Vec<Msg>,
    /// Events stored, by boot and seq.
    stored: BTreeMap<String, BTreeSet<u64>>,
}

struct Inner {
    behaviour: Mutex<Behaviour>,
    state: Mutex<State>,
    changed: Condvar,
    /// Clones of every open connection's socket, to cut them on stop.
    conns: Mutex<Vec<TcpStream>>,
    stopping: AtomicBool,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// A collector that stores events in memory.
struct FakeCollector {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: Option<thread::JoinHandle<()>>,
}

impl FakeCollector {
    fn start(port: u16, behaviour: Behaviour) -> FakeCollector {
        FakeCollector::start_with(port, behaviour, None, None)
    }

    /// On `port` (0 for any), carrying over what `previous` stored, as a
    /// restarted collector keeps its database.
    fn start_with(
        port: u16,
        behaviour: Behaviour,
        tls: Option<Arc<rustls::ServerConfig>>,
        previous: Option<FakeCollector>,
    ) -> FakeCollector {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("binding the fake collector");
        let addr = listener.local_addr().unwrap();
        let state = previous
            .map(|mut p| {
                p.stop();
                std::mem::take(&mut *p.inner.state.lock().unwrap())
            })
            .unwrap_or_default();
        let inner = Arc::new(Inner {
            behaviour: Mutex::new(behaviour),
            state: Mutex::new(state),
            changed: Condvar::new(),
            conns: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            tls,
        });
        let shared = Arc::clone(&inner);
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                shared
                    .conns
                    .lock()
                    .unwrap()
                    .push(stream.try_clone().unwrap());
                let conn = Arc::clone(&shared);
                thread::spawn(move || serve(&conn, stream));
            }
        });
        FakeCollector {
            addr,
            inner,
            accept: Some(accept),
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn set(&self, behaviour: Behaviour) {
        *self.inner.behaviour.lock().unwrap() = behaviour;
    }

    /// Closes the listener and every connection, as a crashed collector.
    fn stop(&mut self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        for conn in self.inner.conns.lock().unwrap().drain(..) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            accept.join().unwrap();
        }
    }

    /// Waits until `f` finds what it looks for in the collector's state.
    fn wait<T>(&self, timeout: Duration, what: &str, f: impl Fn(&State) -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        let mut state = self.inner.state.lock().unwrap();
        loop {
            if let Some(found) = f(&state) {
                return found;
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("the collector never saw {what}; log: {:#?}", state.log));
            state = self.inner.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    fn hellos(&self) -> Vec<Value> {
        let state = self.inner.state.lock().unwrap();
        state
            .log
            .iter()
            .filter_map(|m| match m {
                Msg::Hello(h) => Some(h.clone()),
                _ => None,
            })
            .collect()
    }

    fn events(&self) -> Vec<Value> {
        events_of(&self.inner.state.lock().unwrap())
    }
}

impl Drop for FakeCollector {
    fn drop(&mut self) {
        self.stop();
    }
}

fn events_of(state: &State) -> Vec<Value> {
    state
        .log
        .iter()
        .filter_map(|m| match m {
            Msg::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One agent connection, as the real collector handles it.
fn serve(inner: &Inner, tcp: TcpStream) {
    let raw = tcp.try_clone().unwrap();
    let stream: Box<dyn Stream> = match &inner.tls {
        Some(config) => {
            let conn = rustls::ServerConnection::new(Arc::clone(config)).unwrap();
            Box::new(rustls::StreamOwned::new(conn, tcp))
        }
        None => Box::new(tcp),
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
        return;
    }
    let hello: Value = serde_json::from_str(&line).expect("hello is JSON");
    assert_eq!(hello["type"], "hello");
    let behaviour = inner.behaviour.lock().unwrap().clone();
    {
        let mut state = inner.state.lock().unwrap();
        state.log.push(Msg::Hello(hello.clone()));
        inner.changed.notify_all();
    }
    if hello["token"] != behaviour.token.as_str() {
        let _ = reader
            .get_mut()
            .write_all(b"{\"type\":\"refused\",\"reason\":\"unknown agent token\"}\n");
        return;
    }
    let mut last_seq = serde_json::Map::new();
    {
        let state = inner.state.lock().unwrap();
        let boots = hello["boots"]
            .as_array()
            .unwrap()
            .iter()
            .chain([&hello["boot"]]);
        for boot in boots {
            let boot = boot.as_str().unwrap();
            let seq = behaviour.welcome_last_seq.unwrap_or_else(|| {
                state
                    .stored
                    .get(boot)
                    .and_then(|s| s.last().copied())
                    .unwrap_or(0)
            });
            last_seq.insert(boot.to_string(), json!(seq));
        }
    }
    let welcome = json!({"type": "welcome", "protocol": 2, "last_seq": last_seq});
    if writeln!(reader.get_mut(), "{welcome}").is_err() {
        return;
    }
    if behaviour.close_after_welcome {
        let _ = raw.shutdown(std::net::Shutdown::Both);
        return;
    }
    for (id, query) in behaviour.traces.iter().enumerate() {
        let request = json!({"type": "trace_request", "id": id + 1, "query": query});
        if writeln!(reader.get_mut(), "{request}").is_err() {
            return;
        }
    }
    loop {
        line.clear();
        if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            return;
        }
        let event: Value = serde_json::from_str(&line).expect("an event line is JSON");
        if event["type"] == "goodbye" {
            inner.state.lock().unwrap().log.push(Msg::Goodbye(event));
            inner.changed.notify_all();
            continue;
        }
        if event["type"] == "trace_result" {
            inner
                .state
                .lock()
                .unwrap()
                .log
                .push(Msg::TraceResult(event));
            inner.changed.notify_all();
            continue;
        }
        let boot = event["boot"].as_str().unwrap().to_string();
        let seq = event["seq"].as_u64().unwrap();
        if !event["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')) {
            // As the real collector: a line it can never store is named,
            // then the connection is refused.
            let reject = json!({"type": "reject", "boot": boot, "seq": seq, "reason": "bad `ts`"});
            let _ = writeln!(reader.get_mut(), "{reject}");
            let _ = reader
                .get_mut()
                .write_all(b"{\"type\":\"refused\",\"reason\":\"expected an event\"}\n");
            let _ = raw.shutdown(std::net::Shutdown::Both);
            return;
        }
        {
            let mut state = inner.state.lock().unwrap();
            state.log.push(Msg::Event(event));
            state.stored.entry(boot.clone()).or_default().insert(seq);
            inner.changed.notify_all();
        }
        if inner.behaviour.lock().unwrap().ack {
            let ack = json!({"type": "ack", "boot": boot, "seq": seq});
            if writeln!(reader.get_mut(), "{ack}").is_err() {
                return;
            }
        }
    }
}

/// A port nobody listens on yet.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fixture machine with one interface, `eth0`, and a state directory.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TempDir::new("hopwatch-collector");
        let f = Fixture { dir };
        std::fs::create_dir_all(f.dir.path().join("proc/net")).unwrap();
        let eth0 = f.dir.path().join("sys/class/net/eth0");
        std::fs::create_dir_all(&eth0).unwrap();
        for (name, value) in [
            ("flags", "0x1003"),
            ("carrier", "1"),
            ("operstate", "up"),
            ("carrier_changes", "1"),
            ("speed", "10000"),
        ] {
            std::fs::write(eth0.join(name), format!("{value}\n")).unwrap();
        }
        f.counters(0);
        f
    }

    /// eth0 with `tx_errors` errors sent.
    fn counters(&self, tx_errors: u64) {
        let path = self.dir.path().join("proc/net/dev");
        let tmp = path.with_extension("tmp");
        std::fs::write(
            &tmp,
            format!("{HEADER}  eth0: 5000 50 0 0 0 0 0 0 7000 70 {tx_errors} 0 0 0 0 0\n"),
        )
        .unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A config with heartbeats every `heartbeat` and `collector` as the
    /// body of `[output.collector]`.
    fn config(&self, heartbeat: &str, collector: &str) -> PathBuf {
        self.dir.write(
            "agent.toml",
            &format!(
                r#"[agent]
name = "fixture"
interval = "100ms"
heartbeat = "{heartbeat}"
state_dir = "{state}"
proc_root = "{root}/proc"
sys_root = "{root}/sys"

[links]
interfaces = ["eth*"]

[[rule]]
name = "tx-errors"
interfaces = ["eth*"]
when = "increase(tx_errors[1s]) > 3"
severity = "critical"

[output.collector]
{backoff}{collector}
"#,
                state = self.state().display(),
                root = self.dir.path().display(),
                // Short, so tests do not wait, unless the test sets its own.
                backoff = if collector.contains("backoff_max") {
                    ""
                } else {
                    "backoff_max = \"500ms\"\n"
                },
            ),
        )
    }

    fn spawn(&self, config: &Path) -> Agent {
        let stderr = self
            .dir
            .path()
            .join(format!("stderr-{}.log", crate::util::unique("a")));
        let child = hopwatch()
            .args(["run", "-c"])
            .arg(config)
            .env("HOPWATCH_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawning hopwatch");
        Agent { child, stderr }
    }

    fn status(&self) -> Option<Value> {
        let out = hopwatch()
            .args(["status", "--json", "--socket"])
            .arg(self.state().join("hopwatch.sock"))
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    /// Polls the collector output's status until `pred` holds.
    fn collector_until(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Some(status) = self.status() {
                let collector = status["outputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|o| o["name"] == "collector")
                    .expect("a collector output")["collector"]
                    .clone();
                if pred(&collector) {
                    return collector;
                }
                last = collector;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("the collector output never reached {what}: {last:#}");
    }
}

struct Agent {
    child: Child,
    stderr: PathBuf,
}

impl Agent {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then whether it exited cleanly.
    fn stop(&mut self) -> bool {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(Instant::now() < deadline, "agent did not exit on SIGTERM");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

fn of_boot<'a>(events: &'a [Value], boot: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["boot"] == boot).collect()
}

fn collector_table(port: u16, extra: &str) -> String {
    format!("address = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n{extra}")
}
