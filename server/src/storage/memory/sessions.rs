//! Device authorization sessions in memory: one sharded map keyed by the packed user
//! code ([`Table`], flat: a slot holds the key and the session, so a lookup reads no
//! control bytes), so a poll is one hash lookup under one shard lock, and the decision
//! on it (the state machine in `session.rs`) runs under that lock, which is what makes
//! redemption exactly-once when many polls race.

use std::cell::Cell;

use crate::clock::Millis;
use crate::expiry::ExpiryWheel;
use crate::protocol::device_code::{DeviceCode, Secret};
use crate::protocol::ids::ClientId;
use crate::protocol::scope::ScopeSet;
use crate::protocol::session::{DecideError, Decision, PollOutcome, PollPolicy, Session, State};
use crate::protocol::user_code::UserCode;
use crate::shards::CappedCount;
use crate::storage::store::{CreateError, SessionInfo, SweepStats};

use super::table::Table;

/// The in-memory device authorization sessions.
pub struct Sessions {
    sessions: Table<Session>,
    /// Sessions held, against `device.max_sessions`.
    held: CappedCount,
    /// Sessions held by each client (by `ClientId`), against its share of the cap;
    /// empty when a client may hold the whole cap.
    held_by_client: Box<[CappedCount]>,
    /// The same for registered clients, made at their first session; `None` when a
    /// client may hold the whole cap.
    held_by_registered: Option<(usize, crate::shards::Map<u16, CappedCount>)>,
    /// How long an expired session stays to answer `expired_token`.
    retention_ms: Millis,
    wheel: ExpiryWheel<u64>,
}

/// Times a fresh user code is drawn before the store gives up; a collision is rare
/// (a million live codes in 2.56e10), eight in a row means the space is full.
const CREATE_ATTEMPTS: usize = 8;

thread_local! {
    /// The user code this thread's next [`Sessions::create`] tries first, drawn at the
    /// end of the one before it, its home slot then prefetched. A new code's slot is a
    /// random place in a table far larger than the cache: reading it inside the next
    /// device authorization missed every cache and the TLB, most of what issuance cost
    /// beyond the ceiling on one core (`reports/benches/cores.md`, "Fourteenth"). Drawn
    /// ahead, the miss is served while this thread answers and reads other requests.
    /// The code is drawn as any other (RFC 8628 §6.1), and kept only by this thread.
    static NEXT_USER_CODE: Cell<Option<UserCode>> = const { Cell::new(None) };
}

impl Sessions {
    /// A store of at most `max_sessions`, keeping expired sessions `retention_ms`.
    pub fn new(max_sessions: usize, retention_ms: Millis) -> Sessions {
        Sessions {
            sessions: Table::new(),
            held: CappedCount::new(max_sessions),
            held_by_client: Box::new([]),
            held_by_registered: None,
            retention_ms,
            wheel: ExpiryWheel::new(),
        }
    }

    /// Caps the sessions each of the first `clients` clients may hold at `max` (by
    /// default, a client may hold the whole cap).
    pub fn with_max_per_client(mut self, max: usize, clients: usize) -> Sessions {
        self.held_by_client = (0..clients).map(|_| CappedCount::new(max)).collect();
        self.held_by_registered = (max < self.held.cap()).then(|| (max, crate::shards::map()));
        self
    }

    /// Counts a new session against its client's share; false if the share is full.
    fn hold_for(&self, client: ClientId) -> bool {
        if client.is_registered() {
            return self.held_by_registered.as_ref().is_none_or(|(max, held)| {
                held.entry(client.0)
                    .or_insert_with(|| CappedCount::new(*max))
                    .acquire()
            });
        }
        self.held_by_client
            .get(usize::from(client.0))
            .is_none_or(CappedCount::acquire)
    }

    fn release_for(&self, client: ClientId) {
        if let Some((_, held)) = self.held_by_registered.as_ref() {
            if let Some(count) = held.get(&client.0) {
                count.release();
            }
        }
        if let Some(held) = self.held_by_client.get(usize::from(client.0)) {
            held.release();
        }
    }

    /// Creates a pending session under a fresh, unused user code.
    pub fn create(
        &self,
        client: ClientId,
        scope: ScopeSet,
        now: Millis,
        expires_in_ms: Millis,
        policy: &PollPolicy,
    ) -> Result<DeviceCode, CreateError> {
        if !self.held.acquire() {
            return Err(CreateError::Full);
        }
        if !self.hold_for(client) {
            self.held.release();
            return Err(CreateError::ClientFull);
        }
        let secret = Secret::generate();
        let session = Session::new(secret, client, scope, now, expires_in_ms, policy);
        let mut user_code = NEXT_USER_CODE.take().unwrap_or_else(UserCode::generate);
        for _ in 0..CREATE_ATTEMPTS {
            if self.sessions.insert_new(user_code.packed(), session) {
                self.wheel
                    .schedule(session.forget_at(self.retention_ms), user_code.packed());
                let next = UserCode::generate();
                self.sessions.prefetch(next.packed());
                NEXT_USER_CODE.set(Some(next));
                return Ok(DeviceCode { user_code, secret });
            }
            user_code = UserCode::generate();
        }
        self.held.release();
        self.release_for(client);
        Err(CreateError::Full)
    }

