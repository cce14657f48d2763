//! Sending and reading messages.

use postwerk_store::vault::SealContext;
use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use postwerk_mta::accept::{AcceptError, IdempotentResponse, Pipeline, Refusal, Submission};
use postwerk_services::context::now_ms;
use postwerk_services::streams::Stream;
use postwerk_services::subjects::SubjectKeys;
use postwerk_store::IDEMPOTENCY_TTL_MS;
use postwerk_store::model::{MessageFilter, MessageRecord, QueueAction, QueueSelector};
use postwerk_store::prelude::*;
use ring::digest;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::compose::{self, Composed, RawRequest, SendRequest};
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::view;
use postwerk_mta::tracking::links::Linker;

/// Most messages in one batch request.
pub const MAX_BATCH: usize = 500;

/// `POST /v1/messages`.
pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SendRequest>,
) -> Result<Response, ApiError> {
    let req = crate::templates::apply(&state, &caller, req).await?;
    let linker = Linker::new(&state.services.config, state.services.keys.master());
    let streams = streams_for(&state, &caller, req.stream.as_deref()).await?;
    send_one(&state, &caller, &headers, "from", "messages", |ehlo| {
        compose::compose(&req, ehlo, Some(&linker), &streams)
    })
    .await
}

/// `DELETE /v1/messages/{id}` (scope `send`): cancels a scheduled message whose time
/// has not come: its recipients become `cancelled` (event `cancelled`) and it is never
/// sent. `409 not_scheduled` once it is being sent or was sent (or was not scheduled).
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = &state.services.store;
    let selector = QueueSelector {
        tenant_id: Some(caller.tenant_id.clone()),
        message_id: Some(id.clone()),
        ..QueueSelector::default()
    };
    let cancelled = store
        .queue_action(selector, QueueAction::Cancel, now_ms())
        .await?;
    let view = shown(&state, &caller, &id).await?;
    if cancelled == 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_scheduled",
            "the message is not waiting for its send_at: it is being sent, was sent, or was not scheduled",
        ));
    }
    Ok(view)
}

/// `POST /v1/messages/raw`.
pub async fn send_raw(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RawRequest>,
) -> Result<Response, ApiError> {
    let streams = streams_for(&state, &caller, req.stream.as_deref()).await?;
    send_one(
        &state,
        &caller,
        &headers,
        "data.From",
        "messages/raw",
        |ehlo| compose::compose_raw(&req, ehlo, &streams),
    )
    .await
}

/// The caller's streams, reloaded first when the request names one this node does
/// not know yet (added on another node a moment ago).
async fn streams_for(
    state: &AppState,
    caller: &Caller,
    requested: Option<&str>,
) -> Result<Vec<Arc<Stream>>, ApiError> {
    let streams = &state.services.streams;
    if let Some(name) = requested {
        streams
            .find(&state.services.store, &caller.tenant_id, name)
            .await?;
    }
    Ok(streams.list(&caller.tenant_id))
}

/// A message the server writes for the caller (a double opt-in's confirmation),
/// composed and checked like `POST /v1/messages` (without tracking) but not yet sent.
pub(crate) struct Outgoing {
    /// Its message id.
    pub id: String,
    prepared: Prepared,
}

impl Outgoing {
    /// Composes `req` and checks its From domain (reported as `from_field`).
    pub(crate) async fn compose(
        state: &AppState,
        caller: &Caller,
        req: &SendRequest,
        from_field: &str,
    ) -> Result<Outgoing, ApiError> {
        let streams = streams_for(state, caller, req.stream.as_deref()).await?;
        let ehlo = &state.services.config.delivery.ehlo_name;
        let composed = compose::compose(req, ehlo, None, &streams)?;
        let domain = &composed.submission.from_domain;
        check_domain(state, caller, domain, from_field).await?;
        Ok(Outgoing {
            id: composed.response["id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            prepared: (
                StatusCode::ACCEPTED,
                vec![composed.submission],
                composed.response,
            ),
        })
    }

