//! The store's streams area: message streams: their settings, pauses and the circuit breaker's figures.

use crate::StoreResult;
use crate::model::*;
use crate::row::Columns;
use crate::run::FromRow;

/// The columns a [`StreamRecord`] is read from.
pub(crate) const STREAM_COLS: &str =
    "tenant_id, name, settings, paused_at, pause_reason, resumed_at, created_at, updated_at";

impl FromRow for StreamRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
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
}

/// The circuit breaker's figures ([`STREAM_OUTCOMES`]; a sum over no rows is NULL).
impl FromRow for StreamOutcomes {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        let count = |name| Ok(r.get::<Option<i64>>(name)?.unwrap_or(0) as u64);
        Ok(StreamOutcomes {
            finished: count("finished")?,
            bounced: count("bounced")?,
            complained: count("complained")?,
        })
    }
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
    /// The circuit breaker's figures: of tenant `$1`'s stream `$2`'s `$4` most recently
    /// finished recipients (finished after `$3`), how many bounced and how many
    /// complained.
    STREAM_OUTCOMES = "SELECT count(*) AS finished, \
         sum(CASE WHEN recent.status = 'bounced' THEN 1 ELSE 0 END) AS bounced, \
         sum(CASE WHEN EXISTS (SELECT 1 FROM events e WHERE e.message_id = recent.message_id \
           AND e.recipient_id = recent.id AND e.type = 'complained') THEN 1 ELSE 0 END) AS complained \
         FROM (SELECT r.id, r.message_id, r.status FROM recipients r JOIN messages m ON m.id = r.message_id \
           WHERE r.tenant_id = $1 AND m.stream = $2 AND r.status IN ('delivered', 'bounced') \
           AND r.updated_at > $3 \
           ORDER BY r.updated_at DESC LIMIT $4) recent";
}

store_area! {
    /// Message streams: their settings, pauses and the circuit breaker's figures.
    StreamStore {
        /// Pauses a stream (its waiting mail, leased or not, is `suspended`) or resumes it
        /// (its suspended mail is queued again, due now), and records the stream event,
        /// atomically. `false` (nothing changed) if it already was in that state.
        fn pause_stream(&self, p: StreamPause) -> StoreResult<bool>;
    }
    shared {
        /// Stored streams of a tenant (`None`: of every tenant), by tenant and name.
        fn list_streams(&self, tenant_id: Option<&str>) -> StoreResult<Vec<StreamRecord>> {
            self.rows("list_streams", &LIST_STREAMS, args![tenant_id]).await
        }
        /// Adds a stream; `Conflict("stream")` if the tenant has one of that name.
        fn insert_stream(&self, s: StreamRecord) -> StoreResult<()> {
            let args = args![
                s.tenant_id,
                s.name,
                s.settings,
                s.paused_at,
                s.pause_reason,
                s.resumed_at,
                s.created_at,
                s.updated_at,
            ];
            self.write("insert_stream", Some("stream"), &INSERT_STREAM, args)
                .await
                .map(drop)
        }
        /// Replaces a stream's settings, adding its row if it has none (a built-in stream).
        fn put_stream_settings(
            &self,
            tenant_id: &str,
            name: &str,
            settings: String,
            at: i64,
        ) -> StoreResult<()> {
            let args = args![tenant_id, name, settings, at];
            self.write("put_stream_settings", None, &PUT_STREAM_SETTINGS, args)
                .await
                .map(drop)
        }
        /// The outcomes of the `window` most recently finished (delivered or bounced)
        /// recipients of a tenant's stream, finished after `since`, with how many of them
        /// complained.
        fn stream_outcomes(
            &self,
            tenant_id: &str,
            stream: &str,
            since: i64,
            window: usize,
        ) -> StoreResult<StreamOutcomes> {
            let args = args![tenant_id, stream, since, window];
            let row = self.row("stream_outcomes", &STREAM_OUTCOMES, args).await?;
            Ok(row.unwrap_or_default())
        }
    }
}
