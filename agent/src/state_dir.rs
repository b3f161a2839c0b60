//! Files in the agent's `state_dir` (the spool, its lock, the control
//! socket, quarantined lines): opened so that a symlink or a FIFO planted
//! at their path is refused instead of followed, truncated or blocked on,
//! and the one lock that keeps a second agent off the same directory.

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The lock file's name in `state_dir`.
pub const LOCK_NAME: &str = "hopwatch.lock";

/// Creates `dir` and its missing parents, readable by the owner only: the
/// spool holds every event and the socket answers `status`.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// How a state file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    /// Read and write; created (0600) when absent.
    ReadWrite,
    /// Appended to; created (0600) when absent.
    Append,
}

/// Opens a state file without following a symlink at its last component
/// and without blocking on a FIFO, and refuses anything but a regular file,
/// naming the path and the fix.
pub fn open(path: &Path, access: Access) -> io::Result<File> {
    let mut options = OpenOptions::new();
    match access {
        Access::Read => options.read(true),
        Access::ReadWrite => options.read(true).write(true).create(true),
        Access::Append => options.append(true).create(true),
    };
    let file = options
        .mode(0o600)
        .custom_flags(libc_flags())
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == Errno::ELOOP as i32 => io::Error::other(format!(
                "{} is a symbolic link; state files are never opened through one: remove it",
                path.display()
            )),
            Some(code) if code == Errno::ENXIO as i32 => io::Error::other(format!(
                "{} is a FIFO or a device, not a regular file: remove it",
                path.display()
            )),
            _ => e,
        })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(io::Error::other(format!(
            "{} is {what}, not a regular file: remove it",
            path.display()
        )));
    }
    Ok(file)
}

fn libc_flags() -> i32 {
    (nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)
        .bits()
}

/// Reads a whole state file, opened as [`open`] does.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    open(path, Access::Read)?.read_to_end(&mut data)?;
    Ok(data)
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another hopwatch ({holder}) is running with state_dir {}; stop it first, or give this one another state_dir",
        .dir.display()
    )]
    Held { dir: PathBuf, holder: String },
    #[error("cannot lock state_dir {}: {source}", .dir.display())]
    Io {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// An exclusive `flock` on `state_dir/hopwatch.lock`, held for as long as
/// this value lives; the file holds the holder's pid, so a second agent
/// can name it.
#[derive(Debug)]
pub struct StateLock {
    dir: PathBuf,
    _lock: Flock<File>,
}

impl StateLock {
    pub fn acquire(dir: &Path) -> Result<StateLock, LockError> {
        let io_err = |source| LockError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        create_dir(dir).map_err(io_err)?;
        let path = dir.join(LOCK_NAME);
        let file = open(&path, Access::ReadWrite).map_err(io_err)?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim().parse::<u32>() {
                    Ok(pid) => format!("pid {pid}"),
                    Err(_) => "a process".to_string(),
                };
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            Err((_, errno)) => return Err(io_err(errno.into())),
        };
        lock.set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| writeln!(lock, "{}", std::process::id()))
            .map_err(io_err)?;
        Ok(StateLock {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory this lock holds.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hopwatch-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn symlinks_and_fifos_are_refused_and_their_targets_untouched() {
        let dir = temp("links");
        create_dir(&dir).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let target = dir.join("precious");
        std::fs::write(&target, "keep me").unwrap();
        let link = dir.join("segment.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for access in [Access::Read, Access::ReadWrite, Access::Append] {
            let error = open(&link, access).unwrap_err().to_string();
            assert!(
                error.contains("symbolic link") && error.contains("segment.jsonl"),
                "{error}"
            );
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");

        let fifo = dir.join("fifo.jsonl");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Would block for ever without O_NONBLOCK.
        let error = open(&fifo, Access::Read).unwrap_err().to_string();
        assert!(
            error.contains("a FIFO") && error.contains("remove it"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_second_lock_names_the_holder() {
        let dir = temp("lock");
        let first = StateLock::acquire(&dir).unwrap();
        let error = StateLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            error.contains(&format!("pid {}", std::process::id())),
            "{error}"
        );
        drop(first);
        StateLock::acquire(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
