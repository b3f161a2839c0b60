//! What a person sees on each page, driven through the browser: the
//! contract's selectors, read back as text.

use super::harness::{Browser, can_use_browser, number_in};
use crate::util::{
    AGENT_TOKEN, API_TOKEN, FakeAgent, Server, alert, event, heartbeat, link, now_ms,
};
use serde_json::json;
use std::time::{Duration, Instant, UNIX_EPOCH};

fn base(server: &Server) -> String {
    format!("http://{}", server.http)
}

fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

/// The harness itself: a page that loads from 127.0.0.2 is caught by both
/// checks (the request off 127.0.0.1 and the console's failed load), and a
/// plain collector URL is clean.
#[test]
fn browser_harness_sees_requests_and_console() {
    if !can_use_browser("browser_harness_sees_requests_and_console") {
        return;
    }
    let server = Server::start("browser-harness", "", "");
    let mut browser = Browser::start("browser_harness_sees_requests_and_console");
    // /healthz is no page, so the browser's favicon guess finds nothing.
    browser.expect_failed_load("/favicon.ico");
    browser.goto(&format!("{}/healthz", base(&server)));
    assert_eq!(browser.outside_requests(), Vec::<String>::new());
    browser.goto("data:text/html,<img src='http://127.0.0.2:9/probe.png'>");
    let caught = browser.wait_js(
        Duration::from_secs(5),
        "return performance.getEntriesByType('resource').length > 0;",
        vec![],
    );
    assert!(caught.is_some(), "the probe image was never requested");
    let outside = browser.outside_requests();
    assert_eq!(outside, vec!["http://127.0.0.2:9/probe.png".to_string()]);
    let errors = browser.console_errors();
    assert!(
        errors.iter().any(|e| e.contains("127.0.0.2")),
        "the failed load is not in the console: {errors:?}"
    );
}

#[test]
fn browser_signin_with_token_and_refusal_and_redirect() {
    let test = "browser_signin_with_token_and_refusal_and_redirect";
    if !can_use_browser(test) {
        return;
    }
    let server = Server::start("browser-signin", "", "");
    let mut browser = Browser::start(test);
    browser.expect_failed_load("/api/v1/session");

    // Signed out, a bookmarked page sends the browser to sign-in, keeping
    // where it was going.
    browser.goto(&format!("{}/alerts?severity=critical", base(&server)));
    browser.wait_for("#signin-form", Duration::from_secs(5));
    let path = browser.path();
    assert!(path.starts_with("/signin?next="), "{path}");
    assert!(path.contains("alerts"), "{path}");
    assert!(!path.contains(API_TOKEN));
    browser.screenshot("signin");

    // A wrong token is refused with a message, and the page stays.
    browser.fill("#signin-token", "not-the-token");
    browser.click("#signin-submit");
    let shown = browser.wait_js(
        Duration::from_secs(5),
        "const e = document.querySelector('#signin-error'); \
         return e && e.offsetParent !== null && e.textContent.trim();",
        vec![],
    );
    assert!(shown.is_some(), "no #signin-error for a wrong token");
    assert!(browser.path().starts_with("/signin"));
    assert_eq!(browser.count("#signout:not([hidden])"), 0);

    // The right token signs in and lands where it was going.
    browser.fill("#signin-token", API_TOKEN);
    browser.click("#signin-submit");
    let landed = browser.wait_js(
        Duration::from_secs(5),
        "return location.pathname === '/alerts' && location.search;",
        vec![],
    );
    assert_eq!(landed, Some(json!("?severity=critical")));
    browser.wait_for("#signout:not([hidden])", Duration::from_secs(5));
    // The token is nowhere the page's script can read it.
    let stored = browser.js(
        "return JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie;",
        vec![],
    );
    assert!(!stored.as_str().unwrap().contains(API_TOKEN), "{stored}");

    // Signing out sends every page back to sign-in.
    browser.click("#signout");
    browser.wait_for("#signin-form", Duration::from_secs(5));
    browser.goto(&format!("{}/fleet", base(&server)));
    browser.wait_for("#signin-form", Duration::from_secs(5));
    assert!(browser.path().starts_with("/signin"), "{}", browser.path());
    assert!(
        browser.requests().iter().all(|u| !u.contains(API_TOKEN)),
        "the token went into a URL"
    );
    browser.finish();
}

