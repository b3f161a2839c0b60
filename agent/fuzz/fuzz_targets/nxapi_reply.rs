//! NX-API's HTTP answer (status line, header, plain or chunked body, the
//! `ins_api` envelope) read down to a command's body.
#![no_main]

use hopwatch::nxapi::parse_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = parse_reply("show interface", data) {
        // A body is JSON: the commands' own parsers take it from here.
        let _ = serde_json::from_str::<serde_json::Value>(body.get()).expect("a body is JSON");
    }
});
