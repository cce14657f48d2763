//! The `postwerk.toml` model: every key, its default and its meaning.
//!
//! The doc comments on these structs are the configuration reference (docs/CONFIG.md
//! mirrors them). Parsing is strict: an unknown key is an error that names the key and
//! its line. Environment variables `POSTWERK_<SECTION>_<KEY>` override the file, e.g.
//! `POSTWERK_HTTP_LISTEN=0.0.0.0:8080` or `POSTWERK_DELIVERY_EHLO_NAME=mta.example.com`;
//! lists are comma-separated (`POSTWERK_DNS_NAMESERVERS=127.0.0.1:5353`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

mod audience;
mod auth;
mod backup;
mod breaker;
mod egress;
mod env;
mod mta_sts;
mod privacy;
mod ratelimits;
mod smtp;
mod tracking;
mod webhooks;
pub use audience::{CanariesConfig, ImportsConfig, WatchdogConfig};
pub use auth::{AuthConfig, TenantAuthConfig};
pub use backup::BackupConfig;
pub use breaker::CircuitBreakerConfig;
pub use egress::{EgressConfig, OverCap, PoolConfig, PoolMember, SourceConfig, epoch_day};
use env::apply_env;
pub use env::{OPTIONAL_KEYS, OTHER_ENV_VARIABLES, unknown_env_variables};
pub use mta_sts::MtaStsConfig;
pub use privacy::{PrivacyConfig, RetentionConfig, RetentionPeriods, SubProcessor};
pub use ratelimits::RateLimitsConfig;
pub use smtp::{Cidr, InboundConfig, SmtpConfig, SubmissionConfig, TrustedNetwork, parse_cidr};
pub use tracking::{StoreIp, TrackingConfig};
pub use webhooks::WebhooksConfig;

/// Why a configuration was refused. The message names the key (and line, for files).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// TOML syntax error, unknown key or wrongly typed value (names key and line).
    #[error("{0}")]
    Parse(String),
    /// A value that parsed but makes no sense (names the key).
    #[error("invalid value for `{key}`: {reason}")]
    Invalid {
        /// Dotted key path, e.g. `delivery.routes."example.test"`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the embedded database, the master key and generated files.
    /// Default `./postwerk-data` (created on first start, mode 0700).
    pub data_dir: PathBuf,
    /// The REST API listener.
    pub http: HttpConfig,
    /// Where data is stored.
    pub store: StoreConfig,
    /// Outbound delivery.
    pub delivery: DeliveryConfig,
    /// DNS resolution for MX lookups.
    pub dns: DnsConfig,
    /// SMTP front doors.
    pub smtp: SmtpConfig,
    /// Personal data handling.
    pub privacy: PrivacyConfig,
    /// How long data is kept.
    pub retention: RetentionConfig,
    /// Event notifications to customers' endpoints.
    pub webhooks: WebhooksConfig,
    /// Links in outgoing mail (unsubscribe).
    pub tracking: TrackingConfig,
    /// Automatic pausing of streams whose mail draws complaints or bounces.
    pub circuit_breaker: CircuitBreakerConfig,
    /// Local addresses and pools outbound mail leaves from.
    pub egress: EgressConfig,
    /// Recipient domains' MTA-STS policies.
    pub mta_sts: MtaStsConfig,
    /// Request rate limits per API key, tenant and client address.
    pub rate_limits: RateLimitsConfig,
    /// Sign-in policies for users, per tenant.
    pub auth: AuthConfig,
    /// Encrypted backups.
    pub backup: BackupConfig,
    /// Contact imports and their watchdog.
    pub imports: ImportsConfig,
    /// Canary addresses.
    pub canaries: CanariesConfig,
}

