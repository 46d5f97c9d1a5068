//! A smoke run: a small fleet of every behaviour, for a few seconds, against our
//! server on loopback, through goose, with the admin endpoint playing the people.
//! Checks what the fleet measured, not only that it ran, and that every count
//! matches the server's own /metrics.

mod common;

use std::time::Duration;

use deviceflow_conformance::{Approver, Client};
use deviceflow_loadgen::device::flow::Kind;
use deviceflow_loadgen::device::flow::Outcome;
use deviceflow_loadgen::device::People;
use deviceflow_loadgen::fleet::{Expectations, FleetConfig};
use deviceflow_loadgen::measure::stats::RunStats;
use deviceflow_loadgen::report::results::{RunData, Setup};
use deviceflow_loadgen::{runner, Behaviour, Mix};
use goose::config::GooseConfiguration;

use common::{report_dir, Server, ADMIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_fleet_of_every_behaviour_runs_is_measured_and_reconciles_with_metrics() {
    let server = Server::start("expires_in = 8\ninterval = 1\npoll_tolerance_ms = 200", "");
    let run = run_fleet(small_fleet(&server.base), &server.base).await;

    assert_a_whole_run_that_reconciles(&run);
    assert_the_report_is_written(&run);
}

/// The same fleet on one connection per lane, its requests pipelined up to 8 at a
/// time (RFC 9112 §9.3.2): every answer goes to its own device, in order, and every
/// count still matches the server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_fleet_gets_every_answer_to_its_own_device_and_reconciles() {
    let server = Server::start("expires_in = 8\ninterval = 1\npoll_tolerance_ms = 200", "");
    let mut config = small_fleet(&server.base);
    // All 40 start within 40 ms, so each lane has several requests due in one tick.
    config.hatch_rate = 1000.0;
    config.lanes = 2;
    config.connections = 2;
    config.pipeline = 8;
    let run = run_fleet(config, &server.base).await;

    assert_a_whole_run_that_reconciles(&run);
    let s = &run.stats;
    let sent: u64 = s.kinds.values().map(|k| k.sent).sum();
    assert!(
        s.batches < sent && s.connections_opened <= 4,
        "{sent} requests in {} writes on {} connections",
        s.batches,
        s.connections_opened
    );
    assert!(run
        .generator_verdict()
        .contains("pipelined, up to 8 on a connection"));
}

/// Runs `config` through goose against `base`.
async fn run_fleet(config: FleetConfig, base: &str) -> RunData {
    let setup = Setup::new(
        "smoke test".into(),
        vec![base.to_owned()],
        &config,
        "tv",
        0.0,
    );
    // goose's controllers are turned off by the runner (`attack::run`): the two tests
    // of this file run side by side, and would both want their default ports.
    runner::run(config, GooseConfiguration::default(), setup, Duration::ZERO)
        .await
        .unwrap()
}

/// All 40 devices ran to an end their behaviour allows, nothing broke a rule or went
/// unanswered, and every count matches the server's own /metrics.
fn assert_a_whole_run_that_reconciles(run: &RunData) {
    let s = &run.stats;
    assert_eq!(s.devices(), 40);
    assert_eq!(s.outcome(Outcome::Unfinished), 0, "{:#?}", s.behaviours);
    assert_eq!(s.outcome(Outcome::Error), 0, "{:#?}", s.kinds);
    assert_eq!(s.violations_total(), 0, "{:#?}", s.violations);
    assert_eq!(s.transport_errors(), 0);
    assert!(run.untrusted_reason().is_none());
    assert_each_behaviour_gets_its_answers(s);
    // Counts add up: every poll sent was answered, and the server counted each one.
    let polls = &s.kinds[&Kind::Poll];
    assert!(
        polls.sent > 40 && polls.sent == polls.answered,
        "{polls:#?}"
    );
    let rows = deviceflow_loadgen::measure::scrape::reconcile(
        run.metrics.as_ref().expect("our server has /metrics"),
        s,
    );
    assert!(rows.len() >= 8, "{rows:#?}");
    for row in &rows {
        assert!(row.matches(), "{row:#?}");
    }
    // Only the series reconciled are kept (the server's other series, its process
    // metrics, had been copied into run.json twice).
    let w = run.metrics.as_ref().unwrap();
    let kept: Vec<&String> = w.before.0.keys().chain(w.after.0.keys()).collect();
    assert!(
        kept.iter().all(
            |k| k.starts_with("deviceflow_http_request_duration_seconds_count")
                || k.starts_with("deviceflow_device_authorizations_total")
                || k.starts_with("deviceflow_token_polls_total")
                || k.starts_with("deviceflow_decisions_total")
        ),
        "{kept:#?}"
    );
}

