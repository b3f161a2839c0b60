//! The NX-API counter source: NX-OS's hardware counters and link states.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum NxapiError {
    #[error("NX-API socket {path}: {source}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
