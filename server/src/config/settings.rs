//! The validated configuration the server runs on, and the validation that names the
//! field of every problem.

use std::collections::HashMap;
use std::net::SocketAddr;

use deviceflow_wire::{GRANT_TYPE_DEVICE_CODE, GRANT_TYPE_REFRESH_TOKEN};
use sha2::{Digest, Sha256};

use super::file::*;
use super::ConfigError;
use crate::accounts::clients::{Client, Clients};
use crate::accounts::password;
use crate::accounts::users::{User, Users};
use crate::http::forwarded::{self, TrustedProxies};
use crate::protocol::ids::{ClientId, UserId, FIRST_REGISTERED};
use crate::protocol::scope::{ScopeRegistry, ScopeSet};
use crate::protocol::session::{PollPolicy, MAX_EXPIRES_IN_SECS};
use crate::quota::{QuotaPolicy, Rate};
use crate::storage::store::StoreSettings;

/// The validated configuration the server runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Issuer and public base URL, without a trailing slash; `None` until bound.
    pub issuer: Option<String>,
    /// Where sessions, tokens and counters live.
    pub store: StoreConfig,
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
    /// Connections one source may hold open at once; 0: no cap.
    pub max_connections_per_source: u32,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// Host names the person's pages answer under besides the issuer's, IP addresses
    /// and names without a dot (lower case, no port).
    pub page_hosts: Vec<String>,
    /// Password hashing threads (resolved: never 0).
    pub password_hash_workers: usize,
    /// Sign-ins that may wait for a hashing thread.
    pub password_hash_queue: usize,
    /// The admin endpoint's bearer token; `None`: the endpoint is off.
    pub admin_token: Option<String>,
    /// RFC 7591 §3 initial access token; `None`: dynamic registration is off.
    pub initial_access_token: Option<String>,
    /// The configured clients (registered ones are in the store).
    pub clients: Clients,
    /// The people.
    pub users: Users,
    /// Every scope any client may ask for.
    pub scopes: ScopeRegistry,
}

impl Settings {
    /// What of these settings a store is built for.
    pub fn store_settings(&self) -> StoreSettings {
        StoreSettings {
            max_sessions: self.max_sessions,
            max_sessions_per_client: self.max_sessions_per_client,
            quotas: self.quotas,
            expired_retention_ms: self.expired_retention_secs * 1000,
            access_token_ttl_ms: self.access_token_ttl_secs * 1000,
            refresh_token_ttl_ms: self.refresh_token_ttl_secs * 1000,
            users: self.users.iter().map(|u| u.username.clone()).collect(),
            clients: self.clients.iter().map(|c| c.client_id.clone()).collect(),
        }
    }

    /// Whether the server listens on a loopback address and advertises one (or
    /// `localhost`) as its issuer: nothing beyond this machine reaches it.
    pub fn serves_this_machine_only(&self) -> bool {
        self.listen.ip().is_loopback() && self.issuer_host().is_none_or(is_loopback_host)
    }

    /// What to warn of when the issuer is plain `http://` on a host that is not
    /// loopback: devices and people would reach it without TLS.
    pub fn plain_http_warning(&self) -> Option<String> {
        let issuer = self.issuer.as_deref()?;
        (issuer.starts_with("http://") && !self.issuer_host().is_some_and(is_loopback_host)).then(|| {
            format!(
                "issuer {issuer} is plain http on a host others reach: devices must use TLS (RFC 8628 §3.1, checklist DA-14), and people type passwords on its pages; put TLS in front and set issuer to https://"
            )
        })
    }

    /// What to warn of when the server listens beyond this machine with no per-source
    /// connection cap and no reverse proxy named: one address can then hold every
    /// connection (file descriptor) the server has, by sending a request on each
    /// within the idle timeout.
    pub fn uncapped_warning(&self) -> Option<String> {
        (!self.listen.ip().is_loopback()
            && self.max_connections_per_source == 0
            && self.trusted_proxies.is_empty())
        .then(|| {
            format!(
                "listening on {} with no [limits] max_connections_per_source and no trusted_proxies: one address can hold every connection this server can open; set max_connections_per_source (a few hundred leaves room for NATs), or, behind a reverse proxy, name it in trusted_proxies",
                self.listen
            )
        })
    }

