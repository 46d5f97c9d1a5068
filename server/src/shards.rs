//! Per-thread shards: state that every request writes (counters, expiry buckets) is
//! kept once per shard, each thread writing its own, so that no cache line is written
//! by every core.

use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;

/// Shards of per-thread state: enough that the worker threads of a large machine
/// rarely share one.
pub(crate) const COUNT: usize = 32;

/// A sharded map (dashmap, ahash): the store's sessions, tokens and the rest.
pub(crate) type Map<K, V> = DashMap<K, V, ahash::RandomState>;

/// Shards of a [`Map`]. A shard grows by copying itself whole under its write lock,
/// and the shards of a uniformly hashed map all grow at about the same count. With
/// dashmap's default (four shards per core: 8 on two cores) each held an eighth of the
/// sessions, and a 1M-device fleet saw the server stall for 66 to 78 ms as the map
/// passed 458,752 and 917,504 sessions (README of `loadgen/`, "Scale"); with 256 each
/// copy is a 256th of the map.
pub(crate) const MAP_SHARDS: usize = 256;

/// An empty [`Map`] of [`MAP_SHARDS`] shards.
pub(crate) fn map<K: Eq + Hash, V>() -> Map<K, V> {
    DashMap::with_hasher_and_shard_amount(ahash::RandomState::new(), MAP_SHARDS)
}

/// The shard this thread writes into: threads are dealt shards round robin on their
/// first use.
pub(crate) fn home() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static HOME: usize = NEXT.fetch_add(1, Ordering::Relaxed) % COUNT;
    }
    HOME.with(|h| *h)
}

/// A value alone on its cache lines (128 bytes: two lines, since processors fetch
/// adjacent lines in pairs), so that two cores writing neighbouring shards do not
/// contend for one line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

/// A count kept against a cap, written mostly on the writing thread's own cache line: a
/// thread reserves up to `batch` units of the cap at a time from the shared count and
/// spends them from an allowance of its own, so that issuing on many cores writes the
/// shared line once a batch rather than once a session. Exact when `batch` is 1 (small
/// caps); otherwise a thread that finds the cap reserved takes what others have left
/// unspent before it gives up, so the cap is never exceeded and never refused early.
#[derive(Debug)]
pub(crate) struct CappedCount {
    cap: usize,
    batch: usize,
    /// Units reserved from the cap: those held, plus the threads' unspent allowances.
    reserved: AtomicUsize,
    allowances: Box<[Padded<AtomicUsize>]>,
}

impl CappedCount {
    /// A count of at most `cap`; the batch grows with the cap (1 below 4,096, at most 64).
    pub(crate) fn new(cap: usize) -> CappedCount {
        CappedCount {
            cap,
            batch: (cap / 4_096).clamp(1, 64),
            reserved: AtomicUsize::new(0),
            allowances: (0..COUNT).map(|_| Padded::default()).collect(),
        }
    }

    /// The cap.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Counts one more, if the cap allows.
    pub(crate) fn acquire(&self) -> bool {
        let mine = &self.allowances[home()].0;
        if take_one(mine) {
            return true;
        }
        let mut reserved = self.reserved.load(Ordering::Relaxed);
        loop {
            let room = self.cap.saturating_sub(reserved);
            if room == 0 {
                // Reserved to the cap: what other threads have not spent is still free.
                return self.allowances.iter().any(|a| take_one(&a.0));
            }
            let grab = room.min(self.batch);
            match self.reserved.compare_exchange_weak(
                reserved,
                reserved + grab,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if grab > 1 {
                        mine.fetch_add(grab - 1, Ordering::Relaxed);
                    }
                    return true;
                }
                Err(now) => reserved = now,
            }
        }
    }

    /// Counts one fewer. It goes to this thread's allowance, and what exceeds two
    /// batches there goes back to the shared count.
    pub(crate) fn release(&self) {
        if self.batch == 1 {
            self.reserved.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let mine = &self.allowances[home()].0;
        let now = mine.fetch_add(1, Ordering::Relaxed) + 1;
        if now > 2 * self.batch
            && mine
                .compare_exchange(now, now - self.batch, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.reserved.fetch_sub(self.batch, Ordering::AcqRel);
        }
    }

    /// How many are counted: reserved, less what the threads hold unspent. Exact when
    /// nothing is acquired or released meanwhile.
    pub(crate) fn held(&self) -> usize {
        let unspent: usize = self
            .allowances
            .iter()
            .map(|a| a.0.load(Ordering::Relaxed))
            .sum();
        self.reserved
            .load(Ordering::Acquire)
            .saturating_sub(unspent)
    }
}

/// Takes one unit from an allowance, if it has one.
fn take_one(allowance: &AtomicUsize) -> bool {
    let mut left = allowance.load(Ordering::Relaxed);
    while left > 0 {
        match allowance.compare_exchange_weak(left, left - 1, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => return true,
            Err(now) => left = now,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_cap_is_exact() {
        let c = CappedCount::new(2);
        assert!(c.acquire() && c.acquire());
        assert!(!c.acquire());
        c.release();
        assert_eq!(c.held(), 1);
        assert!(c.acquire());
        assert!(!c.acquire());
    }

    #[test]
    fn threads_racing_for_a_large_cap_get_exactly_the_cap() {
        let cap = 100_000;
        let c = CappedCount::new(cap);
        let got: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| (0..cap).take_while(|_| c.acquire()).count()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(got, cap, "never more than the cap, and never refused early");
        assert_eq!(c.held(), cap);
        assert!(!c.acquire());
        // Released on other threads (the sweeper's), the units come back to anyone.
        std::thread::scope(|s| {
            s.spawn(|| (0..1_000).for_each(|_| c.release()));
        });
        assert_eq!(c.held(), cap - 1_000);
        let again = std::thread::scope(|s| {
            s.spawn(|| (0..2_000).take_while(|_| c.acquire()).count())
                .join()
                .unwrap()
        });
        assert_eq!(again, 1_000);
    }
}
