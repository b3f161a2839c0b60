//! The trace endpoints' JSON bodies, read and checked: every problem is a
//! 400 naming the field and the fix. Read by hand rather than by derive so
//! that the OVN seed's names are aliases of ours, a protocol may be a name
//! or a number, and each message says what to write instead.

use super::{ConnectivityQuery, FlowKind, FlowSpec, MAX_BRANCHES, MAX_HOP_LIMIT, TraceSettings};
use hopwatch_wire::trace::{PortRange, check_vrf_name, has_ports, proto_name};
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::time::Duration;

/// The widest source-port range a multi-path request may spread: each
/// switch answers every flow of it in one line, and 4096 flows keep that
/// line well under the collector's default 1 MiB `max_line`.
pub const MAX_SPORT_RANGE: u64 = 4096;
/// The most sources, or destinations, a connectivity matrix may list.
pub const MAX_ENDPOINTS: usize = 256;
/// The most cells (sources × destinations × flows) a connectivity matrix may
/// hold: 16 × 16 hosts over 16 protocol/port pairs.
pub const MAX_CELLS: usize = 4096;
/// The most protocol/port pairs a connectivity request may try per pair.
pub const MAX_FLOW_KINDS: usize = 64;
/// The longest per-hop timeout a request may ask for.
pub const MAX_HOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A bad request body: the field at fault and a sentence saying the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// The field as the request spelled it; empty for the body as a whole.
    pub field: String,
    pub message: String,
}

impl RequestError {
    fn new(field: &str, message: impl Into<String>) -> RequestError {
        RequestError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// `POST /api/v1/trace/flow`.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRequest {
    pub spec: FlowSpec,
    /// Also trace the return flow and compare the switches both cross.
    pub reverse: bool,
    pub bounds: TraceSettings,
}

/// `POST /api/v1/trace/multi-path`.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiPathRequest {
    pub spec: FlowSpec,
    /// Source ports to spread over the paths found.
    pub sports: Option<PortRange>,
    pub bounds: TraceSettings,
}

/// `POST /api/v1/trace/connectivity`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectivityRequest {
    pub query: ConnectivityQuery,
    pub bounds: TraceSettings,
}

// The flow's fields, each with the OVN seed's name as an alias.
const SRC: &[&str] = &["src", "source_ip"];
const DST: &[&str] = &["dst", "destination_ip"];
const PROTO: &[&str] = &["proto", "protocol"];
const SPORT: &[&str] = &["sport", "source_port_num"];
const DPORT: &[&str] = &["dport", "destination_port_num"];
const VRF: &[&str] = &["vrf"];
const FROM: &[&str] = &["from"];
const HOP_LIMIT: &[&str] = &["hop_limit", "max_hops"];
const HOP_TIMEOUT: &[&str] = &["hop_timeout_ms"];

/// Reads a `trace/flow` body.
pub fn flow(body: &[u8], settings: &TraceSettings) -> Result<FlowRequest, RequestError> {
    let mut fields = Fields::parse(body)?;
    let spec = fields.flow_spec()?;
    let reverse = fields.boolean(&["reverse"])?.unwrap_or(false);
    let bounds = fields.bounds(settings, false)?;
    fields.finish(&[
        SRC,
        DST,
        PROTO,
        SPORT,
        DPORT,
        VRF,
        FROM,
        &["reverse"],
        HOP_LIMIT,
        HOP_TIMEOUT,
    ])?;
    Ok(FlowRequest {
        spec,
        reverse,
        bounds,
    })
}

