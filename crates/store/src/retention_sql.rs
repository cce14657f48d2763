//! The retention purge's statements, written once for both backends with `$N`
//! parameters (see `crate::sql`). Every statement takes `$1` now, `$2` the shortest
//! period of its kind (so the time indexes narrow the scan), `$3` the default period
//! and `$4` the row limit. The periods of tenants and streams come from a
//! `retention_policy` table that the backend fills for each purge, `''` standing for
//! every tenant or every stream.

use crate::model::{Retention, RetentionKind, RetentionPolicy};

/// The policy table's columns (a temporary table in both backends).
pub(crate) const POLICY_TABLE: &str = "retention_policy (tenant_id TEXT NOT NULL, \
     stream TEXT NOT NULL, content BIGINT, events BIGINT, webhook_logs BIGINT, \
     PRIMARY KEY (tenant_id, stream))";

/// A policy as a row of the policy table.
pub(crate) fn policy_row(p: &RetentionPolicy) -> (String, String, [Option<i64>; 3]) {
    (
        p.tenant_id.clone().unwrap_or_default(),
        p.stream.clone().unwrap_or_default(),
        [p.content, p.events, p.webhook_logs],
    )
}

/// The four parameters of a statement of `kind`.
pub(crate) fn params(r: &Retention, kind: RetentionKind) -> [i64; 4] {
    [
        r.now,
        r.shortest(kind),
        r.default.of(kind),
        i64::try_from(r.limit.max(1)).unwrap_or(i64::MAX),
    ]
}

/// True when `at` (a time column of a row of `tenant` and `stream`, SQL
/// expressions) is older than the row's period of `kind`.
fn expired(kind: RetentionKind, at: &str, tenant: &str, stream: &str) -> String {
    let column = kind.column();
    let period = |t: &str, s: &str| {
        format!(
            "(SELECT p.{column} FROM retention_policy p WHERE p.tenant_id = {t} AND p.stream = {s})"
        )
    };
    format!(
        "{at} < CAST($1 AS BIGINT) - CAST($2 AS BIGINT) \
         AND {at} < CAST($1 AS BIGINT) - coalesce({}, {}, {}, CAST($3 AS BIGINT))",
        period(tenant, stream),
        period(tenant, "''"),
        period("''", stream),
    )
}

/// Messages with a recipient still to be tried keep their content and rows.
const SETTLED: &str = "NOT EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id \
                       AND r.status IN ('queued', 'deferred'))";

/// The stream of event `e`: its own, else its message's, else `''`.
const EVENT_STREAM: &str =
    "coalesce(e.stream, (SELECT m.stream FROM messages m WHERE m.id = e.message_id), '')";

/// The stream of webhook delivery `w`: its message's, else `''`.
const DELIVERY_STREAM: &str =
    "coalesce((SELECT m.stream FROM messages m WHERE m.id = w.message_id), '')";

sql! {
    /// Clears the content and envelope of settled messages past their content period.
    CONTENT = "UPDATE messages SET content_enc = NULL, mail_from_enc = NULL WHERE id IN (\
         SELECT m.id FROM messages m WHERE m.content_enc IS NOT NULL AND {} AND {SETTLED} LIMIT $4)",
        expired(RetentionKind::Content, "m.created_at", "m.tenant_id", "m.stream");
    /// Deletes events past their period (that of their message's stream).
    EVENTS = "DELETE FROM events WHERE seq IN (SELECT e.seq FROM events e WHERE {} LIMIT $4)",
        expired(RetentionKind::Events, "e.at", "e.tenant_id", EVENT_STREAM);
    /// Selects the ids of settled messages past their events period (to delete with
    /// their recipients and tags).
    MESSAGES = "SELECT m.id FROM messages m WHERE {} AND {SETTLED} LIMIT $4",
        expired(RetentionKind::Events, "m.created_at", "m.tenant_id", "m.stream");
    /// The condition on `webhook_deliveries` of the deliveries past their period.
    WEBHOOK_DELIVERIES = "seq IN (SELECT w.seq FROM webhook_deliveries w WHERE {} LIMIT $4)",
        expired(RetentionKind::WebhookLogs, "w.created_at", "w.tenant_id", DELIVERY_STREAM);
}
