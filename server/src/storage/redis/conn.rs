//! The connection to Redis: one server through a connection manager (named by its
//! address, or found through the Redis Sentinels that watch it), or a Redis Cluster,
//! behind one type ([`Conn`], in `link.rs`); and the two primitives every record goes
//! through, a read and a compare-and-set.
//!
//! Every kind reconnects by itself: while Redis is away a call fails within
//! [`CALL_TIMEOUT`] (never hangs a request), and the next call after it is back
//! succeeds. Every failure is [`Unavailable`], logged once per outage.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use redis::aio::ConnectionManagerConfig;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, Script, ServerErrorKind, Value};
use tokio::sync::Notify;

use super::codec::keys;
use super::link::{
    not_a_primary, Conn, CALL_TIMEOUT, CLUSTER_SCHEME, SENTINEL_SCHEME, TLS_CLUSTER_SCHEME,
    TLS_SENTINEL_SCHEME,
};
use super::sentinel::{self, Sentinels};
use crate::storage::shared_secret::SharedSecret;
use crate::storage::store::{Stored, Unavailable};

/// Why a store URL could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Not a URL this store understands.
    #[error("store \"{url}\": {why}")]
    Url {
        /// The URL as given, without its password.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// Redis did not answer.
    #[error("store \"{url}\": cannot reach Redis: {why}")]
    Unreachable {
        /// The URL as given, without its password.
        url: String,
        /// What the client said.
        why: String,
    },
    /// Redis answers, but the store cannot run on it: a replica, a Sentinel.
    #[error("store \"{url}\": {why}")]
    Unusable {
        /// The URL as given, without its password.
        url: String,
        /// What it is, and what to name instead.
        why: String,
    },
    /// The configuration names users or clients in another order than the records in
    /// this Redis were written with.
    #[error("store \"{url}\": {why}")]
    Roster {
        /// The URL as given, without its password.
        url: String,
        /// Which place changed, and how to go on.
        why: String,
    },
}

/// `url` with any password replaced, for messages and logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The seeds of a cluster URL's nodes (`host:port,host:port`), as `scheme://` URLs. The
/// client takes one set of credentials for the cluster, on every seed or on none, and
/// refused `:pw@h1,h2` ("Cannot use different password among initial nodes"): the
/// first node's credentials are given to the others, so that they are written once,
/// as for one Redis ([`url_error`] refuses them anywhere else). (A comma in a password
/// is written `%2C`.)
fn cluster_seeds(scheme: &str, nodes: &str) -> Vec<String> {
    let nodes: Vec<&str> = nodes
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let credentials = nodes
        .first()
        .and_then(|n| n.rsplit_once('@'))
        .map(|(c, _)| c);
    nodes
        .iter()
        .map(|n| match credentials {
            Some(c) if !n.contains('@') => format!("{scheme}://{c}@{n}"),
            _ => format!("{scheme}://{n}"),
        })
        .collect()
}

/// The first connection to `url` (shown as `shown`), within five call timeouts.
async fn first_connection<C>(
    connecting: impl std::future::Future<Output = Result<C, RedisError>>,
    shown: &str,
) -> Result<C, ConnectError> {
    let unreachable = |why: String| ConnectError::Unreachable {
        url: shown.to_owned(),
        why,
    };
    tokio::time::timeout(CALL_TIMEOUT * 5, connecting)
        .await
        .map_err(|_| unreachable("no answer in 5 s".into()))?
        .map_err(|e| unreachable(reason(shown, &e.to_string())))
}

/// What the client said (`said`) when a connection to `shown` failed, as one line,
/// followed by what to check ([`hint`]).
fn reason(shown: &str, said: &str) -> String {
    let why = one_line(shown, said);
    let trusted = deviceflow_device::tls::roots_named();
    format!("{why}{}", hint(shown, &why, trusted))
}

/// The scheme `shown` takes over TLS.
fn tls_scheme(shown: &str) -> &'static str {
    if shown.contains("+cluster://") {
        TLS_CLUSTER_SCHEME
    } else if shown.contains("+sentinel://") {
        TLS_SENTINEL_SCHEME
    } else {
        "rediss://"
    }
}

/// What the client's parser says of an answer that is not RESP: `Incompatible type -
/// Parse error at 1`, then a line `` Unexpected `N` `` for the byte where it stopped
/// and one for the first byte (the last line; one line only when both are the same).
const NOT_RESP: &str = "Incompatible type - Parse error at ";

/// `said` in one line: the parser's dump of an answer that is not RESP (a TLS
/// terminator's alert, an HTTP server's `400`) becomes what to check, wherever the
/// client put it (a cluster's and a Sentinel's errors wrap each node's), and any
/// other line break a space.
fn one_line(shown: &str, said: &str) -> String {
    let mut out = String::new();
    let mut rest = said;
    while let Some(at) = rest.find(NOT_RESP) {
        out.push_str(&rest[..at]);
        rest = &rest[at + NOT_RESP.len()..];
        // The position, then the `Unexpected` lines.
        rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        let mut bytes = Vec::new();
        while let Some(line) = rest
            .strip_prefix('\n')
            .unwrap_or(rest)
            .strip_prefix("Unexpected `")
        {
            let Some((n, after)) = line.split_once('`') else {
                break;
            };
            bytes.extend(n.parse::<u8>());
            rest = after;
        }
        rest = rest.strip_prefix('\n').unwrap_or(rest);
        out.push_str(&not_redis(shown, &bytes));
    }
    out.push_str(rest);
    out.trim_end().replace(['\r', '\n'], " ")
}

