//! The `procfs` counter source: `/proc/net/dev`, read and parsed every tick.
//!
//! On a switch with hundreds of ports this runs every second, so the parser
//! splits bytes by hand and allocates nothing per field, a line unchanged
//! since the last tick is not parsed again, and the reader keeps its buffer
//! between ticks.

use super::{CounterRow, CounterSource, Snapshot, SourceError};
use crate::metric::{COUNTER_COLUMNS, Columns, Metric, PROC_NET_DEV_COLUMNS};
use std::borrow::Cow;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The words of the first header line, between its `|` separators.
const TITLE: [&str; 3] = ["Inter-", "Receive", "Transmit"];
const TITLE_LINE: &str = "the title line \"Inter-| Receive | Transmit\"";

/// The words of the second header line: the interface column, then the
/// receive and transmit column groups. Checking them guards the column order
/// that [`Metric::column`] relies on.
const FACE: &str = "face";
const RECEIVE: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "frame",
    "compressed",
    "multicast",
];
const TRANSMIT: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "colls",
    "carrier",
    "compressed",
];
const COLUMNS_LINE: &str = "the column line \"face |bytes packets errs drop fifo frame compressed \
     multicast|bytes packets errs drop fifo colls carrier compressed\"";

/// How much of an unexpected line an error quotes.
const EXCERPT_CHARS: usize = 80;

/// Why a whole `/proc/net/dev` text was rejected. A bad interface row is not
/// an error: it lands in [`Snapshot::skipped`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("the file is empty; expected {TITLE_LINE}")]
    Empty,
    #[error("the file ends at line {line}; expected {expected}")]
    MissingHeader { line: usize, expected: &'static str },
    #[error("line {line}: expected {expected}, found {found:?}")]
    Header {
        line: usize,
        expected: &'static str,
        found: String,
    },
}

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
    known: Vec<KnownLine>,
    /// The rows of the text being parsed, to become `known`.
    seen: Vec<KnownLine>,
}

/// A good row of the previous text: where its line lay, newline included,
/// and what it parsed to. Rows whose names needed a lossy decoding are not
/// kept; they are parsed every time.
#[derive(Debug, Clone)]
struct KnownLine {
    line: Range<usize>,
    /// Within the line.
    name: Range<usize>,
    counters: [u64; PROC_NET_DEV_COLUMNS],
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

/// The line starting at `*pos`, without its newline, and moves `*pos` past
/// the newline; `None` at the end of the text.
fn next_line<'a>(text: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let start = *pos;
    if start >= text.len() {
        return None;
    }
    let end = find_newline(text, start);
    *pos = (end + 1).min(text.len());
    Some(&text[start..end])
}

/// The index of the first newline at or after `i`, or the text's length.
///
/// Eight bytes at a time, as [`skip_whitespace`] does: a byte at a time
/// costs as much as the rest of a changed line's parse.
fn find_newline(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const NEWLINES: u64 = u64::from_ne_bytes([b'\n'; 8]);
    while let Some(chunk) = bytes[i..].first_chunk::<8>() {
        // A byte of `x` is zero where the text has a newline. The lowest byte
        // flagged is always a true zero (a borrow only runs upwards), and it
        // is the first in the text since the load is little-endian.
        let x = u64::from_le_bytes(*chunk) ^ NEWLINES;
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return i + (zeros.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && bytes[i] != b'\n' {
        i += 1;
    }
    i
}

/// Whether a line holds only whitespace, as `str::trim` sees it. Lines are
/// ASCII in practice, so the Unicode check runs only on a line whose first
/// non-space byte is not.
fn is_blank(line: &[u8]) -> bool {
    match line.iter().find(|b| !b.is_ascii_whitespace()) {
        None => true,
        Some(&b) if b.is_ascii() => false,
        Some(_) => String::from_utf8_lossy(line).trim().is_empty(),
    }
}

/// Consumes the two header lines and checks that they announce the sixteen
/// columns in the order this parser assumes.
fn check_header(title: Option<&[u8]>, columns: Option<&[u8]>) -> Result<(), ParseError> {
    let Some(title) = title.map(header_text) else {
        return Err(ParseError::Empty);
    };
    let title = title.as_ref();
    let title_ok = title.split('|').map(str::trim).eq(TITLE.iter().copied());
    if !title_ok {
        return Err(header_error(1, TITLE_LINE, title));
    }

    let Some(columns) = columns.map(header_text) else {
        return Err(ParseError::MissingHeader {
            line: 2,
            expected: COLUMNS_LINE,
        });
    };
    let columns = columns.as_ref();
    let mut groups = columns.split('|');
    let columns_ok = groups.next().is_some_and(|face| face.trim() == FACE)
        && groups
            .next()
            .is_some_and(|rx| rx.split_ascii_whitespace().eq(RECEIVE.iter().copied()))
        && groups
            .next()
            .is_some_and(|tx| tx.split_ascii_whitespace().eq(TRANSMIT.iter().copied()))
        && groups.next().is_none();
    if !columns_ok {
        return Err(header_error(2, COLUMNS_LINE, columns));
    }
    Ok(())
}

/// A header line as text, without the '\r' of a "\r\n" ending, as
/// `str::lines` gives it.
fn header_text(line: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line))
}

