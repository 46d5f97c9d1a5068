//! The command's edges as a CI gate meets them: a run interrupted by a signal still
//! writes what ran, marked partial; a target that cannot be tested writes reports that
//! say so, never leaving an earlier run's; a selection of nothing, contradictory
//! options and blanks in URLs are refused in one line; a typed issuer's case is not
//! the server's failure; a secret or an admin token from the environment is named.
//! Against the fake server of `fake/` and the tiny ones of `tiny/`.

mod command;
mod fake;
mod tiny;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use command::{command, command_with_env, Run};
use fake::Flaw;
use tokio::io::AsyncBufReadExt;

const BIN: &str = env!("CARGO_BIN_EXE_deviceflow-conformance");

/// A fresh folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dfc-edges-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// What is wrong with `r` as a usage error said in one line with each of `words`,
/// if anything.
fn not_a_one_line_usage_error(r: &Run, words: &[&str]) -> Option<String> {
    let missing: Vec<&&str> = words.iter().filter(|w| !r.stderr.contains(*w)).collect();
    let one_line = r.code == 2 && r.stderr.lines().count() == 1 && r.stdout.is_empty();
    (!one_line || !missing.is_empty()).then(|| {
        format!(
            "exit {}, {missing:?} missing from: {}{}",
            r.code, r.stderr, r.stdout
        )
    })
}

fn one_line_usage_error(r: &Run, words: &[&str]) {
    if let Some(problem) = not_a_one_line_usage_error(r, words) {
        panic!("{problem}");
    }
}

