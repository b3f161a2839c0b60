//! What the collector asks an agent to trace and what the agent answers,
//! each tagged with its `kind`: a query's meaning is never guessed from
//! which keys it happens to have, and a kind this build does not know is
//! refused by name instead of being read as another.

use super::{FlowQuery, Paths, PathsQuery, Trace};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

/// The kinds a [`TraceQuery`] can name, as errors list them.
const KINDS: &str = "\"flow\", \"paths\" and \"hop\"";

/// A trace query: `{"kind": "flow", "dst": "10.1.0.9", …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceQuery {
    /// Where one flow goes through the switch.
    Flow(FlowQuery),
    /// How the flows of a port range or sample spread over the members of
    /// the route to one destination.
    Paths(PathsQuery),
    /// One hop of a fabric trace: the flow as it arrives on an interface of
    /// this switch, forwarded as a packet arriving there would be.
    Hop(HopQuery),
}

/// One hop of a fabric trace: `{"kind": "hop", "flow": {…}, "ingress": "Eth1-5"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HopQuery {
    /// The flow, as the previous hop forwarded it.
    pub flow: FlowQuery,
    /// The interface of this switch the flow arrives on.
    pub ingress: String,
}

impl HopQuery {
    /// The flow as this switch forwards it: arriving on `ingress`. A flow
    /// that names another ingress of its own contradicts the hop.
    pub fn arriving(&self) -> Result<FlowQuery, super::TraceError> {
        if let Some(iif) = &self.flow.iif
            && *iif != self.ingress
        {
            return Err(super::TraceError::InvalidQuery(format!(
                "the hop arrives on {} but its flow names iif {iif}; give the ingress once, as `ingress`",
                self.ingress
            )));
        }
        Ok(FlowQuery {
            iif: Some(self.ingress.clone()),
            ..self.flow.clone()
        })
    }
}

impl TraceQuery {
    /// Reads a query from JSON: the `kind` first, then the rest as that
    /// kind's query, so an unknown kind is named as such rather than
    /// reported as a missing or unexpected field of another. Not generic,
    /// so the agent carries one copy of it.
    pub fn from_value(value: serde_json::Value) -> Result<TraceQuery, String> {
        let serde_json::Value::Object(mut fields) = value else {
            return Err(format!(
                "a trace query is a JSON object with a \"kind\" ({KINDS}), not {value}"
            ));
        };
        let kind = match fields.remove("kind") {
            Some(serde_json::Value::String(kind)) => kind,
            Some(other) => {
                return Err(format!(
                    "the trace query's \"kind\" is {other}; give one of {KINDS}"
                ));
            }
            None => {
                return Err(format!(
                    "the trace query has no \"kind\"; give one of {KINDS}"
                ));
            }
        };
        let rest = serde_json::Value::Object(fields);
        let query = match kind.as_str() {
            "flow" => serde_json::from_value(rest).map(TraceQuery::Flow),
            "paths" => serde_json::from_value(rest).map(TraceQuery::Paths),
            "hop" => serde_json::from_value(rest).map(TraceQuery::Hop),
            other => {
                return Err(format!(
                    "unknown trace query kind {other:?}; this agent answers {KINDS}"
                ));
            }
        };
        query.map_err(|error| format!("{kind} query: {error}"))
    }
}

impl<'de> Deserialize<'de> for TraceQuery {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TraceQuery, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        TraceQuery::from_value(value).map_err(D::Error::custom)
    }
}

/// The answer to a [`TraceQuery`], of the query's kind, or why there is none:
/// `{"kind": "flow", "request": {…}, "hops": […], …}`, `{"kind": "error", "error": "…"}`.
// A trace and a spread are answers, not exceptions: boxing them would buy
// nothing for a value sent once.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceAnswer {
    Flow(Trace),
    Paths(Paths),
    Hop(Trace),
    /// The query could not be read or answered.
    Error {
        error: String,
    },
}

