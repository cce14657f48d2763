//! The register of data-subject requests: `GET/POST /v1/privacy/requests`,
//! `POST /v1/privacy/requests/{id}/close` (scope `privacy`). Requests carried out
//! through `/v1/subjects/…` are registered there automatically as completed.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use postwerk_core::address::Address;
use postwerk_core::model::{DsarKind, DsarStatus};
use postwerk_privacy::requests::{self, Request};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::view;

/// `POST /v1/privacy/requests` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    kind: String,
    email: String,
    /// RFC 3339; default now.
    #[serde(default)]
    received_at: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /v1/privacy/requests/{id}/close` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Close {
    status: String,
}

/// One register entry as JSON.
pub fn request_json(r: &Request) -> Value {
    json!({
        "id": r.id.to_string(),
        "kind": r.kind,
        "email": r.email,
        "note": r.note,
        "received_at": view::time(r.received_at),
        "due_at": view::time(r.due_at),
        "status": r.status,
        "closed_at": r.closed_at.and_then(view::time),
        "overdue": r.status == DsarStatus::Open && r.due_at < postwerk_services::context::now_ms(),
    })
}

/// Registers a request that arrived by another channel (201, status `open`).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let kind: DsarKind = req.kind.parse().map_err(|_| {
        ApiError::invalid(
            "invalid_kind",
            "kind",
            "use access, erasure, rectification, restriction or objection",
        )
    })?;
    let address = Address::parse(&req.email)
        .map_err(|e| ApiError::invalid("invalid_address", "email", e.to_string()))?;
    let received_at = req
        .received_at
        .as_deref()
        .map(|t| view::rfc3339(t, "received_at"))
        .transpose()?;
    let r = requests::register(
        &state.services,
        &caller.tenant_id,
        kind,
        Some(&address),
        received_at,
        req.note,
        false,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(request_json(&r))))
}

/// Closes an open request as `completed` or `rejected`; 404 if there is no such
/// open request.
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Close>,
) -> Result<Json<Value>, ApiError> {
    let status = match req.status.parse() {
        Ok(s @ (DsarStatus::Completed | DsarStatus::Rejected)) => s,
        _ => {
            return Err(ApiError::invalid(
                "invalid_status",
                "status",
                "use completed or rejected",
            ));
        }
    };
    let id: i64 = id.parse().map_err(|_| ApiError::not_found("request"))?;
    let closed = requests::close(&state.services, &caller.tenant_id, id, status).await?;
    if !closed {
        return Err(ApiError::not_found("open request"));
    }
    Ok(Json(json!({"id": id.to_string(), "status": status})))
}

/// Lists the register, oldest first; `overdue=true` for open requests past due.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<view::RegisterQuery>,
) -> Result<Json<Value>, ApiError> {
    let (after, limit) = view::page(q.cursor.as_deref(), q.limit)?;
    let page = requests::list(
        &state.services,
        &caller.actor(),
        &caller.tenant_id,
        q.overdue.unwrap_or(false),
        after,
        limit,
    )
    .await?;
    let next = view::next_cursor(page.iter().map(|r| r.id), limit);
    Ok(Json(json!({
        "requests": page.iter().map(request_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}
