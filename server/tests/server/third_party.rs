//! Device-flow clients of two more ecosystems, nobody's here, installed from their
//! registries by `scripts/install-test-deps.sh`: openid-client (npm,
//! server/tests/interop/node) and Authlib (PyPI, server/tests/interop/python). Each
//! registers its app through RFC 7591 (openid-client with its own
//! `dynamicClientRegistration`; Authlib has no client for it, so a plain POST), runs a
//! device flow against a release build of the server, approved through the admin
//! endpoint, and refreshes its token. The server runs on the system clock with a 1 s
//! interval; each client waits in real time, briefly.
//!
//! A failure prints the client's whole exchange with the server, to tell whether the
//! server or the client is at fault.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use deviceflow_testkit::{cargo_release_bin, ServerProcess};
use serde_json::Value;

use crate::common::*;

const INTEROP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");

/// A release build of the server, with registration on, polled every second.
struct Release {
    server: ServerProcess,
    dir: std::path::PathBuf,
}

impl Release {
    fn start(name: &str) -> Release {
        let bin = cargo_release_bin("deviceflow-server", "deviceflow-server");
        let dir = std::env::temp_dir().join(format!("deviceflow-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("server.toml");
        let toml = registration_config();
        assert!(toml.contains("interval = 5\n"));
        std::fs::write(&config, toml.replace("interval = 5\n", "interval = 1\n")).unwrap();
        let server = ServerProcess::start(
            bin,
            &[
                "--config",
                config.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--quiet",
            ],
        )
        .unwrap();
        Release { server, dir }
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a client script: reads its user code, approves it as alice through the admin
/// endpoint, and returns its report (the last line), which must say `ok`.
async fn run_client(mut cmd: Command, server: &Release) -> Value {
    let api = Client::new(server.server.base());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = |rx: mpsc::Receiver<String>| async move {
        tokio::task::spawn_blocking(move || (rx.recv_timeout(Duration::from_secs(60)), rx))
            .await
            .unwrap()
    };
    let (first, rx) = next(rx).await;
    let first: Value = serde_json::from_str(&first.expect("the client printed nothing"))
        .expect("the client's first line is JSON");
    let Some(user_code) = first["user_code"].as_str() else {
        let _ = child.kill();
        let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap_or_default();
        panic!(
            "the client did not get to a user code: {first:#}\n{stderr}\nserver log:\n{}",
            server.server.log()
        );
    };
    let approved = api.decide(user_code, "approve", "alice").await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    let (last, _) = next(rx).await;
    let status = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let report: Value = serde_json::from_str(&last.expect("the client printed no outcome"))
        .expect("the client's outcome is JSON");
    assert!(
        status.status.success() && report["ok"] == true,
        "{report:#}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&status.stderr),
        server.server.log()
    );
    assert_eq!(report["client_id"], first["client_id"]);
    report
}

/// What every client must have got: the scope asked for, a rotated refresh token, and
/// an access token the server vouches for, issued to the client it registered.
async fn assert_flow_completed(report: &Value, server: &Release) {
    assert_eq!(report["scope"], "openid tv", "{report:#}");
    assert_eq!(report["refreshed_scope"], "openid tv", "{report:#}");
    assert_eq!(report["refresh_rotated"], true, "{report:#}");
    let api = Client::new(server.server.base());
    let token = report["access_token"].as_str().unwrap();
    let a = api
        .post_with(
            INTROSPECT,
            &format!("token={token}"),
            &[("authorization", &basic("conf", CONF_SECRET))],
        )
        .await;
    assert_eq!(a.json()["active"], true, "{:?}", a.body);
    assert_eq!(a.json()["client_id"], report["client_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_registers_runs_a_device_flow_and_refreshes() {
    let dir = Path::new(INTEROP).join("node");
    assert!(
        dir.join("node_modules/openid-client").is_dir(),
        "openid-client is not installed in {}: run scripts/install-test-deps.sh (from the repository root) first",
        dir.display()
    );
    let server = Release::start("openid-client");
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("device_flow.mjs"))
        .arg(server.server.base())
        .arg(INITIAL_TOKEN);
    let report = run_client(cmd, &server).await;
    assert_flow_completed(&report, &server).await;
    assert!(report["polls"].as_u64().unwrap() >= 1, "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_registers_runs_a_device_flow_and_refreshes() {
    let dir = Path::new(INTEROP).join("python");
    let python = dir.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "Authlib is not installed in {}: run scripts/install-test-deps.sh (from the repository root) first",
        dir.join(".venv").display()
    );
    let server = Release::start("authlib");
    let mut cmd = Command::new(python);
    cmd.arg(dir.join("device_flow.py"))
        .arg(server.server.base())
        .arg(INITIAL_TOKEN)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let report = run_client(cmd, &server).await;
    assert_flow_completed(&report, &server).await;
    // RFC 8628 §3.5: a compliant client is never slowed down.
    assert_eq!(report["slow_downs"], 0, "{report:#}");
}
