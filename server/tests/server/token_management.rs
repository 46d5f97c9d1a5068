//! Refresh with rotation (RFC 9700 §4.14.2, checklist BCP-01), introspection
//! (RFC 7662) and revocation (RFC 7009).

use crate::common::*;

fn conf() -> [(&'static str, String); 1] {
    [("authorization", basic("conf", CONF_SECRET))]
}

async fn introspect(s: &TestServer, token: &str) -> serde_json::Value {
    let h = conf();
    s.post_with(INTROSPECT, &format!("token={token}"), &[(h[0].0, &h[0].1)])
        .await
        .json()
}

async fn tokens(s: &TestServer) -> (String, String) {
    let dc = s.approved("tv").await;
    let t = s.poll("tv", &dc).await.json();
    (
        t["access_token"].as_str().unwrap().to_owned(),
        t["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    // BCP-01.
    let s = TestServer::start().await;
    let (at1, rt1) = tokens(&s).await;
    let r = s
        .post(
            TOKEN,
            &format!("grant_type=refresh_token&client_id=tv&refresh_token={rt1}"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let t = r.json();
    let (at2, rt2) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    assert_ne!(rt2, rt1);
    assert_eq!(introspect(&s, at2).await["active"], true);
    s.post(
        TOKEN,
        &format!("grant_type=refresh_token&client_id=tv&refresh_token={rt1}"),
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
    assert_eq!(introspect(&s, &at1).await["active"], false);
    assert_eq!(introspect(&s, at2).await["active"], false);
    s.post(
        TOKEN,
        &format!("grant_type=refresh_token&client_id=tv&refresh_token={rt2}"),
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn refresh_is_bound_to_its_client_and_scope() {
    let s = TestServer::start().await;
    let (_, rt) = tokens(&s).await;
    s.post(
        TOKEN,
        &format!("grant_type=refresh_token&client_id=tv-b&refresh_token={rt}"),
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
    s.post(
        TOKEN,
        &format!("grant_type=refresh_token&client_id=tv&refresh_token={rt}&scope=tv"),
    )
    .await
    .assert_oauth_error(400, "invalid_scope");
    s.post(TOKEN, "grant_type=refresh_token&client_id=tv")
        .await
        .assert_oauth_error(400, "invalid_request");
    s.post(
        TOKEN,
        "grant_type=refresh_token&client_id=no-device&refresh_token=x",
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn access_tokens_expire() {
    let s = TestServer::start().await;
    let (at, _) = tokens(&s).await;
    s.advance_ms(3_600_000);
    assert_eq!(introspect(&s, &at).await["active"], false);
}

#[tokio::test]
async fn introspection_needs_a_confidential_client() {
    let s = TestServer::start().await;
    let (at, _) = tokens(&s).await;
    s.post(INTROSPECT, &format!("client_id=tv&token={at}"))
        .await
        .assert_oauth_error(401, "invalid_client");
    s.post(INTROSPECT, &format!("token={at}"))
        .await
        .assert_oauth_error(400, "invalid_request");
    let h = conf();
    s.post_with(INTROSPECT, "", &[(h[0].0, &h[0].1)])
        .await
        .assert_oauth_error(400, "invalid_request");
    assert_eq!(
        introspect(&s, "not-a-token").await,
        serde_json::json!({"active": false})
    );
}

#[tokio::test]
async fn revoking_the_refresh_token_revokes_the_grant() {
    // RFC 7009 §2.1, §2.2.
    let s = TestServer::start().await;
    let (at, rt) = tokens(&s).await;
    // RFC 7009 §2.1: another client's active token is not revoked; a confidential
    // client is told so, a public one (which proves nothing of who it is) gets the
    // answer of an invalid token.
    let h = conf();
    for token in [&rt, &at] {
        let r = s
            .post_with(REVOKE, &format!("token={token}"), &[(h[0].0, &h[0].1)])
            .await;
        r.assert_oauth_error(400, "invalid_request");
        let said = r.json()["error_description"].to_string();
        assert!(said.contains("issued to another client"), "{said}");
        let r = s
            .post(REVOKE, &format!("client_id=tv-b&token={token}"))
            .await;
        assert_eq!((r.status, r.body.is_empty()), (200, true));
    }
    assert_eq!(introspect(&s, &at).await["active"], true);
    let r = s
        .post(
            REVOKE,
            &format!("client_id=tv&token={rt}&token_type_hint=refresh_token"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(introspect(&s, &at).await["active"], false);
    assert_eq!(introspect(&s, &rt).await["active"], false);
    // Inactive now: another client's revocation is of an invalid token, no error
    // (RFC 7009 §2.2), as is an unknown token's.
    assert_eq!(
        s.post_with(REVOKE, &format!("token={rt}"), &[(h[0].0, &h[0].1)])
            .await
            .status,
        200
    );
    assert_eq!(
        s.post(REVOKE, "client_id=tv&token=unknown").await.status,
        200
    );
    s.post(REVOKE, "client_id=tv")
        .await
        .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn admin_endpoint_needs_its_bearer_token() {
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    let body = format!("user_code={}&action=approve&user=alice", da.user_code);
    let a = s.post(ADMIN, &body).await;
    assert_eq!(a.status, 401);
    assert!(a.header("www-authenticate").unwrap().starts_with("Bearer"));
    let a = s
        .post_with(ADMIN, &body, &[("authorization", "Bearer wrong")])
        .await;
    assert_eq!(a.status, 401);
    // The right token sent twice counts as none: the field is not a list.
    let right = format!("Bearer {ADMIN_TOKEN}");
    let a = s
        .post_with(
            ADMIN,
            &body,
            &[("authorization", &right), ("authorization", &right)],
        )
        .await;
    assert_eq!(a.status, 401);
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "authorization_pending");
}

#[tokio::test]
async fn admin_endpoint_explains_bad_decisions() {
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    let lower = da.user_code.to_lowercase().replace('-', " ");
    let cases = [
        (
            format!("user_code={}&action=approve&user=mallory", da.user_code),
            400,
            "unknown_user",
        ),
        (
            format!("user_code={}&action=maybe&user=alice", da.user_code),
            400,
            "invalid_request",
        ),
        (
            "action=approve&user=alice".to_owned(),
            400,
            "invalid_request",
        ),
        (
            "user_code=BBBB-BBBB&action=approve&user=alice".to_owned(),
            404,
            "unknown_user_code",
        ),
    ];
    for (body, status, error) in cases {
        let a = s
            .post_with(
                ADMIN,
                &body,
                &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            )
            .await;
        assert_eq!((a.status, a.error()), (status, error.to_owned()), "{body}");
    }
    // The user code is normalized as a person would type it (RFC 8628 §6.1).
    let ok = s.decide(&lower, "approve", "alice").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["user_code"], da.user_code.as_str());
    assert_eq!(s.decide(&da.user_code, "deny", "alice").await.status, 409);
}

#[tokio::test]
async fn admin_endpoint_is_absent_unless_configured() {
    let config = test_config().replace(&format!("[admin]\n        token = \"{ADMIN_TOKEN}\""), "");
    let s = TestServer::start_with(&config).await;
    let da = s.authorize("tv").await;
    assert_eq!(
        s.decide(&da.user_code, "approve", "alice").await.status,
        404
    );
}
