//! How binding a rule is (the levels of the checklist's legend) and what a case
//! concluded ([`Status`]): a broken rule's status follows from its level. Cases carry a
//! level, and the context raises some under a declared profile (`--expect`).

use serde::Serialize;

/// How binding the rule is (checklist "Level legend").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Level {
    /// MUST, MUST NOT, REQUIRED: a violation fails.
    #[serde(rename = "MUST")]
    Must,
    /// SHOULD, RECOMMENDED, and lower-case "should": a violation warns.
    #[serde(rename = "SHOULD")]
    Should,
    /// Derived from combined texts, and the checklist says FAIL: judged as a MUST.
    /// (Named for the obligation, never for an outcome, so `grep FAIL` finds only
    /// failed checks.)
    #[serde(rename = "Derived-MUST")]
    DerivedMust,
    /// Derived, reported as a warning: judged as a SHOULD.
    #[serde(rename = "Derived-SHOULD")]
    DerivedShould,
    /// MAY / OPTIONAL: recorded, never failed.
    #[serde(rename = "MAY")]
    May,
    /// Nothing required: a measured property.
    #[serde(rename = "Info")]
    Info,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::DerivedMust => "Derived-MUST",
            Level::DerivedShould => "Derived-SHOULD",
            Level::May => "MAY",
            Level::Info => "Info",
        }
    }

    /// The status a violated expectation gets at this level.
    pub fn on_violation(self) -> Status {
        match self {
            Level::Must | Level::DerivedMust => Status::Fail,
            Level::Should | Level::DerivedShould => Status::Warn,
            Level::May | Level::Info => Status::Info,
        }
    }
}

/// A case's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Info,
    Warn,
    Fail,
    Skip,
    NotApplicable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Info => "info",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
            Status::NotApplicable => "n/a",
        }
    }
}
