//! The real binary's `[output.collector]` against a fake collector in the
//! test: a real TCP (and TLS) listener speaking the wire protocol, storing
//! events by `(boot, seq)` and acknowledging them as the real collector
//! does. Delivery order, resume after `last_seq`, the spool riding out an
//! outage, a SIGKILL and a full disk budget, and a refused token. Needs no
//! root.

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

#[test]
fn events_arrive_in_seq_order_and_acks_empty_the_spool() {
    let fx = Fixture::new();
    let collector = FakeCollector::start(0, Behaviour::default());
    let mut agent = fx.spawn(&fx.config("300ms", &collector_table(collector.port(), "")));

    let hello = collector.wait(Duration::from_secs(5), "a hello", |s| {
        s.log.iter().find_map(|m| match m {
            Msg::Hello(h) => Some(h.clone()),
            _ => None,
        })
    });
    assert_eq!(hello["agent"], "fixture");
    assert_eq!(hello["protocol"], 1);
    assert!(hello["addresses"][0]["vrf"] == "default", "{hello}");
    let boot = hello["boot"].as_str().unwrap().to_string();

    // The first heartbeat follows the first sample; then errors count.
    collector.wait(Duration::from_secs(5), "a heartbeat", |s| {
        events_of(s)
            .iter()
            .any(|e| e["type"] == "heartbeat")
            .then_some(())
    });
    fx.counters(9);
    let events = collector.wait(Duration::from_secs(5), "an alert and heartbeats", |s| {
        let events = events_of(s);
        let alert = events.iter().any(|e| e["type"] == "alert");
        let beats = events.iter().filter(|e| e["type"] == "heartbeat").count();
        (alert && beats >= 3).then_some(events)
    });
    assert!(events.iter().all(|e| e["boot"] == boot.as_str()));
    let got = seqs(&events);
    assert_eq!(
        got,
        (1..=got.len() as u64).collect::<Vec<_>>(),
        "in order, none missing"
    );
    let alert = events.iter().find(|e| e["type"] == "alert").unwrap();
    assert_eq!(alert["interface"], "eth0");
    assert_eq!(alert["state"], "firing");

    // Acknowledged events leave the spool, files and all.
    let status = fx.collector_until(Duration::from_secs(5), "an empty spool", |c| {
        c["state"] == "connected"
            && c["spool_events"] == 0
            && c["spool_bytes"] == 0
            && c["boots"][0]["acked_seq"].as_u64() >= Some(got.len() as u64)
    });
    assert_eq!(status["boots"][0]["boot"], boot.as_str());
    assert_eq!(status["connects"], 1);
    assert_eq!(status["spool_dropped"], 0);
    // Heartbeats now report the spool's real depth, a small one.
    let beat = collector.wait(Duration::from_secs(3), "a later heartbeat", |s| {
        events_of(s)
            .into_iter()
            .rev()
            .find(|e| e["type"] == "heartbeat" && e["seq"].as_u64() > Some(got.len() as u64))
    });
    assert!(beat["spool_depth"].as_u64().unwrap() < 5, "{beat}");
    assert_eq!(beat["events_dropped"], 0);
    assert!(agent.stop());
}

