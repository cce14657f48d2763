//! The webhook delivery loop. Each node claims due deliveries (a lease, so several
//! nodes on one PostgreSQL share the work), renders each event, signs it and posts it.
//! A 2xx answer delivers; anything else is retried on [`BACKOFF`] (over 31 hours in
//! all) and then marked failed. An endpoint failing every attempt for
//! `[webhooks] disable_after` is disabled, with an audit entry and a warning.
//!
//! The payload is rendered from the event at send time and never stored: erasing or
//! purging the event leaves nothing to post (the delivery is dropped). A cancelled
//! tenant's deliveries are held (put back, nothing posted) until it is reactivated.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postwerk_store::model::{
    EventFilter, EventRecord, WebhookAttemptRecord, WebhookDelivery, WebhookDeliveryState,
    WebhookOutcome, WebhookRecord,
};
use postwerk_store::prelude::*;
use serde_json::{Value, json};

use super::http::{self, PostError};
use super::target::Target;
use crate::view;
use postwerk_services::audit::{self, Actor};
use postwerk_services::context::{ServiceError, Services, now_ms};
use postwerk_services::subjects::SubjectKeys;

/// Wait before retry *n* (after the n-th failed attempt).
pub const BACKOFF: [Duration; 11] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(1800),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(4 * 3600),
    Duration::from_secs(8 * 3600),
    Duration::from_secs(8 * 3600),
    Duration::from_secs(8 * 3600),
];

/// Deliveries claimed (and posted concurrently) per round.
const BATCH: usize = 32;
/// How long a claim is held: longer than any attempt can take.
const LEASE: Duration = Duration::from_secs(120);
/// Pause when nothing is due.
const IDLE: Duration = Duration::from_millis(200);
/// How long a cancelled tenant's delivery is put back before it is looked at again
/// (posted if the tenant was reactivated meanwhile).
pub const HOLD: Duration = Duration::from_secs(30);

