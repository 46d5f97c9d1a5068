//! One simulated device: a small state record and the RFC 8628 device-side rules it
//! follows, with no I/O and time passed in (milliseconds since the run started). The
//! lane (`lane/`) sends what a device asks for and hands back what came.
//!
//! A record is about 100 bytes plus its two codes, so a million idle devices fit in
//! well under 2 KB each.

pub mod behaviour;
pub mod flow;

use deviceflow_wire::DeviceAuthorizationResponse;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::device::behaviour::Behaviour;
use crate::device::flow::Answer;
use crate::device::flow::{Outcome, Rule};

/// What the simulated person will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Plan {
    Approve { after_ms: u32 },
    Deny { after_ms: u32 },
    Never,
}

/// Who decides, and how fast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct People {
    pub approve_delay_ms: (u64, u64),
    /// Percent of people (for non-abandoned devices) who deny.
    pub deny_pct: u32,
    /// Percent who never look at the code.
    pub never_pct: u32,
}

impl People {
    pub fn plan(&self, behaviour: Behaviour, rng: &mut impl Rng) -> Plan {
        if behaviour == Behaviour::Abandoned {
            return Plan::Never;
        }
        let roll: u32 = rng.gen_range(0..100);
        let after_ms = rng.gen_range(
            self.approve_delay_ms.0..=self.approve_delay_ms.1.max(self.approve_delay_ms.0),
        ) as u32;
        if roll < self.deny_pct {
            Plan::Deny { after_ms }
        } else if roll < self.deny_pct + self.never_pct {
            Plan::Never
        } else {
            Plan::Approve { after_ms }
        }
    }
}

/// Where a device is in its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Issuing,
    Polling,
    ReplayCheck,
    Done,
}

/// What the device does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Poll the token endpoint at this time (ms).
    Poll(u32),
    /// One more poll at this time, after the token (checklist TS-08).
    ReplayCheck(u32),
    Done,
}

const NONE: u32 = u32::MAX;

/// RFC 8628 §3.5 (CL-04): after this many transport failures in a row, a device gives up.
pub const MAX_FAILURES_IN_A_ROW: u8 = 5;

/// The longest device code a simulated device keeps, bytes. RFC 8628 §3.2 sets no
/// bound, and servers' codes run to a few hundred characters; a longer one is refused
/// as an answer, so that no server can make each device of a fleet hold up to the
/// megabyte an answer may carry (helper-100: 100 KB codes took 3,000 devices to
/// 836 MB, and a memory limit aborted the run with no report).
pub const MAX_DEVICE_CODE_BYTES: usize = 4096;

/// The longest user code a device keeps, bytes (RFC 8628 §6.1: short, for a person
/// to type).
pub const MAX_USER_CODE_BYTES: usize = 256;

/// Why a device would not keep the codes of `auth`, if it would not: a code longer
/// than [`MAX_DEVICE_CODE_BYTES`] or [`MAX_USER_CODE_BYTES`].
pub fn unkept_codes(auth: &DeviceAuthorizationResponse) -> Option<String> {
    let long = |name: &str, max: usize| {
        format!("HTTP 200, a device authorization response (RFC 8628 §3.2) whose {name} is longer than {max} bytes, the most a simulated device keeps")
    };
    if auth.device_code.len() > MAX_DEVICE_CODE_BYTES {
        Some(long("device_code", MAX_DEVICE_CODE_BYTES))
    } else if auth.user_code.len() > MAX_USER_CODE_BYTES {
        Some(long("user_code", MAX_USER_CODE_BYTES))
    } else {
        None
    }
}

/// The longest interval a device keeps, s: one the server gives above it (10^9 s)
/// is kept as this (the report says so, `report/render.rs`).
pub const MAX_INTERVAL_SECS: u64 = 3600;

/// The interval a device keeps for the `interval` the server gave (RFC 8628 §3.2:
/// in seconds; clients MUST use 5 s when it is absent): 0, which no device can
/// poll at, as 5 s too, and one above [`MAX_INTERVAL_SECS`] as that.
pub fn kept_interval(given: Option<u64>) -> u32 {
    given
        .filter(|&i| i > 0)
        .unwrap_or(deviceflow_wire::DEFAULT_INTERVAL_SECS)
        .min(MAX_INTERVAL_SECS) as u32
}

/// Whether a device had to keep another interval than the one the server gave
/// (0, or above [`MAX_INTERVAL_SECS`]); an absent one is RFC 8628's 5 s, no clamp.
pub fn clamps_interval(given: u64) -> bool {
    given == 0 || given > MAX_INTERVAL_SECS
}

