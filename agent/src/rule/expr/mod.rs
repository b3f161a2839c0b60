//! The rule expression language, `increase(tx_errors[5s]) > 3`: shaped like
//! Prometheus so operators read it without a manual, and parsed once at config
//! load into a [`Condition`] so the engine never touches text on a tick.
//!
//! Grammar, with whitespace allowed between any two tokens:
//!
//! ```text
//! condition := lhs OP NUMBER
//! lhs       := FUNC "(" METRIC "[" WINDOW "]" ")" | METRIC
//! FUNC      := increase | rate | avg | min | max
//! OP        := > | >= | < | <= | == | !=
//! WINDOW    := a humantime duration: 500ms, 5s, 10m, 1h 30m
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::metric::{Kind, Metric};

/// What a condition computes from a metric before comparing it.
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
}

impl Func {
    /// The functions that take a window, as written in rules.
    pub const WINDOWED: [Func; 5] = [Func::Increase, Func::Rate, Func::Avg, Func::Min, Func::Max];

    pub fn name(self) -> &'static str {
        match self {
            Func::Latest => "latest",
            Func::Increase => "increase",
            Func::Rate => "rate",
            Func::Avg => "avg",
            Func::Min => "min",
            Func::Max => "max",
        }
    }

    /// Looks up a function as written before `(`; a bare metric has no name.
    pub fn from_name(name: &str) -> Option<Func> {
        Func::WINDOWED.into_iter().find(|f| f.name() == name)
    }

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

/// The comparison between the computed value and the threshold.
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

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The expression as written (surrounding whitespace trimmed), quoted in
    /// alerts as `expr`.
    pub text: String,
    /// [`Func::Latest`] for a bare metric.
    pub func: Func,
    pub metric: Metric,
    /// [`Duration::ZERO`] for [`Func::Latest`].
    pub window: Duration,
    pub op: Cmp,
    /// Always finite.
    pub threshold: f64,
}

