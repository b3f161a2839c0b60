//! Connectivity: a matrix of sources × destinations × flows, each cell a
//! walk, with identical per-switch questions asked once.
//!
//! Entry point:
//! `pub async fn matrix<A: Asker, D: Directory>(asker: &A, directory: &D, query: &ConnectivityQuery, bounds: &TraceSettings) -> Result<Connectivity, WalkError>`
