//! PostgreSQL: the domains area ([`crate::DomainStore`]).

use super::*;

impl DomainStore for PgStore {
    async fn insert_domain(&self, domain: DomainRecord) -> StoreResult<()> {
        let domain = &domain;
        retrying(|| self.insert_domain_tx(domain)).await
    }

    async fn domain_owners(&self, name: &str) -> StoreResult<Vec<String>> {
        retrying(|| async move {
            const OP: &str = "domain_owners";
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT tenant_id FROM domains WHERE name = $1 ORDER BY created_at, tenant_id",
                )
                .await
                .map_err(pg(OP))?;
            let rows = client.query(&stmt, &[&name]).await.map_err(pg(OP))?;
            rows.iter().map(|r| col(r, "tenant_id")).collect()
        })
        .await
    }

    async fn delete_domain(&self, tenant_id: &str, name: &str) -> StoreResult<bool> {
        retrying(|| async move {
            const OP: &str = "delete_domain";
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg(OP))?;
            let params: [&(dyn ToSql + Sync); 2] = [&tenant_id, &name];
            tx.execute(
                "DELETE FROM dkim_keys WHERE tenant_id = $1 AND domain = $2",
                &params,
            )
            .await
            .map_err(pg(OP))?;
            let n = tx
                .execute(
                    "DELETE FROM domains WHERE tenant_id = $1 AND name = $2",
                    &params,
                )
                .await
                .map_err(pg(OP))?;
            tx.commit().await.map_err(pg(OP))?;
            Ok(n > 0)
        })
        .await
    }

    async fn get_domain(&self, tenant_id: &str, name: &str) -> StoreResult<Option<DomainRecord>> {
        retrying(|| self.get_domain_q(tenant_id, name)).await
    }

    async fn list_domains(&self, tenant_id: &str) -> StoreResult<Vec<DomainRecord>> {
        retrying(|| self.list_domains_q(tenant_id)).await
    }
}
