//! The DME's answers as the agent reads them: a counter query's JSON mapped
//! onto a snapshot as a poll would (`dme` source), and a port's object read
//! for why its link went down (`l1PhysIf.adminSt`, `ethpmPhysIf`). Neither
//! may panic on any input; a mapped row has a name and no link.
#![no_main]

use hopwatch::link::admin::parse_port_cause;
use hopwatch::source::Snapshot;
use hopwatch::source::dme::DmeSource;
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut source = DmeSource::new("/nonexistent", "admin", Duration::from_secs(1));
    let mut snapshot = Snapshot::default();
    match source.sample_body(text, &mut snapshot) {
        Ok(()) => {
            for row in &snapshot.rows {
                assert!(!row.name.is_empty(), "a row without a name");
                assert!(row.link.is_none(), "the DME counters carry no link");
            }
        }
        Err(_) => assert!(snapshot.rows.is_empty(), "a failed read keeps no rows"),
    }
    if let Ok(reply) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = parse_port_cause(&reply);
    }
});