impl TraceAnswer {
    pub fn error(error: impl std::fmt::Display) -> TraceAnswer {
        TraceAnswer::Error {
            error: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Action, DropReason, Hop, PortRange, SourcePorts, Step, Verdict};
    use super::*;
    use serde_json::json;

    fn flow() -> FlowQuery {
        FlowQuery {
            src: Some("10.0.0.2".parse().unwrap()),
            proto: Some(6),
            sport: Some(1234),
            dport: Some(80),
            ..FlowQuery::new("10.9.1.1".parse().unwrap())
        }
    }

    fn trace(request: FlowQuery) -> Trace {
        Trace {
            request,
            success: true,
            reaches_destination: false,
            next_hop: None,
            egress_interface: None,
            ingress_interface: Some("Eth1-5".into()),
            ingress_inferred: false,
            hops: vec![Hop {
                index: 0,
                component: "leaf1/default".into(),
                action: Action::Drop,
                description: "no route".into(),
                step: Step::Drop {
                    reason: DropReason::NoRoute,
                    route: None,
                    setting: None,
                    interface: None,
                    neighbor: None,
                    kernel_answer: Some("Network is unreachable".into()),
                },
            }],
            summary: "dropped".into(),
            switch: "leaf1".into(),
            backend: "kernel".into(),
            load_share: None,
            elapsed_us: 12,
            hash: None,
        }
    }

    fn paths_query() -> PathsQuery {
        PathsQuery::new(
            "10.9.1.1".parse().unwrap(),
            17,
            SourcePorts::Range(PortRange {
                first: 1000,
                last: 1003,
            }),
        )
    }

    fn round_trip<T: Serialize + for<'a> Deserialize<'a> + PartialEq + std::fmt::Debug>(
        value: &T,
        kind: &str,
    ) {
        let json = serde_json::to_value(value).unwrap();
        assert_eq!(json["kind"], kind, "{json}");
        let back: T = serde_json::from_value(json).unwrap();
        assert_eq!(&back, value);
    }

    #[test]
    fn every_query_kind_round_trips_with_its_tag() {
        round_trip(&TraceQuery::Flow(flow()), "flow");
        round_trip(&TraceQuery::Paths(paths_query()), "paths");
        let hop = TraceQuery::Hop(HopQuery {
            flow: flow(),
            ingress: "Eth1-5".into(),
        });
        round_trip(&hop, "hop");
        assert_eq!(
            serde_json::to_value(&hop).unwrap()["ingress"],
            json!("Eth1-5")
        );
        // The flow's own fields sit beside the tag, as the agent reads them.
        let line = serde_json::to_string(&TraceQuery::Flow(FlowQuery::new(
            "10.0.0.1".parse().unwrap(),
        )))
        .unwrap();
        assert_eq!(
            line,
            r#"{"kind":"flow","dst":"10.0.0.1","src":null,"iif":null,"proto":null,"sport":null,"dport":null,"vrf":"default"}"#
        );
    }

    #[test]
    fn every_answer_kind_round_trips_with_its_tag() {
        round_trip(&TraceAnswer::Flow(trace(flow())), "flow");
        round_trip(&TraceAnswer::Hop(trace(flow())), "hop");
        let paths = Paths {
            request: paths_query(),
            flows: 4,
            members: Vec::new(),
            verdict: Verdict {
                even: true,
                chi_square: 0.0,
                degrees_of_freedom: 0,
                p_value: 1.0,
                text: "one member".into(),
            },
            unrouted: 0,
            route: None,
            load_share: None,
            ingress_interface: None,
            ingress_inferred: false,
            note: None,
            switch: "leaf1".into(),
            elapsed_us: 3,
            flows_detail: None,
            hash: None,
            dropped: 0,
            drop: None,
        };
        round_trip(&TraceAnswer::Paths(paths), "paths");
        round_trip(&TraceAnswer::error("no route"), "error");
        assert_eq!(
            serde_json::to_string(&TraceAnswer::error("busy")).unwrap(),
            r#"{"kind":"error","error":"busy"}"#
        );
    }

    #[test]
    fn an_unknown_kind_is_named_not_guessed() {
        let error =
            serde_json::from_value::<TraceQuery>(json!({"kind": "bogus", "dst": "10.0.0.1"}))
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("unknown trace query kind \"bogus\""),
            "{error}"
        );
        assert!(error.contains("\"flow\", \"paths\" and \"hop\""), "{error}");
        // The keys of a paths query do not make one without its kind.
        let error = serde_json::from_value::<TraceQuery>(
            json!({"dst": "10.0.0.1", "sport_range": {"first": 1, "last": 2}}),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("has no \"kind\""), "{error}");
        let error = serde_json::from_value::<TraceQuery>(json!({"kind": 7}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"kind\" is 7"), "{error}");
        let error = serde_json::from_value::<TraceQuery>(json!("flow"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("JSON object"), "{error}");
        // A known kind with a bad field says which kind it was read as.
        let error = serde_json::from_value::<TraceQuery>(json!({"kind": "flow", "dst": "nowhere"}))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("flow query: "), "{error}");
        let error = serde_json::from_value::<TraceQuery>(
            json!({"kind": "flow", "dst": "10.0.0.1", "ingress": "x"}),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown field `ingress`"), "{error}");
    }

    #[test]
    fn a_hop_arrives_on_its_ingress() {
        let hop = HopQuery {
            flow: flow(),
            ingress: "Eth1-5".into(),
        };
        assert_eq!(hop.arriving().unwrap().iif.as_deref(), Some("Eth1-5"));
        let contradicting = HopQuery {
            flow: FlowQuery {
                iif: Some("Eth1-6".into()),
                ..flow()
            },
            ..hop
        };
        let error = contradicting.arriving().unwrap_err();
        assert!(error.is_usage());
        assert!(error.to_string().contains("Eth1-6"), "{error}");
    }
}
