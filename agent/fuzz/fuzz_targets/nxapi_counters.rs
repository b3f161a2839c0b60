//! The bodies of NX-API's `show interface counters` and `show interface
//! counters errors` answers merged into one snapshot, as a poll would; an
//! input without the second body is a poll whose errors read failed.
#![no_main]

use hopwatch::nxapi::NxapiError;
use hopwatch::source::Snapshot;
use hopwatch::source::nxapi::{CountersSource, SHOW_COUNTERS_ERRORS};
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A NUL splits the input into the two answers.
    let (counters, errors) = match text.split_once('\0') {
        Some((counters, errors)) => (counters, Ok(errors)),
        None => (
            text,
            Err(NxapiError::Reply {
                command: SHOW_COUNTERS_ERRORS.to_string(),
                reason: "refused".to_string(),
            }),
        ),
    };
    let mut source = CountersSource::new("/nonexistent", "admin", Duration::from_secs(1));
    let mut snapshot = Snapshot::default();
    if source.sample_bodies(counters, errors, &mut snapshot).is_ok() {
        let mut names = HashSet::new();
        for row in &snapshot.rows {
            assert!(!row.name.is_empty(), "a row without a name");
            assert!(names.insert(&row.name), "{} listed twice", row.name);
            assert!(row.link.is_none(), "the counters tables carry no link");
        }
    }
});
