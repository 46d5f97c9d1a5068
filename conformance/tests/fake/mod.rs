//! A small device-flow server written here from the RFCs (not our server's code), with
//! one flag per rule the suite checks: [`Flaw`]. Unflawed it follows every rule; each
//! flaw breaks exactly one, so the suite can be shown to catch each (tests/
//! broken_servers.rs) and to say a root cause once (tests/output.rs).
//!
//! Clients: `client-a` and `client-b` (public), `client-c` / `c-secret` (confidential),
//! `client-x` (public, without the device grant), `introspector` / `i-secret`.
//! Scopes: `openid`, `profile`. The person is played by `POST /admin`.
//!
//! Here: the clients, the store, the request and reply helpers, the small endpoints
//! (metadata, introspection, the verification page, admin) and the listener. The
//! flaws are listed in `flaw.rs`; the two endpoints most rules are about have a file
//! each, `device_authorization.rs` and `token.rs`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

mod device_authorization;
mod flaw;
mod token;

use device_authorization::device_authorization;
pub use flaw::Flaw;
use token::token;

pub const INTERVAL: u64 = 1;
pub const EXPIRES_IN: u64 = 20;
/// The interval of [`Flaw::WholeNumbersWithPoint`]: longer than the 5 s default.
pub const POINT_INTERVAL: u64 = 6;
/// The interval of [`Flaw::LongIntervalPaceFirst`].
pub const LONG_INTERVAL: u64 = 12;
pub const ADMIN: &str = "fake-admin-token";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §6.1's example alphabet: base 20, no vowels, nothing confusable.
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const CONFUSABLE: &[u8] = b"0O1IL5S2Z8B";
/// Polls this much early still count as on time (checklist A.0: a tolerance).
const TOLERANCE: Duration = Duration::from_millis(300);

#[derive(Clone, Copy, PartialEq, Debug)]
enum State {
    Pending,
    Approved,
    Denied,
    Redeemed,
}

struct Code {
    client: String,
    user_code: String,
    scope: String,
    issued: Instant,
    state: State,
    interval: Duration,
    last_poll: Option<Instant>,
    told_denied: bool,
    told_expired: bool,
    /// Tokens issued from it (revoked on replay, RFC 6749 §4.1.2 by analogy).
    tokens: Vec<String>,
}

struct Refresh {
    client: String,
    scope: String,
    family: u64,
    used: bool,
}

struct ClientDef {
    id: &'static str,
    secret: Option<&'static str>,
    device_grant: bool,
}

const CLIENTS: &[ClientDef] = &[
    ClientDef {
        id: "client-a",
        secret: None,
        device_grant: true,
    },
    ClientDef {
        id: "client-b",
        secret: None,
        device_grant: true,
    },
    ClientDef {
        id: "client-c",
        secret: Some("c-secret"),
        device_grant: true,
    },
    ClientDef {
        id: "client-x",
        secret: None,
        device_grant: false,
    },
    ClientDef {
        id: "introspector",
        secret: Some("i-secret"),
        device_grant: false,
    },
];
const SCOPES: &[&str] = &["openid", "profile"];

#[derive(Default)]
struct Store {
    codes: HashMap<String, Code>,
    refresh: HashMap<String, Refresh>,
    /// access token -> (active, scope, client, refresh family)
    access: HashMap<String, (bool, String, String, u64)>,
    revoked_families: Vec<u64>,
    next: u64,
    rng: u64,
    last_user_code: String,
    /// [`Flaw::EmptyScopeRateLimitedOnce`]: the one 429 was sent.
    rate_limited: bool,
    /// [`Flaw::RateLimitedEveryOther`]: the requests seen by the front, per endpoint.
    front_counts: HashMap<String, u64>,
}

