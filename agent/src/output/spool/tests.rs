//! The spool's tests: appends, acks, rewinds, overflow, recovery after a
//! crash, planted files, and an oracle over random fault sequences.

use super::open::read_ack;
use super::*;
use crate::event::{Body, Event, Link, LinkState, Loss, Sequencer};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("hopwatch-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Dir(dir)
    }

    /// In memory where the machine has a tmpfs: the oracle runs
    /// thousands of segment syncs, which a disk makes slow.
    fn in_memory(name: &str) -> Dir {
        let shm = Path::new("/dev/shm");
        if !shm.is_dir() {
            return Dir::new(name);
        }
        let dir = shm.join(format!("hopwatch-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Link events of about 170 bytes each.
fn events(seq: &mut Sequencer, n: usize) -> VecDeque<Arc<Event>> {
    (0..n)
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
        .collect()
}

fn loss(seq: &mut Sequencer, count: u64) -> Arc<Event> {
    Arc::new(seq.stamp(
        SystemTime::UNIX_EPOCH,
        Body::Loss(Loss {
            count,
            first_seq: 1,
            last_seq: count,
            lost_boot: None,
            message: String::new(),
        }),
    ))
}

fn drain(spool: &mut Spool) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    while let Some(batch) = spool.next_batch(300).unwrap() {
        for line in batch.lines.split_inclusive(|&b| b == b'\n') {
            let event: Event = serde_json::from_slice(line).unwrap();
            assert_eq!(event.boot, batch.boot);
            out.push((event.boot, event.seq));
        }
    }
    out
}

fn seqs(got: &[(String, u64)]) -> Vec<u64> {
    got.iter().map(|(_, s)| *s).collect()
}

#[test]
fn appends_sends_in_order_and_acks_trim() {
    let dir = Dir::new("ack");
    let (mut spool, recovery) = Spool::open(&dir.0, "b1", 1 << 20).unwrap();
    assert_eq!(recovery, Recovery::default());
    let mut seq = Sequencer::new("a", "b1");
    let mut pending = events(&mut seq, 50);
    let mut dropped = Vec::new();
    spool.append(&mut pending, &mut dropped, false).unwrap();
    assert!(dropped.is_empty());
    assert!(pending.is_empty());
    assert_eq!(spool.pending(), 50);
    assert_eq!(seqs(&drain(&mut spool)), (1..=50).collect::<Vec<_>>());
    assert!(spool.outstanding());

    spool.ack("b1", 20).unwrap();
    assert_eq!(spool.pending(), 30);
    assert_eq!(read_ack(&dir.0.join("00000001_b1.acked")), 20);
    spool.ack("b1", 50).unwrap();
    assert_eq!(spool.pending(), 0);
    assert_eq!(spool.bytes(), 0, "acknowledged segments are deleted");
    assert!(!spool.outstanding());
    let segments = fs::read_dir(&dir.0)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(SEGMENT_SUFFIX)
        })
        .count();
    assert_eq!(segments, 0);

    // New events after a full ack go to a fresh segment and are sent.
    let mut more = events(&mut seq, 3);
    spool.append(&mut more, &mut Vec::new(), false).unwrap();
    assert_eq!(seqs(&drain(&mut spool)), vec![51, 52, 53]);
    assert_eq!(spool.boots()[0].acked, 50);
    assert_eq!(spool.boots()[0].last_seq, 53);
}

#[test]
fn rewind_resends_after_the_collectors_last_seq() {
    let dir = Dir::new("rewind");
    let (mut spool, _) = Spool::open(&dir.0, "b1", 1 << 20).unwrap();
    let mut seq = Sequencer::new("a", "b1");
    spool
        .append(&mut events(&mut seq, 10), &mut Vec::new(), false)
        .unwrap();
    assert_eq!(drain(&mut spool).len(), 10);
    spool
        .rewind(&[("b1".to_string(), 6)].into_iter().collect())
        .unwrap();
    assert_eq!(seqs(&drain(&mut spool)), vec![7, 8, 9, 10]);
    assert_eq!(spool.pending(), 4);
    // A welcome that knows nothing resends everything not acknowledged.
    spool.rewind(&BTreeMap::new()).unwrap();
    assert_eq!(seqs(&drain(&mut spool)), vec![7, 8, 9, 10]);
}

