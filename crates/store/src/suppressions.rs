//! The store's suppressions area: suppression lists.

use crate::StoreResult;
use crate::model::*;
use crate::row::Columns;
use crate::run::{Arg, FromRow};
use crate::sql::Sql;

/// The columns a [`SuppressionRecord`] is read from.
pub(crate) const SUPPRESSION_COLS: &str =
    "seq, tenant_id, rcpt_hash, stream, reason, created_at, address_enc, source";

/// A suppression row; a reason that does not parse makes it corrupt.
impl FromRow for SuppressionRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
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
}

sql! {
    /// A new suppression (`$1`..`$7`: tenant, hash, stream scope, reason, time,
    /// sealed address, source), unless that entry exists.
    ADD_SUPPRESSION = "INSERT INTO suppressions (tenant_id, rcpt_hash, stream, reason, created_at, \
         address_enc, source) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant_id, rcpt_hash, stream) DO NOTHING";
    /// Removes one scope (`$3`) of hash `$2`'s suppression in tenant `$1`; an erasure
    /// tombstone only if `$4`.
    REMOVE_SUPPRESSION = "DELETE FROM suppressions WHERE tenant_id = $1 AND rcpt_hash = $2 \
         AND stream = $3 AND ($4 OR reason <> 'erasure')";
    /// Tenant `$1`'s suppressions of blind indexes `$2` (an array: SQLite binds it as
    /// chunked `IN` lists), in `seq` order.
    FIND_SUPPRESSIONS = "SELECT {SUPPRESSION_COLS} FROM suppressions \
         WHERE tenant_id = $1 AND rcpt_hash = ANY($2) ORDER BY seq";
}

/// The statement listing a tenant's suppressions from `from` (the table, perhaps with
/// an index hint): tenant `$1`, then the hash and the cursor if given, then the limit.
/// One statement per filter combination (four), each able to use its index.
fn list_suppressions_sql(from: &str, by_hash: bool, after_seq: bool) -> String {
    let mut sql = format!("SELECT {SUPPRESSION_COLS} FROM {from} WHERE tenant_id = $1");
    let mut n = 1;
    if by_hash {
        n += 1;
        sql.push_str(&format!(" AND rcpt_hash = ${n}"));
    }
    if after_seq {
        n += 1;
        sql.push_str(&format!(" AND seq > ${n}"));
    }
    sql.push_str(&format!(" ORDER BY seq LIMIT ${}", n + 1));
    sql
}

/// SQLite's table for the list by hash: the few entries of one address through the
/// scope index (without statistics SQLite would rather walk the tenant's whole list
/// in seq order to skip the sort).
const BY_SCOPE: &str = "suppressions INDEXED BY suppressions_scope";
/// SQLite's table for the list of a whole tenant.
const BY_TENANT: &str = "suppressions INDEXED BY suppressions_tenant";

/// [`list_suppressions_sql`] by `[by_hash][after_seq]`, PostgreSQL's planner choosing
/// the index, SQLite's told it ([`BY_TENANT`], [`BY_SCOPE`]).
static LIST_SUPPRESSIONS: [[Sql; 2]; 2] = [
    [
        Sql::per_dialect(
            || list_suppressions_sql("suppressions", false, false),
            || list_suppressions_sql(BY_TENANT, false, false),
        ),
        Sql::per_dialect(
            || list_suppressions_sql("suppressions", false, true),
            || list_suppressions_sql(BY_TENANT, false, true),
        ),
    ],
    [
        Sql::per_dialect(
            || list_suppressions_sql("suppressions", true, false),
            || list_suppressions_sql(BY_SCOPE, true, false),
        ),
        Sql::per_dialect(
            || list_suppressions_sql("suppressions", true, true),
            || list_suppressions_sql(BY_SCOPE, true, true),
        ),
    ],
];

store_area! {
    /// Suppression lists.
    SuppressionStore {
        /// Adds an address to a tenant's suppression list. An entry is unique per
        /// (tenant, `rcpt_hash`, `stream`), `None` (every stream) being a scope of its
        /// own. Returns `true` if it was added, `false` if that entry already existed
        /// (which is then left unchanged). `s.seq` is ignored: the store assigns it.
        fn add_suppression(&self, s: SuppressionRecord) -> StoreResult<bool>;
        /// Every suppression (of any stream scope) of any of `hashes` in the tenant, in
        /// `seq` order: the acceptance check for a whole batch, in one query per at most
        /// a few hundred distinct hashes. The caller decides which scopes apply.
        fn find_suppressions(
            &self,
            tenant_id: &str,
            hashes: Vec<Vec<u8>>,
        ) -> StoreResult<Vec<SuppressionRecord>>;
    }
    shared {
        /// Removes exactly one scope of an address's suppression (`stream` `None` = the
        /// every-stream entry; other scopes stay). An erasure tombstone (reason `erasure`)
        /// is removed only with `erasure`. Returns the number of entries removed (0 or 1).
        fn remove_suppression(
            &self,
            tenant_id: &str,
            rcpt_hash: &[u8],
            stream: Option<&str>,
            erasure: bool,
        ) -> StoreResult<u64> {
            let args = args![tenant_id, rcpt_hash, stream_scope(stream), erasure];
            self.write("remove_suppression", None, &REMOVE_SUPPRESSION, args)
                .await
        }
        /// A tenant's suppressions in `seq` order: only those of `rcpt_hash` if given,
        /// only those with a larger `seq` than `after_seq` (the cursor) if given, at most
        /// `limit` (0 is treated as 1).
        fn list_suppressions(
            &self,
            tenant_id: &str,
            rcpt_hash: Option<Vec<u8>>,
            after_seq: Option<i64>,
            limit: usize,
        ) -> StoreResult<Vec<SuppressionRecord>> {
            let sql = &LIST_SUPPRESSIONS[usize::from(rcpt_hash.is_some())]
                [usize::from(after_seq.is_some())];
            let mut args = args![tenant_id];
            args.extend(rcpt_hash.map(Arg::from));
            args.extend(after_seq.map(Arg::from));
            args.push(Arg::from(limit.max(1)));
            self.rows("list_suppressions", sql, args).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sqlite_is_told_the_index() {
        for (by_hash, index) in [(0, BY_TENANT), (1, BY_SCOPE)] {
            for sql in &LIST_SUPPRESSIONS[by_hash] {
                assert!(sql.sqlite().contains(index));
                assert!(!sql.pg().contains("INDEXED BY"));
            }
        }
    }
}
