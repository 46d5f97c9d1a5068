//! deviceflow-device: a device-flow client. [`run`] plays a device against a running
//! authorization server (`deviceflow-server device` is this): a complete RFC 8628
//! client in one screen of output, for trying the flow by hand and for the browser
//! end-to-end test. [`qr`] draws `verification_uri_complete` as a QR code, for a
//! terminal and as SVG (the server's device-display page shows that one).
//!
//! It discovers the endpoints (RFC 8414), asks for codes (RFC 8628 §3.1), checks them
//! (§3.2), shows the user code, `verification_uri` and a terminal QR code of
//! `verification_uri_complete` (§3.3, §3.3.1), then polls the token endpoint as §3.5
//! requires: it waits `interval` (5 s if none) between requests, adds 5 s for every
//! `slow_down`, backs off exponentially when the connection fails (or a proxy answers
//! 502, 503, 504 or 429 with no error object), stops at any other error, and stops when
//! the code's life (`expires_in`) is over. It stops too as soon
//! as its output cannot be written: a token nobody can read is not a success.
//!
//! It speaks HTTP/1.1 through hyper's connection API, the HTTP stack the server uses
//! too, so the workspace needs no second HTTP client for it; `https://` over [`tls`],
//! the TLS client the workspace's clients share.

#![warn(missing_docs, unreachable_pub)]

pub mod qr;
pub mod tls;

mod http_url;

