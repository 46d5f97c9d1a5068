//! One code, several instances: issued on one, polled on another, approved through a
//! third, redeemed exactly once however many polls race on two instances (checklist
//! TS-08, TS-10), on one Redis and on a Redis Cluster.

use std::sync::Arc;

use deviceflow_testkit::{RedisCluster, RedisOptions, RedisServer};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_issued_on_one_instance_is_polled_on_another_and_approved_through_a_third() {
    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(3, &config(&redis.url()));
    one_code_three_instances(&fleet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_polls_racing_on_two_instances_redeem_one_code_once() {
    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(2, &config(&redis.url()));
    sixty_four_polls_race(&fleet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_one_code_serves_three_instances_and_redeems_once() {
    let cluster = RedisCluster::start(3).unwrap();
    // The store given as the flag this time, over a configuration that says memory:
    // the flag wins.
    let fleet = Instances::start_with(3, &config("memory"), &["--store", &cluster.url()]);
    one_code_three_instances(&fleet).await;
    sixty_four_polls_race(&fleet).await;
    // TIME has no key: the cluster client sends it to a node of its choice, and the
    // clock offset is measured all the same.
    let metrics = String::from_utf8_lossy(&fleet.at(1).get("/metrics").await.body).into_owned();
    assert!(
        metrics.contains("\ndeviceflow_store_clock_offset_seconds "),
        "{metrics}"
    );
}

/// A code redeemed long enough ago that its tokens, and so its family's record, have
/// expired, while the code itself is still kept (its lifetime and retention outlast
/// the tokens): a replay is still a replay. Before, the Redis store took the missing
/// family record for a redemption cut off before it issued, and issued again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_the_tokens_expired_gets_no_second_token() {
    let redis = RedisServer::start().unwrap();
    let toml = format!(
        "{}\n[tokens]\naccess_token_ttl = 1\nrefresh_token_ttl = 2\n",
        config(&redis.url())
    );
    let fleet = Instances::start(2, &toml);
    let (a, b) = (fleet.at(0), fleet.at(1));
    let approved = a.approved("tv").await;
    tokens(&a.poll("tv", &approved).await);
    tokio::time::sleep(std::time::Duration::from_millis(3000)).await;
    let replay = b.poll("tv", &approved).await;
    assert_eq!(replay.error(), "invalid_grant", "{}", fleet.logs());
}

/// A code of `tv` for `scope` (form-encoded) issued on `at`, approved by alice and
/// redeemed there: its access and refresh tokens.
async fn redeemed_on(at: &Client, scope: &str) -> (String, String) {
    let da = at.post(DA, &format!("client_id=tv&scope={scope}")).await;
    assert_eq!(da.status, 200, "{:?}", da.body);
    let da: deviceflow_wire::DeviceAuthorizationResponse =
        serde_json::from_slice(&da.body).unwrap();
    assert_eq!(
        at.decide(&da.user_code, "approve", "alice").await.status,
        200
    );
    tokens(&at.poll("tv", &da.device_code).await)
}

/// RFC 6749 §6: "If a new refresh token is issued, the refresh token scope MUST be
/// identical to that of the refresh token included by the client in the request." A
/// refresh narrowed to `openid` on A gives an `openid` access token, and a refresh
/// token that still holds `openid tv`, refreshed in full on B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowed_refresh_keeps_the_refresh_token_s_scope_on_redis() {
    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(2, &config(&redis.url()));
    let (a, b) = (fleet.at(0), fleet.at(1));
    let (_, rt) = redeemed_on(a, "openid%20tv").await;
    let narrowed = a
        .post(
            TOKEN,
            &format!("grant_type=refresh_token&client_id=tv&refresh_token={rt}&scope=openid"),
        )
        .await;
    let (access, rt2) = tokens(&narrowed);
    assert_eq!(narrowed.json()["scope"], "openid");
    assert_eq!(b.introspect(&access).await["scope"], "openid");
    assert_eq!(
        b.introspect(&rt2).await["scope"],
        "openid tv",
        "{}",
        fleet.logs()
    );
    let again = b.refresh(&rt2).await;
    tokens(&again);
    assert_eq!(again.json()["scope"], "openid tv");
}

/// A grant's refresh exchanges are paced across instances (`tokens::REFRESH_PACE`):
/// ten, alternating between two instances on one Redis, then the eleventh is 429
/// with the wait on either, and the token is left working (helper-101: a client
/// looping on its own token had made Redis keep 2,300 records a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_s_refresh_exchanges_are_paced_across_instances_on_redis() {
    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(2, &config(&redis.url()));
    let (_, mut rt) = redeemed_on(fleet.at(0), "openid").await;
    for i in 0..10 {
        (_, rt) = tokens(&fleet.at(i % 2).refresh(&rt).await);
    }
    for at in 0..2 {
        let paced = fleet.at(at).refresh(&rt).await;
        paced.assert_oauth_error(429, "temporarily_unavailable");
        let retry: u64 = paced.header("retry-after").unwrap().parse().unwrap();
        assert!((295..=300).contains(&retry), "{retry}");
    }
    assert_eq!(fleet.at(1).introspect(&rt).await["active"], true);
}

/// RFC 7009 §2.1 on Redis: a confidential client's revocation of another client's
/// active token is refused (and leaves it active) on any instance; once its own client
/// has revoked the grant through another instance, it is an invalid token, which is no
/// error (§2.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_client_s_revocation_is_refused_on_redis_while_the_token_is_active() {
    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(2, &config(&redis.url()));
    let (a, b) = (fleet.at(0), fleet.at(1));
    let (access, rt) = redeemed_on(a, "openid").await;
    let conf = basic("conf", CONF_SECRET);
    let conf = [("authorization", conf.as_str())];
    for token in [&access, &rt] {
        b.post_with(REVOKE, &format!("token={token}"), &conf)
            .await
            .assert_oauth_error(400, "invalid_request");
        // A public client is told what an unknown token gets, and revokes nothing.
        let r = b
            .post(REVOKE, &format!("client_id=tv-b&token={token}"))
            .await;
        assert_eq!((r.status, r.body.is_empty()), (200, true), "{:?}", r.body);
    }
    assert_eq!(a.introspect(&access).await["active"], true);
    assert_eq!(
        a.post(REVOKE, &format!("client_id=tv&token={rt}"))
            .await
            .status,
        200
    );
    assert_eq!(b.introspect(&access).await["active"], false);
    for token in [&access, &rt] {
        let r = b.post_with(REVOKE, &format!("token={token}"), &conf).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
}

/// Device authorization on A, a poll on B, the person's approval through C, the token
/// on B, introspected on C and A; a replay on A then revokes it everywhere.
async fn one_code_three_instances(fleet: &Instances) {
    let (a, b, c) = (fleet.at(0), fleet.at(1), fleet.at(2));
    let da = a.authorize("tv").await;
    assert_eq!(
        b.poll("tv", &da.device_code).await.error(),
        "authorization_pending",
        "{}",
        fleet.logs()
    );
    let decided = c.decide(&da.user_code, "approve", "alice").await;
    assert_eq!(decided.status, 200, "{:?}", decided.body);
    // An approved code's answer is final even when the poll is early (checklist PL-06).
    let (access, refresh) = tokens(&b.poll("tv", &da.device_code).await);
    for at in [c, a] {
        let v = at.introspect(&access).await;
        assert_eq!(v["active"], true, "{v}");
        assert_eq!(v["username"], "alice", "{v}");
        assert_eq!(v["client_id"], "tv", "{v}");
    }
    // RFC 8628 §3.5 / RFC 6749 §4.1.2: the code is single use; its replay, on another
    // instance, revokes what it issued.
    a.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "invalid_grant");
    for at in [a, b, c] {
        assert_eq!(at.introspect(&access).await["active"], false);
    }
    c.refresh(&refresh)
        .await
        .assert_oauth_error(400, "invalid_grant");
}

