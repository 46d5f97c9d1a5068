//! The application's state: everything a request can reach, built once from the
//! [`Settings`]. Endpoints and pages add their handlers to [`App`] in their own
//! modules; the router (`router.rs`) sends each request to one of them.

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use deviceflow_wire::ErrorCode;
use hyper::header::{HeaderValue, AUTHORIZATION};
use hyper::http::request::Parts;

use std::borrow::Cow;

use crate::accounts::clients::{AuthError, Client};
use crate::app::metrics::Metrics;
use crate::clock::Clock;
use crate::config::Settings;
use crate::endpoints::device_answer::DeviceAnswer;
use crate::http::form::Form;
use crate::http::paths;
use crate::http::response::OAuthError;
use crate::protocol::ids::ClientId;
use crate::protocol::scope::ScopeSet;
use crate::storage::clock_offset;
use crate::storage::memory::MemoryStore;
use crate::storage::store::{Store, Stored, Unavailable};
use crate::verification::state::Verification;

/// The peer of a request handled in-process, with no connection (tests, benches).
pub const NO_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// How long a client is asked to wait when the shared store is away.
pub(crate) const STORE_RETRY_AFTER_MS: u64 = 2_000;

/// Everything a request can reach.
pub struct App<S: Store = MemoryStore> {
    /// The configuration it runs on.
    pub settings: Settings,
    /// Issuer identifier and base URL, without a trailing slash.
    pub issuer: String,
    /// Where sessions, tokens, web sessions and counters live.
    pub store: S,
    /// The clock every rule reads.
    pub clock: Clock,
    /// Counters and latency histograms for `/metrics`.
    pub(crate) metrics: Metrics,
    /// The person's side: the session cookie, the hashing pool, the pages' keys.
    pub verification: Verification,
    /// RFC 8414 metadata, rendered once.
    pub(crate) metadata: Bytes,
    /// Where RFC 8414 §3.1 puts the metadata of an issuer with a path
    /// (`/.well-known/oauth-authorization-server/auth` for `https://h/auth`), served
    /// beside the root path; `None` for an issuer without one.
    pub(crate) metadata_at_issuer_path: Option<String>,
    /// The issuer's path (`/auth` for `https://h/auth`), below which every endpoint
    /// and page is served ([`paths::strip_base`]); `None` for an issuer without one.
    pub(crate) issuer_path: Option<Box<str>>,
    /// The constant parts of the device authorization answer (RFC 8628 §3.2).
    pub(crate) device_answer: DeviceAnswer,
}

impl App<MemoryStore> {
    /// An app on the in-memory store.
    pub fn new(settings: Settings, issuer: String, clock: Clock) -> App<MemoryStore> {
        let store = MemoryStore::new(&settings.store_settings());
        App::with_store(settings, issuer, clock, store)
    }
}

impl<S: Store> App<S> {
    /// An app on `store`.
    pub fn with_store(settings: Settings, issuer: String, clock: Clock, store: S) -> App<S> {
        let metadata = crate::endpoints::metadata::render(&settings, &issuer);
        let verification = Verification::new(&settings, &issuer, &store.secret());
        let device_answer =
            DeviceAnswer::new(&issuer, settings.expires_in_secs, settings.interval_secs);
        App {
            metadata_at_issuer_path: metadata_at_issuer_path(&issuer),
            issuer_path: Some(paths::issuer_path(&issuer))
                .filter(|path| !path.is_empty())
                .map(Box::from),
            settings,
            issuer,
            store,
            clock,
            metrics: Metrics::default(),
            verification,
            metadata,
            device_answer,
        }
    }

