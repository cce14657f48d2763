//! The purge job: enforces `[retention]` continuously. Every `interval` it purges
//! message content older than `content` (once all recipients are final), then events
//! and settled messages older than `events`, Idempotency-Key records older than
//! 24 hours and settled webhook deliveries older than `webhook_logs` — in bounded steps, so it never holds the store's writer for long.

use std::sync::Arc;
use std::time::Duration;

use postwerk_store::model::{Purged, Retention};
use postwerk_store::{IDEMPOTENCY_TTL_MS, Store};

use crate::context::{ServiceError, Services, now_ms};

/// Rows of each kind per purge step.
const STEP: usize = 5_000;

/// Purges everything due at `now` (Unix ms): steps until nothing is left.
pub async fn purge_due(services: &Services, now: i64) -> Result<Purged, ServiceError> {
    let r = &services.config.retention;
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let cutoffs = Retention {
        content_before: now.saturating_sub(ms(r.content)),
        events_before: now.saturating_sub(ms(r.events)),
        idempotency_before: now - IDEMPOTENCY_TTL_MS,
        webhook_logs_before: now.saturating_sub(ms(r.webhook_logs)),
        limit: STEP,
    };
    let mut total = Purged::default();
    loop {
        let p = services.store.purge(cutoffs).await?;
        if p.is_empty() {
            return Ok(total);
        }
        total.contents += p.contents;
        total.events += p.events;
        total.messages += p.messages;
        total.idempotency += p.idempotency;
        total.webhook_deliveries += p.webhook_deliveries;
        tokio::task::yield_now().await;
    }
}

/// Runs [`purge_due`] every `retention.interval` until the task is dropped.
pub async fn run(services: Arc<Services>) {
    let mut tick = tokio::time::interval(services.config.retention.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match purge_due(&services, now_ms()).await {
            Ok(p) if p.is_empty() => {}
            Ok(p) => tracing::info!(
                contents = p.contents,
                events = p.events,
                messages = p.messages,
                idempotency = p.idempotency,
                webhook_deliveries = p.webhook_deliveries,
                "retention purge"
            ),
            Err(e) => tracing::warn!(error = %e, "retention purge failed; retrying next interval"),
        }
    }
}
