//! The collector output's spool writer: the output queue's worker. It takes
//! events off the queue, appends them to the [`Spool`] at once, syncs it at
//! most [`SYNC_INTERVAL`] later, keeps what the disk cannot take in memory
//! (on record, see [`Spool::note_emitted`]), and turns every event it must
//! drop into a `loss` report, each lost seq once.

use super::{LOCK_PATIENCE, LOCK_RETRY, OnLoss, SYNC_INTERVAL, Shared};
use crate::control::format_size;
use crate::event::{Body, Event, Loss};
use crate::output::Inbox;
use crate::output::spool::{self, Dropped, LossReport, Spool, SpoolError};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Events kept in memory while the spool cannot be written (a full disk);
/// beyond this the oldest go, and a `loss` event says which.
const MEMORY_EVENTS: usize = 10_000;
/// How often a failing spool is tried again.
const DISK_RETRY: Duration = Duration::from_secs(1);
/// How long a full spool waits for the acks of events in flight before it
/// sheds them anyway (a healthy collector acks within milliseconds), and
/// how often it looks meanwhile.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(2);
const FULL_RETRY: Duration = Duration::from_millis(20);
/// How long a stopping agent waits for acks to make room in a full spool.
const EXIT_ROOM_WAIT: Duration = Duration::from_secs(1);
/// The spool writer: the output queue's worker.
pub(super) struct Writer {
    shared: Arc<Shared>,
    on_loss: OnLoss,
    /// Events taken off the queue and not yet in the spool.
    pending: VecDeque<Arc<Event>>,
    /// The seq the next event should carry.
    next_seq: u64,
    dirty_since: Option<Instant>,
    /// When a failed spool may be tried again.
    retry_at: Option<Instant>,
    locked_since: Option<Instant>,
    /// Whether the spool is open.
    open: bool,
    /// Since when a full spool has been waiting for acks of events in flight.
    full_since: Option<Instant>,
    /// Losses told to the agent and not yet seen back as events: one that
    /// fell out of the queue before it reached the spool is told again.
    announced: VecDeque<Loss>,
}

impl Writer {
    pub(super) fn new(shared: Arc<Shared>, on_loss: OnLoss, first_seq: u64) -> Writer {
        Writer {
            shared,
            on_loss,
            pending: VecDeque::new(),
            next_seq: first_seq,
            dirty_since: None,
            retry_at: None,
            locked_since: None,
            open: false,
            full_since: None,
            announced: VecDeque::new(),
        }
    }

    /// Runs until the output's queue is closed and everything it held is
    /// in the spool (or reported lost).
    pub(super) fn run(&mut self, inbox: &Inbox) {
        let mut batch = Vec::new();
        // Open the spool at once, so what earlier boots left goes out
        // before this boot has anything to say.
        self.store(Instant::now());
        loop {
            let now = Instant::now();
            let sync_in = self
                .dirty_since
                .map(|t| (t + SYNC_INTERVAL).saturating_duration_since(now));
            let retry_in = self
                .retry_at
                .filter(|_| !self.pending.is_empty() || !self.open)
                .map(|t| t.saturating_duration_since(now));
            let timeout = match (sync_in, retry_in) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let open = inbox.recv(&mut batch, timeout);
            self.take(&mut batch);
            let now = Instant::now();
            if !open {
                self.last_store(now);
            } else if self.retry_at.is_none_or(|t| t <= now) {
                self.store(now);
            } else {
                self.note_pending();
            }
            if !open || self.dirty_since.is_some_and(|t| now >= t + SYNC_INTERVAL) {
                self.sync();
            }
            if !open {
                if !self.pending.is_empty() {
                    tracing::warn!(
                        events = self.pending.len(),
                        "Exiting with events the spool could not take; the next start reports them lost."
                    );
                }
                return;
            }
        }
    }

