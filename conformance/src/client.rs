//! The clients the suite acts as: a `client_id`, and for a confidential client its
//! secret and how it presents it (RFC 6749 §2.3). Requests (`http/`) and the target
//! (`target.rs`) both use them; neither owns them.

use serde::Serialize;

/// How a client authenticates (RFC 6749 §2.3; RFC 8414 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A public client: `client_id` in the body (RFC 8628 §3.1).
    None,
    /// `client_secret_basic`.
    Basic,
    /// `client_secret_post`.
    Post,
}

impl AuthMethod {
    /// The RFC 8414 name, for people and reports (never the Rust variant name).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "public, no secret",
            AuthMethod::Basic => "client_secret_basic",
            AuthMethod::Post => "client_secret_post",
        }
    }
}

/// A client the suite acts as.
#[derive(Debug, Clone, Serialize)]
pub struct Client {
    pub id: String,
    #[serde(skip)]
    pub secret: Option<String>,
    pub method: AuthMethod,
}

impl Client {
    pub fn public(id: impl Into<String>) -> Client {
        Client {
            id: id.into(),
            secret: None,
            method: AuthMethod::None,
        }
    }

    pub fn is_confidential(&self) -> bool {
        self.secret.is_some() && self.method != AuthMethod::None
    }

    /// Parses `ID`, `ID:SECRET` or `ID:SECRET:basic|post` (default basic).
    pub fn parse(spec: &str) -> Result<Client, String> {
        let mut parts = spec.splitn(3, ':');
        let id = parts.next().unwrap_or_default();
        if id.is_empty() {
            return Err(format!("\"{spec}\": the client id is empty"));
        }
        let Some(secret) = parts.next() else {
            return Ok(Client::public(id));
        };
        let method = match parts.next() {
            None | Some("basic") | Some("client_secret_basic") => AuthMethod::Basic,
            Some("post") | Some("client_secret_post") => AuthMethod::Post,
            Some(other) => {
                return Err(format!(
                    "\"{other}\" is not an authentication method; use basic or post"
                ))
            }
        };
        Ok(Client {
            id: id.to_owned(),
            secret: Some(secret.to_owned()),
            method,
        })
    }
}

/// What the suite sends as a client secret where a wrong one is the point (TR-, DA-
/// cases): evidence, not a credential, and shown as it is so that a reader can tell it
/// from the real one.
pub const WRONG_SECRET: &str = "deviceflow-conformance-wrong-secret";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_specs() {
        assert_eq!(Client::parse("tv").unwrap().method, AuthMethod::None);
        let c = Client::parse("conf:s3:cret:post");
        assert!(c.is_err(), "a third colon names the method");
        let c = Client::parse("conf:s3cret:post").unwrap();
        assert_eq!(
            (c.method, c.secret.as_deref()),
            (AuthMethod::Post, Some("s3cret"))
        );
        assert_eq!(
            Client::parse("conf:s3cret").unwrap().method,
            AuthMethod::Basic
        );
        assert!(Client::parse(":x").is_err());
    }
}
