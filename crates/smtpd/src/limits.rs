//! Per-address limits shared by all sessions: simultaneous sessions, AUTH attempts
//! (`[rate_limits] smtp_auth_per_ip`), and AUTH failures (after too many, AUTH from
//! that address is refused for a pause).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use postwerk_accounts::guard::FailureGuard;
use postwerk_core::config::RateLimitsConfig;
use postwerk_services::ratelimit::RateLimiter;

/// Most simultaneous sessions from one address.
pub const MAX_SESSIONS_PER_IP: usize = 50;
/// AUTH failures from one address within [`AUTH_FAILURE_WINDOW`] before a pause.
pub const MAX_AUTH_FAILURES_PER_IP: u32 = 10;
/// Window (and pause) for AUTH failures.
pub const AUTH_FAILURE_WINDOW: Duration = Duration::from_secs(300);

/// Shared counters.
pub struct Limits {
    sessions: Mutex<HashMap<IpAddr, usize>>,
    auth_failures: FailureGuard,
    auth_attempts: RateLimiter<IpAddr>,
    auth_per_window: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(&RateLimitsConfig::default())
    }
}

/// Holds one session slot; released on drop.
pub struct SessionSlot<'a> {
    limits: &'a Limits,
    ip: IpAddr,
}

impl Limits {
    /// Limits with the AUTH attempt rate of `rate_limits`.
    pub fn new(rate_limits: &RateLimitsConfig) -> Self {
        Limits {
            sessions: Mutex::default(),
            auth_failures: FailureGuard::new(MAX_AUTH_FAILURES_PER_IP, AUTH_FAILURE_WINDOW),
            auth_attempts: RateLimiter::new(rate_limits.window),
            auth_per_window: rate_limits.smtp_auth_per_ip,
        }
    }

    /// Counts an AUTH attempt from `ip`: `Err(seconds to wait)` over the rate limit.
    pub fn auth_attempt(&self, ip: IpAddr) -> Result<(), u64> {
        let d = self
            .auth_attempts
            .check(ip, self.auth_per_window, std::time::Instant::now());
        if d.allowed {
            Ok(())
        } else {
            let wait = d.retry_after;
            Err((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1))
        }
    }

    /// Takes a session slot for `ip`, or `None` when it has too many.
    pub fn open_session(&self, ip: IpAddr) -> Option<SessionSlot<'_>> {
        let mut s = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let n = s.entry(ip).or_insert(0);
        if *n >= MAX_SESSIONS_PER_IP {
            return None;
        }
        *n += 1;
        Some(SessionSlot { limits: self, ip })
    }

    /// Records a failed AUTH from `ip`.
    pub fn auth_failed(&self, ip: IpAddr) {
        self.auth_failures.failed(ip);
    }

    /// Whether AUTH from `ip` is paused after too many failures.
    pub fn auth_blocked(&self, ip: IpAddr) -> bool {
        self.auth_failures.blocked_for(ip).is_some()
    }
}

impl Drop for SessionSlot<'_> {
    fn drop(&mut self) {
        let mut s = self
            .limits
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = s.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                s.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_auth_pause() {
        let l = Limits::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let slots: Vec<_> = (0..MAX_SESSIONS_PER_IP)
            .map(|_| l.open_session(ip).unwrap())
            .collect();
        assert!(l.open_session(ip).is_none());
        drop(slots);
        assert!(l.open_session(ip).is_some());
        for _ in 0..MAX_AUTH_FAILURES_PER_IP {
            assert!(!l.auth_blocked(ip));
            l.auth_failed(ip);
        }
        assert!(l.auth_blocked(ip));
    }

    #[test]
    fn auth_attempts_are_rate_limited_per_address() {
        let l = Limits::new(&RateLimitsConfig {
            smtp_auth_per_ip: 3,
            ..Default::default()
        });
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert!((0..3).all(|_| l.auth_attempt(a).is_ok()));
        assert_eq!(l.auth_attempt(a), Err(20), "one attempt per 20 s refills");
        assert!(l.auth_attempt(b).is_ok());
    }
}
