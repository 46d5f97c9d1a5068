//! Talking to the server under test, and keeping what was said as evidence.
//!
//! Every request becomes an [`Exchange`], whatever happens: a timeout, a reset
//! connection or an HTML error page is recorded, never raised, so a broken server
//! yields failed cases with evidence instead of a crashed suite.
//!
//! Response bodies are read up to [`MAX_BODY_BYTES`]: a server that sends more (an
//! endless chunked body, say) is answered with the evidence of that, not with the
//! suite's memory. What is recorded passes through [`crate::redact`] first: the
//! evidence (JSON, JUnit, Markdown, the terminal's one-line briefs) never holds a live
//! credential, while the checks read the raw body.

pub mod diagnose;
pub mod json;
pub mod reach;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use serde::Serialize;

use self::json::Json;
use self::reach::{GuardedResolver, NotConnected, Reach};
use crate::client::{AuthMethod, Client};
use crate::redact::{redact, redact_header};

/// Bodies longer than this are cut in the evidence (the raw bytes stay for checks).
const EVIDENCE_BODY_LIMIT: usize = 2048;

/// The most of a response body the suite reads: 1 MiB. Every answer the RFCs define
/// (metadata, device authorization, tokens, errors, introspection, a verification
/// page) is a few kilobytes; past this the suite stops reading and records the
/// response as too large (see [`Exchange::body_over_limit`]).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Response headers worth keeping as evidence.
const KEPT_HEADERS: [&str; 9] = [
    "content-type",
    "cache-control",
    "pragma",
    "www-authenticate",
    "allow",
    "retry-after",
    "location",
    "x-frame-options",
    "content-security-policy",
];

#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub url: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResponseRecord {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
}

/// One request and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    pub label: String,
    pub request: RequestRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseRecord>,
    /// Transport failure (timeout, refused, reset), or a body over [`MAX_BODY_BYTES`]
    /// (then `response` holds the status, the headers and the start of the body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_ms: u64,
    /// The body as received (at most [`MAX_BODY_BYTES`]), unredacted: for checks only.
    #[serde(skip)]
    pub raw_body: Bytes,
    #[serde(skip)]
    all_headers: Vec<(String, String)>,
    #[serde(skip)]
    over_limit: bool,
    /// The suite's address rule kept the request from being sent ([`crate::http::reach`]):
    /// `error` says why, and nothing was asked of any server.
    #[serde(skip)]
    not_connected: bool,
    /// `raw_body` parsed, once: cases ask for it again and again ([`Exchange::json`],
    /// [`Exchange::error_code`], each check of a case), and a parse of a body near
    /// [`MAX_BODY_BYTES`] costs milliseconds each time.
    #[serde(skip)]
    parsed: OnceLock<Json>,
    /// The answers a retrying client ([`Retry`]) waited out before this one (429 or
    /// 503), oldest first: evidence, recorded before it ([`crate::case::Check::evidence`]).
    #[serde(skip)]
    pub earlier: Vec<Exchange>,
    /// A retrying client gave up on this answer: still a 429 or 503 after its retries,
    /// or with a wait that did not fit ([`Exchange::still_rate_limited`]).
    #[serde(skip)]
    gave_up: bool,
}

/// [`json::parse`] of a response body: the one place this module parses one, counted
/// in tests ([`tests::PARSES`]) so that "parsed once" is checked by count, not by time.
fn parse_body(body: &[u8]) -> Json {
    #[cfg(test)]
    tests::PARSES.with(|n| n.set(n.get() + 1));
    json::parse(body)
}

