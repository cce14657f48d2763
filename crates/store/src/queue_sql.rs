//! The queue area's statements, written once for both backends with PostgreSQL's
//! `$N` parameters (SQLite's `?N` form is derived, see `crate::sql`). Where the
//! backends truly differ, one text takes a dialect part (`lock`: PostgreSQL's row
//! locks, which SQLite's single writer needs none of) or a statement serves one
//! backend only, as its doc says; PostgreSQL's `UNNEST` batch inserts stay in
//! `postgres/queue.rs`, SQLite's multi-row inserts in `sqlite/queue.rs`.

use postwerk_core::model::EventType;

use crate::model::{EventFilter, MessageFilter, QueueAction};
use crate::queue::{CONTENT_COLS, EVENT_COLS, IDEMPOTENCY_COLS, MESSAGE_HEAD_COLS, RECIPIENT_COLS};
use crate::run::Arg;
use crate::sql::Sql;

/// PostgreSQL's row locks on the recipients a subquery picks, taken in id order (so
/// writers that update several recipients cannot deadlock).
const LOCK_IN_ORDER: &str = " ORDER BY r.id FOR UPDATE";

/// The final statuses a person's mail is stopped with (see
/// [`crate::PrivacyStore::stop_subject_mail`]). A delivery attempt that was in flight when the
/// mail was stopped cannot make such a recipient waiting again (or bounced, as a whole
/// destination failing would): only a delivery, which did happen, replaces the status.
const STOPPED: &str = "'suppressed', 'restricted', 'no_consent'";

/// The condition under which a delivery outcome (status `status`, an SQL expression)
/// is applied to the recipient `r`: it was not stopped meanwhile, or it was delivered
/// all the same.
fn outcome_applies(status: &str) -> String {
    format!("(r.status NOT IN ({STOPPED}) OR {status} = 'delivered')")
}

/// Recipients of streams ahead of bulk (priority below the default 5, such as
/// `transactional`): claimed before the rest, through their own partial index
/// (`recipients_urgent_due`), so that their retries and scheduled sends never wait
/// behind a broadcast's backlog.
const URGENT: &str = " AND priority < 5";

/// The claim of due recipients (see [`crate::QueueStore::claim_due`]), of urgent
/// ones only when `urgent`, with `lock` after the selection's `LIMIT`. MATERIALIZED makes the limited selection run exactly
/// once. `$1` node, `$2` lease end, `$3` now, `$4` limit.
fn claim_sql(lock: &str, urgent: bool) -> String {
    let only = if urgent { URGENT } else { "" };
    format!(
        "WITH due AS MATERIALIZED (\
           SELECT id FROM recipients WHERE next_attempt_at <= $3{only} \
           AND (lease_until IS NULL OR lease_until < $3) \
           ORDER BY next_attempt_at LIMIT $4{lock}) \
         UPDATE recipients SET lease_node = $1, lease_until = $2 \
         WHERE id IN (SELECT id FROM due) \
         RETURNING id, message_id, tenant_id, rcpt_hash, address_enc, domain, attempts, \
           (SELECT m.expires_at FROM messages m WHERE m.id = recipients.message_id) AS expires_at"
    )
}

/// What renewing a lease sets (`$2` the new end).
const RENEW: &str = "lease_until = $2";

/// What dropping a lease sets.
const RELEASE: &str = "lease_node = NULL, lease_until = NULL";

/// `set` applied to the recipients leased by node `$1` that also meet `cond` (`""`
/// for all), their rows first locked in id order (PostgreSQL; SQLite's single writer
/// updates them directly).
fn leases_locked(set: &str, cond: &str) -> String {
    format!(
        "UPDATE recipients SET {set} WHERE id IN (\
           SELECT r.id FROM recipients r WHERE r.lease_node = $1{cond}{LOCK_IN_ORDER})"
    )
}

