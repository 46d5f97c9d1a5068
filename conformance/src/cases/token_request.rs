//! A.4: the device access token request (RFC 8628 §3.4; RFC 6749 §3.2, §3.2.1, §5.2).

use super::authorization_request::get_with_query;
use std::time::{Duration, Instant};

use super::{approver_failed, authorize, case, expect_error, Pace};
use crate::approver::Action;
use crate::case::{Case, Check, Level, Status, Verdict};
use crate::client::{AuthMethod, Client};
use crate::context::{Ctx, GRANT};
use crate::http::{credentials, Request};

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "TR-01",
            "rfc8628/3.4/device-code-grant-accepted",
            "A.4",
            "RFC 8628 §3.4",
            Must,
            None,
            None,
            "The token endpoint accepts the device_code grant",
            tr_01
        ),
        case!(
            "TR-02",
            "rfc8628/3.4/device-code-required",
            "A.4",
            "RFC 8628 §3.4",
            Must,
            None,
            None,
            "A missing device_code is invalid_request",
            tr_02
        ),
        case!(
            "TR-03",
            "rfc6749/3.2/empty-device-code",
            "A.4",
            "RFC 6749 §3.2",
            Must,
            None,
            None,
            "An empty device_code is treated as missing",
            tr_03
        ),
        case!(
            "TR-04",
            "rfc6749/5.2/unknown-device-code",
            "A.4",
            "RFC 6749 §5.2",
            DerivedMust,
            None,
            None,
            "An unknown device_code is invalid_grant",
            tr_04
        ),
        case!(
            "TR-05",
            "rfc8628/3.4/client-id-required",
            "A.4",
            "RFC 8628 §3.4",
            Must,
            None,
            None,
            "A public client's poll without client_id is refused",
            tr_05
        ),
        case!(
            "TR-06",
            "rfc8628/3.4/confidential-client-authenticates",
            "A.4",
            "RFC 8628 §3.4",
            Must,
            None,
            None,
            "A confidential client must authenticate to poll",
            tr_06
        ),
        case!(
            "TR-07",
            "rfc6749/5.2/device-code-bound-to-client",
            "A.4",
            "RFC 6749 §5.2",
            DerivedMust,
            None,
            None,
            "Another client polling a device code gets invalid_grant, no status, no token",
            tr_07
        ),
        case!(
            "TR-08",
            "rfc6749/3.2/repeated-parameters",
            "A.4",
            "RFC 6749 §3.2",
            Must,
            None,
            None,
            "Repeated parameters are invalid_request",
            tr_08
        ),
        case!(
            "TR-09",
            "rfc6749/3.2/unknown-parameters-ignored",
            "A.4",
            "RFC 6749 §3.2",
            Must,
            None,
            None,
            "Unrecognized parameters are ignored",
            tr_09
        ),
        case!(
            "TR-10",
            "rfc6749/5.2/unsupported-grant-type",
            "A.4",
            "RFC 6749 §5.2",
            Must,
            None,
            None,
            "An unknown grant_type is unsupported_grant_type",
            tr_10
        ),
        case!(
            "TR-11",
            "rfc6749/5.2/token-unauthorized-client",
            "A.4",
            "RFC 6749 §5.2",
            DerivedShould,
            None,
            None,
            "A client not registered for the grant gets unauthorized_client",
            tr_11
        ),
        case!(
            "TR-12",
            "rfc6749/3.2/token-endpoint-get",
            "A.4",
            "RFC 6749 §3.2",
            Info,
            None,
            None,
            "A GET that would otherwise be a valid poll is not served (POST only)",
            tr_12
        ),
        case!(
            "TR-13",
            "rfc8628/3.4/form-charset-accepted",
            "A.4",
            "RFC 8628 §3.4",
            DerivedMust,
            None,
            None,
            "Form encoding with a charset parameter is accepted",
            tr_13
        ),
    ]
}

async fn tr_01(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    if let Some(a) = authorize(&ctx, &mut c).await {
        let e = ctx
            .poll("poll right after authorization", &a.device_code)
            .await;
        // RFC 8628 §3.5: slow_down is "a variant of authorization_pending": the grant
        // was taken. Whether the first poll deserves it is PL-05's (a SHOULD).
        expect_error(&mut c, &e, &["authorization_pending", "slow_down"]);
    }
    c.finish("the first poll is authorization_pending (or slow_down: see PL-05)")
}

