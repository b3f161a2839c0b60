//! Random expressions against a naive evaluator: each leaf computed straight
//! from the whole history, the expression evaluated as written, the alert's
//! phases stepped by the definition. The engine, with and without skipping
//! quiet states, must agree on every alert.

use super::windows::Lcg;
use super::*;
use crate::rule::Cmp;
use crate::rule::engine::window::ups;

/// One tick as the naive evaluator sees it.
#[derive(Clone, Copy)]
struct Point {
    at: Nanos,
    rx_errors: u64,
    rx_packets: u64,
    /// (up, carrier changes, speed)
    link: Option<(bool, u64, Option<u64>)>,
}

#[derive(Clone, Copy)]
enum Src {
    RxErrors,
    RxPackets,
    Speed,
    Oper,
}

impl Src {
    fn name(self) -> &'static str {
        match self {
            Src::RxErrors => "rx_errors",
            Src::RxPackets => "rx_packets",
            Src::Speed => "speed_mbps",
            Src::Oper => "oper_up",
        }
    }

    fn value(self, p: &Point) -> Option<f64> {
        match self {
            Src::RxErrors => Some(p.rx_errors as f64),
            Src::RxPackets => Some(p.rx_packets as f64),
            Src::Speed => p.link?.2.filter(|&s| s > 0).map(|s| s as f64),
            Src::Oper => p.link.map(|l| if l.0 { 1.0 } else { 0.0 }),
        }
    }

    fn counter(self, p: &Point) -> u64 {
        match self {
            Src::RxErrors => p.rx_errors,
            _ => p.rx_packets,
        }
    }
}

#[derive(Clone, Copy)]
enum F {
    Latest,
    Increase,
    Rate,
    Avg,
    Min,
    Max,
    Changes,
    Flaps,
}

enum Num {
    Const(f64),
    Leaf(F, Src, Nanos),
    Neg(Box<Num>),
    Bin(char, Box<Num>, Box<Num>),
}

enum Cond {
    Cmp(Num, Cmp, Num),
    Logic(&'static str, Box<Cond>, Box<Cond>),
}

/// The deciding comparison's sides, or `None` for unknown.
type Naive = Option<(bool, f64, f64)>;

fn secs_text(span: Nanos) -> String {
    format!("{}ms", span / 1_000_000)
}

impl Num {
    fn text(&self) -> String {
        match self {
            Num::Const(n) => format!("{n}"),
            Num::Leaf(F::Latest, src, _) => src.name().to_string(),
            Num::Leaf(F::Flaps, _, w) => format!("flaps({})", secs_text(*w)),
            Num::Leaf(f, src, w) => {
                let name = match f {
                    F::Increase => "increase",
                    F::Rate => "rate",
                    F::Avg => "avg_over_time",
                    F::Min => "min",
                    F::Max => "max_over",
                    _ => "changes",
                };
                format!("{name}({}[{}])", src.name(), secs_text(*w))
            }
            Num::Neg(n) => format!("-({})", n.text()),
            Num::Bin(op, a, b) => format!("({} {op} {})", a.text(), b.text()),
        }
    }

    fn reads(&self) -> bool {
        match self {
            Num::Const(_) => false,
            Num::Leaf(..) => true,
            Num::Neg(n) => n.reads(),
            Num::Bin(_, a, b) => a.reads() || b.reads(),
        }
    }

    fn eval(&self, h: &[Point]) -> Option<f64> {
        let v = match self {
            Num::Const(n) => *n,
            Num::Leaf(f, src, w) => leaf(*f, *src, *w, h)?,
            Num::Neg(n) => -n.eval(h)?,
            Num::Bin(op, a, b) => {
                let (a, b) = (a.eval(h)?, b.eval(h)?);
                match op {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a * b,
                    _ if b == 0.0 => return None,
                    _ => a / b,
                }
            }
        };
        v.is_finite().then_some(v)
    }
}

impl Cond {
    fn text(&self) -> String {
        match self {
            Cond::Cmp(a, op, b) => format!("{} {op} {}", a.text(), b.text()),
            Cond::Logic(word, a, b) => format!("({}) {word} ({})", a.text(), b.text()),
        }
    }

