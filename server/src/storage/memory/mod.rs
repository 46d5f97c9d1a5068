//! The in-memory store, the embedded default: every record in this process's sharded
//! maps, each with an expiry wheel. The fastest path, and the showcase's; everything
//! in it is lost when the process stops (README, "What a restart loses").
//!
//! Each call runs to completion under its shard's lock and returns a future that is
//! ready at once (`reports/benches/store-seam.md` measures the poll path).

mod rate_limit;
mod sessions;
mod table;
mod tokens;
mod web_sessions;

pub use rate_limit::RateLimiter;
pub use web_sessions::WebSessions;

use std::collections::HashMap;
use std::future::{ready, Future};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use rand::RngCore;

pub use sessions::Sessions;
pub(crate) use tokens::TokenStore;

use crate::accounts::registration::{NameKeys, Registered};
use crate::accounts::users::Credential;
use crate::clock::Millis;
use crate::protocol::device_code::DeviceCode;
use crate::protocol::ids::ClientId;
use crate::protocol::ids::UserId;
use crate::protocol::scope::ScopeSet;
use crate::protocol::session::{DecideError, Decision, PollOutcome, PollPolicy};
use crate::protocol::user_code::UserCode;
use crate::quota::{Quotas, Refusal, Source};
use crate::storage::rate_limit::{Key, Throttled, Ticket};
use crate::storage::shared_secret::SharedSecret;
use crate::storage::store::{
    Census, CreateError, SessionInfo, Store, StoreSettings, Stored, SweepStats,
};
use crate::storage::tokens::{Grant, Introspection, Issued, IssuedToAnother, RefreshError};
use crate::storage::web_sessions::{Full, SessionId, WebSession};

/// The in-memory store.
pub struct MemoryStore {
    /// Device authorization sessions.
    pub sessions: Sessions,
    tokens: TokenStore,
    web: WebSessions,
    limiter: RateLimiter,
    quotas: Quotas,
    /// Clients registered at run time, by index; lost on restart like the rest.
    clients: crate::shards::Map<u16, Registered>,
    /// How many client indexes were given.
    clients_given: AtomicU64,
    /// The registered clients' name keys, each with the client that holds it; under
    /// one lock, so that a claim takes all of a name's keys or none.
    client_names: Mutex<HashMap<String, ClientId>>,
    secret: SharedSecret,
}

impl MemoryStore {
    /// The signed-in browsers' sessions (tests look at what is kept).
    pub fn web_sessions(&self) -> &WebSessions {
        &self.web
    }

    /// The guess limits' windows (tests look at what is kept).
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// A store for `settings`: its session cap and each client's share, its token
    /// lifetimes and its quotas.
    pub fn new(settings: &StoreSettings) -> MemoryStore {
        let sessions = Sessions::new(settings.max_sessions, settings.expired_retention_ms)
            .with_max_per_client(
                settings.max_sessions_per_client,
                // A client that may hold the whole cap needs no count of its own.
                if settings.has_client_share() {
                    settings.clients.len()
                } else {
                    0
                },
            );
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        MemoryStore {
            sessions,
            tokens: TokenStore::new(settings.access_token_ttl_ms, settings.refresh_token_ttl_ms),
            web: WebSessions::default(),
            limiter: RateLimiter::default(),
            quotas: Quotas::new(settings.quotas),
            clients: crate::shards::map(),
            clients_given: AtomicU64::new(0),
            client_names: Mutex::default(),
            secret: SharedSecret::new(secret),
        }
    }
}

/// A memory call's answer, ready at once.
fn now<T>(value: T) -> impl Future<Output = Stored<T>> + Send
where
    T: Send,
{
    ready(Ok(value))
}

impl Store for MemoryStore {
    fn create(
        &self,
        client: ClientId,
        scope: ScopeSet,
        at: Millis,
        expires_in_ms: Millis,
        policy: &PollPolicy,
    ) -> impl Future<Output = Stored<Result<DeviceCode, CreateError>>> + Send {
        now(self
            .sessions
            .create(client, scope, at, expires_in_ms, policy))
    }

