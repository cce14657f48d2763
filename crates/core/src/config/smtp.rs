//! `[smtp]`: the SMTP servers' part of the configuration model (see the parent
//! module for how the file and the environment are read).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{de_duration, ser_duration};

/// `[smtp]`: the SMTP servers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Message submission for applications (RFC 6409).
    pub submission: SubmissionConfig,
    /// The inbound MX for bounces (DSNs), feedback-loop reports and auto-replies.
    pub inbound: InboundConfig,
}

/// `[smtp.inbound]`: the MX of the bounce domain. It accepts mail only for VERP
/// return paths (`b+<recipient id>-<tag>@…` with a valid tag) and the configured
/// feedback addresses, and turns DSNs, ARF reports and auto-replies into events;
/// anything else gets `550 5.1.1` (no open relay). STARTTLS uses the submission
/// certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundConfig {
    /// Start the inbound listener. Default `true`.
    pub enabled: bool,
    /// Listener. Default `127.0.0.1:2525` (production: port 25 of the bounce MX).
    pub listen: SocketAddr,
    /// Addresses registered with mailbox providers' feedback loops (ARF reports are
    /// sent there), e.g. `["fbl@bounces.example.com"]`. Default none.
    pub feedback_addresses: Vec<String>,
    /// Largest report in bytes (reports quote the original message). Default 10 MiB.
    pub max_message_bytes: usize,
    /// A session idle this long is closed with `421 4.4.2`. Default `2m`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub idle_timeout: Duration,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 2525)),
            feedback_addresses: Vec::new(),
            max_message_bytes: 10 << 20,
            idle_timeout: Duration::from_secs(120),
        }
    }
}

/// `[smtp.submission]`: SMTP submission with STARTTLS and implicit TLS. Clients
/// authenticate with `AUTH PLAIN` or `AUTH LOGIN` (user `apikey`, password an API key
/// with scope `send`), only over TLS, or connect from a trusted network.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubmissionConfig {
    /// Start the submission listeners. Default `true`.
    pub enabled: bool,
    /// Plain listener offering STARTTLS. Default `127.0.0.1:2587` (production: port 587).
    pub listen: SocketAddr,
    /// Implicit-TLS listener. Default `127.0.0.1:2465` (production: port 465).
    pub listen_tls: SocketAddr,
    /// PEM certificate chain. Default: a self-signed development certificate generated
    /// into `<data_dir>/tls/submission.crt` on first start. A renewed file is picked up
    /// without restart (checked every few seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// PEM private key for `cert` (default `<data_dir>/tls/submission.key`, mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Largest message in bytes, advertised as SIZE. Default 25 MiB.
    pub max_message_bytes: usize,
    /// Most recipients per message. Default 50.
    pub max_recipients: usize,
    /// A session idle this long is closed with `421 4.4.2`. Default `5m`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub idle_timeout: Duration,
    /// Networks whose clients may submit without AUTH, as a given tenant and stream:
    /// `[[smtp.submission.trusted]] cidr = "127.0.0.0/8", tenant = "default",
    /// stream = "broadcast"`. AUTH still works from them.
    pub trusted: Vec<TrustedNetwork>,
}

/// `[[smtp.submission.trusted]]`: a network allowed to submit without AUTH.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedNetwork {
    /// `address/prefix`, e.g. `127.0.0.0/8` or `fd00::/8`; a bare address is one host.
    pub cidr: String,
    /// Name of the tenant the mail belongs to. Default `default`.
    #[serde(default = "default_tenant_name")]
    pub tenant: String,
    /// Default stream for its mail (a message's `X-Postwerk-Stream:` header wins).
    /// Default `transactional`.
    #[serde(default = "default_stream_name")]
    pub stream: String,
}

fn default_tenant_name() -> String {
    "default".into()
}

fn default_stream_name() -> String {
    "transactional".into()
}

/// Parses `address/prefix` (or a bare address) into the network address and prefix
/// length.
pub fn parse_cidr(cidr: &str) -> Option<(std::net::IpAddr, u8)> {
    let (addr, len) = match cidr.trim().split_once('/') {
        Some((a, l)) => (a.parse::<std::net::IpAddr>().ok()?, l.parse::<u8>().ok()?),
        None => {
            let a: std::net::IpAddr = cidr.trim().parse().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

/// A network: address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address.
    pub net: std::net::IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `::1/128` or a bare address.
    pub fn parse(text: &str) -> Option<Cidr> {
        parse_cidr(text).map(|(net, prefix)| Cidr { net, prefix })
    }

    /// Whether `ip` is inside this network (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl Default for SubmissionConfig {
    fn default() -> Self {
        SubmissionConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 2587)),
            listen_tls: SocketAddr::from(([127, 0, 0, 1], 2465)),
            cert: None,
            key: None,
            max_message_bytes: 25 << 20,
            max_recipients: 50,
            idle_timeout: Duration::from_secs(300),
            trusted: Vec::new(),
        }
    }
}
