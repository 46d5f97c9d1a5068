//! A.1: the device authorization request (RFC 8628 §3.1; RFC 6749 §2.3, §3.2.1, §5.2).

use std::time::{Duration, Instant};

use super::{case, expect_error, expect_status};
use crate::case::{Case, Check, Level, Status, Verdict};
use crate::client::{AuthMethod, Client};
use crate::context::Ctx;
use crate::http::reach::{is_http, is_https, is_loopback};
use crate::http::{basic, credentials, form, Exchange, Request};

pub fn cases() -> Vec<Case> {
    vec![
        case!("DA-01", "rfc8628/3.1/public-client-request", "A.1", "RFC 8628 §3.1", Must, None, None,
            "The endpoint accepts a form POST with client_id (and scope)", da_01),
        case!("DA-02", "rfc8628/3.1/form-media-type-variants", "A.1", "RFC 8628 §3.1", DerivedMust, None, None,
            "A charset parameter is still form encoding; an empty POST without Content-Type is a 4xx", da_02),
        case!("DA-03", "rfc8628/3.1/client-id-required", "A.1", "RFC 8628 §3.1", Must, None, None,
            "client_id is REQUIRED when the client does not authenticate", da_03),
        case!("DA-04", "rfc8628/3.2/unknown-client", "A.1", "RFC 8628 §3.2", Must, None, None,
            "An unknown client gets invalid_client", da_04),
        case!("DA-05", "rfc8628/3.1/confidential-client-authentication", "A.1", "RFC 8628 §3.1", Must, None, None,
            "Confidential clients authenticate as at the token endpoint", da_05),
        case!("DA-06", "rfc6749/2.3.1/http-basic", "A.1", "RFC 6749 §2.3.1", Must, None, None,
            "HTTP Basic client authentication is supported", da_06),
        case!("DA-07", "rfc6749/5.2/basic-failure-401", "A.1", "RFC 6749 §5.2", Must, None, None,
            "A failed Basic authentication gets 401 with WWW-Authenticate", da_07),
        case!("DA-08", "rfc8628/3.1/empty-parameter-is-omitted", "A.1", "RFC 8628 §3.1", Must, None, None,
            "A parameter without a value is treated as omitted", da_08),
        case!("DA-09", "rfc8628/3.1/unknown-parameters-ignored", "A.1", "RFC 8628 §3.1", Must, None, None,
            "Unrecognized parameters are ignored", da_09),
        case!("DA-10", "rfc8628/3.1/repeated-parameters", "A.1", "RFC 8628 §3.1", Must, None, None,
            "Repeated parameters are rejected with invalid_request", da_10),
        case!("DA-11", "rfc6749/2.3/one-authentication-method", "A.1", "RFC 6749 §2.3", DerivedShould, None, None,
            "Two client authentication methods in one request are invalid_request", da_11),
        case!("DA-12", "rfc6749/3.3/unknown-scope", "A.1", "RFC 6749 §3.3", Info, None, None,
            "What an unknown scope gets (rejected or narrowed)", da_12),
        case!("DA-13", "rfc6749/5.2/unauthorized-client", "A.1", "RFC 6749 §5.2", DerivedShould, None, None,
            "A client not allowed the device grant gets unauthorized_client", da_13),
        case!("DA-14", "rfc8628/3.1/tls", "A.1", "RFC 8628 §3.1", Must, None, None,
            "The endpoints use TLS (plain http only on loopback)", da_14),
        case!("DA-15", "rfc8628/3.1/get-hands-out-no-codes", "A.1", "RFC 8628 §3.1", Info, None, None,
            "A GET that would otherwise be a valid request hands out no device code (POST only)", da_15),
    ]
}

async fn da_01(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let e = ctx
        .device_authorization(
            "device authorization",
            Some(ctx.client()),
            &ctx.scope_params(),
        )
        .await;
    expect_status(&mut c, &e, 200);
    let ok = crate::context::parse_authorization(e).is_ok();
    c.expect(
        ok,
        "the answer is an RFC 8628 §3.2 body with device_code, user_code and verification_uri",
    );
    c.finish("200 with a device authorization response")
}

async fn da_02(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedMust);
    let url = &ctx.target.device_authorization_endpoint;
    let (auth, body) = credentials(Some(ctx.client()), &ctx.scope_params());
    let e = ctx
        .http
        .send(Request {
            label: "Content-Type with charset=UTF-8",
            method: reqwest::Method::POST,
            url,
            content_type: Some("application/x-www-form-urlencoded; charset=UTF-8"),
            headers: auth,
            body: Some(body),
        })
        .await;
    expect_status(&mut c, &e, 200);
    let e = super::empty_post(&ctx).await;
    c.evidence(e.clone());
    let status = e.status().unwrap_or(0);
    c.expect(
        (400..500).contains(&status),
        format!("empty POST without Content-Type: a 4xx (got {})", e.brief()),
    );
    c.expect(
        e.json().object().is_some(),
        format!(
            "empty POST without Content-Type: a JSON error body (got {})",
            e.brief()
        ),
    );
    c.finish("charset accepted; an empty POST is a 4xx JSON error")
}

