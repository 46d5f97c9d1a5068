//! A hostile reviewer's cases for the token endpoint (RFC 8628 §3.4, RFC 6749 §6),
//! introspection (RFC 7662), revocation (RFC 7009) and the metadata document (RFC 8414):
//! client authentication edge cases, repeated parameters, scope games on refresh,
//! cross-client tokens, and whether the metadata says what the endpoints do.

use serde_json::Value;

use crate::common::*;

const GRANT: &str = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code";

/// The secret of the confidential clients added by [`config`].
const ODD_SECRET: &str = "s:e c+r%t&=";

/// [`test_config`] and three more clients: a confidential one whose `client_id` and
/// secret hold characters that RFC 6749 §2.3.1 makes a client form-urlencode in HTTP
/// Basic; a confidential one registered for `client_secret_post` only; a public one
/// with no scope at all.
fn config() -> String {
    use deviceflow_server::config::sha256_hex;
    format!(
        r#"{}
        [[clients]]
        client_id = "rs:1 +%"
        secret_sha256 = "{secret}"
        scopes = ["openid"]
        [[clients]]
        client_id = "post-only"
        secret_sha256 = "{secret}"
        auth_methods = ["client_secret_post"]
        scopes = ["openid"]
        [[clients]]
        client_id = "bare"
        "#,
        test_config(),
        secret = sha256_hex(ODD_SECRET),
    )
}

/// RFC 6749 Appendix B: what a client does to an id or a secret before it goes into a
/// form body or, RFC 6749 §2.3.1, into HTTP Basic.
fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn conf_basic() -> String {
    basic("conf", CONF_SECRET)
}

async fn introspect(s: &TestServer, token: &str) -> Value {
    let a = s
        .post_with(
            INTROSPECT,
            &format!("token={token}"),
            &[("authorization", &conf_basic())],
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.json()
}

/// A device code of `client_id` for `scope`, approved by alice, redeemed: the token
/// response.
async fn redeemed(s: &TestServer, client_id: &str, scope: &str) -> Value {
    let body = if scope.is_empty() {
        format!("client_id={client_id}")
    } else {
        format!("client_id={client_id}&scope={scope}")
    };
    let da = s.post(DA, &body).await;
    assert_eq!(da.status, 200, "{:?}", da.body);
    let da = da.json();
    let user_code = da["user_code"].as_str().unwrap();
    assert_eq!(s.decide(user_code, "approve", "alice").await.status, 200);
    let t = s.poll(client_id, da["device_code"].as_str().unwrap()).await;
    assert_eq!(t.status, 200, "{:?}", t.body);
    t.json()
}

fn refresh_body(client_id: &str, refresh_token: &str) -> String {
    format!("grant_type=refresh_token&client_id={client_id}&refresh_token={refresh_token}")
}

fn str_of<'a>(v: &'a Value, member: &str) -> &'a str {
    v[member]
        .as_str()
        .unwrap_or_else(|| panic!("{member} in {v}"))
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_before_base64() {
    // RFC 6749 §2.3.1: "The client identifier is encoded using the
    // "application/x-www-form-urlencoded" encoding algorithm per Appendix B, and the
    // encoded value is used as the username; the client password is encoded using the
    // same algorithm and used as the password." (checklist DA-06, TR-06)
    let s = TestServer::start_with(&config()).await;
    let t = redeemed(&s, "tv", "").await;
    let at = str_of(&t, "access_token");
    let right = basic(&encode("rs:1 +%"), &encode(ODD_SECRET));
    let a = s
        .post_with(
            INTROSPECT,
            &format!("token={at}"),
            &[("authorization", &right)],
        )
        .await;
    assert_eq!((a.status, &a.json()["active"]), (200, &Value::Bool(true)));
    // Sent raw, the id's `:` ends it early, and its `%` is a bad escape: the header
    // was tried, so RFC 6749 §5.2: 401 with `WWW-Authenticate` for Basic.
    for raw in [basic("rs:1 +%", ODD_SECRET), basic("rs%3A1 +%", ODD_SECRET)] {
        let a = s
            .post_with(
                INTROSPECT,
                &format!("token={at}"),
                &[("authorization", &raw)],
            )
            .await;
        a.assert_oauth_error(401, "invalid_client");
        assert!(a.header("www-authenticate").unwrap().starts_with("Basic"));
    }
    // The same client in the body: form-urlencoded too (RFC 6749 §2.3.1, Appendix B).
    let a = s
        .post(
            INTROSPECT,
            &format!(
                "client_id={}&client_secret={}&token={at}",
                encode("rs:1 +%"),
                encode(ODD_SECRET)
            ),
        )
        .await;
    assert_eq!((a.status, &a.json()["active"]), (200, &Value::Bool(true)));
}

