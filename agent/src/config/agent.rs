//! `[agent]`: the settings that say where counters, link changes and traces
//! come from, and what the agent calls itself.

use super::hostname;
use super::raw::RawAgent;
use super::validate::Validator;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    pub name: String,
    pub interval: Duration,
    pub heartbeat: Duration,
    pub state_dir: PathBuf,
    /// The heap the agent may hold, in bytes; over it the agent stops in
    /// order (see [`crate::memory`]).
    pub memory_limit: u64,
    pub source: SourceKind,
    pub proc_root: PathBuf,
    pub sys_root: PathBuf,
    pub link_watch: LinkWatch,
    pub trace_backend: TraceBackendKind,
    /// NX-API's local unix socket on NX-OS.
    pub nxapi_socket: PathBuf,
    /// The NX-OS user NX-API runs commands as.
    pub nxapi_user: String,
}

impl AgentSettings {
    /// The counter source `auto` leads to on this machine without asking
    /// NX-API: `procfs` where NX-API's socket is absent. Where it exists (the
    /// bash shell of an NX-OS switch) `auto` stays: the first poll settles it
    /// on `dme` when the socket serves the REST API, else on `nxapi` (see
    /// [`crate::source::nxos_auto`]).
    pub fn resolved_source(&self) -> SourceKind {
        match self.source {
            SourceKind::Auto if self.nxapi_socket.exists() => SourceKind::Auto,
            SourceKind::Auto => SourceKind::Procfs,
            other => other,
        }
    }

    /// Whether the counters come from NX-OS, where polls cost the switch's
    /// supervisor: `auto` counts where NX-API's socket exists, as every
    /// source it resolves to there is an NX-OS one. Asks NX-API nothing.
    pub fn on_nxos(&self) -> bool {
        on_nxos(self.source, &self.nxapi_socket)
    }

    /// What an operator should hear about `interval` on this host: polling
    /// NX-OS faster than every 5 s.
    pub fn interval_warning(&self) -> Option<String> {
        (self.on_nxos() && self.interval < NXOS_GENTLE_INTERVAL).then(|| {
            format!(
                "[agent] interval {} is shorter than {} on NX-OS: NX-API runs every poll in one of a few VSH sessions (shared with every other NX-API client, rejected beyond that), and Cisco's own telemetry samples no faster than every 5s; the default there is {}",
                humantime::format_duration(self.interval),
                humantime::format_duration(NXOS_GENTLE_INTERVAL),
                humantime::format_duration(NXOS_DEFAULT_INTERVAL),
            )
        })
    }

    /// The trace backend `auto` resolves to, by the same test.
    pub fn resolved_trace_backend(&self) -> TraceBackendKind {
        match self.trace_backend {
            TraceBackendKind::Auto if self.nxapi_socket.exists() => TraceBackendKind::Nxapi,
            TraceBackendKind::Auto => TraceBackendKind::Kernel,
            other => other,
        }
    }
}

/// Where counters come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Where NX-API's socket exists, `dme` if it serves the REST API and
    /// `nxapi` if not; elsewhere `procfs`.
    Auto,
    /// `/proc/net/dev`: every Linux, and the hardware's counters where the
    /// driver mirrors them (Cumulus, SONiC, switchdev).
    Procfs,
    /// NX-OS hardware counters through NX-API's `show interface counters`
    /// and `show interface counters errors`.
    Nxapi,
    /// NX-OS hardware counters from the DME (NX-API REST), one request a
    /// tick for every port.
    Dme,
}

/// See [`AgentSettings::on_nxos`].
fn on_nxos(source: SourceKind, nxapi_socket: &std::path::Path) -> bool {
    match source {
        SourceKind::Auto => nxapi_socket.exists(),
        kind => kind.is_nxos(),
    }
}

/// The sampling interval where `interval` is not set.
pub(super) const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The same on NX-OS: gNMI's default SAMPLE interval, gentle on NX-API.
const NXOS_DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Below this an NX-OS interval draws a warning: Cisco's minimum telemetry
/// cadence.
const NXOS_GENTLE_INTERVAL: Duration = Duration::from_secs(5);
/// The shortest interval NX-OS is polled at.
const NXOS_MIN_INTERVAL: Duration = Duration::from_secs(1);

impl SourceKind {
    /// Whether this source reads an NX-OS switch's counters.
    pub fn is_nxos(self) -> bool {
        matches!(self, SourceKind::Nxapi | SourceKind::Dme)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Auto => "auto",
            SourceKind::Procfs => "procfs",
            SourceKind::Nxapi => "nxapi",
            SourceKind::Dme => "dme",
        }
    }
}

