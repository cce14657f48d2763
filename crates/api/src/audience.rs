//! The audience: `/v1/lists…` (lists and bulk membership), `GET /v1/contacts` and
//! `/v1/contacts/count` (the contact search), `GET /v1/contacts/export` (CSV with a
//! canary row), `/v1/segments…` (saved filters) and `/v1/canaries…`.
//!
//! A search or export opens many people's data: it is written to the audit chain
//! (with its size) before any of it is read.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use postwerk_core::address::Address;
use postwerk_privacy::audience::canaries::{self, CanaryError};
use postwerk_privacy::audience::filter::{self, AudienceFilter, FilterError, Segment};
use postwerk_privacy::audience::lists::{self, ListError, Membership};
use postwerk_privacy::audience::{export, search};
use postwerk_store::model::{CanaryRecord, ContactFilter, ListSummary};
use postwerk_store::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use crate::export::contact_json;
use crate::suppressions::parse_email;
use crate::view;

/// Most addresses one bulk membership request names.
pub const MAX_BULK: usize = 10_000;

impl From<ListError> for ApiError {
    fn from(e: ListError) -> Self {
        match e {
            ListError::InvalidName => ApiError::invalid("invalid_list", "name", e.to_string()),
            ListError::Taken => ApiError::new(StatusCode::CONFLICT, "list_exists", e.to_string()),
            ListError::NotFound => ApiError::not_found("list"),
            ListError::Service(e) => e.into(),
        }
    }
}

impl From<FilterError> for ApiError {
    fn from(e: FilterError) -> Self {
        match e {
            FilterError::ConsentState => {
                ApiError::invalid("invalid_filter", "consent", e.to_string())
            }
            FilterError::UnknownList => ApiError::invalid("unknown_list", "list", e.to_string()),
            FilterError::InvalidName => ApiError::invalid("invalid_name", "name", e.to_string()),
            FilterError::Taken => {
                ApiError::new(StatusCode::CONFLICT, "segment_exists", e.to_string())
            }
            FilterError::NotFound => ApiError::not_found("segment"),
            FilterError::Service(e) => e.into(),
        }
    }
}

/// A list as JSON.
fn list_json(l: &ListSummary) -> Value {
    json!({
        "id": l.list.id,
        "name": l.list.name,
        "description": l.list.description,
        "members": l.members,
        "created_at": view::time(l.list.created_at),
        "updated_at": view::time(l.list.updated_at),
    })
}

/// `POST /v1/lists` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewList {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

/// `PATCH /v1/lists/{id}` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListChange {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
}

/// A field that may be given as `null` (to clear it): `Some(None)`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `POST/DELETE /v1/lists/{id}/members` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Members {
    emails: Vec<String>,
}

/// `POST /v1/lists` (scope `write`).
pub async fn create_list(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewList>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let list = lists::create(
        &state.services,
        &caller.tenant_id,
        &req.name,
        req.description,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(list_json(&list))))
}

/// `GET /v1/lists` (scope `read`).
pub async fn list_lists(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let mut lists = state.services.store.lists(&caller.tenant_id).await?;
    if let Some(allowed) = &caller.lists {
        lists.retain(|l| allowed.contains(&l.list.id));
    }
    Ok(Json(
        json!({ "lists": lists.iter().map(list_json).collect::<Vec<_>>() }),
    ))
}

/// `GET /v1/lists/{id}` (scope `read`): by id or name, with its member count.
pub async fn show_list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let list = lists::find(&state.services, &caller.tenant_id, &id).await?;
    Ok(Json(list_json(&list)))
}

/// `PATCH /v1/lists/{id}` (scope `write`): renames or re-describes a list.
pub async fn update_list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ListChange>,
) -> Result<Json<Value>, ApiError> {
    let services = &state.services;
    let name = req.name.as_deref();
    let list = lists::update(services, &caller.tenant_id, &id, name, req.description).await?;
    Ok(Json(list_json(&list)))
}

/// `DELETE /v1/lists/{id}` (scope `write`): the list and its memberships go; the
/// contacts stay.
pub async fn delete_list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    lists::delete(&state.services, &caller.tenant_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The addresses of a bulk membership request, or `422` naming the first bad one.
fn bulk_addresses(req: &Members) -> Result<Vec<Address>, ApiError> {
    if req.emails.is_empty() || req.emails.len() > MAX_BULK {
        return Err(ApiError::invalid(
            "invalid_emails",
            "emails",
            format!("name 1 to {MAX_BULK} addresses"),
        ));
    }
    req.emails
        .iter()
        .enumerate()
        .map(|(i, e)| parse_email(e, &format!("emails[{i}]")))
        .collect()
}

/// `POST /v1/lists/{id}/members` (scope `write`): adds contacts to a list.
pub async fn add_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Members>,
) -> Result<Json<Value>, ApiError> {
    members(&state, &caller, &id, &req, Membership::Join).await
}

