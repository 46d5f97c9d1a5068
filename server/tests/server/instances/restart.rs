//! Restarts lose nothing that lives in Redis: every instance stopped (SIGTERM) and
//! started again on the same Redis, pending codes still poll, an approved code still
//! redeems, issued tokens still introspect and refresh. The same scenario on the
//! in-memory store loses all of it, so the test tells the two apart.

use deviceflow_testkit::RedisServer;

use super::*;

/// What a scenario left behind before the restart.
struct Before {
    pending: Vec<String>,
    approved: String,
    access: String,
    refresh: String,
}

/// Codes (three pending and polled once, one approved and never polled) and a token
/// pair from another flow, spread over the instances.
async fn issue(fleet: &Instances) -> Before {
    let n = fleet.len();
    let mut pending = Vec::new();
    for i in 0..3 {
        let da = fleet.at(i % n).authorize("tv").await;
        assert_still_pending(&fleet.at((i + 1) % n).poll("tv", &da.device_code).await);
        pending.push(da.device_code);
    }
    let approved = fleet.at(1 % n).approved("tv").await;
    let redeemed = fleet.at(0).approved("tv").await;
    let (access, refresh) = tokens(&fleet.at(1 % n).poll("tv", &redeemed).await);
    assert_eq!(fleet.at(0).introspect(&access).await["active"], true);
    Before {
        pending,
        approved,
        access,
        refresh,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_instance_on_redis_loses_no_code_and_no_token() {
    let redis = RedisServer::start().unwrap();
    let mut fleet = Instances::start(2, &config(&redis.url()));
    let before = issue(&fleet).await;
    fleet.stop_all();
    fleet.start_all();
    let (a, b) = (fleet.at(0), fleet.at(1));

    for (i, code) in before.pending.iter().enumerate() {
        let answer = fleet.at(i % 2).poll("tv", code).await;
        assert_still_pending(&answer);
    }
    let (access, refresh) = tokens(&b.poll("tv", &before.approved).await);
    assert_eq!(a.introspect(&access).await["active"], true);
    for at in [a, b] {
        assert_eq!(at.introspect(&before.access).await["active"], true);
    }
    let (_, refreshed) = tokens(&a.refresh(&before.refresh).await);
    assert_ne!(refreshed, before.refresh, "refresh tokens rotate");
    assert_eq!(b.refresh(&refresh).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_on_the_memory_store_loses_every_code_and_token() {
    // One instance: on memory, two instances share nothing even before a restart.
    let mut fleet = Instances::start(1, &config("memory"));
    let before = issue(&fleet).await;
    fleet.stop_all();
    fleet.start_all();
    let a = fleet.at(0);

    for code in &before.pending {
        a.poll("tv", code)
            .await
            .assert_oauth_error(400, "invalid_grant");
    }
    a.poll("tv", &before.approved)
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert_eq!(a.introspect(&before.access).await["active"], false);
    a.refresh(&before.refresh)
        .await
        .assert_oauth_error(400, "invalid_grant");
}

/// Records in Redis name users by their place in `[[users]]`: restarted with a user
/// gone, what that user approved, held or signed into is refused as an RFC answer (a
/// poll or a replay `invalid_grant`, a refresh `invalid_grant`, the token inactive),
/// never a panic and a dropped connection, as each was before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_removed_at_a_restart_gets_no_token_and_the_server_stays_whole() {
    let redis = RedisServer::start().unwrap();
    let two = config(&redis.url());
    let bob = "[[users]]\n        username = \"bob\"";
    assert!(two.contains(bob), "{two}");
    let mut fleet = Instances::start(1, &two);
    let a = fleet.at(0);
    let mut by_bob = Vec::new();
    for _ in 0..2 {
        let da = a.authorize("tv").await;
        assert_eq!(a.decide(&da.user_code, "approve", "bob").await.status, 200);
        by_bob.push(da.device_code);
    }
    let (redeemed, approved) = (by_bob[0].clone(), by_bob[1].clone());
    let (access, refresh) = tokens(&a.poll("tv", &redeemed).await);
    fleet.stop_all();
    fleet.rewrite_config(&two.replace(bob, ""));
    fleet.start_all();
    let a = fleet.at(0);
    // Before the replay below revokes the family: the tokens are inactive for their
    // person alone, so another client's revocation of them is of invalid tokens, 200,
    // not "issued to another client" (RFC 7009 §2.2; `App::still_granted`).
    assert_eq!(a.introspect(&access).await["active"], false);
    let conf = basic("conf", CONF_SECRET);
    for token in [&access, &refresh] {
        let r = a
            .post_with(
                REVOKE,
                &format!("token={token}"),
                &[("authorization", conf.as_str())],
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }

    a.poll("tv", &approved)
        .await
        .assert_oauth_error(400, "invalid_grant");
    a.poll("tv", &redeemed)
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert_eq!(a.introspect(&access).await["active"], false);
    a.refresh(&refresh)
        .await
        .assert_oauth_error(400, "invalid_grant");
    let logs = fleet.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}

/// Records in Redis name users and clients by their place in the configuration: a
/// server restarted with two users swapped would hand one person's grants to the
/// other, so it refuses to start, in one line naming the place; users added at the
/// end are fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_users_changed_places_refuses_to_start_on_their_records() {
    let redis = RedisServer::start().unwrap();
    let two = config(&redis.url());
    let (alice, bob) = ("username = \"alice\"", "username = \"bob\"");
    assert!(two.contains(alice) && two.contains(bob), "{two}");
    let mut fleet = Instances::start(1, &two);
    fleet.stop_all();
    // One more user at the end: the same places, and it starts.
    let three = format!("{two}\n[[users]]\nusername = \"carol\"\n");
    fleet.rewrite_config(&three);
    fleet.start_all();
    assert_eq!(fleet.at(0).get("/healthz").await.status, 200);
    fleet.stop_all();

    let swapped = three
        .replace(alice, "username = \"placeholder\"")
        .replace(bob, alice)
        .replace("username = \"placeholder\"", bob);
    let path = std::env::temp_dir().join(format!("deviceflow-swapped-{}.toml", std::process::id()));
    std::fs::write(&path, swapped).unwrap();
    let mut child = std::process::Command::new(BIN)
        .args([
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("DEVICEFLOW_STORE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It must stop by itself at once; one that serves is stopped here, and fails.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait().unwrap().is_none() {
        child.kill().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("listening"), "said it listens:\n{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("user 1 is \"bob\" in the configuration, but \"alice\""),
        "{err}"
    );
}

/// Whether the browser holding `cookie` is signed in at `server`.
async fn signed_in_with(server: &Client, cookie: &str) -> bool {
    let mut browser = crate::person::Person::new(server);
    browser.cookie = Some(cookie.to_owned());
    let page = browser.get("/device").await;
    match page.location() {
        Some("/device/login") => false,
        _ => {
            assert_eq!(page.heading(), "Connect a device", "{page:?}");
            true
        }
    }
}

/// A sign-in is bound to the password it was made with. Restarted on the same Redis
/// with the same configuration, the person is still signed in; restarted with a new
/// password hash for them, the session made with the old one is signed out (whoever
/// signed in with a stolen password is out at the change), and the new one signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_password_ends_the_sign_ins_made_with_the_old_one() {
    let redis = RedisServer::start().unwrap();
    let toml = format!("store = \"{}\"\n{}", redis.url(), people_config());
    let mut fleet = Instances::start(1, &toml);
    let cookie = {
        let mut person = crate::person::Person::new(fleet.at(0));
        person.sign_in("alice").await;
        person
            .cookie
            .clone()
            .expect("a sign-in sets the session cookie")
    };
    fleet.stop_all();
    fleet.start_all();
    assert!(signed_in_with(fleet.at(0), &cookie).await);

    // people_config salts anew: alice's hash differs, her password does not.
    let changed = format!("store = \"{}\"\n{}", redis.url(), people_config());
    assert_ne!(changed, toml);
    fleet.stop_all();
    fleet.rewrite_config(&changed);
    fleet.start_all();
    assert!(!signed_in_with(fleet.at(0), &cookie).await);
    crate::person::Person::new(fleet.at(0))
        .sign_in("alice")
        .await;
}
