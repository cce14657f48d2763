//! Postwerk's mail transfer agent: accepting submissions into the queue and
//! delivering them to recipients' MX hosts.
//!
//! Privacy rule: nothing in this crate logs an address, a subject or a body. Logs
//! name messages and recipients by id; remote replies (which often echo the
//! address) are sealed into events, never logged.
//!
//! - [`context`]: shared services (store, keys, config, node id).
//! - [`accept`]: the submission pipeline every front door uses.
//! - [`domains`]: sending domains, DKIM key generation, DNS records.
//! - [`engine`]: the delivery engine (workers, poller, shutdown).
//! - [`queue`], [`job`], [`outcome`]: ready queue, work items, attempt results.
//! - [`rawmsg`]: raw RFC 5322 helpers (header lookup, CRLF, Message-ID/Date).
//! - [`dkim`], [`smtp`], [`resolve`]: DKIM signing, SMTP client, next hops.
//! - [`mta_sts`], [`trust`]: MTA-STS policies (RFC 8461), certificate trust anchors.
//! - [`tracking`]: open pixel, tracked links, batched recording of hits.
//! - [`unsubscribe`]: RFC 8058 one-click unsubscribe links and their handling.
//! - [`subjects`]: every data subject's own key (crypto-shredding).
//! - [`view`]: sealed rows opened into JSON (API responses, webhook payloads).
//! - [`webhooks`]: endpoints, Standard Webhooks signing, the delivery loop.

pub mod accept;
pub mod apikeys;
pub mod audit;
pub mod auth_failures;
pub mod bounce;
pub mod breaker;
pub mod contacts;
pub mod context;
pub mod dkim;
pub mod domains;
pub mod egress;
pub mod engine;
pub mod guard;
pub mod inbound;
pub mod incidents;
pub mod job;
pub mod mta_sts;
pub mod netclass;
pub mod outcome;
pub mod queue;
pub mod queue_ops;
pub mod ratelimit;
pub mod rawmsg;
pub mod report;
pub mod requests;
pub mod resolve;
pub mod retention;
pub mod shaper;
pub mod slots;
pub mod smtp;
pub mod streams;
pub mod subjects;
pub mod suppressions;
pub mod tenants;
#[doc(hidden)]
pub mod testdns;
pub mod totp;
pub mod tracking;
pub mod trust;
pub mod unsubscribe;
pub mod users;
pub mod verp;
pub mod view;
pub mod webhooks;
