//! What each part of the running agent is built from, so a reload restarts
//! exactly the parts whose inputs changed. A reload builds the plans of the
//! running config and of the new one and compares them part by part; a
//! setting added to a plan is compared from then on, with nothing else to
//! remember.

use crate::config::{Config, SourceKind, StdoutSettings, TraceBackendKind};
use crate::output::collector::CollectorSettings;
use crate::output::syslog::SyslogSettings;
use crate::rule::Rule;
use std::path::Path;
use std::time::Duration;

/// Every restartable part's plan. Plans borrow from their config: they
/// live only for the comparison.
#[derive(Debug, PartialEq)]
pub(super) struct Plans<'a> {
    lock: LockPlan<'a>,
    rules: RulesPlan<'a>,
    outputs: OutputPlan<'a>,
    source: SourcePlan<'a>,
    ticker: TickerPlan,
    heartbeat: HeartbeatPlan,
}

/// The state directory's lock: one agent per directory.
#[derive(Debug, PartialEq)]
struct LockPlan<'a> {
    state_dir: &'a Path,
}

/// The rule engine. A change reconfigures it, which keeps the state of the
/// rules that stayed the same.
#[derive(Debug, PartialEq)]
struct RulesPlan<'a> {
    rules: &'a [Rule],
}

/// The outputs, rebuilt together: the collector output's spool can be held
/// by one output at a time.
#[derive(Debug, PartialEq)]
struct OutputPlan<'a> {
    stdout: Option<&'a StdoutSettings>,
    syslog: Option<&'a SyslogSettings>,
    /// `None` when the collector output is off, so the settings only it
    /// reads restart nothing then.
    collector: Option<CollectorPlan<'a>>,
}

#[derive(Debug, PartialEq)]
struct CollectorPlan<'a> {
    settings: &'a CollectorSettings,
    /// The agent's name, which the collector output says hello with.
    agent: &'a str,
    /// Where its spool lives.
    state_dir: &'a Path,
    trace: TracePlan<'a>,
}

/// The trace backend the collector output answers trace requests with.
#[derive(Debug, PartialEq)]
struct TracePlan<'a> {
    /// `auto` resolved: a socket that appeared since counts as a change.
    backend: TraceBackendKind,
    nxapi_socket: &'a Path,
    nxapi_user: &'a str,
}

/// The counter source.
#[derive(Debug, PartialEq)]
struct SourcePlan<'a> {
    /// As written: `auto` resolves when the source is built.
    source: SourceKind,
    proc_root: &'a Path,
    nxapi_socket: &'a Path,
    nxapi_user: &'a str,
    /// An NX-API poll's timeout follows it.
    interval: Duration,
}

/// The sampling ticker.
#[derive(Debug, PartialEq)]
struct TickerPlan {
    interval: Duration,
}

/// The heartbeat timer.
#[derive(Debug, PartialEq)]
struct HeartbeatPlan {
    heartbeat: Duration,
}

/// Which parts a reload restarts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Restarts {
    pub lock: bool,
    pub rules: bool,
    pub outputs: bool,
    pub source: bool,
    pub ticker: bool,
    pub heartbeat: bool,
}

