//! The store's queue area: messages, their recipients and events: acceptance, the delivery queue and its outcomes.

use crate::StoreResult;
use crate::model::*;
use crate::row::Columns;

/// The columns [`event_row`] reads.
pub(crate) const EVENT_COLS: &str =
    "seq, tenant_id, message_id, recipient_id, rcpt_hash, type, at, detail_enc, stream";

/// An event row (both backends).
pub(crate) fn event_row<R: Columns>(r: &R) -> Result<EventRecord, R::Error> {
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

/// The columns [`idempotency_row`] reads (also the insert's, in order).
pub(crate) const IDEMPOTENCY_COLS: &str = "tenant_id, key_hash, created_at, response_enc";

/// A row of `idempotency` (both backends).
pub(crate) fn idempotency_row<R: Columns>(r: &R) -> Result<IdempotencyRecord, R::Error> {
    Ok(IdempotencyRecord {
        tenant_id: r.get("tenant_id")?,
        key_hash: r.get("key_hash")?,
        created_at: r.get("created_at")?,
        response_enc: r.get("response_enc")?,
    })
}

/// The columns [`message_head_row`] reads.
pub(crate) const MESSAGE_HEAD_COLS: &str = "id, tenant_id, stream, created_at, meta_enc";

/// A message without its recipients and events (both backends; the caller adds
/// them).
pub(crate) fn message_head_row<R: Columns>(r: &R) -> Result<MessageRecord, R::Error> {
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

/// The columns [`recipient_row`] reads.
pub(crate) const RECIPIENT_COLS: &str =
    "id, rcpt_hash, address_enc, domain, status, attempts, next_attempt_at, updated_at";

/// A recipient of a [`MessageRecord`] (both backends); a status that does not parse
/// makes it corrupt.
pub(crate) fn recipient_row<R: Columns>(r: &R) -> Result<RecipientRecord, R::Error> {
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

/// A leased recipient, as a claim returns it (both backends); a message without an
/// expiry time gives 0.
pub(crate) fn due_row<R: Columns>(r: &R) -> Result<DueRecipient, R::Error> {
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

/// The columns [`content_row`] reads.
pub(crate) const CONTENT_COLS: &str = "tenant_id, stream, from_domain, content_enc, mail_from_enc";

/// What delivery needs of a message (both backends).
pub(crate) fn content_row<R: Columns>(r: &R) -> Result<MessageContent, R::Error> {
    Ok(MessageContent {
        tenant_id: r.get("tenant_id")?,
        stream: r.get("stream")?,
        from_domain: r.get("from_domain")?,
        content_enc: r.get("content_enc")?,
        mail_from_enc: r.get("mail_from_enc")?,
    })
}

/// A recipient found by id, with its message's tenant and stream (both backends).
pub(crate) fn recipient_ref_row<R: Columns>(r: &R) -> Result<RecipientRef, R::Error> {
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

/// A stream's share of the delivery queue (both backends).
pub(crate) fn stream_backlog_row<R: Columns>(r: &R) -> Result<StreamBacklog, R::Error> {
    Ok(StreamBacklog {
        stream: r.get("stream")?,
        recipients: r.get::<i64>("recipients")? as u64,
        oldest_created_at: r.get("oldest")?,
    })
}

/// The pending webhook deliveries, as counted for the backlog (both backends).
pub(crate) fn pending_row<R: Columns>(r: &R) -> Result<u64, R::Error> {
    Ok(r.get::<i64>("pending")? as u64)
}

/// A group of waiting recipients (both backends); a status that does not parse makes
/// it corrupt.
pub(crate) fn depth_row<R: Columns>(r: &R) -> Result<QueueDepth, R::Error> {
    Ok(QueueDepth {
        tenant_id: r.get("tenant_id")?,
        stream: r.get("stream")?,
        domain: r.get("domain")?,
        status: r.parse("status", "recipient status")?,
        recipients: r.get::<i64>("recipients")? as u64,
        oldest_created_at: r.get("oldest")?,
    })
}

store_area! {
    /// Messages, their recipients and events: acceptance, the delivery queue and its outcomes.
    QueueStore {
        /// Atomically stores messages, their recipients with one event each (`accepted`
        /// for a queued recipient, `suppressed` for a suppressed one; see
        /// [`NewRecipient::status`]), and the idempotency record if any
        /// (`Conflict("idempotency key")` if it exists).
        fn accept(&self, batch: AcceptBatch) -> StoreResult<()>;
        /// A stored idempotency result younger than `since`.
        fn get_idempotency(
            &self,
            tenant_id: &str,
            key_hash: &[u8],
            since: i64,
        ) -> StoreResult<Option<IdempotencyRecord>>;
        /// A message of a tenant with its recipients and events.
        fn get_message(&self, tenant_id: &str, id: &str) -> StoreResult<Option<MessageRecord>>;
        /// Messages matching a filter, newest first, each with its recipients and events.
        fn list_messages(&self, filter: MessageFilter) -> StoreResult<Vec<MessageRecord>>;
        /// Events matching a filter, in sequence order.
        fn list_events(&self, filter: EventFilter) -> StoreResult<Vec<EventRecord>>;
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
        /// What delivery needs of a message.
        fn load_content(&self, message_id: &str) -> StoreResult<Option<MessageContent>>;
        /// Applies delivery outcomes (status, next attempt, lease release) and appends
        /// their events, atomically. A recipient whose mail was stopped meanwhile
        /// ([`PrivacyStore::stop_subject_mail`], erasure) keeps its status unless the outcome is
        /// `delivered` (which did happen); the event is recorded either way.
        fn record_deliveries(&self, updates: Vec<DeliveryUpdate>) -> StoreResult<()>;
        /// A recipient by id alone (reports name it through VERP); `None` if unknown.
        fn find_recipient(&self, recipient_id: &str) -> StoreResult<Option<RecipientRef>>;
        /// Appends each report's event and, if the recipient is `delivered` and the
        /// update says so, changes its status; all in one transaction (reports, opens and
        /// clicks are written in batches). Leases and attempts are untouched.
        fn record_reports(&self, updates: Vec<ReportUpdate>) -> StoreResult<()>;
        /// What is waiting to be delivered or posted (for metrics and queue views).
        fn backlog(&self) -> StoreResult<Backlog>;
        /// Applies a queue operation to the waiting recipients `sel` selects; returns how
        /// many changed.
        fn queue_action(
            &self,
            sel: QueueSelector,
            action: QueueAction,
            at: i64,
        ) -> StoreResult<u64>;
        /// Waiting recipients (queued, deferred, suspended) by tenant, stream, domain and
        /// status.
        fn queue_depth(&self, tenant_id: Option<&str>) -> StoreResult<Vec<QueueDepth>>;
    }
}
