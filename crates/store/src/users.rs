//! The store's users area: console users, their sign-in accounting and their sessions.

use crate::StoreResult;
use crate::model::*;
use crate::row::Columns;
use crate::run::FromRow;
use crate::tenants::scopes_text;

/// The columns a [`UserRecord`] is read from.
pub(crate) const USER_COLS: &str = "id, tenant_id, email_index, email_enc, password_hash, role, scopes, \
     totp_enc, created_at, disabled_at, failed_logins, locked_until, session_gen, lists";

/// The columns a [`SessionRecord`] is read from.
pub(crate) const SESSION_COLS: &str =
    "id_hash, user_id, tenant_id, csrf_hash, created_at, expires_at, revoked_at, user_gen";

/// The list ids of a `users.lists` value.
fn lists_of(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A row of `users`; scopes that do not parse make it corrupt.
impl FromRow for UserRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(UserRecord {
            id: r.get("id")?,
            tenant_id: r.get("tenant_id")?,
            email_index: r.get("email_index")?,
            email_enc: r.get("email_enc")?,
            password_hash: r.get("password_hash")?,
            role: r.get("role")?,
            scopes: postwerk_core::model::parse_scopes(&r.get::<String>("scopes")?)
                .map_err(|_| R::corrupt("scopes"))?,
            totp_enc: r.get("totp_enc")?,
            created_at: r.get("created_at")?,
            disabled_at: r.get("disabled_at")?,
            failed_logins: r.get("failed_logins")?,
            locked_until: r.get("locked_until")?,
            session_gen: r.get("session_gen")?,
            lists: r.get::<Option<String>>("lists")?.map(|l| lists_of(&l)),
        })
    }
}

/// A row of `sessions`.
impl FromRow for SessionRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(SessionRecord {
            id_hash: r.get("id_hash")?,
            user_id: r.get("user_id")?,
            tenant_id: r.get("tenant_id")?,
            csrf_hash: r.get("csrf_hash")?,
            created_at: r.get("created_at")?,
            expires_at: r.get("expires_at")?,
            revoked_at: r.get("revoked_at")?,
            user_gen: r.get("user_gen")?,
        })
    }
}

sql! {
    /// A new user, in [`USER_COLS`] order.
    INSERT_USER = "INSERT INTO users ({USER_COLS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
    /// Tenant `$1`'s user `$2` may read the contacts of lists `$3` (comma-separated ids;
    /// NULL: every contact).
    SET_USER_LISTS = "UPDATE users SET lists = $3 WHERE tenant_id = $1 AND id = $2";
    /// A user by id.
    USERS_BY_ID = "SELECT {USER_COLS} FROM users WHERE id = $1 ORDER BY created_at, id";
    /// The accounts of an address's blind index, oldest first.
    USERS_BY_EMAIL = "SELECT {USER_COLS} FROM users WHERE email_index = $1 ORDER BY created_at, id";
    /// A tenant's users, oldest first.
    USERS_OF_TENANT = "SELECT {USER_COLS} FROM users WHERE tenant_id = $1 ORDER BY created_at, id";
    /// A user's sessions (before the user goes).
    DELETE_USER_SESSIONS = "DELETE FROM sessions WHERE user_id = $1";
    /// A user.
    DELETE_USER = "DELETE FROM users WHERE id = $1";
    /// Clears the failure count of user `$1` if its session generation is still `$2`
    /// and it is not disabled (a sign-in that may open its session).
    SIGNED_IN = "UPDATE users SET failed_logins = 0, locked_until = NULL \
         WHERE id = $1 AND session_gen = $2 AND disabled_at IS NULL";
    /// Sessions that ended before `$1`.
    DELETE_ENDED_SESSIONS = "DELETE FROM sessions WHERE expires_at < $1";
    /// A new session, in [`SESSION_COLS`] order.
    INSERT_SESSION = "INSERT INTO sessions ({SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    /// Sets user `$1`'s password `$2` (and clears its lock), ending its sessions.
    SET_PASSWORD = "{BUMP}, password_hash = $2, failed_logins = 0, locked_until = NULL WHERE id = $1";
    /// Disables user `$1` at `$2` (unless it was already), ending its sessions.
    DISABLE_USER = "{BUMP}, disabled_at = COALESCE(disabled_at, $2) WHERE id = $1";
    /// Ends user `$1`'s sessions.
    LOG_OUT_USER = "{BUMP} WHERE id = $1";
    /// Removes user `$1`'s second factor, ending its sessions.
    REMOVE_SECOND_FACTOR = "{BUMP}, totp_enc = NULL WHERE id = $1";
    /// A session by the hash of its token.
    GET_SESSION = "SELECT {SESSION_COLS} FROM sessions WHERE id_hash = $1";
    /// User `$1`'s sessions live at `$2`, newest first.
    LIVE_SESSIONS = "SELECT {SESSION_COLS} FROM sessions WHERE user_id = $1 \
        AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC";
    /// Ends session `$1` at `$2`.
    END_SESSION = "UPDATE sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL";
    /// User `$1`'s lock, with PostgreSQL's row lock (held until the count is taken).
    LOCKED_UNTIL_FOR_UPDATE = "{}", locked_until_sql(" FOR UPDATE");
    /// User `$1`'s lock, for SQLite's single writer.
    LOCKED_UNTIL = "{}", locked_until_sql("");
    /// The failure count, PostgreSQL's function.
    COUNT_FAILURE_PG = "{}", count_failure_sql("LEAST");
    /// The failure count, SQLite's function.
    COUNT_FAILURE_SQLITE = "{}", count_failure_sql("min");
    /// Takes back one failure of user `$1` (not below zero) and puts its lock back to
    /// `$3` if it is still `$2`.
    RELEASE_LOGIN = "UPDATE users SET \
         failed_logins = CASE WHEN failed_logins > 0 THEN failed_logins - 1 ELSE 0 END, \
         locked_until = CASE WHEN locked_until = $2 THEN $3 ELSE locked_until END WHERE id = $1";
    /// User `$1`'s second factor becomes `$3` if it is still `$2`.
    SWAP_SECOND_FACTOR = "UPDATE users SET totp_enc = $3 \
         WHERE id = $1 AND totp_enc IS NOT DISTINCT FROM $2";
}