async fn da_03(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let e = ctx
        .device_authorization("no client_id, no authentication", None, &ctx.scope_params())
        .await;
    expect_error(&mut c, &e, &["invalid_request", "invalid_client"]);
    c.finish("a request without client_id is refused with an RFC 6749 §5.2 error")
}

async fn da_04(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let nobody = Client::public("deviceflow-conformance-no-such-client");
    let e = ctx
        .device_authorization("unknown client_id", Some(&nobody), &[])
        .await;
    expect_error(&mut c, &e, &["invalid_client"]);
    c.finish("an unknown client gets invalid_client")
}

async fn da_05(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let Some(conf) = ctx.confidential_client().cloned() else {
        return c.skip(
            Status::NotApplicable,
            "no confidential client configured (--client-secret or --second-client ID:SECRET)",
        );
    };
    let url = &ctx.target.device_authorization_endpoint;
    let scope = ctx.scope_params();
    let alone = Client::public(conf.id.clone());
    let e = ctx
        .http
        .post_form(
            "(a) confidential client_id without its secret",
            url,
            Some(&alone),
            &scope,
        )
        .await;
    expect_error(&mut c, &e, &["invalid_client", "invalid_request"]);
    let wrong = Client {
        secret: Some(crate::client::WRONG_SECRET.into()),
        ..conf.clone()
    };
    let e = ctx
        .http
        .post_form("(b) wrong secret", url, Some(&wrong), &scope)
        .await;
    expect_error(&mut c, &e, &["invalid_client"]);
    let e = ctx
        .http
        .post_form("(c) right secret", url, Some(&conf), &scope)
        .await;
    expect_status(&mut c, &e, 200);
    if conf.method == AuthMethod::Basic {
        // (d) client_secret_post is a MAY: recorded, not required.
        let post = Client {
            method: AuthMethod::Post,
            ..conf.clone()
        };
        let e = ctx
            .http
            .post_form(
                "(d) right secret in the body (client_secret_post, MAY)",
                url,
                Some(&post),
                &scope,
            )
            .await;
        c.measure("client_secret_post_accepted", e.status() == Some(200));
        c.evidence(e);
    }
    c.finish("the confidential client is refused without or with a wrong secret, accepted with it")
}

async fn da_06(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let Some(conf) = ctx.confidential_client().cloned() else {
        return c.skip(Status::NotApplicable, "no confidential client configured");
    };
    let basic = Client {
        method: AuthMethod::Basic,
        ..conf
    };
    let e = ctx
        .device_authorization("client_secret_basic", Some(&basic), &ctx.scope_params())
        .await;
    expect_status(&mut c, &e, 200);
    c.finish("HTTP Basic authentication works")
}

async fn da_07(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let Some(conf) = ctx.confidential_client().cloned() else {
        return c.skip(Status::NotApplicable, "no confidential client configured");
    };
    let wrong = Client {
        method: AuthMethod::Basic,
        secret: Some(crate::client::WRONG_SECRET.into()),
        ..conf
    };
    let e = ctx
        .device_authorization(
            "Basic with a wrong secret",
            Some(&wrong),
            &ctx.scope_params(),
        )
        .await;
    expect_error(&mut c, &e, &["invalid_client"]);
    c.expect(
        e.status() == Some(401),
        format!("HTTP 401 (got {})", e.brief()),
    );
    // RFC 9110 §11.6.1: one field line or several, each a list of challenges; the
    // one for the scheme the client used need not come first.
    let challenge = e.header_list("www-authenticate").unwrap_or_default();
    c.expect(
        super::challenges(&e).iter().any(|s| s == "basic"),
        format!("WWW-Authenticate: Basic (got {challenge:?})"),
    );
    c.finish("401 invalid_client with WWW-Authenticate: Basic")
}

/// The most times DA-08 sends one of its requests: a rate limit or a server error is
/// no answer about the request, so it is sent again, this often at most.
const DA_08_TRIES: u32 = 3;

/// Whether `e` is a refusal that says nothing of the request itself: 429 Too Many
/// Requests (RFC 6585 §4) or a server error (RFC 9110 §15.6: 5xx, 503 among them).
fn transient(e: &Exchange) -> bool {
    e.status()
        .is_some_and(|s| s == 429 || (500..600).contains(&s))
}

