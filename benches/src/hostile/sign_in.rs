//! The sign-in flood: wrong passwords for a real user, each answer costing the
//! server one argon2 verification unless its rate limits refuse first.
//!
//! The flood is made of forms the server must take seriously: one anonymous session
//! (`GET /device/login`, which sets the cookie and puts the CSRF token in the form),
//! then every POST carries that cookie and token, so none is turned away as a stale
//! form before the password is checked.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use deviceflow_server::http::paths::pages as paths;
use http_body_util::Full;
use hyper::header::{HeaderValue, COOKIE, SET_COOKIE};
use hyper::{Method, Request, StatusCode};

use super::client::Connection;
use super::flood::MakeRequest;
use crate::form_post;

/// What a browser holds after opening the sign-in page.
#[derive(Debug, Clone)]
pub struct SignInForm {
    /// `name=value` of the session cookie, as sent back in `Cookie`.
    pub cookie: String,
    /// The form's hidden `csrf` field.
    pub csrf: String,
}

/// Opens the sign-in page from `source`, as a browser would before posting it.
pub async fn open_form(source: IpAddr, target: SocketAddr) -> Result<SignInForm, String> {
    let mut conn = Connection::new(source, target);
    let req = Request::builder()
        .method(Method::GET)
        .uri(paths::SIGN_IN)
        .body(Full::new(Bytes::new()))
        .expect("a GET of a static path is a valid request");
    let answer = conn
        .send(req, Duration::from_secs(10))
        .await
        .map_err(|e| format!("GET {}: {e}", paths::SIGN_IN))?;
    if answer.status != StatusCode::OK {
        return Err(format!("GET {} answered {}", paths::SIGN_IN, answer.status));
    }
    let cookie = answer
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session_cookie)
        .ok_or_else(|| format!("GET {} set no session cookie", paths::SIGN_IN))?;
    let csrf = csrf_field(&String::from_utf8_lossy(&answer.body))
        .ok_or_else(|| format!("GET {}: no csrf field in the form", paths::SIGN_IN))?;
    Ok(SignInForm { cookie, csrf })
}

/// The flood's request: the form posted with a wrong password for `username`, a
/// different one each time.
pub fn wrong_password(form: SignInForm, username: &str) -> MakeRequest {
    let cookie = HeaderValue::from_str(&form.cookie).expect("checked by session_cookie");
    let prefix = format!("csrf={}&username={username}&password=", form.csrf);
    Arc::new(move |connection, n| {
        let body = format!("{prefix}wrong-{connection}-{n}");
        let mut req = form_post(paths::SIGN_IN, Bytes::from(body));
        req.headers_mut().insert(COOKIE, cookie.clone());
        req
    })
}

/// `name=value` of a `Set-Cookie` for the web session (`deviceflow-session`, or
/// `__Host-deviceflow-session` behind https), if it is one and the value is sane.
fn session_cookie(set_cookie: &str) -> Option<String> {
    let pair = set_cookie.split(';').next()?.trim();
    let (name, value) = pair.split_once('=')?;
    let ok = name.trim_start_matches("__Host-") == "deviceflow-session"
        && !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_graphic() && b != b';');
    ok.then(|| pair.to_owned())
}

/// The value of `<input type="hidden" name="csrf" value="...">`, if it is URL-safe
/// (the server's tokens are base64url).
fn csrf_field(html: &str) -> Option<String> {
    let start = html.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
    let value = &html[start..start + html[start..].find('"')?];
    let safe = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    safe.then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_keeps_the_pair_and_drops_the_attributes() {
        assert_eq!(
            session_cookie("deviceflow-session=abc_DEF-1; HttpOnly; SameSite=Lax; Path=/"),
            Some("deviceflow-session=abc_DEF-1".to_owned())
        );
        assert_eq!(
            session_cookie("__Host-deviceflow-session=x; Secure").as_deref(),
            Some("__Host-deviceflow-session=x")
        );
        assert_eq!(session_cookie("other=1; Path=/"), None);
        assert_eq!(session_cookie("deviceflow-session=; Max-Age=0"), None);
    }

    #[test]
    fn csrf_field_reads_the_hidden_input() {
        let html =
            r#"<form><input type="hidden" name="csrf" value="Ab-_9"><input name="username">"#;
        assert_eq!(csrf_field(html).as_deref(), Some("Ab-_9"));
        assert_eq!(csrf_field("<form></form>"), None);
        assert_eq!(csrf_field(r#"name="csrf" value="a&amp;b""#), None);
    }
}
