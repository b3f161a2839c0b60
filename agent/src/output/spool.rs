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
//! memory meanwhile. [`Spool::sync_job`] flushes to the device; the
//! collector output runs it at most
//! [`crate::output::collector::SYNC_INTERVAL`] (100 ms) after the first
//! unsynced write (group commit) and on exit, and a segment is synced when
//! it is sealed. A power loss or kernel crash can therefore lose the events
//! of the last 100 ms. Loss events moved to a kept segment are synced at
//! once. The acknowledgement files are not synced: losing one only means
//! resending events the collector already holds, which it drops as
//! duplicates.
//!
//! A crash can leave the last line of a segment torn, or (after a power loss)
//! followed by zeros. [`Spool::open`] keeps each segment's longest prefix of
//! complete, parseable lines in ascending seq order and truncates the rest,
//! so a torn tail is discarded instead of poisoning the spool.

use crate::event::{Body, Event, Loss};
use crate::state_dir::{self, Access};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// Events the spool let go of unacknowledged: every seq of `boot` from
/// `first_seq` to `last_seq` (`count` of them; one run, no gap).
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    pub boot: String,
    pub count: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// What the `loss` events among them said: lost in turn, so their
    /// report must be made again.
    pub losses: Vec<Loss>,
}

/// One range of lost seqs to report in one `loss` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossReport {
    pub boot: String,
    pub count: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// How many of `count` an earlier loss event, itself dropped, had named.
    pub carried: u64,
}

impl Dropped {
    /// Every seq of `boot` from `first_seq` to `last_seq`.
    pub fn range(boot: &str, first_seq: u64, last_seq: u64) -> Dropped {
        Dropped {
            boot: boot.to_string(),
            count: last_seq - first_seq + 1,
            first_seq,
            last_seq,
            losses: Vec::new(),
        }
    }

    /// The loss events to emit for this drop: its own range, with the
    /// ranges its dropped loss events named folded in where they adjoin
    /// (the usual case: oldest-first dropping) and reported on their own
    /// where acknowledged events lie between. Each lost seq is named once.
    pub fn reports(self) -> Vec<LossReport> {
        let mut ranges = vec![LossReport {
            boot: self.boot.clone(),
            count: self.count,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            carried: 0,
        }];
        for loss in self.losses {
            ranges.push(LossReport {
                boot: loss.lost_boot.unwrap_or_else(|| self.boot.clone()),
                count: loss.count,
                first_seq: loss.first_seq,
                last_seq: loss.last_seq,
                carried: loss.count,
            });
        }
        ranges.sort_by(|a, b| (&a.boot, a.first_seq).cmp(&(&b.boot, b.first_seq)));
        let mut out: Vec<LossReport> = Vec::new();
        for r in ranges {
            match out.last_mut() {
                Some(last) if last.boot == r.boot && r.first_seq <= last.last_seq + 1 => {
                    last.last_seq = last.last_seq.max(r.last_seq);
                    last.count += r.count;
                    last.carried += r.carried;
                }
                _ => out.push(r),
            }
        }
        out
    }
}

/// The drops for events that leave memory without reaching the spool: one
/// per run of consecutive seqs, with the loss events among them.
pub fn dropped_events(events: &[Arc<Event>]) -> Vec<Dropped> {
    let mut out = Vec::new();
    for e in events {
        let loss = match &e.body {
            Body::Loss(loss) => Some(loss.clone()),
            _ => None,
        };
        note(&mut out, &e.boot, e.seq, loss);
    }
    out
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

/// Segments and directory entries written since the last sync.
pub struct SyncJob {
    file: Option<(File, PathBuf)>,
    dir: Option<PathBuf>,
}

impl SyncJob {
    /// Flushes to the device; runs without the spool's lock so sending goes
    /// on meanwhile.
    pub fn run(self) -> Result<(), SpoolError> {
        if let Some((file, path)) = &self.file {
            file.sync_data().map_err(io_error("sync", path))?;
        }
        if let Some(dir) = &self.dir {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_error("sync", dir))?;
        }
        Ok(())
    }
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
    _lock: Flock<File>,
}