use std::fmt;
use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use deviceflow_reports::escape::{clip, terminal as printable};
use deviceflow_wire::paths;
use deviceflow_wire::{
    DeviceAuthorizationResponse, ErrorCode, ErrorResponse, DEFAULT_INTERVAL_SECS,
    GRANT_TYPE_DEVICE_CODE, METADATA_PATH, SLOW_DOWN_INCREMENT_SECS,
};
use http_body_util::{BodyExt, Full};
pub use http_url::normal_issuer;
use http_url::{shown_url, split_url, HttpUrl, UrlFault};
use hyper::client::conn::http1;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::Request;
pub use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Longest wait for one HTTP exchange.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for the RFC 8414 metadata. Discovery is optional (the device falls
/// back to this server's paths), so a server that does not answer it costs a few
/// seconds, not a whole [`REQUEST_TIMEOUT`] before the real work starts.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);
const _: () = assert!(DISCOVERY_TIMEOUT.as_secs() < REQUEST_TIMEOUT.as_secs());

/// The most of a response body the device reads: no answer of RFC 8628 or RFC 8414
/// comes near it, and a server that sends more (an endless body) is refused, not
/// stored.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The most characters of the server's words (a body, an `error_description`) an
/// error quotes, and the most a code or URI shown to the person may have: a longer
/// one is refused, never shown cut (a cut code cannot be typed, a cut URI not opened).
const QUOTED_CHARS: usize = 200;

/// How a [`DeviceError::Transport`] starts when no connection could be made: the
/// server was not reached at all.
const CANNOT_CONNECT: &str = "cannot connect";

/// How a [`DeviceError::Transport`] starts when no TLS session could be set up on the
/// connection (an untrusted certificate): the server was not reached either.
const TLS_HANDSHAKE: &str = "TLS handshake";

/// The longest `interval` a server may ask for (an hour): RFC 8628 §3.2 sets none.
const MAX_INTERVAL_SECS: u64 = 60 * 60;

/// The longest `expires_in` a server may give a code (a day): RFC 8628 §3.2 sets none.
const MAX_EXPIRES_IN_SECS: u64 = 24 * 60 * 60;

/// Longest wait between polls when backing off from connection failures.
const MAX_BACKOFF_SECS: u64 = 60;

/// How long after the code's end a poll's answer is still waited for: a poll sent
/// at the end (within [`EXPIRY_GRACE`]) over a slow link, TLS handshake and all.
const LAST_ANSWER_WAIT: Duration = Duration::from_secs(5);

/// How long after the code's end a poll may still be due: the lateness of a timer on
/// a busy machine. (The response's travel needs none: the device counts the code's
/// life from when the response came, the server from before it was sent.)
const EXPIRY_GRACE: Duration = Duration::from_secs(1);

/// What the device was told to do.
#[derive(Debug, Clone)]
pub struct DeviceOptions {
    /// The authorization server's issuer, `http(s)://host[:port][/path]`.
    pub issuer: String,
    /// The public client the device is (RFC 6749 §2.2).
    pub client_id: String,
    /// Scopes to ask for, space-separated; `None`: the client's defaults.
    pub scope: Option<String>,
    /// Paint the terminal QR code black on white with ANSI colours.
    pub ansi: bool,
}

/// Why the device got no token.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The issuer (or an endpoint) is not an `http://` or `https://` URL.
    #[error("\"{0}\" is not an http:// or https:// URL")]
    NotHttp(String),
    /// The issuer (or an endpoint) is an `http(s)://` URL this client cannot use as
    /// one: a user name in it, a bad port, a space.
    #[error("\"{url}\" {why}")]
    BadUrl {
        /// The URL, quoted (a user name or password in it left out).
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The server could not be reached or did not answer in time.
    #[error("{url}: {message}")]
    Transport {
        /// What was asked for.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server answered something a device-flow server does not.
    #[error("{url} answered {status}: {body}")]
    Unexpected {
        /// What was asked for.
        url: String,
        /// The HTTP status.
        status: StatusCode,
        /// The body, as text.
        body: String,
    },
    /// The device authorization request was refused with an RFC 6749 §5.2 error
    /// object (RFC 8628 §3.2).
    #[error("device authorization refused by {url} ({status}): {error}")]
    Refused {
        /// The device authorization endpoint.
        url: String,
        /// The HTTP status.
        status: StatusCode,
        /// The `error` code and its `error_description`, quoted.
        error: String,
    },
    /// The device authorization request was refused `invalid_client`: for a device,
    /// which sends no secret, the server does not know its client id as a public
    /// client (RFC 6749 §2.1).
    #[error("device authorization refused by {url} ({status}): the server knows no public client with the id \"{client_id}\" ({error})")]
    UnknownClient {
        /// The device authorization endpoint.
        url: String,
        /// The HTTP status.
        status: StatusCode,
        /// The client id the device sent, quoted.
        client_id: String,
        /// The `error` code and its `error_description`, quoted.
        error: String,
    },
    /// RFC 8628 §3.5 `access_denied`.
    #[error("access_denied: the person denied the request (RFC 8628 §3.5)")]
    Denied,
    /// RFC 8628 §3.5 `expired_token`.
    #[error("expired_token: the code expired before anyone approved it (RFC 8628 §3.5)")]
    Expired,
    /// The token endpoint could not be reached until the code's life was over: the
    /// server never said `expired_token`, and may never have heard a poll.
    #[error("the code's life ran out while the token endpoint could not be reached ({}; last: {last})", count_polls(*polls))]
    Unreachable {
        /// Polls tried.
        polls: u64,
        /// The last one's failure.
        last: String,
    },
    /// The server's `interval` is longer than its code lives: RFC 8628 §3.5 forbids
    /// polling sooner, so no poll can come in time. Said before the code is shown.
    #[error("the first poll is allowed in {wait_secs} s, after the code expires (expires_in {expires_in} s); no token can come (RFC 8628 §3.5)")]
    NoPollInTime {
        /// Seconds until the first poll is allowed.
        wait_secs: u64,
        /// The code's `expires_in`.
        expires_in: u64,
    },
    /// Polls were made, no decision came, and the next poll allowed (the `interval`
    /// with the `slow_down`s added) would come after the code expires.
    #[error("no decision after {}, and the next poll is allowed in {wait_secs} s, after the code expires (in {left_secs} s; expires_in {expires_in} s); polling stops (RFC 8628 §3.5)", count_polls(*polls))]
    NextPollAfterExpiry {
        /// Polls made.
        polls: u64,
        /// Seconds until the next poll is allowed.
        wait_secs: u64,
        /// Seconds the code had left.
        left_secs: u64,
        /// The code's `expires_in`.
        expires_in: u64,
    },
    /// Polls were made and the code's life is over without a decision, and without
    /// the server saying `expired_token`.
    #[error("the code expired (expires_in {expires_in} s) after {} without a decision, and the server never said expired_token; polling stops (RFC 8628 §3.5)", count_polls(*polls))]
    ExpiredUnanswered {
        /// Polls made.
        polls: u64,
        /// The code's `expires_in`.
        expires_in: u64,
    },
    /// Any other error answer to a poll: RFC 8628 §3.5 says to stop.
    #[error("the token endpoint answered {0}; polling stops (RFC 8628 §3.5)")]
    Stopped(String),
    /// The device's output (standard output) could not be written: a closed pipe, a
    /// full disk. Nobody can see the code, so polling for it stops.
    #[error("cannot write the device's output ({0}); the device stops")]
    Output(std::io::Error),
    /// The token came, but the output could not be written: nobody has it.
    #[error("a token came but could not be written to the device's output ({0}); it is lost: run the device again for a new code")]
    TokenLost(std::io::Error),
}

/// "1 poll", "3 polls".
fn count_polls(n: u64) -> String {
    if n == 1 {
        "1 poll".to_owned()
    } else {
        format!("{n} polls")
    }
}

/// One HTTP/1.1 exchange on a fresh connection, within `timeout`; `body` is sent as a
/// form.
async fn exchange(
    url: &str,
    body: Option<String>,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), DeviceError> {
    match body {
        Some(form) => {
            let body = ("application/x-www-form-urlencoded", Bytes::from(form));
            request_within(timeout, Method::POST, url, None, Some(body)).await
        }
        None => request_within(timeout, Method::GET, url, None, None).await,
    }
}

/// One HTTP/1.1 request to an `http://` or `https://` URL on a fresh connection:
/// `method`, an optional `Authorization` value, an optional body with its media type;
/// the answer's status and body. The HTTP client of the workspace's binaries (this
/// device, and `deviceflow-server clients`).
pub async fn request(
    method: Method,
    url: &str,
    authorization: Option<&str>,
    body: Option<(&'static str, Bytes)>,
) -> Result<(StatusCode, Bytes), DeviceError> {
    request_within(REQUEST_TIMEOUT, method, url, authorization, body).await
}

/// [`request`], waiting at most `timeout` for the whole exchange.
async fn request_within(
    timeout: Duration,
    method: Method,
    url: &str,
    authorization: Option<&str>,
    body: Option<(&'static str, Bytes)>,
) -> Result<(StatusCode, Bytes), DeviceError> {
    let parsed = HttpUrl::parse(url)?;
    let transport = |message: String| DeviceError::Transport {
        url: url.to_owned(),
        message,
    };
    let work = async {
        let stream = TcpStream::connect(&parsed.authority)
            .await
            .map_err(|e| transport(format!("{CANNOT_CONNECT}: {e}")))?;
        // hyper says "connection error" and keeps the why as its source: the words
        // to show are the innermost's (a TLS alert after the handshake, a reset).
        let failed = |e: &(dyn std::error::Error + 'static)| {
            let mut inner = e;
            while let Some(source) = inner.source() {
                inner = source;
            }
            let said = if std::ptr::addr_eq(inner, e) {
                e.to_string()
            } else {
                format!("{e}: {inner}")
            };
            let hint = if parsed.tls {
                tls::hint(&said, tls::Peer::Http)
            } else {
                String::new()
            };
            transport(format!("{said}{hint}"))
        };
        let mut sender = if parsed.tls {
            let config = tls::client_config().map_err(transport)?;
            let name = tls::server_name(parsed.host()).map_err(transport)?;
            let stream = tls::connect(config, name, stream).await.map_err(|e| {
                let said = e.to_string();
                transport(format!(
                    "{TLS_HANDSHAKE}: {said}{}",
                    tls::hint(&said, tls::Peer::Http)
                ))
            })?;
            http1_sender(stream).await
        } else {
            http1_sender(stream).await
        }
        .map_err(|e| failed(&e))?;
        let mut req = Request::builder()
            .method(method)
            .uri(&parsed.target)
            .header(HOST, &parsed.authority)
            .header("accept", "application/json");
        if let Some(value) = authorization {
            req = req.header(AUTHORIZATION, value);
        }
        let content = match body {
            Some((media_type, content)) => {
                req = req.header(CONTENT_TYPE, media_type);
                content
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(content))
            .map_err(|e| transport(e.to_string()))?;
        let res = sender.send_request(req).await.map_err(|e| failed(&e))?;
        let status = res.status();
        let bytes = http_body_util::Limited::new(res.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    transport(format!(
                        "the body is larger than {MAX_BODY_BYTES} bytes, more than any answer of RFC 8628"
                    ))
                } else {
                    failed(&*e)
                }
            })?
            .to_bytes();
        Ok((status, bytes))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| transport(format!("no answer within {}", shown_duration(timeout))))?
}

/// An HTTP/1.1 connection on `io`, driven by a task of its own until the answer is
/// read; its errors are the request's.
async fn http1_sender<I>(io: I) -> hyper::Result<http1::SendRequest<Full<Bytes>>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Time as the device sees it: the real clock, or in tests one whose sleeps end at
/// once, so that a code's whole life plays in milliseconds and never flakes.
enum Clock {
    /// Since this instant.
    Real(tokio::time::Instant),
    /// The sum of the sleeps so far.
    #[cfg(test)]
    Virtual(std::sync::Mutex<Duration>),
}

impl Clock {
    /// Time since the device started.
    fn elapsed(&self) -> Duration {
        match self {
            Clock::Real(start) => start.elapsed(),
            #[cfg(test)]
            Clock::Virtual(now) => *now.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    async fn sleep(&self, wait: Duration) {
        match self {
            Clock::Real(_) => tokio::time::sleep(wait).await,
            #[cfg(test)]
            Clock::Virtual(now) => {
                let mut now = now.lock().unwrap_or_else(|e| e.into_inner());
                *now = now.saturating_add(wait);
            }
        }
    }
}

/// What a device's run works with besides its options: where it writes, how it tells
/// time, how long it waits. [`run`] gives the real ones; tests bring their own.
struct Env<'a> {
    /// The person's screen: the code, the QR code, the polls, the token.
    out: &'a mut (dyn Write + Send),
    /// Notes beside it (standard error): what the device fell back to, and why.
    notes: &'a mut (dyn Write + Send),
    clock: Clock,
    /// Longest wait for the device authorization endpoint and for each poll.
    request_timeout: Duration,
    /// Longest wait for the RFC 8414 metadata.
    discovery_timeout: Duration,
}

impl Env<'_> {
    /// Writes `text` to the output, flushed, so that a closed pipe or a full disk shows
    /// here, before the device polls further (unflushed, it would show at exit, or
    /// never).
    fn show(&mut self, text: fmt::Arguments<'_>) -> Result<(), std::io::Error> {
        self.out.write_fmt(text)?;
        self.out.flush()
    }

    /// A line on the output; a failure stops the device.
    fn line(&mut self, text: fmt::Arguments<'_>) -> Result<(), DeviceError> {
        self.show(format_args!("{text}\n"))
            .map_err(DeviceError::Output)
    }

    /// A note on standard error. One that cannot be written is dropped: there is
    /// nowhere left to say so, and the output is what the person reads.
    fn note(&mut self, text: fmt::Arguments<'_>) {
        let _ = writeln!(self.notes, "note: {text}");
        let _ = self.notes.flush();
    }
}

/// The endpoints from the RFC 8414 metadata, or this server's paths if there is none
/// (said in a note, with why). RFC 8414 §3.1: the well-known segment goes between the
/// host and the issuer's path.
async fn discover(issuer: &str, env: &mut Env<'_>) -> Result<(String, String), DeviceError> {
    let parsed = HttpUrl::parse(issuer)?;
    let path = parsed.target.trim_end_matches('/');
    let metadata_url = format!("{}{METADATA_PATH}{path}", parsed.origin());
    let answer = exchange(&metadata_url, None, env.discovery_timeout).await;
    let mut fall_back = |why: &str| -> Result<(String, String), DeviceError> {
        let (da, token) = (
            format!("{issuer}{}", paths::DEVICE_AUTHORIZATION),
            format!("{issuer}{}", paths::TOKEN),
        );
        env.note(format_args!(
            "no RFC 8414 metadata from {metadata_url} ({why}); using the default paths {da} and {token}"
        ));
        Ok((da, token))
    };
    let body = match answer {
        Ok((StatusCode::OK, body)) => body,
        Ok((status, _)) => return fall_back(&format!("it answered {status}")),
        // A server that cannot be reached, or not over TLS, cannot be asked for codes
        // either: said once, now, rather than noted and said again for the next URL.
        Err(DeviceError::Transport { message, .. })
            if message.starts_with(CANNOT_CONNECT) || message.starts_with(TLS_HANDSHAKE) =>
        {
            return Err(DeviceError::Transport {
                url: metadata_url,
                message,
            })
        }
        Err(DeviceError::Transport { message, .. }) => return fall_back(&message),
        Err(e) => return fall_back(&e.to_string()),
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return fall_back("its answer is not JSON");
    };
    // RFC 8414 §3.3: "If these values are not identical, the data contained in the
    // response MUST NOT be used" (its endpoints would get this device's codes).
    // The person's issuer was put in normal form (no trailing `/`): so is the one named.
    let named = doc["issuer"].as_str();
    if named.and_then(|n| normal_issuer(n).ok()).as_deref() != Some(issuer) {
        let named = match doc["issuer"].as_str() {
            Some(other) => format!("the issuer \"{}\"", quote(other)),
            None => "no issuer".to_owned(),
        };
        return Err(DeviceError::Unexpected {
            url: metadata_url,
            status: StatusCode::OK,
            body: format!(
                "metadata naming {named}, not \"{}\"; metadata of another issuer MUST NOT be used (RFC 8414 §3.3): give the issuer exactly as the server names it",
                quote(issuer)
            ),
        });
    }
    let (da, token) = match (
        doc["device_authorization_endpoint"].as_str(),
        doc["token_endpoint"].as_str(),
    ) {
        (Some(da), Some(token)) => (da.to_owned(), token.to_owned()),
        (None, _) => return fall_back("it names no device_authorization_endpoint"),
        (_, None) => return fall_back("it names no token_endpoint"),
    };
    // Both are used, the token endpoint for as long as the code lives: one this client
    // cannot speak to is said now, before a person is shown a code to approve.
    let secure = HttpUrl::parse(issuer)?.tls;
    for (field, url) in [
        ("device_authorization_endpoint", &da),
        ("token_endpoint", &token),
    ] {
        let why = match HttpUrl::parse(url) {
            // RFC 8628 §5.1 (and RFC 6749 §3.2: the token endpoint requires TLS): the
            // device code would cross the network in clear text.
            Ok(parsed) if secure && !parsed.tls => format!(
                "\"{}\" is http://, under an https:// issuer: the device code would travel in clear text",
                shown_url(url)
            ),
            Ok(_) => continue,
            Err(e) => e.to_string(),
        };
        return Err(DeviceError::Unexpected {
            url: metadata_url,
            status: StatusCode::OK,
            body: format!("metadata naming a {field} this device cannot use: {why}"),
        });
    }
    Ok((da, token))
}

/// An error answer in words, for an error message: its `error` and
/// `error_description`, or the start of the body, [quoted](quote).
fn describe(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(e) => match e.error_description {
            Some(d) => quote(&format!("{} ({d})", e.error)),
            None => quote(&e.error),
        },
        Err(_) => quote(&String::from_utf8_lossy(body)),
    }
}

/// A body the device did not expect, for an error message: quoted, or said empty.
fn shown_body(body: &[u8]) -> String {
    if body.is_empty() {
        "an empty body".to_owned()
    } else {
        quote(&String::from_utf8_lossy(body))
    }
}

/// The server's words as this device prints them: at most [`QUOTED_CHARS`]
/// characters, made text for a terminal ([`printable`]: an OSC 52 sequence in a
/// `user_code` would write the person's clipboard, a cursor move hide a line).
fn quote(text: &str) -> String {
    printable(&clip(text, QUOTED_CHARS))
}

/// Plays the device: prints the code and QR code to `out`, polls until the person
/// decides, and returns the token response as received. Notes (the metadata could
/// not be had, and why) go to standard error. A failure to write `out` stops it with
/// [`DeviceError::Output`], or [`DeviceError::TokenLost`] once a token came.
pub async fn run(
    options: &DeviceOptions,
    out: &mut (dyn Write + Send),
) -> Result<serde_json::Value, DeviceError> {
    let mut notes = std::io::stderr();
    let mut env = Env {
        out,
        notes: &mut notes,
        clock: Clock::Real(tokio::time::Instant::now()),
        request_timeout: REQUEST_TIMEOUT,
        discovery_timeout: DISCOVERY_TIMEOUT,
    };
    play(options, &mut env).await
}

/// [`run`], in `env`.
async fn play(
    options: &DeviceOptions,
    env: &mut Env<'_>,
) -> Result<serde_json::Value, DeviceError> {
    let issuer = normal_issuer(&options.issuer)?;
    let (da_url, token_url) = discover(&issuer, env).await?;
    let da = request_codes(options, &da_url, env.request_timeout).await?;
    // RFC 8628 §3.5: the code lives `expires_in` from this answer on.
    let received = env.clock.elapsed();
    let interval = polling_interval(&da);
    // A code no poll can come in time for is not shown to a person to approve: by the
    // server's own numbers, with no grace for a late timer (`expires_in` 0 is none).
    if interval > da.expires_in || !may_poll(Duration::ZERO, interval, da.expires_in) {
        return Err(DeviceError::NoPollInTime {
            wait_secs: interval,
            expires_in: da.expires_in,
        });
    }
    show_codes(options, &issuer, &da, interval, env)?;
    poll_for_token(options, &token_url, &da, interval, received, env).await
}

/// RFC 8628 §3.1: the device authorization request, and its §3.2 response, checked.
async fn request_codes(
    options: &DeviceOptions,
    da_url: &str,
    timeout: Duration,
) -> Result<DeviceAuthorizationResponse, DeviceError> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("client_id", &options.client_id);
    if let Some(scope) = &options.scope {
        form.append_pair("scope", scope);
    }
    let (status, body) = exchange(da_url, Some(form.finish()), timeout).await?;
    if status != StatusCode::OK {
        return Err(not_codes(options, da_url, status, &body));
    }
    let da: DeviceAuthorizationResponse =
        serde_json::from_slice(&body).map_err(|e| DeviceError::Unexpected {
            url: da_url.to_owned(),
            status,
            body: format!(
                "not a device authorization response ({})",
                quote(&e.to_string())
            ),
        })?;
    check_codes(&da).map_err(|why| DeviceError::Unexpected {
        url: da_url.to_owned(),
        status,
        body: why,
    })?;
    Ok(da)
}

/// A device authorization answer other than 200, as an error: "refused" with its code
/// when it is an RFC 6749 §5.2 error object (RFC 8628 §3.2), otherwise the status and
/// the body as any unexpected answer (a proxy's page, a redirect, `{}`).
fn not_codes(
    options: &DeviceOptions,
    da_url: &str,
    status: StatusCode,
    body: &[u8],
) -> DeviceError {
    match error_object(body) {
        // RFC 6749 §5.2: an error answer is 400 (401 for invalid_client); 429 and 503
        // come with slow_down and temporarily_unavailable in the wild. A 2xx or 3xx
        // carrying an error object is no error answer.
        Some(e) if status.is_client_error() || status.is_server_error() => {
            if e.code() == Some(ErrorCode::InvalidClient) {
                let said = match &e.error_description {
                    Some(d) => format!("{}: {d}", e.error),
                    None => e.error.clone(),
                };
                DeviceError::UnknownClient {
                    url: da_url.to_owned(),
                    status,
                    client_id: quote(&options.client_id),
                    error: quote(&said),
                }
            } else {
                DeviceError::Refused {
                    url: da_url.to_owned(),
                    status,
                    error: describe(body),
                }
            }
        }
        _ => unexpected(da_url, status, body),
    }
}

/// Whether `status` is one a proxy answers for a server it could not reach or that
/// is overloaded: 502, 503, 504, 429.
fn passed_on(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
            | StatusCode::TOO_MANY_REQUESTS
    )
}

