//! Web sessions, whatever keeps them: who is signed in on a browser, the CSRF token of
//! its forms, and the user code it is deciding on; and their bounds.
//!
//! Only a successful sign-in makes a web session: a visitor who has not signed in is
//! kept nowhere on the server (the sign-in form's cookie is
//! `verification/csrf.rs`'s `SignInCookie`), so visitors cannot fill the store.
//! Signed-in sessions are bounded per user ([`MAX_SESSIONS_PER_USER`], the oldest
//! evicted first), so one account cannot either. The memory store keeps them in
//! `storage/memory/web_sessions.rs`, the Redis store in its own records; the cookie that
//! carries the id is the pages' (`verification/web_session.rs`).
//!
//! A web session does not own a device authorization session: it only names a user
//! code, and the decision goes through the store's `decide`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::accounts::users::Credential;
use crate::clock::Millis;
use crate::protocol::ids::UserId;
use crate::protocol::user_code::UserCode;

/// How long a sign-in lasts, from the moment of signing in. Short on purpose: this
/// server signs people in only to approve devices, often on a phone that is not theirs.
pub const SIGNED_IN_TTL_MS: Millis = 60 * 60 * 1000;

/// Web sessions held at once; past it, a sign-in gets a 503 page until the sweep frees
/// room. With [`MAX_SESSIONS_PER_USER`], only a deployment of more than 6,250 people
/// all signed in on 16 browsers could reach it.
pub const MAX_WEB_SESSIONS: usize = 100_000;

/// Sessions one user holds at once (browsers, phones, repeated sign-ins); a 17th
/// sign-in ends the oldest.
pub const MAX_SESSIONS_PER_USER: usize = 16;

const ID_BYTES: usize = 32;

const CSRF_BYTES: usize = 32;

/// A web session's id: 256 bits from the CSPRNG, base64url in the cookie.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; ID_BYTES]);

impl SessionId {
    /// A fresh id.
    pub(crate) fn generate() -> SessionId {
        let mut id = [0u8; ID_BYTES];
        rand::thread_rng().fill_bytes(&mut id);
        SessionId(id)
    }

    /// The id's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8; ID_BYTES] {
        &self.0
    }

    /// The id as the cookie carries it.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Reads a cookie value; anything that is not 32 bytes of base64url is no session.
    pub fn decode(value: &str) -> Option<SessionId> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        Some(SessionId(bytes.try_into().ok()?))
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(..)")
    }
}

/// One signed-in browser's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebSession {
    /// The signed-in person.
    pub user: UserId,
    /// What they signed in with ([`crate::accounts::users::User::credential`]): once
    /// the configured password differs, the session is no sign-in.
    pub credential: Credential,
    /// The token every form of this session must carry back.
    pub csrf: CsrfToken,
    /// When the session ends.
    pub expires_at: Millis,
    /// The user code this person entered and is now approving or denying. Only this
    /// session can decide it (checklist UI-14). Kept after the decision, so that the
    /// last page, reloaded, still says how it ended.
    pub entered: Option<UserCode>,
}

impl WebSession {
    /// `user`'s session signed in at `now`, with a fresh CSRF token: whatever the
    /// browser held before is worthless after it (session fixation).
    pub(crate) fn new(user: UserId, credential: Credential, now: Millis) -> WebSession {
        WebSession {
            user,
            credential,
            csrf: CsrfToken::generate(),
            expires_at: now.saturating_add(SIGNED_IN_TTL_MS),
            entered: None,
        }
    }
}

/// The store holds [`MAX_WEB_SESSIONS`] already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many web sessions are open")]
pub struct Full;

/// The token every form of a signed-in session carries back: the synchronizer-token
/// pattern (OWASP, `verification/csrf.rs`), kept with the session.
/// 256 bits from the CSPRNG.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CsrfToken([u8; CSRF_BYTES]);

impl CsrfToken {
    /// A fresh token from the CSPRNG.
    pub fn generate() -> CsrfToken {
        let mut t = [0u8; CSRF_BYTES];
        rand::thread_rng().fill_bytes(&mut t);
        CsrfToken(t)
    }

    /// The token's bytes, as a shared store keeps them.
    pub(crate) fn to_bytes(self) -> [u8; CSRF_BYTES] {
        self.0
    }

    /// A token a shared store kept.
    pub(crate) fn from_bytes(bytes: [u8; CSRF_BYTES]) -> CsrfToken {
        CsrfToken(bytes)
    }

    /// The form of the token written into pages (base64url, 43 characters).
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Whether `presented` is this token, decided in constant time.
    pub fn matches(&self, presented: Option<&str>) -> bool {
        let Some(decoded) = presented.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok()) else {
            return false;
        };
        decoded.len() == CSRF_BYTES && bool::from(decoded.as_slice().ct_eq(&self.0))
    }
}

impl std::fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_matches() {
        let t = CsrfToken::generate();
        assert!(t.matches(Some(&t.encode())));
        assert!(!t.matches(Some(&CsrfToken::generate().encode())));
        assert!(!t.matches(None));
        assert!(!t.matches(Some("")));
        assert!(!t.matches(Some("not base64 !")));
        assert!(!t.matches(Some(&t.encode()[..40])));
    }
}
