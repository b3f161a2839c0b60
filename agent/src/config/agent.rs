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
    /// The counter source `auto` resolves to: `nxapi` where NX-API's socket
    /// exists (the bash shell of an NX-OS switch), else `procfs`.
    pub fn resolved_source(&self) -> SourceKind {
        match self.source {
            SourceKind::Auto if self.nxapi_socket.exists() => SourceKind::Nxapi,
            SourceKind::Auto => SourceKind::Procfs,
            other => other,
        }
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
    /// `nxapi` where NX-API's socket exists, else `procfs`.
    Auto,
    /// `/proc/net/dev`: every Linux, and the hardware's counters where the
    /// driver mirrors them (Cumulus, SONiC, switchdev).
    Procfs,
    /// NX-OS hardware counters through NX-API's `show interface counters`
    /// and `show interface counters errors`.
    Nxapi,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Auto => "auto",
            SourceKind::Procfs => "procfs",
            SourceKind::Nxapi => "nxapi",
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
    /// chosen by the agent whatever `link_watch` says, never configured.
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
            None => Duration::from_secs(1),
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
                other => {
                    self.error(
                        v,
                        format!("unknown counter source `{other}`"),
                        Some("use \"auto\", \"procfs\" or \"nxapi\"".into()),
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
            source,
            proc_root,
            sys_root,
            link_watch,
            trace_backend,
            nxapi_socket,
            nxapi_user,
        })
    }
}
