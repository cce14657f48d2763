//! Postwerk's shared services: the context every front door, the delivery engine and
//! the privacy and account services run on, with the state it holds.
//!
//! Privacy rule: nothing in this crate logs an address, a subject or a body. Logs
//! name tenants, streams and records by id.
//!
//! - [`context`]: shared services (store, keys, config, node id), service errors.
//! - [`audit`]: the audit chain: recording and verifying.
//! - [`subjects`]: every data subject's own key (crypto-shredding).
//! - [`tenants`]: cancellation, reactivation and deletion of a tenant.
//! - [`streams`]: a tenant's streams, their settings and pause state.
//! - [`breaker`]: the circuit breaker that pauses a stream with too many complaints.
//! - [`egress`]: egress pools and sources (weights, warm-up caps, health).
//! - [`ratelimit`]: request rate limits (GCRA).

pub mod audit;
pub mod breaker;
pub mod context;
pub mod egress;
pub mod ratelimit;
pub mod streams;
pub mod subjects;
pub mod tenants;
