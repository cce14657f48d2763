//! The store's queue area: messages, their recipients and events: acceptance, the delivery queue and its outcomes.

use crate::StoreResult;
use crate::model::*;
use crate::queue_sql::{
    BACKLOG, FIND_RECIPIENT, GET_IDEMPOTENCY, LOAD_CONTENT, QUEUE_DEPTH, WEBHOOK_BACKLOG,
    events_query,
};
use crate::row::Columns;
use crate::run::FromRow;

/// The columns an [`EventRecord`] is read from.
pub(crate) const EVENT_COLS: &str =
    "seq, tenant_id, message_id, recipient_id, rcpt_hash, type, at, detail_enc, stream";

impl FromRow for EventRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(EventRecord {
            seq: r.get("seq")?,
            tenant_id: r.get("tenant_id")?,
            message_id: r.get("message_id")?,
            recipient_id: r.get("recipient_id")?,
            rcpt_hash: r.get("rcpt_hash")?,
            event_type: r.parse("type", "event type")?,
            at: r.get("at")?,
            detail_enc: r.get("detail_enc")?,
            stream: r.get("stream")?,
        })
    }
}

/// The columns an [`IdempotencyRecord`] is read from (also the insert's, in order).
pub(crate) const IDEMPOTENCY_COLS: &str = "tenant_id, key_hash, created_at, response_enc";

impl FromRow for IdempotencyRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(IdempotencyRecord {
            tenant_id: r.get("tenant_id")?,
            key_hash: r.get("key_hash")?,
            created_at: r.get("created_at")?,
            response_enc: r.get("response_enc")?,
        })
    }
}

/// The columns a [`MessageRecord`] is read from (its head).
pub(crate) const MESSAGE_HEAD_COLS: &str = "id, tenant_id, stream, created_at, meta_enc";

/// A message without its recipients and events (the caller adds them).
impl FromRow for MessageRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(MessageRecord {
            id: r.get("id")?,
            tenant_id: r.get("tenant_id")?,
            stream: r.get("stream")?,
            created_at: r.get("created_at")?,
            meta_enc: r.get("meta_enc")?,
            recipients: Vec::new(),
            events: Vec::new(),
        })
    }
}

/// The columns a [`RecipientRecord`] is read from.
pub(crate) const RECIPIENT_COLS: &str =
    "id, rcpt_hash, address_enc, domain, status, attempts, next_attempt_at, updated_at";

/// A recipient of a [`MessageRecord`]; a status that does not parse makes it corrupt.
impl FromRow for RecipientRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(RecipientRecord {
            id: r.get("id")?,
            rcpt_hash: r.get("rcpt_hash")?,
            address_enc: r.get("address_enc")?,
            domain: r.get("domain")?,
            status: r.parse("status", "recipient status")?,
            attempts: r.get("attempts")?,
            next_attempt_at: r.get("next_attempt_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// A leased recipient, as a claim returns it; a message without an expiry time gives 0.
impl FromRow for DueRecipient {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(DueRecipient {
            id: r.get("id")?,
            message_id: r.get("message_id")?,
            tenant_id: r.get("tenant_id")?,
            rcpt_hash: r.get("rcpt_hash")?,
            address_enc: r.get("address_enc")?,
            domain: r.get("domain")?,
            attempts: r.get("attempts")?,
            expires_at: r.get::<Option<i64>>("expires_at")?.unwrap_or(0),
        })
    }
}

/// The columns a [`MessageContent`] is read from.
pub(crate) const CONTENT_COLS: &str = "tenant_id, stream, from_domain, content_enc, mail_from_enc";

impl FromRow for MessageContent {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(MessageContent {
            tenant_id: r.get("tenant_id")?,
            stream: r.get("stream")?,
            from_domain: r.get("from_domain")?,
            content_enc: r.get("content_enc")?,
            mail_from_enc: r.get("mail_from_enc")?,
        })
    }
}

/// A recipient found by id, with its message's tenant and stream.
impl FromRow for RecipientRef {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(RecipientRef {
            id: r.get("id")?,
            message_id: r.get("message_id")?,
            tenant_id: r.get("tenant_id")?,
            stream: r.get("stream")?,
            rcpt_hash: r.get("rcpt_hash")?,
            address_enc: r.get("address_enc")?,
            status: r.parse("status", "recipient status")?,
        })
    }
}

/// A stream's share of the delivery queue.
impl FromRow for StreamBacklog {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(StreamBacklog {
            stream: r.get("stream")?,
            recipients: r.get::<i64>("recipients")? as u64,
            oldest_created_at: r.get("oldest")?,
        })
    }
}

/// The pending webhook deliveries, as counted for the backlog ([`WEBHOOK_BACKLOG`]).
struct Pending(u64);

impl FromRow for Pending {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(Pending(r.get::<i64>("pending")? as u64))
    }
}

