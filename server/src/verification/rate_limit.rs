//! Rate limits on guessing: wrong user codes (RFC 8628 §5.1, checklist UI-11) and
//! wrong passwords, counted per client IP and per account.
//!
//! > it is recommended that the server rate-limit user code attempts.
//! > (RFC 8628 §5.1)
//!
//! Each subject gets a fixed window that opens at its first failure; once it holds
//! `max_failures` failures, further attempts are refused until the window closes.
//! Successes are not counted. Windows are filed in the project's [`ExpiryWheel`], so
//! the sweep forgets closed windows without scanning the open ones.
//!
//! The client IP is the TCP peer address. Behind a reverse proxy every request has the
//! proxy's address, and the per-IP limit then applies to everyone at once: this server
//! does not trust `X-Forwarded-For`, which any client can write.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

use crate::clock::Millis;
use crate::expiry::ExpiryWheel;
use crate::users::UserId;

/// A threshold: at most `max_failures` failed attempts in `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max_failures: u32,
    pub window_ms: Millis,
}

const TEN_MINUTES: Millis = 10 * 60 * 1000;

/// Wrong user codes one signed-in person may enter in ten minutes. A person who
/// mistypes a few times is never stopped; a guesser gets 10 tries out of 2.56e10 codes.
pub const CODE_LIMIT_PER_ACCOUNT: Limit = Limit {
    max_failures: 10,
    window_ms: TEN_MINUTES,
};

/// Wrong user codes from one IP address (an IPv6 /64) in ten minutes, across
/// accounts: an attacker with many accounts still gets few guesses.
pub const CODE_LIMIT_PER_IP: Limit = Limit {
    max_failures: 20,
    window_ms: TEN_MINUTES,
};

/// Wrong passwords for one username in ten minutes (known or not, so the limit does
/// not reveal which usernames exist).
pub const SIGN_IN_LIMIT_PER_USERNAME: Limit = Limit {
    max_failures: 10,
    window_ms: TEN_MINUTES,
};

/// Wrong sign-ins from one IP address (an IPv6 /64) in ten minutes.
pub const SIGN_IN_LIMIT_PER_IP: Limit = Limit {
    max_failures: 20,
    window_ms: TEN_MINUTES,
};

/// Anonymous web sessions (sign-in forms) one IP address may open in ten minutes:
/// each is kept server-side for its CSRF token, so one client must not fill the map
/// that everyone's sign-ins need. Generous, for many people behind one NAT.
pub const NEW_SESSIONS_PER_IP: Limit = Limit {
    max_failures: 300,
    window_ms: TEN_MINUTES,
};

/// Subjects tracked at once. When full, a subject not yet tracked is refused until the
/// sweep frees room: failing closed, since failing open would let an attacker who
/// fills the map guess without limit.
pub const MAX_TRACKED: usize = 1_000_000;

/// What is being guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attempt {
    UserCode,
    SignIn,
    /// Not a guess, but counted the same way: opening an anonymous web session.
    NewSession,
}

/// Who is guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// The client's address; IPv6 reduced to its /64, the block one host usually has.
    Ip(IpAddr),
    /// A signed-in person.
    Account(UserId),
    /// A username typed at sign-in, hashed with a per-process key so that what is kept
    /// is small whatever was typed.
    Username(u64),
}

/// A key of the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub attempt: Attempt,
    pub subject: Subject,
}

impl Key {
    pub fn limit(&self) -> Limit {
        match (self.attempt, self.subject) {
            (Attempt::UserCode, Subject::Ip(_)) => CODE_LIMIT_PER_IP,
            (Attempt::UserCode, _) => CODE_LIMIT_PER_ACCOUNT,
            (Attempt::SignIn, Subject::Ip(_)) => SIGN_IN_LIMIT_PER_IP,
            (Attempt::SignIn, _) => SIGN_IN_LIMIT_PER_USERNAME,
            (Attempt::NewSession, _) => NEW_SESSIONS_PER_IP,
        }
    }
}

/// The attempt is refused: `key` is over its limit for `retry_after_ms` more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub key: Key,
    pub retry_after_ms: Millis,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    opened: Millis,
    failures: u32,
}

pub struct RateLimiter {
    // std's Mutex: the critical sections are map operations that never await, and
    // only failed guesses write.
    windows: Mutex<HashMap<Key, Window>>,
    wheel: ExpiryWheel<Key>,
    usernames: ahash::RandomState,
    max_tracked: usize,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(MAX_TRACKED)
    }
}

