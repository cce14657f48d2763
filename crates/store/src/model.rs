//! Rows as the store sees them. Personal data arrives here already sealed by the
//! vault (`*_enc` fields) or as a blind index (`rcpt_hash`); the store never sees
//! plaintext addresses or content. Times are Unix milliseconds.

use postwerk_core::model::{
    ConsentStatus, DsarKind, DsarStatus, EventType, RecipientStatus, Scope, SuppressionReason,
};

use crate::{StoreError, StoreResult};

/// A tenant (organisation) and its wrapped data key.
#[derive(Debug, Clone)]
pub struct TenantRecord {
    /// `ten_…`.
    pub id: String,
    /// Unique name, e.g. `default`.
    pub name: String,
    /// The tenant data key, wrapped by the master key.
    pub wrapped_key: Vec<u8>,
    /// Creation time.
    pub created_at: i64,
    /// For a sub-account: the parent tenant, whose admins may act on it.
    pub parent_id: Option<String>,
    /// Set while the tenant is cancelled: its keys and users are refused, its mail is
    /// held, and its data is deleted once `[retention] cancelled_tenants` has passed.
    pub cancelled_at: Option<i64>,
}

/// An API key. The secret is stored only as a SHA-256 hash.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    /// `key_…` — the public part of the token, used for lookup.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Human label.
    pub name: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// Creation time.
    pub created_at: i64,
    /// Optional expiry.
    pub expires_at: Option<i64>,
    /// Set when revoked.
    pub revoked_at: Option<i64>,
    /// Last successful use (updated at most once a minute).
    pub last_used_at: Option<i64>,
    /// Client addresses (CIDRs) the key may be used from; empty: any.
    pub allowed_ips: Vec<String>,
    /// Requests per rate-limit window for this key (`None`: `[rate_limits] per_key`).
    pub rate_limit: Option<u32>,
}

/// One DKIM key of a sending domain.
#[derive(Debug, Clone)]
pub struct DkimKeyRecord {
    /// `dkim_…`.
    pub id: String,
    /// DNS selector (`<selector>._domainkey.<domain>`).
    pub selector: String,
    /// `rsa-sha256` or `ed25519-sha256`.
    pub algorithm: String,
    /// PKCS#8 private key, sealed with context `dkim:<id>`.
    pub private_key_enc: Vec<u8>,
    /// Base64 public key as published in DNS (`p=`).
    pub public_key: String,
    /// Creation time.
    pub created_at: i64,
}

/// A sending domain registered to a tenant, with its DKIM keys.
#[derive(Debug, Clone)]
pub struct DomainRecord {
    /// Owning tenant.
    pub tenant_id: String,
    /// Lower-case domain name.
    pub name: String,
    /// Creation time.
    pub created_at: i64,
    /// DKIM keys, oldest first.
    pub keys: Vec<DkimKeyRecord>,
}

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

/// What deliverability statistics are broken down by (empty: unknown or none). No
/// personal data: streams, pools, sources, sites and bounce reasons only.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatDims {
    /// Stream.
    pub stream: String,
    /// Egress pool.
    pub pool: String,
    /// Egress source.
    pub source: String,
    /// Destination site.
    pub site: String,
    /// Bounce reason of a failure.
    pub reason: String,
}

/// Which statistics to read: a tenant's, over `[from, to)`, optionally narrowed.
#[derive(Debug, Clone, Default)]
pub struct StatsFilter {
    /// Owning tenant.
    pub tenant_id: String,
    /// Start (Unix ms, rounded down to the hour by the store's buckets).
    pub from: i64,
    /// End (exclusive).
    pub to: i64,
    /// Only this stream.
    pub stream: Option<String>,
    /// Only this egress pool.
    pub pool: Option<String>,
    /// Only this egress source.
    pub source: Option<String>,
    /// Only this destination site.
    pub site: Option<String>,
}

/// Events of one kind (and bounce reason) in one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatRow {
    /// Start of the hour (Unix ms).
    pub bucket: i64,
    /// Event type.
    pub event: EventType,
    /// Bounce reason (empty for none).
    pub reason: String,
    /// How many.
    pub count: u64,
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

