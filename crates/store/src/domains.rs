//! The store's domains area: sending domains and their DKIM keys.

use crate::StoreResult;
use crate::model::*;

store_area! {
    /// Sending domains and their DKIM keys.
    DomainStore {
        /// Registers a domain with its keys; `Conflict("domain")` if any tenant holds the
        /// name (a name belongs to one tenant of the installation: atomic, a unique index).
        fn insert_domain(&self, domain: DomainRecord) -> StoreResult<()>;
        /// The tenants holding the domain `name`, oldest registration first: none or one,
        /// except in a database from before names were unique that still holds a name in
        /// several tenants (see [`CONTESTED_DOMAINS_SQL`](crate::CONTESTED_DOMAINS_SQL)).
        fn domain_owners(&self, name: &str) -> StoreResult<Vec<String>>;
        /// Removes a tenant's domain and its DKIM keys; `false` if it had none.
        fn delete_domain(&self, tenant_id: &str, name: &str) -> StoreResult<bool>;
        /// A tenant's domain with its DKIM keys.
        fn get_domain(&self, tenant_id: &str, name: &str) -> StoreResult<Option<DomainRecord>>;
        /// All domains of a tenant.
        fn list_domains(&self, tenant_id: &str) -> StoreResult<Vec<DomainRecord>>;
    }
}
