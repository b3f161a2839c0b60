//! The parser: recursive descent over the text, one function per precedence
//! level, each mistake reported where it is with a hint that shows the fix.

use std::time::Duration;

use super::{Arith, Cmp, Comparison, Condition, Expr, ExprError, Func, Leaf, Logic, MAX_LEAVES};
use crate::metric::{Kind, Metric};

mod lex;

const EXAMPLE: &str = "increase(tx_errors[5s]) > 3";
const OPERATORS: &str = "> >= < <= == !=";
/// Nesting deeper than this is a mistake, and the limits keep evaluation's
/// recursion off the end of the stack whatever the input.
const MAX_DEPTH: usize = 32;
const MAX_OPERATORS: usize = 64;

/// Parses one rule expression.
pub fn parse(text: &str) -> Result<Condition, ExprError> {
    let mut p = Parser {
        text,
        pos: 0,
        base: 0,
        leaves: Vec::new(),
        comparisons: Vec::new(),
        depth: 0,
        threshold: false,
        operators: 0,
    };
    p.skip_ws();
    p.base = p.pos;
    if p.rest().is_empty() {
        return Err(error(
            p.pos,
            "empty expression",
            Some(format!("write a condition such as `{EXAMPLE}`")),
        ));
    }
    let node = p.or()?;
    let root = p.need_comparison(node)?;
    p.skip_ws();
    if !p.rest().is_empty() {
        let hint = if p.rest().starts_with(')') {
            "this `)` closes no `(`; remove it".to_string()
        } else {
            format!(
                "an expression ends with its threshold, as in `{EXAMPLE}`; join conditions with and, or, unless"
            )
        };
        return Err(error(
            p.pos,
            format!("unexpected {} after the threshold", p.found()),
            Some(hint),
        ));
    }
    let base = p.base;
    let shift = |(a, b): (usize, usize)| (a - base, b - base);
    Ok(Condition {
        text: text[base..].trim_end().to_string(),
        leaves: p
            .leaves
            .into_iter()
            .map(|l| Leaf {
                at: l.at - base,
                ..l
            })
            .collect(),
        comparisons: p
            .comparisons
            .into_iter()
            .map(|c| Comparison {
                lhs_text: shift(c.lhs_text),
                rhs_text: shift(c.rhs_text),
                ..c
            })
            .collect(),
        root,
    })
}

/// Builds `and`, `or` or `unless` from its two sides.
type Join = fn(Box<Logic>, Box<Logic>) -> Logic;

/// A parsed piece: a number or a truth, and where it was written.
struct Node {
    kind: NodeKind,
    start: usize,
    end: usize,
}

enum NodeKind {
    Value(Expr),
    Truth(Logic),
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    /// Where the expression starts after leading whitespace.
    base: usize,
    leaves: Vec<Leaf>,
    comparisons: Vec<Comparison>,
    depth: usize,
    /// Whether a comparison's right side is being parsed, so a bad number
    /// is called a threshold.
    threshold: bool,
    /// Operators so far: a long chain is as deep a tree as deep nesting.
    operators: usize,
}

impl<'a> Parser<'a> {
    fn or(&mut self) -> Result<Node, ExprError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            let right = self.and()?;
            left = self.join(left, right, "or", Logic::Or)?;
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, ExprError> {
        let mut left = self.comparison()?;
        loop {
            let (word, make): (&str, Join) = if self.keyword("and") {
                ("and", Logic::And)
            } else if self.keyword("unless") {
                ("unless", Logic::Unless)
            } else {
                return Ok(left);
            };
            let right = self.comparison()?;
            left = self.join(left, right, word, make)?;
        }
    }

