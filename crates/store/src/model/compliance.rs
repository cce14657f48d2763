//! The compliance area's rows: retention, data-subject requests and incidents.

use super::*;

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
