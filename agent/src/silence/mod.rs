//! Silences on the agent: the operator's own (made with `hopwatch silence
//! add`) and the collector's (pushed over its connection), held apart so a
//! new set from the collector never touches the local ones. Pure: every
//! question takes the time it is asked at, so tests give explicit times.
//! The gate that applies them to alerts is [`gate`]; the file that keeps
//! them across restarts is [`store`]; the control socket's requests are
//! [`command`].

pub mod command;
pub mod gate;
pub mod store;

use crate::matcher::InterfaceMatcher;
use hopwatch_wire::silence::Silence;
use std::time::SystemTime;

/// A silence with its times and globs read, ready to match.
#[derive(Debug, Clone)]
pub struct Active {
    pub silence: Silence,
    pub starts: SystemTime,
    pub ends: SystemTime,
    interface: InterfaceMatcher,
    rule: Option<InterfaceMatcher>,
}

/// Why a silence cannot be held.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SilenceError {
    #[error("silence {id}: bad {field} {value:?}: {reason}")]
    Field {
        id: String,
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("silence {id}: it ends ({ends_at}) before it starts ({starts_at})")]
    Backwards {
        id: String,
        starts_at: String,
        ends_at: String,
    },
}

impl Active {
    /// Reads a silence's times (RFC 3339, UTC) and globs.
    pub fn parse(silence: Silence) -> Result<Active, SilenceError> {
        let field = |field: &'static str, value: &str, reason: String| SilenceError::Field {
            id: silence.id.clone(),
            field,
            value: value.to_string(),
            reason,
        };
        let time = |name: &'static str, value: &str| {
            parse_time(value).map_err(|reason| field(name, value, reason))
        };
        let starts = time("starts_at", &silence.starts_at)?;
        let ends = time("ends_at", &silence.ends_at)?;
        if ends <= starts {
            return Err(SilenceError::Backwards {
                id: silence.id.clone(),
                starts_at: silence.starts_at.clone(),
                ends_at: silence.ends_at.clone(),
            });
        }
        let interface = glob(&silence.interface)
            .map_err(|reason| field("interface", &silence.interface, reason))?;
        let rule = match &silence.rule {
            Some(rule) => Some(glob(rule).map_err(|reason| field("rule", rule, reason))?),
            None => None,
        };
        Ok(Active {
            silence,
            starts,
            ends,
            interface,
            rule,
        })
    }

    /// Whether this silence covers a change of `rule` on `interface` at
    /// `at`: both globs match and `starts_at <= at < ends_at`.
    pub fn covers(&self, rule: &str, interface: &str, at: SystemTime) -> bool {
        self.starts <= at
            && at < self.ends
            && self.interface.matches(interface)
            && self.rule.as_ref().is_none_or(|r| r.matches(rule))
    }

    pub fn id(&self) -> &str {
        &self.silence.id
    }
}

/// One glob in `hopwatch_wire::matcher` syntax (`Eth1-*`, `!lo`).
pub fn glob(pattern: &str) -> Result<InterfaceMatcher, String> {
    if pattern.trim().is_empty() {
        return Err("empty glob; give one like \"Eth1-*\" or \"*\"".into());
    }
    InterfaceMatcher::new(&[pattern]).map_err(|e| e.reason)
}

/// An RFC 3339 time in UTC (`2026-12-05T18:00:00Z`, with or without
/// fractions of a second).
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(text.trim())
        .map_err(|e| format!("{e}; write an RFC 3339 time in UTC such as \"2026-12-05T18:00:00Z\""))
}

/// Where a silence was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `hopwatch silence add` on this switch.
    Local,
    /// The collector's API, pushed to this agent.
    Collector,
}

/// Every silence the agent holds.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    local: Vec<Active>,
    collector: Vec<Active>,
}

impl Registry {
    /// The silence covering a change of `rule` on `interface` at `at`; of
    /// several, the one that ends last, so the alert stays quiet longest
    /// under one id.
    pub fn covering(&self, rule: &str, interface: &str, at: SystemTime) -> Option<&Active> {
        self.all()
            .filter(|a| a.covers(rule, interface, at))
            .max_by(|a, b| a.ends.cmp(&b.ends).then_with(|| b.id().cmp(a.id())))
    }

    /// Both sets, local first.
    pub fn all(&self) -> impl Iterator<Item = &Active> {
        self.local.iter().chain(&self.collector)
    }

