//! Servers that misbehave, and what the fleet makes of them: one that stops answering
//! polls (its silence is waited for and counted, never mistaken for answers), one
//! that fails every request (said in the findings, and not hammered by restarts), and
//! one whose error codes are terminal escapes, Markdown and HTML, each different (shown
//! as text, in a table of bounded size).
//!
//! The fake is a few lines of std HTTP/1.1 on 127.0.0.1:0, one thread a connection:
//! metadata, then device authorization and the token endpoint as `Mode` says.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use common::{read_run, report_dir};
use deviceflow_testkit::markdown::raw_html;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Codes are issued; polls are read and never answered.
    SilentPolls,
    /// Every device authorization gets HTTP 500.
    Fails,
    /// Every device authorization is redirected (HTTP 302) to a login page.
    Redirects,
    /// Codes are issued; every poll is redirected (HTTP 302) to a login page.
    RedirectsPolls,
    /// Codes are issued; each poll gets HTTP 400 with an `error` of its own, made of
    /// terminal escapes (OSC 52, cursor moves, `\r`), Markdown and HTML.
    Hostile,
    /// Codes are issued, and every poll gets a token at once: nobody approved it.
    TokensToAll,
    /// Codes are issued; a code's first poll gets a token, every later one
    /// `authorization_pending`, as if the redemption were forgotten (TS-08).
    PendingAfterToken,
    /// Codes are issued with these `expires_in` and `interval` (s), and every poll is
    /// answered `authorization_pending`.
    Issues { expires_in: u64, interval: u64 },
    /// Every device authorization gets HTTP 200 with this body.
    DeviceAnswers(&'static str),
    /// Codes are issued, and every poll gets HTTP 200 with this body.
    PollAnswers(&'static str),
    /// The first this many device authorizations get codes, the rest HTTP 429
    /// `slow_down` (a quota); every poll is answered `authorization_pending`.
    CodesThenRefuses(u64),
    /// Codes are issued (interval 1 s); the fleet's first poll is read and never
    /// answered, every other one is answered `authorization_pending` at once.
    HangsFirstPoll,
    /// Codes are issued (interval 1 s); every poll is answered
    /// `authorization_pending` this many ms after it was read.
    SlowPolls(u64),
    /// The metadata names no device authorization endpoint (django-oauth-toolkit's).
    NoDeviceEndpoint,
    /// Codes are issued (interval 1 s) and polls answered `authorization_pending`;
    /// `/metrics` is read and never answered.
    SilentMetrics,
    /// The metadata is served; every other answer carries a header whose value holds
    /// an escape character (RFC 9110 §5.5 forbids it), so none can be read.
    BadHeader,
}

/// The refresh token [`Mode::TokensToAll`] gives: a credential, if a live one, that the
/// reports must not show.
const GIVEN_SECRET: &str = "rt-live-0123456789abcdefghijklmnop";

/// The `error` of [`Mode::Hostile`]'s `n`th poll, as JSON string content: an OSC 52
/// clipboard write, an OSC 8 link, a move up and erase (to hide the line above), a
/// carriage return and a fake verdict, raw HTML, a table pipe, a line break with a
/// heading and a code fence, then 1 KiB of padding.
fn hostile_error(n: u64) -> String {
    format!(
        r"\u001b]52;c;cHduZWQ=\u0007\u001b]8;;https://evil.example/\u0007link\u001b]8;;\u0007\u001b[1A\u001b[2K\r- No violations.\u009b2J<script>alert({n})</script>|x\n# heading\n```{}",
        "p".repeat(1024)
    )
}

/// Requests the fake read, by endpoint.
#[derive(Default)]
struct Seen {
    issues: AtomicU64,
    polls: AtomicU64,
    /// When each poll of [`Mode::Issues`] was read.
    poll_times: std::sync::Mutex<Vec<std::time::Instant>>,
    /// Polls of [`Mode::SlowPolls`] read and not answered yet.
    polls_out: AtomicU64,
    /// Device codes [`Mode::PendingAfterToken`] gave a token for.
    redeemed: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Starts the fake; its threads end with the test process.
fn fake(mode: Mode) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let (b, s) = (base.clone(), Arc::clone(&seen));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (b, s) = (b.clone(), Arc::clone(&s));
            std::thread::spawn(move || serve(stream, mode, &b, &s));
        }
    });
    (base, seen)
}

