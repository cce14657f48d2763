//! SMTP MTA Strict Transport Security (RFC 8461): a recipient domain that publishes a
//! policy in `enforce` mode gets its mail only from MX hosts the policy names, over TLS
//! with a certificate valid for the host. Without that, delivery is deferred, never
//! downgraded.
//!
//! Discovery follows RFC 8461 §5: the `_mta-sts` TXT record announces a policy id; a
//! policy fetched for that id is cached until its `max_age` ends and refetched when the
//! id changes. A cached policy keeps applying while the TXT record or the policy host is
//! unreachable, which is what defeats an attacker who blocks them. Domains with a static
//! route are exempt (the operator chose the next hop).

pub mod fetch;
pub mod policy;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use policy::{Mode, Policy};

use crate::resolve::{MxResolver, NextHop};

/// After a failed fetch, the same policy id is not fetched again for this long.
const RETRY_FETCH_AFTER: Duration = Duration::from_secs(300);
/// Cached domains beyond which expired entries are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// Settings of the MTA-STS client.
#[derive(Clone)]
pub struct Settings {
    /// Look policies up at all.
    pub enabled: bool,
    /// Port of policy hosts (443 but in tests).
    pub policy_port: u16,
    /// How long one policy fetch may take.
    pub fetch_timeout: Duration,
    /// Trust anchors for policy hosts and for MX hosts under `enforce`.
    pub trust: Arc<rustls::ClientConfig>,
}

#[derive(Default)]
struct Entry {
    /// The latest valid policy and when it expires.
    policy: Option<(Arc<Policy>, Instant)>,
    /// The policy id whose fetch failed last, and when to try it again.
    failed: Option<(String, Instant)>,
}

/// Policy discovery and cache, shared by all connection workers.
pub struct MtaSts {
    settings: Settings,
    cache: Mutex<HashMap<String, Entry>>,
}

/// How one connection to a domain must be made.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// The next hops the connection may use, in order.
    pub hops: Vec<NextHop>,
    /// TLS with a certificate verified for the MX host is required.
    pub verify: bool,
}

