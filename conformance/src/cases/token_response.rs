//! A.5: token responses and the device-code state machine (RFC 8628 §3.5;
//! RFC 6749 §5.1, §5.2).

use serde_json::Value;

use super::{
    approved_token, authorize, case, decided, expect_error, expect_success,
    expect_well_formed_error, introspect, poll_until_final,
};
use crate::approver::{Action, NotDecided};
use crate::case::{Case, Check, Level, Status, Verdict};
use crate::context::{Authorization, Ctx};

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "TS-01",
            "rfc8628/3.5/pending-is-authorization-pending",
            "A.5",
            "RFC 8628 §3.5",
            Must,
            None,
            None,
            "While the person has not decided, the answer is 400 authorization_pending",
            ts_01,
            waits = [0]
        ),
        case!(
            "TS-02",
            "rfc6749/5.2/error-bodies",
            "A.5",
            "RFC 6749 §5.2",
            Must,
            None,
            None,
            "Token endpoint errors are JSON objects with a well-formed error",
            ts_02
        ),
        case!(
            "TS-03",
            "rfc8628/3.5/approved-gets-token",
            "A.5",
            "RFC 8628 §3.5",
            Must,
            Approve,
            None,
            "After approval: 200 with access_token and token_type",
            ts_03
        ),
        case!(
            "TS-04",
            "rfc6749/5.1/token-response-no-store",
            "A.5",
            "RFC 6749 §5.1",
            Must,
            Approve,
            None,
            "The token response is Cache-Control: no-store, Pragma: no-cache",
            ts_04
        ),
        case!(
            "TS-05",
            "rfc6749/5.1/granted-scope",
            "A.5",
            "RFC 6749 §5.1",
            Must,
            Approve,
            None,
            "The granted scope is the requested one, or scope says what it is",
            ts_05
        ),
        case!(
            "TS-06",
            "rfc6749/5.1/token-response-types",
            "A.5",
            "RFC 6749 §5.1",
            Must,
            Approve,
            None,
            "Numbers are JSON numbers; token_type is present (any type, any case)",
            ts_06
        ),
        case!(
            "TS-07",
            "rfc8628/3.5/denied-gets-access-denied",
            "A.5",
            "RFC 8628 §3.5",
            Must,
            Deny,
            None,
            "After denial: 400 access_denied",
            ts_07
        ),
        case!(
            "TS-08",
            "rfc8628/3.5/device-code-single-use",
            "A.5",
            "RFC 6749 §4.1.2",
            DerivedMust,
            Approve,
            None,
            "A device code is redeemed at most once",
            ts_08,
            waits = [0]
        ),
        case!(
            "TS-09",
            "rfc6749/4.1.2/replay-revokes-tokens",
            "A.5",
            "RFC 6749 §4.1.2",
            DerivedShould,
            Approve,
            None,
            "Replaying a redeemed device code revokes the tokens issued from it",
            ts_09,
            waits = [0]
        ),
        case!(
            "TS-10",
            "rfc8628/3.5/single-use-under-concurrency",
            "A.5",
            "RFC 6749 §4.1.2",
            DerivedMust,
            Approve,
            None,
            "Ten parallel polls after approval yield exactly one token",
            ts_10
        ),
        case!(
            "TS-11",
            "rfc8628/3.5/denial-is-final",
            "A.5",
            "RFC 8628 §3.5",
            DerivedShould,
            Deny,
            None,
            "After access_denied, later polls never get pending, slow_down or a token",
            ts_11,
            waits = [0, 0, 0]
        ),
        case!(
            "TS-12",
            "rfc8628/3.5/token-works",
            "A.5",
            "RFC 7662 §2.2",
            Info,
            Approve,
            None,
            "The issued access token is active and names the approving user",
            ts_12
        ),
    ]
}

