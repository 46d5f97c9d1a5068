//! The content of each verification page, as HTML. Layout and headers are `html.rs`'s;
//! which page to show, and when, is the handlers'.
//!
//! Accessibility, on every page: one `<h1>`; every input has a `<label>`; hints and
//! errors are tied to their input with `aria-describedby`, and errors are `role=alert`
//! so a screen reader announces them; the DOM order is the focus order (the form, then
//! the secondary actions below it).

use super::csrf;
use super::html::escape;
use super::paths;
use crate::http::form::percent_encode;
use crate::protocol::user_code::UserCode;

/// An error shown above a form, and announced.
fn alert(id: &str, message: &str) -> String {
    format!(
        r#"<div class="error" id="{id}" role="alert"><p>{}</p></div>"#,
        escape(message)
    )
}

fn csrf_field(token: &str) -> String {
    format!(
        r#"<input type="hidden" name="{}" value="{}">"#,
        csrf::FIELD,
        escape(token)
    )
}

/// "Signed in as …" and the sign-out buttons (one also forgets the browser), below
/// the card; for an administrator, a link to the applications page.
pub(crate) fn footer(name: &str, username: &str, admin: bool, token: &str) -> String {
    let who = if name == username {
        format!("<strong>{}</strong>", escape(name))
    } else {
        format!("<strong>{}</strong> ({})", escape(name), escape(username))
    };
    let who = if admin {
        format!(
            r#"{who} · <a href="{}">Applications</a>"#,
            paths::APPLICATIONS
        )
    } else {
        who
    };
    format!(
        concat!(
            r#"<footer><span>Signed in as {who}</span>"#,
            r#"<form method="post" action="{action}">{csrf}<button type="submit">Sign out</button>"#,
            r#"<button type="submit" name="{forget}" value="{browser}">Sign out and forget this browser</button></form></footer>"#
        ),
        who = who,
        action = paths::SIGN_OUT,
        csrf = csrf_field(token),
        forget = FORGET_FIELD,
        browser = FORGET_BROWSER,
    )
}

/// The sign-out page's card: the buttons are the footer's.
pub(crate) const SIGN_OUT: &str = concat!(
    "<h1>Sign out</h1>\n<p>You are signed in on this browser. Sign out with a button below; ",
    "on a phone or a computer that is not yours, sign out and forget this browser too.</p>"
);

/// The sign-out form's field that asks to forget the browser too (on a phone or a
/// computer that is not the person's), and its value: the `action` the consent form
/// sends its decision in, so that the form parser knows no other name (the poll path
/// runs it).
pub(crate) const FORGET_FIELD: &str = "action";
pub(crate) const FORGET_BROWSER: &str = "forget-browser";

/// The sign-in form. `user_code` is carried through to the code page after sign-in.
pub(crate) fn sign_in(
    token: &str,
    after: AfterSignIn,
    username: &str,
    error: Option<&str>,
) -> String {
    let action = after.sign_in_url();
    let then = match after {
        AfterSignIn::Entry(Some(c)) => format!(
            r#"<p class="notice">Next you will confirm the code <strong>{}</strong>.</p>"#,
            c.display()
        ),
        AfterSignIn::Entry(None) => String::new(),
        AfterSignIn::Applications => {
            r#"<p class="notice">Next: the applications page, for administrators.</p>"#.to_owned()
        }
    };
    let (alert, invalid) = match error {
        Some(e) => (
            alert("sign-in-error", e),
            r#" aria-invalid="true" aria-describedby="sign-in-error""#,
        ),
        None => (String::new(), ""),
    };
    // Focus goes to the first field that needs typing.
    let (focus_user, focus_password) = if username.is_empty() {
        (" autofocus", "")
    } else {
        ("", " autofocus")
    };
    format!(
        concat!(
            "<h1>Sign in</h1>\n<p>Sign in to connect a device to your account.</p>\n{then}{alert}",
            r#"<form method="post" action="{action}" novalidate>{csrf}"#,
            r#"<div class="field"><label for="username">Username</label>"#,
            r#"<input id="username" name="username" type="text" value="{username}" autocomplete="username" "#,
            r#"autocapitalize="none" autocorrect="off" spellcheck="false" required{invalid}{focus_user}></div>"#,
            r#"<div class="field"><label for="password">Password</label>"#,
            r#"<input id="password" name="password" type="password" autocomplete="current-password" required{invalid}{focus_password}></div>"#,
            r#"<button type="submit">Sign in</button></form>"#
        ),
        then = then,
        alert = alert,
        action = escape(&action),
        csrf = csrf_field(token),
        username = escape(username),
        invalid = invalid,
        focus_user = focus_user,
        focus_password = focus_password,
    )
}

