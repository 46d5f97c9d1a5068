//! Routing: which endpoint or page answers a request, and the checks every form
//! endpoint relies on (method, content type, body size and read time) before it runs.
//!
//! `App::handle` takes any `http_body::Body`, so tests and benches can drive it
//! in-process; `lib.rs` puts it behind hyper connections.

use std::future::Future;
use std::net::IpAddr;
use std::time::Instant;

use bytes::Bytes;
use deviceflow_wire::METADATA_PATH;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::http::request::Parts;
use hyper::{Method, Request, StatusCode, Version};

use super::metrics::Endpoint;
use super::state::{App, STORE_RETRY_AFTER_MS};
use crate::http::body::{check_form_headers, read_body};
use crate::http::is_read;
use crate::http::paths;
use crate::http::response::{self, Reply};
use crate::storage::store::{Store, Unavailable};
use crate::verification;

/// What routing decided for a request. Small, as the request's future holds it: an
/// answer made here is boxed.
enum Route {
    /// Answered without reading a body (GET endpoints, 404, 405).
    Answered(Endpoint, Box<Reply>),
    /// A form POST to this endpoint.
    Form(Endpoint),
    /// One of the person's pages.
    Verification,
    /// `/metrics`, which reads the store.
    Metrics,
    /// `/readyz`, which asks the store.
    Ready,
    /// RFC 7591 registration and RFC 7592 client configuration (JSON bodies).
    Registration,
    /// The admin API for applications (JSON bodies).
    AdminClients,
}

impl Route {
    /// The endpoint a request is counted under.
    fn endpoint(&self) -> Endpoint {
        match *self {
            Route::Answered(endpoint, _) | Route::Form(endpoint) => endpoint,
            Route::Metrics | Route::Ready => Endpoint::Metadata,
            Route::Registration => Endpoint::Registration,
            Route::AdminClients => Endpoint::Admin,
            Route::Verification => Endpoint::Verification,
        }
    }
}

