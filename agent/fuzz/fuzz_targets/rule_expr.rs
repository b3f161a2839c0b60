//! Rule expressions (`increase(tx_errors[5s]) > 3`). An error's offset is
//! where the config layer points its caret, so it must lie on a character
//! boundary of the text; a parsed condition reads the same from its own text.
#![no_main]

use hopwatch::rule::expr::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(condition) => {
            assert!(condition.threshold.is_finite());
            assert_eq!(parse(&condition.text), Ok(condition.clone()));
            let _ = condition.holds(f64::MAX);
        }
        Err(error) => {
            assert!(
                text.is_char_boundary(error.offset),
                "offset {} is not a character boundary of {text:?}",
                error.offset
            );
            let _ = error.to_string();
        }
    }
});
