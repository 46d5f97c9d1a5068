//! Signing in and out of the verification pages: the session cookie, login CSRF,
//! equal answers for unknown users and wrong passwords, and the sign-in rate limits.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use deviceflow_server::storage::rate_limit::{
    SIGN_IN_LIMIT_PER_ACCOUNT, SIGN_IN_LIMIT_PER_IP, SIGN_IN_LIMIT_PER_KNOWN_BROWSER,
    SIGN_IN_LIMIT_PER_USERNAME,
};
use deviceflow_server::storage::web_sessions::SIGNED_IN_TTL_MS;
use deviceflow_server::verification::csrf::SIGN_IN_FORM_TTL_MS;
use deviceflow_server::{App, Clock, FileConfig, Settings};
use http_body_util::{BodyExt, Full};
use hyper::Request;

use crate::common::*;
use crate::person::{Page, Person};

async fn server() -> TestServer {
    TestServer::start_with(&people_config()).await
}

async fn try_sign_in(p: &mut Person<'_>, username: &str, password: &str) -> Page {
    if p.csrf.is_none() {
        p.get("/device/login").await;
    }
    p.submit(
        "/device/login",
        &[("username", username), ("password", password)],
    )
    .await
}

#[tokio::test]
async fn the_session_cookie_is_http_only_lax_and_renewed_at_sign_in() {
    let s = server().await;
    let mut p = Person::new(&s);
    let login = p.get("/device/login").await;
    let anonymous = login.header("set-cookie").unwrap().to_owned();
    assert!(anonymous.starts_with("deviceflow-session="), "{anonymous}");
    assert!(
        anonymous.ends_with("; Path=/; HttpOnly; SameSite=Lax"),
        "{anonymous}"
    );
    let before = p.cookie.clone().unwrap();
    let signed = try_sign_in(&mut p, "alice", &password_of("alice")).await;
    assert_eq!((signed.status, signed.location()), (303, Some("/device")));
    let after = signed.header("set-cookie").unwrap();
    assert!(
        after.ends_with("; Path=/; HttpOnly; SameSite=Lax"),
        "{after}"
    );
    // A new session id at sign-in: the anonymous one (which an attacker could have
    // planted) is not signed in (session fixation).
    assert_ne!(p.cookie.as_deref(), Some(before.as_str()));
    let mut planted = Person::new(&s);
    planted.cookie = Some(before);
    assert_eq!(
        planted.get("/device").await.location(),
        Some("/device/login")
    );
    // The new one is.
    assert_eq!(p.get("/device").await.heading(), "Connect a device");
}

