//! Personal data: contacts and consents (`/v1/contacts/…`), data-subject requests
//! (`/v1/subjects/…`: export, erasure) and the audit log (`/v1/audit`).
//!
//! Every access to personal data is first written to the audit chain; if that fails,
//! the access does not happen (503).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use postwerk_core::address::Address;
use postwerk_core::model::{ConsentStatus, DsarKind};
use postwerk_privacy::contacts::{self, ConsentEvidence, LAWFUL_BASES};
use postwerk_privacy::requests;
use postwerk_services::audit;
use postwerk_store::prelude::*;
use postwerk_store::vault::TenantKeys;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::export::{self, consent_json, contact_json};
use crate::suppressions::{self, keys};
use crate::view;

/// `PUT /v1/contacts/{email}` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutContact {
    #[serde(default)]
    attributes: Map<String, Value>,
    #[serde(default)]
    lists: Vec<String>,
}

/// `POST /v1/contacts/{email}/consents` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostConsent {
    purpose: String,
    lawful_basis: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    wording: Option<String>,
    #[serde(default)]
    wording_version: Option<String>,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
    /// RFC 3339; default now.
    #[serde(default)]
    at: Option<String>,
    /// Record the consent as `pending` and send the person a confirmation link.
    #[serde(default)]
    double_opt_in: Option<DoubleOptIn>,
}

/// The confirmation message of a double opt-in (sent on the `transactional` stream).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoubleOptIn {
    /// Sender on a registered domain (as `from` of `POST /v1/messages`).
    from: Value,
    /// Subject.
    subject: String,
    /// Plain text; must contain `{{confirm_url}}`.
    text: String,
    /// Optional HTML; if given, must contain `{{confirm_url}}` too.
    #[serde(default)]
    html: Option<String>,
}

/// Where the confirmation link goes in a double opt-in message.
const CONFIRM_PLACEHOLDER: &str = "{{confirm_url}}";

/// `DELETE /v1/subjects/{email}` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EraseQuery {
    #[serde(default)]
    suppress: Option<bool>,
}

/// `GET /v1/audit` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    /// `asc` (default: oldest first) or `desc` (newest first).
    #[serde(default)]
    order: Option<String>,
}

fn parse_email(email: &str) -> Result<Address, ApiError> {
    suppressions::parse_email(email, "email")
}

/// Records an access to a person's data before it happens.
async fn audited(
    state: &AppState,
    caller: &Caller,
    keys: &TenantKeys,
    action: &str,
    address: &Address,
) -> Result<(), ApiError> {
    caller
        .audit(state, action, audit::subject(keys, address))
        .await
}

/// The person a subject handler's path names, with the access recorded before
/// anything else is read: parses `email`, fetches the tenant's keys, audits `action`.
async fn audited_subject(
    state: &AppState,
    caller: &Caller,
    email: &str,
    action: &str,
) -> Result<Address, ApiError> {
    let address = parse_email(email)?;
    let keys = keys(state, caller).await?;
    audited(state, caller, &keys, action, &address).await?;
    Ok(address)
}

/// Registers a request carried out through the API as completed (`address` `None`
/// after an erasure).
async fn registered(
    state: &AppState,
    caller: &Caller,
    kind: DsarKind,
    address: Option<&Address>,
) -> Result<(), ApiError> {
    requests::register(
        &state.services,
        &caller.tenant_id,
        kind,
        address,
        None,
        Some("api".into()),
        true,
    )
    .await
    .map(drop)
    .map_err(ApiError::from)
}

/// `PUT /v1/contacts/{email}` (scope `write`): creates or rectifies a contact.
pub async fn put_contact(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
    ApiJson(req): ApiJson<PutContact>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let address = parse_email(&email)?;
    if req
        .lists
        .iter()
        .any(|l| l.is_empty() || l.chars().count() > 100)
    {
        return Err(ApiError::invalid(
            "invalid_list",
            "lists",
            "list names are 1–100 characters",
        ));
    }
    let keys = keys(&state, &caller).await?;
    audited(&state, &caller, &keys, "contact.upsert", &address).await?;
    let (contact, created) = contacts::upsert(
        &state.services,
        &caller.tenant_id,
        &address,
        req.attributes,
        req.lists,
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(contact_json(&contact))))
}

/// `GET /v1/contacts/{email}` (scope `read`): the contact with its current consents.
pub async fn get_contact(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let address = audited_subject(&state, &caller, &email, "contact.view").await?;
    let services = &state.services;
    if !crate::audience::visible(&state, &caller, &address).await? {
        return Err(ApiError::not_found("contact"));
    }
    let contact = contacts::get(services, &caller.tenant_id, &address)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    let history = contacts::consents(services, &caller.tenant_id, &address).await?;
    let mut v = contact_json(&contact);
    v["consents"] = contacts::current(&history)
        .into_iter()
        .map(consent_json)
        .collect();
    v["consent_history"] = history.iter().map(consent_json).collect();
    Ok(Json(v))
}

