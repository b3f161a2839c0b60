//! Liveness and downtime arithmetic, pure: an interface's time is a chain of
//! segments, each `up`, `down`, `unknown` (its agent was silent) or
//! `admin_down` (an operator shut the port), and each segment carries the
//! totals of everything before it. Downtime over any window is then the
//! difference of two running totals, read from two rows, however many link
//! events the window holds. Times are milliseconds since the epoch and
//! always arguments.
//!
//! `admin_down` is a planned outage: like `unknown` it is neither up time
//! nor downtime and begins no outage, and an availability figured from
//! these totals leaves it out of the denominator as it leaves out unknown
//! time (up ÷ (up + down)), so a maintenance window neither lowers a port's
//! availability nor lets it look better than its up and down time say. A
//! port enabled again while its link stays down begins an outage then.

use std::time::Duration;

/// What is known about an interface during a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Up,
    Down,
    /// Its agent was silent: neither up nor down counts.
    Unknown,
    /// Shut by an operator (the switch said so): neither up nor down
    /// counts, and it is no outage.
    AdminDown,
}

impl State {
    pub fn code(self) -> i64 {
        match self {
            State::Up => 0,
            State::Down => 1,
            State::Unknown => 2,
            State::AdminDown => 3,
        }
    }

    pub fn from_code(code: i64) -> State {
        match code {
            0 => State::Up,
            1 => State::Down,
            3 => State::AdminDown,
            _ => State::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
            State::Unknown => "unknown",
            State::AdminDown => "admin_down",
        }
    }
}

/// One segment of an interface's timeline: from `start_ms` to the next
/// segment's start (or to now for the last one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start_ms: i64,
    pub state: State,
    /// For an unknown segment, the state before the silence, which resumes
    /// when the agent speaks again; otherwise `state`.
    pub prior: State,
    /// Total down time before `start_ms`.
    pub down_before_ms: i64,
    /// Total unknown time before `start_ms`.
    pub unknown_before_ms: i64,
    /// Total administratively down time before `start_ms`.
    pub admin_down_before_ms: i64,
    /// Outages begun up to and including this segment.
    pub outages: i64,
}

impl Segment {
    /// The first segment of an interface first seen at `at` in `state`.
    pub fn first(at: i64, state: State) -> Segment {
        Segment {
            start_ms: at,
            state,
            prior: state,
            down_before_ms: 0,
            unknown_before_ms: 0,
            admin_down_before_ms: 0,
            outages: i64::from(state == State::Down),
        }
    }

    /// The segment that follows this one when the state becomes `state` at
    /// `at`. A time before this segment's start (an event stamped earlier
    /// than one already applied) is taken as the start, so time never runs
    /// backwards.
    pub fn next(&self, at: i64, state: State) -> Segment {
        let at = at.max(self.start_ms);
        let elapsed = at - self.start_ms;
        // Down, silence, down again is one outage seen through a gap.
        let continues = self.state == State::Down
            || (self.state == State::Unknown && self.prior == State::Down);
        let prior = match state {
            State::Unknown => self.prior,
            known => known,
        };
        Segment {
            start_ms: at,
            state,
            prior,
            down_before_ms: self.down_before_ms
                + if self.state == State::Down {
                    elapsed
                } else {
                    0
                },
            unknown_before_ms: self.unknown_before_ms
                + if self.state == State::Unknown {
                    elapsed
                } else {
                    0
                },
            admin_down_before_ms: self.admin_down_before_ms
                + if self.state == State::AdminDown {
                    elapsed
                } else {
                    0
                },
            outages: self.outages + i64::from(state == State::Down && !continues),
        }
    }

    /// Down time from the interface's first segment up to `t`, `t` in this
    /// segment.
    fn down_at(&self, t: i64) -> i64 {
        self.down_before_ms
            + if self.state == State::Down {
                (t - self.start_ms).max(0)
            } else {
                0
            }
    }

    fn unknown_at(&self, t: i64) -> i64 {
        self.unknown_before_ms
            + if self.state == State::Unknown {
                (t - self.start_ms).max(0)
            } else {
                0
            }
    }

