//! Redis misbehaving under the instances, and what a Redis dump holds: a write the
//! server gave up on that Redis carries out later, a record dropped (eviction, an
//! operator's `DEL`) while the rest stays, a password asked for at start-up, a Redis
//! that may drop keys when full or is full, an instance whose clock is off the store's,
//! and no device code that could be read back out of Redis.

use deviceflow_testkit::{RedisCluster, RedisOptions, RedisServer, Reply};

use super::*;

/// Every key of this Redis matching `pattern` (`KEYS`: these Redis hold a handful).
fn keys(redis: &RedisServer, pattern: &str) -> Vec<String> {
    match redis.command(&["KEYS", pattern]).unwrap() {
        Reply::Array(Some(keys)) => keys.iter().filter_map(Reply::text).collect(),
        other => panic!("KEYS {pattern}: {other:?}"),
    }
}

/// The bytes a base64url device code carries (RFC 4648 §5, no padding).
fn base64url(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut held = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64url") as u32;
        bits = bits << 6 | v;
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
        }
    }
    out
}

/// Makes `replica` a replica of `primary` and waits until it has synced (Redis's
/// 5 s delay before a first sync turned off on the primary).
fn replicate(replica: &RedisServer, primary: &RedisServer) {
    primary
        .command(&["CONFIG", "SET", "repl-diskless-sync-delay", "0"])
        .unwrap();
    let port = primary.port().to_string();
    replica.command(&["REPLICAOF", "127.0.0.1", &port]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !replica
        .info("replication")
        .unwrap()
        .contains("master_link_status:up")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never synced"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A refresh whose rotation reached Redis only after the server gave up on it (writes
/// paused longer than the server waits): the client was told 503
/// `temporarily_unavailable`, so it retries with the same refresh token. The retry is
/// not a reuse (RFC 9700 §4.14.2 is about a token used twice, and this one was never
/// answered), so it must get tokens and leave the grant alive. Failed before: the
/// rotation was the first write, the retry found it rotated, answered `invalid_grant`
/// and revoked the whole family.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_answered_503_while_its_write_was_paused_can_be_retried() {
    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(2, &config(&redis.url()));
    let (a, b) = (fleet.at(0), fleet.at(1));
    let (access, refresh) = tokens(&a.poll("tv", &a.approved("tv").await).await);
    let paused = redis
        .command(&["CLIENT", "PAUSE", "60000", "WRITE"])
        .unwrap();
    assert_eq!(paused.text().as_deref(), Some("OK"));
    assert_unavailable(&a.refresh(&refresh).await, "refresh while writes pause");
    redis.command(&["CLIENT", "UNPAUSE"]).unwrap();
    let retry = b.refresh(&refresh).await;
    assert_eq!(
        retry.status,
        200,
        "the retry of a refresh answered 503 was taken for a reuse: {:?}\n{}",
        String::from_utf8_lossy(&retry.body),
        fleet.logs()
    );
    let (new_access, new_refresh) = tokens(&retry);
    assert_eq!(a.introspect(&access).await["active"], true);
    assert_eq!(b.introspect(&new_access).await["active"], true);
    // The rotation happened once: the token the retry got works, the old one is spent.
    assert_eq!(a.refresh(&new_refresh).await.status, 200);
    b.refresh(&refresh)
        .await
        .assert_oauth_error(400, "invalid_grant");
}

/// A redeemed code whose token family's record is gone while the code's own record
/// stays (a Redis at `maxmemory` with a `volatile-*` or `allkeys-*` policy evicts any
/// key with a time to live; an operator's `DEL` does the same, and is what this test
/// does): a replay of the code is still a replay. RFC 8628 §3.5 / RFC 6749 §4.1.2: a
/// device code redeems at most once. Failed before: the replay was taken for the retry
/// of a redemption cut off before it issued, and got a second pair of tokens, in the
/// first pair's family, which came back to life with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_the_family_record_was_evicted_gets_no_second_token() {
    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(2, &config(&redis.url()));
    let (a, b) = (fleet.at(0), fleet.at(1));
    let approved = a.approved("tv").await;
    let (access, _) = tokens(&a.poll("tv", &approved).await);
    let families = keys(&redis, "df:f:*");
    assert_eq!(families.len(), 1, "{families:?}");
    let mut del = vec!["DEL"];
    del.extend(families.iter().map(String::as_str));
    assert_eq!(redis.command(&del).unwrap(), Reply::Integer(1));
    let replay = b.poll("tv", &approved).await;
    assert_eq!(
        replay.status,
        400,
        "a replayed device code got tokens again: {:?}\n{}",
        String::from_utf8_lossy(&replay.body),
        fleet.logs()
    );
    replay.assert_oauth_error(400, "invalid_grant");
    assert_eq!(a.introspect(&access).await["active"], false);
}

/// A Redis dump, a replica's copy or `MONITOR` must not hand out device codes: the
/// device code is the user code (the key) and a 128-bit secret (RFC 8628 §5.2, "very
/// high entropy"), and the record keeps only a hash of the secret, as the tokens are
/// keyed by theirs. Failed before: the record held the secret in clear, so anyone who
/// read it could redeem the code once approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_record_in_redis_does_not_hold_its_device_codes_secret() {
    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(2, &config(&redis.url()));
    let (a, b) = (fleet.at(0), fleet.at(1));
    let da = a.authorize("tv").await;
    let code = base64url(&da.device_code);
    assert_eq!(code.len(), 21, "{}", da.device_code);
    let secret = &code[5..];
    let sessions = keys(&redis, "df:s:*");
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let Reply::Bulk(Some(record)) = redis.command(&["GET", &sessions[0]]).unwrap() else {
        panic!("{} holds no string", sessions[0]);
    };
    assert!(
        !record.windows(secret.len()).any(|w| w == secret),
        "the session record holds the device code's secret in clear: {record:?}"
    );
    // And the code still works on every instance, with the right secret only.
    assert_still_pending(&b.poll("tv", &da.device_code).await);
    assert_eq!(
        b.decide(&da.user_code, "approve", "alice").await.status,
        200
    );
    let mut forged = da.device_code.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    a.poll("tv", std::str::from_utf8(&forged).unwrap())
        .await
        .assert_oauth_error(400, "invalid_grant");
    tokens(&a.poll("tv", &da.device_code).await);
}

