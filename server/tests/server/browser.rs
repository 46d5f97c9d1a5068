//! The person's side end to end, with real processes: `deviceflow-server device` as
//! the device (printing its code and QR code, polling per RFC 8628 §3.5), and Debian's
//! headless chromium, driven by playwright-core (server/tests/e2e/verify.mjs), as the
//! person who signs in, types the code in lower case with spaces, and approves or
//! denies; and (applications.mjs) as the administrator who registers the device app. The server runs on the system clock here, with a 1 s interval.
//!
//! The browser tests need what `scripts/install-test-deps.sh` installs, and fail,
//! saying so, when it is missing. Screenshots go to `$DEVICEFLOW_SCREENSHOTS`
//! (relative to the repository root; `reports/verification` refreshes the committed
//! ones) or else to a directory under `target/`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deviceflow_server::Clock;
use deviceflow_testkit::{free_port, temp_dir, tls};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_deviceflow-server");
const E2E: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e");
const CHROMIUM: &str = "/usr/bin/chromium";

/// [`people_config`] polled every second, for processes that wait in real time.
fn real_time_config() -> String {
    let config = people_config();
    assert!(config.contains("interval = 5\n"));
    config.replace("interval = 5\n", "interval = 1\n")
}

/// A running `deviceflow-server device`.
struct Device {
    child: Child,
    user_code: String,
    stdout: Arc<Mutex<String>>,
}

impl Device {
    /// Starts the device and waits for it to show its user code.
    fn start(base: &str, client_id: &str, scope: Option<&str>) -> Device {
        Device::start_with_env(base, client_id, scope, &[])
    }

    /// [`Device::start`] with `env` set in its environment.
    fn start_with_env(
        base: &str,
        client_id: &str,
        scope: Option<&str>,
        env: &[(&str, &Path)],
    ) -> Device {
        let mut cmd = Command::new(BIN);
        cmd.args(["device", "--issuer", base, "--client-id", client_id]);
        cmd.envs(env.iter().copied());
        if let Some(scope) = scope {
            cmd.args(["--scope", scope]);
        }
        let mut child = cmd
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let reader = BufReader::new(child.stdout.take().unwrap());
        let collected = Arc::clone(&stdout);
        std::thread::spawn(move || {
            let mut code = None;
            for line in reader.lines().map_while(Result::ok) {
                if let Some(c) = line.split("enter the code").nth(1) {
                    code = Some(c.trim().to_owned());
                }
                let mut all = collected.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
                // The last line before polling starts: the code and QR code are out.
                if line.contains("Polling every") {
                    let _ = tx.send(code.take().unwrap_or_default());
                }
            }
        });
        let user_code = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the device showed no code: {}", stdout.lock().unwrap()));
        Device {
            child,
            user_code,
            stdout,
        }
    }