/// The confirmation message of a double opt-in, with the link filled in.
fn confirmation_message(
    state: &AppState,
    keys: &postwerk_store::vault::TenantKeys,
    caller: &Caller,
    address: &Address,
    purpose: &str,
    d: &DoubleOptIn,
) -> Result<crate::compose::SendRequest, ApiError> {
    let missing = |field: &str| {
        ApiError::invalid(
            "missing_confirm_url",
            format!("double_opt_in.{field}"),
            "the message must contain {{confirm_url}}",
        )
    };
    if !d.text.contains(CONFIRM_PLACEHOLDER) {
        return Err(missing("text"));
    }
    if d.html
        .as_ref()
        .is_some_and(|h| !h.contains(CONFIRM_PLACEHOLDER))
    {
        return Err(missing("html"));
    }
    let token = contacts::confirmation_token(keys, &caller.tenant_id, address, purpose);
    let url = format!("{}/c/{token}", state.services.config.links_base_url());
    serde_json::from_value(serde_json::json!({
        "from": d.from,
        "to": [address.to_string()],
        "subject": d.subject,
        "text": d.text.replace(CONFIRM_PLACEHOLDER, &url),
        "html": d.html.as_ref().map(|h| h.replace(CONFIRM_PLACEHOLDER, &url)),
        "stream": "transactional",
    }))
    .map_err(|e| ApiError::invalid("invalid_double_opt_in", "double_opt_in", e.to_string()))
}

/// `DELETE /v1/contacts/{email}` (scope `write`): deletes the contact's profile
/// (attributes, lists); the consent history stays as evidence (204). Erasing the
/// person entirely is `DELETE /v1/subjects/{email}`.
pub async fn delete_contact(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<StatusCode, ApiError> {
    let address = audited_subject(&state, &caller, &email, "contact.delete").await?;
    let deleted = contacts::delete(&state.services, &caller.tenant_id, &address).await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("contact"))
    }
}

/// `POST /v1/contacts/{email}/consents` (scope `write`): appends a consent record.
pub async fn post_consent(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
    ApiJson(req): ApiJson<PostConsent>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let address = parse_email(&email)?;
    let purpose = req.purpose.trim();
    if purpose.is_empty() || purpose.chars().count() > 64 || purpose.contains(['/', ' ']) {
        return Err(ApiError::invalid(
            "invalid_purpose",
            "purpose",
            "a purpose is 1–64 characters without spaces or slashes",
        ));
    }
    if !LAWFUL_BASES.contains(&req.lawful_basis.as_str()) {
        return Err(ApiError::invalid(
            "invalid_lawful_basis",
            "lawful_basis",
            format!("use one of {}", LAWFUL_BASES.join(", ")),
        ));
    }
    let at = req
        .at
        .as_deref()
        .map(|t| view::rfc3339(t, "at"))
        .transpose()?;
    let evidence = ConsentEvidence {
        lawful_basis: Some(req.lawful_basis),
        source: req.source,
        wording: req.wording,
        wording_version: req.wording_version,
        ip: req.ip,
        user_agent: req.user_agent,
        confirms: None,
    };
    let keys = keys(&state, &caller).await?;
    if req.double_opt_in.is_some()
        && !purpose
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(ApiError::invalid(
            "invalid_purpose",
            "purpose",
            "a double opt-in purpose uses letters, digits, '.', '_' and '-' (it is part of the link)",
        ));
    }
    // A double opt-in's message is composed and checked before anything is recorded.
    let confirmation = match &req.double_opt_in {
        Some(d) => {
            let message = confirmation_message(&state, &keys, &caller, &address, purpose, d)?;
            let from = "double_opt_in.from";
            Some(crate::messages::Outgoing::compose(&state, &caller, &message, from).await?)
        }
        None => None,
    };
    audited(&state, &caller, &keys, "consent.record", &address).await?;
    // The confirmation goes out first: a pending consent is recorded only once its
    // message was accepted (a failed or held send leaves nothing behind).
    let confirmation_id = match confirmation {
        Some(message) => {
            let id = message.id.clone();
            if let Some(held) = message.send(&state, &caller).await? {
                return Err(ApiError::invalid(
                    "confirmation_not_sent",
                    "double_opt_in",
                    format!(
                        "the confirmation message cannot be sent (the recipient would be {}); no consent was recorded",
                        held.as_str()
                    ),
                ));
            }
            Some(id)
        }
        None => None,
    };
    let status = match confirmation_id {
        Some(_) => ConsentStatus::Pending,
        None => ConsentStatus::Active,
    };
    let consent = contacts::add_consent(
        &state.services,
        &caller.tenant_id,
        &address,
        purpose,
        status,
        at,
        &evidence,
    )
    .await?;
    let mut body = consent_json(&consent);
    if let Some(id) = confirmation_id {
        body["confirmation_message_id"] = Value::from(id);
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// `DELETE /v1/contacts/{email}/consents/{purpose}` (scope `write`): withdraws
/// consent (recorded, never erased). 404 when none is given for the purpose.
pub async fn withdraw_consent(
    State(state): State<AppState>,
    caller: Caller,
    Path((email, purpose)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let address = audited_subject(&state, &caller, &email, "consent.withdraw").await?;
    let evidence = ConsentEvidence {
        source: Some("api".into()),
        ..Default::default()
    };
    let withdrawn = contacts::withdraw(
        &state.services,
        &caller.tenant_id,
        &address,
        &purpose,
        &evidence,
    )
    .await?
    .ok_or_else(|| ApiError::not_found("consent"))?;
    Ok(Json(consent_json(&withdrawn)))
}

/// `GET /v1/subjects/{email}/export` (scope `export`): everything held on one
/// person in the tenant, as one JSON document. 404 when nothing is held.
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let address = audited_subject(&state, &caller, &email, "subject.export").await?;
    if !crate::audience::visible(&state, &caller, &address).await? {
        return Err(ApiError::not_found("data subject"));
    }
    let document =
        export::subject_document(&state.services, &caller.tenant_id, &address, |_, _| {})
            .await?
            .ok_or_else(|| ApiError::not_found("data subject"))?;
    registered(&state, &caller, DsarKind::Access, Some(&address)).await?;
    Ok(Json(document))
}

/// `DELETE /v1/subjects/{email}` (scope `privacy`): erasure. Leaves a suppression
/// tombstone (the hash only) unless `?suppress=false`.
pub async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
    ApiQuery(q): ApiQuery<EraseQuery>,
) -> Result<Json<Value>, ApiError> {
    let address = audited_subject(&state, &caller, &email, "subject.erase").await?;
    let suppress = q.suppress.unwrap_or(true);
    let erased = contacts::erase(&state.services, &caller.tenant_id, &address, suppress).await?;
    registered(&state, &caller, DsarKind::Erasure, None).await?;
    Ok(Json(json!({
        "erased": {
            "keys": erased.keys,
            "contacts": erased.contacts,
            "list_memberships": erased.list_memberships,
            "consents": erased.consents,
            "recipients": erased.recipients,
            "messages": erased.messages,
            "events": erased.events,
            "suppressions": erased.suppressions,
            "webhook_deliveries": erased.webhook_deliveries,
        },
        "suppressed": suppress,
    })))
}

