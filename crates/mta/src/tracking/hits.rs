//! Opens and clicks as they arrive: who fetched (a person's mail client, a privacy
//! proxy, a link scanner), and the batched recording of `opened` / `clicked` events.
//!
//! Handlers answer at once (pixel or redirect) and hand the hit to the [`Recorder`],
//! which writes everything that arrived within [`BATCH_WINDOW`] in one transaction.
//! A hit of a recipient who was erased, whose processing is restricted or who lacks
//! consent for `[tracking] consent_purpose` (when set) is dropped.

use postwerk_store::vault::SealContext;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use postwerk_core::config::StoreIp;
use postwerk_core::metrics::TRACKING_HITS;
use postwerk_core::model::EventType;
use postwerk_store::model::{RecipientRef, ReportUpdate};
use postwerk_store::prelude::*;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use postwerk_services::context::{ServiceError, Services};

/// How long hits are gathered before they are written together.
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// Most hits written in one transaction.
const MAX_BATCH: usize = 2_000;
/// Hits waiting beyond this are dropped (and counted) rather than piling up memory.
const QUEUE: usize = 100_000;

/// What was fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The open pixel.
    Open,
    /// A tracked link, with its target.
    Click(String),
}

impl Kind {
    /// `open` or `click` (metrics).
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Open => "open",
            Kind::Click(_) => "click",
        }
    }
}

/// One request to a tracking URL, already authenticated.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The recipient.
    pub recipient_id: String,
    /// Open or click.
    pub kind: Kind,
    /// When (Unix ms).
    pub at: i64,
    /// `User-Agent`, if any.
    pub user_agent: Option<String>,
    /// The client's address (kept only as configured).
    pub ip: Option<IpAddr>,
    /// `HEAD` (only scanners prefetch that way).
    pub head: bool,
}

/// Who fetched a tracking URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    /// A mail client or browser: a person.
    Person,
    /// Apple Mail Privacy Protection prefetches every image: not a person's open.
    ApplePrivacyProxy,
    /// Gmail's or Yahoo's image proxy: fetched when the person opens the mail.
    ImageProxy,
    /// A security scanner or bot following links before the person does.
    Scanner,
}

impl Agent {
    /// Classifies a hit by method, user agent and address.
    pub fn of(hit: &Hit) -> Agent {
        let ua = hit.user_agent.as_deref().unwrap_or("").to_ascii_lowercase();
        const SCANNERS: [&str; 16] = [
            "bot",
            "spider",
            "crawl",
            "scan",
            "preview",
            "barracuda",
            "proofpoint",
            "mimecast",
            "symantec",
            "safelinks",
            "python-",
            "curl/",
            "wget",
            "go-http-client",
            "java/",
            "okhttp",
        ];
        let apple = matches!(hit.ip, Some(IpAddr::V4(v4)) if v4.octets()[0] == 17);
        if hit.head || SCANNERS.iter().any(|s| ua.contains(s)) {
            Agent::Scanner
        } else if ua.contains("googleimageproxy") || ua.contains("yahoomailproxy") {
            Agent::ImageProxy
        } else if apple && hit.kind == Kind::Open {
            Agent::ApplePrivacyProxy
        } else if ua.is_empty() {
            Agent::Scanner
        } else {
            Agent::Person
        }
    }

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Agent::Person => "person",
            Agent::ApplePrivacyProxy => "apple_privacy_proxy",
            Agent::ImageProxy => "image_proxy",
            Agent::Scanner => "scanner",
        }
    }

    /// Whether a machine, not the person, caused the hit.
    pub fn is_machine(self) -> bool {
        matches!(self, Agent::ApplePrivacyProxy | Agent::Scanner)
    }
}

/// The address as stored: not at all, or truncated to its /24 or /48 network.
pub fn kept_ip(ip: Option<IpAddr>, policy: StoreIp) -> Option<String> {
    match (policy, ip?) {
        (StoreIp::None, _) => None,
        (StoreIp::Truncated, IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        (StoreIp::Truncated, IpAddr::V6(v6)) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
    }
}

/// Hands hits to the background writer.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Hit>,
}

impl Recorder {
    /// Starts the writer task.
    pub fn start(services: Arc<Services>) -> Recorder {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(services, rx));
        Recorder { tx }
    }

    /// Queues a hit; `false` if the queue is full (the hit is lost, not the request).
    pub fn record(&self, hit: Hit) -> bool {
        let kind = hit.kind.as_str();
        let queued = self.tx.try_send(hit).is_ok();
        if !queued {
            TRACKING_HITS.add(&[kind, "dropped"], 1);
        }
        queued
    }
}

async fn run(services: Arc<Services>, mut rx: mpsc::Receiver<Hit>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(hit)) => batch.push(hit),
                _ => break,
            }
        }
        let hits = std::mem::take(&mut batch);
        let n = hits.len();
        if let Err(e) = write(&services, hits).await {
            tracing::error!(error = %e, hits = n, "could not record opens and clicks");
        }
    }
}

