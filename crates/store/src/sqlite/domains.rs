//! SQLite: the domains area ([`crate::DomainStore`]).

use super::*;
use crate::domains::*;

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

    async fn domain_owners(&self, name: &str) -> StoreResult<Vec<String>> {
        let name = name.to_string();
        self.read(move |c| {
            c.prepare_cached(DOMAIN_OWNERS.sqlite())
                .and_then(|mut s| s.query_map([name], |r| r.get(0))?.collect())
                .map_err(unavailable)
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
                .prepare_cached(DOMAIN_CREATED.sqlite())
                .and_then(|mut s| {
                    s.query_row(params![tenant_id, name], |r| r.get::<_, i64>(0))
                        .optional()
                })
                .map_err(unavailable)?;
            let Some(created_at) = found else {
                return Ok(None);
            };
            let mut d = DomainRecord {
                tenant_id,
                name,
                created_at,
                keys: Vec::new(),
            };
            load_domain_keys(c, &mut d)?;
            Ok(Some(d))
        })
        .await
    }

    async fn list_domains(&self, tenant_id: &str) -> StoreResult<Vec<DomainRecord>> {
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            let mut domains: Vec<DomainRecord> = c
                .prepare_cached(LIST_DOMAINS.sqlite())
                .and_then(|mut s| {
                    s.query_map([&tenant_id], |r| {
                        Ok(DomainRecord {
                            tenant_id: tenant_id.clone(),
                            name: r.get(0)?,
                            created_at: r.get(1)?,
                            keys: Vec::new(),
                        })
                    })?
                    .collect()
                })
                .map_err(unavailable)?;
            for d in &mut domains {
                load_domain_keys(c, d)?;
            }
            Ok(domains)
        })
        .await
    }
}

/// Reads the keys of `domain` into it.
fn load_domain_keys(conn: &Connection, domain: &mut DomainRecord) -> StoreResult<()> {
    domain.keys = conn
        .prepare_cached(DOMAIN_KEYS.sqlite())
        .and_then(|mut stmt| {
            stmt.query_map(params![domain.tenant_id, domain.name], |r| dkim_row(r))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(unavailable)?;
    Ok(())
}
