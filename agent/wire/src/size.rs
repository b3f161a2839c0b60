//! Sizes in config files and in what the binaries print, one grammar for
//! both: the agent's `spool_max` and the collector's `max_line` and
//! `[log] max_size` read the same text the same way.
//!
//! A size is a number of bytes, or a number and a unit, optionally apart by
//! spaces; the unit's case does not matter:
//!
//! | unit | bytes |
//! |---|---|
//! | none, `B` | 1 |
//! | `KiB` `MiB` `GiB` `TiB` (or `K` `M` `G` `T`) | powers of 1024 |
//! | `KB` `MB` `GB` `TB` | powers of 1000 |
//!
//! The number may have a fraction (`1.5GiB`, `.5MiB`); with a unit of a
//! kilobyte or more it is rounded to the nearest byte, while a count of
//! bytes must be whole, as a fraction of a byte can only be a typo. The size
//! must fit 64 bits. In TOML a plain integer is a number of bytes too.

use serde::Deserialize;

/// What a rejected size is told to look like.
const FORMS: &str = "a size is a whole number of bytes, or a number with a unit: B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000), e.g. \"64MiB\"";

/// Digits after the point that are read; more say nothing about a size.
const MAX_DECIMALS: usize = 20;

/// Parses a size (see the module's grammar). The error names the text and
/// the accepted forms.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let fail = |problem: String| Err(format!("{problem} ({FORMS})"));
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ if number.is_empty() => return fail(format!("{trimmed:?} does not start with a number")),
        _ => return fail(format!("unknown unit `{}` in {trimmed:?}", unit.trim())),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return fail(format!("{trimmed:?} does not start with a number"));
    }
    if fraction.contains('.') {
        return fail(format!("`{number}` in {trimmed:?} is not a number"));
    }
    if fraction.len() > MAX_DECIMALS {
        return fail(format!(
            "{trimmed:?} has more than {MAX_DECIMALS} digits after the point"
        ));
    }
    let too_large = || format!("{trimmed:?} is too large; the largest size is 16 EiB");
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        // Digits only, so a failure is an overflow.
        match whole.parse() {
            Ok(n) => n,
            Err(_) => return fail(too_large()),
        }
    };
    let fraction_part = if fraction.is_empty() {
        0
    } else {
        let digits: u128 = fraction.parse().expect("at most 20 digits");
        let denominator = 10u128.pow(fraction.len() as u32);
        let scaled = digits * u128::from(scale);
        if scale == 1 && scaled != 0 {
            return fail(format!("{trimmed:?} is not a whole number of bytes"));
        }
        // Half a byte or more rounds up.
        (scaled + denominator / 2) / denominator
    };
    let bytes = whole
        .checked_mul(u128::from(scale))
        .and_then(|b| b.checked_add(fraction_part))
        .and_then(|b| u64::try_from(b).ok());
    match bytes {
        Some(b) => Ok(b),
        None => fail(too_large()),
    }
}

/// A byte count as a person reads it: `512 B`, `12.5 KiB`, `64 MiB`. The
/// text parses back as a size: exactly when it shows no fraction or its one
/// decimal is exact, else to within a twentieth of its unit.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A size as TOML gives it: a string in the grammar above, or an integer
/// number of bytes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RawSize {
    Bytes(i64),
    Text(String),
}

impl RawSize {
    /// The size in bytes; the error names the value and the accepted forms.
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            RawSize::Bytes(n) => {
                u64::try_from(*n).map_err(|_| format!("{n} is negative ({FORMS})"))
            }
            RawSize::Text(t) => parse_size(t),
        }
    }
}

