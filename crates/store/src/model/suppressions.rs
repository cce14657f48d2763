//! The suppressions area's rows: suppression lists.

use super::*;

/// An entry of a tenant's suppression list: mail to this address (in this stream, or
/// in every stream) is not sent. Unique per (tenant, address, stream scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressionRecord {
    /// Assigned by the store (monotonic; the pagination cursor); ignored on insert.
    pub seq: i64,
    /// Owning tenant.
    pub tenant_id: String,
    /// Blind index of the normalised address.
    pub rcpt_hash: Vec<u8>,
    /// The stream it applies to; `None` = every stream. (An empty name is the same
    /// as `None`.)
    pub stream: Option<String>,
    /// Why the address is suppressed.
    pub reason: SuppressionReason,
    /// When it was added.
    pub created_at: i64,
    /// The address, sealed by the caller (so an operator can list it); `None` after
    /// erasure.
    pub address_enc: Option<Vec<u8>>,
    /// What caused it: a recipient id, `api`, `cli`.
    pub source: Option<String>,
}

/// The stored form of a suppression's stream scope: `''` for every stream (a NOT
/// NULL column keeps the unique key simple).
pub(crate) fn stream_scope(stream: Option<&str>) -> &str {
    stream.unwrap_or("")
}

/// The scope read back from its stored form.
pub(crate) fn scope_stream(stored: String) -> Option<String> {
    (!stored.is_empty()).then_some(stored)
}

/// `hashes` without repeats (a batch often names an address more than once).
pub(crate) fn distinct_hashes(mut hashes: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}
