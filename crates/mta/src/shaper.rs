//! Traffic shaping at run time: per (egress pool, destination site) a connection
//! limit, a new-connection rate, a message rate and the adaptive back-off.
//!
//! A throttling reply (421, "too many connections", "rate limited": bounce reasons
//! `toomanyconn` and `speeding`) halves the site's message rate (down to 5 % of the
//! configured one) and holds new connections and bulk messages for a back-off that
//! doubles while throttling continues (10 s up to 5 min). Each delivery then wins
//! back 2 % of the configured rate: the rate recovers gradually.
//!
//! Priority: the highest lane (`transactional` by default) is never paced or held;
//! its messages still count against the rate, so bulk mail yields to them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::slots::{Slot, Slots};
use postwerk_core::model::BounceReason;
use postwerk_core::shaping::{Limits, Shaping};
use postwerk_core::stream::LANES;
use tokio::time::Instant;

/// The lowest share of the configured message rate the back-off goes down to.
const MIN_FACTOR: f64 = 0.05;
/// Share of the configured rate won back per delivery.
const RECOVERY: f64 = 0.02;
/// The first back-off after a throttling reply.
const FIRST_BACKOFF: Duration = Duration::from_secs(10);
/// The longest back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// True when a failed attempt's reply asks the sender to slow down: a 421 (also as
/// the greeting of a refused connection) or a reason saying so.
pub fn is_throttling(reply: &str, reason: Option<BounceReason>) -> bool {
    reply.starts_with("421")
        || reply.contains(": 421 ")
        || matches!(
            reason,
            Some(BounceReason::TooManyConn | BounceReason::Speeding)
        )
}

struct Pace {
    factor: f64,
    next_message: Instant,
    next_connection: Instant,
    hold_until: Instant,
    backoff: Duration,
}

/// One site's budget for one egress pool.
pub struct Site {
    /// The site's name (`gmail`, or its MX host set).
    pub name: String,
    /// Its configured limits.
    pub limits: Limits,
    /// The site's connections, handed out by priority with the streams' reserved
    /// shares (as the engine's global slots).
    connections: Arc<Slots>,
    pace: Mutex<Pace>,
}

impl Site {
    fn new(name: String, limits: Limits, shares: [u8; LANES]) -> Site {
        let now = Instant::now();
        let connections = Slots::new(limits.max_connections);
        connections.reserve(shares);
        Site {
            connections,
            name,
            limits,
            pace: Mutex::new(Pace {
                factor: 1.0,
                next_message: now,
                next_connection: now,
                hold_until: now,
                backoff: FIRST_BACKOFF,
            }),
        }
    }

    /// Waits for a connection to the site for mail of `lane`: a free connection (by
    /// priority; lane 0 may use the connections reserved for it), then the end of any
    /// back-off hold (not for lane 0) and the new-connection rate.
    pub async fn connection(&self, lane: usize) -> Option<Slot> {
        let urgent = lane == 0;
        let permit = self.connections.acquire(lane).await;
        let wait_until = {
            let mut p = self.pace.lock().ok()?;
            let now = Instant::now();
            let mut at = now;
            if !urgent {
                at = at.max(p.hold_until);
            }
            if self.limits.connections_per_minute > 0 {
                let interval = Duration::from_secs(60) / self.limits.connections_per_minute;
                at = at.max(p.next_connection);
                p.next_connection = at + interval;
            }
            at
        };
        tokio::time::sleep_until(wait_until).await;
        Some(permit)
    }

    /// Waits for the message rate (at the current, possibly reduced, factor);
    /// `urgent` messages do not wait but use up the budget all the same.
    pub async fn pace(&self, urgent: bool) {
        let wait_until = {
            let Ok(mut p) = self.pace.lock() else {
                return;
            };
            let now = Instant::now();
            let rate = self.limits.messages_per_second * p.factor;
            let interval = if rate > 0.0 {
                Duration::from_secs_f64(1.0 / rate)
            } else {
                Duration::ZERO
            };
            let start = if urgent {
                now
            } else {
                p.next_message.max(now).max(p.hold_until)
            };
            p.next_message = p.next_message.max(now) + interval;
            start
        };
        tokio::time::sleep_until(wait_until).await;
    }

    /// A throttling reply: halve the rate and hold for the back-off.
    pub fn throttled(&self) {
        if let Ok(mut p) = self.pace.lock() {
            p.factor = (p.factor / 2.0).max(MIN_FACTOR);
            p.hold_until = Instant::now() + p.backoff;
            p.backoff = (p.backoff * 2).min(MAX_BACKOFF);
        }
        tracing::warn!(site = %self.name, "site throttles: backing off");
    }

    /// A delivery went through: recover part of the rate.
    pub fn delivered(&self) {
        if let Ok(mut p) = self.pace.lock() {
            p.factor = (p.factor + RECOVERY).min(1.0);
            if p.hold_until <= Instant::now() {
                p.backoff = FIRST_BACKOFF;
            }
        }
    }

