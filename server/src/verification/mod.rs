//! The person's side of the device flow (RFC 8628 §3.3): the pages at
//! `verification_uri` where someone signs in, types the code their device shows,
//! and approves or denies it; and the device-display page with the code as a QR code.
//!
//! Owns routing under `/device`, web sessions, CSRF, sign-in, the password hashing
//! pool, rate limits on guessing and every HTML answer. It does not own device authorization sessions: a decision
//! goes through [`Store::decide`], the same call the admin endpoint makes.
//!
//! The flow, with the checklist rows each step holds (../shared/rfc8628-checklist.md):
//!
//! 1. `GET /device[?user_code=…]` (UI-01): not signed in → 303 to `/device/login`,
//!    carrying the code. Signed in → the code form, or, with a code from
//!    `verification_uri_complete`, the code shown to confirm (UI-04), nothing decided
//!    (UI-05).
//! 2. `POST /device`: the code, normalized per RFC 8628 §6.1 (UI-07), rate-limited
//!    (UI-11); unknown, expired and used codes get one answer (UI-10, UI-12). A live
//!    code is bound to this web session (UI-14), then 303 to `/device/consent`.
//! 3. `GET /device/consent`: the client, the scopes and the code, with Approve and
//!    Deny of equal weight (UI-02, UI-06).
//! 4. `POST /device/consent`: CSRF-checked and only for the session that entered the
//!    code (UI-14); then a page that sends the person back to the device (UI-15).
//!    The form sent again (a reload) or the consent page again (the back button)
//!    shows that page again while it is true; it decides nothing twice.
//!
//! Administrators (`admin = true` users) also manage the applications here, at
//! `/device/applications` (`applications.rs`): the same sign-in, look, CSRF and headers.
//!
//! Every form: refused when the browser says another site sent it (`origin.rs`).
//! Every page: no script, `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`
//! (UI-13), `Cache-Control: no-store`, and never the device_code (UI-03).

pub mod csrf;
pub mod hash_pool;
pub(crate) mod html;
pub mod known_browser;
pub(crate) mod pages;
pub mod rate_limit;
pub mod web_session;

pub(crate) mod state;

mod applications;
mod code_entry;
mod display;
mod origin;
mod sign_in;

use std::borrow::Cow;
use std::net::IpAddr;

use bytes::Bytes;
use hyper::header::COOKIE;
use hyper::http::request::Parts;
use hyper::{Method, Request, StatusCode};

use crate::accounts::users::User;
use crate::app::state::App;
use crate::clock::Millis;
use crate::http::body::read_form;
use crate::http::form::Form;
use crate::http::is_read;
use crate::http::response::{self, Reply};
use crate::protocol::ids::UserId;
use crate::protocol::user_code::UserCode;
use crate::storage::store::{Store, Stored};

use crate::storage::rate_limit::Subject;
use crate::storage::web_sessions::{SessionId, WebSession};
use csrf::SignInCookie;
use html::Frame;

use crate::http::paths::pages as paths;

/// What `Retry-After` says when the web session map is full: sessions end by the
/// minute (sign-outs, evictions, the sweep), and the page says "in a minute".
const BUSY_RETRY_AFTER_MS: Millis = 60_000;

/// Whether `path` is one of the person's pages (or would be, if it existed).
pub fn is_page(path: &str) -> bool {
    path == paths::DEVICE || path.starts_with("/device/")
}

/// Whether `path` is one of the pages (not the 404 page the others get).
pub(crate) fn is_known_page(path: &str) -> bool {
    allowed(path).is_some()
}

/// One request to a page, with what every handler needs.
struct Visit {
    parts: Parts,
    now: Millis,
    /// The client's address (the TCP peer).
    peer: IpAddr,
    /// The client's address as a rate-limit subject.
    ip: Subject,
    /// This browser's web session, if its cookie names a live one.
    session: Option<(SessionId, WebSession)>,
    /// Otherwise, the sign-in form's cookie, if it holds a valid one.
    sign_in_cookie: Option<SignInCookie>,
}

/// What the cookie holds: a signed-in session's id, or a sign-in form's cookie.
enum CookieValue {
    Session(SessionId),
    SignIn(SignInCookie),
}