fn token_json(e: &crate::http::Exchange) -> serde_json::Map<String, Value> {
    e.json()
        .value
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

/// Whether `e` issued a token ([`super::issued_token`]).
fn is_token(e: &crate::http::Exchange) -> bool {
    super::issued_token(e)
}

/// An error sent as HTTP 200: what RFC 6749 §5.2 forbids (errors are 400, or 401 for
/// `invalid_client`), and what a token count must not take for a token.
fn is_error_as_200(e: &crate::http::Exchange) -> bool {
    e.status() == Some(200) && !is_token(e) && e.error_code().is_some()
}

fn access_token(e: &crate::http::Exchange) -> String {
    token_json(e)
        .get("access_token")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The cases that check a token by introspection (RFC 7662) need an endpoint and a
/// client allowed to use it; without them they are skipped, saying so.
fn without_introspection(ctx: &Ctx, level: Level) -> Option<Verdict> {
    // Says which is missing: a server that advertises its endpoint needs only the
    // client (review helper-98: "an endpoint and a client" against one that had it).
    let why = match (
        ctx.target.introspection_endpoint.is_some(),
        ctx.target.introspection_client.is_some(),
    ) {
        (true, true) => return None,
        (true, false) => {
            "needs --introspection-client (a client the server lets introspect its endpoint)"
        }
        (false, true) => {
            "needs an introspection endpoint (none advertised: give --introspection-endpoint)"
        }
        (false, false) => "needs an introspection endpoint and --introspection-client",
    };
    Some(Check::new(level).skip(Status::Skip, why))
}

/// Expects the token a case needs (HTTP 200 with an access_token, RFC 6749 §5.1).
/// A poll that got no answer (a timeout, a reset) leaves the case inconclusive: the
/// token is its precondition, and TS-03 judges the token response itself.
fn expect_token(c: &mut Check, e: &crate::http::Exchange) -> bool {
    c.evidence(e.clone());
    if e.response.is_none() && e.not_connected().is_none() {
        c.inconclusive(format!(
            "the token this case needs got no answer ({}): nothing is known of the rule it judges",
            e.brief()
        ));
        return false;
    }
    if super::needed_token_malformed(c, e) {
        return false;
    }
    // RFC 6749 §5.1: the parameters are in a JSON body; a 200 whose body does not
    // parse says why, as TS-03 does.
    let not_json = match (e.status(), e.json().problem) {
        (Some(200), Some(p)) => format!("; the body is not one JSON object: {p}"),
        _ => String::new(),
    };
    c.expect(
        is_token(e),
        format!(
            "a token, HTTP 200 with an access_token (got {}{not_json})",
            e.brief()
        ),
    )
}

async fn ts_01(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    if let Some(a) = authorize(&ctx, &mut c).await {
        // Checklist TS-01: pending "(or slow_down)", its variant (RFC 8628 §3.5); the
        // suite keeps the +5 s of every slow_down it gets (CL-01).
        let mut pace = super::Pace::new(&a);
        let e = pace
            .poll(&ctx, "TS-01", "poll while pending", &a.device_code, "")
            .await;
        expect_error(&mut c, &e, &["authorization_pending", "slow_down"]);
        let why = format!("second poll at the interval + 5·{}", pace.slow_downs());
        let e = pace
            .poll(
                &ctx,
                "TS-01",
                "second poll while pending",
                &a.device_code,
                &why,
            )
            .await;
        expect_error(&mut c, &e, &["authorization_pending", "slow_down"]);
    }
    c.finish("400 authorization_pending (or slow_down), twice")
}

async fn ts_02(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let e = ctx
        .poll("unknown device_code", "deviceflow-conformance-no-such-code")
        .await;
    expect_well_formed_error(&mut c, &e, &["invalid_grant", "invalid_request"]);
    let e = ctx
        .http
        .post_form(
            "grant_type missing",
            &ctx.target.token_endpoint,
            Some(ctx.client()),
            &[("device_code", "x")],
        )
        .await;
    expect_well_formed_error(&mut c, &e, &["invalid_request", "unsupported_grant_type"]);
    if let Some(a) = authorize(&ctx, &mut c).await {
        // RFC 8628 §3.5 (CL-01): the polls after the approval keep the pace from this
        // one, its slow_down counted if it got one.
        let mut pace = super::Pace::new(&a);
        let e = pace
            .poll(&ctx, "TS-02", "pending", &a.device_code, "")
            .await;
        expect_well_formed_error(&mut c, &e, &["authorization_pending", "slow_down"]);
        replay_refusal_is_well_formed(&ctx, &mut c, &a, pace).await;
    }
    c.finish("every error is well formed")
}

/// With an approver: `a` approved and redeemed, then replayed; the refusal (whatever
/// its code: TS-08 judges the code and that no second token comes) must be an RFC 6749
/// §5.2 error, so a refusal sent as HTTP 200 is caught here. Without an approver, or
/// when the approval or the redemption does not happen, this step is only measured:
/// the cases that need them judge those.
async fn replay_refusal_is_well_formed(
    ctx: &Ctx,
    c: &mut Check,
    a: &Authorization,
    mut pace: super::Pace,
) {
    if !ctx.approver.is_available() {
        c.measure("replay_refusal", "not checked: no approver");
        c.not_judged("the refusal of a redeemed code's replay: no approver");
        return;
    }
    // A poll for the token and the replay after it: two waits at the interval.
    let waits = ctx.compliant_wait(a.interval, 0).saturating_mul(2);
    if !ctx.fits_max_wait(waits) {
        c.measure(
            "replay_refusal",
            format!(
                "not checked: two waits at the interval ({} s) exceed --max-wait",
                waits.as_secs()
            ),
        );
        return;
    }
    if let Err(why) = ctx.decide(a, Action::Approve).await {
        c.measure(
            "replay_refusal",
            format!("not checked: approval failed: {why}"),
        );
        c.not_judged(format!(
            "the refusal of a redeemed code's replay: the approver could not approve: {why}"
        ));
        return;
    }
    let polls = super::poll_until_final_paced(ctx, "TS-02", a, ctx.client(), &mut pace).await;
    let redeemed = polls.last().is_some_and(super::grants_access);
    for p in polls {
        c.evidence(p);
    }
    if !redeemed {
        c.measure(
            "replay_refusal",
            "not checked: the approved code gave no token",
        );
        return;
    }
    let replay = pace
        .poll(
            ctx,
            "TS-02",
            "replay of the redeemed device code",
            &a.device_code,
            "replaying",
        )
        .await;
    if super::grants_access(&replay) {
        // A second token: TS-08's finding, not a malformed error.
        c.measure(
            "replay_refusal",
            "not checked: the replay got a token (TS-08)",
        );
        c.evidence(replay);
        return;
    }
    // TS-08 judges the code, and that no second token came.
    expect_well_formed_error(c, &replay, &[]);
}

async fn ts_03(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    if let Some((_, e, _)) = approved_token(&ctx, &mut c, "TS-03").await {
        // RFC 6749 §5.1: 200, application/json, access_token and token_type REQUIRED.
        if expect_success(&mut c, &e, &["access_token", "token_type"]) {
            let t = token_json(&e);
            c.expect_soft(
                t.contains_key("expires_in"),
                "expires_in is present (RECOMMENDED)",
            );
            c.measure("refresh_token_issued", t.contains_key("refresh_token"));
        }
    }
    c.finish("200 with access_token and token_type")
}

async fn ts_04(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    if let Some((_, e, _)) = approved_token(&ctx, &mut c, "TS-04").await {
        if expect_token(&mut c, &e) {
            // RFC 9110 §5.3: every field line of the list, not only the first.
            let cc = e
                .header_list("cache-control")
                .unwrap_or_default()
                .to_ascii_lowercase();
            c.expect(
                cc.split(',').any(|d| d.trim() == "no-store"),
                format!("Cache-Control: no-store (got {cc:?})"),
            );
            let pragma = e
                .header_list("pragma")
                .unwrap_or_default()
                .to_ascii_lowercase();
            c.expect(
                pragma.contains("no-cache"),
                format!("Pragma: no-cache (got {pragma:?})"),
            );
        }
    }
    c.finish("no-store and no-cache")
}

/// A scope no server defines, requested to see what is granted for it.
const UNDEFINED_SCOPE: &str = "deviceflow-conformance-undefined";

fn scopes(s: &str) -> std::collections::BTreeSet<&str> {
    s.split(' ').filter(|s| !s.is_empty()).collect()
}

/// RFC 6749 §5.1: `scope` is "OPTIONAL, if identical to the scope requested by the
/// client; otherwise, REQUIRED"; RFC 6749 §3.3: never more than requested. Checks the
/// token response `e` against `requested`, less `ungrantable` (scopes that cannot have
/// been granted, so `scope` must say what was).
fn expect_granted_within(
    c: &mut Check,
    e: &crate::http::Exchange,
    requested: &str,
    ungrantable: Option<&str>,
) {
    let t = token_json(e);
    let want = scopes(requested);
    match t.get("scope").and_then(Value::as_str) {
        None => {
            c.measure(
                "scope",
                "absent (RFC 6749 §5.1 reads it as identical to the request)",
            );
            if let Some(u) = ungrantable {
                c.expect(
                    false,
                    format!("the token response names the granted scope, since {u:?} cannot be granted (got: no scope member, which RFC 6749 §5.1 reads as all of {requested:?})"),
                );
            }
        }
        Some(granted) => {
            c.measure("scope", granted);
            let got = scopes(granted);
            c.expect(
                got.is_subset(&want) && ungrantable.is_none_or(|u| !got.contains(u)),
                format!(
                    "the granted scope is within the requested {requested:?} (got {granted:?})"
                ),
            );
        }
    }
}

/// TS-05 (a) when the token response names no `scope`: RFC 6749 §5.1 reads that as
/// "identical to the scope requested by the client", and only the token itself can
/// show it is (RFC 7662 §2.2: introspection's `scope`). A server that widened the grant
/// and said nothing fails; one that narrowed it and said nothing fails too (`scope` is
/// "REQUIRED" when it differs). Without introspection, or an introspection that does
/// not say, the part is not judged ([`Check::not_judged`]): no pass by assumption.
/// Returns why it was not judged, if it was not.
async fn expect_unnamed_scope_is_requested(
    ctx: &Ctx,
    c: &mut Check,
    e: &crate::http::Exchange,
    requested: &str,
) -> Option<String> {
    let why_not = match introspect(ctx, &access_token(e)).await {
        None => Some("no introspection endpoint and --introspection-client to see it".to_owned()),
        Some(i) => {
            let v = i.json().value.unwrap_or_default();
            let granted = v.get("scope").and_then(Value::as_str).map(str::to_owned);
            let why_not = if i.status() != Some(200) || v.get("active") != Some(&Value::Bool(true))
            {
                Some(format!(
                    "introspection did not show the token active (got {})",
                    i.brief()
                ))
            } else if let Some(g) = granted {
                c.measure("introspected_scope", g.as_str());
                let (want, got) = (scopes(requested), scopes(&g));
                if c.expect(
                    got.is_subset(&want),
                    format!("the token response names no scope, so RFC 6749 §5.1 reads it as the requested {requested:?}; introspection shows the token's scope within it (got {g:?})"),
                ) {
                    c.expect(
                        got == want,
                        format!("the token response names no scope, so the granted scope is the requested {requested:?}: RFC 6749 §5.1 REQUIRES scope when it differs (introspection got {g:?})"),
                    );
                }
                None
            } else {
                Some("introspection names no scope (RFC 7662 §2.2: OPTIONAL)".to_owned())
            };
            c.evidence_of_a_part(i);
            why_not
        }
    };
    if let Some(why) = &why_not {
        c.measure("granted_scope", format!("not checked: {why}"));
        c.not_judged(format!(
            "(a) the granted scope, which the token response does not name: {why}"
        ));
    }
    why_not
}

async fn ts_05(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    // (a) The configured scope, approved: granted as requested, or narrowed and named.
    let mut unchecked = String::new();
    if let Some(requested) = ctx.target.scope.clone() {
        if let Some((_, e, _)) = approved_token(&ctx, &mut c, "TS-05").await {
            if expect_token(&mut c, &e) {
                expect_granted_within(&mut c, &e, &requested, None);
                let named = token_json(&e)
                    .get("scope")
                    .and_then(Value::as_str)
                    .is_some();
                if !named {
                    if let Some(why) =
                        expect_unnamed_scope_is_requested(&ctx, &mut c, &e, &requested).await
                    {
                        unchecked = format!(" (the granted scope of (a) not checked: {why})");
                    }
                }
            }
        }
    }
    // (b) With a scope no server defines: refused at the request, or, if accepted and
    // approved, never granted.
    let requested = match &ctx.target.scope {
        Some(s) => format!("{s} {UNDEFINED_SCOPE}"),
        None => UNDEFINED_SCOPE.to_owned(),
    };
    match ctx
        .authorize_as(
            "(b) device authorization with an undefined scope",
            ctx.client(),
            &[("scope", &requested)],
        )
        .await
    {
        Err(e) => {
            c.measure(
                "undefined_scope",
                format!("refused: {}", e.error_code().unwrap_or_else(|| e.brief())),
            );
            c.evidence(*e);
        }
        Ok(a) => {
            c.evidence(a.exchange.clone());
            c.measure("undefined_scope", "accepted at the device authorization");
            match ctx.attempt(&a.prompt(), Action::Approve).await {
                Ok(()) => {}
                // RFC 6749 §3.3: the server may refuse a scope it does not define; a
                // refusal at the approval grants nothing, which is all (b) asks.
                Err(NotDecided::Refused(why)) => {
                    c.measure(
                        "undefined_scope",
                        format!(
                            "accepted at the device authorization, refused at the approval: {why}"
                        ),
                    );
                    return c.finish(format!("never more than requested and defined: the undefined scope was refused at the approval{unchecked}"));
                }
                // The approver broke: nothing is known about what would be granted.
                Err(NotDecided::Failed(why)) => {
                    c.inconclusive(format!(
                        "the approver could not approve the request with an undefined scope: {why}"
                    ));
                    return c.finish("");
                }
            }
            let mut polls = poll_until_final(&ctx, "TS-05", &a, ctx.client()).await;
            if let Some(last) = polls.pop() {
                if super::still_pending(&last) {
                    c.measure(
                        "undefined_scope",
                        "accepted at the device authorization and approved; still pending when --max-wait ran out: not judged",
                    );
                } else if !super::grants_access(&last) {
                    // RFC 6749 §5.2 `invalid_scope` at the token endpoint: refused
                    // after the approval, and nothing granted. What (b) asks, said
                    // with what came back (a pass with no check would show nothing).
                    let got = last.error_code().unwrap_or_else(|| last.brief());
                    c.measure(
                        "undefined_scope",
                        format!("accepted at the device authorization and approved, refused at the token endpoint: {got}"),
                    );
                    c.expect(
                        true,
                        format!(
                            "(b) nothing is granted for the undefined scope: the token request after the approval is refused (got {})",
                            last.brief()
                        ),
                    );
                }
                if super::grants_access(&last) {
                    expect_granted_within(&mut c, &last, &requested, Some(UNDEFINED_SCOPE));
                    if let Some(i) = introspect(&ctx, &access_token(&last)).await {
                        let granted = i.json().value.and_then(|v| {
                            v.get("scope").and_then(Value::as_str).map(str::to_owned)
                        });
                        if let Some(g) = granted {
                            c.expect(
                                !scopes(&g).contains(UNDEFINED_SCOPE),
                                format!(
                                    "introspection shows no undefined scope granted (got {g:?})"
                                ),
                            );
                        }
                        c.evidence(i);
                    }
                }
                c.evidence(last);
            }
        }
    }
    c.finish(format!(
        "never more than requested and defined; scope named whenever it differs{unchecked}"
    ))
}

async fn ts_06(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    if let Some((_, e, _)) = approved_token(&ctx, &mut c, "TS-06").await {
        if expect_token(&mut c, &e) {
            let t = token_json(&e);
            if let Some(v) = t.get("expires_in") {
                c.expect(
                    v.is_number(),
                    format!("expires_in is a JSON number (got {v})"),
                );
            }
            // RFC 6749 §5.1: token_type is REQUIRED, "case insensitive"; §7.1 and §8.1:
            // any registered or extension type is legal (a client that does not
            // understand it MUST NOT use the token: the client's rule, not the server's).
            let got = t.get("token_type");
            let tt = got.and_then(Value::as_str).unwrap_or_default();
            c.measure("token_type", tt);
            let present = c.expect(
                !tt.trim().is_empty(),
                format!(
                    "token_type is a non-empty string (got {})",
                    got.map_or("nothing".to_owned(), Value::to_string)
                ),
            );
            if present {
                let known = REGISTERED_TOKEN_TYPES
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(tt.trim()));
                c.measure("token_type_registered", known.is_some());
                if known.is_none() {
                    return c.finish(format!(
                        "well-typed token response; token_type {tt:?} is not one IANA registers ({}; RFC 6749 §5.1 compares them case-insensitively): an extension type is legal (RFC 6749 §8.1), but a device that does not understand it MUST NOT use the token (§7.1)",
                        REGISTERED_TOKEN_TYPES.join(", ")
                    ));
                }
            }
        }
    }
    c.finish("well-typed token response")
}

/// The IANA "OAuth Access Token Types" registry (RFC 6749 §11.1): Bearer (RFC 6750),
/// N_A (RFC 8693), PoP (RFC 9201), DPoP (RFC 9449).
const REGISTERED_TOKEN_TYPES: &[&str] = &["Bearer", "DPoP", "N_A", "PoP"];

async fn ts_07(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    if let Some(a) = decided(&ctx, &mut c, Action::Deny).await {
        let mut polls = poll_until_final(&ctx, "TS-07", &a, ctx.client()).await;
        if let Some(last) = polls.pop() {
            for p in polls {
                c.evidence(p);
            }
            let denied = last.error_code().as_deref() == Some("access_denied");
            expect_error(&mut c, &last, &["access_denied"]);
            // RFC 8628 §3.5: "the authorization request was denied". A token on the
            // next poll grants what the person refused: the denial did not hold
            // (helper-102: it had only warned, as TS-11's pending does). What else
            // later polls get is TS-11's.
            if denied {
                let again = super::Pace::new(&a)
                    .poll(
                        &ctx,
                        "TS-07",
                        "a poll after the denial",
                        &a.device_code,
                        "polling again",
                    )
                    .await;
                c.expect(
                    !super::grants_access(&again),
                    format!(
                        "a poll after the denial gets no token (got {})",
                        again.brief()
                    ),
                );
                c.evidence(again);
            }
        }
    }
    c.finish("access_denied, and no token after it")
}

async fn ts_08(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedMust);
    if let Some((a, e, mut pace)) = approved_token(&ctx, &mut c, "TS-08").await {
        if expect_token(&mut c, &e) {
            let again = pace
                .poll(
                    &ctx,
                    "TS-08",
                    "the same device code again",
                    &a.device_code,
                    "polling again",
                )
                .await;
            if replay_unanswered(&mut c, &again) {
                return c.finish("");
            }
            c.evidence(again.clone());
            // A token is a 200 with an access_token; a refusal sent as 200 is none.
            c.expect(
                !super::grants_access(&again),
                format!(
                    "the replay gets no token, a new one or the same again (got {})",
                    again.brief()
                ),
            );
            let as_200 = is_error_as_200(&again);
            c.expect_soft(
                !as_200,
                if as_200 {
                    format!("the refusal is not sent as HTTP 200 (got {}: an error with HTTP 200 breaks RFC 6749 §5.2, which TS-02 judges)", again.brief())
                } else {
                    "the refusal is not sent as HTTP 200 (RFC 6749 §5.2)".to_owned()
                },
            );
            let code = again.error_code();
            c.expect_soft(
                code.as_deref() == Some("invalid_grant"),
                match code {
                    Some(code) if code != "invalid_grant" => format!(
                        "the replay gets invalid_grant, as recommended (got {code:?}: {})",
                        again.brief()
                    ),
                    Some(_) => "the replay gets invalid_grant, as recommended".to_owned(),
                    None => format!(
                        "the replay gets invalid_grant, as recommended (got no error code: {})",
                        again.brief()
                    ),
                },
            );
        }
    }
    c.finish("the second poll gets invalid_grant")
}