fn header_error(line: usize, expected: &'static str, found: &str) -> ParseError {
    let found = match found.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}...", &found[..end]),
        None => found.to_string(),
    };
    ParseError::Header {
        line,
        expected,
        found,
    }
}

/// Why one interface row was skipped. Kept as data until a description is
/// needed so that a good row costs no formatting.
enum RowProblem<'a> {
    NoSeparator,
    NoName,
    Count {
        name: Cow<'a, str>,
        found: usize,
    },
    NotANumber {
        name: Cow<'a, str>,
        column: usize,
        field: &'a [u8],
    },
}

impl std::fmt::Display for RowProblem<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowProblem::NoSeparator => f.write_str("no ':' after the interface name"),
            RowProblem::NoName => f.write_str("no interface name before the ':'"),
            RowProblem::Count { name, found } => {
                write!(
                    f,
                    "{name}: expected {PROC_NET_DEV_COLUMNS} counters, found {found}"
                )
            }
            RowProblem::NotANumber {
                name,
                column,
                field,
            } => write!(
                f,
                "{name}: counter {} ({}) is not a 64-bit unsigned number: {:?}",
                column + 1,
                Metric::ALL[*column],
                String::from_utf8_lossy(field),
            ),
        }
    }
}

/// Parses `name: c1 c2 ... c16` into `row`, reusing its name string. Returns
/// where the name lies in the line, unless it had to be decoded lossily.
///
/// The kernel prints the name with `%6s:`; older kernels print no space after
/// the colon, so a huge first counter runs into it (`eth0:18446744073709551615`).
/// Counters never contain a colon, so the separator is the line's last colon,
/// which also keeps names that contain one (`ibr10:30`) whole.
fn parse_row<'a>(
    line: &'a [u8],
    row: &mut CounterRow,
) -> Result<Option<Range<usize>>, RowProblem<'a>> {
    let colon = line
        .iter()
        .rposition(|&b| b == b':')
        .ok_or(RowProblem::NoSeparator)?;
    let (name, span) = match String::from_utf8_lossy(&line[..colon]) {
        Cow::Borrowed(untrimmed) => {
            let name = untrimmed.trim();
            let start = untrimmed.len() - untrimmed.trim_start().len();
            (Cow::Borrowed(name), Some(start..start + name.len()))
        }
        Cow::Owned(untrimmed) => (Cow::Owned(untrimmed.trim().to_string()), None),
    };
    if name.is_empty() {
        return Err(RowProblem::NoName);
    }

    // One pass over the bytes, reading each field's value as its extent is
    // found: this loop is most of the agent's parsing time.
    let bytes = &line[colon + 1..];
    let mut found = 0;
    let mut first_bad = None;
    let mut i = 0;
    loop {
        i = skip_whitespace(bytes, i);
        if i == bytes.len() {
            break;
        }
        let start = i;
        let mut value: u64 = 0;
        let mut digits_only = true;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            let digit = bytes[i].wrapping_sub(b'0');
            digits_only &= digit <= 9;
            value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
            i += 1;
        }
        // Nineteen digits always fit in a u64; longer fields may wrap, so
        // only they pay for a checked parse.
        let fits = i - start < 20 || parse_u64(&bytes[start..i]).is_some();
        if found < PROC_NET_DEV_COLUMNS {
            if digits_only && fits {
                row.counters[found] = value;
            } else if first_bad.is_none() {
                first_bad = Some((found, start..i));
            }
        }
        found += 1;
    }
    // A wrong count is reported first: a line cut off by truncation usually
    // ends in a number that parses but holds fewer columns.
    if found != PROC_NET_DEV_COLUMNS {
        return Err(RowProblem::Count { name, found });
    }
    if let Some((column, field)) = first_bad {
        return Err(RowProblem::NotANumber {
            name,
            column,
            field: &bytes[field],
        });
    }

    if row.name != name {
        row.name.clear();
        row.name.push_str(&name);
    }
    Ok(span)
}