impl Visit {
    /// The session, and who is signed in on it.
    fn signed_in(&self) -> Option<(SessionId, WebSession, UserId)> {
        self.session.map(|(id, s)| (id, s, s.user))
    }

    /// A query parameter; `Err` if the query is not a valid form encoding.
    fn query(&self, name: &str) -> Result<Option<String>, ()> {
        let Some(query) = self.parts.uri.query() else {
            return Ok(None);
        };
        let form = Form::parse(query.as_bytes()).map_err(|_| ())?;
        let value = form.get(name).map_err(|_| ())?;
        Ok(value.map(Cow::into_owned))
    }

    /// Where the sign-in this visit asks for leads (`then`, `user_code`). `then` is
    /// compared as sent, undecoded: the one word it may name needs no decoding, and it
    /// is not one of the form's known names (`http/form.rs`), which the OAuth endpoints
    /// would then refuse repeated.
    fn after_sign_in(&self) -> pages::AfterSignIn {
        let then = self
            .parts
            .uri
            .query()
            .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("then=")));
        pages::AfterSignIn::of(then, self.query_user_code())
    }

    /// The `user_code` of the query, if it is a well-formed code.
    fn query_user_code(&self) -> Option<UserCode> {
        self.query("user_code")
            .ok()
            .flatten()
            .and_then(|t| UserCode::normalize(&t))
    }
}

/// A form field, decoded; absent, empty or undecodable reads as `None`.
fn field(form: &Form<'_>, name: &str) -> Option<String> {
    form.get(name).ok().flatten().map(Cow::into_owned)
}

/// The methods each page takes, for routing and for `Allow`.
fn allowed(path: &str) -> Option<&'static str> {
    match path {
        paths::DEVICE | paths::SIGN_IN | paths::CONSENT => Some("GET, HEAD, POST"),
        // GET: a page whose buttons sign out; only a POST with the session's CSRF
        // token does (a link or an image elsewhere cannot sign anyone out).
        paths::SIGN_OUT => Some("GET, HEAD, POST"),
        paths::DISPLAY => Some("GET, HEAD"),
        paths::APPLICATIONS => Some("GET, HEAD, POST"),
        _ => None,
    }
}