    fn join(&mut self, left: Node, right: Node, word: &str, make: Join) -> Result<Node, ExprError> {
        let (start, end) = (left.start, right.end);
        self.count_operator(right.start)?;
        let hint = || {
            Some(format!(
                "`{word}` joins comparisons, as in `{EXAMPLE} {word} increase(rx_errors[5s]) > 3`"
            ))
        };
        let left = match left.kind {
            NodeKind::Truth(l) => l,
            NodeKind::Value(_) => {
                return Err(error(
                    left.start,
                    format!(
                        "`{}` before `{word}` is a number, not a comparison",
                        &self.text[left.start..left.end]
                    ),
                    hint(),
                ));
            }
        };
        let right = match right.kind {
            NodeKind::Truth(r) => r,
            NodeKind::Value(_) => {
                return Err(error(
                    right.start,
                    format!(
                        "`{}` after `{word}` is a number, not a comparison",
                        &self.text[right.start..right.end]
                    ),
                    hint(),
                ));
            }
        };
        Ok(Node {
            kind: NodeKind::Truth(make(Box::new(left), Box::new(right))),
            start,
            end,
        })
    }

    fn comparison(&mut self) -> Result<Node, ExprError> {
        let lhs = self.sum()?;
        self.skip_ws();
        let Some(op) = self.operator()? else {
            return Ok(lhs);
        };
        let lhs_text = &self.text[lhs.start..lhs.end];
        let lhs_expr = match lhs.kind {
            NodeKind::Value(e) => e,
            NodeKind::Truth(_) => {
                return Err(error(
                    lhs.start,
                    format!("`{lhs_text}` is a comparison, and `{op}` compares numbers"),
                    Some("join two comparisons with and, or, unless".into()),
                ));
            }
        };
        self.skip_ws();
        if self.rest().is_empty() {
            return Err(error(
                self.pos,
                format!("missing threshold after `{op}`"),
                Some(format!(
                    "write a number or an expression, e.g. `{lhs_text} {op} 3`"
                )),
            ));
        }
        if !self.starts_operand() {
            return Err(error(
                self.pos,
                format!("expected a threshold after `{op}`, found {}", self.found()),
                Some(format!(
                    "write a number or an expression, e.g. `{lhs_text} {op} 3`"
                )),
            ));
        }
        let outer = std::mem::replace(&mut self.threshold, true);
        let rhs = self.sum();
        self.threshold = outer;
        let rhs = rhs?;
        let rhs_expr = match rhs.kind {
            NodeKind::Value(e) => e,
            NodeKind::Truth(_) => {
                return Err(error(
                    rhs.start,
                    format!(
                        "`{}` is a comparison, and `{op}` compares numbers",
                        &self.text[rhs.start..rhs.end]
                    ),
                    Some("join two comparisons with and, or, unless".into()),
                ));
            }
        };
        self.skip_ws();
        let after = self.pos;
        if self.operator()?.is_some() {
            return Err(error(
                after,
                "comparisons do not chain",
                Some(format!(
                    "compare two things at a time and join them with and: `a {op} b and b … c`"
                )),
            ));
        }
        let text = &self.text[lhs.start..rhs.end];
        if !reads_metric(&lhs_expr) && !reads_metric(&rhs_expr) {
            return Err(error(
                lhs.start,
                format!("`{text}` compares no metric"),
                Some(format!("compare a metric or window, e.g. `{EXAMPLE}`")),
            ));
        }
        self.comparisons.push(Comparison {
            lhs: lhs_expr,
            op,
            rhs: rhs_expr,
            lhs_text: (lhs.start, lhs.end),
            rhs_text: (rhs.start, rhs.end),
        });
        Ok(Node {
            kind: NodeKind::Truth(Logic::Compare(self.comparisons.len() - 1)),
            start: lhs.start,
            end: rhs.end,
        })
    }

    fn sum(&mut self) -> Result<Node, ExprError> {
        let mut left = self.product()?;
        loop {
            self.skip_ws();
            let op = if self.eat('+') {
                Arith::Add
            } else if self.eat('-') {
                Arith::Sub
            } else {
                return Ok(left);
            };
            let right = self.product()?;
            left = self.arith(left, right, op)?;
        }
    }

