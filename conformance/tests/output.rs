//! What a person reads: one root cause instead of a cascade, whole findings into a
//! file or a pipe, levels that never read as outcomes, a header in words, a `--help`
//! with worked examples and the exit codes, and a hostile server's words shown as
//! text, of bounded size, in every output. The command is run as a person runs it,
//! against the fake servers of `fake/`.

mod command;
mod fake;
mod tiny;

use std::time::Duration;

use deviceflow_conformance::case::Status;
use deviceflow_conformance::target::TargetError;
use deviceflow_conformance::{resolve, Approver, Client, Options, Report, Selection, TargetSpec};
use deviceflow_testkit::markdown::raw_html;
use fake::Flaw;

use command::command;

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn suite(flaw: Flaw, explicit: bool, only: &[&str]) -> Result<Report, TargetError> {
    let base = fake::start(Some(flaw)).await;
    let options = Options {
        request_timeout: Duration::from_secs(2),
        samples: 20,
        ..Options::default()
    };
    let spec = TargetSpec {
        issuer: Some(base.clone()),
        device_authorization_endpoint: explicit.then(|| format!("{base}/da")),
        token_endpoint: explicit.then(|| format!("{base}/token")),
        client: Some(Client::public("client-a")),
        ..TargetSpec::default()
    };
    let http =
        deviceflow_conformance::http::Http::new(options.request_timeout, spec.reach(false).await);
    let target = resolve(spec, &http).await?;
    let approver = Approver::admin(format!("{base}/admin"), fake::ADMIN, "alice");
    let selection = Selection {
        only: only.iter().map(|s| s.to_string()).collect(),
        skip: vec![],
    };
    Ok(deviceflow_conformance::run(target, approver, options, &selection, true).await)
}

fn count(r: &Report, s: Status) -> usize {
    r.cases.iter().filter(|c| c.verdict.status == s).count()
}

