//! Quotas on device authorization: token buckets per source address and per client,
//! so that a flood from one source, or from one client, never denies service to
//! another. With them, a client's share of the session cap (`store.rs`).
//!
//! A public client needs no secret (RFC 8628 §3.1 allows it), so anyone can ask for
//! device codes in its name; RFC 8628 §5.2 leaves the defence to the server. Without
//! quotas one client on one address filled the 2,000,000-session cap in 23 s, and
//! every other client then got 503 for the codes' lifetime.
//!
//! A bucket holds up to `burst` requests and refills at `rate` per second; a request
//! takes one or is refused with the time until one is back. Buckets are kept in
//! milli-requests, in integers. Times come from the server's clock; one that steps back
//! refills nothing and never panics. A source's bucket is forgotten once it would be
//! full again (filed in the project's `ExpiryWheel`, never scanned).

use std::net::{IpAddr, Ipv6Addr};

use crate::clock::Millis;
use crate::expiry::ExpiryWheel;
use crate::protocol::ids::ClientId;

/// A token bucket's shape: `burst` at most, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests refilled per second.
    pub per_second: f64,
    /// Requests a full bucket holds.
    pub burst: u32,
}

impl Rate {
    /// Milli-requests a full bucket holds.
    fn capacity(&self) -> u64 {
        u64::from(self.burst) * 1000
    }

    /// Milli-requests refilled in `ms` milliseconds.
    fn refill(&self, ms: Millis) -> u64 {
        (ms as f64 * self.per_second) as u64
    }

    /// Milliseconds until `missing` milli-requests are refilled.
    fn wait(&self, missing: u64) -> Millis {
        (missing as f64 / self.per_second).ceil() as Millis
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// Milli-requests available at `at`.
    pub(crate) level: u64,
    pub(crate) at: Millis,
}

impl Bucket {
    pub(crate) fn full(rate: &Rate, now: Millis) -> Bucket {
        Bucket {
            level: rate.capacity(),
            at: now,
        }
    }

    /// Takes one request, or says how long until one is back.
    pub(crate) fn take(&mut self, rate: &Rate, now: Millis) -> Result<(), Millis> {
        if now > self.at {
            self.level =
                (self.level.saturating_add(rate.refill(now - self.at))).min(rate.capacity());
            self.at = now;
        }
        match self.level.checked_sub(1000) {
            Some(left) => {
                self.level = left;
                Ok(())
            }
            None => Err(rate.wait(1000 - self.level).max(1)),
        }
    }

    /// When the bucket is full again.
    pub(crate) fn full_at(&self, rate: &Rate) -> Millis {
        self.at
            .saturating_add(rate.wait(rate.capacity().saturating_sub(self.level)))
    }
}

/// Where a request comes from, as quotas count it: an IPv4 address, or an IPv6 /64
/// (the block one host or household usually has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    /// The source a request from `addr` counts against.
    pub fn of(addr: IpAddr) -> Source {
        Source(match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        })
    }

    /// The address this source is counted as (an IPv6 /64 as its first address).
    pub fn ip(self) -> IpAddr {
        self.0
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
            v4 => write!(f, "{v4}"),
        }
    }
}

/// Which quota refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The source's bucket is empty for `retry_after_ms`.
    Source {
        /// How long until a request is back.
        retry_after_ms: Millis,
    },
    /// The client's bucket is empty for `retry_after_ms`.
    Client {
        /// How long until a request is back.
        retry_after_ms: Millis,
    },
}

impl Refusal {
    /// How long until the refusing bucket has a request again.
    pub fn retry_after_ms(self) -> Millis {
        match self {
            Refusal::Source { retry_after_ms } | Refusal::Client { retry_after_ms } => {
                retry_after_ms
            }
        }
    }
}

/// The quotas' configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaPolicy {
    /// Device authorizations per source address; `None`: unlimited.
    pub per_source: Option<Rate>,
    /// Device authorizations per client; `None`: unlimited.
    pub per_client: Option<Rate>,
    /// Sources tracked at once. Past it a new source is not rate-limited (the client
    /// quotas and the session cap still hold), rather than refused: refusing would let
    /// whoever fills the table deny service to everyone else.
    pub max_sources: usize,
}

/// The quotas' state.
pub(crate) struct Quotas {
    policy: QuotaPolicy,
    sources: crate::shards::Map<Source, Bucket>,
    clients: crate::shards::Map<ClientId, Bucket>,
    forget: ExpiryWheel<Source>,
}

impl Quotas {
    pub(crate) fn new(policy: QuotaPolicy) -> Quotas {
        Quotas {
            policy,
            sources: crate::shards::map(),
            clients: crate::shards::map(),
            forget: ExpiryWheel::new(),
        }
    }

    /// Takes one device authorization from `source`'s and `client`'s buckets, or says
    /// which is empty and for how long. The source is charged first: a flood from one
    /// address spends its own bucket, not its client's.
    pub(crate) fn admit(
        &self,
        source: Source,
        client: ClientId,
        now: Millis,
    ) -> Result<(), Refusal> {
        if let Some(rate) = &self.policy.per_source {
            let tracked = self.sources.len() < self.policy.max_sources;
            let mut fresh = false;
            let entry = if tracked {
                Some(self.sources.entry(source).or_insert_with(|| {
                    fresh = true;
                    Bucket::full(rate, now)
                }))
            } else {
                self.sources.get_mut(&source)
            };
            if let Some(mut bucket) = entry {
                let taken = bucket.take(rate, now);
                if fresh {
                    self.forget.schedule(bucket.full_at(rate), source);
                }
                taken.map_err(|retry_after_ms| Refusal::Source { retry_after_ms })?;
            }
        }
        if let Some(rate) = &self.policy.per_client {
            let mut bucket = self
                .clients
                .entry(client)
                .or_insert_with(|| Bucket::full(rate, now));
            bucket
                .take(rate, now)
                .map_err(|retry_after_ms| Refusal::Client { retry_after_ms })?;
        }
        Ok(())
    }

