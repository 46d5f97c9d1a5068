//! The application: shared state, routing, and the request checks every endpoint
//! relies on (method, content type, body size and read time).
//!
//! `App::handle` takes any `http_body::Body`, so tests and benches can drive it
//! in-process; `lib.rs` puts it behind hyper connections.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use deviceflow_wire::{ErrorCode, METADATA_PATH};
use http_body_util::{BodyExt, Limited};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Method, Request, StatusCode};

use crate::clients::{AuthError, Client};
use crate::clock::Clock;
use crate::config::Settings;
use crate::form::Form;
use crate::metrics::{Endpoint, Metrics};
use crate::quota::Quotas;
use crate::response::{self, OAuthError, Reply};
use crate::store::{MemoryStore, SessionStore};
use crate::tokens::TokenStore;
use crate::verification::{self, Verification};

/// What routing decided for a request.
enum Route {
    /// Answered without reading a body (GET endpoints, 404, 405).
    Answered(Endpoint, Reply),
    /// A form POST to this endpoint.
    Form(Endpoint),
    /// One of the person's pages.
    Verification,
}

/// Paths of the endpoints, relative to the issuer.
pub mod paths {
    pub const DEVICE_AUTHORIZATION: &str = "/oauth/device_authorization";
    pub const TOKEN: &str = "/oauth/token";
    pub const INTROSPECTION: &str = "/oauth/introspect";
    pub const REVOCATION: &str = "/oauth/revoke";
    pub const ADMIN_DECISIONS: &str = "/admin/decisions";
    /// RFC 8628 §3.2 `verification_uri`: where the person enters the code.
    pub const VERIFICATION: &str = "/device";
    pub const HEALTH: &str = "/healthz";
    pub const METRICS: &str = "/metrics";
}

/// The peer of a request handled in-process, with no connection (tests, benches).
pub const NO_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Everything a request can reach.
pub struct App<S: SessionStore = MemoryStore> {
    pub settings: Settings,
    /// Issuer identifier and base URL, without a trailing slash.
    pub issuer: String,
    pub store: S,
    pub tokens: TokenStore,
    pub clock: Clock,
    pub metrics: Metrics,
    /// Device authorizations per source address and per client.
    pub quotas: Quotas,
    /// The person's side: web sessions, rate limits, the pages under `/device`.
    pub verification: Verification,
    /// RFC 8414 metadata, rendered once.
    pub(crate) metadata: Bytes,
}

impl App<MemoryStore> {
    /// An app on the in-memory store.
    pub fn new(settings: Settings, issuer: String, clock: Clock) -> App<MemoryStore> {
        let store = MemoryStore::new(
            settings.max_sessions,
            settings.expired_retention_secs * 1000,
        )
        .with_max_per_client(settings.max_sessions_per_client);
        App::with_store(settings, issuer, clock, store)
    }
}

impl<S: SessionStore> App<S> {
    pub fn with_store(settings: Settings, issuer: String, clock: Clock, store: S) -> App<S> {
        let tokens = TokenStore::new(
            settings.access_token_ttl_secs * 1000,
            settings.refresh_token_ttl_secs * 1000,
        );
        let metadata = crate::endpoints::metadata::render(&settings, &issuer);
        let verification = Verification::new(&settings, &issuer);
        let quotas = Quotas::new(settings.quotas);
        App {
            settings,
            issuer,
            store,
            tokens,
            clock,
            metrics: Metrics::default(),
            quotas,
            verification,
            metadata,
        }
    }

