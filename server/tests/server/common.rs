//! The test server and the checks every test shares.

use std::sync::Arc;

use bytes::Bytes;
use deviceflow_server::config::sha256_hex;
use deviceflow_server::{App, Clock, FileConfig, Settings};
use deviceflow_wire::{DeviceAuthorizationResponse, GRANT_TYPE_DEVICE_CODE};
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const CONF_SECRET: &str = "conf-secret";
/// The manual clock starts here: 2023-11-14T22:13:20Z.
pub const START_MS: u64 = 1_700_000_000_000;
pub const EXPIRES_IN: u64 = 60;
pub const INTERVAL: u64 = 5;

/// Two public device clients, a confidential one, one that may not use the device
/// grant; two users.
pub fn test_config() -> String {
    test_config_with_users(
        r#"
        [[users]]
        username = "alice"
        [[users]]
        username = "bob"
        "#,
    )
}

/// [`test_config`] with other `[[users]]`.
pub fn test_config_with_users(users: &str) -> String {
    format!(
        r#"
        [device]
        expires_in = {EXPIRES_IN}
        interval = {INTERVAL}
        poll_tolerance_ms = 500
        expired_retention = 30
        [admin]
        token = "{ADMIN_TOKEN}"
        [[clients]]
        client_id = "tv"
        name = "Living-room TV"
        scopes = ["openid", "profile", "tv"]
        default_scopes = ["openid"]
        [[clients]]
        client_id = "tv-b"
        scopes = ["openid", "profile", "tv"]
        [[clients]]
        client_id = "conf"
        secret_sha256 = "{}"
        scopes = ["openid", "tv"]
        [[clients]]
        client_id = "no-device"
        scopes = ["openid"]
        grant_types = ["refresh_token"]
        [[clients]]
        client_id = "no-refresh"
        scopes = ["openid"]
        grant_types = ["{GRANT_TYPE_DEVICE_CODE}"]
        {users}"#,
        sha256_hex(CONF_SECRET)
    )
}

/// The initial access token (RFC 7591 §3) of [`registration_config`].
pub const INITIAL_TOKEN: &str = "test-initial-access-token-0123";

/// [`test_config`] with dynamic client registration on.
pub fn registration_config() -> String {
    format!(
        "{}\n[registration]\ninitial_access_token = \"{INITIAL_TOKEN}\"\n",
        test_config()
    )
}

/// The password of each user of [`people_config`]: the username, then "-password".
pub fn password_of(username: &str) -> String {
    format!("{username}-password")
}

/// [`test_config`] whose users can sign in to the verification pages: alice ("Alice
/// Example"), bob and carol, with argon2id hashes at the smallest cost so tests stay
/// fast in debug builds. carol is an administrator (the applications page).
pub fn people_config() -> String {
    use deviceflow_server::accounts::password;
    let user = |name: &str, display: &str, admin: bool| {
        let phc = password::hash_with(&password_of(name), password::test_params());
        format!(
            "[[users]]\nusername = \"{name}\"\nname = \"{display}\"\npassword_hash = \"{phc}\"\nadmin = {admin}\n"
        )
    };
    test_config_with_users(&format!(
        "{}{}{}",
        user("alice", "Alice Example", false),
        user("bob", "bob", false),
        user("carol", "carol", true)
    ))
}