#[test]
fn an_outage_spools_events_and_the_resend_starts_after_the_welcomes_last_seq() {
    let fx = Fixture::new();
    let port = free_port();
    let mut agent = fx.spawn(&fx.config("100ms", &collector_table(port, "")));

    // Nobody listens: events pile up in the spool.
    let status = fx.collector_until(Duration::from_secs(10), "a backlog", |c| {
        c["spool_events"].as_u64() >= Some(15) && c["state"] == "backoff"
    });
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{status:#}"
    );
    let boot = status["boots"][0]["boot"].as_str().unwrap().to_string();

    // The collector comes up claiming it already holds 1..=5.
    let collector = FakeCollector::start(
        port,
        Behaviour {
            welcome_last_seq: Some(5),
            ..Behaviour::default()
        },
    );
    let events = collector.wait(Duration::from_secs(10), "the backlog", |s| {
        let events = events_of(s);
        (events.len() >= 15).then_some(events)
    });
    let got = seqs(&events);
    assert_eq!(got[0], 6, "resent from last_seq + 1");
    assert_eq!(
        got,
        (6..6 + got.len() as u64).collect::<Vec<_>>(),
        "in order, none missing"
    );
    fx.collector_until(Duration::from_secs(5), "a drained spool", |c| {
        c["state"] == "connected" && c["spool_events"].as_u64() < Some(3)
    });

    // A collector crash: later events wait, then all arrive in order.
    let mut collector = collector;
    collector.stop();
    let before = collector.events().len();
    let status = fx.collector_until(Duration::from_secs(10), "a second backlog", |c| {
        c["state"] != "connected" && c["spool_events"].as_u64() >= Some(10)
    });
    let spooled_through = status["boots"][0]["last_seq"].as_u64().unwrap();
    let collector = FakeCollector::start_with(port, Behaviour::default(), None, Some(collector));
    let stored = collector.wait(Duration::from_secs(10), "the second backlog", |s| {
        let stored = s.stored.get(&boot)?;
        (stored.last().copied() >= Some(spooled_through)).then(|| stored.clone())
    });
    let last = *stored.last().unwrap();
    assert_eq!(
        stored,
        (6..=last).collect::<BTreeSet<_>>(),
        "every event once, none lost"
    );
    let after: Vec<Value> = collector.events()[before..].to_vec();
    let resent = seqs(&after);
    assert!(
        resent.windows(2).all(|w| w[0] < w[1]),
        "in order: {resent:?}"
    );
    assert_eq!(collector.hellos().len(), 2);
    let status = fx.collector_until(Duration::from_secs(5), "a second connection", |c| {
        c["connects"] == 2 && c["state"] == "connected"
    });
    assert_eq!(status["spool_dropped"], 0);
    assert!(agent.stop());
}

#[test]
fn a_spool_smaller_than_the_backlog_names_every_lost_seq_exactly_once() {
    let fx = Fixture::new();
    let port = free_port();
    let mut agent = fx.spawn(&fx.config("100ms", &collector_table(port, "spool_max = \"4KiB\"\n")));
    // Long enough for loss events to be shed in turn.
    let status = fx.collector_until(Duration::from_secs(30), "a full spool", |c| {
        c["spool_dropped"].as_u64() >= Some(150)
    });
    assert!(status["spool_bytes"].as_u64() <= Some(4096), "{status:#}");
    let boot = status["boots"][0]["boot"].as_str().unwrap().to_string();

    let collector = FakeCollector::start(port, Behaviour::default());
    fx.collector_until(Duration::from_secs(10), "a drained spool", |c| {
        c["state"] == "connected" && c["spool_events"] == 0
    });
    collector.wait(Duration::from_secs(5), "a heartbeat", |s| {
        events_of(s)
            .iter()
            .any(|e| e["type"] == "heartbeat")
            .then_some(())
    });
    // Stop first, so nothing is in flight when the books are balanced.
    assert!(agent.stop());
    let events = collector.events();
    let events = of_boot(&events, &boot);
    let received: BTreeSet<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(received.len(), events.len(), "no duplicates");
    let last = *received.last().unwrap();
    let missing: BTreeSet<u64> = (1..=last).filter(|s| !received.contains(s)).collect();
    // Every seq is delivered or named by exactly one delivered loss event:
    // a range spans no delivered seq, and no two ranges overlap.
    let mut named = BTreeSet::new();
    for loss in events.iter().filter(|e| e["type"] == "loss") {
        let range = loss["first_seq"].as_u64().unwrap()..=loss["last_seq"].as_u64().unwrap();
        assert_eq!(
            loss["count"].as_u64().unwrap(),
            range.end() - range.start() + 1,
            "{loss}"
        );
        assert_eq!(loss["lost_boot"], boot.as_str(), "{loss}");
        for s in range {
            assert!(
                !received.contains(&s),
                "seq {s} delivered and named: {loss}"
            );
            assert!(named.insert(s), "seq {s} counted twice: {loss}");
        }
        assert!(
            loss["message"]
                .as_str()
                .unwrap()
                .contains("spool was full (spool_max 4 KiB)"),
            "{loss}"
        );
    }
    assert!(
        named.len() >= 150,
        "loss events name what was dropped: {named:?}"
    );
    let unnamed: Vec<&u64> = missing.difference(&named).collect();
    assert!(
        unnamed.is_empty(),
        "missing and named by no loss event: {unnamed:?}\n{}",
        agent.stderr()
    );
    // The heartbeat sent last counts the drops too.
    let beat = events
        .iter()
        .rev()
        .find(|e| e["type"] == "heartbeat")
        .unwrap();
    assert!(beat["events_dropped"].as_u64() >= Some(20), "{beat}");
}

