//! Reading a request body: the form media type (RFC 8628 §3.1), and the size and time
//! limits (`limits.max_body_bytes`, `limits.body_read_timeout_ms`).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Request, StatusCode};

use super::response::OAuthError;

/// Checks the media type and reads the body within the size and time limits.
///
/// RFC 8628 §3.1 / RFC 6749 §3.2: requests use the
/// `application/x-www-form-urlencoded` format "with a character encoding of UTF-8".
pub(crate) async fn read_form<B>(
    req: Request<B>,
    limit: usize,
    timeout_ms: u64,
) -> Result<(Parts, Bytes), OAuthError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    check_form_content_type(parts.headers.get(CONTENT_TYPE))?;
    let body = read_body(body, limit, timeout_ms).await?;
    Ok((parts, body))
}

/// Reads a request body within the size and time limits.
///
/// A free function with a small future of its own: the request future is moved by hyper
/// for every request, so what it holds across this await is kept small.
pub(crate) async fn read_body<B>(
    body: B,
    limit: usize,
    timeout_ms: u64,
) -> Result<Bytes, OAuthError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut read = std::pin::pin!(Limited::new(body, limit).collect());
    // A poll's small body has usually arrived with its head: one poll of the read
    // finds it, and the timeout (a clock read and a timer entry) is only armed for a
    // body still on its way.
    let first = {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        read.as_mut().poll(&mut cx)
    };
    let result = match first {
        std::task::Poll::Ready(r) => Ok(r),
        // Boxed: only a slow body pays for the timer.
        std::task::Poll::Pending => {
            Box::pin(tokio::time::timeout(
                Duration::from_millis(timeout_ms),
                read,
            ))
            .await
        }
    };
    match result {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(
            OAuthError::invalid_request(format!("the request body is larger than {limit} bytes"))
                .with_status(StatusCode::PAYLOAD_TOO_LARGE),
        ),
        Ok(Err(_)) => Err(OAuthError::invalid_request(
            "the request body could not be read",
        )),
        Err(_) => Err(
            OAuthError::invalid_request("the request body was not received in time")
                .with_status(StatusCode::REQUEST_TIMEOUT),
        ),
    }
}

pub(crate) fn check_form_content_type(value: Option<&HeaderValue>) -> Result<(), OAuthError> {
    const WANT: &str = "Content-Type must be application/x-www-form-urlencoded (RFC 8628 §3.1)";
    let value = value
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| OAuthError::invalid_request(WANT))?;
    let mut params = value.split(';');
    let essence = params.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(WANT));
    }
    for p in params {
        if let Some((name, v)) = p.split_once('=') {
            let v = v.trim().trim_matches('"');
            if name.trim().eq_ignore_ascii_case("charset") && !v.eq_ignore_ascii_case("utf-8") {
                return Err(OAuthError::invalid_request(
                    "the form body must be UTF-8 (RFC 8628 §3.1); charset must be UTF-8 if given",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_content_types() {
        let ok =
            |v: &'static str| check_form_content_type(Some(&HeaderValue::from_static(v))).is_ok();
        assert!(ok("application/x-www-form-urlencoded"));
        assert!(ok("application/x-www-form-urlencoded; charset=UTF-8"));
        assert!(ok("Application/X-WWW-Form-Urlencoded;charset=\"utf-8\""));
        assert!(!ok("application/json"));
        assert!(!ok("application/x-www-form-urlencoded; charset=latin1"));
        assert!(!ok("multipart/form-data; boundary=x"));
        assert!(check_form_content_type(None).is_err());
    }
}
