//! The memory store's web sessions ([`crate::storage::web_sessions`]): a sharded map,
//! each user's sessions oldest first, and their expiry through the project's
//! `ExpiryWheel`.

use std::collections::VecDeque;

use crate::accounts::users::Credential;
use crate::clock::Millis;
use crate::expiry::ExpiryWheel;
use crate::protocol::ids::UserId;
use crate::protocol::user_code::UserCode;
use crate::storage::web_sessions::{
    Full, SessionId, WebSession, MAX_SESSIONS_PER_USER, MAX_WEB_SESSIONS,
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::web_sessions::SIGNED_IN_TTL_MS;

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
}
