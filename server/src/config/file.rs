//! The configuration file, as a team writes it, with every field's default, and the
//! embedded demo defaults.

use std::net::SocketAddr;
use std::path::Path;

use deviceflow_wire::{GRANT_TYPE_DEVICE_CODE, GRANT_TYPE_REFRESH_TOKEN};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::ConfigError;
use crate::accounts::clients::AuthMethod;
use crate::protocol::session::SlowDownPolicy;

/// The demo confidential client's secret on embedded defaults.
pub const DEMO_CONFIDENTIAL_SECRET: &str = "demo-secret";

/// The demo user's password on embedded defaults, hashed at start-up.
pub const DEMO_USER_PASSWORD: &str = "demo-password";

/// The longest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The configuration file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The issuer identifier and public base URL (RFC 8414 §2). Default: `http://` and
    /// the address the server is bound to.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Where sessions, tokens and counters live: `"memory"` (the default: this
    /// process, lost on restart), `"redis://host:port[/db]"` (one Redis, shared by
    /// every instance that names it), `"redis+cluster://host:port,host:port,…"` (a
    /// Redis Cluster, by its seed nodes) or
    /// `"redis+sentinel://host:port,host:port,…/SERVICE[/db]"` (the primary those Redis
    /// Sentinels watch under that name); `rediss://`, `rediss+cluster://` and
    /// `rediss+sentinel://` over TLS.
    #[serde(default = "default_store")]
    pub store: String,
    /// `[device]`: codes, polling and the session cap.
    #[serde(default)]
    pub device: DeviceConfig,
    /// `[tokens]`: token lifetimes.
    #[serde(default)]
    pub tokens: TokenConfig,
    /// `[limits]`: request sizes, timeouts and password hashing.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[quotas]`: device authorization quotas.
    #[serde(default)]
    pub quotas: QuotasConfig,
    /// `[admin]`: the admin decision endpoint.
    #[serde(default)]
    pub admin: AdminConfig,
    /// `[registration]`: RFC 7591 dynamic client registration.
    #[serde(default)]
    pub registration: RegistrationConfig,
    /// `[[clients]]`.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// `[[users]]`.
    #[serde(default)]
    pub users: Vec<UserConfig>,
}

/// `[device]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceConfig {
    /// RFC 8628 §3.2 `expires_in`, seconds: at most 24 days (`MAX_EXPIRES_IN_SECS`).
    pub expires_in: u64,
    /// RFC 8628 §3.2 `interval`, seconds.
    pub interval: u64,
    /// Jitter allowed before a poll counts as early, milliseconds.
    pub poll_tolerance_ms: u64,
    /// `enforce`: answer early polls with `slow_down`; `off`: never.
    pub slow_down: SlowDownPolicy,
    /// Sessions held at once (live and recently expired); beyond it, device
    /// authorization answers 503 `temporarily_unavailable`.
    pub max_sessions: usize,
    /// How long an expired session is kept to answer `expired_token`, seconds.
    pub expired_retention: u64,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            expires_in: 600,
            interval: deviceflow_wire::DEFAULT_INTERVAL_SECS,
            poll_tolerance_ms: 500,
            slow_down: SlowDownPolicy::Enforce,
            max_sessions: 2_000_000,
            expired_retention: 300,
        }
    }
}

/// `[tokens]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Access token lifetime, seconds.
    pub access_token_ttl: u64,
    /// Refresh token lifetime, seconds.
    pub refresh_token_ttl: u64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            access_token_ttl: 3600,
            refresh_token_ttl: 30 * 24 * 3600,
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body accepted; larger gets 413.
    pub max_body_bytes: usize,
    /// Time a client has to send the request head once it began (slowloris defence),
    /// milliseconds.
    pub header_read_timeout_ms: u64,
    /// How long a keep-alive connection may sit idle between requests, and a peer may
    /// read nothing of an answer written to it, milliseconds. Well above the poll
    /// interval, so that a device polling every `interval` keeps its connection.
    pub idle_timeout_ms: u64,
    /// Time a client has to send the request body, milliseconds.
    pub body_read_timeout_ms: u64,
    /// Connections one source address (IPv4, IPv6 /64) may hold open at once; past it,
    /// a new one is answered 503 and closed. 0: no such cap.
    pub max_connections_per_source: u32,
    /// Reverse proxies (CIDR blocks or addresses) whose `X-Forwarded-For` names the
    /// source that quotas, rate limits and audit events count by; empty (the default):
    /// the TCP peer is the source, and the header is never read.
    pub trusted_proxies: Vec<String>,
    /// Other host names the person's pages answer under: a proxy that sends its
    /// upstream's dotted name as `Host`. The issuer's host, IP addresses, `localhost`
    /// and names without a dot always are; any other `Host` gets 421 (DNS rebinding).
    pub page_hosts: Vec<String>,
    /// Threads that verify passwords at sign-in, each with one argon2 buffer (19 MiB at
    /// the default cost); 0: one per core.
    pub password_hash_workers: usize,
    /// Sign-ins that may wait for a hashing thread; beyond workers + queue, sign-in
    /// answers 503 at once. Absent: twice the workers.
    pub password_hash_queue: Option<usize>,
}

