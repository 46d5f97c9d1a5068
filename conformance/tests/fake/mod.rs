//! A small device-flow server written here from the RFCs (not our server's code), with
//! one flag per rule the suite checks: [`Flaw`]. Unflawed it follows every rule; each
//! flaw breaks exactly one, so the suite can be shown to catch each (tests/
//! broken_servers.rs) and to say a root cause once (tests/output.rs).
//!
//! Clients: `client-a` and `client-b` (public), `client-c` / `c-secret` (confidential),
//! `client-x` (public, without the device grant), `introspector` / `i-secret`.
//! Scopes: `openid`, `profile`. The person is played by `POST /admin`.

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

pub const INTERVAL: u64 = 1;
pub const EXPIRES_IN: u64 = 20;
pub const ADMIN: &str = "fake-admin-token";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §6.1's example alphabet: base 20, no vowels, nothing confusable.
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const CONFUSABLE: &[u8] = b"0O1IL5S2Z8B";
/// Polls this much early still count as on time (checklist A.0: a tolerance).
const TOLERANCE: Duration = Duration::from_millis(300);

/// One rule broken per flaw (the checklist row it breaks in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    // A.1 device authorization request
    DaStatus201,                   // [DA-01] success is 201, not 200
    CharsetRefusedAtDa,            // [DA-02] Content-Type compared as a string
    EmptyPost500,                  // [DA-02] an empty POST without Content-Type is a 500 page
    ClientIdOptional,              // [DA-03] no client_id still gets codes
    UnknownClientInvalidRequest,   // [DA-04] unknown client is invalid_request
    ConfidentialWithoutSecret,     // [DA-05] a confidential client_id alone is accepted
    BasicUnsupported,              // [DA-06] the Authorization header is ignored
    NoWwwAuthenticate,             // [DA-07] failed Basic is 400 without WWW-Authenticate
    EmptyScopeInvalid,             // [DA-08] scope= is invalid_scope
    UnknownParamRejectedAtDa,      // [DA-09]
    RepeatsAcceptedAtDa,           // [DA-10]
    TwoAuthMethodsAccepted,        // [DA-11]
    UnauthorizedClientAllowedAtDa, // [DA-13]
    GetServedAtDa,                 // [DA-15] GET with the query hands out codes
    // A.2 device authorization response
    DaTextPlain,               // [DR-01]
    NoDeviceCode,              // [DR-02]
    NoUserCode,                // [DR-03]
    RelativeVerificationUri,   // [DR-04]
    ExpiresInMissing,          // [DR-05]
    IntervalZero,              // [DR-06]
    CompleteUriWrongCode,      // [DR-07]
    DuplicateUserCodes,        // [DR-08]
    DuplicateMember,           // [DR-09]
    NoStoreMissingOnDa,        // [DR-10]
    StringNumbers,             // [DR-11]
    DaErrorsNotJson,           // [DR-12]
    UserCodeInVerificationUri, // [DR-13]
    DeviceCodeInCompleteUri,   // [DR-14]
    // A.3 verification
    VerificationPage404,    // [UI-01]
    DeviceCodeOnPage,       // [UI-03]
    CompleteUriApproves,    // [UI-05]
    NoNormalization,        // [UI-07] typed codes must match exactly
    ConfusableAlphabet,     // [UI-08]
    SecondDecisionAccepted, // [UI-10]
    Framable,               // [UI-13]
    // A.4 token request
    PendingIs200,                     // [TR-01, TS-01]
    HangingTokenEndpoint,             // [TR-01] never answers
    HtmlServerError,                  // [TR-02] a missing device_code is a 500 page
    EmptyDeviceCodeInvalidGrant,      // [TR-03]
    UnknownCode404,                   // [TR-04]
    PollWithoutClientIdAccepted,      // [TR-05]
    ConfidentialPollWithoutSecret,    // [TR-06]
    CrossClient,                      // [TR-07]
    RepeatsAcceptedAtToken,           // [TR-08]
    UnknownParamRejectedAtToken,      // [TR-09]
    WrongGrantInvalidRequest,         // [TR-10]
    UnauthorizedClientAllowedAtToken, // [TR-11]
    GetServedAtToken,                 // [TR-12]
    CharsetRefusedAtToken,            // [TR-13]
    // A.5 token responses
    TokenErrorsNotJson,    // [TS-02]
    TokenTextPlain,        // [TS-03]
    TokenMissingTokenType, // [TS-03]
    NoStoreMissingOnToken, // [TS-04]
    ScopeWidened,          // [TS-05] the token grants more than requested
    UndefinedScopeGranted, // [TS-05] an undefined scope accepted, scope not named
    TokenTypeMac,          // [TS-06]
    DenyIsPending,         // [TS-07] a denial never reaches the device
    NoSingleUse,           // [TS-08]
    ReplayKeepsToken,      // [TS-09]
    RacyRedemption,        // [TS-10] check-then-set across an await
    DenialThenPending,     // [TS-11]
    // A.6 polling
    NeverSlowDown,        // [PL-01 declared]
    SlowDownCompliant,    // [PL-02] slow_down unless a full second beyond the interval
    OverPenalty,          // [PL-03] +10 s per slow_down
    Livelock,             // [PL-04] no tolerance, rejected polls move the window
    FirstPollSlowDown,    // [PL-05]
    SlowDownBeforeStatus, // [PL-06] pace checked before approval (Keycloak)
    FixedWindow,          // [PL-07 declared] no +5 s tracked
    ResetAfterCompliant,  // [PL-07 declared] the +5 s dropped after one compliant poll (Dex)
    SlowDownAs429,        // [PL-09]
    // A.7 expiry
    NoExpiry,               // [EX-01]
    ApprovedOutlivesExpiry, // [EX-02]
    LateApprovalAccepted,   // [EX-03]
    ExpiredThenPending,     // [EX-04]
    // A.8 metadata
    NoDaInMetadata,       // [MD-01]
    NoGrantInMetadata,    // [MD-02]
    IssuerMismatch,       // [MD-03]
    NoTokenInMetadata,    // [MD-04]
    AdvertisesWrongToken, // [MD-05]
    NoMetadata,           // [MD-07]
    // A.9 security
    ShortUserCode,        // [SC-01]
    ShortDeviceCode,      // [SC-02]
    PublicClientsRefused, // [SC-05]
    // A.10 refresh tokens
    NoRotation,         // [BCP-01]
    ReuseNotDetected,   // [BCP-01]
    FamilyNotRevoked,   // [BCP-01, SHOULD]
    RefreshBroken,      // [RT-01]
    RefreshCrossClient, // [RT-02]
    RefreshWidens,      // [RT-03]
    // Not a device-flow server at all (for the root-cause tests).
    NotOAuth,
}

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
        if no_store {
            r = r
                .header("cache-control", "no-store")
                .header("pragma", "no-cache");
        }
        r.body(Full::new(Bytes::from(body))).unwrap()
    }

    /// RFC 6749 §5.2: 400 (401 for invalid_client, with the challenge when the client
    /// tried Basic), a JSON object with `error`.
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
        if code == "invalid_client" && basic && !self.has(Flaw::NoWwwAuthenticate) {
            let mut r = self.json(401, body, true);
            r.headers_mut()
                .insert("www-authenticate", "Basic realm=\"fake\"".parse().unwrap());
            return r;
        }
        let status = if code == "invalid_client" && !self.has(Flaw::NoWwwAuthenticate) {
            401
        } else {
            400
        };
        self.json(
            status,
            body,
            !self.has(Flaw::NoStoreMissingOnToken) || !at_token,
        )
    }

    fn page(&self, status: u16, html: String) -> Reply {
        let mut r = Response::builder()
            .status(status)
            .header("content-type", "text/html; charset=utf-8");
        if !self.has(Flaw::Framable) {
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
    form: Vec<(String, String)>,
    empty: bool,
}

impl Req {
    fn get(&self, k: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
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

/// RFC 8628 §3.1-§3.2: checks the request, issues a pair of codes, answers with them.
fn device_authorization(fake: &Fake, req: &Req) -> Reply {
    match check_device_request(fake, req) {
        Ok((client, scope)) => {
            device_authorization_response(fake, issue_codes(fake, client, scope))
        }
        Err(refusal) => *refusal,
    }
}

/// RFC 8628 §3.1: the client and scope of an acceptable request, or the refusal (boxed:
/// a response is large beside the answer).
fn check_device_request(fake: &Fake, req: &Req) -> Result<(String, String), Box<Reply>> {
    let err = |code| {
        Err(Box::new(fake.error(
            code,
            false,
            req.authorization.is_some(),
        )))
    };
    if req.empty && req.content_type.is_none() && fake.has(Flaw::EmptyPost500) {
        return Err(Box::new(
            fake.page(500, "<h1>Server Error (500)</h1>".into()),
        ));
    }
    if req.method != Method::POST && !fake.has(Flaw::GetServedAtDa) {
        return Err(Box::new(fake.json(
            405,
            r#"{"error":"invalid_request"}"#.into(),
            false,
        )));
    }
    if req.method == Method::POST && !form_ok(fake, req, Flaw::CharsetRefusedAtDa) {
        return err("invalid_request");
    }
    if req.repeated() && !fake.has(Flaw::RepeatsAcceptedAtDa) {
        return err("invalid_request");
    }
    if fake.has(Flaw::UnknownParamRejectedAtDa)
        && req.unknown(&["client_id", "client_secret", "scope"])
    {
        return err("invalid_request");
    }
    let client = match authenticate(fake, req, false) {
        Ok(Some(c)) => c.id.to_owned(),
        Ok(None) if fake.has(Flaw::ClientIdOptional) => "client-a".to_owned(),
        Ok(None) => return err("invalid_request"),
        Err(code) => return err(code),
    };
    let def = CLIENTS.iter().find(|c| c.id == client).unwrap();
    if !def.device_grant && !fake.has(Flaw::UnauthorizedClientAllowedAtDa) {
        return err("unauthorized_client");
    }
    // RFC 6749 §3.3: the requested scope, or the default; unknown scopes refused.
    let scope = match req
        .form
        .iter()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
    {
        Some("") if fake.has(Flaw::EmptyScopeInvalid) => return err("invalid_scope"),
        None | Some("") => "openid".to_owned(),
        Some(s) => {
            let ok = s
                .split(' ')
                .filter(|x| !x.is_empty())
                .all(|x| SCOPES.contains(&x));
            if !ok && !fake.has(Flaw::UndefinedScopeGranted) {
                return err("invalid_scope");
            }
            s.to_owned()
        }
    };
    Ok((client, scope))
}

/// The codes of one device authorization, and a user code that is not its own (for
/// [`Flaw::CompleteUriWrongCode`]).
struct Issued {
    device_code: String,
    user_code: String,
    other_user_code: String,
}

/// Stores a pending authorization for `client` and `scope` under fresh codes.
fn issue_codes(fake: &Fake, client: String, scope: String) -> Issued {
    let mut g = fake.store.lock().unwrap();
    g.next += 1;
    let device_code = if fake.has(Flaw::ShortDeviceCode) {
        g.chars(b"0123456789abcdef", 12)
    } else {
        g.chars(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            43,
        )
    };
    let user_code = new_user_code(fake, &mut g);
    g.last_user_code = user_code.clone();
    g.codes.insert(
        device_code.clone(),
        Code {
            client,
            user_code: user_code.clone(),
            scope,
            issued: Instant::now(),
            state: State::Pending,
            interval: Duration::from_secs(INTERVAL),
            last_poll: fake.has(Flaw::FirstPollSlowDown).then(Instant::now),
            told_denied: false,
            told_expired: false,
            tokens: Vec::new(),
        },
    );
    let other_user_code = g.chars(ALPHABET, 8);
    Issued {
        device_code,
        user_code,
        other_user_code,
    }
}

/// RFC 8628 §6.1: eight characters of the base-20 alphabet, unless a flaw says otherwise.
fn new_user_code(fake: &Fake, g: &mut Store) -> String {
    if fake.has(Flaw::DuplicateUserCodes) && g.next % 3 == 0 {
        g.last_user_code.clone()
    } else if fake.has(Flaw::ShortUserCode) {
        g.chars(ALPHABET, 4)
    } else if fake.has(Flaw::ConfusableAlphabet) {
        let a = g.chars(CONFUSABLE, 4);
        let b = g.chars(CONFUSABLE, 4);
        format!("{a}-{b}")
    } else {
        let a = g.chars(ALPHABET, 4);
        let b = g.chars(ALPHABET, 4);
        format!("{a}-{b}")
    }
}

/// RFC 8628 §3.2: the JSON answer carrying `issued`.
fn device_authorization_response(fake: &Fake, issued: Issued) -> Reply {
    let Issued {
        device_code,
        user_code,
        other_user_code,
    } = issued;
    let base = &fake.base;
    let verification_uri = if fake.has(Flaw::RelativeVerificationUri) {
        "/device".to_owned()
    } else if fake.has(Flaw::UserCodeInVerificationUri) {
        format!("{base}/device/{user_code}")
    } else {
        format!("{base}/device")
    };
    let complete = if fake.has(Flaw::CompleteUriWrongCode) {
        format!("{base}/device?user_code={other_user_code}")
    } else if fake.has(Flaw::DeviceCodeInCompleteUri) {
        format!("{base}/device?user_code={user_code}&device_code={device_code}")
    } else {
        format!("{base}/device?user_code={user_code}")
    };
    let number = |n: u64| -> serde_json::Value {
        if fake.has(Flaw::StringNumbers) {
            n.to_string().into()
        } else {
            n.into()
        }
    };
    let mut body = serde_json::Map::new();
    if !fake.has(Flaw::NoDeviceCode) {
        body.insert("device_code".into(), device_code.into());
    }
    if !fake.has(Flaw::NoUserCode) {
        body.insert("user_code".into(), user_code.into());
    }
    body.insert("verification_uri".into(), verification_uri.into());
    body.insert("verification_uri_complete".into(), complete.into());
    if !fake.has(Flaw::ExpiresInMissing) {
        body.insert("expires_in".into(), number(EXPIRES_IN));
    }
    let interval = if fake.has(Flaw::IntervalZero) {
        0
    } else {
        INTERVAL
    };
    body.insert("interval".into(), number(interval));
    let mut text = serde_json::Value::Object(body).to_string();
    if fake.has(Flaw::DuplicateMember) {
        text = text.replacen('{', &format!(r#"{{"interval":{INTERVAL},"#), 1);
    }
    let status = if fake.has(Flaw::DaStatus201) {
        201
    } else {
        200
    };
    let mut r = fake.json(status, text, !fake.has(Flaw::NoStoreMissingOnDa));
    if fake.has(Flaw::DaTextPlain) {
        r.headers_mut()
            .insert("content-type", "text/plain".parse().unwrap());
    }
    r
}

/// A token response (RFC 6749 §5.1) for `client` with `scope`, from refresh family
/// `family`; registers the tokens.
fn token_response(
    fake: &Fake,
    g: &mut Store,
    client: &str,
    scope: &str,
    family: u64,
    with_refresh: bool,
) -> (Reply, String) {
    let at = g.chars(b"abcdefghijklmnopqrstuvwxyz0123456789", 32);
    let rt = g.chars(b"abcdefghijklmnopqrstuvwxyz0123456789", 32);
    g.access.insert(
        at.clone(),
        (true, scope.to_owned(), client.to_owned(), family),
    );
    if with_refresh {
        g.refresh.insert(
            rt.clone(),
            Refresh {
                client: client.to_owned(),
                scope: scope.to_owned(),
                family,
                used: false,
            },
        );
    }
    let mut t = serde_json::json!({
        "access_token": at,
        "token_type": if fake.has(Flaw::TokenTypeMac) { "mac" } else { "Bearer" },
        "expires_in": 60,
        "refresh_token": rt,
        "scope": if fake.has(Flaw::ScopeWidened) { format!("{scope} admin") } else { scope.to_owned() },
    });
    let o = t.as_object_mut().unwrap();
    if fake.has(Flaw::TokenMissingTokenType) {
        o.remove("token_type");
    }
    if fake.has(Flaw::UndefinedScopeGranted) {
        // Echoes the request by saying nothing (RFC 6749 §5.1: "identical").
        o.remove("scope");
    }
    if !with_refresh {
        o.remove("refresh_token");
    }
    let mut r = fake.json(200, t.to_string(), !fake.has(Flaw::NoStoreMissingOnToken));
    if fake.has(Flaw::TokenTextPlain) {
        r.headers_mut()
            .insert("content-type", "text/plain".parse().unwrap());
    }
    (r, at)
}

/// RFC 8628 §3.4-§3.5 (and RFC 6749 §6 for refresh): checks the request, then answers
/// the poll from the device code's state.
async fn token(fake: &Fake, req: &Req) -> Reply {
    let basic = req.authorization.is_some();
    let err = |code| fake.error(code, true, basic);
    if fake.has(Flaw::HangingTokenEndpoint) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let (grant, client) = match check_token_request(fake, req) {
        Ok(accepted) => accepted,
        Err(refusal) => return *refusal,
    };
    if grant == "refresh_token" {
        return refresh(fake, req, client.map(|c| c.id)).await;
    }
    if client.is_some_and(|c| !c.device_grant) && !fake.has(Flaw::UnauthorizedClientAllowedAtToken)
    {
        return err("unauthorized_client");
    }
    let dc = match req
        .form
        .iter()
        .find(|(k, _)| k == "device_code")
        .map(|(_, v)| v.as_str())
    {
        None if fake.has(Flaw::HtmlServerError) => {
            return fake.page(500, "<h1>Server Error (500)</h1>".into())
        }
        None => return err("invalid_request"),
        Some("") if !fake.has(Flaw::EmptyDeviceCodeInvalidGrant) => return err("invalid_request"),
        Some(dc) => dc.to_owned(),
    };
    if fake.has(Flaw::RacyRedemption) {
        if let Some(tokens) = racy_redemption(fake, &dc).await {
            return tokens;
        }
    }
    poll(fake, &dc, client, basic)
}

/// RFC 6749 §4.1.3 / §5.2: the grant type and client of an acceptable token request,
/// or the refusal.
fn check_token_request<'r>(
    fake: &Fake,
    req: &'r Req,
) -> Result<(&'r str, Option<&'static ClientDef>), Box<Reply>> {
    let err = |code| {
        Err(Box::new(fake.error(
            code,
            true,
            req.authorization.is_some(),
        )))
    };
    if req.method != Method::POST && !fake.has(Flaw::GetServedAtToken) {
        return Err(Box::new(fake.json(
            405,
            r#"{"error":"invalid_request"}"#.into(),
            true,
        )));
    }
    if req.method == Method::POST && !form_ok(fake, req, Flaw::CharsetRefusedAtToken) {
        return err("invalid_request");
    }
    if req.repeated() && !fake.has(Flaw::RepeatsAcceptedAtToken) {
        return err("invalid_request");
    }
    if fake.has(Flaw::UnknownParamRejectedAtToken)
        && req.unknown(&[
            "client_id",
            "client_secret",
            "grant_type",
            "device_code",
            "refresh_token",
            "scope",
        ])
    {
        return err("invalid_request");
    }
    let grant = match req.get("grant_type") {
        None => return err("invalid_request"),
        Some(g) => g,
    };
    if grant != GRANT && grant != "refresh_token" {
        return err(if fake.has(Flaw::WrongGrantInvalidRequest) {
            "invalid_request"
        } else {
            "unsupported_grant_type"
        });
    }
    let client = match authenticate(fake, req, true) {
        Ok(Some(c)) => Some(c),
        Ok(None) if fake.has(Flaw::PollWithoutClientIdAccepted) => None,
        Ok(None) => return err("invalid_request"),
        Err(code) => return err(code),
    };
    Ok((grant, client))
}

/// [`Flaw::RacyRedemption`]: checked, then set after an await, so parallel polls all
/// pass the check. `None`: the code was not approved; the poll goes on as usual.
async fn racy_redemption(fake: &Fake, dc: &str) -> Option<Reply> {
    let approved = {
        let g = fake.store.lock().unwrap();
        g.codes.get(dc).is_some_and(|c| c.state == State::Approved)
    };
    if !approved {
        return None;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut g = fake.store.lock().unwrap();
    let code = g.codes.get_mut(dc).unwrap();
    code.state = State::Redeemed;
    let (owner, scope) = (code.client.clone(), code.scope.clone());
    Some(token_response(fake, &mut g, &owner, &scope, 0, true).0)
}

/// RFC 8628 §3.5: a poll for `dc` by `client`, judged for expiry, then pace and state.
fn poll(fake: &Fake, dc: &str, client: Option<&ClientDef>, basic: bool) -> Reply {
    let err = |code| fake.error(code, true, basic);
    let now = Instant::now();
    let mut g = fake.store.lock().unwrap();
    let Some(code) = g.codes.get_mut(dc) else {
        drop(g);
        if fake.has(Flaw::UnknownCode404) {
            return fake.json(404, r#"{"error":"device_not_found"}"#.into(), true);
        }
        return err("invalid_grant");
    };
    if let Some(c) = client {
        if code.client != c.id && !fake.has(Flaw::CrossClient) {
            return err("invalid_grant");
        }
    }
    let expired = now >= code.issued + Duration::from_secs(EXPIRES_IN);
    let approved_skips_expiry =
        fake.has(Flaw::ApprovedOutlivesExpiry) && code.state != State::Pending;
    let expiry_applies = !fake.has(Flaw::NoExpiry) && !approved_skips_expiry;
    if expired && expiry_applies {
        if fake.has(Flaw::ExpiredThenPending) && code.told_expired {
            return err("authorization_pending");
        }
        code.told_expired = true;
        return err("expired_token");
    }
    // RFC 8628 §3.5: pace is judged only while pending (checklist PL-06).
    let early = is_early(fake, code, now);
    if early && fake.has(Flaw::SlowDownBeforeStatus) {
        return slow_down(fake, code, now, basic);
    }
    answer_by_state(fake, &mut g, dc, early, now, basic)
}

/// Whether a poll at `now` comes before the code's interval has passed (within
/// [`TOLERANCE`]).
fn is_early(fake: &Fake, code: &Code, now: Instant) -> bool {
    code.last_poll.is_some_and(|t| {
        let tolerance = if fake.has(Flaw::Livelock) {
            Duration::ZERO
        } else {
            TOLERANCE
        };
        if fake.has(Flaw::SlowDownCompliant) {
            now < t + code.interval + Duration::from_secs(1)
        } else {
            now + tolerance < t + code.interval
        }
    }) && !fake.has(Flaw::NeverSlowDown)
}

/// RFC 8628 §3.5: `slow_down`, and the interval 5 seconds longer from now on.
fn slow_down(fake: &Fake, code: &mut Code, now: Instant, basic: bool) -> Reply {
    if !fake.has(Flaw::FixedWindow) {
        code.interval += Duration::from_secs(if fake.has(Flaw::OverPenalty) { 10 } else { 5 });
    }
    if fake.has(Flaw::Livelock) {
        code.last_poll = Some(now);
    }
    if fake.has(Flaw::SlowDownAs429) {
        fake.json(429, r#"{"error":"slow_down"}"#.into(), true)
    } else {
        fake.error("slow_down", true, basic)
    }
}

/// RFC 8628 §3.5: the answer a poll for the unexpired `dc` gets from its state: tokens
/// once, then `invalid_grant` (revoking what it issued); `access_denied`;
/// `authorization_pending` or `slow_down` while the person has not decided.
fn answer_by_state(
    fake: &Fake,
    g: &mut Store,
    dc: &str,
    early: bool,
    now: Instant,
    basic: bool,
) -> Reply {
    let err = |code| fake.error(code, true, basic);
    let code = g.codes.get_mut(dc).unwrap();
    let (state, owner, scope) = (code.state, code.client.clone(), code.scope.clone());
    match state {
        State::Redeemed if fake.has(Flaw::NoSingleUse) => {
            token_response(fake, g, &owner, &scope, 0, true).0
        }
        State::Redeemed => {
            if !fake.has(Flaw::ReplayKeepsToken) {
                let tokens = std::mem::take(&mut code.tokens);
                for t in tokens {
                    if let Some(a) = g.access.get_mut(&t) {
                        a.0 = false;
                    }
                }
            }
            err("invalid_grant")
        }
        State::Denied if fake.has(Flaw::DenyIsPending) => err("authorization_pending"),
        State::Denied if fake.has(Flaw::DenialThenPending) && code.told_denied => {
            err("authorization_pending")
        }
        State::Denied => {
            code.told_denied = true;
            err("access_denied")
        }
        State::Approved => {
            code.state = State::Redeemed;
            g.next += 1;
            let family = g.next;
            let (reply, at) = token_response(fake, g, &owner, &scope, family, true);
            g.codes.get_mut(dc).unwrap().tokens.push(at);
            reply
        }
        State::Pending => {
            if early {
                return slow_down(fake, code, now, basic);
            }
            code.last_poll = Some(now);
            if fake.has(Flaw::ResetAfterCompliant) {
                code.interval = Duration::from_secs(INTERVAL);
            }
            if fake.has(Flaw::PendingIs200) {
                return fake.json(200, r#"{"error":"authorization_pending"}"#.into(), true);
            }
            err("authorization_pending")
        }
    }
}

/// RFC 6749 §6, with RFC 9700 §4.14.2 rotation and reuse detection.
async fn refresh(fake: &Fake, req: &Req, client: Option<&str>) -> Reply {
    let err = |code| fake.error(code, true, req.authorization.is_some());
    let Some(rt) = req.get("refresh_token") else {
        return err("invalid_request");
    };
    let mut g = fake.store.lock().unwrap();
    if fake.has(Flaw::RefreshBroken) {
        return err("invalid_grant");
    }
    let Some(r) = g.refresh.get(rt) else {
        return err("invalid_grant");
    };
    let (owner, granted, family, used) = (r.client.clone(), r.scope.clone(), r.family, r.used);
    if client != Some(owner.as_str()) && !fake.has(Flaw::RefreshCrossClient) {
        return err("invalid_grant");
    }
    if g.revoked_families.contains(&family) {
        return err("invalid_grant");
    }
    if used && !fake.has(Flaw::ReuseNotDetected) {
        if !fake.has(Flaw::FamilyNotRevoked) {
            g.revoked_families.push(family);
        }
        return err("invalid_grant");
    }
    let scope = match req.get("scope") {
        None => granted.clone(),
        Some(s) => {
            let within = s
                .split(' ')
                .filter(|x| !x.is_empty())
                .all(|x| granted.split(' ').any(|y| y == x));
            if !within && !fake.has(Flaw::RefreshWidens) {
                return err("invalid_scope");
            }
            s.to_owned()
        }
    };
    g.refresh.get_mut(rt).unwrap().used = !fake.has(Flaw::NoRotation);
    // Not rotated: the response carries no new refresh token.
    token_response(
        fake,
        &mut g,
        &owner,
        &scope,
        family,
        !fake.has(Flaw::NoRotation),
    )
    .0
}

fn introspect(fake: &Fake, req: &Req) -> Reply {
    match authenticate(fake, req, true) {
        Ok(Some(c)) if c.id == "introspector" => {}
        _ => return fake.error("invalid_client", true, req.authorization.is_some()),
    }
    let g = fake.store.lock().unwrap();
    let body = match req.get("token").and_then(|t| g.access.get(t)) {
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

fn admin(fake: &Fake, req: &Req) -> Reply {
    if req.authorization.as_deref() != Some(&format!("Bearer {ADMIN}")) {
        return fake.json(401, r#"{"error":"invalid_token"}"#.into(), false);
    }
    let typed = req.get("user_code").unwrap_or_default();
    let approve = req.get("action") == Some("approve");
    let mut g = fake.store.lock().unwrap();
    let found = g.codes.values_mut().find(|c| {
        if fake.has(Flaw::NoNormalization) {
            c.user_code == typed
        } else {
            normalize(&c.user_code) == normalize(typed)
        }
    });
    match found {
        Some(c)
            if (c.state == State::Pending || fake.has(Flaw::SecondDecisionAccepted))
                && (c.issued.elapsed() < Duration::from_secs(EXPIRES_IN)
                    || fake.has(Flaw::LateApprovalAccepted)) =>
        {
            c.state = if approve {
                State::Approved
            } else {
                State::Denied
            };
            fake.json(200, "{}".into(), false)
        }
        _ => fake.json(409, r#"{"error":"not_pending"}"#.into(), false),
    }
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
        form,
        empty: body.is_empty(),
    };
    if fake.has(Flaw::NotOAuth) {
        return fake.page(404, "<html><body>Not Found</body></html>".into());
    }
    match r.path.as_str() {
        "/.well-known/oauth-authorization-server" => metadata(&fake),
        "/da" => device_authorization(&fake, &r),
        "/token" => token(&fake, &r).await,
        "/introspect" => introspect(&fake, &r),
        "/admin" => admin(&fake, &r),
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
