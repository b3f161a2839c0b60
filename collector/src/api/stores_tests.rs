//! The HTTP API over either store: the same requests through the real
//! router, on a SQLite store and a PostgreSQL database holding the same
//! rows, answer alike.

use super::{Api, router};
use crate::api::web::Web;
use crate::api::web::session::{MAX_SESSIONS, Sessions};
use crate::auth::Tokens;
use crate::config::{RateLimitSettings, Secret};
use crate::fabric::owners::Owners;
use crate::fabric::switchboard::Switchboard;
use crate::fabric::{Fabric, TraceSettings};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::silences::{Board, DEFAULT_MAX_DURATION, SilenceSettings};
use crate::store::reads::fixture::{self, NOW};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;
use tower_service::Service;

const TOKEN: &str = "stores-test-token-0123456789";

/// GET `path` on an API reading `reads`: the status and the body.
fn get(api: &Arc<Api>, path: &str) -> (StatusCode, String) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let request = Request::get(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let response = router(Arc::clone(api)).call(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    })
}

fn api(reads: &Arc<crate::store::Reads>) -> Arc<Api> {
    Arc::new(Api {
        pool: Arc::clone(reads),
        tokens: Arc::new(Tokens::new(vec![], vec![Secret::new(TOKEN)])),
        limiter: RateLimiter::new(RateLimitSettings {
            per_second: 1e12,
            burst: u32::MAX,
        }),
        metrics: Arc::new(Metrics::default()),
        heartbeat_timeout: fixture::TIMEOUT,
        forward: None,
        alerting: None,
        fabric: Arc::new(Fabric {
            switchboard: Arc::new(Switchboard::new()),
            owners: Arc::new(Owners::new()),
            settings: TraceSettings::default(),
        }),
        web: Web::new(
            Sessions::new(Duration::from_secs(3600), MAX_SESSIONS),
            false,
            false,
        ),
        since: Arc::new(crate::store::since::SinceCache::new(Duration::from_secs(
            400 * 86_400,
        ))),
        // Only questions are asked here: nothing writes a silence.
        silences: Arc::new(Board::new(
            Vec::new(),
            tokio::sync::mpsc::channel(1).0,
            SilenceSettings {
                max_duration: DEFAULT_MAX_DURATION,
            },
        )),
    })
}

#[test]
fn root_every_read_endpoint_answers_alike_on_both_stores() {
    let since = crate::store::rfc3339(NOW - 30 * 86_400_000);
    // Answers that do not depend on the clock, compared whole.
    let fixed = [
        "/api/v1/agents".to_string(),
        "/api/v1/alerts?state=all&since=2000-01-01T00:00:00Z".to_string(),
        format!("/api/v1/links/changes?since={since}"),
        "/api/v1/silences?all=1".to_string(),
        "/healthz".to_string(),
    ];
    // Answers measured up to now, compared by status.
    let moving = [
        format!("/api/v1/links/downtime?since={since}"),
        format!("/api/v1/links/worst?since={since}"),
        format!("/api/v1/links/timeline?agent=leaf1&interface=swp1&since={since}"),
        "/api/v1/fleet".to_string(),
        "/metrics".to_string(),
    ];
    let answers = fixture::same("root_api_answers_alike", |reads| {
        let api = api(reads);
        let fixed: Vec<(StatusCode, String)> = fixed.iter().map(|p| get(&api, p)).collect();
        let moving: Vec<(String, StatusCode)> =
            moving.iter().map(|p| (p.clone(), get(&api, p).0)).collect();
        (fixed, moving)
    });
    for (path, (status, body)) in fixed.iter().zip(&answers.0) {
        assert_eq!(*status, StatusCode::OK, "{path}: {body}");
    }
    for (path, status) in &answers.1 {
        assert_eq!(*status, StatusCode::OK, "{path}");
    }
    let agents: Vec<serde_json::Value> = serde_json::from_str(&answers.0[0].1).unwrap();
    assert_eq!(agents.len(), 5);
}
