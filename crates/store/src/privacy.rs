//! The store's privacy area: the people mail is sent to: contacts, consent, data keys, erasure and stopping their mail.

use crate::StoreResult;
use crate::model::*;

store_area! {
    /// The people mail is sent to: contacts, consent, data keys, erasure and stopping their mail.
    PrivacyStore {
        /// Creates or replaces a contact (same tenant and hash); `true` if it was new.
        /// An existing contact keeps its data key and `created_at`.
        fn upsert_contact(&self, c: ContactRecord) -> StoreResult<bool>;
        /// A contact by blind index.
        fn get_contact(
            &self,
            tenant_id: &str,
            rcpt_hash: &[u8],
        ) -> StoreResult<Option<ContactRecord>>;
        /// Sets or lifts (`None`) a contact's processing restriction; `false` if there is
        /// no such contact.
        fn restrict_contact(
            &self,
            tenant_id: &str,
            rcpt_hash: &[u8],
            restricted_at: Option<i64>,
        ) -> StoreResult<bool>;
        /// Appends a consent record; returns its `seq`.
        fn add_consent(&self, c: ConsentRecord) -> StoreResult<i64>;
        /// A person's consent records, oldest first (the full history).
        fn list_consents(
            &self,
            tenant_id: &str,
            rcpt_hash: &[u8],
        ) -> StoreResult<Vec<ConsentRecord>>;
        /// For a batch's recipients (`hashes`, repeats allowed), in one read: their
        /// suppression entries (as [`SuppressionStore::find_suppressions`]), which belong to
        /// restricted contacts and, with a `purpose`, which have active consent for it
        /// (their newest record for the purpose is `active`). The acceptance check.
        fn screen_subjects(
            &self,
            tenant_id: &str,
            hashes: Vec<Vec<u8>>,
            purpose: Option<String>,
        ) -> StoreResult<ConsentScreen>;
        /// The data keys of the people with these blind indexes (repeats allowed); a
        /// person without one is left out.
        fn subject_keys(
            &self,
            tenant_id: &str,
            hashes: Vec<Vec<u8>>,
        ) -> StoreResult<Vec<SubjectKey>>;
        /// Stores each candidate as its person's key unless they have one already, and
        /// returns the stored key of every candidate's person (so of concurrent first
        /// writers, all get the one that won). Durable no later than the caller's next
        /// durable write, which is all that data sealed under it needs.
        fn ensure_subject_keys(
            &self,
            tenant_id: &str,
            candidates: Vec<SubjectKey>,
        ) -> StoreResult<Vec<SubjectKey>>;
        /// Erases everything held on one person in a tenant, atomically: their data key;
        /// the contact and
        /// its consents; events with the hash; the address and hash of recipient rows
        /// (not yet final ones become `suppressed`); the content and summary of their
        /// messages; the sealed address of suppression entries (their hashes stay).
        fn erase_subject(&self, tenant_id: &str, rcpt_hash: &[u8]) -> StoreResult<Erasure>;
        /// Stops a person's waiting mail (queued, deferred or suspended, leased or not) of
        /// one stream or of every stream: each recipient gets the stop's final status (no
        /// next attempt, no lease) and an event of the same name, atomically. The engine
        /// checks a job's status before delivering it, so jobs it already holds in memory
        /// are dropped too. Returns how many recipients stopped.
        fn stop_subject_mail(&self, stop: MailStop) -> StoreResult<u64>;
        /// The people (tenant, blind index) with personal rows but no key in
        /// `subject_keys`: after a restore, those erased since the backup was taken (their
        /// key was destroyed, so their rows cannot be read anyway).
        fn unkeyed_subjects(&self) -> StoreResult<Vec<(String, Vec<u8>)>>;
    }
}
