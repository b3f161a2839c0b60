//! Trace requests the collector sends on the agent's connection: each is
//! answered on a thread of its own from the configured backend, so a slow
//! trace never holds up events or acks.

use super::session::Session;
use crate::trace::{TraceAnswer, TraceQuery};
use crate::wire::{TraceResult, TraceResultTag};
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
    pub(super) fn trace(&self, id: u64, query: TraceQuery) {
        let busy = Arc::clone(&self.traces);
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_TRACES {
            busy.fetch_sub(1, Ordering::SeqCst);
            self.answer(
                id,
                TraceAnswer::error(format!(
                    "this agent is already running {MAX_TRACES} traces; try again"
                )),
            );
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
            self.answer(
                id,
                TraceAnswer::error(format!("cannot start a trace: {error}")),
            );
        }
    }

    /// Queues the answer to trace request `id` from the session's own thread.
    pub(super) fn answer(&self, id: u64, result: TraceAnswer) {
        let _ = self.trace_tx.send(TraceResult {
            kind: TraceResultTag::TraceResult,
            id,
            result,
        });
    }
}

/// The answer to a collector's `trace_request`, of the query's kind.
fn answer_trace(backend: &mut dyn crate::trace::Backend, query: TraceQuery) -> TraceAnswer {
    let answer = match query {
        TraceQuery::Flow(q) => backend.trace(&q).map(TraceAnswer::Flow),
        TraceQuery::Paths(q) => backend.paths(&q).map(TraceAnswer::Paths),
        TraceQuery::Hop(q) => backend.hop(&q).map(TraceAnswer::Hop),
    };
    answer.unwrap_or_else(TraceAnswer::error)
}