impl Store {
    fn random(&mut self) -> u64 {
        // xorshift64*: unpredictable enough for a test server, no dependency.
        if self.rng == 0 {
            self.rng = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1;
        }
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn chars(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.random() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

type Reply = Response<Full<Bytes>>;

struct Fake {
    flaw: Option<Flaw>,
    base: String,
    store: Mutex<Store>,
}

impl Fake {
    fn has(&self, f: Flaw) -> bool {
        self.flaw == Some(f)
    }

    fn json(&self, status: u16, body: String, no_store: bool) -> Reply {
        let mut r = Response::builder()
            .status(status)
            .header("content-type", "application/json");
        if no_store && self.has(Flaw::ListFieldsInTwoLines) {
            // RFC 9110 §5.3: two field lines of a list are one list, in order.
            r = r
                .header("cache-control", "private")
                .header("cache-control", "no-store")
                .header("pragma", "x-fake")
                .header("pragma", "no-cache");
        } else if no_store {
            r = r
                .header("cache-control", "no-store")
                .header("pragma", "no-cache");
        }
        r.body(Full::new(Bytes::from(body))).unwrap()
    }

    /// RFC 6749 §5.2: 400 (401 for invalid_client, with its challenge, RFC 9110
    /// §15.5.2), a JSON object with `error`.
    fn error(&self, code: &str, at_token: bool, basic: bool) -> Reply {
        if (at_token && self.has(Flaw::TokenErrorsNotJson))
            || (!at_token && self.has(Flaw::DaErrorsNotJson))
        {
            return Response::builder()
                .status(400)
                .header("content-type", "text/plain")
                .body(Full::new(Bytes::from(format!("error: {code}"))))
                .unwrap();
        }
        let body = format!(r#"{{"error":"{code}"}}"#);
        let no_store = !self.has(Flaw::NoStoreMissingOnToken) || !at_token;
        if code == "invalid_client" && !self.has(Flaw::NoWwwAuthenticate) {
            // RFC 6749 §5.2: 401 with the challenge when the client tried Basic; a
            // client that did not may be told the same (RFC 9110 §15.5.2: every 401
            // carries a challenge), unless the flaw leaves it out.
            let status = if self.has(Flaw::ErrorsAs200) {
                200
            } else {
                401
            };
            let mut r = self.json(status, body, no_store);
            if basic || !self.has(Flaw::ChallengelessUnauthorized) {
                self.challenge(&mut r, at_token);
            }
            return r;
        }
        let status = if self.has(Flaw::ErrorsAs200) {
            200
        } else {
            400
        };
        self.json(status, body, no_store)
    }

    /// `WWW-Authenticate: Basic`, after a `Bearer` challenge for
    /// [`Flaw::ListFieldsInTwoLines`]: in the same field line at the device
    /// authorization endpoint, in a line of its own at the token endpoint.
    fn challenge(&self, r: &mut Reply, at_token: bool) {
        let h = r.headers_mut();
        let basic = "Basic realm=\"fake\", charset=\"UTF-8\"";
        if !self.has(Flaw::ListFieldsInTwoLines) {
            h.insert("www-authenticate", basic.parse().unwrap());
        } else if at_token {
            h.append("www-authenticate", "Bearer realm=\"fake\"".parse().unwrap());
            h.append("www-authenticate", basic.parse().unwrap());
        } else {
            let both = format!("Bearer realm=\"fake\", error=\"invalid_token\", {basic}");
            h.insert("www-authenticate", both.parse().unwrap());
        }
    }

    fn page(&self, status: u16, html: String) -> Reply {
        let mut r = Response::builder()
            .status(status)
            .header("content-type", "text/html; charset=utf-8");
        if self.has(Flaw::FramableByAnyone) {
            // CSP 3 §6.4.2: with frame-ancestors enforced, X-Frame-Options is ignored.
            r = r.header("x-frame-options", "DENY").header(
                "content-security-policy",
                "default-src 'self'; frame-ancestors *",
            );
        } else if self.has(Flaw::CspInTwoFields) {
            r = r
                .header("content-security-policy", "default-src 'self'")
                .header("content-security-policy", "frame-ancestors 'none'");
        } else if !self.has(Flaw::Framable) {
            r = r
                .header("x-frame-options", "DENY")
                .header("content-security-policy", "frame-ancestors 'none'");
        }
        r.body(Full::new(Bytes::from(html))).unwrap()
    }
}

/// The request, read once.
struct Req {
    method: Method,
    path: String,
    query: String,
    content_type: Option<String>,
    authorization: Option<String>,
    cookie: Option<String>,
    form: Vec<(String, String)>,
    empty: bool,
}

impl Req {
    /// Parameter `k`, unless it is missing or empty.
    fn get(&self, k: &str) -> Option<&str> {
        self.raw(k).filter(|v| !v.is_empty())
    }

    /// Parameter `k` as sent (the first, if repeated), empty or not.
    fn raw(&self, k: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    fn repeated(&self) -> bool {
        self.form
            .iter()
            .enumerate()
            .any(|(i, (k, _))| self.form[..i].iter().any(|(n, _)| n == k))
    }

    fn unknown(&self, known: &[&str]) -> bool {
        self.form.iter().any(|(k, _)| !known.contains(&k.as_str()))
    }

    fn basic(&self) -> Option<(String, String)> {
        let b64 = self.authorization.as_deref()?.strip_prefix("Basic ")?;
        let raw = String::from_utf8(STANDARD.decode(b64).ok()?).ok()?;
        let (id, secret) = raw.split_once(':')?;
        let dec = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Some((dec(id), dec(secret)))
    }
}

/// RFC 6749 §2.3: who the client is, or the error code. `Ok(None)`: no client at all.
fn authenticate(
    fake: &Fake,
    req: &Req,
    at_token: bool,
) -> Result<Option<&'static ClientDef>, &'static str> {
    let basic = if fake.has(Flaw::BasicUnsupported) {
        None
    } else {
        req.basic()
    };
    let post_secret = req.get("client_secret");
    if basic.is_some() && post_secret.is_some() && !fake.has(Flaw::TwoAuthMethodsAccepted) {
        return Err("invalid_request");
    }
    let lookup = |id: &str| CLIENTS.iter().find(|c| c.id == id);
    if let Some((id, secret)) = basic {
        return match lookup(&id) {
            Some(c) if c.secret == Some(secret.as_str()) => Ok(Some(c)),
            _ => Err("invalid_client"),
        };
    }
    let Some(id) = req.get("client_id") else {
        return Ok(None);
    };
    let Some(c) = lookup(id) else {
        return Err(
            if fake.has(Flaw::UnknownClientInvalidRequest) && !at_token {
                "invalid_request"
            } else {
                "invalid_client"
            },
        );
    };
    if fake.has(Flaw::PublicClientsRefused) && c.secret.is_none() {
        return Err("invalid_client");
    }
    match (c.secret, post_secret) {
        (None, _) => Ok(Some(c)),
        (Some(s), Some(p)) if s == p => Ok(Some(c)),
        (Some(_), Some(_)) => Err("invalid_client"),
        (Some(_), None) => {
            let lenient = if at_token {
                fake.has(Flaw::ConfidentialPollWithoutSecret)
            } else {
                fake.has(Flaw::ConfidentialWithoutSecret)
            };
            if lenient {
                Ok(Some(c))
            } else {
                Err("invalid_client")
            }
        }
    }
}

/// RFC 8628 §6.1: case-insensitive, characters outside the alphabet ignored.
fn normalize(typed: &str) -> String {
    typed
        .chars()
        .map(|c| c.to_ascii_uppercase())
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

fn form_ok(fake: &Fake, req: &Req, charset_flaw: Flaw) -> bool {
    let Some(ct) = req.content_type.as_deref() else {
        return false;
    };
    if fake.has(charset_flaw) {
        return ct == "application/x-www-form-urlencoded";
    }
    ct.split(';').next().is_some_and(|t| {
        t.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// One endpoint's form rules, by the flaws that break them: the parameters it knows,
/// and whether it is the token endpoint (its errors carry `Cache-Control: no-store`).
struct FormRules {
    get_served: Flaw,
    charset_refused: Flaw,
    repeats_accepted: Flaw,
    unknown_rejected: Flaw,
    known: &'static [&'static str],
    at_token: bool,
}

/// RFC 6749 §3.1, §3.2: a POSTed form, each parameter once (and, for a flaw, none
/// unknown); the refusal otherwise (boxed: a response is large beside `()`).
fn check_form(fake: &Fake, req: &Req, rules: &FormRules) -> Result<(), Box<Reply>> {
    let err = |code| {
        Err(Box::new(fake.error(
            code,
            rules.at_token,
            req.authorization.is_some(),
        )))
    };
    if req.method != Method::POST && !fake.has(rules.get_served) {
        return Err(Box::new(fake.json(
            405,
            r#"{"error":"invalid_request"}"#.into(),
            rules.at_token,
        )));
    }
    if req.method == Method::POST && !form_ok(fake, req, rules.charset_refused) {
        return err("invalid_request");
    }
    if req.repeated() && !fake.has(rules.repeats_accepted) {
        return err("invalid_request");
    }
    if fake.has(rules.unknown_rejected) && req.unknown(rules.known) {
        return err("invalid_request");
    }
    Ok(())
}

fn metadata(fake: &Fake) -> Reply {
    if fake.has(Flaw::NoMetadata) {
        return fake.json(404, r#"{"error":"not_found"}"#.into(), false);
    }
    let base = &fake.base;
    let mut m = serde_json::json!({
        "issuer": if fake.has(Flaw::IssuerMismatch) { format!("{base}/other") } else { base.clone() },
        "device_authorization_endpoint": format!("{base}/da"),
        "token_endpoint": format!("{base}/token"),
        "introspection_endpoint": format!("{base}/introspect"),
        "grant_types_supported": [GRANT, "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
    });
    let o = m.as_object_mut().unwrap();
    if fake.has(Flaw::RelativeDaInMetadata) {
        o.insert("device_authorization_endpoint".into(), "/da".into());
    }
    if fake.has(Flaw::RelativeTokenInMetadata) {
        o.insert("token_endpoint".into(), "/token".into());
    }
    if fake.has(Flaw::NoDaInMetadata) {
        o.remove("device_authorization_endpoint");
    }
    if fake.has(Flaw::NoTokenInMetadata) {
        o.remove("token_endpoint");
    }
    if fake.has(Flaw::NoGrantInMetadata) {
        o.insert(
            "grant_types_supported".into(),
            serde_json::json!(["refresh_token"]),
        );
    }
    if fake.has(Flaw::AdvertisesWrongToken) {
        o.insert("token_endpoint".into(), format!("{base}/token-old").into());
    }
    fake.json(200, m.to_string(), false)
}

fn introspect(fake: &Fake, req: &Req) -> Reply {
    match authenticate(fake, req, true) {
        Ok(Some(c)) if c.id == "introspector" => {}
        _ => return fake.error("invalid_client", true, req.authorization.is_some()),
    }
    let g = fake.store.lock().unwrap();
    let body = match req.get("token").and_then(|t| g.access.get(t)) {
        _ if fake.has(Flaw::IntrospectionAlwaysInactive) => serde_json::json!({"active": false}),
        Some((true, scope, client, family)) if !g.revoked_families.contains(family) => {
            serde_json::json!({"active": true, "scope": scope, "client_id": client, "username": "alice"})
        }
        _ => serde_json::json!({"active": false}),
    };
    fake.json(200, body.to_string(), true)
}

fn verification_page(fake: &Fake, req: &Req) -> Reply {
    if fake.has(Flaw::VerificationPage404) {
        return fake.page(404, "<h1>Not Found</h1>".into());
    }
    // No flaw: a page that sets a cookie and sends the browser back to itself before
    // it shows anything, as some sign-in stacks do.
    if fake.has(Flaw::CookieFirst) && !req.cookie.as_deref().is_some_and(|c| c.contains("seen=1")) {
        let back = match req.query.as_str() {
            "" => req.path.clone(),
            q => format!("{}?{q}", req.path),
        };
        return Response::builder()
            .status(302)
            .header("location", back)
            .header("set-cookie", "seen=1; Path=/; HttpOnly")
            .header("x-frame-options", "DENY")
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    let typed = url::form_urlencoded::parse(req.query.as_bytes())
        .find(|(k, _)| k == "user_code")
        .map(|(_, v)| v.into_owned());
    let mut hidden = String::new();
    if let Some(typed) = typed {
        let mut g = fake.store.lock().unwrap();
        if let Some((dc, code)) = g
            .codes
            .iter_mut()
            .find(|(_, c)| normalize(&c.user_code) == normalize(&typed))
        {
            if fake.has(Flaw::CompleteUriApproves) && code.state == State::Pending {
                code.state = State::Approved;
            }
            if fake.has(Flaw::DeviceCodeOnPage) {
                hidden = format!(r#"<input type="hidden" name="dc" value="{dc}">"#);
            }
        }
    }
    fake.page(
        200,
        format!(r#"<form method="post" action="/device"><input name="user_code">{hidden}<button>Next</button></form>"#),
    )
}

/// What a rate limit in front of the server answers in its stead at `path`, for
/// [`Flaw::RateLimitedEveryOther`] (every other request to an endpoint) and
/// [`Flaw::TokenRateLimited`] (every token request): `429 Too Many Requests` with
/// `Retry-After: 1` (RFC 6585 §4), before the server sees the request.
fn rate_limit_front(fake: &Fake, path: &str) -> Option<Reply> {
    let refused = if fake.has(Flaw::TokenRateLimited) {
        path == "/token"
    } else if fake.has(Flaw::RateLimitedEveryOther) {
        let mut g = fake.store.lock().unwrap();
        let n = g.front_counts.entry(path.to_owned()).or_default();
        *n += 1;
        // The device authorization endpoint's first request (the suite's preflight)
        // goes through, so that the cases meet the 429; the token endpoint's does not.
        *n % 2 == u64::from(path == "/token")
    } else {
        false
    };
    refused.then(|| {
        Response::builder()
            .status(429)
            .header("content-type", "text/plain")
            .header("retry-after", "1")
            .body(Full::new(Bytes::from_static(b"Too Many Requests")))
            .unwrap()
    })
}

/// The person, played as deviceflow-server's admin endpoint plays it (the contract of
/// the suite's admin approver): 200 when decided; a refusal names its reason,
/// `unknown_user_code` (404), `expired_user_code` (410) or `already_decided` (409).
fn admin(fake: &Fake, req: &Req) -> Reply {
    if req.authorization.as_deref() != Some(&format!("Bearer {ADMIN}")) {
        return fake.json(401, r#"{"error":"invalid_token"}"#.into(), false);
    }
    let Some(typed) = req.get("user_code") else {
        return fake.json(400, r#"{"error":"invalid_request"}"#.into(), false);
    };
    let approve = req.get("action") == Some("approve");
    let mut g = fake.store.lock().unwrap();
    let found = g.codes.values_mut().find(|c| {
        if fake.has(Flaw::NoNormalization) {
            c.user_code == typed
        } else if fake.has(Flaw::DigitCodesNotUpperCased) {
            // Characters outside the code's set stripped, lower-case letters among them.
            let kept: String = typed
                .chars()
                .filter(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
                .collect();
            c.user_code == kept
        } else {
            normalize(&c.user_code) == normalize(typed)
        }
    });
    let Some(c) = found else {
        if fake.has(Flaw::UnknownCodeAccepted) {
            return fake.json(200, "{}".into(), false);
        }
        return fake.json(404, r#"{"error":"unknown_user_code"}"#.into(), false);
    };
    if c.issued.elapsed() >= Duration::from_secs(EXPIRES_IN)
        && !fake.has(Flaw::LateApprovalAccepted)
    {
        return fake.json(410, r#"{"error":"expired_user_code"}"#.into(), false);
    }
    if c.state != State::Pending && !fake.has(Flaw::SecondDecisionAccepted) {
        return fake.json(409, r#"{"error":"already_decided"}"#.into(), false);
    }
    c.state = if approve {
        State::Approved
    } else {
        State::Denied
    };
    fake.json(200, "{}".into(), false)
}

/// An admin endpoint that breaks: every decision (`/admin-broken`), or every denial
/// (`/admin-approve-only`), is answered with a 500 page; the rest as [`admin`]. It
/// passes the suite's approver check before the run (which rules out 401/403, 404/405
/// and no answer), as an approver that breaks mid-run does.
fn broken_admin(fake: &Fake, req: &Req, deny_only: bool) -> Reply {
    if !deny_only || req.get("action") == Some("deny") {
        return fake.page(500, "<h1>Server Error (500)</h1>".into());
    }
    admin(fake, req)
}

async fn handle(req: Request<hyper::body::Incoming>, fake: Arc<Fake>) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, authorization) = (header("content-type"), header("authorization"));
    let cookie = header("cookie");
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let source: &[u8] = if method == Method::GET {
        query.as_bytes()
    } else {
        &body
    };
    let form = url::form_urlencoded::parse(source).into_owned().collect();
    let r = Req {
        method,
        path,
        query: query.clone(),
        content_type,
        authorization,
        cookie,
        form,
        empty: body.is_empty(),
    };
    if fake.has(Flaw::NotOAuth) {
        return fake.page(404, "<html><body>Not Found</body></html>".into());
    }
    if matches!(r.path.as_str(), "/da" | "/token") {
        if let Some(refused) = rate_limit_front(&fake, &r.path) {
            return refused;
        }
    }
    match r.path.as_str() {
        "/.well-known/oauth-authorization-server" if fake.has(Flaw::MetadataHangs) => {
            std::future::pending().await
        }
        "/.well-known/oauth-authorization-server" if fake.has(Flaw::MetadataOnlyOpenid) => {
            fake.json(404, r#"{"error":"not_found"}"#.into(), false)
        }
        "/.well-known/oauth-authorization-server" => metadata(&fake),
        "/.well-known/openid-configuration" if fake.has(Flaw::MetadataOnlyOpenid) => {
            metadata(&fake)
        }
        "/da" if fake.has(Flaw::DaRedirects) => Response::builder()
            .status(308)
            .header("location", format!("{}/da/", fake.base))
            .body(Full::new(Bytes::new()))
            .unwrap(),
        "/da" => device_authorization(&fake, &r),
        "/token" => {
            if fake.has(Flaw::SlowTokenAnswers) {
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            token(&fake, &r).await
        }
        "/introspect" => introspect(&fake, &r),
        "/admin" => admin(&fake, &r),
        "/admin-broken" => broken_admin(&fake, &r, false),
        "/admin-approve-only" => broken_admin(&fake, &r, true),
        p if p.starts_with("/device") && fake.has(Flaw::SignInPageWithoutCsp) => {
            Response::builder()
                .status(302)
                .header("location", format!("/login?next={p}"))
                .body(Full::new(Bytes::new()))
                .unwrap()
        }
        "/login" if fake.has(Flaw::SignInPageWithoutCsp) => Response::builder()
            .status(200)
            .header("content-type", "text/html; charset=utf-8")
            .header("x-frame-options", "DENY")
            .body(Full::new(Bytes::from_static(
                b"<form method=\"post\"><input name=\"username\"><button>Sign in</button></form>",
            )))
            .unwrap(),
        p if p.starts_with("/device") => verification_page(&fake, &r),
        _ => fake.json(404, r#"{"error":"not_found"}"#.into(), false),
    }
}

/// Starts the fake with `flaw` (or none) on 127.0.0.1:0; returns its base URL. It
/// serves until the test's runtime ends.
pub async fn start(flaw: Option<Flaw>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let fake = Arc::new(Fake {
        flaw,
        base: base.clone(),
        store: Mutex::new(Store::default()),
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let fake = Arc::clone(&fake);
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let fake = Arc::clone(&fake);
                    async move { Ok::<_, Infallible>(handle(req, fake).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    base
}

/// A server that answers every request with HTTP 200 `application/json` and a chunked
/// body that never ends (`{"a":"aaaa…`), until the client hangs up: for the suite's
/// limit on what it reads. Returns its base URL.
pub async fn start_endless_body() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                // The request's head (and body, if small): enough to answer.
                let mut request = [0u8; 8192];
                let _ = stream.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n7\r\n{\"a\":\"a\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "a".repeat(64 * 1024));
                while stream.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    base
}

/// What [`start_hostile`] puts in its answers, as JSON string content: an OSC 52
/// clipboard write, an OSC 8 link, a move up and erase (to hide the line above), a
/// carriage return and a fake verdict, a C1 CSI, raw HTML, a table pipe, a closing
/// code fence and a heading on lines of their own.
pub const HOSTILE: &str = r"\u001b]52;c;cHduZWQ=\u0007\u001b]8;;https://evil.example/\u0007link\u001b]8;;\u0007\u001b[1A\u001b[2K\r  PASS TS-02 MUST all good\u009b2J|pipe|\n```\n<script>alert(1)</script>\n# heading\n";

/// A server written to attack whoever reads the suite's output, not to pass or fail
/// a rule: its answers carry [`HOSTILE`] (JSON-escaped in JSON, raw bytes in its HTML
/// page) and megabyte-sized words. Metadata as [`start`]'s; the device authorization
/// succeeds with a hostile `user_code` and `verification_uri_complete`; every token
/// request gets HTTP 400 `invalid_grant` with a hostile `error_description` of
/// 200,000 characters; anything else (the verification page) an HTML 404 whose body
/// is [`HOSTILE`] as raw bytes. Returns its base URL.
pub async fn start_hostile() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let b = base.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let base = b.clone();
            tokio::spawn(async move {
                // The request's head (and body, if small): enough to answer.
                let mut request = [0u8; 8192];
                let n = stream.read(&mut request).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&request[..n]);
                let path = head.split(' ').nth(1).unwrap_or("/");
                let (status, content_type, body) = match path {
                    "/.well-known/oauth-authorization-server" => (
                        "200 OK",
                        "application/json",
                        format!(
                            r#"{{"issuer":"{base}","device_authorization_endpoint":"{base}/da","token_endpoint":"{base}/token"}}"#
                        ),
                    ),
                    "/da" => (
                        "200 OK",
                        "application/json",
                        format!(
                            r#"{{"device_code":"dc-{n}-abcdefghijklmnopqrstuvwxyz","user_code":"WDJB{HOSTILE}","verification_uri":"{base}/device","verification_uri_complete":"{base}/device?x={HOSTILE}","expires_in":60,"interval":1}}"#
                        ),
                    ),
                    "/token" => (
                        "400 Bad Request",
                        "application/json",
                        format!(
                            r#"{{"error":"invalid_grant","error_description":"{HOSTILE}{}"}}"#,
                            "d".repeat(200_000)
                        ),
                    ),
                    _ => (
                        "404 Not Found",
                        "text/html",
                        serde_json::from_str::<String>(&format!("\"{HOSTILE}\"")).unwrap(),
                    ),
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    base
}

/// The correct fake (with `flaw`) behind a front that closes every kept-alive
/// connection as the client's second request on it arrives, unanswered: a server
/// whose idle timeout fires as the client starts its next request (RFC 9112 §9.6: "a
/// client might have started to send a new request at the same time that the server
/// has decided to close the "idle" connection"). It announces no `Connection: close`:
/// nothing says the connection will not be kept. The first request of each connection
/// is answered by the fake. Returns the front's base URL; the fake's own metadata and
/// pages name the fake's address, so give the endpoints by hand (`/da`, `/token`).
pub async fn start_closing_idle_connections(flaw: Option<Flaw>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let upstream = start(flaw).await;
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let upstream = upstream.clone();
            tokio::spawn(async move {
                // One request: its head, then as many body bytes as Content-Length says.
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match client.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
                let length: usize = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                while request.len() < head_end + length {
                    match client.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                // Forwarded with `connection: close`, so that the fake's answer ends
                // at the end of its connection.
                let line_end = head.find("\r\n").unwrap_or(0) + 2;
                let mut forwarded = request[..line_end].to_vec();
                forwarded.extend_from_slice(b"connection: close\r\n");
                forwarded.extend_from_slice(&request[line_end..]);
                let Ok(mut up) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let mut answer = Vec::new();
                if up.write_all(&forwarded).await.is_err()
                    || up.read_to_end(&mut answer).await.is_err()
                {
                    return;
                }
                // The answer without its `connection` field: the connection looks kept.
                let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
                    return;
                };
                let answer_head = String::from_utf8_lossy(&answer[..end]).into_owned();
                let kept: Vec<&str> = answer_head
                    .split("\r\n")
                    .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                    .collect();
                let mut out = kept.join("\r\n").into_bytes();
                out.extend_from_slice(&answer[end..]);
                if client.write_all(&out).await.is_err() {
                    return;
                }
                // The next request on this connection finds it closing.
                let _ = client.read(&mut buf).await;
            });
        }
    });
    base
}
