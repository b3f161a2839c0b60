//! `source = "auto"` on NX-OS: the `dme` source where NX-API serves the
//! REST API on its local socket, the `nxapi` (CLI) source where it does
//! not. Only asking tells which, so the choice is made by the first poll,
//! on the sampler thread: neither the agent's start nor a reload waits on
//! NX-API, and the probe is the DME counter query itself, whose answer is
//! that tick's counters.
//!
//! What the answer decides:
//! - counters: `dme`, until a reload;
//! - HTTP 404, 405 or 501 (no REST API behind the socket): `nxapi`, at once;
//! - NX-API not answering (no connection, a timeout, nginx's 502/503 while
//!   NX-OS boots): nothing. The CLI goes through the same NX-API, so it would
//!   not answer either, and choosing it would keep the switch on the dearer
//!   source once NX-API is up. The tick is lost and the next asks again;
//! - the DME answering but refusing the query or answering something else:
//!   `nxapi` after [`REFUSALS`] such answers in a row, with a warning, so a
//!   DME hiccup at boot does not decide it.
//!
//! Each decision is logged once with its reason. A reload asks anew.

use super::dme::DmeSource;
use super::nxapi::CountersSource;
use super::{CounterSource, Snapshot, SourceError};
use crate::nxapi::NxapiError;
use std::path::PathBuf;
use std::time::Duration;

/// DME refusals in a row after which the CLI is chosen.
pub const REFUSALS: u32 = 3;

/// The NX-OS counter source not chosen yet, or the one chosen. Both
/// sources are kept: the one not chosen is a client that never connects.
#[derive(Debug)]
pub struct NxosAuto {
    socket: PathBuf,
    dme: DmeSource,
    cli: CountersSource,
    chosen: Option<Choice>,
    refusals: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    Dme,
    Cli,
}

/// What one probe's failure says about the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// The socket serves no REST API.
    Absent,
    /// NX-API is not answering at all.
    Silent,
    /// The DME answered, but not with counters.
    Refused,
}

fn classify(error: &SourceError) -> Probe {
    match error {
        SourceError::DmeAbsent(_) => Probe::Absent,
        SourceError::Nxapi(
            NxapiError::Connect { .. } | NxapiError::Timeout { .. } | NxapiError::Io { .. },
        ) => Probe::Silent,
        SourceError::Nxapi(NxapiError::Rest { status, .. }) if *status >= 500 => Probe::Silent,
        _ => Probe::Refused,
    }
}

impl NxosAuto {
    pub fn new(socket: impl Into<PathBuf>, user: &str, timeout: Duration) -> NxosAuto {
        let socket = socket.into();
        NxosAuto {
            dme: DmeSource::new(&socket, user, timeout),
            cli: CountersSource::new(&socket, user, timeout),
            socket,
            chosen: None,
            refusals: 0,
        }
    }
}

impl CounterSource for NxosAuto {
    /// `auto` until the first answer chose.
    fn name(&self) -> &'static str {
        match self.chosen {
            None => "auto",
            Some(Choice::Dme) => self.dme.name(),
            Some(Choice::Cli) => self.cli.name(),
        }
    }

    /// The agent asks this once, when it builds the source, so both
    /// choices must agree; they do: on NX-OS links come from the kernel's
    /// carrier whichever source counts.
    fn reports_links(&self) -> bool {
        self.dme.reports_links() || self.cli.reports_links()
    }

    fn sample_into(&mut self, snapshot: &mut Snapshot) -> Result<(), SourceError> {
        match self.chosen {
            Some(Choice::Dme) => return self.dme.sample_into(snapshot),
            Some(Choice::Cli) => return self.cli.sample_into(snapshot),
            None => {}
        }
        let error = match self.dme.sample_into(snapshot) {
            Ok(()) => {
                tracing::info!(
                    socket = %self.socket.display(),
                    "Counter source: dme, as NX-API serves the REST API (the DME) on its local socket; one request a tick."
                );
                self.chosen = Some(Choice::Dme);
                return Ok(());
            }
            Err(error) => error,
        };
        let probe = classify(&error);
        self.refusals = if probe == Probe::Refused {
            self.refusals + 1
        } else {
            0
        };
        match probe {
            Probe::Absent => tracing::info!(
                socket = %self.socket.display(),
                %error,
                "Counter source: nxapi, as NX-API does not serve the REST API on its local socket."
            ),
            Probe::Refused if self.refusals >= REFUSALS => tracing::warn!(
                socket = %self.socket.display(),
                %error,
                "Counter source: nxapi, as the DME refused the counter query {REFUSALS} times in a row; set [agent] source = \"dme\" to insist on it."
            ),
            Probe::Refused | Probe::Silent => {
                return Err(match error {
                    SourceError::Nxapi(inner) => SourceError::Undecided(inner),
                    other => other,
                });
            }
        }
        self.chosen = Some(Choice::Cli);
        self.cli.sample_into(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_apart() {
        let rest = |status| {
            SourceError::Nxapi(NxapiError::Rest {
                path: "/api/x".into(),
                status,
                message: String::new(),
            })
        };
        assert_eq!(
            classify(&SourceError::DmeAbsent(NxapiError::Rest {
                path: "/api/x".into(),
                status: 404,
                message: String::new(),
            })),
            Probe::Absent
        );
        assert_eq!(classify(&rest(502)), Probe::Silent);
        assert_eq!(classify(&rest(503)), Probe::Silent);
        assert_eq!(classify(&rest(400)), Probe::Refused);
        assert_eq!(classify(&rest(403)), Probe::Refused);
        let timeout = SourceError::Nxapi(NxapiError::Timeout {
            path: "s".into(),
            command: "c".into(),
            timeout: Duration::from_secs(1),
        });
        assert_eq!(classify(&timeout), Probe::Silent);
        let connect = SourceError::Nxapi(NxapiError::Connect {
            path: "s".into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        });
        assert_eq!(classify(&connect), Probe::Silent);
        let garbled = SourceError::Nxapi(NxapiError::Reply {
            command: "c".into(),
            reason: "r".into(),
        });
        assert_eq!(classify(&garbled), Probe::Refused);
    }

    #[test]
    fn neither_choice_reports_links() {
        let source = NxosAuto::new("/nonexistent", "admin", Duration::from_secs(1));
        assert!(!source.dme.reports_links() && !source.cli.reports_links());
        assert!(!source.reports_links());
    }

    #[test]
    fn an_unanswering_socket_decides_nothing() {
        let mut source = NxosAuto::new("/nonexistent/nxapi.sock", "admin", Duration::from_secs(1));
        for _ in 0..REFUSALS + 2 {
            let error = source.sample().unwrap_err();
            assert!(matches!(error, SourceError::Undecided(_)), "{error}");
            assert!(error.to_string().contains("next tick"), "{error}");
        }
        assert_eq!(source.name(), "auto");
    }
}
