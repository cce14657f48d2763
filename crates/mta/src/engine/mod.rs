//! The delivery engine: connection workers per destination fed by the ready queue,
//! a poller that leases due (new or retried) recipients from the store, DKIM signing,
//! and graceful shutdown.
//!
//! Crash safety: a recipient leaves the store's due set only when its outcome is
//! committed. A worker waits for that commit before it takes the next job, so after
//! a crash at most one delivery per connection can be repeated.
//!
//! - this file: the [`Engine`] (its parts, start, hand-off of new jobs, shutdown).
//! - `worker`: one worker per destination: resolve, apply MTA-STS, connect from an
//!   egress source, take live jobs until idle, quit.
//! - `attempt`: one delivery attempt over a connection, a failed destination, and
//!   recording outcomes (with hard-bounce suppression).
//! - `signer`: DKIM signing of a job's message (personalised or shared) and the cache
//!   of signers.
//! - `poller`: claiming due recipients from the store, loading their content, and
//!   renewing this node's leases.

mod attempt;
mod poller;
mod signer;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use postwerk_core::config::TlsPolicy;
use postwerk_dkim::DkimSigner;
use postwerk_dns::mta_sts::{self, MtaSts};
use postwerk_dns::resolve::MxResolver;
use postwerk_smtp_client::{ClientConfig, TlsMode};
use postwerk_store::prelude::*;
use tokio::sync::{Notify, Semaphore};

use crate::job::Job;
use crate::outcome::RetryPolicy;
use crate::queue::ReadyQueue;
use crate::shaper::Shaper;
use crate::slots::Slots;
use postwerk_services::context::{ServiceError, Services, now_ms};
use postwerk_services::streams::Stream;

/// How long a lease on a recipient lasts; renewed every [`LEASE_RENEW`].
const LEASE: Duration = Duration::from_secs(600);
const LEASE_RENEW: Duration = Duration::from_secs(60);
/// The poller leaves work in the store while this many jobs wait in memory.
const MAX_READY: usize = 20_000;
/// How many more jobs urgent mail may add to a full ready queue: accepted urgent mail
/// goes to memory at once instead of behind a bulk backlog in the store (which the
/// poller claims in due order).
const URGENT_HEADROOM: usize = 20_000;

/// DKIM signers by (tenant id, From domain).
type SignerCache = HashMap<(String, String), Arc<Vec<DkimSigner>>>;

/// The MTA-STS client's settings from `[mta_sts]`, with its trust anchors loaded.
fn mta_sts_settings(
    cfg: &postwerk_core::config::MtaStsConfig,
) -> Result<mta_sts::Settings, EngineError> {
    let anchors = match &cfg.ca_file {
        Some(path) => postwerk_dns::trust::load_anchors(path).map_err(EngineError::TrustAnchors)?,
        None => Vec::new(),
    };
    Ok(mta_sts::Settings {
        enabled: cfg.enabled,
        policy_port: cfg.policy_port,
        fetch_timeout: cfg.fetch_timeout,
        trust: postwerk_dns::trust::verifying_config(&anchors)
            .map_err(EngineError::TrustAnchors)?,
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
    /// The resolver deliveries use (for DNS checks that should see what delivery sees).
    pub fn resolver(&self) -> &MxResolver {
        &self.resolver
    }

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
    /// them for the poller. Mail of a priority ahead of bulk (`priority` below the
    /// default) may fill [`URGENT_HEADROOM`] more, so that a broadcast's backlog in the
    /// store never stands in front of it.
    pub fn lease_for_new(&self, priority: u8) -> Option<(String, i64)> {
        let urgent = priority < postwerk_core::stream::StreamSettings::default().priority;
        let room = MAX_READY + if urgent { URGENT_HEADROOM } else { 0 };
        (self.queue.len() < room && !self.is_stopping()).then(|| {
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

    /// The job's stream as currently configured.
    fn stream_of(&self, job: &Job) -> Arc<Stream> {
        let found = self
            .services
            .streams
            .get(&job.tenant_id, &job.content.stream);
        found.unwrap_or_else(|| Arc::new(Stream::initial(&job.content.stream)))
    }
}
