//! Dynamic client registration (RFC 7591) and client configuration read and delete
//! (RFC 7592); and the three acts every form of registration shares: register, rotate
//! a secret, delete (the admin API and the applications page call them too).
//!
//! Off unless `[registration] initial_access_token` is configured: then
//! `POST /oauth/register` with that token as `Authorization: Bearer` registers a
//! client, the answer carries a registration access token, and with it
//! `GET`/`DELETE /oauth/register/{client_id}` read and delete the client.

use std::net::IpAddr;

use bytes::Bytes;
use deviceflow_wire::{ClientRegistration, ErrorCode};
use hyper::http::request::Parts;
use hyper::{Method, Request, StatusCode};

use super::{bearer, same_token};
use crate::accounts::registration::{
    request_from_json, Metadata, MetadataDocument, MetadataError, NameKeys, NewClient, Registered,
    Rotation, Unregistered,
};
use crate::app::metrics::Throttle;
use crate::app::state::App;
use crate::audit::{self, Registrar};
use crate::http::body::read_json;
use crate::http::response::{self, OAuthError, Reply};
use crate::http::{is_read, paths};
use crate::protocol::ids::{ClientId, MAX_REGISTERED};
use crate::storage::rate_limit::{Attempt, Key, Subject};
use crate::storage::store::{Store, Stored, Unavailable};

/// RFC 7591 §3.2.2: `invalid_client_metadata`, 400.
pub(crate) fn invalid_metadata(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, why.into())
}

impl From<Unregistered> for OAuthError {
    fn from(e: Unregistered) -> OAuthError {
        match e {
            Unregistered::Name(e) => invalid_metadata(e.to_string()),
            Unregistered::Exhausted => registrations_exhausted(),
        }
    }
}

/// Every registered client index of the store was given.
fn registrations_exhausted() -> OAuthError {
    OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        format!(
            "this server's store has given all of its {MAX_REGISTERED} registered client ids; no more clients can be registered"
        ),
    )
}

impl<S: Store> App<S> {
    /// Whether `path` is the registration endpoint or a client configuration endpoint
    /// of this server (only while registration is on).
    pub(crate) fn is_registration(&self, path: &str) -> bool {
        self.settings.initial_access_token.is_some()
            && paths::below(path, paths::REGISTRATION).is_some()
    }

