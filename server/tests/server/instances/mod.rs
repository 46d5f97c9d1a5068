//! Several `deviceflow-server` processes over one store (issue 11): the binary, real
//! processes on loopback ports, and a real `redis-server` (or a three-master cluster)
//! of each test's own, from `deviceflow-testkit`. What one instance issues, another
//! must poll, approve, redeem exactly once, introspect and refresh; a restart or a
//! Redis outage must lose nothing that was stored; an instance's death must not stop
//! a fleet. These run on the system clock with a 1 s interval, so they wait in real
//! time, briefly.

mod outage;
mod registered;
mod restart;
mod sentinel;
mod sharing;
mod store_faults;
mod store_url;

use std::path::PathBuf;
use std::time::Duration;

use deviceflow_testkit::{free_port, RedisServer, ServerProcess};
use serde_json::Value;

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_deviceflow-server");

/// [`test_config`] on `store` (`memory`, `redis://…`, `redis+cluster://…`,
/// `redis+sentinel://…`), polled
/// every second: the configuration every instance of a test shares.
pub fn config(store: &str) -> String {
    let config = test_config();
    assert!(config.contains("interval = 5\n"));
    format!(
        "store = \"{store}\"\n{}",
        config.replace("interval = 5\n", "interval = 1\n")
    )
}

/// `n` instances of the server, all on one configuration file, each on a loopback
/// port of its own that it keeps across [`Instances::stop_all`] and
/// [`Instances::start_all`], all with the first one's address as their issuer (as
/// behind one load balancer).
pub struct Instances {
    dir: PathBuf,
    ports: Vec<u16>,
    procs: Vec<Option<ServerProcess>>,
    clients: Vec<Client>,
    extra: Vec<String>,
    /// Environment variables every instance gets.
    env: Vec<(String, std::ffi::OsString)>,
}

impl Instances {
    /// `n` instances on the configuration `toml`.
    pub fn start(n: usize, toml: &str) -> Instances {
        Self::start_with(n, toml, &[])
    }

    /// `n` instances on `toml` with more flags (`--store URL`, say).
    pub fn start_with(n: usize, toml: &str, extra: &[&str]) -> Instances {
        Self::start_with_env(n, toml, extra, &[])
    }

    /// [`start_with`](Self::start_with), each instance with `env` set too.
    pub fn start_with_env(
        n: usize,
        toml: &str,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Instances {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "deviceflow-instances-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("server.toml"), toml).unwrap();
        let ports: Vec<u16> = (0..n).map(|_| free_port().unwrap()).collect();
        let clients = ports
            .iter()
            .map(|p| Client {
                base: format!("http://127.0.0.1:{p}"),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .build()
                    .unwrap(),
            })
            .collect();
        let mut instances = Instances {
            dir,
            ports,
            procs: (0..n).map(|_| None).collect(),
            clients,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        // Each instance's port was free when drawn, but another test may take it before
        // the instance binds it: at this first start, such an instance gets another
        // port (in order, so the issuer, the first instance's address, is settled
        // before any other starts). Restarts keep their ports.
        for i in 0..n {
            let mut tries = 0;
            instances.procs[i] = Some(loop {
                match instances.spawn(i) {
                    Ok(process) => break process,
                    Err(e) if e.contains("Address already in use") && tries < 5 => {
                        tries += 1;
                        instances.ports[i] = free_port().unwrap();
                        instances.clients[i].base =
                            format!("http://127.0.0.1:{}", instances.ports[i]);
                    }
                    Err(e) => panic!("{e}"),
                }
            });
        }
        instances
    }

    /// Replaces the configuration every instance reads when it next starts.
    pub fn rewrite_config(&self, toml: &str) {
        std::fs::write(self.dir.join("server.toml"), toml).unwrap();
    }

    /// Starts every instance that is not running, on its port.
    pub fn start_all(&mut self) {
        for i in 0..self.ports.len() {
            if self.procs[i].is_none() {
                self.procs[i] = Some(self.spawn(i).unwrap_or_else(|e| panic!("{e}")));
            }
        }
    }

    fn spawn(&self, i: usize) -> Result<ServerProcess, String> {
        let listen = format!("127.0.0.1:{}", self.ports[i]);
        let issuer = format!("http://127.0.0.1:{}", self.ports[0]);
        let config = self.dir.join("server.toml");
        let mut args: Vec<&str> = vec![
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &listen,
            "--issuer",
            &issuer,
            "--quiet",
        ];
        args.extend(self.extra.iter().map(String::as_str));
        let env: Vec<(&str, &std::ffi::OsStr)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_os_str()))
            .collect();
        ServerProcess::start_with_env(BIN, &args, &env)
            .map_err(|e| format!("instance {i} on {listen} did not start: {e}"))
    }

    /// What a test sends instance `i`.
    pub fn at(&self, i: usize) -> &Client {
        &self.clients[i]
    }

