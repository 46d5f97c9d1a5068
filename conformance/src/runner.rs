//! Runs the selected cases against a target: decides what cannot run (and says why),
//! runs the rest concurrently, each with its own device code, and never hangs or
//! crashes on a broken server.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;

use crate::approver::Approver;
use crate::case::{Case, CaseInfo, Check, Human, Level, Status, Verdict, Wait};
use crate::cases;
use crate::context::{parse_authorization, Ctx, Options, Preflight};
use crate::progress::Progress;
use crate::report::{CaseReport, Report};
use crate::target::Target;

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

/// One device authorization before the cases, to learn the interval and lifetime.
pub async fn preflight(ctx_target: &Target, http: &crate::http::Http) -> Preflight {
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
    match parse_authorization(e) {
        Ok(a) => Preflight {
            interval_secs: a.interval,
            interval_present,
            expires_in: a.expires_in,
            error: None,
        },
        Err(e) => Preflight {
            interval_secs: deviceflow_wire::DEFAULT_INTERVAL_SECS,
            interval_present: false,
            expires_in: None,
            error: Some(e.brief()),
        },
    }
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
    let pre = preflight(&target, &http).await;
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
    let mut tasks = Vec::new();
    for case in selected {
        if let Some((status, why)) = cannot_run(&case.info, &ctx.approver, &options, &pre) {
            let verdict = Check::new(case.info.level).skip(status, why);
            tasks.push((case.info, Err(CaseReport::new(case.info, verdict, 0))));
            continue;
        }
        let ctx = ctx.clone();
        let slots = Arc::clone(&slots);
        let handle = tokio::spawn(async move {
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
        });
        tasks.push((case.info, Ok(handle)));
    }
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
    Report::new(&ctx, pre, started_at, started.elapsed(), reports)
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
