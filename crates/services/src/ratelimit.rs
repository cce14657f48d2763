//! Request rate limits by the generic cell rate algorithm (GCRA): each subject (an
//! API key, a tenant, a client address) may make `limit` requests per window, in
//! bursts of up to `limit`, and its allowance refills evenly over the window. One
//! timestamp per subject is the whole state, so limits are cheap to check on every
//! request.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use postwerk_core::config::RateLimitsConfig;

/// Subjects tracked before idle ones are swept.
const SWEEP_AT: usize = 100_000;

/// The verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The request may proceed.
    pub allowed: bool,
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests left in the current allowance.
    pub remaining: u32,
    /// Until the allowance is full again.
    pub reset: Duration,
    /// For a refused request: until one more request is allowed.
    pub retry_after: Duration,
}

impl Decision {
    /// The more restrictive of two decisions: a refusal wins, then fewer remaining.
    pub fn tighter(self, other: Decision) -> Decision {
        match (self.allowed, other.allowed) {
            (true, false) => other,
            (false, true) => self,
            _ if other.remaining < self.remaining => other,
            _ => self,
        }
    }
}

/// A GCRA limiter over subjects of type `K`.
pub struct RateLimiter<K> {
    window: Duration,
    /// Theoretical arrival time of the next request, per subject.
    cells: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// A limiter whose limits count requests per `window`.
    pub fn new(window: Duration) -> Self {
        RateLimiter {
            window,
            cells: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `subject` at `now` against `limit` per window (0 means
    /// unlimited and is always allowed).
    pub fn check(&self, subject: K, limit: u32, now: Instant) -> Decision {
        if limit == 0 || self.window.is_zero() {
            return Decision {
                allowed: true,
                limit,
                remaining: u32::MAX,
                reset: Duration::ZERO,
                retry_after: Duration::ZERO,
            };
        }
        let interval = self.window / limit;
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        if cells.len() > SWEEP_AT {
            cells.retain(|_, tat| *tat > now);
        }
        let tat = cells.get(&subject).copied().unwrap_or(now).max(now);
        let next = tat + interval;
        let ahead = next - now;
        if ahead > self.window {
            return Decision {
                allowed: false,
                limit,
                remaining: 0,
                reset: tat - now,
                retry_after: ahead - self.window,
            };
        }
        cells.insert(subject, next);
        let left = (self.window - ahead).as_nanos() / interval.as_nanos().max(1);
        Decision {
            allowed: true,
            limit,
            remaining: u32::try_from(left).unwrap_or(u32::MAX),
            reset: ahead,
            retry_after: Duration::ZERO,
        }
    }
}

/// The request limits of `[rate_limits]` per address, key and tenant, shared by the API
/// and SMTP submission (SMTP AUTH attempts are limited by the SMTP server with its own
/// [`RateLimiter`]).
pub struct RequestLimits {
    config: RateLimitsConfig,
    keys: RateLimiter<String>,
    tenants: RateLimiter<String>,
    ips: RateLimiter<IpAddr>,
}

impl RequestLimits {
    /// Limits as configured.
    pub fn new(config: &RateLimitsConfig) -> Self {
        RequestLimits {
            keys: RateLimiter::new(config.window),
            tenants: RateLimiter::new(config.window),
            ips: RateLimiter::new(config.window),
            config: config.clone(),
        }
    }

    /// Counts an API request from `ip`.
    pub fn ip(&self, ip: IpAddr) -> Decision {
        self.ips.check(ip, self.config.per_ip, Instant::now())
    }

    /// Counts a request made with API key `key_id` of `tenant_id` against the key's
    /// limit (its own `key_limit`, else `per_key`) and the tenant's; the tighter
    /// verdict. A request refused by the key's limit is not counted for the tenant.
    pub fn key(&self, key_id: &str, key_limit: Option<u32>, tenant_id: &str) -> Decision {
        let now = Instant::now();
        let key = self.keys.check(
            key_id.to_string(),
            key_limit.unwrap_or(self.config.per_key),
            now,
        );
        if !key.allowed {
            return key;
        }
        let tenant = self
            .tenants
            .check(tenant_id.to_string(), self.config.per_tenant, now);
        key.tighter(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_of_the_limit_then_one_request_per_interval() {
        let limiter = RateLimiter::new(Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..6 {
            let d = limiter.check("k", 6, t0);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 5 - i);
        }
        let refused = limiter.check("k", 6, t0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(10), "one interval");
        assert_eq!(refused.reset, Duration::from_secs(60));
        assert!(limiter.check("other", 6, t0).allowed, "per subject");
        assert!(!limiter.check("k", 6, t0 + Duration::from_secs(9)).allowed);
        let later = limiter.check("k", 6, t0 + Duration::from_secs(10));
        assert!(later.allowed);
        assert_eq!(later.remaining, 0);
        let rested = limiter.check("k", 6, t0 + Duration::from_secs(200));
        assert_eq!(
            (rested.allowed, rested.remaining),
            (true, 5),
            "refilled, never beyond the limit"
        );
    }

    #[test]
    fn zero_is_unlimited_and_the_tighter_decision_wins() {
        let limiter = RateLimiter::new(Duration::from_secs(1));
        let now = Instant::now();
        assert!((0..1000).all(|_| limiter.check(1, 0, now).allowed));
        let open = limiter.check(2, 10, now);
        let low = limiter.check(3, 2, now);
        assert_eq!(open.tighter(low), low);
        let refused = Decision {
            allowed: false,
            ..open
        };
        assert_eq!(low.tighter(refused), refused);
    }
}
