//! The agent ↔ collector protocol: JSON lines over one TCP (or TLS)
//! connection that the agent dials. Defined here, beside the events, because
//! both sides speak it.
//!
//! ```text
//! agent                                   collector
//!   hello {token, agent, boot, boots}   ─►
//!                                       ◄─ welcome {last_seq: {boot: seq}}  (or refused, then close)
//!   events after last_seq, per boot     ─►
//!                                       ◄─ ack {boot, seq}      (everything ≤ seq is durably stored)
//!                                       ◄─ trace_request {id, query}
//!                                       ◄─ reject {boot, seq, reason}  (that line can never be stored; then refused)
//!                                       ◄─ silences {silences}  (protocol ≥ 3: the collector's silences for this agent)
//!   trace_result {id, result}           ─►
//!   goodbye {boot, last_seq}            ─►  (clean shutdown, after the last event)
//! ```
//!
//! An agent restarted before its spool drained holds events of earlier
//! boots; `boots` lists every boot it holds events for, oldest first, and the
//! collector answers with the last seq it stored of each. The collector drops
//! a duplicate `(agent, boot, seq)` in any case, so a resend is harmless.
//!
//! Agent lines are either a [`Hello`], a [`TraceResult`], a [`Goodbye`] or an
//! [`Event`](crate::event::Event) exactly as the other outputs print it; the
//! `type` field tells them apart. Every line ends with `\n`.

use crate::event::VrfAddresses;
use crate::trace::{TraceAnswer, TraceQuery};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The protocol version both sides put in `hello` and `welcome`.
///
/// 2: a `trace_request`'s query and a `trace_result`'s answer carry their
/// `kind` ([`TraceQuery`], [`TraceAnswer`]).
/// 3: the collector sends `silences`; it sends them only to an agent whose
/// hello says 3 or more.
pub const PROTOCOL_VERSION: u32 = 3;

/// The agent's first line on a connection.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Always `"hello"`.
    #[serde(rename = "type")]
    pub kind: HelloTag,
    pub protocol: u32,
    /// The shared secret; never logged (see the `Debug` impl).
    pub token: String,
    pub agent: String,
    /// The agent's current boot.
    pub boot: String,
    /// Every boot the agent holds unacknowledged events for, oldest first
    /// (the current one included when it has any).
    pub boots: Vec<String>,
    pub version: String,
    /// The switch's interface addresses per VRF, so the collector can map a
    /// next hop to the switch that owns it.
    pub addresses: Vec<VrfAddresses>,
    /// The agent's clock as it sent this line (RFC 3339, ms): the collector
    /// measures the agent's clock skew from it. Absent from older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
}

impl fmt::Debug for Hello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hello")
            .field("protocol", &self.protocol)
            .field("token", &"<redacted>")
            .field("agent", &self.agent)
            .field("boot", &self.boot)
            .field("boots", &self.boots)
            .field("version", &self.version)
            .field("addresses", &self.addresses)
            .field("now", &self.now)
            .finish()
    }
}

/// The literal tag `"hello"`, so a `Hello` never parses from another line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelloTag {
    Hello,
}

/// What the collector sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CollectorMessage {
    /// The hello was accepted; `last_seq` holds, for the current boot and
    /// every boot in `boots`, the highest seq the collector has stored (0 for
    /// none). The agent resends each boot from `last_seq + 1`.
    Welcome {
        protocol: u32,
        last_seq: std::collections::BTreeMap<String, u64>,
    },
    /// The hello was refused (bad token, unsupported protocol); the
    /// collector closes the connection after this line.
    Refused { reason: String },
    /// Every event of `boot` with `seq` ≤ this is durably stored.
    Ack { boot: String, seq: u64 },
    /// Asks the agent to trace through its own switch; answered by a
    /// [`TraceResult`] with the same `id`. The query is read on its own:
    /// one this build cannot read (an unknown kind, a bad field) is
    /// `Err(why)`, answered with the reason under its id, and never fails
    /// the line or the connection.
    TraceRequest {
        id: u64,
        #[serde(serialize_with = "write_query", deserialize_with = "read_query")]
        query: Result<TraceQuery, String>,
    },
    /// The agent's line for `(boot, seq)` can never be stored (it is
    /// malformed); sent before the `refused` that ends the connection, so
    /// the agent sets that line aside instead of resending it for ever.
    Reject {
        boot: String,
        seq: u64,
        reason: String,
    },
    /// Every silence of the collector's that concerns this agent, whole:
    /// it replaces the set the collector sent before. Sent after `welcome`
    /// and whenever the set changes.
    Silences {
        silences: Vec<crate::silence::Silence>,
    },
}