/// The code entry form: `typed` is put back in the field after an error.
pub(crate) fn entry(token: &str, typed: &str, error: Option<&str>) -> String {
    let (alert, described, invalid) = match error {
        Some(e) => (
            alert("code-error", e),
            "code-error code-hint",
            r#" aria-invalid="true""#,
        ),
        None => (String::new(), "code-hint", ""),
    };
    format!(
        concat!(
            "<h1>Connect a device</h1>\n<p>Enter the code shown on your device.</p>\n{alert}",
            r#"<form method="post" action="{action}">{csrf}"#,
            r#"<div class="field"><label for="user_code">Code</label>"#,
            r#"<input id="user_code" name="user_code" class="code" type="text" value="{typed}" "#,
            r#"maxlength="32" autocomplete="off" autocapitalize="characters" autocorrect="off" spellcheck="false" "#,
            r#"required autofocus aria-describedby="{described}"{invalid}>"#,
            r#"<p class="hint" id="code-hint">8 letters, like BCDF-GHJK. Dashes, spaces and upper or lower case do not matter.</p></div>"#,
            r#"<button type="submit">Continue</button></form>"#
        ),
        alert = alert,
        action = paths::DEVICE,
        csrf = csrf_field(token),
        typed = escape(typed),
        described = described,
        invalid = invalid,
    )
}

/// Arriving through `verification_uri_complete`: the code is shown to be checked
/// against the device (RFC 8628 §3.3.1), and nothing happens until Continue.
pub(crate) fn confirm(token: &str, code: UserCode) -> String {
    format!(
        concat!(
            "<h1>Confirm the code</h1>\n",
            "<p id=\"confirm-text\">Check that your device shows this code:</p>\n",
            r#"<p class="code-big" aria-describedby="confirm-text">{code}</p>"#,
            r#"<form method="post" action="{action}">{csrf}"#,
            r#"<input type="hidden" name="user_code" value="{code}">"#,
            r#"<button type="submit" autofocus>Continue</button></form>"#,
            r#"<p class="after"><a href="{action}">My device shows a different code</a></p>"#
        ),
        code = code.display(),
        action = paths::DEVICE,
        csrf = csrf_field(token),
    )
}

/// What the consent page says about the request.
pub(crate) struct ConsentFacts<'a> {
    pub client_name: &'a str,
    pub client_id: &'a str,
    /// Registered while the server runs (RFC 7591, the admin API or the applications
    /// page), not one of the configuration's clients: whoever registered it chose its
    /// name.
    pub registered: bool,
    pub scopes: Vec<&'a str>,
    pub requested_secs_ago: u64,
    pub expires_in_secs: u64,
    /// The client gets refresh tokens (RFC 6749 §6), each rotation valid this long:
    /// it stays connected without asking again while it renews within that.
    pub stays_connected_secs: Option<u64>,
}

/// What a scope lets the device do, for the scopes people meet most.
fn scope_meaning(scope: &str) -> Option<&'static str> {
    match scope {
        "openid" => Some("Know who you are (your username)"),
        "profile" => Some("See your name"),
        "email" => Some("See your email address"),
        "offline_access" => Some("Stay connected when you are not using it"),
        _ => None,
    }
}