/// Runs the command with `common` and each of `cases`' arguments: every one must be a
/// usage error in one line with its words (all are tried, and every one that is not
/// is said).
async fn each_a_one_line_usage_error(common: &[&str], cases: &[(&[&str], &[&str])]) {
    let mut problems = Vec::new();
    for (args, words) in cases {
        let mut all = common.to_vec();
        all.extend_from_slice(args);
        if let Some(p) = not_a_one_line_usage_error(&command(&all).await, words) {
            problems.push(format!("{args:?}: {p}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n---\n"));
}

fn row(stdout: &str, id: &str) -> String {
    stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(id))
        .unwrap_or_else(|| panic!("no {id} row in:\n{stdout}"))
        .to_owned()
}

/// Runs the suite against the fake, `--only PL-09,EX-01`, and sends `signal` once
/// PL-09 (quick) has finished, while EX-01 waits past the fake's `expires_in` (20 s).
/// The reports asked for must hold PL-09's result and say the run was interrupted.
async fn interrupted_by(signal: &str, name: &str, code: i32) {
    let base = fake::start(None).await;
    let dir = scratch(&format!("signal-{name}"));
    let (json, md, junit, baseline) = (
        dir.join("r.json"),
        dir.join("r.md"),
        dir.join("j.xml"),
        dir.join("b.tsv"),
    );
    // An earlier run's report, which must not survive.
    std::fs::write(&json, "{\"earlier\": true}").unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["--issuer", &base, "--client-id", "client-a"])
        .args(["--only", "PL-09,EX-01", "--no-color"])
        .args(["--json", s(&json), "--markdown", s(&md)])
        .args(["--junit", s(&junit), "--baseline", s(&baseline)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let finished = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = stderr.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("PL-09: ") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(finished, Ok(true), "PL-09 never finished:\n{seen}");
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    // The rest of standard error, read while the command ends.
    let rest = tokio::spawn(async move {
        let mut rest = String::new();
        while let Ok(Some(line)) = stderr.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the command stops soon after the signal")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = rest.await.unwrap();
    assert_eq!(out.status.code(), Some(code), "{stdout}{seen}{stderr}");
    // Standard error ends with whole lines.
    assert!(stderr.ends_with('\n'), "{stderr:?}");
    assert!(stderr.contains(&format!("{name} received")), "{stderr}");
    // The terminal summary: what ran, and that it is partial.
    assert!(
        stdout.contains(&format!("INTERRUPTED by {name}")),
        "{stdout}"
    );
    assert!(row(&stdout, "PL-09").contains("PASS"), "{stdout}");
    let ex01 = row(&stdout, "EX-01");
    assert!(
        ex01.contains("SKIP") && ex01.contains("inconclusive") && ex01.contains("interrupted"),
        "{ex01}"
    );
    // Every report asked for, whole, and saying so.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["interrupted"]["signal"], name, "{report}");
    assert_eq!(report["interrupted"]["unfinished"], 1, "{report}");
    assert!(report.get("earlier").is_none());
    let status = |id: &str| {
        report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["status"].clone())
    };
    assert_eq!(status("PL-09"), Some("pass".into()), "{report}");
    assert_eq!(status("EX-01"), Some("skip".into()), "{report}");
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains(&format!("INTERRUPTED by {name}")), "{md}");
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert!(junit.contains("run interrupted"), "{junit}");
    assert!(junit.contains("<failure"), "{junit}");
    let baseline = std::fs::read_to_string(&baseline).unwrap();
    assert!(baseline.starts_with("# INTERRUPTED"), "{baseline}");
    assert!(baseline.contains("PL-09\tpass"), "{baseline}");
    // Nothing half-written left beside them.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn sigint_mid_run_writes_what_ran_marked_interrupted_and_exits_130() {
    interrupted_by("-INT", "SIGINT", 130).await;
}

#[tokio::test]
async fn sigterm_mid_run_writes_what_ran_marked_interrupted_and_exits_143() {
    interrupted_by("-TERM", "SIGTERM", 143).await;
}

#[tokio::test]
async fn a_run_killed_outright_leaves_no_earlier_report_to_be_read_as_its_own() {
    let base = fake::start(None).await;
    let dir = scratch("killed");
    let json = dir.join("r.json");
    std::fs::write(&json, "{\"must_failures\": 0, \"earlier\": true}").unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "--issuer",
            &base,
            "--client-id",
            "client-a",
            "--only",
            "EX-01",
        ])
        .args(["--json", s(&json)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let waiting = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = stderr.next_line().await {
            if line.contains("EX-01: waiting") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(waiting, Ok(true));
    // SIGKILL: nothing can be written; the earlier run's report must not stay.
    child.start_kill().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    assert!(!json.exists(), "an earlier run's report survived");
    let _ = std::fs::remove_dir_all(dir);
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_target_discovery_cannot_find_writes_reports_saying_so_never_an_earlier_runs() {
    let dir = scratch("untestable");
    let (json, junit, md) = (dir.join("x.json"), dir.join("j.xml"), dir.join("r.md"));
    // What an earlier, passing run left for CI to pick up.
    std::fs::write(&json, "{\"must_failures\": 0, \"earlier\": true}").unwrap();
    std::fs::write(&junit, "<testsuites failures=\"0\"/>").unwrap();
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let not_oauth = fake::start(Some(Flaw::NotOAuth)).await;
    for (issuer, said) in [
        (dead.as_str(), "cannot reach"),
        (not_oauth.as_str(), "no OAuth metadata at"),
    ] {
        let r = command(&[
            "--issuer",
            issuer,
            "--client-id",
            "tv",
            "--json",
            s(&json),
            "--junit",
            s(&junit),
            "--markdown",
            s(&md),
        ])
        .await;
        assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("ROOT CAUSE"), "{}", r.stdout);
        assert!(r.stdout.contains(said), "{}", r.stdout);
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert!(report.get("earlier").is_none(), "{report}");
        assert_eq!(report["root_cause"]["case"], serde_json::Value::Null);
        let summary = report["root_cause"]["summary"].as_str().unwrap();
        assert!(summary.contains(said), "{summary}");
        assert_eq!(report["totals"]["pass"], 0, "{report}");
        let junit = std::fs::read_to_string(&junit).unwrap();
        assert!(
            junit.contains("the target could not be tested") && junit.contains("<failure"),
            "{junit}"
        );
        let md = std::fs::read_to_string(&md).unwrap();
        assert!(md.contains("Root cause") && md.contains(said), "{md}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_check_of_report_paths_leaves_no_folder_behind() {
    let dir = scratch("folders");
    let deep = dir.join("nd").join("a").join("b").join("r.json");
    // Refused after the check of --json: nothing is run, and nothing is left.
    let r = command(&[
        "--issuer",
        "http://127.0.0.1:1",
        "--client-id",
        "tv",
        "--json",
        s(&deep),
        "--markdown",
        "/proc/nope/r.md",
    ])
    .await;
    one_line_usage_error(&r, &["--markdown"]);
    assert!(!dir.join("nd").exists(), "the check left {}", dir.display());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_selection_that_leaves_nothing_to_check_is_refused_naming_the_flags() {
    each_a_one_line_usage_error(
        &["--issuer", "http://127.0.0.1:1", "--client-id", "tv"],
        &[
            (
                &["--only", "DA-01", "--skip", "DA-01"],
                &["--only DA-01", "--skip DA-01", "no case"],
            ),
            (&["--skip", "rfc"], &["--skip rfc", "no case"]),
            // Only rows that never run here: a browser's, the soak without --soak.
            (&["--only", "UI-02"], &["--only UI-02", "UI-02", "browser"]),
            (&["--only", "PL-04"], &["--only PL-04", "--soak"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn blanks_in_a_url_are_a_usage_error_and_ipv6_wants_brackets() {
    each_a_one_line_usage_error(
        &["--client-id", "tv"],
        &[
            (
                &["--issuer", " http://127.0.0.1:1"],
                &["--issuer", "at its start"],
            ),
            (
                &["--issuer", "http://127.0.0.1:1 "],
                &["--issuer", "at its end"],
            ),
            (
                &["--issuer", "http://127.0.0.1:1\t/o"],
                &["--issuer", "inside it"],
            ),
            (
                &[
                    "--issuer",
                    "http://127.0.0.1:1",
                    "--token-endpoint",
                    "http://127.0.0.1:1/token ",
                ],
                &["--token-endpoint", "at its end"],
            ),
            (
                &["--issuer", "http://::1:33833"],
                &["--issuer", "brackets", "http://[::1]"],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn an_issuer_typed_in_upper_case_is_the_servers_and_one_that_differs_still_fails() {
    let base = fake::start(None).await;
    // HTTP://127.0.0.1:PORT: the same issuer (RFC 3986 §6.2.2.1).
    let upper = base.replacen("http://", "HTTP://", 1);
    let r = command(&[
        "--issuer",
        &upper,
        "--client-id",
        "client-a",
        "--only",
        "MD-03",
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(row(&r.stdout, "MD-03").contains("PASS"), "{}", r.stdout);
    // A server whose metadata names another issuer still fails MD-03, typed either way.
    let other = fake::start(Some(Flaw::IssuerMismatch)).await;
    for issuer in [other.clone(), other.replacen("http://", "HTTP://", 1)] {
        let r = command(&[
            "--issuer",
            &issuer,
            "--client-id",
            "client-a",
            "--only",
            "MD-03",
        ])
        .await;
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        assert!(row(&r.stdout, "MD-03").contains("FAIL"), "{}", r.stdout);
    }
    // A server that writes its own issuer with an upper-case scheme: the same issuer,
    // a warning (a client comparing strings refuses it), not a MUST failure.
    let (tiny, _) = tiny::serve("127.0.0.1", |base, method, path| {
        let json = |body: String| ("200 OK", "application/json", String::new(), body);
        match (method, path) {
            ("GET", "/.well-known/oauth-authorization-server") => json(format!(
                r#"{{"issuer":"{}","device_authorization_endpoint":"{base}/da","token_endpoint":"{base}/token"}}"#,
                base.replacen("http://", "HTTP://", 1)
            )),
            ("POST", "/da") => json(format!(
                r#"{{"device_code":"dc-0123456789","user_code":"BCDF-GHJK","verification_uri":"{base}/device","expires_in":600,"interval":5}}"#
            )),
            _ => ("404 Not Found", "text/plain", String::new(), "no".into()),
        }
    })
    .await;
    let r = command(&["--issuer", &tiny, "--client-id", "tv", "--only", "MD-03"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let md03 = row(&r.stdout, "MD-03");
    assert!(md03.contains("WARN"), "{md03}");
    assert!(md03.contains("lower case"), "{md03}");
}

#[tokio::test]
async fn a_secret_from_the_environment_is_named_and_an_empty_one_is_none() {
    let base = fake::start(None).await;
    let args = [
        "--issuer",
        &base,
        "--client-id",
        "client-a",
        "--only",
        "DR-01",
    ];
    let env = |v: &'static str| [("DEVICEFLOW_CLIENT_SECRET", Some(OsStr::new(v)))];
    // Empty, from the variable: no secret, a public client.
    let r = command_with_env(&args, &env("")).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("client client-a (public, no secret)"),
        "{}",
        r.stdout
    );
    // A secret from the variable: said in the header, and where the server refuses it.
    let r = command_with_env(&args, &env("left-over")).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(
            "client client-a (client_secret_basic, secret from DEVICEFLOW_CLIENT_SECRET)"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("invalid_client")
            && r.stdout.contains("the secret in DEVICEFLOW_CLIENT_SECRET"),
        "{}",
        r.stdout
    );
    // --client-secret "" overrides the variable: a public client again.
    let mut public = args.to_vec();
    public.extend(["--client-secret", ""]);
    let r = command_with_env(&public, &env("left-over")).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("(public, no secret)"), "{}", r.stdout);
    // Given on the command line, the secret is not said to come from the variable.
    let mut flag = args.to_vec();
    flag.extend(["--client-secret", "typed"]);
    let r = command_with_env(&flag, &env("left-over")).await;
    assert!(r.stdout.contains("(client_secret_basic)"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("DEVICEFLOW_CLIENT_SECRET"),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn an_admin_token_from_the_environment_is_named_when_refused() {
    let base = fake::start(None).await;
    let admin = format!("{base}/admin");
    let r = command_with_env(
        &[
            "--issuer",
            &base,
            "--client-id",
            "client-a",
            "--only",
            "TS-03",
            "--approver",
            "admin",
            "--admin-url",
            &admin,
        ],
        &[("DEVICEFLOW_ADMIN_TOKEN", Some(OsStr::new("typo")))],
    )
    .await;
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    let ts03 = row(&r.stdout, "TS-03");
    assert!(ts03.contains("inconclusive"), "{ts03}");
    assert!(ts03.contains("DEVICEFLOW_ADMIN_TOKEN"), "{ts03}");
}

#[tokio::test]
async fn contradictory_or_incomplete_options_are_refused_in_one_line() {
    each_a_one_line_usage_error(
        &["--issuer", "http://127.0.0.1:1", "--client-id", "tv"],
        &[
            (
                &["--approver-command", "true {user_code}"],
                &["--approver-command", "--approver command"],
            ),
            (
                &[
                    "--approver",
                    "admin",
                    "--admin-token",
                    "t",
                    "--approver-command",
                    "x",
                ],
                &["--approver-command", "--approver admin"],
            ),
            (
                &["--approver", "none", "--admin-token", "x"],
                &["--admin-token", "--approver none"],
            ),
            (
                &["--admin-url", "http://127.0.0.1:1/admin"],
                &["--admin-url"],
            ),
            (&["--client-auth", "post"], &["--client-auth", "secret"]),
            (
                &["--client-auth", "basic", "--client-secret", ""],
                &["--client-auth"],
            ),
            (
                &["--introspection-client", "a"],
                &["--introspection-client", "SECRET"],
            ),
            (&["--second-client", "b:"], &["--second-client", "empty"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_wrong_value_is_one_line_with_the_possible_values() {
    each_a_one_line_usage_error(
        &["--issuer", "http://127.0.0.1:1", "--client-id", "tv"],
        &[
            (
                &["--expect", "slowdown"],
                &["'slowdown'", "--expect", "possible values: slow-down"],
            ),
            (
                &["--expect", "slow-down,,slow-down"],
                &["--expect", "possible values: slow-down"],
            ),
            (
                &["--approver", "bogus"],
                &["possible values: none, admin, command, manual"],
            ),
            (&["--bogus"], &["--bogus"]),
        ],
    )
    .await;
    each_a_one_line_usage_error(
        &["--issuer", "http://127.0.0.1:1"],
        &[(&[], &["--client-id"])],
    )
    .await;
}

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_is_said_as_connected_not_unreachable() {
    // The kernel accepts the connections (the backlog); nobody answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let r = command(&["--issuer", &base, "--client-id", "tv", "--timeout", "1"]).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("accepted the connection but sent no answer within 1 s"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("cannot reach"), "{}", r.stdout);
    let (da, token) = (format!("{base}/da"), format!("{base}/token"));
    let r = command(&[
        "--device-authorization-endpoint",
        &da,
        "--token-endpoint",
        &token,
        "--client-id",
        "tv",
        "--timeout",
        "1",
    ])
    .await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("accepted the connection but sent no answer within 1 s"),
        "{}",
        r.stdout
    );
    drop(listener);
}

#[tokio::test]
async fn an_answer_with_a_control_character_in_a_header_is_not_taken_for_tls() {
    // A server that speaks HTTP, badly (an escape character in a header value, RFC
    // 9110 §5.5): the run cannot read it, and says so without asking whether the port
    // speaks TLS, which had sent the reader after the wrong cause (review helper-95).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nx-note: a\x1bb\r\ncontent-length: 2\r\n\r\n{}")
                .await;
        }
    });
    let r = command(&["--issuer", &base, "--client-id", "tv"]).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("invalid HTTP header"), "{}", r.stdout);
    assert!(!r.stdout.contains("speaking TLS"), "{}", r.stdout);
}

#[tokio::test]
async fn a_plain_request_a_server_breaks_off_asks_whether_the_port_speaks_tls() {
    // What a TLS port does with a plain HTTP request: it reads it and hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
        }
    });
    let r = command(&["--issuer", &base, "--client-id", "tv"]).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("is this port speaking TLS? give https://"),
        "{}",
        r.stdout
    );
}
