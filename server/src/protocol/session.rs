//! A device authorization session and its state machine (RFC 8628 §3.5), with no I/O.
//!
//! Owns the answer to a poll, the approve/deny decision and the `slow_down` arithmetic.
//! Where sessions are kept, and how a poll reaches one atomically, is the store's
//! business (`store.rs`); minting tokens is `tokens.rs`'s.

use serde::Deserialize;

use crate::clock::Millis;
use crate::protocol::device_code::Secret;
use crate::protocol::ids::ClientId;
use crate::protocol::ids::UserId;
use crate::protocol::scope::ScopeSet;

/// Whether early polls get `slow_down` (RFC 8628 §3.5 leaves it to the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlowDownPolicy {
    /// Early polls while pending get `slow_down` and raise the interval by 5 s.
    Enforce,
    /// Never answer `slow_down`.
    Off,
}

/// How polls are paced. Checklist A.0, PL-01..PL-07.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    /// Whether early polls get `slow_down`.
    pub slow_down: SlowDownPolicy,
    /// A poll this much earlier than due is still on time: client timers and network
    /// latency jitter, and a client that polls at exactly `interval` must not drift into
    /// permanent `slow_down` (checklist PL-04).
    pub tolerance_ms: Millis,
    /// The `interval` handed out, in milliseconds.
    pub interval_ms: Millis,
}

/// RFC 8628 §3.5: the interval grows by 5 seconds per `slow_down`.
pub const SLOW_DOWN_INCREMENT_MS: u32 = deviceflow_wire::SLOW_DOWN_INCREMENT_SECS as u32 * 1000;

/// `Session::last_accepted` before the first poll.
const NO_POLL: i32 = i32::MIN;

/// The longest `expires_in` a session paces polls for: it keeps their times as
/// milliseconds from `issued_at` in an `i32` (four bytes a session), which holds 24.8
/// days. Past it every poll read as the last one's time, so each was early: a pending
/// code answered `slow_down` for good (checklist PL-04).
pub const MAX_EXPIRES_IN_SECS: u64 = i32::MAX as u64 / 1000;

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the person.
    Pending,
    /// Approved; the next poll of this client redeems it.
    Approved {
        /// Who approved.
        user: UserId,
    },
    /// Denied by the person.
    Denied,
    /// Tokens were issued once.
    Redeemed {
        /// The token family they were recorded in.
        family: u64,
        /// Whom they speak for.
        user: UserId,
    },
}

/// One device authorization. Small and `Copy`: a million of these must fit in a few
/// hundred megabytes.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    /// Proves the device holds the code.
    pub secret: Secret,
    /// The client the code was issued to.
    pub client: ClientId,
    /// `slow_down` answers so far (k in `I + 5·k`).
    pub slow_downs: u16,
    /// The interval this device must now keep, `I + 5·k`, in milliseconds.
    pub interval_ms: u32,
    /// Granted on approval.
    pub scope: ScopeSet,
    /// When the code was issued.
    pub issued_at: Millis,
    /// When the code expires.
    pub expires_at: Millis,
    /// When the last poll that was not answered `slow_down` arrived, in milliseconds
    /// relative to `issued_at` (negative once a wall clock stepped back past it), or
    /// [`NO_POLL`] before the first poll. Packed into 4 bytes, since a session lives
    /// minutes, not weeks.
    pub(crate) last_accepted: i32,
    /// Where the session is in its life.
    pub state: State,
}

/// The answer to one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollOutcome {
    /// RFC 8628 §3.5 `authorization_pending`.
    Pending,
    /// RFC 8628 §3.5 `slow_down`.
    SlowDown {
        /// The interval the device must now keep, `I + 5·k`, in milliseconds.
        interval_ms: u32,
    },
    /// RFC 8628 §3.5 `access_denied`.
    Denied,
    /// RFC 8628 §3.5 `expired_token`.
    Expired,
    /// Approved and now redeemed: issue tokens for this user, once, in this family.
    Issue {
        /// Whom the tokens speak for.
        user: UserId,
        /// What they grant.
        scope: ScopeSet,
        /// The family to record them in.
        family: u64,
    },
    /// RFC 6749 §5.2 `invalid_grant`: no such code, or a code issued to another client.
    Invalid,
    /// RFC 6749 §5.2 `invalid_grant`: the code was already redeemed (for `user`);
    /// tokens of `family` should be revoked (RFC 6749 §4.1.2 by analogy, checklist
    /// TS-09).
    Replayed {
        /// The family to revoke.
        family: u64,
        /// Whose tokens they were.
        user: UserId,
    },
}