impl<'a> Plans<'a> {
    pub fn of(config: &'a Config) -> Plans<'a> {
        let agent = &config.agent;
        Plans {
            lock: LockPlan {
                state_dir: &agent.state_dir,
            },
            rules: RulesPlan {
                rules: &config.rules,
            },
            outputs: OutputPlan {
                stdout: config.stdout.as_ref(),
                syslog: config.syslog.as_ref(),
                collector: config.collector.as_ref().map(|settings| CollectorPlan {
                    settings,
                    agent: &agent.name,
                    state_dir: &agent.state_dir,
                    trace: TracePlan {
                        backend: agent.resolved_trace_backend(),
                        nxapi_socket: &agent.nxapi_socket,
                        nxapi_user: &agent.nxapi_user,
                    },
                }),
            },
            source: SourcePlan {
                source: agent.source,
                proc_root: &agent.proc_root,
                nxapi_socket: &agent.nxapi_socket,
                nxapi_user: &agent.nxapi_user,
                interval: agent.interval,
            },
            ticker: TickerPlan {
                interval: agent.interval,
            },
            heartbeat: HeartbeatPlan {
                heartbeat: agent.heartbeat,
            },
        }
    }

    /// The parts whose plan differs in `new`.
    pub fn restarts(&self, new: &Plans<'_>) -> Restarts {
        Restarts {
            lock: self.lock != new.lock,
            rules: self.rules != new.rules,
            outputs: self.outputs != new.outputs,
            source: self.source != new.source,
            ticker: self.ticker != new.ticker,
            heartbeat: self.heartbeat != new.heartbeat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LinkWatch;
    use crate::matcher::InterfaceMatcher;

    /// Every output on, every setting a plan reads written out; no NX-API
    /// socket, so `auto` resolves the same way throughout.
    const FULL: &str = r#"
        [agent]
        name = "leaf1"
        interval = "1s"
        heartbeat = "10s"
        state_dir = "/var/lib/hopwatch"
        source = "procfs"
        proc_root = "/proc"
        sys_root = "/sys"
        link_watch = "poll"
        trace_backend = "auto"
        nxapi_socket = "/nonexistent/hopwatch-plan-test/nginx_local"
        nxapi_user = "admin"

        [[rule]]
        name = "tx-errors"
        when = "increase(tx_errors[5s]) > 3"

        [output.stdout]
        events = ["alert"]

        [output.syslog]
        address = "udp://127.0.0.1:514"

        [output.collector]
        address = "127.0.0.1:7000"
        token = "0123456789abcdef0123"
    "#;

    fn full() -> Config {
        Config::parse(FULL, "plan test").unwrap()
    }

    fn restarts(change: impl FnOnce(&mut Config)) -> Restarts {
        restarts_from(full(), change)
    }

    fn restarts_from(old: Config, change: impl FnOnce(&mut Config)) -> Restarts {
        let mut new = old.clone();
        change(&mut new);
        Plans::of(&old).restarts(&Plans::of(&new))
    }

    #[test]
    fn an_identical_config_restarts_nothing() {
        assert_eq!(restarts(|_| {}), Restarts::default());
        assert_eq!(
            Plans::of(&full()).restarts(&Plans::of(&full())),
            Restarts::default()
        );
    }

    #[test]
    fn each_setting_restarts_exactly_the_parts_built_from_it() {
        let none = Restarts::default();
        let lock = Restarts { lock: true, ..none };
        let rules = Restarts {
            rules: true,
            ..none
        };
        let outputs = Restarts {
            outputs: true,
            ..none
        };
        let source = Restarts {
            source: true,
            ..none
        };
        let heartbeat = Restarts {
            heartbeat: true,
            ..none
        };
        type Change = Box<dyn FnOnce(&mut Config)>;
        let cases: Vec<(&str, Change, Restarts)> = vec![
            (
                "state_dir",
                Box::new(|c| c.agent.state_dir = "/var/lib/hopwatch2".into()),
                Restarts {
                    outputs: true,
                    ..lock
                },
            ),
            (
                "rule",
                Box::new(|c| c.rules[0].for_ = Duration::from_secs(3)),
                rules,
            ),
            ("no rules", Box::new(|c| c.rules.clear()), rules),
            (
                "stdout",
                Box::new(|c| c.stdout.as_mut().unwrap().types.clear()),
                outputs,
            ),
            ("no syslog", Box::new(|c| c.syslog = None), outputs),
            (
                "collector",
                Box::new(|c| c.collector.as_mut().unwrap().ack_timeout = Duration::from_secs(99)),
                outputs,
            ),
            ("no collector", Box::new(|c| c.collector = None), outputs),
            ("name", Box::new(|c| c.agent.name = "leaf2".into()), outputs),
            (
                "trace_backend",
                Box::new(|c| c.agent.trace_backend = TraceBackendKind::Nxapi),
                outputs,
            ),
            (
                "trace_backend auto to kernel, as it resolved",
                Box::new(|c| c.agent.trace_backend = TraceBackendKind::Kernel),
                none,
            ),
            (
                "nxapi_socket",
                Box::new(|c| c.agent.nxapi_socket = "/nonexistent/other".into()),
                Restarts {
                    outputs: true,
                    source: true,
                    ..none
                },
            ),
            (
                "nxapi_user",
                Box::new(|c| c.agent.nxapi_user = "monitor".into()),
                Restarts {
                    outputs: true,
                    source: true,
                    ..none
                },
            ),
            (
                "source",
                Box::new(|c| c.agent.source = SourceKind::Nxapi),
                source,
            ),
            (
                "source procfs to auto",
                Box::new(|c| c.agent.source = SourceKind::Auto),
                source,
            ),
            (
                "proc_root",
                Box::new(|c| c.agent.proc_root = "/tmp/proc".into()),
                source,
            ),
            (
                "interval",
                Box::new(|c| c.agent.interval = Duration::from_secs(2)),
                Restarts {
                    source: true,
                    ticker: true,
                    ..none
                },
            ),
            (
                "heartbeat",
                Box::new(|c| c.agent.heartbeat = Duration::from_secs(30)),
                heartbeat,
            ),
            // Read afresh on every use, by no part a reload restarts.
            (
                "links",
                Box::new(|c| c.links = InterfaceMatcher::new(&["swp*"]).unwrap()),
                none,
            ),
            (
                "link_watch",
                Box::new(|c| c.agent.link_watch = LinkWatch::Netlink),
                none,
            ),
            (
                "sys_root",
                Box::new(|c| c.agent.sys_root = "/tmp/sys".into()),
                none,
            ),
        ];
        for (what, change, expected) in cases {
            assert_eq!(restarts(change), expected, "{what}");
        }
    }

    #[test]
    fn without_the_collector_its_settings_restart_nothing() {
        let mut old = full();
        old.collector = None;
        let lock = Restarts {
            lock: true,
            ..Restarts::default()
        };
        assert_eq!(
            restarts_from(old.clone(), |c| c.agent.name = "leaf2".into()),
            Restarts::default()
        );
        assert_eq!(
            restarts_from(old.clone(), |c| c.agent.trace_backend =
                TraceBackendKind::Nxapi),
            Restarts::default()
        );
        assert_eq!(
            restarts_from(old, |c| c.agent.state_dir = "/tmp/hopwatch".into()),
            lock
        );
    }
}
