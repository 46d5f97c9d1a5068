//! Our server for the loadgen tests: on 127.0.0.1:0, in a runtime of its own on a
//! thread of its own, so a test can kill it mid-run (its listener and every
//! connection close at once, as when the process dies).

// Each test binary compiles this module and uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deviceflow_server::{App, Clock, FileConfig, Settings};

pub const ADMIN: &str = "loadgen-test-admin-token";

pub struct Server {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// `device` is the `[device]` table's body; `extra` more TOML (other tables).
    pub fn start(device: &str, extra: &str) -> Server {
        Server::start_on(&["127.0.0.1:0"], device, extra).remove(0)
    }

    /// One server (one state) listening on each of `addrs`, as instances sharing a
    /// store would: a `Server` per address, all killed with the first.
    pub fn start_on(addrs: &[&str], device: &str, extra: &str) -> Vec<Server> {
        Server::start_as(addrs, None, device, extra)
    }

    /// As [`Server::start_on`], the issuer (what the metadata advertises) `issuer`
    /// when given, as for a server behind a TLS terminator; else its first address.
    pub fn start_as(
        addrs: &[&str],
        issuer: Option<&str>,
        device: &str,
        extra: &str,
    ) -> Vec<Server> {
        let config = format!(
            "[device]\n{device}\n[quotas]\nper_source_rate = 0\nper_client_rate = 0\n[admin]\ntoken = \"{ADMIN}\"\n{extra}\n[[clients]]\nclient_id = \"tv\"\n[[users]]\nusername = \"alice\"\n"
        );
        let settings = Settings::from_file(FileConfig::parse(&config, "test").unwrap()).unwrap();
        let (tx, rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let addrs: Vec<String> = addrs.iter().map(|a| (*a).to_owned()).collect();
        let issuer = issuer.map(str::to_owned);
        let n = addrs.len();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut listeners = Vec::new();
                for a in &addrs {
                    listeners.push(tokio::net::TcpListener::bind(a.as_str()).await.unwrap());
                }
                let issuer = issuer
                    .unwrap_or_else(|| format!("http://{}", listeners[0].local_addr().unwrap()));
                let app = Arc::new(App::new(settings, issuer, Clock::System));
                for l in listeners {
                    tx.send(format!("http://{}", l.local_addr().unwrap()))
                        .unwrap();
                    tokio::spawn(deviceflow_server::serve(
                        l,
                        Arc::clone(&app),
                        std::future::pending(),
                    ));
                }
                let _ = stopped.await;
            });
            // Dropping the runtime drops the listener and every connection task.
            rt.shutdown_background();
        });
        let mut servers = vec![Server {
            base: rx.recv().unwrap(),
            stop: Some(stop),
            thread: Some(thread),
        }];
        for _ in 1..n {
            servers.push(Server {
                base: rx.recv().unwrap(),
                stop: None,
                thread: None,
            });
        }
        servers
    }

    /// Kills the server: the listener and all its connections close now.
    pub fn kill(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A temporary report folder for this test.
pub fn report_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("deviceflow-loadgen-{name}-{}", std::process::id()))
}

/// The `deviceflow-loadgen` binary against `hosts` as these tests drive it: client `tv`,
/// people deciding through the admin endpoint as `alice`, no progress lines, its run
/// written under `dir`, its output captured. Callers add the fleet's own arguments.
pub fn loadgen(hosts: &[&str], dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deviceflow-loadgen"));
    for h in hosts {
        c.args(["--host", h]);
    }
    c.args([
        "--client-id",
        "tv",
        "--admin-token",
        ADMIN,
        "--admin-user",
        "alice",
        "--progress-every",
        "0",
    ])
    .arg("--report-dir")
    .arg(dir)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

/// A run's `run.json` under `dir`, read as whatever `T` the test looks at it as (the
/// typed `RunData`, or a `serde_json::Value` to see the schema's own names).
pub fn read_run<T: serde::de::DeserializeOwned>(dir: &Path) -> T {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

/// The sum of every series of metric `name`, whatever its labels, on the /metrics of
/// the server at `base`; `None` when it cannot be scraped (not up, or gone).
pub fn metric(base: &str, name: &str) -> Option<f64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let target = deviceflow_loadgen::transport::target_of(base).unwrap();
    let now = rt
        .block_on(deviceflow_loadgen::measure::scrape::scrape(
            &[target],
            std::time::Duration::from_secs(10),
        ))
        .ok()?;
    let labelled = format!("{name}{{");
    Some(
        now.0
            .iter()
            .filter(|(series, _)| *series == name || series.starts_with(&labelled))
            .map(|(_, v)| v)
            .sum(),
    )
}

/// Waits until the server at `base` has issued a code (its /metrics), for at most
/// `within`: whether it did. The generator's checks before the run are then behind it,
/// and its scrape before the run done (it comes before any device starts).
pub fn wait_for_a_code(base: &str, within: Duration) -> bool {
    wait_until(within, || {
        metric(base, "deviceflow_device_authorizations_total").is_some_and(|n| n > 0.0)
    })
}

/// A run against `base` that would last ten minutes, nobody deciding for 30 s, started
/// and waited for until the server has issued its first code (at most 60 s): the child,
/// and whether the run got under way. For tests that stop a run in its middle.
pub fn start_a_long_run(base: &str, dir: &Path) -> (std::process::Child, bool) {
    let child = loadgen(&[base], dir)
        .args([
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "600",
            "--decide-after",
            "30..30",
        ])
        .spawn()
        .unwrap();
    (child, wait_for_a_code(base, Duration::from_secs(60)))
}

/// Waits until `ready` holds, asking every 50 ms, for at most `within`: whether it
/// came to hold. For a test that must act (kill a server, say) once something has
/// happened, however slow or busy the machine, and still end by itself when it never
/// does.
pub fn wait_until(within: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends signal `name` (`TERM`, `INT`) to `child`, by its PID.
pub fn signal(child: &std::process::Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// The child's output once it ends, or a panic (the child killed) past `limit`.
pub fn output_within(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let started = Instant::now();
    while started.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!(
        "still running {limit:?} after the signal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