impl MtaSts {
    /// A client with an empty cache.
    pub fn new(settings: Settings) -> Self {
        MtaSts {
            settings,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Trust anchors for MX hosts under `enforce`.
    pub fn trust(&self) -> Arc<rustls::ClientConfig> {
        self.settings.trust.clone()
    }

    /// The policy in force for `domain`, if any (a `none` policy is returned too: it
    /// replaces an older one in the cache).
    pub async fn policy(&self, domain: &str, resolver: &MxResolver) -> Option<Arc<Policy>> {
        if !self.settings.enabled || resolver.is_routed(domain) {
            return None;
        }
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let now = Instant::now();
        let cached = self.cached(&domain, now);
        let announced = resolver
            .txt(&format!("_mta-sts.{domain}"))
            .await
            .map_err(|e| e.to_string())
            .and_then(|records| policy::txt_policy_id(&records).map_err(|e| e.to_string()));
        let id = match announced {
            Ok(Some(id)) => id,
            // No record (or an unusable one): a cached policy applies until it expires.
            Ok(None) => return cached,
            Err(error) => {
                tracing::debug!(%domain, %error, "MTA-STS record unusable");
                return cached;
            }
        };
        if cached.as_ref().is_some_and(|p| p.id == id) || self.failed_recently(&domain, &id, now) {
            return cached;
        }
        match self.fetch(&domain, &id, resolver).await {
            Ok(policy) => {
                let policy = Arc::new(policy);
                self.store(&domain, |entry| {
                    entry.policy = Some((policy.clone(), now + policy.max_age));
                    entry.failed = None;
                });
                tracing::info!(%domain, id = %policy.id, mode = policy.mode.as_str(), "MTA-STS policy fetched");
                Some(policy)
            }
            Err(error) => {
                tracing::warn!(%domain, %id, %error, "MTA-STS policy could not be fetched");
                self.store(&domain, |entry| {
                    entry.failed = Some((id, now + RETRY_FETCH_AFTER));
                });
                cached
            }
        }
    }

    async fn fetch(&self, domain: &str, id: &str, resolver: &MxResolver) -> Result<Policy, String> {
        let host = format!("mta-sts.{domain}");
        let addrs = resolver
            .host_addrs(&host, self.settings.policy_port)
            .await
            .map_err(|e| e.to_string())?;
        let mut last = format!("{host} has no address");
        for addr in addrs {
            match fetch::fetch(
                addr,
                &host,
                self.settings.trust.clone(),
                self.settings.fetch_timeout,
            )
            .await
            {
                Ok(text) => return policy::parse_policy(id, &text).map_err(|e| e.to_string()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn cached(&self, domain: &str, now: Instant) -> Option<Arc<Policy>> {
        let cache = self.cache.lock().ok()?;
        let (policy, expires) = cache.get(domain)?.policy.as_ref()?;
        (*expires > now).then(|| policy.clone())
    }

    fn failed_recently(&self, domain: &str, id: &str, now: Instant) -> bool {
        self.cache.lock().is_ok_and(|cache| {
            cache
                .get(domain)
                .and_then(|e| e.failed.as_ref())
                .is_some_and(|(failed, until)| failed == id && *until > now)
        })
    }

    fn store(&self, domain: &str, update: impl FnOnce(&mut Entry)) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() > PRUNE_ABOVE {
            let now = Instant::now();
            cache.retain(|_, e| {
                e.policy.as_ref().is_some_and(|(_, exp)| *exp > now)
                    || e.failed.as_ref().is_some_and(|(_, until)| *until > now)
            });
        }
        update(cache.entry(domain.to_string()).or_default());
    }
}

/// How a connection to `domain` must be made under `policy`: with `enforce`, only to
/// MX hosts the policy names and with verified TLS (an error when no MX host
/// matches); otherwise as usual (`testing` mismatches are logged).
pub fn plan(domain: &str, policy: Option<&Policy>, hops: Vec<NextHop>) -> Result<Plan, String> {
    let Some(policy) = policy.filter(|p| p.mode != Mode::None) else {
        return Ok(Plan {
            hops,
            verify: false,
        });
    };
    let (allowed, refused): (Vec<NextHop>, Vec<NextHop>) =
        hops.into_iter().partition(|hop| policy.allows(&hop.host));
    if policy.mode == Mode::Testing {
        if !refused.is_empty() {
            tracing::info!(domain, id = %policy.id, refused = refused.len(),
                "MTA-STS testing policy: MX hosts outside the policy are still used");
        }
        let mut hops = allowed;
        hops.extend(refused);
        hops.sort_by_key(|h| h.preference);
        return Ok(Plan {
            hops,
            verify: false,
        });
    }
    if allowed.is_empty() {
        return Err(format!(
            "MTA-STS: no MX host of {domain} matches its enforce policy (id {})",
            policy.id
        ));
    }
    Ok(Plan {
        hops: allowed,
        verify: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(host: &str, preference: u16) -> NextHop {
        NextHop {
            host: host.into(),
            addrs: vec!["127.0.0.1:25".parse().unwrap()],
            preference: Some(preference),
        }
    }

    fn policy(mode: Mode) -> Policy {
        Policy {
            id: "1".into(),
            mode,
            mx: vec!["*.example.net".into()],
            max_age: Duration::from_secs(60),
        }
    }

    #[test]
    fn enforce_keeps_only_matching_hosts_and_requires_verified_tls() {
        let hops = || vec![hop("evil.test", 5), hop("mx1.example.net", 10)];
        let plan = plan("example.net", Some(&policy(Mode::Enforce)), hops()).unwrap();
        assert_eq!(plan.hops, vec![hop("mx1.example.net", 10)]);
        assert!(plan.verify);
        let err = super::plan(
            "example.net",
            Some(&policy(Mode::Enforce)),
            vec![hop("evil.test", 5)],
        )
        .unwrap_err();
        assert!(err.starts_with("MTA-STS: no MX host"), "{err}");
    }

    #[test]
    fn testing_and_none_change_nothing() {
        let hops = vec![hop("evil.test", 5), hop("mx1.example.net", 10)];
        for p in [Some(policy(Mode::Testing)), Some(policy(Mode::None)), None] {
            let plan = plan("example.net", p.as_ref(), hops.clone()).unwrap();
            assert_eq!(plan.hops, hops, "{p:?}");
            assert!(!plan.verify);
        }
    }
}
