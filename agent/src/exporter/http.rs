//! The one route `/metrics` has, read strictly: a request head of at most
//! 8 KiB, parsed by `httparse`; `GET /metrics` (any query) and nothing
//! else; no body; the bearer token compared in constant time. Pure, so every
//! refusal is tested without a socket.

use hopwatch_wire::Secret;

/// The longest request head read; a scrape's is about 200 bytes.
pub const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;

/// What the bytes read so far say.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// More bytes are needed.
    Partial,
    /// The request is complete: answer with this.
    Done(Route),
}

/// The answer a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Metrics,
    BadRequest,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    TooLarge,
    /// Every scrape slot stayed taken.
    Busy,
}

impl Route {
    /// The status line and the headers besides length and type.
    fn status(self) -> &'static str {
        match self {
            Route::Metrics => "200 OK",
            Route::BadRequest => "400 Bad Request",
            Route::Unauthorized => {
                "401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"hopwatch\""
            }
            Route::NotFound => "404 Not Found",
            Route::MethodNotAllowed => "405 Method Not Allowed\r\nAllow: GET",
            Route::TooLarge => "431 Request Header Fields Too Large",
            Route::Busy => "503 Service Unavailable\r\nRetry-After: 1",
        }
    }

    /// The body of a refusal: what was wrong and what to do.
    fn reason(self) -> &'static str {
        match self {
            Route::Metrics => "",
            Route::BadRequest => "bad request: send GET /metrics with no body\n",
            Route::Unauthorized => {
                "unauthorized: send the token of [output.prometheus] token_file as \"Authorization: Bearer <token>\" (Prometheus: authorization.credentials_file)\n"
            }
            Route::NotFound => "not found: this agent serves GET /metrics only\n",
            Route::MethodNotAllowed => "method not allowed: use GET /metrics\n",
            Route::TooLarge => "request head over 8 KiB\n",
            Route::Busy => "busy: 4 scrapes are being answered; retry in a second\n",
        }
    }
}

/// Reads a request head: a complete one is routed, a broken one refused.
pub fn parse(buf: &[u8], token: Option<&Secret>) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => Head::Done(Route::TooLarge),
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(httparse::Error::TooManyHeaders) => Head::Done(Route::TooLarge),
        Err(_) => Head::Done(Route::BadRequest),
        Ok(httparse::Status::Complete(_)) => Head::Done(route(&req, token)),
    }
}

fn route(req: &httparse::Request<'_, '_>, token: Option<&Secret>) -> Route {
    let path = req.path.unwrap_or("");
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if path != "/metrics" {
        return Route::NotFound;
    }
    if req.method != Some("GET") {
        return Route::MethodNotAllowed;
    }
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let has_body = header("transfer-encoding").is_some()
        || header("content-length").is_some_and(|v| v.trim_ascii() != b"0");
    if has_body {
        return Route::BadRequest;
    }
    if let Some(token) = token {
        let presented = header("authorization")
            .and_then(|v| v.strip_prefix(b"Bearer "))
            .map(<[u8]>::trim_ascii);
        if !presented.is_some_and(|p| same(p, token.expose().as_bytes())) {
            return Route::Unauthorized;
        }
    }
    Route::Metrics
}

/// Equal bytes, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The head of the answer, for a body of `len` bytes.
pub fn response_head(route: Route, len: usize) -> String {
    let kind = match route {
        Route::Metrics => "text/plain; version=0.0.4; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    };
    format!(
        "HTTP/1.1 {}\r\nContent-Type: {kind}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
        route.status()
    )
}

/// A refusal, head and body.
pub fn refusal(route: Route) -> String {
    let body = route.reason();
    response_head(route, body.len()) + body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_of(req: &str, token: Option<&str>) -> Head {
        let secret = token.map(Secret::new);
        parse(req.as_bytes(), secret.as_ref())
    }

    #[test]
    fn get_metrics_is_the_one_route() {
        let ok = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
        assert_eq!(route_of(ok, None), Head::Done(Route::Metrics));
        let query = "GET /metrics?name[]=x HTTP/1.0\r\n\r\n";
        assert_eq!(route_of(query, None), Head::Done(Route::Metrics));
        assert_eq!(
            route_of("GET / HTTP/1.1\r\n\r\n", None),
            Head::Done(Route::NotFound)
        );
        assert_eq!(
            route_of("GET /metrics/x HTTP/1.1\r\n\r\n", None),
            Head::Done(Route::NotFound)
        );
        assert_eq!(
            route_of("POST /metrics HTTP/1.1\r\n\r\n", None),
            Head::Done(Route::MethodNotAllowed)
        );
        assert_eq!(
            route_of(
                "GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
                None
            ),
            Head::Done(Route::BadRequest)
        );
        assert_eq!(
            route_of("GET /metrics HTTP/1.1\r\nHost:", None),
            Head::Partial
        );
        assert_eq!(
            route_of("GET /metrics HTTP/9.9\r\n\r\n", None),
            Head::Done(Route::BadRequest)
        );
    }

    #[test]
    fn a_head_past_8_kib_is_refused() {
        let long = format!("GET /metrics HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert_eq!(route_of(&long, None), Head::Done(Route::TooLarge));
        let many: String = (0..40).map(|i| format!("X{i}: y\r\n")).collect();
        let req = format!("GET /metrics HTTP/1.1\r\n{many}\r\n");
        assert_eq!(route_of(&req, None), Head::Done(Route::TooLarge));
    }

    #[test]
    fn the_bearer_token_must_match_exactly() {
        let token = Some("0123456789abcdef-token");
        let with = |auth: &str| format!("GET /metrics HTTP/1.1\r\n{auth}\r\n\r\n");
        assert_eq!(
            route_of(&with("Authorization: Bearer 0123456789abcdef-token"), token),
            Head::Done(Route::Metrics)
        );
        assert_eq!(
            route_of(
                &with("authorization: Bearer 0123456789abcdef-token "),
                token
            ),
            Head::Done(Route::Metrics)
        );
        for wrong in [
            "X: y",
            "Authorization: Bearer 0123456789abcdef-toke",
            "Authorization: Bearer 0123456789abcdef-tokeN",
            "Authorization: Basic 0123456789abcdef-token",
        ] {
            assert_eq!(
                route_of(&with(wrong), token),
                Head::Done(Route::Unauthorized),
                "{wrong}"
            );
        }
        assert_eq!(
            route_of(&with("X: y"), None),
            Head::Done(Route::Metrics),
            "no token configured: none asked"
        );
    }

    #[test]
    fn answers_are_well_formed() {
        let busy = refusal(Route::Busy);
        assert!(busy.starts_with("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"));
        let r = refusal(Route::Unauthorized);
        assert!(r.starts_with("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer"));
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.ends_with(&format!(
            "Content-Length: {}\r\nConnection: close",
            body.len()
        )));
    }
}
