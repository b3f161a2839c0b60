//! Interface selection by glob: `["eth*", "Eth1-*", "!lo"]`. A name is chosen
//! when it matches an include and no exclude; a list of only excludes starts
//! from every interface. Resolved once per interface, never per tick.

use thiserror::Error;

#[derive(Debug, Error)]
#[error("bad interface glob {pattern:?}: {reason}")]
pub struct GlobError {
    /// Which entry of the list, counted from 0.
    pub index: usize,
    pub pattern: String,
    pub reason: String,
}

/// One compiled glob: `*` any run of characters (`/` included, for NX-OS
/// names like `Ethernet1/1`), `?` one character, `[a-z0-9]` and `[!x]` sets,
/// `\` escapes the next character.
#[derive(Debug, Clone, PartialEq)]
struct Glob(Vec<Token>);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    Any,
    Star,
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    fn parse(pattern: &str) -> Result<Glob, String> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => {
                    // Consecutive stars mean the same as one.
                    if tokens.last() == Some(&Token::Star) {
                        continue;
                    }
                    Token::Star
                }
                '?' => Token::Any,
                '\\' => Token::Literal(chars.next().ok_or("a trailing \\ escapes nothing")?),
                '[' => {
                    let negated = chars.next_if(|&c| c == '!' || c == '^').is_some();
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let c = chars.next().ok_or("unclosed `[`; close the set with `]`")?;
                        if c == ']' && !first {
                            break;
                        }
                        first = false;
                        let lo = if c == '\\' {
                            chars.next().ok_or("unclosed `[`; close the set with `]`")?
                        } else {
                            c
                        };
                        let hi = if chars.peek() == Some(&'-') {
                            chars.next();
                            match chars.next() {
                                Some(']') => {
                                    // `[a-]`: a literal dash at the end.
                                    ranges.push((lo, lo));
                                    ranges.push(('-', '-'));
                                    break;
                                }
                                Some(hi) if hi >= lo => hi,
                                Some(hi) => {
                                    return Err(format!("range `{lo}-{hi}` runs backwards"));
                                }
                                None => return Err("unclosed `[`; close the set with `]`".into()),
                            }
                        } else {
                            lo
                        };
                        ranges.push((lo, hi));
                    }
                    Token::Set { negated, ranges }
                }
                c => Token::Literal(c),
            });
        }
        Ok(Glob(tokens))
    }

    /// Iterative matching with one backtrack point per star: linear in
    /// practice, never exponential.
    fn matches(&self, name: &str) -> bool {
        let text: Vec<char> = name.chars().collect();
        let tokens = &self.0;
        let (mut t, mut n) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while n < text.len() {
            let step = match tokens.get(t) {
                Some(Token::Star) => {
                    star = Some((t, n));
                    t += 1;
                    continue;
                }
                Some(Token::Any) => true,
                Some(Token::Literal(c)) => *c == text[n],
                Some(Token::Set { negated, ranges }) => {
                    let inside = ranges
                        .iter()
                        .any(|&(lo, hi)| lo <= text[n] && text[n] <= hi);
                    inside != *negated
                }
                None => false,
            };
            if step {
                t += 1;
                n += 1;
            } else if let Some((st, sn)) = star {
                // Let the last star swallow one more character and retry.
                t = st + 1;
                n = sn + 1;
                star = Some((st, sn + 1));
            } else {
                return false;
            }
        }
        tokens[t..].iter().all(|tok| *tok == Token::Star)
    }
}

#[derive(Debug, Clone)]
pub struct InterfaceMatcher {
    include: Vec<Glob>,
    exclude: Vec<Glob>,
    patterns: Vec<String>,
}