    /// Forgets sources whose buckets are full again, looking at no more than `budget`;
    /// one not yet full is filed again for when it will be. Returns how many it looked
    /// at.
    pub(crate) fn sweep(&self, now: Millis, budget: usize) -> usize {
        let Some(rate) = &self.policy.per_source else {
            return 0;
        };
        let due = self.forget.take_due(now, budget);
        let examined = due.len();
        for source in due {
            let removed = self
                .sources
                .remove_if(&source, |_, b| b.full_at(rate) <= now);
            if removed.is_none() {
                if let Some(b) = self.sources.get(&source) {
                    self.forget.schedule(b.full_at(rate), source);
                }
            }
        }
        examined
    }

    /// Sources tracked now.
    #[cfg(test)]
    pub(crate) fn sources(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_PER_SECOND: Rate = Rate {
        per_second: 10.0,
        burst: 5,
    };

    fn quotas(per_source: Option<Rate>, per_client: Option<Rate>) -> Quotas {
        Quotas::new(QuotaPolicy {
            per_source,
            per_client,
            max_sources: 1_000,
        })
    }

    fn ip(s: &str) -> Source {
        Source::of(s.parse().unwrap())
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let q = quotas(Some(TEN_PER_SECOND), None);
        let a = ip("192.0.2.1");
        for _ in 0..5 {
            assert_eq!(q.admit(a, ClientId(0), 0), Ok(()));
        }
        assert_eq!(
            q.admit(a, ClientId(0), 0),
            Err(Refusal::Source {
                retry_after_ms: 100
            })
        );
        // One request back every 100 ms.
        assert_eq!(q.admit(a, ClientId(0), 100), Ok(()));
        assert!(q.admit(a, ClientId(0), 150).is_err());
        // Another source is not affected.
        assert_eq!(q.admit(ip("192.0.2.2"), ClientId(0), 0), Ok(()));
    }

    #[test]
    fn a_bucket_s_arithmetic_saturates_at_the_ends_of_time() {
        // The configuration refuses rates below one a day; the bucket still never
        // overflows, whatever it is given.
        let slow = Rate {
            per_second: 1e-300,
            burst: 1,
        };
        let mut b = Bucket::full(&slow, u64::MAX - 5);
        assert_eq!(b.take(&slow, u64::MAX - 5), Ok(()));
        assert_eq!(b.full_at(&slow), u64::MAX);
        assert_eq!(b.take(&slow, u64::MAX), Err(u64::MAX));
        let fast = Rate {
            per_second: 1e300,
            burst: u32::MAX,
        };
        let mut b = Bucket {
            level: u64::MAX - 1,
            at: 0,
        };
        assert_eq!(b.take(&fast, u64::MAX), Ok(()));
    }

    #[test]
    fn a_flood_from_one_source_leaves_the_client_to_others() {
        let q = quotas(
            Some(TEN_PER_SECOND),
            Some(Rate {
                per_second: 100.0,
                burst: 50,
            }),
        );
        let flood = ip("192.0.2.1");
        let refused = (0..1_000)
            .filter(|_| q.admit(flood, ClientId(0), 0).is_err())
            .count();
        assert_eq!(refused, 995);
        // The refused floods did not spend the client's bucket.
        for n in 0..45 {
            let other = Source::of(IpAddr::from([198, 51, 100, n]));
            assert_eq!(q.admit(other, ClientId(0), 0), Ok(()), "source {n}");
        }
    }

    #[test]
    fn a_clock_stepped_back_refills_nothing_and_never_panics() {
        let q = quotas(Some(TEN_PER_SECOND), None);
        let a = ip("192.0.2.1");
        for _ in 0..5 {
            q.admit(a, ClientId(0), 10_000).unwrap();
        }
        assert!(q.admit(a, ClientId(0), 0).is_err());
        assert_eq!(q.admit(a, ClientId(0), 10_100), Ok(()));
    }

    #[test]
    fn ipv6_hosts_of_one_64_share_a_bucket() {
        assert_eq!(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:192.0.2.1"), ip("192.0.2.1"));
        assert_eq!(ip("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn full_buckets_are_forgotten_by_the_sweep() {
        let q = quotas(Some(TEN_PER_SECOND), None);
        q.admit(ip("192.0.2.1"), ClientId(0), 0).unwrap();
        for _ in 0..5 {
            q.admit(ip("192.0.2.2"), ClientId(0), 0).unwrap();
        }
        q.admit(ip("192.0.2.2"), ClientId(0), 950).unwrap();
        assert_eq!(q.sources(), 2);
        assert_eq!(q.sweep(999, usize::MAX), 0);
        // 192.0.2.1 was full again at 100 ms; 192.0.2.2 is full only at 1,050 ms, so it
        // is filed again.
        q.sweep(1_000, usize::MAX);
        assert_eq!(q.sources(), 1);
        q.sweep(2_000, usize::MAX);
        assert_eq!(q.sources(), 0);
    }

    #[test]
    fn a_full_table_stops_tracking_new_sources_rather_than_refusing_them() {
        let q = Quotas::new(QuotaPolicy {
            per_source: Some(TEN_PER_SECOND),
            per_client: None,
            max_sources: 1,
        });
        q.admit(ip("192.0.2.1"), ClientId(0), 0).unwrap();
        for _ in 0..20 {
            assert_eq!(q.admit(ip("192.0.2.2"), ClientId(0), 0), Ok(()));
        }
    }
}