    /// The store at exit: the agent no longer turns losses into events, so
    /// nothing is shed; acks of events in flight may still make room for a
    /// moment, and what does not fit stays on record for the next start.
    fn last_store(&mut self, now: Instant) {
        if let Some(spool) = self.shared.spool.lock().expect("spool poisoned").as_mut() {
            spool.stop_shedding();
        }
        let deadline = now + EXIT_ROOM_WAIT;
        self.store(now);
        while !self.pending.is_empty() {
            let guard = self.shared.spool.lock().expect("spool poisoned");
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !guard.as_ref().is_some_and(Spool::outstanding) {
                return;
            }
            // Checked under the lock the connection thread applies acks
            // under, so the next ack (or the session's end) wakes this.
            drop(
                self.shared
                    .acked
                    .wait_timeout(guard, left)
                    .expect("spool poisoned"),
            );
            self.store(Instant::now());
        }
    }

    /// Queues events for the spool, noticing any that never arrived.
    fn take(&mut self, batch: &mut Vec<Arc<Event>>) {
        for event in batch.drain(..) {
            if event.seq > self.next_seq {
                let (first, last) = (self.next_seq, event.seq - 1);
                self.account(
                    Dropped::range(&event.boot, first, last),
                    "the collector output's queue overflowed",
                );
            }
            self.next_seq = self.next_seq.max(event.seq + 1);
            if let Body::Loss(loss) = &event.body {
                self.carry(loss);
            }
            self.pending.push_back(event);
        }
        if self.pending.len() > MEMORY_EVENTS {
            let excess = self.pending.len() - MEMORY_EVENTS;
            let gone: Vec<Arc<Event>> = self.pending.drain(..excess).collect();
            self.shared
                .dropped
                .fetch_add(gone.len() as u64, Ordering::Relaxed);
            let reason = format!(
                "the spool could not be written and more than {MEMORY_EVENTS} events waited in memory"
            );
            for d in spool::dropped_events(&gone) {
                self.account(d, &reason);
            }
        }
        self.shared
            .in_memory
            .store(self.pending.len() as u64, Ordering::Relaxed);
    }

    /// Notes that a loss this writer announced is now an event.
    fn carry(&mut self, loss: &Loss) {
        let Some(i) = self.announced.iter().position(|a| a == loss) else {
            return;
        };
        // Losses announced before this one and never seen fell out of the
        // queue themselves (their seqs are reported as a queue overflow):
        // announce them again.
        let missed: Vec<Loss> = self.announced.drain(..i).collect();
        self.announced.pop_front();
        for loss in missed {
            self.announce(loss);
        }
    }

    /// Reports `dropped`, with what any loss event among the dropped
    /// events had said folded in.
    fn account(&mut self, dropped: Dropped, why: &str) {
        for report in dropped.reports() {
            self.report(report, why);
        }
    }

    fn report(&mut self, dropped: LossReport, why: &str) {
        let of_boot = if dropped.boot == self.shared.boot {
            String::new()
        } else {
            format!(" of the earlier boot {}", dropped.boot)
        };
        let range = if dropped.first_seq == dropped.last_seq {
            format!("seq {}", dropped.first_seq)
        } else {
            format!("seq {} to {}", dropped.first_seq, dropped.last_seq)
        };
        let carried = match dropped.carried {
            0 => String::new(),
            n if n == dropped.count => {
                " (an earlier loss event named them and was dropped before delivery)".to_string()
            }
            n => format!(
                " ({n} of them named by an earlier loss event that was dropped before delivery)"
            ),
        };
        let message = format!(
            "{} events ({range}{of_boot}) were dropped before the collector acknowledged them: {why}{carried}",
            dropped.count
        );
        tracing::warn!(
            count = dropped.count,
            first_seq = dropped.first_seq,
            last_seq = dropped.last_seq,
            boot = %dropped.boot,
            "{message}"
        );
        self.announce(Loss {
            count: dropped.count,
            first_seq: dropped.first_seq,
            last_seq: dropped.last_seq,
            lost_boot: Some(dropped.boot),
            message,
        });
    }

    fn announce(&mut self, loss: Loss) {
        (self.on_loss)(loss.clone());
        self.announced.push_back(loss);
    }