impl InterfaceMatcher {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<InterfaceMatcher, GlobError> {
        let mut include = Vec::new();
        let mut exclude = Vec::new();
        for (index, pattern) in patterns.iter().enumerate() {
            let pattern = pattern.as_ref();
            let error = |reason: String| GlobError {
                index,
                pattern: pattern.to_string(),
                reason,
            };
            let (negated, glob) = match pattern.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, pattern),
            };
            if glob.is_empty() {
                return Err(error("empty pattern".into()));
            }
            let glob = Glob::parse(glob).map_err(error)?;
            if negated {
                exclude.push(glob);
            } else {
                include.push(glob);
            }
        }
        Ok(InterfaceMatcher {
            include,
            exclude,
            patterns: patterns.iter().map(|p| p.as_ref().to_string()).collect(),
        })
    }

    /// Every interface.
    pub fn all() -> InterfaceMatcher {
        InterfaceMatcher::new::<&str>(&[]).expect("empty list is valid")
    }

    /// Whether `name` is chosen. An NX-OS name is also tried in its Linux
    /// form, so `Eth1-*` chooses `Ethernet1/1` and `!Eth1-2` leaves out
    /// `Ethernet1/2`: a config works with either source on a Nexus switch.
    pub fn matches(&self, name: &str) -> bool {
        let alias = crate::ifname::linux_name(name);
        let alias = (alias != name).then_some(alias);
        let hit = |g: &Glob| g.matches(name) || alias.as_deref().is_some_and(|a| g.matches(a));
        (self.include.is_empty() || self.include.iter().any(hit)) && !self.exclude.iter().any(hit)
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

impl PartialEq for InterfaceMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nxos_names_match_their_linux_form() {
        let m = InterfaceMatcher::new(&["Eth1-*", "po*", "!Eth1-2"]).unwrap();
        assert!(m.matches("Ethernet1/1"));
        assert!(m.matches("Eth1-1"));
        assert!(!m.matches("Ethernet1/2"));
        assert!(m.matches("port-channel10"));
        assert!(!m.matches("Vlan10"));
        let native = InterfaceMatcher::new(&["Ethernet1/*"]).unwrap();
        assert!(native.matches("Ethernet1/7"));
    }

    #[test]
    fn includes_and_excludes() {
        let m = InterfaceMatcher::new(&["eth*", "Eth1-*", "swp*", "!eth9"]).unwrap();
        assert!(m.matches("eth0"));
        assert!(m.matches("Eth1-48"));
        assert!(m.matches("swp12"));
        assert!(!m.matches("eth9"));
        assert!(!m.matches("lo"));
        assert!(!m.matches("veth0"));
    }

    #[test]
    fn only_excludes_start_from_everything() {
        let m = InterfaceMatcher::new(&["!lo"]).unwrap();
        assert!(m.matches("eth0"));
        assert!(!m.matches("lo"));
    }

    #[test]
    fn star_crosses_slashes_in_nxos_names() {
        let m = InterfaceMatcher::new(&["Ethernet1/*"]).unwrap();
        assert!(m.matches("Ethernet1/12"));
    }

    #[test]
    fn glob_syntax() {
        let m = |p: &str, name: &str| InterfaceMatcher::new(&[p]).unwrap().matches(name);
        assert!(m("eth?", "eth1"));
        assert!(!m("eth?", "eth10"));
        assert!(m("swp[1-4]", "swp3"));
        assert!(!m("swp[1-4]", "swp5"));
        assert!(m("swp[!1-4]", "swp5"));
        assert!(m("Eth1-[0-9]*", "Eth1-48"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("**x", "abx"));
        assert!(m(r"eth\*", "eth*"));
        assert!(!m(r"eth\*", "eth0"));
        assert!(m("[]]x", "]x"));
        assert!(m("[a-]", "-"));
        assert!(m("*0", "💩0"));
        assert!(InterfaceMatcher::new(&["swp[4-1]"]).is_err());
        assert!(InterfaceMatcher::new(&["eth\\"]).is_err());
    }

    #[test]
    fn bad_glob_names_its_index() {
        let e = InterfaceMatcher::new(&["eth*", "[eth"]).unwrap_err();
        assert_eq!(e.index, 1);
        assert!(e.to_string().contains("[eth"));
    }
}
