//! Postwerk's delivery engine: accepting submissions into the queue, delivering them
//! to recipients' MX hosts, and the mail-facing services around them (inbound MX,
//! unsubscribe, tracking, sending domains, webhooks).
//!
//! Privacy rule: nothing in this crate logs an address, a subject or a body. Logs
//! name messages and recipients by id; remote replies (which often echo the
//! address) are sealed into events, never logged.
//!
//! Submission and delivery:
//!
//! - [`accept`]: the submission pipeline every front door uses.
//! - [`job`]: a unit of delivery work (one recipient of one message, its content).
//! - [`engine`]: the delivery engine (workers, signing, poller, shutdown).
//! - [`queue`]: the in-memory ready queue, per destination and priority lane.
//! - [`slots`]: connection slots shared by priority lanes.
//! - [`shaper`]: traffic shaping per (egress pool, destination site), adaptive back-off.
//! - [`outcome`]: an attempt's result as a recipient state change and an event.
//! - [`queue_ops`]: the queue as operators see it, names of queue operations.
//!
//! Around delivery:
//!
//! - [`inbound`]: the inbound MX: VERP recipients, received reports as events.
//! - [`unsubscribe`]: RFC 8058 one-click unsubscribe links and their handling.
//! - [`tracking`]: open pixel, tracked links, batched recording of hits.
//! - [`domains`]: sending domains, DKIM key generation, DNS records.
//! - [`webhooks`]: endpoints, Standard Webhooks signing, the delivery loop.
//! - [`view`]: sealed rows opened into JSON (API responses, webhook payloads).
//!
//! The shared context (`Services`), tenants, streams and the audit chain are
//! postwerk-services; accounts and access are postwerk-accounts; suppressions,
//! contacts, requests, incidents and retention are postwerk-privacy. The protocol
//! code lives in crates of its own, without store or services: postwerk-smtp-client
//! (SMTP client), postwerk-dkim (signing), postwerk-dns (next hops, MTA-STS, trust
//! anchors), postwerk-reports (bounce classification, DSN/ARF parsing, VERP); raw
//! RFC 5322 helpers are `postwerk_core::rawmsg`.

pub mod accept;
pub mod domains;
pub mod engine;
pub mod inbound;
pub mod job;
pub mod outcome;
pub mod queue;
pub mod queue_ops;
pub mod shaper;
pub mod slots;
pub mod tracking;
pub mod unsubscribe;
pub mod view;
pub mod webhooks;
