//! The purge job: enforces `[retention]` continuously. Every `interval` it deletes the
//! tenants cancelled longer than `cancelled_tenants` ago (see [`postwerk_services::tenants`]),
//! purges message content older than `content` (once all recipients are final), then
//! events and settled messages older than `events`, Idempotency-Key records older than
//! 24 hours and webhook deliveries older than `webhook_logs` — each period that of the
//! row's tenant and stream (`[retention.tenants.*]`, `[retention.streams.*]`) — and
//! audit entries older than `audit_log` (the chain stays verifiable from an anchor), in
//! bounded steps, so it never holds the store's writer for long.

use std::sync::Arc;
use std::time::Duration;

use postwerk_core::config::RetentionPeriods;
use postwerk_store::IDEMPOTENCY_TTL_MS;
use postwerk_store::model::{Purged, Retention, RetentionPeriods as Periods, RetentionPolicy};
use postwerk_store::prelude::*;

use postwerk_services::context::{ServiceError, Services, now_ms};

/// Rows of each kind per purge step.
const STEP: usize = 5_000;

/// Milliseconds of a period.
fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A policy of one level of `[retention]`.
fn policy(
    tenant_id: Option<&str>,
    stream: Option<&str>,
    periods: &RetentionPeriods,
) -> RetentionPolicy {
    RetentionPolicy {
        tenant_id: tenant_id.map(str::to_string),
        stream: stream.map(str::to_string),
        content: periods.content.map(ms),
        events: periods.events.map(ms),
        webhook_logs: periods.webhook_logs.map(ms),
    }
}

/// What `[retention]` removes at `now`: the defaults, and the policies of streams
/// and of tenants (by id; a tenant named but not created has none yet).
pub async fn retention_at(services: &Services, now: i64) -> Result<Retention, ServiceError> {
    let r = &services.config.retention;
    let mut policies: Vec<RetentionPolicy> = r
        .streams
        .iter()
        .map(|(stream, p)| policy(None, Some(stream), p))
        .collect();
    for (name, t) in &r.tenants {
        let Some(tenant) = services.store.get_tenant_by_name(name).await? else {
            continue;
        };
        policies.push(policy(Some(&tenant.id), None, t));
        for (stream, p) in &t.streams {
            policies.push(policy(Some(&tenant.id), Some(stream), p));
        }
    }
    Ok(Retention {
        now,
        default: Periods {
            content: ms(r.content),
            events: ms(r.events),
            webhook_logs: ms(r.webhook_logs),
        },
        policies,
        idempotency_before: now - IDEMPOTENCY_TTL_MS,
        limit: STEP,
    })
}

/// Purges everything due at `now` (Unix ms): steps until nothing is left. Returns
/// what was purged besides the deleted tenants (which are logged one by one).
pub async fn purge_due(services: &Services, now: i64) -> Result<Purged, ServiceError> {
    postwerk_services::tenants::delete_due(services, now).await?;
    let retention = retention_at(services, now).await?;
    let audit_before = now.saturating_sub(ms(services.config.retention.audit_log));
    let mut total = Purged::default();
    loop {
        let mut p = services.store.purge(retention.clone()).await?;
        p.audit = services.store.prune_audit(audit_before, STEP).await?;
        if p.is_empty() {
            return Ok(total);
        }
        total.audit += p.audit;
        total.contents += p.contents;
        total.events += p.events;
        total.messages += p.messages;
        total.idempotency += p.idempotency;
        total.webhook_deliveries += p.webhook_deliveries;
        tokio::task::yield_now().await;
    }
}

/// Runs [`purge_due`] every `retention.interval` until the task is dropped.
pub async fn run(services: Arc<Services>) {
    let mut tick = tokio::time::interval(services.config.retention.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match purge_due(&services, now_ms()).await {
            Ok(p) if p.is_empty() => {}
            Ok(p) => tracing::info!(
                contents = p.contents,
                events = p.events,
                messages = p.messages,
                idempotency = p.idempotency,
                webhook_deliveries = p.webhook_deliveries,
                audit = p.audit,
                "retention purge"
            ),
            Err(e) => tracing::warn!(error = %e, "retention purge failed; retrying next interval"),
        }
    }
}

