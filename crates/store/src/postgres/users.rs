//! PostgreSQL queries for users and their sessions.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::error::{PgResult, corrupt, pg};
use super::{PgStore, col, scopes_text};
use crate::model::{SessionRecord, UserRecord};

fn user_row(r: &Row) -> PgResult<UserRecord> {
    Ok(UserRecord {
        id: col(r, "id")?,
        tenant_id: col(r, "tenant_id")?,
        email_index: col(r, "email_index")?,
        email_enc: col(r, "email_enc")?,
        password_hash: col(r, "password_hash")?,
        role: col(r, "role")?,
        scopes: postwerk_core::model::parse_scopes(col(r, "scopes")?)
            .map_err(|_| corrupt("scopes"))?,
        totp_enc: col(r, "totp_enc")?,
        created_at: col(r, "created_at")?,
        disabled_at: col(r, "disabled_at")?,
        failed_logins: col(r, "failed_logins")?,
        locked_until: col(r, "locked_until")?,
        sessions_valid_after: col(r, "sessions_valid_after")?,
    })
}

fn session_row(r: &Row) -> PgResult<SessionRecord> {
    Ok(SessionRecord {
        id_hash: col(r, "id_hash")?,
        user_id: col(r, "user_id")?,
        tenant_id: col(r, "tenant_id")?,
        csrf_hash: col(r, "csrf_hash")?,
        created_at: col(r, "created_at")?,
        expires_at: col(r, "expires_at")?,
        revoked_at: col(r, "revoked_at")?,
    })
}

impl PgStore {
    pub(super) async fn insert_user_q(&self, u: &UserRecord) -> PgResult<()> {
        let sql = "INSERT INTO users (id, tenant_id, email_index, email_enc, password_hash, role, scopes, \
                   totp_enc, created_at, disabled_at, failed_logins, locked_until, sessions_valid_after) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
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
            &u.sessions_valid_after,
        ];
        self.exec("insert_user", Some("user"), sql, &params)
            .await
            .map(drop)
    }

    /// The users matching `column = value` (`id`, `email_index` or `tenant_id`).
    pub(super) async fn users_where_q(
        &self,
        column: &'static str,
        value: &str,
    ) -> PgResult<Vec<UserRecord>> {
        const OP: &str = "users";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT * FROM users WHERE {column} = $1 ORDER BY created_at, id"
            ))
            .await
            .map_err(pg(OP))?;
        let rows = client.query(&stmt, &[&value]).await.map_err(pg(OP))?;
        rows.iter().map(user_row).collect()
    }

    pub(super) async fn delete_user_tx(&self, id: &str) -> PgResult<()> {
        const OP: &str = "delete_user";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        for sql in [
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            tx.execute(sql, &[&id]).await.map_err(pg(OP))?;
        }
        tx.commit().await.map_err(pg(OP))
    }

    pub(super) async fn update_user_q(&self, u: &UserRecord) -> PgResult<()> {
        let sql = "UPDATE users SET password_hash = $2, role = $3, scopes = $4, totp_enc = $5, \
                   disabled_at = $6, failed_logins = $7, locked_until = $8, sessions_valid_after = $9 \
                   WHERE id = $1";
        let scopes = scopes_text(&u.scopes);
        let params: [&(dyn ToSql + Sync); 9] = [
            &u.id,
            &u.password_hash,
            &u.role,
            &scopes,
            &u.totp_enc,
            &u.disabled_at,
            &u.failed_logins,
            &u.locked_until,
            &u.sessions_valid_after,
        ];
        self.exec("update_user", None, sql, &params).await.map(drop)
    }

    pub(super) async fn insert_session_q(&self, s: &SessionRecord) -> PgResult<()> {
        // Sessions that ended more than a day ago go with each new one.
        let cutoff = s.created_at - 86_400_000;
        self.exec(
            "insert_session",
            None,
            "DELETE FROM sessions WHERE expires_at < $1",
            &[&cutoff],
        )
        .await?;
        let sql = "INSERT INTO sessions (id_hash, user_id, tenant_id, csrf_hash, created_at, expires_at, \
                   revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let params: [&(dyn ToSql + Sync); 7] = [
            &s.id_hash,
            &s.user_id,
            &s.tenant_id,
            &s.csrf_hash,
            &s.created_at,
            &s.expires_at,
            &s.revoked_at,
        ];
        self.exec("insert_session", Some("session"), sql, &params)
            .await
            .map(drop)
    }

    pub(super) async fn get_session_q(&self, id_hash: &[u8]) -> PgResult<Option<SessionRecord>> {
        let row = self
            .one_opt(
                "get_session",
                "SELECT * FROM sessions WHERE id_hash = $1",
                &[&id_hash],
            )
            .await?;
        row.as_ref().map(session_row).transpose()
    }

    pub(super) async fn end_session_q(&self, id_hash: &[u8], at: i64) -> PgResult<bool> {
        let sql = "UPDATE sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL";
        Ok(self
            .exec("end_session", None, sql, &[&id_hash, &at])
            .await?
            > 0)
    }
}
