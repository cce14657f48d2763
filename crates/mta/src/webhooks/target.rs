//! Which URLs an endpoint may have: `https://` on public addresses; `http://` only on
//! loopback with `[webhooks] allow_loopback`; private, link-local, CGNAT and metadata
//! addresses only with `allow_private`. An IPv6 address that carries an IPv4 one
//! (IPv4-mapped, NAT64, 6to4, Teredo) is judged by that IPv4 address. The check runs on every resolved address, at
//! registration and again before every attempt, and the connection goes to the address
//! that was checked (no DNS rebinding between check and connect).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use postwerk_core::config::WebhooksConfig;

/// A parsed endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `true` for `https://`.
    pub tls: bool,
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port (default 443 or 80).
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

/// Why a URL is refused; the message is safe to show to the API caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an absolute http(s) URL with a host, or it carries credentials.
    #[error("{0}")]
    Invalid(&'static str),
    /// The host name did not resolve.
    #[error("the host does not resolve")]
    Unresolvable,
    /// An address the configuration does not allow.
    #[error("{0}")]
    Forbidden(String),
}

impl Target {
    /// Parses and checks the form of `url` (not yet its addresses).
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let u = url::Url::parse(url).map_err(|_| TargetError::Invalid("not a valid URL"))?;
        let tls = match u.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(TargetError::Invalid("the URL must be https://")),
        };
        if !u.username().is_empty() || u.password().is_some() {
            return Err(TargetError::Invalid("the URL must not contain credentials"));
        }
        if u.fragment().is_some() {
            return Err(TargetError::Invalid("the URL must not contain a fragment"));
        }
        let host = match u.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(TargetError::Invalid("the URL has no host")),
        };
        let port = u
            .port_or_known_default()
            .ok_or(TargetError::Invalid("the URL has no port"))?;
        let mut path = u.path().to_string();
        if let Some(q) = u.query() {
            path.push('?');
            path.push_str(q);
        }
        Ok(Target {
            tls,
            host,
            port,
            path,
        })
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.tls, self.port) {
            (true, 443) | (false, 80) => host,
            _ => format!("{host}:{}", self.port),
        }
    }

    /// Resolves the host and returns the addresses the policy allows, or why none is.
    /// Every resolved address must be allowed (a name that mixes public and private
    /// addresses is refused as a whole).
    pub async fn resolve(&self, policy: &WebhooksConfig) -> Result<Vec<SocketAddr>, TargetError> {
        let addrs: Vec<SocketAddr> = match self.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, self.port)],
            Err(_) => tokio::net::lookup_host((self.host.as_str(), self.port))
                .await
                .map_err(|_| TargetError::Unresolvable)?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(TargetError::Unresolvable);
        }
        for a in &addrs {
            self.check(a.ip(), policy)?;
        }
        Ok(addrs)
    }

    /// Checks one address against the policy and the scheme.
    fn check(&self, ip: IpAddr, policy: &WebhooksConfig) -> Result<(), TargetError> {
        let forbidden = |what: &str, key: &str| {
            Err(TargetError::Forbidden(format!(
                "the host resolves to a {what} address (allowed only with [webhooks] {key} = true)"
            )))
        };
        match classify(ip) {
            Class::Unusable => Err(TargetError::Forbidden(
                "the host resolves to an unspecified, multicast or reserved address".into(),
            )),
            Class::Loopback if !policy.allow_loopback => forbidden("loopback", "allow_loopback"),
            Class::Loopback => Ok(()),
            Class::Private if !policy.allow_private => {
                forbidden("private or link-local", "allow_private")
            }
            Class::Private | Class::Public if !self.tls => Err(TargetError::Invalid(
                "the URL must be https:// (http:// only to loopback, with allow_loopback)",
            )),
            Class::Private | Class::Public => Ok(()),
        }
    }
}

