//! Deliberately broken device-flow servers, each violating one rule, and proof that
//! the suite catches each one. The fake server is small and written here, from the
//! RFC, so that the suite is tested against code that is not ours either.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use deviceflow_conformance::case::Status;
use deviceflow_conformance::{resolve, Approver, Client, Options, Report, Selection, TargetSpec};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const INTERVAL: u64 = 1;
const EXPIRES_IN: u64 = 20;
const ADMIN: &str = "fake-admin-token";

/// One rule broken per flaw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    None,
    /// Every poll of an approved code issues a new token (DOT 3.4.1 did this).
    NoSingleUse,
    /// Codes never expire.
    NoExpiry,
    /// Pending is answered with HTTP 200.
    PendingIs200,
    /// No Cache-Control / Pragma on token responses.
    NoCacheHeaders,
    /// Any client may poll any code.
    CrossClient,
    /// A missing device_code is a 500 HTML page.
    HtmlServerError,
    /// The device authorization response repeats a member.
    DuplicateMember,
    /// expires_in and interval are strings.
    StringNumbers,
    /// Each slow_down raises the interval by 10 s, demanding more than interval + 5k
    /// (the escalation reported of GitHub in charmbracelet/crush#3399).
    OverPenalty,
    /// The token endpoint never answers.
    HangingTokenEndpoint,
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Pending,
    Approved,
    Denied,
    Redeemed,
}

struct Code {
    client: String,
    user_code: String,
    issued: Instant,
    state: State,
    interval: Duration,
    last_poll: Option<Instant>,
}

#[derive(Default)]
struct Fake {
    codes: HashMap<String, Code>,
    next: u64,
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn get<'a>(f: &'a [(String, String)], k: &str) -> Option<&'a str> {
    f.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn reply(status: u16, body: String, flaw: Flaw) -> Response<Full<Bytes>> {
    let mut r = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if flaw != Flaw::NoCacheHeaders {
        r = r
            .header("cache-control", "no-store")
            .header("pragma", "no-cache");
    }
    r.body(Full::new(Bytes::from(body))).unwrap()
}