/// Whether the replay of a redeemed code (TS-08, TS-09) got no answer at all (a
/// timeout, a reset): then nothing is known of what a replay does, and the case is
/// inconclusive, recorded in `c` with the exchange.
fn replay_unanswered(c: &mut Check, replay: &crate::http::Exchange) -> bool {
    if replay.response.is_some() || replay.not_connected().is_some() {
        return false;
    }
    c.inconclusive(format!(
        "the replay of the redeemed device code got no answer ({}): what a replay does is unknown",
        replay.brief()
    ));
    c.evidence(replay.clone());
    true
}

/// Whether introspection `i` (RFC 7662 §2.2) says the token is active.
fn introspected_active(i: &crate::http::Exchange) -> bool {
    i.status() == Some(200)
        && i.json()
            .value
            .and_then(|v| v.get("active").and_then(Value::as_bool))
            == Some(true)
}

async fn ts_09(ctx: Ctx) -> Verdict {
    if let Some(skipped) = without_introspection(&ctx, Level::DerivedShould) {
        return skipped;
    }
    let mut c = Check::new(Level::DerivedShould);
    if let Some((a, e, mut pace)) = approved_token(&ctx, &mut c, "TS-09").await {
        if expect_token(&mut c, &e) {
            let token = access_token(&e);
            // Checklist TS-09: a revocation is seen only on a token introspection shows
            // active before the replay; one it never shows active says nothing of it.
            if let Some(before) = introspect(&ctx, &token).await {
                let active = introspected_active(&before);
                if !active {
                    c.inconclusive(format!(
                        "introspection does not show the first token active before the replay, so a revocation by the replay cannot be seen (got {})",
                        before.brief()
                    ));
                }
                c.evidence(before);
                if !active {
                    return c.finish("");
                }
            }
            let replay = pace
                .poll(
                    &ctx,
                    "TS-09",
                    "replay of the redeemed device code",
                    &a.device_code,
                    "replaying",
                )
                .await;
            if replay_unanswered(&mut c, &replay) {
                return c.finish("");
            }
            c.evidence(replay);
            if let Some(i) = introspect(&ctx, &token).await {
                let active = i
                    .json()
                    .value
                    .and_then(|v| v.get("active").and_then(Value::as_bool));
                c.expect(
                    active == Some(false),
                    format!(
                        "after the replay the first token is inactive (got {})",
                        i.brief()
                    ),
                );
                c.evidence(i);
            }
        }
    }
    c.finish("the replay revoked the first token")
}

