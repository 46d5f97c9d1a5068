//! The mutation harness: the fake device-flow server of `fake/` broken one rule at a
//! time (one [`Flaw`] per rule, a broken variant for every checklist row the suite
//! judges), the suite run against each with `--only` the cases for that rule, and each
//! flaw asserted caught. The unbroken fake passes the whole suite, so every catch is
//! the flaw's doing. Prints the mutation score (caught/total).
//!
//! Not mutated, and why: Info and MAY rows (DA-12, DA-15, TR-12, MD-06, PL-08, PL-10,
//! SC-07, SC-08, EX-05, TS-12: they measure, they cannot fail; DA-15 and TR-12 are
//! checked as reports below), DA-14 (TLS: the fake is plain http on
//! loopback, where the row is n/a), and the rows that need a browser (UI-02, 04, 06,
//! 09, 11, 12, 14, 15).

mod fake;

use std::sync::Arc;
use std::time::{Duration, Instant};

use deviceflow_conformance::case::Status;
use deviceflow_conformance::context::Expectation;
use deviceflow_conformance::{resolve, Approver, Client, Options, Report, Selection, TargetSpec};
use fake::Flaw;
use tokio::sync::Semaphore;

/// How the suite is pointed at the fake for a mutation.
#[derive(Clone, Copy, PartialEq)]
enum Setup {
    /// `--issuer` (discovery), public client-a, confidential client-c second.
    Discovery,
    /// Discovery plus the endpoints given by hand (MD-05, MD-07).
    Explicit,
    /// client-c (confidential) first, so that the public client is the second (SC-05).
    ConfidentialFirst,
    /// `--expect slow-down` (PL-01, PL-07).
    ExpectSlowDown,
    /// Discovery, no `--scope` (TS-05 then asks for an undefined scope only).
    NoScope,
    /// Discovery from the issuer typed with a trailing slash (`http://host:port/`).
    TrailingSlash,
    /// Discovery, no `--introspection-client` (TS-05 cannot see an unnamed scope).
    NoIntrospection,
}

/// Who plays the person in a run.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Person {
    /// The fake's admin endpoint, as deviceflow-server's answers it.
    Admin,
    /// An admin endpoint that answers every decision with a 500 page, after passing
    /// the approver check before the run: an approver that breaks mid-run.
    BrokenAdmin,
    /// An admin endpoint that approves but answers every denial with a 500 page.
    AdminThatCannotDeny,
    /// A command that fails as one does when its server is unreachable (exit 1).
    FailingCommand,
    /// A command that says the server's page refused the code (exit 65, EX_DATAERR).
    RefusingCommand,
}

impl Person {
    fn approver(self, base: &str) -> Approver {
        let command = |script: &str| {
            Approver::command(&format!("sh -c '{script}'"), Duration::from_secs(10)).unwrap()
        };
        match self {
            Person::Admin => Approver::admin(format!("{base}/admin"), fake::ADMIN, "alice"),
            Person::BrokenAdmin => {
                Approver::admin(format!("{base}/admin-broken"), fake::ADMIN, "alice")
            }
            Person::AdminThatCannotDeny => {
                Approver::admin(format!("{base}/admin-approve-only"), fake::ADMIN, "alice")
            }
            Person::FailingCommand => {
                command("echo connect to 127.0.0.1 port 9: Connection refused >&2; exit 1")
            }
            Person::RefusingCommand => {
                command("echo the page said: that code is not valid >&2; exit 65")
            }
        }
    }
}

/// A broken rule, the cases run for it, and what each must say.
struct Mutation {
    flaw: Flaw,
    setup: Setup,
    caught_by: &'static [(&'static str, Status)],
}

const fn m(flaw: Flaw, caught_by: &'static [(&'static str, Status)]) -> Mutation {
    Mutation {
        flaw,
        setup: Setup::Discovery,
        caught_by,
    }
}

const fn with(flaw: Flaw, setup: Setup, caught_by: &'static [(&'static str, Status)]) -> Mutation {
    Mutation {
        flaw,
        setup,
        caught_by,
    }
}

use Status::{Fail as F, Warn as W};

