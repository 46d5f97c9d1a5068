//! The person's side's state, kept in the [`App`](crate::app::state::App): the
//! session cookie, the password hashing pool, and the keys (from the store's shared
//! secret) of the sign-in form's CSRF cookie, of known-browser cookies and of username
//! hashes. Web sessions and the guess limits are the store's. The pages (the parent
//! module) run on it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::accounts::users::Users;
use crate::app::metrics::Throttle;
use crate::audit::Failures;
use crate::config::Settings;
use crate::http::paths::pages as paths;
use crate::protocol::ids::UserId;
use crate::storage::shared_secret::SharedSecret;

use super::csrf::SignInCsrf;
use super::hash_pool::{Asker, Busy, HashPool};
use super::known_browser::KnownBrowsers;
use super::origin::SameOrigin;
use super::rate_limit::UsernameHasher;
use super::web_session::CookiePolicy;
use crate::accounts::password;
use crate::storage::rate_limit::Subject;

/// The state of the person's side.
pub struct Verification {
    /// How the guess limits key a typed username.
    pub usernames: UsernameHasher,
    /// The session cookie's name and attributes.
    pub cookie: CookiePolicy,
    /// The cookie that lets a browser where a person signed in sign in again while
    /// strangers' guesses hold their username back.
    pub known_browsers: KnownBrowsers,
    /// Where passwords are verified: a bounded pool, not tokio's blocking threads.
    pub hashing: HashPool,
    /// The sources (addresses, IPv6 by /64) with a verification in the pool: one at a
    /// time each, so that one source signing in over and over, even correctly (a
    /// success costs no try), takes one thread, not all of them.
    hashing_sources: Arc<Mutex<HashSet<Subject>>>,
    /// Refusals to verify, each kind said in the audit log at most once a second
    /// ([`Verification::refused`]).
    refusals: Mutex<[Failures; 2]>,
    /// The sign-in form's stateless CSRF check.
    pub(super) sign_in_csrf: SignInCsrf,
    /// A hash to verify against when the username is unknown, with the cost of the
    /// first configured user's hash. `None` when no user has a password: then nobody
    /// can sign in, and no answer takes longer than another.
    pub(super) dummy_hash: Option<String>,
    /// The issuer's host, shown on every page.
    pub(super) site: String,
    /// The issuer's path (`/auth` for `https://h/auth`, `""` for none), which every
    /// link, form and redirect of the pages starts with.
    pub(super) base: String,
    /// The issuer's origin, which our own forms are sent from.
    pub(super) origin: SameOrigin,
    pub(super) verification_uri: String,
}

impl Verification {
    /// Made once per app.
    pub fn new(settings: &Settings, issuer: &str, secret: &SharedSecret) -> Verification {
        let dummy_hash = settings
            .users
            .iter()
            .find_map(|u| u.password_hash.as_deref())
            .map(password::dummy_like);
        let site = issuer
            .split_once("://")
            .map_or(issuer, |(_, rest)| rest)
            .to_owned();
        Verification {
            usernames: UsernameHasher::new(secret),
            cookie: CookiePolicy::for_issuer(issuer),
            known_browsers: KnownBrowsers::new(secret, issuer),
            hashing: HashPool::new(settings.password_hash_workers, settings.password_hash_queue),
            hashing_sources: Arc::default(),
            refusals: Mutex::default(),
            sign_in_csrf: SignInCsrf::new(secret),
            dummy_hash,
            site,
            base: crate::http::paths::issuer_path(issuer).to_owned(),
            origin: SameOrigin::of_issuer(issuer, &settings.page_hosts),
            verification_uri: format!("{issuer}{}", paths::DEVICE),
        }
    }

    /// The user whose password this is, or `None`; refused at once, with nothing
    /// verified, when `source` has a verification in the pool already or the pool is
    /// full. An unknown username, or a user without a password, is verified against
    /// the dummy hash: every refusal costs one argon2 verification, like a wrong
    /// password.
    pub(super) async fn authenticate(
        &self,
        users: &Users,
        username: &str,
        password: &str,
        source: Subject,
        asker: Asker,
    ) -> Result<Option<UserId>, Unverified> {
        let Some(dummy) = &self.dummy_hash else {
            return Ok(None);
        };
        let user = users.by_username(username);
        let real = user.and_then(|u| u.password_hash.as_deref());
        let turn = Turn::take(&self.hashing_sources, source).ok_or(Unverified::SourceBusy)?;
        let verifying = self
            .hashing
            .verify(
                real.unwrap_or(dummy).to_owned(),
                password.to_owned(),
                turn,
                asker,
            )
            .map_err(|Busy| Unverified::PoolFull)?;
        let matched = verifying.outcome().await;
        Ok(user.filter(|_| matched && real.is_some()).map(|u| u.id))
    }
}

impl Verification {
    /// Counts a refusal to verify at `now`: `Some` with how many refusals of that kind
    /// the audit line to write now stands for, `None` when it is only counted.
    pub(super) fn refused(&self, why: Unverified, now: Instant) -> Option<u64> {
        let mut said = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        said[why as usize].failed_count(now)
    }
}

/// Why a password was not verified (nothing was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unverified {
    /// The source has a verification in the pool already.
    SourceBusy = 0,
    /// Every hashing thread and queue slot is taken.
    PoolFull = 1,
}

impl Unverified {
    /// The limit, as the audit log and `/metrics` name it.
    pub(super) fn limit(self) -> Throttle {
        match self {
            Unverified::SourceBusy => Throttle::PasswordHashPerSource,
            Unverified::PoolFull => Throttle::PasswordHashPool,
        }
    }
}

/// A source's one verification in the pool, given back when the job ends (not when
/// the request does: a client that hangs up and signs in again would otherwise start
/// a verification per connection).
struct Turn {
    sources: Arc<Mutex<HashSet<Subject>>>,
    source: Subject,
}

impl Turn {
    fn take(sources: &Arc<Mutex<HashSet<Subject>>>, source: Subject) -> Option<Turn> {
        let taken = sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(source);
        taken.then(|| Turn {
            sources: Arc::clone(sources),
            source,
        })
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.source);
    }
}
