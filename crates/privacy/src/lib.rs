//! Postwerk's privacy services: the records GDPR asks for and the jobs that honour
//! data subjects' rights.
//!
//! Privacy rule: nothing in this crate logs an address, a subject or a body;
//! addresses are kept sealed, found by blind index.
//!
//! - [`suppressions`]: the suppression list (blind indexes, sealed addresses).
//! - [`contacts`]: contacts and consent records.
//! - [`requests`]: the register of data-subject requests (GDPR Art. 12).
//! - [`incidents`]: the breach register (GDPR Art. 33/34).
//! - [`retention`]: the purge job enforcing `[retention]`.
//! - [`audience`]: lists, segments, the contact search, imports, exports, canaries.
//! - [`campaigns`]: templates and what renders them.

pub mod audience;
pub mod campaigns;
pub mod contacts;
pub mod incidents;
pub mod requests;
pub mod retention;
pub mod suppressions;

/// A Unix time in milliseconds as RFC 3339 (UTC, seconds), as exports write times.
pub(crate) fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