/// `DELETE /v1/lists/{id}/members` (scope `write`): removes people from a list.
pub async fn remove_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Members>,
) -> Result<Json<Value>, ApiError> {
    members(&state, &caller, &id, &req, Membership::Leave).await
}

/// A bulk membership change, audited (`list.add_members`, `list.remove_members`)
/// with the list and the number of addresses: `{"added", "not_added"}` or
/// `{"removed", "not_members"}`.
async fn members(
    state: &AppState,
    caller: &Caller,
    id: &str,
    req: &Members,
    change: Membership,
) -> Result<Json<Value>, ApiError> {
    let addresses = bulk_addresses(req)?;
    let services = &state.services;
    let list = lists::find(services, &caller.tenant_id, id).await?.list;
    let (action, done, not_done) = match change {
        Membership::Join => ("list.add_members", "added", "not_added"),
        Membership::Leave => ("list.remove_members", "removed", "not_members"),
    };
    let target = format!("{} n={}", list.id, addresses.len());
    caller.audit(state, action, target).await?;
    let tenant = &caller.tenant_id;
    let result = lists::change_members(services, tenant, &list.id, &addresses, change).await?;
    Ok(Json(
        json!({ done: result.changed, not_done: result.unchanged }),
    ))
}

/// A contact search as a query string gives it: the filter, and the cursor and limit.
struct SearchQuery {
    filter: AudienceFilter,
    segment: Option<String>,
    email: Option<Address>,
    cursor: Option<Vec<u8>>,
    limit: usize,
}

/// A nested query key, `outer.inner` or (OpenAPI's deepObject style)
/// `outer[inner]`, as `(outer, inner)`; `None` for any other key or an empty inner.
pub(crate) fn nested(key: &str) -> Option<(&str, &str)> {
    let (outer, inner) = match key.split_once('[') {
        Some((outer, rest)) => (outer, rest.strip_suffix(']')?),
        None => key.split_once('.')?,
    };
    (!inner.is_empty()).then_some((outer, inner))
}

/// Reads a contact search's query: `list` (repeatable), `segment`, `email`,
/// `attributes.<name>` (or `attributes[<name>]`), `consent.<purpose>` (or
/// `consent[<purpose>]`: `active`, `pending`, `withdrawn`,
/// `none`), `created_after`, `created_before`, `updated_after`, `updated_before`
/// (RFC 3339 or Unix seconds), `engaged_within_days`, `clicked_within_days`,
/// `never_bounced`, `cursor`, `limit` (1–500, default 100).
fn search_query(raw: Option<&str>) -> Result<SearchQuery, ApiError> {
    let mut q = SearchQuery {
        filter: AudienceFilter::default(),
        segment: None,
        email: None,
        cursor: None,
        limit: 100,
    };
    let pairs = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes());
    for (key, value) in pairs {
        let value = value.into_owned();
        let f = &mut q.filter;
        let days = |v: &str, field: &str| {
            v.parse::<u32>()
                .map_err(|_| ApiError::invalid("invalid_query", field, "a number of days"))
        };
        match key.as_ref() {
            "list" => f.lists.push(value),
            "segment" => q.segment = Some(value),
            "email" => q.email = Some(parse_email(&value, "email")?),
            "created_after" => f.created_after = Some(view::time_param(&value, "created_after")?),
            "created_before" => {
                f.created_before = Some(view::time_param(&value, "created_before")?)
            }
            "updated_after" => f.updated_after = Some(view::time_param(&value, "updated_after")?),
            "updated_before" => {
                f.updated_before = Some(view::time_param(&value, "updated_before")?)
            }
            "engaged_within_days" => f.engaged_within_days = Some(days(&value, &key)?),
            "clicked_within_days" => f.clicked_within_days = Some(days(&value, &key)?),
            "never_bounced" => {
                f.never_bounced = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(ApiError::invalid(
                            "invalid_query",
                            "never_bounced",
                            "never_bounced is true or false",
                        ));
                    }
                }
            }
            "cursor" => {
                q.cursor = Some(postwerk_core::hex::decode(&value).ok_or_else(|| {
                    ApiError::invalid("invalid_cursor", "cursor", "invalid cursor")
                })?)
            }
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=search::MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid("invalid_limit", "limit", "limit must be 1–500")
                    })?
            }
            other => match nested(other) {
                Some(("attributes", name)) => {
                    f.attributes.insert(name.to_string(), value);
                }
                Some(("consent", purpose)) => {
                    f.consent.insert(purpose.to_string(), value);
                }
                _ => {
                    return Err(ApiError::invalid(
                        "unknown_parameter",
                        other,
                        format!("unknown query parameter `{other}`"),
                    ));
                }
            },
        }
    }
    q.filter.check()?;
    Ok(q)
}