    /// Three-valued, as the language documents it.
    fn eval(&self, h: &[Point]) -> Naive {
        match self {
            Cond::Cmp(a, op, b) => {
                let (a, b) = (a.eval(h)?, b.eval(h)?);
                Some((op.holds(a, b), a, b))
            }
            Cond::Logic(word, a, b) => {
                let (a, b) = (a.eval(h), b.eval(h));
                let t = |v: Naive| v.is_some_and(|v| v.0);
                let f = |v: Naive| v.is_some_and(|v| !v.0);
                match *word {
                    "and" if f(a) => a,
                    "and" if f(b) => b,
                    "and" if t(a) && t(b) => a,
                    "or" if t(a) => a,
                    "or" if t(b) => b,
                    "or" if f(a) && f(b) => a,
                    "unless" if f(a) => a,
                    "unless" if t(b) => b.map(|v| (false, v.1, v.2)),
                    "unless" if t(a) && f(b) => a,
                    _ => None,
                }
            }
        }
    }
}

/// A leaf straight from the history: the ticks in `(now - w, now]`.
fn leaf(f: F, src: Src, w: Nanos, h: &[Point]) -> Option<f64> {
    let k = h.len() - 1;
    let now = h[k].at;
    let first = h.iter().position(|p| p.at + w > now).unwrap();
    let inside = &h[first..];
    match f {
        F::Latest => src.value(&h[k]),
        F::Increase | F::Rate => {
            if k == 0 {
                return None;
            }
            let from = first.max(1);
            let sum = src.counter(&h[k]) - src.counter(&h[from - 1]);
            if matches!(f, F::Increase) {
                return Some(sum as f64);
            }
            let before = if first == 0 { h[0].at } else { h[first - 1].at };
            Some(sum as f64 * 1e9 / (now - before) as f64)
        }
        F::Avg | F::Min | F::Max => {
            src.value(&h[k])?;
            let values: Vec<f64> = inside.iter().filter_map(|p| src.value(p)).collect();
            Some(match f {
                F::Avg => values.iter().sum::<f64>() / values.len() as f64,
                F::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
                _ => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            })
        }
        F::Changes => {
            src.value(&h[k])?;
            let mut count = 0;
            for j in first..=k {
                let Some(v) = src.value(&h[j]) else { continue };
                let before = h[..j].iter().rev().find_map(|p| src.value(p));
                count += u64::from(before.is_some_and(|b| b != v));
            }
            Some(count as f64)
        }
        F::Flaps => {
            h[k].link?;
            if k == 0 || h[..k].iter().all(|p| p.link.is_none()) {
                return None;
            }
            let mut count = 0;
            for j in first..=k {
                let Some((up, cc, _)) = h[j].link else {
                    continue;
                };
                let Some((was, was_cc, _)) = h[..j].iter().rev().find_map(|p| p.link) else {
                    continue;
                };
                count += ups(cc - was_cc, was, up);
            }
            Some(count as f64)
        }
    }
}

struct Gen(Lcg);

impl Gen {
    fn window(&mut self) -> Nanos {
        [1000, 2000, 3500, 5000][self.0.next(4) as usize] * 1_000_000
    }

    fn leaf(&mut self) -> Num {
        let w = self.window();
        let (f, src) = match self.0.next(14) {
            0 => (F::Latest, Src::RxErrors),
            1 => (F::Latest, Src::Speed),
            2 => (F::Latest, Src::Oper),
            3 => (F::Increase, Src::RxErrors),
            4 => (F::Increase, Src::RxPackets),
            5 => (F::Rate, Src::RxPackets),
            6 => (F::Avg, Src::Oper),
            7 => (F::Min, Src::Speed),
            8 => (F::Max, Src::Speed),
            9 => (F::Max, Src::RxErrors),
            10 => (F::Changes, Src::Speed),
            11 => (F::Changes, Src::Oper),
            _ => (F::Flaps, Src::Oper),
        };
        Num::Leaf(f, src, w)
    }

