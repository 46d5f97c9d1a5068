//! The applications page (issue 13), over HTTP as a browser without script sends it:
//! administrators only (403 for anyone else), CSRF on every change, the verification
//! pages' headers, a secret shown once, rotation and deletion; and an application
//! registered there completes a device flow.

use crate::common::*;
use crate::person::{Page, Person};

const PAGE: &str = deviceflow_wire::paths::APPLICATIONS;

/// The text between `<code class="shown">` and `</code>` after `label`.
fn shown<'a>(page: &'a Page, label: &str) -> Option<&'a str> {
    let at = page.body.find(&format!("<dt>{label}</dt>"))?;
    let rest = &page.body[at..];
    let start = rest.find(r#"<code class="shown">"#)? + r#"<code class="shown">"#.len();
    let rest = &rest[start..];
    Some(&rest[..rest.find("</code>")?])
}

async fn signed_in<'a>(s: &'a TestServer, username: &str) -> Person<'a> {
    let mut p = Person::new(s);
    p.sign_in(username).await;
    p
}

#[tokio::test]
async fn only_administrators_see_the_applications_page() {
    let s = TestServer::start_with(&people_config()).await;
    let mut nobody = Person::new(&s);
    let page = nobody.get(PAGE).await;
    page.assert_protected();
    assert_eq!(
        (page.status, page.location()),
        (303, Some("/device/login?then=applications"))
    );

    let mut alice = signed_in(&s, "alice").await;
    let page = alice.get(PAGE).await;
    page.assert_protected();
    assert_eq!((page.status, page.heading()), (403, "Administrators only"));
    assert!(!page.body.contains("client_id"), "{}", page.body);
    // Nor can she register one, CSRF token and all.
    let page = alice
        .submit(
            PAGE,
            &[
                ("action", "register"),
                ("client_name", "Sneaky"),
                ("scope", "openid"),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(!page.body.contains("Sneaky"));
    // Her pages do not link to it; an administrator's do.
    assert!(!alice.get("/device").await.body.contains(PAGE));
    let mut carol = signed_in(&s, "carol").await;
    assert!(carol.get("/device").await.body.contains(PAGE));
}

/// Sent to sign in from the applications page, an administrator comes back to it; the
/// sign-in URL names the page by a word, and any other word leads to the code page,
/// never elsewhere (RFC 9700 §4.11, open redirectors).
#[tokio::test]
async fn signing_in_from_the_applications_page_leads_back_to_it() {
    let s = TestServer::start_with(&people_config()).await;
    let mut carol = Person::new(&s);
    let sent = carol.get(PAGE).await;
    let form = carol.follow(sent).await;
    assert_eq!((form.status, form.heading()), (200, "Sign in"));
    assert!(
        form.body
            .contains("Next: the applications page, for administrators."),
        "{}",
        form.body
    );
    // A wrong password shows the form again, still leading there.
    let wrong = carol
        .submit(
            "/device/login?then=applications",
            &[("username", "carol"), ("password", "wrong")],
        )
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(
        wrong
            .body
            .contains(r#"action="/device/login?then=applications""#),
        "{}",
        wrong.body
    );
    let credentials = [("username", "carol"), ("password", &password_of("carol"))];
    let signed = carol
        .submit("/device/login?then=applications", &credentials)
        .await;
    assert_eq!((signed.status, signed.location()), (303, Some(PAGE)));
    let page = carol.follow(signed).await;
    assert_eq!((page.status, page.heading()), (200, "Applications"));
    // Signed in already, the sign-in URL leads there at once.
    let again = carol.get("/device/login?then=applications").await;
    assert_eq!(again.location(), Some(PAGE));

    for then in [
        "https://attacker.example/",
        "//attacker.example",
        "/device/applications",
    ] {
        let mut dave = Person::new(&s);
        let path = format!(
            "/device/login?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("then", then)
                .finish()
        );
        assert_eq!(dave.get(&path).await.status, 200);
        let credentials = [("username", "carol"), ("password", &password_of("carol"))];
        let signed = dave.submit(&path, &credentials).await;
        assert_eq!(
            (signed.status, signed.location()),
            (303, Some("/device")),
            "then={then}"
        );
    }
}

#[tokio::test]
async fn an_administrator_registers_rotates_and_deletes_with_the_secret_shown_once() {
    let s = TestServer::start_with(&people_config()).await;
    let mut carol = signed_in(&s, "carol").await;
    let list = carol.get(PAGE).await;
    list.assert_protected();
    assert_eq!((list.status, list.heading()), (200, "Applications"));
    assert!(
        list.body.contains("<code>tv</code>"),
        "configured clients are listed"
    );

    refuses_a_forged_or_bad_registration(&mut carol).await;
    let (id, secret) = registers_with_the_secret_shown_once(&s, &mut carol).await;
    let new = rotates_the_secret(&s, &mut carol, &id, &secret).await;
    deletes_after_asking(&s, &mut carol, &id, &new).await;

    // A configured client cannot be deleted here.
    let page = carol
        .submit(PAGE, &[("action", "delete_confirmed"), ("client_id", "tv")])
        .await;
    assert_eq!(page.status, 404);
    let alert = page.alert().unwrap();
    assert!(
        alert.contains("or its embedded demo defaults), not registered"),
        "{alert}"
    );
    assert_eq!(s.post(DA, "client_id=tv").await.status, 200);
}

/// The device authorization request body for a confidential client.
fn da(id: &str, secret: &str) -> String {
    format!("client_id={id}&client_secret={secret}")
}

/// Without the session's CSRF token nothing happens; bad input is said on the
/// form, which keeps what was typed.
async fn refuses_a_forged_or_bad_registration(carol: &mut Person<'_>) {
    let forged = carol
        .post(
            PAGE,
            &[
                ("action", "register"),
                ("client_name", "Forged"),
                ("scope", "openid"),
            ],
        )
        .await;
    assert_eq!(
        (forged.status, forged.heading()),
        (403, "This form has expired")
    );

    let page = carol
        .submit(PAGE, &[("action", "register"), ("client_name", "No scope")])
        .await;
    assert_eq!(page.status, 400);
    assert!(
        page.alert().unwrap().contains("at least one scope"),
        "{:?}",
        page.alert()
    );
    assert!(page.body.contains(r#"value="No scope""#));
    let page = carol
        .submit(
            PAGE,
            &[
                ("action", "register"),
                ("client_name", "Bad scope"),
                ("scope", "openid admin"),
            ],
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(
        page.alert().unwrap().contains("admin"),
        "{:?}",
        page.alert()
    );
    assert!(page.body.contains(r#"value="openid admin""#));
    let page = carol
        .submit(
            PAGE,
            &[
                ("action", "register"),
                ("client_name", " "),
                ("scope", "openid"),
            ],
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(page.alert().unwrap().contains("client_name"));
}

/// Registers a confidential "Printer <3": its `client_id` and secret, which work,
/// and which the list never shows again.
async fn registers_with_the_secret_shown_once(
    s: &TestServer,
    carol: &mut Person<'_>,
) -> (String, String) {
    let page = carol
        .submit(
            PAGE,
            &[
                ("action", "register"),
                ("client_name", "Printer <3"),
                ("auth_method", "client_secret_post"),
                ("scope", "openid"),
            ],
        )
        .await;
    page.assert_protected();
    assert_eq!(
        (page.status, page.heading()),
        (200, "Application registered")
    );
    assert!(page.body.contains("Printer &lt;3"), "names are escaped");
    let id = shown(&page, "client_id").unwrap().to_owned();
    let secret = shown(&page, "Client secret").unwrap().to_owned();
    assert_eq!(s.post(DA, &da(&id, &secret)).await.status, 200);
    // A second application whose name reads as it is refused on the form, as by the
    // APIs (RFC 8628 §5.4: the consent page could not tell them apart).
    let again = carol
        .submit(
            PAGE,
            &[
                ("action", "register"),
                ("client_name", "PRINTER <3"),
                ("scope", "openid"),
            ],
        )
        .await;
    assert_eq!(again.status, 400);
    assert!(
        again.alert().unwrap().contains("already registered"),
        "{:?}",
        again.alert()
    );
    // Shown once: the list never shows it again.
    let list = carol.get(PAGE).await;
    assert!(list.body.contains(&id) && !list.body.contains(&secret));
    (id, secret)
}

/// Rotation: the new secret works, the old one no longer does.
async fn rotates_the_secret(
    s: &TestServer,
    carol: &mut Person<'_>,
    id: &str,
    secret: &str,
) -> String {
    let rotated = carol
        .submit(PAGE, &[("action", "rotate"), ("client_id", id)])
        .await;
    assert_eq!((rotated.status, rotated.heading()), (200, "New secret"));
    let new = shown(&rotated, "Client secret").unwrap().to_owned();
    assert_ne!(new, secret);
    s.post(DA, &da(id, secret))
        .await
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(s.post(DA, &da(id, &new)).await.status, 200);
    new
}

/// Delete asks first; the confirmation deletes.
async fn deletes_after_asking(s: &TestServer, carol: &mut Person<'_>, id: &str, secret: &str) {
    let ask = carol
        .submit(PAGE, &[("action", "delete"), ("client_id", id)])
        .await;
    assert_eq!((ask.status, ask.heading()), (200, "Delete Printer &lt;3?"));
    assert_eq!(
        s.post(DA, &da(id, secret)).await.status,
        200,
        "not deleted yet"
    );
    let done = carol
        .submit(PAGE, &[("action", "delete_confirmed"), ("client_id", id)])
        .await;
    assert_eq!(done.status, 200);
    assert!(
        done.body.contains("Printer &lt;3 was deleted."),
        "{}",
        done.body
    );
    assert!(!done.body.contains(id));
    s.post(DA, &da(id, secret))
        .await
        .assert_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn an_application_registered_on_the_page_completes_a_device_flow() {
    let s = TestServer::start_with(&people_config()).await;
    let mut carol = signed_in(&s, "carol").await;
    carol.get(PAGE).await;
    let page = carol
        .submit(
            PAGE,
            &[
                ("action", "register"),
                ("client_name", "Garage TV"),
                ("auth_method", "none"),
                ("scope", "openid tv"),
                ("with_refresh", "on"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        shown(&page, "Client secret"),
        None,
        "a public client has none"
    );
    let client_id = shown(&page, "client_id").unwrap();

    // The person approves on the consent page, which names the application.
    let da = s.authorize(client_id).await;
    let mut alice = signed_in(&s, "alice").await;
    let consent = alice.open_consent(&da.user_code).await;
    assert!(consent.body.contains("Garage TV"), "{}", consent.body);
    let done = alice.decide(&da.user_code, "approve").await;
    assert_eq!(done.status, 200);
    let token = s.poll(client_id, &da.device_code).await;
    assert_eq!(token.status, 200, "{:?}", token.body);
    assert_eq!(token.json()["scope"], "openid tv");
    assert!(token.json()["refresh_token"].is_string());
}
