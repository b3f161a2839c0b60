//! The validator of `agent.toml`: the walk over the tables and the checks
//! several tables use (durations, event types, `[output.syslog]`). Positions,
//! unknown keys and the error list are the shared [`Diagnostics`]; each
//! table's own checks live beside it (`agent`, `rules`, `outputs`).

use super::agent::DEFAULT_INTERVAL;
use super::raw::{KNOWN_KEYS, RawConfig};
use super::{Config, ConfigError, DEFAULT_INTERFACES, StdoutSettings, hostname};
use crate::matcher::InterfaceMatcher;
use crate::output::syslog::SyslogSettings;
use hopwatch_wire::diag::{Diagnostics, RawSyslog, event_types};
use std::time::Duration;
use toml::Spanned;

/// The checks of one config text, each table's in its own file.
pub(super) struct Validator<'a> {
    diag: Diagnostics<'a>,
}

impl<'a> Validator<'a> {
    pub(super) fn new(text: &'a str, origin: &'a str) -> Validator<'a> {
        Validator {
            diag: Diagnostics::new(text, origin),
        }
    }

    /// Every mistake found, in the order of the text.
    pub(super) fn finish(self) -> Result<(), ConfigError> {
        self.diag.finish()
    }
}

impl Validator<'_> {
    pub(super) fn text(&self) -> &str {
        self.diag.text()
    }

    pub(super) fn error_at(
        &mut self,
        offset: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.diag.error_at(offset, message, hint);
    }

    pub(super) fn error<T>(
        &mut self,
        at: &Spanned<T>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.diag.error(at, message, hint);
    }

    pub(super) fn parse(&mut self) -> Option<Config> {
        let raw: RawConfig = self.diag.deserialize(KNOWN_KEYS)?;
        let agent = self.agent(&raw.agent);
        let links = match &raw.links.interfaces {
            Some(list) => self.interfaces(list, "[links] interfaces"),
            None => Some(InterfaceMatcher::new(DEFAULT_INTERFACES).expect("valid default")),
        };
        // Windows are held to the interval the file sets: the NX-OS default
        // must not make a config that is valid elsewhere (the embedded one
        // among them) invalid there.
        let set_interval = raw.agent.interval.is_some();
        let rules = self.rules(
            &raw.rule,
            agent.as_ref().map(|a| {
                if set_interval {
                    a.interval
                } else {
                    DEFAULT_INTERVAL
                }
            }),
        );
        let stdout = raw.output.stdout.as_ref().map(|s| StdoutSettings {
            types: self.event_types(s.events.as_ref()),
        });
        let syslog = raw
            .output
            .syslog
            .as_ref()
            .and_then(|s| self.syslog(s, agent.as_ref().map(|a| a.name.as_str())));
        let collector = raw
            .output
            .collector
            .as_ref()
            .and_then(|c| self.collector(c));
        let silences = self.silences(&raw.silences);
        let prometheus = raw
            .output
            .prometheus
            .as_ref()
            .and_then(|p| self.prometheus(p));
        if !self.diag.is_empty() {
            return None;
        }
        Some(Config {
            agent: agent?,
            links: links?,
            rules,
            stdout,
            syslog,
            collector,
            silences: silences?,
            prometheus,
        })
    }

    pub(super) fn duration(&mut self, value: &Spanned<String>, key: &str) -> Option<Duration> {
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    value,
                    format!("bad duration {:?} for `{key}`: {e}", value.get_ref()),
                    Some("write a duration like \"500ms\", \"5s\", \"10m\"".into()),
                );
                None
            }
        }
    }

    fn event_types(&mut self, list: Option<&Spanned<Vec<Spanned<String>>>>) -> Vec<String> {
        event_types(list, &mut self.diag)
    }

    fn syslog(&mut self, raw: &Spanned<RawSyslog>, agent: Option<&str>) -> Option<SyslogSettings> {
        let hostname = agent.map(str::to_string).unwrap_or_else(hostname);
        raw.get_ref().settings(&hostname, &mut self.diag)
    }

    pub(super) fn bounded_duration(
        &mut self,
        value: Option<&Spanned<String>>,
        key: &str,
        default: Duration,
        (min, max): (Duration, Duration),
        hint: &str,
    ) -> Option<Duration> {
        let Some(v) = value else {
            return Some(default);
        };
        let d = self.duration(v, key)?;
        if d < min || d > max {
            self.error(
                v,
                format!("{key} {:?} is out of range", v.get_ref()),
                Some(hint.to_string()),
            );
            return None;
        }
        Some(d)
    }
}