/// Who answers flow traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceBackendKind {
    /// `nxapi` where NX-API's socket exists, else `kernel`.
    Auto,
    /// The Linux FIB over rtnetlink.
    Kernel,
    /// The hardware's answer: `show routing hash` through NX-API.
    Nxapi,
}

impl TraceBackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceBackendKind::Auto => "auto",
            TraceBackendKind::Kernel => "kernel",
            TraceBackendKind::Nxapi => "nxapi",
        }
    }
}

/// How link state changes are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkWatch {
    /// `netlink` when `sys_root` is `/sys`, else `poll`.
    Auto,
    /// The kernel pushes every change at once (RTNLGRP_LINK).
    Netlink,
    /// `sys_root` is read at every tick; for fixture roots and containers
    /// whose `/sys` belongs to another network namespace.
    Poll,
    /// The counter source reports each link with its counters (`nxapi`);
    /// chosen by the agent for such a source when `link_watch` is `auto`,
    /// never configured.
    Source,
}

impl Validator<'_> {
    pub(super) fn agent(&mut self, raw: &RawAgent) -> Option<AgentSettings> {
        let interval = match &raw.interval {
            Some(v) => {
                let d = self.duration(v, "interval")?;
                if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
                    self.error(
                        v,
                        format!("interval {:?} is out of range", v.get_ref()),
                        Some("sample between every 100ms and every 1h; 1s is usual".into()),
                    );
                    return None;
                }
                d
            }
            None => DEFAULT_INTERVAL,
        };
        let heartbeat = match &raw.heartbeat {
            Some(v) => {
                let d = self.duration(v, "heartbeat")?;
                if d < interval {
                    self.error(
                        v,
                        format!("heartbeat {:?} is shorter than the interval", v.get_ref()),
                        Some("a heartbeat is sent at most once a tick; use 10s or more".into()),
                    );
                    return None;
                }
                // The collector takes an agent silent for a day at most for
                // gone; a longer heartbeat would keep it stale.
                if d > Duration::from_secs(3600) {
                    self.error(
                        v,
                        format!("heartbeat {:?} is longer than 1h", v.get_ref()),
                        Some("the collector counts an agent silent past its heartbeat_timeout as stale; use 10s".into()),
                    );
                    return None;
                }
                d
            }
            None => Duration::from_secs(10),
        };
        let source = match raw.source.as_ref() {
            None => SourceKind::Auto,
            Some(v) => match v.get_ref().as_str() {
                "auto" => SourceKind::Auto,
                "procfs" => SourceKind::Procfs,
                "nxapi" => SourceKind::Nxapi,
                "dme" => SourceKind::Dme,
                other => {
                    self.error(
                        v,
                        format!("unknown counter source `{other}`"),
                        Some("use \"auto\", \"procfs\", \"dme\" or \"nxapi\"".into()),
                    );
                    SourceKind::Auto
                }
            },
        };
        let trace_backend = match raw.trace_backend.as_ref() {
            None => TraceBackendKind::Auto,
            Some(v) => match v.get_ref().as_str() {
                "auto" => TraceBackendKind::Auto,
                "kernel" => TraceBackendKind::Kernel,
                "nxapi" => TraceBackendKind::Nxapi,
                other => {
                    self.error(
                        v,
                        format!("unknown trace backend `{other}`"),
                        Some("use \"auto\", \"kernel\" or \"nxapi\"".into()),
                    );
                    TraceBackendKind::Auto
                }
            },
        };
        let link_watch = match raw.link_watch.as_ref() {
            None => LinkWatch::Auto,
            Some(v) => match v.get_ref().as_str() {
                "auto" => LinkWatch::Auto,
                "netlink" => LinkWatch::Netlink,
                "poll" => LinkWatch::Poll,
                other => {
                    self.error(
                        v,
                        format!("unknown link_watch `{other}`"),
                        Some("use \"auto\", \"netlink\" or \"poll\"".into()),
                    );
                    LinkWatch::Auto
                }
            },
        };
        let mut path = |v: &Option<Spanned<String>>, key: &str, default: &str| -> PathBuf {
            match v {
                Some(p) if p.get_ref().is_empty() => {
                    self.error(
                        p,
                        format!("`{key}` is empty"),
                        Some(format!("the default is {default:?}")),
                    );
                    PathBuf::from(default)
                }
                Some(p) => PathBuf::from(p.get_ref()),
                None => PathBuf::from(default),
            }
        };
        let state_dir = path(&raw.state_dir, "state_dir", "/var/lib/hopwatch");
        let proc_root = path(&raw.proc_root, "proc_root", "/proc");
        let sys_root = path(&raw.sys_root, "sys_root", "/sys");
        let nxapi_socket = path(
            &raw.nxapi_socket,
            "nxapi_socket",
            crate::nxapi::DEFAULT_SOCKET,
        );
        let nxapi_user = match &raw.nxapi_user {
            Some(u)
                if u.get_ref().trim().is_empty()
                    || u.get_ref().contains([':', ';', '\r', '\n']) =>
            {
                self.error(
                    u,
                    format!("`nxapi_user` {:?} is not an NX-OS user name", u.get_ref()),
                    Some(format!(
                        "name a local NX-OS user; the default is {:?}",
                        crate::nxapi::DEFAULT_USER
                    )),
                );
                crate::nxapi::DEFAULT_USER.to_string()
            }
            Some(u) => u.get_ref().clone(),
            None => crate::nxapi::DEFAULT_USER.to_string(),
        };
        let nxos = on_nxos(source, &nxapi_socket);
        let interval = self.nxos_interval(raw.interval.as_ref(), interval, nxos);
        let memory_limit = self.memory_limit(raw);
        let name = match &raw.name {
            Some(n) => {
                // The collector's rule: a name it would refuse is a config
                // error here, not a refusal at every reconnect.
                if let Err(e) = crate::wire::check_agent_name(n.get_ref()) {
                    let hint = match e.problem {
                        crate::wire::NameProblem::Empty => "remove it to use the hostname",
                        crate::wire::NameProblem::TooLong(_) => "shorten it",
                        crate::wire::NameProblem::Control { .. } => "use printable characters only",
                    };
                    self.error(n, format!("`name` {}", e.problem), Some(hint.into()));
                }
                n.get_ref().clone()
            }
            None => hostname(),
        };
        Some(AgentSettings {
            name,
            interval,
            heartbeat,
            state_dir,
            memory_limit,
            source,
            proc_root,
            sys_root,
            link_watch,
            trace_backend,
            nxapi_socket,
            nxapi_user,
        })
    }

    /// NX-OS is polled gently: every 10 s unless `interval` says otherwise,
    /// and never more often than every second.
    fn nxos_interval(
        &mut self,
        raw: Option<&Spanned<String>>,
        interval: Duration,
        nxos: bool,
    ) -> Duration {
        match raw {
            _ if !nxos => interval,
            None => NXOS_DEFAULT_INTERVAL,
            Some(v) => {
                if interval < NXOS_MIN_INTERVAL {
                    self.error(
                        v,
                        format!(
                            "interval {:?} is shorter than 1s, the least NX-OS is polled at",
                            v.get_ref()
                        ),
                        Some("NX-API runs every poll in one of a few VSH sessions; use 10s (the default on NX-OS), 5s at the least".into()),
                    );
                }
                interval
            }
        }
    }
}

