//! What the engine makes of one rule before any tick: its distinct leaves
//! across `when` and `clear_when`, so a window both read is kept once, and
//! where each leaf's window reaches this tick.

use super::{MetricSet, Nanos, Reach, nanos};
use crate::rule::Rule;
use crate::rule::expr::{Condition, Leaf, MAX_LEAVES};

/// Distinct leaves of one rule; a rule state keeps one window per leaf.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) leaves: Vec<Leaf>,
    /// Each leaf's window this tick, in the order of `leaves`.
    pub(super) reach: Vec<Reach>,
    /// For each leaf of `when`, its index in `leaves`.
    pub(super) when: Vec<u8>,
    /// The same for `clear_when`.
    pub(super) clear: Vec<u8>,
    /// The metrics the rule reads.
    pub(super) reads: MetricSet,
}

/// A rule reads at most this many windows: its two conditions' leaves.
pub(super) const MAX_RULE_LEAVES: usize = 2 * MAX_LEAVES;

impl Plan {
    pub(super) fn new(rule: &Rule) -> Plan {
        let mut leaves: Vec<Leaf> = Vec::new();
        let mut map = |cond: &Condition| -> Vec<u8> {
            cond.leaves
                .iter()
                .map(|leaf| {
                    let at = match leaves.iter().position(|l| l.same(leaf)) {
                        Some(at) => at,
                        None => {
                            leaves.push(*leaf);
                            leaves.len() - 1
                        }
                    };
                    at as u8
                })
                .collect()
        };
        let when = map(&rule.when);
        let clear = rule.clear_when.as_ref().map(&mut map).unwrap_or_default();
        let reads = leaves
            .iter()
            .flat_map(|l| l.reads())
            .fold(0, |set, m| set | 1 << m as usize);
        Plan {
            reach: vec![Reach::default(); leaves.len()],
            leaves,
            when,
            clear,
            reads,
        }
    }

    /// The longest window the rule keeps.
    pub(super) fn longest(&self) -> Nanos {
        self.leaves
            .iter()
            .map(|l| nanos(l.window))
            .max()
            .unwrap_or(0)
    }
}