/// A token request as the configured client with exactly `params`.
async fn token_request(ctx: &Ctx, label: &str, params: &[(&str, &str)]) -> crate::http::Exchange {
    ctx.http
        .post_form(
            label,
            &ctx.target.token_endpoint,
            Some(ctx.client()),
            params,
        )
        .await
}

async fn tr_02(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let e = token_request(&ctx, "no device_code", &[("grant_type", GRANT)]).await;
    expect_error(&mut c, &e, &["invalid_request"]);
    c.finish("invalid_request")
}

async fn tr_03(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let e = token_request(
        &ctx,
        "device_code= (empty)",
        &[("grant_type", GRANT), ("device_code", "")],
    )
    .await;
    expect_error(&mut c, &e, &["invalid_request"]);
    c.finish("invalid_request")
}

async fn tr_04(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedMust);
    let garbage = "deviceflow-conformance-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let e = token_request(
        &ctx,
        "unknown device_code",
        &[("grant_type", GRANT), ("device_code", garbage)],
    )
    .await;
    expect_error(&mut c, &e, &["invalid_grant"]);
    c.finish("invalid_grant")
}

async fn tr_05(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    if ctx.client().is_confidential() {
        return c.skip(
            Status::NotApplicable,
            "the configured client is confidential",
        );
    }
    if let Some(a) = authorize(&ctx, &mut c).await {
        let e = ctx
            .http
            .post_form(
                "poll without client_id",
                &ctx.target.token_endpoint,
                None,
                &[("grant_type", GRANT), ("device_code", &a.device_code)],
            )
            .await;
        expect_error(&mut c, &e, &["invalid_request", "invalid_client"]);
    }
    c.finish("refused without client_id")
}

async fn tr_06(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let Some(conf) = ctx.confidential_client().cloned() else {
        return c.skip(Status::NotApplicable, "no confidential client configured");
    };
    let a = match ctx
        .authorize_as(
            "device authorization (confidential)",
            &conf,
            &ctx.scope_params(),
        )
        .await
    {
        Ok(a) => a,
        Err(e) => {
            c.expect(
                false,
                format!(
                    "the confidential client's device authorization succeeds (got {})",
                    e.brief()
                ),
            );
            c.evidence(*e);
            return c.finish("");
        }
    };
    let alone = Client::public(conf.id.clone());
    let e = ctx
        .poll_as("poll without the secret", &alone, &a.device_code)
        .await;
    expect_error(&mut c, &e, &["invalid_client", "invalid_request"]);
    let wrong = Client {
        method: AuthMethod::Basic,
        secret: Some(crate::client::WRONG_SECRET.into()),
        ..conf.clone()
    };
    let e = ctx
        .poll_as("poll with a wrong Basic secret", &wrong, &a.device_code)
        .await;
    expect_error(&mut c, &e, &["invalid_client"]);
    c.expect(
        e.status() == Some(401),
        format!(
            "a Basic authentication with a wrong secret is HTTP 401 (got {})",
            e.brief()
        ),
    );
    // RFC 9110 §11.6.1: every field line, every challenge in it (see DA-07).
    let challenge = e.header_list("www-authenticate").unwrap_or_default();
    c.expect(
        super::challenges(&e).iter().any(|s| s == "basic"),
        format!("WWW-Authenticate: Basic (got {challenge:?})"),
    );
    let e = ctx
        .poll_as("poll with the right secret", &conf, &a.device_code)
        .await;
    expect_error(&mut c, &e, &["authorization_pending", "slow_down"]);
    c.finish("confidential polls need the secret")
}

/// The most polls TR-07 sends for one of its steps: a slow_down is the pace's answer,
/// not the binding's, so the step is polled again at the new pace, this often at most.
const TR_07_POLLS: usize = 3;

