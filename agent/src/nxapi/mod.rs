//! NX-API over the switch's local unix socket: how hopwatch asks NX-OS for
//! what the hardware counts and how it forwards.
//!
//! In the bash shell of a Nexus switch, NX-API listens on a unix socket
//! (`/tmp/nginx_local/nginx_1_be_nxapi.sock`) that trusts its caller by a
//! cookie naming the user: `nxapi_auth=<user>:local`. One request is one
//! `POST /ins_local` carrying a `cli_show` (JSON answer) or `cli_show_ascii`
//! (text answer) command; the answer is under `ins_api.outputs.output` with
//! a `code` ("200" when the command ran) and the `body`.
//!
//! The client writes its one request by hand and leaves the answer's HTTP/1.1
//! framing (status line, headers, chunk sizes) to `httparse`; it reads until
//! the length the head gives, or until NX-API closes the connection.
//!
//! NX-OS writes numbers as strings or as numbers depending on the release,
//! and a table with one row as an object rather than a list; the helpers
//! here ([`number`], [`Rows`]) accept both, so callers never see the
//! difference.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use thiserror::Error;

mod http;
mod json;

use http::{Framing, dechunk, parse_head, session_cookie};
pub use json::{Count, Key, Rows, Text, number};

/// Where NX-API listens inside the NX-OS bash shell.
pub const DEFAULT_SOCKET: &str = "/tmp/nginx_local/nginx_1_be_nxapi.sock";
/// The NX-OS user the local socket runs commands as.
pub const DEFAULT_USER: &str = "admin";
/// The largest answer read; `show interface` on a 400-port chassis is a few
/// megabytes.
const MAX_REPLY: usize = 64 << 20;
/// How long a session cookie is used. NX-OS expires `nxapi_auth` after 600 s
/// and that cannot be changed; renewing a little early means no request is
/// refused for an expired session.
const SESSION_LIFETIME: Duration = Duration::from_secs(540);

/// Per socket, whether a request of this process is out on it.
static TURNS: std::sync::Mutex<Vec<(PathBuf, std::sync::Arc<AtomicBool>)>> =
    std::sync::Mutex::new(Vec::new());

/// The one request out on a socket; the next may go when this drops.
struct Turn(std::sync::Arc<AtomicBool>);

impl Drop for Turn {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[derive(Debug, Error)]
pub enum NxapiError {
    #[error(
        "cannot connect to NX-API at {path}: {source}; enable it with `feature nxapi` on the switch, or set [agent] source/trace_backend to the Linux ones"
    )]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("NX-API at {path} did not answer `{command}` within {timeout:?}")]
    Timeout {
        path: String,
        command: String,
        timeout: Duration,
    },
    #[error(
        "`{command}` waited {timeout:?} for an earlier NX-API request of this agent to finish; hopwatch sends NX-API one request at a time"
    )]
    Busy { command: String, timeout: Duration },
    #[error("NX-API at {path}: `{command}`: {source}")]
    Io {
        path: String,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("NX-API refused `{command}`: code {code}, {message}")]
    Command {
        command: String,
        code: String,
        message: String,
    },
    #[error("NX-API's answer to `{command}` is not what NX-OS documents: {reason}")]
    Reply { command: String, reason: String },
    #[error("NX-API's REST API refused `GET {path}`: HTTP {status}, {message}")]
    Rest {
        path: String,
        status: u16,
        message: String,
    },
}

impl NxapiError {
    /// Whether the socket answered but does not serve the REST API (`/api/`):
    /// NX-OS without the DME over this socket, where the CLI is the way in.
    pub fn is_rest_absent(&self) -> bool {
        matches!(
            self,
            NxapiError::Rest {
                status: 404 | 405 | 501,
                ..
            }
        )
    }
}

/// Which answer a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `cli_show`: structured JSON.
    Json,
    /// `cli_show_ascii`: the text the CLI prints, for commands without a
    /// JSON form (`show routing hash`).
    Text,
}

