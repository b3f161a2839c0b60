//! `[silences]`: the bound on how long one silence may last, so that every
//! silence made through the API ends in time for someone to notice.

use super::raw::RawSilences;
use super::validate::Validator;
use crate::silences::{DEFAULT_MAX_DURATION, SilenceSettings};
use std::time::Duration;

impl Validator<'_> {
    pub(super) fn silences(&mut self, raw: &RawSilences) -> Option<SilenceSettings> {
        let max_duration = match &raw.max_duration {
            Some(v) => self.duration(
                v,
                "max_duration",
                (Duration::from_secs(60), Duration::from_secs(365 * 86_400)),
            ),
            None => Some(DEFAULT_MAX_DURATION),
        };
        Some(SilenceSettings {
            max_duration: max_duration?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::errors;
    use std::time::Duration;

    #[test]
    fn max_duration_is_read_and_bounded() {
        let c = Config::parse("[silences]\nmax_duration = \"2d\"\n", "c.toml").unwrap();
        assert_eq!(c.silences.max_duration, Duration::from_secs(2 * 86_400));
        assert_eq!(
            Config::embedded().silences.max_duration,
            crate::silences::DEFAULT_MAX_DURATION
        );
        let errs = errors("[silences]\nmax_duration = \"2y\"\n");
        assert!(
            errs.iter()
                .any(|e| e.contains("c.toml:2:16: `max_duration` \"2y\" is out of range")),
            "{errs:?}"
        );
    }
}
