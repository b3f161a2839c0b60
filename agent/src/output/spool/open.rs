//! Opening the spool: taking its lock, finding what earlier runs left,
//! cutting torn tails off segments, and reporting the seqs an earlier run
//! was given but never wrote (see the durability notes in the module
//! above).

use super::{
    ACK_DIGITS, ACK_SUFFIX, Access, BootLog, Cursor, Dropped, EMITTED_SUFFIX, LOCK_NAME, LineHead,
    MAX_SEGMENT, MIN_SEGMENT, Recovery, Runs, SEGMENT_SUFFIX, Segment, Spool, SpoolError, io_error,
    remove_if_present, state_dir,
};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

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
}

pub(super) fn read_ack(path: &Path) -> u64 {
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
