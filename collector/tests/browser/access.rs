//! Whether a person can use the page, not only whether it is right: at a
//! phone's width nothing scrolls sideways, the keyboard alone reaches and
//! works every control, every text meets the WCAG contrast ratio, and times
//! show in the browser's zone with the UTC time on hover. The collector is
//! fed by fake switches that answer traces, so every page has content.

use super::harness::{Browser, HEIGHT, WIDTH, can_use_browser};
use crate::trace_fakes::{leaf1_history, line_fabric, wait_owned};
use crate::util::{API_TOKEN, FakeAgent, Server, alert, event, link, now_ms};
use fantoccini::key::Key;
use hopwatch_wire::event::{Body, Severity};
use serde_json::{Value, json};
use std::time::{Duration, UNIX_EPOCH};

/// A deadline, not a delay: each wait ends when its element is drawn. A
/// trace's page on a loaded machine (the PostgreSQL suite shares two cores
/// with a database) has taken more than 10 s.
const WAIT: Duration = Duration::from_secs(30);
/// A phone's viewport in CSS pixels.
const PHONE: (u32, u32) = (390, 844);
/// The zone the times test puts the browser in: +05:30 all year, so a
/// wrong zone cannot pass by a coincidence of whole hours or DST. ICU may
/// name it by its older name, Asia/Calcutta.
const ZONE: &str = "Asia/Kolkata";
const ZONE_NAMES: [&str; 2] = [ZONE, "Asia/Calcutta"];
const ZONE_OFFSET_S: u64 = 5 * 3600 + 30 * 60;

/// Each page's address and an element that shows it has drawn its data.
const PAGES: [(&str, &str, &str); 6] = [
    ("fleet", "/fleet", "#fleet-table tr[data-agent]"),
    ("alerts", "/alerts", "#alerts-table tr[data-alert]"),
    (
        "links",
        "/links?minutes=60",
        "#changes-table tr[data-change]",
    ),
    (
        "timeline",
        "/links/timeline?agent=spine1&interface=Ethernet1%2F2&window=1h",
        "#timeline-stats [data-stat=last_outage] time",
    ),
    (
        "worst",
        "/links/worst?window=30d",
        "#worst-table tr[data-interface]",
    ),
    (
        "trace",
        "/trace?src=10.1.0.10&dst=10.2.0.10&proto=tcp&sport=40000&dport=443",
        "#trace-result svg g[data-hop]",
    ),
];

/// A trace spine1 drops (its blackhole for 10.3.0.0/24): red text on a red
/// box, which the contrast test reads too.
const DROPPED: (&str, &str, &str) = (
    "trace-dropped",
    "/trace?src=10.1.0.10&dst=10.3.0.10&proto=tcp&sport=40000&dport=443",
    "#trace-result svg g[data-hop].dropped",
);

/// The times of spine1's events, which the times test reads back.
struct Spine1 {
    down_ms: i64,
    fired_ms: i64,
}

/// A collector with three fake switches in a line (leaf1 – spine1 – leaf2)
/// that answer traces: leaf1 has a flap and a firing alert, spine1 an
/// outage of 10 s and a warning that fired and cleared.
fn fed(name: &str) -> (Server, Vec<FakeAgent>, Spine1) {
    let server = Server::start(name, "", "");
    let mut fabric = line_fabric(server.agents);
    wait_owned(&server, 3);
    leaf1_history(&mut fabric[0]);
    let t = now_ms() - 5 * 60_000;
    let spine1 = Spine1 {
        down_ms: t,
        fired_ms: t + 2_000,
    };
    let warning = |firing| {
        let Body::Alert(mut a) = alert("Ethernet1/2", firing) else {
            unreachable!()
        };
        a.rule = "rx-crc".into();
        a.severity = Severity::Warning;
        Body::Alert(a)
    };
    // No heartbeat: one without spine1's addresses would take them away.
    let boot = fabric[1].boot.clone();
    fabric[1]
        .send(&[
            event("spine1", &boot, 1, t, link("Ethernet1/2", false)),
            event("spine1", &boot, 2, t + 2_000, warning(true)),
            event("spine1", &boot, 3, t + 10_000, link("Ethernet1/2", true)),
            event("spine1", &boot, 4, t + 12_000, warning(false)),
        ])
        .unwrap();
    assert!(fabric[1].wait_acked(&boot, 4, WAIT));
    (server, fabric, spine1)
}

fn base(server: &Server) -> String {
    format!("http://{}", server.http)
}

