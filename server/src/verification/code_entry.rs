//! Entering the user code and deciding on it: the heart of RFC 8628 §3.3.
//!
//! > the end user ... is prompted to enter the "user_code" ... the authorization
//! > server ... informs the user of the action they are undertaking and asks them to
//! > approve or deny the request.
//!
//! One generic answer for every code that cannot be decided (unknown, expired,
//! already approved or denied), so the page is no oracle (checklist UI-10, UI-12);
//! wrong codes count against per-account and per-IP limits (RFC 8628 §5.1, UI-11).

use hyper::StatusCode;

use super::pages::{self, ConsentFacts};
use super::{field, html, paths, Visit};
use crate::app::state::App;
use crate::audit::{self, Via};
use crate::http::form::Form;
use crate::http::response::{self, Reply};
use crate::protocol::ids::UserId;
use crate::protocol::session::{Decision, State};
use crate::protocol::user_code::UserCode;
use crate::storage::rate_limit::{Attempt, Key, Subject, Throttled};
use crate::storage::store::{SessionInfo, Store, Stored};

/// The one answer for a code that cannot be decided (checklist UI-12).
pub(super) const CODE_NOT_VALID: &str =
    "That code is not valid. Check the code on your device and \
     type it again. A code works once, for a few minutes: if yours has expired, start again on \
     the device.";

const NOT_A_CODE: &str = "A code has 8 letters from BCDFGHJKLMNPQRSTVWXZ, like BCDF-GHJK. \
     Check what you typed.";

impl<S: Store> App<S> {
    /// `GET /device`: the code form; with `?user_code=` (from
    /// `verification_uri_complete`), the code shown for confirmation. Never decides
    /// anything (RFC 8628 §3.3.1; checklist UI-04, UI-05).
    pub(super) fn entry_page(&self, visit: &Visit) -> Reply {
        let Ok(typed) = visit.query("user_code") else {
            return self.plain_page(
                StatusCode::BAD_REQUEST,
                "This link is broken",
                "The address has a malformed query. Type the code shown on your device instead.",
                Some((paths::DEVICE, "Enter the code")),
            );
        };
        // An empty `user_code=` (a hand-made link) carries no code: nothing was typed.
        let typed = typed.filter(|t| !t.trim().is_empty());
        let code = typed.as_deref().and_then(UserCode::normalize);
        let Some((_, session, _)) = visit.signed_in() else {
            return html::redirect(&pages::sign_in_url(code));
        };
        let token = session.csrf.encode();
        match (typed, code) {
            (_, Some(code)) => self.show(
                visit,
                StatusCode::OK,
                "Confirm the code",
                &pages::confirm(&token, code),
            ),
            (Some(typed), None) => self.show(
                visit,
                StatusCode::BAD_REQUEST,
                "Enter the code",
                &pages::entry(&token, &typed, Some(NOT_A_CODE)),
            ),
            (None, None) => self.show(
                visit,
                StatusCode::OK,
                "Enter the code",
                &pages::entry(&token, "", None),
            ),
        }
    }

    /// `POST /device`: checks a typed code and, if it can be decided, binds it to this
    /// web session and moves on to consent.
    pub(super) async fn enter_code(&self, visit: &Visit, form: &Form<'_>) -> Stored<Reply> {
        let typed = field(form, "user_code").unwrap_or_default();
        let Some((id, session, user)) = visit.signed_in() else {
            // Signed out meanwhile: sign in again, keeping the code.
            return Ok(html::redirect(&pages::sign_in_url(UserCode::normalize(
                &typed,
            ))));
        };
        if !session
            .csrf
            .matches(field(form, super::csrf::FIELD).as_deref())
        {
            return Ok(self.stale_form(paths::DEVICE));
        }
        let token = session.csrf.encode();
        let again = |status: StatusCode, message: &str| {
            let main = pages::entry(&token, &typed, Some(message));
            self.show(visit, status, "Enter the code", &main)
        };
        if typed.trim().is_empty() {
            return Ok(again(
                StatusCode::BAD_REQUEST,
                "Enter the code shown on your device.",
            ));
        }
        let keys = [
            Key {
                attempt: Attempt::UserCode,
                subject: visit.ip,
            },
            Key {
                attempt: Attempt::UserCode,
                subject: Subject::Account(user),
            },
        ];
        // RFC 8628 §5.1: counted before the code is looked at (and refunded if it was
        // right), so a throttled guesser learns nothing, right or wrong, and parallel
        // guesses get no more tries than sequential ones.
        let ticket = match self.store.try_acquire(keys, visit.now).await? {
            Ok(ticket) => ticket,
            Err(t) => {
                self.audit_throttled(visit, t, Some(user));
                let page = again(StatusCode::TOO_MANY_REQUESTS, &throttled_codes(t));
                return Ok(response::with_retry_after(page, t.retry_after_ms));
            }
        };
        // RFC 8628 §6.1: case, dashes, spaces and characters outside the alphabet do
        // not matter. What is not even shaped like a code is not a guess, and is not
        // counted.
        let Some(code) = UserCode::normalize(&typed) else {
            self.store.refund(ticket).await?;
            return Ok(again(StatusCode::BAD_REQUEST, NOT_A_CODE));
        };
        if self.decidable(code, visit.now).await?.is_none() {
            // The wrong guess stays counted.
            drop(ticket);
            return Ok(again(StatusCode::BAD_REQUEST, CODE_NOT_VALID));
        }
        self.store.refund(ticket).await?;
        self.store.set_entered(&id, Some(code), visit.now).await?;
        Ok(html::redirect(paths::CONSENT))
    }

