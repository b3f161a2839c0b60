//! What Alertmanager is told, as a pure state over explicit times: the
//! alerts firing now (re-sent every `resend_every`, since Alertmanager
//! resolves by itself an alert not heard of within its `resolve_timeout`),
//! and per receiver the changes it has not yet taken. The task that owns it
//! and does the sending is [`super::task`]; keeping the decisions here lets
//! them be tested without a clock or a network.
//!
//! The store is the truth: at start and at every re-send the state is held
//! against the store's open alerts ([`State::reconcile`]), so an alert the
//! collector ended itself (its agent restarted) or whose event overflowed
//! the queue is put right within one `resend_every`.

use hopwatch_wire::event::{Alert, AlertState, Body, Event};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// An alert's identity: agent, rule, interface. Alertmanager identifies an
/// alert by its labels, which these (with the rule's constant labels)
/// determine.
pub type Key = (String, String, String);

/// One alert as Alertmanager's `POST /api/v2/alerts` takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Postable {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    /// Set on resolve; absent while firing, so Alertmanager's own
    /// `resolve_timeout` ends an alert the collector stops re-sending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

/// The alert event as Alertmanager sees it. `web_url` is the collector's
/// web page, for a link to the alert's history.
pub fn postable(agent: &str, ts: &str, alert: &Alert, web_url: Option<&str>) -> Postable {
    let mut labels = alert.labels.clone();
    // hopwatch's own labels win: the agent refuses rule labels by these
    // names, and an older agent's event cannot override them either.
    labels.insert("alertname".into(), alert.rule.clone());
    labels.insert("agent".into(), agent.to_string());
    labels.insert("interface".into(), alert.interface.clone());
    labels.insert("severity".into(), alert.severity.as_str().into());
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".into(), format!("{agent}: {}", alert.message));
    let value = match alert.value {
        Some(v) => format!("{v}"),
        None => "none (the interface vanished)".into(),
    };
    annotations.insert(
        "description".into(),
        format!(
            "{} on {agent} {}: {} (value {value}, threshold {})",
            alert.rule, alert.interface, alert.expr, alert.threshold
        ),
    );
    let generator_url = web_url.map(|base| {
        format!(
            "{}/alerts?agent={}&interface={}&rule={}",
            base.trim_end_matches('/'),
            query_escape(agent),
            query_escape(&alert.interface),
            query_escape(&alert.rule)
        )
    });
    let (starts_at, ends_at) = match alert.state {
        AlertState::Firing => (ts.to_string(), None),
        // Alertmanager keeps the start it already has; this one only has
        // to be no later than the end.
        AlertState::Resolved => (ts.to_string(), Some(ts.to_string())),
    };
    Postable {
        labels,
        annotations,
        starts_at,
        ends_at,
        generator_url,
    }
}

