//! The client's address behind reverse proxies the operator trusts.
//!
//! Quotas, rate limits and audit events count by where a request comes from. Behind a
//! reverse proxy (TLS termination, a load balancer) the TCP peer is the proxy, and
//! every limit would apply to everyone at once: one device over its quota would lock
//! out all the others. With `[limits] trusted_proxies`, a request whose TCP peer is a
//! trusted proxy counts against the address that proxy says it came from, read from
//! `X-Forwarded-For` right to left: each proxy appends the address it got the request
//! from, so the first address from the right that is not a trusted proxy is the
//! client. What lies to its left was written by the client, and is never read.
//!
//! The connection cap (`sources.rs`) is not affected: a connection is the proxy's.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use hyper::header::HeaderMap;
use ipnet::IpNet;

/// The header read: the one every common proxy (nginx, HAProxy, Envoy, cloud load
/// balancers) appends to.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The most `X-Forwarded-For` entries walked, from the right: a chain of proxies is
/// a few hops long; a longer list is a client's, and not read any further.
const MAX_HOPS: usize = 16;

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trusts the proxies in `nets`.
    pub fn new(nets: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(nets)
    }

    /// Whether no proxy is trusted (the default): the TCP peer is the client.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `addr` is a trusted proxy. An IPv4-mapped IPv6 peer (a dual-stack
    /// listener) is its IPv4 address.
    pub fn trusts(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The address a request from the TCP peer `peer` counts as coming from.
    #[inline(always)]
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.is_empty() {
            return peer;
        }
        self.walk(peer, headers)
    }

    fn walk(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer;
        if !self.trusts(peer) {
            return client;
        }
        // Several header lines are one list, in order (RFC 9110 §5.3): walked from the
        // last entry of the last line.
        let entries = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .rev()
            .flat_map(|line| line.as_bytes().rsplit(|&b| b == b','));
        for entry in entries.take(MAX_HOPS) {
            // An entry that is no address was not written by a proxy that appends the
            // address it saw: stop at the last hop known.
            let Some(addr) = parse_entry(entry) else {
                break;
            };
            client = addr.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, an IPv4 address with a port, or a
/// bracketed IPv6 address with or without a port, as proxies write them.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let entry = std::str::from_utf8(entry).ok()?.trim_matches([' ', '\t']);
    // An address; an address with a port (`203.0.113.7:5443`, `[2001:db8::1]:443`);
    // a bracketed IPv6 address without one.
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip()))
        .or_else(|_| {
            let v6 = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']'));
            v6.unwrap_or_default().parse::<Ipv6Addr>().map(IpAddr::V6)
        })
        .ok()
}

/// A `trusted_proxies` entry: a CIDR block (`10.0.0.0/8`, `fd00::/8`) or one address;
/// or why it is neither, in words.
pub fn parse_trusted(entry: &str) -> Result<IpNet, String> {
    if let Ok(net) = entry.parse::<IpNet>() {
        // `10.0.0.1/8` is a typo for a block or for an address: refused, not guessed.
        if net.network() != net.addr() {
            return Err(format!(
                "has host bits set: the block is {}, the address {}",
                net.trunc(),
                net.addr()
            ));
        }
        return Ok(net);
    }
    entry.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        "is neither an address nor a CIDR block (\"10.0.0.0/8\", \"fd00::/8\", \"192.0.2.7\")"
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| parse_trusted(n).unwrap()).collect())
    }

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(X_FORWARDED_FOR, HeaderValue::from_str(l).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn with_no_proxy_trusted_the_peer_is_the_client_whatever_the_header_says() {
        let t = TrustedProxies::default();
        assert_eq!(
            t.client(ip("10.0.0.1"), &headers(&["203.0.113.7"])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn an_untrusted_peer_s_header_is_never_read() {
        let t = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            t.client(ip("198.51.100.1"), &headers(&["203.0.113.7"])),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_first_untrusted_address_from_the_right_is_the_client() {
        let t = proxies(&["10.0.0.0/8", "192.168.1.1"]);
        // The client forged the first entry; the edge proxy appended its real address;
        // an inner proxy appended the edge's.
        let h = headers(&["1.1.1.1, 203.0.113.7, 10.1.2.3"]);
        assert_eq!(t.client(ip("192.168.1.1"), &h), ip("203.0.113.7"));
        // The same list over several header lines.
        let h = headers(&["1.1.1.1", "203.0.113.7", "10.1.2.3"]);
        assert_eq!(t.client(ip("192.168.1.1"), &h), ip("203.0.113.7"));
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        let t = proxies(&["127.0.0.0/8"]);
        assert_eq!(
            t.client(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_chain_of_trusted_addresses_ends_at_its_leftmost() {
        let t = proxies(&["10.0.0.0/8"]);
        let h = headers(&["10.9.9.9, 10.1.1.1"]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("10.9.9.9"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_hop_known() {
        let t = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            t.client(ip("10.0.0.1"), &headers(&["unknown"])),
            ip("10.0.0.1")
        );
        assert_eq!(
            t.client(
                ip("10.0.0.1"),
                &headers(&["203.0.113.7, _hidden, 10.2.2.2"])
            ),
            ip("10.2.2.2")
        );
        // Garbage left of the client is never reached.
        assert_eq!(
            t.client(ip("10.0.0.1"), &headers(&["<script>, 203.0.113.7"])),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_read_as_proxies_write_them() {
        let t = proxies(&["10.0.0.0/8"]);
        for (entry, client) in [
            ("203.0.113.7:5443", "203.0.113.7"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            (" 203.0.113.7 ", "203.0.113.7"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
        ] {
            assert_eq!(
                t.client(ip("10.0.0.1"), &headers(&[entry])),
                ip(client),
                "{entry}"
            );
        }
        for garbage in [
            "203.0.113.7:",
            "203.0.113.7:x",
            "[2001:db8::1",
            "[2001:db8::1]x",
        ] {
            assert_eq!(
                t.client(ip("10.0.0.1"), &headers(&[garbage])),
                ip("10.0.0.1"),
                "{garbage}"
            );
        }
        // A dual-stack listener's mapped peer is the IPv4 proxy.
        assert_eq!(
            t.client(ip("::ffff:10.0.0.1"), &headers(&["203.0.113.7"])),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn a_long_list_is_walked_no_further_than_the_hop_limit() {
        let t = proxies(&["10.0.0.0/8"]);
        let mut list = vec!["203.0.113.7".to_owned()];
        list.extend((0..40).map(|i| format!("10.0.0.{i}")));
        let h = headers(&[&list.join(",")]);
        // Walked from the right, MAX_HOPS entries, all trusted: the last one walked.
        assert_eq!(
            t.client(ip("10.0.0.1"), &h),
            ip(&format!("10.0.0.{}", 40 - MAX_HOPS))
        );
    }

    #[test]
    fn trusted_entries_are_blocks_or_addresses_never_a_block_with_host_bits() {
        assert!(parse_trusted("10.0.0.0/8").is_ok());
        assert!(parse_trusted("10.0.0.7").is_ok());
        assert!(parse_trusted("fd00::/8").is_ok());
        assert!(parse_trusted("::1").is_ok());
        assert_eq!(
            parse_trusted("10.0.0.1/8").unwrap_err(),
            "has host bits set: the block is 10.0.0.0/8, the address 10.0.0.1"
        );
        assert!(parse_trusted("10.0.0/8").is_err());
        assert!(parse_trusted("proxy.internal").is_err());
        assert!(parse_trusted("10.0.0.0/33").is_err());
    }
}
