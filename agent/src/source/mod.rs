//! Counter sources: where a tick's interface counters come from. A source is
//! one method, [`CounterSource::sample`]; link state arrives separately (see
//! [`crate::link`]) because the kernel pushes it rather than being polled.

pub mod procfs;

use crate::metric::COUNTER_COLUMNS;
use thiserror::Error;

/// One interface's counters at one tick, in `/proc/net/dev` column order
/// (index with [`crate::metric::Metric::column`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRow {
    pub name: String,
    pub counters: [u64; COUNTER_COLUMNS],
}

/// Every interface the source saw at one tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub rows: Vec<CounterRow>,
    /// Lines the source could not read; the rest of the snapshot is good.
    pub skipped: Vec<String>,
}

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not in /proc/net/dev format: {reason}")]
    Format { path: String, reason: String },
}

/// Something that yields a snapshot of every interface's counters.
pub trait CounterSource: Send {
    /// A short name for logs and `hopwatch status` (`procfs`, `nxapi`).
    fn name(&self) -> &'static str;

    /// Reads the counters once into a snapshot the caller keeps between
    /// ticks, so a steady set of interfaces costs no allocation. An error
    /// loses this tick only.
    fn sample_into(&mut self, snapshot: &mut Snapshot) -> Result<(), SourceError>;

    /// Reads the counters once into a new snapshot.
    fn sample(&mut self) -> Result<Snapshot, SourceError> {
        let mut snapshot = Snapshot::default();
        self.sample_into(&mut snapshot)?;
        Ok(snapshot)
    }
}
