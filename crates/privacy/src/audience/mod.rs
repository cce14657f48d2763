//! The audience: contact lists, segments, the contact search, CSV imports behind a
//! watchdog, contact exports and canary addresses.
//!
//! The same privacy rules hold as for single contacts: every address and attribute
//! is sealed under the person's own key, people are found by blind index, list
//! memberships are blind indexes too, and an erased person is never imported again.
//!
//! - [`lists`]: lists and their members.
//! - [`filter`]: which contacts a search, a count or a segment names; segments.
//! - [`search`]: pages and counts of contacts.
//! - [`imports`]: CSV imports: screened by the watchdog, then committed in batches.
//! - [`export`]: contact exports, each with a canary row of its own.
//! - [`canaries`]: canary addresses and what happens when one receives mail.

pub mod canaries;
pub mod export;
pub mod filter;
pub mod imports;
pub mod lists;
pub mod search;
