//! The token endpoint: the device access token request (RFC 8628 §3.4, §3.5) and
//! refresh (RFC 6749 §6, RFC 9700 §4.14.2).
//!
//! The device-code poll is the hot path: one store lookup, and every answer but the
//! token itself is a static body.

use std::net::IpAddr;

use deviceflow_wire::{ErrorCode, TokenResponse};
use hyper::http::request::Parts;
use hyper::StatusCode;

use crate::accounts::clients::Client;
use crate::app::metrics::Throttle;
use crate::app::state::App;
use crate::audit;
use crate::clock::Millis;
use crate::http::form::{Form, DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT};
use crate::http::response::{self, Answer, OAuthError, Reply};
use crate::protocol::device_code::DeviceCode;
use crate::protocol::ids::UserId;
use crate::protocol::scope::ScopeSet;
use crate::protocol::session::PollOutcome;
use crate::storage::store::Store;
use crate::storage::tokens::{Grant, Issued, RefreshError};

/// A token request, read and authenticated: what the answer needs and no more. The
/// form is read before the store is awaited and not held across it, so the poll's
/// future, which hyper moves with every request, stays small.
enum TokenRequest<'a> {
    /// RFC 8628 §3.4, with its device code parsed: `None` when it cannot be one of
    /// ours.
    Poll {
        client: &'a Client,
        code: Option<DeviceCode>,
    },
    /// RFC 6749 §6.
    Refresh {
        client: &'a Client,
        token: String,
        scope: Option<ScopeSet>,
    },
}

/// What [`App::token_request`] reads without the store.
enum Read<'a> {
    /// A configured client's request, authenticated.
    Ready(TokenRequest<'a>),
    /// A registered client's request, which only the store can authenticate; with its
    /// device code as already read ([`App::early_code`]), so it is not read twice.
    Registered(Option<DeviceCode>),
}

impl<S: Store> App<S> {
    pub(crate) async fn token(&self, parts: &Parts, body: &[u8], peer: IpAddr) -> Answer {
        // Read into a small value first: what the match below holds while it awaits
        // is part of the future of every poll.
        let request = match self.token_request(parts, body) {
            Ok(request) => request,
            Err(e) => return e.reply().into(),
        };
        match request {
            Read::Ready(TokenRequest::Poll { client, code }) => self.poll(client, code, peer).await,
            Read::Ready(TokenRequest::Refresh {
                client,
                token,
                scope,
            }) => {
                // Boxed: refreshes are rare next to polls, and their future is larger.
                Box::pin(self.refresh(client, &token, scope, peer))
                    .await
                    .unwrap_or_else(|e| e.reply())
                    .into()
            }
            // A registered client's request: its client is in the store, so the
            // request is read again on a path of its own, boxed: only a registered
            // client's requests pay for the lookup.
            Read::Registered(code) => Box::pin(self.registered_token(parts, body, code, peer))
                .await
                .unwrap_or_else(|e| e.reply().into()),
        }
    }

    /// A registered client's token request: authenticated from the store (one more
    /// lookup; a deleted client is `invalid_client`), then the same checks and the
    /// same poll or refresh as a configured client's (`token`, which this must follow).
    async fn registered_token(
        &self,
        parts: &Parts,
        body: &[u8],
        code: Option<DeviceCode>,
        peer: IpAddr,
    ) -> Result<Answer, OAuthError> {
        let form = Form::parse(body).map_err(OAuthError::from)?;
        let client = self.client(parts, &form).await?;
        match self.grant_request(&client, &form, code)? {
            TokenRequest::Poll { client, code } => Ok(self.poll(client, code, peer).await),
            TokenRequest::Refresh {
                client,
                token,
                scope,
            } => self
                .refresh(client, &token, scope, peer)
                .await
                .map(Answer::from),
        }
    }

