//! A real headless Chromium driven over WebDriver (fantoccini talking to
//! Debian's chromedriver), so the web page is tested as a person's browser
//! runs it: its script, its CSP, its cookies. WebDriver rather than the
//! DevTools protocol because chromedriver is the piece Debian ships beside
//! chromium at the same version, and fantoccini is a small client over plain
//! HTTP on loopback (no TLS stack, no browser download). The console and the
//! network log come from chromedriver's `goog:loggingPrefs`; every test ends
//! with [`Browser::finish`], which fails on a console error or a request that
//! left loopback, and a failing test prints the page's text and both logs.

#![allow(dead_code)]

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The size every page is tested and photographed at.
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 800;

/// Whether a browser test can run: outside CI it skips with a printed reason
/// when Chromium or chromedriver is missing; under `CI=true` (where `.ci/run`
/// installs both) a missing browser fails the test.
pub fn can_use_browser(test: &str) -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!(
        "{} not installed (apt-get install chromium chromium-driver)",
        missing.join(" and ")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {reason}, and CI=true makes this test mandatory");
    }
    eprintln!("skipping {test}: {reason}");
    false
}

/// One chromedriver and one headless Chromium with a fresh profile.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    profile: PathBuf,
    test: String,
    /// Hosts a request may go to besides 127.0.0.1 (a lab's addresses).
    allowed_hosts: Vec<String>,
    /// URL parts whose failed loads a test expects (a refused sign-in's
    /// 401 shows in the console as a failed resource).
    expected_failures: Vec<String>,
    console: Vec<Value>,
    network: Vec<String>,
    /// The page's viewport, which screenshots have.
    size: (u32, u32),
}

