//! PostgreSQL: the domains area ([`crate::DomainStore`]).

use super::*;
use crate::domains::*;
use crate::run::FromRow;

impl DomainStore for PgStore {
    async fn insert_domain(&self, domain: DomainRecord) -> StoreResult<()> {
        let domain = &domain;
        retrying(|| self.insert_domain_tx(domain)).await
    }

    async fn delete_domain(&self, tenant_id: &str, name: &str) -> StoreResult<bool> {
        retrying(|| async move {
            const OP: &str = "delete_domain";
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg(OP))?;
            let params: [&(dyn ToSql + Sync); 2] = [&tenant_id, &name];
            tx.execute(DELETE_DOMAIN_KEYS.pg(), &params)
                .await
                .map_err(pg(OP))?;
            let n = tx
                .execute(DELETE_DOMAIN.pg(), &params)
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

impl PgStore {
    async fn insert_domain_tx(&self, d: &DomainRecord) -> PgResult<()> {
        const OP: &str = "insert_domain";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let domain = tx
            .prepare_cached(INSERT_DOMAIN.pg())
            .await
            .map_err(pg(OP))?;
        let key = tx
            .prepare_cached(INSERT_DKIM_KEY.pg())
            .await
            .map_err(pg(OP))?;
        tx.execute(&domain, &[&d.tenant_id, &d.name, &d.created_at])
            .await
            .map_err(conflict(OP, "domain"))?;
        for k in &d.keys {
            tx.execute(
                &key,
                &[
                    &k.id,
                    &d.tenant_id,
                    &d.name,
                    &k.selector,
                    &k.algorithm,
                    &k.private_key_enc,
                    &k.public_key,
                    &k.created_at,
                ],
            )
            .await
            .map_err(conflict(OP, "dkim key"))?;
        }
        tx.commit().await.map_err(pg(OP))
    }

    async fn get_domain_q(&self, tenant_id: &str, name: &str) -> PgResult<Option<DomainRecord>> {
        const OP: &str = "get_domain";
        let client = self.client().await?;
        let head = client
            .prepare_cached(GET_DOMAIN.pg())
            .await
            .map_err(pg(OP))?;
        let keys = client
            .prepare_cached(DOMAIN_KEYS.pg())
            .await
            .map_err(pg(OP))?;
        let params: [&(dyn ToSql + Sync); 2] = [&tenant_id, &name];
        let (head, keys) = tokio::try_join!(
            client.query_opt(&head, &params),
            client.query(&keys, &params)
        )
        .map_err(pg(OP))?;
        let Some(head) = head else { return Ok(None) };
        Ok(Some(DomainRecord {
            keys: keys
                .iter()
                .map(DkimKeyRecord::from_row)
                .collect::<PgResult<_>>()?,
            ..DomainRecord::from_row(&head)?
        }))
    }

    async fn list_domains_q(&self, tenant_id: &str) -> PgResult<Vec<DomainRecord>> {
        const OP: &str = "list_domains";
        let client = self.client().await?;
        let domains = client
            .prepare_cached(LIST_DOMAINS.pg())
            .await
            .map_err(pg(OP))?;
        let keys = client
            .prepare_cached(TENANT_DKIM_KEYS.pg())
            .await
            .map_err(pg(OP))?;
        let params: [&(dyn ToSql + Sync); 1] = [&tenant_id];
        let (domains, keys) = tokio::try_join!(
            client.query(&domains, &params),
            client.query(&keys, &params)
        )
        .map_err(pg(OP))?;
        let domains = domains
            .iter()
            .map(DomainRecord::from_row)
            .collect::<PgResult<_>>()?;
        let keys = keys.iter().map(domain_key_row).collect::<PgResult<_>>()?;
        Ok(with_keys(domains, keys))
    }
}

/// The unique index on domain names, unless the database still holds a
/// name in several tenants (then each is logged, and the index is made at the first
/// start after an operator resolved them). Checked at every start until it exists.
pub(super) async fn unique_domain_names(tx: &tokio_postgres::Transaction<'_>) -> PgResult<()> {
    let missing: bool = tx
        .query_one("SELECT to_regclass('domains_name') IS NULL", &[])
        .await
        .map_err(pg("migrate"))?
        .try_get(0)
        .map_err(|_| corrupt("domains_name check"))?;
    if !missing {
        return Ok(());
    }
    let contested = tx
        .query(crate::CONTESTED_DOMAINS_SQL, &[])
        .await
        .map_err(pg("migrate"))?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<(String, String)>, tokio_postgres::Error>>()
        .map_err(|_| corrupt("contested domains"))?;
    if contested.is_empty() {
        tx.batch_execute(crate::UNIQUE_DOMAINS_SQL)
            .await
            .map_err(pg("migrate"))
    } else {
        crate::warn_contested(&contested);
        Ok(())
    }
}
