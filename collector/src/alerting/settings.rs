//! What `[output.alertmanager]` and `[[output.webhook]]` become once
//! validated, and the parts of starting them that read files (the
//! credentials' `Authorization` header, the CAs), shared by start and by
//! `check-config` so both say the same about a file that cannot be used.

use super::http::{self, Endpoint};
use hopwatch_wire::diag::{Diagnostic, Located};
use hyper::header::{HeaderName, HeaderValue};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[output.alertmanager]` and `[[output.webhook]]`.
#[derive(Debug, Clone, Default)]
pub struct AlertingSettings {
    pub alertmanager: Option<AlertmanagerSettings>,
    pub webhooks: Vec<WebhookSettings>,
}

impl AlertingSettings {
    pub fn is_empty(&self) -> bool {
        self.alertmanager.is_none() && self.webhooks.is_empty()
    }
}

/// How a receiver is told who is calling.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `Authorization: Bearer <the file's first token>`.
    Bearer(Located<PathBuf>),
    /// `Authorization: Basic`, from a file of one `user:password` line.
    Basic(Located<PathBuf>),
}

/// `[output.alertmanager]`.
#[derive(Debug, Clone)]
pub struct AlertmanagerSettings {
    /// Every Alertmanager of the cluster; each gets every alert.
    pub urls: Vec<Endpoint>,
    pub credentials: Option<Credentials>,
    /// The CAs an `https` Alertmanager's certificate must chain to; the
    /// system's when absent.
    pub ca_file: Option<Located<PathBuf>>,
    /// How often every firing alert is sent again: below Alertmanager's
    /// `resolve_timeout` (5m by default), or it resolves them itself.
    pub resend_every: Duration,
    pub timeout: Duration,
    /// Alert events waiting for each Alertmanager at most.
    pub queue: usize,
    /// The collector's web page as people reach it, for each alert's
    /// `generatorURL`.
    pub web_url: Option<String>,
    /// Its `url`, for an error about the connection as a whole.
    pub at: Located<()>,
}

/// One `[[output.webhook]]`.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Names it in logs and `/metrics` (its URL may hold a secret).
    pub name: String,
    pub url: Endpoint,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub bearer_token_file: Option<Located<PathBuf>>,
    pub ca_file: Option<Located<PathBuf>>,
    pub timeout: Duration,
    /// Events waiting for this webhook at most.
    pub queue: usize,
    /// Tries after the first before an event is given up.
    pub max_retries: u32,
    /// The longest wait between two tries.
    pub backoff_max: Duration,
    /// Its `url`, for an error about the connection as a whole.
    pub at: Located<()>,
}

pub const DEFAULT_RESEND_EVERY: Duration = Duration::from_secs(60);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_QUEUE: usize = 10_000;
pub const DEFAULT_MAX_RETRIES: u32 = 8;
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A credential or CA file that cannot be used, at its key.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct AlertingError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl AlertingError {
    fn at<T>(place: &Located<T>, message: String) -> AlertingError {
        AlertingError {
            file: place.file.clone(),
            line: place.line,
            col: place.col,
            message,
        }
    }

    pub fn diagnostic(&self) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
            message: self.message.clone(),
            hint: None,
        }
    }
}

impl AlertingSettings {
    /// A sentence for each file holding a secret that other users can
    /// read.
    pub fn file_warnings(&self) -> Vec<String> {
        self.secret_files()
            .into_iter()
            .filter_map(|f| crate::auth::readable_by_others(&f.value))
            .collect()
    }

    fn secret_files(&self) -> Vec<&Located<PathBuf>> {
        let am = self
            .alertmanager
            .iter()
            .filter_map(|am| match &am.credentials {
                Some(Credentials::Bearer(f) | Credentials::Basic(f)) => Some(f),
                None => None,
            });
        let hooks = self
            .webhooks
            .iter()
            .filter_map(|h| h.bearer_token_file.as_ref());
        am.chain(hooks).collect()
    }

    /// Reads every credential and CA file, as start does, and reports each
    /// that cannot be used.
    pub fn check_files(&self) -> Vec<AlertingError> {
        let mut errors = Vec::new();
        if let Some(am) = &self.alertmanager {
            if let Err(e) = credentials(am.credentials.as_ref()) {
                errors.push(e);
            }
            if let Err(e) = client(
                am.ca_file.as_ref(),
                &am.at,
                am.urls.iter().any(|u| u.tls),
                am.timeout,
            ) {
                errors.push(e);
            }
        }
        for hook in &self.webhooks {
            let bearer = hook.bearer_token_file.clone().map(Credentials::Bearer);
            if let Err(e) = credentials(bearer.as_ref()) {
                errors.push(e);
            }
            if let Err(e) = client(hook.ca_file.as_ref(), &hook.at, hook.url.tls, hook.timeout) {
                errors.push(e);
            }
        }
        errors
    }
}

