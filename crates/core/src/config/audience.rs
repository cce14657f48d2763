//! `[imports]` (contact imports and their watchdog) and `[canaries]` (canary
//! addresses).

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, is_hostname};

/// `[imports]`: CSV imports of contacts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportsConfig {
    /// Largest CSV file accepted, in bytes (the body of `POST /v1/imports` is read as a
    /// stream, never whole). Default 2 GiB.
    pub max_bytes: u64,
    /// The screening every import passes before any of it is written.
    pub watchdog: WatchdogConfig,
}

/// `[imports.watchdog]`: an import whose rows look unusual stops in state `held`
/// until an admin approves or discards it. Every share is of the file's data rows
/// (0.0–1.0); a file with fewer than `min_rows` rows is not held for its shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchdogConfig {
    /// Screen imports at all. Default true.
    pub enabled: bool,
    /// Files with fewer data rows are not held for their shares. Default 50.
    pub min_rows: u64,
    /// Most share of invalid addresses (likely typos of large mailbox domains
    /// included). Default 0.10.
    pub invalid_share: f64,
    /// Most share of role addresses (`info@`, `admin@`, `postmaster@`, …). Default 0.10.
    pub role_share: f64,
    /// Most share of disposable-mailbox domains. Default 0.05.
    pub disposable_share: f64,
    /// Most share of addresses already suppressed (hard bounces, complaints,
    /// unsubscribes, erasures). Default 0.10.
    pub suppressed_share: f64,
    /// Most share of one single domain. Default 0.80.
    pub single_domain_share: f64,
    /// An import more than this many times the size of the tenant's largest earlier
    /// import is held (when it has at least `size_min_rows` rows). Default 10.
    pub size_factor: f64,
    /// Imports with fewer rows are never held for their size. Default 10000.
    pub size_min_rows: u64,
    /// Most share of rows without consent evidence (an empty `consent_at` column) in
    /// an import that records consent for a purpose a stream requires. Default 0.05.
    pub missing_consent_share: f64,
}

/// `[canaries]`: canary addresses, trap addresses at a domain whose MX is this
/// Postwerk's inbound MX. Every contact export carries one; mail reaching one from
/// anywhere else shows that a list leaked.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CanariesConfig {
    /// The canary domain (its MX must be this Postwerk). Default none: exports carry no
    /// canary and `POST /v1/canaries` is refused.
    pub domain: Option<String>,
}

impl Default for ImportsConfig {
    fn default() -> Self {
        ImportsConfig {
            max_bytes: 2 << 30,
            watchdog: WatchdogConfig::default(),
        }
    }
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            enabled: true,
            min_rows: 50,
            invalid_share: 0.10,
            role_share: 0.10,
            disposable_share: 0.05,
            suppressed_share: 0.10,
            single_domain_share: 0.80,
            size_factor: 10.0,
            size_min_rows: 10_000,
            missing_consent_share: 0.05,
        }
    }
}

impl ImportsConfig {
    /// Checks the shares and factors.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.watchdog;
        for (key, share) in [
            ("invalid_share", w.invalid_share),
            ("role_share", w.role_share),
            ("disposable_share", w.disposable_share),
            ("suppressed_share", w.suppressed_share),
            ("single_domain_share", w.single_domain_share),
            ("missing_consent_share", w.missing_consent_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(invalid(
                    &format!("imports.watchdog.{key}"),
                    "must be a share from 0.0 to 1.0",
                ));
            }
        }
        if w.size_factor.is_nan() || w.size_factor < 1.0 {
            return Err(invalid(
                "imports.watchdog.size_factor",
                "must be at least 1.0",
            ));
        }
        if self.max_bytes == 0 {
            return Err(invalid("imports.max_bytes", "must be at least 1"));
        }
        Ok(())
    }
}

impl CanariesConfig {
    /// Checks the domain.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match &self.domain {
            Some(d) if !is_hostname(d) => Err(invalid("canaries.domain", "must be a domain name")),
            _ => Ok(()),
        }
    }
}
