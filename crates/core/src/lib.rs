//! Postwerk's domain vocabulary: identifiers, addresses, scopes, recipient states,
//! the configuration model and MIME rendering.
//!
//! This crate does no I/O: no sockets, no files beyond parsing text it is handed, no
//! logging. Its errors never contain an email address.
//!
//! - [`id`]: time-ordered prefixed identifiers, random tokens, constant-time comparison.
//! - [`address`]: address and mailbox parsing and normalisation.
//! - [`csv`]: CSV read from a stream of chunks and written field by field.
//! - [`language`]: a page's language from `Accept-Language`.
//! - [`model`]: scopes, recipient states, event kinds, streams.
//! - [`config`]: the `postwerk.toml` model, defaults, env overrides and validation.
//! - [`metrics`]: process-wide counters and histograms, Prometheus text.
//! - [`mime`]: rendering an API message into RFC 5322 / MIME bytes.
//! - [`rawmsg`]: raw RFC 5322 bytes (line endings, header lookup and removal, From,
//!   Message-ID/Date insertion).
//! - [`screening`]: what an imported address looks like (role mailbox, disposable
//!   domain, likely typo of a large provider) for the import watchdog.
//! - [`shaping`]: traffic-shaping rules per destination site (built-in and operator's).
//! - [`stream`]: stream settings (priority, reserved share, retry, tracking defaults),
//!   the priority lanes.

pub mod address;
pub mod config;
pub mod csv;
pub mod hex;
pub mod id;
pub mod json;
pub mod language;
pub mod metrics;
pub mod mime;
pub mod model;
pub mod rawmsg;
pub mod screening;
pub mod shaping;
pub mod stream;
