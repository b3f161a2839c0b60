//! Rules: a threshold-over-window condition evaluated per interface, so an
//! operator can say "more than 3 tx errors in 5 s on any `Eth1-*`" and get an
//! alert when it starts and stops holding. [`expr`] parses conditions;
//! [`engine`] evaluates them every tick.

pub mod engine;
pub mod expr;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::event::Severity;
use crate::link::kind::{KindFilter, Kinds};
use crate::matcher::InterfaceMatcher;

pub use engine::{Engine, FiringAlert, Observation, Unavailable};
pub use expr::{Cmp, Condition, ExprError, Func, Leaf, parse};

/// One `[[rule]]` of the configuration, validated and parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique among the rules; alerts and reloads identify the rule by it.
    pub name: String,
    pub interfaces: InterfaceMatcher,
    /// Fires the alert.
    pub when: Condition,
    /// How long `when` must hold, tick after tick, before the alert fires.
    pub for_: Duration,
    /// Resolves a firing alert; without it the alert resolves as soon as
    /// `when` stops holding.
    pub clear_when: Option<Condition>,
    /// How long the resolve condition must hold, tick after tick, before a
    /// firing alert resolves (Prometheus `keep_firing_for`).
    pub keep_firing_for: Duration,
    pub severity: Severity,
    /// Copied onto every alert of the rule, for routing downstream
    /// (`team = "dc-ops"`).
    pub labels: BTreeMap<String, String>,
    /// The link kinds the rule applies to, besides `interfaces`.
    pub kind: KindFilter,
}

impl Rule {
    /// Whether the rule applies to an interface: its globs and its kinds.
    pub fn applies(&self, name: &str, kinds: Kinds) -> bool {
        self.kind.matches(kinds) && self.interfaces.matches(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Alert, AlertState};
    use crate::link::kind::Classifier;
    use crate::metric::{COUNTER_COLUMNS, Columns, Metric};
    use std::time::Instant;

    /// A rule on any rx error within 5 s.
    fn rule(name: &str, globs: &[&str], kind: &[&str], labels: &[(&str, &str)]) -> Rule {
        Rule {
            name: name.to_string(),
            interfaces: InterfaceMatcher::new(globs).unwrap(),
            when: parse("increase(rx_errors[5s]) > 0").unwrap(),
            for_: Duration::ZERO,
            clear_when: None,
            keep_firing_for: Duration::ZERO,
            severity: Severity::Warning,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            kind: KindFilter::new(kind).unwrap(),
        }
    }

    /// One tick at `s` seconds in which every interface has `rx_errors` at
    /// `errors`.
    fn tick(engine: &mut Engine, t0: Instant, s: u64, names: &[&str], errors: u64) -> Vec<Alert> {
        let mut counters = [0; COUNTER_COLUMNS];
        counters[Metric::RxErrors.column().unwrap()] = errors;
        let mut out = Vec::new();
        engine.observe(
            t0 + Duration::from_secs(s),
            names.iter().map(|name| Observation {
                name,
                counters: &counters,
                columns: Columns::ALL,
                link: None,
            }),
            &mut out,
        );
        out
    }

    const NAMES: [&str; 4] = ["Ethernet1/1", "Vlan10", "port-channel1", "nve1"];

    #[test]
    fn a_rule_applies_to_its_kinds_and_its_alerts_carry_its_labels() {
        let mut engine = Engine::new(vec![
            rule(
                "ports",
                &["*"],
                &["physical"],
                &[("team", "dc-ops"), ("runbook", "https://wiki/rx")],
            ),
            rule("logical", &["*1", "!nve*"], &["!physical"], &[]),
        ]);
        engine.set_classifier(Classifier::Names);
        let t0 = Instant::now();
        assert!(tick(&mut engine, t0, 0, &NAMES, 0).is_empty());
        let fired = tick(&mut engine, t0, 1, &NAMES, 1);
        let got: Vec<(&str, &str)> = fired
            .iter()
            .map(|a| (a.rule.as_str(), a.interface.as_str()))
            .collect();
        assert_eq!(
            got,
            [("ports", "Ethernet1/1"), ("logical", "port-channel1")]
        );
        assert_eq!(fired[0].labels["team"], "dc-ops");
        assert_eq!(fired[0].labels["runbook"], "https://wiki/rx");
        assert!(fired[1].labels.is_empty());
        // What the exporter counts as evaluated: globs and kinds together.
        let physical = NAMES.iter().filter(|n| n.starts_with("Ethernet")).count() as u64;
        let logical = NAMES
            .iter()
            .filter(|n| n.ends_with('1') && !n.starts_with("nve") && !n.starts_with("Ethernet"))
            .count() as u64;
        assert_eq!(engine.applied_counts(), [physical, logical]);
        // Resolved alerts carry the labels too.
        let resolved = tick(&mut engine, t0, 7, &NAMES, 1);
        assert_eq!(resolved.len(), 2, "{resolved:#?}");
        assert!(resolved.iter().all(|a| a.state == AlertState::Resolved));
        assert_eq!(resolved[0].labels["team"], "dc-ops");
    }

    #[test]
    fn a_reload_matches_new_rules_by_kind_on_known_interfaces() {
        let mut engine = Engine::new(vec![rule("r", &["*"], &["vlan"], &[])]);
        engine.set_classifier(Classifier::Names);
        let t0 = Instant::now();
        tick(&mut engine, t0, 0, &NAMES, 0);
        let mut out = Vec::new();
        engine.reconfigure(vec![rule("r", &["*"], &["tunnel", "bond"], &[])], &mut out);
        assert!(out.is_empty());
        let fired = tick(&mut engine, t0, 1, &NAMES, 1);
        // The reload's rules start without history: no alert on their
        // first tick, then on the next.
        assert!(fired.is_empty(), "{fired:#?}");
        let fired = tick(&mut engine, t0, 2, &NAMES, 2);
        let names: Vec<&str> = fired.iter().map(|a| a.interface.as_str()).collect();
        assert_eq!(names, ["port-channel1", "nve1"]);
    }

    #[test]
    fn kinds_are_found_at_a_reload_that_first_asks_for_them() {
        let mut engine = Engine::new(vec![rule("any", &["*"], &[], &[])]);
        engine.set_classifier(Classifier::Names);
        let t0 = Instant::now();
        tick(&mut engine, t0, 0, &NAMES, 0);
        let mut out = Vec::new();
        engine.reconfigure(
            vec![
                rule("any", &["*"], &[], &[]),
                rule("svis", &["*"], &["vlan"], &[]),
            ],
            &mut out,
        );
        tick(&mut engine, t0, 1, &NAMES, 0);
        let fired = tick(&mut engine, t0, 2, &NAMES, 1);
        let got: Vec<(&str, &str)> = fired
            .iter()
            .map(|a| (a.rule.as_str(), a.interface.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("any", "Ethernet1/1"),
                ("any", "Vlan10"),
                ("svis", "Vlan10"),
                ("any", "port-channel1"),
                ("any", "nve1")
            ]
        );
    }
}
