//! Connectivity: a matrix of sources × destinations × flows, each cell a walk, with identical per-switch questions asked once.
