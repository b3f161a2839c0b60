//! `[links]` and `[[rule]]`: interface globs, rule expressions and their
//! windows, checked against the sampling interval.

use super::DEFAULT_INTERFACES;
use super::raw::RawRule;
use super::validate::Validator;
use crate::event::Severity;
use crate::matcher::InterfaceMatcher;
use crate::rule::{self, Rule};
use hopwatch_wire::diag::line_col;
use std::collections::HashMap;
use std::time::Duration;
use toml::Spanned;

impl Validator<'_> {
    pub(super) fn interfaces(
        &mut self,
        list: &Spanned<Vec<Spanned<String>>>,
        what: &str,
    ) -> Option<InterfaceMatcher> {
        if list.get_ref().is_empty() {
            self.error(
                list,
                format!("{what} is empty, so it matches no interface"),
                Some("list globs such as [\"eth*\", \"swp*\", \"!lo\"], or remove the key to watch every interface but lo".into()),
            );
            return None;
        }
        let patterns: Vec<&str> = list
            .get_ref()
            .iter()
            .map(|p| p.get_ref().as_str())
            .collect();
        match InterfaceMatcher::new(&patterns) {
            Ok(m) => Some(m),
            Err(e) => {
                let at = &list.get_ref()[e.index];
                self.error(
                    at,
                    e.to_string(),
                    Some("globs use * ? [..]; a leading ! excludes".into()),
                );
                None
            }
        }
    }

    fn expression(&mut self, value: &Spanned<String>, key: &str) -> Option<rule::Condition> {
        match rule::parse(value.get_ref()) {
            Ok(c) => Some(c),
            Err(e) => {
                // +1 skips the opening quote of a basic string.
                let offset = value.span().start + 1 + e.offset;
                self.error_at(
                    offset,
                    format!("bad expression in `{key}`: {}", e.message),
                    e.hint.clone(),
                );
                None
            }
        }
    }

    pub(super) fn rules(
        &mut self,
        raw: &[Spanned<RawRule>],
        interval: Option<Duration>,
    ) -> Vec<Rule> {
        let mut rules = Vec::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        for spanned in raw {
            let r = spanned.get_ref();
            let table_at = spanned.span().start;
            let name = match &r.name {
                Some(n) if n.get_ref().trim().is_empty() => {
                    self.error(
                        n,
                        "rule `name` is empty",
                        Some("name the rule, e.g. \"tx-errors\"".into()),
                    );
                    None
                }
                Some(n) => {
                    let (line, _) = line_col(self.text(), n.span().start);
                    if let Some(first) = names.insert(n.get_ref().clone(), line) {
                        self.error(
                            n,
                            format!("duplicate rule name `{}`", n.get_ref()),
                            Some(format!("the first rule with this name is at line {first}; rule names must be unique")),
                        );
                    }
                    Some(n.get_ref().clone())
                }
                None => {
                    self.error_at(
                        table_at,
                        "[[rule]] has no `name`",
                        Some("add name = \"...\"".into()),
                    );
                    None
                }
            };
            let when = match &r.when {
                Some(w) => self.expression(w, "when"),
                None => {
                    self.error_at(
                        table_at,
                        "[[rule]] has no `when`",
                        Some("add when = \"increase(tx_errors[5s]) > 3\"".into()),
                    );
                    None
                }
            };
            // `Some(None)`: no clear_when; `None`: a broken one.
            let clear_when = match &r.clear_when {
                Some(c) => self.expression(c, "clear_when").map(Some),
                None => Some(None),
            };
            if let Some(interval) = interval {
                if let (Some(cond), Some(raw)) = (&when, &r.when) {
                    self.window(cond, raw, interval);
                }
                if let (Some(Some(cond)), Some(raw)) = (&clear_when, &r.clear_when) {
                    self.window(cond, raw, interval);
                }
            }
            let for_ = match &r.for_ {
                Some(f) => self.duration(f, "for").and_then(|d| {
                    if d > MAX_FOR {
                        self.error(
                            f,
                            format!("`for` {:?} is longer than 7d", f.get_ref()),
                            Some("a condition must hold at most 7d before firing; use a window's length or a few minutes".into()),
                        );
                        return None;
                    }
                    Some(d)
                }),
                None => Some(Duration::ZERO),
            };
            let keep_firing_for = match &r.keep_firing_for {
                Some(k) => self.duration(k, "keep_firing_for").and_then(|d| {
                    if d > MAX_FOR {
                        self.error(
                            k,
                            format!("`keep_firing_for` {:?} is longer than 7d", k.get_ref()),
                            Some("an alert may outlive its condition by at most 7d; a few minutes bridges a flaky counter".into()),
                        );
                        return None;
                    }
                    Some(d)
                }),
                None => Some(Duration::ZERO),
            };
            let severity = match &r.severity {
                None => Some(Severity::Warning),
                Some(s) => match s.get_ref().as_str() {
                    "info" => Some(Severity::Info),
                    "warning" => Some(Severity::Warning),
                    "critical" => Some(Severity::Critical),
                    other => {
                        self.error(
                            s,
                            format!("unknown severity `{other}`"),
                            Some("use \"info\", \"warning\" or \"critical\"".into()),
                        );
                        None
                    }
                },
            };
            let interfaces = match &r.interfaces {
                Some(list) => self.interfaces(list, "rule `interfaces`"),
                None => Some(InterfaceMatcher::new(DEFAULT_INTERFACES).expect("valid default")),
            };
            let labels = match &r.labels {
                Some(raw) => self.labels(raw),
                None => Some(Default::default()),
            };
            let kind = match &r.kind {
                Some(list) => self.kind(list),
                None => Some(Default::default()),
            };
            if let (
                Some(name),
                Some(when),
                Some(clear_when),
                Some(for_),
                Some(keep_firing_for),
                Some(severity),
                Some(interfaces),
                Some(labels),
                Some(kind),
            ) = (
                name,
                when,
                clear_when,
                for_,
                keep_firing_for,
                severity,
                interfaces,
                labels,
                kind,
            ) {
                rules.push(Rule {
                    name,
                    interfaces,
                    when,
                    for_,
                    clear_when,
                    keep_firing_for,
                    severity,
                    labels,
                    kind,
                });
            }
        }
        rules
    }

    /// A window shorter than the interval would hold at most one sample;
    /// each is pointed at where it is written. (The parser already refused
    /// windows over 24h.)
    fn window(&mut self, cond: &rule::Condition, raw: &Spanned<String>, interval: Duration) {
        let text = raw.get_ref();
        // Leaf offsets count from the expression's first non-blank byte;
        // +1 skips the opening quote of a basic string.
        let base = raw.span().start + 1 + (text.len() - text.trim_start().len());
        for leaf in &cond.leaves {
            if leaf.window.is_zero() || leaf.window >= interval {
                continue;
            }
            self.error_at(
                base + leaf.at,
                format!(
                    "window {} is shorter than the sampling interval {}",
                    humantime::format_duration(leaf.window),
                    humantime::format_duration(interval)
                ),
                Some("use a window of at least one interval, usually several".into()),
            );
        }
    }
}

/// The longest a rule's condition may have to hold before it fires.
const MAX_FOR: Duration = Duration::from_secs(7 * 86_400);