    fn num(&mut self, depth: u32) -> Num {
        match self.0.next(10) {
            0..=4 => self.leaf(),
            5 | 6 => Num::Const([0.0, 1.0, 2.0, 0.5, 3.0, 100.0][self.0.next(6) as usize]),
            7 if depth > 0 => Num::Neg(Box::new(self.num(depth - 1))),
            _ if depth > 0 => {
                let op = ['+', '-', '*', '/'][self.0.next(4) as usize];
                Num::Bin(
                    op,
                    Box::new(self.num(depth - 1)),
                    Box::new(self.num(depth - 1)),
                )
            }
            _ => self.leaf(),
        }
    }

    fn cond(&mut self, depth: u32) -> Cond {
        if depth > 0 && self.0.next(3) == 0 {
            let word = ["and", "or", "unless"][self.0.next(3) as usize];
            return Cond::Logic(
                word,
                Box::new(self.cond(depth - 1)),
                Box::new(self.cond(depth - 1)),
            );
        }
        let mut lhs = self.num(2);
        let rhs = self.num(1);
        if !lhs.reads() && !rhs.reads() {
            lhs = self.leaf();
        }
        let op = [Cmp::Gt, Cmp::Ge, Cmp::Lt, Cmp::Le, Cmp::Eq, Cmp::Ne][self.0.next(6) as usize];
        Cond::Cmp(lhs, op, rhs)
    }
}

/// The alert's phases by the definition, for `for` and `keep_firing_for`.
#[derive(Default)]
struct NaiveAlert {
    firing: bool,
    pending: Option<Nanos>,
    clearing: Option<Nanos>,
}

impl NaiveAlert {
    /// The change this tick, with its value.
    fn step(
        &mut self,
        now: Nanos,
        when: Naive,
        clear: Option<Naive>,
        for_: Nanos,
        keep: Nanos,
    ) -> Option<(AlertState, f64)> {
        if !self.firing {
            match when {
                None => return None,
                Some((false, ..)) => {
                    self.pending = None;
                    return None;
                }
                Some((true, lhs, _)) => {
                    let since = *self.pending.get_or_insert(now);
                    if now - since < for_ {
                        return None;
                    }
                    (self.firing, self.pending, self.clearing) = (true, None, None);
                    return Some((AlertState::Firing, lhs));
                }
            }
        }
        let resolving = match clear {
            Some(c) => c,
            None => when.map(|(holds, a, b)| (!holds, a, b)),
        };
        match resolving {
            Some((true, lhs, _)) => {
                let from = *self.clearing.get_or_insert(now);
                if now - from >= keep {
                    (self.firing, self.clearing) = (false, None);
                    return Some((AlertState::Resolved, lhs));
                }
            }
            Some((false, ..)) => self.clearing = None,
            None => {}
        }
        None
    }
}

/// Returns how many alert changes the run made.
fn run(seed: u64) -> usize {
    let mut rng_gen = Gen(Lcg(seed));
    let mut rules = Vec::new();
    let mut naive = Vec::new();
    let mut skipped = 0;
    while rules.len() < 24 {
        let when = rng_gen.cond(2);
        let clear = (rng_gen.0.next(3) == 0).then(|| rng_gen.cond(1));
        let Ok(parsed) = parse(&when.text()) else {
            // More leaves than a condition may read.
            skipped += 1;
            continue;
        };
        let clear_parsed = match clear.as_ref().map(|c| parse(&c.text())) {
            Some(Err(_)) => {
                skipped += 1;
                continue;
            }
            other => other.map(Result::unwrap),
        };
        let for_ = [0, 0, 1500][rng_gen.0.next(3) as usize] * 1_000_000;
        let keep = [0, 0, 2000][rng_gen.0.next(3) as usize] * 1_000_000;
        let mut r = rule(&format!("r{}", rules.len()), "oper_up == 0");
        r.when = parsed;
        r.clear_when = clear_parsed;
        r.for_ = Duration::from_nanos(for_);
        r.keep_firing_for = Duration::from_nanos(keep);
        rules.push(r);
        naive.push((when, clear, for_, keep, NaiveAlert::default()));
    }
    assert!(skipped < 24, "{skipped} expressions skipped");
    let mut fast = Engine::new(rules.clone());
    let mut slow = Engine::new(rules);
    slow.skip_quiet = false;
    let t0 = Instant::now();
    let mut history: Vec<Point> = Vec::new();
    let mut rng = Lcg(seed ^ 0x9e37);
    let (mut at, mut errors, mut packets) = (0u64, 0u64, 0u64);
    let mut link = Some((true, 0u64, Some(1000u64)));
    let mut changes = 0;
    let mut made = 0;
    for tick in 0..500 {
        at += (300 + rng.next(1200)) * 1_000_000;
        // Mostly quiet, so states go quiet and are skipped.
        match rng.next(12) {
            0 => errors += rng.next(4),
            1 => packets += rng.next(2000),
            2 => {
                let (up, cc, speed) = link.unwrap_or((true, changes, Some(1000)));
                link = Some((!up, cc + 1, speed));
            }
            // Down and up between two ticks.
            3 => link = link.map(|(up, cc, speed)| (up, cc + 2 * (1 + rng.next(2)), speed)),
            4 => {
                link = link.map(|(up, cc, _)| {
                    (
                        up,
                        cc,
                        [None, Some(10), Some(100), Some(1000)][rng.next(4) as usize],
                    )
                })
            }
            5 if rng.next(3) == 0 => link = None,
            _ => {}
        }
        if let Some((_, cc, _)) = link {
            changes = cc;
        }
        let point = Point {
            at,
            rx_errors: errors,
            rx_packets: packets,
            link,
        };
        history.push(point);
        let mut counters = [0u64; COUNTER_COLUMNS];
        counters[Metric::RxErrors as usize] = errors;
        counters[Metric::RxPackets as usize] = packets;
        let state = link.map(|(up, cc, speed)| super::link(up, speed, cc));
        let obs = [Observation {
            name: "eth0",
            counters: &counters,
            columns: Columns::ALL,
            link: state.as_ref(),
        }];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        fast.observe(t0 + Duration::from_nanos(at), obs, &mut a);
        slow.observe(t0 + Duration::from_nanos(at), obs, &mut b);
        assert_eq!(a, b, "seed {seed} tick {tick}");
        made += a.len();
        let at = at - history[0].at;
        let expect: Vec<(String, AlertState, f64)> = naive
            .iter_mut()
            .enumerate()
            .filter_map(|(i, (when, clear, for_, keep, alert))| {
                let w = when.eval(&history);
                let c = clear.as_ref().map(|c| c.eval(&history));
                alert
                    .step(at, w, c, *for_, *keep)
                    .map(|(state, value)| (format!("r{i}"), state, value))
            })
            .collect();
        let got: Vec<(String, AlertState, f64)> = a
            .iter()
            .map(|x| (x.rule.clone(), x.state, x.value.unwrap()))
            .collect();
        assert_eq!(
            got.len(),
            expect.len(),
            "seed {seed} tick {tick}: {got:?} vs {expect:?}"
        );
        for (g, e) in got.iter().zip(&expect) {
            assert_eq!((&g.0, g.1), (&e.0, e.1), "seed {seed} tick {tick}");
            assert!(
                (g.2 - e.2).abs() <= 1e-9 * e.2.abs().max(1.0),
                "seed {seed} tick {tick}: {g:?} vs {e:?}"
            );
        }
    }
    made
}

#[test]
fn random_expressions_match_a_naive_evaluation() {
    for seed in 1..=12 {
        let made = run(seed);
        assert!(made > 50, "seed {seed}: only {made} alert changes");
    }
}
