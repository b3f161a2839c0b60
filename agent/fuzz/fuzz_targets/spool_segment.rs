//! A spool segment's bytes as a crash may leave them (torn lines, zeros,
//! anything), read back by opening the spool: what it keeps must send,
//! acknowledge and take new events, and a second opening must find nothing
//! more to cut.
#![no_main]

use hopwatch::event::{Body, Link, LinkState, Sequencer};
use hopwatch::output::spool::Spool;
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;
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

fuzz_target!(|data: &[u8]| {
    // A NUL line ("\0\n") ends the segment; what follows is the ack file.
    let (segment, ack) = match data.windows(2).position(|w| w == b"\0\n") {
        Some(i) => (&data[..i], Some(&data[i + 2..])),
        None => (data, None),
    };
    let dir = scratch();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch dir");
    std::fs::write(dir.join("00000001_old_00000001.jsonl"), segment).expect("write a segment");
    if let Some(ack) = ack {
        std::fs::write(dir.join("00000001_old.acked"), ack).expect("write an ack");
    }
    {
        let (mut spool, _) = Spool::open(&dir, "new", 8 << 10).expect("open the spool");
        while let Some(batch) = spool.next_batch(300).expect("next batch") {
            assert!(batch.count > 0);
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
    let _ = std::fs::remove_dir_all(&dir);
});