/// Reads a `trace/multi-path` body.
pub fn multi_path(body: &[u8], settings: &TraceSettings) -> Result<MultiPathRequest, RequestError> {
    let mut fields = Fields::parse(body)?;
    let spec = fields.flow_spec()?;
    let sports = fields.port_range(&["sport_range"])?;
    if let Some(range) = sports {
        if range.len() > MAX_SPORT_RANGE {
            return Err(RequestError::new(
                "sport_range",
                format!(
                    "`sport_range` {range} holds {} source ports, more than the {MAX_SPORT_RANGE} one request may spread; narrow it (for example {}-{})",
                    range.len(),
                    range.first,
                    u64::from(range.first) + MAX_SPORT_RANGE - 1
                ),
            ));
        }
        if !spec.proto.is_some_and(has_ports) {
            return Err(RequestError::new(
                "sport_range",
                "`sport_range` spreads flows by source port, which needs a protocol with ports: add \"proto\": \"tcp\" or \"udp\"",
            ));
        }
    }
    let bounds = fields.bounds(settings, true)?;
    fields.finish(&[
        SRC,
        DST,
        PROTO,
        SPORT,
        DPORT,
        VRF,
        FROM,
        &["sport_range"],
        HOP_LIMIT,
        HOP_TIMEOUT,
        &["max_branches"],
    ])?;
    Ok(MultiPathRequest {
        spec,
        sports,
        bounds,
    })
}

const SOURCES: &[&str] = &["sources", "source_ips"];
const DESTINATIONS: &[&str] = &["destinations", "destination_ips"];

/// Reads a `trace/connectivity` body: `sources` × `destinations`, for
/// `flows` (`[{proto, sport, dport}]`) or the seed's `protocols` × `ports`.
pub fn connectivity(
    body: &[u8],
    settings: &TraceSettings,
) -> Result<ConnectivityRequest, RequestError> {
    let mut fields = Fields::parse(body)?;
    let sources = fields.addresses(SOURCES)?;
    let destinations = fields.addresses(DESTINATIONS)?;
    let has = |list: &[IpAddr], v4: bool| list.iter().any(|a| a.is_ipv4() == v4);
    let v4 = has(&sources, true) && has(&destinations, true);
    let v6 = has(&sources, false) && has(&destinations, false);
    if !v4 && !v6 {
        return Err(RequestError::new(
            "destinations",
            "`sources` and `destinations` share no address family, so no pair can be traced; give IPv4 with IPv4 and IPv6 with IPv6",
        ));
    }
    let flows = fields.flow_kinds()?;
    let vrf = fields.vrf()?;
    let cells = sources.len() * destinations.len() * flows.len();
    if cells > MAX_CELLS {
        return Err(RequestError::new(
            "destinations",
            format!(
                "{} sources × {} destinations × {} flows is {cells} traces, more than the {MAX_CELLS} one matrix may hold; split it into smaller requests",
                sources.len(),
                destinations.len(),
                flows.len()
            ),
        ));
    }
    let bounds = fields.bounds(settings, false)?;
    fields.finish(&[
        SOURCES,
        DESTINATIONS,
        &["flows"],
        &["protocols"],
        &["ports"],
        VRF,
        HOP_LIMIT,
        HOP_TIMEOUT,
    ])?;
    Ok(ConnectivityRequest {
        query: ConnectivityQuery {
            sources,
            destinations,
            flows,
            vrf,
        },
        bounds,
    })
}

/// A protocol as a name (`tcp`, `udp`, `icmp`, `ipv6-icmp`, …, as
/// `/etc/protocols` spells them) or a number from 0 to 255.
pub fn parse_proto(text: &str) -> Result<u8, String> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u8>() {
        return Ok(n);
    }
    let lower = text.to_ascii_lowercase();
    if matches!(lower.as_str(), "icmpv6" | "icmp6") {
        return Ok(58);
    }
    (0..=255u8)
        .find(|&p| proto_name(p) == Some(lower.as_str()))
        .ok_or_else(|| {
            format!(
                "{text:?} is not a protocol; give a name (tcp, udp, icmp, ipv6-icmp, sctp, gre, …) or a number from 0 to 255"
            )
        })
}

