//! `/v1/webhooks`: endpoints that receive events as signed posts (scope `write` to
//! change, `read` to list and inspect). The signing secret is shown once, at creation
//! and at rotation; every change is written to the audit log.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use postwerk_mta::webhooks::target::TargetError;
use postwerk_mta::webhooks::{self, Subscription, WebhookError};
use postwerk_services::context::now_ms;
use postwerk_store::model::{WebhookAttemptRecord, WebhookRecord};
use postwerk_store::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::view;

/// `POST /v1/webhooks` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    url: String,
    /// Event types to post (default: all).
    #[serde(default)]
    events: Vec<String>,
    /// Streams whose events are posted (default: all).
    #[serde(default)]
    streams: Vec<String>,
}

/// `PATCH /v1/webhooks/{id}` body: any of these.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    url: Option<String>,
    events: Option<Vec<String>>,
    streams: Option<Vec<String>>,
    /// `false` pauses deliveries (they wait); `true` resumes a paused or
    /// automatically disabled endpoint.
    enabled: Option<bool>,
}

/// `POST /v1/webhooks/{id}/rotate-secret` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the old secret keeps signing too (`24h`, the default).
    #[serde(default)]
    grace: Option<String>,
}

/// `POST /v1/webhooks/{id}/replay` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// Events at or after this time (RFC 3339).
    from: String,
    /// Events before this time (RFC 3339; default now).
    #[serde(default)]
    to: Option<String>,
}

/// `GET /v1/webhooks/{id}/attempts` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

fn webhook_json(w: &WebhookRecord) -> Value {
    json!({
        "id": w.id,
        "url": w.url,
        "events": w.events,
        "streams": w.streams,
        "enabled": w.disabled_at.is_none(),
        "created_at": view::time(w.created_at),
        "disabled_at": w.disabled_at.and_then(view::time),
        "failing_since": w.failing_since.and_then(view::time),
        "previous_secret_valid_until": w.previous_until.filter(|u| *u > now_ms()).and_then(view::time),
    })
}

fn attempt_json(a: &WebhookAttemptRecord) -> Value {
    json!({
        "id": a.seq.to_string(),
        "event_id": a.event_seq.to_string(),
        "at": view::time(a.at),
        "status_code": a.status_code,
        "error": a.error,
        "duration_ms": a.duration_ms,
        "state": a.state.as_str(),
    })
}

fn webhook_error(e: WebhookError) -> ApiError {
    match e {
        WebhookError::Target(TargetError::Invalid(m)) => ApiError::invalid("invalid_url", "url", m),
        WebhookError::Target(TargetError::Unresolvable) => {
            ApiError::invalid("invalid_url", "url", "the host does not resolve")
        }
        WebhookError::Target(TargetError::Forbidden(m)) => {
            ApiError::invalid("forbidden_url", "url", m)
        }
        e @ WebhookError::UnknownEvent(_) => {
            ApiError::invalid("invalid_events", "events", e.to_string())
        }
        e @ WebhookError::InvalidStream(_) => {
            ApiError::invalid("invalid_streams", "streams", e.to_string())
        }
        WebhookError::Service(e) => ApiError::unavailable(&e),
    }
}

async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<WebhookRecord, ApiError> {
    webhooks::find(&state.services, &caller.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

/// `POST /v1/webhooks`: registers an endpoint (201); `secret` is shown only here.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewWebhook>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let sub = Subscription {
        url: req.url,
        events: req.events,
        streams: req.streams,
    };
    let (record, secret) = webhooks::create(&state.services, &caller.tenant_id, sub)
        .await
        .map_err(webhook_error)?;
    caller
        .audit(&state, "webhook.create", record.id.clone())
        .await?;
    let mut body = webhook_json(&record);
    body["secret"] = Value::from(secret);
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /v1/webhooks`: the tenant's endpoints (never their secrets).
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let hooks = state
        .services
        .store
        .list_webhooks(Some(&caller.tenant_id))
        .await?;
    Ok(Json(
        json!({"webhooks": hooks.iter().map(webhook_json).collect::<Vec<_>>()}),
    ))
}

/// `GET /v1/webhooks/{id}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(webhook_json(&load(&state, &caller, &id).await?)))
}

