//! One rule on one interface: its windows, its alert's phase, and the words
//! an alert's message is made of.

use std::time::Instant;

use super::plan::{MAX_RULE_LEAVES, Plan};
use super::window::Window;
use super::{Clock, MetricSet, Nanos, Reach, Sample, Samples, Tick};
use crate::event::{Alert, AlertState};
use crate::metric::Metric;
use crate::rule::Rule;
use crate::rule::expr::{Condition, Expr, Func, Leaf, Verdict};

/// One rule on one interface. There are thousands (every rule times every
/// interface it matches), so it is kept small: most rules read one window,
/// kept inline; the others' live behind a pointer.
#[derive(Debug)]
pub(super) struct RuleState {
    /// The time of the first tick this rule evaluated this interface, once
    /// `stepped` is set; a reload creates states between ticks.
    start: Nanos,
    /// The tick of the latest step, 0 before the first; ticks after it were
    /// skipped.
    stepped: Tick,
    pub(super) rule: usize,
    /// The metrics `when` and `clear_when` read.
    pub(super) reads: MetricSet,
    /// Whether a tick with the latest step's inputs would change nothing.
    pub(super) quiet: bool,
    /// The window of the plan's first leaf.
    pub(super) first: Window,
    /// The windows of the plan's other leaves, in order.
    pub(super) rest: Box<[Window]>,
    pub(super) phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
    Idle,
    Pending {
        since: Instant,
    },
    Firing {
        since: Instant,
        /// The deciding comparison's sides at the latest tick `when` could
        /// be decided.
        value: f64,
        threshold: f64,
        /// Since when the resolve condition has held, while
        /// `keep_firing_for` keeps the alert firing.
        clearing: Option<Instant>,
    },
}

impl RuleState {
    pub(super) fn new(rule: usize, plan: &Plan) -> RuleState {
        let mut windows = plan.leaves.iter().map(Window::new);
        RuleState {
            start: 0,
            stepped: 0,
            rule,
            reads: plan.reads,
            quiet: false,
            first: windows.next().unwrap_or(Window::Latest),
            rest: windows.collect(),
            phase: Phase::Idle,
        }
    }

    /// Every window, in the plan's leaf order.
    #[cfg(test)]
    pub(super) fn windows(&self) -> impl Iterator<Item = &Window> {
        std::iter::once(&self.first).chain(self.rest.iter())
    }

    pub(super) fn step(
        &mut self,
        rule: &Rule,
        plan: &Plan,
        interface: &str,
        clock: Clock,
        samples: &Samples,
        out: &mut Vec<Alert>,
    ) {
        if self.stepped == 0 {
            self.start = clock.stamp;
        }
        let start = self.start;
        // The ticks skipped since the latest step had its inputs.
        let skipped = self.stepped != 0 && self.stepped + 1 < clock.tick;
        let stepped = self.stepped;
        self.stepped = clock.tick;
        // The time a window's deltas span: none before this rule's first
        // tick here, which has no delta of its own.
        let covered = |reach: &Reach| clock.stamp - reach.before.map_or(start, |b| b.max(start));
        // Every window is fed every tick, not only the ones the phase reads,
        // so `clear_when` has its history when the alert fires.
        let mut values = [None; MAX_RULE_LEAVES];
        let mut steady = true;
        let windows = std::iter::once(&mut self.first).chain(self.rest.iter_mut());
        for (i, ((window, leaf), reach)) in windows.zip(&plan.leaves).zip(&plan.reach).enumerate() {
            if skipped {
                window.catch_up(stepped, clock.tick - 1);
            }
            let reading = window.update(
                clock.tick,
                reach.first,
                covered(reach),
                input(leaf, samples),
            );
            values[i] = reading.value;
            steady &= reading.steady;
        }
        let when = rule.when.eval(&|i| values[usize::from(plan.when[i])]);
        let clear = rule
            .clear_when
            .as_ref()
            .and_then(|c| c.eval(&|i| values[usize::from(plan.clear[i])]));
        let before = std::mem::discriminant(&self.phase);
        self.decide(rule, interface, clock.now, when, clear, out);
        self.quiet = steady
            && std::mem::discriminant(&self.phase) == before
            && matches!(
                self.phase,
                Phase::Idle | Phase::Firing { clearing: None, .. }
            );
    }

