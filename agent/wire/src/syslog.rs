//! Syslog delivery: each event becomes one syslog message, sent to the
//! local socket (`/dev/log`) or to a server over UDP or TCP, so alerts land in
//! the log pipeline operators already watch. The agent's `syslog` output and
//! the collector's forwarding both send through [`SyslogOutput`].
//!
//! The `syslog` crate supplies the facility and severity codes and the
//! transports; the message itself is written here, because the crate's
//! RFC 5424 formatter only takes a numeric MSGID (hopwatch sends the event
//! type) and its TCP transport writes messages back to back with no framing,
//! so a receiver cannot tell where one ends.

use crate::event::{Body, Event, Severity};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv};
use std::fmt;
use std::io::{BufWriter, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use syslog::{Facility, LoggerBackend};
use thiserror::Error;

/// Long enough for a round trip across a WAN, short enough that a server
/// which drops SYNs costs the output thread little and never holds up exit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A server that stops reading would otherwise block the output thread for
/// good once the socket buffer is full.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The port syslog servers listen on, for UDP and in practice for TCP too.
const DEFAULT_PORT: u16 = 514;

/// APP-NAME (RFC 5424) and TAG (RFC 3164).
const APP_NAME: &str = "hopwatch";

/// The SD-ID (RFC 5424 §6.3.2) of the element that carries an alert's rule
/// labels, one SD-PARAM each: `[labels@32473 team="dc-ops"]`. A name of
/// one's own needs an IANA enterprise number; 32473 is the one RFC 5612
/// sets aside for examples and documentation, as hopwatch has none.
pub const LABELS_SD_ID: &str = "labels@32473";

const TARGET_FORMS: &str = "expected udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH";

/// Why a message did not leave. The next send connects afresh.
#[derive(Debug, Error)]
pub enum SendError {
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("write to {target} failed: {reason}")]
    Write { target: String, reason: String },
}

/// Where messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    /// A local socket such as `/dev/log`, datagram or stream.
    Unix(PathBuf),
    /// `host:port`, resolved at every connect so a changed DNS record is
    /// picked up after a failure.
    Udp(String),
    /// `host:port`, as for UDP.
    Tcp(String),
}

impl SyslogTarget {
    /// Parses `unix:///dev/log`, `udp://10.0.0.5:514` or `tcp://host:601`;
    /// the port defaults to 514, IPv6 literals go in brackets.
    pub fn parse(s: &str) -> Result<SyslogTarget, String> {
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(format!(
                "syslog address `{s}` has no scheme; {TARGET_FORMS}"
            ));
        };
        match scheme {
            "unix" if rest.starts_with('/') => Ok(SyslogTarget::Unix(PathBuf::from(rest))),
            "unix" => Err(format!(
                "syslog address `{s}` needs an absolute socket path, with three slashes as in unix:///dev/log"
            )),
            "udp" => host_port(s, rest).map(SyslogTarget::Udp),
            "tcp" => host_port(s, rest).map(SyslogTarget::Tcp),
            _ => Err(format!(
                "syslog address `{s}` has unknown scheme `{scheme}`; {TARGET_FORMS}"
            )),
        }
    }
}

impl fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyslogTarget::Unix(path) => write!(f, "unix://{}", path.display()),
            SyslogTarget::Udp(addr) => write!(f, "udp://{addr}"),
            SyslogTarget::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// Checks the `HOST[:PORT]` after the scheme and returns `host:port`.
fn host_port(input: &str, rest: &str) -> Result<String, String> {
    let bad = |why: &str| format!("syslog address `{input}` {why}; {TARGET_FORMS}");
    if rest.contains('/') {
        return Err(bad("has a path"));
    }
    let (host, port) = crate::text::split_host_port(rest, DEFAULT_PORT, &bad)?;
    if host.contains(':') {
        return Ok(format!("[{host}]:{port}"));
    }
    Ok(format!("{host}:{port}"))
}

/// The header layout for UDP and TCP. A `unix://` target always gets the
/// layout glibc's `syslog(3)` writes, because that is all that readers of
/// the local socket (rsyslog's imuxsock, journald) parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Rfc5424,
    Rfc3164,
}

