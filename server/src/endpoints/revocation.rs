//! Token revocation (RFC 7009).

use deviceflow_wire::ErrorCode;
use hyper::http::request::Parts;

use crate::http::form::Form;
use crate::http::response::{self, OAuthError, Reply};
use crate::http::state::App;
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
        if let Err(IssuedToAnother) = self
            .store
            .revoke(&token, client.id, self.clock.now())
            .await?
        {
            // RFC 7009 §2.1: "the request is refused and the client is informed of the
            // error"; RFC 6749 §5.2: `invalid_grant` names a token "issued to another
            // client".
            return Err(OAuthError::new(
                ErrorCode::InvalidGrant,
                "the token was issued to another client (RFC 7009 Sec.2.1)",
            ));
        }
        // RFC 7009 §2.2: 200 whether or not the token was valid.
        Ok(response::empty_ok())
    }
}
