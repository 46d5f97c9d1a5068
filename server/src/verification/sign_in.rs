//! Signing in and out of the verification pages, against the configured users.
//!
//! Sign-in is a form with a CSRF token (login CSRF: otherwise another site could sign
//! a person into the attacker's account, and the person would approve the attacker's
//! device as the attacker without noticing). The token is stateless (`csrf.rs`): a
//! visitor who has not signed in costs the server nothing, and only a successful
//! sign-in makes a web session, always a new one (no session fixation).
//!
//! Every attempt is counted against its username and its IP before the password is
//! verified, and refunded if it succeeds ([`RateLimiter::try_acquire`]), so parallel
//! guesses get no more tries than sequential ones; from a browser where that username
//! signed in before, against the browser instead (`known_browser.rs`), so that a
//! stranger's guesses cannot lock the person out of it. Verification runs on the bounded
//! hashing pool, one at a time per source (a success costs no try, so one source
//! signing in correctly over and over would otherwise take every thread): a second
//! one from the same source meanwhile answers 429, a full pool 503, both at once. Every refusal says the
//! same thing, "wrong username or password", and costs one argon2 verification,
//! whether or not the username exists.
//!
//! [`RateLimiter::try_acquire`]: super::rate_limit::RateLimiter::try_acquire

use hyper::header::COOKIE;
use hyper::StatusCode;

use super::csrf::SignInCookie;
use super::hash_pool::Asker;
use super::state::Unverified;
use super::{field, html, pages, paths, Visit};
use crate::app::state::App;
use crate::audit;
use crate::http::form::Form;
use crate::http::response::{self, Reply};
use crate::storage::rate_limit::{Attempt, Key, Subject, Throttled, Ticket};
use crate::storage::store::{Store, Stored};

const WRONG_CREDENTIALS: &str = "Wrong username or password.";

/// What `Retry-After` says when every hashing thread and queue slot is taken: a
/// verification takes tens of milliseconds, so the pool frees up within a second or two.
const HASHING_BUSY_RETRY_MS: u64 = 2_000;

/// What `Retry-After` says to a source whose previous sign-in is still being checked.
const SOURCE_BUSY_RETRY_MS: u64 = 1_000;

impl<S: Store> App<S> {
    /// `GET /device/login`: the sign-in form. A browser without a valid sign-in cookie
    /// gets one here; it holds the form's CSRF nonce, and nothing is kept server-side.
    pub(super) fn sign_in_page(&self, visit: &Visit) -> Reply {
        let after = visit.after_sign_in();
        if visit.signed_in().is_some() {
            return html::redirect(&after.url());
        }
        let (cookie, set_cookie) = self.form_cookie(visit.sign_in_cookie, visit);
        let csrf = &self.verification.sign_in_csrf;
        let main = pages::sign_in(&csrf.token(&cookie), after, "", None);
        with_form_cookie(
            self.show(visit, StatusCode::OK, "Sign in", &main),
            set_cookie,
        )
    }

    /// The sign-in cookie a form served now is made for, and the `Set-Cookie` for it
    /// when it is not the one the browser holds: never a form that expires within
    /// seconds ([`SignInCsrf::for_form`](super::csrf::SignInCsrf::for_form)).
    fn form_cookie(
        &self,
        held: Option<SignInCookie>,
        visit: &Visit,
    ) -> (SignInCookie, Option<String>) {
        let (cookie, value) = self.verification.sign_in_csrf.for_form(held, visit.now);
        (cookie, value.map(|v| self.verification.cookie.set(&v)))
    }

