//! Config diagnostics, one copy for `agent.toml` and `collector.toml`: every
//! mistake in a file is collected with its `file:line:col` and a hint, unknown
//! keys get a "did you mean", and `check-config` prints them all at once.
//! Each binary's validator holds a [`Diagnostics`] and adds its own tables'
//! checks; the tables both files share (`[output.syslog]`) are checked here.

use serde::de::DeserializeOwned;
use std::fmt;
use toml::Spanned;

mod syslog;

pub use syslog::{EVENT_TYPES, RawSyslog, event_types};

/// One problem in a config file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Why a config could not be had: the file was unreadable, or it holds the
/// mistakes listed, in the order they appear.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", Errors(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ConfigError {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid(d) => d,
            ConfigError::Read { .. } => &[],
        }
    }

    /// Reads a config file, for a parser of its text.
    pub fn read(path: &std::path::Path) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })
    }
}

struct Errors<'a>(&'a [Diagnostic]);

impl fmt::Display for Errors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        let n = self.0.len();
        write!(f, "\n{n} error{} in config", if n == 1 { "" } else { "s" })
    }
}

/// A value with the place in the config file it came from, for errors found
/// only when the value is used (a token file that cannot be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl<T> Located<T> {
    /// A diagnostic pointing at this value.
    pub fn diagnostic(&self, message: impl Into<String>, hint: Option<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
            message: message.into(),
            hint,
        }
    }
}

/// The keys each table accepts (`""` is the top level, `"output.syslog"` a
/// nested table), for "did you mean" hints on unknown keys.
pub type KnownKeys = [(&'static str, &'static [&'static str])];

/// The mistakes found so far in one config text, each located in it.
#[derive(Debug)]
pub struct Diagnostics<'a> {
    text: &'a str,
    origin: &'a str,
    errors: Vec<Diagnostic>,
}

impl<'a> Diagnostics<'a> {
    /// For `text`, named `origin` (a path, or `<embedded default>`).
    pub fn new(text: &'a str, origin: &'a str) -> Diagnostics<'a> {
        Diagnostics {
            text,
            origin,
            errors: Vec::new(),
        }
    }

    /// The config text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Records a mistake at a byte offset of the text.
    pub fn error_at(&mut self, offset: usize, message: impl Into<String>, hint: Option<String>) {
        let (line, col) = line_col(self.text, offset);
        self.errors.push(Diagnostic {
            file: self.origin.to_string(),
            line,
            col,
            message: message.into(),
            hint,
        });
    }

    /// Records a mistake in a value.
    pub fn error<T>(&mut self, at: &Spanned<T>, message: impl Into<String>, hint: Option<String>) {
        self.error_at(at.span().start, message, hint);
    }

    /// `value`, remembered with the place of the byte offset `offset`.
    pub fn locate<T>(&self, offset: usize, value: T) -> Located<T> {
        let (line, col) = line_col(self.text, offset);
        Located {
            value,
            file: self.origin.to_string(),
            line,
            col,
        }
    }

    /// Whether no mistake was found.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Every mistake, in the order they appear in the text.
    pub fn finish(mut self) -> Result<(), ConfigError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        self.errors.sort_by_key(|d| (d.line, d.col));
        Err(ConfigError::Invalid(self.errors))
    }

    /// The text deserialized into its raw shape, every key the shape does
    /// not know reported at its place; `None` if the text is no TOML.
    pub fn deserialize<T: DeserializeOwned>(&mut self, known: &KnownKeys) -> Option<T> {
        let mut unknown = Vec::new();
        let raw = match toml::de::Deserializer::parse(self.text)
            .and_then(|de| serde_ignored::deserialize(de, |path| unknown.push(path.to_string())))
        {
            Ok(raw) => raw,
            Err(e) => {
                let offset = e.span().map(|s| s.start).unwrap_or(0);
                self.error_at(offset, e.message().trim().to_string(), None);
                return None;
            }
        };
        for path in unknown {
            self.unknown_key(&path, known);
        }
        Some(raw)
    }

    /// Reports a key the schema does not know, at its position in the file.
    fn unknown_key(&mut self, path: &str, known: &KnownKeys) {
        // `Spanned` wrappers show up in the path as a private field name,
        // and a spanned table as a `?` segment.
        let segments: Vec<&str> = path
            .split('.')
            .filter(|s| !s.starts_with("$__serde_spanned") && *s != "?")
            .collect();
        let key = segments.last().copied().unwrap_or(path);
        let parents = &segments[..segments.len().saturating_sub(1)];
        // An index after the table's name: the key is in an array of tables.
        let in_array = parents.last().is_some_and(|s| s.parse::<usize>().is_ok());
        // Table names without array indices, for the hint lookup.
        let table: Vec<&str> = parents
            .iter()
            .copied()
            .filter(|s| s.parse::<usize>().is_err())
            .collect();
        let table = table.join(".");
        let keys = known
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, keys)| *keys)
            .unwrap_or(&[]);
        let offset = key_offset(self.text, &segments).unwrap_or(0);
        let place = if table.is_empty() {
            "at the top level".to_string()
        } else if in_array {
            format!("in [[{table}]]")
        } else {
            format!("in [{table}]")
        };
        let hint = match closest(key, keys) {
            Some(best) => format!("did you mean `{best}`? valid keys: {}", keys.join(", ")),
            None => format!("valid keys: {}", keys.join(", ")),
        };
        self.error_at(offset, format!("unknown key `{key}` {place}"), Some(hint));
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    // An offset inside a character counts from that character's start.
    let offset = (0..=offset)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

