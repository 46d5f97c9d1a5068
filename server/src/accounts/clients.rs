//! Registered clients and client authentication (RFC 6749 §2.3, §3.2.1; RFC 8628 §3.1).
//!
//! One function, [`Clients::authenticate`], decides who is calling for every endpoint
//! that takes client credentials, so the device authorization endpoint and the token
//! endpoint authenticate "in the same manner" (RFC 8628 §3.1) by construction.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use std::borrow::Cow;
use std::future::Future;

use crate::http::form::{percent_decode, Form};
use crate::protocol::ids::ClientId;
use crate::protocol::scope::ScopeSet;

/// RFC 8414 §2 / RFC 7591 §2 names of client authentication methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// RFC 6749 §2.3.1: the secret in HTTP Basic authentication.
    ClientSecretBasic,
    /// RFC 6749 §2.3.1: the secret in the request body.
    ClientSecretPost,
}

impl AuthMethod {
    /// The method's name, as RFC 8414 metadata spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
        }
    }
}

/// A client (RFC 6749 §2), configured or registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its index, as sessions and tokens record it.
    pub id: ClientId,
    /// RFC 6749 §2.2 `client_id`.
    pub client_id: String,
    /// Shown to the person approving.
    pub name: String,
    /// SHA-256 of the secret; `None` for a public client.
    pub secret_sha256: Option<[u8; 32]>,
    /// How a confidential client may authenticate; empty for a public client.
    pub auth_methods: Vec<AuthMethod>,
    /// Scopes it may ask for.
    pub allowed_scope: ScopeSet,
    /// Scopes granted when it asks for none (RFC 6749 §3.3).
    pub default_scope: ScopeSet,
    /// May use the device authorization grant (RFC 8628).
    pub device_grant: bool,
    /// May use the refresh token grant (RFC 6749 §6).
    pub refresh_grant: bool,
}

impl Client {
    /// Whether it has no secret (RFC 6749 §2.1).
    pub fn is_public(&self) -> bool {
        self.secret_sha256.is_none()
    }

    fn secret_matches(&self, presented: &[u8]) -> bool {
        match &self.secret_sha256 {
            Some(stored) => Sha256::digest(presented).as_slice().ct_eq(stored).into(),
            None => false,
        }
    }
}

/// Why client authentication failed; each maps to one RFC 6749 §5.2 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// `invalid_request`: the request itself is malformed (two methods, a missing
    /// `client_id`).
    Malformed(&'static str),
    /// `invalid_client`, 401 with `WWW-Authenticate: Basic`: the Authorization header's
    /// Basic credentials do not decode (not base64, not UTF-8, no colon, a bad
    /// percent-escape, an empty client_id). RFC 6749 §5.2: a client that tried the
    /// header is answered 401, however its attempt failed.
    BadBasic,
    /// `invalid_client`: unknown client, wrong or missing secret, or a method the client
    /// is not registered for.
    Failed,
}

/// The configured clients, by index and by `client_id`.
#[derive(Debug, Clone, Default)]
pub struct Clients {
    clients: Vec<Client>,
    // ahash, not SipHash: looked up on every poll, and the keys are configuration.
    // Bytes, not text: a request's `client_id` is looked up as it came.
    index: ahash::AHashMap<Box<[u8]>, ClientId>,
}

impl Clients {
    /// The clients, with the index of their `client_id`s.
    pub fn new(clients: Vec<Client>, index: ahash::AHashMap<Box<[u8]>, ClientId>) -> Clients {
        Clients { clients, index }
    }

    /// The client with this `client_id`.
    pub fn by_client_id(&self, client_id: impl AsRef<[u8]>) -> Option<&Client> {
        self.index
            .get(client_id.as_ref())
            .and_then(|id| self.clients.get(usize::from(id.0)))
    }

