//! The store's open alerts, as Alertmanager forwarding holds its state
//! against them: the keys of all, and for an alert the state does not know
//! its firing event, read back from the stored line because the alerts
//! table keeps neither the rule's labels nor the silence.

use super::alertmanager::{Key, Open};
use hopwatch_wire::event::{Alert, AlertState, Body, Event, Severity};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeSet;

/// Every alert the store holds open; `event` is filled for those not in
/// `known`.
pub fn open_alerts(db: &Connection, known: &BTreeSet<Key>) -> Result<Vec<Open>, rusqlite::Error> {
    let mut statement = db.prepare_cached(
        "SELECT ag.name, b.boot, a.boot_id, a.rule, a.interface, a.severity, a.expr, a.value,
                a.threshold, a.message, a.fired_at_ms
         FROM alerts a JOIN agents ag ON ag.id = a.agent_id JOIN boots b ON b.id = a.boot_id
         WHERE a.resolved_at_ms IS NULL",
    )?;
    let rows = statement.query_map([], |r| {
        Ok(Row {
            agent: r.get(0)?,
            boot: r.get(1)?,
            boot_id: r.get(2)?,
            rule: r.get(3)?,
            interface: r.get(4)?,
            severity: r.get(5)?,
            expr: r.get(6)?,
            value: r.get(7)?,
            threshold: r.get(8)?,
            message: r.get(9)?,
            fired_at_ms: r.get(10)?,
        })
    })?;
    let mut open = Vec::new();
    for row in rows {
        let row = row?;
        let key = (row.agent.clone(), row.rule.clone(), row.interface.clone());
        let event = if known.contains(&key) {
            None
        } else {
            Some(match firing_event(db, &row)? {
                Some(event) => event,
                None => row.event(),
            })
        };
        open.push(Open { key, event });
    }
    Ok(open)
}

struct Row {
    agent: String,
    boot: String,
    boot_id: i64,
    rule: String,
    interface: String,
    severity: String,
    expr: String,
    value: Option<f64>,
    threshold: f64,
    message: String,
    fired_at_ms: Option<i64>,
}

impl Row {
    /// The firing as the alerts table remembers it, for when its event is
    /// gone (retention): no labels, and not silenced.
    fn event(&self) -> Event {
        let severity = match self.severity.as_str() {
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            _ => Severity::Critical,
        };
        Event {
            v: hopwatch_wire::event::SCHEMA_VERSION,
            agent: self.agent.clone(),
            boot: self.boot.clone(),
            seq: 0,
            ts: crate::store::rfc3339(self.fired_at_ms.unwrap_or(0)),
            body: Body::Alert(Alert {
                state: AlertState::Firing,
                rule: self.rule.clone(),
                severity,
                interface: self.interface.clone(),
                expr: self.expr.clone(),
                value: self.value,
                threshold: self.threshold,
                message: self.message.clone(),
                labels: Default::default(),
                silenced: false,
                silence: None,
            }),
        }
    }
}

/// The latest firing event of the row's rule and interface in its boot.
/// The boot's events are read newest first through the (boot_id, seq)
/// index, and a firing is usually among the recent ones.
fn firing_event(db: &Connection, row: &Row) -> Result<Option<Event>, rusqlite::Error> {
    let line: Option<String> = db
        .prepare_cached(
            "SELECT line FROM events
             WHERE boot_id = ?1 AND type = 'alert'
               AND json_extract(line, '$.rule') = ?2
               AND json_extract(line, '$.interface') = ?3
               AND json_extract(line, '$.state') = 'firing'
             ORDER BY seq DESC LIMIT 1",
        )?
        .query_row(params![row.boot_id, row.rule, row.interface], |r| r.get(0))
        .optional()?;
    Ok(line.and_then(|l| serde_json::from_str::<Event>(&l).ok()))
}
