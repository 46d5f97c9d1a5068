//! Every answer the server sends is built here: JSON with the OAuth cache headers,
//! the RFC 6749 §5.2 error format, and the pre-serialized poll answers.
//!
//! Each protocol error is declared once, with its status and body; endpoints say which
//! error and why, never how it is spelled.

use std::borrow::Cow;

use bytes::Bytes;
use deviceflow_wire::ErrorCode;
use http_body_util::Full;
use hyper::header::{
    HeaderValue, ACCEPT_ENCODING, ALLOW, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use hyper::{Response, StatusCode};

use super::form::FormError;

pub(crate) type Body = Full<Bytes>;
pub(crate) type Reply = Response<Body>;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

/// A JSON answer. RFC 6749 §5.1 (and RFC 8628 §3.2's example): responses carrying or
/// about credentials are `Cache-Control: no-store` and `Pragma: no-cache`; every JSON
/// answer of this server gets them, so none can be forgotten.
pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, JSON);
    h.insert(CACHE_CONTROL, NO_STORE);
    h.insert(PRAGMA, NO_CACHE);
    r
}

/// A JSON answer from a serializable value.
pub(crate) fn json_value(status: StatusCode, value: &impl serde::Serialize) -> Reply {
    match serde_json::to_vec(value) {
        Ok(body) => json(status, body),
        // Serializing our own plain structs cannot fail; if it ever did, say so plainly.
        Err(_) => OAuthError::new(ErrorCode::ServerError, "response encoding failed").reply(),
    }
}

/// Adds `Retry-After`, in whole seconds, rounded up.
pub(crate) fn with_retry_after(mut r: Reply, ms: u64) -> Reply {
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(ms.div_ceil(1000)));
    r
}

/// An RFC 6749 §5.2 error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    status: StatusCode,
    /// RFC 6749 §5.2: "If the client attempted to authenticate via the
    /// "Authorization" request header field, the authorization server MUST respond
    /// with an HTTP 401 ... and include the "WWW-Authenticate" response header field
    /// matching the authentication scheme used by the client."
    challenge: Option<&'static str>,
    /// Seconds for `Retry-After` (RFC 9110 §10.2.3), on a 429 or 503.
    retry_after_secs: Option<u64>,
}

/// A form that cannot be read is RFC 6749 §5.2 `invalid_request`.
impl From<FormError> for OAuthError {
    fn from(e: FormError) -> OAuthError {
        OAuthError::invalid_request(e.to_string())
    }
}