/// A link going down reaches the open Fleet page within 2 s without a
/// reload, and a firing alert shows on Alerts.
#[test]
fn browser_fleet_live_and_alerts() {
    let test = "browser_fleet_live_and_alerts";
    if !can_use_browser(test) {
        return;
    }
    let server = Server::start("browser-fleet", "", "");
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let t0 = now_ms();
    agent
        .send(&[event(
            "leaf1",
            "b1",
            1,
            t0,
            heartbeat(&[("eth0", true), ("eth1", true)]),
        )])
        .unwrap();
    assert!(agent.wait_acked("b1", 1, Duration::from_secs(5)));

    let browser = Browser::start(test);
    browser.sign_in(&base(&server), API_TOKEN);
    browser.goto(&format!("{}/fleet", base(&server)));
    let row = "tr[data-agent=\"leaf1\"]";
    browser.wait_for(row, Duration::from_secs(5));
    let down_cell = format!("{row} td[data-col=links_down]");
    assert_eq!(
        browser.text(&down_cell).map(|t| t.trim().to_string()),
        Some("0".into())
    );
    assert!(
        browser
            .text(&format!("{row} td[data-col=state]"))
            .unwrap()
            .contains("online")
    );
    browser.js("window.hopwatchNotReloaded = true;", vec![]);

    let sent = Instant::now();
    agent
        .send(&[event("leaf1", "b1", 2, now_ms(), link("eth1", false))])
        .unwrap();
    let shown = browser.wait_js(
        Duration::from_secs(2),
        "const c = document.querySelector(arguments[0]); \
         return c && c.textContent.trim() === '1';",
        vec![json!(down_cell)],
    );
    let took = sent.elapsed();
    assert!(shown.is_some(), "the link down did not show within 2 s");
    assert_eq!(
        browser.js("return window.hopwatchNotReloaded === true;", vec![]),
        json!(true)
    );
    eprintln!("fleet page showed the link down after {took:?}");
    browser.screenshot("fleet");

    agent
        .send(&[event("leaf1", "b1", 3, now_ms(), alert("eth1", true))])
        .unwrap();
    assert!(agent.wait_acked("b1", 3, Duration::from_secs(5)));
    browser.click("a[data-nav=alerts]");
    browser.wait_for(
        "#alerts-table tr[data-alert][data-state=firing]",
        Duration::from_secs(5),
    );
    let firing = "#alerts-table tr[data-alert][data-state=firing]";
    assert_eq!(
        browser
            .text(&format!("{firing} td[data-col=rule]"))
            .unwrap()
            .trim(),
        "tx-errors"
    );
    assert_eq!(
        browser
            .text(&format!("{firing} td[data-col=agent]"))
            .unwrap()
            .trim(),
        "leaf1"
    );
    assert_eq!(
        browser
            .text(&format!("{firing} td[data-col=interface]"))
            .unwrap()
            .trim(),
        "eth1"
    );
    browser.screenshot("alerts");
    browser.finish();
}

