//! Access and refresh tokens: issuing, refresh with rotation and reuse detection
//! (RFC 9700 §4.14.2), introspection (RFC 7662) and revocation (RFC 7009).
//!
//! Tokens are opaque: 32 bytes from a CSPRNG in base64url. Every token belongs to a
//! family, the grant it came from (one device code, or one refresh chain). Revoking a
//! family kills every token in it; that is how a replayed device code or a reused
//! refresh token takes down what was issued from it.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dashmap::DashMap;
use rand::RngCore;

use crate::accounts::clients::ClientId;
use crate::accounts::users::UserId;
use crate::clock::Millis;
use crate::protocol::scope::ScopeSet;
use crate::storage::expiry::ExpiryWheel;

const TOKEN_BYTES: usize = 32;
type Key = [u8; TOKEN_BYTES];

fn new_token() -> (Key, String) {
    let mut key = [0u8; TOKEN_BYTES];
    rand::thread_rng().fill_bytes(&mut key);
    (key, URL_SAFE_NO_PAD.encode(key))
}

fn parse_token(s: &str) -> Option<Key> {
    if s.len() != 43 {
        return None;
    }
    let mut key = [0u8; TOKEN_BYTES + 2];
    let n = URL_SAFE_NO_PAD.decode_slice(s, &mut key).ok()?;
    (n == TOKEN_BYTES).then(|| key[..TOKEN_BYTES].try_into().expect("32 bytes"))
}

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grant {
    pub client: ClientId,
    pub user: UserId,
    pub scope: ScopeSet,
}

#[derive(Debug, Clone, Copy)]
struct AccessRecord {
    grant: Grant,
    family: u64,
    issued_at: Millis,
    expires_at: Millis,
}

#[derive(Debug, Clone, Copy)]
struct RefreshRecord {
    grant: Grant,
    family: u64,
    issued_at: Millis,
    expires_at: Millis,
    /// Exchanged already: presenting it again is reuse.
    rotated: bool,
}

#[derive(Debug, Clone, Copy)]
struct Family {
    revoked: bool,
    /// When the last token of the family expires; the family record goes after that.
    until: Millis,
}

/// A freshly issued pair.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    /// Whom the tokens speak for.
    pub user: UserId,
    pub access_token: String,
    pub expires_in_secs: u64,
    pub refresh_token: Option<String>,
    pub scope: ScopeSet,
}

/// What introspection says of a token (RFC 7662 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Introspection {
    pub grant: Grant,
    pub token_type: TokenKind,
    pub issued_at: Millis,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Access,
    Refresh,
}

/// Why a refresh was refused; all are `invalid_grant` on the wire (RFC 6749 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RefreshError {
    #[error("unknown, expired or revoked refresh token")]
    Invalid,
    #[error("the refresh token was issued to another client")]
    OtherClient,
    /// Presented again after rotation; the tokens were `user`'s.
    #[error("the refresh token was already used; its token family is revoked (RFC 9700 §4.14.2)")]
    Reused { user: UserId },
    #[error("the requested scope exceeds the original grant (RFC 6749 §6)")]
    ScopeExceeded,
}

