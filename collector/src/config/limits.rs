//! `[rate_limit]`, `[http]` and `[log]`: how much the API's clients and the
//! log file may take, and how the HTTP listener serves the web page.

use super::raw::{RawHttp, RawLog, RawRateLimit};
use super::validate::Validator;
use super::{
    DEFAULT_HTTP, DEFAULT_LOG_FILE, DEFAULT_SESSION_TTL, HttpSettings, LogSettings,
    RateLimitSettings, TlsSettings, WebSettings,
};
use std::path::PathBuf;
use std::time::Duration;

impl Validator<'_> {
    pub(super) fn rate_limit(&mut self, raw: &RawRateLimit) -> Option<RateLimitSettings> {
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

    pub(super) fn http(&mut self, raw: &RawHttp) -> Option<HttpSettings> {
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

    /// `[http]` TLS and sessions: the certificate and key come together.
    pub(super) fn web(&mut self, raw: &RawHttp) -> Option<WebSettings> {
        let session_ttl = match &raw.session_ttl {
            Some(v) => self.duration(
                v,
                "session_ttl",
                (Duration::from_secs(60), Duration::from_secs(30 * 86_400)),
            ),
            None => Some(DEFAULT_SESSION_TTL),
        };
        let tls = match (&raw.tls_cert, &raw.tls_key) {
            (None, None) => Some(None),
            (Some(cert), Some(key)) => {
                let cert_file = self.path(cert, "tls_cert");
                let key_file = self.path(key, "tls_key");
                match (cert_file, key_file) {
                    (Some(cert_file), Some(key_file)) => Some(Some(TlsSettings {
                        cert_file,
                        key_file,
                        client_ca_file: None,
                    })),
                    _ => None,
                }
            }
            (Some(given), None) | (None, Some(given)) => {
                let (has, lacks) = if raw.tls_cert.is_some() {
                    ("tls_cert", "tls_key")
                } else {
                    ("tls_key", "tls_cert")
                };
                self.error(
                    given,
                    format!("[http] has `{has}` but no `{lacks}`"),
                    Some("HTTPS needs both tls_cert and tls_key (PEM files); remove both for plain HTTP".into()),
                );
                None
            }
        };
        Some(WebSettings {
            tls: tls?,
            session_ttl: session_ttl?,
        })
    }

    pub(super) fn log(&mut self, raw: &RawLog) -> Option<LogSettings> {
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
