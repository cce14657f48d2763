//! `[tracking]`: the public links Postwerk puts into mail: one-click unsubscribe,
//! the open pixel and tracked links, all served under one base URL.

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
    /// Streams whose API-composed HTML mail gets the open pixel unless the message
    /// says `"track": {"opens": false}`. Default `["broadcast"]` (never
    /// `transactional` by default).
    pub open_streams: Vec<String>,
    /// Streams whose API-composed HTML links are tracked unless the message says
    /// otherwise (`"track": {"clicks": "none|html|text|all"}`). Default `["broadcast"]`.
    pub click_streams: Vec<String>,
    /// What is kept of an opener's or clicker's IP address: `none` (the default) or
    /// `truncated` (the /24 or /48 network).
    pub store_ip: StoreIp,
    /// Record opens and clicks only of people with active consent for this purpose
    /// (e.g. `"tracking"`, recorded with `POST /v1/contacts/{email}/consents`). Default
    /// none: every tracked message's hits are recorded (restricted and erased people
    /// never are).
    pub consent_purpose: Option<String>,
}

/// What is kept of a tracked request's IP address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreIp {
    /// Nothing.
    #[default]
    None,
    /// The /24 (IPv4) or /48 (IPv6) network.
    Truncated,
}

/// True when the host of `url` (`scheme://host[:port]/…`) is `localhost`, a
/// `*.localhost` name, a loopback address or the unspecified address (`0.0.0.0`, `::`).
pub(crate) fn is_local_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => hostport.split(':').next().unwrap_or(""),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip.is_unspecified(),
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    }
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            base_url: None,
            unsubscribe_streams: vec!["broadcast".into()],
            open_streams: vec!["broadcast".into()],
            click_streams: vec!["broadcast".into()],
            store_ip: StoreIp::None,
            consent_purpose: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_local_url;

    #[test]
    fn finds_local_hosts() {
        for local in [
            "http://127.0.0.1:8080",
            "https://127.8.9.1/x",
            "http://[::1]:8080/",
            "http://0.0.0.0:8080",
            "http://[::]:80",
            "https://localhost",
            "https://LocalHost.:443/u",
            "https://app.localhost",
            "http://user@127.0.0.1/",
        ] {
            assert!(is_local_url(local), "{local}");
        }
        for public in [
            "https://links.example.com",
            "http://links.example.com:8080/path",
            "https://192.0.2.7",
            "https://[2001:db8::1]:443",
            "https://localhost.example.com",
        ] {
            assert!(!is_local_url(public), "{public}");
        }
    }
}
