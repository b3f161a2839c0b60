//! The body of NX-API's `show interface` answer mapped onto counters and
//! links, as two polls (so flap counting sees a before and an after).
#![no_main]

use hopwatch::source::Snapshot;
use hopwatch::source::nxapi::NxapiSource;
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A NUL splits the input into two polls.
    let (first, second) = text.split_once('\0').unwrap_or((text, text));
    let mut source = NxapiSource::new("/nonexistent", "admin", Duration::from_secs(1));
    let mut snapshot = Snapshot::default();
    let _ = source.sample_body(first, &mut snapshot);
    if source.sample_body(second, &mut snapshot).is_ok() {
        for row in &snapshot.rows {
            assert!(!row.name.is_empty(), "a row without a name");
        }
    }
});