pub(crate) struct TokenStore {
    access: DashMap<Key, AccessRecord, ahash::RandomState>,
    refresh: DashMap<Key, RefreshRecord, ahash::RandomState>,
    families: DashMap<u64, Family, ahash::RandomState>,
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
            access: DashMap::with_hasher(ahash::RandomState::new()),
            refresh: DashMap::with_hasher(ahash::RandomState::new()),
            families: DashMap::with_hasher(ahash::RandomState::new()),
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
        self.families.insert(
            family,
            Family {
                revoked: false,
                until,
            },
        );
        self.family_wheel.schedule(until, family);
        family
    }

    /// Issues an access token, and a refresh token if `with_refresh`, in `family`.
    pub(crate) fn issue(
        &self,
        grant: Grant,
        family: u64,
        with_refresh: bool,
        now: Millis,
    ) -> Issued {
        let (access_key, access_token) = new_token();
        let access_expires = now.saturating_add(self.access_ttl_ms);
        let mut until = access_expires;
        let refresh_token = with_refresh.then(|| {
            let (key, token) = new_token();
            let expires_at = now.saturating_add(self.refresh_ttl_ms);
            until = until.max(expires_at);
            self.refresh.insert(
                key,
                RefreshRecord {
                    grant,
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
        let mut f = self.families.entry(family).or_insert(Family {
            revoked: false,
            until,
        });
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
        let (grant, family) = {
            let mut record = self.refresh.get_mut(&key).ok_or(RefreshError::Invalid)?;
            if record.grant.client != client {
                return Err(RefreshError::OtherClient);
            }
            if record.expires_at <= now || self.is_revoked(record.family) {
                return Err(RefreshError::Invalid);
            }
            if record.rotated {
                let (family, user) = (record.family, record.grant.user);
                drop(record);
                self.revoke_family(family);
                return Err(RefreshError::Reused { user });
            }
            let scope = scope.unwrap_or(record.grant.scope);
            if !scope.is_subset_of(record.grant.scope) {
                return Err(RefreshError::ScopeExceeded);
            }
            record.rotated = true;
            (
                Grant {
                    scope,
                    ..record.grant
                },
                record.family,
            )
        };
        Ok(self.issue(grant, family, true, now))
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
            if a.expires_at > now && !self.is_revoked(a.family) {
                return Some(Introspection {
                    grant: a.grant,
                    token_type: TokenKind::Access,
                    issued_at: a.issued_at,
                    expires_at: a.expires_at,
                });
            }
            return None;
        }
        let r = self.refresh.get(&key)?;
        (r.expires_at > now && !r.rotated && !self.is_revoked(r.family)).then(|| Introspection {
            grant: r.grant,
            token_type: TokenKind::Refresh,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
        })
    }

    /// RFC 7009 §2.1: revokes `token` if it was issued to `client`. Revoking a refresh
    /// token revokes its family, access tokens included ("SHOULD also invalidate all
    /// access tokens based on the same authorization grant"). Unknown tokens and other
    /// clients' tokens are ignored: the endpoint answers 200 either way (RFC 7009 §2.2).
    pub(crate) fn revoke(&self, token: &str, client: ClientId) {
        let Some(key) = parse_token(token) else {
            return;
        };
        if let Some(a) = self.access.get(&key) {
            if a.grant.client == client {
                drop(a);
                self.access.remove(&key);
            }
            return;
        }
        let family = match self.refresh.get(&key) {
            Some(r) if r.grant.client == client => r.family,
            _ => return,
        };
        self.revoke_family(family);
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
        let issued = t.issue(GRANT, t.new_family(0), true, 0);
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
        let first = t.issue(GRANT, t.new_family(0), true, 0);
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
            .issue(GRANT, t.new_family(0), true, 0)
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
        let issued = t.issue(GRANT, t.new_family(0), true, 0);
        t.revoke(issued.refresh_token.as_deref().unwrap(), ClientId(1));
        assert!(
            t.introspect(&issued.access_token, 1).is_some(),
            "another client cannot revoke"
        );
        t.revoke(issued.refresh_token.as_deref().unwrap(), ClientId(0));
        assert!(t.introspect(&issued.access_token, 1).is_none());
    }

    #[test]
    fn revoking_an_access_token_leaves_the_refresh_token() {
        let t = store();
        let issued = t.issue(GRANT, t.new_family(0), true, 0);
        t.revoke(&issued.access_token, ClientId(0));
        assert!(t.introspect(&issued.access_token, 1).is_none());
        assert!(t
            .introspect(issued.refresh_token.as_deref().unwrap(), 1)
            .is_some());
    }

    #[test]
    fn sweep_drops_expired_tokens() {
        let t = store();
        t.issue(GRANT, t.new_family(0), false, 0);
        assert_eq!(t.access_tokens(), 1);
        t.sweep(3_599_999, 100);
        assert_eq!(t.access_tokens(), 1);
        t.sweep(3_600_000, 100);
        assert_eq!(t.access_tokens(), 0);
    }
}
