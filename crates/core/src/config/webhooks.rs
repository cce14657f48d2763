//! `[webhooks]`: how event notifications are posted to customers' endpoints.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{de_duration, ser_duration};

/// `[webhooks]`: event delivery to customers' HTTPS endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Allow `http://` endpoints on loopback addresses (development and tests).
    /// Default `false`: endpoints must be `https://` on public addresses.
    pub allow_loopback: bool,
    /// Allow endpoints on private (RFC 1918, unique-local), link-local, CGNAT and
    /// similar non-public addresses. Default `false` (no SSRF into the local network
    /// or cloud metadata services).
    pub allow_private: bool,
    /// How long one delivery attempt may take. Default `10s`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub timeout: Duration,
    /// An endpoint that has failed every attempt for this long is disabled (an audit
    /// entry and a warning say so; `PATCH /v1/webhooks/{id}` with
    /// `{"enabled": true}` resumes it).
    /// Default `3d`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub disable_after: Duration,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_loopback: false,
            allow_private: false,
            timeout: Duration::from_secs(10),
            disable_after: Duration::from_secs(3 * 86_400),
        }
    }
}