    /// Reads and checks a token request, and authenticates its client, unless it is a
    /// registered one, which only the store knows ([`Read::Registered`]).
    fn token_request<'a>(&'a self, parts: &Parts, body: &[u8]) -> Result<Read<'a>, OAuthError> {
        let form = Form::parse(body).map_err(OAuthError::from)?;
        // RFC 6749 §4.1.3, RFC 8628 §3.4: grant_type is REQUIRED.
        if !form.has("grant_type") {
            return Err(OAuthError::invalid_request("grant_type is required"));
        }
        let code = self.early_code(&form);
        match self.configured_client(parts, &form)? {
            Some(client) => self.grant_request(client, &form, code).map(Read::Ready),
            None => Ok(Read::Registered(code)),
        }
    }

    /// A poll's device code, read before its client is authenticated, and its session
    /// asked of memory ([`Store::prefetch`]): on a fleet's poll that session is a cache
    /// miss, and its fetch then overlaps the authentication. Whether the code is
    /// required or one of ours is said after the client (`poll_request`), as before.
    fn early_code(&self, form: &Form<'_>) -> Option<DeviceCode> {
        if !form.is("grant_type", &DEVICE_CODE_GRANT) {
            return None;
        }
        let code = DeviceCode::parse(form.get_bytes("device_code").ok()??)?;
        self.store.prefetch(&code);
        Some(code)
    }

    /// The grant `form` asks `client` for, with its parameters checked; `code` is its
    /// device code when already read ([`early_code`](Self::early_code)).
    fn grant_request<'a>(
        &self,
        client: &'a Client,
        form: &Form<'_>,
        code: Option<DeviceCode>,
    ) -> Result<TokenRequest<'a>, OAuthError> {
        if form.is("grant_type", &DEVICE_CODE_GRANT) {
            self.poll_request(client, form, code)
        } else if form.is("grant_type", &REFRESH_TOKEN_GRANT) {
            self.refresh_request(client, form)
        } else {
            Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "grant_type is not supported by this server",
            ))
        }
    }

    /// RFC 8628 §3.4: the device access token request's parameters.
    fn poll_request<'a>(
        &self,
        client: &'a Client,
        form: &Form<'_>,
        code: Option<DeviceCode>,
    ) -> Result<TokenRequest<'a>, OAuthError> {
        if !client.device_grant {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client is not allowed to use the device authorization grant",
            ));
        }
        // RFC 8628 §3.4: device_code is REQUIRED.
        let raw = match form.get_bytes("device_code") {
            Ok(Some(raw)) => raw,
            Ok(None) => return Err(OAuthError::invalid_request("device_code is required")),
            Err(e) => return Err(OAuthError::invalid_request(e.to_string())),
        };
        Ok(TokenRequest::Poll {
            client,
            code: code.or_else(|| DeviceCode::parse(&raw)),
        })
    }

    /// RFC 6749 §6: the refresh request's parameters.
    fn refresh_request<'a>(
        &self,
        client: &'a Client,
        form: &Form<'_>,
    ) -> Result<TokenRequest<'a>, OAuthError> {
        if !client.refresh_grant {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client is not allowed to use the refresh_token grant",
            ));
        }
        let bad = |e: crate::http::form::FormError| OAuthError::invalid_request(e.to_string());
        let token = form
            .get("refresh_token")
            .map_err(bad)?
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        let scope = match form.get("scope").map_err(bad)? {
            None => None,
            Some(s) => Some(
                self.settings
                    .scopes
                    .parse(&s, client.allowed_scope)
                    .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string()))?,
            ),
        };
        Ok(TokenRequest::Refresh {
            client,
            token: token.into_owned(),
            scope,
        })
    }

    /// RFC 8628 §3.4, §3.5: answers a poll of `code`: one store call, and every
    /// answer but the token a static body. The poll that redeems the code, or replays
    /// it, goes on in [`redeem`](Self::redeem) or [`replay`](Self::replay), boxed: it
    /// comes once per code, and inline its future would make every poll's as large.
    async fn poll(&self, client: &Client, code: Option<DeviceCode>, peer: IpAddr) -> Answer {
        let Some(code) = code else {
            // Not one of ours: RFC 6749 §5.2 `invalid_grant` (checklist TR-04).
            self.metrics.poll(PollOutcome::Invalid);
            return Answer::PollError(ErrorCode::InvalidGrant);
        };
        let now = self.clock.now();
        let outcome = match self
            .store
            .poll(&code, client.id, now, &self.settings.poll)
            .await
        {
            Ok(outcome) => outcome,
            Err(unavailable) => return OAuthError::from(unavailable).reply().into(),
        };
        self.metrics.poll(outcome);
        let error = match outcome {
            PollOutcome::Pending => ErrorCode::AuthorizationPending,
            PollOutcome::SlowDown { .. } => ErrorCode::SlowDown,
            PollOutcome::Denied => ErrorCode::AccessDenied,
            PollOutcome::Expired => ErrorCode::ExpiredToken,
            PollOutcome::Invalid => ErrorCode::InvalidGrant,
            PollOutcome::Issue {
                user,
                scope,
                family,
            } => {
                let grant = Grant {
                    client: client.id,
                    user,
                    scope,
                };
                return Box::pin(self.redeem(client, code, grant, family, now, peer))
                    .await
                    .unwrap_or_else(|e| e.reply())
                    .into();
            }
            PollOutcome::Replayed { family, user } => {
                return Box::pin(self.replay(client, code, family, user, peer))
                    .await
                    .unwrap_or_else(|e| e.reply())
                    .into();
            }
        };
        Answer::PollError(error)
    }

    /// The poll that redeems an approved code: its tokens, in a new family.
    async fn redeem(
        &self,
        client: &Client,
        code: DeviceCode,
        grant: Grant,
        family: u64,
        now: Millis,
        peer: IpAddr,
    ) -> Result<Reply, OAuthError> {
        // The person who approved is no longer configured: no token speaks for them.
        if self.settings.users.get(grant.user).is_none() {
            return Ok(response::poll_error(ErrorCode::InvalidGrant));
        }
        // The records are written before the answer: never a token without its record.
        let Some(issued) = self
            .store
            .redeem(code.user_code, grant, family, client.refresh_grant, now)
            .await?
        else {
            // Another poll of this code redeemed it first: this is the replay, and the
            // family is revoked (checklist TS-09).
            let user = self.settings.users.username(grant.user);
            audit::replay_revoked(&client.client_id, user, code.user_code, peer);
            return Ok(response::poll_error(ErrorCode::InvalidGrant));
        };
        self.metrics.token_issued(false);
        let user = self.settings.users.username(grant.user);
        audit::token_issued(&client.client_id, user, Some(code.user_code), peer);
        Ok(self.token_response(issued))
    }

    /// A poll of a code already redeemed: RFC 6749 §4.1.2 by analogy (checklist
    /// TS-09), a code used twice is compromised, and what was issued from it is
    /// revoked.
    async fn replay(
        &self,
        client: &Client,
        code: DeviceCode,
        family: u64,
        user: UserId,
        peer: IpAddr,
    ) -> Result<Reply, OAuthError> {
        self.store.revoke_family(family).await?;
        let user = self.settings.users.username(user);
        audit::replay_revoked(&client.client_id, user, code.user_code, peer);
        Ok(response::poll_error(ErrorCode::InvalidGrant))
    }

    /// RFC 6749 §6: refreshing an access token, with rotation.
    async fn refresh(
        &self,
        client: &Client,
        token: &str,
        scope: Option<ScopeSet>,
        peer: IpAddr,
    ) -> Result<Reply, OAuthError> {
        let issued = self
            .store
            .refresh(token, client.id, scope, self.clock.now())
            .await?
            .map_err(|e| match e {
                RefreshError::ScopeExceeded => {
                    OAuthError::new(ErrorCode::InvalidScope, e.to_string())
                }
                RefreshError::Reused { user } => {
                    let user = self.settings.users.username(user);
                    audit::refresh_reused(&client.client_id, user, peer);
                    OAuthError::new(ErrorCode::InvalidGrant, e.to_string())
                }
                // Not invalid_grant, which would have the client drop a token that
                // still works: 429 with the wait, as the other quotas answer.
                RefreshError::Paced { retry_after_ms } => self.too_many(
                    Throttle::RefreshPerGrant,
                    Some(&client.client_id),
                    peer,
                    retry_after_ms,
                    &e.to_string(),
                ),
                _ => OAuthError::new(ErrorCode::InvalidGrant, e.to_string()),
            })?;
        // Tokens for a person no longer configured are inactive (introspection says
        // so): the client is told its grant is gone rather than handed them.
        let Some(user) = self.settings.users.get(issued.user) else {
            return Err(OAuthError::new(
                ErrorCode::InvalidGrant,
                "the user this grant was made for is no longer configured",
            ));
        };
        self.metrics.token_issued(true);
        audit::token_issued(&client.client_id, &user.username, None, peer);
        Ok(self.token_response(issued))
    }

    /// RFC 6749 §5.1: the successful token response. `scope` is present whenever the
    /// grant has one (checklist TS-05). A grant of no scope (a client configured with
    /// none) leaves it out: RFC 6749 §3.3's syntax has no empty scope, so `"scope":""`
    /// would be malformed.
    fn token_response(&self, issued: Issued) -> Reply {
        let body = TokenResponse {
            access_token: issued.access_token,
            token_type: "Bearer".to_owned(),
            expires_in: Some(issued.expires_in_secs),
            refresh_token: issued.refresh_token,
            scope: (!issued.scope.is_empty()).then(|| self.settings.scopes.format(issued.scope)),
        };
        response::json_value(StatusCode::OK, &body)
    }
}
