//! `agent.toml`: deserialized with spans, validated all at once, so
//! `hopwatch check-config` reports every mistake with `file:line:col` and a
//! hint in one pass. Nothing here touches the environment beyond reading the
//! file; building components from a [`Config`] is the agent's job.

use crate::event::Severity;
use crate::matcher::InterfaceMatcher;
use crate::output::collector::{self, CollectorSettings, Secret, TlsSettings, TokenSource};
use crate::output::syslog::{Format, Protocol, SyslogSettings, SyslogTarget, parse_facility};
use crate::rule::{self, Rule};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Where `hopwatch` looks for its config when `-c` is not given.
pub const DEFAULT_PATH: &str = "/etc/hopwatch/agent.toml";

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub agent: AgentSettings,
    /// Which interfaces produce `link` events.
    pub links: InterfaceMatcher,
    pub rules: Vec<Rule>,
    pub stdout: Option<StdoutSettings>,
    pub syslog: Option<SyslogSettings>,
    pub collector: Option<CollectorSettings>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    pub name: String,
    pub interval: Duration,
    pub heartbeat: Duration,
    pub state_dir: PathBuf,
    pub source: SourceKind,
    pub proc_root: PathBuf,
    pub sys_root: PathBuf,
    pub link_watch: LinkWatch,
    pub trace_backend: TraceBackendKind,
    /// NX-API's local unix socket on NX-OS.
    pub nxapi_socket: PathBuf,
    /// The NX-OS user NX-API runs commands as.
    pub nxapi_user: String,
}

impl AgentSettings {
    /// The counter source `auto` resolves to: `nxapi` where NX-API's socket
    /// exists (the bash shell of an NX-OS switch), else `procfs`.
    pub fn resolved_source(&self) -> SourceKind {
        match self.source {
            SourceKind::Auto if self.nxapi_socket.exists() => SourceKind::Nxapi,
            SourceKind::Auto => SourceKind::Procfs,
            other => other,
        }
    }

    /// The trace backend `auto` resolves to, by the same test.
    pub fn resolved_trace_backend(&self) -> TraceBackendKind {
        match self.trace_backend {
            TraceBackendKind::Auto if self.nxapi_socket.exists() => TraceBackendKind::Nxapi,
            TraceBackendKind::Auto => TraceBackendKind::Kernel,
            other => other,
        }
    }
}

/// Where counters come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// `nxapi` where NX-API's socket exists, else `procfs`.
    Auto,
    /// `/proc/net/dev`: every Linux, and the hardware's counters where the
    /// driver mirrors them (Cumulus, SONiC, switchdev).
    Procfs,
    /// NX-OS hardware counters through NX-API's `show interface`.
    Nxapi,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Auto => "auto",
            SourceKind::Procfs => "procfs",
            SourceKind::Nxapi => "nxapi",
        }
    }
}

/// Who answers flow traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceBackendKind {
    /// `nxapi` where NX-API's socket exists, else `kernel`.
    Auto,
    /// The Linux FIB over rtnetlink.
    Kernel,
    /// The hardware's answer: `show routing hash` through NX-API.
    Nxapi,
}

impl TraceBackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceBackendKind::Auto => "auto",
            TraceBackendKind::Kernel => "kernel",
            TraceBackendKind::Nxapi => "nxapi",
        }
    }
}

/// How link state changes are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkWatch {
    /// `netlink` when `sys_root` is `/sys`, else `poll`.
    Auto,
    /// The kernel pushes every change at once (RTNLGRP_LINK).
    Netlink,
    /// `sys_root` is read at every tick; for fixture roots and containers
    /// whose `/sys` belongs to another network namespace.
    Poll,
    /// The counter source reports each link with its counters (`nxapi`);
    /// chosen by the agent whatever `link_watch` says, never configured.
    Source,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StdoutSettings {
    /// Event types to print; empty means all.
    pub types: Vec<String>,
}

/// One problem in a config file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
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

impl ConfigError {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid(d) => d,
            ConfigError::Read { .. } => &[],
        }
    }
}