impl PollOutcome {
    /// The outcome's name in metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            PollOutcome::Pending => "authorization_pending",
            PollOutcome::SlowDown { .. } => "slow_down",
            PollOutcome::Denied => "access_denied",
            PollOutcome::Expired => "expired_token",
            PollOutcome::Issue { .. } => "token",
            PollOutcome::Invalid => "invalid_grant",
            PollOutcome::Replayed { .. } => "replayed",
        }
    }
}

/// Why a decision on a user code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// No session has this user code.
    #[error("no pending request has this user code")]
    Unknown,
    /// The code has expired (RFC 8628 §3.5).
    #[error("this user code has expired")]
    Expired,
    /// The code was approved or denied already.
    #[error("this request was already approved or denied")]
    AlreadyDecided,
}

/// The person's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The person approves, as this user.
    Approve(UserId),
    /// The person denies.
    Deny,
}

impl Session {
    /// A pending session issued at `now`.
    pub fn new(
        secret: Secret,
        client: ClientId,
        scope: ScopeSet,
        now: Millis,
        expires_in_ms: Millis,
        policy: &PollPolicy,
    ) -> Session {
        Session {
            secret,
            client,
            slow_downs: 0,
            interval_ms: u32::try_from(policy.interval_ms).unwrap_or(u32::MAX),
            scope,
            issued_at: now,
            expires_at: now.saturating_add(expires_in_ms),
            last_accepted: NO_POLL,
            state: State::Pending,
        }
    }

    /// `at` in milliseconds relative to `issued_at`, saturated to what `i32` holds
    /// (short of [`NO_POLL`]).
    fn relative(&self, at: Millis) -> i32 {
        let offset = i128::from(at) - i128::from(self.issued_at);
        offset.clamp(i128::from(NO_POLL) + 1, i128::from(i32::MAX)) as i32
    }

    /// When the code was redeemed, if it was (a record redeemed before this was kept
    /// says `None`). A shared store tells by it a redemption whose poll was cut off,
    /// retried soon, from a replay long after (`storage/redis`).
    pub fn redeemed_at(&self) -> Option<Millis> {
        match self.state {
            State::Redeemed { .. } if self.last_accepted != NO_POLL => {
                let at = i128::from(self.issued_at) + i128::from(self.last_accepted);
                Some(at.clamp(0, i128::from(Millis::MAX)) as Millis)
            }
            _ => None,
        }
    }

    /// When a store may forget this session, keeping it `retention_ms` after it
    /// expires to answer `expired_token` (until then an unknown code is
    /// `invalid_grant`).
    pub fn forget_at(&self, retention_ms: Millis) -> Millis {
        self.expires_at.saturating_add(retention_ms)
    }

    /// Whether the code has expired at `now` (RFC 8628 §3.2 `expires_in`).
    pub fn is_expired(&self, now: Millis) -> bool {
        now >= self.expires_at
    }

