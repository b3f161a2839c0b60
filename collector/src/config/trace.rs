//! `[trace]`: how long a fabric trace may wait on each switch and in all,
//! and how far it may go; a request may ask for less or, within the hard
//! limits, for more hops and branches.

use super::raw::RawTrace;
use super::validate::Validator;
use crate::fabric::{MAX_BRANCHES, MAX_HOP_LIMIT, TraceSettings};
use std::time::Duration;
use toml::Spanned;

impl Validator<'_> {
    /// The bounds; `idle_timeout` is `[http]`'s, which a trace's answer
    /// must beat or the API closes the connection waiting for it. A
    /// `timeout` written that does not is an error; the default is shortened
    /// to fit (nine tenths of it), and the default `hop_timeout` to fit
    /// that, so a short `idle_timeout` alone never makes a config invalid.
    pub(super) fn trace(
        &mut self,
        raw: &RawTrace,
        idle_timeout: Option<Duration>,
    ) -> Option<TraceSettings> {
        let defaults = TraceSettings::default();
        let timeout = match &raw.timeout {
            Some(v) => self.duration(
                v,
                "timeout",
                (Duration::from_millis(100), Duration::from_secs(600)),
            ),
            None => Some(match idle_timeout {
                Some(idle) => defaults.timeout.min(idle * 9 / 10),
                None => defaults.timeout,
            }),
        };
        let hop_timeout = match &raw.hop_timeout {
            Some(v) => self.duration(
                v,
                "hop_timeout",
                (Duration::from_millis(10), Duration::from_secs(60)),
            ),
            None => Some(
                defaults
                    .hop_timeout
                    .min(timeout.unwrap_or(defaults.timeout)),
            ),
        };
        if let (Some(hop), Some(total), Some(at)) = (hop_timeout, timeout, &raw.hop_timeout)
            && hop > total
        {
            self.error(
                raw.timeout.as_ref().unwrap_or(at),
                format!(
                    "[trace] `hop_timeout` ({}) is longer than `timeout` ({}), the whole trace's",
                    humantime::format_duration(hop),
                    humantime::format_duration(total)
                ),
                Some("make `timeout` at least `hop_timeout`; a trace of several hops needs a few of them".into()),
            );
        }
        if let (Some(total), Some(idle), Some(at)) = (timeout, idle_timeout, &raw.timeout)
            && total >= idle
        {
            self.error(
                at,
                format!(
                    "[trace] `timeout` ({}) is not shorter than [http] `idle_timeout` ({}): the API would close a connection while its trace is still running",
                    humantime::format_duration(total),
                    humantime::format_duration(idle)
                ),
                Some("shorten [trace] timeout or lengthen [http] idle_timeout".to_string()),
            );
        }
        let hop_limit = self.bound(
            &raw.hop_limit,
            "hop_limit",
            MAX_HOP_LIMIT,
            "switches one trace follows",
        );
        let max_branches = self.bound(
            &raw.max_branches,
            "max_branches",
            MAX_BRANCHES,
            "switches one multi-path tree holds",
        );
        Some(TraceSettings {
            hop_timeout: hop_timeout?,
            timeout: timeout?,
            hop_limit: hop_limit.unwrap_or(Some(defaults.hop_limit))?,
            max_branches: max_branches.unwrap_or(Some(defaults.max_branches))?,
        })
    }

    /// A whole number from 1 to `most`; None when not given.
    fn bound(
        &mut self,
        value: &Option<Spanned<i64>>,
        key: &str,
        most: usize,
        what: &str,
    ) -> Option<Option<usize>> {
        let v = value.as_ref()?;
        let n = *v.get_ref();
        if n < 1 || n as u64 > most as u64 {
            self.error(
                v,
                format!("[trace] `{key}` {n} is out of range"),
                Some(format!("allow between 1 and {most} {what}")),
            );
            return Some(None);
        }
        Some(Some(n as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::errors;
    use super::*;

    #[test]
    fn defaults_and_every_key() {
        assert_eq!(Config::embedded().trace, TraceSettings::default());
        let c = Config::parse(
            "[trace]\nhop_timeout = \"500ms\"\ntimeout = \"5s\"\nhop_limit = 16\nmax_branches = 64\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(
            c.trace,
            TraceSettings {
                hop_timeout: Duration::from_millis(500),
                timeout: Duration::from_secs(5),
                hop_limit: 16,
                max_branches: 64,
            }
        );
    }

    #[test]
    fn every_mistake_at_its_key() {
        let found = errors(
            "[trace]\nhop_timeout = \"5ms\"\ntimeout = \"forever\"\nhop_limit = 65\nmax_branches = 0\nhops = 3\n",
        );
        let all = found.join("\n");
        assert!(
            all.contains("c.toml:2:15") && all.contains("`hop_timeout`"),
            "{all}"
        );
        assert!(
            all.contains("c.toml:3:11") && all.contains("bad duration"),
            "{all}"
        );
        assert!(
            all.contains("c.toml:4:13") && all.contains("between 1 and 64"),
            "{all}"
        );
        assert!(
            all.contains("c.toml:5:16") && all.contains("between 1 and 4096"),
            "{all}"
        );
        assert!(all.contains("hops"), "{all}");
        let all = errors("[trace]\nhop_timeout = \"20s\"\ntimeout = \"10s\"\n").join("\n");
        assert!(
            all.contains("c.toml:3:11") && all.contains("longer than `timeout`"),
            "{all}"
        );
        let all = errors("[trace]\ntimeout = \"90s\"\n").join("\n");
        assert!(
            all.contains("idle_timeout") && all.contains("c.toml:2:11"),
            "{all}"
        );
        assert!(errors("[http]\nidle_timeout = \"5s\"\n[trace]\ntimeout = \"4s\"\n").is_empty());
    }

    #[test]
    fn the_defaults_fit_a_short_idle_timeout() {
        // A short idle_timeout alone stays valid: the defaults shrink to fit.
        let c = Config::parse("[http]\nidle_timeout = \"1s\"\n", "c.toml").unwrap();
        assert_eq!(c.trace.timeout, Duration::from_millis(900));
        assert_eq!(c.trace.hop_timeout, Duration::from_millis(900));
        let c = Config::parse("[http]\nidle_timeout = \"5s\"\n", "c.toml").unwrap();
        assert_eq!(c.trace.timeout, Duration::from_millis(4500));
        assert_eq!(c.trace.hop_timeout, Duration::from_secs(2));
        // The usual idle_timeout leaves the defaults as they are.
        assert_eq!(Config::embedded().trace, TraceSettings::default());
        // A hop_timeout written past the shrunk default is named.
        let all =
            errors("[http]\nidle_timeout = \"1s\"\n[trace]\nhop_timeout = \"2s\"\n").join("\n");
        assert!(
            all.contains("c.toml:4:15") && all.contains("longer than `timeout`"),
            "{all}"
        );
    }
}
