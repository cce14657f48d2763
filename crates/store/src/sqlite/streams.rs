//! SQLite queries for streams (settings, pause) and queue operations (their
//! statements are the queue area's, in `crate::queue_sql`).

use rusqlite::{Connection, OptionalExtension, params};

use super::writer::Durability;
use super::{SqliteStore, unavailable};
use crate::StoreResult;
use crate::model::*;
use crate::queue_sql::{
    APPLY, APPLY_EVENTS, HOLD, STOP_SUBJECT, STOP_SUBJECT_EVENTS, action_event,
};
use crate::streams::*;
use postwerk_core::model::EventType;

/// Applies `action` to the selected recipients (inside the writer's transaction),
/// recording its event for each; returns how many changed.
pub(super) fn apply(
    c: &Connection,
    sel: &QueueSelector,
    action: QueueAction,
    at: i64,
) -> StoreResult<u64> {
    let args = params![sel.tenant_id, sel.stream, sel.domain, sel.message_id, at];
    if action_event(action).is_some() {
        c.prepare_cached(APPLY_EVENTS.of(action).sqlite())
            .and_then(|mut st| st.execute(args))
            .map_err(unavailable)?;
    }
    c.prepare_cached(APPLY.of(action).sqlite())
        .and_then(|mut st| st.execute(args))
        .map(|n| n as u64)
        .map_err(unavailable)
}

/// Holds the selected recipients' waiting mail, leased or not (`suspended`, no due
/// time, lease cleared): the engine drops the jobs it already has.
pub(super) fn hold(c: &Connection, sel: &QueueSelector, at: i64) -> StoreResult<u64> {
    c.prepare_cached(HOLD.sqlite())
        .and_then(|mut st| {
            st.execute(params![
                sel.tenant_id,
                sel.stream,
                sel.domain,
                sel.message_id,
                at
            ])
        })
        .map(|n| n as u64)
        .map_err(unavailable)
}

/// Stops a person's waiting mail (inside the writer's transaction; see
/// [`crate::PrivacyStore::stop_subject_mail`]); returns how many recipients stopped.
fn stop_subject_mail(c: &Connection, stop: &MailStop) -> StoreResult<u64> {
    let event = stop.event()?;
    if stop.rcpt_hash.is_empty() {
        return Ok(0);
    }
    let args = params![
        stop.tenant_id,
        stop.rcpt_hash,
        stop.stream,
        stop.status.as_str(),
        event.as_str(),
        stop.at
    ];
    c.prepare_cached(STOP_SUBJECT_EVENTS.sqlite())
        .and_then(|mut st| st.execute(args))
        .map_err(unavailable)?;
    c.prepare_cached(STOP_SUBJECT.sqlite())
        .and_then(|mut st| st.execute(args))
        .map(|n| n as u64)
        .map_err(unavailable)
}

impl SqliteStore {
    pub(super) async fn stop_subject_mail_tx(&self, stop: MailStop) -> StoreResult<u64> {
        self.writer
            .write(Durability::Fsync, move |c| stop_subject_mail(c, &stop))
            .await
    }

    pub(super) async fn pause_stream_tx(&self, p: StreamPause) -> StoreResult<bool> {
        self.writer
            .write(Durability::Fsync, move |c| {
                let paused: Option<Option<i64>> = c
                    .prepare_cached(
                        "SELECT paused_at FROM streams WHERE tenant_id = ?1 AND name = ?2",
                    )
                    .and_then(|mut st| {
                        st.query_row([&p.tenant_id, &p.stream], |r| r.get(0))
                            .optional()
                    })
                    .map_err(unavailable)?;
                if paused.flatten().is_some() == p.reason.is_some() {
                    return Ok(false);
                }
                c.prepare_cached(
                    "INSERT INTO streams (tenant_id, name, settings, paused_at, pause_reason, resumed_at, \
                     created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?7, ?6, ?6) \
                     ON CONFLICT (tenant_id, name) DO UPDATE SET paused_at = excluded.paused_at, \
                     pause_reason = excluded.pause_reason, \
                     resumed_at = coalesce(excluded.resumed_at, streams.resumed_at), \
                     updated_at = excluded.updated_at",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        p.tenant_id,
                        p.stream,
                        p.initial_settings,
                        p.reason.as_ref().map(|_| p.at),
                        p.reason,
                        p.at,
                        p.reason.is_none().then_some(p.at)
                    ])
                })
                .map_err(unavailable)?;
                let sel = QueueSelector {
                    tenant_id: Some(p.tenant_id.clone()),
                    stream: Some(p.stream.clone()),
                    ..QueueSelector::default()
                };
                let event = match p.reason {
                    Some(_) => {
                        hold(c, &sel, p.at)?;
                        EventType::StreamPaused
                    }
                    None => {
                        apply(c, &sel, QueueAction::Resume, p.at)?;
                        EventType::StreamResumed
                    }
                };
                c.prepare_cached(
                    "INSERT INTO events (tenant_id, message_id, recipient_id, rcpt_hash, type, at, \
                     detail_enc, stream) VALUES (?1, '', '', x'', ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut st| {
                    st.execute(params![p.tenant_id, event.as_str(), p.at, p.detail_enc, p.stream])
                })
                .map_err(unavailable)?;
                Ok(true)
            })
            .await
    }

    pub(super) async fn queue_action_tx(
        &self,
        sel: QueueSelector,
        action: QueueAction,
        at: i64,
    ) -> StoreResult<u64> {
        self.writer
            .write(Durability::Fsync, move |c| apply(c, &sel, action, at))
            .await
    }
}

impl StreamStore for SqliteStore {
    async fn pause_stream(&self, p: StreamPause) -> StoreResult<bool> {
        self.pause_stream_tx(p).await
    }
}
