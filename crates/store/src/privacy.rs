//! The store's privacy area: the people mail is sent to: contacts, consent, data keys, erasure and stopping their mail.

use crate::StoreResult;
use crate::model::*;
use crate::row::Columns;
use crate::run::FromRow;
use crate::sql::Sql;

/// The columns a [`ContactRecord`] is read from.
pub(crate) const CONTACT_COLS: &str =
    "tenant_id, rcpt_hash, data_enc, restricted_at, created_at, updated_at, attr_tags, deleted_at";

impl FromRow for ContactRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(ContactRecord {
            tenant_id: r.get("tenant_id")?,
            rcpt_hash: r.get("rcpt_hash")?,
            data_enc: r.get("data_enc")?,
            restricted_at: r.get("restricted_at")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
            attr_tags: r.get("attr_tags")?,
            deleted_at: r.get("deleted_at")?,
        })
    }
}

/// The columns a [`ConsentRecord`] is read from.
const CONSENT_COLS: &str = "seq, tenant_id, rcpt_hash, purpose, status, at, record_enc";

/// A row of `consents`; a status that does not parse makes it corrupt.
impl FromRow for ConsentRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(ConsentRecord {
            seq: r.get("seq")?,
            tenant_id: r.get("tenant_id")?,
            rcpt_hash: r.get("rcpt_hash")?,
            purpose: r.get("purpose")?,
            status: r.parse("status", "consent status")?,
            at: r.get("at")?,
            record_enc: r.get("record_enc")?,
        })
    }
}

/// A new consent record's `seq` ([`ADD_CONSENT`]'s row).
struct ConsentSeq(i64);

impl FromRow for ConsentSeq {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(ConsentSeq(r.get("seq")?))
    }
}

/// A consent record as the screen weighs it (see [`latest_active`]): `(seq, blind
/// index, status)` (both backends' screens).
pub(crate) fn consent_mark_row<R: Columns>(r: &R) -> Result<(i64, Vec<u8>, String), R::Error> {
    Ok((r.get("seq")?, r.get("rcpt_hash")?, r.get("status")?))
}

/// The columns a [`SubjectKey`] is read from.
const SUBJECT_KEY_COLS: &str = "rcpt_hash, key_wrapped, created_at";

impl FromRow for SubjectKey {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(SubjectKey {
            rcpt_hash: r.get("rcpt_hash")?,
            key_wrapped: r.get("key_wrapped")?,
            created_at: r.get("created_at")?,
        })
    }
}

/// A person ([`UNKEYED_SUBJECTS`]'s row): tenant and blind index.
struct Subject(String, Vec<u8>);

impl FromRow for Subject {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(Subject(r.get("tenant_id")?, r.get("rcpt_hash")?))
    }
}

/// A blind index alone (both backends' screens).
pub(crate) fn hash_row<R: Columns>(r: &R) -> Result<Vec<u8>, R::Error> {
    r.get("rcpt_hash")
}

/// The erasure's blanking of tenant `$1`'s messages to blind index `$2` (content,
/// sender and summary), `empty` being the dialect's empty blob.
fn erase_messages_sql(empty: &str) -> String {
    format!(
        "UPDATE messages SET content_enc = NULL, mail_from_enc = NULL, meta_enc = {empty} \
         WHERE id IN (SELECT message_id FROM recipients WHERE tenant_id = $1 AND rcpt_hash = $2)"
    )
}

/// The erasure's blanking of tenant `$1`'s recipient rows of blind index `$2` (address
/// and hash; waiting ones become `suppressed`), `empty` being the dialect's empty blob.
fn erase_recipients_sql(empty: &str) -> String {
    format!(
        "UPDATE recipients SET address_enc = {empty}, rcpt_hash = {empty}, next_attempt_at = NULL, \
         lease_node = NULL, lease_until = NULL, \
         status = CASE WHEN status IN ('queued', 'deferred') THEN 'suppressed' ELSE status END \
         WHERE tenant_id = $1 AND rcpt_hash = $2"
    )
}

