//! Cross-site request forgery tokens, in a hidden field of every form, compared in
//! constant time when the form comes back.
//!
//! Signed in: the synchronizer-token pattern (OWASP). The token lives server-side with
//! the web session (`storage/web_sessions.rs`'s `CsrfToken`), so a forged POST from
//! another site, which carries the cookie but cannot read our pages, cannot carry the
//! token.
//!
//! The sign-in form (login CSRF: otherwise another site could sign a person into the
//! attacker's account): the signed double-submit pattern, so that a visitor costs the
//! server nothing until a sign-in succeeds. The browser gets a cookie holding a random
//! nonce and an expiry, MAC'd with a key drawn from the store's shared secret
//! (`Seal`); the form's field is another MAC of that nonce. Another site can neither
//! read the field nor forge a cookie whose field it would know. Every instance on one
//! store accepts the forms of the others; with the in-memory store the secret is
//! drawn at start, so a restart refuses forms shown before it as expired, as sessions
//! are.
//!
//! `SameSite=Lax` on the cookie is a second layer, not the defence.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::clock::Millis;
use crate::storage::shared_secret::SharedSecret;

/// The form field that carries the token.
pub const FIELD: &str = "csrf";

/// How long a sign-in form stays valid after it was first shown to a browser.
pub const SIGN_IN_FORM_TTL_MS: Millis = 30 * 60 * 1000;

/// The least time a sign-in form has left when it is served: a page shows the form of
/// the browser's cookie while that has this much life left, and of a new cookie after,
/// so that no form is served seconds before it expires. Half the lifetime: tabs opened
/// within the same quarter of an hour share one cookie and their forms all work.
pub const SIGN_IN_FORM_MIN_LEFT_MS: Millis = SIGN_IN_FORM_TTL_MS / 2;

const NONCE_BYTES: usize = 16;
const MAC_BYTES: usize = 32;
/// Nonce, expiry (milliseconds, big-endian), MAC.
const COOKIE_BYTES: usize = NONCE_BYTES + 8 + MAC_BYTES;

/// What a browser that has not signed in holds: proof that this server gave it a
/// sign-in form, until `expires_at`. Lives only in the cookie.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignInCookie {
    nonce: [u8; NONCE_BYTES],
    /// When the form stops being accepted.
    pub expires_at: Millis,
}

impl std::fmt::Debug for SignInCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInCookie")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A value only a server on this store can make: a random nonce and an expiry, under an
/// HMAC-SHA256 keyed by the store's shared secret (so any instance on one store opens
/// what another made), over a purpose label and whatever else the value is bound to.
/// The sign-in form's cookie is one, the known-browser cookie
/// ([`known_browser`](super::known_browser)) another.
pub(super) struct Seal {
    key: SharedSecret,
}

impl Seal {
    pub(super) fn new(secret: &SharedSecret) -> Seal {
        Seal {
            key: secret.clone(),
        }
    }