/// A client for the local NX-API socket. Each request opens its own
/// connection: a unix connect costs microseconds and a fresh connection
/// cannot be left half-read by an earlier timeout.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    user: String,
    timeout: Duration,
    /// The last answer's bytes, kept so a steady poll does not allocate.
    reply: Vec<u8>,
    /// The session cookie NX-API set on an earlier answer and when it was
    /// set. Sending it back spares NX-OS a PAM authentication per request;
    /// the local cookie (`nxapi_auth=<user>:local`) is sent until there is
    /// one, after it expires, and again once when NX-API refuses it.
    session: Option<(String, Instant)>,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>, user: impl Into<String>, timeout: Duration) -> Client {
        Client {
            socket: socket.into(),
            user: user.into(),
            timeout,
            reply: Vec::new(),
            session: None,
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Runs `command` and parses its JSON body as `T`.
    pub fn show<T: DeserializeOwned>(&mut self, command: &str) -> Result<T, NxapiError> {
        let body = self.call(command, Format::Json)?;
        serde_json::from_str(body.get()).map_err(|e| NxapiError::Reply {
            command: command.to_string(),
            reason: e.to_string(),
        })
    }

    /// Runs `command` and returns the text the CLI would print.
    pub fn show_text(&mut self, command: &str) -> Result<String, NxapiError> {
        let body = self.call(command, Format::Text)?;
        serde_json::from_str::<String>(body.get()).map_err(|e| NxapiError::Reply {
            command: command.to_string(),
            reason: format!("a text command's body must be a string: {e}"),
        })
    }

    /// Reads `path` of the REST API (the DME: `/api/class/….json`,
    /// `/api/mo/….json`) and parses its JSON as `T`.
    pub fn get<T: DeserializeOwned>(&mut self, path: &str) -> Result<T, NxapiError> {
        self.exchange(path, &format!("GET {path}"), None)?;
        let (status, payload) =
            payload(&self.reply).map_err(|reason| reply_error(path, &reason))?;
        if status != 200 {
            return Err(NxapiError::Rest {
                path: path.to_string(),
                status,
                message: rest_message(&payload),
            });
        }
        serde_json::from_slice(&payload).map_err(|e| reply_error(path, &e.to_string()))
    }

    /// One request; returns the `body` of a successful answer.
    fn call(&mut self, command: &str, format: Format) -> Result<Box<RawValue>, NxapiError> {
        let body = serde_json::to_string(&Request::new(command, format))
            .expect("a request always serializes");
        self.exchange(command, "POST /ins_local", Some(&body))?;
        parse_reply(command, &self.reply)
    }

    /// The cookie for the next request: the session's while it lasts.
    fn cookie(&mut self) -> String {
        match &self.session {
            Some((cookie, set)) if set.elapsed() < SESSION_LIFETIME => cookie.clone(),
            _ => {
                self.session = None;
                format!("nxapi_auth={}:local", self.user)
            }
        }
    }

    /// Sends one request and reads its answer into `self.reply`, keeping a
    /// session cookie the answer sets. A session NX-API refuses (HTTP 401 or
    /// 403) is dropped and the request sent once more with the local cookie.
    fn exchange(
        &mut self,
        what: &str,
        request_line: &str,
        body: Option<&str>,
    ) -> Result<(), NxapiError> {
        let _turn = self.wait_turn(what)?;
        let had_session = self.session.is_some();
        self.send(what, request_line, body)?;
        let status = parse_head(&self.reply)
            .ok()
            .flatten()
            .map(|head| head.status);
        if had_session && matches!(status, Some(401 | 403)) {
            self.session = None;
            self.send(what, request_line, body)?;
        }
        if let Some(cookie) = session_cookie(&self.reply) {
            self.session = Some((cookie, Instant::now()));
        }
        Ok(())
    }

    /// Waits, up to the client's timeout, until no other request of this
    /// process is out on the socket. NX-API serves from a pool of a few VSH sessions and
    /// rejects requests past it, so a trace asked over the collector
    /// connection queues behind a counter poll rather than beside it.
    fn wait_turn(&self, what: &str) -> Result<Turn, NxapiError> {
        let busy = {
            let mut turns = TURNS.lock().unwrap_or_else(|e| e.into_inner());
            match turns.iter().find(|(socket, _)| *socket == self.socket) {
                Some((_, busy)) => std::sync::Arc::clone(busy),
                None => {
                    let busy = std::sync::Arc::new(AtomicBool::new(false));
                    turns.push((self.socket.clone(), std::sync::Arc::clone(&busy)));
                    busy
                }
            }
        };
        let deadline = Instant::now() + self.timeout;
        while busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            if Instant::now() >= deadline {
                return Err(NxapiError::Busy {
                    command: what.to_string(),
                    timeout: self.timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(Turn(busy))
    }

    /// Sends the request and reads the whole answer into `self.reply`.
    fn send(
        &mut self,
        command: &str,
        request_line: &str,
        body: Option<&str>,
    ) -> Result<(), NxapiError> {
        let cookie = self.cookie();
        let path = self.socket.display().to_string();
        let io = |source: std::io::Error| {
            if matches!(
                source.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                NxapiError::Timeout {
                    path: path.clone(),
                    command: command.to_string(),
                    timeout: self.timeout,
                }
            } else {
                NxapiError::Io {
                    path: path.clone(),
                    command: command.to_string(),
                    source,
                }
            }
        };
        let mut stream =
            UnixStream::connect(&self.socket).map_err(|source| NxapiError::Connect {
                path: path.clone(),
                source,
            })?;
        stream.set_read_timeout(Some(self.timeout)).map_err(io)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
        let head = match body {
            Some(body) => format!(
                "{request_line} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ),
            None => format!(
                "{request_line} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
            ),
        };
        stream.write_all(head.as_bytes()).map_err(io)?;
        if let Some(body) = body {
            stream.write_all(body.as_bytes()).map_err(io)?;
        }
        self.reply.clear();
        let mut chunk = [0u8; 16 * 1024];
        // The answer's full length, once its head is in and gives one.
        let mut total = None;
        loop {
            let n = stream.read(&mut chunk).map_err(io)?;
            if n == 0 {
                break;
            }
            self.reply.extend_from_slice(&chunk[..n]);
            if self.reply.len() > MAX_REPLY {
                return Err(reply_error(command, "the answer exceeds 64 MiB"));
            }
            // With a length given, stop at its end rather than waiting for
            // the server to close. The head is parsed until it is complete,
            // then not again.
            if total.is_none() {
                total = match parse_head(&self.reply) {
                    Ok(Some(head)) => Some(head.total()),
                    Ok(None) => None,
                    Err(reason) => return Err(reply_error(command, &reason)),
                };
            }
            if let Some(Some(total)) = total
                && self.reply.len() >= total
            {
                self.reply.truncate(total);
                break;
            }
        }
        Ok(())
    }
}

/// The status and body of an HTTP answer, its framing undone.
fn payload(reply: &[u8]) -> Result<(u16, std::borrow::Cow<'_, [u8]>), String> {
    let head = parse_head(reply)?.ok_or("no end of the HTTP header")?;
    let body = &reply[head.body_start..];
    let payload = match head.framing {
        // Bytes past a given length belong to no answer.
        Framing::Length(length) => std::borrow::Cow::Borrowed(&body[..length.min(body.len())]),
        Framing::Chunked => std::borrow::Cow::Owned(dechunk(body).ok_or("a broken chunked body")?),
        Framing::Close => std::borrow::Cow::Borrowed(body),
    };
    Ok((head.status, payload))
}

/// What a refused REST request says: the DME's `imdata[0].error.attributes.text`
/// when it sent one, else the start of the body.
fn rest_message(payload: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Refusal {
        imdata: Vec<serde_json::Value>,
    }
    if let Ok(refusal) = serde_json::from_slice::<Refusal>(payload)
        && let Some(text) = refusal
            .imdata
            .first()
            .and_then(|item| item["error"]["attributes"]["text"].as_str())
    {
        return text.to_string();
    }
    let text = String::from_utf8_lossy(&payload[..payload.len().min(120)]);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        "no message".into()
    } else {
        text
    }
}

fn reply_error(command: &str, reason: &str) -> NxapiError {
    NxapiError::Reply {
        command: command.to_string(),
        reason: reason.to_string(),
    }
}

/// Reads NX-API's HTTP answer to `command` (the bytes the socket returned,
/// header and all) down to the `body` of a successful output; anything else
/// is an error naming the command and what was wrong.
pub fn parse_reply(command: &str, reply: &[u8]) -> Result<Box<RawValue>, NxapiError> {
    let (status, payload) = payload(reply).map_err(|reason| reply_error(command, &reason))?;
    let envelope: Envelope = match serde_json::from_slice(&payload) {
        Ok(envelope) => envelope,
        Err(_) if status != 200 => {
            return Err(reply_error(command, &format!("HTTP status {status}")));
        }
        Err(e) => return Err(reply_error(command, &e.to_string())),
    };
    let output = match envelope.ins_api.outputs.output {
        Rows(mut outputs) if !outputs.is_empty() => outputs.swap_remove(0),
        _ => return Err(reply_error(command, "no output in ins_api.outputs")),
    };
    let code = output.code.unwrap_or_default();
    if code.0 != "200" {
        let message = match (output.msg, output.clierror) {
            (Some(msg), Some(detail)) => format!("{} ({})", msg.trim(), detail.trim()),
            (Some(text), None) | (None, Some(text)) => text.trim().to_string(),
            (None, None) => "no message".into(),
        };
        return Err(NxapiError::Command {
            command: command.to_string(),
            code: code.0,
            message,
        });
    }
    output
        .body
        .ok_or_else(|| reply_error(command, "code 200 without a body"))
}

#[derive(Serialize)]
struct Request<'a> {
    ins_api: RequestBody<'a>,
}

#[derive(Serialize)]
struct RequestBody<'a> {
    version: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    chunk: &'static str,
    sid: &'static str,
    input: &'a str,
    output_format: &'static str,
}

impl<'a> Request<'a> {
    fn new(command: &'a str, format: Format) -> Request<'a> {
        Request {
            ins_api: RequestBody {
                version: "1.0",
                kind: match format {
                    Format::Json => "cli_show",
                    Format::Text => "cli_show_ascii",
                },
                chunk: "0",
                sid: "1",
                input: command,
                output_format: "json",
            },
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    ins_api: InsApi,
}

#[derive(Deserialize)]
struct InsApi {
    outputs: Outputs,
}

#[derive(Deserialize)]
struct Outputs {
    output: Rows<Output>,
}

#[derive(Deserialize)]
struct Output {
    #[serde(default)]
    code: Option<Text>,
    #[serde(default)]
    msg: Option<String>,
    #[serde(default)]
    clierror: Option<String>,
    #[serde(default)]
    body: Option<Box<RawValue>>,
}

pub use hopwatch_wire::ifname::{linux_name, nxos_name};

#[cfg(test)]
mod tests {
    use super::*;

    /// The total length the head of `reply` gives, as the read loop sees it.
    fn complete_length(reply: &[u8]) -> Option<usize> {
        parse_head(reply).unwrap().and_then(|head| head.total())
    }

    #[test]
    fn http_framing() {
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_head(reply).unwrap().map(|h| h.status), Some(200));
        assert_eq!(complete_length(reply), Some(reply.len()));
        let chunked = b"5\r\nhello\r\n6; x=y\r\n world\r\n0\r\n\r\n";
        assert_eq!(dechunk(chunked).unwrap(), b"hello world");
        assert_eq!(dechunk(b"5\r\nhel"), None);
    }

    #[test]
    fn a_content_length_past_the_address_space_is_no_length() {
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n{}";
        assert_eq!(complete_length(reply), None);
        let error = parse_reply("show interface", reply)
            .unwrap_err()
            .to_string();
        assert!(error.contains("show interface"), "{error}");
    }

    const BODY: &str = r#"{"ins_api": {"outputs": {"output": {"code": "200", "msg": "Success", "body": {"x": 1}}}}}"#;

    fn answer() -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
            BODY.len()
        )
        .into_bytes()
    }

    #[test]
    fn an_answer_split_across_reads_is_complete_only_at_its_last_byte() {
        let reply = answer();
        // Every prefix, the head cut mid-line included, waits for more.
        for end in 0..reply.len() {
            assert_eq!(
                parse_head(&reply[..end])
                    .unwrap()
                    .and_then(|head| head.total())
                    .filter(|&total| end >= total),
                None,
                "complete after {end} of {} bytes",
                reply.len()
            );
        }
        assert_eq!(complete_length(&reply), Some(reply.len()));
    }

    #[test]
    fn an_answer_written_in_pieces_on_an_open_connection_is_read_to_its_length() {
        use std::os::unix::net::UnixListener;
        let dir = std::env::temp_dir().join(format!("hopwatch-nxapi-split-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("nxapi.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).unwrap();
            let reply = answer();
            // Cut inside the status line, inside a header and inside the
            // body; each piece is its own write.
            for piece in [
                &reply[..7],
                &reply[7..40],
                &reply[40..reply.len() - 5],
                &reply[reply.len() - 5..],
            ] {
                stream.write_all(piece).unwrap();
                stream.flush().unwrap();
            }
            // The connection stays open: the client must stop at the
            // length, not wait for the close.
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
        });
        let mut client = Client::new(&socket, "admin", Duration::from_secs(5));
        #[derive(Deserialize)]
        struct X {
            x: u64,
        }
        let started = std::time::Instant::now();
        let got: X = client.show("show x").unwrap();
        assert_eq!(got.x, 1);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "waited for the close"
        );
        drop(client);
        server.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_chunked_body_with_chunk_extensions_and_a_trailer_is_joined() {
        let (first, second) = BODY.split_at(20);
        let reply = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x};name=value\r\n{first}\r\n{:X} ; quoted=\"a;b\"\r\n{second}\r\n0;last\r\nX-Trailer: 1\r\n\r\n",
            first.len(),
            second.len()
        );
        let body = parse_reply("show x", reply.as_bytes()).unwrap();
        assert_eq!(body.get(), r#"{"x": 1}"#);
        let cut = &reply.as_bytes()[..reply.len() - 30];
        let error = parse_reply("show x", cut).unwrap_err().to_string();
        assert!(error.contains("a broken chunked body"), "{error}");
        let bad_size = reply.replacen(&format!("{:x};", first.len()), "1g;", 1);
        let error = parse_reply("show x", bad_size.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(error.contains("a broken chunked body"), "{error}");
    }

    #[test]
    fn a_malformed_header_is_an_error_naming_the_command_and_the_fault() {
        for (reply, fault) in [
            (
                &b"HTTP/1.1 200 OK\r\nContent Length: 5\r\n\r\nhello"[..],
                "invalid header name",
            ),
            (b"HTTP/1.1 2x0 OK\r\n\r\n", "invalid response status"),
            (b"<html>nginx error</html>\r\n\r\n", "invalid HTTP version"),
        ] {
            let error = parse_reply("show interface", reply)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("show interface")
                    && error.contains("a malformed HTTP header")
                    && error.contains(fault),
                "{error}"
            );
        }
        let error = parse_reply("show interface", b"<html>nginx error</html>\r\n\r\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the answer begins `<html>nginx error</html>`"),
            "{error}"
        );
        let error = parse_reply("show interface", b"HTTP/1.1 200 OK\r\nContent-Le")
            .unwrap_err()
            .to_string();
        assert!(error.contains("no end of the HTTP header"), "{error}");
    }
}
