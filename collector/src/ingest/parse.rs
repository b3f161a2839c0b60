//! One agent line to an [`Incoming`] event in one pass over its bytes, into
//! the shared event types. The shared `Event` flattens its body into the
//! envelope, and serde's derive for that buffers every line whole before it
//! can tell the type; at a few hundred thousand lines a second that
//! buffering was the largest cost. Here the envelope is read as it comes and,
//! once `type` is known, the rest of the object goes straight into that
//! type's body struct. Fields that come before `type` (agents write it
//! first) are buffered, so any order still parses.

use crate::store::writer::Incoming;
use hopwatch_wire::event::{Alert, Body, Heartbeat, Link, LinkState, Loss};
use hopwatch_wire::wire::is_trace_result;
use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Parses one agent line: an event (Some), a trace result (None; the
/// session hands it to the switchboard), or an error naming what is wrong.
pub fn parse_line(line: &[u8]) -> Result<Option<Incoming>, String> {
    let text = std::str::from_utf8(line).map_err(|e| format!("the line is not UTF-8: {e}"))?;
    let parsed = match serde_json::from_str::<Line>(text) {
        Ok(parsed) => parsed,
        Err(error) => {
            if is_trace_result(text) {
                return Ok(None);
            }
            return Err(error.to_string());
        }
    };
    let Line {
        v,
        agent,
        boot,
        seq,
        ts,
        kind,
        body,
    } = parsed;
    let body = body?;
    if agent.is_empty() || boot.is_empty() {
        return Err("`agent` and `boot` must not be empty".into());
    }
    if seq == 0 || seq > i64::MAX as u64 {
        return Err(format!(
            "`seq` {seq} is out of range: it starts at 1 and stays below 2^63"
        ));
    }
    let at = humantime::parse_rfc3339_weak(&ts).map_err(|e| {
        format!("bad `ts` {ts:?}: {e}; expected RFC 3339 such as 2024-05-01T12:00:00.000Z")
    })?;
    let ts_ms = crate::store::millis(at);
    let line = match &body {
        // A heartbeat's interface list is folded into the timeline; the row
        // keeps the rest, so a month of heartbeats from a large fleet does
        // not outweigh everything else in the store.
        Some(Body::Heartbeat(hb)) => serde_json::json!({
            "v": v, "agent": agent, "boot": boot, "seq": seq, "ts": ts, "type": "heartbeat",
            "uptime_s": hb.uptime_s, "interfaces": hb.interfaces.len(),
            "spool_depth": hb.spool_depth, "events_dropped": hb.events_dropped, "firing": hb.firing,
        })
        .to_string(),
        _ => text.to_owned(),
    };
    Ok(Some(Incoming {
        v,
        agent,
        boot,
        seq,
        ts,
        ts_ms,
        kind,
        body,
        line,
    }))
}

/// An event line as read: the envelope, the `type`, and the body: None for
/// a type this collector does not know (a newer agent's), which is stored
/// and acknowledged as is, or the sentence saying what the body lacks.
struct Line {
    v: u32,
    agent: String,
    boot: String,
    seq: u64,
    ts: String,
    kind: String,
    body: Result<Option<Body>, String>,
}

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Line, D::Error> {
        deserializer.deserialize_map(LineVisitor)
    }
}

/// The envelope's fields as they turn up, wherever in the object.
#[derive(Default)]
struct Envelope {
    v: Option<u32>,
    agent: Option<String>,
    boot: Option<String>,
    seq: Option<u64>,
    ts: Option<String>,
}

impl Envelope {
    /// Reads the value of `key` if it is an envelope field; false if not.
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        fn put<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
            slot: &mut Option<T>,
            name: &'static str,
            map: &mut A,
        ) -> Result<(), A::Error> {
            if slot.is_some() {
                return Err(de::Error::duplicate_field(name));
            }
            *slot = Some(map.next_value()?);
            Ok(())
        }
        match key {
            "v" => put(&mut self.v, "v", map)?,
            "agent" => put(&mut self.agent, "agent", map)?,
            "boot" => put(&mut self.boot, "boot", map)?,
            "seq" => put(&mut self.seq, "seq", map)?,
            "ts" => put(&mut self.ts, "ts", map)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A key, borrowed from the line unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = Line;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Line, A::Error> {
        let mut envelope = Envelope::default();
        let mut early = Vec::new();
        let mut typed = None;
        while let Some(Key(key)) = map.next_key()? {
            if envelope.take(&key, &mut map)? {
                continue;
            }
            if key == "type" {
                let kind: String = map.next_value()?;
                let rest = Rest {
                    map: &mut map,
                    envelope: &mut envelope,
                    early: early.into_iter(),
                    pending: None,
                };
                let body = body(&kind, rest)?;
                typed = Some((kind, body));
                break;
            }
            early.push((key.into_owned(), map.next_value::<serde_json::Value>()?));
        }
        let Envelope {
            v,
            agent,
            boot,
            seq,
            ts,
        } = envelope;
        let missing = de::Error::missing_field;
        let v = v.ok_or_else(|| missing("v"))?;
        let agent = agent.ok_or_else(|| missing("agent"))?;
        let boot = boot.ok_or_else(|| missing("boot"))?;
        let seq = seq.ok_or_else(|| missing("seq"))?;
        let ts = ts.ok_or_else(|| missing("ts"))?;
        let (kind, body) = typed.ok_or_else(|| missing("type"))?;
        Ok(Line {
            v,
            agent,
            boot,
            seq,
            ts,
            kind,
            body,
        })
    }
}