/// One line the collector refused, as the quarantine file keeps it.
#[derive(Serialize, Deserialize)]
struct Quarantined {
    boot: String,
    seq: u64,
    reason: String,
    /// The line as spooled, without its newline.
    line: String,
}

enum Name {
    Segment {
        ordinal: u64,
        boot: String,
        number: u64,
    },
    Ack {
        ordinal: u64,
        boot: String,
    },
    Emitted {
        ordinal: u64,
        boot: String,
    },
}

fn parse_name(name: &str) -> Option<Name> {
    let parse_boot = |rest: &str| -> Option<(u64, String)> {
        let (ordinal, boot) = rest.split_once('_')?;
        Some((ordinal.parse().ok()?, boot.to_string()))
    };
    if let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) {
        let (head, number) = stem.rsplit_once('_')?;
        let (ordinal, boot) = parse_boot(head)?;
        return Some(Name::Segment {
            ordinal,
            boot,
            number: number.parse().ok()?,
        });
    }
    if let Some(stem) = name.strip_suffix(EMITTED_SUFFIX) {
        let (ordinal, boot) = parse_boot(stem)?;
        return Some(Name::Emitted { ordinal, boot });
    }
    let stem = name.strip_suffix(ACK_SUFFIX)?;
    let (ordinal, boot) = parse_boot(stem)?;
    Some(Name::Ack { ordinal, boot })
}