    /// `POST /device/login`.
    pub(super) async fn sign_in(&self, visit: &Visit, form: &Form<'_>) -> Stored<Reply> {
        let after = visit.after_sign_in();
        if visit.signed_in().is_some() {
            // Signed in meanwhile (another tab): nothing to do.
            return Ok(html::redirect(&after.url()));
        }
        let csrf = &self.verification.sign_in_csrf;
        let Some(held) = visit
            .sign_in_cookie
            .filter(|c| csrf.matches(c, field(form, super::csrf::FIELD).as_deref()))
        else {
            return Ok(self.stale_form(&after.sign_in_url()));
        };
        // A space typed or pasted around the name is not part of it: configured
        // usernames have none (`config/settings.rs`).
        let username = field(form, "username")
            .map(|u| u.trim().to_owned())
            .unwrap_or_default();
        let password = field(form, "password").unwrap_or_default();
        // The form shown again after a refusal is a form served now, like the page's.
        let (cookie, set_cookie) = self.form_cookie(Some(held), visit);
        let again = |status: StatusCode, message: &str| {
            let main = pages::sign_in(&csrf.token(&cookie), after, &username, Some(message));
            with_form_cookie(
                self.show(visit, status, "Sign in", &main),
                set_cookie.clone(),
            )
        };
        if username.is_empty() || password.is_empty() {
            return Ok(again(
                StatusCode::BAD_REQUEST,
                "Enter your username and your password.",
            ));
        }
        let sign_in = |subject| Key {
            attempt: Attempt::SignIn,
            subject,
        };
        let by_username = sign_in(self.verification.usernames.subject(&username));
        let cookies = visit.parts.headers.get_all(COOKIE).iter();
        let known = self.settings.users.by_username(&username).and_then(|user| {
            let cookies = cookies.map(|v| v.as_bytes());
            self.verification
                .known_browsers
                .recognise(cookies, user, visit.now)
        });
        // Counted before the hash, in one step with the check: N parallel guesses get
        // no more evaluations than N sequential ones. A known browser's against itself
        // alone (`known_browser.rs`), a stranger's against the address and the username.
        let counted = match known {
            Some(browser) => self
                .store
                .try_acquire([sign_in(browser)], visit.now)
                .await?
                .map(Counted::Known),
            None => self
                .store
                .try_acquire([sign_in(visit.ip), by_username], visit.now)
                .await?
                .map(Counted::Stranger),
        };
        let ticket = match counted {
            Ok(ticket) => ticket,
            Err(t) => {
                let user = self.settings.users.by_username(&username).map(|u| u.id);
                self.audit_throttled(visit, t, user);
                let page = again(StatusCode::TOO_MANY_REQUESTS, &throttled_sign_in(t));
                return Ok(response::with_retry_after(page, t.retry_after_ms));
            }
        };
        // A success costs no guess, but it costs an argon2 verification: each account's
        // are counted too, or whoever holds one password (their own) could sign in
        // over and over from a few addresses and keep the hashing pool from everyone.
        // Counted before the hash like a guess, refunded if it turns out a failure
        // (counted above instead). An unknown username has no account to count.
        let account = match self.settings.users.by_username(&username) {
            Some(user) => {
                let key = sign_in(Subject::Account(user.id));
                match self.store.try_acquire([key], visit.now).await? {
                    Ok(account) => Some(account),
                    Err(t) => {
                        // Nothing was verified: not a guess.
                        self.refund(ticket).await?;
                        self.audit_throttled(visit, t, Some(user.id));
                        let page = again(StatusCode::TOO_MANY_REQUESTS, &throttled_sign_in(t));
                        return Ok(response::with_retry_after(page, t.retry_after_ms));
                    }
                }
            }
            None => None,
        };
        let authenticated = self
            .verification
            .authenticate(
                &self.settings.users,
                &username,
                &password,
                visit.ip,
                match known {
                    Some(_) => Asker::KnownBrowser,
                    None => Asker::Stranger,
                },
            )
            .await;
        let user = match authenticated {
            Ok(Some(user)) => user,
            Ok(None) => {
                // The wrong guess stays counted; it was no sign-in of the account.
                drop(ticket);
                if let Some(account) = account {
                    self.store.refund(account).await?;
                }
                let known = self.settings.users.by_username(&username);
                audit::sign_in_failed(known.map(|u| u.username.as_str()), visit.peer);
                return Ok(again(StatusCode::BAD_REQUEST, WRONG_CREDENTIALS));
            }
            Err(why) => {
                // Nothing was verified: not a guess, nor a sign-in.
                self.refund(ticket).await?;
                if let Some(account) = account {
                    self.store.refund(account).await?;
                }
                let (status, retry_ms, message) = match why {
                    Unverified::SourceBusy => (
                        StatusCode::TOO_MANY_REQUESTS,
                        SOURCE_BUSY_RETRY_MS,
                        "A sign-in from your network is being checked, so your password was not. Try again in a second.".to_owned(),
                    ),
                    Unverified::PoolFull => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        HASHING_BUSY_RETRY_MS,
                        hashing_busy(),
                    ),
                };
                // Said at most once a second for each kind: a flood of them would
                // otherwise write a line each.
                self.metrics.throttled(why.limit());
                if let Some(refused) = self.verification.refused(why, std::time::Instant::now()) {
                    audit::refused_at_once(why.limit().label(), visit.peer, refused, retry_ms);
                }
                let page = again(status, &message);
                return Ok(response::with_retry_after(page, retry_ms));
            }
        };
        // A success is not a failure: the attempt is refunded, and the window of what
        // it was counted against is forgotten. From a known browser that is the
        // browser's (it gets a new id below) and not the username's: the person's
        // success says nothing of a stranger's guesses, and must not give them ten more.
        self.refund(ticket).await?;
        self.store
            .forget(known.map_or(by_username, sign_in))
            .await?;
        // The user the password was just checked against.
        let Some(user) = self.settings.users.get(user) else {
            return Ok(again(StatusCode::BAD_REQUEST, WRONG_CREDENTIALS));
        };
        // The first server-side session of this browser, with a new id, bound to the
        // password it was signed in with.
        let started = self
            .store
            .start_web_session(user.id, user.credential(), visit.now)
            .await?;
        let Ok((id, _)) = started else {
            return Ok(self.busy());
        };
        let signed_in = html::with_cookie(
            html::redirect(&after.url()),
            &self.verification.cookie.set(&id.encode()),
        );
        Ok(html::with_cookie(
            signed_in,
            &self.verification.known_browsers.remember(user, visit.now),
        ))
    }

    async fn refund(&self, counted: Counted) -> Stored<()> {
        match counted {
            Counted::Known(ticket) => self.store.refund(ticket).await,
            Counted::Stranger(ticket) => self.store.refund(ticket).await,
        }
    }

    /// `GET /device/logout`, as a person types it: signed in, a page whose buttons
    /// (the footer's, with the session's CSRF token) sign out; signed out, to sign-in.
    pub(super) fn sign_out_page(&self, visit: &Visit) -> Reply {
        if visit.signed_in().is_none() {
            return html::redirect(paths::SIGN_IN);
        }
        self.show(visit, StatusCode::OK, "Sign out", pages::SIGN_OUT)
    }

    /// `POST /device/logout`: ends the session and forgets the cookie; with
    /// `action=forget-browser`, the known-browser cookie too.
    pub(super) async fn sign_out(&self, visit: &Visit, form: &Form<'_>) -> Stored<Reply> {
        let clear = self.verification.cookie.clear();
        let Some((id, session)) = visit.session else {
            // Nothing to end. A POST without our cookie is what another site's form
            // sends (SameSite=Lax withholds the cookie), yet the browser would still
            // apply a Set-Cookie on that top-level answer: clearing here would sign a
            // person out from anywhere (logout CSRF). Only a browser that sent the
            // cookie, so a same-site one, gets a dead cookie cleared.
            let page = html::redirect(paths::SIGN_IN);
            if !self.carries_cookie(visit) {
                return Ok(page);
            }
            let page = html::with_cookie(page, &clear);
            // The session ended already (its hour, or a 17th sign-in): asked to, the
            // browser is forgotten all the same.
            return Ok(if forgets_browser(form) {
                html::with_cookie(page, &self.verification.known_browsers.forget())
            } else {
                page
            });
        };
        if !session
            .csrf
            .matches(field(form, super::csrf::FIELD).as_deref())
        {
            return Ok(self.stale_form(paths::DEVICE));
        }
        self.store.end_web_session(&id).await?;
        let out = html::with_cookie(html::redirect(paths::SIGN_IN), &clear);
        // The browser stays known (its sign-ins stay counted apart from strangers')
        // unless the person asks to forget it: on a phone that is not theirs, whoever
        // holds it next would otherwise have that browser's own window of guesses.
        Ok(if forgets_browser(form) {
            html::with_cookie(out, &self.verification.known_browsers.forget())
        } else {
            out
        })
    }

    /// Whether the request carried this server's cookie at all, live or not.
    fn carries_cookie(&self, visit: &Visit) -> bool {
        let cookies = visit.parts.headers.get_all(COOKIE).iter();
        self.verification
            .cookie
            .read(cookies.map(|v| v.as_bytes()), |_| Some(()))
            .is_some()
    }
}

