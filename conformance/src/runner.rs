//! Runs the selected cases against a target: decides what cannot run (and says why),
//! runs the rest concurrently, each with its own device code, and never hangs or
//! crashes on a broken server.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::approver::Approver;
use crate::case::{Case, CaseInfo, Check, Human, Level, Status, Verdict, Wait};
use crate::cases;
use crate::context::{parse_authorization, Ctx, Options, Preflight};
use crate::http::Exchange;
use crate::progress::Progress;
use crate::report::{CaseReport, Report};
use crate::target::{RootCause, Target};

/// Which cases run: `--only` and `--skip` patterns, each an id (`TS-08`), an id prefix
/// (`PL`), a checklist section (`A.6`) or a slug prefix (`rfc8628/3.5`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl Selection {
    pub fn matches(pattern: &str, info: &CaseInfo) -> bool {
        let p = pattern.trim();
        p.eq_ignore_ascii_case(info.id)
            || p == info.group
            || info.slug.starts_with(p)
            || (info.id.len() > p.len()
                && info.id[..p.len()].eq_ignore_ascii_case(p)
                && info.id.as_bytes()[p.len()] == b'-')
    }

    pub fn selects(&self, info: &CaseInfo) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| Selection::matches(p, info)))
            && !self.skip.iter().any(|p| Selection::matches(p, info))
    }

    /// Patterns that select nothing: almost certainly typos.
    pub fn unknown_patterns(&self) -> Vec<String> {
        let all = cases::all();
        self.only
            .iter()
            .chain(&self.skip)
            .filter(|p| !all.iter().any(|c| Selection::matches(p, &c.info)))
            .cloned()
            .collect()
    }
}

/// One device authorization before the cases, to learn the interval and lifetime, and
/// whether the target can be tested at all.
pub async fn preflight(
    ctx_target: &Target,
    http: &crate::http::Http,
) -> (Preflight, Option<RootCause>) {
    let mut params = Vec::new();
    if let Some(s) = &ctx_target.scope {
        params.push(("scope", s.as_str()));
    }
    let e = http
        .post_form(
            "preflight device authorization",
            &ctx_target.device_authorization_endpoint,
            Some(&ctx_target.client),
            &params,
        )
        .await;
    let interval_present = e
        .json()
        .value
        .as_ref()
        .and_then(|v| v.get("interval"))
        .is_some();
    let cause = root_cause(&e, &ctx_target.client.id);
    match parse_authorization(e) {
        Ok(a) => (
            Preflight {
                interval_secs: a.interval,
                interval_present,
                expires_in: a.expires_in,
                error: None,
            },
            cause,
        ),
        Err(e) => (
            Preflight {
                interval_secs: deviceflow_wire::DEFAULT_INTERVAL_SECS,
                interval_present: false,
                expires_in: None,
                error: Some(e.brief()),
            },
            cause.or_else(|| {
                Some(RootCause {
                    case: Some("DA-01"),
                    summary: format!("the device authorization failed: {}", e.brief()),
                    evidence: vec![*e],
                })
            }),
        ),
    }
}

/// Why the preflight device authorization `e` stops the run, if it does: every case
/// needs a device authorization (or an endpoint that is one), so a failure here is
/// said once, as its root cause, instead of as dozens of consequent failures.
pub fn root_cause(e: &Exchange, client_id: &str) -> Option<RootCause> {
    let url = &e.request.url;
    let not_testable = |summary: String| root_cause_of(e, None, summary);
    let finding = |case: &'static str, summary: String| root_cause_of(e, Some(case), summary);
    let Some(status) = e.status() else {
        return not_testable(format!(
            "cannot reach the device authorization endpoint {url}: {}",
            e.error.as_deref().unwrap_or("no response")
        ));
    };
    let json = e.json();
    let object = json.value.as_ref().and_then(|v| v.as_object());
    let content_type = e.header("content-type").unwrap_or("no Content-Type");
    if matches!(status, 404 | 405 | 501) {
        return not_testable(format!(
            "POST {url} answered HTTP {status}: it is not a device authorization endpoint (check --issuer or --device-authorization-endpoint)"
        ));
    }
    if status >= 500 {
        // RFC 6749 §5.2: a request the server cannot serve is still answered as an
        // OAuth error; a 5xx to a valid request is the server's failure.
        return finding(
            "DA-01",
            format!(
                "the device authorization endpoint fails a valid request: {}",
                e.brief()
            ),
        );
    }
    let Some(object) = object else {
        return if (200..300).contains(&status) && json.value.is_some() {
            finding(
                "DR-01",
                format!(
                    "the device authorization response is not a JSON object: {}",
                    e.brief()
                ),
            )
        } else {
            not_testable(format!(
                "POST {url} answered HTTP {status} {content_type}, not JSON: not an OAuth endpoint (check --issuer or --device-authorization-endpoint)"
            ))
        };
    };
    if status >= 400 {
        let code = object
            .get("error")
            .and_then(|v| v.as_str())
            .unwrap_or("an error");
        return not_testable(format!(
            "the server refused the device authorization of client {client_id:?} with {code} (HTTP {status}): check --client-id, --client-secret and --scope"
        ));
    }
    incomplete_response(e, object, status)
}