#[test]
fn a_sigkilled_agent_delivers_its_old_boot_after_a_restart() {
    let fx = Fixture::new();
    let port = free_port();
    let config = fx.config("100ms", &collector_table(port, ""));
    let mut first = fx.spawn(&config);
    let status = fx.collector_until(Duration::from_secs(10), "a backlog", |c| {
        c["spool_events"].as_u64() >= Some(10)
    });
    let old_boot = status["boots"][0]["boot"].as_str().unwrap().to_string();
    let spooled = status["boots"][0]["last_seq"].as_u64().unwrap();
    first.kill();
    assert!(fx.state().join("spool").is_dir());

    let collector = FakeCollector::start(port, Behaviour::default());
    let _second = fx.spawn(&config);
    let hello = collector.wait(Duration::from_secs(10), "a hello", |s| {
        s.log.iter().find_map(|m| match m {
            Msg::Hello(h) => Some(h.clone()),
            _ => None,
        })
    });
    let new_boot = hello["boot"].as_str().unwrap().to_string();
    assert_ne!(new_boot, old_boot);
    assert_eq!(
        hello["boots"][0],
        old_boot.as_str(),
        "the old boot is listed first: {hello}"
    );
    let events = collector.wait(Duration::from_secs(10), "both boots' events", |s| {
        let events = events_of(s);
        let new = events
            .iter()
            .filter(|e| e["boot"] == new_boot.as_str())
            .count();
        (new >= 3).then_some(events)
    });
    let old = seqs(
        &of_boot(&events, &old_boot)
            .into_iter()
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert!(
        old.len() as u64 >= spooled,
        "every spooled event of the old boot: {old:?}"
    );
    assert_eq!(old, (1..=old.len() as u64).collect::<Vec<_>>());
    // Older boots go first.
    let first_new = events
        .iter()
        .position(|e| e["boot"] == new_boot.as_str())
        .unwrap();
    let last_old = events
        .iter()
        .rposition(|e| e["boot"] == old_boot.as_str())
        .unwrap();
    assert!(last_old < first_new, "the old boot's events came first");
    let status = fx.collector_until(Duration::from_secs(5), "the old boot acknowledged", |c| {
        c["boots"].as_array().unwrap().len() == 1 && c["boots"][0]["boot"] == new_boot.as_str()
    });
    assert_eq!(status["spool_dropped"], 0);
}

#[test]
fn a_wrong_token_is_refused_retried_counted_and_never_logged() {
    let fx = Fixture::new();
    let collector = FakeCollector::start(
        0,
        Behaviour {
            token: "the-right-one-0123".into(),
            ..Behaviour::default()
        },
    );
    let token_file = fx.dir.write("token", "wrong-token-7f3a9c\n");
    let mut agent = fx.spawn(&fx.config(
        "300ms",
        &format!(
            "address = \"127.0.0.1:{}\"\ntoken_file = \"{}\"\n",
            collector.port(),
            token_file.display()
        ),
    ));
    let status = fx.collector_until(Duration::from_secs(10), "two refusals", |c| {
        c["refused"].as_u64() >= Some(2)
    });
    assert!(
        status["state"] == "refused" || status["state"] == "connecting",
        "{status:#}"
    );
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("unknown agent token"),
        "{status:#}"
    );
    assert_eq!(status["connects"], 0);
    assert!(collector.hellos().len() >= 2);
    assert!(
        collector.events().is_empty(),
        "nothing is sent before a welcome"
    );
    let full = fx.status().unwrap().to_string();
    assert!(
        !full.contains("wrong-token-7f3a9c"),
        "status shows no token"
    );

    // A corrected token file is read at the next attempt.
    std::fs::write(&token_file, "the-right-one-0123\n").unwrap();
    fx.collector_until(Duration::from_secs(10), "a connection", |c| {
        c["state"] == "connected" && c["spool_events"].as_u64() < Some(3)
    });
    assert!(!collector.events().is_empty());
    assert!(agent.stop());
    let stderr = agent.stderr();
    assert!(stderr.contains("refused this agent"), "{stderr}");
    assert!(
        !stderr.contains("wrong-token-7f3a9c"),
        "the token leaked into the log:\n{stderr}"
    );
    assert!(
        !stderr.contains("the-right-one-0123"),
        "the token leaked into the log:\n{stderr}"
    );
}

