//! Expiry by time bucket, so that removing what expired costs in proportion to what
//! expired, not to what is live.
//!
//! Keys are filed under the second they become removable. A sweep takes due keys in
//! slices of a bounded size and hands them back; the caller re-checks each against its
//! record, since a record may have been dropped or extended in the meantime.
//!
//! The buckets are sharded: each thread files into the shard it was given on its first
//! use, so issuing on many cores takes no lock that every core takes, and a sweep
//! slice holds one shard's lock for one bucket split at a time.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::clock::Millis;
use crate::shards::{self, Padded};

/// One shard's buckets. std's Mutex, not tokio's: the critical section is a map
/// operation and never awaits.
type Buckets<K> = Mutex<BTreeMap<u64, Vec<K>>>;

#[derive(Debug)]
pub(crate) struct ExpiryWheel<K> {
    shards: Box<[Padded<Buckets<K>>]>,
}

impl<K> Default for ExpiryWheel<K> {
    fn default() -> Self {
        ExpiryWheel::new()
    }
}

impl<K> ExpiryWheel<K> {
    pub(crate) fn new() -> ExpiryWheel<K> {
        ExpiryWheel {
            shards: (0..shards::COUNT)
                .map(|_| Padded(Mutex::new(BTreeMap::new())))
                .collect(),
        }
    }

    /// Files `key` to come due once `at` has passed.
    pub(crate) fn schedule(&self, at: Millis, key: K) {
        // Filed under the second it is due by, rounded up: never taken early.
        let second = at.div_ceil(1000);
        let mut buckets = self.shards[shards::home()]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        buckets.entry(second).or_default().push(key);
    }

    /// Takes at most `max` keys filed for a time at or before `now`, at most one second
    /// late; the rest stay for the next call. Each shard's lock is held for one bucket
    /// split, never for a whole sweep.
    pub(crate) fn take_due(&self, now: Millis, max: usize) -> Vec<K> {
        // Bucket b holds times in (b - 1 s, b]; it is due once b * 1000 <= now.
        let last_due = now / 1000;
        let mut due = Vec::new();
        for shard in self.shards.iter() {
            while due.len() < max {
                let mut buckets = shard.0.lock().unwrap_or_else(|e| e.into_inner());
                let Some(mut bucket) = buckets.first_entry() else {
                    break;
                };
                if *bucket.key() > last_due {
                    break;
                }
                let room = max - due.len();
                let keys = bucket.get_mut();
                if keys.len() > room {
                    let rest = keys.len() - room;
                    due.extend(keys.drain(rest..));
                } else {
                    due.append(&mut bucket.remove());
                }
            }
        }
        due
    }

    /// Keys filed and not yet taken.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let buckets = s.0.lock().unwrap_or_else(|e| e.into_inner());
                buckets.values().map(Vec::len).sum::<usize>()
            })
            .sum()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<char>) -> Vec<char> {
        v.sort();
        v
    }

    #[test]
    fn keys_come_due_never_early_and_at_most_a_second_late() {
        let wheel = ExpiryWheel::new();
        wheel.schedule(1_500, 'a');
        wheel.schedule(2_000, 'b');
        wheel.schedule(2_001, 'c');
        wheel.schedule(10_000, 'd');
        assert!(wheel.take_due(1_999, usize::MAX).is_empty());
        assert_eq!(sorted(wheel.take_due(2_000, usize::MAX)), ['a', 'b']);
        assert_eq!(wheel.take_due(2_999, usize::MAX), Vec::<char>::new());
        assert_eq!(wheel.take_due(3_000, usize::MAX), ['c']);
        assert_eq!(wheel.len(), 1);
        assert_eq!(wheel.take_due(u64::MAX, usize::MAX), ['d']);
        assert!(wheel.is_empty());
    }

    #[test]
    fn a_sweep_takes_bounded_slices_until_nothing_is_due() {
        // A million sessions created in 0.4 s fall due in one tick: the sweep must take
        // them a slice at a time, never all in one call.
        let wheel = ExpiryWheel::new();
        std::thread::scope(|s| {
            for t in 0..4 {
                let wheel = &wheel;
                s.spawn(move || {
                    for i in 0..25_000u32 {
                        wheel.schedule(1_000 + u64::from(i % 3), t * 25_000 + i);
                    }
                });
            }
        });
        wheel.schedule(60_000, u32::MAX);
        let mut taken = Vec::new();
        loop {
            let slice = wheel.take_due(5_000, 4_096);
            assert!(slice.len() <= 4_096);
            if slice.is_empty() {
                break;
            }
            taken.extend(slice);
        }
        taken.sort_unstable();
        assert_eq!(taken, (0..100_000).collect::<Vec<u32>>());
        assert_eq!(wheel.len(), 1, "what is not due stays");
    }

    #[test]
    fn threads_file_into_their_own_shards() {
        // No lock every core takes: four threads filing at once use four shards.
        let wheel = ExpiryWheel::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| wheel.schedule(1_000, 0u8));
            }
        });
        let used = wheel
            .shards
            .iter()
            .filter(|s| !s.0.lock().unwrap().is_empty())
            .count();
        assert!(used > 1, "{used} shard(s) for four threads");
    }
}
