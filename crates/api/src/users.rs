//! `/v1/users` (scope `admin`): the tenant's users — list, create with a role, show,
//! disable, force a logout, set a new password. Every change is audited first.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use postwerk_accounts::users::{self, AdminChange, UserError};
use postwerk_core::model::parse_scopes;
use postwerk_services::context::now_ms;
use postwerk_store::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use crate::session::user_json;

/// `POST /v1/users` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    email: String,
    password: String,
    role: String,
    /// For role `custom` only.
    #[serde(default)]
    scopes: Vec<String>,
    /// Limit the user to the contacts of these lists (names or ids).
    #[serde(default)]
    lists: Option<Vec<String>>,
}

/// `PUT /v1/users/{id}/lists` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserLists {
    /// The lists (names or ids) whose contacts the user may read; `null`: every contact.
    lists: Option<Vec<String>>,
}

/// The ids of lists named by name or id, or `422 unknown_list`.
async fn list_ids(
    state: &AppState,
    caller: &Caller,
    keys: &[String],
) -> Result<Vec<String>, ApiError> {
    let mut ids = Vec::with_capacity(keys.len());
    for key in keys {
        let list = postwerk_privacy::audience::lists::find(&state.services, &caller.tenant_id, key)
            .await
            .map_err(|e| match e {
                postwerk_privacy::audience::lists::ListError::Service(e) => ApiError::from(e),
                _ => ApiError::invalid("unknown_list", "lists", format!("no list `{key}`")),
            })?;
        ids.push(list.list.id);
    }
    Ok(ids)
}

/// `PUT /v1/users/{id}/lists` (scope `admin`): limits a user to the contacts of some
/// lists (on every endpoint that reads contacts), or lifts the limit (`null`).
pub async fn set_lists(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UserLists>,
) -> Result<Json<Value>, ApiError> {
    let lists = match &req.lists {
        Some(keys) => Some(list_ids(&state, &caller, keys).await?),
        None => None,
    };
    let services = &state.services;
    users::get(services, &caller.tenant_id, &id)
        .await
        .map_err(user_error)?;
    let target = match &lists {
        Some(ids) => format!("{id} lists={}", ids.join(",")),
        None => format!("{id} lists=all"),
    };
    caller.audit(&state, "user.lists", target).await?;
    if !services
        .store
        .set_user_lists(&caller.tenant_id, &id, lists)
        .await?
    {
        return Err(ApiError::not_found("user"));
    }
    let user = users::get(services, &caller.tenant_id, &id)
        .await
        .map_err(user_error)?;
    Ok(Json(user_json(&state, &user).await?))
}

/// `POST /v1/users/{id}/password` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    password: String,
}

/// The API error for a user change that failed.
pub(crate) fn user_error(e: UserError) -> ApiError {
    match e {
        UserError::InvalidEmail => {
            ApiError::invalid("invalid_address", "email", "not an email address")
        }
        UserError::WeakPassword => ApiError::invalid("weak_password", "password", e.to_string()),
        UserError::InvalidRole => ApiError::invalid("invalid_role", "role", e.to_string()),
        UserError::Exists => ApiError::new(StatusCode::CONFLICT, "user_exists", e.to_string()),
        UserError::NotFound => ApiError::not_found("user"),
        UserError::Hashing(_) | UserError::Service(_) => ApiError::unavailable(&e),
    }
}

/// `GET /v1/users`: the tenant's users, oldest first (never their passwords).
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let all = state.services.store.list_users(&caller.tenant_id).await?;
    let mut shown = Vec::with_capacity(all.len());
    for u in &all {
        shown.push(user_json(&state, u).await?);
    }
    Ok(Json(json!({"users": shown})))
}

/// `POST /v1/users`: a new user (201), audited (`user.create`) before it is stored;
/// `409 user_exists` only for an address that has an account in the caller's tenant.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let scopes = parse_scopes(&req.scopes.join(",")).map_err(|_| {
        ApiError::invalid(
            "invalid_scopes",
            "scopes",
            "use send, read, write, import, export, privacy, admin",
        )
    })?;
    let lists = match &req.lists {
        Some(keys) => Some(list_ids(&state, &caller, keys).await?),
        None => None,
    };
    let mut user = users::create_user(
        &state.services,
        &caller.actor(),
        &caller.tenant_id,
        &req.email,
        &req.password,
        &req.role,
        scopes,
    )
    .await
    .map_err(user_error)?;
    if lists.is_some() {
        let store = &state.services.store;
        store
            .set_user_lists(&caller.tenant_id, &user.id, lists.clone())
            .await?;
        user.lists = lists;
    }
    Ok((StatusCode::CREATED, Json(user_json(&state, &user).await?)))
}

/// `GET /v1/users/{id}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = users::get(&state.services, &caller.tenant_id, &id)
        .await
        .map_err(user_error)?;
    Ok(Json(user_json(&state, &user).await?))
}

/// Audits and applies an admin's `change` to the tenant's user `id` (204).
async fn change_user(
    state: &AppState,
    caller: &Caller,
    id: String,
    change: AdminChange,
) -> Result<StatusCode, ApiError> {
    let user = users::get(&state.services, &caller.tenant_id, &id)
        .await
        .map_err(user_error)?;
    caller.audit(state, change.action(), id).await?;
    change.apply(&state.services, user, now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/users/{id}`: deletes the user and its sessions (204).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    change_user(&state, &caller, id, AdminChange::Delete).await
}

/// `POST /v1/users/{id}/disable`: disables the user and ends its sessions (204).
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    change_user(&state, &caller, id, AdminChange::Disable).await
}

/// `POST /v1/users/{id}/logout`: ends every session of the user now (204).
pub async fn force_logout(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    change_user(&state, &caller, id, AdminChange::Logout).await
}

/// `DELETE /v1/users/{id}/totp`: removes the user's second factor (a lost device; the
/// user sets up a new one) and ends its sessions (204).
pub async fn remove_totp(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    change_user(&state, &caller, id, AdminChange::RemoveSecondFactor).await
}

/// `POST /v1/users/{id}/password`: sets a new password, lifts a lock and ends every
/// session of the user (204).
pub async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    let user = users::get(&state.services, &caller.tenant_id, &id)
        .await
        .map_err(user_error)?;
    caller.audit(&state, "user.password", id).await?;
    users::set_password(&state.services, user, &req.password)
        .await
        .map_err(user_error)?;
    Ok(StatusCode::NO_CONTENT)
}