#[test]
fn a_collector_that_stops_acknowledging_is_left_after_ack_timeout() {
    let fx = Fixture::new();
    let collector = FakeCollector::start(
        0,
        Behaviour {
            ack: false,
            ..Behaviour::default()
        },
    );
    let mut agent = fx.spawn(&fx.config(
        "200ms",
        &collector_table(collector.port(), "ack_timeout = \"1s\"\n"),
    ));
    let status = fx.collector_until(Duration::from_secs(10), "a reconnect", |c| {
        c["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no acknowledgement"))
    });
    assert!(
        status["spool_events"].as_u64() > Some(0),
        "unacknowledged events stay"
    );
    collector.wait(Duration::from_secs(5), "a second hello", |s| {
        (s.log.iter().filter(|m| matches!(m, Msg::Hello(_))).count() >= 2).then_some(())
    });
    // Once it acknowledges again, the spool drains.
    collector.set(Behaviour::default());
    fx.collector_until(Duration::from_secs(10), "a drained spool", |c| {
        c["state"] == "connected" && c["spool_events"].as_u64() < Some(3)
    });
    assert!(agent.stop());
}

/// A CA, and a collector certificate it signed for `collector.test` and
/// 127.0.0.1.
fn test_pki(dir: &TempDir) -> (Arc<rustls::ServerConfig>, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "hopwatch test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["collector.test".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = params.signed_by(&key, &ca).unwrap();
    let ca_path = dir.write("ca.pem", &ca.pem());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (Arc::new(config), ca_path)
}

