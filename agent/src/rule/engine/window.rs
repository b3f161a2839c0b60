//! The window kinds: the state one leaf of a rule keeps between ticks, and
//! how a tick's sample moves it on. See the engine's documentation for the
//! semantics and why each kind holds what it holds.

use std::collections::VecDeque;

use super::{Nanos, Sample, Tick};
use crate::rule::expr::{Func, Leaf};

/// The state one leaf keeps between ticks.
#[derive(Debug)]
pub(super) enum Window {
    Latest,
    /// `increase`, `rate`, `changes` and `flaps`: the non-zero counts
    /// inside the window and their exact sum (a u64 holds 400 Gb/s of bytes
    /// for over a year).
    Sum {
        count: Count,
        entries: VecDeque<(Tick, u64)>,
        sum: u64,
        /// The latest value seen, for `changes` (the value) and `flaps`
        /// (the link, 1 for up): what this tick's is compared with.
        last: Option<f64>,
    },
    /// `avg`: runs of equal values inside the window. The last run is open
    /// (it may go on next tick); the others are closed, and their running
    /// sum and tick count are kept, the sum recomputed exactly once per
    /// window's worth of closed runs so float error cannot build up over
    /// days. Extending the open run touches neither, so a skipped tick's
    /// catch-up does the same arithmetic as stepping it would.
    Avg {
        runs: VecDeque<Run>,
        closed_sum: f64,
        closed_ticks: u64,
        closes: usize,
    },
    /// `min`/`max`: a monotonic queue; the front is the answer, and a value
    /// that can never be the answer again (an older one beaten or equalled
    /// by a newer) is dropped on arrival.
    Extreme {
        max: bool,
        entries: VecDeque<(Tick, f64)>,
    },
}

/// What a [`Window::Sum`] counts each tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Count {
    /// The counter's delta.
    Increase,
    /// The counter's delta, the sum divided by the time it spans.
    Rate,
    /// 1 when the value differs from the one before.
    Changes,
    /// The times the link came back up: see [`ups`].
    Flaps,
}

/// One value held on consecutive ticks `first..=last`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Run {
    value: f64,
    first: Tick,
    last: Tick,
}

impl Run {
    fn ticks(&self) -> u64 {
        self.last - self.first + 1
    }
}

/// What one window made of one tick.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reading {
    /// The leaf's value, `None` when it cannot be computed.
    pub(super) value: Option<f64>,
    /// Whether the same input next tick would leave the window as it is and
    /// give the same value.
    pub(super) steady: bool,
}

impl Window {
    pub(super) fn new(leaf: &Leaf) -> Window {
        let sum = |count| Window::Sum {
            count,
            entries: VecDeque::new(),
            sum: 0,
            last: None,
        };
        match leaf.func {
            Func::Latest => Window::Latest,
            Func::Increase => sum(Count::Increase),
            Func::Rate => sum(Count::Rate),
            Func::Changes => sum(Count::Changes),
            Func::Flaps => sum(Count::Flaps),
            Func::Avg => Window::Avg {
                runs: VecDeque::new(),
                closed_sum: 0.0,
                closed_ticks: 0,
                closes: 0,
            },
            Func::Min | Func::Max => Window::Extreme {
                max: leaf.func == Func::Max,
                entries: VecDeque::new(),
            },
        }
    }

    /// Accounts for skipped ticks `stepped + 1..=through`, which had the
    /// input of tick `stepped`: a run or entry holding that tick's value
    /// held it through them. Deltas were zero and add nothing, and a value
    /// that sat still did not change.
    pub(super) fn catch_up(&mut self, stepped: Tick, through: Tick) {
        match self {
            Window::Avg { runs, .. } => {
                if let Some(run) = runs.back_mut()
                    && run.last == stepped
                {
                    run.last = through;
                }
            }
            Window::Extreme { entries, .. } => {
                if let Some(back) = entries.back_mut()
                    && back.0 == stepped
                {
                    back.0 = through;
                }
            }
            Window::Latest | Window::Sum { .. } => {}
        }
    }

