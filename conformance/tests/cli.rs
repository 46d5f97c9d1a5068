//! The command's edges, run as a person runs it: numbers out of range and malformed
//! URLs are usage errors said in one line; a report that cannot be written is found
//! before the run; an approver that does not work makes its cases inconclusive, never
//! the server's failures; findings read in words; a standard output that cannot be
//! written is said in one line. Against the fake server of `fake/`.

mod command;
mod fake;

use fake::Flaw;

use command::{command, command_with_env, command_writing_to, Run};

/// The command against a fake with `flaw`, `--only` the cases named, plus `extra`.
async fn against(flaw: Option<Flaw>, only: &str, extra: &[&str]) -> Run {
    let base = fake::start(flaw).await;
    let mut args = vec!["--issuer", &base, "--client-id", "client-a", "--only", only];
    args.extend_from_slice(extra);
    command(&args).await
}

fn line(stdout: &str, id: &str) -> String {
    stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(id))
        .unwrap_or_else(|| panic!("no {id} row in:\n{stdout}"))
        .to_owned()
}

fn one_line_usage_error(r: &Run, option: &str) {
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains(option), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[tokio::test]
async fn numbers_out_of_range_are_refused_at_once_in_one_line() {
    for (option, value) in [
        ("--max-wait", "18446744073709551615"),
        ("--max-wait", "9223372036854775807"),
        ("--max-wait", "86401"),
        ("--samples", "18446744073709551615"),
        ("--samples", "100000000000"),
        ("--concurrency", "18446744073709551615"),
        ("--timeout", "18446744073709551615"),
    ] {
        let r = against(None, "DR-08", &[option, value]).await;
        one_line_usage_error(&r, option);
    }
    // The largest allowed --max-wait runs.
    let r = against(None, "DR-01", &["--max-wait", "86400"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[tokio::test]
async fn an_unwritable_report_is_found_before_the_run_and_nothing_is_written() {
    let dir = std::env::temp_dir().join(format!("dfc-cli-{}", std::process::id()));
    let markdown = dir.join("ok2.md");
    let markdown = markdown.to_str().unwrap();
    let r = against(
        None,
        "DR-01",
        &["--markdown", markdown, "--json", "/proc/nope/r.json"],
    )
    .await;
    one_line_usage_error(&r, "--json");
    assert!(r.stderr.contains("/proc/nope"), "{}", r.stderr);
    // Checked, not written: the run never started.
    assert!(!std::path::Path::new(markdown).exists());
    // Writable paths are written after the run, folders created.
    let json = dir.join("deep").join("r.json");
    let r = against(
        None,
        "DR-01",
        &["--markdown", markdown, "--json", json.to_str().unwrap()],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(std::path::Path::new(markdown).exists());
    assert!(json.exists());
    // One file named twice (`./` or not): one report would have overwritten the other.
    let twice = dir.join("twice.out");
    let same = format!("{}/./twice.out", dir.display());
    let r = against(
        None,
        "DR-01",
        &["--json", twice.to_str().unwrap(), "--markdown", &same],
    )
    .await;
    one_line_usage_error(&r, "--json and --markdown name the same file");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn malformed_urls_are_usage_errors_not_an_unreachable_target() {
    for issuer in ["127.0.0.1:31080", "ftp://127.0.0.1:31080/", "not a url"] {
        let r = command(&["--issuer", issuer, "--client-id", "tv"]).await;
        one_line_usage_error(&r, "--issuer");
    }
    let r = command(&[
        "--device-authorization-endpoint",
        "foo",
        "--token-endpoint",
        "http://127.0.0.1:1/token",
        "--client-id",
        "tv",
    ])
    .await;
    one_line_usage_error(&r, "--device-authorization-endpoint");
    // Credentials in a URL: refused, and never echoed (the message had quoted the
    // password, as "cannot reach http://tv:s3cr3t-pw@…").
    for (option, url) in [
        ("--issuer", "http://tv:s3cr3t-pw@127.0.0.1:1"),
        ("--token-endpoint", "ftp://tv:s3cr3t-pw@127.0.0.1:1/token"),
    ] {
        let mut args = vec![option, url, "--client-id", "tv"];
        if option != "--issuer" {
            args.extend(["--issuer", "http://127.0.0.1:1"]);
        }
        let r = command(&args).await;
        one_line_usage_error(&r, option);
        assert!(r.stderr.contains("credentials"), "{}", r.stderr);
        assert!(!r.stderr.contains("s3cr3t-pw"), "{}", r.stderr);
    }
}

/// The approver-driven cases against an unflawed fake with `approver` options: each
/// must be inconclusive (a skip saying why), none a failure, and the exit code 4 (MUST
/// cases not judged), never 0 as if every MUST held.
async fn inconclusive_with(approver: &[&str], why: &str) {
    let base = fake::start(None).await;
    let mut args = vec![
        "--issuer",
        &base,
        "--client-id",
        "client-a",
        "--only",
        "TS-03,TS-11,PL-06,TR-07",
        "--second-client",
        "client-b",
    ];
    args.extend_from_slice(approver);
    let r = command(&args).await;
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("MUST case(s) not judged, in whole or in part"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("FAIL"), "{}", r.stdout);
    for id in ["TS-03", "TS-11", "PL-06"] {
        let row = line(&r.stdout, id);
        assert!(row.contains("SKIP"), "{row}");
        assert!(row.contains("inconclusive"), "{row}");
        assert!(row.contains(why), "{row}");
    }
}

/// Exit 4 counted only MUST cases whose human step is a decision: TR-07 (a
/// Derived-MUST with no human step of its own) passed with its poll after approval
/// unjudged for want of an approver, and was inconclusive when the approver failed,
/// and the run exited 0 as if it held. A selection with no case needing a decision
/// still exits 0, and the JSON's `must_unjudged` is the last line's count.
#[tokio::test]
async fn a_must_case_judged_only_in_part_or_inconclusive_is_not_one_that_held() {
    let base = fake::start(None).await;
    let dir = std::env::temp_dir().join(format!("dfc-cli-unjudged-{}", std::process::id()));
    let json = dir.join("r.json");
    let json = json.to_str().unwrap();
    let run = |only: &'static str, approver: &'static [&'static str]| {
        let base = base.clone();
        async move {
            let mut args = vec![
                "--issuer",
                &base,
                "--client-id",
                "client-a",
                "--second-client",
                "client-b",
                "--only",
                only,
                "--json",
                json,
            ];
            args.extend_from_slice(approver);
            let r = command(&args).await;
            let report: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
            (r, report)
        }
    };
    let (r, report) = run("TR-07", &["--approver", "none"]).await;
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(line(&r.stdout, "TR-07").contains("PASS"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("0 MUST failure(s); 1 MUST case(s) not judged, in whole or in part"),
        "{}",
        r.stdout
    );
    assert_eq!(report["must_unjudged"], 1, "{report}");
    assert_eq!(
        report["cases"][0]["measured"]["not_judged"],
        "(b) after approval: no approver"
    );
    const FAILING: &[&str] = &["--approver", "command", "--approver-command", "false"];
    let (r, report) = run("TR-07", FAILING).await;
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(
        line(&r.stdout, "TR-07").contains("inconclusive"),
        "{}",
        r.stdout
    );
    assert_eq!(report["must_unjudged"], 1, "{report}");
    // TS-02's replay needs an approval: judged in part without one.
    let (r, report) = run("TS-02,DR-01", &["--approver", "none"]).await;
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert_eq!(report["must_unjudged"], 1, "{report}");
    // Nothing in the selection needs a decision: every MUST judged, exit 0.
    let (r, report) = run("DR-01,TR-01", &["--approver", "none"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(report["must_unjudged"], 0, "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_wrong_admin_token_is_inconclusive_never_the_servers_failure() {
    let base = fake::start(None).await;
    let admin = format!("{base}/admin");
    // The fake's admin endpoint is at /admin; the token is wrong.
    let r = command(&[
        "--issuer",
        &base,
        "--client-id",
        "client-a",
        "--only",
        "TS-03,TS-11,PL-06",
        "--admin-url",
        &admin,
        "--admin-token",
        "typo",
    ])
    .await;
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("FAIL"), "{}", r.stdout);
    for id in ["TS-03", "TS-11", "PL-06"] {
        let row = line(&r.stdout, id);
        assert!(
            row.contains("SKIP") && row.contains("inconclusive"),
            "{row}"
        );
        assert!(row.contains("--admin-token"), "{row}");
    }
    // The right token works: the same cases pass.
    let r = command(&[
        "--issuer",
        &base,
        "--client-id",
        "client-a",
        "--only",
        "TS-03",
        "--admin-url",
        &admin,
        "--admin-token",
        fake::ADMIN,
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(line(&r.stdout, "TS-03").contains("PASS"), "{}", r.stdout);
}

/// DEVICEFLOW_ADMIN_TOKEN left in the environment had chosen the admin approver by
/// itself: the suite sent `Authorization: Bearer <token>` to the server under test's
/// /admin/decisions, over plain http too. Only `--approver admin` (or `--admin-token`
/// on the command line) chooses it; then the variable gives the token.
#[tokio::test]
async fn an_admin_token_in_the_environment_never_chooses_the_admin_approver() {
    let base = fake::start(None).await;
    let token = Some(std::ffi::OsStr::new(fake::ADMIN));
    let args = [
        "--issuer",
        &base,
        "--client-id",
        "client-a",
        "--only",
        "TS-03",
    ];
    let r = command_with_env(&args, &[("DEVICEFLOW_ADMIN_TOKEN", token)]).await;
    assert!(r.stdout.contains("approver: none"), "{}", r.stdout);
    assert!(!r.stdout.contains("admin endpoint"), "{}", r.stdout);
    let row = line(&r.stdout, "TS-03");
    assert!(
        row.contains("SKIP") && row.contains("needs an approver"),
        "{row}"
    );
    // No MUST failed, but the decision's MUST was not judged: not exit 0.
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("0 MUST failure(s); 1 MUST case(s) not judged, in whole or in part"),
        "{}",
        r.stdout
    );
    // Named, the admin approver takes its token from the variable.
    let admin = format!("{base}/admin");
    let mut named = args.to_vec();
    named.extend(["--approver", "admin", "--admin-url", &admin]);
    let r = command_with_env(&named, &[("DEVICEFLOW_ADMIN_TOKEN", token)]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(line(&r.stdout, "TS-03").contains("PASS"), "{}", r.stdout);
}

#[tokio::test]
async fn a_missing_approver_program_is_inconclusive_never_the_servers_failure() {
    inconclusive_with(
        &[
            "--approver",
            "command",
            "--approver-command",
            "/no/such/approver {user_code} {action}",
        ],
        "/no/such/approver",
    )
    .await;
}

#[tokio::test]
async fn an_approver_that_fails_during_the_run_is_inconclusive() {
    // The program exists, so the check before the run passes; every decision fails.
    inconclusive_with(
        &[
            "--approver",
            "command",
            "--approver-command",
            "sh -c 'echo cannot sign in >&2; exit 3'",
        ],
        "cannot sign in",
    )
    .await;
}

#[tokio::test]
async fn findings_read_in_words_never_as_rust_debug_text() {
    let r = against(Some(Flaw::ExpiresInMissing), "DR-05,EX-01", &[]).await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let dr = line(&r.stdout, "DR-05");
    assert!(dr.contains("(got nothing)"), "{dr}");
    let ex = line(&r.stdout, "EX-01");
    assert!(
        ex.contains("SKIP") && ex.contains("gave no expires_in"),
        "{ex}"
    );
    assert!(!ex.contains("preflight authorization failed"), "{ex}");
    let r = against(Some(Flaw::StringNumbers), "DR-05", &[]).await;
    let dr = line(&r.stdout, "DR-05");
    assert!(dr.contains(r#"(got the string "20")"#), "{dr}");
    assert!(
        !r.stdout.contains("None") && !r.stdout.contains("Some("),
        "{}",
        r.stdout
    );
}

/// The terminal's report cannot be written (`| head -1` closed the pipe, a full disk):
/// one line says so, and the exit status is the run's own when it found something (1),
/// a usage error (2) when the lost report is all there is to say. `print!` had
/// panicked (exit 101).
#[tokio::test]
async fn an_unwritable_standard_output_is_one_line_never_a_panic() {
    let full = || std::fs::File::create("/dev/full").unwrap().into();
    for (flaw, only, code) in [
        (None, "DR-01", 2),
        (Some(Flaw::ExpiresInMissing), "DR-05", 1),
    ] {
        let base = fake::start(flaw).await;
        let args = ["--issuer", &base, "--client-id", "client-a", "--only", only];
        let r = command_writing_to(&args, full()).await;
        assert_eq!(r.code, code, "{only}: {}", r.stderr);
        assert_eq!(
            r.stderr.trim_end(),
            "deviceflow-conformance: writing to standard output: No space left on device (os error 28)",
        );
    }
}

#[tokio::test]
async fn an_empty_only_or_skip_pattern_is_a_usage_error_not_every_case() {
    // A stray comma (`--only TS-08,`) or an empty value would be a pattern that every
    // slug starts with: `--skip ""` skipped every case and exited 0, `--only TS-08,`
    // ran the whole suite.
    for extra in [["--skip", ""], ["--skip", "TS-08,"], ["--skip", " "]] {
        let r = against(None, "DR-01", &extra).await;
        one_line_usage_error(&r, "--only/--skip");
        assert!(r.stderr.contains("empty"), "{}", r.stderr);
    }
}

#[tokio::test]
async fn an_id_prefix_selects_the_ids_it_begins_and_an_unmatched_one_is_a_usage_error() {
    // --help offers id prefixes; `--only TS-1` had said "match no case".
    let r = against(None, "TS-1", &["--approver", "none"]).await;
    assert!(!r.stderr.contains("match no case"), "{}", r.stderr);
    for id in ["TS-10", "TS-11", "TS-12"] {
        line(&r.stdout, id);
    }
    assert!(
        !r.stdout
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("TS-01")),
        "{}",
        r.stdout
    );
    let r = against(None, "TS-13", &[]).await;
    one_line_usage_error(&r, "match no case");
}

#[tokio::test]
async fn an_empty_client_id_is_a_usage_error_not_a_refused_client() {
    let base = fake::start(None).await;
    for id in ["", " "] {
        let r = command(&["--issuer", &base, "--client-id", id, "--only", "DR-01"]).await;
        one_line_usage_error(&r, "--client-id");
    }
}

/// A server padding each device authorization with almost 1 MiB of whitespace (valid
/// JSON): the 200 samples DR-08 judges were each kept with their whole body, 200 MiB
/// of a run (10 GiB at `--samples 10000`). Only the codes are judged; the bodies go.
#[tokio::test]
async fn padded_sample_answers_are_not_all_held_in_memory() {
    use nix::sys::resource::{getrusage, UsageWho};
    let r = against(Some(Flaw::PaddedAnswers), "DR-08", &["--samples", "200"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(line(&r.stdout, "DR-08").contains("PASS"), "{}", r.stdout);
    // The largest peak of the children this test process waited for (every run of the
    // suite in this file), in KiB on Linux.
    let peak_kib = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap().max_rss();
    assert!(
        peak_kib < 120 * 1024,
        "the suite peaked at {} MiB for 200 padded samples",
        peak_kib / 1024
    );
}

/// A server under test whose certificate a private CA signed (a staging server, a
/// company's CA): the suite checks it against Mozilla's roots and the system's, which
/// SSL_CERT_FILE names. Without that CA it cannot reach the server and says what to
/// do; with it, it reaches the server (here `openssl s_server`, which answers every
/// path with a page: no OAuth metadata). Before, only Mozilla's roots were read, and
/// no setting could make the suite trust the server.
#[tokio::test]
async fn a_server_signed_by_a_private_ca_is_trusted_through_ssl_cert_file() {
    let server = deviceflow_testkit::tls::HttpsServer::start().unwrap();
    let url = server.url();
    let args = [
        "--issuer",
        url.as_str(),
        "--client-id",
        "tv",
        "--only",
        "DR-01",
    ];
    let untrusted =
        command_with_env(&args, &[("SSL_CERT_FILE", None), ("SSL_CERT_DIR", None)]).await;
    assert_ne!(untrusted.code, 0, "{}", untrusted.stderr);
    assert!(
        untrusted.stderr.contains("UnknownIssuer")
            && untrusted
                .stderr
                .contains("name that CA's certificate in SSL_CERT_FILE"),
        "{}",
        untrusted.stderr
    );
    let ca = server.ca_file();
    let trusted = command_with_env(
        &args,
        &[
            ("SSL_CERT_FILE", Some(ca.as_os_str())),
            ("SSL_CERT_DIR", None),
        ],
    )
    .await;
    assert!(
        trusted
            .stderr
            .contains("no OAuth metadata at https://127.0.0.1:"),
        "{}",
        trusted.stderr
    );
    // A CA file that cannot be read is said as that before any request: reqwest had
    // skipped it without a word, and the server's certificate was then "UnknownIssuer".
    let missing = command_with_env(
        &args,
        &[
            (
                "SSL_CERT_FILE",
                Some(std::ffi::OsStr::new("/nonexistent/ca.crt")),
            ),
            ("SSL_CERT_DIR", None),
        ],
    )
    .await;
    assert_ne!(missing.code, 0, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("SSL_CERT_FILE=/nonexistent/ca.crt")
            && !missing.stderr.contains("UnknownIssuer")
            && missing.stderr.trim_end().lines().count() == 1,
        "{}",
        missing.stderr
    );
}

/// The run's last line had said "(browser rows; the soak without --soak)" whatever was
/// not run (review helper-99): each MUST case not run is named, with its reason.
#[tokio::test]
async fn the_musts_not_run_are_named_with_why() {
    let base = fake::start(None).await;
    let r = command(&[
        "--issuer",
        &base,
        "--client-id",
        "client-a",
        "--only",
        "PL-04,DA-01",
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("; 1 MUST case(s) not run (PL-04: the soak, without --soak)"),
        "{}",
        r.stdout
    );
}
