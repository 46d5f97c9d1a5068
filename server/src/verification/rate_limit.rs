//! Rate limits on guessing: wrong user codes (RFC 8628 §5.1, checklist UI-11) and
//! wrong passwords, counted per client IP and per account (or, for a sign-in from a
//! known browser, per browser).
//!
//! > it is recommended that the server rate-limit user code attempts.
//! > (RFC 8628 §5.1)
//!
//! Each subject gets a fixed window that opens at its first attempt; once it holds
//! `max_failures` attempts, further attempts are refused until the window closes.
//! An attempt is counted *before* it is evaluated, in the same critical section as
//! the check ([`RateLimiter::try_acquire`]), so parallel guesses cannot all pass the
//! check before any of them is counted; a success is refunded afterwards
//! ([`Store::refund`](crate::storage::Store::refund)), so only failures stay counted. Windows are filed in the
//! project's `ExpiryWheel`, so the sweep forgets closed windows without scanning
//! the open ones.
//!
//! The client IP is the request's source (`http/forwarded.rs`): the TCP peer address,
//! or, from a reverse proxy named in `[limits] trusted_proxies`, the address it
//! forwards. `X-Forwarded-For` from anyone else is not read: any client can write it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use hmac::Mac;

use crate::clock::Millis;
use crate::expiry::ExpiryWheel;
use crate::protocol::ids::UserId;
use crate::quota::Source;
use crate::storage::shared_secret::SharedSecret;

use super::csrf::Seal;

/// A threshold: at most `max_failures` failed attempts in `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Failed attempts allowed in the window.
    pub max_failures: u32,
    /// The window's length.
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

/// Wrong passwords from one known browser (`known_browser.rs`) in ten minutes: what a
/// sign-in from a browser where that username signed in before is held to, instead of
/// the username's and the address's limits, which a stranger's guesses can fill.
pub const SIGN_IN_LIMIT_PER_KNOWN_BROWSER: Limit = Limit {
    max_failures: 10,
    window_ms: TEN_MINUTES,
};

/// Sign-ins of one account in ten minutes, successful ones: a success costs no guess
/// but one argon2 verification, and a person signs in a few times an hour (a sign-in
/// lasts one), so only a script looping on a password it holds meets this. Failures
/// are not counted here (the username's and the address's limits count them), so
/// strangers cannot fill it.
pub const SIGN_IN_LIMIT_PER_ACCOUNT: Limit = Limit {
    max_failures: 20,
    window_ms: TEN_MINUTES,
};

/// RFC 7591 registration requests from one IP address (an IPv6 /64) in ten minutes,
/// whatever came of them: a registrar enrolling devices one by one is never stopped,
/// and a leaked initial access token in a loop cannot use up the 49,152 client ids a
/// store gives (never given twice: `accounts/registration.rs`) in seconds.
pub const REGISTRATION_LIMIT_PER_IP: Limit = Limit {
    max_failures: 60,
    window_ms: TEN_MINUTES,
};

/// Subjects tracked at once. When full, a subject not yet tracked is refused until the
/// sweep frees room: failing closed, since failing open would let an attacker who
/// fills the map guess without limit.
pub const MAX_TRACKED: usize = 1_000_000;

/// What is being guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attempt {
    /// Typing a user code (RFC 8628 §5.1).
    UserCode,
    /// Signing in.
    SignIn,
    /// Registering a client (RFC 7591), counted whether it succeeds or not.
    Registration,
}

/// Who is guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// The client's address; IPv6 reduced to its /64, the block one host usually has.
    Ip(IpAddr),
    /// A signed-in person.
    Account(UserId),
    /// A username typed at sign-in, as [`UsernameHasher`] keeps it.
    Username(u64),
    /// A browser where the username it types signed in before, by its known-browser
    /// cookie's nonce.
    KnownBrowser(u64),
}

/// A key of the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// What is attempted.
    pub attempt: Attempt,
    /// Who attempts it.
    pub subject: Subject,
}

impl Key {
    /// The limit this key is held to.
    pub fn limit(&self) -> Limit {
        match (self.attempt, self.subject) {
            (Attempt::UserCode, Subject::Ip(_)) => CODE_LIMIT_PER_IP,
            (Attempt::UserCode, _) => CODE_LIMIT_PER_ACCOUNT,
            (Attempt::SignIn, Subject::Ip(_)) => SIGN_IN_LIMIT_PER_IP,
            (Attempt::SignIn, Subject::KnownBrowser(_)) => SIGN_IN_LIMIT_PER_KNOWN_BROWSER,
            (Attempt::SignIn, Subject::Account(_)) => SIGN_IN_LIMIT_PER_ACCOUNT,
            (Attempt::SignIn, Subject::Username(_)) => SIGN_IN_LIMIT_PER_USERNAME,
            (Attempt::Registration, _) => REGISTRATION_LIMIT_PER_IP,
        }
    }
}

