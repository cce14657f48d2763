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

mod auth;
mod backup;
mod breaker;
mod egress;
mod mta_sts;
mod privacy;
mod ratelimits;
mod smtp;
mod tracking;
mod webhooks;
pub use auth::{AuthConfig, TenantAuthConfig};
pub use backup::BackupConfig;
pub use breaker::CircuitBreakerConfig;
pub use egress::{EgressConfig, OverCap, PoolConfig, PoolMember, SourceConfig, epoch_day};
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
}

/// `[http]`: the REST API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Largest accepted request body in bytes (a batch of messages). Default 64 MiB.
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

/// `POSTWERK_*` variables Postwerk reads that are not configuration keys.
/// `POSTWERK_TEST_PG_URL` is read by the test suite only.
pub const OTHER_ENV_VARIABLES: &[&str] = &[
    "POSTWERK_CONFIG",
    "POSTWERK_MASTER_KEY",
    "POSTWERK_BACKUP_IDENTITY",
    "POSTWERK_LOG",
    "POSTWERK_LOG_FORMAT",
    "POSTWERK_TEST_PG_URL",
];

/// Keys without a default value (absent from the serialised default configuration)
/// that an environment variable may still set.
pub const OPTIONAL_KEYS: &[&str] = &[
    "store.url",
    "delivery.bounce_domain",
    "smtp.submission.cert",
    "smtp.submission.key",
    "tracking.base_url",
    "tracking.consent_purpose",
    "mta_sts.ca_file",
    "backup.dir",
];

