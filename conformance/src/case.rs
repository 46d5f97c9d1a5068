//! What a conformance case is: its identity in the checklist, its level, what it needs,
//! and the verdict it reaches with the evidence behind it.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::context::Ctx;
use crate::http::Exchange;

pub use crate::level::{Level, Status};

/// The human step a case needs (checklist "Human" column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Human {
    None,
    Approve,
    Deny,
    /// Driving the verification pages themselves (sign-in, typing the code): beyond
    /// the approver interface, so these rows are reported as skipped.
    Browser,
}

/// The wait a case needs (checklist "Wait" column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    None,
    /// Interval-scale: a few polls at the interval.
    Interval,
    /// A soak of several minutes.
    Soak,
    /// Past `expires_in`.
    Expiry,
}

/// A case's identity, as in ../shared/rfc8628-checklist.md.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CaseInfo {
    /// Checklist id, e.g. `TS-08`.
    pub id: &'static str,
    /// Stable slug, e.g. `rfc8628/3.5/device-code-single-use`.
    pub slug: &'static str,
    /// Checklist section, e.g. `A.5`.
    pub group: &'static str,
    /// RFC citation, e.g. `RFC 8628 §3.5`.
    pub rfc: &'static str,
    pub level: Level,
    pub title: &'static str,
    pub human: Human,
    pub wait: Wait,
    /// The waits the case makes at the server's interval, each as the `k` of its
    /// `interval + 5·k` (plus the margin): what the runner checks against
    /// `--max-wait` before it starts the case. For PL-02 and PL-03, the fewest that
    /// make a judgement; they fit more into what is left.
    #[serde(skip)]
    pub interval_waits: &'static [u64],
}

impl CaseInfo {
    /// The stable name used in filters, reports and JUnit: `TS-08 rfc8628/3.5/...`.
    pub fn name(&self) -> String {
        format!("{} {}", self.id, self.slug)
    }
}

pub type CaseFuture = Pin<Box<dyn Future<Output = Verdict> + Send>>;

/// A runnable case.
#[derive(Clone, Copy)]
pub struct Case {
    pub info: CaseInfo,
    pub run: fn(Ctx) -> CaseFuture,
}

/// What a case found.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub status: Status,
    /// One line: what passed, or what went wrong.
    pub summary: String,
    /// Each expectation checked, with its result.
    pub checks: Vec<CheckResult>,
    /// Measured properties (Info values: the slow_down policy, expires_in, entropy...).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub measured: serde_json::Map<String, serde_json::Value>,
    /// What was sent and what came back.
    pub evidence: Vec<Exchange>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Whether the expectation held. A SHOULD inside a stricter case that did not
    /// hold is `false` too, with `warning`: it makes the case warn, never fail.
    pub ok: bool,
    /// It did not hold, and it only warns ([`Check::expect_soft`]); written only
    /// when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
    pub what: String,
}

impl CheckResult {
    /// An expectation that did not hold and fails the case at its level.
    pub fn broken(&self) -> bool {
        !self.ok && !self.warning
    }
}

/// How a summary starts when the suite, not the server, kept a case from a verdict (an
/// approver that fails, the runner's guard, a crash of the case): reported as a skip.
pub const INCONCLUSIVE: &str = "inconclusive, not a finding against the server:";

/// How a summary starts when a case that needs a person's decision was not run for
/// want of an approver (`--approver none`).
pub const NEEDS_APPROVER: &str = "needs an approver";

/// How a summary starts when a case is one this suite does not run: a row of the
/// pages that needs them driven as a person (a browser).
pub const BROWSER_ONLY: &str = "needs the verification pages driven as a person";

/// How a summary starts when the soak was not asked for (`--soak`).
pub const SOAK_OFF: &str = "a soak of several minutes";

/// The measured key under which a case says what part of it, needing a person's
/// decision, was not judged ([`Check::not_judged`]).
pub const NOT_JUDGED: &str = "not_judged";

