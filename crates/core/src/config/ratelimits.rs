//! `[rate_limits]`: how many requests API keys, tenants and client addresses may make.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{de_duration, ser_duration};

/// `[rate_limits]`: request rate limits (GCRA: bursts up to the limit, refilled evenly
/// over the window). `0` turns a limit off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    /// The window the limits count over. Default `1m`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub window: Duration,
    /// API requests and SMTP submissions per window per API key (a trusted network
    /// counts as one), unless the key has its own limit. Default `60000`.
    pub per_key: u32,
    /// API requests and SMTP submissions per window per tenant, all its keys and
    /// users together. Default `120000`.
    pub per_tenant: u32,
    /// API requests per window per client address, counted before the key is
    /// checked. Default `120000`.
    pub per_ip: u32,
    /// SMTP AUTH attempts per window per client address. Default `60`.
    pub smtp_auth_per_ip: u32,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        RateLimitsConfig {
            window: Duration::from_secs(60),
            per_key: 60_000,
            per_tenant: 120_000,
            per_ip: 120_000,
            smtp_auth_per_ip: 60,
        }
    }
}