    /// Authenticates the caller (see
    /// [`Clients::authenticate`](crate::accounts::clients::Clients::authenticate)) and
    /// turns a failure into its RFC 6749 §5.2 answer.
    pub(crate) async fn client<'a>(
        &'a self,
        parts: &Parts,
        form: &Form<'_>,
    ) -> Result<Cow<'a, Client>, OAuthError> {
        let authorization = authorization(parts)?;
        self.settings
            .clients
            .authenticate(authorization, form, |id| self.registered_client(id))
            .await?
            .map_err(refused)
    }

    /// [`client`](Self::client) for a configured client, without awaiting: `Ok(None)`
    /// when the request names a registered client, which the store must be asked for.
    pub(crate) fn configured_client<'a>(
        &'a self,
        parts: &Parts,
        form: &Form<'_>,
    ) -> Result<Option<&'a Client>, OAuthError> {
        let authorization = authorization(parts)?;
        self.settings
            .clients
            .authenticate_configured(authorization, form)
            .map_err(refused)
    }

    /// The client with this index, configured or registered; `None` for a registered
    /// client that was deleted.
    pub(crate) async fn client_by_id(
        &self,
        id: ClientId,
    ) -> Result<Option<Cow<'_, Client>>, Unavailable> {
        self.settings
            .clients
            .by_id(id, |id| self.registered_client(id))
            .await
    }

    /// A registered client, from the store; `None` once it is deleted.
    async fn registered_client(&self, id: ClientId) -> Stored<Option<Client>> {
        Ok(self.store.registered_client(id).await?.map(|r| r.client))
    }

    /// The client with this index, or, for one deleted since, a stand-in that says so
    /// (for what is reported after a decision on one of its codes).
    pub(crate) async fn client_or_deleted(
        &self,
        id: ClientId,
    ) -> Result<Cow<'_, Client>, Unavailable> {
        Ok(self.client_by_id(id).await?.unwrap_or_else(|| {
            Cow::Owned(Client {
                id,
                client_id: format!("(deleted client {})", id.0),
                name: "a deleted application".to_owned(),
                secret_sha256: None,
                auth_methods: vec![],
                allowed_scope: ScopeSet::EMPTY,
                default_scope: ScopeSet::EMPTY,
                device_grant: false,
                refresh_grant: false,
            })
        }))
    }

    /// Removes some of what expired: sessions past their retention, expired tokens,
    /// web sessions and counters, looking at no more than `budget` due entries of
    /// each. Returns whether a slice came back full, so that more may be due: the
    /// sweeper calls again, after letting other tasks run.
    pub fn sweep(&self, budget: usize) -> bool {
        let stats = self.store.sweep(self.clock.now(), budget);
        self.metrics.sessions_expired(stats.expired_unredeemed);
        stats.examined == budget
    }

    /// This instance's clock minus the shared store's, in milliseconds
    /// ([`clock_offset`]); `None` on the memory store.
    pub async fn clock_offset(&self) -> Stored<Option<i64>> {
        clock_offset::measure(&self.store, &self.clock).await
    }
}

/// The request's Authorization header, for client authentication. Sent twice, it is
/// refused as the header's failed attempt: the field is not a list (RFC 9110 §11.6.2),
/// so which copy counts would be up to each reader, a proxy in front or this server.
fn authorization(parts: &Parts) -> Result<Option<&[u8]>, OAuthError> {
    let mut values = parts.headers.get_all(AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "more than one Authorization header",
        )
        .with_basic_challenge());
    }
    Ok(first.map(HeaderValue::as_bytes))
}

/// RFC 8414 §3.1: "inserting a well-known URI string into the authorization server's
/// issuer identifier between the host component and the path component, if any": the
/// path at which an issuer with a path (`https://h/auth`, no trailing slash) has its
/// metadata (`/.well-known/oauth-authorization-server/auth`); `None` without a path.
fn metadata_at_issuer_path(issuer: &str) -> Option<String> {
    let path = paths::issuer_path(issuer);
    (!path.is_empty()).then(|| format!("{}{path}", deviceflow_wire::METADATA_PATH))
}

/// A failed client authentication's RFC 6749 §5.2 answer.
fn refused(e: AuthError) -> OAuthError {
    match e {
        AuthError::Malformed(why) => OAuthError::invalid_request(why),
        AuthError::BadBasic => OAuthError::new(
            ErrorCode::InvalidClient,
            "the Authorization header is not valid HTTP Basic credentials",
        )
        .with_basic_challenge(),
        // RFC 6749 §5.2: a failed header attempt MUST be 401 with `WWW-Authenticate`;
        // a body attempt MAY be 401, and RFC 9110 §15.5.2 says a 401 MUST carry a
        // challenge: Basic, the scheme this server supports (RFC 6749 §2.3.1).
        AuthError::Failed => {
            OAuthError::new(ErrorCode::InvalidClient, "client authentication failed")
                .with_basic_challenge()
        }
    }
}

impl From<Unavailable> for OAuthError {
    /// The shared store is away: RFC 6749 §5.2 has no code for it, so the answer is
    /// the authorization endpoint's `temporarily_unavailable` (RFC 6749 §4.1.2.1),
    /// 503 with `Retry-After`, as for the session cap.
    fn from(_: Unavailable) -> OAuthError {
        OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "the session store is unavailable; retry later",
        )
        .with_retry_after_ms(STORE_RETRY_AFTER_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issuer_with_a_path_has_its_metadata_where_rfc_8414_section_3_1_puts_it() {
        assert_eq!(metadata_at_issuer_path("http://127.0.0.1:8080"), None);
        assert_eq!(metadata_at_issuer_path("https://as.example/"), None);
        assert_eq!(
            metadata_at_issuer_path("https://as.example/tenant/a").as_deref(),
            Some("/.well-known/oauth-authorization-server/tenant/a")
        );
    }
}
