//! The verification pages against checklist A.3 (UI-01..UI-15), one test per row,
//! through real HTTP with a cookie-holding client that sees every redirect.

use deviceflow_server::storage::rate_limit::{CODE_LIMIT_PER_ACCOUNT, CODE_LIMIT_PER_IP};

use crate::common::*;
use crate::person::{Page, Person};

async fn server() -> TestServer {
    TestServer::start_with(&people_config()).await
}

/// A person signed in as `username`, on the code form.
async fn signed_in<'a>(server: &'a TestServer, username: &str) -> Person<'a> {
    let mut p = Person::new(server);
    let page = p.sign_in(username).await;
    assert_eq!(page.heading(), "Connect a device", "{page:?}");
    p
}

const NOT_VALID: &str = "That code is not valid.";

#[tokio::test]
async fn ui_01_verification_uri_leads_through_sign_in_to_a_code_form() {
    let s = server().await;
    let da = s.authorize("tv").await;
    let path = da.verification_uri.strip_prefix(&s.base).unwrap();
    assert_eq!(path, "/device");
    let mut p = Person::new(&s);
    // Not signed in: the redirect to sign-in that leads to the code form.
    let first = p.get(path).await;
    assert_eq!(
        (first.status, first.location()),
        (303, Some("/device/login"))
    );
    let login = p.follow(first).await;
    assert_eq!(login.status, 200);
    assert_eq!(login.heading(), "Sign in");
    assert!(login
        .body
        .contains(r#"<label for="username">Username</label>"#));
    assert!(login
        .body
        .contains(r#"<label for="password">Password</label>"#));
    let form = p.sign_in("alice").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains(r#"<label for="user_code">Code</label>"#));
    assert!(form
        .body
        .contains(r#"<input id="user_code" name="user_code""#));
    assert!(form.body.contains(r#"aria-describedby="code-hint""#));
}

#[tokio::test]
async fn ui_02_after_the_code_the_page_offers_approve_and_deny() {
    let s = server().await;
    let da = s.authorize("tv").await;
    let mut p = signed_in(&s, "alice").await;
    let consent = p.open_consent(&da.user_code).await;
    assert!(
        consent.heading().starts_with("Allow Living-room TV"),
        "{}",
        consent.heading()
    );
    assert!(consent
        .body
        .contains(r#"<button type="submit" name="action" value="approve">Approve</button>"#));
    assert!(consent
        .body
        .contains(r#"<button type="submit" name="action" value="deny">Deny</button>"#));
}

#[tokio::test]
async fn ui_03_no_page_shows_the_device_code() {
    let s = server().await;
    let da = s.authorize("tv").await;
    let code = da.user_code.as_str();
    let mut p = Person::new(&s);
    let mut pages: Vec<Page> = vec![
        p.get("/device").await,
        p.get(&format!("/device/login?user_code={code}")).await,
    ];
    p.sign_in("alice").await;
    pages.push(p.get(&format!("/device?user_code={code}")).await);
    pages.push(p.get("/device").await);
    pages.push(p.open_consent(code).await);
    pages.push(p.get(&format!("/device/display?user_code={code}")).await);
    pages.push(p.decide(code, "approve").await);
    pages.push(p.enter_code(code).await);
    let secret_part = &da.device_code[7..];
    for page in &pages {
        assert!(!page.body.contains(&da.device_code), "{page:?}");
        assert!(!page.body.contains(secret_part), "{page:?}");
        for (_, v) in &page.headers {
            assert!(!v.to_str().unwrap_or_default().contains(secret_part));
        }
    }
}

#[tokio::test]
async fn ui_04_verification_uri_complete_shows_the_code_to_confirm() {
    let s = server().await;
    let da = s.authorize("tv").await;
    let complete = da.verification_uri_complete.clone().unwrap();
    let path = complete.strip_prefix(&s.base).unwrap().to_owned();
    assert_eq!(path, format!("/device?user_code={}", da.user_code));

    // Not signed in: sign-in first, which names the code and comes back to it.
    let mut p = Person::new(&s);
    let first = p.get(&path).await;
    let login = p.follow(first).await;
    assert_eq!(login.heading(), "Sign in");
    assert!(login.body.contains(&format!(
        "Next you will confirm the code <strong>{}</strong>",
        da.user_code
    )));
    let back = p
        .submit(
            &format!("/device/login?user_code={}", da.user_code),
            &[("username", "alice"), ("password", &password_of("alice"))],
        )
        .await;
    assert_eq!(back.location(), Some(path.as_str()));
    let confirm = p.follow(back).await;
    assert_eq!(confirm.heading(), "Confirm the code");
    assert!(confirm
        .body
        .contains("Check that your device shows this code:"));
    assert!(confirm.body.contains(&format!(
        r#"<p class="code-big" aria-describedby="confirm-text">{}</p>"#,
        da.user_code
    )));
    // Continue leads to consent, which shows it again.
    let consent = p.open_consent(&da.user_code).await;
    assert!(consent
        .body
        .contains(&format!(r#"<code class="shown">{}</code>"#, da.user_code)));
}

#[tokio::test]
async fn ui_05_visiting_verification_uri_complete_decides_nothing() {
    let s = server().await;
    let da = s.authorize("tv").await;
    let path = da.verification_uri_complete.unwrap().replace(&s.base, "");
    let mut p = signed_in(&s, "alice").await;
    assert_eq!(p.get(&path).await.status, 200);
    // Even the consent page, once the code is entered, decides nothing by itself.
    p.open_consent(&da.user_code).await;
    s.advance_ms(INTERVAL * 1000);
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "authorization_pending");
}

/// RFC 8628 §5.4: an app registered while the server runs (RFC 7591 here) chose its
/// own name; its consent page says it was added after setup, and a configured
/// client's does not. Nothing told them apart before.
#[tokio::test]
async fn ui_06_the_consent_page_says_when_an_app_was_added_after_setup() {
    let s = TestServer::start_with(&format!(
        "{}\n[registration]\ninitial_access_token = \"{INITIAL_TOKEN}\"\n",
        people_config()
    ))
    .await;
    let kitchen = s.register_device_app("Kitchen TV").await;
    let added = "An app added to this server after setup";
    for (client_id, name, marked) in [
        (kitchen.as_str(), "Kitchen TV", true),
        ("tv", "Living-room TV", false),
    ] {
        let user_code = s.authorize(client_id).await.user_code;
        let mut p = signed_in(&s, "alice").await;
        let body = p.open_consent(&user_code).await.body;
        assert!(
            body.contains(&format!("<dt>Device</dt><dd>{name} ")),
            "{body}"
        );
        assert_eq!(body.contains(added), marked, "{client_id}: {body}");
    }
}

#[tokio::test]
async fn ui_06_the_consent_page_names_the_client_and_what_it_asks() {
    let s = server().await;
    let a = s.post(DA, "client_id=tv&scope=openid%20profile").await;
    let user_code = a.json()["user_code"].as_str().unwrap().to_owned();
    s.advance_ms(7_000);
    let mut p = signed_in(&s, "alice").await;
    let consent = p.open_consent(&user_code).await;
    let body = &consent.body;
    assert!(
        body.contains(r#"<dt>Device</dt><dd>Living-room TV <code class="id">tv</code></dd>"#),
        "{body}"
    );
    assert!(body.contains("<li>Know who you are (your username) <code>openid</code></li>"));
    assert!(body.contains("<li>See your name <code>profile</code></li>"));
    // Device information: when it asked, and how long the code has left.
    assert!(
        body.contains("<dt>Requested</dt><dd>7 seconds ago</dd>"),
        "{body}"
    );
    assert!(
        body.contains("<dt>Expires</dt><dd>in 53 seconds</dd>"),
        "{body}"
    );
    // A client without a name is shown by its client_id.
    let other = s.authorize("tv-b").await;
    let consent = p.open_consent(&other.user_code).await;
    assert!(consent
        .body
        .contains(r#"<dd>tv-b <code class="id">tv-b</code></dd>"#));
}

#[tokio::test]
async fn ui_07_typed_codes_are_normalized() {
    // RFC 8628 §6.1: case, dashes, spaces and characters outside the alphabet.
    let s = server().await;
    let da = s.authorize("tv").await;
    let code = da.user_code.as_str();
    let bare = code.replace('-', "");
    let spaced = format!("{} {}", &bare[..4], &bare[4..]).to_lowercase();
    let typed = [
        code.to_lowercase(),
        bare.clone(),
        spaced,
        format!(
            "  {}  ",
            bare.chars().map(|c| format!("{c} ")).collect::<String>()
        ),
        format!("{}.{}", &bare[..4], &bare[4..]),
    ];
    let mut p = signed_in(&s, "alice").await;
    for t in typed {
        let consent = p.open_consent(&t).await;
        assert!(
            consent
                .body
                .contains(&format!(r#"<code class="shown">{code}</code>"#)),
            "{t:?}"
        );
    }
}

#[tokio::test]
async fn ui_08_user_codes_avoid_confusable_characters() {
    let s = server().await;
    let mut alphabet = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let code = s.authorize("tv").await.user_code;
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        alphabet.extend(code.chars().filter(|&c| c != '-'));
    }
    for (a, b) in [
        ('0', 'O'),
        ('1', 'I'),
        ('1', 'L'),
        ('I', 'L'),
        ('0', 'D'),
        ('5', 'S'),
        ('2', 'Z'),
        ('8', 'B'),
        ('U', 'V'),
    ] {
        assert!(
            !(alphabet.contains(&a) && alphabet.contains(&b)),
            "confusable {a}/{b} in {alphabet:?}"
        );
    }
    assert!(
        alphabet.iter().all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(*c)),
        "{alphabet:?}"
    );
    // No vowels, so no words; no digits.
    assert!(!alphabet.iter().any(|c| "AEIOUY0123456789".contains(*c)));
}

#[tokio::test]
async fn ui_09_confusables_are_not_substituted_record() {
    // RFC 8628 §6.1 MAY: the alphabet has no digits and no vowels, so there is
    // nothing to map O, 0, 1 or I onto; they are dropped as outside the alphabet, the
    // code comes up short, and the page says what a code looks like. Recorded: no
    // substitution, and such a slip is not counted as a guess.
    let s = server().await;
    let da = s.authorize("tv").await;
    let slipped = format!("{}0", &da.user_code[..8]);
    let mut p = signed_in(&s, "alice").await;
    for _ in 0..CODE_LIMIT_PER_ACCOUNT.max_failures + 1 {
        let page = p.enter_code(&slipped).await;
        assert_eq!(page.status, 400);
        assert!(
            page.alert().unwrap().starts_with("A code has 8 letters"),
            "{page:?}"
        );
    }
    eprintln!(
        "UI-09 record: {slipped:?} is not substituted; refused as malformed (400), not counted"
    );
    // Not counted against the limit: the right code still goes through.
    p.open_consent(&da.user_code).await;
}

#[tokio::test]
async fn ui_10_unknown_expired_and_decided_codes_are_refused_and_make_no_progress() {
    let s = server().await;
    let mut p = signed_in(&s, "alice").await;

    // A random well-formed code.
    let unknown = p.enter_code("BCDF-GHJK").await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.alert().unwrap().starts_with(NOT_VALID));

    // Approved, then denied codes: entering them again is refused.
    let approved = s.authorize("tv").await;
    p.open_consent(&approved.user_code).await;
    assert_eq!(p.decide(&approved.user_code, "approve").await.status, 200);
    let again = p.enter_code(&approved.user_code).await;
    assert_eq!(again.status, 400);
    assert!(again.alert().unwrap().starts_with(NOT_VALID));
    let denied = s.authorize("tv").await;
    assert_eq!(s.decide(&denied.user_code, "deny", "bob").await.status, 200);
    assert!(p
        .enter_code(&denied.user_code)
        .await
        .alert()
        .unwrap()
        .starts_with(NOT_VALID));

    // No progress: the decided codes answer as they were decided.
    assert_eq!(s.poll("tv", &approved.device_code).await.status, 200);
    s.poll("tv", &denied.device_code)
        .await
        .assert_oauth_error(400, "access_denied");

    // An expired code.
    let expiring = s.authorize("tv").await;
    s.advance_ms(EXPIRES_IN * 1000);
    let late = p.enter_code(&expiring.user_code).await;
    assert!(late.alert().unwrap().starts_with(NOT_VALID));
    s.poll("tv", &expiring.device_code)
        .await
        .assert_oauth_error(400, "expired_token");

    // A code entered while live, left on the consent page past its expiry: the
    // decision is refused with the same answer.
    let slow = s.authorize("tv").await;
    p.open_consent(&slow.user_code).await;
    s.advance_ms(EXPIRES_IN * 1000);
    let refused = p.decide(&slow.user_code, "approve").await;
    assert_eq!(refused.status, 400);
    assert!(refused.alert().unwrap().starts_with(NOT_VALID));
}

#[tokio::test]
async fn ui_11_wrong_codes_are_rate_limited_per_account_and_per_ip() {
    let s = server().await;
    let da = s.authorize("tv").await;
    let wrong = |i: u32| {
        let alphabet = b"BCDFGHJKLMNPQRSTVWXZ";
        let mut code: Vec<u8> = b"BBBB-BB".to_vec();
        code.push(alphabet[(i / 20) as usize % 20]);
        code.push(alphabet[i as usize % 20]);
        String::from_utf8(code).unwrap()
    };
    let per_account = CODE_LIMIT_PER_ACCOUNT.max_failures;
    let per_ip = CODE_LIMIT_PER_IP.max_failures;
    assert!(
        per_account < 20 && per_ip <= 20,
        "throttling comes before K = 20"
    );

    // One account: `per_account` wrong codes, then even the right code is refused.
    let mut alice = signed_in(&s, "alice").await;
    for i in 0..per_account {
        assert_eq!(alice.enter_code(&wrong(i)).await.status, 400, "attempt {i}");
    }
    let throttled = alice.enter_code(&da.user_code).await;
    assert_eq!(throttled.status, 429);
    let message = throttled.alert().unwrap();
    assert!(
        message.starts_with("Too many wrong codes were entered from your account."),
        "{message}"
    );
    assert!(message.contains("try again in 10 minutes"), "{message}");
    assert_eq!(throttled.header("retry-after"), Some("600"));

    // One IP, several accounts: the IP's limit stops the next account.
    let mut bob = signed_in(&s, "bob").await;
    for i in 0..per_ip - per_account {
        assert_eq!(bob.enter_code(&wrong(100 + i)).await.status, 400);
    }
    let mut carol = signed_in(&s, "carol").await;
    let by_ip = carol.enter_code(&da.user_code).await;
    assert_eq!(by_ip.status, 429);
    assert!(by_ip
        .alert()
        .unwrap()
        .starts_with("Too many wrong codes were entered from your network."));

    // The window closes; the right code works again, and nothing was decided meanwhile.
    s.advance_ms(CODE_LIMIT_PER_ACCOUNT.window_ms);
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "expired_token");
    let fresh = s.authorize("tv").await;
    alice.open_consent(&fresh.user_code).await;
    eprintln!(
        "UI-11 record: throttled after {per_account} wrong codes per account and {per_ip} per IP in {} s (429, Retry-After)",
        CODE_LIMIT_PER_ACCOUNT.window_ms / 1000
    );
}

#[tokio::test]
async fn ui_12_unknown_expired_and_used_codes_get_one_answer() {
    let s = server().await;
    let mut p = signed_in(&s, "alice").await;
    let expired = s.authorize("tv").await;
    s.advance_ms(EXPIRES_IN * 1000 - 10_000);
    // Used: approved on the page and redeemed by the device.
    let used = s.authorize("tv").await;
    p.open_consent(&used.user_code).await;
    p.decide(&used.user_code, "approve").await;
    assert_eq!(s.poll("tv", &used.device_code).await.status, 200);
    let denied = s.authorize("tv").await;
    s.decide(&denied.user_code, "deny", "alice").await;
    let approved_not_redeemed = s.authorize("tv").await;
    s.decide(&approved_not_redeemed.user_code, "approve", "alice")
        .await;
    // `expired` is past its life now; the others are live but decided.
    s.advance_ms(10_000);
    let fresh_unknown = "ZZZZ-ZZZX";
    let answers = [
        (fresh_unknown.to_owned(), p.enter_code(fresh_unknown).await),
        (
            expired.user_code.clone(),
            p.enter_code(&expired.user_code).await,
        ),
        (used.user_code.clone(), p.enter_code(&used.user_code).await),
        (
            denied.user_code.clone(),
            p.enter_code(&denied.user_code).await,
        ),
        (
            approved_not_redeemed.user_code.clone(),
            p.enter_code(&approved_not_redeemed.user_code).await,
        ),
    ];
    let (first_code, first) = &answers[0];
    let canonical = first.body.replace(first_code.as_str(), "CODE");
    for (code, page) in &answers {
        assert_eq!(page.status, first.status, "{code}");
        assert_eq!(
            page.body.replace(code.as_str(), "CODE"),
            canonical,
            "{code}"
        );
    }
}

#[tokio::test]
async fn ui_13_pages_cannot_be_framed_or_cached() {
    let s = server().await;
    let da = s.authorize("tv").await;
    let mut p = Person::new(&s);
    let mut pages = vec![p.get("/device").await, p.get("/device/login").await];
    p.sign_in("alice").await;
    pages.push(p.get("/device").await);
    pages.push(p.get(&format!("/device?user_code={}", da.user_code)).await);
    pages.push(p.enter_code("BCDF-GHJK").await);
    pages.push(p.open_consent(&da.user_code).await);
    pages.push(p.decide(&da.user_code, "deny").await);
    pages.push(
        p.get(&format!("/device/display?user_code={}", da.user_code))
            .await,
    );
    pages.push(p.get("/device/nothing-here").await);
    for page in &pages {
        page.assert_protected();
        // No script anywhere: the pages need none, and the CSP allows none.
        assert!(!page.body.contains("<script"), "{page:?}");
    }
}

#[tokio::test]
async fn ui_14_only_the_session_that_entered_the_code_can_decide() {
    let s = server().await;
    let da = s.authorize("tv").await;
    let code = da.user_code.as_str();
    let mut alice = signed_in(&s, "alice").await;
    alice.open_consent(code).await;

    // Bob, signed in with his own valid session and CSRF token, posts approve for it.
    let mut bob = signed_in(&s, "bob").await;
    let refused = bob.decide(code, "approve").await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused
        .alert()
        .unwrap()
        .starts_with("Nothing was approved or denied"));
    // Bob with Alice's CSRF token, still his own cookie: refused.
    let stolen = alice.csrf.clone().unwrap();
    let forged = bob
        .post(
            "/device/consent",
            &[
                ("csrf", &stolen),
                ("user_code", code),
                ("action", "approve"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);

    // Alice's own browser without the CSRF token, or with a wrong one: refused.
    let no_token = alice
        .post(
            "/device/consent",
            &[("user_code", code), ("action", "approve")],
        )
        .await;
    assert_eq!(no_token.status, 403);
    assert_eq!(no_token.heading(), "This form has expired");
    let wrong_token = alice
        .post(
            "/device/consent",
            &[
                ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                ("user_code", code),
                ("action", "approve"),
            ],
        )
        .await;
    assert_eq!(wrong_token.status, 403);
    // No session at all: refused.
    let mut stranger = Person::new(&s);
    let anonymous = stranger
        .post(
            "/device/consent",
            &[("user_code", code), ("action", "approve")],
        )
        .await;
    assert_eq!(anonymous.status, 403);

    // Nothing was decided.
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "authorization_pending");

    // Alice decides, and the token is hers.
    let done = alice.decide(code, "approve").await;
    assert_eq!(done.status, 200, "{done:?}");
    s.advance_ms(INTERVAL * 1000);
    let token = s.poll("tv", &da.device_code).await.json();
    let introspected = s
        .post_with(
            INTROSPECT,
            &format!("token={}", token["access_token"].as_str().unwrap()),
            &[("authorization", &basic("conf", CONF_SECRET))],
        )
        .await
        .json();
    assert_eq!(introspected["username"], "alice");
}

#[tokio::test]
async fn ui_15_the_last_page_sends_the_person_back_to_the_device() {
    let s = server().await;
    let mut p = signed_in(&s, "alice").await;
    let approve = s.authorize("tv").await;
    p.open_consent(&approve.user_code).await;
    let done = p.decide(&approve.user_code, "approve").await;
    assert_eq!(done.heading(), "Device connected");
    assert!(done
        .body
        .contains("You approved <strong>Living-room TV</strong>. Go back to your device"));
    let deny = s.authorize("tv").await;
    p.open_consent(&deny.user_code).await;
    let denied = p.decide(&deny.user_code, "deny").await;
    assert_eq!(denied.heading(), "Request denied");
    assert!(denied.body.contains("Go back to your device"));
    s.advance_ms(INTERVAL * 1000);
    s.poll("tv", &deny.device_code)
        .await
        .assert_oauth_error(400, "access_denied");
    assert_eq!(s.poll("tv", &approve.device_code).await.status, 200);
}

/// Checklist MD-05, RFC 8414 §2: an issuer with a path (`http://h/auth`, a server
/// behind a proxy at a path) advertises its endpoints below that path, so they answer
/// there, and the person's pages keep every link, form and redirect below it. Only
/// root paths had answered: the advertised endpoints were 404, and `verification_uri`
/// (RFC 8628 §3.2) was a 404 page, or sent the browser to `/device/login`, out of the
/// path.
#[tokio::test]
async fn below_an_issuers_path_every_endpoint_and_page_answers_there() {
    let s = TestServer::start_as(
        &people_config(),
        deviceflow_server::Clock::manual(START_MS),
        Some("http://127.0.0.1/auth"),
    )
    .await;
    let metadata = s.get("/.well-known/oauth-authorization-server/auth").await;
    let metadata = metadata.json();
    for member in [
        "device_authorization_endpoint",
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ] {
        let url = metadata[member].as_str().expect(member);
        let path = url.strip_prefix("http://127.0.0.1").expect(url);
        assert!(path.starts_with("/auth/oauth/"), "{member}: {url}");
        // Each answers an empty form as itself: an RFC 6749 §5.2 error, not a 404.
        let refused = s.post(path, "").await;
        assert!(
            matches!(refused.status, 400 | 401) && refused.json()["error"].is_string(),
            "{member} at {path}: {} {:?}",
            refused.status,
            refused.body
        );
    }

    let da = s
        .post("/auth/oauth/device_authorization", "client_id=tv")
        .await;
    assert_eq!(da.status, 200, "{:?}", da.body);
    let da = da.json();
    let code = da["user_code"].as_str().unwrap();
    assert_eq!(da["verification_uri"], "http://127.0.0.1/auth/device");

    let mut p = Person::new(&s);
    let first = p.get("/auth/device").await;
    assert_eq!(first.location(), Some("/auth/device/login"), "{first:?}");
    let mut pages = vec![p.follow(first).await];
    let signed = p
        .submit(
            "/auth/device/login",
            &[("username", "alice"), ("password", &password_of("alice"))],
        )
        .await;
    assert_eq!(signed.location(), Some("/auth/device"), "{signed:?}");
    pages.push(p.follow(signed).await);
    let entered = p.submit("/auth/device", &[("user_code", code)]).await;
    assert_eq!(
        entered.location(),
        Some("/auth/device/consent"),
        "{entered:?}"
    );
    pages.push(p.follow(entered).await);
    pages.push(
        p.submit(
            "/auth/device/consent",
            &[("user_code", code), ("action", "approve")],
        )
        .await,
    );
    assert_eq!(pages.last().unwrap().heading(), "Device connected");
    for page in &pages {
        assert_eq!(page.status, 200, "{page:?}");
        assert!(page.body.contains(r#"action="/auth/device"#), "{page:?}");
        for outside in [r#"href="/device"#, r#"action="/device"#] {
            assert!(!page.body.contains(outside), "{outside} in {page:?}");
        }
    }
    let out = p.submit("/auth/device/logout", &[]).await;
    assert_eq!(out.location(), Some("/auth/device/login"), "{out:?}");
    // A path said in words is below the issuer's path too.
    let display = p.get("/auth/device/display").await;
    assert!(
        display
            .body
            .contains("Open it as /auth/device/display?user_code="),
        "{display:?}"
    );

    let token = s
        .post(
            "/auth/oauth/token",
            &poll_body("tv", da["device_code"].as_str().unwrap()),
        )
        .await;
    assert_eq!(token.status, 200, "{:?}", token.body);
    assert!(token.json()["access_token"].is_string());
}

/// An issuer's path that is also the start of our own paths (`https://h/oauth`,
/// `https://h/device`): a request is read below it only when it is no path of ours as
/// it came, so both a proxy that strips the prefix (`/oauth/token` reaches us) and a
/// direct request (`/oauth/oauth/token`) are answered. Stripped every time, the first
/// had become `/token` and a 404.
#[tokio::test]
async fn an_issuers_path_that_starts_our_own_paths_is_read_both_ways() {
    for (issuer, direct, stripped) in [
        (
            "http://127.0.0.1/oauth",
            "/oauth/oauth/device_authorization",
            "/oauth/device_authorization",
        ),
        (
            "http://127.0.0.1/device",
            "/device/oauth/device_authorization",
            "/oauth/device_authorization",
        ),
    ] {
        let s = TestServer::start_as(
            &people_config(),
            deviceflow_server::Clock::manual(START_MS),
            Some(issuer),
        )
        .await;
        for path in [direct, stripped] {
            let a = s.post(path, "client_id=tv").await;
            assert_eq!(a.status, 200, "{issuer}: {path}: {:?}", a.body);
        }
        if issuer.ends_with("/device") {
            for path in ["/device/login", "/device/device/login"] {
                let page = s.get(path).await;
                assert_eq!(page.status, 200, "{issuer}: {path}");
            }
        }
    }
}