/// The most password hashing threads a configuration may ask for.
pub const MAX_PASSWORD_HASH_WORKERS: usize = 1024;

/// The longest password hashing queue a configuration may ask for.
pub const MAX_PASSWORD_HASH_QUEUE: usize = 65_536;

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 16 * 1024,
            header_read_timeout_ms: 5_000,
            idle_timeout_ms: 75_000,
            body_read_timeout_ms: 10_000,
            max_connections_per_source: 0,
            trusted_proxies: Vec::new(),
            page_hosts: Vec::new(),
            password_hash_workers: 0,
            password_hash_queue: None,
        }
    }
}

impl LimitsConfig {
    /// The hashing threads, with 0 resolved to the number of cores.
    pub(super) fn resolved_password_hash_workers(&self) -> usize {
        match self.password_hash_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// Quotas on device authorization (`quota.rs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotasConfig {
    /// Device authorizations one source address (IPv4, IPv6 /64) may make per second,
    /// sustained; 0 turns the per-source quota off.
    pub per_source_rate: f64,
    /// ... and in one burst.
    pub per_source_burst: u32,
    /// Device authorizations one client may make per second, sustained, from all its
    /// sources together; 0 turns the per-client quota off.
    pub per_client_rate: f64,
    /// ... and in one burst.
    pub per_client_burst: u32,
    /// The largest share of `device.max_sessions` that one client may hold, in (0, 1].
    pub client_share: f64,
    /// Source addresses tracked at once; past it, new sources are not rate-limited.
    pub max_sources: usize,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        QuotasConfig {
            per_source_rate: 50.0,
            per_source_burst: 500,
            per_client_rate: 5_000.0,
            per_client_burst: 50_000,
            client_share: 0.5,
            max_sources: 1_000_000,
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token for the admin decision endpoint; absent means the endpoint is off.
    pub token: Option<String>,
}

/// `[registration]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationConfig {
    /// The initial access token (RFC 7591 §3) a registration request must bear as
    /// `Authorization: Bearer`; absent means dynamic registration is off (and not
    /// advertised in the metadata).
    pub initial_access_token: Option<String>,
}

/// One `[[clients]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// RFC 6749 §2.2 `client_id`.
    pub client_id: String,
    /// Shown to the person approving.
    #[serde(default)]
    pub name: Option<String>,
    /// Hex SHA-256 of the client secret (`deviceflow-server hash-secret`); absent for a
    /// public client. Client secrets are generated with high entropy, so a fast hash is
    /// enough; people's passwords are another matter.
    #[serde(default)]
    pub secret_sha256: Option<String>,
    /// For confidential clients: `client_secret_basic` and/or `client_secret_post`.
    #[serde(default = "default_auth_methods")]
    pub auth_methods: Vec<AuthMethod>,
    /// Scopes the client may request.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Scopes granted when the request names none; default: all of `scopes`.
    #[serde(default)]
    pub default_scopes: Option<Vec<String>>,
    /// Grant types the client may use.
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<String>,
}

/// One `[[users]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// What the person types to sign in.
    pub username: String,
    /// The name shown on the pages; default: the username.
    #[serde(default)]
    pub name: Option<String>,
    /// The argon2 PHC string of the user's password (`deviceflow-server
    /// hash-password`); absent: the user cannot sign in to the verification pages.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// May register, rotate and delete applications on the applications page
    /// (`/device/applications`).
    #[serde(default)]
    pub admin: bool,
}

