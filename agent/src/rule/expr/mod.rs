//! The rule expression language, `increase(tx_errors[5s]) > 3`: shaped like
//! PromQL so operators read it without a manual, and parsed once at config
//! load into a [`Condition`] so the engine never touches text on a tick.
//!
//! Grammar, with whitespace allowed between any two tokens, loosest first:
//!
//! ```text
//! condition  := and ("or" and)*
//! and        := comparison (("and" | "unless") comparison)*
//! comparison := sum OP sum  |  "(" condition ")"
//! sum        := product (("+" | "-") product)*
//! product    := unary (("*" | "/") unary)*
//! unary      := "-" unary | primary
//! primary    := NUMBER | METRIC | FUNC "(" METRIC "[" WINDOW "]" ")"
//!             | "flaps" "(" WINDOW ")" | "(" sum ")"
//! FUNC       := increase | rate | changes | avg | min | max
//!             | avg_over | min_over | max_over | avg_over_time | …
//! OP         := > | >= | < | <= | == | !=
//! WINDOW     := a humantime duration up to 24h: 500ms, 5s, 10m, 1h 30m
//! ```
//!
//! Types are checked here, so the engine only ever sees sense: `increase`
//! and `rate` take counters, `changes` gauges; every side of `and`, `or`,
//! `unless` is a comparison and the whole is one; arithmetic and comparisons
//! take numbers; a comparison reads at least one metric.
//!
//! A comparison whose sides cannot be computed this tick (a metric without a
//! value, a division by zero) is *unknown*, and `and`, `or`, `unless` follow
//! three-valued logic: `a or b` is true as soon as one side is, `a and b`
//! false as soon as one side is, and a condition that is still unknown
//! leaves the rule as it was.

mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::metric::Metric;

pub use parse::parse;

/// The longest window a rule may keep: every window lives in memory.
pub const MAX_WINDOW: Duration = Duration::from_secs(86_400);

/// The most distinct windows and metrics one expression reads, so a rule's
/// values this tick fit in a fixed array.
pub const MAX_LEAVES: usize = 8;

/// What a leaf computes from a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    /// A bare metric: its value this tick.
    Latest,
    /// How much a counter grew over the window.
    Increase,
    /// [`Func::Increase`] per second.
    Rate,
    Avg,
    Min,
    Max,
    /// How many times a gauge's value changed over the window.
    Changes,
    /// How many times the link went down and came back up over the window,
    /// from `carrier_changes` and the link state; the metric is
    /// `carrier_changes`.
    Flaps,
}

impl Func {
    /// The functions that take a window, by their first name.
    pub const WINDOWED: [Func; 7] = [
        Func::Increase,
        Func::Rate,
        Func::Avg,
        Func::Min,
        Func::Max,
        Func::Changes,
        Func::Flaps,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Func::Latest => "latest",
            Func::Increase => "increase",
            Func::Rate => "rate",
            Func::Avg => "avg",
            Func::Min => "min",
            Func::Max => "max",
            Func::Changes => "changes",
            Func::Flaps => "flaps",
        }
    }

    /// Looks up a function as written before `(`, PromQL's `*_over_time`
    /// and the shorter `*_over` included; a bare metric has no name.
    pub fn from_name(name: &str) -> Option<Func> {
        let base = name
            .strip_suffix("_over_time")
            .or_else(|| name.strip_suffix("_over"));
        match base {
            Some(base) => Some(Func::from_name(base)?)
                .filter(|f| matches!(f, Func::Avg | Func::Min | Func::Max)),
            None => Func::WINDOWED.into_iter().find(|f| f.name() == name),
        }
    }

    /// Every name a rule may call, for hints and "did you mean".
    pub const NAMES: [&'static str; 13] = [
        "increase",
        "rate",
        "changes",
        "flaps",
        "avg",
        "min",
        "max",
        "avg_over",
        "min_over",
        "max_over",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
    ];

    /// Whether the function reads deltas, which only counters have.
    pub fn needs_counter(self) -> bool {
        matches!(self, Func::Increase | Func::Rate)
    }
}

impl fmt::Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The comparison between two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Cmp {
    /// Longest first, so `>=` is not read as `>` followed by `=`.
    const ALL: [Cmp; 6] = [Cmp::Ge, Cmp::Le, Cmp::Eq, Cmp::Ne, Cmp::Gt, Cmp::Lt];

    pub fn as_str(self) -> &'static str {
        match self {
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
        }
    }

    pub fn holds(self, lhs: f64, rhs: f64) -> bool {
        match self {
            Cmp::Gt => lhs > rhs,
            Cmp::Ge => lhs >= rhs,
            Cmp::Lt => lhs < rhs,
            Cmp::Le => lhs <= rhs,
            Cmp::Eq => lhs == rhs,
            Cmp::Ne => lhs != rhs,
        }
    }
}

impl fmt::Display for Cmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One window function or bare metric an expression reads; the engine keeps
/// one window state per distinct leaf.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Leaf {
    /// [`Func::Latest`] for a bare metric.
    pub func: Func,
    /// `carrier_changes` for [`Func::Flaps`].
    pub metric: Metric,
    /// [`Duration::ZERO`] for [`Func::Latest`].
    pub window: Duration,
    /// Byte offset of the window's text in [`Condition::text`], for errors
    /// the config layer finds (a window shorter than the interval).
    pub at: usize,
}