/// What the message part carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The sentence a person reads ([`Event::message`]).
    #[default]
    Text,
    /// The whole event as JSON ([`Event::to_json`]), for log pipelines that
    /// parse it.
    Json,
}

/// The facility names `parse_facility` accepts, as syslog.conf spells them.
const FACILITIES: [(&str, Facility); 20] = [
    ("kern", Facility::LOG_KERN),
    ("user", Facility::LOG_USER),
    ("mail", Facility::LOG_MAIL),
    ("daemon", Facility::LOG_DAEMON),
    ("auth", Facility::LOG_AUTH),
    ("syslog", Facility::LOG_SYSLOG),
    ("lpr", Facility::LOG_LPR),
    ("news", Facility::LOG_NEWS),
    ("uucp", Facility::LOG_UUCP),
    ("cron", Facility::LOG_CRON),
    ("authpriv", Facility::LOG_AUTHPRIV),
    ("ftp", Facility::LOG_FTP),
    ("local0", Facility::LOG_LOCAL0),
    ("local1", Facility::LOG_LOCAL1),
    ("local2", Facility::LOG_LOCAL2),
    ("local3", Facility::LOG_LOCAL3),
    ("local4", Facility::LOG_LOCAL4),
    ("local5", Facility::LOG_LOCAL5),
    ("local6", Facility::LOG_LOCAL6),
    ("local7", Facility::LOG_LOCAL7),
];

/// Parses a facility name such as `local7` or `daemon`.
pub fn parse_facility(s: &str) -> Result<Facility, String> {
    FACILITIES
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, facility)| *facility)
        .ok_or_else(|| {
            let names: Vec<&str> = FACILITIES.iter().map(|(name, _)| *name).collect();
            format!(
                "unknown syslog facility `{s}`; expected one of {}",
                names.join(", ")
            )
        })
}

/// The `[output.syslog]` table, validated.
#[derive(Debug, Clone)]
pub struct SyslogSettings {
    /// `address`: where messages go (default `unix:///dev/log`).
    pub target: SyslogTarget,
    /// `facility`: the PRI's facility part (default `local7`).
    pub facility: Facility,
    /// `protocol`: the header layout for UDP and TCP.
    pub protocol: Protocol,
    /// `format`: the sentence or the event JSON.
    pub format: Format,
    /// HOSTNAME in the header (by default the agent's name).
    pub hostname: String,
    /// Event types to send; empty means all.
    pub types: Vec<String>,
}

/// By hand because `syslog::Facility` has no `PartialEq`, and the config
/// compares settings.
impl PartialEq for SyslogSettings {
    fn eq(&self, other: &SyslogSettings) -> bool {
        self.target == other.target
            && self.facility as u8 == other.facility as u8
            && self.protocol == other.protocol
            && self.format == other.format
            && self.hostname == other.hostname
            && self.types == other.types
    }
}

pub struct SyslogOutput {
    settings: SyslogSettings,
    /// HOSTNAME is each event's agent rather than `settings.hostname`.
    relay: bool,
    pid: u32,
    /// None until the first send and after any failure, so the next send
    /// connects afresh.
    conn: Option<LoggerBackend>,
}

impl SyslogOutput {
    /// Does not connect: the first send does, so a syslog server that is
    /// down at start-up does not stop the agent.
    pub fn new(settings: SyslogSettings) -> SyslogOutput {
        SyslogOutput {
            settings,
            relay: false,
            pid: std::process::id(),
            conn: None,
        }
    }

    /// Names each message's HOSTNAME after the agent the event came from, as
    /// a relay does (RFC 5424: HOSTNAME is the machine that originated it).
    pub fn relaying(mut self) -> SyslogOutput {
        self.relay = true;
        self
    }

    /// Whether the header has a HOSTNAME; messages to the local socket do not.
    pub fn has_hostname(&self) -> bool {
        self.header() != Header::Local
    }