    /// Takes tick `now`'s sample, drops what is before tick `first`, and
    /// returns the leaf's value. `covered` is the time the window's deltas
    /// span, for `rate`.
    pub(super) fn update(
        &mut self,
        now: Tick,
        first: Tick,
        covered: Nanos,
        sample: Option<Sample>,
    ) -> Reading {
        // An unavailable value leaves the window alone, and another tick
        // without one would too.
        let Some(sample) = sample else {
            return Reading {
                value: None,
                steady: true,
            };
        };
        match self {
            Window::Latest => Reading {
                value: Some(sample.value),
                steady: true,
            },
            Window::Sum {
                count,
                entries,
                sum,
                last,
            } => {
                let before = last.replace(sample.value);
                let delta = match count {
                    Count::Changes => Some(u64::from(before.is_some_and(|b| b != sample.value))),
                    Count::Increase | Count::Rate | Count::Flaps => {
                        let (true, Some(delta)) = (covered > 0, sample.delta) else {
                            return Reading {
                                value: None,
                                steady: false,
                            };
                        };
                        match (*count, before) {
                            (Count::Flaps, Some(was)) => {
                                Some(ups(delta, was > 0.0, sample.value > 0.0))
                            }
                            (Count::Flaps, None) => None,
                            _ => Some(delta),
                        }
                    }
                };
                let Some(delta) = delta else {
                    return Reading {
                        value: None,
                        steady: false,
                    };
                };
                // Error, drop and carrier counters sit still nearly always;
                // a zero adds nothing to the sum, so it takes no entry and a
                // quiet interface's window stays empty.
                if delta > 0 {
                    entries.push_back((now, delta));
                    *sum = sum.wrapping_add(delta);
                }
                while let Some(&(t, d)) = entries.front() {
                    if t >= first {
                        break;
                    }
                    entries.pop_front();
                    // Wrapping, so the sum stays exact whenever the window's
                    // true total fits 64 bits, whatever the order of events.
                    *sum = sum.wrapping_sub(d);
                }
                let increase = *sum as f64;
                let value = if *count == Count::Rate {
                    increase * 1e9 / covered as f64
                } else {
                    increase
                };
                Reading {
                    value: Some(value),
                    steady: entries.is_empty(),
                }
            }
            Window::Avg {
                runs,
                closed_sum,
                closed_ticks,
                closes,
            } => {
                let value = sample.value;
                match runs.back_mut() {
                    Some(run) if run.last + 1 == now && run.value.to_bits() == value.to_bits() => {
                        run.last = now;
                    }
                    _ => {
                        if let Some(run) = runs.back() {
                            *closed_sum += run.value * run.ticks() as f64;
                            *closed_ticks += run.ticks();
                            *closes += 1;
                        }
                        runs.push_back(Run {
                            value,
                            first: now,
                            last: now,
                        });
                    }
                }
                while runs.len() > 1 {
                    let Some(run) = runs.front_mut() else { break };
                    if run.first >= first {
                        break;
                    }
                    let held = run.value;
                    let gone = if run.last < first {
                        let gone = run.ticks();
                        runs.pop_front();
                        gone
                    } else {
                        let gone = first - run.first;
                        run.first = first;
                        gone
                    };
                    *closed_ticks -= gone;
                    *closed_sum -= held * gone as f64;
                }
                let Some(open) = runs.back_mut() else {
                    unreachable!("a run was just pushed or extended")
                };
                // The open run holds this tick, which is inside any window.
                open.first = open.first.max(first);
                let open = *open;
                if *closes >= runs.len().max(64) {
                    *closed_sum = runs
                        .iter()
                        .take(runs.len() - 1)
                        .map(|r| r.value * r.ticks() as f64)
                        .sum();
                    *closes = 0;
                }
                // One run is one value: exact, whatever the float error in
                // the sum.
                let value = match runs.len() {
                    1 => open.value,
                    _ => {
                        (*closed_sum + open.value * open.ticks() as f64)
                            / (*closed_ticks + open.ticks()) as f64
                    }
                };
                Reading {
                    value: Some(value),
                    steady: runs.len() == 1,
                }
            }
            Window::Extreme { max, entries } => {
                while let Some(&(_, v)) = entries.back() {
                    let beaten = if *max {
                        v <= sample.value
                    } else {
                        v >= sample.value
                    };
                    if !beaten {
                        break;
                    }
                    entries.pop_back();
                }
                entries.push_back((now, sample.value));
                while entries.front().is_some_and(|&(t, _)| t < first) {
                    entries.pop_front();
                }
                Reading {
                    value: entries.front().map(|&(_, v)| v),
                    steady: entries.len() == 1,
                }
            }
        }
    }

    /// The heap the window holds, for the cost of a long window.
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            Window::Latest => 0,
            Window::Sum { entries, .. } => entries.capacity() * size_of::<(Tick, u64)>(),
            Window::Avg { runs, .. } => runs.capacity() * size_of::<Run>(),
            Window::Extreme { entries, .. } => entries.capacity() * size_of::<(Tick, f64)>(),
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        match self {
            Window::Latest => 0,
            Window::Sum { entries, .. } => entries.len(),
            Window::Avg { runs, .. } => runs.len(),
            Window::Extreme { entries, .. } => entries.len(),
        }
    }
}

/// How many times a link came back up between two ticks, from the carrier
/// count's `delta` and the link state before and now: each down-and-up is
/// two carrier changes, so a flap shorter than a tick still counts. A count
/// that disagrees with the states (a source that counts only some changes)
/// is raised to the least that explains them.
pub(super) fn ups(delta: u64, was_up: bool, up: bool) -> u64 {
    // Wide enough that a reset counter's huge delta cannot overflow.
    let (before, now) = (u128::from(was_up), u128::from(up));
    let mut changes = u128::from(delta).max(before.abs_diff(now));
    if (changes + before + now) % 2 == 1 {
        changes += 1;
    }
    ((changes + now - before) / 2) as u64
}