/// Sends a DA-08 request with `send`, and again while the answer is [`transient`],
/// waiting what its `Retry-After` asks (1 s, then 2 s, when it asks nothing), while
/// that fits before `deadline` (`--max-wait` for the case), [`DA_08_TRIES`] times at
/// most. The answers before the last are recorded as evidence; returns the last.
async fn past_transient<F, Fut>(
    ctx: &Ctx,
    c: &mut Check,
    deadline: Option<Instant>,
    send: F,
) -> Exchange
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Exchange>,
{
    let mut tries = 0;
    loop {
        let e = send().await;
        tries += 1;
        if !transient(&e) || tries >= DA_08_TRIES {
            return e;
        }
        let wait = crate::http::retry_after(&e).unwrap_or(Duration::from_secs(1 << (tries - 1)));
        let fits =
            deadline.is_some_and(|t| Instant::now().checked_add(wait).is_some_and(|at| at <= t));
        if !fits {
            return e;
        }
        let why = format!(
            "{} answered HTTP {}: waiting as its Retry-After asks",
            e.label,
            e.status().unwrap_or(0)
        );
        c.evidence(e);
        ctx.wait("DA-08", wait, &why).await;
    }
}

/// What a transient refusal left unknown: `e`'s request, its answer, and its Retry-After.
fn left_unknown(e: &Exchange) -> String {
    let status = e.status().unwrap_or(0);
    let after = e
        .header("retry-after")
        .map_or(String::new(), |v| format!(", Retry-After: {v}"));
    format!(
        "{} was answered HTTP {status}{after} (up to {DA_08_TRIES} tries within --max-wait): a rate limit or a server error says nothing of how the request is treated",
        e.label
    )
}

async fn da_08(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let url = &ctx.target.device_authorization_endpoint;
    let deadline = Instant::now().checked_add(ctx.options.max_wait);
    // RFC 8628 §3.1: "Parameters sent without a value MUST be treated as if they were
    // omitted from the request". Omitted, the scope is the server's default, or
    // refused with invalid_scope when it has none (RFC 6749 §3.3): `scope=` is judged
    // against the same server's answer to an omitted scope, not against a 200.
    let omitted = past_transient(&ctx, &mut c, deadline, || {
        ctx.raw_http
            .post_form("scope omitted", url, Some(ctx.client()), &[])
    })
    .await;
    let empty = past_transient(&ctx, &mut c, deadline, || {
        ctx.raw_http
            .post_form("scope= (empty)", url, Some(ctx.client()), &[("scope", "")])
    })
    .await;
    // What the treatment is: codes issued, or which error; never the body's words.
    let outcome = |e: &Exchange| match (e.status(), e.error_code()) {
        (_, Some(code)) => format!("the error {code}"),
        (Some(200), None) if crate::context::parse_authorization(e.clone()).is_ok() => {
            "HTTP 200, codes issued".to_owned()
        }
        (Some(s), None) => format!("HTTP {s} without codes or an error code"),
        (None, _) => "no response".to_owned(),
    };
    if let Some(e) = [&omitted, &empty].into_iter().find(|e| transient(e)) {
        c.measure("scope_compared", "not judged: a transient refusal");
        c.inconclusive(left_unknown(e));
    } else {
        let (o, m) = (outcome(&omitted), outcome(&empty));
        c.measure("scope_omitted", o.clone());
        // Two requests without an answer show no treatment at all.
        c.expect(
            o == m && omitted.status().is_some(),
            format!("scope= (empty) is answered as an omitted scope is: {o} (got {m})"),
        );
    }
    c.evidence(omitted);
    c.evidence(empty);
    if !ctx.client().is_confidential() {
        let empty = Client::public("");
        let scope = ctx.scope_params();
        let e = past_transient(&ctx, &mut c, deadline, || {
            ctx.raw_http
                .post_form("client_id= (empty)", url, Some(&empty), &scope)
        })
        .await;
        if transient(&e) {
            c.inconclusive(left_unknown(&e));
            c.evidence(e);
        } else {
            expect_error(&mut c, &e, &["invalid_request", "invalid_client"]);
        }
    }
    c.finish("empty parameters are treated as omitted")
}

async fn da_09(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let mut params = ctx.scope_params();
    params.push(("deviceflow_conformance_unknown", "bar"));
    let e = ctx
        .device_authorization("an unrecognized parameter", Some(ctx.client()), &params)
        .await;
    expect_status(&mut c, &e, 200);
    c.finish("unknown parameters are ignored")
}

