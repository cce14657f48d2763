//! The store's streams area: message streams: their settings, pauses and the circuit breaker's figures.

use crate::StoreResult;
use crate::model::*;

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