    /// Users whose password hashes cost different amounts to verify: a sign-in takes
    /// as long as its user's hash, and one with an unknown username as long as the
    /// first user's (`accounts::password::dummy_like`), so the time of an answer
    /// tells apart the usernames of another cost, and that they exist.
    pub fn mixed_costs_warning(&self) -> Option<String> {
        let mut costs: Vec<(String, Vec<&str>)> = Vec::new();
        for user in self.users.iter() {
            let Some(cost) = user.password_hash.as_deref().and_then(password::cost) else {
                continue;
            };
            match costs.iter_mut().find(|(c, _)| *c == cost) {
                Some((_, names)) => names.push(&user.username),
                None => costs.push((cost, vec![&user.username])),
            }
        }
        (costs.len() > 1).then(|| {
            let groups: Vec<String> = costs
                .iter()
                .map(|(cost, names)| {
                    let shown = names.iter().take(3).copied().collect::<Vec<_>>().join(", ");
                    let more = names.len().saturating_sub(3);
                    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                    format!("{shown}{more}: {cost}")
                })
                .collect();
            format!(
                "the users' password hashes have {} different argon2 costs ({}): a sign-in takes as long as its user's hash, and one with an unknown username as long as the first user's, so answer times tell which usernames exist; hash every password at one cost (`deviceflow-server hash-password`)",
                costs.len(),
                groups.join("; ")
            )
        })
    }