    fn output(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Waits for the device to stop; its exit status, stdout and stderr.
    fn finish(mut self, within: Duration) -> (ExitStatus, String, String) {
        let deadline = std::time::Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the device did not stop within {within:?}:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        std::thread::sleep(Duration::from_millis(50));
        (status, self.output(), stderr)
    }
}

/// Runs `f` off the runtime's worker threads, which serve the test server.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_command_shows_a_qr_code_and_gets_its_token_once_approved() {
    let s = TestServer::start_with_clock(&real_time_config(), Clock::System).await;
    let base = s.base.clone();
    let device = blocking(move || Device::start(&base, "tv", Some("openid profile"))).await;
    let shown = device.output();
    assert!(
        shown.contains(&format!("open  {}/device", s.base)),
        "{shown}"
    );
    assert!(shown.contains(&format!(
        "or scan this QR code ({}/device?user_code={}):",
        s.base, device.user_code
    )));
    assert!(
        shown.contains('▀') && shown.contains('█') && shown.contains('▄'),
        "{shown}"
    );
    assert!(!shown.contains('\x1b'), "NO_COLOR means no ANSI codes");
    // Approved once the device has seen it pending (a fixed wait had approved before
    // the first poll on a loaded machine).
    let started = std::time::Instant::now();
    while !device.output().contains("authorization_pending") {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{}",
            device.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        s.decide(&device.user_code, "approve", "alice").await.status,
        200
    );
    let (status, out, err) = blocking(move || device.finish(Duration::from_secs(20))).await;
    assert!(status.success(), "{out}\n{err}");
    assert!(out.contains("authorization_pending"), "{out}");
    assert!(out.contains("approved: token response"), "{out}");
    let json = &out[out.find("\n{").unwrap()..];
    let token: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], "openid profile");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_command_adds_five_seconds_per_slow_down() {
    // The server's clock stands still, so the device's second poll is "early":
    // slow_down, and the device must wait 1 + 5 s before the next one (RFC 8628 §3.5).
    let s = TestServer::start_with(&real_time_config()).await;
    let base = s.base.clone();
    let device = blocking(move || Device::start(&base, "tv", None)).await;
    let started = std::time::Instant::now();
    while !device.output().contains("slow_down") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            device.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let slowed = std::time::Instant::now();
    assert!(device
        .output()
        .contains("slow_down: polling every 6 s from now on"));
    s.decide(&device.user_code, "approve", "alice").await;
    s.advance_ms(6_000);
    let (status, out, err) = blocking(move || device.finish(Duration::from_secs(20))).await;
    assert!(status.success(), "{out}\n{err}");
    // 1 + 5 s, seen from here: the output is read up to a loaded machine's moment
    // late, and the exit later still. A device that kept its 1 s would have polled
    // and been approved well before 5.5 s.
    let waited = slowed.elapsed();
    assert!(
        waited >= Duration::from_millis(5_500) && waited < Duration::from_secs(15),
        "the device waited {waited:?} after slow_down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_command_stops_on_access_denied() {
    let s = TestServer::start_with_clock(&real_time_config(), Clock::System).await;
    let base = s.base.clone();
    let device = blocking(move || Device::start(&base, "tv", None)).await;
    assert_eq!(
        s.decide(&device.user_code, "deny", "alice").await.status,
        200
    );
    let (status, out, err) = blocking(move || device.finish(Duration::from_secs(20))).await;
    assert_eq!(status.code(), Some(1), "{out}\n{err}");
    assert!(
        err.contains("access_denied: the person denied the request"),
        "{err}"
    );
}

/// The device speaks https:// to a server behind TLS, as one is deployed: it trusts a
/// private CA named in SSL_CERT_FILE, and without it says what to do in one line
/// (before, any https:// issuer was refused: "plain HTTP only").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_command_speaks_https_to_a_server_behind_tls() {
    let certs = temp_dir("device-tls").unwrap();
    tls::certificates(&certs).unwrap();
    let port = free_port().unwrap();
    let public = format!("https://127.0.0.1:{port}");
    let s = TestServer::start_as(&real_time_config(), Clock::System, Some(&public)).await;
    let upstream = s.base.strip_prefix("http://").unwrap().parse().unwrap();
    let terminator = tls::TlsTerminator::start(&certs, port, upstream).unwrap();

    let untrusted = Command::new(BIN)
        .args(["device", "--issuer", &public])
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    assert_eq!(untrusted.status.code(), Some(1));
    let err = String::from_utf8_lossy(&untrusted.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("UnknownIssuer")
            && err.contains("name that CA's certificate in SSL_CERT_FILE"),
        "{err}"
    );

    let ca = certs.join(tls::CA);
    let issuer = public.clone();
    let device =
        blocking(move || Device::start_with_env(&issuer, "tv", None, &[("SSL_CERT_FILE", &ca)]))
            .await;
    assert!(
        device.output().contains(&format!("open  {public}/device")),
        "{}",
        device.output()
    );
    assert_eq!(
        s.decide(&device.user_code, "approve", "alice").await.status,
        200
    );
    let (status, out, err) = blocking(move || device.finish(Duration::from_secs(20))).await;
    assert!(status.success(), "{out}\n{err}");
    assert!(out.contains("approved: token response"), "{out}");
    // Discovery, the codes and at least one poll, each on a connection of its own.
    assert!(terminator.handshakes() >= 3, "{}", terminator.handshakes());
    let _ = std::fs::remove_dir_all(&certs);
}