    /// How many clients are configured.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is configured.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Every client, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Client> {
        self.clients.iter()
    }

    /// The client with this index: a configured one from memory, a registered one
    /// from `registered` (the store's lookup; `None` once it is deleted).
    pub async fn by_id<'a, E, F>(
        &'a self,
        id: ClientId,
        registered: impl FnOnce(ClientId) -> F,
    ) -> Result<Option<Cow<'a, Client>>, E>
    where
        F: Future<Output = Result<Option<Client>, E>>,
    {
        if !id.is_registered() {
            return Ok(self.clients.get(usize::from(id.0)).map(Cow::Borrowed));
        }
        // Boxed: only a registered client's requests pay for the store's future.
        Ok(Box::pin(registered(id)).await?.map(Cow::Owned))
    }

    /// The client with this `client_id`: a configured one, without a lookup, else a
    /// registered one from `registered` (one lookup; none for a `client_id` that
    /// cannot be a registered one).
    pub async fn find<'a, E, F>(
        &'a self,
        client_id: &[u8],
        registered: impl FnOnce(ClientId) -> F,
    ) -> Result<Option<Cow<'a, Client>>, E>
    where
        F: Future<Output = Result<Option<Client>, E>>,
    {
        if let Some(c) = self.by_client_id(client_id) {
            return Ok(Some(Cow::Borrowed(c)));
        }
        let Some(id) = registered_index(client_id) else {
            return Ok(None);
        };
        let found = Box::pin(registered(id)).await?;
        Ok(found
            .filter(|c| c.client_id.as_bytes() == client_id)
            .map(Cow::Owned))
    }

    /// Authenticates a configured client without a lookup: `Ok(None)` when the
    /// request names a registered client instead, which only the store knows (then
    /// [`authenticate`](Self::authenticate) decides). The token endpoint's hot path:
    /// a configured device's poll reads its form and authenticates before awaiting
    /// anything.
    pub fn authenticate_configured(
        &self,
        authorization: Option<&[u8]>,
        form: &Form<'_>,
    ) -> Result<Option<&Client>, AuthError> {
        let presented = credentials(authorization, form)?;
        match self.by_client_id(&presented.client_id) {
            Some(client) => check(client, &presented).map(|()| Some(client)),
            None if registered_index(&presented.client_id).is_some() => Ok(None),
            None => Err(AuthError::Failed),
        }
    }

    /// Authenticates the caller of a token-style endpoint, configured or registered.
    ///
    /// RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in
    /// each request." RFC 6749 §2.3.1: the Basic username and password are
    /// form-urlencoded before base64. RFC 8628 §3.1 / §3.4: a public client sends
    /// `client_id` alone. A deleted registered client is unknown: `invalid_client`.
    ///
    /// `registered` looks a registered client up (the store's lookup); it is called
    /// only for a `client_id` of a registered client's form.
    pub async fn authenticate<'a, E, F>(
        &'a self,
        authorization: Option<&[u8]>,
        form: &Form<'_>,
        registered: impl FnOnce(ClientId) -> F,
    ) -> Result<Result<Cow<'a, Client>, AuthError>, E>
    where
        F: Future<Output = Result<Option<Client>, E>>,
    {
        let presented = match credentials(authorization, form) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let Some(client) = self.find(&presented.client_id, registered).await? else {
            return Ok(Err(AuthError::Failed));
        };
        Ok(check(&client, &presented).map(|()| client))
    }
}

/// The index a registered client's `client_id` carries
/// ([`ClientId::parse_registered`]).
fn registered_index(client_id: &[u8]) -> Option<ClientId> {
    std::str::from_utf8(client_id)
        .ok()
        .and_then(ClientId::parse_registered)
}

/// What a request presents to authenticate, as bytes: compared and looked up, never
/// read as text (a body's values are UTF-8, `Form::parse` saw to that).
struct Presented<'f> {
    client_id: Cow<'f, [u8]>,
    secret: Option<Cow<'f, [u8]>>,
    /// Whether the Authorization header was used.
    basic: bool,
}

