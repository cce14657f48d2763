//! The tenants area's rows: tenants and their API keys.

use super::*;

/// A tenant (organisation) and its wrapped data key.
#[derive(Debug, Clone)]
pub struct TenantRecord {
    /// `ten_…`.
    pub id: String,
    /// Unique name, e.g. `default`.
    pub name: String,
    /// The tenant data key, wrapped by the master key.
    pub wrapped_key: Vec<u8>,
    /// Creation time.
    pub created_at: i64,
    /// For a sub-account: the parent tenant, whose admins may act on it.
    pub parent_id: Option<String>,
    /// Set while the tenant is cancelled: its keys and users are refused, its mail is
    /// held, and its data is deleted once `[retention] cancelled_tenants` has passed.
    pub cancelled_at: Option<i64>,
}

/// An API key. The secret is stored only as a SHA-256 hash.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    /// `key_…` — the public part of the token, used for lookup.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Human label.
    pub name: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// Creation time.
    pub created_at: i64,
    /// Optional expiry.
    pub expires_at: Option<i64>,
    /// Set when revoked.
    pub revoked_at: Option<i64>,
    /// Last successful use (updated at most once a minute).
    pub last_used_at: Option<i64>,
    /// Client addresses (CIDRs) the key may be used from; empty: any.
    pub allowed_ips: Vec<String>,
    /// Requests per rate-limit window for this key (`None`: `[rate_limits] per_key`).
    pub rate_limit: Option<u32>,
}