async fn ts_10(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedMust);
    let Some(a) = decided(&ctx, &mut c, Action::Approve).await else {
        return c.finish("");
    };
    let polls = (0..10).map(|i| {
        let ctx = ctx.clone();
        let dc = a.device_code.clone();
        async move { ctx.poll(&format!("parallel poll {i}"), &dc).await }
    });
    let answers = futures_util::future::join_all(polls).await;
    // A token, malformed or not (TS-03's), is a grant; a refusal sent as 200 is none.
    let tokens = answers.iter().filter(|e| super::grants_access(e)).count();
    let errors_as_200 = answers.iter().filter(|e| is_error_as_200(e)).count();
    c.measure("tokens_from_10_parallel_polls", tokens);
    if errors_as_200 > 0 {
        c.measure("errors_sent_as_200", errors_as_200);
    }
    for e in answers {
        c.evidence(e);
    }
    c.expect(
        tokens == 1,
        format!("exactly 1 of 10 parallel polls gets a token (got {tokens})"),
    );
    c.expect_soft(
        errors_as_200 == 0,
        if errors_as_200 == 0 {
            "no refusal is sent as HTTP 200 (RFC 6749 §5.2)".to_owned()
        } else {
            format!("no refusal is sent as HTTP 200 (got {errors_as_200}: errors with HTTP 200 break RFC 6749 §5.2, which TS-02 judges)")
        },
    );
    c.finish("exactly one token")
}