/// The erasure's blanking of tenant `$1`'s register entries of blind index `$2`,
/// `empty` being the dialect's empty blob.
fn erase_requests_sql(empty: &str) -> String {
    format!(
        "UPDATE dsar_requests SET rcpt_hash = {empty}, detail_enc = {empty} \
         WHERE tenant_id = $1 AND rcpt_hash = $2"
    )
}

sql! {
    /// Whether tenant `$1` has a contact of blind index `$2`.
    CONTACT_EXISTS = "SELECT 1 FROM contacts WHERE tenant_id = $1 AND rcpt_hash = $2";
    /// A contact, in [`CONTACT_COLS`] order, or new data `$3`, update time `$6`,
    /// attribute tags `$7` and deletion `$8` for the existing one (which keeps its
    /// restriction and `created_at`).
    UPSERT_CONTACT = "INSERT INTO contacts ({CONTACT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant_id, rcpt_hash) DO UPDATE \
         SET data_enc = excluded.data_enc, updated_at = excluded.updated_at, \
         attr_tags = excluded.attr_tags, deleted_at = excluded.deleted_at";
    /// [`UPSERT_CONTACT`] saying whether it inserted (PostgreSQL's own: a new row has no
    /// `xmax`; SQLite's single writer asks [`CONTACT_EXISTS`] first).
    UPSERT_CONTACT_RETURNING = "{} RETURNING (xmax = 0) AS inserted", UPSERT_CONTACT.pg();
    /// Tenant `$1`'s contact of blind index `$2`.
    GET_CONTACT = "SELECT {CONTACT_COLS} FROM contacts WHERE tenant_id = $1 AND rcpt_hash = $2";
    /// Tenant `$1`'s contact of blind index `$2` takes restriction `$3` (NULL: lifted).
    RESTRICT_CONTACT = "UPDATE contacts SET restricted_at = $3 WHERE tenant_id = $1 AND rcpt_hash = $2";
    /// A consent record (`$1`..`$6`: tenant, blind index, purpose, status, time,
    /// sealed evidence).
    ADD_CONSENT_ROW = "INSERT INTO consents (tenant_id, rcpt_hash, purpose, status, at, record_enc) \
         VALUES ($1, $2, $3, $4, $5, $6)";
    /// [`ADD_CONSENT_ROW`], returning the record's `seq`.
    ADD_CONSENT = "{} RETURNING seq", ADD_CONSENT_ROW.pg();
    /// Tenant `$1`'s consent records of blind index `$2`, oldest first.
    LIST_CONSENTS = "SELECT {CONSENT_COLS} FROM consents WHERE tenant_id = $1 AND rcpt_hash = $2 \
         ORDER BY seq";
    /// Which of blind indexes `$2` (an array: SQLite binds it as chunked `IN` lists)
    /// are tenant `$1`'s restricted contacts.
    RESTRICTED_AMONG = "SELECT rcpt_hash FROM contacts WHERE tenant_id = $1 \
         AND restricted_at IS NOT NULL AND rcpt_hash = ANY($2)";
    /// Tenant `$1`'s consent records for purpose `$2` of blind indexes `$3` (an array,
    /// as in [`RESTRICTED_AMONG`]), read by [`consent_mark_row`].
    CONSENTS_AMONG = "SELECT seq, rcpt_hash, status FROM consents WHERE tenant_id = $1 \
         AND purpose = $2 AND rcpt_hash = ANY($3)";
    /// Tenant `$1`'s data keys of blind indexes `$2` (an array, as in
    /// [`RESTRICTED_AMONG`]).
    SUBJECT_KEYS_AMONG = "SELECT {SUBJECT_KEY_COLS} FROM subject_keys WHERE tenant_id = $1 \
         AND rcpt_hash = ANY($2)";
    /// The people with personal rows and no data key (see
    /// [`PrivacyStore::unkeyed_subjects`]), read as [`Subject`]s.
    UNKEYED_SUBJECTS = "SELECT s.tenant_id, s.rcpt_hash FROM (\
         SELECT tenant_id, rcpt_hash FROM contacts \
         UNION SELECT tenant_id, rcpt_hash FROM consents \
         UNION SELECT tenant_id, rcpt_hash FROM recipients WHERE length(rcpt_hash) > 0 \
         UNION SELECT tenant_id, rcpt_hash FROM events WHERE length(rcpt_hash) > 0 \
         UNION SELECT tenant_id, rcpt_hash FROM suppressions WHERE address_enc IS NOT NULL \
         UNION SELECT tenant_id, rcpt_hash FROM dsar_requests WHERE length(rcpt_hash) > 0) s \
         WHERE NOT EXISTS (SELECT 1 FROM subject_keys k WHERE k.tenant_id = s.tenant_id \
         AND k.rcpt_hash = s.rcpt_hash)";
    /// Erasure: tenant `$1`'s data key of blind index `$2` goes.
    ERASE_KEY = "DELETE FROM subject_keys WHERE tenant_id = $1 AND rcpt_hash = $2";
    /// Erasure: tenant `$1`'s contact of blind index `$2` goes.
    ERASE_CONTACT = "DELETE FROM contacts WHERE tenant_id = $1 AND rcpt_hash = $2";
    /// Erasure: tenant `$1`'s list memberships of blind index `$2` go.
    ERASE_LIST_MEMBERS = "DELETE FROM list_members WHERE tenant_id = $1 AND rcpt_hash = $2";
    /// Erasure: tenant `$1`'s consent records of blind index `$2` go.
    ERASE_CONSENTS = "DELETE FROM consents WHERE tenant_id = $1 AND rcpt_hash = $2";
    /// Erasure: tenant `$1`'s events of blind index `$2` go.
    ERASE_EVENTS = "DELETE FROM events WHERE tenant_id = $1 AND rcpt_hash = $2";
    /// Erasure: tenant `$1`'s suppression entries of blind index `$2` lose their sealed
    /// address (the hashes stay).
    ERASE_SUPPRESSIONS = "UPDATE suppressions SET address_enc = NULL \
         WHERE tenant_id = $1 AND rcpt_hash = $2 AND address_enc IS NOT NULL";
    /// The where clause (over `webhook_deliveries`) of the deliveries an erasure
    /// removes: tenant `$1`'s of blind index `$2`.
    ERASE_DELIVERIES_WHERE = "tenant_id = $1 AND rcpt_hash = $2";
    /// [`erase_messages_sql`] in PostgreSQL.
    ERASE_MESSAGES_PG = "{}", erase_messages_sql("''::bytea");
    /// [`erase_messages_sql`] in SQLite.
    ERASE_MESSAGES_SQLITE = "{}", erase_messages_sql("X''");
    /// [`erase_recipients_sql`] in PostgreSQL.
    ERASE_RECIPIENTS_PG = "{}", erase_recipients_sql("''::bytea");
    /// [`erase_recipients_sql`] in SQLite.
    ERASE_RECIPIENTS_SQLITE = "{}", erase_recipients_sql("X''");
    /// [`erase_requests_sql`] in PostgreSQL.
    ERASE_REQUESTS_PG = "{}", erase_requests_sql("''::bytea");
    /// [`erase_requests_sql`] in SQLite.
    ERASE_REQUESTS_SQLITE = "{}", erase_requests_sql("X''");
}

