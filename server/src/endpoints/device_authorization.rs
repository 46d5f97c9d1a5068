//! The device authorization endpoint (RFC 8628 §3.1, §3.2).

use std::net::IpAddr;

use deviceflow_wire::{DeviceAuthorizationResponse, ErrorCode};
use hyper::http::request::Parts;
use hyper::StatusCode;

use crate::accounts::clients::Client;
use crate::audit;
use crate::http::form::Form;
use crate::http::metrics::Throttle;
use crate::http::paths;
use crate::http::response::{self, OAuthError, Reply};
use crate::http::state::App;
use crate::quota::{Refusal, Source};
use crate::storage::store::{CreateError, Store};

impl<S: Store> App<S> {
    pub(crate) async fn device_authorization(
        &self,
        parts: &Parts,
        body: &[u8],
        peer: IpAddr,
    ) -> Reply {
        match self.authorize_device(parts, body, peer).await {
            Ok(r) => response::json_value(StatusCode::OK, &r),
            Err(e) => e.reply(),
        }
    }

    async fn authorize_device(
        &self,
        parts: &Parts,
        body: &[u8],
        peer: IpAddr,
    ) -> Result<DeviceAuthorizationResponse, OAuthError> {
        let form = Form::parse(body).map_err(OAuthError::from)?;
        // RFC 8628 §3.1: confidential clients authenticate here as at the token endpoint.
        let client = self.client(parts, &form).await?;
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
        let scope = match scope_param {
            None => client.default_scope,
            Some(s) => self
                .settings
                .scopes
                .parse(&s, client.allowed_scope)
                .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string()))?,
        };
        let now = self.clock.now();
        // RFC 8628 §5.2 leaves abuse to the server: quotas per source and per client,
        // answered 429 with Retry-After (RFC 6585 §4) and `temporarily_unavailable`,
        // the RFC 6749 code for a server that cannot take the request now.
        if let Err(refusal) = self.store.admit(Source::of(peer), client.id, now).await? {
            let (limit, whom) = match refusal {
                Refusal::Source { .. } => (Throttle::Source, "this address"),
                Refusal::Client { .. } => (Throttle::Client, "this client"),
            };
            return Err(self.throttle(limit, &client, peer, refusal.retry_after_ms(), whom));
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
                    self.throttle(Throttle::ClientShare, &client, peer, retry, "this client")
                }
            })?;
        self.metrics.device_authorization();
        let user_code = code.user_code.display();
        let verification_uri = format!("{}{}", self.issuer, paths::VERIFICATION);
        Ok(DeviceAuthorizationResponse {
            device_code: code.encode(),
            // RFC 8628 §3.3.1: the complete URI carries the user code, so the person
            // need not type it; it never carries the device code (checklist DR-14).
            verification_uri_complete: Some(format!("{verification_uri}?user_code={user_code}")),
            verification_uri,
            user_code,
            expires_in: self.settings.expires_in_secs,
            interval: Some(self.settings.interval_secs),
        })
    }

    /// 429 for a device authorization over a quota: counted, logged, and said with
    /// how long to wait.
    fn throttle(
        &self,
        limit: Throttle,
        client: &Client,
        peer: IpAddr,
        retry_after_ms: u64,
        whom: &str,
    ) -> OAuthError {
        self.metrics.throttled(limit);
        audit::throttled(
            limit.label(),
            Some(&client.client_id),
            None,
            peer,
            retry_after_ms,
        );
        OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            format!(
                "too many device authorizations from {whom}; retry in {} s",
                retry_after_ms.div_ceil(1000).max(1)
            ),
        )
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_retry_after_ms(retry_after_ms)
    }
}
