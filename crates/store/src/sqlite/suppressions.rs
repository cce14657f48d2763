//! SQLite: the suppressions area ([`crate::SuppressionStore`]).

use super::*;
use crate::run::FromRow;
use crate::sql::Sql;
use crate::suppressions::{ADD_SUPPRESSION, FIND_SUPPRESSIONS};

/// Most hashes per chunk of [`rows_by_hashes`] (with the tenant: 500 parameters).
const FIND_CHUNK: usize = 499;

/// Runs `select`, whose last parameter (after the `args`, which bind `?1…?k`) is an
/// array of blind indexes written `= ANY(?k+1)`, for `hashes` in chunks inside the
/// caller's snapshot. SQLite's own: it has no arrays, so each chunk is bound as an
/// `IN` list of the placeholders after the `args` (PostgreSQL binds one array).
/// Chunks are padded (by repeating a hash) to one of a few sizes, so that a handful
/// of cached statements serve every batch.
pub(super) fn rows_by_hashes<T>(
    c: &Connection,
    select: &Sql,
    args: &[&dyn rusqlite::ToSql],
    hashes: &[Vec<u8>],
    row: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let array = format!("= ANY(?{})", args.len() + 1);
    debug_assert!(select.sqlite().contains(&array), "no hash array");
    let mut rows = Vec::new();
    for chunk in hashes.chunks(FIND_CHUNK) {
        let size = chunk.len().next_power_of_two().min(FIND_CHUNK);
        let mut bound: Vec<&dyn rusqlite::ToSql> = args.to_vec();
        bound.extend(chunk.iter().map(|h| h as &dyn rusqlite::ToSql));
        let last = &chunk[chunk.len() - 1];
        bound.resize(size + args.len(), last as &dyn rusqlite::ToSql);
        let placeholders = (args.len() + 1..=args.len() + size)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = select
            .sqlite()
            .replacen(&array, &format!("IN ({placeholders})"), 1);
        let mut stmt = c.prepare_cached(&sql).map_err(unavailable)?;
        let found = stmt
            .query_map(bound.as_slice(), &row)
            .map_err(unavailable)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(unavailable)?;
        rows.extend(found);
    }
    Ok(rows)
}

impl SuppressionStore for SqliteStore {
    async fn add_suppression(&self, s: SuppressionRecord) -> StoreResult<bool> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(ADD_SUPPRESSION.sqlite())
                    .and_then(|mut st| {
                        st.execute(params![
                            s.tenant_id,
                            s.rcpt_hash,
                            stream_scope(s.stream.as_deref()),
                            s.reason.as_str(),
                            s.created_at,
                            s.address_enc,
                            s.source
                        ])
                    })
                    .map(|n| n > 0)
                    .map_err(unavailable)
            })
            .await
    }

    async fn find_suppressions(
        &self,
        tenant_id: &str,
        hashes: Vec<Vec<u8>>,
    ) -> StoreResult<Vec<SuppressionRecord>> {
        let hashes = distinct_hashes(hashes);
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            let tx = c.unchecked_transaction().map_err(unavailable)?;
            let mut found = rows_by_hashes(&tx, &FIND_SUPPRESSIONS, &[&tenant_id], &hashes, |r| {
                SuppressionRecord::from_row(r)
            })?;
            drop(tx);
            found.sort_unstable_by_key(|s| s.seq);
            Ok(found)
        })
        .await
    }
}
