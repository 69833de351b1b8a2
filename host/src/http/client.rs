//! The client's address, for everything that limits or logs per client (login throttling,
//! rate limits). It is the socket peer, unless the peer is a trusted proxy
//! (`LESSOR_TRUSTED_PROXIES`): then it is the right-most `X-Forwarded-For` entry that is not
//! itself a trusted proxy. A client cannot choose its address by sending the header itself:
//! from an untrusted peer the header is ignored.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};

use super::AppState;
use super::error::ApiError;

/// The address of the client that sent the request (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        client_ip(&parts.extensions, &parts.headers, &state.trusted_proxies)
            .map(Self)
            .ok_or_else(|| ApiError::Internal("the server was started without peer addresses".into()))
    }
}

/// The client's address for a request's extensions and headers (what [`ClientAddr`] extracts,
/// for middleware that sees the whole request); `None` without a socket peer.
pub fn client_ip(extensions: &Extensions, headers: &HeaderMap, proxies: &TrustedProxies) -> Option<IpAddr> {
    let ConnectInfo(peer) = extensions.get::<ConnectInfo<SocketAddr>>()?;
    Some(proxies.client_addr(peer.ip(), headers))
}

/// One address or CIDR block, e.g. `10.0.0.7`, `10.0.0.0/8`, `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock {
    network: IpAddr,
    prefix: u8,
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are compared as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl IpBlock {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (whole, rest) = (usize::from(prefix / 8), prefix % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

impl FromStr for IpBlock {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (s, None),
        };
        let network = canonical(ip.parse::<IpAddr>().map_err(|_| format!("`{s}` is not an IP address or CIDR block"))?);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("`{s}`: bad prefix length"))?,
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for IpBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The proxies whose `X-Forwarded-For` is believed (empty by default: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpBlock>);

impl TrustedProxies {
    /// A comma-separated list of addresses and CIDR blocks; empty entries are ignored.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',').filter(|s| !s.trim().is_empty()).map(str::parse).collect::<Result<_, _>>().map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(ip))
    }

    /// The client behind `peer`: `peer` itself unless it is trusted; then the right-most
    /// `X-Forwarded-For` entry that is not trusted (the left-most when all are). A header a
    /// trusted proxy sent that does not parse (or is absent) leaves the peer.
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let Some(chain) = forwarded_for(headers) else { return peer };
        chain.iter().rev().find(|ip| !self.trusts(**ip)).or(chain.first()).copied().unwrap_or(peer)
    }
}

/// Every `X-Forwarded-For` entry in order (several headers read as one list); `None` when
/// there is none or any entry is not a bare IP address.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut chain = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        for entry in value.to_str().ok()?.split(',') {
            chain.push(entry.trim().parse::<IpAddr>().ok()?);
        }
    }
    (!chain.is_empty()).then_some(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn blocks_parse_and_match() {
        let b: IpBlock = "10.0.0.0/8".parse().unwrap();
        assert!(b.contains(ip("10.200.1.2")) && !b.contains(ip("11.0.0.1")));
        assert!(b.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6 is IPv4");
        let b: IpBlock = "192.168.1.0/23".parse().unwrap();
        assert!(b.contains(ip("192.168.0.255")) && !b.contains(ip("192.168.2.0")));
        let one: IpBlock = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: IpBlock = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")) && !v6.contains(ip("10.0.0.1")));
        let all: IpBlock = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "fd00::/129", "nope", "10.0.0.0/", "10.0.0.0/x", "1.2.3.4:80"] {
            assert!(bad.parse::<IpBlock>().is_err(), "{bad}");
        }
        assert_eq!(TrustedProxies::parse("").unwrap(), TrustedProxies::default());
        assert_eq!(TrustedProxies::parse(" 10.0.0.1 , fd00::/8,").unwrap().0.len(), 2);
        assert!(TrustedProxies::parse("10.0.0.1,bogus").is_err());
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = headers(&["203.0.113.9"]);
        assert_eq!(proxies.client_addr(ip("198.51.100.1"), &h), ip("198.51.100.1"), "untrusted peer");
        assert_eq!(proxies.client_addr(ip("10.0.0.5"), &h), ip("203.0.113.9"));
        assert_eq!(TrustedProxies::default().client_addr(ip("10.0.0.5"), &h), ip("10.0.0.5"), "none trusted");
    }

    #[test]
    fn the_right_most_untrusted_entry_is_the_client() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        // A client-supplied (spoofed) left part is skipped: the first proxy appended the truth.
        let h = headers(&["1.1.1.1, 203.0.113.9, 10.0.0.7"]);
        assert_eq!(proxies.client_addr(ip("10.0.0.5"), &h), ip("203.0.113.9"));
        // Several headers are one list, in order.
        let h = headers(&["1.1.1.1", "203.0.113.9", "10.0.0.7"]);
        assert_eq!(proxies.client_addr(ip("10.0.0.5"), &h), ip("203.0.113.9"));
        // Only proxies: the left-most.
        let h = headers(&["10.1.1.1, 10.0.0.7"]);
        assert_eq!(proxies.client_addr(ip("10.0.0.5"), &h), ip("10.1.1.1"));
        let h = headers(&["2001:db8::1"]);
        assert_eq!(proxies.client_addr(ip("10.0.0.5"), &h), ip("2001:db8::1"));
    }

    #[test]
    fn a_malformed_header_leaves_the_peer() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let peer = ip("10.0.0.5");
        for bad in ["", "not-an-ip", "203.0.113.9, ", "203.0.113.9:443", "unknown, 203.0.113.9", "[2001:db8::1]"] {
            assert_eq!(proxies.client_addr(peer, &headers(&[bad])), peer, "{bad:?}");
        }
        assert_eq!(proxies.client_addr(peer, &HeaderMap::new()), peer);
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", axum::http::HeaderValue::from_bytes(b"203.0.113.\xff").unwrap());
        assert_eq!(proxies.client_addr(peer, &h), peer);
    }
}