/// A Redis that asks for a password it was not given: the server says so at start,
/// in one line, and never prints the password it was given.
#[test]
fn a_redis_that_wants_a_password_is_named_as_the_reason_and_no_password_is_printed() {
    let redis = RedisServer::start_with(RedisOptions {
        password: Some("right-password-1".into()),
        ..RedisOptions::default()
    })
    .unwrap();
    let check = |store: &str| {
        let (code, out, err) = check_config(store);
        (code, format!("{out}{err}"), err)
    };
    let port = redis.port();
    let (code, _, err) = check(&format!("redis://127.0.0.1:{port}"));
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("NOAUTH") || err.to_lowercase().contains("password"),
        "the reason (Redis asks for a password) is not said: {err}"
    );
    let (code, all, err) = check(&format!("redis://:wrong-password-2@127.0.0.1:{port}"));
    assert_eq!(code, Some(1), "{err}");
    assert!(!all.contains("wrong-password-2"), "{all}");
    let (code, all, _) = check(&redis.url());
    assert_eq!(code, Some(0), "{all}");
    assert!(!all.contains("right-password-1"), "{all}");
}

/// The counter of registered clients' indexes lost while their records stay (evicted
/// under an `allkeys-*` policy: it is written once per registration, so it is the
/// coldest key there is; or deleted by an operator): the next registration must not
/// take an index a registered client holds. Records and tokens name clients by index,
/// so that would hand the first application's tokens to the second, and delete the
/// first. Failed before: the second registration overwrote the first's record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_client_counter_never_gives_a_registered_clients_index_to_another() {
    let redis = RedisServer::start().unwrap();
    let toml = format!(
        "{}\n[registration]\ninitial_access_token = \"{INITIAL_TOKEN}\"\n",
        config(&redis.url())
    );
    let fleet = Instances::start(2, &toml);
    let (a, b) = (fleet.at(0), fleet.at(1));
    let first = a.register_device_app("First TV").await;
    let da = b.authorize(&first).await;
    assert_eq!(
        b.decide(&da.user_code, "approve", "alice").await.status,
        200
    );
    let (access, _) = tokens(&a.poll(&first, &da.device_code).await);
    assert_eq!(
        redis.command(&["DEL", "df:c:given"]).unwrap(),
        Reply::Integer(1)
    );
    let second = b.register_device_app("Second TV").await;
    assert_ne!(first, second);
    assert_eq!(a.post(DA, &format!("client_id={first}")).await.status, 200);
    assert_eq!(b.post(DA, &format!("client_id={second}")).await.status, 200);
    let v = b.introspect(&access).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["client_id"], first.as_str(), "{v}");
}