    /// Asks the CPU for the session of `code`'s memory ahead of [`poll`](Self::poll),
    /// taking no lock (`Table::prefetch`).
    pub fn prefetch(&self, code: &DeviceCode) {
        self.sessions.prefetch(code.user_code.packed());
    }

    /// Answers a poll atomically (see [`Session::poll`]); an unknown code is
    /// [`PollOutcome::Invalid`]. `family` is called only if this poll redeems, under
    /// the session's lock.
    pub fn poll(
        &self,
        code: &DeviceCode,
        client: ClientId,
        now: Millis,
        policy: &PollPolicy,
        family: impl FnOnce() -> u64,
    ) -> PollOutcome {
        self.sessions
            .with_mut(code.user_code.packed(), |session| {
                session.poll(client, &code.secret, now, policy, family)
            })
            .unwrap_or(PollOutcome::Invalid)
    }

    /// Records the person's decision on the session with this user code.
    pub fn decide(
        &self,
        user_code: UserCode,
        decision: Decision,
        now: Millis,
    ) -> Result<SessionInfo, DecideError> {
        self.sessions
            .with_mut(user_code.packed(), |session| {
                session.decide(decision, now)?;
                Ok(SessionInfo::of(user_code, session))
            })
            .unwrap_or(Err(DecideError::Unknown))
    }

    /// The session with this user code, if it exists.
    pub fn lookup(&self, user_code: UserCode) -> Option<SessionInfo> {
        self.sessions
            .with(user_code.packed(), |s| SessionInfo::of(user_code, s))
    }

    /// Removes sessions whose retention after expiry is over, looking at no more than
    /// `budget` of them.
    pub fn sweep(&self, now: Millis, budget: usize) -> SweepStats {
        let mut stats = SweepStats::default();
        let due = self.wheel.take_due(now, budget);
        stats.examined = due.len();
        for key in due {
            let removed = self
                .sessions
                .remove_if(key, |s| s.forget_at(self.retention_ms) <= now);
            if let Some(s) = removed {
                self.held.release();
                self.release_for(s.client);
                stats.removed += 1;
                if !matches!(s.state, State::Redeemed { .. }) {
                    stats.expired_unredeemed += 1;
                }
            }
        }
        stats
    }

