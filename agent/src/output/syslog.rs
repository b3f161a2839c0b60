//! The `syslog` output: the shared crate's [`SyslogOutput`] run as one of
//! the agent's outputs, so alerts land in the log pipeline operators already
//! watch.

use super::{Output, OutputError};
use crate::event::Event;
pub use hopwatch_wire::syslog::{
    Format, Protocol, SendError, SyslogOutput, SyslogSettings, SyslogTarget, parse_facility,
};

impl Output for SyslogOutput {
    fn name(&self) -> &str {
        "syslog"
    }

    fn accepts(&self, event: &Event) -> bool {
        SyslogOutput::accepts(self, event)
    }

    fn send(&mut self, event: &Event) -> Result<(), OutputError> {
        SyslogOutput::send(self, event).map_err(OutputError::from)
    }
}

impl From<SendError> for OutputError {
    fn from(error: SendError) -> OutputError {
        match error {
            SendError::Connect { target, reason } => OutputError::Connect { target, reason },
            SendError::Write { target, reason } => OutputError::Write { target, reason },
        }
    }
}