    /// Answers the registration endpoint and the client configuration endpoints.
    pub(crate) async fn registration<B>(&self, req: Request<B>, peer: IpAddr) -> Reply
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let answer = match paths::below(parts.uri.path(), paths::REGISTRATION) {
            Some("") if parts.method == Method::POST => self.register(&parts, body, peer).await,
            Some("") => return response::method_not_allowed("POST"),
            Some(rest) => {
                // `/oauth/register/{client_id}`, one slash: `//{client_id}` names no
                // client.
                let client_id = rest.strip_prefix('/').unwrap_or(rest);
                match parts.method {
                    ref read if is_read(read) => self.read_configuration(&parts, client_id).await,
                    Method::DELETE => self.delete_configuration(&parts, client_id, peer).await,
                    // RFC 7592 §2.2 (update) is not offered: register anew instead.
                    _ => return response::method_not_allowed("GET, HEAD, DELETE"),
                }
            }
            None => return response::not_found(),
        };
        answer.unwrap_or_else(|e| e.reply())
    }

    /// RFC 7591 §3.1: the client registration request.
    async fn register<B>(&self, parts: &Parts, body: B, peer: IpAddr) -> Result<Reply, OAuthError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // RFC 7591 §3: the endpoint MAY be protected by an initial access token.
        let expected = self.settings.initial_access_token.as_deref().unwrap_or("");
        let presented = bearer(parts);
        if expected.is_empty() || !same_token(presented.unwrap_or(""), expected) {
            return Err(OAuthError::invalid_token(
                "registration requires the initial access token as a Bearer token (RFC 7591 §3)",
                presented.is_some(),
            ));
        }
        // Counted whether it succeeds or not (the ticket is never refunded): client
        // ids are never given twice, so a registrar's loop must not use them all up.
        let key = Key {
            attempt: Attempt::Registration,
            subject: Subject::ip(peer),
        };
        if let Err(t) = self.store.try_acquire([key], self.clock.now()).await? {
            return Err(self.too_many(
                Throttle::RegistrationPerIp,
                None,
                peer,
                t.retry_after_ms,
                "too many registrations from this address",
            ));
        }
        let metadata = self.read_metadata(parts, body).await?;
        let new = self.register_client(metadata, true).await??;
        audit::client_changed(
            "client_registered",
            Registrar::Dynamic,
            &new.registered.client.client_id,
            None,
            peer,
        );
        // RFC 7591 §3.2.1: 201 Created, with every registered metadata value.
        Ok(response::json_value(
            StatusCode::CREATED,
            &self.registration_response(&new.registered, new.secret, new.registration_token),
        ))
    }

    /// RFC 7592 §2.1: the client read request.
    async fn read_configuration(
        &self,
        parts: &Parts,
        client_id: &str,
    ) -> Result<Reply, OAuthError> {
        let (registered, token) = self.configuration_request(parts, client_id).await?;
        // RFC 7592 §3: the response carries the registration access token; the one
        // presented stays valid (only its digest is kept, so it is the one we have).
        Ok(response::json_value(
            StatusCode::OK,
            &self.registration_response(&registered, None, Some(token.to_owned())),
        ))
    }

    /// RFC 7592 §2.3: the client delete request: 204, and the client, its codes and
    /// its tokens stop working.
    async fn delete_configuration(
        &self,
        parts: &Parts,
        client_id: &str,
        peer: IpAddr,
    ) -> Result<Reply, OAuthError> {
        let (registered, _) = self.configuration_request(parts, client_id).await?;
        self.unregister(&registered).await?;
        audit::client_changed("client_deleted", Registrar::Dynamic, client_id, None, peer);
        Ok(response::no_content())
    }

    /// The registered client a client configuration request is about, with the
    /// registration access token it presented. RFC 7592 §2.1: an unknown client or a
    /// wrong token is 401 `invalid_token`, the same answer for both.
    async fn configuration_request<'p>(
        &self,
        parts: &'p Parts,
        client_id: &str,
    ) -> Result<(Registered, &'p str), OAuthError> {
        let token = bearer(parts);
        let refused = || {
            OAuthError::invalid_token(
                "a valid registration access token for this client is required (RFC 7592 §3)",
                token.is_some(),
            )
        };
        let token = token.ok_or_else(refused)?;
        let registered = self.registered(client_id).await?.ok_or_else(refused)?;
        if !registered.registration_token_matches(token) {
            return Err(refused());
        }
        Ok((registered, token))
    }

    /// RFC 7591 §3.2.1 / RFC 7592 §3: the client information response.
    fn registration_response(
        &self,
        registered: &Registered,
        secret: Option<String>,
        registration_token: Option<String>,
    ) -> ClientRegistration {
        let mut answer = registered.metadata(&self.settings.scopes);
        answer.client_secret = secret;
        if registered.registration_token_sha256.is_some() {
            answer.registration_client_uri = Some(format!(
                "{}{}/{}",
                self.issuer,
                paths::REGISTRATION,
                registered.client.client_id
            ));
            answer.registration_access_token = registration_token;
        }
        answer
    }

    // The acts every form of registration shares.

    /// The client metadata a request's JSON body holds (RFC 7591 §2), checked against
    /// this server's scopes and clients; refused as `invalid_client_metadata`
    /// (RFC 7591 §3.2.2) by the administrator's form as by dynamic registration.
    pub(crate) async fn read_metadata<B>(
        &self,
        parts: &Parts,
        body: B,
    ) -> Result<Metadata, OAuthError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let document: MetadataDocument = read_json(
            parts,
            body,
            self.settings.max_body_bytes,
            self.settings.body_read_timeout_ms,
        )
        .await?
        .map_err(invalid_metadata)?;
        let request = request_from_json(document).map_err(invalid_metadata)?;
        Metadata::from_request(&request, &self.settings.scopes, &self.settings.clients)
            .map_err(|e| invalid_metadata(e.to_string()))
    }

    /// Registers a client with `metadata`: an index drawn from the store, a
    /// `client_id`, a secret if confidential, and a registration access token if
    /// `with_registration_token` (RFC 7591).
    ///
    /// A name that reads as a registered application's is refused, as a configured
    /// one's is (RFC 8628 §5.4: the person approving reads the name on the consent
    /// page, and one registrant could pass for another). The name's keys are claimed
    /// in the store at once for every instance, after the record is kept, so that a
    /// holder without a record is one deleted before its keys were taken back.
    pub(crate) async fn register_client(
        &self,
        metadata: Metadata,
        with_registration_token: bool,
    ) -> Stored<Result<NewClient, Unregistered>> {
        let keys = metadata.name.as_deref().map(NameKeys::of);
        if let Some(keys) = &keys {
            // Looked up first, so that a name refused spends no index.
            for holder in self.store.client_named(keys).await? {
                if let Some(taken) = self.name_held_by(holder).await? {
                    return Ok(Err(taken));
                }
            }
        }
        let Some(id) = self.store.next_client_id().await? else {
            return Ok(Err(Unregistered::Exhausted));
        };
        let new = metadata.register(id, self.clock.now(), with_registration_token);
        // A client given no name is named by its client_id: held too, so that no name
        // reads as another client's id.
        let keys = keys.unwrap_or_else(|| NameKeys::of(&new.registered.client.name));
        self.store.put_client(&new.registered).await?;
        match self.claim_name(&keys, id).await {
            Ok(None) => Ok(Ok(new)),
            // A registration of a name alike at the same moment was first.
            Ok(Some(taken)) => {
                self.forget_unanswered(id).await?;
                Ok(Err(taken))
            }
            Err(Unavailable) => {
                // Not left without its name (or holding it, if the claim's answer was
                // what failed); never answered, so never used.
                let _ = self.forget_unanswered(id).await;
                Err(Unavailable)
            }
        }
    }

    /// Deletes the record of a client registered and refused before it was answered.
    async fn forget_unanswered(&self, id: ClientId) -> Stored<()> {
        if let Err(Unavailable) = self.store.remove_client(id).await {
            tracing::error!(
                index = id.0,
                "a client refused before its registration was answered could not be deleted: its record stays, and no one has its credentials; delete it (clients remove)"
            );
            return Err(Unavailable);
        }
        Ok(())
    }

    /// Claims `keys` for `id`; what refuses the name if another client holds them.
    async fn claim_name(&self, keys: &NameKeys, id: ClientId) -> Stored<Option<Unregistered>> {
        // Each round frees the keys of a client deleted before they were taken back,
        // and a name has at most three.
        for _ in 0..4 {
            let Some(holder) = self.store.claim_client_name(keys, id).await? else {
                return Ok(None);
            };
            if let Some(taken) = self.name_held_by(holder).await? {
                return Ok(Some(taken));
            }
            self.store.release_client_name(keys, holder).await?;
        }
        tracing::error!(
            index = id.0,
            "a client name's keys stayed held by deleted clients; the registration is refused"
        );
        Err(Unavailable)
    }

    /// The refusal of a name whose keys `holder` holds, if its record is there.
    async fn name_held_by(&self, holder: ClientId) -> Stored<Option<Unregistered>> {
        Ok(self
            .store
            .registered_client(holder)
            .await?
            .map(|r| Unregistered::Name(MetadataError::NameRegistered(r.client.name))))
    }

    /// The registered client with this `client_id` (never a configured one).
    pub(crate) async fn registered(&self, client_id: &str) -> Stored<Option<Registered>> {
        let Some(id) = ClientId::parse_registered(client_id) else {
            return Ok(None);
        };
        Ok(self
            .store
            .registered_client(id)
            .await?
            .filter(|r| r.client.client_id == client_id))
    }

    /// Gives a registered confidential client a new secret, returned once.
    pub(crate) async fn rotate_secret(&self, client_id: &str) -> Stored<Rotation> {
        let Some(was) = self.registered(client_id).await? else {
            return Ok(Rotation::Gone);
        };
        let mut registered = was.clone();
        let Some(secret) = registered.rotate_secret() else {
            return Ok(Rotation::Public);
        };
        if self.store.replace_client(&was, &registered).await? {
            return Ok(Rotation::New(secret));
        }
        // Deleted, or rotated by another request, since it was read.
        Ok(match self.registered(client_id).await? {
            Some(_) => Rotation::Raced,
            None => Rotation::Gone,
        })
    }

    /// Deletes a registered client; whether it existed.
    pub(crate) async fn delete_client(&self, client_id: &str) -> Stored<bool> {
        match self.registered(client_id).await? {
            Some(r) => self.unregister(&r).await,
            None => Ok(false),
        }
    }

    /// Deletes `registered` and then gives its name back (a name held by no record is
    /// free, so a failure between the two frees it all the same); whether it existed.
    async fn unregister(&self, registered: &Registered) -> Stored<bool> {
        let id = registered.client.id;
        let removed = self.store.remove_client(id).await?;
        let keys = NameKeys::of(&registered.client.name);
        if self.store.release_client_name(&keys, id).await.is_err() {
            // Deleted all the same: the next claim of a name alike frees them.
            tracing::warn!(
                index = id.0,
                "a deleted client's name could not be given back now; the next registration of a name alike will"
            );
        }
        Ok(removed)
    }
}
