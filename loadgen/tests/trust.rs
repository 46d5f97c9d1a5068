//! Trust first: what the generator counts is what happened. A server killed mid-run
//! gives transport errors by cause, never polls or violations, and a non-zero exit
//! with a one-line reason; thresholds are judged after the whole report is written.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{read_run, report_dir, Server};

fn loadgen(base: &str, extra: &[&str], dir: &std::path::Path) -> Command {
    let mut c = common::loadgen(&[base], dir);
    c.args(extra);
    c
}

#[test]
fn a_server_killed_mid_run_gives_transport_errors_not_violations_and_exit_3() {
    let mut server = Server::start("expires_in = 60\ninterval = 1", "");
    let dir = report_dir("killed");
    let child = loadgen(
        &server.base,
        &[
            "-u",
            "100",
            "-r",
            "100",
            "-t",
            "8s",
            "--decide-after",
            "30..30",
            "--expect-interval",
            "1",
        ],
        &dir,
    )
    .spawn()
    .unwrap();
    // Mid-run: once the devices poll (the server has counted polls), however slow
    // the machine; the rest of the 8 s run finds it gone.
    let polling = common::wait_until(Duration::from_secs(30), || {
        common::metric(&server.base, "deviceflow_token_polls_total").is_some_and(|n| n > 0.0)
    });
    server.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(polling, "no poll within 30 s: {stderr}");
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let reason = stderr
        .lines()
        .find(|l| l.contains("run not trusted"))
        .unwrap_or_else(|| panic!("no reason line: {stderr}"));
    assert!(reason.contains("connection refused"), "{reason}");
    // Refused connections never reached the server: not its failure.
    assert!(
        reason.contains("never reached it") || reason.contains("could not reach the server"),
        "{reason}"
    );
    assert!(
        !stderr.contains("Error {") && !stderr.contains("Os {"),
        "a debug dump: {stderr}"
    );

    let run = read_run::<serde_json::Value>(&dir);
    let stats = &run["stats"];
    assert_eq!(
        stats["violations"],
        serde_json::json!({}),
        "{}",
        stats["violations"]
    );
    assert_failed_sends_are_not_polls(stats);
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("NOT TRUSTED") && summary.contains("connection refused"),
        "{summary}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_threshold_writes_the_report_then_prints_the_verdict_and_exits_1() {
    let server = Server::start("expires_in = 4\ninterval = 1", "");
    let dir = report_dir("threshold");
    let out = loadgen(
        &server.base,
        &[
            "-u",
            "20",
            "-r",
            "20",
            "--decide-after",
            "1..2",
            "--threshold",
            "p99<1us for token_poll",
            "--threshold",
            "error-rate<1%",
        ],
        &dir,
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdict = stdout
        .split("thresholds\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        verdict.contains("✗ p99<1us for token_poll") && verdict.contains("missed by"),
        "{verdict}"
    );
    assert!(verdict.contains("✓ error-rate<1%"), "{verdict}");
    assert!(verdict.contains("1 of 2 thresholds failed"), "{verdict}");
    // The report came first, whole.
    assert!(stdout.find("report: ").unwrap() < stdout.find("thresholds\n").unwrap());
    assert!(std::fs::metadata(dir.join("index.html")).unwrap().len() > 1000);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Some polls failed to reach the server, and none of them counts as a poll: every
/// sent poll is answered or a transport error, and the answers by kind and by
/// behaviour add up to the answered ones.
fn assert_failed_sends_are_not_polls(stats: &serde_json::Value) {
    let poll = &stats["kinds"]["poll"];
    let refused = poll["transport"][0].as_u64().unwrap();
    assert!(refused > 0, "{poll}");
    let sent = poll["sent"].as_u64().unwrap();
    let answered = poll["answered"].as_u64().unwrap();
    let failed: u64 = poll["transport"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(sent, answered + failed);
    let by_answer: u64 = stats["timeline"]["seconds"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["answers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
        })
        .sum();
    assert_eq!(by_answer, answered);
    let polls_by_behaviour: u64 = stats["behaviours"]
        .as_object()
        .unwrap()
        .values()
        .map(|b| b["polls"].as_u64().unwrap())
        .sum();
    assert_eq!(polls_by_behaviour, answered);
}
