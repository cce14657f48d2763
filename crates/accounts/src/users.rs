//! Users: people who sign in with an address and a password, with a role that grants
//! scopes, and the sessions they sign in to.
//!
//! - Passwords are hashed with Argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane),
//!   on blocking threads, at most [`argon2_permits`] at a time: sign-in bursts queue
//!   there instead of stalling the async workers.
//! - The address is sealed under the tenant key; accounts are found by a blind index
//!   under the master key. An address has at most one account per tenant; sign-in may
//!   name the tenant, else the password is tried on each of the address's accounts.
//! - Every sign-in attempt is counted as a failure on the account before the password is
//!   checked (one atomic store statement, which also sets the lock), and taken back if
//!   it was not one: concurrent guesses each count, and no more than the allowance is
//!   ever verified. Failures lock the account for a time that doubles with each further
//!   failure; a lock answers `Locked` with the time left, even for the right password.
//!   An address without an account locks the same way (in memory), so the answer does
//!   not tell whether it has one.
//! - Sign-in writes only its own columns. Admin changes (new password, disabling,
//!   forced logout, removing the second factor) raise the user's session generation in
//!   the same statement; a session is valid only with the generation it was opened
//!   with, and it is opened only if the generation is still the one the sign-in read.
//!   An admin's change therefore always wins over a concurrent sign-in.
//! - A session token is 32 random bytes shown once to the browser; the store keeps its
//!   SHA-256, and a CSRF token's SHA-256 that state-changing requests must present.

use postwerk_store::vault::SealContext;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{LazyLock, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use postwerk_core::address::Address;
use postwerk_core::config::{Cidr, TenantAuthConfig};
use postwerk_core::id::{new_id, random_token};
use postwerk_core::metrics::AuthFailure;
use postwerk_core::model::Scope;
use postwerk_store::model::{LockPolicy, Reservation, SessionRecord, UserChange, UserRecord};
use postwerk_store::prelude::*;
use ring::digest;
use tokio::sync::Semaphore;

use crate::auth_failures;
use crate::totp::SecondFactor;
use postwerk_services::audit::{self, Actor};
use postwerk_services::context::{ServiceError, Services, now_ms};

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
/// Most accounts of one address a sign-in without `tenant` tries (oldest first).
pub const MAX_ACCOUNTS_TRIED: usize = 5;

/// The lockout rule as the store applies it.
const LOCK_POLICY: LockPolicy = LockPolicy {
    failures_before_lock: FAILURES_BEFORE_LOCK,
    first_lock_ms: FIRST_LOCK_MS,
    max_lock_ms: MAX_LOCK_MS,
};

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
    /// The address already has an account in the tenant.
    #[error("this address already has an account in this tenant")]
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
    Tenant(#[from] postwerk_services::tenants::TenantError),
    /// The store failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl LoginError {
    /// Whether the attempt counts as a failed credential (towards the client's
    /// failure guard).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            LoginError::Invalid | LoginError::Locked(_) | LoginError::InvalidSecondFactor
        )
    }
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

/// How many Argon2id computations run at once: one per core.
pub fn argon2_permits() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Runs `f` (Argon2id work) on a blocking thread once one of [`argon2_permits`] is free.
async fn on_argon2_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    static PERMITS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(argon2_permits()));
    let _permit = PERMITS.acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())
}

/// The Argon2id PHC string of `password`.
fn hash_password_now(password: &str) -> Result<String, UserError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hashing(e.to_string()))
}

/// [`hash_password_now`] off the async workers.
async fn hash_password(password: &str) -> Result<String, UserError> {
    let password = password.to_string();
    on_argon2_thread(move || hash_password_now(&password))
        .await
        .map_err(UserError::Hashing)?
}

