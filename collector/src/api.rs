//! The HTTP API (axum): JSON answers to the fleet questions behind a bearer
//! token and a per-token rate limit, plus `/metrics` and `/healthz` open to
//! scrapers. Bad parameters get a 400 naming the parameter and the fix.

mod fleet;
mod links;
mod silences;
#[cfg(test)]
mod stores_tests;
mod trace;
pub mod web;

use crate::api::web::session;
use crate::auth::Tokens;
use crate::fabric::Fabric;
use crate::forward::ForwardStats;
use crate::http::{Authenticated, ClientAddr};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::store::query::{self, AlertFilter, AlertQuery, DowntimeQuery, MAX_LIMIT};
use crate::store::sql::Sql;
use crate::store::{Reads, StoreError, millis};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

/// What the handlers share.
pub struct Api {
    pub pool: Arc<Reads>,
    pub tokens: Arc<Tokens>,
    pub limiter: RateLimiter,
    pub metrics: Arc<Metrics>,
    pub heartbeat_timeout: Duration,
    pub forward: Option<Arc<ForwardStats>>,
    /// Alert forwarding's counters, when it runs.
    pub alerting: Option<Arc<crate::alerting::AlertingStats>>,
    /// The live fabric traces ask through.
    pub fabric: Arc<Fabric>,
    /// The web page's sessions and files.
    pub web: crate::api::web::Web,
    /// The collector's silences, pushed to the agents they concern.
    pub silences: Arc<crate::silences::Board>,
    /// The segments in force at window starts, kept between requests.
    pub since: Arc<crate::store::since::SinceCache>,
}

/// The API token a request came with (the session's, for the web page), by
/// its index among the tokens: who a change is made by.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub usize);

type Shared = Arc<Api>;

/// The routes.
pub fn router(api: Shared) -> Router {
    let protected = Router::new()
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/links/changes", get(changes))
        .route("/api/v1/links/downtime", get(downtime))
        .merge(trace::routes())
        .merge(fleet::routes())
        .merge(links::routes())
        .merge(silences::routes())
        .route_layer(middleware::from_fn_with_state(api.clone(), authorize));
    Router::new()
        .merge(protected)
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .merge(crate::api::web::routes())
        .fallback(not_found)
        .layer(middleware::from_fn(crate::api::web::security_headers))
        .with_state(api)
}

/// An error answer: a status and a sentence saying what to do.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// The request field at fault, for a client to point at.
    field: Option<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    fn bad_request(message: String) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message,
            field: None,
            retry_after: None,
        }
    }

    fn bad_field(field: String, message: String) -> ApiError {
        ApiError {
            field: (!field.is_empty()).then_some(field),
            ..ApiError::bad_request(message)
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        tracing::error!(%error, "An API query failed.");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("the store could not answer: {error}"),
            field: None,
            retry_after: None,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: &self.message,
                field: self.field.as_deref(),
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Checks the bearer token or the web page's session cookie (and, for a
/// change made by cookie, the CSRF header), then the token's rate limit.
async fn authorize(State(api): State<Shared>, mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let client = request.extensions().get::<ClientAddr>().map(|c| c.0.ip());
    let index = match headers.get(header::AUTHORIZATION) {
        // A bearer token, when given, decides alone; an address that has
        // been guessing waits as it would to sign in.
        Some(value) => {
            if let Some(client) = client
                && let Err(wait) = api.web.sign_ins.peek(client, Instant::now())
            {
                return guessing(&api, wait);
            }
            let index = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .and_then(|t| api.tokens.check_api(t));
            if let (None, Some(client)) = (index, client) {
                let _ = api.web.sign_ins.check(client, Instant::now());
            }
            index
        }
        None => match session::from_cookie(&api.web, headers, SystemTime::now()) {
            Some(_) if !session::csrf_ok(request.method(), headers) => {
                return session::csrf_refused();
            }
            Some(s) => Some(s.token),
            None => None,
        },
    };
    let Some(index) = index else {
        api.metrics.api_unauthorized.fetch_add(1, Ordering::Relaxed);
        return ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "missing or wrong API token; send `Authorization: Bearer <token>` with a token from the collector's api_tokens (by default the file api-token in its data_dir), or sign in on the web page".into(),
            field: None,
            retry_after: None,
        }
        .into_response();
    };
    // The connection has shown a token: the accept loop keeps it when the
    // HTTP connections run out.
    if let Some(connection) = request.extensions().get::<Authenticated>() {
        connection.set();
    }
    if let Some(refused) = rate_limited(&api, index) {
        return refused;
    }
    request.extensions_mut().insert(Caller(index));
    next.run(request).await
}

/// The 429 for an address that gave too many wrong tokens.
fn guessing(api: &Api, wait: Duration) -> Response {
    api.metrics.api_rate_limited.fetch_add(1, Ordering::Relaxed);
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        message: format!("too many wrong tokens from this address; retry in {seconds}s"),
        field: None,
        retry_after: Some(seconds),
    }
    .into_response()
}

