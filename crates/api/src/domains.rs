//! `POST /v1/domains`, `GET /v1/domains`, `GET /v1/domains/{domain}`,
//! `GET /v1/domains/{domain}/check`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use postwerk_mta::domains::{self, DomainError};
use postwerk_store::model::DomainRecord;
use postwerk_store::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use crate::view;

/// `POST /v1/domains` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDomain {
    domain: String,
}

/// Registers a sending domain and returns the DNS records to publish (scope `write`).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateDomain>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    match domains::create_domain(&state.services, &caller.tenant_id, &req.domain).await {
        Ok(d) => Ok((StatusCode::CREATED, Json(domain_json(&state, &d)))),
        Err(DomainError::Invalid) => Err(ApiError::invalid(
            "invalid_domain",
            "domain",
            "not a valid domain name",
        )),
        Err(DomainError::Exists) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "domain_exists",
            "domain already registered",
        )
        .with_field("domain")),
        // The name is public DNS information: saying that it is taken reveals nothing.
        Err(DomainError::Taken) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "domain_taken",
            "another account has registered this domain; if it is yours, ask the operator",
        )
        .with_field("domain")),
        Err(e) => Err(ApiError::unavailable(&e)),
    }
}

/// The caller's domain `name` (normalised as on registration), or 404.
async fn registered(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<DomainRecord, ApiError> {
    let name = domains::normalize_domain(name).map_err(|_| ApiError::not_found("domain"))?;
    state
        .services
        .store
        .get_domain(&caller.tenant_id, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("domain"))
}

/// One domain with its DNS records (scope `read`).
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = registered(&state, &caller, &name).await?;
    Ok(Json(domain_json(&state, &d)))
}

/// `GET /v1/domains/{domain}/check` (scope `read`): each record to publish with what
/// DNS holds at its name now (`found`, `missing`, `different`, or `unknown` when the
/// lookup failed), looked up with the resolver delivery uses.
pub async fn check(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = registered(&state, &caller, &name).await?;
    let records = domains::dns_records(&d, &state.services.config);
    let checked = domains::check_records(state.engine.resolver(), records).await;
    Ok(Json(json!({
        "domain": d.name,
        "records": checked,
        "checked_at": view::time(postwerk_services::context::now_ms()),
    })))
}

/// All domains of the caller's tenant (scope `read`).
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let all = state.services.store.list_domains(&caller.tenant_id).await?;
    Ok(Json(
        json!({ "domains": all.iter().map(|d| domain_json(&state, d)).collect::<Vec<_>>() }),
    ))
}

fn domain_json(state: &AppState, d: &DomainRecord) -> Value {
    json!({
        "domain": d.name,
        "created_at": view::time(d.created_at),
        "dkim": d.keys.iter().map(|k| json!({"selector": k.selector, "algorithm": k.algorithm})).collect::<Vec<_>>(),
        "dns_records": domains::dns_records(d, &state.services.config),
    })
}