/// An entry of a tenant's suppression list: mail to this address (in this stream, or
/// in every stream) is not sent. Unique per (tenant, address, stream scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressionRecord {
    /// Assigned by the store (monotonic; the pagination cursor); ignored on insert.
    pub seq: i64,
    /// Owning tenant.
    pub tenant_id: String,
    /// Blind index of the normalised address.
    pub rcpt_hash: Vec<u8>,
    /// The stream it applies to; `None` = every stream. (An empty name is the same
    /// as `None`.)
    pub stream: Option<String>,
    /// Why the address is suppressed.
    pub reason: SuppressionReason,
    /// When it was added.
    pub created_at: i64,
    /// The address, sealed by the caller (so an operator can list it); `None` after
    /// erasure.
    pub address_enc: Option<Vec<u8>>,
    /// What caused it: a recipient id, `api`, `cli`.
    pub source: Option<String>,
}

/// The stored form of a suppression's stream scope: `''` for every stream (a NOT
/// NULL column keeps the unique key simple).
pub(crate) fn stream_scope(stream: Option<&str>) -> &str {
    stream.unwrap_or("")
}

/// The scope read back from its stored form.
pub(crate) fn scope_stream(stored: String) -> Option<String> {
    (!stored.is_empty()).then_some(stored)
}

/// `hashes` without repeats (a batch often names an address more than once).
pub(crate) fn distinct_hashes(mut hashes: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

/// A contact: a person the tenant mails, with attributes and lists, sealed under the
/// person's [`SubjectKey`].
#[derive(Debug, Clone)]
pub struct ContactRecord {
    /// Owning tenant.
    pub tenant_id: String,
    /// Blind index of the normalised address (the key).
    pub rcpt_hash: Vec<u8>,
    /// Sealed JSON (`{"email", "attributes", "lists"}`) under the subject key, context
    /// `contact:<hex hash>`.
    pub data_enc: Vec<u8>,
    /// When processing was restricted (Art. 18), if it is.
    pub restricted_at: Option<i64>,
    /// First seen.
    pub created_at: i64,
    /// Last change (rectification).
    pub updated_at: i64,
}

/// One consent record. Records are append-only: a withdrawal is a new record.
#[derive(Debug, Clone)]
pub struct ConsentRecord {
    /// Assigned by the store; ignored on insert.
    pub seq: i64,
    /// Owning tenant.
    pub tenant_id: String,
    /// Blind index of the person's address.
    pub rcpt_hash: Vec<u8>,
    /// The purpose (`newsletter`, `marketing`, …).
    pub purpose: String,
    /// What this record says.
    pub status: ConsentStatus,
    /// When it was given, requested or withdrawn.
    pub at: i64,
    /// Sealed JSON evidence (lawful basis, source, wording and version, IP, user
    /// agent) under the subject key, context `consent:<hex hash>`.
    pub record_enc: Vec<u8>,
}

/// Which of a batch's people may not be mailed: suppressed, restricted, or (when a
/// purpose was asked about) without active consent for it. Read in one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentScreen {
    /// Every suppression entry (of any stream scope) of the hashes, in `seq` order.
    pub suppressions: Vec<SuppressionRecord>,
    /// Hashes of contacts whose processing is restricted.
    pub restricted: Vec<Vec<u8>>,
    /// Hashes whose newest consent record for the purpose is `active`.
    pub consented: Vec<Vec<u8>>,
}

/// The hashes whose newest record (by `seq`) among `(seq, hash, status)` is
/// `active`.
pub(crate) fn latest_active(mut records: Vec<(i64, Vec<u8>, String)>) -> Vec<Vec<u8>> {
    records.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    let mut active = Vec::new();
    for (i, (_, hash, status)) in records.iter().enumerate() {
        let newest = records.get(i + 1).is_none_or(|next| next.1 != *hash);
        if newest && status == ConsentStatus::Active.as_str() {
            active.push(hash.clone());
        }
    }
    active
}

