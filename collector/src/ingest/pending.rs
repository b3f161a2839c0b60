//! The connections that have not said hello yet, counted apart from the
//! agents' connections so that sockets which never speak cannot take an
//! agent's place.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The connections that have not said hello yet, oldest first. When
/// `max_pending` of them wait, a new one sheds the oldest: a flood of silent
/// sockets then churns through the queue, each gone within moments, while
/// an agent, which says hello as soon as it connects, gets through. (Refusing
/// new connections instead would let a few silent sockets keep every agent
/// out until the hello deadline.)
pub(super) struct Pending {
    max: usize,
    // Held for an insert or a removal, never across an await.
    queue: Mutex<(u64, BTreeMap<u64, oneshot::Sender<()>>)>,
}

impl Pending {
    pub(super) fn new(max: usize) -> Pending {
        Pending {
            max,
            queue: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Enters a new connection, shedding the oldest when full.
    pub(super) fn admit(self: &Arc<Self>) -> Waiting {
        let (tx, shed) = oneshot::channel();
        let mut queue = self.queue.lock().expect("pending queue poisoned");
        while queue.1.len() >= self.max {
            match queue.1.pop_first() {
                Some((_, oldest)) => {
                    let _ = oldest.send(());
                }
                None => break,
            }
        }
        let id = queue.0;
        queue.0 += 1;
        queue.1.insert(id, tx);
        Waiting {
            pending: Arc::clone(self),
            id,
            shed,
        }
    }
}

/// A connection's place among those waiting to say hello; leaves the queue
/// when dropped.
pub(super) struct Waiting {
    pending: Arc<Pending>,
    id: u64,
    /// Fires when a newer connection shed this one.
    pub(super) shed: oneshot::Receiver<()>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.pending
            .queue
            .lock()
            .expect("pending queue poisoned")
            .1
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_hello_queue_sheds_its_oldest() {
        let pending = Arc::new(Pending::new(2));
        let mut first = pending.admit();
        let mut second = pending.admit();
        assert!(first.shed.try_recv().is_err());
        let _third = pending.admit();
        assert!(first.shed.try_recv().is_ok(), "the oldest is shed");
        assert!(second.shed.try_recv().is_err());
        drop(second);
        let _fourth = pending.admit();
        assert_eq!(pending.queue.lock().unwrap().1.len(), 2);
    }
}