/// The byte offset of the key at `path` (`rule.1.whn`), found by walking the
/// spanned document.
pub fn key_offset(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut value: Option<&Spanned<toml::de::DeValue>> = None;
    for (i, segment) in path.iter().enumerate() {
        if let Some(v) = value {
            match v.get_ref() {
                toml::de::DeValue::Array(items) => {
                    let index: usize = segment.parse().ok()?;
                    value = items.get(index);
                    if let Some(toml::de::DeValue::Table(t)) = value.map(|v| v.get_ref()) {
                        table = t;
                        value = None;
                    }
                    continue;
                }
                toml::de::DeValue::Table(t) => table = t,
                _ => return None,
            }
        }
        let (key, v) = table.get_key_value(*segment)?;
        if i == path.len() - 1 {
            return Some(key.span().start);
        }
        value = Some(v);
    }
    None
}

/// The known key nearest to `key` by edit distance, if it is near enough to
/// be a typo.
pub fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Shape {
        table: Inner,
        tagged: Option<Spanned<Inner>>,
        list: Vec<Inner>,
    }

    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Inner {
        name: Option<Spanned<String>>,
    }

    const KNOWN: &KnownKeys = &[
        ("", &["table", "tagged", "list"]),
        ("table", &["name"]),
        ("tagged", &["name"]),
        ("list", &["name"]),
    ];

    fn check(text: &str) -> Vec<String> {
        let mut d = Diagnostics::new(text, "x.toml");
        let _: Option<Shape> = d.deserialize(KNOWN);
        match d.finish() {
            Ok(()) => Vec::new(),
            Err(e) => e.diagnostics().iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn unknown_keys_are_located_in_every_kind_of_table() {
        let e = check(
            "tabel = 1\n[table]\nnmae = \"a\"\n[tagged]\nnaem = \"b\"\n[[list]]\nname = \"c\"\n[[list]]\nnam = \"d\"\n",
        );
        assert_eq!(
            e,
            [
                "x.toml:1:1: unknown key `tabel` at the top level\n  hint: did you mean `table`? valid keys: table, tagged, list",
                "x.toml:3:1: unknown key `nmae` in [table]\n  hint: did you mean `name`? valid keys: name",
                "x.toml:5:1: unknown key `naem` in [tagged]\n  hint: did you mean `name`? valid keys: name",
                "x.toml:9:1: unknown key `nam` in [[list]]\n  hint: did you mean `name`? valid keys: name",
            ]
        );
    }

    #[test]
    fn syntax_errors_are_located_and_sorted_with_the_rest() {
        let e = check("[table]\nname = \n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("x.toml:2:"), "{e:?}");
        let mut d = Diagnostics::new("a\nbb\nccc", "y");
        d.error_at(6, "third", None);
        d.error_at(0, "first", Some("h".into()));
        let e = d.finish().unwrap_err();
        assert_eq!(
            e.to_string(),
            "y:1:1: first\n  hint: h\ny:3:2: third\n2 errors in config"
        );
    }

    #[test]
    fn positions_count_characters_and_survive_odd_offsets() {
        let text = "a = \"é\"\nb = 1\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 5), (1, 6));
        // Inside the two bytes of `é`: the character's own column.
        assert_eq!(line_col(text, 6), (1, 6));
        assert_eq!(line_col(text, 7), (1, 7));
        assert_eq!(line_col(text, 9), (2, 1));
        assert_eq!(line_col(text, 10_000), (3, 1));
        assert_eq!(key_offset(text, &["b"]), Some(9));
        assert_eq!(key_offset(text, &["c"]), None);
    }

    #[test]
    fn did_you_mean_needs_a_near_key() {
        let known = ["interval", "heartbeat", "state_dir"];
        assert_eq!(closest("intervl", &known), Some("interval"));
        assert_eq!(closest("hartbeat", &known), Some("heartbeat"));
        assert_eq!(closest("colour", &known), None);
    }
}