sql! {
    /// A stored idempotency result: `$1` tenant, `$2` key hash, `$3` the oldest
    /// creation time still valid.
    GET_IDEMPOTENCY = "SELECT {IDEMPOTENCY_COLS} FROM idempotency \
         WHERE tenant_id = $1 AND key_hash = $2 AND created_at >= $3";
    /// An idempotency record, `$1`..`$4` in [`IDEMPOTENCY_COLS`] order; it replaces a
    /// stored one only if that was created before `$5` (expired), so no row changes
    /// when the key is taken.
    INSERT_IDEMPOTENCY = "INSERT INTO idempotency ({IDEMPOTENCY_COLS}) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, key_hash) DO UPDATE SET created_at = excluded.created_at, \
         response_enc = excluded.response_enc WHERE idempotency.created_at < $5";
    /// Message `$1` of tenant `$2`, without recipients and events.
    MESSAGE_HEAD = "SELECT {MESSAGE_HEAD_COLS} FROM messages WHERE id = $1 AND tenant_id = $2";
    /// The recipients of message `$1` of tenant `$2`, by id.
    MESSAGE_RECIPIENTS = "SELECT {RECIPIENT_COLS} FROM recipients \
         WHERE message_id = $1 AND tenant_id = $2 ORDER BY id";
    /// The events of message `$1` of tenant `$2`, in sequence order.
    MESSAGE_EVENTS = "SELECT {EVENT_COLS} FROM events \
         WHERE message_id = $1 AND tenant_id = $2 ORDER BY seq";
    /// The claim, with PostgreSQL's row locks: SKIP LOCKED makes concurrent claimers on
    /// other nodes pass over each other's rows instead of waiting, and never get the
    /// same recipient (a row leased by a committed claim fails the lease test on
    /// re-check).
    CLAIM_DUE_LOCKED = "{}", claim_sql(" FOR UPDATE SKIP LOCKED", false);
    /// The claim, for SQLite's single writer.
    CLAIM_DUE = "{}", claim_sql("", false);
    /// [`CLAIM_DUE_LOCKED`] of urgent recipients only (see [`URGENT`]).
    CLAIM_URGENT_LOCKED = "{}", claim_sql(" FOR UPDATE SKIP LOCKED", true);
    /// [`CLAIM_DUE`] of urgent recipients only.
    CLAIM_URGENT = "{}", claim_sql("", true);
    /// Node `$1`'s leases extended to `$2`, its rows locked in id order (PostgreSQL).
    RENEW_LEASES_LOCKED = "{}", leases_locked(RENEW, "");
    /// Node `$1`'s leases extended to `$2` (SQLite).
    RENEW_LEASES = "UPDATE recipients SET {RENEW} WHERE lease_node = $1";
    /// Node `$1`'s leases dropped, its rows locked in id order (PostgreSQL).
    RELEASE_LEASES_LOCKED = "{}", leases_locked(RELEASE, "");
    /// Node `$1`'s leases dropped (SQLite).
    RELEASE_LEASES = "UPDATE recipients SET {RELEASE} WHERE lease_node = $1";
    /// Node `$1`'s lease on recipient `$2` dropped (SQLite, once per recipient).
    RELEASE_RECIPIENT = "UPDATE recipients SET {RELEASE} WHERE id = $2 AND lease_node = $1";
    /// Node `$1`'s leases on the recipients of array `$2` dropped, their rows locked in
    /// id order (PostgreSQL).
    RELEASE_RECIPIENTS_LOCKED = "{}", leases_locked(RELEASE, " AND r.id = ANY($2)");
    /// What delivery needs of message `$1`.
    LOAD_CONTENT = "SELECT {CONTENT_COLS} FROM messages WHERE id = $1";
    /// One delivery outcome (SQLite, once per update): recipient `$1` takes status
    /// `$2`, next attempt `$3` and time `$4`, one more attempt, and loses its lease.
    RECORD_DELIVERY = "UPDATE recipients AS r SET status = $2, next_attempt_at = $3, \
         attempts = attempts + 1, lease_node = NULL, lease_until = NULL, updated_at = $4 \
         WHERE id = $1 AND {}", outcome_applies("$2");
    /// The rows of the recipients of array `$1` locked in id order, before
    /// [`RECORD_DELIVERIES_BATCH`] (PostgreSQL).
    LOCK_RECIPIENTS = "SELECT id FROM recipients WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE";
    /// Delivery outcomes as one update (PostgreSQL): arrays `$1` recipient, `$2`
    /// status, `$3` next attempt, `$4` time, `$5` number of attempts made.
    RECORD_DELIVERIES_BATCH = "UPDATE recipients r SET status = u.status, \
         next_attempt_at = u.next_attempt_at, attempts = r.attempts + u.n, lease_node = NULL, \
         lease_until = NULL, updated_at = u.at \
         FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[]) \
         AS u(id, status, next_attempt_at, at, n) WHERE r.id = u.id AND {}",
         outcome_applies("u.status");
    /// Recipient `$1` with its message's tenant and stream.
    FIND_RECIPIENT = "SELECT r.id, r.message_id, r.tenant_id, m.stream, r.rcpt_hash, \
         r.address_enc, r.status FROM recipients r JOIN messages m ON m.id = r.message_id \
         WHERE r.id = $1";
    /// A report's status `$2` at `$3` for recipient `$1`, if it is delivered.
    REPORT_STATUS = "UPDATE recipients SET status = $2, updated_at = $3 \
         WHERE id = $1 AND status = 'delivered'";
    /// The delivery queue by stream.
    BACKLOG = "SELECT m.stream AS stream, count(*) AS recipients, min(m.created_at) AS oldest \
         FROM recipients r JOIN messages m ON m.id = r.message_id \
         WHERE r.next_attempt_at IS NOT NULL GROUP BY m.stream ORDER BY m.stream";
    /// Webhook deliveries still pending.
    WEBHOOK_BACKLOG = "SELECT count(*) AS pending FROM webhook_deliveries \
         WHERE next_attempt_at IS NOT NULL";
    /// Waiting recipients grouped for `queue_depth`: every tenant's (`$1` NULL) or
    /// tenant `$1`'s.
    /// Two branches, each of which the partial index of its kind answers (`recipients_due`,
    /// `recipients_suspended`), so the cost is what waits, not every recipient ever sent.
    QUEUE_DEPTH = "SELECT tenant_id, stream, domain, status, count(*) AS recipients, \
         min(created_at) AS oldest FROM (\
         SELECT r.tenant_id, m.stream, r.domain, r.status, m.created_at \
         FROM recipients r JOIN messages m ON m.id = r.message_id \
         WHERE r.next_attempt_at IS NOT NULL AND (CAST($1 AS TEXT) IS NULL OR r.tenant_id = $1) \
         UNION ALL \
         SELECT r.tenant_id, m.stream, r.domain, r.status, m.created_at \
         FROM recipients r JOIN messages m ON m.id = r.message_id \
         WHERE r.status = 'suspended' AND r.next_attempt_at IS NULL \
         AND (CAST($1 AS TEXT) IS NULL OR r.tenant_id = $1)) waiting \
         GROUP BY tenant_id, stream, domain, status ORDER BY tenant_id, stream, domain, status";
}

