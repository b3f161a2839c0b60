//! `agent.toml`: deserialized with spans, validated all at once, so
//! `hopwatch check-config` reports every mistake with `file:line:col` and a
//! hint in one pass. Nothing here touches the environment beyond reading the
//! file; building components from a [`Config`] is the agent's job.

use crate::exporter::PrometheusSettings;
use crate::matcher::InterfaceMatcher;
use crate::output::collector::CollectorSettings;
use crate::output::syslog::SyslogSettings;
use crate::rule::Rule;
use std::path::Path;
use validate::Validator;

mod agent;
mod outputs;
mod raw;
mod rule_options;
mod rules;
mod silences;
#[cfg(test)]
mod tests;
mod validate;

pub use agent::{AgentSettings, LinkWatch, SourceKind, TraceBackendKind};
pub use hopwatch_wire::diag::{ConfigError, Diagnostic};
pub use hopwatch_wire::size::parse_size;
pub use silences::{DEFAULT_MAX_DURATION, SilenceSettings};

/// Where `hopwatch` looks for its config when `-c` is not given.
pub const DEFAULT_PATH: &str = "/etc/hopwatch/agent.toml";

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub agent: AgentSettings,
    /// Which interfaces produce `link` events.
    pub links: InterfaceMatcher,
    pub rules: Vec<Rule>,
    pub stdout: Option<StdoutSettings>,
    pub syslog: Option<SyslogSettings>,
    pub collector: Option<CollectorSettings>,
    pub silences: SilenceSettings,
    /// `[output.prometheus]`: `/metrics` on the agent, off without it.
    pub prometheus: Option<PrometheusSettings>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StdoutSettings {
    /// Event types to print; empty means all.
    pub types: Vec<String>,
}

/// The spool bound when `spool_max` is not set.
pub const DEFAULT_SPOOL_MAX: u64 = 64 << 20;
/// Below this a spool holds too few events to ride out anything.
const MIN_SPOOL_MAX: u64 = 4 << 10;

/// The interfaces watched when a rule or `[links]` names none.
pub const DEFAULT_INTERFACES: &[&str] = &["!lo"];

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = ConfigError::read(path)?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Validates config text; `origin` names it in diagnostics.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut v = Validator::new(text, origin);
        let config = v.parse();
        v.finish()?;
        Ok(config.expect("a config without errors"))
    }

    /// The embedded default: every interface but `lo`, the example rule,
    /// events on stdout. What `hopwatch run` uses without a config file.
    pub fn embedded() -> Config {
        Config::parse(EMBEDDED, "<embedded default>").expect("the embedded config is valid")
    }
}

/// The config `hopwatch run` uses when no file is given and none is installed.
pub const EMBEDDED: &str = r#"
[links]
interfaces = ["!lo"]

[[rule]]
name = "tx-errors"
when = "increase(tx_errors[5s]) > 3"
severity = "critical"

[[rule]]
name = "rx-errors"
when = "increase(rx_errors[5s]) > 3"
severity = "critical"

[output.stdout]
"#;

/// The machine's hostname, the default agent name.
pub use crate::host::hostname;
