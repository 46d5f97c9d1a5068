//! Expiry by time bucket, so that removing what expired costs in proportion to what
//! expired, not to what is live.
//!
//! Keys are filed under the second they become removable. A sweep takes the buckets
//! whose second is over and hands back their keys; the caller re-checks each against
//! its record, since a record may have been dropped or extended in the meantime.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::clock::Millis;

#[derive(Debug, Default)]
pub struct ExpiryWheel<K> {
    // std's Mutex, not tokio's: the critical section is a map operation and never awaits.
    buckets: Mutex<BTreeMap<u64, Vec<K>>>,
}

impl<K> ExpiryWheel<K> {
    pub fn new() -> ExpiryWheel<K> {
        ExpiryWheel {
            buckets: Mutex::new(BTreeMap::new()),
        }
    }

    /// Files `key` to come due once `at` has passed.
    pub fn schedule(&self, at: Millis, key: K) {
        // Filed under the second it is due by, rounded up: never taken early.
        let second = at.div_ceil(1000);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets.entry(second).or_default().push(key);
    }

    /// Takes every key filed for a time at or before `now`, at most one second late.
    pub fn take_due(&self, now: Millis) -> Vec<K> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        // Bucket b holds times in (b - 1 s, b]; it is due once b * 1000 <= now.
        let first_not_due = now / 1000 + 1;
        let not_due = buckets.split_off(&first_not_due);
        let due = std::mem::replace(&mut *buckets, not_due);
        drop(buckets);
        due.into_values().flatten().collect()
    }

    /// Keys filed and not yet taken.
    pub fn len(&self) -> usize {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_due_never_early_and_at_most_a_second_late() {
        let wheel = ExpiryWheel::new();
        wheel.schedule(1_500, 'a');
        wheel.schedule(2_000, 'b');
        wheel.schedule(2_001, 'c');
        wheel.schedule(10_000, 'd');
        assert!(wheel.take_due(1_999).is_empty());
        let mut due = wheel.take_due(2_000);
        due.sort();
        assert_eq!(due, ['a', 'b']);
        assert_eq!(wheel.take_due(2_999), Vec::<char>::new());
        assert_eq!(wheel.take_due(3_000), ['c']);
        assert_eq!(wheel.len(), 1);
        assert_eq!(wheel.take_due(u64::MAX), ['d']);
        assert!(wheel.is_empty());
    }
}