/// What to say of a port whose answer was not RESP, from the bytes the parser named
/// (the byte where it stopped, then the first).
fn not_redis(shown: &str, bytes: &[u8]) -> String {
    let first = bytes.last().copied();
    // A TLS record (RFC 8446 §5.1): 0x15 an alert (what a TLS server answers bytes
    // that are no handshake with), 0x16 a handshake.
    if matches!(first, Some(0x15 | 0x16)) && !shown.starts_with("rediss") {
        return format!("this port speaks TLS: use {}", tls_scheme(shown));
    }
    let answered = match bytes {
        [] => "something other than RESP".to_owned(),
        [only] => shown_bytes(&[*only]),
        [.., at, first] => shown_bytes(&[*first, *at]),
    };
    format!("this port does not speak Redis (it answered {answered}): check the host and port")
}

/// The first bytes of an answer, as text where they are printable ASCII (`"HT…"`),
/// else in hex (`0x00 0x00 …`).
fn shown_bytes(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("\"{}…\"", String::from_utf8_lossy(bytes))
    } else {
        let hex: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
        format!("{} …", hex.join(" "))
    }
}

/// What to check, after what the client said (`why`) when a first connection to
/// `shown` failed; `trusted`: which of SSL_CERT_FILE and SSL_CERT_DIR is set, if one
/// is. From the text, as the cluster client wraps the error of each seed in its own.
fn hint(shown: &str, why: &str, trusted: Option<&str>) -> String {
    let tls = shown.starts_with("rediss");
    let tls_scheme = tls_scheme(shown);
    let said = deviceflow_device::tls::hint_with(why, deviceflow_device::tls::Peer::Redis, trusted);
    let why = why.to_ascii_lowercase();
    if !said.is_empty() {
        said
    } else if why.contains("noauth") && why.contains("no sentinel answered") {
        " (a Sentinel asks for a password: write it in the URL, redis+sentinel://:PASSWORD@…; it goes to Redis, and to a Sentinel that asks for one, so Sentinels with a password other than Redis's are not supported)".into()
    } else if why.contains("cluster support disabled") {
        // Redis's own words for CLUSTER commands on a Redis that is no cluster.
        let single = if tls { "rediss" } else { "redis" };
        format!(" (this Redis is not a cluster: name it {single}://host:port)")
    } else if tls && why.contains("timed out") {
        " (no answer in time: a firewall, or a port that does not speak TLS: is this Redis's tls-port?)".into()
    } else if !tls
        && [
            "reset by peer",
            "broken pipe",
            "unexpected end",
            "connection closed",
        ]
        .iter()
        .any(|closed| why.contains(closed))
    {
        format!(" (closed without an answer: a Redis that speaks only TLS (use {tls_scheme}), or a proxy with no Redis behind it)")
    } else {
        String::new()
    }
}

/// Compare-and-set of one record: writes `ARGV[2]` (deletes it when empty) if the key
/// holds `ARGV[1]` (absent when empty), keeping its time to live when `ARGV[3]` is 0,
/// else setting it to `ARGV[3]` ms. Returns 1 if written. It knows no protocol rule:
/// the rules ran in Rust on the value read, and this only makes the write atomic.
const CAS: &str = r"
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  if ARGV[2] == '' then
    redis.call('DEL', KEYS[1])
  elseif ARGV[3] == '0' then
    redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  else
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  end
  return 1
end
return 0
";

/// Keys Redis must keep besides the shared secret, with the value this instance runs
/// on (see [`Redis::put_back`]).
pub(crate) type MustKeep = Vec<(&'static [u8], Vec<u8>)>;

/// A roster (`KEYS[1]`: the names records give users or clients by their place, a JSON
/// array) held to this instance's (`ARGV[1]`), in one step: written when missing
/// (`put`) or when this one extends it (`grown`), left when it is this one or extends
/// it (`same`); `conflict` with the first place (from 1) where the two name different
/// ones, and the roster's name there; `garbled` when it is no list of names. One step,
/// so that no instance writes between another's read and write.
const ROSTER: &str = r"
local ours = cjson.decode(ARGV[1])
local kept = redis.call('GET', KEYS[1])
if not kept then
  redis.call('SET', KEYS[1], ARGV[1])
  return {'put', 0, ''}
end
local ok, theirs = pcall(cjson.decode, kept)
if not ok or type(theirs) ~= 'table' or (#theirs == 0 and next(theirs) ~= nil) then
  return {'garbled', 0, ''}
end
for i = 1, math.min(#ours, #theirs) do
  if ours[i] ~= theirs[i] then
    if type(theirs[i]) ~= 'string' then
      return {'garbled', 0, ''}
    end
    return {'conflict', i, theirs[i]}
  end
end
if #ours > #theirs then
  redis.call('SET', KEYS[1], ARGV[1])
  return {'grown', 0, ''}
end
return {'same', 0, ''}
";

/// What [`ROSTER`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Roster {
    /// It agrees with this instance's (it was missing, or grew, or holds more).
    Agrees {
        /// Whether it was missing, and written.
        put_back: bool,
    },
    /// Another name at `place` (from 1): `theirs`.
    Conflict { place: usize, theirs: String },
    /// Not a list of names.
    Garbled,
}

impl Roster {
    fn read((what, place, theirs): (String, usize, String)) -> Roster {
        match what.as_str() {
            "put" => Roster::Agrees { put_back: true },
            "same" | "grown" => Roster::Agrees { put_back: false },
            "conflict" => Roster::Conflict { place, theirs },
            _ => Roster::Garbled,
        }
    }

    /// Holds `key` to `ours` (this instance's names, as JSON).
    pub(crate) async fn check(redis: &Redis, key: &[u8], ours: &[u8]) -> Stored<Roster> {
        let script = Script::new(ROSTER);
        redis
            .script(&script, &[key], &[ours])
            .await
            .map(Roster::read)
    }
}

/// The connection and its scripts.
pub(crate) struct Redis {
    /// The connection, and how many times it was opened again after a failover
    /// ([`Redis::reopen`]).
    conn: Arc<ArcSwap<(u64, Conn)>>,
    /// How to open one Redis's connection again: `None` for a cluster, whose client
    /// follows its primaries by itself, and for Sentinels, whose watch does.
    reopen: Option<Reopen>,
    /// For a primary the Sentinels name: tells their watch to ask them now.
    sentinels: Option<Arc<Notify>>,
    /// The primary the Sentinels named at start (`host:port`), for `check-config`.
    pub(super) named_at_start: Option<String>,
    cas: Script,
    /// Whether the last call failed, so that an outage is logged once, and its end.
    away: AtomicBool,
    /// When a refusal was last logged ([`Redis::note`]).
    refusal_said: std::sync::Mutex<Option<Instant>>,
    /// Whether a roster in Redis names another user or client at one of this
    /// instance's places ([`Redis::put_back`] checks): records written by the others
    /// would read as someone else's here, so every call is refused until it agrees.
    roster_conflict: Arc<AtomicBool>,
}

/// The least time between two log lines about refusals: while Redis refuses writes
/// and answers reads (full, or a replica at a failover), every request would say one.
const SAY_REFUSALS_EVERY: Duration = Duration::from_secs(10);

/// What [`Redis::reopen`] needs: the client (which resolves the host name again on
/// every connection), its settings, and when a connection was last opened again.
struct Reopen {
    client: redis::Client,
    config: ConnectionManagerConfig,
    shown: String,
    last: tokio::sync::Mutex<Option<Instant>>,
}

/// The settings of one Redis's connection manager: each call bounded by
/// [`CALL_TIMEOUT`], one retry, a short backoff.
fn single_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CALL_TIMEOUT))
        .set_response_timeout(Some(CALL_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500))
}