impl Exchange {
    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.status)
    }

    /// A response header (first value), case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every field line of header `name`, in order (a field sent on two lines is one
    /// list, RFC 9110 §5.3).
    pub fn header_lines<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.all_headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Header `name` as one list: its field lines joined with ", ", in order (RFC 9110
    /// §5.3: a recipient may combine them so, for a list-based field such as
    /// `Cache-Control`, `Pragma` or `WWW-Authenticate`), or `None` if it is absent. A
    /// server, or a proxy in front of it, may send `Cache-Control: private` and
    /// `Cache-Control: no-store` on two lines: that is `no-store`.
    pub fn header_list(&self, name: &str) -> Option<String> {
        let lines: Vec<&str> = self.header_lines(name).collect();
        (!lines.is_empty()).then(|| lines.join(", "))
    }

    /// The body parsed strictly (duplicate members are a problem, not silently merged).
    /// A body over [`MAX_BODY_BYTES`] is not JSON the suite accepts, whatever it starts
    /// with.
    pub fn json(&self) -> Json {
        self.parsed().clone()
    }

    /// [`Exchange::json`] without the copy: parsed at the first call, kept after.
    pub fn parsed(&self) -> &Json {
        self.parsed.get_or_init(|| {
            if self.over_limit {
                return Json {
                    value: None,
                    problem: Some(over_limit_message()),
                };
            }
            parse_body(&self.raw_body)
        })
    }

    /// Lets go of the body and its parse, keeping the evidence record: for exchanges
    /// kept by the hundred (the samples), whose body was judged already.
    pub fn drop_body(&mut self) {
        self.raw_body = Bytes::new();
        self.parsed = OnceLock::new();
    }

    /// Why the request was not sent, when the suite's address rule kept it back
    /// ([`crate::http::reach`]): not a finding about the server, and the case that needed
    /// it cannot judge it ([`crate::case::Check::evidence`]).
    pub fn not_connected(&self) -> Option<&str> {
        self.error.as_deref().filter(|_| self.not_connected)
    }

    /// Whether `e` is a refusal that says nothing of the request: 429 Too Many Requests
    /// (RFC 6585 §4) or 503 Service Unavailable (RFC 9110 §15.6.4), a rate limit or a
    /// front in the server's stead. Checklist PL-10: a 429 is not an RFC 8628 signal.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self.status(), Some(429) | Some(503))
    }

    /// Why this answer, from a retrying client ([`Retry`]), says nothing of the rule a
    /// case judges: still a 429 or 503 after the retries (or with a Retry-After that
    /// did not fit). `None` for every other answer, and for a raw client's.
    pub fn still_rate_limited(&self) -> Option<String> {
        if !self.gave_up {
            return None;
        }
        let after = self
            .header("retry-after")
            .map_or(String::new(), |v| format!(", Retry-After: {v}"));
        Some(format!(
            "{} was answered HTTP {}{after} after {} tries: a rate limit or an unavailable server (RFC 6585 §4, RFC 9110 §15.6.4) says nothing of the rule (checklist PL-10: a 429 is not an RFC 8628 signal)",
            self.label,
            self.status().unwrap_or(0),
            self.earlier.len() + 1
        ))
    }

    /// Whether the server sent a body over [`MAX_BODY_BYTES`] (the suite stopped
    /// reading there; `raw_body` holds the first bytes).
    pub fn body_over_limit(&self) -> bool {
        self.over_limit
    }

    /// The `error` member, if the body is a JSON object with one.
    pub fn error_code(&self) -> Option<String> {
        let value = self.parsed().value.as_ref()?;
        value.get("error")?.as_str().map(str::to_owned)
    }

    /// "HTTP 400 {"error":"..."}" or the transport error: for summaries.
    pub fn brief(&self) -> String {
        match (&self.response, &self.error) {
            (Some(r), _) => {
                let mut body: String = r.body.chars().take(160).collect();
                body = body.split_whitespace().collect::<Vec<_>>().join(" ");
                // No stray space before what follows a brief when the body is empty.
                if !body.is_empty() {
                    body.insert(0, ' ');
                }
                if self.over_limit {
                    format!(
                        "HTTP {}, but {}; it starts:{body}",
                        r.status,
                        over_limit_message()
                    )
                } else if let Some(to) = self
                    .header("location")
                    .filter(|_| (300..400).contains(&r.status))
                {
                    // Where a redirect points is its content (redacted: a Location
                    // may carry a code in its query).
                    let to: String = redact_header("location", to).chars().take(160).collect();
                    format!("HTTP {} to {to:?}{body}", r.status)
                } else {
                    format!("HTTP {}{body}", r.status)
                }
            }
            (None, Some(e)) => format!("no response: {e}"),
            (None, None) => "no response".to_owned(),
        }
    }

    /// Whether the media type is `application/json` (parameters allowed).
    pub fn is_json_media_type(&self) -> bool {
        self.header("content-type").is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        })
    }
}

