//! The store's webhooks area: webhook endpoints, their deliveries and attempts.

use crate::StoreResult;
use crate::model::*;
use crate::row::Columns;
use crate::run::FromRow;

/// The columns a [`WebhookRecord`] is read from.
pub(crate) const WEBHOOK_COLS: &str = "id, tenant_id, url, events, streams, secret_enc, previous_secret_enc, \
    previous_until, created_at, disabled_at, failing_since";

impl FromRow for WebhookRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
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
}

/// The columns a [`WebhookAttemptRecord`] is read from.
const ATTEMPT_COLS: &str = "seq, delivery_seq, webhook_id, tenant_id, event_seq, at, status_code, \
    error, duration_ms, state";

/// The columns a [`WebhookDelivery`] is read from (what a claim returns).
const DELIVERY_COLS: &str = "seq, webhook_id, tenant_id, event_seq, message_id, attempts";

/// A row of `webhook_attempts`; a state that does not parse makes it corrupt.
impl FromRow for WebhookAttemptRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(WebhookAttemptRecord {
            seq: r.get("seq")?,
            delivery_seq: r.get("delivery_seq")?,
            webhook_id: r.get("webhook_id")?,
            tenant_id: r.get("tenant_id")?,
            event_seq: r.get("event_seq")?,
            at: r.get("at")?,
            status_code: r.get("status_code")?,
            error: r.get("error")?,
            duration_ms: r.get("duration_ms")?,
            state: WebhookDeliveryState::parse(&r.get::<String>("state")?)
                .map_err(|_| R::corrupt("webhook delivery state"))?,
        })
    }
}

/// A claimed delivery.
impl FromRow for WebhookDelivery {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(WebhookDelivery {
            seq: r.get("seq")?,
            webhook_id: r.get("webhook_id")?,
            tenant_id: r.get("tenant_id")?,
            event_seq: r.get("event_seq")?,
            message_id: r.get("message_id")?,
            attempts: r.get("attempts")?,
        })
    }
}

/// The claim of due deliveries (see [`WebhookStore::claim_webhook_deliveries`]) with
/// `lock` after the inner `LIMIT` (PostgreSQL's `FOR UPDATE SKIP LOCKED`; SQLite's
/// single writer needs none). `$1` node, `$2` lease end, `$3` now, `$4` limit.
fn claim_sql(lock: &str) -> String {
    format!(
        "UPDATE webhook_deliveries SET lease_node = $1, lease_until = $2 WHERE seq IN (\
           SELECT d.seq FROM webhook_deliveries d \
           WHERE d.next_attempt_at <= $3 AND (d.lease_until IS NULL OR d.lease_until < $3) \
             AND d.webhook_id IN (SELECT id FROM webhooks WHERE disabled_at IS NULL) \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p \
               WHERE p.webhook_id = d.webhook_id AND p.message_id = d.message_id \
                 AND p.next_attempt_at IS NOT NULL AND p.event_seq < d.event_seq) \
           ORDER BY d.next_attempt_at LIMIT $4{lock}) \
         RETURNING {DELIVERY_COLS}"
    )
}

/// The replay of an endpoint's events (see [`WebhookStore::replay_webhook`]), with
/// `find` the dialect's substring search (`strpos` or `instr`, both `(text, part)`).
/// `$1` tenant, `$2` endpoint, `$3`..`$4` the time range, `$5` now.
fn replay_sql(find: &str) -> String {
    format!(
        "INSERT INTO webhook_deliveries (webhook_id, tenant_id, event_seq, message_id, rcpt_hash, \
           state, next_attempt_at, created_at) \
         SELECT w.id, e.tenant_id, e.seq, e.message_id, e.rcpt_hash, 'pending', $5, $5 \
         FROM webhooks w JOIN events e ON e.tenant_id = w.tenant_id \
         WHERE w.tenant_id = $1 AND w.id = $2 AND e.at >= $3 AND e.at < $4 \
           AND (w.events = '' OR {find}(w.events, ',' || e.type || ',') > 0) \
           AND (w.streams = '' OR {find}(w.streams, \
                ',' || (SELECT m.stream FROM messages m WHERE m.id = e.message_id) || ',') > 0) \
         ORDER BY e.seq"
    )
}