/// The consent page (RFC 8628 §3.3: "the user is ... informed of the request and
/// asked to approve or deny"), naming the client, the scopes and the code. Approve
/// and Deny have the same size and style: neither is the easy way out.
pub(crate) fn consent(token: &str, code: UserCode, facts: &ConsentFacts<'_>) -> String {
    let scopes: String = if facts.scopes.is_empty() {
        "<li>Basic access, no specific permissions</li>".to_owned()
    } else {
        facts
            .scopes
            .iter()
            .map(|s| match scope_meaning(s) {
                Some(m) => format!("<li>{m} <code>{}</code></li>", escape(s)),
                None => format!("<li><code>{}</code></li>", escape(s)),
            })
            .collect()
    };
    // RFC 8628 §5.4: the person sees everything the approval grants, and a refresh
    // token keeps the device in without them (checklist UI-02).
    let stays = match facts.stays_connected_secs {
        Some(secs) => format!(
            "<li>Stay connected without asking you again, as long as it is used at least once every {}</li>",
            duration(secs)
        ),
        None => String::new(),
    };
    format!(
        concat!(
            "<h1>Allow {name} to access your account?</h1>\n",
            "<dl><dt>Device</dt><dd>{name} <code class=\"id\">{client_id}</code>{registered}</dd>",
            "<dt>Code</dt><dd><code class=\"shown\">{code}</code></dd>",
            "<dt>Requested</dt><dd>{ago} ago</dd>",
            "<dt>Expires</dt><dd>in {expires}</dd></dl>\n",
            "<h2>It will be able to</h2><ul>{scopes}{stays}</ul>\n",
            r#"<p class="muted" id="consent-warning">Approve only if you started this on a device you have in front of you "#,
            "and it shows the code above. Never approve a code someone sent you.</p>\n",
            r#"<form method="post" action="{action}">{csrf}"#,
            r#"<input type="hidden" name="user_code" value="{code}">"#,
            r#"<div class="choice" role="group" aria-describedby="consent-warning">"#,
            r#"<button type="submit" name="action" value="deny">Deny</button>"#,
            r#"<button type="submit" name="action" value="approve">Approve</button>"#,
            "</div></form>"
        ),
        name = escape(facts.client_name),
        client_id = escape(facts.client_id),
        // RFC 8628 §5.4: the person can tell an app added since setup, whose name its
        // registrant chose, from one of this server's own.
        registered = if facts.registered {
            r#"<span class="muted" id="registered-app">An app added to this server after setup: its name is the one whoever added it gave.</span>"#
        } else {
            ""
        },
        code = code.display(),
        ago = duration(facts.requested_secs_ago),
        expires = duration(facts.expires_in_secs),
        scopes = scopes,
        stays = stays,
        action = paths::CONSENT,
        csrf = csrf_field(token),
    )
}

const CHECK_MARK: &str = concat!(
    r#"<svg class="mark ok" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="11" fill="none" "#,
    r#"stroke="currentColor" stroke-width="2"/><path d="M7 12.5l3.2 3.2L17.5 8.5" fill="none" stroke="currentColor" "#,
    r#"stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round"/></svg>"#
);

const CROSS_MARK: &str = concat!(
    r#"<svg class="mark bad" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="11" fill="none" "#,
    r#"stroke="currentColor" stroke-width="2"/><path d="M8.5 8.5l7 7M15.5 8.5l-7 7" fill="none" stroke="currentColor" "#,
    r#"stroke-width="2.2" stroke-linecap="round"/></svg>"#
);