/// A data subject's own data key (see [`crate::vault::TenantKeys::new_record_key`]):
/// personal data about one person in one tenant is sealed under it. The live store is
/// its only home: backups leave it out, so erasure (which deletes it) also shreds
/// copies of the person's data in backups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectKey {
    /// Blind index of the person's normalised address.
    pub rcpt_hash: Vec<u8>,
    /// The key, wrapped by the tenant key.
    pub key_wrapped: Vec<u8>,
    /// When it was made (Unix ms).
    pub created_at: i64,
}

/// What erasing a person removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erasure {
    /// The person's data key destroyed (0 or 1): what is left of them anywhere,
    /// backups included, can no longer be opened.
    pub keys: u64,
    /// Contacts removed (0 or 1).
    pub contacts: u64,
    /// Consent records removed.
    pub consents: u64,
    /// Recipient rows whose address and hash were wiped.
    pub recipients: u64,
    /// Messages whose content and summary were purged.
    pub messages: u64,
    /// Events removed.
    pub events: u64,
    /// Suppression entries whose sealed address was removed (the hashes stay).
    pub suppressions: u64,
    /// Register entries of earlier requests stripped of the address and hash.
    pub requests: u64,
    /// Webhook deliveries of the person's events removed (with their attempts).
    pub webhook_deliveries: u64,
}

impl Erasure {
    /// Rows changed in all.
    pub fn rows(&self) -> u64 {
        self.keys
            + self.contacts
            + self.consents
            + self.recipients
            + self.messages
            + self.events
            + self.suppressions
            + self.requests
            + self.webhook_deliveries
    }
}

/// An audit entry to append: who did what to which target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDraft {
    /// Time (Unix ms).
    pub at: i64,
    /// The tenant concerned, if any.
    pub tenant_id: Option<String>,
    /// Who: `key:<id>`, `cli`, `system`.
    pub actor: String,
    /// What: `subject.export`, `subject.erase`, `contact.update`, `key.create`, …
    pub action: String,
    /// On what; personal targets only as a hash (`rcpt:<hex blind index>`).
    pub target: Option<String>,
    /// Source IP of the request, if any.
    pub ip: Option<String>,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain.
    pub seq: i64,
    /// Time (Unix ms).
    pub at: i64,
    /// The tenant concerned.
    pub tenant_id: Option<String>,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// From where.
    pub ip: Option<String>,
    /// The previous entry's hash ([`crate::audit::GENESIS`] for the first).
    pub prev_hash: Vec<u8>,
    /// SHA-256 of `prev_hash` and this entry's fields.
    pub hash: Vec<u8>,
}

impl AuditRecord {
    /// The entry's fields as a draft (what the hash covers besides `prev_hash`).
    pub fn draft(&self) -> AuditDraft {
        AuditDraft {
            at: self.at,
            tenant_id: self.tenant_id.clone(),
            actor: self.actor.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            ip: self.ip.clone(),
        }
    }

    /// A stored entry from its draft and chain position.
    pub fn from_draft(seq: i64, d: AuditDraft, prev_hash: Vec<u8>, hash: Vec<u8>) -> Self {
        AuditRecord {
            seq,
            at: d.at,
            tenant_id: d.tenant_id,
            actor: d.actor,
            action: d.action,
            target: d.target,
            ip: d.ip,
            prev_hash,
            hash,
        }
    }
}

/// How long data is kept (milliseconds), by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPeriods {
    /// Message content and envelope, once every recipient of the message is final.
    pub content: i64,
    /// Events; then messages (with their recipients) whose recipients are all final.
    pub events: i64,
    /// Webhook deliveries (whatever their state: retries end long before) and their
    /// attempts.
    pub webhook_logs: i64,
}

/// Periods for one tenant, one stream (of every tenant), or one stream of one tenant;
/// a period left `None` is taken from the next less specific policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// The tenant (id), or every tenant.
    pub tenant_id: Option<String>,
    /// The stream, or every stream.
    pub stream: Option<String>,
    /// Message content.
    pub content: Option<i64>,
    /// Events and messages.
    pub events: Option<i64>,
    /// Webhook delivery logs.
    pub webhook_logs: Option<i64>,
}

