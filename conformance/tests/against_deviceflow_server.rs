//! The suite against our own server, in full, with the admin approver: every MUST and
//! SHOULD case passes, and the results match the committed baseline
//! (`expected/deviceflow-server.tsv`, one `ID<TAB>status` line per case, no timings),
//! so any change in what the server does, or in what the suite checks, shows as a diff.
//! Regenerate with `DEVICEFLOW_UPDATE_EXPECTED=1 cargo test -p deviceflow-conformance
//! --test against_deviceflow_server` and review the diff.
//!
//! The same suite runs against the server on the in-memory store and on Redis (a real
//! `redis-server` of the test's own): both must match the one baseline, case by case.

use std::sync::Arc;
use std::time::Duration;

use deviceflow_conformance::case::Status;
use deviceflow_conformance::{resolve, Approver, Client, Options, Selection, TargetSpec};
use deviceflow_server::config::sha256_hex;
use deviceflow_server::{App, Clock, FileConfig, RedisStore, Settings, Store};
use deviceflow_testkit::RedisServer;

const ADMIN: &str = "conformance-admin-token-0123";

fn config() -> String {
    format!(
        r#"
        [device]
        expires_in = 20
        interval = 1
        poll_tolerance_ms = 500
        [admin]
        token = "{ADMIN}"
        [[clients]]
        client_id = "tv"
        scopes = ["openid", "profile"]
        [[clients]]
        client_id = "conf"
        secret_sha256 = "{}"
        scopes = ["openid", "profile"]
        [[clients]]
        client_id = "backend"
        scopes = ["openid"]
        grant_types = ["refresh_token"]
        [[users]]
        username = "alice"
        "#,
        sha256_hex("conf-secret")
    )
}

fn settings() -> Settings {
    Settings::from_file(FileConfig::parse(&config(), "test").unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_server_passes_every_must_and_should_and_matches_the_baseline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = App::new(settings(), base.clone(), Clock::System);
    suite_matches_the_baseline(listener, app, "the in-memory store").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_server_on_redis_gives_the_same_results() {
    let redis = RedisServer::start().expect("starting redis-server");
    let store = RedisStore::connect(&redis.url(), &settings().store_settings())
        .await
        .expect("connecting to the test's Redis");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = App::with_store(settings(), base.clone(), Clock::System, store);
    suite_matches_the_baseline(listener, app, "Redis").await;
}

/// Serves `app` on `listener`, runs the whole suite against it, and checks every
/// result against the committed baseline.
async fn suite_matches_the_baseline<S: Store>(
    listener: tokio::net::TcpListener,
    app: App<S>,
    store: &str,
) {
    let base = app.issuer.clone();
    tokio::spawn(deviceflow_server::serve(
        listener,
        Arc::new(app),
        std::future::pending(),
    ));

    let options = Options {
        max_wait: Duration::from_secs(40),
        soak: true,
        samples: 100,
        ..Options::default()
    };
    let spec = TargetSpec {
        issuer: Some(base.clone()),
        client: Some(Client::public("tv")),
        second_client: Some(Client::parse("conf:conf-secret").unwrap()),
        unauthorized_client: Some(Client::public("backend")),
        introspection_client: Some(Client::parse("conf:conf-secret").unwrap()),
        scope: Some("openid profile".into()),
        ..TargetSpec::default()
    };
    let http =
        deviceflow_conformance::http::Http::new(options.request_timeout, spec.reach(false).await);
    let target = resolve(spec, &http).await.unwrap();
    let approver = Approver::admin(format!("{base}/admin/decisions"), ADMIN, "alice");
    let report =
        deviceflow_conformance::run(target, approver, options, &Selection::default(), true).await;

    let bad: Vec<String> = report
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

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/expected/deviceflow-server.tsv"
    );
    let got = report.baseline();
    if std::env::var_os("DEVICEFLOW_UPDATE_EXPECTED").is_some() && store != "Redis" {
        std::fs::write(path, &got).unwrap();
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    let diff: Vec<String> = diff_lines(&want, &got);
    assert!(
        diff.is_empty(),
        "on {store}, results differ from {path}:\n{}\nfailures and warnings:\n{}",
        diff.join("\n"),
        bad.join("\n")
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert_eq!(report.exit_code(), 0);
}

fn diff_lines(want: &str, got: &str) -> Vec<String> {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let mut out: Vec<String> = w
        .iter()
        .filter(|l| !g.contains(l))
        .map(|l| format!("- {l}"))
        .collect();
    out.extend(
        g.iter()
            .filter(|l| !w.contains(l))
            .map(|l| format!("+ {l}")),
    );
    out
}
