//! SQLite queries for users and their sessions.

use rusqlite::{OptionalExtension, params};

use super::writer::Durability;
use super::{SqliteStore, conflict_or, unavailable};
use crate::StoreResult;
use crate::model::{LockPolicy, Reservation, SessionRecord, UserChange, UserRecord};
use crate::sql::Sql;
use crate::tenants::scopes_text;
use crate::users::*;

impl SqliteStore {
    pub(super) async fn insert_user_tx(&self, u: UserRecord) -> StoreResult<()> {
        let scopes = scopes_text(&u.scopes);
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(INSERT_USER.sqlite())
                    .and_then(|mut st| {
                        st.execute(params![
                            u.id,
                            u.tenant_id,
                            u.email_index,
                            u.email_enc,
                            u.password_hash,
                            u.role,
                            scopes,
                            u.totp_enc,
                            u.created_at,
                            u.disabled_at,
                            u.failed_logins,
                            u.locked_until,
                            u.session_gen
                        ])
                    })
                    .map_err(|e| conflict_or(e, "user"))?;
                Ok(())
            })
            .await
    }

    /// The users `select` (one of this area's) finds with `value`.
    pub(super) async fn users_where_q(
        &self,
        select: &'static Sql,
        value: String,
    ) -> StoreResult<Vec<UserRecord>> {
        self.read(move |c| {
            c.prepare_cached(select.sqlite())
                .and_then(|mut st| {
                    st.query_map([value], |r| user_row(r))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(unavailable)
        })
        .await
    }

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

    pub(super) async fn release_login_tx(
        &self,
        id: String,
        lock: Option<i64>,
        previous_lock: Option<i64>,
    ) -> StoreResult<()> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(RELEASE_LOGIN.sqlite())
                    .and_then(|mut st| st.execute(params![id, lock, previous_lock]))
                    .map_err(unavailable)?;
                Ok(())
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

    pub(super) async fn change_user_tx(&self, id: String, change: UserChange) -> StoreResult<bool> {
        self.writer
            .write(Durability::Fsync, move |c| {
                let sql = change_sql(&change).sqlite();
                match change {
                    UserChange::Password(hash) => c.execute(sql, params![id, hash]),
                    UserChange::Disable(at) => c.execute(sql, params![id, at]),
                    UserChange::Logout | UserChange::RemoveSecondFactor => c.execute(sql, [&id]),
                }
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    pub(super) async fn swap_second_factor_tx(
        &self,
        id: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> StoreResult<bool> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(SWAP_SECOND_FACTOR.sqlite())
                    .and_then(|mut st| st.execute(params![id, expected, new]))
                    .map(|n| n > 0)
                    .map_err(unavailable)
            })
            .await
    }

    pub(super) async fn get_session_q(
        &self,
        id_hash: Vec<u8>,
    ) -> StoreResult<Option<SessionRecord>> {
        self.read(move |c| {
            c.prepare_cached(GET_SESSION.sqlite())
                .and_then(|mut st| st.query_row([id_hash], |r| session_row(r)).optional())
                .map_err(unavailable)
        })
        .await
    }

    pub(super) async fn end_session_tx(&self, id_hash: Vec<u8>, at: i64) -> StoreResult<bool> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(END_SESSION.sqlite())
                    .and_then(|mut st| st.execute(params![id_hash, at]))
                    .map(|n| n > 0)
                    .map_err(unavailable)
            })
            .await
    }
}

impl UserStore for SqliteStore {
    async fn insert_user(&self, user: UserRecord) -> StoreResult<()> {
        self.insert_user_tx(user).await
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        Ok(self
            .users_where_q(&USERS_BY_ID, id.to_string())
            .await?
            .pop())
    }

    async fn find_users(&self, email_index: &str) -> StoreResult<Vec<UserRecord>> {
        self.users_where_q(&USERS_BY_EMAIL, email_index.to_string())
            .await
    }

    async fn list_users(&self, tenant_id: &str) -> StoreResult<Vec<UserRecord>> {
        self.users_where_q(&USERS_OF_TENANT, tenant_id.to_string())
            .await
    }

    async fn reserve_login(
        &self,
        id: &str,
        at: i64,
        policy: LockPolicy,
    ) -> StoreResult<Reservation> {
        self.reserve_login_tx(id.to_string(), at, policy).await
    }

    async fn release_login(
        &self,
        id: &str,
        lock: Option<i64>,
        previous_lock: Option<i64>,
    ) -> StoreResult<()> {
        self.release_login_tx(id.to_string(), lock, previous_lock)
            .await
    }

    async fn open_session(&self, session: SessionRecord) -> StoreResult<bool> {
        self.open_session_tx(session).await
    }

    async fn change_user(&self, id: &str, change: UserChange) -> StoreResult<bool> {
        self.change_user_tx(id.to_string(), change).await
    }

    async fn swap_second_factor(
        &self,
        id: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> StoreResult<bool> {
        self.swap_second_factor_tx(id.to_string(), expected, new)
            .await
    }

    async fn delete_user(&self, id: &str) -> StoreResult<()> {
        self.delete_user_tx(id.to_string()).await
    }

    async fn get_session(&self, id_hash: Vec<u8>) -> StoreResult<Option<SessionRecord>> {
        self.get_session_q(id_hash).await
    }

    async fn end_session(&self, id_hash: Vec<u8>, at: i64) -> StoreResult<bool> {
        self.end_session_tx(id_hash, at).await
    }
}
