//! The raw shape of `agent.toml`, as serde reads it, and the keys each table
//! accepts.

use hopwatch_wire::diag::RawSyslog;
use hopwatch_wire::size::RawSize;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

// The raw shape of the file. Every value that can be wrong is `Spanned`, so
// validation can point at it; every field is optional so one missing key does
// not hide the others' errors.

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawConfig {
    pub(super) agent: RawAgent,
    pub(super) links: RawLinks,
    pub(super) rule: Vec<Spanned<RawRule>>,
    pub(super) output: RawOutputs,
    pub(super) silences: RawSilences,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawAgent {
    pub(super) name: Option<Spanned<String>>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) heartbeat: Option<Spanned<String>>,
    pub(super) state_dir: Option<Spanned<String>>,
    pub(super) source: Option<Spanned<String>>,
    pub(super) proc_root: Option<Spanned<String>>,
    pub(super) sys_root: Option<Spanned<String>>,
    pub(super) link_watch: Option<Spanned<String>>,
    pub(super) trace_backend: Option<Spanned<String>>,
    pub(super) nxapi_socket: Option<Spanned<String>>,
    pub(super) nxapi_user: Option<Spanned<String>>,
    pub(super) memory_limit: Option<Spanned<RawSize>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawLinks {
    pub(super) interfaces: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawRule {
    pub(super) name: Option<Spanned<String>>,
    pub(super) interfaces: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) when: Option<Spanned<String>>,
    #[serde(rename = "for")]
    pub(super) for_: Option<Spanned<String>>,
    pub(super) clear_when: Option<Spanned<String>>,
    pub(super) keep_firing_for: Option<Spanned<String>>,
    pub(super) severity: Option<Spanned<String>>,
    pub(super) labels: Option<Spanned<RawLabels>>,
    pub(super) kind: Option<Spanned<Vec<Spanned<String>>>>,
}

/// A rule's `labels`. Neither keys nor values carry their place in the
/// file: the map type an alert's labels already have adds no map code to
/// the static binary, where spanned values did; an error finds its key in
/// the table's text instead.
pub(super) type RawLabels = BTreeMap<String, String>;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawSilences {
    pub(super) max_duration: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawOutputs {
    pub(super) stdout: Option<RawStdout>,
    pub(super) syslog: Option<Spanned<RawSyslog>>,
    pub(super) collector: Option<Spanned<RawCollector>>,
    pub(super) prometheus: Option<Spanned<RawPrometheus>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawPrometheus {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) token_file: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawStdout {
    pub(super) events: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawCollector {
    pub(super) address: Option<Spanned<RawAddresses>>,
    pub(super) order: Option<Spanned<String>>,
    pub(super) token: Option<Spanned<String>>,
    pub(super) token_file: Option<Spanned<String>>,
    pub(super) spool_max: Option<Spanned<RawSize>>,
    pub(super) ack_timeout: Option<Spanned<String>>,
    pub(super) backoff_max: Option<Spanned<String>>,
    pub(super) tls: Option<Spanned<RawTls>>,
}

/// `address`: one collector, or a list to fail over between. Read by hand
/// so a value of the wrong type is told what is expected, which an
/// untagged enum cannot say.
pub(super) enum RawAddresses {
    One(String),
    List(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for RawAddresses {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawAddresses, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawAddresses;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a collector address like \"collector.example.net:7000\", or a list of them",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawAddresses, E> {
                Ok(RawAddresses::One(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawAddresses, A::Error> {
                let mut list = Vec::new();
                while let Some(entry) = seq.next_element()? {
                    list.push(entry);
                }
                Ok(RawAddresses::List(list))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawTls {
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) cert_file: Option<Spanned<String>>,
    pub(super) key_file: Option<Spanned<String>>,
    pub(super) server_name: Option<Spanned<String>>,
}

/// The keys each table accepts, for "did you mean" hints on unknown keys.
pub(super) const KNOWN_KEYS: &[(&str, &[&str])] = &[
    ("", &["agent", "links", "rule", "output", "silences"]),
    ("silences", &["max_duration"]),
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
            "memory_limit",
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
            "keep_firing_for",
            "severity",
            "labels",
            "kind",
        ],
    ),
    ("output", &["stdout", "syslog", "collector", "prometheus"]),
    ("output.prometheus", &["listen", "token_file"]),
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
            "order",
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
