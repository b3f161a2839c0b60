//! The `syslog` output: the shared crate's [`SyslogOutput`] run as one of
//! the agent's outputs, so alerts land in the log pipeline operators already
//! watch, except those a silence covers.

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
        !super::silenced(event) && SyslogOutput::accepts(self, event)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AlertState, Body, Sequencer};
    use std::time::SystemTime;

    #[test]
    fn a_silenced_alert_is_not_sent() {
        let output = SyslogOutput::new(SyslogSettings {
            target: SyslogTarget::Udp("127.0.0.1:9".into()),
            facility: parse_facility("local7").unwrap(),
            protocol: Protocol::Rfc5424,
            format: Format::Text,
            hostname: "leaf1".into(),
            types: Vec::new(),
        });
        let output: &dyn Output = &output;
        let mut seq = Sequencer::new("leaf1", "b");
        let mut alert = crate::silence::tests::alert(AlertState::Resolved, "tx", "Eth1-1");
        assert!(output.accepts(&seq.stamp(SystemTime::now(), Body::Alert(alert.clone()))));
        alert.silenced = true;
        alert.silence = Some("c-0123456789abcdef".into());
        assert!(!output.accepts(&seq.stamp(SystemTime::now(), Body::Alert(alert))));
    }
}
