//! The device authorization endpoint (RFC 8628 §3.1, §3.2).

use std::net::IpAddr;

use deviceflow_wire::ErrorCode;
use hyper::http::request::Parts;
use hyper::StatusCode;

use crate::accounts::clients::Client;
use crate::app::metrics::Throttle;
use crate::app::state::App;
use crate::audit;
use crate::http::form::Form;
use crate::http::response::{self, OAuthError, Reply};
use crate::protocol::device_code::DeviceCode;
use crate::protocol::scope::ScopeSet;
use crate::quota::{Refusal, Source};
use crate::storage::store::{CreateError, Store};

impl<S: Store> App<S> {
    pub(crate) async fn device_authorization(
        &self,
        parts: &Parts,
        body: &[u8],
        peer: IpAddr,
    ) -> Reply {
        let (client, scope) = match self.device_request(parts, body) {
            Ok(Some(request)) => request,
            // A registered client's request: its client is in the store, so the
            // request is read again on a path of its own, boxed: only a registered
            // client's requests pay for the lookup, and the device authorization's
            // future stays small.
            Ok(None) => {
                let started = Box::pin(self.registered_device_authorization(parts, body, peer));
                return self.authorization_response(started.await);
            }
            Err(e) => return e.reply(),
        };
        let started = self.start(client, scope, peer).await;
        self.authorization_response(started)
    }

    /// RFC 8628 §3.2: the device authorization response, or the error.
    fn authorization_response(&self, started: Result<DeviceCode, OAuthError>) -> Reply {
        match started {
            Ok(code) => response::json(StatusCode::OK, self.device_answer.render(&code)),
            Err(e) => e.reply(),
        }
    }

    /// Reads a device authorization request and authenticates its client: the client
    /// and the scope asked for, or `None` when the client is a registered one, which
    /// only the store knows. Not async: the form is not held across the store's calls.
    fn device_request<'a>(
        &'a self,
        parts: &Parts,
        body: &[u8],
    ) -> Result<Option<(&'a Client, ScopeSet)>, OAuthError> {
        let form = Form::parse(body).map_err(OAuthError::from)?;
        // RFC 8628 §3.1: confidential clients authenticate here as at the token endpoint.
        match self.configured_client(parts, &form)? {
            Some(client) => Ok(Some((client, self.requested_scope(client, &form)?))),
            None => Ok(None),
        }
    }

    /// A registered client's device authorization: authenticated from the store (one
    /// more lookup), then the same checks and the same session as a configured
    /// client's (`device_request` and `start`, which this must follow).
    async fn registered_device_authorization(
        &self,
        parts: &Parts,
        body: &[u8],
        peer: IpAddr,
    ) -> Result<DeviceCode, OAuthError> {
        let form = Form::parse(body).map_err(OAuthError::from)?;
        let client = self.client(parts, &form).await?;
        let scope = self.requested_scope(&client, &form)?;
        self.start(&client, scope, peer).await
    }

    /// The scope `client` asks for in `form`, if it may use this grant and ask for it.
    fn requested_scope(&self, client: &Client, form: &Form<'_>) -> Result<ScopeSet, OAuthError> {
        // RFC 6749 §5.2: a client not registered for this grant is `unauthorized_client`.
        if !client.device_grant {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client is not allowed to use the device authorization grant",
            ));
        }
        let scope_param = form
            .get("scope")
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        // RFC 6749 §3.3: with no scope, the server uses a pre-defined default.
        match scope_param {
            None => Ok(client.default_scope),
            Some(s) => self
                .settings
                .scopes
                .parse(&s, client.allowed_scope)
                .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string())),
        }
    }

    /// Starts a pending session for `client`, within the quotas and the session cap.
    async fn start(
        &self,
        client: &Client,
        scope: ScopeSet,
        peer: IpAddr,
    ) -> Result<DeviceCode, OAuthError> {
        let now = self.clock.now();
        // RFC 8628 §5.2 leaves abuse to the server: quotas per source and per client,
        // answered 429 with Retry-After (RFC 6585 §4) and `temporarily_unavailable`,
        // the RFC 6749 code for a server that cannot take the request now.
        if let Err(refusal) = self.store.admit(Source::of(peer), client.id, now).await? {
            let (limit, whom) = match refusal {
                Refusal::Source { .. } => (Throttle::Source, "this address"),
                Refusal::Client { .. } => (Throttle::Client, "this client"),
            };
            return Err(self.too_many(
                limit,
                Some(&client.client_id),
                peer,
                refusal.retry_after_ms(),
                &format!("too many device authorizations from {whom}"),
            ));
        }
        let code = self
            .store
            .create(
                client.id,
                scope,
                now,
                self.settings.expires_in_secs * 1000,
                &self.settings.poll,
            )
            .await?
            .map_err(|e| match e {
                CreateError::Full => {
                    self.metrics.sessions_full();
                    audit::throttled("session_cap", Some(&client.client_id), None, peer, 60_000);
                    OAuthError::new(
                        ErrorCode::TemporarilyUnavailable,
                        "too many device authorizations are in progress; retry later",
                    )
                    .with_retry_after_ms(60_000)
                }
                CreateError::ClientFull => {
                    let retry = self.settings.expires_in_secs * 1000;
                    self.too_many(
                        Throttle::ClientShare,
                        Some(&client.client_id),
                        peer,
                        retry,
                        "too many device authorizations from this client",
                    )
                }
            })?;
        self.metrics.device_authorization();
        Ok(code)
    }
}
