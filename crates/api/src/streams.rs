//! `/v1/streams`: the tenant's streams, their settings and pause state (scope
//! `write` to change, `read` to list). Every change is written to the audit log.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use postwerk_core::stream::StreamSettings;
use postwerk_services::streams::{self, ChangedBy, Stream, StreamError};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use crate::view;

/// `POST /v1/streams/{name}/pause` body (optional).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why (shown on the stream and in its `stream_paused` event).
    #[serde(default)]
    reason: Option<String>,
}

/// Most characters of a pause reason.
const MAX_REASON: usize = 500;

/// A stream as the API shows it: name, state, then its settings.
pub fn stream_json(s: &Stream) -> Value {
    let mut v = json!({
        "name": s.name,
        "builtin": s.builtin,
        "paused": s.is_paused(),
        "paused_at": s.paused_at.and_then(view::time),
        "pause_reason": s.pause_reason,
        "resumed_at": s.resumed_at.and_then(view::time),
    });
    if let (Some(obj), Ok(Value::Object(settings))) =
        (v.as_object_mut(), serde_json::to_value(&s.settings))
    {
        obj.extend(settings);
    }
    v
}

/// `422 unknown_stream`: a request names a stream the tenant does not have.
pub(crate) fn unknown_stream() -> ApiError {
    ApiError::invalid(
        "unknown_stream",
        "stream",
        "unknown stream (transactional, broadcast, or one added with POST /v1/streams)",
    )
}

fn stream_error(e: StreamError) -> ApiError {
    match e {
        StreamError::Exists => ApiError::new(
            StatusCode::CONFLICT,
            "stream_exists",
            "the tenant already has a stream of that name",
        ),
        StreamError::Unknown => ApiError::not_found("stream"),
        StreamError::Invalid(field, reason) => ApiError::invalid("invalid_stream", field, reason),
        StreamError::Forbidden(field, code, reason) => {
            ApiError::new(StatusCode::FORBIDDEN, code, reason).with_field(field)
        }
        StreamError::Service(e) => ApiError::unavailable(&e),
    }
}

/// Settings from a JSON object (strict: unknown keys and wrong types are refused).
fn settings_from(object: Map<String, Value>) -> Result<StreamSettings, ApiError> {
    crate::strict::from_value(&Value::Object(object)).map_err(|e| crate::error::data_error(&e))
}

/// Reloads the streams (other nodes and the CLI change them too), then reads the
/// caller's stream `name`.
async fn fresh(state: &AppState, caller: &Caller, name: &str) -> Result<Arc<Stream>, ApiError> {
    reload(state).await?;
    state
        .services
        .streams
        .get(&caller.tenant_id, name)
        .ok_or_else(|| ApiError::not_found("stream"))
}

async fn reload(state: &AppState) -> Result<(), ApiError> {
    let services = &state.services;
    services
        .streams
        .refresh(&services.store)
        .await
        .map_err(ApiError::from)
}

/// `GET /v1/streams`: the built-in streams, then the tenant's own.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    reload(&state).await?;
    let streams = state.services.streams.list(&caller.tenant_id);
    Ok(Json(
        json!({"streams": streams.iter().map(|s| stream_json(s)).collect::<Vec<_>>()}),
    ))
}

/// `POST /v1/streams`: adds a stream (201). Body: `name` and any settings.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(mut body): ApiJson<Map<String, Value>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = match body.remove("name") {
        Some(Value::String(n)) => n,
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_stream",
                "name",
                "must be a string",
            ));
        }
        None => {
            return Err(ApiError::invalid(
                "missing_field",
                "name",
                "missing required field: name",
            ));
        }
    };
    let settings = settings_from(body)?;
    caller
        .audit(&state, "stream.create", format!("stream:{name}"))
        .await?;
    let stream = streams::create(
        &state.services,
        &caller.tenant_id,
        &name,
        settings,
        ChangedBy::Tenant,
    )
    .await
    .map_err(stream_error)?;
    Ok((StatusCode::CREATED, Json(stream_json(&stream))))
}

/// `GET /v1/streams/{name}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let stream = fresh(&state, &caller, &name).await?;
    Ok(Json(stream_json(&stream)))
}

/// `PATCH /v1/streams/{name}`: changes the settings named in the body; the others
/// keep their values (`null` resets an optional one to the server's default).
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(change): ApiJson<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let current = fresh(&state, &caller, &name).await?;
    let Ok(Value::Object(mut merged)) = serde_json::to_value(&current.settings) else {
        return Err(ApiError::unavailable(&"stream settings do not serialise"));
    };
    merged.extend(change);
    let settings = settings_from(merged)?;
    caller
        .audit(&state, "stream.update", format!("stream:{name}"))
        .await?;
    let stream = streams::update(
        &state.services,
        &caller.tenant_id,
        &name,
        settings,
        ChangedBy::Tenant,
    )
    .await
    .map_err(stream_error)?;
    Ok(Json(stream_json(&stream)))
}

/// `POST /v1/streams/{name}/pause`: holds the stream's waiting mail and rejects new
/// mail until it is resumed; records `stream_paused`.
pub async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Option<ApiJson<PauseRequest>>,
) -> Result<Json<Value>, ApiError> {
    let reason = body
        .and_then(|ApiJson(b)| b.reason)
        .unwrap_or_else(|| "paused by an operator".into());
    if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_reason",
            "reason",
            format!("at most {MAX_REASON} characters, no control characters"),
        ));
    }
    set_paused(&state, &caller, &name, Some(reason)).await
}

/// `POST /v1/streams/{name}/resume`: queues the held mail again (due now) and
/// accepts new mail; records `stream_resumed`. The circuit breaker then judges only
/// mail finished after this moment.
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &caller, &name, None).await
}

async fn set_paused(
    state: &AppState,
    caller: &Caller,
    name: &str,
    reason: Option<String>,
) -> Result<Json<Value>, ApiError> {
    let action = if reason.is_some() {
        "stream.pause"
    } else {
        "stream.resume"
    };
    caller
        .audit(state, action, format!("stream:{name}"))
        .await?;
    let detail = json!({"reason": reason, "by": caller.principal});
    let (stream, _) = streams::set_paused(&state.services, &caller.tenant_id, name, reason, detail)
        .await
        .map_err(stream_error)?;
    Ok(Json(stream_json(&stream)))
}
