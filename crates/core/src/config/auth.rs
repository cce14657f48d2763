//! `[auth]`: sign-in policies for people (users), per tenant.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `[auth]`: sign-in policies.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Policies by tenant name: `[auth.tenants.acme] require_totp = true`.
    pub tenants: BTreeMap<String, TenantAuthConfig>,
}

/// `[auth.tenants.<name>]`: how the tenant's users may sign in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantAuthConfig {
    /// Users must have a second factor (TOTP): until they set one up, a session may
    /// only be used to set it up. Default `false`.
    pub require_totp: bool,
    /// Addresses or CIDRs users may sign in and use sessions from; elsewhere they are
    /// refused even with the right password. Default empty: anywhere.
    pub login_allowlist: Vec<String>,
}

impl AuthConfig {
    /// The policy of tenant `name` (the default policy when none is set).
    pub fn tenant(&self, name: &str) -> TenantAuthConfig {
        self.tenants.get(name).cloned().unwrap_or_default()
    }
}
