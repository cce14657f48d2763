//! `[privacy]` and `[retention]`: the personal-data part of the configuration model
//! (see the parent module for how the file and the environment are read).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{de_duration, ser_duration};

/// `[privacy]`: personal data handling.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Streams that send only to people with active consent for a purpose:
    /// `consent_required = { broadcast = "marketing" }` (the default). Recipients
    /// without it get status `no_consent` and are not sent to. `{}` turns gating off.
    pub consent_required: std::collections::BTreeMap<String, String>,
    /// How long after receipt a data-subject request is due (the GDPR allows one
    /// month; set a stricter internal target such as `7d`). Default `30d`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub request_due: Duration,
    /// How soon after a personal-data breach is detected the affected customers must
    /// be told (the authority deadline is the GDPR's 72 hours). Default `24h`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub breach_customer_notice: Duration,
    /// The controller named in the record of processing (`GET /v1/privacy/record`),
    /// e.g. `"Example GmbH, Hauptstr. 1, Berlin"`.
    pub controller: String,
    /// The data protection officer's contact, for the record.
    pub dpo: String,
    /// Where the data is stored and processed, e.g. `["Germany (own servers)"]`.
    pub data_locations: Vec<String>,
    /// Other processors involved (hosting, backups): `[[privacy.sub_processors]]
    /// name = "…", purpose = "…", location = "…"`.
    pub sub_processors: Vec<SubProcessor>,
}

/// `[[privacy.sub_processors]]`: a processor named in the record of processing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubProcessor {
    /// Who.
    pub name: String,
    /// What for.
    pub purpose: String,
    /// Where the data goes.
    pub location: String,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            consent_required: [("broadcast".to_string(), "marketing".to_string())].into(),
            request_due: Duration::from_secs(30 * 86_400),
            breach_customer_notice: Duration::from_secs(24 * 3600),
            controller: String::new(),
            dpo: String::new(),
            data_locations: Vec::new(),
            sub_processors: Vec::new(),
        }
    }
}

/// `[retention]`: how long data is kept; a purge job enforces it continuously.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Message content and envelope, once every recipient is final. Default `7d`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub content: Duration,
    /// Events, and then the messages themselves (recipient rows, summaries). Default `30d`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub events: Duration,
    /// Webhook delivery records (attempts, status codes). Default `7d`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub webhook_logs: Duration,
    /// How often the purge job runs. Default `10m`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub interval: Duration,
    /// How long a cancelled tenant can be reactivated before all its data, and then
    /// its data key, are deleted. Default `90d`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub cancelled_tenants: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            content: Duration::from_secs(7 * 86_400),
            events: Duration::from_secs(30 * 86_400),
            webhook_logs: Duration::from_secs(7 * 86_400),
            interval: Duration::from_secs(600),
            cancelled_tenants: Duration::from_secs(90 * 86_400),
        }
    }
}
