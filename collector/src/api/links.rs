//! `GET /api/v1/links/timeline` and `/api/v1/links/worst`: one interface's
//! segments over any window, and the fleet's least available interfaces,
//! both reduced on the server to what a page draws.

use super::{ApiError, Params, Shared, now_ms, parse_since, read};
use crate::store::links::{self, Missing, TimelineQuery};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

/// Pixels a timeline is drawn over unless asked otherwise.
pub const DEFAULT_WIDTH: u32 = 1000;
/// The widest timeline answered: the payload grows with it.
pub const MAX_WIDTH: u32 = 4000;
/// Interfaces `worst` lists unless asked otherwise, and at most.
pub const DEFAULT_WORST: usize = 100;
pub const MAX_WORST: usize = 1000;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/links/timeline", get(timeline))
        .route("/api/v1/links/worst", get(worst))
}

/// A time parameter (`since` or `until`): a duration back from now or an
/// RFC 3339 time.
fn time_param(p: &Params, key: &str, default: &str, now: i64) -> Result<i64, ApiError> {
    let value = p.get(key).unwrap_or(default);
    parse_since(value, now).map_err(|_| {
        ApiError::bad_field(
            key.to_string(),
            format!(
                "bad `{key}` value {value:?}: write a duration back from now like 10m, 24h or 30d (at most 100y), or a time like 2024-05-01T00:00:00Z"
            ),
        )
    })
}

/// A whole-number parameter within `range`.
fn number_param(
    p: &Params,
    key: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ApiError> {
    match p.get(key) {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ApiError::bad_field(
                key.to_string(),
                format!(
                    "bad `{key}` value {v:?}: use a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )),
        },
    }
}

fn required(p: &Params, key: &str) -> Result<String, ApiError> {
    p.filter(key).ok_or_else(|| {
        ApiError::bad_field(
            key.to_string(),
            format!("`{key}` is required: name the {key} whose timeline to draw"),
        )
    })
}

async fn timeline(
    State(api): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let p = Params::new(pairs, &["agent", "interface", "since", "until", "width"])?;
    let agent = required(&p, "agent")?;
    let interface = required(&p, "interface")?;
    let now = now_ms();
    let since = time_param(&p, "since", "24h", now)?;
    if since >= now {
        return Err(ApiError::bad_field(
            "since".into(),
            "`since` is in the future: nothing is known of it yet; give a time before now".into(),
        ));
    }
    // Nothing is known past now: a window reaching beyond it ends now
    // rather than drawing the current state into the future.
    let until = time_param(&p, "until", "0s", now)?.min(now);
    if until <= since {
        return Err(ApiError::bad_field(
            "until".into(),
            "`until` must be after `since`: give a window that moves forward in time".into(),
        ));
    }
    let width = number_param(&p, "width", DEFAULT_WIDTH.into(), 1..=MAX_WIDTH.into())? as u32;
    let q = TimelineQuery {
        agent,
        interface,
        since_ms: since,
        until_ms: until,
        width,
    };
    let timeout = api.heartbeat_timeout;
    let answer = read(&api, move |db| links::timeline(db, &q, now, timeout)).await?;
    match answer {
        Ok(timeline) => Ok(Json(timeline).into_response()),
        Err(missing) => {
            let (field, message) = match missing {
                Missing::Agent(agent) => (
                    "agent",
                    format!(
                        "no agent named {agent:?} has reported to this collector; see /api/v1/agents for the names"
                    ),
                ),
                Missing::Interface(agent, interface) => (
                    "interface",
                    format!(
                        "agent {agent:?} has reported no interface named {interface:?}; see /api/v1/links/downtime?agent=… for its interfaces"
                    ),
                ),
            };
            Err(ApiError {
                status: StatusCode::NOT_FOUND,
                message,
                field: Some(field.into()),
                retry_after: None,
            })
        }
    }
}

async fn worst(
    State(api): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let p = Params::new(pairs, &["since", "limit"])?;
    let now = now_ms();
    let since = time_param(&p, "since", "30d", now)?;
    let limit = number_param(&p, "limit", DEFAULT_WORST as u64, 1..=MAX_WORST as u64)? as usize;
    let timeout = api.heartbeat_timeout;
    let remembered = std::sync::Arc::clone(&api.since);
    let answer = read(&api, move |db| {
        links::worst(db, since, limit, now, timeout, &remembered)
    })
    .await?;
    Ok(Json(answer).into_response())
}