/// What kind of address an IP is, for the policy; ordered from least to most
/// restricted (an address that embeds another gets the stricter of the two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Public,
    /// RFC 1918, CGNAT, link-local (cloud metadata lives here), unique-local and
    /// site-local IPv6, local-use NAT64 (`64:ff9b:1::/48`).
    Private,
    Loopback,
    /// Unspecified, multicast, broadcast, documentation and other reserved ranges.
    Unusable,
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            // `::ffff:a.b.c.d` is a.b.c.d on a dual-stack socket.
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Class::Loopback
    } else if ip.is_private() || ip.is_link_local() || (a == 100 && (64..128).contains(&b)) {
        Class::Private
    } else if ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
    {
        Class::Unusable
    } else {
        Class::Public
    }
}

/// An IPv4 address reached through a translation or tunnel (NAT64, 6to4, Teredo) is
/// judged like the address itself, except that this host's loopback is never reached
/// that way: such an address is unusable rather than loopback.
fn translated(v4: Ipv4Addr) -> Class {
    match classify_v4(v4) {
        Class::Loopback => Class::Unusable,
        other => other,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let s = ip.segments();
    let low32 = Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32);
    if ip.is_loopback() {
        Class::Loopback
    } else if ip.is_unspecified() || s[..6] == [0; 6] {
        // `::a.b.c.d` (IPv4-compatible) is deprecated and routed nowhere useful.
        Class::Unusable
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 well-known prefix `64:ff9b::/96`: the last 32 bits are the IPv4 address.
        translated(low32)
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        // `64:ff9b:1::/48`, NAT64 for local use: inside some network.
        Class::Private.max(translated(low32))
    } else if s[0] == 0x2002 {
        // 6to4 `2002::/16`: bits 16–47 are the IPv4 address of the site.
        translated(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2])))
    } else if s[0] == 0x2001 && s[1] == 0 {
        // Teredo `2001::/32`: the server's IPv4 address, and the client's, inverted.
        let server = Ipv4Addr::from((u32::from(s[2]) << 16) | u32::from(s[3]));
        translated(server).max(translated(Ipv4Addr::from(!u32::from(low32))))
    } else if (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        Class::Private
    } else if ip.is_multicast() || (s[0] == 0x2001 && s[1] == 0xdb8) || (s[..4] == [0x100, 0, 0, 0])
    {
        // Multicast, documentation (`2001:db8::/32`), discard-only (`100::/64`).
        Class::Unusable
    } else {
        Class::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_loopback: bool, allow_private: bool) -> WebhooksConfig {
        WebhooksConfig {
            allow_loopback,
            allow_private,
            ..WebhooksConfig::default()
        }
    }

    async fn verdict(url: &str, p: &WebhooksConfig) -> Result<(), TargetError> {
        Target::parse(url)?.resolve(p).await.map(|_| ())
    }

    #[tokio::test]
    async fn public_https_only_by_default() {
        let p = policy(false, false);
        assert_eq!(verdict("https://93.184.216.34/hook", &p).await, Ok(()));
        assert!(matches!(
            verdict("http://93.184.216.34/hook", &p).await,
            Err(TargetError::Invalid(_))
        ));
        for forbidden in [
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://10.0.0.1/",
            "https://192.168.1.1/",
            "https://172.16.0.1/",
            "https://100.64.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://0.0.0.0/",
            "https://224.0.0.1/",
        ] {
            assert!(
                matches!(verdict(forbidden, &p).await, Err(TargetError::Forbidden(_))),
                "{forbidden}"
            );
        }
    }

    #[tokio::test]
    async fn loopback_and_private_only_when_allowed() {
        let dev = policy(true, false);
        assert_eq!(verdict("http://127.0.0.1:9000/hook", &dev).await, Ok(()));
        assert_eq!(verdict("https://localhost:9000/hook", &dev).await, Ok(()));
        assert!(verdict("https://10.0.0.1/", &dev).await.is_err());
        let lan = policy(false, true);
        assert_eq!(verdict("https://10.0.0.1/", &lan).await, Ok(()));
        assert!(matches!(
            verdict("http://10.0.0.1/", &lan).await,
            Err(TargetError::Invalid(_))
        ));
        assert!(
            verdict("https://0.0.0.0/", &policy(true, true))
                .await
                .is_err()
        );
    }

    #[test]
    fn addresses_that_embed_ipv4_are_judged_by_it() {
        let class = |ip: &str| classify(ip.parse().unwrap());
        let cases = [
            // NAT64 (64:ff9b::/96): the last 32 bits.
            ("64:ff9b::5db8:d822", Class::Public), // 93.184.216.34
            ("64:ff9b::a00:1", Class::Private),    // 10.0.0.1
            ("64:ff9b::a9fe:a9fe", Class::Private), // 169.254.169.254
            ("64:ff9b::7f00:1", Class::Unusable),  // 127.0.0.1, not this host's
            ("64:ff9b::e000:1", Class::Unusable),  // 224.0.0.1
            // Local-use NAT64 (64:ff9b:1::/48): private at least.
            ("64:ff9b:1::5db8:d822", Class::Private),
            ("64:ff9b:1::7f00:1", Class::Unusable),
            // 6to4 (2002::/16): bits 16–47.
            ("2002:5db8:d822::1", Class::Public),
            ("2002:a00:1::1", Class::Private),
            ("2002:c0a8:101::1", Class::Private), // 192.168.1.1
            ("2002:a9fe:a9fe::1", Class::Private),
            ("2002:7f00:1::1", Class::Unusable),
            // Teredo (2001::/32): server in bits 32–63, client inverted in the last 32.
            ("2001:0:5db8:d822::a247:27dd", Class::Public), // client 93.184.216.34
            ("2001:0:5db8:d822::f5ff:fffe", Class::Private), // client 10.0.0.1
            ("2001:0:a00:1::a247:27dd", Class::Private),    // server 10.0.0.1
            ("2001:0:5db8:d822::80ff:fffe", Class::Unusable), // client 127.0.0.1
            // IPv4-mapped (::ffff:0:0/96): the address itself, loopback included.
            ("::ffff:93.184.216.34", Class::Public),
            ("::ffff:10.0.0.1", Class::Private),
            ("::ffff:127.0.0.1", Class::Loopback),
            // IPv4-compatible (::/96, deprecated), other reserved and local ranges.
            ("::93.184.216.34", Class::Unusable),
            ("::a00:1", Class::Unusable),
            ("::1", Class::Loopback),
            ("::", Class::Unusable),
            ("100::1", Class::Unusable),
            ("fec0::1", Class::Private),
            ("2001:db8::1", Class::Unusable),
            ("2606:4700::1111", Class::Public),
        ];
        for (ip, want) in cases {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[tokio::test]
    async fn embedded_private_addresses_are_refused_even_with_allow_loopback() {
        let dev = policy(true, false);
        for url in [
            "https://[64:ff9b::a9fe:a9fe]/latest/meta-data",
            "https://[2002:a00:1::1]/",
            "http://[64:ff9b::7f00:1]/",
            "https://[64:ff9b::7f00:1]/",
            "https://[2001:0:5db8:d822::f5ff:fffe]/",
        ] {
            assert!(
                matches!(verdict(url, &dev).await, Err(TargetError::Forbidden(_))),
                "{url}"
            );
        }
        assert_eq!(
            verdict("https://[64:ff9b::5db8:d822]/hook", &dev).await,
            Ok(())
        );
    }

    #[test]
    fn malformed_urls_are_refused() {
        for bad in [
            "ftp://x.example/",
            "https://user:pw@x.example/",
            "not a url",
            "https://x.example/#f",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(TargetError::Invalid(_))),
                "{bad}"
            );
        }
        let t = Target::parse("https://hooks.example:8443/in?x=1").expect("parse");
        assert_eq!(
            (t.port, t.path.as_str(), t.authority().as_str()),
            (8443, "/in?x=1", "hooks.example:8443")
        );
        assert_eq!(
            Target::parse("http://[::1]/").expect("v6").authority(),
            "[::1]"
        );
    }
}
