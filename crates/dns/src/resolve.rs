//! Next-hop resolution: static routes, MX records (RFC 5321 §5.1), null MX (RFC 7505).
//!
//! A recipient domain is the tenant's choice, so what its DNS says is too: MX hosts
//! (and implicit MX) on loopback, private, link-local, reserved and other non-public
//! addresses ([`crate::netclass`]) are refused, unless `[delivery] allow_private_mx`
//! (closed networks, tests). Static routes are the operator's and go anywhere.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, NameServerConfigGroup, ResolveHosts, ResolverConfig,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{Resolver, TokioResolver};
use rand::seq::SliceRandom as _;

use crate::netclass::{self, Class};

/// One host to try, with its addresses (IPv4 first, then IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// MX host name, static-route host, or the domain itself for an implicit MX.
    pub host: String,
    /// Addresses with the port to connect to (25 unless a static route says otherwise).
    pub addrs: Vec<SocketAddr>,
    /// MX preference; `None` for static routes and implicit MX.
    pub preference: Option<u16>,
}

/// Why a domain has no usable next hop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The domain publishes a null MX: it accepts no mail (RFC 7505).
    #[error("domain accepts no mail (null MX)")]
    NullMx,
    /// NXDOMAIN for the domain.
    #[error("domain does not exist")]
    NoSuchDomain,
    /// No MX host (or, without MX, the domain itself) has an address.
    #[error("no address for the domain's mail hosts")]
    NoAddresses,
    /// The mail hosts have addresses, but none is public (retried: DNS may change).
    #[error("no public address for the MX: private, loopback and reserved addresses are refused")]
    NoPublicAddress,
    /// DNS failure worth retrying (SERVFAIL, timeout, unreachable resolver, static route host
    /// not resolvable).
    #[error("temporary DNS failure: {0}")]
    Temporary(String),
    /// Invalid static route or resolver configuration (only from [`MxResolver::new`]).
    #[error("invalid resolver configuration: {0}")]
    Config(String),
}

impl ResolveError {
    /// True for `NullMx`, `NoSuchDomain` and `NoAddresses`: the message should bounce.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::NullMx | Self::NoSuchDomain | Self::NoAddresses)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Ip(SocketAddr),
    Host(String, u16),
}

/// Parses `host:port`, `[host]:port`, `[host]`, `host` or an IP address (port 25 by default).
fn parse_route(route: &str) -> Result<Route, String> {
    let s = route.trim();
    let bad = || format!("invalid route {s:?}");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, 25),
            p => (
                host,
                p.strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad)?,
            ),
        }
    } else if s.parse::<IpAddr>().is_ok() {
        (s, 25)
    } else if let Some((host, port)) = s.rsplit_once(':') {
        (host, port.parse().map_err(|_| bad())?)
    } else {
        (s, 25)
    };
    if port == 0 {
        return Err(bad());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Route::Ip(SocketAddr::new(ip, port)));
    }
    let host = host.trim_end_matches('.');
    let valid = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if host.is_empty() || !valid {
        return Err(bad());
    }
    Ok(Route::Host(host.to_ascii_lowercase(), port))
}

/// Outcome class of a failed lookup.
enum Failure {
    NxDomain,
    NoData,
    Temporary(String),
}

fn classify(e: &hickory_resolver::ResolveError) -> Failure {
    if let Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) = e.proto().map(|p| p.kind())
    {
        match *response_code {
            ResponseCode::NXDomain => return Failure::NxDomain,
            ResponseCode::NoError => return Failure::NoData,
            _ => {}
        }
    }
    Failure::Temporary(e.to_string())
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// Resolves recipient domains to ordered next hops. Cheap to share (`&self` methods); the
/// underlying resolver caches answers.
pub struct MxResolver {
    resolver: TokioResolver,
    routes: BTreeMap<String, Route>,
    smtp_port: u16,
    allow_private: bool,
}

