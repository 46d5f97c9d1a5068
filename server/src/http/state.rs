//! The application's state: everything a request can reach, built once from the
//! [`Settings`]. Endpoints and pages add their handlers to [`App`] in their own
//! modules; the router (`router.rs`) sends each request to one of them.

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use deviceflow_wire::ErrorCode;
use hyper::header::{HeaderValue, AUTHORIZATION};
use hyper::http::request::Parts;

use crate::accounts::clients::{AuthError, Client};
use crate::clock::Clock;
use crate::config::Settings;
use crate::http::form::Form;
use crate::http::metrics::Metrics;
use crate::http::response::OAuthError;
use crate::quota::Quotas;
use crate::storage::store::{MemoryStore, SessionStore};
use crate::storage::tokens::TokenStore;
use crate::verification::state::Verification;

/// The peer of a request handled in-process, with no connection (tests, benches).
pub const NO_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Everything a request can reach.
pub struct App<S: SessionStore = MemoryStore> {
    /// The configuration it runs on.
    pub settings: Settings,
    /// Issuer identifier and base URL, without a trailing slash.
    pub issuer: String,
    /// Device authorization sessions.
    pub store: S,
    /// Access and refresh tokens.
    pub(crate) tokens: TokenStore,
    /// The clock every rule reads.
    pub clock: Clock,
    /// Counters and latency histograms for `/metrics`.
    pub(crate) metrics: Metrics,
    /// Device authorizations per source address and per client.
    pub(crate) quotas: Quotas,
    /// The person's side: web sessions, rate limits, the pages under `/device`.
    pub verification: Verification,
    /// RFC 8414 metadata, rendered once.
    pub(crate) metadata: Bytes,
}

impl App<MemoryStore> {
    /// An app on the in-memory store.
    pub fn new(settings: Settings, issuer: String, clock: Clock) -> App<MemoryStore> {
        let store = MemoryStore::new(
            settings.max_sessions,
            settings.expired_retention_secs * 1000,
        )
        .with_max_per_client(
            settings.max_sessions_per_client,
            // A client that may hold the whole cap needs no count of its own.
            if settings.max_sessions_per_client < settings.max_sessions {
                settings.clients.len()
            } else {
                0
            },
        );
        App::with_store(settings, issuer, clock, store)
    }
}

impl<S: SessionStore> App<S> {
    /// An app on `store`.
    pub fn with_store(settings: Settings, issuer: String, clock: Clock, store: S) -> App<S> {
        let tokens = TokenStore::new(
            settings.access_token_ttl_secs * 1000,
            settings.refresh_token_ttl_secs * 1000,
        );
        let metadata = crate::endpoints::metadata::render(&settings, &issuer);
        let verification = Verification::new(&settings, &issuer);
        let quotas = Quotas::new(settings.quotas);
        App {
            settings,
            issuer,
            store,
            tokens,
            clock,
            metrics: Metrics::default(),
            quotas,
            verification,
            metadata,
        }
    }

    /// Authenticates the caller (see
    /// [`Clients::authenticate`](crate::accounts::clients::Clients::authenticate)) and
    /// turns a failure into its RFC 6749 §5.2 answer.
    pub(crate) fn client<'a>(
        &'a self,
        parts: &Parts,
        form: &Form<'_>,
    ) -> Result<&'a Client, OAuthError> {
        let authorization = parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
        self.settings
            .clients
            .authenticate(authorization, form)
            .map_err(|e| match e {
                AuthError::Malformed(why) => OAuthError::invalid_request(why),
                AuthError::Failed { basic } => {
                    let e =
                        OAuthError::new(ErrorCode::InvalidClient, "client authentication failed");
                    if basic {
                        e.with_basic_challenge()
                    } else {
                        e
                    }
                }
            })
    }

    /// Removes some of what expired: sessions past their retention, and expired
    /// tokens, looking at no more than `budget` due entries of each. Returns whether a
    /// slice came back full, so that more may be due: the sweeper calls again, after
    /// letting other tasks run.
    pub fn sweep(&self, budget: usize) -> bool {
        let now = self.clock.now();
        let stats = self.store.sweep(now, budget);
        self.metrics.sessions_expired(stats.expired_unredeemed);
        let tokens = self.tokens.sweep(now, budget);
        let sources = self.quotas.sweep(now, budget);
        self.verification.sweep(now);
        stats.examined == budget || tokens == budget || sources == budget
    }
}
