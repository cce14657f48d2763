//! Brute-force protection shared by the front doors: failed credentials are counted
//! per client address, and after too many within a window the address is refused
//! (SMTP `421`, HTTP `429` with `Retry-After`) until the window has passed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked before old entries are swept.
const SWEEP_AT: usize = 100_000;

/// Failed-credential counters per address.
pub struct FailureGuard {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl FailureGuard {
    /// At most `max` failures per `window` per address.
    pub fn new(max: u32, window: Duration) -> Self {
        FailureGuard {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let e = f.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) > self.window {
            *e = (0, now);
        }
        e.0 += 1;
        if f.len() > SWEEP_AT {
            let window = self.window;
            f.retain(|_, (_, t)| now.duration_since(*t) <= window);
        }
    }

    /// How long `ip` must still wait, if it had too many failures.
    pub fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        let f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (n, since) = f.get(&ip)?;
        let elapsed = since.elapsed();
        (*n >= self.max && elapsed <= self.window).then(|| self.window - elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_until_the_window_passes() {
        let g = FailureGuard::new(3, Duration::from_millis(200));
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
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
}
