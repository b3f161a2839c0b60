//! The silence gate: every alert change passes through it before the
//! outputs. A covered one is marked (`silenced`, `silence`), so the
//! collector still stores it while syslog and stdout leave it out; the gate
//! remembers each alert it silenced while firing, so that when its silence
//! ends or is removed with the alert still firing, the alert goes out once
//! more, unsilenced, and syslog hears of it then.

use super::Registry;
use crate::event::{Alert, AlertState};
use std::time::SystemTime;

/// The alerts whose last change was a silenced firing: the firing event
/// as it went out, ready to be sent again. A list: it holds the few alerts
/// a maintenance window quiets, and changes only when they do.
#[derive(Debug, Default)]
pub struct Gate {
    held: Vec<Alert>,
}

impl Gate {
    /// Marks `alert` (a change at `at`) when a silence covers it, and
    /// remembers or forgets it as a silenced firing alert.
    pub fn mark(&mut self, registry: &Registry, alert: &mut Alert, at: SystemTime) {
        let covering = registry.covering(&alert.rule, &alert.interface, at);
        alert.silenced = covering.is_some();
        alert.silence = covering.map(|a| a.id().to_string());
        self.held
            .retain(|a| (&a.rule, &a.interface) != (&alert.rule, &alert.interface));
        if alert.state == AlertState::Firing && alert.silenced {
            self.held.push(alert.clone());
        }
    }

    /// After the silences changed (one ended, was removed, or the collector
    /// sent a new set): every held alert that no silence covers at `at` any
    /// more is returned unsilenced, to be emitted again, if `firing` says
    /// it still is (an alert the engine no longer holds is let go quietly).
    /// One that another silence now covers stays held under that one's id.
    pub fn release(
        &mut self,
        registry: &Registry,
        at: SystemTime,
        firing: impl Fn(&str, &str) -> bool,
    ) -> Vec<Alert> {
        let mut released = Vec::new();
        self.held.retain_mut(|alert| {
            if let Some(other) = registry.covering(&alert.rule, &alert.interface, at) {
                alert.silence = Some(other.id().to_string());
                return true;
            }
            if firing(&alert.rule, &alert.interface) {
                let mut again = alert.clone();
                again.silenced = false;
                again.silence = None;
                released.push(again);
            }
            false
        });
        released
    }

    /// How many firing alerts are silenced now.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{alert, silence, t};
    use super::super::{Active, Registry};
    use super::*;

    fn local(r: &mut Registry, id: &str, interface: &str, from: u64, to: u64) {
        r.add_local(Active::parse(silence(id, interface, None, from, to)).unwrap());
    }

    #[test]
    fn covered_changes_are_marked_and_others_are_not() {
        let mut r = Registry::default();
        local(&mut r, "l-1", "Eth1-*", 0, 100);
        let mut gate = Gate::default();
        let mut a = alert(AlertState::Firing, "tx", "Eth1-1");
        gate.mark(&r, &mut a, t(10));
        assert!(a.silenced);
        assert_eq!(a.silence.as_deref(), Some("l-1"));
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["silenced"], true);
        assert_eq!(json["silence"], "l-1");
        let mut b = alert(AlertState::Firing, "tx", "Eth2-1");
        gate.mark(&r, &mut b, t(10));
        assert!(!b.silenced && b.silence.is_none());
        assert_eq!(gate.held(), 1);
        // Its resolve inside the silence is silenced too, and forgotten.
        let mut resolved = alert(AlertState::Resolved, "tx", "Eth1-1");
        gate.mark(&r, &mut resolved, t(20));
        assert!(resolved.silenced);
        assert_eq!(gate.held(), 0);
        assert!(gate.release(&r, t(200), |_, _| true).is_empty());
    }

    #[test]
    fn an_alert_still_firing_when_its_silence_ends_goes_out_once() {
        let mut r = Registry::default();
        local(&mut r, "l-1", "Eth1-1", 0, 100);
        let mut gate = Gate::default();
        let mut a = alert(AlertState::Firing, "tx", "Eth1-1");
        gate.mark(&r, &mut a, t(10));
        // Not yet over: nothing to release.
        r.expire(t(99));
        assert!(gate.release(&r, t(99), |_, _| true).is_empty());
        r.expire(t(100));
        let out = gate.release(&r, t(100), |rule, i| (rule, i) == ("tx", "Eth1-1"));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].state, AlertState::Firing);
        assert!(!out[0].silenced && out[0].silence.is_none());
        assert_eq!(out[0].message, a.message);
        // Once.
        assert!(gate.release(&r, t(101), |_, _| true).is_empty());
        // Its resolve, after, is an ordinary change.
        let mut resolved = alert(AlertState::Resolved, "tx", "Eth1-1");
        gate.mark(&r, &mut resolved, t(150));
        assert!(!resolved.silenced);
    }

    #[test]
    fn a_removed_silence_releases_unless_another_covers() {
        let mut r = Registry::default();
        local(&mut r, "l-1", "Eth1-1", 0, 100);
        local(&mut r, "l-2", "Eth1-*", 0, 50);
        let mut gate = Gate::default();
        let mut a = alert(AlertState::Firing, "tx", "Eth1-1");
        gate.mark(&r, &mut a, t(10));
        assert_eq!(a.silence.as_deref(), Some("l-1"));
        r.remove_local("l-1");
        // l-2 still covers it: it stays quiet, under l-2.
        assert!(gate.release(&r, t(20), |_, _| true).is_empty());
        r.remove_local("l-2");
        let out = gate.release(&r, t(30), |_, _| true);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn an_alert_the_engine_dropped_is_let_go_quietly() {
        let mut r = Registry::default();
        r.replace_collector(vec![silence("c-1", "*", Some("tx"), 0, 100)], t(0));
        let mut gate = Gate::default();
        let mut a = alert(AlertState::Firing, "tx", "Eth1-1");
        gate.mark(&r, &mut a, t(10));
        assert_eq!(a.silence.as_deref(), Some("c-1"));
        r.replace_collector(vec![], t(20));
        assert!(gate.release(&r, t(20), |_, _| false).is_empty());
        assert_eq!(gate.held(), 0);
    }

    #[test]
    fn a_silence_made_after_the_alert_fired_quiets_only_later_changes() {
        let r0 = Registry::default();
        let mut gate = Gate::default();
        let mut a = alert(AlertState::Firing, "tx", "Eth1-1");
        gate.mark(&r0, &mut a, t(10));
        assert!(!a.silenced);
        let mut r = Registry::default();
        local(&mut r, "l-1", "Eth1-1", 20, 100);
        // Nothing was held, so the silence's end sends nothing again.
        assert!(gate.release(&r, t(100), |_, _| true).is_empty());
        let mut resolved = alert(AlertState::Resolved, "tx", "Eth1-1");
        gate.mark(&r, &mut resolved, t(30));
        assert!(resolved.silenced);
    }
}
