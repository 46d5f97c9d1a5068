//! deviceflow-device: a device-flow client. [`run`] plays a device against a running
//! authorization server (`deviceflow-server device` is this): a complete RFC 8628
//! client in one screen of output, for trying the flow by hand and for the browser
//! end-to-end test. [`qr`] draws `verification_uri_complete` as a QR code, for a
//! terminal and as SVG (the server's device-display page shows that one).
//!
//! It discovers the endpoints (RFC 8414), asks for codes (RFC 8628 §3.1), shows the
//! user code, `verification_uri` and a terminal QR code of `verification_uri_complete`
//! (§3.3, §3.3.1), then polls the token endpoint as §3.5 requires: it waits `interval`
//! (5 s if none) between requests, adds 5 s for every `slow_down`, backs off
//! exponentially when the connection fails, and stops at any other error.
//!
//! It speaks HTTP/1.1 through hyper's connection API, the HTTP stack the server uses
//! too, so the workspace needs no second HTTP client for it; `https://` over [`tls`],
//! the TLS client the workspace's clients share.

#![warn(missing_docs, unreachable_pub)]

pub mod qr;
pub mod tls;

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use deviceflow_reports::escape::{clip, terminal as printable};
use deviceflow_wire::paths;
use deviceflow_wire::{
    DeviceAuthorizationResponse, ErrorCode, ErrorResponse, DEFAULT_INTERVAL_SECS,
    GRANT_TYPE_DEVICE_CODE, METADATA_PATH, SLOW_DOWN_INCREMENT_SECS,
};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::Request;
pub use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Longest wait for one HTTP exchange.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of a response body the device reads: no answer of RFC 8628 or RFC 8414
/// comes near it, and a server that sends more (an endless body) is refused, not
/// stored.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The most characters of the server's words (a body, an `error_description`) an
/// error quotes.
const QUOTED_CHARS: usize = 200;

/// Longest wait between polls when backing off from connection failures.
const MAX_BACKOFF_SECS: u64 = 60;

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
    /// The device authorization request was refused (RFC 8628 §3.2, RFC 6749 §5.2).
    #[error("device authorization refused: {0}")]
    Refused(String),
    /// RFC 8628 §3.5 `access_denied`.
    #[error("access_denied: the person denied the request (RFC 8628 §3.5)")]
    Denied,
    /// RFC 8628 §3.5 `expired_token`.
    #[error("expired_token: the code expired before anyone approved it (RFC 8628 §3.5)")]
    Expired,
    /// The token endpoint could not be reached until the code's life was over: the
    /// server never said `expired_token`, and may never have heard a poll.
    #[error("the code's life ran out while the token endpoint could not be reached (last: {0})")]
    Unreachable(String),
    /// The server's `interval` (with the `slow_down`s added) is longer than its code
    /// lives: RFC 8628 §3.5 forbids polling sooner, so no poll can come in time.
    #[error("the next poll is allowed in {wait_secs} s, after the code expires (expires_in {expires_in} s); no token can come (RFC 8628 §3.5)")]
    NoPollInTime {
        /// Seconds until the next poll is allowed.
        wait_secs: u64,
        /// The code's `expires_in`.
        expires_in: u64,
    },
    /// Any other error answer to a poll: RFC 8628 §3.5 says to stop.
    #[error("the token endpoint answered {0}; polling stops (RFC 8628 §3.5)")]
    Stopped(String),
}

/// An `http://` or `https://` URL split for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpUrl {
    /// `https://`: over TLS.
    tls: bool,
    /// `host:port`, for the TCP connection and the `Host` header.
    authority: String,
    /// `/path?query`, at least `/`.
    target: String,
}

impl HttpUrl {
    fn parse(url: &str) -> Result<HttpUrl, DeviceError> {
        // The URL may be the server's (its metadata's endpoints): quoted, as text. A
        // URL holds no control characters (RFC 3986 §2).
        let not_http = || DeviceError::NotHttp(quote(url));
        if printable(url) != url {
            return Err(not_http());
        }
        let (tls, rest) = match url.strip_prefix("https://") {
            Some(rest) => (true, rest),
            None => (false, url.strip_prefix("http://").ok_or_else(not_http)?),
        };
        let (authority, target) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(not_http());
        }
        // No port: 80, or 443 for https (an IPv6 literal ends with ']').
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            authority.to_owned()
        } else {
            format!("{authority}:{}", if tls { 443 } else { 80 })
        };
        Ok(HttpUrl {
            tls,
            authority,
            target: target.to_owned(),
        })
    }

    /// `http://host:port` or `https://host:port`.
    fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }

    /// The host, without the port: the name its TLS certificate must show.
    fn host(&self) -> &str {
        self.authority
            .rsplit_once(':')
            .map_or(&*self.authority, |(host, _)| host)
    }
}