    pub fn local(&self) -> &[Active] {
        &self.local
    }

    pub fn collector(&self) -> &[Active] {
        &self.collector
    }

    pub fn get(&self, id: &str) -> Option<(&Active, Origin)> {
        self.local
            .iter()
            .find(|a| a.id() == id)
            .map(|a| (a, Origin::Local))
            .or_else(|| {
                self.collector
                    .iter()
                    .find(|a| a.id() == id)
                    .map(|a| (a, Origin::Collector))
            })
    }

    pub fn add_local(&mut self, silence: Active) {
        self.local.retain(|a| a.id() != silence.id());
        self.local.push(silence);
    }

    /// Removes a local silence; `None` when no local one has that id.
    pub fn remove_local(&mut self, id: &str) -> Option<Active> {
        let index = self.local.iter().position(|a| a.id() == id)?;
        Some(self.local.remove(index))
    }

    /// Puts the collector's whole set in place of the one it sent before.
    /// Those already over at `now` are left out, and any this agent cannot
    /// read are left out and returned, so the caller logs them; the rest
    /// of the set still applies. Returns whether the set changed.
    pub fn replace_collector(
        &mut self,
        silences: Vec<Silence>,
        now: SystemTime,
    ) -> (bool, Vec<SilenceError>) {
        let mut errors = Vec::new();
        let mut set = Vec::new();
        for silence in silences {
            match Active::parse(silence) {
                Ok(active) if active.ends > now => set.push(active),
                Ok(_) => {}
                Err(error) => errors.push(error),
            }
        }
        let changed = set.len() != self.collector.len()
            || set
                .iter()
                .zip(&self.collector)
                .any(|(a, b)| a.silence != b.silence);
        self.collector = set;
        (changed, errors)
    }

    /// Drops every silence over at `now`, returning them.
    pub fn expire(&mut self, now: SystemTime) -> Vec<Active> {
        let mut ended = Vec::new();
        for set in [&mut self.local, &mut self.collector] {
            let (over, live): (Vec<Active>, Vec<Active>) =
                std::mem::take(set).into_iter().partition(|a| a.ends <= now);
            *set = live;
            ended.extend(over);
        }
        ended
    }

    /// The earliest end: when the registry next changes on its own. (A
    /// start changes nothing already sent: a silence covers changes made
    /// after it starts.)
    pub fn next_end(&self) -> Option<SystemTime> {
        self.all().map(|a| a.ends).min()
    }

    /// Those in force at `now`.
    pub fn active(&self, now: SystemTime) -> impl Iterator<Item = &Active> {
        self.all().filter(move |a| a.starts <= now && now < a.ends)
    }

