//! A `[[rule]]`'s `labels` and `kind`: what travels with its alerts and
//! which sorts of link it watches. Apart from the rule's condition, which
//! has a grammar of its own in `rules.rs`.

use super::raw::RawLabels;
use super::validate::Validator;
use crate::link::kind::{KindFilter, LinkKind};
use std::collections::BTreeMap;
use toml::Spanned;

/// Set by hopwatch on every alert it forwards (Alertmanager's labels), so a
/// rule cannot set them.
const RESERVED: [&str; 5] = ["alertname", "agent", "interface", "severity", "rule"];

/// RFC 5424 limits an SD-PARAM name, which each label becomes in syslog's
/// structured data, to 32 characters.
const NAME_MAX: usize = 32;

/// Labels are for routing, not for text; Alertmanager and syslog both take
/// more, but a long one is a message in the wrong place.
const VALUE_MAX: usize = 256;

impl Validator<'_> {
    /// `labels = { team = "dc-ops" }`. Every bad label is reported.
    pub(super) fn labels(&mut self, raw: &Spanned<RawLabels>) -> Option<BTreeMap<String, String>> {
        let mut ok = true;
        for (name, text) in raw.get_ref() {
            let at = key_offset(self.text(), raw.span(), name);
            if let Some((message, hint)) = label_name_problem(name) {
                self.error_at(at, message, Some(hint));
                ok = false;
                continue;
            }
            if text.len() > VALUE_MAX {
                self.error_at(
                    at,
                    format!(
                        "label `{}` is {} bytes long, more than {VALUE_MAX}",
                        name,
                        text.len()
                    ),
                    Some(
                        "keep labels short for routing; put a long text in a runbook and link it"
                            .into(),
                    ),
                );
                ok = false;
            }
        }
        ok.then(|| raw.get_ref().clone())
    }

    /// `kind = ["physical", "!bond_member"]`.
    pub(super) fn kind(&mut self, list: &Spanned<Vec<Spanned<String>>>) -> Option<KindFilter> {
        if list.get_ref().is_empty() {
            self.error(
                list,
                "rule `kind` is empty, so it matches no interface",
                Some(format!(
                    "list kinds such as [\"physical\"] ({}), or remove the key to watch every kind",
                    LinkKind::names()
                )),
            );
            return None;
        }
        let names: Vec<&str> = list
            .get_ref()
            .iter()
            .map(|k| k.get_ref().as_str())
            .collect();
        match KindFilter::new(&names) {
            Ok(filter) => Some(filter),
            Err(e) => {
                self.error(&list.get_ref()[e.index], e.message, Some(e.hint));
                None
            }
        }
    }
}

/// Where the key `name` is written in the table at `span`: the first
/// mention of it followed by `=` (spaces and a closing quote between), else
/// the table's start.
fn key_offset(text: &str, span: std::ops::Range<usize>, name: &str) -> usize {
    let Some(table) = text.get(span.clone()) else {
        return span.start;
    };
    table
        .match_indices(name)
        .find(|&(at, _)| {
            table[at + name.len()..]
                .trim_start_matches(['"', '\'', ' ', '\t'])
                .starts_with('=')
        })
        .map_or(span.start, |(at, _)| span.start + at)
}