    /// The share of the configured message rate allowed now (1 = full).
    pub fn factor(&self) -> f64 {
        self.pace.lock().map(|p| p.factor).unwrap_or(1.0)
    }
}

/// A site's state key: (egress pool, site name).
type SiteKey = (Option<Arc<str>>, String);

/// Every site's state, per egress pool.
pub struct Shaper {
    rules: Shaping,
    sites: Mutex<HashMap<SiteKey, Arc<Site>>>,
    /// Connection shares reserved per lane (from the streams).
    shares: Mutex<[u8; LANES]>,
}

impl Shaper {
    /// A shaper applying `rules`.
    pub fn new(rules: Shaping) -> Shaper {
        Shaper {
            rules,
            sites: Mutex::default(),
            shares: Mutex::default(),
        }
    }

    /// Sets the connection shares reserved per lane, for every site.
    pub fn reserve(&self, shares: [u8; LANES]) {
        if let Ok(mut s) = self.shares.lock() {
            *s = shares;
        }
        if let Ok(sites) = self.sites.lock() {
            for site in sites.values() {
                site.connections.reserve(shares);
            }
        }
    }

    /// The site state of a destination with MX `hosts`, for mail from `pool`.
    pub fn site(&self, pool: Option<&Arc<str>>, hosts: &[&str]) -> Arc<Site> {
        let site = self.rules.site(hosts);
        let key = (pool.cloned(), site.name.clone());
        let shares = self.shares.lock().map(|s| *s).unwrap_or_default();
        let Ok(mut sites) = self.sites.lock() else {
            return Arc::new(Site::new(site.name, site.limits, shares));
        };
        sites
            .entry(key)
            .or_insert_with(|| Arc::new(Site::new(site.name, site.limits, shares)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(rate: f64, per_minute: u32) -> Site {
        Site::new(
            "lab".into(),
            Limits {
                max_connections: 2,
                messages_per_second: rate,
                deliveries_per_connection: 10,
                connections_per_minute: per_minute,
            },
            [0; LANES],
        )
    }

    #[tokio::test(start_paused = true)]
    async fn messages_are_paced_and_urgent_ones_do_not_wait() {
        let s = site(2.0, 0);
        let start = Instant::now();
        for _ in 0..5 {
            s.pace(false).await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2), "5 messages at 2/s");
        let before = Instant::now();
        s.pace(true).await;
        assert_eq!(before.elapsed(), Duration::ZERO, "urgent mail is not paced");
        let before = Instant::now();
        s.pace(false).await;
        assert_eq!(
            before.elapsed(),
            Duration::from_secs(1),
            "but uses up the budget"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_halves_the_rate_holds_and_recovers() {
        let s = site(10.0, 0);
        s.throttled();
        assert_eq!(s.factor(), 0.5);
        let before = Instant::now();
        s.pace(false).await;
        assert_eq!(before.elapsed(), FIRST_BACKOFF, "bulk waits for the hold");
        s.throttled();
        s.throttled();
        s.throttled();
        s.throttled();
        assert_eq!(s.factor(), MIN_FACTOR.max(0.5f64.powi(5)));
        for _ in 0..100 {
            s.delivered();
        }
        assert_eq!(s.factor(), 1.0, "recovers fully, step by step");
    }

    #[tokio::test(start_paused = true)]
    async fn connections_are_limited_and_rate_limited() {
        let s = site(0.0, 6);
        let start = Instant::now();
        let a = s.connection(5).await.unwrap();
        let _b = s.connection(5).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(10), "6 per minute");
        let third = tokio::time::timeout(Duration::from_secs(60), s.connection(5)).await;
        assert!(third.is_err(), "2 connections at most");
        drop(a);
        assert!(s.connection(5).await.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn bulk_cannot_take_a_sites_last_connections_from_transactional_mail() {
        let mut shares = [0; LANES];
        shares[0] = 20;
        let limits = Limits {
            max_connections: 10,
            messages_per_second: 0.0,
            deliveries_per_connection: 10,
            connections_per_minute: 0,
        };
        let s = Site::new("lab".into(), limits, shares);
        let mut bulk = Vec::new();
        for _ in 0..8 {
            bulk.push(s.connection(5).await.unwrap());
        }
        let more_bulk = tokio::time::timeout(Duration::from_secs(1), s.connection(5)).await;
        assert!(
            more_bulk.is_err(),
            "2 of 10 connections are kept for lane 0"
        );
        let urgent = tokio::time::timeout(Duration::from_secs(1), s.connection(0)).await;
        assert!(urgent.is_ok_and(|c| c.is_some()));
    }

    #[test]
    fn throttling_replies() {
        assert!(is_throttling("421 4.7.0 try again later", None));
        assert!(is_throttling(
            "mx.example [192.0.2.1]: rejected at greeting: 421 4.7.0 go away",
            None
        ));
        assert!(is_throttling(
            "451 4.7.1 rate limited",
            Some(BounceReason::Speeding)
        ));
        assert!(!is_throttling(
            "451 4.2.0 mailbox busy",
            Some(BounceReason::Undefined)
        ));
    }
}
