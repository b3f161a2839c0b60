//! Reading the spool back for the collector and applying its answers:
//! batches of whole lines, oldest boot first, resumed after the welcome's
//! `last_seq`; acknowledgements recorded in place and the segments they
//! cover deleted.

use super::{
    ACK_DIGITS, ACK_SUFFIX, Access, Batch, BootLog, Cursor, LineHead, Spool, SpoolError, io_error,
    state_dir,
};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

impl Spool {
    pub(super) fn ack_path(&self, log: &BootLog) -> PathBuf {
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
}