/// The erasure's statements in PostgreSQL (each `$1` tenant, `$2` blind index), in the
/// order of [`erasure`]'s counts.
pub(crate) static ERASE_PG: [&Sql; 9] = [
    &ERASE_KEY,
    &ERASE_MESSAGES_PG,
    &ERASE_CONTACT,
    &ERASE_LIST_MEMBERS,
    &ERASE_CONSENTS,
    &ERASE_EVENTS,
    &ERASE_SUPPRESSIONS,
    &ERASE_RECIPIENTS_PG,
    &ERASE_REQUESTS_PG,
];

/// [`ERASE_PG`] in SQLite.
pub(crate) static ERASE_SQLITE: [&Sql; 9] = [
    &ERASE_KEY,
    &ERASE_MESSAGES_SQLITE,
    &ERASE_CONTACT,
    &ERASE_LIST_MEMBERS,
    &ERASE_CONSENTS,
    &ERASE_EVENTS,
    &ERASE_SUPPRESSIONS,
    &ERASE_RECIPIENTS_SQLITE,
    &ERASE_REQUESTS_SQLITE,
];

/// What an erasure removed: the row counts of its statements ([`ERASE_PG`] order) and
/// the webhook deliveries it deleted.
pub(crate) fn erasure(counts: [u64; 9], webhook_deliveries: u64) -> Erasure {
    let [
        keys,
        messages,
        contacts,
        list_memberships,
        consents,
        events,
        suppressions,
        recipients,
        requests,
    ] = counts;
    Erasure {
        keys,
        contacts,
        list_memberships,
        consents,
        recipients,
        messages,
        events,
        suppressions,
        requests,
        webhook_deliveries,
    }
}