#[cfg(test)]
mod tests {
    use postwerk_core::config::Config;

    use super::*;
    use postwerk_services::audit::Actor;

    /// A cancelled tenant is deleted by the first purge after its grace period, key
    /// and all, and nothing of another tenant is.
    #[tokio::test]
    async fn a_cancelled_tenant_is_deleted_after_its_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "data_dir = \"{}\"\n[retention]\ncancelled_tenants = \"1h\"\n",
            dir.path().display()
        );
        let services = Services::open(Config::from_toml(&text, []).unwrap())
            .await
            .unwrap();
        let gone = services.create_tenant("gone", None).await.unwrap();
        let child = services
            .create_tenant("gone-child", Some(&gone.id))
            .await
            .unwrap();
        let kept = services.create_tenant("kept", None).await.unwrap();
        for t in [&gone, &child, &kept] {
            postwerk_accounts::apikeys::create_key(&services, &t.id, Default::default())
                .await
                .unwrap();
        }
        let due = postwerk_services::tenants::cancel(&services, &Actor::cli(), &gone)
            .await
            .unwrap();
        let cancelled_at = services
            .store
            .get_tenant(&gone.id)
            .await
            .unwrap()
            .unwrap()
            .cancelled_at
            .unwrap();
        assert_eq!(due, cancelled_at + 3_600_000);

        purge_due(&services, due - 1).await.unwrap();
        for t in [&gone, &child, &kept] {
            assert!(services.store.get_tenant(&t.id).await.unwrap().is_some());
            assert_eq!(services.store.list_api_keys(&t.id).await.unwrap().len(), 1);
        }

        purge_due(&services, due + 1).await.unwrap();
        for t in [&gone, &child] {
            assert!(services.store.get_tenant(&t.id).await.unwrap().is_none());
            assert!(
                services
                    .store
                    .list_api_keys(&t.id)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert!(
                services.tenant_keys(&t.id).await.is_err(),
                "the key is gone"
            );
        }
        assert!(services.store.get_tenant(&kept.id).await.unwrap().is_some());
        assert_eq!(
            services.store.list_api_keys(&kept.id).await.unwrap().len(),
            1
        );
        let deleted = services
            .store
            .list_audit(Some(&gone.id), None, 100)
            .await
            .unwrap();
        let actions: Vec<(&str, &str)> = deleted
            .iter()
            .map(|e| (e.actor.as_str(), e.action.as_str()))
            .collect();
        assert_eq!(
            actions,
            [("cli", "tenant.cancel"), ("system", "tenant.delete")]
        );
        assert!(
            postwerk_services::audit::verify(&services)
                .await
                .unwrap()
                .is_ok()
        );
    }

    /// The audit log keeps `audit_log` (injected clock): older entries are pruned, and
    /// `audit verify` still passes from the anchor.
    #[tokio::test]
    async fn old_audit_entries_are_pruned_and_the_chain_still_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "data_dir = \"{}\"\n[retention]\naudit_log = \"1d\"\n",
            dir.path().display()
        );
        let services = Services::open(Config::from_toml(&text, []).unwrap())
            .await
            .unwrap();
        for name in ["a", "b", "c"] {
            let t = services.create_tenant(name, None).await.unwrap();
            postwerk_services::tenants::cancel(&services, &Actor::cli(), &t)
                .await
                .unwrap();
            // Entries a few milliseconds apart, so each has its own time.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let entries = services.store.list_audit(None, None, 100).await.unwrap();
        assert_eq!(entries.len(), 3);
        let day = 86_400_000;
        let p = purge_due(&services, entries[0].at + day).await.unwrap();
        assert_eq!(p.audit, 0, "nothing is a day old yet");
        let p = purge_due(&services, entries[1].at + day + 1).await.unwrap();
        assert_eq!(p.audit, 2, "{p:?}");
        let left = services.store.list_audit(None, None, 100).await.unwrap();
        assert_eq!(left, entries[2..]);
        let (n, head) = postwerk_services::audit::verify(&services)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((n as usize, head), (left.len(), entries[2].hash.clone()));
    }
}
