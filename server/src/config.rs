//! Configuration: the TOML file a team writes, the embedded demo defaults used when
//! there is none, and their validation into the [`Settings`] the server runs on.
//!
//! Command-line flags and environment variables override single fields; that merge
//! happens in the binary (`main.rs`), on a [`FileConfig`], before [`Settings::from_file`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use deviceflow_wire::{GRANT_TYPE_DEVICE_CODE, GRANT_TYPE_REFRESH_TOKEN};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::accounts::clients::{AuthMethod, Client, ClientId, Clients};
use crate::accounts::users::{User, Users};
use crate::protocol::scope::{ScopeRegistry, ScopeSet};
use crate::protocol::session::{PollPolicy, SlowDownPolicy};
use crate::quota::{QuotaPolicy, Rate};

/// The demo confidential client's secret on embedded defaults.
pub const DEMO_CONFIDENTIAL_SECRET: &str = "demo-secret";

/// The demo user's password on embedded defaults, hashed at start-up.
pub const DEMO_USER_PASSWORD: &str = "demo-password";

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
    /// RFC 8628 §3.2 `expires_in`, seconds.
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
    /// How long a keep-alive connection may sit idle between requests, milliseconds.
    /// Well above the poll interval, so that a device polling every `interval` keeps
    /// its connection.
    pub idle_timeout_ms: u64,
    /// Time a client has to send the request body, milliseconds.
    pub body_read_timeout_ms: u64,
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
            password_hash_workers: 0,
            password_hash_queue: None,
        }
    }
}

impl LimitsConfig {
    /// The hashing threads, with 0 resolved to the number of cores.
    fn resolved_password_hash_workers(&self) -> usize {
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

/// A configuration that cannot be run, said so a person can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("{path}: {message}")]
    Parse {
        /// The file, or what the text came from.
        path: String,
        /// What the TOML parser said.
        message: String,
    },
    /// The values cannot be run; the message names the field.
    #[error("{0}")]
    Invalid(String),
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        FileConfig::parse(&text, &path.display().to_string())
    }

    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
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
            device: DeviceConfig::default(),
            tokens: TokenConfig::default(),
            limits: LimitsConfig::default(),
            quotas: QuotasConfig::default(),
            admin: AdminConfig::default(),
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
                password_hash: Some(crate::verification::password::hash(DEMO_USER_PASSWORD)),
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

/// The validated configuration the server runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Issuer and public base URL, without a trailing slash; `None` until bound.
    pub issuer: Option<String>,
    /// RFC 8628 §3.2 `expires_in`, seconds.
    pub expires_in_secs: u64,
    /// RFC 8628 §3.2 `interval`, seconds.
    pub interval_secs: u64,
    /// How polls are paced.
    pub poll: PollPolicy,
    /// Sessions held at once.
    pub max_sessions: usize,
    /// The most sessions one client may hold (`quotas.client_share` of the cap).
    pub max_sessions_per_client: usize,
    /// Device authorization quotas.
    pub quotas: QuotaPolicy,
    /// How long an expired session answers `expired_token`, seconds.
    pub expired_retention_secs: u64,
    /// Access token lifetime, seconds.
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime, seconds.
    pub refresh_token_ttl_secs: u64,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Time a request head may take once begun, milliseconds.
    pub header_read_timeout_ms: u64,
    /// Time a keep-alive connection may idle, milliseconds.
    pub idle_timeout_ms: u64,
    /// Time a request body may take, milliseconds.
    pub body_read_timeout_ms: u64,
    /// Password hashing threads (resolved: never 0).
    pub password_hash_workers: usize,
    /// Sign-ins that may wait for a hashing thread.
    pub password_hash_queue: usize,
    /// The admin endpoint's bearer token; `None`: the endpoint is off.
    pub admin_token: Option<String>,
    /// The clients.
    pub clients: Clients,
    /// The people.
    pub users: Users,
    /// Every scope any client may ask for.
    pub scopes: ScopeRegistry,
}

