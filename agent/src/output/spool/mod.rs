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

use crate::event::{Body, Event};
use crate::state_dir::{self, Access};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod loss;
mod quarantine;

use loss::note;
pub use loss::{Dropped, LossReport, dropped_events};

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
    /// Whether a full spool may shed its oldest events (see
    /// [`Spool::stop_shedding`]).
    shedding: bool,
    _lock: Flock<File>,
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
            shedding: true,
            _lock: lock,
        };
        spool.load_quarantine();
        Ok((spool, recovery))
    }

    /// From now on a full spool sheds nothing: what does not fit stays
    /// with the caller. For an agent stopping, which could no longer turn
    /// a shed into a `loss` event: kept on record instead (see
    /// [`Spool::note_emitted`]), the next start reports it.
    pub fn stop_shedding(&mut self) {
        self.shedding = false;
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
                if !self.shedding || (spare_in_flight && self.oldest_in_flight()) {
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
        // Events are objects; serde would read a struct from an array too.
        match serde_json::from_slice::<LineHead>(line) {
            Ok(head) if line.starts_with(b"{") && seqs.push(head.seq) => valid += line.len(),
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
mod tests;