fn valid_boot(boot: &str) -> bool {
    !boot.is_empty() && boot.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The segment size for a spool bound.
fn segment_bytes(max_bytes: u64) -> u64 {
    (max_bytes / 16).clamp(MIN_SEGMENT, MAX_SEGMENT)
}

#[derive(Default)]
struct FoundBoot {
    boot: String,
    ack: Option<PathBuf>,
    emitted: Option<PathBuf>,
    segments: BTreeMap<u64, PathBuf>,
}

impl Spool {
    /// Opens (creating it if need be) the spool in `dir` for boot `boot`,
    /// bounded by `max_bytes`; recovers what earlier runs left.
    pub fn open(dir: &Path, boot: &str, max_bytes: u64) -> Result<(Spool, Recovery), SpoolError> {
        if !valid_boot(boot) {
            return Err(SpoolError::BadBoot {
                boot: boot.to_string(),
            });
        }
        state_dir::create_dir(dir).map_err(io_error("create", dir))?;
        let lock_path = dir.join(LOCK_NAME);
        let lock_file =
            state_dir::open(&lock_path, Access::ReadWrite).map_err(io_error("open", &lock_path))?;
        let lock =
            Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
                match errno {
                    Errno::EWOULDBLOCK => SpoolError::Locked {
                        dir: dir.to_path_buf(),
                    },
                    other => SpoolError::Io {
                        action: "lock",
                        path: lock_path.clone(),
                        source: other.into(),
                    },
                }
            })?;

        let mut found: BTreeMap<u64, FoundBoot> = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(io_error("list", dir))? {
            let entry = entry.map_err(io_error("list", dir))?;
            let Some(name) = entry.file_name().to_str().and_then(parse_name) else {
                continue;
            };
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                // Not ours: a symlink or a FIFO is neither followed nor
                // read, and left where it is.
                tracing::warn!(path = %entry.path().display(), "Skipping a spool entry that is not a regular file; remove it.");
                continue;
            }
            match name {
                Name::Segment {
                    ordinal,
                    boot,
                    number,
                } => {
                    let f = found.entry(ordinal).or_default();
                    f.boot = boot;
                    f.segments.insert(number, entry.path());
                }
                Name::Ack { ordinal, boot } => {
                    let f = found.entry(ordinal).or_default();
                    f.boot = boot;
                    f.ack = Some(entry.path());
                }
                Name::Emitted { ordinal, boot } => {
                    let f = found.entry(ordinal).or_default();
                    f.boot = boot;
                    f.emitted = Some(entry.path());
                }
            }
        }

        let mut recovery = Recovery::default();
        let mut boots = Vec::new();
        let mut bytes = 0;
        let mut dir_unsynced = false;
        let next_ordinal = found.keys().next_back().map_or(1, |o| o + 1);
        for (ordinal, f) in found {
            let acked = f.ack.as_deref().map(read_ack).unwrap_or(0);
            let mut log = BootLog {
                ordinal,
                boot: f.boot,
                acked,
                sent: acked,
                last_seq: acked,
                segments: VecDeque::new(),
                next_segment: f.segments.keys().next_back().map_or(1, |n| n + 1),
                ack_file: None,
                active: None,
                emitted_file: None,
                emitted: 0,
                skip: BTreeSet::new(),
            };
            for (number, path) in f.segments {
                let (segment, discarded) = recover_segment(number, path)?;
                recovery.discarded_bytes += discarded;
                log.last_seq = log.last_seq.max(segment.seqs.last());
                if segment.seqs.count_after(acked) == 0 {
                    fs::remove_file(&segment.path).map_err(io_error("remove", &segment.path))?;
                    dir_unsynced = true;
                    continue;
                }
                bytes += segment.bytes;
                log.segments.push_back(segment);
            }
            // Seqs handed to the spool that never reached a segment: the
            // agent stopped (or was killed) while they waited in memory.
            let emitted = f.emitted.as_deref().map(read_ack).unwrap_or(0);
            if emitted > log.last_seq {
                recovery
                    .unwritten
                    .push(Dropped::range(&log.boot, log.last_seq + 1, emitted));
                log.last_seq = emitted;
            }
            if log.boot == boot || !log.segments.is_empty() {
                if log.boot != boot {
                    recovery.boots.push((log.boot.clone(), log.pending()));
                    // Reported now; the record has done its job.
                    remove_if_present(f.emitted.as_deref())?;
                }
                boots.push(log);
            } else {
                remove_if_present(f.ack.as_deref())?;
                remove_if_present(f.emitted.as_deref())?;
            }
        }
        // The current boot goes last even if it was seen before (a reload
        // reopens the spool of the running boot).
        let current = match boots.iter().position(|b| b.boot == boot) {
            Some(i) => boots.remove(i),
            None => BootLog {
                ordinal: next_ordinal,
                boot: boot.to_string(),
                acked: 0,
                sent: 0,
                last_seq: 0,
                segments: VecDeque::new(),
                next_segment: 1,
                ack_file: None,
                active: None,
                emitted_file: None,
                emitted: 0,
                skip: BTreeSet::new(),
            },
        };
        boots.push(current);
        let current = boots.last_mut().expect("pushed above");
        let path = dir.join(format!(
            "{:08}_{}{EMITTED_SUFFIX}",
            current.ordinal, current.boot
        ));
        // Written in full now, while there is room, so that later it is
        // only rewritten in place: that still works on a full disk. A disk
        // already full costs only this record, not the spool: what earlier
        // boots left is still sent.
        let written = state_dir::open(&path, Access::ReadWrite).and_then(|file| {
            let record = format!("{:0ACK_DIGITS$}\n", current.last_seq);
            file.write_all_at(record.as_bytes(), 0)?;
            file.sync_data()?;
            Ok(file)
        });
        match written {
            Ok(file) => {
                current.emitted = current.last_seq;
                current.emitted_file = Some(file);
            }
            Err(error) => tracing::warn!(
                %error,
                path = %path.display(),
                "Cannot keep a record of events waiting in memory; a kill while the disk fails may lose them unreported."
            ),
        }
        let cursor = Cursor {
            ordinal: boots[0].ordinal,
            ..Cursor::default()
        };
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: segment_bytes(max_bytes),
            boots,
            bytes,
            cursor,
            unsynced: false,
            dir_unsynced,
            quarantined: 0,
            _lock: lock,
        };
        spool.load_quarantine();
        Ok((spool, recovery))
    }

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

    /// Writes events from the front of `pending` until it is empty, making
    /// room by dropping the oldest segments. An event leaves `pending` only
    /// once written, so after an error the caller still holds the rest and
    /// can retry. What had to be dropped is added to `dropped`, also when
    /// a write then fails.
    ///
    /// With `spare_in_flight`, a full spool does not shed a segment whose
    /// events were sent and may be acknowledged any moment; the events that
    /// do not fit then stay in `pending`.
    pub fn append(
        &mut self,
        pending: &mut VecDeque<Arc<Event>>,
        dropped: &mut Vec<Dropped>,
        spare_in_flight: bool,
    ) -> Result<(), SpoolError> {
        let mut chunk = Vec::new();
        let mut seqs = Vec::new();
        while !pending.is_empty() {
            chunk.clear();
            seqs.clear();
            let room = self.room();
            for event in pending.iter() {
                let start = chunk.len();
                serde_json::to_writer(&mut chunk, &**event).expect("events always serialize");
                chunk.push(b'\n');
                if chunk.len() as u64 > room && !seqs.is_empty() {
                    chunk.truncate(start);
                    break;
                }
                seqs.push(event.seq);
                if chunk.len() as u64 >= room {
                    break;
                }
            }
            let len = chunk.len() as u64;
            if len > self.max_bytes {
                // One event larger than the whole spool: it can never be kept.
                let event = pending.pop_front().expect("a pending event");
                let loss = match &event.body {
                    Body::Loss(loss) => Some(loss.clone()),
                    _ => None,
                };
                note(dropped, &event.boot, event.seq, loss);
                continue;
            }
            while self.bytes + len > self.max_bytes {
                if spare_in_flight && self.oldest_in_flight() {
                    return Ok(());
                }
                if !self.drop_oldest(dropped)? {
                    break;
                }
            }
            self.write_chunk(&chunk, &seqs)?;
            pending.drain(..seqs.len());
        }
        Ok(())
    }

    /// Bytes the next chunk may take in the segment it goes to.
    fn room(&self) -> u64 {
        let log = self.boots.last().expect("the current boot is always held");
        match (log.active.is_some(), log.segments.back()) {
            (true, Some(s)) if s.bytes < self.segment_bytes => self.segment_bytes - s.bytes,
            _ => self.segment_bytes,
        }
    }

    fn write_chunk(&mut self, chunk: &[u8], seqs: &[u64]) -> Result<(), SpoolError> {
        let log = self.boots.last().expect("the current boot is always held");
        let needs_segment = match (&log.active, log.segments.back()) {
            (Some(_), Some(segment)) => segment.bytes >= self.segment_bytes,
            _ => true,
        };
        if needs_segment {
            self.rotate()?;
        }
        let log = self
            .boots
            .last_mut()
            .expect("the current boot is always held");
        let segment = log.segments.back_mut().expect("an active segment");
        let file = log.active.as_mut().expect("an active segment");
        if let Err(source) = file.write_all(chunk) {
            // A partial write would leave half a line; cut back to the last
            // whole one so a retry appends cleanly.
            let _ = file.set_len(segment.bytes);
            return Err(SpoolError::Io {
                action: "write",
                path: segment.path.clone(),
                source,
            });
        }
        segment.bytes += chunk.len() as u64;
        for &seq in seqs {
            segment.seqs.push(seq);
        }
        log.last_seq = log.last_seq.max(segment.seqs.last());
        self.bytes += chunk.len() as u64;
        self.unsynced = true;
        Ok(())
    }

    /// Seals the active segment (synced, so sealed segments are always on
    /// the device) and starts a new one.
    fn rotate(&mut self) -> Result<(), SpoolError> {
        let dir = self.dir.clone();
        let log = self.current();
        if let Some(file) = log.active.take() {
            let path = log
                .segments
                .back()
                .map(|s| s.path.clone())
                .unwrap_or_default();
            file.sync_data().map_err(io_error("sync", &path))?;
        }
        let number = log.next_segment;
        let path = dir.join(format!(
            "{:08}_{}_{number:08}{SEGMENT_SUFFIX}",
            log.ordinal, log.boot
        ));
        let file = match state_dir::open(&path, Access::Append) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::Other => {
                // Something not ours sits at that name: leave it alone and
                // take the next number, so the spool goes on.
                tracing::warn!(%error, "Skipping a spool segment name that is taken.");
                log.next_segment += 1;
                return Err(io_error("create", &path)(error));
            }
            Err(error) => return Err(io_error("create", &path)(error)),
        };
        // A leftover of a failed attempt with this number holds nothing
        // counted; start it empty.
        file.set_len(0).map_err(io_error("truncate", &path))?;
        log.next_segment += 1;
        log.segments.push_back(Segment {
            number,
            path,
            bytes: 0,
            seqs: Runs::default(),
        });
        log.active = Some(file);
        self.dir_unsynced = true;
        Ok(())
    }

    /// Sheds the oldest segment to make room; false when there is none.
    /// What its `loss` events said comes back with the drop (see
    /// [`Dropped::reports`]).
    fn drop_oldest(&mut self, dropped: &mut Vec<Dropped>) -> Result<bool, SpoolError> {
        let Some(i) = self.oldest() else {
            return Ok(false);
        };
        let is_current = i == self.boots.len() - 1;
        let log = &mut self.boots[i];
        let segment = log.segments.pop_front().expect("a segment");
        if log.segments.is_empty() {
            // It was the last one, the one appended to.
            log.active = None;
        }
        let acked = log.acked;
        let data = state_dir::read(&segment.path).map_err(io_error("read", &segment.path))?;
        for line in data.split_inclusive(|&b| b == b'\n') {
            let Ok(head) = serde_json::from_slice::<LineHead>(line) else {
                continue;
            };
            if head.seq <= acked {
                continue;
            }
            let loss = (head.kind == "loss")
                .then(|| serde_json::from_slice::<Event>(line).ok())
                .flatten()
                .and_then(|e| match e.body {
                    Body::Loss(loss) => Some(loss),
                    _ => None,
                });
            note(dropped, &log.boot, head.seq, loss);
        }
        fs::remove_file(&segment.path).map_err(io_error("remove", &segment.path))?;
        self.bytes -= segment.bytes;
        self.dir_unsynced = true;
        if !is_current && self.boots[i].segments.is_empty() {
            self.forget_boot(i)?;
        }
        Ok(true)
    }

    /// The boot whose first segment is shed next: the oldest holding any.
    fn oldest(&self) -> Option<usize> {
        self.boots.iter().position(|b| !b.segments.is_empty())
    }

    /// Whether the next segment to shed holds events sent and not yet
    /// acknowledged.
    fn oldest_in_flight(&self) -> bool {
        self.oldest().is_some_and(|i| {
            let log = &self.boots[i];
            log.segments[0]
                .seqs
                .first_after(log.acked)
                .is_some_and(|first| first <= log.sent)
        })
    }

    fn forget_boot(&mut self, i: usize) -> Result<(), SpoolError> {
        let log = self.boots.remove(i);
        remove_if_present(Some(&self.ack_path(&log)))?;
        let emitted = self
            .dir
            .join(format!("{:08}_{}{EMITTED_SUFFIX}", log.ordinal, log.boot));
        remove_if_present(Some(&emitted))
    }

    /// Records durably, in place, that the current boot was given every
    /// seq up to `seq`, for events that wait in memory because the spool
    /// cannot take them yet: if the agent dies before they are written, the
    /// next start reports them lost instead of never knowing them.
    pub fn note_emitted(&mut self, seq: u64) -> Result<(), SpoolError> {
        let dir = self.dir.clone();
        let log = self.current();
        if seq <= log.emitted {
            return Ok(());
        }
        let Some(file) = &log.emitted_file else {
            return Ok(());
        };
        let record = format!("{seq:0ACK_DIGITS$}\n");
        file.write_all_at(record.as_bytes(), 0)
            .and_then(|()| file.sync_data())
            .map_err(|source| SpoolError::Io {
                action: "write",
                path: dir.join(format!("{:08}_{}{EMITTED_SUFFIX}", log.ordinal, log.boot)),
                source,
            })?;
        log.emitted = seq;
        Ok(())
    }

    fn ack_path(&self, log: &BootLog) -> PathBuf {
        self.dir
            .join(format!("{:08}_{}{ACK_SUFFIX}", log.ordinal, log.boot))
    }

    /// Records that the collector holds every event of `boot` up to `seq`,
    /// and deletes the segments that holds entirely. An ack for a boot the
    /// spool no longer holds is ignored.
    pub fn ack(&mut self, boot: &str, seq: u64) -> Result<(), SpoolError> {
        let Some(i) = self.boots.iter().position(|b| b.boot == boot) else {
            return Ok(());
        };
        let path = self.ack_path(&self.boots[i]);
        let is_current = i == self.boots.len() - 1;
        let log = &mut self.boots[i];
        let mut seq = seq.min(log.last_seq);
        // Lines set aside are done once everything before them is.
        while seq < log.last_seq && log.skip.contains(&(seq + 1)) {
            seq += 1;
        }
        if seq <= log.acked {
            return Ok(());
        }
        log.acked = seq;
        log.sent = log.sent.max(seq);
        // The record first: segments gone with an older record would make
        // a restart think acknowledged events were never written.
        if log.ack_file.is_none() {
            let file =
                state_dir::open(&path, Access::ReadWrite).map_err(io_error("open", &path))?;
            log.ack_file = Some(file);
        }
        let record = format!("{seq:0ACK_DIGITS$}\n");
        log.ack_file
            .as_ref()
            .expect("opened above")
            .write_all_at(record.as_bytes(), 0)
            .map_err(io_error("write", &path))?;
        let mut removed = 0;
        while let Some(front) = log.segments.front() {
            if front.seqs.count_after(seq) > 0 {
                break;
            }
            let segment = log.segments.pop_front().expect("a segment");
            if log.segments.is_empty() {
                log.active = None;
            }
            fs::remove_file(&segment.path).map_err(io_error("remove", &segment.path))?;
            removed += segment.bytes;
        }
        self.bytes -= removed;
        if !is_current && log.segments.is_empty() {
            return self.forget_boot(i);
        }
        Ok(())
    }

    /// Starts sending over: everything `last_seq` (the collector's welcome)
    /// names counts as acknowledged, and the next batch is the oldest event
    /// not acknowledged.
    pub fn rewind(&mut self, last_seq: &BTreeMap<String, u64>) -> Result<(), SpoolError> {
        for (boot, &seq) in last_seq {
            self.ack(boot, seq)?;
        }
        for log in &mut self.boots {
            log.sent = log.acked;
        }
        self.cursor = Cursor {
            ordinal: self.boots[0].ordinal,
            ..Cursor::default()
        };
        Ok(())
    }

    /// Reads the next events to send, at most about `max_bytes` of them
    /// (one event more if a single line is longer), oldest boot first.
    pub fn next_batch(&mut self, max_bytes: usize) -> Result<Option<Batch>, SpoolError> {
        loop {
            let Some(bi) = self
                .boots
                .iter()
                .position(|b| b.ordinal >= self.cursor.ordinal)
            else {
                return Ok(None);
            };
            let is_current = bi == self.boots.len() - 1;
            let log = &self.boots[bi];
            if log.ordinal != self.cursor.ordinal {
                self.cursor = Cursor {
                    ordinal: log.ordinal,
                    ..Cursor::default()
                };
            }
            let Some(si) = log
                .segments
                .iter()
                .position(|s| s.number >= self.cursor.segment)
            else {
                if is_current {
                    return Ok(None);
                }
                self.cursor = Cursor {
                    ordinal: log.ordinal + 1,
                    ..Cursor::default()
                };
                continue;
            };
            let segment = &log.segments[si];
            if segment.number != self.cursor.segment {
                self.cursor.segment = segment.number;
                self.cursor.offset = 0;
            }
            if self.cursor.offset >= segment.bytes {
                if is_current && si == log.segments.len() - 1 {
                    return Ok(None);
                }
                self.cursor.segment += 1;
                self.cursor.offset = 0;
                continue;
            }
            let open = matches!(&self.cursor.reader,
                Some((o, n, _)) if *o == log.ordinal && *n == segment.number);
            if !open {
                let file = state_dir::open(&segment.path, Access::Read)
                    .map_err(io_error("open", &segment.path))?;
                self.cursor.reader = Some((log.ordinal, segment.number, file));
            }
            let reader = &self.cursor.reader.as_ref().expect("opened above").2;
            let left = segment.bytes - self.cursor.offset;
            let mut buf = vec![0; left.min(max_bytes as u64) as usize];
            reader
                .read_exact_at(&mut buf, self.cursor.offset)
                .map_err(io_error("read", &segment.path))?;
            let end = match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => {
                    // One line longer than max_bytes: read on to its end.
                    buf.resize(left as usize, 0);
                    reader
                        .read_exact_at(&mut buf, self.cursor.offset)
                        .map_err(io_error("read", &segment.path))?;
                    buf.iter()
                        .position(|&b| b == b'\n')
                        .map_or(buf.len(), |i| i + 1)
                }
            };
            buf.truncate(end);
            self.cursor.offset += end as u64;
            // After a rewind the cursor starts at a segment's head, which
            // may hold events already acknowledged.
            let acked = log.acked;
            let mut lines = Vec::with_capacity(buf.len());
            let (mut count, mut last_seq) = (0, 0);
            for line in buf.split_inclusive(|&b| b == b'\n') {
                let Ok(head) = serde_json::from_slice::<LineHead>(line) else {
                    continue;
                };
                if head.seq > acked && !log.skip.contains(&head.seq) {
                    lines.extend_from_slice(line);
                    count += 1;
                    last_seq = head.seq;
                }
            }
            if count == 0 {
                continue;
            }
            let boot = log.boot.clone();
            let log = &mut self.boots[bi];
            log.sent = log.sent.max(last_seq);
            return Ok(Some(Batch {
                boot,
                lines,
                count,
                last_seq,
            }));
        }
    }

    /// The file lines the collector refused are set aside in: beside the
    /// spool, in `state_dir`.
    pub fn quarantine_path(&self) -> PathBuf {
        self.dir.with_file_name(QUARANTINE_NAME)
    }

    /// Lines set aside so far, over every run.
    pub fn quarantined(&self) -> u64 {
        self.quarantined
    }

    /// Reads which lines earlier runs set aside, so they stay aside.
    fn load_quarantine(&mut self) {
        let Ok(data) = state_dir::read(&self.quarantine_path()) else {
            return;
        };
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            self.quarantined += 1;
            if let Ok(q) = serde_json::from_slice::<Quarantined>(line)
                && let Some(log) = self.boots.iter_mut().find(|b| b.boot == q.boot)
            {
                log.skip.insert(q.seq);
            }
        }
    }

    /// Sets the line of `(boot, seq)` aside: copies it to the quarantine
    /// file with `reason` and never sends it again. False when there is no
    /// such line to set aside (acknowledged, shed, or aside already).
    pub fn quarantine(&mut self, boot: &str, seq: u64, reason: &str) -> Result<bool, SpoolError> {
        let path = self.quarantine_path();
        let Some(log) = self.boots.iter_mut().find(|b| b.boot == boot) else {
            return Ok(false);
        };
        if seq <= log.acked || log.skip.contains(&seq) {
            return Ok(false);
        }
        let mut found = None;
        for segment in &log.segments {
            let data = state_dir::read(&segment.path).map_err(io_error("read", &segment.path))?;
            found = data
                .split(|&b| b == b'\n')
                .find(|line| serde_json::from_slice::<LineHead>(line).is_ok_and(|h| h.seq == seq))
                .map(|line| String::from_utf8_lossy(line).into_owned());
            if found.is_some() {
                break;
            }
        }
        let Some(line) = found else {
            return Ok(false);
        };
        let mut record = serde_json::to_vec(&Quarantined {
            boot: boot.to_string(),
            seq,
            reason: reason.to_string(),
            line,
        })
        .expect("a quarantine record serializes");
        record.push(b'\n');
        state_dir::open(&path, Access::Append)
            .and_then(|mut file| {
                file.write_all(&record)?;
                file.sync_data()
            })
            .map_err(io_error("write", &path))?;
        log.skip.insert(seq);
        let acked = log.acked;
        self.quarantined += 1;
        self.ack(boot, acked)?;
        Ok(true)
    }

    /// What needs flushing to the device since the last job, if anything.
    pub fn sync_job(&mut self) -> Option<SyncJob> {
        let file = if self.unsynced {
            let log = self.boots.last().expect("the current boot is always held");
            match (&log.active, log.segments.back()) {
                (Some(file), Some(segment)) => file
                    .try_clone()
                    .ok()
                    .map(|file| (file, segment.path.clone())),
                _ => None,
            }
        } else {
            None
        };
        let dir = self.dir_unsynced.then(|| self.dir.clone());
        self.unsynced = false;
        self.dir_unsynced = false;
        (file.is_some() || dir.is_some()).then_some(SyncJob { file, dir })
    }

    /// After a failed [`SyncJob`]: sync again next time.
    pub fn mark_unsynced(&mut self) {
        self.unsynced = true;
        self.dir_unsynced = true;
    }
}

