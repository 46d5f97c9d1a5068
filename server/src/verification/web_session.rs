//! Web sessions: who is signed in on this browser, the CSRF token of its forms, and the
//! user code it is deciding on. Kept in memory, keyed by a 256-bit random id that is
//! the only thing the cookie holds.
//!
//! Owns the session map, its expiry (through the project's [`ExpiryWheel`]) and the
//! cookie's name and attributes. It does not own device authorization sessions
//! (`store.rs`): a web session only names a user code, and the decision goes through
//! `SessionStore::decide`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dashmap::DashMap;
use rand::RngCore;

use crate::clock::Millis;
use crate::expiry::ExpiryWheel;
use crate::user_code::UserCode;
use crate::users::UserId;

use super::csrf::CsrfToken;

/// How long a browser that has not signed in keeps its session (and so the CSRF token
/// of the sign-in form it was shown).
pub const ANONYMOUS_TTL_MS: Millis = 30 * 60 * 1000;

/// How long a sign-in lasts, from the moment of signing in. Short on purpose: this
/// server signs people in only to approve devices, often on a phone that is not theirs.
pub const SIGNED_IN_TTL_MS: Millis = 60 * 60 * 1000;

/// Web sessions held at once; past it, new visitors get a 503 page until the sweep
/// frees room. Bounds what anonymous visitors can make the server keep.
pub const MAX_WEB_SESSIONS: usize = 100_000;

const ID_BYTES: usize = 32;

/// A web session's id: 256 bits from the CSPRNG, base64url in the cookie.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; ID_BYTES]);

impl SessionId {
    fn generate() -> SessionId {
        let mut id = [0u8; ID_BYTES];
        rand::thread_rng().fill_bytes(&mut id);
        SessionId(id)
    }

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

/// One browser's session.
#[derive(Debug, Clone, Copy)]
pub struct WebSession {
    /// The signed-in person; `None` before sign-in.
    pub user: Option<UserId>,
    /// The token every form of this session must carry back.
    pub csrf: CsrfToken,
    pub expires_at: Millis,
    /// The user code this person entered and is now approving or denying. Only this
    /// session can decide it (checklist UI-14).
    pub entered: Option<UserCode>,
}

/// The map is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many web sessions are open")]
pub struct Full;

/// Every web session, sharded like the device sessions: pages are few next to polls,
/// but one lock for all of them would still serialize sign-ins.
pub struct WebSessions {
    map: DashMap<SessionId, WebSession, ahash::RandomState>,
    wheel: ExpiryWheel<SessionId>,
    max: usize,
}

impl Default for WebSessions {
    fn default() -> Self {
        WebSessions::new(MAX_WEB_SESSIONS)
    }
}

impl WebSessions {
    pub fn new(max: usize) -> WebSessions {
        WebSessions {
            map: DashMap::with_hasher(ahash::RandomState::new()),
            wheel: ExpiryWheel::new(),
            max,
        }
    }

    /// Starts a session, anonymous or signed in, with a fresh id and CSRF token. A
    /// sign-in always starts a new session rather than promoting the anonymous one, so
    /// an id planted before sign-in is worthless after it (session fixation).
    pub fn start(
        &self,
        user: Option<UserId>,
        now: Millis,
    ) -> Result<(SessionId, WebSession), Full> {
        if self.map.len() >= self.max {
            return Err(Full);
        }
        let ttl = if user.is_some() {
            SIGNED_IN_TTL_MS
        } else {
            ANONYMOUS_TTL_MS
        };
        let session = WebSession {
            user,
            csrf: CsrfToken::generate(),
            expires_at: now.saturating_add(ttl),
            entered: None,
        };
        let id = SessionId::generate();
        self.map.insert(id, session);
        self.wheel.schedule(session.expires_at, id);
        Ok((id, session))
    }

    /// The live session with this id; an expired one is gone even before the sweep.
    pub fn get(&self, id: &SessionId, now: Millis) -> Option<WebSession> {
        self.map.get(id).map(|s| *s).filter(|s| now < s.expires_at)
    }

    /// Records the user code this session is deciding on (or none). False if the
    /// session is gone.
    pub fn set_entered(&self, id: &SessionId, code: Option<UserCode>) -> bool {
        match self.map.get_mut(id) {
            Some(mut s) => {
                s.entered = code;
                true
            }
            None => false,
        }
    }

