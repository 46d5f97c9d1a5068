//! Redis goes away mid-flow: the endpoints that need it answer 503
//! `temporarily_unavailable` with `Retry-After`, never a 500 and never a token
//! without its record; when Redis comes back on its port (with its data: an
//! append-only file) service resumes by itself, no instance restarted.

use std::time::{Duration, Instant};

use deviceflow_testkit::{RedisOptions, RedisServer};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_away_the_store_endpoints_answer_503_and_service_resumes_when_it_returns() {
    let mut redis = RedisServer::start_with(RedisOptions {
        persistence: true,
        ..RedisOptions::default()
    })
    .unwrap();
    let fleet = Instances::start(2, &config(&redis.url()));
    let (a, b) = (fleet.at(0), fleet.at(1));

    // Mid-flow: a pending code, an approved one not yet redeemed, a token pair.
    let pending = a.authorize("tv").await;
    assert_still_pending(&b.poll("tv", &pending.device_code).await);
    let approved = b.approved("tv").await;
    let (access, refresh) = tokens(&a.poll("tv", &a.approved("tv").await).await);

    redis.stop().unwrap();
    for at in [a, b] {
        assert_unavailable(&at.post(DA, "client_id=tv").await, "device authorization");
        assert_unavailable(&at.poll("tv", &pending.device_code).await, "pending poll");
        // Never a token whose record could not be written.
        assert_unavailable(&at.poll("tv", &approved).await, "approved poll");
        assert_unavailable(&at.refresh(&refresh).await, "refresh");
        let introspected = at
            .post_with(
                INTROSPECT,
                &format!("token={access}"),
                &[("authorization", &basic("conf", CONF_SECRET))],
            )
            .await;
        // Not `active: false` for a token that is active: 503, so a resource server
        // knows it was not told.
        assert_unavailable(&introspected, "introspection");
        // RFC 7009 §2.2.1: a revocation the server cannot carry out now is a 503, so
        // the client retries rather than believing the token dead.
        let revoked = at
            .post(REVOKE, &format!("client_id=tv&token={refresh}"))
            .await;
        assert_eq!(revoked.status, 503, "revocation: {:?}", revoked.body);
        assert!(
            revoked.header("retry-after").is_some(),
            "revocation: no Retry-After"
        );
        let decided = at.decide(&pending.user_code, "approve", "alice").await;
        assert_eq!(decided.status, 503, "decision: {:?}", decided.body);
    }
    // The server itself is alive: its health endpoint answers 200 (restarting it would
    // not bring Redis back), and its readiness 503, for a load balancer to steer by.
    assert_eq!(a.get("/healthz").await.status, 200);
    assert_not_ready(&a.get("/readyz").await);
    // And its metrics too, saying the store is away, with the counters it has.
    let metrics = a.get("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert_eq!(metrics.status, 200, "{text}");
    assert!(text.contains("deviceflow_store_up 0\n"), "{text}");
    assert!(
        text.contains("deviceflow_device_authorizations_total"),
        "{text}"
    );
    assert!(!text.contains("deviceflow_sessions "), "{text}");

    redis.restart().unwrap();
    // Service resumes by itself: each instance (each reconnects on its own) answers
    // device authorization again within seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, at) in [a, b].into_iter().enumerate() {
        loop {
            let answer = at.post(DA, "client_id=tv").await;
            if answer.status == 200 {
                break;
            }
            assert_unavailable(&answer, "device authorization while reconnecting");
            assert!(
                Instant::now() < deadline,
                "instance {i} still answers 503 30 s after Redis returned\n{}",
                fleet.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for at in [a, b] {
        assert_eq!(at.get("/readyz").await.status, 200);
    }
    // What was stored before the outage is all there.
    for at in [a, b] {
        assert_still_pending(&at.poll("tv", &pending.device_code).await);
        assert_eq!(at.introspect(&access).await["active"], true);
    }
    let (late_access, _) = tokens(&b.poll("tv", &approved).await);
    assert_eq!(a.introspect(&late_access).await["active"], true);
    // The refresh refused during the outage did not rotate the token away.
    tokens(&a.refresh(&refresh).await);
    // And a new flow completes across both instances.
    let da = a.authorize("tv").await;
    assert_eq!(
        b.decide(&da.user_code, "approve", "alice").await.status,
        200
    );
    let (new_access, _) = tokens(&a.poll("tv", &da.device_code).await);
    assert_eq!(b.introspect(&new_access).await["active"], true);
    let text = String::from_utf8_lossy(&a.get("/metrics").await.body).into_owned();
    assert!(text.contains("deviceflow_store_up 1\n"), "{text}");
}

/// `check-config` tries the store: exit 0 while Redis answers, a one-line reason and
/// exit 1 once it is gone.
#[test]
fn check_config_connects_to_redis_and_says_when_it_cannot() {
    let mut redis = RedisServer::start().unwrap();
    let (code, _, err) = check_config(&redis.url());
    assert_eq!(code, Some(0), "{err}");
    redis.stop().unwrap();
    let (code, _, err) = check_config(&redis.url());
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&redis.url()) && err.contains("cannot reach Redis"),
        "{err}"
    );
}

/// A redemption whose write reached Redis only after the server gave up on it (writes
/// paused longer than the server waits: a slow or failing-over Redis): the device was
/// told 503, so it retries (RFC 6749 §5.2 `temporarily_unavailable`); the retry must not
/// find its own redemption and call it a replay. Failed on the Redis store of
/// 2bd45c1..5fdd726: the retry gets `invalid_grant` and the audit log a
/// `device_code_replayed` with the family revoked (fixed by `Store::redeem`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_answered_503_while_its_write_was_paused_can_be_retried() {
    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(2, &config(&redis.url()));
    let (a, b) = (fleet.at(0), fleet.at(1));
    let approved = a.approved("tv").await;
    // Reads go on, writes wait: the poll reads the approved session, and its
    // compare-and-set waits until the server gives up.
    let paused = redis
        .command(&["CLIENT", "PAUSE", "60000", "WRITE"])
        .unwrap();
    assert_eq!(paused.text().as_deref(), Some("OK"));
    assert_unavailable(&a.poll("tv", &approved).await, "poll while writes pause");
    // Redis carries out the write it queued.
    redis.command(&["CLIENT", "UNPAUSE"]).unwrap();
    let retry = b.poll("tv", &approved).await;
    assert_ne!(
        retry.error(),
        "invalid_grant",
        "the retry of a poll answered 503 was taken for a replay\n{}",
        fleet.logs()
    );
    let (access, _) = tokens(&retry);
    assert_eq!(a.introspect(&access).await["active"], true);
}

/// A server whose Redis cannot be reached at start-up exits 1 with one readable line,
/// and never says it listens first: a supervisor reading "listening" must be able to
/// trust it.
#[test]
fn a_server_that_cannot_reach_its_redis_at_start_says_so_and_never_that_it_listens() {
    let mut redis = RedisServer::start().unwrap();
    let url = redis.url();
    redis.stop().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["--store", &url, "--listen", "127.0.0.1:0"])
        .env_remove("DEVICEFLOW_CONFIG")
        .env_remove("DEVICEFLOW_STORE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("listening"), "said it listens:\n{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&url) && err.contains("cannot reach Redis"),
        "{err}"
    );
}
