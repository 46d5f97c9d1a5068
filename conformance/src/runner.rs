//! Runs the selected cases against a target: decides what cannot run (and says why),
//! runs the rest concurrently, each with its own device code, and never hangs or
//! crashes on a broken server.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::approver::Approver;
use crate::case::{Case, CaseInfo, Check, Human, Status, Verdict, Wait};
use crate::cases;
use crate::context::{compliant_wait, parse_authorization, Ctx, Options, Preflight};
use crate::http::Exchange;
use crate::progress::Progress;
use crate::report::{CaseReport, Report, Signal};
use crate::target::{RootCause, Target};

/// Which cases run: `--only` and `--skip` patterns, each an id (`TS-08`), an id prefix
/// (`PL`, `TS-1`: TS-10, TS-11, TS-12), a checklist section (`A.6`) or a slug prefix
/// (`rfc8628/3.5`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl Selection {
    /// An empty pattern matches nothing (every slug starts with it; see
    /// [`Selection::empty_patterns`]).
    pub fn matches(pattern: &str, info: &CaseInfo) -> bool {
        let p = pattern.trim();
        if p.is_empty() {
            return false;
        }
        // Any prefix of an id, in any case, as --help says: `PL`, `PL-0`, `TS-1`.
        let id_prefix = info
            .id
            .get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p));
        id_prefix || p == info.group || info.slug.starts_with(p)
    }

    pub fn selects(&self, info: &CaseInfo) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| Selection::matches(p, info)))
            && !self.skip.iter().any(|p| Selection::matches(p, info))
    }

    /// Whether a pattern is empty or blank: a stray comma (`--only TS-08,`) or `""`,
    /// which as a slug prefix would have selected (or skipped) every case.
    pub fn empty_patterns(&self) -> bool {
        self.only
            .iter()
            .chain(&self.skip)
            .any(|p| p.trim().is_empty())
    }

    /// Why this selection leaves no case that could check anything, if it does: every
    /// case unselected (`--only DA-01 --skip DA-01`, `--skip rfc`), or only cases that
    /// never run here (the browser-only rows; the soak without `--soak`). A run of
    /// nothing prints 0 fail and exits 0, and a CI gate on it passes having checked
    /// nothing. `soak`: `--soak`.
    pub fn leaves_nothing(&self, soak: bool) -> Option<String> {
        let all = cases::all();
        let selected: Vec<&Case> = all.iter().filter(|c| self.selects(&c.info)).collect();
        let flags = || {
            let list = |name: &str, v: &[String]| {
                (!v.is_empty()).then(|| format!("{name} {}", v.join(",")))
            };
            [list("--only", &self.only), list("--skip", &self.skip)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" with ")
        };
        if selected.is_empty() {
            return Some(format!(
                "{} leaves no case to run: nothing would be checked",
                flags()
            ));
        }
        let runs_here =
            |c: &Case| c.info.human != Human::Browser && (soak || c.info.wait != Wait::Soak);
        if !selected.iter().any(|c| runs_here(c)) {
            let ids: Vec<&str> = selected.iter().map(|c| c.info.id).collect();
            return Some(format!(
                "{} selects only {}, which never run here (they need the verification pages driven by a browser, or --soak): nothing would be checked",
                flags(),
                ids.join(", ")
            ));
        }
        None
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
    let cause = root_cause(&e, &ctx_target.client.id, ctx_target.client_secret_from);
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
                    warns: false,
                })
            }),
        ),
    }
}

