//! A new silence as the API receives it, checked field by field: every
//! refusal names the field and says what to send instead. Pure, with the
//! time and the maximum length as arguments.

use super::SilenceSettings;
use crate::store::silences::Stored;
use crate::store::{millis, rfc3339};
use hopwatch_wire::matcher::InterfaceMatcher;
use hopwatch_wire::silence::Silence;
use serde_json::{Map, Value};
use std::time::Duration;

/// The longest glob a silence takes.
pub const MAX_GLOB: usize = 256;
/// The longest reason a silence takes.
pub const MAX_REASON: usize = 1024;
/// How far ahead a silence may be set to start.
const MAX_AHEAD: Duration = Duration::from_secs(365 * 86_400);

const FIELDS: &[&str] = &[
    "agent",
    "interface",
    "rule",
    "starts_at",
    "ends_at",
    "for",
    "reason",
];

/// A field the silence cannot be made with, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The body's field at fault; empty for the body as a whole.
    pub field: String,
    pub message: String,
}

fn fail<T>(field: &str, message: impl Into<String>) -> Result<T, FieldError> {
    Err(FieldError {
        field: field.to_string(),
        message: message.into(),
    })
}

/// Reads a `POST /api/v1/silences` body into the silence to store, made by
/// `author` at `now_ms` with id `id`. A start in the past means now: a
/// silence covers alert changes from when it is made.
pub fn parse_new(
    body: &[u8],
    now_ms: i64,
    settings: &SilenceSettings,
    author: &str,
    id: String,
) -> Result<Stored, FieldError> {
    let example = r#"{"interface": "Eth1-*", "for": "2h", "reason": "optics swap"}"#;
    let map: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return fail(
                "",
                format!("the body must be a JSON object such as {example}"),
            );
        }
        Err(e) => {
            return fail(
                "",
                format!("the body is not JSON ({e}); send an object such as {example}"),
            );
        }
    };
    if let Some(key) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return fail(
            key,
            format!(
                "unknown field `{key}`; a silence takes {}",
                FIELDS.join(", ")
            ),
        );
    }
    let interface = match text(&map, "interface")? {
        Some(g) => glob(g, "interface")?,
        None => {
            return fail(
                "interface",
                "`interface` is required: the interfaces to silence, a glob such as \"Eth1-*\" (\"*\" for all)",
            );
        }
    };
    let agent = text(&map, "agent")?.map(|g| glob(g, "agent")).transpose()?;
    let rule = text(&map, "rule")?.map(|g| glob(g, "rule")).transpose()?;
    let reason = match text(&map, "reason")?.map(str::trim) {
        Some(r) if r.len() > MAX_REASON => {
            return fail(
                "reason",
                format!(
                    "`reason` is {} bytes; keep it to {MAX_REASON} and link to the ticket",
                    r.len()
                ),
            );
        }
        Some(r) if !r.is_empty() => r.to_string(),
        _ => {
            return fail(
                "reason",
                "`reason` is required: say why (a ticket, a maintenance window), so whoever sees the silence knows",
            );
        }
    };
    let starts_ms = match text(&map, "starts_at")? {
        None => now_ms,
        Some(at) => {
            let at = time(at, "starts_at")?;
            if at > now_ms + MAX_AHEAD.as_millis() as i64 {
                return fail(
                    "starts_at",
                    "`starts_at` is more than a year ahead; make the silence nearer the time",
                );
            }
            at.max(now_ms)
        }
    };
    let too_long = |field: &str, length: Duration| {
        fail(
            field,
            format!(
                "the silence would last {}, longer than the {} a silence may last; make it shorter (and renew it if need be), or raise [silences] max_duration in the collector's config",
                humantime::format_duration(Duration::from_secs(length.as_secs())),
                humantime::format_duration(settings.max_duration)
            ),
        )
    };
    let ends_ms = match (text(&map, "ends_at")?, text(&map, "for")?) {
        (Some(_), Some(_)) => return fail("for", "give either `ends_at` or `for`, not both"),
        (None, None) => {
            return fail(
                "ends_at",
                "every silence ends: give `ends_at` (an RFC 3339 time such as 2024-05-01T06:00:00Z) or `for` (a duration such as 2h)",
            );
        }
        (Some(at), None) => {
            let at = time(at, "ends_at")?;
            if at <= now_ms {
                return fail(
                    "ends_at",
                    format!(
                        "`ends_at` {} is not in the future (it is {} now)",
                        rfc3339(at),
                        rfc3339(now_ms)
                    ),
                );
            }
            if at <= starts_ms {
                return fail("ends_at", "`ends_at` is not after `starts_at`");
            }
            let length = Duration::from_millis((at - starts_ms) as u64);
            if length > settings.max_duration {
                return too_long("ends_at", length);
            }
            at
        }
        (None, Some(d)) => match humantime::parse_duration(d) {
            Ok(d) if d.is_zero() => return fail("for", "`for` is zero; a silence lasts a while"),
            Ok(d) if d > settings.max_duration => return too_long("for", d),
            Ok(d) => starts_ms + d.as_millis() as i64,
            Err(e) => {
                return fail(
                    "for",
                    format!("bad `for` value {d:?} ({e}); write a duration such as 30m, 2h or 3d"),
                );
            }
        },
    };
    Ok(Stored {
        silence: Silence {
            id,
            interface,
            rule,
            agent,
            starts_at: rfc3339(starts_ms),
            ends_at: rfc3339(ends_ms),
            reason,
            author: author.to_string(),
        },
        starts_ms,
        ends_ms,
    })
}

