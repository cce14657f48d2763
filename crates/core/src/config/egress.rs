//! `[egress]`: the local addresses outbound mail leaves from, grouped into pools, and
//! which mail uses which pool (dedicated IPs per tenant, transactional mail apart from
//! bulk mail), with IP warm-up schedules.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, is_hostname};
use crate::model::is_stream_name;

/// `[egress]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// `[[egress.sources]]`: local addresses to send from.
    pub sources: Vec<SourceConfig>,
    /// `[[egress.pools]]`: named, weighted sets of sources.
    pub pools: Vec<PoolConfig>,
    /// The pool of mail that nothing below maps. Default none: the operating system
    /// picks the local address and EHLO is `delivery.ehlo_name`.
    pub default_pool: Option<String>,
    /// Pools by stream name, for every tenant: `{ transactional = "tx", broadcast =
    /// "bulk" }`. A stream's own `pool` setting comes first.
    pub stream_pools: BTreeMap<String, String>,
    /// Pools by tenant name: dedicated IPs. The tenant's mail leaves from its pool
    /// unless the stream names its own. A pool named here is dedicated: only the
    /// tenants mapped to it may name it as a stream's `pool`, unless the pool is
    /// `shared`. A pool no tenant is mapped to is open to every tenant.
    pub tenant_pools: BTreeMap<String, String>,
}

/// One local address.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Name used by pools (a-z, 0-9, `_`, `-`).
    pub name: String,
    /// The local IP address to bind (it must be configured on this host).
    pub address: IpAddr,
    /// EHLO name for connections from this address (its PTR name). Default
    /// `delivery.ehlo_name`.
    #[serde(default)]
    pub ehlo_name: Option<String>,
    /// Warm-up: the most messages this address may send on day 0, 1, 2, … after
    /// `warmup_start` (UTC days); no cap after the last day. Empty: no cap.
    #[serde(default)]
    pub warmup: Vec<u64>,
    /// First day of the warm-up, `YYYY-MM-DD` (required with `warmup`).
    #[serde(default)]
    pub warmup_start: Option<String>,
}

/// A weighted set of sources.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Name used by streams and the mappings above.
    pub name: String,
    /// Members: `[{ source = "ip1", weight = 2 }, { source = "ip2" }]` (weight 1 by
    /// default): new connections are spread by weight.
    pub sources: Vec<PoolMember>,
    /// What happens to mail for a source over its warm-up cap: `spill` (default) to
    /// the pool's other sources while one is under its cap, or `wait` (deferred until
    /// the next day's cap).
    #[serde(default)]
    pub over_cap: OverCap,
    /// Every tenant may name this pool as a stream's `pool`, even though it is some
    /// tenant's in `tenant_pools`. Default false (a tenant's pool is its own).
    #[serde(default)]
    pub shared: bool,
}

/// A source in a pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolMember {
    /// The source's name.
    pub source: String,
    /// Relative share of new connections (at least 1). Default 1.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// What happens to mail for a source over its warm-up cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverCap {
    /// Use the pool's other sources while one is under its cap.
    #[default]
    Spill,
    /// Defer the mail (it is retried later; the cap grows daily).
    Wait,
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub fn epoch_day(date: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some(
        d.signed_duration_since(chrono::NaiveDate::default())
            .num_days(),
    )
}

