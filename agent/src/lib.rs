//! hopwatch: an on-switch agent that samples interface counters every tick,
//! evaluates threshold-over-window rules and reports alerts and link changes.
//!
//! The library holds everything but argument parsing, so tests drive the
//! agent through [`agent::run`]. The events, the protocol and the syslog
//! sender come from the `hopwatch-wire` crate, which the collector shares.

pub use hopwatch_wire::{event, matcher, text, wire};

pub mod addresses;
pub mod agent;
pub mod config;
pub mod control;
pub mod counters;
pub mod hash;
pub mod link;
pub mod metric;
pub mod netlink;
pub mod nxapi;
pub mod output;
pub mod rule;
pub mod source;
pub mod state_dir;
pub mod timer;
pub mod trace;