fn error(code: &str, flaw: Flaw) -> Response<Full<Bytes>> {
    let status = if code == "invalid_client" { 401 } else { 400 };
    reply(status, format!(r#"{{"error":"{code}"}}"#), flaw)
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    fake: Arc<Mutex<Fake>>,
    flaw: Flaw,
    base: Arc<String>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let f = form(&body);
    let repeated = f
        .iter()
        .enumerate()
        .any(|(i, (k, _))| f[..i].iter().any(|(n, _)| n == k));
    match path.as_str() {
        "/.well-known/oauth-authorization-server" => reply(
            200,
            serde_json::json!({
                "issuer": *base,
                "device_authorization_endpoint": format!("{base}/da"),
                "token_endpoint": format!("{base}/token"),
                "grant_types_supported": ["urn:ietf:params:oauth:grant-type:device_code"],
            })
            .to_string(),
            flaw,
        ),
        "/da" => {
            let Some(client) = get(&f, "client_id") else {
                return error("invalid_request", flaw);
            };
            if repeated {
                return error("invalid_request", flaw);
            }
            if !client.starts_with("client-") {
                return error("invalid_client", flaw);
            }
            let mut g = fake.lock().unwrap();
            g.next += 1;
            let n = g.next;
            let device_code = format!("dc-{n:08}-0123456789abcdefghijklmnopqrstuvwxyz");
            let user_code = format!("BCDF-{:04}", n % 10_000)
                .replace('0', "G")
                .replace('1', "H")
                .replace('2', "J")
                .replace('3', "K")
                .replace('4', "L")
                .replace('5', "M")
                .replace('6', "N")
                .replace('7', "P")
                .replace('8', "Q")
                .replace('9', "R");
            g.codes.insert(
                device_code.clone(),
                Code {
                    client: client.to_owned(),
                    user_code: user_code.clone(),
                    issued: Instant::now(),
                    state: State::Pending,
                    interval: Duration::from_secs(INTERVAL),
                    last_poll: None,
                },
            );
            let body = match flaw {
                Flaw::DuplicateMember => format!(
                    r#"{{"device_code":"{device_code}","user_code":"{user_code}","verification_uri":"{base}/device","expires_in":{EXPIRES_IN},"interval":{INTERVAL},"interval":{INTERVAL}}}"#
                ),
                Flaw::StringNumbers => format!(
                    r#"{{"device_code":"{device_code}","user_code":"{user_code}","verification_uri":"{base}/device","expires_in":"{EXPIRES_IN}","interval":"{INTERVAL}"}}"#
                ),
                _ => format!(
                    r#"{{"device_code":"{device_code}","user_code":"{user_code}","verification_uri":"{base}/device","expires_in":{EXPIRES_IN},"interval":{INTERVAL}}}"#
                ),
            };
            reply(200, body, flaw)
        }
        "/token" => {
            if flaw == Flaw::HangingTokenEndpoint {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            if repeated {
                return error("invalid_request", flaw);
            }
            if get(&f, "grant_type") != Some("urn:ietf:params:oauth:grant-type:device_code") {
                return error("unsupported_grant_type", flaw);
            }
            let Some(client) = get(&f, "client_id") else {
                return error("invalid_request", flaw);
            };
            let Some(dc) = get(&f, "device_code") else {
                if flaw == Flaw::HtmlServerError {
                    return Response::builder()
                        .status(500)
                        .header("content-type", "text/html")
                        .body(Full::new(Bytes::from("<h1>Server Error (500)</h1>")))
                        .unwrap();
                }
                return error("invalid_request", flaw);
            };
            let mut g = fake.lock().unwrap();
            let Some(code) = g.codes.get_mut(dc) else {
                return error("invalid_grant", flaw);
            };
            if code.client != client && flaw != Flaw::CrossClient {
                return error("invalid_grant", flaw);
            }
            if code.issued.elapsed() >= Duration::from_secs(EXPIRES_IN) && flaw != Flaw::NoExpiry {
                return error("expired_token", flaw);
            }
            let token = r#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#.to_owned();
            match code.state {
                State::Redeemed if flaw == Flaw::NoSingleUse => reply(200, token, flaw),
                State::Redeemed => error("invalid_grant", flaw),
                State::Denied => error("access_denied", flaw),
                State::Approved => {
                    code.state = State::Redeemed;
                    reply(200, token, flaw)
                }
                State::Pending => {
                    let now = Instant::now();
                    let early = code
                        .last_poll
                        .is_some_and(|t| now + Duration::from_millis(300) < t + code.interval);
                    if early {
                        code.interval +=
                            Duration::from_secs(if flaw == Flaw::OverPenalty { 10 } else { 5 });
                        return error("slow_down", flaw);
                    }
                    code.last_poll = Some(now);
                    if flaw == Flaw::PendingIs200 {
                        return reply(200, r#"{"error":"authorization_pending"}"#.to_owned(), flaw);
                    }
                    error("authorization_pending", flaw)
                }
            }
        }
        "/admin" => {
            if auth.as_deref() != Some(&format!("Bearer {ADMIN}")) {
                return error("invalid_client", flaw);
            }
            let mut g = fake.lock().unwrap();
            let uc = get(&f, "user_code").unwrap_or_default().to_owned();
            let approve = get(&f, "action") == Some("approve");
            match g.codes.values_mut().find(|c| c.user_code == uc) {
                Some(c)
                    if c.state == State::Pending
                        && c.issued.elapsed() < Duration::from_secs(EXPIRES_IN) =>
                {
                    c.state = if approve {
                        State::Approved
                    } else {
                        State::Denied
                    };
                    reply(200, "{}".to_owned(), flaw)
                }
                _ => reply(409, r#"{"error":"not_pending"}"#.to_owned(), flaw),
            }
        }
        _ => reply(404, r#"{"error":"not_found"}"#.to_owned(), flaw),
    }
}

async fn start(flaw: Flaw) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Arc::new(format!("http://{}", listener.local_addr().unwrap()));
    let fake = Arc::new(Mutex::new(Fake::default()));
    let b = Arc::clone(&base);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (fake, base) = (Arc::clone(&fake), Arc::clone(&b));
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let (fake, base) = (Arc::clone(&fake), Arc::clone(&base));
                    async move { Ok::<_, Infallible>(handle(req, fake, flaw, base).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (*base).clone()
}

async fn run(flaw: Flaw, only: &[&str]) -> Report {
    let base = start(flaw).await;
    let options = Options {
        max_wait: Duration::from_secs(40),
        poll_margin: Duration::from_millis(400),
        samples: 20,
        request_timeout: Duration::from_secs(2),
        ..Options::default()
    };
    let http = deviceflow_conformance::http::Http::new(options.request_timeout);
    let spec = TargetSpec {
        issuer: Some(base.clone()),
        client: Some(Client::public("client-a")),
        second_client: Some(Client::public("client-b")),
        ..TargetSpec::default()
    };
    let target = resolve(spec, &http).await.unwrap();
    let approver = Approver::admin(format!("{base}/admin"), ADMIN, "alice");
    let selection = Selection {
        only: only.iter().map(|s| s.to_string()).collect(),
        skip: vec![],
    };
    deviceflow_conformance::run(target, approver, options, &selection, true).await
}

fn status(r: &Report, id: &str) -> Status {
    r.cases
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} did not run"))
        .verdict
        .status
}

/// The cases each flaw must trip.
const CHECKS: &[(Flaw, &str)] = &[
    (Flaw::NoSingleUse, "TS-08"),
    (Flaw::NoSingleUse, "TS-10"),
    (Flaw::NoExpiry, "EX-01"),
    (Flaw::NoExpiry, "EX-02"),
    (Flaw::PendingIs200, "TR-01"),
    (Flaw::PendingIs200, "TS-01"),
    (Flaw::NoCacheHeaders, "TS-04"),
    (Flaw::CrossClient, "TR-07"),
    (Flaw::HtmlServerError, "TR-02"),
    (Flaw::DuplicateMember, "DR-09"),
    (Flaw::StringNumbers, "DR-11"),
    (Flaw::OverPenalty, "PL-03"),
    (Flaw::HangingTokenEndpoint, "TR-01"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_rule_is_caught_and_the_correct_fake_passes() {
    let ids: Vec<&str> = {
        let mut v: Vec<&str> = CHECKS.iter().map(|(_, id)| *id).collect();
        v.sort();
        v.dedup();
        v
    };
    // The same cases against the fake with no flaw: all pass, so each failure below
    // is the flaw's doing, not the fake's.
    let runs = CHECKS.iter().map(|&(flaw, id)| async move {
        let started = Instant::now();
        let r = run(flaw, &[id]).await;
        (flaw, id, status(&r, id), r.exit_code(), started.elapsed())
    });
    let (clean, flawed) = tokio::join!(run(Flaw::None, &ids), futures_util::future::join_all(runs));
    for id in &ids {
        assert_eq!(
            status(&clean, id),
            Status::Pass,
            "{id} against the correct fake: {:#?}",
            clean.cases.iter().find(|c| c.id == *id)
        );
    }
    for (flaw, id, got, exit, took) in flawed {
        assert_eq!(got, Status::Fail, "{flaw:?} should fail {id}");
        assert_eq!(exit, 1, "{flaw:?}: a MUST failure sets the exit code");
        // A hanging server costs request timeouts, not a hung suite.
        assert!(
            took < Duration::from_secs(60),
            "{flaw:?}/{id} took {took:?}"
        );
    }
}

#[tokio::test]
async fn missing_cache_headers_warn_on_the_authorization_response() {
    let r = run(Flaw::NoCacheHeaders, &["DR-10"]).await;
    assert_eq!(status(&r, "DR-10"), Status::Warn);
    assert_eq!(r.exit_code(), 0, "a SHOULD violation does not fail the run");
}
