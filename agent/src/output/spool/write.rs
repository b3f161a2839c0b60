//! Appending to the spool: events as whole lines into the current boot's
//! segment, a new segment when it is full, and, when the spool would
//! outgrow its bound, shedding the oldest segment and saying exactly which
//! events went.

use super::loss::note;
use super::{
    ACK_DIGITS, Access, Dropped, EMITTED_SUFFIX, LineHead, Runs, SEGMENT_SUFFIX, Segment, Spool,
    SpoolError, io_error, remove_if_present, state_dir,
};
use crate::event::{Body, Event};
use std::collections::VecDeque;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

impl Spool {
    /// From now on a full spool sheds nothing: what does not fit stays
    /// with the caller. For an agent stopping, which could no longer turn
    /// a shed into a `loss` event: kept on record instead (see
    /// [`Spool::note_emitted`]), the next start reports it.
    pub fn stop_shedding(&mut self) {
        self.shedding = false;
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

    pub(super) fn forget_boot(&mut self, i: usize) -> Result<(), SpoolError> {
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
}
