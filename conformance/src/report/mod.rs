//! The run's result, and its renderings: terminal table, JSON (schema
//! `deviceflow-conformance/1`, documented in conformance/README.md), JUnit XML and
//! Markdown.

mod junit;
mod markdown;
mod terminal;

use std::time::Duration;

use serde::Serialize;

use crate::case::{CaseInfo, Human, Level, Status, Verdict, Wait, NOT_JUDGED};
use crate::context::{Ctx, Options, Preflight};
use crate::progress::FINDING_CHARS;
use crate::target::RootCause;
use deviceflow_reports::escape::{clip, json_for_terminal};

pub use junit::junit;
pub use markdown::markdown;
pub use terminal::terminal;

pub const SCHEMA: &str = "deviceflow-conformance/2";

#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    pub id: &'static str,
    /// `ID slug`: the stable name for filters and CI systems.
    pub name: String,
    #[serde(flatten)]
    pub info: CaseInfo,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub duration_ms: u64,
}

impl CaseReport {
    /// The report of one case. Its summary, the text of each check, the requests,
    /// response headers and errors of its evidence and the values it measured are cut
    /// to [`FINDING_CHARS`]: they may quote the server (an `error_description`, a
    /// `user_code`, a URI it gave, a header, its `interval`), which can make them as
    /// long as a body, in every case that quotes it and in every report.
    pub fn new(info: CaseInfo, mut verdict: Verdict, duration_ms: u64) -> CaseReport {
        verdict.summary = clip(&verdict.summary, FINDING_CHARS);
        for check in &mut verdict.checks {
            check.what = clip(&check.what, FINDING_CHARS);
        }
        // The evidence keeps 2048 characters of a response body; a request can quote
        // the server as much (a `verification_uri_complete` fetched, an error), and a
        // header the exchange keeps whole for the cases to read is as long as the
        // server made it (hyper takes some 400 KB), on each of hundreds of exchanges.
        for e in &mut verdict.evidence {
            e.request.url = clip(&e.request.url, FINDING_CHARS);
            for (_, value) in &mut e.request.headers {
                *value = clip(value, FINDING_CHARS);
            }
            if let Some(body) = &mut e.request.body {
                *body = clip(body, FINDING_CHARS);
            }
            if let Some(response) = &mut e.response {
                for (_, value) in &mut response.headers {
                    *value = clip(value, FINDING_CHARS);
                }
            }
            if let Some(error) = &mut e.error {
                *error = clip(error, FINDING_CHARS);
            }
        }
        for value in verdict.measured.values_mut() {
            bound(value);
        }
        CaseReport {
            id: info.id,
            name: info.name(),
            info,
            verdict,
            duration_ms,
        }
    }
}

