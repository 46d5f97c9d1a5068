//! Signing in and out of the verification pages, against the configured users.
//!
//! Sign-in is a form with a CSRF token (login CSRF: otherwise another site could sign
//! a person into the attacker's account, and the person would approve the attacker's
//! device as the attacker without noticing). Wrong passwords are rate-limited per
//! username and per IP. Every refusal says the same thing, "wrong username or
//! password", and costs one argon2 verification, whether or not the username exists.

use hyper::StatusCode;

use super::rate_limit::{Attempt, Key, Subject, Throttled};
use super::{field, html, pages, paths, Visit};
use crate::app::App;
use crate::audit;
use crate::form::Form;
use crate::response::Reply;
use crate::store::SessionStore;

const WRONG_CREDENTIALS: &str = "Wrong username or password.";

impl<S: SessionStore> App<S> {
    /// `GET /device/login`: the sign-in form. A browser without a session gets an
    /// anonymous one here, which holds the form's CSRF token.
    pub(super) fn sign_in_page(&self, visit: &Visit) -> Reply {
        let code = visit.query_user_code();
        if visit.signed_in().is_some() {
            return html::redirect(&pages::entry_url(code));
        }
        let (token, cookie) = match visit.session {
            Some((_, session)) => (session.csrf, None),
            None => {
                let limiter = &self.verification.limiter;
                let key = [Key {
                    attempt: Attempt::NewSession,
                    subject: visit.ip,
                }];
                if let Err(t) = limiter.check(&key, visit.now) {
                    let page = self.plain_page(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too many visits",
                        &format!(
                            "This network opened the sign-in page too many times. Try again in {}.",
                            pages::duration(t.retry_after_ms.div_ceil(1000))
                        ),
                        None,
                    );
                    return html::with_retry_after(page, t.retry_after_ms);
                }
                limiter.record_failure(&key, visit.now);
                match self.verification.sessions.start(None, visit.now) {
                    Ok((id, session)) => (session.csrf, Some(self.verification.cookie.set(&id))),
                    Err(_) => return self.busy(),
                }
            }
        };
        let main = pages::sign_in(&token.encode(), code, "", None);
        let page = self.show(visit, StatusCode::OK, "Sign in", &main);
        match cookie {
            Some(c) => html::with_cookie(page, &c),
            None => page,
        }
    }

    /// `POST /device/login`.
    pub(super) async fn sign_in(&self, visit: &Visit, form: &Form<'_>) -> Reply {
        let code = visit.query_user_code();
        let Some((old_id, session)) = visit.session else {
            return self.stale_form(&pages::sign_in_url(code));
        };
        if !session
            .csrf
            .matches(field(form, super::csrf::FIELD).as_deref())
        {
            return self.stale_form(&pages::sign_in_url(code));
        }
        if session.user.is_some() {
            return html::redirect(&pages::entry_url(code));
        }
        let username = field(form, "username").unwrap_or_default();
        let password = field(form, "password").unwrap_or_default();
        let again = |status: StatusCode, message: &str| {
            let main = pages::sign_in(&session.csrf.encode(), code, &username, Some(message));
            self.show(visit, status, "Sign in", &main)
        };
        if username.is_empty() || password.is_empty() {
            return again(
                StatusCode::BAD_REQUEST,
                "Enter your username and your password.",
            );
        }
        let limiter = &self.verification.limiter;
        let keys = [
            Key {
                attempt: Attempt::SignIn,
                subject: visit.ip,
            },
            Key {
                attempt: Attempt::SignIn,
                subject: limiter.username(&username),
            },
        ];
        if let Err(t) = limiter.check(&keys, visit.now) {
            self.audit_throttled(visit, t, None);
            let page = again(StatusCode::TOO_MANY_REQUESTS, &throttled_sign_in(t));
            return html::with_retry_after(page, t.retry_after_ms);
        }
        let Some(user) = self
            .verification
            .authenticate(&self.settings.users, &username, &password)
            .await
        else {
            limiter.record_failure(&keys, visit.now);
            let known = self.settings.users.by_username(&username);
            audit::sign_in_failed(known.map(|u| u.username.as_str()), visit.peer);
            return again(StatusCode::BAD_REQUEST, WRONG_CREDENTIALS);
        };
        limiter.forget(&keys[1]);
        // A new session on sign-in, never the anonymous one promoted (session fixation).
        self.verification.sessions.end(&old_id);
        let Ok((id, _)) = self.verification.sessions.start(Some(user), visit.now) else {
            return self.busy();
        };
        html::with_cookie(
            html::redirect(&pages::entry_url(code)),
            &self.verification.cookie.set(&id),
        )
    }

    /// `POST /device/logout`: ends the session and forgets the cookie.
    pub(super) fn sign_out(&self, visit: &Visit, form: &Form<'_>) -> Reply {
        let clear = self.verification.cookie.clear();
        let Some((id, session)) = visit.session else {
            // Nothing to end; a forged sign-out of nothing does no harm.
            return html::with_cookie(html::redirect(paths::SIGN_IN), &clear);
        };
        if !session
            .csrf
            .matches(field(form, super::csrf::FIELD).as_deref())
        {
            return self.stale_form(paths::DEVICE);
        }
        self.verification.sessions.end(&id);
        html::with_cookie(html::redirect(paths::SIGN_IN), &clear)
    }
}

fn throttled_sign_in(t: Throttled) -> String {
    let wait = pages::duration(t.retry_after_ms.div_ceil(1000));
    match t.key.subject {
        Subject::Ip(_) => format!(
            "Too many failed sign-ins from your network. For your safety, sign-in is paused: try again in {wait}."
        ),
        _ => format!(
            "Too many failed sign-ins for this username. For your safety, sign-in is paused: try again in {wait}."
        ),
    }
}