/// Reads the credentials from the Authorization header or the body, refusing a
/// request that uses both or names no client.
fn credentials<'f>(
    authorization: Option<&[u8]>,
    form: &Form<'f>,
) -> Result<Presented<'f>, AuthError> {
    let body_id = form
        .get_bytes("client_id")
        .map_err(|_| AuthError::Malformed("client_id"))?;
    let body_secret = form
        .get_bytes("client_secret")
        .map_err(|_| AuthError::Malformed("client_secret"))?;
    if let Some(header) = authorization {
        let (id, secret) = parse_basic(header)?;
        if body_secret.is_some() {
            return Err(AuthError::Malformed(
                "more than one client authentication method (RFC 6749 §2.3)",
            ));
        }
        if body_id.as_deref().is_some_and(|b| b != id.as_bytes()) {
            return Err(AuthError::Malformed(
                "client_id in the body differs from the Authorization header",
            ));
        }
        return Ok(Presented {
            client_id: Cow::Owned(id.into_bytes()),
            secret: Some(Cow::Owned(secret.into_bytes())),
            basic: true,
        });
    }
    let Some(client_id) = body_id else {
        // RFC 8628 §3.1, §3.4: client_id is REQUIRED when the client does not
        // authenticate otherwise.
        return Err(AuthError::Malformed("client_id is required"));
    };
    Ok(Presented {
        client_id,
        secret: body_secret,
        basic: false,
    })
}

/// Whether `presented` authenticates `client`.
fn check(client: &Client, presented: &Presented<'_>) -> Result<(), AuthError> {
    let failed = AuthError::Failed;
    let method = if presented.basic {
        AuthMethod::ClientSecretBasic
    } else {
        AuthMethod::ClientSecretPost
    };
    match (client.is_public(), &presented.secret) {
        (true, None) => Ok(()),
        // A public client has no secret to present.
        (true, Some(_)) => Err(failed),
        // RFC 8628 §3.4: a confidential client MUST authenticate.
        (false, None) => Err(failed),
        (false, Some(secret)) => {
            if client.auth_methods.contains(&method) && client.secret_matches(secret) {
                Ok(())
            } else {
                Err(failed)
            }
        }
    }
}