impl RateLimiter {
    pub fn new(max_tracked: usize) -> RateLimiter {
        RateLimiter {
            windows: Mutex::new(HashMap::new()),
            wheel: ExpiryWheel::new(),
            usernames: ahash::RandomState::new(),
            max_tracked,
        }
    }

    /// The subject for a client address.
    pub fn ip(addr: IpAddr) -> Subject {
        let addr = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        };
        Subject::Ip(addr)
    }

    /// The subject for a username as typed.
    pub fn username(&self, typed: &str) -> Subject {
        Subject::Username(self.usernames.hash_one(typed))
    }

    /// Refuses the attempt if any of `keys` is over its limit; the longest wait wins.
    pub fn check(&self, keys: &[Key], now: Millis) -> Result<(), Throttled> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let mut worst: Option<Throttled> = None;
        for &key in keys {
            let limit = key.limit();
            let retry_after_ms = match windows.get(&key) {
                Some(w) if w.failures >= limit.max_failures => {
                    (w.opened + limit.window_ms).saturating_sub(now)
                }
                None if windows.len() >= self.max_tracked => limit.window_ms,
                _ => 0,
            };
            if retry_after_ms > 0 && worst.is_none_or(|w| w.retry_after_ms < retry_after_ms) {
                worst = Some(Throttled {
                    key,
                    retry_after_ms,
                });
            }
        }
        worst.map_or(Ok(()), Err)
    }

    /// Counts a failed attempt against each of `keys`.
    pub fn record_failure(&self, keys: &[Key], now: Millis) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        for &key in keys {
            let window_ms = key.limit().window_ms;
            let w = windows.entry(key).or_insert(Window {
                opened: now,
                failures: 0,
            });
            if now >= w.opened + window_ms {
                *w = Window {
                    opened: now,
                    failures: 0,
                };
            }
            if w.failures == 0 {
                self.wheel.schedule(w.opened + window_ms, key);
            }
            w.failures += 1;
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

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(n: u32) -> Key {
        Key {
            attempt: Attempt::UserCode,
            subject: Subject::Account(UserId(n)),
        }
    }

    #[test]
    fn the_limit_holds_for_the_window_then_lifts() {
        let l = RateLimiter::default();
        let k = account(1);
        let max = CODE_LIMIT_PER_ACCOUNT.max_failures;
        for i in 0..max {
            assert_eq!(l.check(&[k], i.into()), Ok(()));
            l.record_failure(&[k], i.into());
        }
        let refused = l.check(&[k], 100).unwrap_err();
        assert_eq!(refused.key, k);
        assert_eq!(refused.retry_after_ms, TEN_MINUTES - 100);
        // Another account is not affected.
        assert_eq!(l.check(&[account(2)], 100), Ok(()));
        assert_eq!(l.check(&[k], TEN_MINUTES), Ok(()));
        l.sweep(TEN_MINUTES);
        assert!(l.is_empty());
    }

    #[test]
    fn the_longest_wait_is_reported() {
        let l = RateLimiter::default();
        let ip = Key {
            attempt: Attempt::UserCode,
            subject: RateLimiter::ip("192.0.2.1".parse().unwrap()),
        };
        for t in 0..20 {
            l.record_failure(&[ip], t * 1000);
        }
        for t in 0..10 {
            l.record_failure(&[account(1)], 5_000 + t);
        }
        let refused = l.check(&[ip, account(1)], 30_000).unwrap_err();
        assert_eq!(refused.key, account(1));
    }

    #[test]
    fn ipv6_hosts_in_one_64_share_a_limit_and_mapped_v4_is_v4() {
        let a = RateLimiter::ip("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = RateLimiter::ip("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = RateLimiter::ip("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            RateLimiter::ip("::ffff:192.0.2.1".parse().unwrap()),
            RateLimiter::ip("192.0.2.1".parse().unwrap())
        );
    }

    #[test]
    fn a_full_limiter_refuses_new_subjects() {
        let l = RateLimiter::new(1);
        l.record_failure(&[account(1)], 0);
        assert_eq!(l.check(&[account(1)], 0), Ok(()));
        assert!(l.check(&[account(2)], 0).is_err());
    }
}