    pub fn len(&self) -> usize {
        self.ports.len()
    }

    /// SIGTERM to every instance; each must stop gracefully (exit status 0).
    pub fn stop_all(&mut self) {
        for i in 0..self.procs.len() {
            self.stop(i);
        }
    }

    /// SIGTERM to instance `i`, if it runs; it must stop gracefully (exit status 0).
    /// [`start_all`](Self::start_all) starts it again.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut p) = self.procs[i].take() {
            let status = p.terminate().unwrap();
            assert!(status.success(), "instance {i}: {status}\n{}", p.log());
        }
    }

    /// Every running instance's standard error, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.procs.iter().enumerate() {
            if let Some(p) = p {
                out.push_str(&format!("--- instance {i} ({})\n{}", p.base(), p.log()));
            }
        }
        out
    }
}

impl Drop for Instances {
    fn drop(&mut self) {
        // The processes die with their ServerProcess; the directory is ours.
        self.procs.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Client {
    /// RFC 7662 introspection of `token`, as the confidential client `conf`.
    pub async fn introspect(&self, token: &str) -> Value {
        let a = self
            .post_with(
                INTROSPECT,
                &format!("token={token}"),
                &[("authorization", &basic("conf", CONF_SECRET))],
            )
            .await;
        assert_eq!(a.status, 200, "introspection: {:?}", a.body);
        a.json()
    }

    /// A refresh grant (RFC 6749 §6) for the public client `tv`.
    pub async fn refresh(&self, refresh_token: &str) -> Answer {
        self.post(
            TOKEN,
            &format!("grant_type=refresh_token&client_id=tv&refresh_token={refresh_token}"),
        )
        .await
    }
}

/// Waits until `replica` has everything `primary` wrote so far. (`WAIT` would not do:
/// it waits only for the writes of the connection that sends it.)
pub fn caught_up(replica: &RedisServer, primary: &RedisServer) {
    let offset = |redis: &RedisServer, field: &str| -> u64 {
        let info = redis.info("replication").unwrap();
        info.lines()
            .find_map(|l| {
                l.strip_prefix(field)?
                    .strip_prefix(':')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {field} in {info}"))
    };
    let written = offset(primary, "master_repl_offset");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while offset(replica, "slave_repl_offset") < written {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never caught up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `deviceflow-server --store STORE check-config`: its exit status, standard output and
/// standard error.
pub fn check_config(store: &str) -> (Option<i32>, String, String) {
    check_config_with_env(store, &[])
}

/// [`check_config`] with `env` set too.
pub fn check_config_with_env(
    store: &str,
    env: &[(&str, &std::ffi::OsStr)],
) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(BIN)
        .args(["--store", store, "check-config"])
        .env_remove("DEVICEFLOW_CONFIG")
        .env_remove("DEVICEFLOW_STORE")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A token response: its access and refresh tokens.
#[track_caller]
pub fn tokens(a: &Answer) -> (String, String) {
    assert_eq!(a.status, 200, "expected tokens: {:?}", a.body);
    let v = a.json();
    (
        v["access_token"].as_str().expect("access_token").to_owned(),
        v["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned(),
    )
}

/// The answer of a poll of a code that must still be pending: `authorization_pending`,
/// or `slow_down` for a poll that came early (both mean "still pending",
/// RFC 8628 §3.5).
#[track_caller]
pub fn assert_still_pending(a: &Answer) {
    assert_eq!(a.status, 400, "{:?}", a.body);
    let e = a.error();
    assert!(
        e == "authorization_pending" || e == "slow_down",
        "a pending code answered {e}: {:?}",
        a.body
    );
}

/// 503 `temporarily_unavailable` with a `Retry-After` of whole seconds, at least 1
/// (RFC 6749 §5.2 by analogy with §4.1.2.1; RFC 9110 §10.2.3).
#[track_caller]
pub fn assert_unavailable(a: &Answer, what: &str) {
    assert_eq!(
        (a.status, a.error().as_str()),
        (503, "temporarily_unavailable"),
        "{what}: {:?}",
        String::from_utf8_lossy(&a.body)
    );
    let retry = a
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: no Retry-After"));
    let secs: u64 = retry
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After {retry:?} is not whole seconds"));
    assert!(secs >= 1, "{what}: Retry-After {secs}");
    assert_eq!(a.header("cache-control"), Some("no-store"), "{what}");
}

/// `/readyz` while the store cannot serve: 503, `unavailable`, with a `Retry-After`.
#[track_caller]
pub fn assert_not_ready(a: &Answer) {
    assert_eq!(
        (a.status, a.json()["status"].as_str()),
        (503, Some("unavailable")),
        "{:?}",
        String::from_utf8_lossy(&a.body)
    );
    assert_eq!(a.header("retry-after"), Some("2"));
}
