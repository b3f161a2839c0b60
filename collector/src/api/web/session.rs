//! Sign-in for the web page: an API token is exchanged once for a random
//! session cookie, so the token never sits in the browser (no URL, no
//! `localStorage`) and a stolen cookie dies with its session. Sessions live
//! in memory only, bounded in number, and expire; each keeps the index of
//! the API token it came from, so it shares that token's rate limit. The
//! clock is an argument throughout, so expiry is tested without waiting.

use super::Web;
use crate::api::Api;
use crate::http::ClientAddr;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The session cookie's name.
pub const COOKIE: &str = "hopwatch_session";

/// The header a cookie-authenticated state-changing request must carry. A
/// form on another site cannot set a header, and a script there cannot
/// either without a CORS preflight this server never grants.
pub const CSRF_HEADER: &str = "x-hopwatch-csrf";

/// Sessions held at most; a sign-in past it drops expired ones first, then
/// the one closest to expiry.
pub const MAX_SESSIONS: usize = 10_000;

/// Sign-in attempts one client address may make at once, and how often it
/// gets another: ten at once, then one every six seconds, so a wrong-token
/// storm guesses at most ten times a minute per address.
const SIGN_IN_BURST: f64 = 10.0;
const SIGN_IN_EVERY: Duration = Duration::from_secs(6);

/// Client addresses the sign-in limiter tracks at most; past it, with no
/// address back to a full bucket, sign-in waits (fails closed), so a flood
/// from many addresses cannot grow the map without bound.
const SIGN_IN_ADDRESSES: usize = 4096;

/// One signed-in browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// The index of the API token it was made from.
    pub token: usize,
    pub expires: SystemTime,
}

/// The live sessions by id.
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    max: usize,
    // Held for a map operation, never across an await.
    live: Mutex<HashMap<String, Session>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the system's random number generator failed")]
pub struct RandomFailed;

impl Sessions {
    pub fn new(ttl: Duration, max: usize) -> Sessions {
        Sessions {
            ttl,
            max,
            live: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session for API token `token` at `now`; its id (256 random
    /// bits, base64url) and the session.
    pub fn create(&self, token: usize, now: SystemTime) -> Result<(String, Session), RandomFailed> {
        let mut bytes = [0u8; 32];
        rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut bytes)
            .map_err(|_| RandomFailed)?;
        let id = base64url(&bytes);
        let session = Session {
            token,
            expires: now + self.ttl,
        };
        let mut live = self.live.lock().expect("sessions poisoned");
        if live.len() >= self.max {
            live.retain(|_, s| s.expires > now);
        }
        if live.len() >= self.max
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone())
        {
            live.remove(&oldest);
        }
        live.insert(id.clone(), session);
        Ok((id, session))
    }

    /// The session `id` names if it is live at `now`; an expired one is
    /// forgotten.
    pub fn find(&self, id: &str, now: SystemTime) -> Option<Session> {
        let mut live = self.live.lock().expect("sessions poisoned");
        match live.get(id) {
            Some(s) if s.expires > now => Some(*s),
            Some(_) => {
                live.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.live.lock().expect("sessions poisoned").remove(id);
    }

    pub fn len(&self) -> usize {
        self.live.lock().expect("sessions poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Unpadded base64url, the cookie-safe alphabet.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// The session cookie's value among the request's cookies.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// The live session the request's cookie names.
pub fn from_cookie(web: &Web, headers: &HeaderMap, now: SystemTime) -> Option<Session> {
    cookie(headers).and_then(|id| web.sessions.find(id, now))
}

/// Whether a request authenticated by cookie may go on: reads always,
/// anything else only with `X-Hopwatch-Csrf: 1`.
pub fn csrf_ok(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::GET
        || method == Method::HEAD
        || headers.get(CSRF_HEADER).map(HeaderValue::as_bytes) == Some(b"1")
}

/// The 403 for a cookie-authenticated change without the CSRF header.
pub fn csrf_refused() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "a request signed in by the session cookie that changes something must carry the header `X-Hopwatch-Csrf: 1` (or use `Authorization: Bearer <token>`)",
    )
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// The `Set-Cookie` value for a new session, `Secure` under TLS.
pub fn set_cookie(id: &str, ttl: Duration, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        ttl.as_secs()
    )
}

/// The `Set-Cookie` value that makes the browser forget the session.
pub fn clear_cookie(tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}")
}

/// Token buckets per client address for sign-in attempts, right or wrong.
#[derive(Debug, Default)]
pub struct SignInLimiter {
    // Held for a map operation, never across an await.
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl SignInLimiter {
    /// Whether `client` may try at `now`, without taking an attempt: for
    /// bearer tokens, which count only when wrong.
    pub fn peek(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let buckets = self.buckets.lock().expect("sign-in limiter poisoned");
        match buckets.get(&bucket_key(client)) {
            Some(&bucket) if level(bucket, now) < 1.0 => Err(wait(level(bucket, now))),
            _ => Ok(()),
        }
    }

    /// Takes one attempt from `client`'s bucket at `now`; when empty, how
    /// long until the next is allowed.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = bucket_key(client);
        let mut buckets = self.buckets.lock().expect("sign-in limiter poisoned");
        if !buckets.contains_key(&key) && buckets.len() >= SIGN_IN_ADDRESSES {
            buckets.retain(|_, b| level(*b, now) < SIGN_IN_BURST);
            if buckets.len() >= SIGN_IN_ADDRESSES {
                return Err(SIGN_IN_EVERY);
            }
        }
        let bucket = buckets.entry(key).or_insert((SIGN_IN_BURST, now));
        let tokens = level(*bucket, now);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now.max(bucket.1));
            Ok(())
        } else {
            *bucket = (tokens, now.max(bucket.1));
            Err(wait(tokens))
        }
    }
}

/// A bucket's attempts at `now`, refilled since it was last touched.
fn level((tokens, at): (f64, Instant), now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(at).as_secs_f64();
    (tokens + elapsed / SIGN_IN_EVERY.as_secs_f64()).min(SIGN_IN_BURST)
}

/// How long until a bucket at `tokens` holds one attempt.
fn wait(tokens: f64) -> Duration {
    Duration::from_secs_f64((1.0 - tokens).max(0.0) * SIGN_IN_EVERY.as_secs_f64())
}

/// IPv6 clients are counted per /64: one host usually holds a whole /64
/// and could otherwise take a fresh address for every guess.
fn bucket_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
        v4 => v4,
    }
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