    /// Moves the alert on from this tick's verdicts.
    fn decide(
        &mut self,
        rule: &Rule,
        interface: &str,
        now: Instant,
        when: Option<Verdict>,
        clear: Option<Verdict>,
        out: &mut Vec<Alert>,
    ) {
        match self.phase {
            Phase::Idle | Phase::Pending { .. } => {
                let Some(verdict) = when else { return };
                if !verdict.holds {
                    self.phase = Phase::Idle;
                    return;
                }
                let since = match self.phase {
                    Phase::Pending { since } => since,
                    _ => now,
                };
                if now.saturating_duration_since(since) < rule.for_ {
                    self.phase = Phase::Pending { since };
                    return;
                }
                self.phase = Phase::Firing {
                    since: now,
                    value: verdict.lhs,
                    threshold: verdict.rhs,
                    clearing: None,
                };
                let c = &rule.when.comparisons[verdict.comparison];
                let detail = format!(
                    "{} (threshold {} {})",
                    describe(&rule.when, verdict),
                    c.op,
                    right_side(&rule.when, verdict)
                );
                out.push(alert(
                    AlertState::Firing,
                    rule,
                    interface,
                    &rule.when,
                    Some(verdict.lhs),
                    verdict.rhs,
                    detail,
                ));
            }
            Phase::Firing {
                since,
                mut value,
                mut threshold,
                clearing,
            } => {
                if let Some(v) = when {
                    (value, threshold) = (v.lhs, v.rhs);
                }
                let (cond, resolving) = match &rule.clear_when {
                    Some(cond) => (cond, clear.map(|v| (v, v.holds))),
                    None => (&rule.when, when.map(|v| (v, !v.holds))),
                };
                let clearing = match resolving {
                    Some((verdict, true)) => {
                        let from = clearing.unwrap_or(now);
                        if now.saturating_duration_since(from) >= rule.keep_firing_for {
                            self.phase = Phase::Idle;
                            out.push(alert(
                                AlertState::Resolved,
                                rule,
                                interface,
                                cond,
                                Some(verdict.lhs),
                                verdict.rhs,
                                describe(cond, verdict),
                            ));
                            return;
                        }
                        Some(from)
                    }
                    // The alert's condition is back: the count starts over.
                    Some((_, false)) => None,
                    None => clearing,
                };
                self.phase = Phase::Firing {
                    since,
                    value,
                    threshold,
                    clearing,
                };
            }
        }
    }
}

/// A leaf's input this tick: its metric's sample, or for `flaps` the link
/// state (as the value, 1 for up) with the carrier count's delta.
fn input(leaf: &Leaf, samples: &Samples) -> Option<Sample> {
    let sample = samples[leaf.metric as usize];
    if leaf.func != Func::Flaps {
        return sample;
    }
    Some(Sample {
        value: samples[Metric::OperUp as usize]?.value,
        delta: sample?.delta,
    })
}

pub(super) fn alert(
    state: AlertState,
    rule: &Rule,
    interface: &str,
    cond: &Condition,
    value: Option<f64>,
    threshold: f64,
    detail: String,
) -> Alert {
    // Firing and resolved read alike and both name the rule, so a syslog
    // reader can pair them without the JSON.
    let word = match state {
        AlertState::Firing => "firing",
        AlertState::Resolved => "resolved",
    };
    let message = format!(
        "{interface} {} {word} ({}): {detail}",
        rule.name,
        rule.severity.as_str()
    );
    Alert {
        state,
        rule: rule.name.clone(),
        severity: rule.severity,
        interface: interface.to_string(),
        expr: cond.text.clone(),
        value,
        threshold,
        message,
        labels: rule.labels.clone(),
        silenced: false,
        silence: None,
    }
}

/// The deciding comparison's left side in words: "tx_errors increased by 7
/// in 5s", or for arithmetic the side as written and its value.
fn describe(cond: &Condition, verdict: Verdict) -> String {
    let c = &cond.comparisons[verdict.comparison];
    let Expr::Leaf(i) = c.lhs else {
        return format!("{} is {}", cond.side(c.lhs_text), precise(verdict.lhs));
    };
    let leaf = &cond.leaves[i];
    let metric = leaf.metric;
    let value = number(verdict.lhs);
    let window = humantime::format_duration(leaf.window);
    match leaf.func {
        Func::Latest => format!("{metric} is {value}"),
        Func::Increase => format!("{metric} increased by {value} in {window}"),
        Func::Rate => format!("{metric} rate {value}/s over {window}"),
        Func::Avg => format!("{metric} averaged {value} over {window}"),
        Func::Min => format!("{metric} bottomed at {value} over {window}"),
        Func::Max => format!("{metric} peaked at {value} over {window}"),
        Func::Changes => format!("{metric} changed {value} times in {window}"),
        Func::Flaps => format!("link flapped {value} times in {window}"),
    }
}

/// The deciding comparison's right side: its number, or the expression as
/// written and its value.
fn right_side(cond: &Condition, verdict: Verdict) -> String {
    let c = &cond.comparisons[verdict.comparison];
    match c.rhs {
        Expr::Number(_) => precise(verdict.rhs),
        _ => format!("{} = {}", cond.side(c.rhs_text), precise(verdict.rhs)),
    }
}

/// A number as a person writes it: `7`, `93.5`, `0.33`; at most 2 decimals.
pub(super) fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    trim(&text)
}

/// [`number`], but a small value such as a ratio keeps 3 significant
/// digits instead of reading as 0.
pub(super) fn precise(value: f64) -> String {
    if value == 0.0 || value.abs() >= 0.01 {
        return number(value);
    }
    let digits = (2 - value.abs().log10().floor() as i64).clamp(0, 15) as usize;
    trim(&format!("{value:.digits$}"))
}

fn trim(text: &str) -> String {
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}
