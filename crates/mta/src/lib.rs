//! Postwerk's services and delivery engine: accepting submissions into the queue,
//! delivering them to recipients' MX hosts, and the application services around them
//! (accounts, tenants and streams, privacy, webhooks, tracking).
//!
//! Privacy rule: nothing in this crate logs an address, a subject or a body. Logs
//! name messages and recipients by id; remote replies (which often echo the
//! address) are sealed into events, never logged.
//!
//! The shared context:
//!
//! - [`context`]: shared services (store, keys, config, node id), service errors.
//!
//! Submission and delivery:
//!
//! - [`accept`]: the submission pipeline every front door uses.
//! - [`job`]: a unit of delivery work (one recipient of one message, its content).
//! - [`engine`]: the delivery engine (workers, signing, poller, shutdown).
//! - [`queue`]: the in-memory ready queue, per destination and priority lane.
//! - [`slots`]: connection slots shared by priority lanes.
//! - [`shaper`]: traffic shaping per (egress pool, destination site), adaptive back-off.
//! - [`egress`]: egress pools and sources (weights, warm-up caps, health).
//! - [`outcome`]: an attempt's result as a recipient state change and an event.
//! - [`inbound`]: the inbound MX: VERP recipients, received reports as events.
//! - [`unsubscribe`]: RFC 8058 one-click unsubscribe links and their handling.
//! - [`tracking`]: open pixel, tracked links, batched recording of hits.
//! - [`queue_ops`]: the queue as operators see it, names of queue operations.
//!
//! Tenants, streams and sending domains:
//!
//! - [`tenants`]: cancellation, reactivation and deletion of a tenant.
//! - [`streams`]: a tenant's streams, their settings and pause state.
//! - [`breaker`]: the circuit breaker that pauses a stream with too many complaints.
//! - [`domains`]: sending domains, DKIM key generation, DNS records.
//! - [`webhooks`]: endpoints, Standard Webhooks signing, the delivery loop.
//!
//! Accounts and access:
//!
//! - [`apikeys`]: API keys: creation, verification, rotation.
//! - [`users`]: people who sign in: passwords, roles, lockout, sessions.
//! - [`totp`]: second factors (RFC 6238) and recovery codes.
//! - [`auth_failures`]: refused credentials counted and audited.
//! - [`guard`]: brute-force protection per client network.
//! - [`ratelimit`]: request rate limits (GCRA).
//!
//! Privacy:
//!
//! - [`subjects`]: every data subject's own key (crypto-shredding).
//! - [`suppressions`]: the suppression list (blind indexes, sealed addresses).
//! - [`contacts`]: contacts and consent records.
//! - [`requests`]: the register of data-subject requests (GDPR Art. 12).
//! - [`incidents`]: the breach register (GDPR Art. 33/34).
//! - [`retention`]: the purge job enforcing `[retention]`.
//! - [`audit`]: the audit chain: recording and verifying.
//! - [`view`]: sealed rows opened into JSON (API responses, webhook payloads).
//!
//! The protocol code lives in crates of its own, without store or services:
//! postwerk-smtp-client (SMTP client), postwerk-dkim (signing), postwerk-dns (next
//! hops, MTA-STS, trust anchors), postwerk-reports (bounce classification, DSN/ARF
//! parsing, VERP); raw RFC 5322 helpers are `postwerk_core::rawmsg`.

pub mod accept;
pub mod apikeys;
pub mod audit;
pub mod auth_failures;
pub mod breaker;
pub mod contacts;
pub mod context;
pub mod domains;
pub mod egress;
pub mod engine;
pub mod guard;
pub mod inbound;
pub mod incidents;
pub mod job;
pub mod outcome;
pub mod queue;
pub mod queue_ops;
pub mod ratelimit;
pub mod requests;
pub mod retention;
pub mod shaper;
pub mod slots;
pub mod streams;
pub mod subjects;
pub mod suppressions;
pub mod tenants;
pub mod totp;
pub mod tracking;
pub mod unsubscribe;
pub mod users;
pub mod view;
pub mod webhooks;