/// Percent-encodes for `application/x-www-form-urlencoded` (RFC 6749 Appendix B).
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Encodes parameters in order; repeats are kept (the suite sends them on purpose).
pub fn form(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The suite's HTTP client.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    reach: Reach,
    /// Whether and how a 429 or 503 is waited out and the request sent again; `None`
    /// sends each request once, as the cases that measure rate limits need.
    retry: Option<Retry>,
}

/// How a retrying [`Http`] waits out a rate limit (RFC 6585 §4: 429; RFC 9110 §15.6.4:
/// 503), each with its `Retry-After` (RFC 9110 §10.2.3). RFC 8628 §5.1 recommends rate
/// limiting, and checklist PL-10 says a 429 is not an RFC 8628 signal: a case whose
/// request meets one learns nothing of its rule from it, so the request is sent again,
/// [`Retry::retries`] times at most and within [`Retry::budget`]. An answer still
/// refused after that is marked ([`Exchange::still_rate_limited`]), and the case that
/// needed it is inconclusive, never failed on it.
#[derive(Debug, Clone)]
pub struct Retry {
    /// The most times a request is sent again.
    pub retries: u32,
    /// The shortest wait before sending again: a compliant client's wait between polls
    /// (RFC 8628 §3.5), so that a poll sent again is never early, whatever the
    /// Retry-After.
    pub min_wait: Duration,
    /// The most one request may wait in all (`--max-wait`).
    pub budget: Duration,
    /// Where the waits are shown ("every wait is shown").
    pub progress: Option<crate::progress::Progress>,
}

/// The most times a retrying client sends a request again after a 429 or 503.
pub const RETRIES: u32 = 3;