/// The store's filter for a search: its own conditions, and a segment's.
async fn resolved(
    state: &AppState,
    caller: &Caller,
    q: &SearchQuery,
) -> Result<ContactFilter, ApiError> {
    let services = &state.services;
    let mut filter = q.filter.resolve(services, &caller.tenant_id).await?;
    if let Some(key) = &q.segment {
        let segment = filter::segment(services, &caller.tenant_id, key).await?;
        let more = segment.filter.resolve(services, &caller.tenant_id).await?;
        merge(&mut filter, more);
    }
    if let Some(address) = &q.email {
        let keys = services.tenant_keys(&caller.tenant_id).await?;
        filter.rcpt_hash = Some(keys.blind_index(address).into_bytes());
    }
    filter.after = q.cursor.clone();
    filter.limit = q.limit;
    filter.any_list = caller.lists.clone();
    Ok(filter)
}

/// Whether `caller` may read the contact of `address`: always, unless the caller is a
/// user limited to some lists and the person is on none of them.
pub(crate) async fn visible(
    state: &AppState,
    caller: &Caller,
    address: &Address,
) -> Result<bool, ApiError> {
    let Some(lists) = &caller.lists else {
        return Ok(true);
    };
    let keys = state.services.tenant_keys(&caller.tenant_id).await?;
    let filter = ContactFilter {
        tenant_id: caller.tenant_id.clone(),
        rcpt_hash: Some(keys.blind_index(address).into_bytes()),
        any_list: Some(lists.clone()),
        ..ContactFilter::default()
    };
    Ok(search::count(&state.services, filter).await? > 0)
}

/// Adds `more`'s conditions to `filter` (both must hold).
fn merge(filter: &mut ContactFilter, more: ContactFilter) {
    filter.lists.extend(more.lists);
    filter.attr_tags.extend(more.attr_tags);
    filter.consent.extend(more.consent);
    let later = |a: Option<i64>, b: Option<i64>| a.max(b);
    let earlier = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    filter.created_after = later(filter.created_after, more.created_after);
    filter.updated_after = later(filter.updated_after, more.updated_after);
    filter.engaged_since = later(filter.engaged_since, more.engaged_since);
    filter.clicked_since = later(filter.clicked_since, more.clicked_since);
    filter.created_before = earlier(filter.created_before, more.created_before);
    filter.updated_before = earlier(filter.updated_before, more.updated_before);
    filter.never_bounced |= more.never_bounced;
}

/// `GET /v1/contacts` (scope `read`): a page of contacts (see [`search_query`]).
pub async fn list_contacts(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = search_query(raw.as_deref())?;
    let filter = resolved(&state, &caller, &q).await?;
    caller
        .audit(&state, "contacts.list", format!("limit={}", filter.limit))
        .await?;
    let page = search::page(&state.services, filter).await?;
    Ok(Json(json!({
        "contacts": page.contacts.iter().map(contact_json).collect::<Vec<_>>(),
        "next_cursor": page.next.as_deref().map(postwerk_core::hex::encode),
    })))
}

/// `GET /v1/contacts/count` (scope `read`): how many contacts a search names
/// (`cursor` and `limit` ignored).
pub async fn count_contacts(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = search_query(raw.as_deref())?;
    let filter = resolved(&state, &caller, &q).await?;
    let count = search::count(&state.services, filter).await?;
    Ok(Json(json!({ "count": count })))
}

/// `GET /v1/contacts/export` (scope `export`): the contacts a search names as CSV
/// (header first; one row per contact and one canary row of this export's own),
/// streamed page by page.
pub async fn export_contacts(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = search_query(raw.as_deref())?;
    let mut filter = resolved(&state, &caller, &q).await?;
    filter.after = None;
    let label = (!q.filter.lists.is_empty()).then(|| q.filter.lists.join(";"));
    let services = state.services.clone();
    let export = export::start(&services, &caller.actor(), filter, label).await?;
    let id = export.id.clone();
    let chunks = futures_stream(services, export);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"contacts-{id}.csv\""),
            ),
            (header::HeaderName::from_static("x-postwerk-export"), id),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}

/// An export's chunks as a body stream (a failure ends the body early, logged).
fn futures_stream(
    services: std::sync::Arc<postwerk_services::context::Services>,
    export: export::Export,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold((services, export), |(services, mut export)| async move {
        match export.next_chunk(&services).await {
            Ok(Some(chunk)) => Some((Ok(chunk), (services, export))),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(export = %export.id, error = %e, "a contact export broke off");
                Some((
                    Err(std::io::Error::other("export failed")),
                    (services, export),
                ))
            }
        }
    })
}

