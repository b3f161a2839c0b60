//! `[collector]` and `[collector.tls]`: the listeners, the store's place and
//! retention, and the bounds on agent connections.

use super::raw::{RawCollector, RawTls};
use super::validate::Validator;
use super::{
    CollectorSettings, DEFAULT_AGENTS_LISTEN, DEFAULT_DATA_DIR, DEFAULT_HEARTBEAT_TIMEOUT,
    DEFAULT_HELLO_TIMEOUT, DEFAULT_HTTP_LISTEN, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_LINE,
    DEFAULT_MAX_PENDING, DEFAULT_RETAIN,
};
use crate::tls::TlsSettings;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

impl Validator<'_> {
    pub(super) fn collector(&mut self, raw: &RawCollector) -> Option<CollectorSettings> {
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
}