/// Why a code expired (`Device::expired_because`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiredBecause {
    /// Nobody was to decide: an abandoned device, or `--never-percent`.
    NobodyDecides,
    /// The person was to decide only at or after the code's `expires_in`, as the
    /// server gave it (`--decide-after` reaching past it).
    DecidesTooLate,
    /// The person's decision (approval or denial) went through before expiry, and a
    /// poll more than 2 s after it was still told authorization_pending (or
    /// slow_down): the server did not act on the decision.
    PendingAfterDecision,
    /// The decision went through before expiry, but the device's next poll, at its
    /// interval, came after the code expired.
    PolledTooLate,
    /// The decision was due in time and did not go through before expiry: the
    /// approver's errors, or a server slow to take it.
    DecisionNotThrough,
}

/// One device's state. Times are ms since the run started.
#[derive(Debug)]
pub struct Device {
    /// The device's number in the whole fleet (shards number their devices apart).
    pub id: u64,
    pub behaviour: Behaviour,
    pub plan: Plan,
    pub phase: Phase,
    pub outcome: Outcome,
    /// When the device authorization response was read: the latest the server can
    /// have issued the code (a generator stalled between the request and the read
    /// reads it late).
    pub issued_ms: u32,
    /// When the device authorization request was due: the earliest the server can have
    /// issued the code. Expiry judged early is judged from this one (the code cannot
    /// have expired before this + `expires_in`), expiry judged late from `issued_ms`.
    pub asked_ms: u32,
    /// `expires_in` in s, as the server gave it.
    pub expires_in: u32,
    /// The first `interval` in s (5 when absent: RFC 8628 §3.2).
    pub interval: u32,
    pub slow_downs: u16,
    pub polls: u16,
    pub early_polls: u16,
    pub early_slowed: u16,
    pub failures_in_row: u8,
    /// Requests made so far, to spread them over several targets.
    pub requests: u16,
    backoff_ms: u32,
    last_intended_ms: u32,
    pub decided_ms: u32,
    pub first_expired_ms: u32,
    pub token_ms: u32,
    /// Rules already counted for this device (a bit per [`Rule`]).
    seen: u16,
    /// Counted in its lane's interval samples (polling).
    pub sampled: bool,
    /// Told authorization_pending (or slow_down) to a poll sent more than 2 s after
    /// its person's decision went through: the server had not acted on it.
    pub pending_after_decision: bool,
    pub device_code: Box<str>,
    pub user_code: Box<str>,
}

