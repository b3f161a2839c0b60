//! Counter sources: where a tick's interface counters come from. A source is
//! one method, [`CounterSource::sample_into`]. On Linux the link state arrives
//! separately (see [`crate::link`]) because the kernel pushes it, and so it
//! does on NX-OS under the `nxapi` source; a source that reads the link with
//! the counters (NX-API's full `show interface`, for `hopwatch counters`)
//! brings it in [`CounterRow::link`].

pub mod dme;
pub mod nxapi;
pub mod nxos_auto;
pub mod procfs;

use crate::link::LinkState;
use crate::metric::{COUNTER_COLUMNS, Columns};
use thiserror::Error;

/// One interface's counters at one tick, in counter column order (index with
/// [`crate::metric::Metric::column`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRow {
    pub name: String,
    pub counters: [u64; COUNTER_COLUMNS],
    /// The columns the source filled; the others hold zero and mean nothing.
    pub columns: Columns,
    /// The link as the source saw it, for sources that report it.
    pub link: Option<SourceLink>,
}

/// A link state a source reported with the counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceLink {
    pub state: LinkState,
    /// Why the link is down, in the platform's words (`Link not connected`).
    pub reason: Option<String>,
}

impl CounterRow {
    /// A row with every `/proc/net/dev` column, as the procfs source gives.
    pub fn proc_net_dev(name: impl Into<String>, counters: [u64; COUNTER_COLUMNS]) -> CounterRow {
        CounterRow {
            name: name.into(),
            counters,
            columns: Columns::PROC_NET_DEV,
            link: None,
        }
    }
}

/// Every interface the source saw at one tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub rows: Vec<CounterRow>,
    /// Lines the source could not read; the rest of the snapshot is good.
    pub skipped: Vec<String>,
    /// A read that failed while the others answered: the rows are good, and
    /// the columns that read would have filled are unavailable this tick.
    pub partial: Option<String>,
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
    #[error(transparent)]
    Nxapi(#[from] crate::nxapi::NxapiError),
    #[error(
        "{0}; this switch's NX-API does not serve the REST API (the DME) on its local socket: set [agent] source = \"nxapi\" or \"auto\""
    )]
    DmeAbsent(#[source] crate::nxapi::NxapiError),
    #[error(
        "cannot yet choose between the dme and nxapi sources ({0}); asking NX-API again next tick"
    )]
    Undecided(#[source] crate::nxapi::NxapiError),
}

/// Something that yields a snapshot of every interface's counters.
pub trait CounterSource: Send {
    /// A short name for logs and `hopwatch status` (`procfs`, `nxapi`).
    fn name(&self) -> &'static str;

    /// Whether rows carry the link state ([`CounterRow::link`]); the agent
    /// then takes link changes from the source instead of the kernel.
    fn reports_links(&self) -> bool {
        false
    }

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

/// A row's counters and the columns filled, from `(metric, value)` pairs as
/// a source maps its fields: a `None` leaves the column unfilled
/// (unavailable, never zero), and a later pair for a column overrides an
/// earlier one.
pub(crate) fn counters_from(
    fields: impl IntoIterator<Item = (crate::metric::Metric, Option<u64>)>,
) -> ([u64; COUNTER_COLUMNS], Columns) {
    let mut counters = [0; COUNTER_COLUMNS];
    let mut columns = Columns::NONE;
    for (metric, value) in fields {
        if let Some(value) = value {
            counters[metric as usize] = value;
            columns = columns.with(metric);
        }
    }
    (counters, columns)
}
