//! PostgreSQL queries for users and their sessions.

use tokio_postgres::types::ToSql;

use super::PgStore;
use super::error::{PgResult, conflict, pg};
use super::*;
use crate::model::{LockPolicy, Reservation, SessionRecord, UserChange, UserRecord};
use crate::row::Columns;
use crate::sql::Sql;
use crate::tenants::scopes_text;
use crate::users::*;

impl PgStore {
    pub(super) async fn insert_user_q(&self, u: &UserRecord) -> PgResult<()> {
        let scopes = scopes_text(&u.scopes);
        let params: [&(dyn ToSql + Sync); 13] = [
            &u.id,
            &u.tenant_id,
            &u.email_index,
            &u.email_enc,
            &u.password_hash,
            &u.role,
            &scopes,
            &u.totp_enc,
            &u.created_at,
            &u.disabled_at,
            &u.failed_logins,
            &u.locked_until,
            &u.session_gen,
        ];
        self.exec("insert_user", Some("user"), INSERT_USER.pg(), &params)
            .await
            .map(drop)
    }

    /// The users `select` (one of this area's) finds with `value`.
    pub(super) async fn users_where_q(
        &self,
        select: &'static Sql,
        value: &str,
    ) -> PgResult<Vec<UserRecord>> {
        const OP: &str = "users";
        let client = self.client().await?;
        let stmt = client.prepare_cached(select.pg()).await.map_err(pg(OP))?;
        let rows = client.query(&stmt, &[&value]).await.map_err(pg(OP))?;
        rows.iter().map(user_row).collect()
    }

    pub(super) async fn delete_user_tx(&self, id: &str) -> PgResult<()> {
        const OP: &str = "delete_user";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        for sql in [&DELETE_USER_SESSIONS, &DELETE_USER] {
            tx.execute(sql.pg(), &[&id]).await.map_err(pg(OP))?;
        }
        tx.commit().await.map_err(pg(OP))
    }

    pub(super) async fn reserve_login_tx(
        &self,
        id: &str,
        at: i64,
        p: LockPolicy,
    ) -> PgResult<Reservation> {
        const OP: &str = "reserve_login";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let Some(row) = tx
            .query_opt(LOCKED_UNTIL_FOR_UPDATE.pg(), &[&id])
            .await
            .map_err(pg(OP))?
        else {
            return Ok(Reservation::NoUser);
        };
        let previous_lock: Option<i64> = Columns::get(&row, "locked_until")?;
        if let Some(until) = previous_lock.filter(|&t| t > at) {
            return Ok(Reservation::Locked(until));
        }
        let row = tx
            .query_one(
                COUNT_FAILURE_PG.pg(),
                &[
                    &id,
                    &at,
                    &p.failures_before_lock,
                    &p.first_lock_ms,
                    &p.max_lock_ms,
                ],
            )
            .await
            .map_err(pg(OP))?;
        tx.commit().await.map_err(pg(OP))?;
        let (count, locked_until) = failure_count_row(&row)?;
        Ok(Reservation::Counted {
            lock: locked_until.filter(|_| count >= p.failures_before_lock),
            previous_lock,
        })
    }

    pub(super) async fn release_login_q(
        &self,
        id: &str,
        lock: Option<i64>,
        previous_lock: Option<i64>,
    ) -> PgResult<()> {
        let params: [&(dyn ToSql + Sync); 3] = [&id, &lock, &previous_lock];
        self.exec("release_login", None, RELEASE_LOGIN.pg(), &params)
            .await
            .map(drop)
    }

    pub(super) async fn open_session_tx(&self, s: &SessionRecord) -> PgResult<bool> {
        const OP: &str = "open_session";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        // The row stays locked until commit: an admin's change waits for the session
        // to be stored and then ends it, or came first and the sign-in opens nothing.
        let current = tx
            .execute(SIGNED_IN.pg(), &[&s.user_id, &s.user_gen])
            .await
            .map_err(pg(OP))?;
        if current == 0 {
            return Ok(false);
        }
        // Sessions that ended more than a day ago go with each new one.
        let cutoff = s.created_at - 86_400_000;
        tx.execute(DELETE_ENDED_SESSIONS.pg(), &[&cutoff])
            .await
            .map_err(pg(OP))?;
        let params: [&(dyn ToSql + Sync); 8] = [
            &s.id_hash,
            &s.user_id,
            &s.tenant_id,
            &s.csrf_hash,
            &s.created_at,
            &s.expires_at,
            &s.revoked_at,
            &s.user_gen,
        ];
        tx.execute(INSERT_SESSION.pg(), &params)
            .await
            .map_err(conflict(OP, "session"))?;
        tx.commit().await.map_err(pg(OP))?;
        Ok(true)
    }