/// Opens `path` and waits for `ready`.
fn open(browser: &Browser, server: &Server, path: &str, ready: &str) {
    browser.goto(&format!("{}{path}", base(server)));
    browser.wait_for(ready, WAIT);
}

/// Helpers every check script starts with: a short description of an
/// element for failure messages, and whether it is drawn at all.
const DESCRIBE: &str = r#"
function describe(e) {
  let s = e.tagName.toLowerCase();
  if (e.id) s += '#' + e.id;
  for (const c of e.classList) s += '.' + c;
  for (const a of ['data-col', 'data-stat', 'data-nav', 'data-hop', 'data-state', 'data-window', 'name']) {
    if (e.hasAttribute(a)) s += '[' + a + '=' + e.getAttribute(a) + ']';
  }
  const text = (e.textContent || e.value || '').trim().replace(/\s+/g, ' ');
  return text ? s + ' "' + text.slice(0, 30) + '"' : s;
}
function drawn(e) {
  if (e.closest('[hidden], title, option, noscript')) return false;
  const cs = getComputedStyle(e);
  return cs.visibility === 'visible' && cs.display !== 'none' && e.getClientRects().length > 0;
}
"#;

/// What the viewport's width does to the open page: the document's scroll width
/// against the viewport, the elements that stick out past the right edge
/// (outside a wrapper of their own that scrolls), and the navigation links
/// and main controls (links, fields, buttons) that are not wholly on
/// screen across.
const WIDTH_CHECK: &str = r#"
const inner = window.innerWidth;
function scrollsInside(e) {
  for (let n = e.parentElement; n && n !== document.body; n = n.parentElement) {
    const o = getComputedStyle(n).overflowX;
    if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
  }
  return false;
}
const sticking = [...document.querySelectorAll('body *')]
  .filter(e => drawn(e) && e.getBoundingClientRect().right > inner + 0.5 && !scrollsInside(e)
    && !e.classList.contains('skip') && !e.closest('thead'))
  .map(describe);
function across(e) {
  const r = e.getBoundingClientRect();
  return drawn(e) && r.width > 0 && r.height > 0 && r.left >= -0.5 && r.right <= inner + 0.5;
}
const nav = [...document.querySelectorAll('#nav a[data-nav]')].filter(drawn);
const controls = [...document.querySelectorAll('main a[href], main input, main select, main button')].filter(drawn);
return {
  scroll_width: document.scrollingElement.scrollWidth,
  inner: inner,
  sticking: sticking.slice(0, 12),
  nav: nav.length,
  nav_off: nav.filter(e => !across(e)).map(describe),
  controls: controls.length,
  controls_off: controls.filter(e => !across(e)).map(describe),
};
"#;

/// At 1280×800 and at a phone's 390×844 every page fits the width: the
/// document never scrolls sideways (a wide table or drawing may scroll
/// inside its own wrapper), the navigation's links are all on screen, and
/// so is every link, field and button of the page's own. The phone's view
/// of each page is photographed as `phone-<page>.png`.
#[test]
fn browser_every_page_fits_desktop_and_phone_width() {
    let test = "browser_every_page_fits_desktop_and_phone_width";
    if !can_use_browser(test) {
        return;
    }
    let (server, _fabric, _) = fed("browser-widths");
    let mut browser = Browser::start(test);
    let check = |browser: &Browser, page: &str, phone: bool| {
        let found = browser.js(&format!("{DESCRIBE}{WIDTH_CHECK}"), vec![]);
        let at = if phone {
            "a phone's width"
        } else {
            "1280×800"
        };
        assert!(
            found["scroll_width"].as_u64().unwrap() <= found["inner"].as_u64().unwrap(),
            "{page} scrolls sideways at {at}: {found:#}"
        );
        assert_eq!(found["sticking"], json!([]), "{page} at {at}: {found:#}");
        if page != "signin" {
            assert_eq!(found["nav"], 5, "{page} at {at}: the navigation's links");
        }
        assert_eq!(found["nav_off"], json!([]), "{page} at {at}: {found:#}");
        assert!(
            found["controls"].as_u64().unwrap() > 0,
            "{page} at {at}: {found:#}"
        );
        assert_eq!(
            found["controls_off"],
            json!([]),
            "{page} at {at}: {found:#}"
        );
        if phone {
            browser.screenshot(&format!("phone-{page}"));
        }
    };
    for (width, height) in [(WIDTH, HEIGHT), PHONE] {
        let phone = width == PHONE.0;
        browser.resize(width, height);
        open(&browser, &server, "/signin", "#signin-form");
        check(&browser, "signin", phone);
        browser.sign_in(&base(&server), API_TOKEN);
        for (page, path, ready) in PAGES {
            open(&browser, &server, path, ready);
            check(&browser, page, phone);
        }
        browser.click("#signout");
        browser.wait_for("#signin-form", WAIT);
    }
    browser.finish();
}

