//! Token revocation (RFC 7009).

use hyper::http::request::Parts;

use crate::app::state::App;
use crate::http::form::Form;
use crate::http::response::{self, OAuthError, Reply};
use crate::storage::store::Store;
use crate::storage::tokens::IssuedToAnother;

impl<S: Store> App<S> {
    pub(crate) async fn revocation(&self, parts: &Parts, body: &[u8]) -> Reply {
        self.revoke(parts, body).await.unwrap_or_else(|e| e.reply())
    }

    async fn revoke(&self, parts: &Parts, body: &[u8]) -> Result<Reply, OAuthError> {
        let form = Form::parse(body).map_err(OAuthError::from)?;
        // RFC 7009 §2.1: the client authenticates as at the token endpoint; public
        // clients identify themselves with client_id.
        let client = self.client(parts, &form).await?;
        let token = form
            .get("token")
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?
            .ok_or_else(|| OAuthError::invalid_request("token is required (RFC 7009 Sec.2.1)"))?;
        // `token_type_hint` is a hint: both kinds are looked up whatever it says.
        let revoked = self
            .store
            .revoke(&token, client.id, self.clock.now())
            .await?;
        if let Err(IssuedToAnother(t)) = revoked {
            // RFC 7009 §2.1: another client's token is not revoked, and "the request is
            // refused and the client is informed of the error" (`invalid_request`, as
            // Keycloak and node oidc-provider answer). Told only to a confidential
            // client, and only of a token still granted: a public client proves
            // nothing of who it is (anyone may send its client_id), and telling it
            // would tell anyone holding a token whether it is live, which
            // introspection tells the configured confidential clients alone (RFC 7662
            // §2.1, `introspection.rs`): a registered one, which anyone holding the
            // initial access token can make, is not told either.
            if !client.is_public()
                && !client.id.is_registered()
                && self.still_granted(&t).await?.is_some()
            {
                return Err(OAuthError::invalid_request(
                    "the token was issued to another client (RFC 7009 Sec.2.1)",
                ));
            }
        }
        // RFC 7009 §2.2: 200 for an invalid token (unknown, expired, revoked), and for
        // one a public client may not revoke (above).
        Ok(response::empty_ok())
    }
}