fn password_matches_now(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// [`password_matches_now`] off the async workers.
async fn password_matches(password: &str, phc: &str) -> bool {
    let (password, phc) = (password.to_string(), phc.to_string());
    on_argon2_thread(move || password_matches_now(&password, &phc))
        .await
        .unwrap_or(false)
}

fn sha256(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// The blind index an address's accounts are found by.
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

/// Creates a user of `tenant_id` with `role` (`custom`: exactly `scopes`). The
/// creation is audited (`user.create` by `actor`) before the user is stored, so no
/// user exists unrecorded.
pub async fn create_user(
    services: &Services,
    actor: &Actor,
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
        email_enc: keys.seal(SealContext::UserEmail(&id), address.normalized().as_bytes()),
        id,
        tenant_id: tenant_id.to_string(),
        password_hash: hash_password(password).await?,
        role: role.to_string(),
        scopes,
        totp_enc: None,
        created_at: now_ms(),
        disabled_at: None,
        failed_logins: 0,
        locked_until: None,
        session_gen: 0,
        lists: None,
    };
    audit::record(
        services,
        actor,
        Some(tenant_id),
        "user.create",
        Some(user.id.clone()),
    )
    .await?;
    match services.store.insert_user(user.clone()).await {
        Ok(()) => Ok(user),
        Err(postwerk_store::StoreError::Conflict(_)) => Err(UserError::Exists),
        Err(e) => Err(UserError::Service(e.into())),
    }
}

/// A user's address (opened from its seal).
pub async fn email_of(services: &Services, user: &UserRecord) -> Result<String, ServiceError> {
    let keys = services.tenant_keys(&user.tenant_id).await?;
    let plain = keys.open(SealContext::UserEmail(&user.id), &user.email_enc)?;
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

    /// Applies it to `user` at `now` (one atomic store change that also ends every
    /// session, whatever a concurrent sign-in does), or deletes the user.
    pub async fn apply(
        self,
        services: &Services,
        user: UserRecord,
        now: i64,
    ) -> Result<(), ServiceError> {
        let change = match self {
            AdminChange::Disable => UserChange::Disable(now),
            AdminChange::Logout => UserChange::Logout,
            AdminChange::RemoveSecondFactor => UserChange::RemoveSecondFactor,
            AdminChange::Delete => return Ok(services.store.delete_user(&user.id).await?),
        };
        services.store.change_user(&user.id, change).await?;
        Ok(())
    }
}

/// Sets a new password, lifts a lock and ends every session of the user.
pub async fn set_password(
    services: &Services,
    user: UserRecord,
    password: &str,
) -> Result<(), UserError> {
    check_password(password)?;
    let hash = hash_password(password).await?;
    services
        .store
        .change_user(&user.id, UserChange::Password(hash))
        .await
        .map_err(ServiceError::from)?;
    Ok(())
}

/// A user's change of their own password: `Ok(false)` (nothing changed) unless
/// `current` is their password. Ends every session of the user, like
/// [`set_password`].
pub async fn change_own_password(
    services: &Services,
    user: UserRecord,
    current: &str,
    password: &str,
) -> Result<bool, UserError> {
    if !password_matches(current, &user.password_hash).await {
        return Ok(false);
    }
    set_password(services, user, password).await.map(|()| true)
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
    let plain = keys.open(SealContext::Totp(&user.id), sealed)?;
    serde_json::from_slice(&plain).map(Some).map_err(|e| {
        ServiceError::Store(postwerk_store::StoreError::Corrupt(format!(
            "second factor: {e}"
        )))
    })
}

/// Replaces the user's second factor (sealed; `None` removes it) if it is still the
/// one `user` was read with: `Ok(None)` when it changed meanwhile (a code or recovery
/// code used concurrently, or an admin's removal), which then wins.
pub async fn set_second_factor(
    services: &Services,
    mut user: UserRecord,
    factor: Option<&SecondFactor>,
) -> Result<Option<UserRecord>, ServiceError> {
    let sealed = match factor {
        Some(f) => {
            let keys = services.tenant_keys(&user.tenant_id).await?;
            let json = serde_json::to_vec(f).expect("a second factor serialises");
            Some(keys.seal(SealContext::Totp(&user.id), &json))
        }
        None => None,
    };
    let swapped = services
        .store
        .swap_second_factor(&user.id, user.totp_enc.clone(), sealed.clone())
        .await?;
    Ok(swapped.then(|| {
        user.totp_enc = sealed;
        user
    }))
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

/// The lock a failure count sets, as the store computes it (ms), if any.
fn lock_ms(failures: i64) -> Option<i64> {
    let over = failures - FAILURES_BEFORE_LOCK;
    (over >= 0).then(|| {
        FIRST_LOCK_MS
            .saturating_mul(1i64 << over.min(20))
            .min(MAX_LOCK_MS)
    })
}

/// Addresses without an account lock like accounts do (failure count, lock end), per
/// node, so that `Locked` does not tell them apart.
static PHANTOMS: LazyLock<Mutex<HashMap<String, (i64, i64)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
/// Addresses without an account tracked before expired ones are swept.
const PHANTOMS_SWEEP_AT: usize = 100_000;

/// Counts a failed sign-in to an address without an account: `Err(ms)` while locked.
fn phantom_attempt(key: &str, now: i64) -> Result<(), i64> {
    let mut all = PHANTOMS.lock().unwrap_or_else(|e| e.into_inner());
    if all.len() > PHANTOMS_SWEEP_AT {
        all.retain(|_, (_, until)| *until + MAX_LOCK_MS > now);
    }
    let (failures, until) = all.entry(key.to_string()).or_insert((0, 0));
    if *until > now {
        return Err(*until - now);
    }
    *failures += 1;
    if let Some(ms) = lock_ms(*failures) {
        *until = now + ms;
    }
    Ok(())
}

/// What a sign-in presents.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The address.
    pub email: &'a str,
    /// The password.
    pub password: &'a str,
    /// The tenant (by name) whose account is meant; `None`: any of the address's.
    pub tenant: Option<&'a str>,
    /// The second factor.
    pub presented: Presented<'a>,
}

/// An account whose attempt is counted (see [`Store::reserve_login`]).
struct Counted {
    user: UserRecord,
    lock: Option<i64>,
    previous_lock: Option<i64>,
}

impl Counted {
    /// Takes the attempt back: it was not a failure.
    async fn release(&self, services: &Services) -> Result<(), ServiceError> {
        Ok(services
            .store
            .release_login(&self.user.id, self.lock, self.previous_lock)
            .await?)
    }
}

/// The accounts a sign-in means: the address's, in the named tenant if any, at most
/// [`MAX_ACCOUNTS_TRIED`]; and the address's blind index (`None`: not an address).
async fn accounts(
    services: &Services,
    creds: &Credentials<'_>,
) -> Result<(Vec<UserRecord>, Option<String>), ServiceError> {
    let Ok(address) = Address::parse(creds.email) else {
        return Ok((Vec::new(), None));
    };
    let index = email_index(services, &address);
    let mut found = services.store.find_users(&index).await?;
    if let Some(name) = creds.tenant {
        let tenant = services.store.get_tenant_by_name(name).await?;
        found.retain(|u| tenant.as_ref().is_some_and(|t| t.id == u.tenant_id));
    }
    found.truncate(MAX_ACCOUNTS_TRIED);
    Ok((found, Some(index)))
}

/// A sign-in to an address without an account (or not an address): it locks as an
/// account would, costs the same Argon2id verification, and is refused.
async fn no_account(
    services: &Services,
    creds: &Credentials<'_>,
    index: Option<String>,
    ip: Option<IpAddr>,
    now: i64,
) -> LoginError {
    let target = index.as_deref().map(auth_failures::unknown_address);
    if let Some(index) = &index {
        let key = format!("{}/{index}", creds.tenant.unwrap_or(""));
        if let Err(ms) = phantom_attempt(&key, now) {
            auth_failures::record(services, AuthFailure::Locked, None, target, ip).await;
            return LoginError::Locked(ms);
        }
    }
    let _ = password_matches(creds.password, DUMMY_HASH).await;
    auth_failures::record(services, AuthFailure::Password, None, target, ip).await;
    LoginError::Invalid
}

/// Signs in from `ip`: counts the attempt on each meant account (refusing locked
/// ones), checks the password, that the tenant is not cancelled, the tenant's address
/// allowlist, the second factor if the user has one, and opens a session unless an
/// admin changed the user meanwhile. Refusals that count are recorded (metric and
/// audit log).
pub async fn login(
    services: &Services,
    creds: Credentials<'_>,
    ip: Option<IpAddr>,
) -> Result<(UserRecord, NewSession), LoginError> {
    let now = now_ms();
    let (found, index) = accounts(services, &creds).await?;
    if found.is_empty() {
        return Err(no_account(services, &creds, index, ip, now).await);
    }
    let mut counted = Vec::with_capacity(found.len());
    let mut locked: Vec<(UserRecord, i64)> = Vec::new();
    for user in found {
        match services
            .store
            .reserve_login(&user.id, now, LOCK_POLICY)
            .await
            .map_err(ServiceError::from)?
        {
            Reservation::Counted {
                lock,
                previous_lock,
            } => counted.push(Counted {
                user,
                lock,
                previous_lock,
            }),
            Reservation::Locked(until) => locked.push((user, until)),
            Reservation::NoUser => {}
        }
    }
    if counted.is_empty() {
        for (user, _) in &locked {
            let target = Some(user.id.clone());
            auth_failures::record(
                services,
                AuthFailure::Locked,
                Some(&user.tenant_id),
                target,
                ip,
            )
            .await;
        }
        return Err(match locked.iter().map(|(_, until)| until).min() {
            Some(until) => LoginError::Locked((until - now).max(1)),
            None => LoginError::Invalid,
        });
    }
    let mut winner = None;
    for (i, c) in counted.iter().enumerate() {
        if password_matches(creds.password, &c.user.password_hash).await {
            winner = Some(i);
            break;
        }
    }
    let Some(winner) = winner else {
        for c in &counted {
            let target = Some(c.user.id.clone());
            auth_failures::record(
                services,
                AuthFailure::Password,
                Some(&c.user.tenant_id),
                target,
                ip,
            )
            .await;
        }
        return Err(LoginError::Invalid);
    };
    let winner = counted.swap_remove(winner);
    // The password opened another account: these attempts were no failures.
    for other in &counted {
        other.release(services).await?;
    }
    let outcome = open(services, &winner.user, creds.presented, ip, now).await;
    match &outcome {
        Err(LoginError::InvalidSecondFactor) => {
            let target = Some(winner.user.id.clone());
            let tenant = Some(winner.user.tenant_id.as_str());
            auth_failures::record(services, AuthFailure::SecondFactor, tenant, target, ip).await;
        }
        Err(_) => winner.release(services).await?,
        Ok(_) => {}
    }
    outcome
}

/// The rest of a sign-in whose password was right: the checks after it, the second
/// factor, and the session (opened only if no admin changed the user since `user` was
/// read; that clears the failure count).
async fn open(
    services: &Services,
    user: &UserRecord,
    presented: Presented<'_>,
    ip: Option<IpAddr>,
    now: i64,
) -> Result<(UserRecord, NewSession), LoginError> {
    if user.disabled_at.is_some() {
        return Err(LoginError::Disabled);
    }
    postwerk_services::tenants::ensure_active(services, &user.tenant_id).await?;
    if !address_allowed(&policy(services, user).await?, ip) {
        return Err(LoginError::AddressNotAllowed);
    }
    let mut user = user.clone();
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
            return Err(LoginError::InvalidSecondFactor);
        }
        // The step or recovery code is used up only if nobody used it (or changed
        // the factor) meanwhile.
        user = set_second_factor(services, user, Some(&factor))
            .await?
            .ok_or(LoginError::InvalidSecondFactor)?;
    }
    let session = NewSession {
        token: random_token(32),
        csrf_token: random_token(32),
        expires_at: now + SESSION_MS,
    };
    let opened = services
        .store
        .open_session(SessionRecord {
            id_hash: sha256(&session.token),
            user_id: user.id.clone(),
            tenant_id: user.tenant_id.clone(),
            csrf_hash: sha256(&session.csrf_token),
            created_at: now,
            expires_at: session.expires_at,
            revoked_at: None,
            user_gen: user.session_gen,
        })
        .await
        .map_err(ServiceError::from)?;
    if !opened {
        // An admin disabled the user, set a new password, removed its second factor or
        // forced a logout while this sign-in ran: that wins.
        return Err(LoginError::Invalid);
    }
    user.failed_logins = 0;
    user.locked_until = None;
    Ok((user, session))
}