/// `[http]`: the REST API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Largest accepted request body in bytes (a batch of messages, a suppression
    /// import). Default 64 MiB.
    pub max_body_bytes: usize,
    /// Reverse proxies (CIDRs) whose `X-Forwarded-For` is believed: the client's
    /// address is then the last one in that header not itself a trusted proxy (for
    /// the audit log, rate limits and tracking). Default none.
    pub trusted_proxies: Vec<String>,
    /// Invalid API keys one client address may present within 5 minutes before it
    /// gets `429 too_many_attempts` for the rest of the window. Default 20.
    pub max_key_failures: u32,
    /// Open HTTP connections in all; one more is answered `503 too_many_connections`
    /// and closed. Default 1024.
    pub max_connections: usize,
    /// Open HTTP connections from one client address (IPv6: one /64); one more is
    /// answered `503 too_many_connections` and closed. `trusted_proxies` count only
    /// against `max_connections`. Default 128.
    pub max_connections_per_ip: usize,
    /// How long a client may take to send a request's headers, and how long an idle
    /// keep-alive connection stays open; then the connection is closed. Default `30s`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub header_timeout: Duration,
    /// How long a request body may pause (no bytes arriving); then the request is
    /// answered `408 body_timeout` and the connection closed. Default `30s`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub body_timeout: Duration,
}

/// `[store]`: the database.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` (embedded, default `sqlite://<data_dir>/postwerk.db`) or
    /// `postgres://user@host/db` for PostgreSQL.
    pub url: Option<String>,
}

/// `[delivery]`: outbound SMTP.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Name given in EHLO and used in Message-IDs. Default `localhost.localdomain`:
    /// set it to the host's public name (its PTR) in production.
    pub ehlo_name: String,
    /// Domain of the VERP Return-Path (`b+<recipient id>-<tag>@<bounce_domain>`). Its MX
    /// should point at the host that will process bounces. Default: the sender's own
    /// domain (then the printed bounce MX record must not replace the domain's own MX).
    pub bounce_domain: Option<String>,
    /// Static next hops per recipient domain: `"example.test" = "127.0.0.1:2626"`
    /// (tests, smarthosts). Other domains are delivered by MX lookup. A key may be an
    /// international name in either form (`"exämple.test"` or `"xn--exmple-cua.test"`):
    /// both route the same recipients.
    pub routes: BTreeMap<String, String>,
    /// Port of recipients' MX hosts. Default 25; change it only for tests and labs
    /// (static routes carry their own port).
    pub smtp_port: u16,
    /// Also deliver to MX hosts (and fetch MTA-STS policies from hosts) on loopback,
    /// private, link-local and reserved addresses. Default `false`: a recipient domain
    /// is a tenant's choice, and its DNS must not reach into the operator's network.
    /// Only for closed networks and tests; `routes` are never restricted.
    pub allow_private_mx: bool,
    /// Upper bound on simultaneous outbound SMTP connections. Default 64.
    pub max_connections: usize,
    /// Upper bound on simultaneous connections to one destination. Default 32.
    pub max_connections_per_destination: usize,
    /// Messages delivered over one connection before it is closed. Default 1000.
    pub max_messages_per_connection: usize,
    /// How long a message is retried before it expires. Default `24h`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub expiry: Duration,
    /// First retry delay; doubles each attempt, with jitter. Default `1m`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub retry_base: Duration,
    /// Longest retry delay. Default `1h`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub retry_max: Duration,
    /// STARTTLS policy: `opportunistic` (default), `required` or `disabled`.
    pub tls: TlsPolicy,
    /// SMTP command timeout. Default `60s`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub command_timeout: Duration,
    /// A traffic-shaping file (TOML, see [`crate::shaping`]) whose rules are matched
    /// before the built-in ones. Default none: the built-in rules only.
    pub shaping: Option<PathBuf>,
}

/// Outbound STARTTLS policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsPolicy {
    /// Use TLS when offered, without verifying the certificate (like most MTAs).
    Opportunistic,
    /// Refuse to deliver without TLS.
    Required,
    /// Never use TLS (tests only).
    Disabled,
}

/// `[dns]`: resolver.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Name servers (`ip:port`). Empty (default): the system resolver (/etc/resolv.conf).
    pub nameservers: Vec<SocketAddr>,
}