    /// Screens it and, unless its recipient is held (suppressed, no consent,
    /// restricted, or the stream is paused: that status is returned and nothing is
    /// stored), accepts it for delivery.
    pub(crate) async fn send(
        self,
        state: &AppState,
        caller: &Caller,
    ) -> Result<Option<postwerk_core::model::RecipientStatus>, ApiError> {
        let (_, submissions, _) = self.prepared;
        let screened = pipeline(state, caller).screen(submissions).await?;
        let mut held = screened.submissions().iter().flat_map(|s| s.held.values());
        if let Some(held) = held.next() {
            return Ok(Some(*held));
        }
        screened
            .commit(None)
            .await
            .map_err(|e| ApiError::unavailable(&e))?;
        Ok(None)
    }
}

/// One message: compose (with the Message-ID domain), check that the From domain
/// (reported as `from_field`) is registered, accept.
async fn send_one(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    from_field: &str,
    endpoint: &str,
    compose: impl FnOnce(&str) -> Result<Composed, ApiError>,
) -> Result<Response, ApiError> {
    idempotent(state, caller, headers, endpoint, async {
        let composed = compose(&state.services.config.delivery.ehlo_name)?;
        check_domain(state, caller, &composed.submission.from_domain, from_field).await?;
        Ok((
            StatusCode::ACCEPTED,
            vec![composed.submission],
            composed.response,
        ))
    })
    .await
}

/// `POST /v1/messages/batch` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    messages: Vec<Value>,
}

/// `POST /v1/messages/batch`: each message is validated on its own; the valid ones
/// are committed together. 202 when all were accepted, else 207 with per-message
/// errors.
pub async fn send_batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<BatchRequest>,
) -> Result<Response, ApiError> {
    if req.messages.is_empty() || req.messages.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "invalid_batch",
            "messages",
            format!("send 1 to {MAX_BATCH} messages"),
        ));
    }
    idempotent(&state, &caller, &headers, "messages/batch", async {
        let mut results = Vec::with_capacity(req.messages.len());
        let mut submissions = Vec::with_capacity(req.messages.len());
        for (i, raw) in req.messages.into_iter().enumerate() {
            match compose_one(&state, &caller, raw).await {
                Ok(Composed {
                    submission,
                    response,
                }) => {
                    submissions.push(submission);
                    results.push(response);
                }
                Err(mut e) => {
                    e.log_cause();
                    if let Some(f) = e.field.take() {
                        e.field = Some(format!("messages[{i}].{f}"));
                    }
                    results.push(json!({ "error": e.inner() }));
                }
            }
        }
        let status = if submissions.len() == results.len() {
            StatusCode::ACCEPTED
        } else {
            StatusCode::MULTI_STATUS
        };
        Ok((status, submissions, json!({ "results": results })))
    })
    .await
}

async fn compose_one(state: &AppState, caller: &Caller, raw: Value) -> Result<Composed, ApiError> {
    let req: SendRequest =
        crate::strict::from_value(&raw).map_err(|e| crate::error::data_error(&e))?;
    let req = crate::templates::apply(state, caller, req).await?;
    let linker = Linker::new(&state.services.config, state.services.keys.master());
    let streams = streams_for(state, caller, req.stream.as_deref()).await?;
    let composed = compose::compose(
        &req,
        &state.services.config.delivery.ehlo_name,
        Some(&linker),
        &streams,
    )?;
    check_domain(state, caller, &composed.submission.from_domain, "from").await?;
    Ok(composed)
}

/// The submission pipeline of the caller's tenant.
fn pipeline<'a>(state: &'a AppState, caller: &'a Caller) -> Pipeline<'a> {
    Pipeline::new(&state.services, &state.engine, &caller.tenant_id)
}

