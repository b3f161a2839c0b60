//! Adaptive pacing: a counter source that takes long to answer is a switch
//! (or host) under load, and polling it as often as configured would add to
//! that load. NX-API runs each request in a VSH session from a small pool
//! inside a capped cgroup, so one slow `show` is a warning to back off.
//!
//! The decision is kept apart from the loop that acts on it: it takes each
//! poll's duration and the time, and says which interval to poll at. It never
//! reads a clock, so every rule below is tested with explicit times.
//!
//! - A poll that takes more than a fifth of the effective interval stretches
//!   the interval at once to five times that poll, rounded up to whole
//!   seconds (tenths of a second below one), at most [`MAX_STRETCH`] or the
//!   configured interval when that is longer.
//! - A stretched interval eases only after [`CALM_POLLS`] polls in a row that
//!   would each allow a shorter one, counting a poll as allowing ten times
//!   its duration (not five): the gap between the two factors is the
//!   hysteresis, so a steady poll time settles on one interval and stays.
//!   The interval then eases to the longest any of those polls allows, which
//!   is the configured interval once the polls are fast again.

use std::time::{Duration, Instant};

/// The longest a slow source stretches the interval to (unless the
/// configured interval is longer): Cisco's own sample NX-SDK application
/// polls `show interface` once a minute, and rules need a poll now and then.
pub const MAX_STRETCH: Duration = Duration::from_secs(60);

/// How many of the interval a poll may use before the interval stretches:
/// one fifth (20 %).
const STRETCH_FACTOR: u32 = 5;

/// How many of the interval a poll may use for the interval to ease: one
/// tenth.
const CALM_FACTOR: u32 = 10;

/// How many polls in a row must allow a shorter interval before it eases.
pub const CALM_POLLS: u32 = 3;

/// The pacing of one counter source.
#[derive(Debug, Clone)]
pub struct Pace {
    configured: Duration,
    effective: Duration,
    /// Why the interval is stretched: the poll that set it, and when.
    stretch: Option<Stretch>,
    /// Polls in a row that allowed a shorter interval, and the longest
    /// interval one of them allowed.
    calm: u32,
    calm_interval: Duration,
}

/// A stretched interval's cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    /// The slow poll's duration.
    pub poll: Duration,
    /// When the interval first stretched, for how long it has been so.
    pub since: Instant,
}

/// A change of the effective interval, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A poll was slow: the interval grew to `to`.
    Stretched {
        from: Duration,
        to: Duration,
        poll: Duration,
    },
    /// Polls were fast for a while: the interval shrank to `to`, still
    /// longer than configured.
    Eased { from: Duration, to: Duration },
    /// Polls were fast for a while: the interval is the configured one
    /// again, after `stretched` at a longer one.
    Restored { to: Duration, stretched: Duration },
}

impl Pace {
    pub fn new(configured: Duration) -> Pace {
        Pace {
            configured,
            effective: configured,
            stretch: None,
            calm: 0,
            calm_interval: Duration::ZERO,
        }
    }

    /// The interval the config asks for.
    pub fn configured(&self) -> Duration {
        self.configured
    }

    /// The interval to poll at now.
    pub fn interval(&self) -> Duration {
        self.effective
    }

    /// Why the interval is longer than configured; `None` when it is not.
    pub fn stretch(&self) -> Option<Stretch> {
        self.stretch
    }