fn default_store() -> String {
    "memory".to_owned()
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_auth_methods() -> Vec<AuthMethod> {
    vec![AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost]
}

fn default_grant_types() -> Vec<String> {
    vec![
        GRANT_TYPE_DEVICE_CODE.to_owned(),
        GRANT_TYPE_REFRESH_TOKEN.to_owned(),
    ]
}

impl FileConfig {
    /// Reads and parses a TOML file of at most [`MAX_CONFIG_BYTES`]: `--config
    /// /dev/zero` (or a pipe that never ends) read until memory ran out.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        use std::io::Read;
        let error = |error| ConfigError::Read {
            path: path.display().to_string(),
            error,
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text))
            .map_err(error)?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(error(std::io::Error::other(format!(
                "longer than {} MiB, which no configuration is",
                MAX_CONFIG_BYTES >> 20
            ))));
        }
        FileConfig::parse(&text, &path.display().to_string())
    }

    /// Parses TOML text; `origin` names it in errors, which are one line: where, then
    /// what (the parser's own rendering draws the line with a caret, over several).
    pub fn parse(text: &str, origin: &str) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let what = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            let message = match e.span() {
                Some(span) => {
                    let before = text.get(..span.start).unwrap_or(text);
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    match key_at(text, line) {
                        // Unless toml's message names it already ("unknown field `x`").
                        Some(key)
                            if !what.contains(&format!(
                                "`{}`",
                                key.rsplit('.').next().unwrap_or(&key)
                            )) =>
                        {
                            format!("line {line}, column {column}, {key}: {what}")
                        }
                        _ => format!("line {line}, column {column}: {what}"),
                    }
                }
                None => what,
            };
            ConfigError::Parse {
                path: origin.to_owned(),
                message,
            }
        })
    }

    /// The embedded defaults: a demo public client, a demo confidential client and a
    /// demo user, on loopback.
    pub fn demo() -> FileConfig {
        let scopes = vec![
            "openid".to_owned(),
            "profile".to_owned(),
            "offline_access".to_owned(),
        ];
        FileConfig {
            listen: default_listen(),
            issuer: None,
            store: default_store(),
            device: DeviceConfig::default(),
            tokens: TokenConfig::default(),
            limits: LimitsConfig::default(),
            quotas: QuotasConfig::default(),
            admin: AdminConfig::default(),
            registration: RegistrationConfig::default(),
            clients: vec![
                ClientConfig {
                    client_id: "demo-device".to_owned(),
                    name: Some("Demo TV (public client)".to_owned()),
                    secret_sha256: None,
                    auth_methods: vec![],
                    scopes: scopes.clone(),
                    default_scopes: Some(vec!["openid".to_owned()]),
                    grant_types: default_grant_types(),
                },
                ClientConfig {
                    client_id: "demo-confidential".to_owned(),
                    name: Some("Demo printer (confidential client)".to_owned()),
                    secret_sha256: Some(sha256_hex(DEMO_CONFIDENTIAL_SECRET)),
                    auth_methods: default_auth_methods(),
                    scopes,
                    default_scopes: Some(vec!["openid".to_owned()]),
                    grant_types: default_grant_types(),
                },
            ],
            users: vec![UserConfig {
                username: "demo".to_owned(),
                name: Some("Demo User".to_owned()),
                password_hash: Some(crate::accounts::password::demo_hash(DEMO_USER_PASSWORD)),
                // The tutorial starts by registering the device app on the page.
                admin: true,
            }],
        }
    }
}

/// Hex SHA-256, the form `secret_sha256` is written in.
pub fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The key written on `line` (1-based) of a TOML text, with the table it is in
/// (`limits.trusted_proxies`), to name it in an error: toml's own message says what is
/// wrong with a value, not whose it is. Never the value, which may be a secret.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().take(line).collect();
    let here = lines.last()?;
    let (key, _) = here.split_once('=')?;
    let key = key.trim();
    let is_name = |k: &str| {
        !k.is_empty()
            && k.len() <= 64
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.\"".contains(&b))
    };
    if !is_name(key) {
        return None;
    }
    let table = lines[..lines.len() - 1].iter().rev().find_map(|l| {
        let l = l.trim();
        l.strip_prefix('[')
            .map(|t| t.trim_start_matches('[').trim_end_matches(']').trim())
    });
    Some(match table {
        Some(t) if is_name(t) => format!("{t}.{key}"),
        _ => key.to_owned(),
    })
}