/// TR-07's poll of `a`'s code as `other`, kept at the code's `pace` (RFC 8628 §3.5,
/// CL-01: the interval, plus 5 s per slow_down, between any two polls of the code,
/// whoever sends them: a server may judge the pace before the client binding, as
/// Keycloak does). A slow_down is polled past, at the new pace, while that fits before
/// `deadline`. `None` when the poll is not due before `deadline`; otherwise the last
/// answer, the slow_downs before it recorded as evidence.
async fn tr_07_poll(
    ctx: &Ctx,
    c: &mut Check,
    pace: &mut Pace,
    label: &str,
    other: &Client,
    a: &crate::context::Authorization,
    deadline: Option<Instant>,
) -> Option<crate::http::Exchange> {
    let fits = |d: Duration| {
        deadline.is_some_and(|t| Instant::now().checked_add(d).is_some_and(|at| at <= t))
    };
    let mut tries = 0;
    loop {
        let due = pace.due_in(ctx);
        if !due.is_zero() && !fits(due) {
            return None;
        }
        let why = format!("the interval + 5·{} since the last poll", pace.slow_downs());
        let e = pace
            .poll_as(ctx, "TR-07", label, other, &a.device_code, &why)
            .await;
        tries += 1;
        let slowed = e.error_code().as_deref() == Some("slow_down");
        if !slowed || tries >= TR_07_POLLS || !fits(pace.due_in(ctx)) {
            return Some(e);
        }
        c.evidence(e);
    }
}

async fn tr_07(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedMust);
    let Some(other) = ctx.target.second_client.clone() else {
        return c.skip(
            Status::NotApplicable,
            "no second client configured (--second-client)",
        );
    };
    // The binding is checked against this one other client only: a server may bind
    // codes for confidential clients and not for public ones (or the reverse), so
    // the report says which kind was tried.
    c.measure(
        "other_client",
        if other.is_confidential() {
            "confidential: the binding for a public client polling another's code is not checked (give a public --second-client for it)"
        } else {
            "public: the binding for a confidential client polling another's code is not checked (give a confidential --second-client for it)"
        },
    );
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let deadline = Instant::now().checked_add(ctx.options.max_wait);
    // RFC 8628 §3.5: one pace for the code, over both polls (CL-01).
    let mut pace = Pace::new(&a);
    let label = "(a) the other client polls before approval";
    // The first poll of the code is due at once: always sent.
    let Some(e) = tr_07_poll(&ctx, &mut c, &mut pace, label, &other, &a, deadline).await else {
        return c.finish("");
    };
    if e.error_code().as_deref() == Some("slow_down") {
        c.inconclusive(format!(
            "(a): the server answered slow_down to {TR_07_POLLS} polls kept at its pace (or --max-wait ran out): the client binding was never reached"
        ));
        c.evidence(e);
        return c.finish("");
    }
    expect_error(&mut c, &e, &["invalid_grant"]);
    if !ctx.approver.is_available() {
        c.measure("after_approval", "not checked: no approver");
        c.not_judged("(b) after approval: no approver");
        return c.finish("before approval the other client gets invalid_grant (after approval not checked: no approver)");
    }
    if let Err(why) = ctx.decide(&a, Action::Approve).await {
        approver_failed(&mut c, Action::Approve, &why);
        return c.finish("");
    }
    let label = "(b) the other client polls after approval";
    let Some(e) = tr_07_poll(&ctx, &mut c, &mut pace, label, &other, &a, deadline).await else {
        let wait = pace.wait(&ctx).as_secs_f64();
        c.measure(
            "after_approval",
            format!("not checked: the wait of {wait:.1} s before it exceeds --max-wait"),
        );
        c.not_judged(format!(
            "(b) after approval: the wait of {wait:.1} s at the interval before it exceeds --max-wait"
        ));
        return c.finish("before approval the other client gets invalid_grant (after approval not checked: --max-wait)");
    };
    c.expect(
        !super::grants_access(&e),
        format!("the other client gets no token (got {})", e.brief()),
    );
    if e.error_code().as_deref() == Some("slow_down") {
        c.inconclusive(format!(
            "(b): the server answered slow_down to {TR_07_POLLS} polls kept at its pace (or --max-wait ran out): the client binding was never reached"
        ));
        c.evidence(e);
        return c.finish("");
    }
    expect_error(&mut c, &e, &["invalid_grant"]);
    c.finish("the other client gets invalid_grant before and after approval")
}

