//! The web page's data endpoints against a real collector fed by a fake
//! agent whose link history carries explicit times: the timeline's clipped
//! and carried segments, its outage figures, the pixel merging, the worst
//! interfaces and the fleet's live counts, behind the API's auth.

use crate::util::{
    AGENT_TOKEN, FakeAgent, Server, alert, event, heartbeat, http_get, link, now_ms,
};
use hopwatch_wire::event::Body;
use serde_json::Value;
use std::time::{Duration, UNIX_EPOCH};

const S: i64 = 1000;

fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

fn ms(v: &Value) -> i64 {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    humantime::parse_rfc3339(text)
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn f64_of(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// Outages of leaf1's interfaces, seconds after `base`: swp1 down 100..103
/// and 200..210, swp3 down 450..500; swp2 never. The agent is silent from
/// 300 to 400 (a gap longer than the heartbeat timeout).
const OUTAGES: &[(&str, i64, i64)] = &[("swp1", 100, 103), ("swp1", 200, 210), ("swp3", 450, 500)];
const NAMES: [&str; 3] = ["swp1", "swp2", "swp3"];

fn up_at(interface: &str, t: i64) -> bool {
    !OUTAGES
        .iter()
        .any(|&(i, from, to)| i == interface && (from..to).contains(&t))
}

/// The history as events in time order: heartbeats every 5 s except in
/// the silence, and a link event at each change.
fn history(base: i64, end: i64) -> Vec<(i64, Body)> {
    let mut out = Vec::new();
    for t in (0..=end).step_by(5).filter(|t| !(301..400).contains(t)) {
        let states: Vec<(&str, bool)> = NAMES.iter().map(|n| (*n, up_at(n, t))).collect();
        out.push((base + t * S, heartbeat(&states)));
    }
    for &(interface, from, to) in OUTAGES {
        out.push((base + from * S, link(interface, false)));
        out.push((base + to * S, link(interface, true)));
    }
    // Changes before the heartbeat of the same second.
    out.sort_by_key(|(at, body)| (*at, matches!(body, Body::Heartbeat(_))));
    out
}

/// A collector holding that history, its last heartbeat now.
fn fed(name: &str) -> (Server, FakeAgent, i64, u64) {
    let server = Server::start(name, "heartbeat_timeout = \"20s\"", "");
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let end = 600;
    let base = now_ms() - end * S;
    let events: Vec<_> = history(base, end)
        .into_iter()
        .enumerate()
        .map(|(i, (at, body))| event("leaf1", "b1", i as u64 + 1, at, body))
        .collect();
    let last = events.len() as u64;
    agent.send(&events).unwrap();
    assert!(agent.wait_acked("b1", last, Duration::from_secs(10)));
    (server, agent, base, last + 1)
}

fn timeline(server: &Server, base: i64, from: i64, to: i64, extra: &str) -> Value {
    server.get_json(&format!(
        "/api/v1/links/timeline?agent=leaf1&interface=swp1&since={}&until={}{extra}",
        rfc3339(base + from * S),
        rfc3339(base + to * S)
    ))
}

/// (state, from, to) of each segment, in seconds after `base`.
fn shape(t: &Value, base: i64) -> Vec<(String, i64, i64)> {
    t["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["state"].as_str().unwrap().to_string(),
                (ms(&s["from"]) - base) / S,
                (ms(&s["to"]) - base) / S,
            )
        })
        .collect()
}

fn seg(state: &str, from: i64, to: i64) -> (String, i64, i64) {
    (state.to_string(), from, to)
}