impl Leaf {
    /// Whether two leaves compute the same thing, wherever written.
    pub fn same(&self, other: &Leaf) -> bool {
        (self.func, self.metric, self.window) == (other.func, other.metric, other.window)
    }

    /// The metrics it reads: `flaps` reads the link state beside the count.
    pub fn reads(&self) -> impl Iterator<Item = Metric> {
        let link = (self.func == Func::Flaps).then_some(Metric::OperUp);
        std::iter::once(self.metric).chain(link)
    }
}

/// Arithmetic between numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

/// A numeric expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Always finite.
    Number(f64),
    /// An index into [`Condition::leaves`].
    Leaf(usize),
    Neg(Box<Expr>),
    Binary(Arith, Box<Expr>, Box<Expr>),
}

impl Expr {
    /// The value, given each leaf's; `None` when a leaf has none, a divisor
    /// is zero, or the result is not a finite number.
    pub fn eval(&self, leaf: &impl Fn(usize) -> Option<f64>) -> Option<f64> {
        let value = match self {
            Expr::Number(n) => *n,
            Expr::Leaf(i) => leaf(*i)?,
            Expr::Neg(e) => -e.eval(leaf)?,
            Expr::Binary(op, a, b) => {
                let (a, b) = (a.eval(leaf)?, b.eval(leaf)?);
                match op {
                    Arith::Add => a + b,
                    Arith::Sub => a - b,
                    Arith::Mul => a * b,
                    Arith::Div if b == 0.0 => return None,
                    Arith::Div => a / b,
                }
            }
        };
        value.is_finite().then_some(value)
    }
}

/// `lhs OP rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub lhs: Expr,
    pub op: Cmp,
    pub rhs: Expr,
    /// Byte ranges of the two sides in [`Condition::text`], for messages.
    pub lhs_text: (usize, usize),
    pub rhs_text: (usize, usize),
}

/// How comparisons combine.
#[derive(Debug, Clone, PartialEq)]
pub enum Logic {
    /// An index into [`Condition::comparisons`].
    Compare(usize),
    And(Box<Logic>, Box<Logic>),
    Or(Box<Logic>, Box<Logic>),
    /// True when the left holds and the right does not.
    Unless(Box<Logic>, Box<Logic>),
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The expression as written (surrounding whitespace trimmed), quoted in
    /// alerts as `expr`.
    pub text: String,
    /// The distinct leaves, in the order written.
    pub leaves: Vec<Leaf>,
    /// Every comparison, in the order written.
    pub comparisons: Vec<Comparison>,
    pub root: Logic,
}

/// What a condition decided this tick, and the comparison that decided it:
/// the one an alert quotes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub holds: bool,
    /// An index into [`Condition::comparisons`].
    pub comparison: usize,
    pub lhs: f64,
    pub rhs: f64,
}

impl Condition {
    /// Decides the condition from each leaf's value; `None` when it is
    /// unknown (see the module documentation).
    pub fn eval(&self, leaf: &impl Fn(usize) -> Option<f64>) -> Option<Verdict> {
        self.decide(&self.root, leaf)
    }

    fn decide(&self, logic: &Logic, leaf: &impl Fn(usize) -> Option<f64>) -> Option<Verdict> {
        match logic {
            Logic::Compare(i) => {
                let c = &self.comparisons[*i];
                let (lhs, rhs) = (c.lhs.eval(leaf)?, c.rhs.eval(leaf)?);
                Some(Verdict {
                    holds: c.op.holds(lhs, rhs),
                    comparison: *i,
                    lhs,
                    rhs,
                })
            }
            Logic::And(a, b) => {
                let (a, b) = (self.decide(a, leaf), self.decide(b, leaf));
                match (a, b) {
                    (Some(v), _) | (_, Some(v)) if !v.holds => Some(v),
                    (Some(v), Some(_)) => Some(v),
                    _ => None,
                }
            }
            Logic::Or(a, b) => {
                let (a, b) = (self.decide(a, leaf), self.decide(b, leaf));
                match (a, b) {
                    (Some(v), _) | (_, Some(v)) if v.holds => Some(v),
                    (Some(v), Some(_)) => Some(v),
                    _ => None,
                }
            }
            Logic::Unless(a, b) => {
                let (a, b) = (self.decide(a, leaf), self.decide(b, leaf));
                match (a, b) {
                    (Some(v), _) if !v.holds => Some(v),
                    (_, Some(v)) if v.holds => Some(Verdict { holds: false, ..v }),
                    (Some(v), Some(_)) => Some(v),
                    _ => None,
                }
            }
        }
    }

    /// A condition that is one comparison of one leaf with a number, as
    /// every rule was before arithmetic: its leaf and threshold.
    pub fn simple(&self) -> Option<(&Leaf, f64)> {
        let [c] = self.comparisons.as_slice() else {
            return None;
        };
        match (&c.lhs, &c.rhs) {
            (Expr::Leaf(i), Expr::Number(n)) => Some((&self.leaves[*i], *n)),
            _ => None,
        }
    }

    /// A side of a comparison as written.
    pub fn side(&self, range: (usize, usize)) -> &str {
        &self.text[range.0..range.1]
    }
}

impl FromStr for Condition {
    type Err = ExprError;

    fn from_str(text: &str) -> Result<Condition, ExprError> {
        parse(text)
    }
}

/// Why an expression did not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// Byte offset into the text given to [`parse`] where the problem starts,
    /// so the config layer can point a caret at it.
    pub offset: usize,
    /// Names the offending input.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ExprError {}
