//! An NX-API lookalike on a real unix socket, as NX-OS's nginx serves it in
//! the switch's bash shell: `POST /ins_local` for CLI commands and `GET
//! /api/…` for the REST API (the DME). Each test gives it a handler that
//! answers from fixtures; the server records every request, counts how many
//! were in flight at once (a switch's VSH pool is small, and the agent must
//! never have two requests out), and hands out a session cookie the way
//! NX-API does after a first authentication.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::util::TempDir;

/// What the server answers: the HTTP status and body for one request. A
/// status of 0 stands silent, so the client's timeout must end the wait.
pub type Handler = dyn Fn(&Request) -> (u16, String) + Send + Sync;

/// The session cookie the server sets; the client must send it back.
pub const SESSION_COOKIE: &str = "nxapi_auth=admin:1764906000000";

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST` or `GET`.
    pub method: String,
    /// `/ins_local`, or the REST path with its query (`/api/class/…`).
    pub path: String,
    pub cookie: Option<String>,
    pub content_type: Option<String>,
    /// `cli_show` or `cli_show_ascii` for a CLI request, `rest` for a GET.
    pub kind: String,
    /// The CLI command, or the REST path with its query.
    pub input: String,
    /// How many requests came before this one.
    pub number: usize,
}

impl Request {
    pub fn is_rest(&self) -> bool {
        self.method == "GET"
    }
}

#[derive(Default)]
struct Counters {
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// An NX-API lookalike on a unix socket, one thread per connection.
pub struct Server {
    pub path: PathBuf,
    requests: Arc<Mutex<Vec<Request>>>,
    handler: Arc<Mutex<Arc<Handler>>>,
    counters: Arc<Counters>,
}

impl Server {
    pub fn start(
        dir: &TempDir,
        handler: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static,
    ) -> Server {
        let path = dir.path().join("nxapi.sock");
        let listener = UnixListener::bind(&path).expect("bind the NX-API socket");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Mutex<Arc<Handler>>> = Arc::new(Mutex::new(Arc::new(handler)));
        let counters = Arc::new(Counters::default());
        let (seen, answer, count) = (
            Arc::clone(&requests),
            Arc::clone(&handler),
            Arc::clone(&counters),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (seen, answer, count) =
                    (Arc::clone(&seen), Arc::clone(&answer), Arc::clone(&count));
                std::thread::spawn(move || serve(stream, &seen, &answer, &count));
            }
        });
        Server {
            path,
            requests,
            handler,
            counters,
        }
    }

    /// Replaces what the server answers from now on.
    pub fn answer(&self, handler: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static) {
        *self.handler.lock().unwrap() = Arc::new(handler);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The most requests the server was answering at one moment.
    pub fn most_in_flight(&self) -> usize {
        self.counters.most_in_flight.load(Ordering::SeqCst)
    }
}

fn serve(
    stream: UnixStream,
    seen: &Mutex<Vec<Request>>,
    answer: &Mutex<Arc<Handler>>,
    counters: &Counters,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0;
    let (mut cookie, mut content_type) = (None, None);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    assert!(
        (method == "POST" && path == "/ins_local")
            || (method == "GET" && path.starts_with("/api/")),
        "request line {line:?}"
    );
    assert!(
        line.trim_end().ends_with("HTTP/1.1"),
        "request line {line:?}"
    );
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        let value = value.trim().to_string();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().unwrap(),
            "cookie" => cookie = Some(value),
            "content-type" => content_type = Some(value),
            _ => {}
        }
    }
    let (kind, input) = if method == "GET" {
        ("rest".to_string(), path.clone())
    } else {
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let body: Value = serde_json::from_slice(&body).expect("the request body is JSON");
        let api = &body["ins_api"];
        assert_eq!(api["version"], "1.0");
        assert_eq!(api["output_format"], "json");
        (
            api["type"].as_str().unwrap().to_string(),
            api["input"].as_str().unwrap().to_string(),
        )
    };
    let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    counters.most_in_flight.fetch_max(now, Ordering::SeqCst);
    let request = {
        let mut seen = seen.lock().unwrap();
        let request = Request {
            method,
            path,
            cookie,
            content_type,
            kind,
            input,
            number: seen.len(),
        };
        seen.push(request.clone());
        request
    };
    let handler = Arc::clone(&answer.lock().unwrap());
    let (status, reply) = handler(&request);
    // The answer is out of the switch's hands once written: a client that
    // has read it all may ask again before this thread is rescheduled, so
    // an answered request stops counting before its last byte goes. A
    // silent one counts while it stands silent.
    if status != 0 {
        counters.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
    reply_with(stream, &request, status, &reply);
    if status == 0 {
        counters.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn reply_with(mut stream: UnixStream, request: &Request, status: u16, reply: &str) {
    if status == 0 {
        // Stand silent: the client's timeout must end the wait.
        std::thread::sleep(Duration::from_secs(5));
        return;
    }
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Error",
    };
    // NX-API issues a session cookie to a request that authenticated with
    // the local one.
    let set_cookie = if request.cookie.as_deref() == Some("nxapi_auth=admin:local") && status == 200
    {
        format!("Set-Cookie: {SESSION_COOKIE}; Path=/; HttpOnly\r\n")
    } else {
        String::new()
    };
    // Every other reply is chunked, as nginx sends a body of unknown length.
    let chunked = !request.number.is_multiple_of(2);
    let head = if chunked {
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{set_cookie}Transfer-Encoding: chunked\r\n\r\n"
        )
    } else {
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{set_cookie}Content-Length: {}\r\n\r\n",
            reply.len()
        )
    };
    let _ = stream.write_all(head.as_bytes());
    if chunked {
        for chunk in reply.as_bytes().chunks(1000) {
            let _ = write!(stream, "{:x}\r\n", chunk.len());
            let _ = stream.write_all(chunk);
            let _ = stream.write_all(b"\r\n");
        }
        let _ = stream.write_all(b"0\r\n\r\n");
    } else {
        let _ = stream.write_all(reply.as_bytes());
    }
}