/// The index of the first non-whitespace byte at or after `i`.
///
/// Most of `/proc/net/dev` is the spaces that pad its columns, and a loop of
/// one byte at a time spends half the parse on them; eight spaces at a time
/// halves that.
fn skip_whitespace(bytes: &[u8], mut i: usize) -> usize {
    const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);
    while let Some(chunk) = bytes[i..].first_chunk::<8>() {
        // Little-endian, so the lowest nonzero byte is the first non-space.
        let others = u64::from_le_bytes(*chunk) ^ SPACES;
        if others != 0 {
            i += (others.trailing_zeros() / 8) as usize;
            break;
        }
        i += 8;
    }
    // Other whitespace, and the last few bytes of the line.
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Parses decimal digits only: no sign, no spaces, no overflow. The row
/// parser reads short fields itself and asks this only about long ones.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for &byte in digits {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    Some(value)
}

/// How much the read buffer grows by when the file outgrows it.
const READ_STEP: usize = 16 * 1024;

/// Reads `<proc_root>/net/dev` each tick.
pub struct ProcfsSource {
    path: PathBuf,
    /// The file, kept open between ticks when it is on procfs.
    ///
    /// Opening `/proc/net/dev` walks `/proc/self/net` and sets up the
    /// kernel's reader, a tenth of the read's own cost. Procfs regenerates
    /// the text each time it is read from the start, so an open file reads
    /// as a new one would. Any other file (a fixture under a test's proc
    /// root) is opened anew each tick, so one that is replaced or removed
    /// shows as it would.
    kept: Option<File>,
    /// Room for the file's bytes, kept between ticks and never shrunk, so a
    /// read neither allocates nor clears it; only the front is this tick's.
    buffer: Vec<u8>,
    parser: Reparser,
}

impl ProcfsSource {
    pub fn new(proc_root: &Path) -> ProcfsSource {
        ProcfsSource {
            path: proc_root.join("net").join("dev"),
            kept: None,
            buffer: Vec::new(),
            parser: Reparser::default(),
        }
    }

    /// The file this source reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole file into the buffer and returns its length.
    fn read(&mut self) -> std::io::Result<usize> {
        let (file, opened) = match self.kept.take() {
            Some(file) => (file, false),
            None => (File::open(&self.path)?, true),
        };
        // A file that fails a read is dropped here and opened again next tick.
        let length = read_whole(&file, &mut self.buffer)?;
        if !opened || on_procfs(&file) {
            self.kept = Some(file);
        }
        Ok(length)
    }
}

