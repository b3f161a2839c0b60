//! A connection's part in fabric traces: its place on the switchboard (the
//! trace requests it writes beside its acks, the answers it reads among the
//! events) and the addresses its agent reports, kept in the owners map from
//! the hello and every heartbeat newer than what was applied.

use crate::fabric::Fabric;
use crate::fabric::owners::Owners;
use crate::fabric::switchboard::Registration;
use crate::store::writer::Incoming;
use hopwatch_wire::event::Body;
use hopwatch_wire::wire::Hello;
use std::sync::Arc;

/// What a session holds for traces, from its accepted hello to its end.
pub(super) struct TraceLine {
    agent: String,
    /// Told when the session ends, however it ends.
    owners: Arc<Owners>,
    /// `None` once the connection is closing: nothing it could still read
    /// would answer, so waiting askers are told at once.
    registration: Option<Registration>,
    reports: Reports,
}

impl TraceLine {
    /// Takes the hello's addresses and puts the connection on the
    /// switchboard.
    pub(super) fn open(fabric: &Fabric, hello: &Hello) -> TraceLine {
        fabric.owners.connected(&hello.agent, &hello.addresses);
        TraceLine {
            agent: hello.agent.clone(),
            owners: Arc::clone(&fabric.owners),
            registration: Some(fabric.switchboard.register(&hello.agent)),
            reports: Reports::new(hello),
        }
    }

    /// Every request line queued now, to write at once; waits for the first.
    /// Never ready once the connection has hung up.
    pub(super) async fn requests(&mut self) -> Vec<u8> {
        let Some(registration) = &mut self.registration else {
            return std::future::pending().await;
        };
        // The registration holds the queue's sender, so it never ends first.
        let Some(mut out) = registration.next_request().await else {
            return std::future::pending().await;
        };
        while let Some(more) = registration.try_next_request() {
            out.extend_from_slice(&more);
        }
        out
    }

    /// A `trace_result` line read on this connection.
    pub(super) fn answer(&self, line: &[u8]) {
        if let Some(registration) = &self.registration {
            registration.deliver(line);
        }
    }

    /// A `trace_result` line too long to read: its question fails, and the
    /// line is passed over rather than ending the connection. False when the
    /// line does not start as an answer does.
    pub(super) fn too_long(&self, head: &[u8], max_line: usize) -> bool {
        let Some(id) = answer_id(head) else {
            return false;
        };
        if let Some(registration) = &self.registration {
            registration.garbage(
                id,
                format!(
                    "the answer is longer than max_line ({max_line} bytes); ask for less, or raise [collector] max_line"
                ),
            );
        }
        true
    }

    /// An event of this connection's agent: a heartbeat newer than the
    /// addresses applied so far replaces them.
    pub(super) fn event(&mut self, fabric: &Fabric, incoming: &Incoming) {
        if let Some(Body::Heartbeat(heartbeat)) = &incoming.body
            && self
                .reports
                .fresh(&incoming.boot, incoming.seq, incoming.ts_ms)
        {
            fabric.owners.update(&self.agent, &heartbeat.addresses);
        }
    }

    /// Takes the connection off the switchboard.
    pub(super) fn hang_up(&mut self) {
        self.registration = None;
    }
}

impl Drop for TraceLine {
    fn drop(&mut self) {
        self.owners.disconnected(&self.agent);
    }
}

/// Bytes of a line enough to read an answer's id from its start.
pub(super) const ANSWER_HEAD: usize = 64;