/// The attempt is refused: `key` is over its limit for `retry_after_ms` more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// The subject over its limit.
    pub key: Key,
    /// How long until it may try again.
    pub retry_after_ms: Millis,
}

/// An attempt counted against its keys by [`RateLimiter::try_acquire`] (or the shared
/// store's). Dropping it leaves the attempt counted, as a failure: a request that is
/// cancelled halfway (the client went away) costs its guess like any other.
#[must_use = "dropping a ticket counts the attempt as a failure; refund a success"]
#[derive(Debug)]
pub struct Ticket<const N: usize> {
    /// The keys it was counted against.
    pub(crate) keys: [Key; N],
    /// When each key's window opened, to refund only into the window that counted it.
    pub(crate) opened: [Millis; N],
}

/// One subject's failures in its current window: the rule every store applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) opened: Millis,
    pub(crate) failures: u32,
}

impl Window {
    /// How long `key`, whose window is `window`, must wait at `now`: 0 if it may try.
    pub(crate) fn wait(window: Option<Window>, key: &Key, now: Millis) -> Millis {
        let limit = key.limit();
        match window {
            Some(w) if now < w.opened + limit.window_ms && w.failures >= limit.max_failures => {
                (w.opened + limit.window_ms).saturating_sub(now)
            }
            _ => 0,
        }
    }

    /// `window` with one more failure counted at `now`, in a new window if it closed.
    pub(crate) fn count(window: Option<Window>, key: &Key, now: Millis) -> Window {
        let fresh = Window {
            opened: now,
            failures: 0,
        };
        let mut w = window
            .filter(|w| now < w.opened + key.limit().window_ms)
            .unwrap_or(fresh);
        w.failures += 1;
        w
    }

    /// `window` with a failure counted in the window opened at `opened` taken back;
    /// `None` when no failure is left. A window opened since is left alone.
    pub(crate) fn refund(window: Window, opened: Millis) -> Option<Window> {
        if window.opened != opened {
            return Some(window);
        }
        let failures = window.failures.saturating_sub(1);
        (failures > 0).then_some(Window { failures, ..window })
    }
}

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

/// Usernames as the limits keep them: 64 bits of an HMAC-SHA256 keyed by the store's
/// shared secret, so that what is kept is small whatever was typed, and the same on
/// every instance of one store whatever its build or CPU (a hash whose output may
/// change with either would split one username's window across instances, each
/// allowing its own guesses).
pub struct UsernameHasher(Seal);

/// What the username windows' HMAC is for (see [`Seal::keyed`]).
const USERNAME_WINDOW: &[u8] = b"deviceflow sign-in window of a username\0";

impl UsernameHasher {
    /// A hasher keyed by the store's shared secret.
    pub fn new(secret: &SharedSecret) -> UsernameHasher {
        UsernameHasher(Seal::new(secret))
    }

    /// The subject for a username as typed.
    pub fn subject(&self, typed: &str) -> Subject {
        let mut mac = self.0.keyed(USERNAME_WINDOW);
        mac.update(typed.as_bytes());
        let digest = mac.finalize().into_bytes();
        Subject::Username(u64::from_le_bytes(
            digest[..8].try_into().expect("8 of 32 bytes"),
        ))
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

    /// The subject for a client address.
    pub fn ip(addr: IpAddr) -> Subject {
        Subject::Ip(Source::of(addr).ip())
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

    fn account(n: u32) -> Key {
        Key {
            attempt: Attempt::UserCode,
            subject: Subject::Account(UserId(n)),
        }
    }

    #[test]
    fn a_username_is_kept_as_the_same_hmac_by_every_build() {
        // HMAC-SHA256(key, label || "alice"), its first 8 bytes little-endian: Python's
        // hmac module gives the same, and so must every instance of one store.
        let hasher = UsernameHasher::new(&SharedSecret::new([7; 32]));
        assert_eq!(
            hasher.subject("alice"),
            Subject::Username(0x0787_47f9_86b7_c219)
        );
        assert_ne!(hasher.subject("Alice"), hasher.subject("alice"));
        assert_ne!(
            UsernameHasher::new(&SharedSecret::new([8; 32])).subject("alice"),
            hasher.subject("alice")
        );
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
            subject: RateLimiter::ip("192.0.2.1".parse().unwrap()),
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
        fail(&l, account(1), 1, 0);
        assert!(l.try_acquire([account(1)], 0).is_ok());
        assert!(l.try_acquire([account(2)], 0).is_err());
    }
}
