//! How long an output waits before it tries again after a failure: one
//! policy for every output that retries, the agent's and the collector's
//! syslog forwarding alike, a pure one over explicit instants, so its tests
//! need no clock, kept apart from the code that sleeps on it.
//!
//! The delay doubles with each failure from a floor up to a cap, and starts
//! over after a success. ±20 % jitter keeps a fleet from retrying in step.
//!
//! The agent's collector output asks per session
//! ([`Backoff::after_session`]): a welcome alone is no sign of health (a
//! collector whose disk is full welcomes every agent and then fails the
//! first batch), so the delay grows across failed sessions and starts over
//! only after a session made progress (an acknowledgement advanced) or
//! stayed up for [`STABLE`]. Its cap (`backoff_max`, 5 s by default) means
//! a collector that comes back is found within seconds. The other outputs,
//! and the collector's forwarding, ask per event ([`Backoff::failed`],
//! [`Backoff::succeeded`]).

use std::time::{Duration, Instant};

/// A session up this long counts as healthy even without an ack (an idle
/// agent has nothing to acknowledge).
pub const STABLE: Duration = Duration::from_secs(30);

/// Jittered exponential backoff; the jitter comes from a small xorshift
/// seeded per process, which is all spreading reconnects needs.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
    rng: u64,
}

impl Backoff {
    /// Delays from `min` (the first after a failure) doubling up to `max`.
    pub fn new(min: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            next: min,
            min,
            max: max.max(min),
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt after one more failure.
    pub fn failed(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        self.jitter(delay)
    }

    /// A success: the next failure waits the shortest delay again.
    pub fn succeeded(&mut self) {
        self.next = self.min;
    }

    /// The delay before the next attempt, after a session (or a failed
    /// dial: `started == ended`) that ran from `started` to `ended` and
    /// made progress or not.
    pub fn after_session(
        &mut self,
        started: Instant,
        ended: Instant,
        progressed: bool,
    ) -> Duration {
        if progressed || ended.saturating_duration_since(started) >= STABLE {
            self.succeeded();
        }
        self.failed()
    }

    /// The longest delay, for a refusal that retrying soon will not change.
    pub fn longest(&mut self) -> Duration {
        self.next = self.max;
        self.jitter(self.max)
    }

    /// `delay` scaled by a factor in [0.8, 1.2).
    fn jitter(&mut self, delay: Duration) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        delay.mul_f64(0.8 + 0.4 * unit)
    }
}

/// A per-process seed, so agents started together do not jitter alike;
/// `salt` (the boot id, an output's name) tells apart the outputs of one.
pub fn seed(salt: &str) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    salt.bytes()
        .fold(nanos ^ u64::from(std::process::id()), |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF_MIN: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(5);

    fn within(d: Duration, base: Duration) -> bool {
        d >= base.mul_f64(0.8) && d < base.mul_f64(1.2)
    }

    #[test]
    fn failed_sessions_back_off_even_after_a_welcome() {
        let t0 = Instant::now();
        let mut b = Backoff::new(BACKOFF_MIN, MAX, 42);
        let mut base = BACKOFF_MIN;
        let mut at = t0;
        let mut total = Duration::ZERO;
        for _ in 0..12 {
            // Welcomed, then failed a second later without an ack.
            let d = b.after_session(at, at + Duration::from_secs(1), false);
            assert!(within(d, base), "{d:?} vs {base:?}");
            base = (base * 2).min(MAX);
            at += Duration::from_secs(1) + d;
            total += d;
        }
        // Twelve failures in a row wait tens of seconds, not a storm.
        assert!(total > Duration::from_secs(30), "{total:?}");
    }

    #[test]
    fn the_delay_is_capped_so_a_returning_collector_is_found_within_seconds() {
        let t0 = Instant::now();
        let mut b = Backoff::new(BACKOFF_MIN, MAX, 7);
        for _ in 0..100 {
            let d = b.after_session(t0, t0, false);
            assert!(d < MAX.mul_f64(1.2), "{d:?}");
        }
        assert!(within(b.longest(), MAX));
    }

    #[test]
    fn progress_or_a_long_session_starts_over() {
        let t0 = Instant::now();
        let mut b = Backoff::new(BACKOFF_MIN, MAX, 9);
        for _ in 0..6 {
            b.after_session(t0, t0, false);
        }
        let d = b.after_session(t0, t0 + Duration::from_secs(2), true);
        assert!(within(d, BACKOFF_MIN), "an ack advanced: {d:?}");
        for _ in 0..6 {
            b.after_session(t0, t0, false);
        }
        let d = b.after_session(t0, t0 + STABLE, false);
        assert!(within(d, BACKOFF_MIN), "up for {STABLE:?}: {d:?}");
        let d = b.after_session(t0, t0 + STABLE - Duration::from_secs(1), false);
        assert!(within(d, BACKOFF_MIN * 2), "{d:?}");
    }

    #[test]
    fn per_event_failures_double_to_the_cap_and_a_success_starts_over() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(30));
        let mut b = Backoff::new(min, max, 3);
        let mut base = min;
        for _ in 0..12 {
            let d = b.failed();
            assert!(within(d, base), "{d:?} vs {base:?}");
            base = (base * 2).min(max);
        }
        assert_eq!(base, max);
        b.succeeded();
        let d = b.failed();
        assert!(within(d, min), "{d:?}");
    }
}
