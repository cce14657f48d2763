//! `[mta_sts]`: honouring recipient domains' MTA-STS policies (RFC 8461).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{de_duration, ser_duration};

/// `[mta_sts]`: SMTP MTA Strict Transport Security for outbound mail.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MtaStsConfig {
    /// Look up recipient domains' policies and honour those in `enforce` mode: mail
    /// goes only to the MX hosts a policy names, over TLS with a certificate valid for
    /// the host, or waits. Default `true`.
    pub enabled: bool,
    /// Extra trust anchors (a PEM file) added to Mozilla's roots when verifying policy
    /// hosts and MX hosts under an `enforce` policy: a private CA in a lab or an
    /// intranet. Default none.
    pub ca_file: Option<PathBuf>,
    /// Port of policy hosts (`mta-sts.<domain>`). Default 443; change it only for
    /// tests and labs.
    pub policy_port: u16,
    /// How long fetching one policy may take. Default `10s`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub fetch_timeout: Duration,
}

impl Default for MtaStsConfig {
    fn default() -> Self {
        MtaStsConfig {
            enabled: true,
            ca_file: None,
            policy_port: 443,
            fetch_timeout: Duration::from_secs(10),
        }
    }
}
