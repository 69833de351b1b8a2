//! Which addresses a granted host name may resolve to, and the resolver that enforces it.
//!
//! A grant names a host; what the name resolves to is up to whoever runs its DNS. So a name
//! must resolve to public addresses: loopback, private (RFC 1918, fc00::/7), link-local
//! (169.254.0.0/16 with the cloud metadata address, fe80::/10), CGNAT (100.64.0.0/10),
//! multicast, unspecified, broadcast, documentation and other reserved ranges are refused, in
//! IPv4-mapped and IPv4-compatible IPv6 forms too. An IP literal the operator granted as written
//! is not resolved and not checked (the grant is the operator's explicit choice), nor is a name
//! granted with `+private`.
//!
//! [`PublicOnly`] is the `reqwest` resolver of the transport's public client: it resolves a
//! name once, keeps only public addresses and hands exactly those to the connector, so there is
//! no second lookup for a rebinding DNS server to answer differently. TLS still verifies the
//! host name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why an address is not public, or `None` when it is.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let reason = match (a, b, c) {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        (100, 64..=127, _) => "shared (CGNAT)",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_broadcast() => "broadcast",
        (0, _, _) => "this network",
        (192, 0, 0) => "IETF protocol",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (240..=255, _, _) => "reserved",
        _ => return None,
    };
    Some(reason)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4).map(|_| "non-public (IPv4-mapped)");
    }
    let segments = ip.segments();
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96) embed an IPv4 address.
    if segments[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback() {
        let v4 = ip.to_ipv4().expect("the first 96 bits are zero");
        return non_public_v4(v4).map(|_| "non-public (IPv4-compatible)");
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        return non_public_v4(v4).map(|_| "non-public (NAT64)");
    }
    let reason = match segments[0] {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        s if s & 0xfe00 == 0xfc00 => "unique local (private)",
        s if s & 0xffc0 == 0xfe80 => "link-local",
        s if s & 0xffc0 == 0xfec0 => "site-local",
        s if s & 0xff00 == 0xff00 => "multicast",
        0x2001 if segments[1] == 0x0db8 => "documentation",
        0x0100 if segments[1..4] == [0, 0, 0] => "discard-only",
        _ => return None,
    };
    Some(reason)
}

/// A name resolved only to addresses a plugin may not reach (the error the resolver returns).
/// Its text names the kind of address, not the address: it ends up in the payment's
/// `failure_message`, which the payer can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} resolves to a {reason} address")]
pub struct NonPublicAddress {
    pub host: String,
    pub addr: IpAddr,
    pub reason: &'static str,
}

/// Resolves with the system resolver, once, and keeps only public addresses.
#[derive(Debug, Default)]
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                resolved.into_iter().partition(|a| non_public(a.ip()).is_none());
            if public.is_empty() {
                let Some(first) = refused.first() else {
                    return Err(format!("{host} resolves to no address").into());
                };
                let reason = non_public(first.ip()).unwrap_or("non-public");
                return Err(Box::new(NonPublicAddress { host, addr: first.ip(), reason }) as _);
            }
            if let Some(first) = refused.first() {
                tracing::debug!(host, refused = %first.ip(), "non-public addresses of a granted name skipped");
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_non_public_range_is_refused() {
        for refused in [
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "2001:db8::1",
            // IPv4-mapped forms of the ranges above.
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:100.64.0.1",
            "::ffff:192.168.0.1",
            "::ffff:0.0.0.0",
            // IPv4-compatible and NAT64 forms.
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
        ] {
            assert!(non_public(ip(refused)).is_some(), "{refused} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "169.253.255.255",
            "192.169.0.1",
            "54.187.174.169",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(non_public(ip(public)), None, "{public} is public");
        }
    }

    #[test]
    fn mapped_forms_say_what_they_hide() {
        assert_eq!(non_public(ip("::ffff:127.0.0.1")), Some("non-public (IPv4-mapped)"));
        assert_eq!(non_public(ip("169.254.169.254")), Some("link-local"));
        assert_eq!(non_public(ip("100.64.0.1")), Some("shared (CGNAT)"));
    }

    #[tokio::test]
    async fn localhost_resolves_to_nothing_a_plugin_may_reach() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let refused = PublicOnly.resolve(name).await.err().expect("localhost is refused");
        let denial = refused.downcast_ref::<NonPublicAddress>().expect("a typed refusal");
        assert_eq!(denial.host, "localhost");
        assert!(denial.addr.is_loopback(), "{denial}");
    }
}
