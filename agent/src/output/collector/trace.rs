//! Trace requests the collector sends on the agent's connection: each is
//! answered on a thread of its own from the configured backend, so a slow
//! trace never holds up events or acks.

use super::session::Session;
use crate::wire::{TraceResult, TraceResultTag};
use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;

/// Traces answered at once for the collector.
const MAX_TRACES: usize = 4;

impl Session<'_> {
    /// Answers a trace request on a thread of its own, so a slow trace never
    /// holds up events or acks; the answer is sent when it is ready. At most
    /// [`MAX_TRACES`] run at once, so a flood of requests cannot flood the
    /// switch.
    pub(super) fn trace(&self, id: u64, query: serde_json::Value) {
        let busy = Arc::clone(&self.traces);
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_TRACES {
            busy.fetch_sub(1, Ordering::SeqCst);
            let _ = self.trace_tx.send(TraceResult {
                kind: TraceResultTag::TraceResult,
                id,
                result: serde_json::json!({
                    "error": format!("this agent is already running {MAX_TRACES} traces; try again")
                }),
            });
            return;
        }
        let tx = self.trace_tx.clone();
        let waker = self.shared.waker.try_clone();
        let running = Arc::clone(&busy);
        let new_backend = Arc::clone(&self.shared.new_backend);
        let spawned = thread::Builder::new()
            .name("collector-trace".into())
            .spawn(move || {
                let result = answer_trace(new_backend().as_mut(), query);
                running.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(TraceResult {
                    kind: TraceResultTag::TraceResult,
                    id,
                    result,
                });
                if let Ok(waker) = waker {
                    let _ = (&waker).write(&[1]);
                }
            });
        if let Err(error) = spawned {
            busy.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(%error, id, "Cannot start a trace thread.");
            let _ = self.trace_tx.send(TraceResult {
                kind: TraceResultTag::TraceResult,
                id,
                result: serde_json::json!({ "error": format!("cannot start a trace: {error}") }),
            });
        }
    }
}

/// Keys only a `paths` query has; a query with none of them is one flow.
const PATHS_KEYS: [&str; 4] = ["sport_range", "samples", "dport_range", "per_flow"];

/// The answer to a collector's `trace_request`: `query` is a
/// [`FlowQuery`](crate::trace::FlowQuery), answered with a trace, or a
/// [`PathsQuery`](crate::trace::PathsQuery) (told apart by its
/// `sport_range`, `samples`, `dport_range` or `per_flow`), answered with
/// the spread over the route's members; a failure is `{"error": "..."}`.
fn answer_trace(
    backend: &mut dyn crate::trace::Backend,
    query: serde_json::Value,
) -> serde_json::Value {
    let error = |e: &dyn fmt::Display| serde_json::json!({ "error": e.to_string() });
    let is_paths = query
        .as_object()
        .is_some_and(|o| PATHS_KEYS.iter().any(|k| o.contains_key(*k)));
    if is_paths {
        match serde_json::from_value::<crate::trace::PathsQuery>(query) {
            Ok(q) => match backend.paths(&q) {
                Ok(paths) => serde_json::to_value(paths).unwrap_or_else(|e| error(&e)),
                Err(e) => error(&e),
            },
            Err(e) => error(&format!("unreadable paths query: {e}")),
        }
    } else {
        match serde_json::from_value::<crate::trace::FlowQuery>(query) {
            Ok(q) => match backend.trace(&q) {
                Ok(trace) => serde_json::to_value(trace).unwrap_or_else(|e| error(&e)),
                Err(e) => error(&e),
            },
            Err(e) => error(&format!("unreadable trace query: {e}")),
        }
    }
}
