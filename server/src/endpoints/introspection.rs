//! Token introspection (RFC 7662), for resource servers holding a confidential client.

use std::borrow::Cow;

use hyper::http::request::Parts;
use hyper::StatusCode;
use serde::Serialize;

use crate::accounts::clients::Client;
use crate::accounts::users::User;
use crate::app::state::App;
use crate::http::form::Form;
use crate::http::response::{self, OAuthError, Reply};
use crate::storage::store::{Store, Stored};
use crate::storage::tokens::{Introspection, TokenKind};

/// RFC 7662 §2.2.
#[derive(Serialize)]
struct IntrospectionResponse<'a> {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
}

impl<S: Store> App<S> {
    /// The client and the person a token the store holds as active was granted to,
    /// if both still are: a token of a deleted registered client, or of a person no
    /// longer configured, is not active (RFC 7662 §2.2), nor one to revoke.
    pub(crate) async fn still_granted(
        &self,
        t: &Introspection,
    ) -> Stored<Option<(Cow<'_, Client>, &User)>> {
        let Some(owner) = self.client_by_id(t.grant.client).await? else {
            return Ok(None);
        };
        Ok(self
            .settings
            .users
            .get(t.grant.user)
            .map(|user| (owner, user)))
    }

    pub(crate) async fn introspection(&self, parts: &Parts, body: &[u8]) -> Reply {
        self.introspect(parts, body)
            .await
            .unwrap_or_else(|e| e.reply())
    }

    async fn introspect(&self, parts: &Parts, body: &[u8]) -> Result<Reply, OAuthError> {
        let form = Form::parse(body).map_err(OAuthError::from)?;
        let client = self.client(parts, &form).await?;
        // RFC 7662 §2.1: the endpoint MUST require some form of authorization; here,
        // a confidential client's credentials. RFC 9110 §15.5.2: a 401 carries a
        // challenge, the scheme those credentials are sent in.
        if client.is_public() {
            return Err(OAuthError::new(
                deviceflow_wire::ErrorCode::InvalidClient,
                "introspection requires a confidential client",
            )
            .with_basic_challenge());
        }
        let token = form
            .get("token")
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?
            .ok_or_else(|| OAuthError::invalid_request("token is required (RFC 7662 Sec.2.1)"))?;
        let inactive = IntrospectionResponse {
            active: false,
            scope: None,
            client_id: None,
            username: None,
            sub: None,
            token_type: None,
            exp: None,
            iat: None,
            iss: None,
        };
        let Some(t) = self.store.introspect(&token, self.clock.now()).await? else {
            return Ok(response::json_value(StatusCode::OK, &inactive));
        };
        // RFC 7662 §4: a protected resource SHOULD be specifically authorized to
        // introspect. The configured confidential clients are the operator's; a
        // registered one (RFC 7591, anyone with the initial access token) is a device
        // app, told only of its own tokens (RFC 7662 §2.2: `active: false` for a token
        // it may not know about).
        if client.id.is_registered() && t.grant.client != client.id {
            return Ok(response::json_value(StatusCode::OK, &inactive));
        }
        let Some((owner, user)) = self.still_granted(&t).await? else {
            return Ok(response::json_value(StatusCode::OK, &inactive));
        };
        Ok(response::json_value(
            StatusCode::OK,
            &IntrospectionResponse {
                active: true,
                // RFC 7662 §2.2: `scope` is a list in RFC 6749 §3.3's format, which
                // has no empty list: a grant of no scope leaves it out.
                scope: (!t.grant.scope.is_empty())
                    .then(|| self.settings.scopes.format(t.grant.scope)),
                client_id: Some(&owner.client_id),
                username: Some(&user.username),
                sub: Some(&user.username),
                token_type: (t.token_type == TokenKind::Access).then_some("Bearer"),
                exp: Some(t.expires_at / 1000),
                iat: Some(t.issued_at / 1000),
                iss: Some(&self.issuer),
            },
        ))
    }
}
