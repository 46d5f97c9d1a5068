//! The person's pages against a hostile visitor: what a forged request from another
//! site can still do to a browser, and the refusals a crowd gets. Each test here was
//! seen to fail before the fix it holds.

use deviceflow_server::accounts::users::Credential;
use deviceflow_server::protocol::ids::UserId;
use deviceflow_server::storage::web_sessions::MAX_WEB_SESSIONS;
use deviceflow_server::verification::csrf::SIGN_IN_FORM_TTL_MS;

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
    // Logout CSRF: the browser says another site sent it (origin.rs); and without the
    // cookie there would be nothing to end, so nothing to clear.
    let forged = cross_site_post(&s, "/device/logout").await;
    assert_eq!(forged.status, 403);
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
async fn a_form_another_site_sends_is_refused_though_its_csrf_pair_is_valid() {
    // Login CSRF by cookie tossing: a sibling subdomain plants in the person's browser
    // the cookie of a sign-in form the attacker fetched, then posts that form, with
    // the attacker's password, from its own page. The pair is valid; the browser's
    // Fetch Metadata, or an older browser's Origin, says whose page sent it.
    let s = server().await;
    let port = s.base.rsplit(':').next().unwrap().to_owned();
    let local_host = format!("localhost:{port}");
    let localhost = format!("http://{local_host}");
    for sent_from in [
        vec![
            ("sec-fetch-site", "same-site"),
            ("origin", "http://evil.localhost"),
        ],
        vec![
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://attacker.example"),
        ],
        vec![("origin", "https://attacker.example")],
        vec![("origin", "null")],
        // Our port on another name than the one the request went to.
        vec![("origin", localhost.as_str())],
    ] {
        let mut p = Person::new(&s);
        p.get("/device/login").await;
        p.sent_from = sent_from.iter().map(|&(n, v)| (n, v.to_owned())).collect();
        let password = password_of("bob");
        let page = p
            .submit(
                "/device/login",
                &[("username", "bob"), ("password", &password)],
            )
            .await;
        assert_eq!(
            (page.status, page.heading()),
            (403, "This form came from another site"),
            "{sent_from:?}"
        );
        assert_eq!(page.header("set-cookie"), None, "{sent_from:?}");
        page.assert_protected();
    }
    // Our own forms: from a browser that says so, from an older one that sends our
    // origin (or that of the Host it reached us by), and from a client that sends
    // neither.
    for sent_from in [
        vec![
            ("sec-fetch-site", "same-origin"),
            ("origin", s.base.as_str()),
        ],
        vec![("origin", s.base.as_str())],
        vec![
            ("origin", localhost.as_str()),
            ("host", local_host.as_str()),
        ],
        vec![],
    ] {
        let mut p = Person::new(&s);
        p.sent_from = sent_from.iter().map(|&(n, v)| (n, v.to_owned())).collect();
        assert_eq!(p.sign_in("alice").await.heading(), "Connect a device");
    }
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
        web.start(UserId(1_000 + n), Credential(1), START_MS)
            .unwrap();
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

#[tokio::test]
async fn a_decision_sent_again_says_what_was_decided_not_that_nothing_was() {
    // RFC 8628 §3.3: the person is told the outcome and sent back to the device. A
    // reload of the last page sends its POST again (chromium does, without asking);
    // the answer must still be what was decided, never "nothing was approved".
    let s = server().await;
    let mut p = Person::new(&s);
    p.sign_in("alice").await;
    let approve = s.authorize("tv").await;
    p.open_consent(&approve.user_code).await;
    let done = p.decide(&approve.user_code, "approve").await;
    assert_eq!(done.heading(), "Device connected");
    let reloaded = p.decide(&approve.user_code, "approve").await;
    assert_eq!(
        (reloaded.status, reloaded.heading()),
        (200, "Device connected"),
        "{:?}",
        reloaded.alert()
    );
    reloaded.assert_protected();
    // Pressing Deny on a stale copy of the consent page changes nothing either.
    let late_deny = p.decide(&approve.user_code, "deny").await;
    assert_eq!(late_deny.heading(), "Device connected");
    // The back button (the consent page again) shows the outcome too.
    let back = p.get("/device/consent").await;
    assert_eq!((back.status, back.heading()), (200, "Device connected"));
    // Nothing was decided twice: the token once, as alice's; still "connected" after.
    assert_eq!(s.poll("tv", &approve.device_code).await.status, 200);
    let after = p.decide(&approve.user_code, "approve").await;
    assert_eq!(after.heading(), "Device connected");

    // A denial, sent again or followed by a stale Approve, stays a denial.
    let deny = s.authorize("tv").await;
    p.open_consent(&deny.user_code).await;
    assert_eq!(
        p.decide(&deny.user_code, "deny").await.heading(),
        "Request denied"
    );
    let again = p.decide(&deny.user_code, "approve").await;
    assert_eq!((again.status, again.heading()), (200, "Request denied"));
    s.poll("tv", &deny.device_code)
        .await
        .assert_oauth_error(400, "access_denied");

    // The approved page, reloaded after another code was entered, is still true.
    let other = s.authorize("tv").await;
    p.open_consent(&other.user_code).await;
    let old = p.decide(&approve.user_code, "approve").await;
    assert_eq!((old.status, old.heading()), (200, "Device connected"));

    // Only what this person approved is shown as approved: bob, who never entered
    // alice's code, learns nothing about it.
    let mut bob = Person::new(&s);
    bob.sign_in("bob").await;
    let refused = bob.decide(&approve.user_code, "approve").await;
    assert_eq!(refused.status, 403);
    assert!(refused
        .alert()
        .unwrap()
        .starts_with("Nothing was approved or denied"));

    // An approval that expired before the device came for it is not "connected".
    let stale = s.authorize("tv").await;
    p.open_consent(&stale.user_code).await;
    p.decide(&stale.user_code, "approve").await;
    s.advance_ms(EXPIRES_IN * 1000);
    let expired = p.decide(&stale.user_code, "approve").await;
    assert_eq!(expired.status, 400, "{}", expired.heading());
    assert!(expired
        .alert()
        .unwrap()
        .starts_with("That code is not valid"));
}

#[tokio::test]
async fn approving_a_code_of_an_application_deleted_meanwhile_decides_nothing() {
    // RFC 8628 §3.3: the person is told the truth about the device. A deleted app's
    // device gets invalid_client, so "Device connected" would be false.
    let s = server().await;
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let auth = [("authorization", admin.as_str())];
    let made = s
        .post_json(
            ADMIN_CLIENTS,
            &serde_json::json!({"client_name": "Kitchen TV", "token_endpoint_auth_method": "none"}),
            &auth,
        )
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let client_id = made.json()["client_id"].as_str().unwrap().to_owned();
    let da = s.authorize(&client_id).await;
    let mut p = Person::new(&s);
    p.sign_in("alice").await;
    let consent = p.open_consent(&da.user_code).await;
    assert!(consent.body.contains("Kitchen TV"));
    let deleted = s.delete_app(&client_id).await;
    assert_eq!(deleted.status, 204);
    let approved = p.decide(&da.user_code, "approve").await;
    assert_eq!(
        (approved.status, approved.heading()),
        (400, "Connect a device"),
        "{:?}",
        approved.alert()
    );
    assert!(approved
        .alert()
        .unwrap()
        .starts_with("That code is not valid"));
}

/// DNS rebinding: a script on the attacker's page, its name resolved to this server's
/// address, is same-origin to every page it fetches under that name; it could sign
/// in with a known password (the demo's is printed) and approve its own code. A page
/// asked for under a dotted name that is not the issuer's (nor in
/// `limits.page_hosts`) is refused, 421 (RFC 9110 §15.5.20), before any form or
/// cookie is served. Failed before: the sign-in page and the sign-in itself answered
/// under any name (review helper-97).
#[tokio::test]
async fn pages_asked_for_under_another_sites_name_are_refused() {
    let s = TestServer::start_with(&format!(
        "{}\n[limits]\npage_hosts = [\"auth.internal.example\"]\n",
        people_config()
    ))
    .await;
    let port = s.base.rsplit(':').next().unwrap().to_owned();
    let as_host = |host: String| {
        let mut p = Person::new(&s);
        p.sent_from = vec![("host", host)];
        p
    };
    let mut rebound = as_host(format!("rebind.attacker.example:{port}"));
    let page = rebound.get("/device/login").await;
    assert_eq!(
        (page.status, page.heading()),
        (421, "Wrong address"),
        "{:?}",
        page.body
    );
    assert_eq!(page.header("set-cookie"), None);
    page.assert_protected();
    let host = format!("rebind.attacker.example:{port}");
    let signed_in = s
        .post_with(
            "/device/login",
            &format!("username=alice&password={}", password_of("alice")),
            &[("host", &host)],
        )
        .await;
    assert_eq!(signed_in.status, 421, "{:?}", signed_in.body);
    // The issuer's own name, an address, localhost and a configured page host serve.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("auth.internal.example:{port}"),
    ] {
        let mut p = as_host(host.clone());
        assert_eq!(
            p.sign_in("alice").await.heading(),
            "Connect a device",
            "{host}"
        );
    }
}