impl Config {
    /// The public base URL of link endpoints, without a trailing slash.
    pub fn links_base_url(&self) -> String {
        self.tracking
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.http.listen))
            .trim_end_matches('/')
            .to_string()
    }
}

impl Config {
    /// A warning when the links put into mail (unsubscribe, open pixel, tracked links)
    /// are on — any of `[tracking]`'s stream lists is non-empty, as by default — and
    /// their base URL is one recipients cannot use: a loopback or unspecified host
    /// (`base_url` unset gives `http://` + `[http] listen`), or plain `http`. `serve` logs
    /// it and `config check` prints it.
    pub fn link_warning(&self) -> Option<String> {
        let t = &self.tracking;
        if t.unsubscribe_streams.is_empty()
            && t.open_streams.is_empty()
            && t.click_streams.is_empty()
        {
            return None;
        }
        let base = self.links_base_url();
        let origin = if t.base_url.is_some() {
            "[tracking] base_url"
        } else {
            "[tracking] base_url is unset, so the [http] listen address"
        };
        let reason = if tracking::is_local_url(&base) {
            "a loopback or unspecified address recipients cannot reach"
        } else if base.starts_with("http://") {
            "plain http (mailbox providers expect https for one-click unsubscribe)"
        } else {
            return None;
        };
        Some(format!(
            "links in outgoing mail (unsubscribe, tracking) point at {base}: {origin} is {reason}; \
             set [tracking] base_url to this server's public https URL"
        ))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./postwerk-data"),
            http: HttpConfig::default(),
            store: StoreConfig::default(),
            delivery: DeliveryConfig::default(),
            dns: DnsConfig::default(),
            smtp: SmtpConfig::default(),
            privacy: PrivacyConfig::default(),
            retention: RetentionConfig::default(),
            webhooks: WebhooksConfig::default(),
            tracking: TrackingConfig::default(),
            circuit_breaker: CircuitBreakerConfig::default(),
            egress: EgressConfig::default(),
            mta_sts: MtaStsConfig::default(),
            rate_limits: RateLimitsConfig::default(),
            auth: AuthConfig::default(),
            backup: BackupConfig::default(),
            imports: ImportsConfig::default(),
            canaries: CanariesConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 64 << 20,
            trusted_proxies: Vec::new(),
            max_key_failures: 20,
            max_connections: 1024,
            max_connections_per_ip: 128,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            ehlo_name: "localhost.localdomain".into(),
            bounce_domain: None,
            routes: BTreeMap::new(),
            smtp_port: 25,
            allow_private_mx: false,
            max_connections: 64,
            max_connections_per_destination: 32,
            max_messages_per_connection: 1000,
            expiry: Duration::from_secs(24 * 3600),
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            tls: TlsPolicy::Opportunistic,
            command_timeout: Duration::from_secs(60),
            shaping: None,
        }
    }
}

