//! PostgreSQL queries for users and their sessions.

use tokio_postgres::types::ToSql;

use super::PgStore;
use super::error::{PgResult, conflict, pg};
use super::*;
use crate::model::{LockPolicy, Reservation, SessionRecord};
use crate::row::Columns;
use crate::users::*;

impl PgStore {
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
}

impl UserStore for PgStore {
    async fn reserve_login(
        &self,
        id: &str,
        at: i64,
        policy: LockPolicy,
    ) -> StoreResult<Reservation> {
        retrying(|| self.reserve_login_tx(id, at, policy)).await
    }

    async fn open_session(&self, session: SessionRecord) -> StoreResult<bool> {
        let session = &session;
        retrying(|| self.open_session_tx(session)).await
    }

    async fn delete_user(&self, id: &str) -> StoreResult<()> {
        retrying(|| self.delete_user_tx(id)).await
    }
}
