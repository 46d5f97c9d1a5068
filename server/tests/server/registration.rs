//! Registering applications (issue 13): RFC 7591 dynamic client registration and
//! RFC 7592 read and delete, the admin API, and what deleting a client does to its
//! codes and tokens. The tutorial this project answers starts here: "create a public
//! client, note its client_id".

use deviceflow_wire::GRANT_TYPE_DEVICE_CODE;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

/// Polls until the approved code redeems (the manual clock moves one interval each
/// time) and returns the token response.
async fn redeem(s: &TestServer, client_id: &str, device_code: &str) -> Value {
    s.advance_ms(INTERVAL * 1000);
    let a = s.poll(client_id, device_code).await;
    assert_eq!(a.status, 200, "poll: {:?}", a.body);
    a.json()
}

/// RFC 7662, as the configured confidential client `conf`.
async fn active(s: &TestServer, token: &str) -> bool {
    s.introspect(token).await["active"]
        .as_bool()
        .expect("active")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn registration_is_off_and_unadvertised_unless_an_initial_access_token_is_configured() {
    let s = TestServer::start().await;
    let metadata = s.get(deviceflow_wire::METADATA_PATH).await.json();
    assert_eq!(metadata.get("registration_endpoint"), None, "{metadata}");
    assert_eq!(s.register(&json!({"client_name": "TV"})).await.status, 404);

    let s = TestServer::start_with(&registration_config()).await;
    let metadata = s.get(deviceflow_wire::METADATA_PATH).await.json();
    // RFC 8414 §2 `registration_endpoint`.
    assert_eq!(
        metadata["registration_endpoint"],
        format!("{}{REGISTER}", s.base)
    );
}

#[tokio::test]
async fn rfc7591_round_trip_registers_reads_and_deletes_a_public_device_client() {
    let s = TestServer::start_with(&registration_config()).await;
    let a = s
        .register(&json!({
            "client_name": "Kitchen TV",
            "token_endpoint_auth_method": "none",
            "grant_types": [GRANT_TYPE_DEVICE_CODE, "refresh_token"],
            "scope": "openid tv",
            "logo_uri": "https://example.com/ignored-because-not-understood.png",
        }))
        .await;
    // RFC 7591 §3.2.1: 201, every registered value, and no secret for a public client.
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let v = a.json();
    let client_id = v["client_id"].as_str().unwrap();
    assert_eq!(v["client_name"], "Kitchen TV");
    assert_eq!(v["token_endpoint_auth_method"], "none");
    assert_eq!(
        v["grant_types"],
        json!([GRANT_TYPE_DEVICE_CODE, "refresh_token"])
    );
    assert_eq!(v["scope"], "openid tv");
    assert_eq!(v["client_id_issued_at"], START_MS / 1000);
    assert_eq!(v.get("client_secret"), None);
    assert_eq!(v.get("logo_uri"), None);
    let token = v["registration_access_token"].as_str().unwrap();
    let uri = v["registration_client_uri"].as_str().unwrap();
    assert_eq!(uri, format!("{}{REGISTER}/{client_id}", s.base));
    let path = uri.strip_prefix(&s.base).unwrap();

    // RFC 7592 §2.1: read with the registration access token.
    let read = s
        .call(Method::GET, path, &[("authorization", &bearer(token))])
        .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.json(), v);
    // HEAD reads it too, its head alone (RFC 9110 §9.1).
    let head = s
        .call(Method::HEAD, path, &[("authorization", &bearer(token))])
        .await;
    assert_eq!((head.status, head.body.len()), (200, 0));
    // A wrong token, or none, is 401 invalid_token with a Bearer challenge; RFC 6750
    // §3.1: its error code only where a token was presented.
    for auth in [bearer("not-the-token"), bearer(INITIAL_TOKEN)] {
        let refused = s.call(Method::GET, path, &[("authorization", &auth)]).await;
        refused.assert_oauth_error(401, "invalid_token");
        assert_eq!(
            refused.header("www-authenticate"),
            Some(r#"Bearer realm="deviceflow", error="invalid_token""#)
        );
    }
    let none = s.call(Method::GET, path, &[]).await;
    none.assert_oauth_error(401, "invalid_token");
    assert_eq!(
        none.header("www-authenticate"),
        Some(r#"Bearer realm="deviceflow""#)
    );
    // One slash before the client_id: `//{client_id}` names none.
    let doubled = path.replace(&format!("/{client_id}"), &format!("//{client_id}"));
    s.call(Method::GET, &doubled, &[("authorization", &bearer(token))])
        .await
        .assert_oauth_error(401, "invalid_token");
    // RFC 7592 §2.2 update is not offered.
    let put = s
        .call(Method::PUT, path, &[("authorization", &bearer(token))])
        .await;
    assert_eq!(
        (put.status, put.header("allow")),
        (405, Some("GET, HEAD, DELETE"))
    );

    // The client works: a device authorization names it.
    assert_eq!(
        s.post(DA, &format!("client_id={client_id}")).await.status,
        200
    );

    // RFC 7592 §2.3: delete, 204; then the client is unknown everywhere.
    let deleted = s
        .call(Method::DELETE, path, &[("authorization", &bearer(token))])
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    s.call(Method::GET, path, &[("authorization", &bearer(token))])
        .await
        .assert_oauth_error(401, "invalid_token");
    s.post(DA, &format!("client_id={client_id}"))
        .await
        .assert_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn registration_needs_the_initial_access_token() {
    let s = TestServer::start_with(&registration_config()).await;
    let metadata = json!({"token_endpoint_auth_method": "none"});
    // RFC 6750 §3.1: no bearer token at all (none, or another scheme) is challenged
    // without an error code; a wrong one with `invalid_token`.
    for (headers, challenge) in [
        (vec![], r#"Bearer realm="deviceflow""#),
        (
            vec![("authorization", "Bearer wrong-initial-access-token")],
            r#"Bearer realm="deviceflow", error="invalid_token""#,
        ),
        (
            vec![("authorization", "Basic dGVzdDp0ZXN0")],
            r#"Bearer realm="deviceflow""#,
        ),
    ] {
        let a = s.post_json(REGISTER, &metadata, &headers).await;
        a.assert_oauth_error(401, "invalid_token");
        assert_eq!(a.header("www-authenticate"), Some(challenge), "{headers:?}");
    }
    let get = s.get(REGISTER).await;
    assert_eq!((get.status, get.header("allow")), (405, Some("POST")));
}

#[tokio::test]
async fn invalid_client_metadata_is_refused_with_rfc7591_errors_naming_the_field() {
    let s = TestServer::start_with(&registration_config()).await;
    let cases = [
        (
            json!({"grant_types": ["authorization_code"]}),
            "authorization_code",
        ),
        (json!({"grant_types": ["refresh_token"]}), "must include"),
        (json!({"grant_types": "refresh_token"}), "grant_types"),
        (
            json!({"token_endpoint_auth_method": "private_key_jwt"}),
            "private_key_jwt",
        ),
        (json!({"scope": "openid admin"}), "admin"),
        (json!({"scope": "bad\"scope"}), "scope"),
        (json!({"client_name": ""}), "client_name"),
        (json!({"client_name": "x".repeat(101)}), "client_name"),
        (json!({"client_name": 7}), "client_name"),
        (json!(["not", "an", "object"]), "JSON"),
    ];
    for (metadata, named) in cases {
        let a = s.register(&metadata).await;
        // RFC 7591 §3.2.2: 400 with `invalid_client_metadata`.
        a.assert_oauth_error(400, "invalid_client_metadata");
        let why = a.json()["error_description"].as_str().unwrap().to_owned();
        assert!(why.contains(named), "{metadata}: {why}");
    }
    // Not JSON at all.
    let a = register_raw(&s, "application/x-www-form-urlencoded", "client_name=TV").await;
    a.assert_oauth_error(400, "invalid_client_metadata");
    let a = register_raw(&s, "application/json", "{\"client_name\":").await;
    a.assert_oauth_error(400, "invalid_client_metadata");
    // RFC 8259 §8.1: JSON is UTF-8. Declared otherwise, it is refused saying so, not
    // read (an ASCII body would have parsed, a Latin-1 one failed as "invalid unicode").
    let a = register_raw(
        &s,
        "application/json; charset=ISO-8859-1",
        "{\"client_name\":\"TV\",\"token_endpoint_auth_method\":\"none\"}",
    )
    .await;
    a.assert_oauth_error(400, "invalid_client_metadata");
    let why = a.json()["error_description"].as_str().unwrap().to_owned();
    assert!(why.contains("JSON body must be UTF-8 (RFC 8259"), "{why}");
    let a = register_raw(
        &s,
        "application/json; charset=\"utf-8\"",
        "{\"client_name\":\"TV\",\"token_endpoint_auth_method\":\"none\"}",
    )
    .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let deleted = s.delete_app(a.json()["client_id"].as_str().unwrap()).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    // Nothing was registered by any of them.
    assert_nothing_registered(&s).await;
}

#[tokio::test]
async fn a_dynamically_registered_public_client_completes_a_device_flow_and_refreshes() {
    let s = TestServer::start_with(&registration_config()).await;
    let client_id = s.register_device_app("Kitchen TV").await;
    let code = s.approved(&client_id).await;
    let tokens = redeem(&s, &client_id, &code).await;
    // RFC 6749 §3.3: no scope asked, the client's registered scope is granted.
    assert_eq!(tokens["scope"], "openid tv");
    assert!(active(&s, tokens["access_token"].as_str().unwrap()).await);
    let refreshed = s
        .post(
            TOKEN,
            &format!(
                "grant_type=refresh_token&client_id={client_id}&refresh_token={}",
                tokens["refresh_token"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    // Another client cannot redeem its refresh token (RFC 6749 §6).
    s.post(
        TOKEN,
        &format!(
            "grant_type=refresh_token&client_id=tv&refresh_token={}",
            refreshed.json()["refresh_token"].as_str().unwrap()
        ),
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn a_registered_confidential_client_authenticates_with_its_secret_and_its_method_only() {
    let s = TestServer::start_with(&registration_config()).await;
    let a = s
        .register(&json!({"client_name": "Printer", "scope": "openid"}))
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let v = a.json();
    // RFC 7591 §2: client_secret_basic when the method is omitted; the device code
    // grant substitutes for the omitted authorization_code.
    assert_eq!(v["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(v["grant_types"], json!([GRANT_TYPE_DEVICE_CODE]));
    assert_eq!(v["client_secret_expires_at"], 0);
    let (id, secret) = (
        v["client_id"].as_str().unwrap(),
        v["client_secret"].as_str().unwrap(),
    );
    let da = s
        .post_with(DA, "", &[("authorization", &basic(id, secret))])
        .await;
    assert_eq!(da.status, 200, "{:?}", da.body);
    s.post_with(DA, "", &[("authorization", &basic(id, "wrong"))])
        .await
        .assert_oauth_error(401, "invalid_client");
    // Registered for Basic only: the secret in the body is refused (RFC 6749 §2.3).
    s.post(DA, &format!("client_id={id}&client_secret={secret}"))
        .await
        .assert_oauth_error(401, "invalid_client");
    s.post(DA, &format!("client_id={id}"))
        .await
        .assert_oauth_error(401, "invalid_client");
}

/// RFC 7662 §4: a protected resource SHOULD be specifically authorized to introspect.
/// A registered confidential client (anyone with the initial access token can make
/// one) is told of its own tokens only; another client's active token is `active:
/// false` to it (§2.2), and revoking it is a 200 that revokes nothing (RFC 7009 §2.2),
/// while the configured confidential client sees both. Failed before: the registered
/// client read another client's token, username and scope, and revocation said the
/// token was live.
#[tokio::test]
async fn a_registered_client_introspects_its_own_tokens_and_no_one_else_s() {
    let s = TestServer::start_with(&registration_config()).await;
    let v = s
        .register(&json!({"client_name": "Printer", "scope": "openid"}))
        .await
        .json();
    let auth = basic(
        v["client_id"].as_str().unwrap(),
        v["client_secret"].as_str().unwrap(),
    );
    let da: Value = s
        .post_with(DA, "", &[("authorization", &auth)])
        .await
        .json();
    let user_code = da["user_code"].as_str().unwrap();
    assert_eq!(s.decide(user_code, "approve", "alice").await.status, 200);
    s.advance_ms(INTERVAL * 1000);
    let own = s
        .post_with(
            TOKEN,
            &format!(
                "grant_type={}&device_code={}",
                GRANT_TYPE_DEVICE_CODE,
                da["device_code"].as_str().unwrap()
            ),
            &[("authorization", &auth)],
        )
        .await
        .json();
    let own = own["access_token"].as_str().expect("a token").to_owned();
    let code = s.approved("tv").await;
    let others = redeem(&s, "tv", &code).await;
    let others = others["access_token"].as_str().unwrap();

    let by_registered = |token: String| {
        let auth = auth.clone();
        let s = &s;
        async move {
            s.post_with(
                INTROSPECT,
                &format!("token={token}"),
                &[("authorization", &auth)],
            )
            .await
            .json()
        }
    };
    let mine = by_registered(own.clone()).await;
    assert_eq!(
        (mine["active"].as_bool(), mine["username"].as_str()),
        (Some(true), Some("alice"))
    );
    assert_eq!(
        by_registered(others.to_owned()).await,
        json!({"active": false})
    );
    // Nor does revocation tell it (RFC 7009 §2.2: 200), and the token stays live.
    let revoked = s
        .post_with(
            REVOKE,
            &format!("token={others}"),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    // The configured confidential client, the operator's resource server, sees both.
    assert!(active(&s, &own).await && active(&s, others).await);
}

#[tokio::test]
async fn a_deleted_client_s_codes_fail_as_invalid_client_and_its_tokens_turn_inactive() {
    let s = TestServer::start_with(&registration_config()).await;
    let a = s
        .register(&json!({
            "token_endpoint_auth_method": "none",
            "grant_types": [GRANT_TYPE_DEVICE_CODE, "refresh_token"],
        }))
        .await;
    let v = a.json();
    let client_id = v["client_id"].as_str().unwrap().to_owned();
    let path = v["registration_client_uri"]
        .as_str()
        .unwrap()
        .strip_prefix(&s.base)
        .unwrap()
        .to_owned();
    let token = v["registration_access_token"].as_str().unwrap().to_owned();

    let code = s.approved(&client_id).await;
    let tokens = redeem(&s, &client_id, &code).await;
    let (access, refresh) = (
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    );
    let pending = s.authorize(&client_id).await;
    let approved = s.approved(&client_id).await;
    let decided = s.authorize(&client_id).await;
    assert_eq!(
        s.decide(&decided.user_code, "deny", "alice").await.status,
        200
    );
    assert!(active(&s, access).await && active(&s, refresh).await);

    let deleted = s
        .call(Method::DELETE, &path, &[("authorization", &bearer(&token))])
        .await;
    assert_eq!(deleted.status, 204);

    s.advance_ms(INTERVAL * 1000);
    for code in [&pending.device_code, &approved] {
        s.poll(&client_id, code)
            .await
            .assert_oauth_error(401, "invalid_client");
    }
    s.post(
        TOKEN,
        &format!("grant_type=refresh_token&client_id={client_id}&refresh_token={refresh}"),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    assert!(!active(&s, access).await, "the access token is inactive");
    assert!(!active(&s, refresh).await, "the refresh token is inactive");
    // Inactive, so another client's revocation of them is of invalid tokens: 200
    // (RFC 7009 §2.2), not "issued to another client", which would tell that the dead
    // client's tokens are still stored.
    for t in [access, refresh] {
        let r = s
            .post_with(
                REVOKE,
                &format!("token={t}"),
                &[("authorization", &basic("conf", CONF_SECRET))],
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    // An admin decision on its pending code is refused, as the consent page refuses
    // it: nothing could redeem it (above), and the admin had been told "approved".
    let refused = s.decide(&pending.user_code, "approve", "alice").await;
    assert_eq!(
        (refused.status, refused.json()["error"].as_str()),
        (410, Some("deleted_client")),
        "{:?}",
        refused.body
    );
    // One decided before is answered as decided.
    let again = s.decide(&decided.user_code, "approve", "alice").await;
    assert_eq!(
        (again.status, again.json()["error"].as_str()),
        (409, Some("already_decided")),
        "{:?}",
        again.body
    );
}

#[tokio::test]
async fn client_ids_are_never_given_twice_even_after_a_deletion() {
    let s = TestServer::start_with(&registration_config()).await;
    let first = s.register_device_app("first").await;
    let deleted = s.delete_app(&first).await;
    assert_eq!(deleted.status, 204);
    let second = s.register_device_app("second").await;
    let index = |id: &str| id[3..id.find('-').unwrap()].parse::<u32>().unwrap();
    assert!(index(&second) > index(&first), "{first} then {second}");
}

#[tokio::test]
async fn the_admin_api_rotates_a_secret_and_leaves_configured_clients_alone() {
    let s = TestServer::start().await;
    let admin = bearer(ADMIN_TOKEN);
    let auth = [("authorization", admin.as_str())];
    let a = s
        .post_json(
            ADMIN_CLIENTS,
            &json!({"client_name": "Printer", "token_endpoint_auth_method": "client_secret_post"}),
            &auth,
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let v = a.json();
    // An administrator's client has no registration access token (RFC 7592 is for
    // clients that registered themselves).
    assert_eq!(v.get("registration_access_token"), None);
    let (id, old) = (
        v["client_id"].as_str().unwrap(),
        v["client_secret"].as_str().unwrap(),
    );
    let da = |secret: &str| format!("client_id={id}&client_secret={secret}");
    assert_eq!(s.post(DA, &da(old)).await.status, 200);

    let rotated = s
        .post_json(&format!("{ADMIN_CLIENTS}/{id}/secret"), &json!({}), &auth)
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new = rotated.json()["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    s.post(DA, &da(old))
        .await
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(s.post(DA, &da(&new)).await.status, 200);

    let public = s
        .post_json(
            ADMIN_CLIENTS,
            &json!({"token_endpoint_auth_method": "none"}),
            &auth,
        )
        .await
        .json();
    let public = public["client_id"].as_str().unwrap();
    for (path, method, status, error) in [
        (
            format!("{ADMIN_CLIENTS}/{public}/secret"),
            Method::POST,
            409,
            "public_client",
        ),
        (
            format!("{ADMIN_CLIENTS}/conf/secret"),
            Method::POST,
            409,
            "configured_client",
        ),
        (
            format!("{ADMIN_CLIENTS}/conf"),
            Method::DELETE,
            409,
            "configured_client",
        ),
        (
            format!("{ADMIN_CLIENTS}/dfc99-nobody"),
            Method::DELETE,
            404,
            "unknown_client",
        ),
    ] {
        let a = s.call(method, &path, &auth).await;
        assert_eq!((a.status, a.error().as_str()), (status, error), "{path}");
        if error == "configured_client" {
            // Not "change it in the TOML file": the demo defaults have none (helper-85).
            let why = a.json()["error_description"].as_str().unwrap().to_owned();
            assert!(why.contains("or its embedded demo defaults"), "{why}");
        }
    }
    // The configured client still works.
    let conf = s
        .post_with(DA, "", &[("authorization", &basic("conf", CONF_SECRET))])
        .await;
    assert_eq!(conf.status, 200);
    let no_token = s.call(Method::GET, ADMIN_CLIENTS, &[]).await;
    assert_eq!(
        (no_token.status, no_token.error().as_str()),
        (401, "invalid_token")
    );
    let put = s.call(Method::PUT, ADMIN_CLIENTS, &auth).await;
    assert_eq!(
        (put.status, put.header("allow")),
        (405, Some("GET, HEAD, POST"))
    );
}

#[tokio::test]
async fn a_repeated_metadata_member_is_refused_not_guessed() {
    // RFC 8259 §4: a repeated name means what each parser guesses. Here the first
    // value asks for a confidential client, the last for a public one: a check in
    // front of the server that reads the first would pass what the server read last.
    let s = TestServer::start_with(&registration_config()).await;
    let body = r#"{"client_name":"TV","token_endpoint_auth_method":"client_secret_basic","token_endpoint_auth_method":"none"}"#;
    let send = |path: &str, token: &str| {
        s.http
            .post(format!("{}{path}", s.base))
            .header("authorization", bearer(token))
            .header("content-type", "application/json")
            .body(body)
    };
    let a = s.send(send(REGISTER, INITIAL_TOKEN)).await;
    // RFC 7591 §3.2.2: 400 `invalid_client_metadata`.
    a.assert_oauth_error(400, "invalid_client_metadata");
    let why = a.json()["error_description"].as_str().unwrap().to_owned();
    assert!(why.contains("token_endpoint_auth_method"), "{why}");
    assert!(why.contains("more than once"), "{why}");
    let a = s.send(send(ADMIN_CLIENTS, ADMIN_TOKEN)).await;
    // The admin API reads the same metadata, and refuses it with the same code.
    a.assert_oauth_error(400, "invalid_client_metadata");
    assert!(
        a.json()["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("token_endpoint_auth_method")),
        "{:?}",
        a.body
    );
    // Nothing was registered; the same member once is fine.
    assert_nothing_registered(&s).await;
    let once = s
        .register(&json!({"client_name": "TV", "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(once.status, 201, "{:?}", once.body);
}

#[tokio::test]
async fn metadata_that_opens_with_a_byte_order_mark_is_read() {
    // RFC 8259 §8.1: parsers MAY ignore a byte order mark; PowerShell and Notepad
    // write one, and it had been refused as "expected value at line 1 column 1".
    let s = TestServer::start_with(&registration_config()).await;
    let body = "\u{feff}{\"client_name\":\"TV\",\"token_endpoint_auth_method\":\"none\"}";
    let a = register_raw(&s, "application/json", body).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.json()["client_name"], "TV");
}

/// RFC 8628 §5.4: the person approving reads the client's name on the consent page, so
/// a registrant could pass for another by registering its name. Only configured names
/// were held back: "Kitchen TV" registered twice showed two "Kitchen TV"s, one of them
/// the second registrant's. Refused now through RFC 7591 and the admin API alike, until
/// the first is deleted.
#[tokio::test]
async fn a_name_that_reads_as_a_registered_applications_is_refused_until_it_is_deleted() {
    let s = TestServer::start_with(&registration_config()).await;
    let metadata = |name: &str| json!({"client_name": name, "token_endpoint_auth_method": "none"});
    let first = s.register(&metadata("Kitchen TV")).await;
    assert_eq!(first.status, 201);
    let admin = bearer(ADMIN_TOKEN);
    for name in [
        "Kitchen TV",
        "kitchen-tv",
        "K\u{456}tchen TV",
        "KITCHEN \u{422}V",
    ] {
        for a in [
            s.register(&metadata(name)).await,
            s.post_json(ADMIN_CLIENTS, &metadata(name), &[("authorization", &admin)])
                .await,
        ] {
            a.assert_oauth_error(400, "invalid_client_metadata");
            let why = a.json()["error_description"].as_str().unwrap().to_owned();
            assert!(
                why.contains("reads as 'Kitchen TV'") && why.contains("already registered"),
                "{name}: {why}"
            );
        }
    }
    assert_eq!(s.register(&metadata("Kitchen TV 2")).await.status, 201);
    // A client given no name is named by its client_id, which no other name may read as.
    let unnamed = s
        .register(&json!({"token_endpoint_auth_method": "none"}))
        .await;
    let unnamed_id = unnamed.json()["client_id"].as_str().unwrap().to_owned();
    s.register(&metadata(&unnamed_id.to_uppercase()))
        .await
        .assert_oauth_error(400, "invalid_client_metadata");
    // Deleted (RFC 7592 §2.3), its name is free again.
    let first = first.json();
    let deleted = s
        .call(
            Method::DELETE,
            first["registration_client_uri"]
                .as_str()
                .unwrap()
                .strip_prefix(&s.base)
                .unwrap(),
            &[(
                "authorization",
                &bearer(first["registration_access_token"].as_str().unwrap()),
            )],
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(s.register(&metadata("kitchen-tv")).await.status, 201);
}

/// The store gives a name's keys to one client at a time, all of them or none, on both
/// backends: what makes two registrations of one name at the same moment, through two
/// instances, keep one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_gives_a_name_to_one_client_at_a_time() {
    use deviceflow_server::accounts::registration::NameKeys;
    use deviceflow_server::protocol::ids::ClientId;
    use deviceflow_server::protocol::ids::FIRST_REGISTERED;
    use deviceflow_server::{FileConfig, MemoryStore, RedisStore, Settings, Store};

    async fn check<S: Store>(store: S) {
        let (a, b) = (ClientId(FIRST_REGISTERED), ClientId(FIRST_REGISTERED + 1));
        let radio = NameKeys::of("Radio TV");
        // Reads as "Radio TV" in upper case only: one key of three in common.
        let radi0 = NameKeys::of("RADI0 TV");
        assert!(radio.meet(&radi0));
        assert_eq!(store.client_named(&radio).await.unwrap(), []);
        assert_eq!(store.claim_client_name(&radio, a).await.unwrap(), None);
        assert_eq!(
            store.claim_client_name(&radio, a).await.unwrap(),
            None,
            "again"
        );
        assert_eq!(store.claim_client_name(&radi0, b).await.unwrap(), Some(a));
        assert_eq!(store.client_named(&radi0).await.unwrap(), [a]);
        // Only the holder gives keys back.
        store.release_client_name(&radio, b).await.unwrap();
        assert_eq!(store.client_named(&radio).await.unwrap(), [a]);
        store.release_client_name(&radio, a).await.unwrap();
        // Refused, b was given none of its keys, the two it did not share either.
        assert_eq!(store.client_named(&radi0).await.unwrap(), []);
        assert_eq!(store.client_named(&radio).await.unwrap(), []);
        assert_eq!(store.claim_client_name(&radi0, b).await.unwrap(), None);
        assert_eq!(store.claim_client_name(&radio, a).await.unwrap(), Some(b));
    }

    let settings = Settings::from_file(FileConfig::parse(&test_config(), "test").unwrap()).unwrap();
    check(MemoryStore::new(&settings.store_settings())).await;
    let redis = deviceflow_testkit::RedisServer::start().unwrap();
    check(
        RedisStore::connect(&redis.url(), &settings.store_settings())
            .await
            .unwrap(),
    )
    .await;
}

/// An RFC 7591 registration request with the initial access token and this body, sent
/// as it is.
async fn register_raw(s: &TestServer, content_type: &str, body: &'static str) -> Answer {
    s.send(
        s.http
            .post(format!("{}{REGISTER}", s.base))
            .header("authorization", bearer(INITIAL_TOKEN))
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

/// Only the configured clients are listed: nothing was registered.
async fn assert_nothing_registered(s: &TestServer) {
    let list = s
        .call(
            Method::GET,
            ADMIN_CLIENTS,
            &[("authorization", &bearer(ADMIN_TOKEN))],
        )
        .await
        .json();
    let clients = list["clients"].as_array().unwrap();
    assert!(
        clients.iter().all(|c| c["source"] == "configuration"),
        "{clients:?}"
    );
}

/// The name is what the person approving reads (RFC 8628 §5.4). A line separator
/// broke it in two; a tag character, an interlinear annotation, a Mongolian vowel
/// separator or a deprecated format character hid text or showed nothing; a
/// private-use character shows what the reader's font puts there (U+F8FF is a logo on
/// some systems); a Braille blank or combining marks alone show an empty name. All
/// were registered, through both doors.
#[tokio::test]
async fn names_that_hide_break_or_depend_on_the_font_are_refused() {
    let s = TestServer::start_with(&registration_config()).await;
    let admin = bearer(ADMIN_TOKEN);
    for name in [
        "Bank\u{2028}TV",
        "Bank\u{2029}TV",
        "\u{E0041}\u{E0042}",
        "TV\u{E0001}",
        "Bank \u{FFF9}evil\u{FFFA}TV\u{FFFB}",
        "x\u{180E}y",
        "TV\u{206A}",
        "TV\u{206F}",
        "\u{1D173}TV",
        "\u{0600}TV",
        "TV\u{13430}",
        "\u{F8FF} TV",
        "TV\u{F0000}",
        "TV\u{FDD0}",
        "TV\u{FFFE}",
        // Nothing to see: a Braille blank, combining marks alone, Khmer inherent vowels.
        "\u{2800}",
        "\u{2800} \u{2800}",
        "\u{0301}\u{0301}\u{0301}",
        "\u{17B4}\u{17B5}",
        // Marks stacked past any script's, drawing over the page (review helper-96).
        "A\u{0301}\u{0301}\u{0301}\u{0301}\u{0301} TV",
    ] {
        let metadata = json!({"client_name": name, "token_endpoint_auth_method": "none"});
        // RFC 7591 §3.2.2: 400 `invalid_client_metadata`, naming the member.
        let a = s.register(&metadata).await;
        a.assert_oauth_error(400, "invalid_client_metadata");
        assert!(
            a.json()["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("client_name")),
            "{name:?}: {:?}",
            a.body
        );
        let a = s
            .post_json(ADMIN_CLIENTS, &metadata, &[("authorization", &admin)])
            .await;
        a.assert_oauth_error(400, "invalid_client_metadata");
    }
    assert_nothing_registered(&s).await;
    // Names in any script, with the joiners emoji need, still register.
    for name in [
        "Ärzte-TV",
        "\u{5d8}\u{5dc}\u{5d5}\u{5d5}\u{5d9}\u{5d6}\u{5d9}\u{5d4}",
        "\u{1F468}\u{200D}\u{1F4BB} TV",
        "テレビ",
        "Cafe\u{0301} TV",
        // Vietnamese, decomposed: two marks on one letter.
        "Ti\u{0065}\u{0302}\u{0301}ng Vi\u{0065}\u{0323}\u{0302}t",
        // Devanagari: a vowel sign and a mark on one consonant.
        "\u{0915}\u{093F}\u{0902}",
    ] {
        let a = s
            .register(&json!({"client_name": name, "token_endpoint_auth_method": "none"}))
            .await;
        assert_eq!(a.status, 201, "{name:?}: {:?}", a.body);
        assert_eq!(a.json()["client_name"], name);
    }
}

/// `"scope": ""` registered a client that may ask for no scope at all: every token it
/// gets grants nothing. RFC 6749 §3.3: a scope is one or more scope tokens; the
/// applications page already refused it ("Choose at least one scope").
#[tokio::test]
async fn an_empty_scope_is_refused_not_registered() {
    let s = TestServer::start_with(&registration_config()).await;
    let admin = bearer(ADMIN_TOKEN);
    for scope in ["", "   "] {
        let metadata = json!({"scope": scope, "token_endpoint_auth_method": "none"});
        // RFC 7591 §3.2.2: `invalid_client_metadata`, naming the member.
        let a = s.register(&metadata).await;
        a.assert_oauth_error(400, "invalid_client_metadata");
        let why = a.json()["error_description"].as_str().unwrap().to_owned();
        assert!(why.starts_with("scope"), "{scope:?}: {why}");
        s.post_json(ADMIN_CLIENTS, &metadata, &[("authorization", &admin)])
            .await
            .assert_oauth_error(400, "invalid_client_metadata");
    }
    assert_nothing_registered(&s).await;
}

/// 49,152 registrations can be made on a store, and every one listed: the list was one
/// answer of every client, 15 MB at the end, more than a client reads (the command
/// line's limit is 1 MiB, about 3,000 clients). It comes in pages, which miss no client
/// and repeat none, even when clients are deleted or registered between two pages.
#[tokio::test]
async fn the_admin_list_comes_in_bounded_pages_that_miss_nothing() {
    let s = TestServer::start_with(&registration_config()).await;
    let admin = bearer(ADMIN_TOKEN);
    let auth = [("authorization", admin.as_str())];
    let mut registered = Vec::new();
    for i in 0..7 {
        registered.push(s.register_device_app(&format!("app {i}")).await);
    }
    let page = |query: String| {
        let s = &s;
        async move {
            let a = s
                .call(Method::GET, &format!("{ADMIN_CLIENTS}{query}"), &auth)
                .await;
            assert_eq!(a.status, 200, "{query}: {:?}", a.body);
            a.json()
        }
    };
    // Without a limit: every client of this small server, and no next page; with a
    // trailing slash the same.
    let all = page(String::new()).await;
    assert_eq!(all["clients"].as_array().unwrap().len(), 5 + 7, "{all}");
    assert_eq!(all.get("next"), None, "{all}");
    assert_eq!(page("/".to_owned()).await, all);

    let mut seen = Vec::new();
    let mut query = "?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let v = page(query).await;
        let clients = v["clients"].as_array().unwrap();
        assert!(clients.len() <= 3, "{v}");
        seen.extend(
            clients
                .iter()
                .map(|c| c["client_id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        if pages == 2 {
            // Between two pages: one not yet listed deleted, one registered.
            let gone = registered.remove(3);
            let deleted = s
                .call(Method::DELETE, &format!("{ADMIN_CLIENTS}/{gone}"), &auth)
                .await;
            assert_eq!(deleted.status, 204);
            registered.push(s.register_device_app("late").await);
        }
        match v.get("next").and_then(Value::as_str) {
            Some(next) => query = format!("?limit=3&after={next}"),
            None => break,
        }
    }
    let configured = ["tv", "tv-b", "conf", "no-device", "no-refresh"];
    let expected: Vec<String> = configured
        .iter()
        .map(|c| (*c).to_owned())
        .chain(registered.iter().cloned())
        .collect();
    assert_eq!(seen, expected);

    for bad in [
        "?limit=0",
        "?limit=1001",
        "?limit=x",
        "?limit=2&limit=3",
        "?after=x",
    ] {
        let a = s
            .call(Method::GET, &format!("{ADMIN_CLIENTS}{bad}"), &auth)
            .await;
        assert_eq!(
            (a.status, a.error().as_str()),
            (400, "invalid_request"),
            "{bad}"
        );
    }
}

/// Two rotations of one client's secret made to the same record (two admins at once):
/// the store keeps the first and refuses the second, on both backends, so that no
/// caller is answered a secret that never works. Before, `replace_client` wrote over
/// whatever was there: both rotations answered 200, and only the later secret worked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_rotations_of_one_record_the_store_keeps_one() {
    use deviceflow_server::accounts::registration::{
        request_from_json, Metadata, MetadataDocument,
    };
    use deviceflow_server::protocol::ids::{ClientId, FIRST_REGISTERED};
    use deviceflow_server::{FileConfig, MemoryStore, RedisStore, Settings, Store};

    async fn check<S: Store>(store: S, settings: &Settings) {
        let Value::Object(doc) =
            json!({"client_name": "Printer", "token_endpoint_auth_method": "client_secret_basic"})
        else {
            unreachable!()
        };
        let request = request_from_json(MetadataDocument(doc)).unwrap();
        let metadata =
            Metadata::from_request(&request, &settings.scopes, &settings.clients).unwrap();
        let id = ClientId(FIRST_REGISTERED);
        let new = metadata.register(id, 1_000, false);
        store.put_client(&new.registered).await.unwrap();
        let was = store.registered_client(id).await.unwrap().unwrap();
        let (mut first, mut second) = (was.clone(), was.clone());
        first.rotate_secret().unwrap();
        second.rotate_secret().unwrap();
        assert!(store.replace_client(&was, &first).await.unwrap());
        assert!(
            !store.replace_client(&was, &second).await.unwrap(),
            "the second rotation was kept too"
        );
        let kept = store.registered_client(id).await.unwrap().unwrap();
        assert_eq!(kept, first, "the first rotation's secret is the one kept");
        // The record as it is now may be rotated again; a deleted one stays deleted.
        let mut third = kept.clone();
        third.rotate_secret().unwrap();
        assert!(store.replace_client(&kept, &third).await.unwrap());
        assert!(store.remove_client(id).await.unwrap());
        assert!(!store.replace_client(&third, &first).await.unwrap());
        assert!(store.registered_client(id).await.unwrap().is_none());
    }

    let settings = Settings::from_file(FileConfig::parse(&test_config(), "test").unwrap()).unwrap();
    check(MemoryStore::new(&settings.store_settings()), &settings).await;
    let redis = deviceflow_testkit::RedisServer::start().unwrap();
    let store = RedisStore::connect(&redis.url(), &settings.store_settings())
        .await
        .unwrap();
    check(store, &settings).await;
}

/// Client ids are never given twice (above), so a registrar looping on the initial
/// access token (or one who holds a leaked token) could use up all 49,152 of them in
/// seconds, for good (review helper-96: 48,151 registrations in 11.8 s). At most 60
/// registration requests an address in ten minutes, counted whatever came of them;
/// past that 429 `temporarily_unavailable` with `Retry-After`, and the limit is on
/// /metrics. Another address is not held by it.
#[tokio::test]
async fn registrations_from_one_address_are_limited() {
    let s = TestServer::start_with(&registration_config()).await;
    let metadata = json!({"token_endpoint_auth_method": "none"});
    // One refused for its metadata counts too.
    let bad = s.register(&json!({"grant_types": ["password"]})).await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    for i in 1..60 {
        let a = s.register(&metadata).await;
        assert_eq!(a.status, 201, "registration {i}: {:?}", a.body);
    }
    let refused = s.register(&metadata).await;
    refused.assert_oauth_error(429, "temporarily_unavailable");
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    let metrics = String::from_utf8_lossy(&s.get("/metrics").await.body).into_owned();
    assert!(
        metrics.contains("deviceflow_throttled_total{limit=\"registration_per_ip\"} 1"),
        "{metrics}"
    );
    // The window ends: registration is open again.
    s.advance_ms(retry * 1000);
    assert_eq!(s.register(&metadata).await.status, 201);
}