    fn product(&mut self) -> Result<Node, ExprError> {
        let mut left = self.unary()?;
        loop {
            self.skip_ws();
            let op = if self.eat('*') {
                Arith::Mul
            } else if self.eat('/') {
                Arith::Div
            } else {
                return Ok(left);
            };
            let right = self.unary()?;
            if op == Arith::Div
                && matches!(right.kind, NodeKind::Value(Expr::Number(n)) if n == 0.0)
            {
                return Err(error(
                    right.start,
                    "division by zero",
                    Some("divide by a window or metric, or by a number other than 0".into()),
                ));
            }
            left = self.arith(left, right, op)?;
        }
    }

    fn arith(&mut self, left: Node, right: Node, op: Arith) -> Result<Node, ExprError> {
        self.count_operator(right.start)?;
        let sign = match op {
            Arith::Add => '+',
            Arith::Sub => '-',
            Arith::Mul => '*',
            Arith::Div => '/',
        };
        let number = |node: Node| match node.kind {
            NodeKind::Value(e) => Ok(e),
            NodeKind::Truth(_) => Err(error(
                node.start,
                format!(
                    "`{}` is a comparison, and `{sign}` takes numbers",
                    &self.text[node.start..node.end]
                ),
                Some("compare the result instead, e.g. `(a + b) > 3`".into()),
            )),
        };
        let (start, end) = (left.start, right.end);
        let (a, b) = (number(left)?, number(right)?);
        Ok(Node {
            kind: NodeKind::Value(Expr::Binary(op, Box::new(a), Box::new(b))),
            start,
            end,
        })
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        self.skip_ws();
        let start = self.pos;
        if !self.eat('-') {
            return self.primary();
        }
        self.count_operator(start)?;
        self.deeper(start)?;
        let inner = self.unary();
        self.depth -= 1;
        let inner = inner?;
        let expr = match inner.kind {
            NodeKind::Value(Expr::Number(n)) => Expr::Number(-n),
            NodeKind::Value(e) => Expr::Neg(Box::new(e)),
            NodeKind::Truth(_) => {
                return Err(error(
                    start,
                    "`-` takes a number, not a comparison",
                    Some("negate one side of the comparison instead".into()),
                ));
            }
        };
        Ok(Node {
            kind: NodeKind::Value(expr),
            start,
            end: inner.end,
        })
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        self.skip_ws();
        let start = self.pos;
        let rest = self.rest();
        if rest.starts_with('(') {
            self.pos += 1;
            self.deeper(start)?;
            let inner = self.or();
            self.depth -= 1;
            let inner = inner?;
            self.skip_ws();
            if !self.eat(')') {
                let message = if self.rest().is_empty() {
                    "unclosed `(`".to_string()
                } else {
                    format!("expected `)` to close this `(`, found {}", self.found())
                };
                return Err(error(
                    start,
                    message,
                    Some("add the `)` that closes it".into()),
                ));
            }
            return Ok(Node {
                kind: inner.kind,
                start,
                end: self.pos,
            });
        }
        if rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            let value = self.number()?;
            return Ok(Node {
                kind: NodeKind::Value(Expr::Number(value)),
                start,
                end: self.pos,
            });
        }
        let Some((name_at, name)) = self.ident() else {
            return Err(error(
                self.pos,
                format!("expected a metric or function, found {}", self.found()),
                Some(format!("write a condition such as `{EXAMPLE}`")),
            ));
        };
        if matches!(name, "and" | "or" | "unless") {
            return Err(error(
                name_at,
                format!("expected a metric or function, found `{name}`"),
                Some(format!("`{name}` goes between two comparisons")),
            ));
        }
        if let Some(word) = ["nan", "inf", "infinity"]
            .into_iter()
            .find(|w| name.eq_ignore_ascii_case(w))
        {
            let what = if word == "nan" {
                "not a number"
            } else {
                "not finite"
            };
            return Err(error(
                name_at,
                format!("{} `{name}` is {what}", self.number_word()),
                Some(self.number_hint()),
            ));
        }
        self.skip_ws();
        let leaf = if self.eat('(') {
            self.call(name_at, name)?
        } else {
            let metric = self.metric(name_at, name)?;
            self.skip_ws();
            if self.rest().starts_with('[') {
                let window = self.window_text_for_hint();
                let func = match metric.kind() {
                    Kind::Counter => Func::Increase,
                    Kind::Gauge => Func::Avg,
                };
                return Err(error(
                    self.pos,
                    format!("the window `{name}[{window}]` needs a function"),
                    Some(format!(
                        "wrap it in one of increase, rate, changes, avg, min, max, e.g. `{func}({name}[{window}])`"
                    )),
                ));
            }
            // A bare metric ends at its name, not at the blanks after it.
            self.pos = name_at + name.len();
            Leaf {
                func: Func::Latest,
                metric,
                window: Duration::ZERO,
                at: name_at,
            }
        };
        let index = match self.leaves.iter().position(|l| l.same(&leaf)) {
            Some(i) => i,
            None if self.leaves.len() == MAX_LEAVES => {
                return Err(error(
                    start,
                    format!(
                        "more than {MAX_LEAVES} different windows and metrics in one expression"
                    ),
                    Some("split the condition over several rules".into()),
                ));
            }
            None => {
                self.leaves.push(leaf);
                self.leaves.len() - 1
            }
        };
        Ok(Node {
            kind: NodeKind::Value(Expr::Leaf(index)),
            start,
            end: self.pos,
        })
    }

    /// A function call after its `(`.
    fn call(&mut self, name_at: usize, name: &str) -> Result<Leaf, ExprError> {
        let Some(func) = Func::from_name(name) else {
            let functions = format!("functions: {}", Func::NAMES.join(", "));
            let hint = match closest(name, Func::NAMES.into_iter()) {
                Some(best) => format!("did you mean `{best}`? {functions}"),
                None if Metric::from_name(name).is_some() => {
                    format!("`{name}` is a metric, not a function; {functions}")
                }
                None => functions,
            };
            return Err(error(
                name_at,
                format!("unknown function `{name}`"),
                Some(hint),
            ));
        };
        self.skip_ws();
        if func == Func::Flaps {
            let window = if self.rest().starts_with('[') {
                self.window()?
            } else {
                self.bare_window()?
            };
            self.close(func, "2m")?;
            return Ok(Leaf {
                func,
                metric: Metric::CarrierChanges,
                window: window.0,
                at: window.1,
            });
        }
        let Some((metric_at, metric_name)) = self.ident() else {
            return Err(error(
                self.pos,
                format!("expected a metric inside `{name}(`, found {}", self.found()),
                Some(format!("write e.g. `{name}(tx_errors[5s])`")),
            ));
        };
        let metric = self.metric(metric_at, metric_name)?;
        if func.needs_counter() && metric.kind() == Kind::Gauge {
            return Err(error(
                metric_at,
                format!("`{name}` needs a counter, but `{metric}` is a gauge"),
                Some(format!(
                    "use avg, min or max over a gauge (`avg({metric}[1m])`), changes, or the bare `{metric}`; \
                     the gauges are {}",
                    gauge_names()
                )),
            ));
        }
        if func == Func::Changes && metric.kind() == Kind::Counter {
            let flaps = if metric == Metric::CarrierChanges {
                "; for a link that goes down and up, flaps(2m)"
            } else {
                ""
            };
            return Err(error(
                metric_at,
                format!("`changes` counts how often a gauge moved, but `{metric}` is a counter"),
                Some(format!(
                    "use increase({metric}[1m]) for how much it grew{flaps}"
                )),
            ));
        }
        self.skip_ws();
        if !self.rest().starts_with('[') {
            return Err(error(
                self.pos,
                format!("`{name}` needs a window after `{metric}`"),
                Some(format!("write e.g. `{name}({metric}[5s])`")),
            ));
        }
        let (window, at) = self.window()?;
        self.close(func, &format!("{metric}[5s]"))?;
        Ok(Leaf {
            func,
            metric,
            window,
            at,
        })
    }

    fn close(&mut self, func: Func, example: &str) -> Result<(), ExprError> {
        self.skip_ws();
        if self.eat(')') {
            return Ok(());
        }
        Err(error(
            self.pos,
            format!("expected `)` to close `{func}(`, found {}", self.found()),
            Some(format!("write e.g. `{func}({example})`")),
        ))
    }

    /// A comparison operator at the cursor, if there is one; a near miss
    /// (`=`, `=>`) is an error.
    fn operator(&mut self) -> Result<Option<Cmp>, ExprError> {
        let rest = self.rest();
        if rest.starts_with("==") {
            self.pos += 2;
            return Ok(Some(Cmp::Eq));
        }
        let near = [("=>", ">="), ("=<", "<="), ("<>", "!="), ("=", "==")]
            .into_iter()
            .find(|(typo, _)| rest.starts_with(typo));
        if let Some((typo, fix)) = near {
            return Err(error(
                self.pos,
                format!("`{typo}` is not a comparison"),
                Some(format!("did you mean `{fix}`? operators: {OPERATORS}")),
            ));
        }
        let found = Cmp::ALL
            .into_iter()
            .find(|op| rest.starts_with(op.as_str()));
        if let Some(op) = found {
            self.pos += op.as_str().len();
        }
        Ok(found)
    }

    /// Turns a parsed whole (or a side of `and`) into logic, or says what
    /// comparison is missing after it.
    fn need_comparison(&mut self, node: Node) -> Result<Logic, ExprError> {
        let lhs = &self.text[node.start..node.end];
        match node.kind {
            NodeKind::Truth(logic) => Ok(logic),
            NodeKind::Value(_) => {
                self.skip_ws();
                self.operator()?;
                let message = if self.rest().is_empty() {
                    format!("missing comparison after `{lhs}`")
                } else {
                    format!(
                        "expected a comparison after `{lhs}`, found {}",
                        self.found()
                    )
                };
                Err(error(
                    self.pos,
                    message,
                    Some(format!(
                        "add one of {OPERATORS} and a number, e.g. `{lhs} > 3`"
                    )),
                ))
            }
        }
    }

    fn metric(&self, at: usize, name: &str) -> Result<Metric, ExprError> {
        Metric::from_name(name).ok_or_else(|| {
            let names = Metric::names();
            let hint = if let Some(func) = Func::from_name(name) {
                let example = if func == Func::Flaps {
                    "flaps(2m)"
                } else {
                    "tx_errors[5s]"
                };
                if func == Func::Flaps {
                    format!("`{name}` is a function: write e.g. `{example}`")
                } else {
                    format!("`{name}` is a function: write e.g. `{name}({example})`")
                }
            } else if let Some(best) = closest(name, Metric::ALL.iter().map(|m| m.name())) {
                format!("did you mean `{best}`? metrics: {names}")
            } else {
                format!("metrics: {names}")
            };
            error(at, format!("unknown metric `{name}`"), Some(hint))
        })
    }
}

fn reads_metric(expr: &Expr) -> bool {
    match expr {
        Expr::Number(_) => false,
        Expr::Leaf(_) => true,
        Expr::Neg(e) => reads_metric(e),
        Expr::Binary(_, a, b) => reads_metric(a) || reads_metric(b),
    }
}

fn error(offset: usize, message: impl Into<String>, hint: Option<String>) -> ExprError {
    ExprError {
        offset,
        message: message.into(),
        hint,
    }
}

fn gauge_names() -> String {
    Metric::ALL
        .iter()
        .filter(|m| m.kind() == Kind::Gauge)
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The candidate nearest to `input` when it is plausibly a typo of it.
pub(super) fn closest<'c>(
    input: &str,
    candidates: impl Iterator<Item = &'c str>,
) -> Option<&'c str> {
    let input = input.to_ascii_lowercase();
    candidates
        .map(|c| (edit_distance(&input, c), c))
        .filter(|&(d, c)| d <= 2 && d * 2 < c.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over bytes; names here are ASCII.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.as_bytes().iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}
