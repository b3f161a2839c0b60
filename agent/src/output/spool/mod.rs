//! The collector output's disk spool: every event waits here, in
//! `state_dir/spool/`, until the collector has acknowledged it, so a collector
//! outage, a network partition, an agent restart or a SIGKILL loses nothing,
//! and a full spool loses only its oldest events, counted exactly.
//!
//! # Layout
//!
//! ```text
//! spool/lock                                 flock(2)ed while an agent uses the spool
//! spool/00000003_<boot>_00000017.jsonl       a segment: events of one boot, one JSON line each
//! spool/00000003_<boot>.acked                that boot's last acknowledged seq (20 digits + \n)
//! spool/00000003_<boot>.emitted              the highest seq handed to the spool (same format)
//! quarantine.jsonl                           in state_dir: lines the collector refused
//! ```
//!
//! The first number orders the boots (the oldest is resent first), the last
//! one orders a boot's segments. A segment is append-only; it is deleted once
//! every event in it is acknowledged, or, when the spool would outgrow
//! `spool_max`, while still unacknowledged — the oldest segment first — and
//! [`Spool::append`] reports exactly which events went ([`Dropped`]). A
//! segment holds about `spool_max / 16` bytes (1 KiB to 1 MiB), so a full
//! spool sheds a sixteenth of itself at a time.
//!
//! A shed segment may hold `loss` events. They go with it, but what each
//! said comes back in [`Dropped::losses`], and [`Dropped::reports`] folds
//! it into the report of the shed range (adjoining ranges merge), so the
//! record of a loss survives the loss event, and no seq is ever counted by
//! two delivered loss events: a range never spans a seq that is still held
//! or that an earlier loss event still on its way already names.
//!
//! # Durability
//!
//! Appends are plain `write(2)`s of whole lines, so they reach the page cache
//! at once and a SIGKILLed or crashed agent loses nothing it had written.
//! What such a kill can lose is only what was not written yet: events in the
//! output's in-memory queue, which the output thread empties into the spool
//! as they come (microseconds), or, while the disk fails, the events held in
//! memory meanwhile. Those are put on record ([`Spool::note_emitted`]) in a
//! file written in full at open and only rewritten in place later, which
//! works on a full disk; [`Spool::open`] reports every seq on record that
//! never reached a segment ([`Recovery::unwritten`]). [`Spool::sync_job`] flushes to the device; the
//! collector output runs it at most
//! [`crate::output::collector::SYNC_INTERVAL`] (100 ms) after the first
//! unsynced write (group commit) and on exit, and a segment is synced when
//! it is sealed. A power loss or kernel crash can therefore lose the events
//! of the last 100 ms. The acknowledgement files are not synced: losing one only means
//! resending events the collector already holds, which it drops as
//! duplicates.
//!
//! A crash can leave the last line of a segment torn, or (after a power loss)
//! followed by zeros. [`Spool::open`] keeps each segment's longest prefix of
//! complete, parseable lines in ascending seq order and truncates the rest,
//! so a torn tail is discarded instead of poisoning the spool.
//!
//! Every file is opened through [`crate::state_dir`]: a symlink or a FIFO
//! planted at a spool path is refused by name and left alone, never
//! followed, truncated or blocked on.

use crate::state_dir::{self, Access};
use nix::fcntl::Flock;
use serde::Deserialize;
use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

mod loss;
mod open;
mod quarantine;
mod send;
mod sync;
mod write;

pub use loss::{Dropped, LossReport, dropped_events};
pub use sync::SyncJob;

const SEGMENT_SUFFIX: &str = ".jsonl";
const ACK_SUFFIX: &str = ".acked";
const EMITTED_SUFFIX: &str = ".emitted";
/// In `state_dir`, beside the spool.
const QUARANTINE_NAME: &str = "quarantine.jsonl";
const LOCK_NAME: &str = "lock";
/// An acknowledgement file holds one fixed-width record, rewritten in place
/// with a single small `pwrite`, which a crash cannot tear.
const ACK_DIGITS: usize = 20;
const MIN_SEGMENT: u64 = 1024;
const MAX_SEGMENT: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("another hopwatch process is using the spool in {}", .dir.display())]
    Locked { dir: PathBuf },
    #[error("boot id {boot:?} cannot name spool files (letters, digits and `-` only)")]
    BadBoot { boot: String },
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Events read for sending: whole JSON lines of one boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub boot: String,
    pub lines: Vec<u8>,
    pub count: u64,
    pub last_seq: u64,
}

/// What one boot holds, for `hopwatch status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootState {
    pub boot: String,
    /// The last seq the collector acknowledged.
    pub acked: u64,
    /// The last seq written to the spool.
    pub last_seq: u64,
    /// Events not yet acknowledged.
    pub events: u64,
}

/// What [`Spool::open`] found left by earlier runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recovery {
    /// Boots with unacknowledged events, oldest first, and how many.
    pub boots: Vec<(String, u64)>,
    /// Bytes of torn or unreadable tails cut off.
    pub discarded_bytes: u64,
    /// Seqs given to an earlier run that never reached the spool, to be
    /// reported as lost.
    pub unwritten: Vec<Dropped>,
}

