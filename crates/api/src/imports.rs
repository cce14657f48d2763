//! `POST /v1/imports` (a CSV of contacts, read as a stream and screened by the
//! watchdog), `GET /v1/imports[/{id}]`, and the decisions on an import: `cancel`,
//! and for a held one `approve` or `discard`.

use std::pin::Pin;

use axum::Json;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use http_body::Body as _;
use postwerk_privacy::audience::imports::{
    self, Existing, Import, ImportError, ImportOptions, Screening,
};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery};
use crate::view;

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        let message = e.to_string();
        match e {
            ImportError::Csv(_) | ImportError::Empty => {
                ApiError::invalid("invalid_csv", "body", message)
            }
            ImportError::MissingEmailColumn | ImportError::DuplicateEmailColumn => {
                ApiError::invalid("missing_email_column", "body", message)
            }
            ImportError::Mapping(_) => ApiError::invalid("invalid_mapping", "map", message),
            ImportError::TooLarge(_) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
            }
            ImportError::Interrupted(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "body_incomplete", message)
            }
            ImportError::UnknownList => ApiError::invalid("unknown_list", "list", message),
            ImportError::Invalid(field, _) => ApiError::invalid("invalid_option", field, message),
            ImportError::NotFound => ApiError::not_found("import"),
            ImportError::WrongState(_) => {
                ApiError::new(StatusCode::CONFLICT, "invalid_state", message)
            }
            ImportError::Service(e) => e.into(),
        }
    }
}

/// An import as JSON; with `report`, its rejected rows too.
pub(crate) fn import_json(i: &Import, report: bool) -> Value {
    let d = &i.detail;
    let mut v = json!({
        "id": i.id,
        "state": i.state,
        "list_id": d.list_id,
        "options": d.options,
        "counts": d.counts,
        "screened": d.screened,
        "reasons": d.reasons,
        "progress": { "chunks": d.chunks, "committed": d.chunks_done },
        "bytes": d.bytes,
        "error": d.error,
        "decided_by": d.decided_by,
        "created_by": d.actor,
        "created_at": view::time(i.created_at),
        "updated_at": view::time(i.updated_at),
        "finished_at": d.finished_at.map(view::time),
    });
    if report {
        v["rejects"] = json!(d.rejects);
    }
    v
}

/// The options of `POST /v1/imports` from its query: `list`, `consent`, `source`,
/// `lawful_basis`, `wording`, `existing` (`update` or `keep`), and `map.<column>` (or
/// `map[<column>]`: `email`, `attribute:<name>`, `lists`, `consent_at`, `consent_ip`,
/// `skip`).
fn options(raw: Option<&str>) -> Result<ImportOptions, ApiError> {
    let mut o = ImportOptions::default();
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let value = value.into_owned();
        match key.as_ref() {
            "list" => o.list = Some(value),
            "consent" => o.consent = Some(value),
            "source" => o.source = Some(value),
            "lawful_basis" => o.lawful_basis = Some(value),
            "wording" => o.wording = Some(value),
            "existing" => {
                o.existing = match value.as_str() {
                    "update" => Existing::Update,
                    "keep" => Existing::Keep,
                    _ => {
                        return Err(ApiError::invalid(
                            "invalid_option",
                            "existing",
                            "existing is update or keep",
                        ));
                    }
                }
            }
            other => match crate::audience::nested(other) {
                Some(("map", column)) => {
                    o.columns.insert(column.to_string(), value);
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
    Ok(o)
}

/// Whether a request says its body is CSV (`text/csv`, also `application/csv` and
/// `text/plain`).
fn csv_content_type(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            let t = t.trim();
            ["text/csv", "application/csv", "text/plain"]
                .iter()
                .any(|ok| t.eq_ignore_ascii_case(ok))
        })
}

/// Screens the body of `request` as it arrives.
async fn screen(screening: &mut Screening, request: Request) -> Result<(), ImportError> {
    let mut body = request.into_body();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| ImportError::Interrupted(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            screening.feed(&data).await?;
        }
    }
    Ok(())
}

/// `POST /v1/imports` (scope `import`): a CSV of contacts, `Content-Type: text/csv`,
/// first line the header, column `email` required. `202` with the import: `held` if
/// the watchdog stopped it, else `running` (then `done`; poll `GET /v1/imports/{id}`).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    request: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !csv_content_type(&request) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: text/csv",
        ));
    }
    let options = options(raw.as_deref())?;
    let services = &state.services;
    let mut screening =
        Screening::start(services, &caller.tenant_id, &caller.actor(), options).await?;
    if let Err(e) = screen(&mut screening, request).await {
        screening.fail(&e).await;
        return Err(e.into());
    }
    let import = screening.finish().await?;
    if import.state == imports::State::Running.as_str() {
        imports::spawn(
            services.clone(),
            caller.tenant_id.clone(),
            import.id.clone(),
        );
    }
    Ok((StatusCode::ACCEPTED, Json(import_json(&import, false))))
}

/// `GET /v1/imports` (scope `import`): the tenant's imports, newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<view::IdPage>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit()?;
    let found = imports::list(&state.services, &caller.tenant_id, q.cursor, limit).await?;
    Ok(Json(json!({
        "imports": found.iter().map(|i| import_json(i, false)).collect::<Vec<_>>(),
        "next_cursor": view::IdPage::next(found.iter().map(|i| i.id.as_str()), limit),
    })))
}

/// `GET /v1/imports/{id}` (scope `import`): state, progress, counts, reasons when
/// held, and the report of rejected rows.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let import = imports::get(&state.services, &caller.tenant_id, &id).await?;
    Ok(Json(import_json(&import, true)))
}

/// `POST /v1/imports/{id}/cancel` (scope `import`).
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let import = imports::cancel(&state.services, &caller.tenant_id, &id, &caller.actor()).await?;
    Ok(Json(import_json(&import, false)))
}

/// `POST /v1/imports/{id}/approve` (scope `admin`): a held import goes on.
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let services = &state.services;
    let import = imports::approve(services, &caller.tenant_id, &id, &caller.actor()).await?;
    imports::spawn(
        services.clone(),
        caller.tenant_id.clone(),
        import.id.clone(),
    );
    Ok(Json(import_json(&import, false)))
}

/// `POST /v1/imports/{id}/discard` (scope `admin`): a held import is dropped unwritten.
pub async fn discard(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let import = imports::discard(&state.services, &caller.tenant_id, &id, &caller.actor()).await?;
    Ok(Json(import_json(&import, false)))
}
