//! `GET /api/v1/fleet`: what the web page's fleet view shows, in one cheap
//! answer it polls every second (no event stream: a poll through the same
//! auth and rate limit needs no connection held per open page).

use super::{ApiError, Params, Shared, now_ms, read};
use crate::store::fleet;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

pub fn routes() -> Router<Shared> {
    Router::new().route("/api/v1/fleet", get(fleet_now))
}

async fn fleet_now(
    State(api): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    Params::new(pairs, &[])?;
    let timeout = api.heartbeat_timeout;
    let now = now_ms();
    let answer = read(&api, move |db| fleet::fleet(db, now, timeout)).await?;
    Ok(Json(answer).into_response())
}
