//! The audit log of the binary, as an operator reads it: `--log-format json`, one
//! event per act (approvals, tokens, replays, refresh reuse, failed sign-ins,
//! throttling) naming client, user, user code and source, and never a secret. The log
//! is grepped for every secret this test used.

use std::io::Read;
use std::process::{Command, Stdio};

use deviceflow_server::accounts::password;
use deviceflow_server::config::sha256_hex;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_deviceflow-server");
const ADMIN: &str = "audit-admin-token-0123456789abcdef";
const SECRET: &str = "printer-secret-0123456789";
const PASSWORD: &str = "alice-correct-horse";
const WRONG_PASSWORD: &str = "alice-wrong-battery-staple";
/// Device authorizations sent by one source in a row, past its burst of 6.
const REQUESTS_PAST_THE_BURST: usize = 300;
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn config(port: u16) -> String {
    format!(
        r#"
        listen = "127.0.0.1:{port}"
        [device]
        interval = 1
        [quotas]
        per_source_rate = 1.0
        per_source_burst = 6
        [admin]
        token = "{ADMIN}"
        [[clients]]
        client_id = "tv"
        scopes = ["openid"]
        [[clients]]
        client_id = "printer"
        secret_sha256 = "{}"
        scopes = ["openid"]
        [[users]]
        username = "alice"
        password_hash = "{}"
        "#,
        sha256_hex(SECRET),
        password::hash_with(PASSWORD, password::test_params())
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of the hidden form field `name` in a page.
fn form_field(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} field in {page}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn audit_events_name_who_and_where_and_never_a_secret() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("deviceflow-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("server.toml");
    std::fs::write(&path, config(port)).unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info")
        .env_remove("DEVICEFLOW_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut acts = Acts {
        base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        secrets: vec![
            ADMIN.into(),
            SECRET.into(),
            PASSWORD.into(),
            WRONG_PASSWORD.into(),
        ],
    };
    for _ in 0..100 {
        if acts
            .http
            .get(format!("{}/healthz", acts.base))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let user_code = acts.approve_redeem_refresh_and_replay().await;
    let conf_code = acts.deny_a_confidential_client().await;
    acts.fail_to_sign_in_then_sign_in().await;
    let refused = acts.exceed_the_per_source_burst().await;

    // Stop the server and read everything it logged.
    terminate(child.id());
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    child.wait().unwrap();
    let events: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v: &Value| v["target"] == "audit")
        .collect();
    assert_each_act_is_one_event(&events, &log, &user_code, &conf_code);
    // Refusals cost the client nothing: they are said at most once a second per
    // worker thread, each line with how many it stands for, so a flood of them does
    // not grow the log a line each (helper-60: 300 refusals were 300 lines).
    let lines: Vec<u64> = events
        .iter()
        .filter(|v| v["event"] == "throttled" && v["limit"] == "per_source")
        .map(|v| v["refused"].as_u64().expect("a refused count"))
        .collect();
    let said: u64 = lines.iter().sum();
    assert!(
        !lines.is_empty() && (lines.len() as u64) < refused / 4 && said <= refused,
        "{} lines standing for {said} of {refused} refusals",
        lines.len()
    );
    for secret in &acts.secrets {
        assert!(!secret.is_empty());
        assert!(
            !log.contains(secret.as_str()),
            "the log holds a secret ({}…):\n{log}",
            &secret[..4]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The acts an operator wants audited, against the server at `base`; each keeps the
/// secrets it used or was given, none of which may reach the log.
struct Acts {
    base: String,
    http: reqwest::Client,
    secrets: Vec<String>,
}

async fn json(r: reqwest::Response) -> Value {
    r.json::<Value>().await.unwrap()
}

impl Acts {
    fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base)).form(form)
    }

    /// Alice's decision on `user_code`, through the admin endpoint: its status.
    async fn decide(&self, user_code: &str, action: &str) -> reqwest::StatusCode {
        self.post(
            "/admin/decisions",
            &[
                ("user_code", user_code),
                ("action", action),
                ("user", "alice"),
            ],
        )
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .status()
    }

    /// A device flow: approved through the admin endpoint, redeemed, refreshed (then the
    /// rotated refresh token reused), and the device code replayed. Returns its user code.
    async fn approve_redeem_refresh_and_replay(&mut self) -> String {
        let da = json(
            self.post("/oauth/device_authorization", &[("client_id", "tv")])
                .send()
                .await
                .unwrap(),
        )
        .await;
        let device_code = da["device_code"].as_str().unwrap().to_owned();
        let user_code = da["user_code"].as_str().unwrap().to_owned();
        self.secrets.push(device_code.clone());
        assert_eq!(self.decide(&user_code, "approve").await, 200);
        let poll = [
            ("client_id", "tv"),
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code.as_str()),
        ];
        let token = json(self.post("/oauth/token", &poll).send().await.unwrap()).await;
        let access = token["access_token"].as_str().unwrap().to_owned();
        let refresh = token["refresh_token"].as_str().unwrap().to_owned();
        self.secrets.extend([access, refresh.clone()]);
        // Refresh, then reuse of the rotated refresh token.
        let by_refresh = [
            ("client_id", "tv"),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ];
        let refreshed = json(self.post("/oauth/token", &by_refresh).send().await.unwrap()).await;
        self.secrets
            .push(refreshed["access_token"].as_str().unwrap().to_owned());
        self.secrets
            .push(refreshed["refresh_token"].as_str().unwrap().to_owned());
        let reused = json(self.post("/oauth/token", &by_refresh).send().await.unwrap()).await;
        assert_eq!(reused["error"], "invalid_grant");

        // The device code, presented again.
        let replay = json(self.post("/oauth/token", &poll).send().await.unwrap()).await;
        assert_eq!(replay["error"], "invalid_grant");
        user_code
    }

    /// A confidential client authenticates with its secret, and is denied. Returns the
    /// user code.
    async fn deny_a_confidential_client(&mut self) -> String {
        let conf = json(
            self.post(
                "/oauth/device_authorization",
                &[("client_id", "printer"), ("client_secret", SECRET)],
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        self.secrets
            .push(conf["device_code"].as_str().unwrap().to_owned());
        let conf_code = conf["user_code"].as_str().unwrap().to_owned();
        assert_eq!(self.decide(&conf_code, "deny").await, 200);
        conf_code
    }

    /// A failed sign-in on the pages, then a good one.
    async fn fail_to_sign_in_then_sign_in(&mut self) {
        let page = self
            .http
            .get(format!("{}/device/login", self.base))
            .send()
            .await
            .unwrap();
        let cookie = page
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(|c| c.split(';').next().unwrap().to_owned())
            .expect("the sign-in page sets a cookie");
        let csrf = form_field(&page.text().await.unwrap(), "csrf");
        self.secrets
            .push(cookie.split_once('=').unwrap().1.to_owned());
        self.secrets.push(csrf.clone());
        let sign_in = |password: &'static str| {
            self.http
                .post(format!("{}/device/login", self.base))
                .header("cookie", &cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("username", "alice"),
                    ("password", password),
                ])
        };
        assert_eq!(sign_in(WRONG_PASSWORD).send().await.unwrap().status(), 400);
        let signed_in = sign_in(PASSWORD).send().await.unwrap();
        assert_eq!(signed_in.status(), 303);
        if let Some(c) = signed_in
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
        {
            let value = c.split(';').next().unwrap().split_once('=').unwrap().1;
            self.secrets.push(value.to_owned());
        }
    }

    /// Throttled: one source far past its burst of device authorizations. Returns
    /// how many were refused.
    async fn exceed_the_per_source_burst(&self) -> u64 {
        let mut throttled = 0;
        for _ in 0..REQUESTS_PAST_THE_BURST {
            let r = self
                .post("/oauth/device_authorization", &[("client_id", "tv")])
                .send()
                .await
                .unwrap();
            throttled += u64::from(r.status() == 429);
        }
        assert!(throttled > 0);
        throttled
    }
}

/// Each act above is an audit event naming its client, user, user code and source.
fn assert_each_act_is_one_event(events: &[Value], log: &str, user_code: &str, conf_code: &str) {
    let find = |event: &str| {
        events
            .iter()
            .find(|v| v["event"] == event)
            .unwrap_or_else(|| panic!("no {event} event in:\n{log}"))
    };
    let approved = find("approved");
    assert_eq!(approved["via"], "admin");
    assert_eq!(approved["client"], "tv");
    assert_eq!(approved["user"], "alice");
    assert_eq!(approved["user_code"], user_code);
    assert_eq!(approved["source"], "127.0.0.1");
    let denied = find("denied");
    assert_eq!(
        (denied["client"].as_str(), denied["user_code"].as_str()),
        (Some("printer"), Some(conf_code))
    );
    let issued = find("token_issued");
    assert_eq!(
        (issued["grant"].as_str(), issued["user"].as_str()),
        (Some("device_code"), Some("alice"))
    );
    assert_eq!(issued["user_code"], user_code);
    let replayed = find("device_code_replayed");
    assert_eq!(
        (replayed["user_code"].as_str(), replayed["level"].as_str()),
        (Some(user_code), Some("WARN"))
    );
    assert_eq!(find("refresh_token_reused")["user"], "alice");
    assert!(events
        .iter()
        .any(|v| v["event"] == "token_issued" && v["grant"] == "refresh_token"));
    let failed = find("sign_in_failed");
    assert_eq!(
        (failed["user"].as_str(), failed["source"].as_str()),
        (Some("alice"), Some("127.0.0.1"))
    );
    let throttle = find("throttled");
    assert_eq!(
        (throttle["limit"].as_str(), throttle["client"].as_str()),
        (Some("per_source"), Some("tv"))
    );
}

/// Stops the server we started, by its PID, with SIGTERM (a graceful stop).
fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}
