//! The vocabulary the agent and the collector share: the events, the
//! protocol between them, interface globs, the syslog encoder and sender,
//! config diagnostics and sizes, silences, and small text helpers.
//!
//! It lives in its own crate so the collector links this and nothing else of
//! the agent: no netlink, no NX-API client, no trace backends. What goes here
//! must be needed by both binaries.

pub mod backoff;
pub mod diag;
pub mod event;
pub mod ifname;
pub mod matcher;
pub mod secret;
pub mod silence;
pub mod size;
pub mod syslog;
pub mod text;
pub mod trace;
pub mod wire;

pub use secret::Secret;
