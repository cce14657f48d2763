//! A tenant's end: cancellation, reactivation within the grace period
//! (`[retention] cancelled_tenants`) and, once it is over, the deletion of all the
//! tenant's data and then of its data key.
//!
//! While a tenant is cancelled its API keys, users and SMTP credentials are refused,
//! so nothing new is accepted, and its waiting mail is held (`suspended`). Its
//! sub-accounts are cancelled, reactivated and deleted with it. Each step is audited
//! (`tenant.cancel`, `tenant.reactivate`, `tenant.delete`); the audit entries
//! themselves outlive the tenant, so the chain keeps verifying.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use postwerk_store::StoreError;
use postwerk_store::model::TenantRecord;
use postwerk_store::prelude::*;

use crate::audit::{self, Actor};
use crate::context::{ServiceError, Services, now_ms};

/// Rows deleted per step of a tenant's deletion.
const STEP: usize = 5_000;

/// Why a tenant operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// The tenant is cancelled; its data is deleted at `deletion_due` (Unix ms).
    #[error("the tenant is cancelled")]
    Cancelled {
        /// When the grace period ends.
        deletion_due: i64,
    },
    /// Reactivation of a tenant that is not cancelled.
    #[error("the tenant is not cancelled")]
    NotCancelled,
    /// Reactivation of a sub-account whose parent is cancelled.
    #[error("the parent tenant is cancelled: reactivate it instead")]
    ParentCancelled,
    /// Reactivation after the grace period: the deletion is due.
    #[error("the grace period is over: the tenant's data is being deleted")]
    GraceOver,
    /// Store failure, or no such tenant.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for TenantError {
    fn from(e: StoreError) -> Self {
        TenantError::Service(e.into())
    }
}

/// The grace period in ms.
fn grace_ms(services: &Services) -> i64 {
    i64::try_from(services.config.retention.cancelled_tenants.as_millis()).unwrap_or(i64::MAX)
}

/// When the data of a tenant cancelled at `cancelled_at` is deleted (Unix ms).
pub fn deletion_due(services: &Services, cancelled_at: i64) -> i64 {
    cancelled_at.saturating_add(grace_ms(services))
}

/// `Cancelled` for a cancelled tenant: what every front door asks before it lets a
/// tenant's key or user in.
pub fn check_active(services: &Services, tenant: &TenantRecord) -> Result<(), TenantError> {
    match tenant.cancelled_at {
        Some(at) => Err(TenantError::Cancelled {
            deletion_due: deletion_due(services, at),
        }),
        None => Ok(()),
    }
}

/// [`check_active`] for the tenant `tenant_id` (`Service(UnknownTenant)` if there is
/// none, e.g. deleted a moment ago).
pub async fn ensure_active(services: &Services, tenant_id: &str) -> Result<(), TenantError> {
    let tenant = services.store.get_tenant(tenant_id).await?;
    check_active(services, &tenant.ok_or(ServiceError::UnknownTenant)?)
}

/// Cancels `tenant` now, with its active sub-accounts, and holds their waiting mail;
/// returns when its data is due for deletion. `Cancelled` if it already is.
pub async fn cancel(
    services: &Services,
    actor: &Actor,
    tenant: &TenantRecord,
) -> Result<i64, TenantError> {
    check_active(services, tenant)?;
    audit::record(
        services,
        actor,
        Some(&tenant.id),
        "tenant.cancel",
        Some(tenant.id.clone()),
    )
    .await?;
    let now = now_ms();
    let changed = services
        .store
        .set_tenant_cancelled(&tenant.id, Some(now), now)
        .await?;
    services.cancelled.refresh(&services.store).await?;
    if !changed {
        // Cancelled (or deleted) by someone else a moment ago.
        ensure_active(services, &tenant.id).await?;
    }
    Ok(deletion_due(services, now))
}

/// Lifts `tenant`'s cancellation while the grace period lasts, with the sub-accounts
/// cancelled with it, and queues their held mail again.
pub async fn reactivate(
    services: &Services,
    actor: &Actor,
    tenant: &TenantRecord,
) -> Result<(), TenantError> {
    let Some(cancelled_at) = tenant.cancelled_at else {
        return Err(TenantError::NotCancelled);
    };
    if deletion_due(services, cancelled_at) <= now_ms() {
        return Err(TenantError::GraceOver);
    }
    if let Some(parent) = &tenant.parent_id
        && let Err(TenantError::Cancelled { .. }) = ensure_active(services, parent).await
    {
        return Err(TenantError::ParentCancelled);
    }
    audit::record(
        services,
        actor,
        Some(&tenant.id),
        "tenant.reactivate",
        Some(tenant.id.clone()),
    )
    .await?;
    let changed = services
        .store
        .set_tenant_cancelled(&tenant.id, None, now_ms())
        .await?;
    services.cancelled.refresh(&services.store).await?;
    if changed {
        Ok(())
    } else {
        Err(TenantError::NotCancelled)
    }
}

/// Deletes every tenant whose grace period ended before `now`, sub-accounts before
/// their parent: all its data in bounded steps, then the tenant row holding its
/// wrapped data key, which destroys the key. Returns how many tenants were deleted.
pub async fn delete_due(services: &Services, now: i64) -> Result<u64, ServiceError> {
    let cutoff = now.saturating_sub(grace_ms(services));
    let mut due = services.store.list_tenants(Some(cutoff)).await?;
    due.sort_by_key(|t| t.parent_id.is_none());
    for tenant in &due {
        audit::record(
            services,
            &Actor::system(),
            Some(&tenant.id),
            "tenant.delete",
            Some(tenant.id.clone()),
        )
        .await?;
        let mut rows = 0;
        loop {
            let deleted = services.store.delete_tenant_data(&tenant.id, STEP).await?;
            if deleted == 0 {
                break;
            }
            rows += deleted;
            tokio::task::yield_now().await;
        }
        services.keys.forget(&tenant.id);
        services.subject_cache.forget_tenant(&tenant.id);
        tracing::info!(tenant_id = %tenant.id, rows, "cancelled tenant deleted with its data key");
    }
    if !due.is_empty() {
        services.cancelled.refresh(&services.store).await?;
    }
    Ok(due.len() as u64)
}

/// The ids of the cancelled tenants, kept in memory for the delivery engine, which
/// asks once per job without waiting. Reloaded after every change made here and, by
/// the engine, every few seconds (changes made by other processes).
#[derive(Default)]
pub struct CancelledTenants(RwLock<Arc<HashSet<String>>>);

impl CancelledTenants {
    /// Reloads the set from the store.
    pub async fn refresh(&self, store: &impl Store) -> Result<(), StoreError> {
        let ids = store
            .list_tenants(Some(i64::MAX))
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect();
        if let Ok(mut w) = self.0.write() {
            *w = Arc::new(ids);
        }
        Ok(())
    }

    /// Whether the tenant was cancelled when the set was last loaded.
    pub fn contains(&self, tenant_id: &str) -> bool {
        self.0.read().is_ok_and(|s| s.contains(tenant_id))
    }
}