/// `value`, a measured one, cut to about [`FINDING_CHARS`]: a string is [clipped](clip);
/// an array or object whose JSON is longer (a server's `interval` can be any JSON
/// value, as long as its body) becomes that JSON as a string, clipped. Numbers,
/// booleans and null are short already.
fn bound(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(text) => *text = clip(text, FINDING_CHARS),
        Value::Array(_) | Value::Object(_) => {
            let text = value.to_string();
            if text.chars().count() > FINDING_CHARS {
                *value = Value::String(clip(&text, FINDING_CHARS));
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub info: usize,
    pub skip: usize,
    pub not_applicable: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetSummary {
    pub issuer: Option<String>,
    pub device_authorization_endpoint: String,
    pub token_endpoint: String,
    pub metadata_url: Option<String>,
    pub client_id: String,
    pub client_auth: crate::client::AuthMethod,
    /// The environment variable the client's secret came from, when not the command
    /// line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_from: Option<&'static str>,
    pub second_client_id: Option<String>,
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub suite_version: &'static str,
    pub target: TargetSummary,
    pub approver: String,
    pub options: Options,
    pub preflight: Preflight,
    /// Unix seconds.
    pub started_at: u64,
    pub duration_ms: u64,
    pub totals: Totals,
    /// Failed MUST and Derived-MUST cases: the exit code is 1 when this is non-zero.
    pub must_failures: usize,
    /// MUST and Derived-MUST cases not judged, in whole or in part: a decision needed
    /// and no approver, or one that did not work; or inconclusive (the guard, a
    /// crash). With no MUST failure, the exit code is 4 when this is non-zero: those
    /// MUSTs are unknown, not held.
    pub must_unjudged: usize,
    /// MUST and Derived-MUST cases this suite does not run in this mode (browser rows,
    /// the soak without `--soak`): said, not in the exit code.
    pub must_not_run: usize,
    /// The one reason the run stopped before the cases, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<RootCause>,
    /// The signal that stopped the run before its end, if one did: the report is
    /// partial, and says so in every rendering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interruption>,
    /// Which addresses the suite connects to, and the hosts it talked to because the
    /// server named them.
    pub network: Network,
    pub cases: Vec<CaseReport>,
}

/// The address rule of the run ([`crate::http::reach`]) and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct Network {
    /// The rule, in words.
    pub rule: String,
    /// Hosts neither the issuer's nor given by the person, that the server named (an
    /// endpoint in its metadata, a verification URI, a redirect): each with what
    /// named it, how many requests went there, whether a client's credentials did,
    /// and why the suite did not connect, if the rule kept it back.
    pub server_named_hosts: Vec<crate::http::reach::ServerNamedHost>,
}

impl Network {
    /// One line per host, for people: `http://h:1 — token_endpoint in the metadata; 12
    /// requests; a client's credentials sent`. The server's words (its URLs) are
    /// for each report to escape.
    pub fn lines(&self) -> Vec<String> {
        self.server_named_hosts
            .iter()
            .map(|h| {
                let mut line = format!("{} — {}", h.origin, h.named_as);
                if h.requests > 0 {
                    line.push_str(&format!("; {} request(s)", h.requests));
                }
                if h.credentials_sent {
                    line.push_str("; a client's credentials sent");
                }
                if let Some(why) = &h.not_connected {
                    line.push_str(&format!("; {}", crate::http::reach::short(why)));
                }
                clip(&line, FINDING_CHARS)
            })
            .collect()
    }
}

/// A signal that stops a run before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Signal {
    /// SIGINT: Ctrl-C.
    #[serde(rename = "SIGINT")]
    Interrupt,
    /// SIGTERM: a CI job cancelled, a timeout(1), a container stopped.
    #[serde(rename = "SIGTERM")]
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The exit code of a run it stopped: 128 + its number, as a shell reports a
    /// process the signal killed.
    pub fn exit_code(self) -> i32 {
        match self {
            Signal::Interrupt => exit::INTERRUPTED,
            Signal::Terminate => exit::TERMINATED,
        }
    }
}

/// How a run was interrupted: by which signal, and how many cases it kept from
/// finishing (they are inconclusive, saying so).
#[derive(Debug, Clone, Serialize)]
pub struct Interruption {
    pub signal: Signal,
    pub unfinished: usize,
}

/// Exit codes of the command (also in `--help`).
pub mod exit {
    /// Every MUST held.
    pub const CONFORMS: i32 = 0;
    /// A MUST (or Derived-MUST) case failed.
    pub const MUST_FAILED: i32 = 1;
    /// Bad usage: the options are wrong or incomplete.
    pub const USAGE: i32 = 2;
    /// The target could not be tested (unreachable, not an OAuth endpoint, the client
    /// refused): one root cause, no case run.
    pub const NOT_TESTABLE: i32 = 3;
    /// No MUST failed, but MUST cases were not judged, in whole or in part (a decision
    /// needed and no working approver, waits over `--max-wait` or past the code's life,
    /// too few samples, or inconclusive): not a claim that every MUST held.
    pub const MUST_UNJUDGED: i32 = 4;
    /// Interrupted by SIGINT (128 + 2): the reports written are partial, and say so.
    pub const INTERRUPTED: i32 = 130;
    /// Stopped by SIGTERM (128 + 15): the reports written are partial, and say so.
    pub const TERMINATED: i32 = 143;
}

/// Whether `c` is a MUST (or Derived-MUST) case that was not judged, in whole or in
/// part: skipped for any reason but [`not_run_must`]'s (for want of an approver, over
/// the `--max-wait` budget, too few samples, no `expires_in` to wait past,
/// inconclusive: an approver that failed, the runner's guard, a crash), or held with a
/// part that needs a decision not judged ([`NOT_JUDGED`]: TR-07 (b), TS-02's replay).
/// A MUST skipped over `--max-wait` let the run exit 0 (helper-86).
fn unjudged_must(c: &CaseReport) -> bool {
    let v = &c.verdict;
    matches!(c.info.level, Level::Must | Level::DerivedMust)
        && match v.status {
            Status::Skip => !not_run_must(c),
            Status::Pass | Status::Warn => v.measured.contains_key(NOT_JUDGED),
            _ => false,
        }
}

/// Whether `c` is a MUST (or Derived-MUST) case this suite does not run in this mode:
/// a browser row, or the soak skipped (without `--soak`, or over its budget at the
/// server's interval, which no option raises). Counted on the last line, not in the
/// exit code: no run the user could ask for would judge them. Told by the case's kind,
/// not its words.
fn not_run_must(c: &CaseReport) -> bool {
    matches!(c.info.level, Level::Must | Level::DerivedMust)
        && c.verdict.status == Status::Skip
        && (matches!(c.info.human, Human::Browser) || matches!(c.info.wait, Wait::Soak))
}

impl Report {
    pub fn new(
        ctx: &Ctx,
        preflight: Preflight,
        started_at: u64,
        took: Duration,
        cases: Vec<CaseReport>,
    ) -> Report {
        let t = &ctx.target;
        let mut totals = Totals::default();
        for c in &cases {
            match c.verdict.status {
                Status::Pass => totals.pass += 1,
                Status::Fail => totals.fail += 1,
                Status::Warn => totals.warn += 1,
                Status::Info => totals.info += 1,
                Status::Skip => totals.skip += 1,
                Status::NotApplicable => totals.not_applicable += 1,
            }
        }
        let must_failures = cases
            .iter()
            .filter(|c| {
                c.verdict.status == Status::Fail
                    && matches!(c.info.level, Level::Must | Level::DerivedMust)
            })
            .count();
        let must_unjudged = cases.iter().filter(|c| unjudged_must(c)).count();
        let must_not_run = cases.iter().filter(|c| not_run_must(c)).count();
        Report {
            schema: SCHEMA,
            suite_version: env!("CARGO_PKG_VERSION"),
            target: TargetSummary {
                issuer: t.issuer.clone(),
                device_authorization_endpoint: t.device_authorization_endpoint.clone(),
                token_endpoint: t.token_endpoint.clone(),
                metadata_url: t.metadata.as_ref().map(|m| m.url.clone()),
                client_id: t.client.id.clone(),
                client_auth: t.client.method,
                client_secret_from: t.client_secret_from,
                second_client_id: t.second_client.as_ref().map(|c| c.id.clone()),
                scope: t.scope.clone(),
            },
            approver: ctx.approver.describe(),
            options: ctx.options.clone(),
            preflight,
            started_at,
            duration_ms: took.as_millis() as u64,
            totals,
            must_failures,
            must_unjudged,
            must_not_run,
            root_cause: None,
            interrupted: None,
            network: Network {
                rule: t.reach.describe(),
                server_named_hosts: t.reach.hosts(),
            },
            cases,
        }
    }

    /// Marks the run as stopped by `cause` (the runner has already reported every case
    /// as not run, but the root cause's own).
    pub fn with_root_cause(mut self, mut cause: RootCause) -> Report {
        cause.summary = clip(&cause.summary, FINDING_CHARS);
        self.root_cause = Some(cause);
        // Nothing was judged: the skips are the cause's, said once (exit 3), not
        // counted again under reasons that do not apply (helper-87: 63 "not judged").
        self.must_unjudged = 0;
        self.must_not_run = 0;
        self
    }

    /// Marks the run as stopped by `signal` before its end (the runner has already
    /// reported the cases it kept from finishing as inconclusive, saying so).
    /// `unfinished`: how many.
    pub fn interrupted_by(mut self, signal: Signal, unfinished: usize) -> Report {
        self.interrupted = Some(Interruption { signal, unfinished });
        self
    }

    /// "INTERRUPTED by SIGINT: ...", the line every rendering of an interrupted run
    /// carries, if it was.
    pub fn interrupted_line(&self) -> Option<String> {
        self.interrupted.as_ref().map(|i| {
            format!(
                "INTERRUPTED by {} after {:.1} s: this report is partial; {} case(s) did not finish (inconclusive), the results of the others are kept",
                i.signal.name(),
                self.duration_ms as f64 / 1000.0,
                i.unfinished
            )
        })
    }

    /// One line per case, `ID<TAB>status`, in checklist order: what a committed
    /// baseline holds (no timings, no evidence), so a regression shows as a diff. An
    /// interrupted run's starts with a `#` line saying so, so that it never matches
    /// one.
    pub fn baseline(&self) -> String {
        let mut out = String::new();
        if let Some(line) = self.interrupted_line() {
            out.push_str(&format!("# {line}\n"));
        }
        for c in &self.cases {
            out.push_str(&format!("{}\t{}\n", c.id, c.verdict.status.as_str()));
        }
        out
    }

    /// The JSON report, with every character a terminal acts on written as a `\uXXXX`
    /// escape ([`deviceflow_reports::escape::json_for_terminal`], RFC 8259 §7): `cat
    /// report.json`, or a CI log showing it, never obeys what a server put in its
    /// answers.
    pub fn json(&self) -> String {
        json_for_terminal(&serde_json::to_string_pretty(self).unwrap_or_default())
    }

    /// The process exit code ([`exit`]): 1 if any MUST (or Derived-MUST) case failed,
    /// 3 if the target could not be tested at all, 4 if MUST cases that need a
    /// person's decision could not be judged.
    pub fn exit_code(&self) -> i32 {
        if let Some(i) = &self.interrupted {
            // Partial: whatever the cases that finished say, the run is not whole.
            i.signal.exit_code()
        } else if self.must_failures > 0 {
            exit::MUST_FAILED
        } else if self.root_cause.is_some() {
            exit::NOT_TESTABLE
        } else if self.must_unjudged > 0 {
            exit::MUST_UNJUDGED
        } else {
            exit::CONFORMS
        }
    }

    /// The run's last line's verdict on the MUSTs: how many failed, and how many that
    /// need a decision were not judged (said only when some were).
    pub fn must_line(&self) -> String {
        let mut line = format!("{} MUST failure(s)", self.must_failures);
        if self.must_unjudged > 0 {
            line.push_str(&format!(
                "; {} MUST case(s) not judged, in whole or in part (no approver, an approver that did not work, over the --max-wait budget, too few samples, or inconclusive): not every MUST is known to hold",
                self.must_unjudged
            ));
        }
        if self.must_not_run > 0 {
            // Each named with why: a browser row, or the soak without --soak.
            let named: Vec<String> = self
                .cases
                .iter()
                .filter(|c| not_run_must(c))
                .map(|c| match c.info.wait {
                    Wait::Soak => format!("{}: the soak, without --soak", c.info.id),
                    _ => format!("{}: a browser row", c.info.id),
                })
                .collect();
            line.push_str(&format!(
                "; {} MUST case(s) not run ({})",
                self.must_not_run,
                named.join("; ")
            ));
        }
        line
    }

    /// "client tv (public, no secret), approver: ...": the header line, in words;
    /// "(client_secret_basic, secret from DEVICEFLOW_CLIENT_SECRET)" when the secret
    /// came from the environment.
    pub fn client_line(&self) -> String {
        format!(
            "client {} ({}), approver: {}",
            self.target.client_id,
            self.client_auth_words(),
            self.approver
        )
    }

    /// How the client authenticates, and where its secret came from when not the
    /// command line.
    pub fn client_auth_words(&self) -> String {
        let method = self.target.client_auth.as_str();
        match self.target.client_secret_from {
            Some(var) => format!("{method}, secret from {var}"),
            None => method.to_owned(),
        }
    }
}

/// Groups cases by checklist section, in order of first appearance.
pub(crate) fn by_group(cases: &[CaseReport]) -> Vec<(&'static str, Vec<&CaseReport>)> {
    let mut groups: Vec<(&'static str, Vec<&CaseReport>)> = Vec::new();
    for c in cases {
        match groups.iter_mut().find(|(g, _)| *g == c.info.group) {
            Some((_, v)) => v.push(c),
            None => groups.push((c.info.group, vec![c])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A MUST case skipped over the `--max-wait` budget (EX-01 against a server whose
    /// codes live 1800 s, under the default 90 s) is not judged: the run exited 0,
    /// "every MUST held" (helper-86). A browser row or the soak without `--soak` is not
    /// run by this suite at all: counted apart, not in the exit code.
    #[test]
    fn a_must_skipped_for_the_runs_budget_is_unjudged_and_a_browser_row_not_run() {
        let info = |id: &str| {
            crate::cases::all()
                .into_iter()
                .find(|c| c.info.id == id)
                .expect(id)
                .info
        };
        let skipped = |id: &str, why: &str| {
            let i = info(id);
            CaseReport::new(
                i,
                crate::case::Check::new(i.level).skip(Status::Skip, why),
                0,
            )
        };
        let budget = skipped(
            "EX-01",
            "waits past expires_in (1800 s), about 30 min: over the --max-wait budget (90 s)",
        );
        assert!(matches!(budget.info.level, Level::Must));
        assert!(unjudged_must(&budget) && !not_run_must(&budget));
        let samples = skipped(
            "EX-01",
            "only 3 of 20 sample device authorizations succeeded",
        );
        assert!(unjudged_must(&samples));
        // By the case's kind, whatever its words: a browser row, the soak off or over
        // its budget (helper-87: the budget counted as not judged, exit 4, with nothing
        // the user could change).
        for (id, why) in [
            ("UI-14", "needs the verification pages driven as a person"),
            ("PL-04", "a soak of several minutes: enable with --soak"),
            (
                "PL-04",
                "the soak's 40 polls at the server's interval (46 s) take 31 min",
            ),
        ] {
            let c = skipped(id, why);
            assert!(
                matches!(c.info.level, Level::Must | Level::DerivedMust),
                "{id}"
            );
            assert!(not_run_must(&c) && !unjudged_must(&c), "{id}: {why}");
        }
    }

    /// `hostile_server.py huge`: a 60 KB `Pragma` and `Content-Security-Policy` on
    /// every answer made report.json 10.6 MB (327 header values kept whole, where the
    /// bodies beside them were cut), and DR-06 measured a 307 KB `interval` whole.
    #[test]
    fn response_headers_and_measured_values_are_cut_as_bodies_are() {
        let info = crate::cases::all()
            .into_iter()
            .find(|c| c.info.id == "DR-06")
            .expect("DR-06")
            .info;
        let header = "p".repeat(60_000);
        let mut e = crate::http::tests::answered(b"{}".to_vec());
        if let Some(response) = &mut e.response {
            response.headers = vec![
                ("pragma".into(), header.clone()),
                ("content-type".into(), "application/json".into()),
            ];
        }
        let mut verdict = Verdict::inconclusive("a test");
        verdict.evidence = vec![e; 3];
        let interval = "9".repeat(300_000);
        let measured = &mut verdict.measured;
        measured.insert("interval".into(), json!(interval));
        measured.insert("alphabet".into(), json!(vec!["ab"; 100_000]));
        measured.insert("scope".into(), json!(["openid", "tv"]));
        measured.insert("samples".into(), json!(4));
        let r = CaseReport::new(info, verdict, 0);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.len() < 10 * FINDING_CHARS, "{} bytes", json.len());
        for e in &r.verdict.evidence {
            let headers = &e.response.as_ref().unwrap().headers;
            assert_eq!(headers[0].1, clip(&header, FINDING_CHARS));
            assert!(headers[0].1.ends_with("p… (57952 more characters)"));
            assert_eq!(headers[1].1, "application/json");
        }
        let measured = &r.verdict.measured;
        assert_eq!(
            measured["interval"],
            clip(&interval, FINDING_CHARS).as_str()
        );
        let alphabet = measured["alphabet"].as_str().expect("cut as its JSON text");
        assert!(alphabet.starts_with(r#"["ab","ab","#), "{alphabet}");
        assert!(alphabet.ends_with(" more characters)"), "{alphabet}");
        // What is short is kept as it is, of whatever type.
        assert_eq!(measured["scope"], json!(["openid", "tv"]));
        assert_eq!(measured["samples"], Value::from(4));
    }

    /// `hostile_server.py clipbomb`: a `verification_uri` ending in the reports' own
    /// clip mark with a count of 2^64 - 1 overflowed where this clips the request's
    /// URL: the debug build exited 101 and wrote no report.
    #[test]
    fn a_server_text_ending_in_a_forged_clip_mark_is_cut_as_text() {
        let info = crate::cases::all()[0].info;
        let mut e = crate::http::tests::answered(b"{}".to_vec());
        let mark = "… (18446744073709551615 more characters)";
        e.request.url = format!("http://127.0.0.1:1/verify?{}{mark}", "E".repeat(2100));
        let mut verdict = Verdict::inconclusive("a test");
        verdict.evidence = vec![e];
        let r = CaseReport::new(info, verdict, 0);
        let url = &r.verdict.evidence[0].request.url;
        let more = 2100 + "http://127.0.0.1:1/verify?".len() + mark.chars().count() - FINDING_CHARS;
        assert!(
            url.ends_with(&format!("E… ({more} more characters)")),
            "{url}"
        );
    }
}
