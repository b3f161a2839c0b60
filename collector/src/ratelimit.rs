//! A token bucket per API token: `burst` requests at once, refilled at
//! `per_second`. The clock is an argument so tests step it by hand.

use crate::config::RateLimitSettings;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets keyed by the API token's index.
#[derive(Debug)]
pub struct RateLimiter {
    settings: RateLimitSettings,
    // Held for a few arithmetic operations, never across an await.
    buckets: Mutex<HashMap<usize, Bucket>>,
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings) -> RateLimiter {
        RateLimiter {
            settings,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket at `now`; when it is empty,
    /// says how long until the next request would be allowed.
    pub fn check(&self, key: usize, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.settings.burst);
        let mut buckets = self.buckets.lock().expect("rate limiter poisoned");
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.settings.per_second).min(burst);
        bucket.at = now.max(bucket.at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.settings.per_second;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32) -> RateLimiter {
        RateLimiter::new(RateLimitSettings { per_second, burst })
    }

    #[test]
    fn burst_then_refill() {
        let limiter = limiter(10.0, 5);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.check(0, t0), Ok(()));
        }
        let wait = limiter.check(0, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        assert!(limiter.check(0, t0 + Duration::from_millis(50)).is_err());
        assert_eq!(limiter.check(0, t0 + Duration::from_millis(100)), Ok(()));
        assert!(limiter.check(0, t0 + Duration::from_millis(100)).is_err());
        // A long pause refills to the burst, no further.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert_eq!(limiter.check(0, later), Ok(()));
        }
        assert!(limiter.check(0, later).is_err());
    }

    #[test]
    fn tokens_have_their_own_buckets() {
        let limiter = limiter(1.0, 1);
        let t0 = Instant::now();
        assert_eq!(limiter.check(0, t0), Ok(()));
        assert!(limiter.check(0, t0).is_err());
        assert_eq!(limiter.check(1, t0), Ok(()));
    }

    #[test]
    fn a_wait_too_long_to_write_is_the_longest() {
        let limiter = limiter(1e-300, 1);
        let t0 = Instant::now();
        assert_eq!(limiter.check(0, t0), Ok(()));
        assert_eq!(limiter.check(0, t0), Err(Duration::MAX));
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let limiter = limiter(1.0, 1);
        let t0 = Instant::now() + Duration::from_secs(10);
        assert_eq!(limiter.check(0, t0), Ok(()));
        assert!(limiter.check(0, t0 - Duration::from_secs(5)).is_err());
    }
}
