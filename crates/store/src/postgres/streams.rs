//! PostgreSQL queries for streams (settings, pause) and queue operations (their
//! statements are the queue area's, in `crate::queue_sql`).

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::error::{PgResult, conflict, pg};
use super::*;
use super::{EVENTS_LOCK, PgStore};
use crate::model::*;
use crate::queue_sql::{APPLY_LOCKED, HOLD_LOCKED, STOP_SUBJECT_LOCKED, action_event};
use crate::streams::*;
use postwerk_core::model::EventType;

/// Applies `action` to the selected recipients in `tx` (locking them in id order, as
/// `record_deliveries` does), recording its event for each; returns how many changed.
pub(super) async fn apply(
    tx: &deadpool_postgres::Transaction<'_>,
    sel: &QueueSelector,
    action: QueueAction,
    at: i64,
) -> PgResult<u64> {
    const OP: &str = "queue_action";
    let params: [&(dyn ToSql + Sync); 5] = [
        &sel.tenant_id,
        &sel.stream,
        &sel.domain,
        &sel.message_id,
        &at,
    ];
    let update = tx
        .prepare_cached(APPLY_LOCKED.of(action).pg())
        .await
        .map_err(pg(OP))?;
    let rows = tx.query(&update, &params).await.map_err(pg(OP))?;
    if let Some(event) = action_event(action) {
        record_events(tx, OP, &rows, event, at).await?;
    }
    Ok(rows.len() as u64)
}

/// Records `event` at `at` for each updated recipient row (`tenant_id`, `message_id`,
/// `id`, `rcpt_hash`), in id order.
async fn record_events(
    tx: &deadpool_postgres::Transaction<'_>,
    op: &'static str,
    rows: &[Row],
    event: EventType,
    at: i64,
) -> PgResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut cols: (Vec<String>, Vec<String>, Vec<String>, Vec<Vec<u8>>) = Default::default();
    for r in rows {
        cols.0.push(Columns::get(r, "tenant_id")?);
        cols.1.push(Columns::get(r, "message_id")?);
        cols.2.push(Columns::get(r, "id")?);
        cols.3.push(Columns::get(r, "rcpt_hash")?);
    }
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&EVENTS_LOCK])
        .await
        .map_err(pg(op))?;
    tx.execute(
        "INSERT INTO events (tenant_id, message_id, recipient_id, rcpt_hash, type, at) \
         SELECT e.t, e.m, e.r, e.h, $5, $6 \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[]) AS e(t, m, r, h) ORDER BY e.r",
        &[&cols.0, &cols.1, &cols.2, &cols.3, &event.as_str(), &at],
    )
    .await
    .map_err(pg(op))?;
    Ok(())
}

/// Holds the selected recipients' waiting mail in `tx`, leased or not (`suspended`,
/// no due time, lease cleared): the engine drops the jobs it already has.
pub(super) async fn hold(
    tx: &deadpool_postgres::Transaction<'_>,
    op: &'static str,
    sel: &QueueSelector,
    at: i64,
) -> PgResult<u64> {
    tx.execute(
        HOLD_LOCKED.pg(),
        &[
            &sel.tenant_id,
            &sel.stream,
            &sel.domain,
            &sel.message_id,
            &at,
        ],
    )
    .await
    .map_err(pg(op))
}

impl PgStore {
    /// Stops a person's waiting mail (see [`crate::PrivacyStore::stop_subject_mail`]),
    /// locking the recipients in id order as `record_deliveries` does.
    pub(super) async fn stop_subject_mail_tx(&self, stop: &MailStop) -> PgResult<u64> {
        const OP: &str = "stop_subject_mail";
        let event = stop.event()?;
        if stop.rcpt_hash.is_empty() {
            return Ok(0);
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let update = tx
            .prepare_cached(STOP_SUBJECT_LOCKED.pg())
            .await
            .map_err(pg(OP))?;
        let rows = tx
            .query(
                &update,
                &[
                    &stop.tenant_id,
                    &stop.rcpt_hash,
                    &stop.stream,
                    &stop.status.as_str(),
                    &stop.at,
                ],
            )
            .await
            .map_err(pg(OP))?;
        record_events(&tx, OP, &rows, event, stop.at).await?;
        tx.commit().await.map_err(pg(OP))?;
        Ok(rows.len() as u64)
    }

    pub(super) async fn pause_stream_tx(&self, p: &StreamPause) -> PgResult<bool> {
        const OP: &str = "pause_stream";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        // Create the row if needed, then lock it: concurrent pauses serialise here.
        tx.execute(
            "INSERT INTO streams (tenant_id, name, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant_id, name) DO NOTHING",
            &[&p.tenant_id, &p.stream, &p.initial_settings, &p.at],
        )
        .await
        .map_err(conflict(OP, "stream"))?;
        let row = tx
            .query_one(
                "SELECT paused_at FROM streams WHERE tenant_id = $1 AND name = $2 FOR UPDATE",
                &[&p.tenant_id, &p.stream],
            )
            .await
            .map_err(pg(OP))?;
        if Columns::get::<Option<i64>>(&row, "paused_at")?.is_some() == p.reason.is_some() {
            return Ok(false);
        }
        let paused_at = p.reason.as_ref().map(|_| p.at);
        tx.execute(
            "UPDATE streams SET paused_at = $3, pause_reason = $4, updated_at = $5, \
             resumed_at = CASE WHEN $3::int8 IS NULL THEN $5 ELSE resumed_at END \
             WHERE tenant_id = $1 AND name = $2",
            &[&p.tenant_id, &p.stream, &paused_at, &p.reason, &p.at],
        )
        .await
        .map_err(pg(OP))?;
        let sel = QueueSelector {
            tenant_id: Some(p.tenant_id.clone()),
            stream: Some(p.stream.clone()),
            ..QueueSelector::default()
        };
        let event = match p.reason {
            Some(_) => {
                hold(&tx, OP, &sel, p.at).await?;
                EventType::StreamPaused
            }
            None => {
                apply(&tx, &sel, QueueAction::Resume, p.at).await?;
                EventType::StreamResumed
            }
        };
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&EVENTS_LOCK])
            .await
            .map_err(pg(OP))?;
        tx.execute(
            "INSERT INTO events (tenant_id, message_id, recipient_id, rcpt_hash, type, at, detail_enc, stream) \
             VALUES ($1, '', '', ''::bytea, $2, $3, $4, $5)",
            &[&p.tenant_id, &event.as_str(), &p.at, &p.detail_enc, &p.stream],
        )
        .await
        .map_err(pg(OP))?;
        tx.commit().await.map_err(pg(OP))?;
        Ok(true)
    }

    pub(super) async fn queue_action_tx(
        &self,
        sel: &QueueSelector,
        action: QueueAction,
        at: i64,
    ) -> PgResult<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg("queue_action"))?;
        let n = apply(&tx, sel, action, at).await?;
        tx.commit().await.map_err(pg("queue_action"))?;
        Ok(n)
    }
}

impl StreamStore for PgStore {
    async fn pause_stream(&self, p: StreamPause) -> StoreResult<bool> {
        let p = &p;
        retrying(|| self.pause_stream_tx(p)).await
    }
}
