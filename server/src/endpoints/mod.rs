//! One module per endpoint. Each adds its handler to [`crate::app::state::App`].

use std::net::IpAddr;

use deviceflow_wire::ErrorCode;
use hyper::header::AUTHORIZATION;
use hyper::http::request::Parts;
use hyper::StatusCode;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::metrics::Throttle;
use crate::app::state::App;
use crate::audit;
use crate::http::response::OAuthError;
use crate::storage::store::Store;

pub(crate) mod admin;
pub(crate) mod admin_clients;
pub(crate) mod device_answer;
pub(crate) mod device_authorization;
pub(crate) mod introspection;
pub(crate) mod metadata;
pub(crate) mod registration;
pub(crate) mod revocation;
pub(crate) mod token;

impl<S: Store> App<S> {
    /// 429 for a request over `limit`: counted, audited, and `said` with how long to
    /// wait (RFC 6585 §4, `Retry-After`), as every quota and limit of the endpoints
    /// answers.
    pub(crate) fn too_many(
        &self,
        limit: Throttle,
        client_id: Option<&str>,
        peer: IpAddr,
        retry_after_ms: u64,
        said: &str,
    ) -> OAuthError {
        self.metrics.throttled(limit);
        audit::throttled(limit.label(), client_id, None, peer, retry_after_ms);
        OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            format!(
                "{said}; retry in {} s",
                retry_after_ms.div_ceil(1000).max(1)
            ),
        )
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_retry_after_ms(retry_after_ms)
    }
}

/// The bearer token of a request (RFC 6750 §2.1; the scheme is case-insensitive, RFC
/// 9110 §11.1), if it has one: the admin token, an initial access token, a
/// registration access token. None either when the header is sent twice: no copy
/// counts (RFC 9110 §11.6.2: the field is not a list).
pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    let mut values = parts.headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Whether a presented bearer token is `expected` (the admin token, the initial access
/// token), in constant time, length included: the two are compared as SHA-256
/// digests, since comparing the bytes ends at once when the lengths differ and so
/// times the length.
pub(crate) fn same_token(presented: &str, expected: &str) -> bool {
    let digest = |t: &str| Sha256::digest(t.as_bytes());
    bool::from(digest(presented).ct_eq(&digest(expected)))
}
