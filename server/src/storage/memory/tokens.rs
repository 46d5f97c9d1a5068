//! The in-memory token store: sharded maps of token records and families, each
//! with an expiry wheel, so that nothing live is ever scanned. The rules are
//! `storage::tokens`'s.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::Millis;
use crate::expiry::ExpiryWheel;
use crate::protocol::ids::ClientId;
use crate::protocol::scope::ScopeSet;
use crate::protocol::token::{new_token, parse_token, TokenKey as Key};
use crate::quota::Bucket;
use crate::storage::tokens::{
    AccessRecord, Grant, Introspection, Issued, IssuedToAnother, RefreshError, RefreshRecord,
    REFRESH_PACE,
};

#[derive(Debug, Clone, Copy)]
struct Family {
    revoked: bool,
    /// When the last token of the family expires; the family record goes after that.
    until: Millis,
    /// Its exchanges, paced ([`REFRESH_PACE`]).
    pace: Bucket,
}

impl Family {
    fn new(until: Millis, now: Millis) -> Family {
        Family {
            revoked: false,
            until,
            pace: Bucket::full(&REFRESH_PACE, now),
        }
    }
}

/// Access and refresh tokens, and their families.
pub(crate) struct TokenStore {
    access: crate::shards::Map<Key, AccessRecord>,
    refresh: crate::shards::Map<Key, RefreshRecord>,
    families: crate::shards::Map<u64, Family>,
    next_family: AtomicU64,
    access_ttl_ms: Millis,
    refresh_ttl_ms: Millis,
    access_wheel: ExpiryWheel<Key>,
    refresh_wheel: ExpiryWheel<Key>,
    family_wheel: ExpiryWheel<u64>,
}

impl TokenStore {
    pub(crate) fn new(access_ttl_ms: Millis, refresh_ttl_ms: Millis) -> TokenStore {
        TokenStore {
            access: crate::shards::map(),
            refresh: crate::shards::map(),
            families: crate::shards::map(),
            next_family: AtomicU64::new(1),
            access_ttl_ms,
            refresh_ttl_ms,
            access_wheel: ExpiryWheel::new(),
            refresh_wheel: ExpiryWheel::new(),
            family_wheel: ExpiryWheel::new(),
        }
    }

    /// A new family, for a device code being redeemed: its record exists from this
    /// moment, before any of its tokens, so a replay of the code that lands while the
    /// tokens are still being minted revokes them all (checklist TS-09). Called under
    /// the session's lock, by the poll that redeems.
    pub(crate) fn new_family(&self, now: Millis) -> u64 {
        let family = self.next_family.fetch_add(1, Ordering::Relaxed);
        let until = now.saturating_add(self.access_ttl_ms);
        self.families.insert(family, Family::new(until, now));
        self.family_wheel.schedule(until, family);
        family
    }

    /// Issues an access token of `grant`, and a refresh token of `refresh_scope` if
    /// given, in `family`.
    pub(crate) fn issue(
        &self,
        grant: Grant,
        family: u64,
        refresh_scope: Option<ScopeSet>,
        now: Millis,
    ) -> Issued {
        let (access_key, access_token) = new_token();
        let access_expires = now.saturating_add(self.access_ttl_ms);
        let mut until = access_expires;
        let refresh_token = refresh_scope.map(|scope| {
            let (key, token) = new_token();
            let expires_at = now.saturating_add(self.refresh_ttl_ms);
            until = until.max(expires_at);
            self.refresh.insert(
                key,
                RefreshRecord {
                    grant: Grant { scope, ..grant },
                    family,
                    issued_at: now,
                    expires_at,
                    rotated: false,
                },
            );
            self.refresh_wheel.schedule(expires_at, key);
            token
        });
        self.access.insert(
            access_key,
            AccessRecord {
                grant,
                family,
                issued_at: now,
                expires_at: access_expires,
            },
        );
        self.access_wheel.schedule(access_expires, access_key);
        // The family was recorded at redemption (or is the refreshed token's); if it
        // was revoked in the meantime it stays revoked, and so are these tokens.
        let mut f = self
            .families
            .entry(family)
            .or_insert(Family::new(until, now));
        if until > f.until {
            f.until = until;
        }
        drop(f);
        self.family_wheel.schedule(until, family);
        Issued {
            user: grant.user,
            access_token,
            expires_in_secs: self.access_ttl_ms / 1000,
            refresh_token,
            scope: grant.scope,
        }
    }