/// `POST /api/v1/session`: `{"token": …}` → 204 and the cookie.
pub async fn sign_in(State(api): State<Arc<Api>>, request: Request) -> Response {
    let client = request
        .extensions()
        .get::<ClientAddr>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let web = &api.web;
    if let Err(wait) = web.sign_ins.check(client, Instant::now()) {
        api.metrics.api_rate_limited.fetch_add(1, Ordering::Relaxed);
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("too many sign-in attempts from this address; retry in {seconds}s"),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return response;
    }
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the sign-in as JSON: `Content-Type: application/json` and {\"token\": \"<API token>\"}",
        );
    }
    let body = match axum::body::to_bytes(request.into_body(), 64 * 1024).await {
        Ok(body) => body,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the sign-in body is over 64 KiB; send {\"token\": \"<API token>\"}",
            );
        }
    };
    sign_in_with(&api, client, &body, SystemTime::now())
}

fn sign_in_with(api: &Api, client: IpAddr, body: &Bytes, now: SystemTime) -> Response {
    let Ok(SignIn { token }) = serde_json::from_slice::<SignIn>(body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the sign-in body must be JSON {\"token\": \"<API token>\"}",
        );
    };
    let Some(index) = api.tokens.check_api(token.trim()) else {
        api.metrics.api_unauthorized.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%client, "A web page sign-in gave a wrong API token.");
        return error(
            StatusCode::UNAUTHORIZED,
            "wrong API token: use one of the collector's api_tokens (by default the file api-token in its data_dir)",
        );
    };
    let web = &api.web;
    let (id, _) = match web.sessions.create(index, now) {
        Ok(made) => made,
        Err(e) => {
            tracing::error!(error = %e, "Cannot make a session id.");
            return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
        }
    };
    tracing::info!(%client, "Signed in to the web page.");
    let mut response = StatusCode::NO_CONTENT.into_response();
    let cookie = set_cookie(&id, web.sessions.ttl(), web.tls);
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("a cookie of base64url and fixed text"),
    );
    response
}

/// `GET /api/v1/session`: whether this browser is signed in, until when,
/// and whether the connection is safe.
pub async fn status(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let web = &api.web;
    let Some(session) = from_cookie(web, &headers, SystemTime::now()) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    if let Some(refused) = crate::api::rate_limited(&api, session.token) {
        return refused;
    }
    axum::Json(serde_json::json!({
        "signed_in": true,
        "expires": humantime::format_rfc3339_seconds(session.expires).to_string(),
        "tls": web.tls,
        "insecure": web.insecure,
    }))
    .into_response()
}