impl Verdict {
    /// The verdict of a case the suite could not bring to a conclusion, for `why`
    /// (the suite's own problem: never a failure of the server, at any level).
    pub fn inconclusive(why: impl std::fmt::Display) -> Verdict {
        Verdict {
            status: Status::Skip,
            summary: format!("{INCONCLUSIVE} {why}"),
            checks: Vec::new(),
            measured: serde_json::Map::new(),
            evidence: Vec::new(),
        }
    }
}

/// Collects a case's expectations and evidence, then judges them at the case's level.
/// Expectations never panic: a broken server yields a verdict, not a crash.
pub struct Check {
    level: Level,
    checks: Vec<CheckResult>,
    measured: serde_json::Map<String, serde_json::Value>,
    evidence: Vec<Exchange>,
    /// An expectation at a lower level than the case's (a SHOULD inside a MUST case).
    soft_failures: Vec<String>,
    /// Why the suite could not go on (the approver failed), if it could not.
    inconclusive: Option<String>,
    /// Why a request the case needed was not sent (the suite's address rule,
    /// [`crate::http::reach`]), or was answered only by a rate limit, if so.
    not_connected: Option<String>,
}

impl Check {
    pub fn new(level: Level) -> Check {
        Check {
            level,
            checks: Vec::new(),
            measured: serde_json::Map::new(),
            evidence: Vec::new(),
            soft_failures: Vec::new(),
            inconclusive: None,
            not_connected: None,
        }
    }

    /// Records that the case cannot reach a verdict for a reason of the suite's own
    /// (the approver failed): unless an expectation already failed, the case ends as
    /// [`INCONCLUSIVE`], a skip with `why`, never as the server's failure.
    pub fn inconclusive(&mut self, why: impl Into<String>) {
        self.inconclusive.get_or_insert(why.into());
    }

    /// Records an expectation; returns whether it held.
    pub fn expect(&mut self, ok: bool, what: impl Into<String>) -> bool {
        self.checks.push(CheckResult {
            ok,
            warning: false,
            what: what.into(),
        });
        ok
    }

    /// Records an expectation that only warns, whatever the case's level.
    pub fn expect_soft(&mut self, ok: bool, what: impl Into<String>) -> bool {
        let what = what.into();
        if !ok {
            self.soft_failures.push(what.clone());
        }
        // Recorded as not holding (a JSON reader counting `ok: false` sees it), and
        // marked a warning, so that it never fails the case.
        self.checks.push(CheckResult {
            ok,
            warning: !ok,
            what: if ok {
                what
            } else {
                format!("(warning) {what}")
            },
        });
        ok
    }

    /// Records that a part of the case was not judged, for want of a person's decision
    /// (no approver, or it failed) or of evidence the suite cannot get (TS-05's granted
    /// scope without introspection), saying which and why: the verdict stands for the
    /// rest, but a MUST case with such a part is not one known to hold (exit 4).
    pub fn not_judged(&mut self, why: impl Into<String>) {
        self.measure(NOT_JUDGED, why.into());
    }

    /// Records an exchange. One the suite's address rule kept from being sent
    /// ([`Exchange::not_connected`]) makes the case [`INCONCLUSIVE`], whatever its
    /// expectations say: they were judged on an answer that never came, and a server
    /// is not failed for a page the suite chose not to fetch.
    ///
    /// An answer still rate limited after the retries ([`Exchange::still_rate_limited`]:
    /// a 429 or 503) makes the case inconclusive the same way: a rate limit says nothing
    /// of the rule the case judges (checklist PL-10). The answers waited out before `e`
    /// ([`Exchange::earlier`]) are recorded before it.
    pub fn evidence(&mut self, mut e: Exchange) {
        if let Some(why) = e.not_connected() {
            self.not_connected.get_or_insert_with(|| why.to_owned());
        }
        if let Some(why) = e.still_rate_limited() {
            self.not_connected.get_or_insert(why);
        }
        self.evidence.append(&mut e.earlier);
        self.evidence.push(e);
    }

