//! The shared store: one Redis, or a Redis Cluster, that several instances use as one.
//! Nothing is lost when an instance restarts, and any instance can answer for a code
//! another issued.
//!
//! Every record is one key (see `codec.rs`), and every rule runs in Rust, the same
//! code as in memory: a call reads the record, decides with `Session::poll` (or the
//! token, limit or quota rule), and writes the result back with a compare-and-set
//! script that only checks the record is still the one it read (`conn.rs`). A lost
//! race reads again and decides again, so of 64 polls racing for one approved code on
//! any number of instances exactly one redeems it. A poll is two round trips: `GET`,
//! then the compare-and-set (`EVALSHA`) when the session changed.
//!
//! Expiry is Redis's: each record is written with its time to live, so nothing scans
//! live keys. The session cap is a sorted set of the sessions held, scored by when
//! each may be forgotten; creating a session trims what fell due and counts, in one
//! script.

mod codec;
mod conn;
mod link;
mod sentinel;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rand::RngCore;
use redis::{ErrorKind, FromRedisValue, Script, ServerErrorKind, Value};

pub(crate) use conn::url_error;
pub use conn::{redacted, ConnectError};
pub use link::{CLUSTER_SCHEME, SENTINEL_SCHEME, TLS_CLUSTER_SCHEME, TLS_SENTINEL_SCHEME};

use self::codec::{keys, Kept, Record};
use self::conn::{MustKeep, Redis, Roster};
use crate::accounts::registration::{NameKeys, Registered};
use crate::accounts::users::Credential;
use crate::clock::Millis;
use crate::protocol::device_code::{DeviceCode, Secret};
use crate::protocol::ids::ClientId;
use crate::protocol::ids::UserId;
use crate::protocol::scope::ScopeSet;
use crate::protocol::session::{DecideError, Decision, PollOutcome, PollPolicy, Session, State};
use crate::protocol::token::{new_token, parse_token};
use crate::protocol::user_code::UserCode;
use crate::quota::{Bucket, QuotaPolicy, Rate, Refusal, Source};
use crate::storage::rate_limit::{Key, Throttled, Ticket, Window};
use crate::storage::shared_secret::SharedSecret;
use crate::storage::store::{
    Census, CreateError, SessionInfo, Store, StoreSettings, Stored, SweepStats, Unavailable,
};
use crate::storage::tokens::{
    AccessRecord, Grant, Introspection, Issued, IssuedToAnother, RefreshError, RefreshRecord,
    REFRESH_PACE,
};
use crate::storage::web_sessions::{
    Full, SessionId, WebSession, MAX_SESSIONS_PER_USER, SIGNED_IN_TTL_MS,
};

/// Times a fresh user code is drawn before the store gives up (as in memory).
const CREATE_ATTEMPTS: usize = 8;

/// Times a compare-and-set is retried after losing a race before the call gives up:
/// far more than 64 pollers racing for one code need (each loss means another call
/// won, and a redeemed session is never written again).
const MAX_RACES: usize = 256;

/// Family records: "0" live, "1" revoked.
const FAMILY_LIVE: &[u8] = b"0";
const FAMILY_REVOKED: &[u8] = b"1";

/// What [`RedisStore::mark_delivered`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Marked: no later poll finishes this redemption again.
    Marked,
    /// Not marked: an earlier build's record, whose family's record guards the
    /// redemption.
    Unmarked,
    /// The redemption is another family's now: this one's tokens must not go out.
    Moved,
}

/// How long after a redemption the device's retry may still finish it when the
/// redeeming poll's write landed after the poll answered 503 (see `poll`): a device
/// retries after the `Retry-After` of seconds; a poll later than this is a replay.
const INTERRUPTED_REDEMPTION_GRACE_MS: Millis = 60_000;

/// Admits a session under the cap: trims sessions whose time is over, then counts
/// (KEYS: all held, the client's held; ARGV: now, when this one may be forgotten,
/// its member, the cap, the client's share or 0). 0: admitted; 1: full; 2: the
/// client's share is full. A counter, not a protocol rule. Each set lives until its
/// last member may be forgotten (`keep`: a time to live from now, so no clock but
/// this instance's is read), so a client's set outlives neither its sessions nor the
/// client (one deleted left its set behind for good).
const HOLD: &str = r"
local function keep(key)
  local ttl = math.max(tonumber(ARGV[2]) - tonumber(ARGV[1]), 1)
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 1 end
if ARGV[5] ~= '0' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 2 end
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  keep(KEYS[2])
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
keep(KEYS[1])
return 0
";

/// What an update does to the record it read.
enum Change<T> {
    /// Leave it.
    Keep,
    /// Write this, keeping the key's time to live (`None`) or setting it.
    Put(T, Option<Millis>),
    /// Remove it.
    Delete,
}

/// Gives a client a name's keys unless another holds one (KEYS: the names hash; ARGV:
/// [`keys::NAMES_COMPLETE`], the client's index, then the keys). Returns the other's
/// index, nil once given, -1 (giving nothing) while the hash lacks that field (the
/// registered clients' names must be put back first), or -2 when a holder is no index.
const CLAIM_NAME: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return -1
end
for i = 3, #ARGV do
  local holder = redis.call('HGET', KEYS[1], ARGV[i])
  if holder and holder ~= ARGV[2] then
    return tonumber(holder) or -2
  end
end
for i = 3, #ARGV do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[2])
end
return false
";

/// Takes back those of a name's keys that a client holds (KEYS and ARGV as
/// [`CLAIM_NAME`]'s).
const RELEASE_NAME: &str = r"
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[2] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return false
";

/// Puts registered clients' names back (KEYS: the names hash; ARGV: the field that
/// marks the hash complete, set at the end, or empty; then for each client its index,
/// how many keys, then the keys): each key a client does not hold is given to it
/// unless another holds it. Returns how many keys another held.
const PUT_NAMES_BACK: &str = r"
local i, held = 2, 0
while i <= #ARGV do
  local id, n = ARGV[i], tonumber(ARGV[i + 1])
  for k = i + 2, i + 1 + n do
    if redis.call('HSETNX', KEYS[1], ARGV[k], id) == 0 and redis.call('HGET', KEYS[1], ARGV[k]) ~= id then
      held = held + 1
    end
  end
  i = i + 2 + n
end
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], 1)
end
return held
";

/// The Redis store. See the module's documentation.
pub struct RedisStore {
    redis: Redis,
    hold: Script,
    claim_name: Script,
    release_name: Script,
    put_names_back: Script,
    /// Sessions held at most (`device.max_sessions`).
    max_sessions: usize,
    /// Sessions one client may hold, when less than the cap.
    max_per_client: Option<usize>,
    retention_ms: Millis,
    access_ttl_ms: Millis,
    refresh_ttl_ms: Millis,
    quotas: QuotaPolicy,
    /// Put back by the sweeper when Redis lost it, and taken again from Redis when
    /// another instance drew a new one meanwhile (see [`conn::Redis::put_back`]).
    secret: SharedSecret,
    /// The rosters every instance must find in Redis, put back with the secret.
    kept: Arc<MustKeep>,
    /// Whether a put-back is under way, so that a slow Redis never piles them up.
    putting_back: Arc<AtomicBool>,
}

