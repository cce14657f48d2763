//! The store's tenants area: tenants, their sub-accounts and their API keys.

use std::sync::LazyLock;

use crate::model::*;
use crate::row::Columns;
use crate::run::FromRow;
use crate::sql::sqlite_params;
use crate::{StoreResult, TENANT_TABLES};

/// The columns a [`TenantRecord`] is read from.
pub(crate) const TENANT_COLS: &str = "id, name, wrapped_key, created_at, parent_id, cancelled_at";

/// The columns an [`ApiKeyRecord`] is read from.
pub(crate) const API_KEY_COLS: &str = "id, tenant_id, name, secret_hash, scopes, created_at, \
     expires_at, revoked_at, last_used_at, allowed_ips, rate_limit";

/// A tenant row.
impl FromRow for TenantRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(TenantRecord {
            id: r.get("id")?,
            name: r.get("name")?,
            wrapped_key: r.get("wrapped_key")?,
            created_at: r.get("created_at")?,
            parent_id: r.get("parent_id")?,
            cancelled_at: r.get("cancelled_at")?,
        })
    }
}

/// An API key row. Scopes that do not parse and a rate limit that is not a `u32` make
/// the row corrupt.
impl FromRow for ApiKeyRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        let scopes: String = r.get("scopes")?;
        let rate_limit: Option<i64> = r.get("rate_limit")?;
        Ok(ApiKeyRecord {
            id: r.get("id")?,
            tenant_id: r.get("tenant_id")?,
            name: r.get("name")?,
            secret_hash: r.get("secret_hash")?,
            scopes: postwerk_core::model::parse_scopes(&scopes)
                .map_err(|_| R::corrupt("scopes"))?,
            created_at: r.get("created_at")?,
            expires_at: r.get("expires_at")?,
            revoked_at: r.get("revoked_at")?,
            last_used_at: r.get("last_used_at")?,
            allowed_ips: split_list(r.get::<Option<String>>("allowed_ips")?.as_deref()),
            rate_limit: rate_limit
                .map(|n| u32::try_from(n).map_err(|_| R::corrupt("rate_limit")))
                .transpose()?,
        })
    }
}

sql! {
    /// Tenants, oldest first: every one (`$1` NULL) or those cancelled before `$1`.
    LIST_TENANTS = "SELECT {TENANT_COLS} FROM tenants WHERE CAST($1 AS BIGINT) IS NULL \
         OR cancelled_at < $1 ORDER BY created_at, id";
    /// Cancels tenant `$1` and its sub-accounts not cancelled yet at `$2`.
    CANCEL_TENANTS = "UPDATE tenants SET cancelled_at = $2 WHERE (id = $1 OR parent_id = $1) \
         AND cancelled_at IS NULL RETURNING id";
    /// Reactivates tenant `$1` and its sub-accounts cancelled with it (`$2`) or after.
    REACTIVATE_TENANTS = "UPDATE tenants SET cancelled_at = NULL WHERE id = $1 \
         OR (parent_id = $1 AND cancelled_at >= $2) RETURNING id";
    /// The last step of deleting a tenant.
    DELETE_TENANT = "DELETE FROM tenants WHERE id = $1";
    /// A new tenant, in [`TENANT_COLS`] order.
    INSERT_TENANT = "INSERT INTO tenants ({TENANT_COLS}) VALUES ($1, $2, $3, $4, $5, $6)";
    /// A tenant by id.
    GET_TENANT = "SELECT {TENANT_COLS} FROM tenants WHERE id = $1";
    /// A tenant's sub-accounts, oldest first.
    LIST_SUBACCOUNTS = "SELECT {TENANT_COLS} FROM tenants WHERE parent_id = $1 ORDER BY created_at, id";
    /// A tenant by name.
    GET_TENANT_BY_NAME = "SELECT {TENANT_COLS} FROM tenants WHERE name = $1";
    /// A new API key.
    INSERT_API_KEY = "INSERT INTO api_keys (id, tenant_id, name, secret_hash, scopes, created_at, \
         expires_at, allowed_ips, rate_limit) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    /// An API key by id.
    GET_API_KEY = "SELECT {API_KEY_COLS} FROM api_keys WHERE id = $1";
    /// Records a key's last use.
    TOUCH_API_KEY = "UPDATE api_keys SET last_used_at = $2 WHERE id = $1";
    /// A tenant's keys, oldest first.
    LIST_API_KEYS = "SELECT {API_KEY_COLS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id";
    /// Revokes tenant `$1`'s key `$2` at `$3`.
    REVOKE_API_KEY = "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 \
         AND revoked_at IS NULL";
    /// Tenant `$1`'s cancellation time, with PostgreSQL's row lock.
    CANCELLED_AT_FOR_UPDATE = "{}", cancelled_at_sql(" FOR UPDATE");
    /// Tenant `$1`'s cancellation time, for SQLite's single writer.
    CANCELLED_AT = "{}", cancelled_at_sql("");
    /// Brings tenant `$1`'s key `$2` to expire at `$3` at the latest.
    EXPIRE_API_KEY = "UPDATE api_keys SET expires_at = CASE WHEN expires_at IS NOT NULL \
         AND expires_at < $3 THEN expires_at ELSE $3 END \
         WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL";
}

