//! The `procfs` counter source: `/proc/net/dev`, read and parsed every tick.
//!
//! On a switch with hundreds of ports this runs every second, so the parser
//! splits bytes by hand and allocates nothing per field, a line unchanged
//! since the last tick is not parsed again, and the reader keeps its buffer
//! between ticks.
//!
//! `line` reads one line (the header, an interface row), `parser` a
//! whole text, skipping the lines it saw last tick; this module the file.

mod line;
mod parser;
#[cfg(test)]
mod tests;

use super::{CounterSource, Snapshot, SourceError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub use line::ParseError;
pub use parser::{Reparser, parse_into, parse_proc_net_dev};

/// How much the read buffer grows by when the file outgrows it.
const READ_STEP: usize = 16 * 1024;

/// Reads `<proc_root>/net/dev` each tick.
pub struct ProcfsSource {
    path: PathBuf,
    /// The file, kept open between ticks when it is on procfs.
    ///
    /// Opening `/proc/net/dev` walks `/proc/self/net` and sets up the
    /// kernel's reader, a tenth of the read's own cost. Procfs regenerates
    /// the text each time it is read from the start, so an open file reads
    /// as a new one would. Any other file (a fixture under a test's proc
    /// root) is opened anew each tick, so one that is replaced or removed
    /// shows as it would.
    kept: Option<File>,
    /// Room for the file's bytes, kept between ticks and never shrunk, so a
    /// read neither allocates nor clears it; only the front is this tick's.
    buffer: Vec<u8>,
    parser: Reparser,
}

impl ProcfsSource {
    pub fn new(proc_root: &Path) -> ProcfsSource {
        ProcfsSource {
            path: proc_root.join("net").join("dev"),
            kept: None,
            buffer: Vec::new(),
            parser: Reparser::default(),
        }
    }

    /// The file this source reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole file into the buffer and returns its length.
    fn read(&mut self) -> std::io::Result<usize> {
        let (file, opened) = match self.kept.take() {
            Some(file) => (file, false),
            None => (File::open(&self.path)?, true),
        };
        // A file that fails a read is dropped here and opened again next tick.
        let length = read_whole(&file, &mut self.buffer)?;
        if !opened || on_procfs(&file) {
            self.kept = Some(file);
        }
        Ok(length)
    }
}

/// Reads `file` from its start into `buffer`, growing it as needed, and
/// returns the length read.
///
/// Procfs files report a size of 0, so they are read until a read returns
/// nothing; `read_to_end` would first ask the file's size and position (a
/// `statx` and an `lseek`) for a hint that procfs cannot give. The kernel
/// hands back at most a page per read whatever the buffer. Reads name their
/// offset (`pread`), and a procfs file read at offset 0 starts its text over.
fn read_whole(file: &File, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut filled = 0;
    loop {
        if filled == buffer.len() {
            buffer.resize(filled + READ_STEP, 0);
        }
        match file.read_at(&mut buffer[filled..], filled as u64) {
            Ok(0) => return Ok(filled),
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

fn on_procfs(file: &File) -> bool {
    nix::sys::statfs::fstatfs(file)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

impl CounterSource for ProcfsSource {
    fn name(&self) -> &'static str {
        "procfs"
    }

    fn sample_into(&mut self, snapshot: &mut Snapshot) -> Result<(), SourceError> {
        let length = self.read().map_err(|source| SourceError::Read {
            path: self.path.display().to_string(),
            source,
        })?;
        self.parser
            .parse_buffer(&mut self.buffer, length, snapshot)
            .map_err(|error| SourceError::Format {
                path: self.path.display().to_string(),
                reason: error.to_string(),
            })
    }
}