/// 64 polls of one approved code, on their own connections, half to each of the
/// first two instances, released together: exactly one token; every other poll
/// `invalid_grant`.
async fn sixty_four_polls_race(fleet: &Instances) {
    let da = fleet.at(0).authorize("tv").await;
    let decided = fleet.at(1).decide(&da.user_code, "approve", "alice").await;
    assert_eq!(decided.status, 200, "{:?}", decided.body);
    let start = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = Vec::new();
    for i in 0..64 {
        let base = fleet.at(i % 2).base.clone();
        let (start, body) = (Arc::clone(&start), poll_body("tv", &da.device_code));
        tasks.push(tokio::spawn(async move {
            // A client each: its own connection, so the polls really arrive together.
            let http = reqwest::Client::new();
            start.wait().await;
            let r = http
                .post(format!("{base}{TOKEN}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    let mut access = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
        match status {
            200 => access.push(v["access_token"].as_str().unwrap().to_owned()),
            400 => assert_eq!(v["error"], "invalid_grant", "{v}"),
            other => panic!("a racing poll got {other}: {v}\n{}", fleet.logs()),
        }
    }
    assert_eq!(access.len(), 1, "tokens for one code: {access:?}");
    // The losers were replays: the winner's token is revoked, on every instance. One
    // more replay after the race, so this holds whatever order the race took.
    fleet
        .at(1)
        .poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "invalid_grant");
    for i in 0..fleet.len() {
        let v = fleet.at(i).introspect(&access[0]).await;
        assert_eq!(v["active"], false, "instance {i}: {v}");
    }
}

/// Over TLS (`rediss://`), the store a managed Redis asks for: three instances share
/// a code as on a plain connection. The Redis's certificate is signed by a CA of the
/// test's own, named in SSL_CERT_FILE; without it the instance refuses to start, in
/// one line that says what to do. A plain `redis://` to the TLS port is told to use
/// `rediss://`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_three_instances_share_a_code_and_a_private_ca_is_named_in_ssl_cert_file() {
    let redis = RedisServer::start_with(RedisOptions {
        tls: true,
        ..RedisOptions::default()
    })
    .unwrap();
    let ca = redis.ca_file();
    let trust = [("SSL_CERT_FILE", ca.as_os_str())];
    let (code, out, err) = check_config_with_env(&redis.tls_url(), &trust);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("store         reachable"), "{out}");
    let (code, _, err) = check_config(&redis.tls_url());
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    // Which hint depends on whether this environment names roots of its own.
    assert!(
        err.contains("UnknownIssuer")
            && (err.contains("name that CA's certificate in SSL_CERT_FILE")
                || err.contains("name the root CA there, or have Redis send its whole chain")),
        "{err}"
    );
    // A CA file that cannot be read is said as that, not as an unknown CA.
    let missing = [("SSL_CERT_FILE", std::ffi::OsStr::new("/nonexistent/ca.crt"))];
    let (code, _, err) = check_config_with_env(&redis.tls_url(), &missing);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("SSL_CERT_FILE=/nonexistent/ca.crt") && !err.contains("UnknownIssuer"),
        "{err}"
    );
    let plain = redis.tls_url().replace("rediss://", "redis://");
    let (code, _, err) = check_config(&plain);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("use rediss://"), "{err}");

    // check-config ran on the demo configuration, whose users the records now name.
    redis.command(&["FLUSHALL"]).unwrap();
    let fleet = Instances::start_with_env(3, &config(&redis.tls_url()), &[], &trust);
    one_code_three_instances(&fleet).await;
}

