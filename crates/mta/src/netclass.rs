//! What kind of address an IP is, for the policies on where Postwerk connects on a
//! tenant's behalf: webhook endpoints ([`crate::webhooks::target`]) and recipients'
//! MX hosts ([`crate::resolve`]). Only [`Class::Public`] addresses are reachable by
//! default; the rest would let a tenant probe or reach the operator's own network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The class of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Routable on the internet.
    Public,
    /// 127.0.0.0/8 and ::1.
    Loopback,
    /// RFC 1918, CGNAT, link-local (cloud metadata lives here), unique-local IPv6.
    Private,
    /// Unspecified, multicast, broadcast, documentation and other reserved ranges.
    Unusable,
}

/// Classifies `ip` (an IPv4-mapped IPv6 address as its IPv4 address).
pub fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
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

fn classify_v6(ip: Ipv6Addr) -> Class {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Class::Loopback
    } else if (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 {
        Class::Private
    } else if ip.is_unspecified()
        || ip.is_multicast()
        || first == 0x2001 && ip.segments()[1] == 0xdb8
    {
        Class::Unusable
    } else {
        Class::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let cases = [
            ("93.184.216.34", Class::Public),
            ("2606:2800:220:1::1", Class::Public),
            ("127.0.0.1", Class::Loopback),
            ("127.8.9.10", Class::Loopback),
            ("::1", Class::Loopback),
            ("::ffff:127.0.0.1", Class::Loopback),
            ("10.0.0.5", Class::Private),
            ("172.16.0.1", Class::Private),
            ("192.168.1.1", Class::Private),
            ("100.64.0.1", Class::Private),
            ("169.254.169.254", Class::Private),
            ("::ffff:10.1.2.3", Class::Private),
            ("fd00::1", Class::Private),
            ("fe80::1", Class::Private),
            ("0.0.0.0", Class::Unusable),
            ("0.1.2.3", Class::Unusable),
            ("::", Class::Unusable),
            ("224.0.0.1", Class::Unusable),
            ("ff02::1", Class::Unusable),
            ("255.255.255.255", Class::Unusable),
            ("240.0.0.1", Class::Unusable),
            ("192.0.2.1", Class::Unusable),
            ("198.51.100.7", Class::Unusable),
            ("203.0.113.9", Class::Unusable),
            ("2001:db8::1", Class::Unusable),
        ];
        for (ip, class) in cases {
            assert_eq!(classify(ip.parse().unwrap()), class, "{ip}");
        }
    }
}
