//! The sampler thread: reads the counter source off the agent's loop, so a
//! slow NX-API poll (up to its 1 to 10 s timeout) never holds up signals,
//! status requests or link updates. The source and the reused snapshot
//! travel to the thread with each request and come back with the answer,
//! so the loop owns them again between samples and nothing is locked.
//!
//! The thread also runs errands: other NX-API requests (the DME question
//! of why a port went down). Queued behind and before the samples on the
//! one thread, they are never in flight together with a counter poll.

use crate::source::{CounterSource, Snapshot, SourceError};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// One finished sample: the source and snapshot handed back, and how the
/// read went.
pub(super) struct Sample {
    pub source: Box<dyn CounterSource>,
    pub snapshot: Snapshot,
    pub result: Result<(), SourceError>,
    /// When the tick that asked for it arrived.
    pub tick: Instant,
    /// How long the source took to read, which paces the next polls.
    pub poll: Duration,
}

struct Job {
    source: Box<dyn CounterSource>,
    snapshot: Snapshot,
    tick: Instant,
    reply: oneshot::Sender<Sample>,
}

/// What the thread does next: a sample, or an errand run in turn.
enum Work {
    Sample(Job),
    Errand(Box<dyn FnOnce() + Send>),
}

/// The loop's end of the sampler thread, which lives as long as this does.
pub(super) struct Sampler {
    jobs: mpsc::Sender<Work>,
}

impl Sampler {
    /// Starts the thread; fails when the OS refuses one.
    pub(super) fn start() -> std::io::Result<Sampler> {
        let (jobs, queue) = mpsc::channel::<Work>();
        thread::Builder::new()
            .name("sampler".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                for work in queue {
                    let mut job = match work {
                        Work::Sample(job) => job,
                        Work::Errand(errand) => {
                            errand();
                            continue;
                        }
                    };
                    let started = Instant::now();
                    let result = job.source.sample_into(&mut job.snapshot);
                    let _ = job.reply.send(Sample {
                        source: job.source,
                        snapshot: job.snapshot,
                        result,
                        tick: job.tick,
                        poll: started.elapsed(),
                    });
                }
            })?;
        Ok(Sampler { jobs })
    }

    /// Hands `source` to the thread for one sample into `snapshot`. The
    /// answer comes on the returned channel; a closed channel means the
    /// thread is gone, and the source with it.
    pub(super) fn sample(
        &self,
        source: Box<dyn CounterSource>,
        snapshot: Snapshot,
        tick: Instant,
    ) -> oneshot::Receiver<Sample> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Work::Sample(Job {
            source,
            snapshot,
            tick,
            reply,
        }));
        answer
    }

    /// Runs `errand` on the thread after what is queued; false when the
    /// thread is gone, and the errand with it.
    pub(super) fn errand(&self, errand: impl FnOnce() + Send + 'static) -> bool {
        self.jobs.send(Work::Errand(Box::new(errand))).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::procfs::ProcfsSource;

    #[tokio::test(flavor = "current_thread")]
    async fn a_sample_comes_back_with_its_source() {
        let sampler = Sampler::start().unwrap();
        let dir = std::env::temp_dir().join(format!("hopwatch-sampler-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("net")).unwrap();
        std::fs::write(
            dir.join("net/dev"),
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n  \
             eth0: 100 2 0 0 0 0 0 0 300 4 0 0 0 0 0 0\n",
        )
        .unwrap();
        let tick = Instant::now();
        let sample = sampler
            .sample(Box::new(ProcfsSource::new(&dir)), Snapshot::default(), tick)
            .await
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        sample.result.unwrap();
        assert_eq!(sample.tick, tick);
        assert!(sample.poll <= tick.elapsed());
        assert_eq!(sample.source.name(), "procfs");
        assert_eq!(sample.snapshot.rows.len(), 1);
        assert_eq!(sample.snapshot.rows[0].name, "eth0");
    }

    /// A source that notes which thread read it.
    struct Noting(std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>);

    impl CounterSource for Noting {
        fn name(&self) -> &'static str {
            "noting"
        }

        fn sample_into(&mut self, _: &mut Snapshot) -> Result<(), SourceError> {
            self.0
                .lock()
                .unwrap()
                .push(if thread::current().name() == Some("sampler") {
                    "sample on the sampler thread"
                } else {
                    "sample elsewhere"
                });
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn errands_run_in_turn_with_samples() {
        let sampler = Sampler::start().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sample = sampler.sample(
            Box::new(Noting(std::sync::Arc::clone(&log))),
            Snapshot::default(),
            Instant::now(),
        );
        let (tx, rx) = oneshot::channel();
        let seen = std::sync::Arc::clone(&log);
        assert!(sampler.errand(move || {
            // The sample queued first is done: the two never overlap.
            let before = seen.lock().unwrap().clone();
            let _ = tx.send((before, thread::current().name().map(str::to_string)));
        }));
        let (before, thread) = rx.await.unwrap();
        assert_eq!(before, ["sample on the sampler thread"]);
        assert_eq!(thread.as_deref(), Some("sampler"));
        sample.await.unwrap().result.unwrap();
    }
}