#[test]
fn tls_to_a_collector_with_a_private_ca() {
    let fx = Fixture::new();
    let (server, ca_path) = test_pki(&fx.dir);
    let collector = FakeCollector::start_with(0, Behaviour::default(), Some(server), None);
    let tls = format!(
        "[output.collector.tls]\nca_file = \"{}\"\nserver_name = \"collector.test\"\n",
        ca_path.display()
    );
    let mut agent = fx.spawn(&fx.config("200ms", &collector_table(collector.port(), &tls)));
    let events = collector.wait(Duration::from_secs(10), "events over TLS", |s| {
        let events = events_of(s);
        (events.len() >= 3).then_some(events)
    });
    assert_eq!(seqs(&events)[..3], [1, 2, 3]);
    let status = fx.collector_until(Duration::from_secs(5), "acks over TLS", |c| {
        c["state"] == "connected"
            && c["tls"] == true
            && c["boots"][0]["acked_seq"].as_u64() >= Some(3)
    });
    assert_eq!(status["disk_errors"], 0);
    assert!(agent.stop());

    // A CA that did not sign the collector's certificate: no connection.
    let other = TempDir::new("hopwatch-other-ca");
    let (_, wrong_ca) = test_pki(&other);
    let tls = format!(
        "[output.collector.tls]\nca_file = \"{}\"\n",
        wrong_ca.display()
    );
    let _agent = fx.spawn(&fx.config("200ms", &collector_table(collector.port(), &tls)));
    let status = fx.collector_until(Duration::from_secs(10), "a certificate error", |c| {
        c["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("certificate"))
    });
    assert_eq!(status["connects"], 0, "{status:#}");
}

#[test]
fn trace_requests_are_answered_on_the_same_connection() {
    let fx = Fixture::new();
    let collector = FakeCollector::start(
        0,
        Behaviour {
            traces: vec![
                json!({"kind": "flow", "dst": "127.0.0.1"}),
                json!({"kind": "flow", "dst": "not an address"}),
                json!({"kind": "paths", "dst": "127.0.0.1", "proto": 17, "sport_range": {"first": 1000, "last": 1003}, "dport": 53}),
                json!({"kind": "bogus", "dst": "127.0.0.1"}),
                json!({"kind": "hop", "flow": {"dst": "127.0.0.1", "src": "127.0.0.2"}, "ingress": "lo"}),
            ],
            ..Behaviour::default()
        },
    );
    let mut agent = fx.spawn(&fx.config("300ms", &collector_table(collector.port(), "")));
    let results = collector.wait(Duration::from_secs(10), "five trace results", |s| {
        let results: BTreeMap<u64, Value> = s
            .log
            .iter()
            .filter_map(|m| match m {
                Msg::TraceResult(r) => Some((r["id"].as_u64().unwrap(), r["result"].clone())),
                _ => None,
            })
            .collect();
        (results.len() == 5).then_some(results)
    });
    // The loopback route is there in any namespace: a real trace.
    assert_eq!(
        results[&1]["request"]["dst"], "127.0.0.1",
        "{:#}",
        results[&1]
    );
    assert!(results[&1].get("error").is_none(), "{:#}", results[&1]);
    assert!(
        results[&2]["error"]
            .as_str()
            .unwrap()
            .contains("unreadable trace query"),
        "{:#}",
        results[&2]
    );
    assert!(results[&3].is_object(), "{:#}", results[&3]);
    assert_eq!(results[&3]["kind"], "paths", "{:#}", results[&3]);
    // A kind this agent does not know is answered by name, and the
    // connection goes on.
    assert_eq!(results[&4]["kind"], "error", "{:#}", results[&4]);
    assert!(
        results[&4]["error"]
            .as_str()
            .unwrap()
            .contains("unknown trace query kind \"bogus\""),
        "{:#}",
        results[&4]
    );
    // A hop is the flow arriving on its ingress.
    assert_eq!(results[&5]["kind"], "hop", "{:#}", results[&5]);
    assert_eq!(results[&5]["ingress_interface"], "lo", "{:#}", results[&5]);
    // Events flow on the same connection as the traces.
    collector.wait(Duration::from_secs(5), "events beside the traces", |s| {
        (!events_of(s).is_empty()).then_some(())
    });
    assert!(agent.stop());
}

#[test]
fn an_unwritable_spool_is_counted_while_sampling_and_memory_carry_on() {
    let fx = Fixture::new();
    // A file where the spool directory should be: every attempt to open
    // the spool fails, as on a broken or full disk.
    std::fs::create_dir_all(fx.state()).unwrap();
    std::fs::write(fx.state().join("spool"), "not a directory").unwrap();
    let collector = FakeCollector::start(0, Behaviour::default());
    let mut agent = fx.spawn(&fx.config("100ms", &collector_table(collector.port(), "")));
    let status = fx.collector_until(Duration::from_secs(10), "disk errors", |c| {
        c["disk_errors"].as_u64() >= Some(2) && c["in_memory"].as_u64() >= Some(10)
    });
    assert!(
        status["last_disk_error"]
            .as_str()
            .unwrap()
            .contains("spool"),
        "{status:#}"
    );
    let ticks = fx.status().unwrap()["ticks"].as_u64().unwrap();
    thread::sleep(Duration::from_millis(500));
    assert!(
        fx.status().unwrap()["ticks"].as_u64().unwrap() >= ticks + 3,
        "sampling goes on"
    );
    assert!(
        collector.events().is_empty(),
        "nothing is sent before it is spooled"
    );

    // The disk is back: what waited in memory goes out, in order, from 1.
    std::fs::remove_file(fx.state().join("spool")).unwrap();
    let events = collector.wait(Duration::from_secs(10), "the events held in memory", |s| {
        let events = events_of(s);
        (events.len() >= 12).then_some(events)
    });
    let got = seqs(&events);
    assert_eq!(got, (1..=got.len() as u64).collect::<Vec<_>>());
    let status = fx.collector_until(Duration::from_secs(5), "a healthy spool", |c| {
        c["in_memory"] == 0 && c["last_disk_error"].is_null()
    });
    assert_eq!(status["spool_dropped"], 0);
    assert!(agent.stop());
}

#[test]
fn a_reload_hands_the_spool_to_the_new_output_without_a_gap() {
    let fx = Fixture::new();
    let collector = FakeCollector::start(0, Behaviour::default());
    let path = fx.config("100ms", &collector_table(collector.port(), ""));
    let mut agent = fx.spawn(&path);
    fx.collector_until(Duration::from_secs(5), "a connection", |c| {
        c["state"] == "connected" && c["boots"][0]["acked_seq"].as_u64() >= Some(5)
    });
    let boot = collector.hellos()[0]["boot"].as_str().unwrap().to_string();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("backoff_max = \"500ms\"", "backoff_max = \"700ms\"");
    std::fs::write(&path, text).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let status = fx.collector_until(Duration::from_secs(10), "the new output connected", |c| {
        c["state"] == "connected"
            && c["connects"] == 1
            && c["boots"][0]["acked_seq"].as_u64() >= Some(5)
    });
    assert_eq!(status["disk_errors"], 0, "{status:#}");
    let before = collector.inner.state.lock().unwrap().stored[&boot].len();
    let stored = collector.wait(Duration::from_secs(5), "events after the reload", |s| {
        let stored = &s.stored[&boot];
        (stored.len() >= before + 5).then(|| stored.clone())
    });
    let last = *stored.last().unwrap();
    assert_eq!(
        stored,
        (1..=last).collect::<BTreeSet<_>>(),
        "no gap across the reload"
    );
    assert_eq!(collector.hellos().len(), 2);
    assert!(
        collector.events().iter().all(|e| e["type"] != "loss"),
        "nothing was lost"
    );
    let goodbyes = |c: &FakeCollector| {
        let state = c.inner.state.lock().unwrap();
        state
            .log
            .iter()
            .filter(|m| matches!(m, Msg::Goodbye(_)))
            .count()
    };
    assert_eq!(goodbyes(&collector), 0, "a reload is not a goodbye");
    assert!(agent.stop());
    collector.wait(Duration::from_secs(5), "the goodbye at the stop", |s| {
        s.log
            .iter()
            .any(|m| matches!(m, Msg::Goodbye(_)))
            .then_some(())
    });
    assert_eq!(goodbyes(&collector), 1);
}

#[test]
fn sessions_failing_after_their_welcome_back_off_instead_of_storming() {
    let fx = Fixture::new();
    let collector = FakeCollector::start(
        0,
        Behaviour {
            close_after_welcome: true,
            ..Behaviour::default()
        },
    );
    let config = fx.config(
        "1s",
        &collector_table(collector.port(), "backoff_max = \"5s\"\n"),
    );
    let _agent = fx.spawn(&config);
    collector.wait(Duration::from_secs(5), "a hello", |s| {
        (!s.log.is_empty()).then_some(())
    });
    let started = Instant::now();
    let before = collector.hellos().len();
    // Poll until 8 s have passed; the count is what matters.
    while started.elapsed() < Duration::from_secs(8) {
        thread::sleep(Duration::from_millis(200));
    }
    let attempts = collector.hellos().len() - before;
    eprintln!("{attempts} sessions in 8 s");
    // 0.2 + 0.4 + 0.8 + 1.6 + 3.2 s (±20 %): about five more, not forty.
    assert!(attempts <= 8, "{attempts} sessions in 8 s");
    assert!(attempts >= 2, "it does retry: {attempts}");
}

#[test]
fn a_restarted_collector_is_found_again_within_seconds() {
    let fx = Fixture::new();
    let port = free_port();
    // The default backoff_max.
    let config = fx.config("1s", &collector_table(port, "# backoff_max default\n"));
    let _agent = fx.spawn(&config);
    // Down long enough for the backoff to reach its cap.
    fx.collector_until(Duration::from_secs(10), "a failed dial", |c| {
        c["state"] == "backoff"
    });
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(15) {
        thread::sleep(Duration::from_millis(200));
    }
    let collector = FakeCollector::start(port, Behaviour::default());
    let up = Instant::now();
    collector.wait(Duration::from_secs(30), "a hello", |s| {
        (!s.log.is_empty()).then_some(())
    });
    let found = up.elapsed();
    eprintln!("found the restarted collector after {found:?}");
    assert!(
        found < Duration::from_millis(6500),
        "found again after {found:?}"
    );
}

#[test]
fn a_clean_stop_says_goodbye_after_every_event() {
    let fx = Fixture::new();
    let collector = FakeCollector::start(0, Behaviour::default());
    let mut agent = fx.spawn(&fx.config("100ms", &collector_table(collector.port(), "")));
    collector.wait(Duration::from_secs(10), "a few events", |s| {
        (events_of(s).len() >= 5).then_some(())
    });
    assert!(agent.stop());
    let log = collector.wait(Duration::from_secs(5), "a goodbye", |s| {
        s.log
            .iter()
            .any(|m| matches!(m, Msg::Goodbye(_)))
            .then(|| s.log.clone())
    });
    let Some(Msg::Goodbye(bye)) = log.last() else {
        panic!("the goodbye is the last line: {log:#?}");
    };
    let events: Vec<Value> = log
        .iter()
        .filter_map(|m| match m {
            Msg::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    let boot = events[0]["boot"].as_str().unwrap();
    assert_eq!(bye["boot"], boot);
    let last = bye["last_seq"].as_u64().unwrap();
    let got: BTreeSet<u64> = seqs(&events).into_iter().collect();
    assert_eq!(
        got,
        (1..=last).collect::<BTreeSet<_>>(),
        "every event up to last_seq arrived before the goodbye: {bye}"
    );
    assert!(
        agent.stderr().contains("Said goodbye"),
        "{}",
        agent.stderr()
    );
}

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
fn check_config_refuses_a_short_token_file_and_warns_of_a_readable_one() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    let token = fx.dir.write("token", "short\n");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let body = format!(
        "address = \"127.0.0.1:{}\"\ntoken_file = \"{}\"\n",
        free_port(),
        token.display()
    );
    let config = fx.config("1s", &body);
    let out = hopwatch()
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&token.display().to_string())
            && stderr.contains("shorter than 16")
            && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!stderr.contains("short\n"), "{stderr}");
    std::fs::write(&token, "long-enough-token-0123\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = hopwatch()
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A token file provisioned after the config is only a warning: the
    // agent reads it at every connection attempt.
    std::fs::remove_file(&token).unwrap();
    let out = hopwatch()
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("does not exist yet") && stderr.contains(&token.display().to_string()),
        "{stderr}"
    );
}

