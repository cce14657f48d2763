//! `GET /v1/events?message_id=&recipient=&type=&stream=&tag=&since=&until=&cursor=&limit=`.

use axum::Json;
use axum::extract::State;
use postwerk_core::model::EventType;
use postwerk_store::model::EventFilter;
use postwerk_store::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery};
use crate::view;

/// Query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Only this message.
    message_id: Option<String>,
    /// Only this recipient address (matched through the blind index).
    recipient: Option<String>,
    /// Only this event type.
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// Only events of messages of this stream.
    stream: Option<String>,
    /// Only events of messages with this tag (matched through a blind index).
    tag: Option<String>,
    /// Only events at or after this time (RFC 3339 or Unix seconds).
    since: Option<String>,
    /// Only events before this time (RFC 3339 or Unix seconds).
    until: Option<String>,
    /// Continue after this cursor (`next_cursor` of the previous page).
    cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<usize>,
}

/// Lists events in order, with cursor pagination.
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<Json<Value>, ApiError> {
    let keys = state.services.tenant_keys(&caller.tenant_id).await?;
    let rcpt_hash = view::recipient_hash(&keys, q.recipient.as_deref())?;
    let event_type = q
        .event_type
        .as_deref()
        .map(|t| {
            t.parse::<EventType>()
                .map_err(|e| ApiError::invalid("invalid_type", "type", e.to_string()))
        })
        .transpose()?;
    let since = q
        .since
        .as_deref()
        .map(|t| view::time_param(t, "since"))
        .transpose()?;
    let until = q
        .until
        .as_deref()
        .map(|t| view::time_param(t, "until"))
        .transpose()?;
    let tag_hash = q.tag.as_deref().map(|t| keys.tag_index(t));
    let (after_seq, limit) = view::page(q.cursor.as_deref(), q.limit)?;
    let filter = EventFilter {
        tenant_id: caller.tenant_id.clone(),
        message_id: q.message_id,
        rcpt_hash,
        event_type,
        since,
        until,
        stream: q.stream,
        tag_hash,
        after_seq,
        limit,
    };
    let events = state.services.store.list_events(filter).await?;
    let next = view::next_cursor(events.iter().map(|e| e.seq), limit);
    let keys = view::read_people(
        &state,
        &caller,
        "event.list",
        events.iter().map(|e| e.rcpt_hash.as_slice()),
    )
    .await?;
    Ok(Json(json!({
        "events": events.iter().map(|e| view::event(e, &keys)).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}