/// RFC 8414 metadata of an https:// issuer that names http:// endpoints would have the
/// device send its device code in clear text (RFC 8628 §5.1, RFC 6749 §3.2): refused,
/// in one line, before any code is asked for (helper-83: it was used).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_command_refuses_http_endpoints_under_an_https_issuer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certs = temp_dir("device-tls-downgrade").unwrap();
    tls::certificates(&certs).unwrap();
    let port = free_port().unwrap();
    let public = format!("https://127.0.0.1:{port}");
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = plain.local_addr().unwrap();
    let metadata = format!(
        r#"{{"issuer":"{public}","device_authorization_endpoint":"http://{upstream}/oauth/device_authorization","token_endpoint":"{public}/oauth/token"}}"#
    );
    let asked = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&asked);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = plain.accept().await {
            let mut head = vec![0u8; 4096];
            let n = stream.read(&mut head).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&head[..n]).into_owned();
            seen.lock()
                .unwrap()
                .push(head.lines().next().unwrap_or("").to_owned());
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{metadata}",
                metadata.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    let _terminator = tls::TlsTerminator::start(&certs, port, upstream).unwrap();
    let ca = certs.join(tls::CA);
    let issuer = public.clone();
    let out = blocking(move || {
        Command::new(BIN)
            .args(["device", "--issuer", &issuer, "--client-id", "tv"])
            .env("SSL_CERT_FILE", &ca)
            .output()
            .unwrap()
    })
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "metadata naming a device_authorization_endpoint this device cannot use: \"http://{upstream}/oauth/device_authorization\" is http://, under an https:// issuer"
        )),
        "{err}"
    );
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "only the metadata was asked for: {asked:?}");
    assert!(
        asked[0].contains("/.well-known/oauth-authorization-server"),
        "{asked:?}"
    );
    let _ = std::fs::remove_dir_all(&certs);
}

/// What the browser tests need, or a failure that says how to get it.
fn browser_prerequisites() {
    let fix = "run scripts/install-test-deps.sh (from the repository root) first";
    assert!(
        Path::new(CHROMIUM).exists(),
        "the browser end-to-end test needs Debian's chromium at {CHROMIUM}: {fix}"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "the browser end-to-end test needs node: {fix}"
    );
    assert!(
        Path::new(E2E).join("node_modules/playwright-core").is_dir(),
        "the browser end-to-end test needs {E2E}/node_modules (playwright-core): {fix}"
    );
}

fn screenshot_dir() -> PathBuf {
    match std::env::var_os("DEVICEFLOW_SCREENSHOTS") {
        Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("verification-screenshots"),
    }
}

/// The verification script (verify.mjs) as alice, to run with [`run_script`].
fn verify_command(base: &str, user_code: &str, decision: &str) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(Path::new(E2E).join("verify.mjs"))
        .args([base, user_code, decision, "--user", "alice", "--password"])
        .arg(password_of("alice"))
        .arg("--screenshots")
        .arg(screenshot_dir());
    cmd
}

/// Runs the verification script (verify.mjs); its JSON report.
fn run_browser(
    base: &str,
    user_code: &str,
    decision: &str,
    tour: bool,
    only: Option<&str>,
) -> serde_json::Value {
    let mut cmd = verify_command(base, user_code, decision);
    if tour {
        cmd.arg("--tour");
    }
    if let Some(names) = only {
        cmd.args(["--only", names]);
    }
    run_script(cmd)
}

