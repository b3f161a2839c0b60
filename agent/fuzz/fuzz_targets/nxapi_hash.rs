//! The text of NX-OS's `show routing hash`, which has no JSON form.
#![no_main]

use hopwatch::trace::nxapi::parse_hash;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_hash(text);
    }
});