/// Parses `Basic base64(urlencode(id) ":" urlencode(secret))`.
fn parse_basic(header: &[u8]) -> Result<(String, String), AuthError> {
    let header = std::str::from_utf8(header).map_err(|_| AuthError::BadBasic)?;
    let (scheme, rest) = header.split_once(' ').ok_or(AuthError::Failed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        // Another scheme (Bearer, DPoP...) is not a client authentication method here.
        return Err(AuthError::Failed);
    }
    let decoded = STANDARD
        .decode(rest.trim())
        .map_err(|_| AuthError::BadBasic)?;
    let decoded = std::str::from_utf8(&decoded).map_err(|_| AuthError::BadBasic)?;
    let (id, secret) = decoded.split_once(':').ok_or(AuthError::BadBasic)?;
    let id = percent_decode(id.as_bytes()).map_err(|_| AuthError::BadBasic)?;
    let secret = percent_decode(secret.as_bytes()).map_err(|_| AuthError::BadBasic)?;
    if id.is_empty() {
        return Err(AuthError::BadBasic);
    }
    Ok((id.into_owned(), secret.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo file's two clients: "demo-device" (public) and "demo-confidential"
    /// (secret "demo-secret", Basic or post); and, registered and looked up through
    /// [`Demo::lookup`], "dfc16384-registered" (secret "registered-secret", post).
    struct Demo {
        clients: Clients,
        registered: Client,
    }

    fn client(id: u16, client_id: &str, secret: Option<&str>, auth: &[AuthMethod]) -> Client {
        Client {
            id: ClientId(id),
            client_id: client_id.into(),
            name: client_id.into(),
            secret_sha256: secret.map(|s| Sha256::digest(s.as_bytes()).into()),
            auth_methods: auth.to_vec(),
            allowed_scope: ScopeSet(1),
            default_scope: ScopeSet(1),
            device_grant: true,
            refresh_grant: false,
        }
    }

    fn clients() -> Demo {
        let configured = vec![
            client(0, "demo-device", None, &[]),
            client(
                1,
                "demo-confidential",
                Some("demo-secret"),
                &[AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost],
            ),
        ];
        let index = configured
            .iter()
            .map(|c| (c.client_id.as_bytes().into(), c.id))
            .collect();
        Demo {
            clients: Clients::new(configured, index),
            registered: client(
                crate::protocol::ids::FIRST_REGISTERED,
                "dfc16384-registered",
                Some("registered-secret"),
                &[AuthMethod::ClientSecretPost],
            ),
        }
    }

    /// What a lookup was asked for, and the lookup (as the store would answer).
    type Asked = std::cell::Cell<Option<ClientId>>;

    impl Demo {
        /// A store's lookup that answers at once: the registered client for its
        /// index, nothing for another.
        fn lookup<'s>(
            &'s self,
            asked: &'s Asked,
        ) -> impl FnOnce(ClientId) -> std::future::Ready<Result<Option<Client>, ()>> + 's {
            move |id| {
                asked.set(Some(id));
                std::future::ready(Ok(
                    (id == self.registered.id).then(|| self.registered.clone())
                ))
            }
        }

        /// The lookup answers at once: one poll of the future is its answer.
        fn authenticate(
            &self,
            authorization: Option<&[u8]>,
            form: &Form<'_>,
        ) -> Result<Client, AuthError> {
            self.authenticate_asking(authorization, form).0
        }

        /// [`authenticate`](Self::authenticate), and the index it looked up, if any.
        fn authenticate_asking(
            &self,
            authorization: Option<&[u8]>,
            form: &Form<'_>,
        ) -> (Result<Client, AuthError>, Option<ClientId>) {
            let asked = Asked::default();
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let fut =
                std::pin::pin!(self
                    .clients
                    .authenticate(authorization, form, self.lookup(&asked)));
            match fut.poll(&mut cx) {
                std::task::Poll::Ready(r) => (
                    r.expect("the lookup answers").map(Cow::into_owned),
                    asked.get(),
                ),
                std::task::Poll::Pending => panic!("the lookup answers at once"),
            }
        }
    }

    fn basic(id: &str, secret: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))).into_bytes()
    }

    #[test]
    fn public_client_by_client_id() {
        let c = clients();
        let form = Form::parse(b"client_id=demo-device").unwrap();
        assert_eq!(
            c.authenticate(None, &form).unwrap().client_id,
            "demo-device"
        );
    }

    /// Only a `client_id` of a registered client's form is looked up, and the record
    /// found must carry that very `client_id` (the index alone is no credential).
    #[test]
    fn a_registered_client_is_looked_up_by_its_index_and_must_match_it() {
        let c = clients();
        fn form(body: &str) -> Form<'_> {
            Form::parse(body.as_bytes()).unwrap()
        }
        let registered = ClientId(crate::protocol::ids::FIRST_REGISTERED);
        let (ok, asked) = c.authenticate_asking(
            None,
            &form("client_id=dfc16384-registered&client_secret=registered-secret"),
        );
        assert_eq!(ok.unwrap().client_id, "dfc16384-registered");
        assert_eq!(asked, Some(registered));
        let (wrong, asked) = c.authenticate_asking(
            None,
            &form("client_id=dfc16384-registered&client_secret=demo-secret"),
        );
        assert_eq!(
            (wrong.unwrap_err(), asked),
            (AuthError::Failed, Some(registered))
        );
        // The same index under another random part: the record is not this client.
        let (other, asked) = c.authenticate_asking(
            None,
            &form("client_id=dfc16384-somebodyelse&client_secret=registered-secret"),
        );
        assert_eq!(
            (other.unwrap_err(), asked),
            (AuthError::Failed, Some(registered))
        );
        // Configured clients and names no registered client has are never looked up.
        for body in [
            "client_id=demo-device",
            "client_id=nobody",
            "client_id=dfc3-abc&client_secret=x",
        ] {
            let (_, asked) = c.authenticate_asking(None, &form(body));
            assert_eq!(asked, None, "{body}");
        }
        let unknown = c.authenticate_asking(None, &form("client_id=nobody")).0;
        assert_eq!(unknown.unwrap_err(), AuthError::Failed);
    }

    #[test]
    fn confidential_client_by_basic_and_by_post() {
        let c = clients();
        let empty = Form::parse(b"").unwrap();
        let ok = c.authenticate(Some(&basic("demo-confidential", "demo-secret")), &empty);
        assert_eq!(ok.unwrap().client_id, "demo-confidential");
        let form = Form::parse(b"client_id=demo-confidential&client_secret=demo-secret").unwrap();
        assert_eq!(
            c.authenticate(None, &form).unwrap().client_id,
            "demo-confidential"
        );
        // The same credentials percent-encoded (RFC 6749 Appendix B): compared decoded.
        let form =
            Form::parse(b"client_id=demo%2Dconfidential&client_secret=demo%2dsecre%74").unwrap();
        assert_eq!(
            c.authenticate(None, &form).unwrap().client_id,
            "demo-confidential"
        );
        // With Basic, a body client_id naming the same client, encoded, is no conflict.
        let form = Form::parse(b"client_id=demo%2Dconfidential").unwrap();
        let ok = c.authenticate(Some(&basic("demo-confidential", "demo-secret")), &form);
        assert_eq!(ok.unwrap().client_id, "demo-confidential");
    }

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        // RFC 6749 §2.3.1: "demo-secret" with its dash percent-encoded is the same secret.
        let c = clients();
        let empty = Form::parse(b"").unwrap();
        let ok = c.authenticate(Some(&basic("demo%2Dconfidential", "demo%2Dsecret")), &empty);
        assert!(ok.is_ok());
    }

    #[test]
    fn every_failed_method_is_invalid_client() {
        let c = clients();
        let empty = Form::parse(b"").unwrap();
        assert_eq!(
            c.authenticate(Some(&basic("demo-confidential", "wrong")), &empty)
                .unwrap_err(),
            AuthError::Failed
        );
        let form = Form::parse(b"client_id=demo-confidential&client_secret=wrong").unwrap();
        assert_eq!(c.authenticate(None, &form).unwrap_err(), AuthError::Failed);
        let form = Form::parse(b"client_id=demo-confidential").unwrap();
        assert_eq!(c.authenticate(None, &form).unwrap_err(), AuthError::Failed);
        let form = Form::parse(b"client_id=nobody").unwrap();
        assert_eq!(c.authenticate(None, &form).unwrap_err(), AuthError::Failed);
    }

    #[test]
    fn two_methods_or_no_client_id_are_malformed_requests() {
        let c = clients();
        let form = Form::parse(b"client_secret=demo-secret").unwrap();
        assert!(matches!(
            c.authenticate(Some(&basic("demo-confidential", "demo-secret")), &form),
            Err(AuthError::Malformed(_))
        ));
        let form = Form::parse(b"scope=openid").unwrap();
        assert!(matches!(
            c.authenticate(None, &form),
            Err(AuthError::Malformed(_))
        ));
        let form = Form::parse(b"client_id=").unwrap();
        assert!(matches!(
            c.authenticate(None, &form),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn basic_credentials_that_do_not_decode_fail_as_the_header_s_attempt() {
        // RFC 6749 §5.2, DA-07: 401 with the challenge, like a wrong secret.
        let c = clients();
        let empty = Form::parse(b"").unwrap();
        let encoded = |raw: &str| format!("Basic {}", STANDARD.encode(raw)).into_bytes();
        let cases: [(&str, Vec<u8>); 6] = [
            ("not base64", b"Basic !!!".to_vec()),
            ("not UTF-8", b"Basic \xff".to_vec()),
            (
                "decoded not UTF-8",
                format!("Basic {}", STANDARD.encode([0xff, b':'])).into_bytes(),
            ),
            ("no colon", encoded("demo-confidential")),
            ("bad percent-escape", encoded("demo%zz:demo-secret")),
            ("empty client_id", encoded(":demo-secret")),
        ];
        for (name, header) in cases {
            assert_eq!(
                c.authenticate(Some(&header), &empty).unwrap_err(),
                AuthError::BadBasic,
                "{name}"
            );
        }
    }
}
