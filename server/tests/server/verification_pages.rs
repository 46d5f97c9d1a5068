//! The verification pages under bad input and odd requests: wrong methods, unknown
//! pages, malformed forms and queries (a readable 4xx page, never a 500), HTML
//! escaping of configured names, the device-display page, and `hash-password`.

use std::io::Write;
use std::process::{Command, Stdio};

use deviceflow_server::accounts::password;

use crate::common::*;
use crate::person::Person;

async fn server() -> TestServer {
    TestServer::start_with(&people_config()).await
}

#[tokio::test]
async fn wrong_methods_get_405_with_allow_and_unknown_pages_404() {
    let s = server().await;
    for (method, path, allow) in [
        ("PUT", "/device", "GET, HEAD, POST"),
        ("DELETE", "/device/login", "GET, HEAD, POST"),
        ("PUT", "/device/logout", "GET, HEAD, POST"),
        ("PATCH", "/device/consent", "GET, HEAD, POST"),
        ("POST", "/device/display", "GET, HEAD"),
    ] {
        let r = s
            .send(
                s.http
                    .request(method.parse().unwrap(), format!("{}{path}", s.base)),
            )
            .await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    }
    let missing = s.get("/device/admin").await;
    assert_eq!(missing.status, 404);
    assert!(String::from_utf8_lossy(&missing.body).contains("<h1>Page not found</h1>"));
    // Paths that only start like the pages are not theirs.
    assert_eq!(s.get("/devices").await.json()["error"], "not_found");
}

/// A server whose body limit is 1 KiB.
async fn small_body_limit() -> TestServer {
    TestServer::start_with(
        &people_config().replace("[admin]", "[limits]\nmax_body_bytes = 1024\n[admin]"),
    )
    .await
}