/// A root cause shown by `e` alone: a finding of `case`, or (`None`) why nothing can
/// be tested.
fn root_cause_of(e: &Exchange, case: Option<&'static str>, summary: String) -> Option<RootCause> {
    Some(RootCause {
        case,
        summary,
        evidence: vec![e.clone()],
    })
}

/// RFC 8628 §3.2: a successful device authorization `object` that lacks a REQUIRED
/// member, or came with a status other than 200.
fn incomplete_response(
    e: &Exchange,
    object: &serde_json::Map<String, serde_json::Value>,
    status: u16,
) -> Option<RootCause> {
    let present = |k: &str| {
        object
            .get(k)
            .and_then(|v| v.as_str())
            .is_some_and(|s| !s.is_empty())
    };
    // RFC 8628 §3.2: device_code, user_code and verification_uri are REQUIRED.
    for (member, case) in [
        ("device_code", "DR-02"),
        ("user_code", "DR-03"),
        ("verification_uri", "DR-04"),
    ] {
        let alias = member == "verification_uri" && present("verification_url");
        if !present(member) && !alias {
            return root_cause_of(
                e,
                Some(case),
                format!(
                    "the device authorization response has no {member}, so no flow can start: {}",
                    e.brief()
                ),
            );
        }
    }
    if status != 200 {
        return root_cause_of(
            e,
            Some("DA-01"),
            format!(
                "a valid device authorization answered HTTP {status}, not 200: {}",
                e.brief()
            ),
        );
    }
    None
}

/// Why a case cannot run here, if it cannot.
fn cannot_run(
    info: &CaseInfo,
    approver: &Approver,
    options: &Options,
    pre: &Preflight,
) -> Option<(Status, String)> {
    match info.human {
        Human::Browser => {
            return Some((
                Status::Skip,
                "needs the verification pages driven as a person (sign in, type the code), beyond the approver interface".into(),
            ))
        }
        Human::Approve | Human::Deny if !approver.is_available() => {
            return Some((Status::Skip, "needs an approver (--approver admin|command|manual)".into()))
        }
        _ => {}
    }
    match info.wait {
        Wait::Soak if !options.soak => Some((
            Status::Skip,
            "a soak of several minutes: enable with --soak".into(),
        )),
        Wait::Expiry => match pre.expires_in {
            None => Some((
                Status::Skip,
                "expires_in is unknown (the preflight authorization failed)".into(),
            )),
            Some(n) if Duration::from_secs(n + 15) > options.max_wait => Some((
                Status::Skip,
                format!(
                    "waits past expires_in ({n} s), over the --max-wait budget ({} s)",
                    options.max_wait.as_secs()
                ),
            )),
            _ => None,
        },
        _ => None,
    }
}

/// Runs `selection` of the cases against `target`.
pub async fn run(
    target: Target,
    approver: Approver,
    options: Options,
    selection: &Selection,
    quiet: bool,
) -> Report {
    let started = Instant::now();
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let progress = Progress::new(quiet);
    let http = crate::http::Http::new(options.request_timeout);
    let (pre, cause) = match target.root_cause.clone() {
        Some(cause) => (Preflight::not_run(&cause.summary), Some(cause)),
        None => preflight(&target, &http).await,
    };
    match &pre.error {
        None => progress.note(
            "preflight",
            &format!(
                "interval {} s, expires_in {:?} s",
                pre.interval_secs, pre.expires_in
            ),
        ),
        Some(e) => progress.note("preflight", &format!("device authorization failed: {e}")),
    }
    let ctx = Ctx::new(
        target,
        approver,
        options.clone(),
        pre.clone(),
        progress.clone(),
    );
    // Every case holds its slot while it sleeps; sleeping is cheap, so the limit only
    // bounds how many device codes are in flight at once.
    let slots = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let case_timeout = options.max_wait * 2 + Duration::from_secs(120);
    let selected: Vec<Case> = cases::all()
        .into_iter()
        .filter(|c| selection.selects(&c.info))
        .collect();
    if let Some(cause) = cause {
        progress.note("root cause", &cause.summary);
        let reports = blocked(&cause, &options, selected);
        return Report::new(&ctx, pre, started_at, started.elapsed(), reports)
            .with_root_cause(cause);
    }
    let mut tasks = Vec::new();
    for case in selected {
        let mut case = case;
        case.info.level = options.level_for(case.info.id, case.info.level);
        if let Some((status, why)) = cannot_run(&case.info, &ctx.approver, &options, &pre) {
            let verdict = Check::new(case.info.level).skip(status, why);
            tasks.push((case.info, Err(CaseReport::new(case.info, verdict, 0))));
            continue;
        }
        let handle = spawn_case(case, ctx.clone(), Arc::clone(&slots), case_timeout);
        tasks.push((case.info, Ok(handle)));
    }
    let reports = gather(tasks).await;
    Report::new(&ctx, pre, started_at, started.elapsed(), reports)
}

