//! A smoke run: a small fleet of every behaviour, for a few seconds, against our
//! server on loopback, through goose, with the admin endpoint playing the people.
//! Checks what the fleet measured, not only that it ran.

use std::sync::Arc;
use std::time::Duration;

use deviceflow_conformance::{Approver, Client};
use deviceflow_loadgen::device::People;
use deviceflow_loadgen::fleet::{self, Expectations, Fleet};
use deviceflow_loadgen::results::{self, Setup};
use deviceflow_loadgen::{render, Behaviour, Mix};
use deviceflow_server::{App, Clock, FileConfig, Settings};
use goose::config::GooseConfiguration;

const ADMIN: &str = "loadgen-smoke-admin-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_fleet_of_every_behaviour_runs_and_is_measured() {
    let config = format!(
        "[device]\nexpires_in = 8\ninterval = 1\npoll_tolerance_ms = 200\n[admin]\ntoken = \"{ADMIN}\"\n[[clients]]\nclient_id = \"tv\"\n[[users]]\nusername = \"alice\"\n"
    );
    let settings = Settings::from_file(FileConfig::parse(&config, "smoke").unwrap()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Arc::new(App::new(settings, base.clone(), Clock::System));
    tokio::spawn(deviceflow_server::serve(
        listener,
        app,
        std::future::pending(),
    ));

    let mix: Mix = "compliant=40,jittery=20,eager=15,deaf=15,abandoned=10"
        .parse()
        .unwrap();
    let people = People {
        approve_delay_ms: (1500, 2500),
        deny_pct: 0,
        never_pct: 0,
    };
    let fleet = Arc::new(Fleet::new(
        format!("{base}/oauth/device_authorization"),
        format!("{base}/oauth/token"),
        Client::public("tv"),
        None,
        Approver::admin(format!("{base}/admin/decisions"), ADMIN, "alice"),
        people.clone(),
        Expectations {
            expires_in: Some(8),
            interval: Some(1),
        },
        true,
        Duration::from_secs(120),
    ));
    let mut goose = GooseConfiguration::default();
    goose.users = Some(40);
    goose.increase_rate = Some("40".into());
    goose.quiet = 1;
    goose.no_print_metrics = true;
    let metrics = fleet::run(Arc::clone(&fleet), &mix, goose, &base, Duration::ZERO)
        .await
        .unwrap();
    let setup = Setup {
        command: "smoke test".into(),
        commit: "test".into(),
        cpu: "test".into(),
        started_at_unix: 0,
        device_authorization_endpoint: fleet.device_authorization_endpoint.clone(),
        token_endpoint: fleet.token_endpoint.clone(),
        client_id: "tv".into(),
        devices: 40,
        mix: mix.0.clone(),
        people,
        expect: Expectations::default(),
        approver: "admin".into(),
    };
    let run = results::compute(
        setup,
        &fleet.records(),
        &fleet.timeline,
        &metrics,
        fleet.start.elapsed().as_secs_f64(),
    );

    assert_eq!(run.devices, 40);
    assert_eq!(run.outcomes["unfinished"], 0, "{:#?}", run.outcomes);
    assert_eq!(run.outcomes["error"], 0, "{:#?}", run.behaviours);
    assert_eq!(run.violations_total, 0, "{:#?}", run.violations);
    // Our server never slows down a compliant device (checklist PL-02).
    assert_eq!(run.compliant_slow_downs, 0);
    let by = |b: Behaviour| run.behaviours.iter().find(|r| r.behaviour == b).unwrap();
    // Nobody approves abandoned devices: each runs to expired_token, on time.
    let abandoned = by(Behaviour::Abandoned);
    assert_eq!(abandoned.outcomes["expired"], abandoned.devices);
    let lateness = abandoned.expiry_lateness_ms.max.unwrap();
    assert!(
        (0.0..=2500.0).contains(&lateness),
        "expired_token {lateness} ms after expires_in"
    );
    // Approved devices get their token, soon after the approval.
    assert_eq!(
        by(Behaviour::Compliant).outcomes["token"],
        by(Behaviour::Compliant).devices
    );
    assert!(by(Behaviour::Compliant).time_to_token_ms.max.unwrap() <= 2500.0);
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
    // goose saw every request, expected 400s counted as successes.
    let polls = run
        .requests
        .iter()
        .find(|q| q.name.contains("token_poll"))
        .expect("token_poll in goose's metrics");
    assert!(polls.count > 40 && polls.fail == 0, "{polls:#?}");

    let dir = std::env::temp_dir().join(format!("deviceflow-loadgen-smoke-{}", std::process::id()));
    render::write(&run, &dir).unwrap();
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("http://cdn") && !html.contains("<script src"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["schema"], "deviceflow-loadgen/1");
    assert!(std::fs::read_to_string(dir.join("summary.md"))
        .unwrap()
        .contains("| compliant |"));
    std::fs::remove_dir_all(dir).unwrap();
}