/// A group of waiting recipients; a status that does not parse makes it corrupt.
impl FromRow for QueueDepth {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(QueueDepth {
            tenant_id: r.get("tenant_id")?,
            stream: r.get("stream")?,
            domain: r.get("domain")?,
            status: r.parse("status", "recipient status")?,
            recipients: r.get::<i64>("recipients")? as u64,
            oldest_created_at: r.get("oldest")?,
        })
    }
}

store_area! {
    /// Messages, their recipients and events: acceptance, the delivery queue and its outcomes.
    QueueStore {
        /// Atomically stores messages, their recipients with one event each (`accepted`
        /// for a queued recipient, `suppressed` for a suppressed one; see
        /// [`NewRecipient::status`]), and the idempotency record if any
        /// (`Conflict("idempotency key")` if it exists).
        fn accept(&self, batch: AcceptBatch) -> StoreResult<()>;
        /// A message of a tenant with its recipients and events.
        fn get_message(&self, tenant_id: &str, id: &str) -> StoreResult<Option<MessageRecord>>;
        /// Messages matching a filter, newest first, each with its recipients and events.
        fn list_messages(&self, filter: MessageFilter) -> StoreResult<Vec<MessageRecord>>;
        /// Leases up to `limit` recipients that are due (`next_attempt_at <= now`) and not
        /// leased by anyone, for `node` until `lease_until`.
        fn claim_due(
            &self,
            node: &str,
            now: i64,
            lease_until: i64,
            limit: usize,
        ) -> StoreResult<Vec<DueRecipient>>;
        /// Extends every lease held by `node`.
        fn renew_leases(&self, node: &str, lease_until: i64) -> StoreResult<()>;
        /// Drops every lease held by `node` (at start-up, after a crash).
        fn release_leases(&self, node: &str) -> StoreResult<u64>;
        /// Drops `node`'s leases on these recipients (jobs it will not deliver now; the
        /// poller claims them again when due).
        fn release_recipients(&self, node: &str, ids: Vec<String>) -> StoreResult<u64>;
        /// Applies delivery outcomes (status, next attempt, lease release) and appends
        /// their events, atomically. A recipient whose mail was stopped meanwhile
        /// ([`crate::PrivacyStore::stop_subject_mail`], erasure) keeps its status unless the outcome is
        /// `delivered` (which did happen); the event is recorded either way.
        fn record_deliveries(&self, updates: Vec<DeliveryUpdate>) -> StoreResult<()>;
        /// Appends each report's event and, if the recipient is `delivered` and the
        /// update says so, changes its status; all in one transaction (reports, opens and
        /// clicks are written in batches). Leases and attempts are untouched.
        fn record_reports(&self, updates: Vec<ReportUpdate>) -> StoreResult<()>;
        /// Applies a queue operation to the waiting recipients `sel` selects; returns how
        /// many changed.
        fn queue_action(
            &self,
            sel: QueueSelector,
            action: QueueAction,
            at: i64,
        ) -> StoreResult<u64>;
    }
    shared {
        /// A stored idempotency result younger than `since`.
        fn get_idempotency(
            &self,
            tenant_id: &str,
            key_hash: &[u8],
            since: i64,
        ) -> StoreResult<Option<IdempotencyRecord>> {
            let args = args![tenant_id, key_hash, since];
            self.row("get_idempotency", &GET_IDEMPOTENCY, args).await
        }
        /// Events matching a filter, in sequence order.
        fn list_events(&self, filter: EventFilter) -> StoreResult<Vec<EventRecord>> {
            let q = events_query(&filter);
            self.rows_of("list_events", q.text, q.args).await
        }
        /// What delivery needs of a message.
        fn load_content(&self, message_id: &str) -> StoreResult<Option<MessageContent>> {
            self.row("load_content", &LOAD_CONTENT, args![message_id]).await
        }
        /// A recipient by id alone (reports name it through VERP); `None` if unknown.
        fn find_recipient(&self, recipient_id: &str) -> StoreResult<Option<RecipientRef>> {
            self.row("find_recipient", &FIND_RECIPIENT, args![recipient_id]).await
        }
        /// What is waiting to be delivered or posted (for metrics and queue views). Two
        /// reads, as before each its own snapshot: the figures are a gauge.
        fn backlog(&self) -> StoreResult<Backlog> {
            let streams = self.rows("backlog", &BACKLOG, args![]).await?;
            let pending: Option<Pending> = self.row("backlog", &WEBHOOK_BACKLOG, args![]).await?;
            Ok(Backlog {
                streams,
                webhook_deliveries: pending.map_or(0, |Pending(n)| n),
            })
        }
        /// Waiting recipients (queued, deferred, suspended) by tenant, stream, domain and
        /// status.
        fn queue_depth(&self, tenant_id: Option<&str>) -> StoreResult<Vec<QueueDepth>> {
            self.rows("queue_depth", &QUEUE_DEPTH, args![tenant_id]).await
        }
    }
}