/// Reads `file` from its start into `buffer`, growing it as needed, and
/// returns the length read.
///
/// Procfs files report a size of 0, so they are read until a read returns
/// nothing; `read_to_end` would first ask the file's size and position (a
/// `statx` and an `lseek`) for a hint that procfs cannot give. The kernel
/// hands back at most a page per read whatever the buffer. Reads name their
/// offset (`pread`), and a procfs file read at offset 0 starts its text over.
fn read_whole(file: &File, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut filled = 0;
    loop {
        if filled == buffer.len() {
            buffer.resize(filled + READ_STEP, 0);
        }
        match file.read_at(&mut buffer[filled..], filled as u64) {
            Ok(0) => return Ok(filled),
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

fn on_procfs(file: &File) -> bool {
    nix::sys::statfs::fstatfs(file)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

impl CounterSource for ProcfsSource {
    fn name(&self) -> &'static str {
        "procfs"
    }

    fn sample_into(&mut self, snapshot: &mut Snapshot) -> Result<(), SourceError> {
        let length = self.read().map_err(|source| SourceError::Read {
            path: self.path.display().to_string(),
            source,
        })?;
        self.parser
            .parse_buffer(&mut self.buffer, length, snapshot)
            .map_err(|error| SourceError::Format {
                path: self.path.display().to_string(),
                reason: error.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = include_str!("../../tests/fixtures/procfs/real.dev");
    const AWKWARD: &str = include_str!("../../tests/fixtures/procfs/awkward.dev");
    const HUGE: &str = include_str!("../../tests/fixtures/procfs/huge.dev");
    const MISSING_COLUMNS: &str = include_str!("../../tests/fixtures/procfs/missing_columns.dev");
    const TRUNCATED: &str = include_str!("../../tests/fixtures/procfs/truncated.dev");
    const GARBAGE_HEADER: &str = include_str!("../../tests/fixtures/procfs/garbage_header.dev");
    const HEADER_ONLY: &str = include_str!("../../tests/fixtures/procfs/header_only.dev");

    fn row(name: &str, columns: [u64; PROC_NET_DEV_COLUMNS]) -> CounterRow {
        let mut counters = [0; COUNTER_COLUMNS];
        counters[..PROC_NET_DEV_COLUMNS].copy_from_slice(&columns);
        CounterRow::proc_net_dev(name, counters)
    }

    fn names(snapshot: &Snapshot) -> Vec<&str> {
        snapshot.rows.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn parses_a_real_file() {
        let snapshot = parse_proc_net_dev(REAL).unwrap();
        assert_eq!(
            snapshot,
            Snapshot {
                rows: vec![
                    row(
                        "lo",
                        [4951, 50, 0, 0, 0, 0, 0, 0, 4951, 50, 0, 0, 0, 0, 0, 0]
                    ),
                    row("ifb0", [0; PROC_NET_DEV_COLUMNS]),
                    row("ifb1", [0; PROC_NET_DEV_COLUMNS]),
                    row(
                        "eth0",
                        [
                            76236900, 4375, 0, 0, 0, 0, 0, 0, 271681, 2435, 0, 0, 0, 0, 0, 0
                        ],
                    ),
                ],
                skipped: vec![],
            }
        );
    }

    #[test]
    fn counters_land_in_metric_order() {
        // Every column holds a distinct value so a shifted column shows.
        let snapshot = parse_proc_net_dev(AWKWARD).unwrap();
        let eth0 = snapshot.rows.iter().find(|r| r.name == "eth0").unwrap();
        for metric in Metric::ALL {
            if let Some(column) = metric.column()
                && eth0.columns.has(column)
            {
                assert_eq!(eth0.counters[column], column as u64 + 1, "{metric}");
            }
        }
        assert!(!eth0.columns.supplies(Metric::RxCrc));
    }

    #[test]
    fn keeps_awkward_names_whole() {
        let snapshot = parse_proc_net_dev(AWKWARD).unwrap();
        assert_eq!(
            names(&snapshot),
            [
                "vethf345468",
                "ibr10:30",
                "💩0",
                "flannel.1",
                "eth0",
                "swp1s0.100"
            ]
        );
        assert_eq!(snapshot.skipped, Vec::<String>::new());
        let alias = &snapshot.rows[1];
        assert_eq!(
            alias.counters[..PROC_NET_DEV_COLUMNS],
            [30, 31, 0, 0, 0, 0, 0, 2, 40, 41, 0, 0, 0, 0, 0, 0]
        );
        let unicode = &snapshot.rows[2];
        assert_eq!(
            unicode.counters[..PROC_NET_DEV_COLUMNS],
            [5, 1, 0, 0, 0, 0, 0, 0, 6, 1, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn reads_huge_counters_with_no_space_after_the_colon() {
        let snapshot = parse_proc_net_dev(HUGE).unwrap();
        assert_eq!(
            snapshot.rows,
            vec![
                row(
                    "lo",
                    [
                        18446744073709551615,
                        18446744073709551614,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        18446744073709551615,
                        18446744073709551614,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                    ],
                ),
                row(
                    "eth0",
                    [
                        4294967296,
                        4294967295,
                        1,
                        2,
                        3,
                        4,
                        5,
                        6,
                        9999999999999,
                        7,
                        8,
                        9,
                        10,
                        11,
                        12,
                        13,
                    ],
                ),
                row(
                    "ibr10:30",
                    [
                        12345678901234567890,
                        1,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        2,
                        3,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                    ],
                ),
            ]
        );
        assert_eq!(
            snapshot.skipped,
            [
                "line 6: eth1: counter 1 (rx_bytes) is not a 64-bit unsigned number: \
                 \"18446744073709551616\""
            ]
        );
    }

    #[test]
    fn skips_rows_with_missing_columns_or_bad_numbers() {
        let snapshot = parse_proc_net_dev(MISSING_COLUMNS).unwrap();
        assert_eq!(names(&snapshot), ["lo", "eth0", "eth1", "eth5"]);
        assert_eq!(
            snapshot.rows[3].counters[..PROC_NET_DEV_COLUMNS],
            [500, 5, 0, 0, 0, 0, 0, 0, 600, 6, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            snapshot.skipped,
            [
                "line 6: eth3: expected 16 counters, found 9",
                "line 7: eth4: counter 3 (rx_errors) is not a 64-bit unsigned number: \"12x\"",
                "line 8: eth6: expected 16 counters, found 17",
                "line 9: eth7: counter 9 (tx_bytes) is not a 64-bit unsigned number: \"-1\"",
                "line 10: no ':' after the interface name",
                "line 11: no interface name before the ':'",
            ]
        );
    }

    #[test]
    fn a_truncated_file_keeps_its_complete_rows() {
        let snapshot = parse_proc_net_dev(TRUNCATED).unwrap();
        assert_eq!(names(&snapshot), ["lo", "eth0"]);
        assert_eq!(
            snapshot.skipped,
            ["line 5: eth1: expected 16 counters, found 10"]
        );
    }

    #[test]
    fn rejects_a_garbage_header() {
        let error = parse_proc_net_dev(GARBAGE_HEADER).unwrap_err();
        assert_eq!(
            error,
            ParseError::Header {
                line: 2,
                expected: COLUMNS_LINE,
                found: " face |bytes    packets errs drop fifo colls frame compressed multicast|bytes   ..."
                    .to_string(),
            }
        );
        assert!(error.to_string().starts_with(
            "line 2: expected the column line \"face |bytes packets errs drop fifo frame"
        ));

        let error = parse_proc_net_dev("eth0: 1 2 3\n").unwrap_err();
        assert!(
            matches!(error, ParseError::Header { line: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn an_empty_file_is_an_error_but_a_header_alone_is_not() {
        assert_eq!(parse_proc_net_dev(""), Err(ParseError::Empty));
        assert_eq!(
            parse_proc_net_dev("Inter-|   Receive    |  Transmit\n"),
            Err(ParseError::MissingHeader {
                line: 2,
                expected: COLUMNS_LINE,
            })
        );
        assert_eq!(parse_proc_net_dev(HEADER_ONLY), Ok(Snapshot::default()));
    }

    #[test]
    fn parse_into_reuses_the_snapshot() {
        let mut snapshot = parse_proc_net_dev(AWKWARD).unwrap();
        let rows_before = snapshot.rows.as_ptr();
        let name_before = snapshot.rows[0].name.as_ptr();

        parse_into(REAL, &mut snapshot).unwrap();
        assert_eq!(snapshot, parse_proc_net_dev(REAL).unwrap());
        assert_eq!(snapshot.rows.as_ptr(), rows_before);
        // "lo" fits the string that held "vethf345468".
        assert_eq!(snapshot.rows[0].name.as_ptr(), name_before);

        parse_into(MISSING_COLUMNS, &mut snapshot).unwrap();
        assert_eq!(snapshot, parse_proc_net_dev(MISSING_COLUMNS).unwrap());
        parse_into(REAL, &mut snapshot).unwrap();
        assert_eq!(snapshot.skipped, Vec::<String>::new());

        assert!(parse_into("", &mut snapshot).is_err());
        assert_eq!(snapshot, Snapshot::default());
    }

    /// Parses `texts` in turn with one [`Reparser`], into a kept snapshot and
    /// into a fresh one, and checks both against a parse from scratch.
    fn reparse_each(texts: &[&str]) -> Reparser {
        let mut parser = Reparser::default();
        let mut kept = Snapshot::default();
        // The same through buffers swapped as the source swaps them, with
        // stale bytes after each text.
        let mut swapping = Reparser::default();
        let mut buffer = Vec::new();
        let mut swapped = Snapshot::default();
        for (tick, text) in texts.iter().enumerate() {
            let expected = parse_proc_net_dev(text);
            let result = parser.parse_into(text.as_bytes(), &mut kept);
            assert_eq!(result.map(|()| kept.clone()), expected, "tick {tick}");
            buffer.clear();
            buffer.extend_from_slice(text.as_bytes());
            buffer.extend_from_slice(b"  swp1: 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n");
            let result = swapping.parse_buffer(&mut buffer, text.len(), &mut swapped);
            assert_eq!(
                result.map(|()| swapped.clone()),
                expected,
                "tick {tick}, swapped"
            );
            let mut fresh = Snapshot::default();
            let result = parser.parse_into(text.as_bytes(), &mut fresh);
            assert_eq!(
                result.map(|()| fresh),
                expected,
                "tick {tick}, fresh snapshot"
            );
        }
        parser
    }

    fn with_rows(rows: &[&str]) -> String {
        let mut text = String::from(HEADER_ONLY);
        for row in rows {
            text.push_str(row);
            text.push('\n');
        }
        text
    }

    const A: &str = "  swp1: 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0";
    const B: &str = "  swp2: 5 6 0 0 0 0 0 0 7 8 0 0 0 0 0 0";
    const C: &str = "  swp3: 9 9 0 0 0 0 0 0 9 9 0 0 0 0 0 0";
    const D: &str = "  swp4: 2 2 0 0 0 0 0 0 2 2 0 0 0 0 0 0";

    #[test]
    fn an_unchanged_line_is_not_parsed_again() {
        let text = with_rows(&[A, B, C]);
        let mut parser = reparse_each(&[&text]);
        // Only a row taken from memory can hold what was planted there.
        parser.known[1].counters[0] = 4242;
        let mut snapshot = Snapshot::default();
        parser.parse_into(text.as_bytes(), &mut snapshot).unwrap();
        assert_eq!(snapshot.rows[1].name, "swp2");
        assert_eq!(snapshot.rows[1].counters[0], 4242);
    }

    #[test]
    fn a_line_that_changed_after_an_identical_tick_is_parsed_again() {
        let changed = "  swp2: 5 6 0 0 0 0 0 0 7 9 0 0 0 0 0 0";
        let longer = "  swp2: 50000000000 6 0 0 0 0 0 0 7 9 0 0 0 0 0 0";
        reparse_each(&[
            &with_rows(&[A, B, C]),
            &with_rows(&[A, B, C]),
            &with_rows(&[A, changed, C]),
            &with_rows(&[A, longer, C]),
            &with_rows(&[A, B, C]),
        ]);
    }

    #[test]
    fn interfaces_that_appear_or_vanish_in_the_middle_shift_no_rows() {
        reparse_each(&[
            &with_rows(&[A, B, C]),
            &with_rows(&[A, D, B, C]),
            &with_rows(&[A, B, C]),
            &with_rows(&[A, C]),
            &with_rows(&[C, A]),
            &with_rows(&[A, B, C, D]),
            &with_rows(&[A, D]),
            &with_rows(&[D]),
            &with_rows(&[]),
            &with_rows(&[A, B, C]),
            // Same counters, another name.
            &with_rows(&[A, &B.replace("swp2", "swp9"), C]),
        ]);
    }

    #[test]
    fn reparsing_keeps_awkward_and_bad_lines_right() {
        reparse_each(&[
            AWKWARD,
            AWKWARD,
            HUGE,
            HUGE,
            MISSING_COLUMNS,
            MISSING_COLUMNS,
            TRUNCATED,
            TRUNCATED,
            REAL,
        ]);
        // A name that is not UTF-8 is decoded again each time, never kept.
        let mut parser = Reparser::default();
        let mut snapshot = Snapshot::default();
        let mut bytes = with_rows(&[A]).into_bytes();
        bytes.extend_from_slice(b"  et\xffh0: 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n");
        bytes.extend_from_slice(B.as_bytes());
        bytes.push(b'\n');
        for _ in 0..2 {
            parser.parse_into(&bytes, &mut snapshot).unwrap();
            assert_eq!(names(&snapshot), ["swp1", "et\u{fffd}h0", "swp2"]);
            assert_eq!(snapshot.rows[1].counters[9], 4);
            assert_eq!(parser.known.len(), 2);
        }
        // A last line without its newline may have been cut short: it is
        // parsed again even when its bytes match.
        let cut = format!("{}{}", with_rows(&[A]), &B[..20]);
        let whole = with_rows(&[A, B]);
        reparse_each(&[&cut, &cut, &whole, &whole, &cut]);
    }

    #[test]
    fn reparsing_starts_over_after_a_bad_header() {
        let text = with_rows(&[A, B]);
        let parser = reparse_each(&[&text, "garbage\n", &text, "", &text]);
        assert_eq!(parser.known.len(), 2);
    }

    #[test]
    fn source_reads_a_proc_root() {
        let root = std::env::temp_dir().join(format!("hopwatch-procfs-{}", std::process::id()));
        std::fs::create_dir_all(root.join("net")).unwrap();
        // Larger than a page, so the file takes several reads.
        let mut text = String::from(REAL);
        for i in 0..400 {
            text.push_str(&format!("swp{i}: {i} 1 0 0 0 0 0 0 {i} 2 0 0 0 0 0 0 \n"));
        }
        assert!(text.len() > 16 * 1024);
        std::fs::write(root.join("net/dev"), &text).unwrap();

        let mut source = ProcfsSource::new(&root);
        assert_eq!(source.name(), "procfs");
        assert_eq!(source.path(), root.join("net/dev"));
        for _ in 0..2 {
            let snapshot = source.sample().unwrap();
            assert_eq!(snapshot.rows.len(), 404);
            assert_eq!(snapshot.rows[403].name, "swp399");
            assert_eq!(snapshot.rows[403].counters[8], 399);
        }
        // Not procfs, so opened afresh each time: the changes below show.
        assert!(source.kept.is_none());

        std::fs::write(root.join("net/dev"), "garbage\n").unwrap();
        let error = source.sample().unwrap_err();
        assert!(matches!(error, SourceError::Format { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains("net/dev is not in /proc/net/dev format: line 1")
        );

        std::fs::remove_dir_all(&root).unwrap();
        let error = source.sample().unwrap_err();
        assert!(matches!(error, SourceError::Read { .. }), "{error}");
    }

    #[test]
    fn source_tolerates_a_name_that_is_not_utf8() {
        let root = std::env::temp_dir().join(format!("hopwatch-procfs-raw-{}", std::process::id()));
        std::fs::create_dir_all(root.join("net")).unwrap();
        let mut bytes = HEADER_ONLY.as_bytes().to_vec();
        bytes.extend_from_slice(b"  et\xffh0: 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n");
        std::fs::write(root.join("net/dev"), bytes).unwrap();

        let snapshot = ProcfsSource::new(&root).sample().unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(names(&snapshot), ["et\u{fffd}h0"]);
        assert_eq!(snapshot.rows[0].counters[9], 4);
    }

    #[test]
    fn source_reads_this_machine() {
        let proc_root = Path::new("/proc");
        if !proc_root.join("net/dev").exists() {
            assert!(std::env::var_os("CI").is_none(), "/proc/net/dev is missing");
            eprintln!("skipped: /proc/net/dev is missing");
            return;
        }
        let mut source = ProcfsSource::new(proc_root);
        for _ in 0..3 {
            let snapshot = source.sample().unwrap();
            assert!(names(&snapshot).contains(&"lo"));
            assert_eq!(snapshot.skipped, Vec::<String>::new());
            assert!(source.kept.is_some(), "a procfs file stays open");
        }
    }
}