/// 40 devices of every behaviour against `base`, started within a second; alice
/// approves every one that asks after 1.5 to 2.5 s.
fn small_fleet(base: &str) -> FleetConfig {
    let mut config = FleetConfig::new(
        &[base.to_owned()],
        &format!("{base}/oauth/device_authorization"),
        &format!("{base}/oauth/token"),
        &Client::public("tv"),
        None,
        Approver::admin(format!("{base}/admin/decisions"), ADMIN, "alice"),
    )
    .unwrap();
    config.devices = 40;
    config.hatch_rate = 40.0;
    config.mix = "compliant=40,jittery=20,eager=15,deaf=15,abandoned=10"
        .parse::<Mix>()
        .unwrap();
    config.people = People {
        approve_delay_ms: (1500, 2500),
        deny_pct: 0,
        never_pct: 0,
    };
    config.expect = Expectations {
        expires_in: Some(8),
        interval: Some(1),
    };
    config
}

/// Each behaviour meets the answers RFC 8628 gives it, on time.
fn assert_each_behaviour_gets_its_answers(s: &RunStats) {
    let by = |b: Behaviour| &s.behaviours[&b];
    // Our server never slows down a compliant device (checklist PL-02).
    assert_eq!(by(Behaviour::Compliant).slow_downs, 0);
    // Nobody approves abandoned devices: each runs to expired_token, on time.
    let abandoned = by(Behaviour::Abandoned);
    assert_eq!(abandoned.outcome(Outcome::Expired), abandoned.devices);
    let lateness = abandoned.expiry_lateness_ms.max().unwrap();
    assert!(
        lateness <= 2500,
        "expired_token {lateness} ms after expires_in"
    );
    // Approved devices get their token, soon after the approval.
    let compliant = by(Behaviour::Compliant);
    assert_eq!(compliant.outcome(Outcome::Token), compliant.devices);
    assert!(compliant.time_to_token_ms.max().unwrap() <= 2500);
    // Eager devices poll early and are slowed down; deaf ones are told to wait longer.
    let eager = by(Behaviour::Eager);
    assert!(
        eager.early_polls > 0 && eager.early_polls_slowed > 0,
        "{eager:#?}"
    );
    let deaf = by(Behaviour::Deaf);
    assert!(
        deaf.slow_downs > 0 && deaf.max_required_interval_s > 1,
        "{deaf:#?}"
    );
}

/// The report folder holds a self-contained page, run.json and summary.md.
fn assert_the_report_is_written(run: &RunData) {
    let dir = report_dir("smoke");
    deviceflow_loadgen::report::write(run, &dir).unwrap();
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("http://cdn") && !html.contains("<script src"));
    assert!(html.contains("Reconciliation with the server"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["schema"], "deviceflow-loadgen/4");
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("| compliant |"), "{summary}");
    // The series names are plain text in the table: a code span's backticks, escaped
    // with the rest of the cell, showed as literal characters.
    assert!(
        summary.contains("| deviceflow\\_token\\_polls\\_total"),
        "{summary}"
    );
    assert!(!summary.contains("\\`"), "{summary}");
    std::fs::remove_dir_all(dir).unwrap();
}
