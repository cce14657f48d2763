//! `[privacy]` and `[retention]`: the personal-data part of the configuration model
//! (see the parent module for how the file and the environment are read).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{de_duration, ser_duration};
use std::collections::BTreeMap;

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
    /// The audit log (accesses to personal data, admin actions, sign-ins, with IP
    /// addresses). The oldest entries are pruned; the chain still verifies from the
    /// last pruned one. Default `365d`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub audit_log: Duration,
    /// How long a cancelled tenant can be reactivated before all its data, and then
    /// its data key, are deleted. Default `90d`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub cancelled_tenants: Duration,
    /// Periods of a stream in every tenant: `[retention.streams.broadcast] content = "2d"`.
    pub streams: BTreeMap<String, RetentionPeriods>,
    /// Periods of one tenant, by name, with its streams' inside:
    /// `[retention.tenants.acme] events = "90d"`,
    /// `[retention.tenants.acme.streams.transactional] content = "30d"`.
    pub tenants: BTreeMap<String, RetentionPeriods>,
}

/// Periods that differ from the defaults; what is left out is taken from the next
/// less specific level (tenant and stream, tenant, stream, `[retention]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPeriods {
    /// Message content and envelope.
    #[serde(
        default,
        with = "super::opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub content: Option<Duration>,
    /// Events and messages.
    #[serde(
        default,
        with = "super::opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub events: Option<Duration>,
    /// Webhook delivery logs.
    #[serde(
        default,
        with = "super::opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub webhook_logs: Option<Duration>,
    /// A tenant's streams' periods (`[retention.tenants.<name>.streams.<stream>]`;
    /// only in a tenant's section).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub streams: BTreeMap<String, RetentionPeriods>,
}

impl RetentionConfig {
    /// Every level's periods with the configuration key naming it (for errors), the
    /// defaults first. A tenant's entry includes its streams; they follow it too.
    pub fn policies(&self) -> Vec<(String, RetentionPeriods)> {
        let mut all = vec![(
            "retention".to_string(),
            RetentionPeriods {
                content: Some(self.content),
                events: Some(self.events),
                webhook_logs: Some(self.webhook_logs),
                streams: BTreeMap::new(),
            },
        )];
        for (stream, p) in &self.streams {
            all.push((format!("retention.streams.{stream}"), p.clone()));
        }
        for (tenant, t) in &self.tenants {
            all.push((format!("retention.tenants.{tenant}"), t.clone()));
            for (stream, p) in &t.streams {
                all.push((
                    format!("retention.tenants.{tenant}.streams.{stream}"),
                    p.clone(),
                ));
            }
        }
        all
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            content: Duration::from_secs(7 * 86_400),
            events: Duration::from_secs(30 * 86_400),
            webhook_logs: Duration::from_secs(7 * 86_400),
            interval: Duration::from_secs(600),
            streams: BTreeMap::new(),
            tenants: BTreeMap::new(),
            audit_log: Duration::from_secs(365 * 86_400),
            cancelled_tenants: Duration::from_secs(90 * 86_400),
        }
    }
}