/// `check-config` of another instance's configuration `toml` (written to a file named
/// after `name` for the call): its exit status and standard error.
fn check_config_file(toml: &str, name: &str) -> (Option<i32>, String) {
    let path = std::env::temp_dir().join(format!("deviceflow-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, toml).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["--config", path.to_str().unwrap(), "check-config"])
        .env_remove("DEVICEFLOW_STORE")
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Redis flushed (`FLUSHALL`, or restarted without persistence) under running
/// instances: they keep serving with the shared secret and the user roster they
/// started on, and put both back, so that an instance started afterwards shares the
/// secret (the sign-in form's CSRF key: a form one instance served must be accepted
/// by another) and is held to the same places for users. Failed before: the first
/// instance to start after the flush drew a secret of its own, and one with its users
/// in another order started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_flush_the_running_instances_put_back_the_shared_secret_and_roster() {
    let redis = RedisServer::start().unwrap();
    let two = config(&redis.url());
    let fleet = Instances::start(2, &two);
    let secret = |redis: &RedisServer| redis.command(&["GET", "df:secret"]).unwrap();
    let before = secret(&redis);
    assert!(matches!(before, Reply::Bulk(Some(_))), "{before:?}");
    assert_eq!(
        redis.command(&["FLUSHALL"]).unwrap(),
        Reply::Status("OK".into())
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while secret(&redis) != before || keys(&redis, "df:roster:*").len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "10 s after a flush, df:secret is {:?} (was {before:?}), rosters {:?}\n{}",
            secret(&redis),
            keys(&redis, "df:roster:*"),
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A new instance with alice and bob swapped is refused, as before the flush.
    let swapped = two
        .replace("username = \"alice\"", "username = \"placeholder\"")
        .replace("username = \"bob\"", "username = \"alice\"")
        .replace("username = \"placeholder\"", "username = \"bob\"");
    let (status, err) = check_config_file(&swapped, "flushed");
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("user 1 is \"bob\""), "{err}");
    // The running instances answer throughout.
    assert_still_pending(
        &fleet
            .at(1)
            .poll("tv", &fleet.at(0).authorize("tv").await.device_code)
            .await,
    );
}

/// Redis flushed, and an instance with fewer users put its roster back first (played
/// here by writing it): the running instance grows it back to its own, so that an
/// instance with another user at the running one's place is still refused. Failed
/// before: the running instance left the shorter roster as it was (`SET NX`), the
/// other instance started, and a code approved as one person on the first introspected
/// as another on the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_flush_a_shorter_roster_put_back_first_is_grown_back() {
    let redis = RedisServer::start().unwrap();
    let two = config(&redis.url());
    let fleet = Instances::start(1, &two);
    let roster = |redis: &RedisServer| redis.command(&["GET", "df:roster:users"]).unwrap();
    let full = roster(&redis);
    assert_eq!(full, Reply::Bulk(Some(br#"["alice","bob"]"#.to_vec())));
    redis.command(&["FLUSHALL"]).unwrap();
    redis
        .command(&["SET", "df:roster:users", r#"["alice"]"#])
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while roster(&redis) != full {
        assert!(
            std::time::Instant::now() < deadline,
            "10 s after a shorter roster was put back, it is {:?}\n{}",
            roster(&redis),
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let other = two.replace("username = \"bob\"", "username = \"dave\"");
    let (status, err) = check_config_file(&other, "grown");
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("user 2 is \"dave\""), "{err}");
}

/// Redis flushed, and an instance with another user at one of the running instance's
/// places started on it before the running one put its roster back: the running one
/// finds that, says so, and answers 503 to everything (its records would name people
/// by place, and read as someone else's there) until the rosters agree again. Failed
/// before: it went on serving, and a code it approved as one person was redeemed on
/// the other instance as another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_naming_another_user_at_a_place_stops_the_instance_until_it_agrees() {
    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(1, &config(&redis.url()));
    assert_eq!(fleet.at(0).post(DA, "client_id=tv").await.status, 200);
    redis.command(&["FLUSHALL"]).unwrap();
    redis
        .command(&["SET", "df:roster:users", r#"["alice","dave"]"#])
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !fleet
        .logs()
        .contains("df:roster:users names \"dave\" at place 2")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "10 s after another roster was written\n{}",
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = fleet.at(0).post(DA, "client_id=tv").await;
    refused.assert_oauth_error(503, "temporarily_unavailable");
    // Not ready, so that a load balancer steers around it; alive all the same.
    assert_not_ready(&fleet.at(0).get("/readyz").await);
    assert_eq!(fleet.at(0).get("/healthz").await.status, 200);
    // The other instance stopped and the roster deleted, as the error says: this one
    // writes its own back and serves.
    assert!(
        fleet.logs().contains("then DEL df:roster:users"),
        "{}",
        fleet.logs()
    );
    redis.command(&["DEL", "df:roster:users"]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let a = fleet.at(0).post(DA, "client_id=tv").await;
        if a.status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "10 s after the roster agreed again: {} {:?}\n{}",
            a.status,
            a.body,
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        fleet.logs().contains("agree with this instance's again"),
        "{}",
        fleet.logs()
    );
    assert_eq!(fleet.at(0).get("/readyz").await.status, 200);
    assert_eq!(
        redis.command(&["GET", "df:roster:users"]).unwrap(),
        Reply::Bulk(Some(br#"["alice","bob"]"#.to_vec()))
    );
}

/// Redis restarted empty, and an instance started before the running ones put the
/// shared secret back: it drew its own. The running instance takes that one, so that a
/// sign-in form served by either is accepted by the other again; a form it sealed with
/// the old secret is refused like another store's. Failed before: the running instance
/// kept its old secret until it was restarted, logging an error every second, and
/// every form crossing between the two was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_drawn_anew_after_redis_lost_it_is_taken_by_the_running_instances() {
    use crate::person::Person;

    let redis = RedisServer::start().unwrap();
    let mut fleet = Instances::start(
        2,
        &format!("store = \"{}\"\n{}", redis.url(), people_config()),
    );
    let secret = |redis: &RedisServer| redis.command(&["GET", "df:secret"]).unwrap();
    let before = secret(&redis);
    // A form the running instance serves before the loss.
    let first = Client {
        base: fleet.at(0).base.clone(),
        http: reqwest::Client::new(),
    };
    let mut old_form = Person::new(&first);
    assert_eq!(old_form.get("/device/login").await.status, 200);
    // Only the first instance runs when Redis loses everything; another instance's
    // draw is played by writing another secret before it can put its own back.
    fleet.stop(1);
    let drawn = "d".repeat(32);
    assert_eq!(
        redis
            .command(&["FLUSHALL"])
            .and_then(|_| redis.command(&["SET", "df:secret", &drawn]))
            .unwrap(),
        Reply::Status("OK".into())
    );
    fleet.start_all();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !fleet.logs().contains("this instance now runs on that one") {
        assert!(
            std::time::Instant::now() < deadline,
            "10 s after another secret was drawn\n{}",
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(secret(&redis), Reply::Bulk(Some(drawn.into_bytes())));
    assert_ne!(secret(&redis), before);
    // A form served by either instance is accepted by the other.
    for (from, to) in [(0, 1), (1, 0)] {
        let mut served = Person::new(fleet.at(from));
        assert_eq!(served.get("/device/login").await.status, 200);
        let mut elsewhere = Person::new(fleet.at(to));
        elsewhere.cookie = served.cookie.clone();
        elsewhere.csrf = served.csrf.clone();
        let signed = elsewhere
            .submit(
                "/device/login",
                &[("username", "alice"), ("password", &password_of("alice"))],
            )
            .await;
        assert_eq!(
            signed.status, 303,
            "a form of {from} sent to {to}: {signed:?}"
        );
    }
    // The form served before the loss was sealed with the old secret.
    let stale = old_form
        .submit(
            "/device/login",
            &[("username", "alice"), ("password", &password_of("alice"))],
        )
        .await;
    assert_ne!(stale.status, 303, "{stale:?}");
}

/// A Redis Cluster that asks for a password, given once in the URL as for one Redis
/// (`redis+cluster://:PW@h1,h2,h3`): refused before, in one line ("Cannot use
/// different password among initial nodes"); every seed now carries it, the server
/// reaches the cluster (its keys live on every node), and the password is never shown.
#[test]
fn a_cluster_password_written_once_reaches_every_node() {
    let cluster = RedisCluster::start(3).unwrap();
    for node in cluster.nodes() {
        let set = node
            .command(&["CONFIG", "SET", "requirepass", "cluster-pw-3"])
            .unwrap();
        assert_eq!(set.text().as_deref(), Some("OK"));
    }
    let seeds = cluster.url().replace("redis+cluster://", "");
    let (code, out, err) = check_config(&format!("redis+cluster://:cluster-pw-3@{seeds}"));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        !format!("{out}{err}").contains("cluster-pw-3"),
        "{out}{err}"
    );
    // Without it, what the cluster said, in one line.
    let (code, _, err) = check_config(&cluster.url());
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// A store in this process on a Redis of its own, reached through a [`RedisProxy`],
/// for [`config`]: the Redis (kept running while held), the proxy, the settings.
async fn proxied_store() -> (
    RedisServer,
    RedisProxy,
    deviceflow_server::Settings,
    deviceflow_server::RedisStore,
) {
    use deviceflow_server::{FileConfig, RedisStore, Settings};
    let redis = RedisServer::start().unwrap();
    let proxy = RedisProxy::start(redis.port()).await;
    let settings =
        Settings::from_file(FileConfig::parse(&config(&proxy.url()), "test").unwrap()).unwrap();
    let store = RedisStore::connect(&proxy.url(), &settings.store_settings())
        .await
        .unwrap();
    (redis, proxy, settings, store)
}

/// Between the server and Redis, as a network and a host name are: passes bytes both
/// ways; each new connection goes to the node it points at then, and one already open
/// stays with the node it reached (a managed Redis's or a Sentinel-fed name at a
/// failover). Armed, it lets the next call it was armed for (by default `EVALSHA`, a
/// compare-and-set) through and cuts that connection before Redis's reply comes back,
/// as a failover or a network blip does; armed to hold (`arm_to_hold`), it keeps that
/// call for a while, then passes it on and goes on, as a stalled Redis does.
struct RedisProxy {
    port: u16,
    target: std::sync::Arc<std::sync::atomic::AtomicU16>,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut_after: std::sync::Arc<std::sync::Mutex<&'static [&'static [u8]]>>,
    hold_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl RedisProxy {
    async fn start(redis_port: u16) -> RedisProxy {
        use std::sync::atomic::Ordering::SeqCst;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(redis_port));
        let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cut_after: std::sync::Arc<std::sync::Mutex<&'static [&'static [u8]]>> =
            std::sync::Arc::new(std::sync::Mutex::new(&[b"EVALSHA"]));
        let hold_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (to, arm, calls, hold) = (
            std::sync::Arc::clone(&target),
            std::sync::Arc::clone(&armed),
            std::sync::Arc::clone(&cut_after),
            std::sync::Arc::clone(&hold_ms),
        );
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let node = to.load(SeqCst);
                let Ok(mut redis) = tokio::net::TcpStream::connect(("127.0.0.1", node)).await
                else {
                    continue;
                };
                let armed = std::sync::Arc::clone(&arm);
                let calls = std::sync::Arc::clone(&calls);
                let hold = std::sync::Arc::clone(&hold);
                tokio::spawn(async move {
                    let (mut from_client, mut from_redis) = (vec![0u8; 65536], vec![0u8; 65536]);
                    loop {
                        tokio::select! {
                            n = client.read(&mut from_client) => {
                                let Ok(n @ 1..) = n else { return };
                                let chunk = &from_client[..n];
                                let named = calls.lock().unwrap().iter().any(|call| {
                                    chunk.windows(call.len()).any(|w| w == *call)
                                });
                                let cut = named && armed.swap(false, SeqCst);
                                let held = hold.load(SeqCst);
                                if cut && held > 0 {
                                    // Redis runs it late, after the server gave up.
                                    tokio::time::sleep(std::time::Duration::from_millis(held)).await;
                                    if redis.write_all(chunk).await.is_err() {
                                        return;
                                    }
                                    continue;
                                }
                                if redis.write_all(chunk).await.is_err() {
                                    return;
                                }
                                if cut {
                                    // Redis runs it; its reply is never passed on.
                                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                                    return;
                                }
                            }
                            n = redis.read(&mut from_redis) => {
                                let Ok(n @ 1..) = n else { return };
                                if client.write_all(&from_redis[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        RedisProxy {
            port,
            target,
            armed,
            cut_after,
            hold_ms,
        }
    }

    /// Arms it to hold the next of `calls` for `ms` before Redis gets it.
    fn arm_to_hold(&self, calls: &'static [&'static [u8]], ms: u64) {
        self.hold_ms.store(ms, std::sync::atomic::Ordering::SeqCst);
        self.arm_for(calls);
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Arms it for the next of `calls` (their names as sent, e.g. `b"ZRANGE"`).
    fn arm_for(&self, calls: &'static [&'static [u8]]) {
        *self.cut_after.lock().unwrap() = calls;
        self.arm();
    }

    fn armed(&self) -> bool {
        self.armed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// New connections go to `redis_port` from now on.
    fn point_at(&self, redis_port: u16) {
        self.target
            .store(redis_port, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A refresh whose rotation Redis made, but whose answer was lost with its connection
/// (the client sends the call once more on a new one, `conn.rs`, and the
/// compare-and-set then finds the token no longer as read): that is this exchange's
/// own write, not a reuse (RFC 9700 §4.14.2), so the client gets its new pair and the
/// grant lives. Failed before: 400 `invalid_grant`, and the whole family revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_whose_rotation_lost_its_answer_is_not_taken_for_a_reuse() {
    let redis = RedisServer::start().unwrap();
    let proxy = RedisProxy::start(redis.port()).await;
    let fleet = Instances::start(1, &config(&proxy.url()));
    let a = fleet.at(0);
    let (_, refresh) = tokens(&a.poll("tv", &a.approved("tv").await).await);
    proxy.arm();
    let exchanged = a.refresh(&refresh).await;
    assert!(
        !proxy.armed(),
        "the rotation's compare-and-set never went out"
    );
    assert_eq!(
        exchanged.status,
        200,
        "a rotation whose answer was lost was taken for a reuse: {:?}\n{}",
        String::from_utf8_lossy(&exchanged.body),
        fleet.logs()
    );
    let (new_access, new_refresh) = tokens(&exchanged);
    assert_eq!(a.introspect(&new_access).await["active"], true);
    // Rotated once: the new token works, the old one is spent.
    assert_eq!(a.refresh(&new_refresh).await.status, 200);
    a.refresh(&refresh)
        .await
        .assert_oauth_error(400, "invalid_grant");
}

/// A poll whose compare-and-set Redis made, but whose answer was lost with its
/// connection (the client sends the call once more on a new one, and it then finds the
/// record no longer as read): that is this poll's own write, so the poll is answered
/// as decided, pending, and the device's next poll an interval later is pending too;
/// an approval the same is answered approved. Failed before (a review's fault proxy):
/// the poll was decided again 0 ms after its own write, answered slow_down, and its
/// code's interval was 5 s longer for good; the approval answered 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_whose_write_lost_its_answer_is_not_taken_for_an_early_one() {
    let redis = RedisServer::start().unwrap();
    let proxy = RedisProxy::start(redis.port()).await;
    let fleet = Instances::start(1, &config(&proxy.url()));
    let a = fleet.at(0);
    let da = a.authorize("tv").await;
    let code = da.device_code;
    a.poll("tv", &code)
        .await
        .assert_oauth_error(400, "authorization_pending");
    // config(): interval 1 s.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    proxy.arm();
    let lost = a.poll("tv", &code).await;
    assert!(!proxy.armed(), "the poll's compare-and-set never went out");
    assert_eq!(
        lost.error(),
        "authorization_pending",
        "a poll whose write lost its answer: {:?}\n{}",
        String::from_utf8_lossy(&lost.body),
        fleet.logs()
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    a.poll("tv", &code)
        .await
        .assert_oauth_error(400, "authorization_pending");
    // An approval the same: it landed, so it is answered approved (it had been 409
    // already_decided, by itself), and the device gets its token.
    proxy.arm();
    let approved = a.decide(&da.user_code, "approve", "alice").await;
    assert!(
        !proxy.armed(),
        "the decision's compare-and-set never went out"
    );
    assert_eq!(
        approved.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&approved.body)
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(a.poll("tv", &code).await.status, 200);
}

/// A redeeming poll whose family record reached Redis only after the server gave up
/// on it (Redis stalled past CALL_TIMEOUT): the device was told 503
/// `temporarily_unavailable` and retries. Nobody was given the tokens, so the retry
/// must get them (RFC 8628 §3.5: the approval stands) and a later replay must not.
/// Failed before (helper-62, 3 to 4 in 100 pauses): the retry found the family
/// recorded, took itself for a replay, revoked it and answered `invalid_grant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redemption_whose_family_record_landed_after_its_503_is_finished_by_the_retry() {
    let redis = RedisServer::start().unwrap();
    let proxy = RedisProxy::start(redis.port()).await;
    let fleet = Instances::start(1, &config(&proxy.url()));
    let a = fleet.at(0);
    let approved = a.approved("tv").await;
    // The family's record is the first call naming a family key (`df:f:`).
    proxy.arm_to_hold(&[b"df:f:"], 1_500);
    assert_unavailable(&a.poll("tv", &approved).await, "the redeeming poll");
    assert!(!proxy.armed(), "the family's record never went out");
    for _ in 0..100 {
        if !keys(&redis, "df:f:*").is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        keys(&redis, "df:f:*").len(),
        1,
        "the late write never landed"
    );
    let retry = a.poll("tv", &approved).await;
    assert_eq!(
        retry.status,
        200,
        "the retry after a 503 was taken for a replay: {:?}\n{}",
        String::from_utf8_lossy(&retry.body),
        fleet.logs()
    );
    let (access, _) = tokens(&retry);
    assert_eq!(a.introspect(&access).await["active"], true);
    // Redeemed once: a replay now is refused, and revokes what it redeemed.
    a.poll("tv", &approved)
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert_eq!(a.introspect(&access).await["active"], false);
}

/// A redemption whose family record was written, but whose mark "delivered" timed out
/// (Redis stalled past CALL_TIMEOUT): until the mark, a later poll is taken for the
/// retry of a redemption whose answer was an error and is given the tokens anew, so
/// this one must hand nothing out (503), and the mark, if it lands late, is undone
/// behind it. The device's retry then redeems, once, in a fresh family. Failed before
/// (helper-67): the redeeming poll handed its tokens out unmarked, and a replay a
/// second later got a second live pair while the device's was revoked (TS-08).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redemption_whose_delivery_mark_timed_out_hands_nothing_out_and_the_retry_redeems_once() {
    use deviceflow_server::protocol::ids::ClientId;
    use deviceflow_server::protocol::ids::UserId;
    use deviceflow_server::protocol::scope::ScopeSet;
    use deviceflow_server::protocol::session::{Decision, PollOutcome};
    use deviceflow_server::storage::tokens::Grant;
    use deviceflow_server::Store;

    let (_redis, proxy, settings, store) = proxied_store().await;
    let (client, policy, now) = (ClientId(0), settings.poll, 1_000_000);
    let code = store
        .create(client, ScopeSet(1), now, 600_000, &policy)
        .await
        .unwrap()
        .unwrap();
    store
        .decide(code.user_code, Decision::Approve(UserId(0)), now)
        .await
        .unwrap()
        .unwrap();
    let PollOutcome::Issue {
        user,
        scope,
        family,
    } = store.poll(&code, client, now, &policy).await.unwrap()
    else {
        panic!("an approved code's poll redeems it");
    };
    let grant = Grant {
        client,
        user,
        scope,
    };
    // The redemption's one compare-and-set is the mark (its tokens and family record
    // are plain writes).
    proxy.arm_to_hold(&[b"EVALSHA"], 1_500);
    let redeemed = store.redeem(code.user_code, grant, family, true, now).await;
    assert!(
        redeemed.is_err(),
        "tokens handed out while their delivery was not marked: {redeemed:?}"
    );
    assert!(!proxy.armed(), "the mark never went out");
    std::thread::sleep(Duration::from_millis(1_500));
    let later = now + 2_000;
    let PollOutcome::Issue { family: fresh, .. } =
        store.poll(&code, client, later, &policy).await.unwrap()
    else {
        panic!("the device's retry after the 503 did not redeem");
    };
    assert_ne!(fresh, family, "redeemed anew in a fresh family");
    let issued = store
        .redeem(code.user_code, grant, fresh, true, later)
        .await
        .unwrap();
    assert!(issued.is_some(), "the retry's tokens");
    // Redeemed and delivered once: a replay now is a replay.
    assert!(matches!(
        store
            .poll(&code, client, later + 1_000, &policy)
            .await
            .unwrap(),
        PollOutcome::Replayed { .. }
    ));
}

/// A refresh whose rotation reached Redis only after the server gave up on it (Redis
/// stalled past CALL_TIMEOUT after the new pair was written): the client was told 503
/// and retries with the same token. That token was never answered for, so the retry
/// is no reuse (RFC 9700 §4.14.2) and gets a pair; the old token used again after
/// that is one, at once (checklist BCP-01), and the family goes. Failed before
/// (helper-62, 5 in 49 pauses): the late rotation made the retry a reuse, and the
/// device was logged out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_whose_rotation_landed_after_its_503_can_be_retried() {
    let redis = RedisServer::start().unwrap();
    let proxy = RedisProxy::start(redis.port()).await;
    let fleet = Instances::start(1, &config(&proxy.url()));
    let a = fleet.at(0);
    let (_, refresh) = tokens(&a.poll("tv", &a.approved("tv").await).await);
    // The rotation is the exchange's one compare-and-set (`EVALSHA`).
    proxy.arm_to_hold(&[b"EVALSHA"], 1_500);
    assert_unavailable(&a.refresh(&refresh).await, "the refresh");
    assert!(!proxy.armed(), "the rotation never went out");
    std::thread::sleep(Duration::from_millis(1_000));
    let retry = a.refresh(&refresh).await;
    assert_eq!(
        retry.status,
        200,
        "the retry of a refresh answered 503 was taken for a reuse: {:?}\n{}",
        String::from_utf8_lossy(&retry.body),
        fleet.logs()
    );
    let (access, renewed) = tokens(&retry);
    assert_eq!(a.introspect(&access).await["active"], true);
    a.refresh(&refresh)
        .await
        .assert_oauth_error(400, "invalid_grant");
    a.refresh(&renewed)
        .await
        .assert_oauth_error(400, "invalid_grant");
}

/// One person's sign-ins past the bound end the oldest sessions, and no more than the
/// bound requires, even when the reply to the call that trims them is lost and the
/// call goes out again on a new connection (`conn.rs`). Failed before: the trim was
/// `ZPOPMIN`. The lost call had popped the oldest session off the person's set, and
/// its reply, which named it to be ended, never came: it stayed signed in, out of the
/// set's reach, until it expired. The call sent again popped and ended the
/// second-oldest, which the bound keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_whose_trim_lost_its_reply_ends_only_the_sessions_past_the_bound() {
    use deviceflow_server::accounts::users::Credential;
    use deviceflow_server::protocol::ids::UserId;
    use deviceflow_server::storage::web_sessions::MAX_SESSIONS_PER_USER;
    use deviceflow_server::Store;

    let (_redis, proxy, _, store) = proxied_store().await;
    let now = 1_000_000;
    // Each step of the trim loses its reply in turn, for a person of its own: the read
    // (ZPOPMIN before), the sessions' end, their removal from the set. The names as
    // RESP frames them, so that ZREM is not ZREMRANGEBYSCORE.
    let steps: [&'static [&'static [u8]]; 3] = [
        &[b"\r\nZPOPMIN\r\n", b"\r\nZRANGE\r\n"],
        &[b"\r\nDEL\r\n"],
        &[b"\r\nZREM\r\n"],
    ];
    for (person, cut) in steps.into_iter().enumerate() {
        let user = UserId(person as u32);
        let mut sessions = Vec::new();
        for i in 0..=MAX_SESSIONS_PER_USER as u64 {
            if i == MAX_SESSIONS_PER_USER as u64 {
                // The sign-in past the bound: this step of the trim loses its reply.
                proxy.arm_for(cut);
            }
            let (id, _) = store
                .start_web_session(user, Credential(1), now + i)
                .await
                .unwrap()
                .unwrap();
            sessions.push(id);
        }
        let step = cut
            .iter()
            .map(|c| String::from_utf8_lossy(c).trim().to_owned())
            .collect::<Vec<_>>()
            .join("/");
        assert!(!proxy.armed(), "{step}: the trim never sent it");
        let later = now + 1_000;
        assert!(
            store
                .web_session(&sessions[0], later)
                .await
                .unwrap()
                .is_none(),
            "{step} cut: the oldest session stands past the bound"
        );
        for (i, id) in sessions.iter().enumerate().skip(1) {
            assert!(
                store.web_session(id, later).await.unwrap().is_some(),
                "{step} cut: session {i} of {} ended, within the bound of {MAX_SESSIONS_PER_USER}",
                sessions.len()
            );
        }
    }
}

/// A failover under a running instance: the replica is promoted, the old primary
/// becomes its replica, and the store's address names the new primary. The instance's
/// connection still reaches the old node, which now refuses every write (`READONLY`);
/// the instance must connect again and go on, losing nothing that was replicated.
/// Failed before: every poll and device authorization answered 503 until a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failover_an_instance_reaches_the_new_primary_without_a_restart() {
    let (old, new) = (RedisServer::start().unwrap(), RedisServer::start().unwrap());
    let new_port = new.port().to_string();
    replicate(&new, &old);
    let address = RedisProxy::start(old.port()).await;
    let fleet = Instances::start(1, &config(&address.url()));
    let a = fleet.at(0);
    let da = a.authorize("tv").await;
    assert_still_pending(&a.poll("tv", &da.device_code).await);
    // Everything written so far is on the replica too.
    caught_up(&new, &old);

    new.command(&["REPLICAOF", "NO", "ONE"]).unwrap();
    old.command(&["REPLICAOF", "127.0.0.1", &new_port]).unwrap();
    address.point_at(new.port());

    let polled = a.poll("tv", &da.device_code).await;
    assert_eq!(polled.status, 400, "{:?}\n{}", polled.body, fleet.logs());
    assert_still_pending(&polled);
    assert_eq!(
        a.decide(&da.user_code, "approve", "alice").await.status,
        200
    );
    tokens(&a.poll("tv", &da.device_code).await);
    assert_eq!(a.post(DA, "client_id=tv").await.status, 200);
    assert!(
        fleet
            .logs()
            .contains("Redis refused a write as a replica (a failover?)"),
        "{}",
        fleet.logs()
    );
}

/// A Redis that may drop keys when it reaches its maxmemory (any policy but
/// `noeviction`: every record has a time to live, so `volatile-*` drops them too):
/// `check-config` and a starting instance say so, naming the policy and the fix.
#[test]
fn a_redis_that_may_drop_keys_is_warned_of_at_check_config_and_at_start() {
    let redis = RedisServer::start().unwrap();
    // Writes logged: the other warning (`a_redis_that_does_not_log_its_writes_…`) aside.
    assert_eq!(
        redis
            .command(&["CONFIG", "SET", "appendonly", "yes"])
            .unwrap(),
        Reply::Status("OK".into())
    );
    let (code, out, err) = check_config(&redis.url());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("store memory  never drops keys"), "{out}{err}");
    assert!(!err.contains("warning"), "{err}");
    for (name, value) in [("maxmemory", "100mb"), ("maxmemory-policy", "volatile-lru")] {
        assert_eq!(
            redis.command(&["CONFIG", "SET", name, value]).unwrap(),
            Reply::Status("OK".into())
        );
    }
    let (code, out, err) = check_config(&redis.url());
    assert_eq!(code, Some(0), "a warning, not a refusal: {out}{err}");
    assert!(out.contains("store memory  may drop keys"), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("maxmemory-policy volatile-lru")
            && err.contains("set maxmemory-policy noeviction"),
        "{err}"
    );
    // check-config ran on the demo configuration, whose users the records now name.
    redis.command(&["FLUSHALL"]).unwrap();
    let fleet = Instances::start(1, &config(&redis.url()));
    let log = fleet.logs();
    assert!(
        log.contains("WARN") && log.contains("maxmemory-policy volatile-lru"),
        "{log}"
    );
}

/// The session cap's sets (all sessions held, and each client's share) live as long
/// as their last member may be forgotten, like every other record: they had no time
/// to live, and a deleted client's set stayed for good (helper-62, Info).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_caps_sets_expire_with_their_last_session() {
    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(1, &config(&redis.url()));
    fleet.at(0).authorize("tv").await;
    let sets = keys(&redis, "df:{held}:*");
    assert_eq!(sets.len(), 2, "{sets:?}");
    for set in &sets {
        match redis.command(&["PTTL", set]).unwrap() {
            Reply::Integer(ms) => assert!(ms > 0, "{set} has no time to live ({ms})"),
            other => panic!("PTTL {set}: {other:?}"),
        }
    }
}

/// A Redis without its append-only file comes back from a restart with its last
/// snapshot, or empty: approvals and tokens since are lost, and a code redeemed since
/// redeems again (helper-62 saw it, checklist TS-08). Warned of in one line at
/// check-config and at start; `appendonly yes` is quiet. Nothing was said before.
#[test]
fn a_redis_that_does_not_log_its_writes_is_warned_of_at_check_config_and_at_start() {
    let redis = RedisServer::start().unwrap();
    let (code, out, err) = check_config(&redis.url());
    assert_eq!(code, Some(0), "a warning, not a refusal: {out}{err}");
    assert!(
        out.contains("store writes  not logged (appendonly no)"),
        "{out}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("deviceflow-server: warning: this Redis does not log every write")
            && err.contains("set appendonly yes"),
        "{err}"
    );
    // check-config ran on the demo configuration, whose users the records now name.
    redis.command(&["FLUSHALL"]).unwrap();
    let fleet = Instances::start(1, &config(&redis.url()));
    let log = fleet.logs();
    assert!(
        log.contains("WARN") && log.contains("this Redis does not log every write"),
        "{log}"
    );
    drop(fleet);
    redis.command(&["FLUSHALL"]).unwrap();
    assert_eq!(
        redis
            .command(&["CONFIG", "SET", "appendonly", "yes"])
            .unwrap(),
        Reply::Status("OK".into())
    );
    let (code, out, err) = check_config(&redis.url());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("store writes  logged (appendonly yes)"),
        "{out}"
    );
    assert!(!err.contains("warning"), "{err}");
}

/// A store URL naming a replica: every write would be refused (`READONLY`), and every
/// device answered 503 for as long as the server ran. Refused at start, in one line
/// naming the primary. Without the check, the server started on a replica that held
/// the shared secret (it reads before it writes: a full primary must not stop a
/// restart), and earlier it said it could not reach Redis (`READONLY`).
#[test]
fn a_replica_is_refused_at_start_naming_its_primary() {
    let primary = RedisServer::start().unwrap();
    let (code, out, err) = check_config(&primary.url());
    assert_eq!(code, Some(0), "{out}{err}");
    let replica = RedisServer::start().unwrap();
    replicate(&replica, &primary);
    // Synced: the shared secret is on the replica too.
    assert_eq!(
        replica.command(&["EXISTS", "df:secret"]).unwrap(),
        Reply::Integer(1)
    );
    let port = primary.port();
    let (code, out, err) = check_config(&replica.url());
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "is a replica of 127.0.0.1:{port}, which refuses writes: name its primary"
        )),
        "{err}"
    );
}

/// A Redis full under `noeviction` refuses every write: an instance (re)started on it
/// must start, and answer what needs a write 503 `temporarily_unavailable` with
/// `Retry-After` (never a 500), and everything again once there is room; the log says
/// so once, where every request flipped it between "unavailable" and "answers again".
/// Failed before at the restart: the shared secret was written with `SET NX` even when
/// it was there, which a full Redis refuses, and the instance exited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_restarted_on_a_full_redis_starts_and_answers_503_until_there_is_room() {
    let redis = RedisServer::start().unwrap();
    let mut fleet = Instances::start(1, &config(&redis.url()));
    let da = fleet.at(0).authorize("tv").await;
    fleet.stop_all();
    for (name, value) in [("maxmemory-policy", "noeviction"), ("maxmemory", "1")] {
        redis.command(&["CONFIG", "SET", name, value]).unwrap();
    }
    fleet.start_all();
    let a = fleet.at(0);
    for _ in 0..3 {
        assert_unavailable(&a.post(DA, "client_id=tv").await, "device authorization");
        // A poll writes its time (RFC 8628 §3.5 pacing): refused as a whole.
        assert_unavailable(&a.poll("tv", &da.device_code).await, "poll");
        let metrics = String::from_utf8_lossy(&a.get("/metrics").await.body).into_owned();
        assert!(metrics.contains("deviceflow_store_up 1"), "{metrics}");
    }
    // Reads answered between refused writes: said once, not as an outage that ends
    // and starts again with every request.
    let log = fleet.logs();
    assert_eq!(log.matches("Redis refused a call").count(), 1, "{log}");
    assert!(!log.contains("answers again"), "{log}");
    redis.command(&["CONFIG", "SET", "maxmemory", "0"]).unwrap();
    assert_still_pending(&a.poll("tv", &da.device_code).await);
    assert_eq!(a.post(DA, "client_id=tv").await.status, 200);
}

/// The clock offset an instance's `/metrics` shows, in seconds.
async fn clock_offset_shown(instance: &Client) -> f64 {
    let text = String::from_utf8_lossy(&instance.get("/metrics").await.body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("deviceflow_store_clock_offset_seconds "))
        .unwrap_or_else(|| panic!("no clock offset in /metrics: {text}"))
        .parse()
        .unwrap()
}

/// An instance's clock off the store's: measured against Redis `TIME` and shown in
/// `/metrics`, so that instances whose clocks differ (and so pace and expire codes
/// differently) can be told apart. In the process, on a clock set 5 s ahead and then
/// 3 s behind; then a running instance on the system clock, whose offset is about 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_s_clock_offset_from_the_store_is_measured_and_shown() {
    use deviceflow_server::{App, Clock, FileConfig, RedisStore, Settings};

    let redis = RedisServer::start().unwrap();
    let settings = Settings::from_file(FileConfig::parse(&test_config(), "test").unwrap()).unwrap();
    let real_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let clock = Clock::manual(0);
    let store = RedisStore::connect(&redis.url(), &settings.store_settings())
        .await
        .unwrap();
    let app = App::with_store(settings, "http://test".into(), clock.clone(), store);
    for ahead in [5_000, -3_000] {
        // The manual clock stands still while Redis's runs: the offset is `ahead`, less
        // however long the measurement took (a loaded machine's), less a millisecond
        // of rounding.
        let before = real_ms();
        clock.set((before + ahead) as u64);
        let offset = app.clock_offset().await.unwrap().unwrap();
        let took = real_ms() - before;
        assert!(
            (ahead - took - 1..=ahead + 1).contains(&offset),
            "{offset} ms, {ahead} ms ahead, measured in {took} ms"
        );
    }

    let fleet = Instances::start(1, &config(&redis.url()));
    let shown = clock_offset_shown(fleet.at(0)).await;
    assert!(shown.abs() < 0.25, "{shown}");
    let memory = Instances::start(1, &config("memory"));
    let text = String::from_utf8_lossy(&memory.at(0).get("/metrics").await.body).into_owned();
    assert!(
        !text.contains("clock_offset"),
        "the memory store is this instance: {text}"
    );
}

/// libfaketime's multi-threaded library (Debian's `faketime`, which
/// `scripts/install-test-deps.sh` installs), preloaded into a server to set its clock
/// off: `faketime` itself forks, so the process a test stops would not be the server.
fn libfaketime() -> std::path::PathBuf {
    std::fs::read_dir("/usr/lib")
        .unwrap()
        .filter_map(Result::ok)
        .map(|arch| arch.path().join("faketime/libfaketimeMT.so.1"))
        .find(|lib| lib.exists())
        .expect("libfaketime: run scripts/install-test-deps.sh (Debian's faketime)")
}

/// A running instance whose wall clock is 2 s behind (libfaketime; the monotonic clock
/// left alone): it warns at start, naming the offset and the bound, and `/metrics`
/// shows the offset. Behind a load balancer, a device whose polls reached it after an
/// instance on time would be told `slow_down` on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_clock_is_behind_the_store_s_warns_at_start_and_shows_it() {
    let redis = RedisServer::start().unwrap();
    let dir = std::env::temp_dir().join(format!("deviceflow-skew-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("server.toml");
    std::fs::write(&config_path, config(&redis.url())).unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["--config", config_path.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--quiet"])
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", "-2s")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DEVICEFLOW_") {
            cmd.env_remove(key);
        }
    }
    let server = ServerProcess::spawn(cmd).unwrap();
    let client = Client {
        base: server.base(),
        http: reqwest::Client::new(),
    };
    let shown = clock_offset_shown(&client).await;
    assert!((-2.25..=-1.75).contains(&shown), "{shown}");
    // The sweeper's first check runs as the server starts serving. Wait for its line,
    // not any WARN: the test Redis's `appendonly no` is warned of before that.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !server.log().contains("s behind the shared store's")
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = server.log();
    assert!(
        log.contains("s behind the shared store's") && log.contains("within 0.250 s of it"),
        "{log}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A least-privilege ACL user, as a managed Redis hands out: keys, scripts and
/// connection commands, none of `@admin`, `@dangerous` or `@fast`'s `TIME`. On the
/// primary, the server runs, and its clock and memory policy are said to be unknown
/// (not an outage, no 503, no "unavailable" in the log); on a replica, whose `ROLE`
/// it may not read, the first write (`READONLY`) still refuses it at start. Failed
/// before: check-config exited 1 ("Redis stopped answering"), every scrape logged an
/// outage, and the replica was taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_refused_time_role_and_config_runs_on_a_primary_and_is_refused_a_replica() {
    const ACL: [&str; 11] = [
        "ACL",
        "SETUSER",
        "app",
        "on",
        ">app-password-1",
        "~*",
        "&*",
        "+@read",
        "+@write",
        "+@scripting",
        "+@connection",
    ];
    let primary = RedisServer::start().unwrap();
    assert_eq!(primary.command(&ACL).unwrap(), Reply::Status("OK".into()));
    let url = |port: u16| format!("redis://app:app-password-1@127.0.0.1:{port}");
    let (code, out, err) = check_config(&url(primary.port()));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("store clock   unknown: Redis refused TIME"),
        "{out}"
    );
    assert!(out.contains("store memory  unknown"), "{out}");
    assert!(!err.contains("warning"), "{err}");
    // check-config ran on the demo configuration, whose users the records now name.
    primary.command(&["FLUSHALL"]).unwrap();
    let fleet = Instances::start(1, &config(&url(primary.port())));
    let a = fleet.at(0);
    let da = a.authorize("tv").await;
    assert_still_pending(&a.poll("tv", &da.device_code).await);
    let metrics = String::from_utf8_lossy(&a.get("/metrics").await.body).into_owned();
    assert!(metrics.contains("deviceflow_store_up 1"), "{metrics}");
    assert!(!metrics.contains("clock_offset"), "{metrics}");
    assert!(!fleet.logs().contains("unavailable"), "{}", fleet.logs());

    let replica = RedisServer::start().unwrap();
    replicate(&replica, &primary);
    // ACL users are not replicated: the replica gets the same one.
    replica.command(&ACL).unwrap();
    let (code, out, err) = check_config(&url(replica.port()));
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("this Redis refuses writes (READONLY): it is a replica; name its primary"),
        "{err}"
    );
}

/// On a Redis Cluster the memory policy is read on every primary: one node that may
/// drop keys is enough for the warning, every time. Failed before: `CONFIG GET` went
/// to a node at random, and said "never drops keys" two times in three.
#[test]
fn on_a_cluster_one_primary_that_may_drop_keys_is_warned_of_every_time() {
    let cluster = RedisCluster::start(3).unwrap();
    let node = &cluster.nodes()[1];
    for (name, value) in [("maxmemory", "100mb"), ("maxmemory-policy", "allkeys-lru")] {
        node.command(&["CONFIG", "SET", name, value]).unwrap();
    }
    for _ in 0..4 {
        let (code, out, err) = check_config(&cluster.url());
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(out.contains("store memory  may drop keys"), "{out}{err}");
        assert!(err.contains("maxmemory-policy allkeys-lru"), "{err}");
        assert!(out.contains("store clock   this machine's is"), "{out}");
    }
}
