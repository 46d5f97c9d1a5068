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
//! the check (the memory store's `RateLimiter::try_acquire`, the Redis store's
//! script), so parallel guesses cannot all pass the check before any of them is
//! counted; a success is refunded afterwards
//! ([`Store::refund`](crate::storage::Store::refund)), so only failures stay counted.
//! Every store applies the rules of this module (`Window`); the memory store files
//! its windows in the project's `ExpiryWheel` (`storage/memory/rate_limit.rs`).
//!
//! The client IP is the request's source (`http/forwarded.rs`): the TCP peer address,
//! or, from a reverse proxy named in `[limits] trusted_proxies`, the address it
//! forwards. `X-Forwarded-For` from anyone else is not read: any client can write it.

use std::net::IpAddr;

use crate::clock::Millis;
use crate::protocol::ids::UserId;
use crate::quota::Source;

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
    /// A username typed at sign-in, as `verification/rate_limit.rs`'s
    /// `UsernameHasher` keeps it.
    Username(u64),
    /// A browser where the username it types signed in before, by its known-browser
    /// cookie's nonce.
    KnownBrowser(u64),
}

impl Subject {
    /// The subject for a client address.
    pub fn ip(addr: IpAddr) -> Subject {
        Subject::Ip(Source::of(addr).ip())
    }
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

/// An attempt counted against its keys by the store
/// ([`Store::try_acquire`](crate::storage::Store::try_acquire)). Dropping it leaves the attempt counted, as a failure: a request that is
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
