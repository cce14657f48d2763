//! SQL shared by both backends for queue operations, written once with the
//! dialect's parameter syntax supplied by the caller (`?5` or `$5`, with a `::text`
//! cast where PostgreSQL needs a type).

use postwerk_core::model::EventType;

use crate::model::QueueAction;

/// A backend's parameter syntax: `param(n)` for a value, `text(n)` for an optional
/// text value compared with `IS NULL`.
pub(crate) struct Dialect {
    /// `?n` or `$n`.
    pub param: fn(usize) -> String,
    /// `?n` or `$n::text`.
    pub text: fn(usize) -> String,
}

/// SQLite's.
pub(crate) const SQLITE: Dialect = Dialect {
    param: |n| format!("?{n}"),
    text: |n| format!("?{n}"),
};

/// PostgreSQL's.
pub(crate) const POSTGRES: Dialect = Dialect {
    param: |n| format!("${n}"),
    text: |n| format!("${n}::text"),
};

/// The recipients a selector picks (`r` = recipients; parameters 1 tenant, 2
/// stream, 3 domain, 4 message).
pub(crate) fn selected(d: &Dialect) -> String {
    let (t, s, dm, m) = ((d.text)(1), (d.text)(2), (d.text)(3), (d.text)(4));
    format!(
        "({t} IS NULL OR r.tenant_id = {t}) \
         AND ({s} IS NULL OR r.message_id IN (SELECT m.id FROM messages m WHERE m.stream = {s})) \
         AND ({dm} IS NULL OR r.domain = {dm}) AND ({m} IS NULL OR r.message_id = {m})"
    )
}

/// Suspended recipients that stay held whatever resumes them: those of a cancelled
/// tenant or of a paused stream.
const HELD: &str = "EXISTS (SELECT 1 FROM tenants t WHERE t.id = r.tenant_id AND t.cancelled_at IS NOT NULL) \
     OR EXISTS (SELECT 1 FROM messages m JOIN streams s ON s.tenant_id = m.tenant_id AND s.name = m.stream \
     WHERE m.id = r.message_id AND s.paused_at IS NOT NULL)";

/// What an action does: the rows it takes (besides the selector), their new status
/// and next attempt (parameter 5 is now), and the event recorded for each.
pub(crate) struct ActionSql {
    pub filter: String,
    pub status: &'static str,
    pub next: String,
    pub event: Option<EventType>,
}

/// The SQL pieces of `action`.
pub(crate) fn action(d: &Dialect, action: QueueAction) -> ActionSql {
    let now = (d.param)(5);
    // Waiting and not being delivered right now.
    let idle = format!(
        "r.next_attempt_at IS NOT NULL AND (r.lease_until IS NULL OR r.lease_until < {now})"
    );
    let (filter, status, next, event) = match action {
        QueueAction::Suspend => (
            idle,
            "'suspended'",
            "NULL".to_string(),
            Some(EventType::Suspended),
        ),
        QueueAction::Resume => (
            format!("r.status = 'suspended' AND NOT ({HELD})"),
            "CASE WHEN r.attempts > 0 THEN 'deferred' ELSE 'queued' END",
            now.clone(),
            Some(EventType::Resumed),
        ),
        QueueAction::Retry => (
            format!("{idle} AND r.next_attempt_at > {now}"),
            "r.status",
            now.clone(),
            None,
        ),
        QueueAction::Bounce => (
            format!("(({idle}) OR r.status = 'suspended')"),
            "'bounced'",
            "NULL".to_string(),
            Some(EventType::Bounced),
        ),
    };
    ActionSql {
        filter,
        status,
        next,
        event,
    }
}

/// The final statuses a person's mail is stopped with (see
/// [`crate::PrivacyStore::stop_subject_mail`]). A delivery attempt that was in flight when the
/// mail was stopped cannot make such a recipient waiting again (or bounced, as a whole
/// destination failing would): only a delivery, which did happen, replaces the status.
pub(crate) const STOPPED: &str = "'suppressed', 'restricted', 'no_consent'";

/// The condition under which a delivery outcome (status parameter `status`) is
/// applied to the recipient `r`: it was not stopped meanwhile, or it was delivered all
/// the same.
pub(crate) fn outcome_applies(r: &str, status: &str) -> String {
    format!("({r}.status NOT IN ({STOPPED}) OR {status} = 'delivered')")
}

/// A person's waiting recipients, leased or not (`r` = recipients; parameters 1
/// tenant, 2 blind index, 3 stream or NULL for every stream).
pub(crate) fn subject_waiting(d: &Dialect) -> String {
    let (t, h, s) = ((d.param)(1), (d.param)(2), (d.text)(3));
    format!(
        "r.tenant_id = {t} AND r.rcpt_hash = {h} AND r.status IN ('queued', 'deferred', 'suspended') \
         AND ({s} IS NULL OR r.message_id IN (SELECT m.id FROM messages m WHERE m.stream = {s}))"
    )
}