impl Settings {
    /// Validates a file configuration. Every problem is named with the field it is in.
    pub fn from_file(file: FileConfig) -> Result<Settings, ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        let d = &file.device;
        if d.expires_in == 0 {
            return invalid("device.expires_in must be at least 1 second".into());
        }
        if d.interval == 0 {
            return invalid("device.interval must be at least 1 second (RFC 8628 §3.2)".into());
        }
        if d.interval >= d.expires_in {
            return invalid(format!(
                "device.interval ({}s) must be shorter than device.expires_in ({}s), or no poll fits",
                d.interval, d.expires_in
            ));
        }
        if d.poll_tolerance_ms >= d.interval * 1000 {
            return invalid(format!(
                "device.poll_tolerance_ms ({}) must be below the interval ({} ms)",
                d.poll_tolerance_ms,
                d.interval * 1000
            ));
        }
        if d.max_sessions == 0 {
            return invalid("device.max_sessions must be at least 1".into());
        }
        if file.tokens.access_token_ttl == 0 || file.tokens.refresh_token_ttl == 0 {
            return invalid(
                "tokens.access_token_ttl and tokens.refresh_token_ttl must be positive".into(),
            );
        }
        if !(256..=crate::http::form::MAX_BODY).contains(&file.limits.max_body_bytes) {
            return invalid(format!(
                "limits.max_body_bytes must be between 256 and {}",
                crate::http::form::MAX_BODY
            ));
        }
        // A device polls every `interval` (plus 5 s per slow_down): its connection must
        // outlive that gap comfortably.
        let idle_floor = 2 * d.interval * 1000;
        if file.limits.idle_timeout_ms < idle_floor {
            return invalid(format!(
                "limits.idle_timeout_ms ({}) must be at least twice device.interval ({idle_floor} ms), so a polling device keeps its connection",
                file.limits.idle_timeout_ms
            ));
        }
        if file.limits.header_read_timeout_ms == 0 {
            return invalid("limits.header_read_timeout_ms must be positive".into());
        }
        let q = &file.quotas;
        let rate = |name: &str, per_second: f64, burst: u32| {
            if !(per_second >= 0.0 && per_second.is_finite()) {
                return Err(ConfigError::Invalid(format!(
                    "quotas.{name}_rate must be a number of requests per second, 0 or more"
                )));
            }
            if per_second > 0.0 && burst == 0 {
                return Err(ConfigError::Invalid(format!(
                    "quotas.{name}_burst must be at least 1 when quotas.{name}_rate is set"
                )));
            }
            Ok((per_second > 0.0).then_some(Rate { per_second, burst }))
        };
        let quotas = QuotaPolicy {
            per_source: rate("per_source", q.per_source_rate, q.per_source_burst)?,
            per_client: rate("per_client", q.per_client_rate, q.per_client_burst)?,
            max_sources: q.max_sources,
        };
        if !(q.client_share > 0.0 && q.client_share <= 1.0) {
            return invalid(format!(
                "quotas.client_share ({}) must be more than 0 and at most 1",
                q.client_share
            ));
        }
        let max_sessions_per_client =
            ((d.max_sessions as f64 * q.client_share).ceil() as usize).clamp(1, d.max_sessions);
        if file.limits.password_hash_workers > MAX_PASSWORD_HASH_WORKERS {
            return invalid(format!(
                "limits.password_hash_workers ({}) must be at most {MAX_PASSWORD_HASH_WORKERS} \
                 (0: one per core); each holds one argon2 buffer (19 MiB at the default cost)",
                file.limits.password_hash_workers
            ));
        }
        let password_hash_workers = file.limits.resolved_password_hash_workers();
        let password_hash_queue = file
            .limits
            .password_hash_queue
            .unwrap_or(2 * password_hash_workers);
        if password_hash_queue > MAX_PASSWORD_HASH_QUEUE {
            return invalid(format!(
                "limits.password_hash_queue ({password_hash_queue}) must be at most \
                 {MAX_PASSWORD_HASH_QUEUE}: sign-ins beyond the workers should be told to \
                 retry, not wait in line"
            ));
        }
        if let Some(issuer) = &file.issuer {
            if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
                return invalid(format!(
                    "issuer \"{issuer}\" must be an absolute http(s) URL"
                ));
            }
            // RFC 8414 §2: the issuer has no query or fragment component.
            if issuer.contains(['?', '#']) {
                return invalid(format!(
                    "issuer \"{issuer}\" must not have a query or fragment (RFC 8414 §2)"
                ));
            }
        }
        if let Some(token) = &file.admin.token {
            if token.len() < 16 {
                return invalid("admin.token must be at least 16 characters".into());
            }
        }

        let mut scopes = ScopeRegistry::default();
        let mut clients = Vec::new();
        let mut index = ahash::AHashMap::new();
        for c in &file.clients {
            let at = format!("client \"{}\"", c.client_id);
            if c.client_id.is_empty() {
                return invalid("a client has an empty client_id".into());
            }
            let id = ClientId(
                u16::try_from(clients.len())
                    .map_err(|_| ConfigError::Invalid("more than 65535 clients".into()))?,
            );
            if index.insert(c.client_id.clone(), id).is_some() {
                return invalid(format!("{at} is configured twice"));
            }
            let secret_sha256 = match &c.secret_sha256 {
                None => None,
                Some(hex) => Some(parse_sha256_hex(hex).ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "{at}: secret_sha256 must be 64 hex digits (make one with `deviceflow-server hash-secret`)"
                    ))
                })?),
            };
            if secret_sha256.is_some() && c.auth_methods.is_empty() {
                return invalid(format!("{at} has a secret but no auth_methods"));
            }
            let mut allowed = ScopeSet::EMPTY;
            for s in &c.scopes {
                if s.is_empty() || !s.bytes().all(crate::protocol::scope::is_scope_char) {
                    return invalid(format!(
                        "{at}: \"{s}\" is not a valid scope token (RFC 6749 §3.3)"
                    ));
                }
                let bit = scopes.register(s).ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "more than {} distinct scopes",
                        crate::protocol::scope::MAX_SCOPES
                    ))
                })?;
                allowed.0 |= bit.0;
            }
            let default_scope = match &c.default_scopes {
                None => allowed,
                Some(list) => scopes
                    .parse(&list.join(" "), allowed)
                    .map_err(|e| ConfigError::Invalid(format!("{at}: default_scopes: {e}")))?,
            };
            let mut device_grant = false;
            let mut refresh_grant = false;
            for g in &c.grant_types {
                match g.as_str() {
                    GRANT_TYPE_DEVICE_CODE => device_grant = true,
                    GRANT_TYPE_REFRESH_TOKEN => refresh_grant = true,
                    other => {
                        return invalid(format!(
                            "{at}: grant type \"{other}\" is not served here (use \"{GRANT_TYPE_DEVICE_CODE}\" and/or \"{GRANT_TYPE_REFRESH_TOKEN}\")"
                        ))
                    }
                }
            }
            clients.push(Client {
                id,
                client_id: c.client_id.clone(),
                name: c.name.clone().unwrap_or_else(|| c.client_id.clone()),
                secret_sha256,
                auth_methods: if c.secret_sha256.is_some() {
                    c.auth_methods.clone()
                } else {
                    vec![]
                },
                allowed_scope: allowed,
                default_scope,
                device_grant,
                refresh_grant,
            });
        }
        let mut users = Vec::new();
        let mut user_index = HashMap::new();
        for u in &file.users {
            if u.username.is_empty() {
                return invalid("a user has an empty username".into());
            }
            let id = crate::accounts::users::UserId(
                u32::try_from(users.len())
                    .map_err(|_| ConfigError::Invalid("too many users".into()))?,
            );
            if user_index.insert(u.username.clone(), id).is_some() {
                return invalid(format!("user \"{}\" is configured twice", u.username));
            }
            if let Some(phc) = &u.password_hash {
                crate::verification::password::check(phc).map_err(|e| {
                    ConfigError::Invalid(format!(
                        "user \"{}\": password_hash {e} (make one with `deviceflow-server hash-password`)",
                        u.username
                    ))
                })?;
            }
            users.push(User {
                id,
                username: u.username.clone(),
                name: u.name.clone().unwrap_or_else(|| u.username.clone()),
                password_hash: u.password_hash.clone(),
            });
        }

        Ok(Settings {
            listen: file.listen,
            issuer: file.issuer.map(|i| i.trim_end_matches('/').to_owned()),
            expires_in_secs: d.expires_in,
            interval_secs: d.interval,
            poll: PollPolicy {
                slow_down: d.slow_down,
                tolerance_ms: d.poll_tolerance_ms,
                interval_ms: d.interval * 1000,
            },
            max_sessions: d.max_sessions,
            max_sessions_per_client,
            quotas,
            expired_retention_secs: d.expired_retention,
            access_token_ttl_secs: file.tokens.access_token_ttl,
            refresh_token_ttl_secs: file.tokens.refresh_token_ttl,
            max_body_bytes: file.limits.max_body_bytes,
            header_read_timeout_ms: file.limits.header_read_timeout_ms,
            idle_timeout_ms: file.limits.idle_timeout_ms,
            body_read_timeout_ms: file.limits.body_read_timeout_ms,
            password_hash_workers,
            password_hash_queue,
            admin_token: file.admin.token,
            clients: Clients::new(clients, index),
            users: Users::new(users, user_index),
            scopes,
        })
    }
}

fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_matches_the_fips_180_vector() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../deviceflow.example.toml");
        let s = Settings::from_file(FileConfig::parse(text, "deviceflow.example.toml").unwrap())
            .unwrap();
        assert!(s
            .clients
            .by_client_id("print-service")
            .is_some_and(|c| !c.is_public()));
        assert!(s.admin_token.is_some());
    }

    #[test]
    fn password_hashing_defaults_to_one_worker_per_core_and_a_queue_of_twice_that() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let s = Settings::from_file(FileConfig::parse("", "t.toml").unwrap()).unwrap();
        assert_eq!(
            (s.password_hash_workers, s.password_hash_queue),
            (cores, 2 * cores)
        );
        let text = "[limits]\npassword_hash_workers = 3";
        let s = Settings::from_file(FileConfig::parse(text, "t.toml").unwrap()).unwrap();
        assert_eq!((s.password_hash_workers, s.password_hash_queue), (3, 6));
        let text = "[limits]\npassword_hash_workers = 3\npassword_hash_queue = 0";
        let s = Settings::from_file(FileConfig::parse(text, "t.toml").unwrap()).unwrap();
        assert_eq!((s.password_hash_workers, s.password_hash_queue), (3, 0));
    }

    #[test]
    fn demo_configuration_is_valid() {
        let s = Settings::from_file(FileConfig::demo()).unwrap();
        assert!(s.clients.by_client_id("demo-device").unwrap().is_public());
        assert!(!s
            .clients
            .by_client_id("demo-confidential")
            .unwrap()
            .is_public());
        let demo = s.users.by_username("demo").unwrap();
        let phc = demo.password_hash.as_deref().unwrap();
        assert!(crate::verification::password::verify(
            phc,
            DEMO_USER_PASSWORD
        ));
    }

    #[test]
    fn a_full_file_parses() {
        let text = format!(
            r#"
            listen = "127.0.0.1:9000"
            issuer = "https://auth.example.test/"
            [device]
            expires_in = 900
            interval = 5
            poll_tolerance_ms = 250
            slow_down = "off"
            [admin]
            token = "0123456789abcdef0123"
            [[clients]]
            client_id = "tv"
            scopes = ["openid", "tv"]
            [[clients]]
            client_id = "backend"
            secret_sha256 = "{}"
            auth_methods = ["client_secret_basic"]
            scopes = ["tv"]
            grant_types = ["refresh_token"]
            [[users]]
            username = "alice"
            "#,
            sha256_hex("s3cret")
        );
        let s = Settings::from_file(FileConfig::parse(&text, "test.toml").unwrap()).unwrap();
        assert_eq!(s.issuer.as_deref(), Some("https://auth.example.test"));
        assert_eq!(s.poll.slow_down, SlowDownPolicy::Off);
        let backend = s.clients.by_client_id("backend").unwrap();
        assert!(!backend.device_grant);
        assert!(backend.refresh_grant);
        assert_eq!(s.scopes.format(backend.allowed_scope), "tv");
    }

    #[test]
    fn invalid_configurations_are_refused_with_the_field_named() {
        let cases = [
            ("[device]\ninterval = 0", "device.interval"),
            (
                "[device]\nexpires_in = 5\ninterval = 5",
                "shorter than device.expires_in",
            ),
            (
                "[[clients]]\nclient_id = \"a\"\n[[clients]]\nclient_id = \"a\"",
                "configured twice",
            ),
            (
                "[[clients]]\nclient_id = \"a\"\nsecret_sha256 = \"zz\"",
                "64 hex digits",
            ),
            (
                "[[clients]]\nclient_id = \"a\"\nscopes = [\"x\"]\ndefault_scopes = [\"y\"]",
                "default_scopes",
            ),
            (
                "[[clients]]\nclient_id = \"a\"\ngrant_types = [\"password\"]",
                "\"password\" is not served",
            ),
            ("issuer = \"auth.example\"", "absolute http(s) URL"),
            ("[admin]\ntoken = \"short\"", "admin.token"),
            ("[quotas]\nclient_share = 0", "quotas.client_share"),
            ("[quotas]\nclient_share = 1.5", "quotas.client_share"),
            ("[quotas]\nper_source_rate = -1", "quotas.per_source_rate"),
            ("[quotas]\nper_client_burst = 0", "quotas.per_client_burst"),
            (
                "[device]\ninterval = 30\n[limits]\nidle_timeout_ms = 30000",
                "limits.idle_timeout_ms",
            ),
            (
                "[limits]\npassword_hash_workers = 5000",
                "limits.password_hash_workers (5000) must be at most 1024",
            ),
            (
                "[limits]\npassword_hash_queue = 100000",
                "limits.password_hash_queue (100000) must be at most 65536",
            ),
            (
                "[[users]]\nusername = \"a\"\npassword_hash = \"hunter2\"",
                "user \"a\": password_hash is not a PHC string",
            ),
            (
                "[[users]]\nusername = \"a\"\npassword_hash = \"$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo\"",
                "only argon2id, argon2i and argon2d",
            ),
        ];
        for (text, expected) in cases {
            let file = FileConfig::parse(text, "t.toml").unwrap();
            let err = Settings::from_file(file).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?} gave {err:?}");
        }
    }

    #[test]
    fn unknown_fields_are_parse_errors_that_name_the_file() {
        let err = FileConfig::parse("[device]\nexpire_in = 5", "my.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("my.toml:"), "{msg}");
        assert!(msg.contains("expire_in"), "{msg}");
    }
}
