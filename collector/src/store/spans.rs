//! An interface's timeline as a picture needs what the running totals of
//! [`crate::timeline`] fold away: each segment's own times clipped to a
//! window, the outages one by one (for MTTR, the longest and the last), and
//! a bound on how many pieces a browser is sent. Pure and clock-free: the
//! segments, the window and the time the agent's word holds until are
//! arguments.

use crate::timeline::{Segment, State};

/// A stretch of one state inside the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from_ms: i64,
    pub to_ms: i64,
    pub state: State,
    /// For an unknown span, the state before the silence.
    pub prior: State,
}

/// `segments` in start order, the first being the one in force at
/// `since_ms` when the interface was seen before it, clipped to
/// `[since_ms, until_ms]`. Past `known_until` (a silent agent's last word,
/// see [`crate::timeline::Liveness::known_until`]) the time is unknown. Time
/// before the interface was first seen has no span. Adjacent spans of the
/// same state are joined.
pub fn spans(segments: &[Segment], since_ms: i64, until_ms: i64, known_until: i64) -> Vec<Span> {
    let known_until = known_until.min(until_ms);
    let mut out: Vec<Span> = Vec::new();
    let mut push = |span: Span| {
        if span.to_ms <= span.from_ms {
            return;
        }
        match out.last_mut() {
            Some(last) if last.state == span.state && last.to_ms == span.from_ms => {
                last.to_ms = span.to_ms;
            }
            _ => out.push(span),
        }
    };
    let mut last: Option<&Segment> = None;
    for (i, seg) in segments.iter().enumerate() {
        let next_start = segments.get(i + 1).map_or(i64::MAX, |s| s.start_ms);
        if next_start <= since_ms || seg.start_ms >= until_ms {
            continue;
        }
        if seg.start_ms < known_until {
            last = Some(seg);
        }
        push(Span {
            from_ms: seg.start_ms.max(since_ms),
            to_ms: next_start.min(known_until),
            state: seg.state,
            prior: seg.prior,
        });
    }
    if let Some(seg) = last
        && known_until < until_ms
    {
        push(Span {
            from_ms: known_until.max(since_ms),
            to_ms: until_ms,
            state: State::Unknown,
            prior: seg.prior,
        });
    }
    out
}

/// One outage as the window shows it: from where it began (or the window's
/// start), to where it ended (`None` while it goes on at the window's end),
/// and its down time inside the window (a silence within it is unknown
/// time, not down time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub from_ms: i64,
    pub to_ms: Option<i64>,
    pub down_ms: i64,
}

/// What a window of spans adds up to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Figures {
    pub up_ms: i64,
    pub down_ms: i64,
    pub unknown_ms: i64,
    pub admin_down_ms: i64,
    /// Oldest first.
    pub outages: Vec<Outage>,
}

impl Figures {
    /// Up time over the time known up or down, as
    /// [`crate::timeline::Measure::availability`] figures it.
    pub fn availability(&self) -> Option<f64> {
        let known = self.up_ms + self.down_ms;
        (known > 0).then(|| self.up_ms as f64 / known as f64)
    }

    /// The mean down time of the window's outages.
    pub fn mttr_ms(&self) -> Option<f64> {
        (!self.outages.is_empty()).then(|| self.down_ms as f64 / self.outages.len() as f64)
    }

    pub fn longest_ms(&self) -> Option<i64> {
        self.outages.iter().map(|o| o.down_ms).max()
    }
}

/// Totals and outages of `spans`. An outage is a run of down time that a
/// silence does not break (down, unknown, down is one outage, as the
/// writer counts it); an outage under way at the window's start counts.
pub fn figures(spans: &[Span]) -> Figures {
    let mut f = Figures::default();
    let mut open: Option<Outage> = None;
    for span in spans {
        let len = span.to_ms - span.from_ms;
        match span.state {
            State::Up => f.up_ms += len,
            State::Down => f.down_ms += len,
            State::Unknown => f.unknown_ms += len,
            State::AdminDown => f.admin_down_ms += len,
        }
        let continues = span.state == State::Down
            || (span.state == State::Unknown && span.prior == State::Down);
        match (&mut open, span.state) {
            (Some(outage), State::Down) => outage.down_ms += len,
            (None, State::Down) => {
                open = Some(Outage {
                    from_ms: span.from_ms,
                    to_ms: None,
                    down_ms: len,
                })
            }
            (Some(_), _) if continues => {}
            (Some(outage), _) => {
                outage.to_ms = Some(span.from_ms);
                f.outages.push(*outage);
                open = None;
            }
            (None, _) => {}
        }
    }
    f.outages.extend(open);
    f
}