/// After the decision: send the person back to the device (RFC 8628 §3.3: "the user
/// ... should be informed ... to return to their device", checklist UI-15).
pub(crate) fn done(approved: bool, client_name: &str) -> String {
    let name = escape(client_name);
    if approved {
        format!(
            concat!(
                "{mark}<h1>Device connected</h1>\n",
                "<p>You approved <strong>{name}</strong>. Go back to your device: ",
                "it will finish signing in by itself within a few seconds.</p>\n",
                "<p>You can close this page.</p>\n",
                r#"<p class="after"><a href="{again}">Connect another device</a></p>"#
            ),
            mark = CHECK_MARK,
            name = name,
            again = paths::DEVICE,
        )
    } else {
        format!(
            concat!(
                "{mark}<h1>Request denied</h1>\n",
                "<p><strong>{name}</strong> did not get access to your account. Go back to your device: ",
                "it will show that access was denied.</p>\n",
                "<p>You can close this page.</p>\n",
                r#"<p class="after"><a href="{again}">Connect another device</a></p>"#
            ),
            mark = CROSS_MARK,
            name = name,
            again = paths::DEVICE,
        )
    }
}

/// The device-display page: what a device with a browser but no keyboard shows. The
/// code large, and a QR code of `verification_uri_complete` for a phone to scan.
pub(crate) fn display(code: UserCode, verification_uri: &str, qr_svg: &str) -> String {
    format!(
        concat!(
            "<h1>Sign in on your phone</h1>\n",
            "<p>Scan the QR code with your phone's camera, or go to <strong>{uri}</strong> and enter this code:</p>\n",
            r#"<p class="code-big">{code}</p>"#,
            "{qr}"
        ),
        uri = escape(verification_uri),
        code = code.display(),
        qr = qr_svg,
    )
}

/// One application, as the applications page lists it.
pub(crate) struct Application<'a> {
    /// RFC 6749 §2.2 `client_id`.
    pub client_id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// RFC 7591 §2 `token_endpoint_auth_method` (`none`: public).
    pub auth_method: &'a str,
    /// Its scopes, space-separated.
    pub scope: String,
    /// May refresh (RFC 6749 §6).
    pub refresh: bool,
    /// Configured in the TOML file (so not managed here).
    pub configured: bool,
}

/// What the registration form holds: empty, or as sent back after an error.
pub(crate) struct RegisterForm<'a> {
    /// The name typed.
    pub name: &'a str,
    /// The token endpoint auth method chosen.
    pub auth_method: &'a str,
    /// The scopes typed, space-separated.
    pub scope: &'a str,
    /// Every scope the server knows, for the hint.
    pub known: String,
    /// Refresh tokens ticked.
    pub refresh: bool,
}

/// The client types the form offers: RFC 7591 §2 `token_endpoint_auth_method`, and
/// what a person reads.
const CLIENT_TYPES: [(&str, &str); 3] = [
    ("none", "Public: a device app, no secret"),
    ("client_secret_basic", "Confidential: secret in HTTP Basic"),
    (
        "client_secret_post",
        "Confidential: secret in the request body",
    ),
];

/// A small form with one button, for one application.
fn app_button(token: &str, action: &str, client_id: &str, label: &str) -> String {
    format!(
        concat!(
            r#"<form method="post" action="{path}">{csrf}"#,
            r#"<input type="hidden" name="action" value="{action}">"#,
            r#"<input type="hidden" name="client_id" value="{id}">"#,
            r#"<button type="submit" class="secondary">{label}</button></form>"#
        ),
        path = paths::APPLICATIONS,
        csrf = csrf_field(token),
        action = action,
        id = escape(client_id),
        label = label,
    )
}