/// A request to send.
pub struct Request<'a> {
    pub label: &'a str,
    pub method: reqwest::Method,
    pub url: &'a str,
    pub content_type: Option<&'a str>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl Http {
    /// Every request goes on a connection of its own: none is kept for the next.
    /// A server MAY close an idle connection at any time (RFC 9112 §9.6), and one that
    /// does so just as the suite reuses it loses that request; the suite's requests are
    /// POSTs, which a client must not resend blindly (RFC 9112 §9.3.1), and waits of
    /// `interval + margin` (5.5 s at the default) are longer than common keep-alive
    /// timeouts (5 s). A lost request would be reported against the server as the
    /// rule the case checks (DA-03, TS-01, ...), so the suite never risks one: a new
    /// loopback or LAN connection per request costs little next to the waits.
    ///
    /// TLS is the workspace's clients' (`deviceflow_device::tls`): Mozilla's roots and
    /// the system's (or SSL_CERT_FILE / SSL_CERT_DIR's), read once a process. reqwest's
    /// own native roots were read and parsed again for every client, a few hundred
    /// files and certificates on the runtime's threads each time, which starved a
    /// test's fake servers while two dozen suites started at once.
    ///
    /// `reach` is the address rule ([`crate::http::reach`]): with a rule, every name is
    /// resolved through `GuardedResolver` and every IP literal checked before the
    /// request, and nothing goes through a proxy (which would resolve names where
    /// the rule cannot see) unless `--allow-private-addresses` lifted the rule;
    /// [`Reach::anywhere`] for a URL only the person gave.
    pub fn new(timeout: Duration, reach: Reach) -> Http {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "deviceflow-conformance/",
                env!("CARGO_PKG_VERSION")
            ));
        // Roots that cannot be read are refused before a run against https:// (main);
        // a run against http:// needs none.
        if let Ok(tls) = deviceflow_device::tls::client_config() {
            builder = builder.use_preconfigured_tls((*tls).clone());
        }
        if reach.is_limited() {
            builder = builder.dns_resolver(Arc::new(GuardedResolver(reach.clone())));
            // With every address allowed (`--allow-private-addresses`), the proxy a
            // network may need is used again: there is nothing for it to hide.
            if !reach.allows_private() {
                builder = builder.no_proxy();
            }
        }
        Http {
            client: builder.build().unwrap_or_default(),
            reach,
            retry: None,
        }
    }

    /// This client, waiting out a 429 or 503 and sending again as `retry` says.
    pub fn retrying(&self, retry: Retry) -> Http {
        Http {
            retry: Some(retry),
            ..self.clone()
        }
    }

    /// This client sending each request once: every answer as it came, for the cases
    /// that judge rate limits and slow_down themselves (PL-*, DA-08, SC-07).
    pub fn raw(&self) -> Http {
        Http {
            retry: None,
            ..self.clone()
        }
    }

    /// This client, its retries (if any) waiting at least `wait`: for a poll, the
    /// pace of its code (RFC 8628 §3.5: `interval + 5·k`).
    pub fn waiting_at_least(&self, wait: Duration) -> Http {
        let mut http = self.clone();
        if let Some(r) = &mut http.retry {
            r.min_wait = r.min_wait.max(wait);
        }
        http
    }

    /// The address rule this client keeps, and its record of the hosts reached.
    pub fn reach(&self) -> &Reach {
        &self.reach
    }

    /// POSTs a form, authenticating as `client` by its method: `client_id` in the body
    /// for public clients (RFC 8628 §3.1), Basic (RFC 6749 §2.3.1: form-urlencoded,
    /// then base64) or `client_secret` in the body.
    pub async fn post_form(
        &self,
        label: &str,
        url: &str,
        client: Option<&Client>,
        params: &[(&str, &str)],
    ) -> Exchange {
        let (headers, body) = credentials(client, params);
        self.send(Request {
            label,
            method: reqwest::Method::POST,
            url,
            content_type: Some("application/x-www-form-urlencoded"),
            headers,
            body: Some(body),
        })
        .await
    }

    pub async fn get(&self, label: &str, url: &str) -> Exchange {
        self.send(Request {
            label,
            method: reqwest::Method::GET,
            url,
            content_type: None,
            headers: Vec::new(),
            body: None,
        })
        .await
    }

    /// Sends `req`; a retrying client ([`Http::retrying`]) sends it again after a 429
    /// or 503 ([`Retry`]), the answers it waited out kept in [`Exchange::earlier`].
    pub async fn send(&self, req: Request<'_>) -> Exchange {
        let Some(retry) = &self.retry else {
            return self.send_once(&req).await;
        };
        let mut earlier = Vec::new();
        let mut waited = Duration::ZERO;
        loop {
            let mut e = self.send_once(&req).await;
            if !e.is_rate_limited() {
                e.earlier = earlier;
                return e;
            }
            // RFC 9110 §10.2.3: the Retry-After asked for; without one 1 s, 2 s, 4 s.
            let tries = earlier.len() as u32;
            let wait = retry_after(&e)
                .unwrap_or(Duration::from_secs(1 << tries.min(6)))
                .max(retry.min_wait);
            let fits = waited.checked_add(wait).is_some_and(|w| w <= retry.budget);
            if tries >= retry.retries || !fits {
                e.gave_up = true;
                e.earlier = earlier;
                return e;
            }
            if let Some(p) = &retry.progress {
                p.waiting(
                    req.label,
                    wait,
                    &format!(
                        "HTTP {}: a rate limit, sending again after its Retry-After",
                        e.status().unwrap_or(0)
                    ),
                );
            }
            tokio::time::sleep(wait).await;
            waited += wait;
            earlier.push(e);
        }
    }

    /// Sends `req` once, whatever the answer.
    async fn send_once(&self, req: &Request<'_>) -> Exchange {
        let mut builder = self.client.request(req.method.clone(), req.url);
        if let Some(ct) = req.content_type {
            builder = builder.header("content-type", ct);
        }
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let record = request_record(req);
        // Whether a client's credentials go with it (for the record of other hosts).
        let credentials = req
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            || req.body.as_deref().is_some_and(|b| {
                b.split('&')
                    .any(|p| p.starts_with("client_secret=") || p.starts_with("client_assertion="))
            });
        // An IP literal never reaches the resolver: checked here, before any connection.
        let literal_refused = reqwest::Url::parse(req.url)
            .ok()
            .and_then(|u| self.reach.refuses_literal(&u));
        if let Some(why) = literal_refused {
            self.reach.record(req.url, req.label, false, Some(&why));
            return not_connected(req.label, record, why);
        }
        let start = Instant::now();
        let result = async {
            let mut resp = builder.send().await?;
            let status = resp.status().as_u16();
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            // Read up to the limit, never the whole of what a server may send.
            let mut body = Vec::new();
            let mut over_limit = false;
            while let Some(chunk) = resp.chunk().await? {
                let room = MAX_BODY_BYTES - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    over_limit = true;
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, headers, Bytes::from(body), over_limit))
        }
        .await;
        let elapsed_ms = start.elapsed().as_millis() as u64;
        if let Err(e) = &result {
            if let Some(refused) = refused_by_resolver(e) {
                self.reach.record(req.url, req.label, false, Some(&refused));
                return not_connected(req.label, record, refused);
            }
        }
        self.reach.record(req.url, req.label, credentials, None);
        match result {
            Ok((status, all_headers, raw_body, over_limit)) => Exchange {
                label: req.label.to_owned(),
                request: record,
                response: Some(response_record(status, &all_headers, &raw_body, over_limit)),
                error: over_limit.then(over_limit_message),
                elapsed_ms,
                raw_body,
                all_headers,
                over_limit,
                not_connected: false,
                parsed: OnceLock::new(),
                earlier: Vec::new(),
                gave_up: false,
            },
            Err(e) => Exchange {
                label: req.label.to_owned(),
                request: record,
                response: None,
                error: Some(redact(&describe(&e))),
                elapsed_ms,
                raw_body: Bytes::new(),
                all_headers: Vec::new(),
                over_limit: false,
                not_connected: false,
                parsed: OnceLock::new(),
                earlier: Vec::new(),
                gave_up: false,
            },
        }
    }
}