impl Validator<'_> {
    /// `memory_limit`: a size of at least [`crate::memory::MIN_LIMIT`].
    fn memory_limit(&mut self, raw: &RawAgent) -> u64 {
        use crate::memory::{DEFAULT_LIMIT, MIN_LIMIT};
        let Some(v) = &raw.memory_limit else {
            return DEFAULT_LIMIT;
        };
        let hint = "the agent holds 0.2 to 5 MiB; write a size like \"64MiB\" (the default), at least \"64KiB\"";
        match v.get_ref().bytes() {
            Ok(n) if n < MIN_LIMIT => {
                self.error(
                    v,
                    format!("memory_limit {n} bytes is too small"),
                    Some(hint.into()),
                );
                DEFAULT_LIMIT
            }
            Ok(n) => n,
            Err(e) => {
                self.error(
                    v,
                    format!("bad size for `memory_limit`: {e}"),
                    Some(hint.into()),
                );
                DEFAULT_LIMIT
            }
        }
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;
    use crate::config::Config;

    fn agent(text: &str) -> AgentSettings {
        Config::parse(text, "t.toml").unwrap().agent
    }

    #[test]
    fn dme_is_a_source_and_auto_waits_for_nxapi_where_its_socket_is() {
        let dir = std::env::temp_dir().join(format!("hopwatch-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("nxapi.sock");
        let absent = dir.join("absent.sock");
        std::fs::write(&socket, "").unwrap();
        let with = |source: &str, socket: &std::path::Path| {
            agent(&format!(
                "[agent]\nsource = \"{source}\"\nnxapi_socket = \"{}\"\n",
                socket.display()
            ))
        };
        assert_eq!(with("dme", &absent).source, SourceKind::Dme);
        assert_eq!(with("dme", &absent).resolved_source(), SourceKind::Dme);
        assert_eq!(with("auto", &absent).resolved_source(), SourceKind::Procfs);
        assert_eq!(with("auto", &socket).resolved_source(), SourceKind::Auto);
        assert_eq!(with("nxapi", &socket).resolved_source(), SourceKind::Nxapi);
        let error = Config::parse("[agent]\nsource = \"rest\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("unknown counter source `rest`") && error.contains("\"dme\""),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