impl OAuthError {
    pub(crate) fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> OAuthError {
        let status = match code {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        OAuthError {
            code,
            description: description.into(),
            status,
            challenge: None,
            retry_after_secs: None,
        }
    }

    /// Adds `Retry-After`, rounded up to whole seconds (at least 1).
    pub(crate) fn with_retry_after_ms(mut self, ms: u64) -> OAuthError {
        self.retry_after_secs = Some(ms.div_ceil(1000).max(1));
        self
    }

    pub(crate) fn invalid_request(description: impl Into<Cow<'static, str>>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidRequest, description)
    }

    /// Overrides the status (413 for an oversized body, 408 for a slow one).
    pub(crate) fn with_status(mut self, status: StatusCode) -> OAuthError {
        self.status = status;
        self
    }

    /// Adds `WWW-Authenticate: Basic` (client authentication through the header failed).
    pub(crate) fn with_basic_challenge(mut self) -> OAuthError {
        self.challenge = Some("Basic realm=\"deviceflow\", charset=\"UTF-8\"");
        self
    }

    /// RFC 6750 §3: `invalid_token` for a bearer token (an initial or a registration
    /// access token) that is missing or wrong, with its `WWW-Authenticate: Bearer`.
    /// RFC 6750 §3.1: a request that `presented` none gets the challenge without an
    /// error code.
    pub(crate) fn invalid_token(
        description: impl Into<Cow<'static, str>>,
        presented: bool,
    ) -> OAuthError {
        let mut e = OAuthError::new(ErrorCode::InvalidToken, description);
        e.challenge = Some(if presented {
            "Bearer realm=\"deviceflow\", error=\"invalid_token\""
        } else {
            "Bearer realm=\"deviceflow\""
        });
        e
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn reply(&self) -> Reply {
        let body = serde_json::json!({
            "error": self.code.as_str(),
            "error_description": wire_safe(&self.description),
        });
        let mut r = json(self.status, body.to_string());
        if let Some(challenge) = self.challenge {
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if let Some(secs) = self.retry_after_secs {
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        name_accepted_codings(&mut r);
        r
    }
}

/// RFC 9110 §12.5.3: a 415 for the body's content coding (`body::check_body_headers`,
/// this server's one use of 415) says which codings are accepted, on the JSON
/// endpoints and the person's pages alike.
pub(crate) fn name_accepted_codings(r: &mut Reply) {
    if r.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        r.headers_mut()
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
}

/// RFC 6749 §5.2: `error_description` is limited to %x20-21 / %x23-5B / %x5D-7E, so
/// `"`, `\` and anything outside printable ASCII are rewritten (the `§` of our
/// citations becomes `Sec.`).
pub(crate) fn wire_safe(text: &str) -> Cow<'_, str> {
    if text.bytes().all(is_description_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '§' => out.push_str("Sec."),
            '"' => out.push('\''),
            '\\' => out.push('/'),
            '–' | '—' => out.push('-'),
            c if c.is_ascii() && is_description_char(c as u8) => out.push(c),
            _ => out.push('?'),
        }
    }
    Cow::Owned(out)
}

/// RFC 6749 §5.2: the characters allowed in `error` and `error_description`.
pub(crate) fn is_description_char(b: u8) -> bool {
    matches!(b, 0x20 | 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// An endpoint's answer on its way out, small enough to move through the async layers
/// above it without copying a response (144 bytes, a `memcpy` call at each layer): the
/// poll's error answers travel as their error code, built by [`Answer::into_reply`]
/// once, where the answer leaves its endpoint; any other answer (a token, a refused
/// request, the rare `invalid_grant` of a replayed code) is built where it is made,
/// and boxed.
pub(crate) enum Answer {
    /// One of [`poll_error`]'s answers.
    PollError(ErrorCode),
    /// An answer already built.
    Built(Box<Reply>),
}

impl Answer {
    pub(crate) fn into_reply(self) -> Reply {
        match self {
            Answer::PollError(code) => poll_error(code),
            Answer::Built(reply) => *reply,
        }
    }
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Answer {
        Answer::Built(Box::new(reply))
    }
}

/// The answers to a pending or concluded poll, serialized at compile time so the poll
/// path allocates no body (`Bytes::from_static`).
pub fn poll_error(code: ErrorCode) -> Reply {
    let body: &'static str = match code {
        ErrorCode::AuthorizationPending => concat!(
            r#"{"error":"authorization_pending","#,
            r#""error_description":"The user has not yet approved or denied this request."}"#
        ),
        ErrorCode::SlowDown => concat!(
            r#"{"error":"slow_down","#,
            r#""error_description":"Polling too fast: add 5 seconds to the interval for this and all later polls (RFC 8628 Sec.3.5)."}"#
        ),
        ErrorCode::AccessDenied => concat!(
            r#"{"error":"access_denied","#,
            r#""error_description":"The user denied this request."}"#
        ),
        ErrorCode::ExpiredToken => concat!(
            r#"{"error":"expired_token","#,
            r#""error_description":"The device_code has expired; start a new device authorization."}"#
        ),
        _ => concat!(
            r#"{"error":"invalid_grant","#,
            r#""error_description":"The device_code is invalid, was already used, or was issued to another client."}"#
        ),
    };
    json(StatusCode::BAD_REQUEST, Bytes::from_static(body.as_bytes()))
}

/// 200 with no body (RFC 7009 §2.2), still not to be cached.
pub(crate) fn empty_ok() -> Reply {
    let mut r = Response::new(Full::new(Bytes::new()));
    r.headers_mut().insert(CACHE_CONTROL, NO_STORE);
    r
}

/// 204 No Content (RFC 7592 §2.3: a client deleted), not to be cached.
pub(crate) fn no_content() -> Reply {
    let mut r = empty_ok();
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// 404 for a path this server does not serve.
pub(crate) fn not_found() -> Reply {
    json(
        StatusCode::NOT_FOUND,
        Bytes::from_static(br#"{"error":"not_found","error_description":"No such endpoint; see /.well-known/oauth-authorization-server."}"#),
    )
}

/// 405 with the methods the path takes.
pub(crate) fn method_not_allowed(allow: &'static str) -> Reply {
    let mut r = json(
        StatusCode::METHOD_NOT_ALLOWED,
        Bytes::from_static(br#"{"error":"invalid_request","error_description":"Method not allowed; see the Allow header."}"#),
    );
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn body_of(r: Reply) -> Bytes {
        block_on(r.into_body().collect()).unwrap().to_bytes()
    }

    // A `Full` body is ready at once; polling it needs no runtime.
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn poll_errors_are_valid_json_with_wire_safe_text() {
        for code in [
            ErrorCode::AuthorizationPending,
            ErrorCode::SlowDown,
            ErrorCode::AccessDenied,
            ErrorCode::ExpiredToken,
            ErrorCode::InvalidGrant,
        ] {
            let r = poll_error(code);
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
            assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
            let body = body_of(r);
            assert!(body
                .iter()
                .all(|&b| b == b'"' || b == b'{' || b == b'}' || is_description_char(b)));
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"], code.as_str());
        }
    }

    #[test]
    fn descriptions_are_made_wire_safe() {
        assert_eq!(wire_safe("plain text"), "plain text");
        assert_eq!(
            wire_safe("\"scope\" (RFC 6749 §3.3) é\\"),
            "'scope' (RFC 6749 Sec.3.3) ?/"
        );
        let e = OAuthError::invalid_request("parameter \"x\" is repeated (RFC 6749 §3.2)");
        let v: serde_json::Value = serde_json::from_slice(&body_of(e.reply())).unwrap();
        let d = v["error_description"].as_str().unwrap();
        assert!(d.bytes().all(is_description_char), "{d}");
    }

    #[test]
    fn invalid_client_is_401_and_challenges_when_basic_was_used() {
        let e = OAuthError::new(ErrorCode::InvalidClient, "bad secret").with_basic_challenge();
        let r = e.reply();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic "));
        assert_eq!(
            OAuthError::new(ErrorCode::TemporarilyUnavailable, "full").status(),
            503
        );
    }
}
