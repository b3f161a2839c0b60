//! The fabric trace endpoints: `POST /api/v1/trace/flow`, `/multi-path`
//! and `/connectivity`, behind the same token and rate limit as the rest.
//! A body is read and checked first (a 400 naming the field), the walk asks
//! the switches, and what the store knows of each egress is added in one
//! read on the blocking pool. The answer never waits past the configured
//! trace timeout: the walk ends its own hops by then, and a walk that
//! somehow does not is cut off just after.

use super::{ApiError, Shared, now_ms, read};
use crate::fabric::request::{self, RequestError};
use crate::fabric::{WalkError, connectivity, known, multipath, walk};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use std::future::Future;
use std::time::Duration;

/// The largest body a trace endpoint reads: a connectivity matrix of 256
/// sources and 256 destinations fits in a fraction of it. Larger is a 413.
pub const MAX_BODY: usize = 64 * 1024;

/// How long past the trace timeout the endpoint waits for a walk before
/// answering without it: room for the walk to write its own `no_answer`.
const GRACE: Duration = Duration::from_millis(500);

/// The trace routes, to be put behind the API's token check.
pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/trace/flow", post(flow))
        .route("/api/v1/trace/multi-path", post(multi_path))
        .route("/api/v1/trace/connectivity", post(connectivity))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> ApiError {
        ApiError::bad_field(error.field, error.message)
    }
}

impl From<WalkError> for ApiError {
    fn from(error: WalkError) -> ApiError {
        ApiError::bad_field(error.field().to_string(), error.to_string())
    }
}

/// The body, or why it could not be read, as JSON like every other error:
/// past [`MAX_BODY`] a 413 saying the limit.
fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "the body is larger than {} KiB, the most a trace request may be; a matrix of 256 sources and 256 destinations fits well inside it, so split larger questions",
                MAX_BODY / 1024
            )
        } else {
            format!("the body could not be read: {}", rejection.body_text())
        };
        ApiError {
            status,
            message,
            field: None,
            retry_after: None,
        }
    })
}

/// Runs a walk under the trace timeout; past it (and a little grace) the
/// answer is a 504 saying so.
async fn bounded<T, E: Into<ApiError>>(
    timeout: Duration,
    walk: impl Future<Output = Result<T, E>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(timeout + GRACE, walk).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(ApiError {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: format!(
                "the trace did not finish within its timeout of {}; raise [trace] timeout in the collector's config, or ask fewer hops (hop_limit) or branches (max_branches)",
                humantime::format_duration(timeout)
            ),
            field: None,
            retry_after: None,
        }),
    }
}

/// What the store knows of `wanted`, or nothing when the store cannot say:
/// a trace is worth answering without its history.
async fn knowledge(
    api: &Shared,
    wanted: Vec<known::Key>,
) -> std::collections::HashMap<known::Key, crate::fabric::Known> {
    if wanted.is_empty() {
        return Default::default();
    }
    let now = now_ms();
    let timeout = api.heartbeat_timeout;
    match read(api, move |db| known::read(db, &wanted, now, timeout)).await {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(error = %error.message, "Reading what is known of a trace's interfaces failed; answering without it.");
            Default::default()
        }
    }
}

async fn flow(
    State(api): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request = request::flow(&read_body(body)?, &api.fabric.settings)?;
    let fabric = &api.fabric;
    let mut trace = bounded(
        request.bounds.timeout,
        walk::trace(
            &*fabric.switchboard,
            &*fabric.owners,
            &request.spec,
            &request.bounds,
            request.reverse,
        ),
    )
    .await?;
    let found = knowledge(&api, known::wanted_trace(&trace)).await;
    known::fill_trace(&mut trace, &found);
    Ok(Json(trace).into_response())
}

async fn multi_path(
    State(api): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request = request::multi_path(&read_body(body)?, &api.fabric.settings)?;
    let fabric = &api.fabric;
    let mut tree = bounded(
        request.bounds.timeout,
        multipath::all_paths(
            &*fabric.switchboard,
            &*fabric.owners,
            &request.spec,
            request.sports,
            &request.bounds,
        ),
    )
    .await?;
    let found = knowledge(&api, known::wanted_tree(&tree)).await;
    known::fill_tree(&mut tree, &found);
    Ok(Json(tree).into_response())
}

async fn connectivity(
    State(api): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request = request::connectivity(&read_body(body)?, &api.fabric.settings)?;
    let fabric = &api.fabric;
    let matrix = bounded(
        request.bounds.timeout,
        connectivity::matrix(
            &*fabric.switchboard,
            &*fabric.owners,
            &request.query,
            &request.bounds,
        ),
    )
    .await?;
    Ok(Json(matrix).into_response())
}