/// An RFC 6749 §5.2 error object, if `body` is one.
fn error_object(body: &[u8]) -> Option<ErrorResponse> {
    serde_json::from_slice::<ErrorResponse>(body)
        .ok()
        .filter(|e| is_error_code(&e.error))
}

/// An answer of `url` no device-flow server gives (a proxy's page, a redirect, `{}`),
/// as an error: its status and body.
fn unexpected(url: &str, status: StatusCode, body: &[u8]) -> DeviceError {
    let mut shown = shown_body(body);
    if status.is_redirection() {
        shown.push_str(" (the device follows no redirect: is the issuer right?)");
    }
    DeviceError::Unexpected {
        url: url.to_owned(),
        status,
        body: shown,
    }
}

/// RFC 6749 §5.2: `error` is one or more of %x20-21 / %x23-5B / %x5D-7E.
fn is_error_code(error: &str) -> bool {
    !error.is_empty()
        && error
            .bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// RFC 8628 §3.2: what the device shows and sends back, checked before a person is
/// shown any of it; `Err` says which field is wrong and how.
fn check_codes(da: &DeviceAuthorizationResponse) -> Result<(), String> {
    // RFC 8628 §3.2: device_code and user_code are REQUIRED; an empty one is none.
    for (field, value) in [
        ("device_code", &da.device_code),
        ("user_code", &da.user_code),
    ] {
        if value.trim().is_empty() {
            return Err(format!(
                "{field} is empty or only spaces (\"{}\"; RFC 8628 §3.2: it is REQUIRED)",
                quote(value)
            ));
        }
    }
    // RFC 8628 §3.2 bounds neither; past these, a person would wait in front of a device
    // that looks stuck (a poll in 31 years), or one that polls for ever.
    if let Some(secs) = da.interval.filter(|&i| i > MAX_INTERVAL_SECS) {
        return Err(format!(
            "interval is {secs} s, more than the {MAX_INTERVAL_SECS} s a device may wait between polls here (RFC 8628 §3.2)"
        ));
    }
    if da.expires_in > MAX_EXPIRES_IN_SECS {
        return Err(format!(
            "expires_in is {} s, more than the {MAX_EXPIRES_IN_SECS} s (a day) a code may live here (RFC 8628 §3.2)",
            da.expires_in
        ));
    }
    let too_long = |field: &str, text: &str| {
        let chars = text.chars().count();
        (chars > QUOTED_CHARS).then(|| {
            format!(
                "{field} has {chars} characters, more than a person can be shown ({QUOTED_CHARS} at most): \"{}\" (RFC 8628 §3.2)",
                quote(text)
            )
        })
    };
    if let Some(why) = too_long("user_code", &da.user_code) {
        return Err(why);
    }
    let uris = [
        Some(("verification_uri", &da.verification_uri)),
        da.verification_uri_complete
            .as_ref()
            .map(|u| ("verification_uri_complete", u)),
    ];
    for (field, uri) in uris.into_iter().flatten() {
        if let Some(why) = too_long(field, uri) {
            return Err(why);
        }
        // RFC 8628 §3.2: "The end-user verification URI on the authorization server";
        // the person opens it in a browser: an http(s) URL, nothing a browser would run.
        let why = match split_url(uri) {
            Ok(_) => continue,
            Err(UrlFault::NotHttp) => "is not an absolute http:// or https:// URI".to_owned(),
            Err(UrlFault::Bad(why)) => why,
        };
        return Err(format!(
            "{field} \"{}\" {why} (RFC 8628 §3.2)",
            shown_url(uri)
        ));
    }
    Ok(())
}

/// RFC 8628 §3.2: "If no value is provided, clients MUST use 5 as the default." An
/// `interval` of 0 would be no wait at all between polls, which §3.5's polling cannot
/// mean: it is read as none given, and the default applies.
fn polling_interval(da: &DeviceAuthorizationResponse) -> u64 {
    match da.interval {
        None | Some(0) => DEFAULT_INTERVAL_SECS,
        Some(secs) => secs,
    }
}

/// RFC 8628 §3.3: shows the code and where to enter it; §3.3.1: and the QR code.
fn show_codes(
    options: &DeviceOptions,
    issuer: &str,
    da: &DeviceAuthorizationResponse,
    interval: u64,
    env: &mut Env<'_>,
) -> Result<(), DeviceError> {
    // The codes and URIs are the server's: shown as text, never obeyed by the
    // terminal (the QR code is drawn from the URI as sent).
    env.line(format_args!(
        "deviceflow demo device: client \"{}\" at {}\n\n  On your phone or computer, open  {}\n  and enter the code  {}\n",
        quote(&options.client_id),
        quote(issuer),
        printable(&da.verification_uri),
        printable(&da.user_code)
    ))?;
    if let Some(complete) = &da.verification_uri_complete {
        if let Ok(qr) = qr::terminal(complete, options.ansi) {
            env.line(format_args!(
                "  or scan this QR code ({}):\n",
                printable(complete)
            ))?;
            for line in qr.lines() {
                env.line(format_args!("  {line}"))?;
            }
            env.line(format_args!(""))?;
        }
    }
    let given = match da.interval {
        Some(0) => "; the server's interval 0 is read as none given: §3.2's default",
        _ => "",
    };
    env.line(format_args!(
        "  The code expires in {} s. Polling every {interval} s (RFC 8628 §3.5{given}).\n",
        da.expires_in
    ))
}

/// RFC 8628 §3.5: whether a poll `wait` seconds from now, when the code is `age` old,
/// comes while the code of `expires_in` seconds lives (with [`EXPIRY_GRACE`]). One
/// due past what a clock holds is never made: no sleeping for ages.
fn may_poll(age: Duration, wait: u64, expires_in: u64) -> bool {
    let wait = Duration::from_secs(wait);
    let Some(due) = age.checked_add(wait) else {
        return false;
    };
    if std::time::Instant::now().checked_add(wait).is_none() {
        return false;
    }
    // A life past what a `Duration` holds has no end but the server's expired_token.
    Duration::from_secs(expires_in)
        .checked_add(EXPIRY_GRACE)
        .is_none_or(|end| due <= end)
}

/// RFC 8628 §3.4, §3.5: polls every `interval` seconds (longer after `slow_down`,
/// backing off after a connection failure) until the token, a denial, or the end of
/// the code's life, counted from `received` (when its response came).
async fn poll_for_token(
    options: &DeviceOptions,
    token_url: &str,
    da: &DeviceAuthorizationResponse,
    mut interval: u64,
    received: Duration,
    env: &mut Env<'_>,
) -> Result<serde_json::Value, DeviceError> {
    let poll = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", GRANT_TYPE_DEVICE_CODE)
        .append_pair("device_code", &da.device_code)
        .append_pair("client_id", &options.client_id)
        .finish();
    let life = Duration::from_secs(da.expires_in);
    let mut backoff = 0u64;
    let mut polls = 0u64;
    // The last poll's transport failure, while polls keep failing.
    let mut failing: Option<String> = None;
    loop {
        // RFC 8628 §3.5: no poll before `interval`; none once the code's life is over.
        // The server answers expired_token then; this stops a device whose server
        // never says so, and one whose next allowed poll comes too late.
        let age = env.clock.elapsed().saturating_sub(received);
        let wait = next_wait(interval, backoff, age, life);
        if !may_poll(age, wait, da.expires_in) {
            return Err(match failing {
                Some(last) => DeviceError::Unreachable { polls, last },
                None if polls == 0 => DeviceError::NoPollInTime {
                    wait_secs: wait,
                    expires_in: da.expires_in,
                },
                None if age >= life => DeviceError::ExpiredUnanswered {
                    polls,
                    expires_in: da.expires_in,
                },
                None => DeviceError::NextPollAfterExpiry {
                    polls,
                    wait_secs: wait,
                    left_secs: ceil_secs(life - age),
                    expires_in: da.expires_in,
                },
            });
        }
        env.clock.sleep(Duration::from_secs(wait)).await;
        polls += 1;
        let elapsed = env.clock.elapsed().as_secs();
        // No poll waits long past the code's end for its answer: at most
        // [`LAST_ANSWER_WAIT`] after it, time for a slow link's answer to come.
        let left = life
            .saturating_sub(env.clock.elapsed().saturating_sub(received))
            .saturating_add(LAST_ANSWER_WAIT);
        let timeout = env.request_timeout.min(left);
        let answer = match exchange(token_url, Some(poll.clone()), timeout).await {
            // A proxy's 502, 503, 504 or 429 with no RFC 6749 §5.2 error object in it
            // is the server not reached, not its answer: backed off from, as a failed
            // connection is.
            Ok((status, body)) if passed_on(status) && error_object(&body).is_none() => {
                Err(unexpected(token_url, status, &body))
            }
            answer => answer,
        };
        let (status, body) = match answer {
            Ok(answer) => {
                backoff = 0;
                failing = None;
                answer
            }
            Err(e) => {
                // RFC 8628 §3.5: on a connection timeout, back off exponentially.
                backoff = backoff
                    .max(interval)
                    .saturating_mul(2)
                    .min(MAX_BACKOFF_SECS);
                let age = env.clock.elapsed().saturating_sub(received);
                let wait = next_wait(interval, backoff, age, life);
                if may_poll(age, wait, da.expires_in) {
                    env.line(format_args!("  [{elapsed:>4}s] {e}; next try in {wait} s"))?;
                } else {
                    env.line(format_args!("  [{elapsed:>4}s] {e}"))?;
                }
                failing = Some(e.to_string());
                continue;
            }
        };
        if status == StatusCode::OK {
            // RFC 6749 §5.1: `access_token` and `token_type` are REQUIRED; a 200 without
            // them (`{}`, an error object) is no token, whatever its status says.
            let token = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .filter(|t| {
                    let text = |f: &str| t[f].as_str().is_some_and(|v| !v.is_empty());
                    text("access_token") && text("token_type")
                })
                .ok_or_else(|| DeviceError::Unexpected {
                    url: token_url.to_owned(),
                    status,
                    body: format!(
                        "not a token response (RFC 6749 §5.1: access_token and token_type): {}",
                        quote(&String::from_utf8_lossy(&body))
                    ),
                })?;
            // JSON escapes C0 controls but not C1 ones (U+009B is a CSI) or
            // bidirectional overrides: line by line, printable. Written at once: the
            // token is the result, and one the output did not take is no success.
            let mut shown = format!("  [{elapsed:>4}s] approved: token response\n\n");
            for line in serde_json::to_string_pretty(&token)
                .unwrap_or_default()
                .lines()
            {
                shown.push_str(&printable(line));
                shown.push('\n');
            }
            env.show(format_args!("{shown}"))
                .map_err(DeviceError::TokenLost)?;
            return Ok(token);
        }
        let error = error_object(&body);
        match error.as_ref().and_then(ErrorResponse::code) {
            Some(ErrorCode::AuthorizationPending) => {
                env.line(format_args!("  [{elapsed:>4}s] authorization_pending"))?;
            }
            Some(ErrorCode::SlowDown) => {
                // RFC 8628 §3.5: "the interval MUST be increased by 5 seconds for this
                // and all subsequent requests."
                interval = interval.saturating_add(SLOW_DOWN_INCREMENT_SECS);
                env.line(format_args!(
                    "  [{elapsed:>4}s] slow_down: polling every {interval} s from now on"
                ))?;
            }
            Some(ErrorCode::AccessDenied) => return Err(DeviceError::Denied),
            Some(ErrorCode::ExpiredToken) => return Err(DeviceError::Expired),
            // RFC 8628 §3.5: any other error code stops the polling.
            _ if error.is_some() => {
                return Err(DeviceError::Stopped(format!(
                    "{status}: {}",
                    describe(&body)
                )))
            }
            _ => return Err(unexpected(token_url, status, &body)),
        }
    }
}

/// Seconds to the next poll: `interval`, and after connection failures our back-off
/// on top, cut to what is left of the code's life (a last try before it ends), never
/// below `interval` (RFC 8628 §3.5).
fn next_wait(interval: u64, backoff: u64, age: Duration, life: Duration) -> u64 {
    let wait = interval.saturating_add(backoff);
    if backoff == 0 {
        return wait;
    }
    wait.min(life.saturating_sub(age).as_secs()).max(interval)
}

/// `d` as said in a message: whole seconds, or milliseconds below one.
fn shown_duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{} s", ceil_secs(d))
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Whole seconds in `d`, a started one counted.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A fake server on 127.0.0.1:0, each answer a whole HTTP/1.1 response.
    #[derive(Clone, Default)]
    struct Fake {
        /// The RFC 8414 metadata (a JSON body in which `BASE` stands for the fake's
        /// `http://127.0.0.1:port`); `None`: 404.
        metadata: Option<String>,
        /// The metadata request is read and never answered.
        silent_metadata: bool,
        /// The answer to the device authorization request.
        device: String,
        /// The answers to polls, in turn; the last one repeats.
        polls: Vec<String>,
        /// Polls are read and never answered.
        silent_polls: bool,
        /// Polls are answered this long after they are read.
        slow_polls: Duration,
    }

    /// Starts `fake`; returns its base URL and the count of polls it read.
    async fn start(fake: Fake) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let metadata = fake.metadata.as_ref().map(|m| m.replace("BASE", &base));
        let polls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&polls);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (fake, metadata, seen) = (fake.clone(), metadata.clone(), Arc::clone(&seen));
                tokio::spawn(async move {
                    let head = read_request(&mut stream).await;
                    let answer = if head.contains(METADATA_PATH) {
                        if fake.silent_metadata {
                            // Held open, never answered, until the client gives up.
                            let _ = stream.read(&mut [0u8; 1]).await;
                            return;
                        }
                        match &metadata {
                            Some(m) => ok_json(m),
                            None => {
                                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_owned()
                            }
                        }
                    } else if head.contains(paths::DEVICE_AUTHORIZATION) {
                        fake.device.clone()
                    } else if head.contains(paths::TOKEN) {
                        let n = seen.fetch_add(1, SeqCst);
                        if fake.silent_polls {
                            let _ = stream.read(&mut [0u8; 1]).await;
                            return;
                        }
                        tokio::time::sleep(fake.slow_polls).await;
                        fake.polls[n.min(fake.polls.len() - 1)].clone()
                    } else {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_owned()
                    };
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        (base, polls)
    }

    /// A whole request (head, and a body of its content-length): one left unread would
    /// make the close a reset, which can lose the answer.
    async fn read_request(stream: &mut tokio::net::TcpStream) -> String {
        let mut request = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let text = String::from_utf8_lossy(&request).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    return text;
                }
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&request).into_owned(),
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// A 200 with a JSON body, as a whole HTTP/1.1 response.
    fn ok_json(body: &str) -> String {
        answer("200 OK", body)
    }

    /// A response of `status` with a JSON `body`.
    fn answer(status: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// An RFC 6749 §5.2 error answer to a poll.
    fn error_answer(error: &str) -> String {
        answer("400 Bad Request", &format!(r#"{{"error":"{error}"}}"#))
    }

    /// RFC 8414 metadata naming the fake's own endpoints.
    const METADATA: &str = r#"{"issuer":"BASE","device_authorization_endpoint":"BASE/oauth/device_authorization","token_endpoint":"BASE/oauth/token"}"#;

    const TOKEN: &str = r#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#;

    const CODES: &str = r#"{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"http://127.0.0.1/d","expires_in":60,"interval":1}"#;

    /// Codes of `expires_in` s, polled every `interval` s (`None`: no interval sent).
    fn codes(expires_in: u64, interval: Option<u64>) -> String {
        let interval = interval.map(|i| format!(r#","interval":{i}"#));
        ok_json(&format!(
            r#"{{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"http://127.0.0.1/d","expires_in":{expires_in}{}}}"#,
            interval.unwrap_or_default()
        ))
    }

    /// Plays against a fake whose device authorization answer is the JSON `device`:
    /// refused with an error that says `said` about it, before any code is shown or
    /// any poll made. The error.
    async fn refused_before_any_code(device: &str, said: &str) -> String {
        let (base, polls) = fake(ok_json(device), ok_json(TOKEN)).await;
        let (ran, out) = play_text(&base).await;
        let err = ran.result.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{base}/oauth/device_authorization answered 200 OK: {said}"
            )),
            "{err}"
        );
        assert!(out.is_empty(), "{out}");
        assert_eq!(polls.load(SeqCst), 0);
        err
    }

    /// A fake issuing `device` and answering every poll `poll`, with no metadata.
    async fn fake(device: String, poll: String) -> (String, Arc<AtomicUsize>) {
        start(Fake {
            device,
            polls: vec![poll],
            ..Fake::default()
        })
        .await
    }

    fn options(issuer: String) -> DeviceOptions {
        DeviceOptions {
            issuer,
            client_id: "tv".into(),
            scope: None,
            ansi: false,
        }
    }

    /// What a device's run left.
    struct Ran {
        result: Result<serde_json::Value, DeviceError>,
        notes: String,
    }

    /// Plays the device against `base` with `out` as its output, on a virtual clock
    /// (its sleeps end at once: a code's whole life plays in milliseconds), waiting
    /// `discovery` for the metadata.
    async fn play_at(base: &str, out: &mut (dyn Write + Send), discovery: Duration) -> Ran {
        let mut notes = Vec::new();
        let mut env = Env {
            out,
            notes: &mut notes,
            clock: Clock::Virtual(std::sync::Mutex::new(Duration::ZERO)),
            request_timeout: Duration::from_secs(20),
            discovery_timeout: discovery,
        };
        // A bound for a device that would poll for ever: the test fails, never hangs.
        let result = tokio::time::timeout(
            Duration::from_secs(60),
            play(&options(base.to_owned()), &mut env),
        )
        .await
        .expect("the device stops");
        Ran {
            result,
            notes: String::from_utf8(notes).unwrap(),
        }
    }

    /// [`play_at`], its output kept.
    async fn play_text(base: &str) -> (Ran, String) {
        let mut out = Vec::new();
        let ran = play_at(base, &mut out, Duration::from_secs(20)).await;
        (ran, String::from_utf8(out).unwrap())
    }

    /// An output that fails (a closed pipe) from the first write holding `at` on.
    struct FailsAt {
        at: &'static str,
        failed: bool,
        written: String,
    }

    impl FailsAt {
        fn new(at: &'static str) -> FailsAt {
            FailsAt {
                at,
                failed: false,
                written: String::new(),
            }
        }
    }

    impl Write for FailsAt {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let text = String::from_utf8_lossy(buf);
            self.failed |= text.contains(self.at);
            if self.failed {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            self.written.push_str(&text);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            if self.failed {
                Err(std::io::ErrorKind::BrokenPipe.into())
            } else {
                Ok(())
            }
        }
    }

    /// OSC 52 (clipboard), OSC 8 (link), a move up and erase, a carriage return, a
    /// C1 CSI and a right-to-left override, as JSON string content.
    const ESCAPES: &str = r"\u001b]52;c;cHduZWQ=\u0007\u001b]8;;https://evil.example/\u0007x\u001b]8;;\u0007\u001b[1A\u001b[2K\rapproved\u009b2J\u202e";

    /// Whether `c` acts on a terminal.
    fn acts(c: char) -> bool {
        (c.is_control() && c != '\n') || c == '\u{202e}'
    }

    #[tokio::test]
    async fn what_the_server_says_is_shown_never_obeyed_by_the_terminal() {
        let device_answer = ok_json(&format!(
            r#"{{"device_code":"dc","user_code":"WDJB{ESCAPES}","verification_uri":"http://127.0.0.1/d","verification_uri_complete":"http://127.0.0.1/d?c=1","expires_in":60,"interval":1}}"#
        ));
        let error = format!(
            r#"{{"error":"server_error{ESCAPES}","error_description":"{ESCAPES}{}"}}"#,
            "d".repeat(100_000)
        );
        let (base, _) = fake(device_answer, answer("400 Bad Request", &error)).await;
        let (ran, out) = play_text(&base).await;
        let err = ran.result.unwrap_err().to_string();
        assert!(!out.contains(acts), "{out:?}");
        assert!(out.contains(r"WDJB\u{1b}]52;c;cHduZWQ="), "{out}");
        assert!(!err.contains(acts), "{err:?}");
        // No RFC 6749 §5.2 error code has those characters: an unexpected answer.
        assert!(
            err.starts_with(&format!(
                r#"{base}/oauth/token answered 400 Bad Request: {{"error":"server_error\u001b]52;"#
            )),
            "{err}"
        );
        // A description of 100,000 characters is quoted, not copied.
        assert!(err.len() < 1000, "{} bytes", err.len());
    }

    /// RFC 8628 §3.2 sets no bound on `expires_in` nor `interval`: u64::MAX seconds,
    /// past what an `Instant` holds, panicked (exit 101); then the device polled until
    /// the server said expired_token, which a server that answers slow_down for ever
    /// never does, and a billion-second interval slept for 31 years in silence
    /// (helper-83). Past a day of life or an hour between polls, the answer is refused,
    /// before any code is shown.
    #[tokio::test]
    async fn numbers_past_what_a_person_waits_are_refused_not_followed() {
        for (expires_in, interval, said) in [
            (
                u64::MAX,
                1,
                format!("expires_in is {} s, more than the 86400 s", u64::MAX),
            ),
            (86_401, 1, "expires_in is 86401 s".to_owned()),
            (
                60,
                1_000_000_000,
                "interval is 1000000000 s, more than the 3600 s".to_owned(),
            ),
            (u64::MAX, u64::MAX, format!("interval is {} s", u64::MAX)),
        ] {
            let device = format!(
                r#"{{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"http://127.0.0.1/d","expires_in":{expires_in},"interval":{interval}}}"#
            );
            refused_before_any_code(&device, &said).await;
        }
        // A day and an hour are followed.
        let device_answer = ok_json(
            r#"{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"http://127.0.0.1/d","expires_in":86400,"interval":3600}"#,
        );
        let (base, _) = fake(device_answer, error_answer("expired_token")).await;
        let (ran, out) = play_text(&base).await;
        assert!(matches!(ran.result, Err(DeviceError::Expired)), "{out}");
        assert!(
            out.contains("expires in 86400 s. Polling every 3600 s"),
            "{out}"
        );
    }

    /// RFC 6749 §5.1: `access_token` and `token_type` are REQUIRED in a token response.
    /// A 200 without them (an empty object, an error object, a JSON string) was
    /// printed as "approved" and the device exited 0, as with a token.
    #[tokio::test]
    async fn a_200_that_is_not_a_token_response_is_no_token() {
        for body in [
            "{}",
            r#"{"error":"authorization_pending"}"#,
            r#""approved""#,
            r#"{"access_token":"","token_type":"Bearer"}"#,
            r#"{"access_token":"at"}"#,
        ] {
            let (base, _) = fake(ok_json(CODES), ok_json(body)).await;
            let (ran, out) = play_text(&base).await;
            let err = ran.result.unwrap_err();
            assert!(
                matches!(err, DeviceError::Unexpected { .. }),
                "{body}: {err}"
            );
            assert!(err.to_string().contains("not a token response"), "{err}");
            assert!(!out.contains("approved"), "{body}: {out}");
        }
        // A token response is one.
        let (base, _) = fake(ok_json(CODES), ok_json(TOKEN)).await;
        let got = play_text(&base).await.0.result.unwrap();
        assert_eq!(got["access_token"], "at");
    }

    /// RFC 8414 §3.3: metadata whose `issuer` is not the one its URL was made from
    /// "MUST NOT be used". The device sent its device_code to the endpoints it named.
    #[tokio::test]
    async fn metadata_of_another_issuer_is_not_used() {
        for metadata in [
            r#"{"issuer":"http://evil.example","device_authorization_endpoint":"BASE/oauth/device_authorization","token_endpoint":"BASE/oauth/token"}"#,
            r#"{"device_authorization_endpoint":"BASE/oauth/device_authorization","token_endpoint":"BASE/oauth/token"}"#,
        ] {
            let (base, _) = start(Fake {
                metadata: Some(metadata.to_owned()),
                device: ok_json(CODES),
                polls: vec![ok_json(TOKEN)],
                ..Fake::default()
            })
            .await;
            let err = play_text(&base).await.0.result.unwrap_err().to_string();
            assert!(err.contains("RFC 8414 §3.3"), "{err}");
            assert!(err.contains(&base), "{err}");
        }
        // Its own issuer, with or without a trailing slash on either side (the one the
        // person gives loses it: an issuer the server names with one had no way to
        // match, helper-83): used.
        let with_slash = METADATA.replacen(r#""issuer":"BASE""#, r#""issuer":"BASE/""#, 1);
        for metadata in [METADATA.to_owned(), with_slash] {
            let (base, _) = start(Fake {
                metadata: Some(metadata),
                device: ok_json(CODES),
                polls: vec![ok_json(TOKEN)],
                ..Fake::default()
            })
            .await;
            for issuer in [base.clone(), format!("{base}/")] {
                let ran = play_text(&issuer).await.0;
                ran.result.unwrap();
                assert_eq!(ran.notes, "", "metadata was used: nothing to note");
            }
        }
    }

    /// A 502, 503 or 429 with no RFC 6749 §5.2 error object is a proxy's, not the
    /// server's answer: backed off from as a connection failure is, the status and
    /// body said. It stopped the device at once ("the token endpoint answered
    /// <h1>…; polling stops", no status), a code still valid (helper-83). A redirect
    /// stops it, with its status and the hint.
    #[tokio::test]
    async fn a_proxys_error_page_is_backed_off_from_and_a_redirect_said() {
        for status in [
            "503 Service Unavailable",
            "429 Too Many Requests",
            "502 Bad Gateway",
        ] {
            let (base, polls) = start(Fake {
                device: ok_json(CODES),
                polls: vec![answer(status, "<h1>down</h1>"), ok_json(TOKEN)],
                ..Fake::default()
            })
            .await;
            let (ran, out) = play_text(&base).await;
            ran.result.unwrap();
            assert!(
                out.contains(&format!(
                    "{base}/oauth/token answered {status}: <h1>down</h1>; next try in 3 s"
                )),
                "{out}"
            );
            assert_eq!(polls.load(SeqCst), 2);
        }
        // A 500 is the server's own failure: said with its status, and polling stops.
        let (base, _) = fake(
            ok_json(CODES),
            answer("500 Internal Server Error", "<h1>oops</h1>"),
        )
        .await;
        let err = play_text(&base).await.0.result.unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{base}/oauth/token answered 500 Internal Server Error: <h1>oops</h1>")
        );
        // A server's own error object on a 503 is its answer: RFC 8628 §3.5, stop.
        let (base, _) = fake(
            ok_json(CODES),
            answer(
                "503 Service Unavailable",
                r#"{"error":"temporarily_unavailable"}"#,
            ),
        )
        .await;
        let err = play_text(&base).await.0.result.unwrap_err().to_string();
        assert_eq!(
            err,
            "the token endpoint answered 503 Service Unavailable: temporarily_unavailable; polling stops (RFC 8628 §3.5)"
        );
        let redirect =
            "HTTP/1.1 302 Found\r\nlocation: http://evil.example/\r\ncontent-length: 0\r\n\r\n";
        let (base, _) = fake(ok_json(CODES), redirect.to_owned()).await;
        let err = play_text(&base).await.0.result.unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{base}/oauth/token answered 302 Found: an empty body (the device follows no redirect: is the issuer right?)")
        );
    }

    /// A poll that is never answered waits no longer than the code lives (and the
    /// grace): it waited the whole request timeout, 30 s, past a code of 8 s
    /// (helper-83). Here the timeout is 20 s and the test's bound 60 s, so three
    /// polls at the full timeout would fail it.
    #[tokio::test]
    async fn a_poll_never_answered_waits_no_longer_than_the_code_lives() {
        let (base, polls) = start(Fake {
            device: codes(1, Some(1)),
            silent_polls: true,
            ..Fake::default()
        })
        .await;
        let started = std::time::Instant::now();
        let err = play_text(&base).await.0.result.unwrap_err();
        assert!(matches!(err, DeviceError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("no answer within 5 s"), "{err}");
        assert!(polls.load(SeqCst) >= 1);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
        // One that answers in 2 s at the code's end is waited for (helper-84: cut at
        // 1 s, its token lost).
        let (base, _) = start(Fake {
            device: codes(1, Some(1)),
            polls: vec![ok_json(TOKEN)],
            slow_polls: Duration::from_secs(2),
            ..Fake::default()
        })
        .await;
        play_text(&base).await.0.result.unwrap();
    }

    /// A token endpoint this client cannot speak to (ftp://, from the metadata) was
    /// "retried" as a connection failure until the code expired, minutes later, after
    /// the person had been shown a code to approve.
    #[tokio::test]
    async fn a_token_endpoint_that_cannot_be_polled_is_said_before_any_code() {
        let metadata = r#"{"issuer":"BASE","device_authorization_endpoint":"BASE/oauth/device_authorization","token_endpoint":"ftp://127.0.0.1/oauth/token"}"#;
        let (base, _) = start(Fake {
            metadata: Some(metadata.to_owned()),
            device: ok_json(CODES),
            polls: vec![error_answer("authorization_pending")],
            ..Fake::default()
        })
        .await;
        let (ran, out) = play_text(&base).await;
        let err = ran.result.unwrap_err().to_string();
        // Where the URL came from is said (helper-83: it was the URL alone).
        assert_eq!(
            err,
            format!("{base}/.well-known/oauth-authorization-server answered 200 OK: metadata naming a token_endpoint this device cannot use: \"ftp://127.0.0.1/oauth/token\" is not an http:// or https:// URL")
        );
        assert!(out.is_empty(), "{out}");
    }

    /// RFC 8628 §3.5: the device waits `interval` between polls. An interval longer
    /// than the code lives left it asleep past the code's end, silent; it says no poll
    /// can come in time and stops, before showing a code.
    #[tokio::test]
    async fn an_interval_longer_than_the_code_lives_stops_at_once() {
        for (expires_in, interval) in [(60, 120u64), (1800, 3600)] {
            let (base, polls) = fake(
                codes(expires_in, Some(interval)),
                error_answer("authorization_pending"),
            )
            .await;
            let (ran, out) = play_text(&base).await;
            let err = ran.result.unwrap_err();
            assert!(matches!(err, DeviceError::NoPollInTime { .. }), "{err}");
            assert!(err.to_string().contains(&format!("{interval} s")), "{err}");
            assert!(out.is_empty(), "{out}");
            assert_eq!(polls.load(SeqCst), 0);
        }
    }

    #[tokio::test]
    async fn a_body_larger_than_any_answer_is_refused_not_stored() {
        let huge = format!("{{\"device_code\":\"{}\"}}", "a".repeat(2 * MAX_BODY_BYTES));
        let (base, _) = fake(ok_json(&huge), String::new()).await;
        let err = play_text(&base).await.0.result.unwrap_err().to_string();
        assert!(
            err.contains("the body is larger than"),
            "{}",
            &err[..200.min(err.len())]
        );
        assert!(err.len() < 1000, "{} bytes", err.len());
    }

    /// H1: stdout at /dev/full or a closed pipe: every write's failure was ignored, the
    /// device polled for the code's whole life and exited 0 having shown nothing.
    #[tokio::test]
    async fn an_output_that_cannot_be_written_stops_the_device_before_any_poll() {
        let (base, polls) = fake(ok_json(CODES), error_answer("authorization_pending")).await;
        let mut out = FailsAt::new("");
        let err = play_at(&base, &mut out, Duration::from_secs(20))
            .await
            .result
            .unwrap_err();
        assert!(matches!(err, DeviceError::Output(_)), "{err}");
        assert!(
            err.to_string()
                .starts_with("cannot write the device's output"),
            "{err}"
        );
        assert_eq!(polls.load(SeqCst), 0, "no poll for a code nobody saw");
    }

    #[tokio::test]
    async fn an_output_that_fails_while_polling_stops_the_polls() {
        let (base, polls) = fake(ok_json(CODES), error_answer("authorization_pending")).await;
        let mut out = FailsAt::new("authorization_pending");
        let err = play_at(&base, &mut out, Duration::from_secs(20))
            .await
            .result
            .unwrap_err();
        assert!(matches!(err, DeviceError::Output(_)), "{err}");
        assert_eq!(polls.load(SeqCst), 1);
        assert!(out.written.contains("WDJB-MJHT"), "{}", out.written);
    }

    /// The token came, and the output could not take it: exit 0 with nothing shown
    /// was a lost token (and on our server a second poll revokes it).
    #[tokio::test]
    async fn a_token_the_output_cannot_take_is_lost_not_a_success() {
        let (base, polls) = start(Fake {
            device: ok_json(CODES),
            polls: vec![error_answer("authorization_pending"), ok_json(TOKEN)],
            ..Fake::default()
        })
        .await;
        let mut out = FailsAt::new("approved");
        let err = play_at(&base, &mut out, Duration::from_secs(20))
            .await
            .result
            .unwrap_err();
        assert!(matches!(err, DeviceError::TokenLost(_)), "{err}");
        assert!(err.to_string().contains("it is lost"), "{err}");
        assert_eq!(polls.load(SeqCst), 2, "no poll after the token");
    }

    /// M2: any non-200 was "device authorization refused: <body>": "refused: " for a
    /// redirect, a proxy's HTML page dumped, "refused: {}" for a 999.
    #[tokio::test]
    async fn a_device_authorization_answer_that_is_no_error_object_says_its_status() {
        let html = format!(
            "<html>\n<body>Bad gateway{}</body>\n</html>",
            "x".repeat(5000)
        );
        for (device, said) in [
            (
                "HTTP/1.1 302 Found\r\nlocation: http://elsewhere.example/\r\ncontent-length: 0\r\n\r\n"
                    .to_owned(),
                "answered 302 Found: an empty body (the device follows no redirect",
            ),
            (
                answer("502 Bad Gateway", &html),
                r"answered 502 Bad Gateway: <html>\u{a}<body>Bad gateway",
            ),
            (answer("999 Odd", "{}"), "answered 999 <unknown status code>: {}"),
            (
                answer("400 Bad Request", r#"{"error":""}"#),
                r#"answered 400 Bad Request: {"error":""}"#,
            ),
            (
                answer("200 OK", r#"{"error":"invalid_scope"}"#),
                "answered 200 OK: not a device authorization response",
            ),
        ] {
            let (base, _) = fake(device, String::new()).await;
            let err = play_text(&base).await.0.result.unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{base}/oauth/device_authorization {said}")),
                "{err}"
            );
            assert!(!err.contains("refused"), "{err}");
            assert!(!err.contains(acts) && err.len() < 1000, "{err:?}");
        }
        // An RFC 6749 §5.2 error object: refused, with its code.
        let refusal = r#"{"error":"invalid_scope","error_description":"unknown scope \"x\""}"#;
        let (base, _) = fake(answer("400 Bad Request", refusal), String::new()).await;
        let err = play_text(&base).await.0.result.unwrap_err().to_string();
        assert_eq!(
            err,
            format!("device authorization refused by {base}/oauth/device_authorization (400 Bad Request): invalid_scope (unknown scope \"x\")")
        );
    }

    /// An unknown --client-id was "invalid_client (client authentication failed)".
    #[tokio::test]
    async fn an_unknown_client_id_is_said_as_such() {
        let refusal =
            r#"{"error":"invalid_client","error_description":"client authentication failed"}"#;
        let (base, _) = fake(answer("401 Unauthorized", refusal), String::new()).await;
        let err = play_text(&base).await.0.result.unwrap_err();
        assert!(matches!(err, DeviceError::UnknownClient { .. }), "{err}");
        let err = err.to_string();
        assert!(
            err.contains("the server knows no public client with the id \"tv\""),
            "{err}"
        );
        assert!(err.contains("invalid_client"), "{err}");
    }

    /// M3: a `javascript:` verification_uri was shown and QR-encoded, empty codes
    /// accepted, a URI of 100,000 characters printed whole.
    #[tokio::test]
    async fn codes_a_person_cannot_use_or_should_not_open_are_refused() {
        let long = format!("http://127.0.0.1/{}", "d".repeat(100_000));
        let with_escapes = format!("http://127.0.0.1/d{ESCAPES}");
        let cases = [
            (
                r#""device_code":"dc","user_code":"U","verification_uri":"javascript:alert(1)""#.to_owned(),
                r#"verification_uri "javascript:alert(1)" is not an absolute http:// or https:// URI (RFC 8628 §3.2)"#,
            ),
            (
                r#""device_code":"dc","user_code":"U","verification_uri":"http://127.0.0.1/d","verification_uri_complete":"JavaScript:alert(1)""#.to_owned(),
                "verification_uri_complete \"JavaScript:alert(1)\" is not an absolute",
            ),
            (
                r#""device_code":"dc","user_code":"U","verification_uri":"/device""#.to_owned(),
                "verification_uri \"/device\" is not an absolute",
            ),
            (
                r#""device_code":"dc","user_code":"U","verification_uri":"https://bank.example@evil.example/""#.to_owned(),
                "verification_uri \"https://…@evil.example/\" has a user name before the host",
            ),
            (
                format!(r#""device_code":"dc","user_code":"U","verification_uri":"{with_escapes}""#),
                "verification_uri \"http://127.0.0.1/d\\u{1b}]52;",
            ),
            (
                format!(r#""device_code":"dc","user_code":"U","verification_uri":"{long}""#),
                "verification_uri has 100017 characters, more than a person can be shown (200 at most)",
            ),
            (
                r#""device_code":"dc","user_code":"","verification_uri":"http://127.0.0.1/d""#.to_owned(),
                "user_code is empty or only spaces (\"\"; RFC 8628 §3.2: it is REQUIRED)",
            ),
            (
                r#""device_code":"dc","user_code":" \t ","verification_uri":"http://127.0.0.1/d""#.to_owned(),
                "user_code is empty or only spaces (\" \\u{9} \"; RFC 8628 §3.2: it is REQUIRED)",
            ),
            (
                r#""device_code":"","user_code":"U","verification_uri":"http://127.0.0.1/d""#.to_owned(),
                "device_code is empty or only spaces (\"\"; RFC 8628 §3.2: it is REQUIRED)",
            ),
            (
                format!(r#""device_code":"dc","user_code":"{}","verification_uri":"http://127.0.0.1/d""#, "U".repeat(201)),
                "user_code has 201 characters",
            ),
        ];
        for (fields, said) in cases {
            let device = format!(r#"{{{fields},"expires_in":60,"interval":1}}"#);
            let err = refused_before_any_code(&device, said).await;
            assert!(err.contains("RFC 8628 §3.2"), "{err}");
            assert!(!err.contains(acts) && err.len() < 1000, "{err:?}");
        }
        // At the limits: shown.
        let uri = format!("https://127.0.0.1/{}", "d".repeat(200 - 18));
        let device = ok_json(&format!(
            r#"{{"device_code":"dc","user_code":"{}","verification_uri":"{uri}","verification_uri_complete":"{uri}","expires_in":60}}"#,
            "U".repeat(200)
        ));
        let (base, _) = fake(device, ok_json(TOKEN)).await;
        let (ran, out) = play_text(&base).await;
        ran.result.unwrap();
        assert!(out.contains(&format!("open  {uri}\n")), "{out}");
    }

    /// M4: `expires_in: 0` was shown as "expires in 0 s" and polled about 60 times
    /// (a minute's grace), then said to be an interval too long.
    #[tokio::test]
    async fn a_code_that_expires_at_once_is_not_shown_nor_polled() {
        let (base, polls) = fake(codes(0, None), error_answer("authorization_pending")).await;
        let (ran, out) = play_text(&base).await;
        let err = ran.result.unwrap_err();
        assert_eq!(
            err.to_string(),
            "the first poll is allowed in 5 s, after the code expires (expires_in 0 s); no token can come (RFC 8628 §3.5)"
        );
        assert!(out.is_empty(), "{out}");
        assert_eq!(polls.load(SeqCst), 0);
        // Polled once a second: still no poll before it ends, by the server's numbers
        // (the grace for a late timer let one through, the code shown: helper-83).
        let (base, polls) = fake(codes(0, Some(1)), error_answer("authorization_pending")).await;
        let (ran, out) = play_text(&base).await;
        let err = ran.result.unwrap_err();
        assert!(matches!(err, DeviceError::NoPollInTime { .. }), "{err}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(polls.load(SeqCst), 0);
        // A second of life and a second between polls: shown, and polled at its end
        // and once more within the grace.
        let (base, polls) = fake(codes(1, Some(1)), error_answer("authorization_pending")).await;
        let err = play_text(&base).await.0.result.unwrap_err();
        assert!(
            matches!(err, DeviceError::ExpiredUnanswered { polls: 2, .. }),
            "{err}"
        );
        assert_eq!(polls.load(SeqCst), 2);
    }

    /// M4: after slow_downs on a 30 s code the device polled at 34, 55 and 81 s, then
    /// said its next poll would come "after the code expires", 51 s after it had.
    #[tokio::test]
    async fn slow_downs_stop_the_polls_at_the_code_end_and_say_so() {
        // Polls at 5 s (interval 10 s from then), 15 s (15 s), 30 s (20 s): 50 s is
        // past the code's 30 s.
        let (base, polls) = fake(codes(30, Some(5)), error_answer("slow_down")).await;
        let (ran, out) = play_text(&base).await;
        let err = ran.result.unwrap_err();
        assert_eq!(polls.load(SeqCst), 3, "{out}");
        assert!(
            out.contains("[  30s] slow_down") && !out.contains("[  50s]"),
            "{out}"
        );
        assert_eq!(
            err.to_string(),
            "the code expired (expires_in 30 s) after 3 polls without a decision, and the server never said expired_token; polling stops (RFC 8628 §3.5)"
        );
        // A 40 s code: the next allowed poll, at 50 s, would come after its end.
        let (base, polls) = fake(codes(40, Some(5)), error_answer("slow_down")).await;
        let err = play_text(&base).await.0.result.unwrap_err();
        assert_eq!(polls.load(SeqCst), 3);
        assert_eq!(
            err.to_string(),
            "no decision after 3 polls, and the next poll is allowed in 20 s, after the code expires (in 10 s; expires_in 40 s); polling stops (RFC 8628 §3.5)"
        );
    }

    /// M4: a token endpoint that cannot be reached is tried, backing off, until the
    /// code's end, not a minute past it.
    #[tokio::test]
    async fn an_unreachable_token_endpoint_is_tried_until_the_code_end() {
        // A port nobody listens on: bound, then let go.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let metadata = format!(
            r#"{{"issuer":"BASE","device_authorization_endpoint":"BASE/oauth/device_authorization","token_endpoint":"http://127.0.0.1:{port}/oauth/token"}}"#
        );
        let (base, _) = start(Fake {
            metadata: Some(metadata),
            device: codes(30, Some(5)),
            polls: vec![String::new()],
            ..Fake::default()
        })
        .await;
        let (ran, out) = play_text(&base).await;
        let err = ran.result.unwrap_err();
        // Tries at 5 s, 20 s (5 + 10 of back-off), 30 s (cut to the code's end).
        assert!(
            matches!(err, DeviceError::Unreachable { polls: 3, .. }),
            "{err}\n{out}"
        );
        assert!(
            out.contains("[  30s]") && !out.contains("next try in 5 s\n"),
            "{out}"
        );
        assert!(err.to_string().contains("cannot connect"), "{err}");
    }

    /// M4: `interval: 0` became 1 s; RFC 8628 §3.2's default is 5 s.
    #[tokio::test]
    async fn an_interval_of_zero_is_read_as_none_given() {
        let (base, _) = fake(codes(60, Some(0)), ok_json(TOKEN)).await;
        let (ran, out) = play_text(&base).await;
        ran.result.unwrap();
        assert!(
            out.contains("Polling every 5 s (RFC 8628 §3.5; the server's interval 0 is read as none given: §3.2's default)."),
            "{out}"
        );
        assert!(out.contains("[   5s] approved"), "{out}");
    }

    #[test]
    fn a_poll_is_made_only_while_the_code_lives() {
        let s = Duration::from_secs;
        assert!(may_poll(s(0), 30, 30));
        assert!(may_poll(s(25), 5, 30));
        // Within the grace: a timer that fires late.
        assert!(may_poll(s(0), 31, 30));
        assert!(!may_poll(s(0), 32, 30));
        assert!(!may_poll(s(30), 5, 30));
        assert!(!may_poll(s(0), 5, 0));
        // Past what a clock holds: never slept for.
        assert!(!may_poll(s(0), u64::MAX, u64::MAX));
        assert!(may_poll(s(1_000), 5, u64::MAX));
    }

    /// M5: metadata that never came cost 30 s, silently, before the default paths.
    #[tokio::test]
    async fn metadata_that_never_comes_costs_a_short_wait_and_is_noted() {
        let (base, _) = start(Fake {
            silent_metadata: true,
            device: ok_json(CODES),
            polls: vec![ok_json(TOKEN)],
            ..Fake::default()
        })
        .await;
        let mut out = Vec::new();
        let ran = play_at(&base, &mut out, Duration::from_millis(300)).await;
        ran.result.unwrap();
        assert_eq!(
            ran.notes,
            format!("note: no RFC 8414 metadata from {base}/.well-known/oauth-authorization-server (no answer within 300 ms); using the default paths {base}/oauth/device_authorization and {base}/oauth/token\n")
        );
    }

    /// A server that cannot be reached at all is said once, for its metadata URL: the
    /// same failure is no reason to note a fallback and fail again at the next URL
    /// (an untrusted certificate must stay a one-line error).
    #[tokio::test]
    async fn a_server_that_cannot_be_reached_is_said_once() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let ran = play_text(&base).await.0;
        let err = ran.result.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{base}/.well-known/oauth-authorization-server: cannot connect: "
            )),
            "{err}"
        );
        assert_eq!(ran.notes, "");
    }

    #[tokio::test]
    async fn a_server_without_metadata_is_noted() {
        let (base, _) = fake(ok_json(CODES), ok_json(TOKEN)).await;
        let ran = play_text(&base).await.0;
        ran.result.unwrap();
        assert!(
            ran.notes
                .contains("(it answered 404 Not Found); using the default paths"),
            "{}",
            ran.notes
        );
        assert_eq!(ran.notes.lines().count(), 1);
    }

    /// An upper-case scheme plays the device, the metadata's issuer matched.
    #[tokio::test]
    async fn an_issuer_in_upper_case_is_the_same_issuer() {
        let (base, _) = start(Fake {
            metadata: Some(METADATA.to_owned()),
            device: ok_json(CODES),
            polls: vec![ok_json(TOKEN)],
            ..Fake::default()
        })
        .await;
        let upper = base.replacen("http://", "HTTP://", 1);
        let ran = play_text(&upper).await.0;
        ran.result.unwrap();
        assert_eq!(ran.notes, "");
    }
}