/// Takes one request from API token `index`'s allowance: None when it may
/// go on, else the 429. Requests made with a session count against the
/// token the session came from.
pub fn rate_limited(api: &Api, index: usize) -> Option<Response> {
    if let Err(wait) = api.limiter.check(index, Instant::now()) {
        api.metrics.api_rate_limited.fetch_add(1, Ordering::Relaxed);
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        return Some(
            ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: format!("rate limit exceeded for this token; retry in {seconds}s"),
                field: None,
                retry_after: Some(seconds),
            }
            .into_response(),
        );
    }
    api.metrics.api_requests.fetch_add(1, Ordering::Relaxed);
    None
}

/// A query string's parameters, each allowed once and only if the endpoint
/// takes it.
struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    fn new(pairs: Vec<(String, String)>, allowed: &[&str]) -> Result<Params, ApiError> {
        for (i, (key, _)) in pairs.iter().enumerate() {
            if !allowed.contains(&key.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter `{key}`; this endpoint takes {}",
                    allowed.join(", ")
                )));
            }
            if pairs[..i].iter().any(|(k, _)| k == key) {
                return Err(ApiError::bad_request(format!(
                    "parameter `{key}` is given twice; give it once"
                )));
            }
        }
        Ok(Params { pairs })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A filter value; empty counts as not given.
    fn filter(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.is_empty()).map(str::to_string)
    }

    /// `since` as milliseconds: a duration back from `now` or an RFC 3339
    /// time.
    fn since(&self, now_ms: i64, default: Option<&str>) -> Result<Option<i64>, ApiError> {
        match self.get("since").or(default) {
            None => Ok(None),
            Some(value) => parse_since(value, now_ms)
                .map(Some)
                .map_err(ApiError::bad_request),
        }
    }
}

/// The furthest back `since` may reach as a duration: a century (`100y`,
/// years of 365.25 days as humantime counts them), more than `retain`
/// ever keeps.
pub const MAX_SINCE: Duration = Duration::from_secs(36_525 * 86_400);

/// Parses `10m`, `30d` (back from `now_ms`) or `2024-05-01T00:00:00Z`. A
/// duration is at most [`MAX_SINCE`], and one reaching before 1970 means
/// from 1970, before which nothing is stored; a time is one the store can
/// hold (1970 to 9999). So the answer is never before the epoch.
pub fn parse_since(value: &str, now_ms: i64) -> Result<i64, String> {
    if let Ok(d) = humantime::parse_duration(value) {
        if d > MAX_SINCE {
            return Err(format!(
                "`since` value {value:?} reaches back more than 100 years, longer than the store keeps anything: use at most 100y (36525d), or a time like 2024-05-01T00:00:00Z"
            ));
        }
        // Within a century, so the milliseconds fit an i64 with room.
        let back = d.as_millis() as i64;
        return Ok(now_ms.saturating_sub(back).max(0));
    }
    if let Ok(at) = humantime::parse_rfc3339_weak(value) {
        return Ok(millis(at).max(0));
    }
    Err(format!(
        "bad `since` value {value:?}: write a duration back from now like 10m, 24h or 30d (at most 100y), or a time like 2024-05-01T00:00:00Z"
    ))
}

fn now_ms() -> i64 {
    millis(SystemTime::now())
}

/// Runs a store query on the blocking pool, on one snapshot of the store.
async fn read<T: Send + 'static>(
    api: &Shared,
    f: impl FnOnce(&dyn Sql) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let pool = Arc::clone(&api.pool);
    tokio::task::spawn_blocking(move || pool.with(f))
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("query task failed: {e}"),
            field: None,
            retry_after: None,
        })?
        .map_err(ApiError::from)
}

async fn agents(
    State(api): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    Params::new(pairs, &[])?;
    let timeout = api.heartbeat_timeout;
    let now = now_ms();
    let agents = read(&api, move |db| query::agents(db, now, timeout)).await?;
    Ok(Json(agents).into_response())
}

async fn alerts(
    State(api): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let p = Params::new(
        pairs,
        &["state", "since", "agent", "interface", "rule", "limit"],
    )?;
    let now = now_ms();
    let state = match p.get("state").unwrap_or("firing") {
        "firing" => AlertFilter::Firing,
        "resolved" => AlertFilter::Resolved,
        "all" => AlertFilter::All,
        other => {
            return Err(ApiError::bad_request(format!(
                "bad `state` value {other:?}: use firing, resolved or all"
            )));
        }
    };
    let limit = match p.get("limit") {
        None => query::DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "bad `limit` value {v:?}: use a whole number from 1 to {MAX_LIMIT}"
                )));
            }
        },
    };
    // Resolved alerts pile up; without `since` a list of them covers a day.
    let default_since = (state != AlertFilter::Firing).then_some("24h");
    let q = AlertQuery {
        state,
        since_ms: p.since(now, default_since)?,
        agent: p.filter("agent"),
        interface: p.filter("interface"),
        rule: p.filter("rule"),
        limit,
    };
    let alerts = read(&api, move |db| query::alerts(db, &q)).await?;
    Ok(Json(alerts).into_response())
}