/// What a purge at `now` removes. For each row, the most specific policy that sets
/// the period wins: tenant and stream, then tenant, then stream, then `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// The time of the purge (Unix ms).
    pub now: i64,
    /// The installation's periods.
    pub default: RetentionPeriods,
    /// Periods of tenants and streams that differ.
    pub policies: Vec<RetentionPolicy>,
    /// Idempotency-Key records created before this go.
    pub idempotency_before: i64,
    /// At most this many rows of each kind per call (the purge job calls again
    /// until nothing is left), so a purge never holds the writer for long.
    pub limit: usize,
}

/// A kind of data with its own retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionKind {
    /// Message content and envelope.
    Content,
    /// Events and messages.
    Events,
    /// Webhook delivery logs.
    WebhookLogs,
}

impl RetentionKind {
    /// Its column in the policy table the purge queries join.
    pub(crate) fn column(self) -> &'static str {
        match self {
            RetentionKind::Content => "content",
            RetentionKind::Events => "events",
            RetentionKind::WebhookLogs => "webhook_logs",
        }
    }
}

impl RetentionPeriods {
    /// The period of `kind`.
    pub fn of(&self, kind: RetentionKind) -> i64 {
        match kind {
            RetentionKind::Content => self.content,
            RetentionKind::Events => self.events,
            RetentionKind::WebhookLogs => self.webhook_logs,
        }
    }
}

impl RetentionPolicy {
    /// The period of `kind`, if this policy sets it.
    pub fn of(&self, kind: RetentionKind) -> Option<i64> {
        match kind {
            RetentionKind::Content => self.content,
            RetentionKind::Events => self.events,
            RetentionKind::WebhookLogs => self.webhook_logs,
        }
    }
}

impl Retention {
    /// The shortest period of `kind` over every policy: nothing younger can go,
    /// which lets a purge narrow its scan with the time indexes.
    pub fn shortest(&self, kind: RetentionKind) -> i64 {
        self.policies
            .iter()
            .filter_map(|p| p.of(kind))
            .fold(self.default.of(kind), i64::min)
    }
}

/// What one purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Messages whose content was purged.
    pub contents: u64,
    /// Events deleted.
    pub events: u64,
    /// Messages deleted (with their recipients).
    pub messages: u64,
    /// Idempotency records deleted.
    pub idempotency: u64,
    /// Webhook deliveries deleted (with their attempts).
    pub webhook_deliveries: u64,
    /// Audit entries pruned (older than the audit log's period; filled in by the
    /// purge job, not by [`crate::ComplianceStore::purge`]).
    pub audit: u64,
}

impl Purged {
    /// True when nothing was left to purge.
    pub fn is_empty(&self) -> bool {
        *self == Purged::default()
    }
}

/// An entry of the register of data-subject requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsarRecord {
    /// Assigned by the store; ignored on insert.
    pub seq: i64,
    /// Owning tenant.
    pub tenant_id: String,
    /// Which right.
    pub kind: DsarKind,
    /// Blind index of the person's address.
    pub rcpt_hash: Vec<u8>,
    /// When the request was received.
    pub received_at: i64,
    /// When it must be answered.
    pub due_at: i64,
    /// Open, completed or rejected.
    pub status: DsarStatus,
    /// When it was completed or rejected.
    pub closed_at: Option<i64>,
    /// Sealed JSON (`{"email", "note"}`), context `dsar:<hex hash>`.
    pub detail_enc: Vec<u8>,
}

/// An entry of the breach register (GDPR Art. 33/34): a personal-data incident with
/// its deadlines and what was done when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRecord {
    /// Assigned by the store; ignored on insert.
    pub seq: i64,
    /// Owning tenant.
    pub tenant_id: String,
    /// When the breach became known.
    pub detected_at: i64,
    /// When the supervisory authority must be notified (72 h after detection).
    pub authority_due_at: i64,
    /// When the affected customers must be told (configurable, default 24 h).
    pub customers_due_at: i64,
    /// When the authority was notified.
    pub authority_notified_at: Option<i64>,
    /// When the customers were told.
    pub customers_notified_at: Option<i64>,
    /// When the incident was closed.
    pub closed_at: Option<i64>,
    /// Sealed JSON (title, description, categories, measures), context
    /// `incident:<tenant id>`.
    pub detail_enc: Vec<u8>,
}