/// The body of a `kind` event from the rest of the object; a field it
/// lacks is a sentence of ours (without a position, as it concerns the
/// whole object), anything else wrong with the JSON stays serde's error.
fn body<'de, A: MapAccess<'de>>(
    kind: &str,
    mut rest: Rest<'_, A>,
) -> Result<Result<Option<Body>, String>, A::Error> {
    let parsed = match kind {
        "alert" => Alert::deserialize(MapAccessDeserializer::new(&mut rest)).map(Body::Alert),
        "link" => Link::deserialize(MapAccessDeserializer::new(&mut rest)).map(Body::Link),
        "heartbeat" => {
            Heartbeat::deserialize(MapAccessDeserializer::new(&mut rest)).map(Body::Heartbeat)
        }
        "loss" => Loss::deserialize(MapAccessDeserializer::new(&mut rest)).map(Body::Loss),
        _ => {
            while rest
                .next_key::<IgnoredAny>()
                .map_err(BodyError::json)?
                .is_some()
            {
                rest.next_value::<IgnoredAny>().map_err(BodyError::json)?;
            }
            return Ok(Ok(None));
        }
    };
    match parsed {
        // `unknown` is only ever a link's `previous`.
        Ok(Body::Link(link)) if link.state == LinkState::Unknown => Ok(Err(
            "a link with state Some(\"unknown\"); expected \"up\" or \"down\"".into(),
        )),
        Ok(body) => Ok(Ok(Some(body))),
        Err(BodyError::Missing(field)) => Ok(Err(match (kind, field) {
            ("alert", "state") => {
                "an alert with state None; expected \"firing\" or \"resolved\"".into()
            }
            ("link", "state") => "a link with state None; expected \"up\" or \"down\"".into(),
            _ => format!("a `{kind}` event without `{field}`"),
        })),
        Err(BodyError::Json(error)) => Err(error),
    }
}

/// The object after its `type`, as a map for the body struct: the fields
/// read before `type` first, then the rest of the line, with the envelope's
/// fields taken out wherever they are.
struct Rest<'a, A> {
    map: &'a mut A,
    envelope: &'a mut Envelope,
    early: std::vec::IntoIter<(String, serde_json::Value)>,
    /// The value of the buffered field whose key was handed out last.
    pending: Option<serde_json::Value>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Rest<'_, A> {
    type Error = BodyError<A::Error>;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        if let Some((key, value)) = self.early.next() {
            self.pending = Some(value);
            return seed.deserialize(StringDeserializer::new(key)).map(Some);
        }
        while let Some(Key(key)) = self.map.next_key().map_err(BodyError::Json)? {
            if self
                .envelope
                .take(&key, self.map)
                .map_err(BodyError::Json)?
            {
                continue;
            }
            if key == "type" {
                return Err(BodyError::Json(de::Error::duplicate_field("type")));
            }
            return match key {
                Cow::Borrowed(key) => seed.deserialize(BorrowedStrDeserializer::new(key)),
                Cow::Owned(key) => seed.deserialize(StringDeserializer::new(key)),
            }
            .map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        match self.pending.take() {
            Some(value) => seed
                .deserialize(value)
                .map_err(|e| BodyError::Json(de::Error::custom(e))),
            None => self.map.next_value_seed(seed).map_err(BodyError::Json),
        }
    }
}

/// A body's error: a required field it lacks, told apart from the rest.
#[derive(Debug)]
enum BodyError<E> {
    Missing(&'static str),
    Json(E),
}

impl<E: de::Error> BodyError<E> {
    fn json(self) -> E {
        match self {
            BodyError::Missing(field) => E::missing_field(field),
            BodyError::Json(error) => error,
        }
    }
}

impl<E: de::Error> de::Error for BodyError<E> {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        BodyError::Json(E::custom(msg))
    }