    /// Answers a poll by `client`, presenting `secret`, at `now`. `family` names the
    /// token family to record if this poll redeems the code; it is called only then.
    ///
    /// The order of checks is the protocol:
    /// 1. The code must be this client's (RFC 6749 §5.2 `invalid_grant`, "issued to
    ///    another client"): checked before anything about the code's state is revealed
    ///    (checklist TR-07).
    /// 2. A redeemed code is never redeemed again (checklist TS-08).
    /// 3. Expiry is checked before approval, so an approved code redeemed late gets
    ///    `expired_token` (checklist EX-02).
    /// 4. Approved and denied codes get their final answer even when the poll is early
    ///    (checklist PL-06: `slow_down` means "still pending").
    /// 5. Only a pending code is paced.
    pub fn poll(
        &mut self,
        client: ClientId,
        secret: &Secret,
        now: Millis,
        policy: &PollPolicy,
        family: impl FnOnce() -> u64,
    ) -> PollOutcome {
        if !self.secret.matches(secret) || self.client != client {
            return PollOutcome::Invalid;
        }
        if let State::Redeemed { family, user } = self.state {
            return PollOutcome::Replayed { family, user };
        }
        if self.is_expired(now) {
            return PollOutcome::Expired;
        }
        match self.state {
            State::Approved { user } => {
                let family = family();
                self.state = State::Redeemed { family, user };
                // The redeeming poll is accepted too, and the last one ever: it keeps
                // when the code was redeemed (`redeemed_at`).
                self.last_accepted = self.relative(now);
                PollOutcome::Issue {
                    user,
                    scope: self.scope,
                    family,
                }
            }
            State::Denied => PollOutcome::Denied,
            State::Redeemed { family, user } => PollOutcome::Replayed { family, user },
            State::Pending => self.pace(now, policy),
        }
    }

    /// Moves a redemption whose tokens nobody was given to a fresh token family: the
    /// poll that redeemed it in `family` answered the device an error (its store gave
    /// up on a write that landed later, `storage/redis`), so the device's retry
    /// redeems anew, in `fresh`, and the code still redeems at most once (RFC 8628
    /// §3.5). When it was redeemed stays as it was. False, and nothing done, unless
    /// this session is redeemed in `family`.
    pub fn redeem_again(&mut self, family: u64, fresh: u64) -> bool {
        match self.state {
            State::Redeemed { family: f, user } if f == family => {
                self.state = State::Redeemed {
                    family: fresh,
                    user,
                };
                true
            }
            _ => false,
        }
    }

    /// Paces a poll of a pending code per [RFC 8628 §3.5]:
    ///
    /// > the interval MUST be increased by 5 seconds for this and all subsequent requests.
    ///
    /// Early is measured from the last *accepted* poll, never from a rejected one, so
    /// the server never demands more than the client's own `I + 5·k` (checklist PL-03):
    /// a client that waits `I + 5·k` after its last request, accepted or not, has waited
    /// at least that long since the last accepted one. The first poll is never early
    /// (checklist PL-05).
    ///
    /// [RFC 8628 §3.5]: https://www.rfc-editor.org/rfc/rfc8628#section-3.5
    fn pace(&mut self, now: Millis, policy: &PollPolicy) -> PollOutcome {
        if policy.slow_down == SlowDownPolicy::Enforce {
            // A wall clock stepped back (NTP, a restored VM) puts `now` before the last
            // accepted poll: nothing says that poll is early, so it is on time and the
            // window starts again from it. A step never shortens RFC 8628 §3.5's
            // interval for a compliant device (checklist PL-04). A poll stamped no more
            // than the tolerance before the last accepted one is no such step: it is
            // what a device sees that polls one instance, then another whose clock is
            // that much behind (`clock_offset.rs` warns past half the tolerance from
            // the store's), and it is early, or going back and forth between them would
            // let a device poll as often as it liked.
            let (now_rel, last) = (self.relative(now), self.last_accepted);
            let tolerance = i64::try_from(policy.tolerance_ms).unwrap_or(i64::MAX);
            if last != NO_POLL && i64::from(now_rel).saturating_add(tolerance) >= i64::from(last) {
                let due = i64::from(last) + i64::from(self.interval_ms);
                if i64::from(now_rel).saturating_add(tolerance) < due {
                    self.slow_downs = self.slow_downs.saturating_add(1);
                    self.interval_ms = self.interval_ms.saturating_add(SLOW_DOWN_INCREMENT_MS);
                    return PollOutcome::SlowDown {
                        interval_ms: self.interval_ms,
                    };
                }
            }
        }
        self.last_accepted = self.relative(now);
        PollOutcome::Pending
    }

