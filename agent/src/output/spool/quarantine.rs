//! Lines the collector refused as malformed: set aside in
//! `state_dir/quarantine.jsonl` with the reason, never sent again (also
//! after a restart), so one bad line cannot hold back every event behind
//! it.

use super::{Access, LineHead, QUARANTINE_NAME, Spool, SpoolError, io_error, state_dir};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;

/// One line the collector refused, as the quarantine file keeps it.
#[derive(Serialize, Deserialize)]
struct Quarantined {
    boot: String,
    seq: u64,
    reason: String,
    /// The line as spooled, without its newline.
    line: String,
}

impl Spool {
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
    pub(super) fn load_quarantine(&mut self) {
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
}
