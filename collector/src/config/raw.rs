//! The raw shape of `collector.toml`, as serde reads it, and the keys each
//! table accepts.

use super::alerting::{ALERTMANAGER_KEYS, RawAlertmanager, RawWebhook, WEBHOOK_KEYS};
use hopwatch_wire::diag::{KnownKeys, RawSyslog};
use hopwatch_wire::size::RawSize;
use serde::Deserialize;
use toml::Spanned;

// The raw shape of the file: every value that can be wrong is `Spanned` so
// validation can point at it, and every field optional so one missing key
// does not hide the others' errors.

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawConfig {
    pub(super) collector: RawCollector,
    pub(super) auth: RawAuth,
    pub(super) output: RawOutputs,
    pub(super) rate_limit: RawRateLimit,
    pub(super) log: RawLog,
    pub(super) http: RawHttp,
    pub(super) trace: RawTrace,
    pub(super) silences: RawSilences,
    pub(super) store: RawStore,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawStore {
    pub(super) kind: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) url_file: Option<Spanned<String>>,
    pub(super) pool_size: Option<Spanned<i64>>,
    pub(super) sslmode: Option<Spanned<String>>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) connect_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawSilences {
    pub(super) max_duration: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawTrace {
    pub(super) hop_timeout: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) hop_limit: Option<Spanned<i64>>,
    pub(super) max_branches: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawHttp {
    pub(super) header_timeout: Option<Spanned<String>>,
    pub(super) idle_timeout: Option<Spanned<String>>,
    pub(super) max_connections: Option<Spanned<i64>>,
    pub(super) tls_cert: Option<Spanned<String>>,
    pub(super) tls_key: Option<Spanned<String>>,
    pub(super) session_ttl: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawCollector {
    pub(super) agents_listen: Option<Spanned<String>>,
    pub(super) http_listen: Option<Spanned<String>>,
    pub(super) data_dir: Option<Spanned<String>>,
    pub(super) heartbeat_timeout: Option<Spanned<String>>,
    pub(super) retain: Option<Spanned<String>>,
    pub(super) max_line: Option<Spanned<RawSize>>,
    pub(super) max_connections: Option<Spanned<i64>>,
    pub(super) hello_timeout: Option<Spanned<String>>,
    pub(super) max_pending: Option<Spanned<i64>>,
    pub(super) tls: Option<Spanned<RawTls>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawTls {
    pub(super) cert_file: Option<Spanned<String>>,
    pub(super) key_file: Option<Spanned<String>>,
    pub(super) client_ca_file: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawAuth {
    // A token, or a table binding a token file to agent names; read from
    // plain values because spans do not survive an untagged enum.
    pub(super) agent_tokens: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    pub(super) agent_certs: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    // A token, or a table naming a token (or a token file).
    pub(super) api_tokens: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    pub(super) agent_tokens_file: Option<Spanned<String>>,
    pub(super) api_tokens_file: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawOutputs {
    pub(super) syslog: Option<Spanned<RawSyslog>>,
    pub(super) alertmanager: Option<Spanned<RawAlertmanager>>,
    pub(super) webhook: Vec<Spanned<RawWebhook>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawRateLimit {
    pub(super) per_second: Option<Spanned<f64>>,
    pub(super) burst: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawLog {
    pub(super) file: Option<Spanned<String>>,
    pub(super) max_size: Option<Spanned<RawSize>>,
    pub(super) keep: Option<Spanned<i64>>,
}

/// The keys each table accepts, for "did you mean" hints on unknown keys.
pub(super) const KNOWN_KEYS: &KnownKeys = &[
    (
        "",
        &[
            "collector",
            "auth",
            "output",
            "rate_limit",
            "log",
            "http",
            "trace",
            "silences",
            "store",
        ],
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
    ("output", &["syslog", "alertmanager", "webhook"]),
    ("output.alertmanager", ALERTMANAGER_KEYS),
    ("output.webhook", WEBHOOK_KEYS),
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
        &[
            "header_timeout",
            "idle_timeout",
            "max_connections",
            "tls_cert",
            "tls_key",
            "session_ttl",
        ],
    ),
    (
        "trace",
        &["hop_timeout", "timeout", "hop_limit", "max_branches"],
    ),
    ("silences", &["max_duration"]),
    (
        "store",
        &[
            "kind",
            "url",
            "url_file",
            "pool_size",
            "sslmode",
            "ca_file",
            "connect_timeout",
        ],
    ),
];
