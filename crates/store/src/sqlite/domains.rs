//! SQLite: the domains area ([`crate::DomainStore`]).

use super::*;
use crate::domains::*;
use crate::run::FromRow;

impl DomainStore for SqliteStore {
    async fn insert_domain(&self, d: DomainRecord) -> StoreResult<()> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.execute(
                    INSERT_DOMAIN.sqlite(),
                    params![d.tenant_id, d.name, d.created_at],
                )
                .map_err(|e| conflict_or(e, "domain"))?;
                for k in &d.keys {
                    c.execute(
                        INSERT_DKIM_KEY.sqlite(),
                        params![
                            k.id,
                            d.tenant_id,
                            d.name,
                            k.selector,
                            k.algorithm,
                            k.private_key_enc,
                            k.public_key,
                            k.created_at
                        ],
                    )
                    .map_err(|e| conflict_or(e, "dkim key"))?;
                }
                Ok(())
            })
            .await
    }

    async fn delete_domain(&self, tenant_id: &str, name: &str) -> StoreResult<bool> {
        let (tenant_id, name) = (tenant_id.to_string(), name.to_string());
        self.writer
            .write(Durability::Fsync, move |c| {
                c.execute(DELETE_DOMAIN_KEYS.sqlite(), params![tenant_id, name])
                    .map_err(unavailable)?;
                let n = c
                    .execute(DELETE_DOMAIN.sqlite(), params![tenant_id, name])
                    .map_err(unavailable)?;
                Ok(n > 0)
            })
            .await
    }

    async fn get_domain(&self, tenant_id: &str, name: &str) -> StoreResult<Option<DomainRecord>> {
        let (tenant_id, name) = (tenant_id.to_string(), name.to_string());
        self.read(move |c| {
            let found = c
                .prepare_cached(GET_DOMAIN.sqlite())
                .and_then(|mut s| {
                    s.query_row(params![tenant_id, name], |r| DomainRecord::from_row(r))
                        .optional()
                })
                .map_err(unavailable)?;
            let Some(mut d) = found else {
                return Ok(None);
            };
            d.keys = c
                .prepare_cached(DOMAIN_KEYS.sqlite())
                .and_then(|mut s| {
                    s.query_map(params![tenant_id, name], |r| DkimKeyRecord::from_row(r))?
                        .collect()
                })
                .map_err(unavailable)?;
            Ok(Some(d))
        })
        .await
    }

    async fn list_domains(&self, tenant_id: &str) -> StoreResult<Vec<DomainRecord>> {
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            let domains = c
                .prepare_cached(LIST_DOMAINS.sqlite())
                .and_then(|mut s| {
                    s.query_map([&tenant_id], |r| DomainRecord::from_row(r))?
                        .collect()
                })
                .map_err(unavailable)?;
            let keys = c
                .prepare_cached(TENANT_DKIM_KEYS.sqlite())
                .and_then(|mut s| s.query_map([&tenant_id], |r| domain_key_row(r))?.collect())
                .map_err(unavailable)?;
            Ok(with_keys(domains, keys))
        })
        .await
    }
}