/// What is wrong with the form of a store URL, if anything: read with the
/// configuration, before any connection, for every form alike. `None` for what is no
/// Redis URL (the configuration says what is).
///
/// - A fragment: the client reads `#insecure` on `rediss://` as "check no
///   certificate", which this build cannot do (and a store holding every token should
///   not), and ignores any other on `redis://`; on a cluster it went to the last seed
///   only. Refused on every form. (A `#` in a password is written `%23`.)
/// - A query: `?db=2` was ignored by the client, and `?protocol=` is the server's
///   choice, not the URL's.
/// - Credentials after the first node of a cluster or a Sentinel URL: they are written
///   once, before the first node, and `h1:1,:pw@h2:2` read `h1:1,` as a user name and
///   dropped that node. (A cluster's nodes may each repeat the first one's.)
pub(crate) fn url_error(url: &str) -> Option<String> {
    let cluster = cluster_url(url);
    let sentinel = sentinel_url(url);
    if cluster.is_none()
        && sentinel.is_none()
        && !url.starts_with("redis://")
        && !url.starts_with("rediss://")
    {
        return None;
    }
    if let Some((_, fragment)) = url.split_once('#') {
        return Some(if fragment == "insecure" {
            INSECURE.to_owned()
        } else {
            "a store URL takes no fragment (\"#…\"; a \"#\" in a password is written %23)"
                .to_owned()
        });
    }
    // No query is this server's to take: the client ignores `?db=2` (the records went
    // to database 0) and reads `?protocol=` for a protocol the server chooses itself; a
    // Sentinel URL says so in its own words.
    if sentinel.is_none() && url.contains('?') {
        return Some(
            "a store URL takes no query (the database is a path, redis://host:port/2, and the protocol is the server's choice; a \"?\" in a password is written %3F)"
                .to_owned(),
        );
    }
    if cluster.is_none() && sentinel.is_none() {
        return single_url_error(url);
    }
    if let Some((scheme, nodes)) = cluster {
        if let Some(why) = nodes
            .split(',')
            .map(|n| n.rsplit_once('@').map_or(n, |(_, node)| node))
            .find_map(|n| port_error(n.split(['/', '?']).next().unwrap_or_default()))
        {
            return Some(why);
        }
        // The same credentials on every node say the same thing, and were always read.
        let credentials = |node: &str| node.rsplit_once('@').map(|(c, _)| c.to_owned());
        let mut nodes = nodes.split(',');
        let first = nodes.next().and_then(credentials);
        if nodes.any(|n| n.contains('@') && credentials(n) != first) {
            return Some(format!("the password is written once, before the first node: {scheme}+cluster://[USER:]PASSWORD@host:port,host:port (a \",\" in a password is written %2C)"));
        }
    }
    sentinel.and_then(|(scheme, rest)| Sentinels::parse(scheme, rest).err())
}

/// What is wrong with the form of a `redis://` or `rediss://` URL (one Redis): the
/// client said only "Redis URL did not parse" of a bad port, and "Invalid database
/// number" of a bad path.
fn single_url_error(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let node = authority
        .rsplit_once('@')
        .map_or(authority, |(_, node)| node);
    if node.contains(',') {
        return Some(format!(
            "{scheme}:// names one Redis (host:port); a cluster's seed nodes are named {scheme}+cluster://host:port,host:port, Sentinels {scheme}+sentinel://host:port,host:port/SERVICE"
        ));
    }
    if node.is_empty() {
        return Some(format!("name the Redis: {scheme}://host:port"));
    }
    if let Some(why) = port_error(node) {
        return Some(why);
    }
    let db = path
        .split('?')
        .next()
        .unwrap_or_default()
        .trim_start_matches('/');
    if !db.is_empty() && db.parse::<u32>().is_err() {
        return Some(format!(
            "the path is a database number ({scheme}://host:port/0), not \"{db}\""
        ));
    }
    None
}

/// What is wrong with the port of `host[:port]`, if anything (an IPv6 address in
/// brackets keeps its colons).
fn port_error(node: &str) -> Option<String> {
    let after_host = node.rsplit_once(']').map_or(node, |(_, rest)| rest);
    let (_, port) = after_host.rsplit_once(':')?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 => None,
        _ => Some(format!(
            "the port of \"{node}\" is not a number from 1 to 65535"
        )),
    }
}

/// Why `#insecure` is refused, and what to do instead.
const INSECURE: &str = "#insecure is not supported: Redis's certificate is always checked; to trust a private CA, name its certificate (PEM) in SSL_CERT_FILE";

