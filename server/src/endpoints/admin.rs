//! The approval path for machines: approve or deny a user code as a named user.
//!
//! `POST /admin/decisions` with `Authorization: Bearer <admin token>` and a form of
//! `user_code`, `action` (`approve` or `deny`) and `user`. It exists for tests, the
//! conformance suite and the device fleets; it is not routed at all unless an admin
//! token is configured.

use std::borrow::Cow;
use std::net::IpAddr;

use hyper::header::{HeaderValue, WWW_AUTHENTICATE};
use hyper::http::request::Parts;
use hyper::StatusCode;
use serde::Serialize;

use crate::accounts::users::User;
use crate::app::state::App;
use crate::audit::{self, Via};
use crate::http::form::Form;
use crate::http::response::OAuthError;
use crate::http::response::{self, wire_safe, Reply};
use crate::protocol::session::{DecideError, Decision};
use crate::protocol::user_code::UserCode;
use crate::storage::store::Store;

#[derive(Serialize)]
struct DecisionResponse<'a> {
    user_code: String,
    decision: &'static str,
    user: &'a str,
    client_id: &'a str,
    scope: String,
}

#[derive(Serialize)]
struct AdminError<'a> {
    error: &'static str,
    error_description: Cow<'a, str>,
}

pub(crate) fn error(status: StatusCode, error: &'static str, description: &str) -> Reply {
    response::json_value(
        status,
        &AdminError {
            error,
            error_description: wire_safe(description),
        },
    )
}

impl<S: Store> App<S> {
    pub(crate) async fn admin_decision(&self, parts: &Parts, body: &[u8], peer: IpAddr) -> Reply {
        if let Some(refusal) = self.admin_refusal(parts) {
            return refusal;
        }
        let (user_code, user, decision) = match self.decision_request(body) {
            Ok(request) => request,
            Err(refusal) => return *refusal,
        };
        // As on the consent page: a code whose registered client was deleted is not
        // decided (its device is refused as invalid_client; an approval stored and
        // audited for it would report a connection that cannot happen).
        // Only for a code still to decide: one decided or expired is answered as such.
        let deleted = match self.decidable(user_code, self.clock.now()).await {
            Ok(Some(info)) => self.client_by_id(info.client).await.map(|c| c.is_none()),
            Ok(None) => Ok(false),
            Err(unavailable) => Err(unavailable),
        };
        match deleted {
            Ok(false) => {}
            Ok(true) => {
                return error(
                    StatusCode::GONE,
                    "deleted_client",
                    "the client this code was issued to was deleted: its device cannot be given a token",
                )
            }
            Err(unavailable) => return OAuthError::from(unavailable).reply(),
        }
        let decided = match self
            .store
            .decide(user_code, decision, self.clock.now())
            .await
        {
            Ok(decided) => decided,
            Err(unavailable) => return OAuthError::from(unavailable).reply(),
        };
        match decided {
            Ok(info) => {
                let approved = matches!(decision, Decision::Approve(_));
                self.metrics.decision(approved);
                let client = match self.client_or_deleted(info.client).await {
                    Ok(client) => client,
                    Err(unavailable) => return OAuthError::from(unavailable).reply(),
                };
                let client_id = &client.client_id;
                audit::decided(
                    approved,
                    Via::Admin,
                    client_id,
                    &user.username,
                    user_code,
                    peer,
                );
                response::json_value(
                    StatusCode::OK,
                    &DecisionResponse {
                        user_code: user_code.display(),
                        decision: if approved { "approved" } else { "denied" },
                        user: &user.username,
                        client_id,
                        scope: self.settings.scopes.format(info.scope),
                    },
                )
            }
            Err(e @ DecideError::Unknown) => {
                error(StatusCode::NOT_FOUND, "unknown_user_code", &e.to_string())
            }
            Err(e @ DecideError::Expired) => {
                error(StatusCode::GONE, "expired_user_code", &e.to_string())
            }
            Err(e @ DecideError::AlreadyDecided) => {
                error(StatusCode::CONFLICT, "already_decided", &e.to_string())
            }
        }
    }

    /// The decision a request asks for: the user code, the approving person, approve
    /// or deny; or the refusal, naming what is missing or wrong.
    fn decision_request(&self, body: &[u8]) -> Result<(UserCode, &User, Decision), Box<Reply>> {
        let form = match Form::parse(body).map_err(OAuthError::from) {
            Ok(f) => f,
            Err(e) => {
                return Err(Box::new(error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &e.description,
                )))
            }
        };
        let field = |name: &str| form.get(name).ok().flatten();
        let Some(typed) = field("user_code") else {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "user_code is required",
            )));
        };
        let Some(user_code) = UserCode::normalize(&typed) else {
            return Err(Box::new(error(
                StatusCode::NOT_FOUND,
                "unknown_user_code",
                "no pending request has this user code",
            )));
        };
        let Some(username) = field("user") else {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "user (the approving person's username) is required",
            )));
        };
        let Some(user) = self.settings.users.by_username(&username) else {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "unknown_user",
                &format!("no configured user is named \"{username}\""),
            )));
        };
        let decision = match field("action").as_deref() {
            Some("approve") => Decision::Approve(user.id),
            Some("deny") => Decision::Deny,
            _ => {
                return Err(Box::new(error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "action must be \"approve\" or \"deny\"",
                )))
            }
        };
        Ok((user_code, user, decision))
    }

    /// Checks the admin bearer token, compared in constant time so that it cannot be
    /// found byte by byte: `None` when it is right, else the refusal (404 when the
    /// endpoint is off, 401 with a Bearer challenge when the token is wrong).
    pub(crate) fn admin_refusal(&self, parts: &Parts) -> Option<Reply> {
        let Some(expected) = self.settings.admin_token.as_deref() else {
            return Some(response::not_found());
        };
        let presented = super::bearer(parts).unwrap_or_default();
        if super::same_token(presented, expected) {
            return None;
        }
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "a valid admin bearer token is required",
        );
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"deviceflow-admin\""),
        );
        Some(r)
    }
}