/// Adds one dropped seq to the list, extending the last drop when it is
/// the next seq of the same boot, so one full spool makes one loss event,
/// and a gap (events lost before they reached the spool, reported then)
/// starts a new one.
fn note(dropped: &mut Vec<Dropped>, boot: &str, seq: u64, loss: Option<Loss>) {
    match dropped.last_mut() {
        Some(last) if last.boot == boot && seq == last.last_seq + 1 => {
            last.count += 1;
            last.last_seq = seq;
            last.losses.extend(loss);
        }
        _ => {
            let mut d = Dropped::range(boot, seq, seq);
            d.losses.extend(loss);
            dropped.push(d);
        }
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

fn read_ack(path: &Path) -> u64 {
    state_dir::read(path)
        .ok()
        .and_then(|s| String::from_utf8(s).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads a segment back, keeping its longest prefix of whole, parseable
/// lines with rising seqs; truncates the file there.
fn recover_segment(number: u64, path: PathBuf) -> Result<(Segment, u64), SpoolError> {
    let data = state_dir::read(&path).map_err(io_error("read", &path))?;
    let mut seqs = Runs::default();
    let mut valid = 0;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            break;
        }
        match serde_json::from_slice::<LineHead>(line) {
            Ok(head) if seqs.push(head.seq) => valid += line.len(),
            _ => break,
        }
    }
    let discarded = (data.len() - valid) as u64;
    if discarded > 0 {
        let file = state_dir::open(&path, Access::ReadWrite).map_err(io_error("open", &path))?;
        file.set_len(valid as u64)
            .and_then(|()| file.sync_all())
            .map_err(io_error("truncate", &path))?;
        tracing::warn!(
            path = %path.display(),
            discarded_bytes = discarded,
            "Cut a torn tail off a spool segment (the agent stopped mid-write)."
        );
    }
    Ok((
        Segment {
            number,
            path,
            bytes: valid as u64,
            seqs,
        },
        discarded,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Body, Link, LinkState, Loss, Sequencer};
    use std::fs::OpenOptions;
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
                    let Some(batch) = spool.next_batch(200 + rng.below(2000) as usize).unwrap()
                    else {
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
    fn a_dropped_loss_events_range_is_folded_into_the_next_report() {
        let d = Dropped {
            boot: "b".into(),
            count: 20,
            first_seq: 101,
            last_seq: 120,
            losses: vec![
                Loss {
                    count: 100,
                    first_seq: 1,
                    last_seq: 100,
                    lost_boot: Some("b".into()),
                    message: String::new(),
                },
                Loss {
                    count: 5,
                    first_seq: 1,
                    last_seq: 5,
                    lost_boot: Some("old".into()),
                    message: String::new(),
                },
            ],
        };
        let reports = d.reports();
        assert_eq!(
            reports,
            vec![
                LossReport {
                    boot: "b".into(),
                    count: 120,
                    first_seq: 1,
                    last_seq: 120,
                    carried: 100,
                },
                LossReport {
                    boot: "old".into(),
                    count: 5,
                    first_seq: 1,
                    last_seq: 5,
                    carried: 5,
                },
            ]
        );
        // Acknowledged events between: two ranges, neither spanning them.
        let d = Dropped {
            losses: vec![Loss {
                count: 50,
                first_seq: 1,
                last_seq: 50,
                lost_boot: Some("b".into()),
                message: String::new(),
            }],
            ..Dropped::range("b", 101, 120)
        };
        let ranges: Vec<(u64, u64)> = d
            .reports()
            .iter()
            .map(|r| (r.first_seq, r.last_seq))
            .collect();
        assert_eq!(ranges, vec![(1, 50), (101, 120)]);
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
}