/// Whether this test may mount a tmpfs; outside CI it skips with a reason.
fn can_mount(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    crate::util::may_run(test, (!root).then_some("needs root to mount a tmpfs"))
}

/// A small tmpfs mounted for the test's life: a disk that really fills.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(at.to_path_buf())
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn root_a_kill_while_the_disk_is_full_leaves_no_gap_unreported() {
    if !can_mount("root_a_kill_while_the_disk_is_full_leaves_no_gap_unreported") {
        return;
    }
    let fx = Fixture::new();
    let disk = SmallDisk::mount(&fx.state(), "1m");
    let port = free_port();
    let config = fx.config("100ms", &collector_table(port, ""));
    let mut first = fx.spawn(&config);
    let status = fx.collector_until(Duration::from_secs(10), "a backlog", |c| {
        c["spool_events"].as_u64() >= Some(5)
    });
    let old_boot = status["boots"][0]["boot"].as_str().unwrap().to_string();
    let filler = disk.fill();
    // Events now wait in memory, the spool unable to take them.
    let status = fx.collector_until(Duration::from_secs(15), "events held in memory", |c| {
        c["in_memory"].as_u64() >= Some(20)
    });
    let held = status["in_memory"].as_u64().unwrap();
    first.kill();
    std::fs::remove_file(&filler).unwrap();

    let collector = FakeCollector::start(port, Behaviour::default());
    let _second = fx.spawn(&config);
    // Everything of the old boot is either delivered or named lost.
    let (delivered, losses) = collector.wait(
        Duration::from_secs(20),
        "the old boot delivered and its gap reported",
        |s| {
            let events = events_of(s);
            let delivered: BTreeSet<u64> = events
                .iter()
                .filter(|e| e["boot"] == old_boot.as_str())
                .map(|e| e["seq"].as_u64().unwrap())
                .collect();
            let losses: Vec<Value> = events
                .into_iter()
                .filter(|e| e["type"] == "loss" && e["lost_boot"] == old_boot.as_str())
                .collect();
            (!losses.is_empty()).then_some((delivered, losses))
        },
    );
    let mut named = BTreeSet::new();
    for loss in &losses {
        for s in loss["first_seq"].as_u64().unwrap()..=loss["last_seq"].as_u64().unwrap() {
            assert!(
                !delivered.contains(&s),
                "seq {s} delivered and named: {loss}"
            );
            assert!(named.insert(s), "seq {s} named twice: {loss}");
        }
    }
    let last = named.iter().chain(&delivered).max().copied().unwrap();
    for s in 1..=last {
        assert!(
            delivered.contains(&s) || named.contains(&s),
            "seq {s} of the killed boot neither arrived nor was reported lost; losses {losses:#?}"
        );
    }
    assert!(
        named.len() as u64 >= held,
        "the {held} events held in memory at the kill are named: {named:?}"
    );
}

