//! The agent's tick: a periodic timer kept by the kernel (`timerfd`), so the
//! process wakes once per tick. A tokio interval waits on tokio's timer
//! wheel, which for a one-second period wakes the process two or three times
//! per tick on its way down the wheel's levels; on a switch each wake-up is
//! a context switch that costs as much as the rule engine's whole tick.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::time::MissedTickBehavior;

/// Ticks every period, the first at once. Ticks missed while the process
/// was busy are skipped, not made up in a burst.
pub struct Ticker {
    clock: Clock,
}

enum Clock {
    Kernel(AsyncFd<Fd>),
    /// Where `timerfd` cannot be had.
    Tokio(tokio::time::Interval),
}

/// [`AsyncFd`] asks for a raw descriptor, which the timer only lends.
struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl Ticker {
    /// Must be called inside the tokio runtime.
    pub fn new(period: Duration) -> Ticker {
        Ticker::starting_in(Duration::ZERO, period)
    }

    /// Ticks first after `first`, then every period: a new period takes
    /// over from the last tick, so polls are never closer than either.
    pub fn starting_in(first: Duration, period: Duration) -> Ticker {
        let clock = match kernel_timer(first, period) {
            Ok(fd) => Clock::Kernel(fd),
            Err(error) => {
                tracing::debug!(%error, "No timerfd; ticking on tokio's timer.");
                let start = tokio::time::Instant::now() + first;
                let mut interval = tokio::time::interval_at(start, period);
                interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
                Clock::Tokio(interval)
            }
        };
        Ticker { clock }
    }

    pub async fn tick(&mut self) {
        let fd = match &mut self.clock {
            Clock::Kernel(fd) => fd,
            Clock::Tokio(interval) => {
                interval.tick().await;
                return;
            }
        };
        loop {
            let Ok(mut ready) = fd.readable().await else {
                // The runtime's reactor is gone; nothing will tick again.
                return std::future::pending().await;
            };
            // The read returns how many periods passed; one tick is taken
            // whatever the count.
            match ready.try_io(|fd| fd.get_ref().0.wait().map_err(io::Error::from)) {
                Ok(_) => return,
                Err(_would_block) => continue,
            }
        }
    }
}

fn kernel_timer(first: Duration, period: Duration) -> io::Result<AsyncFd<Fd>> {
    let timer = TimerFd::new(
        ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )?;
    // An initial delay of zero would disarm the timer; a nanosecond is "at
    // once".
    timer.set(
        Expiration::IntervalDelayed(
            TimeSpec::from_duration(first.max(Duration::from_nanos(1))),
            TimeSpec::from_duration(period),
        ),
        TimerSetTimeFlags::empty(),
    )?;
    // `AsyncFd::new` is deprecated because a caller could close or replace
    // the descriptor while it is registered; `Fd` owns its timer, which
    // lives exactly as long as the registration. The safe way is `unsafe`.
    #[allow(deprecated)]
    AsyncFd::new(Fd(timer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn ticks_at_once_then_every_period() {
        let period = Duration::from_millis(50);
        let mut ticker = Ticker::new(period);
        assert!(matches!(ticker.clock, Clock::Kernel(_)));
        let started = Instant::now();
        ticker.tick().await;
        assert!(started.elapsed() < period);
        for n in 1..=3 {
            ticker.tick().await;
            assert!(started.elapsed() >= period * n);
        }
    }

    #[tokio::test]
    async fn a_delayed_start_ticks_after_the_delay_then_every_period() {
        let (first, period) = (Duration::from_millis(60), Duration::from_millis(30));
        let mut ticker = Ticker::starting_in(first, period);
        let started = Instant::now();
        ticker.tick().await;
        assert!(started.elapsed() >= first);
        ticker.tick().await;
        assert!(started.elapsed() >= first + period);
    }

    #[tokio::test]
    async fn missed_ticks_are_skipped() {
        let period = Duration::from_millis(20);
        let mut ticker = Ticker::new(period);
        ticker.tick().await;
        std::thread::sleep(period * 5);
        // Five missed periods make one tick, due at once, not five.
        let started = Instant::now();
        let mut ticks = 0;
        while started.elapsed() < period * 2 {
            ticker.tick().await;
            ticks += 1;
        }
        assert!((2..=4).contains(&ticks), "{ticks} ticks");
    }
}
