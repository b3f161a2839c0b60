//! One rule on one interface: its windows, its alert's phase, and the words
//! an alert's message is made of.

use std::time::Instant;

use super::window::{Reading, Window};
use super::{Clock, MetricSet, Nanos, Reach, Samples, Tick};
use crate::event::{Alert, AlertState};
use crate::rule::Rule;
use crate::rule::expr::{Condition, Func};

/// One rule on one interface. There are thousands (every rule times every
/// interface it matches), so it is kept small: few rules have a
/// `clear_when`, and its window lives behind a pointer.
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
    pub(super) when: Window,
    pub(super) clear: Option<Box<Window>>,
    pub(super) phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
    Idle,
    Pending { since: Instant },
    Firing { since: Instant, value: f64 },
}

impl RuleState {
    pub(super) fn new(rule: usize, definition: &Rule) -> RuleState {
        let reads = definition
            .clear_when
            .iter()
            .fold(1 << definition.when.metric as usize, |set, c| {
                set | 1 << c.metric as usize
            });
        RuleState {
            start: 0,
            stepped: 0,
            rule,
            reads,
            quiet: false,
            when: Window::new(&definition.when),
            clear: definition
                .clear_when
                .as_ref()
                .map(|c| Box::new(Window::new(c))),
            phase: Phase::Idle,
        }
    }

    pub(super) fn step(
        &mut self,
        rule: &Rule,
        interface: &str,
        clock: Clock,
        reach: [Reach; 2],
        samples: &Samples,
        out: &mut Vec<Alert>,
    ) {
        if self.stepped == 0 {
            self.start = clock.stamp;
        }
        let start = self.start;
        // The ticks skipped since the latest step had its inputs.
        if self.stepped != 0 && self.stepped + 1 < clock.tick {
            self.when.catch_up(self.stepped, clock.tick - 1);
            if let Some(window) = &mut self.clear {
                window.catch_up(self.stepped, clock.tick - 1);
            }
        }
        self.stepped = clock.tick;
        // The time the window's deltas span: none before this rule's first
        // tick here, which has no delta of its own.
        let covered = |reach: Reach| clock.stamp - reach.before.map_or(start, |b| b.max(start));
        let when = self.when.update(
            clock.tick,
            reach[0].first,
            covered(reach[0]),
            samples[rule.when.metric as usize],
        );
        // The clear window is fed every tick, not only while firing, so it
        // has its history when the alert fires.
        let clear = match (&mut self.clear, &rule.clear_when) {
            (Some(window), Some(cond)) => window.update(
                clock.tick,
                reach[1].first,
                covered(reach[1]),
                samples[cond.metric as usize],
            ),
            _ => Reading {
                value: None,
                steady: true,
            },
        };
        let before = std::mem::discriminant(&self.phase);
        self.decide(rule, interface, clock.now, when.value, clear.value, out);
        self.quiet = when.steady
            && clear.steady
            && std::mem::discriminant(&self.phase) == before
            && !matches!(self.phase, Phase::Pending { .. });
    }

    /// Moves the alert on from this tick's values.
    fn decide(
        &mut self,
        rule: &Rule,
        interface: &str,
        now: Instant,
        when: Option<f64>,
        clear: Option<f64>,
        out: &mut Vec<Alert>,
    ) {
        match self.phase {
            Phase::Idle | Phase::Pending { .. } => {
                let Some(value) = when else { return };
                if !rule.when.holds(value) {
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
                self.phase = Phase::Firing { since: now, value };
                let detail = format!(
                    "{} (threshold {} {})",
                    describe(&rule.when, value),
                    rule.when.op,
                    number(rule.when.threshold)
                );
                out.push(alert(
                    AlertState::Firing,
                    rule,
                    interface,
                    &rule.when,
                    Some(value),
                    detail,
                ));
            }
            Phase::Firing { since, .. } => {
                let (cond, decided) = match &rule.clear_when {
                    Some(cond) => (cond, clear.map(|v| (v, cond.holds(v)))),
                    None => (&rule.when, when.map(|v| (v, !rule.when.holds(v)))),
                };
                match decided {
                    Some((value, true)) => {
                        self.phase = Phase::Idle;
                        let detail = describe(cond, value);
                        out.push(alert(
                            AlertState::Resolved,
                            rule,
                            interface,
                            cond,
                            Some(value),
                            detail,
                        ));
                    }
                    _ => {
                        if let Some(value) = when {
                            self.phase = Phase::Firing { since, value };
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn alert(
    state: AlertState,
    rule: &Rule,
    interface: &str,
    cond: &Condition,
    value: Option<f64>,
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
        threshold: cond.threshold,
        message,
        labels: rule.labels.clone(),
        silenced: false,
        silence: None,
    }
}

/// The left-hand side in words: "tx_errors increased by 7 in 5s".
fn describe(cond: &Condition, value: f64) -> String {
    let metric = cond.metric;
    let value = number(value);
    let window = humantime::format_duration(cond.window);
    match cond.func {
        Func::Latest => format!("{metric} is {value}"),
        Func::Increase => format!("{metric} increased by {value} in {window}"),
        Func::Rate => format!("{metric} rate {value}/s over {window}"),
        Func::Avg => format!("{metric} averaged {value} over {window}"),
        Func::Min => format!("{metric} bottomed at {value} over {window}"),
        Func::Max => format!("{metric} peaked at {value} over {window}"),
    }
}

/// A number as a person writes it: `7`, `93.5`, `0.33`; at most 2 decimals.
pub(super) fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}
