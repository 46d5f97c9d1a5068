//! The person's side's state, kept in the [`App`](crate::http::state::App): the
//! session cookie, the password hashing pool, and the keys (from the store's shared
//! secret) of the sign-in form's CSRF cookie and of username hashes. Web sessions and
//! the guess limits are the store's. The pages (the parent module) run on it.

use crate::accounts::users::{UserId, Users};
use crate::config::Settings;
use crate::http::paths::pages as paths;

use super::csrf::SignInCsrf;
use super::hash_pool::{Busy, HashPool};
use super::password;
use super::rate_limit::UsernameHasher;
use super::web_session::CookiePolicy;

/// The state of the person's side.
pub struct Verification {
    /// How the guess limits key a typed username.
    pub usernames: UsernameHasher,
    /// The session cookie's name and attributes.
    pub cookie: CookiePolicy,
    /// Where passwords are verified: a bounded pool, not tokio's blocking threads.
    pub hashing: HashPool,
    /// The sign-in form's stateless CSRF check.
    pub(super) sign_in_csrf: SignInCsrf,
    /// A hash to verify against when the username is unknown, with the cost of the
    /// first configured user's hash. `None` when no user has a password: then nobody
    /// can sign in, and no answer takes longer than another.
    pub(super) dummy_hash: Option<String>,
    /// The issuer's host, shown on every page.
    pub(super) site: String,
    pub(super) verification_uri: String,
}

impl Verification {
    /// Made once per app.
    pub fn new(settings: &Settings, issuer: &str, secret: &[u8; 32]) -> Verification {
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
            hashing: HashPool::new(settings.password_hash_workers, settings.password_hash_queue),
            sign_in_csrf: SignInCsrf::new(secret),
            dummy_hash,
            site,
            verification_uri: format!("{issuer}{}", paths::DEVICE),
        }
    }

    /// The user whose password this is, or `None`; `Err(Busy)` at once, with nothing
    /// verified, when the hashing pool is full. An unknown username, or a user
    /// without a password, is verified against the dummy hash: every refusal costs
    /// one argon2 verification, like a wrong password.
    pub(super) async fn authenticate(
        &self,
        users: &Users,
        username: &str,
        password: &str,
    ) -> Result<Option<UserId>, Busy> {
        let Some(dummy) = &self.dummy_hash else {
            return Ok(None);
        };
        let user = users.by_username(username);
        let real = user.and_then(|u| u.password_hash.as_deref());
        let verifying = self
            .hashing
            .verify(real.unwrap_or(dummy).to_owned(), password.to_owned())?;
        let matched = verifying.outcome().await;
        Ok(user.filter(|_| matched && real.is_some()).map(|u| u.id))
    }
}
