//! The parser's reading of the text itself: blanks, words, numbers and
//! windows, and the limits that keep a hostile expression off the stack.

use std::time::Duration;

use super::{MAX_DEPTH, MAX_OPERATORS, Parser, error};
use crate::rule::expr::{ExprError, MAX_WINDOW};

impl<'a> Parser<'a> {
    /// Parses `[WINDOW]`; the cursor is on `[`. Returns the window and where
    /// its text starts.
    pub(super) fn window(&mut self) -> Result<(Duration, usize), ExprError> {
        let open = self.pos;
        self.pos += 1;
        let Some(len) = self.rest().find(']') else {
            return Err(error(
                open,
                "unclosed `[`",
                Some("close the window, e.g. `[5s]`".to_string()),
            ));
        };
        let at = self.pos;
        self.pos += len + 1;
        self.duration(at, len, "[]")
    }

    /// `flaps(2m)`: the window up to the `)`.
    pub(super) fn bare_window(&mut self) -> Result<(Duration, usize), ExprError> {
        let at = self.pos;
        let len = self.rest().find(')').unwrap_or(self.rest().len());
        self.pos += len;
        self.duration(at, len, "flaps()")
    }

    pub(super) fn duration(
        &self,
        at: usize,
        len: usize,
        empty: &str,
    ) -> Result<(Duration, usize), ExprError> {
        let raw = &self.text[at..at + len];
        let inner_at = at + (raw.len() - raw.trim_start().len());
        let inner = raw.trim();
        let hint = Some("a window is a duration such as `500ms`, `5s` or `10m`".to_string());
        if inner.is_empty() {
            return Err(error(inner_at, format!("empty window `{empty}`"), hint));
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
        if window > MAX_WINDOW {
            return Err(error(
                inner_at,
                format!("window `{inner}` is longer than 24h"),
                Some("hopwatch keeps each window in memory; use 24h or less".into()),
            ));
        }
        Ok((window, inner_at))
    }

    /// The text inside a `[...]` at the cursor, for a hint; `5s` if unclosed.
    pub(super) fn window_text_for_hint(&self) -> &'a str {
        let rest = &self.text[self.pos + 1..];
        match rest.find(']') {
            Some(len) if !rest[..len].trim().is_empty() => rest[..len].trim(),
            _ => "5s",
        }
    }

    pub(super) fn number(&mut self) -> Result<f64, ExprError> {
        let at = self.pos;
        let bytes = self.rest().as_bytes();
        // Take the whole word, so `3x` is reported as a bad number rather
        // than as trailing garbage after `3`; a sign belongs to the word
        // only after an exponent's `e`.
        let mut len = 0;
        while len < bytes.len() {
            let c = bytes[len];
            let sign = matches!(c, b'+' | b'-') && len > 0 && matches!(bytes[len - 1], b'e' | b'E');
            if !(c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_') || sign) {
                break;
            }
            len += 1;
        }
        let word = &self.rest()[..len];
        let value: f64 = word.parse().map_err(|_| {
            error(
                at,
                format!("{} `{word}` is not a number", self.number_word()),
                Some(self.number_hint()),
            )
        })?;
        if !value.is_finite() {
            return Err(error(
                at,
                format!("{} `{word}` is not finite", self.number_word()),
                Some(self.number_hint()),
            ));
        }
        self.pos += len;
        Ok(value)
    }

    pub(super) fn number_word(&self) -> &'static str {
        if self.threshold {
            "threshold"
        } else {
            "number"
        }
    }

    pub(super) fn number_hint(&self) -> String {
        format!(
            "a {} is a number such as `3`, `0.5`, `1e6` or `-1`",
            self.number_word()
        )
    }

    /// Whether the next token can begin a number expression.
    pub(super) fn starts_operand(&self) -> bool {
        self.rest()
            .starts_with(|c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '(' | '-'))
    }

    /// Consumes `word` when it is the next whole word.
    pub(super) fn keyword(&mut self, word: &str) -> bool {
        self.skip_ws();
        let rest = self.rest();
        let whole = rest.starts_with(word)
            && !rest[word.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        if whole {
            self.pos += word.len();
        }
        whole
    }

    pub(super) fn count_operator(&mut self, at: usize) -> Result<(), ExprError> {
        self.operators += 1;
        if self.operators > MAX_OPERATORS {
            return Err(error(
                at,
                format!("more than {MAX_OPERATORS} operators in one expression"),
                Some("split the condition over several rules".into()),
            ));
        }
        Ok(())
    }

    pub(super) fn deeper(&mut self, at: usize) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(error(
                at,
                format!("nested more than {MAX_DEPTH} deep"),
                Some("write the condition with fewer parentheses".into()),
            ));
        }
        Ok(())
    }

    pub(super) fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    pub(super) fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    pub(super) fn eat(&mut self, c: char) -> bool {
        let found = self.rest().starts_with(c);
        if found {
            self.pos += c.len_utf8();
        }
        found
    }

    /// An identifier at the cursor, with its offset.
    pub(super) fn ident(&mut self) -> Option<(usize, &'a str)> {
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
    pub(super) fn found(&self) -> String {
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
