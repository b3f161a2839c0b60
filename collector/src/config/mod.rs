//! `collector.toml`: deserialized with spans and validated all at once, so
//! `hopwatch-collector check-config` reports every mistake with
//! `file:line:col` and a hint in one pass. [`Config::parse`] is pure;
//! [`Config::check_files`] is the part of `check-config` that reads the token
//! and certificate files the config names.

use hopwatch_wire::syslog::SyslogSettings;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use validate::Validator;

mod alerting;
mod auth;
mod collector;
mod limits;
mod raw;
mod silences;
mod store;
pub use store::StoreFiles;
#[cfg(test)]
mod tests;
mod trace;
mod validate;

pub use crate::auth::{AgentCert, AuthSettings, BoundTokenFile, Secret};
pub use crate::tls::TlsSettings;
pub use hopwatch_wire::diag::{ConfigError, Diagnostic, Located};
pub use hopwatch_wire::size::parse_size;

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
    /// `[output.alertmanager]`, `[[output.webhook]]`: forward alert events.
    pub alerting: crate::alerting::AlertingSettings,
    pub rate_limit: RateLimitSettings,
    pub log: LogSettings,
    pub http: HttpSettings,
    /// `[http]`'s TLS and sign-in keys: how the web page is served.
    pub web: WebSettings,
    /// `[trace]`: the bounds of fabric traces.
    pub trace: crate::fabric::TraceSettings,
    /// `[silences]`: how long a silence may last.
    pub silences: crate::silences::SilenceSettings,
    /// `[store]`: SQLite under `data_dir`, or a shared PostgreSQL.
    pub store: crate::store::StoreSettings,
    /// Where `[store]`'s files were named, for `check-config`'s report.
    pub store_files: StoreFiles,
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

/// `[http]` `tls_cert`, `tls_key` and `session_ttl`: HTTPS on the API's
/// listener and how long a web page sign-in lasts. Apart from
/// [`HttpSettings`] because these hold paths and are read again on SIGHUP.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// The HTTP listener speaks TLS with this certificate and key (no
    /// client certificates: people sign in with a token).
    pub tls: Option<TlsSettings>,
    /// A session cookie is good for this long after sign-in.
    pub session_ttl: Duration,
}

/// Twelve hours: a working day's shift without signing in again.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

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
        let text = ConfigError::read(path)?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Validates config text; `origin` names it in diagnostics.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut v = Validator::new(text, origin);
        let config = v.parse();
        v.finish()?;
        Ok(config.expect("a config without errors"))
    }

    /// Every default: what `hopwatch-collector run` uses with no config.
    pub fn embedded() -> Config {
        Config::parse("", EMBEDDED_ORIGIN).expect("the defaults are valid")
    }

    /// Token files other users can read, each a sentence for a warning.
    pub fn file_warnings(&self) -> Vec<String> {
        self.auth
            .token_files()
            .filter_map(crate::auth::readable_by_others)
            .collect()
    }

    /// Reads the files the config names (token files, TLS certificates and
    /// keys) and reports each one that cannot be used, at its key.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        let bound = self.auth.bound_tokens.iter().map(|b| &b.token_file);
        let named = self
            .auth
            .named_api_tokens
            .iter()
            .filter_map(|n| match &n.source {
                crate::auth::TokenSource::File(file) => Some(file),
                crate::auth::TokenSource::Inline(_) => None,
            });
        for file in [&self.auth.agent_tokens_file, &self.auth.api_tokens_file]
            .into_iter()
            .flatten()
            .chain(bound)
            .chain(named)
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
        if let Some(tls) = &self.web.tls
            && let Err(e) = crate::tls::server_config(tls)
        {
            errors.push(e.diagnostic(tls));
        }
        errors.extend(self.alerting.check_files().iter().map(|e| e.diagnostic()));
        errors.extend(self.check_store_files());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }
}