    fn header(&self) -> Header {
        match (&self.settings.target, self.settings.protocol) {
            (SyslogTarget::Unix(_), _) => Header::Local,
            (_, Protocol::Rfc5424) => Header::Rfc5424,
            (_, Protocol::Rfc3164) => Header::Rfc3164,
        }
    }

    /// The bytes for one event, framed for the transport.
    fn frame(&self, event: &Event) -> Vec<u8> {
        let header = self.header();
        let s = &self.settings;
        let hostname = if self.relay {
            &event.agent
        } else {
            &s.hostname
        };
        let message = render(header, s.facility, hostname, self.pid, s.format, event);
        match (&s.target, header) {
            // RFC 6587 octet counting: the receiver splits by length, so a
            // newline inside the message cannot cut it in two. rsyslog,
            // syslog-ng's syslog() source and the usual collectors take it.
            (SyslogTarget::Tcp(_), Header::Rfc5424) => {
                format!("{} {message}", message.len()).into_bytes()
            }
            // BSD syslog over TCP is newline-delimited by convention, and
            // receivers that only know RFC 3164 know nothing else; a newline
            // inside the message would start a bogus one.
            (SyslogTarget::Tcp(_), _) => {
                let mut line = message.replace(['\r', '\n'], " ");
                line.push('\n');
                line.into_bytes()
            }
            // A datagram is its own frame.
            _ => message.into_bytes(),
        }
    }

    fn connect(&self) -> Result<LoggerBackend, SendError> {
        let target = &self.settings.target;
        let fail = |reason: String| SendError::Connect {
            target: target.to_string(),
            reason,
        };
        match target {
            // The crate finds out whether the socket is datagram or stream.
            SyslogTarget::Unix(path) => syslog::unix_custom((), path)
                .map(|logger| logger.backend)
                .map_err(|e| fail(e.to_string())),
            SyslogTarget::Udp(addr) => {
                let server = addr
                    .to_socket_addrs()
                    .map_err(|e| fail(e.to_string()))?
                    .next()
                    .ok_or_else(|| fail("the name resolves to no address".into()))?;
                let local: SocketAddr = if server.is_ipv4() {
                    (Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(local).map_err(|e| fail(e.to_string()))?;
                Ok(LoggerBackend::Udp(socket, server))
            }
            SyslogTarget::Tcp(addr) => connect_tcp(addr)
                .map(|stream| LoggerBackend::Tcp(BufWriter::new(stream)))
                .map_err(fail),
        }
    }

    /// Whether `events` lets this event's type through.
    pub fn accepts(&self, event: &Event) -> bool {
        self.settings.types.is_empty() || self.settings.types.iter().any(|t| t == event.kind())
    }

    /// Sends one event, connecting first if there is no connection; after an
    /// error the next call reconnects.
    pub fn send(&mut self, event: &Event) -> Result<(), SendError> {
        let frame = self.frame(event);
        if let Some(LoggerBackend::Tcp(stream)) = &self.conn
            && peer_closed(stream.get_ref())
        {
            self.conn = None;
        }
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(self.connect()?),
        };
        // One write per message: for UDP and datagram sockets that is one
        // datagram, for streams the crate flushes its buffer after it.
        let result = conn.write_all(&frame).and_then(|()| conn.flush());
        if let Err(e) = result {
            // The stream may hold half a frame now; only a new connection
            // gets the receiver back in step.
            self.conn = None;
            return Err(SendError::Write {
                target: self.settings.target.to_string(),
                reason: e.to_string(),
            });
        }
        Ok(())
    }
}

/// Tries each address the name resolves to, each within `CONNECT_TIMEOUT`
/// (the crate's own `tcp()` waits as long as the kernel does, minutes).
fn connect_tcp(addr: &str) -> Result<TcpStream, String> {
    let mut last = "the name resolves to no address".to_string();
    for server in addr.to_socket_addrs().map_err(|e| e.to_string())? {
        match TcpStream::connect_timeout(&server, CONNECT_TIMEOUT) {
            Ok(stream) => {
                // Each message is one small write; Nagle would hold the next
                // one back until the server acknowledges the last.
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                stream
                    .set_write_timeout(Some(WRITE_TIMEOUT))
                    .map_err(|e| e.to_string())?;
                return Ok(stream);
            }
            Err(e) => last = format!("{server}: {e}"),
        }
    }
    Err(last)
}

/// Whether the server has closed the connection. Without this check the
/// first message after a server restart is written into the dead socket's
/// buffer without error and lost; only the write after it fails.
fn peer_closed(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match recv(
        stream.as_raw_fd(),
        &mut byte,
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(0) => true,
        // Syslog servers send nothing, but one that does is alive.
        Ok(_) => false,
        Err(Errno::EAGAIN) => false,
        Err(_) => true,
    }
}

/// The header layouts hopwatch writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`
    Rfc5424,
    /// `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`
    Rfc3164,
    /// RFC 3164 without HOSTNAME, for the local socket: its readers take the
    /// first word after the timestamp as the tag, and the host is the local
    /// one anyway.
    Local,
}

