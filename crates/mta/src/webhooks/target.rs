//! Which URLs an endpoint may have: `https://` on public addresses; `http://` only on
//! loopback with `[webhooks] allow_loopback`; private, link-local, CGNAT and metadata
//! addresses only with `allow_private`. An IPv6 address that carries an IPv4 one
//! (IPv4-mapped, NAT64, 6to4, Teredo) is judged by that IPv4 address. The check runs on every resolved address, at
//! registration and again before every attempt, and the connection goes to the address
//! that was checked (no DNS rebinding between check and connect).

use std::net::{IpAddr, SocketAddr};

use postwerk_core::config::WebhooksConfig;
use postwerk_dns::netclass::{Class, classify};

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
