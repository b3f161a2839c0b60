//! `[store]`: SQLite under `data_dir` (the default), or one PostgreSQL
//! database that several collectors share. The URL holds the password, so
//! no message here ever shows it: errors point at the key instead.

use super::raw::RawStore;
use super::validate::Validator;
use super::{Config, Diagnostic, Located, Secret};
use crate::store::StoreSettings;
use crate::store::postgres::connect::{
    DEFAULT_CONNECT_TIMEOUT, PgError, describe, parse_url, url_text,
};
use crate::store::postgres::{PostgresSettings, SslMode, UrlSource};
use std::path::PathBuf;
use std::time::Duration;
use tokio_postgres::config::Host;
use toml::Spanned;

/// Connections to PostgreSQL unless `pool_size` says.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// Where `[store]`'s files were named, so `check-config` can read them
/// and point at the key of one it cannot use.
#[derive(Debug, Clone, Default)]
pub struct StoreFiles {
    pub url_file: Option<Located<PathBuf>>,
    pub ca_file: Option<Located<PathBuf>>,
}

impl Config {
    /// `[store]`'s files that cannot be used, each at its key: the URL
    /// file unreadable, empty or not a URL; the CA file not a CA.
    pub(super) fn check_store_files(&self) -> Vec<Diagnostic> {
        let StoreSettings::Postgres(pg) = &self.store else {
            return Vec::new();
        };
        let mut errors = Vec::new();
        if let Some(file) = &self.store_files.url_file
            && let Err(e) = url_text(&pg.url)
                .and_then(|url| parse_url(&url, &format!("in {}", file.value.display())))
        {
            errors.push(file.diagnostic(e.to_string(), None));
        }
        if let Some(ca) = &self.store_files.ca_file
            && let Err(e) = crate::tls::roots(&ca.value)
        {
            errors.push(ca.diagnostic(e, None));
        }
        errors
    }

    /// The store as `check-config` reports it: where the SQLite file is, or
    /// which database (`host:port/dbname`, never the URL).
    pub fn store_summary(&self) -> String {
        match &self.store {
            StoreSettings::Sqlite => format!(
                "SQLite in {}",
                self.collector
                    .data_dir
                    .join(crate::store::DB_FILE)
                    .display()
            ),
            StoreSettings::Postgres(pg) => {
                match url_text(&pg.url).and_then(|url| parse_url(&url, "in [store]")) {
                    Ok(config) => format!("PostgreSQL at {}", describe(&config)),
                    Err(_) => "PostgreSQL".into(),
                }
            }
        }
    }
}

const SSL_MODES: &str = "\"disable\", \"require\", \"verify-ca\" or \"verify-full\"";