/// A case started (or skipped before it could start) by [`run`].
type Task = (
    CaseInfo,
    Result<JoinHandle<(Verdict, Duration)>, CaseReport>,
);

/// Runs `case` once a slot is free, within `case_timeout`; its verdict and how long it
/// took.
fn spawn_case(
    case: Case,
    ctx: Ctx,
    slots: Arc<Semaphore>,
    case_timeout: Duration,
) -> JoinHandle<(Verdict, Duration)> {
    tokio::spawn(async move {
        let _slot = slots.acquire_owned().await;
        let t = Instant::now();
        let verdict = match tokio::time::timeout(case_timeout, (case.run)(ctx.clone())).await {
            Ok(v) => v,
            Err(_) => Verdict {
                status: case.info.level.on_violation().max(Status::Warn),
                summary: format!(
                    "the case did not finish within {} s",
                    case_timeout.as_secs()
                ),
                checks: vec![],
                measured: Default::default(),
                evidence: vec![],
            },
        };
        ctx.progress
            .finished(case.info.id, verdict.status.as_str(), &verdict.summary);
        (verdict, t.elapsed())
    })
}

/// Every task's report, in the order the cases were started: a crashed case is a
/// suite bug, reported as a failure.
async fn gather(tasks: Vec<Task>) -> Vec<CaseReport> {
    let mut reports = Vec::new();
    for (info, task) in tasks {
        let report = match task {
            Err(skipped) => skipped,
            Ok(handle) => match handle.await {
                Ok((verdict, took)) => CaseReport::new(info, verdict, took.as_millis() as u64),
                Err(e) => {
                    let verdict = Check::new(Level::Must)
                        .skip(Status::Fail, format!("the case crashed (a suite bug): {e}"));
                    CaseReport::new(info, verdict, 0)
                }
            },
        };
        reports.push(report);
    }
    reports
}

/// The reports of a run stopped by `cause`: its case (selected or not) fails with the
/// evidence, every other case is not run, and says so in a few words.
fn blocked(cause: &RootCause, options: &Options, selected: Vec<Case>) -> Vec<CaseReport> {
    let mut reports = Vec::new();
    if let Some(id) = cause.case {
        if !selected.iter().any(|c| c.info.id == id) {
            if let Some(c) = cases::all().into_iter().find(|c| c.info.id == id) {
                reports.push(c);
            }
        }
    }
    reports.extend(selected);
    reports
        .into_iter()
        .map(|case| {
            let mut info = case.info;
            info.level = options.level_for(info.id, info.level);
            let verdict = if cause.case == Some(info.id) {
                let mut c = Check::new(info.level);
                for e in &cause.evidence {
                    c.evidence(e.clone());
                }
                c.expect(false, cause.summary.clone());
                c.finish("")
            } else {
                Check::new(info.level).skip(Status::Skip, "not run: see the root cause")
            };
            CaseReport::new(info, verdict, 0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &'static str, group: &'static str, slug: &'static str) -> CaseInfo {
        CaseInfo {
            id,
            slug,
            group,
            rfc: "RFC 8628 §3.5",
            level: Level::Must,
            title: "",
            human: Human::None,
            wait: Wait::None,
        }
    }

    #[test]
    fn patterns_match_ids_prefixes_sections_and_slugs() {
        let i = info("PL-02", "A.6", "rfc8628/3.5/compliant-client-never-slowed");
        for p in ["PL-02", "pl-02", "PL", "A.6", "rfc8628/3.5"] {
            assert!(Selection::matches(p, &i), "{p}");
        }
        for p in ["PL-0", "P", "A.1", "TS", "rfc8628/3.4"] {
            assert!(!Selection::matches(p, &i), "{p}");
        }
        let s = Selection {
            only: vec!["A.6".into()],
            skip: vec!["PL-02".into()],
        };
        assert!(!s.selects(&i));
        assert!(s.selects(&info("PL-03", "A.6", "x")));
        assert!(!s.selects(&info("TS-01", "A.5", "y")));
    }

    #[test]
    fn unknown_patterns_are_reported() {
        let s = Selection {
            only: vec!["TS-08".into(), "XX-99".into()],
            skip: vec![],
        };
        assert_eq!(s.unknown_patterns(), ["XX-99"]);
    }
}
