//! Rows as the store sees them. Personal data arrives here already sealed by the
//! vault (`*_enc` fields) or as a blind index (`rcpt_hash`); the store never sees
//! plaintext addresses or content. Times are Unix milliseconds.
//!
//! One module per area of the store, each re-exported here (`model::X` names every row):
//! - `tenants`: Tenants and their API keys.
//! - `users`: Console users, sign-in accounting and sessions.
//! - `domains`: Sending domains and their DKIM keys.
//! - `queue`: Messages, recipients, events and the delivery queue.
//! - `privacy`: Contacts, consent, subject keys and erasure.
//! - `compliance`: Retention, data-subject requests and incidents.
//! - `audit`: The audit chain's entries.
//! - `stats`: Deliverability statistics.
//! - `streams`: Message streams, the backlog and the circuit breaker's figures.
//! - `webhooks`: Webhook endpoints, deliveries and attempts.
//! - `suppressions`: Suppression lists.
//! - `audience`: Lists and members, segments, imports and canary addresses.
//! - `campaigns`: Templates and their versions.

use postwerk_core::model::{
    ConsentStatus, DsarKind, DsarStatus, EventType, RecipientStatus, Scope, SuppressionReason,
};

use crate::{StoreError, StoreResult};

mod audience;
mod audit;
mod campaigns;
mod compliance;
mod domains;
mod privacy;
mod queue;
mod stats;
mod streams;
mod suppressions;
mod tenants;
mod users;
mod webhooks;

pub use audience::*;
pub use audit::*;
pub use campaigns::*;
pub use compliance::*;
pub use domains::*;
pub use privacy::*;
pub use queue::*;
pub use stats::*;
pub use streams::*;
pub use suppressions::*;
pub use tenants::*;
pub use users::*;
pub use webhooks::*;

/// A comma-separated list column as its items (`NULL` or empty: none).
pub fn split_list(text: Option<&str>) -> Vec<String> {
    text.into_iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Items as a comma-separated list column (`NULL` for none).
pub fn join_list(items: &[String]) -> Option<String> {
    (!items.is_empty()).then(|| items.join(","))
}
