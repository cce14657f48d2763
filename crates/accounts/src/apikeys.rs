//! API keys: creation and verification.
//!
//! A key looks like `pw_live_<26 id chars><32 secret chars>`. The id part names the
//! key without revealing it (it is safe to log); only SHA-256 of the secret part is
//! stored, and comparison is constant-time.

use std::net::IpAddr;

use postwerk_core::config::Cidr;
use postwerk_core::id::{constant_time_eq, new_id, random_token};
use postwerk_core::metrics::AuthFailure;
use postwerk_core::model::Scope;
use postwerk_store::model::ApiKeyRecord;
use postwerk_store::prelude::*;
use ring::digest;

use postwerk_services::context::{ServiceError, Services, now_ms};

const PREFIX: &str = "pw_live_";
const ID_LEN: usize = 26;
const SECRET_LEN: usize = 32;
/// `last_used_at` is written at most this often per key (ms).
const TOUCH_EVERY_MS: i64 = 60_000;

/// Why a presented key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not of the `pw_live_…` form.
    #[error("malformed API key")]
    Malformed,
    /// No such key, or the secret does not match.
    #[error("invalid API key")]
    Invalid,
    /// The key was revoked.
    #[error("API key revoked")]
    Revoked,
    /// The key expired.
    #[error("API key expired")]
    Expired,
    /// The store could not be asked.
    #[error("key store unavailable")]
    Unavailable,
}

/// What a new key is and may do.
#[derive(Debug, Clone, Default)]
pub struct KeySpec {
    /// Human label.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it stops working.
    pub expires_at: Option<i64>,
    /// Client addresses (CIDRs, validated) it may be used from; empty: any.
    pub allowed_ips: Vec<String>,
    /// Its own request limit per rate-limit window.
    pub rate_limit: Option<u32>,
}

impl KeySpec {
    /// The spec of an existing key (for its successor).
    pub fn of(key: &ApiKeyRecord) -> Self {
        KeySpec {
            name: key.name.clone(),
            scopes: key.scopes.clone(),
            expires_at: key.expires_at,
            allowed_ips: key.allowed_ips.clone(),
            rate_limit: key.rate_limit,
        }
    }
}

/// Checks an allowlist entry: an address or CIDR; returns it normalised.
pub fn parse_allowed_ip(entry: &str) -> Option<String> {
    Cidr::parse(entry.trim()).map(|_| entry.trim().to_string())
}

/// Whether `key` may be used from `ip` (`None`: address unknown, refused when the key
/// has an allowlist).
pub fn allows_address(key: &ApiKeyRecord, ip: Option<IpAddr>) -> bool {
    key.allowed_ips.is_empty()
        || ip.is_some_and(|ip| {
            key.allowed_ips
                .iter()
                .filter_map(|c| Cidr::parse(c))
                .any(|c| c.contains(ip))
        })
}

/// Creates a key for `tenant_id`; returns the record and the token (shown once).
pub async fn create_key(
    services: &Services,
    tenant_id: &str,
    spec: KeySpec,
) -> Result<(ApiKeyRecord, String), ServiceError> {
    let id = new_id("key");
    let secret = random_token(SECRET_LEN);
    let token = format!("{PREFIX}{}{secret}", &id[4..]);
    let record = ApiKeyRecord {
        id,
        tenant_id: tenant_id.to_string(),
        name: spec.name,
        secret_hash: hash(&secret),
        scopes: spec.scopes,
        created_at: now_ms(),
        expires_at: spec.expires_at,
        revoked_at: None,
        last_used_at: None,
        allowed_ips: spec.allowed_ips,
        rate_limit: spec.rate_limit,
    };
    services.store.insert_api_key(record.clone()).await?;
    Ok((record, token))
}