/// A browser where a person signed in through one instance is known to the others (its
/// cookie is sealed with the store's shared secret), and the guess windows are the
/// store's: a stranger who fills a username's window through one instance is held back
/// through every instance, and the person's browser signs in through a third.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_known_through_one_instance_signs_in_through_another_while_a_stranger_waits() {
    use crate::person::Person;
    use deviceflow_server::storage::rate_limit::SIGN_IN_LIMIT_PER_USERNAME;

    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(
        3,
        &format!("store = \"{}\"\n{}", redis.url(), people_config()),
    );
    let mut person = Person::new(fleet.at(0));
    person.sign_in("alice").await;
    let known = person
        .known
        .clone()
        .expect("a sign-in makes the browser known");

    let stranger_at = |i| Person::from_address(fleet.at(i), [127, 0, 0, 2].into());
    let mut stranger = stranger_at(1);
    stranger.get("/device/login").await;
    for _ in 0..SIGN_IN_LIMIT_PER_USERNAME.max_failures {
        let wrong = stranger
            .submit(
                "/device/login",
                &[("username", "alice"), ("password", "guess")],
            )
            .await;
        assert_eq!(wrong.status, 400);
    }
    let mut elsewhere = stranger_at(2);
    elsewhere.get("/device/login").await;
    let held = elsewhere
        .submit(
            "/device/login",
            &[("username", "alice"), ("password", &password_of("alice"))],
        )
        .await;
    assert_eq!(held.status, 429, "{held:?}");

    let mut again = Person::new(fleet.at(2));
    again.known = Some(known);
    again.sign_in("alice").await;
}