    /// Exchanges a refresh token for a new pair, rotating it (RFC 9700 §4.14.2:
    /// "refresh token rotation"). A second use of the same refresh token revokes the
    /// whole family: one of the two users is an attacker, and the server cannot tell
    /// which.
    pub(crate) fn refresh(
        &self,
        token: &str,
        client: ClientId,
        scope: Option<ScopeSet>,
        now: Millis,
    ) -> Result<Issued, RefreshError> {
        let key = parse_token(token).ok_or(RefreshError::Invalid)?;
        let mut record = self.refresh.get_mut(&key).ok_or(RefreshError::Invalid)?;
        let family = record.family;
        // RFC 6749 §6: the new refresh token's scope is the presented one's, even when
        // the access token is narrowed.
        let refresh_scope = record.grant.scope;
        let mut rotated = *record;
        match rotated.exchange(client, scope, now, self.is_revoked(family)) {
            Ok(grant) => {
                // Paced under the record's lock: of two exchanges of one token, the
                // second sees the first's rotation (a reuse), never a second ticket.
                if let Err(retry_after_ms) = self.pace(family, now) {
                    return Err(RefreshError::Paced { retry_after_ms });
                }
                *record = rotated;
                drop(record);
                Ok(self.issue(grant, family, Some(refresh_scope), now))
            }
            Err(e) => {
                drop(record);
                if matches!(e, RefreshError::Reused { .. }) {
                    self.revoke_family(family);
                }
                Err(e)
            }
        }
    }

    /// Takes one exchange from `family`'s pace, or says how long until it has one.
    fn pace(&self, family: u64, now: Millis) -> Result<(), Millis> {
        match self.families.get_mut(&family) {
            Some(mut f) => f.pace.take(&REFRESH_PACE, now),
            // Gone with its tokens (`is_revoked` refused the exchange first).
            None => Ok(()),
        }
    }

    fn is_revoked(&self, family: u64) -> bool {
        self.families.get(&family).is_none_or(|f| f.revoked)
    }

    /// Revokes every token of a family.
    pub(crate) fn revoke_family(&self, family: u64) {
        if let Some(mut f) = self.families.get_mut(&family) {
            f.revoked = true;
        }
    }

    /// RFC 7662: what an active token is; `None` if it is not active.
    pub(crate) fn introspect(&self, token: &str, now: Millis) -> Option<Introspection> {
        let key = parse_token(token)?;
        if let Some(a) = self.access.get(&key) {
            return a.introspect(now, self.is_revoked(a.family));
        }
        let r = self.refresh.get(&key)?;
        r.introspect(now, self.is_revoked(r.family))
    }

    /// RFC 7009 §2.1: revokes `token` if it was issued to `client`. Revoking a refresh
    /// token revokes its family, access tokens included ("SHOULD also invalidate all
    /// access tokens based on the same authorization grant"). Another client's token
    /// is left alone, and said (`IssuedToAnother`) while active, for the endpoint to
    /// decide what to answer; unknown and inactive tokens are ignored (§2.2).
    pub(crate) fn revoke(
        &self,
        token: &str,
        client: ClientId,
        now: Millis,
    ) -> Result<(), IssuedToAnother> {
        let Some(key) = parse_token(token) else {
            return Ok(());
        };
        if let Some(a) = self.access.get(&key) {
            if a.grant.client != client {
                return IssuedToAnother::unless_inactive(
                    a.introspect(now, self.is_revoked(a.family)),
                );
            }
            drop(a);
            self.access.remove(&key);
            return Ok(());
        }
        let Some(r) = self.refresh.get(&key) else {
            return Ok(());
        };
        if r.grant.client != client {
            return IssuedToAnother::unless_inactive(r.introspect(now, self.is_revoked(r.family)));
        }
        let family = r.family;
        drop(r);
        self.revoke_family(family);
        Ok(())
    }

    /// Drops expired tokens and the records of families whose tokens are all gone,
    /// looking at no more than `budget` due entries; returns how many it looked at.
    pub(crate) fn sweep(&self, now: Millis, budget: usize) -> usize {
        let mut examined = 0;
        for key in self.access_wheel.take_due(now, budget) {
            examined += 1;
            self.access.remove_if(&key, |_, a| a.expires_at <= now);
        }
        for key in self.refresh_wheel.take_due(now, budget - examined) {
            examined += 1;
            self.refresh.remove_if(&key, |_, r| r.expires_at <= now);
        }
        for family in self.family_wheel.take_due(now, budget - examined) {
            examined += 1;
            self.families.remove_if(&family, |_, f| f.until <= now);
        }
        examined
    }

