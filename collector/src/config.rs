//! `collector.toml`: deserialized with spans and validated all at once, so
//! `hopwatch-collector check-config` reports every mistake with
//! `file:line:col` and a hint in one pass. [`Config::parse`] is pure;
//! [`Config::check_files`] is the part of `check-config` that reads the token
//! and certificate files the config names.

use hopwatch::config::{Diagnostic, RawSyslog, closest, key_offset, line_col};
use hopwatch_wire::matcher::InterfaceMatcher;
use hopwatch_wire::syslog::SyslogSettings;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

mod auth;

/// Where `hopwatch-collector` looks for its config when `-c` is not given.
pub const DEFAULT_PATH: &str = "/etc/hopwatch/collector.toml";

/// The origin named in diagnostics for the built-in config.
pub const EMBEDDED_ORIGIN: &str = "<embedded default>";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub collector: CollectorSettings,
    pub auth: AuthSettings,
    /// `[output.syslog]`: forward received events.
    pub syslog: Option<SyslogSettings>,
    pub rate_limit: RateLimitSettings,
    pub log: LogSettings,
    pub http: HttpSettings,
}

/// `[http]`: how long the API's clients may take and how many may be
/// connected, so slow or idle sockets cannot starve the agents or the
/// API's own users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// A request's headers must arrive in full within this, counted from
    /// when the connection opens or its previous answer was sent; so a
    /// keep-alive connection waiting for its next request is closed after
    /// it too.
    pub header_timeout: Duration,
    /// A connection on which no byte moves either way for this long is
    /// closed: a body that stops arriving, an answer nobody reads.
    pub idle_timeout: Duration,
    /// HTTP connections open at once at most, apart from the agents' port;
    /// when full, the oldest one that has not yet shown an API token is
    /// closed for a new one.
    pub max_connections: usize,
}

#[derive(Debug, Clone)]
pub struct CollectorSettings {
    pub agents_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub data_dir: PathBuf,
    /// An agent silent this long is stale and its interfaces' time unknown.
    pub heartbeat_timeout: Duration,
    pub retain: Duration,
    pub max_line: usize,
    /// Agent connections past their hello at most.
    pub max_connections: usize,
    /// How long a new connection may take to complete TLS and say hello.
    pub hello_timeout: Duration,
    /// Connections waiting to say hello at most; a new one sheds the oldest.
    pub max_pending: usize,
    pub tls: Option<TlsSettings>,
}

impl CollectorSettings {
    /// How long a connection may stay silent before it is taken for
    /// half-open and closed: three heartbeat timeouts, so an agent that is
    /// merely slow is stale long before its connection goes.
    pub fn read_timeout(&self) -> Duration {
        self.heartbeat_timeout * 3
    }
}

/// `[collector.tls]`: agents connect over TLS.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert_file: Located<PathBuf>,
    pub key_file: Located<PathBuf>,
    /// When set, agents must present a certificate signed by this CA.
    pub client_ca_file: Option<Located<PathBuf>>,
}

#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// Tokens any agent may use.
    pub agent_tokens: Vec<Secret>,
    pub api_tokens: Vec<Secret>,
    pub agent_tokens_file: Option<Located<PathBuf>>,
    pub api_tokens_file: Option<Located<PathBuf>>,
    /// `agent_tokens` entries `{ token_file, agents }`: tokens only the
    /// named agents may use.
    pub bound_tokens: Vec<BoundTokenFile>,
    /// `[[auth.agent_certs]]`: client certificate names bound to agents.
    pub agent_certs: Vec<AgentCert>,
}

/// A token file whose tokens admit only the agents `agents` matches.
#[derive(Debug, Clone)]
pub struct BoundTokenFile {
    pub token_file: Located<PathBuf>,
    pub agents: InterfaceMatcher,
}

