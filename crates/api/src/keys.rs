//! `/v1/keys` (scope `admin`): a tenant's API keys — list, create, rotate with a
//! grace period, revoke. Secrets are shown once, at creation or rotation; every
//! change is written to the audit log first.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use postwerk_accounts::apikeys::{self, KeyChangeError};
use postwerk_core::model::parse_scopes;
use postwerk_services::context::now_ms;
use postwerk_store::model::ApiKeyRecord;
use postwerk_store::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use crate::view;

/// `POST /v1/keys` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    name: String,
    scopes: Vec<String>,
    /// Lifetime (`90d`); default none.
    #[serde(default)]
    expires_in: Option<String>,
    /// Addresses or CIDRs the key may be used from; default any.
    #[serde(default)]
    allowed_ips: Vec<String>,
    /// The key's own request limit per rate-limit window; default the server's.
    #[serde(default)]
    rate_limit: Option<u32>,
}

/// `POST /v1/keys/{id}/rotate` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// How long the old key keeps working (`24h`, the default).
    #[serde(default)]
    grace: Option<String>,
}

fn key_json(k: &ApiKeyRecord) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "scopes": k.scopes,
        "created_at": view::time(k.created_at),
        "expires_at": k.expires_at.and_then(view::time),
        "revoked_at": k.revoked_at.and_then(view::time),
        "last_used_at": k.last_used_at.and_then(view::time),
        "allowed_ips": k.allowed_ips,
        "rate_limit": k.rate_limit,
    })
}

fn change_error(e: KeyChangeError) -> ApiError {
    match e {
        KeyChangeError::NotFound => ApiError::not_found("key"),
        KeyChangeError::Service(e) => ApiError::unavailable(&e),
    }
}

/// `GET /v1/keys`: the tenant's keys, oldest first (never their secrets).
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let keys = state
        .services
        .store
        .list_api_keys(&caller.tenant_id)
        .await?;
    Ok(Json(
        json!({"keys": keys.iter().map(key_json).collect::<Vec<_>>()}),
    ))
}

/// `POST /v1/keys`: a new key (201); its `key` is shown only in this response.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if req.name.trim().is_empty() || req.name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "invalid_name",
            "name",
            "a name is 1–100 characters",
        ));
    }
    let scopes = parse_scopes(&req.scopes.join(","))
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "invalid_scopes",
                "scopes",
                "use send, read, write, import, export, privacy, admin",
            )
        })?;
    let expires_at = req
        .expires_in
        .as_deref()
        .map(|e| view::duration_ms(e, "expires_in").map(|ms| now_ms().saturating_add(ms)))
        .transpose()?;
    let allowed_ips = req
        .allowed_ips
        .iter()
        .map(|c| {
            apikeys::parse_allowed_ip(c).ok_or_else(|| {
                ApiError::invalid(
                    "invalid_allowed_ips",
                    "allowed_ips",
                    format!("`{c}` is not an address or CIDR"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if req.rate_limit == Some(0) {
        return Err(ApiError::invalid(
            "invalid_rate_limit",
            "rate_limit",
            "a rate limit is at least 1 request per window",
        ));
    }
    let spec = apikeys::KeySpec {
        name: req.name,
        scopes,
        expires_at,
        allowed_ips,
        rate_limit: req.rate_limit,
    };
    let (record, token) = apikeys::create_key(&state.services, &caller.tenant_id, spec).await?;
    caller
        .audit(&state, "key.create", record.id.to_string())
        .await?;
    let mut body = key_json(&record);
    body["key"] = Value::from(token);
    Ok((StatusCode::CREATED, Json(body)))
}

/// `POST /v1/keys/{id}/rotate`: a successor key (201, shown once); the old one
/// works until the grace period ends.
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Rotate>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let grace = view::duration_ms(req.grace.as_deref().unwrap_or("24h"), "grace")?;
    caller.audit(&state, "key.rotate", id.to_string()).await?;
    let (record, token) = apikeys::rotate(&state.services, &caller.tenant_id, &id, grace)
        .await
        .map_err(change_error)?;
    let mut body = key_json(&record);
    body["key"] = Value::from(token);
    body["replaces"] = Value::from(id);
    Ok((StatusCode::CREATED, Json(body)))
}

/// `DELETE /v1/keys/{id}`: revokes at once (204); 404 for an unknown or already
/// revoked key.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.audit(&state, "key.revoke", id.to_string()).await?;
    apikeys::revoke(&state.services, &caller.tenant_id, &id)
        .await
        .map_err(change_error)?;
    Ok(StatusCode::NO_CONTENT)
}