/// Argon2id hash of a random password, verified against when the address is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZHVtbXlzYWx0ZHVtbXk$0nOFWNk9cc6OaGaYcsAmQ8WCqJXLdF5LJUXtqYgkz/Y";

/// The live session of `token` and its user; `None` for an unknown, ended or
/// expired session, a disabled user, or one an admin changed since (forced logout,
/// new password, second factor removed).
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
        .filter(|u| u.disabled_at.is_none() && session.user_gen == u.session_gen)
        .map(|u| (session, u)))
}

/// The user's sessions that still sign in, newest first.
pub async fn live_sessions(
    services: &Services,
    user: &UserRecord,
) -> Result<Vec<SessionRecord>, ServiceError> {
    let sessions = services.store.live_sessions(&user.id, now_ms()).await?;
    Ok(sessions
        .into_iter()
        .filter(|s| s.user_gen == user.session_gen)
        .collect())
}

/// Ends `user`'s session whose token hashes to `id_hash`; `false` if it is not one
/// of theirs or has already ended.
pub async fn end_own_session(
    services: &Services,
    user: &UserRecord,
    id_hash: Vec<u8>,
) -> Result<bool, ServiceError> {
    match services.store.get_session(id_hash.clone()).await? {
        Some(s) if s.user_id == user.id => {
            Ok(services.store.end_session(id_hash, now_ms()).await?)
        }
        _ => Ok(false),
    }
}

