//! The client's address: the TCP peer, or, when the peer is a trusted reverse proxy
//! (`[http] trusted_proxies`), the last `X-Forwarded-For` entry that is not itself a
//! trusted proxy.

use std::net::IpAddr;

use axum::http::HeaderMap;
use postwerk_core::config::Cidr;

/// Resolves the client's address.
pub fn address(peer: IpAddr, headers: &HeaderMap, proxies: &[Cidr]) -> IpAddr {
    let trusted = |ip: IpAddr| proxies.iter().any(|c| c.contains(ip));
    if !trusted(peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted(*ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn believes_only_trusted_proxies() {
        let proxies = [
            Cidr::parse("127.0.0.1").unwrap(),
            Cidr::parse("10.0.0.0/8").unwrap(),
        ];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "198.51.100.7, 203.0.113.9, 10.1.1.1".parse().unwrap(),
        );
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            address(local, &h, &proxies),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            address(outside, &h, &proxies),
            outside,
            "a client cannot claim an address"
        );
        assert_eq!(address(local, &HeaderMap::new(), &proxies), local);
        assert_eq!(address(local, &h, &[]), local, "no proxies configured");
    }
}