/// Agents whose client certificate's CN or DNS name matches `names` may say
/// hello as the agents `agents` matches.
#[derive(Debug, Clone)]
pub struct AgentCert {
    pub names: InterfaceMatcher,
    pub agents: InterfaceMatcher,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitSettings {
    /// Requests per second each API token may make, on average.
    pub per_second: f64,
    /// Requests a token may make at once after being idle.
    pub burst: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    /// The log file, relative to `data_dir` unless absolute; None logs to
    /// stderr only.
    pub file: Option<PathBuf>,
    pub max_size: u64,
    /// Rotated files kept besides the current one.
    pub keep: usize,
}

/// A value with the place in the config file it came from, for errors found
/// only when the value is used (a token file that cannot be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl<T> Located<T> {
    /// A diagnostic pointing at this value.
    pub fn diagnostic(&self, message: impl Into<String>, hint: Option<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
            message: message.into(),
            hint,
        }
    }
}

/// A token. `Debug` hides it so no log or panic message shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", Errors(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ConfigError {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid(d) => d,
            ConfigError::Read { .. } => &[],
        }
    }
}

struct Errors<'a>(&'a [Diagnostic]);

impl fmt::Display for Errors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        let n = self.0.len();
        write!(f, "\n{n} error{} in config", if n == 1 { "" } else { "s" })
    }
}

