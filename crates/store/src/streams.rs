//! The store's streams area: message streams: their settings, pauses and the circuit breaker's figures.

use crate::StoreResult;
use crate::model::*;
use crate::row::Columns;

/// The columns [`stream_row`] reads.
pub(crate) const STREAM_COLS: &str =
    "tenant_id, name, settings, paused_at, pause_reason, resumed_at, created_at, updated_at";

/// A row of `stream` (both backends).
pub(crate) fn stream_row<R: Columns>(r: &R) -> Result<StreamRecord, R::Error> {
    Ok(StreamRecord {
        tenant_id: r.get("tenant_id")?,
        name: r.get("name")?,
        settings: r.get("settings")?,
        paused_at: r.get("paused_at")?,
        pause_reason: r.get("pause_reason")?,
        resumed_at: r.get("resumed_at")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

sql! {
    /// Streams by tenant and name: every tenant's (`$1` NULL) or tenant `$1`'s.
    LIST_STREAMS = "SELECT {STREAM_COLS} FROM streams WHERE CAST($1 AS TEXT) IS NULL \
         OR tenant_id = $1 ORDER BY tenant_id, name";
    /// A new stream, in [`STREAM_COLS`] order.
    INSERT_STREAM = "INSERT INTO streams ({STREAM_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    /// Tenant `$1`'s stream `$2` takes settings `$3` at `$4`; a stream without a row
    /// (a built-in one) gets one.
    PUT_STREAM_SETTINGS = "INSERT INTO streams (tenant_id, name, settings, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant_id, name) \
         DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at";
}

store_area! {
    /// Message streams: their settings, pauses and the circuit breaker's figures.
    StreamStore {
        /// Stored streams of a tenant (`None`: of every tenant), by tenant and name.
        fn list_streams(&self, tenant_id: Option<&str>) -> StoreResult<Vec<StreamRecord>>;
        /// Adds a stream; `Conflict("stream")` if the tenant has one of that name.
        fn insert_stream(&self, s: StreamRecord) -> StoreResult<()>;
        /// Replaces a stream's settings, adding its row if it has none (a built-in stream).
        fn put_stream_settings(
            &self,
            tenant_id: &str,
            name: &str,
            settings: String,
            at: i64,
        ) -> StoreResult<()>;
        /// Pauses a stream (its waiting mail, leased or not, is `suspended`) or resumes it
        /// (its suspended mail is queued again, due now), and records the stream event,
        /// atomically. `false` (nothing changed) if it already was in that state.
        fn pause_stream(&self, p: StreamPause) -> StoreResult<bool>;
        /// The outcomes of the `window` most recently finished (delivered or bounced)
        /// recipients of a tenant's stream, finished after `since`, with how many of them
        /// complained.
        fn stream_outcomes(
            &self,
            tenant_id: &str,
            stream: &str,
            since: i64,
            window: usize,
        ) -> StoreResult<StreamOutcomes>;
    }
}
