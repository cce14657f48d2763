//! `[circuit_breaker]`: when a stream's complaints or hard bounces show that its mail
//! is unwanted, the stream is paused before it ruins the sending reputation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{de_duration, ser_duration};

/// `[circuit_breaker]`: automatic pausing of streams.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitBreakerConfig {
    /// Pause streams automatically. Default `true`.
    pub enabled: bool,
    /// Pause when complaints exceed this share of the window. Default `0.003` (0.3 %).
    pub complaint_rate: f64,
    /// Pause when hard bounces exceed this share of the window. Default `0.05` (5 %).
    pub bounce_rate: f64,
    /// The rolling window: a stream's most recently finished (delivered or bounced)
    /// recipients since it was last resumed. Rates are judged only once this many
    /// have finished. Default `500`.
    pub window: usize,
    /// How soon after a bounce or complaint the stream's rates are checked. Default
    /// `5s`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub check_every: Duration,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            enabled: true,
            complaint_rate: 0.003,
            bounce_rate: 0.05,
            window: 500,
            check_every: Duration::from_secs(5),
        }
    }
}
