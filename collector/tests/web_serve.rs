//! The web page as a browser meets it, over real TCP and real TLS: the
//! security headers on every kind of answer, gzip that inflates to the
//! identity body, signed-out pages sent to sign-in with a local `next`,
//! the session cookie's flags and its CSRF rule on the API, the per-address
//! sign-in limit, HTTPS whose certificate a SIGHUP swaps, the warning for
//! an open listener without TLS, and the page's URL on the first start.

use crate::util::{store_text, API_TOKEN, Server, TempDir, config_text, free_port};
use flate2::read::GzDecoder;
use hopwatch_collector::config::Config;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// An HTTP answer with every header line kept (there may be several
/// `Set-Cookie`s) and the body as bytes (it may be gzip).
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The server's certificate, over TLS.
    peer_cert: Option<Vec<u8>>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    /// The session cookie's id from `Set-Cookie`.
    fn session(&self) -> String {
        let cookie = self.header("set-cookie").expect("a Set-Cookie");
        let value = cookie
            .strip_prefix("hopwatch_session=")
            .and_then(|c| c.split(';').next())
            .expect("the session cookie");
        value.to_string()
    }
}

/// One request with `Connection: close`, plain or over TLS.
fn request(
    addr: SocketAddr,
    tls: Option<&Arc<rustls::ClientConfig>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    try_request(addr, tls, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn try_request(
    addr: SocketAddr,
    tls: Option<&Arc<rustls::ClientConfig>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Answer> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut raw = Vec::new();
    let mut peer_cert = None;
    match tls {
        None => {
            let mut stream = stream;
            stream.write_all(head.as_bytes())?;
            stream.write_all(body)?;
            stream.read_to_end(&mut raw)?;
        }
        Some(config) => {
            let name = ServerName::try_from("127.0.0.1").unwrap().to_owned();
            let connection = rustls::ClientConnection::new(Arc::clone(config), name)
                .map_err(std::io::Error::other)?;
            let mut tls = rustls::StreamOwned::new(connection, stream);
            tls.write_all(head.as_bytes())?;
            tls.write_all(body)?;
            match tls.read_to_end(&mut raw) {
                Ok(_) => {}
                // A server may close without close_notify once it answered.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
                Err(e) => return Err(e),
            }
            peer_cert = tls
                .conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec());
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    Ok(Answer {
        status,
        headers,
        body,
        peer_cert,
    })
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&body[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
    out
}

fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    request(addr, None, "GET", path, headers, b"")
}

fn sign_in(addr: SocketAddr, tls: Option<&Arc<rustls::ClientConfig>>, token: &str) -> Answer {
    let body = serde_json::json!({ "token": token }).to_string();
    request(
        addr,
        tls,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn cookie(id: &str) -> String {
    format!("hopwatch_session={id}")
}

fn assert_security_headers(answer: &Answer, what: &str) {
    assert_eq!(
        answer.header("content-security-policy"),
        Some(CSP),
        "{what}"
    );
    assert_eq!(
        answer.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        answer.header("referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn web_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web").join(name)
}

#[test]
fn pages_assets_and_api_answers_carry_the_security_headers() {
    let server = Server::start("web-headers", "", "");
    let addr = server.http;
    let id = sign_in(addr, None, API_TOKEN).session();
    let c = cookie(&id);
    let cases: Vec<(&str, Answer, u16)> = vec![
        ("root", get(addr, "/", &[]), 302),
        ("signed-out page", get(addr, "/fleet", &[]), 302),
        (
            "signed-in page",
            get(
                addr,
                "/links/timeline?agent=a&interface=b",
                &[("Cookie", &c)],
            ),
            200,
        ),
        ("sign-in page", get(addr, "/signin", &[]), 200),
        ("script", get(addr, "/assets/app.js", &[]), 200),
        ("style", get(addr, "/assets/app.css", &[]), 200),
        ("no such asset", get(addr, "/assets/nope.js", &[]), 404),
        (
            "API by bearer",
            get(
                addr,
                "/api/v1/agents",
                &[("Authorization", &format!("Bearer {API_TOKEN}"))],
            ),
            200,
        ),
        (
            "API by cookie",
            get(addr, "/api/v1/agents", &[("Cookie", &c)]),
            200,
        ),
        ("API refused", get(addr, "/api/v1/agents", &[]), 401),
        (
            "session",
            get(addr, "/api/v1/session", &[("Cookie", &c)]),
            200,
        ),
        ("health", get(addr, "/healthz", &[]), 200),
        ("unknown path", get(addr, "/nowhere", &[]), 404),
    ];
    for (what, answer, status) in &cases {
        assert_eq!(answer.status, *status, "{what}: {}", answer.text());
        assert_security_headers(answer, what);
    }
    assert_eq!(cases[0].1.header("location"), Some("/fleet"));
    let page = &cases[2].1;
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("private, no-cache"));
    let script = &cases[4].1;
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(script.body, std::fs::read(web_file("app.js")).unwrap());
    assert_eq!(
        cases[5].1.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    // The page pins its assets to their content: that URL may be cached
    // for good, the bare one is revalidated by its ETag.
    let html = page.text();
    let start = html.find("/assets/app.js?v=").expect("a pinned script") + 1;
    let pinned = &html[start - 1..start - 1 + html[start..].find('"').unwrap() + 1];
    let fixed = get(addr, pinned, &[]);
    assert_eq!(
        fixed.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(script.header("cache-control"), Some("no-cache"));
    let etag = script.header("etag").unwrap().to_string();
    let again = get(addr, "/assets/app.js", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_security_headers(&again, "304");
}

#[test]
fn gzip_and_identity_bodies_are_the_same_file() {
    let server = Server::start("web-gzip", "", "");
    let addr = server.http;
    let c = cookie(&sign_in(addr, None, API_TOKEN).session());
    // Signed in, /signin would send the browser on; it is asked signed out.
    for (path, c) in [
        ("/assets/app.js", ""),
        ("/assets/app.css", ""),
        ("/fleet", c.as_str()),
        ("/signin", ""),
    ] {
        let plain = get(addr, path, &[("Cookie", c)]);
        let packed = get(
            addr,
            path,
            &[("Cookie", c), ("Accept-Encoding", "gzip, br")],
        );
        let refused = get(
            addr,
            path,
            &[("Cookie", c), ("Accept-Encoding", "gzip;q=0")],
        );
        assert_eq!(plain.status, 200, "{path}");
        assert_eq!(plain.header("content-encoding"), None, "{path}");
        assert_eq!(packed.header("content-encoding"), Some("gzip"), "{path}");
        assert_eq!(refused.header("content-encoding"), None, "{path}");
        assert_eq!(packed.header("vary"), Some("Accept-Encoding"), "{path}");
        assert_eq!(gunzip(&packed.body), plain.body, "{path}");
        assert_eq!(refused.body, plain.body, "{path}");
    }
}

#[test]
fn signed_out_pages_go_to_sign_in_with_a_local_next() {
    let server = Server::start("web-redirect", "", "");
    let addr = server.http;
    for page in [
        "/fleet",
        "/alerts?agent=leaf%201&state=firing",
        "/links?minutes=60",
        "/links/timeline?agent=A&interface=Eth1-1&window=24h",
        "/links/worst?window=30d",
        "/trace?src=10.0.0.1&dst=10.0.0.2&all_paths=1&sport_range=1000-1010",
    ] {
        let answer = get(addr, page, &[]);
        assert_eq!(answer.status, 302, "{page}");
        let location = answer.header("location").unwrap();
        let next = location
            .strip_prefix("/signin?next=")
            .unwrap_or_else(|| panic!("{page} → {location}"));
        assert!(
            !next.contains(['&', '?', '=', ' ']),
            "{page}: next is one query value: {next}"
        );
        assert_eq!(percent_decode(next), page);
    }
    // Signed in, /signin goes on to `next` only when it is a path here.
    let c = cookie(&sign_in(addr, None, API_TOKEN).session());
    for (next, to) in [
        ("%2Falerts%3Fstate%3Dfiring", "/alerts?state=firing"),
        ("//evil.example/", "/fleet"),
        ("%2F%2Fevil.example%2F", "/fleet"),
        ("https://evil.example/", "/fleet"),
        ("%2F%5Cevil.example", "/fleet"),
        ("/fleet%0D%0ASet-Cookie:%20x=y", "/fleet"),
    ] {
        let answer = get(addr, &format!("/signin?next={next}"), &[("Cookie", &c)]);
        assert_eq!(answer.status, 302, "{next}");
        assert_eq!(answer.header("location"), Some(to), "{next}");
    }
    // Signed out, /signin is the page itself.
    let page = get(addr, "/signin?next=%2Ffleet", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn sign_in_gives_a_strict_http_only_cookie_and_sign_out_forgets_it() {
    let server = Server::start("web-session", "", "[http]\nsession_ttl = \"2h\"\n");
    let addr = server.http;
    let wrong = sign_in(addr, None, "not-the-api-token-at-all");
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.json()["error"]
            .as_str()
            .unwrap()
            .contains("wrong API token")
    );
    assert_eq!(wrong.header("set-cookie"), None);
    let not_json = request(
        addr,
        None,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("token={API_TOKEN}").as_bytes(),
    );
    assert_eq!(
        not_json.status,
        415,
        "a form cannot sign in: {}",
        not_json.text()
    );

    let answer = sign_in(addr, None, API_TOKEN);
    assert_eq!(answer.status, 204, "{}", answer.text());
    let set = answer.header("set-cookie").unwrap();
    let id = answer.session();
    assert_eq!(id.len(), 43, "256 bits in base64url: {id}");
    let flags: Vec<&str> = set.split(';').skip(1).map(str::trim).collect();
    assert_eq!(
        flags,
        ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=7200"],
        "{set}"
    );
    let c = cookie(&id);
    let status = get(addr, "/api/v1/session", &[("Cookie", &c)]);
    assert_eq!(status.status, 200);
    let json = status.json();
    assert_eq!(json["signed_in"], true);
    assert_eq!(json["tls"], false);
    assert_eq!(json["insecure"], false);
    let expires = humantime::parse_rfc3339(json["expires"].as_str().unwrap()).unwrap();
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(
        left > Duration::from_secs(7100) && left <= Duration::from_secs(7200),
        "{left:?}"
    );
    assert_eq!(get(addr, "/fleet", &[("Cookie", &c)]).status, 200);
    assert_eq!(get(addr, "/api/v1/session", &[]).status, 401);
    assert_eq!(
        get(
            addr,
            "/api/v1/session",
            &[("Cookie", "hopwatch_session=forged")]
        )
        .status,
        401
    );

    // Signing out is a change: it needs the CSRF header too.
    let refused = request(
        addr,
        None,
        "DELETE",
        "/api/v1/session",
        &[("Cookie", &c)],
        b"",
    );
    assert_eq!(refused.status, 403);
    assert_eq!(get(addr, "/api/v1/session", &[("Cookie", &c)]).status, 200);
    let out = request(
        addr,
        None,
        "DELETE",
        "/api/v1/session",
        &[("Cookie", &c), ("X-Hopwatch-Csrf", "1")],
        b"",
    );
    assert_eq!(out.status, 204);
    let cleared = out.header("set-cookie").unwrap();
    assert!(
        cleared.starts_with("hopwatch_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(get(addr, "/api/v1/session", &[("Cookie", &c)]).status, 401);
    assert_eq!(get(addr, "/api/v1/agents", &[("Cookie", &c)]).status, 401);
    assert_eq!(get(addr, "/fleet", &[("Cookie", &c)]).status, 302);
}

#[test]
fn the_cookie_reads_the_api_but_a_change_needs_the_csrf_header() {
    let server = Server::start("web-csrf", "", "");
    let addr = server.http;
    let c = cookie(&sign_in(addr, None, API_TOKEN).session());
    assert_eq!(get(addr, "/api/v1/agents", &[("Cookie", &c)]).status, 200);
    let head = request(addr, None, "HEAD", "/api/v1/agents", &[("Cookie", &c)], b"");
    assert_eq!(head.status, 200);
    let body = br#"{"src": "10.1.0.10", "dst": "10.2.0.10"}"#;
    let json = ("Content-Type", "application/json");
    let forged = request(
        addr,
        None,
        "POST",
        "/api/v1/trace/flow",
        &[("Cookie", &c), json],
        body,
    );
    assert_eq!(forged.status, 403, "{}", forged.text());
    assert!(
        forged.json()["error"]
            .as_str()
            .unwrap()
            .contains("X-Hopwatch-Csrf: 1"),
        "{}",
        forged.text()
    );
    let wrong = request(
        addr,
        None,
        "POST",
        "/api/v1/trace/flow",
        &[("Cookie", &c), json, ("X-Hopwatch-Csrf", "yes")],
        body,
    );
    assert_eq!(wrong.status, 403);
    // With the header the request goes through to the trace, which finds
    // no switch to start at in an empty fleet.
    let page = request(
        addr,
        None,
        "POST",
        "/api/v1/trace/flow",
        &[("Cookie", &c), json, ("X-Hopwatch-Csrf", "1")],
        body,
    );
    assert_eq!(page.status, 400, "{}", page.text());
    assert_eq!(page.json()["field"], "src");
    // A bearer token needs no header: no browser sends one by itself.
    let bearer = format!("Bearer {API_TOKEN}");
    let api = request(
        addr,
        None,
        "POST",
        "/api/v1/trace/flow",
        &[("Authorization", &bearer), json],
        body,
    );
    assert_eq!(api.status, 400, "{}", api.text());
}

#[test]
fn sign_in_attempts_are_limited_per_client_address() {
    let server = Server::start("web-guess", "", "");
    let addr = server.http;
    for i in 0..10 {
        let answer = sign_in(addr, None, &format!("guess-number-{i:04}-xxxxxxxx"));
        assert_eq!(answer.status, 401, "guess {i}");
    }
    let limited = sign_in(addr, None, "guess-number-0011-xxxxxxxx");
    assert_eq!(limited.status, 429, "{}", limited.text());
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=6).contains(&wait), "{wait}");
    // Even the right token waits: the storm learns nothing more.
    assert_eq!(sign_in(addr, None, API_TOKEN).status, 429);
    // And the API's bearer path is no way around it.
    let bearer = get(
        addr,
        "/api/v1/agents",
        &[("Authorization", "Bearer guess-number-0012-xxxxxxxx")],
    );
    assert_eq!(bearer.status, 429, "{}", bearer.text());
}

#[test]
fn config_checks_the_web_keys() {
    let parse = |http: &str| Config::parse(&format!("[http]\n{http}"), "c.toml");
    let c = parse("").unwrap();
    assert_eq!(c.web.session_ttl, Duration::from_secs(12 * 3600));
    assert!(c.web.tls.is_none());
    let c = parse("session_ttl = \"30m\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n").unwrap();
    assert_eq!(c.web.session_ttl, Duration::from_secs(1800));
    assert_eq!(c.web.tls.unwrap().cert_file.value, PathBuf::from("c.pem"));
    for (text, words) in [
        (
            "session_ttl = \"10s\"",
            "`session_ttl` \"10s\" is out of range",
        ),
        ("session_ttl = \"soon\"", "session_ttl"),
        (
            "tls_cert = \"c.pem\"",
            "[http] has `tls_cert` but no `tls_key`",
        ),
        (
            "tls_key = \"k.pem\"",
            "[http] has `tls_key` but no `tls_cert`",
        ),
        (
            "tls_cert = \"\"\ntls_key = \"k.pem\"",
            "`tls_cert` is empty",
        ),
    ] {
        let error = parse(text).unwrap_err().to_string();
        assert!(error.contains(words), "{text}: {error}");
        assert!(error.contains("c.toml:"), "{error}");
    }
    // check-config reads the files and points at the key.
    let c =
        parse("tls_cert = \"/nonexistent/web.pem\"\ntls_key = \"/nonexistent/web.key\"").unwrap();
    let error = c.check_files().unwrap_err().to_string();
    assert!(
        error.contains("c.toml:2:")
            && error.contains("cannot read certificates from /nonexistent/web.pem"),
        "{error}"
    );
    // The example config documents and validates the keys.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/collector.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    for key in ["session_ttl", "tls_cert", "tls_key"] {
        assert!(text.contains(key), "config/collector.toml documents {key}");
    }
    Config::load(&example).unwrap();
}

#[test]
fn the_embedded_assets_are_every_web_file_within_200_kib() {
    let server = Server::start("web-budget", "", "");
    let c = cookie(&sign_in(server.http, None, API_TOKEN).session());
    let mut total = 0;
    for entry in std::fs::read_dir(web_file("")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            // Screenshots are documentation, not served.
            assert_eq!(entry.file_name(), "screenshots");
            continue;
        }
        let name = entry.file_name().into_string().unwrap();
        let bytes = std::fs::read(entry.path()).unwrap();
        total += bytes.len();
        let served = if name == "index.html" {
            get(server.http, "/fleet", &[("Cookie", &c)])
        } else {
            get(server.http, &format!("/assets/{name}"), &[])
        };
        assert_eq!(served.status, 200, "collector/web/{name} is embedded");
        if name != "index.html" {
            assert_eq!(served.body, bytes, "collector/web/{name} as built");
        }
    }
    println!("web assets: {total} bytes");
    assert!(
        total <= 200 * 1024,
        "the web page's files weigh {total} bytes, over 200 KiB"
    );
}

/// PEM files for a test CA and two certificates for 127.0.0.1 signed by it.
struct Pki {
    dir: PathBuf,
    ca: CertificateDer<'static>,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hopwatch web test CA");
        let issuer =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        Pki {
            dir: dir.to_path_buf(),
            ca: CertificateDer::from(issuer.der().to_vec()),
            issuer,
        }
    }

    /// Writes a new certificate and key to `web.pem`/`web.key`; its DER.
    fn issue(&self, name: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(self.dir.join("web.pem"), cert.pem()).unwrap();
        std::fs::write(self.dir.join("web.key"), key.serialize_pem()).unwrap();
        cert.der().to_vec()
    }

    fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }
}

/// The collector binary on a config of its own; killed on drop.
struct Binary {
    child: Child,
    http: SocketAddr,
    stderr: PathBuf,
}

impl Binary {
    fn start(dir: &Path, http_listen: &str, extra: &str) -> Binary {
        let http = free_port();
        let keys = format!(
            "agents_listen = \"127.0.0.1:{}\"\nhttp_listen = \"{http_listen}:{http}\"\n",
            free_port()
        );
        let config = dir.join("collector.toml");
        std::fs::write(&config, config_text(dir, &keys, extra)).unwrap();
        let stderr = dir.join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
            .args(["run", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Binary {
            child,
            http: format!("127.0.0.1:{http}").parse().unwrap(),
            stderr,
        }
    }

    fn hangup(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Polls `f` until it gives Some, or fails after 20 s.
    fn wait<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(t) = f() {
                return t;
            }
            assert!(Instant::now() < deadline, "{what}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn https_serves_the_page_with_secure_cookies_and_sighup_swaps_the_certificate() {
    let dir = TempDir::new("web-https");
    let pki = Pki::new(&dir.path);
    let first = pki.issue("first.test");
    let extra = format!(
        "[http]\ntls_cert = {:?}\ntls_key = {:?}\n",
        dir.path.join("web.pem").display().to_string(),
        dir.path.join("web.key").display().to_string()
    );
    let collector = Binary::start(&dir.path, "127.0.0.1", &extra);
    let tls = pki.client();
    let addr = collector.http;
    let served = |tls: &Arc<rustls::ClientConfig>| {
        try_request(addr, Some(tls), "GET", "/signin", &[], b"")
            .ok()
            .filter(|a| a.status == 200)
    };
    let page = collector.wait("the HTTPS listener answers", || served(&tls));
    assert_eq!(page.peer_cert.as_deref(), Some(&first[..]));
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_security_headers(&page, "HTTPS page");
    // Plain HTTP on the TLS port gets no page.
    assert!(try_request(addr, None, "GET", "/signin", &[], b"").map_or(true, |a| a.status != 200));

    let signed = sign_in(addr, Some(&tls), API_TOKEN);
    assert_eq!(signed.status, 204);
    let set = signed.header("set-cookie").unwrap();
    assert!(set.ends_with("; Secure"), "{set}");
    let c = cookie(&signed.session());
    let status = request(
        addr,
        Some(&tls),
        "GET",
        "/api/v1/session",
        &[("Cookie", &c)],
        b"",
    )
    .json();
    assert_eq!(status["tls"], true);
    assert_eq!(status["insecure"], false);

    // A renewed certificate is served after SIGHUP, without a restart.
    let second = pki.issue("second.test");
    assert_ne!(first, second);
    collector.hangup();
    collector.wait("the new certificate is served", || {
        served(&tls).filter(|a| a.peer_cert.as_deref() == Some(&second[..]))
    });
    assert!(
        collector
            .log()
            .contains("SIGHUP: reloaded the HTTPS certificate")
    );
    // The session outlives the reload.
    let again = request(
        addr,
        Some(&tls),
        "GET",
        "/api/v1/session",
        &[("Cookie", &c)],
        b"",
    );
    assert_eq!(again.status, 200);

    // A broken one is refused and the last good one stays.
    std::fs::write(dir.path.join("web.pem"), "not a certificate\n").unwrap();
    collector.hangup();
    collector.wait("the bad certificate is logged", || {
        collector
            .log()
            .contains("the new HTTPS certificate cannot be used")
            .then_some(())
    });
    let still = served(&tls).expect("still serving");
    assert_eq!(still.peer_cert.as_deref(), Some(&second[..]));
}

#[test]
fn an_open_listener_without_tls_warns_and_the_session_says_insecure() {
    let dir = TempDir::new("web-insecure");
    let collector = Binary::start(&dir.path, "0.0.0.0", "");
    collector.wait("the collector answers", || {
        try_request(collector.http, None, "GET", "/healthz", &[], b"")
            .ok()
            .filter(|a| a.status == 200)
    });
    let log = collector.log();
    assert!(
        log.contains("WARN")
            && log.contains(
                "without TLS: API tokens and web page session cookies cross the network in clear"
            ),
        "{log}"
    );
    let c = cookie(&sign_in(collector.http, None, API_TOKEN).session());
    let status = get(collector.http, "/api/v1/session", &[("Cookie", &c)]).json();
    assert_eq!(status["insecure"], true);
    assert_eq!(status["tls"], false);

    // On the loopback there is nothing to warn about.
    let dir = TempDir::new("web-loopback");
    let collector = Binary::start(&dir.path, "127.0.0.1", "");
    collector.wait("the collector answers", || {
        try_request(collector.http, None, "GET", "/healthz", &[], b"")
            .ok()
            .filter(|a| a.status == 200)
    });
    assert!(!collector.log().contains("without TLS"));
    // SIGHUP without a certificate to read ends nothing.
    collector.hangup();
    collector.wait("the SIGHUP is logged", || {
        collector
            .log()
            .contains("SIGHUP: nothing to reload")
            .then_some(())
    });
    let health = try_request(collector.http, None, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(health.status, 200);
}

#[test]
fn the_first_start_prints_the_web_page_url_beside_the_token_file() {
    let dir = TempDir::new("web-banner");
    let (agents, http) = (free_port(), free_port());
    let config = dir.path.join("collector.toml");
    // No tokens configured: the embedded default's first start.
    std::fs::write(
        &config,
        format!(
            "[collector]\ndata_dir = {:?}\nagents_listen = \"127.0.0.1:{agents}\"\nhttp_listen = \"127.0.0.1:{http}\"\n{}",
            dir.path.display().to_string(),
            store_text(&dir.path)
        ),
    )
    .unwrap();
    let stdout = dir.path.join("stdout.log");
    let child = Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
        .args(["run", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let collector = Binary {
        child,
        http: format!("127.0.0.1:{http}").parse().unwrap(),
        stderr: stdout.clone(),
    };
    let text = collector.wait("the banner", || {
        let text = std::fs::read_to_string(&stdout).unwrap_or_default();
        text.contains("/metrics").then_some(text)
    });
    let token_file = dir.path.join("api-token");
    let line = format!(
        "Web page: http://127.0.0.1:{http}/ (sign in with the API token in {})",
        token_file.display()
    );
    assert!(text.contains(&line), "{text}");
}