impl Validator<'_> {
    /// The store settings, and where `url_file` was written (read by
    /// `check-config`, which reports a bad file at its key).
    pub(super) fn store(&mut self, raw: &RawStore) -> Option<(StoreSettings, StoreFiles)> {
        let postgres_keys: [(&str, Option<usize>); 6] = [
            ("url", raw.url.as_ref().map(|v| v.span().start)),
            ("url_file", raw.url_file.as_ref().map(|v| v.span().start)),
            ("pool_size", raw.pool_size.as_ref().map(|v| v.span().start)),
            ("sslmode", raw.sslmode.as_ref().map(|v| v.span().start)),
            ("ca_file", raw.ca_file.as_ref().map(|v| v.span().start)),
            (
                "connect_timeout",
                raw.connect_timeout.as_ref().map(|v| v.span().start),
            ),
        ];
        match raw.kind.as_ref().map(|k| k.get_ref().as_str()) {
            None | Some("sqlite") => {
                let mut ok = true;
                for (key, at) in postgres_keys {
                    if let Some(at) = at {
                        self.error_at(
                            at,
                            format!("`{key}` applies to a PostgreSQL store, but [store] kind is \"sqlite\""),
                            Some("set kind = \"postgres\", or remove it to keep the SQLite store under data_dir".into()),
                        );
                        ok = false;
                    }
                }
                ok.then_some((StoreSettings::Sqlite, StoreFiles::default()))
            }
            Some("postgres") => self.postgres(raw),
            Some(other) => {
                let kind = raw.kind.as_ref().expect("matched a kind");
                self.error(
                    kind,
                    format!("unknown store kind {other:?}"),
                    Some("use \"sqlite\" (the default, a file under data_dir) or \"postgres\" (a database several collectors share)".into()),
                );
                None
            }
        }
    }

    fn postgres(&mut self, raw: &RawStore) -> Option<(StoreSettings, StoreFiles)> {
        let kind = raw.kind.as_ref().expect("kind is postgres");
        let mut url_file = None;
        let mut config = None;
        let url = match (&raw.url, &raw.url_file) {
            (Some(_), Some(file)) => {
                self.error(
                    file,
                    "both `url` and `url_file` are set",
                    Some("keep one: `url_file` keeps the password out of collector.toml".into()),
                );
                None
            }
            (None, None) => {
                self.error(
                    kind,
                    "a PostgreSQL store needs `url` or `url_file`",
                    Some("add url = \"postgres://user:password@host:5432/hopwatch\", or url_file naming a file that holds it".into()),
                );
                None
            }
            (Some(url), None) => {
                let secret = Secret::new(url.get_ref().trim());
                match parse_url(&secret, "in [store] url") {
                    Ok(_) if url.get_ref().contains("sslmode=") => {
                        self.error(
                            url,
                            "the `url` sets sslmode",
                            Some(format!(
                                "remove it from the URL and set [store] sslmode = {SSL_MODES}"
                            )),
                        );
                        None
                    }
                    Ok(parsed) => {
                        config = Some(parsed);
                        Some(UrlSource::Inline(secret))
                    }
                    Err(e) => {
                        // The parser's reason, never the URL's text.
                        let reason = match e {
                            PgError::Url { reason, .. } => reason,
                            other => other.to_string(),
                        };
                        self.error(
                            url,
                            "`url` is not a PostgreSQL URL",
                            Some(format!(
                                "{reason}; write postgres://user:password@host:5432/dbname"
                            )),
                        );
                        None
                    }
                }
            }
            (None, Some(file)) => self.path(file, "url_file").map(|located| {
                url_file = Some(located.clone());
                UrlSource::File(located.value)
            }),
        };
        let pool_size = match &raw.pool_size {
            Some(v) if (1..=256).contains(v.get_ref()) => Some(*v.get_ref() as usize),
            Some(v) => {
                self.error(
                    v,
                    format!("`pool_size` {} is out of range", v.get_ref()),
                    Some("use between 1 and 256 connections".into()),
                );
                None
            }
            None => Some(DEFAULT_POOL_SIZE),
        };
        let connect_timeout = match &raw.connect_timeout {
            Some(v) => self.duration(
                v,
                "connect_timeout",
                (Duration::from_millis(100), Duration::from_secs(300)),
            ),
            None => Some(DEFAULT_CONNECT_TIMEOUT),
        };
        let ca_located = raw.ca_file.as_ref().and_then(|v| self.path(v, "ca_file"));
        let ca_file = ca_located.as_ref().map(|l| l.value.clone());
        let unix_socket = config
            .as_ref()
            .is_some_and(|c| c.get_hosts().iter().all(|h| matches!(h, Host::Unix(_))));
        let ssl_mode = match &raw.sslmode {
            Some(v) => self.ssl_mode(v, unix_socket, raw.ca_file.as_ref()),
            // A unix socket cannot carry TLS; anything else is checked
            // against the CA (the system's unless `ca_file`), as the URL
            // holds a password.
            None if unix_socket => Some(SslMode::Disable),
            None => Some(SslMode::VerifyFull),
        };
        Some((
            StoreSettings::Postgres(PostgresSettings {
                url: url?,
                pool_size: pool_size?,
                ssl_mode: ssl_mode?,
                ca_file,
                connect_timeout: connect_timeout?,
            }),
            StoreFiles {
                url_file,
                ca_file: ca_located,
            },
        ))
    }

    fn ssl_mode(
        &mut self,
        value: &Spanned<String>,
        unix_socket: bool,
        ca_file: Option<&Spanned<String>>,
    ) -> Option<SslMode> {
        let mode = match value.get_ref().as_str() {
            "disable" => SslMode::Disable,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                self.error(
                    value,
                    format!("unknown sslmode {other:?}"),
                    Some(format!("use {SSL_MODES}")),
                );
                return None;
            }
        };
        if mode != SslMode::Disable && unix_socket {
            self.error(
                value,
                format!(
                    "sslmode {:?} with a unix socket, which carries no TLS",
                    value.get_ref()
                ),
                Some("set sslmode = \"disable\", or a host name in the URL".into()),
            );
            return None;
        }
        if let Some(ca) = ca_file
            && matches!(mode, SslMode::Disable | SslMode::Require)
        {
            self.error(
                ca,
                format!(
                    "`ca_file` is set, but sslmode {:?} checks no certificate",
                    value.get_ref()
                ),
                Some("set sslmode = \"verify-full\" (or \"verify-ca\"), or remove ca_file".into()),
            );
            return None;
        }
        Some(mode)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::errors;
    use super::*;

    fn postgres(text: &str) -> PostgresSettings {
        match Config::parse(text, "c.toml").unwrap().store {
            StoreSettings::Postgres(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sqlite_is_the_default_and_postgres_keys_are_read() {
        assert_eq!(Config::embedded().store, StoreSettings::Sqlite);
        let c = Config::parse("[store]\nkind = \"sqlite\"\n", "c.toml").unwrap();
        assert_eq!(c.store, StoreSettings::Sqlite);
        let p = postgres(
            "[store]\nkind = \"postgres\"\nurl = \"postgres://hop:pw@db.example:6432/hopwatch\"\n\
             pool_size = 32\nsslmode = \"verify-ca\"\nca_file = \"/etc/hopwatch/db-ca.pem\"\n\
             connect_timeout = \"2s\"\n",
        );
        assert_eq!(
            p,
            PostgresSettings {
                url: UrlSource::Inline(Secret::new("postgres://hop:pw@db.example:6432/hopwatch")),
                pool_size: 32,
                ssl_mode: SslMode::VerifyCa,
                ca_file: Some("/etc/hopwatch/db-ca.pem".into()),
                connect_timeout: Duration::from_secs(2),
            }
        );
        let p = postgres("[store]\nkind = \"postgres\"\nurl_file = \"/etc/hopwatch/db-url\"\n");
        assert_eq!(p.url, UrlSource::File("/etc/hopwatch/db-url".into()));
        assert_eq!(p.pool_size, DEFAULT_POOL_SIZE);
        assert_eq!(p.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        // A password over the network is never sent unchecked by default.
        assert_eq!(p.ssl_mode, SslMode::VerifyFull);
        let p = postgres(
            "[store]\nkind = \"postgres\"\nurl = \"postgresql:///hopwatch?host=/run/postgresql\"\n",
        );
        assert_eq!(p.ssl_mode, SslMode::Disable, "a unix socket carries no TLS");
    }

    #[test]
    fn store_mistakes_are_each_located_with_a_hint() {
        let cases: &[(&str, &str)] = &[
            (
                "kind = \"mysql\"",
                "c.toml:2:8: unknown store kind \"mysql\"",
            ),
            (
                "url = \"postgres://h/db\"",
                "c.toml:2:7: `url` applies to a PostgreSQL store, but [store] kind is \"sqlite\"",
            ),
            (
                "kind = \"postgres\"",
                "c.toml:2:8: a PostgreSQL store needs `url` or `url_file`",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://h/db\"\nurl_file = \"/f\"",
                "c.toml:4:12: both `url` and `url_file` are set",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://u:hunter2@h:notaport/db\"",
                "c.toml:3:7: `url` is not a PostgreSQL URL",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://h/db?sslmode=require\"",
                "c.toml:3:7: the `url` sets sslmode",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://h/db\"\npool_size = 0",
                "c.toml:4:13: `pool_size` 0 is out of range",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://h/db\"\npool_size = 257",
                "c.toml:4:13: `pool_size` 257 is out of range",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://h/db\"\nsslmode = \"prefer\"",
                "c.toml:4:11: unknown sslmode \"prefer\"",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://h/db\"\nsslmode = \"require\"\nca_file = \"/ca.pem\"",
                "c.toml:5:11: `ca_file` is set, but sslmode \"require\" checks no certificate",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgresql:///db?host=/run/postgresql\"\nsslmode = \"verify-full\"",
                "c.toml:4:11: sslmode \"verify-full\" with a unix socket, which carries no TLS",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://h/db\"\nconnect_timeout = \"1h\"",
                "c.toml:4:19: `connect_timeout` \"1h\" is out of range",
            ),
            (
                "kind = \"postgres\"\nurl_file = \"\"",
                "c.toml:3:12: `url_file` is empty",
            ),
        ];
        for (keys, expected) in cases {
            let text = format!("[store]\n{keys}\n");
            let errs = errors(&text);
            assert!(
                errs.iter()
                    .any(|e| e.starts_with(expected) && e.contains("hint:")),
                "{text}\nwanted {expected}\ngot {errs:?}"
            );
            assert!(
                errs.iter().all(|e| !e.contains("hunter2")),
                "the password was shown: {errs:?}"
            );
        }
    }

    #[test]
    fn url_file_is_read_by_check_config_and_named_when_bad() {
        let dir = std::env::temp_dir().join(format!("hopwatch-store-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("db-url");
        let text = format!(
            "[store]\nkind = \"postgres\"\nurl_file = {:?}\nsslmode = \"disable\"\n",
            file.display().to_string()
        );
        let config = Config::parse(&text, "c.toml").unwrap();
        for (content, wanted) in [
            (None, "cannot read the PostgreSQL URL from"),
            (Some("  \n"), "the file is empty"),
            (Some("postgres://u:hunter2@h:notaport/db\n"), "is not valid"),
        ] {
            match content {
                Some(c) => std::fs::write(&file, c).unwrap(),
                None => {
                    let _ = std::fs::remove_file(&file);
                }
            }
            let error = config.check_files().unwrap_err().to_string();
            assert!(
                error.contains("c.toml:3:12:")
                    && error.contains(wanted)
                    && error.contains(&file.display().to_string())
                    && !error.contains("hunter2"),
                "{error}"
            );
        }
        std::fs::write(&file, "postgres://u:hunter2@h:5433/db\n").unwrap();
        config.check_files().unwrap();
        assert_eq!(config.store_summary(), "PostgreSQL at h:5433/db");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