/// The agent's answer to a [`CollectorMessage::TraceRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceResult {
    /// Always `"trace_result"`.
    #[serde(rename = "type")]
    pub kind: TraceResultTag,
    pub id: u64,
    pub result: TraceAnswer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceResultTag {
    TraceResult,
}

/// Whether `line` is a `trace_result`, whatever its answer holds: a
/// collector that reads no answers (or an answer of a kind it does not
/// know) still knows the line is not an event.
pub fn is_trace_result(line: &str) -> bool {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(rename = "type")]
        _kind: TraceResultTag,
        #[serde(rename = "id")]
        _id: u64,
    }
    serde_json::from_str::<Envelope>(line).is_ok()
}

fn write_query<S: serde::Serializer>(
    query: &Result<TraceQuery, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match query {
        Ok(query) => query.serialize(serializer),
        Err(why) => Err(serde::ser::Error::custom(format!(
            "an unreadable trace query is not sent: {why}"
        ))),
    }
}

fn read_query<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Result<TraceQuery, String>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(TraceQuery::from_value(value))
}

/// The agent's last line before a clean shutdown: it is stopping on purpose,
/// so the collector marks it stopped at once instead of waiting for the
/// heartbeat timeout. Sent after the agent's last event; `last_seq` is the
/// last seq of `boot` it emitted, so the collector can tell whether anything
/// is still owed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goodbye {
    /// Always `"goodbye"`.
    #[serde(rename = "type")]
    pub kind: GoodbyeTag,
    pub boot: String,
    pub last_seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoodbyeTag {
    Goodbye,
}

/// The longest agent name, in bytes: the collector stores and prints it,
/// and this is the bound both sides check.
pub const MAX_AGENT_NAME: usize = 255;

/// What is wrong with an agent name. The same rule runs in the agent's
/// config check and in the collector's hello, so a name `check-config`
/// accepts is never refused at the collector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("is empty")]
    Empty,
    #[error("is {0} bytes long; agent names are at most {MAX_AGENT_NAME} bytes")]
    TooLong(usize),
    #[error("holds the control character {ch:?} at byte {at}; agent names are printable text")]
    Control { ch: char, at: usize },
}

/// A refused agent name with its problem: `agent name "…": is empty`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("agent name {shown}: {problem}")]
pub struct AgentNameError {
    /// The name quoted and escaped, cut to 64 characters: it may be long or
    /// hold terminal escapes, and it goes into logs.
    shown: String,
    pub problem: NameProblem,
}