/// What has the focus: a description, whether a focus ring shows (an
/// outline or a box shadow), and for a drawing's shape the stroke it is
/// painted with.
const FOCUSED: &str = r#"
const e = document.activeElement;
if (!e || e === document.body) return null;
const cs = getComputedStyle(e);
const shape = e instanceof SVGElement ? (e.matches('rect') ? e : e.querySelector('rect.box')) : null;
const stroke = shape ? getComputedStyle(shape).stroke + ' ' + getComputedStyle(shape).strokeWidth : null;
return {
  what: describe(e),
  tag: e.tagName.toLowerCase(),
  nav: e.getAttribute('data-nav'),
  name: e.getAttribute('name'),
  type: e.getAttribute('type'),
  id: e.id || null,
  state: e.getAttribute('data-state'),
  hop: e.getAttribute('data-hop'),
  window: e.getAttribute('data-window'),
  ring: (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0) || cs.boxShadow !== 'none',
  svg: e instanceof SVGElement,
  stroke: stroke,
};
"#;

/// The stroke the shape of the SVG element matching `arguments[0]` has when
/// it does not have the focus.
const UNFOCUSED_STROKE: &str = r#"
const e = document.querySelector(arguments[0]);
if (document.activeElement === e) document.activeElement.blur();
const shape = e.matches('rect') ? e : e.querySelector('rect.box');
return getComputedStyle(shape).stroke + ' ' + getComputedStyle(shape).strokeWidth;
"#;

/// Presses Tab from the top of a freshly opened page until the focus comes
/// round again (or `max` presses), and returns what had the focus at each.
/// A date and time field keeps the focus over several presses, one per
/// part (day, month, year, hour, minute).
fn tab_through(browser: &Browser, max: usize) -> Vec<Value> {
    let script = format!("{DESCRIBE}{FOCUSED}");
    let mut seen: Vec<Value> = Vec::new();
    for _ in 0..max {
        browser.press(Key::Tab);
        let focused = browser.js(&script, vec![]);
        if focused.is_null() || seen.last().is_some_and(|s| s["what"] == focused["what"]) {
            continue;
        }
        if seen.iter().any(|s| s["what"] == focused["what"]) {
            break;
        }
        seen.push(focused);
    }
    seen
}

/// Fails naming the stops of the walk unless one of them matches `want`.
fn reached(page: &str, stops: &[Value], what: &str, want: impl Fn(&Value) -> bool) {
    let walk: Vec<&str> = stops.iter().map(|s| s["what"].as_str().unwrap()).collect();
    assert!(
        stops.iter().any(want),
        "{page}: Tab never reaches {what}; it went {walk:#?}"
    );
}

