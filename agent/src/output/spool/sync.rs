//! Group commit: what was written since the last sync, flushed to the
//! device outside the spool's lock so sending goes on meanwhile.

use super::{Spool, SpoolError, io_error};
use std::fs::File;
use std::path::PathBuf;

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

impl Spool {
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
