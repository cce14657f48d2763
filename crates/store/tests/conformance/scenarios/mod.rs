//! The scenarios, one module per area of the store; each public function is run
//! against every backend by `conformance!` in `main.rs`.
//!
//! - `tenants`: tenants, API keys, cancellation and deletion.
//! - `domains`: domains and their DKIM keys.
//! - `accept`: acceptance, idempotency and reading messages back.
//! - `delivery`: the delivery queue: claims, leases, outcomes, reports and queue operations.
//! - `events`: listing events and the event cursor.
//! - `privacy`: contacts, consent, data keys, erasure and stopped mail.
//! - `compliance`: retention, the request register and the breach register.
//! - `users`: users, sign-in accounting and sessions.
//! - `audit`: the audit chain.
//! - `webhooks`: the webhook outbox.
//! - `streams`: stream pauses and the circuit breaker's figures.
//! - `stats`: deliverability statistics.
//! - `suppressions`: suppression lists.
//! - `audience`: lists, the contact filter, import batches, segments, canaries.
//! - `campaigns`: broadcasts: state moves, the expansion's cursor, claims, tallies.

use super::fixtures::*;
use super::*;

mod accept;
mod audience;
mod audit;
mod campaigns;
mod compliance;
mod delivery;
mod domains;
mod events;
mod privacy;
mod stats;
mod streams;
mod suppressions;
mod tenants;
mod users;
mod webhooks;

pub use accept::*;
pub use audience::*;
pub use audit::*;
pub use campaigns::*;
pub use compliance::*;
pub use delivery::*;
pub use domains::*;
pub use events::*;
pub use privacy::*;
pub use stats::*;
pub use streams::*;
pub use suppressions::*;
pub use tenants::*;
pub use users::*;
pub use webhooks::*;