    pub(super) async fn change_user_q(&self, id: &str, change: &UserChange) -> PgResult<bool> {
        let sql = change_sql(change).pg();
        let n = match change {
            UserChange::Password(hash) => self.exec("change_user", None, sql, &[&id, hash]).await?,
            UserChange::Disable(at) => self.exec("change_user", None, sql, &[&id, at]).await?,
            UserChange::Logout | UserChange::RemoveSecondFactor => {
                self.exec("change_user", None, sql, &[&id]).await?
            }
        };
        Ok(n > 0)
    }

    pub(super) async fn swap_second_factor_q(
        &self,
        id: &str,
        expected: &Option<Vec<u8>>,
        new: &Option<Vec<u8>>,
    ) -> PgResult<bool> {
        let params: [&(dyn ToSql + Sync); 3] = [&id, expected, new];
        Ok(self
            .exec("swap_second_factor", None, SWAP_SECOND_FACTOR.pg(), &params)
            .await?
            > 0)
    }

    pub(super) async fn get_session_q(&self, id_hash: &[u8]) -> PgResult<Option<SessionRecord>> {
        let row = self
            .one_opt("get_session", GET_SESSION.pg(), &[&id_hash])
            .await?;
        row.as_ref().map(session_row).transpose()
    }

    pub(super) async fn end_session_q(&self, id_hash: &[u8], at: i64) -> PgResult<bool> {
        Ok(self
            .exec("end_session", None, END_SESSION.pg(), &[&id_hash, &at])
            .await?
            > 0)
    }
}

impl UserStore for PgStore {
    async fn insert_user(&self, user: UserRecord) -> StoreResult<()> {
        let user = &user;
        retrying(|| self.insert_user_q(user)).await
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        Ok(retrying(|| self.users_where_q(&USERS_BY_ID, id))
            .await?
            .pop())
    }

    async fn find_users(&self, email_index: &str) -> StoreResult<Vec<UserRecord>> {
        retrying(|| self.users_where_q(&USERS_BY_EMAIL, email_index)).await
    }

    async fn list_users(&self, tenant_id: &str) -> StoreResult<Vec<UserRecord>> {
        retrying(|| self.users_where_q(&USERS_OF_TENANT, tenant_id)).await
    }

    async fn reserve_login(
        &self,
        id: &str,
        at: i64,
        policy: LockPolicy,
    ) -> StoreResult<Reservation> {
        retrying(|| self.reserve_login_tx(id, at, policy)).await
    }

    async fn release_login(
        &self,
        id: &str,
        lock: Option<i64>,
        previous_lock: Option<i64>,
    ) -> StoreResult<()> {
        retrying(|| self.release_login_q(id, lock, previous_lock)).await
    }

    async fn open_session(&self, session: SessionRecord) -> StoreResult<bool> {
        let session = &session;
        retrying(|| self.open_session_tx(session)).await
    }

    async fn change_user(&self, id: &str, change: UserChange) -> StoreResult<bool> {
        let change = &change;
        retrying(|| self.change_user_q(id, change)).await
    }

    async fn swap_second_factor(
        &self,
        id: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> StoreResult<bool> {
        let (expected, new) = (&expected, &new);
        retrying(|| self.swap_second_factor_q(id, expected, new)).await
    }

    async fn delete_user(&self, id: &str) -> StoreResult<()> {
        retrying(|| self.delete_user_tx(id)).await
    }

    async fn get_session(&self, id_hash: Vec<u8>) -> StoreResult<Option<SessionRecord>> {
        let id_hash = &id_hash;
        retrying(|| self.get_session_q(id_hash)).await
    }

    async fn end_session(&self, id_hash: Vec<u8>, at: i64) -> StoreResult<bool> {
        let id_hash = &id_hash;
        retrying(|| self.end_session_q(id_hash, at)).await
    }
}