/// 422 `domain_not_registered` unless the caller's tenant registered `domain`.
pub(crate) async fn check_domain(
    state: &AppState,
    caller: &Caller,
    domain: &str,
    field: &str,
) -> Result<(), ApiError> {
    match pipeline(state, caller).check_domain(domain).await {
        Ok(()) => Ok(()),
        Err(Refusal::DomainNotRegistered) => Err(ApiError::invalid(
            "domain_not_registered",
            field,
            "the From domain is not registered; add it with POST /v1/domains or `postwerk domains add`",
        )),
        Err(e) => Err(ApiError::unavailable(&e)),
    }
}

type Prepared = (StatusCode, Vec<Submission>, Value);

/// Runs a send under the optional `Idempotency-Key` (scoped to `endpoint`): a valid
/// repeat within 24 h replays the first response and stores nothing; an invalid one
/// gets its error.
async fn idempotent(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    endpoint: &str,
    prepare: impl Future<Output = Result<Prepared, ApiError>>,
) -> Result<Response, ApiError> {
    let key_hash = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1–255 visible characters",
                    )
                })?;
            // Scoped to the endpoint: the same key on another endpoint is another request.
            let mut ctx = digest::Context::new(&digest::SHA256);
            ctx.update(endpoint.as_bytes());
            ctx.update(&[0]);
            ctx.update(key.as_bytes());
            Some(ctx.finish().as_ref().to_vec())
        }
    };
    // Validate first: an invalid request is refused whatever key it carries; a valid
    // one with a known key gets the stored result.
    let (status, submissions, mut body) = prepare.await?;
    if let Some(hash) = &key_hash
        && let Some(replay) = replay(state, caller, hash).await?
    {
        return Ok(replay);
    }
    let screened = pipeline(state, caller).screen(submissions).await?;
    mark_held_in_response(&mut body, screened.submissions());
    if screened.submissions().is_empty() {
        return Ok((status, Json(body)).into_response());
    }
    let record = key_hash.as_ref().map(|h| IdempotentResponse {
        key_hash: h.clone(),
        response: serde_json::to_vec(&json!({
            "status": status.as_u16(),
            "body": without_addresses(&body),
        }))
        .unwrap_or_default(),
    });
    match screened.commit(record).await {
        Ok(()) => Ok((status, Json(body)).into_response()),
        Err(AcceptError::IdempotencyKeyUsed) => {
            let hash = key_hash.unwrap_or_default();
            replay(state, caller, &hash).await?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_conflict",
                    "a request with this Idempotency-Key is in progress",
                )
            })
        }
        Err(e @ (AcceptError::Service(_) | AcceptError::BroadcastMoved)) => {
            Err(ApiError::unavailable(&e))
        }
    }
}

/// Sets the status of held recipients (`suppressed`, `no_consent`, `restricted`) on
/// their response entries (single sends: `recipients`; batches:
/// `results[].recipients`).
fn mark_held_in_response(body: &mut Value, submissions: &[Submission]) {
    if submissions.iter().all(|s| s.held.is_empty()) {
        return;
    }
    for message in messages_in(body) {
        for r in recipients_in(message) {
            let held = r["id"]
                .as_str()
                .and_then(|id| submissions.iter().find_map(|s| s.held.get(id)));
            if let Some(status) = held {
                r["status"] = Value::from(status.as_str());
            }
        }
    }
}

