//! hopwatch: an on-switch agent that samples interface counters every tick,
//! evaluates threshold-over-window rules and reports alerts and link changes.
//!
//! The library holds everything but argument parsing, so tests drive the
//! agent through [`agent::run`] and the collector shares [`event`].

pub mod addresses;
pub mod agent;
pub mod config;
pub mod control;
pub mod counters;
pub mod diag;
pub mod event;
pub mod hash;
pub mod link;
pub mod matcher;
pub mod metric;
pub mod netlink;
pub mod nxapi;
pub mod output;
pub mod rule;
pub mod size;
pub mod source;
pub mod state_dir;
pub mod text;
pub mod timer;
pub mod trace;
pub mod wire;