/// A 3 s outage is one down segment of 3 s with availability under 100 %;
/// a window starting inside the outage begins with the carried-in state.
/// The events carry their own times, so the outage's length is known.
#[test]
fn browser_links_timeline_outage_and_carried_state() {
    let test = "browser_links_timeline_outage_and_carried_state";
    if !can_use_browser(test) {
        return;
    }
    let server = Server::start("browser-timeline", "", "");
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let t0 = now_ms() - 10 * 60_000;
    agent
        .send(&[
            event("leaf1", "b1", 1, t0, heartbeat(&[("eth1", true)])),
            event("leaf1", "b1", 2, t0 + 60_000, link("eth1", false)),
            event("leaf1", "b1", 3, t0 + 63_000, link("eth1", true)),
            event("leaf1", "b1", 4, now_ms(), heartbeat(&[("eth1", true)])),
        ])
        .unwrap();
    assert!(agent.wait_acked("b1", 4, Duration::from_secs(5)));

    let browser = Browser::start(test);
    browser.sign_in(&base(&server), API_TOKEN);
    browser.goto(&format!("{}/links?minutes=60", base(&server)));
    browser.wait_for(
        "#changes-table tr[data-change][data-kind=went_down]",
        Duration::from_secs(5),
    );
    browser.wait_for(
        "#changes-table tr[data-change][data-kind=came_up]",
        Duration::from_secs(5),
    );
    browser.screenshot("links");

    browser.goto(&format!(
        "{}/links/timeline?agent=leaf1&interface=eth1&window=1h",
        base(&server)
    ));
    browser.wait_for("#timeline svg rect[data-state]", Duration::from_secs(5));
    let downs = browser.js(
        "return [...document.querySelectorAll('#timeline svg rect[data-state=down]')]\
         .map(r => [r.dataset.from, r.dataset.to]);",
        vec![],
    );
    let downs = downs.as_array().unwrap();
    assert_eq!(downs.len(), 1, "{downs:?}");
    let from = humantime::parse_rfc3339(downs[0][0].as_str().unwrap()).unwrap();
    let to = humantime::parse_rfc3339(downs[0][1].as_str().unwrap()).unwrap();
    let length = to.duration_since(from).unwrap().as_secs_f64();
    assert!((length - 3.0).abs() < 0.1, "down for {length} s");
    let availability = browser
        .text("#timeline-stats [data-stat=availability]")
        .unwrap();
    // Only the heartbeats' and changes' times are known, so the 3 s weigh
    // against little; under 100 % is the point.
    let percent = number_in(&availability);
    assert!(percent < 100.0 && percent > 0.0, "{availability}");
    let outages = browser.text("#timeline-stats [data-stat=outages]").unwrap();
    assert_eq!(number_in(&outages), 1.0, "{outages}");
    browser.screenshot("timeline");

    // A window that starts 1 s into the outage opens with it.
    browser.goto(&format!(
        "{}/links/timeline?agent=leaf1&interface=eth1&since={}&until={}",
        base(&server),
        rfc3339(t0 + 61_000),
        rfc3339(t0 + 120_000)
    ));
    browser.wait_for(
        "#timeline svg rect[data-carried=true]",
        Duration::from_secs(5),
    );
    let carried = browser.js(
        "const r = document.querySelector('#timeline svg rect[data-state]'); \
         return [r.dataset.state, r.dataset.carried, r.dataset.from, r.dataset.to];",
        vec![],
    );
    assert_eq!(carried[0], "down", "{carried}");
    assert_eq!(carried[1], "true", "{carried}");
    let to = humantime::parse_rfc3339(carried[3].as_str().unwrap()).unwrap();
    assert_eq!(to, UNIX_EPOCH + Duration::from_millis((t0 + 63_000) as u64));

    browser.goto(&format!("{}/links/worst?window=30d", base(&server)));
    browser.wait_for("#worst-table tr[data-interface]", Duration::from_secs(5));
    browser.screenshot("worst");
    browser.finish();
}

/// Names from agents are text: a hostile agent name and an interface name
/// with quotes render literally, no element is made of them, no dialog
/// opens.
#[test]
fn browser_hostile_names_render_as_text() {
    let test = "browser_hostile_names_render_as_text";
    if !can_use_browser(test) {
        return;
    }
    let server = Server::start("browser-hostile", "", "");
    let name = "<img src=x onerror=alert(1)>";
    let interface = "eth\"0'<b>";
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, name, "b1").unwrap();
    let t0 = now_ms();
    agent
        .send(&[
            event(name, "b1", 1, t0 - 5_000, heartbeat(&[(interface, true)])),
            event(name, "b1", 2, t0 - 4_000, link(interface, false)),
            event(name, "b1", 3, t0 - 3_000, alert(interface, true)),
        ])
        .unwrap();
    assert!(agent.wait_acked("b1", 3, Duration::from_secs(5)));

    let browser = Browser::start(test);
    browser.sign_in(&base(&server), API_TOKEN);
    let pages = [
        ("/fleet", "#fleet-table tr[data-agent]"),
        ("/alerts", "#alerts-table tr[data-alert]"),
        ("/links?minutes=60", "#changes-table tr[data-change]"),
    ];
    for (page, rows) in pages {
        browser.goto(&format!("{}{page}", base(&server)));
        browser.wait_for(rows, Duration::from_secs(5));
        let shown = browser.js(
            "return [...document.querySelectorAll(arguments[0])].map(r => r.textContent).join('\\n');",
            vec![json!(rows)],
        );
        let shown = shown.as_str().unwrap();
        assert!(shown.contains(name), "{page}: {shown:?}");
        if page != "/fleet" {
            assert!(shown.contains(interface), "{page}: {shown:?}");
        }
        assert_eq!(browser.count("img"), 0, "{page}: an img element was made");
        assert_eq!(
            browser.count("main b, table b"),
            0,
            "{page}: a b element was made"
        );
        assert_eq!(browser.dialog(), None, "{page}: a dialog opened");
    }
    browser.goto(&format!(
        "{}/links/timeline?agent={}&interface={}&window=1h",
        base(&server),
        url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(interface.as_bytes()).collect::<String>()
    ));
    browser.wait_for("#timeline svg rect[data-state]", Duration::from_secs(5));
    assert_eq!(browser.count("img"), 0);
    assert_eq!(browser.dialog(), None);
    browser.finish();
}