#[tokio::test]
async fn two_authentication_methods_at_once_are_refused_everywhere() {
    // RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in
    // each request." (checklist DA-11): Basic and a body secret together, even both
    // right, are a malformed request at the token, introspection and revocation
    // endpoints alike.
    let s = TestServer::start().await;
    let t = redeemed(&s, "tv", "").await;
    let at = str_of(&t, "access_token");
    let cases = [
        (
            TOKEN,
            format!("{GRANT}&device_code=x&client_secret={CONF_SECRET}"),
        ),
        (
            INTROSPECT,
            format!("token={at}&client_secret={CONF_SECRET}"),
        ),
        (REVOKE, format!("token={at}&client_secret={CONF_SECRET}")),
    ];
    for (path, body) in cases {
        s.post_with(path, &body, &[("authorization", &conf_basic())])
            .await
            .assert_oauth_error(400, "invalid_request");
    }
    // Nothing was revoked by the refused request.
    assert_eq!(introspect(&s, at).await["active"], true);
}

#[tokio::test]
async fn a_client_authenticates_only_as_it_is_registered_to() {
    // RFC 6749 §5.2 `invalid_client`: "unsupported authentication method"; and a
    // public client has no password to present (RFC 6749 §2.3.1 is for "clients in
    // possession of a client password").
    let s = TestServer::start_with(&config()).await;
    let t = redeemed(&s, "tv", "").await;
    let at = str_of(&t, "access_token");
    // Registered for client_secret_post, presenting the right secret in Basic.
    let a = s
        .post_with(
            INTROSPECT,
            &format!("token={at}"),
            &[("authorization", &basic("post-only", &encode(ODD_SECRET)))],
        )
        .await;
    a.assert_oauth_error(401, "invalid_client");
    assert!(a.header("www-authenticate").unwrap().starts_with("Basic"));
    let ok = s
        .post(
            INTROSPECT,
            &format!(
                "client_id=post-only&client_secret={}&token={at}",
                encode(ODD_SECRET)
            ),
        )
        .await;
    assert_eq!(ok.status, 200);
    // A public client presenting a secret, in the body or in Basic (with an empty
    // password, as some libraries send), is not authenticated by it.
    let rt = str_of(&t, "refresh_token");
    s.post(
        TOKEN,
        &format!("{}&client_secret=anything", refresh_body("tv", rt)),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    let a = s
        .post_with(
            TOKEN,
            &format!("grant_type=refresh_token&refresh_token={rt}"),
            &[("authorization", &basic("tv", ""))],
        )
        .await;
    a.assert_oauth_error(401, "invalid_client");
    assert!(a.header("www-authenticate").unwrap().starts_with("Basic"));
    // Another scheme in the Authorization header is no client authentication; the
    // header was tried, so 401 with a Basic challenge (RFC 6749 §5.2).
    let a = s
        .post_with(
            REVOKE,
            &format!("client_id=tv&token={at}"),
            &[("authorization", &format!("Bearer {at}"))],
        )
        .await;
    a.assert_oauth_error(401, "invalid_client");
    assert!(a.header("www-authenticate").unwrap().starts_with("Basic"));
    // None of that revoked or rotated anything.
    assert_eq!(introspect(&s, at).await["active"], true);
    assert_eq!(s.post(TOKEN, &refresh_body("tv", rt)).await.status, 200);
}

#[tokio::test]
async fn repeated_parameters_are_refused_at_every_token_endpoint() {
    // RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than
    // once." (checklist TR-08), also for an encoded second copy of the name.
    let s = TestServer::start().await;
    let t = redeemed(&s, "tv", "").await;
    let (at, rt) = (str_of(&t, "access_token"), str_of(&t, "refresh_token"));
    let conf = conf_basic();
    let cases = [
        (
            TOKEN,
            format!("{}&grant_type=refresh_token", refresh_body("tv", rt)),
        ),
        (
            TOKEN,
            format!("{}&refresh_token={rt}", refresh_body("tv", rt)),
        ),
        (
            TOKEN,
            format!("{}&scope=openid&sc%6Fpe=openid", refresh_body("tv", rt)),
        ),
        (TOKEN, format!("{}&client_id=tv", refresh_body("tv", rt))),
        (INTROSPECT, format!("token={at}&token={at}")),
        (
            INTROSPECT,
            format!("token={at}&token_type_hint=a&token_type_hint=a"),
        ),
        (REVOKE, format!("client_id=tv&token={at}&t%6Fken={at}")),
        (REVOKE, format!("client_id=tv&client_id=tv&token={at}")),
    ];
    for (path, body) in cases {
        let headers: &[(&str, &str)] = if path == INTROSPECT {
            &[("authorization", &conf)]
        } else {
            &[]
        };
        let a = s.post_with(path, &body, headers).await;
        assert_eq!(
            (a.status, a.error()),
            (400, "invalid_request".to_owned()),
            "{path} {body}"
        );
        a.assert_oauth_error(400, "invalid_request");
    }
    // None of them was acted on.
    assert_eq!(introspect(&s, at).await["active"], true);
    assert_eq!(s.post(TOKEN, &refresh_body("tv", rt)).await.status, 200);
}

#[tokio::test]
async fn grant_type_missing_empty_or_unknown() {
    // RFC 6749 §5.2, RFC 8628 §3.1 ("Parameters sent without a value MUST be treated as
    // if they were omitted"): no grant_type is invalid_request, an unknown one
    // unsupported_grant_type (checklist TR-10); grant types are compared exactly.
    let s = TestServer::start().await;
    for body in [
        "client_id=tv",
        "grant_type=&client_id=tv",
        "grant_type&client_id=tv",
    ] {
        s.post(TOKEN, body)
            .await
            .assert_oauth_error(400, "invalid_request");
    }
    for grant in [
        "client_credentials",
        "authorization_code",
        "REFRESH_TOKEN",
        "refresh_token%20",
        "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3ADEVICE_CODE",
        "%00",
    ] {
        s.post(
            TOKEN,
            &format!("grant_type={grant}&client_id=tv&refresh_token=x&device_code=y"),
        )
        .await
        .assert_oauth_error(400, "unsupported_grant_type");
    }
}

#[tokio::test]
async fn refresh_with_a_scope_of_only_spaces_is_invalid_scope() {
    // RFC 6749 §3.3: `scope = scope-token *( SP scope-token )`, each token one or more
    // characters: a value of spaces alone is no scope at all, and RFC 6749 §5.2
    // `invalid_scope` is "The requested scope is invalid, unknown, or malformed". It
    // must not be read as a request to narrow the grant to nothing.
    let s = TestServer::start().await;
    let t = redeemed(&s, "tv", "openid%20tv").await;
    let rt = str_of(&t, "refresh_token");
    for scope in ["%20", "+", "%20%20+"] {
        s.post(TOKEN, &format!("{}&scope={scope}", refresh_body("tv", rt)))
            .await
            .assert_oauth_error(400, "invalid_scope");
    }
    // The refresh token was not rotated by the refused requests, and keeps its scope.
    let a = s.post(TOKEN, &refresh_body("tv", rt)).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.json()["scope"], "openid tv");
}

