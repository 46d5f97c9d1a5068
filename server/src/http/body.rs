//! Reading a request body: the form media type (RFC 8628 §3.1), and the size and time
//! limits (`limits.max_body_bytes`, `limits.body_read_timeout_ms`).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, TRANSFER_ENCODING};
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
    check_form_headers(&parts.headers)?;
    let body = read_body(body, limit, timeout_ms).await?;
    Ok((parts, body))
}

/// Reads a JSON request body (RFC 7591 §3.1: `application/json`) within the size and
/// time limits. The outer error is the transport's (too large, too slow: its own
/// answer); the inner one says what is wrong with the content, for the caller to
/// answer with its own error code.
pub(crate) async fn read_json<B, T>(
    parts: &Parts,
    body: B,
    limit: usize,
    timeout_ms: u64,
) -> Result<Result<T, String>, OAuthError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T: serde::de::DeserializeOwned,
{
    check_body_headers(&parts.headers)?;
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut params = content_type.split(';');
    let json = params
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Ok(Err(
            "the request body must be JSON, sent as Content-Type: application/json".into(),
        ));
    }
    if names_another_charset(params) {
        return Ok(Err(
            "the JSON body must be UTF-8 (RFC 8259 §8.1); charset must be UTF-8 if given".into(),
        ));
    }
    let bytes = read_body(body, limit, timeout_ms).await?;
    // RFC 8259 §8.1: a parser MAY ignore a byte order mark, which some editors and
    // Windows tools write; serde's "expected value at line 1 column 1" said nothing.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    Ok(serde_json::from_slice(bytes)
        .map_err(|e| format!("the request body is not the JSON expected: {e}")))
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
    let mut body = std::pin::pin!(body);
    let mut read = Collecting::default();
    // A poll's small body has usually arrived with its head: one poll of the read
    // finds it, and the timeout (a clock read and a timer entry) is only armed for a
    // body still on its way.
    let first = {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        read.poll(body.as_mut(), &mut cx, limit)
    };
    let result = match first {
        Poll::Ready(r) => Ok(r),
        // Boxed: only a slow body pays for the timer.
        Poll::Pending => {
            let rest = std::future::poll_fn(|cx| read.poll(body.as_mut(), cx, limit));
            Box::pin(tokio::time::timeout(
                Duration::from_millis(timeout_ms),
                rest,
            ))
            .await
        }
    };
    match result {
        Ok(Ok(())) => Ok(read.into_bytes()),
        Ok(Err(BodyError::TooLarge)) => Err(OAuthError::invalid_request(format!(
            "the request body is larger than {limit} bytes"
        ))
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)),
        Ok(Err(BodyError::Unreadable)) => Err(OAuthError::invalid_request(
            "the request body could not be read",
        )),
        Err(_) => Err(
            OAuthError::invalid_request("the request body was not received in time")
                .with_status(StatusCode::REQUEST_TIMEOUT),
        ),
    }
}

/// Why a body could not be read.
enum BodyError {
    TooLarge,
    Unreadable,
}

/// A body being read: the one frame a small body arrives in is kept as it came (no
/// copy, no allocation); only a body in several frames is copied into one buffer.
#[derive(Default)]
struct Collecting {
    first: Option<Bytes>,
    more: Option<BytesMut>,
}

impl Collecting {
    fn len(&self) -> usize {
        match (&self.first, &self.more) {
            (_, Some(more)) => more.len(),
            (Some(first), None) => first.len(),
            (None, None) => 0,
        }
    }

    /// Reads frames until the body ends (or would block), within `limit` bytes.
    fn poll<B>(
        &mut self,
        mut body: Pin<&mut B>,
        cx: &mut Context<'_>,
        limit: usize,
    ) -> Poll<Result<(), BodyError>>
    where
        B: hyper::body::Body<Data = Bytes>,
    {
        if body.size_hint().lower() > limit as u64 {
            return Poll::Ready(Err(BodyError::TooLarge));
        }
        loop {
            let frame = match body.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(_))) => return Poll::Ready(Err(BodyError::Unreadable)),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            // Trailers are not part of a form.
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if self.len() + data.len() > limit {
                return Poll::Ready(Err(BodyError::TooLarge));
            }
            match (&mut self.first, &mut self.more) {
                (_, Some(more)) => more.extend_from_slice(&data),
                (Some(first), None) => {
                    let mut joined = BytesMut::with_capacity(first.len() + data.len());
                    joined.extend_from_slice(first);
                    joined.extend_from_slice(&data);
                    self.more = Some(joined);
                }
                (None, None) => self.first = Some(data),
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        match (self.first, self.more) {
            (_, Some(more)) => more.freeze(),
            (Some(first), None) => first,
            (None, None) => Bytes::new(),
        }
    }
}

/// What every form endpoint checks in the head before it reads the body: the body's
/// codings and its one media type, then which one it is.
pub(crate) fn check_form_headers(headers: &HeaderMap) -> Result<(), OAuthError> {
    check_body_headers(headers)?;
    check_form_content_type(headers.get(CONTENT_TYPE))
}

