//! `GET/POST /v1/suppressions`, `DELETE /v1/suppressions/{email}`: the addresses
//! Postwerk will not send to. Stored as blind-index hashes; search by address works
//! by hashing the query. `GET /v1/suppressions/export` and `POST
//! /v1/suppressions/import` move the list as CSV (see [`crate::suppressions_csv`]).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use postwerk_core::address::Address;
use postwerk_core::model::{Scope, SuppressionReason};
use postwerk_privacy::suppressions;
use postwerk_services::audit;
use postwerk_services::context::ServiceError;
use postwerk_services::subjects::SubjectKeys;
use postwerk_store::model::SuppressionRecord;
use postwerk_store::prelude::*;
use postwerk_store::vault::TenantKeys;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::suppressions_csv::{self, Export, Import, ImportCounts, ImportError};
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

/// `GET /v1/suppressions/export` and `POST /v1/suppressions/import` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvQuery {
    /// Export: only this stream's entries. Import: the stream of rows that name none.
    stream: Option<String>,
}

/// A response body sent as a task writes it: pieces of text from a channel.
struct ChannelBody(tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, ServiceError>>);

impl http_body::Body for ChannelBody {
    type Data = axum::body::Bytes;
    type Error = ServiceError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|piece| piece.map(|r| r.map(http_body::Frame::data)))
    }
}

/// Exports the list as CSV (scope `read`), streamed a page at a time: the header
/// `email,stream,reason,created_at,source`, then one row per entry (of `?stream=`
/// only, else of every scope; an every-stream entry has an empty `stream`). Erased
/// addresses (tombstones) are not exported but counted in `X-Postwerk-Skipped-Erased`.
/// Counted first, and audited as `suppression.export` with the count before a row is
/// sent; the export holds what was counted (entries added since are left out).
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CsvQuery>,
) -> Result<Response, ApiError> {
    check_stream(&state, &caller, q.stream.as_deref()).await?;
    let services = state.services.clone();
    let stream = q.stream.as_deref();
    let count = suppressions_csv::count(&services, &caller.tenant_id, stream).await?;
    caller
        .audit(&state, "suppression.export", count.audit_target(stream))
        .await?;
    let mut export = Export::new(&caller.tenant_id, stream, &count);
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        loop {
            let piece = match export.next_chunk(&services).await {
                Ok(Some(text)) => Ok(axum::body::Bytes::from(text)),
                Ok(None) => break,
                Err(e) => {
                    // The status is sent: the client sees the body cut short.
                    tracing::error!(error = %e, "a suppression export failed midway");
                    Err(e)
                }
            };
            let failed = piece.is_err();
            if tx.send(piece).await.is_err() || failed {
                break;
            }
        }
        if export.unreadable > 0 {
            tracing::warn!(
                skipped = export.unreadable,
                "suppression export: entries whose address no longer opens were skipped"
            );
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"suppressions.csv\"".to_string(),
            ),
            (
                HeaderName::from_static(SKIPPED_ERASED),
                count.skipped_erased.to_string(),
            ),
        ],
        Body::new(ChannelBody(rx)),
    )
        .into_response())
}

/// The header counting the erased entries an export left out.
const SKIPPED_ERASED: &str = "x-postwerk-skipped-erased";

/// `text/csv` (or `application/csv`, `text/plain`), parameters allowed.
fn csv_content_type(headers: &axum::http::HeaderMap) -> bool {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    matches!(
        essence.as_deref(),
        Some("text/csv" | "application/csv" | "text/plain")
    )
}

/// The body could not be read: it paused too long (408), or the client failed.
fn body_error(e: &axum::Error) -> ApiError {
    if crate::listener::is_body_timeout(e) {
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the request body did not arrive in time",
        );
    }
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "the request body could not be read",
    )
}

/// Imports a CSV file (scope `write`), read and added in batches as it arrives: a
/// header line naming an `email` column (or `Email`, `email_address`, `Recipient`, …),
/// optionally `reason`, `stream` (else `?stream=`, else every stream) and `source`
/// (default `import`). Answers the counts and the first rejected rows; audited as
/// `suppression.import` with the counts.
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CsvQuery>,
    request: Request,
) -> Result<Json<ImportCounts>, ApiError> {
    if !csv_content_type(request.headers()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: text/csv",
        ));
    }
    let limit = request
        .extensions()
        .get::<crate::BodyLimit>()
        .map_or(usize::MAX, |l| l.0) as u64;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|d| d > limit) {
        return Err(too_large());
    }
    check_stream(&state, &caller, q.stream.as_deref()).await?;
    let mut body = request.into_body();
    let mut import = Import::new(&state.services, &caller.tenant_id, q.stream.as_deref());
    let mut read = 0u64;
    while let Some(frame) =
        std::future::poll_fn(|cx| http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx))
            .await
    {
        let frame = frame.map_err(|e| body_error(&e))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        read += data.len() as u64;
        if read > limit {
            return Err(too_large());
        }
        import.feed(&data).await.map_err(import_error)?;
    }
    let counts = import.finish().await.map_err(import_error)?;
    let target = format!(
        "{} imported, {} already listed, {} rejected",
        counts.imported, counts.already, counts.rejected
    );
    caller.audit(&state, "suppression.import", target).await?;
    Ok(Json(counts))
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "request body too large for this endpoint (split the file)",
    )
}

/// `422 invalid_csv` for a file that is not CSV with an email column; 503 for the
/// store.
fn import_error(e: ImportError) -> ApiError {
    match e {
        ImportError::Service(e) => ApiError::from(e),
        e => ApiError::invalid("invalid_csv", "body", e.to_string()),
    }
}