/// The scopes as stored: their names, comma-separated (both backends).
pub(crate) fn scopes_text(scopes: &[postwerk_core::model::Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The statements of [`TenantStore::delete_tenant_data`] that empty [`TENANT_TABLES`],
/// in order (`$1` tenant, `$2` limit). Webhook attempts are found through their
/// endpoint: the table has no tenant index.
fn tenant_data_sql() -> Vec<String> {
    TENANT_TABLES
        .iter()
        .map(|&(table, key)| {
            let rows = if table == "webhook_attempts" {
                "SELECT a.seq FROM webhook_attempts a JOIN webhooks w ON w.id = a.webhook_id \
                 WHERE w.tenant_id = $1"
                    .to_string()
            } else {
                format!("SELECT {key} FROM {table} WHERE tenant_id = $1")
            };
            format!("DELETE FROM {table} WHERE tenant_id = $1 AND ({key}) IN ({rows} LIMIT $2)")
        })
        .collect()
}

/// [`tenant_data_sql`] in PostgreSQL, made once.
pub(crate) static TENANT_DATA_PG: LazyLock<Vec<String>> = LazyLock::new(tenant_data_sql);

/// [`tenant_data_sql`] in SQLite, made once.
pub(crate) static TENANT_DATA_SQLITE: LazyLock<Vec<String>> =
    LazyLock::new(|| TENANT_DATA_PG.iter().map(|s| sqlite_params(s)).collect());

/// Tenant `$1`'s cancellation time, with `lock` after it (PostgreSQL's `FOR UPDATE`;
/// SQLite's single writer needs none).
fn cancelled_at_sql(lock: &str) -> String {
    format!("SELECT cancelled_at FROM tenants WHERE id = $1{lock}")
}

store_area! {
    /// Tenants, their sub-accounts and their API keys.
    TenantStore {
        /// `Some(t)`: cancels a tenant at `t`, with each of its sub-accounts not cancelled
        /// yet, and holds their waiting mail (`suspended`, leased or not, as a stream pause
        /// does). `None`: reactivates it, with the sub-accounts cancelled with it or after,
        /// and queues their held mail again, due `at` (see [`QueueAction::Resume`]).
        /// Atomic; `false` (nothing changed) if the tenant is unknown or already so.
        fn set_tenant_cancelled(
            &self,
            tenant_id: &str,
            cancelled_at: Option<i64>,
            at: i64,
        ) -> StoreResult<bool>;
        /// One bounded step of deleting a tenant: up to `limit` rows of the first of
        /// [`TENANT_TABLES`](crate::TENANT_TABLES) that still has any of its rows, or, once none has, the tenant
        /// row itself with its wrapped data key (the key's destruction). Returns the rows deleted, 0 once
        /// the tenant is gone. Audit entries stay (the chain must keep verifying).
        fn delete_tenant_data(&self, tenant_id: &str, limit: usize) -> StoreResult<u64>;
        /// Records the last use of a key.
        fn touch_api_key(&self, id: &str, at: i64) -> StoreResult<()>;
    }
    shared {
        /// Creates a tenant; `Conflict` if the name is taken.
        fn insert_tenant(&self, tenant: TenantRecord) -> StoreResult<()> {
            let t = tenant;
            let args = args![
                t.id,
                t.name,
                t.wrapped_key,
                t.created_at,
                t.parent_id,
                t.cancelled_at,
            ];
            self.write("insert_tenant", Some("tenant"), &INSERT_TENANT, args)
                .await
                .map(drop)
        }
        /// A tenant by id.
        fn get_tenant(&self, id: &str) -> StoreResult<Option<TenantRecord>> {
            self.row("get_tenant", &GET_TENANT, args![id]).await
        }
        /// A tenant's sub-accounts, oldest first.
        fn list_subaccounts(&self, parent_id: &str) -> StoreResult<Vec<TenantRecord>> {
            self.rows("list_subaccounts", &LIST_SUBACCOUNTS, args![parent_id]).await
        }
        /// A tenant by unique name.
        fn get_tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
            self.row("get_tenant_by_name", &GET_TENANT_BY_NAME, args![name]).await
        }
        /// Tenants, oldest first: every one (`None`), or those cancelled before
        /// `cancelled_before` (due for deletion).
        fn list_tenants(&self, cancelled_before: Option<i64>) -> StoreResult<Vec<TenantRecord>> {
            self.rows("list_tenants", &LIST_TENANTS, args![cancelled_before]).await
        }
        /// Stores a new API key.
        fn insert_api_key(&self, key: ApiKeyRecord) -> StoreResult<()> {
            let k = key;
            let args = args![
                k.id,
                k.tenant_id,
                k.name,
                k.secret_hash,
                scopes_text(&k.scopes),
                k.created_at,
                k.expires_at,
                join_list(&k.allowed_ips),
                k.rate_limit.map(i64::from),
            ];
            self.write("insert_api_key", Some("api key"), &INSERT_API_KEY, args)
                .await
                .map(drop)
        }
        /// An API key by id.
        fn get_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
            self.row("get_api_key", &GET_API_KEY, args![id]).await
        }
        /// A tenant's API keys (revoked and expired ones included), oldest first.
        fn list_api_keys(&self, tenant_id: &str) -> StoreResult<Vec<ApiKeyRecord>> {
            self.rows("list_api_keys", &LIST_API_KEYS, args![tenant_id]).await
        }
        /// Ends a tenant's key: revokes it now (`revoke`), or brings its expiry forward to
        /// `at` (rotation grace; a later expiry is kept shorter). `false` if the tenant
        /// has no such key or it is already revoked.
        fn end_api_key(
            &self,
            tenant_id: &str,
            id: &str,
            at: i64,
            revoke: bool,
        ) -> StoreResult<bool> {
            let sql = if revoke {
                &REVOKE_API_KEY
            } else {
                &EXPIRE_API_KEY
            };
            Ok(self.write("end_api_key", None, sql, args![tenant_id, id, at]).await? > 0)
        }
    }
}
