//! The webhooks area's rows: webhook endpoints, deliveries and attempts.

use super::*;

/// A tenant's webhook endpoint. Every new event that matches `events` and `streams`
/// gets a [`WebhookDelivery`] row in the same transaction as the event (a database
/// trigger), so no event is missed and none is posted before it is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    /// `wh_…`.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Where events are posted.
    pub url: String,
    /// Event types posted (empty: all).
    pub events: Vec<String>,
    /// Streams whose events are posted (empty: all).
    pub streams: Vec<String>,
    /// The signing secret, sealed (context `webhook:<id>`).
    pub secret_enc: Vec<u8>,
    /// The secret before the last rotation, still signed with until `previous_until`.
    pub previous_secret_enc: Option<Vec<u8>>,
    /// End of the rotation overlap.
    pub previous_until: Option<i64>,
    /// Creation time.
    pub created_at: i64,
    /// Set when the endpoint was disabled (by an operator or after failing too long).
    pub disabled_at: Option<i64>,
    /// Start of the current run of failed attempts; cleared by a success.
    pub failing_since: Option<i64>,
}

/// A pending webhook delivery of one event to one endpoint, as claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// Delivery sequence number.
    pub seq: i64,
    /// The endpoint.
    pub webhook_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// The event to post.
    pub event_seq: i64,
    /// The event's message (deliveries of one message are posted in event order).
    pub message_id: String,
    /// Attempts made so far.
    pub attempts: i64,
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookDeliveryState {
    /// Not yet accepted by the endpoint; tried again at `next_attempt_at`.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Retries exhausted.
    Failed,
    /// The event no longer exists (erased or past retention): nothing to post.
    Dropped,
}

impl WebhookDeliveryState {
    /// The stored form read back.
    pub(crate) fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "pending" => WebhookDeliveryState::Pending,
            "delivered" => WebhookDeliveryState::Delivered,
            "failed" => WebhookDeliveryState::Failed,
            "dropped" => WebhookDeliveryState::Dropped,
            _ => return Err(StoreError::Corrupt("webhook delivery state".into())),
        })
    }

    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookDeliveryState::Pending => "pending",
            WebhookDeliveryState::Delivered => "delivered",
            WebhookDeliveryState::Failed => "failed",
            WebhookDeliveryState::Dropped => "dropped",
        }
    }
}

/// One attempt to post an event. Holds no payload and no personal data: the payload
/// is rendered from the event at send time, so erasing the event erases it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttemptRecord {
    /// Assigned by the store; ignored on insert.
    pub seq: i64,
    /// The delivery.
    pub delivery_seq: i64,
    /// The endpoint.
    pub webhook_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// The event posted.
    pub event_seq: i64,
    /// When the attempt started.
    pub at: i64,
    /// The endpoint's HTTP status, if it answered.
    pub status_code: Option<i64>,
    /// Why it failed (connection refused, timeout, …), without response bodies.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
    /// The delivery's state after this attempt.
    pub state: WebhookDeliveryState,
}

/// The result of posting one claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOutcome {
    /// The attempt (its `delivery_seq` names the delivery and its `state` the new state).
    pub attempt: WebhookAttemptRecord,
    /// When to try again (state `pending` only).
    pub next_attempt_at: Option<i64>,
    /// Whether to record the attempt (not for `dropped`: nothing was sent).
    pub record: bool,
    /// Disable the endpoint if it has been failing since before this time.
    pub disable_failing_before: i64,
}
