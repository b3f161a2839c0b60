//! The store's open alerts, as Alertmanager forwarding holds its state
//! against them: the keys of all, and for an alert the state does not know
//! its firing event, read back from the stored line because the alerts
//! table keeps neither the rule's labels nor the silence.

use super::alertmanager::{Key, Open};
use crate::store::StoreError;
use crate::store::sql::Sql;
use hopwatch_wire::event::{Alert, AlertState, Body, Event, Severity};
use std::collections::BTreeSet;

/// Every alert the store holds open; `event` is filled for those not in
/// `known`.
pub fn open_alerts(db: &dyn Sql, known: &BTreeSet<Key>) -> Result<Vec<Open>, StoreError> {
    let rows = db.rows(
        "SELECT ag.name, b.boot, a.boot_id, a.rule, a.interface, a.severity, a.expr, a.value,
                a.threshold, a.message, a.fired_at_ms
         FROM alerts a JOIN agents ag ON ag.id = a.agent_id JOIN boots b ON b.id = a.boot_id
         WHERE a.resolved_at_ms IS NULL",
        &[],
        |r| {
            Ok(Row {
                agent: r.text(0)?,
                boot: r.text(1)?,
                boot_id: r.i64(2)?,
                rule: r.text(3)?,
                interface: r.text(4)?,
                severity: r.text(5)?,
                expr: r.text(6)?,
                value: r.opt_f64(7)?,
                threshold: r.f64(8)?,
                message: r.text(9)?,
                fired_at_ms: r.opt_i64(10)?,
            })
        },
    )?;
    let mut open = Vec::new();
    for row in rows {
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

/// Alert events read at a time, newest first, while looking for a firing.
const PAGE: i64 = 64;

/// The latest firing event of the row's rule and interface in its boot.
/// The boot's alert events are read newest first through the (boot_id,
/// seq) index, a page at a time, and each is parsed here rather than in
/// SQL, whose JSON functions the two stores spell differently; a firing is
/// usually among the recent ones.
fn firing_event(db: &dyn Sql, row: &Row) -> Result<Option<Event>, StoreError> {
    let mut before = i64::MAX;
    loop {
        let page = db.rows(
            "SELECT seq, line FROM events
             WHERE boot_id = $1 AND seq < $2 AND type = 'alert'
             ORDER BY seq DESC LIMIT $3",
            &[&row.boot_id, &before, &PAGE],
            |r| Ok((r.i64(0)?, r.text(1)?)),
        )?;
        for (_, line) in &page {
            let Ok(event) = serde_json::from_str::<Event>(line) else {
                continue;
            };
            if let Body::Alert(alert) = &event.body
                && alert.state == AlertState::Firing
                && alert.rule == row.rule
                && alert.interface == row.interface
            {
                return Ok(Some(event));
            }
        }
        match page.last() {
            Some((seq, _)) if page.len() as i64 == PAGE => before = *seq,
            _ => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reads::fixture;

    #[test]
    fn root_open_alerts_and_their_firings_read_alike_on_both_stores() {
        let known: BTreeSet<Key> = [("leaf1".into(), "_down".into(), "swp10".into())].into();
        let open = fixture::same("root_open_alerts_read_alike", |reads| {
            let mut open = reads.with(|db| open_alerts(db, &known)).unwrap();
            open.sort_by(|a, b| a.key.cmp(&b.key));
            open
        });
        let keys: Vec<(&str, &str, &str)> = open
            .iter()
            .map(|o| (o.key.0.as_str(), o.key.1.as_str(), o.key.2.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("leaf-ä", "crc", "eth1"),
                ("leaf1", "_down", "swp10"),
                ("leaf1", "crc", "Ethernet1/7"),
                ("leaf1", "tx-errors", "swp1"),
            ]
        );
        // Known to the state: not read.
        assert!(open[1].event.is_none());
        // Its firing event found under more than two pages of newer alert
        // events, with the labels only the event keeps.
        let fired = open[3].event.as_ref().unwrap();
        assert_eq!(fired.seq, 3);
        let Body::Alert(alert) = &fired.body else {
            panic!("{fired:?}")
        };
        assert_eq!(alert.labels["team"], "net");
        // No firing event stored: the alerts table's own account.
        let remembered = open[2].event.as_ref().unwrap();
        assert_eq!((remembered.seq, remembered.boot.as_str()), (0, "boot-1"));
    }
}
