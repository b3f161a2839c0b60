//! A whole `/proc/net/dev` text into a snapshot, reusing last tick's work:
//! a line unchanged since the previous text is not parsed again.

use super::line::{ParseError, check_header, is_blank, next_line, parse_row};
use crate::metric::{COUNTER_COLUMNS, Columns, PROC_NET_DEV_COLUMNS};
use crate::source::{CounterRow, Snapshot};
use std::ops::Range;

/// Parses a whole `/proc/net/dev` text into a new snapshot.
pub fn parse_proc_net_dev(text: &str) -> Result<Snapshot, ParseError> {
    let mut snapshot = Snapshot::default();
    parse_into(text, &mut snapshot)?;
    Ok(snapshot)
}

/// Parses a whole `/proc/net/dev` text into `snapshot`, replacing what it
/// held but keeping its allocations: the row vector and, for rows that come
/// back in the same order as last time, the name strings.
///
/// On error the snapshot is left empty.
pub fn parse_into(text: &str, snapshot: &mut Snapshot) -> Result<(), ParseError> {
    Reparser::default().parse_into(text.as_bytes(), snapshot)
}

/// A parser that remembers the good rows of the text it parsed last, so that
/// a line byte for byte the same as one of them is not parsed again.
///
/// On a quiet switch most counters sit still from one tick to the next, and
/// comparing a line with its old self costs a fraction of reading sixteen
/// numbers out of it. A line is matched by its content: the old line next in
/// order, or the one after it (an interface vanished), must be identical,
/// newline included, so a row is only ever taken from the very bytes it was
/// parsed from.
#[derive(Debug, Default)]
pub struct Reparser {
    /// Holds the last text parsed, perhaps followed by stale bytes.
    previous: Vec<u8>,
    /// Its good rows, in order.
    pub(super) known: Vec<KnownLine>,
    /// The rows of the text being parsed, to become `known`.
    seen: Vec<KnownLine>,
}

/// A good row of the previous text: where its line lay, newline included,
/// and what it parsed to. Rows whose names needed a lossy decoding are not
/// kept; they are parsed every time.
#[derive(Debug, Clone)]
pub(super) struct KnownLine {
    line: Range<usize>,
    /// Within the line.
    name: Range<usize>,
    pub(super) counters: [u64; PROC_NET_DEV_COLUMNS],
}

impl KnownLine {
    fn name<'a>(&self, text: &'a [u8]) -> &'a [u8] {
        &text[self.line.start..][self.name.clone()]
    }
}

impl Reparser {
    /// Parses a whole `/proc/net/dev` text into `snapshot`, as [`parse_into`]
    /// does, taking the rows of lines unchanged since the last call from it.
    ///
    /// The text need not be UTF-8: the kernel allows any byte but '/', ':'
    /// and whitespace in interface names, and one such name must not cost the
    /// whole tick, so a name that is not UTF-8 is decoded lossily. Only the
    /// names and the header are decoded; the counters are digits or wrong.
    pub fn parse_into(&mut self, text: &[u8], snapshot: &mut Snapshot) -> Result<(), ParseError> {
        self.fill(text, snapshot)?;
        self.previous.clear();
        self.previous.extend_from_slice(text);
        Ok(())
    }

    /// [`Reparser::parse_into`] on the first `length` bytes of `buffer`,
    /// which it keeps for the next call, handing back the buffer it kept
    /// before: a reader that reads into the same buffer each time saves
    /// copying the text.
    pub fn parse_buffer(
        &mut self,
        buffer: &mut Vec<u8>,
        length: usize,
        snapshot: &mut Snapshot,
    ) -> Result<(), ParseError> {
        self.fill(&buffer[..length], snapshot)?;
        std::mem::swap(&mut self.previous, buffer);
        Ok(())
    }

