//! Users: people who sign in with an address and a password, with a role that grants
//! scopes, and the sessions they sign in to.
//!
//! - Passwords are hashed with Argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane).
//! - The address is sealed under the tenant key; the account is found by a blind index
//!   under the master key, so an address names one account across tenants.
//! - Failed sign-ins lock the account for a time that doubles with each further
//!   failure; a lock answers `Locked` with the time left, even for the right password.
//! - A session token is 32 random bytes shown once to the browser; the store keeps its
//!   SHA-256, and a CSRF token's SHA-256 that state-changing requests must present.
//!   Forced logout and password changes end every earlier session.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use postwerk_core::address::Address;
use postwerk_core::id::{new_id, random_token};
use postwerk_core::model::Scope;
use postwerk_store::Store;
use postwerk_store::model::{SessionRecord, UserRecord};
use ring::digest;

use crate::context::{ServiceError, Services, now_ms};
use crate::totp::SecondFactor;
use postwerk_core::config::{Cidr, TenantAuthConfig};
use std::net::IpAddr;

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;
/// Longest password accepted (hashing cost is bounded).
pub const MAX_PASSWORD: usize = 1024;
/// Consecutive failures before the account locks.
pub const FAILURES_BEFORE_LOCK: i64 = 5;
/// The first lock; each further failure doubles it, up to [`MAX_LOCK_MS`].
pub const FIRST_LOCK_MS: i64 = 60_000;
/// The longest lock.
pub const MAX_LOCK_MS: i64 = 3_600_000;
/// How long a session lasts.
pub const SESSION_MS: i64 = 12 * 3_600_000;

/// The built-in roles and their scopes; `custom` takes the scopes it is given.
pub const ROLES: [&str; 6] = ["owner", "admin", "developer", "analyst", "sender", "custom"];

/// The scopes of a built-in `role` (`None` for `custom` or an unknown role).
pub fn role_scopes(role: &str) -> Option<Vec<Scope>> {
    use Scope::*;
    Some(match role {
        "owner" | "admin" => vec![Send, Read, Write, Import, Export, Privacy, Admin],
        "developer" => vec![Send, Read, Write, Import],
        "analyst" => vec![Read],
        "sender" => vec![Send],
        _ => return None,
    })
}

/// Why a user could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Not an email address.
    #[error("invalid email address")]
    InvalidEmail,
    /// Too short or too long.
    #[error("a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")]
    WeakPassword,
    /// Not one of [`ROLES`], `custom` without scopes, or scopes with another role.
    #[error(
        "role must be owner, admin, developer, analyst, sender, or custom with scopes (only custom takes scopes)"
    )]
    InvalidRole,
    /// The address already has an account.
    #[error("this address already has an account")]
    Exists,
    /// No such user in the tenant.
    #[error("no such user")]
    NotFound,
    /// The password could not be hashed.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// The store failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong address or password (indistinguishable on purpose).
    #[error("wrong email address or password")]
    Invalid,
    /// Too many failures: retry after this many milliseconds.
    #[error("account locked")]
    Locked(i64),
    /// The account is disabled.
    #[error("account disabled")]
    Disabled,
    /// The account has a second factor: a code or a recovery code is needed.
    #[error("second factor required")]
    SecondFactorRequired,
    /// The code or recovery code was wrong (counts as a failed sign-in).
    #[error("wrong second factor")]
    InvalidSecondFactor,
    /// The tenant does not allow sign-in from the client's address.
    #[error("sign-in not allowed from this address")]
    AddressNotAllowed,
    /// The user's tenant is cancelled (or gone).
    #[error(transparent)]
    Tenant(#[from] crate::tenants::TenantError),
    /// The store failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// A new session's tokens (shown once: the cookie and the CSRF token).
pub struct NewSession {
    /// The session cookie's value.
    pub token: String,
    /// The value state-changing requests send as `X-CSRF-Token`.
    pub csrf_token: String,
    /// When it ends.
    pub expires_at: i64,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The Argon2id PHC string of `password`.
fn hash_password(password: &str) -> Result<String, UserError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hashing(e.to_string()))
}

fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

fn sha256(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// The blind index an address's account is found by.
fn email_index(services: &Services, address: &Address) -> String {
    services
        .keys
        .master()
        .link_tag("user-email", &address.normalized())
}

fn check_password(password: &str) -> Result<(), UserError> {
    let n = password.chars().count();
    if (MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        Ok(())
    } else {
        Err(UserError::WeakPassword)
    }
}

/// Creates a user of `tenant_id` with `role` (`custom`: exactly `scopes`).
pub async fn create_user(
    services: &Services,
    tenant_id: &str,
    email: &str,
    password: &str,
    role: &str,
    scopes: Vec<Scope>,
) -> Result<UserRecord, UserError> {
    let address = Address::parse(email).map_err(|_| UserError::InvalidEmail)?;
    check_password(password)?;
    let scopes = match (role, role_scopes(role)) {
        (_, Some(s)) if scopes.is_empty() => s,
        ("custom", None) if !scopes.is_empty() => scopes,
        _ => return Err(UserError::InvalidRole),
    };
    let keys = services.tenant_keys(tenant_id).await?;
    let id = new_id("usr");
    let user = UserRecord {
        email_index: email_index(services, &address),
        email_enc: keys.seal(&format!("user:{id}"), address.normalized().as_bytes()),
        id,
        tenant_id: tenant_id.to_string(),
        password_hash: hash_password(password)?,
        role: role.to_string(),
        scopes,
        totp_enc: None,
        created_at: now_ms(),
        disabled_at: None,
        failed_logins: 0,
        locked_until: None,
        sessions_valid_after: 0,
    };
    match services.store.insert_user(user.clone()).await {
        Ok(()) => Ok(user),
        Err(postwerk_store::StoreError::Conflict(_)) => Err(UserError::Exists),
        Err(e) => Err(UserError::Service(e.into())),
    }
}

/// A user's address (opened from its seal).
pub async fn email_of(services: &Services, user: &UserRecord) -> Result<String, ServiceError> {
    let keys = services.tenant_keys(&user.tenant_id).await?;
    let plain = keys.open(&format!("user:{}", user.id), &user.email_enc)?;
    Ok(String::from_utf8_lossy(&plain).into_owned())
}

/// A user of `tenant_id` by id.
pub async fn get(services: &Services, tenant_id: &str, id: &str) -> Result<UserRecord, UserError> {
    services
        .store
        .get_user(id)
        .await
        .map_err(ServiceError::from)?
        .filter(|u| u.tenant_id == tenant_id)
        .ok_or(UserError::NotFound)
}

/// Saves a changed user.
pub async fn save(services: &Services, user: UserRecord) -> Result<(), ServiceError> {
    services.store.update_user(user).await.map_err(Into::into)
}

/// What an admin can do to a user besides setting its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminChange {
    /// Refuse sign-in from now on and end every session.
    Disable,
    /// End every session now.
    Logout,
    /// Remove the second factor (a lost device) and end every session.
    RemoveSecondFactor,
    /// Delete the account and its sessions.
    Delete,
}

impl AdminChange {
    /// The audit action recorded for it.
    pub fn action(self) -> &'static str {
        match self {
            AdminChange::Disable => "user.disable",
            AdminChange::Logout => "user.logout",
            AdminChange::RemoveSecondFactor => "user.totp_remove",
            AdminChange::Delete => "user.delete",
        }
    }

    /// Applies it to `user` at `now` and saves (or deletes) the user.
    pub async fn apply(
        self,
        services: &Services,
        mut user: UserRecord,
        now: i64,
    ) -> Result<(), ServiceError> {
        match self {
            AdminChange::Disable => {
                user.disabled_at.get_or_insert(now);
            }
            AdminChange::Logout => {}
            AdminChange::RemoveSecondFactor => user.totp_enc = None,
            AdminChange::Delete => return Ok(services.store.delete_user(&user.id).await?),
        }
        user.sessions_valid_after = now;
        save(services, user).await
    }
}