async fn tr_08(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    if let Some(a) = authorize(&ctx, &mut c).await {
        let dc = a.device_code.as_str();
        let e = token_request(
            &ctx,
            "device_code twice",
            &[
                ("grant_type", GRANT),
                ("device_code", dc),
                ("device_code", dc),
            ],
        )
        .await;
        expect_error(&mut c, &e, &["invalid_request"]);
        let e = token_request(
            &ctx,
            "grant_type twice",
            &[
                ("grant_type", GRANT),
                ("grant_type", GRANT),
                ("device_code", dc),
            ],
        )
        .await;
        expect_error(&mut c, &e, &["invalid_request"]);
    }
    c.finish("invalid_request")
}

async fn tr_09(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    if let Some(a) = authorize(&ctx, &mut c).await {
        let e = token_request(
            &ctx,
            "an unrecognized parameter",
            &[
                ("grant_type", GRANT),
                ("device_code", &a.device_code),
                ("deviceflow_conformance_unknown", "bar"),
            ],
        )
        .await;
        expect_error(&mut c, &e, &["authorization_pending", "slow_down"]);
    }
    c.finish("ignored: the answer is the normal one")
}

async fn tr_10(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    if let Some(a) = authorize(&ctx, &mut c).await {
        let wrong = format!("{GRANT}X");
        let e = token_request(
            &ctx,
            "grant_type=...device_codeX",
            &[("grant_type", &wrong), ("device_code", &a.device_code)],
        )
        .await;
        expect_error(&mut c, &e, &["unsupported_grant_type"]);
    }
    c.finish("unsupported_grant_type")
}

async fn tr_11(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedShould);
    let Some(client) = ctx.target.unauthorized_client.clone() else {
        return c.skip(
            Status::NotApplicable,
            "no client without the device grant configured (--unauthorized-client)",
        );
    };
    if let Some(a) = authorize(&ctx, &mut c).await {
        let e = ctx
            .poll_as(
                "poll by a client without the grant",
                &client,
                &a.device_code,
            )
            .await;
        expect_error(&mut c, &e, &["unauthorized_client"]);
    }
    c.finish("unauthorized_client")
}

async fn tr_12(ctx: Ctx) -> Verdict {
    // RFC 6749 §3.2: "The client MUST use the HTTP POST method when making access token
    // requests": the client's rule; no text requires a server to refuse a GET
    // (checklist TR-12: Info). One that serves the grant over GET is reported (it takes
    // device codes from URLs), not failed.
    let mut c = Check::new(Level::Info);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let approved = ctx.approver.is_available() && ctx.decide(&a, Action::Approve).await.is_ok();
    let e = get_with_query(
        &ctx,
        if approved {
            "GET with a valid poll's parameters, after approval"
        } else {
            "GET with a valid poll's parameters"
        },
        &ctx.target.token_endpoint,
        ctx.client(),
        &[("grant_type", GRANT), ("device_code", &a.device_code)],
    )
    .await;
    let code = e.error_code().unwrap_or_default();
    let served = super::grants_access(&e) || code == "authorization_pending" || code == "slow_down";
    c.measure("get_status", e.status().unwrap_or(0));
    c.measure("checked_after_approval", approved);
    c.expect(
        !served,
        format!(
            "a GET poll is not served as a token request (got {})",
            e.brief()
        ),
    );
    c.evidence(e);
    c.finish("a GET with a valid poll's parameters is not served")
}

async fn tr_13(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedMust);
    if let Some(a) = authorize(&ctx, &mut c).await {
        let (headers, body) = credentials(
            Some(ctx.client()),
            &[("grant_type", GRANT), ("device_code", &a.device_code)],
        );
        let e = ctx
            .http
            .send(Request {
                label: "poll with charset=UTF-8",
                method: reqwest::Method::POST,
                url: &ctx.target.token_endpoint,
                content_type: Some("application/x-www-form-urlencoded; charset=UTF-8"),
                headers,
                body: Some(body),
            })
            .await;
        expect_error(&mut c, &e, &["authorization_pending", "slow_down"]);
    }
    c.finish("charset accepted")
}