/// Serves one keep-alive connection until the peer closes it.
fn serve(stream: TcpStream, mode: Mode, base: &str, seen: &Seen) {
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_owned();
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, json) = match (path.as_str(), mode) {
            ("/.well-known/oauth-authorization-server", Mode::NoDeviceEndpoint) => (
                200,
                format!(r#"{{"issuer":"{base}","token_endpoint":"{base}/token"}}"#),
            ),
            ("/.well-known/oauth-authorization-server", _) => (
                200,
                format!(
                    r#"{{"issuer":"{base}","device_authorization_endpoint":"{base}/device","token_endpoint":"{base}/token","grant_types_supported":["urn:ietf:params:oauth:grant-type:device_code"]}}"#
                ),
            ),
            ("/device", Mode::SilentPolls) => {
                let n = seen.issues.fetch_add(1, Relaxed);
                (
                    200,
                    format!(
                        r#"{{"device_code":"dc{n}","user_code":"UC{n}","verification_uri":"{base}/verify","expires_in":60,"interval":1}}"#
                    ),
                )
            }
            (
                "/device",
                Mode::Hostile
                | Mode::SilentMetrics
                | Mode::RedirectsPolls
                | Mode::TokensToAll
                | Mode::PendingAfterToken
                | Mode::PollAnswers(_)
                | Mode::HangsFirstPoll
                | Mode::SlowPolls(_),
            ) => {
                let n = seen.issues.fetch_add(1, Relaxed);
                (
                    200,
                    format!(
                        r#"{{"device_code":"dc{n}","user_code":"UC{n}","verification_uri":"{base}/verify","expires_in":60,"interval":1}}"#
                    ),
                )
            }
            ("/token", Mode::PendingAfterToken) => {
                seen.polls.fetch_add(1, Relaxed);
                // The fake's own codes (`dc<n>`) need no decoding.
                let code = String::from_utf8_lossy(&body)
                    .split('&')
                    .find_map(|p| p.strip_prefix("device_code="))
                    .unwrap_or_default()
                    .to_owned();
                if seen.redeemed.lock().unwrap().insert(code) {
                    (
                        200,
                        r#"{"access_token":"at","token_type":"Bearer","expires_in":3600}"#
                            .to_owned(),
                    )
                } else {
                    (400, r#"{"error":"authorization_pending"}"#.to_owned())
                }
            }
            ("/token", Mode::TokensToAll) => {
                seen.polls.fetch_add(1, Relaxed);
                (
                    200,
                    format!(
                        r#"{{"access_token":"at-live-0123456789abcdefghijklmnop","token_type":"Bearer","refresh_token":"{GIVEN_SECRET}","expires_in":3600}}"#
                    ),
                )
            }
            (
                "/device",
                Mode::Issues {
                    expires_in,
                    interval,
                },
            ) => {
                let n = seen.issues.fetch_add(1, Relaxed);
                (
                    200,
                    format!(
                        r#"{{"device_code":"dc{n}","user_code":"UC{n}","verification_uri":"{base}/verify","expires_in":{expires_in},"interval":{interval}}}"#
                    ),
                )
            }
            ("/token", Mode::PollAnswers(body)) => {
                seen.polls.fetch_add(1, Relaxed);
                (200, body.to_owned())
            }
            ("/device", Mode::CodesThenRefuses(codes)) => {
                let n = seen.issues.fetch_add(1, Relaxed);
                if n < codes {
                    (
                        200,
                        format!(
                            r#"{{"device_code":"dc{n}","user_code":"UC{n}","verification_uri":"{base}/verify","expires_in":60,"interval":1}}"#
                        ),
                    )
                } else {
                    (429, r#"{"error":"slow_down"}"#.to_owned())
                }
            }
            ("/token", Mode::HangsFirstPoll) if seen.polls.fetch_add(1, Relaxed) > 0 => {
                (400, r#"{"error":"authorization_pending"}"#.to_owned())
            }
            ("/token", Mode::SlowPolls(ms)) => {
                seen.polls.fetch_add(1, Relaxed);
                seen.polls_out.fetch_add(1, Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                seen.polls_out.fetch_sub(1, Relaxed);
                (400, r#"{"error":"authorization_pending"}"#.to_owned())
            }
            ("/token", Mode::Issues { .. } | Mode::CodesThenRefuses(_) | Mode::SilentMetrics) => {
                seen.polls.fetch_add(1, Relaxed);
                let read = std::time::Instant::now();
                seen.poll_times.lock().unwrap().push(read);
                (400, r#"{"error":"authorization_pending"}"#.to_owned())
            }
            ("/token", Mode::Hostile) => {
                let n = seen.polls.fetch_add(1, Relaxed);
                (400, format!(r#"{{"error":"{}"}}"#, hostile_error(n)))
            }
            ("/device", Mode::DeviceAnswers(body)) => {
                seen.issues.fetch_add(1, Relaxed);
                (200, body.to_owned())
            }
            ("/device", Mode::Fails) => {
                seen.issues.fetch_add(1, Relaxed);
                (500, r#"{"oops":"internal"}"#.to_owned())
            }
            ("/device", Mode::Redirects) => {
                let n = seen.issues.fetch_add(1, Relaxed);
                (302, format!("{base}/login?next=%2Fdevice&n={n}"))
            }
            ("/token", Mode::RedirectsPolls) => {
                let n = seen.polls.fetch_add(1, Relaxed);
                (302, format!("{base}/login?next=%2Ftoken&n={n}"))
            }
            ("/metrics", Mode::SilentMetrics) => {
                let _ = reader.read_to_end(&mut Vec::new());
                return;
            }
            ("/token", _) => {
                seen.polls.fetch_add(1, Relaxed);
                // Read, and never answered: hold the connection until the peer goes.
                let _ = reader.read_to_end(&mut Vec::new());
                return;
            }
            _ => (404, r#"{"error":"not_found"}"#.to_owned()),
        };
        let answer = if status == 302 {
            format!("HTTP/1.1 302 Found\r\nlocation: {json}\r\ncontent-length: 0\r\n\r\n")
        } else if matches!(mode, Mode::BadHeader) && !path.starts_with("/.well-known/") {
            format!(
                "HTTP/1.1 {status} X\r\nx-note: a\x1bb\r\ncontent-length: {}\r\n\r\n{json}",
                json.len()
            )
        } else {
            format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
                json.len()
            )
        };
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn loadgen(base: &str, args: &[&str], dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deviceflow-loadgen"));
    c.args(["--host", base, "--client-id", "tv", "--progress-every", "0"])
        .args(args)
        .arg("--report-dir")
        .arg(dir);
    c
}

#[test]
fn polls_still_out_when_the_run_time_is_up_are_waited_for_and_a_silent_server_is_seen() {
    let (base, seen) = fake(Mode::SilentPolls);
    let dir = report_dir("silent");
    let out = loadgen(
        &base,
        &["-u", "20", "-r", "20", "-t", "3s", "--request-timeout", "2"],
        &dir,
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Every poll the server read got no answer, and each is counted so: none is
    // lost at the run's end (which would call the run trusted).
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    // And the silence is the server's: it had every one of them.
    assert!(stderr.contains("the server had all"), "{stderr}");
    let poll = &read_run::<serde_json::Value>(&dir)["stats"]["kinds"]["poll"];
    let sent = poll["sent"].as_u64().unwrap();
    assert_eq!(poll["answered"].as_u64(), Some(0), "{poll}");
    assert!(sent > 0 && sent == seen.polls.load(Relaxed), "{poll}");
    assert_eq!(poll["reached_unanswered"].as_u64(), Some(sent), "{poll}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Polls still waiting for a connection when the run time is up (the server held
/// every connection, never answering) are counted as waits and said as never sent:
/// the report had said the longest wait was 0 ms and the generator kept its
/// schedule (helper-100).
#[test]
fn requests_that_never_got_a_connection_are_said_with_their_wait() {
    let (base, seen) = fake(Mode::SilentPolls);
    let dir = report_dir("never-sent");
    let args = [
        "-u",
        "10",
        "-r",
        "10",
        "-t",
        "4s",
        "--request-timeout",
        "10",
        "--connections",
        "2",
    ];
    let out = loadgen(&base, &args, &dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let stats = &read_run::<serde_json::Value>(&dir)["stats"];
    let never_sent = stats["never_sent"].as_u64().unwrap();
    let longest = stats["max_connection_wait_ms"].as_u64().unwrap();
    // Two polls hold the two connections from about 1 s in; the other devices'
    // polls wait for them until the end, about 3 s later.
    assert!(seen.polls.load(Relaxed) <= 2, "{stats}");
    assert!(never_sent >= 6, "{stats}");
    assert!(longest >= 2_000, "{stats}");
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains(&format!(
            "{never_sent} of them were still waiting when the run time was up, and never went out"
        )),
        "{summary}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `/metrics` that never answers is waited for `--request-timeout`, as every other
/// answer is, before and after the run: it had been 10 s each whatever the option, and
/// a 5 s run took 25 (helper-100).
#[test]
fn a_silent_metrics_page_is_waited_for_the_request_timeout() {
    let (base, _) = fake(Mode::SilentMetrics);
    let dir = report_dir("silent-metrics");
    let started = std::time::Instant::now();
    let args = ["-u", "2", "-r", "2", "-t", "2s", "--request-timeout", "1"];
    let out = loadgen(&base, &args, &dir).output().unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Before the run and after it.
    let said = "/metrics got no answer (timed out: no whole answer within 1 s)";
    assert_eq!(stderr.matches(said).count(), 2, "{stderr}");
    // 2 s of run and two scrapes of 1 s, with room for a slow machine; the 10 s
    // scrapes took 22 s at least.
    assert!(
        took < std::time::Duration::from_secs(10),
        "{took:?}: {stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_server_failing_every_request_is_a_finding_and_is_not_hammered() {
    let (base, seen) = fake(Mode::Fails);
    let dir = report_dir("fails");
    let out = loadgen(&base, &["-u", "5", "-r", "5", "-t", "3s"], &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Five devices, each starting anew a second after a failed flow: a few tens of
    // requests in 3 s, where starting at once made thousands.
    let issues = seen.issues.load(Relaxed);
    assert!((5..=40).contains(&issues), "{issues} device authorizations");
    let finding = stdout
        .lines()
        .find(|l| l.contains("answers that no request of a device expects"))
        .unwrap_or_else(|| panic!("no finding: {stdout}"));
    assert!(
        finding.contains(&format!("{issues} HTTP 500")) && finding.contains("device_authorization"),
        "{finding}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_person_gives_up_at_max_flow_even_while_the_device_backs_off() {
    let (base, _) = fake(Mode::SilentPolls);
    let dir = report_dir("max-flow");
    let started = std::time::Instant::now();
    // Polls (interval 1 s) time out after 1 s, and the device backs off 2, 4, 8 s:
    // polls at 1, 4 and 9 s, then none due before 18 s, past the person's 12 s.
    let out = loadgen(
        &base,
        &[
            "-u",
            "5",
            "-r",
            "5",
            "--max-flow",
            "12",
            "--request-timeout",
            "1",
        ],
        &dir,
    )
    .output()
    .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Against a hang only: how long the process takes is the machine's as much as
    // the generator's (start-up, the report); what the test is about is the run's own
    // clock below.
    assert!(
        took < std::time::Duration::from_secs(60),
        "{took:?}: {stderr}"
    );
    let run = read_run::<serde_json::Value>(&dir);
    let unfinished = unfinished(&run);
    assert_eq!(unfinished, 5, "{}", run["stats"]["behaviours"]);
    // The devices did back off: every poll timed out, at least two a device (at 1
    // and 4 s), and none was sent past the person's 12 s.
    let poll = &run["stats"]["kinds"]["poll"];
    let sent = poll["sent"].as_u64().unwrap();
    assert!((10..=15).contains(&sent), "{poll}");
    assert_eq!(poll["transport"][3].as_u64(), Some(sent), "{poll}");
    // The run ended when the people gave up, 12 s after the codes came; waiting for
    // the next poll due (18 s) kept it to 18 s and more.
    let duration = run["duration_s"].as_f64().unwrap();
    assert!(
        (12.0..16.0).contains(&duration),
        "the run took {duration} s: {stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn error_codes_made_of_escapes_and_markup_are_shown_as_text_in_bounded_tables() {
    let (base, seen) = fake(Mode::Hostile);
    let dir = report_dir("hostile");
    // Each device polls once, gets an error code of its own, and ends its flow.
    let out = loadgen(&base, &["-u", "150", "-r", "150"], &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(seen.polls.load(Relaxed), 150, "{stdout}");
    let acts = |c: char| c.is_control() && c != '\n';
    // The terminal: the escapes are shown (`\u{1b}`), never sent.
    assert!(!stdout.contains(acts), "{stdout:?}");
    assert!(stdout.contains(r"\u{1b}]52;c;cHduZWQ="), "{stdout}");
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(!summary.contains(acts), "{summary:?}");
    // Markdown: no raw HTML, no heading or fence of the server's, the table whole.
    assert!(!summary.lines().any(raw_html), "{summary}");
    assert!(
        !summary
            .lines()
            .any(|l| l.starts_with("# heading") || l.starts_with("```")),
        "{summary}"
    );
    // 150 different answers, of which the generator keeps the first 100, each cut,
    // and counts the other 50 together: the table shows the commonest 20 (that count
    // of 50 first) and one row for the rest.
    let rows: Vec<&str> = summary
        .lines()
        .filter(|l| {
            // The answer's first word holds a URL: a code span, which GitHub links not.
            l.starts_with(r"| token\_poll | `\u{1b}")
                || l.starts_with("| token\\_poll | (other answers")
                || l.starts_with("| (others) |")
        })
        .collect();
    assert_eq!(rows.len(), 21, "{summary}");
    assert!(rows.iter().all(|r| r.len() < 1024), "{rows:?}");
    assert!(rows[0].contains("| 50 |"), "{}", rows[0]);
    assert!(rows[20].contains("81 other answers"), "{}", rows[20]);
    // What the generator holds and writes is bounded the same way.
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let kept = run["stats"]["kinds"]["poll"]["unexpected"]
        .as_object()
        .expect("the polls' unexpected answers in run.json");
    assert_eq!(kept.len(), 101, "{kept:?}");
    assert!(kept.keys().all(|k| k.chars().count() < 250), "{kept:?}");
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(!html.contains("<script"));
    assert!(html.len() < 200 * 1024, "{} bytes", html.len());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A violation's example quotes the server's answer, its credentials masked: a token
/// given to nobody is still a live token (TS-01).
#[test]
fn a_violations_example_masks_the_tokens_it_quotes() {
    let (base, seen) = fake(Mode::TokensToAll);
    let dir = report_dir("tokens-to-all");
    let out = loadgen(&base, &["-u", "5", "-r", "5"], &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(seen.polls.load(Relaxed) >= 5, "{stdout}");
    let run = std::fs::read_to_string(dir.join("run.json")).unwrap();
    assert!(
        run.contains("TokenNobodyApproved") || run.contains("token_nobody_approved"),
        "{run}"
    );
    for file in ["run.json", "summary.md", "index.html"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(
            !text.contains(GIVEN_SECRET),
            "{file} quotes the refresh token"
        );
        assert!(
            !text.contains("at-live-0123456789"),
            "{file} quotes the access token"
        );
        // The violation's example request: the device code masked as the suite's
        // evidence masks it (it showed its first 8 characters).
        assert!(
            !text.contains("device_code=dc"),
            "{file} quotes a device code"
        );
    }
    let run: serde_json::Value = serde_json::from_str(&run).unwrap();
    let example = run["stats"]["violations"].to_string();
    assert!(
        example.contains("device_code=<redacted, 3 chars>"),
        "{example}"
    );
    assert!(!stdout.contains(GIVEN_SECRET), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The violations a run found, by rule (run.json's names).
fn violations(dir: &std::path::Path) -> Vec<String> {
    let run = read_run::<serde_json::Value>(dir);
    run["stats"]["violations"]
        .as_object()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default()
}

/// Checklist TS-08: a redeemed code polled again gets an error. A server that answers
/// the replay check `authorization_pending`, as if it had forgotten the redemption,
/// tells the device to go on polling; the report had said "No violations".
#[test]
fn a_redeemed_code_told_to_go_on_polling_is_a_ts_08_violation() {
    let (base, seen) = fake(Mode::PendingAfterToken);
    let dir = report_dir("pending-after-token");
    let out = loadgen(&base, &["-u", "5", "-r", "5"], &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(seen.polls.load(Relaxed) >= 10, "{stdout}");
    assert!(
        violations(&dir).contains(&"pending_after_redemption".to_owned()),
        "{:?}\n{stdout}",
        violations(&dir)
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("TS-08: still pending"), "{summary}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// RFC 8628 §3.2: `expires_in` is a positive integer, and 4,294,967 s (49 days) is one.
/// The device's expiry (issued + expires_in, in ms) overflowed 32 bits: every pending
/// answer was taken for one after expiry (EX-01), a violation the server never made.
#[test]
fn a_long_expires_in_is_not_taken_for_an_expiry() {
    let (base, seen) = fake(Mode::Issues {
        expires_in: 4_294_967,
        interval: 1,
    });
    let dir = report_dir("long-expires-in");
    let out = loadgen(
        &base,
        &[
            "-u",
            "3",
            "-r",
            "10",
            "--max-flow",
            "3",
            "--expect-expires-in",
            "4294967",
        ],
        &dir,
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(seen.polls.load(Relaxed) >= 3, "{stdout}");
    assert_eq!(violations(&dir), Vec::<String>::new(), "{stdout}");
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--expect-interval` (checklist DR-06, RFC 8628 §3.2) holds the server to the
/// interval it gave, not to the one a device keeps: 7200 s is what a device caps at
/// 3600 s, and is no violation when 7200 was expected; an `interval` of 0 (not a
/// positive integer, which devices read as 5) is one when 5 was.
#[test]
fn expect_interval_is_held_to_the_interval_the_server_gave() {
    for (given, expected, broken) in [(7200, "7200", false), (0, "5", true)] {
        let (base, seen) = fake(Mode::Issues {
            expires_in: 60,
            interval: given,
        });
        let dir = report_dir(&format!("interval-{given}"));
        let out = loadgen(
            &base,
            &[
                "-u",
                "2",
                "-r",
                "10",
                "-t",
                "1",
                "--expect-interval",
                expected,
            ],
            &dir,
        )
        .output()
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(seen.issues.load(Relaxed), 2, "{stdout}");
        let found = violations(&dir);
        if broken {
            assert_eq!(
                found,
                vec!["interval".to_owned()],
                "interval {given}: {stdout}"
            );
            let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
            assert!(
                summary.contains("interval 0 where 5 was expected"),
                "{summary}"
            );
        } else {
            assert_eq!(found, Vec::<String>::new(), "interval {given}: {stdout}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// `--max-flow` bounds a device's flow even when its next poll is due later: with an
/// interval of 30 s the person gives up at 2 s, and the run ends then, not at the
/// poll 30 s on.
#[test]
fn a_person_gives_up_at_max_flow_before_a_poll_due_later() {
    let (base, _) = fake(Mode::Issues {
        expires_in: 600,
        interval: 30,
    });
    let dir = report_dir("max-flow-long-interval");
    let started = std::time::Instant::now();
    let out = loadgen(&base, &["-u", "3", "-r", "10", "--max-flow", "2"], &dir)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(10),
        "{took:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let run = read_run::<serde_json::Value>(&dir);
    let unfinished = unfinished(&run);
    assert_eq!(unfinished, 3, "{}", run["stats"]["behaviours"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A device that got its token before `-t` was up, and whose replay check (TS-08)
/// was still to come, got a token: it is counted so, not as unfinished.
#[test]
fn a_token_got_before_the_run_time_is_up_is_counted_as_a_token() {
    let (base, seen) = fake(Mode::TokensToAll);
    let dir = report_dir("token-at-end");
    // Interval 1 s: the poll at 1 s gets the token, the replay check would be at 2 s.
    let out = loadgen(
        &base,
        &["-u", "2", "-r", "10", "--mix", "compliant=100", "-t", "1.6"],
        &dir,
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(seen.polls.load(Relaxed), 2, "{stdout}");
    let run = read_run::<serde_json::Value>(&dir);
    let outcomes = &run["stats"]["behaviours"]["compliant"]["outcomes"];
    // Outcome::ALL: token, denied, expired, error, unreached, unfinished.
    assert_eq!(outcomes[0].as_u64(), Some(2), "{outcomes}");
    assert_eq!(outcomes[5].as_u64(), Some(0), "{outcomes}");
    assert!(stdout.contains("2 tokens"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Devices a run's report counts unfinished, all behaviours together.
fn unfinished(run: &serde_json::Value) -> u64 {
    outcome(run, deviceflow_loadgen::device::flow::Outcome::Unfinished)
}

/// Devices whose flow ended in `outcome`, all behaviours together.
fn outcome(run: &serde_json::Value, outcome: deviceflow_loadgen::device::flow::Outcome) -> u64 {
    let at = outcome.index();
    run["stats"]["behaviours"]
        .as_object()
        .unwrap()
        .values()
        .map(|b| b["outcomes"][at].as_u64().unwrap())
        .sum()
}

/// A 200 to a device authorization that is not an RFC 8628 §3.2 response says what is
/// wrong with it: a required member missing, a value of the wrong type, JSON cut
/// short. It had said only "a 200 answer that is not a device authorization
/// response", whatever the answer, and the run exited 0 though no device got a code.
#[test]
fn a_device_authorization_answer_that_is_not_one_says_what_is_wrong_with_it() {
    for (body, says) in [
        (
            r#"{"device_code":"dc","verification_uri":"http://x/v","expires_in":60}"#,
            "missing field `user_code`",
        ),
        (
            r#"{"device_code":"dc","user_code":"U","verification_uri":"http://x/v","expires_in":-5}"#,
            "invalid value: integer `-5`, expected a whole number of seconds",
        ),
        (
            r#"{"device_code":"dc","#,
            "not JSON (EOF while parsing a value)",
        ),
    ] {
        check_device_answer(
            "not-a-device-authorization",
            body,
            &format!("HTTP 200, not a device authorization response (RFC 8628 §3.2): {says}"),
        );
    }
}

/// Codes longer than a device keeps are refused like any answer that is not one: a
/// server had made 3,000 devices hold 836 MB with 100 KB codes, and a memory limit
/// aborted the run with no report (helper-100).
#[test]
fn codes_longer_than_a_device_keeps_are_refused_as_answers() {
    use deviceflow_loadgen::device::{MAX_DEVICE_CODE_BYTES, MAX_USER_CODE_BYTES};
    let answer = |device_code: &str, user_code: &str| -> &'static str {
        format!(r#"{{"device_code":"{device_code}","user_code":"{user_code}","verification_uri":"http://x/v","expires_in":60}}"#).leak()
    };
    let long = |n: usize| "x".repeat(n);
    for (body, name, max) in [
        (
            answer(&long(MAX_DEVICE_CODE_BYTES + 1), "U"),
            "device_code",
            MAX_DEVICE_CODE_BYTES,
        ),
        (
            answer("dc", &long(MAX_USER_CODE_BYTES + 1)),
            "user_code",
            MAX_USER_CODE_BYTES,
        ),
    ] {
        check_device_answer("codes-too-long", body, &format!("HTTP 200, a device authorization response (RFC 8628 §3.2) whose {name} is longer than {max} bytes, the most a simulated device keeps"));
    }
}

/// Three devices against a server answering every device authorization `body`: none
/// gets a code, the run is not trusted (exit 3), and the answer is said as `what`. The
/// run is written under a folder of `test`'s.
fn check_device_answer(test: &str, body: &'static str, what: &str) {
    let (base, seen) = fake(Mode::DeviceAnswers(body));
    let dir = report_dir(test);
    let out = loadgen(&base, &["-u", "3", "-r", "3"], &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(seen.issues.load(Relaxed), 3);
    let line = stderr
        .lines()
        .find(|l| l.contains("run not trusted"))
        .unwrap_or_else(|| panic!("{body}: {stderr}"));
    assert_eq!(
        line,
        format!("deviceflow-loadgen: run not trusted: no device got a code: all 3 device authorizations were answered {what}; the server's RFC 8628 behaviour was not measured"),
        "{body}"
    );
    assert_eq!(out.status.code(), Some(3), "{body}: {stderr}");
    let issue = &read_run::<serde_json::Value>(&dir)["stats"]["kinds"]["issue"];
    assert_eq!(issue["unexpected"][what].as_u64(), Some(3), "{issue}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A server whose answers carry a header with a control character is up and speaks
/// HTTP, badly: the run goes on (it had stopped at setup asking whether the port
/// speaks TLS), and the trust line says the server answered what cannot be read, not
/// that it hung (review helper-95).
#[test]
fn answers_that_cannot_be_read_are_said_as_that_not_as_tls_or_a_hang() {
    let (base, _) = fake(Mode::BadHeader);
    let dir = report_dir("bad-header");
    let out = loadgen(&base, &["-u", "3", "-r", "3", "-t", "3s"], &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("TLS"), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("run not trusted"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        line.contains("answered what cannot be read (not HTTP/1.1") && !line.contains("hung"),
        "{line}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Metadata that names no device authorization endpoint (django-oauth-toolkit's) left
/// it empty: the fleet posted to the host's root and blamed the server's 404 answers,
/// exit 3 (helper-86). It is said at setup, as the suite says MD-01, exit 2, and no
/// request is sent but the metadata's.
#[test]
fn metadata_without_the_device_endpoint_is_said_before_any_device_runs() {
    let (base, seen) = fake(Mode::NoDeviceEndpoint);
    let dir = report_dir("no-device-endpoint");
    let out = loadgen(&base, &["-u", "3", "-r", "3"], &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("the metadata at {base}/.well-known/oauth-authorization-server does not advertise device_authorization_endpoint, so a client using discovery cannot find it (give it with --device-authorization-endpoint to run the fleet)")),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert_eq!(seen.issues.load(Relaxed), 0);
}

/// A device authorization endpoint that redirects (to a login page, to https://) had
/// been said as "HTTP 302, not a JSON object", which did not say where it sent the
/// devices. The redirect's target is named (without its query, which differs from
/// request to request), with what to check.
#[test]
fn a_device_authorization_redirected_elsewhere_names_where_it_was_sent() {
    let (base, seen) = fake(Mode::Redirects);
    let dir = report_dir("redirected");
    let out = loadgen(&base, &["-u", "3", "-r", "3"], &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(seen.issues.load(Relaxed), 3);
    let what = format!("HTTP 302, a redirect to {base}/login (devices do not follow redirects)");
    assert!(
        stderr.contains(&format!("all 3 device authorizations were answered {what}: check --host and --device-authorization-endpoint")),
        "{stderr}"
    );
    let issue = &read_run::<serde_json::Value>(&dir)["stats"]["kinds"]["issue"];
    assert_eq!(issue["unexpected"][&what].as_u64(), Some(3), "{issue}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The same for a token endpoint that redirects the polls: the report names where,
/// where it had said "HTTP 302, not a JSON object".
#[test]
fn polls_redirected_elsewhere_name_where_they_were_sent() {
    let (base, seen) = fake(Mode::RedirectsPolls);
    let dir = report_dir("polls-redirected");
    let out = loadgen(&base, &["-u", "3", "-r", "3"], &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(seen.polls.load(Relaxed), 3, "{stdout}");
    let what = format!("HTTP 302, a redirect to {base}/login (devices do not follow redirects)");
    let poll = &read_run::<serde_json::Value>(&dir)["stats"]["kinds"]["poll"];
    assert_eq!(poll["unexpected"][&what].as_u64(), Some(3), "{poll}");
    assert!(stdout.contains(&what), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A 200 to a poll with an access token and no `token_type` is not a token: RFC 6749
/// §5.1 makes `token_type` REQUIRED. It is an unexpected answer that says what is
/// missing, as a broken device authorization response is. It had been counted a token.
#[test]
fn a_token_response_without_token_type_is_an_unexpected_answer_saying_so() {
    let (base, seen) = fake(Mode::PollAnswers(r#"{"access_token":"x"}"#));
    let dir = report_dir("no-token-type");
    let out = loadgen(&base, &["-u", "3", "-r", "3"], &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(seen.polls.load(Relaxed), 3, "{stderr}");
    let run = read_run::<serde_json::Value>(&dir);
    let what = "HTTP 200, not a token response (RFC 6749 §5.1): missing field `token_type`";
    let poll = &run["stats"]["kinds"]["poll"];
    assert_eq!(poll["unexpected"][what].as_u64(), Some(3), "{poll}");
    let tokens = outcome(&run, deviceflow_loadgen::device::flow::Outcome::Token);
    assert_eq!(tokens, 0, "{}", run["stats"]["behaviours"]);
    // Not a token, so no token nobody approved either.
    assert_eq!(
        run["stats"]["violations"]
            .as_object()
            .map_or(0, |v| v.len()),
        0
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(what), "{stdout}");
    // No poll got an answer a device understands: nothing of the flow was measured,
    // and the run is not trusted (it had exited 0 saying no violation could be seen,
    // helper-100).
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("run not trusted: no poll got an answer a device understands (RFC 8628 §3.5): all 3 polls were answered {what}; the server's RFC 8628 behaviour was not measured")),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A wrong `--token-endpoint` (another endpoint of the server, say) answers every poll
/// with an error outside RFC 8628 §3.5. Nothing about pacing or violations was seen,
/// and the report says so; it had claimed "No violations" and "Compliant devices were
/// never answered slow_down (checklist PL-02)" on polls no RFC 8628 answer came to.
#[test]
fn polls_that_got_no_rfc_8628_answer_claim_no_pass() {
    let (base, seen) = fake(Mode::PollAnswers(r#"{"error":"invalid_request"}"#));
    let dir = report_dir("no-rfc-8628-answer");
    let out = loadgen(&base, &["-u", "3", "-r", "3"], &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(seen.polls.load(Relaxed), 3, "{stdout}");
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("No violation could be seen: no poll was answered as RFC 8628"),
        "{summary}"
    );
    assert!(!summary.contains("No violations"), "{summary}");
    assert!(!summary.contains("never answered slow_down"), "{summary}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A server whose quota refuses part of the fleet (here every device authorization
/// after the first) is measured, not stopped early: the early stop is for runs in
/// which no device got a code.
#[test]
fn a_quota_that_refuses_part_of_the_fleet_does_not_stop_the_run_early() {
    let (base, seen) = fake(Mode::CodesThenRefuses(1));
    let dir = report_dir("quota-part");
    let out = loadgen(&base, &["-u", "5", "-r", "5", "-t", "6s"], &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Four refused slots, each starting anew a second later: well past 20 refusals.
    assert!(seen.issues.load(Relaxed) > 21, "{stderr}");
    let run = read_run::<serde_json::Value>(&dir);
    let shard = &run["shards"][0];
    assert!(shard.get("stopped_at_s").is_none(), "{shard}");
    assert!(run["duration_s"].as_f64().unwrap() >= 6.0, "{shard}");
    assert!(!stderr.contains("stopped early"), "{stderr}");
    assert!(!stderr.contains("no device got a code"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// With -t, a device whose flow an error ended starts anew a second later. When every
/// device of a lane had ended so (a server failing every device authorization, or
/// one down for its first second), the lane saw no device alive and ended: the run
/// stopped after its first round, about 1 s into `-t 3s`, with 5 device
/// authorizations where the schedule called for about 15.
#[test]
fn the_run_time_is_kept_while_every_device_waits_to_start_anew() {
    let (base, seen) = fake(Mode::Fails);
    let dir = report_dir("restarts");
    let started = std::time::Instant::now();
    let out = loadgen(&base, &["-u", "5", "-r", "5", "-t", "3s"], &dir)
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let issues = seen.issues.load(Relaxed);
    // About 15 (5 devices, each starting anew a second after its failed flow); fewer
    // on a slow or busy machine, whose devices start and fail late. The run that
    // stopped after its first round made 5; one that restarted at once, far more.
    assert!(
        (8..20).contains(&issues),
        "{issues} device authorizations: {stderr}"
    );
    let run = read_run::<serde_json::Value>(&dir);
    assert!(
        run["duration_s"].as_f64().unwrap() >= 3.0,
        "{}",
        run["duration_s"]
    );
    assert!(took >= std::time::Duration::from_secs(3), "{took:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A poll the server had and never answered vanished from the latency figures: with
/// 0.8 % of polls hanging 20 s, `--threshold "max<1s"` passed. It is counted at the
/// time it was given up on (`--request-timeout 1`: at least 1 s), so the rule fails,
/// and the report says so.
#[test]
fn a_poll_the_server_never_answered_is_in_the_latency_figures_at_its_timeout() {
    let (base, seen) = fake(Mode::HangsFirstPoll);
    let dir = report_dir("hangs-first-poll");
    let out = loadgen(
        &base,
        &[
            "-u",
            "3",
            "-r",
            "10",
            "-t",
            "3",
            "--request-timeout",
            "1",
            "--max-transport-errors",
            "0.5",
            "--threshold",
            "max<1s for token_poll",
        ],
        &dir,
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(seen.polls.load(Relaxed) > 1, "{stdout}");
    let poll = &read_run::<serde_json::Value>(&dir)["stats"]["kinds"]["poll"];
    assert_eq!(
        poll["transport"][3].as_u64(),
        Some(1),
        "one timeout: {poll}"
    );
    assert!(
        stdout.contains("✗ max<1s for token_poll"),
        "the threshold passed: {stdout}"
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let latency: deviceflow_loadgen::measure::stats::Hdr =
        serde_json::from_value(poll["latency_us"].clone()).unwrap();
    assert_eq!(latency.count(), poll["answered"].as_u64().unwrap() + 1);
    assert!(latency.max().unwrap() >= 1_000_000, "{:?}", latency.max());
    assert_eq!(poll["timeouts_in_latency"].as_u64(), Some(1), "{poll}");
    assert!(
        stdout.contains("1 requests the server had and did not answer within --request-timeout are in the latency percentiles"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Pauses `child` (SIGSTOP) `after_ms` from now for `for_ms`; returns when it went on.
fn pause(child: &std::process::Child, after_ms: u64, for_ms: u64) -> std::time::Instant {
    let pid = child.id().to_string();
    let signal = |s: &str| {
        let ok = Command::new("kill").args([s, &pid]).status().unwrap();
        assert!(ok.success(), "kill {s}");
    };
    std::thread::sleep(std::time::Duration::from_millis(after_ms));
    signal("-STOP");
    std::thread::sleep(std::time::Duration::from_millis(for_ms));
    signal("-CONT");
    std::time::Instant::now()
}

/// The generator paused (SIGSTOP) for 3 s while polls were out, each answered by the
/// server after 0.5 s: a timeout that fires when the process goes on, before the
/// answer waiting in its socket is read, was put on the server ("the server had all
/// 44 of them and gave no answer: its failure"). The lane's stall clock saw the
/// pause: those timeouts are the generator's, and none is the server's.
///
/// The pause (4 s) outlasts the request timeout (3 s), so every poll out at its start
/// is past its timeout when the generator goes on; outside the pause, the server's
/// 0.5 s answers leave 2.5 s of slack before a timeout, on a slow or busy machine too.
#[test]
fn timeouts_while_the_generator_was_paused_are_the_generators() {
    const DEVICES: u64 = 200;
    let (base, seen) = fake(Mode::SlowPolls(500));
    let dir = report_dir("paused");
    let mut child = loadgen(
        &base,
        &[
            "-u",
            &DEVICES.to_string(),
            "-r",
            "400",
            "-t",
            "10",
            "--request-timeout",
            "3",
            "--mix",
            "compliant=100",
        ],
        &dir,
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // The devices start within 0.5 s and poll 1 s after their codes came, then
    // 1.5 s apart (1 s + the server's 0.5 s). The pause begins while the server holds
    // polls (read, their answers not yet written), however slow the machine: their
    // answers come during the pause, and their timeouts pass in it.
    let polls_out = common::wait_until(std::time::Duration::from_secs(30), || {
        seen.polls_out.load(Relaxed) >= 20
    });
    if polls_out {
        pause(&child, 0, 4000);
    } else {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        polls_out,
        "{} polls, never 20 out at once in 30 s: {stdout}",
        seen.polls.load(Relaxed)
    );
    let poll = &read_run::<serde_json::Value>(&dir)["stats"]["kinds"]["poll"];
    // The pause held polls past their timeout (a few tens of them): else this run
    // would say nothing of whose those timeouts are.
    let timeouts = poll["transport"][3].as_u64().unwrap();
    assert!(timeouts > 0, "no poll timed out in the pause: {poll}");
    assert_eq!(
        poll["reached_unanswered"].as_u64(),
        Some(0),
        "{poll}\n{stdout}"
    );
    assert_eq!(
        poll["stalled_unanswered"].as_u64(),
        Some(timeouts),
        "{poll}"
    );
    assert!(!stdout.contains("the server had all"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The generator paused (SIGSTOP) for longer than the interval: every device's poll
/// was held, and all went out as it went on. Each device then waited the interval
/// from that one answer, so the whole fleet polled in step for the rest of the run, a
/// burst every interval that the generator made and the server was measured under.
/// A device waits its lag again (less whole intervals) once: after the catch-up, no
/// half second holds more than half the fleet's polls. Failed before: one half second
/// held all of them, every 2 s.
#[test]
fn after_the_generator_was_paused_its_fleet_polls_spread_out_again() {
    const DEVICES: usize = 200;
    let (base, seen) = fake(Mode::Issues {
        expires_in: 60,
        interval: 2,
    });
    let dir = report_dir("respread");
    let child = loadgen(
        &base,
        &[
            "-u",
            &DEVICES.to_string(),
            "-r",
            "100",
            "-t",
            "15",
            "--mix",
            "compliant=100",
        ],
        &dir,
    )
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    // The devices start within 2 s and poll every 2 s: by 4.5 s every one polls.
    let resumed = pause(&child, 4500, 3000);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let times = seen.poll_times.lock().unwrap().clone();
    // From 1 s after the catch-up (its burst is the held polls, as due) to 6 s.
    let mut halves = [0usize; 10];
    for t in &times {
        let since = t.saturating_duration_since(resumed).as_millis() as usize;
        if (1000..6000).contains(&since) {
            halves[(since - 1000) / 500] += 1;
        }
    }
    let after: usize = halves.iter().sum();
    // Each device polls about twice in those 5 s.
    assert!(
        after >= DEVICES * 3 / 2,
        "{halves:?}: the fleet stopped polling"
    );
    assert!(
        halves.iter().all(|&n| n <= DEVICES / 2),
        "polls per half second, from 1 s after the generator went on: {halves:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// RFC 8628 §3.2: the report had shown the interval as the device kept it, not as the
/// server gave it: 10^9 s as 3600 s, 0 as 5 s. It shows the server's, and says the
/// devices had to keep another.
#[test]
fn the_interval_is_reported_as_the_server_gave_it_and_a_clamp_is_a_finding() {
    for (given, kept) in [(1_000_000_000u64, "3600 s"), (0, "5 s")] {
        let (base, seen) = fake(Mode::Issues {
            expires_in: 60,
            interval: given,
        });
        let dir = report_dir(&format!("interval-given-{given}"));
        let out = loadgen(
            &base,
            &["-u", "2", "-r", "10", "-t", "1", "--mix", "compliant=100"],
            &dir,
        )
        .output()
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(seen.issues.load(Relaxed), 2, "{stdout}");
        let compliant = &read_run::<serde_json::Value>(&dir)["stats"]["behaviours"]["compliant"];
        assert_eq!(
            compliant["interval"][given.to_string()].as_u64(),
            Some(2),
            "{}",
            compliant["interval"]
        );
        assert_eq!(
            compliant["max_required_interval_s"].as_u64(),
            Some(given),
            "{compliant}"
        );
        assert!(
            stdout.contains("The server gave 2 devices an interval")
                && stdout.contains(&format!("which they kept as {kept}"))
                && stdout.contains("no device can keep such an interval literally"),
            "{stdout}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Whether process `pid` is gone (or a zombie, its exit done), within 5 s.
fn gone(pid: &str) -> bool {
    for _ in 0..50 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z')) =>
            {
                return true
            }
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
    false
}

/// An approver command still running when the run ended ran on after the generator
/// had exited (its tasks were never ended, and the process's exit skips their
/// `kill_on_drop`). The lane ends them at its wind-up: the command's process is gone.
#[test]
fn an_approver_command_does_not_outlive_the_run() {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return;
    }
    let (base, seen) = fake(Mode::Issues {
        expires_in: 60,
        interval: 1,
    });
    let dir = report_dir("approver-outlives");
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("approver.pid");
    let command = format!("sh -c 'echo $$ > {}; exec sleep 60'", pidfile.display());
    let report = dir.join("report");
    let out = loadgen(
        &base,
        &[
            "-u",
            "1",
            "-r",
            "10",
            "-t",
            "2",
            "--mix",
            "compliant=100",
            "--decide-after",
            "0..0",
            "--approver",
            "command",
            "--approver-command",
            &command,
        ],
        &report,
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(seen.issues.load(Relaxed), 1, "{stdout}");
    let pid = std::fs::read_to_string(&pidfile).expect("the approver ran");
    let pid = pid.trim();
    let ended = gone(pid);
    if !ended {
        // Ours (the generator's child): not left running whatever the verdict.
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
    assert!(
        ended,
        "the approver command {pid} outlived the run: {stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A second Ctrl-C exits at once with 130, as the first one's stop would have: goose's
/// own handler, which had taken SIGINT over once the run began, exited 1 (this
/// command's status for a failed threshold). The server never answers a poll and the
/// generator waits 30 s for each, so the first Ctrl-C's stop is still waiting when the
/// second comes.
#[test]
fn a_second_ctrl_c_during_the_run_exits_130_at_once() {
    let (base, seen) = fake(Mode::SilentPolls);
    let dir = report_dir("second-ctrl-c");
    let child = loadgen(
        &base,
        &["-u", "5", "-r", "5", "-t", "60s", "--request-timeout", "30"],
        &dir,
    )
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let polled = common::wait_until(std::time::Duration::from_secs(30), || {
        seen.polls.load(Relaxed) > 0
    });
    assert!(polled, "no poll within 30 s");
    common::signal(&child, "INT");
    std::thread::sleep(std::time::Duration::from_millis(300));
    common::signal(&child, "INT");
    let out = common::output_within(child, std::time::Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("Ctrl-C again: exiting at once, without the report"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