/// Sets a new password and ends every session of the user.
pub async fn set_password(
    services: &Services,
    mut user: UserRecord,
    password: &str,
) -> Result<(), UserError> {
    check_password(password)?;
    user.password_hash = hash_password(password)?;
    user.sessions_valid_after = now_ms();
    user.failed_logins = 0;
    user.locked_until = None;
    Ok(save(services, user).await?)
}

/// A second factor presented at sign-in.
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    /// None.
    Nothing,
    /// A TOTP code.
    Code(&'a str),
    /// A recovery code (used up).
    Recovery(&'a str),
}

/// The user's second factor, if one was set up (confirmed or not).
pub async fn second_factor(
    services: &Services,
    user: &UserRecord,
) -> Result<Option<SecondFactor>, ServiceError> {
    let Some(sealed) = &user.totp_enc else {
        return Ok(None);
    };
    let keys = services.tenant_keys(&user.tenant_id).await?;
    let plain = keys.open(&format!("totp:{}", user.id), sealed)?;
    serde_json::from_slice(&plain).map(Some).map_err(|e| {
        ServiceError::Store(postwerk_store::StoreError::Corrupt(format!(
            "second factor: {e}"
        )))
    })
}

/// Stores (sealed) or removes the user's second factor; saves the user.
pub async fn set_second_factor(
    services: &Services,
    mut user: UserRecord,
    factor: Option<&SecondFactor>,
) -> Result<UserRecord, ServiceError> {
    user.totp_enc = match factor {
        Some(f) => {
            let keys = services.tenant_keys(&user.tenant_id).await?;
            let json = serde_json::to_vec(f).expect("a second factor serialises");
            Some(keys.seal(&format!("totp:{}", user.id), &json))
        }
        None => None,
    };
    save(services, user.clone()).await?;
    Ok(user)
}

/// Counts a failed sign-in, locking the account once there are too many.
async fn failed(services: &Services, mut user: UserRecord, now: i64) -> Result<(), ServiceError> {
    user.failed_logins += 1;
    let over = user.failed_logins - FAILURES_BEFORE_LOCK;
    if over >= 0 {
        let lock = FIRST_LOCK_MS
            .saturating_mul(1i64 << over.min(20))
            .min(MAX_LOCK_MS);
        user.locked_until = Some(now + lock);
    }
    save(services, user).await
}

/// The sign-in policy of the user's tenant (`[auth.tenants.<name>]`).
pub async fn policy(
    services: &Services,
    user: &UserRecord,
) -> Result<TenantAuthConfig, ServiceError> {
    let tenant = services
        .store
        .get_tenant(&user.tenant_id)
        .await?
        .ok_or(ServiceError::UnknownTenant)?;
    Ok(services.config.auth.tenant(&tenant.name))
}

/// Whether `policy` lets a user sign in or use a session from `ip` (`None`: unknown
/// address, refused when the policy has an allowlist).
pub fn address_allowed(policy: &TenantAuthConfig, ip: Option<IpAddr>) -> bool {
    policy.login_allowlist.is_empty()
        || ip.is_some_and(|ip| {
            policy
                .login_allowlist
                .iter()
                .filter_map(|c| Cidr::parse(c))
                .any(|c| c.contains(ip))
        })
}

/// Signs in from `ip`: checks the lock, the password, that the tenant is not
/// cancelled, the tenant's address allowlist, the second factor if the user has one,
/// and opens a session.
pub async fn login(
    services: &Services,
    email: &str,
    password: &str,
    presented: Presented<'_>,
    ip: Option<IpAddr>,
) -> Result<(UserRecord, NewSession), LoginError> {
    let found = match Address::parse(email) {
        Ok(address) => services
            .store
            .find_user(&email_index(services, &address))
            .await
            .map_err(ServiceError::from)?,
        Err(_) => None,
    };
    let Some(mut user) = found else {
        // The same work as for a real account, so timing does not tell them apart.
        let _ = password_matches(password, DUMMY_HASH);
        return Err(LoginError::Invalid);
    };
    let now = now_ms();
    if let Some(until) = user.locked_until.filter(|&t| t > now) {
        return Err(LoginError::Locked(until - now));
    }
    if !password_matches(password, &user.password_hash) {
        failed(services, user, now).await?;
        return Err(LoginError::Invalid);
    }
    if user.disabled_at.is_some() {
        return Err(LoginError::Disabled);
    }
    crate::tenants::ensure_active(services, &user.tenant_id).await?;
    if !address_allowed(&policy(services, &user).await?, ip) {
        return Err(LoginError::AddressNotAllowed);
    }
    if let Some(mut factor) = second_factor(services, &user)
        .await?
        .filter(|f| f.confirmed)
    {
        let accepted = match presented {
            Presented::Nothing => return Err(LoginError::SecondFactorRequired),
            Presented::Code(code) => factor.accept_code(code, now / 1000),
            Presented::Recovery(code) => factor.accept_recovery_code(code),
        };
        if !accepted {
            failed(services, user, now).await?;
            return Err(LoginError::InvalidSecondFactor);
        }
        user = set_second_factor(services, user, Some(&factor)).await?;
    }
    user.failed_logins = 0;
    user.locked_until = None;
    save(services, user.clone()).await?;
    let session = NewSession {
        token: random_token(32),
        csrf_token: random_token(32),
        expires_at: now + SESSION_MS,
    };
    services
        .store
        .insert_session(SessionRecord {
            id_hash: sha256(&session.token),
            user_id: user.id.clone(),
            tenant_id: user.tenant_id.clone(),
            csrf_hash: sha256(&session.csrf_token),
            created_at: now,
            expires_at: session.expires_at,
            revoked_at: None,
        })
        .await
        .map_err(ServiceError::from)?;
    Ok((user, session))
}

/// Argon2id hash of a random password, verified against when the address is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZHVtbXlzYWx0ZHVtbXk$0nOFWNk9cc6OaGaYcsAmQ8WCqJXLdF5LJUXtqYgkz/Y";

/// The live session of `token` and its user; `None` for an unknown, ended or
/// expired session, a disabled user, or one logged out since.
pub async fn session(
    services: &Services,
    token: &str,
) -> Result<Option<(SessionRecord, UserRecord)>, ServiceError> {
    let Some(session) = services.store.get_session(sha256(token)).await? else {
        return Ok(None);
    };
    let now = now_ms();
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Ok(None);
    }
    let user = services.store.get_user(&session.user_id).await?;
    Ok(user
        .filter(|u| u.disabled_at.is_none() && session.created_at >= u.sessions_valid_after)
        .map(|u| (session, u)))
}

/// Whether `csrf_token` is the session's.
pub fn csrf_matches(session: &SessionRecord, csrf_token: &str) -> bool {
    crate::apikeys::constant_time_eq(&session.csrf_hash, &sha256(csrf_token))
}

/// Ends the session of `token` (logout).
pub async fn logout(services: &Services, token: &str) -> Result<bool, ServiceError> {
    Ok(services.store.end_session(sha256(token), now_ms()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(password_matches("correct horse battery", &phc));
        assert!(!password_matches("wrong horse battery", &phc));
        assert!(!password_matches("anything", "not a hash"));
        assert!(
            PasswordHash::new(DUMMY_HASH).is_ok(),
            "the dummy hash parses, so unknown addresses cost the same"
        );
    }

    #[test]
    fn roles_grant_scopes() {
        assert_eq!(role_scopes("owner").unwrap().len(), 7);
        assert_eq!(role_scopes("sender"), Some(vec![Scope::Send]));
        assert_eq!(role_scopes("analyst"), Some(vec![Scope::Read]));
        assert!(role_scopes("custom").is_none());
        assert!(role_scopes("root").is_none());
        assert!(check_password("short").is_err());
        assert!(check_password("long enough!").is_ok());
    }
}