impl Condition {
    /// Whether the computed left-hand `value` satisfies the comparison.
    pub fn holds(&self, value: f64) -> bool {
        self.op.holds(value, self.threshold)
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

const EXAMPLE: &str = "increase(tx_errors[5s]) > 3";
const OPERATORS: &str = "> >= < <= == !=";

/// Parses one rule expression.
pub fn parse(text: &str) -> Result<Condition, ExprError> {
    Parser { text, pos: 0 }.condition()
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn condition(mut self) -> Result<Condition, ExprError> {
        self.skip_ws();
        let start = self.pos;
        if self.rest().is_empty() {
            return Err(error(
                start,
                "empty expression",
                Some(format!("write a condition such as `{EXAMPLE}`")),
            ));
        }
        let (func, metric, window) = self.lhs()?;
        let lhs_end = self.pos;
        self.skip_ws();
        let op = self.operator(&self.text[start..lhs_end])?;
        self.skip_ws();
        let threshold = self.number(op)?;
        self.skip_ws();
        if !self.rest().is_empty() {
            return Err(error(
                self.pos,
                format!("unexpected {} after the threshold", self.found()),
                Some(format!(
                    "an expression ends with its number, as in `{EXAMPLE}`; remove the trailing text"
                )),
            ));
        }
        Ok(Condition {
            text: self.text[start..].trim_end().to_string(),
            func,
            metric,
            window,
            op,
            threshold,
        })
    }

    fn lhs(&mut self) -> Result<(Func, Metric, Duration), ExprError> {
        let Some((name_at, name)) = self.ident() else {
            return Err(error(
                self.pos,
                format!("expected a metric or function, found {}", self.found()),
                Some(format!("write a condition such as `{EXAMPLE}`")),
            ));
        };
        self.skip_ws();
        if !self.eat('(') {
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
                        "wrap it in one of increase, rate, avg, min, max, e.g. `{func}({name}[{window}])`"
                    )),
                ));
            }
            return Ok((Func::Latest, metric, Duration::ZERO));
        }

        let Some(func) = Func::from_name(name) else {
            let functions = "functions: increase, rate, avg, min, max";
            let hint = match closest(name, Func::WINDOWED.iter().map(|f| f.name())) {
                Some(best) => format!("did you mean `{best}`? {functions}"),
                None if Metric::from_name(name).is_some() => {
                    format!("`{name}` is a metric, not a function; {functions}")
                }
                None => functions.to_string(),
            };
            return Err(error(
                name_at,
                format!("unknown function `{name}`"),
                Some(hint),
            ));
        };
        self.skip_ws();
        let Some((metric_at, metric_name)) = self.ident() else {
            return Err(error(
                self.pos,
                format!("expected a metric inside `{func}(`, found {}", self.found()),
                Some(format!("write e.g. `{func}(tx_errors[5s])`")),
            ));
        };
        let metric = self.metric(metric_at, metric_name)?;
        if func.needs_counter() && metric.kind() == Kind::Gauge {
            return Err(error(
                metric_at,
                format!("`{func}` needs a counter, but `{metric}` is a gauge"),
                Some(format!(
                    "use avg, min or max over a gauge (`avg({metric}[1m])`) or the bare `{metric}`; \
                     the gauges are {}",
                    gauge_names()
                )),
            ));
        }
        self.skip_ws();
        if !self.rest().starts_with('[') {
            return Err(error(
                self.pos,
                format!("`{func}` needs a window after `{metric}`"),
                Some(format!("write e.g. `{func}({metric}[5s])`")),
            ));
        }
        let window = self.window()?;
        self.skip_ws();
        if !self.eat(')') {
            return Err(error(
                self.pos,
                format!("expected `)` to close `{func}(`, found {}", self.found()),
                Some(format!("write e.g. `{func}({metric}[5s])`")),
            ));
        }
        Ok((func, metric, window))
    }

    /// Parses `[WINDOW]`; the cursor is on `[`.
    fn window(&mut self) -> Result<Duration, ExprError> {
        let open = self.pos;
        self.pos += 1;
        let Some(len) = self.rest().find(']') else {
            return Err(error(
                open,
                "unclosed `[`",
                Some("close the window, e.g. `[5s]`".to_string()),
            ));
        };
        let raw = &self.rest()[..len];
        let inner_at = self.pos + (raw.len() - raw.trim_start().len());
        let inner = raw.trim();
        self.pos += len + 1;
        let hint = Some("a window is a duration such as `500ms`, `5s` or `10m`".to_string());
        if inner.is_empty() {
            return Err(error(inner_at, "empty window `[]`", hint));
        }
        let window = humantime::parse_duration(inner)
            .map_err(|e| error(inner_at, format!("bad window `{inner}`: {e}"), hint.clone()))?;
        if window.is_zero() {
            return Err(error(
                inner_at,
                format!("window `{inner}` is zero long"),
                hint,
            ));
        }
        Ok(window)
    }

    /// The text inside a `[...]` at the cursor, for a hint; `5s` if unclosed.
    fn window_text_for_hint(&self) -> &'a str {
        let rest = &self.text[self.pos + 1..];
        match rest.find(']') {
            Some(len) if !rest[..len].trim().is_empty() => rest[..len].trim(),
            _ => "5s",
        }
    }

    fn operator(&mut self, lhs: &str) -> Result<Cmp, ExprError> {
        let rest = self.rest();
        if let Some(op) = Cmp::ALL
            .into_iter()
            .find(|op| rest.starts_with(op.as_str()))
        {
            self.pos += op.as_str().len();
            return Ok(op);
        }
        let near = [("=>", ">="), ("=<", "<="), ("=", "=="), ("<>", "!=")]
            .into_iter()
            .find(|(typo, _)| rest.starts_with(typo));
        if let Some((typo, fix)) = near {
            return Err(error(
                self.pos,
                format!("`{typo}` is not a comparison"),
                Some(format!("did you mean `{fix}`? operators: {OPERATORS}")),
            ));
        }
        let message = if rest.is_empty() {
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

    fn number(&mut self, op: Cmp) -> Result<f64, ExprError> {
        let at = self.pos;
        let rest = self.rest();
        // Take the whole word, so `3x` is reported as a bad number rather
        // than as trailing garbage after `3`.
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_')))
            .unwrap_or(rest.len());
        let word = &rest[..len];
        let hint = Some("a threshold is a number such as `3`, `0.5`, `1e6` or `-1`".to_string());
        if word.is_empty() {
            let message = if rest.is_empty() {
                format!("missing threshold after `{op}`")
            } else {
                format!("expected a threshold after `{op}`, found {}", self.found())
            };
            return Err(error(at, message, hint));
        }
        let value: f64 = word.parse().map_err(|_| {
            error(
                at,
                format!("threshold `{word}` is not a number"),
                hint.clone(),
            )
        })?;
        if value.is_nan() {
            return Err(error(
                at,
                format!("threshold `{word}` is not a number"),
                hint,
            ));
        }
        if value.is_infinite() {
            return Err(error(at, format!("threshold `{word}` is not finite"), hint));
        }
        self.pos += len;
        Ok(value)
    }

    fn metric(&self, at: usize, name: &str) -> Result<Metric, ExprError> {
        Metric::from_name(name).ok_or_else(|| {
            let names = Metric::names();
            let hint = if let Some(func) = Func::from_name(name) {
                format!("`{func}` is a function: write e.g. `{func}(tx_errors[5s])`")
            } else if let Some(best) = closest(name, Metric::ALL.iter().map(|m| m.name())) {
                format!("did you mean `{best}`? metrics: {names}")
            } else {
                format!("metrics: {names}")
            };
            error(at, format!("unknown metric `{name}`"), Some(hint))
        })
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, c: char) -> bool {
        let found = self.rest().starts_with(c);
        if found {
            self.pos += c.len_utf8();
        }
        found
    }

    /// An identifier at the cursor, with its offset.
    fn ident(&mut self) -> Option<(usize, &'a str)> {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if len == 0 || rest.as_bytes()[0].is_ascii_digit() {
            return None;
        }
        let at = self.pos;
        self.pos += len;
        Some((at, &rest[..len]))
    }

    /// The next token, quoted, for "found …" messages.
    fn found(&self) -> String {
        let token: String = self
            .rest()
            .split_whitespace()
            .next()
            .unwrap_or("")
            .chars()
            .take(20)
            .collect();
        if token.is_empty() {
            "the end of the expression".to_string()
        } else {
            format!("`{token}`")
        }
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
fn closest<'c>(input: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    let input = input.to_ascii_lowercase();
    candidates
        .map(|c| (edit_distance(&input, c), c))
        .filter(|&(d, c)| d <= 2 && d * 2 < c.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over bytes; names here are ASCII.
fn edit_distance(a: &str, b: &str) -> usize {
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

#[cfg(test)]
mod tests;
