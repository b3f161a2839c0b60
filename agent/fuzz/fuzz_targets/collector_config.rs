//! The collector's TOML config: parsed and validated from text, every error
//! rendered with its line, column and hint.
#![no_main]

use hopwatch_collector::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = Config::parse(text, "fuzz.toml") {
        let _ = error.to_string();
    }
});
