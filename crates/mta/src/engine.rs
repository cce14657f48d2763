//! The delivery engine: connection workers per destination fed by the ready queue,
//! a poller that leases due (new or retried) recipients from the store, DKIM signing,
//! and graceful shutdown.
//!
//! Crash safety: a recipient leaves the store's due set only when its outcome is
//! committed. A worker waits for that commit before it takes the next job, so after
//! a crash at most one delivery per connection can be repeated.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use postwerk_core::address::Address;
use postwerk_core::config::TlsPolicy;
use postwerk_core::model::{RecipientStatus, SuppressionReason};
use postwerk_store::model::{DeliveryUpdate, SuppressionRecord};
use postwerk_store::prelude::*;
use tokio::sync::{Notify, Semaphore};

use crate::context::{ServiceError, Services, now_ms};
use crate::dkim::{self, DkimSigner};
use crate::egress::{self, Pick, Source};
use crate::job::{Content, Job, Route};
use crate::mta_sts::{self, MtaSts};
use crate::outcome::{
    AttemptDetail, RetryPolicy, TlsDetail, Verdict, classify_local, judge, update_for,
};
use crate::queue::ReadyQueue;
use crate::resolve::MxResolver;
use crate::shaper::{self, Shaper};
use crate::slots::Slots;
use crate::smtp::{ClientConfig, SmtpClient, SmtpError, TlsMode};
use crate::streams::Stream;
use crate::subjects::SubjectKeys;
use crate::suppressions;
use crate::tracking;
use crate::unsubscribe;
use crate::verp;

/// How long a lease on a recipient lasts; renewed every [`LEASE_RENEW`].
const LEASE: Duration = Duration::from_secs(600);
const LEASE_RENEW: Duration = Duration::from_secs(60);
/// How often the store is asked for due recipients.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Streams are reloaded every this many polls (changes made on other nodes).
const STREAMS_RELOAD_POLLS: u64 = 5;
/// The poller leaves work in the store while this many jobs wait in memory.
const MAX_READY: usize = 20_000;
/// Sources of a pool tried for one connection when addresses cannot be bound.
const MAX_SOURCE_TRIES: usize = 4;
/// An idle connection waits this long for more mail before QUIT.
const IDLE: Duration = Duration::from_secs(2);

/// DKIM signers by (tenant id, From domain).
type SignerCache = HashMap<(String, String), Arc<Vec<DkimSigner>>>;

/// The MTA-STS client's settings from `[mta_sts]`, with its trust anchors loaded.
fn mta_sts_settings(
    cfg: &postwerk_core::config::MtaStsConfig,
) -> Result<mta_sts::Settings, EngineError> {
    let anchors = match &cfg.ca_file {
        Some(path) => crate::trust::load_anchors(path).map_err(EngineError::TrustAnchors)?,
        None => Vec::new(),
    };
    Ok(mta_sts::Settings {
        enabled: cfg.enabled,
        policy_port: cfg.policy_port,
        fetch_timeout: cfg.fetch_timeout,
        trust: crate::trust::verifying_config(&anchors).map_err(EngineError::TrustAnchors)?,
    })
}

/// How many bulk messages may be signed at once: one core stays free for
/// transactional mail, the API and the store (RSA signing saturates a core).
fn bulk_signers() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    cores.saturating_sub(1).max(1)
}