/// Records name users and clients by their place in the configuration: `names` (the
/// configured ones, in order) must agree, place by place, with the roster this Redis
/// keeps under `key`. More at the end is fine (the roster grows), fewer too (what
/// records still name a removed one is refused); another name at a place would hand
/// one's records to the other. `Err(None)`: Redis did not answer.
async fn check_roster(
    redis: &Redis,
    key: &[u8],
    what: &str,
    names: &[&str],
) -> Result<(), Option<String>> {
    // A JSON array: a name may hold any character. Read, compared and written in one
    // step: two instances starting at once with other names at one place had both
    // read the roster before either wrote it, and both started.
    let joined = serde_json::to_string(names).unwrap_or_default();
    match Roster::check(redis, key, joined.as_bytes()).await.map_err(|_| None)? {
        Roster::Agrees { .. } => Ok(()),
        Roster::Garbled => Err(Some(format!(
            "{}: not a list of names, so which {what} the records name cannot be checked",
            String::from_utf8_lossy(key)
        ))),
        Roster::Conflict { place, theirs } => Err(Some(format!(
            "{what} {place} is \"{}\" in the configuration, but \"{theirs}\" in this Redis's records, which name {what}s by their place: keep the order (add at the end), or start on an empty Redis",
            names.get(place.saturating_sub(1)).copied().unwrap_or_default()
        ))),
    }
}

/// What [`RedisStore::eviction_warning`] says of a Redis whose `maxmemory` and
/// `maxmemory-policy` are these. Every record but the shared secret and the rosters
/// has a time to live, so the `volatile-*` policies drop them as readily as the
/// `allkeys-*` ones; only `noeviction` refuses writes instead, which the server
/// answers 503 `temporarily_unavailable`. No `maxmemory` (0) drops nothing.
fn eviction_warning(maxmemory: &str, policy: &str) -> Option<String> {
    (maxmemory.trim() != "0" && policy != "noeviction").then(|| {
        format!(
            "this Redis drops keys when it holds maxmemory ({maxmemory} bytes): with maxmemory-policy {policy}, pending codes, tokens and signed-in browsers may vanish before their time; set maxmemory-policy noeviction, under which a full Redis refuses writes and the server answers 503 temporarily_unavailable until there is room"
        )
    })
}

/// What [`RedisStore::persistence_warning`] says of a Redis whose `appendonly` is
/// this. Without the append-only file a Redis that restarts comes back with its last
/// snapshot, or empty: approvals and tokens since are lost, and a code redeemed since
/// is pending or approved again, so it redeems a second time (checklist TS-08; the
/// first token is dead, its family's record gone too).
fn persistence_warning(appendonly: &str) -> Option<String> {
    (appendonly != "yes").then(|| {
        "this Redis does not log every write (appendonly no): if it restarts it comes back with its last snapshot or empty, approvals and tokens since are lost, and a code redeemed since can redeem again; set appendonly yes (appendfsync everysec)".to_owned()
    })
}

