//! Web sessions: who is signed in on this browser, the CSRF token of its forms, and the
//! user code it is deciding on. Kept in memory, keyed by a 256-bit random id that is
//! what the cookie holds once someone has signed in.
//!
//! Only a successful sign-in makes a web session: a visitor who has not signed in is
//! kept nowhere on the server (the sign-in form's cookie is `csrf::SignInCookie`), so
//! visitors cannot fill the map. Signed-in sessions are bounded per user
//! ([`MAX_SESSIONS_PER_USER`], the oldest evicted first), so one account cannot either.
//!
//! Owns the session map, its expiry (through the project's `ExpiryWheel`) and the
//! cookie's name and attributes. It does not own device authorization sessions
//! (`store.rs`): a web session only names a user code, and the decision goes through
//! `SessionStore::decide`.

use std::collections::VecDeque;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use crate::accounts::users::Credential;
use crate::clock::Millis;
use crate::expiry::ExpiryWheel;
use crate::protocol::ids::UserId;
use crate::protocol::user_code::UserCode;

use super::csrf::CsrfToken;

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

/// The map is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many web sessions are open")]
pub struct Full;

/// Every web session, sharded like the device sessions: pages are few next to polls,
/// but one lock for all of them would still serialize sign-ins.
pub struct WebSessions {
    map: crate::shards::Map<SessionId, WebSession>,
    /// Each user's sessions, oldest first. Lock order: an entry here may be held while
    /// `map` is written, never the other way round.
    by_user: crate::shards::Map<UserId, VecDeque<SessionId>>,
    wheel: ExpiryWheel<SessionId>,
    max: usize,
}

impl Default for WebSessions {
    fn default() -> Self {
        WebSessions::new(MAX_WEB_SESSIONS)
    }
}

impl WebSessions {
    /// A map of at most `max` sessions.
    pub fn new(max: usize) -> WebSessions {
        WebSessions {
            map: crate::shards::map(),
            by_user: crate::shards::map(),
            wheel: ExpiryWheel::new(),
            max,
        }
    }

