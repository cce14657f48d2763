//! `/v1/subaccounts` (scope `admin`): a tenant's sub-accounts — tenants of their own
//! (keys, domains, streams, data and data key) that the parent's admins may act on.
//! A request with `X-Postwerk-Subaccount: <tenant id>`, made with a key or session
//! holding `admin`, acts on that sub-account instead of the caller's tenant. One level:
//! a sub-account has no sub-accounts. `DELETE` cancels one (see
//! [`postwerk_services::tenants`]), `POST …/reactivate` lifts that within the grace period.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use postwerk_services::context::{ServiceError, valid_tenant_name};
use postwerk_services::tenants;
use postwerk_store::StoreError;
use postwerk_store::model::TenantRecord;
use postwerk_store::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use crate::view;

/// The request header naming the sub-account to act on.
pub const HEADER: &str = "x-postwerk-subaccount";

/// `POST /v1/subaccounts` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubaccount {
    name: String,
}

fn subaccount_json(state: &AppState, t: &TenantRecord) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "parent_id": t.parent_id,
        "created_at": view::time(t.created_at),
        "cancelled_at": t.cancelled_at.and_then(view::time),
        "deletion_due": t.cancelled_at.and_then(|at| view::time(tenants::deletion_due(&state.services, at))),
    })
}

/// 404 for a sub-account the caller's tenant does not have (never telling whether
/// the tenant exists elsewhere).
pub fn not_found() -> ApiError {
    ApiError::not_found("subaccount")
}

/// The sub-account `id` of `parent_id`, for [`HEADER`].
pub async fn child_of(
    state: &AppState,
    parent_id: &str,
    id: &str,
) -> Result<TenantRecord, ApiError> {
    state
        .services
        .store
        .get_tenant(id)
        .await?
        .filter(|t| t.parent_id.as_deref() == Some(parent_id))
        .ok_or_else(not_found)
}

/// `GET /v1/subaccounts`: the tenant's sub-accounts, oldest first.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let children = state
        .services
        .store
        .list_subaccounts(&caller.tenant_id)
        .await?;
    Ok(Json(
        json!({"subaccounts": children.iter().map(|t| subaccount_json(&state, t)).collect::<Vec<_>>()}),
    ))
}

/// The installation-wide tenant name of the sub-account `name` of `parent`:
/// `parent/name`. Tenant names are unique across the installation; a plain name chosen
/// through the API would answer `409` when another customer already used it, telling
/// one tenant about another. `/` is not allowed in a name, so these never collide with
/// a top-level tenant's.
fn tenant_name(parent: &str, name: &str) -> String {
    format!("{parent}/{name}")
}

/// `POST /v1/subaccounts`: a new sub-account (201) with its own data key.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewSubaccount>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !valid_tenant_name(&req.name) {
        return Err(ApiError::invalid(
            "invalid_name",
            "name",
            "1–64 letters, digits, '-', '_' or '.'",
        ));
    }
    let own = state
        .services
        .store
        .get_tenant(&caller.tenant_id)
        .await?
        .ok_or_else(|| ApiError::unavailable(&ServiceError::UnknownTenant))?;
    if own.parent_id.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "nested_subaccount",
            "a sub-account cannot have sub-accounts",
        ));
    }
    let name = tenant_name(&own.name, &req.name);
    caller
        .audit(&state, "subaccount.create", name.clone())
        .await?;
    match state
        .services
        .create_tenant(&name, Some(&caller.tenant_id))
        .await
    {
        Ok(child) => Ok((StatusCode::CREATED, Json(subaccount_json(&state, &child)))),
        Err(ServiceError::Store(StoreError::Conflict(_))) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "name_taken",
            "this tenant already has a sub-account of this name",
        )),
        Err(e) => Err(ApiError::unavailable(&e)),
    }
}

/// `DELETE /v1/subaccounts/{id}`: cancels the sub-account (202): its keys and users
/// are refused and its mail held at once; its data is deleted at `deletion_due`.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let child = child_of(&state, &caller.tenant_id, &id).await?;
    tenants::cancel(&state.services, &caller.actor(), &child).await?;
    let child = child_of(&state, &caller.tenant_id, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(subaccount_json(&state, &child))))
}

/// `POST /v1/subaccounts/{id}/reactivate`: lifts the cancellation while the grace
/// period lasts and queues the held mail again.
pub async fn reactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let child = child_of(&state, &caller.tenant_id, &id).await?;
    tenants::reactivate(&state.services, &caller.actor(), &child).await?;
    let child = child_of(&state, &caller.tenant_id, &id).await?;
    Ok(Json(subaccount_json(&state, &child)))
}