    /// Every warning the configuration earns: said by `check-config` and at start.
    pub fn warnings(&self) -> Vec<String> {
        [
            self.plain_http_warning(),
            self.uncapped_warning(),
            self.mixed_costs_warning(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The issuer's host (an IPv6 address without its brackets), if an issuer is set.
    fn issuer_host(&self) -> Option<&str> {
        let issuer = self.issuer.as_deref()?;
        let authority = issuer
            .split_once("://")
            .map_or(issuer, |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default();
        Some(match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.split(':').next().unwrap_or_default(),
        })
    }

    /// Validates a file configuration. Every problem is named with the field it is in.
    pub fn from_file(file: FileConfig) -> Result<Settings, ConfigError> {
        let d = &file.device;
        check_device_tokens_and_limits(&file)?;
        let (quotas, max_sessions_per_client) = quota_policy(&file.quotas, d.max_sessions)?;
        let (password_hash_workers, password_hash_queue) = password_hashing(&file.limits)?;
        check_issuer_and_admin(&file)?;
        let (clients, scopes) = clients(&file.clients)?;
        let users = users(&file.users)?;
        let store = StoreConfig::parse(&file.store)?;
        Ok(Settings {
            store,
            listen: file.listen,
            issuer: file.issuer,
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
            max_connections_per_source: file.limits.max_connections_per_source,
            trusted_proxies: trusted_proxies(&file.limits.trusted_proxies)?,
            page_hosts: page_hosts(&file.limits.page_hosts)?,
            password_hash_workers,
            password_hash_queue,
            admin_token: file.admin.token,
            initial_access_token: file.registration.initial_access_token,
            clients,
            users,
            scopes,
        })
    }
}

/// `limits.trusted_proxies`: each a CIDR block or one address.
fn trusted_proxies(entries: &[String]) -> Result<TrustedProxies, ConfigError> {
    entries
        .iter()
        .map(|entry| {
            forwarded::parse_trusted(entry.trim()).map_err(|why| {
                ConfigError::Invalid(format!("limits.trusted_proxies: {entry:?} {why}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(TrustedProxies::new)
}

/// `limits.page_hosts`: each a host name (RFC 1123 letters, digits, hyphens and
/// dots), without a scheme, port or path; kept in lower case.
fn page_hosts(entries: &[String]) -> Result<Vec<String>, ConfigError> {
    entries
        .iter()
        .map(|entry| {
            let host = entry.trim().trim_end_matches('.').to_ascii_lowercase();
            let valid = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if valid {
                Ok(host)
            } else {
                Err(ConfigError::Invalid(format!(
                    "limits.page_hosts: {entry:?} is not a host name (give the name alone, as in \"auth.internal.example\": no scheme, port or path)"
                )))
            }
        })
        .collect()
}

/// Where the store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// In this process (`"memory"`).
    Memory,
    /// Redis or a Redis Cluster, by its URL.
    Redis(String),
}

/// `localhost`, or a loopback address.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl StoreConfig {
    /// Reads the `store` setting.
    pub fn parse(value: &str) -> Result<StoreConfig, ConfigError> {
        let value = value.trim();
        if value == "memory" {
            return Ok(StoreConfig::Memory);
        }
        use crate::storage::redis::{
            CLUSTER_SCHEME, SENTINEL_SCHEME, TLS_CLUSTER_SCHEME, TLS_SENTINEL_SCHEME,
        };
        // The rest of a URL (a Sentinel URL's service) is read when connecting.
        let redis = value.starts_with("redis://")
            || value.starts_with("rediss://")
            || [
                CLUSTER_SCHEME,
                TLS_CLUSTER_SCHEME,
                SENTINEL_SCHEME,
                TLS_SENTINEL_SCHEME,
            ]
            .iter()
            .any(|scheme| {
                value
                    .strip_prefix(scheme)
                    .is_some_and(|nodes| nodes.split(',').any(|n| !n.trim().is_empty()))
            });
        if let Some(why) = crate::storage::redis::url_error(value) {
            return Err(ConfigError::Invalid(format!(
                "store \"{}\": {why}",
                crate::storage::redis::redacted(value)
            )));
        }
        if redis {
            return Ok(StoreConfig::Redis(value.to_owned()));
        }
        Err(ConfigError::Invalid(format!(
            "store \"{}\" is not a store: use \"memory\", \"redis://host:port\", \"redis+cluster://host:port,host:port\" or \"redis+sentinel://host:port,host:port/SERVICE\" (rediss… over TLS)",
            crate::storage::redis::redacted(value)
        )))
    }
}

impl std::fmt::Display for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreConfig::Memory => f.write_str("memory (this process; lost on restart)"),
            StoreConfig::Redis(url) => write!(f, "{}", crate::storage::redis::redacted(url)),
        }
    }
}

/// The longest lifetime (`device.expires_in`, `device.interval`,
/// `device.expired_retention`, the token lifetimes) a configuration may set: ten years.
pub const MAX_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

/// `[device]`, `[tokens]` and the timeouts of `[limits]`.
fn check_device_tokens_and_limits(file: &FileConfig) -> Result<(), ConfigError> {
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    let d = &file.device;
    if d.expires_in == 0 {
        return invalid("device.expires_in must be at least 1 second".into());
    }
    if d.interval == 0 {
        return invalid("device.interval must be at least 1 second (RFC 8628 §3.2)".into());
    }
    // Every lifetime is kept in milliseconds and added to the clock: bounded, neither
    // the product nor the sum can overflow (a u64::MAX wrapped to a token that
    // announced another lifetime, and panicked in a debug build).
    for (field, secs) in [
        ("device.expires_in", d.expires_in),
        ("device.interval", d.interval),
        ("device.expired_retention", d.expired_retention),
        ("tokens.access_token_ttl", file.tokens.access_token_ttl),
        ("tokens.refresh_token_ttl", file.tokens.refresh_token_ttl),
    ] {
        if secs > MAX_LIFETIME_SECS {
            return invalid(format!(
                "{field} ({secs}) must be at most {MAX_LIFETIME_SECS} seconds (ten years)"
            ));
        }
    }
    if d.expires_in > MAX_EXPIRES_IN_SECS {
        return invalid(format!(
            "device.expires_in ({}) must be at most {MAX_EXPIRES_IN_SECS} seconds (24 days): \
             a session paces its polls in milliseconds of 32 bits (RFC 8628 §3.2's codes \
             live minutes)",
            d.expires_in
        ));
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
    // 0 is no time at all, not "no limit": every body not in its head's packet got 408.
    if file.limits.body_read_timeout_ms == 0 {
        return invalid("limits.body_read_timeout_ms must be positive".into());
    }
    Ok(())
}

/// The slowest quota rate: one request a day.
const MIN_RATE_PER_SECOND: f64 = 1.0 / 86_400.0;

/// `[quotas]`: the policy, and the sessions one client may hold.
fn quota_policy(
    q: &QuotasConfig,
    max_sessions: usize,
) -> Result<(QuotaPolicy, usize), ConfigError> {
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    let rate = |name: &str, per_second: f64, burst: u32| {
        if !(per_second >= 0.0 && per_second.is_finite()) {
            return Err(ConfigError::Invalid(format!(
                "quotas.{name}_rate must be a number of requests per second, 0 or more"
            )));
        }
        // Slower than this, a refused device would be told to retry in years (and the
        // bucket's arithmetic would run past its milliseconds): 0 is the way to say off.
        if per_second > 0.0 && per_second < MIN_RATE_PER_SECOND {
            return Err(ConfigError::Invalid(format!(
                "quotas.{name}_rate ({per_second}) must be 0 (off) or at least one request a day ({MIN_RATE_PER_SECOND:.7} a second)"
            )));
        }
        if per_second > 0.0 && burst == 0 {
            return Err(ConfigError::Invalid(format!(
                "quotas.{name}_burst must be at least 1 when quotas.{name}_rate is set"
            )));
        }
        Ok((per_second > 0.0).then_some(Rate { per_second, burst }))
    };
    // 0 tracked sources is no per-source quota at all, which `per_source_rate = 0`
    // says: this one would turn it off without a word.
    if q.max_sources == 0 && q.per_source_rate > 0.0 {
        return invalid(
            "quotas.max_sources must be at least 1 (0 tracks no source, so no source is ever \
             limited); to turn the per-source quota off, set quotas.per_source_rate = 0"
                .into(),
        );
    }
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
        ((max_sessions as f64 * q.client_share).ceil() as usize).clamp(1, max_sessions);
    Ok((quotas, max_sessions_per_client))
}

/// The password hashing pool of `[limits]`: workers (0 resolved to the cores) and queue.
fn password_hashing(limits: &LimitsConfig) -> Result<(usize, usize), ConfigError> {
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    if limits.password_hash_workers > MAX_PASSWORD_HASH_WORKERS {
        return invalid(format!(
            "limits.password_hash_workers ({}) must be at most {MAX_PASSWORD_HASH_WORKERS} \
             (0: one per core); each holds one argon2 buffer (19 MiB at the default cost)",
            limits.password_hash_workers
        ));
    }
    let password_hash_workers = limits.resolved_password_hash_workers();
    let password_hash_queue = limits
        .password_hash_queue
        .unwrap_or(2 * password_hash_workers);
    if password_hash_queue > MAX_PASSWORD_HASH_QUEUE {
        return invalid(format!(
            "limits.password_hash_queue ({password_hash_queue}) must be at most \
             {MAX_PASSWORD_HASH_QUEUE}: sign-ins beyond the workers should be told to \
             retry, not wait in line"
        ));
    }
    Ok((password_hash_workers, password_hash_queue))
}

/// `issuer` (RFC 8414 §2) and `[admin]`.
fn check_issuer_and_admin(file: &FileConfig) -> Result<(), ConfigError> {
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    if let Some(issuer) = &file.issuer {
        // RFC 8414 §3.3: clients compare the metadata's issuer with theirs as strings, so
        // it is taken as written; the scheme as RFC 3986 §3.1 says to produce it.
        let scheme = issuer.split_once("://").map_or("", |(s, _)| s);
        if matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
            && scheme.bytes().any(|b| b.is_ascii_uppercase())
        {
            // Not echoed whole: it may hold userinfo, refused below.
            return invalid(format!(
                "issuer: write its scheme {scheme:?} in lower case ({}://…): clients compare \
                 the issuer as a string (RFC 8414 §3.3)",
                scheme.to_ascii_lowercase()
            ));
        }
        // RFC 9110 §4.2.4: no userinfo in an http(s) URI (it would be published in the
        // metadata). Any "@" is refused before the issuer is echoed anywhere: a
        // password holding a "/", "?" or "#" ends the authority early, and every other
        // message names the issuer.
        if issuer.contains('@') {
            return invalid(
                "issuer must not hold an \"@\": userinfo (user:password@) is not generated \
                 in an http(s) URI (RFC 9110 §4.2.4) and would be published in the metadata; \
                 elsewhere write it %40 (the issuer is not shown: it may hold a password)"
                    .into(),
            );
        }
        let authority = issuer
            .strip_prefix("https://")
            .or_else(|| issuer.strip_prefix("http://"))
            .map(|rest| rest.split('/').next().unwrap_or_default());
        // RFC 3986 §3.2.2: an absolute http(s) URL names a host; and no URL holds a
        // space or a control character (RFC 3986 §2).
        let has_host = authority.is_some_and(|a| !a.is_empty() && !a.starts_with(':'));
        if !has_host || !issuer.bytes().all(|b| b.is_ascii_graphic()) {
            return invalid(format!(
                "issuer {issuer:?} must be an absolute http(s) URL with a host"
            ));
        }
        // RFC 8414 §2: the issuer has no query or fragment component.
        if issuer.contains(['?', '#']) {
            return invalid(format!(
                "issuer \"{issuer}\" must not have a query or fragment (RFC 8414 §2)"
            ));
        }
        check_issuer_authority(scheme, authority.unwrap_or_default())?;
        // RFC 8414 §3.3 again: a client configured with `https://h/` compares it with the
        // metadata's issuer as a string. It had been trimmed to `https://h` without a
        // word, and such a client refused the metadata.
        if let Some(trimmed) = issuer.strip_suffix('/') {
            return invalid(format!(
                "issuer \"{issuer}\" must not end with \"/\": write \"{}\" (clients compare \
                 the metadata's issuer with theirs as strings, RFC 8414 §3.3, and the endpoints \
                 are named below it)",
                trimmed.trim_end_matches('/')
            ));
        }
    } else if file.listen.ip().is_unspecified() {
        // The issuer would be `http://0.0.0.0:PORT`, and so would the verification_uri
        // a person is told to open on a phone.
        return invalid(format!(
            "listen {} is every address of this host, which no phone can open: set issuer \
             (or --issuer, DEVICEFLOW_ISSUER) to the URL people and devices reach this \
             server at; it is advertised as the verification_uri (RFC 8628 §3.2)",
            file.listen
        ));
    }
    for (field, token) in [
        ("admin.token", &file.admin.token),
        (
            "registration.initial_access_token",
            &file.registration.initial_access_token,
        ),
    ] {
        let Some(token) = token else { continue };
        if token.len() < 16 {
            return invalid(format!("{field} must be at least 16 characters"));
        }
        if !is_presentable(token) {
            return invalid(format!(
                "{field} must be printable ASCII, without spaces at either end, as an Authorization header carries it"
            ));
        }
    }
    // Two powers, two credentials: the holder of the one that registers applications
    // would otherwise approve any code as anyone.
    if file.admin.token.is_some() && file.admin.token == file.registration.initial_access_token {
        return invalid(
            "registration.initial_access_token must differ from admin.token: whoever may \
             register applications could otherwise approve codes as anyone"
                .into(),
        );
    }

    Ok(())
}

/// The issuer's `host[:port]`, free of any "@" by then (named with its `scheme` in an
/// error): a port, if any, that a TCP connection can use.
fn check_issuer_authority(scheme: &str, authority: &str) -> Result<(), ConfigError> {
    let port = match authority.strip_prefix('[') {
        // An IP literal (RFC 3986 §3.2.2), then nothing or `:port`.
        Some(literal) => match literal.split_once(']') {
            Some((_, "")) => None,
            Some((_, rest)) => Some(rest.strip_prefix(':').unwrap_or(rest)),
            None => Some(literal),
        },
        None => authority.split_once(':').map(|(_, port)| port),
    };
    match port {
        // RFC 3986 §3.2.3: an empty port is the scheme's default.
        None | Some("") => Ok(()),
        Some(port)
            if port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u16>().is_ok_and(|p| p > 0) =>
        {
            Ok(())
        }
        Some(port) => Err(ConfigError::Invalid(format!(
            "issuer \"{scheme}://{authority}\" has port {port:?}: a port is a number from 1 to 65535"
        ))),
    }
}

/// `[[clients]]`: each validated, the scopes they name registered.
fn clients(configured: &[ClientConfig]) -> Result<(Clients, ScopeRegistry), ConfigError> {
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    let mut scopes = ScopeRegistry::default();
    let mut clients = Vec::new();
    let mut index = ahash::AHashMap::new();
    for c in configured {
        let at = format!("client \"{}\"", c.client_id);
        if c.client_id.is_empty() {
            return invalid("a client has an empty client_id".into());
        }
        // RFC 6749 Appendix A.1: client-id = *VSCHAR (%x20-7E).
        if !c.client_id.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return invalid(format!(
                "client {:?}: a client_id is printable ASCII only (RFC 6749 Appendix A.1)",
                c.client_id
            ));
        }
        // The indexes from FIRST_REGISTERED up are the registered clients'.
        let id = ClientId(
            u16::try_from(clients.len())
                .ok()
                .filter(|&i| i < FIRST_REGISTERED)
                .ok_or_else(|| {
                    ConfigError::Invalid(format!("more than {FIRST_REGISTERED} clients"))
                })?,
        );
        if ClientId::parse_registered(&c.client_id).is_some() {
            return invalid(format!(
                "{at}: client_ids of the form dfc<number>-… are those the server gives registered clients"
            ));
        }
        if index.insert(c.client_id.as_bytes().into(), id).is_some() {
            return invalid(format!("{at} is configured twice"));
        }
        clients.push(client(c, id, &at, &mut scopes)?);
    }
    Ok((Clients::new(clients, index), scopes))
}

/// One `[[clients]]` entry, its `client_id` already checked and given `id`: its
/// secret, scopes and grant types validated.
fn client(
    c: &ClientConfig,
    id: ClientId,
    at: &str,
    scopes: &mut ScopeRegistry,
) -> Result<Client, ConfigError> {
    let secret_sha256 = match &c.secret_sha256 {
        None => None,
        Some(hex) => Some(parse_sha256_hex(hex).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "{at}: secret_sha256 must be 64 hex digits (make one with `deviceflow-server hash-secret`)"
            ))
        })?),
    };
    if secret_sha256 == Some(Sha256::digest(b"").into()) {
        return Err(ConfigError::Invalid(format!(
            "{at}: secret_sha256 is the SHA-256 of an empty secret, which anyone can present"
        )));
    }
    if secret_sha256.is_some() && c.auth_methods.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "{at} has a secret but no auth_methods"
        )));
    }
    let allowed = allowed_scopes(&c.scopes, at, scopes)?;
    let default_scope = match &c.default_scopes {
        None => allowed,
        Some(list) => scopes
            .parse(&list.join(" "), allowed)
            .map_err(|e| ConfigError::Invalid(format!("{at}: default_scopes: {e}")))?,
    };
    let (device_grant, refresh_grant) = grant_types(&c.grant_types, at)?;
    Ok(Client {
        id,
        client_id: c.client_id.clone(),
        // RFC 8628 §5.4: the name is what the person approving reads, held to the rule
        // a registered application's is.
        name: match &c.name {
            Some(name) => crate::accounts::registration::check_name(name).map_err(|_| {
                ConfigError::Invalid(format!(
                    "{at}: name must be 1 to {} visible characters, none of them control, bidirectional formatting or invisible ones",
                    crate::accounts::registration::MAX_NAME_CHARS
                ))
            })?,
            None => c.client_id.clone(),
        },
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
    })
}

