//! `[tracking]`: the public links Postwerk puts into mail (one-click unsubscribe now;
//! open and click tracking use the same host).

use serde::{Deserialize, Serialize};

/// `[tracking]`: links in outgoing mail.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingConfig {
    /// Public base URL of this server's link endpoints (`/u/…` for unsubscribe), as
    /// recipients reach it: `https://links.example.com`. Default: `http://` + the
    /// `[http] listen` address (fine for trying Postwerk out; mailbox providers
    /// require https).
    pub base_url: Option<String>,
    /// Streams whose mail carries `List-Unsubscribe` (an https one-click link) and
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), unless the
    /// message brings its own `List-Unsubscribe`. Default `["broadcast"]`.
    pub unsubscribe_streams: Vec<String>,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            base_url: None,
            unsubscribe_streams: vec!["broadcast".into()],
        }
    }
}
