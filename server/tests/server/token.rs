//! The device access token request and response: checklist A.4 (TR-*) and A.5 (TS-*).

use crate::common::*;

const GRANT: &str = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code";

#[tokio::test]
async fn missing_or_empty_device_code_is_invalid_request() {
    // TR-02, TR-03.
    let s = TestServer::start().await;
    s.post(TOKEN, &format!("{GRANT}&client_id=tv"))
        .await
        .assert_oauth_error(400, "invalid_request");
    s.post(TOKEN, &format!("{GRANT}&client_id=tv&device_code="))
        .await
        .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn unknown_or_garbage_device_code_is_invalid_grant() {
    // TR-04.
    let s = TestServer::start().await;
    for dc in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "x",
        "AvE42AQNCMctgrZl-AOevgShKE6q",
        "%C3%A9",
    ] {
        s.poll("tv", dc)
            .await
            .assert_oauth_error(400, "invalid_grant");
    }
}

#[tokio::test]
async fn a_device_code_is_the_same_code_percent_encoded() {
    // RFC 6749 Appendix B: a form value may encode any byte; the device code decoded
    // is the one issued (TR-01), and a bad escape is a malformed request.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    let encoded: String = da
        .device_code
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    s.poll("tv", &encoded)
        .await
        .assert_oauth_error(400, "authorization_pending");
    let bad = format!("{}%G", &da.device_code[..27]);
    s.poll("tv", &bad)
        .await
        .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn public_poll_without_client_id_is_refused() {
    // TR-05.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    s.post(TOKEN, &format!("{GRANT}&device_code={}", da.device_code))
        .await
        .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn confidential_poll_must_authenticate() {
    // TR-06.
    let s = TestServer::start().await;
    let da = s
        .post(DA, &format!("client_id=conf&client_secret={CONF_SECRET}"))
        .await
        .json();
    let dc = da["device_code"].as_str().unwrap();
    s.post(TOKEN, &format!("{GRANT}&client_id=conf&device_code={dc}"))
        .await
        .assert_oauth_error(401, "invalid_client");
    let wrong = s
        .post_with(
            TOKEN,
            &format!("{GRANT}&device_code={dc}"),
            &[("authorization", &basic("conf", "nope"))],
        )
        .await;
    wrong.assert_oauth_error(401, "invalid_client");
    assert!(wrong
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic"));
    // Basic credentials that do not decode fail the same way: the header was tried.
    let undecodable = s
        .post_with(
            TOKEN,
            &format!("{GRANT}&device_code={dc}"),
            &[("authorization", "Basic !!!")],
        )
        .await;
    undecodable.assert_oauth_error(401, "invalid_client");
    assert!(undecodable
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic"));
    // Two Authorization headers, even both right: neither counts.
    let right = basic("conf", CONF_SECRET);
    let twice = s
        .post_with(
            TOKEN,
            &format!("{GRANT}&device_code={dc}"),
            &[("authorization", &right), ("authorization", &right)],
        )
        .await;
    twice.assert_oauth_error(401, "invalid_client");
    assert!(twice
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic"));
    s.post_with(
        TOKEN,
        &format!("{GRANT}&device_code={dc}"),
        &[("authorization", &basic("conf", CONF_SECRET))],
    )
    .await
    .assert_oauth_error(400, "authorization_pending");
}

#[tokio::test]
async fn another_client_learns_nothing_and_gets_no_token() {
    // TR-07: before and after approval, the other client gets invalid_grant, and the
    // rightful client still gets its token afterwards.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    s.poll("tv-b", &da.device_code)
        .await
        .assert_oauth_error(400, "invalid_grant");
    s.decide(&da.user_code, "approve", "alice").await;
    s.poll("tv-b", &da.device_code)
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert_eq!(s.poll("tv", &da.device_code).await.status, 200);
}

#[tokio::test]
async fn repeated_parameters_are_invalid_requests() {
    // TR-08.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    let dc = &da.device_code;
    s.post(TOKEN, &format!("{}&device_code={dc}", poll_body("tv", dc)))
        .await
        .assert_oauth_error(400, "invalid_request");
    s.post(TOKEN, &format!("{GRANT}&{}", poll_body("tv", dc)))
        .await
        .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn unrecognized_parameters_are_ignored() {
    // TR-09.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    s.post(
        TOKEN,
        &format!("{}&foo=bar", poll_body("tv", &da.device_code)),
    )
    .await
    .assert_oauth_error(400, "authorization_pending");
}

#[tokio::test]
async fn unknown_grant_type_is_unsupported_grant_type() {
    // TR-10.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    s.post(
        TOKEN,
        &format!("{GRANT}X&client_id=tv&device_code={}", da.device_code),
    )
    .await
    .assert_oauth_error(400, "unsupported_grant_type");
    s.post(
        TOKEN,
        "grant_type=password&client_id=tv&username=a&password=b",
    )
    .await
    .assert_oauth_error(400, "unsupported_grant_type");
    s.post(TOKEN, "client_id=tv")
        .await
        .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn client_not_registered_for_the_grant_is_unauthorized_client() {
    // TR-11.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    s.poll("no-device", &da.device_code)
        .await
        .assert_oauth_error(400, "unauthorized_client");
}

#[tokio::test]
async fn get_on_the_token_endpoint_is_405() {
    // TR-12.
    let s = TestServer::start().await;
    let a = s.get(TOKEN).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow"), Some("POST"));
}

#[tokio::test]
async fn approval_yields_a_bearer_token_with_the_requested_scope() {
    // TS-03, TS-04, TS-05, TS-06, TS-12.
    let s = TestServer::start().await;
    let da = s.post(DA, "client_id=tv&scope=openid%20tv").await.json();
    let (dc, uc) = (
        da["device_code"].as_str().unwrap(),
        da["user_code"].as_str().unwrap(),
    );
    s.decide(uc, "approve", "bob").await;
    let a = s.poll("tv", dc).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert_eq!(a.header("pragma"), Some("no-cache"));
    let t = a.json();
    assert!(t["access_token"].as_str().is_some_and(|t| t.len() >= 43));
    assert!(t["token_type"]
        .as_str()
        .unwrap()
        .eq_ignore_ascii_case("bearer"));
    assert!(t["expires_in"].is_u64());
    assert!(t["refresh_token"].is_string());
    assert_eq!(t["scope"], "openid tv");
    // TS-12: the token works and belongs to the approving user.
    let i = s
        .post_with(
            INTROSPECT,
            &format!("token={}", t["access_token"].as_str().unwrap()),
            &[("authorization", &basic("conf", CONF_SECRET))],
        )
        .await
        .json();
    assert_eq!(i["active"], true);
    assert_eq!(i["username"], "bob");
    assert_eq!(i["client_id"], "tv");
    assert_eq!(i["scope"], "openid tv");
}

#[tokio::test]
async fn device_code_is_redeemed_once_and_replay_revokes_what_it_issued() {
    // TS-08, TS-09.
    let s = TestServer::start().await;
    let dc = s.approved("tv").await;
    let token = s.poll("tv", &dc).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let conf = [("authorization", basic("conf", CONF_SECRET))];
    let conf = [(conf[0].0, conf[0].1.as_str())];
    assert_eq!(
        s.post_with(INTROSPECT, &format!("token={token}"), &conf)
            .await
            .json()["active"],
        true
    );
    s.advance_ms(INTERVAL * 1000);
    s.poll("tv", &dc)
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert_eq!(
        s.post_with(INTROSPECT, &format!("token={token}"), &conf)
            .await
            .json()["active"],
        false
    );
}

#[tokio::test]
async fn after_access_denied_no_token_and_no_pending() {
    // TS-07, TS-11.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    s.decide(&da.user_code, "deny", "alice").await;
    for _ in 0..3 {
        s.advance_ms(INTERVAL * 1000);
        s.poll("tv", &da.device_code)
            .await
            .assert_oauth_error(400, "access_denied");
    }
    // A denial is final: it cannot be turned into an approval.
    assert_eq!(
        s.decide(&da.user_code, "approve", "alice").await.status,
        409
    );
}

#[tokio::test]
async fn client_without_refresh_grant_gets_no_refresh_token() {
    let s = TestServer::start().await;
    let dc = s.approved("no-refresh").await;
    let t = s.poll("no-refresh", &dc).await.json();
    assert!(t["access_token"].is_string());
    assert!(t.get("refresh_token").is_none());
}
