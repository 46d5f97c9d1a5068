//! The command's setup, before any device runs: where the endpoints are (the
//! metadata may put them on another authority than `--host`), what `-u` and `-t` may
//! be, whether the report folder can be written; and what the run says when the
//! server's /metrics cannot be scraped.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use deviceflow_loadgen::device::flow::Kind;
use deviceflow_loadgen::report::results::RunData;

use common::{read_run, report_dir, Server};

const DEVICE: &str = "expires_in = 4\ninterval = 1";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The device codes `base`'s server has issued so far.
fn issued(base: &str) -> f64 {
    common::metric(base, "deviceflow_device_authorizations_total").expect("our server has /metrics")
}

/// A setup error: exit 2, one line saying it, and no run.
fn assert_setup_error(out: &Output, says: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains(says), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("report: "));
    lines[0].to_owned()
}

/// Runs the fleet against `server` with `args`, which must be refused at setup in one
/// line saying `says`, before any report folder is made.
fn refused_at_setup(server: &Server, args: &[&str], says: &str) {
    let dir = report_dir("cli-refused");
    let out = common::loadgen(&[&server.base], &dir)
        .args(args)
        .output()
        .unwrap();
    assert_setup_error(&out, says);
    assert!(!dir.exists(), "a report for {args:?}");
}

