//! The token endpoint: the device access token request (RFC 8628 §3.4, §3.5) and
//! refresh (RFC 6749 §6, RFC 9700 §4.14.2).
//!
//! The device-code poll is the hot path: one store lookup, and every answer but the
//! token itself is a static body.

use std::net::IpAddr;

use deviceflow_wire::{ErrorCode, TokenResponse, GRANT_TYPE_DEVICE_CODE, GRANT_TYPE_REFRESH_TOKEN};
use hyper::http::request::Parts;
use hyper::StatusCode;

use crate::accounts::clients::Client;
use crate::audit;
use crate::http::form::Form;
use crate::http::response::{self, OAuthError, Reply};
use crate::http::state::App;
use crate::protocol::device_code::DeviceCode;
use crate::protocol::session::PollOutcome;
use crate::storage::store::Store;
use crate::storage::tokens::{Grant, Issued, RefreshError};

impl<S: Store> App<S> {
    pub(crate) async fn token(&self, parts: &Parts, body: &[u8], peer: IpAddr) -> Reply {
        let form = match Form::parse(body).map_err(OAuthError::from) {
            Ok(f) => f,
            Err(e) => return e.reply(),
        };
        // RFC 6749 §4.1.3, RFC 8628 §3.4: grant_type is REQUIRED.
        if !form.has("grant_type") {
            return OAuthError::invalid_request("grant_type is required").reply();
        }
        let client = match self.client(parts, &form).await {
            Ok(c) => c,
            Err(e) => return e.reply(),
        };
        if form.is("grant_type", GRANT_TYPE_DEVICE_CODE) {
            self.poll(&client, &form, peer)
                .await
                .unwrap_or_else(|e| e.reply())
        } else if form.is("grant_type", GRANT_TYPE_REFRESH_TOKEN) {
            self.refresh(&client, &form, peer)
                .await
                .unwrap_or_else(|e| e.reply())
        } else {
            OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "grant_type is not supported by this server",
            )
            .reply()
        }
    }

    /// RFC 8628 §3.4: the device access token request.
    async fn poll(
        &self,
        client: &Client,
        form: &Form<'_>,
        peer: IpAddr,
    ) -> Result<Reply, OAuthError> {
        if !client.device_grant {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client is not allowed to use the device authorization grant",
            ));
        }
        // RFC 8628 §3.4: device_code is REQUIRED.
        let raw = match form.get("device_code") {
            Ok(Some(raw)) => raw,
            Ok(None) => return Err(OAuthError::invalid_request("device_code is required")),
            Err(e) => return Err(OAuthError::invalid_request(e.to_string())),
        };
        let now = self.clock.now();
        let Some(code) = DeviceCode::parse(&raw) else {
            // Not one of ours: RFC 6749 §5.2 `invalid_grant` (checklist TR-04).
            self.metrics.poll(PollOutcome::Invalid);
            return Ok(response::poll_error(ErrorCode::InvalidGrant));
        };
        let outcome = self
            .store
            .poll(&code, client.id, now, &self.settings.poll)
            .await?;
        self.metrics.poll(outcome);
        Ok(match outcome {
            PollOutcome::Pending => response::poll_error(ErrorCode::AuthorizationPending),
            PollOutcome::SlowDown { .. } => response::poll_error(ErrorCode::SlowDown),
            PollOutcome::Denied => response::poll_error(ErrorCode::AccessDenied),
            PollOutcome::Expired => response::poll_error(ErrorCode::ExpiredToken),
            PollOutcome::Invalid => response::poll_error(ErrorCode::InvalidGrant),
            PollOutcome::Replayed { family, user } => {
                // RFC 6749 §4.1.2 by analogy (checklist TS-09): a code used twice is
                // compromised; what was issued from it is revoked.
                self.store.revoke_family(family).await?;
                let user = &self.settings.users.get(user).username;
                audit::replay_revoked(&client.client_id, user, code.user_code, peer);
                response::poll_error(ErrorCode::InvalidGrant)
            }
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
                // The records are written before the answer: never a token without
                // its record.
                let issued = self
                    .store
                    .issue(grant, family, client.refresh_grant, now)
                    .await?;
                self.metrics.token_issued(false);
                let user = &self.settings.users.get(user).username;
                audit::token_issued(&client.client_id, user, Some(code.user_code), peer);
                self.token_response(issued)
            }
        })
    }

    /// RFC 6749 §6: refreshing an access token, with rotation.
    async fn refresh(
        &self,
        client: &Client,
        form: &Form<'_>,
        peer: IpAddr,
    ) -> Result<Reply, OAuthError> {
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
        let issued = self
            .store
            .refresh(&token, client.id, scope, self.clock.now())
            .await?
            .map_err(|e| match e {
                RefreshError::ScopeExceeded => {
                    OAuthError::new(ErrorCode::InvalidScope, e.to_string())
                }
                RefreshError::Reused { user } => {
                    let user = &self.settings.users.get(user).username;
                    audit::refresh_reused(&client.client_id, user, peer);
                    OAuthError::new(ErrorCode::InvalidGrant, e.to_string())
                }
                _ => OAuthError::new(ErrorCode::InvalidGrant, e.to_string()),
            })?;
        self.metrics.token_issued(true);
        let user = &self.settings.users.get(issued.user).username;
        audit::token_issued(&client.client_id, user, None, peer);
        Ok(self.token_response(issued))
    }

    /// RFC 6749 §5.1: the successful token response. `scope` is always present.
    fn token_response(&self, issued: Issued) -> Reply {
        let body = TokenResponse {
            access_token: issued.access_token,
            token_type: "Bearer".to_owned(),
            expires_in: Some(issued.expires_in_secs),
            refresh_token: issued.refresh_token,
            scope: Some(self.settings.scopes.format(issued.scope)),
        };
        response::json_value(StatusCode::OK, &body)
    }
}
