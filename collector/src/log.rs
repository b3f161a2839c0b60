//! The collector's own log: every line to stderr and to a file under
//! `data_dir`, which is rotated by size (`collector.log`, `.1`, … `.keep`)
//! so the history of connections and refusals survives a restart without
//! filling the disk.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;

/// A log file that moves aside when it reaches `max_size`.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_size: u64,
    keep: usize,
    // Held for one write, never across an await.
    state: Mutex<FileState>,
}

#[derive(Debug)]
struct FileState {
    file: Option<File>,
    size: u64,
}

impl RotatingFile {
    pub fn open(path: &Path, max_size: u64, keep: usize) -> io::Result<RotatingFile> {
        if let Some(dir) = path.parent() {
            DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            max_size,
            keep,
            state: Mutex::new(FileState {
                file: Some(file),
                size,
            }),
        })
    }

    /// Appends `buf`, rotating first when it would pass the size limit.
    pub fn append(&self, buf: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock().expect("log file poisoned");
        if state.size > 0 && state.size + buf.len() as u64 > self.max_size {
            state.file = None;
            self.rotate()?;
            state.file = Some(open_append(&self.path)?);
            state.size = 0;
        }
        if state.file.is_none() {
            state.file = Some(open_append(&self.path)?);
        }
        let file = state.file.as_mut().expect("opened above");
        file.write_all(buf)?;
        state.size += buf.len() as u64;
        Ok(())
    }

    fn numbered(&self, n: usize) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// `.keep-1` → `.keep`, …, the live file → `.1`; with `keep` 0 the
    /// live file is simply truncated.
    fn rotate(&self) -> io::Result<()> {
        if self.keep == 0 {
            return open_append(&self.path).and_then(|f| f.set_len(0));
        }
        for n in (1..self.keep).rev() {
            let from = self.numbered(n);
            if from.exists() {
                fs::rename(&from, self.numbered(n + 1))?;
            }
        }
        fs::rename(&self.path, self.numbered(1))
    }
}

/// Opens the log for appending (0600 when created) without following a
/// symlink planted at its path or blocking on a FIFO, and refuses anything
/// but a regular file, naming the path.
fn open_append(path: &Path) -> io::Result<File> {
    let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(flags.bits())
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == nix::errno::Errno::ELOOP as i32 => io::Error::other(format!(
                "the log file {} is a symbolic link; it is never written through one: remove it",
                path.display()
            )),
            Some(code) if code == nix::errno::Errno::ENXIO as i32 => io::Error::other(format!(
                "the log file {} is a FIFO or a device, not a regular file: remove it",
                path.display()
            )),
            _ => e,
        })?;
    if !file.metadata()?.file_type().is_file() {
        return Err(io::Error::other(format!(
            "the log file {} is not a regular file: remove it",
            path.display()
        )));
    }
    Ok(file)
}

/// Writes each log line to stderr and, when set, the rotating file.
#[derive(Debug, Clone)]
pub struct Tee {
    file: Option<Arc<RotatingFile>>,
}

impl Tee {
    pub fn new(file: Option<RotatingFile>) -> Tee {
        Tee {
            file: file.map(Arc::new),
        }
    }
}

/// One log record's writer.
pub struct TeeWriter {
    file: Option<Arc<RotatingFile>>,
}

impl Write for TeeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().write_all(buf);
        if let Some(file) = &self.file {
            // A full disk must not take the collector down with its log.
            let _ = file.append(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for Tee {
    type Writer = TeeWriter;

    fn make_writer(&'a self) -> TeeWriter {
        TeeWriter {
            file: self.file.clone(),
        }
    }
}

/// `HOPWATCH_LOG=error|warn|info|debug|trace`; info by default.
pub fn level() -> tracing::Level {
    std::env::var("HOPWATCH_LOG")
        .ok()
        .and_then(|level| level.parse().ok())
        .unwrap_or(tracing::Level::INFO)
}

/// Installs the global subscriber writing to stderr and `file`.
pub fn init(file: Option<RotatingFile>) {
    let _ = tracing_subscriber::fmt()
        .with_writer(Tee::new(file))
        .with_ansi(false)
        .with_max_level(level())
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_so_many() {
        let dir = std::env::temp_dir().join(format!("hopwatch-log-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("c.log");
        let log = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..10 {
            log.append(format!("line {i:02} {}\n", "x".repeat(30)).as_bytes())
                .unwrap();
        }
        // 40-byte lines, 100-byte files: two lines per file.
        let live = fs::read_to_string(&path).unwrap();
        assert!(
            live.starts_with("line 08") && live.contains("line 09"),
            "{live}"
        );
        assert!(
            fs::read_to_string(dir.join("c.log.1"))
                .unwrap()
                .starts_with("line 06")
        );
        assert!(
            fs::read_to_string(dir.join("c.log.2"))
                .unwrap()
                .starts_with("line 04")
        );
        assert!(!dir.join("c.log.3").exists());
        // A reopened log appends to the live file.
        drop(log);
        let log = RotatingFile::open(&path, 100, 2).unwrap();
        log.append(b"again\n").unwrap();
        assert!(fs::read_to_string(&path).unwrap().ends_with("again\n"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_log_path_that_is_a_symlink_or_fifo_is_refused_and_left_alone() {
        let dir = std::env::temp_dir().join(format!("hopwatch-log-links-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("precious");
        fs::write(&target, "keep me").unwrap();
        let path = dir.join("collector.log");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let error = RotatingFile::open(&path, 1000, 2).unwrap_err().to_string();
        assert!(
            error.contains("symbolic link") && error.contains("collector.log"),
            "{error}"
        );
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
        fs::remove_file(&path).unwrap();
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Would block for ever without O_NONBLOCK.
        let error = RotatingFile::open(&path, 1000, 2).unwrap_err().to_string();
        assert!(error.contains("FIFO"), "{error}");
        let _ = fs::remove_dir_all(&dir);
    }
}