    /// Answers one request. Never fails and never panics on input: every refusal is an
    /// HTTP answer with a JSON error body.
    ///
    /// `peer` is the client's address (the TCP peer): quotas and rate limits count by
    /// it, and audit events name it. In-process callers without one pass
    /// [`NO_PEER`].
    ///
    /// Routing is decided before the future is built, and the future holds the
    /// request's parts once: hyper moves this future for every request, so its size is
    /// on the poll path.
    pub fn handle<B>(&self, req: Request<B>, peer: IpAddr) -> impl Future<Output = Reply> + '_
    where
        B: hyper::body::Body<Data = Bytes> + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let start = Instant::now();
        let (parts, body) = req.into_parts();
        let route = self.route(&parts);
        async move {
            let (endpoint, reply) = match route {
                Route::Answered(endpoint, reply) => (endpoint, reply),
                // Boxed: the pages' future is large, and inline it would make every
                // poll's future as large.
                Route::Verification => (
                    Endpoint::Verification,
                    Box::pin(self.verification_page(Request::from_parts(parts, body), peer)).await,
                ),
                Route::Form(endpoint) => {
                    let read = match check_form_content_type(parts.headers.get(CONTENT_TYPE)) {
                        Ok(()) => {
                            read_body(
                                body,
                                self.settings.max_body_bytes,
                                self.settings.body_read_timeout_ms,
                            )
                            .await
                        }
                        Err(e) => Err(e),
                    };
                    match read {
                        Ok(form) => (endpoint, self.dispatch(endpoint, &parts, &form, peer)),
                        Err(e) => {
                            self.metrics.request_error();
                            (endpoint, e.reply())
                        }
                    }
                }
            };
            self.metrics.observe(endpoint, start.elapsed());
            reply
        }
    }

    /// Where a request goes; GET endpoints, 404 and 405 are answered right here.
    fn route(&self, parts: &Parts) -> Route {
        use paths::*;
        let path = parts.uri.path();
        let (endpoint, allow) = match path {
            TOKEN => (Endpoint::Token, "POST"),
            DEVICE_AUTHORIZATION => (Endpoint::DeviceAuthorization, "POST"),
            INTROSPECTION => (Endpoint::Introspection, "POST"),
            REVOCATION => (Endpoint::Revocation, "POST"),
            ADMIN_DECISIONS if self.settings.admin_token.is_some() => (Endpoint::Admin, "POST"),
            METADATA_PATH | HEALTH | METRICS => (Endpoint::Metadata, "GET"),
            // The person's pages answer HTML, so they route themselves.
            path if verification::is_page(path) => return Route::Verification,
            _ => return Route::Answered(Endpoint::Other, response::not_found()),
        };
        let wanted = if allow == "POST" {
            Method::POST
        } else {
            Method::GET
        };
        if parts.method != wanted {
            return Route::Answered(endpoint, response::method_not_allowed(allow));
        }
        if allow == "POST" {
            return Route::Form(endpoint);
        }
        let reply = match path {
            METADATA_PATH => response::json(StatusCode::OK, self.metadata.clone()),
            HEALTH => response::json(StatusCode::OK, Bytes::from_static(br#"{"status":"ok"}"#)),
            _ => self.render_metrics(),
        };
        Route::Answered(endpoint, reply)
    }

    /// Runs a form endpoint on its read body.
    fn dispatch(&self, endpoint: Endpoint, parts: &Parts, body: &[u8], peer: IpAddr) -> Reply {
        match endpoint {
            Endpoint::Token => self.token(parts, body, peer),
            Endpoint::DeviceAuthorization => self.device_authorization(parts, body, peer),
            Endpoint::Introspection => self.introspection(parts, body),
            Endpoint::Revocation => self.revocation(parts, body),
            _ => self.admin_decision(parts, body, peer),
        }
    }

    /// Checks the media type and reads the body within the size and time limits.
    ///
    /// RFC 8628 §3.1 / RFC 6749 §3.2: requests use the
    /// `application/x-www-form-urlencoded` format "with a character encoding of UTF-8".
    pub(crate) async fn read_form<B>(&self, req: Request<B>) -> Result<(Parts, Bytes), OAuthError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        check_form_content_type(parts.headers.get(CONTENT_TYPE))?;
        let body = read_body(
            body,
            self.settings.max_body_bytes,
            self.settings.body_read_timeout_ms,
        )
        .await?;
        Ok((parts, body))
    }

    fn render_metrics(&self) -> Reply {
        let text = self
            .metrics
            .render(self.store.len(), self.tokens.access_tokens());
        let mut r = response::json(StatusCode::OK, text);
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        r
    }

    /// Authenticates the caller (see [`crate::clients::Clients::authenticate`]) and
    /// turns a failure into its RFC 6749 §5.2 answer.
    pub(crate) fn client<'a>(
        &'a self,
        parts: &Parts,
        form: &Form<'_>,
    ) -> Result<&'a Client, OAuthError> {
        let authorization = parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
        self.settings
            .clients
            .authenticate(authorization, form)
            .map_err(|e| match e {
                AuthError::Malformed(why) => OAuthError::invalid_request(why),
                AuthError::Failed { basic } => {
                    let e =
                        OAuthError::new(ErrorCode::InvalidClient, "client authentication failed");
                    if basic {
                        e.with_basic_challenge()
                    } else {
                        e
                    }
                }
            })
    }

    /// Removes some of what expired: sessions past their retention, and expired
    /// tokens, looking at no more than `budget` due entries of each. Returns whether a
    /// slice came back full, so that more may be due: the sweeper calls again, after
    /// letting other tasks run.
    pub fn sweep(&self, budget: usize) -> bool {
        let now = self.clock.now();
        let stats = self.store.sweep(now, budget);
        self.metrics.sessions_expired(stats.expired_unredeemed);
        let tokens = self.tokens.sweep(now, budget);
        let sources = self.quotas.sweep(now, budget);
        self.verification.sweep(now);
        stats.examined == budget || tokens == budget || sources == budget
    }
}

/// Reads a request body within the size and time limits.
///
/// A free function with a small future of its own: the request future is moved by hyper
/// for every request, so what it holds across this await is kept small.
async fn read_body<B>(body: B, limit: usize, timeout_ms: u64) -> Result<Bytes, OAuthError>
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

/// Parses a form body, mapping its errors to `invalid_request`.
pub(crate) fn parse_form(body: &[u8]) -> Result<Form<'_>, OAuthError> {
    Form::parse(body).map_err(|e| OAuthError::invalid_request(e.to_string()))
}

fn check_form_content_type(value: Option<&HeaderValue>) -> Result<(), OAuthError> {
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