/// A cluster URL's scheme for its nodes (`redis` or `rediss`) and its nodes.
fn cluster_url(url: &str) -> Option<(&'static str, &str)> {
    url.strip_prefix(CLUSTER_SCHEME)
        .map(|nodes| ("redis", nodes))
        .or_else(|| {
            url.strip_prefix(TLS_CLUSTER_SCHEME)
                .map(|nodes| ("rediss", nodes))
        })
}

/// A Sentinel URL's scheme for the primary (`redis` or `rediss`) and the rest.
fn sentinel_url(url: &str) -> Option<(&'static str, &str)> {
    url.strip_prefix(SENTINEL_SCHEME)
        .map(|rest| ("redis", rest))
        .or_else(|| {
            url.strip_prefix(TLS_SENTINEL_SCHEME)
                .map(|rest| ("rediss", rest))
        })
}

/// The least time between two connections opened again after `READONLY`: while a
/// host name still names the old primary, every call would otherwise open one.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

impl Redis {
    /// Connects to `url`: `redis://host:port[/db]` (one Redis),
    /// `redis+cluster://host:port,host:port,…` (a cluster's seed nodes) or
    /// `redis+sentinel://host:port,…/SERVICE[/db]` (the primary those Sentinels
    /// watch); over TLS, `rediss://`, `rediss+cluster://` and `rediss+sentinel://`.
    pub(crate) async fn connect(url: &str) -> Result<Redis, ConnectError> {
        let shown = redacted(url);
        let bad = |why: String| ConnectError::Url {
            url: shown.clone(),
            why,
        };
        // rustls needs its cryptography named where more than one is built in (the
        // workspace's HTTP clients bring aws-lc-rs); a second call changes nothing.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Roots SSL_CERT_FILE / SSL_CERT_DIR name that cannot be read were skipped
        // without a word, and Redis's certificate said to come from an unknown CA.
        if url.starts_with("rediss") {
            deviceflow_device::tls::named_roots_readable().map_err(|why| {
                ConnectError::Unreachable {
                    url: shown.clone(),
                    why,
                }
            })?;
        }
        if let Some(why) = url_error(url) {
            return Err(bad(why));
        }
        let mut reopen = None;
        let mut watch = None;
        let mut named_at_start = None;
        let conn = if let Some((scheme, nodes)) = cluster_url(url) {
            let nodes = cluster_seeds(scheme, nodes);
            if nodes.is_empty() {
                return Err(bad(
                    "a cluster URL names at least one node: redis+cluster://host:port,host:port"
                        .into(),
                ));
            }
            let client = ClusterClientBuilder::new(nodes)
                .connection_timeout(CALL_TIMEOUT)
                .response_timeout(CALL_TIMEOUT)
                .retries(2)
                .build()
                .map_err(|e| bad(e.to_string()))?;
            Conn::Cluster(first_connection(client.get_async_connection(), &shown).await?)
        } else if let Some((scheme, rest)) = sentinel_url(url) {
            let sentinels = Arc::new(Sentinels::parse(scheme, rest).map_err(bad)?);
            let config = single_config();
            let found = async {
                let named = sentinels.ask().await?;
                let conn = sentinels
                    .connect(&named.primary, &config)
                    .await
                    .map_err(|why| {
                        format!("the primary the Sentinels name, {}: {why}", named.primary)
                    })?;
                Ok::<_, String>((conn, named))
            };
            let unreachable = |why: String| ConnectError::Unreachable {
                url: shown.clone(),
                why,
            };
            let (conn, named) = tokio::time::timeout(CALL_TIMEOUT * 5, found)
                .await
                .map_err(|_| unreachable("no answer in 5 s".into()))?
                .map_err(|why| unreachable(reason(&shown, &why)))?;
            if !named.dissent.is_empty() {
                tracing::warn!(store = %shown, primary = %named.primary, dissent = %named.dissent.join("; "), "the Sentinels disagree on the primary: following the one most of them name, and moving only where more than half point (check that every Sentinel watches the same primary under this name)");
            }
            watch = Some((sentinels, config, named.primary.clone()));
            named_at_start = Some(named.primary);
            Conn::Single(conn)
        } else if url.starts_with("redis://") || url.starts_with("rediss://") {
            let client = redis::Client::open(url).map_err(|e| bad(e.to_string()))?;
            let config = single_config();
            let connecting = client.get_connection_manager_with_config(config.clone());
            let conn = Conn::Single(first_connection(connecting, &shown).await?);
            reopen = Some(Reopen {
                client,
                config,
                shown: shown.clone(),
                last: tokio::sync::Mutex::new(None),
            });
            conn
        } else {
            return Err(bad(
                "use \"memory\", redis://host:port, redis+cluster://host:port,host:port or redis+sentinel://host:port,host:port/SERVICE (rediss… over TLS)".into(),
            ));
        };
        let conn = Arc::new(ArcSwap::from_pointee((0, conn)));
        let sentinels = watch.map(|(sentinels, config, primary)| {
            sentinel::spawn_watch(sentinels, &conn, config, shown.clone(), primary)
        });
        let redis = Redis {
            conn,
            reopen,
            sentinels,
            named_at_start,
            cas: Script::new(CAS),
            away: AtomicBool::new(false),
            refusal_said: std::sync::Mutex::new(None),
            roster_conflict: Arc::default(),
        };
        // A first round trip, so that a wrong port or a Redis that refuses us (a
        // password it asks for, an ACL) is said at start-up, with what Redis said, not
        // at the first request.
        redis
            .query_at_start::<String>(&redis::cmd("PING"))
            .await
            .map_err(|why| ConnectError::Unreachable {
                url: shown.clone(),
                why: format!("PING: {}", reason(&shown, &why)),
            })?;
        // A replica refuses every write (or loses them at its next sync), so the
        // server would answer 503 to every device for as long as it ran. A cluster's
        // client sends writes to the primaries whatever node it was given. Where an
        // ACL refuses ROLE, the store's first write (READONLY) refuses a replica.
        if redis.reopen.is_some() {
            if let Ok(role) = redis
                .query_at_start::<Vec<Value>>(&redis::cmd("ROLE"))
                .await
            {
                if let Some(why) = not_a_primary(&role) {
                    return Err(ConnectError::Unusable { url: shown, why });
                }
            }
        }
        Ok(redis)
    }