    /// Opens the spool if need be and moves pending events into it.
    fn store(&mut self, now: Instant) {
        let shared = Arc::clone(&self.shared);
        let mut guard = shared.spool.lock().expect("spool poisoned");
        if guard.is_none() {
            let max = self.shared.settings.spool_max;
            match Spool::open(&self.shared.dir, &self.shared.boot, max) {
                Ok((spool, recovery)) => {
                    if !recovery.boots.is_empty() {
                        let events: u64 = recovery.boots.iter().map(|b| b.1).sum();
                        tracing::info!(
                            boots = recovery.boots.len(),
                            events,
                            "The spool holds events of earlier boots; they go to the collector first."
                        );
                    }
                    self.shared.publish(&spool);
                    *guard = Some(spool);
                    self.open = true;
                    for d in recovery.unwritten {
                        self.account(
                            d,
                            "the agent stopped while they waited in memory for the spool (a full or failing disk)",
                        );
                    }
                    self.locked_since = None;
                    self.shared.wake();
                }
                Err(error @ SpoolError::Locked { .. }) => {
                    // The previous output of a reload lets go within moments;
                    // only a lock held for long is worth an operator's eye.
                    let since = *self.locked_since.get_or_insert(now);
                    if now.duration_since(since) >= LOCK_PATIENCE {
                        self.shared.disk_error(&error);
                        self.retry_at = Some(now + DISK_RETRY);
                    } else {
                        self.retry_at = Some(now + LOCK_RETRY);
                    }
                    return;
                }
                Err(error) => {
                    self.shared.disk_error(&error);
                    self.retry_at = Some(now + DISK_RETRY);
                    return;
                }
            }
        }
        if self.pending.is_empty() {
            self.retry_at = None;
            return;
        }
        let spool = guard.as_mut().expect("opened above");
        let mut dropped = Vec::new();
        let spare = self
            .full_since
            .is_none_or(|since| now.duration_since(since) < IN_FLIGHT_WAIT);
        let mut result = spool.append(&mut self.pending, &mut dropped, spare);
        if let Some(last) = self.pending.back() {
            // What waits in memory is on record, so a kill cannot lose it
            // without the next start saying so.
            let noted = spool.note_emitted(last.seq);
            result = result.and(noted);
        }
        self.shared.publish(spool);
        drop(guard);
        self.shared
            .in_memory
            .store(self.pending.len() as u64, Ordering::Relaxed);
        for d in dropped {
            self.shared.dropped.fetch_add(d.count, Ordering::Relaxed);
            let why = format!(
                "the spool was full (spool_max {})",
                format_size(self.shared.settings.spool_max)
            );
            self.account(d, &why);
        }
        self.dirty_since.get_or_insert(now);
        self.shared.wake();
        match result {
            Ok(()) if !self.pending.is_empty() => {
                // Full, with the oldest events in flight: their acks make room.
                self.full_since.get_or_insert(now);
                self.retry_at = Some(now + FULL_RETRY);
                self.shared.disk_ok();
            }
            Ok(()) => {
                self.full_since = None;
                self.retry_at = None;
                self.shared.disk_ok();
            }
            Err(error) => {
                self.shared.disk_error(&error);
                self.retry_at = Some(now + DISK_RETRY);
            }
        }
    }

    /// Puts the seqs waiting in memory on record while the spool is not
    /// retried yet (see [`Spool::note_emitted`]).
    fn note_pending(&mut self) {
        let Some(last) = self.pending.back().map(|e| e.seq) else {
            return;
        };
        if let Some(spool) = self.shared.spool.lock().expect("spool poisoned").as_mut()
            && let Err(error) = spool.note_emitted(last)
        {
            self.shared.disk_error(&error);
        }
    }

    /// Flushes the spool to the device, outside the spool's lock.
    fn sync(&mut self) {
        self.dirty_since = None;
        let job = match self.shared.spool.lock().expect("spool poisoned").as_mut() {
            Some(spool) => spool.sync_job(),
            None => None,
        };
        if let Some(job) = job
            && let Err(error) = job.run()
        {
            self.shared.disk_error(&error);
            if let Some(spool) = self.shared.spool.lock().expect("spool poisoned").as_mut() {
                spool.mark_unsynced();
            }
            self.dirty_since = Some(Instant::now());
        }
    }
}