#[tokio::test]
async fn malformed_forms_get_a_readable_4xx_page_never_a_500() {
    let s = small_body_limit().await;
    let mut p = Person::new(&s);
    p.sign_in("alice").await;
    let token = p.csrf.clone().unwrap();
    let cookie = p.cookie.clone().unwrap();
    let raw = |content_type: &str, body: String| {
        s.http
            .post(format!("{}/device", s.base))
            .header("cookie", &cookie)
            .header("content-type", content_type)
            .body(body)
    };
    let cases = [
        ("json", raw("application/json", "{}".into()), 400),
        (
            "repeated field",
            raw(
                "application/x-www-form-urlencoded",
                format!("csrf={token}&user_code=a&user_code=b"),
            ),
            400,
        ),
        (
            "bad escape",
            raw(
                "application/x-www-form-urlencoded",
                format!("csrf={token}&user_code=%zz"),
            ),
            400,
        ),
        (
            "not utf-8",
            raw(
                "application/x-www-form-urlencoded",
                format!("csrf={token}&user_code=%ff"),
            ),
            400,
        ),
        (
            "too large",
            raw(
                "application/x-www-form-urlencoded",
                format!("csrf={token}&user_code={}", "B".repeat(2000)),
            ),
            413,
        ),
        (
            "long junk code",
            raw(
                "application/x-www-form-urlencoded",
                format!("csrf={token}&user_code={}", "%E2%82%AC".repeat(50)),
            ),
            400,
        ),
    ];
    for (what, req, status) in cases {
        let r = s.send(req).await;
        assert_eq!(
            r.status,
            status,
            "{what}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(
            r.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{what}"
        );
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains(r#"role="alert""#), "{what}: {body}");
    }
}

#[tokio::test]
async fn malformed_queries_and_codes_in_links_get_a_readable_400_page() {
    let s = small_body_limit().await;
    let mut p = Person::new(&s);
    p.sign_in("alice").await;
    for path in [
        "/device?user_code=%zz",
        "/device?user_code=a&user_code=b",
        "/device?user_code=NOT-A-CODE!",
        "/device/display",
        "/device/display?user_code=%ff",
        "/device/display?user_code=BCDF",
    ] {
        let page = p.get(path).await;
        assert_eq!(page.status, 400, "{path}: {page:?}");
        assert!(page.alert().is_some(), "{path}");
        page.assert_protected();
    }
}

#[tokio::test]
async fn the_consent_form_without_a_decision_gets_400() {
    let s = small_body_limit().await;
    let mut p = Person::new(&s);
    p.sign_in("alice").await;
    let da = s.authorize("tv").await;
    p.open_consent(&da.user_code).await;
    let no_action = p
        .submit("/device/consent", &[("user_code", &da.user_code)])
        .await;
    assert_eq!(no_action.status, 400);
    let sideways = p
        .submit(
            "/device/consent",
            &[("user_code", &da.user_code), ("action", "maybe")],
        )
        .await;
    assert_eq!(sideways.status, 400);
}

#[tokio::test]
async fn names_from_the_configuration_are_html_escaped() {
    let config = people_config()
        .replace(
            "name = \"Living-room TV\"",
            "name = \"<script>alert('tv')</script>\"",
        )
        .replace("name = \"Alice Example\"", "name = \"<b>Alice</b> & co\"");
    let s = TestServer::start_with(&config).await;
    let da = s.authorize("tv").await;
    let mut p = Person::new(&s);
    p.sign_in("alice").await;
    let consent = p.open_consent(&da.user_code).await;
    assert!(!consent.body.contains("<script>"));
    assert!(consent
        .body
        .contains("&lt;script&gt;alert(&#39;tv&#39;)&lt;/script&gt;"));
    assert!(consent
        .body
        .contains("Signed in as <strong>&lt;b&gt;Alice&lt;/b&gt; &amp; co</strong>"));
    let done = p.decide(&da.user_code, "approve").await;
    assert!(!done.body.contains("<script>"));
    // What a person types is escaped when it is shown back.
    let typed = p.enter_code("\"><img src=x onerror=alert(1)>").await;
    assert_eq!(typed.status, 400);
    assert!(!typed.body.contains("<img"));
    assert!(typed
        .body
        .contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
}

/// A client that gets refresh tokens stays in without the person: the consent page
/// says so, with how long a refresh token lasts unused (RFC 8628 §5.4, UI-02). It
/// listed only the scopes ("Know who you are") while the token answer carried a
/// 30-day refresh token (helper-60). A client without the refresh grant says nothing.
#[tokio::test]
async fn the_consent_page_says_a_device_that_gets_refresh_tokens_stays_connected() {
    let s = TestServer::start_with(&people_config()).await;
    let mut p = Person::new(&s);
    p.sign_in("alice").await;
    let stays =
        "Stay connected without asking you again, as long as it is used at least once every ";
    for (client, refreshes) in [("tv", true), ("no-refresh", false)] {
        let da = s.authorize(client).await;
        let consent = p.open_consent(&da.user_code).await;
        assert_eq!(consent.body.contains(stays), refreshes, "{client}");
        let done = p.decide(&da.user_code, "approve").await;
        assert_eq!(done.status, 200);
        let answer = s.poll(client, &da.device_code).await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.json()["refresh_token"].is_string(),
            refreshes,
            "{client}"
        );
    }
}

#[tokio::test]
async fn the_device_display_page_shows_the_code_and_a_qr_code() {
    let s = server().await;
    let da = s.authorize("tv").await;
    let complete = da.verification_uri_complete.unwrap();
    // No sign-in needed: it is what the device shows.
    let mut p = Person::new(&s);
    let page = p
        .get(&format!(
            "/device/display?user_code={}",
            da.user_code.to_lowercase()
        ))
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    page.assert_protected();
    assert!(page.header("set-cookie").is_none());
    assert_eq!(page.heading(), "Sign in on your phone");
    assert!(page
        .body
        .contains(&format!(r#"<p class="code-big">{}</p>"#, da.user_code)));
    assert!(page
        .body
        .contains(&format!("<strong>{}</strong>", da.verification_uri)));
    assert!(page
        .body
        .contains(r#"<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 "#));
    assert!(page
        .body
        .contains(&format!(r#"role="img" aria-label="QR code of {complete}""#)));
    // It looks nothing up: a well-formed code nobody holds is shown all the same.
    assert_eq!(
        p.get("/device/display?user_code=BCDF-GHJK").await.status,
        200
    );
}

#[tokio::test]
async fn decisions_on_the_pages_are_counted_in_the_metrics() {
    let s = server().await;
    let mut p = Person::new(&s);
    p.sign_in("alice").await;
    let a = s.authorize("tv").await;
    p.open_consent(&a.user_code).await;
    p.decide(&a.user_code, "approve").await;
    let b = s.authorize("tv").await;
    p.open_consent(&b.user_code).await;
    p.decide(&b.user_code, "deny").await;
    let metrics = String::from_utf8_lossy(&s.get("/metrics").await.body).into_owned();
    assert!(
        metrics.contains("deviceflow_decisions_total{decision=\"approve\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("deviceflow_decisions_total{decision=\"deny\"} 1"));
    assert!(metrics.contains("endpoint=\"verification\""));
}

#[test]
fn hash_password_prints_an_argon2id_phc_string_that_verifies() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_deviceflow-server"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery staple\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let phc = String::from_utf8(out.stdout).unwrap();
    let phc = phc.trim();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert_eq!(password::check(phc), Ok(()));
    assert!(password::verify(phc, "correct horse battery staple"));
    assert!(!password::verify(phc, "correct horse battery staple\n"));
    // Empty input is refused.
    let empty = Command::new(env!("CARGO_BIN_EXE_deviceflow-server"))
        .arg("hash-password")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(empty.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no password on standard input"));
}

#[tokio::test]
async fn a_link_with_an_empty_code_opens_the_code_form_without_an_error() {
    // A hand-made link (`/device?user_code=`) carries no code: the person typed
    // nothing, so there is nothing to "check what you typed" about.
    let s = server().await;
    let mut p = Person::new(&s);
    p.sign_in("alice").await;
    for link in ["/device?user_code=", "/device?user_code=+%20"] {
        let page = p.get(link).await;
        assert_eq!(
            (page.status, page.heading(), page.alert()),
            (200, "Connect a device", None),
            "{link}"
        );
        page.assert_protected();
    }
}