    fn admin_down_at(&self, t: i64) -> i64 {
        self.admin_down_before_ms
            + if self.state == State::AdminDown {
                (t - self.start_ms).max(0)
            } else {
                0
            }
    }
}

/// Clock differences up to this between an agent and the collector are
/// network delay and ordinary drift: the agent's own times are kept.
pub const SKEW_TOLERANCE_MS: i64 = 5_000;

/// How far past its arrival an event's time may lie, once the agent's
/// measured skew is taken off. Beyond it the time is wrong (a clock stepped
/// after the hello, an agent that sent no clock), and the arrival time
/// stands in for it: a time a day ahead would otherwise start a segment
/// there, and every real change before that day would shrink to nothing.
pub const MAX_FUTURE_MS: i64 = 10_000;

/// An agent's clock skew from the `now` of its hello and the collector's
/// clock when the hello arrived: positive when the agent runs ahead, zero
/// when within [`SKEW_TOLERANCE_MS`].
pub fn skew(agent_now_ms: i64, arrival_ms: i64) -> i64 {
    let skew = agent_now_ms.saturating_sub(arrival_ms);
    if skew.unsigned_abs() <= SKEW_TOLERANCE_MS.unsigned_abs() {
        0
    } else {
        skew
    }
}

/// Where an event falls on the collector's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTime {
    pub at_ms: i64,
    /// The event claimed a time too far ahead of its arrival; `at_ms` is the
    /// arrival.
    pub future: bool,
}

/// The time of an event stamped `ts_ms` by an agent `skew_ms` ahead of the
/// collector, arriving at `arrival_ms`: its own time corrected by the skew,
/// or its arrival when that still lies more than [`MAX_FUTURE_MS`] ahead.
pub fn event_time(ts_ms: i64, skew_ms: i64, arrival_ms: i64) -> EventTime {
    let at_ms = ts_ms.saturating_sub(skew_ms);
    if at_ms > arrival_ms.saturating_add(MAX_FUTURE_MS) {
        EventTime {
            at_ms: arrival_ms,
            future: true,
        }
    } else {
        EventTime {
            at_ms,
            future: false,
        }
    }
}

/// An interface's figures over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Measure {
    pub down_ms: i64,
    pub unknown_ms: i64,
    /// Time an operator had the port shut: in neither of the above.
    pub admin_down_ms: i64,
    /// Outages that overlap the window.
    pub down_count: i64,
}

impl Measure {
    /// The share of the window the interface was up, of the time it was
    /// known to be up or down: unknown and administratively down time are
    /// in neither numerator nor denominator. `None` when none of the window
    /// was either.
    pub fn availability(&self, window_ms: i64) -> Option<f64> {
        let up = window_ms - self.down_ms - self.unknown_ms - self.admin_down_ms;
        let known = up + self.down_ms;
        (known > 0).then(|| up.max(0) as f64 / known as f64)
    }
}

/// What the collector knows of an agent's liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// When the collector last received anything from it (its own clock).
    pub last_seen_ms: i64,
    /// The newest event time the agent reported (the agent's clock).
    pub last_ts_ms: Option<i64>,
    /// When it said goodbye, if it has not spoken since.
    pub stopped_ms: Option<i64>,
}

/// What the collector makes of an agent's liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    Online,
    /// Nothing received for the heartbeat timeout.
    Stale,
    /// It said goodbye: stopped on purpose.
    Stopped,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Online => "online",
            AgentState::Stale => "stale",
            AgentState::Stopped => "stopped",
        }
    }
}

impl Liveness {
    /// Stale: nothing received for `timeout`.
    pub fn is_stale(&self, now_ms: i64, timeout: Duration) -> bool {
        now_ms.saturating_sub(self.last_seen_ms) > timeout.as_millis().min(i64::MAX as u128) as i64
    }