/// A segment as JSON.
fn segment_json(s: &Segment) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "filter": s.filter,
        "created_at": view::time(s.created_at),
        "updated_at": view::time(s.updated_at),
    })
}

/// `POST /v1/segments` body; `PATCH` takes either field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    filter: Option<AudienceFilter>,
}

/// `POST /v1/segments` (scope `write`): saves a filter under a name.
pub async fn create_segment(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<SegmentBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = req
        .name
        .ok_or_else(|| ApiError::invalid("missing_field", "name", "name is required"))?;
    let f = req.filter.unwrap_or_default();
    f.check()?;
    let segment = filter::create_segment(&state.services, &caller.tenant_id, &name, f).await?;
    Ok((StatusCode::CREATED, Json(segment_json(&segment))))
}

/// `GET /v1/segments` (scope `read`).
pub async fn list_segments(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let segments = filter::segments(&state.services, &caller.tenant_id).await?;
    Ok(Json(json!({
        "segments": segments.iter().map(segment_json).collect::<Vec<_>>()
    })))
}

/// `GET /v1/segments/{id}` (scope `read`): the segment with its current count.
pub async fn show_segment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let services = &state.services;
    let segment = filter::segment(services, &caller.tenant_id, &id).await?;
    let mut resolved = segment.filter.resolve(services, &caller.tenant_id).await?;
    resolved.any_list = caller.lists.clone();
    let mut v = segment_json(&segment);
    v["count"] = json!(search::count(services, resolved).await?);
    Ok(Json(v))
}

/// `PATCH /v1/segments/{id}` (scope `write`).
pub async fn update_segment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SegmentBody>,
) -> Result<Json<Value>, ApiError> {
    if let Some(f) = &req.filter {
        f.check()?;
    }
    let services = &state.services;
    let name = req.name.as_deref();
    let segment =
        filter::update_segment(services, &caller.tenant_id, &id, name, req.filter).await?;
    Ok(Json(segment_json(&segment)))
}

/// `DELETE /v1/segments/{id}` (scope `write`).
pub async fn delete_segment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    filter::delete_segment(&state.services, &caller.tenant_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/segments/preview` (scope `read`): how many contacts a filter names,
/// without saving it.
pub async fn preview_segment(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(f): ApiJson<AudienceFilter>,
) -> Result<Json<Value>, ApiError> {
    f.check()?;
    let services = &state.services;
    let mut resolved = f.resolve(services, &caller.tenant_id).await?;
    resolved.any_list = caller.lists.clone();
    Ok(Json(
        json!({ "count": search::count(services, resolved).await? }),
    ))
}

/// A canary as JSON.
fn canary_json(c: &CanaryRecord) -> Value {
    json!({
        "address": c.address,
        "origin": c.origin,
        "label": c.label,
        "created_at": view::time(c.created_at),
        "triggered_at": c.triggered_at.map(view::time),
    })
}

/// `POST /v1/canaries` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCanary {
    #[serde(default)]
    label: Option<String>,
}

/// `POST /v1/canaries` (scope `write`): a new canary address of the tenant's.
pub async fn create_canary(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewCanary>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let canary = canaries::create(
        &state.services,
        &caller.tenant_id,
        canaries::REGISTERED,
        req.label,
    )
    .await
    .map_err(|e| match e {
        CanaryError::NotConfigured => ApiError::new(
            StatusCode::CONFLICT,
            "canaries_not_configured",
            e.to_string(),
        ),
        CanaryError::Service(e) => e.into(),
    })?;
    Ok((StatusCode::CREATED, Json(canary_json(&canary))))
}

/// `GET /v1/canaries` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryQuery {
    /// `registered`, or `export:<id>`.
    #[serde(default)]
    origin: Option<String>,
}

/// `GET /v1/canaries` (scope `read`): the tenant's canaries, those of exports too.
pub async fn list_canaries(
    State(state): State<AppState>,
    caller: Caller,
    crate::error::ApiQuery(q): crate::error::ApiQuery<CanaryQuery>,
) -> Result<Json<Value>, ApiError> {
    let canaries = state
        .services
        .store
        .canaries(&caller.tenant_id, q.origin)
        .await?;
    Ok(Json(json!({
        "canaries": canaries.iter().map(canary_json).collect::<Vec<_>>()
    })))
}

/// `DELETE /v1/canaries/{address}` (scope `write`).
pub async fn delete_canary(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
) -> Result<StatusCode, ApiError> {
    let address = address.to_ascii_lowercase();
    if !state
        .services
        .store
        .delete_canary(&caller.tenant_id, &address)
        .await?
    {
        return Err(ApiError::not_found("canary"));
    }
    Ok(StatusCode::NO_CONTENT)
}
