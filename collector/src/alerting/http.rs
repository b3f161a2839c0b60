//! The client side of alert forwarding: one POST over a connection of its
//! own, plain or TLS (rustls with the ring provider the collector already
//! serves with). Alerts go out a few at a time and at most once a second per
//! receiver, so a connection pool would buy nothing measurable, and this way
//! the collector needs no HTTP client crate beyond hyper's own connection.
//!
//! An [`Endpoint`] shows only its scheme, host and port ([`Endpoint::shown`]):
//! a webhook's path or query often is its secret (chat services put the
//! token there), so it never reaches a log line or an error message.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use rustls::pki_types::ServerName;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

// Kept beside the other TLS file readers, which the store's TLS also uses.
pub use crate::tls::{SYSTEM_CA_FILE, roots};

/// An `http://` or `https://` URL, split into what connecting needs.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    /// The host as written, without brackets around an IPv6 address.
    pub host: String,
    pub port: u16,
    /// The path and query, `/` at least; never logged.
    pub path: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl Endpoint {
    /// Parses `url`; the error says what is wrong with it without repeating
    /// it (it may hold a secret).
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let uri: hyper::Uri = url.trim().parse().map_err(|e| format!("not a URL ({e})"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(format!("the scheme `{other}` is not http or https")),
            None => return Err("it has no scheme (http:// or https://)".into()),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| "it names no host".to_string())?;
        if authority.as_str().contains('@') {
            return Err("it carries credentials (user:password@)".into());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err("it names no host".into());
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        Ok(Endpoint {
            tls,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// `scheme://host:port`: what logs and metrics may show.
    pub fn shown(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// The path with `suffix` appended, one slash between them.
    pub fn join(&self, suffix: &str) -> String {
        let (path, query) = match self.path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (self.path.as_str(), None),
        };
        let mut joined = format!(
            "{}/{}",
            path.trim_end_matches('/'),
            suffix.trim_start_matches('/')
        );
        if let Some(q) = query {
            joined.push('?');
            joined.push_str(q);
        }
        joined
    }

    fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        match (self.host.contains(':'), self.port == default) {
            (true, true) => format!("[{}]", self.host),
            (true, false) => format!("[{}]:{}", self.host, self.port),
            (false, true) => self.host.clone(),
            (false, false) => format!("{}:{}", self.host, self.port),
        }
    }
}

/// Why a POST did not get a 2xx answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, std::io::Error),
    #[error("{0} did not answer within {1}")]
    Timeout(String, String),
    #[error("HTTP with {0} failed: {1}")]
    Http(String, hyper::Error),
    #[error("{0} answered {1}{2}")]
    Status(String, u16, String),
}

impl SendError {
    /// Whether trying the same request again may help: not for a 4xx
    /// answer, which says the request itself is wrong, except for 408 and
    /// 429 (come back later).
    pub fn retryable(&self) -> bool {
        match self {
            SendError::Status(_, code, _) => {
                !(400..500).contains(code) || *code == 408 || *code == 429
            }
            _ => true,
        }
    }
}

/// Sends POSTs with one timeout and one set of trusted CAs.
#[derive(Clone)]
pub struct Client {
    tls: Option<tokio_rustls::TlsConnector>,
    timeout: Duration,
}

impl Client {
    /// A client for plain HTTP only.
    pub fn plain(timeout: Duration) -> Client {
        Client { tls: None, timeout }
    }

    /// A client that also speaks TLS, trusting the CAs in `ca_file`.
    pub fn with_ca(ca_file: &Path, timeout: Duration) -> Result<Client, String> {
        let roots = roots(ca_file)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client {
            tls: Some(tokio_rustls::TlsConnector::from(Arc::new(config))),
            timeout,
        })
    }

    /// POSTs `body` as JSON to `path` of `to`, with `headers`; Ok when the
    /// answer is 2xx. The timeout covers connecting, sending and the answer.
    pub async fn post(
        &self,
        to: &Endpoint,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<(), SendError> {
        let wait = self.timeout;
        match tokio::time::timeout(wait, self.exchange(to, path, headers, body)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Timeout(
                to.shown(),
                humantime::format_duration(wait).to_string(),
            )),
        }
    }

    async fn exchange(
        &self,
        to: &Endpoint,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<(), SendError> {
        let stream = TcpStream::connect((to.host.as_str(), to.port))
            .await
            .map_err(|e| SendError::Connect(to.shown(), e))?;
        let _ = stream.set_nodelay(true);
        let mut request = hyper::Request::post(path)
            .header(hyper::header::HOST, to.host_header())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("hopwatch-collector/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
            .expect("a request from a parsed endpoint is valid");
        for (name, value) in headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        if to.tls {
            let Some(tls) = &self.tls else {
                return Err(SendError::Tls(
                    to.shown(),
                    std::io::Error::other("this client was built without TLS"),
                ));
            };
            let name = ServerName::try_from(to.host.clone())
                .map_err(|e| SendError::Tls(to.shown(), std::io::Error::other(e)))?;
            let stream = tls
                .connect(name, stream)
                .await
                .map_err(|e| SendError::Tls(to.shown(), e))?;
            send(to, hyper_util::rt::TokioIo::new(stream), request).await
        } else {
            send(to, hyper_util::rt::TokioIo::new(stream), request).await
        }
    }
}

async fn send<T>(
    to: &Endpoint,
    io: T,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(), SendError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| SendError::Http(to.shown(), e))?;
    // The connection drives itself until the answer is read; dropping the
    // sender then ends it.
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| SendError::Http(to.shown(), e))?;
        let status = response.status();
        // Read the body so the connection closes cleanly; only its start
        // goes into an error.
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_string();
            let text = if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            };
            Err(SendError::Status(to.shown(), status.as_u16(), text))
        }
    }
    .await;
    drop(sender);
    driver.abort();
    result
}