    pub fn state(&self, now_ms: i64, timeout: Duration) -> AgentState {
        if self.stopped_ms.is_some() {
            AgentState::Stopped
        } else if self.is_stale(now_ms, timeout) {
            AgentState::Stale
        } else {
            AgentState::Online
        }
    }

    /// Stopped or stale: what its interfaces do now is unknown.
    pub fn is_silent(&self, now_ms: i64, timeout: Duration) -> bool {
        self.state(now_ms, timeout) != AgentState::Online
    }

    /// Up to when an interface's last known state holds in a window ending
    /// at `until_ms`: to the window's end for a live agent, to its last event
    /// for a stale or stopped one (from there until it speaks again is
    /// unknown).
    pub fn known_until(&self, until_ms: i64, now_ms: i64, timeout: Duration) -> i64 {
        if self.is_silent(now_ms, timeout) {
            self.last_ts_ms.unwrap_or(self.last_seen_ms).min(until_ms)
        } else {
            until_ms
        }
    }
}

/// An interface's figures over `[since_ms, until_ms]`. `at_since` is the
/// segment in force at `since_ms` (or the interface's first segment when it
/// was first seen later); `at_known` the one in force at `known_until`,
/// from [`Liveness::known_until`] (for a live agent, the last segment).
/// Time before the interface was first seen counts as nothing; time after
/// `known_until` counts as unknown.
pub fn measure(
    at_since: &Segment,
    at_known: &Segment,
    since_ms: i64,
    until_ms: i64,
    known_until: i64,
) -> Measure {
    let from = since_ms.max(at_since.start_ms);
    if until_ms <= from {
        return Measure::default();
    }
    let known_end = known_until.clamp(from, until_ms);
    // Both ends in the same segment when nothing is known past `from`.
    let end = if known_end <= from {
        at_since
    } else {
        at_known
    };
    // An outage under way at `from` overlaps the window if it goes on past
    // it: at once when down, or once a silence inside it ends.
    let under_way = known_end > from
        && (at_since.state == State::Down
            || (at_since.state == State::Unknown
                && at_since.prior == State::Down
                && end != at_since));
    Measure {
        down_ms: end.down_at(known_end) - at_since.down_at(from),
        unknown_ms: end.unknown_at(known_end) - at_since.unknown_at(from) + (until_ms - known_end),
        admin_down_ms: end.admin_down_at(known_end) - at_since.admin_down_at(from),
        down_count: end.outages - at_since.outages + i64::from(under_way),
    }
}

