//! The privacy area's rows: contacts, consent, subject keys and erasure.

use super::*;

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
    /// Keyed tags of the attribute values (see `TenantKeys::attribute_tag`), each 16 hex
    /// digits, space-separated: what attribute-equality filters match, without the
    /// values.
    pub attr_tags: String,
    /// When the profile was deleted (the consent history stays), if it was.
    pub deleted_at: Option<i64>,
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
    /// List memberships removed.
    pub list_memberships: u64,
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
            + self.list_memberships
            + self.consents
            + self.recipients
            + self.messages
            + self.events
            + self.suppressions
            + self.requests
            + self.webhook_deliveries
    }
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