/// The running delivery engine.
pub struct Engine {
    services: Arc<Services>,
    queue: ReadyQueue,
    resolver: MxResolver,
    mta_sts: MtaSts,
    client: ClientConfig,
    retry: RetryPolicy,
    /// Connection slots, served by priority with per-lane reservations.
    slots: Arc<Slots>,
    /// Per-site limits and adaptive back-off.
    shaper: Shaper,
    /// Bulk lanes sign on all cores but one at a time, so that a transactional message
    /// (which skips this) never queues behind bulk signatures for CPU.
    bulk_signing: Semaphore,
    signers: RwLock<SignerCache>,
    wake: Notify,
    stopping: AtomicBool,
    workers: AtomicUsize,
    idle_workers: Notify,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// DNS resolver configuration failed.
    #[error("resolver: {0}")]
    Resolver(String),
    /// The traffic-shaping file could not be read or is invalid.
    #[error("traffic shaping: {0}")]
    Shaping(String),
    /// `mta_sts.ca_file` could not be read or holds no usable certificate.
    #[error("mta_sts.ca_file: {0}")]
    TrustAnchors(String),
    /// Store failure.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl Engine {
    /// Starts the engine: releases leases this node held before a restart, then runs
    /// the poller and lease renewal in the background.
    pub async fn start(services: Arc<Services>) -> Result<Arc<Engine>, EngineError> {
        let cfg = &services.config.delivery;
        let shaping = services
            .config
            .shaping()
            .map_err(|e| EngineError::Shaping(e.to_string()))?;
        let resolver = MxResolver::new(&cfg.routes, &services.config.dns.nameservers)
            .map_err(|e| EngineError::Resolver(e.to_string()))?
            .with_smtp_port(cfg.smtp_port)
            .allow_private(cfg.allow_private_mx);
        let client = ClientConfig {
            ehlo_name: cfg.ehlo_name.clone(),
            source_ip: None,
            tls: match cfg.tls {
                TlsPolicy::Opportunistic => TlsMode::Opportunistic,
                TlsPolicy::Required => TlsMode::Required,
                TlsPolicy::Disabled => TlsMode::Disabled,
            },
            trust: None,
            connect_timeout: Duration::from_secs(30),
            command_timeout: cfg.command_timeout,
            data_timeout: cfg.command_timeout * 3,
        };
        let mta_sts = MtaSts::new(mta_sts_settings(&services.config.mta_sts)?);
        let released = services
            .store
            .release_leases(&services.node_id)
            .await
            .map_err(ServiceError::from)?;
        if released > 0 {
            tracing::info!(
                released,
                "re-queued deliveries that were in flight before a restart"
            );
        }
        let engine = Arc::new(Engine {
            queue: ReadyQueue::new(cfg.max_connections_per_destination),
            resolver,
            mta_sts,
            client,
            retry: RetryPolicy {
                base: cfg.retry_base,
                max: cfg.retry_max,
            },
            slots: Slots::new(cfg.max_connections),
            shaper: Shaper::new(shaping),
            bulk_signing: Semaphore::new(bulk_signers()),
            signers: RwLock::new(HashMap::new()),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            workers: AtomicUsize::new(0),
            idle_workers: Notify::new(),
            services,
        });
        let shares = engine.services.streams.reserved_shares();
        engine.slots.reserve(shares);
        engine.shaper.reserve(shares);
        engine
            .services
            .egress
            .load_counts(&engine.services.store, now_ms())
            .await
            .map_err(ServiceError::from)?;
        tokio::spawn(engine.clone().poll_loop());
        tokio::spawn(engine.clone().renew_loop());
        Ok(engine)
    }

    /// The lease this node takes on freshly accepted recipients that it queues in
    /// memory, or `None` when the in-memory queue is full and the store should keep
    /// them for the poller.
    pub fn lease_for_new(&self) -> Option<(String, i64)> {
        (self.queue.len() < MAX_READY && !self.is_stopping()).then(|| {
            (
                self.services.node_id.clone(),
                now_ms() + LEASE.as_millis() as i64,
            )
        })
    }

    /// Queues jobs whose lease this node holds.
    pub fn enqueue(self: &Arc<Self>, jobs: Vec<Job>) {
        for route in self.queue.push(jobs) {
            self.spawn_worker(route);
        }
        // Idle connections waiting for more mail pick up the new jobs at once.
        self.wake.notify_waiters();
    }