/// The keyboard alone: the sign-in form takes the token and Enter, Tab
/// reaches the navigation, every control of each page's form, the
/// timeline's segments (which then show their times) and the trace's hop
/// boxes, each with a focus that shows; Enter on a navigation link goes
/// there.
#[test]
fn browser_keyboard_reaches_and_works_every_control() {
    let test = "browser_keyboard_reaches_and_works_every_control";
    if !can_use_browser(test) {
        return;
    }
    let (server, _fabric, _) = fed("browser-keyboard");
    let browser = Browser::start(test);

    open(&browser, &server, "/signin", "#signin-form");
    let mut focused = browser.js(
        "return document.activeElement && document.activeElement.id;",
        vec![],
    );
    for _ in 0..5 {
        if focused == "signin-token" {
            break;
        }
        browser.press(Key::Tab);
        focused = browser.js("return document.activeElement.id;", vec![]);
    }
    assert_eq!(
        focused, "signin-token",
        "the token field never has the focus"
    );
    browser.type_keys(API_TOKEN);
    browser.press(Key::Enter);
    let landed = browser.wait_js(
        WAIT,
        "return location.pathname === '/fleet' && !!document.querySelector('#fleet-table tr[data-agent]');",
        vec![],
    );
    assert!(
        landed.is_some(),
        "Enter did not sign in: {}",
        browser.path()
    );

    let mut shapes: Vec<(String, Value)> = Vec::new();
    for (page, path, ready) in PAGES {
        open(&browser, &server, path, ready);
        let stops = tab_through(&browser, 80);
        for nav in ["fleet", "alerts", "links", "worst", "trace"] {
            reached(page, &stops, &format!("the {nav} link"), |s| {
                s["nav"] == nav
            });
        }
        reached(page, &stops, "Sign out", |s| s["id"] == "signout");
        let fields: &[&str] = match page {
            "alerts" => &["agent", "interface", "rule", "severity", "since", "state"],
            "links" => &["minutes", "agent"],
            "timeline" => &["since", "until"],
            "trace" => &[
                "src",
                "dst",
                "proto",
                "sport",
                "dport",
                "vrf",
                "from",
                "sport_range",
                "reverse",
                "all_paths",
            ],
            _ => &[],
        };
        for name in fields {
            reached(page, &stops, &format!("the {name} field"), |s| {
                s["name"] == *name
            });
        }
        if matches!(page, "alerts" | "links" | "timeline" | "trace") {
            reached(page, &stops, "the form's submit button", |s| {
                s["tag"] == "button" && s["type"] == "submit"
            });
        }
        if matches!(page, "timeline" | "worst") {
            for w in ["1h", "24h", "7d", "30d"] {
                reached(page, &stops, &format!("the {w} button"), |s| {
                    s["window"] == w
                });
            }
        }
        if page == "timeline" {
            let segments = browser.count("#timeline svg rect[data-state]");
            let focusable = stops.iter().filter(|s| !s["state"].is_null()).count();
            assert_eq!(
                focusable, segments,
                "timeline: Tab reaches {focusable} of {segments} segments"
            );
            let down = stops.iter().find(|s| s["state"] == "down").unwrap();
            shapes.push((
                "#timeline svg rect[data-state=down]".into(),
                down["stroke"].clone(),
            ));
        }
        if page == "trace" {
            for hop in ["1", "2", "3"] {
                reached(page, &stops, &format!("hop box {hop}"), |s| s["hop"] == hop);
            }
            let first = stops.iter().find(|s| s["hop"] == "1").unwrap();
            shapes.push((
                "#trace-result svg g[data-hop=\"1\"]".into(),
                first["stroke"].clone(),
            ));
            reached(page, &stops, "Copy JSON", |s| s["id"] == "trace-copy");
        }
        // HTML controls show a ring; the drawing's shapes are checked
        // below against their look without the focus.
        let ringless: Vec<&Value> = stops
            .iter()
            .filter(|s| s["svg"] == false && s["ring"] == false)
            .map(|s| &s["what"])
            .collect();
        assert!(
            ringless.is_empty(),
            "{page}: focus does not show on {ringless:#?}"
        );
        for (selector, focused) in shapes.drain(..) {
            let unfocused = browser.js(UNFOCUSED_STROKE, vec![json!(selector)]);
            assert_ne!(
                focused, unfocused,
                "{page}: {selector} looks the same with the focus"
            );
        }
    }

    // A focused segment says its exact times where the keyboard user can
    // read them, as hovering does.
    let (_, timeline, ready) = PAGES[3];
    open(&browser, &server, timeline, ready);
    let mut detail = String::new();
    for _ in 0..80 {
        browser.press(Key::Tab);
        if browser.js(
            "return document.activeElement.getAttribute('data-state');",
            vec![],
        ) == "down"
        {
            detail = browser.text("#timeline-detail").unwrap();
            break;
        }
    }
    assert!(detail.starts_with("down for 10"), "{detail:?}");
    assert!(detail.contains("UTC "), "{detail:?}");

    // Enter on a navigation link goes there, within the page.
    open(&browser, &server, "/fleet", PAGES[0].2);
    browser.js("window.hopwatchNotReloaded = true;", vec![]);
    let mut on_link = false;
    for _ in 0..20 {
        browser.press(Key::Tab);
        if browser.js(
            "return document.activeElement.getAttribute('data-nav');",
            vec![],
        ) == "alerts"
        {
            on_link = true;
            break;
        }
    }
    assert!(on_link, "Tab never reached the Alerts link");
    browser.press(Key::Enter);
    browser.wait_for("#alerts-table tr[data-alert]", WAIT);
    assert_eq!(browser.path(), "/alerts");
    assert_eq!(
        browser.js("return window.hopwatchNotReloaded === true;", vec![]),
        json!(true)
    );
    browser.finish();
}

