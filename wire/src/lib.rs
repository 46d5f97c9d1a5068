//! The wire vocabulary of the OAuth 2.0 Device Authorization Grant, spelled once.
//!
//! Owns the names that cross the wire: the grant type URNs, the error codes of
//! [RFC 6749 §5.2] and [RFC 8628 §3.5], and the JSON bodies of the device
//! authorization and token responses. It owns no behaviour: what a server does with
//! these words lives in `deviceflow-server`, and what the conformance suite expects
//! of them lives in the suite, so that a shared bug cannot hide on both sides.
//!
//! [RFC 6749 §5.2]: https://www.rfc-editor.org/rfc/rfc6749#section-5.2
//! [RFC 8628 §3.5]: https://www.rfc-editor.org/rfc/rfc8628#section-3.5

use serde::{Deserialize, Serialize};

/// RFC 8628 §3.4: the `grant_type` value of the device access token request.
pub const GRANT_TYPE_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 6749 §6: the `grant_type` value of a refresh request.
pub const GRANT_TYPE_REFRESH_TOKEN: &str = "refresh_token";

/// RFC 8628 §3.2: clients MUST use 5 seconds when the response carries no `interval`.
pub const DEFAULT_INTERVAL_SECS: u64 = 5;

/// RFC 8628 §3.5: each `slow_down` raises the polling interval by 5 seconds.
pub const SLOW_DOWN_INCREMENT_SECS: u64 = 5;

/// RFC 8414 §3: where authorization server metadata is published.
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// OpenID Connect Discovery 1.0 §4: the other place discovery looks.
pub const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";

/// Where deviceflow-server serves each endpoint, relative to its issuer. Its RFC 8414
/// metadata says the same; a client that cannot discover the endpoints falls back to
/// these.
pub mod paths {
    /// RFC 8628 §3.1: the device authorization endpoint.
    pub const DEVICE_AUTHORIZATION: &str = "/oauth/device_authorization";
    /// RFC 6749 §3.2: the token endpoint (device-code polls, refresh).
    pub const TOKEN: &str = "/oauth/token";
    /// RFC 7662: token introspection.
    pub const INTROSPECTION: &str = "/oauth/introspect";
    /// RFC 7009: token revocation.
    pub const REVOCATION: &str = "/oauth/revoke";
    /// RFC 7591 §3: the client registration endpoint (when the server turns it on).
    pub const REGISTRATION: &str = "/oauth/register";
    /// Approvals and denials for machines, with the admin token.
    pub const ADMIN_DECISIONS: &str = "/admin/decisions";
    /// Registered applications, with the admin token: list (GET), register (POST);
    /// `/admin/clients/{client_id}`: remove (DELETE); `…/{client_id}/secret`: rotate
    /// the secret (POST).
    pub const ADMIN_CLIENTS: &str = "/admin/clients";
    /// The administrators' page of registered applications.
    pub const APPLICATIONS: &str = "/device/applications";
    /// RFC 8628 §3.2 `verification_uri`: where the person enters the code.
    pub const VERIFICATION: &str = "/device";
    /// What a device with a screen shows: the code and its QR code.
    pub const DISPLAY: &str = "/device/display";
    /// Liveness.
    pub const HEALTH: &str = "/healthz";
    /// Readiness: 503 while the session store does not answer.
    pub const READY: &str = "/readyz";
    /// Prometheus metrics.
    pub const METRICS: &str = "/metrics";
}

/// The `error` values of RFC 6749 §5.2, RFC 8628 §3.5, RFC 7009 §2.2.1, RFC 7591
/// §3.2.2, RFC 6750 §3.1 and the `temporarily_unavailable` of RFC 6749 §4.1.2.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// RFC 6749 §5.2: missing, repeated or malformed parameter.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed.
    InvalidClient,
    /// RFC 6749 §5.2: the grant (device code, refresh token) is invalid, expired,
    /// revoked, or was issued to another client.
    InvalidGrant,
    /// RFC 6749 §5.2: the client may not use this grant type.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the grant type is not supported by the server.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: the requested scope is invalid, unknown or exceeds what is allowed.
    InvalidScope,
    /// RFC 8628 §3.5: the user has not yet completed the authorization.
    AuthorizationPending,
    /// RFC 8628 §3.5: still pending, and the client polls too fast.
    SlowDown,
    /// RFC 8628 §3.5: the user denied the authorization request.
    AccessDenied,
    /// RFC 8628 §3.5: the device code has expired.
    ExpiredToken,
    /// RFC 7009 §2.2.1: the server cannot revoke this type of token.
    UnsupportedTokenType,
    /// RFC 6749 §4.1.2.1: the server is temporarily overloaded.
    TemporarilyUnavailable,
    /// RFC 6749 §4.1.2.1: an unexpected condition on the server.
    ServerError,
    /// RFC 7591 §3.2.2: a client metadata field is invalid.
    InvalidClientMetadata,
    /// RFC 6750 §3.1: the bearer token (an initial or registration access token) is
    /// missing, expired, revoked or wrong.
    InvalidToken,
}

/// RFC 7591 §2: the `token_endpoint_auth_method` of a public client.
pub const AUTH_METHOD_NONE: &str = "none";

