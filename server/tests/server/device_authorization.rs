//! The device authorization endpoint: checklist A.1 (DA-*) and A.2 (DR-*).

use std::collections::HashSet;

use crate::common::*;

#[tokio::test]
async fn public_client_gets_the_rfc_8628_response() {
    // DA-01, DR-01..DR-07, DR-11, DR-13, DR-14, SC-05.
    let s = TestServer::start().await;
    let a = s.post(DA, "client_id=tv&scope=openid+tv").await;
    assert_eq!(a.status, 200);
    assert!(a
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let v = a.json();
    let device_code = v["device_code"].as_str().unwrap();
    let user_code = v["user_code"].as_str().unwrap();
    assert!(device_code.len() >= 22, "at least 128 bits in base64url");
    // 8 characters of BCDFGHJKLMNPQRSTVWXZ, shown as XXXX-XXXX (RFC 8628 §6.1).
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code
        .bytes()
        .filter(|&b| b != b'-')
        .all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)));
    let uri = v["verification_uri"].as_str().unwrap();
    assert_eq!(uri, format!("{}/device", s.base));
    assert!(
        !uri.contains(user_code),
        "DR-13: no user code in verification_uri"
    );
    let complete = v["verification_uri_complete"].as_str().unwrap();
    assert!(
        complete.starts_with(uri) && complete.contains(user_code),
        "DR-07"
    );
    assert!(
        !complete.contains(device_code) && !uri.contains(device_code),
        "DR-14"
    );
    // DR-05, DR-06, DR-11: numbers are JSON numbers.
    assert_eq!(v["expires_in"].as_u64(), Some(EXPIRES_IN));
    assert_eq!(v["interval"].as_u64(), Some(INTERVAL));
}

#[tokio::test]
async fn response_is_not_cacheable() {
    // DR-10: Cache-Control: no-store, Pragma: no-cache.
    let s = TestServer::start().await;
    let a = s.post(DA, "client_id=tv").await;
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert_eq!(a.header("pragma"), Some("no-cache"));
}

#[tokio::test]
async fn response_has_no_duplicate_members() {
    // DR-09: parsers keep the last of a repeated key, so scan the raw body.
    let s = TestServer::start().await;
    let a = s.post(DA, "client_id=tv").await;
    let text = std::str::from_utf8(&a.body).unwrap();
    let mut seen = HashSet::new();
    for member in [
        "device_code",
        "user_code",
        "verification_uri\"",
        "verification_uri_complete",
        "expires_in",
        "interval",
    ] {
        assert_eq!(
            text.matches(&format!("\"{member}")).count(),
            1,
            "{member} in {text}"
        );
        assert!(seen.insert(member));
    }
}