    /// Takes one finished poll's duration, at `now`; says how the interval
    /// changed, if it did.
    pub fn observe(&mut self, poll: Duration, now: Instant) -> Option<Change> {
        let from = self.effective;
        if poll * STRETCH_FACTOR > self.effective {
            let to = self.allowed(poll, STRETCH_FACTOR);
            self.calm = 0;
            if to <= from {
                // Already as long as it may get.
                return None;
            }
            self.effective = to;
            let since = self.stretch.map_or(now, |s| s.since);
            self.stretch = Some(Stretch { poll, since });
            return Some(Change::Stretched { from, to, poll });
        }
        // Only a stretched interval has anywhere to ease to.
        let since = self.stretch?.since;
        let allowed = self.allowed(poll, CALM_FACTOR);
        if allowed >= self.effective {
            self.calm = 0;
            return None;
        }
        self.calm_interval = if self.calm == 0 {
            allowed
        } else {
            self.calm_interval.max(allowed)
        };
        self.calm += 1;
        if self.calm < CALM_POLLS {
            return None;
        }
        self.calm = 0;
        self.effective = self.calm_interval;
        if self.effective == self.configured {
            self.stretch = None;
            return Some(Change::Restored {
                to: self.configured,
                stretched: now.saturating_duration_since(since),
            });
        }
        Some(Change::Eased {
            from,
            to: self.effective,
        })
    }

    /// The interval a poll of `poll` allows when it may use one `factor`th
    /// of it: never shorter than configured, never longer than the cap.
    fn allowed(&self, poll: Duration, factor: u32) -> Duration {
        let cap = MAX_STRETCH.max(self.configured);
        round_up(poll * factor).clamp(self.configured, cap)
    }
}

