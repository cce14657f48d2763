//! Egress at run time: which pool a message leaves from, and which source (local
//! address and EHLO name) of the pool a new connection binds, honouring weights,
//! warm-up caps and source health.
//!
//! A source whose address cannot be bound is unhealthy for [`UNHEALTHY_FOR`]; the
//! pool's other sources take its traffic meanwhile. Warm-up counts are kept per UTC
//! day in memory and read back from the statistics at start (see
//! [`Egress::load_counts`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use postwerk_core::config::{Config, OverCap, epoch_day};
use postwerk_store::prelude::*;

use crate::context::Services;
use crate::streams::Stream;

/// How long a source that could not be bound is left out.
pub const UNHEALTHY_FOR: Duration = Duration::from_secs(60);

/// One local address mail leaves from.
pub struct Source {
    /// Its name in the configuration.
    pub name: String,
    /// The local address bound before connecting.
    pub address: IpAddr,
    /// The EHLO name sent from it.
    pub ehlo_name: String,
    warmup: Vec<u64>,
    warmup_start: i64,
    day: AtomicI64,
    sent: AtomicU64,
    unhealthy_until: AtomicI64,
}

impl Source {
    /// Today's cap, `None` when uncapped.
    fn cap(&self, today: i64) -> Option<u64> {
        let day = usize::try_from(today - self.warmup_start).ok()?;
        self.warmup.get(day).copied()
    }

    fn sent_today(&self, today: i64) -> u64 {
        if self.day.swap(today, Ordering::AcqRel) != today {
            self.sent.store(0, Ordering::Release);
        }
        self.sent.load(Ordering::Acquire)
    }

    /// True while today's warm-up cap allows another message.
    pub fn has_room(&self, today: i64) -> bool {
        self.cap(today)
            .is_none_or(|cap| self.sent_today(today) < cap)
    }

    /// Takes one message from today's allowance: false (nothing taken) when the cap
    /// is reached. Atomic, so concurrent connections never overshoot the cap.
    pub fn try_take(&self, today: i64) -> bool {
        self.sent_today(today);
        let cap = self.cap(today);
        self.sent
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                cap.is_none_or(|c| n < c).then_some(n + 1)
            })
            .is_ok()
    }

    /// False while the source is set aside (its address could not be bound).
    pub fn is_healthy(&self, now_ms: i64) -> bool {
        self.unhealthy_until.load(Ordering::Acquire) <= now_ms
    }

    /// Leaves the source out until `until` (its address could not be bound).
    pub fn mark_unhealthy(&self, until_ms: i64) {
        self.unhealthy_until.store(until_ms, Ordering::Release);
    }
}

/// A pool: its sources in weighted round-robin order.
struct Pool {
    name: String,
    cycle: Vec<Arc<Source>>,
    over_cap: OverCap,
    next: AtomicU64,
    /// The tenants (by name) whose dedicated pool it is; empty: open to all.
    owners: Vec<String>,
    /// Open to every tenant although it has owners.
    shared: bool,
}

impl Pool {
    /// True when a stream of tenant `tenant_name` may leave from this pool.
    fn open_to(&self, tenant_name: Option<&str>) -> bool {
        self.shared
            || self.owners.is_empty()
            || tenant_name.is_some_and(|t| self.owners.iter().any(|o| o == t))
    }
}

/// Where a new connection of a pool comes from.
pub enum Pick {
    /// Bind this source.
    Source(Arc<Source>),
    /// No source can send now; the reason is recorded with the deferral.
    Wait(String),
}

/// The configured sources and pools.
pub struct Egress {
    pools: HashMap<String, Pool>,
    default_pool: Option<String>,
    stream_pools: HashMap<String, String>,
    tenant_pools: HashMap<String, String>,
    /// Tenant names by id (tenant pools are configured by name).
    tenant_names: RwLock<HashMap<String, String>>,
}

/// The UTC day number of Unix milliseconds.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