/// A grant's refresh exchanges are paced (10 at once, then one each 5 minutes): each
/// exchange leaves records the store keeps (the rotated token's for 30 days), and a
/// client looping on its own token had made Redis keep 2,300 a second (helper-101).
/// The refused exchange is 429 with the wait, not invalid_grant: the token is left as
/// it was, and works once the wait is over; reuse is still caught.
#[tokio::test]
async fn a_grant_s_refresh_exchanges_are_paced_and_the_token_left_working() {
    let s = TestServer::start().await;
    let t = redeemed(&s, "tv", "openid").await;
    let mut rt = str_of(&t, "refresh_token").to_owned();
    let first = rt.clone();
    for i in 0..10 {
        let a = s.post(TOKEN, &refresh_body("tv", &rt)).await;
        assert_eq!(a.status, 200, "exchange {i}: {:?}", a.body);
        rt = str_of(&a.json(), "refresh_token").to_owned();
    }
    let paced = s.post(TOKEN, &refresh_body("tv", &rt)).await;
    paced.assert_oauth_error(429, "temporarily_unavailable");
    let retry: u64 = paced.header("retry-after").unwrap().parse().unwrap();
    assert_eq!(retry, 300, "{:?}", paced.headers);
    let metrics = String::from_utf8_lossy(&s.get("/metrics").await.body).into_owned();
    assert!(
        metrics.contains("deviceflow_throttled_total{limit=\"refresh_per_grant\"} 1"),
        "{metrics}"
    );
    // Not rotated: still active, and exchanged once the wait is over.
    assert_eq!(introspect(&s, &rt).await["active"], true);
    s.advance_ms(retry * 1000);
    let a = s.post(TOKEN, &refresh_body("tv", &rt)).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    // The pace holds back no reuse: the first token, rotated long ago, still takes
    // the whole family down.
    s.post(TOKEN, &refresh_body("tv", &first))
        .await
        .assert_oauth_error(400, "invalid_grant");
    let latest = str_of(&a.json(), "refresh_token").to_owned();
    assert_eq!(introspect(&s, &latest).await["active"], false);
}