/// Every configuration key an environment variable can set, by variable name
/// (`POSTWERK_SMTP_SUBMISSION_LISTEN` → `["smtp", "submission", "listen"]`): the
/// default configuration's scalar and list keys, plus [`OPTIONAL_KEYS`].
fn env_keys(defaults: &toml::Table) -> BTreeMap<String, Vec<String>> {
    fn walk(table: &toml::Table, path: &mut Vec<String>, out: &mut BTreeMap<String, Vec<String>>) {
        for (name, value) in table {
            path.push(name.clone());
            match value.as_table() {
                Some(inner) => walk(inner, path, out),
                None => {
                    out.insert(env_name(path), path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = BTreeMap::new();
    walk(defaults, &mut Vec::new(), &mut out);
    for key in OPTIONAL_KEYS {
        let path: Vec<String> = key.split('.').map(String::from).collect();
        out.insert(env_name(&path), path);
    }
    out
}

/// `["smtp", "submission", "listen"]` → `POSTWERK_SMTP_SUBMISSION_LISTEN`.
fn env_name(path: &[String]) -> String {
    format!("POSTWERK_{}", path.join("_").to_ascii_uppercase())
}

fn default_table() -> Result<toml::Table, ConfigError> {
    toml::Table::try_from(Config::default()).map_err(|e| ConfigError::Parse(e.to_string()))
}

/// The `POSTWERK_*` variables in `env` that Postwerk does not read (a misspelt
/// `POSTWERK_HTTP_LISTN` would otherwise be ignored silently), each with the known
/// variable closest to it (`POSTWERK_HTTP_LISTEN`).
pub fn unknown_env_variables(
    env: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let Ok(defaults) = default_table() else {
        return Vec::new();
    };
    let keys = env_keys(&defaults);
    let known: Vec<&str> = keys
        .keys()
        .map(String::as_str)
        .chain(OTHER_ENV_VARIABLES.iter().copied())
        .collect();
    env.into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("POSTWERK_"))
        .filter(|name| !known.contains(&name.to_ascii_uppercase().as_str()))
        .map(|name| {
            let upper = name.to_ascii_uppercase();
            let closest = known
                .iter()
                .min_by_key(|k| strsim::levenshtein(&upper, k))
                .map_or_else(String::new, |k| k.to_string());
            (name, closest)
        })
        .collect()
}

/// Applies `POSTWERK_<SECTION>_<KEY>` variables. The key path is found among the
/// default configuration's keys (see [`env_keys`]); values are typed like the default
/// (numbers, booleans, comma-separated lists). Other `POSTWERK_*` variables are left
/// alone here: [`unknown_env_variables`] names the ones nothing reads.
fn apply_env(
    doc: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let defaults = default_table()?;
    let keys = env_keys(&defaults);
    for (name, value) in env {
        let Some(path) = keys.get(&name.to_ascii_uppercase()) else {
            continue;
        };
        let (key, parents) = path.split_last().expect("non-empty path");
        let default = parents
            .iter()
            .try_fold(&defaults, |t, k| t.get(k.as_str())?.as_table())
            .and_then(|t| t.get(key.as_str()));
        let typed = typed_like(default, &value).map_err(|reason| ConfigError::Invalid {
            key: name.clone(),
            reason,
        })?;
        let mut table = &mut *doc;
        for p in parents {
            table = table
                .entry(p.as_str())
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .ok_or_else(|| ConfigError::Parse(format!("`{p}` must be a table")))?;
        }
        table.insert(key.clone(), typed);
    }
    Ok(())
}

fn typed_like(default: Option<&toml::Value>, raw: &str) -> Result<toml::Value, String> {
    Ok(match default {
        Some(toml::Value::Integer(_)) => {
            toml::Value::Integer(raw.parse().map_err(|_| "expected an integer".to_string())?)
        }
        Some(toml::Value::Float(_)) => {
            toml::Value::Float(raw.parse().map_err(|_| "expected a number".to_string())?)
        }
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(
            raw.parse()
                .map_err(|_| "expected true or false".to_string())?,
        ),
        Some(toml::Value::Array(_)) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.into()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_string()),
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
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
data_dir = "./postwerk-data"
[http]
listen = "127.0.0.1:8080"
[store]
url = "sqlite://./postwerk-data/postwerk.db"
[delivery]
ehlo_name = "mta.example.com"
bounce_domain = "bounces.example.com"
[delivery.routes]
"example.test" = "127.0.0.1:2626"
[dns]
nameservers = ["127.0.0.1:5353"]
"#;

    #[test]
    fn parses_the_documented_example() {
        let c = Config::from_toml(SAMPLE, []).unwrap();
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.delivery.routes["example.test"], "127.0.0.1:2626");
        assert_eq!(c.dns.nameservers.len(), 1);
        assert_eq!(c.delivery.expiry, Duration::from_secs(86_400));
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::from_toml("", []).unwrap();
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.store_url(), "sqlite://./postwerk-data/postwerk.db");
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = Config::from_toml("[http]\nlisten = \"127.0.0.1:1\"\nlissen = 3\n", [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("lissen") && err.contains("line 3"), "{err}");
        let err = Config::from_toml("[delivery]\nexpiry = \"soon\"\n", [])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("invalid duration"),
            "{err}"
        );
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let err = Config::from_toml("[delivery.routes]\n\"example.test\" = \"a:b:c\"\n", [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("delivery.routes.\"example.test\""), "{err}");
        let err = Config::from_toml("[store]\nurl = \"mysql://x\"\n", [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.url"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = [
            (
                "POSTWERK_HTTP_LISTEN".to_string(),
                "127.0.0.1:9999".to_string(),
            ),
            ("POSTWERK_DELIVERY_EHLO_NAME".into(), "mx.env.test".into()),
            ("POSTWERK_DELIVERY_MAX_CONNECTIONS".into(), "7".into()),
            (
                "POSTWERK_DNS_NAMESERVERS".into(),
                "127.0.0.1:53, 127.0.0.2:53".into(),
            ),
            ("POSTWERK_DATA_DIR".into(), "/tmp/pw".into()),
            ("POSTWERK_STORE_URL".into(), "postgres://u@h/db".into()),
            ("POSTWERK_MASTER_KEY".into(), "ignored here".into()),
            (
                "POSTWERK_SMTP_SUBMISSION_LISTEN".into(),
                "0.0.0.0:587".into(),
            ),
            ("POSTWERK_SMTP_SUBMISSION_ENABLED".into(), "false".into()),
            ("POSTWERK_SMTP_SUBMISSION_CERT".into(), "/etc/c.pem".into()),
            ("POSTWERK_SMTP_SUBMISSION_KEY".into(), "/etc/k.pem".into()),
            (
                "POSTWERK_CIRCUIT_BREAKER_COMPLAINT_RATE".into(),
                "0.001".into(),
            ),
        ];
        let c = Config::from_toml(SAMPLE, env).unwrap();
        assert_eq!(c.http.listen.port(), 9999);
        assert_eq!(c.circuit_breaker.complaint_rate, 0.001, "numbers");
        assert_eq!(c.delivery.ehlo_name, "mx.env.test");
        assert_eq!(c.delivery.max_connections, 7);
        assert_eq!(c.dns.nameservers.len(), 2);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/pw"));
        assert_eq!(c.store_url(), "postgres://u@h/db");
        assert_eq!(c.smtp.submission.listen.port(), 587);
        assert!(!c.smtp.submission.enabled);
        assert_eq!(c.smtp.submission.key, Some(PathBuf::from("/etc/k.pem")));
        let bad = [(
            "POSTWERK_DELIVERY_MAX_CONNECTIONS".to_string(),
            "many".to_string(),
        )];
        assert!(
            Config::from_toml("", bad)
                .unwrap_err()
                .to_string()
                .contains("MAX_CONNECTIONS")
        );
    }

    #[test]
    fn unknown_environment_variables_are_named_with_the_closest_known_one() {
        let env = |pairs: &[&str]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|n| (n.to_string(), "x".to_string()))
                .collect()
        };
        let found = unknown_env_variables(env(&[
            "POSTWERK_HTTP_LISTN",
            "POSTWERK_HTTP_LISTEN",
            "POSTWERK_MASTER_KEY",
            "POSTWERK_STORE_URL",
            "POSTWERK_SMTP_SUBMISSION_CERT",
            "POSTWERK_LOGFORMAT",
            "POSTWERK_TRACKING_BASEURL",
            "HOME",
        ]));
        assert_eq!(
            found,
            [
                ("POSTWERK_HTTP_LISTN".into(), "POSTWERK_HTTP_LISTEN".into()),
                ("POSTWERK_LOGFORMAT".into(), "POSTWERK_LOG_FORMAT".into()),
                (
                    "POSTWERK_TRACKING_BASEURL".into(),
                    "POSTWERK_TRACKING_BASE_URL".into()
                ),
            ]
        );
        // Every documented override is known.
        let overrides = env(&[
            "POSTWERK_DATA_DIR",
            "POSTWERK_PRIVACY_CONSENT_REQUIRED_BROADCAST",
            "POSTWERK_DELIVERY_BOUNCE_DOMAIN",
            "POSTWERK_MTA_STS_CA_FILE",
            "POSTWERK_BACKUP_DIR",
            "POSTWERK_TRACKING_CONSENT_PURPOSE",
        ]);
        assert_eq!(unknown_env_variables(overrides), []);
    }

    #[test]
    fn warns_about_links_recipients_cannot_use() {
        let warning = |text: &str| Config::from_toml(text, []).unwrap().link_warning();
        let w = warning("").expect("the default links point at the listen address");
        assert!(
            w.contains("http://127.0.0.1:8080") && w.contains("loopback"),
            "{w}"
        );
        let w = warning("[http]\nlisten = \"0.0.0.0:8080\"\n").unwrap();
        assert!(w.contains("http://0.0.0.0:8080"), "{w}");
        let w = warning("[tracking]\nbase_url = \"http://links.example.com\"\n").unwrap();
        assert!(w.contains("plain http"), "{w}");
        let w = warning("[tracking]\nbase_url = \"https://localhost:8443\"\n").unwrap();
        assert!(w.contains("loopback"), "{w}");
        assert_eq!(
            warning("[tracking]\nbase_url = \"https://links.example.com\"\n"),
            None
        );
        let off = "[tracking]\nunsubscribe_streams = []\nopen_streams = []\nclick_streams = []\n";
        assert_eq!(warning(off), None, "no links in mail, nothing to warn of");
    }

    #[test]
    fn international_route_keys_are_accepted() {
        let c = Config::from_toml(
            "[delivery.routes]\n\"exämple.test\" = \"127.0.0.1:2626\"\n",
            [],
        )
        .unwrap();
        assert!(c.delivery.routes.contains_key("exämple.test"));
        let err = Config::from_toml(
            "[delivery.routes]\n\"ex ample.test\" = \"127.0.0.1:1\"\n",
            [],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("route key must be a domain name"), "{err}");
    }

    #[test]
    fn smtp_submission_section() {
        let c = Config::from_toml("", []).unwrap();
        let s = &c.smtp.submission;
        assert!(s.enabled);
        assert_eq!(s.listen.to_string(), "127.0.0.1:2587");
        assert_eq!(s.listen_tls.to_string(), "127.0.0.1:2465");
        assert_eq!((s.max_message_bytes, s.max_recipients), (25 << 20, 50));
        assert_eq!(s.idle_timeout, Duration::from_secs(300));
        let c = Config::from_toml(
            "[smtp.submission]\nidle_timeout = \"30s\"\n[[smtp.submission.trusted]]\ncidr = \"10.0.0.0/8\"\nstream = \"broadcast\"\n",
            [],
        )
        .unwrap();
        let t = &c.smtp.submission.trusted[0];
        assert_eq!(
            (t.tenant.as_str(), t.stream.as_str()),
            ("default", "broadcast")
        );
        let err = Config::from_toml("[[smtp.submission.trusted]]\ncidr = \"10.0.0.0/33\"\n", [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("trusted[0].cidr"), "{err}");
        assert_eq!(parse_cidr("::1"), Some(("::1".parse().unwrap(), 128)));
    }

    #[test]
    fn retention_and_privacy_sections() {
        let c = Config::from_toml("", []).unwrap();
        assert_eq!(c.retention.content, Duration::from_secs(7 * 86_400));
        assert_eq!(c.retention.events, Duration::from_secs(30 * 86_400));
        assert_eq!(
            c.retention.cancelled_tenants,
            Duration::from_secs(90 * 86_400)
        );
        let c = Config::from_toml(
            "[retention]
cancelled_tenants = \"1s\"\ninterval = \"1s\"\n",
            [],
        )
        .unwrap();
        assert_eq!(
            (c.retention.cancelled_tenants, c.retention.interval),
            (Duration::from_secs(1), Duration::from_secs(1))
        );
        assert_eq!(c.privacy.consent_required["broadcast"], "marketing");
        let c = Config::from_toml("[privacy]\nconsent_required = {}\n", []).unwrap();
        assert!(c.privacy.consent_required.is_empty());
        for (text, key) in [
            ("[retention]\ncontent = \"40d\"\n", "retention.events"),
            ("[retention]\ninterval = \"0s\"\n", "retention.interval"),
            (
                "[privacy]\nconsent_required = { \"Bulk Mail\" = \"x\" }\n",
                "privacy.consent_required.Bulk Mail",
            ),
            (
                "[circuit_breaker]\ncomplaint_rate = 3.0\n",
                "circuit_breaker.complaint_rate",
            ),
            ("[circuit_breaker]\nwindow = 10\n", "circuit_breaker.window"),
            (
                "[retention.streams.broadcast]\ncontent = \"0s\"\n",
                "retention.streams.broadcast",
            ),
            (
                "[retention.tenants.acme.streams.tx]\ncontent = \"9d\"\nevents = \"8d\"\n",
                "retention.tenants.acme.streams.tx.events",
            ),
            (
                "[retention.streams.broadcast.streams.x]\ncontent = \"1d\"\n",
                "retention.streams.broadcast.streams",
            ),
            (
                "[retention.tenants.acme]\nkeep = \"1d\"\n",
                "unknown field `keep`",
            ),
        ] {
            let err = Config::from_toml(text, []).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let c = Config::from_toml(
            "[retention.streams.broadcast]\ncontent = \"2d\"\n\
             [retention.tenants.acme]\nevents = \"90d\"\n\
             [retention.tenants.acme.streams.transactional]\ncontent = \"30d\"\n",
            [],
        )
        .unwrap();
        let keys: Vec<String> = c.retention.policies().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "retention",
                "retention.streams.broadcast",
                "retention.tenants.acme",
                "retention.tenants.acme.streams.transactional"
            ]
        );
        let acme = &c.retention.tenants["acme"];
        assert_eq!(acme.events, Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(
            acme.streams["transactional"].content,
            Some(Duration::from_secs(30 * 86_400))
        );
    }

    #[test]
    fn backup_section() {
        let c = Config::from_toml("", []).unwrap();
        assert!(c.backup.recipients.is_empty() && c.backup.dir.is_none());
        assert_eq!(c.backup.keep_days, 7);
        let key = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        let c = Config::from_toml(
            &format!("[backup]\nrecipients = [\"{key}\"]\ndir = \"/srv/backups\"\n"),
            [("POSTWERK_BACKUP_KEEP_DAYS".to_string(), "30".to_string())],
        )
        .unwrap();
        assert_eq!(c.backup.age_recipients().unwrap()[0].to_string(), key);
        assert_eq!(c.backup.keep_days, 30);
        let env = [
            (
                "POSTWERK_BACKUP_RECIPIENTS".to_string(),
                format!("{key}, {key}"),
            ),
            ("POSTWERK_BACKUP_DIR".into(), "/var/backups/pw".into()),
        ];
        let c = Config::from_toml("", env).unwrap();
        assert_eq!(c.backup.age_recipients().unwrap().len(), 2);
        assert_eq!(c.backup.dir, Some(PathBuf::from("/var/backups/pw")));
        let err = Config::from_toml("[backup]\nrecipients = [\"age1nope\"]\n", [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("backup.recipients[0]"), "{err}");
    }

    #[test]
    fn smtp_inbound_section() {
        let c = Config::from_toml("", []).unwrap();
        assert_eq!(c.smtp.inbound.listen.to_string(), "127.0.0.1:2525");
        assert!(c.smtp.inbound.enabled && c.smtp.inbound.feedback_addresses.is_empty());
        let c = Config::from_toml(
            "",
            [(
                "POSTWERK_SMTP_INBOUND_FEEDBACK_ADDRESSES".to_string(),
                "fbl@b.example.com, abuse@b.example.com".to_string(),
            )],
        )
        .unwrap();
        assert_eq!(
            c.smtp.inbound.feedback_addresses,
            ["fbl@b.example.com", "abuse@b.example.com"]
        );
        let err = Config::from_toml("[smtp.inbound]\nfeedback_addresses = [\"nope\"]\n", [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("feedback_addresses[0]"), "{err}");
    }

    #[test]
    fn next_hops_and_durations() {
        assert_eq!(
            parse_next_hop("127.0.0.1:2626"),
            Some(("127.0.0.1".into(), 2626))
        );
        assert_eq!(parse_next_hop("[::1]:25"), Some(("::1".into(), 25)));
        assert_eq!(
            parse_next_hop("smtp.example.com"),
            Some(("smtp.example.com".into(), 25))
        );
        assert_eq!(parse_next_hop("a:b:c"), None);
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("7 days"), None);
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
    }
}
