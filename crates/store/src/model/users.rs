//! The users area's rows: console users, sign-in accounting and sessions.

/// A person who signs in with a password (dashboard and API sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// `usr_…`.
    pub id: String,
    /// The tenant the user belongs to.
    pub tenant_id: String,
    /// Blind index of the normalised email address (unique per tenant; the same
    /// address may have an account in several tenants).
    pub email_index: String,
    /// The address, sealed under the tenant key.
    pub email_enc: Vec<u8>,
    /// Argon2id hash in PHC string form.
    pub password_hash: String,
    /// `owner`, `admin`, `developer`, `analyst`, `sender` or `custom`.
    pub role: String,
    /// What the user may do (from the role, or chosen for `custom`).
    pub scopes: Vec<postwerk_core::model::Scope>,
    /// The TOTP secret and recovery codes, sealed (`None`: no second factor).
    pub totp_enc: Option<Vec<u8>>,
    /// Creation time.
    pub created_at: i64,
    /// Set when disabled (sign-in refused, sessions ended).
    pub disabled_at: Option<i64>,
    /// Failed sign-ins since the last success.
    pub failed_logins: i64,
    /// Sign-in refused until then (after too many failures).
    pub locked_until: Option<i64>,
    /// Raised by every change that ends the user's sessions (forced logout, new
    /// password, disabling, second factor removed by an admin): a session is valid only
    /// while its [`SessionRecord::user_gen`] equals it.
    pub session_gen: i64,
    /// The lists (ids) whose contacts the user may read; `None`: every contact.
    pub lists: Option<Vec<String>>,
}

/// When failed sign-ins lock an account ([`crate::UserStore::reserve_login`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockPolicy {
    /// The failure count at which the account locks.
    pub failures_before_lock: i64,
    /// The first lock (ms); each further failure doubles it.
    pub first_lock_ms: i64,
    /// The longest lock (ms).
    pub max_lock_ms: i64,
}

/// The answer of [`crate::UserStore::reserve_login`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt is counted as a failure until released or followed by a session;
    /// `lock` is the lock this attempt set (it reached the threshold), if any, and
    /// `previous_lock` the end of the lock before it.
    Counted {
        /// The lock this attempt set.
        lock: Option<i64>,
        /// `locked_until` before this attempt.
        previous_lock: Option<i64>,
    },
    /// The account is locked until then; nothing was counted.
    Locked(i64),
    /// No such user.
    NoUser,
}

/// An admin's change to a user; each ends the user's sessions (raises
/// [`UserRecord::session_gen`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// A new password hash; also clears the failure count and the lock.
    Password(String),
    /// Disabled at this time (an earlier time is kept).
    Disable(i64),
    /// Only the sessions end.
    Logout,
    /// The second factor is removed.
    RemoveSecondFactor,
}

/// A signed-in session (its token is held by the browser; only a hash is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session token.
    pub id_hash: Vec<u8>,
    /// The user.
    pub user_id: String,
    /// The user's tenant.
    pub tenant_id: String,
    /// SHA-256 of the CSRF token that state-changing requests must carry.
    pub csrf_hash: Vec<u8>,
    /// Sign-in time.
    pub created_at: i64,
    /// End of the session.
    pub expires_at: i64,
    /// Set at logout.
    pub revoked_at: Option<i64>,
    /// The user's [`UserRecord::session_gen`] at sign-in.
    pub user_gen: i64,
}