    /// Live access tokens, for metrics.
    pub(crate) fn access_tokens(&self) -> usize {
        self.access.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ids::UserId;
    use crate::storage::tokens::TokenKind;

    const GRANT: Grant = Grant {
        client: ClientId(0),
        user: UserId(0),
        scope: ScopeSet(0b11),
    };

    fn store() -> TokenStore {
        TokenStore::new(3_600_000, 86_400_000)
    }

    #[test]
    fn issued_tokens_introspect_as_active_until_they_expire() {
        let t = store();
        let issued = t.issue(GRANT, t.new_family(0), Some(GRANT.scope), 0);
        let a = t.introspect(&issued.access_token, 1).unwrap();
        assert_eq!(a.grant, GRANT);
        assert_eq!(a.token_type, TokenKind::Access);
        let r = t
            .introspect(issued.refresh_token.as_deref().unwrap(), 1)
            .unwrap();
        assert_eq!(r.token_type, TokenKind::Refresh);
        assert!(t.introspect(&issued.access_token, 3_600_000).is_none());
        assert!(t.introspect("not-a-token", 1).is_none());
    }

    #[test]
    fn refresh_rotates_and_reuse_revokes_the_family() {
        // RFC 9700 §4.14.2; checklist BCP-01.
        let t = store();
        let first = t.issue(GRANT, t.new_family(0), Some(GRANT.scope), 0);
        let rt1 = first.refresh_token.unwrap();
        let second = t.refresh(&rt1, ClientId(0), None, 10).unwrap();
        let rt2 = second.refresh_token.unwrap();
        assert_ne!(rt1, rt2);
        assert!(t.introspect(&second.access_token, 11).is_some());
        // Reusing RT1 is refused and takes down RT2 and every access token.
        assert_eq!(
            t.refresh(&rt1, ClientId(0), None, 20).unwrap_err(),
            RefreshError::Reused { user: UserId(0) }
        );
        assert_eq!(
            t.refresh(&rt2, ClientId(0), None, 21).unwrap_err(),
            RefreshError::Invalid
        );
        assert!(t.introspect(&second.access_token, 22).is_none());
        assert!(t.introspect(&first.access_token, 22).is_none());
    }

    #[test]
    fn refresh_is_bound_to_the_client_and_the_original_scope() {
        let t = store();
        let rt = t
            .issue(GRANT, t.new_family(0), Some(GRANT.scope), 0)
            .refresh_token
            .unwrap();
        assert_eq!(
            t.refresh(&rt, ClientId(1), None, 1).unwrap_err(),
            RefreshError::OtherClient
        );
        assert_eq!(
            t.refresh(&rt, ClientId(0), Some(ScopeSet(0b100)), 1)
                .unwrap_err(),
            RefreshError::ScopeExceeded
        );
        let narrowed = t
            .refresh(&rt, ClientId(0), Some(ScopeSet(0b01)), 1)
            .unwrap();
        assert_eq!(narrowed.scope, ScopeSet(0b01));
    }

    #[test]
    fn revoking_a_refresh_token_revokes_its_access_tokens() {
        // RFC 7009 §2.1.
        let t = store();
        let issued = t.issue(GRANT, t.new_family(0), Some(GRANT.scope), 0);
        let rt = issued.refresh_token.as_deref().unwrap();
        let another = |token: &str, now| t.revoke(token, ClientId(1), now);
        assert!(matches!(another(rt, 1), Err(IssuedToAnother(i)) if i.grant.client == ClientId(0)));
        assert!(matches!(
            another(&issued.access_token, 1),
            Err(IssuedToAnother(_))
        ));
        // Expired (the access token at an hour, the refresh token at a day): invalid,
        // no error.
        assert_eq!(another(&issued.access_token, 3_600_000), Ok(()));
        assert!(matches!(another(rt, 3_600_000), Err(IssuedToAnother(_))));
        assert_eq!(another(rt, 86_400_000), Ok(()));
        assert!(
            t.introspect(&issued.access_token, 1).is_some(),
            "another client cannot revoke"
        );
        assert_eq!(t.revoke(rt, ClientId(0), 1), Ok(()));
        assert!(t.introspect(&issued.access_token, 1).is_none());
        // Revoked, so no longer active: another client's revocation is now of an
        // invalid token, which is no error (RFC 7009 §2.2).
        assert_eq!(t.revoke(rt, ClientId(1), 1), Ok(()));
        assert_eq!(t.revoke(&issued.access_token, ClientId(1), 1), Ok(()));
    }

    #[test]
    fn revoking_an_access_token_leaves_the_refresh_token() {
        let t = store();
        let issued = t.issue(GRANT, t.new_family(0), Some(GRANT.scope), 0);
        assert_eq!(t.revoke(&issued.access_token, ClientId(0), 1), Ok(()));
        assert!(t.introspect(&issued.access_token, 1).is_none());
        assert!(t
            .introspect(issued.refresh_token.as_deref().unwrap(), 1)
            .is_some());
    }

    #[test]
    fn sweep_drops_expired_tokens() {
        let t = store();
        t.issue(GRANT, t.new_family(0), None, 0);
        assert_eq!(t.access_tokens(), 1);
        t.sweep(3_599_999, 100);
        assert_eq!(t.access_tokens(), 1);
        t.sweep(3_600_000, 100);
        assert_eq!(t.access_tokens(), 0);
    }
}