/// The `Authorization` header the credentials make.
pub(super) fn credentials(
    credentials: Option<&Credentials>,
) -> Result<Vec<(HeaderName, HeaderValue)>, AlertingError> {
    let value = match credentials {
        None => return Ok(Vec::new()),
        Some(Credentials::Bearer(file)) => {
            let tokens = crate::auth::read_token_file(&file.value)
                .map_err(|e| AlertingError::at(file, e.to_string()))?;
            format!("Bearer {}", tokens[0].expose())
        }
        Some(Credentials::Basic(file)) => {
            let text = std::fs::read_to_string(&file.value).map_err(|e| {
                AlertingError::at(file, format!("cannot read {}: {e}", file.value.display()))
            })?;
            let line = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .unwrap_or("");
            if !line.contains(':') {
                return Err(AlertingError::at(
                    file,
                    format!(
                        "{} holds no `user:password` line; write the user, a colon and the password on one line",
                        file.value.display()
                    ),
                ));
            }
            format!("Basic {}", http::base64(line.as_bytes()))
        }
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| {
        let file = match credentials {
            Some(Credentials::Bearer(f) | Credentials::Basic(f)) => f,
            None => unreachable!("returned above"),
        };
        AlertingError::at(
            file,
            format!(
                "{} holds characters a header cannot carry",
                file.value.display()
            ),
        )
    })?;
    value.set_sensitive(true);
    Ok(vec![(hyper::header::AUTHORIZATION, value)])
}

/// A client for the receivers; TLS only when one of them is `https`.
/// `at` is where an error without a `ca_file` to point at is reported.
pub(super) fn client(
    ca_file: Option<&Located<PathBuf>>,
    at: &Located<()>,
    tls: bool,
    timeout: Duration,
) -> Result<http::Client, AlertingError> {
    // A CA file given is read even for plain http, so check-config finds a
    // wrong one before the URL moves to https.
    if !tls && ca_file.is_none() {
        return Ok(http::Client::plain(timeout));
    }
    match ca_file {
        Some(file) => {
            http::Client::with_ca(&file.value, timeout).map_err(|e| AlertingError::at(file, e))
        }
        None => http::Client::with_ca(Path::new(http::SYSTEM_CA_FILE), timeout).map_err(|e| {
            AlertingError::at(
                at,
                format!("{e}; name the CA that signs the receiver's certificate with `ca_file`"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_make_the_authorization_header_and_name_a_bad_file() {
        let dir = std::env::temp_dir().join(format!("hopwatch-credentials-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let at = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            Located {
                value: path,
                file: "c.toml".into(),
                line: 3,
                col: 7,
            }
        };
        let bearer = Credentials::Bearer(at("token", "# comment\nam-token-0123456789\n"));
        let header = credentials(Some(&bearer)).unwrap();
        assert_eq!(header[0].0, hyper::header::AUTHORIZATION);
        assert_eq!(header[0].1, "Bearer am-token-0123456789");
        // Marked so that hyper never shows it in its Debug output.
        assert!(header[0].1.is_sensitive());
        let basic = Credentials::Basic(at("basic", "alice:open sesame\n"));
        assert_eq!(
            credentials(Some(&basic)).unwrap()[0].1,
            format!("Basic {}", http::base64(b"alice:open sesame"))
        );
        let short = Credentials::Bearer(at("short", "abc\n"));
        let error = credentials(Some(&short)).unwrap_err().to_string();
        assert!(error.starts_with("c.toml:3:7: "), "{error}");
        assert!(credentials(None).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_secret_file_others_can_read_is_warned_of() {
        use std::os::unix::fs::PermissionsExt;
        let path =
            std::env::temp_dir().join(format!("hopwatch-alerting-mode-{}", std::process::id()));
        std::fs::write(&path, "hook-token-0123456789\n").unwrap();
        let settings = |path: &std::path::Path| AlertingSettings {
            alertmanager: None,
            webhooks: vec![WebhookSettings {
                name: "ops".into(),
                url: Endpoint::parse("http://h/").unwrap(),
                headers: vec![],
                bearer_token_file: Some(Located {
                    value: path.to_path_buf(),
                    file: "c.toml".into(),
                    line: 1,
                    col: 1,
                }),
                ca_file: None,
                timeout: DEFAULT_TIMEOUT,
                queue: DEFAULT_QUEUE,
                max_retries: DEFAULT_MAX_RETRIES,
                backoff_max: DEFAULT_BACKOFF_MAX,
                at: Located {
                    value: (),
                    file: "c.toml".into(),
                    line: 1,
                    col: 1,
                },
            }],
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warnings = settings(&path).file_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains(&path.display().to_string()),
            "{warnings:?}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(settings(&path).file_warnings().is_empty());
        std::fs::remove_file(&path).unwrap();
    }
}