    /// Jobs waiting in memory.
    pub fn ready_len(&self) -> usize {
        self.queue.len()
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Stops taking new jobs and waits (up to `grace`) for transactions in flight to
    /// finish and be recorded. Jobs still waiting keep their lease and are picked up
    /// again at the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_waiters();
        let wait = async {
            while self.workers.load(Ordering::Acquire) > 0 {
                let notified = self.idle_workers.notified();
                if self.workers.load(Ordering::Acquire) == 0 {
                    break;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(grace, wait).await.is_err() {
            tracing::warn!(
                workers = self.workers.load(Ordering::Acquire),
                "shutdown grace expired"
            );
        }
    }

    fn spawn_worker(self: &Arc<Self>, route: Route) {
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
        hops: &[crate::resolve::NextHop],
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

    async fn deliver(
        &self,
        client: &mut SmtpClient,
        mx: &str,
        source: Option<&Source>,
        site: &str,
        job: Job,
    ) -> (DeliveryUpdate, Option<SuppressionRecord>, bool) {
        let keys = self
            .services
            .subject_keys(&job.tenant_id, [job.rcpt_hash.as_slice()])
            .await;
        let tls = client.tls_info().map(|t| TlsDetail {
            version: t.version.clone(),
            cipher: t.cipher.clone(),
            verified: t.verified,
        });
        let mut detail = AttemptDetail {
            mx: Some(mx.to_string()),
            ip: Some(client.peer_addr().ip().to_string()),
            source: source.map(|s| s.name.clone()),
            source_ip: source.map(|s| s.address.to_string()),
            site: Some(site.to_string()),
            tls,
            ..Default::default()
        };
        let (verdict, classification) = match self.signed(&job).await {
            Ok(message) => {
                let mail_from = self.verp(&job);
                let rcpt = job.address.to_string();
                let result = client
                    .send(&mail_from, &[&rcpt], &message, job.address.is_utf8())
                    .await;
                let judged = judge(result);
                detail.reply = judged.reply;
                (judged.verdict, judged.classification)
            }
            Err(e) => {
                detail.reply = format!("local: {e}");
                (Verdict::Transient, None)
            }
        };
        let hard = detail.classify(verdict, classification);
        let throttled =
            verdict == Verdict::Transient && shaper::is_throttling(&detail.reply, detail.reason);
        if verdict == Verdict::Permanent {
            self.services
                .breaker
                .mark(&job.tenant_id, &job.content.stream);
        }
        tracing::info!(
            message_id = %job.message_id,
            recipient_id = %job.recipient_id, mx,
            verdict = ?verdict, attempt = job.attempts + 1, "delivery attempt"
        );
        match keys {
            Ok(keys) => {
                let suppression = hard.then(|| self.hard_bounce_entry(&keys, &job));
                let update = update_for(&job, verdict, detail, now_ms(), &self.retry, &keys);
                (update, suppression, throttled)
            }
            Err(_) => {
                let keys = self.fallback_keys();
                let update = update_for(
                    &job,
                    Verdict::Transient,
                    detail,
                    now_ms(),
                    &self.retry,
                    &keys,
                );
                (update, None, throttled)
            }
        }
    }

    fn hard_bounce_entry(&self, keys: &SubjectKeys, job: &Job) -> SuppressionRecord {
        suppressions::record(
            keys,
            &job.tenant_id,
            &job.address,
            SuppressionReason::HardBounce,
            None,
            &job.recipient_id,
        )
    }

    /// Keys are always loadable once a job exists; this exists only so that a vault
    /// failure cannot lose the attempt record. It seals nothing readable.
    fn fallback_keys(&self) -> SubjectKeys {
        let master = self.services.keys.master();
        let wrapped = master.new_wrapped_tenant_key("fallback");
        let keys = master
            .unwrap_tenant_key("fallback", &wrapped)
            .expect("freshly wrapped key unwraps");
        SubjectKeys::tenant_only(Arc::new(keys))
    }

    /// Defers or bounces every job waiting for a destination that failed as a whole.
    async fn fail_destination(&self, route: &Route, verdict: Verdict, mut detail: AttemptDetail) {
        let hard = detail.classify(verdict, Some(classify_local(verdict, &detail.reply)));
        let jobs = self.queue.drain(route);
        let mut updates = Vec::with_capacity(jobs.len());
        let mut suppressed = Vec::new();
        for job in &jobs {
            if verdict == Verdict::Permanent {
                self.services
                    .breaker
                    .mark(&job.tenant_id, &job.content.stream);
            }
            if let Ok(keys) = self
                .services
                .subject_keys(&job.tenant_id, [job.rcpt_hash.as_slice()])
                .await
            {
                if hard {
                    suppressed.push(self.hard_bounce_entry(&keys, job));
                }
                updates.push(update_for(
                    job,
                    verdict,
                    detail.clone(),
                    now_ms(),
                    &self.retry,
                    &keys,
                ));
            }
        }
        self.record(updates, suppressed).await;
    }

    /// Commits outcomes, then adds hard-bounced addresses to the suppression list.
    async fn record(&self, updates: Vec<DeliveryUpdate>, suppressions: Vec<SuppressionRecord>) {
        if let Err(e) = self.services.store.record_deliveries(updates).await {
            tracing::error!(error = %e, "could not record a delivery outcome; it will be retried after the lease");
            return;
        }
        for entry in suppressions {
            if let Err(e) = self.services.store.add_suppression(entry).await {
                tracing::error!(error = %e, "could not suppress a hard-bounced address");
            }
        }
    }

    /// The VERP envelope sender (see [`verp`]) at the bounce domain, else at the
    /// sender's domain.
    fn verp(&self, job: &Job) -> String {
        let domain = self
            .services
            .config
            .delivery
            .bounce_domain
            .as_deref()
            .unwrap_or(&job.content.from_domain);
        let tag = self
            .services
            .keys
            .cached(&job.tenant_id)
            .map(|k| k.verp_tag(&job.recipient_id))
            .unwrap_or_default();
        verp::address(&job.recipient_id, &tag, domain)
    }

    /// The DKIM-signed message for `job`: signed once per message and shared by its
    /// recipients, or signed per recipient when it is personal: with the recipient's
    /// `List-Unsubscribe` in front (streams with one-click unsubscribe) and their token
    /// in the tracking links.
    async fn signed(&self, job: &Job) -> Result<Arc<Vec<u8>>, String> {
        if let Some(s) = job.content.signed.get() {
            return Ok(s.clone());
        }
        let config = &self.services.config;
        let stream = self.stream_of(job);
        let unsub = unsubscribe::applies(config, &stream, &job.content.message);
        let signers = self
            .signers(&job.tenant_id, &job.content.from_domain)
            .await?;
        let now = now_ms() as u64 / 1000;
        let _bulk_permit = match job.content.lane {
            0 => None,
            _ => Some(
                self.bulk_signing
                    .acquire()
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        };
        // RSA signing is the costliest step of a delivery (≈0.85 ms of CPU): run it on
        // the blocking pool so the async workers keep serving sockets meanwhile.
        let content = job.content.clone();
        if unsub || content.tracked {
            let mut message = Vec::with_capacity(content.message.len() + 256);
            if unsub {
                let keys = self
                    .services
                    .tenant_keys(&job.tenant_id)
                    .await
                    .map_err(|e| e.to_string())?;
                message.extend_from_slice(
                    unsubscribe::headers(config, &keys, &job.recipient_id).as_bytes(),
                );
            }
            let token = tracking::token(self.services.keys.master(), &job.recipient_id);
            return tokio::task::spawn_blocking(move || {
                match tracking::personalise(&content.message, &token) {
                    Some(personal) => message.extend_from_slice(&personal),
                    None => message.extend_from_slice(&content.message),
                }
                dkim::sign_message(&signers, &message, now)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?;
        }
        tokio::task::spawn_blocking(move || {
            if let Some(s) = content.signed.get() {
                return Ok(s.clone());
            }
            let signed =
                dkim::sign_message(&signers, &content.message, now).map_err(|e| e.to_string())?;
            Ok(content.signed.get_or_init(|| Arc::new(signed)).clone())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// The job's stream as currently configured.
    fn stream_of(&self, job: &Job) -> Arc<Stream> {
        let found = self
            .services
            .streams
            .get(&job.tenant_id, &job.content.stream);
        found.unwrap_or_else(|| Arc::new(Stream::initial(&job.content.stream)))
    }

    async fn signers(&self, tenant_id: &str, domain: &str) -> Result<Arc<Vec<DkimSigner>>, String> {
        let key = (tenant_id.to_string(), domain.to_string());
        if let Some(s) = self.signers.read().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(s);
        }
        let keys = self
            .services
            .tenant_keys(tenant_id)
            .await
            .map_err(|e| e.to_string())?;
        let record = self
            .services
            .store
            .get_domain(tenant_id, domain)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("sending domain is not registered")?;
        let mut signers = Vec::with_capacity(record.keys.len());
        for k in &record.keys {
            let der = keys
                .open(&format!("dkim:{}", k.id), &k.private_key_enc)
                .map_err(|e| e.to_string())?;
            let algorithm = k
                .algorithm
                .parse()
                .map_err(|_| "unknown DKIM algorithm".to_string())?;
            signers.push(
                DkimSigner::new(domain, &k.selector, algorithm, &der).map_err(|e| e.to_string())?,
            );
        }
        let signers = Arc::new(signers);
        if let Ok(mut m) = self.signers.write() {
            m.insert(key, signers.clone());
        }
        Ok(signers)
    }

    async fn poll_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(POLL_EVERY);
        let mut polls = 0u64;
        while !self.is_stopping() {
            tick.tick().await;
            polls += 1;
            if polls.is_multiple_of(STREAMS_RELOAD_POLLS) {
                match self.services.streams.refresh(&self.services.store).await {
                    Ok(()) => {
                        let shares = self.services.streams.reserved_shares();
                        self.slots.reserve(shares);
                        self.shaper.reserve(shares);
                    }
                    Err(e) => tracing::error!(error = %e, "could not reload streams"),
                }
                if let Err(e) = self.services.cancelled.refresh(&self.services.store).await {
                    tracing::error!(error = %e, "could not reload the cancelled tenants");
                }
            }
            if self.queue.len() >= MAX_READY {
                continue;
            }
            let now = now_ms();
            let limit = (MAX_READY - self.queue.len()).min(2_000);
            match self
                .services
                .store
                .claim_due(
                    &self.services.node_id,
                    now,
                    now + LEASE.as_millis() as i64,
                    limit,
                )
                .await
            {
                Ok(due) if !due.is_empty() => {
                    let jobs = self.jobs_from_due(due).await;
                    self.enqueue(jobs);
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "could not claim due deliveries"),
            }
        }
    }

    async fn jobs_from_due(&self, due: Vec<postwerk_store::model::DueRecipient>) -> Vec<Job> {
        let mut contents: HashMap<String, Option<Arc<Content>>> = HashMap::new();
        let mut tenants: HashMap<String, SubjectKeys> = HashMap::new();
        for d in &due {
            if tenants.contains_key(&d.tenant_id) {
                continue;
            }
            let hashes = due
                .iter()
                .filter(|o| o.tenant_id == d.tenant_id)
                .map(|o| o.rcpt_hash.as_slice());
            match self.services.subject_keys(&d.tenant_id, hashes).await {
                Ok(keys) => {
                    tenants.insert(d.tenant_id.clone(), keys);
                }
                Err(e) => tracing::error!(error = %e, "cannot load keys for due deliveries"),
            }
        }
        let mut jobs = Vec::with_capacity(due.len());
        for d in due {
            let Some(keys) = tenants.get(&d.tenant_id) else {
                continue;
            };
            if !contents.contains_key(&d.message_id) {
                let content = self.load_content(&d.message_id, &d.rcpt_hash, keys).await;
                contents.insert(d.message_id.clone(), content);
            }
            let (Some(Some(content)), Ok(addr)) = (
                contents.get(&d.message_id),
                keys.open(
                    Some(&d.rcpt_hash),
                    &format!("rcpt:{}", d.id),
                    &d.address_enc,
                ),
            ) else {
                tracing::error!(recipient_id = %d.id, "cannot load a due delivery; it stays queued");
                continue;
            };
            let Ok(address) = std::str::from_utf8(&addr)
                .map_err(|_| ())
                .and_then(|a| Address::parse(a).map_err(|_| ()))
            else {
                continue;
            };
            let stream = self.services.streams.get(&d.tenant_id, &content.stream);
            let stream = stream.unwrap_or_else(|| Arc::new(Stream::initial(&content.stream)));
            let pool = self
                .services
                .egress
                .pool_for(&self.services, &d.tenant_id, &stream)
                .await;
            jobs.push(Job {
                recipient_id: d.id,
                message_id: d.message_id,
                tenant_id: d.tenant_id,
                rcpt_hash: d.rcpt_hash,
                address,
                attempts: d.attempts,
                expires_at: d.expires_at,
                content: content.clone(),
                pool,
            });
        }
        jobs
    }

    /// A message's content, for delivery to the recipient `rcpt_hash` (whose key
    /// seals it if they are its only recipient).
    async fn load_content(
        &self,
        message_id: &str,
        rcpt_hash: &[u8],
        keys: &SubjectKeys,
    ) -> Option<Arc<Content>> {
        let row = self.services.store.load_content(message_id).await.ok()??;
        let message = keys
            .open(
                Some(rcpt_hash),
                &format!("msg:{message_id}"),
                row.content_enc.as_ref()?,
            )
            .ok()?;
        let stream = self.services.streams.get(&row.tenant_id, &row.stream);
        let stream = stream.unwrap_or_else(|| Arc::new(Stream::initial(&row.stream)));
        Some(Content::new(message, row.from_domain, &stream, None))
    }

    async fn renew_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(LEASE_RENEW);
        tick.tick().await;
        while !self.is_stopping() {
            tick.tick().await;
            let until = now_ms() + LEASE.as_millis() as i64;
            if let Err(e) = self
                .services
                .store
                .renew_leases(&self.services.node_id, until)
                .await
            {
                tracing::error!(error = %e, "could not renew delivery leases");
            }
        }
    }
}