/// One message, without transport framing.
fn render(
    header: Header,
    facility: Facility,
    hostname: &str,
    pid: u32,
    format: Format,
    event: &Event,
) -> String {
    let pri = facility as u8 | syslog_severity(event.severity()) as u8;
    let labels = structured_data(event);
    let body = match (format, header, &labels) {
        // BSD syslog has no structured data: the labels follow the sentence,
        // written as the element RFC 5424 would carry. The JSON has them.
        (Format::Text, Header::Rfc3164 | Header::Local, Some(sd)) => {
            format!("{} {sd}", event.message())
        }
        (Format::Text, ..) => event.message(),
        (Format::Json, ..) => event.to_json(),
    };
    // The event's own time rather than the send time: after an outage the
    // runner delivers late, and the log should still say when it happened.
    let at = humantime::parse_rfc3339(&event.ts).unwrap_or_else(|_| SystemTime::now());
    match header {
        Header::Rfc5424 => format!(
            "<{pri}>1 {} {} {APP_NAME} {pid} {} {} {body}",
            humantime::format_rfc3339_millis(at),
            hostname_field(hostname),
            event.kind(),
            labels.as_deref().unwrap_or("-"),
        ),
        Header::Rfc3164 => format!(
            "<{pri}>{} {} {APP_NAME}[{pid}]: {body}",
            bsd_timestamp(at),
            hostname_field(hostname),
        ),
        Header::Local => format!("<{pri}>{} {APP_NAME}[{pid}]: {body}", bsd_timestamp(at)),
    }
}

/// An alert's labels as one SD-ELEMENT; `None` for other events and for an
/// alert without labels. Values are escaped as RFC 5424 §6.3.3 asks (`"`,
/// `\` and `]` take a backslash). The agent only makes Prometheus label
/// names, which are valid SD-NAMEs; a relayed event may carry anything, so
/// each name is cut to what an SD-NAME may be.
fn structured_data(event: &Event) -> Option<String> {
    let Body::Alert(alert) = &event.body else {
        return None;
    };
    if alert.labels.is_empty() {
        return None;
    }
    let mut sd = format!("[{LABELS_SD_ID}");
    for (name, value) in &alert.labels {
        let name: String = name
            .chars()
            .filter(|&c| c.is_ascii_graphic() && !matches!(c, '=' | ']' | '"'))
            .take(32)
            .collect();
        if name.is_empty() {
            continue;
        }
        sd.push(' ');
        sd.push_str(&name);
        sd.push_str("=\"");
        for c in value.chars() {
            if matches!(c, '"' | '\\' | ']') {
                sd.push('\\');
            }
            sd.push(c);
        }
        sd.push('"');
    }
    sd.push(']');
    Some(sd)
}

fn syslog_severity(severity: Severity) -> syslog::Severity {
    match severity {
        Severity::Critical => syslog::Severity::LOG_CRIT,
        Severity::Warning => syslog::Severity::LOG_WARNING,
        Severity::Info => syslog::Severity::LOG_INFO,
    }
}