/// A body is read as the bytes that came, as the one thing the head says it is:
///
/// - RFC 9110 §8.3: `Content-Type` is one field. Sent twice (`application/json`, then
///   `text/plain`), this server would read the first while a proxy in front may read
///   the last: 400, whatever the two say.
/// - A body sent in a coding this server does not decode is refused, not parsed as
///   something it is not (where a proxy in front that decodes it would read another
///   request than ours). RFC 9110 §8.4, §15.5.16: a content coding other than
///   `identity` gets 415, and §12.5.3 asks for `Accept-Encoding` in that answer
///   ([`OAuthError::reply`]). RFC 9112 §6.1: a transfer coding other than `chunked`
///   (which hyper decodes) gets 501 Not Implemented.
pub(crate) fn check_body_headers(headers: &HeaderMap) -> Result<(), OAuthError> {
    // A name sent more than once makes the two counts differ: a head without costs no
    // lookup.
    if headers.len() != headers.keys_len() && headers.get_all(CONTENT_TYPE).iter().nth(1).is_some()
    {
        return Err(OAuthError::invalid_request(
            "Content-Type is sent more than once; send one (RFC 9110 §8.3)",
        ));
    }
    // The names alone, a walk over the map's few entries: 46 instructions a poll
    // (`benches/instructions.sh`), where a lookup of each name took 436.
    for name in headers.keys() {
        if *name == CONTENT_ENCODING || *name == TRANSFER_ENCODING {
            return coding_refusal(headers);
        }
    }
    Ok(())
}

/// [`check_body_headers`] for a request that names a coding. Each field is a list
/// (RFC 9110 §5.6.1: empty elements ignored, two field lines the same as one line
/// joined by a comma): every element must be the one coding this server reads.
#[cold]
fn coding_refusal(headers: &HeaderMap) -> Result<(), OAuthError> {
    let refused = |name, accepted: &[u8]| {
        headers.get_all(name).iter().find(|v| {
            v.as_bytes()
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
                .any(|element| !element.is_empty() && !element.eq_ignore_ascii_case(accepted))
        })
    };
    if let Some(v) = refused(CONTENT_ENCODING, b"identity") {
        let coding = String::from_utf8_lossy(v.as_bytes());
        return Err(OAuthError::invalid_request(format!(
            "Content-Encoding \"{coding}\" is not supported; send the body uncoded"
        ))
        .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    if let Some(v) = refused(TRANSFER_ENCODING, b"chunked") {
        let coding = String::from_utf8_lossy(v.as_bytes());
        return Err(OAuthError::invalid_request(format!(
            "Transfer-Encoding \"{coding}\" is not supported; only chunked is"
        ))
        .with_status(StatusCode::NOT_IMPLEMENTED));
    }
    Ok(())
}

pub(crate) fn check_form_content_type(value: Option<&HeaderValue>) -> Result<(), OAuthError> {
    const WANT: &str = "Content-Type must be application/x-www-form-urlencoded (RFC 8628 §3.1)";
    const ESSENCE: &str = "application/x-www-form-urlencoded";
    // What nearly every client sends, exactly: decided without splitting.
    if value.is_some_and(|v| v.as_bytes() == ESSENCE.as_bytes()) {
        return Ok(());
    }
    let value = value
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| OAuthError::invalid_request(WANT))?;
    let mut params = value.split(';');
    let essence = params.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case(ESSENCE) {
        return Err(OAuthError::invalid_request(WANT));
    }
    if names_another_charset(params) {
        return Err(OAuthError::invalid_request(
            "the form body must be UTF-8 (RFC 8628 §3.1); charset must be UTF-8 if given",
        ));
    }
    Ok(())
}

/// Whether a media type's parameters name a charset other than UTF-8.
fn names_another_charset<'a>(mut params: impl Iterator<Item = &'a str>) -> bool {
    params.any(|p| {
        p.split_once('=').is_some_and(|(name, v)| {
            let v = v.trim().trim_matches('"');
            name.trim().eq_ignore_ascii_case("charset") && !v.eq_ignore_ascii_case("utf-8")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that arrives in the given frames.
    struct Frames(std::collections::VecDeque<Bytes>);

    impl hyper::body::Body for Frames {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
        }
    }

    fn frames(parts: &[&'static str]) -> Frames {
        Frames(
            parts
                .iter()
                .map(|p| Bytes::from_static(p.as_bytes()))
                .collect(),
        )
    }

    #[tokio::test]
    async fn a_body_in_one_frame_is_kept_as_it_came_and_several_are_joined() {
        let one = Bytes::from_static(b"client_id=tv");
        let read = read_body(Frames([one.clone()].into()), 64, 1_000)
            .await
            .unwrap();
        assert_eq!(read.as_ptr(), one.as_ptr(), "no copy of a one-frame body");
        let joined = read_body(frames(&["client_", "id=", "tv"]), 64, 1_000)
            .await
            .unwrap();
        assert_eq!(joined, "client_id=tv");
        assert_eq!(read_body(frames(&[]), 64, 1_000).await.unwrap(), "");
        let too_large = read_body(frames(&["0123456789", "0123456789"]), 15, 1_000).await;
        assert_eq!(
            too_large.unwrap_err().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

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
