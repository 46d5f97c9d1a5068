//! A fleet over several instances of our server on one Redis (issue 11), and one
//! instance dying mid-run: the devices whose codes it issued go on polling the
//! survivor, which answers from the shared store; what the dead instance no longer
//! answers is the generator's transport errors, never a violation or an error
//! outcome. The servers are the `deviceflow-server` binary, as processes, so one can
//! be SIGKILLed.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use deviceflow_loadgen::device::flow::Outcome;
use deviceflow_loadgen::report::results::RunData;
use deviceflow_testkit::{cargo_bin, RedisServer, ServerProcess};

use common::ADMIN;

const DEVICES: u64 = 300;

fn config(store: &str) -> String {
    format!(
        "store = \"{store}\"\n[device]\nexpires_in = 8\ninterval = 1\n\
         [quotas]\nper_source_rate = 0\nper_client_rate = 0\n\
         [admin]\ntoken = \"{ADMIN}\"\n[[clients]]\nclient_id = \"tv\"\n\
         [[users]]\nusername = \"alice\"\n"
    )
}

#[test]
fn a_fleet_over_two_instances_keeps_going_when_one_dies() {
    let redis = RedisServer::start().unwrap();
    let dir = std::env::temp_dir().join(format!(
        "deviceflow-loadgen-instances-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("server.toml");
    std::fs::write(&toml, config(&redis.url())).unwrap();
    let a = instance(&toml, None);
    let mut b = instance(&toml, Some(a.issuer()));

    let report = dir.join("report");
    let started = Instant::now();
    let child = loadgen(&[&a, &b], &report);
    // Partway: two thirds of the devices have started, none has finished; and b has
    // answered devices (issued codes, answered polls), however slow the machine.
    std::thread::sleep(Duration::from_secs(2));
    let answered = |p: &ServerProcess| {
        common::metric(&p.base(), "deviceflow_device_authorizations_total").unwrap_or(0.0)
            + common::metric(&p.base(), "deviceflow_token_polls_total").unwrap_or(0.0)
    };
    let b_answered = common::wait_until(Duration::from_secs(30), || answered(&b) >= 10.0);
    b.kill().unwrap();
    let killed_at = started.elapsed();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(b_answered, "b answered no device within 32 s: {stderr}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\n--- survivor\n{}",
        a.log()
    );

    let run: RunData =
        serde_json::from_str(&std::fs::read_to_string(report.join("run.json")).unwrap()).unwrap();
    the_fleet_kept_going(&run, &a, &b, killed_at);
    // Both hosts are named, on the terminal and in summary.md, with the requests each
    // had (the terminal had named the first alone, and summary.md neither).
    let stdout = String::from_utf8_lossy(&out.stdout);
    let both = format!("{}, {}", a.base(), b.base());
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|l| l.contains(&format!("devices against {both}"))),
        "{stdout}"
    );
    let summary = std::fs::read_to_string(report.join("summary.md")).unwrap();
    let hosts = summary.lines().find(|l| l.starts_with("- hosts: "));
    assert!(
        hosts.is_some_and(|l| l.contains(&a.base()) && l.contains(&b.base()))
            && summary.contains("## Requests by host"),
        "{summary}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One instance of our server on the configuration `toml`, told `issuer` (the
/// first's) when given.
fn instance(toml: &Path, issuer: Option<&str>) -> ServerProcess {
    let server = cargo_bin("deviceflow-server", "deviceflow-server");
    let mut args = vec![
        "--config",
        toml.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--quiet",
    ];
    if let Some(i) = issuer {
        args.extend(["--issuer", i]);
    }
    ServerProcess::start(&server, &args).unwrap()
}

/// The generator, started on `hosts`: its run written under `report`.
fn loadgen(hosts: &[&ServerProcess], report: &Path) -> Child {
    let bases: Vec<String> = hosts.iter().map(|h| h.base()).collect();
    let bases: Vec<&str> = bases.iter().map(String::as_str).collect();
    common::loadgen(&bases, report)
        .args([
            "-u",
            &DEVICES.to_string(),
            "-r",
            "100",
            "--decide-after",
            "1..3",
        ])
        .args(["--expect-expires-in", "8", "--expect-interval", "1"])
        // After the kill, half of the polls and every issue meant for the dead
        // instance get no answer: a run of this shape has about a third of its
        // requests unanswered, so the bar is set above that.
        .args(["--max-transport-errors", "0.6", "--seed", "11"])
        .spawn()
        .unwrap()
}

/// Every device finished, none failed by an answer or a violation; the survivor `a`
/// answered everything, the killed `b` until it died and not after.
#[allow(
    clippy::print_stderr,
    reason = "a test's record, which the harness captures; clippy's allow-print-in-tests covers only #[test] functions"
)]
fn the_fleet_kept_going(run: &RunData, a: &ServerProcess, b: &ServerProcess, killed_at: Duration) {
    let s = &run.stats;
    assert_eq!(s.devices(), DEVICES);
    assert_eq!(s.violations_total(), 0, "{:#?}", s.violations);
    // No device was failed by an answer: those issued by the dead instance went on
    // polling the survivor, which knew their codes.
    assert_eq!(s.outcome(Outcome::Error), 0, "{:#?}", s.kinds);
    assert_eq!(s.outcome(Outcome::Unfinished), 0);
    assert!(
        s.outcome(Outcome::Token) > DEVICES / 3,
        "{:#?}",
        s.behaviours
    );
    let host = |p: &ServerProcess| s.hosts[&p.addr().to_string()];
    let (a_sent, a_answered) = host(a);
    assert!(
        a_sent > DEVICES && a_answered == a_sent,
        "survivor: {a_sent} sent, {a_answered} answered"
    );
    // It answered until it died, and not after.
    let (b_sent, b_answered) = host(b);
    assert!(
        b_answered > 0 && b_answered < b_sent,
        "killed after {killed_at:?}: {b_sent} sent to it, {b_answered} answered"
    );
    eprintln!(
        "killed after {killed_at:?}; survivor {a_answered}/{a_sent} answered, killed {b_answered}/{b_sent}; \
         outcomes: token {}, expired {}, denied {}, unreached {}",
        s.outcome(Outcome::Token),
        s.outcome(Outcome::Expired),
        s.outcome(Outcome::Denied),
        s.outcome(Outcome::Unreached)
    );
}