/// Header fields are printable ASCII without spaces; anything else would
/// shift the fields after it. An empty name becomes the nil value `-`.
fn hostname_field(hostname: &str) -> String {
    let field: String = hostname
        .chars()
        .take(255)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if field.is_empty() { "-".into() } else { field }
}

/// `Mmm dd hh:mm:ss` in UTC with the day padded by a space, as RFC 3164
/// asks. The layout has no zone; UTC is what switches keep and what `ts`
/// holds.
fn bsd_timestamp(at: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // `2023-11-14T22:13:20Z`: fixed positions for every year humantime
    // formats (up to 9999).
    let rfc = humantime::format_rfc3339_seconds(at).to_string();
    let month: usize = rfc[5..7].parse().unwrap_or(1);
    let day: u32 = rfc[8..10].parse().unwrap_or(1);
    format!(
        "{} {day:>2} {}",
        MONTHS[month.clamp(1, 12) - 1],
        &rfc[11..19]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Alert, AlertState, Body, Link, LinkState, Sequencer};
    use std::io::Read;
    use std::net::TcpListener;
    use std::os::unix::net::UnixDatagram;
    use std::time::UNIX_EPOCH;

    /// 2023-11-14T22:13:20.123Z
    const AT_MS: u64 = 1_700_000_000_123;

    fn alert(at_ms: u64) -> Event {
        Sequencer::new("leaf1", "b1").stamp(
            UNIX_EPOCH + Duration::from_millis(at_ms),
            Body::Alert(Alert {
                state: AlertState::Firing,
                rule: "tx-errors".into(),
                severity: Severity::Critical,
                interface: "Eth1-1".into(),
                expr: "increase(tx_errors[5s]) > 3".into(),
                value: Some(7.0),
                threshold: 3.0,
                message: "Eth1-1 tx_errors increased by 7 in 5s (threshold 3)".into(),
                labels: Default::default(),
                silenced: false,
                silence: None,
            }),
        )
    }

    fn link_down() -> Event {
        Sequencer::new("leaf1", "b1").stamp(
            UNIX_EPOCH + Duration::from_millis(AT_MS),
            Body::Link(Link {
                interface: "swp1".into(),
                state: LinkState::Down,
                previous: LinkState::Up,
                carrier_changes: 3,
                oper_state: "down".into(),
                message: "swp1 went down".into(),
                admin: None,
                reason: None,
            }),
        )
    }

    fn settings(target: SyslogTarget, protocol: Protocol, format: Format) -> SyslogSettings {
        SyslogSettings {
            target,
            facility: Facility::LOG_LOCAL7,
            protocol,
            format,
            hostname: "leaf1".into(),
            types: vec![],
        }
    }

    #[test]
    fn parses_targets() {
        let cases = [
            ("unix:///dev/log", SyslogTarget::Unix("/dev/log".into())),
            (
                "udp://10.0.0.5:514",
                SyslogTarget::Udp("10.0.0.5:514".into()),
            ),
            ("udp://10.0.0.5", SyslogTarget::Udp("10.0.0.5:514".into())),
            (
                "tcp://logs.example.net:601",
                SyslogTarget::Tcp("logs.example.net:601".into()),
            ),
            (
                "tcp://logs.example.net",
                SyslogTarget::Tcp("logs.example.net:514".into()),
            ),
            (
                "udp://[2001:db8::5]:1514",
                SyslogTarget::Udp("[2001:db8::5]:1514".into()),
            ),
            ("udp://[::1]", SyslogTarget::Udp("[::1]:514".into())),
        ];
        for (input, want) in cases {
            assert_eq!(SyslogTarget::parse(input), Ok(want), "{input}");
        }
        assert_eq!(
            SyslogTarget::parse("tcp://[::1]").unwrap().to_string(),
            "tcp://[::1]:514"
        );
    }

    #[test]
    fn rejects_bad_targets_naming_input_and_fix() {
        let cases = [
            ("", "no scheme"),
            ("10.0.0.5:514", "no scheme"),
            ("http://10.0.0.5", "unknown scheme `http`"),
            ("unix://dev/log", "three slashes"),
            ("unix://", "three slashes"),
            ("udp://", "no host"),
            ("udp://:514", "no host"),
            ("udp://10.0.0.5:syslog", "port `syslog`"),
            ("udp://10.0.0.5:0", "port `0`"),
            ("udp://10.0.0.5:65536", "port `65536`"),
            ("udp://10.0.0.5:", "port ``"),
            ("tcp://10.0.0.5:514/x", "has a path"),
            ("udp://2001:db8::5", "brackets"),
            ("udp://[2001:db8::5", "unclosed"),
            ("udp://[leaf1]:514", "no IPv6 address"),
            ("udp://[::1]514", "after the `]`"),
        ];
        for (input, want) in cases {
            let error = SyslogTarget::parse(input).unwrap_err();
            assert!(error.contains(&format!("`{input}`")), "{input}: {error}");
            assert!(error.contains(want), "{input}: {error}");
        }
        assert!(
            SyslogTarget::parse("10.0.0.5")
                .unwrap_err()
                .contains("expected udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH")
        );
    }

    #[test]
    fn parses_facilities() {
        assert_eq!(parse_facility("local7").unwrap() as u8, 23 << 3);
        assert_eq!(parse_facility("daemon").unwrap() as u8, 3 << 3);
        assert_eq!(parse_facility("kern").unwrap() as u8, 0);
        let error = parse_facility("locl7").unwrap_err();
        assert!(error.contains("`locl7`"), "{error}");
        assert!(error.contains("user, mail, daemon"), "{error}");
        assert!(error.contains("local7"), "{error}");
        assert!(parse_facility("LOG_LOCAL7").is_err());
    }

    #[test]
    fn bsd_timestamp_pads_the_day_with_a_space() {
        let at = |ms| UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(bsd_timestamp(at(AT_MS)), "Nov 14 22:13:20");
        assert_eq!(bsd_timestamp(at(AT_MS - 9 * 86_400_000)), "Nov  5 22:13:20");
        assert_eq!(bsd_timestamp(at(0)), "Jan  1 00:00:00");
    }

    #[test]
    fn hostname_field_keeps_the_header_intact() {
        assert_eq!(hostname_field("leaf1"), "leaf1");
        assert_eq!(hostname_field("leaf 1"), "leaf_1");
        assert_eq!(hostname_field(""), "-");
    }

    /// Sends `events` through the output to a UDP socket of the test's own and
    /// returns the datagrams as received.
    fn over_udp(protocol: Protocol, format: Format, events: &[Event]) -> Vec<String> {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let target = SyslogTarget::Udp(server.local_addr().unwrap().to_string());
        let mut output = SyslogOutput::new(settings(target, protocol, format));
        let mut buf = [0u8; 65_536];
        events
            .iter()
            .map(|event| {
                output.send(event).unwrap();
                let (n, _) = server.recv_from(&mut buf).unwrap();
                String::from_utf8(buf[..n].to_vec()).unwrap()
            })
            .collect()
    }

    #[test]
    fn rfc5424_over_udp_exact_bytes() {
        let pid = std::process::id();
        let got = over_udp(
            Protocol::Rfc5424,
            Format::Text,
            &[alert(AT_MS), link_down()],
        );
        // local7 (23) * 8 + crit (2) = 186; + warning (4) = 188.
        assert_eq!(
            got[0],
            format!(
                "<186>1 2023-11-14T22:13:20.123Z leaf1 hopwatch {pid} alert - \
                 Eth1-1 tx_errors increased by 7 in 5s (threshold 3)"
            )
        );
        assert_eq!(
            got[1],
            format!("<188>1 2023-11-14T22:13:20.123Z leaf1 hopwatch {pid} link - swp1 went down")
        );
    }

    #[test]
    fn rfc3164_over_udp_exact_bytes() {
        let pid = std::process::id();
        let got = over_udp(
            Protocol::Rfc3164,
            Format::Text,
            &[alert(AT_MS), link_down()],
        );
        assert_eq!(
            got[0],
            format!(
                "<186>Nov 14 22:13:20 leaf1 hopwatch[{pid}]: \
                 Eth1-1 tx_errors increased by 7 in 5s (threshold 3)"
            )
        );
        assert_eq!(
            got[1],
            format!("<188>Nov 14 22:13:20 leaf1 hopwatch[{pid}]: swp1 went down")
        );
    }

    #[test]
    fn json_format_carries_the_event() {
        let event = alert(AT_MS);
        let got = over_udp(
            Protocol::Rfc5424,
            Format::Json,
            std::slice::from_ref(&event),
        );
        let (head, json) = got[0].split_once(" alert - ").unwrap();
        assert!(head.starts_with("<186>1 "), "{head}");
        let back: Event = serde_json::from_str(json).unwrap();
        assert_eq!(back, event);
    }

    /// Sends a link-down event with a newline in its sentence twice over TCP
    /// and returns all the server received.
    fn twice_over_tcp(protocol: Protocol) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = SyslogTarget::Tcp(listener.local_addr().unwrap().to_string());
        let mut output = SyslogOutput::new(settings(target, protocol, Format::Text));
        let mut event = link_down();
        if let Body::Link(link) = &mut event.body {
            link.message = "swp1\nwent down".into();
        }
        output.send(&event).unwrap();
        output.send(&event).unwrap();
        drop(output);
        let mut received = String::new();
        let (mut stream, _) = listener.accept().unwrap();
        stream.read_to_string(&mut received).unwrap();
        received
    }

    #[test]
    fn tcp_frames_rfc5424_by_octet_count() {
        let pid = std::process::id();
        let message =
            format!("<188>1 2023-11-14T22:13:20.123Z leaf1 hopwatch {pid} link - swp1\nwent down");
        let frame = format!("{} {message}", message.len());
        assert_eq!(twice_over_tcp(Protocol::Rfc5424), frame.repeat(2));
    }

    #[test]
    fn tcp_frames_rfc3164_by_newline() {
        let pid = std::process::id();
        let line = format!("<188>Nov 14 22:13:20 leaf1 hopwatch[{pid}]: swp1 went down\n");
        assert_eq!(twice_over_tcp(Protocol::Rfc3164), line.repeat(2));
    }

    #[test]
    fn tcp_reconnects_when_the_server_closed_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = SyslogTarget::Tcp(listener.local_addr().unwrap().to_string());
        let mut output = SyslogOutput::new(settings(target, Protocol::Rfc5424, Format::Text));
        output.send(&link_down()).unwrap();
        let (mut first, _) = listener.accept().unwrap();
        let mut buf = [0u8; 512];
        assert!(first.read(&mut buf).unwrap() > 0);
        drop(first);
        // The close has to reach the client before the next send to be seen;
        // on loopback it does at once, but wait for it rather than race it.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !matches!(&output.conn, Some(LoggerBackend::Tcp(s)) if peer_closed(s.get_ref())) {
            assert!(std::time::Instant::now() < deadline, "close never seen");
            std::thread::sleep(Duration::from_millis(5));
        }
        output.send(&link_down()).unwrap();
        let (mut second, _) = listener.accept().unwrap();
        let n = second.read(&mut buf).unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).ends_with("link - swp1 went down"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }

    #[test]
    fn tcp_refused_is_a_connect_error() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let target = SyslogTarget::Tcp(format!("127.0.0.1:{port}"));
        let mut output = SyslogOutput::new(settings(target, Protocol::Rfc5424, Format::Text));
        let error = output.send(&link_down()).unwrap_err();
        assert!(matches!(error, SendError::Connect { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains(&format!("tcp://127.0.0.1:{port}")),
            "{error}"
        );
        assert!(output.conn.is_none());
    }

    #[test]
    fn unix_socket_gets_the_local_layout_whatever_the_protocol() {
        let dir = std::env::temp_dir().join(format!("hopwatch-syslog-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let target = SyslogTarget::Unix(path.clone());
        let mut output = SyslogOutput::new(settings(target, Protocol::Rfc5424, Format::Text));
        output.send(&link_down()).unwrap();
        let mut buf = [0u8; 1024];
        let n = server.recv(&mut buf).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            String::from_utf8_lossy(&buf[..n]),
            format!(
                "<188>Nov 14 22:13:20 hopwatch[{}]: swp1 went down",
                std::process::id()
            )
        );
    }

    #[test]
    fn unix_socket_missing_is_a_connect_error() {
        let target = SyslogTarget::Unix("/nonexistent/hopwatch/log.sock".into());
        let mut output = SyslogOutput::new(settings(target, Protocol::Rfc3164, Format::Text));
        let error = output.send(&link_down()).unwrap_err();
        assert!(matches!(error, SendError::Connect { .. }), "{error}");
    }

    fn labelled(labels: &[(&str, &str)]) -> Event {
        let mut event = alert(AT_MS);
        if let Body::Alert(a) = &mut event.body {
            a.labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        }
        event
    }

    #[test]
    fn labels_become_one_escaped_sd_element() {
        let event = labelled(&[
            ("team", "dc-ops"),
            ("runbook", r#"say "hi" \ [x]"#),
            ("empty", ""),
        ]);
        assert_eq!(
            structured_data(&event).unwrap(),
            r#"[labels@32473 empty="" runbook="say \"hi\" \\ [x\]" team="dc-ops"]"#
        );
        assert_eq!(structured_data(&alert(AT_MS)), None);
        assert_eq!(structured_data(&link_down()), None);
        // A relayed event's names are cut to what an SD-NAME may be.
        let event = labelled(&[("a b=c\"d]", "1"), ("é", "2"), (&"n".repeat(40), "3")]);
        assert_eq!(
            structured_data(&event).unwrap(),
            format!(r#"[labels@32473 abcd="1" {}="3"]"#, "n".repeat(32))
        );
    }

    #[test]
    fn labels_go_in_structured_data_or_after_the_sentence() {
        let pid = std::process::id();
        let event = labelled(&[("team", "dc-ops"), ("runbook", "a]b")]);
        let sd = r#"[labels@32473 runbook="a\]b" team="dc-ops"]"#;
        let sentence = "Eth1-1 tx_errors increased by 7 in 5s (threshold 3)";
        let got = over_udp(
            Protocol::Rfc5424,
            Format::Text,
            std::slice::from_ref(&event),
        );
        assert_eq!(
            got[0],
            format!("<186>1 2023-11-14T22:13:20.123Z leaf1 hopwatch {pid} alert {sd} {sentence}")
        );
        let got = over_udp(
            Protocol::Rfc3164,
            Format::Text,
            std::slice::from_ref(&event),
        );
        assert_eq!(
            got[0],
            format!("<186>Nov 14 22:13:20 leaf1 hopwatch[{pid}]: {sentence} {sd}")
        );
        // JSON carries the labels itself; RFC 5424 still has the element.
        let got = over_udp(
            Protocol::Rfc5424,
            Format::Json,
            std::slice::from_ref(&event),
        );
        let (head, json) = got[0].split_once(&format!(" alert {sd} ")).unwrap();
        assert!(head.starts_with("<186>1 "), "{head}");
        assert_eq!(serde_json::from_str::<Event>(json).unwrap(), event);
        let got = over_udp(
            Protocol::Rfc3164,
            Format::Json,
            std::slice::from_ref(&event),
        );
        assert!(
            got[0].ends_with(r#"(threshold 3)","labels":{"runbook":"a]b","team":"dc-ops"}}"#),
            "{}",
            got[0]
        );
    }

    #[test]
    fn accepts_only_the_listed_types() {
        let mut s = settings(
            SyslogTarget::Udp("127.0.0.1:514".into()),
            Protocol::Rfc5424,
            Format::Text,
        );
        s.types = vec!["alert".into()];
        let output = SyslogOutput::new(s.clone());
        assert!(output.accepts(&alert(AT_MS)));
        assert!(!output.accepts(&link_down()));
        s.types.clear();
        assert!(SyslogOutput::new(s).accepts(&link_down()));
    }
}