// The raw shape of the file: every value that can be wrong is `Spanned` so
// validation can point at it, and every field optional so one missing key
// does not hide the others' errors.

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawConfig {
    collector: RawCollector,
    auth: RawAuth,
    output: RawOutputs,
    rate_limit: RawRateLimit,
    log: RawLog,
    http: RawHttp,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawHttp {
    header_timeout: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    max_connections: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawCollector {
    agents_listen: Option<Spanned<String>>,
    http_listen: Option<Spanned<String>>,
    data_dir: Option<Spanned<String>>,
    heartbeat_timeout: Option<Spanned<String>>,
    retain: Option<Spanned<String>>,
    max_line: Option<Spanned<RawSize>>,
    max_connections: Option<Spanned<i64>>,
    hello_timeout: Option<Spanned<String>>,
    max_pending: Option<Spanned<i64>>,
    tls: Option<Spanned<RawTls>>,
}

/// A size is usually a string (`"1MiB"`), but a bare number of bytes is
/// fine too.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawSize {
    Bytes(i64),
    Text(String),
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawTls {
    cert_file: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
    client_ca_file: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAuth {
    // A token, or a table binding a token file to agent names; read from
    // plain values because spans do not survive an untagged enum.
    agent_tokens: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    agent_certs: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    api_tokens: Option<Spanned<Vec<Spanned<String>>>>,
    agent_tokens_file: Option<Spanned<String>>,
    api_tokens_file: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawOutputs {
    syslog: Option<Spanned<RawSyslog>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRateLimit {
    per_second: Option<Spanned<f64>>,
    burst: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawLog {
    file: Option<Spanned<String>>,
    max_size: Option<Spanned<RawSize>>,
    keep: Option<Spanned<i64>>,
}

/// The keys each table accepts, for "did you mean" hints on unknown keys.
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &["collector", "auth", "output", "rate_limit", "log", "http"],
    ),
    (
        "collector",
        &[
            "agents_listen",
            "http_listen",
            "data_dir",
            "heartbeat_timeout",
            "retain",
            "max_line",
            "max_connections",
            "hello_timeout",
            "max_pending",
            "tls",
        ],
    ),
    (
        "collector.tls",
        &["cert_file", "key_file", "client_ca_file"],
    ),
    (
        "auth",
        &[
            "agent_tokens",
            "api_tokens",
            "agent_tokens_file",
            "api_tokens_file",
            "agent_certs",
        ],
    ),
    ("output", &["syslog"]),
    (
        "output.syslog",
        &[
            "address", "facility", "protocol", "format", "events", "hostname",
        ],
    ),
    ("rate_limit", &["per_second", "burst"]),
    ("log", &["file", "max_size", "keep"]),
    (
        "http",
        &["header_timeout", "idle_timeout", "max_connections"],
    ),
];

pub const DEFAULT_AGENTS_LISTEN: &str = "127.0.0.1:7000";
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./hopwatch-data";
/// Three of the agents' default 10 s heartbeats.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RETAIN: Duration = Duration::from_secs(400 * 86_400);
pub const DEFAULT_MAX_LINE: usize = 1 << 20;
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// An agent says hello as soon as it connects; this leaves room for a slow
/// TLS handshake.
pub const DEFAULT_HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Hellos are read in moments, so even a fleet reconnecting at once rarely
/// has this many waiting; sockets that never speak are shed past it.
pub const DEFAULT_MAX_PENDING: usize = 1024;
pub const DEFAULT_LOG_FILE: &str = "hopwatch-collector.log";
pub const DEFAULT_HTTP: HttpSettings = HttpSettings {
    header_timeout: Duration::from_secs(10),
    idle_timeout: Duration::from_secs(60),
    max_connections: 1024,
};

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Validates config text; `origin` names it in diagnostics.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut v = Validator {
            text,
            origin,
            errors: Vec::new(),
        };
        let config = v.parse();
        if v.errors.is_empty() {
            Ok(config.expect("a config without errors"))
        } else {
            v.errors.sort_by_key(|d| (d.line, d.col));
            Err(ConfigError::Invalid(v.errors))
        }
    }

    /// Every default: what `hopwatch-collector run` uses with no config.
    pub fn embedded() -> Config {
        Config::parse("", EMBEDDED_ORIGIN).expect("the defaults are valid")
    }

    /// Token files other users can read, each a sentence for a warning.
    pub fn file_warnings(&self) -> Vec<String> {
        let auth = &self.auth;
        [&auth.agent_tokens_file, &auth.api_tokens_file]
            .into_iter()
            .flatten()
            .chain(auth.bound_tokens.iter().map(|b| &b.token_file))
            .filter_map(|f| crate::auth::readable_by_others(&f.value))
            .collect()
    }

    /// Reads the files the config names (token files, TLS certificates and
    /// keys) and reports each one that cannot be used, at its key.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        let bound = self.auth.bound_tokens.iter().map(|b| &b.token_file);
        for file in [&self.auth.agent_tokens_file, &self.auth.api_tokens_file]
            .into_iter()
            .flatten()
            .chain(bound)
        {
            if let Err(e) = crate::auth::read_token_file(&file.value) {
                errors.push(file.diagnostic(e.to_string(), None));
            }
        }
        if let Some(tls) = &self.collector.tls
            && let Err(e) = crate::tls::server_config(tls)
        {
            errors.push(e.diagnostic(tls));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }
}

struct Validator<'a> {
    text: &'a str,
    origin: &'a str,
    errors: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn error_at(&mut self, offset: usize, message: impl Into<String>, hint: Option<String>) {
        let (line, col) = line_col(self.text, offset);
        self.errors.push(Diagnostic {
            file: self.origin.to_string(),
            line,
            col,
            message: message.into(),
            hint,
        });
    }

    fn error<T>(&mut self, at: &Spanned<T>, message: impl Into<String>, hint: Option<String>) {
        self.error_at(at.span().start, message, hint);
    }

    fn locate<T>(&self, at: &Spanned<String>, value: T) -> Located<T> {
        self.locate_span(at.span().start, value)
    }

    fn locate_span<T>(&self, offset: usize, value: T) -> Located<T> {
        let (line, col) = line_col(self.text, offset);
        Located {
            value,
            file: self.origin.to_string(),
            line,
            col,
        }
    }

    fn parse(&mut self) -> Option<Config> {
        let mut unknown = Vec::new();
        let raw: RawConfig = match toml::de::Deserializer::parse(self.text)
            .and_then(|de| serde_ignored::deserialize(de, |path| unknown.push(path.to_string())))
        {
            Ok(raw) => raw,
            Err(e) => {
                let offset = e.span().map(|s| s.start).unwrap_or(0);
                self.error_at(offset, e.message().trim().to_string(), None);
                return None;
            }
        };
        for path in unknown {
            self.unknown_key(&path);
        }
        let collector = self.collector(&raw.collector);
        let auth = self.auth(&raw.auth);
        if let (Some(certs), Some(c)) = (&raw.auth.agent_certs, &collector)
            && c.tls
                .as_ref()
                .and_then(|t| t.client_ca_file.as_ref())
                .is_none()
        {
            self.error(
                certs,
                "`agent_certs` binds client certificates, but agents present none",
                Some("set [collector.tls] client_ca_file, the CA that signs the agents' certificates".into()),
            );
        }
        let syslog = raw.output.syslog.as_ref().and_then(|s| self.syslog(s));
        let rate_limit = self.rate_limit(&raw.rate_limit);
        let log = self.log(&raw.log);
        let http = self.http(&raw.http);
        if !self.errors.is_empty() {
            return None;
        }
        Some(Config {
            collector: collector?,
            auth,
            syslog,
            rate_limit: rate_limit?,
            log: log?,
            http: http?,
        })
    }

    /// Reports a key the schema does not know, at its position in the file.
    fn unknown_key(&mut self, path: &str) {
        // `Spanned` wrappers show up in the path as a private field name.
        let segments: Vec<&str> = path
            .split('.')
            .filter(|s| !s.starts_with("$__serde_spanned"))
            .collect();
        let key = segments.last().copied().unwrap_or(path);
        let table = segments[..segments.len().saturating_sub(1)].join(".");
        let known = KNOWN_KEYS
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, keys)| *keys)
            .unwrap_or(&[]);
        let offset = key_offset(self.text, &segments).unwrap_or(0);
        let place = if table.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in [{table}]")
        };
        let hint = match closest(key, known) {
            Some(best) => format!("did you mean `{best}`? valid keys: {}", known.join(", ")),
            None => format!("valid keys: {}", known.join(", ")),
        };
        self.error_at(offset, format!("unknown key `{key}` {place}"), Some(hint));
    }

    fn duration(
        &mut self,
        value: &Spanned<String>,
        key: &str,
        range: (Duration, Duration),
    ) -> Option<Duration> {
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) if d < range.0 || d > range.1 => {
                self.error(
                    value,
                    format!("`{key}` {:?} is out of range", value.get_ref()),
                    Some(format!(
                        "use between {} and {}",
                        humantime::format_duration(range.0),
                        humantime::format_duration(range.1)
                    )),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    value,
                    format!("bad duration {:?} for `{key}`: {e}", value.get_ref()),
                    Some("write a duration like \"500ms\", \"30s\", \"10m\", \"400d\"".into()),
                );
                None
            }
        }
    }

    fn size(&mut self, value: &Spanned<RawSize>, key: &str, range: (u64, u64)) -> Option<u64> {
        let parsed = match value.get_ref() {
            RawSize::Bytes(n) => u64::try_from(*n).map_err(|_| "a size cannot be negative".into()),
            RawSize::Text(s) => parse_size(s),
        };
        match parsed {
            Ok(n) if n < range.0 || n > range.1 => {
                self.error(
                    value,
                    format!("`{key}` of {n} bytes is out of range"),
                    Some(format!(
                        "use between {} and {}",
                        format_size(range.0),
                        format_size(range.1)
                    )),
                );
                None
            }
            Ok(n) => Some(n),
            Err(e) => {
                self.error(
                    value,
                    format!("bad size for `{key}`: {e}"),
                    Some("write a size like \"64KiB\", \"1MiB\" or a number of bytes".into()),
                );
                None
            }
        }
    }

    fn address(
        &mut self,
        value: &Option<Spanned<String>>,
        key: &str,
        default: &str,
    ) -> Option<SocketAddr> {
        let Some(value) = value else {
            return Some(default.parse().expect("valid default address"));
        };
        match value.get_ref().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    value,
                    format!("`{key}` {:?} is not an IP:PORT address", value.get_ref()),
                    Some(format!(
                        "write an address and port such as \"{default}\", \"0.0.0.0:{port}\" or \"[::]:{port}\"",
                        port = default.rsplit(':').next().unwrap_or("0")
                    )),
                );
                None
            }
        }
    }

    fn path(&mut self, value: &Spanned<String>, key: &str) -> Option<Located<PathBuf>> {
        if value.get_ref().trim().is_empty() {
            self.error(
                value,
                format!("`{key}` is empty"),
                Some("name a file".into()),
            );
            return None;
        }
        Some(self.locate(value, PathBuf::from(value.get_ref())))
    }

    fn collector(&mut self, raw: &RawCollector) -> Option<CollectorSettings> {
        let agents_listen =
            self.address(&raw.agents_listen, "agents_listen", DEFAULT_AGENTS_LISTEN);
        let http_listen = self.address(&raw.http_listen, "http_listen", DEFAULT_HTTP_LISTEN);
        if let (Some(a), Some(h), Some(at)) = (agents_listen, http_listen, &raw.http_listen)
            && a == h
        {
            self.error(
                at,
                format!("`http_listen` and `agents_listen` are both {a}"),
                Some("give the HTTP API and the agents different ports".into()),
            );
        }
        let data_dir = match &raw.data_dir {
            Some(d) if d.get_ref().trim().is_empty() => {
                self.error(
                    d,
                    "`data_dir` is empty",
                    Some(format!("remove it for the default {DEFAULT_DATA_DIR:?}")),
                );
                None
            }
            Some(d) => Some(PathBuf::from(d.get_ref())),
            None => Some(PathBuf::from(DEFAULT_DATA_DIR)),
        };
        let heartbeat_timeout = match &raw.heartbeat_timeout {
            Some(v) => self.duration(
                v,
                "heartbeat_timeout",
                (Duration::from_millis(100), Duration::from_secs(86_400)),
            ),
            None => Some(DEFAULT_HEARTBEAT_TIMEOUT),
        };
        let retain = match &raw.retain {
            Some(v) => self.duration(
                v,
                "retain",
                (
                    Duration::from_secs(3600),
                    Duration::from_secs(100 * 365 * 86_400),
                ),
            ),
            None => Some(DEFAULT_RETAIN),
        };
        let max_line = match &raw.max_line {
            Some(v) => self
                .size(v, "max_line", (1024, 1 << 30))
                .map(|n| n as usize),
            None => Some(DEFAULT_MAX_LINE),
        };
        let max_connections = match &raw.max_connections {
            Some(v) if *v.get_ref() < 1 || *v.get_ref() > 1_000_000 => {
                self.error(
                    v,
                    format!("`max_connections` {} is out of range", v.get_ref()),
                    Some("allow between 1 and 1000000 agent connections".into()),
                );
                None
            }
            Some(v) => Some(*v.get_ref() as usize),
            None => Some(DEFAULT_MAX_CONNECTIONS),
        };
        let hello_timeout = match &raw.hello_timeout {
            Some(v) => self.duration(
                v,
                "hello_timeout",
                (Duration::from_millis(100), Duration::from_secs(300)),
            ),
            None => Some(DEFAULT_HELLO_TIMEOUT),
        };
        let max_pending = match &raw.max_pending {
            Some(v) if *v.get_ref() < 1 || *v.get_ref() > 1_000_000 => {
                self.error(
                    v,
                    format!("`max_pending` {} is out of range", v.get_ref()),
                    Some("allow between 1 and 1000000 connections waiting to say hello".into()),
                );
                None
            }
            Some(v) => Some(*v.get_ref() as usize),
            None => Some(DEFAULT_MAX_PENDING),
        };
        let tls = match &raw.tls {
            Some(t) => self.tls(t).map(Some),
            None => Some(None),
        };
        Some(CollectorSettings {
            agents_listen: agents_listen?,
            http_listen: http_listen?,
            data_dir: data_dir?,
            heartbeat_timeout: heartbeat_timeout?,
            retain: retain?,
            max_line: max_line?,
            max_connections: max_connections?,
            hello_timeout: hello_timeout?,
            max_pending: max_pending?,
            tls: tls?,
        })
    }

    fn tls(&mut self, raw: &Spanned<RawTls>) -> Option<TlsSettings> {
        let t = raw.get_ref();
        let mut required = |v: &Option<Spanned<String>>, key: &str| match v {
            Some(v) => self.path(v, key),
            None => {
                self.error(
                    raw,
                    format!("[collector.tls] has no `{key}`"),
                    Some("TLS needs both cert_file and key_file (PEM); remove [collector.tls] for plain TCP".into()),
                );
                None
            }
        };
        let cert_file = required(&t.cert_file, "cert_file");
        let key_file = required(&t.key_file, "key_file");
        let client_ca_file = match &t.client_ca_file {
            Some(v) => self.path(v, "client_ca_file").map(Some),
            None => Some(None),
        };
        Some(TlsSettings {
            cert_file: cert_file?,
            key_file: key_file?,
            client_ca_file: client_ca_file?,
        })
    }

    fn syslog(&mut self, raw: &Spanned<RawSyslog>) -> Option<SyslogSettings> {
        raw.get_ref()
            // No default HOSTNAME: each message carries its agent's name.
            .settings("", &mut |at, message, hint| {
                self.error_at(at, message, hint)
            })
    }

    fn rate_limit(&mut self, raw: &RawRateLimit) -> Option<RateLimitSettings> {
        let per_second = match &raw.per_second {
            // Below one request in 1000 s the wait a 429 names would run
            // past what a Retry-After can say.
            Some(v) if !(0.001..=1_000_000.0).contains(v.get_ref()) => {
                self.error(
                    v,
                    format!("`per_second` {} is out of range", v.get_ref()),
                    Some("allow between 0.001 and 1000000 requests per second per API token; 10 is usual".into()),
                );
                None
            }
            Some(v) => Some(*v.get_ref()),
            None => Some(10.0),
        };
        let burst = match &raw.burst {
            Some(v) if *v.get_ref() < 1 || *v.get_ref() > 1_000_000 => {
                self.error(
                    v,
                    format!("`burst` {} is out of range", v.get_ref()),
                    Some("allow between 1 and 1000000 requests at once".into()),
                );
                None
            }
            Some(v) => Some(*v.get_ref() as u32),
            None => Some(50),
        };
        Some(RateLimitSettings {
            per_second: per_second?,
            burst: burst?,
        })
    }

    fn http(&mut self, raw: &RawHttp) -> Option<HttpSettings> {
        let header_timeout = match &raw.header_timeout {
            Some(v) => self.duration(
                v,
                "header_timeout",
                (Duration::from_millis(100), Duration::from_secs(600)),
            ),
            None => Some(DEFAULT_HTTP.header_timeout),
        };
        let idle_timeout = match &raw.idle_timeout {
            Some(v) => self.duration(
                v,
                "idle_timeout",
                (Duration::from_millis(100), Duration::from_secs(3600)),
            ),
            None => Some(DEFAULT_HTTP.idle_timeout),
        };
        let max_connections = match &raw.max_connections {
            Some(v) if *v.get_ref() < 1 || *v.get_ref() > 1_000_000 => {
                self.error(
                    v,
                    format!("`max_connections` {} is out of range", v.get_ref()),
                    Some("allow between 1 and 1000000 HTTP connections; 1024 is usual".into()),
                );
                None
            }
            Some(v) => Some(*v.get_ref() as usize),
            None => Some(DEFAULT_HTTP.max_connections),
        };
        Some(HttpSettings {
            header_timeout: header_timeout?,
            idle_timeout: idle_timeout?,
            max_connections: max_connections?,
        })
    }

    fn log(&mut self, raw: &RawLog) -> Option<LogSettings> {
        let file = match &raw.file {
            Some(f) if f.get_ref().is_empty() => None,
            Some(f) => Some(PathBuf::from(f.get_ref())),
            None => Some(PathBuf::from(DEFAULT_LOG_FILE)),
        };
        let max_size = match &raw.max_size {
            Some(v) => self.size(v, "max_size", (64 * 1024, 1 << 40)),
            None => Some(10 << 20),
        };
        let keep = match &raw.keep {
            Some(v) if *v.get_ref() < 0 || *v.get_ref() > 1000 => {
                self.error(
                    v,
                    format!("`keep` {} is out of range", v.get_ref()),
                    Some("keep between 0 and 1000 rotated files".into()),
                );
                None
            }
            Some(v) => Some(*v.get_ref() as usize),
            None => Some(5),
        };
        Some(LogSettings {
            file,
            max_size: max_size?,
            keep: keep?,
        })
    }
}

