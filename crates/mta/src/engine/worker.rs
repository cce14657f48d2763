//! A worker per destination: one connection at a time — resolve the next hops, apply
//! the domain's MTA-STS policy, take a connection slot and the site's permission,
//! connect from an egress source, deliver live jobs until idle (or a cap), quit.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use postwerk_core::model::RecipientStatus;
use postwerk_dns::mta_sts;
use postwerk_dns::resolve::NextHop;
use postwerk_smtp_client::{ClientConfig, SmtpClient, SmtpError, TlsMode};
use postwerk_store::prelude::*;

use super::Engine;
use crate::job::{Job, Route};
use crate::outcome::{AttemptDetail, Verdict};
use crate::shaper;
use postwerk_services::context::now_ms;
use postwerk_services::egress::{self, Pick, Source};

/// Sources of a pool tried for one connection when addresses cannot be bound.
const MAX_SOURCE_TRIES: usize = 4;
/// An idle connection waits this long for more mail before QUIT.
const IDLE: Duration = Duration::from_secs(2);

impl Engine {
    pub(super) fn spawn_worker(self: &Arc<Self>, route: Route) {
        self.workers.fetch_add(1, Ordering::AcqRel);
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                engine.run_connection(&route).await;
                if !engine.queue.worker_done(&route, engine.is_stopping()) {
                    break;
                }
            }
            if engine.workers.fetch_sub(1, Ordering::AcqRel) == 1 {
                engine.idle_workers.notify_waiters();
            }
        });
    }

    /// One connection's life: resolve, pick an egress source, connect, deliver jobs
    /// until idle (or the source's warm-up cap), quit.
    async fn run_connection(self: &Arc<Self>, route: &Route) {
        let Some(lane) = self.queue.best_lane(route) else {
            return;
        };
        if self.is_stopping() {
            return;
        }
        let domain = route.domain.as_str();
        let hops = match self.resolver.resolve(domain).await {
            Ok(h) => h,
            Err(e) => {
                let verdict = if e.is_permanent() {
                    Verdict::Permanent
                } else {
                    Verdict::Transient
                };
                let detail = AttemptDetail {
                    reply: format!("DNS: {e}"),
                    ..Default::default()
                };
                self.fail_destination(route, verdict, detail).await;
                return;
            }
        };
        let policy = self.mta_sts.policy(domain, &self.resolver).await;
        let plan = match mta_sts::plan(domain, policy.as_deref(), hops) {
            Ok(plan) => plan,
            Err(reply) => {
                tracing::warn!(domain, "no MX host matches the domain's MTA-STS policy");
                let detail = AttemptDetail {
                    reply,
                    ..Default::default()
                };
                self.fail_destination(route, Verdict::Transient, detail)
                    .await;
                return;
            }
        };
        let hops = plan.hops;
        let hosts: Vec<&str> = hops.iter().map(|h| h.host.as_str()).collect();
        let site = self.shaper.site(route.pool.as_ref(), &hosts);
        let Some(_site_connection) = site.connection(lane).await else {
            return;
        };
        let _slot = self.slots.acquire(lane).await;
        if self.is_stopping() {
            return;
        }
        let (mut client, mx, source) = match self.connect(route, &hops, plan.verify).await {
            Ok(connected) => connected,
            Err(reply) => {
                let reply = if plan.verify {
                    format!("MTA-STS: no MX host with verified TLS: {reply}")
                } else {
                    reply
                };
                if shaper::is_throttling(&reply, None) {
                    site.throttled();
                }
                tracing::warn!(domain, error = %reply, "destination unreachable");
                let detail = AttemptDetail {
                    reply,
                    site: Some(site.name.clone()),
                    ..Default::default()
                };
                self.fail_destination(route, Verdict::Transient, detail)
                    .await;
                return;
            }
        };
        let per_connection = self
            .services
            .config
            .delivery
            .max_messages_per_connection
            .min(site.limits.deliveries_per_connection);
        let mut sent = 0usize;
        while !self.is_stopping()
            && client.is_usable()
            && sent < per_connection
            && source
                .as_ref()
                .is_none_or(|s| s.has_room(egress::day_of(now_ms())))
        {
            let Some(job) = self.next_job(route).await else {
                break;
            };
            if let Some(s) = &source
                && !s.try_take(egress::day_of(now_ms()))
            {
                // Another connection used the source's last message of today: the job
                // goes back, and the next connection spills or waits.
                self.enqueue(vec![job]);
                break;
            }
            sent += 1;
            site.pace(job.content.lane == 0).await;
            let (update, suppression, throttled) = self
                .deliver(&mut client, &mx, source.as_deref(), &site.name, job)
                .await;
            let delivered = update.status == RecipientStatus::Delivered;
            self.record(vec![update], suppression.into_iter().collect())
                .await;
            if throttled {
                // The site asked us to slow down: close, and let the back-off decide
                // when to come back.
                site.throttled();
                break;
            }
            if delivered {
                site.delivered();
            }
        }
        if client.is_usable() {
            client.quit().await;
        }
    }

    /// Connects to the first reachable address of `hops`, from a source of the
    /// route's pool if it has one; with `verify`, only over TLS with a certificate
    /// valid for the MX host (MTA-STS `enforce`). A source whose address cannot be
    /// bound is set aside for [`egress::UNHEALTHY_FOR`] and another source of the pool
    /// is tried. The error is the reply recorded with the deferral.
    async fn connect(
        &self,
        route: &Route,
        hops: &[NextHop],
        verify: bool,
    ) -> Result<(SmtpClient, String, Option<Arc<Source>>), String> {
        let mut last_error = String::from("no address to connect to");
        let mut tries = 0;
        let base = if verify {
            ClientConfig {
                tls: TlsMode::Verified,
                trust: Some(self.mta_sts.trust()),
                ..self.client.clone()
            }
        } else {
            self.client.clone()
        };
        loop {
            let (config, source) = match &route.pool {
                None => (base.clone(), None),
                Some(pool) => match self.services.egress.pick(pool, now_ms()) {
                    Pick::Source(s) => {
                        let config = ClientConfig {
                            ehlo_name: s.ehlo_name.clone(),
                            source_ip: Some(s.address),
                            ..base.clone()
                        };
                        (config, Some(s))
                    }
                    Pick::Wait(reason) => return Err(format!("local: {reason}")),
                },
            };
            for hop in hops {
                for addr in &hop.addrs {
                    match SmtpClient::connect(*addr, &hop.host, &config).await {
                        Ok(c) => return Ok((c, hop.host.clone(), source)),
                        Err(SmtpError::Connect(e))
                            if e.kind() == std::io::ErrorKind::AddrNotAvailable
                                && let Some(s) = &source =>
                        {
                            tracing::warn!(source = %s.name, address = %s.address, error = %e,
                                "egress source cannot be bound; its pool's other sources take over");
                            s.mark_unhealthy(now_ms() + egress::UNHEALTHY_FOR.as_millis() as i64);
                            last_error =
                                format!("local: egress source {} ({}): {e}", s.name, s.address);
                            break;
                        }
                        Err(e) => last_error = format!("{} [{}]: {e}", hop.host, addr.ip()),
                    }
                }
                if source.as_ref().is_some_and(|s| !s.is_healthy(now_ms())) {
                    break;
                }
            }
            tries += 1;
            let retry = source.is_some_and(|s| !s.is_healthy(now_ms())) && tries < MAX_SOURCE_TRIES;
            if !retry {
                return Err(last_error);
            }
        }
    }

    /// The next job for `route` whose recipient is still waiting in the store: mail
    /// stopped since it was queued in memory (erasure, restriction, unsubscribe,
    /// consent withdrawal, a new suppression entry) is dropped here, before delivery.
    async fn next_job(self: &Arc<Self>, route: &Route) -> Option<Job> {
        loop {
            let job = self.next_live(route).await?;
            if self.still_waiting(&job).await {
                return Some(job);
            }
        }
    }

    /// Whether the job's recipient is still to be delivered (not final in the store).
    /// If the store cannot tell, it is delivered as it would have been without the
    /// check (its outcome is recorded once the store answers again).
    async fn still_waiting(&self, job: &Job) -> bool {
        match self.services.store.find_recipient(&job.recipient_id).await {
            Ok(found) => {
                let status = found.map(|r| r.status);
                let waiting = status.is_some_and(|s| !s.is_final());
                if !waiting {
                    tracing::info!(recipient_id = %job.recipient_id,
                        status = status.map_or("gone", |s| s.as_str()),
                        "not delivered: the recipient's mail was stopped while it waited");
                }
                waiting
            }
            Err(e) => {
                tracing::warn!(recipient_id = %job.recipient_id, error = %e,
                    "could not check that the recipient still waits; delivering");
                true
            }
        }
    }

    async fn next_live(self: &Arc<Self>, route: &Route) -> Option<Job> {
        if let Some(job) = self.pop_live(route) {
            return Some(job);
        }
        let deadline = tokio::time::Instant::now() + IDLE;
        loop {
            let notified = self.wake.notified();
            if let Some(job) = self.pop_live(route) {
                return Some(job);
            }
            if self.is_stopping() || tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.pop_live(route);
            }
        }
    }

    /// The next job for `domain` whose stream is not paused and whose tenant is not
    /// cancelled. Other jobs are set aside: pausing or cancelling already held them in
    /// the store (`suspended`, lease cleared). Their leases are given back all the
    /// same, in case this node has not yet seen a resumption made elsewhere: the
    /// poller then claims them again.
    fn pop_live(self: &Arc<Self>, route: &Route) -> Option<Job> {
        let mut set_aside = Vec::new();
        let live = loop {
            match self.queue.pop(route) {
                Some(job)
                    if self.stream_of(&job).is_paused()
                        || self.services.cancelled.contains(&job.tenant_id) =>
                {
                    set_aside.push(job.recipient_id)
                }
                other => break other,
            }
        };
        if !set_aside.is_empty() {
            let engine = self.clone();
            tokio::spawn(async move {
                let store = &engine.services.store;
                if let Err(e) = store
                    .release_recipients(&engine.services.node_id, set_aside)
                    .await
                {
                    tracing::error!(error = %e, "could not release the leases of held mail");
                }
            });
        }
        live
    }
}