    /// Records the person's decision. Only a pending, unexpired session can be decided,
    /// once (checklist UI-10, EX-03).
    pub fn decide(&mut self, decision: Decision, now: Millis) -> Result<(), DecideError> {
        if self.is_expired(now) {
            return Err(DecideError::Expired);
        }
        if self.state != State::Pending {
            return Err(DecideError::AlreadyDecided);
        }
        self.state = match decision {
            Decision::Approve(user) => State::Approved { user },
            Decision::Deny => State::Denied,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: Millis = 5_000;
    const T: Millis = 500;

    fn policy() -> PollPolicy {
        PollPolicy {
            slow_down: SlowDownPolicy::Enforce,
            tolerance_ms: T,
            interval_ms: I,
        }
    }

    fn session() -> (Session, Secret) {
        let secret = Secret::generate();
        let s = Session::new(secret, ClientId(0), ScopeSet(1), 0, 600_000, &policy());
        (s, secret)
    }

    fn poll(s: &mut Session, secret: &Secret, at: Millis) -> PollOutcome {
        s.poll(ClientId(0), secret, at, &policy(), || 7)
    }

    #[test]
    fn first_poll_is_never_early() {
        // Checklist PL-05.
        let (mut s, k) = session();
        assert_eq!(poll(&mut s, &k, 0), PollOutcome::Pending);
    }

    #[test]
    fn compliant_polls_at_the_interval_are_pending() {
        // Checklist PL-02, and PL-04 at the tolerance's edge.
        let (mut s, k) = session();
        let mut t = 0;
        for _ in 0..20 {
            assert_eq!(poll(&mut s, &k, t), PollOutcome::Pending);
            t += I - T;
        }
        assert_eq!(s.slow_downs, 0);
    }

    #[test]
    fn slow_down_adds_five_seconds_for_all_later_polls() {
        // RFC 8628 §3.5; checklist PL-01, PL-07.
        let (mut s, k) = session();
        assert_eq!(poll(&mut s, &k, 0), PollOutcome::Pending);
        assert_eq!(
            poll(&mut s, &k, 1_000),
            PollOutcome::SlowDown {
                interval_ms: 10_000
            }
        );
        // Waiting the old interval is no longer enough.
        assert_eq!(
            poll(&mut s, &k, 6_000),
            PollOutcome::SlowDown {
                interval_ms: 15_000
            }
        );
        // I + 5·k after the last request is enough (checklist PL-03).
        assert_eq!(poll(&mut s, &k, 6_000 + 15_000), PollOutcome::Pending);
        assert_eq!(s.slow_downs, 2);
        // And the raised interval stays.
        assert_eq!(
            poll(&mut s, &k, 21_000 + 10_000),
            PollOutcome::SlowDown {
                interval_ms: 20_000
            }
        );
    }

    #[test]
    fn polls_are_paced_to_the_end_of_the_longest_lifetime() {
        // Checklist PL-02, PL-04: at the end of the longest expires_in, a poll at the
        // interval is pending, one before it slowed down, as on the first day.
        let expires_in_ms = MAX_EXPIRES_IN_SECS * 1000;
        let secret = Secret::generate();
        let mut s = Session::new(
            secret,
            ClientId(0),
            ScopeSet(1),
            0,
            expires_in_ms,
            &policy(),
        );
        let mut t = expires_in_ms - 4 * I;
        assert_eq!(poll(&mut s, &secret, t), PollOutcome::Pending);
        t += I;
        assert_eq!(poll(&mut s, &secret, t), PollOutcome::Pending);
        assert!(matches!(
            poll(&mut s, &secret, t + 1_000),
            PollOutcome::SlowDown { .. }
        ));
        assert_eq!(
            poll(&mut s, &secret, t + 1_000 + I + 5_000),
            PollOutcome::Pending
        );
    }

    #[test]
    fn rejected_polls_do_not_move_the_window() {
        // The H2CK/oidc#716 livelock: moving the window on rejected polls punishes a
        // client that obeys slow_down. Checklist PL-04.
        let (mut s, k) = session();
        poll(&mut s, &k, 0);
        assert!(matches!(
            poll(&mut s, &k, 100),
            PollOutcome::SlowDown { .. }
        ));
        // The client now waits I + 5 after its own rejected request.
        assert_eq!(poll(&mut s, &k, 100 + I + 5_000), PollOutcome::Pending);
    }

    #[test]
    fn a_clock_stepped_back_never_makes_a_compliant_poll_early() {
        // Checklist PL-04: the wall clock goes back 60 s between two compliant polls.
        let k = Secret::generate();
        let start = 100_000;
        let mut s = Session::new(k, ClientId(0), ScopeSet(1), start, 600_000, &policy());
        assert_eq!(poll(&mut s, &k, start), PollOutcome::Pending);
        let mut t = start + I - 60_000;
        for _ in 0..20 {
            assert_eq!(poll(&mut s, &k, t), PollOutcome::Pending, "at {t}");
            t += I;
        }
        assert_eq!(s.slow_downs, 0);
        // Back before the session was issued: still on time.
        assert_eq!(poll(&mut s, &k, 0), PollOutcome::Pending);
        assert_eq!(poll(&mut s, &k, I), PollOutcome::Pending);
        // Pacing still holds once the clock runs on: an early poll is slowed.
        assert_eq!(poll(&mut s, &k, start + I), PollOutcome::Pending);
        assert!(matches!(
            poll(&mut s, &k, start + I + 1),
            PollOutcome::SlowDown { .. }
        ));
    }

    #[test]
    fn a_poll_stamped_just_before_the_last_accepted_one_is_early() {
        // Two instances 200 ms apart, a device polling the one ahead, then 100 ms
        // later the one behind: the second reads as 100 ms before the first. It was
        // taken for a clock stepped back and accepted, so going back and forth gave
        // no slow_down at any rate (helper-62).
        let k = Secret::generate();
        let start = 100_000;
        let mut s = Session::new(k, ClientId(0), ScopeSet(1), start, 600_000, &policy());
        let mut t = start;
        for _ in 0..5 {
            assert_eq!(poll(&mut s, &k, t), PollOutcome::Pending, "at {t}");
            assert!(matches!(
                poll(&mut s, &k, t - 100),
                PollOutcome::SlowDown { .. }
            ));
            t += Millis::from(s.interval_ms);
        }
        assert_eq!(s.slow_downs, 5);
    }

    #[test]
    fn a_clock_stepped_back_past_the_tolerance_leaves_a_compliant_device_on_time() {
        // A step back of 1 to 2 intervals: the compliant poll 200 ms after its
        // interval reads as 0.8 to 4.8 s before the last accepted one, more than the
        // tolerance (helper-67: it was slowed down while the bound was the interval).
        for step in [I + 1_000, I + 2_500, 2 * I] {
            let k = Secret::generate();
            let start = 100_000;
            let mut s = Session::new(k, ClientId(0), ScopeSet(1), start, 600_000, &policy());
            assert_eq!(poll(&mut s, &k, start), PollOutcome::Pending);
            let t = start + I + 200 - step;
            assert_eq!(poll(&mut s, &k, t), PollOutcome::Pending, "step {step}");
            assert_eq!(s.slow_downs, 0);
        }
    }

    #[test]
    fn off_policy_never_answers_slow_down() {
        let (mut s, k) = session();
        let p = PollPolicy {
            slow_down: SlowDownPolicy::Off,
            ..policy()
        };
        for t in 0..50 {
            assert_eq!(s.poll(ClientId(0), &k, t, &p, || 1), PollOutcome::Pending);
        }
    }

    #[test]
    fn approved_code_is_redeemed_once_even_when_polled_early() {
        // Checklist TS-08, PL-06.
        let (mut s, k) = session();
        poll(&mut s, &k, 0);
        s.decide(Decision::Approve(UserId(3)), 100).unwrap();
        assert_eq!(
            poll(&mut s, &k, 200),
            PollOutcome::Issue {
                user: UserId(3),
                scope: ScopeSet(1),
                family: 7
            }
        );
        assert_eq!(
            poll(&mut s, &k, 10_000),
            PollOutcome::Replayed {
                family: 7,
                user: UserId(3)
            }
        );
    }

    #[test]
    fn a_redemption_moves_to_a_fresh_family_only_from_its_own() {
        let (mut s, k) = session();
        poll(&mut s, &k, 0);
        assert!(!s.redeem_again(7, 8), "not redeemed yet");
        s.decide(Decision::Approve(UserId(3)), 100).unwrap();
        poll(&mut s, &k, 200);
        let redeemed_at = s.redeemed_at();
        assert!(!s.redeem_again(6, 8), "another family's");
        assert!(s.redeem_again(7, 8));
        assert_eq!(s.redeemed_at(), redeemed_at);
        assert_eq!(
            poll(&mut s, &k, 10_000),
            PollOutcome::Replayed {
                family: 8,
                user: UserId(3)
            }
        );
        assert!(!s.redeem_again(7, 9), "moved once from 7");
    }

    #[test]
    fn denied_code_answers_access_denied_even_when_early() {
        // Checklist TS-07, TS-11, PL-06.
        let (mut s, k) = session();
        poll(&mut s, &k, 0);
        s.decide(Decision::Deny, 100).unwrap();
        assert_eq!(poll(&mut s, &k, 200), PollOutcome::Denied);
        assert_eq!(poll(&mut s, &k, 300), PollOutcome::Denied);
    }

    #[test]
    fn expiry_wins_over_approval() {
        // Checklist EX-01, EX-02.
        let (mut s, k) = session();
        s.decide(Decision::Approve(UserId(0)), 1_000).unwrap();
        assert_eq!(poll(&mut s, &k, 600_000), PollOutcome::Expired);
        let (mut s, k) = session();
        assert_eq!(poll(&mut s, &k, 599_999), PollOutcome::Pending);
        assert_eq!(poll(&mut s, &k, 600_000), PollOutcome::Expired);
    }

    #[test]
    fn another_clients_poll_learns_nothing() {
        // Checklist TR-07.
        let (mut s, k) = session();
        s.decide(Decision::Approve(UserId(0)), 1).unwrap();
        assert_eq!(
            s.poll(ClientId(1), &k, 2, &policy(), || 1),
            PollOutcome::Invalid
        );
        assert_eq!(poll(&mut s, &Secret::generate(), 3), PollOutcome::Invalid);
        assert!(matches!(poll(&mut s, &k, 4), PollOutcome::Issue { .. }));
    }

    #[test]
    fn decisions_are_final_and_refused_after_expiry() {
        // Checklist UI-10, EX-03.
        let (mut s, _) = session();
        s.decide(Decision::Deny, 1).unwrap();
        assert_eq!(
            s.decide(Decision::Approve(UserId(0)), 2),
            Err(DecideError::AlreadyDecided)
        );
        let (mut s, _) = session();
        assert_eq!(s.decide(Decision::Deny, 600_000), Err(DecideError::Expired));
    }

    #[test]
    fn a_redeemed_session_knows_when_it_was_redeemed() {
        let (mut s, secret) = session();
        assert_eq!(s.redeemed_at(), None);
        s.decide(Decision::Approve(UserId(0)), 1_000).unwrap();
        let redeemed = poll(&mut s, &secret, 7_000);
        assert!(
            matches!(redeemed, PollOutcome::Issue { .. }),
            "{redeemed:?}"
        );
        assert_eq!(s.redeemed_at(), Some(7_000));
        // A replay later leaves it as it was.
        let replay = poll(&mut s, &secret, 60_000);
        assert!(matches!(replay, PollOutcome::Replayed { family: 7, .. }));
        assert_eq!(s.redeemed_at(), Some(7_000));
    }

    #[test]
    fn session_stays_small() {
        // A million live sessions must fit the memory target; see benches/.
        assert!(
            std::mem::size_of::<Session>() <= 72,
            "{}",
            std::mem::size_of::<Session>()
        );
    }
}