/// `POST /v1/subjects/{email}/restrict` (scope `privacy`): restricts processing
/// (Art. 18): data kept, nothing sent. `DELETE` on the same path lifts it.
pub async fn restrict(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_restriction(state, caller, email, true).await
}

/// `DELETE /v1/subjects/{email}/restrict` (scope `privacy`): lifts a restriction.
pub async fn lift_restriction(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_restriction(state, caller, email, false).await
}

async fn set_restriction(
    state: AppState,
    caller: Caller,
    email: String,
    restricted: bool,
) -> Result<Json<Value>, ApiError> {
    let action = if restricted {
        "subject.restrict"
    } else {
        "subject.unrestrict"
    };
    let address = audited_subject(&state, &caller, &email, action).await?;
    let contact =
        contacts::restrict(&state.services, &caller.tenant_id, &address, restricted).await?;
    if restricted {
        registered(&state, &caller, DsarKind::Restriction, Some(&address)).await?;
    }
    Ok(Json(contact_json(&contact)))
}

/// `GET /v1/audit` (scope `admin`): the tenant's audit entries, oldest first
/// (`?order=desc`: newest first; the cursor then pages back in time).
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let (cursor, limit) = view::page(q.cursor.as_deref(), q.limit)?;
    let store = &state.services.store;
    let tenant = Some(caller.tenant_id.as_str());
    let entries = match q.order.as_deref() {
        None | Some("asc") => store.list_audit(tenant, cursor, limit).await?,
        Some("desc") => store.list_audit_newest(tenant, cursor, limit).await?,
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_order",
                "order",
                "use asc or desc",
            ));
        }
    };
    let next = view::next_cursor(entries.iter().map(|e| e.seq), limit);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    Ok(Json(json!({
        "entries": entries.iter().map(|e| json!({
            "id": e.seq.to_string(),
            "at": view::time(e.at),
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "ip": e.ip,
            "hash": hex(&e.hash),
            "prev_hash": hex(&e.prev_hash),
        })).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// `GET /v1/audit/verify` (scope `admin`): reads the whole hash chain and checks it:
/// `{"intact": true, "entries", "head"}`, or `{"intact": false, "error"}` naming the
/// first break (as `postwerk audit verify` does).
pub async fn verify_audit(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(match audit::verify(&state.services).await? {
        Ok((entries, head)) => json!({
            "intact": true,
            "entries": entries,
            "head": postwerk_core::hex::encode(&head),
        }),
        Err(e) => json!({"intact": false, "error": e.to_string()}),
    }))
}