    /// `GET /device/consent`: what is asked, by whom, with Approve and Deny.
    pub(super) async fn consent_page(&self, visit: &Visit) -> Stored<Reply> {
        let Some((id, session, user)) = visit.signed_in() else {
            return Ok(html::redirect(&pages::sign_in_url(None)));
        };
        let Some(code) = session.entered else {
            return Ok(html::redirect(paths::DEVICE));
        };
        let token = session.csrf.encode();
        // A code whose registered client was deleted is no longer valid either.
        let found = match self.decidable(code, visit.now).await? {
            Some(info) => self.client_by_id(info.client).await?.map(|c| (info, c)),
            None => None,
        };
        let Some((info, client)) = found else {
            // Decided already (the back button after the decision): say how it ended.
            if let Some(done) = self.decided_here(visit, code, user, true).await? {
                return Ok(done);
            }
            self.store.set_entered(&id, None, visit.now).await?;
            let main = pages::entry(&token, &code.display(), Some(CODE_NOT_VALID));
            return Ok(self.show(visit, StatusCode::BAD_REQUEST, "Enter the code", &main));
        };
        let scope = self.settings.scopes.format(info.scope);
        let facts = ConsentFacts {
            client_name: &client.name,
            client_id: &client.client_id,
            registered: client.id.is_registered(),
            scopes: scope.split(' ').filter(|s| !s.is_empty()).collect(),
            requested_secs_ago: visit.now.saturating_sub(info.issued_at) / 1000,
            expires_in_secs: info.expires_at.saturating_sub(visit.now).div_ceil(1000),
            stays_connected_secs: client
                .refresh_grant
                .then_some(self.settings.refresh_token_ttl_secs),
        };
        let title = format!("Allow {}?", client.name);
        Ok(self.show(
            visit,
            StatusCode::OK,
            &title,
            &pages::consent(&token, code, &facts),
        ))
    }