    /// Notes the end of a call: an outage is logged when it starts and when it ends.
    /// A refusal (an error Redis answered: `OOM`, `READONLY`, `NOPERM`…) is no outage:
    /// other calls may succeed between two (reads, while writes are refused), so it is
    /// logged at most every [`SAY_REFUSALS_EVERY`] instead.
    fn note<T>(&self, result: Result<T, RedisError>) -> Stored<T> {
        match result {
            Ok(v) => {
                if self.away.swap(false, Ordering::Relaxed) {
                    tracing::warn!("the session store answers again");
                }
                Ok(v)
            }
            Err(e) if e.code().is_some() => {
                let mut said = self
                    .refusal_said
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if said.is_none_or(|at| at.elapsed() >= SAY_REFUSALS_EVERY) {
                    *said = Some(Instant::now());
                    tracing::warn!(error = %e, "Redis refused a call; answering 503 to what needs it (said at most every 10 s while it goes on)");
                }
                Err(Unavailable)
            }
            Err(e) => {
                if !self.away.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "the session store is unavailable; answering 503 until it is back");
                }
                Err(Unavailable)
            }
        }
    }

    /// Runs one call on the connection, within [`CALL_TIMEOUT`]. A call that finds
    /// the connection broken since the last one (Redis restarted) goes out once more:
    /// the connection is being re-established, and the retry waits for it, so the
    /// first request after Redis returns is answered, not refused.
    async fn call<T, F, Fut>(&self, attempt: F) -> Stored<T>
    where
        F: FnMut(Conn) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        if self.roster_conflict.load(Ordering::Relaxed) {
            return Err(Unavailable);
        }
        let result = self.call_raw(attempt).await;
        self.note(result)
    }

    /// [`call`](Self::call), with the error as the client gave it.
    async fn call_raw<T, F, Fut>(&self, mut attempt: F) -> Result<T, RedisError>
    where
        F: FnMut(Conn) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        let timed = |fut: Fut| async move {
            match tokio::time::timeout(CALL_TIMEOUT, fut).await {
                Ok(r) => r,
                Err(elapsed) => Err(RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    elapsed,
                ))),
            }
        };
        let lost = |r: &Result<T, RedisError>| matches!(r, Err(e) if !e.is_timeout() && (e.is_connection_dropped() || e.is_connection_refusal()));
        let (opened, conn) = self.current();
        let mut result = timed(attempt(conn)).await;
        if lost(&result) {
            result = timed(attempt(self.current().1)).await;
        }
        let replica =
            matches!(&result, Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly));
        if let Some(nudge) = &self.sentinels {
            // The primary was demoted, or is gone or silent: the Sentinels' watch
            // asks them now instead of at its next turn. This call fails at once
            // (503) rather than wait for a failover to end.
            if replica || lost(&result) || matches!(&result, Err(e) if e.is_timeout()) {
                nudge.notify_one();
            }
        } else if replica && self.reopen(opened).await {
            // Nothing was written (a replica refuses the first write, a script's too),
            // so the call may go out again.
            result = timed(attempt(self.current().1)).await;
        }
        result
    }

    /// The connection, and how many times it was opened again.
    fn current(&self) -> (u64, Conn) {
        let held = self.conn.load();
        (held.0, held.1.clone())
    }

    /// After `READONLY` on connection number `opened`: the Redis it reaches is a
    /// replica now. After a failover (a managed service's) the host name names the new
    /// primary, but a connection stays with the node it reached, and the connection
    /// manager opens a new one only when the old one breaks: every write would be
    /// refused until a restart. So a new connection is opened, at most once every
    /// [`REOPEN_EVERY`], by one call while the others wait for it. Whether there is
    /// one to try the call on. (Where Sentinels name the primary, their watch moves
    /// the connection instead: `sentinel.rs`.)
    async fn reopen(&self, opened: u64) -> bool {
        let Some(reopen) = &self.reopen else {
            return false;
        };
        let mut last = reopen.last.lock().await;
        if self.current().0 != opened {
            // Another call opened one while this one waited.
            return true;
        }
        if last.is_some_and(|at| at.elapsed() < REOPEN_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        let connecting = reopen
            .client
            .get_connection_manager_with_config(reopen.config.clone());
        match tokio::time::timeout(CALL_TIMEOUT, connecting).await {
            Ok(Ok(fresh)) => {
                self.conn.store(Arc::new((opened + 1, Conn::Single(fresh))));
                tracing::warn!(store = %reopen.shown, "Redis refused a write as a replica (a failover?): connected again, to whichever node the address names now");
                true
            }
            _ => false,
        }
    }

    /// A task that writes the shared secret back if its key is gone (`SET NX`), and
    /// holds each roster of `kept` to this instance's ([`ROSTER`]: put back when gone,
    /// grown when shorter), saying when it wrote one: Redis was flushed, or restarted
    /// without its data. A roster naming another user or client at one of this
    /// instance's places stops its calls until it agrees again.
    /// A secret that differs was drawn by an instance that started before this one put
    /// its own back: this instance takes it, so that the instances agree again (what
    /// was sealed with the old one, a sign-in form, a known browser, is refused as
    /// another store's). Quiet while Redis is away: the calls say it.
    pub(crate) fn put_back(
        &self,
        secret: SharedSecret,
        kept: Arc<MustKeep>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        const LOST: &str =
            "Redis had lost this key (flushed, or restarted without persistence): put back";
        /// One call, `None` when it failed or timed out.
        async fn call<T: FromRedisValue>(conn: &Conn, cmd: &Cmd) -> Option<T> {
            let mut c = conn.clone();
            match tokio::time::timeout(CALL_TIMEOUT, cmd.query_async(&mut c)).await {
                Ok(Ok(value)) => Some(value),
                _ => None,
            }
        }
        let conn = self.current().1;
        let roster_conflict = Arc::clone(&self.roster_conflict);
        async move {
            let ours = secret.get();
            let key = String::from_utf8_lossy(keys::SECRET);
            let set = redis::cmd("SET")
                .arg(keys::SECRET)
                .arg(&ours[..])
                .arg("NX")
                .clone();
            let Some(written) = call::<Option<String>>(&conn, &set).await else {
                return;
            };
            if written.is_some() {
                tracing::warn!(%key, "{LOST}");
            } else {
                let get = redis::cmd("GET").arg(keys::SECRET).clone();
                let Some(theirs) = call::<Option<Vec<u8>>>(&conn, &get).await else {
                    return;
                };
                match theirs.as_deref().map(<[u8; 32]>::try_from) {
                    Some(Ok(theirs)) if theirs != ours => {
                        secret.replace(theirs);
                        tracing::warn!(%key, "Redis had lost the shared secret, and an instance that started since drew another before this one put it back: this instance now runs on that one, as every instance does (sign-in forms and known-browser cookies sealed with the old one are refused)");
                    }
                    Some(Err(_)) => {
                        tracing::error!(%key, "holds something else than 32 bytes: this instance keeps its own, and an instance that starts now is refused");
                    }
                    _ => {}
                }
            }
            // A roster is held to this instance's in one step (ROSTER): put back when
            // missing, grown back when an instance with fewer names put its own back
            // first. One that names another user or client at a place (an instance
            // with another configuration started on the emptied Redis) stops this
            // instance's calls until it agrees again: what the others write names
            // people and clients by place, and here would read as someone else's.
            let script = Script::new(ROSTER);
            let mut conflict = None;
            for (key, value) in kept.iter() {
                let mut c = conn.clone();
                let mut invocation = script.prepare_invoke();
                invocation.key(*key).arg(value);
                let found = tokio::time::timeout(CALL_TIMEOUT, invocation.invoke_async(&mut c));
                let Ok(Ok(found)) = found.await else {
                    return;
                };
                let shown = String::from_utf8_lossy(key);
                match Roster::read(found) {
                    Roster::Agrees { put_back: true } => tracing::warn!(key = %shown, "{LOST}"),
                    Roster::Agrees { put_back: false } => {}
                    Roster::Conflict { place, theirs } => {
                        conflict = Some(format!(
                            "{shown} names \"{theirs}\" at place {place}, where this instance's configuration has another: an instance with another configuration wrote it after Redis lost its records; answering 503 to everything until they agree (stop that instance, then DEL {shown}: this one writes its own back)"
                        ));
                    }
                    Roster::Garbled => {
                        conflict = Some(format!(
                            "{shown} is not a list of names: answering 503 to everything until it is this instance's again (or delete the key)"
                        ));
                    }
                }
            }
            match conflict {
                Some(why) => {
                    // Said when found; the 503s and /metrics' deviceflow_store_up 0 go on
                    // saying it.
                    if !roster_conflict.swap(true, Ordering::Relaxed) {
                        tracing::error!("{why}");
                    }
                }
                None => {
                    if roster_conflict.swap(false, Ordering::Relaxed) {
                        tracing::warn!("the user and client rosters in Redis agree with this instance's again: serving");
                    }
                }
            }
        }
    }

    /// Runs one command at start-up: an error is what Redis (or the client) said,
    /// for the one line the operator reads. Redis never repeats a password in an error.
    pub(crate) async fn query_at_start<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, String> {
        self.query_raw(cmd).await.map_err(|e| e.to_string())
    }

    /// Runs one command, with the error as the client gave it and no outage noted:
    /// for what Redis may refuse (an ACL, a replica) without being away.
    pub(crate) async fn query_raw<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, RedisError> {
        self.call_raw(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// [`query_raw`](Self::query_raw) on the primary that holds `key`: on a cluster, a
    /// command without a key goes to a node of the client's choice, and what it
    /// answers (`TIME`) would change from call to call.
    pub(crate) async fn query_raw_at<T: FromRedisValue>(
        &self,
        key: &[u8],
        cmd: &Cmd,
    ) -> Result<T, RedisError> {
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(
            key,
            SlotAddr::Master,
        )));
        let value = self
            .call_raw(|conn| {
                let route = route.clone();
                async move {
                    match conn {
                        Conn::Single(mut c) => cmd.query_async::<Value>(&mut c).await,
                        Conn::Cluster(mut c) => c.route_command(cmd.clone(), route).await,
                    }
                }
            })
            .await?;
        T::from_redis_value(value).map_err(RedisError::from)
    }

    /// [`query_raw`](Self::query_raw) on every primary (one Redis: on it), each one's
    /// answer apart, a refusal included.
    pub(crate) async fn query_raw_everywhere(&self, cmd: &Cmd) -> Result<Vec<Value>, RedisError> {
        let route = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
        self.call_raw(|conn| {
            let route = route.clone();
            async move {
                match conn {
                    Conn::Single(mut c) => Ok(vec![cmd.query_async::<Value>(&mut c).await?]),
                    Conn::Cluster(mut c) => match c.route_command(cmd.clone(), route).await? {
                        // Each primary's answer under its address.
                        Value::Map(answers) => Ok(answers.into_iter().map(|(_, v)| v).collect()),
                        other => Ok(vec![other]),
                    },
                }
            }
        })
        .await
    }

    /// Runs one command.
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Stored<T> {
        self.call(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Runs `script` with `keys` and `args`.
    pub(crate) async fn script<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Stored<T> {
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(*k);
        }
        for a in args {
            invocation.arg(*a);
        }
        let invocation = &invocation;
        self.call(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    /// The value of `key`, if any.
    pub(crate) async fn get(&self, key: &[u8]) -> Stored<Option<Vec<u8>>> {
        self.query(redis::cmd("GET").arg(key)).await
    }

    /// `SET key value PX ttl_ms`: writes a record with its time to live (at least a
    /// millisecond).
    pub(crate) async fn set_px(&self, key: &[u8], value: &[u8], ttl_ms: u64) -> Stored<()> {
        self.query(
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ttl_ms.max(1)),
        )
        .await
    }

    /// Compare-and-set (see [`CAS`]): `expected` `None` means absent, `new` `None`
    /// deletes; `ttl_ms` `None` keeps the key's time to live. True if written.
    pub(crate) async fn cas(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl_ms: Option<u64>,
    ) -> Stored<bool> {
        let ttl = ttl_ms.map_or(0, |t| t.max(1)).to_string();
        let written: i64 = self
            .script(
                &self.cas,
                &[key],
                &[
                    expected.unwrap_or_default(),
                    new.unwrap_or_default(),
                    ttl.as_bytes(),
                ],
            )
            .await?;
        Ok(written == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_errors_get_the_hint_that_fits_them() {
        // helper-85: a plain Redis named as a cluster said only Redis's words.
        let plain = "An error was signalled by the server - ResponseError: This instance has cluster support disabled";
        assert_eq!(
            hint("redis+cluster://h:1,h:2", plain, None),
            " (this Redis is not a cluster: name it redis://host:port)"
        );
        assert!(hint("rediss+cluster://h:1", plain, None).contains("rediss://host:port"));
        let unknown = "invalid peer certificate: UnknownIssuer";
        assert!(hint("rediss://h:1", unknown, None)
            .contains("name that CA's certificate in SSL_CERT_FILE"));
        assert_eq!(
            hint("rediss://h:1", unknown, Some("SSL_CERT_DIR")),
            " (no CA certificate in SSL_CERT_DIR signed Redis's, or Redis does not send its intermediate CA certificates: name the root CA there, or have Redis send its whole chain)"
        );
        let name = r#"invalid peer certificate: certificate not valid for name "127.0.0.1"; certificate is only valid for DnsName("localhost")"#;
        assert_eq!(
            hint("rediss://127.0.0.1:1", name, Some("SSL_CERT_FILE")),
            " (name Redis by a host or address its certificate lists)"
        );
        assert!(hint("rediss://h:1", "timed out", None)
            .contains("a firewall, or a port that does not speak TLS"));
        assert_eq!(hint("redis://h:1", "timed out", None), "");
        assert!(hint(
            "redis://h:1",
            "Connection reset by peer (os error 104)",
            None
        )
        .contains("(use rediss://), or a proxy with no Redis behind it"));
        assert!(hint(
            "redis+cluster://h:1,h:2",
            "Failed to create initial connections - Io: broken pipe",
            None
        )
        .contains("(use rediss+cluster://)"));
        assert_eq!(
            hint("redis://h:1", "Connection refused (os error 111)", None),
            ""
        );
        assert!(hint(
            "rediss+cluster://h:1",
            "Failed to create initial connections - Io: timed out",
            None
        )
        .contains("tls-port"));
    }

    #[test]
    fn a_clusters_credentials_written_once_go_to_every_seed() {
        assert_eq!(
            cluster_seeds("redis", ":pw@h1:7000, h2:7001,,h3:7002"),
            [
                "redis://:pw@h1:7000",
                "redis://:pw@h2:7001",
                "redis://:pw@h3:7002"
            ]
        );
        assert_eq!(
            cluster_seeds("redis", "u:p%40s@h1:1,u:p%40s@h2:2"),
            ["redis://u:p%40s@h1:1", "redis://u:p%40s@h2:2"]
        );
        assert_eq!(
            cluster_seeds("redis", "h1:1,h2:2"),
            ["redis://h1:1", "redis://h2:2"]
        );
        assert!(cluster_seeds("redis", " , ").is_empty());
        assert_eq!(
            cluster_seeds("rediss", ":pw@h1:1,h2:2"),
            ["rediss://:pw@h1:1", "rediss://:pw@h2:2"]
        );
    }

    /// What the client's parser says of `answer`, as it says it of a first answer.
    fn parser_says(answer: &[u8]) -> String {
        redis::parse_redis_value(answer)
            .map(|v| panic!("{answer:?} parsed as {v:?}"))
            .unwrap_err()
            .to_string()
    }

    /// A port that is not Redis's printed the parser's dump on three lines
    /// (`Incompatible type - Parse error at 1` / ``Unexpected `3` `` / ``Unexpected
    /// `21` ``): it is said in one line that names what to check.
    #[test]
    fn an_answer_that_is_not_resp_is_said_in_one_line() {
        let alert = parser_says(b"\x15\x03\x03\x00\x02\x02\x32");
        assert!(alert.contains('\n'), "{alert:?}");
        assert_eq!(
            one_line("redis://h:1", &alert),
            "this port speaks TLS: use rediss://"
        );
        let handshake = parser_says(b"\x16\x03\x01\x00\x05");
        assert_eq!(
            one_line(
                "redis+sentinel://h:1/svc",
                &format!("no Sentinel answered: h:1 ({handshake})")
            ),
            "no Sentinel answered: h:1 (this port speaks TLS: use rediss+sentinel://)"
        );
        let http = parser_says(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        assert_eq!(
            one_line("redis+cluster://h:1", &format!("Failed to create initial connections - {http}")),
            "Failed to create initial connections - this port does not speak Redis (it answered \"HT…\"): check the host and port"
        );
        assert_eq!(
            one_line("redis://h:1", &parser_says(b"\0\0\0\0")),
            "this port does not speak Redis (it answered 0x00 …): check the host and port"
        );
        // Through TLS, an alert is no reason to name rediss:// again.
        assert!(one_line("rediss://h:1", &alert)
            .contains("does not speak Redis (it answered 0x15 0x03 …)"));
        assert_eq!(
            one_line("redis://h:1", "Connection refused (os error 111)"),
            "Connection refused (os error 111)"
        );
        assert_eq!(one_line("redis://h:1", "one\ntwo\n"), "one two");
    }

    /// `#insecure` failed at the first connection ("Cannot create insecure client
    /// without tls-rustls-insecure feature - InvalidClientConfig"), and any other
    /// fragment went unread on `redis://` and to the last seed only on a cluster.
    #[test]
    fn a_fragment_is_refused_on_every_form_and_insecure_says_what_to_do_instead() {
        for url in [
            "rediss://h:1/#insecure",
            "rediss://h:1#insecure",
            "redis://h:1/#insecure",
            "rediss+cluster://h:1,h:2/#insecure",
            "rediss+sentinel://h:1/svc#insecure",
        ] {
            assert_eq!(url_error(url).as_deref(), Some(INSECURE), "{url}");
        }
        for url in [
            "redis://h:1/#x",
            "redis+cluster://h:1,h:2#x",
            "redis+sentinel://h:1/svc#x",
        ] {
            assert!(
                url_error(url)
                    .unwrap()
                    .starts_with("a store URL takes no fragment"),
                "{url}"
            );
        }
        assert!(INSECURE.contains("SSL_CERT_FILE"));
        assert_eq!(url_error("rediss://:p%23w@h:1/0"), None);
        // A query was ignored: `?db=2` wrote to database 0.
        for url in [
            "redis://h:1?db=2",
            "rediss://h:1/0?protocol=resp3",
            "redis+cluster://h:1,h:2?x",
        ] {
            assert!(
                url_error(url)
                    .unwrap()
                    .starts_with("a store URL takes no query"),
                "{url}"
            );
        }
        assert_eq!(url_error("redis://:p%3Fw@h:1/2"), None);
        assert_eq!(url_error("memory"), None, "not a Redis URL");
    }

    /// A bad port, a path that is no database and a list of nodes on `redis://` were
    /// said as "Redis URL did not parse - InvalidClientConfig" (helper-85).
    #[test]
    fn a_bad_port_database_or_node_list_says_what_is_wrong() {
        for (url, said) in [
            ("redis://127.0.0.1:notaport", "the port of \"127.0.0.1:notaport\" is not a number from 1 to 65535"),
            ("redis://127.0.0.1:70000/0", "the port of \"127.0.0.1:70000\" is not a number"),
            ("rediss://u:p@h:0", "the port of \"h:0\" is not a number"),
            ("redis://h:1,h:2", "redis:// names one Redis (host:port); a cluster's seed nodes are named redis+cluster://host:port,host:port"),
            ("redis://h:1/abc", "the path is a database number (redis://host:port/0), not \"abc\""),
            ("redis://", "name the Redis: redis://host:port"),
            ("redis+cluster://h:1,h:x", "the port of \"h:x\" is not a number"),
            ("redis+cluster://:pw@h:1,h:99999/", "the port of \"h:99999\" is not a number"),
        ] {
            let why = url_error(url).unwrap_or_default();
            assert!(why.starts_with(said), "{url}: {why}");
        }
        for url in [
            "redis://127.0.0.1:6379",
            "redis://127.0.0.1",
            "redis://h:1/",
            "redis://h:1/5",
            "rediss://u:p%2F@h:1/0",
            "redis://[::1]:6379/0",
            "redis+cluster://h:1,h:2/",
        ] {
            assert_eq!(url_error(url), None, "{url}");
        }
    }

    /// `redis+cluster://h1:1,:pw@h2:2` read `h1:1,` as a user name and dropped that
    /// node; so did a Sentinel URL.
    #[test]
    fn credentials_are_refused_anywhere_but_before_the_first_node() {
        assert_eq!(url_error("redis+cluster://:pw@h1:1,h2:2"), None);
        assert_eq!(url_error("redis+cluster://u:p%2Cw@h1:1,h2:2"), None);
        assert_eq!(url_error("redis+cluster://u:p@h1:1,u:p@h2:2"), None);
        for url in [
            "redis+cluster://127.0.0.1:9,:pw@127.0.0.1:6379",
            "redis+cluster://u:p@h1:1,u:q@h2:2",
        ] {
            assert!(
                url_error(url)
                    .unwrap()
                    .starts_with("the password is written once, before the first node: redis+cluster://[USER:]PASSWORD@host:port,"),
                "{url}"
            );
        }
        assert!(url_error("rediss+cluster://h1:1,:pw@h2:2")
            .unwrap()
            .contains("rediss+cluster://[USER:]PASSWORD@"));
        assert_eq!(url_error("redis+sentinel://u:pw@h1:1,h2:2/svc"), None);
        assert_eq!(url_error("redis+sentinel://h1:1,h2:2/svc@x"), None);
        assert!(url_error("redis+sentinel://127.0.0.1:9,:pw@127.0.0.1:26379/svc")
            .unwrap()
            .starts_with("the password is written once, before the first Sentinel: redis+sentinel://[USER:]PASSWORD@"));
    }

    #[test]
    fn a_sentinel_url_s_form_is_read_with_the_configuration() {
        assert_eq!(url_error("redis+sentinel://:pw@h:1/svc/2"), None);
        assert_eq!(url_error("rediss+sentinel://h/svc"), None);
        assert!(url_error("redis+sentinel://h:1")
            .unwrap()
            .starts_with("name the service the Sentinels watch"));
        assert!(url_error("redis://h:1/x")
            .unwrap()
            .starts_with("the path is a database number"));
        assert_eq!(
            redacted("redis+sentinel://:hunter2@h:1,h:2/svc"),
            "redis+sentinel://***@h:1,h:2/svc"
        );
    }

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redacted("redis://user:hunter2@127.0.0.1:6379/0"),
            "redis://***@127.0.0.1:6379/0"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
