//! `/v1/queue`: the tenant's waiting mail (scope `read`) and operations on it (scope
//! `write`, audited): retry, suspend, resume, bounce.

use axum::Json;
use axum::extract::{Path, State};
use postwerk_mta::queue_ops;
use postwerk_services::context::now_ms;
use postwerk_store::model::{QueueAction, QueueSelector};
use postwerk_store::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};

/// `POST /v1/queue/{action}` body: which of the tenant's waiting mail to act on
/// (every given field must match; an empty body selects all of it).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct QueueFilter {
    stream: Option<String>,
    domain: Option<String>,
    message_id: Option<String>,
}

/// `GET /v1/queue`: totals, per stream, per domain, and every group.
pub async fn show(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let view = queue_ops::view(&state.services, Some(&caller.tenant_id)).await?;
    Ok(Json(view))
}

/// `POST /v1/queue/{action}` with `retry`, `suspend`, `resume` or `bounce`: returns
/// `{"action", "recipients"}`, how many changed.
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path(action): Path<String>,
    body: Option<ApiJson<QueueFilter>>,
) -> Result<Json<Value>, ApiError> {
    let action = match action.as_str() {
        "retry" => QueueAction::Retry,
        "suspend" => QueueAction::Suspend,
        "resume" => QueueAction::Resume,
        "bounce" => QueueAction::Bounce,
        _ => return Err(ApiError::not_found("queue action")),
    };
    let filter = body.map(|ApiJson(f)| f).unwrap_or_default();
    let selector = QueueSelector {
        tenant_id: Some(caller.tenant_id.clone()),
        stream: filter.stream,
        domain: filter.domain,
        message_id: filter.message_id,
    };
    let name = queue_ops::action_name(action);
    caller
        .audit(
            &state,
            &format!("queue.{name}"),
            queue_ops::describe(&selector),
        )
        .await?;
    let changed = state
        .services
        .store
        .queue_action(selector, action, now_ms())
        .await?;
    Ok(Json(json!({"action": name, "recipients": changed})))
}