/// RFC 4648 base64 with padding, for a Basic `Authorization` header: a few
/// lines rather than a crate for one header.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_what_connecting_needs() {
        let e = Endpoint::parse("http://127.0.0.1:9093").unwrap();
        assert_eq!(
            (e.tls, e.host.as_str(), e.port, e.path.as_str()),
            (false, "127.0.0.1", 9093, "/")
        );
        assert_eq!(e.join("/api/v2/alerts"), "/api/v2/alerts");
        let e = Endpoint::parse("https://am.example.net/prefix/").unwrap();
        assert_eq!((e.tls, e.port), (true, 443));
        assert_eq!(e.join("api/v2/alerts"), "/prefix/api/v2/alerts");
        assert_eq!(e.host_header(), "am.example.net");
        let e = Endpoint::parse("http://[::1]:8080/hook?key=s3cret").unwrap();
        assert_eq!(e.host, "::1");
        assert_eq!(e.path, "/hook?key=s3cret");
        assert_eq!(e.join("x"), "/hook/x?key=s3cret");
        assert_eq!(e.host_header(), "[::1]:8080");
        // What may be logged never holds the path or query.
        assert_eq!(e.shown(), "http://[::1]:8080");
        assert_eq!(format!("{e:?}"), "http://[::1]:8080");
    }

    #[test]
    fn bad_urls_are_refused_without_repeating_them() {
        for (url, says) in [
            ("127.0.0.1:9093", "scheme"),
            ("ftp://host/x", "`ftp`"),
            ("http://user:s3cret@host/", "credentials"),
            ("http:///path", "not a URL"),
            ("not a url", "not a URL"),
        ] {
            let error = Endpoint::parse(url).unwrap_err();
            assert!(error.contains(says), "{url}: {error}");
            assert!(!error.contains("s3cret"), "{error}");
        }
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn only_a_request_the_receiver_may_take_later_is_retried() {
        let status = |code| SendError::Status("http://h:1".into(), code, String::new());
        assert!(status(500).retryable());
        assert!(status(503).retryable());
        assert!(status(429).retryable());
        assert!(status(408).retryable());
        assert!(!status(400).retryable());
        assert!(!status(404).retryable());
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(SendError::Connect("http://h:1".into(), refused).retryable());
    }

    #[tokio::test]
    async fn a_post_to_a_port_nobody_listens_on_fails_as_a_connect_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let to = Endpoint::parse(&format!("http://127.0.0.1:{port}/x")).unwrap();
        let error = Client::plain(Duration::from_secs(5))
            .post(&to, "/x", &[], Bytes::new())
            .await
            .unwrap_err();
        assert!(matches!(error, SendError::Connect(..)), "{error}");
    }
}
