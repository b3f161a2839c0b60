//! Text from elsewhere (interface names, agent and rule names, messages,
//! errors a peer sent) made safe to print on a terminal: a name holding
//! `ESC ] 0 ; … BEL` would otherwise retitle the window, clear the screen or
//! worse. Both binaries' human output goes through here; JSON output needs
//! nothing, serde escapes control characters itself.
//!
//! The escapes read as Rust writes them: a C0 control or DEL as `\xNN`
//! (`\x1b`, `\x07`), a C1 control or a bidirectional-text control as
//! `\u{NN}` (`\u{9b}`, `\u{202e}`), and a backslash as `\\`, so an escaped
//! name never reads the same as another name.
//!
//! Also the one reading of `HOST[:PORT]` that every address in both
//! binaries' configs goes through.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character escaped, line breaks included.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_except(text, None)
}

/// `text` with every control character but `\n` escaped: for a whole
/// rendering whose lines are its own and whose names cannot hold a line
/// break (the kernel refuses whitespace in interface names).
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    escape_except(text, Some('\n'))
}

fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        // Bidirectional overrides and isolates reorder what follows them.
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape_except(text: &str, keep: Option<char>) -> Cow<'_, str> {
    let needs = |c: char| needs_escape(c) && Some(c) != keep;
    let Some(first) = text.find(needs) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if !needs(c) {
            out.push(c);
        } else if c == '\\' {
            out.push_str("\\\\");
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// Splits `HOST[:PORT]` or `[IPv6][:PORT]` (an IPv6 literal has colons of
/// its own, so it comes in brackets as in a URL) into the host, without
/// brackets, and the port, `default_port` when none is written. `bad` words
/// an error about the whole input, so each caller names its own key.
pub fn split_host_port<'a>(
    text: &'a str,
    default_port: u16,
    bad: &dyn Fn(&str) -> String,
) -> Result<(&'a str, u16), String> {
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let Some((ip, after)) = bracketed.split_once(']') else {
            return Err(bad("has an unclosed `[`"));
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad(&format!(
                "has `{ip}` in brackets, which is no IPv6 address"
            )));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| bad("has text after the `]`"))?,
            ),
        };
        (ip, port)
    } else {
        match text.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(bad("looks like a bare IPv6 address; put it in brackets"));
            }
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => {
                return Err(bad(&format!(
                    "has port `{p}`, not a number from 1 to 65535"
                )));
            }
        },
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape("swp1 Eth1/1 ü"), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_are_escaped_as_rust_writes_them() {
        assert_eq!(
            escape("\x1b]0;pwned\x07\x1b[2J"),
            "\\x1b]0;pwned\\x07\\x1b[2J"
        );
        assert_eq!(escape("a\tb\nc\x7f"), "a\\x09b\\x0ac\\x7f");
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(escape("a\\x1b"), "a\\\\x1b");
        assert_eq!(escape_lines("one\x1b[2J\ntwo\n"), "one\\x1b[2J\ntwo\n");
    }

    #[test]
    fn nothing_escaped_is_left_a_control() {
        let all: String = (0..0x3000u32).filter_map(char::from_u32).collect();
        let escaped = escape(&all);
        assert!(
            !escaped.chars().any(needs_escape_but_backslash),
            "{escaped}"
        );
    }

    fn needs_escape_but_backslash(c: char) -> bool {
        c != '\\' && needs_escape(c)
    }
}