/// The body's fields, taken one by one so that what is left over is named
/// as unknown.
struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    fn parse(body: &[u8]) -> Result<Fields, RequestError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            RequestError::new(
                "",
                format!("the body is not JSON ({e}); send a JSON object such as {{\"src\": \"10.0.0.1\", \"dst\": \"10.2.0.9\"}}"),
            )
        })?;
        match value {
            Value::Object(map) => Ok(Fields { map }),
            other => Err(RequestError::new(
                "",
                format!(
                    "the body is {}, not a JSON object; send {{\"src\": …, \"dst\": …}}",
                    kind(&other)
                ),
            )),
        }
    }

    /// The value under one of `names` (a field and its aliases) and the
    /// name it was given by; both given is an error.
    fn take(&mut self, names: &[&str]) -> Result<Option<(String, Value)>, RequestError> {
        let present: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| self.map.contains_key(*n))
            .collect();
        if present.len() > 1 {
            return Err(RequestError::new(
                present[1],
                format!(
                    "`{}` and `{}` name the same field; give it once",
                    present[0], present[1]
                ),
            ));
        }
        Ok(present.first().map(|name| {
            let value = self.map.remove(*name).expect("present");
            (name.to_string(), value)
        }))
        .map(|taken| taken.filter(|(_, v)| !v.is_null()))
    }

    fn address(&mut self, names: &[&str], required: bool) -> Result<Option<IpAddr>, RequestError> {
        match self.take(names)? {
            None if required => Err(RequestError::new(
                names[0],
                format!(
                    "`{}` is missing; give the flow's {} address, like \"{}\": \"10.2.0.9\"",
                    names[0],
                    if names[0] == "src" {
                        "source"
                    } else {
                        "destination"
                    },
                    names[0]
                ),
            )),
            None => Ok(None),
            Some((name, value)) => address(&name, &value).map(Some),
        }
    }

    fn flow_spec(&mut self) -> Result<FlowSpec, RequestError> {
        let src = self.address(SRC, true)?.expect("required");
        let dst = self.address(DST, true)?.expect("required");
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(RequestError::new(
                "dst",
                format!(
                    "`src` {src} and `dst` {dst} are of different address families; give both as IPv4 or both as IPv6"
                ),
            ));
        }
        let proto = self.proto()?;
        let sport = self.port(SPORT)?;
        let dport = self.port(DPORT)?;
        check_ports(
            proto,
            sport.is_some() || dport.is_some(),
            if sport.is_some() { "sport" } else { "dport" },
        )?;
        let vrf = self.vrf()?;
        let from = match self.take(FROM)? {
            None => None,
            Some((_, Value::String(agent))) if !agent.trim().is_empty() => Some(agent),
            Some((name, other)) => {
                return Err(RequestError::new(
                    &name,
                    format!(
                        "`{name}` is {}; give the name of the agent on the first switch, like \"leaf1\", or leave it out to start where `src` is attached",
                        kind(&other)
                    ),
                ));
            }
        };
        Ok(FlowSpec {
            src,
            dst,
            proto,
            sport,
            dport,
            vrf,
            from,
        })
    }

    fn proto(&mut self) -> Result<Option<u8>, RequestError> {
        match self.take(PROTO)? {
            None => Ok(None),
            Some((name, value)) => proto_value(&name, &value).map(Some),
        }
    }

    fn port(&mut self, names: &[&str]) -> Result<Option<u16>, RequestError> {
        match self.take(names)? {
            None => Ok(None),
            Some((name, value)) => port(&name, &value).map(Some),
        }
    }

    fn vrf(&mut self) -> Result<String, RequestError> {
        match self.take(VRF)? {
            None => Ok(hopwatch_wire::trace::DEFAULT_VRF.to_string()),
            Some((name, Value::String(vrf))) => {
                check_vrf_name(&vrf)
                    .map_err(|e| RequestError::new(&name, format!("`{name}`: {e}")))?;
                Ok(vrf)
            }
            Some((name, other)) => Err(RequestError::new(
                &name,
                format!(
                    "`{name}` is {}; give a VRF name like \"default\" or \"management\"",
                    kind(&other)
                ),
            )),
        }
    }

    fn boolean(&mut self, names: &[&str]) -> Result<Option<bool>, RequestError> {
        match self.take(names)? {
            None => Ok(None),
            Some((_, Value::Bool(b))) => Ok(Some(b)),
            Some((name, other)) => Err(RequestError::new(
                &name,
                format!("`{name}` is {}; give true or false", kind(&other)),
            )),
        }
    }

    fn whole(
        &mut self,
        names: &[&str],
        range: (u64, u64),
        what: &str,
    ) -> Result<Option<u64>, RequestError> {
        match self.take(names)? {
            None => Ok(None),
            Some((name, value)) => match value.as_u64() {
                Some(n) if (range.0..=range.1).contains(&n) => Ok(Some(n)),
                _ => Err(RequestError::new(
                    &name,
                    format!(
                        "`{name}` is {value}; give a whole number from {} to {} ({what})",
                        range.0, range.1
                    ),
                )),
            },
        }
    }

    /// The request's bounds: the configured ones, each overridable within
    /// its hard limit.
    fn bounds(
        &mut self,
        settings: &TraceSettings,
        branches: bool,
    ) -> Result<TraceSettings, RequestError> {
        let mut bounds = *settings;
        if let Some(n) = self.whole(
            HOP_LIMIT,
            (1, MAX_HOP_LIMIT as u64),
            "switches a trace follows at most",
        )? {
            bounds.hop_limit = n as usize;
        }
        let most = MAX_HOP_TIMEOUT.as_millis() as u64;
        if let Some(ms) = self.whole(
            HOP_TIMEOUT,
            (1, most),
            "milliseconds each switch may take to answer",
        )? {
            bounds.hop_timeout = Duration::from_millis(ms);
        }
        if branches
            && let Some(n) = self.whole(
                &["max_branches"],
                (1, MAX_BRANCHES as u64),
                "switches a multi-path tree holds at most",
            )?
        {
            bounds.max_branches = n as usize;
        }
        Ok(bounds)
    }

    fn port_range(&mut self, names: &[&str]) -> Result<Option<PortRange>, RequestError> {
        let Some((name, value)) = self.take(names)? else {
            return Ok(None);
        };
        let bad = |why: String| {
            RequestError::new(
                &name,
                format!(
                    "`{name}` {why}; give \"A-B\" or {{\"first\": A, \"last\": B}} with ports A ≤ B"
                ),
            )
        };
        match &value {
            Value::String(text) => text
                .parse::<PortRange>()
                .map(Some)
                .map_err(|e| bad(format!("{text:?}: {e}"))),
            Value::Object(_) => serde_json::from_value::<PortRange>(value.clone())
                .map(Some)
                .map_err(|e| bad(format!("{value}: {e}"))),
            other => Err(bad(format!("is {}", kind(other)))),
        }
    }

    fn addresses(&mut self, names: &[&str]) -> Result<Vec<IpAddr>, RequestError> {
        let Some((name, value)) = self.take(names)? else {
            return Err(RequestError::new(
                names[0],
                format!(
                    "`{}` is missing; give a list of addresses, like [\"10.1.0.10\", \"10.2.0.10\"]",
                    names[0]
                ),
            ));
        };
        let Value::Array(items) = value else {
            return Err(RequestError::new(
                &name,
                format!(
                    "`{name}` is {}; give a list of addresses, like [\"10.1.0.10\"]",
                    kind(&value)
                ),
            ));
        };
        if items.is_empty() || items.len() > MAX_ENDPOINTS {
            return Err(RequestError::new(
                &name,
                format!(
                    "`{name}` lists {} addresses; give 1 to {MAX_ENDPOINTS}",
                    items.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let address = address(&format!("{name}[{i}]"), item)?;
            if !out.contains(&address) {
                out.push(address);
            }
        }
        Ok(out)
    }

    /// `flows: [{proto, sport, dport}]`, or `protocols` × `ports` (a port
    /// applies to each protocol that has ports; a protocol without ports
    /// is tried once), or one flow with no protocol.
    fn flow_kinds(&mut self) -> Result<Vec<FlowKind>, RequestError> {
        let flows = self.take(&["flows"])?;
        let protocols = self.take(&["protocols"])?;
        let ports = self.take(&["ports"])?;
        let kinds = match (flows, protocols, ports) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(RequestError::new(
                    "flows",
                    "give either `flows` or `protocols` and `ports`, not both",
                ));
            }
            (Some((name, value)), None, None) => flow_list(&name, value)?,
            (None, protocols, ports) => {
                let protocols = match protocols {
                    None => Vec::new(),
                    Some((name, Value::Array(items))) => items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| proto_value(&format!("{name}[{i}]"), v))
                        .collect::<Result<Vec<u8>, _>>()?,
                    Some((name, other)) => {
                        return Err(RequestError::new(
                            &name,
                            format!(
                                "`{name}` is {}; give a list like [\"tcp\", \"icmp\"]",
                                kind(&other)
                            ),
                        ));
                    }
                };
                let ports = match ports {
                    None => Vec::new(),
                    Some((name, Value::Array(items))) => items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| port(&format!("{name}[{i}]"), v))
                        .collect::<Result<Vec<u16>, _>>()?,
                    Some((name, other)) => {
                        return Err(RequestError::new(
                            &name,
                            format!("`{name}` is {}; give a list like [22, 443]", kind(&other)),
                        ));
                    }
                };
                if !ports.is_empty() && !protocols.iter().copied().any(has_ports) {
                    return Err(RequestError::new(
                        "ports",
                        "`ports` are destination ports, which need a protocol with ports: add \"protocols\": [\"tcp\"] (or \"udp\")",
                    ));
                }
                let mut kinds = Vec::new();
                for &proto in &protocols {
                    if has_ports(proto) && !ports.is_empty() {
                        kinds.extend(ports.iter().map(|&p| FlowKind {
                            proto: Some(proto),
                            sport: None,
                            dport: Some(p),
                        }));
                    } else {
                        kinds.push(FlowKind {
                            proto: Some(proto),
                            sport: None,
                            dport: None,
                        });
                    }
                }
                if kinds.is_empty() {
                    kinds.push(FlowKind {
                        proto: None,
                        sport: None,
                        dport: None,
                    });
                }
                kinds
            }
        };
        let mut unique: Vec<FlowKind> = Vec::with_capacity(kinds.len());
        for k in kinds {
            if !unique.contains(&k) {
                unique.push(k);
            }
        }
        if unique.len() > MAX_FLOW_KINDS {
            return Err(RequestError::new(
                "flows",
                format!(
                    "{} protocol/port pairs is more than the {MAX_FLOW_KINDS} a matrix may try; list fewer",
                    unique.len()
                ),
            ));
        }
        Ok(unique)
    }

    /// Anything not taken is a field this endpoint does not know.
    fn finish(self, known: &[&[&str]]) -> Result<(), RequestError> {
        if let Some(name) = self.map.keys().next() {
            let names: Vec<&str> = known.iter().map(|aliases| aliases[0]).collect();
            let hint = known
                .iter()
                .flat_map(|aliases| aliases.iter())
                .find(|k| close(name, k))
                .map(|k| format!("did you mean `{k}`? "))
                .unwrap_or_default();
            return Err(RequestError::new(
                name,
                format!(
                    "unknown field `{name}`; {hint}this endpoint takes {}",
                    names.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

fn flow_list(name: &str, value: Value) -> Result<Vec<FlowKind>, RequestError> {
    let Value::Array(items) = value else {
        return Err(RequestError::new(
            name,
            format!(
                "`{name}` is {}; give a list like [{{\"proto\": \"tcp\", \"dport\": 443}}]",
                kind(&value)
            ),
        ));
    };
    let mut kinds = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("{name}[{i}]");
        let Value::Object(map) = item else {
            return Err(RequestError::new(
                &at,
                format!(
                    "`{at}` is {}; give {{\"proto\": \"tcp\", \"dport\": 443}}",
                    kind(&item)
                ),
            ));
        };
        let mut fields = Fields { map };
        let prefixed = |e: RequestError| {
            RequestError::new(&format!("{at}.{}", e.field), format!("{at}: {}", e.message))
        };
        let proto = fields.proto().map_err(prefixed)?;
        let sport = fields.port(SPORT).map_err(prefixed)?;
        let dport = fields.port(DPORT).map_err(prefixed)?;
        check_ports(proto, sport.is_some() || dport.is_some(), "dport").map_err(prefixed)?;
        fields.finish(&[PROTO, SPORT, DPORT]).map_err(prefixed)?;
        kinds.push(FlowKind {
            proto,
            sport,
            dport,
        });
    }
    if kinds.is_empty() {
        return Err(RequestError::new(
            name,
            format!(
                "`{name}` is empty; give at least one flow, or leave it out to trace without a protocol"
            ),
        ));
    }
    Ok(kinds)
}

fn check_ports(proto: Option<u8>, ports: bool, field: &str) -> Result<(), RequestError> {
    if !ports || proto.is_some_and(has_ports) {
        return Ok(());
    }
    let message = match proto {
        None => "ports take part in the lookup only with a protocol that has them: add \"proto\": \"tcp\" or \"udp\"".to_string(),
        Some(p) => format!(
            "protocol {} has no ports; drop the ports or give \"proto\": \"tcp\" or \"udp\"",
            proto_name(p).map_or_else(|| p.to_string(), str::to_string)
        ),
    };
    Err(RequestError::new(field, message))
}

fn address(name: &str, value: &Value) -> Result<IpAddr, RequestError> {
    match value {
        Value::String(text) => text.trim().parse::<IpAddr>().map_err(|_| {
            RequestError::new(
                name,
                format!("`{name}` {text:?} is not an IP address; give one like \"10.2.0.9\" or \"fd00::9\" (no prefix length, no host name)"),
            )
        }),
        other => Err(RequestError::new(
            name,
            format!("`{name}` is {}; give an IP address as a string, like \"10.2.0.9\"", kind(other)),
        )),
    }
}

fn proto_value(name: &str, value: &Value) -> Result<u8, RequestError> {
    match value {
        Value::String(text) => parse_proto(text).map_err(|e| RequestError::new(name, format!("`{name}`: {e}"))),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| RequestError::new(name, format!("`{name}` {n} is not a protocol number; give 0 to 255 or a name like \"tcp\""))),
        other => Err(RequestError::new(
            name,
            format!("`{name}` is {}; give a name like \"tcp\" or a number like 6", kind(other)),
        )),
    }
}

fn port(name: &str, value: &Value) -> Result<u16, RequestError> {
    let n = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(text) => text.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.and_then(|n| u16::try_from(n).ok()).ok_or_else(|| {
        RequestError::new(
            name,
            format!("`{name}` is {value}; give a port from 0 to 65535"),
        )
    })
}

/// What a JSON value is, for messages.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Whether `a` is a likely misspelling of `b`: one edit apart, or the same
/// with `_` and `-` confused.
fn close(a: &str, b: &str) -> bool {
    if a.replace('-', "_") == b {
        return true;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    // Levenshtein distance ≤ 1 (or one swap of neighbours).
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = row;
    }
    prev[b.len()] <= 1
        || (a.len() == b.len() && {
            let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            diff.len() == 2
                && diff[1] == diff[0] + 1
                && a[diff[0]] == b[diff[1]]
                && a[diff[1]] == b[diff[0]]
        })
}

#[cfg(test)]
mod tests;