/// Runs a browser script (`node …`); its JSON report, or a failure with everything
/// it said.
fn run_script(mut cmd: Command) -> serde_json::Value {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(Ok(Output {
        status,
        stdout,
        stderr,
    })) = rx.recv_timeout(Duration::from_secs(120))
    else {
        let _ = Command::new("kill").arg(pid.to_string()).status();
        panic!("the browser script did not finish within 120 s");
    };
    let stdout = String::from_utf8_lossy(&stdout);
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(
        status.success(),
        "the browser script failed ({status}):\n{stdout}\n{stderr}\nscreenshots in {}",
        screenshot_dir().display()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not the script's JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_a_person_approves_and_the_device_gets_its_token() {
    browser_prerequisites();
    let s = TestServer::start_with_clock(&real_time_config(), Clock::System).await;
    let base = s.base.clone();
    let device = blocking(move || Device::start(&base, "tv", Some("openid profile"))).await;
    let (base, code) = (s.base.clone(), device.user_code.clone());
    let report = blocking(move || run_browser(&base, &code, "approve", true, None)).await;
    assert_eq!(report["ok"], true, "{report}");
    let visited: Vec<&str> = report["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["page"].as_str())
        .collect();
    assert_eq!(
        visited,
        [
            "sign-in",
            "code-entry",
            "consent",
            "done",
            "error",
            "confirm",
            "display",
            "signed-out"
        ]
    );
    let (status, out, err) = blocking(move || device.finish(Duration::from_secs(20))).await;
    assert!(status.success(), "{out}\n{err}");
    assert!(out.contains("\"access_token\""), "{out}");
}

/// A server people reach by a plain http name on their network (`http://devices.lan`,
/// which check-config warns of and serves): chromium sends no Fetch Metadata to an
/// origin that is not potentially trustworthy, and under the pages' former
/// `Referrer-Policy: no-referrer` a form's `Origin` is `null` (Fetch, "serializing a
/// request origin"), so origin.rs refused every sign-in. `--host-resolver-rules`
/// sends `devices.test` to loopback: an untrustworthy origin, no byte leaving the
/// machine. The server's issuer is its address, so the pages are told that name is
/// theirs too (`page_hosts`, as for a proxy's name), or they would refuse it (421,
/// DNS rebinding).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_at_a_plain_http_name_a_person_signs_in_and_approves() {
    browser_prerequisites();
    let config = format!(
        "{}\n[limits]\npage_hosts = [\"devices.test\"]\n",
        real_time_config()
    );
    let s = TestServer::start_with_clock(&config, Clock::System).await;
    let base = s.base.clone();
    let device = blocking(move || Device::start(&base, "tv", None)).await;
    let port = s.base.rsplit(':').next().unwrap().to_owned();
    let (lan, code) = (
        format!("http://devices.test:{port}"),
        device.user_code.clone(),
    );
    blocking(move || {
        let mut cmd = verify_command(&lan, &code, "approve");
        cmd.args([
            "--host-rules",
            "MAP devices.test 127.0.0.1",
            "--only",
            "none",
        ]);
        run_script(cmd)
    })
    .await;
    let (status, out, err) = blocking(move || device.finish(Duration::from_secs(20))).await;
    assert!(status.success(), "{out}\n{err}");
    assert!(out.contains("\"access_token\""), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_a_person_denies_and_the_device_hears_access_denied() {
    browser_prerequisites();
    let s = TestServer::start_with_clock(&real_time_config(), Clock::System).await;
    let base = s.base.clone();
    let device = blocking(move || Device::start(&base, "tv", None)).await;
    let (base, code) = (s.base.clone(), device.user_code.clone());
    let report =
        blocking(move || run_browser(&base, &code, "deny", false, Some("done-denied"))).await;
    assert_eq!(report["ok"], true, "{report}");
    let (status, out, err) = blocking(move || device.finish(Duration::from_secs(20))).await;
    assert_eq!(status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("access_denied"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_an_administrator_registers_an_app_that_a_device_then_uses() {
    browser_prerequisites();
    let s = TestServer::start_with_clock(&real_time_config(), Clock::System).await;
    let mut cmd = Command::new("node");
    cmd.arg(Path::new(E2E).join("applications.mjs"))
        .arg(&s.base)
        .args(["--admin", "carol", "--admin-password"])
        .arg(password_of("carol"))
        .args(["--user", "alice", "--password"])
        .arg(password_of("alice"))
        .arg("--screenshots")
        .arg(screenshot_dir());
    let report = blocking(move || run_script(cmd)).await;
    assert_eq!(report["ok"], true, "{report}");
    let visited: Vec<&str> = report["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["page"].as_str())
        .collect();
    assert_eq!(
        visited,
        [
            "applications-forbidden",
            "applications",
            "application-registered",
            "application-secret",
            "application-rotated",
            "application-delete",
            "applications-after-delete",
        ]
    );
    // The app registered in the browser is a device's client: the device command
    // completes its flow once alice approves.
    let client_id = report["client_id"].as_str().unwrap().to_owned();
    let base = s.base.clone();
    let id = client_id.clone();
    let device = blocking(move || Device::start(&base, &id, None)).await;
    assert_eq!(
        s.decide(&device.user_code, "approve", "alice").await.status,
        200
    );
    let (status, out, err) = blocking(move || device.finish(Duration::from_secs(20))).await;
    assert!(status.success(), "{out}\n{err}");
    assert!(out.contains("\"access_token\""), "{out}");
    // The one deleted in the browser is unknown.
    s.post(
        DA,
        &format!("client_id={}", report["deleted"].as_str().unwrap()),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
}

/// In chromium: approve, then reload the last page (chromium sends the form again)
/// and go back to the consent page; prints what each showed.
const RELOAD_AFTER_DECIDING: &str = r#"
import { openPhone } from './browser.mjs';
const [base, code, user, password, action] = process.argv.slice(1);
const { page, close } = await openPhone({});
try {
  const posts = [];
  page.on('request', (r) => { if (r.method() === 'POST') posts.push(new URL(r.url()).pathname); });
  await page.goto(`${base}/device`);
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname === '/device');
  await page.getByLabel('Code').fill(code);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((u) => u.pathname === '/device/consent');
  await page.getByRole('button', { name: action }).click();
  await page.waitForLoadState();
  const decided = await page.locator('h1').innerText();
  await page.reload();
  const reloaded = await page.locator('h1').innerText();
  const resent = posts.filter((p) => p === '/device/consent').length;
  await page.goto(`${base}/device/consent`);
  const back = await page.locator('h1').innerText();
  console.log(JSON.stringify({ ok: true, decided, reloaded, resent, back }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e) }));
  process.exitCode = 1;
} finally {
  await close();
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_reloading_the_last_page_still_says_what_was_decided() {
    // RFC 8628 §3.3 (checklist UI-15): the last page tells the person the outcome. A
    // reload sends the decision again; it must not say "nothing was approved" about
    // a device that was.
    browser_prerequisites();
    let s = TestServer::start_with_clock(&real_time_config(), Clock::System).await;
    for (action, heading) in [("Approve", "Device connected"), ("Deny", "Request denied")] {
        let da = s.authorize("tv").await;
        let mut cmd = Command::new("node");
        cmd.current_dir(E2E)
            .args(["--input-type=module", "-e", RELOAD_AFTER_DECIDING])
            .args([s.base.as_str(), da.user_code.as_str(), "alice"])
            .arg(password_of("alice"))
            .arg(action);
        let report = blocking(move || run_script(cmd)).await;
        assert_eq!(report["ok"], true, "{report}");
        assert_eq!(report["decided"], heading, "{report}");
        // Chromium did send the form twice: the reload is a second decision POST.
        assert_eq!(report["resent"], 2, "{report}");
        assert_eq!(report["reloaded"], heading, "{report}");
        assert_eq!(report["back"], heading, "{report}");
        let polled = s.poll("tv", &da.device_code).await;
        if action == "Approve" {
            assert_eq!(polled.status, 200, "{:?}", polled.body);
        } else {
            polled.assert_oauth_error(400, "access_denied");
        }
    }
}
