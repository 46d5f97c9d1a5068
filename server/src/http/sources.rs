//! Connections per source: how many each source (an IPv4 address, an IPv6 /64, as the
//! quotas count it) holds open, against `limits.max_connections_per_source`. Without
//! it one address can take every descriptor the server has (the open-file limit) by
//! opening connections and sending a request on each now and then, well inside the
//! idle timeout, and no one else can connect.
//!
//! Counted on accept and on close only, never on a request.

use std::net::IpAddr;
use std::sync::Arc;

use dashmap::mapref::entry::Entry;

use crate::quota::Source;
use crate::shards::{self, Map};

/// What a connection refused for its source's cap is told before it is closed: RFC
/// 9110 §15.6.4 503, and when to come back. Written as the connection is accepted,
/// without reading its request.
pub(crate) const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: application/json\r\n\
Cache-Control: no-store\r\n\
Retry-After: 5\r\n\
Connection: close\r\n\
Content-Length: 123\r\n\
\r\n\
{\"error\":\"temporarily_unavailable\",\"error_description\":\"Too many connections from this address: close some and try again.\"}";

/// The connections each source holds, and the most it may.
#[derive(Debug)]
pub(crate) struct SourceConnections {
    cap: u32,
    held: Map<Source, u32>,
}

/// One connection held by its source, given back when dropped (the connection closed).
#[derive(Debug)]
pub(crate) struct Held {
    of: Arc<SourceConnections>,
    source: Source,
}

impl SourceConnections {
    /// At most `cap` connections a source; `None` when `cap` is 0 (no cap).
    pub(crate) fn new(cap: u32) -> Option<Arc<SourceConnections>> {
        (cap > 0).then(|| {
            Arc::new(SourceConnections {
                cap,
                held: shards::map(),
            })
        })
    }

    /// The most connections a source may hold.
    pub(crate) fn cap(&self) -> u32 {
        self.cap
    }

    /// One more connection from `peer`, if its source holds fewer than the cap.
    pub(crate) fn enter(self: &Arc<Self>, peer: IpAddr) -> Option<Held> {
        let source = Source::of(peer);
        let mut held = self.held.entry(source).or_insert(0);
        if *held >= self.cap {
            return None;
        }
        *held += 1;
        Some(Held {
            of: Arc::clone(self),
            source,
        })
    }

    /// Connections `peer`'s source holds now.
    #[cfg(test)]
    fn holding(&self, peer: IpAddr) -> u32 {
        self.held.get(&Source::of(peer)).map_or(0, |n| *n)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // A source that holds none is forgotten: the map holds the sources connected
        // now, not every address ever seen.
        if let Entry::Occupied(mut held) = self.of.held.entry(self.source) {
            *held.get_mut() -= 1;
            if *held.get() == 0 {
                held.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_holds_at_most_the_cap_and_gets_a_connection_back_as_one_closes() {
        let sources = SourceConnections::new(2).unwrap();
        let a = sources.enter(ip("192.0.2.1")).unwrap();
        let b = sources.enter(ip("192.0.2.1")).unwrap();
        assert!(sources.enter(ip("192.0.2.1")).is_none(), "a third");
        // Another address is another source; an IPv6 /64 is one.
        let _c = sources.enter(ip("192.0.2.2")).unwrap();
        let _d = sources.enter(ip("2001:db8::1")).unwrap();
        let _e = sources.enter(ip("2001:db8::2")).unwrap();
        assert!(
            sources.enter(ip("2001:db8::3")).is_none(),
            "the /64's third"
        );
        drop(a);
        assert_eq!(sources.holding(ip("192.0.2.1")), 1);
        let _f = sources.enter(ip("192.0.2.1")).unwrap();
        drop(b);
        drop(_f);
        assert_eq!(sources.holding(ip("192.0.2.1")), 0);
        assert!(
            sources.held.get(&Source::of(ip("192.0.2.1"))).is_none(),
            "forgotten"
        );
    }

    #[test]
    fn no_cap_is_no_counting() {
        assert!(SourceConnections::new(0).is_none());
    }

    #[test]
    fn the_refusal_is_a_whole_http_answer() {
        let text = std::str::from_utf8(REFUSED).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "temporarily_unavailable");
    }
}
