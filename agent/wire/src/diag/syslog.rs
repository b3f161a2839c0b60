//! `[output.syslog]`, the table the agent's and the collector's configs
//! share: both forward events to syslog with the same settings.

use super::Diagnostics;
use crate::syslog::{Format, Protocol, SyslogSettings, SyslogTarget, parse_facility};
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

/// The event types a list of them may name.
pub const EVENT_TYPES: &[&str] = &["alert", "link", "heartbeat", "loss"];

/// `[output.syslog]` as written; the collector's config reads the same table.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RawSyslog {
    address: Option<Spanned<String>>,
    facility: Option<Spanned<String>>,
    protocol: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    events: Option<Spanned<Vec<Spanned<String>>>>,
    hostname: Option<Spanned<String>>,
}

impl RawSyslog {
    /// Validates the table, reporting every problem; `None` if there was one.
    pub fn settings(
        &self,
        default_hostname: &str,
        report: &mut Diagnostics,
    ) -> Option<SyslogSettings> {
        let target = match &self.address {
            Some(a) => match SyslogTarget::parse(a.get_ref()) {
                Ok(t) => Some(t),
                Err(e) => {
                    report.error(a, e, None);
                    None
                }
            },
            None => Some(SyslogTarget::Unix(PathBuf::from("/dev/log"))),
        };
        let facility = match &self.facility {
            Some(f) => match parse_facility(f.get_ref()) {
                Ok(f) => Some(f),
                Err(e) => {
                    report.error(f, e, None);
                    None
                }
            },
            None => Some(::syslog::Facility::LOG_LOCAL7),
        };
        let protocol = match self.protocol.as_ref().map(|p| (p, p.get_ref().as_str())) {
            None | Some((_, "rfc5424")) => Some(Protocol::Rfc5424),
            Some((_, "rfc3164")) => Some(Protocol::Rfc3164),
            Some((p, other)) => {
                report.error(
                    p,
                    format!("unknown syslog protocol `{other}`"),
                    Some("use \"rfc5424\" or \"rfc3164\"".into()),
                );
                None
            }
        };
        let format = match self.format.as_ref().map(|p| (p, p.get_ref().as_str())) {
            None | Some((_, "text")) => Some(Format::Text),
            Some((_, "json")) => Some(Format::Json),
            Some((p, other)) => {
                report.error(
                    p,
                    format!("unknown syslog format `{other}`"),
                    Some("use \"text\" (the sentence) or \"json\" (the event)".into()),
                );
                None
            }
        };
        let types = match &self.events {
            Some(list) => event_types(Some(list), report),
            None => vec!["alert".into(), "link".into(), "loss".into()],
        };
        let hostname = self
            .hostname
            .as_ref()
            .map(|h| h.get_ref().clone())
            .unwrap_or_else(|| default_hostname.to_string());
        Some(SyslogSettings {
            target: target?,
            facility: facility?,
            protocol: protocol?,
            format: format?,
            hostname,
            types,
        })
    }
}

/// Checks a list of event type names, reporting the unknown ones.
pub fn event_types(
    list: Option<&Spanned<Vec<Spanned<String>>>>,
    report: &mut Diagnostics,
) -> Vec<String> {
    let Some(list) = list else {
        return Vec::new();
    };
    let mut types = Vec::new();
    for t in list.get_ref() {
        if EVENT_TYPES.contains(&t.get_ref().as_str()) {
            types.push(t.get_ref().clone());
        } else {
            report.error(
                t,
                format!("unknown event type `{}`", t.get_ref()),
                Some(format!("event types: {}", EVENT_TYPES.join(", "))),
            );
        }
    }
    types
}