// The raw shape of the file. Every value that can be wrong is `Spanned`, so
// validation can point at it; every field is optional so one missing key does
// not hide the others' errors.

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawConfig {
    agent: RawAgent,
    links: RawLinks,
    rule: Vec<Spanned<RawRule>>,
    output: RawOutputs,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAgent {
    name: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    heartbeat: Option<Spanned<String>>,
    state_dir: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    proc_root: Option<Spanned<String>>,
    sys_root: Option<Spanned<String>>,
    link_watch: Option<Spanned<String>>,
    trace_backend: Option<Spanned<String>>,
    nxapi_socket: Option<Spanned<String>>,
    nxapi_user: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawLinks {
    interfaces: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRule {
    name: Option<Spanned<String>>,
    interfaces: Option<Spanned<Vec<Spanned<String>>>>,
    when: Option<Spanned<String>>,
    #[serde(rename = "for")]
    for_: Option<Spanned<String>>,
    clear_when: Option<Spanned<String>>,
    severity: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawOutputs {
    stdout: Option<RawStdout>,
    syslog: Option<Spanned<RawSyslog>>,
    collector: Option<Spanned<RawCollector>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawStdout {
    events: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[output.syslog]` as written; the collector's config reads the same table.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RawSyslog {
    address: Option<Spanned<String>>,
    facility: Option<Spanned<String>>,
    protocol: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    events: Option<Spanned<Vec<Spanned<String>>>>,
    hostname: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawCollector {
    address: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    spool_max: Option<Spanned<RawSize>>,
    ack_timeout: Option<Spanned<String>>,
    backoff_max: Option<Spanned<String>>,
    tls: Option<Spanned<RawTls>>,
}

/// A size written as `"64MiB"` or as a plain number of bytes.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawSize {
    Bytes(i64),
    Text(String),
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawTls {
    ca_file: Option<Spanned<String>>,
    cert_file: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
    server_name: Option<Spanned<String>>,
}

/// The keys each table accepts, for "did you mean" hints on unknown keys.
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    ("", &["agent", "links", "rule", "output"]),
    (
        "agent",
        &[
            "name",
            "interval",
            "heartbeat",
            "state_dir",
            "source",
            "proc_root",
            "sys_root",
            "link_watch",
            "trace_backend",
            "nxapi_socket",
            "nxapi_user",
        ],
    ),
    ("links", &["interfaces"]),
    (
        "rule",
        &[
            "name",
            "interfaces",
            "when",
            "for",
            "clear_when",
            "severity",
        ],
    ),
    ("output", &["stdout", "syslog", "collector"]),
    ("output.stdout", &["events"]),
    (
        "output.syslog",
        &[
            "address", "facility", "protocol", "format", "events", "hostname",
        ],
    ),
    (
        "output.collector",
        &[
            "address",
            "token",
            "token_file",
            "spool_max",
            "ack_timeout",
            "backoff_max",
            "tls",
        ],
    ),
    (
        "output.collector.tls",
        &["ca_file", "cert_file", "key_file", "server_name"],
    ),
];

/// The spool bound when `spool_max` is not set.
pub const DEFAULT_SPOOL_MAX: u64 = 64 << 20;
/// Below this a spool holds too few events to ride out anything.
const MIN_SPOOL_MAX: u64 = 4 << 10;

const EVENT_TYPES: &[&str] = &["alert", "link", "heartbeat", "loss"];

/// The interfaces watched when a rule or `[links]` names none.
pub const DEFAULT_INTERFACES: &[&str] = &["!lo"];

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

    /// The embedded default: every interface but `lo`, the example rule,
    /// events on stdout. What `hopwatch run` uses without a config file.
    pub fn embedded() -> Config {
        Config::parse(EMBEDDED, "<embedded default>").expect("the embedded config is valid")
    }
}

/// The config `hopwatch run` uses when no file is given and none is installed.
pub const EMBEDDED: &str = r#"
[links]
interfaces = ["!lo"]

[[rule]]
name = "tx-errors"
when = "increase(tx_errors[5s]) > 3"
severity = "critical"

[[rule]]
name = "rx-errors"
when = "increase(rx_errors[5s]) > 3"
severity = "critical"

[output.stdout]
"#;

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
        let agent = self.agent(&raw.agent);
        let links = match &raw.links.interfaces {
            Some(list) => self.interfaces(list, "[links] interfaces"),
            None => Some(InterfaceMatcher::new(DEFAULT_INTERFACES).expect("valid default")),
        };
        let rules = self.rules(&raw.rule, agent.as_ref().map(|a| a.interval));
        let stdout = raw.output.stdout.as_ref().map(|s| StdoutSettings {
            types: self.event_types(s.events.as_ref()),
        });
        let syslog = raw
            .output
            .syslog
            .as_ref()
            .and_then(|s| self.syslog(s, agent.as_ref().map(|a| a.name.as_str())));
        let collector = raw
            .output
            .collector
            .as_ref()
            .and_then(|c| self.collector(c));
        if !self.errors.is_empty() {
            return None;
        }
        Some(Config {
            agent: agent?,
            links: links?,
            rules,
            stdout,
            syslog,
            collector,
        })
    }

    /// Reports a key the schema does not know, at its position in the file.
    fn unknown_key(&mut self, path: &str) {
        // `Spanned` wrappers show up in the path as a private field name,
        // and a spanned table as a `?` segment.
        let segments: Vec<&str> = path
            .split('.')
            .filter(|s| !s.starts_with("$__serde_spanned") && *s != "?")
            .collect();
        let key = segments.last().copied().unwrap_or(path);
        // Table names without array indices, for the hint lookup.
        let table: Vec<&str> = segments[..segments.len() - 1]
            .iter()
            .copied()
            .filter(|s| s.parse::<usize>().is_err())
            .collect();
        let table = table.join(".");
        let known = KNOWN_KEYS
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, keys)| *keys)
            .unwrap_or(&[]);
        let offset = key_offset(self.text, &segments).unwrap_or(0);
        let place = if table.is_empty() {
            "at the top level".to_string()
        } else if table == "rule" {
            "in [[rule]]".to_string()
        } else {
            format!("in [{table}]")
        };
        let hint = match closest(key, known) {
            Some(best) => format!("did you mean `{best}`? valid keys: {}", known.join(", ")),
            None => format!("valid keys: {}", known.join(", ")),
        };
        self.error_at(offset, format!("unknown key `{key}` {place}"), Some(hint));
    }

    fn duration(&mut self, value: &Spanned<String>, key: &str) -> Option<Duration> {
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    value,
                    format!("bad duration {:?} for `{key}`: {e}", value.get_ref()),
                    Some("write a duration like \"500ms\", \"5s\", \"10m\"".into()),
                );
                None
            }
        }
    }

    fn agent(&mut self, raw: &RawAgent) -> Option<AgentSettings> {
        let interval = match &raw.interval {
            Some(v) => {
                let d = self.duration(v, "interval")?;
                if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
                    self.error(
                        v,
                        format!("interval {:?} is out of range", v.get_ref()),
                        Some("sample between every 100ms and every 1h; 1s is usual".into()),
                    );
                    return None;
                }
                d
            }
            None => Duration::from_secs(1),
        };
        let heartbeat = match &raw.heartbeat {
            Some(v) => {
                let d = self.duration(v, "heartbeat")?;
                if d < interval {
                    self.error(
                        v,
                        format!("heartbeat {:?} is shorter than the interval", v.get_ref()),
                        Some("a heartbeat is sent at most once a tick; use 10s or more".into()),
                    );
                    return None;
                }
                // The collector takes an agent silent for a day at most for
                // gone; a longer heartbeat would keep it stale.
                if d > Duration::from_secs(3600) {
                    self.error(
                        v,
                        format!("heartbeat {:?} is longer than 1h", v.get_ref()),
                        Some("the collector counts an agent silent past its heartbeat_timeout as stale; use 10s".into()),
                    );
                    return None;
                }
                d
            }
            None => Duration::from_secs(10),
        };
        let source = match raw.source.as_ref() {
            None => SourceKind::Auto,
            Some(v) => match v.get_ref().as_str() {
                "auto" => SourceKind::Auto,
                "procfs" => SourceKind::Procfs,
                "nxapi" => SourceKind::Nxapi,
                other => {
                    self.error(
                        v,
                        format!("unknown counter source `{other}`"),
                        Some("use \"auto\", \"procfs\" or \"nxapi\"".into()),
                    );
                    SourceKind::Auto
                }
            },
        };
        let trace_backend = match raw.trace_backend.as_ref() {
            None => TraceBackendKind::Auto,
            Some(v) => match v.get_ref().as_str() {
                "auto" => TraceBackendKind::Auto,
                "kernel" => TraceBackendKind::Kernel,
                "nxapi" => TraceBackendKind::Nxapi,
                other => {
                    self.error(
                        v,
                        format!("unknown trace backend `{other}`"),
                        Some("use \"auto\", \"kernel\" or \"nxapi\"".into()),
                    );
                    TraceBackendKind::Auto
                }
            },
        };
        let link_watch = match raw.link_watch.as_ref() {
            None => LinkWatch::Auto,
            Some(v) => match v.get_ref().as_str() {
                "auto" => LinkWatch::Auto,
                "netlink" => LinkWatch::Netlink,
                "poll" => LinkWatch::Poll,
                other => {
                    self.error(
                        v,
                        format!("unknown link_watch `{other}`"),
                        Some("use \"auto\", \"netlink\" or \"poll\"".into()),
                    );
                    LinkWatch::Auto
                }
            },
        };
        let mut path = |v: &Option<Spanned<String>>, key: &str, default: &str| -> PathBuf {
            match v {
                Some(p) if p.get_ref().is_empty() => {
                    self.error(
                        p,
                        format!("`{key}` is empty"),
                        Some(format!("the default is {default:?}")),
                    );
                    PathBuf::from(default)
                }
                Some(p) => PathBuf::from(p.get_ref()),
                None => PathBuf::from(default),
            }
        };
        let state_dir = path(&raw.state_dir, "state_dir", "/var/lib/hopwatch");
        let proc_root = path(&raw.proc_root, "proc_root", "/proc");
        let sys_root = path(&raw.sys_root, "sys_root", "/sys");
        let nxapi_socket = path(
            &raw.nxapi_socket,
            "nxapi_socket",
            crate::nxapi::DEFAULT_SOCKET,
        );
        let nxapi_user = match &raw.nxapi_user {
            Some(u)
                if u.get_ref().trim().is_empty()
                    || u.get_ref().contains([':', ';', '\r', '\n']) =>
            {
                self.error(
                    u,
                    format!("`nxapi_user` {:?} is not an NX-OS user name", u.get_ref()),
                    Some(format!(
                        "name a local NX-OS user; the default is {:?}",
                        crate::nxapi::DEFAULT_USER
                    )),
                );
                crate::nxapi::DEFAULT_USER.to_string()
            }
            Some(u) => u.get_ref().clone(),
            None => crate::nxapi::DEFAULT_USER.to_string(),
        };
        let name = match &raw.name {
            Some(n) => {
                // The collector's rule: a name it would refuse is a config
                // error here, not a refusal at every reconnect.
                if let Err(e) = crate::wire::check_agent_name(n.get_ref()) {
                    let hint = match e.problem {
                        crate::wire::NameProblem::Empty => "remove it to use the hostname",
                        crate::wire::NameProblem::TooLong(_) => "shorten it",
                        crate::wire::NameProblem::Control { .. } => "use printable characters only",
                    };
                    self.error(n, format!("`name` {}", e.problem), Some(hint.into()));
                }
                n.get_ref().clone()
            }
            None => hostname(),
        };
        Some(AgentSettings {
            name,
            interval,
            heartbeat,
            state_dir,
            source,
            proc_root,
            sys_root,
            link_watch,
            trace_backend,
            nxapi_socket,
            nxapi_user,
        })
    }

    fn interfaces(
        &mut self,
        list: &Spanned<Vec<Spanned<String>>>,
        what: &str,
    ) -> Option<InterfaceMatcher> {
        if list.get_ref().is_empty() {
            self.error(
                list,
                format!("{what} is empty, so it matches no interface"),
                Some("list globs such as [\"eth*\", \"swp*\", \"!lo\"], or remove the key to watch every interface but lo".into()),
            );
            return None;
        }
        let patterns: Vec<&str> = list
            .get_ref()
            .iter()
            .map(|p| p.get_ref().as_str())
            .collect();
        match InterfaceMatcher::new(&patterns) {
            Ok(m) => Some(m),
            Err(e) => {
                let at = &list.get_ref()[e.index];
                self.error(
                    at,
                    e.to_string(),
                    Some("globs use * ? [..]; a leading ! excludes".into()),
                );
                None
            }
        }
    }

    fn expression(&mut self, value: &Spanned<String>, key: &str) -> Option<rule::Condition> {
        match rule::parse(value.get_ref()) {
            Ok(c) => Some(c),
            Err(e) => {
                // +1 skips the opening quote of a basic string.
                let offset = value.span().start + 1 + e.offset;
                self.error_at(
                    offset,
                    format!("bad expression in `{key}`: {}", e.message),
                    e.hint.clone(),
                );
                None
            }
        }
    }

    fn rules(&mut self, raw: &[Spanned<RawRule>], interval: Option<Duration>) -> Vec<Rule> {
        let mut rules = Vec::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        for spanned in raw {
            let r = spanned.get_ref();
            let table_at = spanned.span().start;
            let name = match &r.name {
                Some(n) if n.get_ref().trim().is_empty() => {
                    self.error(
                        n,
                        "rule `name` is empty",
                        Some("name the rule, e.g. \"tx-errors\"".into()),
                    );
                    None
                }
                Some(n) => {
                    let (line, _) = line_col(self.text, n.span().start);
                    if let Some(first) = names.insert(n.get_ref().clone(), line) {
                        self.error(
                            n,
                            format!("duplicate rule name `{}`", n.get_ref()),
                            Some(format!("the first rule with this name is at line {first}; rule names must be unique")),
                        );
                    }
                    Some(n.get_ref().clone())
                }
                None => {
                    self.error_at(
                        table_at,
                        "[[rule]] has no `name`",
                        Some("add name = \"...\"".into()),
                    );
                    None
                }
            };
            let when = match &r.when {
                Some(w) => self.expression(w, "when"),
                None => {
                    self.error_at(
                        table_at,
                        "[[rule]] has no `when`",
                        Some("add when = \"increase(tx_errors[5s]) > 3\"".into()),
                    );
                    None
                }
            };
            // `Some(None)`: no clear_when; `None`: a broken one.
            let clear_when = match &r.clear_when {
                Some(c) => self.expression(c, "clear_when").map(Some),
                None => Some(None),
            };
            if let Some(interval) = interval {
                if let (Some(cond), Some(raw)) = (&when, &r.when) {
                    self.window(cond, raw, interval);
                }
                if let (Some(Some(cond)), Some(raw)) = (&clear_when, &r.clear_when) {
                    self.window(cond, raw, interval);
                }
            }
            let for_ = match &r.for_ {
                Some(f) => self.duration(f, "for").and_then(|d| {
                    if d > MAX_FOR {
                        self.error(
                            f,
                            format!("`for` {:?} is longer than 7d", f.get_ref()),
                            Some("a condition must hold at most 7d before firing; use a window's length or a few minutes".into()),
                        );
                        return None;
                    }
                    Some(d)
                }),
                None => Some(Duration::ZERO),
            };
            let severity = match &r.severity {
                None => Some(Severity::Warning),
                Some(s) => match s.get_ref().as_str() {
                    "info" => Some(Severity::Info),
                    "warning" => Some(Severity::Warning),
                    "critical" => Some(Severity::Critical),
                    other => {
                        self.error(
                            s,
                            format!("unknown severity `{other}`"),
                            Some("use \"info\", \"warning\" or \"critical\"".into()),
                        );
                        None
                    }
                },
            };
            let interfaces = match &r.interfaces {
                Some(list) => self.interfaces(list, "rule `interfaces`"),
                None => Some(InterfaceMatcher::new(DEFAULT_INTERFACES).expect("valid default")),
            };
            if let (
                Some(name),
                Some(when),
                Some(clear_when),
                Some(for_),
                Some(severity),
                Some(interfaces),
            ) = (name, when, clear_when, for_, severity, interfaces)
            {
                rules.push(Rule {
                    name,
                    interfaces,
                    when,
                    for_,
                    clear_when,
                    severity,
                });
            }
        }
        rules
    }

    /// A window shorter than the interval would hold at most one sample, and
    /// one longer than a day would hold an unreasonable history.
    fn window(&mut self, cond: &rule::Condition, raw: &Spanned<String>, interval: Duration) {
        if cond.window.is_zero() {
            return;
        }
        if cond.window < interval {
            self.error(
                raw,
                format!(
                    "window {} is shorter than the sampling interval {}",
                    humantime::format_duration(cond.window),
                    humantime::format_duration(interval)
                ),
                Some("use a window of at least one interval, usually several".into()),
            );
        } else if cond.window > Duration::from_secs(86_400) {
            self.error(
                raw,
                "window is longer than 24h",
                Some("hopwatch keeps each window in memory; use 24h or less".into()),
            );
        }
    }

    fn event_types(&mut self, list: Option<&Spanned<Vec<Spanned<String>>>>) -> Vec<String> {
        event_types(list, &mut |at, message, hint| {
            self.error_at(at, message, hint)
        })
    }

    fn syslog(&mut self, raw: &Spanned<RawSyslog>, agent: Option<&str>) -> Option<SyslogSettings> {
        let hostname = agent.map(str::to_string).unwrap_or_else(hostname);
        raw.get_ref().settings(&hostname, &mut |at, message, hint| {
            self.error_at(at, message, hint)
        })
    }
}

impl Validator<'_> {
    fn collector(&mut self, raw: &Spanned<RawCollector>) -> Option<CollectorSettings> {
        let c = raw.get_ref();
        let table_at = raw.span().start;
        let address = match &c.address {
            Some(a) => match collector::parse_address(a.get_ref()) {
                Ok(hp) => Some((a.get_ref().clone(), hp)),
                Err(e) => {
                    self.error(
                        a,
                        e,
                        Some("write address = \"collector.example.net:7000\"".into()),
                    );
                    None
                }
            },
            None => {
                self.error_at(
                    table_at,
                    "[output.collector] has no `address`",
                    Some("add address = \"collector.example.net:7000\"".into()),
                );
                None
            }
        };
        let token = match (&c.token, &c.token_file) {
            (Some(_), Some(file)) => {
                self.error(
                    file,
                    "`token` and `token_file` are both set in [output.collector]",
                    Some("keep one: token_file keeps the secret out of this file".into()),
                );
                None
            }
            (Some(t), None) if t.get_ref().trim().is_empty() => {
                self.error(
                    t,
                    "`token` is empty",
                    Some("set the agent token the collector expects".into()),
                );
                None
            }
            (Some(t), None) if t.get_ref().trim().len() < collector::MIN_TOKEN_BYTES => {
                self.error(
                    t,
                    format!(
                        "`token` is shorter than {} bytes",
                        collector::MIN_TOKEN_BYTES
                    ),
                    Some("use the longer token the collector gave this agent".into()),
                );
                None
            }
            (Some(t), None) => Some(TokenSource::Inline(Secret::new(t.get_ref().trim()))),
            (None, Some(f)) if f.get_ref().is_empty() => {
                self.error(
                    f,
                    "`token_file` is empty",
                    Some("name the file that holds the token, e.g. \"/etc/hopwatch/token\"".into()),
                );
                None
            }
            (None, Some(f)) => Some(TokenSource::File(PathBuf::from(f.get_ref()))),
            (None, None) => {
                self.error_at(
                    table_at,
                    "[output.collector] needs `token` or `token_file`",
                    Some(
                        "add token_file = \"/etc/hopwatch/token\" (a file only root can read)"
                            .into(),
                    ),
                );
                None
            }
        };
        let spool_max = match &c.spool_max {
            None => Some(DEFAULT_SPOOL_MAX),
            Some(v) => {
                let parsed = match v.get_ref() {
                    RawSize::Bytes(n) => {
                        u64::try_from(*n).map_err(|_| format!("spool_max {n} is negative"))
                    }
                    RawSize::Text(t) => {
                        parse_size(t).map_err(|e| format!("bad size {t:?} for `spool_max`: {e}"))
                    }
                };
                match parsed {
                    Ok(n) if n < MIN_SPOOL_MAX => {
                        self.error(
                            v,
                            format!("spool_max {n} bytes is too small"),
                            Some("use at least \"4KiB\"; the default is \"64MiB\"".into()),
                        );
                        None
                    }
                    Ok(n) => Some(n),
                    Err(e) => {
                        self.error(
                            v,
                            e,
                            Some("write a size like \"64MiB\", \"512KiB\", \"1GB\"".into()),
                        );
                        None
                    }
                }
            }
        };
        let ack_timeout = self.bounded_duration(
            c.ack_timeout.as_ref(),
            "ack_timeout",
            Duration::from_secs(30),
            (Duration::from_secs(1), Duration::from_secs(3600)),
            "wait between 1s and 1h for an acknowledgement; 30s is usual",
        );
        let backoff_max = self.bounded_duration(
            c.backoff_max.as_ref(),
            "backoff_max",
            Duration::from_secs(5),
            (Duration::from_millis(200), Duration::from_secs(3600)),
            "back off between 200ms and 1h at most; 5s finds a returning collector soon",
        );
        let tls = match &c.tls {
            None => Some(None),
            Some(t) => self.tls(t).map(Some),
        };
        let (address, (host, port)) = address?;
        Some(CollectorSettings {
            address,
            host,
            port,
            token: token?,
            tls: tls?,
            spool_max: spool_max?,
            ack_timeout: ack_timeout?,
            backoff_max: backoff_max?,
        })
    }

    fn bounded_duration(
        &mut self,
        value: Option<&Spanned<String>>,
        key: &str,
        default: Duration,
        (min, max): (Duration, Duration),
        hint: &str,
    ) -> Option<Duration> {
        let Some(v) = value else {
            return Some(default);
        };
        let d = self.duration(v, key)?;
        if d < min || d > max {
            self.error(
                v,
                format!("{key} {:?} is out of range", v.get_ref()),
                Some(hint.to_string()),
            );
            return None;
        }
        Some(d)
    }

    fn tls(&mut self, raw: &Spanned<RawTls>) -> Option<TlsSettings> {
        let t = raw.get_ref();
        let mut ok = true;
        let mut file = |v: &Option<Spanned<String>>, key: &str| -> Option<PathBuf> {
            let v = v.as_ref()?;
            if v.get_ref().is_empty() {
                self.error(
                    v,
                    format!("`{key}` is empty"),
                    Some("name a PEM file, or remove the key".into()),
                );
                ok = false;
            }
            Some(PathBuf::from(v.get_ref()))
        };
        let ca_file = file(&t.ca_file, "ca_file");
        let cert_file = file(&t.cert_file, "cert_file");
        let key_file = file(&t.key_file, "key_file");
        match (&t.cert_file, &t.key_file) {
            (Some(c), None) => {
                self.error(
                    c,
                    "`cert_file` is set without `key_file` in [output.collector.tls]",
                    Some("a client certificate needs its key: set both cert_file and key_file, or neither".into()),
                );
                ok = false;
            }
            (None, Some(k)) => {
                self.error(
                    k,
                    "`key_file` is set without `cert_file` in [output.collector.tls]",
                    Some("a client certificate needs its key: set both cert_file and key_file, or neither".into()),
                );
                ok = false;
            }
            _ => {}
        }
        let server_name = match &t.server_name {
            Some(n) => {
                if rustls::pki_types::ServerName::try_from(n.get_ref().as_str()).is_err() {
                    self.error(
                        n,
                        format!("`server_name` {:?} is no DNS name or IP address", n.get_ref()),
                        Some("the name in the collector's certificate, e.g. \"collector.example.net\"".into()),
                    );
                    ok = false;
                }
                Some(n.get_ref().clone())
            }
            None => None,
        };
        ok.then_some(TlsSettings {
            ca_file,
            cert_file,
            key_file,
            server_name,
        })
    }
}

/// Parses a size: a number with an optional unit, `B`, `KiB`, `MiB`, `GiB`
/// (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000); units are not
/// case-sensitive and may follow a space. A bare number is bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown unit `{other}` (use B, KiB, MiB, GiB, KB, MB or GB)"
            ));
        }
    };
    if number.is_empty() {
        return Err("no number".into());
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a number"))?;
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err("too large".into());
    }
    if bytes.fract() != 0.0 {
        return Err("not a whole number of bytes".into());
    }
    Ok(bytes as u64)
}

/// Reports one problem in a config value: the byte offset it is at, the
/// message and a hint. Lets the agent's and the collector's validators share
/// the checks of the tables they have in common.
pub type Report<'a> = dyn FnMut(usize, String, Option<String>) + 'a;

impl RawSyslog {
    /// Validates the table, reporting every problem; `None` if there was one.
    pub fn settings(&self, default_hostname: &str, report: &mut Report) -> Option<SyslogSettings> {
        let target = match &self.address {
            Some(a) => match SyslogTarget::parse(a.get_ref()) {
                Ok(t) => Some(t),
                Err(e) => {
                    report(a.span().start, e, None);
                    None
                }
            },
            None => Some(SyslogTarget::Unix(PathBuf::from("/dev/log"))),
        };
        let facility = match &self.facility {
            Some(f) => match parse_facility(f.get_ref()) {
                Ok(f) => Some(f),
                Err(e) => {
                    report(f.span().start, e, None);
                    None
                }
            },
            None => Some(syslog::Facility::LOG_LOCAL7),
        };
        let protocol = match self.protocol.as_ref().map(|p| (p, p.get_ref().as_str())) {
            None | Some((_, "rfc5424")) => Some(Protocol::Rfc5424),
            Some((_, "rfc3164")) => Some(Protocol::Rfc3164),
            Some((p, other)) => {
                report(
                    p.span().start,
                    format!("unknown syslog protocol `{other}`"),
                    Some("use \"rfc5424\" or \"rfc3164\"".into()),
                );
                None
            }
        };
        let format = match self.format.as_ref().map(|p| (p, p.get_ref().as_str())) {
            None | Some((_, "text")) => Some(Format::Text),
            Some((_, "json")) => Some(Format::Json),
            Some((p, other)) => {
                report(
                    p.span().start,
                    format!("unknown syslog format `{other}`"),
                    Some("use \"text\" (the sentence) or \"json\" (the event)".into()),
                );
                None
            }
        };
        let types = match &self.events {
            Some(list) => event_types(Some(list), report),
            None => vec!["alert".into(), "link".into(), "loss".into()],
        };
        let hostname = self
            .hostname
            .as_ref()
            .map(|h| h.get_ref().clone())
            .unwrap_or_else(|| default_hostname.to_string());
        Some(SyslogSettings {
            target: target?,
            facility: facility?,
            protocol: protocol?,
            format: format?,
            hostname,
            types,
        })
    }
}

/// Checks a list of event type names, reporting the unknown ones.
pub fn event_types(
    list: Option<&Spanned<Vec<Spanned<String>>>>,
    report: &mut Report,
) -> Vec<String> {
    let Some(list) = list else {
        return Vec::new();
    };
    let mut types = Vec::new();
    for t in list.get_ref() {
        if EVENT_TYPES.contains(&t.get_ref().as_str()) {
            types.push(t.get_ref().clone());
        } else {
            report(
                t.span().start,
                format!("unknown event type `{}`", t.get_ref()),
                Some(format!("event types: {}", EVENT_TYPES.join(", "))),
            );
        }
    }
    types
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

/// The byte offset of the key at `path` (`rule.1.whn`), found by walking the
/// spanned document. Shared with the collector's config.
pub fn key_offset(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut value: Option<&Spanned<toml::de::DeValue>> = None;
    for (i, segment) in path.iter().enumerate() {
        if let Some(v) = value {
            match v.get_ref() {
                toml::de::DeValue::Array(items) => {
                    let index: usize = segment.parse().ok()?;
                    value = items.get(index);
                    if let Some(toml::de::DeValue::Table(t)) = value.map(|v| v.get_ref()) {
                        table = t;
                        value = None;
                    }
                    continue;
                }
                toml::de::DeValue::Table(t) => table = t,
                _ => return None,
            }
        }
        let (key, v) = table.get_key_value(*segment)?;
        if i == path.len() - 1 {
            return Some(key.span().start);
        }
        value = Some(v);
    }
    None
}

/// The known key nearest to `key` by edit distance, if it is near enough to
/// be a typo. Shared with the collector's config.
pub fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The longest a rule's condition may have to hold before it fires.
const MAX_FOR: Duration = Duration::from_secs(7 * 86_400);

/// The machine's hostname, the default agent name.
pub use crate::host::hostname;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512kib"), Ok(512 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("2KB"), Ok(2_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("100B"), Ok(100));
        for bad in [
            "",
            "MiB",
            "12 parsecs",
            "1.2.3MiB",
            "0.3B",
            "-5MiB",
            "99999999999GiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_from_the_file_are_bounded() {
        let errors = |text: &str| match Config::parse(text, "t.toml") {
            Ok(_) => Vec::new(),
            Err(e) => e.diagnostics().iter().map(|d| d.to_string()).collect(),
        };
        let rule = "[[rule]]\nname = \"r\"\nwhen = \"increase(tx_errors[5s]) > 3\"\n";
        let e = errors("[agent]\nheartbeat = \"10000000000y\"\n");
        assert!(e.len() == 1 && e[0].contains("longer than 1h"), "{e:?}");
        let e = errors(&format!("{rule}for = \"10000000000y\"\n"));
        assert!(e.len() == 1 && e[0].contains("`for`"), "{e:?}");
        assert!(errors(&format!("{rule}for = \"7d\"\n")).is_empty());
        assert!(errors("[agent]\nheartbeat = \"1h\"\n").is_empty());
    }

    fn collector(table: &str) -> Result<Option<CollectorSettings>, Vec<String>> {
        Config::parse(&format!("[output.collector]\n{table}"), "t.toml")
            .map(|c| c.collector)
            .map_err(|e| e.diagnostics().iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn a_collector_table_validates_with_defaults() {
        let c = collector("address = \"col.example.net\"\ntoken = \"s3cret-0123456789ab\"\n")
            .unwrap()
            .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("col.example.net", 7000));
        assert_eq!(
            c.token,
            TokenSource::Inline(Secret::new("s3cret-0123456789ab"))
        );
        assert_eq!(c.spool_max, DEFAULT_SPOOL_MAX);
        assert_eq!(c.ack_timeout, Duration::from_secs(30));
        assert_eq!(c.backoff_max, Duration::from_secs(5));
        assert!(c.tls.is_none());
        assert!(
            !format!("{c:?}").contains("s3cret-0123456789ab"),
            "Debug hides the token"
        );

        let c = collector(
            "address = \"10.0.0.5:7443\"\ntoken_file = \"/etc/hopwatch/token\"\nspool_max = \"1MB\"\nack_timeout = \"5s\"\nbackoff_max = \"2s\"\n[output.collector.tls]\nca_file = \"/etc/hopwatch/ca.pem\"\nserver_name = \"collector.example.net\"\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.token, TokenSource::File("/etc/hopwatch/token".into()));
        assert_eq!(c.spool_max, 1_000_000);
        assert_eq!(c.backoff_max, Duration::from_secs(2));
        let tls = c.tls.unwrap();
        assert_eq!(tls.ca_file, Some("/etc/hopwatch/ca.pem".into()));
        assert_eq!(tls.server_name.as_deref(), Some("collector.example.net"));
        assert_eq!(tls.cert_file, None);

        let c = collector("address = \"c:1\"\ntoken = \"t-0123456789abcdef\"\nspool_max = 65536\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.spool_max, 65536);
    }

    #[test]
    fn collector_mistakes_are_located_and_name_both_keys() {
        let errors = collector(
            "address = \"tcp://c:7000\"\ntoken = \"s3cret\"\ntoken_file = \"/t\"\nspool_max = \"64 parsecs\"\nack_timeout = \"0s\"\ntoken_fil = \"x\"\n[output.collector.tls]\ncert_file = \"/c.pem\"\nserver_name = \"not a name\"\n",
        )
        .unwrap_err();
        let all = errors.join("\n");
        assert!(!all.contains("s3cret"), "{all}");
        for (at, words) in [
            ("t.toml:2:11", "has a scheme"),
            ("t.toml:4:14", "`token` and `token_file` are both set"),
            ("t.toml:5:13", "unknown unit `parsecs`"),
            ("t.toml:6:15", "ack_timeout \"0s\" is out of range"),
            ("t.toml:7:1", "unknown key `token_fil`"),
            ("t.toml:9:13", "`cert_file` is set without `key_file`"),
            ("t.toml:10:15", "is no DNS name"),
        ] {
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with(at) && e.contains(words)),
                "no {at} {words:?} in:\n{all}"
            );
        }
        assert!(all.contains("did you mean `token_file`"), "{all}");

        let errors = collector("spool_max = \"1KiB\"\n").unwrap_err();
        let all = errors.join("\n");
        assert!(all.contains("has no `address`"), "{all}");
        assert!(all.contains("needs `token` or `token_file`"), "{all}");
        assert!(all.contains("too small"), "{all}");
    }
}
