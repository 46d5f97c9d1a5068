//! The memory store's guess limits ([`crate::storage::rate_limit`]): every open window
//! in one map, filed in the project's `ExpiryWheel` so that the sweep forgets closed
//! windows without scanning the open ones.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::Millis;
use crate::expiry::ExpiryWheel;
use crate::storage::rate_limit::{Key, Throttled, Ticket, Window, MAX_TRACKED};

/// The windows of every subject with failures, in memory.
pub struct RateLimiter {
    // std's Mutex: the critical sections are map operations that never await, and
    // only failed guesses write.
    windows: Mutex<HashMap<Key, Window>>,
    wheel: ExpiryWheel<Key>,
    max_tracked: usize,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(MAX_TRACKED)
    }
}

impl RateLimiter {
    /// A limiter tracking at most `max_tracked` subjects.
    pub fn new(max_tracked: usize) -> RateLimiter {
        RateLimiter {
            windows: Mutex::new(HashMap::new()),
            wheel: ExpiryWheel::new(),
            max_tracked,
        }
    }

    /// Counts an attempt against each of `keys`, unless one of them is over its limit:
    /// then nothing is counted, and the longest wait is reported. Check and count are
    /// one critical section, so of any number of parallel attempts at most the limit
    /// get a ticket. The attempt stays counted unless its ticket is refunded.
    pub fn try_acquire<const N: usize>(
        &self,
        keys: [Key; N],
        now: Millis,
    ) -> Result<Ticket<N>, Throttled> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let mut worst: Option<Throttled> = None;
        let mut untracked = 0;
        for key in keys {
            let window = windows.get(&key).copied();
            let mut retry_after_ms = Window::wait(window, &key, now);
            if window.is_none() {
                untracked += 1;
                // Failing closed: see MAX_TRACKED.
                if windows.len() + untracked > self.max_tracked {
                    retry_after_ms = key.limit().window_ms;
                }
            }
            if retry_after_ms > 0 && worst.is_none_or(|w| w.retry_after_ms < retry_after_ms) {
                worst = Some(Throttled {
                    key,
                    retry_after_ms,
                });
            }
        }
        if let Some(t) = worst {
            return Err(t);
        }
        let opened = keys.map(|key| {
            let w = Window::count(windows.get(&key).copied(), &key, now);
            if w.failures == 1 {
                self.wheel.schedule(w.opened + key.limit().window_ms, key);
            }
            windows.insert(key, w);
            w.opened
        });
        Ok(Ticket { keys, opened })
    }

    /// The attempt of `ticket` succeeded, or was never evaluated: it is not counted
    /// after all.
    pub fn refund<const N: usize>(&self, ticket: Ticket<N>) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        for (key, opened) in ticket.keys.iter().zip(ticket.opened) {
            if let Some(w) = windows.get(key).copied() {
                match Window::refund(w, opened) {
                    Some(w) => windows.insert(*key, w),
                    None => windows.remove(key),
                };
            }
        }
    }

    /// Forgets `key`'s failures (a successful sign-in clears its username's count).
    pub fn forget(&self, key: &Key) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.remove(key);
    }

    /// Drops closed windows.
    pub fn sweep(&self, now: Millis) {
        let due = self.wheel.take_due(now, usize::MAX);
        if due.is_empty() {
            return;
        }
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        for key in due {
            if windows
                .get(&key)
                .is_some_and(|w| now >= w.opened + key.limit().window_ms)
            {
                windows.remove(&key);
            }
        }
    }

    /// Subjects tracked.
    pub fn len(&self) -> usize {
        self.windows.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no subject is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ids::UserId;
    use crate::storage::rate_limit::{Attempt, Subject, CODE_LIMIT_PER_ACCOUNT};

    const TEN_MINUTES: Millis = 10 * 60 * 1000;

    fn account(n: u32) -> Key {
        Key {
            attempt: Attempt::UserCode,
            subject: Subject::Account(UserId(n)),
        }
    }

    /// Counts `n` failed attempts against `key` at `now`.
    fn fail(l: &RateLimiter, key: Key, n: u32, now: Millis) {
        for _ in 0..n {
            drop(l.try_acquire([key], now).expect("not throttled"));
        }
    }

    #[test]
    fn the_limit_holds_for_the_window_then_lifts() {
        let l = RateLimiter::default();
        let k = account(1);
        let max = CODE_LIMIT_PER_ACCOUNT.max_failures;
        for i in 0..max {
            drop(l.try_acquire([k], i.into()).unwrap());
        }
        let refused = l.try_acquire([k], 100).err().unwrap();
        assert_eq!(refused.key, k);
        assert_eq!(refused.retry_after_ms, TEN_MINUTES - 100);
        // Another account is not affected.
        assert!(l.try_acquire([account(2)], 100).is_ok());
        assert!(l.try_acquire([k], TEN_MINUTES).is_ok());
        l.sweep(2 * TEN_MINUTES);
        assert!(l.is_empty());
    }

    #[test]
    fn the_longest_wait_is_reported_and_a_refused_attempt_counts_nowhere() {
        let l = RateLimiter::default();
        let ip = Key {
            attempt: Attempt::UserCode,
            subject: Subject::ip("192.0.2.1".parse().unwrap()),
        };
        for t in 0..20 {
            fail(&l, ip, 1, t * 1000);
        }
        fail(&l, account(1), 10, 5_000);
        let refused = l.try_acquire([ip, account(2)], 30_000).err().unwrap();
        assert_eq!(refused.key, ip);
        // account(2) was not charged for the refused attempt.
        assert_eq!(l.len(), 2);
        let refused = l.try_acquire([ip, account(1)], 30_000).err().unwrap();
        assert_eq!(refused.key, account(1));
    }

    #[test]
    fn parallel_attempts_get_at_most_the_limit_of_tickets() {
        let l = RateLimiter::default();
        let k = account(1);
        let granted = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..64 {
                        if let Ok(ticket) = l.try_acquire([k], 0) {
                            granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            drop(ticket);
                        }
                    }
                });
            }
        });
        assert_eq!(granted.into_inner(), CODE_LIMIT_PER_ACCOUNT.max_failures);
    }

    #[test]
    fn a_refunded_attempt_is_not_counted() {
        let l = RateLimiter::default();
        let k = account(1);
        for _ in 0..100 {
            l.refund(l.try_acquire([k], 0).unwrap());
        }
        assert!(l.is_empty());
        fail(&l, k, CODE_LIMIT_PER_ACCOUNT.max_failures - 1, 0);
        let last = l.try_acquire([k], 1).unwrap();
        assert!(l.try_acquire([k], 1).is_err());
        l.refund(last);
        assert!(l.try_acquire([k], 1).is_ok());
    }

    #[test]
    fn a_refund_after_the_window_closed_leaves_the_new_window_alone() {
        let l = RateLimiter::default();
        let k = account(1);
        let old = l.try_acquire([k], 0).unwrap();
        fail(&l, k, 3, TEN_MINUTES);
        l.refund(old);
        fail(&l, k, CODE_LIMIT_PER_ACCOUNT.max_failures - 3, TEN_MINUTES);
        assert!(l.try_acquire([k], TEN_MINUTES).is_err());
    }

    #[test]
    fn ipv6_hosts_in_one_64_share_a_limit_and_mapped_v4_is_v4() {
        let a = Subject::ip("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Subject::ip("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = Subject::ip("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            Subject::ip("::ffff:192.0.2.1".parse().unwrap()),
            Subject::ip("192.0.2.1".parse().unwrap())
        );
    }

    #[test]
    fn a_full_limiter_refuses_new_subjects() {
        let l = RateLimiter::new(1);
        fail(&l, account(1), 1, 0);
        assert!(l.try_acquire([account(1)], 0).is_ok());
        assert!(l.try_acquire([account(2)], 0).is_err());
    }
}