/// How long `e`'s `Retry-After` asks a client to wait from now, if it says (RFC 9110
/// §10.2.3: `delay-seconds`, or an HTTP-date in any of its three forms).
pub fn retry_after(e: &Exchange) -> Option<Duration> {
    retry_after_value(e.header("retry-after")?)
}

/// [`retry_after`] of the header's value `v`.
fn retry_after_value(v: &str) -> Option<Duration> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// The exchange of a request the address rule kept from being sent.
fn not_connected(label: &str, request: RequestRecord, why: String) -> Exchange {
    Exchange {
        label: label.to_owned(),
        request,
        response: None,
        error: Some(why),
        elapsed_ms: 0,
        raw_body: Bytes::new(),
        all_headers: Vec::new(),
        over_limit: false,
        not_connected: true,
        parsed: OnceLock::new(),
        earlier: Vec::new(),
        gave_up: false,
    }
}

/// The rule's reason, when the resolver hook refused every address of the name.
fn refused_by_resolver(e: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(refused) = c.downcast_ref::<NotConnected>() {
            return Some(refused.0.clone());
        }
        cause = c.source();
    }
    None
}

/// What a body over [`MAX_BODY_BYTES`] is called in the evidence and the findings.
fn over_limit_message() -> String {
    format!(
        "the body is larger than {} bytes (1 MiB), the most the suite reads: no OAuth response is that large",
        MAX_BODY_BYTES
    )
}

/// The request as evidence shows it: credentials and codes redacted, the content type
/// first among the headers.
fn request_record(req: &Request<'_>) -> RequestRecord {
    let mut record = RequestRecord {
        method: req.method.to_string(),
        url: redact(req.url),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), redact_header(k, v)))
            .collect(),
        body: req.body.as_deref().map(redact),
    };
    if let Some(ct) = req.content_type {
        record
            .headers
            .insert(0, ("content-type".to_owned(), ct.to_owned()));
    }
    record
}

/// The response as evidence shows it: the headers worth keeping, the body as text,
/// redacted, then cut at [`EVIDENCE_BODY_LIMIT`] (redacted first, so that a cut never
/// leaves the start of a credential behind its name unrecognised).
fn response_record(
    status: u16,
    all_headers: &[(String, String)],
    raw_body: &[u8],
    over_limit: bool,
) -> ResponseRecord {
    let text = redact(&String::from_utf8_lossy(raw_body));
    let body_truncated = over_limit || text.chars().count() > EVIDENCE_BODY_LIMIT;
    let body = text.chars().take(EVIDENCE_BODY_LIMIT).collect();
    ResponseRecord {
        status,
        headers: all_headers
            .iter()
            .filter(|(k, _)| KEPT_HEADERS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), redact_header(k, v)))
            .collect(),
        body,
        body_truncated,
    }
}