/// Applies (time in seconds, state) changes to a first segment and returns
/// the chain: the timelines the tests here and in the store start from.
#[cfg(test)]
pub(crate) fn chain(first: (i64, State), changes: &[(i64, State)]) -> Vec<Segment> {
    const S: i64 = 1000;
    let mut segs = vec![Segment::first(first.0 * S, first.1)];
    for &(at, state) in changes {
        let next = segs.last().unwrap().next(at * S, state);
        segs.push(next);
    }
    segs
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    /// The segment in force at `t`, or the first.
    fn at(segs: &[Segment], t: i64) -> Segment {
        *segs
            .iter()
            .rev()
            .find(|s| s.start_ms <= t)
            .unwrap_or(&segs[0])
    }

    fn window(segs: &[Segment], since: i64, until: i64, known: i64) -> Measure {
        measure(
            &at(segs, since * S),
            &at(segs, known * S),
            since * S,
            until * S,
            known * S,
        )
    }

    #[test]
    fn outage_clipped_to_the_window() {
        // Up at 0, down at 100 for 30 s, down again at 200 and still down.
        let segs = chain(
            (0, State::Up),
            &[(100, State::Down), (130, State::Up), (200, State::Down)],
        );
        let m = window(&segs, 0, 300, 300);
        assert_eq!(
            m,
            Measure {
                down_ms: 130 * S,
                unknown_ms: 0,
                admin_down_ms: 0,
                down_count: 2
            }
        );
        // A window starting mid-outage counts only its part of it.
        let m = window(&segs, 110, 300, 300);
        assert_eq!(
            m,
            Measure {
                down_ms: 120 * S,
                unknown_ms: 0,
                admin_down_ms: 0,
                down_count: 2
            }
        );
        // A window that ends mid-outage too.
        let m = window(&segs, 110, 250, 250);
        assert_eq!(
            m,
            Measure {
                down_ms: 70 * S,
                unknown_ms: 0,
                admin_down_ms: 0,
                down_count: 2
            }
        );
        // Between the outages nothing is down.
        let m = window(&segs, 140, 190, 190);
        assert_eq!(m, Measure::default());
    }

    #[test]
    fn time_before_first_seen_is_not_counted() {
        let segs = chain((100, State::Down), &[(110, State::Up)]);
        let m = window(&segs, 0, 200, 200);
        assert_eq!(
            m,
            Measure {
                down_ms: 10 * S,
                unknown_ms: 0,
                admin_down_ms: 0,
                down_count: 1
            }
        );
        assert_eq!(window(&segs, 0, 50, 50), Measure::default());
    }

    #[test]
    fn silence_is_unknown_not_down() {
        // Down at 100; agent silent from 120 to 180; it resumes down, then
        // comes up at 200.
        let segs = chain(
            (0, State::Up),
            &[
                (100, State::Down),
                (120, State::Unknown),
                (180, State::Down),
                (200, State::Up),
            ],
        );
        let m = window(&segs, 0, 300, 300);
        assert_eq!(
            m,
            Measure {
                down_ms: 40 * S,
                unknown_ms: 60 * S,
                admin_down_ms: 0,
                down_count: 1
            }
        );
        let m = window(&segs, 150, 300, 300);
        assert_eq!(
            m,
            Measure {
                down_ms: 20 * S,
                unknown_ms: 30 * S,
                admin_down_ms: 0,
                down_count: 1
            }
        );
    }

    #[test]
    fn a_stale_agent_stops_the_count_at_its_last_event() {
        let segs = chain((0, State::Up), &[(100, State::Down)]);
        // Live: down from 100 to now.
        assert_eq!(window(&segs, 0, 300, 300).down_ms, 200 * S);
        // Stale since its last event at 150: down stops there, the rest is
        // unknown, and waiting longer adds only unknown time.
        let m = window(&segs, 0, 300, 150);
        assert_eq!(
            m,
            Measure {
                down_ms: 50 * S,
                unknown_ms: 150 * S,
                admin_down_ms: 0,
                down_count: 1
            }
        );
        let m = window(&segs, 0, 400, 150);
        assert_eq!(
            m,
            Measure {
                down_ms: 50 * S,
                unknown_ms: 250 * S,
                admin_down_ms: 0,
                down_count: 1
            }
        );
        // A window wholly after the last event is all unknown.
        let m = window(&segs, 200, 400, 150);
        assert_eq!(
            m,
            Measure {
                down_ms: 0,
                unknown_ms: 200 * S,
                admin_down_ms: 0,
                down_count: 0
            }
        );
    }

    #[test]
    fn the_agent_returning_records_the_gap_and_counting_resumes() {
        // What the writer records when the stale agent speaks again at 250:
        // unknown from its last event (150) to 250, then down again.
        let segs = chain(
            (0, State::Up),
            &[
                (100, State::Down),
                (150, State::Unknown),
                (250, State::Down),
            ],
        );
        let m = window(&segs, 0, 300, 300);
        assert_eq!(
            m,
            Measure {
                down_ms: 100 * S,
                unknown_ms: 100 * S,
                admin_down_ms: 0,
                down_count: 1
            }
        );
    }

    #[test]
    fn a_shutdown_is_neither_downtime_nor_an_outage() {
        // Up at 0, shut at 100, enabled at 160 and up; a real failure from
        // 200 to 230.
        let segs = chain(
            (0, State::Up),
            &[
                (100, State::AdminDown),
                (160, State::Up),
                (200, State::Down),
                (230, State::Up),
            ],
        );
        let m = window(&segs, 0, 300, 300);
        assert_eq!(
            m,
            Measure {
                down_ms: 30 * S,
                unknown_ms: 0,
                admin_down_ms: 60 * S,
                down_count: 1
            }
        );
        // Up 210 s of the 240 s known up or down: the 60 s shut count in
        // neither.
        assert_eq!(m.availability(300 * S), Some(210.0 / 240.0));
        // A window inside the shutdown: no outage under way, nothing down,
        // and no availability to speak of.
        let m = window(&segs, 110, 150, 150);
        assert_eq!(
            m,
            Measure {
                down_ms: 0,
                unknown_ms: 0,
                admin_down_ms: 40 * S,
                down_count: 0
            }
        );
        assert_eq!(m.availability(40 * S), None);
        // A port first seen shut starts no outage.
        assert_eq!(Segment::first(0, State::AdminDown).outages, 0);
        assert_eq!(State::from_code(State::AdminDown.code()), State::AdminDown);
        assert_eq!(State::AdminDown.as_str(), "admin_down");
    }

    #[test]
    fn a_port_enabled_without_a_link_begins_an_outage_then() {
        // Shut at 100; enabled at 150 but the link stays down until 190.
        let segs = chain(
            (0, State::Up),
            &[
                (100, State::AdminDown),
                (150, State::Down),
                (190, State::Up),
            ],
        );
        let m = window(&segs, 0, 200, 200);
        assert_eq!(
            m,
            Measure {
                down_ms: 40 * S,
                unknown_ms: 0,
                admin_down_ms: 50 * S,
                down_count: 1
            }
        );
        // A failed link then shut: its outage ends at the shutdown.
        let segs = chain(
            (0, State::Up),
            &[
                (100, State::Down),
                (120, State::AdminDown),
                (180, State::Up),
            ],
        );
        let m = window(&segs, 0, 200, 200);
        assert_eq!(
            m,
            Measure {
                down_ms: 20 * S,
                unknown_ms: 0,
                admin_down_ms: 60 * S,
                down_count: 1
            }
        );
        // A window that starts in the shutdown counts no outage from before.
        assert_eq!(window(&segs, 130, 200, 200).down_count, 0);
    }

    #[test]
    fn silence_during_a_shutdown_resumes_it() {
        // Shut at 100; agent silent 120..180; it speaks again, the port
        // still shut, enabled and up at 200. The writer resumes `prior`.
        let shut = Segment::first(0, State::Up).next(100 * S, State::AdminDown);
        let silent = shut.next(120 * S, State::Unknown);
        assert_eq!(silent.prior, State::AdminDown);
        let resumed = silent.next(180 * S, silent.prior);
        let up = resumed.next(200 * S, State::Up);
        let segs = [Segment::first(0, State::Up), shut, silent, resumed, up];
        let m = window(&segs, 0, 300, 300);
        assert_eq!(
            m,
            Measure {
                down_ms: 0,
                unknown_ms: 60 * S,
                admin_down_ms: 40 * S,
                down_count: 0
            }
        );
        assert_eq!(m.availability(300 * S), Some(1.0));
        // A stale agent whose port was shut: the shutdown stops at its last
        // event and the rest is unknown.
        let m = window(&segs[..2], 0, 300, 150);
        assert_eq!(
            m,
            Measure {
                down_ms: 0,
                unknown_ms: 150 * S,
                admin_down_ms: 50 * S,
                down_count: 0
            }
        );
    }

    #[test]
    fn earlier_stamped_changes_do_not_run_time_backwards() {
        let a = Segment::first(100 * S, State::Up);
        let b = a.next(90 * S, State::Down);
        assert_eq!(b.start_ms, 100 * S);
        assert_eq!(b.down_before_ms, 0);
        let c = b.next(95 * S, State::Up);
        assert_eq!(c.down_before_ms, 0);
        assert_eq!(c.outages, 1);
    }

    #[test]
    fn a_future_stamp_cannot_swallow_a_later_outage() {
        // Arrival at 1000 s; the agent's clock agrees with the collector's.
        let arrival = 1000 * S;
        let bad = event_time(arrival + 86_400 * S, 0, arrival);
        assert_eq!(
            bad,
            EventTime {
                at_ms: arrival,
                future: true
            }
        );
        // A little ahead is delay and drift, kept as stamped.
        assert_eq!(
            event_time(arrival + 9 * S, 0, arrival).at_ms,
            arrival + 9 * S
        );
        // Then a real 60 s outage, each event arriving as it happens.
        let mut segs = vec![Segment::first(bad.at_ms, State::Up)];
        for (ts, state) in [(1010, State::Down), (1070, State::Up)] {
            let t = event_time(ts * S, 0, ts * S);
            assert!(!t.future);
            let next = segs.last().unwrap().next(t.at_ms, state);
            segs.push(next);
        }
        assert_eq!(
            window(&segs, 900, 1100, 1100),
            Measure {
                down_ms: 60 * S,
                unknown_ms: 0,
                admin_down_ms: 0,
                down_count: 1
            }
        );
    }

    #[test]
    fn a_skewed_clock_is_corrected_by_what_the_hello_measured() {
        // Within the tolerance: no correction.
        assert_eq!(skew(1000 * S + 4 * S, 1000 * S), 0);
        assert_eq!(skew(1000 * S - 5 * S, 1000 * S), 0);
        // A day ahead, and a minute behind.
        let ahead = skew(1000 * S + 86_400 * S, 1000 * S);
        assert_eq!(ahead, 86_400 * S);
        assert_eq!(skew(940 * S, 1000 * S), -60 * S);
        // Its events land where they happened on the collector's clock, and
        // are not future.
        let t = event_time(1030 * S + 86_400 * S, ahead, 1030 * S);
        assert_eq!(
            t,
            EventTime {
                at_ms: 1030 * S,
                future: false
            }
        );
        // Spooled events from before the hello keep their spacing.
        assert_eq!(
            event_time(970 * S + 86_400 * S, ahead, 1031 * S).at_ms,
            970 * S
        );
        // Absurd inputs saturate rather than overflow.
        assert_eq!(skew(i64::MAX, i64::MIN), i64::MAX);
        assert_eq!(skew(i64::MIN, i64::MAX), i64::MIN);
        assert!(event_time(i64::MAX, i64::MIN, 0).future);
    }

    #[test]
    fn liveness() {
        let timeout = Duration::from_secs(30);
        let live = Liveness {
            last_seen_ms: 100 * S,
            last_ts_ms: Some(99 * S),
            stopped_ms: None,
        };
        assert!(!live.is_stale(130 * S, timeout));
        assert!(live.is_stale(131 * S, timeout));
        assert_eq!(live.known_until(130 * S, 130 * S, timeout), 130 * S);
        assert_eq!(live.known_until(200 * S, 200 * S, timeout), 99 * S);
        assert_eq!(live.state(130 * S, timeout), AgentState::Online);
        assert_eq!(live.state(131 * S, timeout), AgentState::Stale);
        // Extreme clocks and timeouts answer rather than overflow.
        let far = Liveness {
            last_seen_ms: i64::MIN,
            last_ts_ms: None,
            stopped_ms: None,
        };
        assert!(far.is_stale(i64::MAX, timeout));
        assert!(!live.is_stale(i64::MAX, Duration::MAX));
    }

    #[test]
    fn a_stopped_agent_is_known_only_to_its_last_event() {
        let timeout = Duration::from_secs(30);
        let stopped = Liveness {
            last_seen_ms: 100 * S,
            last_ts_ms: Some(99 * S),
            stopped_ms: Some(100 * S),
        };
        // Long before the heartbeat timeout would call it stale.
        assert_eq!(stopped.state(101 * S, timeout), AgentState::Stopped);
        assert_eq!(stopped.known_until(110 * S, 110 * S, timeout), 99 * S);
        let up = Segment::first(0, State::Up);
        let m = measure(
            &up,
            &up,
            0,
            110 * S,
            stopped.known_until(110 * S, 110 * S, timeout),
        );
        assert_eq!((m.down_ms, m.unknown_ms), (0, 11 * S));
    }
}