/// The later of two RFC 3339 times; `a` when either does not parse.
fn later<'a>(a: &'a str, b: &'a str) -> &'a str {
    match (
        humantime::parse_rfc3339_weak(a),
        humantime::parse_rfc3339_weak(b),
    ) {
        (Ok(x), Ok(y)) if y > x => b,
        _ => a,
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An alert the store holds open, as [`State::reconcile`] compares it;
/// `event` is its firing event, read only for an alert the state did not
/// know.
#[derive(Debug, Clone)]
pub struct Open {
    pub key: Key,
    pub event: Option<Event>,
}

/// The alerts firing, the silenced ones left out, and what each receiver
/// has still to take.
#[derive(Debug)]
pub struct State {
    firing: BTreeMap<Key, Postable>,
    /// Firing under a silence: not sent, and not fetched again at each
    /// reconcile.
    quiet: BTreeSet<Key>,
    /// Per receiver, the latest change of each alert it has not taken.
    pending: Vec<BTreeMap<Key, Postable>>,
    web_url: Option<String>,
}

impl State {
    pub fn new(receivers: usize, web_url: Option<String>) -> State {
        State {
            firing: BTreeMap::new(),
            quiet: BTreeSet::new(),
            pending: vec![BTreeMap::new(); receivers],
            web_url,
        }
    }

    pub fn firing(&self) -> usize {
        self.firing.len()
    }

    /// Every alert the state knows, firing or quiet: what
    /// [`State::reconcile`] needs no event for.
    pub fn known(&self) -> BTreeSet<Key> {
        self.firing.keys().chain(&self.quiet).cloned().collect()
    }

    /// Takes one durable event; returns whether a receiver has something
    /// new to take.
    pub fn apply(&mut self, event: &Event) -> bool {
        let Body::Alert(alert) = &event.body else {
            return false;
        };
        let key = (
            event.agent.clone(),
            alert.rule.clone(),
            alert.interface.clone(),
        );
        let sent = postable(&event.agent, &event.ts, alert, self.web_url.as_deref());
        match (alert.state, alert.silenced) {
            (AlertState::Firing, false) => {
                self.quiet.remove(&key);
                self.firing.insert(key.clone(), sent.clone());
                self.change(key, sent);
                true
            }
            (AlertState::Firing, true) => {
                // Not sent while silenced. Were it firing in Alertmanager
                // already, it lapses there after resolve_timeout unless the
                // silence ends first and the agent sends it again.
                self.firing.remove(&key);
                for pending in &mut self.pending {
                    pending.remove(&key);
                }
                self.quiet.insert(key);
                false
            }
            (AlertState::Resolved, _) => {
                self.quiet.remove(&key);
                // Alertmanager hears the end of what it was told fires,
                // silenced or not: otherwise it would hold the alert firing
                // until its resolve_timeout.
                if self.firing.remove(&key).is_some() {
                    self.change(key, sent);
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Holds the state against the store's open alerts at `now`: an alert
    /// the store no longer holds open is resolved; one it holds that the
    /// state missed is taken from its firing event. Returns whether a
    /// receiver has something new to take.
    pub fn reconcile(&mut self, open: Vec<Open>, now: &str) -> bool {
        let open_keys: BTreeSet<&Key> = open.iter().map(|o| &o.key).collect();
        let ended: Vec<Key> = self
            .firing
            .keys()
            .filter(|k| !open_keys.contains(k))
            .cloned()
            .collect();
        self.quiet.retain(|k| open_keys.contains(k));
        let mut changed = false;
        for key in ended {
            if let Some(mut alert) = self.firing.remove(&key) {
                // Never before its start (an agent's clock ahead of the
                // collector's), which Alertmanager refuses.
                alert.ends_at = Some(later(now, &alert.starts_at).to_string());
                self.change(key, alert);
                changed = true;
            }
        }
        for o in open {
            if self.firing.contains_key(&o.key) || self.quiet.contains(&o.key) {
                continue;
            }
            if let Some(event) = &o.event {
                changed |= self.apply(event);
            }
        }
        changed
    }

    fn change(&mut self, key: Key, alert: Postable) {
        for pending in &mut self.pending {
            pending.insert(key.clone(), alert.clone());
        }
    }

    /// Whether `receiver` has changes waiting.
    pub fn has_pending(&self, receiver: usize) -> bool {
        !self.pending[receiver].is_empty()
    }

    /// What to send `receiver`: its waiting changes, and with `resend`
    /// every firing alert besides. The changes are taken; give them back
    /// with [`State::failed`] if the send fails.
    pub fn take(&mut self, receiver: usize, resend: bool) -> Batch {
        let changes = std::mem::take(&mut self.pending[receiver]);
        let mut alerts: Vec<Postable> = changes.values().cloned().collect();
        if resend {
            alerts.extend(
                self.firing
                    .iter()
                    .filter(|(k, _)| !changes.contains_key(*k))
                    .map(|(_, a)| a.clone()),
            );
        }
        Batch { changes, alerts }
    }

    /// The send of `batch` to `receiver` failed: its changes wait again,
    /// under any newer change of the same alert.
    pub fn failed(&mut self, receiver: usize, batch: Batch) {
        let pending = &mut self.pending[receiver];
        for (key, alert) in batch.changes {
            pending.entry(key).or_insert(alert);
        }
    }
}

/// One send's worth for one receiver.
#[derive(Debug)]
pub struct Batch {
    changes: BTreeMap<Key, Postable>,
    pub alerts: Vec<Postable>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopwatch_wire::event::Severity;

    fn alert_event(interface: &str, state: AlertState, silenced: bool, ts: &str) -> Event {
        Event {
            v: 1,
            agent: "leaf1".into(),
            boot: "b1".into(),
            seq: 1,
            ts: ts.into(),
            body: Body::Alert(Alert {
                state,
                rule: "tx-errors".into(),
                severity: Severity::Critical,
                interface: interface.into(),
                expr: "increase(tx_errors[5s]) > 3".into(),
                value: Some(7.0),
                threshold: 3.0,
                message: format!("{interface} tx_errors increased by 7 in 5s (threshold 3)"),
                labels: [("team".to_string(), "dc-ops".to_string())].into(),
                silenced,
                silence: silenced.then(|| "c-0123456789abcdef".into()),
            }),
        }
    }

    fn key(interface: &str) -> Key {
        ("leaf1".into(), "tx-errors".into(), interface.into())
    }

    const T1: &str = "2026-01-01T00:00:00.000Z";
    const T2: &str = "2026-01-01T00:01:00.000Z";

    #[test]
    fn an_alert_becomes_labels_and_annotations() {
        let event = alert_event("Eth1/1", AlertState::Firing, false, T1);
        let Body::Alert(alert) = &event.body else {
            unreachable!()
        };
        let p = postable("leaf1", T1, alert, Some("https://hopwatch.example.net/"));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "labels": {
                    "alertname": "tx-errors", "agent": "leaf1", "interface": "Eth1/1",
                    "severity": "critical", "team": "dc-ops"
                },
                "annotations": {
                    "summary": "leaf1: Eth1/1 tx_errors increased by 7 in 5s (threshold 3)",
                    "description": "tx-errors on leaf1 Eth1/1: increase(tx_errors[5s]) > 3 (value 7, threshold 3)"
                },
                "startsAt": T1,
                "generatorURL": "https://hopwatch.example.net/alerts?agent=leaf1&interface=Eth1%2F1&rule=tx-errors"
            })
        );
        // A rule label cannot take the place of hopwatch's own.
        let mut forged = alert.clone();
        forged.labels.insert("agent".into(), "spine9".into());
        assert_eq!(
            postable("leaf1", T1, &forged, None).labels["agent"],
            "leaf1"
        );
    }

    #[test]
    fn a_firing_alert_is_sent_once_then_with_each_resend_and_its_resolve_ends_it() {
        let mut s = State::new(1, None);
        assert!(s.apply(&alert_event("swp1", AlertState::Firing, false, T1)));
        let batch = s.take(0, false);
        assert_eq!(batch.alerts.len(), 1);
        assert!(!s.has_pending(0));
        // Nothing new: a plain turn sends nothing, a resend the firing one.
        assert!(s.take(0, false).alerts.is_empty());
        assert_eq!(s.take(0, true).alerts.len(), 1);
        assert!(s.apply(&alert_event("swp1", AlertState::Resolved, false, T2)));
        let batch = s.take(0, true);
        assert_eq!(batch.alerts.len(), 1);
        assert_eq!(batch.alerts[0].ends_at.as_deref(), Some(T2));
        assert_eq!(s.firing(), 0);
        assert!(s.take(0, true).alerts.is_empty());
    }

    #[test]
    fn silenced_alerts_are_not_sent_but_the_end_of_a_sent_one_is() {
        let mut s = State::new(1, None);
        assert!(!s.apply(&alert_event("swp1", AlertState::Firing, true, T1)));
        assert!(!s.apply(&alert_event("swp1", AlertState::Resolved, true, T2)));
        assert!(s.take(0, true).alerts.is_empty());
        // Sent firing, then resolved under a silence: the end still goes.
        assert!(s.apply(&alert_event("swp2", AlertState::Firing, false, T1)));
        assert!(s.apply(&alert_event("swp2", AlertState::Resolved, true, T2)));
        let batch = s.take(0, true);
        assert_eq!(batch.alerts.len(), 1);
        assert!(batch.alerts[0].ends_at.is_some());
        // The silence ends and the agent sends the firing again: it goes.
        assert!(!s.apply(&alert_event("swp3", AlertState::Firing, true, T1)));
        assert!(s.apply(&alert_event("swp3", AlertState::Firing, false, T2)));
        assert_eq!(s.take(0, false).alerts.len(), 1);
    }

    #[test]
    fn a_failed_send_keeps_its_changes_under_newer_ones_per_receiver() {
        let mut s = State::new(2, None);
        s.apply(&alert_event("swp1", AlertState::Firing, false, T1));
        let batch = s.take(0, false);
        assert!(s.has_pending(1), "each receiver takes its own");
        s.apply(&alert_event("swp1", AlertState::Resolved, false, T2));
        s.failed(0, batch);
        let again = s.take(0, false);
        assert_eq!(again.alerts.len(), 1);
        assert_eq!(
            again.alerts[0].ends_at.as_deref(),
            Some(T2),
            "the newer change wins"
        );
    }

    #[test]
    fn reconcile_resolves_what_the_store_closed_and_takes_what_it_missed() {
        let mut s = State::new(1, None);
        s.apply(&alert_event("swp1", AlertState::Firing, false, T1));
        s.apply(&alert_event("swp2", AlertState::Firing, true, T1));
        s.take(0, false);
        let open = vec![
            // swp1 is gone (its agent restarted); swp2 is still quiet and
            // needs no event; swp3's firing was never seen.
            Open {
                key: key("swp2"),
                event: None,
            },
            Open {
                key: key("swp3"),
                event: Some(alert_event("swp3", AlertState::Firing, false, T1)),
            },
        ];
        assert!(s.reconcile(open, T2));
        let mut batch = s.take(0, false).alerts;
        batch.sort_by(|a, b| a.labels["interface"].cmp(&b.labels["interface"]));
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[0].labels["interface"], "swp1");
        assert_eq!(batch[0].ends_at.as_deref(), Some(T2));
        assert_eq!(batch[1].labels["interface"], "swp3");
        assert_eq!(batch[1].ends_at, None);
        assert_eq!(s.known(), [key("swp2"), key("swp3")].into());
        // An alert stamped by a clock ahead of the collector's ends no
        // earlier than it started.
        let ahead = "2026-01-01T00:05:00.000Z";
        s.apply(&alert_event("swp4", AlertState::Firing, false, ahead));
        s.take(0, false);
        let open = vec![
            Open {
                key: key("swp2"),
                event: None,
            },
            Open {
                key: key("swp3"),
                event: None,
            },
        ];
        assert!(s.reconcile(open, T2));
        let ended = s.take(0, false).alerts;
        assert_eq!(ended[0].ends_at.as_deref(), Some(ahead));
        // Nothing changed in the store: nothing to send.
        let open = vec![
            Open {
                key: key("swp2"),
                event: None,
            },
            Open {
                key: key("swp3"),
                event: None,
            },
        ];
        assert!(!s.reconcile(open, T2));
        assert!(!s.has_pending(0));
    }
}