/// User `$1`'s lock (`locked_until`), with `lock` after it (PostgreSQL's
/// `FOR UPDATE`; SQLite's single writer needs none).
fn locked_until_sql(lock: &str) -> String {
    format!("SELECT locked_until FROM users WHERE id = $1{lock}")
}

/// Counts a failure of user `$1` at `$2`, read by [`failure_count_row`]: from the
/// `$3`th failure on, the account is locked for `$4` ms doubled per further failure,
/// at most `$5`; `least` is the dialect's smaller-of function (`LEAST` or `min`).
fn count_failure_sql(least: &str) -> String {
    format!(
        "UPDATE users SET failed_logins = failed_logins + 1, \
         locked_until = CASE WHEN failed_logins + 1 >= CAST($3 AS BIGINT) \
           THEN CAST($2 AS BIGINT) + {least}(CAST($5 AS BIGINT), \
             CAST($4 AS BIGINT) << CAST({least}(failed_logins + 1 - CAST($3 AS BIGINT), 20) AS INT)) \
           ELSE locked_until END \
         WHERE id = $1 RETURNING failed_logins, locked_until"
    )
}

/// A row of the failure count: `(failed_logins, locked_until)` (both backends).
pub(crate) fn failure_count_row<R: Columns>(r: &R) -> Result<(i64, Option<i64>), R::Error> {
    Ok((r.get("failed_logins")?, r.get("locked_until")?))
}

/// Starts every admin change of a user: a new session generation ends its sessions.
const BUMP: &str = "UPDATE users SET session_gen = session_gen + 1";

/// The statement of an admin's change.
pub(crate) fn change_sql(change: &UserChange) -> &'static crate::sql::Sql {
    match change {
        UserChange::Password(_) => &SET_PASSWORD,
        UserChange::Disable(_) => &DISABLE_USER,
        UserChange::Logout => &LOG_OUT_USER,
        UserChange::RemoveSecondFactor => &REMOVE_SECOND_FACTOR,
    }
}

