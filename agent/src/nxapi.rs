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

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// Where NX-API listens inside the NX-OS bash shell.
pub const DEFAULT_SOCKET: &str = "/tmp/nginx_local/nginx_1_be_nxapi.sock";
/// The NX-OS user the local socket runs commands as.
pub const DEFAULT_USER: &str = "admin";
/// The largest answer read; `show interface` on a 400-port chassis is a few
/// megabytes.
const MAX_REPLY: usize = 64 << 20;

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
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>, user: impl Into<String>, timeout: Duration) -> Client {
        Client {
            socket: socket.into(),
            user: user.into(),
            timeout,
            reply: Vec::new(),
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

    /// One request; returns the `body` of a successful answer.
    fn call(&mut self, command: &str, format: Format) -> Result<Box<RawValue>, NxapiError> {
        self.exchange(command, format)?;
        parse_reply(command, &self.reply)
    }

    /// Sends the request and reads the whole answer into `self.reply`.
    fn exchange(&mut self, command: &str, format: Format) -> Result<(), NxapiError> {
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
        let body = serde_json::to_string(&Request::new(command, format))
            .expect("a request always serializes");
        let head = format!(
            "POST /ins_local HTTP/1.1\r\nHost: localhost\r\nCookie: nxapi_auth={}:local\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.user,
            body.len()
        );
        stream.write_all(head.as_bytes()).map_err(io)?;
        stream.write_all(body.as_bytes()).map_err(io)?;
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
    let head = parse_head(reply)
        .map_err(|reason| reply_error(command, &reason))?
        .ok_or_else(|| reply_error(command, "no end of the HTTP header"))?;
    let status = head.status;
    let body = &reply[head.body_start..];
    let payload = match head.framing {
        // Bytes past a given length belong to no answer.
        Framing::Length(length) => &body[..length.min(body.len())],
        Framing::Chunked => {
            &dechunk(body).ok_or_else(|| reply_error(command, "a broken chunked body"))?[..]
        }
        Framing::Close => body,
    };
    let envelope: Envelope = match serde_json::from_slice(payload) {
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

/// A field NX-OS writes as a string or a number, kept as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Deserializes a count NX-OS writes as `"123"` or `123`. Anything else
/// (`"N/A"`, an empty string, a negative number) is `None`: unavailable,
/// never zero.
pub fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct Visitor;
    impl<'de> de::Visitor<'de> for Visitor {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a count as a number or a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<u64>, E> {
            Ok(v.trim().parse().ok())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u64>, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u64>, E> {
            Ok(u64::try_from(v).ok())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<u64>, E> {
            Ok((v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64).then_some(v as u64))
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
            d.deserialize_any(Visitor)
        }
    }
    deserializer.deserialize_any(Visitor)
}

/// A count as [`number`] reads it, for hand-written visitors.
pub struct Count(pub Option<u64>);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Count, D::Error> {
        number(deserializer).map(Count)
    }
}

/// A map key, borrowed from the input when it has no escapes.
pub struct Key<'de>(pub std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// A `ROW_*` of an NX-OS table: a list of rows, or one row written as an
/// object. Absent tables deserialize to no rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows<T>(pub Vec<T>);

impl<T> Default for Rows<T> {
    fn default() -> Rows<T> {
        Rows(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Rows<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Rows<T>, D::Error> {
        // A visitor rather than an untagged enum: the rows are read in place,
        // so a raw `body` inside them and numbers of either kind survive.
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> de::Visitor<'de> for Visitor<T> {
            type Value = Rows<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a row or a list of rows")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Rows<T>, A::Error> {
                let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(row) = seq.next_element()? {
                    rows.push(row);
                }
                Ok(Rows(rows))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Rows<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|row| Rows(vec![row]))
            }
        }
        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

pub use hopwatch_wire::ifname::{linux_name, nxos_name};

/// The most headers an answer may carry; nginx sends about six.
const MAX_HEADERS: usize = 32;

/// What the head of an HTTP answer says about the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    status: u16,
    /// Where the body starts.
    body_start: usize,
    framing: Framing,
}

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither, or a length no answer could have: the body ends when the
    /// server closes the connection.
    Close,
}

impl Head {
    /// The full length of the answer, when the head gives it.
    fn total(&self) -> Option<usize> {
        match self.framing {
            Framing::Length(length) => self.body_start.checked_add(length),
            Framing::Chunked | Framing::Close => None,
        }
    }
}

/// Reads the status line and headers of `reply` with `httparse`: `None`
/// while they are incomplete, an error naming what is malformed.
fn parse_head(reply: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let body_start = match response.parse(reply) {
        Ok(httparse::Status::Complete(start)) => start,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => {
            let line = reply.split(|&b| b == b'\n').next().unwrap_or_default();
            let line = String::from_utf8_lossy(&line[..line.len().min(80)]);
            return Err(format!(
                "a malformed HTTP header ({error}); the answer begins `{}`",
                line.trim_end()
            ));
        }
    };
    let status = response.code.unwrap_or_default();
    let mut framing = Framing::Close;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or_default().trim();
        if header.name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            framing = Framing::Chunked;
            break;
        }
        if header.name.eq_ignore_ascii_case("content-length") {
            framing = match value.parse::<usize>() {
                Ok(length) if body_start.checked_add(length).is_some() => Framing::Length(length),
                _ => Framing::Close,
            };
        }
    }
    Ok(Some(Head {
        status,
        body_start,
        framing,
    }))
}

/// Joins a `Transfer-Encoding: chunked` body; `None` when it is cut short
/// or a chunk size is not one. Chunk extensions and trailers are ignored.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    loop {
        let (line, size) = match httparse::parse_chunk_size(body).ok()? {
            httparse::Status::Complete(parsed) => parsed,
            httparse::Status::Partial => return None,
        };
        body = &body[line..];
        if size == 0 {
            return Some(out);
        }
        let size = usize::try_from(size).ok()?;
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Counts {
        #[serde(default, deserialize_with = "number")]
        a: Option<u64>,
        #[serde(default, deserialize_with = "number")]
        b: Option<u64>,
        #[serde(default, deserialize_with = "number")]
        c: Option<u64>,
        #[serde(default, deserialize_with = "number")]
        d: Option<u64>,
    }

    #[test]
    fn counts_read_as_strings_or_numbers() {
        let counts: Counts =
            serde_json::from_str(r#"{"a": "18446744073709551615", "b": 7, "c": "N/A"}"#).unwrap();
        assert_eq!(counts.a, Some(u64::MAX));
        assert_eq!(counts.b, Some(7));
        assert_eq!(counts.c, None);
        assert_eq!(counts.d, None);
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Row {
        name: Text,
    }

    #[test]
    fn one_row_or_many() {
        let one: Rows<Row> = serde_json::from_str(r#"{"name": "x"}"#).unwrap();
        let many: Rows<Row> = serde_json::from_str(r#"[{"name": "x"}, {"name": 2}]"#).unwrap();
        assert_eq!(
            one.0,
            vec![Row {
                name: Text("x".into())
            }]
        );
        assert_eq!(many.0.len(), 2);
        assert_eq!(many.0[1].name, Text("2".into()));
    }

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