/// What is wrong with a label name, and the fix; `None` if it is fine.
/// Names follow Prometheus's label names, `[a-zA-Z_][a-zA-Z0-9_]*`.
fn label_name_problem(name: &str) -> Option<(String, String)> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Some((
            format!("label name `{name}` is not a Prometheus label name"),
            "use letters, digits and _, not starting with a digit, e.g. team or runbook_url".into(),
        ));
    }
    if RESERVED.contains(&name) {
        return Some((
            format!("label `{name}` is set by hopwatch on every alert"),
            format!(
                "choose another name; {} are hopwatch's",
                RESERVED.join(", ")
            ),
        ));
    }
    if name.starts_with("__") {
        return Some((
            format!("label name `{name}` starts with __"),
            "Prometheus keeps names starting with __ for itself; drop the underscores".into(),
        ));
    }
    if name.len() > NAME_MAX {
        return Some((
            format!(
                "label name `{name}` is {} characters long, more than {NAME_MAX}",
                name.len()
            ),
            "syslog structured data takes names of at most 32 characters; shorten it".into(),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::link::kind::{Kinds, LinkKind};

    const RULE: &str = "[[rule]]\nname = \"r\"\nwhen = \"increase(tx_errors[5s]) > 3\"\n";

    fn rule(extra: &str) -> Result<crate::rule::Rule, Vec<String>> {
        Config::parse(&format!("{RULE}{extra}"), "t.toml")
            .map(|c| c.rules[0].clone())
            .map_err(|e| e.diagnostics().iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn labels_and_kind_default_to_none_and_every_kind() {
        let r = rule("").unwrap();
        assert!(r.labels.is_empty());
        assert_eq!(r.kind, KindFilter::default());
        assert!(r.applies("veth0", Kinds::of(LinkKind::Veth)));
    }

    #[test]
    fn labels_are_read_in_order() {
        let r =
            rule("labels = { team = \"dc-ops\", runbook = \"https://wiki/x?a=1\", _x = \"\" }\n")
                .unwrap();
        let labels: Vec<(&str, &str)> = r
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("_x", ""),
                ("runbook", "https://wiki/x?a=1"),
                ("team", "dc-ops")
            ]
        );
        // A table of its own reads the same.
        let r = rule("[rule.labels]\nteam = \"dc-ops\"\n").unwrap();
        assert_eq!(r.labels["team"], "dc-ops");
    }

    #[test]
    fn every_bad_label_is_located_with_a_hint() {
        let long = "x".repeat(257);
        let errors = rule(&format!(
            "labels = {{ 1team = \"a\", \"te-am\" = \"b\", severity = \"c\", __x = \"d\", long = \"{long}\", {} = \"e\" }}\n",
            "n".repeat(33)
        ))
        .unwrap_err();
        let want = [
            ("4:12", "label name `1team` is not a Prometheus label name"),
            ("4:26", "label name `te-am` is not a Prometheus label name"),
            ("4:40", "label `severity` is set by hopwatch"),
            ("4:56", "label name `__x` starts with __"),
            ("4:67", "label `long` is 257 bytes long, more than 256"),
            ("4:335", "is 33 characters long, more than 32"),
        ];
        assert_eq!(errors.len(), want.len(), "{errors:#?}");
        for (at, message) in want {
            assert!(
                errors
                    .iter()
                    .any(|e| e.contains(&format!("t.toml:{at}")) && e.contains(message)),
                "no `{message}` at {at} in {errors:#?}"
            );
        }
        assert!(
            errors
                .iter()
                .any(|e| e.contains("alertname, agent, interface, severity, rule are hopwatch's"))
        );
    }

    #[test]
    fn a_label_that_is_no_string_is_located() {
        let errors = rule("labels = { count = 3 }\n").unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("t.toml:4:20: "), "{errors:?}");
        assert!(errors[0].contains("expected a string"), "{errors:?}");
    }

    #[test]
    fn kind_reads_includes_and_excludes() {
        let r = rule("kind = [\"physical\", \"!bond_member\"]\n").unwrap();
        assert_eq!(r.kind.patterns(), ["physical", "!bond_member"]);
        let port = Kinds::of(LinkKind::Physical);
        assert!(r.applies("eth0", port));
        assert!(!r.applies("eth0", port.with(LinkKind::BondMember)));
        assert!(!r.applies("veth0", Kinds::of(LinkKind::Veth)));
        // The globs still apply.
        let r = rule("interfaces = [\"swp*\"]\nkind = [\"physical\"]\n").unwrap();
        assert!(r.applies("swp1", port));
        assert!(!r.applies("eth0", port));
    }

    #[test]
    fn a_bad_kind_names_the_kinds() {
        let errors = rule("kind = [\"physical\", \"phys\"]\n").unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("t.toml:4:21"), "{errors:?}");
        assert!(errors[0].contains("unknown link kind `phys`"), "{errors:?}");
        assert!(
            errors[0].contains(
                "physical, veth, bridge, vlan, bond, bond_member, loopback, tunnel, other"
            ),
            "{errors:?}"
        );
        let errors = rule("kind = []\n").unwrap_err();
        assert!(errors[0].contains("rule `kind` is empty"), "{errors:?}");
        let errors = rule("kind = \"physical\"\n").unwrap_err();
        assert!(errors[0].contains("t.toml:4:8"), "{errors:?}");
    }

    #[test]
    fn label_names_follow_prometheus() {
        for good in ["team", "_x", "runbook_url", "A9", &"n".repeat(32)] {
            assert_eq!(label_name_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "9a",
            "a-b",
            "a.b",
            "é",
            "rule",
            "interface",
            "agent",
            "alertname",
            "__name__",
        ] {
            assert!(label_name_problem(bad).is_some(), "{bad}");
        }
    }
}