    /// Records an exchange of a part the rest of the case can be judged without (one
    /// of several pages): one the address rule kept back makes the case inconclusive
    /// only if nothing else broke ([`Check::inconclusive`]), and its part must not be
    /// judged by the caller.
    pub fn evidence_of_a_part(&mut self, mut e: Exchange) {
        if let Some(why) = e.not_connected() {
            self.inconclusive(why.to_owned());
        }
        if let Some(why) = e.still_rate_limited() {
            self.inconclusive(why);
        }
        self.evidence.append(&mut e.earlier);
        self.evidence.push(e);
    }

    pub fn measure(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.measured.insert(key.to_owned(), value.into());
    }

    pub fn failed(&self) -> bool {
        self.checks.iter().any(CheckResult::broken)
    }

    /// The verdict: every expectation held → pass (info for Info/MAY cases), else the
    /// level's status with the most severe expectation that did not hold as the
    /// summary (the first broken one, else the first warning), and how many more did
    /// not hold ("(+2 more failed, +1 warning)"; "not met" in a case that only warns),
    /// so that a one-line report never hides them; a case
    /// the suite could not finish ([`Check::inconclusive`]) with nothing broken is a
    /// skip.
    pub fn finish(self, pass_summary: impl Into<String>) -> Verdict {
        let broken: Vec<&CheckResult> = self.checks.iter().filter(|c| c.broken()).collect();
        // The others counted as what they make the case: failed where it fails, not
        // met where a SHOULD case only warns; and the warnings beside them.
        let others = if self.level.on_violation() == Status::Fail {
            "failed"
        } else {
            "not met"
        };
        let first_failure = broken.first().map(|c| {
            let mut counted = Vec::new();
            if broken.len() > 1 {
                counted.push(format!("+{} more {others}", broken.len() - 1));
            }
            match self.soft_failures.len() {
                0 => {}
                1 => counted.push("+1 warning".to_owned()),
                n => counted.push(format!("+{n} warnings")),
            }
            match counted.as_slice() {
                [] => c.what.clone(),
                _ => format!("{} ({})", c.what, counted.join(", ")),
            }
        });
        let (status, summary) = match (first_failure, &self.inconclusive) {
            _ if self.not_connected.is_some() => (
                Status::Skip,
                format!(
                    "{INCONCLUSIVE} {}",
                    self.not_connected.as_deref().unwrap_or_default()
                ),
            ),
            (Some(what), _) => (self.level.on_violation(), what),
            (None, Some(why)) => (Status::Skip, format!("{INCONCLUSIVE} {why}")),
            (None, None) if matches!(self.level, Level::Info | Level::May) => {
                (Status::Info, pass_summary.into())
            }
            (None, None) => match self.soft_failures.as_slice() {
                [] => (Status::Pass, pass_summary.into()),
                [what] => (Status::Warn, what.clone()),
                [what, more @ ..] => (
                    Status::Warn,
                    format!("{what} (+{} more warnings)", more.len()),
                ),
            },
        };
        Verdict {
            status,
            summary,
            checks: self.checks,
            measured: self.measured,
            evidence: self.evidence,
        }
    }

