//! The shared services every front door and the delivery engine use: the store, the
//! key ring, the configuration and this node's identity.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use postwerk_core::config::Config;
use postwerk_core::id::{new_id, random_token};
use postwerk_store::model::TenantRecord;
use postwerk_store::prelude::*;
use postwerk_store::vault::{KeyRing, MasterKey, TenantKeys, VaultError, write_private_file};
use postwerk_store::{AnyStore, StoreError};

use crate::breaker::Breaker;
use crate::egress::Egress;
use crate::streams::StreamDirectory;

/// How long a positive [`Services::domain_registered`] answer is reused: a domain an
/// operator removed from a tenant stops being usable by it within this time on every
/// node.
pub const REGISTERED_TTL: Duration = Duration::from_secs(60);

/// The tenant of a single-organisation install.
pub const DEFAULT_TENANT: &str = "default";

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The store failed; nothing was written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key could not be loaded or a sealed value did not open.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A referenced tenant does not exist.
    #[error("unknown tenant")]
    UnknownTenant,
    /// Local files (data directory) could not be used.
    #[error("data directory: {0}")]
    DataDir(String),
}

/// Shared state: cheap to clone behind an `Arc`.
pub struct Services {
    /// The store.
    pub store: AnyStore,
    /// Master key and unwrapped tenant keys.
    pub keys: KeyRing,
    /// The validated configuration.
    pub config: Arc<Config>,
    /// This node's stable identity (leases are taken in its name).
    pub node_id: String,
    /// Every tenant's streams (settings, pause state).
    pub streams: StreamDirectory,
    /// The cancelled tenants (their mail is not delivered).
    pub cancelled: crate::tenants::CancelledTenants,
    /// Streams due for a circuit-breaker check.
    pub breaker: Breaker,
    /// Egress sources and pools.
    pub egress: Egress,
    /// Request rate limits (API and SMTP).
    pub limits: crate::ratelimit::RequestLimits,
    /// `(tenant, domain)` pairs known to be registered, with when that was read
    /// (positive answers only, reused for [`REGISTERED_TTL`]).
    registered: RwLock<HashMap<(String, String), Instant>>,
    /// Recently used keys of data subjects.
    pub(crate) subject_cache: crate::subjects::SubjectKeyCache,
}

impl Services {
    /// Prepares the data directory (0700), loads or creates the master key and the
    /// node id, and opens the store named by the configuration.
    pub async fn open(config: Config) -> Result<Services, ServiceError> {
        let dir = config.data_dir.clone();
        prepare_data_dir(&dir)?;
        let env_key = std::env::var("POSTWERK_MASTER_KEY").ok();
        let master = MasterKey::load_or_create(&dir, env_key.as_deref())?;
        let node_id = load_or_create_node_id(&dir)?;
        let store = AnyStore::open(&config.store_url()).await?;
        let streams = StreamDirectory::default();
        streams.refresh(&store).await?;
        let cancelled = crate::tenants::CancelledTenants::default();
        cancelled.refresh(&store).await?;
        let egress = Egress::new(&config);
        let limits = crate::ratelimit::RequestLimits::new(&config.rate_limits);
        Ok(Services {
            store,
            keys: KeyRing::new(master),
            config: Arc::new(config),
            node_id,
            streams,
            cancelled,
            breaker: Breaker::default(),
            egress,
            limits,
            registered: RwLock::default(),
            subject_cache: Default::default(),
        })
    }

    /// The working keys of a tenant (unwrapped once, then cached).
    pub async fn tenant_keys(&self, tenant_id: &str) -> Result<Arc<TenantKeys>, ServiceError> {
        if let Some(k) = self.keys.cached(tenant_id) {
            return Ok(k);
        }
        let tenant = self
            .store
            .get_tenant(tenant_id)
            .await?
            .ok_or(ServiceError::UnknownTenant)?;
        Ok(self.keys.unwrap(&tenant.id, &tenant.wrapped_key)?)
    }

    /// True when `domain` (exactly: no parent or child domain counts) is registered
    /// for the tenant and no other tenant holds it: a name still held by several
    /// tenants (a database from before names were unique) is refused to all of them
    /// until an operator resolves it. Positive answers are cached for
    /// [`REGISTERED_TTL`]: the hot path of every front door asks this per message.
    pub async fn domain_registered(
        &self,
        tenant_id: &str,
        domain: &str,
    ) -> Result<bool, StoreError> {
        let key = (tenant_id.to_string(), domain.to_string());
        let fresh = |at: &Instant| at.elapsed() < REGISTERED_TTL;
        if self
            .registered
            .read()
            .is_ok_and(|s| s.get(&key).is_some_and(fresh))
        {
            return Ok(true);
        }
        let found = self.store.domain_owners(domain).await? == [tenant_id];
        if let Ok(mut s) = self.registered.write() {
            if found {
                s.insert(key, Instant::now());
            } else {
                s.remove(&key);
            }
        }
        Ok(found)
    }

    /// Creates tenant `name` with a fresh data key; a sub-account of `parent_id` if
    /// given. `Store(Conflict)` if the name is taken.
    pub async fn create_tenant(
        &self,
        name: &str,
        parent_id: Option<&str>,
    ) -> Result<TenantRecord, ServiceError> {
        let id = new_id("ten");
        let tenant = TenantRecord {
            wrapped_key: self.keys.master().new_wrapped_tenant_key(&id),
            id,
            name: name.to_string(),
            created_at: now_ms(),
            parent_id: parent_id.map(str::to_string),
            cancelled_at: None,
        };
        self.store.insert_tenant(tenant.clone()).await?;
        Ok(tenant)
    }

    /// The tenant called `name`, created with a fresh data key if it does not exist.
    pub async fn ensure_tenant(&self, name: &str) -> Result<TenantRecord, ServiceError> {
        if let Some(t) = self.store.get_tenant_by_name(name).await? {
            return Ok(t);
        }
        match self.create_tenant(name, None).await {
            Ok(tenant) => Ok(tenant),
            // Another process (serve and a CLI command) created it at the same moment.
            Err(ServiceError::Store(StoreError::Conflict(_))) => self
                .store
                .get_tenant_by_name(name)
                .await?
                .ok_or(ServiceError::UnknownTenant),
            Err(e) => Err(e),
        }
    }
}

/// Whether `name` is a valid tenant name: 1–64 letters, digits, `-`, `_` or `.`.
pub fn valid_tenant_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn prepare_data_dir(dir: &Path) -> Result<(), ServiceError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ServiceError::DataDir(format!("{}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| ServiceError::DataDir(format!("{}: {e}", dir.display())))?;
    }
    Ok(())
}

fn load_or_create_node_id(dir: &Path) -> Result<String, ServiceError> {
    let path = dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = format!("node_{}", random_token(16));
            write_private_file(&path, id.as_bytes())
                .map_err(|e| ServiceError::DataDir(format!("{}: {e}", path.display())))?;
            Ok(id)
        }
    }
}