/// A string field; null counts as absent.
fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => fail(key, format!("`{key}` must be a string, not {other}")),
    }
}

fn glob(value: &str, key: &str) -> Result<String, FieldError> {
    if value.len() > MAX_GLOB {
        return fail(key, format!("`{key}` is longer than {MAX_GLOB} bytes"));
    }
    if value.chars().any(char::is_control) {
        return fail(key, format!("`{key}` holds a control character"));
    }
    match InterfaceMatcher::new(&[value]) {
        Ok(_) => Ok(value.to_string()),
        Err(e) => fail(
            key,
            format!(
                "bad glob {value:?} in `{key}`: {}; write a glob such as \"Eth1-*\" (`*`, `?`, `[a-z]`, a leading `!` for all but)",
                e.reason
            ),
        ),
    }
}

fn time(value: &str, key: &str) -> Result<i64, FieldError> {
    match humantime::parse_rfc3339_weak(value) {
        Ok(at) => Ok(millis(at)),
        Err(e) => fail(
            key,
            format!(
                "bad `{key}` value {value:?} ({e}); write an RFC 3339 time such as 2024-05-01T06:00:00Z"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;
    const HOUR: i64 = 3_600_000;

    fn settings() -> SilenceSettings {
        SilenceSettings {
            max_duration: Duration::from_secs(86_400),
        }
    }

    fn parse(body: &str) -> Result<Stored, FieldError> {
        parse_new(
            body.as_bytes(),
            NOW,
            &settings(),
            "alice",
            "c-0123456789abcdef".into(),
        )
    }

    fn refused(body: &str) -> FieldError {
        parse(body).expect_err(body)
    }

    #[test]
    fn a_silence_for_a_while_starts_now() {
        let s = parse(r#"{"agent": "leaf*", "interface": "Eth1-*", "rule": "tx-*", "for": "2h", "reason": " optics "}"#)
            .unwrap();
        assert_eq!((s.starts_ms, s.ends_ms), (NOW, NOW + 2 * HOUR));
        assert_eq!(s.silence.starts_at, "2023-11-14T22:13:20.000Z");
        assert_eq!(s.silence.ends_at, "2023-11-15T00:13:20.000Z");
        assert_eq!(s.silence.agent.as_deref(), Some("leaf*"));
        assert_eq!(s.silence.rule.as_deref(), Some("tx-*"));
        assert_eq!(s.silence.reason, "optics");
        assert_eq!(s.silence.author, "alice");
        assert_eq!(s.silence.id, "c-0123456789abcdef");
    }

    #[test]
    fn a_window_later_keeps_its_times_and_a_start_in_the_past_means_now() {
        let s = parse(r#"{"interface": "*", "starts_at": "2023-11-15T02:00:00Z", "ends_at": "2023-11-15T04:00:00.5Z", "reason": "r", "agent": null}"#).unwrap();
        assert_eq!(s.silence.starts_at, "2023-11-15T02:00:00.000Z");
        assert_eq!(s.silence.ends_at, "2023-11-15T04:00:00.500Z");
        assert_eq!(s.silence.agent, None);
        let s = parse(r#"{"interface": "*", "starts_at": "2020-01-01T00:00:00Z", "for": "1h", "reason": "r"}"#).unwrap();
        assert_eq!((s.starts_ms, s.ends_ms), (NOW, NOW + HOUR));
    }

    #[test]
    fn each_refusal_names_its_field() {
        for (body, field, words) in [
            ("[]", "", "JSON object"),
            ("{", "", "not JSON"),
            (
                r#"{"interface": "*", "for": "1h", "reason": "r", "until": "x"}"#,
                "until",
                "unknown field `until`",
            ),
            (
                r#"{"for": "1h", "reason": "r"}"#,
                "interface",
                "`interface` is required",
            ),
            (
                r#"{"interface": "Eth[", "for": "1h", "reason": "r"}"#,
                "interface",
                "bad glob \"Eth[\"",
            ),
            (
                r#"{"interface": "", "for": "1h", "reason": "r"}"#,
                "interface",
                "empty pattern",
            ),
            (
                r#"{"interface": 7, "for": "1h", "reason": "r"}"#,
                "interface",
                "must be a string",
            ),
            (
                r#"{"interface": "*", "agent": "[z-a]", "for": "1h", "reason": "r"}"#,
                "agent",
                "runs backwards",
            ),
            (
                r#"{"interface": "*", "rule": "a\\", "for": "1h", "reason": "r"}"#,
                "rule",
                "bad glob",
            ),
            (
                r#"{"interface": "*", "for": "1h"}"#,
                "reason",
                "`reason` is required",
            ),
            (
                r#"{"interface": "*", "for": "1h", "reason": "  "}"#,
                "reason",
                "`reason` is required",
            ),
            (
                r#"{"interface": "*", "reason": "r"}"#,
                "ends_at",
                "every silence ends",
            ),
            (
                r#"{"interface": "*", "for": "1h", "ends_at": "2023-11-15T00:00:00Z", "reason": "r"}"#,
                "for",
                "not both",
            ),
            (
                r#"{"interface": "*", "ends_at": "2023-11-14T22:00:00Z", "reason": "r"}"#,
                "ends_at",
                "not in the future",
            ),
            (
                r#"{"interface": "*", "ends_at": "tomorrow", "reason": "r"}"#,
                "ends_at",
                "RFC 3339",
            ),
            (
                r#"{"interface": "*", "starts_at": "2023-11-15T02:00:00Z", "ends_at": "2023-11-15T01:00:00Z", "reason": "r"}"#,
                "ends_at",
                "not after `starts_at`",
            ),
            (
                r#"{"interface": "*", "for": "soon", "reason": "r"}"#,
                "for",
                "bad `for` value",
            ),
            (
                r#"{"interface": "*", "for": "0s", "reason": "r"}"#,
                "for",
                "zero",
            ),
            (
                r#"{"interface": "*", "for": "2d", "reason": "r"}"#,
                "for",
                "longer than the 1day",
            ),
            (
                r#"{"interface": "*", "for": "99999999999999999999d", "reason": "r"}"#,
                "for",
                "bad `for` value",
            ),
            (
                r#"{"interface": "*", "ends_at": "2023-11-16T00:00:00Z", "reason": "r"}"#,
                "ends_at",
                "[silences] max_duration",
            ),
            (
                r#"{"interface": "*", "starts_at": "2025-11-16T00:00:00Z", "for": "1h", "reason": "r"}"#,
                "starts_at",
                "more than a year ahead",
            ),
        ] {
            let e = refused(body);
            assert_eq!(e.field, field, "{body}: {}", e.message);
            assert!(e.message.contains(words), "{body}: {}", e.message);
        }
        let long = format!(
            r#"{{"interface": "*", "for": "1h", "reason": "{}"}}"#,
            "x".repeat(MAX_REASON + 1)
        );
        assert_eq!(refused(&long).field, "reason");
        let long = format!(
            r#"{{"interface": "{}", "for": "1h", "reason": "r"}}"#,
            "x".repeat(MAX_GLOB + 1)
        );
        assert_eq!(refused(&long).field, "interface");
        assert_eq!(
            refused(r#"{"interface": "a\u0007", "for": "1h", "reason": "r"}"#).field,
            "interface"
        );
    }

    #[test]
    fn the_maximum_itself_is_allowed() {
        let s = parse(r#"{"interface": "*", "for": "1d", "reason": "r"}"#).unwrap();
        assert_eq!(s.ends_ms - s.starts_ms, 24 * HOUR);
    }
}
