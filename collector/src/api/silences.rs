//! `GET|POST /api/v1/silences` and `DELETE /api/v1/silences/{id}`, behind
//! the same token and rate limit as the rest. A silence is signed with the
//! name of the token that made it (the token of the session, for the web
//! page), never with the token itself.

use super::{ApiError, Caller, Params, Shared, now_ms, read};
use crate::silences::{self, BoardError, FieldError};
use crate::store::silences as stored;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};

/// The largest body a new silence is read from; every field at its longest
/// fits in a fraction of it.
const MAX_BODY: usize = 16 * 1024;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/silences", get(list).post(create))
        .route("/api/v1/silences/{id}", delete(remove))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> ApiError {
        ApiError::bad_field(error.field, error.message)
    }
}

impl From<BoardError> for ApiError {
    fn from(error: BoardError) -> ApiError {
        let status = match error {
            BoardError::Full => StatusCode::CONFLICT,
            BoardError::Store(_) | BoardError::Closed => StatusCode::SERVICE_UNAVAILABLE,
        };
        if let BoardError::Store(_) = &error {
            tracing::error!(%error, "A silence could not be stored.");
        }
        ApiError {
            status,
            message: error.to_string(),
            field: None,
            retry_after: None,
        }
    }
}

/// Active and pending silences; with `all=1` also those that ended in the
/// last [`silences::KEEP_ENDED`].
async fn list(
    State(api): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let p = Params::new(pairs, &["all"])?;
    let all = match p.get("all") {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(other) => {
            return Err(ApiError::bad_field(
                "all".into(),
                format!(
                    "bad `all` value {other:?}: use 1 to list ended silences too, or leave it out"
                ),
            ));
        }
    };
    let now = now_ms();
    let since = all.then(|| now - silences::KEEP_ENDED.as_millis() as i64);
    let list = read(&api, move |db| stored::list(db, now, since)).await?;
    Ok(Json(list).into_response())
}

async fn create(
    State(api): State<Shared>,
    Extension(Caller(token)): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| ApiError {
        status: rejection.status(),
        message: if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "the body is larger than {} KiB; a silence fits well inside it",
                MAX_BODY / 1024
            )
        } else {
            format!("the body could not be read: {}", rejection.body_text())
        },
        field: None,
        retry_after: None,
    })?;
    let now = now_ms();
    let id = silences::new_id().map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("cannot read /dev/urandom for a silence id: {e}"),
        field: None,
        retry_after: None,
    })?;
    let author = api.tokens.api_name(token).to_string();
    let new = silences::parse_new(&body, now, &api.silences.settings, &author, id)?;
    api.silences.add(new.clone(), now).await?;
    tracing::info!(
        id = new.silence.id,
        author,
        agent = new.silence.agent.as_deref().unwrap_or("*"),
        interface = new.silence.interface,
        rule = new.silence.rule.as_deref().unwrap_or("*"),
        ends_at = new.silence.ends_at,
        "Silence added."
    );
    let record = stored::SilenceRecord {
        state: stored::SilenceState::at(new.starts_ms, new.ends_ms, now),
        silence: new.silence,
        created_at: crate::store::rfc3339(now),
        removed_at: None,
        removed_by: None,
    };
    Ok((StatusCode::CREATED, Json(record)).into_response())
}

async fn remove(
    State(api): State<Shared>,
    Extension(Caller(token)): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !silences::is_collector_id(&id) {
        let message = if id.starts_with("l-") {
            format!(
                "{id:?} is a silence made on an agent; remove it there with `hopwatch silence remove {id}`"
            )
        } else {
            format!(
                "{id:?} is not a silence id; the collector's look like c-0123456789abcdef (GET /api/v1/silences lists them)"
            )
        };
        return Err(ApiError::bad_field("id".into(), message));
    }
    let now = now_ms();
    let by = api.tokens.api_name(token).to_string();
    if api.silences.remove(&id, &by, now).await? {
        tracing::info!(id, by, "Silence removed.");
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let known = {
        let id = id.clone();
        read(&api, move |db| stored::get(db, &id, now)).await?
    };
    let message = match known {
        Some(s) => format!("silence {id} already ended at {}", s.silence.ends_at),
        None => format!("no silence {id}; GET /api/v1/silences?all=1 lists the recent ones"),
    };
    Err(ApiError {
        status: StatusCode::NOT_FOUND,
        message,
        field: None,
        retry_after: None,
    })
}
