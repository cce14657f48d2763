//! SQLite queries for users and their sessions.

use rusqlite::{OptionalExtension, params};

use super::writer::Durability;
use super::{SqliteStore, conflict_or, unavailable};
use crate::StoreResult;
use crate::model::{LockPolicy, Reservation, SessionRecord};
use crate::users::*;

impl SqliteStore {
    pub(super) async fn delete_user_tx(&self, id: String) -> StoreResult<()> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.execute(DELETE_USER_SESSIONS.sqlite(), params![id])
                    .and_then(|_| c.execute(DELETE_USER.sqlite(), params![id]))
                    .map_err(unavailable)?;
                Ok(())
            })
            .await
    }

    pub(super) async fn reserve_login_tx(
        &self,
        id: String,
        at: i64,
        p: LockPolicy,
    ) -> StoreResult<Reservation> {
        self.writer
            .write(Durability::Fsync, move |c| {
                let previous: Option<Option<i64>> = c
                    .prepare_cached(LOCKED_UNTIL.sqlite())
                    .and_then(|mut st| st.query_row([&id], |r| r.get("locked_until")).optional())
                    .map_err(unavailable)?;
                let Some(previous_lock) = previous else {
                    return Ok(Reservation::NoUser);
                };
                if let Some(until) = previous_lock.filter(|&t| t > at) {
                    return Ok(Reservation::Locked(until));
                }
                let (count, locked_until): (i64, Option<i64>) = c
                    .prepare_cached(COUNT_FAILURE_SQLITE.sqlite())
                    .and_then(|mut st| {
                        st.query_row(
                            params![
                                id,
                                at,
                                p.failures_before_lock,
                                p.first_lock_ms,
                                p.max_lock_ms
                            ],
                            |r| failure_count_row(r),
                        )
                    })
                    .map_err(unavailable)?;
                Ok(Reservation::Counted {
                    lock: locked_until.filter(|_| count >= p.failures_before_lock),
                    previous_lock,
                })
            })
            .await
    }

    pub(super) async fn open_session_tx(&self, s: SessionRecord) -> StoreResult<bool> {
        self.writer
            .write(Durability::Fsync, move |c| {
                let current = c
                    .prepare_cached(SIGNED_IN.sqlite())
                    .and_then(|mut st| st.execute(params![s.user_id, s.user_gen]))
                    .map_err(unavailable)?;
                if current == 0 {
                    return Ok(false);
                }
                // Sessions that ended more than a day ago go with each new one.
                c.prepare_cached(DELETE_ENDED_SESSIONS.sqlite())
                    .and_then(|mut st| st.execute([s.created_at - 86_400_000]))
                    .map_err(unavailable)?;
                c.prepare_cached(INSERT_SESSION.sqlite())
                    .and_then(|mut st| {
                        st.execute(params![
                            s.id_hash,
                            s.user_id,
                            s.tenant_id,
                            s.csrf_hash,
                            s.created_at,
                            s.expires_at,
                            s.revoked_at,
                            s.user_gen
                        ])
                    })
                    .map_err(|e| conflict_or(e, "session"))?;
                Ok(true)
            })
            .await
    }
}

impl UserStore for SqliteStore {
    async fn reserve_login(
        &self,
        id: &str,
        at: i64,
        policy: LockPolicy,
    ) -> StoreResult<Reservation> {
        self.reserve_login_tx(id.to_string(), at, policy).await
    }

    async fn open_session(&self, session: SessionRecord) -> StoreResult<bool> {
        self.open_session_tx(session).await
    }

    async fn delete_user(&self, id: &str) -> StoreResult<()> {
        self.delete_user_tx(id.to_string()).await
    }
}
