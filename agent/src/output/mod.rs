//! Outputs: where events go. Each output runs on its own thread behind a
//! bounded queue, so a slow or dead output never stalls sampling or the other
//! outputs. A failed send is retried as [`backoff`] says; when the
//! queue overflows meanwhile, the oldest events are dropped and counted.
//!
//! Most outputs deliver one event at a time through [`Output`]. The collector
//! output spools to disk and pipelines events ahead of their
//! acknowledgements, so it runs its own loop on the queue's [`Inbox`]
//! ([`OutputHandle::spawn_worker`]).

pub use hopwatch_wire::backoff;
pub mod collector;
pub mod spool;
pub mod stdout;
pub mod syslog;

use crate::event::Event;
use backoff::{Backoff, seed};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum OutputError {
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("write to {target} failed: {reason}")]
    Write { target: String, reason: String },
}

/// Something that delivers events. Implementations may block; the runner
/// gives each output its own thread.
pub trait Output: Send {
    /// A short name for logs and `hopwatch status` (`stdout`, `syslog`).
    fn name(&self) -> &str;

    /// Whether this output wants events of this type at all.
    fn accepts(&self, _event: &Event) -> bool {
        true
    }

    /// Delivers one event. After an error the runner calls `send` again with
    /// the same event after a backoff; the output reconnects as needed.
    fn send(&mut self, event: &Event) -> Result<(), OutputError>;

