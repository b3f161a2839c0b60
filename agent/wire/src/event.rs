//! The events hopwatch emits, one JSON object per line. These types are the
//! wire format the agent and the collector share; change them only together
//! with [`SCHEMA_VERSION`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// The `v` field of every event.
pub const SCHEMA_VERSION: u32 = 1;

/// One event. The envelope fields are common to every type; `body` carries the
/// `type` tag and the fields of that type, flattened into the same object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub v: u32,
    /// The agent's name (by default the switch's hostname).
    pub agent: String,
    /// A fresh identifier at every agent start.
    pub boot: String,
    /// Strictly increasing within one boot, starting at 1.
    pub seq: u64,
    /// RFC 3339 with milliseconds, UTC.
    pub ts: String,
    #[serde(flatten)]
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    Alert(Alert),
    Link(Link),
    Heartbeat(Heartbeat),
    Loss(Loss),
}

/// How urgent a rule is; maps onto syslog severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Resolved,
}

/// A rule started or stopped holding on one interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub state: AlertState,
    pub rule: String,
    pub severity: Severity,
    pub interface: String,
    /// The rule's expression as written (`when` when firing, the expression
    /// that cleared it when resolved).
    pub expr: String,
    /// The left-hand side's value when the state changed; null when the
    /// alert resolved because the interface vanished.
    pub value: Option<f64>,
    pub threshold: f64,
    /// A sentence a person can read.
    pub message: String,
    /// The rule's `labels` (`team = "dc-ops"`), carried to syslog's
    /// structured data, the collector and what it forwards to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// A silence covered the alert when its state changed: it went to the
    /// collector, not to syslog or stdout's human form.
    #[serde(default, skip_serializing_if = "is_false")]
    pub silenced: bool,
    /// The id of that silence (set exactly when `silenced` is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Up,
    Down,
    /// Not known: the `previous` of a link's first reported state (at agent
    /// start, or when the interface appears). Collectors older than this
    /// value refuse such an event as malformed.
    Unknown,
}

impl LinkState {
    pub fn from_up(up: bool) -> LinkState {
        if up { LinkState::Up } else { LinkState::Down }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Up => "up",
            LinkState::Down => "down",
            LinkState::Unknown => "unknown",
        }
    }
}

/// An interface changed operational state, or its first state is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub interface: String,
    pub state: LinkState,
    /// `unknown` for the first state reported for the interface: the agent
    /// started (or the interface appeared) and this is where it stands.
    pub previous: LinkState,
    pub carrier_changes: u64,
    /// The kernel's operational state word (`up`, `down`, `lowerlayerdown`, …).
    pub oper_state: String,
    pub message: String,
    /// Whether the port is enabled, as the switch's own configuration says
    /// (NX-OS: the DME's `l1PhysIf.adminSt`); absent when not known, which
    /// is always on Linux.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminState>,
    /// Why the link is down, in the switch's words: `administratively down`
    /// for a shutdown, else what the switch reports (NX-OS: the DME's
    /// `ethpmPhysIf.operStQual`, such as `link-failure`); absent when not
    /// known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A port's administrative state: `down` is an operator's `shutdown`, a
/// planned outage rather than a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminState {
    Up,
    Down,
}

impl AdminState {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Up => "up",
            AdminState::Down => "down",
        }
    }
}

impl Link {
    /// Down because an operator shut the port: the switch said so.
    pub fn is_admin_down(&self) -> bool {
        self.state == LinkState::Down && self.admin == Some(AdminState::Down)
    }
}