/// chromedriver's log endpoint (`/session/{id}/se/log`), which fantoccini
/// has no method for; reading a log empties it, so the browser keeps what
/// it read.
#[derive(Debug)]
struct GetLog(&'static str);

impl WebDriverCompatibleCommand for GetLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": self.0 }).to_string()),
        )
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a session in a
    /// headless Chromium at 1280×800.
    pub fn start(test: &str) -> Browser {
        Browser::start_in(test, None)
    }

    /// As [`Browser::start`], with chromedriver, Chromium and the WebDriver
    /// client's sockets inside the network namespace `netns` (a lab's
    /// management namespace, where its collector listens on loopback).
    pub fn start_in(test: &str, netns: Option<&str>) -> Browser {
        Browser::start_with(test, netns, None)
    }

    /// As [`Browser::start`], with Chromium's clock in the time zone `zone`
    /// (an IANA name such as `Asia/Kolkata`): chromedriver hands its
    /// environment to the browser it starts, and the page's `Date` follows
    /// `TZ`.
    pub fn start_zoned(test: &str, zone: &str) -> Browser {
        Browser::start_with(test, None, Some(zone))
    }

    fn start_with(test: &str, netns: Option<&str>, zone: Option<&str>) -> Browser {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let profile = std::env::temp_dir().join(format!(
            "hopwatch-browser-{test}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let port = free_port();
        let mut command = match netns {
            Some(name) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", name, CHROMEDRIVER]);
                c
            }
            None => Command::new(CHROMEDRIVER),
        };
        if let Some(zone) = zone {
            command.env("TZ", zone);
        }
        let driver = command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        // The client's sockets are made on the runtime's worker, which
        // enters the namespace first; nothing runs on the calling thread.
        let handle = netns.map(|n| format!("/var/run/netns/{n}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .on_thread_start(move || {
                if let Some(path) = &handle {
                    let file = std::fs::File::open(path).expect("netns handle");
                    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                }
            })
            .enable_all()
            .build()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listening = runtime.block_on(async {
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
                while tokio::net::TcpStream::connect(addr).await.is_err() {
                    if tokio::time::Instant::now() >= deadline {
                        return false;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                true
            })
            .await
            .unwrap()
        });
        assert!(
            listening,
            "{test}: chromedriver did not listen on {addr} within 20 s"
        );
        let capabilities = json!({
            "browserName": "chrome",
            // An alert() a hostile name might open stays open, so the test
            // can see it rather than chromedriver dismissing it.
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    // Chromium refuses to run as root inside its sandbox.
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    format!("--window-size={WIDTH},{HEIGHT}"),
                    format!("--user-data-dir={}", profile.display()),
                    // Nothing of the browser's own may reach out either.
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-extensions",
                    "--lang=en-US",
                ],
                "perfLoggingPrefs": { "enableNetwork": true, "enablePage": false },
            },
            "goog:loggingPrefs": { "browser": "ALL", "performance": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = runtime
            .block_on(async move {
                tokio::spawn(async move {
                    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                        .capabilities(capabilities)
                        .connect(&format!("http://{addr}"))
                        .await
                })
                .await
                .unwrap()
            })
            .unwrap_or_else(|e| panic!("{test}: a Chromium session: {e}"));
        let mut browser = Browser {
            runtime,
            client: Some(client),
            driver,
            profile,
            test: test.to_string(),
            allowed_hosts: vec!["127.0.0.1".to_string()],
            expected_failures: Vec::new(),
            console: Vec::new(),
            network: Vec::new(),
            size: (WIDTH, HEIGHT),
        };
        browser.resize(WIDTH, HEIGHT);
        browser
    }

    /// Gives the page a viewport of `width`×`height` CSS pixels (a phone is
    /// 390×844); screenshots are taken at that size from then on.
    pub fn resize(&mut self, width: u32, height: u32) {
        // The window's size includes what the browser draws around the
        // page, which the page's own size leaves out.
        let frame = self.js(
            "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];",
            vec![],
        );
        let (dw, dh) = (
            frame[0].as_u64().unwrap_or(0) as u32,
            frame[1].as_u64().unwrap_or(0) as u32,
        );
        self.runtime
            .block_on(self.client().set_window_size(width + dw, height + dh))
            .unwrap_or_else(|e| panic!("{}: resize to {width}×{height}: {e}", self.test));
        let viewport = self.js("return [window.innerWidth, window.innerHeight];", vec![]);
        assert_eq!(
            viewport,
            json!([width, height]),
            "{}: the page's viewport",
            self.test
        );
        self.size = (width, height);
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    /// Lets requests go to `host` too (a lab's collector address).
    pub fn allow_host(&mut self, host: &str) {
        self.allowed_hosts.push(host.to_string());
    }

    /// A failed load of a URL containing `part` is expected, not an error.
    pub fn expect_failed_load(&mut self, part: &str) {
        self.expected_failures.push(part.to_string());
    }

    pub fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client().goto(url))
            .unwrap_or_else(|e| panic!("{}: open {url}: {e}", self.test));
    }

    /// The page's path and query.
    pub fn path(&self) -> String {
        let url = self.runtime.block_on(self.client().current_url()).unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.runtime
            .block_on(self.client().execute(script, args))
            .unwrap_or_else(|e| panic!("{}: script failed: {e}\n{script}", self.test))
    }

    /// Polls `script` (which returns a value; null/false/undefined mean
    /// "not yet") until it gives something or `timeout` passes.
    pub fn wait_js(&self, timeout: Duration, script: &str, args: Vec<Value>) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.js(script, args.clone());
            if !matches!(value, Value::Null | Value::Bool(false)) {
                return Some(value);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for an element matching `selector`; panics after `timeout`.
    pub fn wait_for(&self, selector: &str, timeout: Duration) {
        let found = self.wait_js(
            timeout,
            "return document.querySelector(arguments[0]) !== null;",
            vec![json!(selector)],
        );
        assert!(
            found.is_some(),
            "{}: no {selector} within {timeout:?} on {}",
            self.test,
            self.path()
        );
    }

    /// The `textContent` of the first element matching `selector`.
    pub fn text(&self, selector: &str) -> Option<String> {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            vec![json!(selector)],
        )
        .as_str()
        .map(str::to_string)
    }

    /// How many elements match `selector`.
    pub fn count(&self, selector: &str) -> usize {
        self.js(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(selector)],
        )
        .as_u64()
        .unwrap() as usize
    }

    /// Types `text` into the element matching `selector`.
    pub fn fill(&self, selector: &str, text: &str) {
        self.runtime.block_on(async {
            let e = self
                .client()
                .find(fantoccini::Locator::Css(selector))
                .await
                .unwrap_or_else(|e| panic!("{}: no {selector}: {e}", self.test));
            e.clear().await.unwrap();
            e.send_keys(text).await.unwrap();
        });
    }

    pub fn click(&self, selector: &str) {
        self.runtime.block_on(async {
            self.client()
                .find(fantoccini::Locator::Css(selector))
                .await
                .unwrap_or_else(|e| panic!("{}: no {selector}: {e}", self.test))
                .click()
                .await
                .unwrap_or_else(|e| panic!("{}: click {selector}: {e}", self.test));
        });
    }

    /// Opens `url` in a new window (a background tab would be throttled) and
    /// stays there.
    pub fn open_window(&self, url: &str) {
        self.runtime.block_on(async {
            let tab = self.client().new_window(false).await.unwrap();
            self.client().switch_to_window(tab.handle).await.unwrap();
            self.client().goto(url).await.unwrap();
        });
    }

    /// The text of an open alert/confirm/prompt dialog, if one is open.
    pub fn dialog(&self) -> Option<String> {
        self.runtime.block_on(self.client().get_alert_text()).ok()
    }

    /// Signs in at `base` (`http://127.0.0.1:port`) with `token` through
    /// the form and waits to leave the sign-in page.
    pub fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/signin"));
        self.wait_for("#signin-form", Duration::from_secs(5));
        self.fill("#signin-token", token);
        self.click("#signin-submit");
        let left = self.wait_js(
            Duration::from_secs(5),
            "return !location.pathname.startsWith('/signin') && location.pathname;",
            vec![],
        );
        assert!(
            left.is_some(),
            "{}: still on {} after signing in",
            self.test,
            self.path()
        );
    }

    /// Presses `key` (a character or a [`fantoccini::key::Key`]) as a
    /// keyboard does: it goes to whatever has the focus.
    pub fn press(&self, key: impl Into<char>) {
        let key = key.into();
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.runtime
            .block_on(self.client().perform_actions(keys))
            .unwrap_or_else(|e| panic!("{}: press {key:?}: {e}", self.test));
    }

    /// Types `text` key by key into whatever has the focus.
    pub fn type_keys(&self, text: &str) {
        let mut keys = KeyActions::new("keyboard".into());
        for c in text.chars() {
            keys = keys
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c });
        }
        self.runtime
            .block_on(self.client().perform_actions(keys))
            .unwrap_or_else(|e| panic!("{}: type: {e}", self.test));
    }

    /// Writes the viewport as `target/screenshots/<page>.png`.
    pub fn screenshot(&self, page: &str) -> PathBuf {
        let png = self
            .runtime
            .block_on(self.client().screenshot())
            .unwrap_or_else(|e| panic!("{}: screenshot: {e}", self.test));
        // A PNG's IHDR holds its width and height at bytes 16..24.
        let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        assert_eq!(
            (size(16), size(20)),
            self.size,
            "{}: screenshot size",
            self.test
        );
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{page}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Reads what chromedriver has collected since the last read.
    fn drain_logs(&mut self) {
        let Some(client) = self.client.clone() else {
            return;
        };
        if let Ok(Value::Array(entries)) =
            self.runtime.block_on(client.issue_cmd(GetLog("browser")))
        {
            self.console.extend(entries);
        }
        if let Ok(Value::Array(entries)) = self
            .runtime
            .block_on(client.issue_cmd(GetLog("performance")))
        {
            for entry in entries {
                let Some(message) = entry["message"].as_str() else {
                    continue;
                };
                let Ok(message) = serde_json::from_str::<Value>(message) else {
                    continue;
                };
                if message["message"]["method"] == "Network.requestWillBeSent"
                    && let Some(url) = message["message"]["params"]["request"]["url"].as_str()
                {
                    self.network.push(url.to_string());
                }
            }
        }
    }

    /// The console's errors, less the failed loads the test expected.
    pub fn console_errors(&mut self) -> Vec<String> {
        self.drain_logs();
        self.console
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .filter(|m| !self.expected_failures.iter().any(|part| m.contains(part)))
            .collect()
    }

    /// Every URL requested whose host is not loopback or an allowed host.
    pub fn outside_requests(&mut self) -> Vec<String> {
        self.drain_logs();
        self.network
            .iter()
            .filter(|u| !request_stays(u, &self.allowed_hosts))
            .cloned()
            .collect()
    }

    /// Every URL the page requested so far.
    pub fn requests(&mut self) -> Vec<String> {
        self.drain_logs();
        self.network.clone()
    }

    /// The checks every test ends with: no console error, no request off
    /// loopback (or the lab), no dialog open.
    pub fn finish(mut self) {
        let errors = self.console_errors();
        assert!(
            errors.is_empty(),
            "{}: console errors: {errors:#?}",
            self.test
        );
        let outside = self.outside_requests();
        assert!(
            outside.is_empty(),
            "{}: requests left 127.0.0.1: {outside:#?}",
            self.test
        );
        assert!(
            !self.requests().is_empty(),
            "{}: the network log is empty, so it proves nothing",
            self.test
        );
        assert_eq!(self.dialog(), None, "{}: a dialog is open", self.test);
    }

    /// What a failing test prints: the page's text and both logs.
    fn report(&mut self) {
        let text = self
            .client
            .clone()
            .and_then(|c| {
                self.runtime
                    .block_on(c.execute(
                        "return document.body ? document.body.innerText : ''",
                        vec![],
                    ))
                    .ok()
            })
            .unwrap_or_default();
        let path = self
            .client
            .clone()
            .and_then(|c| self.runtime.block_on(c.current_url()).ok())
            .map(|u| u.to_string())
            .unwrap_or_default();
        self.drain_logs();
        eprintln!(
            "--- {}: page {path} ---\n{}",
            self.test,
            text.as_str().unwrap_or_default()
        );
        eprintln!("--- {}: console ---", self.test);
        for entry in &self.console {
            eprintln!("{} {}", entry["level"], entry["message"]);
        }
        eprintln!("--- {}: network ---", self.test);
        for url in &self.network {
            eprintln!("{url}");
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.report();
        }
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Whether a request for `url` stays on loopback or the allowed hosts
/// (`data:` and `blob:` never leave the browser, and `chrome:` is its own
/// new-tab page, loaded before the test opens anything).
pub fn request_stays(url: &str, allowed: &[String]) -> bool {
    match url::Url::parse(url) {
        Ok(u)
            if matches!(
                u.scheme(),
                "data" | "blob" | "about" | "chrome" | "chrome-untrusted"
            ) =>
        {
            true
        }
        Ok(u) => u.host_str().is_some_and(|h| {
            allowed
                .iter()
                .any(|a| a.trim_matches(['[', ']']) == h.trim_matches(['[', ']']))
        }),
        Err(_) => false,
    }
}

/// The first number in `text` (a stat reads "Availability 99.9 %").
pub fn number_in(text: &str) -> f64 {
    let start = text
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or_else(|| panic!("no number in {text:?}"));
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().unwrap()
}

/// `target/screenshots/` of the workspace.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("screenshots")
}

#[test]
fn request_check_allows_loopback_and_lab_only() {
    let allowed = vec!["127.0.0.1".to_string(), "fd00::1".to_string()];
    assert!(request_stays("http://127.0.0.1:8080/fleet", &allowed));
    assert!(request_stays("data:image/png;base64,AAAA", &allowed));
    assert!(request_stays("http://[fd00::1]:80/x", &allowed));
    assert!(!request_stays("https://fonts.googleapis.com/css", &allowed));
    assert!(!request_stays("http://127.0.0.2/", &allowed));
    assert!(!request_stays("http://localhost/", &allowed));
    assert!(!request_stays("not a url", &allowed));
    assert!(request_stays(
        "chrome://resources/js/static_types.js",
        &allowed
    ));
}

#[test]
fn number_in_reads_a_stat() {
    assert_eq!(number_in("Availability99.916 %"), 99.916);
    assert_eq!(number_in("Outages 1"), 1.0);
}