    /// Pushes buffered events out; called when the queue runs empty and at
    /// shutdown.
    fn flush(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

/// Counters per output, read by `hopwatch status`.
#[derive(Debug, Default)]
pub struct OutputStats {
    pub sent: AtomicU64,
    pub failures: AtomicU64,
    pub dropped: AtomicU64,
    pub queued: AtomicU64,
    /// The last error, cleared by the next success.
    pub last_error: Mutex<Option<String>>,
}

/// Bounds the delay before an event is sent again after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

struct Queue {
    events: VecDeque<Arc<Event>>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    capacity: usize,
    stats: Arc<OutputStats>,
}

/// The sampler's end of one output: enqueueing never blocks.
pub struct OutputHandle {
    name: String,
    shared: Arc<Shared>,
    thread: Option<Worker>,
}

impl OutputHandle {
    /// Starts `output` on its own thread with a queue of `capacity` events;
    /// fails when the OS refuses the thread (a pids limit, say).
    pub fn spawn(output: Box<dyn Output>, capacity: usize) -> std::io::Result<OutputHandle> {
        let name = output.name().to_string();
        OutputHandle::spawn_worker(&name, capacity, move |inbox| deliver(output, &inbox.shared))
    }

    /// Starts `worker` on its own thread, taking events from a queue of
    /// `capacity` through its [`Inbox`]; [`close`](Self::close) waits for
    /// it to return. Fails when the OS refuses the thread.
    pub fn spawn_worker(
        name: &str,
        capacity: usize,
        worker: impl FnOnce(Inbox) + Send + 'static,
    ) -> std::io::Result<OutputHandle> {
        OutputHandle::spawn_worker_counting(name, capacity, Arc::default(), worker)
    }

    /// [`spawn_worker`](Self::spawn_worker) with counters made beforehand,
    /// for an output whose other threads count into them too.
    pub fn spawn_worker_counting(
        name: &str,
        capacity: usize,
        stats: Arc<OutputStats>,
        worker: impl FnOnce(Inbox) + Send + 'static,
    ) -> std::io::Result<OutputHandle> {
        let name = name.to_string();
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                events: VecDeque::with_capacity(capacity.min(1024)),
                closed: false,
            }),
            wake: Condvar::new(),
            capacity: capacity.max(1),
            stats,
        });
        let inbox = Inbox {
            shared: Arc::clone(&shared),
        };
        let thread = Worker::spawn(format!("output-{name}"), 256 * 1024, move || worker(inbox))?;
        Ok(OutputHandle {
            name,
            shared,
            thread: Some(thread),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn stats(&self) -> &Arc<OutputStats> {
        &self.shared.stats
    }

    /// Queues an event; when the queue is full the oldest event is dropped
    /// and counted, so the newest news always gets through.
    pub fn enqueue(&self, event: Arc<Event>) {
        let mut queue = self.shared.queue.lock().expect("output queue poisoned");
        if queue.events.len() >= self.shared.capacity {
            queue.events.pop_front();
            self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        queue.events.push_back(event);
        self.shared
            .stats
            .queued
            .store(queue.events.len() as u64, Ordering::Relaxed);
        drop(queue);
        self.shared.wake.notify_one();
    }

    /// Delivers what is queued (giving up on an output that is down once
    /// `grace` has passed) and stops the thread.
    pub fn close(self, grace: Duration) {
        OutputHandle::close_all(vec![self], grace);
    }

    /// Closes every output at once, then waits for them together: `grace`
    /// bounds the whole wait, so outputs that hang cost it once, not once
    /// each.
    pub fn close_all(outputs: Vec<OutputHandle>, grace: Duration) {
        let deadline = Instant::now() + grace;
        for output in &outputs {
            output
                .shared
                .queue
                .lock()
                .expect("output queue poisoned")
                .closed = true;
            output.shared.wake.notify_one();
        }
        for output in outputs {
            output.wait_until(deadline);
        }
    }

    fn wait_until(mut self, deadline: Instant) {
        if let Some(thread) = self.thread.take()
            && !thread.join_within(deadline.saturating_duration_since(Instant::now()))
        {
            let left = self.shared.stats.queued.load(Ordering::Relaxed);
            tracing::warn!(output = %self.name, left, "Output did not drain before exit.");
        }
    }
}

/// A thread whose end can be awaited with a deadline: it drops its end of
/// a channel as it returns, so waiting for it blocks on that channel
/// instead of polling the thread.
pub(crate) struct Worker {
    thread: thread::JoinHandle<()>,
    done: mpsc::Receiver<()>,
}

impl Worker {
    pub(crate) fn spawn(
        name: String,
        stack_size: usize,
        work: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Worker> {
        let (finished, done) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name(name)
            .stack_size(stack_size)
            .spawn(move || {
                let _finished = finished;
                work();
            })?;
        Ok(Worker { thread, done })
    }

    /// Waits up to `grace` for the thread to return and joins it; false
    /// when it is still running (it is then left to finish on its own).
    pub(crate) fn join_within(self, grace: Duration) -> bool {
        match self.done.recv_timeout(grace) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = self.thread.join();
                true
            }
            Err(mpsc::RecvTimeoutError::Timeout) => false,
        }
    }
}

/// The worker thread's end of an output's queue.
pub struct Inbox {
    shared: Arc<Shared>,
}

impl Inbox {
    /// Moves every queued event into `into`, first waiting up to `timeout`
    /// (for ever with `None`) while the queue is empty. Returns false once
    /// the handle is closed: `into` then holds the last events there are.
    pub fn recv(&self, into: &mut Vec<Arc<Event>>, timeout: Option<Duration>) -> bool {
        let mut queue = self.shared.queue.lock().expect("output queue poisoned");
        let idle = |q: &mut Queue| q.events.is_empty() && !q.closed;
        if idle(&mut queue) {
            queue = match timeout {
                Some(timeout) => {
                    self.shared
                        .wake
                        .wait_timeout_while(queue, timeout, idle)
                        .expect("output queue poisoned")
                        .0
                }
                None => self
                    .shared
                    .wake
                    .wait_while(queue, idle)
                    .expect("output queue poisoned"),
            };
        }
        into.extend(queue.events.drain(..));
        self.shared.stats.queued.store(0, Ordering::Relaxed);
        !queue.closed
    }

    pub fn stats(&self) -> &Arc<OutputStats> {
        &self.shared.stats
    }
}

/// The output thread: take the oldest event, send it until it goes through
/// or is pushed out of the queue, flush when idle, stop when closed and empty
/// (or closed and failing).
fn deliver(mut output: Box<dyn Output>, shared: &Shared) {
    let stats = &shared.stats;
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX, seed(output.name()));
    loop {
        let event = {
            let mut queue = shared.queue.lock().expect("output queue poisoned");
            loop {
                if let Some(event) = queue.events.front() {
                    break Arc::clone(event);
                }
                if queue.closed {
                    drop(queue);
                    let _ = output.flush();
                    return;
                }
                drop(queue);
                if let Err(error) = output.flush() {
                    tracing::warn!(output = output.name(), %error, "Output flush failed.");
                }
                queue = shared.queue.lock().expect("output queue poisoned");
                if queue.events.is_empty() && !queue.closed {
                    queue = shared.wake.wait(queue).expect("output queue poisoned");
                }
            }
        };
        if !output.accepts(&event) {
            pop_if_front(shared, &event);
            continue;
        }
        match output.send(&event) {
            Ok(()) => {
                pop_if_front(shared, &event);
                stats.sent.fetch_add(1, Ordering::Relaxed);
                *stats.last_error.lock().expect("stats poisoned") = None;
                backoff.succeeded();
            }
            Err(error) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                let delay = backoff.failed();
                let text = error.to_string();
                let mut last = stats.last_error.lock().expect("stats poisoned");
                if last.as_deref() != Some(text.as_str()) {
                    tracing::warn!(output = output.name(), %error, retry_in = ?delay, "Output send failed.");
                }
                *last = Some(text);
                drop(last);
                let queue = shared.queue.lock().expect("output queue poisoned");
                if queue.closed {
                    return;
                }
                // Sleep for the backoff, waking early only to exit.
                let _ = shared.wake.wait_timeout_while(queue, delay, |q| !q.closed);
            }
        }
    }
}

