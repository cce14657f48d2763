//! The audience: lists and their members, segments, imports and canary addresses.

use postwerk_core::model::ConsentStatus;

use super::{ConsentRecord, ContactRecord};

/// A contact list. Its members are blind indexes (`list_members`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRecord {
    /// `lst_…`.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Unique in the tenant.
    pub name: String,
    /// Free text for the people who manage it.
    pub description: Option<String>,
    /// Created.
    pub created_at: i64,
    /// Renamed or described last.
    pub updated_at: i64,
}

/// A list with its member count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSummary {
    /// The list.
    pub list: ListRecord,
    /// Contacts on it (profiles deleted or not).
    pub members: i64,
}

/// A segment: a saved filter over the tenant's contacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRecord {
    /// `seg_…`.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Unique in the tenant.
    pub name: String,
    /// The filter (JSON, as the service layer writes it), sealed under the tenant key:
    /// attribute values may be telling.
    pub filter_enc: Vec<u8>,
    /// Created.
    pub created_at: i64,
    /// Changed last.
    pub updated_at: i64,
}

/// A consent condition of a [`ContactFilter`]: the person's newest record for the
/// purpose has this status, or (`None`) they have no record for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentCondition {
    /// The purpose (`marketing`).
    pub purpose: String,
    /// The status of the newest record, or none at all.
    pub status: Option<ConsentStatus>,
}

/// Which of a tenant's contacts to read or count; every condition must hold. Contacts
/// whose profile was deleted never match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactFilter {
    /// Owning tenant.
    pub tenant_id: String,
    /// On each of these lists (ids).
    pub lists: Vec<String>,
    /// On at least one of these lists (ids; empty: on none, so nobody): a user's
    /// limit. `None`: no such condition.
    pub any_list: Option<Vec<String>>,
    /// This person only (an address search, by blind index).
    pub rcpt_hash: Option<Vec<u8>>,
    /// Consent conditions.
    pub consent: Vec<ConsentCondition>,
    /// Attribute values (keyed tags, see [`ContactRecord::attr_tags`]).
    pub attr_tags: Vec<String>,
    /// Created at or after.
    pub created_after: Option<i64>,
    /// Created before.
    pub created_before: Option<i64>,
    /// Changed at or after.
    pub updated_after: Option<i64>,
    /// Changed before.
    pub updated_before: Option<i64>,
    /// Opened or clicked a message at or after this time.
    pub engaged_since: Option<i64>,
    /// Clicked a message at or after this time.
    pub clicked_since: Option<i64>,
    /// No bounce was ever recorded for them.
    pub never_bounced: bool,
    /// Cursor: blind indexes after this one (the order is by blind index: stable, and
    /// meaningless on purpose).
    pub after: Option<Vec<u8>>,
    /// Most rows (for counting: ignored).
    pub limit: usize,
}

/// An import of contacts: its state and its detail (options, progress, counts,
/// reasons, rejected rows: never an address), as JSON the service layer owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    /// `imp_…`.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// `screening`, `held`, `running`, `done`, `cancelled` or `failed`.
    pub state: String,
    /// The detail (JSON).
    pub detail: String,
    /// Created.
    pub created_at: i64,
    /// Changed last.
    pub updated_at: i64,
}

/// One person of an import batch.
#[derive(Debug, Clone)]
pub struct ImportedContact {
    /// The contact row to write (new, or rectified), or `None` to leave an existing
    /// contact as it is.
    pub contact: Option<ContactRecord>,
    /// The person's blind index (for the list membership).
    pub rcpt_hash: Vec<u8>,
    /// A consent record to append, if the import records one.
    pub consent: Option<ConsentRecord>,
}

/// A batch of an import, written atomically together with the import's progress.
#[derive(Debug, Clone)]
pub struct ImportBatch {
    /// Owning tenant.
    pub tenant_id: String,
    /// The list the contacts join, if any.
    pub list_id: Option<String>,
    /// The people.
    pub contacts: Vec<ImportedContact>,
    /// Further memberships: (list id, blind index), from a file's `lists` column.
    pub extra_members: Vec<(String, Vec<u8>)>,
    /// The import's row with its progress after this batch (state and detail).
    pub progress: ImportRecord,
}

/// A canary address: a trap address of the tenant's, at the canary domain, that no
/// real person reads. Mail arriving at it from elsewhere shows that a list leaked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryRecord {
    /// The whole address, lower case.
    pub address: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Where it was handed out: `registered`, or `export:<export id>` (one per
    /// contact export, naming the list exported).
    pub origin: String,
    /// Free text (the list an export was of, or the tenant's own label).
    pub label: Option<String>,
    /// Created.
    pub created_at: i64,
    /// When mail from elsewhere first arrived at it, if it has.
    pub triggered_at: Option<i64>,
}
