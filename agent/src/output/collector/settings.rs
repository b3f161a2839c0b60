//! `[output.collector]` as the agent runs it: the validated settings, the
//! TLS settings, and where the token comes from. Config validation builds
//! these; the session reads them at every connection attempt.

use std::path::PathBuf;
use std::time::Duration;

/// The port collectors listen on for agents when `address` names none.
pub const DEFAULT_PORT: u16 = 7000;

pub use hopwatch_wire::Secret;

/// Where the agent's token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `token`: written in the config.
    Inline(Secret),
    /// `token_file`: read at every connection attempt, so a rotated token
    /// is picked up without a restart.
    File(PathBuf),
}

/// The shortest token accepted: a shorter one can be guessed.
pub const MIN_TOKEN_BYTES: usize = 16;

impl TokenSource {
    /// The token, or why it cannot be used (naming the file and the fix).
    pub fn read(&self) -> Result<Secret, String> {
        match self {
            TokenSource::Inline(secret) => Ok(secret.clone()),
            TokenSource::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read token_file {}: {e}", path.display()))?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(format!("token_file {} is empty", path.display()));
                }
                if token.len() < MIN_TOKEN_BYTES {
                    return Err(format!(
                        "the token in token_file {} is {} bytes, shorter than {MIN_TOKEN_BYTES}: \
                         write a longer one, e.g. `head -c 24 /dev/urandom | base64 > {}`",
                        path.display(),
                        token.len(),
                        path.display()
                    ));
                }
                Ok(Secret::new(token))
            }
        }
    }

    /// What an operator should fix about where the token is kept.
    pub fn warnings(&self) -> Vec<String> {
        use std::os::unix::fs::PermissionsExt;
        let TokenSource::File(path) = self else {
            return Vec::new();
        };
        match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o004 != 0 => vec![format!(
                "token_file {} is readable by every user (mode {:o}): chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            )],
            _ => Vec::new(),
        }
    }
}

/// `[output.collector.tls]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM CA certificates the collector's certificate must chain to;
    /// `None` uses the system's bundle.
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain and its key, for collectors that ask for
    /// one; both or neither.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The name to verify the collector's certificate against (and send as
    /// SNI); by default the host of `address`.
    pub server_name: Option<String>,
}

/// One collector the agent may dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorAddress {
    /// As written, for logs and status.
    pub text: String,
    pub host: String,
    pub port: u16,
}

impl CollectorAddress {
    /// Parses one `address` entry (see [`parse_address`]).
    pub fn parse(text: &str) -> Result<CollectorAddress, String> {
        let (host, port) = parse_address(text)?;
        Ok(CollectorAddress {
            text: text.to_string(),
            host,
            port,
        })
    }
}

/// `order`: which address a round of connection attempts starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressOrder {
    /// As listed: the first address is the preferred collector.
    #[default]
    InOrder,
    /// An order drawn once per agent start, so a fleet listing the same
    /// collectors spreads over them.
    Shuffled,
}

impl AddressOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressOrder::InOrder => "in_order",
            AddressOrder::Shuffled => "shuffled",
        }
    }
}

/// `[output.collector]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorSettings {
    /// `address`: one collector or several to fail over between, never
    /// empty.
    pub addresses: Vec<CollectorAddress>,
    pub order: AddressOrder,
    pub token: TokenSource,
    pub tls: Option<TlsSettings>,
    /// The spool's bound, in bytes.
    pub spool_max: u64,
    /// How long outstanding events may go unacknowledged before the
    /// connection counts as dead.
    pub ack_timeout: Duration,
    /// The longest wait between connection attempts.
    pub backoff_max: Duration,
}

/// Splits `host:port`, `[v6]:port`, or a bare host (port 7000).
pub fn parse_address(address: &str) -> Result<(String, u16), String> {
    let bad = |why: &str| {
        format!("collector address `{address}` {why}; expected HOST:PORT or [IPv6]:PORT")
    };
    if address.contains("://") {
        return Err(bad("has a scheme"));
    }
    let (host, port) = crate::output::split_host_port(address, DEFAULT_PORT, &bad)?;
    if host.contains(['/', ' ']) {
        return Err(bad("has a path or a space in its host"));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_default_port_and_brackets() {
        assert_eq!(
            parse_address("collector.example.net:7001").unwrap(),
            ("collector.example.net".to_string(), 7001)
        );
        assert_eq!(
            parse_address("10.0.0.5").unwrap(),
            ("10.0.0.5".to_string(), DEFAULT_PORT)
        );
        assert_eq!(
            parse_address("[2001:db8::5]:7000").unwrap(),
            ("2001:db8::5".to_string(), 7000)
        );
        for bad in [
            "tcp://host:7000",
            "2001:db8::5",
            "host:0",
            "host:port",
            ":7000",
            "[nope]:1",
            "[::1",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let token = TokenSource::Inline(Secret::new("s3cret"));
        assert!(!format!("{token:?}").contains("s3cret"));
    }

    #[test]
    fn a_short_or_world_readable_token_file_is_named_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("hopwatch-token-{}", std::process::id()));
        std::fs::write(&path, "short-secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let source = TokenSource::File(path.clone());
        let error = source.read().unwrap_err();
        assert!(
            error.contains(&path.display().to_string()) && error.contains("12 bytes"),
            "{error}"
        );
        assert!(!error.contains("short-secret"), "{error}");
        let warnings = source.warnings();
        assert!(warnings[0].contains("chmod 600"), "{warnings:?}");
        std::fs::write(&path, "a-long-enough-secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(source.read().unwrap().expose(), "a-long-enough-secret");
        assert!(source.warnings().is_empty());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_missing_token_file_is_an_error_without_contents() {
        let source = TokenSource::File(PathBuf::from("/nonexistent/hopwatch-token"));
        let error = source.read().unwrap_err();
        assert!(error.contains("/nonexistent/hopwatch-token"), "{error}");
    }
}