#[tokio::test]
async fn charset_parameter_is_still_form_encoding() {
    // DA-02, TR-13.
    let s = TestServer::start().await;
    let a = s
        .send(
            s.http
                .post(format!("{}{DA}", s.base))
                .header(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=UTF-8",
                )
                .body("client_id=tv"),
        )
        .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn missing_content_type_with_empty_body_is_a_400_not_a_500() {
    // DA-02.
    let s = TestServer::start().await;
    let a = s.send(s.http.post(format!("{}{DA}", s.base))).await;
    a.assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn client_id_is_required_without_client_authentication() {
    // DA-03, DA-08 (an empty client_id is an omitted one).
    let s = TestServer::start().await;
    s.post(DA, "scope=openid")
        .await
        .assert_oauth_error(400, "invalid_request");
    s.post(DA, "client_id=&scope=openid")
        .await
        .assert_oauth_error(400, "invalid_request");
    // Omitted, it repeats nothing: one client_id (RFC 6749 §3.1; refused as repeated
    // before).
    assert_eq!(
        s.post(DA, "client_id=&client_id=tv&scope=").await.status,
        200
    );
}

#[tokio::test]
async fn unknown_client_is_401_invalid_client() {
    // DA-04.
    let s = TestServer::start().await;
    s.post(DA, "client_id=no-such-client")
        .await
        .assert_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn confidential_clients_authenticate_as_at_the_token_endpoint() {
    // DA-05 (a)-(d), DA-06, DA-07.
    let s = TestServer::start().await;
    s.post(DA, "client_id=conf")
        .await
        .assert_oauth_error(401, "invalid_client");
    let wrong = s
        .post_with(DA, "", &[("authorization", &basic("conf", "wrong"))])
        .await;
    wrong.assert_oauth_error(401, "invalid_client");
    assert!(
        wrong
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic"),
        "DA-07"
    );
    let post_wrong = s.post(DA, "client_id=conf&client_secret=wrong").await;
    post_wrong.assert_oauth_error(401, "invalid_client");
    // RFC 9110 §15.5.2: a 401 MUST carry a challenge, whichever method was tried.
    assert!(
        post_wrong
            .header("www-authenticate")
            .is_some_and(|c| c.starts_with("Basic")),
        "a 401 without WWW-Authenticate"
    );
    let ok = s
        .post_with(DA, "", &[("authorization", &basic("conf", CONF_SECRET))])
        .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let ok = s
        .post(DA, &format!("client_id=conf&client_secret={CONF_SECRET}"))
        .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn empty_scope_is_the_default_scope() {
    // DA-08: "scope=" is treated as omitted; the client's default applies.
    let s = TestServer::start().await;
    let a = s.post(DA, "client_id=tv&scope=").await;
    assert_eq!(a.status, 200);
    let code = a.json()["user_code"].as_str().unwrap().to_owned();
    let d = s.decide(&code, "approve", "alice").await;
    assert_eq!(d.json()["scope"], "openid");
}

#[tokio::test]
async fn unrecognized_parameters_are_ignored() {
    // DA-09.
    let s = TestServer::start().await;
    assert_eq!(s.post(DA, "client_id=tv&foo=bar").await.status, 200);
    // However many, however often repeated, whatever they hold (RFC 8628 §3.1 "MUST
    // ignore"; the server refused more than 16 parameters and repeated unknown ones).
    let many: String = (0..40).map(|i| format!("x{i}=1&foo=1&")).collect();
    assert_eq!(
        s.post(DA, &format!("{many}bad=%zz&client_id=tv"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn repeated_parameters_are_invalid_requests() {
    // DA-10.
    let s = TestServer::start().await;
    for body in [
        "client_id=tv&client_id=tv",
        "client_id=tv&scope=openid&scope=tv",
    ] {
        s.post(DA, body)
            .await
            .assert_oauth_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn two_authentication_methods_are_an_invalid_request() {
    // DA-11.
    let s = TestServer::start().await;
    s.post_with(
        DA,
        &format!("client_secret={CONF_SECRET}"),
        &[("authorization", &basic("conf", CONF_SECRET))],
    )
    .await
    .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn scope_outside_the_clients_allowance_is_invalid_scope() {
    // DA-12: this server rejects rather than narrows.
    let s = TestServer::start().await;
    s.post(DA, "client_id=tv&scope=bogus")
        .await
        .assert_oauth_error(400, "invalid_scope");
    s.post(DA, "client_id=conf&client_secret=conf-secret&scope=profile")
        .await
        .assert_oauth_error(400, "invalid_scope");
}

#[tokio::test]
async fn a_scope_of_spaces_alone_is_invalid_scope_and_an_empty_one_the_default() {
    // RFC 6749 §3.3: `scope = scope-token *( SP scope-token )`: spaces alone are
    // malformed (§5.2 `invalid_scope`), never a session granting nothing. An empty
    // value is an omitted one (§3.2): the client's default.
    let s = TestServer::start().await;
    for scope in ["%20", "+", "+%20+"] {
        s.post(DA, &format!("client_id=tv&scope={scope}"))
            .await
            .assert_oauth_error(400, "invalid_scope");
    }
    let a = s.post(DA, "client_id=tv&scope=").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}

#[tokio::test]
async fn client_without_the_device_grant_is_unauthorized_client() {
    // DA-13.
    let s = TestServer::start().await;
    s.post(DA, "client_id=no-device")
        .await
        .assert_oauth_error(400, "unauthorized_client");
}

#[tokio::test]
async fn get_is_405_and_hands_out_no_codes() {
    // DA-15.
    let s = TestServer::start().await;
    let a = s.get(DA).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow"), Some("POST"));
    assert!(a.json().get("device_code").is_none());
    assert!(s.app.store.sessions.is_empty());
}

#[tokio::test]
async fn codes_are_unique_and_user_codes_use_the_whole_alphabet() {
    // DR-08, UI-08, SC-01, SC-02.
    let s = TestServer::start().await;
    let mut device_codes = HashSet::new();
    let mut user_codes = HashSet::new();
    let mut alphabet = HashSet::new();
    for _ in 0..200 {
        let da = s.authorize("tv").await;
        alphabet.extend(da.user_code.chars().filter(|&c| c != '-'));
        assert!(device_codes.insert(da.device_code));
        assert!(user_codes.insert(da.user_code));
    }
    assert_eq!(alphabet.len(), 20, "{alphabet:?}");
    // RFC 8628 §6.1: no confusable digits or letters, no vowels (no words).
    for excluded in ['0', 'O', '1', 'I', 'A', 'E', 'U'] {
        assert!(!alphabet.contains(&excluded), "{excluded}");
    }
}

#[tokio::test]
async fn full_store_answers_503_temporarily_unavailable() {
    let config = test_config().replace(
        "expired_retention = 30",
        "expired_retention = 30\nmax_sessions = 2",
    );
    let s = TestServer::start_with(&config).await;
    s.authorize("tv").await;
    s.authorize("tv-b").await;
    s.post(DA, "client_id=tv")
        .await
        .assert_oauth_error(503, "temporarily_unavailable");
    // Room comes back once the sessions expire and their retention is over.
    s.advance_ms((EXPIRES_IN + 30) * 1000);
    s.app.sweep(usize::MAX);
    assert_eq!(s.post(DA, "client_id=tv").await.status, 200);
}

/// Quotas, for the tests below: 5 a second per source with a burst of 10, a client's
/// share half of 40 sessions.
fn quota_config() -> String {
    test_config()
        .replace(
            "[admin]",
            "[quotas]\nper_source_rate = 5.0\nper_source_burst = 10\nclient_share = 0.5\n[admin]",
        )
        .replace(
            "expired_retention = 30",
            "expired_retention = 30\nmax_sessions = 40",
        )
}

#[tokio::test]
async fn one_source_flooding_device_authorization_gets_429_and_others_are_served() {
    // RFC 8628 §5.2: one client on one address filled the whole session cap, and every
    // other client and address then got 503. Now the source's bucket runs dry first.
    let s = TestServer::start_with(&quota_config()).await;
    let mut refused = None;
    for i in 0..20 {
        let a = s.post(DA, "client_id=tv").await;
        if a.status != 200 {
            refused = Some((i, a));
            break;
        }
    }
    let (i, a) = refused.expect("a flood from one address is never refused");
    assert_eq!(i, 10, "the burst is 10");
    a.assert_oauth_error(429, "temporarily_unavailable");
    // 5 a second: one comes back after 200 ms.
    assert_eq!(a.header("retry-after"), Some("1"));
    assert!(a.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("this address"));
    // Another address, same client: served (the quota is the source's).
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let r = s
        .send(
            other
                .post(format!("{}{DA}", s.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("client_id=tv"),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // The flooding source gets one back as its bucket refills.
    s.advance_ms(200);
    assert_eq!(s.post(DA, "client_id=tv").await.status, 200);
    let metrics = String::from_utf8(s.get("/metrics").await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("deviceflow_throttled_total{limit=\"per_source\"} 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn one_client_holds_at_most_its_share_of_the_sessions() {
    // A public client needs no secret: whoever floods in its name, from however many
    // addresses, takes at most its share of the cap, and other clients keep the rest.
    let s = TestServer::start_with(
        &quota_config().replace("per_source_rate = 5.0", "per_source_rate = 0"),
    )
    .await;
    for _ in 0..20 {
        s.authorize("tv").await;
    }
    let a = s.post(DA, "client_id=tv").await;
    a.assert_oauth_error(429, "temporarily_unavailable");
    assert!(a.header("retry-after").is_some());
    for _ in 0..20 {
        s.authorize("tv-b").await;
    }
    // The cap itself is still 503.
    let full = s
        .post_with(DA, "", &[("authorization", &basic("conf", CONF_SECRET))])
        .await;
    full.assert_oauth_error(503, "temporarily_unavailable");
}

/// A body in a coding the server does not decode is refused as such, on every kind of
/// body (form endpoints, registration's JSON), not parsed as the bytes it is not:
/// RFC 9110 §8.4 and §12.5.3 (415 with `Accept-Encoding`), RFC 9112 §6.1 (501).
#[tokio::test]
async fn a_body_in_a_coding_the_server_does_not_decode_is_refused_as_such() {
    use tokio::io::AsyncWriteExt;

    let s = TestServer::start_with(&registration_config()).await;
    // A plain form labelled gzip: read raw, it would be a valid request.
    for coding in ["gzip", "br", "gzip, identity"] {
        let a = s
            .post_with(DA, "client_id=tv", &[("content-encoding", coding)])
            .await;
        a.assert_oauth_error(415, "invalid_request");
        assert_eq!(a.header("accept-encoding"), Some("identity"), "{coding}");
        let description = a.json()["error_description"].to_string();
        assert!(description.contains("Content-Encoding"), "{description}");
    }
    let poll = s
        .post_with(
            TOKEN,
            &poll_body("tv", "whatever"),
            &[("content-encoding", "deflate")],
        )
        .await;
    poll.assert_oauth_error(415, "invalid_request");
    let registration = s
        .http
        .post(format!("{}{REGISTER}", s.base))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("authorization", format!("Bearer {INITIAL_TOKEN}"))
        .body(r#"{"client_name":"x","grant_types":["urn:ietf:params:oauth:grant-type:device_code"],"token_endpoint_auth_method":"none"}"#);
    s.send(registration)
        .await
        .assert_oauth_error(415, "invalid_request");

    // `identity` is no coding at all, in any list that says only it (RFC 9110 §5.6.1:
    // empty elements are ignored), and a chunked body is decoded by the server.
    for identity in [
        "identity",
        "IDENTITY",
        "",
        "identity,",
        "identity, identity",
    ] {
        let a = s
            .post_with(DA, "client_id=tv", &[("content-encoding", identity)])
            .await;
        assert_eq!(a.status, 200, "{identity:?}: {:?}", a.body);
    }
    // The person's pages say which codings they take too (RFC 9110 §12.5.3).
    let page = s
        .post_with(
            "/device",
            "user_code=WDJB-MJHT",
            &[("content-encoding", "gzip")],
        )
        .await;
    assert_eq!(page.status, 415);
    assert_eq!(page.header("accept-encoding"), Some("identity"));
    let chunked = b"POST /oauth/device_authorization HTTP/1.1\r\nHost: t\r\n\
Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n\
c\r\nclient_id=tv\r\n0\r\n\r\n";
    let mut stream = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(chunked).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A transfer coding beside chunked: hyper takes the chunks off, and what is left
    // would be read as the form.
    let coded = String::from_utf8_lossy(chunked).replace(
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: gzip, chunked",
    );
    stream.write_all(coded.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 501"), "{answer}");
    assert!(answer.contains("\"invalid_request\""), "{answer}");
}

/// RFC 9110 §8.3: one `Content-Type`. Sent twice, the server would read the first and a
/// proxy in front may read the last, so neither order is read: on a form endpoint and
/// on registration's JSON alike.
#[tokio::test]
async fn a_content_type_sent_twice_is_refused_in_either_order() {
    use tokio::io::AsyncWriteExt;

    let s = TestServer::start_with(&registration_config()).await;
    let form = "application/x-www-form-urlencoded";
    let json = "application/json";
    let registration = r#"{"client_name":"x","grant_types":["urn:ietf:params:oauth:grant-type:device_code"],"token_endpoint_auth_method":"none"}"#;
    let cases = [
        (DA, "client_id=tv", [form, "text/plain"]),
        (DA, "client_id=tv", ["text/plain", form]),
        (REGISTER, registration, [json, "text/plain"]),
        (REGISTER, registration, ["text/plain", json]),
    ];
    for (path, body, [first, second]) in cases {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
Authorization: Bearer {INITIAL_TOKEN}\r\nContent-Type: {first}\r\nContent-Type: {second}\r\n\
Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
            .await
            .unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = read_answer(&mut stream).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{path} {first}, {second}: {answer}"
        );
        assert!(answer.contains("more than once"), "{answer}");
    }
    // One Content-Type beside another field sent twice is read as ever.
    let a = s
        .post_with(DA, "client_id=tv", &[("accept", "a/b"), ("accept", "c/d")])
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}