    pub fn is_empty(&self) -> bool {
        self.local.is_empty() && self.collector.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    /// A fixed instant, so the tests read as offsets from it.
    pub(crate) fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    pub(crate) fn silence(
        id: &str,
        interface: &str,
        rule: Option<&str>,
        from: u64,
        to: u64,
    ) -> Silence {
        Silence {
            id: id.into(),
            interface: interface.into(),
            rule: rule.map(str::to_string),
            agent: None,
            starts_at: crate::event::timestamp(t(from)),
            ends_at: crate::event::timestamp(t(to)),
            reason: "maintenance".into(),
            author: "alice".into(),
        }
    }

    /// An alert change as the engine makes it, unmarked.
    pub(crate) fn alert(
        state: crate::event::AlertState,
        rule: &str,
        interface: &str,
    ) -> crate::event::Alert {
        crate::event::Alert {
            state,
            rule: rule.into(),
            severity: crate::event::Severity::Critical,
            interface: interface.into(),
            expr: "increase(tx_errors[5s]) > 3".into(),
            value: Some(7.0),
            threshold: 3.0,
            message: format!("{interface} tx_errors increased by 7 in 5s (threshold 3)"),
            labels: Default::default(),
            silenced: false,
            silence: None,
        }
    }

    #[test]
    fn covers_by_interface_rule_and_half_open_time() {
        let a = Active::parse(silence("l-1", "Eth1-*", Some("tx-*"), 10, 20)).unwrap();
        assert!(a.covers("tx-errors", "Eth1-1", t(10)));
        assert!(a.covers("tx-errors", "Eth1-12", t(19)));
        // The end is not covered; neither is before the start.
        assert!(!a.covers("tx-errors", "Eth1-1", t(20)));
        assert!(!a.covers("tx-errors", "Eth1-1", t(9)));
        assert!(!a.covers("rx-errors", "Eth1-1", t(15)));
        assert!(!a.covers("tx-errors", "Eth2-1", t(15)));
        // NX-OS names match the Linux-form glob, as rules' do.
        assert!(a.covers("tx-errors", "Ethernet1/3", t(15)));
        // No rule glob: every rule.
        let any = Active::parse(silence("l-2", "swp1", None, 10, 20)).unwrap();
        assert!(any.covers("whatever", "swp1", t(15)));
        assert!(!any.covers("whatever", "swp10", t(15)));
    }

    #[test]
    fn bad_silences_are_refused_naming_the_field() {
        let mut s = silence("c-1", "Eth1-[", None, 10, 20);
        let error = Active::parse(s.clone()).unwrap_err().to_string();
        assert!(
            error.contains("c-1") && error.contains("interface"),
            "{error}"
        );
        s.interface = "Eth1-1".into();
        s.ends_at = "tomorrow".into();
        let error = Active::parse(s.clone()).unwrap_err().to_string();
        assert!(
            error.contains("ends_at") && error.contains("RFC 3339"),
            "{error}"
        );
        let backwards = silence("c-2", "x", None, 20, 10);
        assert!(matches!(
            Active::parse(backwards),
            Err(SilenceError::Backwards { .. })
        ));
    }

    #[test]
    fn the_longest_covering_silence_wins() {
        let mut r = Registry::default();
        r.add_local(Active::parse(silence("l-short", "Eth*", None, 0, 100)).unwrap());
        r.replace_collector(vec![silence("c-long", "Eth1-1", None, 0, 500)], t(0));
        assert_eq!(r.covering("x", "Eth1-1", t(50)).unwrap().id(), "c-long");
        assert_eq!(r.covering("x", "Eth1-2", t(50)).unwrap().id(), "l-short");
        assert!(r.covering("x", "swp1", t(50)).is_none());
    }

    #[test]
    fn a_collector_set_replaces_only_the_collector_set() {
        let mut r = Registry::default();
        r.add_local(Active::parse(silence("l-1", "a", None, 0, 100)).unwrap());
        let (changed, errors) = r.replace_collector(
            vec![
                silence("c-1", "b", None, 0, 100),
                silence("c-bad", "[", None, 0, 100),
                // Already over: not held.
                silence("c-old", "b", None, 0, 5),
            ],
            t(10),
        );
        assert!(changed);
        assert_eq!(errors.len(), 1);
        let ids: Vec<&str> = r.all().map(Active::id).collect();
        assert_eq!(ids, ["l-1", "c-1"]);
        // The same set again changes nothing.
        let (changed, _) = r.replace_collector(vec![silence("c-1", "b", None, 0, 100)], t(10));
        assert!(!changed);
        let (changed, _) = r.replace_collector(vec![], t(10));
        assert!(changed);
        let ids: Vec<&str> = r.all().map(Active::id).collect();
        assert_eq!(ids, ["l-1"]);
        assert_eq!(r.get("l-1").unwrap().1, Origin::Local);
    }

    #[test]
    fn expiry_drops_what_ended_and_says_when_next() {
        let mut r = Registry::default();
        r.add_local(Active::parse(silence("l-1", "a", None, 0, 10)).unwrap());
        r.add_local(Active::parse(silence("l-2", "a", None, 0, 30)).unwrap());
        r.replace_collector(vec![silence("c-1", "a", None, 5, 20)], t(0));
        assert_eq!(r.next_end(), Some(t(10)));
        assert_eq!(r.active(t(1)).count(), 2);
        assert!(r.expire(t(9)).is_empty());
        let ended: Vec<String> = r.expire(t(10)).iter().map(|a| a.id().into()).collect();
        assert_eq!(ended, ["l-1"]);
        assert_eq!(r.next_end(), Some(t(20)));
        let ended: Vec<String> = r.expire(t(25)).iter().map(|a| a.id().into()).collect();
        assert_eq!(ended, ["c-1"]);
        assert_eq!(r.remove_local("l-2").unwrap().id(), "l-2");
        assert!(r.remove_local("l-2").is_none());
        assert!(r.is_empty() && r.next_end().is_none());
    }
}