/// Runs until the task is dropped.
pub async fn run(services: Arc<Services>) {
    loop {
        match round(&services).await {
            Ok(0) => tokio::time::sleep(IDLE).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "webhook delivery round failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Claims and posts one batch; returns how many deliveries were handled.
pub async fn round(services: &Arc<Services>) -> Result<usize, ServiceError> {
    let now = now_ms();
    let lease = millis(LEASE);
    let claimed = services
        .store
        .claim_webhook_deliveries(&services.node_id, now, now + lease, BATCH)
        .await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let hooks: Arc<HashMap<String, WebhookRecord>> = Arc::new(
        services
            .store
            .list_webhooks(None)
            .await?
            .into_iter()
            .map(|w| (w.id.clone(), w))
            .collect(),
    );
    let n = claimed.len();
    let mut tasks = tokio::task::JoinSet::new();
    for d in claimed {
        let (services, hooks) = (services.clone(), hooks.clone());
        tasks.spawn(async move { deliver(&services, hooks.get(&d.webhook_id), &d).await });
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "webhook delivery could not be recorded"),
            Err(e) => tracing::error!(error = %e, "webhook delivery task failed"),
        }
    }
    Ok(n)
}

/// Posts one delivery and records the outcome.
async fn deliver(
    services: &Services,
    hook: Option<&WebhookRecord>,
    d: &WebhookDelivery,
) -> Result<(), ServiceError> {
    let started = Instant::now();
    let at = now_ms();
    if services.cancelled.contains(&d.tenant_id) {
        return hold(services, d, at).await;
    }
    let event = match hook {
        Some(_) => load_event(services, d).await?,
        None => None,
    };
    let (Some(hook), Some(event)) = (hook, event) else {
        return finish(services, d, at, Attempt::dropped(), None).await;
    };
    let result = post(services, hook, &event).await;
    let duration_ms = millis(started.elapsed());
    finish(
        services,
        d,
        at,
        Attempt::from(result, duration_ms),
        Some(hook),
    )
    .await
}

/// Puts a cancelled tenant's delivery back for [`HOLD`], with no attempt recorded:
/// nothing is posted for a cancelled tenant; if it is reactivated, the delivery goes
/// out; if it is deleted, the delivery goes with its data.
async fn hold(services: &Services, d: &WebhookDelivery, at: i64) -> Result<(), ServiceError> {
    let outcome = WebhookOutcome {
        attempt: Attempt::dropped().record(d, at, WebhookDeliveryState::Pending),
        next_attempt_at: Some(at + millis(HOLD)),
        record: false,
        disable_failing_before: 0,
    };
    services.store.finish_webhook_delivery(outcome).await?;
    Ok(())
}

/// What one attempt produced.
struct Attempt {
    status_code: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
    ok: bool,
    sent: bool,
}

impl Attempt {
    fn dropped() -> Self {
        Attempt {
            status_code: None,
            error: None,
            duration_ms: 0,
            ok: false,
            sent: false,
        }
    }

    fn from(result: Result<u16, PostError>, duration_ms: i64) -> Self {
        let (status_code, error, ok) = match result {
            Ok(code) => (Some(i64::from(code)), None, (200..300).contains(&code)),
            Err(e) => (None, Some(e.to_string()), false),
        };
        Attempt {
            status_code,
            error,
            duration_ms,
            ok,
            sent: true,
        }
    }

    /// The row recording this attempt on delivery `d`, leaving it in `state`.
    fn record(
        self,
        d: &WebhookDelivery,
        at: i64,
        state: WebhookDeliveryState,
    ) -> WebhookAttemptRecord {
        WebhookAttemptRecord {
            seq: 0,
            delivery_seq: d.seq,
            webhook_id: d.webhook_id.clone(),
            tenant_id: d.tenant_id.clone(),
            event_seq: d.event_seq,
            at,
            status_code: self.status_code,
            error: self.error,
            duration_ms: self.duration_ms,
            state,
        }
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn finish(
    services: &Services,
    d: &WebhookDelivery,
    at: i64,
    a: Attempt,
    hook: Option<&WebhookRecord>,
) -> Result<(), ServiceError> {
    let retry = BACKOFF.get(usize::try_from(d.attempts).unwrap_or(usize::MAX));
    let (state, next_attempt_at) = match (a.sent, a.ok, retry) {
        (false, _, _) => (WebhookDeliveryState::Dropped, None),
        (true, true, _) => (WebhookDeliveryState::Delivered, None),
        (true, false, Some(wait)) => (WebhookDeliveryState::Pending, Some(at + millis(*wait))),
        (true, false, None) => (WebhookDeliveryState::Failed, None),
    };
    let result = match state {
        WebhookDeliveryState::Pending => "retry",
        other => other.as_str(),
    };
    postwerk_core::metrics::WEBHOOK_POSTS.add(&[result], 1);
    let disable_after = services.config.webhooks.disable_after;
    let record = a.sent;
    let outcome = WebhookOutcome {
        attempt: a.record(d, at, state),
        next_attempt_at,
        record,
        disable_failing_before: at.saturating_sub(millis(disable_after)),
    };
    let disabled = services.store.finish_webhook_delivery(outcome).await?;
    if disabled && let Some(hook) = hook {
        tracing::warn!(
            webhook = %hook.id,
            tenant = %hook.tenant_id,
            "webhook endpoint disabled: every attempt failed for longer than webhooks.disable_after"
        );
        audit::record(
            services,
            &Actor::system(),
            Some(&hook.tenant_id),
            "webhook.disabled",
            Some(hook.id.clone()),
        )
        .await?;
    }
    Ok(())
}

/// The delivery's event, or `None` if it was erased or purged.
async fn load_event(
    services: &Services,
    d: &WebhookDelivery,
) -> Result<Option<EventRecord>, ServiceError> {
    let events = services
        .store
        .list_events(EventFilter {
            tenant_id: d.tenant_id.clone(),
            message_id: Some(d.message_id.clone()),
            after_seq: Some(d.event_seq - 1),
            limit: 1,
            ..EventFilter::default()
        })
        .await?;
    Ok(events.into_iter().find(|e| e.seq == d.event_seq))
}

/// Renders, signs and posts one event.
async fn post(
    services: &Services,
    hook: &WebhookRecord,
    event: &EventRecord,
) -> Result<u16, PostError> {
    let keys = services
        .subject_keys(&hook.tenant_id, [event.rcpt_hash.as_slice()])
        .await
        .map_err(|e| PostError::Protocol(format!("tenant keys: {e}")))?;
    let body = payload(services, &keys, event)
        .await
        .to_string()
        .into_bytes();
    let target = Target::parse(&hook.url).map_err(|e| PostError::Connect(e.to_string()))?;
    let addrs = target
        .resolve(&services.config.webhooks)
        .await
        .map_err(|e| PostError::Connect(e.to_string()))?;
    let now = now_ms();
    let id = format!("evt_{}", event.seq);
    let timestamp = now / 1000;
    let signature = super::sign::header(
        &super::secrets(keys.tenant(), hook, now),
        &id,
        timestamp,
        &body,
    );
    let headers = [
        ("webhook-id", id),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ];
    let timeout = services.config.webhooks.timeout;
    let mut last = PostError::Connect("no address".into());
    for addr in addrs {
        match http::post(&target, addr, &headers, &body, timeout).await {
            Err(PostError::Connect(e)) => last = PostError::Connect(e),
            other => return other,
        }
    }
    Err(last)
}

/// The JSON posted for an event: `{"type", "timestamp", "data"}` (the Standard
/// Webhooks envelope), `data` being the event as `GET /v1/events` shows it plus the
/// recipient's address, the message's stream, and its tags and metadata.
pub async fn payload(services: &Services, keys: &SubjectKeys, event: &EventRecord) -> Value {
    let mut data = view::event(event, keys);
    if let Ok(Some(r)) = services.store.find_recipient(&event.recipient_id).await
        && r.tenant_id == event.tenant_id
        && let Some(obj) = data.as_object_mut()
    {
        obj.insert(
            "recipient".into(),
            json!(view::address(&r.id, &r.rcpt_hash, &r.address_enc, keys)),
        );
        obj.insert("stream".into(), json!(r.stream));
    }
    if let Ok(Some(m)) = services
        .store
        .get_message(&event.tenant_id, &event.message_id)
        .await
        && let Some(obj) = data.as_object_mut()
    {
        let meta = view::meta(&m.id, Some(&event.rcpt_hash), &m.meta_enc, keys);
        obj.insert("tags".into(), json!(meta.tags));
        obj.insert("metadata".into(), json!(meta.metadata));
    }
    json!({
        "type": event.event_type,
        "timestamp": view::time(event.at),
        "data": data,
    })
}