sql! {
    /// A new endpoint: `$1`..`$10` as for [`UPDATE_WEBHOOK`] (see `endpoint_args`),
    /// `$11` its creation time.
    INSERT_WEBHOOK = "INSERT INTO webhooks (tenant_id, id, url, events, streams, secret_enc, \
         previous_secret_enc, previous_until, disabled_at, failing_since, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    /// Endpoints, oldest first: every one (`$1` NULL) or tenant `$1`'s.
    LIST_WEBHOOKS = "SELECT {WEBHOOK_COLS} FROM webhooks WHERE CAST($1 AS TEXT) IS NULL \
         OR tenant_id = $1 ORDER BY created_at, id";
    /// Tenant `$1`'s endpoint `$2` takes URL, filters, secrets and state `$3`..`$10`.
    UPDATE_WEBHOOK = "UPDATE webhooks SET url = $3, events = $4, streams = $5, secret_enc = $6, \
         previous_secret_enc = $7, previous_until = $8, disabled_at = $9, failing_since = $10 \
         WHERE tenant_id = $1 AND id = $2";
    /// Tenant `$1`'s endpoint `$2` goes (after its deliveries and attempts).
    DELETE_WEBHOOK = "DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2";
    /// The claim, with PostgreSQL's row locks.
    CLAIM_DELIVERIES_LOCKED = "{}", claim_sql(" FOR UPDATE SKIP LOCKED");
    /// The claim, for SQLite's single writer.
    CLAIM_DELIVERIES = "{}", claim_sql("");
    /// An attempt, logged.
    INSERT_ATTEMPT = "INSERT INTO webhook_attempts (delivery_seq, webhook_id, tenant_id, event_seq, \
         at, status_code, error, duration_ms, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    /// Delivery `$1` takes state `$2`, `$3` more attempts and next attempt `$4`; its
    /// lease ends.
    FINISH_DELIVERY = "UPDATE webhook_deliveries SET state = $2, attempts = attempts + $3, \
         next_attempt_at = $4, lease_node = NULL, lease_until = NULL WHERE seq = $1";
    /// Endpoint `$1` delivered: its failure run ends.
    CLEAR_FAILING = "UPDATE webhooks SET failing_since = NULL WHERE id = $1";
    /// Tenant `$1`'s endpoint `$2`'s attempts before `$3` (NULL: all), newest first,
    /// at most `$4`.
    LIST_ATTEMPTS = "SELECT {ATTEMPT_COLS} FROM webhook_attempts WHERE tenant_id = $1 \
         AND webhook_id = $2 AND (CAST($3 AS BIGINT) IS NULL OR seq < $3) \
         ORDER BY seq DESC LIMIT $4";
}

/// An endpoint's tenant, id, URL, filters, secrets and state: `$1`..`$10` of
/// [`UPDATE_WEBHOOK`] and [`INSERT_WEBHOOK`].
fn endpoint_args(w: WebhookRecord) -> Vec<crate::run::Arg> {
    args![
        w.tenant_id,
        w.id,
        w.url,
        encode_list(&w.events),
        encode_list(&w.streams),
        w.secret_enc,
        w.previous_secret_enc,
        w.previous_until,
        w.disabled_at,
        w.failing_since,
    ]
}

/// The replay, with each dialect's substring search.
static REPLAY_WEBHOOK: crate::sql::Sql =
    crate::sql::Sql::per_dialect(|| replay_sql("strpos"), || replay_sql("instr"));

store_area! {
    /// Webhook endpoints, their deliveries and attempts.
    WebhookStore {
        /// Removes an endpoint with its deliveries and attempts; `false` if there is none.
        fn delete_webhook(&self, tenant_id: &str, id: &str) -> StoreResult<bool>;
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
    }
    shared {
        /// Registers a webhook endpoint.
        fn insert_webhook(&self, w: WebhookRecord) -> StoreResult<()> {
            let created_at = w.created_at;
            let mut args = endpoint_args(w);
            args.push(created_at.into());
            self.write("insert_webhook", Some("webhook"), &INSERT_WEBHOOK, args)
                .await
                .map(drop)
        }
        /// A tenant's endpoints (`Some`), or every endpoint (`None`), oldest first.
        fn list_webhooks(&self, tenant_id: Option<&str>) -> StoreResult<Vec<WebhookRecord>> {
            self.rows("list_webhooks", &LIST_WEBHOOKS, args![tenant_id]).await
        }
        /// Replaces an endpoint's URL, filters, secrets and state (matched by tenant and
        /// id); `false` if the tenant has no such endpoint.
        fn update_webhook(&self, w: WebhookRecord) -> StoreResult<bool> {
            let args = endpoint_args(w);
            Ok(self.write("update_webhook", None, &UPDATE_WEBHOOK, args).await? > 0)
        }
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
        ) -> StoreResult<u64> {
            let args = args![tenant_id, id, from, to, now];
            self.write("replay_webhook", None, &REPLAY_WEBHOOK, args).await
        }
        /// An endpoint's attempts, newest first, before `before_seq`, at most `limit`.
        fn list_webhook_attempts(
            &self,
            tenant_id: &str,
            webhook_id: &str,
            before_seq: Option<i64>,
            limit: usize,
        ) -> StoreResult<Vec<WebhookAttemptRecord>> {
            let args = args![tenant_id, webhook_id, before_seq, limit.max(1)];
            self.rows("list_webhook_attempts", &LIST_ATTEMPTS, args).await
        }
    }
}