/// Checks an agent name: not blank, at most [`MAX_AGENT_NAME`] bytes, no
/// control characters (TAB, NUL, escapes: they corrupt logs and terminals).
pub fn check_agent_name(name: &str) -> Result<(), AgentNameError> {
    let problem = if name.trim().is_empty() {
        NameProblem::Empty
    } else if name.len() > MAX_AGENT_NAME {
        NameProblem::TooLong(name.len())
    } else if let Some((at, ch)) = name.char_indices().find(|(_, c)| c.is_control()) {
        NameProblem::Control { ch, at }
    } else {
        return Ok(());
    };
    let mut shown = format!("{:?}", name.chars().take(64).collect::<String>());
    if name.chars().count() > 64 {
        shown.push('…');
    }
    Err(AgentNameError { shown, problem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_and_hides_its_token() {
        let hello = Hello {
            kind: HelloTag::Hello,
            protocol: PROTOCOL_VERSION,
            token: "s3cret".into(),
            agent: "leaf1".into(),
            boot: "b".into(),
            boots: vec!["a".into(), "b".into()],
            version: "0.1.0".into(),
            addresses: vec![],
            now: Some("2026-12-01T10:00:00.000Z".into()),
        };
        let line = serde_json::to_string(&hello).unwrap();
        assert!(line.starts_with(r#"{"type":"hello","#), "{line}");
        assert_eq!(serde_json::from_str::<Hello>(&line).unwrap(), hello);
        assert!(!format!("{hello:?}").contains("s3cret"));
        // An older agent's hello has no clock.
        let old = line.replace(r#","now":"2026-12-01T10:00:00.000Z""#, "");
        assert_eq!(serde_json::from_str::<Hello>(&old).unwrap().now, None);
    }

    #[test]
    fn collector_messages_are_tagged() {
        let ack: CollectorMessage =
            serde_json::from_str(r#"{"type":"ack","boot":"b","seq":42}"#).unwrap();
        assert_eq!(
            ack,
            CollectorMessage::Ack {
                boot: "b".into(),
                seq: 42
            }
        );
        let welcome = serde_json::to_string(&CollectorMessage::Welcome {
            protocol: 1,
            last_seq: [("b".to_string(), 7)].into_iter().collect(),
        })
        .unwrap();
        assert_eq!(
            welcome,
            r#"{"type":"welcome","protocol":1,"last_seq":{"b":7}}"#
        );
        assert!(serde_json::from_str::<Hello>(r#"{"type":"alert"}"#).is_err());
    }

    #[test]
    fn agent_names_follow_one_rule() {
        assert_eq!(check_agent_name("leaf1"), Ok(()));
        assert_eq!(check_agent_name("spine 1.dc-2/ü"), Ok(()));
        assert_eq!(check_agent_name(&"a".repeat(MAX_AGENT_NAME)), Ok(()));
        let problem = |name: &str| check_agent_name(name).unwrap_err().problem;
        assert_eq!(problem(""), NameProblem::Empty);
        assert_eq!(problem(" \t"), NameProblem::Empty);
        assert_eq!(problem(&"a".repeat(256)), NameProblem::TooLong(256));
        // Bytes, not characters: 128 two-byte characters are 256 bytes.
        assert_eq!(problem(&"é".repeat(128)), NameProblem::TooLong(256));
        assert_eq!(problem("le\taf"), NameProblem::Control { ch: '\t', at: 2 });
        assert_eq!(problem("a\0"), NameProblem::Control { ch: '\0', at: 1 });
        assert_eq!(
            check_agent_name("x\u{1b}]0;pwned\u{7}")
                .unwrap_err()
                .to_string(),
            "agent name \"x\\u{1b}]0;pwned\\u{7}\": holds the control character '\\u{1b}' \
             at byte 1; agent names are printable text"
        );
        let long = check_agent_name(&"a".repeat(300)).unwrap_err().to_string();
        assert!(
            long.starts_with(&format!("agent name \"{}\"…: is 300 bytes", "a".repeat(64))),
            "{long}"
        );
    }

    #[test]
    fn a_trace_request_with_an_unknown_kind_is_answered_not_dropped() {
        let line = br#"{"type":"trace_request","id":7,"query":{"kind":"bogus","dst":"10.0.0.1"}}"#;
        let CollectorMessage::TraceRequest { id, query } = serde_json::from_slice(line).unwrap()
        else {
            panic!("not a trace request");
        };
        assert_eq!(id, 7);
        let reason = query.unwrap_err();
        assert!(
            reason.contains("unknown trace query kind \"bogus\""),
            "{reason}"
        );
        let good = br#"{"type":"trace_request","id":8,"query":{"kind":"flow","dst":"10.0.0.1"}}"#;
        let message: CollectorMessage = serde_json::from_slice(good).unwrap();
        assert!(matches!(
            message,
            CollectorMessage::TraceRequest {
                id: 8,
                query: Ok(TraceQuery::Flow(_))
            }
        ));
        // Written as it was read.
        let written = serde_json::to_string(&message).unwrap();
        assert_eq!(
            serde_json::from_str::<CollectorMessage>(&written).unwrap(),
            message
        );
    }

    #[test]
    fn trace_results_are_told_by_their_tag() {
        let line = serde_json::to_string(&TraceResult {
            kind: TraceResultTag::TraceResult,
            id: 3,
            result: TraceAnswer::error("busy"),
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"type":"trace_result","id":3,"result":{"kind":"error","error":"busy"}}"#
        );
        assert!(is_trace_result(&line));
        assert!(is_trace_result(
            r#"{"type":"trace_result","id":4,"result":{"kind":"from_the_future"}}"#
        ));
        assert!(!is_trace_result(r#"{"type":"link","id":4}"#));
    }

    #[test]
    fn goodbye_is_tagged() {
        let bye = Goodbye {
            kind: GoodbyeTag::Goodbye,
            boot: "b".into(),
            last_seq: 9,
        };
        let line = serde_json::to_string(&bye).unwrap();
        assert_eq!(line, r#"{"type":"goodbye","boot":"b","last_seq":9}"#);
        assert!(serde_json::from_str::<Goodbye>(r#"{"type":"hello"}"#).is_err());
    }
}
