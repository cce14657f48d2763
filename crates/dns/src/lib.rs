//! Where and how Postwerk reaches a recipient domain's mail servers: next hops from
//! static routes and DNS, what kind of network an address is in, MTA-STS policies,
//! and the certificate trust for connections that must verify the server.
//!
//! No store, no services: the delivery engine (postwerk-mta) and the webhook sender
//! hand it configuration and ask.
//!
//! - [`resolve`]: next-hop resolution (static routes, MX, null MX, A/AAAA).
//! - [`netclass`]: the class of an IP address (public, private, loopback, …).
//! - [`mta_sts`]: the MTA-STS client (RFC 8461): discovery, fetch, cache, plan.
//! - [`trust`]: certificate trust anchors (Mozilla's roots plus the operator's own).
//! - `testdns`: a small authoritative DNS server for tests (hidden from the docs).

pub mod mta_sts;
pub mod netclass;
pub mod resolve;
#[doc(hidden)]
pub mod testdns;
pub mod trust;