async fn changes(
    State(api): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let p = Params::new(pairs, &["since", "agent"])?;
    let now = now_ms();
    let since = p.since(now, Some("10m"))?.expect("defaulted");
    let agent = p.filter("agent");
    let changes = read(&api, move |db| query::changes(db, since, agent.as_deref())).await?;
    Ok(Json(changes).into_response())
}

async fn downtime(
    State(api): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let p = Params::new(pairs, &["since", "agent", "interface"])?;
    let now = now_ms();
    let q = DowntimeQuery {
        since_ms: p.since(now, Some("30d"))?.expect("defaulted"),
        agent: p.filter("agent"),
        interface: p.filter("interface"),
    };
    let timeout = api.heartbeat_timeout;
    let since = Arc::clone(&api.since);
    let downtime = read(&api, move |db| {
        query::downtime(db, &q, now, timeout, &since)
    })
    .await?;
    Ok(Json(downtime).into_response())
}

async fn metrics(State(api): State<Shared>) -> Result<Response, ApiError> {
    // The process's own counters are what shows a store outage (failed
    // commits, hellos refused), so they are served even while the store
    // cannot be read (the failed read is logged); only the per-agent
    // samples, which come from the store, are left out then.
    let agents = read(&api, query::metrics_snapshot)
        .await
        .unwrap_or_default();
    let forward = api.forward.as_deref().map(|stats| {
        (
            stats.sent.load(Ordering::Relaxed),
            api.metrics.forward_dropped.load(Ordering::Relaxed),
        )
    });
    let more = api
        .alerting
        .as_deref()
        .map(|a| a.families())
        .unwrap_or_default();
    let body = api.metrics.render_with(&agents, forward, more);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
    );
    Ok((headers, body).into_response())
}

#[derive(Serialize)]
struct Degraded {
    status: &'static str,
    reasons: Vec<String>,
}

/// `ok` while the store takes events; otherwise 503 and why, so a load
/// balancer or monitor sees a collector that refuses every batch.
async fn healthz(State(api): State<Shared>) -> Response {
    let mut reasons = api.metrics.store.problems();
    if let Err(e) = read(&api, |db| db.one_i64("SELECT CAST(1 AS BIGINT)", &[])).await {
        reasons.push(format!("store: cannot be read: {}", e.message));
    }
    if reasons.is_empty() {
        return "ok\n".into_response();
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Degraded {
            status: "degraded",
            reasons,
        }),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: "no such endpoint; try /api/v1/agents, /api/v1/alerts, /api/v1/links/changes, /api/v1/links/downtime, /api/v1/silences, POST /api/v1/trace/flow, /api/v1/trace/multi-path or /api/v1/trace/connectivity, /metrics or /healthz".into(),
        field: None,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_since("10m", now), Ok(now - 600_000));
        assert_eq!(parse_since("30d", now), Ok(now - 30 * 86_400_000));
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z", now),
            Ok(1_700_000_000_000)
        );
        let error = parse_since("last week", now).unwrap_err();
        assert!(
            error.contains("`since`") && error.contains("30d"),
            "{error}"
        );
    }

    #[test]
    fn since_never_reaches_before_the_epoch() {
        let now = 1_700_000_000_000;
        // Within the century but before 1970: from 1970.
        assert_eq!(parse_since("57y", now), Ok(0));
        assert_eq!(parse_since("100y", now), Ok(0));
        assert_eq!(parse_since("36525d", now), Ok(0));
        assert_eq!(parse_since("0s", now), Ok(now));
        for value in ["36526d", "101y", "999999999d", "18446744073709551615s"] {
            let error = parse_since(value, now).unwrap_err();
            assert!(
                error.contains("`since`") && error.contains("at most 100y"),
                "{value}: {error}"
            );
        }
        // Too large even to parse: still an answer, not a panic.
        assert!(parse_since("100000000000000000000000000000s", now).is_err());
        assert!(parse_since("1960-01-01T00:00:00Z", now).is_err());
        assert_eq!(
            parse_since("9999-12-31T23:59:59Z", now),
            Ok(253_402_300_799_000)
        );
    }

    #[test]
    fn params_refuse_unknown_and_repeated_keys() {
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert!(Params::new(pairs(&[("since", "1h")]), &["since"]).is_ok());
        let e = Params::new(pairs(&[("snice", "1h")]), &["since", "agent"])
            .err()
            .unwrap();
        assert!(
            e.message
                .contains("unknown parameter `snice`; this endpoint takes since, agent"),
            "{}",
            e.message
        );
        let e = Params::new(pairs(&[("since", "1h"), ("since", "2h")]), &["since"])
            .err()
            .unwrap();
        assert!(e.message.contains("twice"), "{}", e.message);
    }
}
