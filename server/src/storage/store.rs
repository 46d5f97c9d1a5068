//! The store seam: everything two instances must share to answer as one.
//!
//! [`Store`] is what the endpoints and pages run on: device authorization sessions
//! (and the session cap), token families, web sessions, the guess limits, the
//! device authorization quotas and the clients registered at run time. Two backends implement it:
//! - [`MemoryStore`](super::memory::MemoryStore), the embedded default: sharded maps in
//!   this process, the fastest path, lost on restart;
//! - [`RedisStore`](super::redis::RedisStore): one Redis or a Redis Cluster, shared by
//!   every instance, surviving restarts.
//!
//! The rules live once, outside the backends: the RFC 8628 §3.5 state machine in
//! `protocol/session.rs`, token rotation and reuse detection in `tokens.rs`, the
//! guess-limit windows in `rate_limit.rs`, the token buckets in
//! `quota.rs`. A backend only makes each rule's read-decide-write atomic: the memory
//! store under a shard lock, Redis with a compare-and-set of the record.
//!
//! Every call is async and may fail with [`Unavailable`] (Redis went away); the
//! server answers that with 503 `temporarily_unavailable` and `Retry-After`, never a
//! 500 and never a token without its record. The memory store never fails, and its
//! futures are ready at once; what the async layers still cost a poll (about 2 % of
//! its instructions, paid back by the form parser) is measured in
//! `reports/benches/store-seam.md`.

use std::future::Future;

use crate::accounts::registration::{NameKeys, Registered};
use crate::accounts::users::Credential;
use crate::clock::Millis;
use crate::protocol::device_code::DeviceCode;
use crate::protocol::ids::ClientId;
use crate::protocol::ids::UserId;
use crate::protocol::scope::ScopeSet;
use crate::protocol::session::{DecideError, Decision, PollOutcome, PollPolicy, Session, State};
use crate::protocol::user_code::UserCode;
use crate::quota::{QuotaPolicy, Refusal, Source};
use crate::storage::rate_limit::{Key, Throttled, Ticket};
use crate::storage::shared_secret::SharedSecret;
use crate::storage::tokens::{Grant, Introspection, Issued, IssuedToAnother, RefreshError};
use crate::storage::web_sessions::{Full, SessionId, WebSession};

/// What of the configuration a store is built for
/// ([`Settings::store_settings`](crate::config::Settings::store_settings)).
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Sessions held at once.
    pub max_sessions: usize,
    /// The most sessions one client may hold; a share of `max_sessions` or more is
    /// no share of its own.
    pub max_sessions_per_client: usize,
    /// Device authorization quotas.
    pub quotas: QuotaPolicy,
    /// How long an expired session answers `expired_token`, milliseconds.
    pub expired_retention_ms: Millis,
    /// Access token lifetime, milliseconds.
    pub access_token_ttl_ms: Millis,
    /// Refresh token lifetime, milliseconds.
    pub refresh_token_ttl_ms: Millis,
    /// The configured users' usernames, in the configuration's order: their indexes
    /// are what sessions and tokens record, so a shared store checks that every
    /// instance numbers them alike (its roster).
    pub users: Vec<String>,
    /// The configured clients' `client_id`s, in the configuration's order (as
    /// `users`).
    pub clients: Vec<String>,
}

impl StoreSettings {
    /// Whether each client's sessions are counted against its own share: only where
    /// one client may not hold the whole cap.
    pub fn has_client_share(&self) -> bool {
        self.max_sessions_per_client < self.max_sessions
    }
}

/// A session as the person's side sees it: enough to show and decide, no secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// The code the person types.
    pub user_code: UserCode,
    /// The client that asked.
    pub client: ClientId,
    /// The scope asked for.
    pub scope: ScopeSet,
    /// When it was issued.
    pub issued_at: Millis,
    /// When it expires.
    pub expires_at: Millis,
    /// Where it is in its life.
    pub state: State,
}

impl SessionInfo {
    /// What the person's side may see of `session`, whose user code is `user_code`.
    pub(crate) fn of(user_code: UserCode, session: &Session) -> SessionInfo {
        SessionInfo {
            user_code,
            client: session.client,
            scope: session.scope,
            issued_at: session.issued_at,
            expires_at: session.expires_at,
            state: session.state,
        }
    }
}

/// Why a new session could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The session cap (`device.max_sessions`) is reached.
    #[error("the server holds its maximum number of device authorization sessions")]
    Full,
    /// The client holds its share of the cap (`quotas.client_share`), so that one
    /// client cannot take every session from the others.
    #[error("this client holds its share of the device authorization sessions")]
    ClientFull,
}

/// What a sweep slice did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Due entries looked at (at most the slice's budget); when it equals the budget,
    /// more may be due.
    pub examined: usize,
    /// Sessions removed.
    pub removed: usize,
    /// Of those, sessions that expired without ever being redeemed.
    pub expired_unredeemed: usize,
}

