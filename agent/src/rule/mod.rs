//! Rules: a threshold-over-window condition evaluated per interface, so an
//! operator can say "more than 3 tx errors in 5 s on any `Eth1-*`" and get an
//! alert when it starts and stops holding. [`expr`] parses conditions;
//! [`engine`] evaluates them every tick.

pub mod engine;
pub mod expr;

use std::time::Duration;

use crate::event::Severity;
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
}
