//! The silences file, `state_dir/silences.json`: the local silences and the
//! collector's last set, so both survive a restart (the collector's matter
//! most while it is unreachable, which is when a restart is likeliest to
//! go unnoticed). Written whole to a temporary file, synced and renamed
//! over the old one, so a crash leaves either the old file or the new; a
//! file that cannot be read is renamed aside and the agent starts without
//! it, never refusing to run over it.

use super::{Active, Registry, SilenceError};
use crate::state_dir::{self, Access};
use hopwatch_wire::silence::Silence;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The file's name in `state_dir`.
pub const FILE_NAME: &str = "silences.json";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    local: Vec<Silence>,
    #[serde(default)]
    collector: Vec<Silence>,
}

/// What loading found besides the silences, for the caller to log.
#[derive(Debug, Default)]
pub struct Loaded {
    pub registry: Registry,
    /// Entries that could not be read; the others were kept.
    pub skipped: Vec<SilenceError>,
    /// How many had ended while the agent was down.
    pub expired: usize,
    /// The whole file was unreadable and was moved to this path.
    pub set_aside: Option<(PathBuf, String)>,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Reads the file in `state_dir`; a missing file is no silences. Silences
/// already over at `now` are dropped. A file that is not the JSON this
/// agent writes is renamed to `silences.json.corrupt` and reported; an
/// error is returned only when even that fails (the caller then runs
/// without the file's silences, and says so).
pub fn load(state_dir: &Path, now: SystemTime) -> io::Result<Loaded> {
    let path = path(state_dir);
    let data = match state_dir::read(&path) {
        Ok(data) => data,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(error) => return Err(error),
    };
    let file: File = match serde_json::from_slice(&data) {
        Ok(file) => file,
        Err(error) => {
            let aside = path.with_extension("json.corrupt");
            std::fs::rename(&path, &aside)?;
            return Ok(Loaded {
                set_aside: Some((aside, error.to_string())),
                ..Loaded::default()
            });
        }
    };
    let mut loaded = Loaded::default();
    let mut local = Vec::new();
    for silence in file.local {
        match Active::parse(silence) {
            Ok(active) if active.ends > now => local.push(active),
            Ok(_) => loaded.expired += 1,
            Err(error) => loaded.skipped.push(error),
        }
    }
    for active in local {
        loaded.registry.add_local(active);
    }
    let before = file.collector.len();
    let (_, errors) = loaded.registry.replace_collector(file.collector, now);
    loaded.expired += before - errors.len() - loaded.registry.collector().len();
    loaded.skipped.extend(errors);
    Ok(loaded)
}

/// Writes the registry to the file in `state_dir`, atomically.
pub fn save(state_dir: &Path, registry: &Registry) -> io::Result<()> {
    let file = File {
        local: registry.local().iter().map(|a| a.silence.clone()).collect(),
        collector: registry
            .collector()
            .iter()
            .map(|a| a.silence.clone())
            .collect(),
    };
    let mut data = serde_json::to_vec(&file).map_err(io::Error::other)?;
    data.push(b'\n');
    state_dir::create_dir(state_dir)?;
    let path = path(state_dir);
    let temp = path.with_extension("json.tmp");
    // A temp file left by a crash mid-write is stale: begin anew.
    match std::fs::remove_file(&temp) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut out = state_dir::open(&temp, Access::ReadWrite)?;
    out.write_all(&data)?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&temp, &path)?;
    // The rename itself must reach the disk for the new file to survive a
    // power loss.
    std::fs::File::open(state_dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{silence, t};
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hopwatch-silences-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn both_sets_survive_a_save_and_load_and_ended_ones_are_dropped() {
        let dir = temp("roundtrip");
        let mut r = Registry::default();
        r.add_local(Active::parse(silence("l-1", "Eth1-*", Some("tx"), 0, 100)).unwrap());
        r.add_local(Active::parse(silence("l-2", "Eth2-*", None, 0, 20)).unwrap());
        r.replace_collector(
            vec![
                silence("c-1", "swp*", None, 0, 200),
                silence("c-2", "swp1", None, 0, 30),
            ],
            t(0),
        );
        save(&dir, &r).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(path(&dir)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.join("silences.json.tmp").exists());

        let loaded = load(&dir, t(50)).unwrap();
        assert_eq!(loaded.expired, 2);
        assert!(loaded.skipped.is_empty() && loaded.set_aside.is_none());
        let local: Vec<&Silence> = loaded.registry.local().iter().map(|a| &a.silence).collect();
        assert_eq!(local, [&silence("l-1", "Eth1-*", Some("tx"), 0, 100)]);
        let ids: Vec<&str> = loaded.registry.collector().iter().map(Active::id).collect();
        assert_eq!(ids, ["c-1"]);
        // Saving again replaces the file whole.
        save(&dir, &Registry::default()).unwrap();
        assert!(load(&dir, t(50)).unwrap().registry.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_file_is_no_silences() {
        let dir = temp("none");
        let loaded = load(&dir, t(0)).unwrap();
        assert!(loaded.registry.is_empty() && loaded.set_aside.is_none());
    }

    #[test]
    fn a_corrupt_file_is_set_aside_and_a_bad_entry_skipped() {
        let dir = temp("corrupt");
        state_dir::create_dir(&dir).unwrap();
        std::fs::write(path(&dir), "{\"local\": [ {\"id\": \"l-1\"").unwrap();
        let loaded = load(&dir, t(0)).unwrap();
        let (aside, reason) = loaded.set_aside.expect("set aside");
        assert_eq!(aside, dir.join("silences.json.corrupt"));
        assert!(reason.contains("EOF"), "{reason}");
        assert!(aside.exists() && !path(&dir).exists());
        assert!(loaded.registry.is_empty());

        // One entry with a broken glob costs that entry only.
        let mut bad = silence("l-bad", "[", None, 0, 100);
        bad.reason = "typo".into();
        let text = serde_json::json!({
            "local": [bad, silence("l-good", "Eth1-1", None, 0, 100)],
        });
        std::fs::write(path(&dir), text.to_string()).unwrap();
        let loaded = load(&dir, t(1)).unwrap();
        assert_eq!(loaded.skipped.len(), 1);
        assert!(loaded.skipped[0].to_string().contains("l-bad"));
        let ids: Vec<&str> = loaded.registry.all().map(Active::id).collect();
        assert_eq!(ids, ["l-good"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_symlink_in_place_of_the_file_is_refused() {
        let dir = temp("link");
        state_dir::create_dir(&dir).unwrap();
        let target = dir.join("elsewhere");
        std::fs::write(&target, "{}").unwrap();
        std::os::unix::fs::symlink(&target, path(&dir)).unwrap();
        let error = load(&dir, t(0)).unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
