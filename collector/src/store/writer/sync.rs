//! The fsync thread: committed batches become durable with one fsync of the
//! WAL, and only then are their events acknowledged and published for
//! forwarding.

use super::{Ack, BootSeqs, Committed, Published, Reply, Spent};
use crate::metrics::Metrics;
use hopwatch_wire::event::Event;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a committed batch owes its connections once it is durable.
pub(super) struct Durable {
    pub(super) acks: Vec<(Reply, BootSeqs, Spent)>,
    pub(super) boots: Vec<(String, String, u64)>,
    pub(super) fresh: Vec<Event>,
}

/// Makes committed batches durable with one fsync of the WAL, then
/// acknowledges them, tells `welcome` about them and publishes their new
/// events on the forwarding channel.
///
/// The store runs with synchronous=NORMAL, so a COMMIT writes the WAL but
/// does not wait for the disk; the acks wait here instead, behind an fsync
/// of the WAL file (fsync flushes the file whatever descriptor it comes
/// through). Everything an ack covers was written to the WAL before the
/// fsync began, so it is on disk when the ack goes out, exactly as with
/// synchronous=FULL, but the writer commits the next batch while the disk
/// works on this one.
pub(super) struct Syncer {
    pub(super) wal: std::fs::File,
    pub(super) committed: Arc<Committed>,
    pub(super) forward: Option<Published>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) broken: Arc<AtomicBool>,
}

impl Syncer {
    pub(super) fn deliver(&mut self, batches: Vec<Durable>) {
        if let Err(error) = self.wal.sync_data() {
            // After a failed fsync the kernel may have dropped the dirty
            // pages: nothing written since the last good one can be trusted
            // to be on disk, so nothing is acknowledged and the collector
            // takes no more until it is restarted (and SQLite recovers).
            tracing::error!(%error, "Syncing the store failed; acknowledging nothing more until a restart.");
            self.broken.store(true, Ordering::SeqCst);
            self.metrics.store.sync_failed(&error);
            let reason = format!("the collector could not sync its store: {error}");
            for batch in batches {
                for (reply, _, _) in batch.acks {
                    let _ = reply.send(Ack::Failed(reason.clone()));
                }
            }
            return;
        }
        self.metrics.syncs.fetch_add(1, Ordering::Relaxed);
        for batch in batches {
            for (agent, boot, seq) in &batch.boots {
                self.committed.set(agent, boot, *seq);
            }
            for (reply, acks, spent) in batch.acks {
                let _ = reply.send(Ack::Stored(acks, spent));
            }
            if let Some(forward) = &self.forward {
                for event in batch.fresh {
                    // Never waits: a forwarder that fell behind (or is gone)
                    // loses this event, counted, rather than the store its
                    // pace.
                    if forward.try_send(event).is_err() {
                        self.metrics.forward_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Closes the channel to forwarding, which then sends what it holds.
    pub(super) fn close(self) {
        drop(self.forward);
    }
}

/// Where committed batches go to become durable.
pub(super) enum Durability {
    /// On the writer's own thread, before it takes the next batch (tests).
    Inline(Syncer),
    /// On a thread of its own, overlapping the writer's next batch.
    Thread {
        to: std::sync::mpsc::Sender<Durable>,
        thread: std::thread::JoinHandle<Syncer>,
    },
    /// Between the two, for the moment of the switch.
    Gone,
}
