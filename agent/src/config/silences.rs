//! `[silences]`: how long a silence made on this agent may last. Every
//! silence ends; the bound keeps a forgotten "2w" from hiding a broken link
//! for longer than the team meant.

use super::raw::RawSilences;
use super::validate::Validator;
use std::time::Duration;

/// The longest silence when `max_duration` is not set.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// The bounds `max_duration` itself is held to.
const MAX_DURATION_RANGE: (Duration, Duration) = (
    Duration::from_secs(60),
    Duration::from_secs(366 * 24 * 3600),
);

#[derive(Debug, Clone, PartialEq)]
pub struct SilenceSettings {
    /// The longest a silence made with `hopwatch silence add` may last.
    pub max_duration: Duration,
}

impl Default for SilenceSettings {
    fn default() -> SilenceSettings {
        SilenceSettings {
            max_duration: DEFAULT_MAX_DURATION,
        }
    }
}

impl Validator<'_> {
    pub(super) fn silences(&mut self, raw: &RawSilences) -> Option<SilenceSettings> {
        let max_duration = self.bounded_duration(
            raw.max_duration.as_ref(),
            "[silences] max_duration",
            DEFAULT_MAX_DURATION,
            MAX_DURATION_RANGE,
            "write a duration between 1m and 366d, such as \"7d\"",
        )?;
        Some(SilenceSettings { max_duration })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn max_duration_defaults_to_a_week_and_is_bounded() {
        let c = Config::parse("", "t.toml").unwrap();
        assert_eq!(c.silences.max_duration, DEFAULT_MAX_DURATION);
        let c = Config::parse("[silences]\nmax_duration = \"2d\"\n", "t.toml").unwrap();
        assert_eq!(c.silences.max_duration, Duration::from_secs(2 * 24 * 3600));
        for (text, words) in [
            (
                "max_duration = \"10s\"",
                "t.toml:2:16: [silences] max_duration \"10s\" is out of range",
            ),
            ("max_duration = \"2y\"", "out of range"),
            ("max_duration = \"forever\"", "bad duration"),
            ("max_duraton = \"1d\"", "did you mean `max_duration`"),
        ] {
            let error = Config::parse(&format!("[silences]\n{text}\n"), "t.toml")
                .unwrap_err()
                .to_string();
            assert!(error.contains(words), "{text}: {error}");
        }
    }
}
