//! The fake agent of the collector's tests: a real socket speaking the
//! wire protocol (hello, events as lines, acks read on a thread of its own,
//! trace requests answered as a test scripts them), apart from the rest of
//! the suite's helpers because it is most of them.

use super::*;

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