impl EgressConfig {
    /// Checks names, references and warm-up schedules; the error names the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            let key = |k: &str| format!("egress.sources[{i}].{k}");
            if !is_stream_name(&s.name) || !names.insert(s.name.as_str()) {
                return Err(invalid(&key("name"), "a unique name of a-z, 0-9, _ and -"));
            }
            if s.ehlo_name.as_deref().is_some_and(|n| !is_hostname(n)) {
                return Err(invalid(&key("ehlo_name"), "must be a host name"));
            }
            if s.warmup.contains(&0) {
                return Err(invalid(&key("warmup"), "daily caps must be at least 1"));
            }
            match (&s.warmup_start, s.warmup.is_empty()) {
                (Some(d), _) if epoch_day(d).is_none() => {
                    return Err(invalid(&key("warmup_start"), "a date, YYYY-MM-DD"));
                }
                (None, false) => {
                    return Err(invalid(&key("warmup_start"), "required with warmup"));
                }
                _ => {}
            }
        }
        let mut pools = HashSet::new();
        for (i, p) in self.pools.iter().enumerate() {
            if !is_stream_name(&p.name) || !pools.insert(p.name.as_str()) {
                return Err(invalid(
                    &format!("egress.pools[{i}].name"),
                    "a unique name of a-z, 0-9, _ and -",
                ));
            }
            if p.sources.is_empty() {
                return Err(invalid(
                    &format!("egress.pools[{i}].sources"),
                    "a pool needs at least one source",
                ));
            }
            for (j, m) in p.sources.iter().enumerate() {
                let key = format!("egress.pools[{i}].sources[{j}]");
                if !names.contains(m.source.as_str()) {
                    return Err(invalid(
                        &format!("{key}.source"),
                        &format!("no source named `{}` in [[egress.sources]]", m.source),
                    ));
                }
                if m.weight == 0 {
                    return Err(invalid(&format!("{key}.weight"), "must be at least 1"));
                }
            }
        }
        let refs = self
            .default_pool
            .iter()
            .map(|p| ("egress.default_pool".to_string(), p))
            .chain(
                self.stream_pools
                    .iter()
                    .map(|(s, p)| (format!("egress.stream_pools.{s}"), p)),
            )
            .chain(
                self.tenant_pools
                    .iter()
                    .map(|(t, p)| (format!("egress.tenant_pools.{t}"), p)),
            );
        for (key, pool) in refs {
            if !pools.contains(pool.as_str()) {
                return Err(invalid(
                    &key,
                    &format!("no pool named `{pool}` in [[egress.pools]]"),
                ));
            }
        }
        if let Some(s) = self.stream_pools.keys().find(|s| !is_stream_name(s)) {
            return Err(invalid(
                &format!("egress.stream_pools.{s}"),
                "not a stream name",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, OverCap};

    const POOLS: &str = r#"
[egress]
default_pool = "bulk"
stream_pools = { transactional = "tx" }
tenant_pools = { acme = "acme" }
[[egress.sources]]
name = "ip2"
address = "127.0.0.2"
ehlo_name = "out2.example.com"
[[egress.sources]]
name = "ip3"
address = "127.0.0.3"
warmup = [50, 100, 200]
warmup_start = "2026-11-20"
[[egress.pools]]
name = "tx"
sources = [{ source = "ip2" }]
[[egress.pools]]
name = "bulk"
sources = [{ source = "ip2", weight = 1 }, { source = "ip3", weight = 3 }]
over_cap = "wait"
[[egress.pools]]
name = "acme"
sources = [{ source = "ip3" }]
shared = true
"#;

    #[test]
    fn pools_parse() {
        let c = Config::from_toml(POOLS, []).unwrap();
        assert_eq!(c.egress.sources.len(), 2);
        assert_eq!(c.egress.pools[1].sources[1].weight, 3);
        assert_eq!(c.egress.pools[0].sources[0].weight, 1, "default weight");
        assert_eq!(c.egress.pools[1].over_cap, OverCap::Wait);
        assert_eq!(c.egress.pools[0].over_cap, OverCap::Spill);
        assert!(c.egress.pools[2].shared && !c.egress.pools[0].shared);
        assert_eq!(super::epoch_day("1970-01-02"), Some(1));
    }

    #[test]
    fn bad_pools_name_the_key() {
        let cases = [
            ("name = \"acme\"", "name = \"tx\"", "egress.pools[2].name"),
            (
                "source = \"ip2\" }]",
                "source = \"ip9\" }]",
                "egress.pools[0].sources[0].source",
            ),
            (
                "weight = 1 }",
                "weight = 0 }",
                "egress.pools[1].sources[0].weight",
            ),
            (
                "\"2026-11-20\"",
                "\"20th\"",
                "egress.sources[1].warmup_start",
            ),
            ("warmup = [50,", "warmup = [0,", "egress.sources[1].warmup"),
            (
                "default_pool = \"bulk\"",
                "default_pool = \"nope\"",
                "egress.default_pool",
            ),
            (
                "tenant_pools = { acme = \"acme\" }",
                "tenant_pools = { acme = \"x\" }",
                "egress.tenant_pools.acme",
            ),
        ];
        for (from, to, key) in cases {
            let text = POOLS.replacen(from, to, 1);
            assert_ne!(text, POOLS, "{from}");
            let err = Config::from_toml(&text, []).unwrap_err().to_string();
            assert!(err.contains(key), "{to}: {err}");
        }
    }
}
