//! The store's domains area: sending domains and their DKIM keys.

use crate::StoreResult;
use crate::model::*;
use crate::row::Columns;
use crate::run::FromRow;

sql! {
    /// A new domain.
    INSERT_DOMAIN = "INSERT INTO domains (tenant_id, name, created_at) VALUES ($1, $2, $3)";
    /// A new DKIM key of a domain.
    INSERT_DKIM_KEY = "INSERT INTO dkim_keys (id, tenant_id, domain, selector, algorithm, \
         private_key_enc, public_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    /// The tenants holding a domain name, oldest registration first.
    DOMAIN_OWNERS = "SELECT tenant_id FROM domains WHERE name = $1 ORDER BY created_at, tenant_id";
    /// A tenant's domain's keys (before the domain goes).
    DELETE_DOMAIN_KEYS = "DELETE FROM dkim_keys WHERE tenant_id = $1 AND domain = $2";
    /// A tenant's domain.
    DELETE_DOMAIN = "DELETE FROM domains WHERE tenant_id = $1 AND name = $2";
    /// Tenant `$1`'s domain `$2`, without its keys.
    GET_DOMAIN = "SELECT {DOMAIN_COLS} FROM domains WHERE tenant_id = $1 AND name = $2";
    /// Tenant `$1`'s domain `$2`'s keys, oldest first.
    DOMAIN_KEYS = "SELECT {DKIM_COLS} FROM dkim_keys \
         WHERE tenant_id = $1 AND domain = $2 ORDER BY created_at, id";
    /// Tenant `$1`'s domains by name, without their keys.
    LIST_DOMAINS = "SELECT {DOMAIN_COLS} FROM domains WHERE tenant_id = $1 ORDER BY name";
    /// Tenant `$1`'s keys of every domain, by domain and then oldest first, for
    /// [`domain_key_row`].
    TENANT_DKIM_KEYS = "SELECT domain, {DKIM_COLS} FROM dkim_keys WHERE tenant_id = $1 \
         ORDER BY domain, created_at, id";
}

/// The columns a [`DomainRecord`] is read from.
const DOMAIN_COLS: &str = "tenant_id, name, created_at";

/// A row of `domains`, without its keys.
impl FromRow for DomainRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(DomainRecord {
            tenant_id: r.get("tenant_id")?,
            name: r.get("name")?,
            created_at: r.get("created_at")?,
            keys: Vec::new(),
        })
    }
}

/// A DKIM key with its domain's name (both backends' [`TENANT_DKIM_KEYS`]).
pub(crate) fn domain_key_row<R: Columns>(r: &R) -> Result<(String, DkimKeyRecord), R::Error> {
    Ok((r.get("domain")?, DkimKeyRecord::from_row(r)?))
}

/// A row of [`DOMAIN_OWNERS`]: a tenant holding the name.
struct DomainOwner(String);

impl FromRow for DomainOwner {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(DomainOwner(r.get("tenant_id")?))
    }
}

/// `domains` (of one tenant) with their keys from `keys` (domain name, key; in order).
pub(crate) fn with_keys(
    mut domains: Vec<DomainRecord>,
    keys: Vec<(String, DkimKeyRecord)>,
) -> Vec<DomainRecord> {
    let mut by_domain: std::collections::HashMap<String, Vec<DkimKeyRecord>> =
        std::collections::HashMap::new();
    for (domain, key) in keys {
        by_domain.entry(domain).or_default().push(key);
    }
    for d in &mut domains {
        d.keys = by_domain.remove(&d.name).unwrap_or_default();
    }
    domains
}

/// The columns a [`DkimKeyRecord`] is read from.
pub(crate) const DKIM_COLS: &str =
    "id, selector, algorithm, private_key_enc, public_key, created_at";

/// A DKIM key row.
impl FromRow for DkimKeyRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(DkimKeyRecord {
            id: r.get("id")?,
            selector: r.get("selector")?,
            algorithm: r.get("algorithm")?,
            private_key_enc: r.get("private_key_enc")?,
            public_key: r.get("public_key")?,
            created_at: r.get("created_at")?,
        })
    }
}

store_area! {
    /// Sending domains and their DKIM keys.
    DomainStore {
        /// Registers a domain with its keys; `Conflict("domain")` if any tenant holds the
        /// name (a name belongs to one tenant of the installation: atomic, a unique index).
        fn insert_domain(&self, domain: DomainRecord) -> StoreResult<()>;
        /// Removes a tenant's domain and its DKIM keys; `false` if it had none.
        fn delete_domain(&self, tenant_id: &str, name: &str) -> StoreResult<bool>;
        /// A tenant's domain with its DKIM keys.
        fn get_domain(&self, tenant_id: &str, name: &str) -> StoreResult<Option<DomainRecord>>;
        /// All domains of a tenant.
        fn list_domains(&self, tenant_id: &str) -> StoreResult<Vec<DomainRecord>>;
    }
    shared {
        /// The tenants holding the domain `name`, oldest registration first: none or one,
        /// except in a database from before names were unique that still holds a name in
        /// several tenants (see [`CONTESTED_DOMAINS_SQL`](crate::CONTESTED_DOMAINS_SQL)).
        fn domain_owners(&self, name: &str) -> StoreResult<Vec<String>> {
            let owners: Vec<DomainOwner> =
                self.rows("domain_owners", &DOMAIN_OWNERS, args![name]).await?;
            Ok(owners.into_iter().map(|DomainOwner(t)| t).collect())
        }
    }
}
