//! What kind of address an IP is, for the policies on where Postwerk connects on a
//! tenant's behalf: webhook endpoints (postwerk-mta's `webhooks::target`) and recipients'
//! MX hosts ([`crate::resolve`]). Only [`Class::Public`] addresses are reachable by
//! default; the rest would let a tenant probe or reach the operator's own network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The class of an address, ordered from least to most restricted (an address that embeds another gets the stricter of the two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Routable on the internet.
    Public,
    /// RFC 1918, CGNAT, link-local (cloud metadata lives here), unique-local and
    /// site-local IPv6, local-use NAT64 (`64:ff9b:1::/48`).
    Private,
    /// 127.0.0.0/8 and ::1.
    Loopback,
    /// Unspecified, multicast, broadcast, documentation and other reserved ranges.
    Unusable,
}

/// Classifies `ip` (an IPv4-mapped IPv6 address as its IPv4 address; one that
/// carries an IPv4 address through NAT64, 6to4 or Teredo by that address).
pub fn classify(ip: IpAddr) -> Class {
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
}