    fn prefetch(&self, code: &DeviceCode) {
        self.sessions.prefetch(code);
    }

    fn poll(
        &self,
        code: &DeviceCode,
        client: ClientId,
        at: Millis,
        policy: &PollPolicy,
    ) -> impl Future<Output = Stored<PollOutcome>> + Send {
        now(self
            .sessions
            .poll(code, client, at, policy, || self.tokens.new_family(at)))
    }

    fn decide(
        &self,
        user_code: UserCode,
        decision: Decision,
        at: Millis,
    ) -> impl Future<Output = Stored<Result<SessionInfo, DecideError>>> + Send {
        now(self.sessions.decide(user_code, decision, at))
    }

    fn lookup(
        &self,
        user_code: UserCode,
    ) -> impl Future<Output = Stored<Option<SessionInfo>>> + Send {
        now(self.sessions.lookup(user_code))
    }

    fn issue(
        &self,
        grant: Grant,
        family: u64,
        with_refresh: bool,
        at: Millis,
    ) -> impl Future<Output = Stored<Issued>> + Send {
        now(self
            .tokens
            .issue(grant, family, with_refresh.then_some(grant.scope), at))
    }

    fn redeem(
        &self,
        _user_code: UserCode,
        grant: Grant,
        family: u64,
        with_refresh: bool,
        at: Millis,
    ) -> impl Future<Output = Stored<Option<Issued>>> + Send {
        // The family was recorded under the session's lock by the poll that redeemed
        // it, and no other poll can redeem the code: this one issues.
        now(Some(self.tokens.issue(
            grant,
            family,
            with_refresh.then_some(grant.scope),
            at,
        )))
    }

    fn refresh(
        &self,
        token: &str,
        client: ClientId,
        scope: Option<ScopeSet>,
        at: Millis,
    ) -> impl Future<Output = Stored<Result<Issued, RefreshError>>> + Send {
        now(self.tokens.refresh(token, client, scope, at))
    }

    fn revoke_family(&self, family: u64) -> impl Future<Output = Stored<()>> + Send {
        self.tokens.revoke_family(family);
        now(())
    }

    fn introspect(
        &self,
        token: &str,
        at: Millis,
    ) -> impl Future<Output = Stored<Option<Introspection>>> + Send {
        now(self.tokens.introspect(token, at))
    }

    fn revoke(
        &self,
        token: &str,
        client: ClientId,
        at: Millis,
    ) -> impl Future<Output = Stored<Result<(), IssuedToAnother>>> + Send {
        now(self.tokens.revoke(token, client, at))
    }

    fn start_web_session(
        &self,
        user: UserId,
        credential: Credential,
        at: Millis,
    ) -> impl Future<Output = Stored<Result<(SessionId, WebSession), Full>>> + Send {
        now(self.web.start(user, credential, at))
    }

    fn web_session(
        &self,
        id: &SessionId,
        at: Millis,
    ) -> impl Future<Output = Stored<Option<WebSession>>> + Send {
        now(self.web.get(id, at))
    }

    fn set_entered(
        &self,
        id: &SessionId,
        code: Option<UserCode>,
        _at: Millis,
    ) -> impl Future<Output = Stored<bool>> + Send {
        now(self.web.set_entered(id, code))
    }

    fn end_web_session(&self, id: &SessionId) -> impl Future<Output = Stored<()>> + Send {
        self.web.end(id);
        now(())
    }

    fn try_acquire<const N: usize>(
        &self,
        keys: [Key; N],
        at: Millis,
    ) -> impl Future<Output = Stored<Result<Ticket<N>, Throttled>>> + Send {
        now(self.limiter.try_acquire(keys, at))
    }

    fn refund<const N: usize>(&self, ticket: Ticket<N>) -> impl Future<Output = Stored<()>> + Send {
        self.limiter.refund(ticket);
        now(())
    }