/// The envelope fields the spool reads back from a line.
#[derive(Deserialize)]
struct LineHead {
    seq: u64,
    #[serde(default, rename = "type")]
    kind: String,
}

/// Runs of consecutive seqs: one run unless events were lost before they
/// reached the spool.
#[derive(Debug, Clone, Default)]
struct Runs(Vec<(u64, u64)>);

impl Runs {
    /// Adds the next seq; false when it is not above every seq held.
    fn push(&mut self, seq: u64) -> bool {
        match self.0.last_mut() {
            Some((_, end)) if seq == *end + 1 => *end = seq,
            Some((_, end)) if seq <= *end => return false,
            _ => self.0.push((seq, seq)),
        }
        true
    }

    fn last(&self) -> u64 {
        self.0.last().map_or(0, |r| r.1)
    }

    fn count_after(&self, acked: u64) -> u64 {
        self.0
            .iter()
            .filter(|r| r.1 > acked)
            .map(|&(start, end)| end - start.max(acked + 1) + 1)
            .sum()
    }

    fn first_after(&self, acked: u64) -> Option<u64> {
        self.0
            .iter()
            .find(|r| r.1 > acked)
            .map(|&(start, _)| start.max(acked + 1))
    }
}

#[derive(Debug)]
struct Segment {
    number: u64,
    path: PathBuf,
    bytes: u64,
    seqs: Runs,
}

#[derive(Debug)]
struct BootLog {
    ordinal: u64,
    boot: String,
    acked: u64,
    /// The highest seq handed out for sending on this connection.
    sent: u64,
    /// The highest seq ever spooled, kept after its segment is gone.
    last_seq: u64,
    segments: VecDeque<Segment>,
    next_segment: u64,
    ack_file: Option<File>,
    /// The current boot's last segment, open for appending.
    active: Option<File>,
    /// The current boot's record of the highest seq it was given, and
    /// that seq.
    emitted_file: Option<File>,
    emitted: u64,
    /// Seqs the collector refused as malformed, set aside: never sent
    /// again.
    skip: BTreeSet<u64>,
}

impl BootLog {
    fn pending(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.seqs.count_after(self.acked))
            .sum()
    }
}

/// Where sending continues: a boot, a segment, a byte offset.
#[derive(Debug, Default)]
struct Cursor {
    ordinal: u64,
    segment: u64,
    offset: u64,
    /// The segment being read, kept open between batches.
    reader: Option<(u64, u64, File)>,
}

/// The spool of one agent. Not shared between processes: [`Spool::open`]
/// takes an exclusive lock.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    /// Oldest first; the current boot is always present, and last.
    boots: Vec<BootLog>,
    bytes: u64,
    cursor: Cursor,
    unsynced: bool,
    dir_unsynced: bool,
    /// Lines in the quarantine file.
    quarantined: u64,
    /// Whether a full spool may shed its oldest events (see
    /// [`Spool::stop_shedding`]).
    shedding: bool,
    _lock: Flock<File>,
}

impl Spool {
    /// Bytes the segments take on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Events not yet acknowledged, over every boot.
    pub fn pending(&self) -> u64 {
        self.boots.iter().map(BootLog::pending).sum()
    }

    /// Every boot held, oldest first; the current one last.
    pub fn boots(&self) -> Vec<BootState> {
        self.boots
            .iter()
            .map(|b| BootState {
                boot: b.boot.clone(),
                acked: b.acked,
                last_seq: b.last_seq,
                events: b.pending(),
            })
            .collect()
    }

    /// The last seq of `boot` the collector acknowledged (0 for a boot the
    /// spool does not hold).
    pub fn acked(&self, boot: &str) -> u64 {
        self.boots
            .iter()
            .find(|b| b.boot == boot)
            .map_or(0, |b| b.acked)
    }

    /// The last seq of `boot` written to the spool (0 for a boot it does
    /// not hold).
    pub fn last_seq(&self, boot: &str) -> u64 {
        self.boots
            .iter()
            .find(|b| b.boot == boot)
            .map_or(0, |b| b.last_seq)
    }

    /// The boots with unacknowledged events, oldest first, for `hello`.
    pub fn unacked_boots(&self) -> Vec<String> {
        self.boots
            .iter()
            .filter(|b| b.pending() > 0)
            .map(|b| b.boot.clone())
            .collect()
    }

    /// Whether events were sent that the collector has not acknowledged.
    pub fn outstanding(&self) -> bool {
        self.boots.iter().any(|b| b.sent > b.acked)
    }

    fn current(&mut self) -> &mut BootLog {
        self.boots
            .last_mut()
            .expect("the current boot is always held")
    }
}

fn remove_if_present(path: Option<&Path>) -> Result<(), SpoolError> {
    match path.map(fs::remove_file) {
        Some(Err(e)) if e.kind() != io::ErrorKind::NotFound => {
            Err(io_error("remove", path.expect("some"))(e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