    /// An HMAC under the key as it is now, begun with `purpose`: one key, several
    /// uses, each MAC saying what it is for.
    pub(super) fn keyed(&self, purpose: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key.get()).expect("HMAC takes any key");
        mac.update(purpose);
        mac
    }

    /// A fresh nonce valid for `ttl_ms` from `now`, bound to `purpose` and `bound`, and
    /// its value for a cookie.
    pub(super) fn seal(
        &self,
        purpose: &[u8],
        bound: &[u8],
        now: Millis,
        ttl_ms: Millis,
    ) -> ([u8; NONCE_BYTES], Millis, String) {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::thread_rng().fill_bytes(&mut nonce);
        let expires_at = now.saturating_add(ttl_ms);
        let mut value = [0u8; COOKIE_BYTES];
        value[..NONCE_BYTES].copy_from_slice(&nonce);
        value[NONCE_BYTES..NONCE_BYTES + 8].copy_from_slice(&expires_at.to_be_bytes());
        let mac = self
            .mac(purpose, &value[..NONCE_BYTES + 8], bound)
            .finalize()
            .into_bytes();
        value[NONCE_BYTES + 8..].copy_from_slice(&mac);
        (nonce, expires_at, URL_SAFE_NO_PAD.encode(value))
    }

    /// The nonce and expiry of `value`: `None` unless a server on this store sealed it
    /// for `purpose` and `bound` (MAC checked in constant time) and it has not expired
    /// at `now`.
    pub(super) fn open(
        &self,
        purpose: &[u8],
        bound: &[u8],
        value: &str,
        now: Millis,
    ) -> Option<([u8; NONCE_BYTES], Millis)> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        let bytes: [u8; COOKIE_BYTES] = bytes.try_into().ok()?;
        let (signed, mac) = bytes.split_at(NONCE_BYTES + 8);
        self.mac(purpose, signed, bound).verify_slice(mac).ok()?;
        let nonce = signed[..NONCE_BYTES].try_into().ok()?;
        let expires_at = u64::from_be_bytes(signed[NONCE_BYTES..].try_into().ok()?);
        (now < expires_at).then_some((nonce, expires_at))
    }

    fn mac(&self, purpose: &[u8], signed: &[u8], bound: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.keyed(purpose);
        mac.update(signed);
        mac.update(bound);
        mac
    }
}

/// The sign-in form's CSRF check, stateless: a `Seal`, so that a form served by one
/// instance on a store is accepted by another.
pub struct SignInCsrf {
    seal: Seal,
}

const COOKIE_PURPOSE: &[u8] = b"deviceflow sign-in cookie\0";

impl SignInCsrf {
    /// A check keyed by the store's shared secret (a purpose label keeps this use of
    /// it apart from others).
    pub fn new(secret: &SharedSecret) -> SignInCsrf {
        SignInCsrf {
            seal: Seal::new(secret),
        }
    }

    /// A new sign-in cookie, valid from `now`, and its value for `Set-Cookie`.
    pub fn issue(&self, now: Millis) -> (SignInCookie, String) {
        let (nonce, expires_at, value) =
            self.seal
                .seal(COOKIE_PURPOSE, b"", now, SIGN_IN_FORM_TTL_MS);
        (SignInCookie { nonce, expires_at }, value)
    }

    /// The cookie a sign-in form served at `now` is made for: `held` (the browser's)
    /// while it has [`SIGN_IN_FORM_MIN_LEFT_MS`] left, else a new one with its value
    /// for `Set-Cookie`.
    pub fn for_form(
        &self,
        held: Option<SignInCookie>,
        now: Millis,
    ) -> (SignInCookie, Option<String>) {
        match held {
            Some(c) if c.expires_at.saturating_sub(now) >= SIGN_IN_FORM_MIN_LEFT_MS => (c, None),
            _ => {
                let (cookie, value) = self.issue(now);
                (cookie, Some(value))
            }
        }
    }

    /// Reads a cookie value: `None` unless a server on this store made it (MAC checked
    /// in constant time) and it has not expired at `now`.
    pub fn open(&self, value: &str, now: Millis) -> Option<SignInCookie> {
        let (nonce, expires_at) = self.seal.open(COOKIE_PURPOSE, b"", value, now)?;
        Some(SignInCookie { nonce, expires_at })
    }

    /// The value of the form's CSRF field for `cookie`.
    pub fn token(&self, cookie: &SignInCookie) -> String {
        URL_SAFE_NO_PAD.encode(self.field_mac(cookie))
    }