impl IncidentStep {
    /// The column the step sets.
    pub(crate) fn column(self) -> &'static str {
        match self {
            IncidentStep::AuthorityNotified => "authority_notified_at",
            IncidentStep::CustomersNotified => "customers_notified_at",
            IncidentStep::Closed => "closed_at",
        }
    }
}

/// A step recorded on an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentStep {
    /// The supervisory authority was notified.
    AuthorityNotified,
    /// The customers were told.
    CustomersNotified,
    /// The incident is closed.
    Closed,
}

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

/// What is waiting: the delivery queue by stream and the webhook backlog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Per stream: recipients queued or deferred, and the oldest one's message time.
    pub streams: Vec<StreamBacklog>,
    /// Webhook deliveries not yet posted successfully.
    pub webhook_deliveries: u64,
}

/// One stream's share of the delivery queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBacklog {
    /// The stream.
    pub stream: String,
    /// Recipients queued or deferred.
    pub recipients: u64,
    /// Acceptance time of the oldest one's message.
    pub oldest_created_at: i64,
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

/// A filter list as stored: `,a,b,` (or `''` for all), so SQL can match `,x,`.
pub(crate) fn encode_list(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!(",{},", items.join(","))
    }
}

/// The inverse of [`encode_list`].
pub(crate) fn decode_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// A tenant's stream as stored: settings (the JSON of
/// `postwerk_core::stream::StreamSettings`; no personal data) and pause state. The
/// built-in streams have a row only once changed or paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// Owning tenant.
    pub tenant_id: String,
    /// Stream name.
    pub name: String,
    /// Settings as JSON.
    pub settings: String,
    /// Set while the stream is paused.
    pub paused_at: Option<i64>,
    /// Why it was paused (circuit breaker figures or an operator's note).
    pub pause_reason: Option<String>,
    /// When it was last resumed (the circuit breaker counts only later outcomes).
    pub resumed_at: Option<i64>,
    /// Creation time.
    pub created_at: i64,
    /// Last change of settings or pause state.
    pub updated_at: i64,
}

/// Pausing or resuming a stream, with the stream event that records it.
#[derive(Debug, Clone)]
pub struct StreamPause {
    /// Owning tenant.
    pub tenant_id: String,
    /// Stream name.
    pub stream: String,
    /// `Some(reason)` pauses (holding the stream's waiting mail), `None` resumes
    /// (queueing it again).
    pub reason: Option<String>,
    /// Settings JSON for the row if the stream has none yet (a built-in stream).
    pub initial_settings: String,
    /// Time.
    pub at: i64,
    /// Sealed details of the event (`stream:<name>` context), if any.
    pub detail_enc: Option<Vec<u8>>,
}

/// A person's waiting mail to stop ([`crate::PrivacyStore::stop_subject_mail`]): after a
/// restriction, an unsubscribe, a consent withdrawal or a new suppression entry, as
/// acceptance would have held it.
#[derive(Debug, Clone)]
pub struct MailStop {
    /// The tenant.
    pub tenant_id: String,
    /// The person's blind index (never empty: erased rows have none and are left alone).
    pub rcpt_hash: Vec<u8>,
    /// Only mail of this stream; `None`: of every stream.
    pub stream: Option<String>,
    /// The final status given: `suppressed`, `restricted` or `no_consent` (the event
    /// recorded has the same name).
    pub status: RecipientStatus,
    /// When.
    pub at: i64,
}