/// The agent is alive; what it sees right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub uptime_s: u64,
    pub interfaces: Vec<InterfaceStatus>,
    /// The switch's interface addresses, per VRF.
    pub addresses: Vec<VrfAddresses>,
    /// Events waiting in the delivery spool.
    pub spool_depth: u64,
    /// Events no output could keep, since the agent started.
    pub events_dropped: u64,
    pub firing: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    pub name: String,
    pub state: LinkState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrfAddresses {
    pub vrf: String,
    pub addresses: Vec<InterfaceAddress>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceAddress {
    pub interface: String,
    /// `address/prefix-length`.
    pub address: String,
}

/// Events were dropped before delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Loss {
    pub count: u64,
    /// The seqs lost, within `lost_boot`.
    pub first_seq: u64,
    pub last_seq: u64,
    /// The boot the lost events belong to, which is an earlier one when a
    /// restarted agent's spool had to let them go; absent from agents that
    /// predate the field, whose losses are of the loss event's own boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_boot: Option<String>,
    pub message: String,
}

impl Event {
    /// The severity used for syslog and for display.
    pub fn severity(&self) -> Severity {
        match &self.body {
            Body::Alert(a) => match a.state {
                AlertState::Firing => a.severity,
                AlertState::Resolved => Severity::Info,
            },
            Body::Link(l) => match l.state {
                LinkState::Down => Severity::Warning,
                LinkState::Up | LinkState::Unknown => Severity::Info,
            },
            Body::Heartbeat(_) => Severity::Info,
            Body::Loss(_) => Severity::Warning,
        }
    }

    /// The event type's name, as in the `type` field.
    pub fn kind(&self) -> &'static str {
        match &self.body {
            Body::Alert(_) => "alert",
            Body::Link(_) => "link",
            Body::Heartbeat(_) => "heartbeat",
            Body::Loss(_) => "loss",
        }
    }

    /// The sentence a person reads in syslog or a terminal.
    pub fn message(&self) -> String {
        match &self.body {
            Body::Alert(a) => a.message.clone(),
            Body::Link(l) => l.message.clone(),
            Body::Loss(l) => l.message.clone(),
            Body::Heartbeat(h) => {
                let up = h
                    .interfaces
                    .iter()
                    .filter(|i| i.state == LinkState::Up)
                    .count();
                format!(
                    "heartbeat: {} interfaces, {} up, {} alerts firing, up {}s",
                    h.interfaces.len(),
                    up,
                    h.firing,
                    h.uptime_s
                )
            }
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events always serialize")
    }
}

/// Formats a wall-clock time as RFC 3339 with milliseconds, as in `ts`.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// Stamps bodies with the envelope: one per agent boot, so `seq` is
/// strictly increasing for that boot.
#[derive(Debug)]
pub struct Sequencer {
    agent: String,
    boot: String,
    next: u64,
}

impl Sequencer {
    pub fn new(agent: impl Into<String>, boot: impl Into<String>) -> Sequencer {
        Sequencer {
            agent: agent.into(),
            boot: boot.into(),
            next: 1,
        }
    }

    pub fn boot(&self) -> &str {
        &self.boot
    }

    pub fn agent(&self) -> &str {
        &self.agent
    }

    pub fn set_agent(&mut self, agent: impl Into<String>) {
        self.agent = agent.into();
    }

    /// The last `seq` handed out (0 before the first event).
    pub fn last_seq(&self) -> u64 {
        self.next - 1
    }

    pub fn stamp(&mut self, at: SystemTime, body: Body) -> Event {
        let seq = self.next;
        self.next += 1;
        Event {
            v: SCHEMA_VERSION,
            agent: self.agent.clone(),
            boot: self.boot.clone(),
            seq,
            ts: timestamp(at),
            body,
        }
    }
}