impl std::fmt::Debug for MxResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MxResolver")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl MxResolver {
    /// `routes`: recipient domain (any spelling: keys are put in the canonical form of
    /// [`postwerk_core::address::normalize_domain`], A-labels) -> `"host:port"` | `"[host]:port"` | `"[host]"` | `"host"`
    /// (port 25); a route host is resolved with A/AAAA, never MX. `nameservers`: empty = system
    /// resolver (`/etc/resolv.conf`), else these servers over UDP and TCP (any port).
    pub fn new(
        routes: &BTreeMap<String, String>,
        nameservers: &[SocketAddr],
    ) -> Result<Self, ResolveError> {
        let routes = routes
            .iter()
            .map(|(domain, route)| {
                let route = parse_route(route).map_err(ResolveError::Config)?;
                let domain = postwerk_core::address::normalize_domain(domain)
                    .map_err(|_| ResolveError::Config(format!("invalid route key {domain:?}")))?;
                Ok((domain, route))
            })
            .collect::<Result<BTreeMap<_, _>, ResolveError>>()?;
        let mut builder = if nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| ResolveError::Config(e.to_string()))?
        } else {
            let mut group = NameServerConfigGroup::with_capacity(nameservers.len() * 2);
            for addr in nameservers {
                group.push(NameServerConfig::new(*addr, Protocol::Udp));
                group.push(NameServerConfig::new(*addr, Protocol::Tcp));
            }
            let config = ResolverConfig::from_parts(None, vec![], group);
            let mut builder =
                Resolver::builder_with_config(config, TokioConnectionProvider::default());
            builder.options_mut().use_hosts_file = ResolveHosts::Never;
            builder
        };
        let opts = builder.options_mut();
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.cache_size = 4096;
        opts.edns0 = true;
        Ok(Self {
            resolver: builder.build(),
            routes,
            smtp_port: 25,
            allow_private: false,
        })
    }

    /// Uses `port` instead of 25 for hosts found by MX (or implicit MX) lookup.
    /// Only tests and unusual lab setups need this; static routes carry their own port.
    pub fn with_smtp_port(mut self, port: u16) -> Self {
        self.smtp_port = port;
        self
    }

    /// Also connects to MX hosts (and MTA-STS policy hosts) on non-public addresses
    /// (`[delivery] allow_private_mx`).
    pub fn allow_private(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }

    /// Static route first (exact domain, case-insensitive), else MX hosts in preference order
    /// (equal preferences shuffled), each resolved to A and AAAA on port 25; without MX
    /// records the domain's own A/AAAA (implicit MX). A lone MX "." is [`ResolveError::NullMx`],
    /// NXDOMAIN is [`ResolveError::NoSuchDomain`]. MX hosts without addresses are skipped.
    pub async fn resolve(&self, domain: &str) -> Result<Vec<NextHop>, ResolveError> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if domain.is_empty() {
            return Err(ResolveError::NoSuchDomain);
        }
        if let Some(route) = self.routes.get(&domain) {
            return self.resolve_route(route).await;
        }
        let lookup = match self.resolver.mx_lookup(fqdn(&domain)).await {
            Ok(lookup) => lookup,
            Err(e) => {
                return match classify(&e) {
                    Failure::NxDomain => Err(ResolveError::NoSuchDomain),
                    Failure::Temporary(m) => Err(ResolveError::Temporary(m)),
                    Failure::NoData => match self.addrs(&domain, self.smtp_port).await {
                        Ok(addrs) if addrs.is_empty() => Err(ResolveError::NoAddresses),
                        Ok(addrs) => match self.reachable(addrs) {
                            addrs if addrs.is_empty() => Err(ResolveError::NoPublicAddress),
                            addrs => Ok(vec![NextHop {
                                host: domain,
                                addrs,
                                preference: None,
                            }]),
                        },
                        Err(Failure::NxDomain | Failure::NoData) => Err(ResolveError::NoAddresses),
                        Err(Failure::Temporary(m)) => Err(ResolveError::Temporary(m)),
                    },
                };
            }
        };
        let mut mxs: Vec<(u16, String)> = lookup
            .iter()
            .map(|mx| (mx.preference(), norm_host(&mx.exchange().to_ascii())))
            .collect();
        let total = mxs.len();
        mxs.retain(|(_, host)| !host.is_empty());
        if mxs.is_empty() && total > 0 {
            return Err(ResolveError::NullMx);
        }
        mxs.shuffle(&mut rand::thread_rng());
        mxs.sort_by_key(|(preference, _)| *preference); // stable: shuffled within a preference

        let mut hops = Vec::with_capacity(mxs.len());
        let mut temporary = None;
        let mut refused = false;
        for (preference, host) in mxs {
            match self.addrs(&host, self.smtp_port).await {
                Ok(addrs) if !addrs.is_empty() => {
                    let addrs = self.reachable(addrs);
                    refused |= addrs.is_empty();
                    if !addrs.is_empty() {
                        hops.push(NextHop {
                            host,
                            addrs,
                            preference: Some(preference),
                        });
                    }
                }
                Ok(_) | Err(Failure::NxDomain | Failure::NoData) => {}
                Err(Failure::Temporary(m)) => temporary = Some(m),
            }
        }
        match (hops.is_empty(), temporary, refused) {
            (false, ..) => Ok(hops),
            (true, Some(m), _) => Err(ResolveError::Temporary(m)),
            (true, None, true) => Err(ResolveError::NoPublicAddress),
            (true, None, false) => Err(ResolveError::NoAddresses),
        }
    }

    async fn resolve_route(&self, route: &Route) -> Result<Vec<NextHop>, ResolveError> {
        let (host, addrs) = match route {
            Route::Ip(addr) => (addr.ip().to_string(), vec![*addr]),
            Route::Host(host, port) => match self.addrs(host, *port).await {
                Ok(addrs) if !addrs.is_empty() => (host.clone(), addrs),
                Ok(_) | Err(Failure::NxDomain | Failure::NoData) => {
                    return Err(ResolveError::Temporary(format!(
                        "static route host {host} has no address"
                    )));
                }
                Err(Failure::Temporary(m)) => return Err(ResolveError::Temporary(m)),
            },
        };
        Ok(vec![NextHop {
            host,
            addrs,
            preference: None,
        }])
    }

    /// True when `domain` has a static route (MX lookup and MTA-STS do not apply).
    pub fn is_routed(&self, domain: &str) -> bool {
        self.routes
            .contains_key(&domain.trim_end_matches('.').to_ascii_lowercase())
    }

    /// The TXT records of `name`, each one's strings joined: empty when the name or
    /// its TXT records do not exist.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, ResolveError> {
        match self.resolver.txt_lookup(fqdn(name)).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|txt| {
                    txt.txt_data()
                        .iter()
                        .map(|part| String::from_utf8_lossy(part))
                        .collect()
                })
                .collect()),
            Err(e) => match classify(&e) {
                Failure::NxDomain | Failure::NoData => Ok(Vec::new()),
                Failure::Temporary(m) => Err(ResolveError::Temporary(m)),
            },
        }
    }

    /// The MX records of `name` as `preference host` (host without the trailing dot),
    /// lowest preference first: empty when the name or its MX records do not exist.
    pub async fn mx(&self, name: &str) -> Result<Vec<(u16, String)>, ResolveError> {
        match self.resolver.mx_lookup(fqdn(name)).await {
            Ok(lookup) => {
                let mut hosts: Vec<(u16, String)> = lookup
                    .iter()
                    .map(|mx| {
                        let host = mx.exchange().to_ascii();
                        (
                            mx.preference(),
                            host.trim_end_matches('.').to_ascii_lowercase(),
                        )
                    })
                    .collect();
                hosts.sort();
                Ok(hosts)
            }
            Err(e) => match classify(&e) {
                Failure::NxDomain | Failure::NoData => Ok(Vec::new()),
                Failure::Temporary(m) => Err(ResolveError::Temporary(m)),
            },
        }
    }

    /// The addresses of `host` (A and AAAA, IPv4 first) with `port` that the policy
    /// lets Postwerk connect to (see [`MxResolver::allow_private`]); empty when it has
    /// none.
    pub async fn host_addrs(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        match self.addrs(host, port).await {
            Ok(addrs) => Ok(self.reachable(addrs)),
            Err(Failure::NxDomain | Failure::NoData) => Ok(Vec::new()),
            Err(Failure::Temporary(m)) => Err(ResolveError::Temporary(m)),
        }
    }

    /// `addrs` without those the policy refuses: only public ones, unless private
    /// addresses are allowed (then all but unspecified and multicast ones).
    fn reachable(&self, mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
        addrs.retain(|a| {
            let ip = a.ip();
            netclass::classify(ip) == Class::Public
                || (self.allow_private && !ip.is_unspecified() && !ip.is_multicast())
        });
        addrs
    }

    /// A and AAAA of the host name `host` (never read as an IP literal: an MX named
    /// `10.0.0.5.` is a name), IPv4 first.
    async fn addrs(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Failure> {
        let lookup = self
            .resolver
            .lookup_ip(fqdn(host))
            .await
            .map_err(|e| classify(&e))?;
        let mut addrs: Vec<SocketAddr> =
            lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect();
        addrs.sort_by_key(SocketAddr::is_ipv6);
        addrs.dedup();
        Ok(addrs)
    }
}