/// Every broken variant and the case that must catch it, in checklist order.
const MUTATIONS: &[Mutation] = &[
    // A.1 RFC 8628 §3.1
    m(Flaw::DaStatus201, &[("DA-01", F)]),
    m(Flaw::CharsetRefusedAtDa, &[("DA-02", F)]),
    m(Flaw::EmptyPost500, &[("DA-02", F), ("DR-12", F)]),
    m(Flaw::ClientIdOptional, &[("DA-03", F)]),
    m(Flaw::UnknownClientInvalidRequest, &[("DA-04", F)]),
    m(Flaw::ConfidentialWithoutSecret, &[("DA-05", F)]),
    m(Flaw::BasicUnsupported, &[("DA-06", F)]),
    m(Flaw::NoWwwAuthenticate, &[("DA-07", F)]),
    m(Flaw::EmptyScopeInvalid, &[("DA-08", F)]),
    m(Flaw::UnknownParamRejectedAtDa, &[("DA-09", F)]),
    m(Flaw::RepeatsAcceptedAtDa, &[("DA-10", F)]),
    m(
        Flaw::ChallengelessUnauthorized,
        &[("DA-04", W), ("DR-12", W)],
    ),
    m(Flaw::TwoAuthMethodsAccepted, &[("DA-11", W)]),
    m(Flaw::UnauthorizedClientAllowedAtDa, &[("DA-13", W)]),
    // A.2 RFC 8628 §3.2
    m(Flaw::DaTextPlain, &[("DR-01", F)]),
    m(Flaw::DaBodyNotJson, &[("DR-01", F)]),
    m(Flaw::NoDeviceCode, &[("DR-02", F)]),
    m(Flaw::NoUserCode, &[("DR-03", F)]),
    m(Flaw::RelativeVerificationUri, &[("DR-04", F)]),
    m(Flaw::ExpiresInMissing, &[("DR-05", F)]),
    m(Flaw::IntervalZero, &[("DR-06", F)]),
    m(Flaw::CompleteUriWrongCode, &[("DR-07", F)]),
    m(Flaw::DuplicateUserCodes, &[("DR-08", F)]),
    m(Flaw::DuplicateMember, &[("DR-09", F)]),
    m(Flaw::NoStoreMissingOnDa, &[("DR-10", W)]),
    m(Flaw::StringNumbers, &[("DR-11", F)]),
    m(Flaw::DaErrorsNotJson, &[("DR-12", F)]),
    m(Flaw::UserCodeInVerificationUri, &[("DR-13", W)]),
    m(Flaw::DeviceCodeInCompleteUri, &[("DR-14", W)]),
    // A.3 RFC 8628 §3.3, §6.1; RFC 9700 §4.16
    m(Flaw::VerificationPage404, &[("UI-01", F)]),
    m(Flaw::DeviceCodeOnPage, &[("UI-03", W)]),
    m(Flaw::CompleteUriApproves, &[("UI-05", F)]),
    m(Flaw::NoNormalization, &[("UI-07", W)]),
    m(Flaw::ConfusableAlphabet, &[("UI-08", W)]),
    m(Flaw::SecondDecisionAccepted, &[("UI-10", F)]),
    m(Flaw::UnknownCodeAccepted, &[("UI-10", F)]),
    m(Flaw::Framable, &[("UI-13", F)]),
    m(Flaw::FramableByAnyone, &[("UI-13", F)]),
    m(Flaw::SignInPageWithoutCsp, &[("UI-13", W)]),
    // A.4 RFC 8628 §3.4; RFC 6749 §3.2, §5.2
    m(Flaw::PendingIs200, &[("TR-01", F), ("TS-01", F)]),
    m(Flaw::HangingTokenEndpoint, &[("TR-01", F)]),
    m(Flaw::HtmlServerError, &[("TR-02", F)]),
    m(Flaw::EmptyDeviceCodeInvalidGrant, &[("TR-03", F)]),
    m(Flaw::UnknownCode404, &[("TR-04", F)]),
    m(Flaw::PollWithoutClientIdAccepted, &[("TR-05", F)]),
    m(Flaw::ConfidentialPollWithoutSecret, &[("TR-06", F)]),
    m(Flaw::CrossClient, &[("TR-07", F)]),
    m(Flaw::RepeatsAcceptedAtToken, &[("TR-08", F)]),
    m(Flaw::UnknownParamRejectedAtToken, &[("TR-09", F)]),
    m(Flaw::WrongGrantInvalidRequest, &[("TR-10", F)]),
    m(Flaw::UnauthorizedClientAllowedAtToken, &[("TR-11", W)]),
    m(Flaw::CharsetRefusedAtToken, &[("TR-13", F)]),
    // A.5 RFC 8628 §3.5; RFC 6749 §5.1, §5.2
    m(Flaw::TokenErrorsNotJson, &[("TS-02", F)]),
    m(Flaw::TokenTextPlain, &[("TS-03", F)]),
    m(Flaw::TokenMissingTokenType, &[("TS-03", F)]),
    m(Flaw::TokenStatus201, &[("TS-03", F)]),
    m(Flaw::AccessTokenEmpty, &[("TS-03", F)]),
    m(Flaw::NoStoreMissingOnToken, &[("TS-04", F)]),
    m(Flaw::ScopeWidened, &[("TS-05", F)]),
    m(Flaw::ScopeWidenedUnnamed, &[("TS-05", F)]),
    m(Flaw::UndefinedScopeGranted, &[("TS-05", F)]),
    m(Flaw::TokenTypeEmpty, &[("TS-03", F), ("TS-06", F)]),
    m(Flaw::DenyIsPending, &[("TS-07", F)]),
    m(Flaw::NoSingleUse, &[("TS-08", F), ("TS-10", F)]),
    m(Flaw::ReplayKeepsToken, &[("TS-09", W)]),
    m(Flaw::RacyRedemption, &[("TS-10", F)]),
    m(Flaw::DenialThenPending, &[("TS-11", W)]),
    m(Flaw::DenialThenSlowDown, &[("TS-11", W)]),
    // A token after the denial grants what the person refused: TS-07's denial did
    // not hold (helper-102: it had only warned under TS-11).
    m(Flaw::DenialThenToken, &[("TS-07", F), ("TS-11", W)]),
    // A.6 RFC 8628 §3.2, §3.5
    with(Flaw::NeverSlowDown, Setup::ExpectSlowDown, &[("PL-01", F)]),
    m(Flaw::SlowDownCompliant, &[("PL-02", F)]),
    m(Flaw::OverPenalty, &[("PL-03", F)]),
    m(Flaw::Livelock, &[("PL-04", F)]),
    m(Flaw::FirstPollSlowDown, &[("PL-05", W)]),
    m(Flaw::SlowDownBeforeStatus, &[("PL-06", W)]),
    with(Flaw::FixedWindow, Setup::ExpectSlowDown, &[("PL-07", F)]),
    with(
        Flaw::ResetAfterCompliant,
        Setup::ExpectSlowDown,
        &[("PL-07", F)],
    ),
    m(Flaw::SlowDownAs429, &[("PL-09", F)]),
    // A.7 RFC 8628 §3.5, §5.4
    m(Flaw::NoExpiry, &[("EX-01", F)]),
    m(Flaw::ApprovedOutlivesExpiry, &[("EX-02", F)]),
    m(Flaw::LateApprovalAccepted, &[("EX-03", F)]),
    m(Flaw::ExpiredThenPending, &[("EX-04", W)]),
    // A.8 RFC 8628 §4; RFC 8414
    m(Flaw::NoDaInMetadata, &[("MD-01", W)]),
    m(Flaw::RelativeDaInMetadata, &[("MD-01", F)]),
    m(Flaw::NoGrantInMetadata, &[("MD-02", F)]),
    m(Flaw::IssuerMismatch, &[("MD-03", F)]),
    m(Flaw::NoTokenInMetadata, &[("MD-04", F)]),
    m(Flaw::RelativeTokenInMetadata, &[("MD-04", F)]),
    with(Flaw::AdvertisesWrongToken, Setup::Explicit, &[("MD-05", F)]),
    with(Flaw::NoMetadata, Setup::Explicit, &[("MD-07", W)]),
    m(Flaw::MetadataOnlyOpenid, &[("MD-07", W)]),
    // A.9 RFC 8628 §5
    m(Flaw::ShortUserCode, &[("SC-01", W)]),
    m(Flaw::FixedPrefixUserCode, &[("SC-01", W)]),
    m(Flaw::ShortDeviceCode, &[("SC-02", W)]),
    with(
        Flaw::PublicClientsRefused,
        Setup::ConfidentialFirst,
        &[("SC-05", W)],
    ),
    // A.10 RFC 9700 §4.14.2; RFC 6749 §6
    m(Flaw::NoRotation, &[("BCP-01", F)]),
    m(Flaw::ReuseNotDetected, &[("BCP-01", F)]),
    m(Flaw::FamilyNotRevoked, &[("BCP-01", W)]),
    m(Flaw::RefreshBroken, &[("RT-01", F)]),
    m(Flaw::RefreshCrossClient, &[("RT-02", F)]),
    m(Flaw::RefreshWidens, &[("RT-03", F)]),
];

fn options(setup: Setup) -> Options {
    Options {
        max_wait: Duration::from_secs(40),
        poll_margin: Duration::from_millis(400),
        soak: true,
        samples: 50,
        request_timeout: Duration::from_secs(2),
        expect: if setup == Setup::ExpectSlowDown {
            vec![Expectation::SlowDown]
        } else {
            vec![]
        },
        ..Options::default()
    }
}

/// The suite, `--only` the cases named, against the fake with `flaw`.
async fn run(flaw: Option<Flaw>, setup: Setup, only: &[&str]) -> Report {
    run_with(flaw, setup, Person::Admin, only).await
}

/// [`run`], with `person` playing the person.
async fn run_with(flaw: Option<Flaw>, setup: Setup, person: Person, only: &[&str]) -> Report {
    let base = fake::start(flaw).await;
    let options = options(setup);
    let confidential = Client::parse("client-c:c-secret").unwrap();
    let (client, second) = match setup {
        Setup::ConfidentialFirst => (confidential, Client::public("client-a")),
        _ => (Client::public("client-a"), confidential),
    };
    let explicit = setup == Setup::Explicit;
    let issuer = if setup == Setup::TrailingSlash {
        format!("{base}/")
    } else {
        base.clone()
    };
    let spec = TargetSpec {
        issuer: Some(issuer),
        device_authorization_endpoint: explicit.then(|| format!("{base}/da")),
        token_endpoint: explicit.then(|| format!("{base}/token")),
        client: Some(client),
        second_client: Some(second),
        unauthorized_client: Some(Client::public("client-x")),
        introspection_client: (setup != Setup::NoIntrospection)
            .then(|| Client::parse("introspector:i-secret").unwrap()),
        scope: (setup != Setup::NoScope).then(|| "openid profile".into()),
        ..TargetSpec::default()
    };
    let http =
        deviceflow_conformance::http::Http::new(options.request_timeout, spec.reach(false).await);
    let target = resolve(spec, &http).await.unwrap();
    let approver = person.approver(&base);
    let selection = Selection {
        only: only.iter().map(|s| s.to_string()).collect(),
        skip: vec![],
    };
    deviceflow_conformance::run(target, approver, options, &selection, true).await
}