#[test]
fn a_line_the_collector_refuses_is_set_aside_reported_and_no_longer_blocks() {
    let fx = Fixture::new();
    let port = free_port();
    let config = fx.config("100ms", &collector_table(port, ""));
    let mut first = fx.spawn(&config);
    let status = fx.collector_until(Duration::from_secs(10), "a backlog", |c| {
        c["spool_events"].as_u64() >= Some(3)
    });
    let old_boot = status["boots"][0]["boot"].as_str().unwrap().to_string();
    first.kill();
    // A line no collector can store, after the old boot's last one.
    let spool = fx.state().join("spool");
    let segment = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .max()
        .unwrap();
    let text = std::fs::read_to_string(&segment).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let poison_seq = last["seq"].as_u64().unwrap() + 1;
    let poison = json!({"v": 1, "agent": "fixture", "boot": old_boot, "seq": poison_seq,
        "type": "link", "ts": "yesterday"});
    std::fs::write(&segment, format!("{text}{poison}\n")).unwrap();

    let collector = FakeCollector::start(port, Behaviour::default());
    let _second = fx.spawn(&config);
    let loss = collector.wait(
        Duration::from_secs(15),
        "the loss of the refused line",
        |s| {
            events_of(s).into_iter().find(|e| {
                e["type"] == "loss"
                    && e["lost_boot"] == old_boot.as_str()
                    && e["first_seq"] == poison_seq
            })
        },
    );
    assert_eq!(loss["last_seq"], poison_seq, "{loss}");
    assert_eq!(loss["count"], 1, "{loss}");
    assert!(
        loss["message"].as_str().unwrap().contains("set aside"),
        "{loss}"
    );
    let new_boot = loss["boot"].as_str().unwrap().to_string();
    // Everything behind it flows: the new boot's heartbeats keep coming.
    collector.wait(Duration::from_secs(10), "the new boot's events", |s| {
        (events_of(s)
            .iter()
            .filter(|e| e["boot"] == new_boot.as_str() && e["type"] == "heartbeat")
            .count()
            >= 5)
            .then_some(())
    });
    let status = fx.collector_until(Duration::from_secs(5), "connected", |c| {
        c["state"] == "connected" && c["quarantined"] == 1
    });
    assert_eq!(status["boots"].as_array().unwrap().len(), 1, "{status:#}");
    let kept = std::fs::read_to_string(fx.state().join("quarantine.jsonl")).unwrap();
    assert!(
        kept.contains("yesterday") && kept.contains("bad `ts`"),
        "{kept}"
    );
    assert!(
        collector.hellos().len() <= 3,
        "{} hellos",
        collector.hellos().len()
    );
    // The old boot's good events all arrived, once.
    let old: Vec<u64> = seqs(
        &of_boot(&collector.events(), &old_boot)
            .into_iter()
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(old, (1..poison_seq).collect::<Vec<_>>());
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
