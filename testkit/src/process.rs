//! Processes the tests start: signals by PID, the `deviceflow-server` binary as a
//! process ([`ServerProcess`]), and the binaries of other workspace packages
//! ([`cargo_bin`], [`cargo_release_bin`]).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The signals the tests send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A graceful stop.
    Term,
    /// Death, with no chance to finish anything.
    Kill,
}

/// Sends `signal` to process `pid`, with kill(1): std cannot signal a process, and
/// the harness stays free of unsafe code and of crates.
pub fn signal(pid: u32, signal: Signal) -> io::Result<()> {
    let name = match signal {
        Signal::Term => "TERM",
        Signal::Kill => "KILL",
    };
    let out = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "kill -s {name} {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Waits for `child` to exit, for at most `within`; `None` if it is still running.
fn wait_within(child: &mut Child, within: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A watchdog for process `pid`: a small `sh` that SIGKILLs it once this test process
/// is gone. Drop runs only for values that are dropped: a Redis kept in a `static`
/// (shared by a test binary's tests) never is, and a test process killed by a timeout
/// drops nothing, and either way the process would outlive its owner. Kill the
/// watchdog (`Child::kill`) when `pid` is stopped the ordinary way.
pub(crate) fn watchdog(pid: u32) -> io::Result<Child> {
    Command::new("sh")
        .args([
            "-c",
            "while kill -0 \"$1\" 2>/dev/null; do sleep 0.2; done; kill -9 \"$2\" 2>/dev/null",
            "deviceflow-testkit-watchdog",
        ])
        .arg(std::process::id().to_string())
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// A [`watchdog`] for `child`; when none can be started, `child` is killed and reaped,
/// and the error returned.
fn watched(child: &mut Child) -> io::Result<Child> {
    watchdog(child.id()).inspect_err(|_| {
        let _ = child.kill();
        let _ = child.wait();
    })
}

/// Stops a watchdog of [`watchdog`]: its process is done with.
pub(crate) fn call_off(watchdog: Option<Child>) {
    if let Some(mut w) = watchdog {
        let _ = w.kill();
        let _ = w.wait();
    }
}

/// SIGTERM, then SIGKILL if `child` has not exited after `grace`; its exit status.
pub(crate) fn stop_child(child: &mut Child, grace: Duration) -> io::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    signal(child.id(), Signal::Term)?;
    if let Some(status) = wait_within(child, grace)? {
        return Ok(status);
    }
    child.kill()?;
    child.wait()
}

/// A running `deviceflow-server`, started with the arguments a test gives it. Its
/// standard error is collected (see [`ServerProcess::log`]); it is killed when
/// dropped.
pub struct ServerProcess {
    child: Child,
    /// Kills the server if this process dies without dropping it.
    watchdog: Option<Child>,
    addr: SocketAddr,
    issuer: String,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

/// How long a server may take to say it is listening.
const START_WITHIN: Duration = Duration::from_secs(30);

impl ServerProcess {
    /// Starts `bin` with `args` and waits for its "listening on ADDR (issuer URL)"
    /// line. The environment's `DEVICEFLOW_*` variables are removed, so only `args`
    /// configure it; `args` must make it listen on a loopback port (`--listen
    /// 127.0.0.1:0`, or a config file that says so).
    pub fn start<S: AsRef<OsStr>>(bin: impl AsRef<OsStr>, args: &[S]) -> io::Result<Self> {
        Self::start_with_env(bin, args, &[])
    }

    /// [`start`](Self::start) with `env` set too (`SSL_CERT_FILE`, say).
    pub fn start_with_env<S: AsRef<OsStr>>(
        bin: impl AsRef<OsStr>,
        args: &[S],
        env: &[(&str, &OsStr)],
    ) -> io::Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.args(args);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("DEVICEFLOW_") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(env.iter().copied());
        Self::spawn(cmd)
    }

    /// Starts `cmd` as it is (its environment included) and waits for the line.
    pub fn spawn(cmd: Command) -> io::Result<Self> {
        Self::spawn_writing_to(cmd, Stdio::null())
    }

    /// [`spawn`](Self::spawn) with its standard output going to `stdout` (a file that
    /// cannot be written, to see the server live with it).
    pub fn spawn_writing_to(mut cmd: Command, stdout: Stdio) -> io::Result<Self> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()?;
        let dog = watched(&mut child)?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let collected = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(found) = listening_line(&line) {
                    let _ = tx.send(found);
                }
                let mut log = collected.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let text = |log: &Arc<Mutex<String>>| log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match rx.recv_timeout(START_WITHIN) {
            Ok((addr, issuer)) => Ok(ServerProcess {
                child,
                watchdog: Some(dog),
                addr,
                issuer,
                log,
                reader: Some(reader),
            }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait()?;
                call_off(Some(dog));
                let _ = reader.join();
                Err(io::Error::other(format!(
                    "the server did not say it was listening ({status}); its stderr:\n{}",
                    text(&log)
                )))
            }
        }
    }

    /// Starts `cmd`, told to listen on `addr`, with its standard error left where
    /// `cmd` sends it (an unwritable file, to see the server live with one): no
    /// listening line is read, and [`log`](Self::log) stays empty. Waits until `addr`
    /// accepts a connection; an error, with its exit status, if the server exits
    /// first (its port taken since it was found free, say: the caller tries another).
    pub fn spawn_listening_on(mut cmd: Command, addr: SocketAddr) -> io::Result<Self> {
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).spawn()?;
        let dog = watched(&mut child)?;
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if std::net::TcpStream::connect(addr).is_ok() {
                return Ok(ServerProcess {
                    child,
                    watchdog: Some(dog),
                    addr,
                    issuer: format!("http://{addr}"),
                    log: Arc::default(),
                    reader: None,
                });
            }
            let exited = child.try_wait()?;
            if exited.is_some() || Instant::now() >= deadline {
                let _ = child.kill();
                let status = child.wait()?;
                call_off(Some(dog));
                return Err(io::Error::other(match exited {
                    Some(_) => format!("the server exited before listening on {addr} ({status})"),
                    None => format!("the server did not listen on {addr} within {START_WITHIN:?}"),
                }));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its address, as it printed it.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its issuer, as it printed it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its standard error so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether it has exited (and then how).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// A graceful stop: SIGTERM, and waiting for it to exit (SIGKILL after 30 s).
    pub fn terminate(&mut self) -> io::Result<ExitStatus> {
        let status = stop_child(&mut self.child, Duration::from_secs(30))?;
        self.finish_log();
        Ok(status)
    }

    /// Death: SIGKILL, and reaping it.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        if self.child.try_wait()?.is_none() {
            signal(self.child.id(), Signal::Kill)?;
        }
        let status = self.child.wait()?;
        self.finish_log();
        Ok(status)
    }

    /// Once the process is gone: the reader has seen the end of its stderr, and the
    /// watchdog has nothing left to watch.
    fn finish_log(&mut self) {
        call_off(self.watchdog.take());
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        call_off(self.watchdog.take());
    }
}

