//! Which collector the connection thread dials next, when `address` lists
//! several. A pure state machine over what became of the last attempt, so
//! its rules are tested without a clock or a socket: while a round has
//! addresses it has not tried, the next one is dialled at once; only when
//! every address has just failed does the backoff run (one backoff per
//! round, not per address, so a dead first collector costs no wait). A
//! working session is never left for another address; when it ends, the
//! next round starts again at the first address (passing over the one that
//! just failed), so an agent returns to its preferred collector at a
//! reconnect, never mid-stream. A session that made no progress (welcomed,
//! then failed before any ack) is one more failure in the round under way.

use super::settings::AddressOrder;

/// The addresses' order and how far the current round got.
#[derive(Debug, Clone)]
pub(super) struct Rotation {
    /// Indexes into the configured list, in the order rounds try them.
    order: Vec<usize>,
    /// Position in `order` of the address being tried or connected to.
    at: usize,
    /// The positions that failed in this round.
    failed: Vec<bool>,
    /// A collector refused the hello in this round.
    refused: bool,
    /// A session in this round made progress.
    progressed: bool,
}

/// What to do after an attempt or a session failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Dial this address (an index into the configured list) at once.
    Now(usize),
    /// Every address has just failed: back off, then start a new round at
    /// this address. `refused` when a collector refused the hello in the
    /// round (retrying soon will not change that), `progressed` when a
    /// session in it made progress (the backoff starts over).
    Backoff {
        address: usize,
        refused: bool,
        progressed: bool,
    },
}

impl Rotation {
    /// Rounds over `count` addresses (at least one) in `order`; `seed`
    /// draws the shuffled order.
    pub(super) fn new(count: usize, order: AddressOrder, seed: u64) -> Rotation {
        let count = count.max(1);
        Rotation {
            order: round_order(count, order, seed),
            at: 0,
            failed: vec![false; count],
            refused: false,
            progressed: false,
        }
    }

    /// The address being tried or connected to.
    pub(super) fn current(&self) -> usize {
        self.order[self.at]
    }

    /// Forgets what failed: a new round.
    fn start_round(&mut self) {
        self.failed.fill(false);
        self.refused = false;
        self.progressed = false;
    }

    /// The current address failed before a welcome: it could not be
    /// dialled, TLS failed, or it refused (`refused`) or never answered the
    /// hello.
    pub(super) fn failed(&mut self, refused: bool) -> Next {
        self.refused |= refused;
        self.move_on()
    }

    /// A welcomed session ended. One that made progress (an ack, or up
    /// long enough) kept the agent on that collector as long as it worked;
    /// now a new round begins, at the first address unless that is the one
    /// that ended. One that made none counts as a failure of its address in
    /// the round under way, so collectors that welcome and then fail every
    /// session still cost one backoff per round instead of a storm.
    pub(super) fn ended(&mut self, progressed: bool) -> Next {
        if progressed {
            self.start_round();
            self.progressed = true;
        }
        self.move_on()
    }

    fn move_on(&mut self) -> Next {
        self.failed[self.at] = true;
        if let Some(at) = self.failed.iter().position(|&f| !f) {
            self.at = at;
            return Next::Now(self.order[at]);
        }
        let next = Next::Backoff {
            address: self.order[0],
            refused: self.refused,
            progressed: self.progressed,
        };
        self.at = 0;
        self.start_round();
        next
    }
}

