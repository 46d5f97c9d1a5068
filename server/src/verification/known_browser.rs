//! Known browsers: a browser where a person signed in keeps a cookie that says so, for
//! that username (OWASP's "device cookies"), so that strangers cannot lock the person
//! out of it.
//!
//! Failed sign-ins are limited per username and per address (`storage/rate_limit.rs`).
//! Anyone who knows a username can fill its window with ten wrong passwords, and then
//! the person cannot sign in either, for ten minutes, again and again. A sign-in from a
//! browser whose known-browser cookie names the username typed is counted against that
//! browser alone, with the username's limit: the stranger's guesses, which carry no
//! such cookie, count against the username and their own address, and the person's
//! browser goes on working. A guesser gains nothing from it: the cookie comes only
//! with a successful sign-in as that username.
//!
//! The cookie is a `Seal`: a random nonce and an expiry under an HMAC keyed by the
//! store's shared secret, bound to the username and to the user's password hash, so it
//! opens only for that username, on any instance of one store, and only until the
//! password is changed: whoever signed in with a stolen password and kept cookies
//! (each its own window) loses them with the password. `HttpOnly`, `SameSite=Lax`, and behind https
//! `Secure` with the `__Host-` prefix, like the session cookie; kept 30 days and
//! renewed at each sign-in. It signs nobody in: signing out leaves it, and it only
//! changes which window a wrong password is counted in.

use super::csrf::Seal;
use super::web_session::CookiePolicy;
use crate::accounts::users::User;
use crate::clock::Millis;
use crate::storage::rate_limit::Subject;
use crate::storage::shared_secret::SharedSecret;

/// How long a browser stays known after its last sign-in.
pub const KNOWN_BROWSER_TTL_MS: Millis = 30 * 24 * 60 * 60 * 1000;

const PURPOSE: &[u8] = b"deviceflow known browser\0";

/// Makes and reads known-browser cookies.
pub struct KnownBrowsers {
    seal: Seal,
    /// The cookie's name and attributes.
    pub cookie: CookiePolicy,
}

impl KnownBrowsers {
    /// Cookies keyed by the store's shared secret, named and set for `issuer`.
    pub fn new(secret: &SharedSecret, issuer: &str) -> KnownBrowsers {
        KnownBrowsers {
            seal: Seal::new(secret),
            cookie: CookiePolicy::known_browser_for_issuer(issuer, KNOWN_BROWSER_TTL_MS / 1000),
        }
    }

    /// The `Set-Cookie` value that makes this browser known for `user` from `now`.
    pub fn remember(&self, user: &User, now: Millis) -> String {
        let (_, _, value) = self
            .seal
            .seal(PURPOSE, &bound(user), now, KNOWN_BROWSER_TTL_MS);
        self.cookie.set(&value)
    }

    /// The `Set-Cookie` value that makes this browser unknown again.
    pub fn forget(&self) -> String {
        self.cookie.clear()
    }

    /// The rate-limit subject of the browser that sent `cookie_headers`, if one of its
    /// known-browser cookies is valid at `now` for `user` (and `user`'s password).
    pub fn recognise<'a>(
        &self,
        cookie_headers: impl Iterator<Item = &'a [u8]>,
        user: &User,
        now: Millis,
    ) -> Option<Subject> {
        let bound = bound(user);
        self.cookie.read(cookie_headers, |value| {
            let (nonce, _) = self.seal.open(PURPOSE, &bound, value, now)?;
            let id = u64::from_le_bytes(nonce[..8].try_into().expect("8 of 16 bytes"));
            Some(Subject::KnownBrowser(id))
        })
    }
}

/// What a cookie is bound to: the username, and the password's hash (a PHC string has
/// no NUL, so the two cannot be read as another pair).
fn bound(user: &User) -> Vec<u8> {
    let hash = user.password_hash.as_deref().unwrap_or_default();
    [user.username.as_bytes(), b"\0", hash.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ids::UserId;

    fn value(set_cookie: &str) -> &str {
        let pair = set_cookie.split(';').next().unwrap();
        pair.split_once('=').unwrap().1
    }

    fn header(known: &KnownBrowsers, value: &str) -> String {
        format!("deviceflow-session=x; {}={value}", known.cookie.name)
    }

    fn user(username: &str, hash: &str) -> User {
        User {
            id: UserId(0),
            username: username.to_owned(),
            name: username.to_owned(),
            password_hash: Some(hash.to_owned()),
            admin: false,
        }
    }

    #[test]
    fn a_known_browser_is_recognised_only_for_its_user_and_password_only_here_and_for_thirty_days()
    {
        let known = KnownBrowsers::new(&SharedSecret::new([7; 32]), "http://127.0.0.1:8080");
        let alice = user("alice", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA");
        let set = known.remember(&alice, 1_000);
        assert!(set.starts_with("deviceflow-known="), "{set}");
        assert!(
            set.ends_with("; Max-Age=2592000; Path=/; HttpOnly; SameSite=Lax"),
            "{set}"
        );
        let h = header(&known, value(&set));
        let recognise = |k: &KnownBrowsers, user: &User, now: Millis| {
            k.recognise([h.as_bytes()].into_iter(), user, now)
        };
        let browser = recognise(&known, &alice, 1_000).expect("recognised");
        assert!(matches!(browser, Subject::KnownBrowser(_)));
        assert_eq!(
            recognise(&known, &alice, 1_000 + KNOWN_BROWSER_TTL_MS - 1),
            Some(browser)
        );
        assert_eq!(
            recognise(&known, &alice, 1_000 + KNOWN_BROWSER_TTL_MS),
            None
        );
        // Another user, the same user with a new password, another store's secret: a
        // stranger.
        let bob = user("bob", alice.password_hash.as_deref().unwrap());
        assert_eq!(recognise(&known, &bob, 1_000), None);
        let changed = user("alice", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$b3RoZXI");
        assert_eq!(recognise(&known, &changed, 1_000), None);
        let elsewhere = KnownBrowsers::new(&SharedSecret::new([8; 32]), "http://127.0.0.1:8080");
        assert_eq!(recognise(&elsewhere, &alice, 1_000), None);
        // Each sign-in makes another browser id, so windows do not carry over.
        let again = header(&known, value(&known.remember(&alice, 1_000)));
        assert_ne!(
            known.recognise([again.as_bytes()].into_iter(), &alice, 1_000),
            Some(browser)
        );
        // Not the sign-in cookie, nor garbage.
        let csrf = super::super::csrf::SignInCsrf::new(&SharedSecret::new([7; 32]));
        let (_, form_cookie) = csrf.issue(1_000);
        let forged = header(&known, &form_cookie);
        assert_eq!(
            known.recognise([forged.as_bytes()].into_iter(), &alice, 1_000),
            None
        );
        assert_eq!(
            known.recognise([&b"deviceflow-known=%%%"[..]].into_iter(), &alice, 1_000),
            None
        );
    }

    #[test]
    fn behind_https_it_is_secure_and_host_prefixed() {
        let known = KnownBrowsers::new(&SharedSecret::new([7; 32]), "https://auth.example.test");
        let set = known.remember(&user("alice", "$argon2id$"), 0);
        assert!(set.starts_with("__Host-deviceflow-known="), "{set}");
        assert!(
            set.ends_with("; Path=/; HttpOnly; SameSite=Lax; Secure"),
            "{set}"
        );
    }
}