/// The seed of device `id`'s random draws: the same device gets the same plan and
/// jitter in a single run and in any shard of it.
pub fn rng_for(seed: u64, id: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

impl Device {
    pub fn new(id: u64, behaviour: Behaviour, plan: Plan) -> Device {
        Device {
            id,
            behaviour,
            plan,
            phase: Phase::Issuing,
            outcome: Outcome::Unfinished,
            issued_ms: NONE,
            asked_ms: NONE,
            expires_in: 0,
            interval: 0,
            slow_downs: 0,
            polls: 0,
            early_polls: 0,
            early_slowed: 0,
            failures_in_row: 0,
            requests: 0,
            backoff_ms: 0,
            last_intended_ms: NONE,
            decided_ms: NONE,
            first_expired_ms: NONE,
            token_ms: NONE,
            seen: 0,
            sampled: false,
            pending_after_decision: false,
            device_code: Box::from(""),
            user_code: Box::from(""),
        }
    }

    /// Records `rule` for this device; true the first time (count it then).
    pub fn breaks(&mut self, rule: Rule) -> bool {
        let bit = 1u16 << (rule as u16);
        let first = self.seen & bit == 0;
        self.seen |= bit;
        first
    }

    /// The interval RFC 8628 §3.5 requires now: the first, +5 s per slow_down.
    pub fn required_s(&self) -> u32 {
        self.interval + 5 * u32::from(self.slow_downs)
    }

    pub fn decided(&self) -> Option<u32> {
        (self.decided_ms != NONE).then_some(self.decided_ms)
    }

    /// Whether the person's approval had begun by `now`: it is sent no sooner than
    /// `after_ms` after the codes came (the lane files it then), so a token answered
    /// before that, or to a device whose person never approves, is one nobody approved.
    pub fn approval_began_by(&self, now: u32) -> bool {
        matches!(self.plan, Plan::Approve { .. }) && self.decision_began_by(now)
    }

    /// Whether the person's denial had begun by `now`, as [`Device::approval_began_by`]:
    /// `access_denied` answered before it is one nobody gave.
    pub fn denial_began_by(&self, now: u32) -> bool {
        matches!(self.plan, Plan::Deny { .. }) && self.decision_began_by(now)
    }

    fn decision_began_by(&self, now: u32) -> bool {
        match self.plan {
            Plan::Approve { after_ms } | Plan::Deny { after_ms } => {
                self.issued_ms != NONE && now >= self.issued_ms.saturating_add(after_ms)
            }
            Plan::Never => false,
        }
    }

    /// Why this device's code expired, as far as the generator can tell; `None` if it
    /// did not expire.
    pub fn expired_because(&self) -> Option<ExpiredBecause> {
        if self.outcome != Outcome::Expired {
            return None;
        }
        let lifetime_ms = u64::from(self.expires_in) * 1000;
        let before_expiry = |at: u32| self.expiry_ms().is_some_and(|e| u64::from(at) < e);
        Some(match self.plan {
            Plan::Never => ExpiredBecause::NobodyDecides,
            Plan::Approve { after_ms } | Plan::Deny { after_ms }
                if u64::from(after_ms) >= lifetime_ms =>
            {
                ExpiredBecause::DecidesTooLate
            }
            _ if self.pending_after_decision => ExpiredBecause::PendingAfterDecision,
            _ if self.decided().is_some_and(before_expiry) => ExpiredBecause::PolledTooLate,
            _ => ExpiredBecause::DecisionNotThrough,
        })
    }

    /// When the code expires (issued + `expires_in`), ms since the run started. In 64
    /// bits: RFC 8628 §3.2 bounds `expires_in` only below, and a code issued 1 s in
    /// with 4,294,967 s to live expires past `u32::MAX` ms (checklist EX-01 must not
    /// see a wrapped expiry as one long past). `expires_in` 0 is a code expired when
    /// issued, not one that never expires: it had turned every expiry check off.
    pub fn expiry_ms(&self) -> Option<u64> {
        (self.issued_ms != NONE)
            .then(|| u64::from(self.issued_ms) + u64::from(self.expires_in) * 1000)
    }

    fn wait_ms(&self, rng: &mut impl Rng) -> u32 {
        if self.backoff_ms > 0 {
            return self.backoff_ms;
        }
        self.behaviour
            .wait(u64::from(self.interval), u64::from(self.slow_downs), rng)
            .as_millis() as u32
    }

    /// RFC 8628 §3.2: the device authorization response `auth` was read at `now`, for
    /// a request due at `asked` that the generator took up `lag_ms` late (see
    /// `next_poll`).
    pub fn authorized(
        &mut self,
        asked: u32,
        now: u32,
        lag_ms: u32,
        auth: &DeviceAuthorizationResponse,
        rng: &mut impl Rng,
    ) -> Next {
        self.phase = Phase::Polling;
        self.issued_ms = now;
        self.asked_ms = asked.min(now);
        self.expires_in = auth.expires_in.min(u64::from(u32::MAX / 1000)) as u32;
        self.interval = kept_interval(auth.interval);
        self.device_code = auth.device_code.as_str().into();
        self.user_code = auth.user_code.as_str().into();
        self.next_poll(now, lag_ms, rng)
    }

    /// The next poll, after an answer at `now` to a request the generator took up
    /// `lag_ms` late (a stall of its own, else 0): what the device's behaviour waits,
    /// plus the lag less whole waits, once. The requests a stall held back all went
    /// out as it ended; their devices would otherwise poll in step for the rest of the
    /// run, a burst every interval that the generator made and the server would be
    /// measured under. Waiting the lag again spreads them as they were; waiting
    /// longer than the interval is what RFC 8628 §3.5 allows.
    fn next_poll(&self, now: u32, lag_ms: u32, rng: &mut impl Rng) -> Next {
        let wait = self.wait_ms(rng);
        Next::Poll(now + wait + lag_ms % wait.max(1))
    }

    /// A poll is due at `intended`: whether it is early for the interval the device
    /// was told to keep (measured from its last poll's intended time).
    pub fn poll_going_out(&mut self, intended: u32) -> bool {
        let early = self.last_intended_ms != NONE
            && intended.saturating_sub(self.last_intended_ms) < self.required_s() * 1000;
        self.last_intended_ms = intended;
        self.requests = self.requests.wrapping_add(1);
        early
    }

    /// RFC 8628 §3.5: the server answered a poll due at `intended`, which the
    /// generator took up `lag_ms` late (see `next_poll`), with
    /// `answer`, at `now`. Returns what to do next, and the rule the answer breaks, if
    /// any.
    pub fn polled(
        &mut self,
        intended: u32,
        now: u32,
        lag_ms: u32,
        early: bool,
        answer: Answer,
        rng: &mut impl Rng,
    ) -> (Next, Option<Rule>) {
        self.polls += 1;
        self.failures_in_row = 0;
        self.backoff_ms = 0;
        if early {
            self.early_polls += 1;
        }
        // The server's clock may run a little behind ours: 2 s of grace.
        let past_expiry = self
            .expiry_ms()
            .is_some_and(|e| u64::from(intended) > e + 2000);
        let denied_long_ago = matches!(self.plan, Plan::Deny { .. })
            && self
                .decided()
                .is_some_and(|d| intended > d + (2 * self.interval + 2) * 1000);
        match answer {
            Answer::Pending | Answer::SlowDown => {
                if answer == Answer::SlowDown {
                    self.slow_downs += 1;
                    if early {
                        self.early_slowed += 1;
                    }
                }
                if past_expiry {
                    self.finish(Outcome::Error);
                    return (Next::Done, Some(Rule::PendingAfterExpiry));
                }
                // The same 2 s of grace: a poll sent that long after the decision went
                // through should find it (RFC 8628 bounds no delay: told apart only
                // when the code then expires; a denial ignored longer is TS-07's
                // violation, PendingAfterDenial).
                if self
                    .decided()
                    .is_some_and(|d| intended > d.saturating_add(2000))
                {
                    self.pending_after_decision = true;
                }
                let rule = denied_long_ago.then_some(Rule::PendingAfterDenial);
                (self.next_poll(now, lag_ms, rng), rule)
            }
            Answer::Token => {
                self.token_ms = now;
                self.finish(Outcome::Token);
                let rule = if past_expiry {
                    Some(Rule::TokenAfterExpiry)
                } else if matches!(self.plan, Plan::Deny { .. }) && self.decided().is_some() {
                    Some(Rule::TokenAfterDenial)
                } else if !self.approval_began_by(now) {
                    Some(Rule::TokenNobodyApproved)
                } else {
                    None
                };
                self.phase = Phase::ReplayCheck;
                // At the interval the server requires now (RFC 8628 §3.5: 5 s more
                // for each slow_down), as any poll: sooner, a server that paces before
                // it reads the code's state answered slow_down (PL-06's finding).
                (Next::ReplayCheck(now + self.required_s() * 1000), rule)
            }
            Answer::Denied => {
                self.finish(Outcome::Denied);
                // RFC 8628 §3.5: access_denied is the person's answer, so not before it.
                let rule = (!self.denial_began_by(now)).then_some(Rule::DeniedWithoutDenial);
                (Next::Done, rule)
            }
            Answer::Expired => {
                self.first_expired_ms = now;
                self.finish(Outcome::Expired);
                // The same 2 s of grace, the other way: the server's clock may run
                // ahead. And from when the code was asked for, not when its answer was
                // read: a generator stalled in between (SIGSTOP, a starved CPU) read it
                // late, and had charged the server with expiring it early.
                let earliest = u64::from(self.asked_ms) + u64::from(self.expires_in) * 1000;
                let early = self.asked_ms != NONE && u64::from(now) + 2000 < earliest;
                (Next::Done, early.then_some(Rule::ExpiredEarly))
            }
            Answer::Error => {
                // RFC 8628 §3.5 (CL-03): any other error ends polling.
                self.finish(Outcome::Error);
                (Next::Done, None)
            }
        }
    }

    /// A poll got no answer (a transport error) at `now`. RFC 8628 §3.5 (CL-04): on a
    /// connection timeout, reduce the polling frequency; exponential back-off is
    /// RECOMMENDED. After [`MAX_FAILURES_IN_A_ROW`] the device gives up, unreached.
    pub fn poll_failed(&mut self, now: u32) -> Next {
        self.failures_in_row += 1;
        if self.failures_in_row >= MAX_FAILURES_IN_A_ROW {
            self.finish(Outcome::Unreached);
            return Next::Done;
        }
        let current = if self.backoff_ms > 0 {
            self.backoff_ms
        } else {
            self.required_s() * 1000
        };
        self.backoff_ms = (current * 2).min(60_000);
        Next::Poll(now + self.backoff_ms)
    }

    pub fn finish(&mut self, outcome: Outcome) {
        self.outcome = outcome;
        self.phase = Phase::Done;
    }

    /// Frees the codes once nothing more will be sent.
    pub fn release(&mut self) {
        self.phase = Phase::Done;
        self.device_code = Box::from("");
        self.user_code = Box::from("");
    }
}

/// Reads an answer by its `error` code, never by its status alone (GitHub answers
/// pending with 200: checklist TS-01).
pub fn classify(status: u16, body: &[u8]) -> (Answer, Option<String>) {
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow, default)]
        error: Option<std::borrow::Cow<'a, str>>,
        #[serde(default)]
        access_token: Option<serde::de::IgnoredAny>,
    }
    use deviceflow_wire::ErrorCode;
    let Ok(b) = serde_json::from_slice::<Body>(body) else {
        return (
            Answer::Error,
            Some(format!("HTTP {status}, not a JSON object")),
        );
    };
    match (status, b.error.as_deref().map(|e| (e, ErrorCode::parse(e)))) {
        // RFC 6749 §5.1: access_token and token_type are REQUIRED, both strings.
        (200, None) if b.access_token.is_some() => {
            match serde_json::from_slice::<deviceflow_wire::TokenResponse>(body) {
                Ok(_) => (Answer::Token, None),
                Err(e) => (
                    Answer::Error,
                    Some(not_a("token response (RFC 6749 §5.1)", &e)),
                ),
            }
        }
        (_, Some((_, Some(ErrorCode::AuthorizationPending)))) => (Answer::Pending, None),
        (_, Some((_, Some(ErrorCode::SlowDown)))) => (Answer::SlowDown, None),
        (_, Some((_, Some(ErrorCode::AccessDenied)))) => (Answer::Denied, None),
        (_, Some((_, Some(ErrorCode::ExpiredToken)))) => (Answer::Expired, None),
        (_, Some((code, _))) => (Answer::Error, Some(code.to_owned())),
        (s, None) => (
            Answer::Error,
            Some(format!("HTTP {s} without an error code")),
        ),
    }
}