store_area! {
    /// The people mail is sent to: contacts, consent, data keys, erasure and stopping their mail.
    PrivacyStore {
        /// Creates or replaces a contact (same tenant and hash); `true` if it was new.
        /// An existing contact keeps its data key and `created_at`.
        fn upsert_contact(&self, c: ContactRecord) -> StoreResult<bool>;
        /// For a batch's recipients (`hashes`, repeats allowed), in one read: their
        /// suppression entries (as [`crate::SuppressionStore::find_suppressions`]), which belong to
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
    }
    shared {
        /// A contact by blind index.
        fn get_contact(
            &self,
            tenant_id: &str,
            rcpt_hash: &[u8],
        ) -> StoreResult<Option<ContactRecord>> {
            self.row("get_contact", &GET_CONTACT, args![tenant_id, rcpt_hash])
                .await
        }
        /// Sets or lifts (`None`) a contact's processing restriction; `false` if there is
        /// no such contact.
        fn restrict_contact(
            &self,
            tenant_id: &str,
            rcpt_hash: &[u8],
            restricted_at: Option<i64>,
        ) -> StoreResult<bool> {
            let args = args![tenant_id, rcpt_hash, restricted_at];
            Ok(self.write("restrict_contact", None, &RESTRICT_CONTACT, args).await? > 0)
        }
        /// Appends a consent record; returns its `seq`.
        fn add_consent(&self, c: ConsentRecord) -> StoreResult<i64> {
            let args = args![
                c.tenant_id,
                c.rcpt_hash,
                c.purpose,
                c.status.as_str(),
                c.at,
                c.record_enc,
            ];
            match self.write_row("add_consent", None, &ADD_CONSENT, args).await? {
                Some(ConsentSeq(seq)) => Ok(seq),
                None => Err(crate::StoreError::Corrupt("consent seq".into())),
            }
        }
        /// A person's consent records, oldest first (the full history).
        fn list_consents(
            &self,
            tenant_id: &str,
            rcpt_hash: &[u8],
        ) -> StoreResult<Vec<ConsentRecord>> {
            self.rows("list_consents", &LIST_CONSENTS, args![tenant_id, rcpt_hash])
                .await
        }
        /// The people (tenant, blind index) with personal rows but no key in
        /// `subject_keys`: after a restore, those erased since the backup was taken (their
        /// key was destroyed, so their rows cannot be read anyway).
        fn unkeyed_subjects(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
            let rows: Vec<Subject> =
                self.rows("unkeyed_subjects", &UNKEYED_SUBJECTS, args![]).await?;
            Ok(rows.into_iter().map(|Subject(t, h)| (t, h)).collect())
        }
    }
}