/// `PATCH /v1/webhooks/{id}`: changes the URL, filters or enabled state.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<WebhookChange>,
) -> Result<Json<Value>, ApiError> {
    let mut w = load(&state, &caller, &id).await?;
    let sub = Subscription {
        url: req.url.unwrap_or_else(|| w.url.clone()),
        events: req.events.unwrap_or_else(|| w.events.clone()),
        streams: req.streams.unwrap_or_else(|| w.streams.clone()),
    };
    sub.validate(&state.services).await.map_err(webhook_error)?;
    (w.url, w.events, w.streams) = (sub.url, sub.events, sub.streams);
    match req.enabled {
        Some(true) => (w.disabled_at, w.failing_since) = (None, None),
        Some(false) if w.disabled_at.is_none() => w.disabled_at = Some(now_ms()),
        _ => {}
    }
    caller.audit(&state, "webhook.update", id.clone()).await?;
    let updated = state.services.store.update_webhook(w.clone()).await?;
    if !updated {
        return Err(ApiError::not_found("webhook"));
    }
    Ok(Json(webhook_json(&w)))
}

/// `DELETE /v1/webhooks/{id}`: removes the endpoint, its queue and attempt log (204).
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    load(&state, &caller, &id).await?;
    caller.audit(&state, "webhook.delete", id.clone()).await?;
    let removed = state
        .services
        .store
        .delete_webhook(&caller.tenant_id, &id)
        .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("webhook"))
    }
}

/// `POST /v1/webhooks/{id}/rotate-secret`: a new secret (shown once); requests are
/// signed with both until the grace period ends.
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RotateSecret>,
) -> Result<Json<Value>, ApiError> {
    let grace = view::duration_ms(req.grace.as_deref().unwrap_or("24h"), "grace")?;
    load(&state, &caller, &id).await?;
    caller
        .audit(&state, "webhook.rotate_secret", id.clone())
        .await?;
    let (record, secret) = webhooks::rotate_secret(&state.services, &caller.tenant_id, &id, grace)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let mut body = webhook_json(&record);
    body["secret"] = Value::from(secret);
    Ok(Json(body))
}

/// `POST /v1/webhooks/{id}/replay`: queues the endpoint's events of a time range
/// again; answers how many.
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Replay>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let now = now_ms();
    let from = view::rfc3339(&req.from, "from")?;
    let to = req
        .to
        .as_deref()
        .map(|t| view::rfc3339(t, "to"))
        .transpose()?
        .unwrap_or(now);
    if from >= to {
        return Err(ApiError::invalid(
            "invalid_range",
            "from",
            "`from` must be before `to`",
        ));
    }
    load(&state, &caller, &id).await?;
    caller.audit(&state, "webhook.replay", id.clone()).await?;
    let queued = state
        .services
        .store
        .replay_webhook(&caller.tenant_id, &id, from, to, now)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"queued": queued}))))
}

/// `GET /v1/webhooks/{id}/attempts?cursor=&limit=`: delivery attempts, newest first.
pub async fn attempts(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AttemptQuery>,
) -> Result<Json<Value>, ApiError> {
    let (before, limit) = view::page(q.cursor.as_deref(), q.limit)?;
    load(&state, &caller, &id).await?;
    let attempts = state
        .services
        .store
        .list_webhook_attempts(&caller.tenant_id, &id, before, limit)
        .await?;
    let next = view::next_cursor(attempts.iter().map(|a| a.seq), limit);
    Ok(Json(json!({
        "attempts": attempts.iter().map(attempt_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}
