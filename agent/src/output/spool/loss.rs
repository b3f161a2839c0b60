//! What the spool reports when it lets events go: exact, gap-free ranges,
//! with what any `loss` event among them had said folded in, so that every
//! lost seq is named by exactly one delivered loss event.

use crate::event::{Body, Event, Loss};
use std::sync::Arc;

/// Events the spool let go of unacknowledged: every seq of `boot` from
/// `first_seq` to `last_seq` (`count` of them; one run, no gap).
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    pub boot: String,
    pub count: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// What the `loss` events among them said: lost in turn, so their
    /// report must be made again.
    pub losses: Vec<Loss>,
}

/// One range of lost seqs to report in one `loss` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossReport {
    pub boot: String,
    pub count: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// How many of `count` an earlier loss event, itself dropped, had named.
    pub carried: u64,
}

impl Dropped {
    /// Every seq of `boot` from `first_seq` to `last_seq`.
    pub fn range(boot: &str, first_seq: u64, last_seq: u64) -> Dropped {
        Dropped {
            boot: boot.to_string(),
            count: last_seq - first_seq + 1,
            first_seq,
            last_seq,
            losses: Vec::new(),
        }
    }

    /// The loss events to emit for this drop: its own range, with the
    /// ranges its dropped loss events named folded in where they adjoin
    /// (the usual case: oldest-first dropping) and reported on their own
    /// where acknowledged events lie between. Each lost seq is named once.
    pub fn reports(self) -> Vec<LossReport> {
        let mut ranges = vec![LossReport {
            boot: self.boot.clone(),
            count: self.count,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            carried: 0,
        }];
        for loss in self.losses {
            ranges.push(LossReport {
                boot: loss.lost_boot.unwrap_or_else(|| self.boot.clone()),
                count: loss.count,
                first_seq: loss.first_seq,
                last_seq: loss.last_seq,
                carried: loss.count,
            });
        }
        ranges.sort_by(|a, b| (&a.boot, a.first_seq).cmp(&(&b.boot, b.first_seq)));
        let mut out: Vec<LossReport> = Vec::new();
        for r in ranges {
            match out.last_mut() {
                Some(last) if last.boot == r.boot && r.first_seq <= last.last_seq + 1 => {
                    last.last_seq = last.last_seq.max(r.last_seq);
                    last.count += r.count;
                    last.carried += r.carried;
                }
                _ => out.push(r),
            }
        }
        out
    }
}

/// The drops for events that leave memory without reaching the spool: one
/// per run of consecutive seqs, with the loss events among them.
pub fn dropped_events(events: &[Arc<Event>]) -> Vec<Dropped> {
    let mut out = Vec::new();
    for e in events {
        let loss = match &e.body {
            Body::Loss(loss) => Some(loss.clone()),
            _ => None,
        };
        note(&mut out, &e.boot, e.seq, loss);
    }
    out
}

/// Adds one dropped seq to the list, extending the last drop when it is
/// the next seq of the same boot, so one full spool makes one loss event,
/// and a gap (events lost before they reached the spool, reported then)
/// starts a new one.
pub(super) fn note(dropped: &mut Vec<Dropped>, boot: &str, seq: u64, loss: Option<Loss>) {
    match dropped.last_mut() {
        Some(last) if last.boot == boot && seq == last.last_seq + 1 => {
            last.count += 1;
            last.last_seq = seq;
            last.losses.extend(loss);
        }
        _ => {
            let mut d = Dropped::range(boot, seq, seq);
            d.losses.extend(loss);
            dropped.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_loss_events_range_is_folded_into_the_next_report() {
        let d = Dropped {
            boot: "b".into(),
            count: 20,
            first_seq: 101,
            last_seq: 120,
            losses: vec![
                Loss {
                    count: 100,
                    first_seq: 1,
                    last_seq: 100,
                    lost_boot: Some("b".into()),
                    message: String::new(),
                },
                Loss {
                    count: 5,
                    first_seq: 1,
                    last_seq: 5,
                    lost_boot: Some("old".into()),
                    message: String::new(),
                },
            ],
        };
        let reports = d.reports();
        assert_eq!(
            reports,
            vec![
                LossReport {
                    boot: "b".into(),
                    count: 120,
                    first_seq: 1,
                    last_seq: 120,
                    carried: 100,
                },
                LossReport {
                    boot: "old".into(),
                    count: 5,
                    first_seq: 1,
                    last_seq: 5,
                    carried: 5,
                },
            ]
        );
        // Acknowledged events between: two ranges, neither spanning them.
        let d = Dropped {
            losses: vec![Loss {
                count: 50,
                first_seq: 1,
                last_seq: 50,
                lost_boot: Some("b".into()),
                message: String::new(),
            }],
            ..Dropped::range("b", 101, 120)
        };
        let ranges: Vec<(u64, u64)> = d
            .reports()
            .iter()
            .map(|r| (r.first_seq, r.last_seq))
            .collect();
        assert_eq!(ranges, vec![(1, 50), (101, 120)]);
    }
}