/// Spaces typed or pasted around a username are not part of it (configured usernames
/// have none): " alice " signs in as alice. Failed before: "Wrong username or password".
#[tokio::test]
async fn spaces_around_the_typed_username_are_not_part_of_it() {
    let s = server().await;
    let mut p = Person::new(&s);
    let signed = try_sign_in(&mut p, " alice\t", &password_of("alice")).await;
    assert_eq!(
        (signed.status, signed.location()),
        (303, Some("/device")),
        "{}",
        signed.body
    );
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_get_the_same_answer() {
    let s = server().await;
    let mut p = Person::new(&s);
    let wrong = try_sign_in(&mut p, "alice", "not-her-password").await;
    let unknown = try_sign_in(&mut p, "mallory", "whatever").await;
    let no_password = try_sign_in(&mut p, "alice", "").await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.alert(), Some("Wrong username or password."));
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(
        unknown.body.replace("mallory", "USER"),
        wrong.body.replace("alice", "USER")
    );
    // The username is kept, the password never is; the form says what was wrong.
    assert!(wrong.body.contains(r#"value="alice""#));
    assert!(!wrong.body.contains("not-her-password"));
    assert!(wrong
        .body
        .contains(r#"aria-invalid="true" aria-describedby="sign-in-error""#));
    assert_eq!(no_password.status, 400);
    assert_eq!(
        no_password.alert(),
        Some("Enter your username and your password.")
    );
}

#[tokio::test]
async fn users_without_a_password_cannot_sign_in() {
    let s = TestServer::start().await;
    let mut p = Person::new(&s);
    let refused = try_sign_in(&mut p, "alice", &password_of("alice")).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.alert(), Some("Wrong username or password."));
}

#[tokio::test]
async fn sign_in_needs_the_forms_csrf_token() {
    // Login CSRF: another site must not be able to sign a person in.
    let s = server().await;
    let fields = [("username", "alice"), ("password", "alice-password")];
    let mut cold = Person::new(&s);
    let no_session = cold.post("/device/login", &fields).await;
    assert_eq!(no_session.status, 403);
    assert_eq!(no_session.heading(), "This form has expired");
    assert!(no_session.header("set-cookie").is_none());
    cold.get("/device/login").await;
    assert_eq!(cold.post("/device/login", &fields).await.status, 403);
    let mut other = Person::new(&s);
    other.get("/device/login").await;
    let mut with_theirs = vec![("csrf", other.csrf.as_deref().unwrap())];
    with_theirs.extend_from_slice(&fields);
    assert_eq!(cold.post("/device/login", &with_theirs).await.status, 403);
    assert_eq!(cold.get("/device").await.location(), Some("/device/login"));
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_username_and_per_ip() {
    let s = server().await;
    let per_user = SIGN_IN_LIMIT_PER_USERNAME.max_failures;
    let per_ip = SIGN_IN_LIMIT_PER_IP.max_failures;
    let mut p = Person::new(&s);
    for _ in 0..per_user {
        assert_eq!(try_sign_in(&mut p, "alice", "guess").await.status, 400);
    }
    let throttled = try_sign_in(&mut p, "alice", &password_of("alice")).await;
    assert_eq!(throttled.status, 429);
    assert!(throttled
        .alert()
        .unwrap()
        .starts_with("Too many sign-ins for this username."));
    assert_eq!(throttled.header("retry-after"), Some("600"));
    // Unknown usernames are limited the same way, so the limit tells nothing.
    for _ in 0..per_ip - per_user {
        assert_eq!(try_sign_in(&mut p, "nobody", "guess").await.status, 400);
    }
    // The IP has had its share: even bob, with his password, waits.
    let by_ip = try_sign_in(&mut p, "bob", &password_of("bob")).await;
    assert_eq!(by_ip.status, 429);
    assert!(by_ip
        .alert()
        .unwrap()
        .starts_with("Too many failed sign-ins from your network."));
    // Each refusal is counted, whatever the audit log says of them (helper-67: a
    // burst's tail never reached the log, and only the quotas had a counter).
    let metrics = String::from_utf8(s.get("/metrics").await.body.to_vec()).unwrap();
    for counted in [
        "deviceflow_throttled_total{limit=\"sign_in_per_username\"} 1\n",
        "deviceflow_throttled_total{limit=\"sign_in_per_ip\"} 1\n",
    ] {
        assert!(metrics.contains(counted), "{counted}: {metrics}");
    }
    s.advance_ms(SIGN_IN_LIMIT_PER_IP.window_ms);
    assert_eq!(
        try_sign_in(&mut p, "alice", &password_of("alice"))
            .await
            .status,
        303
    );
}

/// A success costs no guess but one argon2 verification: whoever holds a password
/// (their own) signing in over and over, from as many addresses as they like, would
/// keep the hashing pool from everyone (helper-60). Each account's sign-ins are held
/// to SIGN_IN_LIMIT_PER_ACCOUNT; past it, 429 with the password unchecked, until the
/// window ends. Strangers' wrong guesses are not counted there, and other people sign
/// in meanwhile.
#[tokio::test]
async fn an_account_signing_in_over_and_over_is_held_back_and_no_one_else_is() {
    let s = server().await;
    let per_account = SIGN_IN_LIMIT_PER_ACCOUNT.max_failures;
    let mut stranger = Person::from_address(&s, [127, 0, 0, 2].into());
    for _ in 0..SIGN_IN_LIMIT_PER_USERNAME.max_failures - 1 {
        assert_eq!(
            try_sign_in(&mut stranger, "alice", "guess").await.status,
            400
        );
    }
    for n in 0..per_account {
        // Each from its own address and browser, as a script spreading out would.
        let from = std::net::IpAddr::from([127, 0, 1, (n % 200) as u8 + 1]);
        let mut browser = Person::from_address(&s, from);
        let signed = try_sign_in(&mut browser, "alice", &password_of("alice")).await;
        assert_eq!(signed.status, 303, "sign-in {n}: {signed:?}");
    }
    let mut one_more = Person::from_address(&s, [127, 0, 2, 1].into());
    let held = try_sign_in(&mut one_more, "alice", &password_of("alice")).await;
    assert_eq!(held.status, 429, "{held:?}");
    assert!(held
        .alert()
        .unwrap()
        .starts_with("Too many sign-ins for this username."));
    assert_eq!(
        one_more.get("/device").await.location(),
        Some("/device/login")
    );
    // Someone else signs in; so does alice once the window has passed.
    Person::new(&s).sign_in("bob").await;
    s.advance_ms(SIGN_IN_LIMIT_PER_ACCOUNT.window_ms);
    assert_eq!(
        try_sign_in(&mut one_more, "alice", &password_of("alice"))
            .await
            .status,
        303
    );
}

/// Anyone who knows a username can fill its window with wrong passwords. The person,
/// in a browser where they signed in before, still signs in, and their own wrong
/// passwords there are limited per browser; the stranger stays held back (OWASP's
/// device cookies). Failed before: 429 "Too many sign-ins for this username".
#[tokio::test]
async fn a_strangers_guesses_do_not_lock_a_person_out_of_a_browser_they_signed_in_from() {
    let s = server().await;
    let mut person = Person::new(&s);
    person.sign_in("alice").await;
    let known = person
        .known
        .clone()
        .expect("a sign-in makes the browser known");
    person.sign_out().await;
    let mut stranger = Person::from_address(&s, [127, 0, 0, 2].into());
    for _ in 0..SIGN_IN_LIMIT_PER_USERNAME.max_failures {
        assert_eq!(
            try_sign_in(&mut stranger, "alice", "guess").await.status,
            400
        );
    }
    let locked = try_sign_in(&mut stranger, "alice", &password_of("alice")).await;
    assert_eq!(locked.status, 429);
    assert!(locked
        .alert()
        .unwrap()
        .starts_with("Too many sign-ins for this username."));

    // The person's browser is not the stranger's: it signs in, and is known afresh.
    person.sign_in("alice").await;
    assert_ne!(person.known.as_ref(), Some(&known));
    person.sign_out().await;
    // The person's success gave the stranger no more tries.
    let still = try_sign_in(&mut stranger, "alice", &password_of("alice")).await;
    assert_eq!(still.status, 429);

    // The person's own wrong passwords are limited in that browser, with the
    // username's limit.
    for _ in 0..SIGN_IN_LIMIT_PER_KNOWN_BROWSER.max_failures {
        assert_eq!(try_sign_in(&mut person, "alice", "typo").await.status, 400);
    }
    let paused = try_sign_in(&mut person, "alice", &password_of("alice")).await;
    assert_eq!(paused.status, 429);
    assert!(paused
        .alert()
        .unwrap()
        .starts_with("Too many failed sign-ins in this browser."));
    assert_eq!(paused.header("retry-after"), Some("600"));

    // The cookie is alice's: bob typed in that browser is a stranger's sign-in, held
    // by bob's username.
    let mut other = Person::from_address(&s, [127, 0, 0, 3].into());
    other.known = person.known.clone();
    for _ in 0..SIGN_IN_LIMIT_PER_USERNAME.max_failures {
        assert_eq!(try_sign_in(&mut other, "bob", "guess").await.status, 400);
    }
    let bob = try_sign_in(&mut other, "bob", &password_of("bob")).await;
    assert!(bob
        .alert()
        .unwrap()
        .starts_with("Too many sign-ins for this username."));
    // A value changed by one character is no known browser either.
    let mut forged = Person::from_address(&s, [127, 0, 0, 4].into());
    let mut value = known.into_bytes();
    let at = value.iter().position(|&b| b == b'=').unwrap() + 3;
    value[at] = if value[at] == b'A' { b'B' } else { b'A' };
    forged.known = Some(String::from_utf8(value).unwrap());
    let refused = try_sign_in(&mut forged, "alice", &password_of("alice")).await;
    assert_eq!(refused.status, 429);
    assert!(refused
        .alert()
        .unwrap()
        .starts_with("Too many sign-ins for this username."));
}

#[tokio::test]
async fn a_successful_sign_in_clears_the_usernames_failures() {
    let s = server().await;
    let mut p = Person::new(&s);
    for _ in 0..SIGN_IN_LIMIT_PER_USERNAME.max_failures - 1 {
        try_sign_in(&mut p, "alice", "guess").await;
    }
    assert_eq!(
        try_sign_in(&mut p, "alice", &password_of("alice"))
            .await
            .status,
        303
    );
    let mut again = Person::new(&s);
    assert_eq!(try_sign_in(&mut again, "alice", "typo").await.status, 400);
    assert_eq!(
        try_sign_in(&mut again, "alice", &password_of("alice"))
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let s = server().await;
    let mut p = Person::new(&s);
    let form = p.sign_in("alice").await;
    assert!(form
        .body
        .contains("Signed in as <strong>Alice Example</strong> (alice)"));
    let cookie = p.cookie.clone();
    // Without the CSRF token: refused, still signed in.
    let forged = p.post("/device/logout", &[]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(p.get("/device").await.status, 200);
    // Typed in the address bar: a page whose buttons sign out (GET itself does not).
    let page = p.get("/device/logout").await;
    assert_eq!((page.status, page.heading()), (200, "Sign out"));
    assert!(
        page.body
            .contains(r#"<form method="post" action="/device/logout">"#),
        "{}",
        page.body
    );
    assert_eq!(p.get("/device").await.status, 200, "still signed in");
    let out = p.submit("/device/logout", &[]).await;
    assert_eq!((out.status, out.location()), (303, Some("/device/login")));
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    // The old cookie is worth nothing now.
    let mut replay = Person::new(&s);
    replay.cookie = cookie;
    assert_eq!(
        replay.get("/device").await.location(),
        Some("/device/login")
    );
    // Signed out, the sign-out page is the sign-in page.
    assert_eq!(
        p.get("/device/logout").await.location(),
        Some("/device/login")
    );
}

/// Signing out leaves the browser known (the person's own phone stays out of reach
/// of a stranger's lockout); "Sign out and forget this browser" clears that cookie
/// too, so whoever holds a phone that was not the person's gets no window of guesses
/// of that browser's own (helper-60: 10 more guesses a window per such phone).
#[tokio::test]
async fn signing_out_can_forget_the_browser_and_otherwise_keeps_it_known() {
    let s = server().await;
    let mut p = Person::new(&s);
    let page = p.sign_in("alice").await;
    assert!(page.body.contains(
        r#"<button type="submit" name="action" value="forget-browser">Sign out and forget this browser</button>"#
    ));
    p.sign_out().await;
    assert!(
        p.known.is_some(),
        "a plain sign-out keeps the browser known"
    );

    p.sign_in("alice").await;
    let out = p
        .submit("/device/logout", &[("action", "forget-browser")])
        .await;
    assert_eq!((out.status, out.location()), (303, Some("/device/login")));
    let cleared: Vec<&str> = out
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cleared.len(), 2, "{cleared:?}");
    assert!(
        cleared.iter().all(|c| c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    assert!(p.cookie.is_none() && p.known.is_none());
    p.csrf = None;
    // Now a stranger's sign-in in that browser: counted against the username.
    for _ in 0..SIGN_IN_LIMIT_PER_USERNAME.max_failures {
        assert_eq!(try_sign_in(&mut p, "alice", "guess").await.status, 400);
    }
    let held = try_sign_in(&mut p, "alice", &password_of("alice")).await;
    assert!(held
        .alert()
        .unwrap()
        .starts_with("Too many sign-ins for this username."));

    // A session that ended already (its hour): asked to, the browser is forgotten
    // all the same (helper-67: only the session cookie was cleared).
    let mut q = Person::from_address(&s, [127, 0, 0, 9].into());
    q.sign_in("bob").await;
    assert!(q.known.is_some());
    s.advance_ms(SIGNED_IN_TTL_MS);
    let out = q
        .submit("/device/logout", &[("action", "forget-browser")])
        .await;
    assert_eq!((out.status, out.location()), (303, Some("/device/login")));
    assert!(q.cookie.is_none() && q.known.is_none(), "{out:?}");
}

#[tokio::test]
async fn a_sign_in_lasts_an_hour() {
    let s = server().await;
    let mut p = Person::new(&s);
    p.sign_in("alice").await;
    s.advance_ms(SIGNED_IN_TTL_MS - 1);
    assert_eq!(p.get("/device").await.status, 200);
    s.advance_ms(1);
    assert_eq!(p.get("/device").await.location(), Some("/device/login"));
    s.app.sweep(usize::MAX);
    assert!(s.app.store.web_sessions().is_empty());
}

/// One request in-process, as if from `peer`.
async fn in_process(
    app: &App,
    peer: &str,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> Page {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "192.0.2.100");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    if method == "POST" {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let r = app
        .handle(req, peer.parse::<SocketAddr>().unwrap().ip())
        .await;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    // reqwest's HeaderMap is http 1's, the same type as hyper's.
    Page {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn app(issuer: &str) -> Arc<App> {
    let settings = Settings::from_file(FileConfig::parse(&people_config(), "t").unwrap()).unwrap();
    Arc::new(App::new(
        settings,
        issuer.to_owned(),
        Clock::manual(START_MS),
    ))
}

#[tokio::test]
async fn behind_https_the_cookie_is_secure_and_host_prefixed() {
    let https = app("https://auth.example.test");
    let login = in_process(&https, "192.0.2.1:1000", "GET", "/device/login", None, "").await;
    let cookie = login.header("set-cookie").unwrap();
    assert!(cookie.starts_with("__Host-deviceflow-session="), "{cookie}");
    assert!(
        cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax; Secure"),
        "{cookie}"
    );
    assert!(!cookie.contains("Domain"));
    assert!(login.body.contains("<span>auth.example.test</span>"));
    // RFC 6797: the browser keeps to https from then on; on every page, refusals too.
    for (method, path) in [
        ("GET", "/device/login"),
        ("GET", "/device/nowhere"),
        ("PUT", "/device"),
    ] {
        let page = in_process(&https, "192.0.2.1:1000", method, path, None, "").await;
        assert_eq!(
            page.header("strict-transport-security"),
            Some("max-age=31536000"),
            "{method} {path}: {}",
            page.status
        );
    }
    let plain = app("http://127.0.0.1");
    let login = in_process(&plain, "192.0.2.1:1000", "GET", "/device/login", None, "").await;
    assert_eq!(
        login.header("strict-transport-security"),
        None,
        "only behind https"
    );
}

#[tokio::test]
async fn the_ip_limit_is_per_tcp_peer_address() {
    let app = app("http://127.0.0.1");
    let login = in_process(&app, "192.0.2.1:1000", "GET", "/device/login", None, "").await;
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = login.csrf().unwrap();
    let attempt = |peer: &'static str, user: String| {
        let app = Arc::clone(&app);
        let cookie = cookie.clone();
        let body = format!("csrf={csrf}&username={user}&password=guess");
        async move { in_process(&app, peer, "POST", "/device/login", Some(&cookie), &body).await }
    };
    for i in 0..SIGN_IN_LIMIT_PER_IP.max_failures {
        assert_eq!(attempt("192.0.2.1:1000", format!("u{i}")).await.status, 400);
    }
    // Another port of the same host: the same client.
    assert_eq!(attempt("192.0.2.1:2000", "x".into()).await.status, 429);
    // Another host is not held back by the first one's guesses.
    assert_eq!(attempt("192.0.2.2:1000", "x".into()).await.status, 400);
    // IPv6: one /64 is one client.
    for i in 0..SIGN_IN_LIMIT_PER_IP.max_failures {
        let peer: &'static str = if i % 2 == 0 {
            "[2001:db8::1]:1"
        } else {
            "[2001:db8::2]:1"
        };
        assert_eq!(attempt(peer, format!("v{i}")).await.status, 400);
    }
    assert_eq!(attempt("[2001:db8::ffff]:1", "y".into()).await.status, 429);
    assert_eq!(attempt("[2001:db8:0:1::1]:1", "y".into()).await.status, 400);
}

#[tokio::test]
async fn a_sign_in_form_lasts_thirty_minutes_and_its_cookie_is_kept_meanwhile() {
    let s = server().await;
    let mut p = Person::new(&s);
    let first = p.get("/device/login").await;
    assert!(first.header("set-cookie").is_some());
    let token = p.csrf.clone();
    // Another tab: the same cookie and the same form token, nothing new to store.
    let again = p.get("/device/login").await;
    assert!(again.header("set-cookie").is_none());
    assert_eq!(again.csrf(), token);
    s.advance_ms(SIGN_IN_FORM_TTL_MS);
    let fields = [("username", "alice"), ("password", "alice-password")];
    let expired = p.submit("/device/login", &fields).await;
    assert_eq!(
        (expired.status, expired.heading()),
        (403, "This form has expired")
    );
    // Opening the page again gives a new form that works.
    let renewed = p.get("/device/login").await;
    assert!(renewed.header("set-cookie").is_some());
    assert_ne!(renewed.csrf(), token);
    assert_eq!(p.submit("/device/login", &fields).await.status, 303);
    // What stays counted is the sign-in of alice's account (SIGN_IN_LIMIT_PER_ACCOUNT),
    // no failure.
    assert_eq!(s.app.store.limiter().len(), 1);
}

/// `n` sign-in POSTs at once, all from one browser (one cookie, one form), all for
/// `username` with a wrong password; the statuses, in no particular order.
async fn parallel_wrong_passwords(s: &TestServer, username: &str, n: usize) -> Vec<u16> {
    let mut p = Person::new(s);
    p.get("/device/login").await;
    let cookie = p.cookie.clone().unwrap();
    let body = format!(
        "csrf={}&username={username}&password=guess",
        p.csrf.clone().unwrap()
    );
    let posts = (0..n).map(|_| {
        let req = s
            .http
            .post(format!("{}/device/login", s.base))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone());
        tokio::spawn(async move { req.send().await.expect("request").status().as_u16() })
    });
    let mut statuses = Vec::with_capacity(n);
    for post in posts.collect::<Vec<_>>() {
        statuses.push(post.await.unwrap());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_for_one_username_are_evaluated_at_most_the_limit() {
    let s = server().await;
    let statuses = parallel_wrong_passwords(&s, "alice", 256).await;
    // 400 "Wrong username or password" is a password that was checked.
    let evaluated = statuses.iter().filter(|&&st| st == 400).count();
    assert!(
        (1..=SIGN_IN_LIMIT_PER_USERNAME.max_failures as usize).contains(&evaluated),
        "{evaluated} of 256 parallel guesses were evaluated"
    );
    // The others were refused unevaluated: throttled, or the hashing pool was full.
    assert!(
        statuses.iter().all(|st| [400, 429, 503].contains(st)),
        "{statuses:?}"
    );
    // And the limit still holds afterwards, even for the right password.
    let mut p = Person::new(&s);
    let after = try_sign_in(&mut p, "alice", &password_of("alice")).await;
    assert_eq!(after.status, 429);
}

#[tokio::test]
async fn anonymous_sign_in_pages_keep_nothing_on_the_server() {
    let s = server().await;
    // More visits than the old session map held (100,000), from 400 addresses.
    for i in 0..100_001u32 {
        let peer = format!("10.0.{}.{}:4000", (i % 400) / 200, i % 200 + 1);
        let page = in_process(&s.app, &peer, "GET", "/device/login", None, "").await;
        assert_eq!(page.status, 200, "visit {i}: {}", page.heading());
    }
    assert!(s.app.store.web_sessions().is_empty());
    assert!(s.app.store.limiter().is_empty());
    // A new visitor signs in and approves a device.
    let da = s.authorize("tv").await;
    let mut p = Person::new(&s);
    assert_eq!(p.sign_in("alice").await.heading(), "Connect a device");
    p.open_consent(&da.user_code).await;
    let done = p.decide(&da.user_code, "approve").await;
    assert_eq!((done.status, done.heading()), (200, "Device connected"));
    assert_eq!(s.app.store.web_sessions().len(), 1);
}

#[tokio::test]
async fn one_user_keeps_at_most_sixteen_sessions_and_the_oldest_goes_first() {
    let s = server().await;
    let mut people = Vec::new();
    for _ in 0..17 {
        let mut p = Person::new(&s);
        assert_eq!(p.sign_in("alice").await.heading(), "Connect a device");
        people.push(p);
    }
    assert_eq!(s.app.store.web_sessions().len(), 16);
    // The first sign-in was evicted; the second and the last still stand.
    assert_eq!(
        people[0].get("/device").await.location(),
        Some("/device/login")
    );
    assert_eq!(people[1].get("/device").await.status, 200);
    assert_eq!(people[16].get("/device").await.status, 200);
    // Another user is not affected.
    let mut bob = Person::new(&s);
    assert_eq!(bob.sign_in("bob").await.heading(), "Connect a device");
    assert_eq!(s.app.store.web_sessions().len(), 17);
}

/// A server on [`people_config`] with one password hashing thread and `queue` slots.
async fn with_one_hashing_thread(queue: usize) -> TestServer {
    TestServer::start_with(&people_config().replace(
        "[admin]",
        &format!("[limits]\npassword_hash_workers = 1\npassword_hash_queue = {queue}\n[admin]"),
    ))
    .await
}

/// One source gets one verification at a time: a correct sign-in costs no try, so a
/// source signing in correctly over and over (with a reused form) had taken every
/// hashing thread and queue slot, and everyone else got "Sign-in is busy". A second
/// sign-in from that source meanwhile is refused at once (429, no try counted); one
/// from another source waits its turn and signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_gets_one_verification_at_a_time_and_others_still_sign_in() {
    let s = with_one_hashing_thread(3).await;
    let hashing = &s.app.verification.hashing;
    // The one worker, held until the test lets go: verifications queue behind it.
    let (release, hold) = std::sync::mpsc::channel::<()>();
    hashing
        .try_run(move |_| {
            let _ = hold.recv();
        })
        .unwrap();
    let until_in_flight = |n| async move {
        while hashing.in_flight() < n {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    let mut first = Person::new(&s);
    first.get("/device/login").await;
    let mut again = Person::new(&s);
    again.get("/device/login").await;
    let mut elsewhere = Person::from_address(&s, std::net::IpAddr::from([127, 0, 0, 2]));
    elsewhere.get("/device/login").await;

    let password = password_of("alice");
    let bob_password = password_of("bob");
    let (first_signed, ()) = tokio::join!(try_sign_in(&mut first, "alice", &password), async {
        until_in_flight(2).await;
        // At once: a sign-in queued behind the held worker would never be answered.
        let refused = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            try_sign_in(&mut again, "alice", &password),
        )
        .await
        .expect("a second sign-in from the source is answered at once, not queued");
        assert_eq!(refused.status, 429, "{}", refused.body);
        assert_eq!(refused.header("retry-after"), Some("1"));
        assert!(
            refused
                .body
                .contains("A sign-in from your network is being checked"),
            "{}",
            refused.body
        );
        assert_eq!(hashing.in_flight(), 2, "the refused one is not queued");
        let (elsewhere_signed, ()) =
            tokio::join!(try_sign_in(&mut elsewhere, "bob", &bob_password), async {
                until_in_flight(3).await;
                drop(release);
            });
        assert_eq!(elsewhere_signed.status, 303, "{}", elsewhere_signed.body);
    });
    assert_eq!(first_signed.status, 303, "{}", first_signed.body);
    // The refusal cost no try: the same browser signs in now.
    let signed = try_sign_in(&mut again, "alice", &password).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_beyond_the_hashing_pool_gets_503_at_once_and_no_work() {
    let s = with_one_hashing_thread(1).await;
    let hashing = &s.app.verification.hashing;
    // The one worker and the one queue slot, held until the test lets go.
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let hold = std::sync::Arc::new(std::sync::Mutex::new(hold));
    for _ in 0..2 {
        let hold = std::sync::Arc::clone(&hold);
        hashing
            .try_run(move |_| {
                let _ = hold.lock().unwrap().recv();
            })
            .unwrap();
    }
    let mut p = Person::new(&s);
    p.get("/device/login").await;
    let body = format!(
        "csrf={}&username=alice&password=guess",
        p.csrf.clone().unwrap()
    );
    let cookie = p.cookie.clone().unwrap();
    let burst: Vec<_> = (0..64)
        .map(|_| {
            let req = s
                .http
                .post(format!("{}/device/login", s.base))
                .header("cookie", &cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone());
            tokio::spawn(async move {
                let r = req.send().await.expect("request");
                let status = r.status().as_u16();
                let retry = r.headers().get("retry-after").cloned();
                (status, retry, r.text().await.unwrap())
            })
        })
        .collect();
    let mut busy = 0;
    for answer in burst {
        let (status, retry, body) = answer.await.unwrap();
        // Nothing was verified: no 400. Refusals from the pool or, while many of the
        // burst hold a count for an instant, from the per-IP limit.
        assert!([503, 429].contains(&status), "{status}: {body}");
        if status == 503 {
            busy += 1;
            assert_eq!(retry.as_ref().map(|v| v.to_str().unwrap()), Some("2"));
            assert!(body.contains("Sign-in is busy right now"), "{body}");
        }
    }
    assert!(busy > 0);
    assert_eq!((hashing.in_flight(), hashing.threads()), (2, 1));
    // Refused attempts were not guesses: once the pool is free, alice signs in.
    drop(release);
    while hashing.in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    assert!(s.app.store.limiter().is_empty());
    let signed = try_sign_in(&mut p, "alice", &password_of("alice")).await;
    assert_eq!(signed.status, 303);
}

/// Wrong passwords from many addresses, each refused at once while the hashing pool is
/// full (and so costing none of its address's guesses), kept the pool full for
/// everyone: the account's owner, on the browser they signed in on before, got "Sign-in
/// is busy" too (review helper-97). A quarter of the pool (one place of four here) is
/// kept for known browsers: a stranger is refused once the rest is taken, the known
/// browser is verified and signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_pool_keeps_a_place_for_a_browser_known_to_the_account() {
    let s = with_one_hashing_thread(3).await;
    let hashing = &s.app.verification.hashing;
    let password = password_of("alice");
    // Alice's phone: signed in once, signed out, still known.
    let mut phone = Person::from_address(&s, std::net::IpAddr::from([127, 0, 0, 3]));
    phone.sign_in("alice").await;
    assert!(phone.known.is_some());
    phone.sign_out().await;
    phone.get("/device/login").await;
    // The flood's three places (the worker and two of the queue), held.
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let hold = std::sync::Arc::new(std::sync::Mutex::new(hold));
    for _ in 0..3 {
        let hold = std::sync::Arc::clone(&hold);
        hashing
            .try_run(move |_| {
                let _ = hold.lock().unwrap().recv();
            })
            .unwrap();
    }
    let mut stranger = Person::from_address(&s, std::net::IpAddr::from([127, 0, 0, 4]));
    let refused = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        try_sign_in(&mut stranger, "bob", &password_of("bob")),
    )
    .await
    .expect("a stranger is refused at once, not queued in the kept place");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(
        refused.body.contains("Sign-in is busy right now"),
        "{}",
        refused.body
    );
    // Let go once the phone's verification is queued, or after 5 s whatever came of
    // it (refused, the pool still full: the test fails on its answer, not a hang).
    let (signed, ()) = tokio::join!(try_sign_in(&mut phone, "alice", &password), async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while hashing.in_flight() < 4 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        drop(release);
    });
    assert_eq!(signed.status, 303, "{}", signed.body);
}
