//! The `/proc/net/dev` parser on the awkward fixtures, the reparser against
//! a parse from scratch, and the source on a proc root and this machine.

use super::line::COLUMNS_LINE;
use super::*;
use crate::metric::{COUNTER_COLUMNS, Metric, PROC_NET_DEV_COLUMNS};
use crate::source::CounterRow;

const REAL: &str = include_str!("../../../tests/fixtures/procfs/real.dev");
const AWKWARD: &str = include_str!("../../../tests/fixtures/procfs/awkward.dev");
const HUGE: &str = include_str!("../../../tests/fixtures/procfs/huge.dev");
const MISSING_COLUMNS: &str = include_str!("../../../tests/fixtures/procfs/missing_columns.dev");
const TRUNCATED: &str = include_str!("../../../tests/fixtures/procfs/truncated.dev");
const GARBAGE_HEADER: &str = include_str!("../../../tests/fixtures/procfs/garbage_header.dev");
const HEADER_ONLY: &str = include_str!("../../../tests/fixtures/procfs/header_only.dev");

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
            partial: None,
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
