//! Registered clients live in the store: on Redis, a client registered through one
//! instance is known to every other at once, survives a restart of them all, and is
//! gone everywhere once deleted through any; on the in-memory store a restart forgets
//! it (as the README says).

use deviceflow_testkit::RedisServer;
use reqwest::Method;

use super::*;

/// [`config`] with dynamic registration on.
fn registration(store: &str) -> String {
    format!(
        "{}\n[registration]\ninitial_access_token = \"{INITIAL_TOKEN}\"\n",
        config(store)
    )
}

/// A device flow of `client_id` started on `a`, approved on `b`, redeemed on `a`.
async fn flow(a: &Client, b: &Client, client_id: &str) -> (String, String) {
    let da = a.authorize(client_id).await;
    assert_eq!(
        b.decide(&da.user_code, "approve", "alice").await.status,
        200
    );
    tokens(&a.poll(client_id, &da.device_code).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registered_on_one_instance_works_on_another_and_survives_a_restart() {
    let redis = RedisServer::start().unwrap();
    let mut fleet = Instances::start(2, &registration(&redis.url()));
    let client_id = fleet.at(0).register_device_app("Shared TV").await;
    let (access, _) = flow(fleet.at(1), fleet.at(0), &client_id).await;
    assert_eq!(fleet.at(0).introspect(&access).await["active"], true);

    fleet.stop_all();
    fleet.start_all();
    let (a, b) = (fleet.at(0), fleet.at(1));
    let (_, refresh) = flow(b, a, &client_id).await;
    assert_eq!(a.introspect(&access).await["active"], true);

    // Deleted through one instance: unknown on the other at once.
    let deleted = a.delete_app(&client_id).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    b.post(DA, &format!("client_id={client_id}"))
        .await
        .assert_oauth_error(401, "invalid_client");
    b.post(
        TOKEN,
        &format!("grant_type=refresh_token&client_id={client_id}&refresh_token={refresh}"),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    assert_eq!(b.introspect(&access).await["active"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_memory_store_forgets_registered_clients() {
    let mut fleet = Instances::start(1, &registration("memory"));
    let client_id = fleet.at(0).register_device_app("Forgotten TV").await;
    assert_eq!(
        fleet
            .at(0)
            .post(DA, &format!("client_id={client_id}"))
            .await
            .status,
        200
    );
    fleet.stop_all();
    fleet.start_all();
    fleet
        .at(0)
        .post(DA, &format!("client_id={client_id}"))
        .await
        .assert_oauth_error(401, "invalid_client");
}

/// RFC 8628 §5.4: two registrations of names that read alike, sent at the same moment
/// through two instances, keep one: the name's keys are claimed in Redis in one step.
/// A check of the registered names alone (read, then write) lets several through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_names_alike_registered_at_once_through_two_instances_one_is_kept() {
    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(2, &registration(&redis.url()));
    let names = [
        "Hall TV",
        "hall tv",
        "HALL-TV",
        "Ha\u{13de}\u{13de} TV",
        "H\u{430}ll TV",
    ];
    let sent: Vec<_> = (0..16)
        .map(|i| {
            let metadata = serde_json::json!({
                "client_name": names[i % names.len()],
                "token_endpoint_auth_method": "none",
            });
            let at = fleet.at(i % 2).clone();
            tokio::spawn(async move { at.register(&metadata).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in sent {
        answers.push(task.await.unwrap());
    }
    let kept: Vec<_> = answers.iter().filter(|a| a.status == 201).collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(kept.len(), 1, "{statuses:?}");
    for a in answers.iter().filter(|a| a.status != 201) {
        a.assert_oauth_error(400, "invalid_client_metadata");
    }
    // Nothing else was kept, by either instance.
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let listed = fleet
        .at(1)
        .call(Method::GET, ADMIN_CLIENTS, &[("authorization", &admin)])
        .await;
    let listed = listed.json();
    let registered: Vec<_> = listed["clients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["source"] == "registered")
        .collect();
    assert_eq!(registered.len(), 1, "{listed}");
}

/// The names hash lost while the clients stay (evicted, deleted, or never written: the
/// clients were registered by an older server): the next name looked up or claimed puts
/// every registered client's name back first, so a name alike is still refused, though
/// a registration came in between and wrote the hash again. A deletion while the hash
/// cannot be written deletes all the same. Failed before: the hash was put back only at
/// start, and only when missing (helper-82).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_names_hash_is_put_back_before_the_next_name_is_claimed() {
    use deviceflow_testkit::Reply;
    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(2, &registration(&redis.url()));
    let (a, b) = (fleet.at(0), fleet.at(1));
    a.register_device_app("Attic TV").await;
    assert_eq!(
        redis.command(&["DEL", "df:c:names"]).unwrap(),
        Reply::Integer(1)
    );
    b.register_device_app("Other app").await;
    let metadata =
        |name: &str| serde_json::json!({"client_name": name, "token_endpoint_auth_method": "none"});
    let again = a.register(&metadata("ATTIC TV")).await;
    again.assert_oauth_error(400, "invalid_client_metadata");
    let why = again.json()["error_description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(why.contains("reads as 'Attic TV'"), "{why}");

    // A hash that cannot be written: registration answers 503, deletion deletes.
    let doomed = b.register_device_app("Doomed TV").await;
    redis.command(&["DEL", "df:c:names"]).unwrap();
    redis.command(&["SET", "df:c:names", "not a hash"]).unwrap();
    assert_unavailable(&a.register(&metadata("New TV")).await, "registration");
    let deleted = b.delete_app(&doomed).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    // Once the key is a hash again, the names are put back, the deleted one's not.
    redis.command(&["DEL", "df:c:names"]).unwrap();
    // A key held by what is no client index (written by hand): 503, never a claim.
    let zed = deviceflow_server::accounts::registration::NameKeys::of("Zed TV");
    let key = zed.iter().next().unwrap().to_owned();
    redis
        .command(&["HSET", "df:c:names", "!complete:v1", "1"])
        .unwrap();
    redis
        .command(&["HSET", "df:c:names", &key, "not an index"])
        .unwrap();
    assert_unavailable(&a.register(&metadata("Zed TV")).await, "registration");
    redis.command(&["DEL", "df:c:names"]).unwrap();
    let freed = a.register(&metadata("Doomed TV")).await;
    assert_eq!(
        freed.status, 201,
        "the deleted client's name stayed taken: {:?}",
        freed.body
    );
    a.register(&metadata("Attic-TV"))
        .await
        .assert_oauth_error(400, "invalid_client_metadata");
}