/// A duration as the log and `hopwatch status` say it: `600ms`, `3.1s`,
/// `15s`, `1m 30s`.
pub fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    } else {
        let text = format!("{:.2}", d.as_secs_f64());
        format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// Up to whole seconds, or to tenths of a second below one second, so a
/// stretched interval reads plainly in the log and in `hopwatch status`.
fn round_up(d: Duration) -> Duration {
    let step: u128 = if d > Duration::from_secs(1) {
        1_000_000_000
    } else {
        100_000_000
    };
    let steps = d.as_nanos().div_ceil(step);
    Duration::from_nanos(u64::try_from(steps * step).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// Feeds polls one interval apart from `t`, returning the changes.
    fn feed(pace: &mut Pace, t: &mut Instant, polls: &[Duration]) -> Vec<Change> {
        let mut changes = Vec::new();
        for &poll in polls {
            *t += pace.interval();
            changes.extend(pace.observe(poll, *t));
        }
        changes
    }

    #[test]
    fn durations_read_plainly() {
        assert_eq!(human(ms(600)), "600ms");
        assert_eq!(human(ms(3100)), "3.1s");
        assert_eq!(human(ms(3012)), "3.01s");
        assert_eq!(human(s(15)), "15s");
        assert_eq!(human(s(90)), "1m 30s");
    }

    #[test]
    fn a_fast_source_keeps_the_configured_interval() {
        let mut pace = Pace::new(s(10));
        let mut t = Instant::now();
        // Exactly 20 % is not more than 20 %.
        assert!(feed(&mut pace, &mut t, &[ms(50), ms(2000), ms(1999), ms(0)]).is_empty());
        assert_eq!(pace.interval(), s(10));
        assert_eq!(pace.stretch(), None);
    }

    #[test]
    fn a_slow_poll_stretches_at_once_to_five_times_it_rounded_up() {
        let mut pace = Pace::new(s(10));
        let t = Instant::now();
        // 3 s at a 10 s interval (30 %): 15 s.
        assert_eq!(
            pace.observe(s(3), t),
            Some(Change::Stretched {
                from: s(10),
                to: s(15),
                poll: s(3)
            })
        );
        assert_eq!(pace.interval(), s(15));
        assert_eq!(pace.configured(), s(10));
        assert_eq!(
            pace.stretch(),
            Some(Stretch {
                poll: s(3),
                since: t
            })
        );
        // 3.01 s is more than a fifth of 15 s: 15.05 s, rounded up to 16 s.
        assert_eq!(
            pace.observe(ms(3010), t + s(15)),
            Some(Change::Stretched {
                from: s(15),
                to: s(16),
                poll: ms(3010)
            })
        );
        // The stretch started with the first slow poll.
        assert_eq!(pace.stretch().unwrap().since, t);
    }

    #[test]
    fn the_stretch_is_capped() {
        let mut pace = Pace::new(s(10));
        let t = Instant::now();
        assert_eq!(
            pace.observe(s(40), t),
            Some(Change::Stretched {
                from: s(10),
                to: MAX_STRETCH,
                poll: s(40)
            })
        );
        // Slower still: already at the cap, nothing to say.
        assert_eq!(pace.observe(s(50), t + MAX_STRETCH), None);
        assert_eq!(pace.interval(), MAX_STRETCH);
        // A configured interval past the cap is never stretched.
        let mut slow = Pace::new(s(120));
        assert_eq!(slow.observe(s(100), t), None);
        assert_eq!(slow.interval(), s(120));
    }

    #[test]
    fn sub_second_intervals_stretch_in_tenths() {
        let mut pace = Pace::new(ms(200));
        let t = Instant::now();
        assert_eq!(
            pace.observe(ms(41), t),
            Some(Change::Stretched {
                from: ms(200),
                to: ms(300),
                poll: ms(41)
            })
        );
        assert_eq!(round_up(ms(1001)), s(2));
        assert_eq!(round_up(s(1)), s(1));
        assert_eq!(round_up(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn fast_polls_in_a_row_restore_the_configured_interval() {
        let mut pace = Pace::new(s(10));
        let t0 = Instant::now();
        let mut t = t0;
        pace.observe(s(3), t);
        // Two fast polls, then a slow-ish one (allows 20 s, not shorter
        // than 15 s): the count starts over.
        assert!(feed(&mut pace, &mut t, &[ms(100), ms(100), s(2)]).is_empty());
        assert_eq!(pace.interval(), s(15));
        assert!(feed(&mut pace, &mut t, &[ms(100), ms(900)]).is_empty());
        let changes = feed(&mut pace, &mut t, &[ms(100)]);
        assert_eq!(
            changes,
            vec![Change::Restored {
                to: s(10),
                stretched: t - t0
            }]
        );
        assert_eq!(t - t0, s(15 * 6));
        assert_eq!(pace.interval(), s(10));
        assert_eq!(pace.stretch(), None);
        // Fast polls at the configured interval say nothing more.
        assert!(feed(&mut pace, &mut t, &[ms(10); 10]).is_empty());
    }

    #[test]
    fn a_long_stretch_eases_to_what_the_calm_polls_allow() {
        let mut pace = Pace::new(s(10));
        let mut t = Instant::now();
        pace.observe(s(12), t);
        assert_eq!(pace.interval(), s(60));
        // Polls of 2 to 2.5 s allow 25 s at a tenth each.
        let changes = feed(&mut pace, &mut t, &[s(2), ms(2500), ms(2100)]);
        assert_eq!(
            changes,
            vec![Change::Eased {
                from: s(60),
                to: s(25)
            }]
        );
        assert!(pace.stretch().is_some());
    }

    #[test]
    fn a_steady_poll_time_settles_and_never_flaps() {
        // Every poll time from 0 to 15 s, held for many polls: after the
        // first change or two the interval never moves again.
        for tenth in 0..150 {
            let poll = ms(tenth * 100);
            let mut pace = Pace::new(s(10));
            let mut t = Instant::now();
            let mut changes = feed(&mut pace, &mut t, &[poll; 10]).len();
            assert!(changes <= 2, "{poll:?}: {changes} changes to settle");
            let settled = pace.interval();
            changes = feed(&mut pace, &mut t, &[poll; 100]).len();
            assert_eq!(changes, 0, "{poll:?} flaps around {settled:?}");
            assert!(
                poll * 5 <= settled || settled == MAX_STRETCH,
                "{poll:?} uses more than a fifth of {settled:?}"
            );
        }
    }

    #[test]
    fn alternating_slow_and_fast_polls_stay_stretched() {
        let mut pace = Pace::new(s(10));
        let mut t = Instant::now();
        let polls: Vec<Duration> = (0..40)
            .map(|i| if i % 3 == 0 { s(3) } else { ms(50) })
            .collect();
        let changes = feed(&mut pace, &mut t, &polls);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(pace.interval(), s(15));
    }
}