fn status(r: &Report, id: &str) -> Option<Status> {
    r.cases
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.verdict.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_broken_rule_is_caught_and_the_correct_fake_passes_the_whole_suite() {
    let started = Instant::now();
    // Bounded, so that the timing cases (slow_down, tolerance) keep their margins on
    // a small CI machine.
    let slots = Arc::new(Semaphore::new(24));
    let mutations = MUTATIONS.iter().map(|mu| {
        let slots = Arc::clone(&slots);
        async move {
            let _slot = slots.acquire().await;
            try_mutation(mu).await
        }
    });
    // The correct fake, the whole suite, the declared slow_down policy held too.
    let clean = run(None, Setup::ExpectSlowDown, &[]);
    let (clean, results) = tokio::join!(clean, futures_util::future::join_all(mutations));

    assert_the_correct_fake_passes(&clean);

    let total = results.len();
    let mut missed = Vec::new();
    for (flaw, misses, exit_ok, took) in &results {
        if !misses.is_empty() {
            missed.push(format!("{flaw:?}: {}", misses.join("; ")));
        }
        if !exit_ok {
            missed.push(format!("{flaw:?}: a MUST failure must set exit code 1"));
        }
        // A hanging server costs request timeouts, not a hung suite.
        assert!(*took < Duration::from_secs(90), "{flaw:?} took {took:?}");
    }
    let caught = results
        .iter()
        .filter(|(_, misses, exit_ok, _)| misses.is_empty() && *exit_ok)
        .count();
    let t = &clean.totals;
    eprintln!(
        "mutation score: {caught}/{total} broken rules caught ({:.0} s); the correct fake: {} pass, {} info, {} skip, {} n/a",
        started.elapsed().as_secs_f64(),
        t.pass,
        t.info,
        t.skip,
        t.not_applicable
    );
    assert!(missed.is_empty(), "not caught:\n{}", missed.join("\n"));
}

/// Runs the cases that should catch `mu`'s flaw against a fake with it. Returns the
/// flaw, each case that did not say what it should, whether the exit code is 1 where a
/// MUST was broken, and how long it took.
async fn try_mutation(mu: &Mutation) -> (Flaw, Vec<String>, bool, Duration) {
    let only: Vec<&str> = mu.caught_by.iter().map(|(id, _)| *id).collect();
    let t = Instant::now();
    let r = run(Some(mu.flaw), mu.setup, &only).await;
    let misses: Vec<String> = mu
        .caught_by
        .iter()
        .filter(|(id, want)| status(&r, id) != Some(*want))
        .map(|(id, want)| {
            let case = r.cases.iter().find(|c| c.id == *id);
            format!(
                "{id}: wanted {}, got {} ({})",
                want.as_str(),
                case.map_or("not run", |c| c.verdict.status.as_str()),
                case.map_or(String::new(), |c| c.verdict.summary.clone())
            )
        })
        .collect();
    let must = mu.caught_by.iter().any(|(_, s)| *s == F);
    let exit_ok = !must || r.exit_code() == 1;
    (mu.flaw, misses, exit_ok, t.elapsed())
}

/// The correct fake passes the whole suite with exit code 0, and no passing check's
/// words read as a failure.
fn assert_the_correct_fake_passes(clean: &Report) {
    let wrong: Vec<String> = clean
        .cases
        .iter()
        .filter(|c| matches!(c.verdict.status, Status::Fail | Status::Warn))
        .map(|c| {
            format!(
                "{} {}: {}",
                c.id,
                c.verdict.status.as_str(),
                c.verdict.summary
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "the correct fake must pass: {}",
        wrong.join("\n")
    );
    assert_eq!(clean.exit_code(), 0);
    // JSON `what` texts state the expectation: next to ok=true none reads as a failure.
    let failure_words = [
        "failed",
        "lacks",
        "is missing",
        "could not",
        "must be",
        "expected ",
        "was accepted",
        "; got",
        "got a token",
        "was issued",
        "still works",
        "still active",
    ];
    for c in &clean.cases {
        for check in c.verdict.checks.iter().filter(|k| k.ok) {
            let hit = failure_words.iter().find(|w| check.what.contains(*w));
            assert!(
                hit.is_none(),
                "{}: {:?} reads as a failure",
                c.id,
                check.what
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Found in review: live credentials in the evidence, unbounded bodies, refusals sent
// as HTTP 200 counted as tokens.

/// Every credential the fake handed out in `r`'s evidence (tokens, device codes), read
/// from the raw bodies the checks see.
fn credentials_issued(r: &Report) -> Vec<String> {
    let mut found = Vec::new();
    for c in &r.cases {
        for e in &c.verdict.evidence {
            let Some(obj) = e.json().value else { continue };
            for k in ["access_token", "refresh_token", "device_code"] {
                if let Some(v) = obj.get(k).and_then(|v| v.as_str()) {
                    found.push(v.to_owned());
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_evidence_and_its_briefs_hold_no_live_credential() {
    // Tokens issued, introspected (token=…), refreshed (refresh_token=…), replayed.
    let r = run(
        None,
        Setup::Discovery,
        &["TS-03", "TS-08", "TS-09", "TS-12", "RT-01", "BCP-01"],
    )
    .await;
    let issued = credentials_issued(&r);
    assert!(issued.len() >= 10, "too few credentials seen: {issued:?}");
    let mut shown = String::new();
    for c in &r.cases {
        // The whole verdict as the JSON report holds it: checks' texts too.
        shown.push_str(&serde_json::to_string(&c.verdict).unwrap());
        for e in &c.verdict.evidence {
            shown.push_str(&e.brief());
        }
    }
    let leaked: Vec<&String> = issued
        .iter()
        .filter(|s| shown.contains(s.as_str()))
        .collect();
    assert!(
        leaked.is_empty(),
        "live credentials in the evidence: {leaked:?}"
    );
    // Still readable: which code a poll used shows as its prefix and length.
    assert!(shown.contains("…<redacted, 32 chars>"), "{shown:.2000}");
    assert!(shown.contains("\"token_type\":\"Bearer\""), "{shown:.2000}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refusal_sent_as_200_is_no_second_token_but_a_section_5_2_breach() {
    let r = run(
        Some(Flaw::ReplayErrorIs200),
        Setup::Discovery,
        &["TS-02", "TS-08", "TS-10"],
    )
    .await;
    let case = |id: &str| r.cases.iter().find(|c| c.id == id).unwrap();
    let (ts02, ts08, ts10) = (case("TS-02"), case("TS-08"), case("TS-10"));
    // RFC 6749 §5.2: errors are 400; TS-02 judges the shape of every error.
    assert_eq!(
        ts02.verdict.status,
        Status::Fail,
        "{}",
        ts02.verdict.summary
    );
    assert!(
        ts02.verdict.summary.contains("HTTP 200 (RFC 6749 §5.2"),
        "{}",
        ts02.verdict.summary
    );
    // No second token was issued: TS-08 and TS-10 hold, and say what is wrong.
    assert_eq!(
        ts08.verdict.status,
        Status::Warn,
        "{}",
        ts08.verdict.summary
    );
    assert!(
        ts08.verdict.summary.contains("RFC 6749 §5.2"),
        "{}",
        ts08.verdict.summary
    );
    assert_eq!(
        ts10.verdict.status,
        Status::Warn,
        "{}",
        ts10.verdict.summary
    );
    assert_eq!(
        ts10.verdict.measured["tokens_from_10_parallel_polls"],
        serde_json::json!(1)
    );
    assert_eq!(r.exit_code(), 1);
}

#[tokio::test]
async fn an_endless_body_is_read_up_to_the_limit_and_named_as_too_large() {
    use deviceflow_conformance::http::{Http, MAX_BODY_BYTES};
    let base = fake::start_endless_body().await;
    let http = Http::new(
        Duration::from_secs(5),
        deviceflow_conformance::http::reach::Reach::anywhere(),
    );
    let t = Instant::now();
    let e = http
        .get(
            "metadata",
            &format!("{base}/.well-known/oauth-authorization-server"),
        )
        .await;
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert_eq!(e.status(), Some(200), "{}", e.brief());
    assert!(e.body_over_limit());
    assert_eq!(e.raw_body.len(), MAX_BODY_BYTES);
    assert!(e.brief().contains("1 MiB"), "{}", e.brief());
    assert!(e.json().problem.unwrap().contains("1 MiB"));
    assert!(e.response.as_ref().unwrap().body_truncated);
    // As the target's root cause: evidence against the server, not "cannot reach".
    let spec = TargetSpec {
        issuer: Some(base),
        client: Some(Client::public("client-a")),
        ..TargetSpec::default()
    };
    let why = resolve(spec, &http).await.err().unwrap().to_string();
    assert!(
        why.contains("1 MiB") && !why.contains("cannot reach"),
        "{why}"
    );
}

// ---------------------------------------------------------------------------------
// Found in review: an approver that breaks taken for the server's refusal (EX-03,
// UI-10), or for the server's fault (TS-05, UI-07).

fn verdict<'r>(r: &'r Report, id: &str) -> &'r deviceflow_conformance::case::Verdict {
    &r.cases.iter().find(|c| c.id == id).unwrap().verdict
}

fn assert_inconclusive(r: &Report, id: &str, why: &str) {
    let v = verdict(r, id);
    assert_eq!(v.status, Status::Skip, "{id} ({why}): {}", v.summary);
    assert!(
        v.summary
            .starts_with(deviceflow_conformance::case::INCONCLUSIVE),
        "{id} ({why}): {}",
        v.summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ex_03_passes_only_on_the_servers_refusal_never_on_a_broken_approver() {
    // Checklist EX-03 (RFC 8628 §3.5, §5.4): a server that accepts late approvals, and
    // one that refuses them, each with an approver that breaks when asked to approve
    // the expired code: no evidence either way, so inconclusive, never a pass.
    let runs = [
        (Some(Flaw::LateApprovalAccepted), Person::BrokenAdmin),
        (Some(Flaw::LateApprovalAccepted), Person::FailingCommand),
        (None, Person::BrokenAdmin),
        (None, Person::Admin),
    ]
    .map(|(flaw, person)| async move {
        (
            flaw,
            person,
            run_with(flaw, Setup::Discovery, person, &["EX-03"]).await,
        )
    });
    for (flaw, person, r) in futures_util::future::join_all(runs).await {
        let why = format!("{flaw:?} with {person:?}");
        if person == Person::Admin {
            // The admin endpoint answered expired_user_code: the refusal, on the record.
            let v = verdict(&r, "EX-03");
            assert_eq!(v.status, Status::Pass, "{why}: {}", v.summary);
            assert!(
                v.checks
                    .iter()
                    .any(|c| c.what.contains("expired_user_code")),
                "{why}: {:?}",
                v.checks
            );
        } else {
            assert_inconclusive(&r, "EX-03", &why);
            // A Derived-MUST not judged: not "every MUST held" (0), not a failure (1).
            assert_eq!(r.exit_code(), 4, "{why}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ui_10_passes_only_on_the_servers_refusal_of_the_second_decision() {
    // Checklist UI-10: a server that accepts a second decision, with an approver that
    // cannot deny at all: no evidence, so inconclusive, never a pass.
    let r = run_with(
        Some(Flaw::SecondDecisionAccepted),
        Setup::Discovery,
        Person::AdminThatCannotDeny,
        &["UI-10"],
    )
    .await;
    assert_inconclusive(&r, "UI-10", "SecondDecisionAccepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ts_05_and_ui_07_blame_the_server_for_its_refusals_never_for_a_broken_approver() {
    // TS-05 (b), RFC 6749 §3.3: an undefined scope accepted at the device authorization
    // and then refused at the approval is never granted: that holds. An approver that
    // breaks on it says nothing about the server: inconclusive, not a warning.
    let refused = run_with(
        Some(Flaw::UndefinedScopeIgnored),
        Setup::NoScope,
        Person::RefusingCommand,
        &["TS-05"],
    );
    let broken = run_with(
        Some(Flaw::UndefinedScopeGranted),
        Setup::NoScope,
        Person::FailingCommand,
        &["TS-05", "UI-07"],
    );
    // UI-07 (RFC 8628 §6.1): the server's refusal of a typed variant is its finding.
    let ui07_refused = run_with(None, Setup::Discovery, Person::RefusingCommand, &["UI-07"]);
    let (refused, broken, ui07_refused) = tokio::join!(refused, broken, ui07_refused);
    let v = verdict(&refused, "TS-05");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
    assert_inconclusive(&broken, "TS-05", "a failing approver");
    assert_inconclusive(&broken, "UI-07", "a failing approver");
    let v = verdict(&ui07_refused, "UI-07");
    assert_eq!(v.status, Status::Warn, "{}", v.summary);
    assert!(
        v.summary.contains("that code is not valid"),
        "{}",
        v.summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ts_05_says_what_came_of_an_undefined_scope_refused_at_the_token_endpoint() {
    // RFC 6749 §3.3, §5.2: an undefined scope taken at the device authorization and
    // the approval, then refused at the token endpoint with invalid_scope (as
    // django-oauth-toolkit does), grants nothing: TS-05 (b) holds, and its pass says
    // so with what came back, not with no check at all.
    let r = run(
        Some(Flaw::UndefinedScopeRefusedAtToken),
        Setup::Discovery,
        &["TS-05"],
    )
    .await;
    let v = verdict(&r, "TS-05");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
    let checks: Vec<&str> = v.checks.iter().map(|k| k.what.as_str()).collect();
    assert!(
        checks
            .iter()
            .any(|w| w.starts_with("(b) nothing is granted") && w.contains("invalid_scope")),
        "{checks:?}"
    );
    assert_eq!(
        v.measured["undefined_scope"],
        "accepted at the device authorization and approved, refused at the token endpoint: invalid_scope"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ui_07_asks_upper_casing_only_of_codes_in_the_a_to_z_range() {
    // RFC 8628 §6.1: "For codes using only characters in the A-Z range ... the user's
    // input should be uppercased". A code with digits whose page strips what is
    // outside its set, lower case included, follows §6.1 (django-oauth-toolkit's
    // codes are of this kind): its refusal of the lower-cased code is no warning.
    let r = run(
        Some(Flaw::DigitCodesNotUpperCased),
        Setup::Discovery,
        &["UI-07"],
    )
    .await;
    let v = verdict(&r, "UI-07");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
    assert!(
        v.summary.contains("lower-cased was refused"),
        "{}",
        v.summary
    );
    // The same page with a base-20 code (A-Z only) must upper-case: still a warning.
    let r = run(Some(Flaw::NoNormalization), Setup::Discovery, &["UI-07"]).await;
    let v = verdict(&r, "UI-07");
    assert_eq!(v.status, Status::Warn, "{}", v.summary);
    assert!(v.summary.contains("lower-cased"), "{}", v.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dr_12_judges_the_shape_of_errors_not_the_codes_other_rows_judge() {
    // Checklist DR-12 (RFC 8628 §3.2 → RFC 6749 §5.2) is about the shape of an error:
    // a server whose errors are well formed but name another code (DA-04), or that
    // takes a repeated parameter (DA-10), breaks those rows, not DR-12.
    let codes = [
        (Flaw::UnknownClientInvalidRequest, "DA-04"),
        (Flaw::RepeatsAcceptedAtDa, "DA-10"),
    ]
    .map(|(flaw, row)| async move {
        (
            flaw,
            row,
            run(Some(flaw), Setup::Discovery, &["DR-12", row]).await,
        )
    });
    for (flaw, row, r) in futures_util::future::join_all(codes).await {
        let v = verdict(&r, row);
        assert_eq!(v.status, Status::Fail, "{flaw:?} {row}: {}", v.summary);
        let v = verdict(&r, "DR-12");
        assert_eq!(v.status, Status::Pass, "{flaw:?} DR-12: {}", v.summary);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ui_13_a_frame_ancestors_that_lets_anyone_frame_is_no_protection() {
    // Checklist UI-13 (RFC 9700 §4.16): `frame-ancestors *` allows every framer, and
    // voids X-Frame-Options (CSP 3 §6.4.2): the page can be framed.
    let r = run(Some(Flaw::FramableByAnyone), Setup::Discovery, &["UI-13"]).await;
    let v = verdict(&r, "UI-13");
    assert_eq!(v.status, Status::Fail, "{}", v.summary);
    assert!(v.summary.contains("frame-ancestors *"), "{}", v.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ui_13_says_the_pages_behind_a_sign_in_redirect_went_unseen_whatever_its_verdict() {
    // The caveat was in the pass summary alone: a warning on the sign-in page (as
    // django-oauth-toolkit's) read as if every verification page had been checked.
    let r = run(
        Some(Flaw::SignInPageWithoutCsp),
        Setup::Discovery,
        &["UI-13"],
    )
    .await;
    let v = verdict(&r, "UI-13");
    assert_eq!(v.status, Status::Warn, "{}", v.summary);
    assert!(v.summary.contains("/login"), "{}", v.summary);
    assert!(
        v.summary
            .contains("the pages behind the sign-in it led to (code entry, consent) were not seen"),
        "{}",
        v.summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ui_13_reads_every_content_security_policy_field_line() {
    // An application's policy and a proxy's `frame-ancestors 'none'` on two field
    // lines, no X-Frame-Options: framing is refused, and UI-13 reads both lines.
    let r = run(Some(Flaw::CspInTwoFields), Setup::Discovery, &["UI-13"]).await;
    let v = verdict(&r, "UI-13");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_that_closes_idle_connections_is_not_blamed_for_the_suites_reuse_of_them() {
    // RFC 9112 §9.6: a server MAY close a connection at any time, even as the client
    // sends its next request on it; a POST lost that way is not to be retried blindly
    // (§9.3.1). The correct fake behind a front that closes each connection as its
    // second request arrives: every request the suite sends on a fresh connection is
    // answered, so DA-03, DA-10 (RFC 8628 §3.1), TR-01, TR-08 (§3.4) and TS-01 (§3.5)
    // pass; a reused connection would be the suite's failure, reported as the server's.
    let base = fake::start_closing_idle_connections(None).await;
    let options = options(Setup::Discovery);
    let spec = TargetSpec {
        device_authorization_endpoint: Some(format!("{base}/da")),
        token_endpoint: Some(format!("{base}/token")),
        client: Some(Client::public("client-a")),
        second_client: Some(Client::parse("client-c:c-secret").unwrap()),
        scope: Some("openid profile".into()),
        ..TargetSpec::default()
    };
    let http =
        deviceflow_conformance::http::Http::new(options.request_timeout, spec.reach(false).await);
    let target = resolve(spec, &http).await.unwrap();
    let selection = Selection {
        only: ["DA-03", "DA-10", "TR-01", "TR-08", "TS-01"]
            .map(String::from)
            .to_vec(),
        skip: vec![],
    };
    let r = deviceflow_conformance::run(target, Approver::None, options, &selection, true).await;
    for id in ["DA-03", "DA-10", "TR-01", "TR-08", "TS-01"] {
        let v = &r.cases.iter().find(|c| c.id == id).unwrap().verdict;
        assert_eq!(v.status, Status::Pass, "{id}: {}", v.summary);
    }
    assert_eq!(r.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_numbers_written_with_a_point_are_read_as_the_servers_seconds() {
    // RFC 8259 §6 has one number type: `"interval":6.0,"expires_in":20.0` (Python's
    // json.dumps of a float, say) are whole seconds. DR-05 and DR-06 (RFC 8628 §3.2)
    // hold, and the suite waits the 6 s the server asked between polls (§3.5), not
    // the 5 s of an absent interval, so PL-02 gets no slow_down.
    let r = run(
        Some(Flaw::WholeNumbersWithPoint),
        Setup::Discovery,
        &["DR-05", "DR-06", "DR-11", "PL-02"],
    )
    .await;
    for id in ["PL-02", "DR-05", "DR-06", "DR-11"] {
        let v = verdict(&r, id);
        assert_eq!(v.status, Status::Pass, "{id}: {}", v.summary);
    }
    assert_eq!(r.preflight.interval_secs, fake::POINT_INTERVAL);
}

/// A token answer TS-03 fails (201, an empty access_token) is one finding, TS-03's:
/// the cases that need a token to judge their own rule are inconclusive, and those
/// that count or refuse tokens still see it as one. It had failed eleven MUST rows,
/// "single use" and "a decided code cannot be decided again" among them (helper-102).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_malformed_token_answer_is_ts_03_s_finding_alone() {
    let dependent = [
        "TS-04", "TS-05", "TS-06", "TS-08", "TS-10", "UI-10", "BCP-01", "RT-01", "RT-02", "RT-03",
    ];
    let only: Vec<&str> = ["TS-03"].iter().chain(&dependent).copied().collect();
    for flaw in [Flaw::TokenStatus201, Flaw::AccessTokenEmpty] {
        let r = run(Some(flaw), Setup::Discovery, &only).await;
        assert_eq!(verdict(&r, "TS-03").status, Status::Fail, "{flaw:?}");
        for id in dependent {
            let v = verdict(&r, id);
            assert_ne!(v.status, Status::Fail, "{flaw:?} {id}: {}", v.summary);
        }
        assert_eq!(r.exit_code(), 1, "{flaw:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_slow_down_checks_are_inconclusive_when_the_servers_answers_outlast_its_interval() {
    // RFC 8628 §3.5: a poll is too fast only if it comes sooner than the interval
    // after the one before. A server enforcing the interval (--expect slow-down) whose
    // answers take 1.5 s against a 1 s interval never sees an early poll from a suite
    // that polls one after the other: nothing shows it breaks its declared policy.
    // PL-07 (declared) provokes its slow_down the same way.
    // PL-03, PL-08 and PL-09 judge the slow_down such a poll gets: none came because
    // none was early, so they are inconclusive too; they had said "the server does
    // not send slow_down (PL-01)" (helper-102).
    let r = run(
        Some(Flaw::SlowTokenAnswers),
        Setup::ExpectSlowDown,
        &["PL-01", "PL-07", "PL-03", "PL-08", "PL-09"],
    )
    .await;
    for id in ["PL-01", "PL-07", "PL-03", "PL-08", "PL-09"] {
        assert_inconclusive(&r, id, "SlowTokenAnswers");
        let v = verdict(&r, id);
        assert!(
            v.summary.contains("no poll was too fast"),
            "{id}: {}",
            v.summary
        );
    }
    // Declared, PL-01 and PL-07 are MUSTs, PL-03 a derived MUST and PL-09 a MUST,
    // and none was judged: not "every MUST held" (0).
    assert_eq!(r.exit_code(), 4);
    assert_eq!(r.must_unjudged, 4);
}

// ---------------------------------------------------------------------------------
// Found in the hostile-server review: list fields in two field lines.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_verification_uri_complete_the_suite_cannot_visit_is_judged_by_no_page() {
    // Found in the reports review: UI-05 (a Derived MUST) passed, "visiting
    // verification_uri_complete approved nothing", on a `javascript:` URL the suite's
    // client refused to send, and UI-03 recorded a passing check for the page that
    // never came. Nothing was visited: UI-05 is inconclusive, saying why; UI-03 is
    // judged on the verification_uri alone.
    let r = run(
        Some(Flaw::CompleteUriJavascript),
        Setup::Discovery,
        &["UI-05", "UI-03"],
    )
    .await;
    assert_inconclusive(&r, "UI-05", "CompleteUriJavascript");
    let v = verdict(&r, "UI-05");
    assert!(
        v.summary
            .contains("verification_uri_complete could not be visited"),
        "{}",
        v.summary
    );
    let v = verdict(&r, "UI-03");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
    assert!(
        v.checks.iter().all(|c| !c.what.starts_with("javascript:")),
        "{:?}",
        v.checks
    );
    // Nor is a host listed as contacted for it (its origin had read "null").
    assert!(
        r.network
            .server_named_hosts
            .iter()
            .all(|h| h.origin != "null"),
        "{:?}",
        r.network.server_named_hosts
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_fields_sent_in_two_field_lines_are_read_as_one_list() {
    // RFC 9110 §5.3: `Cache-Control: private` and `Cache-Control: no-store` are the
    // list `private, no-store` (RFC 9111 §5.2); a `Bearer` challenge before the
    // `Basic` one, in one field line or in two, still carries `Basic` (RFC 9110
    // §11.6.1, RFC 6749 §5.2). DR-10, TS-04, DA-07 and TR-06 must hold.
    let r = run(
        Some(Flaw::ListFieldsInTwoLines),
        Setup::Discovery,
        &["DR-10", "TS-04", "DA-07", "TR-06"],
    )
    .await;
    for id in ["DR-10", "TS-04", "DA-07", "TR-06"] {
        let v = verdict(&r, id);
        assert_eq!(v.status, Status::Pass, "{id}: {}", v.summary);
    }
}

// ---------------------------------------------------------------------------------
// Found in the second review: "HTTP 200" read as "a token was issued".

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_sent_as_200_are_no_tokens_and_dr_12_judges_their_status() {
    // RFC 6749 §5.1: a token is a 200 with an access_token; §5.2: an error is 400 (401
    // for invalid_client). A server sending its errors with HTTP 200 breaks §5.2 (DR-12,
    // TS-02), and issues no token by it: the visit to verification_uri_complete, a
    // bystander's poll, a denied, expired or other client's code got false findings
    // ("the visit alone approves") from a test of the status alone.
    let cases = [
        "UI-05", "UI-07", "UI-10", "TS-11", "PL-06", "EX-03", "EX-04", "TR-07", "EX-02", "DR-12",
    ];
    let r = run(Some(Flaw::ErrorsAs200), Setup::Discovery, &cases).await;
    for id in [
        "UI-05", "UI-07", "UI-10", "TS-11", "PL-06", "EX-03", "EX-04",
    ] {
        let v = verdict(&r, id);
        assert_eq!(v.status, Status::Pass, "{id}: {}", v.summary);
    }
    // The no-token expectations hold; the error's status is what fails, at §5.2.
    for id in ["TR-07", "EX-02"] {
        let v = verdict(&r, id);
        assert_eq!(v.status, Status::Fail, "{id}: {}", v.summary);
        assert!(
            v.summary.contains("HTTP 200 (RFC 6749 §5.2"),
            "{id}: {}",
            v.summary
        );
        let no_token: Vec<_> = v
            .checks
            .iter()
            .filter(|k| k.what.contains("no token"))
            .collect();
        assert!(
            !no_token.is_empty() && no_token.iter().all(|k| k.ok),
            "{id}: {:?}",
            v.checks
        );
    }
    // DR-12: an error body with HTTP 200 is an error with the wrong status, not "not
    // refused" (it had said n/a).
    let v = verdict(&r, "DR-12");
    assert_eq!(v.status, Status::Fail, "DR-12: {}", v.summary);
    assert!(
        v.summary.contains("HTTP 200 (RFC 6749 §5.2"),
        "DR-12: {}",
        v.summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dr_07_reads_the_uri_decoded_and_never_fails_an_opaque_handle() {
    // RFC 8628 §3.2: verification_uri_complete includes "the user_code (or other
    // information with the same function as the user_code)". The code percent-encoded
    // (`%2D`) is the code (RFC 3986 §2.1); an opaque handle (`?h=…`) cannot be checked
    // from outside: said so, at Info, never a MUST failure. Both had failed.
    let encoded = run(
        Some(Flaw::CompleteUriPercentEncoded),
        Setup::Discovery,
        &["DR-07"],
    );
    let opaque = run(
        Some(Flaw::CompleteUriOpaqueHandle),
        Setup::Discovery,
        &["DR-07"],
    );
    let wrong = run(
        Some(Flaw::CompleteUriWrongCode),
        Setup::Discovery,
        &["DR-07"],
    );
    let (encoded, opaque, wrong) = tokio::join!(encoded, opaque, wrong);
    let v = verdict(&encoded, "DR-07");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
    let v = verdict(&opaque, "DR-07");
    assert_eq!(v.status, Status::Info, "{}", v.summary);
    assert!(
        v.summary.starts_with("not checked:") && v.summary.contains("same function"),
        "{}",
        v.summary
    );
    assert_eq!(opaque.exit_code(), 0);
    // A user_code parameter naming another request's code still fails.
    let v = verdict(&wrong, "DR-07");
    assert_eq!(v.status, Status::Fail, "{}", v.summary);
    assert!(
        v.summary.contains("its user_code parameter is"),
        "{}",
        v.summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn md_03_compares_the_issuer_the_metadata_url_was_built_from() {
    // `--issuer http://host:port/`: RFC 8414 §3.1 removes the terminating "/" to build
    // the metadata URL, so the server's `"issuer": "http://host:port"` is the issuer
    // the URL was built from (§3.3); MD-03 had compared it with the typed string.
    let r = run(None, Setup::TrailingSlash, &["MD-03"]).await;
    let v = verdict(&r, "MD-03");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
    assert!(
        v.checks
            .iter()
            .any(|k| k.ok && k.what.contains("removes the terminating")),
        "{:?}",
        v.checks
    );
    // Another issuer still fails, with the slash typed or not.
    let r = run(Some(Flaw::IssuerMismatch), Setup::TrailingSlash, &["MD-03"]).await;
    let v = verdict(&r, "MD-03");
    assert_eq!(v.status, Status::Fail, "{}", v.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dr_04_reads_the_uri_scheme_case_insensitively() {
    // RFC 3986 §3.1: "schemes are case-insensitive"; `HTTPS://AS.EXAMPLE/device` is
    // https (RFC 8628 §3.2, via RFC 6749 §3.1's TLS). DR-04 had failed it.
    let r = run(
        Some(Flaw::UpperCaseHttpsVerificationUri),
        Setup::Discovery,
        &["DR-04"],
    )
    .await;
    let v = verdict(&r, "DR-04");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn da_08_judges_an_empty_scope_against_the_same_servers_omitted_scope() {
    // RFC 8628 §3.1: `scope=` is treated as omitted; RFC 6749 §3.3: a server with no
    // default scope refuses an omitted one with invalid_scope. Such a server refusing
    // `scope=` the same way follows both; DA-08 had wanted a 200.
    let r = run(Some(Flaw::NoDefaultScope), Setup::Discovery, &["DA-08"]).await;
    let v = verdict(&r, "DA-08");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
    assert_eq!(v.measured["scope_omitted"], "the error invalid_scope");
    // A server whose omitted scope gets the default but whose `scope=` is refused
    // still fails, saying both answers.
    let r = run(Some(Flaw::EmptyScopeInvalid), Setup::Discovery, &["DA-08"]).await;
    let v = verdict(&r, "DA-08");
    assert_eq!(v.status, Status::Fail, "{}", v.summary);
    assert!(
        v.summary.contains(
            "answered as an omitted scope is: HTTP 200, codes issued (got the error invalid_scope)"
        ),
        "{}",
        v.summary
    );
}

// ---------------------------------------------------------------------------------
// Found in the second review: the suite's own pace (RFC 8628 §3.5, checklist CL-01).

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_keeps_the_pace_a_first_poll_slow_down_asks_for() {
    // A server that answers the first poll slow_down (PL-05 allows it, as a SHOULD)
    // and holds the +5 s for every later poll: the suite, a client bound by §3.5's
    // MUST, must wait interval + 5·k after k slow_downs, every one of them counted
    // (PL-03 had counted only the provoked one), and take slow_down as pending where
    // the row allows it (TR-01, TS-01). TR-01, TS-01, PL-02 and PL-03 had failed.
    let r = run(
        Some(Flaw::FirstPollSlowDown),
        Setup::Discovery,
        &["TR-01", "TS-01", "PL-02", "PL-03", "PL-05"],
    )
    .await;
    for id in ["TR-01", "TS-01", "PL-02", "PL-03"] {
        let v = verdict(&r, id);
        assert_eq!(v.status, Status::Pass, "{id}: {}", v.summary);
    }
    let v = verdict(&r, "PL-05");
    assert_eq!(v.status, Status::Warn, "{}", v.summary);
    // Both slow_downs of the first two polls counted: the first wait is interval + 10 s.
    let v = verdict(&r, "PL-03");
    assert!(
        v.checks.iter().any(|k| k.ok
            && k.what
                .starts_with("after 2 slow_down(s), waiting interval + 5·2")),
        "{:?}",
        v.checks
    );
    // PL-02 says what it did: the first poll went at once, not at the interval.
    let v = verdict(&r, "PL-02");
    assert!(
        v.checks
            .iter()
            .any(|k| k.ok && k.what.starts_with("the first poll, sent at once")),
        "{:?}",
        v.checks
    );
    assert_eq!(r.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ex_01_keeps_the_interval_between_its_polls_around_expiry() {
    // An interval of 12 s and a lifetime of 20 s: EX-01 polled a third of the lifetime
    // before expiry and 3 s after it, 9.7 s apart, whatever the interval, and a server
    // judging the pace before expiry answered slow_down, rightly. EX-01 keeps the
    // interval: the poll before expiry goes early enough.
    let r = run(
        Some(Flaw::LongIntervalPaceFirst),
        Setup::Discovery,
        &["EX-01"],
    )
    .await;
    let v = verdict(&r, "EX-01");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
}

// ---------------------------------------------------------------------------------
// Found in the third review: verdicts stricter than the RFCs.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ts_06_takes_any_token_type_and_notes_one_that_is_not_registered() {
    // RFC 6749 §5.1: token_type is REQUIRED and case-insensitive; §8.1: extension types
    // are legal. `mac` had failed TS-06 as a MUST (only Bearer and DPoP passed); it
    // passes, saying a device that does not understand it cannot use the token (§7.1).
    let mac = run(Some(Flaw::TokenTypeMac), Setup::Discovery, &["TS-06"]);
    let empty = run(Some(Flaw::TokenTypeEmpty), Setup::Discovery, &["TS-06"]);
    let missing = run(
        Some(Flaw::TokenMissingTokenType),
        Setup::Discovery,
        &["TS-06"],
    );
    let (mac, empty, missing) = tokio::join!(mac, empty, missing);
    let v = verdict(&mac, "TS-06");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
    assert!(
        v.summary.contains("\"mac\" is not one IANA registers")
            && v.summary.contains("MUST NOT use the token"),
        "{}",
        v.summary
    );
    assert_eq!(v.measured["token_type_registered"], false);
    assert_eq!(mac.exit_code(), 0);
    // Missing or empty is still RFC 6749 §5.1's breach.
    for (r, got) in [(&empty, "\"\""), (&missing, "nothing")] {
        let v = verdict(r, "TS-06");
        assert_eq!(v.status, Status::Fail, "{}", v.summary);
        assert!(
            v.summary
                .contains(&format!("token_type is a non-empty string (got {got})")),
            "{}",
            v.summary
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_get_served_is_reported_not_failed_as_no_server_must_refuses_it() {
    // RFC 8628 §3.1 and RFC 6749 §3.2 ("The client MUST use the HTTP POST method") bind
    // the client; no text requires a server to refuse a GET: checklist DA-15 and TR-12
    // are Info. The suite had failed them as MUSTs (exit 1).
    for (flaw, id) in [
        (Flaw::GetServedAtDa, "DA-15"),
        (Flaw::GetServedAtToken, "TR-12"),
    ] {
        let r = run(Some(flaw), Setup::Discovery, &[id]).await;
        let case = r.cases.iter().find(|c| c.id == id).unwrap();
        assert_eq!(case.info.level.as_str(), "Info", "{id}");
        let v = &case.verdict;
        assert_eq!(v.status, Status::Info, "{id}: {}", v.summary);
        // What the GET got is said: the report still shows a GET was served.
        assert!(v.checks.iter().any(|k| !k.ok), "{id}: {:?}", v.checks);
        assert_eq!(r.exit_code(), 0, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ts_02_judges_an_error_s_shape_and_only_names_an_unusual_code() {
    // Checklist TS-02 (RFC 6749 §5.2): "Error bodies are JSON objects with an `error`
    // string in the allowed charset, and `application/json`". A missing grant_type
    // answered with a well-formed invalid_grant is no breach of that row: TS-02 passes,
    // and says the code it got.
    let r = run(
        Some(Flaw::MissingGrantInvalidGrant),
        Setup::Discovery,
        &["TS-02"],
    )
    .await;
    let v = verdict(&r, "TS-02");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
    assert!(
        v.checks.iter().any(|c| c.ok
            && c.what.contains(
                "grant_type missing: a well-formed error (invalid_grant, where invalid_request or unsupported_grant_type is usual"
            )),
        "{:?}",
        v.checks
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ts_02_keeps_the_interval_from_its_pending_poll_to_the_polls_after_approval() {
    // RFC 8628 §3.5 (checklist CL-01): TS-02 polled its code, had it approved, and
    // polled again at once, well inside the interval: a server that judges the pace
    // before the state (Keycloak; a SHOULD, PL-06) rightly answered slow_down.
    let r = run(
        Some(Flaw::SlowDownBeforeStatus),
        Setup::Discovery,
        &["TS-02"],
    )
    .await;
    let v = verdict(&r, "TS-02");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
    let slowed: Vec<String> = v
        .evidence
        .iter()
        .filter(|e| e.error_code().as_deref() == Some("slow_down"))
        .map(|e| e.brief())
        .collect();
    assert!(slowed.is_empty(), "polled too early: {slowed:?}");
    assert!(
        v.evidence
            .iter()
            .any(deviceflow_conformance::cases::issued_token),
        "the approval's token is in the evidence"
    );
}

// ---------------------------------------------------------------------------------
// Found in the fourth review: a transient refusal judged as the server's answer, and a
// poll sent inside the interval of the poll before it.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn da_08_waits_out_a_rate_limit_and_never_fails_a_transient_refusal() {
    // RFC 8628 §3.1 (RFC 6749 §3.3): `scope=` is treated as an omitted scope. DA-08
    // compared the two answers as strings: a 429 (RFC 6585 §4) to one of them, from a
    // rate limit in front of the server, failed the MUST. It is sent again after its
    // Retry-After; a server error that lasts leaves DA-08 inconclusive, never failed.
    let limited = run(
        Some(Flaw::EmptyScopeRateLimitedOnce),
        Setup::Discovery,
        &["DA-08"],
    );
    let unavailable = run(
        Some(Flaw::EmptyScopeUnavailable),
        Setup::Discovery,
        &["DA-08"],
    );
    let invalid = run(Some(Flaw::EmptyScopeInvalid), Setup::Discovery, &["DA-08"]);
    let (limited, unavailable, invalid) = tokio::join!(limited, unavailable, invalid);
    let v = verdict(&limited, "DA-08");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
    let statuses: Vec<(String, Option<u16>)> = v
        .evidence
        .iter()
        .map(|e| (e.label.clone(), e.status()))
        .collect();
    assert!(
        statuses.contains(&("scope= (empty)".to_owned(), Some(429)))
            && statuses.contains(&("scope= (empty)".to_owned(), Some(200))),
        "the 429, then the answer: {statuses:?}"
    );
    // Retry-After: 1 was waited.
    let case = limited.cases.iter().find(|c| c.id == "DA-08").unwrap();
    assert!(case.duration_ms >= 1000, "{} ms", case.duration_ms);
    assert_eq!(limited.exit_code(), 0);
    // A 503 to every `scope=`: inconclusive, said with the answer, and not a MUST known
    // to hold (exit 4).
    assert_inconclusive(&unavailable, "DA-08", "503 each time");
    let v = verdict(&unavailable, "DA-08");
    assert!(
        v.summary
            .contains("scope= (empty) was answered HTTP 503, Retry-After: 1"),
        "{}",
        v.summary
    );
    assert_eq!(unavailable.exit_code(), 4);
    // The server's own refusal of `scope=` still fails.
    let v = verdict(&invalid, "DA-08");
    assert_eq!(v.status, Status::Fail, "{}", v.summary);
    assert_eq!(invalid.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tr_07_keeps_the_interval_between_its_polls_of_one_code() {
    // RFC 8628 §3.5 (CL-01): TR-07 polled A's code as B before approval and again at
    // once after it, inside the interval: a server that judges the pace before the
    // client binding (Keycloak's order) rightly answered slow_down to (b), and TR-07
    // failed it. Both polls are one code's, kept at its pace.
    let pace_first = run(Some(Flaw::PaceBeforeClient), Setup::Discovery, &["TR-07"]);
    let cross = run(Some(Flaw::CrossClient), Setup::Discovery, &["TR-07"]);
    let (pace_first, cross) = tokio::join!(pace_first, cross);
    let v = verdict(&pace_first, "TR-07");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
    let slowed: Vec<String> = v
        .evidence
        .iter()
        .filter(|e| e.error_code().as_deref() == Some("slow_down"))
        .map(|e| e.brief())
        .collect();
    assert!(slowed.is_empty(), "polled too early: {slowed:?}");
    assert!(
        v.evidence
            .iter()
            .any(|e| e.label.starts_with("(b)")
                && e.error_code().as_deref() == Some("invalid_grant")),
        "(b) was judged"
    );
    assert_eq!(pace_first.exit_code(), 0);
    // The binding was tried against a confidential client only, and TR-07 says so.
    let v = verdict(&pace_first, "TR-07");
    assert!(
        v.measured["other_client"]
            .as_str()
            .is_some_and(|w| w.starts_with("confidential: the binding for a public client")),
        "{:?}",
        v.measured
    );
    // A server that gives A's tokens to B is still caught.
    let v = verdict(&cross, "TR-07");
    assert_eq!(v.status, Status::Fail, "{}", v.summary);
    assert_eq!(cross.exit_code(), 1);
}

// ---------------------------------------------------------------------------------
// Found in the fifth review (a deliberately broken server, and a correct one behind a
// rate limit): passes by assumption, and a rate limit failed as the rule of the case.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ts_05_sees_an_unnamed_scope_by_introspection_never_by_assumption() {
    // RFC 6749 §5.1: scope is "OPTIONAL, if identical to the scope requested by the
    // client; otherwise, REQUIRED". A token response without scope from a server that
    // granted more (introspection, RFC 7662 §2.2, shows it) had passed TS-05 (a).
    let widened = run(
        Some(Flaw::ScopeWidenedUnnamed),
        Setup::Discovery,
        &["TS-05"],
    );
    let unseen = run(
        Some(Flaw::ScopeWidenedUnnamed),
        Setup::NoIntrospection,
        &["TS-05"],
    );
    let (widened, unseen) = tokio::join!(widened, unseen);
    let v = verdict(&widened, "TS-05");
    assert_eq!(v.status, Status::Fail, "{}", v.summary);
    assert!(
        v.summary
            .contains("introspection shows the token's scope within it")
            && v.summary.contains("openid profile admin"),
        "{}",
        v.summary
    );
    assert_eq!(widened.exit_code(), 1);
    // Without introspection the part is not judged, and says so: not a MUST that held.
    let v = verdict(&unseen, "TS-05");
    assert!(
        v.summary
            .contains("the granted scope of (a) not checked: no introspection endpoint"),
        "{:?}: {}",
        v.status,
        v.summary
    );
    assert!(
        v.measured
            .contains_key(deviceflow_conformance::case::NOT_JUDGED),
        "{:?}",
        v.measured
    );
    assert_eq!(unseen.exit_code(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_in_front_of_the_server_is_waited_out_and_never_failed() {
    // RFC 8628 §5.1 recommends rate limiting, and checklist PL-10 says a 429 is not an
    // RFC 8628 signal. A front refusing every other request with 429 and Retry-After:
    // 1 (RFC 6585 §4) failed the MUST of each case whose precondition or request it
    // met (the device authorization of DR-07, TS-04, TR-07, PL-02; a poll of TR-01;
    // the refresh of RT-01, BCP-01; DA-06's and DA-10's requests). Each request is sent
    // again after the Retry-After, and judged on the server's answer. One case a run,
    // so that every request meets the 429 first.
    let ids = [
        "DA-06", "DA-10", "DR-07", "TR-01", "TR-07", "TS-04", "PL-02", "RT-01", "BCP-01",
    ];
    let runs = ids.map(|id| async move {
        (
            id,
            run(Some(Flaw::RateLimitedEveryOther), Setup::Discovery, &[id]).await,
        )
    });
    for (id, r) in futures_util::future::join_all(runs).await {
        let v = verdict(&r, id);
        assert_eq!(v.status, Status::Pass, "{id}: {}", v.summary);
        assert!(
            v.evidence.iter().any(|e| e.status() == Some(429)),
            "{id}: the 429 waited out is in the evidence"
        );
        assert_eq!(r.exit_code(), 0, "{id}");
    }
    // A rate limit that outlasts the retries: inconclusive, with the answer, never the
    // server's failure, and no MUST known to hold (exit 4).
    let r = run(
        Some(Flaw::TokenRateLimited),
        Setup::Discovery,
        &["TS-04", "TR-01"],
    )
    .await;
    for id in ["TS-04", "TR-01"] {
        assert_inconclusive(&r, id, "429 to every token request");
        let v = verdict(&r, id);
        assert!(
            v.summary
                .contains("was answered HTTP 429, Retry-After: 1 after 4 tries"),
            "{id}: {}",
            v.summary
        );
    }
    assert_eq!(r.exit_code(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ui_10_refuses_a_well_formed_code_that_was_never_issued() {
    // Checklist UI-10 (RFC 8628 §5.1): "Random well-formed code → error". UI-10 had
    // tried only a second decision on a decided code: a server taking a decision on a
    // code it never issued passed.
    let accepted = run(
        Some(Flaw::UnknownCodeAccepted),
        Setup::Discovery,
        &["UI-10"],
    );
    let correct = run(None, Setup::Discovery, &["UI-10"]);
    let (accepted, correct) = tokio::join!(accepted, correct);
    let v = verdict(&accepted, "UI-10");
    assert_eq!(v.status, Status::Fail, "{}", v.summary);
    assert!(
        v.summary.contains(
            "a well-formed user code never issued is refused (got: the approval of each of"
        ),
        "{}",
        v.summary
    );
    assert_eq!(accepted.exit_code(), 1);
    // The fake's admin endpoint refuses it, as deviceflow-server's does: on the record.
    let v = verdict(&correct, "UI-10");
    assert_eq!(v.status, Status::Pass, "{}", v.summary);
    let why = v.measured["never_issued_code_refused"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("unknown_user_code"), "{why}");
    // Where codes are few, a random one may be a stranger's pending code: approving
    // it would connect their device to the test user, so it is not tried.
    let short = run(Some(Flaw::ShortUserCode), Setup::Discovery, &["UI-10"]).await;
    let v = verdict(&short, "UI-10");
    let why = v.measured["not_judged"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("a code never issued was not tried"),
        "{}: {why}",
        v.summary
    );
    assert!(!v.measured.contains_key("never_issued_code_refused"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ts_08_and_ts_09_judge_a_replay_only_on_what_they_can_see() {
    // Checklist TS-09 (RFC 6749 §4.1.2 by analogy): "inactive after the replay" shows
    // a revocation only if the token was active before it; an introspection that shows
    // no token active had passed TS-09. A replay that got no answer had made TS-09 warn
    // and TS-08 warn with `got ""`: what a replay does is unknown, so both are
    // inconclusive, saying what came of the replay.
    let inactive = run(
        Some(Flaw::IntrospectionAlwaysInactive),
        Setup::Discovery,
        &["TS-09"],
    );
    let hangs = run(
        Some(Flaw::ReplayHangs),
        Setup::Discovery,
        &["TS-08", "TS-09"],
    );
    let (inactive, hangs) = tokio::join!(inactive, hangs);
    assert_inconclusive(&inactive, "TS-09", "never shown active");
    let v = verdict(&inactive, "TS-09");
    assert!(
        v.summary.contains("active before the replay"),
        "{}",
        v.summary
    );
    for id in ["TS-08", "TS-09"] {
        assert_inconclusive(&hangs, id, "the replay timed out");
        let v = verdict(&hangs, id);
        assert!(
            v.summary.contains("got no answer (no response: timed out"),
            "{id}: {}",
            v.summary
        );
    }
    // TS-08 is a Derived-MUST not judged: not one known to hold.
    assert_eq!(hangs.exit_code(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_response_that_is_not_json_says_why() {
    // RFC 6749 §5.1: the token response is a JSON object. A 200 whose body does not
    // parse failed TS-04 with the body alone; it says the parse error, as TS-03 does.
    let r = run(Some(Flaw::TokenBodyNotJson), Setup::Discovery, &["TS-04"]).await;
    let v = verdict(&r, "TS-04");
    assert_eq!(v.status, Status::Fail, "{}", v.summary);
    assert!(
        v.summary.contains("the body is not one JSON object:"),
        "{}",
        v.summary
    );
}

/// Checklist UI-01, UI-13: a verification page that first sets a cookie and redirects
/// to itself (a browser follows with the cookie) is a page, reached and judged as a
/// browser reaches it. Without the cookie carried from hop to hop, UI-01 failed on the
/// redirect and UI-13 on a page it never saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_that_sets_a_cookie_on_a_redirect_first_is_reached_as_in_a_browser() {
    let r = run(
        Some(Flaw::CookieFirst),
        Setup::Discovery,
        &["UI-01", "UI-13"],
    )
    .await;
    for id in ["UI-01", "UI-13"] {
        let v = verdict(&r, id);
        assert_eq!(v.status, Status::Pass, "{id}: {v:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ex_04_judges_only_what_follows_an_expired_token() {
    // A server that never says expired_token (pending forever: EX-01's finding) gives
    // EX-04 nothing to judge; it had warned, on polls that all got pending (review
    // helper-98 against django-oauth-toolkit).
    let r = run(Some(Flaw::NoExpiry), Setup::Discovery, &["EX-04"]).await;
    let v = verdict(&r, "EX-04");
    assert_eq!(v.status, Status::NotApplicable, "{}", v.summary);
    assert!(
        v.summary
            .contains("no poll after expiry was answered expired_token"),
        "{}",
        v.summary
    );
    // One that says it and then pending again still warns.
    let r = run(Some(Flaw::ExpiredThenPending), Setup::Discovery, &["EX-04"]).await;
    assert_eq!(verdict(&r, "EX-04").status, Status::Warn);
}