/// Why the preflight device authorization `e` stops the run, if it does: every case
/// needs a device authorization (or an endpoint that is one), so a failure here is
/// said once, as its root cause, instead of as dozens of consequent failures.
/// `secret_from`: the environment variable the client's secret came from, if it did
/// (named where the server refuses the client).
pub fn root_cause(e: &Exchange, client_id: &str, secret_from: Option<&str>) -> Option<RootCause> {
    let url = &e.request.url;
    let not_testable = |summary: String| root_cause_of(e, None, summary);
    let finding = |case: &'static str, summary: String| root_cause_of(e, Some(case), summary);
    if let Some(why) = e.not_connected() {
        return not_testable(format!(
            "the suite did not connect to the device authorization endpoint {url}: {why}"
        ));
    }
    if let Some(why) = e.still_rate_limited() {
        // RFC 8628 §5.1 recommends rate limiting: a 429 or 503 that outlasts the retries
        // is no finding, but no case can run without a device authorization.
        return not_testable(format!(
            "the device authorization endpoint {url} is rate limited: {why}; run again later, or with a lower --concurrency"
        ));
    }
    let Some(status) = e.status() else {
        let error = e.error.as_deref().unwrap_or("no response");
        // A connection that failed is "cannot reach"; one that answered and broke off
        // (a body cut short, a reset mid-answer) did reach the server.
        let what = if error.starts_with("connection failed") {
            "cannot reach"
        } else {
            "no complete answer from"
        };
        let hint = crate::http::diagnose::tls_hint(url, error);
        return not_testable(format!(
            "{what} the device authorization endpoint {url}: {error}{hint}"
        ));
    };
    let json = e.json();
    let object = json.value.as_ref().and_then(|v| v.as_object());
    let content_type = e.header("content-type").unwrap_or("no Content-Type");
    if (300..400).contains(&status) {
        // The suite follows no redirect: a POST carrying a client's credentials is not
        // resent to wherever a server points (RFC 9110 §15.4), and the endpoint under
        // test is the one given or advertised. Say where it points, not "not OAuth".
        let to = e
            .response
            .as_ref()
            .and_then(|r| r.headers.iter().find(|(k, _)| k == "location"))
            .map_or("nowhere (no Location)".to_owned(), |(_, v)| {
                format!("{v:?}")
            });
        return not_testable(format!(
            "POST {url} answered HTTP {status}, a redirect to {to}, which the suite does not follow: give the endpoint it means with --device-authorization-endpoint (and fix the metadata, if it advertises this one)"
        ));
    }
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
    if e.body_over_limit() {
        // RFC 8628 §3.2 (a success is a small JSON object) and RFC 6749 §5.2 (so is an
        // error): a body past the limit is the server's finding, said as too large, never
        // read as "not JSON, not an OAuth endpoint" (the suite stopped reading it).
        let case = if status < 300 { "DR-01" } else { "DR-12" };
        return finding(
            case,
            format!(
                "the device authorization endpoint answered a valid request with a body larger than 1 MiB: {}",
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
        } else if (200..300).contains(&status) && e.is_json_media_type() {
            // RFC 8628 §3.2: a success says it is JSON and is not (cut short, broken):
            // the server's finding, not "not an OAuth endpoint".
            finding(
                "DR-01",
                format!(
                    "the device authorization response is application/json but {}: {}",
                    json.problem.as_deref().unwrap_or("not JSON"),
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
        let secret = match secret_from {
            Some(var) => format!(
                "the secret in {var} (the client's secret came from it: unset it, or give --client-secret \"\" for a public client)"
            ),
            None => "--client-secret".to_owned(),
        };
        return not_testable(format!(
            "the server refused the device authorization of client {client_id:?} with {code} (HTTP {status}): check --client-id, {secret} and --scope"
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
        warns: false,
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
                match object.get(member) {
                    // RFC 8628 §3.2: the codes are strings; a number is one no client
                    // can send back as it came.
                    Some(v) => format!(
                        "the device authorization response's {member} is not a non-empty string (got {v}), so no flow can start: {}",
                        e.brief()
                    ),
                    None => format!(
                        "the device authorization response has no {member}, so no flow can start: {}",
                        e.brief()
                    ),
                },
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

/// The soak's polls (PL-04) and the longest the soak may take: it runs only when asked
/// for (`--soak`), so its budget is its own, not `--max-wait`.
const SOAK_POLLS: u32 = 40;
const SOAK_BUDGET: Duration = Duration::from_secs(30 * 60);
/// What an expiry case waits past `expires_in`, at most (EX-01: 3 s, a margin for the
/// requests around it).
const EXPIRY_MARGIN: Duration = Duration::from_secs(15);

/// How long `info`'s case waits in all against the server `pre` describes: its waits at
/// the interval (`interval + 5·k` plus the margin each), and past `expires_in` for an
/// expiry case. Every number here is the server's, so the sums saturate.
fn planned_wait(info: &CaseInfo, options: &Options, pre: &Preflight) -> Duration {
    let at_interval = |k: u64| compliant_wait(pre.interval_secs, k, options.poll_margin);
    let mut total = info
        .interval_waits
        .iter()
        .fold(Duration::ZERO, |t, &k| t.saturating_add(at_interval(k)));
    match info.wait {
        Wait::Soak => {
            total = total.saturating_add(at_interval(0).saturating_mul(SOAK_POLLS - 1));
        }
        Wait::Expiry => {
            let life = Duration::from_secs(pre.expires_in.unwrap_or(0));
            total = total.saturating_add(life.saturating_add(EXPIRY_MARGIN));
        }
        Wait::None | Wait::Interval => {}
    }
    total
}

/// How long the runner lets a case run before it gives up on it (its guard): the waits
/// it plans, twice `--max-wait` for the rest (polls until a token, approvers), and two
/// minutes of requests. Saturating: nothing here may overflow.
fn case_timeout(options: &Options, planned: Duration) -> Duration {
    planned
        .saturating_add(options.max_wait.saturating_mul(2))
        .saturating_add(Duration::from_secs(120))
}

/// Seconds, for people: `60.5 s`, or "more than a day" for a server's absurd number.
fn secs(d: Duration) -> String {
    if d > Duration::from_secs(86_400 * 365) {
        "more than a year".to_owned()
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Why a case cannot run here, if it cannot. `approver_problem`: why the approver
/// was found not to work before the run, if it was.
fn cannot_run(
    info: &CaseInfo,
    approver: &Approver,
    approver_problem: Option<&str>,
    options: &Options,
    pre: &Preflight,
) -> Option<(Status, String)> {
    match info.human {
        Human::Browser => {
            return Some((
                Status::Skip,
                format!(
                    "{} (sign in, type the code), beyond the approver interface",
                    crate::case::BROWSER_ONLY
                ),
            ))
        }
        Human::Approve | Human::Deny if !approver.is_available() => {
            return Some((
                Status::Skip,
                format!(
                    "{} (--approver admin|command|manual)",
                    crate::case::NEEDS_APPROVER
                ),
            ))
        }
        Human::Approve | Human::Deny => {
            if let Some(problem) = approver_problem {
                return Some((
                    Status::Skip,
                    format!(
                        "{} the approver does not work: {problem}",
                        crate::case::INCONCLUSIVE
                    ),
                ));
            }
        }
        Human::None => {}
    }
    let planned = planned_wait(info, options, pre);
    let interval = format!(
        "the server's interval ({} s{})",
        pre.interval_secs,
        if pre.interval_present {
            ""
        } else {
            ", the default"
        }
    );
    let waits = info.interval_waits.len();
    match info.wait {
        Wait::Soak if !options.soak => Some((
            Status::Skip,
            format!("{}: enable with --soak", crate::case::SOAK_OFF),
        )),
        Wait::Soak if planned > SOAK_BUDGET => Some((
            Status::Skip,
            format!(
                "the soak's {SOAK_POLLS} polls at {interval} take {}, over the soak's budget of {} min",
                secs(planned),
                SOAK_BUDGET.as_secs() / 60
            ),
        )),
        Wait::Soak => None,
        Wait::Expiry => match pre.expires_in {
            None if pre.error.is_none() => Some((
                Status::Skip,
                "the server's device authorization gave no expires_in, or none above 0 (see DR-05): there is no lifetime to wait past".into(),
            )),
            None => Some((
                Status::Skip,
                "expires_in is unknown (the preflight authorization failed)".into(),
            )),
            Some(n) if planned > options.max_wait => Some((
                Status::Skip,
                format!(
                    "waits past expires_in ({n} s){}, about {}: over the --max-wait budget ({} s)",
                    if waits > 0 {
                        format!(" and {waits} polls at {interval}")
                    } else {
                        String::new()
                    },
                    secs(planned),
                    options.max_wait.as_secs()
                ),
            )),
            Some(_) => None,
        },
        Wait::None | Wait::Interval if planned > options.max_wait => Some((
            Status::Skip,
            format!(
                "needs {waits} wait(s) at {interval} plus {} ms of margin, about {}: over the --max-wait budget ({} s); raise --max-wait to run it",
                options.poll_margin.as_millis(),
                secs(planned),
                options.max_wait.as_secs()
            ),
        )),
        Wait::None | Wait::Interval => None,
    }
}

/// Checks, before the cases, that the approver can work at all, with a request that
/// decides nothing; why it cannot, if it cannot. The admin endpoint is sent a
/// decision without a user code: a working endpoint refuses it as a bad request, a
/// wrong token gets 401/403, a wrong URL 404/405 or no answer. A command's program
/// must exist. (A person at the keyboard is not checked.)
pub async fn check_approver(approver: &Approver) -> Option<String> {
    match approver {
        Approver::None | Approver::Manual { .. } => None,
        Approver::Admin {
            url,
            token,
            token_from,
            http,
            ..
        } => {
            let e = http
                .send(crate::http::Request {
                    label: "approver check (a decision without a user code)",
                    method: reqwest::Method::POST,
                    url,
                    content_type: Some("application/x-www-form-urlencoded"),
                    headers: vec![("authorization".to_owned(), format!("Bearer {token}"))],
                    body: Some(crate::http::form(&[("action", "deny")])),
                })
                .await;
            match e.status() {
                None => Some(format!(
                    "cannot reach the admin endpoint {url}: {}",
                    e.error.as_deref().unwrap_or("no response")
                )),
                Some(s @ (401 | 403)) => Some(match token_from {
                    // Named: the person gave no --admin-token, and would look for
                    // the typo on the command line.
                    Some(var) => format!(
                        "the admin endpoint {url} refused the admin token (HTTP {s}): it came from {var}; check that variable, or give --admin-token"
                    ),
                    None => format!(
                        "the admin endpoint {url} refused the admin token (HTTP {s}): check --admin-token"
                    ),
                }),
                Some(s @ (404 | 405)) => Some(format!(
                    "{url} answered HTTP {s}: not an admin decision endpoint (check --admin-url, and that the server has an admin token)"
                )),
                Some(_) => None,
            }
        }
        Approver::Command { argv, .. } => {
            let program = argv.first()?;
            (!program_exists(program)).then(|| {
                format!("the approver command's program {program:?} is not found (on PATH, or as a path)")
            })
        }
    }
}

/// Whether `program` names a file that can be run: a path as given, or a name found
/// on `PATH`, as `Command` looks it up.
fn program_exists(program: &str) -> bool {
    let path = std::path::Path::new(program);
    if path.components().count() > 1 {
        return path.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Runs `selection` of the cases against `target`.
pub async fn run(
    target: Target,
    approver: Approver,
    options: Options,
    selection: &Selection,
    quiet: bool,
) -> Report {
    run_until(
        target,
        approver,
        options,
        selection,
        quiet,
        std::future::pending(),
    )
    .await
}

/// [`run`], stopped when `stop` resolves (a signal: Ctrl-C, a CI job cancelled): the
/// cases that finished keep their verdicts, those that had not are inconclusive,
/// saying the run was interrupted, and the report says it is partial
/// ([`Report::interrupted`]), so that what ran is kept, and never read as a whole run.
pub async fn run_until(
    target: Target,
    approver: Approver,
    options: Options,
    selection: &Selection,
    quiet: bool,
    stop: impl Future<Output = Signal>,
) -> Report {
    let mut stop = std::pin::pin!(stop);
    let started = Instant::now();
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let progress = Progress::new(quiet);
    // The preflight waits out a rate limit as every case's requests do (RFC 6585 §4).
    let http = crate::http::Http::new(options.request_timeout, target.reach.clone()).retrying(
        crate::http::Retry {
            retries: crate::http::RETRIES,
            min_wait: Duration::ZERO,
            budget: options.max_wait,
            progress: Some(progress.clone()),
        },
    );
    let selected: Vec<Case> = cases::all()
        .into_iter()
        .filter(|c| selection.selects(&c.info))
        .collect();
    let needs_approver = selected
        .iter()
        .any(|c| matches!(c.info.human, Human::Approve | Human::Deny));
    // Before the cases: the preflight, then the approver's check.
    let before = async {
        let (pre, cause) = match target.root_cause.clone() {
            Some(cause) => (Preflight::not_run(&cause.summary), Some(cause)),
            None => {
                let (pre, cause) = preflight(&target, &http).await;
                let cause = match cause {
                    Some(c) => Some(no_answer(c, &target.reach, options.request_timeout).await),
                    None => None,
                };
                (pre, cause)
            }
        };
        match &pre.error {
            None => progress.note(
                "preflight",
                &format!(
                    "interval {} s, expires_in {}",
                    pre.interval_secs,
                    pre.expires_in
                        .map_or("not given".to_owned(), |n| format!("{n} s"))
                ),
            ),
            Some(e) => progress.note("preflight", &format!("device authorization failed: {e}")),
        }
        let approver_problem = if cause.is_none() && needs_approver {
            check_approver(&approver).await
        } else {
            None
        };
        (pre, cause, approver_problem)
    };
    let before = tokio::select! {
        biased;
        signal = &mut stop => Err(signal),
        done = before => Ok(done),
    };
    let (pre, cause, approver_problem) = match before {
        Ok(done) => done,
        Err(signal) => {
            progress.note(
                "interrupted",
                &format!("{} before the cases started", signal.name()),
            );
            let pre = Preflight::not_run("the run was interrupted before the preflight finished");
            let ctx = Ctx::new(target, approver, options.clone(), pre.clone(), progress);
            let reports: Vec<CaseReport> = selected
                .into_iter()
                .map(|c| {
                    let mut info = c.info;
                    info.level = options.level_for(info.id, info.level);
                    CaseReport::new(info, interrupted(signal, "started"), 0)
                })
                .collect();
            let unfinished = reports.len();
            return Report::new(&ctx, pre, started_at, started.elapsed(), reports)
                .interrupted_by(signal, unfinished);
        }
    };
    let ctx = Ctx::new(
        target,
        approver,
        options.clone(),
        pre.clone(),
        progress.clone(),
    );
    // Every case holds its slot while it sleeps; sleeping is cheap, so the limit only
    // bounds how many device codes are in flight at once.
    let slots = Arc::new(Semaphore::new(
        options.concurrency.clamp(1, Semaphore::MAX_PERMITS),
    ));
    if let Some(cause) = cause {
        progress.note("root cause", &cause.summary);
        let reports = blocked(&cause, &options, selected);
        return Report::new(&ctx, pre, started_at, started.elapsed(), reports)
            .with_root_cause(cause);
    }
    if let Some(problem) = &approver_problem {
        progress.note("approver", problem);
    }
    let mut tasks = Vec::new();
    for case in selected {
        let mut case = case;
        case.info.level = options.level_for(case.info.id, case.info.level);
        if let Some((status, why)) = cannot_run(
            &case.info,
            &ctx.approver,
            approver_problem.as_deref(),
            &options,
            &pre,
        ) {
            let verdict = Check::new(case.info.level).skip(status, why);
            tasks.push((case.info, Err(CaseReport::new(case.info, verdict, 0))));
            continue;
        }
        let timeout = case_timeout(&options, planned_wait(&case.info, &options, &pre));
        let handle = spawn_case(case, ctx.clone(), Arc::clone(&slots), timeout);
        tasks.push((case.info, Ok(handle)));
    }
    let (reports, stopped) = gather_until(tasks, stop).await;
    let report = Report::new(&ctx, pre, started_at, started.elapsed(), reports);
    match stopped {
        Some((signal, unfinished)) => {
            progress.note(
                "interrupted",
                &format!("{}: {unfinished} case(s) did not finish", signal.name()),
            );
            report.interrupted_by(signal, unfinished)
        }
        None => report,
    }
}

/// The verdict of a case that `signal` kept from finishing (or, `what` "started",
/// from starting): inconclusive, never a finding against the server.
fn interrupted(signal: Signal, what: &str) -> Verdict {
    Verdict::inconclusive(format_args!(
        "the run was interrupted ({}) before this case {what}",
        signal.name()
    ))
}

/// `cause`, the preflight's root cause, said better where its request timed out: a
/// server that accepted the connection and never answered is not one that cannot be
/// reached ([`crate::http::diagnose`]).
async fn no_answer(
    mut cause: RootCause,
    reach: &crate::http::reach::Reach,
    timeout: Duration,
) -> RootCause {
    let Some(e) = cause.evidence.first().filter(|_| cause.case.is_none()) else {
        return cause;
    };
    if e.response.is_some()
        || !e
            .error
            .as_deref()
            .is_some_and(crate::http::diagnose::timed_out)
    {
        return cause;
    }
    let url = e.request.url.clone();
    let error = e.error.clone().unwrap_or_default();
    cause.summary = match crate::http::diagnose::connects(&url, reach, timeout).await {
        Some(true) => format!(
            "the device authorization endpoint {url} accepted the connection but sent no answer within {} s (--timeout): is it an HTTP server, and is it up?",
            timeout.as_secs()
        ),
        Some(false) => format!(
            "cannot reach the device authorization endpoint {url}: no connection within {} s ({error})",
            timeout.as_secs()
        ),
        None => return cause,
    };
    cause
}

/// A case started (or skipped before it could start) by [`run`].
type Task = (
    CaseInfo,
    Result<JoinHandle<(Verdict, Duration)>, CaseReport>,
);

/// Runs `case` once a slot is free, within `case_timeout`; its verdict and how long it
/// took. A case that outlives its guard is inconclusive: the guard is the suite's,
/// and the time it ran out on may be the approver's or the suite's own.
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
            Err(_) => Verdict::inconclusive(format_args!(
                "the case did not finish within {} s, the suite's guard for it (its waits at the server's interval or past expires_in, plus twice --max-wait, plus 120 s)",
                case_timeout.as_secs()
            )),
        };
        ctx.progress
            .finished(case.info.id, verdict.status.as_str(), &verdict.summary);
        (verdict, t.elapsed())
    })
}

/// Every task's report, in the order the cases were started: a crashed case is a
/// suite bug, reported as inconclusive with the panic's message, never as the
/// server's failure at any level.
#[cfg(test)]
async fn gather(tasks: Vec<Task>) -> Vec<CaseReport> {
    gather_until(tasks, std::pin::pin!(std::future::pending()))
        .await
        .0
}

/// [`gather`], until `stop` resolves: from then on a case that has finished keeps its
/// verdict, and one that has not is stopped and inconclusive, saying so; the signal,
/// if one came, and how many cases it stopped. The stopped cases are dropped before this returns, so that an
/// approver command one of them started is killed with it (`kill_on_drop`), not left
/// running after the suite.
async fn gather_until(
    tasks: Vec<Task>,
    mut stop: std::pin::Pin<&mut impl Future<Output = Signal>>,
) -> (Vec<CaseReport>, Option<(Signal, usize)>) {
    let finished = |info: CaseInfo, result: Result<(Verdict, Duration), tokio::task::JoinError>| {
        match result {
            Ok((verdict, took)) => CaseReport::new(info, verdict, took.as_millis() as u64),
            Err(e) => {
                let verdict = Verdict::inconclusive(format_args!(
                    "the case crashed, a bug of the suite (please report it): {e}"
                ));
                CaseReport::new(info, verdict, 0)
            }
        }
    };
    let mut signal = None;
    let mut stopped = Vec::new();
    let mut reports = Vec::new();
    for (info, task) in tasks {
        let mut handle = match task {
            Err(skipped) => {
                reports.push(skipped);
                continue;
            }
            Ok(handle) => handle,
        };
        if signal.is_none() {
            tokio::select! {
                biased;
                result = &mut handle => {
                    reports.push(finished(info, result));
                    continue;
                }
                s = &mut stop => signal = Some(s),
            }
        }
        let Some(s) = signal else { continue };
        if handle.is_finished() {
            reports.push(finished(info, handle.await));
        } else {
            handle.abort();
            stopped.push(handle);
            reports.push(CaseReport::new(info, interrupted(s, "finished"), 0));
        }
    }
    let unfinished = stopped.len();
    for handle in stopped {
        let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
    }
    (reports, signal.map(|s| (s, unfinished)))
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
                if cause.warns {
                    c.expect_soft(false, cause.summary.clone());
                } else {
                    c.expect(false, cause.summary.clone());
                }
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
    use crate::case::{Level, INCONCLUSIVE};
    use crate::client::Client;
    use crate::progress::Progress;

    fn preflight(interval_secs: u64, expires_in: Option<u64>) -> Preflight {
        Preflight {
            interval_secs,
            interval_present: true,
            expires_in,
            error: None,
        }
    }

    fn options(max_wait: u64) -> Options {
        Options {
            max_wait: Duration::from_secs(max_wait),
            ..Options::default()
        }
    }

    fn case(id: &str) -> CaseInfo {
        cases::all()
            .into_iter()
            .find(|c| c.info.id == id)
            .unwrap()
            .info
    }

    fn admin() -> Approver {
        Approver::admin("http://127.0.0.1:1/admin", "t", "demo")
    }

    /// Why `id` cannot run against `pre` with `--max-wait max_wait`, if it cannot.
    fn why(id: &str, max_wait: u64, pre: &Preflight) -> Option<String> {
        cannot_run(&case(id), &admin(), None, &options(max_wait), pre).map(|(status, why)| {
            assert_eq!(status, Status::Skip, "{id}: {why}");
            why
        })
    }

    #[test]
    fn a_long_interval_that_does_not_fit_max_wait_skips_naming_both() {
        let pre = preflight(60, Some(600));
        for id in ["TS-01", "TS-08", "TS-11", "PL-02", "PL-07"] {
            let why = why(id, 30, &pre).unwrap_or_else(|| panic!("{id} runs"));
            assert!(why.contains("interval (60 s)"), "{id}: {why}");
            assert!(why.contains("--max-wait budget (30 s)"), "{id}: {why}");
        }
        // One wait of 60.5 s fits 90 s; three do not.
        assert_eq!(why("TS-01", 90, &pre), None);
        assert!(why("TS-11", 90, &pre).is_some());
        // Cases that do not wait at the interval run whatever it is.
        assert_eq!(why("PL-05", 30, &pre), None);
        // The default interval and --max-wait run them all.
        for id in ["TS-01", "TS-08", "TS-11", "PL-02", "PL-03", "PL-07"] {
            assert_eq!(why(id, 90, &preflight(5, Some(600))), None, "{id}");
        }
    }

    #[test]
    fn a_servers_absurd_numbers_skip_the_cases_that_would_wait_on_them() {
        let huge = preflight(u64::MAX, Some(u64::MAX));
        for id in [
            "TS-01", "TS-08", "TS-09", "TS-11", "PL-02", "PL-03", "PL-07",
        ] {
            assert!(why(id, 86_400, &huge).is_some(), "{id}");
        }
        for id in ["EX-01", "EX-02", "EX-03", "EX-04"] {
            let why = why(id, 86_400, &huge).unwrap_or_else(|| panic!("{id} runs"));
            assert!(
                why.contains("expires_in (18446744073709551615 s)"),
                "{id}: {why}"
            );
            assert!(why.contains("more than a year"), "{id}: {why}");
        }
        let soak = Options {
            soak: true,
            ..options(90)
        };
        assert!(cannot_run(&case("PL-04"), &admin(), None, &soak, &huge).is_some());
        assert_eq!(
            cannot_run(&case("PL-04"), &admin(), None, &soak, &preflight(5, None)),
            None
        );
        assert_eq!(
            case_timeout(&options(90), Duration::MAX),
            Duration::MAX,
            "the guard saturates"
        );
        let guard = case_timeout(
            &Options {
                max_wait: Duration::MAX,
                ..Options::default()
            },
            Duration::from_secs(1),
        );
        assert_eq!(guard, Duration::MAX);
    }

    #[test]
    fn without_expires_in_the_expiry_cases_say_the_server_gave_none() {
        let why = why("EX-01", 90, &preflight(5, None)).unwrap();
        assert!(why.contains("gave no expires_in"), "{why}");
        assert!(!why.contains("preflight authorization failed"), "{why}");
        let failed = Preflight::not_run("refused");
        let why = cannot_run(&case("EX-01"), &admin(), None, &options(90), &failed)
            .unwrap()
            .1;
        assert!(why.contains("preflight authorization failed"), "{why}");
    }

    #[test]
    fn a_broken_approver_skips_the_cases_that_need_it_as_inconclusive() {
        let pre = preflight(5, Some(600));
        let problem = Some("the admin endpoint refused the admin token (HTTP 401)");
        let (status, why) =
            cannot_run(&case("TS-03"), &admin(), problem, &options(90), &pre).unwrap();
        assert_eq!(status, Status::Skip);
        assert!(
            why.starts_with(INCONCLUSIVE) && why.ends_with("(HTTP 401)"),
            "{why}"
        );
        assert_eq!(
            cannot_run(&case("TS-01"), &admin(), problem, &options(90), &pre),
            None
        );
    }

    #[tokio::test]
    async fn the_approver_is_checked_before_the_run() {
        let missing =
            Approver::command("/no/such/approver {user_code}", Duration::from_secs(1)).unwrap();
        let why = check_approver(&missing).await.unwrap();
        assert!(why.contains("/no/such/approver"), "{why}");
        let missing =
            Approver::command("no-such-approver-program-xyz", Duration::from_secs(1)).unwrap();
        assert!(check_approver(&missing).await.is_some());
        let present = Approver::command("sh -c true", Duration::from_secs(1)).unwrap();
        assert_eq!(check_approver(&present).await, None);
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let unreachable = Approver::admin(format!("http://127.0.0.1:{closed}/admin"), "t", "u");
        let why = check_approver(&unreachable).await.unwrap();
        assert!(why.contains("cannot reach"), "{why}");
    }

    fn ctx() -> Ctx {
        let target = Target {
            issuer: None,
            device_authorization_endpoint: "http://127.0.0.1:1/da".into(),
            token_endpoint: "http://127.0.0.1:1/token".into(),
            introspection_endpoint: None,
            client: Client::public("tv"),
            second_client: None,
            unauthorized_client: None,
            introspection_client: None,
            scope: None,
            client_secret_from: None,
            metadata: None,
            metadata_attempts: vec![],
            root_cause: None,
            reach: crate::http::reach::Reach::anywhere(),
        };
        Ctx::new(
            target,
            Approver::None,
            Options::default(),
            preflight(5, Some(600)),
            Progress::new(true),
        )
    }

    fn crashing(_: Ctx) -> crate::case::CaseFuture {
        Box::pin(async {
            let huge = Duration::MAX;
            // What EX-02 did with a server's absurd expires_in.
            let _ = std::hint::black_box(huge) + Duration::from_secs(2);
            unreachable!()
        })
    }

    fn hanging(_: Ctx) -> crate::case::CaseFuture {
        Box::pin(std::future::pending())
    }

    #[tokio::test]
    async fn a_crash_or_the_guard_is_inconclusive_at_every_level_never_a_failure() {
        for level in [Level::Must, Level::DerivedShould] {
            for run in [crashing as fn(Ctx) -> _, hanging] {
                let mut info = case("EX-04");
                info.level = level;
                let slots = Arc::new(Semaphore::new(1));
                let handle =
                    spawn_case(Case { info, run }, ctx(), slots, Duration::from_millis(50));
                let reports = gather(vec![(info, Ok(handle))]).await;
                let v = &reports[0].verdict;
                assert_eq!(v.status, Status::Skip, "{level:?}: {}", v.summary);
                assert!(v.summary.starts_with(INCONCLUSIVE), "{}", v.summary);
                assert!(
                    v.summary.contains("crashed") || v.summary.contains("did not finish"),
                    "{}",
                    v.summary
                );
            }
        }
    }

    #[tokio::test]
    async fn a_signal_keeps_the_finished_cases_and_stops_the_others_as_inconclusive() {
        let quick = |_: Ctx| -> crate::case::CaseFuture {
            Box::pin(async { Check::new(Level::Must).finish("held") })
        };
        let slots = Arc::new(Semaphore::new(2));
        let done = spawn_case(
            Case {
                info: case("DR-01"),
                run: quick,
            },
            ctx(),
            Arc::clone(&slots),
            Duration::from_secs(60),
        );
        while !done.is_finished() {
            tokio::task::yield_now().await;
        }
        let stuck = spawn_case(
            Case {
                info: case("EX-01"),
                run: hanging,
            },
            ctx(),
            slots,
            Duration::from_secs(60),
        );
        let tasks = vec![(case("DR-01"), Ok(done)), (case("EX-01"), Ok(stuck))];
        let stop = std::pin::pin!(std::future::ready(Signal::Terminate));
        let (reports, stopped) = gather_until(tasks, stop).await;
        assert_eq!(stopped, Some((Signal::Terminate, 1)));
        assert_eq!(reports[0].verdict.status, Status::Pass);
        let v = &reports[1].verdict;
        assert_eq!(v.status, Status::Skip);
        assert!(v.summary.starts_with(INCONCLUSIVE), "{}", v.summary);
        assert!(v.summary.contains("interrupted (SIGTERM)"), "{}", v.summary);
    }

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
            interval_waits: &[],
        }
    }

    #[test]
    fn patterns_match_ids_prefixes_sections_and_slugs() {
        let i = info("PL-02", "A.6", "rfc8628/3.5/compliant-client-never-slowed");
        for p in [
            "PL-02",
            "pl-02",
            "PL",
            "PL-",
            "PL-0",
            "pl-0",
            "P",
            "A.6",
            "rfc8628/3.5",
        ] {
            assert!(Selection::matches(p, &i), "{p}");
        }
        for p in ["PL-1", "PL-021", "A.1", "TS", "rfc8628/3.4", " "] {
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
    fn an_id_prefix_selects_every_id_it_begins() {
        // `--only TS-1` had matched no case, though --help offers id prefixes.
        let all = cases::all();
        let chosen = |p: &str| -> Vec<&str> {
            all.iter()
                .filter(|c| Selection::matches(p, &c.info))
                .map(|c| c.info.id)
                .collect()
        };
        assert_eq!(chosen("TS-1"), ["TS-10", "TS-11", "TS-12"]);
        assert_eq!(chosen("ts-1"), ["TS-10", "TS-11", "TS-12"]);
        assert_eq!(chosen("DA-1").len(), 6, "{:?}", chosen("DA-1"));
        assert!(chosen("TS-13").is_empty());
        let s = Selection {
            only: vec!["TS-1".into()],
            skip: vec![],
        };
        assert!(s.unknown_patterns().is_empty());
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