/// Parses `"1MiB"`, `"64 KiB"`, `"10MB"`, `"4096"`: binary units (KiB, MiB,
/// GiB, TiB), decimal ones (KB, MB, GB, TB) and bytes (B or none).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = (&s[..split], s[split..].trim());
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} does not start with a number"))?;
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "TiB" | "T" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => return Err(format!("unknown unit `{other}` in {s:?}")),
    };
    Ok((number * scale as f64).round() as u64)
}

fn format_size(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, scale) in UNITS {
        if n >= scale && n.is_multiple_of(scale) {
            return format!("{}{unit}", n / scale);
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn errors(text: &str) -> Vec<String> {
        match Config::parse(text, "c.toml") {
            Ok(_) => Vec::new(),
            Err(e) => e.diagnostics().iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn empty_config_is_the_embedded_default() {
        let c = Config::embedded();
        assert_eq!(c.collector.agents_listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.collector.http_listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.collector.data_dir, PathBuf::from("./hopwatch-data"));
        assert_eq!(c.collector.heartbeat_timeout, Duration::from_secs(30));
        assert_eq!(c.collector.read_timeout(), Duration::from_secs(90));
        assert_eq!(c.collector.retain, Duration::from_secs(400 * 86_400));
        assert_eq!(c.collector.max_line, 1 << 20);
        assert!(c.collector.tls.is_none());
        assert!(c.auth.agent_tokens.is_empty() && c.auth.api_tokens.is_empty());
        assert!(c.syslog.is_none());
        assert_eq!(
            c.rate_limit,
            RateLimitSettings {
                per_second: 10.0,
                burst: 50
            }
        );
        assert_eq!(c.log.max_size, 10 << 20);
        assert_eq!(c.log.keep, 5);
        assert_eq!(c.http, DEFAULT_HTTP);
    }

    #[test]
    fn reads_every_key() {
        let c = Config::parse(
            r#"
[collector]
agents_listen = "0.0.0.0:7100"
http_listen = "[::1]:8100"
data_dir = "/var/lib/hopwatch-collector"
heartbeat_timeout = "45s"
retain = "30d"
max_line = "64KiB"
max_connections = 50
hello_timeout = "2s"
max_pending = 64
[collector.tls]
cert_file = "/etc/hopwatch/tls/cert.pem"
key_file = "/etc/hopwatch/tls/key.pem"
client_ca_file = "/etc/hopwatch/tls/ca.pem"
[auth]
agent_tokens = ["agent-secret-0001", { token_file = "/etc/hopwatch/leaf1.token", agents = ["leaf1", "leaf1-*"] }]
api_tokens = ["api-secret-000001", "api-secret-000002"]
api_tokens_file = "/etc/hopwatch/api-tokens"
[[auth.agent_certs]]
names = ["*.leaf.example.net"]
agents = ["leaf*"]
[output.syslog]
address = "udp://10.0.0.5:514"
format = "json"
events = ["alert"]
hostname = "collector1"
[rate_limit]
per_second = 2.5
burst = 5
[log]
file = ""
[http]
header_timeout = "2s"
idle_timeout = "30s"
max_connections = 64
"#,
            "c.toml",
        )
        .unwrap();
        assert_eq!(
            c.http,
            HttpSettings {
                header_timeout: Duration::from_secs(2),
                idle_timeout: Duration::from_secs(30),
                max_connections: 64
            }
        );
        assert_eq!(c.collector.agents_listen.to_string(), "0.0.0.0:7100");
        assert_eq!(c.collector.http_listen.to_string(), "[::1]:8100");
        assert_eq!(c.collector.max_line, 65_536);
        assert_eq!(c.collector.max_connections, 50);
        assert_eq!(c.collector.hello_timeout, Duration::from_secs(2));
        assert_eq!(c.collector.max_pending, 64);
        let bound = &c.auth.bound_tokens[0];
        assert_eq!(
            bound.token_file.value,
            PathBuf::from("/etc/hopwatch/leaf1.token")
        );
        assert!(bound.agents.matches("leaf1-b") && !bound.agents.matches("leaf2"));
        let cert = &c.auth.agent_certs[0];
        assert!(cert.names.matches("sw1.leaf.example.net") && cert.agents.matches("leaf7"));
        let tls = c.collector.tls.unwrap();
        assert_eq!(
            tls.key_file.value,
            PathBuf::from("/etc/hopwatch/tls/key.pem")
        );
        assert_eq!((tls.key_file.line, tls.key_file.col), (14, 12));
        assert_eq!(c.auth.api_tokens.len(), 2);
        assert_eq!(
            c.auth.agent_tokens,
            vec![Secret("agent-secret-0001".into())]
        );
        let syslog = c.syslog.unwrap();
        assert_eq!(syslog.format, hopwatch_wire::syslog::Format::Json);
        assert_eq!(syslog.types, vec!["alert".to_string()]);
        assert_eq!(syslog.hostname, "collector1");
        assert_eq!(c.rate_limit.burst, 5);
        assert_eq!(c.log.file, None);
    }

    #[test]
    fn reports_every_error_at_once_with_places_and_hints() {
        let errs = errors(
            r#"
[collector]
agents_listen = "localhost:7000"
heartbeat_timout = "30s"
retain = "soon"
max_line = "1 parsec"
[collector.tls]
cert_file = "cert.pem"
[auth]
api_tokens = ["has space, and is long"]
[output.syslog]
address = "10.0.0.5"
[rate_limit]
per_second = 0
burst = 0
"#,
        );
        let joined = errs.join("\n");
        assert_eq!(errs.len(), 9, "{joined}");
        assert!(
            joined.contains(
                "c.toml:3:17: `agents_listen` \"localhost:7000\" is not an IP:PORT address"
            ),
            "{joined}"
        );
        assert!(joined.contains("c.toml:4:1: unknown key `heartbeat_timout` in [collector]\n  hint: did you mean `heartbeat_timeout`?"), "{joined}");
        assert!(
            joined.contains("c.toml:5:10: bad duration \"soon\" for `retain`"),
            "{joined}"
        );
        assert!(
            joined.contains("c.toml:6:12: bad size for `max_line`: unknown unit `parsec`"),
            "{joined}"
        );
        assert!(
            joined.contains("c.toml:7:1: [collector.tls] has no `key_file`"),
            "{joined}"
        );
        assert!(
            joined.contains("c.toml:10:15: a token in `api_tokens` is empty or holds whitespace"),
            "{joined}"
        );
        assert!(
            !joined.contains("has space, and"),
            "tokens are never echoed: {joined}"
        );
        assert!(
            joined.contains("c.toml:12:11: syslog address `10.0.0.5` has no scheme"),
            "{joined}"
        );
        assert!(
            joined.contains("c.toml:14:14: `per_second` 0 is out of range"),
            "{joined}"
        );
        assert!(
            joined.contains("c.toml:15:9: `burst` 0 is out of range"),
            "{joined}"
        );
    }

    #[test]
    fn same_port_for_agents_and_http_is_refused_naming_both() {
        let errs = errors(
            "[collector]\nagents_listen = \"127.0.0.1:9000\"\nhttp_listen = \"127.0.0.1:9000\"\n",
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("`http_listen` and `agents_listen` are both 127.0.0.1:9000"),
            "{errs:?}"
        );
    }

    #[test]
    fn http_limits_are_bounded() {
        let errs = errors(
            "[http]\nheader_timeout = \"0s\"\nidle_timeout = \"2h\"\nmax_connections = 0\nheader_timout = \"1s\"\n",
        );
        let joined = errs.join("\n");
        assert_eq!(errs.len(), 4, "{joined}");
        assert!(
            joined.contains("c.toml:2:18: `header_timeout` \"0s\" is out of range"),
            "{joined}"
        );
        assert!(
            joined.contains("c.toml:3:16: `idle_timeout` \"2h\" is out of range"),
            "{joined}"
        );
        assert!(
            joined.contains("c.toml:4:19: `max_connections` 0 is out of range"),
            "{joined}"
        );
        assert!(
            joined.contains("unknown key `header_timout` in [http]"),
            "{joined}"
        );
    }

    #[test]
    fn rates_too_small_to_wait_for_are_refused() {
        for rate in ["1e-300", "0.0009", "-1.0", "nan", "inf"] {
            let errs = errors(&format!("[rate_limit]\nper_second = {rate}\n"));
            assert_eq!(errs.len(), 1, "{rate}: {errs:?}");
            assert!(errs[0].contains("`per_second`"), "{errs:?}");
        }
        assert!(errors("[rate_limit]\nper_second = 0.001\n").is_empty());
    }

    #[test]
    fn toml_syntax_errors_are_located() {
        let errs = errors("[collector]\nretain = \n");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("c.toml:2:"), "{errs:?}");
    }

    #[test]
    fn unknown_tables_are_reported() {
        let errs = errors("[colector]\nretain = \"1d\"\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("unknown key `colector` at the top level"),
            "{errs:?}"
        );
        assert!(errs[0].contains("did you mean `collector`"), "{errs:?}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("64 KiB"), Ok(65_536));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("1 XB").is_err());
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(1000), "1000 bytes");
    }

    #[test]
    fn secrets_do_not_debug_print() {
        assert_eq!(
            format!("{:?}", Secret("s3cret".into())),
            "Secret(<redacted>)"
        );
    }
}
