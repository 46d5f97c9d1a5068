//! The device authorization endpoint (RFC 8628 §3.1, §3.2).

use deviceflow_wire::{DeviceAuthorizationResponse, ErrorCode};
use hyper::http::request::Parts;
use hyper::StatusCode;

use crate::app::{parse_form, paths, App};
use crate::response::{self, OAuthError, Reply};
use crate::store::{CreateError, SessionStore};

impl<S: SessionStore> App<S> {
    pub(crate) fn device_authorization(&self, parts: &Parts, body: &[u8]) -> Reply {
        match self.authorize_device(parts, body) {
            Ok(r) => response::json_value(StatusCode::OK, &r),
            Err(e) => e.reply(),
        }
    }

    fn authorize_device(
        &self,
        parts: &Parts,
        body: &[u8],
    ) -> Result<DeviceAuthorizationResponse, OAuthError> {
        let form = parse_form(body)?;
        // RFC 8628 §3.1: confidential clients authenticate here as at the token endpoint.
        let client = self.client(parts, &form)?;
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
        let code = self
            .store
            .create(
                client.id,
                scope,
                now,
                self.settings.expires_in_secs * 1000,
                &self.settings.poll,
            )
            .map_err(|CreateError::Full| {
                self.metrics.sessions_full();
                OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "too many device authorizations are in progress; retry later",
                )
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
}