#[test]
fn a_full_spool_drops_the_oldest_segment_and_says_exactly_what() {
    let dir = Dir::new("bound");
    // 16 KiB: 1 KiB segments of about 9 events.
    let (mut spool, _) = Spool::open(&dir.0, "b1", 16 * 1024).unwrap();
    let mut seq = Sequencer::new("a", "b1");
    let mut dropped = Vec::new();
    for _ in 0..40 {
        spool
            .append(&mut events(&mut seq, 10), &mut dropped, false)
            .unwrap();
        assert!(spool.bytes() <= 16 * 1024);
    }
    let lost: u64 = dropped.iter().map(|d| d.count).sum();
    assert!(lost > 0);
    // What was dropped and what is left cover every seq once.
    let left = drain(&mut spool);
    assert_eq!(lost + left.len() as u64, 400);
    let first_left = left[0].1;
    assert_eq!(dropped[0].first_seq, 1);
    assert_eq!(dropped.last().unwrap().last_seq, first_left - 1);
    assert_eq!(
        seqs(&left),
        (first_left..=400).collect::<Vec<_>>(),
        "nothing newer was lost"
    );
    // Contiguous drops merge into one report.
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].count, first_left - 1);
}

/// A loss event with the drop reports of the writer, as the agent
/// stamps it.
fn reported(seq: &mut Sequencer, r: &LossReport) -> Arc<Event> {
    Arc::new(seq.stamp(
        SystemTime::UNIX_EPOCH,
        Body::Loss(Loss {
            count: r.count,
            first_seq: r.first_seq,
            last_seq: r.last_seq,
            lost_boot: Some(r.boot.clone()),
            message: String::new(),
        }),
    ))
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Every seq handed out is stored by the collector or named by exactly
/// one stored loss event, whatever order of appends, sends, acks,
/// broken connections and reopenings a tiny spool goes through. The
/// oracle is the collector's store, counted seq by seq.
#[test]
fn every_seq_is_delivered_or_named_by_exactly_one_delivered_loss_event() {
    for round in 1..=100u64 {
        let dir = Dir::in_memory(&format!("oracle{round}"));
        let mut rng = Rng(round.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let max = 4096 + rng.below(4) * 1024;
        let (mut spool, _) = Spool::open(&dir.0, "b1", max).unwrap();
        let mut seq = Sequencer::new("a", "b1");
        let mut pending: VecDeque<Arc<Event>> = VecDeque::new();
        // The collector's store: what it acknowledged.
        let mut stored: BTreeMap<u64, Event> = BTreeMap::new();
        let settle = |spool: &mut Spool,
                      pending: &mut VecDeque<Arc<Event>>,
                      seq: &mut Sequencer,
                      spare: bool| {
            let mut dropped = Vec::new();
            spool.append(pending, &mut dropped, spare).unwrap();
            for d in dropped {
                for r in d.reports() {
                    assert_eq!(r.count, r.last_seq - r.first_seq + 1, "{r:?}");
                    pending.push_back(reported(seq, &r));
                }
            }
        };
        let send = |spool: &mut Spool, rng: &mut Rng, batches: u64| -> Vec<Event> {
            let mut sent = Vec::new();
            for _ in 0..batches {
                let Some(batch) = spool.next_batch(200 + rng.below(2000) as usize).unwrap() else {
                    break;
                };
                for line in batch.lines.split_inclusive(|&b| b == b'\n') {
                    sent.push(serde_json::from_slice::<Event>(line).unwrap());
                }
            }
            sent
        };
        for _ in 0..120 {
            match rng.below(10) {
                0..=4 => {
                    let n = 1 + rng.below(15) as usize;
                    pending.extend(events(&mut seq, n));
                }
                5 | 6 => {
                    let n = 1 + rng.below(4);
                    let sent = send(&mut spool, &mut rng, n);
                    if let Some(last) = sent.last().map(|e| e.seq) {
                        for e in sent {
                            stored.insert(e.seq, e);
                        }
                        spool.ack("b1", last).unwrap();
                    }
                }
                7 => {
                    // Sent, then the connection broke before the
                    // collector stored any of it.
                    let n = 1 + rng.below(3);
                    send(&mut spool, &mut rng, n);
                    let held = stored.keys().next_back().copied().unwrap_or(0);
                    spool
                        .rewind(&[("b1".to_string(), held)].into_iter().collect())
                        .unwrap();
                }
                8 => {
                    drop(spool);
                    spool = Spool::open(&dir.0, "b1", max).unwrap().0;
                }
                _ => {}
            }
            let spare = rng.below(2) == 0;
            settle(&mut spool, &mut pending, &mut seq, spare);
        }
        // The collector stays up to the end: everything drains.
        for _ in 0..1000 {
            settle(&mut spool, &mut pending, &mut seq, false);
            let sent = send(&mut spool, &mut rng, 1000);
            if sent.is_empty() && pending.is_empty() {
                break;
            }
            if let Some(last) = sent.last().map(|e| e.seq) {
                for e in sent {
                    stored.insert(e.seq, e);
                }
                spool.ack("b1", last).unwrap();
            }
        }
        assert!(pending.is_empty());
        let mut named: BTreeMap<u64, u32> = stored.keys().map(|&s| (s, 1)).collect();
        for e in stored.values() {
            if let Body::Loss(loss) = &e.body {
                assert_eq!(loss.count, loss.last_seq - loss.first_seq + 1);
                for s in loss.first_seq..=loss.last_seq {
                    *named.entry(s).or_default() += 1;
                }
            }
        }
        for s in 1..=seq.last_seq() {
            assert_eq!(
                named.get(&s).copied().unwrap_or(0),
                1,
                "round {round}: seq {s} is delivered or named once (max {max})"
            );
        }
        assert_eq!(named.len() as u64, seq.last_seq(), "round {round}");
    }
}

#[test]
fn a_spool_of_nothing_but_loss_events_drops_those_too() {
    let dir = Dir::new("onlyloss");
    let (mut spool, _) = Spool::open(&dir.0, "b1", 4 * 1024).unwrap();
    let mut seq = Sequencer::new("a", "b1");
    let mut dropped = Vec::new();
    for _ in 0..100 {
        spool
            .append(
                &mut VecDeque::from([loss(&mut seq, 1)]),
                &mut dropped,
                false,
            )
            .unwrap();
        assert!(spool.bytes() <= 4 * 1024);
    }
    let lost: u64 = dropped.iter().map(|d| d.count).sum();
    assert_eq!(lost + drain(&mut spool).len() as u64, 100);
}

#[test]
fn a_full_spool_can_wait_for_acks_of_what_is_in_flight() {
    let dir = Dir::new("inflight");
    let (mut spool, _) = Spool::open(&dir.0, "b1", 16 * 1024).unwrap();
    let mut seq = Sequencer::new("a", "b1");
    let mut dropped = Vec::new();
    while spool.bytes() < 15 * 1024 {
        spool
            .append(&mut events(&mut seq, 1), &mut dropped, true)
            .unwrap();
    }
    assert_eq!(drain(&mut spool).len() as u64, seq.last_seq(), "all sent");
    let mut more = events(&mut seq, 20);
    spool.append(&mut more, &mut dropped, true).unwrap();
    assert!(!more.is_empty(), "what does not fit waits");
    assert!(dropped.is_empty());
    // The collector acknowledges: room without dropping anything.
    spool.ack("b1", 30).unwrap();
    spool.append(&mut more, &mut dropped, true).unwrap();
    assert!(more.is_empty());
    assert!(dropped.is_empty());
    // Without acks, sparing in-flight events can be given up.
    let mut more = events(&mut seq, 40);
    spool.append(&mut more, &mut dropped, false).unwrap();
    assert!(more.is_empty());
    assert_eq!(dropped[0].first_seq, 31);
}

#[test]
fn a_failed_write_keeps_the_events_for_a_retry() {
    let dir = Dir::new("enospc");
    let (mut spool, _) = Spool::open(&dir.0, "b1", 1 << 20).unwrap();
    let mut seq = Sequencer::new("a", "b1");
    spool
        .append(&mut events(&mut seq, 2), &mut Vec::new(), false)
        .unwrap();
    let bytes = spool.bytes();
    // The disk fills up under the active segment.
    let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
    spool.current().active = Some(full);
    let mut pending = events(&mut seq, 3);
    let error = spool
        .append(&mut pending, &mut Vec::new(), false)
        .unwrap_err();
    assert!(error.to_string().contains("cannot write"), "{error}");
    assert_eq!(pending.len(), 3, "nothing written is forgotten");
    assert_eq!(spool.bytes(), bytes);
    assert_eq!(spool.pending(), 2);
    // Space again: the retry writes them, in order, after the others.
    spool.current().active = None;
    spool.append(&mut pending, &mut Vec::new(), false).unwrap();
    assert!(pending.is_empty());
    assert_eq!(seqs(&drain(&mut spool)), vec![1, 2, 3, 4, 5]);
}

#[test]
fn events_on_record_that_never_reached_the_spool_are_reported_after_a_kill() {
    let dir = Dir::new("unwritten");
    let mut seq = Sequencer::new("a", "b1");
    {
        let (mut spool, _) = Spool::open(&dir.0, "b1", 1 << 20).unwrap();
        spool
            .append(&mut events(&mut seq, 2), &mut Vec::new(), false)
            .unwrap();
        spool.ack("b1", 2).unwrap();
        // The disk fills: three events wait in memory, on record.
        let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
        spool.current().active = Some(full);
        let mut pending = events(&mut seq, 3);
        assert!(spool.append(&mut pending, &mut Vec::new(), false).is_err());
        spool.note_emitted(5).unwrap();
        // Killed here.
    }
    let (mut spool, recovery) = Spool::open(&dir.0, "b2", 1 << 20).unwrap();
    assert_eq!(recovery.unwritten, vec![Dropped::range("b1", 3, 5)]);
    assert!(drain(&mut spool).is_empty());
    drop(spool);
    // Said once: the next start has nothing more to say of b1, and b1
    // leaves no file behind.
    let (_, recovery) = Spool::open(&dir.0, "b3", 1 << 20).unwrap();
    assert!(recovery.unwritten.is_empty(), "{recovery:?}");
    let left: Vec<String> = fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("_b1"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn acknowledged_events_are_not_reported_as_dropped() {
    let dir = Dir::new("ackdrop");
    let (mut spool, _) = Spool::open(&dir.0, "b1", 16 * 1024).unwrap();
    let mut seq = Sequencer::new("a", "b1");
    spool
        .append(&mut events(&mut seq, 5), &mut Vec::new(), false)
        .unwrap();
    spool.ack("b1", 3).unwrap();
    let mut dropped = Vec::new();
    for _ in 0..40 {
        spool
            .append(&mut events(&mut seq, 10), &mut dropped, false)
            .unwrap();
    }
    assert_eq!(dropped[0].first_seq, 4);
    let left = drain(&mut spool);
    let lost: u64 = dropped.iter().map(|d| d.count).sum();
    assert_eq!(lost + left.len() as u64, 402);
}

#[test]
fn reopens_after_a_crash_and_replays_the_old_boot_first() {
    let dir = Dir::new("reopen");
    let mut old = Sequencer::new("a", "b1");
    {
        let (mut spool, _) = Spool::open(&dir.0, "b1", 1 << 20).unwrap();
        spool
            .append(&mut events(&mut old, 30), &mut Vec::new(), false)
            .unwrap();
        spool.ack("b1", 10).unwrap();
        // Held: a second agent on the same spool is refused.
        assert!(matches!(
            Spool::open(&dir.0, "b2", 1 << 20),
            Err(SpoolError::Locked { .. })
        ));
        // Dropped without a sync or a goodbye, as SIGKILL would.
    }
    let (mut spool, recovery) = Spool::open(&dir.0, "b2", 1 << 20).unwrap();
    assert_eq!(recovery.boots, vec![("b1".to_string(), 20)]);
    assert_eq!(recovery.discarded_bytes, 0);
    assert_eq!(spool.unacked_boots(), vec!["b1".to_string()]);
    let mut new = Sequencer::new("a", "b2");
    spool
        .append(&mut events(&mut new, 2), &mut Vec::new(), false)
        .unwrap();
    assert_eq!(
        spool.unacked_boots(),
        vec!["b1".to_string(), "b2".to_string()]
    );
    let got = drain(&mut spool);
    let expected: Vec<(String, u64)> = (11..=30)
        .map(|s| ("b1".to_string(), s))
        .chain((1..=2).map(|s| ("b2".to_string(), s)))
        .collect();
    assert_eq!(got, expected);
    spool.ack("b1", 30).unwrap();
    assert_eq!(spool.unacked_boots(), vec!["b2".to_string()]);
    assert!(
        !dir.0.join("00000001_b1.acked").exists(),
        "a finished boot leaves nothing behind"
    );
    assert_eq!(spool.boots().len(), 1);
}

#[test]
fn a_torn_last_line_is_cut_off_not_poisoning_the_spool() {
    let dir = Dir::new("torn");
    let mut old = Sequencer::new("a", "b1");
    let path;
    {
        let (mut spool, _) = Spool::open(&dir.0, "b1", 1 << 20).unwrap();
        spool
            .append(&mut events(&mut old, 5), &mut Vec::new(), false)
            .unwrap();
        path = spool.boots[0].segments[0].path.clone();
    }
    // Half of a sixth line, as a kill in mid-write leaves it, then zeros
    // as a power loss can.
    let sixth = events(&mut old, 1)[0].to_json();
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&sixth.as_bytes()[..sixth.len() / 2])
        .unwrap();
    drop(file);
    let whole = fs::metadata(&path).unwrap().len();

    let (mut spool, recovery) = Spool::open(&dir.0, "b2", 1 << 20).unwrap();
    assert_eq!(recovery.discarded_bytes, (sixth.len() / 2) as u64);
    assert!(fs::metadata(&path).unwrap().len() < whole);
    let mut new = Sequencer::new("a", "b2");
    spool
        .append(&mut events(&mut new, 1), &mut Vec::new(), false)
        .unwrap();
    let got = drain(&mut spool);
    assert_eq!(seqs(&got), vec![1, 2, 3, 4, 5, 1]);

    // Zeros after the last good line are cut the same way.
    drop(spool);
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&[0; 300]).unwrap();
    file.write_all(b"\n").unwrap();
    drop(file);
    let (mut spool, recovery) = Spool::open(&dir.0, "b3", 1 << 20).unwrap();
    assert_eq!(recovery.discarded_bytes, 301);
    assert_eq!(drain(&mut spool).len(), 6);
}

#[test]
fn a_line_that_is_no_json_object_is_cut_off_not_sent() {
    let dir = Dir::new("array");
    let mut old = Sequencer::new("a", "b1");
    let path;
    {
        let (mut spool, _) = Spool::open(&dir.0, "b1", 1 << 20).unwrap();
        spool
            .append(&mut events(&mut old, 2), &mut Vec::new(), false)
            .unwrap();
        path = spool.boots[0].segments[0].path.clone();
    }
    // A corrupted line that still reads as a seq (serde takes a struct's
    // fields from an array too) is no event: the collector could not store
    // it, nor name it in a `reject`.
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(b"[3]\n").unwrap();
    drop(file);
    let (mut spool, recovery) = Spool::open(&dir.0, "b2", 1 << 20).unwrap();
    assert_eq!(recovery.discarded_bytes, 4);
    assert_eq!(seqs(&drain(&mut spool)), vec![1, 2]);
}

#[test]
fn reopening_the_running_boot_appends_after_what_it_holds() {
    let dir = Dir::new("reload");
    let mut seq = Sequencer::new("a", "b1");
    {
        let (mut spool, _) = Spool::open(&dir.0, "b1", 1 << 20).unwrap();
        spool
            .append(&mut events(&mut seq, 3), &mut Vec::new(), false)
            .unwrap();
    }
    let (mut spool, recovery) = Spool::open(&dir.0, "b1", 1 << 20).unwrap();
    assert!(
        recovery.boots.is_empty(),
        "the running boot is not an old one"
    );
    spool
        .append(&mut events(&mut seq, 2), &mut Vec::new(), false)
        .unwrap();
    assert_eq!(seqs(&drain(&mut spool)), vec![1, 2, 3, 4, 5]);
    assert_eq!(spool.boots().len(), 1);
}

#[test]
fn gaps_before_the_spool_are_counted_exactly() {
    let mut runs = Runs::default();
    for seq in [1, 2, 3, 7, 8, 10] {
        assert!(runs.push(seq));
    }
    assert!(!runs.push(10));
    assert_eq!(runs.count_after(0), 6);
    assert_eq!(runs.count_after(2), 4);
    assert_eq!(runs.count_after(5), 3);
    assert_eq!(runs.first_after(3), Some(7));
    assert_eq!(runs.count_after(10), 0);
    assert_eq!(runs.first_after(10), None);
}

#[test]
fn a_symlink_or_fifo_at_a_segment_path_is_refused_and_left_alone() {
    let dir = Dir::new("planted");
    let outside = Dir::new("planted-target");
    fs::create_dir_all(&outside.0).unwrap();
    let target = outside.0.join("precious");
    fs::write(&target, "keep me").unwrap();
    fs::create_dir_all(&dir.0).unwrap();
    // Planted where the first segment of boot 1 will go, and a FIFO
    // among an earlier boot's segments.
    std::os::unix::fs::symlink(&target, dir.0.join("00000001_b1_00000001.jsonl")).unwrap();
    nix::unistd::mkfifo(
        &dir.0.join("00000001_b0_00000001.jsonl"),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .unwrap();
    // Opening does not block on the FIFO and does not count it.
    let (mut spool, recovery) = Spool::open(&dir.0, "b1", 1 << 20).unwrap();
    assert!(recovery.boots.is_empty());
    let mut seq = Sequencer::new("a", "b1");
    let mut pending = events(&mut seq, 3);
    // The symlink is refused, naming it; what was not written waits.
    let error = spool
        .append(&mut pending, &mut Vec::new(), false)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("symbolic link") && error.contains("00000001_b1_00000001.jsonl"),
        "{error}"
    );
    assert_eq!(pending.len(), 3);
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
    // The retry takes the next name; nothing is lost.
    spool.append(&mut pending, &mut Vec::new(), false).unwrap();
    assert_eq!(seqs(&drain(&mut spool)), vec![1, 2, 3]);
    assert!(dir.0.join("00000001_b1_00000002.jsonl").is_file());
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
}

#[test]
fn boot_ids_must_name_files() {
    let dir = Dir::new("badboot");
    assert!(matches!(
        Spool::open(&dir.0, "a_b", 1 << 20),
        Err(SpoolError::BadBoot { .. })
    ));
}

#[test]
fn a_stopping_spool_sheds_nothing_and_keeps_the_rest_on_record() {
    let dir = Dir::new("noshed");
    let mut seq = Sequencer::new("a", "b1");
    {
        let (mut spool, _) = Spool::open(&dir.0, "b1", 4 * 1024).unwrap();
        let mut dropped = Vec::new();
        while spool.bytes() < 3 * 1024 {
            spool
                .append(&mut events(&mut seq, 1), &mut dropped, false)
                .unwrap();
        }
        spool.stop_shedding();
        let mut more = events(&mut seq, 20);
        spool.append(&mut more, &mut dropped, false).unwrap();
        assert!(dropped.is_empty(), "nothing shed: {dropped:?}");
        assert!(!more.is_empty(), "what does not fit waits");
        spool.note_emitted(seq.last_seq()).unwrap();
    }
    let held = seq.last_seq();
    let (mut spool, recovery) = Spool::open(&dir.0, "b2", 4 * 1024).unwrap();
    let sent = drain(&mut spool);
    let first_unwritten = sent.last().unwrap().1 + 1;
    assert_eq!(
        recovery.unwritten,
        vec![Dropped::range("b1", first_unwritten, held)]
    );
    assert_eq!(seqs(&sent), (1..first_unwritten).collect::<Vec<_>>());
}
