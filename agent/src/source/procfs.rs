//! The `procfs` counter source: `/proc/net/dev`, read and parsed every tick.
//!
//! On a switch with hundreds of ports this runs every second, so the parser
//! splits bytes by hand and allocates nothing per field, and the reader keeps
//! its buffer between ticks.

use super::{CounterRow, CounterSource, Snapshot, SourceError};
use crate::metric::{COUNTER_COLUMNS, Columns, Metric, PROC_NET_DEV_COLUMNS};
use std::fs::File;
use std::io::Read;
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
    snapshot.skipped.clear();
    let mut lines = text.lines().enumerate().map(|(i, line)| (i + 1, line));
    if let Err(error) = check_header(&mut lines) {
        snapshot.rows.clear();
        return Err(error);
    }

    let mut filled = 0;
    for (number, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let slot = match snapshot.rows.get_mut(filled) {
            Some(row) => row,
            None => {
                snapshot.rows.push(CounterRow {
                    name: String::new(),
                    counters: [0; COUNTER_COLUMNS],
                    columns: Columns::PROC_NET_DEV,
                    link: None,
                });
                &mut snapshot.rows[filled]
            }
        };
        match parse_row(line, slot) {
            Ok(()) => filled += 1,
            Err(problem) => snapshot.skipped.push(format!("line {number}: {problem}")),
        }
    }
    snapshot.rows.truncate(filled);
    Ok(())
}

/// Consumes the two header lines and checks that they announce the sixteen
/// columns in the order this parser assumes.
fn check_header<'a>(lines: &mut impl Iterator<Item = (usize, &'a str)>) -> Result<(), ParseError> {
    let Some((_, title)) = lines.next() else {
        return Err(ParseError::Empty);
    };
    let title_ok = title.split('|').map(str::trim).eq(TITLE.iter().copied());
    if !title_ok {
        return Err(header_error(1, TITLE_LINE, title));
    }

    let Some((_, columns)) = lines.next() else {
        return Err(ParseError::MissingHeader {
            line: 2,
            expected: COLUMNS_LINE,
        });
    };
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
        name: &'a str,
        found: usize,
    },
    NotANumber {
        name: &'a str,
        column: usize,
        field: &'a str,
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
                "{name}: counter {} ({}) is not a 64-bit unsigned number: {field:?}",
                column + 1,
                Metric::ALL[*column],
            ),
        }
    }
}

/// Parses `name: c1 c2 ... c16` into `row`, reusing its name string.
///
/// The kernel prints the name with `%6s:`; older kernels print no space after
/// the colon, so a huge first counter runs into it (`eth0:18446744073709551615`).
/// Counters never contain a colon, so the separator is the line's last colon,
/// which also keeps names that contain one (`ibr10:30`) whole.
fn parse_row<'a>(line: &'a str, row: &mut CounterRow) -> Result<(), RowProblem<'a>> {
    let colon = line.rfind(':').ok_or(RowProblem::NoSeparator)?;
    let name = line[..colon].trim();
    if name.is_empty() {
        return Err(RowProblem::NoName);
    }

    // One pass over the bytes, reading each field's value as its extent is
    // found: this loop is most of the agent's parsing time.
    let counters = &line[colon + 1..];
    let bytes = counters.as_bytes();
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
            // Fields start and end next to ASCII whitespace or the ends of
            // the line, so these are character boundaries.
            field: &counters[field],
        });
    }

    if row.name != name {
        row.name.clear();
        row.name.push_str(name);
    }
    Ok(())
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

/// Reads `<proc_root>/net/dev` each tick.
pub struct ProcfsSource {
    path: PathBuf,
    /// The file's bytes, kept between ticks so a read does not allocate.
    buffer: Vec<u8>,
}

impl ProcfsSource {
    pub fn new(proc_root: &Path) -> ProcfsSource {
        ProcfsSource {
            path: proc_root.join("net").join("dev"),
            buffer: Vec::new(),
        }
    }

    /// The file this source reads.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl CounterSource for ProcfsSource {
    fn name(&self) -> &'static str {
        "procfs"
    }

    fn sample_into(&mut self, snapshot: &mut Snapshot) -> Result<(), SourceError> {
        self.buffer.clear();
        // Procfs files report a size of 0, so they are read to the end rather
        // than to a size. The kernel hands back at most a page per read
        // whatever the buffer, so a larger buffer would not save reads.
        File::open(&self.path)
            .and_then(|mut file| file.read_to_end(&mut self.buffer))
            .map_err(|source| SourceError::Read {
                path: self.path.display().to_string(),
                source,
            })?;
        let bytes = self.buffer.as_slice();
        // The kernel allows any byte but '/', ':' and whitespace in interface
        // names, so a name need not be UTF-8; one such name must not cost the
        // whole tick.
        let result = match std::str::from_utf8(bytes) {
            Ok(text) => parse_into(text, snapshot),
            Err(_) => parse_into(&String::from_utf8_lossy(bytes), snapshot),
        };
        result.map_err(|error| SourceError::Format {
            path: self.path.display().to_string(),
            reason: error.to_string(),
        })?;
        Ok(())
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
        let snapshot = ProcfsSource::new(proc_root).sample().unwrap();
        assert!(names(&snapshot).contains(&"lo"));
        assert_eq!(snapshot.skipped, Vec::<String>::new());
    }
}