async fn da_10(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let url = &ctx.target.device_authorization_endpoint;
    let client = ctx.client();
    let id = client.id.as_str();
    let e = ctx
        .http
        .post_form("client_id twice", url, Some(client), &[("client_id", id)])
        .await;
    // For a Basic client the body's client_id is not a repeat of anything; only
    // count the repeat when client_id is in the body.
    if client.method == AuthMethod::Basic {
        c.evidence(e);
    } else {
        expect_error(&mut c, &e, &["invalid_request"]);
    }
    let scope = ctx.target.scope.as_deref().unwrap_or("openid");
    let e = ctx
        .http
        .post_form(
            "scope twice",
            url,
            Some(client),
            &[("scope", scope), ("scope", scope)],
        )
        .await;
    expect_error(&mut c, &e, &["invalid_request"]);
    c.finish("repeated parameters are invalid_request")
}

async fn da_11(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedShould);
    let Some(conf) = ctx.confidential_client().cloned() else {
        return c.skip(Status::NotApplicable, "no confidential client configured");
    };
    let secret = conf.secret.clone().unwrap_or_default();
    let mut params = vec![("client_secret", secret.as_str())];
    params.extend(ctx.scope_params());
    let e = ctx
        .http
        .send(Request {
            label: "Basic and client_secret in the body",
            method: reqwest::Method::POST,
            url: &ctx.target.device_authorization_endpoint,
            content_type: Some("application/x-www-form-urlencoded"),
            headers: vec![("authorization".into(), basic(&conf.id, &secret))],
            body: Some(form(&params)),
        })
        .await;
    expect_error(&mut c, &e, &["invalid_request"]);
    c.finish("two authentication methods are refused")
}

async fn da_12(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Info);
    let e = ctx
        .device_authorization(
            "scope=deviceflow-conformance-bogus",
            Some(ctx.client()),
            &[("scope", "deviceflow-conformance-bogus")],
        )
        .await;
    let answer = match e.status() {
        // What the token then grants, or whether it is refused there, is TS-05's.
        Some(200) => {
            "accepted at the device authorization (TS-05 judges what the token grants)".to_owned()
        }
        _ => format!("rejected: {}", e.error_code().unwrap_or_else(|| e.brief())),
    };
    c.measure("unknown_scope", answer.clone());
    c.evidence(e);
    c.finish(format!("an unknown scope is {answer}"))
}

async fn da_13(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedShould);
    let Some(client) = ctx.target.unauthorized_client.clone() else {
        return c.skip(
            Status::NotApplicable,
            "no client without the device grant configured (--unauthorized-client)",
        );
    };
    let e = ctx
        .device_authorization("client without the device grant", Some(&client), &[])
        .await;
    expect_error(&mut c, &e, &["unauthorized_client"]);
    c.finish("unauthorized_client")
}

async fn da_14(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let urls = [
        &ctx.target.device_authorization_endpoint,
        &ctx.target.token_endpoint,
    ];
    if urls.iter().all(|u| is_loopback(u) && is_http(u)) {
        return c.skip(
            Status::NotApplicable,
            "plain http on loopback: a local test setup, TLS not applicable",
        );
    }
    for u in urls {
        c.expect(
            is_https(u) || is_loopback(u),
            format!("{u} is https, or plain http on loopback"),
        );
    }
    c.finish(
        "the endpoints are https (certificate validated by the client; TLS version not inspected)",
    )
}

/// A request like `client`'s `params` sent as a GET, the parameters in the query: a
/// confidential client's secret goes in a Basic header, never in a URL.
pub(crate) async fn get_with_query(
    ctx: &Ctx,
    label: &str,
    url: &str,
    client: &Client,
    params: &[(&str, &str)],
) -> crate::http::Exchange {
    let client = match client.method {
        AuthMethod::Post => Client {
            method: AuthMethod::Basic,
            ..client.clone()
        },
        _ => client.clone(),
    };
    let (headers, query) = credentials(Some(&client), params);
    let sep = if url.contains('?') { '&' } else { '?' };
    ctx.http
        .send(Request {
            label,
            method: reqwest::Method::GET,
            url: &format!("{url}{sep}{query}"),
            content_type: None,
            headers,
            body: None,
        })
        .await
}

async fn da_15(ctx: Ctx) -> Verdict {
    // RFC 8628 §3.1: the client makes "an HTTP POST request": a rule for the client.
    // No text requires a server to refuse a GET (checklist DA-15: Info), so a GET that
    // hands out codes is reported (codes in URLs reach logs and caches), not failed.
    let mut c = Check::new(Level::Info);
    let e = get_with_query(
        &ctx,
        "GET with a valid request's parameters in the query",
        &ctx.target.device_authorization_endpoint,
        ctx.client(),
        &ctx.scope_params(),
    )
    .await;
    let hands_out = e.status() == Some(200)
        && e.json()
            .value
            .as_ref()
            .and_then(|v| v.get("device_code"))
            .is_some();
    c.measure("get_status", e.status().unwrap_or(0));
    c.expect(
        !hands_out,
        format!("a GET gets no device code (got {})", e.brief()),
    );
    c.evidence(e);
    c.finish("a GET with a valid request's parameters gets no device code")
}