/// The value of `name` among one node's `CONFIG GET` answers.
fn setting<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl RedisStore {
    /// Connects to the Redis at `url` (see `Redis::connect`) for `settings`, and
    /// reads (or draws, if this is the first instance) the shared secret.
    pub async fn connect(url: &str, settings: &StoreSettings) -> Result<RedisStore, ConnectError> {
        let redis = Redis::connect(url).await?;
        let unreachable = |why: String| ConnectError::Unreachable {
            url: conn::redacted(url),
            why: format!("the shared secret could not be read: {why}"),
        };
        let mut kept: Option<Vec<u8>> = redis
            .query_at_start(redis::cmd("GET").arg(keys::SECRET))
            .await
            .map_err(unreachable)?;
        // Written whether or not it was there: the write is what tells a replica
        // (READONLY) where ROLE is refused by an ACL. A Redis full under noeviction
        // refuses it too (OOM); an instance restarting then still starts, on the
        // secret it read, and answers 503 to what needs a write until there is room.
        let mut drawn = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut drawn);
        let written = redis
            .query_raw::<Option<String>>(
                redis::cmd("SET")
                    .arg(keys::SECRET)
                    .arg(&drawn[..])
                    .arg("NX"),
            )
            .await;
        match written {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly) => {
                return Err(ConnectError::Unusable {
                    url: conn::redacted(url),
                    why: "this Redis refuses writes (READONLY): it is a replica; name its primary"
                        .into(),
                });
            }
            Err(e) if e.code() == Some("OOM") && kept.is_some() => {}
            Err(e) if e.code() == Some("OOM") => {
                return Err(ConnectError::Unusable {
                    url: conn::redacted(url),
                    why: format!("Redis is full (its maxmemory) and refused the first write, the shared secret's: {e}"),
                });
            }
            Err(e) => {
                return Err(ConnectError::Unreachable {
                    url: conn::redacted(url),
                    why: format!("the shared secret could not be written: {e}"),
                })
            }
        }
        if kept.is_none() {
            // This instance's, or another's that drew first.
            kept = redis
                .query_at_start(redis::cmd("GET").arg(keys::SECRET))
                .await
                .map_err(unreachable)?;
        }
        let secret = kept
            .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
            .ok_or_else(|| ConnectError::Unreachable {
                url: conn::redacted(url),
                why: "df:secret holds something else than 32 bytes".into(),
            })?;
        let users: Vec<&str> = settings.users.iter().map(String::as_str).collect();
        let clients: Vec<&str> = settings.clients.iter().map(String::as_str).collect();
        let mut kept: MustKeep = Vec::new();
        for (key, what, names) in [
            (keys::ROSTER_USERS, "user", users),
            (keys::ROSTER_CLIENTS, "client", clients),
        ] {
            kept.push((
                key,
                serde_json::to_string(&names)
                    .unwrap_or_default()
                    .into_bytes(),
            ));
            check_roster(&redis, key, what, &names)
                .await
                .map_err(|why| match why {
                    Some(why) => ConnectError::Roster {
                        url: conn::redacted(url),
                        why,
                    },
                    None => ConnectError::Unreachable {
                        url: conn::redacted(url),
                        why: "the configured users and clients could not be checked".into(),
                    },
                })?;
        }
        Ok(RedisStore {
            redis,
            hold: Script::new(HOLD),
            claim_name: Script::new(CLAIM_NAME),
            release_name: Script::new(RELEASE_NAME),
            put_names_back: Script::new(PUT_NAMES_BACK),
            max_sessions: settings.max_sessions,
            max_per_client: settings
                .has_client_share()
                .then_some(settings.max_sessions_per_client),
            retention_ms: settings.expired_retention_ms,
            access_ttl_ms: settings.access_token_ttl_ms,
            refresh_ttl_ms: settings.refresh_token_ttl_ms,
            quotas: settings.quotas,
            secret: SharedSecret::new(secret),
            kept: Arc::new(kept),
            putting_back: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Puts every registered client's name keys back into the names hash, then marks
    /// it complete: when it is not (clients registered by an older server; the hash
    /// lost, evicted or deleted, while the clients stayed; a pass cut short), before the
    /// next name is looked up or claimed. Two clients whose names read alike keep both
    /// their names; the keys the second could not have are said.
    async fn put_names_back(&self) -> Stored<()> {
        let clients = self.registered_clients().await?;
        let mut held = 0;
        // In batches: one script call for every 256 clients, not one for each; the
        // last marks the hash complete, in the same step as its keys.
        let batches: Vec<&[Registered]> = if clients.is_empty() {
            vec![&[]]
        } else {
            clients.chunks(256).collect()
        };
        let last = batches.len() - 1;
        for (n, batch) in batches.into_iter().enumerate() {
            let marker = if n == last { keys::NAMES_COMPLETE } else { b"" };
            let mut args: Vec<Vec<u8>> = vec![marker.to_vec()];
            for r in batch {
                let keys = NameKeys::of(&r.client.name);
                args.push(r.client.id.0.to_string().into_bytes());
                args.push(keys.iter().count().to_string().into_bytes());
                args.extend(keys.iter().map(|k| k.as_bytes().to_vec()));
            }
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let taken: u64 = self
                .redis
                .script(&self.put_names_back, &[keys::CLIENT_NAMES], &args)
                .await?;
            held += taken;
        }
        if held > 0 {
            tracing::warn!(
                clients = clients.len(),
                keys_held_by_another = held,
                "registered clients' names were put back, and some read as another client's: both are kept"
            );
        } else {
            tracing::info!(
                clients = clients.len(),
                "registered clients' names were put back"
            );
        }
        Ok(())
    }

    /// Runs [`CLAIM_NAME`] or [`RELEASE_NAME`]: what the script returned.
    async fn name_script(
        &self,
        script: &Script,
        keys: &NameKeys,
        id: ClientId,
    ) -> Stored<Option<i64>> {
        let index = id.0.to_string();
        let args: Vec<&[u8]> = [keys::NAMES_COMPLETE, index.as_bytes()]
            .into_iter()
            .chain(keys.iter().map(str::as_bytes))
            .collect();
        self.redis
            .script(script, &[keys::CLIENT_NAMES], &args)
            .await
    }

    /// For a `redis+sentinel://` store, the primary (`host:port`) the Sentinels named
    /// when it connected.
    pub fn named_by_sentinels(&self) -> Option<&str> {
        self.redis.named_at_start.as_deref()
    }

    /// `CONFIG GET pattern` on every primary (of a cluster, or the one Redis): each
    /// node's names and values. `Err`: Redis would not say (managed services often
    /// disable `CONFIG`), with what it said.
    async fn config_everywhere(&self, pattern: &str) -> Result<Vec<Vec<(String, String)>>, String> {
        let answers = self
            .redis
            .query_raw_everywhere(redis::cmd("CONFIG").arg("GET").arg(pattern))
            .await
            .map_err(|e| e.to_string())?;
        let mut nodes = Vec::new();
        for answer in answers {
            if let Value::ServerError(e) = answer {
                return Err(format!("{}: {}", e.code(), e.details().unwrap_or("")));
            }
            // Names and values in turn (a map in RESP3).
            let pairs: Vec<(String, String)> = match answer {
                Value::Map(m) => m
                    .into_iter()
                    .filter_map(|(k, v)| {
                        Some((
                            String::from_redis_value(k).ok()?,
                            String::from_redis_value(v).ok()?,
                        ))
                    })
                    .collect(),
                other => {
                    let flat: Vec<String> =
                        Vec::from_redis_value(other).map_err(|e| e.to_string())?;
                    flat.chunks_exact(2)
                        .map(|p| (p[0].clone(), p[1].clone()))
                        .collect()
                }
            };
            nodes.push(pairs);
        }
        Ok(nodes)
    }

    /// Whether this Redis may drop keys when it is full (`CONFIG GET maxmemory*`, on
    /// every primary of a cluster): a warning when one may, `None` when none does.
    /// `Err`: Redis would not say, with what it said.
    pub async fn eviction_warning(&self) -> Result<Option<String>, String> {
        for pairs in self.config_everywhere("maxmemory*").await? {
            let (Some(maxmemory), Some(policy)) = (
                setting(&pairs, "maxmemory"),
                setting(&pairs, "maxmemory-policy"),
            ) else {
                return Err("CONFIG GET maxmemory* gave no maxmemory or maxmemory-policy".into());
            };
            if let Some(warning) = eviction_warning(maxmemory, policy) {
                return Ok(Some(warning));
            }
        }
        Ok(None)
    }

    /// Whether this Redis logs every write (`CONFIG GET appendonly` on every
    /// primary): a warning when one does not, `None` when all do. `Err`: Redis would
    /// not say, with what it said.
    pub async fn persistence_warning(&self) -> Result<Option<String>, String> {
        for pairs in self.config_everywhere("appendonly").await? {
            let Some(appendonly) = setting(&pairs, "appendonly") else {
                return Err("CONFIG GET appendonly gave no appendonly".into());
            };
            if let Some(warning) = persistence_warning(appendonly) {
                return Ok(Some(warning));
            }
        }
        Ok(None)
    }

    /// The record at `key`; a value that is no record is [`Unavailable`] (another
    /// build's, or not ours), logged.
    async fn read<T: Record>(&self, key: &[u8]) -> Stored<Option<(T, Vec<u8>)>> {
        let Some(bytes) = self.redis.get(key).await? else {
            return Ok(None);
        };
        match T::decode(&bytes) {
            Some(record) => Ok(Some((record, bytes))),
            None => {
                tracing::error!(
                    key = %String::from_utf8_lossy(key),
                    "the session store holds a record this server cannot read"
                );
                Err(Unavailable)
            }
        }
    }

    /// Reads the record at `key`, lets `decide` say what becomes of it and what to
    /// answer, and writes that with a compare-and-set; on a lost race, again.
    async fn update<T: Record, R>(
        &self,
        key: &[u8],
        mut decide: impl FnMut(Option<T>) -> (Change<T>, R),
    ) -> Stored<R> {
        // The last write refused, and its answer: a compare-and-set whose reply was lost
        // with its connection is sent once more on a new one (`conn.rs`), and then finds
        // its own write. A record holding exactly those bytes was written by it (a
        // redemption's bytes hold a family drawn for it; polls or decisions writing the
        // same bytes at once came to the same answer), so its answer stands: decided
        // again, a poll was early against itself (slow_down, and 5 s more for good).
        let mut refused: Option<(Vec<u8>, R)> = None;
        for _ in 0..MAX_RACES {
            let read = self.read::<T>(key).await?;
            let (record, old) = match read {
                Some((record, old)) => (Some(record), Some(old)),
                None => (None, None),
            };
            if let Some((wrote, answer)) = refused.take() {
                if old.as_deref() == Some(wrote.as_slice()) {
                    return Ok(answer);
                }
            }
            let (change, answer) = decide(record);
            match change {
                Change::Keep => return Ok(answer),
                Change::Put(new, ttl) => {
                    let new = new.encode();
                    if old.as_deref() == Some(new.as_slice()) && ttl.is_none() {
                        return Ok(answer);
                    }
                    if self.redis.cas(key, old.as_deref(), Some(&new), ttl).await? {
                        return Ok(answer);
                    }
                    refused = Some((new, answer));
                }
                Change::Delete => {
                    if self.redis.cas(key, old.as_deref(), None, None).await? {
                        return Ok(answer);
                    }
                }
            }
        }
        tracing::error!(
            key = %String::from_utf8_lossy(key),
            "a record kept changing under {MAX_RACES} compare-and-sets in a row"
        );
        Err(Unavailable)
    }

    /// Whether `session`'s retention after expiry is over at `now`: gone, as the
    /// memory store's sweep would have it, even if Redis has not dropped it yet.
    fn forgotten(&self, session: &Session, now: Millis) -> bool {
        session.forget_at(self.retention_ms) <= now
    }

    /// Time to live of what ends at `until`, from `now`; at least a millisecond.
    fn ttl(until: Millis, now: Millis) -> Millis {
        until.saturating_sub(now).max(1)
    }

    /// How long a family's record lives: as long as the longest token it may hold.
    fn family_ttl(&self) -> Millis {
        self.access_ttl_ms.max(self.refresh_ttl_ms)
    }

    /// Whether `family` has a record, live or revoked.
    /// What the family's record holds ([`FAMILY_LIVE`], [`FAMILY_REVOKED`]), if any.
    async fn family_record(&self, family: u64) -> Stored<Option<Vec<u8>>> {
        self.redis.get(&keys::family(family)).await
    }

    async fn family_revoked(&self, family: u64) -> Stored<bool> {
        let kept: Option<Vec<u8>> = self.redis.get(&keys::family(family)).await?;
        // A family whose record is gone has no live token left.
        Ok(kept.as_deref() != Some(FAMILY_LIVE))
    }

    /// Records a new family, live, unless it has a record already (revoked by a
    /// replay, or recorded by another poll): `SET NX` never overwrites one. True if
    /// this call recorded it.
    async fn record_family(&self, family: u64) -> Stored<bool> {
        let recorded: Option<String> = self
            .redis
            .query(
                redis::cmd("SET")
                    .arg(keys::family(family))
                    .arg(FAMILY_LIVE)
                    .arg("NX")
                    .arg("PX")
                    .arg(self.family_ttl()),
            )
            .await?;
        Ok(recorded.is_some())
    }

    /// Issues an access token of `grant`, and a refresh token of `refresh_scope` if
    /// given, in `family`, and keeps the family as long as its newest token.
    async fn issue_pair(
        &self,
        grant: Grant,
        family: u64,
        refresh_scope: Option<ScopeSet>,
        now: Millis,
    ) -> Stored<Issued> {
        let issued = self.write_tokens(grant, family, refresh_scope, now).await?;
        // The family outlives its newest token; a revoked one stays revoked.
        self.record_family(family).await?;
        let _: i64 = self
            .redis
            .query(
                redis::cmd("PEXPIRE")
                    .arg(keys::family(family))
                    .arg(self.family_ttl())
                    .arg("GT"),
            )
            .await?;
        Ok(issued)
    }

    /// Writes a new access token (and refresh token) of `family`. They are active
    /// only once the family has a live record.
    async fn write_tokens(
        &self,
        grant: Grant,
        family: u64,
        refresh_scope: Option<ScopeSet>,
        now: Millis,
    ) -> Stored<Issued> {
        let (access_key, access_token) = new_token();
        let access = AccessRecord {
            grant,
            family,
            issued_at: now,
            expires_at: now.saturating_add(self.access_ttl_ms),
        };
        self.redis
            .set_px(
                &keys::access(&access_key),
                &access.encode(),
                self.access_ttl_ms,
            )
            .await?;
        let refresh_token = if let Some(scope) = refresh_scope {
            let (key, token) = new_token();
            let refresh = RefreshRecord {
                grant: Grant { scope, ..grant },
                family,
                issued_at: now,
                expires_at: now.saturating_add(self.refresh_ttl_ms),
                rotated: false,
            };
            self.redis
                .set_px(&keys::refresh(&key), &refresh.encode(), self.refresh_ttl_ms)
                .await?;
            Some(token)
        } else {
            None
        };
        Ok(Issued {
            user: grant.user,
            access_token,
            expires_in_secs: self.access_ttl_ms / 1000,
            refresh_token,
            scope: grant.scope,
        })
    }

    async fn admit_one(&self, key: Vec<u8>, rate: Rate, now: Millis) -> Stored<Result<(), Millis>> {
        self.update::<Bucket, _>(&key, |bucket| {
            let mut b = bucket.unwrap_or_else(|| Bucket::full(&rate, now));
            match b.take(&rate, now) {
                // Forgotten once it would be full again, like the memory quotas.
                Ok(()) => (
                    Change::Put(b, Some(Self::ttl(b.full_at(&rate), now))),
                    Ok(()),
                ),
                Err(wait) => (Change::Keep, Err(wait)),
            }
        })
        .await
    }
}

impl Store for RedisStore {
    async fn create(
        &self,
        client: ClientId,
        scope: ScopeSet,
        now: Millis,
        expires_in_ms: Millis,
        policy: &PollPolicy,
    ) -> Stored<Result<DeviceCode, CreateError>> {
        let secret = Secret::generate();
        let session = Session::new(secret, client, scope, now, expires_in_ms, policy);
        let forget_at = session.forget_at(self.retention_ms);
        // Only the secret's hash is kept: a Redis dump hands out no device code.
        let record = Kept::new(session).encode();
        for _ in 0..CREATE_ATTEMPTS {
            let user_code = UserCode::generate();
            let key = keys::session(user_code);
            let created: Option<String> = self
                .redis
                .query(
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(&record)
                        .arg("NX")
                        .arg("PX")
                        .arg(Self::ttl(forget_at, now)),
                )
                .await?;
            if created.is_none() {
                continue;
            }
            let member = user_code.packed().to_string();
            let held: i64 = self
                .redis
                .script(
                    &self.hold,
                    &[keys::HELD, &keys::held_by(client)],
                    &[
                        now.to_string().as_bytes(),
                        forget_at.to_string().as_bytes(),
                        member.as_bytes(),
                        self.max_sessions.to_string().as_bytes(),
                        self.max_per_client.unwrap_or(0).to_string().as_bytes(),
                    ],
                )
                .await?;
            if held == 0 {
                return Ok(Ok(DeviceCode { user_code, secret }));
            }
            let _: i64 = self.redis.query(redis::cmd("DEL").arg(&key)).await?;
            return Ok(Err(if held == 1 {
                CreateError::Full
            } else {
                CreateError::ClientFull
            }));
        }
        Ok(Err(CreateError::Full))
    }

    async fn poll(
        &self,
        code: &DeviceCode,
        client: ClientId,
        now: Millis,
        policy: &PollPolicy,
    ) -> Stored<PollOutcome> {
        let fresh_family = rand::thread_rng().next_u64();
        let (outcome, scope, redeemed_at, delivered) = self
            .update::<Kept, _>(&keys::session(code.user_code), |kept| match kept {
                Some(mut k) if !self.forgotten(&k.session, now) => {
                    let presented = k.presented(&code.secret);
                    let s = &mut k.session;
                    let outcome = s.poll(client, &presented, now, policy, || fresh_family);
                    let answer = (outcome, s.scope, s.redeemed_at(), k.delivered);
                    (Change::Put(k, None), answer)
                }
                _ => (
                    Change::Keep,
                    (PollOutcome::Invalid, ScopeSet(0), None, false),
                ),
            })
            .await?;
        // A family's record lives `family_ttl` from the redemption: within that, no
        // record means none was ever written; past it, the record may have expired,
        // and the poll is a replay like any other (checklist TS-08).
        let since = |ms: Millis| redeemed_at.is_some_and(|at| now < at.saturating_add(ms));
        let outcome = match outcome {
            // Redeemed, but its tokens were never handed out (`delivered`): the poll
            // that redeemed it answered 503, and this is the device's retry, not a
            // replay. Not once they were: a family's record can be lost (evicted at
            // maxmemory, deleted), and RFC 8628 §3.5: a device code redeems at most once.
            PollOutcome::Replayed { family, user } if !delivered && since(self.family_ttl()) => {
                match self.family_record(family).await?.as_deref() {
                    // Never recorded: that poll never got to issue (its write outlived
                    // its deadline, or the instance died). This one may finish the
                    // redemption, and `redeem` makes sure only one poll ever does.
                    None => {
                        tracing::info!(user_code = %code.user_code, "finishing a redemption whose poll was interrupted");
                        PollOutcome::Issue {
                            user,
                            scope,
                            family,
                        }
                    }
                    // Recorded, and still nobody was given its tokens: the record's
                    // write reached Redis after that poll had given up on it (Redis
                    // stalled past CALL_TIMEOUT) and answered 503; the poll that
                    // records a family hands out its tokens only after that write
                    // returned and it marked them delivered (`mark_delivered`, whose
                    // failure answers 503 too). Shortly after, the device's
                    // retry redeems anew in a fresh family, moved to in one
                    // compare-and-set (so one retry does), and the first family, whose
                    // tokens nobody holds, is revoked. Past the grace, a replay; and
                    // within a CALL_TIMEOUT of the redemption too: that 503 cannot
                    // have come yet, so the redeeming poll is still at work (a replay
                    // racing it, which `mark_delivered` would also stop).
                    Some(FAMILY_LIVE)
                        if since(INTERRUPTED_REDEMPTION_GRACE_MS)
                            && !since(link::CALL_TIMEOUT.as_millis() as Millis) =>
                    {
                        let fresh = rand::thread_rng().next_u64();
                        let moved = self
                            .update::<Kept, _>(&keys::session(code.user_code), |kept| match kept {
                                // An earlier build's record has no mark: it is
                                // never taken for an interrupted redemption.
                                Some(mut k) if k.hashed && !k.delivered => {
                                    let moved = k.session.redeem_again(family, fresh);
                                    (
                                        if moved {
                                            Change::Put(k, None)
                                        } else {
                                            Change::Keep
                                        },
                                        moved,
                                    )
                                }
                                _ => (Change::Keep, false),
                            })
                            .await?;
                        if moved {
                            self.revoke_family(family).await?;
                            tracing::info!(user_code = %code.user_code, "finishing a redemption whose answer was an error although its write landed");
                            PollOutcome::Issue {
                                user,
                                scope,
                                family: fresh,
                            }
                        } else {
                            PollOutcome::Replayed { family, user }
                        }
                    }
                    _ => PollOutcome::Replayed { family, user },
                }
            }
            outcome => outcome,
        };
        Ok(outcome)
    }

    async fn decide(
        &self,
        user_code: UserCode,
        decision: Decision,
        now: Millis,
    ) -> Stored<Result<SessionInfo, DecideError>> {
        self.update::<Kept, _>(&keys::session(user_code), |kept| match kept {
            Some(mut k) if !self.forgotten(&k.session, now) => {
                match k.session.decide(decision, now) {
                    Ok(()) => {
                        let info = SessionInfo::of(user_code, &k.session);
                        (Change::Put(k, None), Ok(info))
                    }
                    Err(e) => (Change::Keep, Err(e)),
                }
            }
            _ => (Change::Keep, Err(DecideError::Unknown)),
        })
        .await
    }

    async fn lookup(&self, user_code: UserCode) -> Stored<Option<SessionInfo>> {
        Ok(self
            .read::<Kept>(&keys::session(user_code))
            .await?
            .map(|(k, _)| SessionInfo::of(user_code, &k.session)))
    }

    async fn issue(
        &self,
        grant: Grant,
        family: u64,
        with_refresh: bool,
        now: Millis,
    ) -> Stored<Issued> {
        self.issue_pair(grant, family, with_refresh.then_some(grant.scope), now)
            .await
    }
    async fn redeem(
        &self,
        user_code: UserCode,
        grant: Grant,
        family: u64,
        with_refresh: bool,
        now: Millis,
    ) -> Stored<Option<Issued>> {
        // The tokens first, inactive; then the family's record, which activates them.
        // `SET NX` lets exactly one poll record it: two polls that both think they
        // redeem (a replay racing the device, or a retry racing a stalled first try)
        // cannot both be answered with live tokens. The one that finds the record
        // made is a replay, and revokes the family (checklist TS-08, TS-09).
        let issued = self
            .write_tokens(grant, family, with_refresh.then_some(grant.scope), now)
            .await?;
        if self.record_family(family).await? {
            if self.mark_delivered(user_code, family).await? == Delivery::Moved {
                // Meanwhile a retry took this for a redemption whose answer was lost,
                // and finished it in a fresh family (`poll`), revoking this one: its
                // tokens are never handed out, and the code redeemed once.
                return Ok(None);
            }
            Ok(Some(issued))
        } else {
            self.revoke_family(family).await?;
            Ok(None)
        }
    }

    async fn refresh(
        &self,
        token: &str,
        client: ClientId,
        scope: Option<ScopeSet>,
        now: Millis,
    ) -> Stored<Result<Issued, RefreshError>> {
        let Some(token_key) = parse_token(token) else {
            return Ok(Err(RefreshError::Invalid));
        };
        let key = keys::refresh(&token_key);
        // This exchange's rotation, written by a compare-and-set that said it lost,
        // and the pair it issued.
        let mut lost: Option<(Vec<u8>, Vec<u8>, Issued)> = None;
        for _ in 0..MAX_RACES {
            let read = match self.read::<RefreshRecord>(&key).await {
                Ok(read) => read,
                Err(e) => {
                    // A compare-and-set that said it lost may have won (its answer went
                    // with its connection): undone, as a rotation that timed out is.
                    if let Some((written, before, _)) = &lost {
                        let _ = self
                            .redis
                            .cas(&key, Some(written), Some(before), None)
                            .await;
                    }
                    return Err(e);
                }
            };
            let Some((record, old)) = read else {
                return Ok(Err(RefreshError::Invalid));
            };
            // It had won: its answer went with a dropped connection, and the call,
            // sent once more, found its own write. Not a reuse (RFC 9700 §4.14.2).
            if let Some((written, _, issued)) = lost.take() {
                if written == old {
                    return Ok(Ok(issued));
                }
            }
            let revoked = self.family_revoked(record.family).await?;
            let mut rotated = record;
            match rotated.exchange(client, scope, now, revoked) {
                Ok(grant) => {
                    // Paced before anything is written: refused, the token is as it
                    // was. Two exchanges of one token may both take a ticket; the
                    // compare-and-set below still lets one of them rotate it.
                    let pace = keys::refresh_pace(record.family);
                    if let Err(retry_after_ms) = self.admit_one(pace, REFRESH_PACE, now).await? {
                        return Ok(Err(RefreshError::Paced { retry_after_ms }));
                    }
                    // The new pair first, then the rotation, last: a call that fails
                    // (Redis slow, paused, gone) before the rotation leaves the token
                    // as it was, so the client's retry after the 503 is no reuse
                    // (RFC 9700 §4.14.2). A pair whose rotation then loses is never
                    // handed out: its family is being revoked, or its write came too
                    // late; nobody holds it.
                    // RFC 6749 §6: the new refresh token keeps the presented one's
                    // scope, even when the access token is narrowed.
                    let issued = self
                        .issue_pair(grant, record.family, Some(record.grant.scope), now)
                        .await?;
                    let mut mark = [0u8; 16];
                    rand::thread_rng().fill_bytes(&mut mark);
                    let written = codec::rotated_by(&rotated, mark);
                    match self.redis.cas(&key, Some(&old), Some(&written), None).await {
                        Ok(true) => return Ok(Ok(issued)),
                        Ok(false) => {
                            // Another exchange of this token won (read again, and see
                            // the reuse), or this one did and lost only its answer.
                            lost = Some((written, old, issued));
                            continue;
                        }
                        Err(e) => {
                            // This exchange answers 503, yet its rotation may still
                            // reach Redis: stalled past CALL_TIMEOUT, it runs the call
                            // when it comes back. Its undoing goes out behind it, on
                            // the same connection, so it lands after it (a timeout
                            // here too changes nothing to that), and the client's
                            // retry finds the token as it was: no reuse (RFC 9700
                            // §4.14.2). Without a rotation to undo, it writes nothing.
                            let _ = self.redis.cas(&key, Some(&written), Some(&old), None).await;
                            return Err(e);
                        }
                    }
                }
                Err(e) => {
                    if matches!(e, RefreshError::Reused { .. }) {
                        self.revoke_family(record.family).await?;
                    }
                    return Ok(Err(e));
                }
            }
        }
        Err(Unavailable)
    }

    async fn revoke_family(&self, family: u64) -> Stored<()> {
        self.redis
            .set_px(&keys::family(family), FAMILY_REVOKED, self.family_ttl())
            .await?;
        Ok(())
    }

    async fn introspect(&self, token: &str, now: Millis) -> Stored<Option<Introspection>> {
        let Some(key) = parse_token(token) else {
            return Ok(None);
        };
        if let Some((a, _)) = self.read::<AccessRecord>(&keys::access(&key)).await? {
            let revoked = self.family_revoked(a.family).await?;
            return Ok(a.introspect(now, revoked));
        }
        match self.read::<RefreshRecord>(&keys::refresh(&key)).await? {
            Some((r, _)) => {
                let revoked = self.family_revoked(r.family).await?;
                Ok(r.introspect(now, revoked))
            }
            None => Ok(None),
        }
    }

    async fn revoke(
        &self,
        token: &str,
        client: ClientId,
        now: Millis,
    ) -> Stored<Result<(), IssuedToAnother>> {
        let Some(key) = parse_token(token) else {
            return Ok(Ok(()));
        };
        let access = keys::access(&key);
        if let Some((a, old)) = self.read::<AccessRecord>(&access).await? {
            if a.grant.client != client {
                let revoked = self.family_revoked(a.family).await?;
                return Ok(IssuedToAnother::unless_inactive(a.introspect(now, revoked)));
            }
            self.redis.cas(&access, Some(&old), None, None).await?;
            return Ok(Ok(()));
        }
        if let Some((r, _)) = self.read::<RefreshRecord>(&keys::refresh(&key)).await? {
            if r.grant.client != client {
                let revoked = self.family_revoked(r.family).await?;
                return Ok(IssuedToAnother::unless_inactive(r.introspect(now, revoked)));
            }
            self.revoke_family(r.family).await?;
        }
        Ok(Ok(()))
    }

    async fn start_web_session(
        &self,
        user: UserId,
        credential: Credential,
        now: Millis,
    ) -> Stored<Result<(SessionId, WebSession), Full>> {
        let session = WebSession::new(user, credential, now);
        let id = SessionId::generate();
        let key = keys::web(&id);
        self.redis
            .set_px(&key, &session.encode(), SIGNED_IN_TTL_MS)
            .await?;
        // The user's sessions, oldest first: past the bound, the oldest end.
        let mine = keys::web_of(user);
        let _: i64 = self
            .redis
            .query(
                redis::cmd("ZADD")
                    .arg(&mine)
                    .arg(session.expires_at)
                    .arg(&key),
            )
            .await?;
        let _: i64 = self
            .redis
            .query(
                redis::cmd("ZREMRANGEBYSCORE")
                    .arg(&mine)
                    .arg("-inf")
                    .arg(now),
            )
            .await?;
        // Every session but the newest MAX_SESSIONS_PER_USER ends: read, ended, then
        // taken off the set. Each step may run twice (a call whose reply was lost goes
        // out again) and two sign-ins may run them at once, and still each session
        // past the bound ends and none within it. ZPOPMIN, run again after its reply
        // was lost, had left the session it popped signed in, and ended the next.
        let ended: Vec<Vec<u8>> = self
            .redis
            .query(
                redis::cmd("ZRANGE")
                    .arg(&mine)
                    .arg(0)
                    .arg(-(MAX_SESSIONS_PER_USER as i64) - 1),
            )
            .await?;
        if !ended.is_empty() {
            for old in &ended {
                let _: i64 = self.redis.query(redis::cmd("DEL").arg(old)).await?;
            }
            let _: i64 = self
                .redis
                .query(redis::cmd("ZREM").arg(&mine).arg(&ended))
                .await?;
        }
        let _: i64 = self
            .redis
            .query(redis::cmd("PEXPIRE").arg(&mine).arg(SIGNED_IN_TTL_MS))
            .await?;
        Ok(Ok((id, session)))
    }

    async fn web_session(&self, id: &SessionId, now: Millis) -> Stored<Option<WebSession>> {
        Ok(self
            .read::<WebSession>(&keys::web(id))
            .await?
            .map(|(s, _)| s)
            .filter(|s| now < s.expires_at))
    }

    async fn set_entered(
        &self,
        id: &SessionId,
        code: Option<UserCode>,
        now: Millis,
    ) -> Stored<bool> {
        self.update::<WebSession, _>(&keys::web(id), |session| match session {
            Some(mut s) if now < s.expires_at => {
                s.entered = code;
                (Change::Put(s, None), true)
            }
            _ => (Change::Keep, false),
        })
        .await
    }

    async fn end_web_session(&self, id: &SessionId) -> Stored<()> {
        let key = keys::web(id);
        if let Some((s, old)) = self.read::<WebSession>(&key).await? {
            self.redis.cas(&key, Some(&old), None, None).await?;
            let _: i64 = self
                .redis
                .query(redis::cmd("ZREM").arg(keys::web_of(s.user)).arg(&key))
                .await?;
        }
        Ok(())
    }

    async fn try_acquire<const N: usize>(
        &self,
        keys: [Key; N],
        now: Millis,
    ) -> Stored<Result<Ticket<N>, Throttled>> {
        let names = keys.map(|k| keys::limit(&k));
        'race: for _ in 0..MAX_RACES {
            let mut read = Vec::with_capacity(N);
            let mut worst: Option<Throttled> = None;
            for (key, name) in keys.iter().zip(&names) {
                let window = self.read::<Window>(name).await?;
                let retry_after_ms = Window::wait(window.as_ref().map(|w| w.0), key, now);
                if retry_after_ms > 0 && worst.is_none_or(|w| w.retry_after_ms < retry_after_ms) {
                    worst = Some(Throttled {
                        key: *key,
                        retry_after_ms,
                    });
                }
                read.push(window);
            }
            if let Some(t) = worst {
                return Ok(Err(t));
            }
            let mut opened = [0; N];
            for (i, ((key, name), window)) in keys.iter().zip(&names).zip(&read).enumerate() {
                let counted = Window::count(window.as_ref().map(|w| w.0), key, now);
                let ttl = Self::ttl(counted.opened + key.limit().window_ms, now);
                let old = window.as_ref().map(|w| w.1.as_slice());
                if !self
                    .redis
                    .cas(name, old, Some(&counted.encode()), Some(ttl))
                    .await?
                {
                    // Lost a race: take back what this attempt counted, and start over.
                    let partial = Ticket { keys, opened };
                    self.refund_first(partial, i).await?;
                    continue 'race;
                }
                opened[i] = counted.opened;
            }
            return Ok(Ok(Ticket { keys, opened }));
        }
        Err(Unavailable)
    }

    async fn refund<const N: usize>(&self, ticket: Ticket<N>) -> Stored<()> {
        self.refund_first(ticket, N).await
    }

    async fn forget(&self, key: Key) -> Stored<()> {
        let _: i64 = self
            .redis
            .query(redis::cmd("DEL").arg(keys::limit(&key)))
            .await?;
        Ok(())
    }

    async fn admit(
        &self,
        source: Source,
        client: ClientId,
        now: Millis,
    ) -> Stored<Result<(), Refusal>> {
        if let Some(rate) = self.quotas.per_source {
            if let Err(retry_after_ms) = self
                .admit_one(keys::source_quota(source), rate, now)
                .await?
            {
                return Ok(Err(Refusal::Source { retry_after_ms }));
            }
        }
        if let Some(rate) = self.quotas.per_client {
            if let Err(retry_after_ms) = self
                .admit_one(keys::client_quota(client), rate, now)
                .await?
            {
                return Ok(Err(Refusal::Client { retry_after_ms }));
            }
        }
        Ok(Ok(()))
    }

    async fn next_client_id(&self) -> Stored<Option<ClientId>> {
        loop {
            let given: u64 = self
                .redis
                .query(redis::cmd("INCR").arg(keys::CLIENTS_GIVEN))
                .await?;
            let Some(id) = ClientId::registered(given.saturating_sub(1)) else {
                return Ok(None);
            };
            // The counter can be lost while the clients stay (evicted: it is the
            // coldest key there is; deleted): an index a client holds is never given
            // again, or its records and tokens would name the new client.
            let held: i64 = self
                .redis
                .query(redis::cmd("EXISTS").arg(keys::client(id)))
                .await?;
            if held == 0 {
                return Ok(Some(id));
            }
            tracing::warn!(
                index = id.0,
                "df:c:given was behind the registered clients (lost or reset): skipping an index in use"
            );
        }
    }

    async fn put_client(&self, client: &Registered) -> Stored<()> {
        let id = client.client.id;
        // NX: a new client never replaces another's record.
        let written: Option<String> = self
            .redis
            .query(
                redis::cmd("SET")
                    .arg(keys::client(id))
                    .arg(client.encode())
                    .arg("NX"),
            )
            .await?;
        if written.is_none() {
            tracing::error!(
                index = id.0,
                "a registered client already holds this index; the new one is not kept"
            );
            return Err(Unavailable);
        }
        let _: i64 = self
            .redis
            .query(redis::cmd("SADD").arg(keys::CLIENTS).arg(id.0))
            .await?;
        Ok(())
    }

    async fn replace_client(&self, was: &Registered, client: &Registered) -> Stored<bool> {
        // Only over the record the change was made to (its layout is canonical: the
        // same record, the same bytes), so a client deleted meanwhile stays so, and of
        // two rotations of one record one is kept.
        self.redis
            .cas(
                &keys::client(client.client.id),
                Some(&was.encode()),
                Some(&client.encode()),
                None,
            )
            .await
    }

    async fn registered_client(&self, id: ClientId) -> Stored<Option<Registered>> {
        Ok(self
            .read::<Registered>(&keys::client(id))
            .await?
            .map(|(record, _)| record))
    }

    async fn registered_clients(&self) -> Stored<Vec<Registered>> {
        let mut ids: Vec<u16> = self
            .redis
            .query(redis::cmd("SMEMBERS").arg(keys::CLIENTS))
            .await?;
        ids.sort_unstable();
        let mut all = Vec::with_capacity(ids.len());
        for id in ids {
            // One key at a time: the records may live on different cluster nodes.
            if let Some(client) = self.registered_client(ClientId(id)).await? {
                all.push(client);
            }
        }
        Ok(all)
    }

    async fn remove_client(&self, id: ClientId) -> Stored<bool> {
        let removed: i64 = self
            .redis
            .query(redis::cmd("DEL").arg(keys::client(id)))
            .await?;
        let _: i64 = self
            .redis
            .query(redis::cmd("SREM").arg(keys::CLIENTS).arg(id.0))
            .await?;
        Ok(removed == 1)
    }

    async fn client_named(&self, keys: &NameKeys) -> Stored<Vec<ClientId>> {
        let mut hmget = redis::cmd("HMGET");
        hmget.arg(keys::CLIENT_NAMES).arg(keys::NAMES_COMPLETE);
        for k in keys.iter() {
            hmget.arg(k);
        }
        let mut holders: Vec<Option<u16>> = self.redis.query(&hmget).await?;
        if holders.first() == Some(&None) {
            self.put_names_back().await?;
            holders = self.redis.query(&hmget).await?;
        }
        let mut named: Vec<ClientId> = holders
            .into_iter()
            .skip(1)
            .flatten()
            .map(ClientId)
            .collect();
        named.sort_unstable_by_key(|c| c.0);
        named.dedup();
        Ok(named)
    }

    async fn claim_client_name(&self, keys: &NameKeys, id: ClientId) -> Stored<Option<ClientId>> {
        let mut holder = self.name_script(&self.claim_name, keys, id).await?;
        if holder == Some(-1) {
            self.put_names_back().await?;
            holder = self.name_script(&self.claim_name, keys, id).await?;
        }
        match holder.map(u16::try_from) {
            None => Ok(None),
            Some(Ok(holder)) => Ok(Some(ClientId(holder))),
            Some(Err(_)) => {
                tracing::error!(
                    "df:c:names holds a key of what is no client index, or could not be made complete; the name is not claimed"
                );
                Err(Unavailable)
            }
        }
    }

    async fn release_client_name(&self, keys: &NameKeys, id: ClientId) -> Stored<()> {
        self.name_script(&self.release_name, keys, id).await?;
        Ok(())
    }

    fn sweep(&self, _now: Millis, _budget: usize) -> SweepStats {
        // Redis drops what expired by itself (every key has its time to live). What
        // it must never drop, it may lose all the same (FLUSHALL, a restart without
        // persistence): this instance puts back what it runs on, in the background,
        // so that an instance started later shares it rather than drawing its own.
        if !self.putting_back.swap(true, Ordering::AcqRel) {
            let (kept, busy) = (Arc::clone(&self.kept), Arc::clone(&self.putting_back));
            let put_back = self.redis.put_back(self.secret.clone(), kept);
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        put_back.await;
                        busy.store(false, Ordering::Release);
                    });
                }
                Err(_) => busy.store(false, Ordering::Release),
            }
        }
        SweepStats::default()
    }

    async fn census(&self, now: Millis) -> Stored<Census> {
        let sessions: usize = self
            .redis
            .query(
                redis::cmd("ZCOUNT")
                    .arg(keys::HELD)
                    .arg(format!("({now}"))
                    .arg("+inf"),
            )
            .await?;
        Ok(Census {
            sessions,
            access_tokens: None,
            counts_expirations: false,
        })
    }

    async fn time(&self) -> Stored<Option<Millis>> {
        // Seconds and microseconds, as two numbers in text; from one node of a
        // cluster, always the same (each node has its own clock). An ACL may refuse
        // TIME (it is only in @fast): a clock unknown, not an outage.
        match self
            .redis
            .query_raw_at::<(u64, u64)>(keys::SECRET, &redis::cmd("TIME"))
            .await
        {
            Ok((secs, micros)) => Ok(Some(
                secs.saturating_mul(1000).saturating_add(micros / 1000),
            )),
            // Redis answered, with an error: refused, not away.
            Err(e) if e.code().is_some() => Ok(None),
            Err(_) => Err(Unavailable),
        }
    }

    async fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for (read, what) in [
            (self.eviction_warning().await, "maxmemory-policy"),
            (self.persistence_warning().await, "appendonly"),
        ] {
            match read {
                Ok(warning) => warnings.extend(warning),
                Err(why) => tracing::debug!("Redis's {what} could not be read: {why}"),
            }
        }
        warnings
    }

    fn secret(&self) -> SharedSecret {
        self.secret.clone()
    }
}