impl MailStop {
    /// The event recorded with the status; an error (nothing changes) for a status
    /// that does not stop mail.
    pub(crate) fn event(&self) -> StoreResult<EventType> {
        match self.status {
            RecipientStatus::Suppressed => Ok(EventType::Suppressed),
            RecipientStatus::Restricted => Ok(EventType::Restricted),
            RecipientStatus::NoConsent => Ok(EventType::NoConsent),
            _ => Err(StoreError::Unavailable(
                "stop_subject_mail: the status must be suppressed, restricted or no_consent".into(),
            )),
        }
    }
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

/// The latest outcomes of a stream's mail, for the circuit breaker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamOutcomes {
    /// Recipients counted (the most recently finished, up to the window).
    pub finished: u64,
    /// Of those, bounced.
    pub bounced: u64,
    /// Of those, complained.
    pub complained: u64,
}

/// A comma-separated list column as its items (`NULL` or empty: none).
pub fn split_list(text: Option<&str>) -> Vec<String> {
    text.into_iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Items as a comma-separated list column (`NULL` for none).
pub fn join_list(items: &[String]) -> Option<String> {
    (!items.is_empty()).then(|| items.join(","))
}

/// A person who signs in with a password (dashboard and API sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// `usr_…`.
    pub id: String,
    /// The tenant the user belongs to.
    pub tenant_id: String,
    /// Blind index of the normalised email address (unique per tenant; the same
    /// address may have an account in several tenants).
    pub email_index: String,
    /// The address, sealed under the tenant key.
    pub email_enc: Vec<u8>,
    /// Argon2id hash in PHC string form.
    pub password_hash: String,
    /// `owner`, `admin`, `developer`, `analyst`, `sender` or `custom`.
    pub role: String,
    /// What the user may do (from the role, or chosen for `custom`).
    pub scopes: Vec<postwerk_core::model::Scope>,
    /// The TOTP secret and recovery codes, sealed (`None`: no second factor).
    pub totp_enc: Option<Vec<u8>>,
    /// Creation time.
    pub created_at: i64,
    /// Set when disabled (sign-in refused, sessions ended).
    pub disabled_at: Option<i64>,
    /// Failed sign-ins since the last success.
    pub failed_logins: i64,
    /// Sign-in refused until then (after too many failures).
    pub locked_until: Option<i64>,
    /// Raised by every change that ends the user's sessions (forced logout, new
    /// password, disabling, second factor removed by an admin): a session is valid only
    /// while its [`SessionRecord::user_gen`] equals it.
    pub session_gen: i64,
}

/// When failed sign-ins lock an account ([`crate::UserStore::reserve_login`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockPolicy {
    /// The failure count at which the account locks.
    pub failures_before_lock: i64,
    /// The first lock (ms); each further failure doubles it.
    pub first_lock_ms: i64,
    /// The longest lock (ms).
    pub max_lock_ms: i64,
}

/// The answer of [`crate::UserStore::reserve_login`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt is counted as a failure until released or followed by a session;
    /// `lock` is the lock this attempt set (it reached the threshold), if any, and
    /// `previous_lock` the end of the lock before it.
    Counted {
        /// The lock this attempt set.
        lock: Option<i64>,
        /// `locked_until` before this attempt.
        previous_lock: Option<i64>,
    },
    /// The account is locked until then; nothing was counted.
    Locked(i64),
    /// No such user.
    NoUser,
}

/// An admin's change to a user; each ends the user's sessions (raises
/// [`UserRecord::session_gen`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// A new password hash; also clears the failure count and the lock.
    Password(String),
    /// Disabled at this time (an earlier time is kept).
    Disable(i64),
    /// Only the sessions end.
    Logout,
    /// The second factor is removed.
    RemoveSecondFactor,
}

/// A signed-in session (its token is held by the browser; only a hash is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session token.
    pub id_hash: Vec<u8>,
    /// The user.
    pub user_id: String,
    /// The user's tenant.
    pub tenant_id: String,
    /// SHA-256 of the CSRF token that state-changing requests must carry.
    pub csrf_hash: Vec<u8>,
    /// Sign-in time.
    pub created_at: i64,
    /// End of the session.
    pub expires_at: i64,
    /// Set at logout.
    pub revoked_at: Option<i64>,
    /// The user's [`UserRecord::session_gen`] at sign-in.
    pub user_gen: i64,
}