/// A new boot identifier: the kernel's random UUID, or failing that one made
/// from the clock and the process id.
pub fn new_boot_id() -> String {
    if let Ok(uuid) = std::fs::read_to_string("/proc/sys/kernel/random/uuid") {
        return uuid.trim().to_string();
    }
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{:032x}", nanos ^ (u128::from(std::process::id()) << 96))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn alert_serializes_flat_with_type_tag() {
        let mut seq = Sequencer::new("leaf1", "b1");
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let event = seq.stamp(
            at,
            Body::Alert(Alert {
                state: AlertState::Firing,
                rule: "tx-errors".into(),
                severity: Severity::Critical,
                interface: "Eth1-1".into(),
                expr: "increase(tx_errors[5s]) > 3".into(),
                value: Some(7.0),
                threshold: 3.0,
                message: "Eth1-1 tx_errors increased by 7 in 5s (threshold 3)".into(),
                labels: Default::default(),
                silenced: false,
                silence: None,
            }),
        );
        let json: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
        assert_eq!(json["type"], "alert");
        assert_eq!(json["v"], 1);
        assert_eq!(json["seq"], 1);
        assert_eq!(json["ts"], "2023-11-14T22:13:20.123Z");
        assert_eq!(json["state"], "firing");
        assert_eq!(json["severity"], "critical");
        assert_eq!(json["value"], 7.0);
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
        assert_eq!(seq.stamp(at, back.body).seq, 2);
    }

    #[test]
    fn link_down_is_a_warning() {
        let mut seq = Sequencer::new("a", "b");
        let e = seq.stamp(
            SystemTime::now(),
            Body::Link(Link {
                interface: "swp1".into(),
                state: LinkState::Down,
                previous: LinkState::Up,
                carrier_changes: 3,
                oper_state: "down".into(),
                message: String::new(),
                admin: None,
                reason: None,
            }),
        );
        assert_eq!(e.severity(), Severity::Warning);
        assert_eq!(e.kind(), "link");
    }

    #[test]
    fn an_initial_link_state_has_an_unknown_previous() {
        let json = r#"{"v":1,"agent":"a","boot":"b","seq":1,"ts":"2026-01-01T00:00:00.000Z","type":"link","interface":"swp1","state":"down","previous":"unknown","carrier_changes":0,"oper_state":"lowerlayerdown","message":""}"#;
        let event: Event = serde_json::from_str(json).unwrap();
        let Body::Link(link) = &event.body else {
            panic!("not a link: {event:?}");
        };
        assert_eq!(
            (link.state, link.previous),
            (LinkState::Down, LinkState::Unknown)
        );
        assert_eq!(event.to_json(), json);
        // The values agents sent before are spelled as they were.
        assert_eq!(serde_json::to_string(&LinkState::Up).unwrap(), r#""up""#);
        assert_eq!(
            serde_json::to_string(&LinkState::Down).unwrap(),
            r#""down""#
        );
    }

    #[test]
    fn a_link_says_whether_a_shutdown_took_it_down() {
        // What agents that know nothing of the admin state send, and old
        // agents sent: no `admin`, no `reason`; read back and written again
        // byte for byte.
        let plain = r#"{"v":1,"agent":"a","boot":"b","seq":2,"ts":"2026-01-01T00:00:00.000Z","type":"link","interface":"Eth1-7","state":"down","previous":"up","carrier_changes":3,"oper_state":"lowerlayerdown","message":"Eth1-7 went down"}"#;
        let event: Event = serde_json::from_str(plain).unwrap();
        let Body::Link(link) = &event.body else {
            panic!("not a link: {event:?}");
        };
        assert_eq!((link.admin, link.reason.as_deref()), (None, None));
        assert!(!link.is_admin_down());
        assert_eq!(event.to_json(), plain);

        let shut = plain.replace(
            r#""message":"Eth1-7 went down""#,
            r#""message":"Eth1-7 went down","admin":"down","reason":"administratively down""#,
        );
        let event: Event = serde_json::from_str(&shut).unwrap();
        let Body::Link(link) = &event.body else {
            panic!("not a link: {event:?}");
        };
        assert_eq!(link.admin, Some(AdminState::Down));
        assert!(link.is_admin_down());
        assert_eq!(event.to_json(), shut);

        // Enabled and down is a failure, whatever the reason says.
        let failed = Link {
            admin: Some(AdminState::Up),
            reason: Some("link-failure".into()),
            ..link.clone()
        };
        assert!(!failed.is_admin_down());
        // An up link is never admin-down, even if a stale admin says so.
        let up = Link {
            state: LinkState::Up,
            ..link.clone()
        };
        assert!(!up.is_admin_down());
    }

    #[test]
    fn boot_ids_differ() {
        assert_ne!(new_boot_id(), new_boot_id());
    }
}