#[test]
fn endpoints_the_metadata_puts_on_another_authority_get_the_devices_requests() {
    // One server on two addresses; its metadata, served on both, names the first.
    let servers = Server::start_on(&["127.0.0.1:0", "127.0.0.1:0"], DEVICE, "");
    let (endpoints, host) = (&servers[0].base, &servers[1].base);
    let dir = report_dir("cli-elsewhere");
    let out = common::loadgen(&[host], &dir)
        .args(["-u", "6", "-r", "6", "--decide-after", "1..2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run = read_run::<RunData>(&dir);
    let s = &run.stats;
    let sent = |k: Kind| s.kinds.get(&k).map_or(0, |x| x.sent);
    let devices_own = sent(Kind::Issue) + sent(Kind::Poll) + sent(Kind::ReplayCheck);
    let at = |base: &str| {
        s.hosts
            .get(base.trim_start_matches("http://"))
            .copied()
            .unwrap_or_default()
    };
    // Every device request went where the endpoints are; --host got the admin
    // decisions only (the admin endpoint is the issuer's).
    assert!(devices_own > 6, "{:#?}", s.kinds);
    assert_eq!(at(endpoints), (devices_own, devices_own), "{:#?}", s.hosts);
    assert_eq!(at(host).0, sent(Kind::Approve), "{:#?}", s.hosts);
    assert!(run.setup.token_endpoint.starts_with(endpoints.as_str()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn endpoints_on_another_authority_than_several_hosts_are_a_setup_error() {
    let servers = Server::start_on(&["127.0.0.1:0"; 3], DEVICE, "");
    let dir = report_dir("cli-several");
    let out = common::loadgen(&[&servers[1].base, &servers[2].base], &dir)
        .args(["-u", "2", "-r", "2"])
        .output()
        .unwrap();
    let line = assert_setup_error(&out, "not on any --host");
    for s in &servers {
        assert!(
            line.contains(s.base.trim_start_matches("http://")),
            "{line}"
        );
    }
    // Instances behind a load balancer (the issuer) are what this usually is: the
    // line says how to send the fleet to them.
    assert!(
        line.ends_with("the paths alone: --device-authorization-endpoint /oauth/device_authorization --token-endpoint /oauth/token"),
        "{line}"
    );
    assert_eq!(issued(&servers[0].base), 0.0, "nothing ran");
    assert!(!dir.exists());
}

#[test]
fn an_unwritable_report_dir_is_a_setup_error_before_any_device_runs() {
    let server = Server::start(DEVICE, "");
    let file = report_dir("cli-a-file");
    std::fs::write(&file, "not a folder").unwrap();
    for dir in [file.join("report"), "/proc/nope".into()] {
        let started = Instant::now();
        let out = common::loadgen(&[&server.base], &dir)
            .args(["-u", "2", "-r", "2", "--decide-after", "1..1"])
            .output()
            .unwrap();
        let line = assert_setup_error(&out, "--report-dir");
        assert!(line.contains(&dir.display().to_string()), "{line}");
        assert!(started.elapsed() < Duration::from_secs(3), "it ran first");
    }
    assert_eq!(issued(&server.base), 0.0, "no device ran");
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn no_devices_or_no_run_time_is_a_setup_error() {
    let server = Server::start(DEVICE, "");
    for (args, says) in [(["-u", "0"], "-u 0"), (["-t", "0"], "-t 0")] {
        refused_at_setup(&server, &args, says);
    }
    assert_eq!(issued(&server.base), 0.0, "no device ran");
}

/// Options that contradict each other, or the RFC, end at setup (exit 2), naming
/// the option: a shard with no device had ended "NOT TRUSTED: no request was sent"
/// (exit 3), `--expect-interval 0` charged the server with DR-06, and a threshold on
/// the replay check under `--no-replay-check` ended "observed no samples" (exit 1).
#[test]
fn contradictory_options_are_setup_errors() {
    let server = Server::start(DEVICE, "");
    for (args, says) in [
        (
            &["-u", "2", "--shard", "3/4"][..],
            "--shard 3/4 with -u 2: this shard has no device",
        ),
        (&["--expect-interval", "0"][..], "--expect-interval 0"),
        (&["--expect-expires-in", "0"][..], "--expect-expires-in 0"),
        (
            &[
                "--no-replay-check",
                "--threshold",
                "p99<10ms for token_replay_check",
            ][..],
            "which --no-replay-check turns off",
        ),
    ] {
        refused_at_setup(&server, args, says);
    }
    assert_eq!(issued(&server.base), 0.0, "no device ran");
}

/// Values that were read as something else without a word: `-r inf` (every device at
/// once), `-s 0` (as a thousandth of a second), `--request-timeout 0` (as 1 s),
/// `--max-flow 0` (every device "unfinished" before its first answer).
#[test]
fn values_that_mean_nothing_are_setup_errors_not_guesses() {
    let server = Server::start(DEVICE, "");
    for (args, says) in [
        (["-r", "inf"], "-r inf"),
        (["-s", "0"], "-s 0"),
        (["--request-timeout", "0"], "--request-timeout 0"),
        (["--max-flow", "0"], "--max-flow 0"),
    ] {
        refused_at_setup(&server, &[&["-u", "3"][..], &args].concat(), says);
    }
    assert_eq!(issued(&server.base), 0.0, "no device ran");
}

/// A run time past what the lanes count (u32 ms, about 49.7 days) is refused in one
/// line: 1e23 s panicked converting to a Duration, and 4,294,968 s wrapped to a run
/// of 0.7 s.
#[test]
fn a_run_time_too_long_to_count_is_a_setup_error() {
    let server = Server::start(DEVICE, "");
    for t in ["99999999999999999999999", "4294968s"] {
        let dir = report_dir("cli-long-t");
        let out = common::loadgen(&[&server.base], &dir)
            .args(["-t", t])
            .output()
            .unwrap();
        assert_setup_error(&out, &format!("-t {t}"));
        assert!(!dir.exists(), "a report for -t {t}");
    }
    assert_eq!(issued(&server.base), 0.0, "no device ran");
}

#[test]
fn u_is_the_number_of_devices_and_one_when_left_out_as_the_help_says() {
    let help = common::loadgen(&[], &report_dir("cli-help"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let u = help
        .split("-u, --users <N>")
        .nth(1)
        .and_then(|h| h.split("-r, --increase-rate").next())
        .unwrap_or_else(|| panic!("{help}"));
    assert!(u.contains("Devices") && u.contains("[default: 1]"), "{u}");
    assert!(!help.contains("one per CPU"), "{help}");

    let server = Server::start(DEVICE, "");
    let dir = report_dir("cli-one");
    let out = common::loadgen(&[&server.base], &dir)
        .args(["--decide-after", "1..1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(read_run::<RunData>(&dir).stats.devices(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_server_gone_before_the_last_scrape_is_said_to_leave_no_reconciliation() {
    let mut server = Server::start("expires_in = 60\ninterval = 1", "");
    let dir = report_dir("cli-no-scrape");
    let child = common::loadgen(&[&server.base], &dir)
        .args([
            "-u",
            "10",
            "-r",
            "10",
            "-t",
            "3s",
            "--decide-after",
            "30..30",
        ])
        .spawn()
        .unwrap();
    // The first code issued says the run is under way, the scrape before it done
    // (it comes before any device starts): the server goes then, however slow the
    // machine, and only the scrape after the run finds it gone.
    let under_way = common::wait_for_a_code(&server.base, Duration::from_secs(30));
    server.kill();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(under_way, "no code issued within 30 s: {err}");
    assert_eq!(out.status.code(), Some(3), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("no reconciliation with the server's /metrics"))
        .unwrap_or_else(|| panic!("not said: {err}"));
    assert!(
        line.contains("after the run") && !line.contains("before the run"),
        "{line}"
    );
    assert!(
        line.contains("/metrics got no answer (connection refused"),
        "{line}"
    );
    let run = read_run::<RunData>(&dir);
    assert!(run.metrics.is_none());
    // The report says so too, with the same reason.
    assert_eq!(
        run.no_reconciliation.len(),
        1,
        "{:?}",
        run.no_reconciliation
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("No reconciliation with the server's /metrics: after the run"),
        "{summary}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ctrl_c_stops_the_run_within_moments_and_the_report_says_so() {
    let server = Server::start(
        "expires_in = 60
interval = 1",
        "",
    );
    let dir = report_dir("cli-ctrl-c");
    // Without -t, 200 devices would run for minutes (the person decides in 30 s).
    let child = common::loadgen(&[&server.base], &dir)
        .args(["-u", "200", "-r", "50", "--decide-after", "30..30"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    let err = stderr(&out);
    assert!(took < Duration::from_secs(5), "{took:?} after Ctrl-C");
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("stopped by Ctrl-C at"), "{err}");
    assert!(read_run::<RunData>(&dir).shards[0].stopped_at_s.is_some());
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("STOPPED EARLY by Ctrl-C"), "{summary}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Standard output cannot be written (a full disk): found before any device runs, in
/// one line, exit 2. goose's own line as the lanes start had panicked (exit 101), the
/// run lost.
#[test]
fn an_unwritable_standard_output_is_found_before_the_run() {
    let server = Server::start(DEVICE, "");
    let dir = report_dir("cli-full-stdout");
    let out = common::loadgen(&[&server.base], &dir)
        .args(["--decide-after", "1..1"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_setup_error(
        &out,
        "deviceflow-loadgen: writing to standard output: No space left on device (os error 28)",
    );
    assert_eq!(issued(&server.base), 0.0, "no device ran");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pipe closed during the run (`| head -2`: the reader took goose's line and left)
/// costs only the terminal's copy of the report: the report is on disk, one line says
/// where, and the exit status is 2. `println!` had panicked (exit 101).
#[test]
fn a_standard_output_closed_during_the_run_keeps_the_report() {
    use std::io::BufRead;
    let server = Server::start(DEVICE, "");
    let dir = report_dir("cli-closed-stdout");
    let mut child = common::loadgen(&[&server.base], &dir)
        .args(["--decide-after", "1..1"])
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with("deviceflow-loadgen: 1 devices against"),
        "{first}"
    );
    let launched = lines.next().unwrap().unwrap();
    assert!(launched.contains("users launched"), "{launched}");
    drop(lines);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "deviceflow-loadgen: writing to standard output: Broken pipe (os error 32); the report is in {}",
            dir.display()
        )
    );
    assert_eq!(read_run::<RunData>(&dir).stats.devices(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An approver that cannot work is a setup error before any device runs, as in the
/// suite: a wrong --admin-token had every decision refused while the fleet polled on
/// until its codes expired.
#[test]
fn a_wrong_admin_token_is_a_setup_error_before_any_device_runs() {
    let server = Server::start(DEVICE, "");
    let dir = report_dir("cli-wrong-admin");
    let out = Command::new(env!("CARGO_BIN_EXE_deviceflow-loadgen"))
        .args(["--host", &server.base, "--client-id", "tv"])
        .args(["--admin-token", "not-the-token", "--admin-user", "alice"])
        .args(["--progress-every", "0", "--decide-after", "1..1"])
        .arg("--report-dir")
        .arg(&dir)
        .output()
        .unwrap();
    let line = assert_setup_error(
        &out,
        "refused the admin token (HTTP 401): check --admin-token",
    );
    assert!(
        line.starts_with("deviceflow-loadgen: the approver does not work: "),
        "{line}"
    );
    assert_eq!(issued(&server.base), 0.0, "no device ran");
}

/// 0 threads, lanes or connections is refused (they had been read as 1 without a
/// word), naming the option, before any device runs.
#[test]
fn zero_threads_lanes_or_connections_are_refused() {
    for option in ["--threads", "--lanes", "--connections"] {
        let out = Command::new(env!("CARGO_BIN_EXE_deviceflow-loadgen"))
            .args(["--host", "http://127.0.0.1:9", option, "0"])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{option}: {err}");
        assert_eq!(
            err.trim_end(),
            format!("deviceflow-loadgen: {option} \"0\": give 1 or more (see --help)")
        );
    }
}

/// A `--client-id` the server does not know: every device authorization is answered
/// 401 invalid_client, no device gets a code, and nothing of the server's RFC 8628
/// behaviour is measured. The run had exited 0, its report saying "No violations"
/// and "Compliant devices were never answered slow_down".
#[test]
fn a_client_id_the_server_does_not_know_fails_the_run_naming_it() {
    let server = Server::start(DEVICE, "");
    let dir = report_dir("cli-wrong-client");
    let out = Command::new(env!("CARGO_BIN_EXE_deviceflow-loadgen"))
        .args(["--host", &server.base, "--client-id", "not-a-client"])
        .args(["--admin-token", common::ADMIN, "--admin-user", "alice"])
        .args(["--progress-every", "0", "-u", "5", "-r", "5"])
        .arg("--report-dir")
        .arg(&dir)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(
        err.trim_end(),
        "deviceflow-loadgen: run not trusted: no device got a code: all 5 device authorizations were answered HTTP 401 invalid_client: check --client-id (and --client-secret for a confidential client); the server's RFC 8628 behaviour was not measured"
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("NOT TRUSTED: no device got a code: all 5 device authorizations were answered HTTP 401 invalid\\_client: check --client-id"),
        "{summary}"
    );
    // Nothing is said of what was not measured.
    assert!(!summary.contains("never answered slow"), "{summary}");
    assert!(!summary.contains("No violations"), "{summary}");
    assert!(
        summary.contains("No violation could be seen: no poll was answered as RFC 8628"),
        "{summary}"
    );
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(html.contains("NOT TRUSTED: no device got a code"), "{html}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `--device-authorization-endpoint` the server does not have (a typo in its path):
/// every device authorization is answered 404, no device got a code, and the line
/// says what came instead and what to check. The run had exited 0.
#[test]
fn a_wrong_device_authorization_endpoint_fails_the_run_saying_what_it_answered() {
    let server = Server::start(DEVICE, "");
    let dir = report_dir("cli-no-code");
    let out = common::loadgen(&[&server.base], &dir)
        .args(["-u", "3", "-r", "3"])
        .arg("--device-authorization-endpoint")
        .arg(format!("{}/oauth/device-authorization", server.base))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let line = err.trim_end();
    assert!(!line.contains('\n'), "{err}");
    assert!(
        line.starts_with("deviceflow-loadgen: run not trusted: no device got a code: all 3 device authorizations were answered HTTP 404 not_found: check --device-authorization-endpoint"),
        "{line}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The command's output, or `None` (and the command killed) when it runs past `limit`.
fn output_within(mut c: Command, limit: Duration) -> Option<Output> {
    let mut child = c.spawn().unwrap();
    let started = Instant::now();
    while started.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Without -t, a -r (or -s) so slow that the last device would start past what the
/// lanes count (u32 ms, about 49.7 days) is refused in one line: -r 1e-10 had the run
/// wait (for ever, to the user) for its second device. A --decide-after past it is
/// refused too: 0..18446744073709551615 panicked multiplying (debug builds) or
/// wrapped to another delay (release).
#[test]
fn a_start_or_decision_time_too_far_to_count_is_a_setup_error() {
    let server = Server::start(DEVICE, "");
    for (args, says) in [
        (["-u", "2", "-r", "0.0000000001"], "-r 0.0000000001"),
        (["-u", "1000", "-s", "100000000"], "-s 100000000"),
    ] {
        let dir = report_dir("cli-slow-r");
        let mut c = common::loadgen(&[&server.base], &dir);
        c.args(args);
        let out = output_within(c, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{args:?} still running after 20 s"));
        assert_setup_error(&out, says);
        assert!(!dir.exists(), "a report for {args:?}");
    }
    let dir = report_dir("cli-far-decision");
    let mut c = common::loadgen(&[&server.base], &dir);
    c.args(["--decide-after", "0..18446744073709551615"]);
    let out = output_within(c, Duration::from_secs(20)).expect("still running after 20 s");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("deviceflow-loadgen: --decide-after \"0..18446744073709551615\": 18446744073709551615 s is longer than a run can last"),
        "{err}"
    );
    assert_eq!(issued(&server.base), 0.0, "no device ran");
}

/// A `--client-id` the server does not know, in a long run (`-t 3600`): the mistake
/// shows in the first second, and the run had lasted its whole hour before exiting 3.
/// The generator stops it once the first 20 device authorizations answered were all
/// refused with no code given (README, "Numbers you can trust"), exits 3 with the
/// same one-line reason and says it stopped early, and so does the report.
#[test]
fn a_long_run_whose_every_device_authorization_is_refused_is_stopped_early() {
    let server = Server::start(DEVICE, "");
    let dir = report_dir("cli-wrong-client-long");
    let mut c = Command::new(env!("CARGO_BIN_EXE_deviceflow-loadgen"));
    c.args(["--host", &server.base, "--client-id", "not-a-client"])
        .args(["--admin-token", common::ADMIN, "--admin-user", "alice"])
        .args(["--progress-every", "0", "-u", "5", "-r", "5", "-t", "3600"])
        .arg("--report-dir")
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let out = output_within(c, Duration::from_secs(60))
        .expect("still running after 60 s: the run was not stopped early");
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let line = err.trim_end();
    assert!(!line.contains('\n'), "{err}");
    assert!(
        line.starts_with("deviceflow-loadgen: run not trusted: no device got a code: all ")
            && line.contains(" device authorizations were answered HTTP 401 invalid_client: check --client-id (and --client-secret for a confidential client); the server's RFC 8628 behaviour was not measured; the run was stopped early, at ")
            && line.ends_with(" s: the first 20 device authorizations answered were all refused, none with a code"),
        "{line}"
    );
    assert!(!line.contains("Ctrl-C"), "{line}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    let run = read_run::<RunData>(&dir);
    let shard = &run.shards[0];
    assert!(shard.stopped_at_s.is_some_and(|t| t < 30.0), "{shard:?}");
    assert_eq!(
        shard.stopped_because.as_deref(),
        Some("the first 20 device authorizations answered were all refused, none with a code")
    );
    let issue = &run.stats.kinds[&Kind::Issue];
    assert!(issue.answered >= 20, "{issue:?}");
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    for says in [
        "NOT TRUSTED: no device got a code",
        "STOPPED EARLY at ",
        "by the generator: the first 20 device authorizations answered were all refused, none with a code",
    ] {
        assert!(summary.contains(says), "{says}: {summary}");
        let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
        assert!(html.contains(says), "{says}: {html}");
    }
    assert!(!summary.contains("Ctrl-C"), "{summary}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `c` run under an address-space limit (`ulimit -v`) of `kb` KiB, through `sh`.
fn under_ulimit_v(c: &Command, kb: u64) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!("ulimit -v {kb} && exec \"$0\" \"$@\""))
        .arg(c.get_program())
        .args(c.get_args())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    sh
}

/// A fleet that cannot fit in the memory the process may use had run until an
/// allocation failed: "memory allocation of 6815744 bytes failed", an abort (exit
/// 134) and an empty report folder (`ulimit -v 120000`, `-u 1000000 -r 20000 -t 30`).
/// It is refused before anything runs, in one line naming the estimate, the limit
/// and what to do; a fleet that fits under the same limit runs.
#[test]
fn a_fleet_that_cannot_fit_in_memory_is_a_setup_error_naming_the_limit() {
    let server = Server::start(DEVICE, "");
    let limit_kb = 400_000;
    let dir = report_dir("cli-memory");
    let mut big = common::loadgen(&[&server.base], &dir);
    // 10,000,000 devices started within -t, at 230 bytes each: 2.3 GB.
    big.args(["-u", "10000000", "-r", "1000000", "-t", "30"]);
    let out = output_within(under_ulimit_v(&big, limit_kb), Duration::from_secs(60))
        .expect("still running after 60 s: the fleet was not refused");
    let line = assert_setup_error(
        &out,
        "the 10,000,000 devices this process would run need about 2,316 MB of memory",
    );
    assert!(
        line.contains("but the address-space limit (ulimit -v) of 410 MB leaves the run about ")
            && line.ends_with(": run fewer devices (-u, or a shorter -t), split them over processes or machines with --shard i/n, or raise ulimit -v"),
        "{line}"
    );
    assert!(!dir.exists(), "a report for a fleet refused");
    assert_eq!(issued(&server.base), 0.0, "no device ran");

    let mut small = common::loadgen(&[&server.base], &dir);
    small.args(["-u", "2", "-r", "2", "--decide-after", "1..1"]);
    let out = output_within(under_ulimit_v(&small, limit_kb), Duration::from_secs(60))
        .expect("2 devices run in seconds");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(read_run::<RunData>(&dir).stats.devices(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `merge`'s usage line named `deviceflow-loadgen <RUNS>...`, a command that fails
/// ("unexpected argument"), and the main help never said `merge` exists.
#[test]
fn merge_is_named_in_its_usage_and_in_the_main_help() {
    let bin = env!("CARGO_BIN_EXE_deviceflow-loadgen");
    let out = Command::new(bin).arg("merge").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Usage: deviceflow-loadgen merge <RUNS>..."),
        "{}",
        stderr(&out)
    );
    let help = Command::new(bin).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("deviceflow-loadgen merge RUN.json..."),
        "{help}"
    );
}

/// A run of an older schema is told as such, in one line: it had been "not a
/// deviceflow-loadgen run (missing field …)".
#[test]
fn merge_names_a_run_of_another_schema() {
    let dir = std::env::temp_dir().join(format!("loadgen-old-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("run.json");
    std::fs::write(&old, r#"{"schema": "deviceflow-loadgen/2", "setup": {}}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_deviceflow-loadgen"))
        .arg("merge")
        .arg(&old)
        .arg("--report-dir")
        .arg(dir.join("merged"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("a run of schema deviceflow-loadgen/2, and this deviceflow-loadgen merges deviceflow-loadgen/4"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// goose's options that do nothing for the fleet (goose only starts the lanes; the
/// devices' requests go out on the fleet's own transport) are refused by name, with
/// what to use instead, before any device runs. They had been accepted and ignored,
/// exit 0 (`--timeout 0.001`, every request answered in about a millisecond), or
/// answered "goose: GooseError: invalid option or value specified", naming neither.
#[test]
fn goose_options_that_do_nothing_for_the_fleet_are_refused_by_name() {
    let server = Server::start(DEVICE, "");
    let cases: [(&[&str], &str, &str); 8] = [
        (
            &["--timeout", "0.001"],
            "--timeout",
            "use --request-timeout",
        ),
        (&["--throttle-requests", "1"], "--throttle-requests", "-r"),
        (&["-t", "5", "--iterations", "2"], "--iterations", "-t"),
        (&["--no-gzip"], "--no-gzip", "own transport"),
        (
            &["--accept-invalid-certs"],
            "--accept-invalid-certs",
            "SSL_CERT_FILE",
        ),
        (
            &["--threshold-abort-delay", "1s"],
            "--threshold-abort-delay",
            "judged once",
        ),
        (&["--test-plan", "10,1s;0,1s"], "--test-plan", "-u devices"),
        (
            &["--running-metrics", "5"],
            "--running-metrics",
            "--progress-every",
        ),
    ];
    for (args, option, instead) in cases {
        let dir = report_dir("cli-goose-option");
        let out = common::loadgen(&[&server.base], &dir)
            .args(["--decide-after", "1..1"])
            .args(args)
            .output()
            .unwrap();
        let line = assert_setup_error(&out, &format!("deviceflow-loadgen: {option} is refused: "));
        assert!(line.contains(instead), "{args:?}: {line}");
        assert!(!dir.exists(), "a report for {args:?}");
    }
    assert_eq!(issued(&server.base), 0.0, "no device ran");
}

/// `--help` shows only goose's options that act on the fleet, and says what they do
/// here: `--accept-invalid-certs` was listed as skipping the certificate check (it
/// never did), and `--threshold` as stopping the run when a rule fails once a second
/// (the rules are judged at the end).
#[test]
fn the_help_lists_only_goose_options_in_effect_and_thresholds_judged_at_the_end() {
    let out = Command::new(env!("CARGO_BIN_EXE_deviceflow-loadgen"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for gone in [
        "--accept-invalid-certs",
        "Skips TLS certificate validation",
        "--timeout",
        "--no-threshold-abort",
        "once a second",
        "--test-plan",
        "--report-file",
    ] {
        assert!(!help.contains(gone), "{gone}: {help}");
    }
    let threshold = help
        .split("--threshold <RULE>")
        .nth(1)
        .and_then(|h| h.split("Device flow:").next())
        .unwrap_or_else(|| panic!("{help}"));
    assert!(
        threshold.contains("judged once, after the run's report is written")
            && threshold.contains("none stops the")
            && threshold.contains("violations"),
        "{threshold}"
    );
}

/// A `--host` without a scheme had been tried, and failed as "cannot reach
/// 127.0.0.1:8080: request failed: relative URL without a base"; it is said as the
/// conformance suite says it.
#[test]
fn a_host_that_is_not_an_absolute_url_is_a_setup_error_saying_what_to_give() {
    for (host, says) in [
        ("127.0.0.1:8080", "which is not an absolute URL"),
        ("localhost:8080", "which is not an http or https URL"),
    ] {
        let dir = report_dir("cli-relative-host");
        let out = common::loadgen(&[host], &dir).output().unwrap();
        let line = assert_setup_error(&out, &format!("--host \"{host}\", {says}"));
        assert!(
            line.ends_with("; give one like http://127.0.0.1:8080"),
            "{line}"
        );
        assert!(!dir.exists(), "a report for {host}");
    }
}

/// Command lines refused before anything is sent, each in one line in this command's
/// words, exit 2, no report folder: each had been accepted and failed later, or said
/// something else. A query in --host built `…/?x=1/.well-known/…` and was answered
/// "check --issuer" (an option of the suite's); a space at either end of it failed as
/// "invalid port number" or "speaks http:// and https:// only"; -r with -s let -r
/// win without a word; an empty --client-id ran to "not trusted" (exit 3); a NaN or
/// negative threshold was judged only after the run; --lanes 5000 had goose build
/// 5,000 users for over a minute before any device started; `-t 5ms` ended "cannot
/// parse float from empty string"; a --report-dir that is a device said "cannot
/// create it: File exists".
#[test]
fn command_lines_that_cannot_run_as_meant_are_refused_in_one_line_before_the_run() {
    let server = Server::start(DEVICE, "");
    let query = format!("{}/?x=1", server.base);
    let trailing = format!("{} ", server.base);
    let leading = format!(" {}", server.base);
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (query.as_str(), vec![], "has a query or fragment"),
        (trailing.as_str(), vec![], "has a space or a control character"),
        (leading.as_str(), vec![], "has a space or a control character"),
        (
            &server.base,
            vec!["-r", "1", "-s", "2s"],
            "-r 1 and -s 2s both say how fast the devices start: give one of them",
        ),
        (
            &server.base,
            vec!["--threshold", "error-rate<NaN%"],
            "threshold \"error-rate<NaN%\": \"NaN%\" is not a value of 0 or more",
        ),
        (
            &server.base,
            vec!["--threshold", "violations<-1"],
            "threshold \"violations<-1\": \"-1\" is not a value of 0 or more",
        ),
        // First: without the bound it runs (and ends) at once; 5,000 lanes take minutes.
        (
            &server.base,
            vec!["-u", "2", "--lanes", "3"],
            "--lanes 3: at most one per device this process runs (2)",
        ),
        (
            &server.base,
            vec!["-u", "100000", "--lanes", "5000"],
            "--lanes 5000: at most one per device this process runs (100000) and 16 per CPU",
        ),
        // It sat starting threads, saying nothing (killed after 20 s).
        (
            &server.base,
            vec!["--threads", "100000"],
            "--threads 100000: at most 4 per CPU",
        ),
        (
            &server.base,
            vec!["-t", "5ms"],
            "-t 5ms: not a time; give seconds, or hours, minutes and seconds such as 90s, 10m or 1h30m",
        ),
    ];
    for (host, args, says) in cases {
        let dir = report_dir("cli-refused");
        let out = common::loadgen(&[host], &dir).args(&args).output().unwrap();
        let line = assert_setup_error(&out, says);
        assert!(!line.contains("--issuer"), "{line}");
        assert!(!dir.exists(), "a report folder for {host:?} {args:?}");
    }
    let out = common::loadgen(&[&server.base], std::path::Path::new("/dev/full"))
        .output()
        .unwrap();
    assert_setup_error(&out, "--report-dir /dev/full: it is not a folder");
    // common::loadgen gives a --client-id of its own.
    let dir = report_dir("cli-empty-client");
    let out = Command::new(env!("CARGO_BIN_EXE_deviceflow-loadgen"))
        .args(["--host", &server.base, "--client-id", " "])
        .arg("--report-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert_setup_error(
        &out,
        "--client-id is empty: give the client_id the server registered for the devices",
    );
    assert!(!dir.exists());
    assert_eq!(issued(&server.base), 0.0, "no device ran");
}

/// `-Hhttp://…`, the short option with its value attached, had been passed on to
/// clap and the host never seen: "give --host", though given.
#[test]
fn a_host_given_as_an_attached_short_option_is_read() {
    let server = Server::start(DEVICE, "");
    for attached in [format!("-H{}", server.base), format!("-H={}", server.base)] {
        let dir = report_dir("cli-attached-h");
        let out = common::loadgen(&[], &dir)
            .arg(&attached)
            .args(["--decide-after", "1..1", "-t", "2"])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{attached}: {err}");
        assert!(read_run::<RunData>(&dir).stats.devices() >= 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// goose's log (-G) is checked before the run: a missing folder and a folder had
/// goose panic as the run started (exit 101, a backtrace, an empty report folder),
/// and a device such as /dev/full lost the log without a word.
#[test]
fn a_goose_log_that_cannot_be_written_is_a_setup_error_before_the_run() {
    let server = Server::start(DEVICE, "");
    let folder = std::env::temp_dir();
    let folder = folder.to_str().unwrap();
    for (log, says) in [
        (
            "/nonexistent/dir/g.log",
            "-G /nonexistent/dir/g.log: its folder /nonexistent/dir does not exist",
        ),
        (folder, "is a folder; give a file"),
        ("/dev/full", "-G /dev/full: not a regular file"),
    ] {
        let dir = report_dir("cli-goose-log");
        let out = common::loadgen(&[&server.base], &dir)
            .args(["-G", log])
            .output()
            .unwrap();
        assert_setup_error(&out, says);
        assert!(!dir.exists(), "a report folder for -G {log}");
    }
    assert_eq!(issued(&server.base), 0.0, "no device ran");
}

/// DEVICEFLOW_CLIENT_SECRET, even empty, had made the public client a confidential
/// one without a word, and the refusal said "check --client-id (and
/// --client-secret…)". An empty one is none (as in the suite); a secret from it is
/// named in the run's first line, in the report, and where the server refuses it.
#[test]
fn a_client_secret_from_the_environment_is_named_and_an_empty_one_is_none() {
    let server = Server::start(DEVICE, "");
    let dir = report_dir("cli-secret-empty");
    let out = common::loadgen(&[&server.base], &dir)
        .env("DEVICEFLOW_CLIENT_SECRET", "")
        .args(["-u", "2", "-r", "2", "--decide-after", "1..1", "-t", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("DEVICEFLOW_CLIENT_SECRET"));
    std::fs::remove_dir_all(&dir).unwrap();

    let dir = report_dir("cli-secret-env");
    let out = common::loadgen(&[&server.base], &dir)
        .env("DEVICEFLOW_CLIENT_SECRET", "left-over")
        .args(["-u", "3", "-r", "3"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|l| l.contains("(client tv, its secret from DEVICEFLOW_CLIENT_SECRET)")),
        "{stdout}"
    );
    assert!(
        err.contains("invalid_client: check --client-id and the secret in DEVICEFLOW_CLIENT_SECRET (the client's secret came from it: unset it, or give --client-secret \"\" for a public client)"),
        "{err}"
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("its secret from DEVICEFLOW_CLIENT_SECRET"),
        "{summary}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The command against `base` with nobody deciding (no admin endpoint to check
/// first), as a run with its own approver, or none, is: the server's own failures
/// are the ones said.
fn without_approver(base: &str, dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deviceflow-loadgen"));
    c.args(["--host", base, "--client-id", "tv", "--progress-every", "0"])
        .arg("--report-dir")
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

/// A listener that accepts connections and never answers.
fn silent_listener() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    base
}

/// A server that takes the connection and never answers had been "cannot reach …:
/// timed out", after a hard-coded 10 s per metadata URL whatever --request-timeout
/// said; with the endpoints given it went on to a run of timeouts. Now discovery and
/// the check before the run wait --request-timeout, and say the connection was made.
#[test]
fn a_server_that_never_answers_is_said_to_have_taken_the_connection_within_the_request_timeout() {
    let base = silent_listener();
    for endpoints in [false, true] {
        let dir = report_dir("cli-silent");
        let mut c = without_approver(&base, &dir);
        c.args(["--request-timeout", "1"]);
        if endpoints {
            c.arg("--device-authorization-endpoint")
                .arg(format!("{base}/device"))
                .arg("--token-endpoint")
                .arg(format!("{base}/token"));
        }
        let out = output_within(c, Duration::from_secs(60)).expect("still running after 60 s");
        assert_setup_error(&out, "accepted the connection but sent no answer");
        assert!(
            stderr(&out).contains("within 1 s (--request-timeout)"),
            "{}",
            stderr(&out)
        );
        assert!(!dir.exists());
    }
}

/// Nothing listening was exit 2 through discovery but, with the endpoints given, a
/// run of refused connections and "NOT TRUSTED" (exit 3), though nothing of the
/// server was measured. Both are a setup error now (README "Report").
#[test]
fn nothing_listening_is_a_setup_error_with_or_without_the_endpoints() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    for endpoints in [false, true] {
        let dir = report_dir("cli-nothing");
        let mut c = without_approver(&base, &dir);
        if endpoints {
            c.arg("--device-authorization-endpoint")
                .arg(format!("{base}/device"))
                .arg("--token-endpoint")
                .arg(format!("{base}/token"));
        }
        let out = output_within(c, Duration::from_secs(60)).expect("still running after 60 s");
        let line = assert_setup_error(&out, &format!("cannot reach {base}"));
        assert!(line.contains("is the server up"), "{line}");
        assert!(!dir.exists());
    }
}

/// clap's refusals had several lines (its tip, the usage) and its own words
/// ("0 is not in 1..18446744073709551615"); each is one line now, naming the option
/// and the value, exit 2.
#[test]
fn a_value_clap_refuses_is_said_in_one_line_naming_the_option() {
    for (args, says) in [
        (
            vec!["--threads", "0"],
            "deviceflow-loadgen: --threads \"0\": give 1 or more (see --help)",
        ),
        (
            vec!["--mix", "nonsense"],
            "deviceflow-loadgen: --mix \"nonsense\": ",
        ),
        (
            vec!["--shard", "3/2"],
            "deviceflow-loadgen: --shard \"3/2\": ",
        ),
        (
            vec!["--approver", "nobody"],
            "deviceflow-loadgen: --approver \"nobody\": give one of ",
        ),
        (
            vec!["--no-such-option"],
            "deviceflow-loadgen: unexpected argument '--no-such-option' found (see --help)",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_deviceflow-loadgen"))
            .args(["--host", "http://127.0.0.1:9"])
            .args(&args)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with(says), "{args:?}: {err}");
    }
}

/// `--version` had been refused (goose's, which printed goose's version); the help
/// lists the exit statuses, as the suite's does, and no goose API
/// ("GooseDefault::…").
#[test]
fn version_prints_this_commands_and_the_help_lists_the_exit_statuses() {
    let bin = env!("CARGO_BIN_EXE_deviceflow-loadgen");
    for flag in ["--version", "-V"] {
        let out = Command::new(bin).arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .starts_with(&format!("deviceflow-loadgen {}", env!("CARGO_PKG_VERSION"))),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let help = Command::new(bin).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for says in ["Exit status:", "130", "143", "Not allowed with --quiet"] {
        let present = help.contains(says);
        assert_eq!(
            present,
            says != "Not allowed with --quiet",
            "{says}: {help}"
        );
    }
    assert!(!help.contains("GooseDefault"), "{help}");
    assert!(!help.contains("into the run's folder"), "{help}");
}
