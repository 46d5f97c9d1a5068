//! One module per endpoint. Each adds its handler to [`crate::app::state::App`].

use hyper::header::AUTHORIZATION;
use hyper::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub(crate) mod admin;
pub(crate) mod admin_clients;
pub(crate) mod device_answer;
pub(crate) mod device_authorization;
pub(crate) mod introspection;
pub(crate) mod metadata;
pub(crate) mod registration;
pub(crate) mod revocation;
pub(crate) mod token;

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