#[tokio::test]
async fn refresh_may_narrow_but_never_widen_the_scope() {
    // RFC 6749 §6: "The requested scope MUST NOT include any scope not originally
    // granted by the resource owner, and if omitted is treated as equal to the scope
    // originally granted by the resource owner." A scope the client may ask for at
    // device authorization, but that was not granted, is still a widening.
    let s = TestServer::start().await;
    let t = redeemed(&s, "tv", "openid").await;
    let rt = str_of(&t, "refresh_token");
    for scope in ["openid%20tv", "profile", "tv", "bogus", "open%22id"] {
        s.post(TOKEN, &format!("{}&scope={scope}", refresh_body("tv", rt)))
            .await
            .assert_oauth_error(400, "invalid_scope");
    }
    let a = s
        .post(TOKEN, &format!("{}&scope=openid", refresh_body("tv", rt)))
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.json()["scope"], "openid");
}

#[tokio::test]
async fn a_narrowed_refresh_keeps_the_refresh_token_s_scope() {
    // RFC 6749 §6: "If a new refresh token is issued, the refresh token scope MUST be
    // identical to that of the refresh token included by the client in the request."
    let s = TestServer::start().await;
    let t = redeemed(&s, "tv", "openid%20tv").await;
    let rt = str_of(&t, "refresh_token");
    let narrowed = s
        .post(TOKEN, &format!("{}&scope=openid", refresh_body("tv", rt)))
        .await
        .json();
    assert_eq!(narrowed["scope"], "openid");
    assert_eq!(
        introspect(&s, str_of(&narrowed, "access_token")).await["scope"],
        "openid"
    );
    let rt2 = str_of(&narrowed, "refresh_token");
    assert_eq!(introspect(&s, rt2).await["scope"], "openid tv");
    let again = s.post(TOKEN, &refresh_body("tv", rt2)).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.json()["scope"], "openid tv");
}

#[tokio::test]
async fn a_grant_without_scope_is_answered_without_an_empty_scope() {
    // RFC 6749 §5.1 `scope` is "The scope of the access token as described by Section
    // 3.3", whose syntax has at least one scope-token: `"scope":""` is malformed. A
    // client with no scope gets a grant of none, asked for none: RFC 6749 §5.1 makes
    // `scope` OPTIONAL then ("if identical to the scope requested by the client"),
    // and RFC 7662 §2.2's `scope` is "a space-separated list of scopes" in the same
    // format: both are left out.
    let s = TestServer::start_with(&config()).await;
    let t = redeemed(&s, "bare", "").await;
    assert!(t.get("scope").is_none(), "{t}");
    for token in [str_of(&t, "access_token"), str_of(&t, "refresh_token")] {
        let i = introspect(&s, token).await;
        assert_eq!(i["active"], true);
        assert!(i.get("scope").is_none(), "{i}");
    }
    let r = s
        .post(TOKEN, &refresh_body("bare", str_of(&t, "refresh_token")))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.json().get("scope").is_none(), "{:?}", r.body);
    // A grant with a scope still says it, every time (checklist TS-05).
    let t = redeemed(&s, "tv", "").await;
    assert_eq!(t["scope"], "openid");
}