/// A client's credentials as request headers and a form body with `params`.
pub fn credentials(
    client: Option<&Client>,
    params: &[(&str, &str)],
) -> (Vec<(String, String)>, String) {
    let mut all: Vec<(&str, &str)> = Vec::new();
    let mut headers = Vec::new();
    if let Some(c) = client {
        match (c.method, c.secret.as_deref()) {
            (AuthMethod::Basic, Some(secret)) => {
                headers.push(("authorization".to_owned(), basic(&c.id, secret)))
            }
            (AuthMethod::Post, Some(secret)) => {
                all.push(("client_id", &c.id));
                all.push(("client_secret", secret));
            }
            _ => all.push(("client_id", &c.id)),
        }
    }
    all.extend_from_slice(params);
    (headers, form(&all))
}

pub fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", form_encode(id), form_encode(secret)))
    )
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the body failed"
    } else {
        "request failed"
    };
    // The innermost cause says it in words ("Connection refused (os error 111)");
    // the layers above it repeat the URL, which the evidence already holds.
    let mut innermost: &dyn std::error::Error = e;
    while let Some(s) = innermost.source() {
        innermost = s;
    }
    let said = innermost.to_string();
    format!(
        "{kind}: {said}{}",
        deviceflow_device::tls::hint(&said, deviceflow_device::tls::Peer::Http)
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 200 answer with `body`, as [`Http::send`] records one.
    pub(crate) fn answered(body: Vec<u8>) -> Exchange {
        Exchange {
            label: "test".into(),
            request: RequestRecord {
                method: "POST".into(),
                url: "http://127.0.0.1:1/token".into(),
                headers: Vec::new(),
                body: None,
            },
            response: Some(response_record(200, &[], &body, false)),
            error: None,
            elapsed_ms: 0,
            raw_body: Bytes::from(body),
            all_headers: Vec::new(),
            over_limit: false,
            not_connected: false,
            parsed: OnceLock::new(),
            earlier: Vec::new(),
            gave_up: false,
        }
    }

    thread_local! {
        /// Response bodies parsed on this thread ([`parse_body`]): each test runs on a
        /// thread of its own, so no other test's parses are counted.
        pub(crate) static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn a_body_is_parsed_once_however_often_the_checks_read_it() {
        // Each check of a case reads `json()` or `error_code()`; parsed every time, 40
        // reads took 40 parses (seconds, for a body of 80,000 members near the 1 MiB
        // read). Counted, not timed: a slow or busy machine cannot fail it.
        let e = answered(crate::http::json::tests::distinct_members(1_000));
        let before = PARSES.with(std::cell::Cell::get);
        let first: *const Json = e.parsed();
        for _ in 0..20 {
            assert_eq!(e.error_code(), None);
            assert!(e.json().object().is_some());
            // The very parse kept at the first read, not a new one.
            assert!(std::ptr::eq(e.parsed(), first));
        }
        assert_eq!(PARSES.with(std::cell::Cell::get) - before, 1, "parses");
        let mut kept = e.clone();
        kept.drop_body();
        assert!(kept.raw_body.is_empty() && kept.json().value.is_none());
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_as_an_http_date_in_any_form() {
        assert_eq!(retry_after_value(" 120 "), Some(Duration::from_secs(120)));
        // RFC 9110 §5.6.7's three forms of one past date: no wait.
        for past in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(retry_after_value(past), Some(Duration::ZERO), "{past}");
        }
        let later =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(100));
        let wait = retry_after_value(&later).unwrap();
        assert!((98..=100).contains(&wait.as_secs()), "{later}: {wait:?}");
        for bad in ["", "soon", "-1", "Sun, 06 Foo 1994 08:49:37 GMT"] {
            assert_eq!(retry_after_value(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_brief_of_an_empty_body_ends_with_no_stray_space() {
        // `got HTTP 307 to "…/token2" ; the body …` had a space before the semicolon.
        assert_eq!(answered(Vec::new()).brief(), "HTTP 200");
        assert_eq!(answered(b" {} ".to_vec()).brief(), "HTTP 200 {}");
    }

    #[test]
    fn basic_credentials_are_form_encoded_first_rfc_6749_2_3_1() {
        assert_eq!(
            basic("a:b", "c d"),
            format!("Basic {}", STANDARD.encode("a%3Ab:c+d"))
        );
    }

    #[test]
    fn form_encoding_follows_rfc_6749_appendix_b() {
        assert_eq!(
            form_encode("urn:ietf:params:oauth:grant-type:device_code"),
            "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
        );
        assert_eq!(form_encode("a b+c"), "a+b%2Bc");
        assert_eq!(form(&[("a", "1"), ("a", "2")]), "a=1&a=2");
    }
}