pub struct TestServer {
    /// Its address and a client: what a test sends it (`s.base`, `s.post(…)`).
    pub client: Client,
    pub app: Arc<App>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::ops::Deref for TestServer {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// A server's base URL and an HTTP client for it: the requests tests send, whether
/// the server runs in the test ([`TestServer`]) or as processes (`instances`).
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// One HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// RFC 6749 §5.2 (checklist DR-12, TS-02, PL-09): `status`, a JSON object of media
    /// type application/json, `error` equal to `code`, `error` and
    /// `error_description` within %x20-21 / %x23-5B / %x5D-7E, and not cacheable.
    #[track_caller]
    pub fn assert_oauth_error(&self, status: u16, code: &str) {
        let v = self.json();
        assert_eq!(
            (self.status, v["error"].as_str()),
            (status, Some(code)),
            "body: {v}"
        );
        let ct = self.header("content-type").unwrap_or_default();
        assert!(ct.starts_with("application/json"), "content-type {ct:?}");
        assert!(v.is_object());
        for member in ["error", "error_description"] {
            if let Some(text) = v.get(member) {
                let text = text.as_str().expect("a string");
                assert!(
                    text.bytes()
                        .all(|b| matches!(b, 0x20 | 0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
                    "{member} has characters outside RFC 6749 §5.2's set: {text:?}"
                );
            }
        }
        assert_eq!(self.header("cache-control"), Some("no-store"));
        // RFC 9110 §15.5.2: a 401 carries a challenge; for a client, in RFC 6749
        // §2.3.1's scheme (a registration access token's is Bearer, RFC 6750 §3).
        if status == 401 {
            let challenge = self.header("www-authenticate").unwrap_or_default();
            let scheme = if code == "invalid_client" {
                "Basic"
            } else {
                "Bearer"
            };
            assert!(
                challenge.starts_with(scheme),
                "{code}: 401 with WWW-Authenticate {challenge:?}"
            );
        }
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(&test_config()).await
    }

    pub async fn start_with(toml: &str) -> TestServer {
        TestServer::start_with_clock(toml, Clock::manual(START_MS)).await
    }

    /// A server on `clock`: the manual one, or the system clock for tests where a
    /// separate process (a device, a browser) waits in real time.
    pub async fn start_with_clock(toml: &str, clock: Clock) -> TestServer {
        TestServer::start_as(toml, clock, None).await
    }

    /// As [`TestServer::start_with_clock`], its issuer `issuer` when given (a server
    /// behind a TLS terminator, `https://`), else its address; `base` stays its address.
    pub async fn start_as(toml: &str, clock: Clock, issuer: Option<&str>) -> TestServer {
        let settings =
            Settings::from_file(FileConfig::parse(toml, "test config").unwrap()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = issuer.map_or_else(|| base.clone(), str::to_owned);
        let app = Arc::new(App::new(settings, issuer, clock));
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(deviceflow_server::serve(
            listener,
            Arc::clone(&app),
            async {
                let _ = rx.await;
            },
        ));
        TestServer {
            client: Client::new(base),
            app,
            shutdown: Some(tx),
        }
    }

    /// Moves the server's clock.
    pub fn advance_ms(&self, ms: u64) {
        self.app.clock.advance(ms);
    }
}

impl Client {
    pub fn new(base: String) -> Client {
        Client {
            base,
            http: reqwest::Client::new(),
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let r = req.send().await.expect("request");
        Answer {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.expect("body"),
        }
    }

    /// POSTs `body` as a form.
    pub async fn post(&self, path: &str, body: &str) -> Answer {
        self.post_with(path, body, &[]).await
    }

    pub async fn post_with(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Answer {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// POSTs `body` as JSON, with these headers.
    pub async fn post_json(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// A request of `method` with these headers and no body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// RFC 7591 §3.1: registers a client with the initial access token of
    /// [`registration_config`].
    pub async fn register(&self, metadata: &Value) -> Answer {
        let bearer = format!("Bearer {INITIAL_TOKEN}");
        self.post_json(REGISTER, metadata, &[("authorization", &bearer)])
            .await
    }

    /// Deletes a client through the admin API (`DELETE /admin/clients/{client_id}`,
    /// the segment sent as it is) with the admin token of the test configurations.
    pub async fn delete_app(&self, client_id: &str) -> Answer {
        let admin = format!("Bearer {ADMIN_TOKEN}");
        self.call(
            reqwest::Method::DELETE,
            &format!("{ADMIN_CLIENTS}/{client_id}"),
            &[("authorization", &admin)],
        )
        .await
    }

    /// Registers a public device client (device code and refresh token grants) and
    /// returns its `client_id`.
    pub async fn register_device_app(&self, name: &str) -> String {
        let a = self
            .register(&serde_json::json!({
                "client_name": name,
                "token_endpoint_auth_method": "none",
                "grant_types": [GRANT_TYPE_DEVICE_CODE, "refresh_token"],
                "scope": "openid tv",
            }))
            .await;
        assert_eq!(a.status, 201, "registration: {:?}", a.body);
        a.json()["client_id"]
            .as_str()
            .expect("client_id")
            .to_owned()
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// A device authorization that must succeed.
    pub async fn authorize(&self, client_id: &str) -> DeviceAuthorizationResponse {
        let a = self.post(DA, &format!("client_id={client_id}")).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        serde_json::from_slice(&a.body).unwrap()
    }

    pub async fn poll(&self, client_id: &str, device_code: &str) -> Answer {
        self.post(TOKEN, &poll_body(client_id, device_code)).await
    }

    pub async fn decide(&self, user_code: &str, action: &str, user: &str) -> Answer {
        self.post_with(
            ADMIN,
            &format!("user_code={user_code}&action={action}&user={user}"),
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        )
        .await
    }

    /// Authorizes, approves as alice, and returns the device code.
    pub async fn approved(&self, client_id: &str) -> String {
        let da = self.authorize(client_id).await;
        assert_eq!(
            self.decide(&da.user_code, "approve", "alice").await.status,
            200
        );
        da.device_code
    }
}

pub const DA: &str = "/oauth/device_authorization";
pub const REGISTER: &str = deviceflow_wire::paths::REGISTRATION;
pub const ADMIN_CLIENTS: &str = deviceflow_wire::paths::ADMIN_CLIENTS;
pub const TOKEN: &str = "/oauth/token";
pub const ADMIN: &str = "/admin/decisions";
pub const INTROSPECT: &str = "/oauth/introspect";
pub const REVOKE: &str = "/oauth/revoke";

pub fn poll_body(client_id: &str, device_code: &str) -> String {
    format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id={client_id}&device_code={device_code}")
}

pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// A keep-alive request for the health check, as raw bytes.
pub const HEALTH_REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

/// Reads one whole answer (its head says `Content-Length`) off a raw connection,
/// each read within 5 s.
pub async fn read_answer(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.parse::<usize>().ok())
                .expect("a content-length");
            if body.len() >= length {
                return text;
            }
        }
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("the answer in time")
            .unwrap();
        assert!(n > 0, "the connection closed mid-answer: {text:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

/// Whether the server closed a raw connection (end of file, or a reset) within
/// `within`.
pub async fn closed_by_server(stream: &mut TcpStream, within: std::time::Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(within, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}