/// A sign-in attempt, counted: dropped, it stays counted, as a failure.
#[must_use = "dropping it counts the attempt as a failure; refund a success"]
enum Counted {
    /// From a browser known for the username: against the browser.
    Known(Ticket<1>),
    /// From any other: against the address and the username.
    Stranger(Ticket<2>),
}

/// Whether the sign-out form asks to forget the browser too.
fn forgets_browser(form: &Form<'_>) -> bool {
    field(form, pages::FORGET_FIELD).as_deref() == Some(pages::FORGET_BROWSER)
}

/// `page` with the sign-in cookie its form was made for, when the browser needs it.
fn with_form_cookie(page: Reply, set_cookie: Option<String>) -> Reply {
    match set_cookie {
        Some(c) => html::with_cookie(page, &c),
        None => page,
    }
}

fn hashing_busy() -> String {
    format!(
        "Sign-in is busy right now, so your password was not checked. Try again in {}.",
        pages::duration(HASHING_BUSY_RETRY_MS.div_ceil(1000))
    )
}

fn throttled_sign_in(t: Throttled) -> String {
    let wait = pages::duration(t.retry_after_ms.div_ceil(1000));
    match t.key.subject {
        Subject::Ip(_) => format!(
            "Too many failed sign-ins from your network. For your safety, sign-in is paused: try again in {wait}."
        ),
        Subject::KnownBrowser(_) => format!(
            "Too many failed sign-ins in this browser. For your safety, sign-in is paused: try again in {wait}."
        ),
        // The same words as a username's own window (its failures): an unknown
        // username can be held back by that one, so neither tells that a username
        // exists.
        Subject::Account(_) | Subject::Username(_) => format!(
            "Too many sign-ins for this username. For your safety, sign-in is paused: try again in {wait}."
        ),
    }
}
