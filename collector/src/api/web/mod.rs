//! The web page on the API's own listener: every page path answers the same
//! `index.html` (the script routes on the URL, so each view can be
//! bookmarked), the script and style come from `/assets/`, and a signed-out
//! browser is sent to `/signin` with the page it asked for. Every answer,
//! the API's included, carries the security headers, so no page can be
//! framed, run inline script or sniff a JSON answer into HTML.

pub mod assets;
pub mod session;

use crate::api::Api;
use crate::http::Authenticated;
use assets::{Asset, Assets};
use axum::Router;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use session::{Sessions, SignInLimiter};
use std::sync::Arc;
use std::time::SystemTime;

/// The Content-Security-Policy of every answer: nothing but this origin, no
/// inline script or style, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The paths that answer the page; each view's filters ride in the query.
pub const PAGES: &[&str] = &[
    "/fleet",
    "/alerts",
    "/links",
    "/links/timeline",
    "/links/worst",
    "/trace",
];

/// Where a sign-in goes when it was not sent from a page.
const HOME: &str = "/fleet";

/// What the page's routes share: the sessions, the sign-in limiter and the
/// files.
#[derive(Debug)]
pub struct Web {
    pub sessions: Sessions,
    pub sign_ins: SignInLimiter,
    pub assets: Assets,
    /// The listener speaks TLS: cookies are `Secure`.
    pub tls: bool,
    /// The listener is reachable off this host without TLS: tokens and
    /// cookies cross the network in clear, and the page says so.
    pub insecure: bool,
}

impl Web {
    pub fn new(sessions: Sessions, tls: bool, insecure: bool) -> Web {
        Web {
            sessions,
            sign_ins: SignInLimiter::default(),
            assets: Assets::build(),
            tls,
            insecure,
        }
    }
}

/// Whether a listener on `addr` without TLS lets tokens cross a network.
pub fn insecure(addr: std::net::SocketAddr, tls: bool) -> bool {
    !tls && !addr.ip().is_loopback()
}

/// The page, asset and session routes.
pub fn routes() -> Router<Arc<Api>> {
    let mut router = Router::new()
        .route("/", get(|| async { redirect(HOME) }))
        .route("/signin", get(signin_page))
        .route("/assets/{name}", get(asset))
        .route(
            "/api/v1/session",
            get(session::status)
                .post(session::sign_in)
                .delete(session::sign_out),
        );
    for page in PAGES {
        router = router.route(page, get(page_for_session));
    }
    router
}

/// Adds the security headers to every answer.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static(HOME)),
    );
    response
}

/// A page: the page for a live session (within its token's rate limit),
/// else the sign-in with this page to come back to.
async fn page_for_session(
    State(api): State<Arc<Api>>,
    connection: Option<Extension<Authenticated>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match session::from_cookie(&api.web, &headers, SystemTime::now()) {
        Some(s) => {
            // A signed-in browser's connection is kept when connections
            // run out, as one that showed a bearer token is.
            if let Some(Extension(connection)) = connection {
                connection.set();
            }
            if let Some(refused) = crate::api::rate_limited(&api, s.token) {
                return refused;
            }
            let mut response = send(api.web.assets.index(), &headers);
            // The same file for everyone, but only behind a session.
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-cache"),
            );
            response
        }
        None => {
            let back = uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or(uri.path());
            redirect(&format!("/signin?next={}", encode(back)))
        }
    }
}

/// `/signin`: the page; a browser already signed in goes on to `next`.
async fn signin_page(State(api): State<Arc<Api>>, uri: Uri, headers: HeaderMap) -> Response {
    if session::from_cookie(&api.web, &headers, SystemTime::now()).is_some() {
        let next = uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| *k == "next")
                .map(|(_, v)| decode(v))
        });
        return redirect(&encode_location(safe_next(next.as_deref())));
    }
    let mut response = send(api.web.assets.index(), &headers);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `/assets/NAME`: immutable when asked for by the version `index.html`
/// names, revalidated otherwise.
async fn asset(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(asset) = api.web.assets.get(&name).filter(|a| a.name != "index.html") else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let etag = format!("\"{}\"", asset.version);
    let pinned = uri.query() == Some(&format!("v={}", asset.version));
    let cache = if pinned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        send(asset, &headers)
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex in quotes"),
    );
    response
}

/// The file, gzipped if the client takes gzip.
fn send(asset: &Asset, headers: &HeaderMap) -> Response {
    let gzip = accepts_gzip(headers);
    let body = if gzip {
        asset.gzip.clone()
    } else {
        asset.body.clone()
    };
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Whether `Accept-Encoding` takes gzip (`q=0` refuses it).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// Where a sign-in may send the browser: a path on this site, never
/// another host (`//host`, `/\host`, `https://…`), the sign-in itself
/// or anything odd; the fleet otherwise.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/signin")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n
        }
        _ => HOME,
    }
}

/// Percent-encodes everything but unreserved characters and `/`, for a
/// path carried inside a query.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A local path as a `Location`: what is not safe in a header value is
/// percent-encoded, the path's own `?`, `&`, `=` and `%` kept.
fn encode_location(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_graphic() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a query value: `%XX` and `+` for a space.
fn decode(value: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| Some(hex(*bytes.get(i + 1)?)? << 4 | hex(*bytes.get(i + 2)?)?))
            .flatten();
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_only_ever_a_local_path() {
        assert_eq!(
            safe_next(Some("/alerts?state=firing")),
            "/alerts?state=firing"
        );
        assert_eq!(
            safe_next(Some("/links/timeline?agent=a&interface=b")),
            "/links/timeline?agent=a&interface=b"
        );
        for hostile in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "evil.example",
            "javascript:alert(1)",
            "/signin?next=/alerts",
            "/fleet\r\nSet-Cookie: x=y",
            "",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/fleet", "{hostile:?}");
        }
        assert_eq!(safe_next(None), "/fleet");
    }

    #[test]
    fn next_survives_the_round_trip_through_the_query() {
        let page = "/trace?src=10.0.0.1&dst=10.0.0.2&sport_range=1000-1010&x=a b%";
        let encoded = encode(page);
        assert!(!encoded.contains('&') && !encoded.contains('?') && !encoded.contains(' '));
        assert_eq!(decode(&encoded), page);
        assert_eq!(decode("a+b%2"), "a b%2");
        assert_eq!(decode("%zz%41"), "%zzA");
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
            accepts_gzip(&headers)
        };
        assert!(with("gzip, deflate, br"));
        assert!(with("br;q=1.0, GZIP;q=0.5"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("br, deflate"));
        assert!(!with("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn only_an_open_listener_without_tls_is_insecure() {
        let at = |s: &str| s.parse().unwrap();
        assert!(!insecure(at("127.0.0.1:8080"), false));
        assert!(!insecure(at("[::1]:8080"), false));
        assert!(insecure(at("0.0.0.0:8080"), false));
        assert!(insecure(at("192.0.2.1:8080"), false));
        assert!(!insecure(at("0.0.0.0:8080"), true));
    }
}
