//! The store's suppressions area: suppression lists.

use crate::StoreResult;
use crate::model::*;
use crate::row::Columns;

/// The columns [`suppression_row`] reads.
pub(crate) const SUPPRESSION_COLS: &str =
    "seq, tenant_id, rcpt_hash, stream, reason, created_at, address_enc, source";

/// A suppression row (both backends).
pub(crate) fn suppression_row<R: Columns>(r: &R) -> Result<SuppressionRecord, R::Error> {
    Ok(SuppressionRecord {
        seq: r.get("seq")?,
        tenant_id: r.get("tenant_id")?,
        rcpt_hash: r.get("rcpt_hash")?,
        stream: scope_stream(r.get("stream")?),
        reason: r.parse("reason", "suppression reason")?,
        created_at: r.get("created_at")?,
        address_enc: r.get("address_enc")?,
        source: r.get("source")?,
    })
}

store_area! {
    /// Suppression lists.
    SuppressionStore {
        /// Adds an address to a tenant's suppression list. An entry is unique per
        /// (tenant, `rcpt_hash`, `stream`), `None` (every stream) being a scope of its
        /// own. Returns `true` if it was added, `false` if that entry already existed
        /// (which is then left unchanged). `s.seq` is ignored: the store assigns it.
        fn add_suppression(&self, s: SuppressionRecord) -> StoreResult<bool>;
        /// Removes exactly one scope of an address's suppression (`stream` `None` = the
        /// every-stream entry; other scopes stay). An erasure tombstone (reason `erasure`)
        /// is removed only with `erasure`. Returns the number of entries removed (0 or 1).
        fn remove_suppression(
            &self,
            tenant_id: &str,
            rcpt_hash: &[u8],
            stream: Option<&str>,
            erasure: bool,
        ) -> StoreResult<u64>;
        /// Every suppression (of any stream scope) of any of `hashes` in the tenant, in
        /// `seq` order: the acceptance check for a whole batch, in one query per at most
        /// a few hundred distinct hashes. The caller decides which scopes apply.
        fn find_suppressions(
            &self,
            tenant_id: &str,
            hashes: Vec<Vec<u8>>,
        ) -> StoreResult<Vec<SuppressionRecord>>;
        /// A tenant's suppressions in `seq` order: only those of `rcpt_hash` if given,
        /// only those with a larger `seq` than `after_seq` (the cursor) if given, at most
        /// `limit` (0 is treated as 1).
        fn list_suppressions(
            &self,
            tenant_id: &str,
            rcpt_hash: Option<Vec<u8>>,
            after_seq: Option<i64>,
            limit: usize,
        ) -> StoreResult<Vec<SuppressionRecord>>;
    }
}
