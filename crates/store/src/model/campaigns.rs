//! Campaign templates and their versions.

/// A template at one of its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord {
    /// `tpl_…`.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Unique in the tenant.
    pub name: String,
    /// The version these parts are (the template's current one unless asked for
    /// another); from 1.
    pub version: i64,
    /// The template's current version.
    pub current: i64,
    /// The version's parts (JSON, as the service layer writes it), sealed under the
    /// tenant key, as message content is.
    pub content_enc: Vec<u8>,
    /// The template was created.
    pub created_at: i64,
    /// The template was changed last (renamed or given a new version).
    pub updated_at: i64,
}

/// A broadcast: one template sent to the people on lists and segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastRecord {
    /// `bc_…`.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Shown in reports and the console.
    pub name: String,
    /// `draft`, `scheduled`, `sending`, `paused`, `sent` or `cancelled`.
    pub state: String,
    /// What to send to whom (JSON, as the service layer writes it: template, From,
    /// lists, segments, stream, throttle, window, tracking), sealed under the tenant
    /// key: the From and Reply-To are addresses.
    pub spec_enc: Vec<u8>,
    /// When to send (Unix ms), if scheduled.
    pub send_at: Option<i64>,
    /// The blind index of the last person whose message is queued (empty: none yet).
    /// The expansion walks people in blind-index order and moves this forward in the
    /// transaction that queues their messages, so it resumes where it stopped.
    pub cursor: Vec<u8>,
    /// The expansion's counts so far (JSON object of numbers).
    pub counts: String,
    /// The node expanding it, while it holds the lease.
    pub runner: Option<String>,
    /// When the runner's lease ends (Unix ms).
    pub runner_until: Option<i64>,
    /// Created.
    pub created_at: i64,
    /// Changed last.
    pub updated_at: i64,
    /// Every message was queued (or it was cancelled), if it was.
    pub finished_at: Option<i64>,
}

/// A broadcast's expansion moving forward, written in the transaction that queues
/// the messages of the people it passed: it holds only if the broadcast is still
/// `sending` from `from_cursor` (else nothing of the batch is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastProgress {
    /// Owning tenant.
    pub tenant_id: String,
    /// The broadcast.
    pub id: String,
    /// Where the batch started (the broadcast's cursor as the runner read it).
    pub from_cursor: Vec<u8>,
    /// The blind index of the batch's last person.
    pub to_cursor: Vec<u8>,
    /// The counts with the batch's.
    pub counts: String,
    /// The walk is over: the broadcast becomes `sent`.
    pub done: bool,
    /// Now (Unix ms).
    pub at: i64,
}

/// One figure of a broadcast's report: how many of its recipients are in a state, or
/// had an event of a type (and how many distinct recipients did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastTally {
    /// `status` (a recipient status) or `event` (an event type).
    pub kind: String,
    /// The status or event type.
    pub key: String,
    /// Rows.
    pub n: i64,
    /// Distinct recipients.
    pub recipients: i64,
}