impl<S: Store> App<S> {
    /// Answers a request for one of the person's pages. Every refusal is a readable
    /// HTML page with a 4xx status.
    pub(crate) async fn verification_page<B>(&self, req: Request<B>, peer: IpAddr) -> Reply
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut page = self
            .answer_page(req, peer)
            .await
            .unwrap_or_else(|_| self.store_away());
        // A redirect names a path of this server: below the issuer's path, there.
        let rebased = page
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|to| to.to_str().ok())
            .and_then(|to| html::rebase_location(to, &self.verification.base))
            .and_then(|to| hyper::header::HeaderValue::try_from(to).ok());
        if let Some(to) = rebased {
            page.headers_mut().insert(hyper::header::LOCATION, to);
        }
        if self.verification.cookie.secure {
            // RFC 6797: behind an https issuer, a browser that saw a page once never
            // sends this site's passwords or session cookie over plain http again.
            page.headers_mut().insert(
                hyper::header::STRICT_TRANSPORT_SECURITY,
                hyper::header::HeaderValue::from_static("max-age=31536000"),
            );
        }
        page
    }

    /// [`verification_page`](Self::verification_page), or [`Unavailable`] when the
    /// shared store is away.
    ///
    /// [`Unavailable`]: crate::storage::store::Unavailable
    async fn answer_page<B>(&self, req: Request<B>, peer: IpAddr) -> Stored<Reply>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Some(host) = self.verification.origin.foreign_host(req.headers()) {
            return Ok(self.misdirected(host));
        }
        let path = req.uri().path().to_owned();
        let verb = match self.page_and_method(&path, req.method()) {
            Ok(verb) => verb,
            Err(refusal) => return Ok(*refusal),
        };
        if verb == Method::POST && !self.verification.origin.admits(req.headers()) {
            return Ok(self.other_sites_form());
        }
        let (parts, body) = if verb == Method::POST {
            match read_form(
                req,
                self.settings.max_body_bytes,
                self.settings.body_read_timeout_ms,
            )
            .await
            {
                Ok((parts, body)) => (parts, Some(body)),
                Err(e) => {
                    let mut page = self.unreadable_form(e.status(), &e.description);
                    response::name_accepted_codings(&mut page);
                    return Ok(page);
                }
            }
        } else {
            (req.into_parts().0, None)
        };
        let visit = self.visit(parts, peer).await?;
        let Some(body) = body else {
            return match path.as_str() {
                paths::DEVICE => Ok(self.entry_page(&visit)),
                paths::SIGN_IN => Ok(self.sign_in_page(&visit)),
                paths::CONSENT => self.consent_page(&visit).await,
                paths::APPLICATIONS => self.applications_page(&visit).await,
                paths::SIGN_OUT => Ok(self.sign_out_page(&visit)),
                _ => Ok(self.display_page(&visit)),
            };
        };
        let form = match Form::parse(&body) {
            Ok(form) => form,
            Err(e) => return Ok(self.unreadable_form(StatusCode::BAD_REQUEST, &e.to_string())),
        };
        match path.as_str() {
            paths::DEVICE => self.enter_code(&visit, &form).await,
            paths::SIGN_IN => self.sign_in(&visit, &form).await,
            paths::CONSENT => self.decide(&visit, &form).await,
            paths::APPLICATIONS => self.manage_application(&visit, &form).await,
            _ => self.sign_out(&visit, &form).await,
        }
    }

    /// The method a page is asked with (HEAD as GET), or the 404 or 405 page.
    fn page_and_method(&self, path: &str, method: &Method) -> Result<Method, Box<Reply>> {
        let Some(allow) = allowed(path) else {
            return Err(Box::new(self.plain_page(
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is no such page here.",
                Some((paths::DEVICE, "Connect a device")),
            )));
        };
        let verb = match *method {
            ref read if is_read(read) => Some(Method::GET),
            Method::POST => Some(Method::POST),
            _ => None,
        };
        match verb {
            Some(verb) if allow.contains(verb.as_str()) => Ok(verb),
            _ => Err(Box::new(html::with_allow(
                self.plain_page(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "Not allowed",
                    &format!("This page takes {allow}."),
                    Some((paths::DEVICE, "Connect a device")),
                ),
                allow,
            ))),
        }
    }

    /// Who is visiting: the web session or the sign-in form's cookie this browser
    /// holds, if valid.
    async fn visit(&self, parts: Parts, peer: IpAddr) -> Stored<Visit> {
        let now = self.clock.now();
        let cookies = parts.headers.get_all(COOKIE).iter().map(|v| v.as_bytes());
        let v = &self.verification;
        let cookie = v.cookie.read(cookies, |value| {
            SessionId::decode(value)
                .map(CookieValue::Session)
                .or_else(|| v.sign_in_csrf.open(value, now).map(CookieValue::SignIn))
        });
        let (session, sign_in_cookie) = match cookie {
            // A session of a person no longer configured, or signed in with a password
            // that is no longer theirs, is no session: signed out.
            Some(CookieValue::Session(id)) => (
                self.store
                    .web_session(&id, now)
                    .await?
                    .filter(|s| {
                        let user = self.settings.users.get(s.user);
                        user.is_some_and(|u| u.credential() == s.credential)
                    })
                    .map(|s| (id, s)),
                None,
            ),
            Some(CookieValue::SignIn(c)) => (None, Some(c)),
            None => (None, None),
        };
        Ok(Visit {
            parts,
            now,
            peer,
            ip: Subject::ip(peer),
            session,
            sign_in_cookie,
        })
    }

    /// A form that could not be read: why, and back to the start.
    fn unreadable_form(&self, status: StatusCode, why: &str) -> Reply {
        self.plain_page(
            status,
            "The form could not be read",
            &format!("{why}. Go back and try again."),
            Some((paths::DEVICE, "Connect a device")),
        )
    }

    /// A page in the frame, with who is signed in and the sign-out button below it.
    fn show(&self, visit: &Visit, status: StatusCode, title: &str, main: &str) -> Reply {
        let signed_in = visit
            .signed_in()
            .and_then(|(_, session, user)| Some((session, self.settings.users.get(user)?)));
        let footer = match signed_in {
            Some((session, user)) => {
                let User {
                    name,
                    username,
                    admin,
                    ..
                } = user;
                pages::footer(name, username, *admin, &session.csrf.encode())
            }
            None => String::new(),
        };
        html::page(
            status,
            &Frame {
                site: &self.verification.site,
                base: &self.verification.base,
                title,
                main,
                footer: &footer,
            },
        )
    }

    /// A page that only says something: errors, mostly.
    fn plain_page(
        &self,
        status: StatusCode,
        heading: &str,
        text: &str,
        link: Option<(&str, &str)>,
    ) -> Reply {
        html::page(
            status,
            &Frame {
                site: &self.verification.site,
                base: &self.verification.base,
                title: heading,
                main: &pages::message(heading, text, link),
                footer: "",
            },
        )
    }

    /// 403 for a form that did not come back with its CSRF token: forged, or older than
    /// its session or sign-in cookie.
    fn stale_form(&self, back_to: &str) -> Reply {
        self.plain_page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "This form is no longer valid, so nothing was done. Open the page again and retry.",
            Some((back_to, "Open the page again")),
        )
    }

    /// 403 for a form the browser says another site's page sent (`origin.rs`), before
    /// anything of it is read.
    fn other_sites_form(&self) -> Reply {
        self.plain_page(
            StatusCode::FORBIDDEN,
            "This form came from another site",
            "Your browser says another site sent this form, so nothing was done. If you meant to send it, open the page here and send it again.",
            Some((paths::DEVICE, "Connect a device")),
        )
    }

    /// RFC 9110 §15.5.20: 421 for a page asked for under a host name that is not
    /// this server's (`SameOrigin::foreign_host`).
    fn misdirected(&self, host: &str) -> Reply {
        self.plain_page(
            StatusCode::MISDIRECTED_REQUEST,
            "Wrong address",
            &format!(
                "This server does not answer for {host}. Open {} instead.",
                self.verification.verification_uri
            ),
            None,
        )
    }

    /// Logs a refusal by one of the pages' rate limits.
    fn audit_throttled(
        &self,
        visit: &Visit,
        t: crate::storage::rate_limit::Throttled,
        user: Option<UserId>,
    ) {
        use crate::app::metrics::Throttle;
        use crate::storage::rate_limit::Attempt;
        let limit = match (t.key.attempt, t.key.subject) {
            (Attempt::UserCode, Subject::Ip(_)) => Throttle::UserCodePerIp,
            (Attempt::UserCode, _) => Throttle::UserCodePerAccount,
            (Attempt::SignIn, Subject::Ip(_)) => Throttle::SignInPerIp,
            (Attempt::SignIn, Subject::KnownBrowser(_)) => Throttle::SignInPerKnownBrowser,
            (Attempt::SignIn, Subject::Account(_)) => Throttle::SignInPerAccount,
            (Attempt::SignIn, Subject::Username(_)) => Throttle::SignInPerUsername,
            // Counted by the registration endpoint, never by the pages.
            (Attempt::Registration, _) => Throttle::RegistrationPerIp,
        };
        self.metrics.throttled(limit);
        let user = user.map(|u| self.settings.users.username(u));
        crate::audit::throttled(limit.label(), None, user, visit.peer, t.retry_after_ms);
    }

    /// 503 when the shared store is away, and the browser is told when to retry. What
    /// the request asked may still have been recorded (a write that timed out can land
    /// when Redis comes back): the retry finds where things stand, and says so.
    fn store_away(&self) -> Reply {
        response::with_retry_after(
            self.plain_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "The server cannot reach its session store right now, so what you asked may not have been recorded. Try again in a few seconds: the page will then say where things stand.",
                Some((paths::DEVICE, "Try again")),
            ),
            crate::app::state::STORE_RETRY_AFTER_MS,
        )
    }

    /// 503 when the web session map is full (only a sign-in adds to it), with the
    /// `Retry-After` every refusal of the pages carries: the minute the page says.
    fn busy(&self) -> Reply {
        response::with_retry_after(
            self.plain_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too busy",
                "The server is handling too many visitors right now. Try again in a minute.",
                Some((paths::DEVICE, "Try again")),
            ),
            BUSY_RETRY_AFTER_MS,
        )
    }
}