    fn forget(&self, key: Key) -> impl Future<Output = Stored<()>> + Send {
        self.limiter.forget(&key);
        now(())
    }

    fn admit(
        &self,
        source: Source,
        client: ClientId,
        at: Millis,
    ) -> impl Future<Output = Stored<Result<(), Refusal>>> + Send {
        now(self.quotas.admit(source, client, at))
    }

    fn next_client_id(&self) -> impl Future<Output = Stored<Option<ClientId>>> + Send {
        // Relaxed: the count only has to hand each index out once.
        let n = self.clients_given.fetch_add(1, Ordering::Relaxed);
        now(ClientId::registered(n))
    }

    fn put_client(&self, client: &Registered) -> impl Future<Output = Stored<()>> + Send {
        self.clients.insert(client.client.id.0, client.clone());
        now(())
    }

    fn replace_client(
        &self,
        was: &Registered,
        client: &Registered,
    ) -> impl Future<Output = Stored<bool>> + Send {
        let replaced = match self.clients.get_mut(&client.client.id.0) {
            Some(mut kept) if *kept == *was => {
                *kept = client.clone();
                true
            }
            _ => false,
        };
        now(replaced)
    }

    fn registered_client(
        &self,
        id: ClientId,
    ) -> impl Future<Output = Stored<Option<Registered>>> + Send {
        now(self.clients.get(&id.0).map(|r| r.clone()))
    }

    fn registered_clients(&self) -> impl Future<Output = Stored<Vec<Registered>>> + Send {
        let mut all: Vec<Registered> = self.clients.iter().map(|r| r.clone()).collect();
        all.sort_by_key(|r| r.client.id.0);
        now(all)
    }

    fn remove_client(&self, id: ClientId) -> impl Future<Output = Stored<bool>> + Send {
        now(self.clients.remove(&id.0).is_some())
    }

    fn client_named(&self, keys: &NameKeys) -> impl Future<Output = Stored<Vec<ClientId>>> + Send {
        let names = self
            .client_names
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut named: Vec<ClientId> = keys.iter().filter_map(|k| names.get(k).copied()).collect();
        named.sort_unstable_by_key(|c| c.0);
        named.dedup();
        now(named)
    }

    fn claim_client_name(
        &self,
        keys: &NameKeys,
        id: ClientId,
    ) -> impl Future<Output = Stored<Option<ClientId>>> + Send {
        let mut names = self
            .client_names
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let holder = keys
            .iter()
            .find_map(|k| names.get(k).copied().filter(|&holder| holder != id));
        if holder.is_none() {
            names.extend(keys.iter().map(|k| (k.to_owned(), id)));
        }
        now(holder)
    }

    fn release_client_name(
        &self,
        keys: &NameKeys,
        id: ClientId,
    ) -> impl Future<Output = Stored<()>> + Send {
        let mut names = self
            .client_names
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for k in keys.iter() {
            if names.get(k) == Some(&id) {
                names.remove(k);
            }
        }
        now(())
    }

    fn sweep(&self, at: Millis, budget: usize) -> SweepStats {
        let mut stats = self.sessions.sweep(at, budget);
        let tokens = self.tokens.sweep(at, budget);
        let sources = self.quotas.sweep(at, budget);
        self.web.sweep(at);
        self.limiter.sweep(at);
        stats.examined = stats.examined.max(tokens).max(sources);
        stats
    }

    fn census(&self, _at: Millis) -> impl Future<Output = Stored<Census>> + Send {
        now(Census {
            sessions: self.sessions.len(),
            access_tokens: Some(self.tokens.access_tokens()),
            counts_expirations: true,
        })
    }

    fn time(&self) -> impl Future<Output = Stored<Option<Millis>>> + Send {
        now(None)
    }

    fn warnings(&self) -> impl Future<Output = Vec<String>> + Send {
        std::future::ready(Vec::new())
    }

    fn secret(&self) -> SharedSecret {
        self.secret.clone()
    }
}