/// RFC 7591 §2 / RFC 7592 §3: client metadata, as a registration request sends it and
/// as the server answers it (with the RFC 7591 §3.2.1 members it adds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRegistration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_issued_at: Option<u64>,
    /// RFC 7591 §3.2.1: REQUIRED when a secret is issued; 0 means it does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl ErrorCode {
    /// Every code, for tables and tests.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant,
        ErrorCode::UnauthorizedClient,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::InvalidScope,
        ErrorCode::AuthorizationPending,
        ErrorCode::SlowDown,
        ErrorCode::AccessDenied,
        ErrorCode::ExpiredToken,
        ErrorCode::UnsupportedTokenType,
        ErrorCode::TemporarilyUnavailable,
        ErrorCode::ServerError,
        ErrorCode::InvalidClientMetadata,
        ErrorCode::InvalidToken,
    ];

    /// The code as it appears in the `error` member.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::ServerError => "server_error",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::InvalidToken => "invalid_token",
        }
    }

    /// Parses an `error` member; `None` for a code this vocabulary does not know.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// RFC 8628 §3.5: the two answers after which a client keeps polling; any other
    /// error ends the flow.
    pub const fn continues_polling(self) -> bool {
        matches!(self, ErrorCode::AuthorizationPending | ErrorCode::SlowDown)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Durations in whole seconds (`expires_in`, `interval`) as JSON carries them. RFC
/// 8259 §6 has one number type, with no integer kind: a server whose encoder writes
/// `600.0` (or `6e2`) sends the integer 600. A fraction, a negative number, or
/// anything but a number is refused, saying which.
pub mod seconds {
    use serde::de::{self, Deserializer, Unexpected, Visitor};

    struct Whole;

    impl Visitor<'_> for Whole {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number of seconds")
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
            Ok(n)
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<u64, E> {
            u64::try_from(n).map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))
        }

        fn visit_f64<E: de::Error>(self, f: f64) -> Result<u64, E> {
            // 2^64 and beyond (an integer too long for u64 reads as a float) is no
            // value to saturate to u64::MAX: it would be reported as sent.
            if (0.0..18_446_744_073_709_551_616.0).contains(&f) && f.fract() == 0.0 {
                Ok(f as u64)
            } else {
                Err(E::invalid_value(Unexpected::Float(f), &self))
            }
        }
    }

    /// A required duration.
    pub fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(Whole)
    }

    /// An optional one (`null` reads as absent, as serde reads `Option`).
    pub fn whole_if_present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        struct Maybe;

        impl<'de> Visitor<'de> for Maybe {
            type Value = Option<u64>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number of seconds")
            }

            fn visit_none<E: de::Error>(self) -> Result<Option<u64>, E> {
                Ok(None)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
                Ok(None)
            }

            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Option<u64>, D2::Error> {
                whole(d).map(Some)
            }
        }

        d.deserialize_option(Maybe)
    }
}

/// RFC 8628 §3.2: the device authorization response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    #[serde(deserialize_with = "seconds::whole")]
    pub expires_in: u64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "seconds::whole_if_present"
    )]
    pub interval: Option<u64>,
}

/// RFC 6749 §5.1: a successful access token response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "seconds::whole_if_present"
    )]
    pub expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// RFC 6749 §5.2: an error response. `error` is kept as a string so that codes from
/// outside this vocabulary (a third-party server's `device_not_found`) survive a
/// round trip; [`ErrorResponse::code`] reads it as an [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl ErrorResponse {
    pub fn code(&self) -> Option<ErrorCode> {
        ErrorCode::parse(&self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_round_trips_through_parse_and_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert_eq!(ErrorCode::parse("device_not_found"), None);
    }

    /// RFC 8259 §6: `600.0` is the integer 600. The load generator and the device
    /// command read these bodies, and refused every device of a server whose encoder
    /// writes a point (review helper-95), while the suite (DR-11) passes it.
    #[test]
    fn durations_written_with_a_point_are_whole_seconds_and_fractions_are_not() {
        let da = |expires_in: &str, interval: &str| {
            serde_json::from_str::<DeviceAuthorizationResponse>(&format!(
                r#"{{"device_code":"d","user_code":"u","verification_uri":"https://as/d","expires_in":{expires_in},"interval":{interval}}}"#
            ))
            .map(|r| (r.expires_in, r.interval))
            .map_err(|e| e.to_string())
        };
        assert_eq!(da("600", "5"), Ok((600, Some(5))));
        assert_eq!(da("600.0", "5.0"), Ok((600, Some(5))));
        assert_eq!(da("6e2", "null"), Ok((600, None)));
        for (expires_in, interval, says) in [
            ("599.5", "5", "floating point `599.5`"),
            ("-5", "5", "integer `-5`"),
            ("600", "2.5", "floating point `2.5`"),
            ("\"600\"", "5", "string \"600\""),
            // Past u64 (helper-100): had read as u64::MAX, a value nobody sent.
            (
                "1000000000000000000000000000000",
                "5",
                "floating point `1e+30`",
            ),
            (
                "600",
                "18446744073709551616",
                "floating point `1.8446744073709552e+19`",
            ),
        ] {
            let e = da(expires_in, interval).unwrap_err();
            assert!(
                e.contains(says) && e.contains("a whole number of seconds"),
                "{expires_in} {interval}: {e}"
            );
        }
        let token: TokenResponse = serde_json::from_str(
            r#"{"access_token":"a","token_type":"Bearer","expires_in":3600.0}"#,
        )
        .unwrap();
        assert_eq!(token.expires_in, Some(3600));
        let token: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","token_type":"Bearer"}"#).unwrap();
        assert_eq!(token.expires_in, None);
    }

    #[test]
    fn only_pending_and_slow_down_continue_polling() {
        let continuing: Vec<_> = ErrorCode::ALL
            .into_iter()
            .filter(|c| c.continues_polling())
            .collect();
        assert_eq!(
            continuing,
            [ErrorCode::AuthorizationPending, ErrorCode::SlowDown]
        );
    }
}