/// A client's `scopes`: each a valid scope token (RFC 6749 §3.3), registered, and
/// the set of them.
fn allowed_scopes(
    configured: &[String],
    at: &str,
    scopes: &mut ScopeRegistry,
) -> Result<ScopeSet, ConfigError> {
    let mut allowed = ScopeSet::EMPTY;
    for s in configured {
        if s.is_empty() || !s.bytes().all(crate::protocol::scope::is_scope_char) {
            return Err(ConfigError::Invalid(format!(
                "{at}: \"{s}\" is not a valid scope token (RFC 6749 §3.3)"
            )));
        }
        let bit = scopes.register(s).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "more than {} distinct scopes",
                crate::protocol::scope::MAX_SCOPES
            ))
        })?;
        allowed.0 |= bit.0;
    }
    Ok(allowed)
}

/// A client's `grant_types`: whether it may use the device code grant, and the
/// refresh token grant; any other is refused.
fn grant_types(configured: &[String], at: &str) -> Result<(bool, bool), ConfigError> {
    let mut device_grant = false;
    let mut refresh_grant = false;
    for g in configured {
        match g.as_str() {
            GRANT_TYPE_DEVICE_CODE => device_grant = true,
            GRANT_TYPE_REFRESH_TOKEN => refresh_grant = true,
            other => {
                return Err(ConfigError::Invalid(format!(
                    "{at}: grant type \"{other}\" is not served here (use \"{GRANT_TYPE_DEVICE_CODE}\" and/or \"{GRANT_TYPE_REFRESH_TOKEN}\")"
                )))
            }
        }
    }
    Ok((device_grant, refresh_grant))
}

