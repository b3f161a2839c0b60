//! A reload's change of outputs, off the agent's loop: the old outputs are
//! closed and waited for on a thread of their own (the new collector output
//! may open the spool only once the old one let go of it), while events
//! stamped meanwhile wait here for the new outputs, and so do status
//! requests and a heartbeat that are about the outputs: they are answered
//! as soon as the new outputs run, as they were when a reload held the
//! loop.

use crate::control::StatusRequest;
use crate::event::Event;
use crate::output::OutputHandle;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

pub(super) struct Handover {
    /// Closed once every old output has finished or `grace` ran out.
    pub done: oneshot::Receiver<()>,
    /// Events for the new outputs, in order.
    pub held: Vec<Arc<Event>>,
    /// The seq the new collector output expects first.
    pub first_seq: u64,
    /// Status requests to answer once the new outputs run.
    pub status: Vec<StatusRequest>,
    /// Whether a heartbeat came due meanwhile.
    pub heartbeat: bool,
}

impl Handover {
    /// Closes `old` together, bounded by `grace` in all.
    pub(super) fn start(old: Vec<OutputHandle>, grace: Duration, first_seq: u64) -> Handover {
        let (finished, done) = oneshot::channel();
        // Shared, so the outputs are still at hand when no thread comes.
        let closing = Arc::new(Mutex::new(old));
        let outputs = Arc::clone(&closing);
        let spawned = std::thread::Builder::new()
            .name("handover".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                let old = std::mem::take(&mut *outputs.lock().expect("handover poisoned"));
                OutputHandle::close_all(old, grace);
                let _ = finished.send(());
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "No thread for closing the old outputs; closing them on the loop.");
            let old = std::mem::take(&mut *closing.lock().expect("handover poisoned"));
            OutputHandle::close_all(old, grace);
        }
        Handover {
            done,
            held: Vec::new(),
            first_seq,
            status: Vec::new(),
            heartbeat: false,
        }
    }
}
