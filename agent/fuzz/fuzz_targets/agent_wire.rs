//! What the collector sends an agent: each line read as a
//! `CollectorMessage` and applied as the agent's collector output applies it
//! (a welcome rewinds the spool, an ack trims it, a reject sets its line
//! aside, a trace request's query is read and checked), against a real
//! spool holding two boots' events.
#![no_main]

use hopwatch::event::{Body, Link, LinkState, Sequencer};
use hopwatch::output::spool::Spool;
use hopwatch::trace::TraceQuery;
use hopwatch::wire::CollectorMessage;
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

fn scratch() -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("hopwatch-fuzz-wire-{}", std::process::id()))
}

fn append(spool: &mut Spool, boot: &str, n: usize) {
    let mut seq = Sequencer::new("leaf1", boot);
    let mut pending: VecDeque<_> = (0..n)
        .map(|_| {
            Arc::new(seq.stamp(
                SystemTime::UNIX_EPOCH,
                Body::Link(Link {
                    interface: "eth0".into(),
                    state: LinkState::Down,
                    previous: LinkState::Up,
                    carrier_changes: 1,
                    oper_state: "down".into(),
                    message: String::new(),
                    admin: None,
                    reason: None,
                }),
            ))
        })
        .collect();
    spool
        .append(&mut pending, &mut Vec::new(), false)
        .expect("append to a scratch spool");
}

fn read_query(query: TraceQuery) {
    let flow = match query {
        TraceQuery::Paths(q) => {
            if q.validate().is_ok() {
                let flows = q.flows().expect("a valid query enumerates its flows");
                assert_eq!(flows.len() as u64, q.flow_count());
            }
            return;
        }
        TraceQuery::Flow(q) => q,
        TraceQuery::Hop(q) => match q.arriving() {
            Ok(flow) => flow,
            Err(_) => return,
        },
    };
    let _ = flow.validate();
}

/// The seq of each line of a batch.
fn seqs(lines: &[u8]) -> impl Iterator<Item = u64> + '_ {
    lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|line| {
        serde_json::from_slice::<serde_json::Value>(line).expect("a spooled line is JSON")["seq"]
            .as_u64()
            .expect("a spooled line has a seq")
    })
}

fuzz_target!(|data: &[u8]| {
    // The spool in a folder of its own: the quarantine file lies beside it.
    let scratch = scratch();
    let _ = std::fs::remove_dir_all(&scratch);
    let dir = scratch.join("spool");
    {
        let (mut old, _) = Spool::open(&dir, "boot-a", 64 << 10).expect("a scratch spool");
        append(&mut old, "boot-a", 20);
    }
    let (mut spool, _) = Spool::open(&dir, "boot-b", 64 << 10).expect("a scratch spool");
    append(&mut spool, "boot-b", 20);
    let mut aside = BTreeSet::new();
    for line in data.split(|&b| b == b'\n') {
        let Ok(message) = serde_json::from_slice::<CollectorMessage>(line) else {
            continue;
        };
        match message {
            CollectorMessage::Welcome { last_seq, .. } => {
                spool.rewind(&last_seq).expect("rewind");
            }
            CollectorMessage::Ack { boot, seq } => spool.ack(&boot, seq).expect("ack"),
            CollectorMessage::TraceRequest { query, .. } => {
                if let Ok(query) = query {
                    read_query(query);
                }
            }
            CollectorMessage::Reject { boot, seq, reason } => {
                let before = spool.quarantined();
                let held = seq > spool.acked(&boot) && seq <= spool.last_seq(&boot);
                let done = spool.quarantine(&boot, seq, &reason).expect("quarantine");
                assert_eq!(done, held && !aside.contains(&(boot.clone(), seq)));
                assert_eq!(spool.quarantined(), before + u64::from(done));
                if done {
                    aside.insert((boot, seq));
                }
            }
            CollectorMessage::Refused { .. } | CollectorMessage::Silences { .. } => {}
        }
        while let Some(batch) = spool.next_batch(512).expect("next batch") {
            assert!(batch.count > 0 && batch.last_seq > spool.acked(&batch.boot));
            for seq in seqs(&batch.lines) {
                assert!(
                    !aside.contains(&(batch.boot.clone(), seq)),
                    "{} seq {seq} was set aside, yet sent again",
                    batch.boot
                );
            }
        }
    }
    drop(spool);
    let _ = std::fs::remove_dir_all(&scratch);
});
