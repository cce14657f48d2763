//! SQLite: the suppressions area ([`crate::SuppressionStore`]).

use super::*;
use crate::sql::sqlite_params;
use crate::suppressions::{ADD_SUPPRESSION, REMOVE_SUPPRESSION, list_suppressions_sql};

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

    async fn remove_suppression(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
        stream: Option<&str>,
        erasure: bool,
    ) -> StoreResult<u64> {
        let (tenant_id, rcpt_hash) = (tenant_id.to_string(), rcpt_hash.to_vec());
        let stream = stream_scope(stream).to_string();
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(REMOVE_SUPPRESSION.sqlite())
                    .and_then(|mut st| st.execute(params![tenant_id, rcpt_hash, stream, erasure]))
                    .map(|n| n as u64)
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
            // SQLite's own: chunked `IN` lists (PostgreSQL: one array parameter).
            let tx = c.unchecked_transaction().map_err(unavailable)?;
            let rows = rows_by_hashes(
                &tx,
                &format!("SELECT {SUPPRESSION_COLS} FROM suppressions WHERE tenant_id = ?1 AND rcpt_hash IN"),
                &[&tenant_id],
                &hashes,
                |r| suppression_row(r),
            )?;
            drop(tx);
            let mut found = rows;
            found.sort_unstable_by_key(|s| s.seq);
            Ok(found)
        })
        .await
    }

    async fn list_suppressions(
        &self,
        tenant_id: &str,
        rcpt_hash: Option<Vec<u8>>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<SuppressionRecord>> {
        let tenant_id = tenant_id.to_string();
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        self.read(move |c| {
            // By hash: the few entries of one address through the scope index (without
            // statistics SQLite would rather walk the tenant's whole list in seq order to
            // skip the sort).
            let index = match rcpt_hash {
                Some(_) => "suppressions_scope",
                None => "suppressions_tenant",
            };
            let sql = sqlite_params(&list_suppressions_sql(
                &format!("suppressions INDEXED BY {index}"),
                rcpt_hash.is_some(),
                after_seq.is_some(),
            ));
            let mut args: Vec<rusqlite::types::Value> = vec![tenant_id.into()];
            if let Some(h) = rcpt_hash {
                args.push(h.into());
            }
            if let Some(a) = after_seq {
                args.push(a.into());
            }
            args.push(limit.into());
            let rows = c
                .prepare_cached(&sql)
                .and_then(|mut st| {
                    st.query_map(rusqlite::params_from_iter(args), |r| suppression_row(r))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(unavailable)?;
            Ok(rows)
        })
        .await
    }
}