/// Whether `csrf_token` is the session's.
pub fn csrf_matches(session: &SessionRecord, csrf_token: &str) -> bool {
    postwerk_core::id::constant_time_eq(&session.csrf_hash, &sha256(csrf_token))
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
        let phc = hash_password_now("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(password_matches_now("correct horse battery", &phc));
        assert!(!password_matches_now("wrong horse battery", &phc));
        assert!(!password_matches_now("anything", "not a hash"));
        assert!(
            PasswordHash::new(DUMMY_HASH).is_ok(),
            "the dummy hash parses, so unknown addresses cost the same"
        );
    }

    #[tokio::test]
    async fn argon2_runs_off_the_async_workers() {
        let phc = hash_password("correct horse battery").await.unwrap();
        assert!(password_matches("correct horse battery", &phc).await);
        assert!(!password_matches("wrong horse battery", &phc).await);
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

    #[test]
    fn addresses_without_an_account_lock_like_accounts() {
        let key = "test/unknown-address-lock";
        let now = 1_000_000;
        for _ in 0..FAILURES_BEFORE_LOCK {
            assert!(phantom_attempt(key, now).is_ok());
        }
        assert_eq!(phantom_attempt(key, now + 1), Err(FIRST_LOCK_MS - 1));
        // After the lock, the next failure locks for twice as long.
        assert!(phantom_attempt(key, now + FIRST_LOCK_MS).is_ok());
        assert_eq!(
            phantom_attempt(key, now + FIRST_LOCK_MS + 1),
            Err(2 * FIRST_LOCK_MS - 1)
        );
        assert_eq!(lock_ms(4), None);
        assert_eq!(lock_ms(5), Some(FIRST_LOCK_MS));
        assert_eq!(lock_ms(40), Some(MAX_LOCK_MS));
    }
}
