//! Access and refresh tokens, whatever stores them: their records, and the rules of
//! refresh with rotation and reuse detection (RFC 9700 §4.14.2), introspection
//! (RFC 7662) and revocation (RFC 7009). Both backends decide with these.
//!
//! Tokens are opaque (`protocol/token.rs`). Every token belongs to a family, the grant
//! it came from (one device code, or one refresh chain). Revoking a family kills every
//! token in it; that is how a replayed device code or a reused refresh token takes down
//! what was issued from it.
//!
//! Each exchange issues an access token and a refresh token, and keeps the rotated one's
//! record until it would have expired, to recognise its reuse: what the store holds
//! grows with the exchanges. So a family's exchanges are paced ([`REFRESH_PACE`]), and a
//! client looping on its own token cannot fill the store (helper-101: 2,300 exchanges a
//! second, each kept 30 days).

use crate::clock::Millis;
use crate::protocol::ids::ClientId;
use crate::protocol::ids::UserId;
use crate::protocol::scope::ScopeSet;
use crate::quota::Rate;

/// How fast one family (one grant) may exchange refresh tokens: a burst of 10, then
/// one every 5 minutes. A client refreshes when its access token expires (an hour by
/// default), or on each start: never paced. Past it, the exchange is refused with the
/// wait, and the token is left as it was, to be exchanged then. Bounds what one grant
/// can make the store keep: at most 10 + 12 access tokens alive (an hour), and 10 +
/// 8,640 rotated refresh records over 30 days.
pub const REFRESH_PACE: Rate = Rate {
    per_second: 1.0 / 300.0,
    burst: 10,
};

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The client it was issued to.
    pub client: ClientId,
    /// The person who approved.
    pub user: UserId,
    /// What it grants.
    pub scope: ScopeSet,
}

/// An access token's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccessRecord {
    pub(crate) grant: Grant,
    pub(crate) family: u64,
    pub(crate) issued_at: Millis,
    pub(crate) expires_at: Millis,
}

/// A refresh token's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RefreshRecord {
    pub(crate) grant: Grant,
    pub(crate) family: u64,
    pub(crate) issued_at: Millis,
    pub(crate) expires_at: Millis,
    /// Exchanged already: presenting it again is reuse.
    pub(crate) rotated: bool,
}

/// A freshly issued pair.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Whom the tokens speak for.
    pub user: UserId,
    /// The access token.
    pub access_token: String,
    /// Its lifetime.
    pub expires_in_secs: u64,
    /// The refresh token, for clients allowed the refresh grant.
    pub refresh_token: Option<String>,
    /// What they grant.
    pub scope: ScopeSet,
}

/// RFC 7009 §2.1: a client revoking a token issued to another client, which the store
/// holds as active: what it is, for the endpoint to decide (a token whose client was
/// deleted is not active either). Nothing was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuedToAnother(pub Introspection);

impl IssuedToAnother {
    /// The answer to another client's revocation of a token that the store finds
    /// `active` (`Some`) or not: an inactive token is an invalid one, which causes no
    /// error (RFC 7009 §2.2).
    pub(crate) fn unless_inactive(active: Option<Introspection>) -> Result<(), IssuedToAnother> {
        active.map_or(Ok(()), |t| Err(IssuedToAnother(t)))
    }
}

/// What introspection says of a token (RFC 7662 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Introspection {
    /// Whom and what for.
    pub grant: Grant,
    /// Access or refresh.
    pub token_type: TokenKind,
    /// When it was issued.
    pub issued_at: Millis,
    /// When it expires.
    pub expires_at: Millis,
}

/// Which kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An access token.
    Access,
    /// A refresh token.
    Refresh,
}

/// Why a refresh was refused; all are `invalid_grant` on the wire (RFC 6749 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// Unknown, expired or revoked.
    #[error("unknown, expired or revoked refresh token")]
    Invalid,
    /// Issued to another client.
    #[error("the refresh token was issued to another client")]
    OtherClient,
    /// Presented again after rotation; the tokens were `user`'s.
    #[error("the refresh token was already used; its token family is revoked (RFC 9700 §4.14.2)")]
    Reused {
        /// Whose tokens they were.
        user: UserId,
    },
    /// A wider scope than the original grant.
    #[error("the requested scope exceeds the original grant (RFC 6749 §6)")]
    ScopeExceeded,
    /// The family exchanged its tokens faster than [`REFRESH_PACE`]; nothing was
    /// rotated. Not `invalid_grant`: the token still works, `retry_after_ms` later.
    #[error("this grant's refresh tokens were exchanged too often; the token still works after the wait")]
    Paced {
        /// How long until the family may exchange again.
        retry_after_ms: Millis,
    },
}

impl AccessRecord {
    /// RFC 7662: the token is active while unexpired and its family is not revoked.
    pub(crate) fn introspect(&self, now: Millis, family_revoked: bool) -> Option<Introspection> {
        (self.expires_at > now && !family_revoked).then_some(Introspection {
            grant: self.grant,
            token_type: TokenKind::Access,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
        })
    }
}

impl RefreshRecord {
    /// RFC 7662: a rotated refresh token is no longer active.
    pub(crate) fn introspect(&self, now: Millis, family_revoked: bool) -> Option<Introspection> {
        (self.expires_at > now && !self.rotated && !family_revoked).then_some(Introspection {
            grant: self.grant,
            token_type: TokenKind::Refresh,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
        })
    }

    /// Decides an exchange of this refresh token by `client` for `scope` (RFC 6749
    /// §6), rotating it (RFC 9700 §4.14.2: "refresh token rotation"). On `Ok`, the
    /// record is now rotated and the grant is the new pair's; the caller writes the
    /// record back and issues in the same family. On [`RefreshError::Reused`], the
    /// caller revokes the whole family: one of the two users is an attacker, and the
    /// server cannot tell which.
    pub(crate) fn exchange(
        &mut self,
        client: ClientId,
        scope: Option<ScopeSet>,
        now: Millis,
        family_revoked: bool,
    ) -> Result<Grant, RefreshError> {
        if self.grant.client != client {
            return Err(RefreshError::OtherClient);
        }
        if self.expires_at <= now || family_revoked {
            return Err(RefreshError::Invalid);
        }
        if self.rotated {
            return Err(RefreshError::Reused {
                user: self.grant.user,
            });
        }
        let scope = scope.unwrap_or(self.grant.scope);
        if !scope.is_subset_of(self.grant.scope) {
            return Err(RefreshError::ScopeExceeded);
        }
        self.rotated = true;
        Ok(Grant {
            scope,
            ..self.grant
        })
    }
}