    /// Whether `presented` is the form field for `cookie`, decided in constant time.
    pub fn matches(&self, cookie: &SignInCookie, presented: Option<&str>) -> bool {
        let Some(decoded) = presented.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok()) else {
            return false;
        };
        bool::from(decoded.as_slice().ct_eq(&self.field_mac(cookie)))
    }

    fn field_mac(&self, cookie: &SignInCookie) -> [u8; MAC_BYTES] {
        let mut mac = self.seal.keyed(b"deviceflow sign-in csrf field\0");
        mac.update(&cookie.nonce);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's secret taken again (another instance drew it after Redis lost
    /// it): a check made before seals and opens with the new one, as the other
    /// instances do, and what it sealed with the old one is refused.
    #[test]
    fn a_check_follows_the_store_s_secret_when_it_is_taken_again() {
        let secret = SharedSecret::new([7; 32]);
        let csrf = SignInCsrf::new(&secret);
        let (_, before) = csrf.issue(1_000);
        secret.replace([8; 32]);
        assert_eq!(csrf.open(&before, 1_000), None);
        let (cookie, after) = csrf.issue(1_000);
        let elsewhere = SignInCsrf::new(&SharedSecret::new([8; 32]));
        assert_eq!(elsewhere.open(&after, 1_000), Some(cookie));
        assert_eq!(csrf.open(&after, 1_000), Some(cookie));
    }

    #[test]
    fn a_sign_in_cookie_opens_only_here_only_untampered_and_only_until_it_expires() {
        let csrf = SignInCsrf::new(&SharedSecret::new([7; 32]));
        let (cookie, value) = csrf.issue(1_000);
        assert_eq!(cookie.expires_at, 1_000 + SIGN_IN_FORM_TTL_MS);
        assert_eq!(csrf.open(&value, 1_000), Some(cookie));
        assert_eq!(csrf.open(&value, cookie.expires_at - 1), Some(cookie));
        assert_eq!(csrf.open(&value, cookie.expires_at), None);
        // Another process (key) did not make it.
        assert_eq!(
            SignInCsrf::new(&SharedSecret::new([8; 32])).open(&value, 1_000),
            None
        );
        // A later expiry written in by hand breaks the MAC.
        let mut bytes = URL_SAFE_NO_PAD.decode(&value).unwrap();
        bytes[NONCE_BYTES + 7] ^= 1;
        assert_eq!(csrf.open(&URL_SAFE_NO_PAD.encode(&bytes), 1_000), None);
        assert_eq!(csrf.open("", 1_000), None);
        assert_eq!(csrf.open(&value[..40], 1_000), None);
    }

    #[test]
    fn a_form_is_served_with_the_held_cookie_only_while_it_has_half_its_life_left() {
        let csrf = SignInCsrf::new(&SharedSecret::new([7; 32]));
        let (held, _) = csrf.issue(0);
        assert_eq!(
            csrf.for_form(Some(held), SIGN_IN_FORM_MIN_LEFT_MS),
            (held, None)
        );
        let (renewed, value) = csrf.for_form(Some(held), SIGN_IN_FORM_MIN_LEFT_MS + 1);
        assert_ne!(renewed, held);
        assert_eq!(
            renewed.expires_at,
            SIGN_IN_FORM_MIN_LEFT_MS + 1 + SIGN_IN_FORM_TTL_MS
        );
        assert_eq!(csrf.open(&value.unwrap(), 1), Some(renewed));
        assert!(csrf.for_form(None, 0).1.is_some());
    }

    #[test]
    fn only_the_field_of_the_cookies_nonce_matches() {
        let csrf = SignInCsrf::new(&SharedSecret::new([7; 32]));
        let (mine, _) = csrf.issue(0);
        let (theirs, _) = csrf.issue(0);
        let token = csrf.token(&mine);
        assert!(csrf.matches(&mine, Some(&token)));
        assert!(!csrf.matches(&theirs, Some(&token)));
        assert!(!SignInCsrf::new(&SharedSecret::new([8; 32])).matches(&mine, Some(&token)));
        assert!(!csrf.matches(&mine, None));
        assert!(!csrf.matches(&mine, Some("")));
        assert!(!csrf.matches(&mine, Some(&token[..40])));
    }
}
