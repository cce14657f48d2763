//! A unit of delivery work: one recipient of one message, with its content.

use std::sync::{Arc, OnceLock};

use postwerk_core::address::Address;
use postwerk_core::stream::LANES;

use postwerk_services::streams::Stream;

/// A message's content as delivery needs it, shared by all its recipients.
pub struct Content {
    /// The rendered RFC 5322 message (plaintext: lives in memory only).
    pub message: Vec<u8>,
    /// Domain of the From address (selects the DKIM keys).
    pub from_domain: String,
    /// The message's stream.
    pub stream: String,
    /// Queue lane: the stream's priority (0, `transactional` by default, is served
    /// first; a lane never waits behind a later one).
    pub lane: usize,
    /// The stream's retry schedule (empty: the server's exponential back-off).
    pub retry: Vec<std::time::Duration>,
    /// When this process accepted the message (`None` for mail loaded from the store
    /// after a restart or a poll): the start of the delivery latency metric.
    pub accepted_at: Option<std::time::Instant>,
    /// The body holds tracking links to personalise per recipient.
    pub tracked: bool,
    /// The DKIM-signed form, made once on first use and shared by all recipients.
    pub signed: OnceLock<Arc<Vec<u8>>>,
}

impl Content {
    /// Wraps a rendered message of `stream`, accepted at `accepted_at` if by this
    /// process.
    pub fn new(
        message: Vec<u8>,
        from_domain: String,
        stream: &Stream,
        accepted_at: Option<std::time::Instant>,
    ) -> Arc<Content> {
        Arc::new(Content {
            from_domain,
            stream: stream.name.clone(),
            lane: usize::from(stream.settings.priority).min(LANES - 1),
            retry: stream.settings.retry.clone(),
            accepted_at,
            tracked: crate::tracking::is_tracked(&message),
            message,
            signed: OnceLock::new(),
        })
    }
}

/// One recipient to deliver to.
pub struct Job {
    /// `rcpt_…`.
    pub recipient_id: String,
    /// `msg_…`.
    pub message_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Blind index of the address (copied to events).
    pub rcpt_hash: Vec<u8>,
    /// The address (in memory only).
    pub address: Address,
    /// Attempts made before this one.
    pub attempts: i64,
    /// When retries stop.
    pub expires_at: i64,
    /// The content.
    pub content: Arc<Content>,
    /// The egress pool it leaves from (`None`: the host's default address).
    pub pool: Option<Arc<str>>,
}

/// What the jobs of one message share: whose it is, its content and the egress pool
/// it leaves from.
pub struct Outbound<'a> {
    /// Owning tenant.
    pub tenant_id: &'a str,
    /// `msg_…`.
    pub message_id: &'a str,
    /// The content.
    pub content: &'a Arc<Content>,
    /// The egress pool (`None`: the host's default address).
    pub pool: &'a Option<Arc<str>>,
}

impl Outbound<'_> {
    /// The job of one recipient of the message, `attempts` made so far, retried until
    /// `expires_at`. The one constructor of jobs: the accept pipeline's (new mail) and
    /// the engine's poller's (mail loaded from the store).
    pub fn job(
        &self,
        recipient_id: String,
        rcpt_hash: Vec<u8>,
        address: Address,
        attempts: i64,
        expires_at: i64,
    ) -> Job {
        Job {
            recipient_id,
            message_id: self.message_id.to_string(),
            tenant_id: self.tenant_id.to_string(),
            rcpt_hash,
            address,
            attempts,
            expires_at,
            content: self.content.clone(),
            pool: self.pool.clone(),
        }
    }
}

/// Where a connection goes: a recipient domain, from an egress pool. The ready queue
/// and the connection workers are keyed by it, so pools never share a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// The egress pool (`None`: the host's default address).
    pub pool: Option<Arc<str>>,
    /// The recipient domain.
    pub domain: String,
}

impl Job {
    /// The recipient domain.
    pub fn domain(&self) -> &str {
        self.address.domain()
    }

    /// The queue and connection key.
    pub fn route(&self) -> Route {
        Route {
            pool: self.pool.clone(),
            domain: self.domain().to_string(),
        }
    }
}