    /// `POST /device/consent`: the decision, only from the signed-in person whose
    /// session entered this code, with this session's CSRF token (checklist UI-14).
    pub(super) async fn decide(&self, visit: &Visit, form: &Form<'_>) -> Stored<Reply> {
        let Some((id, session, user)) = visit.signed_in() else {
            return Ok(self.plain_page(
                StatusCode::FORBIDDEN,
                "You are signed out",
                "Nothing was approved or denied: you are not signed in any more. Sign in and enter the code again.",
                Some((paths::SIGN_IN, "Sign in")),
            ));
        };
        if !session
            .csrf
            .matches(field(form, super::csrf::FIELD).as_deref())
        {
            return Ok(self.stale_form(paths::DEVICE));
        }
        let typed = field(form, "user_code").and_then(|t| UserCode::normalize(&t));
        let code = match typed {
            Some(code) if session.entered == Some(code) => code,
            _ => {
                // An older page of a code this person approved, sent again (a reload
                // after another code was entered): it stays approved, and says so.
                if let Some(code) = typed {
                    if let Some(done) = self.decided_here(visit, code, user, false).await? {
                        return Ok(done);
                    }
                }
                return Ok(self.plain_page(
                    StatusCode::FORBIDDEN,
                    "Enter the code first",
                    "Nothing was approved or denied: this code was not entered in this browser. Enter the code shown on your device.",
                    Some((paths::DEVICE, "Enter the code")),
                ));
            }
        };
        let decision = match field(form, "action").as_deref() {
            Some("approve") => Decision::Approve(user),
            Some("deny") => Decision::Deny,
            _ => {
                return Ok(self.plain_page(
                    StatusCode::BAD_REQUEST,
                    "Choose Approve or Deny",
                    "The form did not say whether to approve or deny. Go back and press one of the buttons.",
                    Some((paths::CONSENT, "Back")),
                ))
            }
        };
        // A code whose registered client was deleted is no longer valid either (as on
        // the consent page): its device gets invalid_client, so nothing is decided,
        // and the person is not told it is connected.
        let client_lives = match self.decidable(code, visit.now).await? {
            Some(info) => self.client_by_id(info.client).await?.is_some(),
            None => false,
        };
        let decided = if client_lives {
            // One way to decide: the store's, as for the admin endpoint.
            self.store.decide(code, decision, visit.now).await?.ok()
        } else {
            None
        };
        // The code stays entered after the decision: this form sent again (a reload),
        // or the consent page again (the back button), shows how it ended.
        let Some(info) = decided else {
            // RFC 8628 §3.3: decided already (this form sent before, or someone else
            // with the code): the person is told the outcome, not "not valid".
            if let Some(done) = self.decided_here(visit, code, user, true).await? {
                return Ok(done);
            }
            self.store.set_entered(&id, None, visit.now).await?;
            let main = pages::entry(
                &session.csrf.encode(),
                &code.display(),
                Some(CODE_NOT_VALID),
            );
            return Ok(self.show(visit, StatusCode::BAD_REQUEST, "Enter the code", &main));
        };
        let approved = matches!(decision, Decision::Approve(_));
        self.metrics.decision(approved);
        let client = self.client_or_deleted(info.client).await?;
        let username = self.settings.users.username(user);
        audit::decided(
            approved,
            Via::Pages,
            &client.client_id,
            username,
            code,
            visit.peer,
        );
        Ok(self.done(visit, approved, &client.name))
    }

    /// The last page (RFC 8628 §3.3, checklist UI-15): connected or denied, and back
    /// to the device.
    fn done(&self, visit: &Visit, approved: bool, client_name: &str) -> Reply {
        let title = if approved {
            "Device connected"
        } else {
            "Request denied"
        };
        self.show(
            visit,
            StatusCode::OK,
            title,
            &pages::done(approved, client_name),
        )
    }

    /// The last page again, for a code decided before, when what it says is still
    /// true and this person may see it: approved by `user` (and collected by the
    /// device, or still to be); or, with `denied_too` (this session entered the code,
    /// so it may see how it ended), denied. A code approved by someone else, or
    /// expired before its device came, is `None`: the caller's refusal.
    async fn decided_here(
        &self,
        visit: &Visit,
        code: UserCode,
        user: UserId,
        denied_too: bool,
    ) -> Stored<Option<Reply>> {
        let Some(info) = self.store.lookup(code).await? else {
            return Ok(None);
        };
        let live = visit.now < info.expires_at;
        let approved = match info.state {
            State::Approved { user: by } if by == user && live => true,
            State::Redeemed { user: by, .. } if by == user => true,
            State::Denied if denied_too && live => false,
            _ => return Ok(None),
        };
        let Some(client) = self.client_by_id(info.client).await? else {
            return Ok(None);
        };
        Ok(Some(self.done(visit, approved, &client.name)))
    }

    /// The session behind `code` if a person may still decide it: pending, unexpired
    /// (the admin endpoint asks too).
    pub(crate) async fn decidable(&self, code: UserCode, now: u64) -> Stored<Option<SessionInfo>> {
        Ok(self
            .store
            .lookup(code)
            .await?
            .filter(|info| info.state == State::Pending && now < info.expires_at))
    }
}

fn throttled_codes(t: Throttled) -> String {
    let wait = pages::duration(t.retry_after_ms.div_ceil(1000));
    let whence = match t.key.subject {
        Subject::Ip(_) => "from your network",
        _ => "from your account",
    };
    format!(
        "Too many wrong codes were entered {whence}. For your safety, code entry is paused: try again in {wait}."
    )
}
