//! The client's address, for the per-IP connection limit.
//!
//! It is the TCP peer, unless the peer is one of `proxy.trusted` (a reverse
//! proxy that terminates TLS in front of the hub). Then the hub reads that
//! proxy's `X-Forwarded-For` from the right, skipping the addresses of other
//! trusted proxies, and takes the first address it does not trust: the
//! nearest hop that no trusted proxy vouches for. Entries to the left of it
//! were written by the client or by proxies the hub does not know, so a client
//! cannot pick its own address by sending the header. A hop that is not an
//! address (`unknown`, an obfuscated name) ends the walk at the last address
//! read, which is then a trusted proxy's. Without `proxy.trusted` (the
//! default) the header is ignored.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The address the connection counts against; see the module docs.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    // A dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`.
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    // Several headers count as one comma-separated list, in order.
    for value in headers.get_all(X_FORWARDED_FOR).iter().rev() {
        let Ok(value) = value.to_str() else {
            return client;
        };
        for entry in value.rsplit(',') {
            // A hop that cannot be read ends the chain at the last good one.
            let Some(ip) = parse_hop(entry.trim()) else {
                return client;
            };
            client = ip;
            if !is_trusted(&ip) {
                return client;
            }
        }
    }
    client
}

/// An address as proxies write it: `203.0.113.7`, `2001:db8::1`, and, from
/// some proxies, with a port: `203.0.113.7:5123`, `[2001:db8::1]:5123`.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
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
            h.append(X_FORWARDED_FOR, v.parse().unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn the_header_is_ignored_unless_the_peer_is_trusted() {
        let h = headers(&["203.0.113.7"]);
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &[]), ip("198.51.100.1"));
        let trusted = nets(&["127.0.0.1/32"]);
        assert_eq!(
            client_ip(ip("198.51.100.1"), &h, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn the_nearest_untrusted_hop_wins_over_what_the_client_wrote() {
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        // The client sent "1.1.1.1"; the edge proxy (10.0.0.5) appended the
        // client's real address, and the local proxy appended the edge's.
        let h = headers(&["1.1.1.1, 203.0.113.7, 10.0.0.5"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.7"));
        // The same chain split over two headers.
        let h = headers(&["1.1.1.1, 203.0.113.7", "10.0.0.5"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn a_chain_of_trusted_hops_ends_at_the_leftmost() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        let h = headers(&["10.1.1.1, 10.0.0.5"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("10.1.1.1"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn an_unreadable_hop_stops_at_the_last_good_one() {
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        let h = headers(&["203.0.113.7, unknown, 10.0.0.5"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("10.0.0.5"));
        let h = headers(&["garbage"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("127.0.0.1"));
    }

    #[test]
    fn ipv4_mapped_peers_count_as_ipv4() {
        let trusted = nets(&["127.0.0.1/32"]);
        let h = headers(&["203.0.113.7"]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &h, &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_ip(ip("::ffff:198.51.100.1"), &h, &[]),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn hops_with_ports_and_ipv6_are_read() {
        let trusted = nets(&["::1/128", "127.0.0.1/32"]);
        let h = headers(&["[2001:db8::7]:5123"]);
        assert_eq!(client_ip(ip("::1"), &h, &trusted), ip("2001:db8::7"));
        let h = headers(&["203.0.113.7:5123"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.7"));
    }
}