/// Resolves each hit's recipient, drops those not to be tracked (erased, restricted,
/// or without active consent for `[tracking] consent_purpose` when one is set) and
/// writes the events in one transaction.
pub async fn write(services: &Services, hits: Vec<Hit>) -> Result<usize, ServiceError> {
    let mut recipients = HashMap::new();
    for hit in &hits {
        if !recipients.contains_key(&hit.recipient_id) {
            let r = services.store.find_recipient(&hit.recipient_id).await?;
            recipients.insert(hit.recipient_id.clone(), r);
        }
    }
    let trackable = trackable(services, recipients.values().flatten()).await?;
    let mut updates = Vec::with_capacity(hits.len());
    let mut counts: HashMap<(&'static str, &'static str), u64> = HashMap::new();
    for hit in hits {
        let kind = hit.kind.as_str();
        let r = match recipients.get(&hit.recipient_id) {
            Some(Some(r)) if trackable.contains(&(r.tenant_id.clone(), r.rcpt_hash.clone())) => r,
            _ => {
                *counts.entry((kind, "skipped")).or_default() += 1;
                continue;
            }
        };
        *counts.entry((kind, "recorded")).or_default() += 1;
        let keys = services
            .subject_keys(&r.tenant_id, [r.rcpt_hash.as_slice()])
            .await?;
        let agent = Agent::of(&hit);
        let mut detail = json!({"agent": agent.as_str(), "machine": agent.is_machine()});
        if let Some(ip) = kept_ip(hit.ip, services.config.tracking.store_ip) {
            detail["ip"] = Value::from(ip);
        }
        let event = match hit.kind {
            Kind::Open => EventType::Opened,
            Kind::Click(url) => {
                detail["url"] = Value::from(url);
                EventType::Clicked
            }
        };
        updates.push(ReportUpdate::about(
            r,
            event,
            hit.at,
            keys.seal(
                Some(&r.rcpt_hash),
                SealContext::Event(&r.id),
                detail.to_string().as_bytes(),
            ),
        ));
    }
    let n = updates.len();
    if n > 0 {
        services.store.record_reports(updates).await?;
    }
    for ((kind, result), count) in counts {
        TRACKING_HITS.add(&[kind, result], count);
    }
    Ok(n)
}

/// The (tenant, blind index) pairs among `recipients` that may be tracked: not erased
/// (their hash is wiped), not restricted, and consented if a purpose is required. One
/// screening read per tenant.
async fn trackable<'a>(
    services: &Services,
    recipients: impl Iterator<Item = &'a RecipientRef>,
) -> Result<HashSet<(String, Vec<u8>)>, ServiceError> {
    let mut by_tenant: HashMap<&str, Vec<Vec<u8>>> = HashMap::new();
    for r in recipients.filter(|r| !r.rcpt_hash.is_empty()) {
        by_tenant
            .entry(r.tenant_id.as_str())
            .or_default()
            .push(r.rcpt_hash.clone());
    }
    let purpose = services.config.tracking.consent_purpose.clone();
    let mut out = HashSet::new();
    for (tenant, hashes) in by_tenant {
        let screen = services
            .store
            .screen_subjects(tenant, hashes.clone(), purpose.clone())
            .await?;
        let restricted: HashSet<&Vec<u8>> = screen.restricted.iter().collect();
        let consented: HashSet<&Vec<u8>> = screen.consented.iter().collect();
        for h in hashes {
            if !restricted.contains(&h) && (purpose.is_none() || consented.contains(&h)) {
                out.insert((tenant.to_string(), h));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(ua: Option<&str>, ip: &str, kind: Kind, head: bool) -> Hit {
        Hit {
            recipient_id: "rcpt_x".into(),
            kind,
            at: 0,
            user_agent: ua.map(str::to_string),
            ip: Some(ip.parse().unwrap()),
            head,
        }
    }

    #[test]
    fn classifies_agents() {
        let firefox =
            Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
        let click = || Kind::Click("https://a.example".into());
        assert_eq!(
            Agent::of(&hit(firefox, "203.0.113.9", Kind::Open, false)),
            Agent::Person
        );
        assert_eq!(
            Agent::of(&hit(firefox, "17.58.1.2", Kind::Open, false)),
            Agent::ApplePrivacyProxy
        );
        assert_eq!(
            Agent::of(&hit(firefox, "17.58.1.2", click(), false)),
            Agent::Person
        );
        assert_eq!(
            Agent::of(&hit(firefox, "203.0.113.9", click(), true)),
            Agent::Scanner
        );
        let gmail = Some(
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
        );
        assert_eq!(
            Agent::of(&hit(gmail, "66.249.1.1", Kind::Open, false)),
            Agent::ImageProxy
        );
        assert_eq!(
            Agent::of(&hit(
                Some("python-requests/2.31"),
                "198.51.100.1",
                click(),
                false
            )),
            Agent::Scanner
        );
        assert_eq!(
            Agent::of(&hit(None, "198.51.100.1", Kind::Open, false)),
            Agent::Scanner
        );
    }

    #[test]
    fn addresses_are_dropped_or_truncated() {
        let v4 = Some("203.0.113.77".parse().unwrap());
        let v6 = Some("2001:db8:abcd:12::1".parse().unwrap());
        assert_eq!(kept_ip(v4, StoreIp::None), None);
        assert_eq!(
            kept_ip(v4, StoreIp::Truncated).as_deref(),
            Some("203.0.113.0/24")
        );
        assert_eq!(
            kept_ip(v6, StoreIp::Truncated).as_deref(),
            Some("2001:db8:abcd::/48")
        );
    }
}