    /// Ends a session (sign-out, or replaced by a sign-in).
    pub fn end(&self, id: &SessionId) {
        self.map.remove(id);
    }

    /// Removes expired sessions; returns how many.
    pub fn sweep(&self, now: Millis) -> usize {
        self.wheel
            .take_due(now, usize::MAX)
            .into_iter()
            .filter(|id| self.map.remove_if(id, |_, s| s.expires_at <= now).is_some())
            .count()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The session cookie's name and attributes, fixed by the issuer's scheme.
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    pub name: &'static str,
    pub secure: bool,
}

impl CookiePolicy {
    /// Behind https the cookie is `Secure` and takes the `__Host-` prefix, which makes
    /// the browser refuse it unless it is `Secure`, `Path=/` and has no `Domain`: no
    /// sibling subdomain can plant or shadow it (RFC 6265bis §4.1.3.2).
    pub fn for_issuer(issuer: &str) -> CookiePolicy {
        if issuer.starts_with("https://") {
            CookiePolicy {
                name: "__Host-deviceflow-session",
                secure: true,
            }
        } else {
            CookiePolicy {
                name: "deviceflow-session",
                secure: false,
            }
        }
    }

    /// The `Set-Cookie` value that hands `id` to the browser. No `Max-Age`: the cookie
    /// ends with the browser session, and the server ends it sooner.
    pub fn set(&self, id: &SessionId) -> String {
        format!("{}={}; {}", self.name, id.encode(), self.attributes())
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub fn clear(&self) -> String {
        format!("{}=; Max-Age=0; {}", self.name, self.attributes())
    }

    fn attributes(&self) -> &'static str {
        // HttpOnly: no script can read it. SameSite=Lax: not sent on cross-site POSTs.
        if self.secure {
            "Path=/; HttpOnly; SameSite=Lax; Secure"
        } else {
            "Path=/; HttpOnly; SameSite=Lax"
        }
    }

    /// Finds this cookie's session id in the request's `Cookie` headers.
    pub fn read<'a>(&self, cookie_headers: impl Iterator<Item = &'a [u8]>) -> Option<SessionId> {
        cookie_headers
            .filter_map(|h| std::str::from_utf8(h).ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == self.name)
            .find_map(|(_, value)| SessionId::decode(value.trim_matches('"')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_are_swept() {
        let s = WebSessions::new(10);
        let (anon, _) = s.start(None, 0).unwrap();
        let (signed, session) = s.start(Some(UserId(1)), 0).unwrap();
        assert_eq!(session.expires_at, SIGNED_IN_TTL_MS);
        assert!(s.get(&anon, ANONYMOUS_TTL_MS - 1).is_some());
        assert!(s.get(&anon, ANONYMOUS_TTL_MS).is_none());
        assert_eq!(s.sweep(ANONYMOUS_TTL_MS), 1);
        assert_eq!(s.len(), 1);
        assert!(s.get(&signed, ANONYMOUS_TTL_MS).is_some());
        s.end(&signed);
        assert!(s.is_empty());
    }

    #[test]
    fn the_map_is_bounded() {
        let s = WebSessions::new(2);
        s.start(None, 0).unwrap();
        s.start(None, 0).unwrap();
        assert_eq!(s.start(None, 0).unwrap_err(), Full);
    }

    #[test]
    fn cookies_round_trip_and_take_the_host_prefix_behind_https() {
        let plain = CookiePolicy::for_issuer("http://127.0.0.1:8080");
        let id = SessionId::generate();
        let set = plain.set(&id);
        assert!(set.starts_with("deviceflow-session="));
        assert!(set.ends_with("; Path=/; HttpOnly; SameSite=Lax"), "{set}");
        let header = format!("other=1; deviceflow-session={}; x=y", id.encode());
        assert_eq!(plain.read([header.as_bytes()].into_iter()), Some(id));
        assert_eq!(
            plain.read([&b"deviceflow-session=garbage"[..]].into_iter()),
            None
        );

        let tls = CookiePolicy::for_issuer("https://auth.example.test");
        assert!(tls.set(&id).starts_with("__Host-deviceflow-session="));
        assert!(tls.set(&id).ends_with("; Secure"));
        assert!(tls.clear().contains("Max-Age=0"));
        // The plain-http cookie is not read as the https one.
        assert_eq!(tls.read([header.as_bytes()].into_iter()), None);
    }
}
