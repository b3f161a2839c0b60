//! One line of `/proc/net/dev` at a time: the two header lines checked
//! against the column order the counters rely on, an interface row read into
//! its counters, and the byte scans both are built on.

use crate::metric::{Metric, PROC_NET_DEV_COLUMNS};
use crate::source::CounterRow;
use std::borrow::Cow;
use std::ops::Range;
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
pub(super) const COLUMNS_LINE: &str = "the column line \"face |bytes packets errs drop fifo frame compressed \
     multicast|bytes packets errs drop fifo colls carrier compressed\"";

/// How much of an unexpected line an error quotes.
const EXCERPT_CHARS: usize = 80;

/// Why a whole `/proc/net/dev` text was rejected. A bad interface row is not
/// an error: it lands in [`Snapshot::skipped`](crate::source::Snapshot::skipped).
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

/// The line starting at `*pos`, without its newline, and moves `*pos` past
/// the newline; `None` at the end of the text.
pub(super) fn next_line<'a>(text: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
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
pub(super) fn is_blank(line: &[u8]) -> bool {
    match line.iter().find(|b| !b.is_ascii_whitespace()) {
        None => true,
        Some(&b) if b.is_ascii() => false,
        Some(_) => String::from_utf8_lossy(line).trim().is_empty(),
    }
}

/// Consumes the two header lines and checks that they announce the sixteen
/// columns in the order this parser assumes.
pub(super) fn check_header(title: Option<&[u8]>, columns: Option<&[u8]>) -> Result<(), ParseError> {
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
pub(super) enum RowProblem<'a> {
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
pub(super) fn parse_row<'a>(
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
