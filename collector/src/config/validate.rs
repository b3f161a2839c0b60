//! The validator of `collector.toml`: the walk over the tables and the
//! checks of durations, sizes, addresses and paths that several tables use.
//! Positions, unknown keys and the error list are the shared
//! [`Diagnostics`]; each table's own checks live beside it.

use super::raw::{KNOWN_KEYS, RawConfig};
use super::{Config, ConfigError};
use hopwatch_wire::diag::{Diagnostics, Located, RawSyslog};
use hopwatch_wire::size::{RawSize, format_size};
use hopwatch_wire::syslog::SyslogSettings;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// The checks of one config text, each table's in its own file.
pub(super) struct Validator<'a> {
    diag: Diagnostics<'a>,
}

impl<'a> Validator<'a> {
    pub(super) fn new(text: &'a str, origin: &'a str) -> Validator<'a> {
        Validator {
            diag: Diagnostics::new(text, origin),
        }
    }

    /// Every mistake found, in the order of the text.
    pub(super) fn finish(self) -> Result<(), ConfigError> {
        self.diag.finish()
    }
}

impl Validator<'_> {
    pub(super) fn error<T>(
        &mut self,
        at: &Spanned<T>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.diag.error(at, message, hint);
    }

    pub(super) fn error_at(
        &mut self,
        offset: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.diag.error_at(offset, message, hint);
    }

    pub(super) fn locate<T>(&self, at: &Spanned<String>, value: T) -> Located<T> {
        self.diag.locate(at.span().start, value)
    }

    pub(super) fn locate_span<T>(&self, offset: usize, value: T) -> Located<T> {
        self.diag.locate(offset, value)
    }

    pub(super) fn parse(&mut self) -> Option<Config> {
        let raw: RawConfig = self.diag.deserialize(KNOWN_KEYS)?;
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
        let alerting = self.alerting(raw.output.alertmanager.as_ref(), &raw.output.webhook);
        let rate_limit = self.rate_limit(&raw.rate_limit);
        let log = self.log(&raw.log);
        let http = self.http(&raw.http);
        let web = self.web(&raw.http);
        let trace = self.trace(&raw.trace, http.map(|h| h.idle_timeout));
        let silences = self.silences(&raw.silences);
        let store = self.store(&raw.store);
        if !self.diag.is_empty() {
            return None;
        }
        let (store, store_files) = store?;
        Some(Config {
            collector: collector?,
            auth,
            syslog,
            alerting: alerting?,
            rate_limit: rate_limit?,
            log: log?,
            http: http?,
            web: web?,
            trace: trace?,
            silences: silences?,
            store,
            store_files,
        })
    }

    pub(super) fn duration(
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

    pub(super) fn size(
        &mut self,
        value: &Spanned<RawSize>,
        key: &str,
        range: (u64, u64),
    ) -> Option<u64> {
        let parsed = value.get_ref().bytes();
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

    pub(super) fn address(
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

    pub(super) fn path(&mut self, value: &Spanned<String>, key: &str) -> Option<Located<PathBuf>> {
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

    fn syslog(&mut self, raw: &Spanned<RawSyslog>) -> Option<SyslogSettings> {
        raw.get_ref()
            // No default HOSTNAME: each message carries its agent's name.
            .settings("", &mut self.diag)
    }
}