/// `DELETE /api/v1/session`: forgets the session and clears the cookie.
pub async fn sign_out(State(api): State<Arc<Api>>, method: Method, headers: HeaderMap) -> Response {
    let web = &api.web;
    if let Some(id) = cookie(&headers)
        && web.sessions.find(id, SystemTime::now()).is_some()
    {
        if !csrf_ok(&method, &headers) {
            return csrf_refused();
        }
        web.sessions.remove(id);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear_cookie(web.tls)).expect("fixed text"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_session_lives_for_its_ttl_and_no_longer() {
        let sessions = Sessions::new(12 * HOUR, 10);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (id, session) = sessions.create(3, t0).unwrap();
        assert_eq!(session.expires, t0 + 12 * HOUR);
        assert_eq!(sessions.find(&id, t0).map(|s| s.token), Some(3));
        let last = t0 + 12 * HOUR - Duration::from_millis(1);
        assert!(sessions.find(&id, last).is_some());
        assert_eq!(sessions.find(&id, t0 + 12 * HOUR), None);
        // Expired means forgotten, even for an earlier clock.
        assert_eq!(sessions.find(&id, t0), None);
        assert!(sessions.is_empty());
        assert_eq!(sessions.find("not-a-session", t0), None);
    }

    #[test]
    fn ids_are_256_random_bits_in_base64url() {
        let sessions = Sessions::new(HOUR, 100);
        let t0 = SystemTime::now();
        let ids: Vec<String> = (0..50).map(|_| sessions.create(0, t0).unwrap().0).collect();
        for id in &ids {
            assert_eq!(id.len(), 43, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
    }

    #[test]
    fn base64url_matches_the_rfc_vectors() {
        // RFC 4648 section 10, unpadded, plus the URL-safe letters.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(input.as_bytes()), expected);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn a_full_store_drops_the_expired_then_the_oldest() {
        let sessions = Sessions::new(HOUR, 3);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (first, _) = sessions.create(0, t0).unwrap();
        let (second, _) = sessions.create(0, t0 + Duration::from_secs(1)).unwrap();
        let (third, _) = sessions.create(0, t0 + Duration::from_secs(2)).unwrap();
        let now = t0 + Duration::from_secs(3);
        let (fourth, _) = sessions.create(0, now).unwrap();
        assert_eq!(sessions.len(), 3);
        assert_eq!(sessions.find(&first, now), None);
        for id in [&second, &third, &fourth] {
            assert!(sessions.find(id, now).is_some());
        }
        // An hour on, the first three have expired: the new one replaces
        // them, the live one stays.
        let later = t0 + HOUR + Duration::from_secs(2);
        let (fifth, _) = sessions.create(0, later).unwrap();
        assert_eq!(sessions.len(), 2);
        assert!(sessions.find(&fourth, later).is_some());
        assert!(sessions.find(&fifth, later).is_some());
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        assert_eq!(cookie(&headers), None);
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; hopwatch_session=abc_-1 ; x=y"),
        );
        assert_eq!(cookie(&headers), Some("abc_-1"));
        let mut empty = HeaderMap::new();
        empty.insert(
            header::COOKIE,
            HeaderValue::from_static("hopwatch_session="),
        );
        assert_eq!(cookie(&empty), None);
    }

    #[test]
    fn the_cookie_is_secure_only_under_tls() {
        let plain = set_cookie("abc", 12 * HOUR, false);
        assert_eq!(
            plain,
            "hopwatch_session=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200"
        );
        assert!(set_cookie("abc", HOUR, true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
        assert!(!clear_cookie(false).contains("Secure"));
    }

    #[test]
    fn changes_by_cookie_need_the_csrf_header() {
        let mut headers = HeaderMap::new();
        assert!(csrf_ok(&Method::GET, &headers));
        assert!(csrf_ok(&Method::HEAD, &headers));
        assert!(!csrf_ok(&Method::POST, &headers));
        assert!(!csrf_ok(&Method::DELETE, &headers));
        headers.insert(CSRF_HEADER, HeaderValue::from_static("0"));
        assert!(!csrf_ok(&Method::POST, &headers));
        headers.insert(CSRF_HEADER, HeaderValue::from_static("1"));
        assert!(csrf_ok(&Method::POST, &headers));
    }

    #[test]
    fn sign_in_attempts_are_limited_per_address() {
        let limiter = SignInLimiter::default();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(limiter.check(a, t0), Ok(()));
        }
        let wait = limiter.check(a, t0).unwrap_err();
        assert_eq!(wait, SIGN_IN_EVERY);
        // Another address is not held back by the first one's storm.
        assert_eq!(limiter.check(b, t0), Ok(()));
        // One more attempt per six seconds.
        assert!(limiter.check(a, t0 + Duration::from_secs(5)).is_err());
        assert_eq!(limiter.check(a, t0 + Duration::from_secs(6)), Ok(()));
        assert!(limiter.check(a, t0 + Duration::from_secs(6)).is_err());
        // An IPv6 host counts as its /64.
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(limiter.check(v6a, t0), Ok(()));
        }
        assert!(limiter.check(v6b, t0).is_err());
    }

    #[test]
    fn a_flood_of_addresses_cannot_grow_the_limiter_without_bound() {
        let limiter = SignInLimiter::default();
        let t0 = Instant::now();
        for i in 0..SIGN_IN_ADDRESSES as u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert_eq!(limiter.check(ip, t0), Ok(()));
        }
        let newcomer = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9));
        assert!(limiter.check(newcomer, t0).is_err());
        // Once the others' buckets have refilled they are dropped.
        assert_eq!(limiter.check(newcomer, t0 + SIGN_IN_EVERY), Ok(()));
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }
}
