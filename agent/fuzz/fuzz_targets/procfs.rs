//! `/proc/net/dev` text, as two ticks: the reparser, which takes unchanged
//! lines from the tick before, must read the second text exactly as a fresh
//! parse does, and neither may panic.
#![no_main]

use hopwatch::source::Snapshot;
use hopwatch::source::procfs::{Reparser, parse_proc_net_dev};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A NUL (no byte a real file holds) splits the input into two ticks.
    let (first, second) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    if let Ok(text) = std::str::from_utf8(second) {
        let _ = parse_proc_net_dev(text);
    }
    let mut fresh = Snapshot::default();
    let expected = Reparser::default().parse_into(second, &mut fresh);

    let mut reparser = Reparser::default();
    let mut snapshot = Snapshot::default();
    let _ = reparser.parse_into(first, &mut snapshot);
    let got = reparser.parse_into(second, &mut snapshot);
    assert_eq!(got, expected);
    if got.is_ok() {
        assert_eq!(snapshot, fresh, "a reparse differs from a fresh parse");
    }

    // The reader's path: a buffer handed over and swapped each tick.
    let mut reparser = Reparser::default();
    let mut buffer = first.to_vec();
    let _ = reparser.parse_buffer(&mut buffer, first.len(), &mut snapshot);
    let mut buffer = second.to_vec();
    buffer.extend_from_slice(b"stale bytes past the length");
    let got = reparser.parse_buffer(&mut buffer, second.len(), &mut snapshot);
    assert_eq!(got, expected);
    if got.is_ok() {
        assert_eq!(
            snapshot, fresh,
            "a buffered reparse differs from a fresh parse"
        );
    }
});