    /// Parses `text`, and on success makes its good rows the known ones; the
    /// caller then keeps `text` as the previous text.
    fn fill(&mut self, text: &[u8], snapshot: &mut Snapshot) -> Result<(), ParseError> {
        self.seen.clear();
        let result = self.fill_rows(text, snapshot);
        if result.is_ok() {
            std::mem::swap(&mut self.known, &mut self.seen);
        } else {
            self.known.clear();
        }
        result
    }

    fn fill_rows(&mut self, text: &[u8], snapshot: &mut Snapshot) -> Result<(), ParseError> {
        snapshot.skipped.clear();
        let mut pos = 0;
        let title = next_line(text, &mut pos);
        let columns = next_line(text, &mut pos);
        if let Err(error) = check_header(title, columns) {
            snapshot.rows.clear();
            return Err(error);
        }

        let known = self.known.as_slice();
        let previous = self.previous.as_slice();
        // The old row the next line is expected to repeat.
        let mut next_known = 0;
        let mut number = 2;
        let mut filled = 0;
        while pos < text.len() {
            number += 1;
            let unchanged = (next_known..known.len().min(next_known + 2)).find(|&k| {
                let line = &known[k].line;
                text.get(pos..pos + line.len())
                    .is_some_and(|new| same_bytes(new, &previous[line.clone()]))
            });
            if let Some(k) = unchanged {
                let old = &known[k];
                let slot = slot(snapshot, filled);
                let name = old.name(previous);
                if slot.name.as_bytes() != name {
                    // Kept names were UTF-8 when first parsed, and these are
                    // the same bytes.
                    slot.name.clear();
                    slot.name.push_str(&String::from_utf8_lossy(name));
                }
                slot.counters[..PROC_NET_DEV_COLUMNS].copy_from_slice(&old.counters);
                self.seen.push(KnownLine {
                    line: pos..pos + old.line.len(),
                    name: old.name.clone(),
                    counters: old.counters,
                });
                pos += old.line.len();
                filled += 1;
                next_known = k + 1;
                continue;
            }

            let start = pos;
            let line = next_line(text, &mut pos).unwrap_or_default();
            if is_blank(line) {
                continue;
            }
            let slot = slot(snapshot, filled);
            match parse_row(line, slot) {
                Ok(name) => {
                    filled += 1;
                    // Step past the old row this line replaces, if it is the
                    // next one or the one after.
                    if let Some(name) = &name {
                        let parsed = &line[name.clone()];
                        let old = (next_known..known.len().min(next_known + 2))
                            .find(|&k| known[k].name(previous) == parsed);
                        if let Some(k) = old {
                            next_known = k + 1;
                        }
                    }
                    // Only whole lines are kept: a last line without its
                    // newline may be a truncated one.
                    if let Some(name) = name
                        && text[pos - 1] == b'\n'
                    {
                        let mut counters = [0; PROC_NET_DEV_COLUMNS];
                        counters.copy_from_slice(&slot.counters[..PROC_NET_DEV_COLUMNS]);
                        self.seen.push(KnownLine {
                            line: start..pos,
                            name,
                            counters,
                        });
                    }
                }
                Err(problem) => snapshot.skipped.push(format!("line {number}: {problem}")),
            }
        }
        snapshot.rows.truncate(filled);
        Ok(())
    }
}

/// Whether two slices of the same length hold the same bytes, eight at a
/// time. Slice equality calls the C library's `memcmp`, and the static musl
/// build's compares one byte at a time.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let (a_words, a_rest) = a.as_chunks::<8>();
    let (b_words, b_rest) = b.as_chunks::<8>();
    a_words.len() == b_words.len()
        && a_words
            .iter()
            .zip(b_words)
            .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
        && a_rest == b_rest
}

/// The row at `index`, added if the snapshot has fewer.
fn slot(snapshot: &mut Snapshot, index: usize) -> &mut CounterRow {
    if index == snapshot.rows.len() {
        snapshot.rows.push(CounterRow {
            name: String::new(),
            counters: [0; COUNTER_COLUMNS],
            columns: Columns::PROC_NET_DEV,
            link: None,
        });
    }
    &mut snapshot.rows[index]
}