/// `[[users]]`: each validated, with the index of their usernames.
fn users(configured: &[UserConfig]) -> Result<Users, ConfigError> {
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    let mut users = Vec::new();
    let mut user_index = HashMap::new();
    for u in configured {
        if u.username.is_empty() {
            return invalid("a user has an empty username".into());
        }
        // Typed at sign-in, where the spaces around what is typed are dropped.
        if u.username.trim() != u.username || u.username.chars().any(char::is_control) {
            return invalid(format!(
                "user {:?}: a username has no spaces around it and no control characters",
                u.username
            ));
        }
        let id = UserId(
            u32::try_from(users.len())
                .map_err(|_| ConfigError::Invalid("too many users".into()))?,
        );
        if user_index.insert(u.username.clone(), id).is_some() {
            return invalid(format!("user \"{}\" is configured twice", u.username));
        }
        if let Some(phc) = &u.password_hash {
            password::check(phc).map_err(|e| {
                ConfigError::Invalid(format!(
                    "user \"{}\": password_hash {e} (make one with `deviceflow-server hash-password`)",
                    u.username
                ))
            })?;
        }
        users.push(User {
            id,
            username: u.username.clone(),
            // Shown on the pages and by check-config: held to a client name's rule.
            name: match &u.name {
                Some(name) => crate::accounts::registration::check_name(name).map_err(|_| {
                    ConfigError::Invalid(format!(
                        "user \"{}\": name must be 1 to {} visible characters, none of them control, bidirectional formatting or invisible ones",
                        u.username.escape_debug(),
                        crate::accounts::registration::MAX_NAME_CHARS
                    ))
                })?,
                None => u.username.clone(),
            },
            password_hash: u.password_hash.clone(),
            admin: u.admin,
        });
    }

    Ok(Users::new(users, user_index))
}

/// Whether `token` can be sent as the credential of an `Authorization: Bearer` header
/// and come out of `endpoints::bearer` as it is.
/// Whether a bearer token can be presented, as `endpoints::bearer` reads it: the
/// header's text (RFC 9110 §5.5, visible ASCII and spaces), trimmed. A token with a
/// non-ASCII letter or an edge space could never be presented, and the endpoint would
/// refuse every request. Punctuation a password generator uses is fine, as are inner
/// spaces (a passphrase), and RFC 6750 §2.1's b64token. The `clients` command sends
/// what this accepts (it had refused inner spaces the server took).
pub fn is_presentable(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| (0x20..=0x7e).contains(&b)) && token.trim() == token
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
