//! Rule expressions (`increase(tx_errors[5s]) > 3`). An error's offset is
//! where the config layer points its caret, so it must lie on a character
//! boundary of the text; a parsed condition reads the same from its own text,
//! and evaluates to a finite value or none, whatever its leaves hold.
#![no_main]

use hopwatch::rule::expr::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(condition) => {
            assert_eq!(parse(&condition.text), Ok(condition.clone()));
            for value in [0.0, 1.0, -1.0, f64::MAX, f64::MIN_POSITIVE] {
                if let Some(v) = condition.eval(&|_| Some(value)) {
                    assert!(v.lhs.is_finite() && v.rhs.is_finite());
                }
            }
            // Every comparison reads a metric, so with none known nothing
            // is decided.
            assert_eq!(condition.eval(&|_| None), None);
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