#[tokio::test]
async fn refresh_tokens_are_bound_to_their_client_whoever_asks() {
    // RFC 6749 §6: the server MUST "validate the refresh token" and "ensure that the
    // refresh token was issued to the authenticated client"; RFC 6749 §10.4. Another
    // public client, a confidential one and a registered one all get invalid_grant, and
    // the token still works for its own client afterwards: another client's attempt
    // rotates nothing.
    let s = TestServer::start_with(&registration_config()).await;
    let t = redeemed(&s, "tv", "").await;
    let (at, rt) = (str_of(&t, "access_token"), str_of(&t, "refresh_token"));
    let registered = s.register_device_app("Other app").await;
    s.post(TOKEN, &refresh_body("tv-b", rt))
        .await
        .assert_oauth_error(400, "invalid_grant");
    s.post(TOKEN, &refresh_body(&registered, rt))
        .await
        .assert_oauth_error(400, "invalid_grant");
    s.post_with(
        TOKEN,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        &[("authorization", &conf_basic())],
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
    // An access token is not a refresh token.
    s.post(TOKEN, &refresh_body("tv", at))
        .await
        .assert_oauth_error(400, "invalid_grant");
    let a = s.post(TOKEN, &refresh_body("tv", rt)).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    // RFC 6749 §5.1: the refresh response carries tokens, so it is not stored.
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert_eq!(a.header("pragma"), Some("no-cache"));
}

#[tokio::test]
async fn another_client_cannot_revoke_a_token_and_is_told_no_more_than_that() {
    // RFC 7009 §2.1: the server "verifies whether the token was issued to the client
    // making the revocation request. If this validation fails, the request is refused
    // and the client is informed of the error". Whatever another client sends, the
    // grant lives. A confidential client is told, every refusal the same answer (not
    // which kind of token, nor whose, nor what the hint was worth); a public one, which
    // anyone may claim to be, gets what an unknown token gets (§2.2): otherwise anyone
    // holding a token would learn whether it is live, which introspection tells
    // confidential clients alone (RFC 7662 §2.1).
    let s = TestServer::start().await;
    let t = redeemed(&s, "tv", "").await;
    let (at, rt) = (str_of(&t, "access_token"), str_of(&t, "refresh_token"));
    let unknown = s.post(REVOKE, "client_id=tv-b&token=unknown").await;
    assert_eq!((unknown.status, unknown.body.is_empty()), (200, true));
    let mut refusals = Vec::new();
    for (token, hint) in [
        (at, "access_token"),
        (rt, "refresh_token"),
        (at, "refresh_token"),
        (rt, "garbage"),
    ] {
        let body = format!("token={token}&token_type_hint={hint}");
        let a = s.post(REVOKE, &format!("client_id=tv-b&{body}")).await;
        assert_eq!((a.status, &a.body), (unknown.status, &unknown.body));
        let a = s
            .post_with(REVOKE, &body, &[("authorization", &conf_basic())])
            .await;
        a.assert_oauth_error(400, "invalid_request");
        refusals.push(a.body);
    }
    assert!(refusals.iter().all(|r| *r == refusals[0]), "{refusals:?}");
    assert_eq!(introspect(&s, at).await["active"], true);
    assert_eq!(introspect(&s, rt).await["active"], true);
}

#[tokio::test]
async fn a_garbage_token_type_hint_does_not_stop_a_revocation() {
    // RFC 7009 §2.1: "If the server is unable to locate the token using the given
    // hint, it MUST extend its search across all of its supported token types."
    let s = TestServer::start().await;
    let t = redeemed(&s, "tv", "").await;
    let (at, rt) = (str_of(&t, "access_token"), str_of(&t, "refresh_token"));
    let a = s
        .post(
            REVOKE,
            &format!("client_id=tv&token={at}&token_type_hint=refresh_token"),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        introspect(&s, at).await,
        serde_json::json!({"active": false})
    );
    let a = s
        .post(
            REVOKE,
            &format!("client_id=tv&token={rt}&token_type_hint=%F0%9F%94%91"),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        introspect(&s, rt).await,
        serde_json::json!({"active": false})
    );
    // RFC 7009 §2.1: revoking the refresh token invalidates the grant; it no longer
    // refreshes.
    s.post(TOKEN, &refresh_body("tv", rt))
        .await
        .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn inactive_tokens_introspect_as_active_false_and_nothing_else() {
    // RFC 7662 §2.2: for a token that is not active, "the authorization server SHOULD
    // NOT include any additional information about an inactive token, including why
    // the token is inactive": expired, revoked, rotated, replaced by reuse detection,
    // unknown, malformed.
    let s = TestServer::start().await;
    let inactive = serde_json::json!({"active": false});
    // Rotated and reused: the whole family.
    let t = redeemed(&s, "tv", "").await;
    let (at1, rt1) = (str_of(&t, "access_token"), str_of(&t, "refresh_token"));
    let t2 = s.post(TOKEN, &refresh_body("tv", rt1)).await.json();
    assert_eq!(introspect(&s, rt1).await, inactive, "rotated");
    s.post(TOKEN, &refresh_body("tv", rt1))
        .await
        .assert_oauth_error(400, "invalid_grant");
    for token in [
        at1,
        str_of(&t2, "access_token"),
        str_of(&t2, "refresh_token"),
    ] {
        assert_eq!(
            introspect(&s, token).await,
            inactive,
            "reuse revoked the family"
        );
    }
    // Revoked.
    let t = redeemed(&s, "tv", "").await;
    let at = str_of(&t, "access_token");
    assert_eq!(
        s.post(REVOKE, &format!("client_id=tv&token={at}"))
            .await
            .status,
        200
    );
    assert_eq!(introspect(&s, at).await, inactive, "revoked");
    // Expired.
    let t = redeemed(&s, "tv", "").await;
    let at = str_of(&t, "access_token");
    s.advance_ms(3_600_000);
    assert_eq!(introspect(&s, at).await, inactive, "expired");
    // Not ours at all: too short, too long, not base64url, base64url with its last
    // bits set (the same 32 bytes could otherwise be written two ways).
    let mut odd = at.to_owned();
    odd.replace_range(42.., "B");
    for token in ["", "x", &"A".repeat(44), &"*".repeat(43), &odd] {
        let a = s
            .post_with(
                INTROSPECT,
                &format!("token={token}&foo=1"),
                &[("authorization", &conf_basic())],
            )
            .await;
        if token.is_empty() {
            a.assert_oauth_error(400, "invalid_request");
        } else {
            assert_eq!(a.json(), inactive, "{token}");
        }
    }
}

#[tokio::test]
async fn introspection_is_for_confidential_clients_only() {
    // RFC 7662 §2.1: "the endpoint MUST also require some form of authorization to
    // access this endpoint". A public client, even the token's own, is refused; so is a
    // confidential client with the wrong secret, or none.
    let s = TestServer::start().await;
    let t = redeemed(&s, "tv", "").await;
    let at = str_of(&t, "access_token");
    for body in [
        format!("client_id=tv&token={at}"),
        format!("client_id=conf&token={at}"),
        format!("client_id=conf&client_secret=wrong&token={at}"),
        format!("client_id=nobody&token={at}"),
    ] {
        s.post(INTROSPECT, &body)
            .await
            .assert_oauth_error(401, "invalid_client");
    }
    s.post(INTROSPECT, &format!("token={at}"))
        .await
        .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn media_type_variants_and_hostile_bodies_get_rfc_errors_never_a_5xx() {
    // RFC 8628 §3.1 / RFC 6749 §3.2: the form media type, "with a character encoding of
    // UTF-8"; media type names and parameter names are case-insensitive (RFC 9110
    // §8.3.1), so the charset parameter in any case is still the form (checklist
    // TR-13).
    let s = TestServer::start().await;
    let t = redeemed(&s, "tv", "").await;
    let rt = str_of(&t, "refresh_token");
    let send = |ct: &'static str, body: Vec<u8>, path: &'static str| {
        let req = s
            .http
            .post(format!("{}{path}", s.base))
            .header("content-type", ct)
            .body(body);
        s.send(req)
    };
    let a = send(
        "APPLICATION/X-WWW-FORM-URLENCODED; CHARSET=UTF-8",
        refresh_body("tv", rt).into_bytes(),
        TOKEN,
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let refused: [(&str, Vec<u8>, &str, u16); 6] = [
        (
            "application/json",
            br#"{"grant_type":"refresh_token"}"#.to_vec(),
            TOKEN,
            400,
        ),
        (
            "application/x-www-form-urlencoded; charset=ISO-8859-1",
            b"client_id=tv&token=x".to_vec(),
            REVOKE,
            400,
        ),
        ("text/plain", b"client_id=tv&token=x".to_vec(), REVOKE, 400),
        (
            "application/x-www-form-urlencoded",
            b"grant_type=refresh_token&client_id=tv&refresh_token=\xff\xfe".to_vec(),
            TOKEN,
            400,
        ),
        (
            "application/x-www-form-urlencoded",
            b"client_id=tv&token=%C3%28".to_vec(),
            REVOKE,
            400,
        ),
        (
            "application/x-www-form-urlencoded",
            vec![b'a'; 1 << 20],
            INTROSPECT,
            413,
        ),
    ];
    for (ct, body, path, status) in refused {
        let a = send(ct, body, path).await;
        a.assert_oauth_error(status, "invalid_request");
    }
}

#[tokio::test]
async fn metadata_says_what_the_endpoints_accept() {
    // RFC 8414 §2 (checklist MD-05): every grant type advertised reaches its grant
    // (never unsupported_grant_type); every client authentication method advertised
    // for the token, revocation and introspection endpoints authenticates there, and
    // a method not advertised for introspection ("none") does not.
    let s = TestServer::start().await;
    let m = s.get(deviceflow_wire::METADATA_PATH).await.json();
    let list = |member: &str| -> Vec<String> {
        m[member]
            .as_array()
            .unwrap_or_else(|| panic!("{member} in {m}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    for grant in list("grant_types_supported") {
        let a = s
            .post(
                TOKEN,
                &format!("grant_type={}&client_id=tv", encode(&grant)),
            )
            .await;
        // Reaching the grant: its own missing parameter is what is refused.
        a.assert_oauth_error(400, "invalid_request");
    }
    let t = redeemed(&s, "tv", "").await;
    let at = str_of(&t, "access_token");
    // A request authenticated by `method` to an endpoint of the metadata, with `form`.
    let attempt = |endpoint: String, method: String, form: String| {
        let (client, secret) = match method.as_str() {
            "none" => ("tv", None),
            _ => ("conf", Some(CONF_SECRET)),
        };
        let mut req = s
            .http
            .post(endpoint)
            .header("content-type", "application/x-www-form-urlencoded");
        let body = match (method.as_str(), secret) {
            ("client_secret_basic", Some(secret)) => {
                req = req.header("authorization", basic(client, secret));
                form
            }
            ("client_secret_post", Some(secret)) => {
                format!("client_id={client}&client_secret={secret}&{form}")
            }
            ("none", None) => format!("client_id={client}&{form}"),
            _ => panic!("an authentication method this test does not know: {method}"),
        };
        s.send(req.body(body))
    };
    for method in list("token_endpoint_auth_methods_supported") {
        let a = attempt(
            str_of(&m, "token_endpoint").to_owned(),
            method.clone(),
            format!("{GRANT}&device_code=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        )
        .await;
        a.assert_oauth_error(400, "invalid_grant");
    }
    for method in list("introspection_endpoint_auth_methods_supported") {
        let a = attempt(
            str_of(&m, "introspection_endpoint").to_owned(),
            method.clone(),
            format!("token={at}"),
        )
        .await;
        assert_eq!(
            (a.status, &a.json()["active"]),
            (200, &Value::Bool(true)),
            "{method}"
        );
    }
    assert!(!list("introspection_endpoint_auth_methods_supported").contains(&"none".into()));
    let a = attempt(
        str_of(&m, "introspection_endpoint").to_owned(),
        "none".into(),
        format!("token={at}"),
    )
    .await;
    a.assert_oauth_error(401, "invalid_client");
    for method in list("revocation_endpoint_auth_methods_supported") {
        let a = attempt(
            str_of(&m, "revocation_endpoint").to_owned(),
            method.clone(),
            "token=unknown".into(),
        )
        .await;
        assert_eq!(a.status, 200, "{method}: {:?}", a.body);
    }
}
