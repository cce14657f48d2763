//! Postwerk's storage: one [`Store`] contract, two backends, and the vault.
//!
//! - [`sqlite`]: the embedded default (one WAL-mode file; a writer thread that
//!   group-commits many callers' writes in one transaction and one fsync).
//! - [`postgres`]: for scale-out (many `postwerk serve` nodes share one database;
//!   due deliveries are leased with `FOR UPDATE SKIP LOCKED`).
//! - [`vault`]: envelope encryption (AEAD) and blind indexes. The store itself only
//!   ever sees sealed bytes and HMACs: it must never receive, log or return a
//!   plaintext address or message body.
//! - [`model`]: the rows.
//! - [`backup`]: whole-store snapshots and restores for `postwerk backup` (the subject
//!   keys stay in the live database).
//!
//! Callers use [`AnyStore`], which dispatches to a backend by enum (no boxing on the
//! hot path). Every backend passes the same conformance suite (`tests/conformance.rs`).

pub mod audit;
pub mod backup;
pub mod model;
pub mod postgres;
mod queue_sql;
mod retention_sql;
pub mod sqlite;
pub mod stats;
pub mod vault;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use model::*;
use postwerk_core::model::DsarStatus;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint was violated (names the thing, never its value).
    #[error("already exists: {0}")]
    Conflict(&'static str),
    /// The database could not be reached or refused the write; nothing was stored.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// How long an Idempotency-Key is remembered (24 hours).
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// The delivery queue by stream (both backends).
const BACKLOG_SQL: &str = "SELECT m.stream AS stream, count(*) AS recipients, min(m.created_at) AS oldest \
     FROM recipients r JOIN messages m ON m.id = r.message_id \
     WHERE r.next_attempt_at IS NOT NULL GROUP BY m.stream ORDER BY m.stream";
/// Waiting recipients grouped for `queue_depth` (both backends); `tenant` is the
/// dialect's parameter for the optional tenant id.
fn queue_depth_sql(tenant: &str) -> String {
    format!(
        "SELECT r.tenant_id, m.stream, r.domain, r.status, count(*) AS recipients, \
         min(m.created_at) AS oldest FROM recipients r JOIN messages m ON m.id = r.message_id \
         WHERE (r.next_attempt_at IS NOT NULL OR r.status = 'suspended') \
         AND ({tenant} IS NULL OR r.tenant_id = {tenant}) \
         GROUP BY r.tenant_id, m.stream, r.domain, r.status \
         ORDER BY r.tenant_id, m.stream, r.domain, r.status"
    )
}

/// The circuit breaker's figures for `stream_outcomes` (both backends; arguments are
/// the dialect's parameters for tenant, stream, since and window): of the stream's most
/// recently finished recipients, how many bounced and how many complained.
fn stream_outcomes_sql(tenant: &str, stream: &str, since: &str, window: &str) -> String {
    format!(
        "SELECT count(*) AS finished, sum(CASE WHEN recent.status = 'bounced' THEN 1 ELSE 0 END) AS bounced, \
         sum(CASE WHEN EXISTS (SELECT 1 FROM events e WHERE e.message_id = recent.message_id \
           AND e.recipient_id = recent.id AND e.type = 'complained') THEN 1 ELSE 0 END) AS complained \
         FROM (SELECT r.id, r.message_id, r.status FROM recipients r JOIN messages m ON m.id = r.message_id \
           WHERE r.tenant_id = {tenant} AND m.stream = {stream} AND r.status IN ('delivered', 'bounced') \
           AND r.updated_at > {since} \
           ORDER BY r.updated_at DESC LIMIT {window}) recent"
    )
}

/// Every table holding a tenant's data besides `tenants`, with its key columns, in
/// the order [`Store::delete_tenant_data`] empties them: rows that point at others go
/// first. (The `audit` table is not among them: its entries stay.)
pub const TENANT_TABLES: [(&str, &str); 21] = [
    ("webhook_attempts", "seq"),
    ("webhook_deliveries", "seq"),
    ("webhooks", "id"),
    ("message_tags", "tag_hash, message_id"),
    ("events", "seq"),
    ("recipients", "id"),
    ("messages", "id"),
    ("idempotency", "key_hash"),
    ("suppressions", "seq"),
    ("consents", "seq"),
    ("contacts", "rcpt_hash"),
    ("subject_keys", "rcpt_hash"),
    ("dsar_requests", "seq"),
    ("incidents", "seq"),
    (
        "delivery_stats",
        "bucket, stream, pool, source, site, event, reason",
    ),
    ("streams", "name"),
    ("sessions", "id_hash"),
    ("users", "id"),
    ("api_keys", "id"),
    ("dkim_keys", "id"),
    ("domains", "name"),
];

/// The statements of [`Store::delete_tenant_data`] that empty [`TENANT_TABLES`], in
/// order (both backends; `t` and `n` are the dialect's parameters for the tenant id
/// and the limit). Webhook attempts are found through their endpoint: the table has
/// no tenant index.
fn tenant_data_sql(t: &str, n: &str) -> Vec<String> {
    TENANT_TABLES
        .iter()
        .map(|&(table, key)| {
            let rows = if table == "webhook_attempts" {
                format!(
                    "SELECT a.seq FROM webhook_attempts a JOIN webhooks w ON w.id = a.webhook_id \
                     WHERE w.tenant_id = {t}"
                )
            } else {
                format!("SELECT {key} FROM {table} WHERE tenant_id = {t}")
            };
            format!("DELETE FROM {table} WHERE tenant_id = {t} AND ({key}) IN ({rows} LIMIT {n})")
        })
        .collect()
}

/// Domain names held by more than one tenant, each with its holders' tenant names,
/// oldest registration first (both backends). Names used to be unique per tenant
/// only; a database from then keeps every holder, no tenant may send
/// from a contested name (see `domain_registered` in postwerk-mta), and the unique
/// index [`UNIQUE_DOMAINS_SQL`] waits until an operator has removed all but one.
pub const CONTESTED_DOMAINS_SQL: &str = "SELECT d.name, t.name FROM domains d \
     JOIN tenants t ON t.id = d.tenant_id \
     WHERE d.name IN (SELECT name FROM domains GROUP BY name HAVING count(*) > 1) \
     ORDER BY d.name, d.created_at, t.name";

/// A domain name belongs to at most one tenant (both backends; made at start-up, see
/// [`CONTESTED_DOMAINS_SQL`]).
const UNIQUE_DOMAINS_SQL: &str = "CREATE UNIQUE INDEX IF NOT EXISTS domains_name ON domains (name)";

/// Logs each contested domain (rows of [`CONTESTED_DOMAINS_SQL`]) with the command
/// that resolves it.
fn warn_contested(rows: &[(String, String)]) {
    let mut by_name: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (domain, tenant) in rows {
        by_name.entry(domain).or_default().push(tenant);
    }
    for (domain, tenants) in by_name {
        tracing::warn!(
            domain,
            tenants = %tenants.join(", "),
            "a domain is registered by more than one tenant (a database from before names \
             were unique): no tenant may send from it until an operator keeps one holder \
             with `postwerk domains remove {domain} --tenant <tenant>` for each other one"
        );
    }
}

/// Webhook deliveries still pending (both backends).
const WEBHOOK_BACKLOG_SQL: &str =
    "SELECT count(*) FROM webhook_deliveries WHERE next_attempt_at IS NOT NULL";

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// The storage contract shared by all backends. Every write is durable (committed and
/// fsynced) when its future resolves with `Ok`.
pub trait Store: Send + Sync {
    /// Creates a tenant; `Conflict` if the name is taken.
    fn insert_tenant(&self, tenant: TenantRecord) -> impl Future<Output = StoreResult<()>> + Send;
    /// A tenant by id.
    fn get_tenant(
        &self,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<TenantRecord>>> + Send;
    /// A tenant's sub-accounts, oldest first.
    fn list_subaccounts(
        &self,
        parent_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<TenantRecord>>> + Send;
    /// A tenant by unique name.
    fn get_tenant_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = StoreResult<Option<TenantRecord>>> + Send;

    /// Tenants, oldest first: every one (`None`), or those cancelled before
    /// `cancelled_before` (due for deletion).
    fn list_tenants(
        &self,
        cancelled_before: Option<i64>,
    ) -> impl Future<Output = StoreResult<Vec<TenantRecord>>> + Send;
    /// `Some(t)`: cancels a tenant at `t`, with each of its sub-accounts not cancelled
    /// yet, and holds their waiting mail (`suspended`, leased or not, as a stream pause
    /// does). `None`: reactivates it, with the sub-accounts cancelled with it or after,
    /// and queues their held mail again, due `at` (see [`QueueAction::Resume`]).
    /// Atomic; `false` (nothing changed) if the tenant is unknown or already so.
    fn set_tenant_cancelled(
        &self,
        tenant_id: &str,
        cancelled_at: Option<i64>,
        at: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// One bounded step of deleting a tenant: up to `limit` rows of the first of
    /// [`TENANT_TABLES`] that still has any of its rows, or, once none has, the tenant
    /// row itself with its wrapped data key (the key's destruction). Returns the rows deleted, 0 once
    /// the tenant is gone. Audit entries stay (the chain must keep verifying).
    fn delete_tenant_data(
        &self,
        tenant_id: &str,
        limit: usize,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Stores a new API key.
    fn insert_api_key(&self, key: ApiKeyRecord) -> impl Future<Output = StoreResult<()>> + Send;
    /// An API key by id.
    fn get_api_key(
        &self,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<ApiKeyRecord>>> + Send;
    /// Records the last use of a key.
    fn touch_api_key(&self, id: &str, at: i64) -> impl Future<Output = StoreResult<()>> + Send;
    /// A tenant's API keys (revoked and expired ones included), oldest first.
    fn list_api_keys(
        &self,
        tenant_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<ApiKeyRecord>>> + Send;
    /// Ends a tenant's key: revokes it now (`revoke`), or brings its expiry forward to
    /// `at` (rotation grace; a later expiry is kept shorter). `false` if the tenant
    /// has no such key or it is already revoked.
    fn end_api_key(
        &self,
        tenant_id: &str,
        id: &str,
        at: i64,
        revoke: bool,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Stores a new user; `Conflict("user")` if the address already has an account in
    /// the user's tenant.
    fn insert_user(&self, user: UserRecord) -> impl Future<Output = StoreResult<()>> + Send;
    /// A user by id.
    fn get_user(&self, id: &str) -> impl Future<Output = StoreResult<Option<UserRecord>>> + Send;
    /// The accounts whose address has this blind index (one per tenant at most),
    /// oldest first.
    fn find_users(
        &self,
        email_index: &str,
    ) -> impl Future<Output = StoreResult<Vec<UserRecord>>> + Send;
    /// A tenant's users, oldest first.
    fn list_users(
        &self,
        tenant_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<UserRecord>>> + Send;
    /// Counts a sign-in attempt as a failure before its password is checked, in one
    /// statement: unless the account is locked at `at`, `failed_logins` goes up by one
    /// and, once it reaches `policy.failures_before_lock`, `locked_until` is set (the
    /// first lock, doubled for each further failure, at most the longest). Concurrent
    /// attempts each count.
    fn reserve_login(
        &self,
        id: &str,
        at: i64,
        policy: LockPolicy,
    ) -> impl Future<Output = StoreResult<Reservation>> + Send;
    /// Takes back one counted attempt that turned out not to be a failure: the count
    /// goes down by one (not below zero) and, if `locked_until` is still `lock` (the
    /// lock the attempt set), it is put back to `previous_lock`.
    fn release_login(
        &self,
        id: &str,
        lock: Option<i64>,
        previous_lock: Option<i64>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Opens a session after a successful sign-in, atomically: only while the user is
    /// not disabled and its `session_gen` is still `session.user_gen` (no admin change
    /// since the sign-in read the user), it clears the failure count and the lock and
    /// stores the session. `false` (nothing stored) otherwise.
    fn open_session(
        &self,
        session: SessionRecord,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Applies an admin's change and raises `session_gen` (ending every session) in
    /// one statement; `false` if there is no such user.
    fn change_user(
        &self,
        id: &str,
        change: UserChange,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Sets the user's sealed second factor to `new` only if it is still `expected`
    /// (compare-and-set: a code's step or a recovery code is used once, and a
    /// concurrent change wins); `false` if it was not.
    fn swap_second_factor(
        &self,
        id: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Deletes a user and its sessions (its sealed address goes with it).
    fn delete_user(&self, id: &str) -> impl Future<Output = StoreResult<()>> + Send;
    /// A session by the hash of its token.
    fn get_session(
        &self,
        id_hash: Vec<u8>,
    ) -> impl Future<Output = StoreResult<Option<SessionRecord>>> + Send;
    /// Ends a session at `at`; `false` if it was unknown or already ended.
    fn end_session(
        &self,
        id_hash: Vec<u8>,
        at: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Registers a domain with its keys; `Conflict("domain")` if any tenant holds the
    /// name (a name belongs to one tenant of the installation: atomic, a unique index).
    fn insert_domain(&self, domain: DomainRecord) -> impl Future<Output = StoreResult<()>> + Send;
    /// The tenants holding the domain `name`, oldest registration first: none or one,
    /// except in a database from before names were unique that still holds a name in
    /// several tenants (see [`CONTESTED_DOMAINS_SQL`]).
    fn domain_owners(&self, name: &str) -> impl Future<Output = StoreResult<Vec<String>>> + Send;
    /// Removes a tenant's domain and its DKIM keys; `false` if it had none.
    fn delete_domain(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// A tenant's domain with its DKIM keys.
    fn get_domain(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> impl Future<Output = StoreResult<Option<DomainRecord>>> + Send;
    /// All domains of a tenant.
    fn list_domains(
        &self,
        tenant_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<DomainRecord>>> + Send;

    /// Atomically stores messages, their recipients with one event each (`accepted`
    /// for a queued recipient, `suppressed` for a suppressed one; see
    /// [`NewRecipient::status`]), and the idempotency record if any
    /// (`Conflict("idempotency key")` if it exists).
    fn accept(&self, batch: AcceptBatch) -> impl Future<Output = StoreResult<()>> + Send;
    /// A stored idempotency result younger than `since`.
    fn get_idempotency(
        &self,
        tenant_id: &str,
        key_hash: &[u8],
        since: i64,
    ) -> impl Future<Output = StoreResult<Option<IdempotencyRecord>>> + Send;

    /// A message of a tenant with its recipients and events.
    fn get_message(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<MessageRecord>>> + Send;
    /// Messages matching a filter, newest first, each with its recipients and events.
    fn list_messages(
        &self,
        filter: MessageFilter,
    ) -> impl Future<Output = StoreResult<Vec<MessageRecord>>> + Send;
    /// Events matching a filter, in sequence order.
    fn list_events(
        &self,
        filter: EventFilter,
    ) -> impl Future<Output = StoreResult<Vec<EventRecord>>> + Send;

    /// Leases up to `limit` recipients that are due (`next_attempt_at <= now`) and not
    /// leased by anyone, for `node` until `lease_until`.
    fn claim_due(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<DueRecipient>>> + Send;
    /// Extends every lease held by `node`.
    fn renew_leases(
        &self,
        node: &str,
        lease_until: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Drops every lease held by `node` (at start-up, after a crash).
    fn release_leases(&self, node: &str) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Drops `node`'s leases on these recipients (jobs it will not deliver now; the
    /// poller claims them again when due).
    fn release_recipients(
        &self,
        node: &str,
        ids: Vec<String>,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// What delivery needs of a message.
    fn load_content(
        &self,
        message_id: &str,
    ) -> impl Future<Output = StoreResult<Option<MessageContent>>> + Send;
    /// Applies delivery outcomes (status, next attempt, lease release) and appends
    /// their events, atomically. A recipient whose mail was stopped meanwhile
    /// ([`Store::stop_subject_mail`], erasure) keeps its status unless the outcome is
    /// `delivered` (which did happen); the event is recorded either way.
    fn record_deliveries(
        &self,
        updates: Vec<DeliveryUpdate>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// A recipient by id alone (reports name it through VERP); `None` if unknown.
    fn find_recipient(
        &self,
        recipient_id: &str,
    ) -> impl Future<Output = StoreResult<Option<RecipientRef>>> + Send;
    /// Appends each report's event and, if the recipient is `delivered` and the
    /// update says so, changes its status; all in one transaction (reports, opens and
    /// clicks are written in batches). Leases and attempts are untouched.
    fn record_reports(
        &self,
        updates: Vec<ReportUpdate>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Creates or replaces a contact (same tenant and hash); `true` if it was new.
    /// An existing contact keeps its data key and `created_at`.
    fn upsert_contact(&self, c: ContactRecord) -> impl Future<Output = StoreResult<bool>> + Send;
    /// A contact by blind index.
    fn get_contact(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
    ) -> impl Future<Output = StoreResult<Option<ContactRecord>>> + Send;
    /// Sets or lifts (`None`) a contact's processing restriction; `false` if there is
    /// no such contact.
    fn restrict_contact(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
        restricted_at: Option<i64>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Appends a consent record; returns its `seq`.
    fn add_consent(&self, c: ConsentRecord) -> impl Future<Output = StoreResult<i64>> + Send;
    /// A person's consent records, oldest first (the full history).
    fn list_consents(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
    ) -> impl Future<Output = StoreResult<Vec<ConsentRecord>>> + Send;
    /// For a batch's recipients (`hashes`, repeats allowed), in one read: their
    /// suppression entries (as [`Store::find_suppressions`]), which belong to
    /// restricted contacts and, with a `purpose`, which have active consent for it
    /// (their newest record for the purpose is `active`). The acceptance check.
    fn screen_subjects(
        &self,
        tenant_id: &str,
        hashes: Vec<Vec<u8>>,
        purpose: Option<String>,
    ) -> impl Future<Output = StoreResult<ConsentScreen>> + Send;
    /// The data keys of the people with these blind indexes (repeats allowed); a
    /// person without one is left out.
    fn subject_keys(
        &self,
        tenant_id: &str,
        hashes: Vec<Vec<u8>>,
    ) -> impl Future<Output = StoreResult<Vec<SubjectKey>>> + Send;
    /// Stores each candidate as its person's key unless they have one already, and
    /// returns the stored key of every candidate's person (so of concurrent first
    /// writers, all get the one that won). Durable no later than the caller's next
    /// durable write, which is all that data sealed under it needs.
    fn ensure_subject_keys(
        &self,
        tenant_id: &str,
        candidates: Vec<SubjectKey>,
    ) -> impl Future<Output = StoreResult<Vec<SubjectKey>>> + Send;
    /// Erases everything held on one person in a tenant, atomically: their data key;
    /// the contact and
    /// its consents; events with the hash; the address and hash of recipient rows
    /// (not yet final ones become `suppressed`); the content and summary of their
    /// messages; the sealed address of suppression entries (their hashes stay).
    fn erase_subject(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
    ) -> impl Future<Output = StoreResult<Erasure>> + Send;
    /// Stops a person's waiting mail (queued, deferred or suspended, leased or not) of
    /// one stream or of every stream: each recipient gets the stop's final status (no
    /// next attempt, no lease) and an event of the same name, atomically. The engine
    /// checks a job's status before delivering it, so jobs it already holds in memory
    /// are dropped too. Returns how many recipients stopped.
    fn stop_subject_mail(&self, stop: MailStop) -> impl Future<Output = StoreResult<u64>> + Send;
    /// The people (tenant, blind index) with personal rows but no key in
    /// `subject_keys`: after a restore, those erased since the backup was taken (their
    /// key was destroyed, so their rows cannot be read anyway).
    fn unkeyed_subjects(&self) -> impl Future<Output = StoreResult<Vec<(String, Vec<u8>)>>> + Send;

    /// Records a data-subject request; returns its `seq`.
    fn add_request(&self, r: DsarRecord) -> impl Future<Output = StoreResult<i64>> + Send;
    /// Closes an open request (`completed` or `rejected`); `false` if the tenant has
    /// no such open request.
    fn close_request(
        &self,
        tenant_id: &str,
        seq: i64,
        status: DsarStatus,
        at: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// The tenant's requests in `seq` order after `after_seq`; with `open_due_before`,
    /// only open ones due before that time (overdue), at most `limit`.
    fn list_requests(
        &self,
        tenant_id: &str,
        open_due_before: Option<i64>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<DsarRecord>>> + Send;

    /// Records an incident in the breach register; returns its `seq`.
    fn add_incident(&self, r: IncidentRecord) -> impl Future<Output = StoreResult<i64>> + Send;
    /// Records a step on a tenant's incident (once each); `false` if there is no such
    /// incident or the step was recorded already.
    fn step_incident(
        &self,
        tenant_id: &str,
        seq: i64,
        step: IncidentStep,
        at: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// The tenant's incidents in `seq` order after `after_seq`; with `overdue_at`,
    /// only those with a notification still missing past its deadline, at most `limit`.
    fn list_incidents(
        &self,
        tenant_id: &str,
        overdue_at: Option<i64>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<IncidentRecord>>> + Send;

    /// Enforces retention (see [`Retention`]); returns what went. Messages with a
    /// recipient still queued or deferred keep their content and rows.
    fn purge(&self, r: Retention) -> impl Future<Output = StoreResult<Purged>> + Send;

    /// Appends an audit entry, chained to the newest one (see [`audit`]).
    fn append_audit(&self, d: AuditDraft) -> impl Future<Output = StoreResult<AuditRecord>> + Send;
    /// Audit entries in `seq` order after `after_seq`, optionally of one tenant, at
    /// most `limit`.
    fn list_audit(
        &self,
        tenant_id: Option<&str>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<AuditRecord>>> + Send;

    /// Deletes the oldest audit entries created before `before` (at most `limit`, a
    /// leading run in `seq` order) and records the last one deleted as the chain's
    /// anchor ([`Store::audit_anchor`]); returns how many went.
    fn prune_audit(
        &self,
        before: i64,
        limit: usize,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Where the remaining audit chain starts: the `seq` and hash of the last pruned
    /// entry, or `None` if none was ever pruned (the chain starts at genesis).
    fn audit_anchor(&self) -> impl Future<Output = StoreResult<Option<(i64, Vec<u8>)>>> + Send;

    /// What is waiting to be delivered or posted (for metrics and queue views).
    fn backlog(&self) -> impl Future<Output = StoreResult<Backlog>> + Send;

    /// Event counts by hour, event type and bounce reason for a filter.
    fn stats(&self, f: StatsFilter) -> impl Future<Output = StoreResult<Vec<StatRow>>> + Send;
    /// Delivery attempts (delivered, deferred, bounced) per egress source, every
    /// tenant, since `since` (hour buckets): warm-up counts survive restarts.
    fn attempts_by_source(
        &self,
        since: i64,
    ) -> impl Future<Output = StoreResult<Vec<(String, u64)>>> + Send;

    /// Stored streams of a tenant (`None`: of every tenant), by tenant and name.
    fn list_streams(
        &self,
        tenant_id: Option<&str>,
    ) -> impl Future<Output = StoreResult<Vec<StreamRecord>>> + Send;
    /// Adds a stream; `Conflict("stream")` if the tenant has one of that name.
    fn insert_stream(&self, s: StreamRecord) -> impl Future<Output = StoreResult<()>> + Send;
    /// Replaces a stream's settings, adding its row if it has none (a built-in stream).
    fn put_stream_settings(
        &self,
        tenant_id: &str,
        name: &str,
        settings: String,
        at: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Pauses a stream (its waiting mail, leased or not, is `suspended`) or resumes it
    /// (its suspended mail is queued again, due now), and records the stream event,
    /// atomically. `false` (nothing changed) if it already was in that state.
    fn pause_stream(&self, p: StreamPause) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Applies a queue operation to the waiting recipients `sel` selects; returns how
    /// many changed.
    fn queue_action(
        &self,
        sel: QueueSelector,
        action: QueueAction,
        at: i64,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Waiting recipients (queued, deferred, suspended) by tenant, stream, domain and
    /// status.
    fn queue_depth(
        &self,
        tenant_id: Option<&str>,
    ) -> impl Future<Output = StoreResult<Vec<QueueDepth>>> + Send;
    /// The outcomes of the `window` most recently finished (delivered or bounced)
    /// recipients of a tenant's stream, finished after `since`, with how many of them
    /// complained.
    fn stream_outcomes(
        &self,
        tenant_id: &str,
        stream: &str,
        since: i64,
        window: usize,
    ) -> impl Future<Output = StoreResult<StreamOutcomes>> + Send;

    /// Registers a webhook endpoint.
    fn insert_webhook(&self, w: WebhookRecord) -> impl Future<Output = StoreResult<()>> + Send;
    /// A tenant's endpoints (`Some`), or every endpoint (`None`), oldest first.
    fn list_webhooks(
        &self,
        tenant_id: Option<&str>,
    ) -> impl Future<Output = StoreResult<Vec<WebhookRecord>>> + Send;
    /// Replaces an endpoint's URL, filters, secrets and state (matched by tenant and
    /// id); `false` if the tenant has no such endpoint.
    fn update_webhook(&self, w: WebhookRecord) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Removes an endpoint with its deliveries and attempts; `false` if there is none.
    fn delete_webhook(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Queues again, due at `now`, every event of the endpoint's tenant in
    /// `[from, to)` (Unix ms) that matches its filters; returns how many deliveries
    /// were queued.
    fn replay_webhook(
        &self,
        tenant_id: &str,
        id: &str,
        from: i64,
        to: i64,
        now: i64,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Leases up to `limit` due deliveries of enabled endpoints for `node` until
    /// `lease_until`: for each (endpoint, message), only the one with the oldest
    /// event still pending, so one message's events are posted in order.
    fn claim_webhook_deliveries(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<WebhookDelivery>>> + Send;
    /// Applies an attempt's outcome (delivery state, next attempt, lease release, the
    /// endpoint's failure run); `true` if this disabled the endpoint.
    fn finish_webhook_delivery(
        &self,
        outcome: WebhookOutcome,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// An endpoint's attempts, newest first, before `before_seq`, at most `limit`.
    fn list_webhook_attempts(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        before_seq: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<WebhookAttemptRecord>>> + Send;

    /// Adds an address to a tenant's suppression list. An entry is unique per
    /// (tenant, `rcpt_hash`, `stream`), `None` (every stream) being a scope of its
    /// own. Returns `true` if it was added, `false` if that entry already existed
    /// (which is then left unchanged). `s.seq` is ignored: the store assigns it.
    fn add_suppression(
        &self,
        s: SuppressionRecord,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Removes exactly one scope of an address's suppression (`stream` `None` = the
    /// every-stream entry; other scopes stay). An erasure tombstone (reason `erasure`)
    /// is removed only with `erasure`. Returns the number of entries removed (0 or 1).
    fn remove_suppression(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
        stream: Option<&str>,
        erasure: bool,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Every suppression (of any stream scope) of any of `hashes` in the tenant, in
    /// `seq` order: the acceptance check for a whole batch, in one query per at most
    /// a few hundred distinct hashes. The caller decides which scopes apply.
    fn find_suppressions(
        &self,
        tenant_id: &str,
        hashes: Vec<Vec<u8>>,
    ) -> impl Future<Output = StoreResult<Vec<SuppressionRecord>>> + Send;
    /// A tenant's suppressions in `seq` order: only those of `rcpt_hash` if given,
    /// only those with a larger `seq` than `after_seq` (the cursor) if given, at most
    /// `limit` (0 is treated as 1).
    fn list_suppressions(
        &self,
        tenant_id: &str,
        rcpt_hash: Option<Vec<u8>>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<SuppressionRecord>>> + Send;
}

/// A store named by its URL, for whole-store operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl Location {
    /// Parses a `sqlite://PATH` or `postgres://…` store URL.
    pub fn parse(url: &str) -> StoreResult<Location> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Location::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Location::Postgres(url.to_string()))
        } else {
            Err(StoreError::Unavailable(
                "store.url must be sqlite:// or postgres://".into(),
            ))
        }
    }

    /// `sqlite` or `postgres`, as in [`backup::Snapshot::store`].
    pub fn kind(&self) -> &'static str {
        match self {
            Location::Sqlite(_) => "sqlite",
            Location::Postgres(_) => "postgres",
        }
    }
}

/// A store backend chosen at run time.
#[derive(Clone)]
pub enum AnyStore {
    /// Embedded SQLite.
    Sqlite(Arc<sqlite::SqliteStore>),
    /// PostgreSQL.
    Postgres(Arc<postgres::PgStore>),
}

impl AnyStore {
    /// Opens (and migrates) the store named by a `sqlite://PATH` or `postgres://…` URL.
    pub async fn open(url: &str) -> StoreResult<AnyStore> {
        Ok(match Location::parse(url)? {
            Location::Sqlite(path) => {
                AnyStore::Sqlite(Arc::new(sqlite::SqliteStore::open(&path).await?))
            }
            Location::Postgres(url) => {
                AnyStore::Postgres(Arc::new(postgres::PgStore::connect(&url).await?))
            }
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(_) => "sqlite",
            AnyStore::Postgres(_) => "postgres",
        }
    }
}

/// The people with personal rows and no data key (see [`Store::unkeyed_subjects`]),
/// in either dialect.
const UNKEYED_SUBJECTS_SQL: &str = "SELECT s.tenant_id, s.rcpt_hash FROM (\
     SELECT tenant_id, rcpt_hash FROM contacts \
     UNION SELECT tenant_id, rcpt_hash FROM consents \
     UNION SELECT tenant_id, rcpt_hash FROM recipients WHERE length(rcpt_hash) > 0 \
     UNION SELECT tenant_id, rcpt_hash FROM events WHERE length(rcpt_hash) > 0 \
     UNION SELECT tenant_id, rcpt_hash FROM suppressions WHERE address_enc IS NOT NULL \
     UNION SELECT tenant_id, rcpt_hash FROM dsar_requests WHERE length(rcpt_hash) > 0) s \
     WHERE NOT EXISTS (SELECT 1 FROM subject_keys k WHERE k.tenant_id = s.tenant_id \
     AND k.rcpt_hash = s.rcpt_hash)";

macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            AnyStore::Sqlite(s) => s.$method($($arg),*).await,
            AnyStore::Postgres(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store for AnyStore {
    async fn insert_tenant(&self, tenant: TenantRecord) -> StoreResult<()> {
        dispatch!(self.insert_tenant(tenant))
    }
    async fn get_tenant(&self, id: &str) -> StoreResult<Option<TenantRecord>> {
        dispatch!(self.get_tenant(id))
    }
    async fn get_tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
        dispatch!(self.get_tenant_by_name(name))
    }
    async fn list_tenants(&self, cancelled_before: Option<i64>) -> StoreResult<Vec<TenantRecord>> {
        dispatch!(self.list_tenants(cancelled_before))
    }
    async fn set_tenant_cancelled(
        &self,
        tenant_id: &str,
        cancelled_at: Option<i64>,
        at: i64,
    ) -> StoreResult<bool> {
        dispatch!(self.set_tenant_cancelled(tenant_id, cancelled_at, at))
    }
    async fn delete_tenant_data(&self, tenant_id: &str, limit: usize) -> StoreResult<u64> {
        dispatch!(self.delete_tenant_data(tenant_id, limit))
    }
    async fn insert_api_key(&self, key: ApiKeyRecord) -> StoreResult<()> {
        dispatch!(self.insert_api_key(key))
    }
    async fn list_subaccounts(&self, parent_id: &str) -> StoreResult<Vec<TenantRecord>> {
        dispatch!(self.list_subaccounts(parent_id))
    }
    async fn insert_user(&self, user: UserRecord) -> StoreResult<()> {
        dispatch!(self.insert_user(user))
    }
    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        dispatch!(self.get_user(id))
    }
    async fn find_users(&self, email_index: &str) -> StoreResult<Vec<UserRecord>> {
        dispatch!(self.find_users(email_index))
    }
    async fn list_users(&self, tenant_id: &str) -> StoreResult<Vec<UserRecord>> {
        dispatch!(self.list_users(tenant_id))
    }
    async fn reserve_login(
        &self,
        id: &str,
        at: i64,
        policy: LockPolicy,
    ) -> StoreResult<Reservation> {
        dispatch!(self.reserve_login(id, at, policy))
    }
    async fn release_login(
        &self,
        id: &str,
        lock: Option<i64>,
        previous_lock: Option<i64>,
    ) -> StoreResult<()> {
        dispatch!(self.release_login(id, lock, previous_lock))
    }
    async fn open_session(&self, session: SessionRecord) -> StoreResult<bool> {
        dispatch!(self.open_session(session))
    }
    async fn change_user(&self, id: &str, change: UserChange) -> StoreResult<bool> {
        dispatch!(self.change_user(id, change))
    }
    async fn swap_second_factor(
        &self,
        id: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> StoreResult<bool> {
        dispatch!(self.swap_second_factor(id, expected, new))
    }
    async fn delete_user(&self, id: &str) -> StoreResult<()> {
        dispatch!(self.delete_user(id))
    }
    async fn get_session(&self, id_hash: Vec<u8>) -> StoreResult<Option<SessionRecord>> {
        dispatch!(self.get_session(id_hash))
    }
    async fn end_session(&self, id_hash: Vec<u8>, at: i64) -> StoreResult<bool> {
        dispatch!(self.end_session(id_hash, at))
    }
    async fn get_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        dispatch!(self.get_api_key(id))
    }
    async fn touch_api_key(&self, id: &str, at: i64) -> StoreResult<()> {
        dispatch!(self.touch_api_key(id, at))
    }
    async fn list_api_keys(&self, tenant_id: &str) -> StoreResult<Vec<ApiKeyRecord>> {
        dispatch!(self.list_api_keys(tenant_id))
    }
    async fn end_api_key(
        &self,
        tenant_id: &str,
        id: &str,
        at: i64,
        revoke: bool,
    ) -> StoreResult<bool> {
        dispatch!(self.end_api_key(tenant_id, id, at, revoke))
    }
    async fn insert_domain(&self, domain: DomainRecord) -> StoreResult<()> {
        dispatch!(self.insert_domain(domain))
    }
    async fn domain_owners(&self, name: &str) -> StoreResult<Vec<String>> {
        dispatch!(self.domain_owners(name))
    }
    async fn delete_domain(&self, tenant_id: &str, name: &str) -> StoreResult<bool> {
        dispatch!(self.delete_domain(tenant_id, name))
    }
    async fn get_domain(&self, tenant_id: &str, name: &str) -> StoreResult<Option<DomainRecord>> {
        dispatch!(self.get_domain(tenant_id, name))
    }
    async fn list_domains(&self, tenant_id: &str) -> StoreResult<Vec<DomainRecord>> {
        dispatch!(self.list_domains(tenant_id))
    }
    async fn accept(&self, batch: AcceptBatch) -> StoreResult<()> {
        dispatch!(self.accept(batch))
    }
    async fn get_idempotency(
        &self,
        tenant_id: &str,
        key_hash: &[u8],
        since: i64,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        dispatch!(self.get_idempotency(tenant_id, key_hash, since))
    }
    async fn get_message(&self, tenant_id: &str, id: &str) -> StoreResult<Option<MessageRecord>> {
        dispatch!(self.get_message(tenant_id, id))
    }
    async fn list_messages(&self, filter: MessageFilter) -> StoreResult<Vec<MessageRecord>> {
        dispatch!(self.list_messages(filter))
    }
    async fn list_events(&self, filter: EventFilter) -> StoreResult<Vec<EventRecord>> {
        dispatch!(self.list_events(filter))
    }
    async fn claim_due(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<DueRecipient>> {
        dispatch!(self.claim_due(node, now, lease_until, limit))
    }
    async fn renew_leases(&self, node: &str, lease_until: i64) -> StoreResult<()> {
        dispatch!(self.renew_leases(node, lease_until))
    }
    async fn release_leases(&self, node: &str) -> StoreResult<u64> {
        dispatch!(self.release_leases(node))
    }
    async fn release_recipients(&self, node: &str, ids: Vec<String>) -> StoreResult<u64> {
        dispatch!(self.release_recipients(node, ids))
    }
    async fn load_content(&self, message_id: &str) -> StoreResult<Option<MessageContent>> {
        dispatch!(self.load_content(message_id))
    }
    async fn record_deliveries(&self, updates: Vec<DeliveryUpdate>) -> StoreResult<()> {
        dispatch!(self.record_deliveries(updates))
    }
    async fn find_recipient(&self, recipient_id: &str) -> StoreResult<Option<RecipientRef>> {
        dispatch!(self.find_recipient(recipient_id))
    }
    async fn record_reports(&self, updates: Vec<ReportUpdate>) -> StoreResult<()> {
        dispatch!(self.record_reports(updates))
    }
    async fn upsert_contact(&self, c: ContactRecord) -> StoreResult<bool> {
        dispatch!(self.upsert_contact(c))
    }
    async fn get_contact(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
    ) -> StoreResult<Option<ContactRecord>> {
        dispatch!(self.get_contact(tenant_id, rcpt_hash))
    }
    async fn restrict_contact(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
        restricted_at: Option<i64>,
    ) -> StoreResult<bool> {
        dispatch!(self.restrict_contact(tenant_id, rcpt_hash, restricted_at))
    }
    async fn add_consent(&self, c: ConsentRecord) -> StoreResult<i64> {
        dispatch!(self.add_consent(c))
    }
    async fn list_consents(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
    ) -> StoreResult<Vec<ConsentRecord>> {
        dispatch!(self.list_consents(tenant_id, rcpt_hash))
    }
    async fn screen_subjects(
        &self,
        tenant_id: &str,
        hashes: Vec<Vec<u8>>,
        purpose: Option<String>,
    ) -> StoreResult<ConsentScreen> {
        dispatch!(self.screen_subjects(tenant_id, hashes, purpose))
    }
    async fn subject_keys(
        &self,
        tenant_id: &str,
        hashes: Vec<Vec<u8>>,
    ) -> StoreResult<Vec<SubjectKey>> {
        dispatch!(self.subject_keys(tenant_id, hashes))
    }
    async fn ensure_subject_keys(
        &self,
        tenant_id: &str,
        candidates: Vec<SubjectKey>,
    ) -> StoreResult<Vec<SubjectKey>> {
        dispatch!(self.ensure_subject_keys(tenant_id, candidates))
    }
    async fn erase_subject(&self, tenant_id: &str, rcpt_hash: &[u8]) -> StoreResult<Erasure> {
        dispatch!(self.erase_subject(tenant_id, rcpt_hash))
    }
    async fn stop_subject_mail(&self, stop: MailStop) -> StoreResult<u64> {
        dispatch!(self.stop_subject_mail(stop))
    }
    async fn unkeyed_subjects(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        dispatch!(self.unkeyed_subjects())
    }
    async fn add_request(&self, r: DsarRecord) -> StoreResult<i64> {
        dispatch!(self.add_request(r))
    }
    async fn close_request(
        &self,
        tenant_id: &str,
        seq: i64,
        status: DsarStatus,
        at: i64,
    ) -> StoreResult<bool> {
        dispatch!(self.close_request(tenant_id, seq, status, at))
    }
    async fn list_requests(
        &self,
        tenant_id: &str,
        open_due_before: Option<i64>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<DsarRecord>> {
        dispatch!(self.list_requests(tenant_id, open_due_before, after_seq, limit))
    }
    async fn add_incident(&self, r: IncidentRecord) -> StoreResult<i64> {
        dispatch!(self.add_incident(r))
    }
    async fn step_incident(
        &self,
        tenant_id: &str,
        seq: i64,
        step: IncidentStep,
        at: i64,
    ) -> StoreResult<bool> {
        dispatch!(self.step_incident(tenant_id, seq, step, at))
    }
    async fn list_incidents(
        &self,
        tenant_id: &str,
        overdue_at: Option<i64>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<IncidentRecord>> {
        dispatch!(self.list_incidents(tenant_id, overdue_at, after_seq, limit))
    }
    async fn purge(&self, r: Retention) -> StoreResult<Purged> {
        dispatch!(self.purge(r))
    }
    async fn append_audit(&self, d: AuditDraft) -> StoreResult<AuditRecord> {
        dispatch!(self.append_audit(d))
    }
    async fn list_audit(
        &self,
        tenant_id: Option<&str>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<AuditRecord>> {
        dispatch!(self.list_audit(tenant_id, after_seq, limit))
    }
    async fn prune_audit(&self, before: i64, limit: usize) -> StoreResult<u64> {
        dispatch!(self.prune_audit(before, limit))
    }
    async fn audit_anchor(&self) -> StoreResult<Option<(i64, Vec<u8>)>> {
        dispatch!(self.audit_anchor())
    }
    async fn backlog(&self) -> StoreResult<Backlog> {
        dispatch!(self.backlog())
    }
    async fn stats(&self, f: StatsFilter) -> StoreResult<Vec<StatRow>> {
        dispatch!(self.stats(f))
    }
    async fn attempts_by_source(&self, since: i64) -> StoreResult<Vec<(String, u64)>> {
        dispatch!(self.attempts_by_source(since))
    }
    async fn list_streams(&self, tenant_id: Option<&str>) -> StoreResult<Vec<StreamRecord>> {
        dispatch!(self.list_streams(tenant_id))
    }
    async fn insert_stream(&self, s: StreamRecord) -> StoreResult<()> {
        dispatch!(self.insert_stream(s))
    }
    async fn put_stream_settings(
        &self,
        tenant_id: &str,
        name: &str,
        settings: String,
        at: i64,
    ) -> StoreResult<()> {
        dispatch!(self.put_stream_settings(tenant_id, name, settings, at))
    }
    async fn pause_stream(&self, p: StreamPause) -> StoreResult<bool> {
        dispatch!(self.pause_stream(p))
    }
    async fn queue_action(
        &self,
        sel: QueueSelector,
        action: QueueAction,
        at: i64,
    ) -> StoreResult<u64> {
        dispatch!(self.queue_action(sel, action, at))
    }
    async fn queue_depth(&self, tenant_id: Option<&str>) -> StoreResult<Vec<QueueDepth>> {
        dispatch!(self.queue_depth(tenant_id))
    }
    async fn stream_outcomes(
        &self,
        tenant_id: &str,
        stream: &str,
        since: i64,
        window: usize,
    ) -> StoreResult<StreamOutcomes> {
        dispatch!(self.stream_outcomes(tenant_id, stream, since, window))
    }
    async fn insert_webhook(&self, w: WebhookRecord) -> StoreResult<()> {
        dispatch!(self.insert_webhook(w))
    }
    async fn list_webhooks(&self, tenant_id: Option<&str>) -> StoreResult<Vec<WebhookRecord>> {
        dispatch!(self.list_webhooks(tenant_id))
    }
    async fn update_webhook(&self, w: WebhookRecord) -> StoreResult<bool> {
        dispatch!(self.update_webhook(w))
    }
    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        dispatch!(self.delete_webhook(tenant_id, id))
    }
    async fn replay_webhook(
        &self,
        tenant_id: &str,
        id: &str,
        from: i64,
        to: i64,
        now: i64,
    ) -> StoreResult<u64> {
        dispatch!(self.replay_webhook(tenant_id, id, from, to, now))
    }
    async fn claim_webhook_deliveries(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        dispatch!(self.claim_webhook_deliveries(node, now, lease_until, limit))
    }
    async fn finish_webhook_delivery(&self, outcome: WebhookOutcome) -> StoreResult<bool> {
        dispatch!(self.finish_webhook_delivery(outcome))
    }
    async fn list_webhook_attempts(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        before_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<WebhookAttemptRecord>> {
        dispatch!(self.list_webhook_attempts(tenant_id, webhook_id, before_seq, limit))
    }
    async fn add_suppression(&self, s: SuppressionRecord) -> StoreResult<bool> {
        dispatch!(self.add_suppression(s))
    }
    async fn remove_suppression(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
        stream: Option<&str>,
        erasure: bool,
    ) -> StoreResult<u64> {
        dispatch!(self.remove_suppression(tenant_id, rcpt_hash, stream, erasure))
    }
    async fn find_suppressions(
        &self,
        tenant_id: &str,
        hashes: Vec<Vec<u8>>,
    ) -> StoreResult<Vec<SuppressionRecord>> {
        dispatch!(self.find_suppressions(tenant_id, hashes))
    }
    async fn list_suppressions(
        &self,
        tenant_id: &str,
        rcpt_hash: Option<Vec<u8>>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<SuppressionRecord>> {
        dispatch!(self.list_suppressions(tenant_id, rcpt_hash, after_seq, limit))
    }
}
