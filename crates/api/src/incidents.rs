//! The breach register: `GET/POST /v1/privacy/incidents`,
//! `POST /v1/privacy/incidents/{id}/{authority-notified|customers-notified|close}`
//! (scope `privacy`). Every entry is audited.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use postwerk_privacy::incidents::{self, Incident, IncidentDetail};
use postwerk_store::model::IncidentStep;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::view;

/// `POST /v1/privacy/incidents` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    affected: Option<String>,
    #[serde(default)]
    measures: Option<String>,
    /// RFC 3339; default now.
    #[serde(default)]
    detected_at: Option<String>,
}

fn incident_json(i: &Incident) -> Value {
    let r = &i.record;
    let now = postwerk_services::context::now_ms();
    let late = |done: Option<i64>, due: i64| done.is_none() && due < now;
    let mut v = json!({
        "id": r.seq.to_string(),
        "detected_at": view::time(r.detected_at),
        "authority_due_at": view::time(r.authority_due_at),
        "customers_due_at": view::time(r.customers_due_at),
        "authority_notified_at": r.authority_notified_at.and_then(view::time),
        "customers_notified_at": r.customers_notified_at.and_then(view::time),
        "closed_at": r.closed_at.and_then(view::time),
        "overdue": late(r.authority_notified_at, r.authority_due_at)
            || late(r.customers_notified_at, r.customers_due_at),
    });
    if let (Some(d), Some(obj)) = (&i.detail, v.as_object_mut())
        && let Ok(Value::Object(fields)) = serde_json::to_value(d)
    {
        obj.extend(fields);
    }
    v
}

/// Registers a breach (201) with its deadlines.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewIncident>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if req.title.trim().is_empty() {
        return Err(ApiError::invalid(
            "invalid_title",
            "title",
            "give the incident a title",
        ));
    }
    let detected_at = req
        .detected_at
        .as_deref()
        .map(|t| view::rfc3339(t, "detected_at"))
        .transpose()?;
    let detail = IncidentDetail {
        title: req.title,
        description: req.description,
        affected: req.affected,
        measures: req.measures,
    };
    let incident =
        incidents::report(&state.services, &caller.tenant_id, detected_at, &detail).await?;
    caller
        .audit(
            &state,
            "incident.report",
            format!("incident:{}", incident.record.seq),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(incident_json(&incident))))
}

/// Records `authority-notified`, `customers-notified` or `close` (once each).
pub async fn step(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, step)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let step = match step.as_str() {
        "authority-notified" => IncidentStep::AuthorityNotified,
        "customers-notified" => IncidentStep::CustomersNotified,
        "close" => IncidentStep::Closed,
        _ => return Err(ApiError::not_found("endpoint")),
    };
    let seq: i64 = id.parse().map_err(|_| ApiError::not_found("incident"))?;
    caller
        .audit(&state, "incident.update", format!("incident:{id}"))
        .await?;
    let done = incidents::step(&state.services, &caller.tenant_id, seq, step).await?;
    if !done {
        return Err(ApiError::not_found("incident without that step"));
    }
    Ok(Json(json!({"id": id, "recorded": true})))
}

/// Lists the register; `overdue=true` for incidents with a notification missing past
/// its deadline.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<view::RegisterQuery>,
) -> Result<Json<Value>, ApiError> {
    let (after, limit) = view::page(q.cursor.as_deref(), q.limit)?;
    let page = incidents::list(
        &state.services,
        &caller.tenant_id,
        q.overdue.unwrap_or(false),
        after,
        limit,
    )
    .await?;
    let next = view::next_cursor(page.iter().map(|i| i.record.seq), limit);
    Ok(Json(json!({
        "incidents": page.iter().map(incident_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}
