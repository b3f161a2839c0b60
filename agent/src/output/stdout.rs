//! The `stdout` output: one JSON object per line, for `hopwatch run` in the
//! foreground and for piping into `jq`. Generic over the writer so tests pass
//! a `Vec<u8>`.

use super::{Output, OutputError};
use crate::event::Event;
use std::io::Write;

pub struct StdoutOutput<W: Write + Send> {
    writer: W,
    /// Event types to print; empty means all.
    types: Vec<String>,
}

impl<W: Write + Send> StdoutOutput<W> {
    pub fn new(writer: W, types: Vec<String>) -> StdoutOutput<W> {
        StdoutOutput { writer, types }
    }

    pub fn into_inner(self) -> W {
        self.writer
    }
}

impl<W: Write + Send> Output for StdoutOutput<W> {
    fn name(&self) -> &str {
        "stdout"
    }

    fn accepts(&self, event: &Event) -> bool {
        !super::silenced(event)
            && (self.types.is_empty() || self.types.iter().any(|t| t == event.kind()))
    }

    fn send(&mut self, event: &Event) -> Result<(), OutputError> {
        let write = |w: &mut W| -> std::io::Result<()> {
            serde_json::to_writer(&mut *w, event)?;
            w.write_all(b"\n")
        };
        write(&mut self.writer).map_err(|e| OutputError::Write {
            target: "stdout".into(),
            reason: e.to_string(),
        })
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        self.writer.flush().map_err(|e| OutputError::Write {
            target: "stdout".into(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Body, Loss, Sequencer};
    use std::time::SystemTime;

    #[test]
    fn writes_one_json_line_per_event() {
        let mut out = StdoutOutput::new(Vec::new(), vec![]);
        let mut seq = Sequencer::new("leaf1", "b");
        for _ in 0..2 {
            let e = seq.stamp(
                SystemTime::now(),
                Body::Loss(Loss {
                    count: 1,
                    first_seq: 1,
                    last_seq: 1,
                    lost_boot: None,
                    message: "lost".into(),
                }),
            );
            out.send(&e).unwrap();
        }
        let text = String::from_utf8(out.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["seq"], 2);
        assert_eq!(second["type"], "loss");
    }

    #[test]
    fn a_silenced_alert_is_not_printed() {
        let out = StdoutOutput::new(Vec::new(), vec![]);
        let mut seq = Sequencer::new("leaf1", "b");
        let mut alert =
            crate::silence::tests::alert(crate::event::AlertState::Firing, "tx", "Eth1-1");
        assert!(out.accepts(&seq.stamp(SystemTime::now(), Body::Alert(alert.clone()))));
        alert.silenced = true;
        alert.silence = Some("l-0123456789abcdef".into());
        assert!(!out.accepts(&seq.stamp(SystemTime::now(), Body::Alert(alert))));
    }
}