    /// Ends the case early as not runnable, keeping what was gathered.
    pub fn skip(self, status: Status, why: impl Into<String>) -> Verdict {
        Verdict {
            status,
            summary: why.into(),
            checks: self.checks,
            measured: self.measured,
            evidence: self.evidence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_are_judged_at_the_cases_level() {
        for (level, status) in [
            (Level::Must, Status::Fail),
            (Level::DerivedMust, Status::Fail),
            (Level::Should, Status::Warn),
            (Level::DerivedShould, Status::Warn),
            (Level::Info, Status::Info),
        ] {
            let mut c = Check::new(level);
            c.expect(true, "fine");
            c.expect(false, "broken");
            let v = c.finish("all good");
            assert_eq!(
                (v.status, v.summary.as_str()),
                (status, "broken"),
                "{level:?}"
            );
        }
    }

    #[test]
    fn level_names_never_name_an_outcome() {
        for level in [
            Level::Must,
            Level::Should,
            Level::DerivedMust,
            Level::DerivedShould,
            Level::May,
            Level::Info,
        ] {
            let name = level.as_str().to_ascii_uppercase();
            let json = serde_json::to_string(&level).unwrap().to_ascii_uppercase();
            for outcome in ["FAIL", "WARN", "PASS"] {
                assert!(!name.contains(outcome), "{name}");
                assert!(!json.contains(outcome), "{json}");
            }
        }
    }

    #[test]
    fn a_case_the_suite_could_not_finish_is_inconclusive_never_the_servers_failure() {
        for level in [Level::Must, Level::DerivedMust, Level::Should, Level::Info] {
            let mut c = Check::new(level);
            c.expect(true, "the device authorization succeeds");
            c.inconclusive("the approver could not approve: HTTP 401");
            let v = c.finish("ok");
            assert_eq!(v.status, Status::Skip, "{level:?}");
            assert!(v.summary.starts_with(INCONCLUSIVE), "{}", v.summary);
            assert!(v.summary.ends_with("HTTP 401"), "{}", v.summary);
        }
        // A failure found before the approver failed still stands.
        let mut c = Check::new(Level::Must);
        c.expect(false, "broken");
        c.inconclusive("the approver failed");
        assert_eq!(c.finish("ok").status, Status::Fail);
        let v = Verdict::inconclusive("the case crashed");
        assert_eq!(v.status, Status::Skip);
        assert!(v.summary.starts_with(INCONCLUSIVE));
    }

    #[test]
    fn the_summary_names_the_most_severe_finding_and_counts_the_others() {
        // A warning first, then two failures: the summary is the first failure, with
        // the other one counted (it had shown the first failure alone).
        let mut c = Check::new(Level::Must);
        c.expect_soft(false, "Pragma: no-cache");
        c.expect(false, "Cache-Control: no-store");
        c.expect(true, "fine");
        c.expect(false, "HTTP 200");
        let v = c.finish("ok");
        assert_eq!(
            (v.status, v.summary.as_str()),
            (
                Status::Fail,
                "Cache-Control: no-store (+1 more failed, +1 warning)"
            )
        );
        // A SHOULD case warns on what it expected: not "failed".
        let mut c = Check::new(Level::Should);
        c.expect(false, "verification_uri_complete");
        c.expect(false, "interval");
        let v = c.finish("ok");
        assert_eq!(
            (v.status, v.summary.as_str()),
            (Status::Warn, "verification_uri_complete (+1 more not met)")
        );
        let mut c = Check::new(Level::Must);
        c.expect_soft(false, "Pragma: no-cache");
        c.expect_soft(false, "expires_in");
        let v = c.finish("ok");
        assert_eq!(
            (v.status, v.summary.as_str()),
            (Status::Warn, "Pragma: no-cache (+1 more warnings)")
        );
    }

    #[test]
    fn a_clean_case_passes_and_a_soft_failure_warns() {
        let mut c = Check::new(Level::Must);
        c.expect(true, "fine");
        assert_eq!(c.finish("ok").status, Status::Pass);
        let mut c = Check::new(Level::Must);
        c.expect(true, "fine");
        c.expect_soft(false, "Pragma: no-cache missing");
        let v = c.finish("ok");
        assert_eq!(
            (v.status, v.summary.as_str()),
            (Status::Warn, "Pragma: no-cache missing")
        );
    }

    #[test]
    fn a_should_that_did_not_hold_is_recorded_as_not_holding() {
        // A JSON reader counting the checks that did not hold must count a warning
        // too: `ok: false` (with `warning: true`), never `ok: true`.
        let mut c = Check::new(Level::Must);
        c.expect(true, "Cache-Control: no-store");
        c.expect_soft(false, "Pragma: no-cache (got \"\")");
        c.expect_soft(true, "expires_in is present (RECOMMENDED)");
        let v = c.finish("ok");
        assert_eq!(v.status, Status::Warn);
        let oks: Vec<bool> = v.checks.iter().map(|k| k.ok).collect();
        assert_eq!(oks, [true, false, true]);
        let json = serde_json::to_value(&v.checks).unwrap();
        assert_eq!(json[1]["ok"], false, "{json}");
        assert_eq!(json[1]["warning"], true, "{json}");
        assert!(json[2].get("warning").is_none(), "{json}");
    }
}