impl<S: Store> App<S> {
    /// Answers one request. Never fails and never panics on input: every refusal is an
    /// HTTP answer with a JSON error body.
    ///
    /// `peer` is the TCP peer: quotas and rate limits count by the client's address,
    /// which is `peer` unless `peer` is a trusted proxy (`limits.trusted_proxies`,
    /// `forwarded.rs`), and audit events name it. In-process callers without one pass
    /// [`NO_PEER`](super::state::NO_PEER).
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
        let (mut parts, body) = req.into_parts();
        // Below an issuer's path, what is not a path of ours as it came is read without
        // it: `/oauth/token` under the issuer `https://h/oauth` is the token endpoint
        // (a proxy in front stripped the prefix), `/oauth/oauth/token` too.
        if let Some(base) = self.issuer_path.as_deref() {
            if !self.knows(parts.uri.path()) {
                paths::strip_base(&mut parts.uri, base);
            }
        }
        let peer = self.settings.trusted_proxies.client(peer, &parts.headers);
        let route = self.route(&parts);
        async move {
            let endpoint = route.endpoint();
            let reply = match route {
                Route::Answered(_, reply) => *reply,
                Route::Metrics => self.render_metrics().await,
                Route::Ready => self.readiness().await,
                Route::Registration => {
                    Box::pin(self.registration(Request::from_parts(parts, body), peer)).await
                }
                Route::AdminClients => {
                    Box::pin(self.admin_clients(Request::from_parts(parts, body), peer)).await
                }
                // Boxed: the pages' future is large, and inline it would make every
                // poll's future as large.
                Route::Verification => {
                    Box::pin(self.verification_page(Request::from_parts(parts, body), peer)).await
                }
                Route::Form(endpoint) => {
                    let read = match check_form_headers(&parts.headers) {
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
                        // Each endpoint is awaited right here rather than through a
                        // function of its own: every async layer moves the answer.
                        Ok(form) => match endpoint {
                            Endpoint::Token => self.token(&parts, &form, peer).await.into_reply(),
                            Endpoint::DeviceAuthorization => {
                                self.device_authorization(&parts, &form, peer).await
                            }
                            // Boxed, one allocation each: inline, their futures
                            // (the largest) would make every poll's as large.
                            // Introspection can be frequent where resource servers
                            // introspect every call; an allocation is small next
                            // to its store lookup.
                            Endpoint::Introspection => {
                                Box::pin(self.introspection(&parts, &form)).await
                            }
                            Endpoint::Revocation => Box::pin(self.revocation(&parts, &form)).await,
                            _ => Box::pin(self.admin_decision(&parts, &form, peer)).await,
                        },
                        Err(e) => {
                            self.metrics.request_error();
                            e.reply()
                        }
                    }
                }
            };
            self.metrics.observe(endpoint, start.elapsed());
            reply
        }
    }

    /// Whether [`route`](Self::route) sends `path` anywhere but to the 404.
    fn knows(&self, path: &str) -> bool {
        use paths::*;
        matches!(
            path,
            TOKEN
                | DEVICE_AUTHORIZATION
                | INTROSPECTION
                | REVOCATION
                | METADATA_PATH
                | HEALTH
                | READY
                | METRICS
        ) || (path == ADMIN_DECISIONS && self.settings.admin_token.is_some())
            || self.metadata_at_issuer_path.as_deref() == Some(path)
            || self.is_registration(path)
            || self.is_admin_clients(path)
            || verification::is_known_page(path)
    }

    /// Where a request goes; GET endpoints, 404 and 405 are answered right here.
    fn route(&self, parts: &Parts) -> Route {
        use paths::*;
        if let Err(why) = check_host(parts) {
            let reply = response::OAuthError::invalid_request(why).reply();
            return Route::Answered(Endpoint::Other, Box::new(reply));
        }
        let path = parts.uri.path();
        let (endpoint, allow) = match path {
            TOKEN => (Endpoint::Token, "POST"),
            DEVICE_AUTHORIZATION => (Endpoint::DeviceAuthorization, "POST"),
            INTROSPECTION => (Endpoint::Introspection, "POST"),
            REVOCATION => (Endpoint::Revocation, "POST"),
            ADMIN_DECISIONS if self.settings.admin_token.is_some() => (Endpoint::Admin, "POST"),
            METADATA_PATH | HEALTH | READY | METRICS => (Endpoint::Metadata, "GET, HEAD"),
            // RFC 8414 §3.1: an issuer with a path has its metadata there too.
            path if self.metadata_at_issuer_path.as_deref() == Some(path) => {
                (Endpoint::Metadata, "GET, HEAD")
            }
            path if self.is_registration(path) => return Route::Registration,
            path if self.is_admin_clients(path) => return Route::AdminClients,
            // The person's pages answer HTML, so they route themselves.
            path if verification::is_page(path) => return Route::Verification,
            _ => return Route::Answered(Endpoint::Other, Box::new(response::not_found())),
        };
        let form = allow == "POST";
        // RFC 9110 §9.1: HEAD wherever GET is; hyper sends a HEAD answer's head alone.
        let allowed = if form {
            parts.method == Method::POST
        } else {
            is_read(&parts.method)
        };
        if !allowed {
            return Route::Answered(endpoint, Box::new(response::method_not_allowed(allow)));
        }
        if form {
            return Route::Form(endpoint);
        }
        let reply = match path {
            HEALTH => response::json(StatusCode::OK, Bytes::from_static(br#"{"status":"ok"}"#)),
            METRICS => return Route::Metrics,
            READY => return Route::Ready,
            // METADATA_PATH, or its RFC 8414 §3.1 form.
            _ => response::json(StatusCode::OK, self.metadata.clone()),
        };
        Route::Answered(endpoint, Box::new(reply))
    }

    /// `/readyz`: 200 while the session store answers, 503 with `Retry-After` while it
    /// does not (a shared store away, or shared with an instance whose clients
    /// disagree). `/healthz` stays 200 then: the process is alive, and restarting it
    /// would not bring the store back; a load balancer that checks readiness sends
    /// requests to the instances that can serve them.
    async fn readiness(&self) -> Reply {
        match self.store.census(self.clock.now()).await {
            Ok(_) => response::json(StatusCode::OK, Bytes::from_static(br#"{"status":"ready"}"#)),
            Err(Unavailable) => response::with_retry_after(
                response::json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Bytes::from_static(
                        br#"{"status":"unavailable","reason":"the session store does not answer"}"#,
                    ),
                ),
                STORE_RETRY_AFTER_MS,
            ),
        }
    }

    /// `/metrics`: the Prometheus text exposition. While the shared store is away the
    /// instance's own counters are still shown, with `deviceflow_store_up 0` and
    /// without the store's gauges: monitoring sees the outage instead of losing sight.
    /// On a shared store, this instance's clock offset from it, to alert on.
    async fn render_metrics(&self) -> Reply {
        let census = self.store.census(self.clock.now()).await.ok();
        // Not asked of a store that just did not answer: a scrape waits for one timeout.
        let clock_offset = match census {
            Some(_) => self.clock_offset().await.ok().flatten(),
            None => None,
        };
        let text = self.metrics.render(census.as_ref(), clock_offset);
        let mut r = response::json(StatusCode::OK, text);
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        r
    }
}

/// RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
/// HTTP/1.1 request message that lacks a Host header field and to any request message
/// that contains more than one Host header field line or a Host header field with an
/// invalid field value." The issuer is configured, so this server reads no Host; a
/// proxy in front that reads one must not be told it is the same request as this
/// server's.
fn check_host(parts: &Parts) -> Result<(), &'static str> {
    let mut hosts = parts.headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(host), None) if valid_host(host.as_bytes()) => Ok(()),
        (Some(_), None) => Err("the Host header is not a host and port (RFC 9112 Sec.3.2)"),
        (Some(_), Some(_)) => {
            Err("a request carries one Host header, not several (RFC 9112 Sec.3.2)")
        }
        (None, _) if parts.version <= Version::HTTP_10 => Ok(()),
        (None, _) => Err("an HTTP/1.1 request carries a Host header (RFC 9112 Sec.3.2)"),
    }
}

/// Whether `value` is a Host value (RFC 9110 §7.2, `uri-host [ ":" port ]`): the
/// characters of a reg-name, an IP literal (`[…]`) or an address, and a colon. Empty is
/// valid, for a target without an authority.
fn valid_host(value: &[u8]) -> bool {
    /// RFC 3986 unreserved, sub-delims, `%` (pct-encoded), `:` and the IP literal's
    /// brackets: one table lookup a byte, as every request pays it.
    const HOST_BYTE: [bool; 256] = {
        let mut table = [false; 256];
        let allowed =
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%:[]";
        let mut i = 0;
        while i < allowed.len() {
            table[allowed[i] as usize] = true;
            i += 1;
        }
        table
    };
    value.iter().all(|&b| HOST_BYTE[usize::from(b)])
}