/// The id of a `trace_result` from the start of its line, as agents write
/// it (`{"type":"trace_result","id":7,…`, whitespace allowed between the
/// tokens): all there is to go on when the whole line is too long to read.
fn answer_id(head: &[u8]) -> Option<u64> {
    let compact: Vec<u8> = head
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let rest = compact.strip_prefix(br#"{"type":"trace_result","id":"#.as_slice())?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    // The id must end inside the head, or it may be cut short.
    if digits == 0 || digits == rest.len() {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// Which heartbeats report addresses newer than those applied. After the
/// hello the agent resends what its spool holds, heartbeats of an earlier
/// boot or from before this connection among them; their addresses are
/// older than the hello's and must not replace them. So a heartbeat counts
/// when it is of the hello's boot, stamped no earlier than the hello (by
/// the agent's own clock, so skew does not matter), and after the last one
/// counted; once one has counted, sequence order alone decides, so a clock
/// stepped back later does not hold addresses still.
#[derive(Debug)]
struct Reports {
    boot: String,
    hello_ms: Option<i64>,
    last_seq: u64,
}

impl Reports {
    fn new(hello: &Hello) -> Reports {
        Reports {
            boot: hello.boot.clone(),
            hello_ms: hello
                .now
                .as_deref()
                .and_then(|now| humantime::parse_rfc3339_weak(now).ok())
                .map(crate::store::millis),
            last_seq: 0,
        }
    }

    fn fresh(&mut self, boot: &str, seq: u64, ts_ms: i64) -> bool {
        if boot != self.boot || seq <= self.last_seq {
            return false;
        }
        if self.last_seq == 0 && self.hello_ms.is_some_and(|hello| ts_ms < hello) {
            return false;
        }
        self.last_seq = seq;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reports(now: Option<&str>) -> Reports {
        Reports::new(
            &serde_json::from_value(serde_json::json!({
                "type": "hello", "protocol": 2, "token": "", "agent": "leaf1", "boot": "b2",
                "boots": ["b1", "b2"], "version": "1", "addresses": [], "now": now,
            }))
            .unwrap(),
        )
    }

    #[test]
    fn heartbeats_older_than_the_hello_do_not_replace_its_addresses() {
        let hello = 1_700_000_010_000;
        let mut r = reports(Some("2023-11-14T22:13:30.000Z"));
        assert_eq!(r.hello_ms, Some(hello));
        // Resent from the spool: an earlier boot, then this boot's from
        // before the hello.
        assert!(!r.fresh("b1", 90, hello + 5_000));
        assert!(!r.fresh("b2", 3, hello - 10_000));
        assert!(!r.fresh("b2", 4, hello - 1));
        // Live ones.
        assert!(r.fresh("b2", 5, hello));
        assert!(r.fresh("b2", 9, hello + 10_000));
        // A repeat, and one stamped earlier after a clock step: sequence
        // order decides once one has counted.
        assert!(!r.fresh("b2", 9, hello + 10_000));
        assert!(r.fresh("b2", 12, hello - 60_000));
    }

    #[test]
    fn reads_an_answer_s_id_from_the_start_of_its_line() {
        assert_eq!(
            answer_id(br#"{"type":"trace_result","id":42,"result":{"kind":"#),
            Some(42)
        );
        assert_eq!(
            answer_id(b"{ \"type\" : \"trace_result\",\n \"id\": 7 ,"),
            Some(7)
        );
        // Cut inside the id, another type, the id elsewhere, not a number.
        assert_eq!(answer_id(br#"{"type":"trace_result","id":42"#), None);
        assert_eq!(answer_id(br#"{"type":"heartbeat","id":42,"#), None);
        assert_eq!(answer_id(br#"{"id":42,"type":"trace_result","#), None);
        assert_eq!(answer_id(br#"{"type":"trace_result","id":"x","#), None);
        assert_eq!(
            answer_id(br#"{"type":"trace_result","id":99999999999999999999999,"#),
            None
        );
    }

    #[test]
    fn without_the_hello_s_clock_every_newer_heartbeat_of_its_boot_counts() {
        let mut r = reports(None);
        assert!(r.fresh("b2", 1, 0));
        assert!(!r.fresh("b1", 2, i64::MAX));
        assert!(r.fresh("b2", 2, 0));
        assert!(!r.fresh("b2", 1, 0));
    }
}
