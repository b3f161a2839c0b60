//! `[output.alertmanager]` and `[[output.webhook]]`: where alert events go
//! besides syslog. Every mistake is reported at its key; a URL is never
//! repeated in a message, since a webhook's may hold its secret.

use super::validate::Validator;
use crate::alerting::{
    AlertingSettings, AlertmanagerSettings, Credentials, DEFAULT_BACKOFF_MAX, DEFAULT_MAX_RETRIES,
    DEFAULT_QUEUE, DEFAULT_RESEND_EVERY, DEFAULT_TIMEOUT, Endpoint, WebhookSettings,
};
use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawAlertmanager {
    // A URL or a list of them: read as a plain value.
    pub(super) url: Option<Spanned<toml::Value>>,
    pub(super) bearer_token_file: Option<Spanned<String>>,
    pub(super) basic_auth_file: Option<Spanned<String>>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) resend_every: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) queue: Option<Spanned<i64>>,
    pub(super) web_url: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawWebhook {
    pub(super) name: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) headers: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub(super) bearer_token_file: Option<Spanned<String>>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) queue: Option<Spanned<i64>>,
    pub(super) max_retries: Option<Spanned<i64>>,
    pub(super) backoff_max: Option<Spanned<String>>,
}

pub(super) const ALERTMANAGER_KEYS: &[&str] = &[
    "url",
    "bearer_token_file",
    "basic_auth_file",
    "ca_file",
    "resend_every",
    "timeout",
    "queue",
    "web_url",
];

pub(super) const WEBHOOK_KEYS: &[&str] = &[
    "name",
    "url",
    "headers",
    "bearer_token_file",
    "ca_file",
    "timeout",
    "queue",
    "max_retries",
    "backoff_max",
];

/// Alertmanager resolves an alert not heard of for its `resolve_timeout`,
/// 5m unless its config says otherwise; re-sends must come sooner.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(300);

/// Headers the client sets itself.
const OWN_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
];

const MAX_QUEUE: i64 = 1_000_000;
const MAX_RETRIES: i64 = 100;