    /// Sessions held (pending, decided, or expired and still retained).
    pub fn len(&self) -> usize {
        self.held.held()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ids::UserId;
    use crate::protocol::session::SlowDownPolicy;

    const POLICY: PollPolicy = PollPolicy {
        slow_down: SlowDownPolicy::Enforce,
        tolerance_ms: 500,
        interval_ms: 5_000,
    };

    #[test]
    fn create_poll_decide_redeem() {
        let store = Sessions::new(10, 60_000);
        let code = store
            .create(ClientId(0), ScopeSet(1), 0, 600_000, &POLICY)
            .unwrap();
        assert_eq!(
            store.poll(&code, ClientId(0), 0, &POLICY, || 1),
            PollOutcome::Pending
        );
        let info = store
            .decide(code.user_code, Decision::Approve(UserId(0)), 1)
            .unwrap();
        assert_eq!(info.state, State::Approved { user: UserId(0) });
        assert!(matches!(
            store.poll(&code, ClientId(0), 2, &POLICY, || 9),
            PollOutcome::Issue { family: 9, .. }
        ));
        assert_eq!(
            store.lookup(code.user_code).unwrap().state,
            State::Redeemed {
                family: 9,
                user: UserId(0)
            }
        );
    }

    #[test]
    fn the_code_drawn_ahead_is_the_next_one_and_never_one_taken() {
        let store = Sessions::new(10, 60_000);
        let create = || {
            store
                .create(ClientId(0), ScopeSet(1), 0, 600_000, &POLICY)
                .unwrap()
        };
        let first = create();
        let ahead = NEXT_USER_CODE.get().expect("a code drawn ahead");
        assert_eq!(create().user_code, ahead);
        // A code drawn ahead that a session holds by then (drawn for another store on
        // this thread, or met by chance) is skipped, and the holder keeps its session.
        NEXT_USER_CODE.set(Some(first.user_code));
        assert_ne!(create().user_code, first.user_code);
        assert_eq!(store.len(), 3);
        assert_eq!(
            store.poll(&first, ClientId(0), 1, &POLICY, || 1),
            PollOutcome::Pending
        );
    }

    #[test]
    fn unknown_codes_are_invalid() {
        let store = Sessions::new(10, 60_000);
        let code = DeviceCode {
            user_code: UserCode::generate(),
            secret: Secret::generate(),
        };
        assert_eq!(
            store.poll(&code, ClientId(0), 0, &POLICY, || 1),
            PollOutcome::Invalid
        );
        assert_eq!(
            store.decide(code.user_code, Decision::Deny, 0).unwrap_err(),
            DecideError::Unknown
        );
        assert!(store.lookup(code.user_code).is_none());
    }

    #[test]
    fn the_cap_is_enforced_and_freed_by_the_sweep() {
        let store = Sessions::new(3, 1_000);
        for _ in 0..3 {
            store
                .create(ClientId(0), ScopeSet(1), 0, 10_000, &POLICY)
                .unwrap();
        }
        assert!(matches!(
            store.create(ClientId(0), ScopeSet(1), 0, 10_000, &POLICY),
            Err(CreateError::Full)
        ));
        assert_eq!(store.len(), 3);
        // Expired at 10 s, retained until 11 s.
        assert_eq!(store.sweep(10_999, 100), SweepStats::default());
        assert_eq!(
            store.sweep(11_000, 100),
            SweepStats {
                examined: 3,
                removed: 3,
                expired_unredeemed: 3
            }
        );
        assert_eq!(store.len(), 0);
        assert!(store
            .create(ClientId(0), ScopeSet(1), 11_000, 10_000, &POLICY)
            .is_ok());
    }

    #[test]
    fn one_client_holds_at_most_its_share_and_others_still_get_sessions() {
        let store = Sessions::new(10, 1_000).with_max_per_client(6, 3);
        for _ in 0..6 {
            store
                .create(ClientId(0), ScopeSet(1), 0, 10_000, &POLICY)
                .unwrap();
        }
        assert_eq!(
            store
                .create(ClientId(0), ScopeSet(1), 0, 10_000, &POLICY)
                .err(),
            Some(CreateError::ClientFull)
        );
        for _ in 0..4 {
            store
                .create(ClientId(1), ScopeSet(1), 0, 10_000, &POLICY)
                .unwrap();
        }
        assert_eq!(
            store
                .create(ClientId(2), ScopeSet(1), 0, 10_000, &POLICY)
                .err(),
            Some(CreateError::Full)
        );
        // Swept sessions give the client its share back.
        store.sweep(11_000, 100);
        assert!(store
            .create(ClientId(0), ScopeSet(1), 11_000, 10_000, &POLICY)
            .is_ok());
    }

    #[test]
    fn a_registered_client_holds_at_most_its_share_too() {
        // No configured client at all: the share still binds registered ones.
        let store = Sessions::new(10, 1_000).with_max_per_client(3, 0);
        let (tv, other) = (ClientId(0x4000), ClientId(0x4001));
        for _ in 0..3 {
            store.create(tv, ScopeSet(1), 0, 10_000, &POLICY).unwrap();
        }
        assert_eq!(
            store.create(tv, ScopeSet(1), 0, 10_000, &POLICY).err(),
            Some(CreateError::ClientFull)
        );
        assert!(store.create(other, ScopeSet(1), 0, 10_000, &POLICY).is_ok());
        store.sweep(11_000, 100);
        assert!(store
            .create(tv, ScopeSet(1), 11_000, 10_000, &POLICY)
            .is_ok());
    }

    #[test]
    fn a_sweep_removes_at_most_its_budget_per_call() {
        let store = Sessions::new(10_000, 0);
        for _ in 0..2_500 {
            store
                .create(ClientId(0), ScopeSet(1), 0, 1_000, &POLICY)
                .unwrap();
        }
        let slices: Vec<usize> = std::iter::repeat_with(|| store.sweep(1_000, 1_000).removed)
            .take_while(|&n| n > 0)
            .collect();
        assert_eq!(slices, [1_000, 1_000, 500]);
        assert!(store.is_empty());
    }

    #[test]
    fn expired_sessions_answer_expired_token_until_removed() {
        let store = Sessions::new(10, 5_000);
        let code = store
            .create(ClientId(0), ScopeSet(1), 0, 10_000, &POLICY)
            .unwrap();
        assert_eq!(
            store.poll(&code, ClientId(0), 12_000, &POLICY, || 1),
            PollOutcome::Expired
        );
        store.sweep(16_000, 100);
        assert_eq!(
            store.poll(&code, ClientId(0), 16_000, &POLICY, || 1),
            PollOutcome::Invalid
        );
    }
}