#[test]
fn a_three_second_outage_is_one_down_segment_with_its_figures() {
    let (server, _agent, base, _) = fed("web-timeline");
    let t = timeline(&server, base, 0, 150, "");
    assert_eq!(
        shape(&t, base),
        [
            seg("up", 0, 100),
            seg("down", 100, 103),
            seg("up", 103, 150)
        ]
    );
    let down = &t["segments"][1];
    assert_eq!(ms(&down["to"]) - ms(&down["from"]), 3 * S);
    assert!(
        t["segments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["carried"] == false)
    );
    assert_eq!(t["outages"], 1);
    assert_eq!(f64_of(&t, "down_seconds"), 3.0);
    assert_eq!(f64_of(&t, "mttr_seconds"), 3.0);
    assert_eq!(f64_of(&t, "longest_outage_seconds"), 3.0);
    let availability = f64_of(&t, "availability");
    assert!(
        (availability - 147.0 / 150.0).abs() < 1e-9,
        "{availability}"
    );
    assert!(availability < 1.0);
    assert_eq!(t["agent"], "leaf1");
    assert_eq!(t["interface"], "swp1");
    assert_eq!(ms(&t["since"]), base);

    // Two outages: the mean, the longest and the last one.
    let t = timeline(&server, base, 0, 300, "");
    assert_eq!(t["outages"], 2);
    assert_eq!(f64_of(&t, "down_seconds"), 13.0);
    assert_eq!(f64_of(&t, "mttr_seconds"), 6.5);
    assert_eq!(f64_of(&t, "longest_outage_seconds"), 10.0);
    let last = &t["last_outage"];
    assert_eq!(ms(&last["from"]), base + 200 * S);
    assert_eq!(ms(&last["to"]), base + 210 * S);
    assert_eq!(f64_of(last, "seconds"), 10.0);

    // No outage in the window: no figures to make up.
    let t = timeline(&server, base, 110, 190, "");
    assert_eq!(t["outages"], 0);
    assert!(t["mttr_seconds"].is_null() && t["last_outage"].is_null());
    assert_eq!(f64_of(&t, "availability"), 1.0);
}

#[test]
fn a_window_starting_mid_outage_carries_the_down_state_in() {
    let (server, _agent, base, _) = fed("web-carried");
    let t = timeline(&server, base, 101, 150, "");
    assert_eq!(
        shape(&t, base),
        [seg("down", 101, 103), seg("up", 103, 150)]
    );
    assert_eq!(t["segments"][0]["carried"], true);
    assert_eq!(t["segments"][1]["carried"], false);
    assert_eq!(t["outages"], 1);
    assert_eq!(f64_of(&t, "down_seconds"), 2.0);
    // Ending mid-outage too: the outage has no end yet.
    let t = timeline(&server, base, 205, 207, "");
    assert_eq!(shape(&t, base), [seg("down", 205, 207)]);
    assert_eq!(t["segments"][0]["carried"], true);
    assert!(t["last_outage"]["to"].is_null());
    assert_eq!(f64_of(&t, "availability"), 0.0);
    // A window reaching past now ends now: nothing is drawn into the
    // future.
    let t = timeline(&server, base, 590, 3600, "");
    let before = now_ms();
    assert!(ms(&t["until"]) <= before, "{t}");
    let last = t["segments"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["state"], "up");
    assert!(ms(&last["to"]) <= before);
    // An up state begun before the window is carried too.
    let t = timeline(&server, base, 120, 130, "");
    assert_eq!(shape(&t, base), [seg("up", 120, 130)]);
    assert_eq!(t["segments"][0]["carried"], true);
}

#[test]
fn a_silent_agent_is_unknown_time_not_downtime() {
    let (server, _agent, base, _) = fed("web-unknown");
    let t = timeline(&server, base, 250, 450, "");
    assert_eq!(
        shape(&t, base),
        [
            seg("up", 250, 300),
            seg("unknown", 300, 400),
            seg("up", 400, 450)
        ]
    );
    assert_eq!(f64_of(&t, "unknown_seconds"), 100.0);
    assert_eq!(f64_of(&t, "down_seconds"), 0.0);
    assert_eq!(t["outages"], 0);
    assert_eq!(f64_of(&t, "availability"), 1.0);
}

#[test]
fn narrow_segments_merge_into_mixed_ones_and_the_totals_stay_exact() {
    let (server, _agent, base, _) = fed("web-width");
    let exact = timeline(&server, base, 0, 600, "");
    // 300 s a pixel: every span is narrower, so runs of them are summed.
    let t = timeline(&server, base, 0, 600, "&width=2");
    let segments = t["segments"].as_array().unwrap();
    assert!(segments.len() <= 2 * 2 + 2, "{}", segments.len());
    assert!(segments.len() < exact["segments"].as_array().unwrap().len());
    assert!(segments.iter().any(|s| s["state"] == "mixed"), "{t}");
    assert!(segments.windows(2).all(|w| w[0]["to"] == w[1]["from"]));
    assert_eq!(ms(&segments[0]["from"]), base);
    let down: f64 = segments
        .iter()
        .map(|s| match s["state"].as_str().unwrap() {
            "mixed" => f64_of(s, "down_seconds"),
            "down" => (ms(&s["to"]) - ms(&s["from"])) as f64 / 1000.0,
            _ => 0.0,
        })
        .sum();
    assert_eq!(down, 13.0);
    let unknown: f64 = segments.iter().map(|s| f64_of(s, "unknown_seconds")).sum();
    assert_eq!(unknown, 100.0);
    // 60 s a pixel: a narrow outage between two wide up spans stays itself.
    let t = timeline(&server, base, 0, 600, "&width=10");
    assert_eq!(t["segments"], exact["segments"]);
    for key in [
        "down_seconds",
        "unknown_seconds",
        "availability",
        "mttr_seconds",
    ] {
        assert_eq!(t[key], exact[key], "{key}");
    }
    assert_eq!(t["outages"], exact["outages"]);
}

#[test]
fn worst_lists_the_least_available_first() {
    let (server, _agent, _base, _) = fed("web-worst");
    let w = server.get_json("/api/v1/links/worst?since=15m");
    let rows = w["interfaces"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["interface"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["swp3", "swp1", "swp2"]);
    assert_eq!(f64_of(&rows[0], "down_seconds"), 50.0);
    assert_eq!(rows[0]["outages"], 1);
    assert_eq!(f64_of(&rows[1], "mttr_seconds"), 6.5);
    assert_eq!(f64_of(&rows[1], "longest_outage_seconds"), 10.0);
    assert_eq!(rows[1]["outages"], 2);
    assert_eq!(rows[2]["outages"], 0);
    assert!(rows[2]["mttr_seconds"].is_null());
    assert_eq!(f64_of(&rows[2], "availability"), 1.0);
    assert!(f64_of(&rows[0], "availability") < f64_of(&rows[1], "availability"));
    assert!(
        rows.iter()
            .all(|r| r["agent"] == "leaf1" && r["state"] == "up")
    );
    let one = server.get_json("/api/v1/links/worst?since=15m&limit=1");
    assert_eq!(one["interfaces"].as_array().unwrap().len(), 1);
    assert_eq!(one["interfaces"][0]["interface"], "swp3");
}

#[test]
fn fleet_counts_follow_a_link_going_down_and_an_alert() {
    let (server, mut agent, _base, seq) = fed("web-fleet");
    let fleet = server.get_json("/api/v1/fleet");
    assert_eq!(fleet["firing"], 0);
    assert_eq!(fleet["links_down"], 0);
    let leaf1 = &fleet["agents"][0];
    assert_eq!(leaf1["agent"], "leaf1");
    assert_eq!(leaf1["state"], "online");
    assert_eq!(leaf1["version"], "0.1.0-test");
    assert_eq!(leaf1["links_total"], 3);
    assert_eq!(
        (leaf1["firing"].clone(), leaf1["links_down"].clone()),
        (0.into(), 0.into())
    );
    assert!(ms(&leaf1["last_seen"]) > 0 && ms(&fleet["now"]) > 0);

    let t = now_ms();
    agent
        .send(&[
            event("leaf1", "b1", seq, t, link("swp2", false)),
            event("leaf1", "b1", seq + 1, t, alert("swp2", true)),
        ])
        .unwrap();
    assert!(agent.wait_acked("b1", seq + 1, Duration::from_secs(10)));
    let fleet = server.get_json("/api/v1/fleet");
    assert_eq!(fleet["firing"], 1);
    assert_eq!(fleet["links_down"], 1);
    assert_eq!(fleet["agents"][0]["firing"], 1);
    assert_eq!(fleet["agents"][0]["links_down"], 1);
}

#[test]
fn the_endpoints_want_the_token_and_name_bad_parameters() {
    let (server, _agent, _base, _) = fed("web-params");
    for path in [
        "/api/v1/fleet",
        "/api/v1/links/timeline?agent=leaf1&interface=swp1",
        "/api/v1/links/worst",
    ] {
        assert_eq!(http_get(server.http, path, None).status, 401, "{path}");
        assert_eq!(server.get(path).status, 200, "{path}");
    }
    for (path, status, field, want) in [
        (
            "/api/v1/links/timeline?interface=swp1",
            400,
            "agent",
            "`agent` is required",
        ),
        (
            "/api/v1/links/timeline?agent=leaf1",
            400,
            "interface",
            "`interface` is required",
        ),
        (
            "/api/v1/links/timeline?agent=leaf1&interface=swp1&since=yesterday",
            400,
            "since",
            "bad `since` value \"yesterday\"",
        ),
        (
            "/api/v1/links/timeline?agent=leaf1&interface=swp1&until=soon",
            400,
            "until",
            "bad `until` value \"soon\"",
        ),
        (
            "/api/v1/links/timeline?agent=leaf1&interface=swp1&since=1h&until=2h",
            400,
            "until",
            "`until` must be after `since`",
        ),
        (
            "/api/v1/links/timeline?agent=leaf1&interface=swp1&width=0",
            400,
            "width",
            "bad `width` value \"0\": use a whole number from 1 to 4000",
        ),
        (
            "/api/v1/links/worst?limit=5000",
            400,
            "limit",
            "from 1 to 1000",
        ),
        (
            "/api/v1/links/timeline?agent=leaf1&interface=swp1&since=2999-01-01T00:00:00Z",
            400,
            "since",
            "`since` is in the future",
        ),
        (
            "/api/v1/links/timeline?agent=leaf9&interface=swp1",
            404,
            "agent",
            "no agent named \"leaf9\"",
        ),
        (
            "/api/v1/links/timeline?agent=leaf1&interface=swp9",
            404,
            "interface",
            "no interface named \"swp9\"",
        ),
    ] {
        let response = server.get(path);
        assert_eq!(response.status, status, "{path}: {}", response.body);
        let body = response.json();
        assert_eq!(body["field"], field, "{path}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(want), "{path}: {error}");
    }
    let response = server.get("/api/v1/fleet?agent=leaf1");
    assert_eq!(response.status, 400);
    assert!(response.body.contains("unknown parameter `agent`"));
}
