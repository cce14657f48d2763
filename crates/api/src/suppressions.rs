//! `GET/POST /v1/suppressions`, `DELETE /v1/suppressions/{email}`: the addresses
//! Postwerk will not send to. Stored as blind-index hashes; search by address works
//! by hashing the query.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use postwerk_core::address::Address;
use postwerk_core::model::{Scope, SuppressionReason};
use postwerk_privacy::suppressions;
use postwerk_services::audit;
use postwerk_services::subjects::SubjectKeys;
use postwerk_store::model::SuppressionRecord;
use postwerk_store::prelude::*;
use postwerk_store::vault::TenantKeys;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::view;

/// `POST /v1/suppressions` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddSuppression {
    email: String,
    /// Only this stream (default: every stream).
    #[serde(default)]
    stream: Option<String>,
    /// Default `manual`.
    #[serde(default)]
    reason: Option<String>,
}

/// `GET /v1/suppressions` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    email: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// `DELETE /v1/suppressions/{email}` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    stream: Option<String>,
}

/// An address from the request, or `422 invalid_address` naming `field`.
pub(crate) fn parse_email(email: &str, field: &str) -> Result<Address, ApiError> {
    Address::parse(email).map_err(|e| ApiError::invalid("invalid_address", field, e.to_string()))
}

/// A named stream must be one of the caller's.
async fn check_stream(
    state: &AppState,
    caller: &Caller,
    stream: Option<&str>,
) -> Result<(), ApiError> {
    let Some(name) = stream else {
        return Ok(());
    };
    let found = state
        .services
        .streams
        .find(&state.services.store, &caller.tenant_id, name)
        .await?;
    found.map(drop).ok_or_else(crate::streams::unknown_stream)
}

/// The caller's tenant keys, or 503.
pub(crate) async fn keys(
    state: &AppState,
    caller: &Caller,
) -> Result<std::sync::Arc<TenantKeys>, ApiError> {
    state
        .services
        .tenant_keys(&caller.tenant_id)
        .await
        .map_err(ApiError::from)
}

/// One suppression entry as JSON (the address opened, if it still can be).
pub(crate) fn entry_json(keys: &SubjectKeys, e: &SuppressionRecord) -> Value {
    json!({
        "email": suppressions::address_of(keys, e),
        "stream": e.stream,
        "reason": e.reason,
        "source": e.source,
        "created_at": view::time(e.created_at),
    })
}

/// Adds an address (scope `write`). 201 when added, 200 when it was already listed.
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<AddSuppression>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let address = parse_email(&req.email, "email")?;
    check_stream(&state, &caller, req.stream.as_deref()).await?;
    let reason = match req.reason.as_deref() {
        None => SuppressionReason::Manual,
        // `erasure` entries are the tombstones of DELETE /v1/subjects, not set by hand.
        Some(r) => r
            .parse()
            .ok()
            .filter(|r| *r != SuppressionReason::Erasure)
            .ok_or_else(|| {
                ApiError::invalid(
                    "invalid_reason",
                    "reason",
                    "use hard_bounce, complaint, unsubscribe or manual",
                )
            })?,
    };
    let hash = keys(&state, &caller).await?.blind_index(&address);
    let keys = view::people_creating(&state, &caller, [hash.as_slice()]).await?;
    let entry = suppressions::record(
        &keys,
        &caller.tenant_id,
        &address,
        reason,
        req.stream.as_deref(),
        "api",
    );
    let body = entry_json(&keys, &entry);
    let added = suppressions::add(&state.services, entry).await?;
    Ok((
        if added {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(body),
    ))
}

/// Lists entries, optionally for one address, with cursor pagination (scope `read`).
/// Erasure tombstones are listed only to callers that also have the `privacy` scope:
/// that a person asked to be erased is theirs to know (a page may then hold fewer
/// entries than `limit`; `next_cursor` still says whether more follow).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let keys = keys(&state, &caller).await?;
    let hash = q
        .email
        .as_deref()
        .map(|e| parse_email(e, "email"))
        .transpose()?
        .map(|a| keys.blind_index(&a).into_bytes());
    let (after, limit) = view::page(q.cursor.as_deref(), q.limit)?;
    let entries = state
        .services
        .store
        .list_suppressions(&caller.tenant_id, hash, after, limit)
        .await?;
    let next = view::next_cursor(entries.iter().map(|e| e.seq), limit);
    let privacy = caller.scopes.contains(&Scope::Privacy);
    let entries: Vec<SuppressionRecord> = entries
        .into_iter()
        .filter(|e| privacy || e.reason != SuppressionReason::Erasure)
        .collect();
    let keys = view::read_people(
        &state,
        &caller,
        "suppression.list",
        entries.iter().map(|e| e.rcpt_hash.as_slice()),
    )
    .await?;
    Ok(Json(json!({
        "suppressions": entries.iter().map(|e| entry_json(&keys, e)).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// Removes an address (for one stream with `?stream=`, else the all-streams entry)
/// (scope `write`), audited as `suppression.remove` with the person's blind index.
/// 404 when it was not listed. An erasure tombstone is refused (`409
/// erasure_tombstone`) unless the caller also has the `privacy` scope (the erased
/// person asked to receive mail again); lifting one is audited as
/// `suppression.remove_erasure`.
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    check_stream(&state, &caller, q.stream.as_deref()).await?;
    let address = parse_email(&email, "email")?;
    let keys = keys(&state, &caller).await?;
    let hash = keys.blind_index(&address);
    let store = &state.services.store;
    // One entry per stream scope: a handful at most.
    let entries = store
        .list_suppressions(&caller.tenant_id, Some(hash.to_vec()), None, 1000)
        .await?;
    let entry = entries
        .iter()
        .find(|e| e.stream == q.stream)
        .ok_or_else(|| ApiError::not_found("suppression"))?;
    let tombstone = entry.reason == SuppressionReason::Erasure;
    if tombstone && !caller.scopes.contains(&Scope::Privacy) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "erasure_tombstone",
            "the address was erased (DELETE /v1/subjects); only a key with the privacy scope can lift its tombstone",
        ));
    }
    let action = match tombstone {
        true => "suppression.remove_erasure",
        false => "suppression.remove",
    };
    caller
        .audit(&state, action, audit::subject(&keys, &address))
        .await?;
    let removed = store
        .remove_suppression(&caller.tenant_id, &hash, q.stream.as_deref(), tombstone)
        .await?;
    if removed == 0 {
        return Err(ApiError::not_found("suppression"));
    }
    Ok(StatusCode::NO_CONTENT)
}