impl Egress {
    /// Builds the runtime view of a validated configuration.
    pub fn new(config: &Config) -> Egress {
        let eg = &config.egress;
        let sources: HashMap<&str, Arc<Source>> = eg
            .sources
            .iter()
            .map(|s| {
                let source = Source {
                    name: s.name.clone(),
                    address: s.address,
                    ehlo_name: s
                        .ehlo_name
                        .clone()
                        .unwrap_or_else(|| config.delivery.ehlo_name.clone()),
                    warmup: s.warmup.clone(),
                    warmup_start: s.warmup_start.as_deref().and_then(epoch_day).unwrap_or(0),
                    day: AtomicI64::new(0),
                    sent: AtomicU64::new(0),
                    unhealthy_until: AtomicI64::new(0),
                };
                (s.name.as_str(), Arc::new(source))
            })
            .collect();
        let pools = eg
            .pools
            .iter()
            .map(|p| {
                let weighted: Vec<(Arc<Source>, u32)> = p
                    .sources
                    .iter()
                    .filter_map(|m| {
                        sources
                            .get(m.source.as_str())
                            .map(|s| (s.clone(), m.weight))
                    })
                    .collect();
                let pool = Pool {
                    name: p.name.clone(),
                    cycle: interleave(&weighted),
                    over_cap: p.over_cap,
                    next: AtomicU64::new(0),
                    owners: eg
                        .tenant_pools
                        .iter()
                        .filter(|(_, pool)| **pool == p.name)
                        .map(|(tenant, _)| tenant.clone())
                        .collect(),
                    shared: p.shared,
                };
                (p.name.clone(), pool)
            })
            .collect();
        let owned = |m: &std::collections::BTreeMap<String, String>| {
            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        Egress {
            pools,
            default_pool: eg.default_pool.clone(),
            stream_pools: owned(&eg.stream_pools),
            tenant_pools: owned(&eg.tenant_pools),
            tenant_names: RwLock::default(),
        }
    }

    /// Sets today's warm-up counts from the statistics (after a restart), so that a
    /// restart does not start the day's cap again.
    pub async fn load_counts(
        &self,
        store: &impl Store,
        now_ms: i64,
    ) -> Result<(), postwerk_store::StoreError> {
        let today = day_of(now_ms);
        let counts = store.attempts_by_source(today * 86_400_000).await?;
        for pool in self.pools.values() {
            for s in &pool.cycle {
                let n = counts
                    .iter()
                    .find(|(name, _)| *name == s.name)
                    .map_or(0, |(_, n)| *n);
                s.day.store(today, Ordering::Release);
                s.sent.store(n, Ordering::Release);
            }
        }
        Ok(())
    }

    /// True when a pool of that name is configured.
    pub fn has_pool(&self, name: &str) -> bool {
        self.pools.contains_key(name)
    }

    /// True when tenant `tenant_id` may name pool `pool` as a stream's `pool`: the
    /// pool is configured and is the tenant's own (`tenant_pools`), `shared`, or no
    /// tenant's.
    pub async fn may_use(&self, services: &Services, tenant_id: &str, pool: &str) -> bool {
        let name = self.tenant_name(services, tenant_id).await;
        self.pools
            .get(pool)
            .is_some_and(|p| p.open_to(name.as_deref()))
    }

    /// The pool mail of `stream` leaves from: the stream's own (if the tenant may use
    /// it, see [`Egress::may_use`]), else the tenant's, else the stream name's, else
    /// the default; `None` for the host's default address.
    pub async fn pool_for(
        &self,
        services: &Services,
        tenant_id: &str,
        stream: &Stream,
    ) -> Option<Arc<str>> {
        let name = if self.tenant_pools.is_empty() {
            None
        } else {
            self.tenant_name(services, tenant_id).await
        };
        if let Some(p) = stream.settings.pool.as_deref()
            && self
                .pools
                .get(p)
                .is_some_and(|p| p.open_to(name.as_deref()))
        {
            return Some(p.into());
        }
        if let Some(p) = name.and_then(|n| self.tenant_pools.get(&n)) {
            return Some(p.as_str().into());
        }
        self.stream_pools
            .get(&stream.name)
            .or(self.default_pool.as_ref())
            .map(|p| p.as_str().into())
    }

    async fn tenant_name(&self, services: &Services, tenant_id: &str) -> Option<String> {
        if let Some(n) = self.tenant_names.read().ok()?.get(tenant_id) {
            return Some(n.clone());
        }
        let tenant = services.store.get_tenant(tenant_id).await.ok()??;
        if let Ok(mut names) = self.tenant_names.write() {
            names.insert(tenant_id.to_string(), tenant.name.clone());
        }
        Some(tenant.name)
    }

    /// A source of `pool` for a new connection at `now_ms`: the next by weight that
    /// is healthy and under its warm-up cap (`spill`), or, in a `wait` pool, the next
    /// healthy one only if it is under its cap.
    pub fn pick(&self, pool: &str, now_ms: i64) -> Pick {
        let Some(p) = self.pools.get(pool) else {
            return Pick::Wait(format!("egress pool `{pool}` is not configured"));
        };
        let today = day_of(now_ms);
        let n = p.cycle.len();
        let start = p.next.fetch_add(1, Ordering::Relaxed) as usize;
        for k in 0..n {
            let s = &p.cycle[(start + k) % n];
            if !s.is_healthy(now_ms) {
                continue;
            }
            if s.has_room(today) {
                return Pick::Source(s.clone());
            }
            if p.over_cap == OverCap::Wait {
                return Pick::Wait(format!(
                    "egress source `{}` reached its warm-up cap for today",
                    s.name
                ));
            }
        }
        Pick::Wait(format!(
            "no source of egress pool `{}` is usable now (warm-up caps reached or addresses unavailable)",
            p.name
        ))
    }
}

/// Sources repeated by weight and interleaved (smooth weighted round robin), so
/// that consecutive connections alternate rather than run in blocks.
fn interleave(weighted: &[(Arc<Source>, u32)]) -> Vec<Arc<Source>> {
    let total: i64 = weighted.iter().map(|(_, w)| i64::from(*w)).sum();
    let mut current = vec![0i64; weighted.len()];
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        for (c, (_, w)) in current.iter_mut().zip(weighted) {
            *c += i64::from(*w);
        }
        let Some(best) = (0..weighted.len()).max_by_key(|&i| (current[i], -(i as i64))) else {
            break;
        };
        current[best] -= total;
        out.push(weighted[best].0.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!(
            "[egress]\ndefault_pool = \"bulk\"\nstream_pools = {{ transactional = \"tx\" }}\n\
             [[egress.sources]]\nname = \"a\"\naddress = \"127.0.0.2\"\n\
             [[egress.sources]]\nname = \"b\"\naddress = \"127.0.0.3\"\nehlo_name = \"b.example.com\"\n{extra}\n\
             [[egress.pools]]\nname = \"tx\"\nsources = [{{ source = \"a\" }}]\n\
             [[egress.pools]]\nname = \"bulk\"\nsources = [{{ source = \"a\" }}, {{ source = \"b\", weight = 3 }}]\n"
        );
        Config::from_toml(&text, []).unwrap()
    }

    fn picks(e: &Egress, pool: &str, n: usize, now: i64) -> Vec<String> {
        (0..n)
            .map(|_| match e.pick(pool, now) {
                Pick::Source(s) => s.name.clone(),
                Pick::Wait(r) => format!("wait: {r}"),
            })
            .collect()
    }

    #[test]
    fn connections_are_spread_by_weight_and_interleaved() {
        let e = Egress::new(&config(""));
        assert_eq!(picks(&e, "bulk", 4, 0), ["b", "a", "b", "b"]);
        assert_eq!(picks(&e, "tx", 2, 0), ["a", "a"]);
        let Pick::Source(b) = e.pick("bulk", 0) else {
            panic!()
        };
        assert_eq!(
            (b.ehlo_name.as_str(), b.address.to_string()),
            ("b.example.com", "127.0.0.3".into())
        );
    }

    #[test]
    fn dedicated_pools_are_open_to_their_tenants_and_shared_ones_to_all() {
        let mut c = config("");
        c.egress.tenant_pools = [("acme", "tx"), ("beta", "tx"), ("gamma", "bulk")]
            .map(|(t, p)| (t.to_string(), p.to_string()))
            .into();
        c.egress.pools[1].shared = true;
        let e = Egress::new(&c);
        let open = |pool: &str, tenant: Option<&str>| e.pools[pool].open_to(tenant);
        assert!(open("tx", Some("acme")) && open("tx", Some("beta")));
        assert!(!open("tx", Some("evil")) && !open("tx", None));
        assert!(open("bulk", Some("evil")), "shared");
        let unowned = Egress::new(&config(""));
        assert!(
            unowned.pools["tx"].open_to(Some("evil")),
            "no owner: open to all"
        );
    }

    #[test]
    fn unhealthy_sources_are_skipped_until_they_recover() {
        let e = Egress::new(&config(""));
        let Pick::Source(b) = e.pick("bulk", 0) else {
            panic!()
        };
        b.mark_unhealthy(1_000);
        assert_eq!(picks(&e, "bulk", 3, 500), ["a", "a", "a"]);
        assert!(picks(&e, "bulk", 4, 1_000).contains(&"b".to_string()));
    }

    #[test]
    fn warmup_caps_spill_or_wait() {
        let day = epoch_day("2026-11-20").unwrap();
        let now = day * 86_400_000 + 1;
        let capped = "warmup = [2, 4]\nwarmup_start = \"2026-11-20\"";
        let e = Egress::new(&config(capped));
        let Pick::Source(b) = e.pick("bulk", now) else {
            panic!()
        };
        assert_eq!(b.name, "b");
        assert!(b.try_take(day) && b.try_take(day));
        assert!(!b.try_take(day) && !b.has_room(day), "day 0 allows 2");
        assert_eq!(
            picks(&e, "bulk", 4, now),
            ["a", "a", "a", "a"],
            "spills to a"
        );
        assert!(
            b.has_room(day + 1),
            "day 1 allows 4 and the count starts again"
        );
        assert!(
            b.has_room(day + 2) && b.cap(day + 2).is_none(),
            "uncapped after the schedule"
        );

        let mut waiting = config(capped);
        waiting.egress.pools[1].over_cap = OverCap::Wait;
        let e = Egress::new(&waiting);
        let Pick::Source(b) = e.pick("bulk", now) else {
            panic!()
        };
        assert!(b.try_take(day) && b.try_take(day));
        let waits = picks(&e, "bulk", 4, now);
        assert!(
            waits
                .iter()
                .any(|p| p.starts_with("wait: egress source `b`")),
            "{waits:?}"
        );
    }
}