store_area! {
    /// Console users, their sign-in accounting and their sessions.
    UserStore {
        /// Counts a sign-in attempt as a failure before its password is checked, in one
        /// statement: unless the account is locked at `at`, `failed_logins` goes up by one
        /// and, once it reaches `policy.failures_before_lock`, `locked_until` is set (the
        /// first lock, doubled for each further failure, at most the longest). Concurrent
        /// attempts each count.
        fn reserve_login(&self, id: &str, at: i64, policy: LockPolicy) -> StoreResult<Reservation>;
        /// Opens a session after a successful sign-in, atomically: only while the user is
        /// not disabled and its `session_gen` is still `session.user_gen` (no admin change
        /// since the sign-in read the user), it clears the failure count and the lock and
        /// stores the session. `false` (nothing stored) otherwise.
        fn open_session(&self, session: SessionRecord) -> StoreResult<bool>;
        /// Deletes a user and its sessions (its sealed address goes with it).
        fn delete_user(&self, id: &str) -> StoreResult<()>;
    }
    shared {
        /// Stores a new user; `Conflict("user")` if the address already has an account in
        /// the user's tenant.
        fn insert_user(&self, user: UserRecord) -> StoreResult<()> {
            let u = user;
            let args = args![
                u.id,
                u.tenant_id,
                u.email_index,
                u.email_enc,
                u.password_hash,
                u.role,
                scopes_text(&u.scopes),
                u.totp_enc,
                u.created_at,
                u.disabled_at,
                u.failed_logins,
                u.locked_until,
                u.session_gen,
                u.lists.as_deref().map(|l| l.join(",")),
            ];
            self.write("insert_user", Some("user"), &INSERT_USER, args)
                .await
                .map(drop)
        }
        /// Limits a user to the contacts of some lists (`None`: every contact);
        /// `false` if the tenant has no such user.
        fn set_user_lists(
            &self,
            tenant_id: &str,
            id: &str,
            lists: Option<Vec<String>>,
        ) -> StoreResult<bool> {
            let args = args![tenant_id, id, lists.map(|l| l.join(","))];
            Ok(self.write("set_user_lists", None, &SET_USER_LISTS, args).await? > 0)
        }
        /// A user by id.
        fn get_user(&self, id: &str) -> StoreResult<Option<UserRecord>> {
            let mut users: Vec<UserRecord> = self.rows("get_user", &USERS_BY_ID, args![id]).await?;
            Ok(users.pop())
        }
        /// The accounts whose address has this blind index (one per tenant at most),
        /// oldest first.
        fn find_users(&self, email_index: &str) -> StoreResult<Vec<UserRecord>> {
            self.rows("find_users", &USERS_BY_EMAIL, args![email_index]).await
        }
        /// A tenant's users, oldest first.
        fn list_users(&self, tenant_id: &str) -> StoreResult<Vec<UserRecord>> {
            self.rows("list_users", &USERS_OF_TENANT, args![tenant_id]).await
        }
        /// Takes back one counted attempt that turned out not to be a failure: the count
        /// goes down by one (not below zero) and, if `locked_until` is still `lock` (the
        /// lock the attempt set), it is put back to `previous_lock`.
        fn release_login(
            &self,
            id: &str,
            lock: Option<i64>,
            previous_lock: Option<i64>,
        ) -> StoreResult<()> {
            let args = args![id, lock, previous_lock];
            self.write("release_login", None, &RELEASE_LOGIN, args)
                .await
                .map(drop)
        }
        /// Applies an admin's change and raises `session_gen` (ending every session) in
        /// one statement; `false` if there is no such user.
        fn change_user(&self, id: &str, change: UserChange) -> StoreResult<bool> {
            let sql = change_sql(&change);
            let args = match change {
                UserChange::Password(hash) => args![id, hash],
                UserChange::Disable(at) => args![id, at],
                UserChange::Logout | UserChange::RemoveSecondFactor => args![id],
            };
            Ok(self.write("change_user", None, sql, args).await? > 0)
        }
        /// Sets the user's sealed second factor to `new` only if it is still `expected`
        /// (compare-and-set: a code's step or a recovery code is used once, and a
        /// concurrent change wins); `false` if it was not.
        fn swap_second_factor(
            &self,
            id: &str,
            expected: Option<Vec<u8>>,
            new: Option<Vec<u8>>,
        ) -> StoreResult<bool> {
            let args = args![id, expected, new];
            Ok(self.write("swap_second_factor", None, &SWAP_SECOND_FACTOR, args).await? > 0)
        }
        /// A session by the hash of its token.
        fn get_session(&self, id_hash: Vec<u8>) -> StoreResult<Option<SessionRecord>> {
            self.row("get_session", &GET_SESSION, args![id_hash]).await
        }
        /// User `user_id`'s sessions that are live at `now` (not ended, not expired),
        /// newest first. A session of an older `session_gen` is listed until it
        /// expires, though it no longer signs anyone in.
        fn live_sessions(&self, user_id: &str, now: i64) -> StoreResult<Vec<SessionRecord>> {
            self.rows("live_sessions", &LIVE_SESSIONS, args![user_id, now]).await
        }
        /// Ends a session at `at`; `false` if it was unknown or already ended.
        fn end_session(&self, id_hash: Vec<u8>, at: i64) -> StoreResult<bool> {
            Ok(self.write("end_session", None, &END_SESSION, args![id_hash, at]).await? > 0)
        }
    }
}