/// Removes `event` from the front unless overflow already pushed it out.
fn pop_if_front(shared: &Shared, event: &Arc<Event>) {
    let mut queue = shared.queue.lock().expect("output queue poisoned");
    if queue.events.front().is_some_and(|e| Arc::ptr_eq(e, event)) {
        queue.events.pop_front();
    }
    shared
        .stats
        .queued
        .store(queue.events.len() as u64, Ordering::Relaxed);
}

pub(crate) use hopwatch_wire::text::split_host_port;

/// Whether a silence covered this alert change: it then goes to the
/// collector (marked) and to no output a person reads, syslog or stdout.
pub fn silenced(event: &Event) -> bool {
    matches!(&event.body, crate::event::Body::Alert(alert) if alert.silenced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Body, Loss, Sequencer};
    use std::sync::mpsc;
    use std::time::SystemTime;

    struct Flaky {
        fail_first: usize,
        seen: mpsc::Sender<u64>,
    }

    impl Output for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        fn send(&mut self, event: &Event) -> Result<(), OutputError> {
            if self.fail_first > 0 {
                self.fail_first -= 1;
                return Err(OutputError::Write {
                    target: "test".into(),
                    reason: "refused".into(),
                });
            }
            self.seen.send(event.seq).unwrap();
            Ok(())
        }
    }

    fn event(seq: &mut Sequencer) -> Arc<Event> {
        Arc::new(seq.stamp(
            SystemTime::now(),
            Body::Loss(Loss {
                count: 0,
                first_seq: 0,
                last_seq: 0,
                lost_boot: None,
                message: String::new(),
            }),
        ))
    }

    #[test]
    fn retries_until_delivered_in_order() {
        let (tx, rx) = mpsc::channel();
        let handle = OutputHandle::spawn(
            Box::new(Flaky {
                fail_first: 2,
                seen: tx,
            }),
            16,
        )
        .unwrap();
        let mut seq = Sequencer::new("a", "b");
        for _ in 0..3 {
            handle.enqueue(event(&mut seq));
        }
        let got: Vec<u64> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, vec![1, 2, 3]);
        assert_eq!(handle.stats().failures.load(Ordering::Relaxed), 2);
        // The output saw the third event just before the runner counts it.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while handle.stats().sent.load(Ordering::Relaxed) < 3 {
            assert!(std::time::Instant::now() < deadline, "sent never reached 3");
            thread::sleep(Duration::from_millis(1));
        }
        handle.close(Duration::from_secs(1));
    }

    #[test]
    fn overflow_drops_oldest_and_counts() {
        let (tx, rx) = mpsc::channel();
        // Fails long enough for the queue to overflow behind it.
        let handle = OutputHandle::spawn(
            Box::new(Flaky {
                fail_first: 1,
                seen: tx,
            }),
            2,
        )
        .unwrap();
        let mut seq = Sequencer::new("a", "b");
        for _ in 0..5 {
            handle.enqueue(event(&mut seq));
        }
        assert_eq!(handle.stats().dropped.load(Ordering::Relaxed), 3);
        let got: Vec<u64> = (0..2)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, vec![4, 5]);
        handle.close(Duration::from_secs(1));
    }
}