/// "deviceflow-server listening on 127.0.0.1:PORT (issuer URL)" -> (address, URL).
fn listening_line(line: &str) -> Option<(SocketAddr, String)> {
    let rest = line.split("listening on ").nth(1)?;
    let (addr, rest) = rest.split_once(' ')?;
    let issuer = rest.strip_prefix("(issuer ")?.strip_suffix(')')?;
    Some((addr.parse().ok()?, issuer.to_owned()))
}

/// The path of binary `bin` of workspace package `package`, built first in the
/// profile and target directory of the running test (cargo does nothing when it is
/// up to date). For a test that runs another package's binary, which
/// `CARGO_BIN_EXE_<name>` gives only for its own package's. Panics with cargo's
/// message when the build fails.
pub fn cargo_bin(package: &str, bin: &str) -> PathBuf {
    build_bin(package, bin, None)
}

/// [`cargo_bin`] in the release profile, whatever the running test's: for a test of
/// the server as it is shipped (the third-party clients' interop).
pub fn cargo_release_bin(package: &str, bin: &str) -> PathBuf {
    build_bin(package, bin, Some("release"))
}

/// What was built: package, binary and profile (`None`: the test's).
type Built = HashMap<(String, String, Option<String>), PathBuf>;

fn build_bin(package: &str, bin: &str, profile: Option<&str>) -> PathBuf {
    static BUILT: Mutex<Option<Built>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let key = (
        package.to_owned(),
        bin.to_owned(),
        profile.map(str::to_owned),
    );
    if let Some(path) = built.get_or_insert_with(HashMap::new).get(&key) {
        return path.clone();
    }
    // <target>/<profile>/deps/<test>-<hash>
    let exe = std::env::current_exe().expect("the test's own path");
    let test_profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("a test runs from <target>/<profile>/deps");
    let target_dir = test_profile_dir.parent().expect("a target directory");
    let profile = profile.unwrap_or_else(|| {
        test_profile_dir
            .file_name()
            .and_then(OsStr::to_str)
            .unwrap_or("debug")
    });
    let profile_dir = target_dir.join(profile);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", package, "--bin", bin])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {bin}: {e}"));
    assert!(
        out.status.success(),
        "cargo build -p {package} --bin {bin} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = profile_dir.join(bin);
    assert!(path.is_file(), "cargo built no {}", path.display());
    built
        .get_or_insert_with(HashMap::new)
        .insert(key, path.clone());
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address_and_issuer() {
        assert_eq!(
            listening_line(
                "deviceflow-server listening on 127.0.0.1:4242 (issuer http://127.0.0.1:4242)"
            ),
            Some((
                "127.0.0.1:4242".parse().unwrap(),
                "http://127.0.0.1:4242".into()
            ))
        );
        assert_eq!(listening_line("deviceflow-server: stopped"), None);
        assert_eq!(listening_line("listening on nowhere (issuer x)"), None);
    }

    #[test]
    fn a_process_that_never_listens_is_an_error_with_its_stderr() {
        let err = ServerProcess::start("sh", &["-c", "echo no config here >&2; exit 3"])
            .err()
            .expect("sh never says it is listening");
        let text = err.to_string();
        assert!(text.contains("no config here"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
    }

    #[test]
    fn a_listening_process_is_stopped_by_sigterm_and_its_log_kept() {
        // A stand-in that prints the line and waits for a signal: sh's trap runs on
        // SIGTERM and exits 0, as the server's graceful stop does.
        let script = "trap 'echo stopped >&2; exit 0' TERM; \
                      echo 'x listening on 127.0.0.1:1 (issuer http://i)' >&2; \
                      while :; do sleep 0.05; done";
        let mut p = ServerProcess::start("sh", &["-c", script]).unwrap();
        assert_eq!(p.base(), "http://127.0.0.1:1");
        assert_eq!(p.issuer(), "http://i");
        assert_eq!(p.try_wait().unwrap(), None);
        let status = p.terminate().unwrap();
        assert!(status.success(), "{status}");
        assert!(p.log().ends_with("stopped\n"), "{}", p.log());
    }

    #[test]
    fn kill_is_death_without_a_graceful_stop() {
        let script = "trap 'exit 0' TERM; \
                      echo 'x listening on 127.0.0.1:1 (issuer http://i)' >&2; \
                      while :; do sleep 0.05; done";
        let mut p = ServerProcess::start("sh", &["-c", script]).unwrap();
        let status = p.kill().unwrap();
        assert!(!status.success(), "{status}");
        assert!(
            signal(p.pid(), Signal::Term).is_err(),
            "the process is gone"
        );
    }
}
