//! The person's pages against a hostile visitor: what a forged request from another
//! site can still do to a browser, and the refusals a crowd gets. Each test here was
//! seen to fail before the fix it holds.

use deviceflow_server::accounts::users::UserId;
use deviceflow_server::verification::csrf::SIGN_IN_FORM_TTL_MS;
use deviceflow_server::verification::web_session::MAX_WEB_SESSIONS;

use crate::common::*;
use crate::person::Person;

async fn server() -> TestServer {
    TestServer::start_with(&people_config()).await
}

/// Another site's auto-submitting form: a top-level POST that the browser sends
/// without our `SameSite=Lax` cookie, but whose answer's `Set-Cookie` it applies.
async fn cross_site_post(s: &TestServer, path: &str) -> Answer {
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    s.send(
        no_redirects
            .post(format!("{}{path}", s.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", "https://attacker.example")
            .header("sec-fetch-site", "cross-site"),
    )
    .await
}

#[tokio::test]
async fn another_sites_sign_out_form_does_not_clear_the_persons_cookie() {
    let s = server().await;
    let mut p = Person::new(&s);
    p.sign_in("alice").await;
    // Logout CSRF: without the cookie there is nothing to end, so nothing to clear.
    let forged = cross_site_post(&s, "/device/logout").await;
    assert_eq!(forged.status, 303);
    assert_eq!(
        forged.header("set-cookie"),
        None,
        "a forged sign-out must not clear the browser's session cookie"
    );
    assert_eq!(p.get("/device").await.heading(), "Connect a device");
    // A browser that sends a dead session's cookie (same-site) still has it cleared.
    let mut stale = Person::new(&s);
    stale.cookie = Some(format!("deviceflow-session={}", "A".repeat(43)));
    let out = stale.post("/device/logout", &[]).await;
    assert_eq!((out.status, out.location()), (303, Some("/device/login")));
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn a_sign_in_form_served_late_in_its_cookies_life_still_gives_time_to_type() {
    let s = server().await;
    let mut p = Person::new(&s);
    p.get("/device/login").await;
    // The tab is reopened a minute before the first form's cookie ends.
    s.advance_ms(SIGN_IN_FORM_TTL_MS - 60_000);
    let reopened = p.get("/device/login").await;
    assert!(
        reopened.header("set-cookie").is_some(),
        "a form served a minute before its cookie ends needs a new cookie"
    );
    // Sixteen minutes to type a wrong password: the form shown again is served now,
    // so it too gets a cookie that outlives the next fourteen.
    s.advance_ms(16 * 60 * 1000);
    let fields = [("username", "alice"), ("password", "wrong")];
    let wrong = p.submit("/device/login", &fields).await;
    assert_eq!(
        (wrong.status, wrong.alert()),
        (400, Some("Wrong username or password."))
    );
    assert!(wrong.header("set-cookie").is_some());
    s.advance_ms(14 * 60 * 1000);
    let right = [("username", "alice"), ("password", "alice-password")];
    let signed = p.submit("/device/login", &right).await;
    assert_eq!((signed.status, signed.location()), (303, Some("/device")));
}

#[tokio::test]
async fn a_sign_in_refused_because_the_session_map_is_full_says_when_to_retry() {
    let s = server().await;
    let web = s.app.store.web_sessions();
    for n in 0..MAX_WEB_SESSIONS as u32 {
        web.start(UserId(1_000 + n), START_MS).unwrap();
    }
    let mut p = Person::new(&s);
    p.get("/device/login").await;
    let refused = p
        .submit(
            "/device/login",
            &[("username", "alice"), ("password", "alice-password")],
        )
        .await;
    assert_eq!((refused.status, refused.heading()), (503, "Too busy"));
    refused.assert_protected();
    // Every refusal of the pages says when to come back; this one, in a minute.
    assert_eq!(refused.header("retry-after"), Some("60"));
}

/// `text` as an East Asian input method in full-width mode types it.
fn fullwidth(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(u32::from(c) + 0xFEE0).unwrap(),
            ' ' => '\u{3000}',
            c => c,
        })
        .collect()
}

#[tokio::test]
async fn a_code_typed_in_fullwidth_forms_is_read_as_the_code() {
    // RFC 8628 §6.1 (checklist UI-07): what a person types is normalized; full-width
    // letters are the same letters.
    let s = server().await;
    let da = s.authorize("tv").await;
    let mut p = Person::new(&s);
    p.sign_in("alice").await;
    let typed = fullwidth(&da.user_code.to_lowercase());
    let consent = p.open_consent(&typed).await;
    assert_eq!(
        consent.heading(),
        "Allow Living-room TV to access your account?"
    );
    // verification_uri_complete, retyped the same way, asks to confirm the code.
    let link = format!("/device?user_code={}", urlencode(&fullwidth(&da.user_code)));
    let confirm = p.get(&link).await;
    assert_eq!(
        (confirm.status, confirm.heading()),
        (200, "Confirm the code")
    );
    assert!(confirm.body.contains(&da.user_code));
}

fn urlencode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}