/// Every drawn element with text of its own (and every filled field, every
/// placeholder and every label drawn by `::before`) with its colour, the colour it sits on and its
/// contrast ratio, the offenders below WCAG AA first. The background is the
/// first opaque one up the tree with the translucent ones above it laid
/// over; SVG text sits on the shape of its hop box or end mark, or on its
/// own halo, else on the drawing's HTML background.
const CONTRAST: &str = r#"
function parse(c) {
  let m = /rgba?\(([^)]*)\)/.exec(c);
  if (m) {
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  }
  m = /color\(srgb ([^)]*)\)/.exec(c);
  if (m) {
    const p = m[1].split(/[\s\/]+/).filter(Boolean).map(Number);
    return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
  }
  return null;
}
function over(top, under) {
  const a = top[3];
  return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a)).concat([1]);
}
function htmlBackground(e) {
  const layers = [];
  for (let n = e; n && n.nodeType === 1; n = n.parentElement) {
    const c = parse(getComputedStyle(n).backgroundColor);
    if (c && c[3] > 0) {
      layers.push(c);
      if (c[3] >= 1) break;
    }
  }
  let bg = [255, 255, 255, 1];
  for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
  return bg;
}
function svgBackground(t) {
  const cs = getComputedStyle(t);
  if (cs.paintOrder.startsWith('stroke') && parseFloat(cs.strokeWidth) >= 3) {
    const halo = parse(cs.stroke);
    if (halo && halo[3] >= 1) return halo;
  }
  const g = t.closest('g');
  const shape = g && g.querySelector(':scope > rect');
  const fill = shape && parse(getComputedStyle(shape).fill);
  const under = htmlBackground(t.ownerSVGElement.parentElement);
  return fill ? over(fill, under) : under;
}
function opacity(e) {
  let o = 1;
  for (let n = e; n && n.nodeType === 1; n = n.parentElement) o *= parseFloat(getComputedStyle(n).opacity);
  return o;
}
function luminance(c) {
  const [r, g, b] = c.slice(0, 3).map(v => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function ratio(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}
const results = [];
function check(e, colour, bg, what) {
  const cs = getComputedStyle(e);
  const size = parseFloat(cs.fontSize);
  const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
  let fg = parse(colour);
  if (!fg) return;
  fg = over([fg[0], fg[1], fg[2], fg[3] * opacity(e)], bg);
  const r = ratio(fg, bg);
  const need = large ? 3 : 4.5;
  results.push({ what: what, ratio: Math.round(r * 100) / 100, need: need, ok: r >= need,
    fg: colour, bg: 'rgb(' + bg.slice(0, 3).map(Math.round).join(', ') + ')' });
}
for (const e of document.querySelectorAll('body *')) {
  if (!drawn(e) || e.disabled) continue;
  const own = [...e.childNodes].some(n => n.nodeType === 3 && n.data.trim());
  const svg = e instanceof SVGElement;
  if (own) {
    if (svg) check(e, getComputedStyle(e).fill, svgBackground(e), describe(e));
    else check(e, getComputedStyle(e).color, htmlBackground(e), describe(e));
  }
  const before = svg ? null : getComputedStyle(e, '::before');
  if (before && before.content !== 'none' && before.content !== '""' && before.display !== 'none') {
    check(e, before.color, htmlBackground(e), describe(e) + '::before');
  }
  if (e.matches('input:not([type=checkbox]):not([type=hidden]), select')) {
    if (e.value) check(e, getComputedStyle(e).color, htmlBackground(e), describe(e));
    else if (e.placeholder) check(e, getComputedStyle(e, '::placeholder').color, htmlBackground(e), describe(e) + '::placeholder');
  }
}
return results;
"#;

/// Every text on every page (and the sign-in form's error), at 1280×800 and
/// as a phone shows it (rows as labelled cards), has a contrast ratio of at
/// least 4.5 against what it sits on, 3 for large text.
#[test]
fn browser_contrast_meets_wcag_aa_on_every_page() {
    let test = "browser_contrast_meets_wcag_aa_on_every_page";
    if !can_use_browser(test) {
        return;
    }
    let (server, _fabric, _) = fed("browser-contrast");
    let mut browser = Browser::start(test);
    browser.expect_failed_load("/api/v1/session");
    let script = format!("{DESCRIBE}{CONTRAST}");
    let mut offenders: Vec<String> = Vec::new();
    let mut checked = 0;
    let mut audit = |browser: &Browser, page: &str| {
        let results = browser.js(&script, vec![]);
        let results = results.as_array().unwrap();
        assert!(results.len() > 3, "{page}: only {results:?} checked");
        checked += results.len();
        for r in results.iter().filter(|r| r["ok"] == false) {
            offenders.push(format!(
                "{page}: {} — {} < {} ({} on {})",
                r["what"].as_str().unwrap(),
                r["ratio"],
                r["need"],
                r["fg"].as_str().unwrap(),
                r["bg"].as_str().unwrap()
            ));
        }
    };
    for (width, height) in [(WIDTH, HEIGHT), PHONE] {
        let at = if width == PHONE.0 { " (phone)" } else { "" };
        browser.resize(width, height);
        open(&browser, &server, "/signin", "#signin-form");
        browser.fill("#signin-token", "not-the-token");
        browser.click("#signin-submit");
        browser.wait_for("#signin-error:not([hidden])", WAIT);
        audit(&browser, &format!("signin{at}"));
        browser.sign_in(&base(&server), API_TOKEN);
        for (page, path, ready) in PAGES.into_iter().chain([DROPPED]) {
            open(&browser, &server, path, ready);
            audit(&browser, &format!("{page}{at}"));
        }
        browser.click("#signout");
        browser.wait_for("#signin-form", WAIT);
    }
    offenders.sort();
    offenders.dedup();
    assert!(
        offenders.is_empty(),
        "{} of {checked} texts are below WCAG AA contrast:\n{}",
        offenders.len(),
        offenders.join("\n")
    );
    browser.finish();
}

/// "2026-12-05 15:48:29": `ms` in the zone `offset_s` east of UTC, as the
/// page writes a time.
fn wall_clock(ms: i64, offset_s: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms as u64) + Duration::from_secs(offset_s);
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .trim_end_matches('Z')
        .replace('T', " ")
}

fn utc(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

/// With the browser in Asia/Kolkata (+05:30), the time an alert fired and
/// the start of an outage show in that zone on Alerts and on the timeline,
/// and hovering either shows the same moment in UTC.
#[test]
fn browser_times_in_the_browser_zone_with_utc_on_hover() {
    let test = "browser_times_in_the_browser_zone_with_utc_on_hover";
    if !can_use_browser(test) {
        return;
    }
    let (server, _fabric, spine1) = fed("browser-zone");
    let browser = Browser::start_zoned(test, ZONE);
    let zone = browser.js(
        "return [Intl.DateTimeFormat().resolvedOptions().timeZone, new Date().getTimezoneOffset()];",
        vec![],
    );
    assert_eq!(zone[1], -330, "the browser's offset from UTC: {zone}");
    let zone = zone[0].as_str().unwrap().to_string();
    assert!(
        ZONE_NAMES.contains(&zone.as_str()),
        "the browser's zone: {zone}"
    );
    browser.sign_in(&base(&server), API_TOKEN);

    open(
        &browser,
        &server,
        "/alerts?agent=spine1",
        "#alerts-table tr[data-alert]",
    );
    let fired = browser.js(
        "const t = document.querySelector('#alerts-table tr[data-alert] td[data-col=fired] time'); \
         return t && [t.textContent, t.title];",
        vec![],
    );
    let (local, utc_fired) = (
        wall_clock(spine1.fired_ms, ZONE_OFFSET_S),
        utc(spine1.fired_ms),
    );
    assert_eq!(fired[0], local.as_str(), "Alerts' fired time: {fired}");
    assert!(
        fired[1].as_str().unwrap().contains(&utc_fired),
        "Alerts' fired time's title: {fired}, want {utc_fired}"
    );

    let (_, timeline, ready) = PAGES[3];
    open(&browser, &server, timeline, ready);
    let (local, utc_down) = (
        wall_clock(spine1.down_ms, ZONE_OFFSET_S),
        utc(spine1.down_ms),
    );
    let last = browser.js(
        "const t = document.querySelector('#timeline-stats [data-stat=last_outage] time'); \
         return [t.textContent, t.title];",
        vec![],
    );
    assert_eq!(
        last[0],
        local.as_str(),
        "the timeline's last outage: {last}"
    );
    assert!(
        last[1].as_str().unwrap().contains(&utc_down),
        "the last outage's title: {last}, want {utc_down}"
    );
    let segment = browser
        .js(
            "return document.querySelector('#timeline svg rect[data-state=down] > title').textContent;",
            vec![],
        )
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        segment.contains(&format!("from {local} {zone} (UTC {utc_down})")),
        "the down segment's title: {segment:?}, want {local} and {utc_down}"
    );
    browser.finish();
}
