//! The queue area's rows: messages, recipients, events and the delivery queue.

use super::*;

/// A recipient of a new message.
#[derive(Debug, Clone)]
pub struct NewRecipient {
    /// `rcpt_…`.
    pub id: String,
    /// Blind index of the normalised address.
    pub rcpt_hash: Vec<u8>,
    /// The address, sealed with context `rcpt:<id>`.
    pub address_enc: Vec<u8>,
    /// Recipient domain (routing and shaping key; not the address).
    pub domain: String,
    /// `Queued`, or a status under which it is held and never sent: `Suppressed`,
    /// `NoConsent`, `Restricted`, `Rejected`. A queued recipient is due at once (and leased with
    /// the batch's lease, if any) and gets an `accepted` event; a held one is stored
    /// final, never due or leased, with the event of the same name instead. Any other
    /// status makes `accept` refuse the whole batch.
    pub status: RecipientStatus,
}

impl NewRecipient {
    /// `None` for a queued recipient; for a held one, the event it is recorded with;
    /// an error (nothing is stored) for a status `accept` does not take.
    pub(crate) fn held_event(&self) -> StoreResult<Option<EventType>> {
        match self.status {
            RecipientStatus::Queued => Ok(None),
            RecipientStatus::Suppressed => Ok(Some(EventType::Suppressed)),
            RecipientStatus::NoConsent => Ok(Some(EventType::NoConsent)),
            RecipientStatus::Restricted => Ok(Some(EventType::Restricted)),
            RecipientStatus::Rejected => Ok(Some(EventType::Rejected)),
            _ => Err(StoreError::Unavailable(
                "accept: a new recipient must be queued or held".into(),
            )),
        }
    }
}

/// A message being accepted.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// `msg_…`.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Stream name.
    pub stream: String,
    /// Domain of the From address (selects the DKIM keys).
    pub from_domain: String,
    /// Acceptance time.
    pub created_at: i64,
    /// When retries stop (`created_at` + the stream's expiry).
    pub expires_at: i64,
    /// Size of the rendered message in bytes.
    pub size: i64,
    /// Sealed JSON summary (subject, from, tags, metadata), context `meta:<id>`.
    pub meta_enc: Vec<u8>,
    /// Sealed RFC 5322 message, context `msg:<id>`.
    pub content_enc: Vec<u8>,
    /// Envelope sender when given explicitly (raw sends), sealed with `from:<id>`.
    pub mail_from_enc: Option<Vec<u8>>,
    /// Recipients (at least one).
    pub recipients: Vec<NewRecipient>,
    /// Blind indexes of the message's tags (searchable without storing them plainly).
    pub tag_hashes: Vec<Vec<u8>>,
    /// When its recipients are first due, if later than its acceptance (a scheduled
    /// message: not leased, not queued in memory; the poller picks it up then).
    pub send_at: Option<i64>,
    /// Its stream's priority (0 first): the poller claims recipients of a priority
    /// ahead of bulk (below 5) before the rest.
    pub priority: i64,
    /// The broadcast the message is part of, if any.
    pub broadcast_id: Option<String>,
}

/// A stored Idempotency-Key result.
#[derive(Debug, Clone)]
pub struct IdempotencyRecord {
    /// Owning tenant.
    pub tenant_id: String,
    /// SHA-256 of the client's key.
    pub key_hash: Vec<u8>,
    /// When first used.
    pub created_at: i64,
    /// The sealed response (HTTP status and body), context `idem:<hex hash>`.
    pub response_enc: Vec<u8>,
}

/// Everything written atomically when messages are accepted.
#[derive(Debug, Clone, Default)]
pub struct AcceptBatch {
    /// The messages.
    pub messages: Vec<NewMessage>,
    /// The idempotency record, written in the same transaction.
    pub idempotency: Option<IdempotencyRecord>,
    /// A lease taken on all new recipients for this node (they go straight to its
    /// in-memory queue): `(node id, lease expiry)`.
    pub lease: Option<(String, i64)>,
    /// A broadcast's expansion moving past the batch's people: written with the
    /// messages, and the condition of their commit (`Conflict("broadcast")` and
    /// nothing written if the broadcast is no longer sending from its cursor).
    pub progress: Option<BroadcastProgress>,
}