/// Every binary's config must read these texts as these sizes (`None`:
/// refused). The shared crate checks [`parse_size`] against them, and each
/// binary's config tests run them through its own validator, so the agent
/// and the collector cannot drift apart again.
pub const SIZE_CASES: &[(&str, Option<u64>)] = &[
    // Binary units, any case, with or without a space.
    ("64MiB", Some(64 << 20)),
    ("64 MiB", Some(64 << 20)),
    ("  8MiB  ", Some(8 << 20)),
    ("512kib", Some(512 << 10)),
    ("1KIB", Some(1 << 10)),
    ("1GiB", Some(1 << 30)),
    ("1TiB", Some(1 << 40)),
    ("2tib", Some(2 << 40)),
    // One-letter binary units.
    ("1k", Some(1 << 10)),
    ("1K", Some(1 << 10)),
    ("3M", Some(3 << 20)),
    ("1g", Some(1 << 30)),
    ("1T", Some(1 << 40)),
    // Decimal units.
    ("2KB", Some(2_000)),
    ("1kB", Some(1_000)),
    ("10MB", Some(10_000_000)),
    ("1GB", Some(1_000_000_000)),
    ("2TB", Some(2_000_000_000_000)),
    // Bytes.
    ("0", Some(0)),
    ("4096", Some(4096)),
    ("100B", Some(100)),
    ("100 b", Some(100)),
    ("1500.0", Some(1500)),
    ("18446744073709551615", Some(u64::MAX)),
    // Fractions of larger units, rounded to the nearest byte.
    ("1.5KiB", Some(1536)),
    (".5KiB", Some(512)),
    ("5.KiB", Some(5120)),
    ("0.5GB", Some(500_000_000)),
    ("1.3MiB", Some(1_363_149)),
    ("0.0001KiB", Some(0)),
    ("0.0005KB", Some(1)),
    ("16777215TiB", Some(u64::MAX - (1 << 40) + 1)),
    ("16777215.5TiB", Some(u64::MAX - (1 << 39) + 1)),
    // Refused.
    ("", None),
    ("   ", None),
    ("MiB", None),
    (".", None),
    ("12 parsecs", None),
    ("1 XB", None),
    ("16EiB", None),
    ("1.2.3MiB", None),
    ("0.3B", None),
    ("1.5", None),
    ("-5MiB", None),
    ("+5", None),
    ("1e3", None),
    ("1,5MiB", None),
    ("1 MiB B", None),
    ("NaN", None),
    ("inf", None),
    ("18446744073709551616", None),
    ("16777216TiB", None),
    ("99999999999GiB", None),
    ("99999999999999999999999999999999999999999", None),
    ("1.000000000000000000001KiB", None),
];

/// What [`format_size`] prints for these byte counts.
pub const FORMAT_CASES: &[(u64, &str)] = &[
    (0, "0 B"),
    (512, "512 B"),
    (1023, "1023 B"),
    (1024, "1 KiB"),
    (12_800, "12.5 KiB"),
    (64 << 10, "64 KiB"),
    (64 << 20, "64 MiB"),
    (1 << 30, "1 GiB"),
    (1 << 40, "1 TiB"),
    (1 << 50, "1024 TiB"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_one_grammar() {
        for (text, expected) in SIZE_CASES {
            match (parse_size(text), expected) {
                (Ok(n), Some(e)) => assert_eq!(n, *e, "{text:?}"),
                (Err(message), None) => {
                    assert!(
                        message.contains(&format!("{:?}", text.trim()))
                            || message.contains(text.trim()),
                        "{text:?}: the message names the value: {message}"
                    );
                    assert!(message.contains("KiB, MiB, GiB, TiB"), "{message}");
                }
                (got, _) => panic!("{text:?}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn a_toml_integer_is_bytes_and_must_not_be_negative() {
        assert_eq!(RawSize::Bytes(65536).bytes(), Ok(65536));
        let e = RawSize::Bytes(-5).bytes().unwrap_err();
        assert!(e.starts_with("-5 is negative"), "{e}");
        assert_eq!(RawSize::Text("1MiB".into()).bytes(), Ok(1 << 20));
    }

    #[test]
    fn printed_sizes_read_back() {
        for (bytes, text) in FORMAT_CASES {
            assert_eq!(format_size(*bytes), *text);
            assert_eq!(parse_size(text), Ok(*bytes), "{text}");
        }
        // A rounded figure still parses, to within a twentieth of its unit.
        for bytes in [1025, 12_801, (3 << 30) + 12_345, (1 << 60) + 12_345] {
            let text = format_size(bytes);
            let back = parse_size(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let unit = 1u64 << (10 * (bytes.ilog2() / 10).min(4));
            assert!(
                back.abs_diff(bytes) <= unit / 20,
                "{bytes} -> {text} -> {back}"
            );
        }
    }
}