impl RedisStore {
    /// Marks the session of `user_code`, redeemed in `family`, as delivered: its
    /// tokens are handed out, and no later poll may finish its redemption again,
    /// whatever becomes of the family's record. Until it is marked, `poll` takes a
    /// later poll for the retry of a redemption whose answer was an error, so the
    /// tokens go out only once it is: [`Delivery::Moved`] when the redemption was
    /// moved to another family meanwhile (hand nothing out), [`Delivery::Unmarked`]
    /// for an earlier build's record, which has no mark (its family's record guards
    /// it, and `poll` never moves it). `Err`: Redis away; the mark may still land
    /// after it (a call that timed out runs when Redis comes back), so its undoing is
    /// sent right behind it on the same connection, and the caller answers 503 and
    /// hands nothing out: the device's retry finishes the redemption.
    async fn mark_delivered(&self, user_code: UserCode, family: u64) -> Stored<Delivery> {
        let key = keys::session(user_code);
        for _ in 0..MAX_RACES {
            let Some((mut k, old)) = self.read::<Kept>(&key).await? else {
                return Ok(Delivery::Unmarked);
            };
            match k.session.state {
                State::Redeemed { family: f, .. } if f != family => return Ok(Delivery::Moved),
                // This call's own mark, found after its answer was lost with its
                // connection and the call went out again.
                State::Redeemed { .. } if k.delivered => return Ok(Delivery::Marked),
                State::Redeemed { .. } if k.hashed => {}
                _ => return Ok(Delivery::Unmarked),
            }
            k.delivered = true;
            let marked = k.encode();
            match self.redis.cas(&key, Some(&old), Some(&marked), None).await {
                Ok(true) => return Ok(Delivery::Marked),
                Ok(false) => continue,
                Err(e) => {
                    let _ = self.redis.cas(&key, Some(&marked), Some(&old), None).await;
                    return Err(e);
                }
            }
        }
        Err(Unavailable)
    }

    /// Takes back the first `n` keys' counts of `ticket`.
    async fn refund_first<const N: usize>(&self, ticket: Ticket<N>, n: usize) -> Stored<()> {
        for (key, opened) in ticket.keys.iter().zip(ticket.opened).take(n) {
            self.update::<Window, _>(&keys::limit(key), |window| match window {
                Some(w) => match Window::refund(w, opened) {
                    Some(w) => (Change::Put(w, None), ()),
                    None => (Change::Delete, ()),
                },
                None => (Change::Keep, ()),
            })
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::eviction_warning;

    #[test]
    fn only_a_redis_that_may_drop_keys_is_warned_of() {
        assert_eq!(eviction_warning("0", "allkeys-lru"), None);
        assert_eq!(eviction_warning("104857600", "noeviction"), None);
        for policy in [
            "allkeys-lru",
            "volatile-ttl",
            "volatile-lru",
            "allkeys-random",
        ] {
            let w = eviction_warning("104857600", policy).unwrap();
            assert!(w.contains(&format!("maxmemory-policy {policy}")), "{w}");
            assert!(w.contains("(104857600 bytes)"), "{w}");
        }
    }
}