    fn missing_field(field: &'static str) -> Self {
        BodyError::Missing(field)
    }
}

impl<E: fmt::Display> fmt::Display for BodyError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Missing(field) => write!(f, "missing field `{field}`"),
            BodyError::Json(error) => error.fmt(f),
        }
    }
}

impl<E: std::error::Error> std::error::Error for BodyError<E> {}

#[cfg(test)]
mod tests {
    use super::*;
    use hopwatch_wire::event::{AlertState, InterfaceStatus, Severity, VrfAddresses};
    use std::time::Duration;

    #[test]
    fn parses_events_and_keeps_unknown_types() {
        let line = br#"{"v":1,"agent":"leaf1","boot":"b","seq":3,"ts":"2023-11-14T22:13:20.123Z","type":"link","interface":"swp1","state":"down","previous":"up","carrier_changes":2,"oper_state":"down","message":"swp1 went down"}"#;
        let incoming = parse_line(line).unwrap().unwrap();
        assert_eq!(incoming.ts_ms, 1_700_000_000_123);
        assert_eq!(incoming.kind, "link");
        assert!(matches!(incoming.body, Some(Body::Link(_))));
        assert_eq!(incoming.line.as_bytes(), line);
        let future = br#"{"v":2,"agent":"leaf1","boot":"b","seq":4,"ts":"2023-11-14T22:13:21Z","type":"qos","queue":3}"#;
        let incoming = parse_line(future).unwrap().unwrap();
        assert_eq!(incoming.kind, "qos");
        assert!(incoming.body.is_none());
        assert!(
            parse_line(br#"{"type":"trace_result","id":1,"result":{}}"#)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn reads_every_type_as_the_shared_event_type_does() {
        use hopwatch_wire::event::{Event, InterfaceAddress, Sequencer};
        let mut seq = Sequencer::new("leaf1", "b1");
        let at = std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let bodies = [
            Body::Alert(Alert {
                state: AlertState::Resolved,
                rule: "tx-errors".into(),
                severity: Severity::Warning,
                interface: "swp1".into(),
                expr: "increase(tx_errors[5s]) <= 3".into(),
                value: None,
                threshold: 3.0,
                message: "swp1 vanished".into(),
                labels: Default::default(),
                silenced: false,
                silence: None,
            }),
            Body::Link(Link {
                interface: "swp2".into(),
                state: LinkState::Up,
                previous: LinkState::Down,
                carrier_changes: 7,
                oper_state: "up".into(),
                message: "swp2 came up".into(),
                admin: None,
                reason: None,
            }),
            Body::Heartbeat(Heartbeat {
                uptime_s: 9,
                interfaces: vec![InterfaceStatus {
                    name: "swp1".into(),
                    state: LinkState::Down,
                }],
                addresses: vec![VrfAddresses {
                    vrf: "default".into(),
                    addresses: vec![InterfaceAddress {
                        interface: "swp1".into(),
                        address: "10.0.0.1/31".into(),
                    }],
                }],
                spool_depth: 1,
                events_dropped: 2,
                firing: 3,
            }),
            Body::Loss(Loss {
                count: 5,
                first_seq: 10,
                last_seq: 14,
                lost_boot: Some("b0".into()),
                message: "dropped 5".into(),
            }),
        ];
        for body in bodies {
            let event: Event = seq.stamp(at, body);
            let incoming = parse_line(event.to_json().as_bytes()).unwrap().unwrap();
            assert_eq!(incoming.body.as_ref(), Some(&event.body));
            assert_eq!(incoming.kind, event.kind());
            assert_eq!(
                (incoming.seq, incoming.ts_ms),
                (event.seq, 1_700_000_000_123)
            );
        }
    }

    #[test]
    fn refuses_what_is_not_an_event() {
        for bad in [
            &b"garbage"[..],
            br#"{"v":1}"#,
            br#"{"v":1,"agent":"a","boot":"b","seq":1,"ts":"yesterday","type":"qos"}"#,
            br#"{"v":1,"agent":"a","boot":"b","seq":0,"ts":"2023-11-14T22:13:21Z","type":"qos"}"#,
            br#"{"v":1,"agent":"a","boot":"b","seq":1,"ts":"2023-11-14T22:13:21Z","type":"link"}"#,
        ] {
            assert!(parse_line(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn heartbeats_are_stored_without_their_interface_list() {
        let line = br#"{"v":1,"agent":"leaf1","boot":"b","seq":1,"ts":"2023-11-14T22:13:20.123Z","type":"heartbeat","uptime_s":5,"interfaces":[{"name":"swp1","state":"up"}],"addresses":[],"spool_depth":0,"events_dropped":0,"firing":0}"#;
        let incoming = parse_line(line).unwrap().unwrap();
        let stored: serde_json::Value = serde_json::from_str(&incoming.line).unwrap();
        assert_eq!(stored["interfaces"], 1);
        assert_eq!(stored["seq"], 1);
        match incoming.body {
            Some(Body::Heartbeat(hb)) => assert_eq!(hb.interfaces.len(), 1),
            other => panic!("{other:?}"),
        }
    }

    /// Every field order parses to the event the shared type reads (the
    /// buffered way), whether `type` comes first, last or between.
    #[test]
    fn any_field_order_reads_as_the_shared_event_type_does() {
        use hopwatch_wire::event::Event;
        let line = r#"{"v":1,"agent":"leaf1","boot":"b","seq":3,"ts":"2023-11-14T22:13:20.123Z","type":"alert","state":"firing","rule":"r","severity":"critical","interface":"swp1","expr":"x > 3","value":7.0,"threshold":3.0,"message":"m"}"#;
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).unwrap();
        let fields: Vec<(String, serde_json::Value)> = object.into_iter().collect();
        let n = fields.len();
        // Rotations and reversals move `type` and the envelope everywhere.
        for shift in 0..n {
            for reverse in [false, true] {
                let mut order = fields.clone();
                order.rotate_left(shift);
                if reverse {
                    order.reverse();
                }
                let text = format!(
                    "{{{}}}",
                    order
                        .iter()
                        .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                let expected: Event = serde_json::from_str(&text).unwrap();
                let incoming = parse_line(text.as_bytes()).unwrap().unwrap();
                assert_eq!(incoming.body.as_ref(), Some(&expected.body), "{text}");
                assert_eq!(
                    (&incoming.agent, &incoming.boot, incoming.seq, &incoming.ts),
                    (&expected.agent, &expected.boot, expected.seq, &expected.ts),
                    "{text}"
                );
                assert_eq!(incoming.kind, "alert");
            }
        }
        // An unknown type with its fields before `type` is still stored.
        let future = br#"{"queue":3,"v":2,"agent":"a","boot":"b","seq":4,"ts":"2023-11-14T22:13:21Z","type":"qos","depth":{"x":[1]}}"#;
        let incoming = parse_line(future).unwrap().unwrap();
        assert_eq!((incoming.kind.as_str(), incoming.body), ("qos", None));
    }

    #[test]
    fn a_body_that_lacks_a_field_or_has_a_bad_state_is_named() {
        let envelope = r#""v":1,"agent":"a","boot":"b","seq":1,"ts":"2023-11-14T22:13:21Z""#;
        for (body, error) in [
            (
                r#""type":"link","state":"down","previous":"up","carrier_changes":1,"oper_state":"down","message":"m""#,
                "a `link` event without `interface`",
            ),
            (
                r#""type":"link","interface":"swp1","state":"unknown","previous":"up","carrier_changes":1,"oper_state":"down","message":"m""#,
                "a link with state Some(\"unknown\"); expected \"up\" or \"down\"",
            ),
            (
                r#""type":"alert","rule":"r","severity":"info","interface":"i","expr":"e","threshold":1,"message":"m""#,
                "an alert with state None; expected \"firing\" or \"resolved\"",
            ),
            (
                r#""type":"loss","count":1,"first_seq":1,"last_seq":1"#,
                "a `loss` event without `message`",
            ),
            (
                r#""type":"heartbeat","uptime_s":1,"interfaces":[],"addresses":[],"spool_depth":0,"events_dropped":0"#,
                "a `heartbeat` event without `firing`",
            ),
        ] {
            let line = format!("{{{envelope},{body}}}");
            assert_eq!(
                parse_line(line.as_bytes()).err().as_deref(),
                Some(error),
                "{line}"
            );
        }
        // Named by serde, with where: a missing envelope field, a repeated
        // one, and a repeated `type`.
        let missing = parse_line(
            br#"{"v":1,"agent":"a","boot":"b","ts":"2023-11-14T22:13:21Z","type":"qos"}"#,
        )
        .unwrap_err();
        assert!(missing.starts_with("missing field `seq`"), "{missing}");
        let twice = parse_line(format!(r#"{{{envelope},"type":"qos","agent":"c"}}"#).as_bytes())
            .unwrap_err();
        assert!(twice.starts_with("duplicate field `agent`"), "{twice}");
        let twice = parse_line(format!(r#"{{{envelope},"type":"qos","type":"qos"}}"#).as_bytes())
            .unwrap_err();
        assert!(twice.starts_with("duplicate field `type`"), "{twice}");
    }
}
