//! What a device's flow is made of, named once for the devices, the counters and the
//! timeline: the requests it sends ([`Kind`]), the answers its polls get
//! ([`Answer`]), how it ends ([`Outcome`]) and the rules of RFC 8628 it is held to
//! ([`Rule`]).

use serde::{Deserialize, Serialize};

/// The requests a fleet sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// RFC 8628 §3.1.
    Issue,
    /// RFC 8628 §3.4.
    Poll,
    /// One more poll after the token (checklist TS-08).
    ReplayCheck,
    /// The person's decision, through the approver.
    Approve,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Issue, Kind::Poll, Kind::ReplayCheck, Kind::Approve];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Issue => "device_authorization",
            Kind::Poll => "token_poll",
            Kind::ReplayCheck => "token_replay_check",
            Kind::Approve => "approve",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// How a device's flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still running when the run ended, or given up by `--max-flow`.
    Unfinished,
    Token,
    Denied,
    Expired,
    /// The server answered something that ends the flow (another error code, a
    /// malformed answer) or broke a rule that ends it.
    Error,
    /// Its requests got no answer (transport errors: they never reached the server,
    /// or it had them and did not answer): no RFC 8628 rule is judged for this device.
    Unreached,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Token,
        Outcome::Denied,
        Outcome::Expired,
        Outcome::Error,
        Outcome::Unreached,
        Outcome::Unfinished,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Unfinished => "unfinished",
            Outcome::Token => "token",
            Outcome::Denied => "denied",
            Outcome::Expired => "expired",
            Outcome::Error => "error",
            Outcome::Unreached => "unreached",
        }
    }

    pub fn index(self) -> usize {
        Outcome::ALL
            .iter()
            .position(|o| *o == self)
            .unwrap_or_default()
    }
}

/// A server's break of RFC 8628 as a device saw it, by rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Checklist DR-05: `expires_in` other than `--expect-expires-in`.
    ExpiresIn,
    /// Checklist DR-06: `interval` other than `--expect-interval`.
    Interval,
    /// Checklist EX-01: still pending after `expires_in`.
    PendingAfterExpiry,
    /// Checklist EX-01: `expired_token` before `expires_in`.
    ExpiredEarly,
    /// Checklist EX-02: a token after `expires_in`.
    TokenAfterExpiry,
    /// Checklist TS-07: a token after the person denied.
    TokenAfterDenial,
    /// Checklist TS-07: still pending after the person denied.
    PendingAfterDenial,
    /// Checklist TS-07: access_denied though nobody denied.
    DeniedWithoutDenial,
    /// Checklist TS-01: a token nobody approved.
    TokenNobodyApproved,
    /// Checklist TS-08: a second token for one device code.
    SecondToken,
    /// Checklist TS-08: `authorization_pending` to a code already redeemed, where any
    /// later poll gets an error.
    PendingAfterRedemption,
}

impl Rule {
    pub fn describe(self) -> &'static str {
        match self {
            Rule::ExpiresIn => "DR-05 (RFC 8628 §3.2): expires_in other than expected",
            Rule::Interval => "DR-06 (RFC 8628 §3.2): interval other than expected",
            Rule::PendingAfterExpiry => {
                "EX-01 (RFC 8628 §3.5): still pending after expires_in, not expired_token"
            }
            Rule::ExpiredEarly => "EX-01 (RFC 8628 §3.2, §3.5): expired_token before expires_in",
            Rule::TokenAfterExpiry => "EX-02 (RFC 8628 §3.5): a token after expires_in",
            Rule::TokenAfterDenial => "TS-07 (RFC 8628 §3.5): a token after the person denied",
            Rule::PendingAfterDenial => {
                "TS-07 (RFC 8628 §3.5): still pending after the person denied"
            }
            Rule::DeniedWithoutDenial => {
                "TS-07 (RFC 8628 §3.5): access_denied though the person did not deny (yet)"
            }
            Rule::TokenNobodyApproved => "TS-01 (RFC 8628 §3.5): a token nobody approved",
            Rule::SecondToken => "TS-08: a second token for one device code",
            Rule::PendingAfterRedemption => {
                "TS-08: still pending to a device code already redeemed, not an error"
            }
        }
    }
}

/// The answers a poll can get, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Pending,
    SlowDown,
    Token,
    Denied,
    Expired,
    /// Any other error, or an answer that is not an RFC 6749 JSON object.
    Error,
}

impl Answer {
    pub const ALL: [Answer; 6] = [
        Answer::Pending,
        Answer::SlowDown,
        Answer::Token,
        Answer::Denied,
        Answer::Expired,
        Answer::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Pending => "authorization_pending",
            Answer::SlowDown => "slow_down",
            Answer::Token => "token",
            Answer::Denied => "access_denied",
            Answer::Expired => "expired_token",
            Answer::Error => "error",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}