impl Validator<'_> {
    pub(super) fn alerting(
        &mut self,
        alertmanager: Option<&Spanned<RawAlertmanager>>,
        webhooks: &[Spanned<RawWebhook>],
    ) -> Option<AlertingSettings> {
        let alertmanager = alertmanager.and_then(|raw| self.alertmanager(raw));
        let mut hooks = Vec::new();
        let mut names: BTreeMap<String, ()> = BTreeMap::new();
        for (i, raw) in webhooks.iter().enumerate() {
            if let Some(hook) = self.webhook(raw, i) {
                if names.insert(hook.name.clone(), ()).is_some() {
                    let at = raw
                        .get_ref()
                        .name
                        .as_ref()
                        .map_or(raw.span().start, |n| n.span().start);
                    self.error_at(
                        at,
                        format!("two [[output.webhook]] are named {:?}", hook.name),
                        Some("give each webhook its own `name`: logs and /metrics tell them apart by it".into()),
                    );
                }
                hooks.push(hook);
            }
        }
        // With any mistake the whole config is refused, so what is built
        // here is only used when there is none.
        Some(AlertingSettings {
            alertmanager,
            webhooks: hooks,
        })
    }

    fn alertmanager(&mut self, raw: &Spanned<RawAlertmanager>) -> Option<AlertmanagerSettings> {
        let table = raw.get_ref();
        let mut urls = Vec::new();
        let at = match &table.url {
            None => {
                self.error_at(
                    raw.span().start,
                    "[output.alertmanager] has no `url`",
                    Some("name Alertmanager's base URL, e.g. url = \"http://127.0.0.1:9093\", or a list of every cluster member's".into()),
                );
                return None;
            }
            Some(url) => url,
        };
        let written: Vec<Option<&str>> = match at.get_ref() {
            toml::Value::String(s) => vec![Some(s.as_str())],
            toml::Value::Array(items) => items.iter().map(|v| v.as_str()).collect(),
            _ => vec![None],
        };
        if written.is_empty() {
            self.error(
                at,
                "[output.alertmanager] `url` is an empty list",
                Some("name at least one Alertmanager".into()),
            );
        }
        for (n, url) in written.into_iter().enumerate() {
            match url.map(Endpoint::parse) {
                Some(Ok(endpoint)) => urls.push(endpoint),
                Some(Err(why)) => self.error(
                    at,
                    format!("[output.alertmanager] `url` (number {}) cannot be used: {why}", n + 1),
                    Some("write Alertmanager's base URL such as \"http://127.0.0.1:9093\"; hopwatch appends /api/v2/alerts".into()),
                ),
                None => self.error(
                    at,
                    "[output.alertmanager] `url` is neither a string nor a list of strings",
                    Some("write url = \"http://am1:9093\" or url = [\"http://am1:9093\", \"http://am2:9093\"]".into()),
                ),
            }
        }
        let credentials = match (&table.bearer_token_file, &table.basic_auth_file) {
            (Some(bearer), Some(_)) => {
                self.error(
                    bearer,
                    "[output.alertmanager] has both `bearer_token_file` and `basic_auth_file`",
                    Some(
                        "keep the one your Alertmanager (or the proxy in front of it) checks"
                            .into(),
                    ),
                );
                None
            }
            (Some(bearer), None) => self
                .path(bearer, "bearer_token_file")
                .map(Credentials::Bearer),
            (None, Some(basic)) => self.path(basic, "basic_auth_file").map(Credentials::Basic),
            (None, None) => None,
        };
        let ca_file = table.ca_file.as_ref().and_then(|f| self.path(f, "ca_file"));
        let resend_every = match &table.resend_every {
            None => Some(DEFAULT_RESEND_EVERY),
            Some(v) => match self.duration(
                v,
                "resend_every",
                (Duration::from_secs(1), Duration::from_secs(24 * 3600)),
            ) {
                Some(d) if d >= RESOLVE_TIMEOUT => {
                    self.error(
                        v,
                        format!(
                            "[output.alertmanager] `resend_every` ({}) is not below Alertmanager's resolve_timeout (5m by default): it would resolve firing alerts between two sends",
                            humantime::format_duration(d)
                        ),
                        Some("re-send more often than resolve_timeout, e.g. \"1m\"".into()),
                    );
                    None
                }
                d => d,
            },
        };
        let timeout = self.timeout(&table.timeout);
        let queue = self.queue(&table.queue);
        let web_url = table.web_url.as_ref().and_then(|v| match Endpoint::parse(v.get_ref()) {
            Ok(_) => Some(v.get_ref().trim().trim_end_matches('/').to_string()),
            Err(why) => {
                self.error(
                    v,
                    format!("[output.alertmanager] `web_url` cannot be used: {why}"),
                    Some("write the collector's web page as people open it, e.g. \"https://hopwatch.example.net\"".into()),
                );
                None
            }
        });
        Some(AlertmanagerSettings {
            urls,
            credentials,
            ca_file,
            resend_every: resend_every?,
            timeout: timeout?,
            queue: queue?,
            web_url,
            at: self.locate_span(at.span().start, ()),
        })
    }

    fn webhook(&mut self, raw: &Spanned<RawWebhook>, index: usize) -> Option<WebhookSettings> {
        let table = raw.get_ref();
        let name = match &table.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                self.error(
                    n,
                    "[[output.webhook]] `name` is empty",
                    Some("name it, e.g. name = \"chatops\"".into()),
                );
                None
            }
            Some(n) => Some(n.get_ref().trim().to_string()),
            None => Some(format!("webhook{}", index + 1)),
        };
        let url = match &table.url {
            None => {
                self.error_at(
                    raw.span().start,
                    format!("[[output.webhook]] number {} has no `url`", index + 1),
                    Some(
                        "name where to POST, e.g. url = \"https://hooks.example.net/hopwatch\""
                            .into(),
                    ),
                );
                None
            }
            Some(u) => match Endpoint::parse(u.get_ref()) {
                Ok(e) => Some((e, self.locate_span(u.span().start, ()))),
                Err(why) => {
                    self.error(
                        u,
                        format!("[[output.webhook]] `url` cannot be used: {why}"),
                        Some("write an http:// or https:// URL".into()),
                    );
                    None
                }
            },
        };
        let mut headers = Vec::new();
        let mut authorization = None;
        if let Some(written) = &table.headers {
            for (key, value) in written.get_ref() {
                let Ok(name) = HeaderName::from_bytes(key.as_bytes()) else {
                    self.error(
                        written,
                        format!(
                            "[[output.webhook]] header name {key:?} is not a valid HTTP header name"
                        ),
                        Some("use letters, digits and dashes, e.g. \"X-Team\"".into()),
                    );
                    continue;
                };
                if OWN_HEADERS.contains(&name.as_str()) {
                    self.error(
                        written,
                        format!("[[output.webhook]] header {key:?} is set by hopwatch itself"),
                        Some(format!("leave out {}", OWN_HEADERS.join(", "))),
                    );
                    continue;
                }
                let Ok(mut header) = HeaderValue::from_str(value.get_ref()) else {
                    self.error(
                        value,
                        format!(
                            "[[output.webhook]] header {key:?} has a value a header cannot carry"
                        ),
                        Some("use printable ASCII without line breaks".into()),
                    );
                    continue;
                };
                // Any header may carry a key (X-Api-Key): none shows in Debug.
                header.set_sensitive(true);
                if name == hyper::header::AUTHORIZATION {
                    authorization = Some(value);
                }
                headers.push((name, header));
            }
        }
        if let (Some(bearer), Some(_)) = (&table.bearer_token_file, authorization) {
            self.error(
                bearer,
                "[[output.webhook]] has both `bearer_token_file` and an Authorization header",
                Some("keep one: the token file keeps the secret out of the config".into()),
            );
        }
        let bearer_token_file = table
            .bearer_token_file
            .as_ref()
            .and_then(|f| self.path(f, "bearer_token_file"));
        let ca_file = table.ca_file.as_ref().and_then(|f| self.path(f, "ca_file"));
        let timeout = self.timeout(&table.timeout);
        let queue = self.queue(&table.queue);
        let max_retries = match &table.max_retries {
            None => Some(DEFAULT_MAX_RETRIES),
            Some(v) if (0..=MAX_RETRIES).contains(v.get_ref()) => Some(*v.get_ref() as u32),
            Some(v) => {
                self.error(
                    v,
                    format!(
                        "[[output.webhook]] `max_retries` {} is out of range",
                        v.get_ref()
                    ),
                    Some(format!(
                        "allow between 0 and {MAX_RETRIES} tries after the first"
                    )),
                );
                None
            }
        };
        let backoff_max = match &table.backoff_max {
            None => Some(DEFAULT_BACKOFF_MAX),
            Some(v) => self.duration(
                v,
                "backoff_max",
                (
                    crate::alerting::webhook::BACKOFF_MIN,
                    Duration::from_secs(3600),
                ),
            ),
        };
        let (url, at) = url?;
        Some(WebhookSettings {
            name: name?,
            url,
            headers,
            bearer_token_file,
            ca_file,
            timeout: timeout?,
            queue: queue?,
            max_retries: max_retries?,
            backoff_max: backoff_max?,
            at,
        })
    }

    fn timeout(&mut self, raw: &Option<Spanned<String>>) -> Option<Duration> {
        match raw {
            None => Some(DEFAULT_TIMEOUT),
            Some(v) => self.duration(
                v,
                "timeout",
                (Duration::from_millis(100), Duration::from_secs(300)),
            ),
        }
    }

    fn queue(&mut self, raw: &Option<Spanned<i64>>) -> Option<usize> {
        match raw {
            None => Some(DEFAULT_QUEUE),
            Some(v) if (1..=MAX_QUEUE).contains(v.get_ref()) => Some(*v.get_ref() as usize),
            Some(v) => {
                self.error(
                    v,
                    format!("`queue` {} is out of range", v.get_ref()),
                    Some(format!(
                        "allow between 1 and {MAX_QUEUE} alert events to wait"
                    )),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::errors;
    use super::*;

    #[test]
    fn nothing_is_forwarded_unless_asked() {
        assert!(Config::embedded().alerting.is_empty());
    }

    #[test]
    fn every_key_and_the_defaults() {
        let c = Config::parse(
            "[output.alertmanager]\n\
             url = [\"http://am1:9093\", \"https://am2.example.net/am/\"]\n\
             bearer_token_file = \"/etc/hopwatch/am.token\"\n\
             ca_file = \"/etc/hopwatch/ca.pem\"\n\
             resend_every = \"30s\"\ntimeout = \"5s\"\nqueue = 500\n\
             web_url = \"https://hopwatch.example.net/\"\n\
             [[output.webhook]]\nurl = \"http://127.0.0.1:8000/hook?key=k\"\n\
             [[output.webhook]]\nname = \"chatops\"\nurl = \"https://chat.example.net/h\"\n\
             headers = { \"X-Team\" = \"dc-ops\" }\nbearer_token_file = \"/etc/hopwatch/chat.token\"\n\
             timeout = \"2s\"\nqueue = 20\nmax_retries = 3\nbackoff_max = \"5s\"\n",
            "c.toml",
        )
        .unwrap();
        let am = c.alerting.alertmanager.unwrap();
        assert_eq!(am.urls.len(), 2);
        assert_eq!(am.urls[1].join("/api/v2/alerts"), "/am/api/v2/alerts");
        assert!(matches!(am.credentials, Some(Credentials::Bearer(_))));
        assert_eq!(am.resend_every, Duration::from_secs(30));
        assert_eq!(am.timeout, Duration::from_secs(5));
        assert_eq!(am.queue, 500);
        assert_eq!(am.web_url.as_deref(), Some("https://hopwatch.example.net"));
        let hooks = c.alerting.webhooks;
        assert_eq!(hooks[0].name, "webhook1");
        assert_eq!(hooks[0].max_retries, DEFAULT_MAX_RETRIES);
        assert_eq!(hooks[0].queue, DEFAULT_QUEUE);
        assert_eq!(hooks[1].name, "chatops");
        assert_eq!(hooks[1].headers[0].0.as_str(), "x-team");
        assert_eq!(
            (hooks[1].max_retries, hooks[1].queue, hooks[1].backoff_max),
            (3, 20, Duration::from_secs(5))
        );
        let c = Config::parse(
            "[output.alertmanager]\nurl = \"http://am:9093\"\n",
            "c.toml",
        )
        .unwrap();
        let am = c.alerting.alertmanager.unwrap();
        assert_eq!(
            (am.resend_every, am.timeout),
            (DEFAULT_RESEND_EVERY, DEFAULT_TIMEOUT)
        );
    }

    #[test]
    fn every_mistake_at_its_key_without_the_url() {
        let all = errors(
            "[output.alertmanager]\n\
             url = [\"http://am1:9093\", \"am2:9093\"]\n\
             bearer_token_file = \"/a\"\nbasic_auth_file = \"/b\"\n\
             resend_every = \"5m\"\nqueue = 0\nsend_every = \"1m\"\n\
             [[output.webhook]]\nurl = \"ftp://hooks.example.net/s3cret\"\n\
             headers = { \"Content-Type\" = \"text/plain\", \"Bad Name\" = \"x\" }\n\
             max_retries = -1\n\
             [[output.webhook]]\nname = \"a\"\nurl = \"http://h/\"\nheaders = { Authorization = \"Bearer x\" }\nbearer_token_file = \"/t\"\n\
             [[output.webhook]]\nname = \"a\"\nurl = \"http://h/\"\n\
             [[output.webhook]]\nname = \"nourl\"\n",
        )
        .join("\n");
        for (place, says) in [
            ("c.toml:2:7", "(number 2) cannot be used: it has no scheme"),
            (
                "c.toml:3:21",
                "both `bearer_token_file` and `basic_auth_file`",
            ),
            ("c.toml:5:16", "resolve_timeout"),
            ("c.toml:6:9", "`queue` 0 is out of range"),
            ("c.toml:7:1", "unknown key `send_every`"),
            ("c.toml:9:7", "the scheme `ftp` is not http or https"),
            ("c.toml:10:11", "\"Content-Type\" is set by hopwatch itself"),
            (
                "c.toml:10:11",
                "\"Bad Name\" is not a valid HTTP header name",
            ),
            ("c.toml:11:15", "`max_retries` -1 is out of range"),
            (
                "c.toml:16:21",
                "both `bearer_token_file` and an Authorization header",
            ),
            ("c.toml:18:8", "two [[output.webhook]] are named \"a\""),
            ("no `url`", "number 4 has no `url`"),
        ] {
            assert!(
                all.contains(&format!("{place}: ")) || !place.starts_with("c.toml"),
                "{place}\n{all}"
            );
            let line = all
                .lines()
                .find(|l| l.contains(says))
                .unwrap_or_else(|| panic!("{says}\n{all}"));
            if place.starts_with("c.toml") {
                assert!(line.starts_with(place), "{says} at {place}:\n{all}");
            }
        }
        // A webhook's URL may hold its secret: never repeated.
        assert!(!all.contains("s3cret"), "{all}");
    }

    #[test]
    fn a_url_list_must_hold_strings() {
        let all = errors("[output.alertmanager]\nurl = [9093]\n").join("\n");
        assert!(
            all.contains("c.toml:2:7") && all.contains("neither a string"),
            "{all}"
        );
        let all = errors("[output.alertmanager]\nurl = []\n").join("\n");
        assert!(all.contains("empty list"), "{all}");
        let all = errors("[output.alertmanager]\ntimeout = \"1s\"\n").join("\n");
        assert!(
            all.contains("c.toml:1:1") && all.contains("has no `url`"),
            "{all}"
        );
    }

    #[test]
    fn check_files_reads_each_credential_and_ca_at_its_key() {
        let dir =
            std::env::temp_dir().join(format!("hopwatch-alerting-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let no_colon = dir.join("basic");
        std::fs::write(&no_colon, "# user and password\nalice\n").unwrap();
        let good = dir.join("token");
        std::fs::write(&good, "hook-token-0123456789\n").unwrap();
        let not_pem = dir.join("ca.pem");
        std::fs::write(&not_pem, "no certificate here\n").unwrap();
        let text = format!(
            "[output.alertmanager]\nurl = \"https://am:9093\"\nbasic_auth_file = {:?}\nca_file = {:?}\n\
             [[output.webhook]]\nurl = \"http://h/\"\nbearer_token_file = \"/nonexistent/hook.token\"\n\
             [[output.webhook]]\nurl = \"http://h/\"\nbearer_token_file = {:?}\n",
            no_colon.display().to_string(),
            not_pem.display().to_string(),
            good.display().to_string()
        );
        let c = Config::parse(&text, "c.toml").unwrap();
        let all = c.check_files().unwrap_err().to_string();
        assert!(
            all.contains("c.toml:3:19") && all.contains("no `user:password` line"),
            "{all}"
        );
        assert!(
            all.contains("c.toml:4:11") && all.contains("holds no CERTIFICATE"),
            "{all}"
        );
        assert!(
            all.contains("c.toml:7:21") && all.contains("/nonexistent/hook.token"),
            "{all}"
        );
        assert!(
            !all.contains("c.toml:10:"),
            "the good token file is fine: {all}"
        );
        // Fixed, every file can be used.
        std::fs::write(&no_colon, "alice:wonder land\n").unwrap();
        let fixed = text
            .replace("/nonexistent/hook.token", &good.display().to_string())
            .replace(
                &format!("ca_file = {:?}\n", not_pem.display().to_string()),
                "",
            );
        let c = Config::parse(&fixed, "c.toml").unwrap();
        let checked = c.check_files();
        // Without a ca_file, https uses the system's CAs where installed.
        if std::path::Path::new(crate::alerting::http::SYSTEM_CA_FILE).exists() {
            checked.unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
