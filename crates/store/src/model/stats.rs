//! The stats area's rows: deliverability statistics.

use super::*;

/// What deliverability statistics are broken down by (empty: unknown or none). No
/// personal data: streams, pools, sources, sites and bounce reasons only.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatDims {
    /// Stream.
    pub stream: String,
    /// Egress pool.
    pub pool: String,
    /// Egress source.
    pub source: String,
    /// Destination site.
    pub site: String,
    /// Bounce reason of a failure.
    pub reason: String,
}

/// Which statistics to read: a tenant's, over `[from, to)`, optionally narrowed.
#[derive(Debug, Clone, Default)]
pub struct StatsFilter {
    /// Owning tenant.
    pub tenant_id: String,
    /// Start (Unix ms, rounded down to the hour by the store's buckets).
    pub from: i64,
    /// End (exclusive).
    pub to: i64,
    /// Only this stream.
    pub stream: Option<String>,
    /// Only this egress pool.
    pub pool: Option<String>,
    /// Only this egress source.
    pub source: Option<String>,
    /// Only this destination site.
    pub site: Option<String>,
}

/// Events of one kind (and bounce reason) in one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatRow {
    /// Start of the hour (Unix ms).
    pub bucket: i64,
    /// Event type.
    pub event: EventType,
    /// Bounce reason (empty for none).
    pub reason: String,
    /// How many.
    pub count: u64,
}
