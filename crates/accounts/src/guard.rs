//! Brute-force protection shared by the front doors: failed credentials are counted
//! per client (an IPv4 address, or an IPv6 /64: one subscriber's whole network), and
//! after too many within a window the client is refused (SMTP `421`, HTTP `429` with
//! `Retry-After`) until the window has passed.
//!
//! A check that costs something (Argon2id) takes its place first with
//! [`FailureGuard::attempt`], which counts the attempt as a failure at once and is
//! [`FailureGuard::release`]d if it succeeds: concurrent attempts cannot all pass the
//! check before any of them is counted.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Clients tracked before old entries are swept.
const SWEEP_AT: usize = 100_000;

/// Failed-credential counters per client.
pub struct FailureGuard {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

/// The client an address is counted as: IPv4 addresses (also IPv4-mapped IPv6 ones)
/// alone, IPv6 addresses by their /64 (a subscriber gets at least a /64 and can use
/// every address in it).
pub fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

impl FailureGuard {
    /// At most `max` failures per `window` per client.
    pub fn new(max: u32, window: Duration) -> Self {
        FailureGuard {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `f` on the client's current count (restarted when its window passed).
    fn with_count<T>(&self, ip: IpAddr, f: impl FnOnce(&mut u32, Instant) -> T) -> T {
        let mut all = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if all.len() > SWEEP_AT {
            let window = self.window;
            all.retain(|_, (_, t)| now.duration_since(*t) <= window);
        }
        let e = all.entry(client_of(ip)).or_insert((0, now));
        if now.duration_since(e.1) > self.window {
            *e = (0, now);
        }
        f(&mut e.0, e.1)
    }

    /// Records a failure from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        self.with_count(ip, |n, _| *n += 1);
    }

    /// Takes the place of one attempt from `ip`, counted as a failure until it is
    /// [`released`](Self::release): `Err(time to wait)` when the client had too many.
    pub fn attempt(&self, ip: IpAddr) -> Result<(), Duration> {
        self.with_count(ip, |n, since| {
            if *n >= self.max {
                Err(self.window.saturating_sub(since.elapsed()))
            } else {
                *n += 1;
                Ok(())
            }
        })
    }

    /// Takes back an [`attempt`](Self::attempt) that was not a failure.
    pub fn release(&self, ip: IpAddr) {
        self.with_count(ip, |n, _| *n = n.saturating_sub(1));
    }

    /// How long `ip` must still wait, if it had too many failures.
    pub fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        let f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (n, since) = f.get(&client_of(ip))?;
        let elapsed = since.elapsed();
        (*n >= self.max && elapsed <= self.window).then(|| self.window - elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_after_max_failures_until_the_window_passes() {
        let g = FailureGuard::new(3, Duration::from_millis(200));
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        for _ in 0..3 {
            assert!(g.blocked_for(a).is_none());
            g.failed(a);
        }
        assert!(
            g.blocked_for(a)
                .is_some_and(|d| d <= Duration::from_millis(200))
        );
        assert!(g.blocked_for(b).is_none(), "per address");
        std::thread::sleep(Duration::from_millis(250));
        assert!(g.blocked_for(a).is_none());
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let g = FailureGuard::new(2, Duration::from_secs(60));
        g.failed(ip("2001:db8:1:2::1"));
        g.failed(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert!(
            g.blocked_for(ip("2001:db8:1:2:abcd::9")).is_some(),
            "every address of the /64 is the same client"
        );
        assert!(g.attempt(ip("2001:db8:1:2::77")).is_err());
        assert!(
            g.blocked_for(ip("2001:db8:1:3::1")).is_none(),
            "the next /64 is another client"
        );
        assert_eq!(client_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        g.failed(ip("::ffff:192.0.2.7"));
        g.failed(ip("192.0.2.7"));
        assert!(
            g.blocked_for(ip("192.0.2.7")).is_some(),
            "mapped IPv4 is IPv4"
        );
        assert!(g.blocked_for(ip("192.0.2.8")).is_none(), "IPv4 per address");
    }

    #[test]
    fn attempts_are_counted_before_they_finish_and_released_on_success() {
        let g = FailureGuard::new(3, Duration::from_secs(60));
        let a = ip("198.51.100.1");
        // Three attempts in flight at once use up the allowance; the fourth is refused
        // before it runs.
        for _ in 0..3 {
            assert!(g.attempt(a).is_ok());
        }
        assert!(g.attempt(a).is_err_and(|d| d <= Duration::from_secs(60)));
        // One of them succeeded: its place is free again, once.
        g.release(a);
        assert!(g.attempt(a).is_ok());
        assert!(g.attempt(a).is_err());
    }
}
