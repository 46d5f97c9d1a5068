//! One module per endpoint. Each adds its handler to [`crate::http::state::App`].

use hyper::header::AUTHORIZATION;
use hyper::http::request::Parts;

pub(crate) mod admin;
pub(crate) mod admin_clients;
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