/// Why a key could not be revoked or rotated.
#[derive(Debug, thiserror::Error)]
pub enum KeyChangeError {
    /// The tenant has no such key, or it is revoked already.
    #[error("no such active key")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Revokes a tenant's key at once.
pub async fn revoke(services: &Services, tenant_id: &str, id: &str) -> Result<(), KeyChangeError> {
    let ended = services
        .store
        .end_api_key(tenant_id, id, now_ms(), true)
        .await
        .map_err(ServiceError::from)?;
    if ended {
        Ok(())
    } else {
        Err(KeyChangeError::NotFound)
    }
}

/// Rotates a tenant's key: a successor with the same name, scopes, expiry, allowlist
/// and rate limit is
/// created (its token returned, shown once), and the old key stays valid for
/// `grace_ms` more (never longer than it already would).
pub async fn rotate(
    services: &Services,
    tenant_id: &str,
    id: &str,
    grace_ms: i64,
) -> Result<(ApiKeyRecord, String), KeyChangeError> {
    let old = services
        .store
        .get_api_key(id)
        .await
        .map_err(ServiceError::from)?
        .filter(|k| k.tenant_id == tenant_id && k.revoked_at.is_none())
        .ok_or(KeyChangeError::NotFound)?;
    let successor = create_key(services, tenant_id, KeySpec::of(&old)).await?;
    let ended = services
        .store
        .end_api_key(tenant_id, id, now_ms().saturating_add(grace_ms), false)
        .await
        .map_err(ServiceError::from)?;
    if !ended {
        return Err(KeyChangeError::NotFound);
    }
    Ok(successor)
}

/// Checks a presented token and returns its key record.
pub async fn verify(services: &Services, token: &str) -> Result<ApiKeyRecord, KeyError> {
    check(services, token).await.map_err(|(e, _)| e)
}

/// [`verify`] for a client at `ip` that also records a refusal (see
/// [`crate::auth_failures`]): kind `api_key`, naming the key by its id and with its
/// tenant when the key exists (a wrong secret, revoked, expired), with neither when it
/// does not; never the token. A store outage is not a refusal.
pub async fn verify_from(
    services: &Services,
    token: &str,
    ip: Option<IpAddr>,
) -> Result<ApiKeyRecord, KeyError> {
    match check(services, token).await {
        Ok(key) => Ok(key),
        Err((KeyError::Unavailable, _)) => Err(KeyError::Unavailable),
        Err((e, key)) => {
            let tenant = key.as_ref().map(|k| k.tenant_id.as_str());
            let target = key.as_ref().map(|k| format!("key:{}", k.id));
            crate::auth_failures::record(services, AuthFailure::ApiKey, tenant, target, ip).await;
            Err(e)
        }
    }
}

/// [`verify`], with the refused key's record when it exists.
async fn check(
    services: &Services,
    token: &str,
) -> Result<ApiKeyRecord, (KeyError, Option<ApiKeyRecord>)> {
    let body = token
        .strip_prefix(PREFIX)
        .ok_or((KeyError::Malformed, None))?;
    if body.len() != ID_LEN + SECRET_LEN || !body.is_ascii() {
        return Err((KeyError::Malformed, None));
    }
    let (id_part, secret) = body.split_at(ID_LEN);
    let id = format!("key_{id_part}");
    let key = services
        .store
        .get_api_key(&id)
        .await
        .map_err(|_| (KeyError::Unavailable, None))?
        .ok_or((KeyError::Invalid, None))?;
    if !constant_time_eq(&key.secret_hash, &hash(secret)) {
        return Err((KeyError::Invalid, Some(key)));
    }
    let now = now_ms();
    if key.revoked_at.is_some() {
        return Err((KeyError::Revoked, Some(key)));
    }
    if key.expires_at.is_some_and(|e| e <= now) {
        return Err((KeyError::Expired, Some(key)));
    }
    if key.last_used_at.is_none_or(|t| now - t > TOUCH_EVERY_MS) {
        // Best effort: a failed bookkeeping write must not refuse the request.
        let _ = services.store.touch_api_key(&key.id, now).await;
    }
    Ok(key)
}

fn hash(secret: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_hash_deterministically() {
        assert_eq!(hash("a"), hash("a"));
        assert_ne!(hash("a"), hash("b"));
        assert_eq!(hash("a").len(), 32);
    }
}
