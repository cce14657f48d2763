//! The circuit breaker: a stream whose recent mail draws too many complaints or hard
//! bounces is paused (its waiting mail held, new mail rejected) and an event
//! `stream_paused` says why; an operator resumes it explicitly.
//!
//! Bounces and complaints mark their (tenant, stream) for a check; every
//! `circuit_breaker.check_every` the marked streams' rates are read from the store
//! over the window of their latest finished recipients since the last resumption.
//! Reading from the store keeps the judgement right across restarts and nodes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use postwerk_core::config::CircuitBreakerConfig;
use postwerk_store::model::StreamOutcomes;
use postwerk_store::prelude::*;
use serde_json::json;

use crate::audit::{self, Actor};
use crate::context::Services;
use crate::streams;

/// Streams with a bounce or complaint since their last check.
#[derive(Default)]
pub struct Breaker {
    marked: Mutex<HashSet<(String, String)>>,
}

impl Breaker {
    /// Notes a bounce or complaint in a tenant's stream.
    pub fn mark(&self, tenant_id: &str, stream: &str) {
        if let Ok(mut m) = self.marked.lock() {
            m.insert((tenant_id.to_string(), stream.to_string()));
        }
    }

    fn take(&self) -> Vec<(String, String)> {
        self.marked
            .lock()
            .map(|mut m| m.drain().collect())
            .unwrap_or_default()
    }
}

/// Why the outcomes trip the breaker, or `None`. Rates are judged only over a full
/// window.
pub fn verdict(o: &StreamOutcomes, cfg: &CircuitBreakerConfig) -> Option<String> {
    if o.finished == 0 || o.finished < cfg.window as u64 {
        return None;
    }
    let rate = |n: u64| n as f64 / o.finished as f64;
    [
        ("complaint", o.complained, cfg.complaint_rate),
        ("hard-bounce", o.bounced, cfg.bounce_rate),
    ]
    .into_iter()
    .find(|(_, n, limit)| rate(*n) > *limit)
    .map(|(what, n, limit)| {
        format!(
            "{what} rate {:.2} % ({n} of the last {}) is above {:.2} %",
            rate(n) * 100.0,
            o.finished,
            limit * 100.0
        )
    })
}

/// Checks marked streams every `check_every` until the process ends.
pub async fn run(services: Arc<Services>) {
    let cfg = services.config.circuit_breaker.clone();
    if !cfg.enabled {
        return;
    }
    let mut tick = tokio::time::interval(cfg.check_every);
    loop {
        tick.tick().await;
        for (tenant_id, stream) in services.breaker.take() {
            if let Err(e) = check(&services, &cfg, &tenant_id, &stream).await {
                tracing::error!(stream, error = %e, "circuit breaker check failed; retrying");
                services.breaker.mark(&tenant_id, &stream);
            }
        }
    }
}

async fn check(
    services: &Services,
    cfg: &CircuitBreakerConfig,
    tenant_id: &str,
    name: &str,
) -> Result<(), streams::StreamError> {
    let Some(stream) = services.streams.get(tenant_id, name) else {
        return Ok(());
    };
    if stream.is_paused() {
        return Ok(());
    }
    let outcomes = services
        .store
        .stream_outcomes(tenant_id, name, stream.resumed_at.unwrap_or(0), cfg.window)
        .await?;
    let Some(reason) = verdict(&outcomes, cfg) else {
        return Ok(());
    };
    let detail = json!({
        "reason": reason,
        "by": "circuit_breaker",
        "window": outcomes.finished,
        "bounced": outcomes.bounced,
        "complained": outcomes.complained,
    });
    audit::record(
        services,
        &Actor::system(),
        Some(tenant_id),
        "stream.pause",
        Some(format!("stream:{name}")),
    )
    .await?;
    let (_, changed) =
        streams::set_paused(services, tenant_id, name, Some(reason.clone()), detail).await?;
    if changed {
        tracing::warn!(stream = name, tenant_id, %reason, "circuit breaker paused a stream; resume it with `postwerk streams resume`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(finished: u64, bounced: u64, complained: u64) -> StreamOutcomes {
        StreamOutcomes {
            finished,
            bounced,
            complained,
        }
    }

    #[test]
    fn trips_only_over_a_full_window_above_a_threshold() {
        let cfg = CircuitBreakerConfig::default();
        assert_eq!(
            verdict(&outcomes(499, 400, 400), &cfg),
            None,
            "window not full"
        );
        assert_eq!(
            verdict(&outcomes(500, 25, 1), &cfg),
            None,
            "5 % and 0.2 % are allowed"
        );
        assert_eq!(
            verdict(&outcomes(500, 0, 2), &cfg).as_deref(),
            Some("complaint rate 0.40 % (2 of the last 500) is above 0.30 %")
        );
        assert_eq!(
            verdict(&outcomes(500, 26, 0), &cfg).as_deref(),
            Some("hard-bounce rate 5.20 % (26 of the last 500) is above 5.00 %")
        );
    }
}
