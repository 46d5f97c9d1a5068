//! The fake's token endpoint: device-code polls (RFC 8628 §3.4-§3.5) and refresh
//! (RFC 6749 §6), and each flaw of their checks, pacing, states and token responses.

use std::time::{Duration, Instant};

use super::{
    authenticate, check_form, ClientDef, Code, Fake, Flaw, FormRules, Refresh, Reply, Req, State,
    Store, EXPIRES_IN, GRANT, INTERVAL, SCOPES, TOLERANCE,
};

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
    // [`Flaw::ScopeWidenedUnnamed`]: the token grants more, as introspection shows.
    let granted = if fake.has(Flaw::ScopeWidenedUnnamed) {
        format!("{scope} admin")
    } else {
        scope.to_owned()
    };
    g.access
        .insert(at.clone(), (true, granted, client.to_owned(), family));
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
        "token_type": if fake.has(Flaw::TokenTypeMac) {
            "mac"
        } else if fake.has(Flaw::TokenTypeEmpty) {
            ""
        } else {
            "Bearer"
        },
        "expires_in": 60,
        "refresh_token": rt,
        "scope": if fake.has(Flaw::ScopeWidened) { format!("{scope} admin") } else { scope.to_owned() },
    });
    let o = t.as_object_mut().unwrap();
    if fake.has(Flaw::TokenMissingTokenType) {
        o.remove("token_type");
    }
    if fake.has(Flaw::AccessTokenEmpty) {
        o.insert("access_token".into(), "".into());
    }
    if fake.has(Flaw::UndefinedScopeGranted) || fake.has(Flaw::ScopeWidenedUnnamed) {
        // Echoes the request by saying nothing (RFC 6749 §5.1: "identical").
        o.remove("scope");
    }
    if !with_refresh {
        o.remove("refresh_token");
    }
    let mut body = t.to_string();
    if fake.has(Flaw::TokenBodyNotJson) {
        body.truncate(body.find(',').unwrap_or(body.len()));
    }
    let status = if fake.has(Flaw::TokenStatus201) {
        201
    } else {
        200
    };
    let mut r = fake.json(status, body, !fake.has(Flaw::NoStoreMissingOnToken));
    if fake.has(Flaw::TokenTextPlain) {
        r.headers_mut()
            .insert("content-type", "text/plain".parse().unwrap());
    }
    (r, at)
}

/// RFC 8628 §3.4-§3.5 (and RFC 6749 §6 for refresh): checks the request, then answers
/// the poll from the device code's state.
pub(super) async fn token(fake: &Fake, req: &Req) -> Reply {
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
    let dc = match req.raw("device_code") {
        None if fake.has(Flaw::HtmlServerError) => {
            return fake.page(500, "<h1>Server Error (500)</h1>".into())
        }
        None => return err("invalid_request"),
        Some("") if !fake.has(Flaw::EmptyDeviceCodeInvalidGrant) => return err("invalid_request"),
        Some(dc) => dc.to_owned(),
    };
    let redeemed = || {
        let g = fake.store.lock().unwrap();
        g.codes.get(&dc).is_some_and(|c| c.state == State::Redeemed)
    };
    if fake.has(Flaw::ReplayHangs) && redeemed() {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
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
    check_form(
        fake,
        req,
        &FormRules {
            get_served: Flaw::GetServedAtToken,
            charset_refused: Flaw::CharsetRefusedAtToken,
            repeats_accepted: Flaw::RepeatsAcceptedAtToken,
            unknown_rejected: Flaw::UnknownParamRejectedAtToken,
            known: &[
                "client_id",
                "client_secret",
                "grant_type",
                "device_code",
                "refresh_token",
                "scope",
            ],
            at_token: true,
        },
    )?;
    let grant = match req.get("grant_type") {
        None if fake.has(Flaw::MissingGrantInvalidGrant) => return err("invalid_grant"),
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
    // Keycloak's order: the pace first, whoever polls; a poll taken starts it again.
    let pace_first = fake.has(Flaw::PaceBeforeClient);
    if pace_first {
        if is_early(fake, code, now) {
            return slow_down(fake, code, now, basic);
        }
        code.last_poll = Some(now);
    }
    if let Some(c) = client {
        if code.client != c.id && !fake.has(Flaw::CrossClient) {
            return err("invalid_grant");
        }
    }
    if fake.has(Flaw::LongIntervalPaceFirst) && is_early(fake, code, now) {
        return slow_down(fake, code, now, basic);
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
    let early = !pace_first && is_early(fake, code, now);
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
        State::Redeemed if fake.has(Flaw::ReplayErrorIs200) => {
            fake.json(200, r#"{"error":"invalid_grant"}"#.into(), true)
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
        State::Denied if fake.has(Flaw::DenialThenSlowDown) && code.told_denied => err("slow_down"),
        State::Denied if fake.has(Flaw::DenialThenToken) && code.told_denied => {
            token_response(fake, g, &owner, &scope, 0, true).0
        }
        State::Denied => {
            code.told_denied = true;
            err("access_denied")
        }
        State::Approved
            if fake.has(Flaw::UndefinedScopeRefusedAtToken)
                && scope
                    .split(' ')
                    .any(|s| !s.is_empty() && !SCOPES.contains(&s)) =>
        {
            err("invalid_scope")
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