/// A recipient due for a delivery attempt, as claimed by a node.
#[derive(Debug, Clone)]
pub struct DueRecipient {
    /// `rcpt_…`.
    pub id: String,
    /// The message.
    pub message_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Blind index of the address.
    pub rcpt_hash: Vec<u8>,
    /// Sealed address (`rcpt:<id>`).
    pub address_enc: Vec<u8>,
    /// Recipient domain.
    pub domain: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// When retries stop.
    pub expires_at: i64,
}

/// What delivery needs of a message.
#[derive(Debug, Clone)]
pub struct MessageContent {
    /// Owning tenant.
    pub tenant_id: String,
    /// Stream.
    pub stream: String,
    /// Domain of the From address.
    pub from_domain: String,
    /// Sealed RFC 5322 message (`msg:<id>`), `None` once purged.
    pub content_enc: Option<Vec<u8>>,
    /// Sealed explicit envelope sender (`from:<id>`).
    pub mail_from_enc: Option<Vec<u8>>,
}

/// The outcome of one delivery attempt for one recipient.
#[derive(Debug, Clone)]
pub struct DeliveryUpdate {
    /// `rcpt_…`.
    pub recipient_id: String,
    /// The message.
    pub message_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Blind index (copied to the event).
    pub rcpt_hash: Vec<u8>,
    /// New status.
    pub status: RecipientStatus,
    /// Next attempt time when deferred.
    pub next_attempt_at: Option<i64>,
    /// Event recorded with it.
    pub event: EventType,
    /// Time of the attempt.
    pub at: i64,
    /// Sealed JSON details (reply, MX, IP, TLS), context `event:<recipient id>`.
    pub detail_enc: Vec<u8>,
    /// Where the attempt went, for the deliverability statistics.
    pub dims: StatDims,
}

/// A stored event.
#[derive(Debug, Clone)]
pub struct EventRecord {
    /// Monotonic sequence number (the pagination cursor).
    pub seq: i64,
    /// Owning tenant.
    pub tenant_id: String,
    /// The message.
    pub message_id: String,
    /// The recipient.
    pub recipient_id: String,
    /// Blind index of the recipient.
    pub rcpt_hash: Vec<u8>,
    /// Kind.
    pub event_type: EventType,
    /// Time.
    pub at: i64,
    /// Sealed JSON details, context `event:<recipient id>`; empty for `accepted` and
    /// for `suppressed` at acceptance.
    pub detail_enc: Option<Vec<u8>>,
    /// The stream of a stream event (`stream_paused`, `stream_resumed`), whose
    /// message and recipient ids are empty; `None` for a recipient's event.
    pub stream: Option<String>,
}

/// A stored recipient.
#[derive(Debug, Clone)]
pub struct RecipientRecord {
    /// `rcpt_…`.
    pub id: String,
    /// Blind index.
    pub rcpt_hash: Vec<u8>,
    /// Sealed address (`rcpt:<id>`).
    pub address_enc: Vec<u8>,
    /// Domain.
    pub domain: String,
    /// Current status.
    pub status: RecipientStatus,
    /// Attempts so far.
    pub attempts: i64,
    /// Next attempt, if any.
    pub next_attempt_at: Option<i64>,
    /// Last change.
    pub updated_at: i64,
}

/// A recipient found by id alone, with its message's tenant and stream: what is
/// needed to apply a report (DSN, ARF, auto-reply) that names it through VERP.
#[derive(Debug, Clone)]
pub struct RecipientRef {
    /// `rcpt_…`.
    pub id: String,
    /// The message.
    pub message_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// The message's stream.
    pub stream: String,
    /// Blind index.
    pub rcpt_hash: Vec<u8>,
    /// Sealed address (`rcpt:<id>`).
    pub address_enc: Vec<u8>,
    /// Current status.
    pub status: RecipientStatus,
}

/// What a report that arrived after delivery records for one recipient.
#[derive(Debug, Clone)]
pub struct ReportUpdate {
    /// `rcpt_…`.
    pub recipient_id: String,
    /// The message.
    pub message_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Blind index (copied to the event).
    pub rcpt_hash: Vec<u8>,
    /// The event appended.
    pub event: EventType,
    /// The status the recipient takes if it is `delivered` now (a bounce after the
    /// receiving server had accepted the message); `None` leaves the status alone.
    pub status_if_delivered: Option<RecipientStatus>,
    /// When the report arrived.
    pub at: i64,
    /// Sealed JSON details, context `event:<recipient id>`.
    pub detail_enc: Vec<u8>,
    /// For the deliverability statistics (the stream, and a bounce's reason).
    pub dims: StatDims,
}