/// A filtered query: its text with `$N` parameters (the same for every filter with
/// the same fields set) and its values, `args[i]` binding `$(i+1)`.
pub(crate) struct Filtered {
    /// The statement.
    pub text: String,
    /// Its parameters, in order.
    pub args: Vec<Arg>,
}

impl Filtered {
    /// `head` (whose only parameter is `$1`, `first`), then each set filter's clause
    /// (its parameter written `{}`, which may repeat) joined with `AND`, then `tail`
    /// followed by the limit's parameter.
    fn build(
        head: &str,
        first: Arg,
        filters: impl IntoIterator<Item = (&'static str, Option<Arg>)>,
        tail: &str,
        limit: usize,
    ) -> Filtered {
        let mut text = head.to_string();
        let mut args = vec![first];
        for (clause, value) in filters {
            if let Some(value) = value {
                args.push(value);
                let param = format!("${}", args.len());
                text.push_str(" AND ");
                text.push_str(&clause.replace("{}", &param));
            }
        }
        args.push(Arg::from(limit.max(1)));
        text.push_str(&format!(" {tail} ${}", args.len()));
        Filtered { text, args }
    }
}

/// The ids of the messages `f` selects, newest first (rows with column `id`).
pub(crate) fn messages_query(f: &MessageFilter) -> Filtered {
    Filtered::build(
        "SELECT id FROM messages WHERE tenant_id = $1",
        Arg::from(&f.tenant_id),
        [
            ("stream = {}", f.stream.as_deref().map(Arg::from)),
            (
                "id IN (SELECT message_id FROM message_tags WHERE tenant_id = $1 AND tag_hash = {})",
                f.tag_hash.as_deref().map(Arg::from),
            ),
            (
                "id IN (SELECT message_id FROM recipients WHERE tenant_id = $1 AND rcpt_hash = {})",
                f.rcpt_hash.as_deref().map(Arg::from),
            ),
            ("created_at >= {}", f.since.map(Arg::from)),
            ("created_at < {}", f.until.map(Arg::from)),
            ("id < {}", f.before_id.as_deref().map(Arg::from)),
        ],
        "ORDER BY id DESC LIMIT",
        f.limit,
    )
}

/// The events `f` selects, in sequence order (rows of [`crate::model::EventRecord`]).
pub(crate) fn events_query(f: &EventFilter) -> Filtered {
    Filtered::build(
        &format!("SELECT {EVENT_COLS} FROM events WHERE tenant_id = $1"),
        Arg::from(&f.tenant_id),
        [
            ("message_id = {}", f.message_id.as_deref().map(Arg::from)),
            ("rcpt_hash = {}", f.rcpt_hash.as_deref().map(Arg::from)),
            ("type = {}", f.event_type.map(|t| Arg::from(t.as_str()))),
            ("at >= {}", f.since.map(Arg::from)),
            ("at < {}", f.until.map(Arg::from)),
            (
                "(stream = {} OR message_id IN (SELECT id FROM messages WHERE tenant_id = $1 AND stream = {}))",
                f.stream.as_deref().map(Arg::from),
            ),
            (
                "message_id IN (SELECT message_id FROM message_tags WHERE tenant_id = $1 AND tag_hash = {})",
                f.tag_hash.as_deref().map(Arg::from),
            ),
            ("seq > {}", f.after_seq.map(Arg::from)),
        ],
        "ORDER BY seq LIMIT",
        f.limit,
    )
}

/// The recipients a [`crate::model::QueueSelector`] picks (`r` = recipients; `$1`
/// tenant, `$2` stream, `$3` domain, `$4` message, each NULL for any).
const SELECTED: &str = "(CAST($1 AS TEXT) IS NULL OR r.tenant_id = $1) \
     AND (CAST($2 AS TEXT) IS NULL OR r.message_id IN \
       (SELECT m.id FROM messages m WHERE m.stream = $2)) \
     AND (CAST($3 AS TEXT) IS NULL OR r.domain = $3) \
     AND (CAST($4 AS TEXT) IS NULL OR r.message_id = $4)";

/// Suspended recipients that stay held whatever resumes them: those of a cancelled
/// tenant or of a paused stream.
const HELD: &str = "EXISTS (SELECT 1 FROM tenants t WHERE t.id = r.tenant_id AND t.cancelled_at IS NOT NULL) \
     OR EXISTS (SELECT 1 FROM messages m JOIN streams s ON s.tenant_id = m.tenant_id AND s.name = m.stream \
     WHERE m.id = r.message_id AND s.paused_at IS NOT NULL)";

/// Waiting and not being delivered right now (`$5` now).
const IDLE: &str =
    "r.next_attempt_at IS NOT NULL AND (r.lease_until IS NULL OR r.lease_until < $5)";

/// What `action` does: the rows it takes (besides the selector), their new status
/// and next attempt (`$5` is now).
fn action_parts(action: QueueAction) -> (String, &'static str, &'static str) {
    match action {
        QueueAction::Suspend => (IDLE.to_string(), "'suspended'", "NULL"),
        QueueAction::Resume => (
            format!("r.status = 'suspended' AND NOT ({HELD})"),
            "CASE WHEN r.attempts > 0 THEN 'deferred' ELSE 'queued' END",
            "$5",
        ),
        QueueAction::Retry => (
            format!("{IDLE} AND r.next_attempt_at > $5"),
            "r.status",
            "$5",
        ),
        QueueAction::Bounce => (
            format!("(({IDLE}) OR r.status = 'suspended')"),
            "'bounced'",
            "NULL",
        ),
        QueueAction::Cancel => (
            format!("{IDLE} AND r.status = 'queued' AND r.attempts = 0 AND r.next_attempt_at > $5"),
            "'cancelled'",
            "NULL",
        ),
    }
}

/// The event `action` records for each recipient it changes, if any.
pub(crate) fn action_event(action: QueueAction) -> Option<EventType> {
    match action {
        QueueAction::Suspend => Some(EventType::Suspended),
        QueueAction::Resume => Some(EventType::Resumed),
        QueueAction::Retry => None,
        QueueAction::Bounce => Some(EventType::Bounced),
        QueueAction::Cancel => Some(EventType::Cancelled),
    }
}

/// The actions in the order of a [`PerAction`]'s statements.
const ACTIONS: [QueueAction; 5] = [
    QueueAction::Suspend,
    QueueAction::Resume,
    QueueAction::Retry,
    QueueAction::Bounce,
    QueueAction::Cancel,
];

/// One statement per [`QueueAction`], each built once.
pub(crate) struct PerAction([Sql; 5]);

impl PerAction {
    /// The statement of `action`.
    pub(crate) fn of(&self, action: QueueAction) -> &Sql {
        &self.0[match action {
            QueueAction::Suspend => 0,
            QueueAction::Resume => 1,
            QueueAction::Retry => 2,
            QueueAction::Bounce => 3,
            QueueAction::Cancel => 4,
        }]
    }
}

/// Declares a [`PerAction`] whose statement for each action is `build(action)`.
macro_rules! per_action {
    ($(#[$doc:meta])* $name:ident = $build:ident) => {
        $(#[$doc])*
        pub(crate) static $name: PerAction = PerAction([
            Sql::new(|| $build(ACTIONS[0])),
            Sql::new(|| $build(ACTIONS[1])),
            Sql::new(|| $build(ACTIONS[2])),
            Sql::new(|| $build(ACTIONS[3])),
            Sql::new(|| $build(ACTIONS[4])),
        ]);
    };
}

/// PostgreSQL's queue action: the selected rows locked in id order, updated, and
/// returned (`tenant_id`, `message_id`, `id`, `rcpt_hash`) for their events.
fn apply_locked(action: QueueAction) -> String {
    let (filter, status, next) = action_parts(action);
    format!(
        "WITH picked AS (SELECT r.id FROM recipients r WHERE {SELECTED} AND {filter}{LOCK_IN_ORDER}) \
         UPDATE recipients r SET status = {status}, next_attempt_at = {next}, lease_node = NULL, \
           lease_until = NULL, updated_at = $5 FROM picked WHERE r.id = picked.id \
         RETURNING r.tenant_id, r.message_id, r.id, r.rcpt_hash"
    )
}

/// SQLite's queue action: the selected rows updated.
fn apply(action: QueueAction) -> String {
    let (filter, status, next) = action_parts(action);
    format!(
        "UPDATE recipients AS r SET status = {status}, next_attempt_at = {next}, lease_node = NULL, \
         lease_until = NULL, updated_at = $5 WHERE {SELECTED} AND {filter}"
    )
}

/// SQLite's events of a queue action, inserted before [`apply`]'s update (from the
/// same rows); an action without an event inserts none.
fn apply_events(action: QueueAction) -> String {
    let (filter, _, _) = action_parts(action);
    let event = action_event(action).map_or("", EventType::as_str);
    format!(
        "INSERT INTO events (tenant_id, message_id, recipient_id, rcpt_hash, type, at) \
         SELECT r.tenant_id, r.message_id, r.id, r.rcpt_hash, '{event}', $5 FROM recipients r \
         WHERE {SELECTED} AND {filter} ORDER BY r.id"
    )
}

per_action! {
    /// A queue action with PostgreSQL's row locks, returning the changed rows; `$1`..`$4`
    /// the selector (see [`SELECTED`]), `$5` now.
    APPLY_LOCKED = apply_locked
}
per_action! {
    /// A queue action (SQLite); `$1`..`$4` the selector, `$5` now.
    APPLY = apply
}
per_action! {
    /// The events of a queue action (SQLite, before [`APPLY`]); `$1`..`$4` the
    /// selector, `$5` now.
    APPLY_EVENTS = apply_events
}

/// A person's waiting recipients, leased or not (`r` = recipients; `$1` tenant, `$2`
/// blind index, `$3` stream or NULL for every stream).
const SUBJECT_WAITING: &str = "r.tenant_id = $1 AND r.rcpt_hash = $2 \
     AND r.status IN ('queued', 'deferred', 'suspended') \
     AND (CAST($3 AS TEXT) IS NULL OR r.message_id IN (SELECT m.id FROM messages m WHERE m.stream = $3))";

sql! {
    /// The selected recipients' waiting mail held (stream pause), leased or not, their
    /// rows locked in id order (PostgreSQL); `$1`..`$4` the selector, `$5` now.
    HOLD_LOCKED = "UPDATE recipients SET status = 'suspended', next_attempt_at = NULL, \
         lease_node = NULL, lease_until = NULL, updated_at = $5 WHERE id IN \
         (SELECT r.id FROM recipients r WHERE {SELECTED} \
          AND r.next_attempt_at IS NOT NULL{LOCK_IN_ORDER})";
    /// The selected recipients' waiting mail held (SQLite); `$1`..`$4` the selector,
    /// `$5` now.
    HOLD = "UPDATE recipients AS r SET status = 'suspended', next_attempt_at = NULL, \
         lease_node = NULL, lease_until = NULL, updated_at = $5 \
         WHERE {SELECTED} AND r.next_attempt_at IS NOT NULL";
    /// A person's waiting mail stopped with status `$4` at `$5`, the rows locked in id
    /// order and returned for their events (PostgreSQL); `$1`..`$3` as in
    /// [`SUBJECT_WAITING`].
    STOP_SUBJECT_LOCKED = "WITH picked AS (SELECT r.id FROM recipients r WHERE {SUBJECT_WAITING}{LOCK_IN_ORDER}) \
         UPDATE recipients r SET status = $4, next_attempt_at = NULL, lease_node = NULL, \
           lease_until = NULL, updated_at = $5 FROM picked WHERE r.id = picked.id \
         RETURNING r.tenant_id, r.message_id, r.id, r.rcpt_hash";
    /// The events (type `$5`, at `$6`) of stopping a person's waiting mail (SQLite,
    /// before [`STOP_SUBJECT`]); `$1`..`$3` as in [`SUBJECT_WAITING`], `$4` unused.
    STOP_SUBJECT_EVENTS = "INSERT INTO events (tenant_id, message_id, recipient_id, rcpt_hash, type, at) \
         SELECT r.tenant_id, r.message_id, r.id, r.rcpt_hash, $5, $6 FROM recipients r \
         WHERE {SUBJECT_WAITING} ORDER BY r.id";
    /// A person's waiting mail stopped with status `$4` at `$6` (SQLite); `$1`..`$3` as
    /// in [`SUBJECT_WAITING`], `$5` unused.
    STOP_SUBJECT = "UPDATE recipients AS r SET status = $4, next_attempt_at = NULL, lease_node = NULL, \
         lease_until = NULL, updated_at = $6 WHERE {SUBJECT_WAITING}";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_number_their_parameters_in_order() {
        let f = MessageFilter {
            tenant_id: "t".into(),
            stream: Some("s".into()),
            since: Some(5),
            limit: 0,
            ..MessageFilter::default()
        };
        let q = messages_query(&f);
        assert_eq!(
            q.text,
            "SELECT id FROM messages WHERE tenant_id = $1 AND stream = $2 \
             AND created_at >= $3 ORDER BY id DESC LIMIT $4"
        );
        assert_eq!(q.args, args!["t", "s", 5i64, 1usize]);
        let f = EventFilter {
            tenant_id: "t".into(),
            stream: Some("s".into()),
            limit: 10,
            ..EventFilter::default()
        };
        let q = events_query(&f);
        assert!(q.text.ends_with(
            "(stream = $2 OR message_id IN (SELECT id FROM messages WHERE tenant_id = $1 \
             AND stream = $2)) ORDER BY seq LIMIT $3"
        ));
        assert_eq!(q.args.len(), 3);
    }

    #[test]
    fn each_action_has_its_own_statement() {
        for action in ACTIONS {
            let (_, status, _) = action_parts(action);
            assert!(APPLY.of(action).pg().contains(status));
            assert!(APPLY_LOCKED.of(action).pg().contains(status));
            if let Some(event) = action_event(action) {
                let event = format!("'{}'", event.as_str());
                assert!(APPLY_EVENTS.of(action).pg().contains(&event));
            }
        }
    }
}
