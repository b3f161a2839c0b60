//! hopwatch-collector: the head-end that keeps the fleet's history. Agents
//! stream events over TCP (or TLS); one writer commits them to SQLite in
//! batches and acknowledges each only once it is durable; an HTTP API and
//! shell commands answer what went down, what came back, how long each link
//! was down and which alerts fire.
//!
//! Everything but argument parsing lives here, so tests run the collector
//! through [`Collector::run`] on listeners of their own.

pub mod alerting;
pub mod api;
pub mod auth;
pub mod config;
pub mod fabric;
pub mod forward;
pub mod http;
pub mod ingest;
pub mod log;
pub mod metrics;
pub mod ratelimit;
pub mod server;
pub mod shell;
pub mod silences;
pub mod store;
pub mod timeline;
pub mod tls;

pub use server::{Collector, CollectorError};