/// `0..count` as listed, or shuffled (Fisher–Yates over a xorshift seeded
/// per agent start: spreading a fleet needs no better randomness).
fn round_order(count: usize, order: AddressOrder, seed: u64) -> Vec<usize> {
    let mut list: Vec<usize> = (0..count).collect();
    if order == AddressOrder::Shuffled {
        let mut rng = seed | 1;
        for i in (1..count).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let j = (rng % (i as u64 + 1)) as usize;
            list.swap(i, j);
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_order(count: usize) -> Rotation {
        Rotation::new(count, AddressOrder::InOrder, 1)
    }

    fn backoff(address: usize) -> Next {
        Next::Backoff {
            address,
            refused: false,
            progressed: false,
        }
    }

    #[test]
    fn a_round_moves_on_at_once_and_backs_off_once_every_address_failed() {
        let mut r = in_order(3);
        assert_eq!(r.current(), 0);
        assert_eq!(r.failed(false), Next::Now(1));
        assert_eq!(r.current(), 1);
        assert_eq!(r.failed(false), Next::Now(2));
        assert_eq!(r.failed(false), backoff(0));
        // The next round starts over at the first address.
        assert_eq!(r.current(), 0);
        assert_eq!(r.failed(false), Next::Now(1));
    }

    #[test]
    fn one_address_backs_off_after_every_failure_as_before() {
        let mut r = in_order(1);
        assert_eq!(r.failed(false), backoff(0));
        assert_eq!(r.failed(false), backoff(0));
        assert_eq!(
            r.ended(true),
            Next::Backoff {
                address: 0,
                refused: false,
                progressed: true
            }
        );
        assert_eq!(
            r.failed(true),
            Next::Backoff {
                address: 0,
                refused: true,
                progressed: false
            }
        );
    }

    #[test]
    fn a_session_that_ends_starts_the_next_round_at_the_first_address() {
        let mut r = in_order(3);
        assert_eq!(r.failed(false), Next::Now(1));
        // Connected to the second: when that session ends, the first is
        // tried again at once, then the third, then the second last.
        assert_eq!(r.ended(true), Next::Now(0));
        assert_eq!(r.failed(false), Next::Now(2));
        assert_eq!(
            r.failed(false),
            Next::Backoff {
                address: 0,
                refused: false,
                progressed: true
            }
        );
    }

    #[test]
    fn the_first_address_breaking_moves_on_to_the_second() {
        let mut r = in_order(2);
        assert_eq!(r.ended(true), Next::Now(1));
        // Back on the second until its session ends; then the first again.
        assert_eq!(r.ended(true), Next::Now(0));
        assert_eq!(r.current(), 0);
    }

    #[test]
    fn sessions_that_fail_after_their_welcome_back_off_once_per_round() {
        let mut r = in_order(2);
        // Both collectors welcome and then fail without an ack.
        assert_eq!(r.ended(false), Next::Now(1));
        assert_eq!(r.ended(false), backoff(0));
        assert_eq!(r.ended(false), Next::Now(1));
        assert_eq!(r.ended(false), backoff(0));
        // A failure to connect and a failed session share the round.
        assert_eq!(r.failed(false), Next::Now(1));
        assert_eq!(r.ended(false), backoff(0));
    }

    #[test]
    fn a_refusal_anywhere_in_a_round_makes_its_backoff_the_longest() {
        let mut r = in_order(2);
        assert_eq!(r.failed(true), Next::Now(1));
        assert_eq!(
            r.failed(false),
            Next::Backoff {
                address: 0,
                refused: true,
                progressed: false
            }
        );
        // A new round forgets it.
        assert_eq!(r.failed(false), Next::Now(1));
        assert_eq!(r.failed(false), backoff(0));
    }

    /// Against a naive model over random outcomes: every round tries each
    /// address once, in the round's order, before a backoff; a session
    /// that made progress starts the round over when it ends.
    #[test]
    fn rounds_match_a_naive_model_over_random_outcomes() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next_rand = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for count in 1..=4 {
            for order in [AddressOrder::InOrder, AddressOrder::Shuffled] {
                let mut r = Rotation::new(count, order, next_rand());
                let list = r.order.clone();
                let mut tried: Vec<usize> = Vec::new();
                for _ in 0..2000 {
                    let current = r.current();
                    assert!(!tried.contains(&current), "{current} twice in {tried:?}");
                    // 0: no connection; 1: a session without progress;
                    // 2: a healthy session, after which a round starts over.
                    let outcome = next_rand() % 4;
                    if outcome == 2 {
                        tried.clear();
                    }
                    tried.push(current);
                    let expected_next = list.iter().copied().find(|a| !tried.contains(a));
                    let next = match outcome {
                        1 => r.ended(false),
                        2 => r.ended(true),
                        _ => r.failed(false),
                    };
                    match (expected_next, next) {
                        (Some(a), Next::Now(b)) => assert_eq!(a, b),
                        (None, Next::Backoff { address, .. }) => {
                            assert_eq!(address, list[0]);
                            tried.clear();
                        }
                        (want, got) => panic!("expected {want:?}, got {got:?}"),
                    }
                    assert_eq!(
                        r.current(),
                        match next {
                            Next::Now(a) | Next::Backoff { address: a, .. } => a,
                        }
                    );
                }
            }
        }
    }

    #[test]
    fn shuffled_orders_are_permutations_that_spread_a_fleet() {
        assert_eq!(round_order(4, AddressOrder::InOrder, 99), vec![0, 1, 2, 3]);
        let mut firsts = [0u32; 3];
        for seed in 0..300u64 {
            let order = round_order(
                3,
                AddressOrder::Shuffled,
                seed.wrapping_mul(0x100_0000_01b3),
            );
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2], "{order:?}");
            firsts[order[0]] += 1;
        }
        // Each collector is first for a fair share of agents.
        assert!(firsts.iter().all(|&n| n > 60), "{firsts:?}");
        assert_eq!(round_order(1, AddressOrder::Shuffled, 5), vec![0]);
    }
}