impl ReportUpdate {
    /// An event about recipient `r` that leaves its status alone.
    pub fn about(r: &RecipientRef, event: EventType, at: i64, detail_enc: Vec<u8>) -> Self {
        ReportUpdate {
            recipient_id: r.id.clone(),
            message_id: r.message_id.clone(),
            tenant_id: r.tenant_id.clone(),
            rcpt_hash: r.rcpt_hash.clone(),
            event,
            status_if_delivered: None,
            at,
            detail_enc,
            dims: StatDims {
                stream: r.stream.clone(),
                ..StatDims::default()
            },
        }
    }
}

/// A stored message with its recipients and events.
#[derive(Debug, Clone)]
pub struct MessageRecord {
    /// `msg_…`.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Stream.
    pub stream: String,
    /// Acceptance time.
    pub created_at: i64,
    /// Sealed summary (`meta:<id>`).
    pub meta_enc: Vec<u8>,
    /// Recipients.
    pub recipients: Vec<RecipientRecord>,
    /// Events of all recipients, oldest first.
    pub events: Vec<EventRecord>,
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Owning tenant (always required).
    pub tenant_id: String,
    /// Only this message.
    pub message_id: Option<String>,
    /// Only this recipient (blind index).
    pub rcpt_hash: Option<Vec<u8>>,
    /// Only this kind.
    pub event_type: Option<EventType>,
    /// Only events at or after this time.
    pub since: Option<i64>,
    /// Only events before this time.
    pub until: Option<i64>,
    /// Only events of messages of this stream.
    pub stream: Option<String>,
    /// Only events of messages with this tag (blind index).
    pub tag_hash: Option<Vec<u8>>,
    /// Only events with a larger sequence number (the cursor).
    pub after_seq: Option<i64>,
    /// At most this many.
    pub limit: usize,
}

/// Which messages to list (newest first).
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// Owning tenant (always required).
    pub tenant_id: String,
    /// Only this stream.
    pub stream: Option<String>,
    /// Only messages with this tag (blind index).
    pub tag_hash: Option<Vec<u8>>,
    /// Only messages to this recipient (blind index).
    pub rcpt_hash: Option<Vec<u8>>,
    /// Only messages accepted at or after this time.
    pub since: Option<i64>,
    /// Only messages accepted before this time.
    pub until: Option<i64>,
    /// Only messages with a smaller id (ids grow with time: the cursor).
    pub before_id: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// Which waiting recipients a queue operation touches; every given field must match.
#[derive(Debug, Clone, Default)]
pub struct QueueSelector {
    /// Only this tenant's.
    pub tenant_id: Option<String>,
    /// Only this stream's.
    pub stream: Option<String>,
    /// Only this recipient domain's.
    pub domain: Option<String>,
    /// Only this message's.
    pub message_id: Option<String>,
}

/// What a queue operation does to the waiting recipients it selects. Recipients
/// leased by a node (being delivered now) are left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueAction {
    /// Hold queued and deferred recipients (`suspended`, event `suspended`).
    Suspend,
    /// Queue suspended recipients again, due now (event `resumed`); those of a
    /// cancelled tenant or a paused stream stay held.
    Resume,
    /// Make deferred recipients due now (no event: only the schedule changes).
    Retry,
    /// Give up on queued, deferred and suspended recipients (`bounced`, event
    /// `bounced` without a reply).
    Bounce,
    /// Cancel recipients of a scheduled message whose time has not come
    /// (`cancelled`, event `cancelled`): queued, never tried, due later.
    Cancel,
}

/// Waiting recipients of one (tenant, stream, domain, status) group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    /// Owning tenant.
    pub tenant_id: String,
    /// Stream.
    pub stream: String,
    /// Recipient domain.
    pub domain: String,
    /// `queued`, `deferred` or `suspended`.
    pub status: RecipientStatus,
    /// How many.
    pub recipients: u64,
    /// Acceptance time of the oldest one's message.
    pub oldest_created_at: i64,
}