impl Config {
    /// The traffic-shaping rules: the built-in ones with `delivery.shaping`'s first.
    /// Errors name the file, key and reason.
    pub fn shaping(&self) -> Result<crate::shaping::Shaping, ConfigError> {
        let Some(path) = &self.delivery.shaping else {
            return crate::shaping::Shaping::load(None);
        };
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
            key: "delivery.shaping".into(),
            reason: format!("{shown}: {e}"),
        })?;
        crate::shaping::Shaping::load(Some((&shown, &text)))
    }

    /// Parses a TOML document, applies `POSTWERK_*` overrides from `env`, and validates.
    pub fn from_toml(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut doc: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        apply_env(&mut doc, env)?;
        // Re-parse from the original text first so that errors carry line numbers.
        toml::from_str::<Config>(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        let config: Config = doc.try_into().map_err(|e: toml::de::Error| {
            ConfigError::Parse(format!("environment override: {e}"))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The store URL, defaulting to the SQLite file in the data directory.
    pub fn store_url(&self) -> String {
        self.store
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("postwerk.db").display()))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.store.url
            && !(url.starts_with("sqlite://")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "store.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if let Some(url) = &self.tracking.base_url
            && !((url.starts_with("https://") || url.starts_with("http://")) && url.len() > 8)
        {
            return Err(invalid(
                "tracking.base_url",
                "must be an http:// or https:// URL",
            ));
        }
        if let Some(bad) = self
            .http
            .trusted_proxies
            .iter()
            .find(|c| Cidr::parse(c).is_none())
        {
            return Err(invalid(
                "http.trusted_proxies",
                &format!("`{bad}` is not an address or CIDR"),
            ));
        }
        for (key, n) in [
            ("http.max_connections", self.http.max_connections),
            (
                "http.max_connections_per_ip",
                self.http.max_connections_per_ip,
            ),
        ] {
            if n == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        for (key, d) in [
            ("http.header_timeout", self.http.header_timeout),
            ("http.body_timeout", self.http.body_timeout),
        ] {
            if d.is_zero() {
                return Err(invalid(key, "must be longer than 0s"));
            }
        }
        for (tenant, policy) in &self.auth.tenants {
            if let Some(bad) = policy
                .login_allowlist
                .iter()
                .find(|c| Cidr::parse(c).is_none())
            {
                return Err(invalid(
                    &format!("auth.tenants.{tenant}.login_allowlist"),
                    &format!("`{bad}` is not an address or CIDR"),
                ));
            }
        }
        self.imports.validate()?;
        self.canaries.validate()?;
        if self.rate_limits.window.is_zero() {
            return Err(invalid("rate_limits.window", "must be longer than 0s"));
        }
        if self.mta_sts.policy_port == 0 {
            return Err(invalid("mta_sts.policy_port", "must be a port number"));
        }
        if self.mta_sts.fetch_timeout.is_zero() {
            return Err(invalid("mta_sts.fetch_timeout", "must be longer than 0s"));
        }
        if self.webhooks.timeout.is_zero() {
            return Err(invalid("webhooks.timeout", "must be longer than 0s"));
        }
        if !is_hostname(&self.delivery.ehlo_name) {
            return Err(invalid("delivery.ehlo_name", "must be a host name"));
        }
        if let Some(d) = &self.delivery.bounce_domain
            && !is_hostname(d)
        {
            return Err(invalid("delivery.bounce_domain", "must be a domain name"));
        }
        for (domain, hop) in &self.delivery.routes {
            let key = format!("delivery.routes.\"{domain}\"");
            if crate::address::normalize_domain(domain).is_err() {
                return Err(invalid(&key, "route key must be a domain name"));
            }
            if parse_next_hop(hop).is_none() {
                return Err(invalid(&key, "must be host, host:port or [host]:port"));
            }
        }
        if self.delivery.max_connections == 0 || self.delivery.max_connections_per_destination == 0
        {
            return Err(invalid("delivery.max_connections", "must be at least 1"));
        }
        if self.delivery.max_messages_per_connection == 0 {
            return Err(invalid(
                "delivery.max_messages_per_connection",
                "must be at least 1",
            ));
        }
        if self.delivery.retry_base.is_zero() || self.delivery.retry_max < self.delivery.retry_base
        {
            return Err(invalid("delivery.retry_max", "must be ≥ retry_base > 0"));
        }
        let sub = &self.smtp.submission;
        if sub.cert.is_some() != sub.key.is_some() {
            return Err(invalid("smtp.submission.cert", "set both cert and key"));
        }
        if sub.max_message_bytes == 0 || sub.max_recipients == 0 {
            return Err(invalid(
                "smtp.submission.max_recipients",
                "limits must be at least 1",
            ));
        }
        for (i, t) in sub.trusted.iter().enumerate() {
            if parse_cidr(&t.cidr).is_none() {
                return Err(invalid(
                    &format!("smtp.submission.trusted[{i}].cidr"),
                    "must be address/prefix, e.g. 127.0.0.0/8",
                ));
            }
            if !crate::model::is_stream_name(t.stream.as_str()) {
                return Err(invalid(
                    &format!("smtp.submission.trusted[{i}].stream"),
                    "not a stream name (1–32 of a-z, 0-9, _ and -)",
                ));
            }
        }
        for (stream, purpose) in &self.privacy.consent_required {
            if !crate::model::is_stream_name(stream.as_str()) {
                return Err(invalid(
                    &format!("privacy.consent_required.{stream}"),
                    "not a stream name (1–32 of a-z, 0-9, _ and -)",
                ));
            }
            if purpose.is_empty() || purpose.contains([' ', '/']) {
                return Err(invalid(
                    &format!("privacy.consent_required.{stream}"),
                    "a purpose without spaces or slashes",
                ));
            }
        }
        self.egress.validate()?;
        self.shaping()?;
        let cb = &self.circuit_breaker;
        for (key, rate) in [
            ("circuit_breaker.complaint_rate", cb.complaint_rate),
            ("circuit_breaker.bounce_rate", cb.bounce_rate),
        ] {
            if !(rate > 0.0 && rate < 1.0) {
                return Err(invalid(
                    key,
                    "a share between 0 and 1, e.g. 0.003 for 0.3 %",
                ));
            }
        }
        if cb.window < 100 || cb.check_every.is_zero() {
            return Err(invalid(
                "circuit_breaker.window",
                "at least 100 messages, checked more often than never",
            ));
        }
        if self.retention.interval.is_zero() {
            return Err(invalid("retention.interval", "must be more than 0"));
        }
        for (key, periods) in self.retention.policies() {
            let tenant_level = key.starts_with("retention.tenants.") && !key.contains(".streams.");
            if !periods.streams.is_empty() && !tenant_level {
                return Err(invalid(
                    &format!("{key}.streams"),
                    "streams are set under [retention.streams] or a tenant's section",
                ));
            }
            if periods
                .events
                .is_some_and(|e| e < periods.content.unwrap_or_default())
            {
                return Err(invalid(
                    &format!("{key}.events"),
                    "must be at least its content period (messages go with their events)",
                ));
            }
            if [periods.content, periods.events, periods.webhook_logs]
                .iter()
                .flatten()
                .any(Duration::is_zero)
            {
                return Err(invalid(&key, "periods must be more than 0"));
            }
        }
        let inbound = &self.smtp.inbound;
        for (i, a) in inbound.feedback_addresses.iter().enumerate() {
            if crate::address::Address::parse(a).is_err() {
                return Err(invalid(
                    &format!("smtp.inbound.feedback_addresses[{i}]"),
                    "must be an email address",
                ));
            }
        }
        self.backup.age_recipients()?;
        if inbound.max_message_bytes == 0 {
            return Err(invalid(
                "smtp.inbound.max_message_bytes",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// A [`ConfigError::Invalid`] naming `key`.
fn invalid(key: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// Splits a static route value into host and port (default 25).
pub fn parse_next_hop(hop: &str) -> Option<(String, u16)> {
    let hop = hop.trim();
    if let Some(rest) = hop.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 25,
            None => return None,
        };
        return (!host.is_empty()).then(|| (host.to_string(), port));
    }
    match hop.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Some((host.to_string(), port.parse().ok()?)).filter(|(h, _)| !h.is_empty())
        }
        Some(_) => None,
        None => (!hop.is_empty()).then(|| (hop.to_string(), 25)),
    }
}

fn is_hostname(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Parses durations such as `90s`, `5m`, `24h`, `7d`, `250ms`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match () {
        _ if d.subsec_millis() != 0 || s == 0 => format!("{}ms", d.as_millis()),
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "invalid duration `{s}` (use e.g. 30s, 5m, 24h, 7d)"
        ))
    })
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

/// Serde for an optional duration field (`#[serde(default, with = "opt_duration")]`).
mod opt_duration {
    use std::time::Duration;

    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::de_duration(d).map(Some)
    }

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::ser_duration(d, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests;