/// What the browser draws: a span, or several too narrow to see apart
/// summed into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    One(State),
    Mixed { down_ms: i64, unknown_ms: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub from_ms: i64,
    pub to_ms: i64,
    pub kind: Kind,
}

/// `spans` for a picture `width` pixels wide over `window_ms`: spans
/// narrower than a pixel are joined, run by run, into mixed pieces of at
/// least a pixel that keep their down and unknown time. Every piece but one
/// ended by a wide span or by the window's end is at least a pixel wide,
/// so there are at most about twice `width` of them, however many spans.
pub fn pieces(spans: &[Span], window_ms: i64, width: u32) -> Vec<Piece> {
    let width = i64::from(width.max(1));
    let pixel = ((window_ms + width - 1) / width).max(1);
    let mut out = Vec::new();
    let mut run: Vec<&Span> = Vec::new();
    let flush = |run: &mut Vec<&Span>, out: &mut Vec<Piece>| {
        match run.as_slice() {
            [] => {}
            [one] => out.push(Piece {
                from_ms: one.from_ms,
                to_ms: one.to_ms,
                kind: Kind::One(one.state),
            }),
            [first, .., last] => {
                let sum = |state| {
                    run.iter()
                        .filter(|s| s.state == state)
                        .map(|s| s.to_ms - s.from_ms)
                        .sum()
                };
                out.push(Piece {
                    from_ms: first.from_ms,
                    to_ms: last.to_ms,
                    kind: Kind::Mixed {
                        down_ms: sum(State::Down),
                        unknown_ms: sum(State::Unknown),
                    },
                });
            }
        }
        run.clear();
    };
    for span in spans {
        if span.to_ms - span.from_ms >= pixel {
            flush(&mut run, &mut out);
            out.push(Piece {
                from_ms: span.from_ms,
                to_ms: span.to_ms,
                kind: Kind::One(span.state),
            });
            continue;
        }
        // A gap (time before the interface was first seen) ends a run.
        if run.last().is_some_and(|last| last.to_ms != span.from_ms) {
            flush(&mut run, &mut out);
        }
        run.push(span);
        if span.to_ms - run[0].from_ms >= pixel {
            flush(&mut run, &mut out);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::timeline::chain;

    const S: i64 = 1000;

    fn span(from: i64, to: i64, state: State) -> Span {
        Span {
            from_ms: from * S,
            to_ms: to * S,
            state,
            prior: state,
        }
    }

    #[test]
    fn spans_are_clipped_and_silence_after_the_last_word_is_unknown() {
        let segs = chain(
            (0, State::Up),
            &[(100, State::Down), (103, State::Up), (200, State::Down)],
        );
        // Starting mid-outage: the first span is the down state, clipped.
        let s = spans(&segs[1..], 101 * S, 300 * S, 300 * S);
        assert_eq!(
            s,
            [
                span(101, 103, State::Down),
                span(103, 200, State::Up),
                span(200, 300, State::Down)
            ]
        );
        // A silent agent: down until its last word at 250, unknown after.
        let s = spans(&segs[1..], 101 * S, 300 * S, 250 * S);
        assert_eq!(s.last().unwrap().state, State::Unknown);
        assert_eq!(s.last().unwrap().prior, State::Down);
        assert_eq!(s[2], span(200, 250, State::Down));
        // Before first seen: no span.
        let s = spans(&segs, -50 * S, 50 * S, 50 * S);
        assert_eq!(s, [span(0, 50, State::Up)]);
        assert!(spans(&segs, 400 * S, 300 * S, 300 * S).is_empty());
    }

    #[test]
    fn figures_count_outages_through_a_silence_and_the_carried_one() {
        let segs = chain(
            (0, State::Up),
            &[
                (100, State::Down),
                (110, State::Unknown),
                (130, State::Down),
                (135, State::Up),
                (200, State::Down),
                (203, State::Up),
                (250, State::Unknown),
                (260, State::Up),
            ],
        );
        let f = figures(&spans(&segs, 0, 300 * S, 300 * S));
        assert_eq!(f.down_ms, 18 * S);
        assert_eq!(f.unknown_ms, 30 * S);
        assert_eq!(f.up_ms, 252 * S);
        assert_eq!(
            f.outages,
            [
                Outage {
                    from_ms: 100 * S,
                    to_ms: Some(135 * S),
                    down_ms: 15 * S
                },
                Outage {
                    from_ms: 200 * S,
                    to_ms: Some(203 * S),
                    down_ms: 3 * S
                }
            ]
        );
        assert_eq!(f.mttr_ms(), Some(9_000.0));
        assert_eq!(f.longest_ms(), Some(15 * S));
        assert_eq!(f.availability(), Some(252.0 / 270.0));
        // The same counts as the running totals give, for any window.
        for since in (0..300).step_by(7) {
            for until in (since + 1..=300).step_by(11) {
                let f = figures(&spans(&segs, since * S, until * S, until * S));
                let at = |t: i64| *segs.iter().rev().find(|s| s.start_ms <= t).unwrap();
                // A change at the very end of the window has no time in
                // it: the segment that ends the window is the one in force
                // just before.
                let m = crate::timeline::measure(
                    &at(since * S),
                    &at(until * S - 1),
                    since * S,
                    until * S,
                    until * S,
                );
                assert_eq!(f.down_ms, m.down_ms, "{since}..{until}");
                assert_eq!(f.unknown_ms, m.unknown_ms, "{since}..{until}");
                assert_eq!(f.outages.len() as i64, m.down_count, "{since}..{until}");
                let window = (until - since) * S;
                assert_eq!(f.availability(), m.availability(window));
            }
        }
        // Still down at the window's end: no end.
        let f = figures(&spans(&segs, 0, 202 * S, 202 * S));
        assert_eq!(f.outages.last().unwrap().to_ms, None);
        assert_eq!(f.outages.last().unwrap().down_ms, 2 * S);
        // A shutdown is no outage.
        let segs = chain((0, State::Up), &[(10, State::AdminDown), (20, State::Up)]);
        let f = figures(&spans(&segs, 0, 30 * S, 30 * S));
        assert!(f.outages.is_empty());
        assert_eq!((f.admin_down_ms, f.mttr_ms()), (10 * S, None));
    }

    #[test]
    fn pieces_join_what_is_narrower_than_a_pixel_and_keep_the_totals() {
        // A flapping link: 1000 changes of 1 s each in a 10,000 s window,
        // then a long up.
        let mut changes = Vec::new();
        for i in 0..1000 {
            let state = if i % 2 == 0 { State::Down } else { State::Up };
            changes.push((1 + i, state));
        }
        let segs = chain((0, State::Up), &changes);
        let s = spans(&segs, 0, 10_000 * S, 10_000 * S);
        let f = figures(&s);
        for width in [1, 10, 100, 1000, 4000] {
            let p = pieces(&s, 10_000 * S, width);
            assert!(p.len() <= 2 * width as usize + 2, "{width}: {}", p.len());
            // Contiguous, covering the same time, the same down and unknown.
            assert_eq!(p[0].from_ms, 0);
            assert_eq!(p.last().unwrap().to_ms, 10_000 * S);
            assert!(p.windows(2).all(|w| w[0].to_ms == w[1].from_ms));
            let down: i64 = p
                .iter()
                .map(|p| match p.kind {
                    Kind::One(State::Down) => p.to_ms - p.from_ms,
                    Kind::One(_) => 0,
                    Kind::Mixed { down_ms, .. } => down_ms,
                })
                .sum();
            assert_eq!(down, f.down_ms, "{width}");
        }
        // Wide enough: every span its own piece.
        let p = pieces(&s, 10_000 * S, 4000);
        assert!(p.len() < s.len());
        let p = pieces(&s[..3], 3 * S, 3);
        assert_eq!(p.len(), 3);
        assert!(p.iter().all(|p| matches!(p.kind, Kind::One(_))));
    }
}