/// Lower-case host name without the trailing dot; the root (null MX) becomes "".
fn norm_host(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdns::{TestDns, TestRecord};

    fn records() -> Vec<TestRecord> {
        vec![
            TestRecord::mx("example.test", 20, "mx2.example.test"),
            TestRecord::mx("example.test", 10, "mx1.example.test"),
            TestRecord::mx("example.test", 10, "mx1b.example.test"),
            TestRecord::addr("mx1.example.test", "192.0.2.1"),
            TestRecord::addr("mx1b.example.test", "2001:db8::2"),
            TestRecord::addr("mx1b.example.test", "192.0.2.2"),
            TestRecord::addr("mx2.example.test", "192.0.2.3"),
            TestRecord::addr("implicit.test", "192.0.2.10"),
            TestRecord::addr("implicit.test", "2001:db8::10"),
            TestRecord::mx("nullmx.test", 0, "."),
            TestRecord::mx("dangling.test", 10, "missing.test"),
            TestRecord::mx("partial.test", 5, "gone.partial.test"),
            TestRecord::mx("partial.test", 30, "MX2.Example.Test."),
            TestRecord::mx("mxonly.test", 10, "mxonly.test"),
            TestRecord::addr("noaddr-implicit.test", "::1"),
            TestRecord::mx("temp.test", 10, "broken.test"),
            TestRecord::servfail("broken.test"),
            TestRecord::servfail("servfail.test"),
        ]
    }

    fn summary(result: &Result<Vec<NextHop>, ResolveError>) -> Vec<String> {
        match result {
            Ok(hops) => hops
                .iter()
                .map(|h| {
                    let addrs: Vec<String> = h.addrs.iter().map(ToString::to_string).collect();
                    let pref = h.preference.map_or("-".into(), |p| p.to_string());
                    format!("{} {pref} {}", h.host, addrs.join(","))
                })
                .collect(),
            Err(ResolveError::Temporary(_)) => vec!["temporary".into()],
            Err(e) => vec![format!("{e:?} permanent={}", e.is_permanent())],
        }
    }

    #[tokio::test]
    async fn resolve_table() {
        let (dns, _handle) = TestDns::start(records()).await.unwrap();
        let routes: BTreeMap<String, String> = [
            ("routed.test", "[127.0.0.1]:2525"),
            ("routed6.test", "[::1]"),
            ("ip.test", "192.0.2.50"),
            ("byname.test", "mx1b.example.test:587"),
            ("bracketname.test", "[mx2.example.test]"),
            ("plain.test", "mx1.example.test"),
            ("Upper.TEST", "127.0.0.2:26"),
            ("exämple.test", "127.0.0.3:27"),
            ("norouteaddr.test", "missing.test:25"),
        ]
        .into_iter()
        .map(|(d, r)| (d.to_owned(), r.to_owned()))
        .collect();
        let resolver = MxResolver::new(&routes, &[dns])
            .unwrap()
            .allow_private(true);
        let cases: &[(&str, &[&str])] = &[
            (
                "implicit.test",
                &["implicit.test - 192.0.2.10:25,[2001:db8::10]:25"],
            ),
            ("nullmx.test", &["NullMx permanent=true"]),
            ("nx.test", &["NoSuchDomain permanent=true"]),
            ("NX.test.", &["NoSuchDomain permanent=true"]),
            ("dangling.test", &["NoAddresses permanent=true"]),
            ("mxonly.test", &["NoAddresses permanent=true"]),
            ("partial.test", &["mx2.example.test 30 192.0.2.3:25"]),
            ("noaddr-implicit.test", &["noaddr-implicit.test - [::1]:25"]),
            ("servfail.test", &["temporary"]),
            ("temp.test", &["temporary"]),
            ("routed.test", &["127.0.0.1 - 127.0.0.1:2525"]),
            ("ROUTED6.test", &["::1 - [::1]:25"]),
            ("ip.test", &["192.0.2.50 - 192.0.2.50:25"]),
            (
                "byname.test",
                &["mx1b.example.test - 192.0.2.2:587,[2001:db8::2]:587"],
            ),
            ("bracketname.test", &["mx2.example.test - 192.0.2.3:25"]),
            ("plain.test", &["mx1.example.test - 192.0.2.1:25"]),
            ("upper.test", &["127.0.0.2 - 127.0.0.2:26"]),
            ("xn--exmple-cua.test", &["127.0.0.3 - 127.0.0.3:27"]),
            ("norouteaddr.test", &["temporary"]),
            ("", &["NoSuchDomain permanent=true"]),
        ];
        for (domain, expected) in cases {
            let got = summary(&resolver.resolve(domain).await);
            assert_eq!(got, *expected, "{domain}");
        }
    }

    #[tokio::test]
    async fn mx_preference_order_with_shuffled_ties() {
        let (dns, _handle) = TestDns::start(records()).await.unwrap();
        let resolver = MxResolver::new(&BTreeMap::new(), &[dns])
            .unwrap()
            .allow_private(true);
        let first = "mx1.example.test 10 192.0.2.1:25";
        let second = "mx1b.example.test 10 192.0.2.2:25,[2001:db8::2]:25";
        let last = "mx2.example.test 20 192.0.2.3:25";
        let mut orders = std::collections::BTreeSet::new();
        for _ in 0..64 {
            let got = summary(&resolver.resolve("Example.Test").await);
            assert_eq!(got.len(), 3, "{got:?}");
            assert_eq!(got[2], last);
            assert!(got[..2].contains(&first.to_owned()) && got[..2].contains(&second.to_owned()));
            orders.insert(got[0].clone());
        }
        assert_eq!(orders.len(), 2, "equal preferences must be shuffled");
    }

    #[tokio::test]
    async fn non_public_mx_addresses_are_refused_unless_allowed() {
        let (dns, _handle) = TestDns::start(vec![
            TestRecord::mx("inside.test", 10, "mx.inside.test"),
            TestRecord::addr("mx.inside.test", "10.0.0.5"),
            TestRecord::mx("meta.test", 10, "mx.meta.test"),
            TestRecord::addr("mx.meta.test", "169.254.169.254"),
            TestRecord::mx("loop.test", 10, "mx.loop.test"),
            TestRecord::addr("mx.loop.test", "127.0.0.1"),
            TestRecord::addr("mx.loop.test", "::1"),
            TestRecord::addr("implicit-private.test", "192.168.1.20"),
            TestRecord::mx("zero.test", 10, "mx.zero.test"),
            TestRecord::addr("mx.zero.test", "0.0.0.0"),
            // An MX "named" like an address is a name, not an IP literal.
            TestRecord::mx("literal.test", 10, "10.0.0.5."),
            // A public MX is used and the private one skipped.
            TestRecord::mx("mixed.test", 10, "mx.inside.test"),
            TestRecord::mx("mixed.test", 20, "mx.public.test"),
            TestRecord::addr("mx.public.test", "93.184.216.34"),
            TestRecord::addr("mx.public.test", "10.1.1.1"),
        ])
        .await
        .unwrap();
        let routes = BTreeMap::from([("routed.test".to_owned(), "10.9.9.9:2525".to_owned())]);
        let strict = MxResolver::new(&routes, &[dns]).unwrap();
        let lab = MxResolver::new(&routes, &[dns])
            .unwrap()
            .allow_private(true);
        let refused = "NoPublicAddress permanent=false";
        let cases: &[(&str, &str, &str)] = &[
            ("inside.test", refused, "mx.inside.test 10 10.0.0.5:25"),
            ("meta.test", refused, "mx.meta.test 10 169.254.169.254:25"),
            (
                "loop.test",
                refused,
                "mx.loop.test 10 127.0.0.1:25,[::1]:25",
            ),
            (
                "implicit-private.test",
                refused,
                "implicit-private.test - 192.168.1.20:25",
            ),
            ("zero.test", refused, refused),
            (
                "literal.test",
                "NoAddresses permanent=true",
                "NoAddresses permanent=true",
            ),
            (
                "mixed.test",
                "mx.public.test 20 93.184.216.34:25",
                "mx.inside.test 10 10.0.0.5:25",
            ),
            // The operator's routes go anywhere.
            (
                "routed.test",
                "10.9.9.9 - 10.9.9.9:2525",
                "10.9.9.9 - 10.9.9.9:2525",
            ),
        ];
        for (domain, by_default, allowed) in cases {
            assert_eq!(
                summary(&strict.resolve(domain).await),
                [*by_default],
                "{domain}"
            );
            assert_eq!(summary(&lab.resolve(domain).await)[0], *allowed, "{domain}");
        }
        assert!(
            strict
                .host_addrs("mx.inside.test", 443)
                .await
                .unwrap()
                .is_empty(),
            "MTA-STS policy hosts follow the same policy"
        );
        assert_eq!(
            strict.host_addrs("mx.public.test", 443).await.unwrap(),
            ["93.184.216.34:443".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn route_parsing_table() {
        let ip = |s: &str| Ok(Route::Ip(s.parse().unwrap()));
        let host = |h: &str, p| Ok(Route::Host(h.into(), p));
        let cases: Vec<(&str, Result<Route, ()>)> = vec![
            ("mx.example.com", host("mx.example.com", 25)),
            ("MX.example.com.:2525", host("mx.example.com", 2525)),
            ("[mx.example.com]", host("mx.example.com", 25)),
            ("[mx.example.com]:587", host("mx.example.com", 587)),
            ("192.0.2.1", ip("192.0.2.1:25")),
            ("192.0.2.1:2525", ip("192.0.2.1:2525")),
            ("[2001:db8::1]:2525", ip("[2001:db8::1]:2525")),
            ("2001:db8::1", ip("[2001:db8::1]:25")),
            ("host:0", Err(())),
            ("host:99999", Err(())),
            ("[host", Err(())),
            ("[host]x", Err(())),
            ("", Err(())),
            ("bad host:25", Err(())),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_route(input).map_err(|_| ()), expected, "{input}");
        }
        let routes = BTreeMap::from([("x.test".to_owned(), "[oops".to_owned())]);
        assert!(matches!(
            MxResolver::new(&routes, &[]),
            Err(ResolveError::Config(_))
        ));
        // Construction needs no runtime.
        let ns = ["127.0.0.1:53".parse().unwrap()];
        assert!(MxResolver::new(&BTreeMap::new(), &ns).is_ok());
    }
}