/// The applications page: every client, the registration form, and a notice or an
/// error above them.
pub(crate) fn applications(
    token: &str,
    apps: &[Application<'_>],
    form: &RegisterForm<'_>,
    notice: Option<&str>,
    error: Option<&str>,
) -> String {
    let list: String = apps.iter().map(|app| app_item(token, app)).collect();
    let notice = notice
        .map(|n| format!(r#"<p class="notice" role="status">{}</p>"#, escape(n)))
        .unwrap_or_default();
    let alert = error
        .map(|e| alert("register-error", e))
        .unwrap_or_default();
    format!(
        concat!(
            "<h1>Applications</h1>\n{notice}",
            "<p>The clients that may ask this server for device codes. ",
            "Register a device app here, then give its <code>client_id</code> to the device.</p>\n",
            r#"<ul class="apps">{list}</ul>"#,
            "<h2>Register an application</h2>\n{alert}{form}"
        ),
        notice = notice,
        list = list,
        alert = alert,
        form = register_form(token, form),
    )
}

/// One application in the list: its `client_id`, type, scopes and grants, and the
/// buttons that rotate its secret or delete it (none for a configured one).
fn app_item(token: &str, app: &Application<'_>) -> String {
    let kind = if app.auth_method == "none" {
        "public".to_owned()
    } else {
        format!("confidential ({})", app.auth_method)
    };
    let grants = if app.refresh {
        "device code, refresh token"
    } else {
        "device code"
    };
    format!(
        concat!(
            "<li><h3>{name}</h3><dl><dt>client_id</dt><dd><code>{id}</code></dd>",
            "<dt>Type</dt><dd>{kind}</dd><dt>Scopes</dt><dd>{scope}</dd>",
            "<dt>Grants</dt><dd>{grants}</dd></dl>{actions}</li>\n"
        ),
        name = escape(app.name),
        id = escape(app.client_id),
        kind = escape(&kind),
        scope = escape(if app.scope.is_empty() {
            "none"
        } else {
            &app.scope
        }),
        grants = grants,
        actions = app_actions(token, app),
    )
}

/// What may be done to one application: rotate its secret (a confidential one) and
/// delete it; a configured one is changed in the TOML file instead.
fn app_actions(token: &str, app: &Application<'_>) -> String {
    if app.configured {
        return r#"<p class="muted">Configured (the server's configuration file, or its embedded demo defaults): only a change of the configuration changes it.</p>"#
            .to_owned();
    }
    let rotate = if app.auth_method == "none" {
        String::new()
    } else {
        app_button(token, "rotate", app.client_id, "Rotate secret")
    };
    format!(
        r#"<div class="actions">{rotate}{delete}</div>"#,
        delete = app_button(token, "delete", app.client_id, "Delete")
    )
}

/// The register form, filled in with what was sent last (after an error).
fn register_form(token: &str, form: &RegisterForm<'_>) -> String {
    let mut types = String::new();
    for (value, label) in CLIENT_TYPES {
        let checked = if value == form.auth_method {
            " checked"
        } else {
            ""
        };
        types.push_str(&format!(
            r#"<label class="check"><input type="radio" name="auth_method" value="{value}"{checked}>{label}</label>"#
        ));
    }
    let refresh = if form.refresh { " checked" } else { "" };
    format!(
        concat!(
            r#"<form method="post" action="{path}">{csrf}"#,
            r#"<input type="hidden" name="action" value="register">"#,
            r#"<div class="field"><label for="client_name">Name</label>"#,
            r#"<input id="client_name" name="client_name" type="text" value="{name}" maxlength="100" required "#,
            r#"aria-describedby="name-hint">"#,
            r#"<p class="hint" id="name-hint">People see it when they approve a device.</p></div>"#,
            r#"<fieldset><legend>Type</legend>{types}</fieldset>"#,
            r#"<div class="field"><label for="scope">Scopes it may ask for</label>"#,
            r#"<input id="scope" name="scope" type="text" value="{scope}" autocapitalize="none" "#,
            r#"autocorrect="off" spellcheck="false" required aria-describedby="scope-hint">"#,
            r#"<p class="hint" id="scope-hint">Separated by spaces. This server knows: {known}.</p></div>"#,
            r#"<fieldset><legend>Grant types</legend>"#,
            r#"<label class="check"><input type="checkbox" checked disabled>Device code (RFC 8628), always</label>"#,
            r#"<label class="check"><input type="checkbox" name="with_refresh" value="on"{refresh}>Refresh tokens</label></fieldset>"#,
            r#"<button type="submit">Register</button></form>"#
        ),
        path = paths::APPLICATIONS,
        csrf = csrf_field(token),
        name = escape(form.name),
        types = types,
        scope = escape(form.scope),
        known = escape(&form.known),
        refresh = refresh,
    )
}

/// A new application, or a new secret: the `client_id`, and the secret shown this
/// once (it is kept only as a hash).
pub(crate) fn registered(
    heading: &str,
    name: &str,
    client_id: &str,
    secret: Option<&str>,
) -> String {
    let secret = match secret {
        Some(s) => format!(
            concat!(
                "<dt>Client secret</dt><dd><code class=\"shown\">{}</code></dd></dl>\n",
                r#"<p class="notice" role="status">Copy the secret now: it is shown only this once. "#,
                "If it is lost, rotate it.</p>"
            ),
            escape(s)
        ),
        None => {
            "</dl>\n<p>A public client has no secret: the device sends its client_id alone.</p>"
                .to_owned()
        }
    };
    format!(
        concat!(
            "{mark}<h1>{heading}</h1>\n<dl><dt>Name</dt><dd>{name}</dd>",
            "<dt>client_id</dt><dd><code class=\"shown\">{id}</code></dd>{secret}\n",
            r#"<p class="after"><a href="{back}">Back to applications</a></p>"#
        ),
        mark = CHECK_MARK,
        heading = escape(heading),
        name = escape(name),
        id = escape(client_id),
        secret = secret,
        back = paths::APPLICATIONS,
    )
}

/// Asks before deleting: the application's devices lose their access.
pub(crate) fn confirm_delete(token: &str, name: &str, client_id: &str) -> String {
    format!(
        concat!(
            "<h1>Delete {name}?</h1>\n<p>Its client_id <code>{id}</code> stops working at once: ",
            "devices waiting for approval get <code>invalid_client</code>, and every token it was given ",
            "stops being accepted. This cannot be undone.</p>\n",
            r#"<form method="post" action="{path}">{csrf}"#,
            r#"<input type="hidden" name="action" value="delete_confirmed">"#,
            r#"<input type="hidden" name="client_id" value="{id}">"#,
            r#"<button type="submit">Delete {name}</button></form>"#,
            r#"<p class="after"><a href="{path}">Keep it</a></p>"#
        ),
        name = escape(name),
        id = escape(client_id),
        path = paths::APPLICATIONS,
        csrf = csrf_field(token),
    )
}

/// A page with a heading, a message and a way on.
pub(crate) fn message(heading: &str, text: &str, link: Option<(&str, &str)>) -> String {
    let link = match link {
        Some((href, label)) => format!(
            r#"<p class="after"><a href="{}">{}</a></p>"#,
            escape(href),
            escape(label)
        ),
        None => String::new(),
    };
    format!(
        "<h1>{}</h1>\n{}\n{link}",
        escape(heading),
        alert("page-error", text)
    )
}

/// Where a sign-in leads: the code page (confirming the code the person came with, if
/// any), or the applications page that sent them to sign in. The sign-in URL names it
/// by a fixed word, never by a URL, so it redirects nowhere else (RFC 9700 §4.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AfterSignIn {
    Entry(Option<UserCode>),
    Applications,
}

/// The sign-in query's `then` for the applications page.
const THEN_APPLICATIONS: &str = "applications";

impl AfterSignIn {
    /// From a sign-in URL's query: its `then` and its well-formed `user_code`, if any.
    pub(crate) fn of(then: Option<&str>, user_code: Option<UserCode>) -> AfterSignIn {
        match then {
            Some(THEN_APPLICATIONS) => AfterSignIn::Applications,
            _ => AfterSignIn::Entry(user_code),
        }
    }

    /// The sign-in URL that leads here afterwards.
    pub(crate) fn sign_in_url(self) -> String {
        match self {
            AfterSignIn::Entry(code) => sign_in_url(code),
            AfterSignIn::Applications => format!("{}?then={THEN_APPLICATIONS}", paths::SIGN_IN),
        }
    }

    /// Where the person goes once signed in.
    pub(crate) fn url(self) -> String {
        match self {
            AfterSignIn::Entry(code) => entry_url(code),
            AfterSignIn::Applications => paths::APPLICATIONS.to_owned(),
        }
    }
}

/// The sign-in URL that comes back to `user_code` afterwards.
pub(crate) fn sign_in_url(user_code: Option<UserCode>) -> String {
    match user_code {
        Some(c) => format!(
            "{}?user_code={}",
            paths::SIGN_IN,
            percent_encode(&c.display())
        ),
        None => paths::SIGN_IN.to_owned(),
    }
}

/// The code page, showing `user_code` for confirmation if there is one.
pub(crate) fn entry_url(user_code: Option<UserCode>) -> String {
    match user_code {
        Some(c) => format!(
            "{}?user_code={}",
            paths::DEVICE,
            percent_encode(&c.display())
        ),
        None => paths::DEVICE.to_owned(),
    }
}

/// "3 minutes", "1 minute", "45 seconds".
pub(crate) fn duration(secs: u64) -> String {
    let (n, unit) = if secs >= 36 * 3600 {
        ((secs + 43_200) / 86_400, "day")
    } else if secs >= 90 * 60 {
        ((secs + 1_800) / 3_600, "hour")
    } else if secs >= 90 {
        ((secs + 30) / 60, "minute")
    } else {
        (secs, "second")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(0), "0 seconds");
        assert_eq!(duration(1), "1 second");
        assert_eq!(duration(89), "89 seconds");
        assert_eq!(duration(90), "2 minutes");
        assert_eq!(duration(600), "10 minutes");
        assert_eq!(duration(89 * 60), "89 minutes");
        assert_eq!(duration(90 * 60), "2 hours");
        assert_eq!(duration(35 * 3600), "35 hours");
        assert_eq!(duration(36 * 3600), "2 days");
        assert_eq!(duration(30 * 86_400), "30 days");
    }

    #[test]
    fn what_people_and_configurations_write_is_escaped() {
        let page = consent(
            "t",
            UserCode::from_packed(0).unwrap(),
            &ConsentFacts {
                client_name: "<script>alert(1)</script>",
                client_id: "tv\"><b>",
                registered: true,
                scopes: vec!["openid", "x<y"],
                requested_secs_ago: 5,
                expires_in_secs: 600,
                stays_connected_secs: None,
            },
        );
        assert!(!page.contains("<script>"));
        assert!(!page.contains("\"><b>"));
        assert!(page.contains("x&lt;y"));
        let entry = entry("t", "\"><img src=x>", Some("<b>no</b>"));
        assert!(!entry.contains("<img"));
        assert!(!entry.contains("<b>no"));
    }

    #[test]
    fn a_client_that_gets_refresh_tokens_is_said_to_stay_connected() {
        let facts = |stays_connected_secs| ConsentFacts {
            client_name: "TV",
            client_id: "tv",
            registered: false,
            scopes: vec!["openid"],
            requested_secs_ago: 5,
            expires_in_secs: 600,
            stays_connected_secs,
        };
        let code = UserCode::from_packed(0).unwrap();
        let page = consent("t", code, &facts(Some(30 * 86_400)));
        assert!(page.contains(
            "<li>Stay connected without asking you again, as long as it is used at least once every 30 days</li></ul>"
        ));
        assert!(!consent("t", code, &facts(None)).contains("Stay connected"));
    }

    #[test]
    fn approve_and_deny_look_the_same() {
        let page = consent(
            "t",
            UserCode::from_packed(0).unwrap(),
            &ConsentFacts {
                client_name: "TV",
                client_id: "tv",
                registered: false,
                scopes: vec![],
                requested_secs_ago: 5,
                expires_in_secs: 600,
                stays_connected_secs: None,
            },
        );
        // Same element, same attributes but the value: no class or style sets one apart.
        assert!(page.contains(r#"<button type="submit" name="action" value="deny">Deny</button>"#));
        assert!(page
            .contains(r#"<button type="submit" name="action" value="approve">Approve</button>"#));
    }
}
