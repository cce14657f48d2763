//! The store's webhooks area: webhook endpoints, their deliveries and attempts.

use crate::StoreResult;
use crate::model::*;
use crate::row::Columns;

/// The columns [`webhook_row`] reads.
pub(crate) const WEBHOOK_COLS: &str = "id, tenant_id, url, events, streams, secret_enc, previous_secret_enc, \
    previous_until, created_at, disabled_at, failing_since";

/// A row of `webhook` (both backends).
pub(crate) fn webhook_row<R: Columns>(r: &R) -> Result<WebhookRecord, R::Error> {
    Ok(WebhookRecord {
        id: r.get("id")?,
        tenant_id: r.get("tenant_id")?,
        url: r.get("url")?,
        events: decode_list(&r.get::<String>("events")?),
        streams: decode_list(&r.get::<String>("streams")?),
        secret_enc: r.get("secret_enc")?,
        previous_secret_enc: r.get("previous_secret_enc")?,
        previous_until: r.get("previous_until")?,
        created_at: r.get("created_at")?,
        disabled_at: r.get("disabled_at")?,
        failing_since: r.get("failing_since")?,
    })
}

store_area! {
    /// Webhook endpoints, their deliveries and attempts.
    WebhookStore {
        /// Registers a webhook endpoint.
        fn insert_webhook(&self, w: WebhookRecord) -> StoreResult<()>;
        /// A tenant's endpoints (`Some`), or every endpoint (`None`), oldest first.
        fn list_webhooks(&self, tenant_id: Option<&str>) -> StoreResult<Vec<WebhookRecord>>;
        /// Replaces an endpoint's URL, filters, secrets and state (matched by tenant and
        /// id); `false` if the tenant has no such endpoint.
        fn update_webhook(&self, w: WebhookRecord) -> StoreResult<bool>;
        /// Removes an endpoint with its deliveries and attempts; `false` if there is none.
        fn delete_webhook(&self, tenant_id: &str, id: &str) -> StoreResult<bool>;
        /// Queues again, due at `now`, every event of the endpoint's tenant in
        /// `[from, to)` (Unix ms) that matches its filters; returns how many deliveries
        /// were queued.
        fn replay_webhook(
            &self,
            tenant_id: &str,
            id: &str,
            from: i64,
            to: i64,
            now: i64,
        ) -> StoreResult<u64>;
        /// Leases up to `limit` due deliveries of enabled endpoints for `node` until
        /// `lease_until`: for each (endpoint, message), only the one with the oldest
        /// event still pending, so one message's events are posted in order.
        fn claim_webhook_deliveries(
            &self,
            node: &str,
            now: i64,
            lease_until: i64,
            limit: usize,
        ) -> StoreResult<Vec<WebhookDelivery>>;
        /// Applies an attempt's outcome (delivery state, next attempt, lease release, the
        /// endpoint's failure run); `true` if this disabled the endpoint.
        fn finish_webhook_delivery(&self, outcome: WebhookOutcome) -> StoreResult<bool>;
        /// An endpoint's attempts, newest first, before `before_seq`, at most `limit`.
        fn list_webhook_attempts(
            &self,
            tenant_id: &str,
            webhook_id: &str,
            before_seq: Option<i64>,
            limit: usize,
        ) -> StoreResult<Vec<WebhookAttemptRecord>>;
    }
}