    /// Starts `user`'s session at sign-in, with a fresh id and CSRF token: whatever
    /// the browser held before is worthless after it (session fixation). If the user
    /// already holds [`MAX_SESSIONS_PER_USER`], the oldest ends.
    pub fn start(
        &self,
        user: UserId,
        credential: Credential,
        now: Millis,
    ) -> Result<(SessionId, WebSession), Full> {
        let mut mine = self.by_user.entry(user).or_default();
        // A user at the bound makes room for themselves, even when the map is full.
        if mine.len() >= MAX_SESSIONS_PER_USER {
            if let Some(oldest) = mine.pop_front() {
                self.map.remove(&oldest);
            }
        } else if self.map.len() >= self.max {
            return Err(Full);
        }
        let session = WebSession::new(user, credential, now);
        let id = SessionId::generate();
        self.map.insert(id, session);
        mine.push_back(id);
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

    /// Ends a session (sign-out).
    pub fn end(&self, id: &SessionId) {
        if let Some((id, session)) = self.map.remove(id) {
            self.forget_for_user(session.user, &id);
        }
    }

    /// Removes expired sessions; returns how many.
    pub fn sweep(&self, now: Millis) -> usize {
        self.wheel
            .take_due(now, usize::MAX)
            .into_iter()
            .filter_map(|id| self.map.remove_if(&id, |_, s| s.expires_at <= now))
            .map(|(id, session)| self.forget_for_user(session.user, &id))
            .count()
    }

    /// Drops `id` from `user`'s list, and the list when it is empty.
    fn forget_for_user(&self, user: UserId, id: &SessionId) {
        self.by_user.remove_if_mut(&user, |_, mine| {
            mine.retain(|s| s != id);
            mine.is_empty()
        });
    }

    /// The sessions `user` holds.
    pub fn count_for(&self, user: UserId) -> usize {
        self.by_user.get(&user).map_or(0, |mine| mine.len())
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A cookie's name and attributes, fixed by the issuer's scheme.
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    /// The cookie's name.
    pub name: &'static str,
    /// Whether it is `Secure`.
    pub secure: bool,
    /// How long the browser keeps it, in seconds; `None` ends it with the browser
    /// session.
    pub max_age_secs: Option<u64>,
}

impl CookiePolicy {
    /// The session cookie. Behind https the cookie is `Secure` and takes the `__Host-`
    /// prefix, which makes the browser refuse it unless it is `Secure`, `Path=/` and has
    /// no `Domain`: no sibling subdomain can plant or shadow it (RFC 6265bis §4.1.3.2).
    /// No `Max-Age`: the cookie ends with the browser session, and the server ends it
    /// sooner.
    pub fn for_issuer(issuer: &str) -> CookiePolicy {
        if issuer.starts_with("https://") {
            CookiePolicy {
                name: "__Host-deviceflow-session",
                secure: true,
                max_age_secs: None,
            }
        } else {
            CookiePolicy {
                name: "deviceflow-session",
                secure: false,
                max_age_secs: None,
            }
        }
    }

    /// The known-browser cookie ([`known_browser`](super::known_browser)): the same
    /// attributes, kept `max_age_secs`.
    pub fn known_browser_for_issuer(issuer: &str, max_age_secs: u64) -> CookiePolicy {
        let session = CookiePolicy::for_issuer(issuer);
        CookiePolicy {
            name: if session.secure {
                "__Host-deviceflow-known"
            } else {
                "deviceflow-known"
            },
            max_age_secs: Some(max_age_secs),
            ..session
        }
    }

    /// The `Set-Cookie` value that hands `value` (a session id, a sign-in cookie, a
    /// known-browser cookie) to the browser.
    pub fn set(&self, value: &str) -> String {
        match self.max_age_secs {
            Some(secs) => format!(
                "{}={value}; Max-Age={secs}; {}",
                self.name,
                self.attributes()
            ),
            None => format!("{}={value}; {}", self.name, self.attributes()),
        }
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

    /// The first value of this cookie in the request's `Cookie` headers that `parse`
    /// accepts.
    pub fn read<'a, T>(
        &self,
        cookie_headers: impl Iterator<Item = &'a [u8]>,
        mut parse: impl FnMut(&str) -> Option<T>,
    ) -> Option<T> {
        cookie_headers
            .filter_map(|h| std::str::from_utf8(h).ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == self.name)
            .find_map(|(_, value)| parse(value.trim_matches('"')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_are_swept() {
        let s = WebSessions::new(10);
        let (early, session) = s.start(UserId(1), Credential(1), 0).unwrap();
        let (late, _) = s.start(UserId(1), Credential(1), 1_000).unwrap();
        assert_eq!(session.expires_at, SIGNED_IN_TTL_MS);
        assert!(s.get(&early, SIGNED_IN_TTL_MS - 1).is_some());
        assert!(s.get(&early, SIGNED_IN_TTL_MS).is_none());
        assert_eq!(s.sweep(SIGNED_IN_TTL_MS), 1);
        assert_eq!((s.len(), s.count_for(UserId(1))), (1, 1));
        assert!(s.get(&late, SIGNED_IN_TTL_MS).is_some());
        s.end(&late);
        assert!(s.is_empty());
        assert_eq!(s.count_for(UserId(1)), 0);
    }

    #[test]
    fn the_map_is_bounded() {
        let s = WebSessions::new(2);
        s.start(UserId(1), Credential(1), 0).unwrap();
        s.start(UserId(2), Credential(1), 0).unwrap();
        assert_eq!(s.start(UserId(3), Credential(1), 0).unwrap_err(), Full);
    }

    #[test]
    fn a_user_holds_at_most_the_bound_and_the_oldest_goes_first() {
        let s = WebSessions::new(100);
        let ids: Vec<_> = (0..=MAX_SESSIONS_PER_USER as u64)
            .map(|t| s.start(UserId(1), Credential(1), t).unwrap().0)
            .collect();
        assert_eq!(s.len(), MAX_SESSIONS_PER_USER);
        assert_eq!(s.count_for(UserId(1)), MAX_SESSIONS_PER_USER);
        assert!(s.get(&ids[0], 100).is_none());
        assert!(ids[1..].iter().all(|id| s.get(id, 100).is_some()));
        // Evicted sessions are not swept twice, nor counted.
        assert_eq!(s.sweep(SIGNED_IN_TTL_MS + 1_000), MAX_SESSIONS_PER_USER);
        assert!(s.is_empty());
        assert_eq!(s.count_for(UserId(1)), 0);
    }

    #[test]
    fn cookies_round_trip_and_take_the_host_prefix_behind_https() {
        let plain = CookiePolicy::for_issuer("http://127.0.0.1:8080");
        let id = SessionId::generate();
        let set = plain.set(&id.encode());
        assert!(set.starts_with("deviceflow-session="));
        assert!(set.ends_with("; Path=/; HttpOnly; SameSite=Lax"), "{set}");
        let header = format!("other=1; deviceflow-session={}; x=y", id.encode());
        let read = |policy: &CookiePolicy, header: &[u8]| {
            policy.read([header].into_iter(), SessionId::decode)
        };
        assert_eq!(read(&plain, header.as_bytes()), Some(id));
        assert_eq!(read(&plain, b"deviceflow-session=garbage"), None);

        let tls = CookiePolicy::for_issuer("https://auth.example.test");
        assert!(tls
            .set(&id.encode())
            .starts_with("__Host-deviceflow-session="));
        assert!(tls.set(&id.encode()).ends_with("; Secure"));
        assert!(tls.clear().contains("Max-Age=0"));
        // The plain-http cookie is not read as the https one.
        assert_eq!(read(&tls, header.as_bytes()), None);
    }
}