/// A 200 that is not the response it should be (`what`, with its RFC section: a
/// device authorization response, a token response), in words that say what is wrong
/// with it (a member missing, a value of another type, JSON cut short), without
/// serde's position: the same fault in answers of other lengths is one row of the
/// unexpected answers, not one per column.
pub fn not_a(what: &str, e: &serde_json::Error) -> String {
    let message = e.to_string();
    let message = match message.rsplit_once(" at line ") {
        Some((m, _)) if e.line() > 0 => m.to_owned(),
        _ => message,
    };
    let wrong = match e.classify() {
        serde_json::error::Category::Data => message,
        _ => format!("not JSON ({message})"),
    };
    format!("HTTP 200, not a {what}: {wrong}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device authorization response with `expires_in` and an interval of 5 s.
    fn issued(expires_in: u64) -> DeviceAuthorizationResponse {
        DeviceAuthorizationResponse {
            device_code: "dc".into(),
            user_code: "UC".into(),
            verification_uri: "https://as.example/device".into(),
            verification_uri_complete: None,
            expires_in,
            interval: Some(5),
        }
    }

    fn polling(behaviour: Behaviour, plan: Plan) -> Device {
        let mut d = Device::new(1, behaviour, plan);
        let mut rng = rng_for(0, 1);
        assert_eq!(
            d.authorized(0, 0, 0, &issued(30), &mut rng),
            Next::Poll(5000)
        );
        d
    }

    #[test]
    fn answers_are_read_by_error_code_not_status() {
        assert_eq!(
            classify(400, br#"{"error":"slow_down"}"#).0,
            Answer::SlowDown
        );
        assert_eq!(
            classify(200, br#"{"error":"authorization_pending"}"#).0,
            Answer::Pending
        );
        assert_eq!(
            classify(200, br#"{"access_token":"x","token_type":"Bearer"}"#).0,
            Answer::Token
        );
        assert_eq!(
            classify(500, b"<html>oops</html>"),
            (Answer::Error, Some("HTTP 500, not a JSON object".into()))
        );
        assert_eq!(
            classify(404, br#"{"error":"device_not_found"}"#)
                .1
                .as_deref(),
            Some("device_not_found")
        );
    }

    /// RFC 6749 §5.1 makes `token_type` REQUIRED: a 200 with an access token and
    /// without it (or with one of another type) is not a token but an unexpected
    /// answer that says what is wrong, in the words a broken device authorization
    /// response gets. It had been counted a token.
    #[test]
    fn a_token_response_without_token_type_is_not_a_token() {
        assert_eq!(
            classify(200, br#"{"access_token":"x"}"#),
            (
                Answer::Error,
                Some(
                    "HTTP 200, not a token response (RFC 6749 §5.1): missing field `token_type`"
                        .into()
                )
            )
        );
        assert_eq!(
            classify(200, br#"{"access_token":"x","token_type":7}"#).1,
            Some(
                "HTTP 200, not a token response (RFC 6749 §5.1): invalid type: integer `7`, expected a string"
                    .into()
            )
        );
        assert_eq!(
            classify(200, br#"{"access_token":"x","token_type":"Bearer"}"#),
            (Answer::Token, None)
        );
    }

    #[test]
    fn slow_down_adds_five_seconds_for_all_later_polls() {
        let mut d = polling(Behaviour::Compliant, Plan::Never);
        let mut rng = rng_for(0, 1);
        assert!(!d.poll_going_out(5000));
        let (next, rule) = d.polled(5000, 5010, 0, false, Answer::SlowDown, &mut rng);
        assert_eq!((next, rule), (Next::Poll(15_010), None));
        assert!(!d.poll_going_out(15_010));
        assert_eq!(d.required_s(), 10);
    }

    /// A stall of the generator held polls back: each device waits its lag again,
    /// less whole waits, once, so that a fleet the stall bunched up spreads as it was.
    #[test]
    fn a_poll_taken_up_late_waits_its_lag_again_once() {
        let mut rng = rng_for(0, 1);
        for (lag, next) in [
            (0, 10_500),
            (1_200, 11_700),
            (5_000, 10_500),
            (7_300, 12_800),
        ] {
            let mut d = polling(Behaviour::Compliant, Plan::Never);
            assert!(!d.poll_going_out(5000));
            let (got, _) = d.polled(5000, 5_500, lag, false, Answer::Pending, &mut rng);
            assert_eq!(got, Next::Poll(next), "lag {lag}");
            let (got, _) = d.polled(next, next + 10, 0, false, Answer::Pending, &mut rng);
            assert_eq!(got, Next::Poll(next + 5_010), "after a lag of {lag}");
        }
        let mut d = Device::new(1, Behaviour::Compliant, Plan::Never);
        assert_eq!(
            d.authorized(3_000, 3_000, 2_500, &issued(30), &mut rng),
            Next::Poll(10_500)
        );
    }

    #[test]
    fn transport_failures_back_off_and_are_never_a_poll() {
        let mut d = polling(Behaviour::Compliant, Plan::Never);
        assert_eq!(d.poll_failed(5000), Next::Poll(15_000));
        assert_eq!(d.poll_failed(15_000), Next::Poll(35_000));
        for _ in 0..2 {
            d.poll_failed(0);
        }
        assert_eq!(d.poll_failed(0), Next::Done);
        assert_eq!((d.outcome, d.polls), (Outcome::Unreached, 0));
    }

    #[test]
    fn pending_well_after_expiry_breaks_ex_01() {
        let mut d = polling(Behaviour::Abandoned, Plan::Never);
        let mut rng = rng_for(0, 1);
        let (_, rule) = d.polled(31_000, 31_010, 0, false, Answer::Pending, &mut rng);
        assert_eq!(rule, None, "within the grace");
        let (next, rule) = d.polled(33_000, 33_010, 0, false, Answer::Pending, &mut rng);
        assert_eq!((next, rule), (Next::Done, Some(Rule::PendingAfterExpiry)));
    }

    #[test]
    fn a_token_nobody_approved_is_a_violation_and_is_checked_for_replay() {
        let mut d = polling(Behaviour::Compliant, Plan::Never);
        let mut rng = rng_for(0, 1);
        let (next, rule) = d.polled(5000, 5010, 0, false, Answer::Token, &mut rng);
        assert_eq!(next, Next::ReplayCheck(10_010));
        assert_eq!(rule, Some(Rule::TokenNobodyApproved));
        assert!(d.breaks(Rule::TokenNobodyApproved));
        assert!(
            !d.breaks(Rule::TokenNobodyApproved),
            "counted once per device"
        );
    }

    #[test]
    fn access_denied_before_the_person_denied_is_one_nobody_gave() {
        // The person denies 10 s after the codes came (at 0).
        let plan = Plan::Deny { after_ms: 10_000 };
        let mut rng = rng_for(0, 1);
        let mut early = polling(Behaviour::Compliant, plan);
        let (next, rule) = early.polled(5000, 5010, 0, false, Answer::Denied, &mut rng);
        assert_eq!((next, rule), (Next::Done, Some(Rule::DeniedWithoutDenial)));
        let mut after = polling(Behaviour::Compliant, plan);
        let (_, rule) = after.polled(10_000, 10_010, 0, false, Answer::Denied, &mut rng);
        assert_eq!(rule, None);
        // A person who approves, or never looks, denies nothing.
        for plan in [Plan::Approve { after_ms: 0 }, Plan::Never] {
            let mut d = polling(Behaviour::Compliant, plan);
            let (_, rule) = d.polled(10_000, 10_010, 0, false, Answer::Denied, &mut rng);
            assert_eq!(rule, Some(Rule::DeniedWithoutDenial), "{plan:?}");
        }
    }

    #[test]
    fn a_token_before_the_person_approved_is_one_nobody_approved() {
        // The person approves 10 s after the codes came (at 0).
        let plan = Plan::Approve { after_ms: 10_000 };
        let mut rng = rng_for(0, 1);
        let mut early = polling(Behaviour::Compliant, plan);
        let (_, rule) = early.polled(5000, 5010, 0, false, Answer::Token, &mut rng);
        assert_eq!(rule, Some(Rule::TokenNobodyApproved));
        let mut after = polling(Behaviour::Compliant, plan);
        let (_, rule) = after.polled(10_000, 10_010, 0, false, Answer::Token, &mut rng);
        assert_eq!(rule, None);
        // A person who will deny, not yet decided: nobody approved either.
        let mut deny = polling(Behaviour::Compliant, Plan::Deny { after_ms: 0 });
        let (_, rule) = deny.polled(5000, 5010, 0, false, Answer::Token, &mut rng);
        assert_eq!(rule, Some(Rule::TokenNobodyApproved));
    }

    #[test]
    fn expired_token_well_before_expires_in_breaks_ex_01() {
        // expires_in 30 s from 0.
        let mut rng = rng_for(0, 1);
        let mut d = polling(Behaviour::Compliant, Plan::Never);
        let (next, rule) = d.polled(5000, 5010, 0, false, Answer::Expired, &mut rng);
        assert_eq!((next, rule), (Next::Done, Some(Rule::ExpiredEarly)));
        let mut d = polling(Behaviour::Compliant, Plan::Never);
        let (_, rule) = d.polled(28_500, 28_500, 0, false, Answer::Expired, &mut rng);
        assert_eq!(rule, None, "within the grace");
        let mut d = polling(Behaviour::Compliant, Plan::Never);
        let (_, rule) = d.polled(31_000, 31_010, 0, false, Answer::Expired, &mut rng);
        assert_eq!(rule, None);
    }

    #[test]
    fn why_a_code_expired_is_told_from_the_plan_the_decision_and_the_polls() {
        use ExpiredBecause::*;
        // expires_in 30 s from 0; expired_token at 31 s.
        let mut rng = rng_for(0, 1);
        let approving = |after_ms| polling(Behaviour::Compliant, Plan::Approve { after_ms });
        let mut expire = |mut d: Device| {
            assert_eq!(d.expired_because(), None, "not expired yet");
            d.polled(31_000, 31_010, 0, false, Answer::Expired, &mut rng);
            d.expired_because()
        };
        assert_eq!(
            expire(polling(Behaviour::Compliant, Plan::Never)),
            Some(NobodyDecides)
        );
        assert_eq!(expire(approving(30_000)), Some(DecidesTooLate));
        let mut rng = rng_for(0, 1);
        let mut pending_at = |d: &mut Device, at: u32| {
            d.polled(at, at + 10, 0, false, Answer::Pending, &mut rng);
        };
        // Approved at 26 s, after the poll at 25 s: the next one, at 31 s, is too late.
        let mut d = approving(20_000);
        pending_at(&mut d, 25_000);
        d.decided_ms = 26_000;
        let paced = d;
        // Approved at 21 s, still pending at 25 s: the server did not act on it.
        let mut d = approving(20_000);
        d.decided_ms = 21_000;
        pending_at(&mut d, 25_000);
        let ignored = d;
        // Approved at 24 s, pending at 25 s: within the 2 s of grace, the pace's.
        let mut d = approving(20_000);
        d.decided_ms = 24_000;
        pending_at(&mut d, 25_000);
        let graced = d;
        // Denied at 21 s, still pending at 25 s: the server, as for an approval.
        let mut d = polling(Behaviour::Compliant, Plan::Deny { after_ms: 20_000 });
        d.decided_ms = 21_000;
        pending_at(&mut d, 25_000);
        let denial_ignored = d;
        // Due at 20 s, never through.
        let mut d = approving(20_000);
        pending_at(&mut d, 25_000);
        let lost = d;
        let mut rng = rng_for(0, 1);
        let mut expire = |mut d: Device| {
            d.polled(31_000, 31_010, 0, false, Answer::Expired, &mut rng);
            d.expired_because()
        };
        assert_eq!(expire(paced), Some(PolledTooLate));
        assert_eq!(expire(ignored), Some(PendingAfterDecision));
        assert_eq!(expire(denial_ignored), Some(PendingAfterDecision));
        assert_eq!(expire(graced), Some(PolledTooLate));
        assert_eq!(expire(lost), Some(DecisionNotThrough));
    }

    #[test]
    fn a_code_that_lives_49_days_is_not_past_its_expiry() {
        // RFC 8628 §3.2: expires_in is a positive integer; issued + 4,294,967 s in ms
        // no longer fits 32 bits. Pending 5 s in is no EX-01 violation.
        let mut d = Device::new(1, Behaviour::Compliant, Plan::Never);
        let mut rng = rng_for(0, 1);
        d.authorized(1000, 1000, 0, &issued(4_294_967), &mut rng);
        assert!(!d.poll_going_out(6000));
        let (next, rule) = d.polled(6000, 6010, 0, false, Answer::Pending, &mut rng);
        assert_eq!((next, rule), (Next::Poll(11_010), None));
        let (_, rule) = d.polled(11_000, 11_010, 0, false, Answer::Expired, &mut rng);
        assert_eq!(rule, Some(Rule::ExpiredEarly));
    }

    /// The replay check after a token waits the interval the server requires by then
    /// (RFC 8628 §3.5: 5 s more for each slow_down), as any poll: at the first
    /// interval, a server that paces before reading the code's state answered it
    /// slow_down, for the generator's haste.
    #[test]
    fn the_replay_check_waits_the_interval_required_by_then() {
        let mut rng = rng_for(0, 1);
        let mut d = Device::new(1, Behaviour::Compliant, Plan::Approve { after_ms: 0 });
        d.authorized(0, 0, 0, &issued(60), &mut rng);
        d.polled(5_000, 5_000, 0, false, Answer::SlowDown, &mut rng);
        let (next, _) = d.polled(15_000, 15_000, 0, false, Answer::Token, &mut rng);
        assert_eq!(next, Next::ReplayCheck(25_000));
    }

    /// Checklist EX-01: the generator stalled 5 s between asking for a code and reading
    /// the answer (SIGSTOP, a starved CPU). The server started the code's life when it
    /// answered, so expired_token on time is no violation; only one before the code
    /// can have expired is. Charged to the server before.
    #[test]
    fn a_code_read_late_is_not_judged_to_expire_early() {
        let mut rng = rng_for(0, 1);
        let mut d = Device::new(1, Behaviour::Compliant, Plan::Never);
        d.authorized(0, 5_000, 0, &issued(10), &mut rng);
        let (_, rule) = d.polled(10_400, 10_500, 0, false, Answer::Expired, &mut rng);
        assert_eq!(rule, None);
        // Expired 3 s before the earliest it could: early.
        let mut d = Device::new(2, Behaviour::Compliant, Plan::Never);
        d.authorized(0, 5_000, 0, &issued(10), &mut rng);
        let (_, rule) = d.polled(6_900, 7_000, 0, false, Answer::Expired, &mut rng);
        assert_eq!(rule, Some(Rule::ExpiredEarly));
    }

    /// RFC 8628 §3.2: `expires_in` is the code's lifetime in seconds. 0 turned every
    /// expiry check off (pending forever, a token long after, no violation); it is a
    /// code expired when it was issued.
    #[test]
    fn a_code_issued_with_expires_in_0_has_expired_at_issue() {
        let mut d = Device::new(1, Behaviour::Compliant, Plan::Never);
        let mut rng = rng_for(0, 1);
        d.authorized(1000, 1000, 0, &issued(0), &mut rng);
        assert_eq!(d.expiry_ms(), Some(1000));
        assert!(!d.poll_going_out(6000));
        let (next, rule) = d.polled(6000, 6010, 0, false, Answer::Pending, &mut rng);
        assert_eq!((next, rule), (Next::Done, Some(Rule::PendingAfterExpiry)));
    }

    #[test]
    fn people_follow_their_percentages() {
        let people = People {
            approve_delay_ms: (1000, 2000),
            deny_pct: 20,
            never_pct: 10,
        };
        let mut rng = rng_for(7, 7);
        assert_eq!(people.plan(Behaviour::Abandoned, &mut rng), Plan::Never);
        let plans: Vec<Plan> = (0..5000)
            .map(|_| people.plan(Behaviour::Compliant, &mut rng))
            .collect();
        let deny = plans
            .iter()
            .filter(|p| matches!(p, Plan::Deny { .. }))
            .count();
        let never = plans.iter().filter(|p| matches!(p, Plan::Never)).count();
        assert!((800..1200).contains(&deny), "{deny}");
        assert!((350..650).contains(&never), "{never}");
    }

    #[test]
    fn a_device_record_is_small() {
        assert!(
            std::mem::size_of::<Device>() <= 120,
            "{}",
            std::mem::size_of::<Device>()
        );
    }
}
