//! A spool segment's bytes as a crash may leave them (torn lines, zeros,
//! anything), with its ack and `.emitted` records and the quarantine file
//! beside the spool, read back by opening the spool: what it keeps must
//! send (never a line set aside), acknowledge and take new events, and a
//! second opening must find nothing more to cut and nothing more lost.
#![no_main]

use hopwatch::event::{Body, Link, LinkState, Sequencer};
use hopwatch::output::spool::Spool;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
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
    base.join(format!("hopwatch-fuzz-spool-{}", std::process::id()))
}

/// The one field of a line the spool reads.
#[derive(Deserialize)]
struct Head {
    seq: u64,
}

/// A quarantine record, as the spool writes it.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Quarantined {
    boot: String,
    seq: u64,
    reason: String,
    line: String,
}

/// The seqs of boot `old` the quarantine file sets aside.
fn set_aside(quarantine: &[u8]) -> BTreeSet<u64> {
    quarantine
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Quarantined>(line).ok())
        .filter(|q| q.boot == "old")
        .map(|q| q.seq)
        .collect()
}

fuzz_target!(|data: &[u8]| {
    // "\0\n" parts the input: the segment, then the ack file, the
    // `.emitted` record and the quarantine file, each present when its part
    // is.
    let mut parts = vec![data];
    while parts.len() < 4 {
        let last = parts.pop().expect("one part at least");
        match last.windows(2).position(|w| w == b"\0\n") {
            Some(i) => parts.extend([&last[..i], &last[i + 2..]]),
            None => {
                parts.push(last);
                break;
            }
        }
    }
    let present = parts.len() - 1;
    parts.resize(4, &[]);
    let scratch = scratch();
    let _ = std::fs::remove_dir_all(&scratch);
    // The spool in a folder of its own: the quarantine file lies beside it.
    let dir = scratch.join("spool");
    std::fs::create_dir_all(&dir).expect("a scratch dir");
    std::fs::write(dir.join("00000001_old_00000001.jsonl"), &parts[0]).expect("write a segment");
    if present >= 1 {
        std::fs::write(dir.join("00000001_old.acked"), &parts[1]).expect("write an ack");
    }
    if present >= 2 {
        std::fs::write(dir.join("00000001_old.emitted"), &parts[2]).expect("write a record");
    }
    let aside = if present >= 3 {
        std::fs::write(scratch.join("quarantine.jsonl"), &parts[3]).expect("write a quarantine");
        set_aside(&parts[3])
    } else {
        BTreeSet::new()
    };
    {
        let (mut spool, recovery) = Spool::open(&dir, "new", 8 << 10).expect("open the spool");
        for lost in &recovery.unwritten {
            assert!(lost.boot == "old" && lost.first_seq >= 1);
            assert_eq!(lost.count, lost.last_seq - lost.first_seq + 1);
        }
        while let Some(batch) = spool.next_batch(300).expect("next batch") {
            assert!(batch.count > 0);
            for line in batch.lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                // Read as the spool reads it: a line it keeps is whole JSON
                // with a seq, whatever bytes its other fields hold.
                let seq = serde_json::from_slice::<Head>(line)
                    .expect("a sent line")
                    .seq;
                assert!(
                    batch.boot != "old" || !aside.contains(&seq),
                    "seq {seq} was set aside, yet sent"
                );
            }
            spool.ack(&batch.boot, batch.last_seq).expect("ack");
        }
        let mut seq = Sequencer::new("leaf1", "new");
        let mut pending: VecDeque<_> = (0..3)
            .map(|_| {
                Arc::new(seq.stamp(
                    SystemTime::UNIX_EPOCH,
                    Body::Link(Link {
                        interface: "eth0".into(),
                        state: LinkState::Up,
                        previous: LinkState::Down,
                        carrier_changes: 2,
                        oper_state: "up".into(),
                        message: String::new(),
                        admin: None,
                        reason: None,
                    }),
                ))
            })
            .collect();
        spool
            .append(&mut pending, &mut Vec::new(), false)
            .expect("append");
    }
    let (_, recovery) = Spool::open(&dir, "newer", 8 << 10).expect("reopen the spool");
    assert_eq!(recovery.discarded_bytes, 0, "a second opening cut more");
    assert_eq!(
        recovery.unwritten,
        vec![],
        "a second opening found more lost"
    );
    let _ = std::fs::remove_dir_all(&scratch);
});