/// The accepted messages of a send response: the body itself (single sends) or each
/// entry of `results` (batches).
fn messages_in(body: &mut Value) -> Vec<&mut Value> {
    if body.get("results").is_some_and(Value::is_array) {
        return body["results"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .collect();
    }
    vec![body]
}

/// The `recipients` entries of one message of a send response.
fn recipients_in(message: &mut Value) -> impl Iterator<Item = &mut Value> {
    message
        .get_mut("recipients")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// A send response as stored for an Idempotency-Key: without the recipients'
/// addresses (sealed under the tenant key, they would outlive the erasure of the
/// people they name). A replay reads them back from the recipient rows.
fn without_addresses(body: &Value) -> Value {
    let mut stored = body.clone();
    for message in messages_in(&mut stored) {
        for r in recipients_in(message) {
            if let Some(r) = r.as_object_mut() {
                r.remove("email");
            }
        }
    }
    stored
}

/// Puts each recipient's address back into a stored send response, from its
/// recipient row: `null` once the person was erased (or the message purged).
async fn with_addresses(
    state: &AppState,
    caller: &Caller,
    body: &mut Value,
) -> Result<(), ApiError> {
    for message in messages_in(body) {
        let Some(id) = message["id"].as_str() else {
            continue;
        };
        let record = state
            .services
            .store
            .get_message(&caller.tenant_id, id)
            .await?;
        let records = Vec::from_iter(record);
        let keys = people_of(state, caller, "message.replay", &records).await?;
        let rows = records.iter().flat_map(|m| &m.recipients);
        let addresses: HashMap<&str, String> = rows
            .filter_map(|r| {
                let address = view::address(&r.id, &r.rcpt_hash, &r.address_enc, &keys)?;
                Some((r.id.as_str(), address))
            })
            .collect();
        for r in recipients_in(message) {
            let address = r["id"].as_str().and_then(|id| addresses.get(id)).cloned();
            r["email"] = Value::from(address);
        }
    }
    Ok(())
}

async fn replay(
    state: &AppState,
    caller: &Caller,
    key_hash: &[u8],
) -> Result<Option<Response>, ApiError> {
    let tenant_id = caller.tenant_id.as_str();
    let since = now_ms() - IDEMPOTENCY_TTL_MS;
    let Some(rec) = state
        .services
        .store
        .get_idempotency(tenant_id, key_hash, since)
        .await?
    else {
        return Ok(None);
    };
    let keys = state.services.tenant_keys(tenant_id).await?;
    let stored = keys.open(SealContext::Idempotency(key_hash), &rec.response_enc)?;
    let stored: Value = serde_json::from_slice(&stored).map_err(|e| ApiError::unavailable(&e))?;
    let status = stored["status"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::ACCEPTED);
    let mut body = stored["body"].clone();
    with_addresses(state, caller, &mut body).await?;
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert(
        "idempotent-replayed",
        axum::http::HeaderValue::from_static("true"),
    );
    Ok(Some(resp))
}

/// `GET /v1/messages/{id}`: each recipient's status and event timeline.
pub async fn get_message(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    shown(&state, &caller, &id).await
}

/// The caller's message `id` as `GET /v1/messages/{id}` shows it (its people's keys
/// read under the audit action `message.view`); `404` if the tenant has none such.
async fn shown(state: &AppState, caller: &Caller, id: &str) -> Result<Json<Value>, ApiError> {
    let record = state
        .services
        .store
        .get_message(&caller.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("message"))?;
    let keys = people_of(state, caller, "message.view", std::slice::from_ref(&record)).await?;
    Ok(Json(message_view(&record, &keys, true)))
}

/// `GET /v1/messages` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageQuery {
    /// Only this stream.
    stream: Option<String>,
    /// Only messages with this tag (matched through a blind index).
    tag: Option<String>,
    /// Only messages to this address (matched through the blind index).
    recipient: Option<String>,
    /// Accepted at or after (RFC 3339 or Unix seconds).
    since: Option<String>,
    /// Accepted before (RFC 3339 or Unix seconds).
    until: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<usize>,
    /// `false`: each recipient without its events (a lighter list; default `true`).
    events: Option<bool>,
}

/// `GET /v1/messages?stream=&tag=&recipient=&since=&until=&cursor=&limit=&events=`:
/// message search, newest first, each as `GET /v1/messages/{id}` shows it (without the
/// recipients' events with `events=false`).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<MessageQuery>,
) -> Result<Json<Value>, ApiError> {
    let keys = state.services.tenant_keys(&caller.tenant_id).await?;
    let rcpt_hash = view::recipient_hash(&keys, q.recipient.as_deref())?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_limit",
            "limit",
            "limit must be 1–1000",
        ));
    }
    let before_id = q
        .cursor
        .map(|c| {
            let ok = c.starts_with("msg_")
                && c.len() <= 64
                && c[4..].bytes().all(|b| b.is_ascii_alphanumeric());
            if ok {
                Ok(c)
            } else {
                Err(ApiError::invalid(
                    "invalid_cursor",
                    "cursor",
                    "invalid cursor",
                ))
            }
        })
        .transpose()?;
    let filter = MessageFilter {
        tenant_id: caller.tenant_id.clone(),
        stream: q.stream,
        tag_hash: q.tag.as_deref().map(|t| keys.tag_index(t)),
        rcpt_hash,
        since: q
            .since
            .as_deref()
            .map(|t| view::time_param(t, "since"))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .map(|t| view::time_param(t, "until"))
            .transpose()?,
        before_id,
        limit,
    };
    let with_events = q.events.unwrap_or(true);
    let messages = state.services.store.list_messages(filter).await?;
    let next = (messages.len() == limit)
        .then(|| messages.last().map(|m| m.id.clone()))
        .flatten();
    let keys = people_of(&state, &caller, "message.list", &messages).await?;
    Ok(Json(json!({
        "messages": messages.iter().map(|m| message_view(m, &keys, with_events)).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// The keys of the recipients of `messages`, after auditing the read as `action`.
async fn people_of(
    state: &AppState,
    caller: &Caller,
    action: &str,
    messages: &[MessageRecord],
) -> Result<SubjectKeys, ApiError> {
    let hashes = messages
        .iter()
        .flat_map(|m| &m.recipients)
        .map(|r| r.rcpt_hash.as_slice());
    view::read_people(state, caller, action, hashes).await
}

/// A message with each recipient's status and, `with_events`, its event timeline.
fn message_view(record: &MessageRecord, keys: &SubjectKeys, with_events: bool) -> Value {
    let mut events_by_rcpt: HashMap<&str, Vec<Value>> = HashMap::new();
    for e in record.events.iter().filter(|_| with_events) {
        events_by_rcpt
            .entry(e.recipient_id.as_str())
            .or_default()
            .push(view::event(e, keys));
    }
    let sole = match record.recipients.as_slice() {
        [only] => Some(only.rcpt_hash.as_slice()),
        _ => None,
    };
    let meta = view::meta(&record.id, sole, &record.meta_enc, keys);
    let recipients: Vec<Value> = record
        .recipients
        .iter()
        .map(|r| {
            let mut v = json!({
                "id": r.id,
                "email": view::address(&r.id, &r.rcpt_hash, &r.address_enc, keys),
                "status": r.status,
                "attempts": r.attempts,
                "next_attempt_at": r.next_attempt_at.and_then(view::time),
                "updated_at": view::time(r.updated_at),
            });
            if with_events {
                v["events"] = events_by_rcpt
                    .remove(r.id.as_str())
                    .unwrap_or_default()
                    .into();
            }
            v
        })
        .collect();
    json!({
        "id": record.id,
        "stream": record.stream,
        "created_at": view::time(record.created_at),
        "send_at": meta.send_at.and_then(view::time),
        "subject": meta.subject,
        "from": meta.from,
        "tags": meta.tags,
        "metadata": meta.metadata,
        "recipients": recipients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_responses_hold_no_addresses() {
        let single = json!({"id": "msg_1", "recipients": [
            {"id": "rcpt_1", "email": "a@example.test", "status": "queued"}]});
        assert_eq!(
            without_addresses(&single),
            json!({"id": "msg_1", "recipients": [{"id": "rcpt_1", "status": "queued"}]})
        );
        let batch = json!({"results": [
            {"id": "msg_2", "recipients": [{"id": "rcpt_2", "email": "b@example.test", "status": "suppressed"}]},
            {"error": {"code": "invalid_address", "field": "messages[1].to"}}]});
        let stored = without_addresses(&batch);
        assert!(!stored.to_string().contains("example.test"), "{stored}");
        assert_eq!(
            stored["results"][0]["recipients"][0]["status"],
            "suppressed"
        );
        assert_eq!(stored["results"][1], batch["results"][1]);
    }
}