#[tokio::test]
async fn connection_refused_is_said_once_as_unreachable_never_as_a_missing_endpoint() {
    let base = format!("http://127.0.0.1:{}", closed_port());
    // Discovery only: the command stops at the one cause, exit 3.
    let r = command(&["--issuer", &base, "--client-id", "tv"]).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("cannot reach"), "{}", r.stderr);
    assert!(r.stderr.contains("Connection refused"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("no device authorization endpoint"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    // Endpoints given: a report with the root cause once and no failed case.
    let (da, token) = (format!("{base}/da"), format!("{base}/token"));
    let r = command(&[
        "--device-authorization-endpoint",
        &da,
        "--token-endpoint",
        &token,
        "--client-id",
        "tv",
    ])
    .await;
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert_eq!(r.stdout.matches("ROOT CAUSE").count(), 1, "{}", r.stdout);
    assert!(r
        .stdout
        .contains("cannot reach the device authorization endpoint"));
    assert!(
        !r.stdout.lines().any(|l| l.contains("FAIL")),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.lines().any(|l| l.contains("PASS")),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn a_server_that_is_not_oauth_is_one_root_cause_not_a_cascade() {
    // Endpoints given by hand, every one answering an HTML 404.
    let r = suite(Flaw::NotOAuth, true, &[]).await.unwrap();
    let cause = r.root_cause.as_ref().expect("a root cause");
    assert_eq!(cause.case, None, "not a finding: nothing to test");
    assert!(cause.summary.contains("HTTP 404"), "{}", cause.summary);
    assert!(cause
        .summary
        .contains("not a device authorization endpoint"));
    assert_eq!((count(&r, Status::Fail), count(&r, Status::Pass)), (0, 0));
    assert_eq!(count(&r, Status::Skip), r.cases.len());
    assert_eq!(r.exit_code(), 3);
    // The skips are the root cause's, not counted again as MUSTs not judged.
    assert_eq!((r.must_unjudged, r.must_not_run), (0, 0));
    assert_eq!(r.must_line(), "0 MUST failure(s)");
    // Discovery only: no metadata there, said as such.
    let err = suite(Flaw::NotOAuth, false, &[]).await.unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("no OAuth metadata at"), "{text}");
    assert!(text.contains("HTTP 404"), "{text}");
}

#[tokio::test]
async fn a_broken_device_authorization_is_its_rules_finding_and_nothing_else() {
    // No device_code in the response: DR-02 fails, once; nothing consequent runs.
    let r = suite(Flaw::NoDeviceCode, false, &["A.5"]).await.unwrap();
    let cause = r.root_cause.as_ref().unwrap();
    assert_eq!(cause.case, Some("DR-02"));
    let failed: Vec<&str> = r
        .cases
        .iter()
        .filter(|c| c.verdict.status == Status::Fail)
        .map(|c| c.id)
        .collect();
    assert_eq!(failed, ["DR-02"]);
    assert_eq!(count(&r, Status::Pass), 0);
    assert_eq!(r.exit_code(), 1);
}

#[tokio::test]
async fn metadata_without_the_device_endpoint_is_a_finding_and_given_endpoints_go_on() {
    // Discovery only: MD-01 is the root cause, a warning (RFC 8628 §4 makes the member
    // OPTIONAL; it had failed as a Derived MUST, review helper-98), and nothing else
    // can be tested: exit 3, and JUnit says the run failed.
    let r = suite(Flaw::NoDaInMetadata, false, &[]).await.unwrap();
    assert_eq!(r.root_cause.as_ref().and_then(|c| c.case), Some("MD-01"));
    let md01 = r.cases.iter().find(|c| c.id == "MD-01").unwrap();
    assert_eq!(md01.verdict.status, Status::Warn);
    assert_eq!(r.exit_code(), 3);
    assert!(deviceflow_conformance::report::junit(&r).contains("the target could not be tested"),);
    // The endpoint given by hand: the run goes on, and MD-01 still warns.
    let r = suite(Flaw::NoDaInMetadata, true, &["DA-01", "MD-01"])
        .await
        .unwrap();
    assert!(r.root_cause.is_none());
    let status = |id| r.cases.iter().find(|c| c.id == id).unwrap().verdict.status;
    assert_eq!(
        (status("DA-01"), status("MD-01")),
        (Status::Pass, Status::Warn)
    );
}

#[tokio::test]
async fn into_a_pipe_findings_are_whole_levels_never_read_as_outcomes_and_the_header_is_words() {
    let base = fake::start(Some(Flaw::CompleteUriWrongCode)).await;
    let admin = format!("{base}/admin");
    let r = command(&[
        "--issuer",
        &base,
        "--client-id",
        "client-a",
        "--approver",
        "admin",
        "--admin-url",
        &admin,
        "--admin-token",
        fake::ADMIN,
        "--only",
        "DR-07,DR-11,DA-01",
    ])
    .await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let dr07 = r.stdout.lines().find(|l| l.contains("DR-07")).unwrap();
    assert!(dr07.chars().count() > 120, "{dr07}");
    assert!(!r.stdout.contains('…'), "{}", r.stdout);
    assert!(dr07.contains("carries the user code"), "{dr07}");
    // `grep FAIL` finds the failed rows and nothing else (DR-11 is a Derived-MUST
    // that passes).
    let fail_lines: Vec<&str> = r.stdout.lines().filter(|l| l.contains("FAIL")).collect();
    assert_eq!(fail_lines.len(), 1, "{fail_lines:?}");
    assert!(fail_lines[0].trim_start().starts_with("FAIL DR-07"));
    assert!(r.stdout.contains("Derived-MUST"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("client client-a (public, no secret), approver: admin endpoint"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("(None)") && !r.stdout.contains("Some("));
}

#[tokio::test]
async fn help_shows_worked_examples_the_profiles_and_the_exit_codes() {
    let r = command(&["--help"]).await;
    assert_eq!(r.code, 0);
    for needed in [
        "Examples:",
        "--approver admin --admin-token",
        "--approver-command",
        "--expect slow-down",
        "Profiles (--expect):",
        "Exit codes:",
        "0  every MUST",
        "1  a MUST or Derived-MUST case failed",
        "2  bad usage",
        "3  the target could not be tested",
    ] {
        assert!(r.stdout.contains(needed), "--help lacks {needed:?}");
    }
    // Bad usage: one readable line, exit 2.
    let r = command(&[
        "--issuer",
        "http://127.0.0.1:1",
        "--client-id",
        "x",
        "--only",
        "XX-99",
    ])
    .await;
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("XX-99"));
}

#[tokio::test]
async fn an_endless_device_authorization_body_is_named_as_too_large_not_as_not_json() {
    // The endpoints given by hand (no discovery), every one answering 200 with a JSON
    // body that never ends: the preflight reads 1 MiB and must say so, as a finding
    // against the server (DR-01, RFC 8628 §3.2), not "not an OAuth endpoint".
    let base = fake::start_endless_body().await;
    let options = Options {
        request_timeout: Duration::from_secs(5),
        ..Options::default()
    };
    let spec = TargetSpec {
        device_authorization_endpoint: Some(format!("{base}/da")),
        token_endpoint: Some(format!("{base}/token")),
        client: Some(Client::public("client-a")),
        ..TargetSpec::default()
    };
    let http =
        deviceflow_conformance::http::Http::new(options.request_timeout, spec.reach(false).await);
    let target = resolve(spec, &http).await.unwrap();
    let selection = Selection {
        only: vec!["DA-01".into()],
        skip: vec![],
    };
    let r = deviceflow_conformance::run(target, Approver::None, options, &selection, true).await;
    let cause = r.root_cause.as_ref().expect("a root cause");
    assert!(cause.summary.contains("1 MiB"), "{}", cause.summary);
    assert!(!cause.summary.contains("not JSON"), "{}", cause.summary);
    assert_eq!(cause.case, Some("DR-01"), "{}", cause.summary);
    assert_eq!(r.exit_code(), 1);
}

/// Whether `c` is a character a terminal acts on (a control but the line feed, a
/// bidirectional override).
fn acts_on_a_terminal(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202A}'..='\u{202E}')
}

/// The lines of `markdown` outside its fenced code blocks (CommonMark §4.5: a fence
/// closes with a run of backticks at least as long as the one that opened it).
fn outside_fences(markdown: &str) -> Vec<&str> {
    let mut open: Option<usize> = None;
    let mut outside = Vec::new();
    for line in markdown.lines() {
        let run = line.trim_start().chars().take_while(|&c| c == '`').count();
        match open {
            Some(n) if run >= n && line.trim_start()[run..].trim().is_empty() => open = None,
            Some(_) => {}
            None if run >= 3 => open = Some(run),
            None => outside.push(line),
        }
    }
    outside
}

#[tokio::test]
async fn a_hostile_servers_words_are_shown_as_text_of_bounded_size_in_every_output() {
    let base = fake::start_hostile().await;
    let dir = std::env::temp_dir().join(format!("dfc-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (md, xml, json) = (dir.join("r.md"), dir.join("r.xml"), dir.join("r.json"));
    // Not through `command`: the progress on standard error is checked too.
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_deviceflow-conformance"))
            .args(["--issuer", &base, "--client-id", "tv"])
            .args(["--only", "TR-02,TS-02,UI-01,DR-07"])
            .arg("--markdown")
            .arg(&md)
            .arg("--junit")
            .arg(&xml)
            .arg("--json")
            .arg(&json)
            .env_remove("COLUMNS")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the command finishes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    // The terminal: the escapes are shown (`\u{1b}`), never sent; the fake verdict
    // stays inside its finding.
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(!text.contains(acts_on_a_terminal), "{name}: {text:?}");
        assert!(text.contains(r"\u{1b}]52;c;cHduZWQ="), "{name}: {text}");
        assert!(!text
            .lines()
            .any(|l| l.trim_start().starts_with("PASS TS-02")));
        // 200,000 characters of description, quoted by each case: cut, not copied.
        assert!(text.len() < 64 * 1024, "{name}: {} bytes", text.len());
    }
    // Markdown: the server's words stay inside their cell, item or fence: no raw
    // HTML, no heading of theirs, no escape sequence.
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(!md.contains(acts_on_a_terminal), "{md:?}");
    for line in outside_fences(&md) {
        assert!(!raw_html(line), "{line}");
        assert!(!line.starts_with("# heading"), "{line}");
    }
    assert!(md.len() < 128 * 1024, "markdown: {} bytes", md.len());
    // JUnit: only characters XML 1.0 can carry, and no C1 control (§2.2 discourages
    // them; a CI log printing the failure would send them to a terminal), nor a raw
    // carriage return (`cat` would go back to the start of the line and print the
    // server's "PASS" over the FAIL): the server's CR is `&#13;`.
    let xml = std::fs::read_to_string(&xml).unwrap();
    assert!(
        !xml.contains(|c: char| (c.is_control() && !matches!(c, '\t' | '\n'))
            || matches!(c, '\u{FFFE}' | '\u{FFFF}')),
        "{xml:?}"
    );
    assert!(xml.len() < 128 * 1024, "junit: {} bytes", xml.len());
    let json = std::fs::read_to_string(&json).unwrap();
    assert!(json.len() < 256 * 1024, "json: {} bytes", json.len());
    // JSON: what a terminal acts on is written as a `\u` escape (RFC 8259 §7), never
    // raw: serde_json escapes only U+0000-U+001F, and `cat report.json` or a CI log
    // must not obey a C1 CSI (U+009B) or a bidirectional override the server sent.
    assert!(!json.contains(acts_on_a_terminal), "json: {json:?}");
    serde_json::from_str::<serde_json::Value>(&json).expect("the report is JSON");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_markdown_shows_every_expectation_that_did_not_hold_not_only_the_first() {
    // DA-10 against a server that takes repeats: client_id twice and scope twice both
    // accepted. The finding's line names the first; a reader of the report must see
    // the second too (the peers' reports had shown one refused variant of three).
    let r = suite(Flaw::RepeatsAcceptedAtDa, false, &["DA-10"])
        .await
        .unwrap();
    let case = r.cases.iter().find(|c| c.id == "DA-10").unwrap();
    assert_eq!(
        case.verdict.status,
        Status::Fail,
        "{}",
        case.verdict.summary
    );
    let md = deviceflow_conformance::report::markdown(&r);
    let section = md
        .split("### FAIL DA-10")
        .nth(1)
        .expect("DA-10 has an evidence section");
    // Markdown escapes the underscore: client\_id.
    for label in [
        "- client\\_id twice: a well-formed",
        "- scope twice: a well-formed",
    ] {
        assert!(
            section.lines().any(|l| l.starts_with(label)),
            "{label:?} is not listed:\n{section}"
        );
    }
}

#[tokio::test]
async fn metadata_that_never_answers_is_named_not_hidden_behind_the_next_urls_404() {
    // The RFC 8414 URL times out and OpenID Connect Discovery's is a 404: the reason
    // must say both, the timeout first, not only the 404 (which reads as "no
    // metadata published").
    let err = suite(Flaw::MetadataHangs, false, &[]).await.unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("no OAuth metadata at"), "{text}");
    assert!(text.contains("oauth-authorization-server"), "{text}");
    assert!(text.contains("timed out"), "{text}");
    assert!(text.contains("HTTP 404"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

#[tokio::test]
async fn a_redirecting_endpoint_is_said_as_a_redirect_with_where_it_points() {
    // A 308 to `/da/` is not "not an OAuth endpoint": the person must learn where it
    // points, and that the suite does not follow it.
    let r = suite(Flaw::DaRedirects, false, &["DA-01"]).await.unwrap();
    let cause = r.root_cause.as_ref().expect("a root cause");
    assert_eq!(cause.case, None, "{}", cause.summary);
    assert!(cause.summary.contains("HTTP 308"), "{}", cause.summary);
    assert!(cause.summary.contains("redirect"), "{}", cause.summary);
    assert!(cause.summary.contains("/da/"), "{}", cause.summary);
    assert!(
        !cause.summary.contains("not an OAuth endpoint"),
        "{}",
        cause.summary
    );
    assert_eq!(r.exit_code(), 3);
}

#[tokio::test]
async fn a_carriage_return_a_server_sends_is_no_carriage_return_in_junit() {
    // PL-10 (Info) quotes the error codes of its burst in its finding; JUnit writes
    // it in <system-out>. A raw CR there made `cat junit.xml` print the server's words
    // over the start of the line: "PASS all MUST rows hold".
    let (base, _) = tiny::serve("127.0.0.1", |me, method, path| match (method, path) {
        ("GET", "/.well-known/oauth-authorization-server") => tiny::json(
            "200 OK",
            serde_json::json!({
                "issuer": me,
                "device_authorization_endpoint": format!("{me}/da"),
                "token_endpoint": format!("{me}/token"),
            })
            .to_string(),
        ),
        ("POST", "/da") => tiny::json(
            "200 OK",
            serde_json::json!({
                "device_code": "dc-0123456789abcdef0123456789",
                "user_code": "WDJB-MJHT",
                "verification_uri": format!("{me}/device"),
                "expires_in": 600,
                "interval": 1
            })
            .to_string(),
        ),
        _ => tiny::json(
            "400 Bad Request",
            r#"{"error":"invalid_grant\r<testcase name=\"TS-01\"/> PASS all MUST rows hold"}"#
                .to_owned(),
        ),
    })
    .await;
    let xml = std::env::temp_dir().join(format!("dfc-cr-{}.xml", std::process::id()));
    let xml_arg = xml.to_string_lossy().into_owned();
    let r = command(&[
        "--issuer",
        &base,
        "--client-id",
        "tv",
        "--only",
        "PL-10",
        "--junit",
        &xml_arg,
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let junit = std::fs::read_to_string(&xml).unwrap();
    assert!(junit.contains("invalid_grant&#13;&lt;testcase"), "{junit}");
    assert!(!junit.contains('\r'), "{junit:?}");
    std::fs::remove_file(&xml).unwrap();
}