/// One HTTP/1.1 exchange on a fresh connection; `body` is sent as a form.
async fn exchange(url: &str, body: Option<String>) -> Result<(StatusCode, Bytes), DeviceError> {
    match body {
        Some(form) => {
            let body = ("application/x-www-form-urlencoded", Bytes::from(form));
            request(Method::POST, url, None, Some(body)).await
        }
        None => request(Method::GET, url, None, None).await,
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
    let parsed = HttpUrl::parse(url)?;
    let transport = |message: String| DeviceError::Transport {
        url: url.to_owned(),
        message,
    };
    let work = async {
        let stream = TcpStream::connect(&parsed.authority)
            .await
            .map_err(|e| transport(format!("cannot connect: {e}")))?;
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
                    "TLS handshake: {said}{}",
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
    tokio::time::timeout(REQUEST_TIMEOUT, work)
        .await
        .map_err(|_| transport(format!("no answer within {REQUEST_TIMEOUT:?}")))?
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

/// The endpoints from the RFC 8414 metadata, or this server's paths if there is none.
/// RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path.
async fn discover(issuer: &str) -> Result<(String, String), DeviceError> {
    let parsed = HttpUrl::parse(issuer)?;
    let path = parsed.target.trim_end_matches('/');
    let metadata_url = format!("{}{METADATA_PATH}{path}", parsed.origin());
    let fallback = || {
        (
            format!("{issuer}{}", paths::DEVICE_AUTHORIZATION),
            format!("{issuer}{}", paths::TOKEN),
        )
    };
    let Ok((StatusCode::OK, body)) = exchange(&metadata_url, None).await else {
        return Ok(fallback());
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Ok(fallback());
    };
    // RFC 8414 §3.3: "If these values are not identical, the data contained in the
    // response MUST NOT be used" (its endpoints would get this device's codes).
    if doc["issuer"].as_str() != Some(issuer) {
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
        _ => return Ok(fallback()),
    };
    // Both are used, the token endpoint for as long as the code lives: one this client
    // cannot speak to is said now, before a person is shown a code to approve.
    HttpUrl::parse(&da)?;
    HttpUrl::parse(&token)?;
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

/// The server's words as this device prints them: at most [`QUOTED_CHARS`]
/// characters, made text for a terminal ([`printable`]: an OSC 52 sequence in a
/// `user_code` would write the person's clipboard, a cursor move hide a line).
fn quote(text: &str) -> String {
    printable(&clip(text, QUOTED_CHARS))
}

/// Plays the device: prints the code and QR code to `out`, polls until the person
/// decides, and returns the token response as received.
pub async fn run(
    options: &DeviceOptions,
    out: &mut (dyn Write + Send),
) -> Result<serde_json::Value, DeviceError> {
    let issuer = options.issuer.trim_end_matches('/');
    let (da_url, token_url) = discover(issuer).await?;
    let da = request_codes(options, &da_url).await?;
    let interval = show_codes(options, issuer, &da, out);
    poll_for_token(options, &token_url, &da, interval, out).await
}

/// RFC 8628 §3.1: the device authorization request, and its §3.2 response.
async fn request_codes(
    options: &DeviceOptions,
    da_url: &str,
) -> Result<DeviceAuthorizationResponse, DeviceError> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("client_id", &options.client_id);
    if let Some(scope) = &options.scope {
        form.append_pair("scope", scope);
    }
    let (status, body) = exchange(da_url, Some(form.finish())).await?;
    if status != StatusCode::OK {
        return Err(DeviceError::Refused(describe(&body)));
    }
    serde_json::from_slice(&body).map_err(|e| DeviceError::Unexpected {
        url: da_url.to_owned(),
        status,
        body: format!(
            "not a device authorization response ({})",
            quote(&e.to_string())
        ),
    })
}

/// RFC 8628 §3.3: shows the code and where to enter it; §3.3.1: and the QR code.
/// Returns the polling interval, in seconds.
fn show_codes(
    options: &DeviceOptions,
    issuer: &str,
    da: &DeviceAuthorizationResponse,
    out: &mut (dyn Write + Send),
) -> u64 {
    // The codes and URIs are the server's: shown as text, never obeyed by the
    // terminal (the QR code is drawn from the URI as sent).
    let _ = writeln!(
        out,
        "deviceflow demo device: client \"{}\" at {}\n\n  On your phone or computer, open  {}\n  and enter the code  {}\n",
        printable(&options.client_id),
        printable(issuer),
        printable(&da.verification_uri),
        printable(&da.user_code)
    );
    if let Some(complete) = &da.verification_uri_complete {
        if let Ok(qr) = qr::terminal(complete, options.ansi) {
            let _ = writeln!(out, "  or scan this QR code ({}):\n", printable(complete));
            for line in qr.lines() {
                let _ = writeln!(out, "  {line}");
            }
            let _ = writeln!(out);
        }
    }
    let interval = da.interval.unwrap_or(DEFAULT_INTERVAL_SECS).max(1);
    let _ = writeln!(
        out,
        "  The code expires in {} s. Polling every {interval} s (RFC 8628 §3.5).\n",
        da.expires_in
    );
    let _ = out.flush();
    interval
}

/// RFC 8628 §3.4, §3.5: polls every `interval` seconds (longer after `slow_down`,
/// backing off after a connection failure) until the token, a denial or expiry.
async fn poll_for_token(
    options: &DeviceOptions,
    token_url: &str,
    da: &DeviceAuthorizationResponse,
    mut interval: u64,
    out: &mut (dyn Write + Send),
) -> Result<serde_json::Value, DeviceError> {
    let started = Instant::now();
    // The server's numbers, however large: past what an `Instant` holds (u64::MAX
    // seconds panicked here), there is no bound but the server's own expired_token.
    let give_up = started.checked_add(Duration::from_secs(
        da.expires_in.saturating_add(MAX_BACKOFF_SECS),
    ));
    let poll = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", GRANT_TYPE_DEVICE_CODE)
        .append_pair("device_code", &da.device_code)
        .append_pair("client_id", &options.client_id)
        .finish();
    let mut backoff = 0u64;
    // The last poll's transport failure, while polls keep failing.
    let mut failing: Option<String> = None;
    loop {
        // The server answers expired_token once the code is past its life; this bound
        // only stops a device whose server never says so.
        if give_up.is_some_and(|at| Instant::now() > at) {
            return Err(life_over(interval, da.expires_in, failing));
        }
        // RFC 8628 §3.5: no poll before `interval`. One the server allows only after
        // its code is gone (or past what a clock holds) is never made: no sleeping for
        // decades. (A back-off of ours is at most a minute, and ends in the check above.)
        let next = Instant::now().checked_add(Duration::from_secs(interval));
        if next.is_none_or(|next| give_up.is_some_and(|at| next > at)) {
            return Err(life_over(interval, da.expires_in, failing));
        }
        tokio::time::sleep(Duration::from_secs(interval.saturating_add(backoff))).await;
        let elapsed = started.elapsed().as_secs();
        let (status, body) = match exchange(token_url, Some(poll.clone())).await {
            Ok(answer) => {
                backoff = 0;
                failing = None;
                answer
            }
            Err(e) => {
                failing = Some(e.to_string());
                // RFC 8628 §3.5: on a connection timeout, back off exponentially.
                backoff = backoff
                    .max(interval)
                    .saturating_mul(2)
                    .min(MAX_BACKOFF_SECS);
                let _ = writeln!(
                    out,
                    "  [{elapsed:>4}s] {e}; next try in {} s",
                    interval.saturating_add(backoff)
                );
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
            let _ = writeln!(out, "  [{elapsed:>4}s] approved: token response\n");
            // JSON escapes C0 controls but not C1 ones (U+009B is a CSI) or
            // bidirectional overrides: line by line, printable.
            for line in serde_json::to_string_pretty(&token)
                .unwrap_or_default()
                .lines()
            {
                let _ = writeln!(out, "{}", printable(line));
            }
            let _ = out.flush();
            return Ok(token);
        }
        let error = serde_json::from_slice::<ErrorResponse>(&body).ok();
        match error.as_ref().and_then(ErrorResponse::code) {
            Some(ErrorCode::AuthorizationPending) => {
                let _ = writeln!(out, "  [{elapsed:>4}s] authorization_pending");
            }
            Some(ErrorCode::SlowDown) => {
                // RFC 8628 §3.5: "the interval MUST be increased by 5 seconds for this
                // and all subsequent requests."
                interval = interval.saturating_add(SLOW_DOWN_INCREMENT_SECS);
                let _ = writeln!(
                    out,
                    "  [{elapsed:>4}s] slow_down: polling every {interval} s from now on"
                );
            }
            Some(ErrorCode::AccessDenied) => return Err(DeviceError::Denied),
            Some(ErrorCode::ExpiredToken) => return Err(DeviceError::Expired),
            _ => return Err(DeviceError::Stopped(describe(&body))),
        }
        let _ = out.flush();
    }
}

/// Why a code's life is over without the server saying `expired_token`: its `interval`
/// outlasts the code (no poll could ever come in time), the token endpoint could not
/// be reached (`failing`: the last poll's failure), or the code simply ran out.
fn life_over(interval: u64, expires_in: u64, failing: Option<String>) -> DeviceError {
    match failing {
        Some(e) => DeviceError::Unreachable(e),
        None if interval >= expires_in => DeviceError::NoPollInTime {
            wait_secs: interval,
            expires_in,
        },
        None => DeviceError::Expired,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A hostile server on 127.0.0.1:0 with no metadata (the device falls back to
    /// this server's paths): the device authorization is answered `device_answer`
    /// (a JSON body), every poll `token_answer`, each a whole HTTP/1.1 response.
    async fn hostile(device_answer: String, token_answer: String) -> String {
        hostile_with_metadata(None, device_answer, token_answer).await
    }

    /// [`hostile`], answering its RFC 8414 metadata with `metadata` (a JSON body in
    /// which `BASE` stands for the server's `http://127.0.0.1:port`) when there is one.
    async fn hostile_with_metadata(
        metadata: Option<&str>,
        device_answer: String,
        token_answer: String,
    ) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let metadata = metadata.map(|m| m.replace("BASE", &base));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (device_answer, token_answer) = (device_answer.clone(), token_answer.clone());
                let metadata = metadata.clone();
                tokio::spawn(async move {
                    // One request a connection, small enough for one read.
                    let mut request = vec![0u8; 8192];
                    let n = stream.read(&mut request).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&request[..n]);
                    let answer = if let (true, Some(metadata)) =
                        (head.contains(METADATA_PATH), metadata.as_deref())
                    {
                        ok_json(metadata)
                    } else if head.contains(paths::DEVICE_AUTHORIZATION) {
                        ok_json(&device_answer)
                    } else if head.contains(paths::TOKEN) {
                        token_answer
                    } else {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_owned()
                    };
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        base
    }

    fn ok_json(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn options(issuer: String) -> DeviceOptions {
        DeviceOptions {
            issuer,
            client_id: "tv".into(),
            scope: None,
            ansi: false,
        }
    }

    /// OSC 52 (clipboard), OSC 8 (link), a move up and erase, a carriage return, a
    /// C1 CSI and a right-to-left override, as JSON string content.
    const ESCAPES: &str = r"\u001b]52;c;cHduZWQ=\u0007\u001b]8;;https://evil.example/\u0007x\u001b]8;;\u0007\u001b[1A\u001b[2K\rapproved\u009b2J\u202e";

    #[tokio::test]
    async fn what_the_server_says_is_shown_never_obeyed_by_the_terminal() {
        let device_answer = format!(
            r#"{{"device_code":"dc","user_code":"WDJB{ESCAPES}","verification_uri":"http://127.0.0.1/d{ESCAPES}","verification_uri_complete":"http://127.0.0.1/d?c{ESCAPES}","expires_in":60,"interval":1}}"#
        );
        let error = format!(
            r#"{{"error":"server_error{ESCAPES}","error_description":"{ESCAPES}{}"}}"#,
            "d".repeat(100_000)
        );
        let token_answer = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{error}",
            error.len()
        );
        let base = hostile(device_answer, token_answer).await;
        let mut out = Vec::new();
        let err = run(&options(base), &mut out).await.unwrap_err().to_string();
        let out = String::from_utf8(out).unwrap();
        let acts = |c: char| (c.is_control() && c != '\n') || c == '\u{202e}';
        assert!(!out.contains(acts), "{out:?}");
        assert!(out.contains(r"WDJB\u{1b}]52;c;cHduZWQ="), "{out}");
        assert!(!err.contains(acts), "{err:?}");
        assert!(
            err.starts_with("the token endpoint answered server_error"),
            "{err}"
        );
        // A description of 100,000 characters is quoted, not copied.
        assert!(err.len() < 1000, "{} bytes", err.len());
    }

    /// RFC 8628 §3.2 sets no bound on `expires_in`: u64::MAX seconds, past what an
    /// `Instant` holds, panicked (exit 101). The device polls, and stops at the
    /// server's expired_token.
    #[tokio::test]
    async fn numbers_too_large_for_a_clock_are_followed_not_a_panic() {
        let device_answer = format!(
            r#"{{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"http://127.0.0.1/d","expires_in":{},"interval":1}}"#,
            u64::MAX
        );
        let expired = r#"{"error":"expired_token"}"#;
        let token_answer = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{expired}",
            expired.len()
        );
        let base = hostile(device_answer, token_answer).await;
        let mut out = Vec::new();
        let err = run(&options(base), &mut out).await.unwrap_err();
        assert!(matches!(err, DeviceError::Expired), "{err}");
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains(&format!("expires in {} s", u64::MAX)), "{out}");
    }

    /// A code whose life ran out while the token endpoint was unreachable was
    /// reported as "expired_token: the code expired before anyone approved it", though
    /// the server never said so; an interval that outlasts the code is said as such.
    #[test]
    fn a_life_over_says_why_as_far_as_the_device_knows() {
        let e = life_over(5, 45, Some("connection refused".into()));
        assert!(matches!(e, DeviceError::Unreachable(_)), "{e}");
        assert!(e.to_string().contains("could not be reached"), "{e}");
        assert!(e.to_string().contains("connection refused"), "{e}");
        assert!(matches!(life_over(5, 45, None), DeviceError::Expired));
        assert!(matches!(
            life_over(60, 45, None),
            DeviceError::NoPollInTime { .. }
        ));
    }

    /// A pending answer, as a whole HTTP/1.1 response.
    fn error_answer(error: &str) -> String {
        let body = format!(r#"{{"error":"{error}"}}"#);
        format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    const CODES: &str = r#"{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"http://127.0.0.1/d","expires_in":60,"interval":1}"#;

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
            let base = hostile(CODES.to_owned(), ok_json(body)).await;
            let mut out = Vec::new();
            let err = run(&options(base), &mut out).await.unwrap_err();
            assert!(
                matches!(err, DeviceError::Unexpected { .. }),
                "{body}: {err}"
            );
            assert!(err.to_string().contains("not a token response"), "{err}");
            let out = String::from_utf8(out).unwrap();
            assert!(!out.contains("approved"), "{body}: {out}");
        }
        // A token response is one.
        let token = r#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#;
        let base = hostile(CODES.to_owned(), ok_json(token)).await;
        let got = run(&options(base), &mut Vec::new()).await.unwrap();
        assert_eq!(got["access_token"], "at");
    }

    /// RFC 8414 §3.3: metadata whose `issuer` is not the one its URL was made from
    /// "MUST NOT be used". The device sent its device_code to the endpoints it named.
    #[tokio::test]
    async fn metadata_of_another_issuer_is_not_used() {
        let token = r#"{"access_token":"at","token_type":"Bearer"}"#;
        for metadata in [
            r#"{"issuer":"http://evil.example","device_authorization_endpoint":"BASE/oauth/device_authorization","token_endpoint":"BASE/oauth/token"}"#,
            r#"{"device_authorization_endpoint":"BASE/oauth/device_authorization","token_endpoint":"BASE/oauth/token"}"#,
        ] {
            let base =
                hostile_with_metadata(Some(metadata), CODES.to_owned(), ok_json(token)).await;
            let err = run(&options(base.clone()), &mut Vec::new())
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("RFC 8414 §3.3"), "{err}");
            assert!(err.contains(&base), "{err}");
        }
        // Its own issuer (written with a trailing slash by the person): used.
        let metadata = r#"{"issuer":"BASE","device_authorization_endpoint":"BASE/oauth/device_authorization","token_endpoint":"BASE/oauth/token"}"#;
        let base = hostile_with_metadata(Some(metadata), CODES.to_owned(), ok_json(token)).await;
        run(&options(format!("{base}/")), &mut Vec::new())
            .await
            .unwrap();
    }

    /// A token endpoint this client cannot speak to (ftp://, from the metadata) was
    /// "retried" as a connection failure until the code expired, minutes later, after
    /// the person had been shown a code to approve.
    #[tokio::test]
    async fn a_token_endpoint_that_cannot_be_polled_is_said_before_any_code() {
        let metadata = r#"{"issuer":"BASE","device_authorization_endpoint":"BASE/oauth/device_authorization","token_endpoint":"ftp://127.0.0.1/oauth/token"}"#;
        let base = hostile_with_metadata(
            Some(metadata),
            CODES.to_owned(),
            error_answer("authorization_pending"),
        )
        .await;
        let mut out = Vec::new();
        let err = tokio::time::timeout(Duration::from_secs(10), run(&options(base), &mut out))
            .await
            .expect("the device gives up at once")
            .unwrap_err();
        assert!(matches!(err, DeviceError::NotHttp(_)), "{err}");
        assert!(
            err.to_string().contains("ftp://127.0.0.1/oauth/token"),
            "{err}"
        );
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    }

    /// RFC 8628 §3.5: the device waits `interval` between polls. An interval longer
    /// than the code lives (a billion seconds) left it asleep for decades, silent; it
    /// says no poll can come in time and stops.
    #[tokio::test]
    async fn an_interval_longer_than_the_code_lives_stops_at_once() {
        for (expires_in, interval) in [(60, 1_000_000_000u64), (u64::MAX, u64::MAX)] {
            let codes = format!(
                r#"{{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"http://127.0.0.1/d","expires_in":{expires_in},"interval":{interval}}}"#
            );
            let base = hostile(codes, error_answer("authorization_pending")).await;
            let err = tokio::time::timeout(
                Duration::from_secs(10),
                run(&options(base), &mut Vec::new()),
            )
            .await
            .expect("the device does not sleep for decades")
            .unwrap_err();
            assert!(matches!(err, DeviceError::NoPollInTime { .. }), "{err}");
            assert!(err.to_string().contains(&format!("{interval} s")), "{err}");
        }
    }

    #[tokio::test]
    async fn a_body_larger_than_any_answer_is_refused_not_stored() {
        let huge = format!("{{\"device_code\":\"{}\"}}", "a".repeat(2 * MAX_BODY_BYTES));
        let base = hostile(huge, String::new()).await;
        let err = run(&options(base), &mut Vec::new())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the body is larger than"),
            "{}",
            &err[..200.min(err.len())]
        );
        assert!(err.len() < 1000, "{} bytes", err.len());
    }

    #[test]
    fn http_urls_split_into_authority_and_target() {
        let u = HttpUrl::parse("http://127.0.0.1:8080/oauth/token").unwrap();
        assert_eq!(u.authority, "127.0.0.1:8080");
        assert_eq!(u.target, "/oauth/token");
        let u = HttpUrl::parse("http://auth.example.test").unwrap();
        assert_eq!(u.authority, "auth.example.test:80");
        assert_eq!(u.target, "/");
        assert_eq!(
            HttpUrl::parse("http://[::1]/x").unwrap().authority,
            "[::1]:80"
        );
        assert_eq!(
            HttpUrl::parse("http://[::1]:9/x").unwrap().authority,
            "[::1]:9"
        );
        let u = HttpUrl::parse("https://auth.example.test/o").unwrap();
        assert_eq!(
            (u.tls, &*u.authority, u.host(), &*u.origin()),
            (
                true,
                "auth.example.test:443",
                "auth.example.test",
                "https://auth.example.test:443"
            )
        );
        assert_eq!(
            HttpUrl::parse("https://[::1]:8443").unwrap().host(),
            "[::1]"
        );
        assert!(matches!(
            HttpUrl::parse("ftp://auth.example.test"),
            Err(DeviceError::NotHttp(_))
        ));
        assert!(HttpUrl::parse("http:///x").is_err());
    }
}