/// What `/metrics` reports of the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    /// Device authorization sessions held (pending, decided, or expired and retained).
    pub sessions: usize,
    /// Live access tokens, where the backend can count them without a scan.
    pub access_tokens: Option<usize>,
    /// Whether the sweep counts sessions that expired unredeemed: on Redis keys expire
    /// by themselves, uncounted, and `/metrics` leaves the counter out rather than
    /// show a 0 that is not one.
    pub counts_expirations: bool,
}

/// The shared store could not be reached, or did not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session store is unavailable")]
pub struct Unavailable;

/// What a store call gives: its answer, or [`Unavailable`].
pub type Stored<T> = Result<T, Unavailable>;

/// The store the server runs on. See the module's documentation.
pub trait Store: Send + Sync + 'static {
    // Device authorization sessions: RFC 8628 §3.5, the state machine of `session.rs`.

    /// Creates a pending session under a fresh, unused user code, within the session
    /// cap and the client's share of it.
    fn create(
        &self,
        client: ClientId,
        scope: ScopeSet,
        now: Millis,
        expires_in_ms: Millis,
        policy: &PollPolicy,
    ) -> impl Future<Output = Stored<Result<DeviceCode, CreateError>>> + Send;

    /// A hint that `code` will be polled shortly: a store that keeps sessions in this
    /// process's memory asks the CPU to fetch its session now; one across the network
    /// does nothing.
    fn prefetch(&self, code: &DeviceCode) {
        let _ = code;
    }

    /// Answers a poll atomically (see `Session::poll`); an unknown code is
    /// [`PollOutcome::Invalid`]. A poll that redeems ([`PollOutcome::Issue`]) gets a
    /// new token family, and the caller then [`redeem`](Store::redeem)s it.
    fn poll(
        &self,
        code: &DeviceCode,
        client: ClientId,
        now: Millis,
        policy: &PollPolicy,
    ) -> impl Future<Output = Stored<PollOutcome>> + Send;

    /// Records the person's decision on the session with this user code.
    fn decide(
        &self,
        user_code: UserCode,
        decision: Decision,
        now: Millis,
    ) -> impl Future<Output = Stored<Result<SessionInfo, DecideError>>> + Send;

    /// The session with this user code, if it exists.
    fn lookup(
        &self,
        user_code: UserCode,
    ) -> impl Future<Output = Stored<Option<SessionInfo>>> + Send;

    // Tokens: RFC 6749 §6, RFC 9700 §4.14.2, RFC 7662, RFC 7009 (rules in `tokens.rs`).

    /// Issues an access token, and a refresh token if `with_refresh`, in `family`; a
    /// family revoked in the meantime stays revoked, with these tokens in it.
    fn issue(
        &self,
        grant: Grant,
        family: u64,
        with_refresh: bool,
        now: Millis,
    ) -> impl Future<Output = Stored<Issued>> + Send;

    /// Issues the tokens of a redeemed device code in `family`, once: `None` when
    /// another poll of the same code got there first (a replay racing it), in which
    /// case the family is revoked and the caller answers `invalid_grant` (checklist
    /// TS-08, TS-09). A replay that lands after the answer revokes what this issued.
    /// `user_code` names the session the poll redeemed.
    fn redeem(
        &self,
        user_code: UserCode,
        grant: Grant,
        family: u64,
        with_refresh: bool,
        now: Millis,
    ) -> impl Future<Output = Stored<Option<Issued>>> + Send;

    /// Exchanges a refresh token for a new pair, rotating it; reuse revokes the family.
    fn refresh(
        &self,
        token: &str,
        client: ClientId,
        scope: Option<ScopeSet>,
        now: Millis,
    ) -> impl Future<Output = Stored<Result<Issued, RefreshError>>> + Send;

    /// Revokes every token of a family.
    fn revoke_family(&self, family: u64) -> impl Future<Output = Stored<()>> + Send;

    /// RFC 7662: what an active token is; `None` if it is not active.
    fn introspect(
        &self,
        token: &str,
        now: Millis,
    ) -> impl Future<Output = Stored<Option<Introspection>>> + Send;

    /// RFC 7009 §2.1: revokes `token` if it was issued to `client`; leaves another
    /// client's alone, saying what it is while it is active at `now`
    /// ([`IssuedToAnother`]); does nothing for an unknown or inactive token.
    fn revoke(
        &self,
        token: &str,
        client: ClientId,
        now: Millis,
    ) -> impl Future<Output = Stored<Result<(), IssuedToAnother>>> + Send;

    // Web sessions of the person's side (`web_sessions.rs`).

    /// Starts `user`'s web session at sign-in with `credential`; the oldest of theirs
    /// ends past `MAX_SESSIONS_PER_USER`.
    fn start_web_session(
        &self,
        user: UserId,
        credential: Credential,
        now: Millis,
    ) -> impl Future<Output = Stored<Result<(SessionId, WebSession), Full>>> + Send;

    /// The live web session with this id.
    fn web_session(
        &self,
        id: &SessionId,
        now: Millis,
    ) -> impl Future<Output = Stored<Option<WebSession>>> + Send;

    /// Records the user code this web session is deciding on (or none); false if the
    /// session is gone.
    fn set_entered(
        &self,
        id: &SessionId,
        code: Option<UserCode>,
        now: Millis,
    ) -> impl Future<Output = Stored<bool>> + Send;

    /// Ends a web session (sign-out).
    fn end_web_session(&self, id: &SessionId) -> impl Future<Output = Stored<()>> + Send;

    // Guess limits (`verification/rate_limit.rs`) and quotas (`quota.rs`).

    /// Counts an attempt against each of `keys`, unless one is over its limit.
    fn try_acquire<const N: usize>(
        &self,
        keys: [Key; N],
        now: Millis,
    ) -> impl Future<Output = Stored<Result<Ticket<N>, Throttled>>> + Send;

    /// Uncounts an attempt that succeeded or was never evaluated.
    fn refund<const N: usize>(&self, ticket: Ticket<N>) -> impl Future<Output = Stored<()>> + Send;

    /// Forgets `key`'s failures.
    fn forget(&self, key: Key) -> impl Future<Output = Stored<()>> + Send;

    /// Admits a device authorization under the quotas of its source and its client.
    fn admit(
        &self,
        source: Source,
        client: ClientId,
        now: Millis,
    ) -> impl Future<Output = Stored<Result<(), Refusal>>> + Send;

    // Registered clients (`accounts/registration.rs`): RFC 7591, the admin API and page.

    /// Draws the index of a client registered now: never given before on this store,
    /// by any instance, so that no session or token of a deleted client can ever
    /// point at another; `None` once every index is given.
    fn next_client_id(&self) -> impl Future<Output = Stored<Option<ClientId>>> + Send;

    /// Keeps a newly registered client.
    fn put_client(&self, client: &Registered) -> impl Future<Output = Stored<()>> + Send;

    /// Replaces a registered client's record with `client` (a rotated secret) if it is
    /// still `was`, the record the change was made to; false if it was deleted or
    /// changed meanwhile (another rotation), and then it stays as it is: two rotations
    /// of one record never both answer a secret when only the later one works.
    fn replace_client(
        &self,
        was: &Registered,
        client: &Registered,
    ) -> impl Future<Output = Stored<bool>> + Send;

    /// The registered client with this index, if it exists.
    fn registered_client(
        &self,
        id: ClientId,
    ) -> impl Future<Output = Stored<Option<Registered>>> + Send;

    /// Every registered client, by index.
    fn registered_clients(&self) -> impl Future<Output = Stored<Vec<Registered>>> + Send;

    /// Deletes a registered client: from then on it is unknown, so its codes and
    /// tokens stop working. Whether it existed.
    fn remove_client(&self, id: ClientId) -> impl Future<Output = Stored<bool>> + Send;

    /// The registered clients that hold these name keys (RFC 8628 §5.4: two
    /// applications whose names read alike on the consent page).
    fn client_named(&self, keys: &NameKeys) -> impl Future<Output = Stored<Vec<ClientId>>> + Send;

    /// Gives `id` these name keys, at once for all instances, unless another client
    /// holds one of them: then that client, and `id` is given none.
    fn claim_client_name(
        &self,
        keys: &NameKeys,
        id: ClientId,
    ) -> impl Future<Output = Stored<Option<ClientId>>> + Send;

    /// Takes back those of these name keys that `id` holds.
    fn release_client_name(
        &self,
        keys: &NameKeys,
        id: ClientId,
    ) -> impl Future<Output = Stored<()>> + Send;

    // Housekeeping.

    /// Removes some of what expired, looking at no more than `budget` due entries of
    /// each kind. A backend whose records expire by themselves (Redis TTLs) does
    /// nothing.
    fn sweep(&self, now: Millis, budget: usize) -> SweepStats;

    /// What `/metrics` reports.
    fn census(&self, now: Millis) -> impl Future<Output = Stored<Census>> + Send;

    /// The shared store's own clock (Redis `TIME`), which every instance compares its
    /// own with (`clock_offset`); `None` for a store in this process.
    fn time(&self) -> impl Future<Output = Stored<Option<Millis>>> + Send;

    /// What the operator should be told of the store's own configuration (Redis: one
    /// that may drop keys when full, one that does not log its writes), at start and,
    /// since it can change under a running server (`CONFIG SET`), once a minute. A
    /// setting the store will not say is no warning.
    fn warnings(&self) -> impl Future<Output = Vec<String>> + Send;

    /// 32 bytes every instance on this store shares, drawn once: the key of the
    /// sign-in form's CSRF cookie, of the known-browser cookie and of the username
    /// hashes the guess limits keep.
    fn secret(&self) -> SharedSecret;
}