async fn ts_11(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedShould);
    if let Some(a) = decided(&ctx, &mut c, Action::Deny).await {
        let mut pace = super::Pace::new(&a);
        for i in 0..3 {
            let e = pace
                .poll(
                    &ctx,
                    "TS-11",
                    &format!("poll {} after the denial", i + 1),
                    &a.device_code,
                    "polling again",
                )
                .await;
            let code = e.error_code().unwrap_or_default();
            // RFC 8628 §3.5: slow_down is "a variant of authorization_pending": it tells
            // the device the request is still pending, which a denial no longer is.
            c.expect(
                !super::grants_access(&e) && code != "authorization_pending" && code != "slow_down",
                format!(
                    "poll {} after the denial gets neither pending (nor slow_down) nor a token (got {})",
                    i + 1,
                    e.brief()
                ),
            );
            c.evidence(e);
        }
    }
    c.finish("the denial is final")
}

async fn ts_12(ctx: Ctx) -> Verdict {
    if let Some(skipped) = without_introspection(&ctx, Level::Info) {
        return skipped;
    }
    let mut c = Check::new(Level::Info);
    if let Some((_, e, _)) = approved_token(&ctx, &mut c, "TS-12").await {
        if expect_token(&mut c, &e) {
            let token = access_token(&e);
            if let Some(i) = introspect(&ctx, &token).await {
                let v = i.json().value.unwrap_or_default();
                c.expect(
                    v.get("active") == Some(&Value::Bool(true)),
                    format!("introspection says active (got {})", i.brief()),
                );
                for k in ["username", "sub", "client_id", "scope"] {
                    if let Some(x) = v.get(k) {
                        c.measure(k, x.clone());
                    }
                }
                c.evidence(i);
            }
        }
    }
    c.finish("the token is active")
}
