//! SQLite: the domains area ([`crate::DomainStore`]).

use super::*;

impl DomainStore for SqliteStore {
    async fn insert_domain(&self, d: DomainRecord) -> StoreResult<()> {
        self.writer.write(Durability::Fsync, move |c| {
                c.execute(
                    "INSERT INTO domains (tenant_id, name, created_at) VALUES (?1, ?2, ?3)",
                    params![d.tenant_id, d.name, d.created_at],
                )
                .map_err(|e| conflict_or(e, "domain"))?;
                for k in &d.keys {
                    c.execute(
                        "INSERT INTO dkim_keys (id, tenant_id, domain, selector, algorithm, private_key_enc, \
                         public_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            k.id, d.tenant_id, d.name, k.selector, k.algorithm, k.private_key_enc, k.public_key,
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
            c.prepare_cached(
                "SELECT tenant_id FROM domains WHERE name = ?1 ORDER BY created_at, tenant_id",
            )
            .and_then(|mut s| s.query_map([name], |r| r.get(0))?.collect())
            .map_err(unavailable)
        })
        .await
    }

    async fn delete_domain(&self, tenant_id: &str, name: &str) -> StoreResult<bool> {
        let (tenant_id, name) = (tenant_id.to_string(), name.to_string());
        self.writer
            .write(Durability::Fsync, move |c| {
                c.execute(
                    "DELETE FROM dkim_keys WHERE tenant_id = ?1 AND domain = ?2",
                    params![tenant_id, name],
                )
                .map_err(unavailable)?;
                let n = c
                    .execute(
                        "DELETE FROM domains WHERE tenant_id = ?1 AND name = ?2",
                        params![tenant_id, name],
                    )
                    .map_err(unavailable)?;
                Ok(n > 0)
            })
            .await
    }

    async fn get_domain(&self, tenant_id: &str, name: &str) -> StoreResult<Option<DomainRecord>> {
        let (tenant_id, name) = (tenant_id.to_string(), name.to_string());
        self.read(move |c| {
            let found = c
                .prepare_cached("SELECT created_at FROM domains WHERE tenant_id = ?1 AND name = ?2")
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
                .prepare_cached(
                    "SELECT name, created_at FROM domains WHERE tenant_id = ?1 ORDER BY name",
                )
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
